#!/usr/bin/env bash
# cli_precision.sh - `--precision fp32|bf16|auto` of train and finetune:
#  - where the CPU has AVX512_BF16 (native build): bf16 trains, says so, deterministically (two runs at 1 and 2
#    threads give the same bytes), ends near the fp32 run (same data order, the loss within 2 %) but not
#    on the same bits; an fp32 checkpoint is not resumed as bf16 (the setting is part of the resume check);
#  - elsewhere (WebAssembly, a CPU without AVX512_BF16): bf16 is refused with the reason, never silently fp32;
#  - everywhere: auto says what it chose and why (natively: bf16 only where its kernel measures >= 1.2x the fp32
#    one); an unknown value is refused; fp32 is the default.
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_precision.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

M=models/compact
P=tests/fixtures/train/debian_pairs.jsonl
run() { # out precision threads [extra...]
  local out=$1 prec=$2 thr=$3; shift 3
  "$E" train --model $M --train $P --out "$T/$out" --epochs 1 --batch 16 --max-len 32 --seed 3 --no-dropout \
    --threads "$thr" --precision "$prec" --log "$T/$out.log" "$@" 2> "$T/$out.err"
}

for c in train finetune; do
  "$E" $c --help > "$T/help.txt" 2>&1
  check "grep -q -- '--precision' '$T/help.txt'" "$c --help lacks --precision"
done

run bad fp16 1; rc=$?
check "[ $rc -ne 0 ] && grep -q \"unknown precision 'fp16'\" '$T/bad.err'" "fp16 not refused: rc $rc $(cat "$T/bad.err")"

case "$E" in *embedtune-cli.sh) native=0; why='WebAssembly has no bf16 instructions' ;;
  *) if grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then native=1; else native=0; fi
     why='this CPU has no AVX512_BF16' ;;
esac

run fp32 fp32 2; rc=$?
check "[ $rc -eq 0 ]" "fp32 run failed: $(tail -c 300 "$T/fp32.err")"
run auto auto 1; rc=$?
check "[ $rc -eq 0 ]" "auto run failed: $(tail -c 300 "$T/auto.err")"
# auto says what it chose and why (natively: the measured speed of the bf16 kernel against the fp32 one)
check "grep -Eq 'precision (fp32|bf16) \\(auto: ' '$T/auto.err'" "auto did not say its choice: $(grep precision "$T/auto.err")"
if [ $native = 1 ]; then
  check "grep -q 'runs at [0-9.]*x the fp32 one' '$T/auto.err'" "auto did not give the measured speed-up"
fi

if [ $native = 1 ]; then
  run bf16 bf16 2; rc=$?
  check "[ $rc -eq 0 ] && grep -q 'precision bf16' '$T/bf16.err'" "bf16 run: rc $rc $(tail -c 300 "$T/bf16.err")"
  run bf16b bf16 1 -q; rc=$?
  check "[ $rc -eq 0 ] && cmp -s '$T/bf16/model.safetensors' '$T/bf16b/model.safetensors'" "bf16 at 1 and 2 threads differ"
  check "! cmp -s '$T/bf16/model.safetensors' '$T/fp32/model.safetensors'" "bf16 gave the fp32 bits"
  # the same steps: every step's loss within 2 % of fp32's (bf16 operands: ~0.4 % per GEMM input)
  paste <(sed 's/.*"loss":\([^,]*\),.*/\1/' "$T/fp32.log") <(sed 's/.*"loss":\([^,]*\),.*/\1/' "$T/bf16.log") > "$T/pair.txt"
  check "[ \$(wc -l < '$T/pair.txt') -eq 13 ] && awk '{d=\$1-\$2; if (d<0) d=-d; if (d > 0.02*\$1) bad=1} END {exit bad}' '$T/pair.txt'" \
    "bf16 losses far from fp32: $(tr '\n' ' ' < "$T/pair.txt")"
  # resume: an fp32 run's checkpoint is refused under bf16
  "$E" train --model $M --train $P --out "$T/fp32" --epochs 1 --batch 16 --max-len 32 --seed 3 --no-dropout \
    --threads 2 --precision bf16 --resume 2> "$T/resume.err"; rc=$?
  check "[ $rc -ne 0 ] && grep -q 'precision' '$T/resume.err'" "fp32 checkpoint resumed under bf16: rc $rc $(cat "$T/resume.err")"
else
  run bf16 bf16 1; rc=$?
  check "[ $rc -ne 0 ] && grep -q '$why' '$T/bf16.err' && grep -q -- '--precision fp32' '$T/bf16.err'" \
    "bf16 not refused with the reason: rc $rc $(cat "$T/bf16.err")"
  check "[ ! -e '$T/bf16/model.safetensors' ]" "a refused bf16 run wrote a model"
  # auto trains in fp32 here: the fp32 bits
  check "cmp -s '$T/auto/model.safetensors' '$T/fp32/model.safetensors'" "auto without bf16 is not the fp32 run"
  "$E" finetune --model $M --data $P --out "$T/ft" --precision bf16 2> "$T/ft.err"; rc=$?
  check "[ $rc -ne 0 ] && grep -q '$why' '$T/ft.err'" "finetune bf16 not refused: rc $rc $(cat "$T/ft.err")"
fi
exit $fail
