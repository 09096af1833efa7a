#!/usr/bin/env bash
# Install what embedtune needs on a fresh Debian 12 machine (as root), then build it natively.
# The only script that installs anything (tools/quickstart.sh and .ci/run call it; tools/test.sh does not).
# Idempotent: packages already present are not fetched again. cJSON is vendored (third_party/cjson).
# Usage: tools/setup.sh [--no-build] [--minimal]
#   --minimal  only the native toolchain (C compiler, CMake): enough for `embedtune` itself
#   default    also Emscripten + WASI (the WebAssembly builds), clang (fuzzing), node + Chromium and
#              playwright-core in web/node_modules (the page and its browser tests), workerd and deno in
#              edge/node_modules (the Worker's tests; pinned by edge/package-lock.json)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
build=1 minimal=0
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    --minimal) minimal=1 ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
PKGS=(build-essential cmake)
if [ $minimal -eq 0 ]; then
  PKGS+=(clang-14 lld-14 llvm-14 libclang-rt-14-dev wasi-libc libclang-rt-14-dev-wasm32
         emscripten binaryen chromium)
  command -v node >/dev/null || PKGS+=(nodejs)
  command -v npm >/dev/null || PKGS+=(npm)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ $minimal -eq 0 ] && [ ! -d "$ROOT/web/node_modules/playwright-core" ]; then
  echo "setup: npm install (web/package.json: playwright-core, for the browser tests)"
  npm install --prefix "$ROOT/web" --no-audit --no-fund >/dev/null
fi
if [ $minimal -eq 0 ] && { [ ! -x "$ROOT/edge/node_modules/.bin/workerd" ] || [ ! -x "$ROOT/edge/node_modules/.bin/deno" ]; }; then
  echo "setup: npm ci (edge/package-lock.json: workerd and deno, for the edge tests)"
  npm ci --prefix "$ROOT/edge" --no-audit --no-fund >/dev/null
fi
if [ $build -eq 1 ]; then
  cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release > /dev/null
  cmake --build "$ROOT/build" -j"$(nproc)"
fi
