#!/usr/bin/python3
"""Generate tests/fixtures/bert/tiny.bin: a small random BERT (plain torch, HF BertModel maths)
with a padded batch, last hidden state, pooled embeddings (mean and CLS, L2-normalized), the loss
L = sum(pooled * R) and every parameter gradient of L. Run with /usr/bin/python3 (Debian torch).

The reference is computed in float64 from float32-representable parameters, so it is the 'true'
value that the float32 C code is compared against.

Binary layout (little endian), llm.c style:
  int32 header[16]: magic 0x46425445 ('ETBF'), version 1, V, C, L, NH, I, P, TV, B, T,
                    n_params, n_variants, 0, 0, 0
  float32 eps
  float32 params[n_params]            (et_bert_tensor_table order)
  int32 ids[B*T], mask[B*T], type_ids[B*T]
  float32 R[B*C]
  float32 hidden_states[(L+1)*B*T*C]  (embeddings output, then each layer's output)
  per variant (0 = mean pooling, 1 = CLS pooling; both normalized):
    int32 pooling, int32 normalize
    float32 pooled[B*C], float32 loss, float32 grads[n_params]
"""
import math, os, struct, sys
import numpy as np
import torch

torch.manual_seed(1234)
V, C, L, NH, I, P, TV, B, T = 100, 64, 2, 4, 128, 32, 2, 3, 9
EPS = 1e-12
DT = torch.float64


def param(*shape, std=0.1, mean=0.0):
    t = (torch.randn(*shape, dtype=torch.float32) * std + mean)
    return t.to(DT).requires_grad_(True)


# parameters in et_bert_tensor_table order (names are HF's, without "bert.")
names, params = [], []
def add(name, t):
    names.append(name); params.append(t); return t

wte = add("embeddings.word_embeddings.weight", param(V, C, std=0.5))
wpe = add("embeddings.position_embeddings.weight", param(P, C, std=0.5))
wtt = add("embeddings.token_type_embeddings.weight", param(TV, C, std=0.5))
eln_w = add("embeddings.LayerNorm.weight", param(C, std=0.1, mean=1.0))
eln_b = add("embeddings.LayerNorm.bias", param(C, std=0.1))
layers = []
for l in range(L):
    p = {}
    pre = f"encoder.layer.{l}."
    for key, nm, shape, std, mean in [
        ("q_w", "attention.self.query.weight", (C, C), 0.15, 0), ("q_b", "attention.self.query.bias", (C,), 0.1, 0),
        ("k_w", "attention.self.key.weight", (C, C), 0.15, 0), ("k_b", "attention.self.key.bias", (C,), 0.1, 0),
        ("v_w", "attention.self.value.weight", (C, C), 0.15, 0), ("v_b", "attention.self.value.bias", (C,), 0.1, 0),
        ("ao_w", "attention.output.dense.weight", (C, C), 0.15, 0), ("ao_b", "attention.output.dense.bias", (C,), 0.1, 0),
        ("ln1_w", "attention.output.LayerNorm.weight", (C,), 0.1, 1), ("ln1_b", "attention.output.LayerNorm.bias", (C,), 0.1, 0),
        ("i_w", "intermediate.dense.weight", (I, C), 0.15, 0), ("i_b", "intermediate.dense.bias", (I,), 0.1, 0),
        ("o_w", "output.dense.weight", (C, I), 0.1, 0), ("o_b", "output.dense.bias", (C,), 0.1, 0),
        ("ln2_w", "output.LayerNorm.weight", (C,), 0.1, 1), ("ln2_b", "output.LayerNorm.bias", (C,), 0.1, 0)]:
        p[key] = add(pre + nm, param(*shape, std=std, mean=mean))
    layers.append(p)

lens = [9, 5, 2]
ids = torch.randint(1, V, (B, T), dtype=torch.int64)
mask = torch.zeros(B, T, dtype=torch.int64)
for b, n in enumerate(lens):
    mask[b, :n] = 1
ids[mask == 0] = 0  # [PAD]
type_ids = torch.zeros(B, T, dtype=torch.int64)
type_ids[1, 3:5] = 1  # second "sentence" in row 1
R = torch.randn(B, C, dtype=torch.float32).to(DT)

F = torch.nn.functional


def encoder():
    pos = torch.arange(T)
    x = wte[ids] + wpe[pos][None] + wtt[type_ids]
    x = F.layer_norm(x, (C,), eln_w, eln_b, EPS)
    hs = [x]
    ext = (1.0 - mask[:, None, None, :].to(DT)) * torch.finfo(torch.float32).min  # HF extended mask
    hd = C // NH
    for p in layers:
        def heads(t):
            return t.view(B, T, NH, hd).permute(0, 2, 1, 3)
        q = heads(F.linear(x, p["q_w"], p["q_b"]))
        k = heads(F.linear(x, p["k_w"], p["k_b"]))
        v = heads(F.linear(x, p["v_w"], p["v_b"]))
        s = q @ k.transpose(-1, -2) / math.sqrt(hd) + ext
        a = torch.softmax(s, dim=-1)
        y = (a @ v).permute(0, 2, 1, 3).reshape(B, T, C)
        h1 = F.layer_norm(F.linear(y, p["ao_w"], p["ao_b"]) + x, (C,), p["ln1_w"], p["ln1_b"], EPS)
        f = F.gelu(F.linear(h1, p["i_w"], p["i_b"]))  # exact erf GELU
        x = F.layer_norm(F.linear(f, p["o_w"], p["o_b"]) + h1, (C,), p["ln2_w"], p["ln2_b"], EPS)
        hs.append(x)
    return hs


def pool(h, mode):
    if mode == 1:
        return h[:, 0]
    m = mask[:, :, None].to(DT)
    return (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)


out = bytearray()
n_params = sum(p.numel() for p in params)
variants = [(0, 1), (1, 1)]
out += struct.pack("<16i", 0x46425445, 1, V, C, L, NH, I, P, TV, B, T, n_params, len(variants), 0, 0, 0)
out += struct.pack("<f", EPS)
f32 = lambda t: t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
i32 = lambda t: t.to(torch.int32).contiguous().numpy().astype("<i4").tobytes()
for p in params:
    out += f32(p)
out += i32(ids) + i32(mask) + i32(type_ids)
out += f32(R)
with torch.no_grad():
    hs = encoder()
for h in hs:
    out += f32(h)
for mode, norm in variants:
    for p in params:
        p.grad = None
    h = encoder()[-1]
    e = pool(h, mode)
    if norm:
        e = F.normalize(e, p=2, dim=1)
    loss = (e * R).sum()
    loss.backward()
    out += struct.pack("<ii", mode, norm)
    out += f32(e) + struct.pack("<f", float(loss))
    for p in params:
        out += f32(p.grad)
    print(f"variant pooling={mode} normalize={norm}: loss {float(loss):.6f}, "
          f"max|grad| {max(float(p.grad.abs().max()) for p in params):.4g}")

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "bert", "tiny.bin")
assert len(out) < 1 << 20, len(out)
with open(path, "wb") as fh:
    fh.write(out)
print(f"wrote {os.path.normpath(path)}: {len(out)} bytes, {n_params} params, {len(names)} tensors")
