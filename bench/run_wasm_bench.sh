#!/usr/bin/env bash
# run_wasm_bench.sh - WebAssembly throughput (bench/README.md, "WebAssembly"), in one invocation:
#   * the WASM SIMD128 peak (bench/simd_peak.c: f32x4 mul+add chains) in node and in headless Chromium, 1 and 2 threads;
#   * encode, random MiniLM-L6 (bench/make_minilm_random.py), batch 32 x seq 128 and 1 x 32: embedtune wasm
#     (Embedtune.load + encode) vs onnxruntime-web 1.30 (wasm backend, numThreads t) in node and in Chromium, with
#     native embedtune (bench_encode) interleaved for reference;
#   * GEMM 512/1024 NN: bench_gemm built for wasm, in node, vs native bench_gemm;
#   * training: one epoch of 1,000 pairs (first 1,000 lines of /work/pretrain/pairs.jsonl, else the debian
#     fixture repeated) on a random 2-layer compact-shaped model (tools/init_compact_model.py), 2 threads, node + Chromium.
# Engines are interleaved (engine order rotated every round); tables use the best rep of all rounds.
#
# usage: bench/run_wasm_bench.sh [--rounds N] [--threads "1 2"] [--shapes "32x128 1x32"] [--runtimes "node chromium"]
#                                [--parts "peak encode gemm train native"] [--min-time S] [--out FILE.jsonl]
#        bench/run_wasm_bench.sh --summarize FILE.jsonl
# env:   ET_WASM_BUILD (default <repo>/build-wasm, configured with emcmake), ET_BENCH_BUILD (native, default
#        <repo>/build-bench), ET_BENCH_DATA (default /tmp/et-bench), PYTHON_TORCH (default /usr/bin/python3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WASM=${ET_WASM_BUILD:-$ROOT/build-wasm}
NATIVE=${ET_BENCH_BUILD:-$ROOT/build-bench}
DATA=${ET_BENCH_DATA:-/tmp/et-bench}
PY=${PYTHON_TORCH:-/usr/bin/python3}
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}   # Debian's acorn for emcc (toolchain.md E1)

for a in "$@"; do
  if [ "$a" = "--summarize" ]; then exec node "$ROOT/bench/wasm_bench.mjs" "$@"; fi
done

echo "== build: wasm ($WASM)" >&2
[ -f "$WASM/CMakeCache.txt" ] || { emcmake cmake -S . -B "$WASM" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CROSSCOMPILING_EMULATOR="node;--no-experimental-fetch" >/dev/null; }
cmake --build "$WASM" -j2 --target et_web et_web_st bench_gemm >/dev/null || { echo "WARNING: wasm build failed (someone else's half-finished change?); using the existing outputs" >&2; }
# the SIMD peak microbenchmark: emcc directly (not a CMake target); -st = no threads, as embedtune-core-st
mkdir -p "$WASM/wasm-bench"
PEAK_OPTS=(-O3 -msimd128 -sMODULARIZE=1 -sEXPORT_ES6=1 -sEXPORT_NAME=createSimdPeak -sENVIRONMENT=web,worker,node
           -sEXPORTED_FUNCTIONS=_et_simd_peak_run,_et_simd_peak_sink,_et_simd_peak_acc)
if [ bench/simd_peak.c -nt "$WASM/wasm-bench/simd_peak.wasm" ] || [ ! -f "$WASM/wasm-bench/simd_peak-st.wasm" ]; then
  emcc "${PEAK_OPTS[@]}" -o "$WASM/wasm-bench/simd_peak-st.mjs" bench/simd_peak.c
  emcc "${PEAK_OPTS[@]}" -pthread -sPTHREAD_POOL_SIZE=2 -o "$WASM/wasm-bench/simd_peak.mjs" bench/simd_peak.c
fi

echo "== build: native ($NATIVE)" >&2
[ -f "$NATIVE/CMakeCache.txt" ] || cmake -S . -B "$NATIVE" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$NATIVE" -j2 --target bench_encode bench_gemm bench_train >/dev/null || echo "WARNING: native build failed; using the existing binaries" >&2

if [ ! -f bench/node_modules/onnxruntime-web/package.json ]; then
  echo "== npm: onnxruntime-web 1.30.0 into bench/node_modules" >&2
  (cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save --no-package-lock onnxruntime-web@1.30.0 >&2)
fi
[ -f web/node_modules/playwright-core/package.json ] || { echo "missing web/node_modules/playwright-core (cd web && npm install)" >&2; exit 1; }

echo "== data ($DATA)" >&2
mkdir -p "$DATA"
[ -f "$DATA/minilm/model.onnx" ] || "$PY" bench/make_minilm_random.py --out "$DATA/minilm" --no-ort-check
if [ ! -f "$DATA/compact2/model.safetensors" ]; then
  GLOVE=/work/pretrain/glove_init_128.npy
  if [ -f "$GLOVE" ]; then G=(--glove-init "$GLOVE"); else G=(--no-glove); fi
  "$PY" tools/init_compact_model.py --out "$DATA/compact2" --layers 2 --hidden 128 --heads 4 --intermediate 512 "${G[@]}" >&2
fi
if [ ! -f "$DATA/pairs1000.jsonl" ]; then
  if [ -f /work/pretrain/pairs.jsonl ]; then head -n 1000 /work/pretrain/pairs.jsonl > "$DATA/pairs1000.jsonl"
  else  # the 200-line fixture, 5 times, each copy with a distinct suffix so no two pairs are equal
    for k in 1 2 3 4 5; do sed "s/\"query\": \"/\"query\": \"v$k /" tests/fixtures/train/debian_pairs.jsonl; done | head -n 1000 > "$DATA/pairs1000.jsonl"
  fi
fi

echo "== load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec node "$ROOT/bench/wasm_bench.mjs" --build "$WASM" --native-build "$NATIVE" --data "$DATA" "$@"
