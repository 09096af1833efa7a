#!/usr/bin/env bash
# fuzz/make_seeds.sh - (re)build the seed corpora fuzz/corpus/<harness>/ from the test fixtures.
# Run from the repo root. Multi-file inputs are joined with the harness separator "\n--8<--\n".
set -eu
C=fuzz/corpus
SEP=$'\n--8<--\n'
rm -rf "$C"; mkdir -p "$C"/{fuzz_safetensors,fuzz_hf,fuzz_vocab,fuzz_tokenize,fuzz_pairs,fuzz_beir,fuzz_train_data,fuzz_json,fuzz_retrieval,fuzz_sts,fuzz_corpus,fuzz_spm,fuzz_index,fuzz_bpe}
# safetensors: the small model files (good and broken), not the 6 MB starter
i=0
for f in tests/fixtures/hf/bad/*/model.safetensors tests/fixtures/hf/good_*/model.safetensors; do
  [ -f "$f" ] || continue
  [ $(stat -c %s "$f") -le 16384 ] || continue
  cp "$f" "$C/fuzz_safetensors/$(basename $(dirname "$f")).st"
done
# hf: config, vocab, safetensors, modules, pooling, sbert, tokenizer_config
join_hf() { # dir -> stdout
  local d=$1 first=1
  for f in config.json vocab.txt model.safetensors modules.json 1_Pooling/config.json sentence_bert_config.json tokenizer_config.json; do
    [ $first -eq 1 ] || printf '%s' "$SEP"
    first=0
    if [ -f "$d/$f" ]; then cat "$d/$f"; fi
  done
}
for d in tests/fixtures/hf/bad/* tests/fixtures/hf/good_*; do
  [ -f "$d/config.json" ] || continue
  [ $(stat -c %s "$d/model.safetensors" 2>/dev/null || echo 0) -le 16384 ] || continue
  join_hf "$d" > "$C/fuzz_hf/$(basename "$d")"
done
# vocab
cp tests/fixtures/hf/bad/ok/vocab.txt "$C/fuzz_vocab/tiny.txt"
cp tests/fixtures/e2e/model/vocab.txt "$C/fuzz_vocab/e2e.txt"
printf '\xef\xbb\xbf[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\n##lo\r\n' > "$C/fuzz_vocab/bom_crlf.txt"
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[PAD]\n' > "$C/fuzz_vocab/dup.txt"
# tokenizer: the fixture cases, one text each (first 40)
n=0
while IFS= read -r line && [ $n -lt 40 ]; do printf '%s' "$line" > "$C/fuzz_tokenize/case$n"; n=$((n+1)); done < tests/fixtures/tokenizer/cases.txt
printf 'ab\xffcd \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 [CLS]x[SEP] \xe4\xb8\xad\xe6\x96\x87 \xc4\xb0stanbul' > "$C/fuzz_tokenize/invalid_utf8"
# pairs: selector byte (0 jsonl, 1 csv, 2 tsv, 3 sniff; +4 skip_bad) + file
k=0
for f in tests/fixtures/data/*.jsonl tests/fixtures/eval/*.jsonl tests/fixtures/train/tiny_pairs.jsonl; do
  { printf '\x00'; cat "$f"; } > "$C/fuzz_pairs/j$k"; { printf '\x04'; cat "$f"; } > "$C/fuzz_pairs/js$k"; k=$((k+1))
done
for f in tests/fixtures/data/*.csv; do { printf '\x01'; cat "$f"; } > "$C/fuzz_pairs/c$k"; { printf '\x05'; cat "$f"; } > "$C/fuzz_pairs/cs$k"; k=$((k+1)); done
for f in tests/fixtures/data/*.tsv; do { printf '\x02'; cat "$f"; } > "$C/fuzz_pairs/t$k"; { printf '\x03'; cat "$f"; } > "$C/fuzz_pairs/s$k"; k=$((k+1)); done
# beir: flags byte (bit0 qrels/test.tsv, bit1 skip_bad) + corpus SEP queries SEP qrels
for d in tests/fixtures/data/beir tests/fixtures/data/beir_bad tests/fixtures/data/beir_dup; do
  q=$d/qrels.tsv; fl=0; [ -f "$q" ] || { q=$d/qrels/test.tsv; fl=1; }
  { printf "\\x0$fl"; cat $d/corpus.jsonl; printf '%s' "$SEP"; cat $d/queries.jsonl; printf '%s' "$SEP"; cat "$q"; } > "$C/fuzz_beir/$(basename $d)"
  { printf "\\x0$((fl+2))"; cat $d/corpus.jsonl; printf '%s' "$SEP"; cat $d/queries.jsonl; printf '%s' "$SEP"; cat "$q"; } > "$C/fuzz_beir/$(basename $d)_skip"
done
# train data
cp tests/fixtures/train/tiny_pairs.jsonl "$C/fuzz_train_data/tiny.jsonl"
head -5 tests/fixtures/train/debian_pairs.jsonl > "$C/fuzz_train_data/debian5.jsonl"
for f in tests/fixtures/data/pairwise_scores.jsonl tests/fixtures/data/bad.jsonl tests/fixtures/eval/pairs.jsonl; do cp "$f" "$C/fuzz_train_data/"; done
# sts / corpus: flags byte (bit 0 skip_bad) + the file
for f in tests/fixtures/eval/sts.jsonl tests/fixtures/eval/sts_bad.jsonl; do
  b=$(basename "$f" .jsonl)
  { printf '\x00'; cat "$f"; } > "$C/fuzz_sts/$b"; { printf '\x01'; cat "$f"; } > "$C/fuzz_sts/${b}_skip"
done
for d in tests/fixtures/data/beir tests/fixtures/data/beir_bad tests/fixtures/data/beir_dup; do
  b=$(basename "$d")
  { printf '\x00'; cat "$d/corpus.jsonl"; } > "$C/fuzz_corpus/$b"; { printf '\x01'; cat "$d/corpus.jsonl"; } > "$C/fuzz_corpus/${b}_skip"
done
# json: the fixtures' JSON files and hand-made edge cases (surrogates, BOM, trailing bytes, leading zero, nesting)
cp tests/fixtures/e2e/model/config.json "$C/fuzz_json/config.json"
cp tests/fixtures/e2e/model/modules.json "$C/fuzz_json/modules.json"
printf '{"a": [1, -2.5e+3, true, false, null], "b": {"c": "\\u00e9\\ud83d\\ude00"}}' > "$C/fuzz_json/object.json"
printf '[[[[[]]]], {}, "x\\n\\t\\"", 0, -0.0, 1E9]' > "$C/fuzz_json/nested.json"
printf '"\\udc00"' > "$C/fuzz_json/lone_low_surrogate.json"
printf '{"a" 1}' > "$C/fuzz_json/missing_colon.json"
printf '\xef\xbb\xbf {"bom": 1} trailing' > "$C/fuzz_json/bom_trailing.json"
printf '01' > "$C/fuzz_json/leading_zero.json"
# retrieval.json (each kind, a dense-only file, an out-of-range weight) and --fusion SPEC strings
R=$C/fuzz_retrieval
printf '{"format": "embedtune-retrieval", "version": 1, "mode": "hybrid", "bm25": {"k1": 0.9, "b": 0.4, "tokens": "ascii-alnum-lowercase", "query_terms": "distinct"}, "fusion": {"kind": "convex", "norm": "minmax", "alpha": 0.3, "depth": 100}}\n' > $R/convex.json
printf '{"format": "embedtune-retrieval", "version": 1, "mode": "hybrid", "bm25": {"k1": 1.2, "b": 0.75}, "fusion": {"kind": "rrf", "k": 60, "alpha": 0.5}}\n' > $R/rrf.json
printf '{"format": "embedtune-retrieval", "version": 1, "mode": "bm25", "bm25": {"k1": 0.9, "b": 0.4, "query_terms": "all"}, "fusion": {"kind": "rerank", "top_n": 20, "alpha": 0.6, "norm": "minmax", "depth": 50}}\n' > $R/rerank.json
printf '{"format": "embedtune-retrieval", "version": 1, "mode": "dense"}\n' > $R/dense.json
printf '{"format": "embedtune-retrieval", "version": 1, "mode": "hybrid", "bm25": {"k1": 0.9, "b": 0.4}, "fusion": {"kind": "convex", "norm": "zscore", "alpha": 1.5}}\n' > $R/bad_alpha.json
printf 'convex:norm=tmm,alpha=0.65' > $R/spec_convex
printf 'rrf:k=40,alpha=0.2' > $R/spec_rrf
printf 'rerank:top_n=50,alpha=0.5,depth=60' > $R/spec_rerank
du -sh "$C"; for d in "$C"/*; do echo "$(basename $d): $(ls $d | wc -l)"; done
# spm: mode byte (0 tokenizer.json, 1 .model plain ids, 2 .model XLM-R ids, 3 text for the fixture tokenizers) + input
{ printf '\x00'; cat tests/fixtures/spm/bytefb/tokenizer.json; } > "$C/fuzz_spm/bytefb_json"
{ printf '\x01'; cat tests/fixtures/spm/bytefb/spm.model; } > "$C/fuzz_spm/bytefb_model"
{ printf '\x02'; cat tests/fixtures/spm/bytefb/spm.model; } > "$C/fuzz_spm/bytefb_model_fairseq"
printf '\x00{"model":{"type":"Unigram","unk_id":0,"vocab":[["<unk>",0],["<s>",0],["</s>",0],["<pad>",0],["\xe2\x96\x81a",-1],["b",-2]]},"added_tokens":[{"id":1,"content":"<s>","special":true}],"normalizer":{"type":"Sequence","normalizers":[{"type":"Replace","pattern":{"Regex":" {2,}"},"content":" "},{"type":"Strip","strip_left":true,"strip_right":true}]},"pre_tokenizer":{"type":"Metaspace","replacement":"\xe2\x96\x81","prepend_scheme":"first"},"post_processor":{"type":"RobertaProcessing","cls":["<s>",1],"sep":["</s>",2]}}' > "$C/fuzz_spm/tiny_json"
n=0
awk -F'\t' '$1=="t" && NR % 400 == 2 {print $3}' tests/fixtures/spm/cases.txt | while IFS= read -r line; do printf '\x03%s' "$line" > "$C/fuzz_spm/text$n"; n=$((n+1)); done
printf '\x03ab\xffcd <s> x <mask> \xef\xbc\xa1\xcc\x81 \xe3\x80\x80 \xf0\x9f\x98\x80\xe2\x80\x8d\xf0\x9f\x98\x80' > "$C/fuzz_spm/mixed"
# bpe: mode byte (0 tokenizer.json, 1 vocab.json NUL merges.txt [bit 2: add_prefix_space], 2 text for the fixture tokenizers) + input
mkdir -p "$C/fuzz_bpe"
printf '\x00{"model":{"type":"BPE","dropout":null,"unk_token":"<unk>","fuse_unk":true,"ignore_merges":true,"vocab":{"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"a":4,"b":5,"\xc4\xa0":6,"ab":7,"\xc4\xa0a":8,"\xc4\xa0ab":9,"<mask>":10},"merges":["a b",["\xc4\xa0","a"],"\xc4\xa0a b","\xc4\xa0 ab"]},"added_tokens":[{"id":0,"content":"<s>","special":true},{"id":10,"content":"<mask>","lstrip":true,"special":true}],"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":true,"use_regex":true},"post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"RobertaProcessing","cls":["<s>",0],"sep":["</s>",2]}]}}' > "$C/fuzz_bpe/tiny_json"
printf '\x05{"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"a":4,"b":5,"\xc4\xa0":6,"ab":7,"\xc4\xa0ab":8,"<mask>":9}\x00#version: 0.2\na b\n\xc4\xa0 ab\n' > "$C/fuzz_bpe/tiny_files"
n=0
awk -F'\t' '$1=="t" && NR % 500 == 2 {print $3}' tests/fixtures/spm/cases.txt | while IFS= read -r line; do printf '\x02%s' "$line" > "$C/fuzz_bpe/text$n"; n=$((n+1)); done
printf "\x02ab\xffcd <s> x <mask> It's  they've \xef\xbc\xa1\xcc\x81 \xe3\x80\x80 123\xd9\xa3 \xf0\x9f\x98\x80\xe2\x80\x8d\xf0\x9f\x98\x80   \n\n x" > "$C/fuzz_bpe/mixed"
# index files (`embedtune index`, needs build/embedtune) of the small eval fixture: int8, f16, none, without texts
if [ -x build/embedtune ]; then
  for dt in int8 f16 none; do
    build/embedtune index --model tests/fixtures/e2e/model --corpus tests/fixtures/eval/beir/corpus.jsonl --out $C/fuzz_index/$dt.etix --dtype $dt -q
  done
  build/embedtune index --model tests/fixtures/e2e/model --corpus tests/fixtures/eval/beir/corpus.jsonl --out $C/fuzz_index/notext.etix --no-text -q
fi
