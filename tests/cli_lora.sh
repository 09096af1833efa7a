#!/usr/bin/env bash
# cli_lora.sh - LoRA adapters from the command line (tests/fixtures/lora/adapter on tests/fixtures/e2e/model, see
# tools/gen_lora_fixture.py): an adapter folder given as --model loads its base and merges the adapter, the same
# bits as --model BASE --adapter DIR; `merge` writes a plain folder that encodes to the same bits; eval and search
# take adapters; an adapter whose base is not a folder here is refused with a message that says what to do.
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_lora.XXXXXX)
trap 'rm -rf "$T"' EXIT
BASE=tests/fixtures/e2e/model
AD=tests/fixtures/lora/adapter
fail=0
bad() { echo "FAIL: $*"; fail=1; }
printf 'the cat sat on the mat\nhello world\na b c d e f g\n' > "$T/t.txt"
"$E" encode --model $BASE --in "$T/t.txt" --out "$T/base.npy" -q || bad "encode base"
"$E" encode --model $AD --in "$T/t.txt" --out "$T/ad1.npy" -q 2> "$T/err" || bad "encode --model ADAPTER: $(cat "$T/err")"
"$E" encode --model $BASE --adapter $AD --in "$T/t.txt" --out "$T/ad2.npy" -q || bad "encode --adapter"
cmp -s "$T/ad1.npy" "$T/ad2.npy" || bad "adapter folder as --model differs from --model BASE --adapter"
cmp -s "$T/base.npy" "$T/ad1.npy" && bad "the adapter did not change the embeddings"
"$E" merge --adapter $AD --out "$T/merged" 2> "$T/err" || bad "merge: $(cat "$T/err")"
[ -f "$T/merged/config.json" ] && [ -f "$T/merged/model.safetensors" ] && [ -f "$T/merged/vocab.txt" ] && [ ! -f "$T/merged/adapter_config.json" ] || bad "merge wrote $(ls "$T/merged")"
"$E" encode --model "$T/merged" --in "$T/t.txt" --out "$T/m.npy" -q || bad "encode merged"
cmp -s "$T/ad1.npy" "$T/m.npy" || bad "the merged folder encodes differently from the adapter"
"$E" merge --adapter $AD --model $BASE --out "$T/merged16" --dtype f16 2> /dev/null || bad "merge --dtype f16"
[ "$(stat -c %s "$T/merged16/model.safetensors")" -lt "$(stat -c %s "$T/merged/model.safetensors")" ] || bad "f16 merge is not smaller"
"$E" eval --model $AD --data tests/fixtures/eval/beir --mode dense -q --json "$T/e.json" > /dev/null || bad "eval adapter"
grep -q '"ndcg@10"' "$T/e.json" || bad "eval adapter wrote no nDCG"
"$E" search --model $BASE --adapter $AD --corpus tests/fixtures/eval/beir/corpus.jsonl --query "apple" --mode dense -q > /dev/null || bad "search --adapter"
# a base that is not here
mkdir -p "$T/lost"
cp $AD/adapter_model.safetensors "$T/lost/"
sed 's#"../../e2e/model"#"sentence-transformers/all-MiniLM-L6-v2"#' $AD/adapter_config.json > "$T/lost/adapter_config.json"
"$E" encode --model "$T/lost" --in "$T/t.txt" -q > /dev/null 2> "$T/err"; rc=$?
[ $rc != 0 ] && grep -q "base_model_name_or_path 'sentence-transformers/all-MiniLM-L6-v2' is not a folder here" "$T/err" || bad "lost base: rc $rc $(cat "$T/err")"
"$E" merge --adapter "$T/lost" --model $BASE --out "$T/m2" 2> /dev/null || bad "merge with an explicit --model"
"$E" encode --model $BASE --adapter "$T/nothing" --in "$T/t.txt" -q > /dev/null 2> "$T/err"; rc=$?
[ $rc != 0 ] && grep -q "no adapter_config.json" "$T/err" || bad "missing adapter: rc $rc $(cat "$T/err")"
[ $fail = 0 ] && echo "ok cli_lora"
exit $fail
