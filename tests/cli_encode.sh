#!/usr/bin/env bash
# cli_encode.sh - `embedtune encode` / `search` behaviour: outputs, help, and clear errors on bad input.
set -u
. tests/et_test.sh   # ET, T, ok, bad, expect_err, et_test_done
M=tests/fixtures/e2e/model

printf 'hello world\nthe quick brown fox\n\ncafé crème\n' > "$T/in.txt"
# .npy: magic, version 1.0, header mentions the shape, size = 10 + hlen + n*d*4
"$ET" encode --model "$M" --in "$T/in.txt" --out "$T/e.npy" -q && ok "encode to .npy" || bad "encode to .npy"
magic=$(head -c 6 "$T/e.npy" | od -An -c | tr -d ' ')
[ "$magic" = "223NUMPY" ] && ok "npy magic" || bad "npy magic ($magic)"
grep -aq "'shape': (4, 32)" "$T/e.npy" && ok "npy shape (4, 32)" || bad "npy shape"
hlen=$(od -An -tu2 -j8 -N2 "$T/e.npy" | tr -d ' ')
[ $(stat -c %s "$T/e.npy") -eq $((10 + hlen + 4*32*4)) ] && ok "npy size" || bad "npy size"
[ $(( (10 + hlen) % 64 )) -eq 0 ] && ok "npy header aligned to 64" || bad "npy header alignment"
# JSONL on stdout: one line per input line (the empty line too), in order
"$ET" encode --model "$M" --in "$T/in.txt" -q > "$T/e.jsonl"
[ $(wc -l < "$T/e.jsonl") -eq 4 ] && ok "jsonl line count" || bad "jsonl line count"
grep -q '^{"index":2,"embedding":\[' "$T/e.jsonl" && ok "jsonl order" || bad "jsonl order"
# stdin and JSONL input with a "text" field give the same embeddings as plain lines
printf '{"text":"hello world"}\n{"text":"the quick brown fox"}\n' > "$T/in.jsonl"
"$ET" encode --model "$M" --in "$T/in.jsonl" -q | head -2 > "$T/a"
head -2 "$T/e.jsonl" > "$T/b"
cmp -s "$T/a" "$T/b" && ok "jsonl input == plain input" || bad "jsonl input differs"
head -2 "$T/in.txt" | "$ET" encode --model "$M" -q > "$T/c"
cmp -s "$T/c" "$T/b" && ok "stdin input" || bad "stdin input differs"
# --out .jsonl file, written atomically (no temp files left)
"$ET" encode --model "$M" --in "$T/in.txt" --out "$T/o.jsonl" -q && [ $(wc -l < "$T/o.jsonl") -eq 4 ] && ok "--out .jsonl" || bad "--out .jsonl"
[ -z "$(ls "$T" | grep -E '\.tmp')" ] && ok "no temp files left" || bad "temp files left: $(ls "$T")"
# help everywhere
"$ET" --help | grep -q "encode" && ok "main help" || bad "main help"
"$ET" encode --help | grep -q -- "--max-len" && ok "encode help" || bad "encode help"
"$ET" search --help | grep -q -- "--corpus" && ok "search help" || bad "search help"
# search: k results, JSON mode, best hit
printf '{"_id":"d1","title":"Fox","text":"the quick brown fox"}\n{"_id":"d2","title":"","text":"hello world"}\n{"_id":"d3","text":"café crème"}\n' > "$T/corpus.jsonl"
"$ET" search --model "$M" --corpus "$T/corpus.jsonl" --query "hello world" -k 2 --json -q > "$T/s.json"
grep -q '"rank":1,"id":"d2"' "$T/s.json" && ok "search finds the identical text first" || bad "search: $(cat "$T/s.json")"
[ $(grep -o '"rank"' "$T/s.json" | wc -l) -eq 2 ] && ok "search -k 2" || bad "search -k"
"$ET" search --model "$M" --corpus "$T/corpus.jsonl" --query "fox" -k 50 -q | grep -q "^   3 " && ok "k larger than corpus" || bad "k larger than corpus"
# modes: a convex fusion with model weight 0 is BM25's order (only d1 contains "fox"); rrf ranks every doc
"$ET" search --model "$M" --corpus "$T/corpus.jsonl" --query "fox" -k 1 --json -q --fusion convex:alpha=0 | grep -q '"mode":"hybrid","results":\[{"rank":1,"id":"d1","score":1' && ok "fusion alpha 0 = BM25" || bad "fusion alpha 0"
[ $("$ET" search --model "$M" --corpus "$T/corpus.jsonl" --query "fox" -k 3 --json -q --fusion rrf:k=60,alpha=0.5 | grep -o '"rank"' | wc -l) -eq 3 ] && ok "hybrid rrf ranks all" || bad "hybrid rrf"
# bm25 mode: the document with the query term first, then the others (score 0) in corpus order
"$ET" search --model "$M" --corpus "$T/corpus.jsonl" --query "fox" -k 3 --json -q --mode bm25 > "$T/b.json"
grep -q '"mode":"bm25","results":\[{"rank":1,"id":"d1","score":[0-9.]*},{"rank":2,"id":"d2","score":0},{"rank":3,"id":"d3","score":0}' "$T/b.json" && ok "--mode bm25" || bad "--mode bm25: $(cat "$T/b.json")"
expect_err "bad --mode" "mode must be dense, bm25 or hybrid" "$ET" search --model "$M" --corpus "$T/corpus.jsonl" --query q --mode max
expect_err "bad --fusion weight" "'alpha': must be in \[0, 1\]" "$ET" search --model "$M" --corpus "$T/corpus.jsonl" --query q --fusion convex:alpha=2
expect_err "bad --fusion kind" "unknown kind 'magic'" "$ET" search --model "$M" --corpus "$T/corpus.jsonl" --query q --fusion magic
# the model folder's retrieval.json sets the default mode and fusion; --mode overrides it
mkdir -p "$T/m2" && for f in "$M"/*; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$T/m2/"; done
printf '{"format": "embedtune-retrieval", "version": 1, "mode": "hybrid", "bm25": {"k1": 0.9, "b": 0.4},\n "fusion": {"kind": "convex", "norm": "minmax", "alpha": 0}}\n' > "$T/m2/retrieval.json"
"$ET" search --model "$T/m2" --corpus "$T/corpus.jsonl" --query "fox" -k 1 --json -q | grep -q '"mode":"hybrid","results":\[{"rank":1,"id":"d1","score":1' && ok "retrieval.json: hybrid by default" || bad "retrieval.json default"
"$ET" search --model "$T/m2" --corpus "$T/corpus.jsonl" --query "fox" -k 1 --json -q --mode dense | grep -q '"mode":"dense"' && ok "--mode overrides retrieval.json" || bad "--mode override"
printf '{"format": "embedtune-retrieval", "version": 1, "mode": "hybrid", "bm25": {"k1": 0.9, "b": 0.4},\n "fusion": {"kind": "convex", "norm": "minmax", "alpha": 7}}\n' > "$T/m2/retrieval.json"
expect_err "bad retrieval.json names file and field" "m2/retrieval.json: field 'fusion.alpha'" "$ET" search --model "$T/m2" --corpus "$T/corpus.jsonl" --query q
# errors: each names what is wrong
expect_err "unknown command" "unknown command 'frobnicate'" "$ET" frobnicate
expect_err "missing --model" "missing required option --model" "$ET" encode --in "$T/in.txt"
expect_err "unknown option" "unknown option '--bogus'" "$ET" encode --model "$M" --bogus
expect_err "option without value" "needs a value" "$ET" encode --model
expect_err "bad --batch" "--batch: expected an integer" "$ET" encode --model "$M" --batch 0
expect_err "bad --threads" "--threads: expected an integer" "$ET" encode --model "$M" --threads abc
expect_err "bad --out extension" "must end in .npy or .jsonl" "$ET" encode --model "$M" --out "$T/x.csv"
expect_err "missing model dir" "nope: model folder not found" "$ET" encode --model "$T/nope" --in "$T/in.txt"
expect_err "missing input" "nothere.txt: cannot open" "$ET" encode --model "$M" --in "$T/nothere.txt"
printf '{"text":"a"}\n{"text": 5}\n' > "$T/bad.jsonl"
expect_err "jsonl field type" "bad.jsonl:2: field \"text\"" "$ET" encode --model "$M" --in "$T/bad.jsonl"
printf '{"text":"a"}\n{not json\n' > "$T/bad2.jsonl"
expect_err "jsonl syntax" "bad2.jsonl:2: not a JSON object" "$ET" encode --model "$M" --in "$T/bad2.jsonl"
printf '{"_id":"d1","text":"x"}\n{"title":"no id","text":"y"}\n' > "$T/badc.jsonl"
expect_err "corpus without _id" "badc.jsonl:2: field ._id.: missing" "$ET" search --model "$M" --corpus "$T/badc.jsonl" --query q
expect_err "search needs a query" "exactly one of --query" "$ET" search --model "$M" --corpus "$T/corpus.jsonl"
: > "$T/empty.jsonl"
expect_err "empty corpus" "no documents" "$ET" search --model "$M" --corpus "$T/empty.jsonl" --query q
et_test_done cli_encode
