#!/usr/bin/env bash
# cli_badinput.sh - malformed inputs and option values for every `embedtune` command: each case
# must exit non-zero (but < 128: no signal), print no sanitizer report, and say what is wrong on
# stderr, naming the file / line / field / option. The table below is: case name | expected stderr
# (extended regex) | arguments. Committed bad files are in tests/fixtures/bad/; big or derived ones
# (huge lines, broken copies of a model folder) are made here at test time.
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_bad.XXXXXX)
trap 'rm -rf "$T"' EXIT
B=tests/fixtures/bad
M=tests/fixtures/e2e/model          # a small good model
H=tests/fixtures/hf/bad             # broken model folders (tests/test_hf.c)
P=tests/fixtures/train/tiny_pairs.jsonl
X=$B/texts_ok.txt
n=0 fail=0

# case NAME REGEX ARGS... : run embedtune ARGS, check exit code, sanitizer output and message
case_() {
  local name=$1 re=$2
  shift 2
  n=$((n + 1))
  "$E" "$@" > "$T/out.txt" 2> "$T/err.txt" < /dev/null
  local rc=$? why=""
  if [ $rc -eq 0 ]; then why="exit 0 (accepted a bad input)"
  elif [ $rc -ge 128 ]; then why="killed by signal $((rc - 128))"
  elif grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer' "$T/err.txt"; then why="sanitizer report"
  elif ! grep -qE -- "$re" "$T/err.txt"; then why="message does not match /$re/"
  fi
  if [ -n "$why" ]; then
    fail=$((fail + 1))
    echo "FAIL [$name] $why: embedtune $*"
    head -c 600 "$T/err.txt" | sed 's/^/    stderr: /'
  fi
}

# ---- files made at test time
head -c 40000000 /dev/zero | tr '\0' 'a' | sed 's/^/{"query": "/' > "$T/huge_line.jsonl"   # 40 MB, never closed
{ printf '{"_id": "d1", "text": "'; head -c 40000000 /dev/zero | tr '\0' 'b'; printf '"}\n'; } > "$T/huge_corpus.jsonl"
mkdir -p "$T/empty_dir"
mkmodel() { rm -rf "$T/$1"; cp -r $M "$T/$1"; }
mkmodel st_empty;  : > "$T/st_empty/model.safetensors"
mkmodel st_short;  printf '\x10\x00\x00' > "$T/st_short/model.safetensors"
mkmodel st_trunc;  head -c 30000 $M/model.safetensors > "$T/st_trunc/model.safetensors"
mkmodel cfg_empty; : > "$T/cfg_empty/config.json"
mkmodel cfg_neg;   sed 's/"num_hidden_layers": *[0-9]*/"num_hidden_layers": -2/' $M/config.json > "$T/cfg_neg/config.json"
mkmodel vocab_utf16; iconv -f UTF-8 -t UTF-16 $M/vocab.txt > "$T/vocab_utf16/vocab.txt"
mkmodel vocab_dup; sed '$s/.*/[PAD]/' $M/vocab.txt > "$T/vocab_dup/vocab.txt"   # last token replaced: same count
mkmodel pool_bad;  echo '{"word_embedding_dimension": 32, "pooling_mode_max_tokens": true}' > "$T/pool_bad/1_Pooling/config.json"
echo 'a file' > "$T/a_file"
OUT="$T/o"   # --out for train cases that must fail before writing anything

# ---- models (encode loads them)
case_ model-missing      'nonexistent: model folder not found'     encode --model "$T/nonexistent" --in $X
case_ model-empty-dir    'config\.json'                                 encode --model "$T/empty_dir" --in $X
case_ st-empty           'model\.safetensors'                           encode --model "$T/st_empty" --in $X
case_ st-short           'model\.safetensors'                           encode --model "$T/st_short" --in $X
case_ st-truncated       'model\.safetensors'                           encode --model "$T/st_trunc" --in $X
case_ st-fixture-trunc   'model\.safetensors'                           encode --model $H/truncated_st --in $X
case_ st-header-json     'model\.safetensors'                           encode --model $H/header_bad_json --in $X
case_ st-header-len      'model\.safetensors.*header'                   encode --model $H/header_len_too_big --in $X
case_ st-dtype-unknown   'model\.safetensors.*(dtype|F12)'              encode --model $H/dtype_unknown --in $X
case_ st-dtype-i64       'model\.safetensors.*I64'                      encode --model $H/dtype_i64 --in $X
case_ st-offsets-range   'model\.safetensors.*offset'                   encode --model $H/offsets_out_of_range --in $X
case_ st-offsets-overlap 'model\.safetensors.*overlap'                  encode --model $H/offsets_overlap --in $X
case_ st-offsets-size    'model\.safetensors'                           encode --model $H/offsets_size_mismatch --in $X
case_ st-shape-overflow  'model\.safetensors.*shape'                    encode --model $H/shape_overflow --in $X
case_ st-duplicate-name  'model\.safetensors.*twice'                    encode --model $H/duplicate_name --in $X
case_ st-wrong-shape     "model\.safetensors.*shape"                    encode --model $H/wrong_shape --in $X
case_ st-missing-tensor  'model\.safetensors.*(missing|not found)'      encode --model $H/missing_tensor --in $X
case_ st-nan-weight      'model\.safetensors.*(NaN|nan|finite)'         encode --model $H/nan_weight --in $X
case_ cfg-empty          'config\.json'                                 encode --model "$T/cfg_empty" --in $X
case_ cfg-bad-json       'config\.json'                                 encode --model $H/config_bad_json --in $X
case_ cfg-heads          'config\.json.*(num_attention_heads|heads)'    encode --model $H/config_heads --in $X
case_ cfg-hidden-string  'config\.json.*hidden_size'                    encode --model $H/config_hidden_string --in $X
case_ cfg-negative       'config\.json.*num_hidden_layers'              encode --model "$T/cfg_neg" --in $X
case_ cfg-relu           'config\.json.*hidden_act'                     encode --model $H/config_relu --in $X
case_ cfg-distilbert     'config\.json.*model_type'                     encode --model $H/config_distilbert --in $X
case_ vocab-missing      'vocab\.txt'                                   encode --model $H/missing_vocab --in $X
case_ vocab-mismatch     'vocab\.txt.*vocab_size|vocab_size.*vocab\.txt' encode --model $H/vocab_mismatch --in $X
case_ vocab-utf16        'vocab\.txt'                                   encode --model "$T/vocab_utf16" --in $X
case_ vocab-duplicate    'vocab\.txt.*(duplicate|twice)'                encode --model "$T/vocab_dup" --in $X
case_ pooling-max        'Pooling.*(max|pooling_mode)'                  encode --model "$T/pool_bad" --in $X
# ---- encode inputs and options
case_ enc-in-missing     'nope\.txt'                                    encode --model $M --in "$T/nope.txt"
case_ enc-in-utf16       'utf16\.txt:1:.*(NUL|UTF-16)'                  encode --model $M --in $B/utf16.txt
case_ enc-in-nul         'texts_nul\.txt:2:.*NUL'                       encode --model $M --in $B/texts_nul.txt
case_ enc-in-latin1      'latin1\.txt:1:.*UTF-8'                        encode --model $M --in $B/latin1.txt
case_ enc-in-jsonl-text  'texts_no_text\.jsonl:2:.*text'                encode --model $M --in $B/texts_no_text.jsonl
case_ enc-in-jsonl-bad   'corpus_bad_json\.jsonl:2:.*JSON'              encode --model $M --in $B/corpus_bad_json.jsonl
case_ enc-batch-0        -- '--batch.*0'                                encode --model $M --in $X --batch 0
case_ enc-batch-abc      -- '--batch.*abc'                              encode --model $M --in $X --batch abc
case_ enc-maxlen-1       -- '--max-len.*1'                              encode --model $M --in $X --max-len 1
case_ enc-threads-neg    -- '--threads.*-1'                             encode --model $M --in $X --threads -1
case_ enc-out-ext        -- '--out.*\.npy or \.jsonl'                   encode --model $M --in $X --out "$T/x.txt"
case_ enc-out-nodir      'nodir/x\.npy'                                 encode --model $M --in $X --out "$T/nodir/x.npy" -q
case_ enc-unknown-opt    -- "unknown option '--frobnicate'"             encode --model $M --frobnicate
case_ enc-no-value       -- '--batch needs a value'                     encode --model $M --batch
case_ enc-no-model       -- 'missing required option --model'          encode --in $X
seq 5000 > "$T/many.txt"    # 5000 texts: a batch of 4096 x 64 tokens needs ~300 MiB of activations
case_ enc-mem-budget     'batch 4096 x max_len 64 needs .* MiB.*over the memory budget of 1\.0 MiB' encode --model $M --in "$T/many.txt" --batch 4096 --max-len 512 --mem-budget 1 -q
case_ srch-mem-0         -- '--mem-budget.*0'                           search --model $M --corpus $B/corpus_title_number.jsonl --query hi --mem-budget 0
# ---- search
case_ srch-corpus-missing 'nope\.jsonl'                                 search --model $M --corpus "$T/nope.jsonl" --query hi
case_ srch-corpus-empty  'empty\.jsonl.*no documents'                   search --model $M --corpus $B/empty.jsonl --query hi
case_ srch-corpus-json   'corpus_bad_json\.jsonl:2:'                    search --model $M --corpus $B/corpus_bad_json.jsonl --query hi
case_ srch-corpus-noid   'corpus_no_id\.jsonl:2:.*_id'                  search --model $M --corpus $B/corpus_no_id.jsonl --query hi
case_ srch-corpus-dupid  "corpus_dup_ids\.jsonl:2:.*d1"                 search --model $M --corpus $B/corpus_dup_ids.jsonl --query hi
case_ srch-corpus-title  'corpus_title_number\.jsonl:1:.*title'         search --model $M --corpus $B/corpus_title_number.jsonl --query hi
case_ srch-corpus-utf16  'utf16\.jsonl:1:'                              search --model $M --corpus $B/utf16.jsonl --query hi
case_ srch-corpus-latin1 'corpus_latin1\.jsonl:1:.*UTF-8'               search --model $M --corpus $B/corpus_latin1.jsonl --query hi
case_ srch-corpus-huge   'huge_line\.jsonl:1:'                          search --model $M --corpus "$T/huge_line.jsonl" --query hi
case_ srch-k-0           -- '-k.*0'                                     search --model $M --corpus $B/corpus_dup_ids.jsonl --query hi -k 0
case_ srch-both-queries  'exactly one of --query'                       search --model $M --corpus $B/corpus_no_id.jsonl --query a --queries $X
case_ srch-no-query      'exactly one of --query'                       search --model $M --corpus $B/corpus_no_id.jsonl
# ---- train: data files
tr() { case_ "$1" "$2" train --model $M --out "$OUT-$1" -q "${@:3}"; }
tr tr-data-missing     'nope\.jsonl'                                  --train "$T/nope.jsonl"
tr tr-data-empty       'empty\.jsonl.*no data rows'           --train $B/empty.jsonl
tr tr-data-utf16       'utf16\.jsonl:1:.*(NUL|UTF-16)'                --train $B/utf16.jsonl
tr tr-data-latin1      'latin1\.jsonl:1:.*UTF-8'                      --train $B/latin1.jsonl
tr tr-data-not-json    'not_json\.jsonl:2: invalid JSON'         --train $B/not_json.jsonl
tr tr-data-array       'array_line\.jsonl:1: expected a JSON object'       --train $B/array_line.jsonl
tr tr-data-truncated   'truncated\.jsonl:2:'                          --train $B/truncated.jsonl
tr tr-data-no-positive "missing_positive\.jsonl:2: missing field 'positive'"  --train $B/missing_positive.jsonl
tr tr-data-pos-number  "positive_number\.jsonl:1: field 'positive'"   --train $B/positive_number.jsonl
tr tr-data-label-str   "label_string\.jsonl:1: field 'label'"         --train $B/label_string.jsonl --loss mse
tr tr-data-label-inf   "label_inf\.jsonl:1: field 'label'"            --train $B/label_inf.jsonl --loss mse
tr tr-data-label-huge  "label_huge\.jsonl:1: field 'label'"           --train $B/label_huge.jsonl --loss mse
tr tr-data-scores-inf  "scores_inf\.jsonl:1: scores\[1\]: not a finite"   --train $B/scores_inf.jsonl --loss soft1
tr tr-data-scores-empty "scores_empty\.jsonl:1: field 'scores' is empty"       --train $B/scores_empty.jsonl --loss soft1
tr tr-data-negq        "negq_mismatch\.jsonl:1: field 'negative_queries'"   --train $B/negq_mismatch.jsonl
tr tr-data-neg-type    "negatives_not_array\.jsonl:1: field 'negatives'" --train $B/negatives_not_array.jsonl
tr tr-data-nul         'nul_byte\.jsonl:2: NUL byte'  --train $B/nul_byte.jsonl
tr tr-data-huge-line   'huge_line\.jsonl:1: invalid JSON'        --train "$T/huge_line.jsonl"
tr tr-mse-no-label     "tiny_pairs\.jsonl:1: field 'label' is missing" --train $P --loss mse
# ---- train: options
tr tr-lr-neg           -- '--lr.*-1'                                  --train $P --lr -1
tr tr-lr-nan           -- '--lr.*nan'                                 --train $P --lr nan
tr tr-batch-0          -- '--batch.*0'                                --train $P --batch 0
tr tr-epochs-abc       -- '--epochs.*abc'                             --train $P --epochs abc
tr tr-epochs-0         -- '--epochs.*0'                               --train $P --epochs 0
tr tr-tau-0            -- '--tau.*0'                                  --train $P --tau 0
tr tr-tau-inf          -- '--tau.*inf'                                --train $P --tau inf
tr tr-maxlen-1         -- '--max-len.*1'                              --train $P --max-len 1
tr tr-maxlen-q-0       -- '--max-len-query.*0'                        --train $P --max-len-query 0
tr tr-grad-accum-0     -- '--grad-accum.*0'                           --train $P --grad-accum 0
tr tr-warmup-neg       -- '--warmup.*-1'                              --train $P --warmup -1
tr tr-warmup-ratio     -- '--warmup.*ratio'                           --train $P --warmup 1.5
tr tr-wd-neg           -- '--weight-decay.*-0.1'                      --train $P --weight-decay -0.1
tr tr-clip-neg         -- '--max-grad-norm.*-1'                       --train $P --max-grad-norm -1
tr tr-lambda-2         -- '--lambda.*2'                               --train $P --lambda 2 --loss clp
tr tr-alpha            -- '--alpha.*1.5'                              --train $P --alpha 1.5
tr tr-seed-neg         -- '--seed.*-1'                                --train $P --seed -1
tr tr-keep-0           -- '--keep.*0'                                 --train $P --keep 0
tr tr-save-every-neg   -- '--save-every.*-2'                          --train $P --save-every -2
tr tr-mem-0            -- '--mem-budget.*0'                           --train $P --mem-budget 0
tr tr-mem-tiny         'memory budget'                                --train $P --mem-budget 1
tr tr-threads-big      -- '--threads.*1000'                           --train $P --threads 1000
tr tr-negatives-neg    -- '--negatives.*-5'                           --train $P --negatives -5
tr tr-loss-bad         'unknown loss'                                 --train $P --loss bogus
tr tr-clp-pen-bad      -- '--clp-pen.*x'                              --train $P --clp-pen x
tr tr-soft-norm-bad    -- '--soft-norm'                               --train $P --soft-norm x
tr tr-out-is-file      'a_file'                                       --train $P --out "$T/a_file"
case_ tr-no-train      -- 'missing required option --train'           train --model $M --out "$OUT"
case_ tr-unknown-opt   -- "unknown option '--epoch'"                  train --model $M --train $P --out "$OUT" --epoch 2
case_ unknown-command  "unknown command 'frobnicate'"                 frobnicate
for o in "$OUT"*; do [ -e "$o/latest" ] && { echo "FAIL: a failed train run left a checkpoint in $o"; fail=$((fail + 1)); }; done

# ---- huge but valid inputs are fine (truncated to --max-len), not a crash
"$E" search --model $M --corpus "$T/huge_corpus.jsonl" --query hi -q > /dev/null 2> "$T/err.txt"; rc=$?
[ $rc -eq 0 ] || { echo "FAIL [huge-valid-doc] exit $rc: $(head -c 300 "$T/err.txt")"; fail=$((fail + 1)); }

echo "cli_badinput: $n bad-input cases, $fail failed"
[ $fail -eq 0 ] || exit 1
