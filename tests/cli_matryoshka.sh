#!/usr/bin/env bash
# cli_matryoshka.sh - Matryoshka from the command line: train --matryoshka changes what is learned (the model differs
# from a plain run with the same seed) and refuses bad lists with a message naming the item; encode --dim D writes
# [n, D] rows that are the full embedding's first D values re-normalised; eval --dim D1,D2 reports each size, and
# eval at the full width equals eval without --dim; finetune --matryoshka's dev score is the loss's weighted mean of the
# dev nDCG@10 at each listed size, the full size's equal to a plain run's dev score of the same starting model.
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_mrl.XXXXXX)
trap 'rm -rf "$T"' EXIT
M=models/compact
F=tests/fixtures/eval
fail=0
bad() { echo "FAIL: $*"; fail=1; }
head -n 24 tests/fixtures/train/debian_pairs.jsonl > "$T/d.jsonl"
ARGS=(--model $M --train "$T/d.jsonl" --epochs 1 --batch 8 --max-len 32 --seed 3 --threads 2 --no-dropout -q)
"$E" train "${ARGS[@]}" --out "$T/plain" 2> "$T/err" || bad "plain train: $(tail -c 300 "$T/err")"
"$E" train "${ARGS[@]}" --matryoshka 128,64,32:0.5 --out "$T/mrl" 2> "$T/err" || bad "matryoshka train: $(tail -c 300 "$T/err")"
cmp -s "$T/plain/model.safetensors" "$T/mrl/model.safetensors" && bad "--matryoshka trained the same model as the plain loss"
# bad lists: exit 2 and the message names the problem
"$E" train "${ARGS[@]}" --matryoshka 64,64 --out "$T/x" 2> "$T/err"; rc=$?
[ $rc = 2 ] && grep -q "listed twice" "$T/err" || bad "duplicate dimension: rc $rc, $(cat "$T/err")"
"$E" train "${ARGS[@]}" --matryoshka 256,64 --out "$T/x" 2> "$T/err"; rc=$?
[ $rc != 0 ] && grep -q "dimension 256 is larger than the model's embedding size 128" "$T/err" || bad "too large: rc $rc, $(cat "$T/err")"

# encode --dim: [n, 32], the first 32 values of the full embedding, re-normalised
printf 'a package manager for debian\nthe quick brown fox\nlibrary for parsing json\n' > "$T/t.txt"
"$E" encode --model "$T/mrl" --in "$T/t.txt" --out "$T/full.npy" -q || bad "encode"
"$E" encode --model "$T/mrl" --in "$T/t.txt" --out "$T/cut.npy" --dim 32 -q || bad "encode --dim"
/usr/bin/python3 - "$T/full.npy" "$T/cut.npy" <<'PY' || bad "encode --dim rows"
import sys
import numpy as np
f, c = np.load(sys.argv[1]), np.load(sys.argv[2])
assert f.shape == (3, 128) and c.shape == (3, 32), (f.shape, c.shape)
ref = f[:, :32] / np.linalg.norm(f[:, :32], axis=1, keepdims=True)
err = np.abs(c - ref).max()
assert err < 1e-6, err
PY
"$E" encode --model "$T/mrl" --in "$T/t.txt" --dim 129 -q > /dev/null 2> "$T/err"; rc=$?
[ $rc != 0 ] && grep -q "embeddings have 128 values" "$T/err" || bad "encode --dim 129: rc $rc, $(cat "$T/err")"

# eval --dim list: each size reported; the full width equals no --dim
"$E" eval --model "$T/mrl" --data $F/beir --mode dense -q --json "$T/e0.json" > /dev/null || bad "eval"
"$E" eval --model "$T/mrl" --data $F/beir --mode dense -q --dim 128,16 --json "$T/e1.json" > "$T/tab" || bad "eval --dim"
grep -q "dim 16" "$T/tab" || bad "eval table without 'dim 16'"
/usr/bin/python3 - "$T/e0.json" "$T/e1.json" <<'PY' || bad "eval --dim JSON"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
by = b["by_dim"]
assert set(by) == {"128", "16"}, list(by)
assert by["128"]["metrics"] == a["metrics"], (by["128"]["metrics"], a["metrics"])
assert by["16"]["dim"] == 16
assert by["16"]["metrics"]["anisotropy"] != a["metrics"]["anisotropy"]
PY
"$E" search --model "$T/mrl" --corpus $F/beir/corpus.jsonl --query "apple" --dim 16 --mode dense -q > "$T/s" || bad "search --dim"
grep -q "rank" "$T/s" || bad "search --dim printed no table"
# finetune --matryoshka: dev points carry the score at each size and their weighted mean (weights 1, 0.5, 1)
FT=(--model tests/fixtures/e2e/model --data tests/fixtures/finetune/beir --epochs 1 --dev on --max-len 32 --threads 2 -q --no-mix)
"$E" finetune "${FT[@]}" --out "$T/fp" --json "$T/fp.json" > /dev/null 2> "$T/err" || bad "finetune plain: $(tail -c 300 "$T/err")"
"$E" finetune "${FT[@]}" --out "$T/fm" --matryoshka 32,16:0.5,8 --json "$T/fm.json" > /dev/null 2> "$T/err" || bad "finetune --matryoshka: $(tail -c 300 "$T/err")"
/usr/bin/python3 - "$T/fp.json" "$T/fm.json" <<'PY' || bad "finetune --matryoshka dev scores"
import json, sys
p, m = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert len(m["dev"]) >= 2, m["dev"]
for pt in m["dev"]:
    by = pt["score_by_dim"]
    assert set(by) == {"32", "16", "8"}, by
    mean = (by["32"] + 0.5 * by["16"] + by["8"]) / 2.5
    assert abs(pt["score"] - mean) < 2e-6, (pt["score"], mean)   # JSON keeps 7 significant digits
    assert by["8"] != by["32"], by
assert "score_by_dim" not in p["dev"][0], p["dev"][0]
assert m["dev"][0]["score_by_dim"]["32"] == p["dev"][0]["score"], (m["dev"][0], p["dev"][0])   # the same starting model
PY
[ $fail = 0 ] && echo "ok cli_matryoshka"
exit $fail
