#!/bin/bash
# Pack wasm/ as the npm package "embedtune" (wasm/package.json): build the Emscripten cores, assemble
# $ET_WASM_BUILD/npm/embedtune (package.json, embedtune.d.ts, README.md, LICENSE, NOTICE.md, the ES modules and the
# cores) and `npm pack` it into $ET_WASM_BUILD/npm/. Prints the tarball's path on the last line.
# Env: ET_WASM_BUILD (build-wasm), JOBS.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WASM=${ET_WASM_BUILD:-build-wasm}
JOBS=${JOBS:-$(nproc)}
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
[ -f "$WASM/CMakeCache.txt" ] || emcmake cmake -S . -B "$WASM" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CROSSCOMPILING_EMULATOR="node;--no-experimental-fetch" >/dev/null
cmake -S . -B "$WASM" >/dev/null
cmake --build "$WASM" -j"$JOBS" --target et_web et_web_st >/dev/null
P="$WASM/npm/embedtune"
rm -rf "$WASM/npm"
mkdir -p "$P"
cp wasm/package.json wasm/embedtune.d.ts wasm/README.md LICENSE NOTICE.md "$P/"
cp "$WASM"/embedtune.mjs "$WASM"/worker.mjs "$WASM"/embedtune-core.mjs "$WASM"/embedtune-core.wasm \
   "$WASM"/embedtune-core.worker.js "$WASM"/embedtune-core.worker.mjs "$WASM"/embedtune-core-st.mjs "$WASM"/embedtune-core-st.wasm "$P/"
(cd "$WASM/npm" && npm pack ./embedtune --silent >/dev/null)
ls "$ROOT/$WASM"/npm/embedtune-*.tgz
