#!/bin/bash
# test_edge.sh - the `edge` stage of tools/test.sh: assemble the Worker (tools/build_edge.sh), run it under
# `workerd serve` and under Deno (edge/deno.mjs, 1 and 2 threads) on 127.0.0.1, and check each with edge/check.mjs
# against the native CLI (embeddings within 1e-5, search results equal, errors as 4xx JSON). Needs the native build (build/embedtune),
# emcc, and edge/node_modules (workerd, deno: tools/setup.sh installs them from edge/package-lock.json).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NATIVE=${ET_BUILD:-build}/embedtune
WASM=${ET_WASM_BUILD:-build-wasm}
DIST=${DIST:-$WASM/edge-dist}
WORKERD=edge/node_modules/.bin/workerd
DENO=edge/node_modules/.bin/deno
[ -x "$NATIVE" ] || { echo "test_edge: $NATIVE missing (run the native stage first)"; exit 1; }
[ -x "$WORKERD" ] && [ -x "$DENO" ] || { echo "test_edge: $WORKERD or $DENO missing (npm ci --prefix edge, or tools/setup.sh)"; exit 1; }
DIST=$DIST bash tools/build_edge.sh || exit 1
fails=0
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_up() { # URL PID LOG: until /health answers (60 s)
  for _ in $(seq 1 600); do
    node -e 'fetch(process.argv[1] + "/health").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "test_edge: the server exited:"; cat "$3"; return 1; }
    sleep 0.1
  done
  echo "test_edge: $1 did not come up"; cat "$3"; return 1
}
LOG=$(mktemp -d)
# workerd
P=$(port)
(cd "$DIST" && exec "$ROOT/$WORKERD" serve config.capnp --socket-addr http=127.0.0.1:$P) > "$LOG/workerd.log" 2>&1 &
pids+=($!)
if wait_up "http://127.0.0.1:$P" $! "$LOG/workerd.log"; then
  node edge/check.mjs "http://127.0.0.1:$P" "$NATIVE" models/compact "$DIST/index.etix" || fails=$((fails + 1))
else fails=$((fails + 1)); fi
# deno: the same handler, on the single-threaded core and on the threaded one (2 threads: pthreads as Deno workers),
# with no permission beyond reading DIST and listening on its port
for th in 1 2; do
  P2=$(port)
  DENO_NO_UPDATE_CHECK=1 "$DENO" run --quiet --no-prompt --allow-read="$DIST" --allow-net=127.0.0.1:$P2 edge/deno.mjs "$DIST" $P2 --threads $th > "$LOG/deno$th.log" 2>&1 &
  pids+=($!)
  if wait_up "http://127.0.0.1:$P2" $! "$LOG/deno$th.log"; then
    node edge/check.mjs "http://127.0.0.1:$P2" "$NATIVE" models/compact "$DIST/index.etix" $th || fails=$((fails + 1))
  else fails=$((fails + 1)); fi
  kill "${pids[-1]}" 2>/dev/null
done
rm -rf "$LOG"
[ $fails -eq 0 ] && echo "test_edge: workerd and deno (1 and 2 threads) passed" || echo "test_edge: $fails server(s) FAILED"
[ $fails -eq 0 ]
