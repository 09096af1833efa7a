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


def blas_info():
    """Which BLAS this process (with torch imported) really uses: the shared objects mapped into it.

    Debian's torch calls the system `libblas.so.3`, an alternative: with only `libblas3` installed it is
    the netlib *reference* BLAS (/usr/lib/<triplet>/blas/libblas.so.3), ~30x slower than OpenBLAS for the
    encode benchmark, and a ratio against it is meaningless. Returns a dict: kind ('openblas', 'reference'
    or 'other'), the resolved .so paths, and torch's own BLAS_INFO build setting."""
    import re
    import torch  # noqa: F401  (loads the BLAS)
    libs = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1] if len(line.split()) >= 6 else ""
                if re.search(r"lib(open)?blas[^/]*\.so|libmkl|libblis", p) and p not in libs:
                    libs.append(p)
    except OSError:
        pass
    real = [os.path.realpath(p) for p in libs]
    if any("openblas" in p for p in real):
        kind = "openblas"
    elif any(re.search(r"/blas/libblas\.so", p) for p in real):
        kind = "reference"
    else:
        kind = "other"
    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return {"kind": kind, "libs": real, "torch_blas_info": m.group(1) if m else "?",
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "openblas_l2_size": os.environ.get("OPENBLAS_L2_SIZE")}


if __name__ == "__main__":
    # python3 bench/torch_threads.py --blas [--require-openblas]: print blas_info() as JSON; with
    # --require-openblas exit 3 unless torch runs on OpenBLAS
    import json
    info = blas_info()
    print(json.dumps(info))
    if "--require-openblas" in sys.argv and info["kind"] != "openblas":
        sys.exit(3)
