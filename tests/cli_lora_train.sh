#!/usr/bin/env bash
# cli_lora_train.sh - LoRA training from the command line: `train --lora` on the GloVe starter (200 Debian pairs)
# writes a PEFT adapter folder (adapter_config.json + adapter_model.safetensors, no full model), --merge a plain
# folder; encoding with the adapter folder (as --model, or --adapter beside the base) gives the same bits as the
# merged folder, and the independent plain-torch reader (tools/lora_reader.py, float64) applied to the base and the
# saved adapter gives the same embeddings within 1e-5 (when /usr/bin/python3 has torch); the resume check covers
# the LoRA settings; LoRA options without --lora are refused. Activation checkpointing (on by default with --lora,
# --checkpoint for full fine-tuning) trains the same bits: the adapter with --no-checkpoint and the full model with
# --checkpoint are byte for byte those of the other layout.
set -u
E=${ET_EMBEDTUNE:-build/embedtune}
T=$(mktemp -d /tmp/et_cli_lora_train.XXXXXX)
trap 'rm -rf "$T"' EXIT
M=models/glove-bert-starter
P=tests/fixtures/train/debian_pairs.jsonl
fail=0
bad() { echo "FAIL: $*"; fail=1; }

"$E" train --help > "$T/help.txt"
for o in --lora --lora-alpha --lora-dropout --lora-targets --lora-rslora --lora-base --merge --checkpoint --no-checkpoint; do
  grep -q -- "$o " "$T/help.txt" || bad "train --help lacks $o"
done
"$E" finetune --help > "$T/fhelp.txt"
for o in --lora --lora-alpha --lora-dropout --lora-targets --lora-base --merge --checkpoint --no-checkpoint; do
  grep -q -- "$o " "$T/fhelp.txt" || bad "finetune --help lacks $o"
done

"$E" train --model $M --train $P --out "$T/out" --epochs 2 --batch 16 --lr 2e-3 --max-len 48 --seed 3 --threads 2 \
  --lora 4 --lora-targets all --save-every 10 --merge "$T/merged" --log "$T/log.jsonl" 2> "$T/err" || bad "train --lora: $(tail -c 400 "$T/err")"
grep -q "LoRA r 4, alpha 8 (scale 2), dropout 0.1, on q,k,v,o,ffn_in,ffn_out" "$T/err" || bad "no LoRA line: $(head -c 600 "$T/err")"
[ -f "$T/out/adapter_config.json" ] && [ -f "$T/out/adapter_model.safetensors" ] && [ ! -f "$T/out/model.safetensors" ] \
  || bad "adapter folder holds $(ls "$T/out" | tr '\n' ' ')"
for k in '"peft_type":[[:space:]]*"LORA"' '"r":[[:space:]]*4' '"lora_alpha":[[:space:]]*8' '"bias":[[:space:]]*"none"' \
         '"lora_dropout":[[:space:]]*0.1' '"base_model_name_or_path":[[:space:]]*"/' '"target_modules":'; do
  grep -q "$k" "$T/out/adapter_config.json" || bad "adapter_config.json lacks $k"
done
grep -q 'base_model.model.encoder.layer.0.attention.self.query.lora_A.weight' "$T/out/adapter_model.safetensors" || bad "no PEFT key names"
grep -q 'base_model.model.encoder.layer.0.output.dense.lora_B.weight' "$T/out/adapter_model.safetensors" || bad "no output.dense adapter"
[ "$(stat -c %s "$T/out/adapter_model.safetensors")" -lt 100000 ] || bad "adapter file is $(stat -c %s "$T/out/adapter_model.safetensors") bytes"
[ -f "$T/merged/model.safetensors" ] && [ -f "$T/merged/config.json" ] && [ ! -f "$T/merged/adapter_config.json" ] || bad "merged folder: $(ls "$T/merged" | tr '\n' ' ')"
[ "$(wc -l < "$T/log.jsonl")" = 26 ] || bad "log has $(wc -l < "$T/log.jsonl") lines"

# encode: adapter folder = base + --adapter = merged folder (bit for bit), and not the base
printf 'the package manager\nweb server\nthe kernel and the shell\n' > "$T/t.txt"
"$E" encode --model "$T/out" --in "$T/t.txt" --out "$T/ad.npy" -q || bad "encode --model ADAPTER"
"$E" encode --model $M --adapter "$T/out" --in "$T/t.txt" --out "$T/ad2.npy" -q || bad "encode --adapter"
"$E" encode --model "$T/merged" --in "$T/t.txt" --out "$T/m.npy" -q || bad "encode merged"
"$E" encode --model $M --in "$T/t.txt" --out "$T/base.npy" -q || bad "encode base"
cmp -s "$T/ad.npy" "$T/m.npy" || bad "the adapter folder encodes differently from the merged folder"
cmp -s "$T/ad.npy" "$T/ad2.npy" || bad "--model ADAPTER differs from --model BASE --adapter ADAPTER"
cmp -s "$T/ad.npy" "$T/base.npy" && bad "training the adapter did not change the embeddings"

# the independent reader (plain torch, float64) on the base + the saved adapter; every word is one vocab token
if /usr/bin/python3 -c "import torch, numpy" 2> /dev/null; then
  /usr/bin/python3 - "$M" "$T/out" "$T/t.txt" "$T/ad.npy" <<'PY' || bad "lora_reader.py disagrees"
import sys, numpy as np
sys.path.insert(0, "tools")
import lora_reader as R
base, ad, texts, npy = sys.argv[1:5]
vocab = {w: i for i, w in enumerate(open(base + "/vocab.txt", encoding="utf-8").read().split("\n"))}
rows = [[vocab["[CLS]"]] + [vocab[w] for w in line.split()] + [vocab["[SEP]"]] for line in open(texts).read().splitlines()]
T = max(map(len, rows))
ids = [r + [0] * (T - len(r)) for r in rows]
mask = [[1] * len(r) + [0] * (T - len(r)) for r in rows]
cfg, w, pooling, normalize = R.load_base(base)
n = R.merge_adapter(w, ad)
ref = R.embed(cfg, w, pooling, normalize, ids, mask).numpy()
got = np.load(npy)
err = float(np.abs(got - ref).max())
print("lora_reader.py (float64, %d adapted Linear layers) vs embedtune encode of the adapter folder: max abs err %.2e" % (n, err))
sys.exit(0 if err <= 1e-5 and n == 6 else 1)
PY
else
  echo "note: /usr/bin/python3 without torch: the independent reader check was not run"
fi

# resume: the LoRA settings are part of the check
"$E" train --model $M --train $P --out "$T/out" --epochs 2 --batch 16 --lr 2e-3 --max-len 48 --seed 3 --threads 2 \
  --lora 8 --lora-targets all --resume -q 2> "$T/err"; rc=$?
[ $rc != 0 ] && grep -q "lora_r=4, this run has lora_r=8" "$T/err" || bad "resume with another rank: rc $rc $(cat "$T/err")"
"$E" train --model $M --train $P --out "$T/o2" --lora-alpha 4 -q 2> "$T/err"; rc=$?
[ $rc = 2 ] && grep -q -- "--lora-alpha needs --lora R" "$T/err" || bad "--lora-alpha without --lora: rc $rc $(cat "$T/err")"
"$E" train --model $M --train $P --out "$T/o2" --lora-base x -q 2> "$T/err"; rc=$?
[ $rc = 2 ] && grep -q -- "--lora-base needs --lora R" "$T/err" || bad "--lora-base without --lora: rc $rc $(cat "$T/err")"
# --lora-base NAME: base_model_name_or_path as given (the page names its bundled model models/NAME); the folder then
# finds its base relative to the working directory
head -n 20 $P > "$T/p20.jsonl"
"$E" train --model $M --train "$T/p20.jsonl" --out "$T/o4" --epochs 1 --batch 16 --max-len 16 --threads 2 --lora 2 --lora-base $M -q 2> "$T/err" \
  || bad "train --lora-base: $(tail -c 400 "$T/err")"
grep -q "\"base_model_name_or_path\":[[:space:]]*\"$M\"" "$T/o4/adapter_config.json" || bad "--lora-base not written: $(cat "$T/o4/adapter_config.json")"
"$E" encode --model "$T/o4" --in "$T/t.txt" --out "$T/o4.npy" -q || bad "encode --model ADAPTER with a relative base"
"$E" train --model $M --train $P --out "$T/o3" --lora 4 --lora-targets q,x -q 2> "$T/err"; rc=$?
[ $rc = 2 ] && grep -q "unknown Linear layer 'x'" "$T/err" || bad "bad target: rc $rc $(cat "$T/err")"
# checkpointing changes the memory layout, not the result (the same bits with and without it)
for ck in "" --no-checkpoint; do
  "$E" train --model $M --train "$T/p20.jsonl" --out "$T/ck$ck" --epochs 1 --batch 8 --max-len 16 --threads 2 --lora 2 $ck -q \
    2> "$T/err" || bad "train --lora 2 $ck: $(tail -c 400 "$T/err")"
done
cmp -s "$T/ck/adapter_model.safetensors" "$T/ck--no-checkpoint/adapter_model.safetensors" \
  || bad "the adapter trained with checkpointing (the default) differs from --no-checkpoint's"
for ck in "" --checkpoint; do
  "$E" train --model $M --train "$T/p20.jsonl" --out "$T/f$ck" --epochs 1 --batch 8 --max-len 16 --threads 2 $ck -q \
    2> "$T/err" || bad "train $ck: $(tail -c 400 "$T/err")"
done
cmp -s "$T/f/model.safetensors" "$T/f--checkpoint/model.safetensors" || bad "full fine-tuning with --checkpoint differs"
"$E" train --model $M --train $P --out "$T/o5" --checkpoint --no-checkpoint -q 2> "$T/err"; rc=$?
[ $rc = 2 ] && grep -q "contradict" "$T/err" || bad "--checkpoint --no-checkpoint: rc $rc $(cat "$T/err")"
[ $fail = 0 ] && echo "ok cli_lora_train"
exit $fail
