#!/usr/bin/env bash
# cli_eval.sh - `embedtune eval` and `embedtune score`: exact BM25 metrics on a hand-made BEIR folder,
# JSON fields and ranges with the 32-dim e2e model, STS and pairs inputs, expert scores, negatives,
# clear file:line errors; and (if the eval data is there) the cranfield BM25 reference number of docs/evaluation.md.
#
# tests/fixtures/eval/beir (BM25 k1 0.9, b 0.4; avgdl = 7/4; idf(apple) = idf(cherry) = ln 2):
#   d1 "apple banana" (2 tokens), d2 "apple" (1), d3 "cherry" (1), d4 "banana banana cherry" (3)
#   tf-part 1.9 / (1 + 0.9 (0.6 + 0.4 len/1.75)): len 1 -> 1.08838, len 2 -> 0.97364, len 3 -> 0.88079
#   q1 "apple":  d2 1.088 > d1 0.974 > d3 = d4 = 0 (corpus order) ; qrels d1:2, d3:1, d2:0
#       DCG@10 = 2/log2(3) + 1/log2(4) = 1.761860 ; IDCG = 2 + 1/log2(3) = 2.630930 ; nDCG = 0.669672
#       AP@10 = (1/2 + 2/3)/2 = 0.583333 ; RR = 1/2 ; P@10 = 0.2 ; nDCG@2 = 1.261860/2.630930 = 0.479625
#   q10 "cherry": d3 1.088 > d4 0.881 > d1 = d2 = 0 ; qrels d4:1 -> nDCG = 1/log2(3) = 0.630930, AP = 0.5, RR = 0.5
#   q3 has no judgments (not evaluated). SHA-1 split: q1 -> train, q10 -> test.
#   all: nDCG@10 0.650301, MAP@10 0.541667, MRR@10 0.5, P@10 0.15, R@10 = R@100 = 1
set -u
. tests/et_test.sh   # ET, T, ok, bad, expect_err, et_test_done
M=tests/fixtures/e2e/model
F=tests/fixtures/eval
# jnum FILE KEY: the number after "KEY": in a JSON file (first match)
jnum() { grep -oE "\"$2\":[[:space:]]*-?[0-9.eE+-]+" "$1" | head -1 | sed -E 's/.*:[[:space:]]*//'; }
# near NAME GOT WANT TOL
near() {
  if [ -n "$2" ] && awk -v g="$2" -v w="$3" -v t="$4" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= t) }'; then ok "$1 = $2"
  else bad "$1 = '$2', expected $3 (tol $4)"; fi
}
# in01 FILE KEY...: every key present and in [0, 1]
in01() {
  local f=$1; shift
  for k in "$@"; do
    v=$(jnum "$f" "$k")
    if [ -n "$v" ] && awk -v v="$v" 'BEGIN { exit !(v >= 0 && v <= 1) }'; then ok "$k in [0,1] ($v)"; else bad "$k missing or out of [0,1] ('$v')"; fi
  done
}

# ---- BM25 on the hand-made folder: exact values
"$ET" eval --bm25 --data $F/beir -q --json "$T/b.json" > "$T/table" || bad "eval --bm25 exit code"
near "bm25 nDCG@10" "$(jnum "$T/b.json" 'ndcg@10')" 0.650301 2e-6
near "bm25 MAP@10" "$(jnum "$T/b.json" 'map@10')" 0.541667 2e-6
near "bm25 MRR@10" "$(jnum "$T/b.json" 'mrr@10')" 0.5 1e-9
near "bm25 P@10" "$(jnum "$T/b.json" 'p@10')" 0.15 1e-9
near "bm25 R@100" "$(jnum "$T/b.json" 'recall@100')" 1 1e-9
near "judged queries only" "$(jnum "$T/b.json" nqueries)" 2 0
grep -qE '^  ndcg@10 +0\.6503$' "$T/table" && ok "terminal table" || bad "terminal table: $(cat "$T/table")"
"$ET" eval --bm25 --data $F/beir -q --split test --json "$T/t.json" >/dev/null
near "split test = q10 only: nDCG@10" "$(jnum "$T/t.json" 'ndcg@10')" 0.630930 2e-6
"$ET" eval --bm25 --data $F/beir -q --split train -k 2 --json "$T/t.json" >/dev/null
near "split train = q1 only: nDCG@2" "$(jnum "$T/t.json" 'ndcg@2')" 0.479625 2e-6
# --json - puts JSON on stdout and the table on stderr
"$ET" eval --bm25 --data $F/beir -q --json - > "$T/j" 2> "$T/e"
head -c1 "$T/j" | grep -q '{' && grep -q 'ndcg@10' "$T/e" && ok "--json - (JSON on stdout, table on stderr)" || bad "--json -"

# ---- the e2e model: JSON fields exist, metrics in [0, 1]
"$ET" eval --model $M --data $F/beir -q --json "$T/m.json" >/dev/null || bad "eval --model exit code"
in01 "$T/m.json" 'ndcg@10' 'map@10' 'mrr@10' 'p@10' 'recall@10' 'recall@100' auprc
for k in anisotropy mean_pos_cosine; do v=$(jnum "$T/m.json" $k); [ -n "$v" ] && awk -v v="$v" 'BEGIN{exit !(v>=-1&&v<=1)}' && ok "$k in [-1,1] ($v)" || bad "$k ('$v')"; done
grep -q '"mode":[[:space:]]*"dense"' "$T/m.json" && ok "mode dense" || bad "mode dense"
# the three modes side by side; --mode picks the one reported as "metrics"
grep -q '"by_mode"' "$T/m.json" && for mo in dense bm25 hybrid; do grep -q "\"$mo\":[[:space:]]*{" "$T/m.json" || bad "by_mode lacks $mo"; done && ok "by_mode: dense, bm25, hybrid" || bad "by_mode"
for spec in "convex:alpha=0.7" "convex:norm=zscore,alpha=0.4" "rrf:k=60,alpha=0.7" "rerank:top_n=5,alpha=0.5"; do
  "$ET" eval --model $M --data $F/beir -q --fusion "$spec" --json "$T/h.json" >/dev/null && grep -q '"mode":[[:space:]]*"hybrid"' "$T/h.json" &&
    in01 "$T/h.json" 'ndcg@10' auprc && ok "hybrid $spec" || bad "hybrid $spec"
done
"$ET" eval --model $M --data $F/beir -q --mode hybrid --json "$T/hd.json" >/dev/null && grep -q '"fusion_from":[[:space:]]*"default"' "$T/hd.json" && ok "--mode hybrid: the default fusion" || bad "--mode hybrid default"
# a convex fusion with model weight 0 is BM25's order: same nDCG as --bm25
"$ET" eval --model $M --data $F/beir -q --fusion convex:alpha=0 --json "$T/h0.json" >/dev/null
near "hybrid alpha 0 == bm25" "$(jnum "$T/h0.json" 'ndcg@10')" 0.650301 2e-6
# the model folder's retrieval.json is the default; --mode overrides it
mkdir -p "$T/m2" && for f in "$M"/*; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$T/m2/"; done
printf '{"format": "embedtune-retrieval", "version": 1, "mode": "hybrid", "bm25": {"k1": 0.9, "b": 0.4},\n "fusion": {"kind": "convex", "norm": "minmax", "alpha": 0}}\n' > "$T/m2/retrieval.json"
"$ET" eval --model "$T/m2" --data $F/beir -q --json "$T/r.json" >/dev/null && grep -q '"mode":[[:space:]]*"hybrid"' "$T/r.json" &&
  grep -q '"fusion_from":[[:space:]]*"retrieval.json"' "$T/r.json" && ok "retrieval.json: hybrid by default" || bad "retrieval.json default"
near "retrieval.json alpha 0 == bm25" "$(jnum "$T/r.json" 'ndcg@10')" 0.650301 2e-6
"$ET" eval --model "$T/m2" --data $F/beir -q --mode dense --json "$T/r2.json" >/dev/null && grep -q '"mode":[[:space:]]*"dense"' "$T/r2.json" && ok "--mode dense overrides" || bad "--mode override"
"$ET" eval --model "$T/m2" --data $F/pairs.jsonl -q --json "$T/r3.json" >/dev/null && grep -q '"mode":[[:space:]]*"dense"' "$T/r3.json" && ok "labelled pairs: saved hybrid falls back to dense" || bad "labelled pairs with retrieval.json"
printf '{"format": "embedtune-retrieval", "version": 1, "mode": "hybrid", "bm25": {"k1": 0.9, "b": 0.4}}\n' > "$T/m2/retrieval.json"
expect_err "bad retrieval.json names file and field" "m2/retrieval.json: field 'fusion' is missing" "$ET" eval --model "$T/m2" --data $F/beir -q
# STS and pairs inputs
"$ET" eval --model $M --data $F/sts.jsonl -q --json "$T/s.json" >/dev/null && v=$(jnum "$T/s.json" spearman) &&
  awk -v v="$v" 'BEGIN{exit !(v>=-100&&v<=100)}' && ok "sts spearman ($v)" || bad "sts"
"$ET" eval --model $M --data $F/pairs.jsonl -q --json "$T/p.json" >/dev/null && in01 "$T/p.json" auprc || bad "labelled pairs"
"$ET" eval --bm25 --data $F/pairs_pos.jsonl -q --json "$T/pp.json" >/dev/null && in01 "$T/pp.json" 'ndcg@10' 'mrr@10' || bad "positive pairs"

# ---- score: experts, merging, negatives
"$ET" score --in $F/pairs.jsonl --out "$T/s1.jsonl" --bm25 --model $M --model $M/ -q || bad "score exit code"
[ "$(wc -l < "$T/s1.jsonl")" -eq 11 ] && ok "score: one row per input row" || bad "score rows: $(wc -l < "$T/s1.jsonl")"
head -1 "$T/s1.jsonl" | grep -qE '"experts":\{"bm25":[0-9.e+-]+,"model":[0-9.e+-]+,"model_2":[0-9.e+-]+\}' &&
  ok "score: experts bm25, model, model_2 (repeated --model)" || bad "score experts: $(head -1 "$T/s1.jsonl")"
head -1 "$T/s1.jsonl" | grep -q '"label":1,"id":"a1"' && ok "score: label and id kept" || bad "label/id: $(head -1 "$T/s1.jsonl")"
sed -n 3p "$T/s1.jsonl" | grep -q '"bm25":0,' && ok "score: bm25 0 without a shared term" || bad "bm25 zero: $(sed -n 3p "$T/s1.jsonl")"
# the output is a valid labelled pairs file (the reader takes it back)
"$ET" eval --model $M --data "$T/s1.jsonl" -q >/dev/null && ok "score output reads back" || bad "score output unreadable"
# the user's own scores keep their names; a computed expert of the same name replaces its column
"$ET" score --in tests/fixtures/data/pairwise_named.jsonl --out "$T/s2.jsonl" --bm25 2>"$T/e" >/dev/null
head -1 "$T/s2.jsonl" | grep -qE '"experts":\{"minilm":0.8,"bm25":[0-9.e+-]+\}' && grep -q "replaces" "$T/e" &&
  ok "score: merge with user scores" || bad "merge: $(head -1 "$T/s2.jsonl") / $(cat "$T/e")"
# negatives: 8 positive pairs over 8 passages, 2 negatives each
"$ET" score --in $F/pairs_pos.jsonl --out "$T/n1.jsonl" --bm25 --negatives 2 --neg-mode hard -q
[ "$(wc -l < "$T/n1.jsonl")" -eq 24 ] && [ "$(grep -c '"label":0' "$T/n1.jsonl")" -eq 16 ] && ok "hard negatives: 8 + 16 rows" || bad "hard negatives rows"
# hard negative of "what does the wing do" by BM25 = "lift on the wing lets airplanes fly" (shares "the", "wing")
grep '"query":"what does the wing do","passage":"lift on the wing' "$T/n1.jsonl" | grep -q '"label":0' && ok "hard negative by bm25" || bad "hard negative choice"
"$ET" score --in $F/pairs_pos.jsonl --out "$T/r1.jsonl" --bm25 --negatives 3 --seed 7 -q
"$ET" score --in $F/pairs_pos.jsonl --out "$T/r2.jsonl" --bm25 --negatives 3 --seed 7 -q
"$ET" score --in $F/pairs_pos.jsonl --out "$T/r3.jsonl" --bm25 --negatives 3 --seed 8 -q
cmp -s "$T/r1.jsonl" "$T/r2.jsonl" && ok "random negatives: same seed, same file" || bad "random negatives not deterministic"
cmp -s "$T/r1.jsonl" "$T/r3.jsonl" && bad "seeds 7 and 8 give the same negatives" || ok "random negatives depend on the seed"
[ -z "$(ls "$T" | grep -E '\.tmp')" ] && ok "no temp files left" || bad "temp files left"

# ---- mine: 8 queries, 8 passages, each passage the positive of exactly one query
"$ET" mine --model $M --in $F/pairs_pos.jsonl --out "$T/m.jsonl" --range 0:8 --negatives 7 -q || bad "mine exit code"
[ "$(wc -l < "$T/m.jsonl")" -eq 8 ] && ok "mine: one record per (query, positive)" || bad "mine records"
# window 0:8 = the whole corpus: 7 negatives each (all but the positive), each with its own query (no null)
[ "$(grep -o '"negatives":\[[^]]*\]' "$T/m.jsonl" | grep -o '","' | wc -l)" -eq $((8 * 6)) ] && ! grep -q null "$T/m.jsonl" &&
  ok "mine: 7 negatives per query, all with an own query" || bad "mine negatives: $(head -1 "$T/m.jsonl")"
grep '"query":"why do cats sleep"' "$T/m.jsonl" | grep -q '"negatives":\[[^]]*"cats sleep most' && bad "mine: positive among negatives" || ok "mine: positive excluded"
"$ET" eval --model $M --data "$T/m.jsonl" -q >/dev/null && ok "mine output reads back as pairs" || bad "mine output unreadable"
"$ET" mine --model $M --in $F/pairs_pos.jsonl --out "$T/m2.jsonl" --range 1:3 --negatives 5 --corpus $F/beir/corpus.jsonl -q &&
  [ "$(grep -o '"negatives":\[[^]]*\]' "$T/m2.jsonl" | grep -o '","' | wc -l)" -le 8 ] && ok "mine: rank window 1:3 -> at most 2 negatives" || bad "mine window"
expect_err "mine: bad --range" 'range must be' "$ET" mine --model $M --in $F/pairs_pos.jsonl --out "$T/x" --range 5:2

# ---- errors
expect_err "bad corpus line -> file:line" 'corpus\.jsonl:2' "$ET" eval --bm25 --data $F/beir_bad -q
expect_err "bad STS line -> file:line" 'sts_bad\.jsonl:2: .*score' "$ET" eval --model $M --data $F/sts_bad.jsonl -q
# STS text is strict UTF-8 for every command (one reader, data.h; eval once took Latin-1 bytes)
expect_err "STS Latin-1 byte (eval) -> file:line" 'sts_latin1\.jsonl:2: .*UTF-8' "$ET" eval --model $M --data $F/sts_latin1.jsonl -q
expect_err "STS Latin-1 byte (finetune) -> file:line" 'sts_latin1\.jsonl:2: .*UTF-8' "$ET" finetune --model $M --data $F/sts.jsonl --eval $F/sts_latin1.jsonl --out "$T/ft" --loss mse -q
expect_err "bad pairs line (eval) -> file:line" 'pairs_bad\.jsonl:3' "$ET" eval --model $M --data $F/pairs_bad.jsonl -q
expect_err "bad pairs line (score) -> file:line" 'pairs_bad\.jsonl:3' "$ET" score --in $F/pairs_bad.jsonl --out "$T/x" --bm25
"$ET" score --in $F/pairs_bad.jsonl --out "$T/x.jsonl" --bm25 --skip-bad 2>"$T/e" >/dev/null && [ "$(wc -l < "$T/x.jsonl")" -eq 2 ] &&
  grep -q 'pairs_bad.jsonl:3' "$T/e" && ok "--skip-bad reports and skips" || bad "--skip-bad"
expect_err "eval without --model or --bm25" 'missing --model' "$ET" eval --data $F/beir
expect_err "bad --split" 'split must be' "$ET" eval --bm25 --data $F/beir --split dev
expect_err "bad --mode" 'mode must be dense, bm25 or hybrid' "$ET" eval --model $M --data $F/beir --mode max
expect_err "bad --fusion" "field 'k': must be in" "$ET" eval --model $M --data $F/beir --fusion rrf:k=0
expect_err "hybrid on STS" 'scored by the model only' "$ET" eval --model $M --data $F/sts.jsonl --mode hybrid
expect_err "missing data" 'no such file' "$ET" eval --bm25 --data $T/nope
expect_err "score without experts" 'at least one expert' "$ET" score --in $F/pairs.jsonl --out "$T/x"
expect_err "score: negatives with user scores" 'own expert scores' "$ET" score --in tests/fixtures/data/pairwise_named.jsonl --out "$T/x" --bm25 --negatives 1
expect_err "score: bad model folder" 'config\.json' "$ET" score --in $F/pairs.jsonl --out "$T/x" --model $T

# ---- the docs/evaluation.md reference numbers (skipped without the data)
ED=${ET_EVAL_DATA:-../shared/eval-data}
if [ -f "$ED/cranfield/qrels.tsv" ]; then
  "$ET" eval --bm25 --data "$ED/cranfield" -q --json "$T/c.json" >/dev/null
  near "cranfield BM25 nDCG@10 (docs/evaluation.md 0.3104)" "$(jnum "$T/c.json" 'ndcg@10')" 0.3104 5e-5
  near "cranfield BM25 MAP@10 (docs/evaluation.md 0.1965)" "$(jnum "$T/c.json" 'map@10')" 0.1965 5e-5
  near "cranfield BM25 R@100 (docs/evaluation.md 0.6795)" "$(jnum "$T/c.json" 'recall@100')" 0.6795 5e-5
else
  echo "skip: cranfield baseline (no eval data at $ED; set ET_EVAL_DATA)"
fi

et_test_done cli_eval
