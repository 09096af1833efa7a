#!/usr/bin/python3
"""index_probe_table.py - how `search --index`'s same-model check (src/index.h: the probe text's embedding, cosine
>= ET_INDEX_PROBE_MIN_COS) treats LoRA adapters of growing strength, and what a stale index costs.

  /usr/bin/python3 tools/index_probe_table.py [--embedtune build/embedtune] [--model models/compact]
                                              [--data /work/shared/eval-data/cranfield] [--scales 0.001,0.003,...]

For each scale s it writes a PEFT LoRA adapter on --model (r 8, lora_alpha 8, every encoder Linear layer,
A ~ N(0, 1/in), B ~ N(0, s^2), numpy seed 0) and measures, with the CLI's `encode`:
  probe cos   cosine of the base's and the adapted model's embeddings of the probe text (the check's number)
  query cos   mean cosine of base vs adapted embeddings of the held-out queries (docs/data-formats.md split)
  top-10      mean overlap of each held-out query's top 10 (adapted query embedding, cosine) over the corpus encoded
              by the BASE model (an index not rebuilt) with its top 10 over the corpus encoded by the adapted
              model (a rebuilt index): what searching a stale index gives
  check       what `search --index` does with an index built by the base: accepted or refused
Texts are the corpus rows' "text" field (no title), so this is an agreement measure, not a quality figure.
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITES = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
         "intermediate.dense", "output.dense"]


def probe_text():
    with open(os.path.join(ROOT, "src", "index.h")) as f:
        for line in f:
            if line.startswith("#define ET_INDEX_PROBE "):
                return json.loads(line.split(" ", 2)[2].strip())
    raise SystemExit("no ET_INDEX_PROBE in src/index.h")


def min_cos():
    with open(os.path.join(ROOT, "src", "index.h")) as f:
        for line in f:
            if line.startswith("#define ET_INDEX_PROBE_MIN_COS"):
                return float(line.split()[2])
    raise SystemExit("no ET_INDEX_PROBE_MIN_COS in src/index.h")


def held_out(key):
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[0:8], 16) % 100 >= 80


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_adapter(folder, model, cfg, scale, r=8):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    C, I = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {"attention.self.query": (C, C), "attention.self.key": (C, C), "attention.self.value": (C, C),
              "attention.output.dense": (C, C), "intermediate.dense": (I, C), "output.dense": (C, I)}
    t = {}
    for layer in range(cfg["num_hidden_layers"]):
        for site in SITES:
            out_f, in_f = shapes[site]
            p = f"base_model.model.encoder.layer.{layer}.{site}"
            t[p + ".lora_A.weight"] = rng.normal(0, 1 / np.sqrt(in_f), (r, in_f))
            t[p + ".lora_B.weight"] = rng.normal(0, scale, (out_f, r))
    write_safetensors(os.path.join(folder, "adapter_model.safetensors"), t)
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "FEATURE_EXTRACTION", "r": r, "lora_alpha": r, "lora_dropout": 0.0,
                   "bias": "none", "target_modules": ["query", "key", "value", "dense"],
                   "base_model_name_or_path": os.path.abspath(model), "fan_in_fan_out": False, "use_rslora": False}, f)


def encode(et, model, infile, out, extra=()):
    subprocess.run([et, "encode", "--model", model, "--in", infile, "--out", out, "-q", *extra], check=True)
    return np.load(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedtune", default=os.path.join(ROOT, "build", "embedtune"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "compact"))
    ap.add_argument("--data", default="/work/shared/eval-data/cranfield")
    ap.add_argument("--scales", default="0.001,0.003,0.01,0.015,0.02,0.03,0.1")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    thr = min_cos()
    with tempfile.TemporaryDirectory() as T:
        with open(os.path.join(T, "probe.txt"), "w") as f:
            f.write(probe_text() + "\n")
        with open(os.path.join(T, "corpus.jsonl"), "w") as f:
            for line in open(os.path.join(a.data, "corpus.jsonl")):
                f.write(json.dumps({"text": json.loads(line)["text"].replace("\n", " ")}) + "\n")
        nq = 0
        with open(os.path.join(T, "q.jsonl"), "w") as f:
            for line in open(os.path.join(a.data, "queries.jsonl")):
                q = json.loads(line)
                if held_out(q["_id"]):
                    f.write(json.dumps({"text": q["text"]}) + "\n")
                    nq += 1
        p0 = encode(a.embedtune, a.model, os.path.join(T, "probe.txt"), os.path.join(T, "p0.npy"))[0]
        d0 = encode(a.embedtune, a.model, os.path.join(T, "corpus.jsonl"), os.path.join(T, "d0.npy"))
        q0 = encode(a.embedtune, a.model, os.path.join(T, "q.jsonl"), os.path.join(T, "q0.npy"))
        # the check itself, through the CLI: an index built by the base model
        subprocess.run([a.embedtune, "index", "--model", a.model, "--corpus", os.path.join(a.data, "corpus.jsonl"),
                        "--out", os.path.join(T, "base.etix"), "-q"], check=True)
        print(f"model {a.model}, corpus {a.data} ({len(d0)} docs, {nq} held-out queries), check threshold {thr}")
        print("| B scale | probe cos | query cos (mean) | top-10 overlap, stale vs rebuilt index | search --index (base index) |")
        print("|---|---|---|---|---|")
        cos = lambda x, y: float(np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y))
        for s in [float(x) for x in a.scales.split(",")]:
            ad = os.path.join(T, f"ad{s}")
            write_adapter(ad, a.model, cfg, s)
            p1 = encode(a.embedtune, ad, os.path.join(T, "probe.txt"), os.path.join(T, "p1.npy"))[0]
            d1 = encode(a.embedtune, ad, os.path.join(T, "corpus.jsonl"), os.path.join(T, "d1.npy"))
            q1 = encode(a.embedtune, ad, os.path.join(T, "q.jsonl"), os.path.join(T, "q1.npy"))
            qc = np.mean([cos(x, y) for x, y in zip(q0, q1)])
            stale = np.argsort(-(q1 @ d0.T), axis=1)[:, :10]
            fresh = np.argsort(-(q1 @ d1.T), axis=1)[:, :10]
            ov = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(stale, fresh)])
            r = subprocess.run([a.embedtune, "search", "--model", ad, "--index", os.path.join(T, "base.etix"),
                                "--query", "x", "--mode", "dense", "-q"], capture_output=True, text=True)
            verdict = "accepted" if r.returncode == 0 else "refused"
            print(f"| {s:g} | {cos(p0, p1):.6f} | {qc:.6f} | {100 * ov:.1f} % | {verdict} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
