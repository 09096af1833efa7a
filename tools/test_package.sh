#!/bin/bash
# test_package.sh - part of the `edge` stage: `npm pack` wasm/ (tools/pack_wasm.sh), install the tarball into an empty
# project offline, use it from node and from Deno (edge/pkgtest/use.mjs: embeddings vs the native CLI <= 1e-5 with 1
# and with 2 threads, the second thread doing part of the work, a 1-vs-2-thread timing line; an index search equal to
# `embedtune search --index`), type-check a TypeScript consumer with `deno check`, and use it from a page in headless
# Chromium (edge/pkgtest/page.mjs: served on 127.0.0.1, 1 thread on the page and 2 in a Web Worker vs native <= 1e-5,
# no request outside the origin).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NATIVE=${ET_BUILD:-build}/embedtune
DENO="$ROOT/edge/node_modules/.bin/deno"
[ -x "$NATIVE" ] && [ -x "$DENO" ] || { echo "test_package: $NATIVE or $DENO missing"; exit 1; }
TGZ=$(bash tools/pack_wasm.sh | tail -1)
[ -f "$TGZ" ] || { echo "test_package: npm pack failed"; exit 1; }
echo "packed $TGZ ($(( $(stat -c %s "$TGZ") / 1024 )) KiB; $(tar tzf "$TGZ" | wc -l) files)"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0
printf 'hello world\nA text editor for the terminal\ncafé crème\n' > "$T/texts.txt"
"$NATIVE" encode --model models/compact --in "$T/texts.txt" -q > "$T/expected.jsonl" || fails=1
"$NATIVE" index --model models/compact --corpus models/samples/debian/corpus.jsonl --out "$T/index.etix" -q || fails=1
"$NATIVE" search --model models/compact --index "$T/index.etix" --query "text editor for the terminal" --mode hybrid -k 3 --json -q > "$T/search.jsonl" || fails=1
ln -s "$ROOT/models" "$T/models"
mkdir "$T/app"
printf '{"name":"app","private":true,"type":"module"}\n' > "$T/app/package.json"
cp edge/pkgtest/use.mjs edge/pkgtest/types.ts "$T/app/"
if (cd "$T/app" && npm install --offline --no-audit --no-fund "$TGZ" >/dev/null 2>"$T/npm.err"); then
  echo "ok   npm install --offline of the tarball into an empty project"
else echo "FAIL npm install: $(cat "$T/npm.err")"; fails=1; fi
(cd "$T/app" && node use.mjs "$T") && echo "ok   node" || { echo "FAIL node"; fails=1; }
# --allow-all only for use.mjs's read of /proc/self/task (per-thread CPU time; Deno allows it only with all access):
# the package itself needs --allow-read --allow-env, threads included (test_edge.sh runs its Deno server with less)
(cd "$T/app" && DENO_NO_UPDATE_CHECK=1 "$DENO" run --quiet --no-prompt --allow-all use.mjs "$T") && echo "ok   deno" || { echo "FAIL deno"; fails=1; }
(cd "$T/app" && DENO_NO_UPDATE_CHECK=1 "$DENO" check --quiet types.ts) && echo "ok   deno check (TypeScript types)" || { echo "FAIL deno check"; fails=1; }
# a page: the same project served by web/server.mjs on 127.0.0.1, in headless Chromium (edge/pkgtest/page.mjs)
if [ -d web/node_modules/playwright-core ] && [ -x "${ET_CHROMIUM:-/usr/bin/chromium}" ]; then
  cp edge/pkgtest/page/index.html edge/pkgtest/page/app.mjs "$T/texts.txt" "$T/index.etix" "$T/app/"
  mkdir -p "$T/app/model/1_Pooling"
  for f in config.json vocab.txt model.safetensors modules.json 1_Pooling/config.json; do cp "models/compact/$f" "$T/app/model/$f"; done
  node edge/pkgtest/page.mjs "$T/app" "$T" && echo "ok   page (Chromium)" || { echo "FAIL page (Chromium)"; fails=1; }
else echo "FAIL page: web/node_modules/playwright-core or chromium missing (tools/setup.sh)"; fails=1; fi
[ $fails -eq 0 ] && echo "test_package: passed" || echo "test_package: FAILED"
[ $fails -eq 0 ]
