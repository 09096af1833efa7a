#!/usr/bin/env bash
# cli_determinism.sh - same seed, same bits (README "Reproducibility"): for every loss (infonce, mse,
# soft1-3, clp), dense and MoE (2 experts, router jitter), dropout on, two uninterrupted
# `embedtune train` runs at --threads 2 must write byte-identical model.safetensors (cmp), and a
# third run at another thread count (1, 3, 4 or 8, in turn) must too: the reductions do not depend on
# which thread does what, nor on how many threads there are. Then `encode` at 1, 2 and 5 threads
# must write identical embeddings. The compact model (C=128, I=512, 3 layers) at 8 x 32 tokens is
# large enough for every kernel to split its work over the threads (the GEMMs, the LayerNorm,
# bias and attention backward); 4 optimizer steps per run keep the test short.
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_det.XXXXXX)
trap 'rm -rf "$T"' EXIT
M=models/compact
fail=0
# 32 rows with every field a loss may need (negatives, negative_queries, label, expert scores)
/usr/bin/python3 - tests/fixtures/train/debian_pairs.jsonl > "$T/d.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])][:32]
n = len(rows)
for i, r in enumerate(rows):
    print(json.dumps({"query": r["query"], "positive": r["positive"], "negatives": [rows[(i + 7) % n]["positive"]],
                      "negative_queries": [rows[(i + 13) % n]["query"]], "label": (i % 4) / 3,
                      "scores": [(i * 37 % 11) / 10, (i * 17 % 7) / 6]}))
PY
ARGS=(--model $M --train "$T/d.jsonl" --epochs 1 --batch 8 --max-len 32 --seed 5 -q)
other=(1 3 4 8)
k=0
for loss in infonce mse soft1 soft2 soft3 clp; do
  for moe in dense moe; do
    X=()
    [ $moe = moe ] && X=(--moe-experts 2 --moe-jitter 0.1)
    t3=${other[$((k % 4))]}
    k=$((k + 1))
    tag="$loss/$moe"
    for r in a b c; do
      th=2; [ $r = c ] && th=$t3
      if ! "$E" train "${ARGS[@]}" --loss $loss "${X[@]}" --threads $th --out "$T/$loss-$moe-$r" 2> "$T/err"; then
        echo "FAIL [$tag]: run $r: $(tail -c 300 "$T/err")"; fail=1; continue 2
      fi
    done
    if ! cmp -s "$T/$loss-$moe-a/model.safetensors" "$T/$loss-$moe-b/model.safetensors"; then
      echo "FAIL [$tag]: two runs at --threads 2 differ"; fail=1
    elif ! cmp -s "$T/$loss-$moe-a/model.safetensors" "$T/$loss-$moe-c/model.safetensors"; then
      echo "FAIL [$tag]: --threads $t3 differs from --threads 2"; fail=1
    else
      echo "ok [$tag]: --threads 2 twice and --threads $t3: identical"
    fi
    # the starting model must have moved (the comparison is of trained models)
    if [ $moe = dense ] && cmp -s "$M/model.safetensors" "$T/$loss-$moe-a/model.safetensors"; then
      echo "FAIL [$tag]: the model did not change"; fail=1
    fi
    rm -rf "$T/$loss-$moe-b" "$T/$loss-$moe-c"
  done
done

# inference: the same embeddings at any thread count (batch 3 x up to 32 tokens)
head -12 "$T/d.jsonl" | sed 's/.*"query": "\([^"]*\)".*/\1/' > "$T/texts.txt"
for th in 1 2 5; do
  "$E" encode --model "$T/infonce-dense-a" --in "$T/texts.txt" --out "$T/enc$th.npy" --batch 3 --threads $th -q \
    || { echo "FAIL: encode --threads $th"; fail=1; }
done
if cmp -s "$T/enc1.npy" "$T/enc2.npy" && cmp -s "$T/enc1.npy" "$T/enc5.npy"; then
  echo "ok [encode]: --threads 1, 2, 5 identical"
else
  echo "FAIL [encode]: embeddings depend on the thread count"; fail=1
fi
if [ $fail -ne 0 ]; then echo "cli_determinism: FAILED"; exit 1; fi
echo "cli_determinism: all passed"
