#!/usr/bin/env bash
# run_reallen_bench.sh - encode of REAL length distributions: embedtune (packed, and length-sorted with dynamic
# padding) vs onnxruntime-node and PyTorch (each length-sorted with dynamic padding: sentence-transformers'
# best practice), same thread count, same run, interleaved rounds; ratios and peak RSS.
#
# The texts: the documents (title + " " + text, as embedtune reads BEIR) and queries of the eval sets
# (default cranfield, cisi, cacm under ../shared/eval-data), tokenized with the model folder's tokenizer as
# `encode` does (max 256 tokens with [CLS]/[SEP]), every k-th text kept so that about --sample remain (the
# same texts every run; 0 = all 6,417). Every engine gets the same token ids (tokenization is not timed) and
# encodes all of them per pass: sorted by length, batches of 32. Model: the random-weight MiniLM-L6 of the
# other encode benchmarks (make_minilm_random.py; its vocab is BERT's uncased vocab, so the lengths are
# those MiniLM sees).
#
# usage: bench/run_reallen_bench.sh [--rounds N] [--threads T] [--sample N] [--data "DIR ..."] [--model DIR]
#                                   [--engines "packed padded torch ort"] [--torch-both] [--out FILE.jsonl]
#        bench/run_reallen_bench.sh --summarize FILE.jsonl
# env:   ET_BENCH_BUILD (default <repo>/build-bench), PYTHON_TORCH (default /usr/bin/python3)
#
# Anchors: bench/anchor_env.sh (libopenblas0-pthread installed if missing, torch must run on OpenBLAS,
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset in the anchors' commands alone). Same computation: every
# engine's embeddings of every text are compared with embedtune packed's (max abs diff <= 1e-3), and
# embedtune packed with embedtune padded (expected identical).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
BUILD=${ET_BENCH_BUILD:-$ROOT/build-bench}
PY=${PYTHON_TORCH:-/usr/bin/python3}
MODEL=/tmp/et-bench/minilm
DATAROOT=$(cd "$ROOT/.." && pwd)/shared/eval-data
DATA="$DATAROOT/cranfield $DATAROOT/cisi $DATAROOT/cacm"
ROUNDS=2
THREADS=2
SAMPLE=1000
ENGINES="packed padded torch ort"
OUT=""
SUMMARIZE=""
TORCH_BOTH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --sample) SAMPLE=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --engines) ENGINES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --summarize) SUMMARIZE=$2; shift 2 ;;
    --torch-both) TORCH_BOTH=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run_reallen_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
has() { case " $ENGINES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
say() { echo "== $*" >&2; }

if [ -n "$SUMMARIZE" ]; then
  OUT=$SUMMARIZE
else
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(dirname "$MODEL")
mkdir -p "$WORK"
[ -n "$OUT" ] || OUT="$WORK/reallen-bench-$(date +%Y%m%d-%H%M%S).jsonl"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain -- src CMakeLists.txt bench/bench_reallen.c 2>/dev/null)" ]; then COMMIT="$COMMIT+dirty"; fi
echo "{\"meta\":true,\"commit\":\"$COMMIT\",\"load_start\":\"$LOAD_START\",\"date\":\"$(date -Iseconds)\",\"threads\":$THREADS}" > "$OUT"

say "building bench_reallen (Release) in $BUILD"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > "$BUILD/reallen-cmake.log" 2>&1 || { cat "$BUILD/reallen-cmake.log" >&2; exit 1; }
cmake --build "$BUILD" -j2 --target bench_reallen > "$BUILD/reallen-build.log" 2>&1 || { tail -40 "$BUILD/reallen-build.log" >&2; exit 1; }
ET_BIN="$BUILD/bench_reallen"
if has ort && [ ! -d "$BENCH/node_modules/onnxruntime-node" ]; then
  say "installing onnxruntime-node into bench/node_modules"
  (cd "$BENCH" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi
if [ ! -f "$MODEL/model.safetensors" ] || [ ! -f "$MODEL/model.onnx" ] || [ ! -f "$MODEL/check.json" ]; then
  say "making the random MiniLM-L6 model in $MODEL"
  "$PY" "$BENCH/make_minilm_random.py" --out "$MODEL"
fi
. "$BENCH/anchor_env.sh"
if has torch; then et_anchor_setup "$PY" "$OUT"; fi

IDS="$WORK/reallen-ids-$SAMPLE.txt"
say "tokenizing the texts ($DATA)"
"$ET_BIN" --model "$MODEL" --make-ids "$IDS" --data "$DATA" --max-len 256 --sample "$SAMPLE" 2>&1 | tee -a /dev/stderr |
  sed 's/"/\\"/g; s/^/{"lengths":"/; s/$/"}/' >> "$OUT"

run_one() { # engine round -> one JSON line; the first round also writes the embeddings
  local e=$1 r=$2 emb=()
  [ "$r" = 1 ] && emb=(--emb-out "$WORK/reallen-emb-$e.f32")
  local common=(--model "$MODEL" --ids "$IDS" --threads "$THREADS" --warmup 2 --reps 1 "${emb[@]}")
  case "$e" in
    packed|padded) "$ET_BIN" "${common[@]}" --mode "$e" ;;
    torch) "${ANCHOR_ENV[@]}" "$PY" "$BENCH/torch_reallen.py" "${common[@]}" ;;
    torch1) "${ANCHOR_ENV[@]}" "$PY" "$BENCH/torch_reallen.py" "${common[@]}" --intra-op 1 ;;
    ort) "${ANCHOR_ENV[@]}" node "$BENCH/ort_reallen.mjs" "${common[@]}" ;;
  esac
}
read -r -a ENG <<< "$ENGINES"
VER=()
# torch: set_num_threads(1) + OpenBLAS on t threads (torch1), the faster setting on 2 cores in every encode run so
# far (run_encode_bench.sh times both: set_num_threads(t) was 2-10x slower); --torch-both times both, keeps the faster
for e in "${ENG[@]}"; do
  if [ "$e" = torch ] && [ "$THREADS" -gt 1 ]; then
    if [ "$TORCH_BOTH" = 1 ]; then VER+=(torch torch1); else VER+=(torch1); fi
  else VER+=("$e"); fi
done
for ((r = 1; r <= ROUNDS; r++)); do
  rot=("${VER[@]:$(((r - 1) % ${#VER[@]}))}" "${VER[@]:0:$(((r - 1) % ${#VER[@]}))}")
  for e in "${rot[@]}"; do
    say "round $r/$ROUNDS  $e  ($THREADS threads)"
    line=$(run_one "$e" "$r") || { echo "run_reallen_bench.sh: $e failed" >&2; exit 1; }
    echo "$line" | sed "s/^{/{\"round\":$r,\"run\":\"$e\",/" >> "$OUT"
  done
done
# same computation: every engine's embeddings vs embedtune packed's
"${ANCHOR_ENV[@]}" "$PY" - "$WORK" "$OUT" "${VER[@]}" <<'EOF'
import json, sys, numpy as np
work, out, engines = sys.argv[1], sys.argv[2], sys.argv[3:]
ref = np.fromfile(f"{work}/reallen-emb-packed.f32", dtype=np.float32) if "packed" in engines else None
with open(out, "a") as f:
    for e in engines:
        if ref is None or e == "packed":
            continue
        x = np.fromfile(f"{work}/reallen-emb-{e}.f32", dtype=np.float32)
        d = float(np.abs(x - ref).max()) if x.shape == ref.shape else float("inf")
        f.write(json.dumps({"check": e, "max_abs_diff_vs_packed": d, "identical": bool(x.shape == ref.shape and (x == ref).all()),
                            "ok": d <= 1e-3}) + "\n")
EOF
echo "{\"load_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$OUT"
fi  # not --summarize

"$PY" - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = next((r for r in rows if r.get("meta")), {})
lens = next((r["lengths"] for r in rows if "lengths" in r), "?")
load_end = next((r["load_end"] for r in rows if "load_end" in r), "?")
blas = next((r["blas"] for r in rows if isinstance(r.get("blas"), dict)), None)
runs = {}
for r in rows:
    if "times_s" in r:
        d = runs.setdefault(r["run"], {"t": [], "rss": [], "row": r})
        d["t"] += r["times_s"]
        d["rss"].append(r["peak_rss_kib"])
bad_blas = sorted({r.get("blas", "unrecorded") for r in rows if r.get("engine") == "torch" and "times_s" in r} - {"openblas"})
if bad_blas:
    print(f"REFUSED: PyTorch ran on BLAS {bad_blas}, not OpenBLAS: no torch row or ratio is reported")
    runs = {k: v for k, v in runs.items() if not k.startswith("torch")}
if "torch1" in runs and "torch" not in runs:
    runs["torch"] = runs.pop("torch1")
    print("torch: set_num_threads(1) + OpenBLAS on t threads (--torch-both also times set_num_threads(t))")
if "torch" in runs and "torch1" in runs:  # torch at its best on these cores
    tb = min(("torch", "torch1"), key=lambda k: min(runs[k]["t"]))
    print(f"torch: set_num_threads(t) best {min(runs['torch']['t']):.2f} s, set_num_threads(1) + OpenBLAS t threads "
          f"best {min(runs['torch1']['t']):.2f} s -> the table uses {tb}")
    runs["torch"] = runs[tb]
    del runs["torch1"]
names = {"packed": "embedtune packed", "padded": "embedtune sorted+padded", "torch": "PyTorch sorted+padded",
         "ort": "onnxruntime-node sorted+padded"}
ref = runs.get("packed")
print()
print(f"real-length encode, {meta.get('threads', '?')} threads, random MiniLM-L6; texts: {lens}")
print(f"{'engine':32} {'texts/s best':>12} {'(median)':>9} {'tokens':>8} {'in GEMMs':>8} {'packed is':>10} {'peak RSS MiB':>12}")
for k in ("packed", "padded", "torch", "ort"):
    d = runs.get(k)
    if not d:
        continue
    n, best, med = d["row"]["texts"], min(d["t"]), statistics.median(d["t"])
    ratio = f"{best / min(ref['t']):9.2f}x" if ref and k != "packed" else f"{'-':>10}"
    print(f"{names[k]:32} {n / best:12.1f} {n / med:9.1f} {d['row']['tokens']:8d} {d['row']['padded_tokens']:8d} {ratio} "
          f"{max(d['rss']) / 1024:12.0f}")
print("('packed is' = that engine's best pass time / embedtune packed's: how many times faster packed is; goal vs "
      "onnxruntime-node: >= 1.5x)")
for r in rows:
    if "check" in r:
        print(f"check: {r['check']} vs embedtune packed embeddings: max abs diff {r['max_abs_diff_vs_packed']:.2e}"
              f"{' (identical bits)' if r['identical'] else ''} {'OK' if r['ok'] else 'FAIL'}")
if blas:
    print(f"PyTorch BLAS: {blas['kind']} ({', '.join(blas['libs'])}); anchors ran with OPENBLAS_CORETYPE and "
          "OPENBLAS_L2_SIZE unset in their commands")
print(f"embedtune {meta.get('commit', '?')}; load average start / end: {meta.get('load_start', '?')} / {load_end} "
      "(above ~0.3 on 2 cores: other work was running, not a quiet-machine figure)")
print(f"raw results: {sys.argv[1]}")
EOF
