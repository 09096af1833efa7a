#!/usr/bin/env bash
# run_train_bench.sh - one train step (forward + backward + AdamW), embedtune vs PyTorch, in one run.
#
# MiniLM-L6-shaped BERT with random weights (6 layers, hidden 384, 12 heads, intermediate 1536,
# vocab 30522; bench/make_minilm_random.py), 32 queries at seq 32 + 32 documents at seq 128,
# MultipleNegativesRankingLoss (InfoNCE, cosine x 20, in-batch negatives), AdamW, dropout off,
# with 1 and 2 threads. Each (engine, threads) is its own process, so ru_maxrss is that
# configuration's peak RSS. Engines are run INTERLEAVED round after round (order rotated each
# round); the table shows ms/step at the BEST step over all rounds (the machine is shared: the
# best is the least disturbed), the median too, peak RSS, and the ratios embedtune/torch.
# Torch at t >= 2 threads is timed twice (set_num_threads(t), and set_num_threads(1) + OpenBLAS t
# threads, see torch_encode.py) and the faster is the baseline; its RSS is that run's.
# Same computation: the loss before every step (same ids, same weights, same optimizer) must agree
# between the engines to 1e-3 (it does to ~1e-6), or the runner fails.
# Mixed precision (issue 15): engine "embedtune-bf16" is bench_train --precision bf16 (the Linear GEMMs with
# VDPBF16PS, fp32 accumulation; needs AVX512_BF16), "torch-bf16" is torch_train.py --bf16 (torch.autocast
# cpu/bfloat16; at t >= 2 also timed with set_num_threads(1), the faster kept). Their losses must agree with
# embedtune fp32's to 2 % (bf16 operands: the PyTorch parity of tests/test_train.c), and a second table
# gives every engine's step time and its ratios to PyTorch fp32 and to PyTorch bf16. The one command:
#   bench/run_train_bench.sh --threads 2 --engines "embedtune embedtune-bf16 torch torch-bf16"
#
# usage: bench/run_train_bench.sh [--rounds N] [--threads "1 2"] [--reps N]
#                                 [--engines "embedtune torch" | any of embedtune embedtune-bf16 torch torch-bf16]
#                                 [--model DIR] [--native] [--out FILE.jsonl]
# env:   ET_TRAIN_BUILD (default <repo>/build-tbench), PYTHON_TORCH (default /usr/bin/python3)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
BUILD=${ET_TRAIN_BUILD:-$ROOT/build-tbench}
PY=${PYTHON_TORCH:-/usr/bin/python3}
MODEL=/tmp/et-bench/minilm
ROUNDS=2
THREADS="1 2"
REPS=3
ENGINES="embedtune torch"
NATIVE=OFF
OUT=""

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --engines) ENGINES=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --native) NATIVE=ON; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run_train_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$(dirname "$MODEL")"
[ -n "$OUT" ] || OUT="$(dirname "$MODEL")/train-bench-$(date +%Y%m%d-%H%M%S).jsonl"
: > "$OUT"
has() { case " $ENGINES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
say() { echo "== $*" >&2; }

# 1. build
if has embedtune || has embedtune-bf16; then
  say "building bench_train (Release, ET_NATIVE_ARCH=$NATIVE) in $BUILD"
  mkdir -p "$BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DET_NATIVE_ARCH=$NATIVE > "$BUILD/train-cmake.log" 2>&1 ||
    { cat "$BUILD/train-cmake.log" >&2; exit 1; }
  cmake --build "$BUILD" -j2 --target bench_train > "$BUILD/train-build.log" 2>&1 ||
    { tail -40 "$BUILD/train-build.log" >&2; exit 1; }
fi

# 2. the model (the encode benchmark's maker; the ORT check is not needed here)
if [ ! -f "$MODEL/model.safetensors" ] || [ ! -f "$MODEL/config.json" ]; then
  say "making the random MiniLM-L6 model in $MODEL"
  "$PY" "$BENCH/make_minilm_random.py" --out "$MODEL" --no-ort-check
fi

# 2b. the anchor's BLAS (bench/anchor_env.sh): OpenBLAS required, OPENBLAS_CORETYPE/L2_SIZE unset
. "$BENCH/anchor_env.sh"
if has torch || has torch-bf16; then et_anchor_setup "$PY" "$OUT"; fi

# 3. interleaved timing
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
run_one() { # engine threads
  local e=$1 t=$2
  local common=(--model "$MODEL" --threads "$t" --warmup 1 --reps "$REPS")
  case "$e" in
    embedtune) "$BUILD/bench_train" "${common[@]}" ;;
    embedtune-bf16) "$BUILD/bench_train" "${common[@]}" --precision bf16 ;;
    torch) "${ANCHOR_ENV[@]}" "$PY" "$BENCH/torch_train.py" "${common[@]}" ;;
    torch1) "${ANCHOR_ENV[@]}" "$PY" "$BENCH/torch_train.py" "${common[@]}" --intra-op 1 ;;
    torch-bf16) "${ANCHOR_ENV[@]}" "$PY" "$BENCH/torch_train.py" "${common[@]}" --bf16 ;;
    torch1-bf16) "${ANCHOR_ENV[@]}" "$PY" "$BENCH/torch_train.py" "${common[@]}" --intra-op 1 --bf16 ;;
  esac
}
read -r -a ENG <<< "$ENGINES"
for ((r = 1; r <= ROUNDS; r++)); do
  rot=("${ENG[@]:$(((r - 1) % ${#ENG[@]}))}" "${ENG[@]:0:$(((r - 1) % ${#ENG[@]}))}")
  for t in $THREADS; do
    ver=()
    for e in "${rot[@]}"; do
      ver+=("$e")
      if [ "$e" = torch ] && [ "$t" -gt 1 ]; then ver+=(torch1); fi
      if [ "$e" = torch-bf16 ] && [ "$t" -gt 1 ]; then ver+=(torch1-bf16); fi
    done
    for e in "${ver[@]}"; do
      say "round $r/$ROUNDS  threads $t  $e"
      line=$(run_one "$e" "$t") || { echo "run_train_bench.sh: $e failed ($t threads)" >&2; exit 1; }
      echo "$line" | sed "s/^{/{\"round\":$r,/" >> "$OUT"
    done
  done
done

# 4. table
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
"$PY" - "$OUT" "$THREADS" "$LOAD_START" "$LOAD_END" "$COMMIT" <<'EOF'
import json, os, statistics, sys
path, threads = sys.argv[1], [int(t) for t in sys.argv[2].split()]
load_start, load_end, commit = sys.argv[3:6]
rows = [json.loads(l) for l in open(path) if l.strip()]
runs = {}
bad_blas = sorted({r.get("blas", "unrecorded") for r in rows if r.get("engine", "").startswith("torch")} - {"openblas"})
if bad_blas:  # never a ratio against the reference BLAS (bench/anchor_env.sh)
    print(f"REFUSED: PyTorch rows ran on BLAS {bad_blas}, not OpenBLAS: no torch column or ratio is reported")
blas = next((r["blas"] for r in rows if isinstance(r.get("blas"), dict)), None)
if blas:
    print(f"PyTorch BLAS: {blas['kind']} ({', '.join(blas['libs']) or '?'}; torch BLAS_INFO={blas['torch_blas_info']}); "
          "torch ran with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset")
for r in rows:
    if "engine" not in r or (bad_blas and r["engine"].startswith("torch")):
        continue
    e = r["engine"]
    if e in ("torch", "torch-bf16") and r["intra_op"] != r["threads"]:
        e += "/intra1"
    k = (e, r["threads"])
    d = runs.setdefault(k, {"times": [], "cpu": [], "rss": [], "losses": []})
    d["times"] += r["times_s"]
    d["cpu"] += r["cpu_s"]
    d["rss"].append(r["peak_rss_kib"])
    d["losses"].append(r["losses"])
def stat(e, t):
    d = runs.get((e, t))
    if not d:
        return None
    return {"best": min(d["times"]) * 1e3, "med": statistics.median(d["times"]) * 1e3, "cpu": min(d["cpu"]),
            "rss": max(d["rss"]) / 1024.0, "losses": d["losses"]}
# same computation: every run's loss sequence vs the first embedtune run's (fp32 engines to 1e-3 absolute; bf16
# engines to 2 % relative: bf16 operands move the loss by ~0.4 %, tests/test_train.c)
ref = next((l for (e, t), d in runs.items() if e == "embedtune" for l in d["losses"]), None)
worst, worst_bf = 0.0, 0.0
if ref is not None:
    for (e, t), d in runs.items():
        for l in d["losses"]:
            n = min(len(l), len(ref))
            if "bf16" in e:
                worst_bf = max([worst_bf] + [abs(a - b) / abs(b) for a, b in zip(l[:n], ref[:n])])
            else:
                worst = max([worst] + [abs(a - b) for a, b in zip(l[:n], ref[:n])])
notes = []
print()
print(f"train step (fwd+bwd+AdamW), random {os.environ.get('ET_BENCH_LABEL', 'MiniLM-L6')}, 32q x 32 + 32d x 128, MNRL; ms/step best (median), peak RSS MiB")
print(f"{'threads':>7} {'embedtune ms':>16} {'torch ms':>16} {'speedup':>8} {'et RSS':>8} {'torch RSS':>9} {'RSS ratio':>9}  {'CPU s et/torch':>14}  goal (>=2x faster, <=0.5x RSS)")
for t in threads:
    et = stat("embedtune", t)
    cands = [c for c in (stat("torch", t), stat("torch/intra1", t)) if c]
    if t > 1 and len(cands) == 2:
        notes.append(f"torch {t} threads: set_num_threads({t}) best {cands[0]['best']:.0f} ms, "
                     f"set_num_threads(1) + OpenBLAS {t} threads best {cands[1]['best']:.0f} ms -> using the faster")
    pt = min(cands, key=lambda c: c["best"]) if cands else None
    fm = lambda c: f"{c['best']:7.0f} ({c['med']:6.0f})" if c else f"{'-':>16}"
    sp = pt["best"] / et["best"] if et and pt else None
    rr = et["rss"] / pt["rss"] if et and pt else None
    goal = ("met" if sp >= 2.0 and rr <= 0.5 else "NOT met") if sp is not None else ""
    s_sp = f"{sp:7.2f}x" if sp else "-"
    s_et = f"{et['rss']:8.0f}" if et else "-"
    s_pt = f"{pt['rss']:9.0f}" if pt else "-"
    s_rr = f"{rr:9.2f}" if rr else "-"
    s_cpu = f"{et['cpu']:.2f}/{pt['cpu']:.2f}" if et and pt else "-"
    print(f"{t:>7} {fm(et):>16} {fm(pt):>16} {s_sp:>8} {s_et:>8} {s_pt:>9} {s_rr:>9}  {s_cpu:>14}  {goal}")
for n in notes:
    print(n)
if ref is not None:
    print(f"check: loss before each step, all runs vs embedtune: max abs diff {worst:.2e} "
          f"({'OK' if worst <= 1e-3 else 'FAIL'}); embedtune losses {', '.join(f'{x:.5f}' for x in ref)}")
bf_engines = [e for e in ("embedtune-bf16", "torch-bf16") if any(k[0].startswith(e) for k in runs)]
if bf_engines:  # mixed precision: every engine beside PyTorch fp32 and PyTorch bf16 autocast
    print()
    print("mixed precision: ms/step best (median); ratio = PyTorch's best / this engine's best (> 1: faster than it)")
    print(f"{'threads':>7} {'engine':>16} {'ms/step':>16} {'vs torch fp32':>13} {'vs torch bf16':>13} {'RSS MiB':>8} {'CPU s':>6}")
    for t in threads:
        best_of = lambda *names: min((c for c in (stat(n, t) for n in names) if c), key=lambda c: c["best"], default=None)
        pf, pb = best_of("torch", "torch/intra1"), best_of("torch-bf16", "torch-bf16/intra1")
        for name, c in (("embedtune fp32", stat("embedtune", t)), ("embedtune bf16", stat("embedtune-bf16", t)),
                        ("torch fp32", pf), ("torch bf16", pb)):
            if not c:
                continue
            r32 = f"{pf['best'] / c['best']:12.2f}x" if pf else f"{'-':>13}"
            r16 = f"{pb['best'] / c['best']:12.2f}x" if pb else f"{'-':>13}"
            print(f"{t:>7} {name:>16} {c['best']:7.0f} ({c['med']:6.0f}) {r32} {r16} {c['rss']:8.0f} {c['cpu']:6.2f}")
    if ref is not None:
        print(f"check: bf16 engines' loss before each step vs embedtune fp32: max rel diff {worst_bf:.2e} "
              f"({'OK' if worst_bf <= 0.02 else 'FAIL'})")
vers = {r["engine"]: r.get("version") for r in rows if r.get("version")}
print(f"embedtune {commit}, torch {vers.get('torch', '-')}; load average before/after: {load_start} / {load_end} "
      f"(2 cores: > ~0.3 means noisy numbers)")
print("CPU s = least process CPU seconds of one step (all threads): what a step costs when other jobs steal the cores")
print(f"raw results: {path}")
if ref is not None and (worst > 1e-3 or worst_bf > 0.02):
    sys.exit(1)
EOF
