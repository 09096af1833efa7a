#!/bin/bash
# The page's browser tests (web/tests/*.test.mjs, node's test runner) in headless Chromium via playwright-core:
# builds the wasm module (build-wasm) and, if missing, the native CLI (build/embedtune, for the model
# round-trip check), then runs the suite (playwright-core in web/node_modules: tools/setup.sh installs it).
# Env: ET_WASM_BUILD (default build-wasm), ET_NATIVE_EMBEDTUNE (default build/embedtune), ET_CHROMIUM (/usr/bin/chromium).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
T0=$(date +%s)
[ -x "${ET_CHROMIUM:-/usr/bin/chromium}" ] || { echo "test_web.sh: chromium missing (apt-get install -y chromium)"; exit 1; }
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
WASM=${ET_WASM_BUILD:-build-wasm}
[ -f "$WASM/CMakeCache.txt" ] || emcmake cmake -S . -B "$WASM" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CROSSCOMPILING_EMULATOR="node;--no-experimental-fetch" >/dev/null
cmake -S . -B "$WASM" >/dev/null
cmake --build "$WASM" -j"$(nproc)" --target et_web et_web_st >/dev/null
NATIVE=${ET_NATIVE_EMBEDTUNE:-build/embedtune}
if [ ! -x "$NATIVE" ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)" --target embedtune >/dev/null
fi
export ET_NATIVE_EMBEDTUNE=$ROOT/$NATIVE
[ -d web/node_modules/playwright-core ] || { echo "test_web.sh: web/node_modules/playwright-core missing (run tools/setup.sh)"; exit 1; }
echo "build: $(( $(date +%s) - T0 )) s"
T1=$(date +%s)
node --test --test-concurrency=1 web/tests/
echo "browser tests: $(( $(date +%s) - T1 )) s"
