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
check "[ $rc -ne 0 ] && grep -q 'bad2.jsonl:2: invalid JSON' '$T/e4.txt'" "bad json: $(cat "$T/e4.txt")"
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

# the README's pairwise rows ({"query", "passage", "label", "scores"|"experts"}) train with mse and the soft losses:
# `train` reads them with the one pairs reader (data.h) like every other command (it once said "field 'positive'
# is missing"); CSV works the same way; labels outside [0,1] are refused with file:line
printf '%s\n' '{"query": "how to reset a password", "passage": "open settings and choose reset", "label": 1, "scores": [0.8, 0.7]}' \
  '{"query": "how to reset a password", "passage": "the weather is mild today", "label": 0, "scores": [0.1, 0.2]}' \
  '{"query": "boil an egg", "passage": "put the egg in boiling water", "label": 1, "experts": {"a": 0.9, "b": 0.6}}' > "$T/pw_mixed.jsonl"
head -2 "$T/pw_mixed.jsonl" > "$T/pw.jsonl"
printf '%s\n' '{"query": "boil an egg", "passage": "put the egg in boiling water", "label": 1, "scores": [0.9, 0.6]}' \
  '{"query": "boil an egg", "passage": "a list of rivers", "label": 0.25, "scores": [0.2, 0.3]}' >> "$T/pw.jsonl"
for loss in mse soft1 soft3; do
  "$E" train --model $M --train "$T/pw.jsonl" --out "$T/pw-$loss" --loss $loss --batch 2 --max-len 16 --threads 2 -q 2> "$T/epw.txt"; rc=$?
  check "[ $rc -eq 0 ] && [ -f '$T/pw-$loss/model.safetensors' ]" "pairwise rows with --loss $loss: $(cat "$T/epw.txt")"
done
printf 'query,passage,label,bm25\n"how to reset a password","open settings",1,3.5\nboil an egg,a list of rivers,0,0.2\n' > "$T/pw.csv"
"$E" train --model $M --train "$T/pw.csv" --out "$T/pw-csv" --loss soft2 --batch 2 --max-len 16 --threads 2 -q 2> "$T/epw.txt"; rc=$?
check "[ $rc -eq 0 ]" "CSV pairwise rows with --loss soft2: $(cat "$T/epw.txt")"
"$E" train --model $M --train "$T/pw_mixed.jsonl" --out "$T/pw-mixed" --loss mse -q 2> "$T/epw.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'pw_mixed.jsonl:3: named .experts. but earlier rows use positional .scores.' '$T/epw.txt'" "mixed scores/experts: $(cat "$T/epw.txt")"
sed 's/"label": 0.25/"label": 2.5/' "$T/pw.jsonl" > "$T/pw_bad.jsonl"
"$E" train --model $M --train "$T/pw_bad.jsonl" --out "$T/pw-bad" --loss mse -q 2> "$T/epw.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'pw_bad.jsonl:4: field .label.: 2.5 is not in \[0,1\]' '$T/epw.txt'" "label 2.5: $(cat "$T/epw.txt")"

if [ $fail -ne 0 ]; then echo "cli_train: FAILED"; exit 1; fi
echo "cli_train: all passed"
