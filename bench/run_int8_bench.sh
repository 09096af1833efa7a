#!/usr/bin/env bash
# run_int8_bench.sh - int8 encode: embedtune --int8 vs onnxruntime-node on the same model quantized its way, with the
# fp32 rows beside, and the retrieval quality of int8 (nDCG@10 int8 vs fp32 on cranfield, cisi, cacm). ~3 min.
#
#   bench/run_int8_bench.sh [--rounds 3] [--threads 2] [--shapes "32x128 1x32"] [--min-time 2] [--no-quality]
#
# Engines, on the random MiniLM-L6-shaped model of run_encode_bench.sh (/tmp/et-bench/minilm; made if missing):
#   embedtune        bench_encode (fp32)            embedtune-int8   bench_encode --int8 (docs/int8.md)
#   ort              onnxruntime-node, model.onnx    ort-int8         onnxruntime-node, the model quantized by
#                                                                     bench/onnx_quantize_dynamic.py (quantize_dynamic's
#                                                                     MatMul graph; see that file for why not onnxruntime's own)
# Each (shape, engine) runs once per round, interleaved, engine order rotated per round; each process warms up twice
# and times >= 3 reps and --min-time s. Tables: sentences/s from the median and from the best rep, the ratio
# embedtune-int8 / ort-int8 (goal >= 1.2), and each engine's peak RSS (/usr/bin/time, the largest over the rounds).
# onnxruntime runs with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset in its command alone (bench/anchor_env.sh).
# Quality: `embedtune eval --split test` (held-out queries) with models/compact, fp32 and --int8, nDCG@10 per set.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
BUILD=${ET_BENCH_BUILD:-$ROOT/build-bench}
PY=${PYTHON_TORCH:-/usr/bin/python3}
MODEL=/tmp/et-bench/minilm
QMODEL=/tmp/et-bench/minilm-ortq8
ROUNDS=3 THREADS=2 SHAPES="32x128 1x32" MIN_TIME=2 QUALITY=1
EVAL=${ET_EVAL_DATA:-$ROOT/../shared/eval-data}
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --shapes) SHAPES=$2; shift 2 ;;
    --min-time) MIN_TIME=$2; shift 2 ;;
    --no-quality) QUALITY=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_int8_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "== $*" >&2; }
ANCHOR_ENV=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
OUT=/tmp/et-bench/int8-bench-$(date +%Y%m%d-%H%M%S).jsonl
mkdir -p /tmp/et-bench
echo "{\"meta\":true,\"commit\":\"$(git -C "$ROOT" rev-parse --short HEAD)\",\"load_start\":\"$LOAD_START\",\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\"}" > "$OUT"

say "building bench_encode and embedtune (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" -j2 --target bench_encode embedtune > "$BUILD/int8-build.log" 2>&1 || { tail -30 "$BUILD/int8-build.log" >&2; exit 1; }
if [ ! -d "$BENCH/node_modules/onnxruntime-node" ]; then
  say "installing onnxruntime-node into bench/node_modules"
  (cd "$BENCH" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi
[ -f "$MODEL/model.onnx" ] || { say "making $MODEL"; "${ANCHOR_ENV[@]}" "$PY" "$BENCH/make_minilm_random.py" --out "$MODEL"; }
if [ ! -f "$QMODEL/model.onnx" ]; then
  "$PY" -c "import onnx" 2>/dev/null || { say "installing python3-onnx (apt)"; DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-onnx > /dev/null; }
  mkdir -p "$QMODEL"
  "$PY" "$BENCH/onnx_quantize_dynamic.py" "$MODEL/model.onnx" "$QMODEL/model.onnx"
  cp "$MODEL/config.json" "$MODEL/check.json" "$QMODEL/"
fi
say "int8 cpu path: $("$BUILD/embedtune" encode --help >/dev/null 2>&1; grep -q avx512_vnni /proc/cpuinfo && echo 'AVX512_VNNI present' || echo 'no AVX512_VNNI: the scalar int8 path (slow)')"
# outputs against torch fp32 on the padded check batch (max |diff| of the pooled embedding), for the record
for e in embedtune embedtune-int8 ort ort-int8; do
  case $e in
    embedtune) "$BUILD/bench_encode" --model "$MODEL" --check --tol 1e-3 ;;
    embedtune-int8) "$BUILD/bench_encode" --model "$MODEL" --check --int8 --tol 1 ;;
    ort) (cd "$BENCH" && "${ANCHOR_ENV[@]}" node ort_encode.mjs --model "$MODEL" --check --tol 1e-3) ;;
    ort-int8) (cd "$BENCH" && "${ANCHOR_ENV[@]}" node ort_encode.mjs --model "$QMODEL" --check --tol 1) ;;
  esac 2>&1 | grep -i "check" | sed "s/^/$e: /" >&2 || true
done

run() { # engine threads B T -> appends one JSON line with "rss_kb"
  local e=$1 t=$2 b=$3 s=$4 line rss
  case $e in
    embedtune) line=$(/usr/bin/time -f %M -o "$OUT.rss" "$BUILD/bench_encode" --model "$MODEL" --threads $t --batch $b --seq $s --min-time $MIN_TIME) ;;
    embedtune-int8) line=$(/usr/bin/time -f %M -o "$OUT.rss" "$BUILD/bench_encode" --model "$MODEL" --int8 --threads $t --batch $b --seq $s --min-time $MIN_TIME) ;;
    ort) line=$(cd "$BENCH" && /usr/bin/time -f %M -o "$OUT.rss" "${ANCHOR_ENV[@]}" node ort_encode.mjs --model "$MODEL" --threads $t --batch $b --seq $s --min-time $MIN_TIME) ;;
    ort-int8) line=$(cd "$BENCH" && /usr/bin/time -f %M -o "$OUT.rss" "${ANCHOR_ENV[@]}" node ort_encode.mjs --model "$QMODEL" --threads $t --batch $b --seq $s --min-time $MIN_TIME) ;;
  esac
  rss=$(tail -1 "$OUT.rss")
  echo "$line" | "$PY" -c "import json,sys; d=json.loads(sys.stdin.read()); d['engine']='$e'; d['rss_kb']=$rss; print(json.dumps(d))" >> "$OUT"
}
ENG=(embedtune embedtune-int8 ort ort-int8)
for r in $(seq 1 "$ROUNDS"); do
  for sh in $SHAPES; do
    for i in 0 1 2 3; do
      e=${ENG[$(( (i + r) % 4 ))]}
      say "round $r/$ROUNDS $sh $e"
      run "$e" "$THREADS" "${sh%x*}" "${sh#*x}"
    done
  done
done
rm -f "$OUT.rss"
"$PY" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"meta"' not in l]
meta = json.loads(open(sys.argv[1]).readline())
print(f"\ncommit {meta['commit']}, {meta['cpu']}, load average at start {meta['load_start']}, raw: {sys.argv[1]}")
shapes = sorted({(r['batch'], r['seq']) for r in rows}, reverse=True)
eng = ['embedtune', 'embedtune-int8', 'ort', 'ort-int8']
print("\n| shape | threads | " + " | ".join(f"{e} sent/s (median / best)" for e in eng) + " | int8: embedtune / ort | embedtune int8 / fp32 |")
print("|---" * (len(eng) + 4) + "|")
for b, s in shapes:
    v = {}
    for e in eng:
        t = [x for r in rows if r['engine'] == e and r['batch'] == b and r['seq'] == s for x in r['times_s']]
        v[e] = (b / statistics.median(t), b / min(t)) if t else (float('nan'),) * 2
    th = rows[0]['threads']
    print(f"| {b}x{s} | {th} | " + " | ".join(f"{v[e][0]:.1f} / {v[e][1]:.1f}" for e in eng) +
          f" | {v['embedtune-int8'][0] / v['ort-int8'][0]:.2f}x / {v['embedtune-int8'][1] / v['ort-int8'][1]:.2f}x"
          f" | {v['embedtune-int8'][0] / v['embedtune'][0]:.2f}x |")
print("\n| engine | peak RSS (MiB, largest over the rounds) |\n|---|---|")
for e in eng:
    print(f"| {e} | {max(r['rss_kb'] for r in rows if r['engine'] == e) / 1024:.0f} |")
PY
if [ $QUALITY = 1 ]; then
  echo; echo "| set (held-out queries) | nDCG@10 fp32 | nDCG@10 int8 | int8 - fp32 |"; echo "|---|---|---|---|"
  for s in cranfield cisi cacm; do
    [ -d "$EVAL/$s" ] || { echo "| $s | (no data at $EVAL/$s) | | |"; continue; }
    for m in fp32 int8; do
      "$BUILD/embedtune" eval --model "$ROOT/models/compact" --data "$EVAL/$s" --split test --mode dense --threads "$THREADS" -q \
        --json "$OUT.$s.$m.json" $([ $m = int8 ] && echo --int8) > /dev/null
    done
    "$PY" -c "
import json; a = json.load(open('$OUT.$s.fp32.json'))['metrics']['ndcg@10']; b = json.load(open('$OUT.$s.int8.json'))['metrics']['ndcg@10']
print(f'| $s | {a:.4f} | {b:.4f} | {b - a:+.4f} |')"
  done
fi
