# tests/et_test.sh - the harness of the shell tests tests/cli_*.sh (the shell side of tests/et_test.h), sourced
# from the repository root, where CTest runs them:
#   ET        the embedtune binary under test ($ET_EMBEDTUNE, set by CTest; default build/embedtune)
#   T         a fresh temporary folder, removed when the script exits
#   ok NAME / bad NAME       count a passed / failed check (passes, fails) and print it
#   expect_err NAME PAT CMD...  CMD must fail (a non-zero exit that is not a signal: no crash) with stderr
#                            matching the extended regex PAT; its stdout and stderr are left in $T/out, $T/err
#   et_test_done NAME        print the tally; the script's exit status is non-zero if any check failed
ET=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0; passes=0
ok()   { echo "ok   $1"; passes=$((passes+1)); }
bad()  { echo "FAIL $1"; fails=$((fails+1)); }
expect_err() {
  local name=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qE -- "$pat" "$T/err"; then ok "$name"; else bad "$name (rc=$rc, stderr: $(head -c 300 "$T/err"))"; fi
}
et_test_done() {
  echo "$1: $passes passed, $fails failed"
  [ $fails -eq 0 ]
}
