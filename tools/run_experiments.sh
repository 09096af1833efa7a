#!/usr/bin/env bash
# run_experiments.sh - issue 4 item 6: `embedtune finetune` on the real sets, every loss, before/after.
# usage: tools/run_experiments.sh [EMBEDTUNE] [MODEL_DIR] [OUT_ROOT]
#   EMBEDTUNE default build/embedtune, MODEL_DIR default models/glove-bert-starter, OUT_ROOT /work/experiments
# Env: SETS (default "cranfield cacm cisi stsb"), LOSSES (default "infonce mse soft1 soft2 soft3 clp"),
#      EVAL_DATA (default /work/shared/eval-data), EXTRA (more finetune options for every run),
#      EPOCHS, LR, NEG_ANCE, NEG_PAIRWISE override the defaults below;
#      TAG (results go to OUT_ROOT/<model>-TAG instead, for a variant of the settings).
# Each run writes OUT_ROOT/<model>/<set>-<loss>.json (+ .log); tuned models go to a scratch folder and are
# deleted (KEEP_MODELS=1 keeps them). Then a summary table of every run is printed (tools: python3).
set -u
ET=${1:-build/embedtune}
MODEL=${2:-models/glove-bert-starter}
ROOT=${3:-/work/experiments}
EVAL_DATA=${EVAL_DATA:-/work/shared/eval-data}
SETS=${SETS:-"cranfield cacm cisi stsb"}
LOSSES=${LOSSES:-"infonce mse soft1 soft2 soft3 clp"}
EXTRA=${EXTRA:-}
# short runs (the machine is shared): 1 epoch, 128 tokens, 3 ANCE negatives (2 sampled per positive for
# the pairwise losses), lr 5e-5, batch 16
COMMON="--epochs ${EPOCHS:-1} --max-len 128 --batch 16 --lr ${LR:-5e-5} --seed 42"
name=$(basename "$MODEL")
OUT="$ROOT/$name${TAG:+-$TAG}"
mkdir -p "$OUT"
for set in $SETS; do
  for loss in $LOSSES; do
    case $loss in mse|soft*) neg=${NEG_PAIRWISE:-2} ;; *) neg=${NEG_ANCE:-3} ;; esac
    if [ "$set" = stsb ]; then
      data=(--data "$EVAL_DATA/stsb/train.jsonl" --eval "$EVAL_DATA/stsb/test.jsonl" --pos-threshold 0.8)
    else
      data=(--data "$EVAL_DATA/$set")
    fi
    j="$OUT/$set-$loss.json"
    [ -s "$j" ] && { echo "skip $set $loss (done)"; continue; }
    m=$(mktemp -d /tmp/ft-exp.XXXXXX)
    echo "=== $name $set $loss  $(date -u +%H:%M:%S)"
    t0=$(date +%s)
    "$ET" finetune --model "$MODEL" "${data[@]}" --out "$m" --loss "$loss" --negatives $neg $COMMON $EXTRA \
        --json "$j" -q > "$OUT/$set-$loss.log" 2>&1
    rc=$?
    echo "    rc=$rc  $(( $(date +%s) - t0 )) s"
    [ $rc -ne 0 ] && { tail -3 "$OUT/$set-$loss.log"; rm -f "$j"; }
    [ "${KEEP_MODELS:-0}" = 1 ] && echo "    model: $m" || rm -rf "$m"
  done
done
python3 - "$OUT" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
runs = {}
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    r = json.load(open(f)); s, l = os.path.basename(f)[:-5].rsplit("-", 1); runs.setdefault(s, {})[l] = r
order = ["infonce", "mse", "soft1", "soft2", "soft3", "clp"]
for s, rr in runs.items():
    any_r = next(iter(rr.values()))
    keys = list(any_r["before"].keys())
    print(f"\n### {s} ({os.path.basename(out)}; {any_r['counts']['train']} train / {any_r['counts']['test']} held-out)\n")
    print("| metric | BM25 | before | " + " | ".join(l for l in order if l in rr) + " |")
    print("|---|---|---|" + "---|" * sum(l in rr for l in order))
    for k in keys:
        bm = any_r.get("bm25", {}).get(k)
        row = [k, "-" if bm is None else f"{bm:.4f}", "-" if any_r["before"][k] is None else f"{any_r['before'][k]:.4f}"]
        for l in order:
            if l in rr:
                v = rr[l]["after"].get(k)
                row.append("-" if v is None else f"{v:.4f}")
        print("| " + " | ".join(row) + " |")
    print("| train s | | | " + " | ".join(f"{rr[l]['seconds']['train']:.0f}" for l in order if l in rr) + " |")
PY
