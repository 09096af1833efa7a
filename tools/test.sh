#!/usr/bin/env bash
# Run the whole embedtune test suite (the README's test command; CI runs it through .ci/run):
#   native   Release build + CTest (unit tests, PyTorch parity fixtures, CLI tests, kill-and-resume)
#   asan     the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer (tools/test_asan.sh)
#   fuzz     every libFuzzer harness, 20,000 inputs from a fixed seed (tools/fuzz.sh; FUZZ_SEED, FUZZ_RUNS, FUZZ_SECONDS cap 30)
#   wasm     Emscripten (SIMD + pthreads) and WASI builds, their C tests under node, the JS API tests
#   web      the page in headless Chromium via Playwright (tools/test_web.sh)
#   edge     the Worker under workerd and the same handler under Deno, checked against the native CLI (tools/test_edge.sh);
#            the npm package packed, installed offline and used from node and Deno (tools/test_package.sh)
# Usage: tools/test.sh [stage ...]   (default: all stages; e.g. `tools/test.sh native` for a quick run)
# Every stage runs even if an earlier one failed; the last line says how many passed and failed.
# Installs nothing: tools/setup.sh does (.ci/run calls it first); a stage whose tools are missing fails saying which.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STAGES=${*:-native asan fuzz wasm web edge}
command -v cmake >/dev/null && command -v cc >/dev/null || { echo "test.sh: cmake or a C compiler missing: run tools/setup.sh"; exit 1; }
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
JOBS=$(nproc)
pass=0 fail=0 failed=() times=()
native() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null && cmake --build build -j"$JOBS" &&
    ctest --test-dir build --output-on-failure -j"$JOBS" --timeout 300
}
asan() { bash tools/test_asan.sh --timeout 600; }
# fixed seed and run count (FUZZ_SEED/FUZZ_RUNS): the same inputs as a local run of this commit, so CI is
# reproducible; random-seed campaigns: tools/fuzz.sh SECONDS without them
fuzz() { FUZZ_SEED=${FUZZ_SEED:-1} FUZZ_RUNS=${FUZZ_RUNS:-20000} JOBS=$JOBS bash tools/fuzz.sh "${FUZZ_SECONDS:-30}"; }
wasm() {
  ET_NATIVE_EMBEDTUNE="$ROOT/build/embedtune" \
  ET_WASM_TESTS="test_kernels test_tokenizer test_hf test_e2e test_bert test_loss test_optim test_metrics test_train test_moe test_determinism test_adapt test_packed test_bf16" \
    bash tools/test_wasm.sh
}
web() {
  if [ -f tools/test_web.sh ]; then bash tools/test_web.sh; else echo "web: tools/test_web.sh not present"; return 1; fi
}
edge() { local r=0; JOBS=$JOBS bash tools/test_edge.sh || r=1; JOBS=$JOBS bash tools/test_package.sh || r=1; return $r; }
T0=$(date +%s)
for s in $STAGES; do
  case $s in native|asan|fuzz|wasm|web|edge) ;; *) echo "test.sh: unknown stage '$s'"; exit 2 ;; esac
  t=$(date +%s)
  echo "########## $s"
  if $s; then pass=$((pass + 1)); r=ok; else fail=$((fail + 1)); failed+=("$s"); r=FAILED; fi
  times+=("$s: $r ($(( $(date +%s) - t )) s)")
  echo "########## $s: $r"
done
echo
printf '%s\n' "${times[@]}"
echo "total $(( $(date +%s) - T0 )) s"
[ $fail -eq 0 ] || echo "failed stages: ${failed[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
