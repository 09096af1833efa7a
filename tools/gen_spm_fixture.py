#!/usr/bin/env python3
"""Generate tests/fixtures/spm/ for tests/test_spm.c: two small SentencePiece Unigram vocabularies
trained with Debian's spm_train on Debian package-description translations, their tokenizer.json
(tools/spm_to_tokenizer_json.py), and the ids two independent references give for >= 5,000 texts
in 11 languages plus an adversarial list:
  s  Debian python3-sentencepiece (the reference C++ implementation) on the .model
  h  Hugging Face Rust tokenizers 0.22 (npm @anush008/tokenizers) on the tokenizer.json

Inputs (none of it is committed except what is written to OUT):
  Translation files:  mkdir -p L/partial && apt-get update -o Dir::State::Lists=$PWD/L \\
                        -o Acquire::Languages=de,fr,it,ja,ko,ru,pl,es,cs,uk,da
                      /usr/lib/apt/apt-helper cat-file L/*_i18n_Translation-xx.lz4 > tr-xx.txt
  apt-get install sentencepiece python3-sentencepiece python3-protobuf
  npm install --prefix /tmp/npm @anush008/tokenizers

  /usr/bin/python3 tools/gen_spm_fixture.py --tr-dir DIR --node-path /tmp/npm/node_modules [--out tests/fixtures/spm]

Models:
  xlmr   3,000 pieces, character_coverage 0.995 (rare characters stay unknown), written in the XLM-R
         layout (fairseq ids: spm id + 1, <mask> last): folder files sentencepiece.bpe.model + tokenizer.json
  bytefb 1,000 pieces, byte_fallback, identity normalization (no charsmap), pad piece, plain spm ids
Fixture cases.txt, tab-separated, one text per line:
  t  LANG  TEXT  XLMR_S  XLMR_H  BYTEFB_S  BYTEFB_H
ids without <s>/</s>, space separated; "=" when HF gave the same ids as sentencepiece; "-" when the text
was not run through that model (bytefb: every 10th text and the adversarial list). Then batches:
  b  MODEL  MAX_LEN  I J ...  IDS_ROWS(;-separated)  MASK_ROWS
(HF tokenizer(texts[I, J, ...], truncation max_len, padding to the longest); ids rows are concatenated).
Text escapes: \\\\ and \\xHH (bytes < 0x20, 0x7f, tab, and every byte of an invalid UTF-8 sequence).
"""
import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
LANGS = ["cs", "da", "de", "es", "fr", "it", "ja", "ko", "pl", "ru", "uk"]


def parse_translations(path, lang):
    """[(package, short, long_lines)] from a Translation-xx file."""
    out, pkg, short, body = [], None, None, []
    key = "Description-%s: " % lang
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("Package: "):
                if pkg and short:
                    out.append((pkg, short, body))
                pkg, short, body = line[9:], None, []
            elif line.startswith(key):
                short = line[len(key):]
            elif line.startswith(" ") and short is not None:
                body.append(line[1:])
    if pkg and short:
        out.append((pkg, short, body))
    return out


def h(s):
    return int(hashlib.sha1(s.encode()).hexdigest()[:8], 16)


def texts_for(lang, entries, n):
    """n deterministic texts: short descriptions, first paragraphs, and raw multi-line snippets."""
    chosen = sorted(entries, key=lambda e: h(lang + e[0]))[:n]
    out = []
    for i, (pkg, short, body) in enumerate(chosen):
        if i % 3 == 0:
            t = short
        elif i % 3 == 1:
            para = []
            for l in body:
                if l == ".":
                    break
                para.append(l)
            t = " ".join(para)[:70]  # cut mid-word on purpose
        else:
            t = short + "\n " + (body[0][:30] if body else "")
        out.append(t)
    return out


def adversarial(rng):
    A = [
        "", " ", "   ", "\t", "\n", "\r\n", " leading", "trailing ", "  both  ", "a  b   c", "a\tb\nc\rd",
        "a\r\nb", "x\u00a0y", "x\u3000y", "\u3000\u3000全角空白\u3000", "x\u2002y\u2003z", "zero\u200bwidth",
        "bom\ufeffinside", "line\u2028sep\u2029para", "nul\x00byte", "bell\x07esc\x1b[0m", "del\x7fchar",
        "e\u0301 cafe\u0301 caf\u00e9", "\uff21\u0301 full-width A + acute", "a\u0308\u0301 stacked", "o\u0302\u0323",
        "\u0301 leading combining", "x \u0301 spaced combining", "\uff21\uff22\uff23\uff11\uff12\uff13\uff01\uff1f",
        "\uff76\uff9e\uff77\uff9e halfwidth kana", "\u30ab\u3099 decomposed ga", "\ufb01nance \ufb02ow \ufb00",
        "\u2163 \u216b \u2460\u2461 \u2474 \u337b \u3231", "x\u00b2 y\u2083 \u00bd \u2153", "\u00a8 \u00b4 \u00b8 spacing marks",
        "\u1100\u1161\u11a8 jamo \u1100\u1161", "\u3131\u314f hangul compat", "\ud55c\uad6d\uc5b4 \ud14c\uc2a4\ud2b8",
        "\u0627\u064e\u0644\u0652\u0639\u064e\u0631\u064e\u0628\u0650\u064a\u064e\u0651\u0629", "\u200f\u05e9\u05dc\u05d5\u05dd\u200e abc",
        "\u0915\u094d\u0937\u093f \u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
        "\u0e01\u0e33 \u0e33", "mixed English \u65e5\u672c\u8a9e \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
        "\u0130stanbul \u0131\u0130 \u00df\u1e9e \u03a3\u03c3\u03c2", "\U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\U0001f1e9\U0001f1ea\U0001f1ef\U0001f1f5 flags", "1\ufe0f\u20e3 keycap #\ufe0f\u20e3", "\u2764\ufe0f \u263a\ufe0e",
        "a\U0001f3fb", "\U0001d400\U0001d401 math bold \U0001d7d8", "\u24b6\u24b7 circled", "\u2126 \u212b \u212a",
        "\u3000", "\ufffd replacement", "\ue000 private use \U000f0000", "\U0002a6d6 rare CJK \U00020000",
        "<s> literal", "a</s>b", "x <mask> y", "<unk><pad>", "<mask>", " <mask> ", "<s>", "\u2581 lower one eighth block",
        "\u2581\u2581x\u2581", "_ underscore_word", "https://example.org/path?q=1&r=2#frag", "user@example.com",
        "C:\\Program Files\\x", "snake_case camelCase kebab-case", "3.14159 1,000,000 -42 1e-9",
        "\"quoted\" 'single' \u201ccurly\u201d \u00abguillemets\u00bb", "``backticks'' and ''quotes''",
        "\u2026 \u2014 \u2013 \u00b7 \u2022", "ALL CAPS SHOUTING", "x" * 300, "\u3042" * 200, "ab" * 150 + " end",
        "a.b,c;d:e!f?g", "(\u62ec\u5f27)\u300c\u9264\u62ec\u5f27\u300d\u3010\u3011",
    ]
    A = [a.encode("utf-8") for a in A]
    A += [b"\xff", b"ab\xffcd", b"\xc3(", b"\xc0\xaf", b"\xed\xa0\x80 surrogate", b"\xe2\x82 truncated",
          b"\xf4\x90\x80\x80 too big", b"ok \xe2\x82\xac \xe2\x82", b"\x80\x80\x80", b"caf\xc3", b"\xf0\x9f\x98"]
    # random soups over mixed blocks (seeded)
    blocks = [(0x20, 0x7e), (0xa0, 0x24f), (0x300, 0x36f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x6ff),
              (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff), (0x2000, 0x206f), (0x2100, 0x24ff),
              (0x3000, 0x30ff), (0x3130, 0x318f), (0x4e00, 0x4fff), (0xac00, 0xad00), (0xfe00, 0xfe0f),
              (0xff00, 0xffef), (0x1f300, 0x1f6ff), (0x1d400, 0x1d4ff), (0x0, 0x1f)]
    for _ in range(300):
        k = rng.randint(1, 24)
        s = []
        for _ in range(k):
            lo, hi = blocks[rng.randrange(len(blocks))]
            c = rng.randint(lo, hi)
            if 0xd800 <= c <= 0xdfff:
                c = 0x41
            s.append(chr(c))
            if rng.random() < 0.2:
                s.append(" ")
        A.append("".join(s).encode("utf-8"))
    for _ in range(60):
        A.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))))
    return A


def escape(b):
    """bytes -> one-line fixture text (see the module docstring)."""
    out = []
    s = b.decode("utf-8", errors="surrogateescape")
    for ch in s:
        o = ord(ch)
        if 0xdc80 <= o <= 0xdcff:
            out.append("\\x%02x" % (o - 0xdc00))
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7f:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return "".join(out)


def train(corpus, prefix, vocab, extra):
    cmd = ["spm_train", "--input=" + corpus, "--model_prefix=" + prefix, "--model_type=unigram",
           "--vocab_size=%d" % vocab, "--num_threads=1", "--input_sentence_size=200000",
           "--shuffle_input_sentence=true", "--seed_sentencepiece_size=200000"] + extra
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tr-dir", required=True, help="folder with tr-xx.txt (apt-helper cat-file output)")
    ap.add_argument("--node-path", required=True, help="node_modules holding @anush008/tokenizers")
    ap.add_argument("--out", default="tests/fixtures/spm")
    ap.add_argument("--per-lang", type=int, default=460)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="spmfx")

    texts, langs, corpus = [], [], os.path.join(tmp, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as cf:
        for lang in LANGS:
            entries = parse_translations(os.path.join(a.tr_dir, "tr-%s.txt" % lang), lang)
            tt = texts_for(lang, entries, a.per_lang)
            texts += [t.encode("utf-8") for t in tt]
            langs += [lang] * len(tt)
            for pkg, short, body in sorted(entries, key=lambda e: h("train" + e[0]))[:4000]:
                cf.write(short + "\n")
                for l in body:
                    if l != ".":
                        cf.write(l + "\n")
    adv = adversarial(random.Random(16))
    texts += adv
    langs += ["adv"] * len(adv)
    strs = [t.decode("utf-8", errors="replace") for t in texts]

    models = {
        "xlmr": dict(vocab=3000, extra=["--character_coverage=0.995"], layout="xlmr",
                     dir=os.path.join(a.out, "xlmr")),
        "bytefb": dict(vocab=1000, extra=["--character_coverage=0.995", "--byte_fallback=true", "--pad_id=3",
                                          "--normalization_rule_name=identity"], every=10,
                       layout="plain", dir=os.path.join(a.out, "bytefb")),
    }
    cols = {}  # (model, 's'|'h') -> per-text id strings
    blines = []
    table = {}
    for name, m in models.items():
        os.makedirs(m["dir"], exist_ok=True)
        prefix = os.path.join(tmp, name)
        train(corpus, prefix, m["vocab"], m["extra"])
        mfile = os.path.join(m["dir"], "sentencepiece.bpe.model" if name == "xlmr" else "spm.model")
        with open(prefix + ".model", "rb") as f, open(mfile, "wb") as g:
            g.write(f.read())
        tj = os.path.join(m["dir"], "tokenizer.json")
        subprocess.run([sys.executable, os.path.join(HERE, "spm_to_tokenizer_json.py"), mfile, tj,
                        "--layout", m["layout"]], check=True)
        every = m.get("every", 1)
        sel = [i for i in range(len(strs)) if langs[i] == "adv" or i % every == 0]
        sp = spm.SentencePieceProcessor(model_file=mfile)
        s_ids = {}
        for i in sel:
            ids = sp.encode(strs[i])
            if m["layout"] == "xlmr":
                ids = [3 if x == 0 else x + 1 for x in ids]
            s_ids[i] = ids
        rng = random.Random(7)
        # et_tokenize_batch takes C strings: texts with a NUL byte are not batched
        bsel = [i for i in sel if b"\x00" not in texts[i]]
        rows = [sorted(rng.sample(bsel, rng.randint(1, 6))) for _ in range(60)]
        inp = os.path.join(tmp, "in.json")
        outp = os.path.join(tmp, "out.json")
        with open(inp, "w") as f:
            json.dump({"texts": [strs[i] for i in sel], "batch": {"max_len": 16, "rows": [
                [sel.index(i) for i in r] for r in rows]}}, f)
        env = dict(os.environ, NODE_PATH=a.node_path)
        subprocess.run(["node", os.path.join(HERE, "spm_hf_ids.mjs"), tj, inp, outp], check=True, env=env)
        with open(outp) as f:
            hf = json.load(f)
        h_ids = dict(zip(sel, hf["ids"]))
        cs, ch = cols.setdefault((name, "s"), {}), cols.setdefault((name, "h"), {})
        for i in sel:
            cs[i] = " ".join(map(str, s_ids[i]))
            ch[i] = "=" if h_ids[i] == s_ids[i] else " ".join(map(str, h_ids[i]))
            c = table.setdefault((name, langs[i]), [0, 0])
            c[0] += 1
            c[1] += s_ids[i] == h_ids[i]
        for r, b in zip(rows, hf["batch"]):
            blines.append("b\t%s\t16\t%s\t%s\t%s" % (name, " ".join(map(str, r)),
                                                      ";".join(" ".join(map(str, x)) for x in b["ids"]),
                                                      ";".join(" ".join(map(str, x)) for x in b["mask"])))
    with open(os.path.join(a.out, "cases.txt"), "w", encoding="utf-8") as f:
        f.write("# generated by tools/gen_spm_fixture.py; see its docstring for the format\n")
        for i, t in enumerate(texts):
            f.write("t\t%s\t%s" % (langs[i], escape(t)))
            for name in models:
                for k in ("s", "h"):
                    f.write("\t" + cols[(name, k)].get(i, "-"))
            f.write("\n")
        for l in blines:
            f.write(l + "\n")
    print("model   lang  texts  sentencepiece==HF-tokenizers")
    for (name, lang), (n, same) in sorted(table.items()):
        print("%-7s %-5s %5d  %5d" % (name, lang, n, same))


if __name__ == "__main__":
    main()
