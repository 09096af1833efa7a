#!/usr/bin/env bash
# lora_step_table.sh - step time and memory of `train` on models/compact: full fine-tuning, --freeze-embeddings and
# --lora 4 / 8 / 16 (q,v) on the same pairs (batch 16, 3 hard negatives each, documents up to 256 tokens): seconds
# per optimizer step (the log's elapsed time from step 2 to the last step), peak RSS (/usr/bin/time -v), the
# parameters + gradients + AdamW state and the activations `train` plans, and the size of the saved weights.
#   bash tools/lora_step_table.sh PAIRS.jsonl [OUT]     (PAIRS: rows with "query", "positive", 3 "negatives")
#   env: CFGS="full freeze 4 8 16", THREADS=1, NICE=10
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
P=$1
OUT=${2:-/tmp/lora_steps}
mkdir -p "$OUT"
for c in ${CFGS:-full freeze 4 8 16}; do
  o="$OUT/$c"
  rm -rf "$o" "$o.log"
  extra=""
  [ "$c" = freeze ] && extra="--freeze-embeddings"
  [ "$c" != full ] && [ "$c" != freeze ] && extra="--lora $c"
  /usr/bin/time -v nice -n "${NICE:-10}" "$E" train --model models/compact --train "$P" --out "$o" --batch 16 --negatives 3 \
    --epochs 1 --threads "${THREADS:-1}" --log "$o.log" $extra > /dev/null 2> "$o.err" || echo "$c failed: $(tail -c 300 "$o.err")" >&2
done
/usr/bin/python3 - "$OUT" ${CFGS:-full freeze 4 8 16} <<'PY'
import json, os, re, sys
out = sys.argv[1]
print("| training | s per step | peak RSS MiB | params+grads+AdamW MiB | planned in all MiB | saved weights |")
print("|---|---|---|---|---|---|")
for c in sys.argv[2:]:
    o = os.path.join(out, c)
    try:
        log = [json.loads(l) for l in open(o + ".log")]
        err = open(o + ".err").read()
    except OSError:
        print("| %s | (not run) |||||" % c); continue
    step = (log[-1]["elapsed"] - log[0]["elapsed"]) / max(len(log) - 1, 1)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024
    st = re.search(r"AdamW state: ([\d.]+) MiB", err).group(1)
    pl = re.search(r"([\d.]+) MiB planned", err).group(1)
    f = os.path.join(o, "adapter_model.safetensors" if os.path.exists(os.path.join(o, "adapter_model.safetensors")) else "model.safetensors")
    size = os.path.getsize(f)
    name = {"full": "full fine-tuning", "freeze": "full, --freeze-embeddings"}.get(c, "LoRA r %s (q,v)" % c)
    print("| %s | %.2f | %.0f | %s | %s | %s |" % (name, step, rss, st, pl,
          "%.1f MiB" % (size / 1048576) if size > 1048576 else "%.0f KiB" % (size / 1024)))
PY
