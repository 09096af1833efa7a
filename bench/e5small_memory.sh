#!/usr/bin/env bash
# e5small_memory.sh - peak memory of `embedtune train` on the multilingual-e5-small-shaped model (bench/run_e5small_bench.sh
# makes it), all parameters trained vs the word-embedding table frozen (--freeze embeddings.word_embeddings.).
# 64 random pairs (queries 24 words, passages 120, dummy vocabulary), batch 16, max length 128, 1 epoch (4 steps),
# 2 threads; peak RSS from /usr/bin/time, the trainer's own plan ("training needs ... MiB" when refused under a
# --mem-budget of 1 MiB). Then `finetune`'s up-front estimate for the same file and settings ("this run needs about
# ... MiB" under --mem-budget 1): what the page checks against what its wasm heap can still give
# (et_wasm_mem_budget_mb; bench/e5small_page.mjs runs the page's side).
# usage: bench/e5small_memory.sh [MODEL] [EMBEDTUNE]     (defaults /tmp/et-bench/e5small, build/embedtune)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${1:-/tmp/et-bench/e5small}
ET=${2:-$ROOT/build/embedtune}
T=$(mktemp -d /tmp/et_e5mem.XXXXXX); trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T/pairs.jsonl" <<'PY'
import json, random, sys
r = random.Random(3)
with open(sys.argv[1], "w") as f:
    for i in range(64):
        q = " ".join("tok%d" % r.randrange(1000, 250000) for _ in range(24))
        p = " ".join("tok%d" % r.randrange(1000, 250000) for _ in range(120))
        f.write(json.dumps({"query": q, "positive": p}) + "\n")
PY
printf '%-34s %12s %14s %8s\n' "run" "peak RSS MiB" "planned MiB" "wall s"
for mode in all frozen-embeddings; do
  fr=(); [ $mode = frozen-embeddings ] && fr=(--freeze embeddings.word_embeddings.)
  args=(train --model "$MODEL" --train "$T/pairs.jsonl" --epochs 1 --batch 16 --max-len 128 --threads 2 --no-dropout -q "${fr[@]}")
  plan=$({ "$ET" "${args[@]}" --out "$T/plan" --mem-budget 1 2>&1 || true; } | sed -n 's/.*training needs \([0-9.]*\) MiB.*/\1/p')
  /usr/bin/time -f '%M %e' -o "$T/time" "$ET" "${args[@]}" --out "$T/out-$mode" > /dev/null
  read -r kib wall < "$T/time"
  printf '%-34s %12.0f %14s %8s\n' "$mode" "$(echo "$kib / 1024" | bc -l)" "${plan:-?}" "$wall"
  rm -rf "$T/out-$mode"
done
printf '\n%-34s %22s\n' "finetune (same file and settings)" "up-front estimate MiB"
for mode in all frozen-embeddings; do
  fr=(); [ $mode = frozen-embeddings ] && fr=(--freeze-embeddings)
  est=$({ "$ET" finetune --model "$MODEL" --data "$T/pairs.jsonl" --out "$T/ft" --epochs 1 --batch 16 --max-len 128 \
          --threads 2 --no-dropout --quiet --mem-budget 1 "${fr[@]}" 2>&1 || true; } | sed -n 's/.*needs about \([0-9.]*\) MiB.*/\1/p')
  printf '%-34s %22s\n' "$mode" "${est:-?}"
done
