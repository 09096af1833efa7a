#!/usr/bin/env bash
# cli_bpe.sh - a RobertaModel folder with its byte-level BPE tokenizer (tests/fixtures/bpe: tokenizer.json, or
# vocab.json + merges.txt) loads, encodes, trains and saves unchanged; the random 2-layer model of
# tests/fixtures/xlmr relabelled RobertaModel (its 3010-row table holds the 2761 BPE ids).
#   - the tokenizer.json folder and the vocab.json + merges.txt folder give bit-identical embeddings
#   - tokenizer_config.json's add_prefix_space is read for vocab.json + merges.txt (other embeddings)
#   - train saves vocab.json + merges.txt (no vocab.txt), model_type roberta, and the result loads back
#   - vocab.json without merges.txt is refused naming the files a tokenizer may come from
set -u
ET=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_bpe.XXXXXX); trap 'rm -rf "$T"' EXIT
fails=0; passes=0
ok()  { echo "ok   $1"; passes=$((passes+1)); }
bad() { echo "FAIL $1"; fails=$((fails+1)); }

mk() { # mk DIR FILES...: the model relabelled RoBERTa plus the named BPE fixture files
  local d=$1; shift
  mkdir -p "$d"; cp -r tests/fixtures/xlmr/model/. "$d/"
  sed -i 's/"xlm-roberta"/"roberta"/; s/XLMRobertaModel/RobertaModel/' "$d/config.json"
  for f in "$@"; do cp "tests/fixtures/bpe/$f" "$d/"; done
}
mk "$T/json" tokenizer.json
mk "$T/files" vocab.json merges.txt
mk "$T/aps" vocab.json merges.txt
echo '{"add_prefix_space": true, "model_max_length": 512}' > "$T/aps/tokenizer_config.json"
mk "$T/nomerges" vocab.json

printf 'Der GNU-C++-Compiler und seine Bibliotheken\n古代戦争のリアルタイム戦略ゲーム\n오픈 소스 3D 그래픽 엔진\nIt'"'"'s  a <mask> test\n' > "$T/texts.txt"
for v in json files aps; do
  "$ET" encode --model "$T/$v" --in "$T/texts.txt" --out "$T/$v.jsonl" -q 2>"$T/err"; rc=$?
  [ $rc -eq 0 ] && [ "$(wc -l < "$T/$v.jsonl")" -eq 4 ] && ok "encode ($v)" || bad "encode $v rc=$rc: $(head -c 300 "$T/err")"
done
cmp -s "$T/json.jsonl" "$T/files.jsonl" && ok "tokenizer.json = vocab.json + merges.txt" || bad "the two faces differ"
! cmp -s "$T/files.jsonl" "$T/aps.jsonl" && ok "add_prefix_space read" || bad "add_prefix_space had no effect"

"$ET" encode --model "$T/nomerges" --in "$T/texts.txt" --out "$T/x.jsonl" -q 2>"$T/err"; rc=$?
[ $rc -ne 0 ] && grep -q "merges.txt" "$T/err" && ok "vocab.json alone refused" || bad "nomerges rc=$rc: $(head -c 300 "$T/err")"

printf '{"query": "compilateur C++", "positive": "Der GNU-C++-Compiler"}\n{"query": "画像", "positive": "画像処理のためのライブラリ"}\n{"query": "grafika", "positive": "오픈 소스 3D 그래픽 엔진"}\n{"query": "gioco", "positive": "Un gioco di strategia"}\n' > "$T/pairs.jsonl"
"$ET" train --model "$T/files" --train "$T/pairs.jsonl" --out "$T/trained" --epochs 2 --batch 4 --lr 1e-3 --max-len 32 --seed 1 \
  --threads 2 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok "train" || bad "train rc=$rc: $(tail -c 400 "$T/err")"
for f in vocab.json merges.txt config.json model.safetensors; do
  [ -f "$T/trained/$f" ] && ok "trained folder has $f" || bad "trained folder lacks $f"
done
[ ! -f "$T/trained/vocab.txt" ] && ok "no vocab.txt" || bad "a vocab.txt was written"
grep -q '"roberta"' "$T/trained/config.json" && ok "config model_type roberta" || bad "config: $(head -c 400 "$T/trained/config.json")"
"$ET" encode --model "$T/trained" --in "$T/texts.txt" --out "$T/t.jsonl" -q 2>"$T/err" && ! cmp -s "$T/files.jsonl" "$T/t.jsonl" \
  && ok "trained model encodes, embeddings changed" || bad "trained encode: $(head -c 300 "$T/err")"

echo "cli_bpe: $passes passed, $fails failed"
[ $fails -eq 0 ]
