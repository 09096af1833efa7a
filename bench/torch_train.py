#!/usr/bin/python3
"""torch_train.py - PyTorch side of the train-step benchmark (bench/run_train_bench.sh).

One train step, as sentence-transformers fit() does it with MultipleNegativesRankingLoss:
  forward queries [Bq,Tq] and documents [Bd,Td] (the plain-torch BERT of torch_encode.py, no dropout)
  -> MNRL: cross_entropy(20 * cos_sim(q, d), arange(B))
  -> loss.backward()
  -> torch.optim.AdamW(lr 1e-4, weight_decay 0.01; biases and LayerNorm weights in a no-decay group,
     sentence-transformers' rule; the pooler is not trained: it gets no gradient)
  -> optimizer.zero_grad() (set_to_none=False, torch 1.13's default).
The same ids as bench_train.c (xorshift32 of torch_encode.bench_ids, seeds 12345 / 54321), full masks.

--bf16: PyTorch's mixed precision, torch.autocast("cpu", dtype=torch.bfloat16) around the two forward passes
(bf16 matmuls and linears, fp32 weights, softmax/LayerNorm/loss in fp32 per autocast's op lists; the scores are
cast to fp32 for the loss); the engine is then "torch-bf16".

Run with Debian's torch:
  /usr/bin/python3 bench/torch_train.py --model DIR --threads 2 [--intra-op 1] [--reps 3] [--bf16]
One process per configuration, so its peak RSS (getrusage ru_maxrss) is that configuration's.
Prints one JSON object: per-step seconds, best/median, the loss before each step, peak RSS.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


import torch_threads  # noqa: E402  (caps the BLAS/OpenMP pools before torch loads)

if __name__ == "__main__":
    torch_threads.cap_from_argv()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_encode import bench_ids, load_model  # noqa: E402


def no_decay(name):
    # sentence-transformers fit(): no_decay = ["bias", "LayerNorm.bias", "LayerNorm.weight"]
    return any(nd in name for nd in ("bias", "LayerNorm.bias", "LayerNorm.weight"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/tmp/et-bench/minilm")
    ap.add_argument("--threads", type=int, default=1, help="cores torch may use")
    ap.add_argument("--intra-op", type=int, default=0, help="torch.set_num_threads (default: --threads)")
    ap.add_argument("--blas-threads", type=int, default=0, help="OpenBLAS threads (default: --threads)")
    ap.add_argument("--bq", type=int, default=32)
    ap.add_argument("--tq", type=int, default=32)
    ap.add_argument("--bd", type=int, default=32)
    ap.add_argument("--td", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast around the forward passes")
    a = ap.parse_args()
    if a.bq != a.bd:
        sys.exit("torch_train.py: --bd must equal --bq (MNRL pairs)")
    intra = a.intra_op or a.threads
    if intra > a.threads or (a.blas_threads or a.threads) > a.threads:
        sys.exit("torch_train.py: --intra-op and --blas-threads must not exceed --threads")
    torch.set_num_threads(intra)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    model, cfg = load_model(a.model)
    model.train()  # the plain-torch BERT has no dropout modules: dropout is off, as in bench_train
    decay, nodecay = [], []
    for name, key in model.names.items():
        p = model.w[key]
        if name.startswith("pooler."):
            continue  # unused by mean pooling: no gradient, not in the optimizer
        p.requires_grad_(True)
        (nodecay if no_decay(name) else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr)  # betas (0.9, 0.999), eps 1e-8, foreach=None -> single-tensor on CPU

    V = cfg["vocab_size"]
    # bench_ids(seed) reproduces bench_train.c's xorshift32 stream for that seed
    ids_q = torch.from_numpy(bench_ids(a.bq, a.tq, V, seed=12345))
    ids_d = torch.from_numpy(bench_ids(a.bd, a.td, V, seed=54321))
    mask_q, mask_d = torch.ones_like(ids_q), torch.ones_like(ids_d)
    labels = torch.arange(a.bq)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            q = model(ids_q, mask_q)
            d = model(ids_d, mask_d)
        q, d = q.float(), d.float()
        scores = F.normalize(q, p=2, dim=1) @ F.normalize(d, p=2, dim=1).t() * 20.0  # util.cos_sim * scale
        loss = F.cross_entropy(scores, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
        return float(loss.detach())

    losses = [step() for _ in range(a.warmup)]
    times, cpu = [], []
    t_start = time.perf_counter()
    while len(times) < a.reps or time.perf_counter() - t_start < a.min_time:
        t0, c0 = time.perf_counter(), time.process_time()
        losses.append(step())
        cpu.append(time.process_time() - c0)
        times.append(time.perf_counter() - t0)
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "engine": "torch-bf16" if a.bf16 else "torch", "version": torch.__version__, "threads": a.threads, "blas": torch_threads.blas_info()["kind"],
        "intra_op": torch.get_num_threads(), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "bq": a.bq, "tq": a.tq, "bd": a.bd, "td": a.td, "lr": a.lr,
        "times_s": times, "cpu_s": cpu, "losses": losses,
        "best_s": min(times), "median_s": statistics.median(times), "peak_rss_kib": rss_kib,
    }))


if __name__ == "__main__":
    main()
