#!/usr/bin/python3
"""torch_reallen.py - PyTorch side of the real-length encode benchmark (bench/run_reallen_bench.sh).

Encodes every line of an ids file (token ids per text, written by `bench_reallen --make-ids`) with the
plain-torch BERT of torch_encode.py, as sentence-transformers does (its best practice): texts sorted by
length, batches of --batch, each batch padded to its own longest text (dynamic padding) with the mask,
torch.inference_mode. Times whole passes after --warmup batches; prints one JSON line (per-pass seconds, peak RSS, the BLAS torch
loaded). --emb-out: float32 embeddings in file order for the runner's cross-engine check.

  /usr/bin/python3 bench/torch_reallen.py --model DIR --ids FILE --threads 2 [--intra-op 1] [--reps 2]
"""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_threads  # noqa: E402  (caps the BLAS/OpenMP pools before torch loads)

if __name__ == "__main__":
    torch_threads.cap_from_argv()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from torch_encode import load_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/tmp/et-bench/minilm")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--intra-op", type=int, default=0, help="torch.set_num_threads (default: --threads)")
    ap.add_argument("--blas-threads", type=int, default=0, help="OpenBLAS threads (default: --threads)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=2, help="batches run before the timed passes")
    ap.add_argument("--reps", type=int, default=1, help="timed passes over every text")
    ap.add_argument("--emb-out", default="")
    a = ap.parse_args()
    intra = a.intra_op or a.threads
    torch.set_num_threads(intra)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    texts = [np.array([int(t) for t in line.split()], dtype=np.int64) for line in open(a.ids) if line.strip()]
    model, cfg = load_model(a.model)
    pad = cfg.get("pad_token_id", 0)
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    # the batches, built once (sentence-transformers tokenizes per batch; tokenization is not timed anywhere)
    batches = []
    for b0 in range(0, len(order), a.batch):
        idx = order[b0:b0 + a.batch]
        T = max(len(texts[i]) for i in idx)
        ids = np.full((len(idx), T), pad, dtype=np.int64)
        mask = np.zeros((len(idx), T), dtype=np.int64)
        for r, i in enumerate(idx):
            ids[r, :len(texts[i])] = texts[i]
            mask[r, :len(texts[i])] = 1
        batches.append((idx, torch.from_numpy(ids), torch.from_numpy(mask)))
    emb = np.zeros((len(texts), cfg["hidden_size"]), dtype=np.float32)
    times = []
    with torch.inference_mode():
        for idx, ids, mask in batches[:a.warmup]:
            model(ids, mask)
        for rep in range(a.reps):
            t0 = time.perf_counter()
            for idx, ids, mask in batches:
                out = model(ids, mask)
                emb[idx] = out.numpy()
            times.append(time.perf_counter() - t0)
    if a.emb_out:
        emb.tofile(a.emb_out)
    print(json.dumps({
        "engine": "torch", "version": torch.__version__, "threads": a.threads, "intra_op": torch.get_num_threads(),
        "blas": torch_threads.blas_info()["kind"], "batch": a.batch, "texts": len(texts),
        "tokens": int(sum(len(t) for t in texts)), "padded_tokens": int(sum(i.numel() for _, i, _ in batches)),
        "times_s": times, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
