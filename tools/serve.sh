#!/bin/bash
# Build the page (tools/build_web.sh) and serve it on 127.0.0.1. Usage: tools/serve.sh [PORT] (default 8080)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PORT=${1:-${PORT:-8080}}
WASM=${ET_WASM_BUILD:-build-wasm}
export DIST=${DIST:-$WASM/web-dist}
./tools/build_web.sh
echo "open http://127.0.0.1:$PORT/ in Chromium, Chrome, Edge or Firefox (Ctrl-C stops the server)"
exec node web/server.mjs --root "$DIST" --port "$PORT"
