#!/usr/bin/python3
"""torch_encode.py - PyTorch side of the encode-throughput benchmark (see bench/README.md).

Holds the plain-torch BERT encoder (embeddings + LayerNorm, masked multi-head attention with the
Hugging Face extended mask, exact-erf GELU, mean pooling on the mask) that make_minilm_random.py
exports to ONNX, a hand-written safetensors reader, and the timing loop.

Run with Debian's torch:  /usr/bin/python3 bench/torch_encode.py --model DIR --threads 2 --batch 32 --seq 128
Prints one JSON object on stdout: per-rep seconds, best/median, sentences/s.
"""
import argparse
import json
import math
import os
import statistics
import struct
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_threads  # noqa: E402  (caps the BLAS/OpenMP pools before torch loads: see that file)

if __name__ == "__main__":
    torch_threads.cap_from_argv()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# safetensors (F32 only), by hand: u64 LE header length, JSON header, raw little-endian data.

def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor '{name}': dtype {info['dtype']} not supported (F32 only)")
        b, e = info["data_offsets"]
        arr = np.frombuffer(blob, dtype="<f4", count=(e - b) // 4, offset=base + b)
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    """tensors: ordered dict name -> float32 numpy array."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, a in tensors.items():
        n = a.size * 4
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in tensors.values():
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


# ---------------------------------------------------------------------------------------------
# The model: a plain-torch BertModel + mean pooling, with HF tensor names.

class TorchBert(torch.nn.Module):
    def __init__(self, cfg, weights):
        super().__init__()
        self.C = cfg["hidden_size"]
        self.NH = cfg["num_attention_heads"]
        self.L = cfg["num_hidden_layers"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        w = {k[5:] if k.startswith("bert.") else k: v for k, v in weights.items()}
        self.w = torch.nn.ParameterDict()
        self.names = {}
        for k, v in w.items():
            key = k.replace(".", "__")
            self.names[k] = key
            self.w[key] = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(v)), requires_grad=False)

    def p(self, name):
        return self.w[self.names[name]]

    def forward(self, input_ids, attention_mask):
        # input_ids, attention_mask: [B,S] int64 -> pooled [B,C]
        B, S = input_ids.shape
        C, NH = self.C, self.NH
        D = C // NH
        pos = torch.arange(S, device=input_ids.device)
        x = (F.embedding(input_ids, self.p("embeddings.word_embeddings.weight"))
             + F.embedding(pos, self.p("embeddings.position_embeddings.weight")).unsqueeze(0)
             + self.p("embeddings.token_type_embeddings.weight")[0])
        x = F.layer_norm(x, (C,), self.p("embeddings.LayerNorm.weight"), self.p("embeddings.LayerNorm.bias"), self.eps)
        maskf = attention_mask.to(x.dtype)
        ext = (1.0 - maskf[:, None, None, :]) * torch.finfo(x.dtype).min  # HF extended mask [B,1,1,S]
        scale = 1.0 / math.sqrt(D)
        for l in range(self.L):
            pre = f"encoder.layer.{l}."
            q = F.linear(x, self.p(pre + "attention.self.query.weight"), self.p(pre + "attention.self.query.bias"))
            k = F.linear(x, self.p(pre + "attention.self.key.weight"), self.p(pre + "attention.self.key.bias"))
            v = F.linear(x, self.p(pre + "attention.self.value.weight"), self.p(pre + "attention.self.value.bias"))
            q = q.view(B, S, NH, D).transpose(1, 2)  # [B,NH,S,D]
            k = k.view(B, S, NH, D).transpose(1, 2)
            v = v.view(B, S, NH, D).transpose(1, 2)
            att = torch.matmul(q, k.transpose(-1, -2)) * scale + ext  # [B,NH,S,S]
            att = torch.softmax(att, dim=-1)
            y = torch.matmul(att, v).transpose(1, 2).reshape(B, S, C)
            y = F.linear(y, self.p(pre + "attention.output.dense.weight"), self.p(pre + "attention.output.dense.bias"))
            x = F.layer_norm(x + y, (C,), self.p(pre + "attention.output.LayerNorm.weight"),
                             self.p(pre + "attention.output.LayerNorm.bias"), self.eps)
            h = F.gelu(F.linear(x, self.p(pre + "intermediate.dense.weight"), self.p(pre + "intermediate.dense.bias")))
            h = F.linear(h, self.p(pre + "output.dense.weight"), self.p(pre + "output.dense.bias"))
            x = F.layer_norm(x + h, (C,), self.p(pre + "output.LayerNorm.weight"),
                             self.p(pre + "output.LayerNorm.bias"), self.eps)
        m = maskf.unsqueeze(-1)  # [B,S,1]
        return (x * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)  # mean pooling [B,C]


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    return TorchBert(cfg, w).eval(), cfg


# ---------------------------------------------------------------------------------------------
# The benchmark's fixed "random" ids: xorshift32, identical in bench_encode.c and ort_encode.mjs.

def bench_ids(batch, seq, vocab, seed=12345):
    x = seed & 0xFFFFFFFF
    out = np.empty(batch * seq, dtype=np.int64)
    for i in range(batch * seq):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = 1000 + x % (vocab - 1000)
    return out.reshape(batch, seq)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/tmp/et-bench/minilm")
    ap.add_argument("--threads", type=int, default=1, help="cores torch may use")
    ap.add_argument("--intra-op", type=int, default=0, help="torch.set_num_threads (default: --threads)")
    ap.add_argument("--blas-threads", type=int, default=0, help="OpenBLAS threads (default: --threads)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.0, help="keep repeating until this many seconds")
    a = ap.parse_args()

    intra = a.intra_op or a.threads
    if intra > a.threads or (a.blas_threads or a.threads) > a.threads:
        sys.exit("torch_encode.py: --intra-op and --blas-threads must not exceed --threads")
    torch.set_num_threads(intra)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    model, cfg = load_model(a.model)
    ids = torch.from_numpy(bench_ids(a.batch, a.seq, cfg["vocab_size"]))
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        for _ in range(a.warmup):
            model(ids, mask)
        t_start = time.perf_counter()
        while len(times) < a.reps or time.perf_counter() - t_start < a.min_time:
            t0 = time.perf_counter()
            out = model(ids, mask)
            times.append(time.perf_counter() - t0)
    best, med = min(times), statistics.median(times)
    print(json.dumps({
        "engine": "torch", "version": torch.__version__, "threads": a.threads, "blas": torch_threads.blas_info()["kind"],
        "intra_op": torch.get_num_threads(), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"), "batch": a.batch, "seq": a.seq,
        "times_s": times, "best_s": best, "median_s": med,
        "sps_best": a.batch / best, "sps_median": a.batch / med,
        "checksum": float(out.double().sum()),
    }))


if __name__ == "__main__":
    main()
