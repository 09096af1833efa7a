#!/usr/bin/env bash
# tools/fuzz.sh [SECONDS] [HARNESS...] - build the libFuzzer harnesses (fuzz/fuzz_*.c, CMake option
# ET_FUZZ, clang-14 with ASan+UBSan) in build-fuzz and run each for SECONDS (default 20, the CI
# setting) on a copy of its seed corpus fuzz/corpus/<harness>/, JOBS (default 2) at a time.
# Fails (exit 1) if any harness crashes, leaks, times out or exceeds the RSS limit; the crashing
# input is left in $FUZZ_OUT/<harness>/ (default build-fuzz/fuzz-out) - copy it to
# fuzz/regress/<harness>/ once fixed, so tests/test_fuzz_regress.c replays it.
# Needs clang-14 and its fuzzer runtime (Debian: apt-get install -y clang-14 libclang-rt-14-dev).
# Environment: JOBS, FUZZ_OUT, BUILD (build dir), CC (default clang-14), KEEP_CORPUS=1 to merge
# new interesting inputs back into... nothing: committed corpora stay small and hand-curated.
# FUZZ_SEED=N and FUZZ_RUNS=N make a run reproducible (libFuzzer -seed / -runs; SECONDS stays an upper
# bound): tools/test.sh (CI) uses them, so CI replays the same inputs as a local run of the same commit
# instead of failing at random on a bug a random seed happens to hit; leave them unset for campaigns.
set -u
cd "$(dirname "$0")/.."
SECS=${1:-20}
shift || true
JOBS=${JOBS:-2}
BUILD=${BUILD:-build-fuzz}
OUT=${FUZZ_OUT:-$BUILD/fuzz-out}
CC=${CC:-clang-14}
ALL=$(cd fuzz && ls fuzz_*.c | sed 's/\.c$//')
LIST=${*:-$ALL}

CC=$CC cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DET_FUZZ=ON > "$BUILD.cmake.log" 2>&1 ||
  { cat "$BUILD.cmake.log"; echo "fuzz.sh: cmake failed (needs clang-14: apt-get install -y clang-14 libclang-rt-14-dev)"; exit 1; }
cmake --build "$BUILD" -j"$JOBS" --target $LIST > "$BUILD.build.log" 2>&1 ||
  { tail -40 "$BUILD.build.log"; echo "fuzz.sh: build failed"; exit 1; }

# per-harness input size limits: model files need room, text inputs less
maxlen() { case $1 in fuzz_spm|fuzz_bpe) echo 32768;; fuzz_hf|fuzz_safetensors) echo 16384;; fuzz_tokenize|fuzz_vocab) echo 4096;; *) echo 8192;; esac; }

run_one() {
  local h=$1 w="$OUT/$1"
  rm -rf "$w"; mkdir -p "$w/corpus" "$w/artifacts"
  cp fuzz/corpus/$h/* "$w/corpus/" 2>/dev/null
  [ -d fuzz/regress/$h ] && cp fuzz/regress/$h/* "$w/corpus/" 2>/dev/null
  local t0=$(date +%s)
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  TMPDIR="$w" "$BUILD/$h" "$w/corpus" -max_total_time="$SECS" -max_len=$(maxlen $h) -rss_limit_mb=2048 \
    ${FUZZ_SEED:+-seed=$FUZZ_SEED} ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$w/artifacts/" > "$w/log.txt" 2>&1
  local rc=$?
  local execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$w/log.txt" | tail -1)
  local cov=$(grep -o 'cov: [0-9]*' "$w/log.txt" | tail -1 | cut -d' ' -f2)
  local ft=$(grep -o 'ft: [0-9]*' "$w/log.txt" | tail -1 | cut -d' ' -f2)
  local st="ok"; [ $rc -eq 0 ] || st="FAILED (rc $rc, see $w/log.txt; input in $w/artifacts/)"
  printf '%-18s %5ss  execs %-10s cov %-6s ft %-6s corpus %-5s %s\n' "$h" $(( $(date +%s) - t0 )) "${execs:-?}" "${cov:-?}" \
    "${ft:-?}" "$(ls "$w/corpus" | wc -l)" "$st" > "$w/summary.txt"
  return $rc
}

mkdir -p "$OUT"
pids=() names=()
fail=0
for h in $LIST; do
  while [ $(jobs -rp | wc -l) -ge "$JOBS" ]; do sleep 0.5; done
  run_one "$h" &
done
wait
for h in $LIST; do
  cat "$OUT/$h/summary.txt"
  grep -q ' ok$' "$OUT/$h/summary.txt" || { fail=1; grep -m3 -E 'ERROR|runtime error|Deadly|deadly|crash' "$OUT/$h/log.txt"; }
done
[ $fail -eq 0 ] && echo "fuzz.sh: all harnesses ran (${FUZZ_RUNS:-unlimited} inputs each, at most ${SECS}s) without a crash" || echo "fuzz.sh: CRASH FOUND"
exit $fail
