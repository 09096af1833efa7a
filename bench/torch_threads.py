"""torch_threads.py - cap PyTorch's thread pools from the command line BEFORE torch is imported.

Debian's torch does its matmuls in the system BLAS (OpenBLAS, pthread build), whose own thread
pool ignores torch.set_num_threads and defaults to all cores. To give torch exactly `--threads`
cores, cap the BLAS pool too (--blas-threads, default = --threads); this must happen before the
library is loaded (import torch). torch's own OpenMP pool (--intra-op, default = --threads)
spins between ops and fights the BLAS pool for the cores, so with 2 cores the fastest torch is
often --intra-op 1 (elementwise ops on one thread, matmuls on 2 BLAS threads): the runners time
both and keep the faster, so the baseline is torch at its best on `--threads` cores.

Used by torch_encode.py and torch_train.py: `import torch_threads; torch_threads.cap_from_argv()` as
their first import when run as a script.
"""
import os
import sys


def opt_from_argv(argv, name):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def cap_from_argv(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    t = opt_from_argv(argv, "--threads") or "1"
    os.environ["OPENBLAS_NUM_THREADS"] = opt_from_argv(argv, "--blas-threads") or t
    os.environ["OMP_NUM_THREADS"] = opt_from_argv(argv, "--intra-op") or t
