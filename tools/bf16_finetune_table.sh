#!/usr/bin/env bash
# bf16_finetune_table.sh - the fine-tuning table of --precision bf16 vs fp32 (issue 15, item 2): `finetune` with
# its defaults on cranfield, cisi and cacm (models/compact), once per precision, and the held-out nDCG@10 of
# the tuned model (dense), BM25 and the learned hybrid, with the training seconds. The acceptance is
# |bf16 - fp32| <= 0.005 in held-out dense nDCG@10 on every set.
#
# usage: tools/bf16_finetune_table.sh [--bin build/embedtune] [--out DIR] [--threads 2] [--sets "cranfield cisi cacm"]
# env:   ET_EVAL_DATA (default /work/shared/eval-data, BEIR folders)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/embedtune
OUT=/tmp/et-bf16-finetune
THREADS=2
SETS="cranfield cisi cacm"
DATA=${ET_EVAL_DATA:-/work/shared/eval-data}
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --sets) SETS=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bf16_finetune_table.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
for s in $SETS; do
  for p in fp32 bf16; do
    rm -rf "$OUT/$s-$p"
    echo "== $s $p" >&2
    "$BIN" finetune --model "$ROOT/models/compact" --data "$DATA/$s" --out "$OUT/$s-$p" --precision $p \
      --threads "$THREADS" --json "$OUT/$s-$p.json" -q > "$OUT/$s-$p.txt"
  done
done
/usr/bin/python3 - "$OUT" $SETS <<'PY'
import json, sys
out, sets = sys.argv[1], sys.argv[2:]
print("| set | held-out queries | BM25 | dense before | dense fp32 | dense bf16 | bf16 - fp32 | hybrid fp32 | hybrid bf16 | train s fp32 | train s bf16 |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
worst = 0.0
for s in sets:
    r = {p: json.load(open(f"{out}/{s}-{p}.json")) for p in ("fp32", "bf16")}
    d = {p: r[p]["after"]["ndcg@10"] for p in r}
    h = {p: r[p].get("hybrid", {}).get("after", {}).get("hybrid_learned", {}).get("ndcg@10", float("nan")) for p in r}
    assert r["bf16"]["settings"]["precision"] == "bf16" and r["fp32"]["settings"]["precision"] == "fp32"
    worst = max(worst, abs(d["bf16"] - d["fp32"]))
    print(f"| {s} | {int(r['fp32']['counts']['test'])} | {r['fp32']['bm25']['ndcg@10']:.4f} | {r['fp32']['before']['ndcg@10']:.4f} | "
          f"{d['fp32']:.4f} | {d['bf16']:.4f} | {d['bf16'] - d['fp32']:+.4f} | {h['fp32']:.4f} | {h['bf16']:.4f} | "
          f"{r['fp32']['seconds']['train']:.1f} | {r['bf16']['seconds']['train']:.1f} |")
print(f"\nworst |bf16 - fp32| held-out dense nDCG@10: {worst:.4f} ({'within' if worst <= 0.005 else 'NOT within'} 0.005)")
PY
