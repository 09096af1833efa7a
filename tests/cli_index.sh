#!/usr/bin/env bash
# cli_index.sh - `embedtune index` and `search --index`: the index gives BM25 bit-identical to searching the corpus,
# dense/hybrid within the quantisation (f16: same ranking here), and every damaged or mismatched index is refused
# with a message naming the problem (no crash); int8 inference of the index's model is accepted, a LoRA adapter of it is
# refused (the same-model check); eval --index evaluates over an index as over its corpus.
set -u
. tests/et_test.sh   # ET, T, ok, bad, expect_err, et_test_done
M=tests/fixtures/e2e/model
ids() { grep -o '"id":"[^"]*"' "$1" | tr '\n' ' '; }

words=(boundary layer flow plate heat transfer wing shock wave pressure laminar turbulent supersonic jet nozzle
       cylinder skin friction buckling shell panel flutter cone drag lift vortex wake mach number stress)
for i in $(seq 0 39); do
  t=""; for j in 0 1 2 3 4 5 6; do t="$t ${words[$(( (i * 7 + j * j * 3 + i / 3) % ${#words[@]} ))]}"; done
  printf '{"_id":"d%d","title":"doc %d","text":"%s"}\n' "$i" "$i" "$t"
done > "$T/corpus.jsonl"
printf 'boundary layer heat transfer\nshock wave on a cone\nflutter of a panel at mach number 2\n' > "$T/q.txt"

for dt in int8 f16 none; do
  "$ET" index --model "$M" --corpus "$T/corpus.jsonl" --out "$T/$dt.etix" --dtype $dt -q && ok "index --dtype $dt" || bad "index --dtype $dt"
done
"$ET" index --model "$M" --corpus "$T/corpus.jsonl" --out "$T/nt.etix" --no-text -q && ok "index --no-text" || bad "index --no-text"
[ -z "$(ls "$T" | grep -E '\.tmp')" ] && ok "no temp files left" || bad "temp files left"
# sizes: header 64 + ids + texts + probe 32*4 + (int8: 40*4 scales + 40*32) | (f16: 40*32*2) + BM25
s8=$(stat -c %s "$T/int8.etix"); s16=$(stat -c %s "$T/f16.etix"); sn=$(stat -c %s "$T/none.etix")
[ $((s16 - s8)) -eq $((40*32*2 - 40*4 - 40*32)) ] && ok "int8 vs f16 size difference" || bad "sizes int8 $s8 f16 $s16"
[ $((s8 - sn)) -eq $((32*4 + 40*4 + 40*32)) ] && ok "int8 vs none size difference" || bad "sizes int8 $s8 none $sn"
[ "$(head -c 7 "$T/int8.etix")" = "ETINDEX" ] && ok "magic" || bad "magic"

# BM25 from the index == BM25 over the corpus, byte for byte (scores included), for every dtype
"$ET" search --model "$M" --corpus "$T/corpus.jsonl" --queries "$T/q.txt" --mode bm25 --json -k 40 -q > "$T/c.bm25"
for dt in int8 f16 none; do
  "$ET" search --model "$M" --index "$T/$dt.etix" --queries "$T/q.txt" --mode bm25 --json -k 40 -q > "$T/i.bm25"
  [ -s "$T/c.bm25" ] && cmp -s "$T/c.bm25" "$T/i.bm25" && ok "bm25 via $dt index == via corpus" || bad "bm25 via $dt index differs"
done
# dense and hybrid: f16 keeps this ranking; int8 keeps the top result
for mode in dense hybrid; do
  "$ET" search --model "$M" --corpus "$T/corpus.jsonl" --queries "$T/q.txt" --mode $mode --json -k 10 -q > "$T/c.$mode"
  "$ET" search --model "$M" --index "$T/f16.etix" --queries "$T/q.txt" --mode $mode --json -k 10 -q > "$T/f.$mode"
  "$ET" search --model "$M" --index "$T/int8.etix" --queries "$T/q.txt" --mode $mode --json -k 10 -q > "$T/i.$mode"
  [ -n "$(ids "$T/c.$mode")" ] && [ "$(ids "$T/c.$mode")" = "$(ids "$T/f.$mode")" ] && ok "$mode via f16 index: same ranking" || bad "$mode via f16: $(ids "$T/f.$mode") vs $(ids "$T/c.$mode")"
  a=$(grep -o '"rank":1,"id":"[^"]*"' "$T/c.$mode"); b=$(grep -o '"rank":1,"id":"[^"]*"' "$T/i.$mode")
  [ -n "$a" ] && [ "$a" = "$b" ] && ok "$mode via int8 index: same top results" || bad "$mode via int8: $b vs $a"
done
# the table form shows the stored text; --no-text shows the id only
"$ET" search --model "$M" --index "$T/int8.etix" --query "shock wave" -q | grep -q "doc [0-9]" && ok "table shows stored text" || bad "table text"
"$ET" search --model "$M" --index "$T/nt.etix" --query "shock wave" -q > "$T/out" && ! grep -q "doc [0-9]" "$T/out" && ok "--no-text index searches" || bad "--no-text"

# errors
expect_err "index needs --out" "missing required option --out" "$ET" index --model "$M" --corpus "$T/corpus.jsonl"
expect_err "bad --dtype" "unknown index dtype 'int4'" "$ET" index --model "$M" --corpus "$T/corpus.jsonl" --out "$T/x" --dtype int4
expect_err "--corpus and --index together" "exactly one of --corpus FILE or --index FILE" "$ET" search --model "$M" --corpus "$T/corpus.jsonl" --index "$T/f16.etix" --query x
expect_err "not an index" "not an embedtune index" "$ET" search --model "$M" --index "$T/corpus.jsonl" --query x
head -c 1000 "$T/int8.etix" > "$T/trunc.etix"
expect_err "truncated index" "truncated" "$ET" search --model "$M" --index "$T/trunc.etix" --query x
expect_err "dense on a none index" "holds no embeddings" "$ET" search --model "$M" --index "$T/none.etix" --query x --mode dense
expect_err "another model (dim)" "32-dimensional model, this one has 128" "$ET" search --model models/compact --index "$T/int8.etix" --query x --mode dense
# the probe (after the header and the ids of a --no-text index) zeroed: the model no longer matches
idb=$(od -An -tu8 -j32 -N8 "$T/nt.etix" | tr -d ' ')
cp "$T/nt.etix" "$T/probe.etix"
dd if=/dev/zero of="$T/probe.etix" bs=1 seek=$((64 + (idb + 7) / 8 * 8)) count=128 conv=notrunc 2>/dev/null
expect_err "another model (probe)" "built with another model" "$ET" search --model "$M" --index "$T/probe.etix" --query x --mode dense
"$ET" search --model "$M" --index "$T/probe.etix" --query x --mode bm25 -q >/dev/null && ok "bm25 needs no probe" || bad "bm25 with a zeroed probe"
# the same-model check with int8 and with LoRA adapters (src/index.h et_index_probe): int8 inference of the same weights
# (--int8, an int8 export) is the same model both ways, with the same top results; an adapter is another model
top() { grep -o '"rank":1,"id":"[^"]*"' "$1" | tr '\n' ' '; }
"$ET" search --model "$M" --index "$T/f16.etix" --queries "$T/q.txt" --mode dense --json -k 3 -q > "$T/s.fp"
"$ET" quantize --model "$M" --out "$T/m8" >/dev/null 2>&1 || bad "quantize"
"$ET" search --model "$M" --int8 --index "$T/f16.etix" --queries "$T/q.txt" --mode dense --json -k 3 -q > "$T/s.i8" 2>"$T/err" &&
  [ -n "$(top "$T/s.fp")" ] && [ "$(top "$T/s.fp")" = "$(top "$T/s.i8")" ] && ok "float index, search --int8: accepted, same top results" || bad "search --int8: $(cat "$T/err") $(top "$T/s.i8")"
"$ET" search --model "$T/m8" --index "$T/f16.etix" --queries "$T/q.txt" --mode dense --json -k 3 -q > "$T/s.x8" 2>"$T/err" &&
  [ "$(top "$T/s.fp")" = "$(top "$T/s.x8")" ] && ok "float index, search by the int8 export: accepted, same top results" || bad "int8 export: $(cat "$T/err") $(top "$T/s.x8")"
"$ET" index --model "$T/m8" --corpus "$T/corpus.jsonl" --out "$T/m8.etix" --dtype f16 -q || bad "index by the int8 export"
"$ET" search --model "$M" --index "$T/m8.etix" --queries "$T/q.txt" --mode dense --json -k 3 -q > "$T/s.m8" 2>"$T/err" &&
  [ "$(top "$T/s.fp")" = "$(top "$T/s.m8")" ] && ok "int8 export's index, search by the float model: accepted, same top results" || bad "int8 export's index: $(cat "$T/err") $(top "$T/s.m8")"
AD=tests/fixtures/lora/adapter   # an adapter of $M (tools/gen_lora_fixture.py)
expect_err "base's index, search by an adapter (as --model): refused" "built with another model: the probe text's embeddings have cosine 0\.[0-9]+, below 0\.999" \
  "$ET" search --model "$AD" --index "$T/f16.etix" --query x --mode dense
expect_err "base's index, search --adapter: refused" "built with another model" "$ET" search --model "$M" --adapter "$AD" --index "$T/f16.etix" --query x --mode hybrid
"$ET" search --model "$M" --adapter "$AD" --index "$T/f16.etix" --query "shock wave" --mode bm25 -q >/dev/null && ok "base's index, --adapter, bm25: no model check" || bad "bm25 with --adapter"
"$ET" index --model "$AD" --corpus "$T/corpus.jsonl" --out "$T/ad.etix" --dtype f16 -q || bad "index by the adapter (as --model)"
"$ET" search --model "$M" --adapter "$AD" --corpus "$T/corpus.jsonl" --queries "$T/q.txt" --mode dense --json -k 3 -q > "$T/s.adc"
"$ET" search --model "$M" --adapter "$AD" --index "$T/ad.etix" --queries "$T/q.txt" --mode dense --json -k 3 -q > "$T/s.adi" 2>"$T/err" &&
  [ -n "$(top "$T/s.adc")" ] && [ "$(top "$T/s.adc")" = "$(top "$T/s.adi")" ] && ok "adapter's index, search --adapter: accepted, same top results as its corpus search" || bad "adapter's index: $(cat "$T/err")"
expect_err "adapter's index, search by the base: refused" "built with another model" "$ET" search --model "$M" --index "$T/ad.etix" --query x --mode dense
# eval --index: a BEIR folder's corpus from an index. The index is built from the corpus in reverse order, so the
# judgments must be renumbered to its rows; it must give the metrics of eval over the reversed corpus (the same doc
# order: ties rank alike): the cosine-based ones within 1e-3 (f16), BM25's exactly
B=tests/fixtures/eval/beir
mkdir -p "$T/brev"
tac "$B/corpus.jsonl" > "$T/brev/corpus.jsonl"
cp "$B/queries.jsonl" "$B/qrels.tsv" "$T/brev/"
"$ET" index --model "$M" --corpus "$T/brev/corpus.jsonl" --out "$T/ev.etix" --dtype f16 -q || bad "index of the eval corpus"
"$ET" eval --model "$M" --data "$T/brev" --json "$T/e.json" -q > /dev/null || bad "eval"
"$ET" eval --model "$M" --data "$B" --index "$T/ev.etix" --json "$T/ei.json" -q > /dev/null 2>"$T/err" || bad "eval --index: $(cat "$T/err")"
python3 - "$T/e.json" "$T/ei.json" <<'PY' && ok "eval --index == eval (every mode; BM25 exactly)" || bad "eval --index differs from eval"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert b["index"]["dtype"] == "f16" and "bm25" not in b, b.keys()
for mode in ("dense", "bm25", "hybrid"):
    x, y = a["by_mode"][mode], b["by_mode"][mode]
    assert x.keys() == y.keys(), (mode, x.keys(), y.keys())
    for k in x:
        tol = 0 if mode == "bm25" or k not in ("anisotropy", "mean_pos_cosine", "auprc") else 1e-3
        assert abs(x[k] - y[k]) <= tol, (mode, k, x[k], y[k])
PY
"$ET" eval --bm25 --data "$T/brev" --json "$T/b.json" -q > /dev/null && "$ET" eval --bm25 --data "$B" --index "$T/ev.etix" --json "$T/bi.json" -q > /dev/null &&
  python3 -c "import json,sys; a,b=(json.load(open(p))['metrics'] for p in sys.argv[1:]); assert a==b and a['ndcg@10']>0, (a,b)" "$T/b.json" "$T/bi.json" &&
  ok "eval --bm25 --index == eval --bm25 (no model)" || bad "eval --bm25 --index"
expect_err "eval --index with a pairs file" "needs --data to be a BEIR folder" "$ET" eval --model "$M" --data tests/fixtures/eval/pairs.jsonl --index "$T/ev.etix"
expect_err "eval --index with --dim" "no --dim, --bm25-k1 or --bm25-b" "$ET" eval --model "$M" --data "$B" --index "$T/ev.etix" --dim 16
expect_err "eval --index of another corpus" "holds 40 docs, the corpus of --data 4" "$ET" eval --model "$M" --data "$B" --index "$T/f16.etix"
sed 's/"d1"/"x1"/' "$B/corpus.jsonl" > "$T/other.jsonl"
"$ET" index --model "$M" --corpus "$T/other.jsonl" --out "$T/other.etix" -q
expect_err "eval --index: a doc id not in the corpus" "doc id 'x1' is not in the corpus of --data" "$ET" eval --model "$M" --data "$B" --index "$T/other.etix"
expect_err "eval --index by another model" "built with another model" "$ET" eval --model "$AD" --data "$B" --index "$T/ev.etix"
"$ET" index --model "$M" --corpus "$B/corpus.jsonl" --out "$T/evn.etix" --dtype none -q
expect_err "eval --index: dense on a none index" "holds no embeddings" "$ET" eval --model "$M" --data "$B" --index "$T/evn.etix"
# damaged bytes anywhere: refused or searched, never a crash
sz=$(stat -c %s "$T/int8.etix"); crash=0
for off in 8 12 16 20 24 28 32 40 48 56 $((sz - 8)) $((sz - 100)) $((sz - 300)) $((sz / 2)) $((sz / 3)) $((sz - 1500)); do
  cp "$T/int8.etix" "$T/bad.etix"
  printf '\xff\x7f\x00\x80' | dd of="$T/bad.etix" bs=1 seek=$off conv=notrunc 2>/dev/null
  "$ET" search --model "$M" --index "$T/bad.etix" --query "shock wave" --mode hybrid -q >/dev/null 2>"$T/err"; rc=$?
  if [ $rc -ge 128 ] || { [ $rc -ne 0 ] && ! grep -q "bad.etix" "$T/err"; }; then crash=1; echo "  offset $off: rc $rc $(head -c 200 "$T/err")"; fi
done
[ $crash -eq 0 ] && ok "damaged indexes: clear errors, no crash" || bad "damaged indexes"
"$ET" index --help | grep -q -- "--dtype" && ok "index --help" || bad "index --help"

et_test_done cli_index
