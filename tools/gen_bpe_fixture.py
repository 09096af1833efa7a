#!/usr/bin/env python3
"""Generate tests/fixtures/bpe/ for tests/test_bpe.c: a byte-level BPE vocabulary (RoBERTa layout) trained
here on Debian package-description translations, its files in both forms a folder ships (tokenizer.json;
vocab.json + merges.txt), and the ids Hugging Face's Rust tokenizers 0.22 (npm @anush008/tokenizers) give
for the texts of tests/fixtures/spm/cases.txt (11 languages + the adversarial list, the same texts test_spm
uses).

Inputs (nothing of it is committed except what is written to OUT):
  Translation files tr-xx.txt as tools/gen_spm_fixture.py describes (apt-helper cat-file output)
  npm install --prefix /tmp/npm @anush008/tokenizers

  /usr/bin/python3 tools/gen_bpe_fixture.py --tr-dir DIR --node-path /tmp/npm/node_modules [--out tests/fixtures/bpe]

Training: the corpus lines are pre-tokenized by HF's ByteLevel pre-tokenizer (tools/bpe_pretok.mjs), then
MERGES merges are learned by counting adjacent pairs (most frequent first, ties by the pair's strings). The
vocab is <s> <pad> </s> <unk>, the 256 byte-level characters, the merged tokens, <mask> (RoBERTa's order).
To exercise HF's handling of expired queue entries, EXTRA merges are appended that build an existing token
from another split of it (two pairs giving one token).

Configurations (ids in cases.txt, one column each):
  h0  tokenizer.json: RoBERTa's (ByteLevel add_prefix_space false, RobertaProcessing, <mask> lstrip),
      merges as ["a", "b"] pairs. C reads it, and vocab.json + merges.txt with add_prefix_space 0.
  h1  the same with add_prefix_space true (C: tokenizer.json edited in memory; vocab.json + merges.txt with 1).
  h2  tokenizer-unk.json: 12 byte-level characters (and every token and merge holding them) removed,
      unk_token "<unk>", fuse_unk, ignore_merges, merges as "a b" strings, add_prefix_space true.
cases.txt, tab-separated:
  t  INDEX  H0  H1  H2      INDEX: the text's number among the "t" lines of tests/fixtures/spm/cases.txt;
                            ids without <s>/</s>, space separated; H1 "=" when equal to H0; "-": not run
                            (h1 on every 4th text, h2 on every 3rd, both on the whole adversarial list)
  b  CONF  MAX_LEN  I J ...  IDS_ROWS(;-separated)  MASK_ROWS   (HF encodeBatch, truncation MAX_LEN,
                            padding to the longest, with <s>/</s>)
"""
import argparse
import heapq
import json
import os
import random
import subprocess
import sys
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_spm_fixture import LANGS, h, parse_translations  # noqa: E402


def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def unescape(s):
    """tests/fixtures/spm/cases.txt text field -> bytes (as tests/fx_tok.h's fx_unescape with backslash)."""
    out = bytearray()
    i = 0
    b = s.encode("utf-8")
    while i < len(b):
        if b[i:i + 2] == b"\\x":
            out.append(int(b[i + 2:i + 4], 16))
            i += 4
        elif b[i:i + 2] == b"\\\\":
            out.append(0x5C)
            i += 2
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def train(counts, n_merges):
    """Byte-level BPE merges from {word: count} (words already byte-level strings)."""
    words = [(list(w), c) for w, c in counts.items()]
    pairs = defaultdict(int)
    where = defaultdict(set)
    for wi, (sy, c) in enumerate(words):
        for a, b in zip(sy, sy[1:]):
            pairs[(a, b)] += c
            where[(a, b)].add(wi)
    heap = [(-c, p) for p, c in pairs.items()]
    heapq.heapify(heap)
    merges = []
    while heap and len(merges) < n_merges:
        c, p = heapq.heappop(heap)
        if -c != pairs.get(p, 0) or -c < 2:
            continue
        merges.append(p)
        new = p[0] + p[1]
        touched = set()
        for wi in list(where[p]):
            sy, wc = words[wi]
            for a, b in zip(sy, sy[1:]):
                pairs[(a, b)] -= wc
                touched.add((a, b))
            out, i = [], 0
            while i < len(sy):
                if i + 1 < len(sy) and sy[i] == p[0] and sy[i + 1] == p[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(sy[i])
                    i += 1
            words[wi] = (out, wc)
            for a, b in zip(out, out[1:]):
                pairs[(a, b)] += wc
                where[(a, b)].add(wi)
                touched.add((a, b))
        for q in touched:
            if pairs[q] > 0:
                heapq.heappush(heap, (-pairs[q], q))
    return merges


def hf_ids(node_path, tj, texts, rows, max_len, tmp):
    inp, outp = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
    with open(inp, "w") as f:
        json.dump({"texts": texts, "batch": {"max_len": max_len, "rows": rows}}, f)
    env = dict(os.environ, NODE_PATH=node_path)
    subprocess.run(["node", os.path.join(HERE, "spm_hf_ids.mjs"), tj, inp, outp], check=True, env=env)
    with open(outp) as f:
        return json.load(f)


def tokenizer_json(vocab, merges, aps, unk=None, fuse_unk=False, ignore_merges=False, pair_merges=True):
    sp = [("<s>", False), ("<pad>", False), ("</s>", False), ("<unk>", False), ("<mask>", True)]
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": l, "rstrip": False, "normalized": False,
              "special": True} for t, l in sp]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": aps, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", vocab["</s>"]], "cls": ["<s>", vocab["<s>"]],
                           "trim_offsets": True, "add_prefix_space": aps},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": fuse_unk, "byte_fallback": False, "ignore_merges": ignore_merges, "vocab": vocab,
                  "merges": [[a, b] for a, b in merges] if pair_merges else ["%s %s" % (a, b) for a, b in merges]},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tr-dir", required=True)
    ap.add_argument("--node-path", required=True)
    ap.add_argument("--out", default="tests/fixtures/bpe")
    ap.add_argument("--spm-cases", default="tests/fixtures/spm/cases.txt")
    ap.add_argument("--merges", type=int, default=2500)
    ap.add_argument("--extra", type=int, default=80)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="bpefx")

    # the texts: test_spm's
    texts, langs = [], []
    with open(a.spm_cases, encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "t":
                texts.append(unescape(p[2]).decode("utf-8", errors="replace"))
                langs.append(p[1])

    # training corpus: other entries than the texts' (a different hash order), all 11 languages
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as cf:
        for lang in LANGS:
            entries = parse_translations(os.path.join(a.tr_dir, "tr-%s.txt" % lang), lang)
            for pkg, short, body in sorted(entries, key=lambda e: h("bpetrain" + e[0]))[:1500]:
                cf.write(short + "\n")
                for l in body:
                    if l != ".":
                        cf.write(l + "\n")
    cj = os.path.join(tmp, "counts.json")
    subprocess.run(["node", os.path.join(HERE, "bpe_pretok.mjs"), corpus, cj], check=True,
                   env=dict(os.environ, NODE_PATH=a.node_path))
    with open(cj, encoding="utf-8") as f:
        counts = json.load(f)
    merges = train(counts, a.merges)

    b2u = bytes_to_unicode()
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    for x, y in merges:
        if x + y not in vocab:
            vocab[x + y] = len(vocab)
    # extra merges: another split of an existing token (both halves in the vocab, the pair not yet a merge)
    rng = random.Random(16)
    have = set(merges)
    cands = [t for t in list(vocab)[260:] if len(t) >= 3]
    rng.shuffle(cands)
    extra = []
    first = {x + y: (x, y) for x, y in merges}
    for t in cands:
        if len(extra) >= a.extra:
            break
        for k in range(1, len(t)):
            l, r = t[:k], t[k:]
            if (l, r) != first.get(t) and l in vocab and r in vocab and (l, r) not in have:
                extra.append((l, r))
                have.add((l, r))
                break
    merges_all = merges + extra
    vocab["<mask>"] = len(vocab)

    # the unk variant: drop 12 byte-level characters and everything built from them
    drop = set(b2u[b] for b in rng.sample(range(256), 12))
    keep = [t for t in vocab if t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>") or not (set(t) & drop)]
    vocab_u = {t: i for i, t in enumerate(keep)}
    merges_u = [(x, y) for x, y in merges_all if x in vocab_u and y in vocab_u and x + y in vocab_u]

    with open(os.path.join(a.out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(a.out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for x, y in merges_all:
            f.write("%s %s\n" % (x, y))
    confs = {
        "h0": (os.path.join(a.out, "tokenizer.json"), tokenizer_json(vocab, merges_all, False)),
        "h1": (os.path.join(tmp, "aps.json"), tokenizer_json(vocab, merges_all, True)),
        "h2": (os.path.join(a.out, "tokenizer-unk.json"),
               tokenizer_json(vocab_u, merges_u, True, unk="<unk>", fuse_unk=True, ignore_merges=True, pair_merges=False)),
    }
    rng = random.Random(7)
    bsel = [i for i in range(len(texts)) if "\x00" not in texts[i]]
    rows = [sorted(rng.sample(bsel, rng.randint(1, 6))) for _ in range(60)]
    res = {}
    for name, (path, tj) in confs.items():
        with open(path, "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
        res[name] = hf_ids(a.node_path, path, texts, rows, 16, tmp)
    with open(os.path.join(a.out, "cases.txt"), "w", encoding="utf-8") as f:
        f.write("# generated by tools/gen_bpe_fixture.py; see its docstring for the format\n")
        for i in range(len(texts)):
            c = [" ".join(map(str, res[k]["ids"][i])) for k in ("h0", "h1", "h2")]
            if c[1] == c[0]:
                c[1] = "="
            adv = langs[i] == "adv"
            if not adv and i % 4:  # the variants on every 4th / 3rd text and the whole adversarial list
                c[1] = "-"
            if not adv and i % 3:
                c[2] = "-"
            f.write("t\t%d\t%s\t%s\t%s\n" % (i, c[0], c[1], c[2]))
        for k in ("h0", "h2"):
            for r, bt in zip(rows, res[k]["batch"]):
                f.write("b\t%s\t16\t%s\t%s\t%s\n" % (k, " ".join(map(str, r)), ";".join(" ".join(map(str, x)) for x in bt["ids"]),
                                                     ";".join(" ".join(map(str, x)) for x in bt["mask"])))
    print("vocab %d (%d merges + %d extra), unk variant vocab %d, %d merges; %d texts" % (
        len(vocab), len(merges), len(extra), len(vocab_u), len(merges_u), len(texts)))
    ntok = sum(len(x) for x in res["h0"]["ids"])
    print("h0 ids: %d (%.1f per text); texts where aps changes ids: %d" % (
        ntok, ntok / len(texts), sum(res["h0"]["ids"][i] != res["h1"]["ids"][i] for i in range(len(texts)))))


if __name__ == "__main__":
    main()
