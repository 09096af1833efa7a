#!/bin/bash
# Build the wasm module (Emscripten, build-wasm) and assemble the page into a self-contained folder:
#   DIST/index.html style.css web/*.mjs (the page's modules; not server.mjs)   DIST/wasm/{embedtune.mjs,worker.mjs,embedtune-core*.{mjs,wasm,worker.js}}
#   DIST/models/<default>/...           DIST/models/default.json
# Serve it with: node web/server.mjs --root DIST   (any static server works if it sends COOP/COEP, see web/README.md)
# Env: ET_WASM_BUILD (default build-wasm), DIST (default $ET_WASM_BUILD/web-dist), ET_MODEL (default: compact if
# present, else glove-bert-starter), JOBS.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WASM=${ET_WASM_BUILD:-build-wasm}
DIST=${DIST:-$WASM/web-dist}
JOBS=${JOBS:-$(nproc)}
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}   # Debian's acorn for emcc (docs/wasm-build.md, E1)
command -v emcc >/dev/null || { echo "build_web.sh: emcc missing (apt-get install -y emscripten)"; exit 1; }
[ -f "$WASM/CMakeCache.txt" ] || emcmake cmake -S . -B "$WASM" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CROSSCOMPILING_EMULATOR="node;--no-experimental-fetch" >/dev/null
cmake -S . -B "$WASM" >/dev/null                     # re-copies wasm/embedtune.mjs + worker.mjs
cmake --build "$WASM" -j"$JOBS" --target et_web et_web_st
MODEL=${ET_MODEL:-}
if [ -z "$MODEL" ]; then
  for m in compact glove-bert-starter; do [ -f "models/$m/config.json" ] && { MODEL=$m; break; }; done
fi
[ -n "$MODEL" ] && [ -f "models/$MODEL/config.json" ] || { echo "build_web.sh: no model folder models/${MODEL:-?}"; exit 1; }
rm -rf "$DIST"
mkdir -p "$DIST/wasm" "$DIST/models/$MODEL"
cp web/index.html web/style.css "$DIST/"
for f in web/*.mjs; do [ "$(basename "$f")" = server.mjs ] || cp "$f" "$DIST/"; done   # the page's modules
cp "$WASM"/embedtune.mjs "$WASM"/worker.mjs "$WASM"/embedtune-core.mjs "$WASM"/embedtune-core.wasm \
   "$WASM"/embedtune-core.worker.js "$WASM"/embedtune-core-st.mjs "$WASM"/embedtune-core-st.wasm "$DIST/wasm/"
files=()
for f in config.json vocab.txt model.safetensors modules.json 1_Pooling/config.json sentence_bert_config.json \
         tokenizer_config.json special_tokens_map.json retrieval.json; do
  if [ -f "models/$MODEL/$f" ]; then
    mkdir -p "$(dirname "$DIST/models/$MODEL/$f")"
    cp "models/$MODEL/$f" "$DIST/models/$MODEL/$f"
    files+=("\"$f\"")
  fi
done
printf '{"name":"%s","base":"models/%s/","files":[%s]}\n' "$MODEL" "$MODEL" "$(IFS=,; echo "${files[*]}")" > "$DIST/models/default.json"
echo "web page assembled in $DIST ($(du -sh "$DIST" | cut -f1), model $MODEL)"
