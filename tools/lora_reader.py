#!/usr/bin/python3
"""lora_reader.py - an independent reader of PEFT LoRA adapters for BERT sentence encoders, in plain torch.

It does not use embedtune's code, PEFT or transformers (neither is installable offline): it reads the base model's
config.json and model.safetensors and the adapter's adapter_config.json and adapter_model.safetensors itself, merges
every adapted Linear weight as PEFT's merge_and_unload does,

    W' = W + (lora_alpha / r) * B @ A        (use_rslora: lora_alpha / sqrt(r))

and runs HF BertModel's forward (post-LayerNorm encoder, erf GELU, additive -inf attention mask) in float64, then
sentence-transformers' mean or CLS pooling and Normalize as the folder's modules.json says.

    /usr/bin/python3 tools/lora_reader.py --base DIR [--adapter DIR] --ids 2,45,9,3 [--ids ...]
prints one embedding per --ids list (token ids with [CLS]/[SEP] already in place). tools/gen_lora_fixture.py uses
its functions to make tests/fixtures/lora.
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch

DT = torch.float64


def read_safetensors(path):
    """name -> float64 tensor (F32, F16, BF16)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    data = raw[8 + hlen:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        b, e = meta["data_offsets"]
        buf = data[b:e]
        dt = meta["dtype"]
        if dt == "F32":
            a = np.frombuffer(buf, dtype="<f4").astype(np.float64)
        elif dt == "F16":
            a = np.frombuffer(buf, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        else:
            raise ValueError("%s: dtype %s" % (name, dt))
        out[name] = torch.tensor(a.reshape(meta["shape"]), dtype=DT)
    return out


def write_safetensors(path, tensors):
    """name -> float32 numpy array, written as F32 (names sorted, as embedtune and the safetensors library do)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load_base(base):
    cfg = json.load(open(os.path.join(base, "config.json")))
    w = read_safetensors(os.path.join(base, "model.safetensors"))
    w = {(k[5:] if k.startswith("bert.") else k): v for k, v in w.items()}
    pooling, normalize = "mean", False
    mpath = os.path.join(base, "modules.json")
    if os.path.exists(mpath):
        for m in json.load(open(mpath)):
            if m["type"].endswith("Pooling"):
                pc = json.load(open(os.path.join(base, m["path"], "config.json")))
                pooling = "cls" if pc.get("pooling_mode_cls_token") else "mean"
            if m["type"].endswith("Normalize"):
                normalize = True
    return cfg, w, pooling, normalize


def merge_adapter(w, adapter):
    """W += scale * B @ A for every lora_A / lora_B pair of the adapter (PEFT key names)."""
    ac = json.load(open(os.path.join(adapter, "adapter_config.json")))
    assert ac["peft_type"] == "LORA"
    r, alpha = ac["r"], ac["lora_alpha"]
    scale = alpha / math.sqrt(r) if ac.get("use_rslora") else alpha / r
    t = read_safetensors(os.path.join(adapter, "adapter_model.safetensors"))
    n = 0
    for k, A in t.items():
        if not k.endswith(".lora_A.weight"):
            continue
        B = t[k[: -len(".lora_A.weight")] + ".lora_B.weight"]
        mod = k[len("base_model.model."):-len(".lora_A.weight")]
        for p in ("bert.", "roberta."):
            if mod.startswith(p):
                mod = mod[len(p):]
        w[mod + ".weight"] = w[mod + ".weight"] + scale * (B @ A)
        n += 1
    return n


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * g + b


def embed(cfg, w, pooling, normalize, ids, mask):
    """ids, mask: [B, T] int lists -> [B, C] float64 embeddings (HF BertModel + sentence-transformers pooling)."""
    ids = torch.tensor(ids)
    mask = torch.tensor(mask, dtype=DT)
    Bn, T = ids.shape
    C, NH, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    D = C // NH
    lin = lambda x, name: x @ w[name + ".weight"].t() + w[name + ".bias"]
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:T][None] + \
        w["embeddings.token_type_embeddings.weight"][0][None, None]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    neg = (1.0 - mask)[:, None, None, :] * -1e30
    for l in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % l
        heads = lambda y: y.view(Bn, T, NH, D).transpose(1, 2)
        q, k, v = (heads(lin(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + neg, -1)
        ctx = (att @ v).transpose(1, 2).reshape(Bn, T, C)
        h1 = layer_norm(x + lin(ctx, p + "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"], eps)
        f = lin(h1, p + "intermediate.dense")
        f = 0.5 * f * (1 + torch.erf(f / math.sqrt(2)))
        x = layer_norm(h1 + lin(f, p + "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    if pooling == "cls":
        e = x[:, 0]
    else:
        e = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
    if normalize:
        e = e / e.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return e


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--adapter")
    ap.add_argument("--ids", action="append", required=True, help="comma-separated token ids of one text")
    a = ap.parse_args()
    cfg, w, pooling, normalize = load_base(a.base)
    if a.adapter:
        merge_adapter(w, a.adapter)
    rows = [[int(t) for t in s.split(",")] for s in a.ids]
    T = max(len(r) for r in rows)
    ids = [r + [0] * (T - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (T - len(r)) for r in rows]
    for e in embed(cfg, w, pooling, normalize, ids, mask):
        print(" ".join("%.9g" % v for v in e.tolist()))


if __name__ == "__main__":
    main()
