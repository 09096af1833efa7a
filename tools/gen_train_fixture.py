#!/usr/bin/python3
"""gen_train_fixture.py - PyTorch reference for tests/test_train.c: whole training steps of a small random
BERT (plain torch, HF BertModel maths, mean pooling + L2 normalise, dropout off) for every trainer loss.

Run with Debian's torch:  /usr/bin/python3 tools/gen_train_fixture.py   -> tests/fixtures/train/steps.bin

Per case (infonce with hard negatives, mse, soft1, soft2, soft3, clp, and infonce with frozen tensors):
3 optimizer steps, each = 2 micro-batches (gradient accumulation 2: each micro loss scaled by 1/2 before
backward) -> torch.nn.utils.clip_grad_norm_ -> torch.optim.AdamW (sentence-transformers groups: no decay for
names containing "bias" / "LayerNorm.weight") -> LambdaLR with transformers' linear warm-up lambda.
Stored: every micro-batch loss, the step-0 accumulated gradient of every parameter, each step's gradient norm
and lr, the parameters after the 3 steps. Everything is computed in float64 from float32-representable
parameters (the 'true' values the float32 C code is compared against).

The loss formulas are the reference ones of tools/gen_loss_fixture.py (imported: MNRL, CosineSimilarityLoss,
soft targets, the CLP authors' loss); the encoder is the same maths as tools/gen_bert_fixture.py (which runs
on import, so its model code is restated here as functions).

AdamW eps is 1e-6 here, not the default 1e-8: the attention key bias has a mathematically zero gradient
(softmax is shift invariant), which float32 computes as ~1e-9 noise; with eps = 1e-8 Adam turns that noise into
updates of ~lr/10 that no float32 implementation (torch's included) can reproduce. eps = 1e-6 keeps the test
about the trainer rather than about amplified rounding noise.

Binary layout (little endian):
  int32 hdr[20]: magic 0x46545445 ('ETTF'), version 1, V, C, L, NH, I, P, TV, n_params, B, G, Tq, Td,
                 n_micro, n_steps, K, n_cases, 0, 0
  float64 hp[8]: lr, weight_decay, adam_eps, max_grad_norm, tau, lambda, alpha, warmup   (total = n_steps+1)
  float32 params0[n_params]                      (et_bert_tensor_table order)
  per micro-batch: int32 q_ids[B*Tq], q_mask[B*Tq], p_ids[B*Td], p_mask[B*Td], n_ids[B*G*Td], n_mask[B*G*Td],
                   nq_ids[B*G*Tq], nq_mask[B*G*Tq], nq_avail[B*G]; float32 labels[B], scores[B*K]
  per case: int32 loss (0 infonce 1 mse 2 soft1 3 soft2 4 soft3 5 clp), soft_norm (0 none 1 minmax 2 rank),
            freeze (0 none, 1 "embeddings.,encoder.layer.0.attention."), 0
            float64 targets[n_micro*B], losses[n_steps*n_micro], norms[n_steps], lrs[n_steps]
            float32 grads0[n_params], params_after[n_params]

--bf16 (-> tests/fixtures/train/steps_bf16.bin, the same layout, cases infonce and clp): the same steps with
the arithmetic of embedtune's --precision bf16 (src/kernels/kernels.h, "bf16 mixed precision"): every Linear layer's
GEMM operands are rounded to bfloat16 (round to nearest even) in forward AND backward (y = r(x) r(W)^T + b,
dx = r(dy) r(W), dW = r(dy)^T r(x), db = sum dy), everything else (attention, LayerNorm, GELU, softmax, loss,
AdamW, the sums themselves) in float64. So the C trainer in bf16 must match it to float32 rounding, and the
difference between this fixture and steps.bin is what bf16 operands cost (test_train.c states both bounds).
"""
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_loss_fixture import clp as ref_clp, cos_mse, mnrl, soft_targets  # noqa: E402

torch.manual_seed(4321)
V, C, L, NH, I, P, TV = 64, 32, 2, 4, 64, 24, 2
B, G, TQ, TD, NMICRO, NSTEPS, K = 3, 2, 6, 9, 2, 3, 3
EPS_LN = 1e-12
DT = torch.float64
LR, WD, ADAM_EPS, MAX_NORM, TAU, LAM, ALPHA, WARMUP = 2e-3, 0.01, 1e-6, 1.0, 0.05, 0.1, 0.5, 1
TOTAL = NSTEPS + 1
FREEZE = ["embeddings.", "encoder.layer.0.attention."]

# ---------------- parameters (et_bert_tensor_table order, HF names without "bert.") ----------------
names, init = [], []


def add(name, *shape, std=0.1, mean=0.0):
    names.append(name)
    init.append((torch.randn(*shape, dtype=torch.float32) * std + mean).to(DT))


add("embeddings.word_embeddings.weight", V, C, std=0.5)
add("embeddings.position_embeddings.weight", P, C, std=0.5)
add("embeddings.token_type_embeddings.weight", TV, C, std=0.5)
add("embeddings.LayerNorm.weight", C, mean=1.0)
add("embeddings.LayerNorm.bias", C)
LAYER_KEYS = [("q_w", "attention.self.query.weight", (C, C), 0.15, 0), ("q_b", "attention.self.query.bias", (C,), 0.1, 0),
              ("k_w", "attention.self.key.weight", (C, C), 0.15, 0), ("k_b", "attention.self.key.bias", (C,), 0.1, 0),
              ("v_w", "attention.self.value.weight", (C, C), 0.15, 0), ("v_b", "attention.self.value.bias", (C,), 0.1, 0),
              ("ao_w", "attention.output.dense.weight", (C, C), 0.15, 0), ("ao_b", "attention.output.dense.bias", (C,), 0.1, 0),
              ("ln1_w", "attention.output.LayerNorm.weight", (C,), 0.1, 1), ("ln1_b", "attention.output.LayerNorm.bias", (C,), 0.1, 0),
              ("i_w", "intermediate.dense.weight", (I, C), 0.15, 0), ("i_b", "intermediate.dense.bias", (I,), 0.1, 0),
              ("o_w", "output.dense.weight", (C, I), 0.1, 0), ("o_b", "output.dense.bias", (C,), 0.1, 0),
              ("ln2_w", "output.LayerNorm.weight", (C,), 0.1, 1), ("ln2_b", "output.LayerNorm.bias", (C,), 0.1, 0)]
for l in range(L):
    for key, nm, shape, std, mean in LAYER_KEYS:
        add(f"encoder.layer.{l}.{nm}", *shape, std=std, mean=mean)


BF16 = "--bf16" in sys.argv[1:]


def rb(x):
    """x rounded to bfloat16 (float64 -> float32 -> bfloat16, each round to nearest even), back in float64"""
    return x.to(torch.float32).to(torch.bfloat16).to(DT)


class _LinearBF16(torch.autograd.Function):
    """F.linear with bf16 GEMM operands in forward and backward (embedtune's et_linear_*_bf16)"""

    @staticmethod
    def forward(ctx, x, w, b):
        xr, wr = rb(x), rb(w)
        ctx.save_for_backward(xr, wr)
        return xr @ wr.transpose(0, 1) + b

    @staticmethod
    def backward(ctx, g):
        xr, wr = ctx.saved_tensors
        gr = rb(g)
        x2, g2 = xr.reshape(-1, xr.shape[-1]), gr.reshape(-1, gr.shape[-1])
        return gr @ wr, g2.transpose(0, 1) @ x2, g.reshape(-1, g.shape[-1]).sum(0)


def linear(x, w, b):
    return _LinearBF16.apply(x, w, b) if BF16 else F.linear(x, w, b)


def encode(ps, ids, mask):
    """BertModel (eval maths) -> mean pooling -> F.normalize. ps: list in `names` order."""
    n, T = ids.shape
    wte, wpe, wtt, eln_w, eln_b = ps[:5]
    x = wte[ids] + wpe[torch.arange(T)][None] + wtt[torch.zeros_like(ids)]
    x = F.layer_norm(x, (C,), eln_w, eln_b, EPS_LN)
    ext = (1.0 - mask[:, None, None, :].to(DT)) * torch.finfo(torch.float32).min
    hd = C // NH
    for l in range(L):
        p = dict(zip([k[0] for k in LAYER_KEYS], ps[5 + 16 * l: 5 + 16 * (l + 1)]))
        heads = lambda t: t.view(n, T, NH, hd).permute(0, 2, 1, 3)
        q, k, v = (heads(linear(x, p[a + "_w"], p[a + "_b"])) for a in ("q", "k", "v"))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + ext, dim=-1)
        y = (a @ v).permute(0, 2, 1, 3).reshape(n, T, C)
        h1 = F.layer_norm(linear(y, p["ao_w"], p["ao_b"]) + x, (C,), p["ln1_w"], p["ln1_b"], EPS_LN)
        f = F.gelu(linear(h1, p["i_w"], p["i_b"]))
        x = F.layer_norm(linear(f, p["o_w"], p["o_b"]) + h1, (C,), p["ln2_w"], p["ln2_b"], EPS_LN)
    m = mask[:, :, None].to(DT)
    e = (x * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
    return F.normalize(e, p=2, dim=1)


# ---------------- data: 2 micro-batches of token ids (no tokenizer needed) ----------------
def tok(n, T, lo):
    ids = torch.randint(5, V, (n, T), dtype=torch.int64)
    mask = torch.zeros(n, T, dtype=torch.int64)
    lens = torch.randint(lo, T + 1, (n,))
    lens[0] = T  # the longest row fills T
    for r in range(n):
        mask[r, :lens[r]] = 1
        ids[r, 0] = 2  # [CLS]
        ids[r, lens[r] - 1] = 3  # [SEP]
    ids[mask == 0] = 0
    return ids, mask


micro = []
rng = np.random.default_rng(7)
for mb in range(NMICRO):
    d = {}
    d["q"] = tok(B, TQ, 3)
    d["p"] = tok(B, TD, 4)
    d["n"] = tok(B * G, TD, 4)
    d["nq"] = tok(B * G, TQ, 3)
    avail = np.ones(B * G, dtype=np.int64)
    if mb == 0:
        avail[1] = 0              # query 0's second negative has no query
    else:
        avail[2 * G:3 * G] = 0    # query 2 has none: plain CE for it
    d["avail"] = avail
    d["labels"] = np.asarray([1, 0, 1] if mb == 0 else [0, 1, 0], dtype=np.float32)
    S = rng.uniform(-0.1, 0.9, (B, K)).astype(np.float32)
    d["scores"] = S
    micro.append(d)

labels_all = np.concatenate([d["labels"] for d in micro])
scores_all = np.concatenate([d["scores"] for d in micro])


def micro_loss(case, ps, d, targets):
    loss, norm = case[0], case[1]
    Q = encode(ps, *d["q"])
    Pp = encode(ps, *d["p"])
    if loss == 0:
        return mnrl(Q, Pp, encode(ps, *d["n"]), TAU)
    if loss == 5:
        return ref_clp(Q, Pp, encode(ps, *d["n"]), encode(ps, *d["nq"]), d["avail"], G, TAU, LAM, "mean", 1)
    return cos_mse(Q, Pp, targets)


def lr_lambda(step):  # transformers.get_linear_schedule_with_warmup
    if step < WARMUP:
        return float(step) / float(max(1, WARMUP))
    return max(0.0, float(TOTAL - step) / float(max(1, TOTAL - WARMUP)))


def no_decay(name):  # sentence-transformers fit()
    return any(nd in name for nd in ["bias", "LayerNorm.bias", "LayerNorm.weight"])


def run_case(case):
    loss_id, norm_id, freeze = case
    frozen = [freeze and any(n.startswith(f) for f in FREEZE) for n in names]
    ps = [t.clone().requires_grad_(not fr) for t, fr in zip(init, frozen)]
    if loss_id in (1, 2, 3, 4):
        rule = ["hard", "soft1", "soft2", "soft3"][loss_id - 1]
        yh = soft_targets(rule, ["none", "minmax", "rank"][norm_id], labels_all, scores_all, ALPHA)
        yh = yh.astype(np.float32).astype(np.float64)  # the C side holds float targets
    else:
        yh = np.zeros(NMICRO * B)
    groups = [{"params": [p for p, n, fr in zip(ps, names, frozen) if not fr and not no_decay(n)], "weight_decay": WD},
              {"params": [p for p, n, fr in zip(ps, names, frozen) if not fr and no_decay(n)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.999), eps=ADAM_EPS)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    train = [p for p, fr in zip(ps, frozen) if not fr]
    losses, norms, lrs, grads0 = [], [], [], None
    for step in range(NSTEPS):
        for mb in range(NMICRO):
            Lm = micro_loss(case, ps, micro[mb], yh[mb * B:(mb + 1) * B])
            losses.append(Lm.item())
            (Lm / NMICRO).backward()
        if step == 0:
            grads0 = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in ps]
        lrs.append(opt.param_groups[0]["lr"])
        norms.append(torch.nn.utils.clip_grad_norm_(train, MAX_NORM).item())
        opt.step()
        sched.step()
        opt.zero_grad()
    return yh, losses, norms, lrs, grads0, [p.detach() for p in ps]


CASES = [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 1, 0), (4, 2, 0), (5, 0, 0), (0, 0, 1)]
if BF16:
    CASES = [(0, 0, 0), (5, 0, 0)]
n_params = sum(t.numel() for t in init)
out = bytearray()
out += struct.pack("<20i", 0x46545445, 1, V, C, L, NH, I, P, TV, n_params, B, G, TQ, TD, NMICRO, NSTEPS, K, len(CASES), 0, 0)
out += struct.pack("<8d", LR, WD, ADAM_EPS, MAX_NORM, TAU, LAM, ALPHA, WARMUP)
f32 = lambda t: np.ascontiguousarray(np.asarray(t.detach() if torch.is_tensor(t) else t, dtype="<f4")).tobytes()
i32 = lambda t: np.ascontiguousarray(np.asarray(t, dtype="<i4")).tobytes()
f64 = lambda a: np.ascontiguousarray(np.asarray(a, dtype="<f8")).tobytes()
for t in init:
    out += f32(t)
for d in micro:
    for k in ("q", "p", "n", "nq"):
        out += i32(d[k][0]) + i32(d[k][1])
    out += i32(d["avail"]) + f32(d["labels"]) + f32(d["scores"])
for case in CASES:
    yh, losses, norms, lrs, grads0, after = run_case(case)
    out += struct.pack("<4i", case[0], case[1], case[2], 0)
    out += f64(yh) + f64(losses) + f64(norms) + f64(lrs)
    for g in grads0:
        out += f32(g)
    for p in after:
        out += f32(p)
    print("case loss=%d norm=%d freeze=%d: losses %s  norms %s" % (case + (["%.5f" % x for x in losses],
                                                                        ["%.4f" % x for x in norms])))
path = os.path.join(HERE, "..", "tests", "fixtures", "train", "steps_bf16.bin" if BF16 else "steps.bin")
os.makedirs(os.path.dirname(path), exist_ok=True)
assert len(out) < 1_500_000, len(out)
with open(path, "wb") as fh:
    fh.write(out)
print(f"wrote {os.path.normpath(path)}: {len(out)} bytes, {n_params} params")
