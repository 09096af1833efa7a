#!/usr/bin/env bash
# bench_matryoshka.sh - Matryoshka vs plain fine-tuning, held-out nDCG@10 at embedding sizes 128/64/32 (issue 17).
#
#   bash tools/bench_matryoshka.sh [DATA_ROOT] [OUT] [MODEL]
# For each of cranfield, cisi, cacm under DATA_ROOT (default ../shared/eval-data): `finetune` the model (default
# models/compact) with its defaults (infonce, the SHA-1 held-out 20 %), once plainly and once with
# --matryoshka 128,64,32 (same seed), then `eval --split test --dim 128,64,32` on each tuned folder and on the
# starting model. Prints one table row per set x training x size: dense, BM25 and hybrid (the tuned folder's
# retrieval.json) nDCG@10, and the share of the full-size dense nDCG@10 kept; JSON results stay in OUT.
set -eu
DATA=${1:-../shared/eval-data}
OUT=${2:-/tmp/et_bench_mrl}
M=${3:-models/compact}
E=${ET_EMBEDTUNE:-build/embedtune}
DIMS=${DIMS:-128,64,32}
mkdir -p "$OUT"
for s in cranfield cisi cacm; do
  for kind in start plain mrl; do
    dir="$OUT/$s-$kind"
    if [ $kind = start ]; then dir=$M
    elif [ ! -f "$dir/model.safetensors" ]; then
      X=()
      [ $kind = mrl ] && X=(--matryoshka "$DIMS")
      /usr/bin/time -f "%e s, peak RSS %M KB" -o "$OUT/$s-$kind.time" \
        "$E" finetune --model "$M" --data "$DATA/$s" --out "$dir" -q "${X[@]}" --json "$OUT/$s-$kind.ft.json" > "$OUT/$s-$kind.ft.log" 2>&1
    fi
    "$E" eval --model "$dir" --data "$DATA/$s" --split test --dim "$DIMS" -q --json "$OUT/$s-$kind.eval.json" > /dev/null
  done
done
/usr/bin/python3 - "$OUT" "$DIMS" <<'PY'
import json, os, sys
out, dims = sys.argv[1], sys.argv[2].split(",")
print("| set | model | dim | dense nDCG@10 | kept vs full dim | BM25 | hybrid | finetune time |")
print("|---|---|---|---|---|---|---|---|")
for s in ["cranfield", "cisi", "cacm"]:
    for kind in ["start", "plain", "mrl"]:
        r = json.load(open(os.path.join(out, "%s-%s.eval.json" % (s, kind))))["by_dim"]
        full = r[dims[0]]["by_mode"]["dense"]["ndcg@10"]
        t = ""
        tp = os.path.join(out, "%s-%s.time" % (s, kind))
        if os.path.exists(tp):
            t = open(tp).read().strip().splitlines()[-1]
        for d in dims:
            bm = r[d]["by_mode"]
            print("| %s | %s | %s | %.4f | %.1f %% | %.4f | %.4f | %s |" % (s, {"start": "start", "plain": "finetune", "mrl": "finetune --matryoshka"}[kind], d,
                  bm["dense"]["ndcg@10"], 100 * bm["dense"]["ndcg@10"] / full if full else float("nan"), bm["bm25"]["ndcg@10"], bm["hybrid"]["ndcg@10"], t if d == dims[0] else ""))
PY
