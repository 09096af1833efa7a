#!/usr/bin/env python3
"""Generate tests/fixtures/wordpiece_case/ for tests/test_wordpiece_case.c: WordPiece with the casing
variants of Hugging Face's BertNormalizer, against Hugging Face Rust tokenizers 0.22 (npm
@anush008/tokenizers, via tools/spm_hf_ids.mjs):

  cased        lowercase false, strip_accents null (= false): LaBSE, bert-base-multilingual-cased
  cased_strip  lowercase false, strip_accents true
  lower_keep   lowercase true,  strip_accents false

vocab.txt is a cased multilingual vocabulary built here from the texts of tests/fixtures/spm/cases.txt
(Debian description translations in 11 languages + the adversarial list): the specials, every character
seen twice (alone and as "##c"), the 3,000 most frequent words in their cased, lowercased and
accent-stripped forms, and the 1,500 most frequent 2-4 character word endings as "##" pieces.
cases.txt: "MODE INDEX CN IDS" per line, INDEX = the text's position among the "t" lines of
tests/fixtures/spm/cases.txt (every 12th text and every 2nd adversarial one), ids without [CLS]/[SEP].
CN = 1 when the text holds unassigned code points (category Cn in Python's unicodedata, the version
src/unicode_tables.h was made from): Rust tokenizers' clean_text keeps those (its is_control leaves out
Cn) where Python's BertTokenizer, and embedtune, drop them; for such texts IDS are Rust's ids of the text
with the Cn code points removed, so the line still checks every other step.

  /usr/bin/python3 tools/gen_wordpiece_case_fixture.py --node-path /tmp/npm/node_modules
"""
import argparse
import collections
import json
import os
import re
import subprocess
import tempfile
import unicodedata as ud

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
MODES = {"cased": (False, None), "cased_strip": (False, True), "lower_keep": (True, False)}


def unescape(s):
    out, i = bytearray(), 0
    while i < len(s):
        if s.startswith("\\x", i):
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        elif s.startswith("\\\\", i):
            out.append(0x5C)
            i += 2
        else:
            out += s[i].encode("utf-8")
            i += 1
    return bytes(out)


def strip(w):
    return "".join(c for c in ud.normalize("NFD", w) if ud.category(c) != "Mn")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--node-path", required=True)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "wordpiece_case"))
    a = ap.parse_args()
    texts, langs = [], []
    with open(os.path.join(ROOT, "tests", "fixtures", "spm", "cases.txt"), encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "t":
                langs.append(p[1])
                texts.append(unescape(p[2]).decode("utf-8", errors="replace"))
    chars, words, ends = collections.Counter(), collections.Counter(), collections.Counter()
    for t, l in zip(texts, langs):
        if l == "adv":
            continue
        chars.update(t)
        for w in re.findall(r"\w+", t):
            words[w] += 1
            for k in (2, 3, 4):
                if len(w) > k:
                    ends[w[-k:]] += 1
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    seen = set(vocab)

    def add(tok):
        if tok and tok not in seen and not any(c.isspace() for c in tok):
            seen.add(tok)
            vocab.append(tok)

    for c, n in sorted(chars.items()):
        if n >= 2:
            for form in (c, c.lower(), strip(c)):
                add(form)
                add("##" + form)
    for w, _ in words.most_common(3000):
        for form in (w, w.lower(), strip(w), strip(w.lower())):
            add(form)
    for e, _ in ends.most_common(1500):
        for form in (e, strip(e)):
            add("##" + form)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    sel = [i for i, l in enumerate(langs) if (l == "adv" and i % 2 == 0) or (l != "adv" and i % 12 == 0)]
    tmp = tempfile.mkdtemp(prefix="wpcase")
    lines = []
    for mode, (lower, strip_acc) in MODES.items():
        tj = {"version": "1.0", "truncation": None, "padding": None,
              "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                                "normalized": False, "special": True} for i, t in enumerate(vocab[:5])],
              "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                             "strip_accents": strip_acc, "lowercase": lower},
              "pre_tokenizer": {"type": "BertPreTokenizer"},
              "post_processor": {"type": "TemplateProcessing",
                                 "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                            {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                                 "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                                 "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                                    "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
              "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
              "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                        "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(vocab)}}}
        tjp = os.path.join(tmp, mode + ".json")
        with open(tjp, "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
        inp, outp = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
        cn = {i: any(ud.category(c) == "Cn" for c in texts[i]) for i in sel}
        with open(inp, "w") as f:
            json.dump({"texts": ["".join(c for c in texts[i] if ud.category(c) != "Cn") for i in sel]}, f)
        subprocess.run(["node", os.path.join(HERE, "spm_hf_ids.mjs"), tjp, inp, outp], check=True,
                       env=dict(os.environ, NODE_PATH=a.node_path))
        with open(outp) as f:
            ids = json.load(f)["ids"]
        for i, r in zip(sel, ids):
            lines.append("%s %d %d %s" % (mode, i, cn[i], " ".join(map(str, r))))
    with open(os.path.join(a.out, "cases.txt"), "w") as f:
        f.write("# generated by tools/gen_wordpiece_case_fixture.py: MODE INDEX CN IDS (INDEX: t line of tests/fixtures/spm/cases.txt)\n")
        f.write("\n".join(lines) + "\n")
    print("vocab %d tokens, %d texts x %d modes" % (len(vocab), len(sel), len(MODES)))


if __name__ == "__main__":
    main()
