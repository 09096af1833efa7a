#!/usr/bin/env bash
# lora_table.sh - issue 17's LoRA table: `finetune` with its defaults on models/compact, full fine-tuning against
# --lora 4 / 8 / 16, on each set's held-out 20 % (the docs/data-formats.md split). Per run: held-out nDCG@10 dense and
# hybrid (the learned fusion that finetune writes to retrieval.json, and the default fusion), the learning rate the
# defaults chose, steps, training seconds per step (finetune's training phase: steps, dev evaluations and ANCE
# refreshes), peak RSS (/usr/bin/time -v), the parameters + gradients + AdamW state finetune reports, and the size of
# the saved weights (model.safetensors, or adapter_model.safetensors with LoRA).
#   bash tools/lora_table.sh [OUT]      env: SETS="cranfield cisi cacm", CFGS="full 4 8 16", DATA=../shared/eval-data,
#                                            EXTRA="" (more finetune options), NICE=10, THREADS=2
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
OUT=${1:-/tmp/lora_table}
SETS=${SETS:-"cranfield cisi cacm"}
CFGS=${CFGS:-"full 4 8 16"}
DATA=${DATA:-../shared/eval-data}
EXTRA=${EXTRA:-}
mkdir -p "$OUT"
for s in $SETS; do
  for c in $CFGS; do
    o="$OUT/$s-$c"
    [ -f "$o.json" ] && continue   # done before (delete it to rerun)
    rm -rf "$o"
    lora=""
    [ "$c" != full ] && lora="--lora $c"
    echo "$(date +%T) $s $c" >&2
    /usr/bin/time -v nice -n "${NICE:-10}" "$E" finetune --model models/compact --data "$DATA/$s" --out "$o" $lora \
      --threads "${THREADS:-2}" $EXTRA --json "$o.json.tmp" > "$o.txt" 2> "$o.err" && mv "$o.json.tmp" "$o.json"
  done
done
/usr/bin/python3 - "$OUT" $SETS -- $CFGS <<'PY'
import json, os, re, sys
out = sys.argv[1]
i = sys.argv.index("--")
sets, cfgs = sys.argv[2:i], sys.argv[i + 1:]
print("| set | training | lr | steps | dense nDCG@10 (start) | hybrid learned / default nDCG@10 | s per step | peak RSS MiB | "
      "params+grads+AdamW MiB | saved weights |")
print("|---|---|---|---|---|---|---|---|---|---|")
for s in sets:
    for c in cfgs:
        o = os.path.join(out, "%s-%s" % (s, c))
        if not os.path.exists(o + ".json"):
            print("| %s | %s | (not run) |||||||" % (s, c))
            continue
        j = json.load(open(o + ".json"))
        txt, err = open(o + ".txt").read(), open(o + ".err").read()
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024
        st = re.search(r"parameters \+ gradients \+ AdamW state: ([\d.]+) MiB", err)
        tr = re.search(r"(\d+) steps, \d+ examples, ([\d.]+) s training", txt)
        steps, secs = int(tr.group(1)), float(tr.group(2))
        f = os.path.join(o, "model.safetensors" if c == "full" else "adapter_model.safetensors")
        size = os.path.getsize(f) if os.path.exists(f) else float("nan")
        h = j.get("hybrid", {}).get("after", {})
        print("| %s | %s | %.3g | %d | %.4f (%.4f) | %.4f / %.4f | %.2f | %.0f | %s | %s |" % (
            s, "full" if c == "full" else "LoRA r %s" % c, j["settings"]["lr"], steps, j["after"]["ndcg@10"],
            j["before"]["ndcg@10"], h.get("hybrid_learned", {}).get("ndcg@10", float("nan")),
            h.get("hybrid_default", {}).get("ndcg@10", float("nan")), secs / max(steps, 1), rss,
            st.group(1) if st else "?", "%.1f MiB" % (size / 1048576) if size > 1048576 else "%.0f KiB" % (size / 1024)))
PY
