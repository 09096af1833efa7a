#!/usr/bin/env bash
# cli_train.sh - `embedtune train` end to end: fine-tune the bundled GloVe starter on 200 Debian
# (title -> description) pairs, check the loss falls, the log, the saved folder (encode loads it),
# resume/overwrite rules, and that bad inputs fail with file:line messages and a non-zero exit.
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_train.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

M=models/glove-bert-starter
P=tests/fixtures/train/debian_pairs.jsonl

# --help documents every option
"$E" train --help > "$T/help.txt"
for o in --model --train --out --loss --epochs --lr --batch --max-len --warmup --seed --save-every --resume --threads --tau --lambda --log; do
  check "grep -q -- '$o' '$T/help.txt'" "--help lacks $o"
done

# 200 pairs / batch 16 = 13 steps per epoch, 3 epochs = 39 steps
"$E" train --model $M --train $P --out "$T/out" --epochs 3 --batch 16 --lr 1e-3 --max-len 48 --seed 1 \
  --save-every 10 --threads 2 --log "$T/log.jsonl" 2> "$T/err.txt"
rc=$?
check "[ $rc -eq 0 ]" "train exit $rc: $(tail -c 400 "$T/err.txt")"
check "[ \$(wc -l < '$T/log.jsonl') -eq 39 ]" "log has $(wc -l < "$T/log.jsonl") lines, want 39"
losses=$(sed -n 's/.*"loss":\([^,]*\),.*/\1/p' "$T/log.jsonl")
first=$(echo "$losses" | head -5 | awk '{s+=$1} END {print s/NR}')
last=$(echo "$losses" | tail -5 | awk '{s+=$1} END {print s/NR}')
echo "mean loss of the first 5 steps $first, of the last 5 steps $last"
check "awk -v a=$first -v b=$last 'BEGIN {exit !(b < a)}'" "loss did not fall: $first -> $last"
check "grep -q '\"step\":39,\"epoch\":2' '$T/log.jsonl'" "last log line is not step 39 of epoch 3"
check "grep -q 'step 39/39' '$T/err.txt'" "no progress line on stderr"
check "[ -f '$T/out/model.safetensors' ] && [ -f '$T/out/latest' ]" "output folder incomplete"
check "[ \$(ls -d '$T/out'/checkpoint-* | wc -l) -eq 2 ]" "want 2 checkpoints kept, got $(ls -d "$T"/out/checkpoint-* | tr '\n' ' ')"
check "grep -q checkpoint-0000039 '$T/out/latest'" "latest does not name the final checkpoint"

# the trained folder loads back and encodes; its embeddings differ from the starter's
printf 'apt package manager\nweb server\n' > "$T/texts.txt"
"$E" encode --model "$T/out" --in "$T/texts.txt" --out "$T/new.jsonl" -q; rc=$?
check "[ $rc -eq 0 ] && [ \$(wc -l < '$T/new.jsonl') -eq 2 ]" "encode on the trained model failed ($rc)"
"$E" encode --model $M --in "$T/texts.txt" --out "$T/old.jsonl" -q
check "! cmp -s '$T/new.jsonl' '$T/old.jsonl'" "trained model encodes exactly like the starter"

# an existing run is not overwritten without --resume; --resume of a finished run does nothing
"$E" train --model $M --train $P --out "$T/out" --epochs 3 --batch 16 -q 2> "$T/e1.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q -- '--resume' '$T/e1.txt'" "re-running into a used --out was not refused"
"$E" train --model $M --train $P --out "$T/out" --epochs 3 --batch 16 --lr 2e-3 --max-len 48 --seed 1 --resume -q 2> "$T/e2.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'lr=' '$T/e2.txt'" "resume with another lr was not refused: $(cat "$T/e2.txt")"

# bad inputs: file:line errors, non-zero exit
printf '{"query": "a", "positive": "b"}\n{"query": "a", "positive": 3}\n' > "$T/bad1.jsonl"
"$E" train --model $M --train "$T/bad1.jsonl" --out "$T/b1" -q 2> "$T/e3.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'bad1.jsonl:2: field .positive.' '$T/e3.txt'" "bad field: $(cat "$T/e3.txt")"
printf '{"query": "a", "positive": "b"}\n{oops\n' > "$T/bad2.jsonl"
"$E" train --model $M --train "$T/bad2.jsonl" --out "$T/b2" -q 2> "$T/e4.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'bad2.jsonl:2: not a JSON object' '$T/e4.txt'" "bad json: $(cat "$T/e4.txt")"
"$E" train --model $M --train $P --out "$T/b3" --loss mse -q 2> "$T/e5.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'debian_pairs.jsonl:1: field .label. is missing' '$T/e5.txt'" "mse without labels: $(cat "$T/e5.txt")"
"$E" train --model $M --train $P --out "$T/b4" --loss nope 2> "$T/e6.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'unknown loss' '$T/e6.txt'" "bad --loss: $(cat "$T/e6.txt")"
"$E" train --model $M --out "$T/b5" 2> "$T/e7.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q -- '--train' '$T/e7.txt'" "missing --train: $(cat "$T/e7.txt")"
"$E" train --model $M --train "$T/missing.jsonl" --out "$T/b6" -q 2> "$T/e8.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'missing.jsonl' '$T/e8.txt'" "missing file: $(cat "$T/e8.txt")"
"$E" train --model $M --train $P --out "$T/b7" --mem-budget 1 -q 2> "$T/e9.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'memory budget' '$T/e9.txt'" "memory budget: $(cat "$T/e9.txt")"
"$E" train --model $M --train $P --out "$T/b8" --warmup 1.5 -q 2> "$T/e10.txt"; rc=$?
check "[ $rc -ne 0 ]" "--warmup 1.5 accepted"

if [ $fail -ne 0 ]; then echo "cli_train: FAILED"; exit 1; fi
echo "cli_train: all passed"
