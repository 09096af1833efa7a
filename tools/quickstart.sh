#!/usr/bin/env bash
# The README's main command: install what is needed, build embedtune, encode and search the bundled
# sample corpus (600 Debian package descriptions) with the bundled default model, then build the page
# (WebAssembly) and serve it on 127.0.0.1, printing the URL to open (Ctrl-C stops the server).
# Usage: tools/quickstart.sh ["your query"]     (ET_NO_SERVE=1: stop after the command-line demo)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/tools/setup.sh"
ET="$ROOT/build/embedtune"
MODEL="$ROOT/models/compact"
[ -f "$MODEL/config.json" ] || MODEL="$ROOT/models/glove-bert-starter"
CORPUS="$ROOT/models/samples/debian/corpus.jsonl"
echo
echo "== encode: $CORPUS -> $ROOT/build/sample-embeddings.npy"
"$ET" encode --model "$MODEL" --in "$CORPUS" --out "$ROOT/build/sample-embeddings.npy"
for q in "${1:-play music files from the command line}" "library for parsing xml documents"; do
  echo
  echo "== search: $q"
  "$ET" search --model "$MODEL" --corpus "$CORPUS" --query "$q" -k 5 --quiet
done
[ -n "${ET_NO_SERVE:-}" ] && exit 0
echo
echo "== the page: fine-tune in the browser (nothing leaves the machine)"
exec bash "$ROOT/tools/serve.sh" "${PORT:-8080}"
