#!/usr/bin/env bash
# run_e5small_bench.sh - encode and train-step rows for a multilingual-e5-small-shaped model beside PyTorch.
#
# The model: 12 layers, hidden 384, 12 heads, intermediate 1536, vocabulary 250,037 (multilingual-e5-small's padded
# XLM-R table: the embedding table is 96 M of its 118 M parameters), one token type, 514 positions, random weights
# (bench/make_minilm_random.py, written once to MODEL). It is laid out as a BERT folder so that the PyTorch anchor
# (bench/torch_encode.py / torch_train.py, plain-torch BERT) runs the same computation; the XLM-R position offset
# (ids start at pad + 1) changes which position rows are read, not the work.
# Then the two existing runners, unchanged, on that folder:
#   bench/run_encode_bench.sh  (encode 32x128 and 1x32, 1 and 2 threads; embedtune vs torch; pooled output checked to 1e-3)
#   bench/run_train_bench.sh   (one train step: 32 queries x 32 + 32 documents x 128, MNRL, AdamW; loss sequence checked)
# The anchors' BLAS is set up by bench/anchor_env.sh (OpenBLAS required) inside those runners.
# The big vocabulary shows in the train step: AdamW keeps m and v for every row of the 250,037 x 384 table, and the
# table's gradient is dense, so peak RSS is dominated by it (issue 16 item 3).
#
# usage: bench/run_e5small_bench.sh [--rounds N] [--threads "1 2"] [--encode-only | --train-only] [--model DIR]
# env:   PYTHON_TORCH (default /usr/bin/python3), ET_BENCH_BUILD / ET_TRAIN_BUILD as the runners take them
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON_TORCH:-/usr/bin/python3}
MODEL=/tmp/et-bench/e5small
ROUNDS=2
THREADS="1 2"
DO_ENCODE=1
DO_TRAIN=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --encode-only) DO_TRAIN=0; shift ;;
    --train-only) DO_ENCODE=0; shift ;;
    --model) MODEL=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_e5small_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ ! -f "$MODEL/model.safetensors" ] || [ ! -f "$MODEL/check.json" ]; then
  echo "== making the random multilingual-e5-small-shaped model in $MODEL" >&2
  "$PY" "$ROOT/bench/make_minilm_random.py" --out "$MODEL" --layers 12 --hidden 384 --heads 12 --intermediate 1536 \
    --vocab 250037 --type-vocab 1 --max-position 514 --name embedtune-bench/multilingual-e5-small-shaped-random --no-onnx
fi
export ET_BENCH_LABEL="multilingual-e5-small shape (12 x 384, vocab 250,037)"
if [ "$DO_ENCODE" = 1 ]; then
  echo "== encode, multilingual-e5-small shape" >&2
  "$ROOT/bench/run_encode_bench.sh" --model "$MODEL" --engines "embedtune torch" --rounds "$ROUNDS" --threads "$THREADS"
fi
if [ "$DO_TRAIN" = 1 ]; then
  echo "== train step, multilingual-e5-small shape" >&2
  "$ROOT/bench/run_train_bench.sh" --model "$MODEL" --engines "embedtune torch" --rounds "$ROUNDS" --threads "$THREADS"
fi
