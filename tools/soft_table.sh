#!/usr/bin/env bash
# soft_table.sh - issue 20 item 4: `embedtune finetune` at its DEFAULTS (nothing but the loss given) on the held-out
# 20 % of BEIR sets, every loss, plus the tuned model's STS-B test Spearman. One TSV row per run.
# usage: tools/soft_table.sh OUT_DIR "SETS" "LOSSES" [more finetune options]
#   e.g. tools/soft_table.sh /tmp/soft-table "cranfield cacm cisi" "soft1 soft2 soft3 mse infonce clp"
# Env: ET (default build/embedtune), MODEL (default models/compact), EVAL_DATA (default /work/shared/eval-data),
#      THREADS (default 2), NICE (default 10). Rows are appended to OUT_DIR/table.tsv (columns: set, loss, nDCG@10
#      before, after, MAP@10, AUPRC, anisotropy before, after, STS-B Spearman after, kept dev step, steps run,
#      stop reason); the tuned models are deleted. `--print` as the only argument after OUT_DIR prints the table
#      as markdown. Needs python3 for the JSON.
set -u
OUT=$1; shift
ET=${ET:-build/embedtune}
MODEL=${MODEL:-models/compact}
EVAL_DATA=${EVAL_DATA:-/work/shared/eval-data}
THREADS=${THREADS:-2}
NICE=${NICE:-10}
mkdir -p "$OUT"
if [ "${1:-}" = --print ]; then
  python3 - "$OUT/table.tsv" <<'PY'
import sys
print("| set | loss | nDCG@10 | MAP@10 | AUPRC | anisotropy | STS-B | kept dev step / steps run |")
print("|---|---|---|---|---|---|---|---|")
seen = set()
for l in open(sys.argv[1]):
    f = l.rstrip("\n").split("\t")
    if len(f) < 12:
        print("| %s | %s | FAILED: %s | | | | | |" % (f[0], f[1], " ".join(f[2:])[:200])); continue
    if f[0] not in seen:
        seen.add(f[0])
        print("| %s | before | %s | | | %s | (starting model) | |" % (f[0], f[2], f[6]))
    print("| %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (f[0], f[1], f[3], f[4], f[5], f[7], f[8], f[9], f[10]))
PY
  exit 0
fi
SETS=$1; LOSSES=$2; shift 2
for set in $SETS; do for loss in $LOSSES; do
  m="$OUT/model-$set-$loss" j="$OUT/$set-$loss.json" log="$OUT/$set-$loss.log"
  nice -n "$NICE" "$ET" finetune --model "$MODEL" --data "$EVAL_DATA/$set" --loss "$loss" --out "$m" --threads "$THREADS" \
      --json "$j" "$@" > "$log" 2>&1
  rc=$? sp=nan
  if [ $rc -eq 0 ]; then
    nice -n "$NICE" "$ET" eval --model "$m" --data "$EVAL_DATA/stsb/test.jsonl" --json "$m.sts.json" -q --threads "$THREADS" \
        > /dev/null 2>&1 && sp=$(python3 -c "import json,sys;print('%.2f' % json.load(open(sys.argv[1]))['metrics']['spearman'])" "$m.sts.json")
  fi
  python3 - "$set" "$loss" "$j" "$rc" "$log" "$sp" >> "$OUT/table.tsv" <<'PY'
import json, sys
name, loss, js, rc, log, sp = sys.argv[1:]
try:
    d = json.load(open(js)); b = d["before"]; a = d["after"]
    kept = d.get("best_dev_step", "-")
    print("\t".join(str(x) for x in [name, loss, "%.4f" % b["ndcg@10"], "%.4f" % a["ndcg@10"], "%.4f" % a["map@10"],
          "%.4f" % a["auprc"], "%.4f" % b["anisotropy"], "%.4f" % a["anisotropy"], sp, kept, d["counts"]["steps"],
          d["stop_reason"]]))
except Exception as e:
    err = [l for l in open(log).read().replace("\r", "\n").split("\n") if "error" in l]
    print("\t".join([name, loss, "rc=" + rc, (err[-1][:400] if err else str(e))]))
PY
  rm -rf "$m"
done; done
