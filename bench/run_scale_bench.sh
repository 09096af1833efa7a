#!/usr/bin/env bash
# run_scale_bench.sh - mining + evaluation at scale (bench/bench_scale.c): 100k synthetic documents,
# 1k queries, with the bundled GloVe starter (1 layer, 100-d) and, if present, the random
# MiniLM-L6-shaped model of bench/make_minilm_random.py (its encoder is ~40x slower: by default only
# 5k documents are encoded and tiled to 100k, and the full-corpus encode time is extrapolated).
# usage: bench/run_scale_bench.sh [BUILD_DIR]   (BUILD_DIR default: build)
set -eu
B=${1:-build}
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) cores)"
"$B/bench_scale" --model models/glove-bert-starter --docs 100000 --queries 1000
MINILM=${ET_MINILM:-/tmp/et-bench/minilm}
if [ -f "$MINILM/config.json" ]; then
  echo
  "$B/bench_scale" --model "$MINILM" --docs 100000 --queries 1000 --encode-docs ${ET_MINILM_DOCS:-5000}
else
  echo "skip MiniLM-shaped run: make it with /usr/bin/python3 bench/make_minilm_random.py"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
