#!/usr/bin/python3
"""Generate tests/fixtures/moe/tiny_moe.bin: a small random BERT whose FFN up-projection is a
mixture of experts in BOTH layers (the CLP paper's MoeLayer, top-1), a padded batch, the pooled
output (mean pooling, L2-normalized), the loss L = sum(pooled * R) + aux and every parameter gradient
(experts and routers included). Plain torch, float64 maths on float32-representable parameters.
Run with /usr/bin/python3 (Debian torch).

Variants:
  0: moe_gate_scale = 1 (Switch: h = p * Expert(x)), aux weight 0.05 (Switch balance loss)
  1: moe_gate_scale = 0 (the authors' code: h = Expert(x); the router gets no gradient), aux 0

The balance loss per MoE layer is E * sum_e f_e * P_e over the REAL tokens (mask 1): f_e = fraction
of real tokens whose top-1 is e (no gradient), P_e = mean router probability of e over real tokens.
Every position (padding too) is routed and computed, as in the authors' code.

Routing is discrete, so the generator insists that in every layer and token the top-1 logit beats
the runner-up by a clear margin (float32 rounding cannot flip a choice) and that every expert
receives real tokens; it tries seeds until that holds.

Binary layout (little endian):
  int32 header[16]: magic 0x464d5445 ('ETMF'), version 1, V, C, L, NH, I, P, TV, B, T, E,
                    n_params, n_variants, 0, 0
  float32 eps
  float32 params[n_params]             (et_bert_tensor_table order with MoE in every layer)
  int32 ids[B*T], mask[B*T], type_ids[B*T]
  float32 R[B*C]
  per variant:
    int32 gate_scale, float32 aux_weight
    float32 pooled[B*C], float32 loss, float32 aux (alpha * sum of layers' aux)
    int32 counts[L*E]                  (real tokens per expert, per layer)
    float32 grads[n_params]
"""
import math, os, struct
import torch

V, C, L, NH, I, P, TV, B, T, E = 60, 32, 2, 4, 64, 16, 2, 3, 8, 3
EPS = 1e-12
DT = torch.float64
F = torch.nn.functional
MIN_MARGIN = 2e-3


def build(seed):
    torch.manual_seed(seed)

    def param(*shape, std=0.1, mean=0.0):
        return (torch.randn(*shape, dtype=torch.float32) * std + mean).to(DT)

    names, params = [], []

    def add(name, t):
        t = t.clone().requires_grad_(True)
        names.append(name)
        params.append(t)
        return t

    g = {}
    g["wte"] = add("embeddings.word_embeddings.weight", param(V, C, std=0.5))
    g["wpe"] = add("embeddings.position_embeddings.weight", param(P, C, std=0.5))
    g["wtt"] = add("embeddings.token_type_embeddings.weight", param(TV, C, std=0.5))
    g["eln_w"] = add("embeddings.LayerNorm.weight", param(C, std=0.1, mean=1.0))
    g["eln_b"] = add("embeddings.LayerNorm.bias", param(C, std=0.1))
    layers = []
    for l in range(L):
        p, pre = {}, f"encoder.layer.{l}."
        for key, nm, shape, std, mean in [
                ("q_w", "attention.self.query.weight", (C, C), 0.15, 0), ("q_b", "attention.self.query.bias", (C,), 0.1, 0),
                ("k_w", "attention.self.key.weight", (C, C), 0.15, 0), ("k_b", "attention.self.key.bias", (C,), 0.1, 0),
                ("v_w", "attention.self.value.weight", (C, C), 0.15, 0), ("v_b", "attention.self.value.bias", (C,), 0.1, 0),
                ("ao_w", "attention.output.dense.weight", (C, C), 0.15, 0), ("ao_b", "attention.output.dense.bias", (C,), 0.1, 0),
                ("ln1_w", "attention.output.LayerNorm.weight", (C,), 0.1, 1), ("ln1_b", "attention.output.LayerNorm.bias", (C,), 0.1, 0)]:
            p[key] = add(pre + nm, param(*shape, std=std, mean=mean))
        # MoE: router, then E expert weights, then E expert biases (et_bert_tensor_table order);
        # experts start from one "pretrained" intermediate.dense and are perturbed so routing matters
        i_w, i_b = param(I, C, std=0.15), param(I, std=0.1)
        p["gate"] = add(pre + "intermediate.dense.gate.weight", param(E, C, std=0.4))
        p["ew"] = [add(pre + f"intermediate.dense.experts.{j}.weight",
                       (i_w.float() + 0.08 * torch.randn(I, C)).to(DT)) for j in range(E)]
        p["eb"] = [add(pre + f"intermediate.dense.experts.{j}.bias",
                       (i_b.float() + 0.08 * torch.randn(I)).to(DT)) for j in range(E)]
        for key, nm, shape, std, mean in [
                ("o_w", "output.dense.weight", (C, I), 0.1, 0), ("o_b", "output.dense.bias", (C,), 0.1, 0),
                ("ln2_w", "output.LayerNorm.weight", (C,), 0.1, 1), ("ln2_b", "output.LayerNorm.bias", (C,), 0.1, 0)]:
            p[key] = add(pre + nm, param(*shape, std=std, mean=mean))
        layers.append(p)
    lens = [8, 5, 2]
    ids = torch.randint(1, V, (B, T), dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(lens):
        mask[b, :n] = 1
    ids[mask == 0] = 0
    type_ids = torch.zeros(B, T, dtype=torch.int64)
    type_ids[1, 3:5] = 1
    R = torch.randn(B, C, dtype=torch.float32).to(DT)
    return names, params, g, layers, ids, mask, type_ids, R


def forward(g, layers, ids, mask, type_ids, gate_scale, alpha, stats=None):
    x = g["wte"][ids] + g["wpe"][torch.arange(T)][None] + g["wtt"][type_ids]
    x = F.layer_norm(x, (C,), g["eln_w"], g["eln_b"], EPS)
    ext = (1.0 - mask[:, None, None, :].to(DT)) * torch.finfo(torch.float32).min
    hd = C // NH
    m = mask.to(DT)
    nreal = m.sum()
    aux_total = torch.zeros((), dtype=DT)
    for p in layers:
        def heads(t):
            return t.view(B, T, NH, hd).permute(0, 2, 1, 3)
        q, k, v = (heads(F.linear(x, p[a + "_w"], p[a + "_b"])) for a in "qkv")
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + ext, dim=-1)
        y = (a @ v).permute(0, 2, 1, 3).reshape(B, T, C)
        h1 = F.layer_norm(F.linear(y, p["ao_w"], p["ao_b"]) + x, (C,), p["ln1_w"], p["ln1_b"], EPS)
        # the MoE up-projection (every position routed, padding included)
        logits = F.linear(h1, p["gate"])                      # [B,T,E]
        probs = torch.softmax(logits, dim=-1)
        idx = logits.argmax(dim=-1)                           # top-1
        ys = torch.stack([F.linear(h1, p["ew"][j], p["eb"][j]) for j in range(E)], dim=2)  # [B,T,E,I]
        h = ys.gather(2, idx[:, :, None, None].expand(B, T, 1, I))[:, :, 0]
        if gate_scale:
            h = h * probs.gather(2, idx[:, :, None])
        counts = torch.stack([((idx == e) & (mask == 1)).sum() for e in range(E)])
        f = counts.to(DT) / nreal                              # constant
        Pm = (probs * m[:, :, None]).sum((0, 1)) / nreal
        aux_total = aux_total + E * (f * Pm).sum()
        if stats is not None:
            top2 = logits.detach().topk(2, dim=-1).values
            stats.append(((top2[..., 0] - top2[..., 1]).min().item(), counts.tolist()))
        x = F.layer_norm(F.linear(F.gelu(h), p["o_w"], p["o_b"]) + h1, (C,), p["ln2_w"], p["ln2_b"], EPS)
    pooled = (x * m[:, :, None]).sum(1) / torch.clamp(m.sum(1, keepdim=True), min=1e-9)
    return F.normalize(pooled, p=2, dim=1), alpha * aux_total


seed = 4321
while True:
    names, params, g, layers, ids, mask, type_ids, R = build(seed)
    stats = []
    with torch.no_grad():  # routing of layer 2 depends on the gate scaling of layer 1: check both
        forward(g, layers, ids, mask, type_ids, 1, 0.0, stats)
        forward(g, layers, ids, mask, type_ids, 0, 0.0, stats)
    margin = min(s[0] for s in stats)
    if margin >= MIN_MARGIN and all(min(s[1]) >= 2 for s in stats):
        break
    seed += 1
print(f"seed {seed}: min top-1 logit margin {margin:.4g} (>= {MIN_MARGIN}), real tokens per expert per layer "
      f"{[s[1] for s in stats]}")

out = bytearray()
n_params = sum(p.numel() for p in params)
variants = [(1, 0.05), (0, 0.0)]
out += struct.pack("<16i", 0x464D5445, 1, V, C, L, NH, I, P, TV, B, T, E, n_params, len(variants), 0, 0)
out += struct.pack("<f", EPS)
f32 = lambda t: t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
i32 = lambda t: t.to(torch.int32).contiguous().numpy().astype("<i4").tobytes()
for p in params:
    out += f32(p)
out += i32(ids) + i32(mask) + i32(type_ids)
out += f32(R)
for scale, alpha in variants:
    for p in params:
        p.grad = None
    stats = []
    e, aux = forward(g, layers, ids, mask, type_ids, scale, alpha, stats)
    loss = (e * R).sum() + aux
    loss.backward()
    out += struct.pack("<if", scale, alpha)
    out += f32(e) + struct.pack("<ff", float(loss), float(aux))
    out += struct.pack(f"<{L * E}i", *[c for s in stats for c in s[1]])
    for p in params:
        out += f32(p.grad)
    assert min(s[0] for s in stats) >= MIN_MARGIN
    gate_g = max(float(l["gate"].grad.abs().max()) for l in layers)
    print(f"variant gate_scale={scale} aux={alpha}: loss {float(loss):.6f} (aux {float(aux):.6f}), "
          f"max|router grad| {gate_g:.4g}, max|grad| {max(float(p.grad.abs().max()) for p in params):.4g}")
    if not scale and alpha == 0:
        assert gate_g == 0.0  # the authors' routing: no gradient reaches the router

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "moe", "tiny_moe.bin")
os.makedirs(os.path.dirname(path), exist_ok=True)
assert len(out) < 1 << 20, len(out)
with open(path, "wb") as fh:
    fh.write(out)
print(f"wrote {os.path.normpath(path)}: {len(out)} bytes, {n_params} params, {len(names)} tensors")
