#!/usr/bin/env bash
# cli_killresume.sh - crash safety of `embedtune train`: SIGKILL a run at random moments (4 times),
# resume it each time with --resume, and require the final model.safetensors to equal an
# uninterrupted run with the same seed (bit-identical; max |diff| <= 1e-6 tolerated). After every
# kill, the checkpoint named by 'latest' must be complete (trainer_state.bin, no temp files) and
# load as a model. Kill delays are random (printed; set KR_SEED to replay a sequence).
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_kr.XXXXXX)
trap 'rm -rf "$T"' EXIT
M=tests/fixtures/e2e/model
P=tests/fixtures/train/debian_pairs.jsonl
ARGS=(--model $M --train $P --epochs 3 --batch 8 --max-len 32 --seed 7 --save-every 2 --keep 2 --threads 1)
RANDOM=${KR_SEED:-$$}
fail=0
now() { date +%s.%N; }
printf 'apt package manager\nweb server\n' > "$T/texts.txt"

# the uninterrupted reference (75 steps, a checkpoint every 2)
t0=$(now)
"$E" train "${ARGS[@]}" --out "$T/ref" -q 2> "$T/ref.err" || { echo "FAIL: reference run: $(cat "$T/ref.err")"; exit 1; }
D=$(awk -v a="$(now)" -v b="$t0" 'BEGIN {printf "%.3f", a - b}')
echo "reference run: ${D}s"

check_latest() { # the checkpoint 'latest' names is complete and loads
  local out=$1 tag=$2
  [ -f "$out/latest" ] || return 0   # killed before the first checkpoint
  local c; c=$(cat "$out/latest")
  if [ ! -f "$out/$c/trainer_state.bin" ] || [ ! -f "$out/$c/model.safetensors" ]; then
    echo "FAIL [$tag]: latest names $c, which is incomplete: $(ls "$out/$c" 2>&1 | tr '\n' ' ')"; fail=1; return
  fi
  if ls "$out/$c" | grep -q 'tmp'; then echo "FAIL [$tag]: $c holds temp files: $(ls "$out/$c" | grep tmp)"; fail=1; fi
  if ! "$E" encode --model "$out/$c" --in "$T/texts.txt" --out "$T/chk.jsonl" -q 2> "$T/chk.err"; then
    echo "FAIL [$tag]: checkpoint $c does not load: $(cat "$T/chk.err")"; fail=1
  fi
}

# 4 runs killed at random moments, each resuming the previous one
O="$T/run"
kills=0
for i in 1 2 3 4; do
  r=()
  [ $i -gt 1 ] && r=(--resume)
  pct=$((10 + RANDOM % 50))   # drawn here, not in a subshell (each would repeat the same number)
  delay=$(awk -v d="$D" -v p=$pct 'BEGIN {printf "%.3f", d * p / 100}')
  "$E" train "${ARGS[@]}" --out "$O" "${r[@]}" > /dev/null 2> "$T/run$i.err" &
  pid=$!
  sleep "$delay"
  if kill -9 $pid 2> /dev/null; then kills=$((kills + 1)); fi
  wait $pid 2> /dev/null
  echo "run $i: killed after ${delay}s; $(grep -o 'resumed at step [0-9]*' "$T/run$i.err" || echo 'started from scratch'); latest: $(cat "$O/latest" 2> /dev/null || echo none)"
  check_latest "$O" "kill $i"
done
# finish
"$E" train "${ARGS[@]}" --out "$O" --resume 2> "$T/final.err" > /dev/null || { echo "FAIL: final resume: $(tail -c 500 "$T/final.err")"; exit 1; }
echo "final run: $(grep -o 'resumed at step [0-9]*' "$T/final.err" || echo 'from scratch')"
check_latest "$O" final
[ $kills -ge 1 ] || { echo "FAIL: no run was killed before it finished (reference took ${D}s)"; fail=1; }
grep -q 'checkpoint-0000075' "$O/latest" || { echo "FAIL: the resumed run ends at $(cat "$O/latest"), want checkpoint-0000075"; fail=1; }
if cmp -s "$T/ref/model.safetensors" "$O/model.safetensors"; then
  echo "final model.safetensors: bit-identical to the uninterrupted run ($kills kills)"
else
  # not bit-identical: tolerate max |diff| <= 1e-6 (same header, F32 payload compared value by value)
  d=$(/usr/bin/python3 - "$T/ref/model.safetensors" "$O/model.safetensors" <<'PY'
import struct, sys
a, b = (open(p, 'rb').read() for p in sys.argv[1:3])
n = struct.unpack('<Q', a[:8])[0]
if a[:8 + n] != b[:8 + n]: print('header differs'); sys.exit()
x = struct.unpack('<%df' % ((len(a) - 8 - n) // 4), a[8 + n:]); y = struct.unpack('<%df' % ((len(b) - 8 - n) // 4), b[8 + n:])
print(max(abs(u - v) for u, v in zip(x, y)) if len(x) == len(y) else 'size differs')
PY
)
  echo "final model.safetensors differs from the uninterrupted run: max |diff| = $d"
  awk -v d="$d" 'BEGIN {exit !(d + 0 == d && d <= 1e-6)}' || fail=1
fi
if [ $fail -ne 0 ]; then echo "cli_killresume: FAILED"; exit 1; fi
echo "cli_killresume: all passed"
