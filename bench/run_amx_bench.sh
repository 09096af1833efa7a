#!/usr/bin/env bash
# run_amx_bench.sh - AMX against the other native paths (issue 15), every measurement back to back in one run:
#   1. kernels: bf16_peak (the peaks of VFMADD231PS, VDPBF16PS, TDPBF16PS; fp32 / VDPBF16PS / AMX GEMM GFLOP/s
#      and fraction of peak on the train step's Linear shapes) and bench_int8 (fp32 / VNNI / AMX int8 Linear
#      GOP/s on the encoder's shapes), at 1 thread (process CPU time) and at --threads;
#   2. the train step (bench_train, MiniLM-L6 random, 32 x 32 queries + 32 x 128 documents): fp32, bf16 on
#      VDPBF16PS, bf16 on AMX, interleaved for --rounds rounds (order rotated);
#   3. encode 32 x 128 (bench_encode): fp32, int8 on VNNI, int8 on AMX, interleaved the same way.
# Prints the tables and writes the raw JSON lines to --out. The anchors (PyTorch, onnxruntime) are not run here:
# the README rows come from bench/run_train_bench.sh (engine embedtune-bf16 now runs on AMX where present) and
# bench/run_int8_bench.sh (embedtune-int8 likewise); see bench/README.md, "AMX".
#
# usage: bench/run_amx_bench.sh [--threads 2] [--reps 5] [--rounds 3] [--out FILE.jsonl]
# env:   ET_BENCH_BUILD (default <repo>/build-bench), PYTHON_TORCH (default /usr/bin/python3; makes the model)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${ET_BENCH_BUILD:-$ROOT/build-bench}
PY=${PYTHON_TORCH:-/usr/bin/python3}
MODEL=/tmp/et-bench/minilm
THREADS=2 REPS=5 ROUNDS=3
OUT=/tmp/et-bench/amx-bench-$(date -u +%Y%m%d-%H%M%S).jsonl
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_amx_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$(dirname "$OUT")" "$BUILD"
: > "$OUT"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > "$BUILD/amx-cmake.log" 2>&1 ||
  { cat "$BUILD/amx-cmake.log"; exit 1; }
cmake --build "$BUILD" -j2 --target bf16_peak bench_int8 bench_train bench_encode > "$BUILD/amx-build.log" 2>&1 ||
  { tail -30 "$BUILD/amx-build.log"; exit 1; }
[ -f "$MODEL/config.json" ] || "$PY" "$ROOT/bench/make_minilm_random.py" --out "$MODEL" --no-ort-check
echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), AMX flags: $(grep -o 'amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"

echo; echo "== 1. kernels"
for t in 1 "$THREADS"; do
  "$BUILD/bf16_peak" --threads "$t" --reps "$REPS" | tee -a "$OUT" | grep -v '^{'
  "$BUILD/bench_int8" --threads "$t" --reps "$REPS"
done

echo; echo "== 2. train step (bench_train, $THREADS threads, $ROUNDS rounds interleaved)"
CFG=("--precision fp32" "--precision bf16 --bf16-table avx512bf16" "--precision bf16 --bf16-table amx-bf16")
for r in $(seq 0 $((ROUNDS - 1))); do
  for i in 0 1 2; do
    c=${CFG[$(((i + r) % 3))]}
    "$BUILD/bench_train" --model "$MODEL" --threads "$THREADS" --reps 3 $c 2>/dev/null | grep '^{' | tail -1 |
      sed 's/^{/{"bench":"train",/' >> "$OUT" || echo "bench_train $c failed" >&2
  done
done

echo "== 3. encode 32x128 (bench_encode, $THREADS threads, $ROUNDS rounds interleaved)"
CFG=("" "--int8 --int8-path vnni" "--int8 --int8-path amx-int8")
for r in $(seq 0 $((ROUNDS - 1))); do
  for i in 0 1 2; do
    c=${CFG[$(((i + r) % 3))]}
    "$BUILD/bench_encode" --model "$MODEL" --threads "$THREADS" --batch 32 --seq 128 --reps 5 --min-time 2 $c 2>/dev/null |
      grep '^{' | tail -1 | sed 's/^{/{"bench":"encode",/' >> "$OUT" || echo "bench_encode $c failed" >&2
  done
done

"$PY" - "$OUT" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"bench"')]
def table(kind, key, what):
    g, c = {}, {}
    for r in rows:
        if r["bench"] != kind: continue
        g.setdefault(r[key], []).extend(r["times_s"])
        c.setdefault(r[key], []).extend(r.get("cpu_s", []))
    if not g: return
    print(f"\n{kind} ({what}): wall ms median / best over all reps of all rounds; CPU s median (train: per step)")
    print(f"| {key} | median ms | best ms | vs first row (median) | CPU s | vs first row (CPU) |\n|---|---|---|---|---|---|")
    first = firstc = None
    for k, t in g.items():
        med, best = statistics.median(t), min(t)
        cpu = statistics.median(c[k]) if c[k] else float("nan")
        first = first or med
        firstc = firstc or cpu
        cs = f"{cpu:.2f} | {firstc/cpu:.2f}x" if cpu == cpu else "- | -"
        print(f"| {k} | {med*1e3:.0f} | {best*1e3:.0f} | {first/med:.2f}x | {cs} |")
table("train", "precision", "one step: forward + backward + AdamW")
table("encode", "int8_path", "32 x 128 sentences; int8_path '-' = fp32")
PY
echo "raw: $OUT"
