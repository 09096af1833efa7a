#!/usr/bin/env python3
"""Python-semantics reference for Hugging Face's slow BertTokenizer (uncased), used by
tools/gen_tokenizer_fixture.mjs to check transformers.js and to settle where it deviates.

It re-states, step by step, what transformers' PreTrainedTokenizer.tokenize + BertTokenizer +
BasicTokenizer + WordpieceTokenizer do (do_lower_case=True, tokenize_chinese_chars=True,
strip_accents=None, max_input_chars_per_word=100), on Python's own unicodedata / str.lower():

  bytes --decode('utf-8', 'replace')--> str
  split out special tokens written in the text ([UNK] [SEP] [PAD] [CLS] [MASK], case-sensitive)
  lowercase every other character on its own (PreTrainedTokenizer.tokenize's `(.+?)` regex pass)
  per chunk: _clean_text, _tokenize_chinese_chars, NFC (newer transformers), whitespace split,
             lower, NFD + drop Mn, split on punctuation, WordPiece (longest match first, "##")

stdin: JSON {"vocab": path, "texts": [hex, ...], "nfc": bool}; stdout: JSON {"unicode", "ids": [[...], ...], "no_cn": [hex of the text without Cn, ...]}
"""
import json
import sys
import unicodedata

SPECIALS = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]


def is_ws(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_ctrl(ch):
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punct(ch):
    o = ord(ch)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(o):
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2A6DF or 0x2A700 <= o <= 0x2B73F
            or 0x2B740 <= o <= 0x2B81F or 0x2B820 <= o <= 0x2CEAF or 0xF900 <= o <= 0xFAFF or 0x2F800 <= o <= 0x2FA1F)


def split_specials(text):
    """Left-to-right scan; a special token found in the text becomes its own chunk."""
    out, cur, i = [], [], 0
    while i < len(text):
        hit = next((s for s in SPECIALS if text.startswith(s, i)), None)
        if hit:
            if cur:
                out.append(("text", "".join(cur)))
                cur = []
            out.append(("special", hit))
            i += len(hit)
        else:
            cur.append(text[i])
            i += 1
    if cur:
        out.append(("text", "".join(cur)))
    return out


def basic_tokenize(text, nfc):
    cleaned = []
    for ch in text:
        if ch in ("\x00", "\ufffd") or is_ctrl(ch):
            continue
        cleaned.append(" " if is_ws(ch) else ch)
    padded = []
    for ch in cleaned:
        padded.append(f" {ch} " if is_cjk(ord(ch)) else ch)
    text = "".join(padded)
    if nfc:
        text = unicodedata.normalize("NFC", text)
    words = []
    for tok in text.split():
        tok = tok.lower()
        tok = "".join(c for c in unicodedata.normalize("NFD", tok) if unicodedata.category(c) != "Mn")
        cur = []
        for ch in tok:
            if is_punct(ch):
                if cur:
                    words.append("".join(cur))
                    cur = []
                words.append(ch)
            else:
                cur.append(ch)
        if cur:
            words.append("".join(cur))
    return " ".join(words).split()


def wordpiece(word, vocab, unk):
    if len(word) > 100:
        return [unk]
    out, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found is None:
            return [unk]
        out.append(found)
        start = end
    return out


def encode(raw, vocab, nfc):
    text = raw.decode("utf-8", errors="replace")
    unk = vocab["[UNK]"]
    ids = []
    for kind, chunk in split_specials(text):
        if kind == "special":
            ids.append(vocab.get(chunk, unk))
            continue
        chunk = "".join(c.lower() for c in chunk)  # per-character, as HF's regex pass
        for w in basic_tokenize(chunk, nfc):
            ids.extend(wordpiece(w, vocab, unk))
    return ids


def main():
    req = json.load(sys.stdin)
    with open(req["vocab"], encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    raws = [bytes.fromhex(h) for h in req["texts"]]
    res = [encode(r, vocab, req.get("nfc", True)) for r in raws]
    # the texts without code points unassigned in this Unicode version (to explain deviations)
    no_cn = ["".join(c for c in r.decode("utf-8", errors="replace") if unicodedata.category(c) != "Cn")
             .encode("utf-8").hex() for r in raws]
    json.dump({"unicode": unicodedata.unidata_version, "ids": res, "no_cn": no_cn}, sys.stdout)


if __name__ == "__main__":
    main()
