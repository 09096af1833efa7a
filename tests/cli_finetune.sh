#!/usr/bin/env bash
# cli_finetune.sh - `embedtune finetune` end to end with the 32-dim e2e model on tests/fixtures/finetune
# (tools/gen_finetune_fixture.py: 12 topics, 72 queries of which 9 are held out by the SHA-1 rule):
#   - the before/after table and JSON (before/after for every metric, bm25 for the retrieval ones);
#   - training on the train topics improves held-out nDCG@10 by > 0.05;
#   - the numbers agree with `embedtune eval --split test` of the starting model, the tuned model and BM25,
#     so finetune's split and metrics are eval's;
#   - the output is a loadable Hugging Face folder with no checkpoints left;
#   - a pairs file and an STS file with --eval; bad input gives clear errors.
set -u
. tests/et_test.sh   # ET, T, ok, bad, expect_err, et_test_done
M=tests/fixtures/e2e/model
F=tests/fixtures/finetune
# block FILE NAME: the lines of the JSON object "NAME": { ... } (cJSON prints one key per line)
block() { sed -n "/\"$2\":[[:space:]]*{/,/}/p" "$1"; }
# bnum FILE BLOCK KEY
bnum() { block "$1" "$2" | grep -oE "\"$3\":[[:space:]]*-?[0-9.eE+-]+" | head -1 | sed -E 's/.*:[[:space:]]*//'; }
jnum() { grep -oE "\"$2\":[[:space:]]*-?[0-9.eE+-]+" "$1" | head -1 | sed -E 's/.*:[[:space:]]*//'; }
near() {
  if [ -n "$2" ] && awk -v g="$2" -v w="$3" -v t="$4" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= t) }'; then ok "$1 = $2"
  else bad "$1 = '$2', expected '$3' (tol $4)"; fi
}
FT=(--lr 1e-3 --epochs 5 --negatives 3 --no-dropout --max-len 32 --threads 2 --dev off)

# 1. BEIR + infonce
"$ET" finetune --model $M --data $F/beir --out "$T/m" --loss infonce "${FT[@]}" --json "$T/r.json" >"$T/table" 2>"$T/log"
rc=$?
[ $rc -eq 0 ] && ok "finetune beir infonce" || { bad "finetune beir infonce rc=$rc: $(tail -3 "$T/log")"; }
grep -qE "^  ndcg@10 +[0-9.]+ +[0-9.]+ +-?[0-9.]+ +[0-9.]+" "$T/table" && ok "table row ndcg@10" || bad "table: $(cat "$T/table")"
grep -q "train: step 60/60" "$T/log" && ok "progress line" || bad "no progress line in stderr"
# every step of the evaluation has its progress line, the fusion's cross-validation too (176 = the grid + 3 rules)
for st in "encode eval corpus: [0-9]+/[0-9]+ texts" "BM25 index: [0-9]+/[0-9]+ docs" "candidates: [0-9]+/[0-9]+ queries" \
          "fusion set: candidates: 63/63 queries" "fusion cross-validation: 176/176 grid points"; do
  tr '\r' '\n' <"$T/log" | grep -qE "^$st" && ok "progress line '$st'" || bad "no progress line '$st' in stderr"
done
for k in ndcg@10 map@10 mrr@10 recall@100 auprc anisotropy mean_pos_cosine; do
  b=$(bnum "$T/r.json" before "$k"); a=$(bnum "$T/r.json" after "$k")
  [ -n "$b" ] && [ -n "$a" ] && ok "before/after $k ($b -> $a)" || bad "before/after $k missing"
done
for k in ndcg@10 map@10 mrr@10 recall@100 auprc; do
  [ -n "$(bnum "$T/r.json" bm25 "$k")" ] && ok "bm25 $k" || bad "bm25 $k missing"
done
near "held-out queries" "$(bnum "$T/r.json" counts test)" 9 0
near "train queries" "$(bnum "$T/r.json" counts train)" 63 0
# default --refresh-every auto: 12 steps per epoch -> re-mine every 3 steps -> steps 3, 6, ..., 57 of 60
near "auto refresh interval" "$(bnum "$T/r.json" settings refresh_every)" 3 0
near "auto refreshes" "$(bnum "$T/r.json" counts refreshes)" 19 0
grep -q "ANCE refresh 19" "$T/log" && ok "refreshes logged" || bad "no 'ANCE refresh 19' in the log"
b=$(bnum "$T/r.json" before ndcg@10); a=$(bnum "$T/r.json" after ndcg@10)
awk -v a="$a" -v b="$b" 'BEGIN { exit !(a > b + 0.05) }' && ok "nDCG@10 improves ($b -> $a)" || bad "nDCG@10 did not improve by 0.05 ($b -> $a)"
for f in config.json model.safetensors vocab.txt modules.json 1_Pooling/config.json; do
  [ -f "$T/m/$f" ] && ok "output has $f" || bad "output lacks $f"
done
ls -d "$T"/m/checkpoint-* "$T/m/latest" >/dev/null 2>&1 && bad "checkpoints left in the output" || ok "no checkpoints left"

# 2. the same numbers as `embedtune eval --split test`
"$ET" eval --model "$T/m" --data $F/beir --split test --mode dense --json "$T/ea.json" -q >/dev/null 2>"$T/err" || bad "eval tuned: $(cat "$T/err")"
"$ET" eval --model $M --data $F/beir --split test --json "$T/eb.json" -q >/dev/null 2>"$T/err" || bad "eval start: $(cat "$T/err")"
"$ET" eval --bm25 --data $F/beir --split test --json "$T/em.json" -q >/dev/null 2>"$T/err" || bad "eval bm25: $(cat "$T/err")"
for k in ndcg@10 map@10 mrr@10 recall@100 auprc anisotropy; do
  near "after $k = eval of the output" "$(bnum "$T/r.json" after "$k")" "$(jnum "$T/ea.json" "$k")" 2e-5
  near "before $k = eval of the start" "$(bnum "$T/r.json" before "$k")" "$(jnum "$T/eb.json" "$k")" 2e-5
done
for k in ndcg@10 map@10 mrr@10 recall@100 auprc; do
  near "bm25 $k = eval --bm25" "$(bnum "$T/r.json" bm25 "$k")" "$(jnum "$T/em.json" "$k")" 2e-5
done

# 2b. the learned fusion: OUT/retrieval.json makes hybrid the default of eval, with the numbers finetune reported
[ -f "$T/m/retrieval.json" ] && grep -q '"mode":[[:space:]]*"hybrid"' "$T/m/retrieval.json" && ok "retrieval.json written (hybrid)" || bad "no hybrid retrieval.json in the output"
grep -q '"learned_fusion"' "$T/r.json" && ok "report has the hybrid part" || bad "no hybrid part in the report"
"$ET" eval --model "$T/m" --data $F/beir --split test --json "$T/eh.json" -q >/dev/null 2>"$T/err" || bad "eval hybrid: $(cat "$T/err")"
grep -q '"mode":[[:space:]]*"hybrid"' "$T/eh.json" && grep -q '"fusion_from":[[:space:]]*"retrieval.json"' "$T/eh.json" && ok "eval defaults to the saved fusion" || bad "eval did not use retrieval.json"
hl=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['hybrid']['after']['hybrid_learned']['ndcg@10'])" "$T/r.json")
near "hybrid after = eval of the output (saved fusion)" "$hl" "$(jnum "$T/eh.json" 'ndcg@10')" 2e-5
hd=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['hybrid']['before']['dense']['ndcg@10'])" "$T/r.json")
near "hybrid report: dense before = before" "$hd" "$(bnum "$T/r.json" before ndcg@10)" 2e-6

# 2c. BM25's k1/b: the default run kept k1 0.9, b 0.4; --bm25-fit learns them on the training queries (on this
#     fixture the grid's best, k1 0.5, b 0.2, beats the default beyond the se rule), saves them, and eval uses them
grep -qE '"k1":[[:space:]]*0.9,' "$T/m/retrieval.json" && grep -qE '"b":[[:space:]]*0.4,' "$T/m/retrieval.json" && ok "default run: BM25 k1 0.9, b 0.4" || bad "default run changed BM25's settings"
"$ET" finetune --model $M --data $F/beir --out "$T/bf" --bm25-fit --epochs 1 --dev off --threads 2 --json "$T/bf.json" >/dev/null 2>"$T/err"
[ $? -eq 0 ] && ok "--bm25-fit" || bad "--bm25-fit: $(tail -3 "$T/err")"
# its grid (6 k1 x 6 b) reports a count like every other step
tr '\r' '\n' <"$T/err" | grep -qE "^BM25 k1/b fit: 36/36 grid points" && ok "progress line 'BM25 k1/b fit: 36/36'" || bad "no progress line 'BM25 k1/b fit: 36/36 grid points' in stderr"
grep -qE '"k1":[[:space:]]*0.5,' "$T/bf/retrieval.json" && grep -qE '"b":[[:space:]]*0.2,' "$T/bf/retrieval.json" && ok "--bm25-fit saved k1 0.5, b 0.2" || bad "--bm25-fit: retrieval.json has $(grep -E '"(k1|b)"' "$T/bf/retrieval.json" | tr -d '\n\t ')"
python3 -c "import json,sys; b=json.load(open(sys.argv[1]))['hybrid']['bm25_settings']; sys.exit(0 if b['learned'] and b['k1']==0.5 else 1)" "$T/bf.json" && ok "--bm25-fit in the report" || bad "--bm25-fit: report lacks bm25_settings"
"$ET" eval --model "$T/bf" --data $F/beir --split test --mode bm25 --json "$T/ebf.json" -q >/dev/null 2>"$T/err" || bad "eval --bm25-fit output: $(cat "$T/err")"
"$ET" eval --bm25 --bm25-k1 0.5 --bm25-b 0.2 --data $F/beir --split test --json "$T/ebf2.json" -q >/dev/null 2>"$T/err" || bad "eval k1 0.5: $(cat "$T/err")"
near "eval of the --bm25-fit folder uses its k1/b" "$(jnum "$T/ebf.json" 'ndcg@10')" "$(jnum "$T/ebf2.json" 'ndcg@10')" 1e-9

# 3. pairs file (split by "id") and STS with --eval; JSON to stdout
"$ET" finetune --model $M --data $F/pairs.jsonl --out "$T/p" --loss soft1 --epochs 1 --negatives 2 --threads 2 -q --json - >"$T/p.json" 2>"$T/err"
[ $? -eq 0 ] && ok "pairs soft1" || bad "pairs soft1: $(cat "$T/err")"
near "pairs held-out queries" "$(bnum "$T/p.json" counts test)" 9 0
grep -q '"bm25"' "$T/p.json" && ok "soft1 expert bm25 listed" || bad "no bm25 expert in settings"
"$ET" finetune --model $M --data tests/fixtures/eval/sts.jsonl --eval tests/fixtures/eval/sts.jsonl --out "$T/s" --loss mse --threads 2 -q --json "$T/s.json" >/dev/null 2>"$T/err"
[ $? -eq 0 ] && ok "sts mse" || bad "sts mse: $(cat "$T/err")"
[ -n "$(bnum "$T/s.json" before spearman)" ] && [ -n "$(bnum "$T/s.json" after spearman)" ] && ok "sts spearman before/after" || bad "sts spearman missing"

# MoE (CLP paper): 2 experts, train only routers + experts; the saved config carries the experts
"$ET" finetune --model $M --data $F/beir --out "$T/moe" --loss clp --moe-experts 2 --train-only moe --moe-gate unscaled --epochs 1 --refresh-every 0 --no-fusion --threads 2 -q --json "$T/moe.json" >/dev/null 2>"$T/err"
[ $? -eq 0 ] && ok "moe clp" || bad "moe clp: $(cat "$T/err")"
near "--refresh-every 0: no refresh" "$(bnum "$T/moe.json" counts refreshes)" 0 0
grep -qE '"num_experts":[[:space:]]*2' "$T/moe/config.json" && ok "saved config has num_experts 2" || bad "num_experts missing in $T/moe/config.json"
"$ET" eval --model "$T/moe" --data $F/beir --split test -q >/dev/null 2>"$T/err" && ok "MoE output loads in eval" || bad "MoE output: $(cat "$T/err")"
[ -f "$T/moe/retrieval.json" ] && bad "--no-fusion wrote retrieval.json" || ok "--no-fusion: no retrieval.json"
# BM25 hard negatives: mined from BM25's ranking, never re-mined; clp gets own queries from them too
"$ET" finetune --model $M --data $F/beir --out "$T/bn" --loss clp --neg-source bm25 --epochs 1 --dev off --threads 2 --json "$T/bn.json" >/dev/null 2>"$T/log"
[ $? -eq 0 ] && ok "--neg-source bm25" || bad "--neg-source bm25: $(tail -3 "$T/log")"
grep -q "BM25 mining: 63 train queries" "$T/log" && ok "BM25 mining logged" || bad "no BM25 mining in the log: $(grep -i mining "$T/log")"
near "bm25 negatives: no refresh" "$(bnum "$T/bn.json" counts refreshes)" 0 0
grep -q '"neg_source":[[:space:]]*"bm25"' "$T/bn.json" && ok "neg_source in the report" || bad "neg_source missing"
"$ET" finetune --model $M --data $F/beir --out "$T/mx" --loss infonce --neg-source mix --epochs 1 --refresh-every 0 --threads 2 -q --json "$T/mx.json" >/dev/null 2>"$T/err"
[ $? -eq 0 ] && [ "$(bnum "$T/mx.json" counts mined_negatives)" -gt 0 ] && ok "--neg-source mix" || bad "--neg-source mix: $(cat "$T/err")"
expect_err "bad --neg-source" "neg-source must be ance, bm25 or mix" "$ET" finetune --model $M --data $F/beir --out "$T/x" --loss infonce --neg-source magic

# 3b. soft-label guards (issue 20): a labelled file whose only expert is raw, unbounded BM25 (made by `score`)
"$ET" score --in $F/pairs.jsonl --out "$T/bm.jsonl" --bm25 --negatives 3 --neg-mode random -q 2>"$T/err" || bad "score: $(cat "$T/err")"
# without normalisation most soft1 targets sit at the clamp: refused, naming the cause and the fix; nothing written
expect_err "raw BM25 refused" "clamped at \+-1.*--soft-norm rank" "$ET" finetune --model $M --data "$T/bm.jsonl" --out "$T/raw" --loss soft1 --no-bm25 --no-start-expert --soft-norm none --threads 2 -q
[ -f "$T/raw/model.safetensors" ] && bad "a model was written after the refusal" || ok "no model after the refusal"
# at the defaults the same file gets the rank normalisation: nothing clamped, positives above negatives, and training
# does not lift the held-out anisotropy by more than 0.05
"$ET" finetune --model $M --data "$T/bm.jsonl" --out "$T/rk" --loss soft1 --no-bm25 --no-start-expert --threads 2 --json "$T/rk.json" >/dev/null 2>"$T/log"
[ $? -eq 0 ] && ok "raw BM25 file trains at the defaults" || bad "raw BM25 defaults: $(tail -3 "$T/log")"
grep -q "soft targets (soft1, --soft-norm rank, 1 expert(s)): 0.0% at the clamp" "$T/log" && ok "target report in the log" || bad "no target report: $(grep 'soft targets' "$T/log")"
near "share clamped" "$(bnum "$T/rk.json" soft_targets share_clamped)" 0 0
awk -v p="$(bnum "$T/rk.json" soft_targets mean_pos)" -v n="$(bnum "$T/rk.json" soft_targets mean_neg)" 'BEGIN { exit !(p > n + 0.05) }' \
  && ok "positives' targets above negatives'" || bad "targets do not separate: $(block "$T/rk.json" soft_targets)"
ab=$(bnum "$T/rk.json" before anisotropy); aa=$(bnum "$T/rk.json" after anisotropy)
awk -v a="$aa" -v b="$ab" 'BEGIN { exit !(a <= b + 0.05) }' && ok "anisotropy $ab -> $aa" || bad "anisotropy rose $ab -> $aa"
# the held-out numbers of a labelled file are eval's (one pairs protocol, evaluate.h): bm.jsonl repeats passages
# across rows (every negative is another row's passage), which once made the anisotropies differ
"$ET" eval --model $M --data "$T/bm.jsonl" --split test --json "$T/ebm.json" -q >/dev/null 2>"$T/err" || bad "eval bm.jsonl: $(cat "$T/err")"
for k in auprc anisotropy; do
  near "labelled pairs: before $k = eval --split test" "$(bnum "$T/rk.json" before "$k")" "$(jnum "$T/ebm.json" "$k")" 2e-5
done
# one expert: soft1 and soft3 give the same targets -> a warning
"$ET" finetune --model $M --data "$T/bm.jsonl" --out "$T/s3" --loss soft3 --no-bm25 --no-start-expert --threads 2 >/dev/null 2>"$T/log"
grep -q "warning: soft3 and soft1 give the same targets here (one expert" "$T/log" && ok "one-expert warning" || bad "no one-expert warning: $(grep -i warn "$T/log")"
expect_err "bad --soft-range" "soft-range" "$ET" finetune --model $M --data "$T/bm.jsonl" --out "$T/x" --loss soft1 --soft-range 0.9:0.1
expect_err "bad --soft-form" "soft-form must be list or pair" "$ET" finetune --model $M --data "$T/bm.jsonl" --out "$T/x" --loss soft1 --soft-form rows
# the list form (the default on a positives-only file): one group per positive; raw BM25 alone is refused there too
"$ET" finetune --model $M --data $F/pairs.jsonl --out "$T/pl" --loss soft2 --epochs 1 --threads 2 >/dev/null 2>"$T/log"
grep -q "soft2 in its list form: [0-9]* queries, each with its positive and up to 3 negatives" "$T/log" && ok "soft2 list form by default" || bad "no list form: $(grep -i 'soft2\|error' "$T/log" | head -3)"
expect_err "list form: raw BM25 refused" "clamped at \+-1.*--soft-norm rank" "$ET" finetune --model $M --data $F/pairs.jsonl --out "$T/plr" --loss soft1 --no-start-expert --soft-norm none --threads 2 -q
[ ! -e "$T/plr/model.safetensors" ] && ok "list form: nothing written when refused" || bad "list form: a refused run wrote a model"
"$ET" finetune --model $M --data $F/pairs.jsonl --out "$T/pp" --loss soft2 --soft-form pair --epochs 1 --threads 2 >/dev/null 2>"$T/log"
grep -q "soft targets calibrated to the starting model's cosines" "$T/log" && ok "--soft-form pair: calibrated cosine MSE" || bad "pair form: $(grep -i 'soft\|error' "$T/log" | head -3)"

# 4. automatic settings: no loss, lr, batch or epochs given -> infonce, lr by model size, early stopping on dev
"$ET" finetune --model $M --data $F/beir --out "$T/auto" --max-len 32 --threads 2 --json "$T/auto.json" >"$T/auto.table" 2>"$T/auto.log"
[ $? -eq 0 ] && ok "finetune with defaults" || bad "finetune with defaults: $(tail -3 "$T/auto.log")"
grep -qE '"loss":[[:space:]]*"infonce"' "$T/auto.json" && ok "default loss infonce" || bad "default loss"
grep -qE '"lr":[[:space:]]*"[0-9.]+ M parameters: log-linear' "$T/auto.json" && ok "lr reason" || bad "lr reason missing: $(grep -A2 '"why"' "$T/auto.json")"
near "auto lr (tiny model: clamped to 3e-4)" "$(bnum "$T/auto.json" settings lr)" 0.0003 1e-9
grep -qE '"dev":[[:space:]]*true' "$T/auto.json" && ok "dev split used" || bad "no dev split"
near "dev queries (15 % of 63 by the dev rule)" "$(bnum "$T/auto.json" settings dev_size)" 11 0
near "train queries without dev" "$(bnum "$T/auto.json" counts train)" 52 0
grep -q "finetune: lr 0.0003: " "$T/auto.log" && grep -q "finetune: dev at step 0" "$T/auto.log" && ok "settings and dev curve printed" || bad "no settings lines: $(head -20 "$T/auto.log")"
grep -q "settings: lr 0.0003" "$T/auto.table" && grep -q "kept the model of step" "$T/auto.table" && ok "table names the settings and the kept step" || bad "table: $(tail -4 "$T/auto.table")"
grep -q '"best_dev_step"' "$T/auto.json" && grep -q '"stop_reason"' "$T/auto.json" && ok "dev curve in JSON" || bad "no dev curve in JSON"
# corpus-only adaptation: no labelled query, the BEIR folder's own corpus (36 passages of 13 words: crops)
"$ET" finetune --model $M --data $F/beir --out "$T/ad" --corpus $F/beir --max-train-queries 0 --epochs 1 --max-len 32 --threads 2 -q --json "$T/ad.json" >/dev/null 2>"$T/err"
[ $? -eq 0 ] && ok "corpus-only adaptation" || bad "corpus-only adaptation: $(cat "$T/err")"
near "adaptation pairs" "$(bnum "$T/ad.json" adaptation pairs)" 36 0
printf 'one two three four five six seven eight nine. ten eleven twelve thirteen fourteen.\nfifteen sixteen seventeen eighteen nineteen twenty twenty-one twenty-two\n' >"$T/pas.txt"
"$ET" finetune --model $M --data $F/beir --out "$T/ad2" --corpus "$T/pas.txt" --max-train-queries 5 --epochs 1 --max-len 32 --threads 2 -q --json "$T/ad2.json" >/dev/null 2>"$T/err"
[ $? -eq 0 ] && ok "adaptation from a text file + 5 labelled queries" || bad "adaptation text file: $(cat "$T/err")"
near "adaptation pairs from 2 lines" "$(bnum "$T/ad2.json" adaptation pairs)" 2 0
# a pairs file with --corpus: the held-out queries are ranked among the file's 12 passages and the corpus
# passages not among them (3 lines: one repeats a pairs passage, one repeats another line: 1 new)
P1=$(head -1 $F/pairs.jsonl | sed -E 's/.*"positive": *"([^"]*)".*/\1/')
printf '%s\n%s\n%s\n' "$P1" 'a passage about nothing in particular that no query asks about' 'a passage about nothing in particular that no query asks about' >"$T/pc.txt"
"$ET" finetune --model $M --data $F/pairs.jsonl --corpus "$T/pc.txt" --out "$T/pc" --epochs 1 --max-len 32 --threads 2 -q --json "$T/pc.json" >/dev/null 2>"$T/err"
[ $? -eq 0 ] && ok "pairs + corpus" || bad "pairs + corpus: $(cat "$T/err")"
near "held-out search over the pairs' and the corpus's passages" "$(bnum "$T/pc.json" counts eval_passages)" 13 0
"$ET" finetune --model $M --data $F/pairs.jsonl --out "$T/pn" --epochs 1 --max-len 32 --threads 2 -q --json "$T/pn.json" >/dev/null 2>"$T/err"
near "held-out search over the pairs' passages alone" "$(bnum "$T/pn.json" counts eval_passages)" 12 0
# memory: the run's estimate is reported, and a run above --mem-budget is refused before any encoding (no --out)
est=$(bnum "$T/pn.json" memory estimate_mib)
awk -v e="$est" 'BEGIN { exit !(e > 0 && e < 8192) }' && ok "memory estimate reported ($est MiB)" || bad "memory estimate: '$est'"
expect_err "memory refused up front" "this run needs about [0-9.]+ MiB \(training [0-9.]+: batch 16 x 3 negatives, max length 32;.*the memory budget is 1\.0 MiB" \
  "$ET" finetune --model $M --data $F/beir --out "$T/mem" --batch 16 --max-len 32 --mem-budget 1 -q
[ ! -e "$T/mem" ] && ok "refused before writing anything" || bad "the refused run made $T/mem"
# the refusal names what the run would need with the word-embedding table frozen: the frozen run's own estimate
hint=$("$ET" finetune --model $M --data $F/beir --out "$T/mem" --batch 16 --max-len 32 --mem-budget 1 -q 2>&1 | sed -n 's/.*frozen (--freeze-embeddings) about \([0-9.]*\) MiB.*/\1/p')
frz=$("$ET" finetune --model $M --data $F/beir --out "$T/mem" --batch 16 --max-len 32 --mem-budget 1 -q --freeze-embeddings 2>&1 | sed -n 's/.*needs about \([0-9.]*\) MiB.*/\1/p')
[ -n "$hint" ] && [ "$hint" = "$frz" ] && ok "refusal: with the table frozen $hint MiB = the frozen run's estimate" || bad "frozen hint '$hint' vs '$frz'"

# 5. bad input
expect_err "bad --dev" "--dev must be auto, on or off" "$ET" finetune --model $M --data $F/beir --out "$T/x" --dev sometimes
expect_err "missing --corpus" "nope.txt: cannot open" "$ET" finetune --model $M --data $F/beir --out "$T/x" --corpus $F/nope.txt -q
expect_err "--dev on, too few queries" "dev split holds" "$ET" finetune --model $M --data $F/beir --out "$T/x" --dev on --max-train-queries 10 -q
expect_err "adapt with mse" "adaptation" "$ET" finetune --model $M --data $F/beir --out "$T/x" --loss mse --adapt -q
expect_err "unknown loss" "unknown loss 'bogus'" "$ET" finetune --model $M --data $F/beir --out "$T/x" --loss bogus
expect_err "missing data" "nope: no such file" "$ET" finetune --model $M --data $F/nope --out "$T/x" --loss infonce -q
expect_err "bad mine range" "mine-range" "$ET" finetune --model $M --data $F/beir --out "$T/x" --loss infonce --mine-range 5:2
expect_err "train-only without experts" "needs --moe-experts" "$ET" finetune --model $M --data $F/beir --out "$T/x" --loss infonce --train-only moe
expect_err "refresh with mse" "refresh-every" "$ET" finetune --model $M --data $F/beir --out "$T/x" --loss mse --refresh-every 2 -q
expect_err "bad refresh value" "refresh-every" "$ET" finetune --model $M --data $F/beir --out "$T/x" --loss infonce --refresh-every often -q
expect_err "bad STS line" "sts_bad.jsonl:[0-9]+" "$ET" finetune --model $M --data tests/fixtures/eval/sts_bad.jsonl --out "$T/x" --loss mse -q
expect_err "bad model" "config.json" "$ET" finetune --model $F --data $F/beir --out "$T/x" --loss infonce -q

et_test_done cli_finetune
