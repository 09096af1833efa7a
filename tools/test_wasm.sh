#!/bin/bash
# Build embedtune for WebAssembly and run its tests under node:
#   1. Emscripten build (SIMD + pthreads) in build-wasm, its CTest suite (NODERAWFS executables)
#   2. WASI build in build-wasi, its CTest suite (cmake/run-wasi.mjs under node:wasi)
#   3. node --test tests/wasm/ (the ES module API, the worker, and the WASI CLI vs native)
# Every stage runs even if an earlier one failed; the exit status is non-zero if any failed.
# Env: JOBS (default nproc), ET_WASM_BUILD / ET_WASI_BUILD (build dirs), ET_NATIVE_EMBEDTUNE,
#      ET_WASM_TESTS: a list of CTest names to build and run in both targets (default: all of them;
#      tools/test.sh passes the C-level tests, leaving the CLI shell tests to the native build and to
#      tests/wasm/wasi_cli.test.mjs).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-$(nproc)}
WASM=${ET_WASM_BUILD:-build-wasm}
WASI=${ET_WASI_BUILD:-build-wasi}
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}   # Debian's acorn for emcc (docs/wasm-build.md, E1)
export ET_WASM_BUILD=$WASM ET_WASI_BUILD=$WASI
failed=()
T0=$(date +%s)
stage() { # name cmd...
  local name=$1; shift
  local t=$(date +%s)
  echo "=== $name"
  if "$@"; then echo "=== $name: ok ($(( $(date +%s) - t )) s)"; else echo "=== $name: FAILED ($(( $(date +%s) - t )) s)"; failed+=("$name"); fi
}
need() { command -v "$1" >/dev/null || { echo "missing $1 (apt-get install -y $2)"; exit 1; }; }
need node nodejs; need emcc emscripten; need clang-14 clang-14; need wasm-ld-14 lld-14
[ -f /usr/lib/wasm32-wasi/libc.a ] || { echo "missing wasi-libc (apt-get install -y wasi-libc libclang-rt-14-dev-wasm32)"; exit 1; }

TESTS=${ET_WASM_TESTS:-}
TARGETS=() CTEST_SEL=()
if [ -n "$TESTS" ]; then
  TARGETS=(--target embedtune $TESTS)
  CTEST_SEL=(-R "^($(echo $TESTS | tr ' ' '|'))\$")
fi
configure_wasm() {
  [ -f "$WASM/CMakeCache.txt" ] || emcmake cmake -S . -B "$WASM" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CROSSCOMPILING_EMULATOR="node;--no-experimental-fetch" >/dev/null
  cmake -S . -B "$WASM" >/dev/null || return 1
  if [ -n "$TESTS" ]; then cmake --build "$WASM" -j"$JOBS" "${TARGETS[@]}" et_web et_web_st; else cmake --build "$WASM" -j"$JOBS"; fi
}
configure_wasi() {
  [ -f "$WASI/CMakeCache.txt" ] || cmake -S . -B "$WASI" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE=cmake/wasi-toolchain.cmake >/dev/null
  cmake -S . -B "$WASI" >/dev/null && cmake --build "$WASI" -j"$JOBS" "${TARGETS[@]}"
}
stage "build Emscripten ($WASM)" configure_wasm
stage "build WASI ($WASI)" configure_wasi
stage "ctest Emscripten" ctest --test-dir "$WASM" -j"$JOBS" --output-on-failure --timeout 300 "${CTEST_SEL[@]}"
stage "ctest WASI" ctest --test-dir "$WASI" -j"$JOBS" --output-on-failure --timeout 300 "${CTEST_SEL[@]}"
stage "node --test tests/wasm" node --test tests/wasm/
echo "total $(( $(date +%s) - T0 )) s"
if [ ${#failed[@]} -gt 0 ]; then printf 'FAILED: %s\n' "${failed[@]}"; exit 1; fi
echo "all wasm tests passed"
