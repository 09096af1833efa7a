#!/usr/bin/env python3
"""Write a Hugging Face tokenizer.json for a SentencePiece Unigram .model, as transformers'
convert_slow_tokenizer does (the converters themselves need `transformers`/`tokenizers`, which are
not installable here; this reproduces their output for the two layouts embedtune reads):

  --layout xlmr   XLMRobertaConverter: ids <s>=0 <pad>=1 </s>=2 <unk>=3, then the .model's pieces
                  from index 3 on (id = spm id + 1), then <mask>; unk_id 3; TemplateProcessing
                  "<s> $A </s>"; <mask> is an added token with lstrip (as on the Hub).
  --layout plain  SpmConverter: ids = the .model's ids; unk_id from the trainer spec; byte_fallback
                  when the model has BYTE pieces; TemplateProcessing with the model's bos/eos pieces.

Normalizer: Sequence[Precompiled(normalizer_spec.precompiled_charsmap), Replace(Regex " {2,}" -> " ")]
(the form multilingual-e5 / XLM-R / paraphrase-multilingual tokenizer.json files on the Hub carry);
pre-tokenizer and decoder: Metaspace("▁", add_prefix_space = normalizer_spec.add_dummy_prefix).

Needs Debian python3-sentencepiece and python3-protobuf:
  /usr/bin/python3 tools/spm_to_tokenizer_json.py MODEL.model OUT/tokenizer.json --layout xlmr
"""
import argparse
import base64
import json
import os
import sys

from sentencepiece import sentencepiece_model_pb2 as pb

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def added(id_, content, special=True, lstrip=False):
    return {"id": id_, "content": content, "single_word": False, "lstrip": lstrip, "rstrip": False,
            "normalized": False, "special": special}


def convert(proto, layout):
    ns = proto.normalizer_spec
    ts = proto.trainer_spec
    if ts.model_type != 1:
        sys.exit("only Unigram models (trainer_spec.model_type UNIGRAM) are converted")
    pieces = [(p.piece, p.score, p.type) for p in proto.pieces]
    if layout == "xlmr":
        vocab = [["<s>", 0.0], ["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0]]
        vocab += [[p, s] for p, s, _ in pieces[3:]]
        vocab += [["<mask>", 0.0]]
        unk_id = 3
        specials = [added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"), added(3, "<unk>"),
                    added(len(vocab) - 1, "<mask>", lstrip=True)]
        bos, eos = ("<s>", 0), ("</s>", 2)
        byte_fallback = False
    else:
        vocab = [[p, s] for p, s, _ in pieces]
        unk_id = ts.unk_id
        specials = [added(i, p) for i, (p, _, t) in enumerate(pieces) if t in (CONTROL, UNKNOWN)]
        specials += [added(i, p, special=False) for i, (p, _, t) in enumerate(pieces) if t == USER_DEFINED]
        specials.sort(key=lambda a: a["id"])
        bos, eos = (pieces[ts.bos_id][0], ts.bos_id), (pieces[ts.eos_id][0], ts.eos_id)
        byte_fallback = any(t == BYTE for _, _, t in pieces)
    normalizers = []
    if ns.precompiled_charsmap:
        normalizers.append({"type": "Precompiled",
                            "precompiled_charsmap": base64.b64encode(ns.precompiled_charsmap).decode("ascii")})
    normalizers.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": bool(ns.add_dummy_prefix)}

    def st(tok):
        return {"SpecialToken": {"id": tok[0], "type_id": 0}}

    post = {"type": "TemplateProcessing",
            "single": [st(bos), {"Sequence": {"id": "A", "type_id": 0}}, st(eos)],
            "pair": [st(bos), {"Sequence": {"id": "A", "type_id": 0}}, st(eos), st(eos),
                     {"Sequence": {"id": "B", "type_id": 0}}, st(eos)],
            "special_tokens": {t[0]: {"id": t[0], "ids": [t[1]], "tokens": [t[0]]} for t in (bos, eos)}}
    model = {"type": "Unigram", "unk_id": unk_id, "vocab": vocab}
    if byte_fallback:
        model["byte_fallback"] = True
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": specials,
            "normalizer": {"type": "Sequence", "normalizers": normalizers},
            "pre_tokenizer": metaspace, "post_processor": post, "decoder": dict(metaspace), "model": model}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--layout", choices=["xlmr", "plain"], default="xlmr")
    a = ap.parse_args()
    proto = pb.ModelProto()
    with open(a.model, "rb") as f:
        proto.ParseFromString(f.read())
    tj = convert(proto, a.layout)
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
