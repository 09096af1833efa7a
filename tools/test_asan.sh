#!/usr/bin/env bash
# tools/test_asan.sh - build the whole suite with AddressSanitizer + UndefinedBehaviorSanitizer
# (CMake option ET_SANITIZE) in build-asan and run ctest there. Any sanitizer report fails the
# test that triggered it (UBSan is built with -fno-sanitize-recover; ASan aborts; LeakSanitizer
# reports leaks at exit). Prints the build and test times (CI budget: the whole CI <= ~20 min on
# 2 cores). Usage: tools/test_asan.sh [ctest args...]   (env: BUILD=build-asan, JOBS=2)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-asan}
JOBS=${JOBS:-2}
t0=$(date +%s)
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DET_SANITIZE=ON > "$BUILD.cmake.log" 2>&1 ||
  { cat "$BUILD.cmake.log"; exit 1; }
cmake --build "$BUILD" -j"$JOBS" > "$BUILD.build.log" 2>&1 || { grep -E 'error' "$BUILD.build.log" | head -30; echo "test_asan.sh: build failed"; exit 1; }
t1=$(date +%s)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd "$BUILD" && ctest -j"$JOBS" --output-on-failure --timeout 600 "$@")
rc=$?
t2=$(date +%s)
echo "test_asan.sh: build $((t1 - t0))s, ctest $((t2 - t1))s, total $((t2 - t0))s; ctest exit $rc"
exit $rc
