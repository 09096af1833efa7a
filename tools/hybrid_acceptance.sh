#!/usr/bin/env bash
# hybrid_acceptance.sh - issue 13's acceptance table: `embedtune finetune --model MODEL --data SET` with no other
# setting on cranfield, cisi and cacm (held-out queries of the data-formats split), then STS-B test Spearman of each
# tuned model, and one table: BM25, dense before/after, the saved (learned) hybrid, hybrid - BM25, STS-B, the
# zero-shot hybrid (default fusion) vs BM25, the kept step and the weight-space mix factor.
# usage: tools/hybrid_acceptance.sh [EMBEDTUNE] [MODEL] [OUT_ROOT]
#   defaults build/embedtune, models/compact, /tmp/hybrid-acceptance; env SETS (default "cranfield cisi cacm"),
#   EVAL_DATA (default ../shared/eval-data beside the checkout, else /work/shared/eval-data), NICE (default 10).
set -u
ET=${1:-build/embedtune}
MODEL=${2:-models/compact}
ROOT=${3:-/tmp/hybrid-acceptance}
SETS=${SETS:-"cranfield cisi cacm"}
EVAL_DATA=${EVAL_DATA:-$( [ -d ../shared/eval-data ] && echo ../shared/eval-data || echo /work/shared/eval-data )}
NICE=${NICE:-10}
mkdir -p "$ROOT"
"$ET" eval --model "$MODEL" --data "$EVAL_DATA/stsb/test.jsonl" --json "$ROOT/start-stsb.json" -q > /dev/null || exit 1
for s in $SETS; do
  [ -s "$ROOT/$s.json" ] && { echo "skip $s (done)"; continue; }
  echo "=== $s $(date -u +%H:%M:%S)"
  nice -n "$NICE" "$ET" finetune --model "$MODEL" --data "$EVAL_DATA/$s" --out "$ROOT/$s" --json "$ROOT/$s.json" > "$ROOT/$s.log" 2>&1 \
    || { echo "finetune $s failed:"; tail -3 "$ROOT/$s.log"; rm -f "$ROOT/$s.json"; continue; }
  nice -n "$NICE" "$ET" eval --model "$ROOT/$s" --data "$EVAL_DATA/stsb/test.jsonl" --json "$ROOT/$s-stsb.json" -q > /dev/null
done
python3 - "$ROOT" $SETS <<'PY'
import json, os, sys
root, sets = sys.argv[1], sys.argv[2:]
st0 = json.load(open(os.path.join(root, "start-stsb.json")))["metrics"]["spearman"]
print(f"\nheld-out nDCG@10; STS-B test Spearman of the starting model {st0:.2f}\n")
print("| set (held-out queries) | BM25 | dense before -> after | hybrid, learned (the saved default) | hybrid - BM25 | STS-B | zero-shot hybrid (default fusion) vs BM25 | kept step / mix factor |")
print("|---|---|---|---|---|---|---|---|")
gain = []
for s in sets:
    f = os.path.join(root, s + ".json")
    if not os.path.exists(f): print(f"| {s} | not run |"); continue
    j = json.load(open(f)); h = j["hybrid"]["after"]; hb = j["hybrid"]["before"]
    sf = os.path.join(root, s + "-stsb.json")
    sts = json.load(open(sf))["metrics"]["spearman"] if os.path.exists(sf) else float("nan")
    bm = h["bm25"]["ndcg@10"]; hl = h["hybrid_learned"]["ndcg@10"]
    gain.append(j["after"]["ndcg@10"] - j["before"]["ndcg@10"])
    mix = j.get("weight_mix", {}).get("kept", "-")
    print(f"| {s} ({j['counts']['test']}) | {bm:.4f} | {j['before']['ndcg@10']:.4f} -> {j['after']['ndcg@10']:.4f} | {hl:.4f} "
          f"({h['learned_fusion']}; {h['how']}) | {hl - bm:+.4f} | {sts:.2f} | {hb['hybrid_default']['ndcg@10']:.4f} vs "
          f"{hb['bm25']['ndcg@10']:.4f} | {j.get('best_dev_step', '-')} / {mix} |")
if gain: print(f"\nmean dense gain {sum(gain) / len(gain):+.4f}")
PY
