#!/usr/bin/env bash
# The full, reproducible recipe of embedtune's bundled compact model (models/compact/):
#   data -> init -> train (embedtune's own trainer) -> export (F16) -> curve -> evaluation.
#
# Usage (from the repository root, after building the CLI):
#   tools/train_compact.sh                        # everything, the settings models/compact was made with
#   ET=build/embedtune WORK=/tmp/compact STEPS=1000 BATCH=64 tools/train_compact.sh
#   ABLATION=1 tools/train_compact.sh             # also the random-token-embedding run (same data, same order)
#   FINETUNE=1 tools/train_compact.sh             # also fine-tune on each eval set's 80 % split, eval on the 20 %
# Environment (defaults = the released model):
#   ET        embedtune binary                              (build/embedtune)
#   PRETRAIN  folder of pairs.jsonl / dev.jsonl / glove_init_128.npy  (/work/pretrain; built here if missing)
#   WORK      scratch folder for the init model, run folder, logs     (/work/compact)
#   OUT       final model folder                            (models/compact)
#   EVAL      BEIR eval-data folder                         (../shared/eval-data)
#   LAYERS HIDDEN HEADS INTER   architecture                (3 128 4 512)
#   STEPS BATCH LR WARMUP TAU LQ LD SEED THREADS                (1000 64 1e-3 0.05 0.05 32 128 42 2)
#   P2_STEPS P2_LR            phase 2 (BM25 hard negatives); P2_STEPS=0 skips it      (160 3e-4)
#   P3_STEPS P3_STOP P3_LR P3_POOL  phase 3 (issue 13): from phase 2's F16 export, a fresh AdamW, a schedule of
#                             P3_STEPS steps over the next lines (BM25 hard negatives mined within P3_POOL lines), stopped
#                             at its checkpoint P3_STOP; P3_STOP=0 skips phases 3 and 4     (800 0 3e-4 76800)
#                             The issue-13 experiment was P3_STOP=200; it did not beat the released model, which
#                             is phases 1-2 (models/README.md, "Continued training")
#   P4_STEPS P4_LR            phase 4: from that checkpoint, a fresh AdamW decaying to 0 over the next P4_STEPS*BATCH
#                             mined lines                                                   (160 2.4e-4)
# Phase 1 uses the first STEPS*BATCH lines of the (already shuffled) pairs.jsonl: one epoch, each pair seen once.
# Phase 2 continues from phase 1 on the next P2_STEPS*BATCH lines, each with one BM25-mined hard negative
# (`embedtune score --bm25 --negatives 1 --neg-mode hard`: the best BM25 passage of the chunk that is not the positive).
# Phase 3 continues from the F16 export of phase 2 (the model released before issue 13; its F32 weights and optimizer
# state were not kept, so AdamW starts fresh) on the lines after phase 2's, again with one BM25 hard negative each.
# The machine was too busy for the planned 800 steps (4-10 s/step at load 10-21), so the run was cut at its
# checkpoint 200 (the script stops it there: runs are bit-identical at any thread count, so that checkpoint is
# reproducible) and phase 4 anneals from it: 160 more steps, lr 2.4e-4 (phase 3's at step 200) decaying to 0.
# Needs: python3 (stdlib) for the data, /usr/bin/python3 with numpy for init/export, matplotlib for the curve.
set -euo pipefail
cd "$(dirname "$0")/.."

ET=${ET:-build/embedtune}
PRETRAIN=${PRETRAIN:-/work/pretrain}
WORK=${WORK:-/work/compact}
OUT=${OUT:-models/compact}
EVAL=${EVAL:-../shared/eval-data}
LAYERS=${LAYERS:-3} HIDDEN=${HIDDEN:-128} HEADS=${HEADS:-4} INTER=${INTER:-512}
P2_STEPS=${P2_STEPS:-160} P2_LR=${P2_LR:-3e-4}
P3_STEPS=${P3_STEPS:-800} P3_STOP=${P3_STOP:-0} P3_LR=${P3_LR:-3e-4} P3_POOL=${P3_POOL:-76800}
P4_STEPS=${P4_STEPS:-160} P4_LR=${P4_LR:-2.4e-4}
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

# IN (pairs) -> OUT ({"query","positive","negatives":[1 passage]}): each query's best BM25 passage of IN that is not
# its positive (`embedtune score --bm25 --negatives 1 --neg-mode hard`)
hard_negatives() {
    "$ET" score --in "$1" --out "$1.scored" --bm25 --negatives 1 --neg-mode hard --threads 1 -q
    $PY - "$1.scored" "$2" <<'EOF'
import json, sys
out, cur = [], None
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    if r["label"] == 1:
        cur = {"query": r["query"], "positive": r["passage"], "negatives": []}
        out.append(cur)
    else:
        cur["negatives"].append(r["passage"])
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for o in out:
        if len(o["negatives"]) == 1:
            f.write(json.dumps(o) + "\n")
EOF
}

# 3b. phase 2: BM25 hard negatives on the next chunk of pairs, lower learning rate
FINAL="$WORK/run"
cp "$WORK/train_log.jsonl" "$WORK/train_log_all.jsonl"
if [ "$P2_STEPS" -gt 0 ]; then
    sed -n "$((N + 1)),$((N + P2_STEPS * BATCH))p" "$PRETRAIN/pairs.jsonl" > "$WORK/p2.jsonl"
    hard_negatives "$WORK/p2.jsonl" "$WORK/p2-neg.jsonl"
    RESUME=()
    [ -e "$WORK/run2/latest" ] && RESUME=(--resume)
    "$ET" train --model "$WORK/run" --out "$WORK/run2" --log "$WORK/train_log_p2.jsonl" --train "$WORK/p2-neg.jsonl" \
        --loss infonce --negatives 1 --batch "$BATCH" --lr "$P2_LR" --warmup 0.1 --tau "$TAU" --max-len-query "$LQ" \
        --max-len-doc "$LD" --seed "$SEED" --save-every 50 --keep 20 --threads "$THREADS" "${RESUME[@]}"
    # one log for both phases: phase-2 steps continue the step count and carry "phase": 2
    $PY - "$WORK/train_log_p2.jsonl" "$STEPS" >> "$WORK/train_log_all.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "step" in r:
        r["step"] += int(sys.argv[2])
    r["phase"] = 2
    print(json.dumps(r))
EOF
    FINAL="$WORK/run2"
fi

# 3c. phase 3 (issue 13): from phase 2's F16 export (what was released before), a fresh AdamW, the next P3_POOL lines
#     with BM25 hard negatives mined within them; a P3_STEPS-step schedule stopped at its checkpoint P3_STOP
# 3d. phase 4: from that checkpoint, a fresh AdamW, P4_STEPS steps on the following mined lines, lr decaying to 0
if [ "$P3_STOP" -gt 0 ]; then
    $PY tools/init_compact_model.py --export-from "$FINAL" --out "$WORK/export2" --max-seq-length 128
    N3=$((N + P2_STEPS * BATCH))
    sed -n "$((N3 + 1)),$((N3 + P3_POOL))p" "$PRETRAIN/pairs.jsonl" > "$WORK/p3.jsonl"
    hard_negatives "$WORK/p3.jsonl" "$WORK/p3-pool-neg.jsonl"
    head -n "$((P3_STEPS * BATCH))" "$WORK/p3-pool-neg.jsonl" > "$WORK/p3-neg.jsonl"
    CK=$(printf 'checkpoint-%07d' "$P3_STOP")
    if [ ! -e "$WORK/run3/$CK/trainer_state.json" ]; then
        RESUME=()
        [ -e "$WORK/run3/latest" ] && RESUME=(--resume)
        "$ET" train --model "$WORK/export2" --out "$WORK/run3" --log "$WORK/train_log_p3.jsonl" --train "$WORK/p3-neg.jsonl" \
            --loss infonce --negatives 1 --batch "$BATCH" --lr "$P3_LR" --warmup 0.05 --tau "$TAU" --max-len-query "$LQ" \
            --max-len-doc "$LD" --seed "$SEED" --save-every 50 --keep 40 --threads "$THREADS" "${RESUME[@]}" &
        P3PID=$!
        until [ "$(cat "$WORK/run3/latest" 2>/dev/null)" = "$CK" ] || ! kill -0 "$P3PID" 2>/dev/null; do sleep 2; done
        kill "$P3PID" 2>/dev/null || true
        wait "$P3PID" || true
    fi
    [ -e "$WORK/run3/$CK/trainer_state.json" ] || { echo "train_compact.sh: phase 3 has no $CK" >&2; exit 1; }
    sed -n "$((P3_STOP * BATCH + 1)),$(((P3_STOP + P4_STEPS) * BATCH))p" "$WORK/p3-neg.jsonl" > "$WORK/p4-neg.jsonl"
    RESUME=()
    [ -e "$WORK/run4/latest" ] && RESUME=(--resume)
    "$ET" train --model "$WORK/run3/$CK" --out "$WORK/run4" --log "$WORK/train_log_p4.jsonl" --train "$WORK/p4-neg.jsonl" \
        --loss infonce --negatives 1 --batch "$BATCH" --lr "$P4_LR" --warmup 0.05 --tau "$TAU" --max-len-query "$LQ" \
        --max-len-doc "$LD" --seed "$SEED" --save-every 40 --keep 4 --threads "$THREADS" "${RESUME[@]}"
    # the one log: phase 3 up to its checkpoint, then phase 4, steps continuing the count
    $PY - "$WORK/train_log_p3.jsonl" "$WORK/train_log_p4.jsonl" "$((STEPS + P2_STEPS))" "$P3_STOP" >> "$WORK/train_log_all.jsonl" <<'EOF'
import json, sys
base, stop = int(sys.argv[3]), int(sys.argv[4])
for path, phase, off in ((sys.argv[1], 3, base), (sys.argv[2], 4, base + stop)):
    for line in open(path):
        r = json.loads(line)
        if "step" not in r or (phase == 3 and r["step"] > stop):
            continue
        r["step"] += off
        r["phase"] = phase
        print(json.dumps(r))
EOF
    FINAL="$WORK/run4"
fi

# 4. export: F16 safetensors + sentence-transformers files (<= 12 MB), then check it loads and encodes
$PY tools/init_compact_model.py --export-from "$FINAL" --out "$OUT" --max-seq-length 128
cp "$WORK/train_log_all.jsonl" "$OUT/train_log.jsonl"
echo "hello world" | "$ET" encode --model "$OUT" -q > /dev/null
size=$(stat -c %s "$OUT/model.safetensors")
[ "$size" -le 12000000 ] || { echo "train_compact.sh: $OUT/model.safetensors is $size bytes (> 12 MB)" >&2; exit 1; }

# 5. curve
$PY tools/plot_curve.py --log "$OUT/train_log.jsonl" --label "InfoNCE (phases 2-4 from step $((STEPS + 1)): + BM25 hard negative)" --out "$OUT/training_curve.png"

# 6. evaluation (BEIR sets + STS-B test), beside BM25
if [ -d "$EVAL" ]; then
    for s in cranfield cisi cacm; do
        "$ET" eval --model "$OUT" --data "$EVAL/$s" --threads "$THREADS" -q --json "$WORK/eval-$s.json" > /dev/null
        "$ET" eval --bm25 --data "$EVAL/$s" -q --json "$WORK/bm25-$s.json" > /dev/null
    done
    "$ET" eval --model "$OUT" --data "$EVAL/stsb/test.jsonl" --threads "$THREADS" -q --json "$WORK/eval-stsb.json" > /dev/null
    echo "train_compact.sh: evaluation JSON in $WORK/eval-*.json and $WORK/bm25-*.json"
fi

# 7. optional (FINETUNE=1): in-domain gain. Fine-tune on each set's train queries (the SHA-1 split of docs/data-formats.md: a query is
#    test iff int(sha1(id)[:8], 16) % 100 >= 80), one pair per judged (query, relevant doc), 2 epochs, lr 1e-4;
#    evaluate base and fine-tuned models on the held-out test queries against the full corpus.
if [ "${FINETUNE:-0}" = 1 ] && [ -d "$EVAL" ]; then
    for s in cranfield cisi cacm; do
        $PY - "$EVAL/$s" "$WORK/ft-$s-train.jsonl" <<'EOF'
import hashlib, json, random, sys
d, out = sys.argv[1], sys.argv[2]
docs = {}
for l in open(d + "/corpus.jsonl", encoding="utf-8"):
    r = json.loads(l)
    docs[r["_id"]] = (r.get("title", "") + " " + r.get("text", "")).strip()
qs = {}
for l in open(d + "/queries.jsonl", encoding="utf-8"):
    r = json.loads(l)
    qs[r["_id"]] = r["text"]
rows = []
for i, l in enumerate(open(d + "/qrels.tsv", encoding="utf-8")):
    if i == 0:
        continue
    q, c, sc = l.rstrip("\n").split("\t")
    if float(sc) <= 0 or int(hashlib.sha1(q.encode()).hexdigest()[:8], 16) % 100 >= 80:
        continue
    if q in qs and docs.get(c):
        rows.append({"query": qs[q], "positive": docs[c]})
random.Random(0).shuffle(rows)
with open(out, "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
EOF
        "$ET" train --model "$OUT" --train "$WORK/ft-$s-train.jsonl" --out "$WORK/ft-$s" --batch 32 --lr 1e-4 --epochs 2 \
            --warmup 0.1 --max-len-query "$LQ" --max-len-doc "$LD" --seed "$SEED" --threads "$THREADS" -q
        "$ET" eval --model "$OUT" --split test --data "$EVAL/$s" --threads "$THREADS" -q --json "$WORK/base20-$s.json" > /dev/null
        "$ET" eval --model "$WORK/ft-$s" --split test --data "$EVAL/$s" --threads "$THREADS" -q --json "$WORK/ft20-$s.json" > /dev/null
    done
fi
