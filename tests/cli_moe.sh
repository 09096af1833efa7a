#!/usr/bin/env bash
# cli_moe.sh - `embedtune train` with the mixture-of-experts FFN (src/moe.h): convert the GloVe starter to 2
# experts and train only the MoE parameters on 200 Debian pairs. Checks: the run succeeds; every non-MoE tensor
# of the output is bit-identical to the input model's (F16 on disk -> exact F32), the experts moved away from
# the dense up-projection they were copied from, the routers moved (ste gate: they get a gradient); the log has
# per-step routing fractions (summing to 1) and the balance loss; the end summary is printed; config.json records
# the MoE keys and the gate mode; the folder loads and encodes; a resume with another expert count is refused;
# bad MoE options fail clearly. Python here is only the standard library (safetensors reader), no PyTorch.
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_moe.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

M=models/glove-bert-starter
P=tests/fixtures/train/debian_pairs.jsonl

"$E" train --help > "$T/help.txt"
for o in --moe-experts --moe-layers --train-only --moe-gate --moe-aux --moe-jitter ste unscaled switch; do
  check "grep -q -- '$o' '$T/help.txt'" "--help lacks $o"
done

# 200 pairs / batch 16 = 13 steps
"$E" train --model $M --train $P --out "$T/out" --batch 16 --lr 2e-3 --max-len 48 --seed 3 --threads 2 \
  --moe-experts 2 --train-only moe --moe-gate ste --moe-aux 0.01 --log "$T/log.jsonl" 2> "$T/err.txt"
rc=$?
check "[ $rc -eq 0 ]" "train exit $rc: $(tail -c 400 "$T/err.txt")"
check "[ \$(wc -l < '$T/log.jsonl') -eq 13 ]" "log has $(wc -l < "$T/log.jsonl") lines, want 13"
check "grep -q 'MoE: 2 experts in 1 of 1 layers, gate ste' '$T/err.txt'" "no MoE start line: $(head -c 600 "$T/err.txt")"
check "grep -q 'MoE routing over this run' '$T/err.txt' && grep -q 'least-used expert' '$T/err.txt'" "no MoE summary"
check "grep -q '\"moe_gate_ste\": true' '$T/out/config.json' && grep -q '\"num_experts\": 2' '$T/out/config.json'" \
  "config.json lacks the MoE keys: $(cat "$T/out/config.json")"

# the log: moe_frac rows sum to 1, moe_aux > 0, on every line
$PY - "$T/log.jsonl" > "$T/logchk.txt" 2>&1 <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    fr = r["moe_frac"]
    assert r["moe_layers"] == [0], r
    assert len(fr) == 1 and len(fr[0]) == 2 and abs(sum(fr[0]) - 1) < 1e-3, fr
    assert r["moe_aux"] > 0, r
    n += 1
print("log ok", n, "lines, last fractions", fr)
PY
check "[ \$? -eq 0 ]" "log check: $(cat "$T/logchk.txt")"

# tensors: non-MoE bit-identical, experts and router moved
$PY - "$M/model.safetensors" "$T/out/model.safetensors" > "$T/tchk.txt" 2>&1 <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    out = {}
    for k, v in h.items():
        a, e = v["data_offsets"]; raw = b[8 + n + a: 8 + n + e]
        f = {"F32": "f", "F16": "e"}[v["dtype"]]
        vals = struct.unpack("<%d%s" % (len(raw) // struct.calcsize(f), f), raw)
        out[k[5:] if k.startswith("bert.") else k] = vals
    return out
src, dst = load(sys.argv[1]), load(sys.argv[2])
moe = lambda k: ".intermediate.dense.experts." in k or ".intermediate.dense.gate." in k
same = [k for k in dst if not moe(k)]
bad = [k for k in same if k not in src or src[k] != dst[k]]
assert not bad, "non-MoE tensors changed: %s" % bad[:5]
assert not any(k.startswith("encoder.layer.0.intermediate.dense.weight") for k in dst), "dense up-projection still saved"
for j in (0, 1):
    assert dst["encoder.layer.0.intermediate.dense.experts.%d.weight" % j] != src["encoder.layer.0.intermediate.dense.weight"], "expert %d did not move" % j
    assert len(dst["encoder.layer.0.intermediate.dense.experts.%d.bias" % j]) == len(src["encoder.layer.0.intermediate.dense.bias"])
g = dst["encoder.layer.0.intermediate.dense.gate.weight"]
assert len(g) == 2 * 100
print("tensors ok: %d non-MoE tensors bit-identical, experts trained" % len(same))
PY
check "[ \$? -eq 0 ]" "tensor check: $(cat "$T/tchk.txt")"
cat "$T/logchk.txt" "$T/tchk.txt"

# the router moved: the converted router is seeded by --seed, so a run at --lr 0 keeps the initial router;
# the trained one must differ from it
"$E" train --model $M --train $P --out "$T/zero" --batch 16 --lr 0 --max-len 48 --seed 3 --threads 2 \
  --moe-experts 2 --train-only moe --moe-gate ste -q 2> "$T/ez.txt"
$PY - "$T/zero/model.safetensors" "$T/out/model.safetensors" > "$T/gchk.txt" 2>&1 <<'PY'
import json, struct, sys
def gate(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    k = [k for k in h if k.endswith("intermediate.dense.gate.weight")][0]; a, e = h[k]["data_offsets"]
    return b[8 + n + a: 8 + n + e]
assert gate(sys.argv[1]) != gate(sys.argv[2]), "router unchanged by training"
print("router trained")
PY
check "[ \$? -eq 0 ]" "router check: $(cat "$T/gchk.txt" "$T/ez.txt")"

# the output folder loads and encodes
printf 'apt package manager\nweb server\n' > "$T/texts.txt"
"$E" encode --model "$T/out" --in "$T/texts.txt" --out "$T/new.jsonl" -q; rc=$?
check "[ $rc -eq 0 ] && [ \$(wc -l < '$T/new.jsonl') -eq 2 ]" "encode on the MoE model failed ($rc)"
# at lr 0 the ste-converted model encodes exactly like the dense starter (forward identical at step 0)
"$E" encode --model "$T/zero" --in "$T/texts.txt" --out "$T/zero.jsonl" -q
"$E" encode --model $M --in "$T/texts.txt" --out "$T/dense.jsonl" -q
check "cmp -s '$T/zero.jsonl' '$T/dense.jsonl'" "ste-converted model (lr 0) does not encode like the dense model"

# continue training the saved MoE model: its own gate mode is kept; a different expert count is refused
"$E" train --model "$T/out" --train $P --out "$T/again" --batch 16 --max-len 48 --threads 2 --train-only moe \
  --epochs 1 2> "$T/e0.txt"; rc=$?
check "[ $rc -eq 0 ] && grep -q 'gate ste' '$T/e0.txt'" "training the MoE folder again: $(tail -c 300 "$T/e0.txt")"
"$E" train --model "$T/out" --train $P --out "$T/b1" --moe-experts 3 -q 2> "$T/e1.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'already a mixture of experts with 2' '$T/e1.txt'" "expert count mismatch: $(cat "$T/e1.txt")"
# bad options
"$E" train --model $M --train $P --out "$T/b2" --moe-gate top2 --moe-experts 2 -q 2> "$T/e2.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'switch, unscaled, ste' '$T/e2.txt'" "bad --moe-gate: $(cat "$T/e2.txt")"
"$E" train --model $M --train $P --out "$T/b3" --train-only moe -q 2> "$T/e3.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'dense' '$T/e3.txt'" "--train-only moe on a dense model: $(cat "$T/e3.txt")"
"$E" train --model $M --train $P --out "$T/b4" --moe-experts 2 --moe-layers 0,3 -q 2> "$T/e4.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q 'layer' '$T/e4.txt'" "--moe-layers beyond the model: $(cat "$T/e4.txt")"
"$E" train --model $M --train $P --out "$T/b5" --moe-gate ste -q 2> "$T/e5.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q -- '--moe-experts' '$T/e5.txt'" "--moe-gate on a dense model without --moe-experts: $(cat "$T/e5.txt")"
"$E" train --model $M --train $P --out "$T/b6" --train-only attention -q 2> "$T/e6.txt"; rc=$?
check "[ $rc -ne 0 ] && grep -q \"only 'moe'\" '$T/e6.txt'" "--train-only attention: $(cat "$T/e6.txt")"

if [ $fail -ne 0 ]; then echo "cli_moe: FAILED"; exit 1; fi
echo "cli_moe: all passed"
