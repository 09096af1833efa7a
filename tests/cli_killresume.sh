#!/usr/bin/env bash
# cli_killresume.sh - crash safety of `embedtune train`: SIGKILL a run at random moments (4 times),
# resume it each time with --resume, and require the final model.safetensors to equal an
# uninterrupted run with the same seed, byte for byte (cmp). After every kill, the checkpoint named
# by 'latest' must be complete (trainer_state.bin, no temp files) and load as a model. Kill delays
# are random (printed; set KR_SEED to replay a sequence). Run at --threads 2 and at --threads 4 (on
# 2 cores, oversubscribed: the harshest scheduler) with the compact model, large enough that every
# kernel splits its work over the threads; the resumed run at 4 threads is also compared with the
# uninterrupted run at 2 threads (the result does not depend on the thread count).
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_kr.XXXXXX)
trap 'rm -rf "$T"' EXIT
M=models/compact
P="$T/pairs.jsonl"
head -40 tests/fixtures/train/debian_pairs.jsonl > "$P"
RANDOM=${KR_SEED:-$$}
fail=0
now() { date +%s.%N; }
printf 'apt package manager\nweb server\n' > "$T/texts.txt"

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

kr() { # kill-and-resume at $1 threads
TH=$1
ARGS=(--model $M --train "$P" --epochs 2 --batch 8 --max-len 32 --seed 7 --save-every 2 --keep 2)
# the uninterrupted reference (10 steps, a checkpoint every 2)
t0=$(now)
"$E" train "${ARGS[@]}" --threads $TH --out "$T/ref$TH" -q 2> "$T/ref.err" || { echo "FAIL: reference run: $(cat "$T/ref.err")"; exit 1; }
D=$(awk -v a="$(now)" -v b="$t0" 'BEGIN {printf "%.3f", a - b}')
echo "[$TH threads] reference run: ${D}s"
# 4 runs killed at random moments, each resuming the previous one
O="$T/run$TH"
kills=0
for i in 1 2 3 4; do
  r=()
  [ $i -gt 1 ] && r=(--resume)
  pct=$((10 + RANDOM % 50))   # drawn here, not in a subshell (each would repeat the same number)
  delay=$(awk -v d="$D" -v p=$pct 'BEGIN {printf "%.3f", d * p / 100}')
  "$E" train "${ARGS[@]}" --threads $TH --out "$O" "${r[@]}" > /dev/null 2> "$T/run$TH-$i.err" &
  pid=$!
  sleep "$delay"
  if kill -9 $pid 2> /dev/null; then kills=$((kills + 1)); fi
  wait $pid 2> /dev/null
  echo "[$TH threads] run $i: killed after ${delay}s; $(grep -o 'resumed at step [0-9]*' "$T/run$TH-$i.err" || echo 'started from scratch'); latest: $(cat "$O/latest" 2> /dev/null || echo none)"
  check_latest "$O" "$TH threads, kill $i"
done
# finish
"$E" train "${ARGS[@]}" --threads $TH --out "$O" --resume 2> "$T/final.err" > /dev/null || { echo "FAIL [$TH threads]: final resume: $(tail -c 500 "$T/final.err")"; exit 1; }
echo "[$TH threads] final run: $(grep -o 'resumed at step [0-9]*' "$T/final.err" || echo 'from scratch')"
check_latest "$O" "$TH threads, final"
[ $kills -ge 1 ] || { echo "FAIL [$TH threads]: no run was killed before it finished (reference took ${D}s)"; fail=1; }
grep -q 'checkpoint-0000010' "$O/latest" || { echo "FAIL [$TH threads]: the resumed run ends at $(cat "$O/latest"), want checkpoint-0000010"; fail=1; }
if cmp -s "$T/ref$TH/model.safetensors" "$O/model.safetensors"; then
  echo "[$TH threads] final model.safetensors: bit-identical to the uninterrupted run ($kills kills)"
else
  d=$(/usr/bin/python3 - "$T/ref$TH/model.safetensors" "$O/model.safetensors" <<'PY'
import struct, sys
a, b = (open(p, 'rb').read() for p in sys.argv[1:3])
n = struct.unpack('<Q', a[:8])[0]
if a[:8 + n] != b[:8 + n]: print('header differs'); sys.exit()
x = struct.unpack('<%df' % ((len(a) - 8 - n) // 4), a[8 + n:]); y = struct.unpack('<%df' % ((len(b) - 8 - n) // 4), b[8 + n:])
print(max(abs(u - v) for u, v in zip(x, y)) if len(x) == len(y) else 'size differs')
PY
)
  echo "FAIL [$TH threads]: final model.safetensors differs from the uninterrupted run: max |diff| = $d"; fail=1
fi
}

kr 2
kr 4
cmp -s "$T/ref2/model.safetensors" "$T/run4/model.safetensors" && echo "resumed run at 4 threads == uninterrupted run at 2 threads" \
  || { echo "FAIL: the resumed run at 4 threads differs from the uninterrupted run at 2 threads"; fail=1; }
if [ $fail -ne 0 ]; then echo "cli_killresume: FAILED"; exit 1; fi
echo "cli_killresume: all passed"
