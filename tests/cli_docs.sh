#!/usr/bin/env bash
# cli_docs.sh - the product cites only documents it contains: no file of the repository points outside it to
# the team's notes (shared/docs/...), and every docs/NAME.md that a source, script or README names exists.
set -u
cd "$(dirname "$0")/.."
fails=0
files=$(find README.md NOTICE.md CMakeLists.txt src tests tools wasm web bench models fuzz cmake docs -type f \
  \( -name '*.c' -o -name '*.h' -o -name '*.md' -o -name '*.mjs' -o -name '*.js' -o -name '*.sh' -o -name '*.py' \
     -o -name '*.txt' -o -name '*.html' -o -name '*.cmake' \) \
  -not -path '*/node_modules/*' -not -path 'tests/fixtures/*' -not -path 'tests/cli_docs.sh' 2>/dev/null)
out=$(grep -nE 'shared/docs|\.\./shared/[a-z-]+\.md' $files)
if [ -n "$out" ]; then echo "FAIL files point outside the repository to the team's notes:"; echo "$out"; fails=1
else echo "ok   nothing points to shared/docs"; fi
missing=0
for ref in $(grep -ohE 'docs/[A-Za-z0-9_-]+\.md' $files | sort -u); do
  [ -f "$ref" ] || { echo "FAIL $ref is cited but does not exist (cited in: $(grep -lF "$ref" $files | tr '\n' ' '))"; missing=1; }
done
[ $missing -eq 0 ] && echo "ok   every cited docs/*.md exists" || fails=1
[ $fails -eq 0 ] && echo "cli_docs: all passed" || { echo "cli_docs: FAILED"; exit 1; }
