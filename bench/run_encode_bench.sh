#!/usr/bin/env bash
# run_encode_bench.sh - encode throughput: embedtune vs PyTorch vs onnxruntime-node, in one invocation.
#
# MiniLM-L6-shaped BERT with random weights (6 layers, hidden 384, 12 heads, intermediate 1536,
# vocab 30522), at batch 32 x seq 128 and batch 1 x seq 32, with 1 and 2 threads. The three engines
# are run INTERLEAVED (round after round, engine order rotated each round) so machine noise hits
# them alike; per-rep times of all rounds are pooled; tables of sentences/s at the median and best rep.
#
# usage: bench/run_encode_bench.sh [--rounds N] [--threads "1 2"] [--shapes "32x128 1x32"]
#                                  [--engines "embedtune torch ort"] [--model DIR] [--min-time S]
#                                  [--native] [--out FILE.jsonl]
#        bench/run_encode_bench.sh --summarize FILE.jsonl [--shapes ...] [--threads ...]   (table only)
# env:   ET_BENCH_BUILD (default <repo>/build-bench), PYTHON_TORCH (default /usr/bin/python3)
#
# It builds bench_encode (CMake Release), installs onnxruntime-node into bench/node_modules if
# missing, makes the model if missing (make_minilm_random.py: also checks ONNX == torch to 1e-4),
# checks embedtune's pooled output == torch's to 1e-3 on a padded batch, then times.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
BUILD=${ET_BENCH_BUILD:-$ROOT/build-bench}
PY=${PYTHON_TORCH:-/usr/bin/python3}
MODEL=/tmp/et-bench/minilm
ROUNDS=3
THREADS="1 2"
SHAPES="32x128 1x32"
ENGINES="embedtune torch ort"
MIN_TIME=2
NATIVE=OFF
OUT=""
SUMMARIZE=""

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --shapes) SHAPES=$2; shift 2 ;;
    --engines) ENGINES=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --min-time) MIN_TIME=$2; shift 2 ;;
    --native) NATIVE=ON; shift ;;
    --out) OUT=$2; shift 2 ;;
    --summarize) SUMMARIZE=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run_encode_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)  # before this script adds its own load
has() { case " $ENGINES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
say() { echo "== $*" >&2; }

if [ -n "$SUMMARIZE" ]; then
  OUT=$SUMMARIZE
else
mkdir -p "$(dirname "$MODEL")"
[ -n "$OUT" ] || OUT="$(dirname "$MODEL")/encode-bench-$(date +%Y%m%d-%H%M%S).jsonl"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- src CMakeLists.txt bench/bench_encode.c 2>/dev/null)" ]; then COMMIT="$COMMIT+dirty"; fi
echo "{\"meta\":true,\"commit\":\"$COMMIT\",\"load_start\":\"$LOAD_START\",\"date\":\"$(date -Iseconds)\",\"native\":\"$NATIVE\"}" > "$OUT"

# 1. build
if has embedtune; then
  say "building bench_encode (Release, ET_NATIVE_ARCH=$NATIVE) in $BUILD"
  mkdir -p "$BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DET_NATIVE_ARCH=$NATIVE > "$BUILD/bench-cmake.log" 2>&1 ||
    { cat "$BUILD/bench-cmake.log" >&2; exit 1; }
  cmake --build "$BUILD" -j2 --target bench_encode > "$BUILD/bench-build.log" 2>&1 ||
    { tail -40 "$BUILD/bench-build.log" >&2; exit 1; }
  ET_BIN="$BUILD/bench_encode"
fi

# 2. onnxruntime-node (its install script would fetch CUDA bits from outside npm: skip them; the
#    CPU binaries ship in the npm package)
if has ort && [ ! -d "$BENCH/node_modules/onnxruntime-node" ]; then
  say "installing onnxruntime-node into bench/node_modules"
  (cd "$BENCH" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi

# 3. the model (random weights, safetensors + ONNX); its script checks ONNX == torch
if [ ! -f "$MODEL/model.safetensors" ] || { has ort && [ ! -f "$MODEL/model.onnx" ]; } || [ ! -f "$MODEL/check.json" ]; then  # model.onnx: for ort only
  say "making the random MiniLM-L6 model in $MODEL"
  "$PY" "$BENCH/make_minilm_random.py" --out "$MODEL"
fi

# 3b. the anchors' BLAS (bench/anchor_env.sh): OpenBLAS required, OPENBLAS_CORETYPE/L2_SIZE unset
. "$BENCH/anchor_env.sh"
if has torch; then et_anchor_setup "$PY" "$OUT"; fi

# 4. same computation? embedtune (and ORT) against torch's pooled output on a padded batch
if has ort; then "${ANCHOR_ENV[@]}" node "$BENCH/ort_encode.mjs" --model "$MODEL" --check --tol 1e-4; fi
if has embedtune; then "$ET_BIN" --model "$MODEL" --check --tol 1e-3 >> "$OUT"; fi

# 5. interleaved timing
run_one() { # engine threads batch seq
  local e=$1 t=$2 b=$3 s=$4
  local common=(--model "$MODEL" --threads "$t" --batch "$b" --seq "$s" --warmup 2 --reps 3 --min-time "$MIN_TIME")
  case "$e" in
    embedtune) "$ET_BIN" "${common[@]}" ;;
    torch) "${ANCHOR_ENV[@]}" "$PY" "$BENCH/torch_encode.py" "${common[@]}" ;;
    torch1) "${ANCHOR_ENV[@]}" "$PY" "$BENCH/torch_encode.py" "${common[@]}" --intra-op 1 ;;  # BLAS on t threads, rest on 1
    ort) "${ANCHOR_ENV[@]}" node "$BENCH/ort_encode.mjs" "${common[@]}" ;;
  esac
}
read -r -a ENG <<< "$ENGINES"
for ((r = 1; r <= ROUNDS; r++)); do
  # rotate the engine order each round so no engine always runs right after another's burst
  rot=("${ENG[@]:$(((r - 1) % ${#ENG[@]}))}" "${ENG[@]:0:$(((r - 1) % ${#ENG[@]}))}")
  for shape in $SHAPES; do
    b=${shape%x*}; s=${shape#*x}
    for t in $THREADS; do
      ver=()
      for e in "${rot[@]}"; do
        ver+=("$e")
        if [ "$e" = torch ] && [ "$t" -gt 1 ]; then ver+=(torch1); fi
      done
      for e in "${ver[@]}"; do
        say "round $r/$ROUNDS  ${b}x${s}  threads $t  $e"
        line=$(run_one "$e" "$t" "$b" "$s") || { echo "run_encode_bench.sh: $e failed (${b}x${s}, $t threads)" >&2; exit 1; }
        echo "$line" | sed "s/^{/{\"round\":$r,/" >> "$OUT"
      done
    done
  done
done

fi  # not --summarize

# 6. table
"$PY" - "$OUT" "$SHAPES" "$THREADS" <<'EOF'
import json, os, statistics, sys
path, shapes, threads = sys.argv[1], sys.argv[2].split(), [int(t) for t in sys.argv[3].split()]
rows = [json.loads(l) for l in open(path) if l.strip()]
meta = next((r for r in rows if r.get("meta")), {})
load_start, commit = meta.get("load_start", "?"), meta.get("commit", "?")
chk = [r for r in rows if r.get("check")]
times = {}
for r in rows:
    if "times_s" in r:
        e = r["engine"]
        if e == "torch" and r["intra_op"] != r["threads"]:
            e = "torch/intra1"
        times.setdefault((e, r["batch"], r["seq"], r["threads"]), []).extend(r["times_s"])
STAT = {"median": statistics.median, "best": min}
bad_blas = sorted({r.get("blas", "unrecorded") for r in rows if r.get("engine") == "torch" and "times_s" in r} - {"openblas"})
if bad_blas:  # never a ratio against the reference BLAS (bench/anchor_env.sh)
    print(f"REFUSED: PyTorch rows ran on BLAS {bad_blas}, not OpenBLAS: no torch column or ratio is reported")
    times = {k: v for k, v in times.items() if not k[0].startswith("torch")}
def sps(e, b, s, t, stat):
    v = times.get((e, b, s, t))
    return b / STAT[stat](v) if v else None
def torch_best(b, s, t, stat, notes):
    # the stronger torch configuration on t cores (see torch_encode.py)
    full, one = sps("torch", b, s, t, stat), sps("torch/intra1", b, s, t, stat)
    if one is not None:
        notes.append(f"torch {b}x{s} {t} threads ({stat}): set_num_threads({t}) {full or 0:.1f} s/s, set_num_threads(1) + "
                     f"OpenBLAS {t} threads {one:.1f} s/s -> using {'the latter' if one > (full or 0) else 'the former'}")
        return max(one, full or 0)
    return full
f = lambda x: f"{x:9.1f}" if x is not None else f"{'-':>9}"
g = lambda x: f"{x:7.2f}x" if x is not None else f"{'-':>8}"
for stat, title in (("median", "median over all reps of all rounds"),
                    ("best", "BEST rep of all rounds: closest to a quiet machine, for a noisy one")):
    notes = []
    print()
    print(f"encode throughput, sentences/s ({title}; random {os.environ.get('ET_BENCH_LABEL', 'MiniLM-L6')}, full mask)")
    print(f"{'shape':>8} {'threads':>7} {'embedtune':>9} {'torch':>9} {'ort':>9} {'vs torch':>8} {'vs ort':>8}  goal@2t (2x torch, 1.3x ort)")
    for shape in shapes:
        b, s = (int(x) for x in shape.split("x"))
        for t in threads:
            e, pt, o = sps("embedtune", b, s, t, stat), torch_best(b, s, t, stat, notes), sps("ort", b, s, t, stat)
            rt = e / pt if e and pt else None
            ro = e / o if e and o else None
            goal = ""
            if t == 2 and rt is not None and ro is not None:
                goal = "met" if rt >= 2.0 and ro >= 1.3 else "NOT met"
            print(f"{shape:>8} {t:>7} {f(e)} {f(pt)} {f(o)} {g(rt)} {g(ro)}  {goal}")
    for n in notes:
        print(n)
print()
for c in chk:
    print(f"check: embedtune vs torch pooled output, {c['batch']}x{c['seq']} padded batch: "
          f"max abs diff {c['max_abs_diff']:.2e} ({'OK' if c['ok'] else 'FAIL'})")
vers = {r["engine"]: r.get("version") for r in rows if r.get("version")}
print(f"embedtune {commit} (-march=native {meta.get('native', '?')}), torch {vers.get('torch', '-')}, onnxruntime-node {vers.get('ort', '-')}; "
      f"load average when started: {load_start} (1/5/15 min; above ~0.3 on 2 cores, other work was running)")
blas = next((r["blas"] for r in rows if isinstance(r.get("blas"), dict)), None)
if blas:
    print(f"PyTorch BLAS: {blas['kind']} ({', '.join(blas['libs']) or '?'}; torch BLAS_INFO={blas['torch_blas_info']}); "
          "anchors ran with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (caller had "
          f"{blas.get('openblas_coretype')!r} / {blas.get('openblas_l2_size')!r} after unsetting: must be None)")
print(f"raw results: {path}")
EOF
