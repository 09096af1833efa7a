#!/usr/bin/env bash
# cli_int8.sh - int8 inference from the command line: `encode/search/eval --int8`, and `embedtune quantize` (the int8
# export, docs/int8.md) whose folder runs in int8 by itself and gives the same embeddings as --int8 on the source model.
set -u
. tests/et_test.sh   # ET, T, ok, bad, expect_err, et_test_done
M=models/compact
printf 'how do I list open files\nthe quick brown fox jumps over the lazy dog\nkernel panic after upgrade\n' > "$T/in.txt"
"$ET" encode --model $M --in "$T/in.txt" --out "$T/f32.jsonl" -q || bad "encode fp32"
"$ET" encode --model $M --int8 --in "$T/in.txt" --out "$T/i8.jsonl" -q && ok "encode --int8" || bad "encode --int8"
cmp -s "$T/f32.jsonl" "$T/i8.jsonl" && bad "--int8 changed nothing" || ok "--int8 gives other (int8) embeddings"
# cosine int8 vs fp32 per text (awk over the JSONL arrays)
cosines() { paste -d'|' "$1" "$2" | awk -F'|' '{ gsub(/.*\[|\].*/, "", $1); gsub(/.*\[|\].*/, "", $2);
  n = split($1, a, ","); split($2, b, ","); d = 0; x = 0; y = 0
  for (i = 1; i <= n; i++) { d += a[i] * b[i]; x += a[i] * a[i]; y += b[i] * b[i] } printf "%.6f\n", d / sqrt(x * y) }'; }
low=$(cosines "$T/f32.jsonl" "$T/i8.jsonl" | awk '$1 < 0.995' | wc -l)
[ "$low" -eq 0 ] && ok "cosine int8 vs fp32 >= 0.995 ($(cosines "$T/f32.jsonl" "$T/i8.jsonl" | tr '\n' ' '))" || bad "cosine below 0.995"
# the export
"$ET" quantize --model $M --out "$T/q" 2>"$T/qerr" && ok "quantize" || bad "quantize ($(cat "$T/qerr"))"
grep -q '"dtype":"I8"' "$T/q/model.safetensors" && ok "export holds I8 tensors" || bad "no I8 tensor in the export"
grep -q 'encoder.layer.0.attention.self.query.weight_scale' "$T/q/model.safetensors" && ok "export holds the scales" || bad "no scale tensor"
"$ET" encode --model "$T/q" --in "$T/in.txt" --out "$T/q.jsonl" -q || bad "encode the export"
cmp -s "$T/q.jsonl" "$T/i8.jsonl" && ok "the export encodes as --int8 does (same bytes)" || bad "the export differs from --int8"
"$ET" encode --model "$T/q" --int8 --in "$T/in.txt" --out "$T/q2.jsonl" -q && cmp -s "$T/q2.jsonl" "$T/i8.jsonl" && ok "export + --int8" || bad "export + --int8"
# search and eval take --int8
printf '{"_id":"a","text":"list open files with lsof"}\n{"_id":"b","text":"a fox and a dog"}\n' > "$T/c.jsonl"
"$ET" search --model $M --int8 --corpus "$T/c.jsonl" --query "which program lists open files" -k 1 -q > "$T/s.txt" 2>&1 && grep -q "a" "$T/s.txt" && ok "search --int8" || bad "search --int8 ($(head -c 300 "$T/s.txt"))"
"$ET" eval --model $M --int8 --data tests/fixtures/eval/beir --mode dense -q > "$T/e.txt" 2>&1 && ok "eval --int8" || bad "eval --int8 ($(head -c 300 "$T/e.txt"))"
# help and bad input
"$ET" quantize --help | grep -q -- "--dtype" && ok "quantize --help" || bad "quantize --help"
"$ET" encode --help | grep -q -- "--int8" && ok "encode --help names --int8" || bad "encode --help"
expect_err "quantize without --out" "missing required option --out" "$ET" quantize --model $M
expect_err "quantize bad --dtype" "--dtype 'I4' is not F32, F16 or BF16" "$ET" quantize --model $M --out "$T/x" --dtype I4
# a broken export: the scale tensor removed from the header -> a clear error naming the tensor
python3 - "$T/q/model.safetensors" "$T/broken.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
h['encoder.layer.0.attention.self.query.weight_scale__gone'] = h.pop('encoder.layer.0.attention.self.query.weight_scale')
hb = json.dumps(h).encode(); hb += b' ' * (-len(hb) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(hb)) + hb + b[8 + n:])
PY
mkdir -p "$T/b" && cp -r "$T/q/." "$T/b/" && cp "$T/broken.safetensors" "$T/b/model.safetensors"
expect_err "export without a scale" "query.weight' is I8 but its per-row scale tensor is missing" "$ET" encode --model "$T/b" --in "$T/in.txt" -q
et_test_done cli_int8
