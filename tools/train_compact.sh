#!/usr/bin/env bash
# The full, reproducible recipe of embedtune's bundled compact model (models/compact/):
#   data -> init -> train (embedtune's own trainer) -> export (F16) -> curve -> evaluation.
#
# Usage (from the repository root, after building the CLI):
#   tools/train_compact.sh                        # everything, the settings models/compact was made with
#   ET=build/embedtune WORK=/tmp/compact STEPS=1000 BATCH=64 tools/train_compact.sh
#   ABLATION=1 tools/train_compact.sh             # also the random-token-embedding run (same data, same order)
# Environment (defaults = the released model):
#   ET        embedtune binary                              (build/embedtune)
#   PRETRAIN  folder of pairs.jsonl / dev.jsonl / glove_init_128.npy  (/work/pretrain; built here if missing)
#   WORK      scratch folder for the init model, run folder, logs     (/work/compact)
#   OUT       final model folder                            (models/compact)
#   EVAL      BEIR eval-data folder                         (../shared/eval-data)
#   LAYERS HIDDEN HEADS INTER   architecture                (3 128 4 512)
#   STEPS BATCH LR WARMUP TAU LQ LD SEED THREADS                (1000 64 1e-3 0.05 0.05 32 128 42 2)
# The first STEPS*BATCH lines of the (already shuffled) pairs.jsonl are used: one epoch, each pair seen once.
# Needs: python3 (stdlib) for the data, /usr/bin/python3 with numpy for init/export, matplotlib for the curve.
set -euo pipefail
cd "$(dirname "$0")/.."

ET=${ET:-build/embedtune}
PRETRAIN=${PRETRAIN:-/work/pretrain}
WORK=${WORK:-/work/compact}
OUT=${OUT:-models/compact}
EVAL=${EVAL:-../shared/eval-data}
LAYERS=${LAYERS:-3} HIDDEN=${HIDDEN:-128} HEADS=${HEADS:-4} INTER=${INTER:-512}
STEPS=${STEPS:-1000} BATCH=${BATCH:-64} LR=${LR:-1e-3} WARMUP=${WARMUP:-0.05} TAU=${TAU:-0.05}
LQ=${LQ:-32} LD=${LD:-128} SEED=${SEED:-42} THREADS=${THREADS:-2}
PY=/usr/bin/python3

[ -x "$ET" ] || { echo "train_compact.sh: $ET not found (build first, or set ET=)" >&2; exit 2; }
mkdir -p "$WORK"

# 1. data: (query, positive) pairs from Debian's registry (package descriptions, WordNet, GCIDE); GloVe init
[ -s "$PRETRAIN/pairs.jsonl" ] || python3 tools/build_pretrain_pairs.py --out "$PRETRAIN"
[ -s "$PRETRAIN/glove_init_$HIDDEN.npy" ] ||
    $PY tools/make_glove_init.py --hidden "$HIDDEN" --out "$PRETRAIN/glove_init_$HIDDEN.npy"
N=$((STEPS * BATCH))
head -n "$N" "$PRETRAIN/pairs.jsonl" > "$WORK/train.jsonl"
echo "train_compact.sh: $(wc -l < "$WORK/train.jsonl") training pairs ($STEPS steps x $BATCH)"

# 2. init: BERT-style random init, token embeddings from GloVe (or random for the ablation)
$PY tools/init_compact_model.py --out "$WORK/init" --layers "$LAYERS" --hidden "$HIDDEN" --heads "$HEADS" \
    --intermediate "$INTER" --glove-init "$PRETRAIN/glove_init_$HIDDEN.npy" --seed 0
TRAIN_ARGS=(--train "$WORK/train.jsonl" --loss infonce --batch "$BATCH" --lr "$LR" --warmup "$WARMUP" --tau "$TAU"
            --max-len-query "$LQ" --max-len-doc "$LD" --seed "$SEED" --save-every 100 --keep 20 --threads "$THREADS")

# 3. train: InfoNCE with in-batch negatives, one epoch, AdamW, linear warm-up + decay, clipping 1.0
RESUME=()
[ -e "$WORK/run/latest" ] && RESUME=(--resume)
"$ET" train --model "$WORK/init" --out "$WORK/run" --log "$WORK/train_log.jsonl" "${TRAIN_ARGS[@]}" "${RESUME[@]}"

if [ "${ABLATION:-0}" = 1 ]; then
    $PY tools/init_compact_model.py --out "$WORK/init-rand" --layers "$LAYERS" --hidden "$HIDDEN" --heads "$HEADS" \
        --intermediate "$INTER" --no-glove --seed 0
    "$ET" train --model "$WORK/init-rand" --out "$WORK/run-rand" --log "$WORK/train_log_rand.jsonl" "${TRAIN_ARGS[@]}"
fi

# 4. export: F16 safetensors + sentence-transformers files (<= 12 MB), then check it loads and encodes
$PY tools/init_compact_model.py --export-from "$WORK/run" --out "$OUT" --max-seq-length 128
cp "$WORK/train_log.jsonl" "$OUT/train_log.jsonl"
echo "hello world" | "$ET" encode --model "$OUT" -q > /dev/null
size=$(stat -c %s "$OUT/model.safetensors")
[ "$size" -le 12000000 ] || { echo "train_compact.sh: $OUT/model.safetensors is $size bytes (> 12 MB)" >&2; exit 1; }

# 5. curve
$PY tools/plot_curve.py --log "$OUT/train_log.jsonl" --label "glove init" --out "$OUT/training_curve.png"

# 6. evaluation (BEIR sets + STS-B test), beside BM25
if [ -d "$EVAL" ]; then
    for s in cranfield cisi cacm; do
        "$ET" eval --model "$OUT" --data "$EVAL/$s" --threads "$THREADS" -q --json "$WORK/eval-$s.json" > /dev/null
        "$ET" eval --bm25 --data "$EVAL/$s" -q --json "$WORK/bm25-$s.json" > /dev/null
    done
    "$ET" eval --model "$OUT" --data "$EVAL/stsb/test.jsonl" --threads "$THREADS" -q --json "$WORK/eval-stsb.json" > /dev/null
    echo "train_compact.sh: evaluation JSON in $WORK/eval-*.json and $WORK/bm25-*.json"
fi
