#!/usr/bin/env bash
# cli_xlmr.sh - encode / search / eval / train / finetune accept an XLM-R-shaped model with a
# SentencePiece tokenizer unchanged: the random 2-layer model of tests/fixtures/xlmr (tools/gen_xlmr_fixture.py)
# plus the test vocabulary tests/fixtures/spm/xlmr (tokenizer.json + sentencepiece.bpe.model).
#   - encode writes unit-norm 16-dim embeddings; a text longer than the position table (32 tokens after
#     the offset of 2) is truncated, not refused
#   - search and eval (dense and hybrid) run on a multilingual BEIR folder made here
#   - train and finetune save folders that carry the tokenizer files (no vocab.txt), say xlm-roberta in
#     config.json, and load back
set -u
. tests/et_test.sh   # ET, T, ok, bad, expect_err, et_test_done

M="$T/model"
mkdir -p "$M"
cp -r tests/fixtures/xlmr/model/. "$M/"
cp tests/fixtures/spm/xlmr/tokenizer.json tests/fixtures/spm/xlmr/sentencepiece.bpe.model "$M/"

# a small multilingual BEIR folder: 6 documents, 12 queries (two per document, in two languages)
B="$T/beir"; mkdir -p "$B"
cat > "$B/corpus.jsonl" <<'EOF'
{"_id": "d1", "title": "Compilateur", "text": "Der GNU-C++-Compiler und seine Bibliotheken"}
{"_id": "d2", "title": "画像", "text": "画像処理のためのライブラリ"}
{"_id": "d3", "title": "Файлы", "text": "Утилиты для работы с файловой системой"}
{"_id": "d4", "title": "Kompresja", "text": "Narzędzia do kompresji danych"}
{"_id": "d5", "title": "그래픽", "text": "오픈 소스 3D 그래픽 엔진"}
{"_id": "d6", "title": "Giochi", "text": "Un gioco di strategia in tempo reale"}
EOF
: > "$B/queries.jsonl"; printf 'query-id\tcorpus-id\tscore\n' > "$B/qrels.tsv"
i=0
for pair in "d1|C++ Compiler" "d1|compilateur C++" "d2|画像ライブラリ" "d2|image library" "d3|файловая система" "d3|file system tools" \
            "d4|kompresja danych" "d4|compression" "d5|3D 그래픽" "d5|graphics engine" "d6|gioco di strategia" "d6|strategy game"; do
  i=$((i+1)); d=${pair%%|*}; q=${pair#*|}
  printf '{"_id": "q%d", "text": "%s"}\n' $i "$q" >> "$B/queries.jsonl"
  printf 'q%d\t%s\t1\n' $i "$d" >> "$B/qrels.tsv"
done

# 1. encode
long=$(printf 'Bibliothèque partagée %.0s' $(seq 1 40))
printf 'Der GNU-C++-Compiler\n古代戦争のリアルタイム戦略ゲーム\n오픈 소스 3D 그래픽 엔진\n%s\n' "$long" > "$T/texts.txt"
"$ET" encode --model "$M" --in "$T/texts.txt" --out "$T/emb.jsonl" -q 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok "encode" || bad "encode rc=$rc: $(head -c 300 "$T/err")"
n=$(wc -l < "$T/emb.jsonl" 2>/dev/null || echo 0)
[ "$n" -eq 4 ] && ok "4 embeddings" || bad "got $n embeddings"
norms=$(sed -E 's/.*\[([^]]*)\].*/\1/' "$T/emb.jsonl" | awk -F, '{s=0; for(i=1;i<=NF;i++) s+=$i*$i; printf "%d:%.4f ", NF, sqrt(s)}')
echo "dims:norms $norms"
echo "$norms" | tr ' ' '\n' | grep -v '^$' | awk -F: '$1!=16 || $2<0.999 || $2>1.001 {bad=1} END {exit bad}' && ok "16 dims, unit norm" || bad "dims/norms: $norms"

# 2. search and eval (model, hybrid)
"$ET" search --model "$M" --corpus "$B/corpus.jsonl" --query "画像ライブラリ" -k 3 --json -q > "$T/search.jsonl" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && [ "$(grep -c '"rank"\|"id"' "$T/search.jsonl")" -ge 1 ] && ok "search" || bad "search rc=$rc: $(head -c 300 "$T/err") $(head -c 300 "$T/search.jsonl")"
"$ET" eval --model "$M" --data "$B" --json "$T/eval.json" -q > "$T/eval.txt" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && grep -q '"ndcg@10"' "$T/eval.json" && ok "eval" || bad "eval rc=$rc: $(head -c 300 "$T/err")"
"$ET" eval --model "$M" --data "$B" --mode hybrid -q > "$T/hyb.txt" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok "eval --mode hybrid" || bad "hybrid rc=$rc: $(head -c 300 "$T/err")"

# 3. train: the saved folder carries the tokenizer and loads back
: > "$T/pairs.jsonl"
while IFS= read -r l; do
  q=$(echo "$l" | sed -E 's/.*"text": "([^"]*)".*/\1/'); id=$(echo "$l" | sed -E 's/.*"_id": "([^"]*)".*/\1/')
  d=$(awk -F'\t' -v q="$id" '$1==q {print $2}' "$B/qrels.tsv")
  p=$(grep "\"$d\"" "$B/corpus.jsonl" | sed -E 's/.*"text": "([^"]*)".*/\1/')
  printf '{"query": "%s", "positive": "%s"}\n' "$q" "$p" >> "$T/pairs.jsonl"
done < "$B/queries.jsonl"
"$ET" train --model "$M" --train "$T/pairs.jsonl" --out "$T/trained" --epochs 3 --batch 4 --lr 1e-3 --max-len 32 --seed 1 \
  --threads 2 --log "$T/log.jsonl" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok "train" || bad "train rc=$rc: $(tail -c 400 "$T/err")"
[ "$(wc -l < "$T/log.jsonl" 2>/dev/null || echo 0)" -eq 9 ] && ok "9 steps logged" || bad "log: $(wc -l < "$T/log.jsonl" 2>/dev/null) lines"
for f in tokenizer.json sentencepiece.bpe.model config.json model.safetensors modules.json; do
  [ -f "$T/trained/$f" ] && ok "trained folder has $f" || bad "trained folder lacks $f"
done
[ ! -f "$T/trained/vocab.txt" ] && ok "no vocab.txt" || bad "a vocab.txt was written"
grep -q '"xlm-roberta"' "$T/trained/config.json" && grep -q '"vocab_size": 3010' "$T/trained/config.json" && ok "config model_type, vocab_size" \
  || bad "config: $(head -c 600 "$T/trained/config.json")"
"$ET" encode --model "$T/trained" --in "$T/texts.txt" --out "$T/emb2.jsonl" -q 2>"$T/err" && ! cmp -s "$T/emb.jsonl" "$T/emb2.jsonl" \
  && ok "trained model encodes, embeddings changed" || bad "trained encode: $(head -c 300 "$T/err")"

# 4. finetune on the BEIR folder (all queries in one language pair; held-out split by the SHA-1 rule)
"$ET" finetune --model "$M" --data "$B" --out "$T/ft" --loss infonce --epochs 2 --lr 1e-3 --negatives 2 --max-len 32 --threads 2 --json "$T/ft.json" \
  >"$T/ft.txt" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok "finetune" || bad "finetune rc=$rc: $(tail -c 400 "$T/err")"
[ -f "$T/ft/tokenizer.json" ] && [ ! -f "$T/ft/vocab.txt" ] && ok "finetuned folder has the tokenizer" || bad "finetuned folder: $(ls "$T/ft" 2>&1 | tr '\n' ' ')"
"$ET" eval --model "$T/ft" --data "$B" -q > /dev/null 2>"$T/err" && ok "finetuned model evaluates" || bad "eval ft: $(head -c 300 "$T/err")"

et_test_done cli_xlmr
