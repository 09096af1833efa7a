#!/usr/bin/env bash
# lora_step_table.sh - step time and memory of `train` on models/compact: full fine-tuning, --freeze-embeddings and
# --lora 4 / 8 / 16 (q,v) on the same pairs (batch 16, 3 hard negatives each, documents up to the model's 128 tokens): seconds
# per optimizer step (the log's elapsed time from step 2 to the last step), peak RSS (/usr/bin/time -v), the
# parameters + gradients + AdamW state and the activations `train` plans, and the size of the saved weights.
#   bash tools/lora_step_table.sh PAIRS.jsonl [OUT]     (PAIRS: rows with "query", "positive", 3 "negatives")
#   env: CFGS="full freeze 4 8 16", THREADS=1, NICE=10. A configuration NAME-ckpt adds --checkpoint (activation
#   checkpointing; LoRA has it by default), NAME-plain adds --no-checkpoint (e.g. "full full-ckpt 8 8-plain").
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
P=$1
OUT=${2:-/tmp/lora_steps}
mkdir -p "$OUT"
for c in ${CFGS:-full freeze 4 8 16}; do
  o="$OUT/$c"
  rm -rf "$o" "$o.log"
  extra=""
  b=${c%-ckpt}; b=${b%-plain}
  [ "$b" = freeze ] && extra="--freeze-embeddings"
  [ "$b" != full ] && [ "$b" != freeze ] && extra="--lora $b"
  [ "$b" != "$c" ] && { [ "${c%-ckpt}" != "$c" ] && extra="$extra --checkpoint" || extra="$extra --no-checkpoint"; }
  /usr/bin/time -v nice -n "${NICE:-10}" "$E" train --model models/compact --train "$P" --out "$o" --batch 16 --negatives 3 \
    --epochs 1 --threads "${THREADS:-1}" --log "$o.log" $extra > /dev/null 2> "$o.err" || echo "$c failed: $(tail -c 300 "$o.err")" >&2
done
/usr/bin/python3 - "$OUT" ${CFGS:-full freeze 4 8 16} <<'PY'
import json, os, re, sys
out = sys.argv[1]
print("| training | s per step (wall) | CPU s per step (whole run) | peak RSS MiB | params+grads+AdamW MiB | planned in all MiB | saved weights |")
print("|---|---|---|---|---|---|---|")
for c in sys.argv[2:]:
    o = os.path.join(out, c)
    try:
        log = [json.loads(l) for l in open(o + ".log")]
        err = open(o + ".err").read()
    except OSError:
        print("| %s | (not run) ||||||" % c); continue
    step = (log[-1]["elapsed"] - log[0]["elapsed"]) / max(len(log) - 1, 1)
    cpu = (float(re.search(r"User time \(seconds\): ([\d.]+)", err).group(1)) +
           float(re.search(r"System time \(seconds\): ([\d.]+)", err).group(1))) / max(len(log), 1)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024
    st = re.search(r"AdamW state: ([\d.]+) MiB", err).group(1)
    pl = re.search(r"([\d.]+) MiB planned", err).group(1)
    f = os.path.join(o, "adapter_model.safetensors" if os.path.exists(os.path.join(o, "adapter_model.safetensors")) else "model.safetensors")
    size = os.path.getsize(f)
    b = c.replace("-ckpt", "").replace("-plain", "")
    name = {"full": "full fine-tuning", "freeze": "full, --freeze-embeddings"}.get(b, "LoRA r %s (q,v)" % b)
    name += " --checkpoint" if c.endswith("-ckpt") else " --no-checkpoint" if c.endswith("-plain") else ""
    if b not in ("full", "freeze") and c == b: name += " (checkpointed: the default)"
    print("| %s | %.2f | %.2f | %.0f | %s | %s | %s |" % (name, step, cpu, rss, st, pl,
          "%.1f MiB" % (size / 1048576) if size > 1048576 else "%.0f KiB" % (size / 1024)))
PY
