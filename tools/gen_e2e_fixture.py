#!/usr/bin/python3
"""Generate tests/fixtures/e2e/: an end-to-end reference for `texts -> embeddings`.

A tiny random BERT is written as a sentence-transformers folder (F16 safetensors with the "bert." prefix, mean
pooling + Normalize), its vocabulary built from the words of the texts plus single characters (so WordPiece splits
and [UNK] both occur). Token ids come from tools/bert_ref.py (a line-by-line restatement of Hugging Face's
BertTokenizer, itself checked against transformers.js in the tokenizer fixture); the embeddings from a plain-torch
BertModel in float64 (tools/gen_bert_fixture.py's maths), truncated at MAX_LEN tokens.

expected.txt: one line per text: "<hex of the text bytes> <n ids> ids... <C floats>".
Run with /usr/bin/python3 (Debian torch).
"""
import json, math, os, struct, sys
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bert_ref  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "fixtures", "e2e")
MAX_LEN = 24
TEXTS = [
    "How do I reset my password?",
    "Résumé of the café's crème brûlée recipe",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "   ",
    "Unbelievably longwordthatisnotinthevocabulary here",
    "数据 retrieval 検索 and emoji 🙂 test",
    "A much longer text that will certainly be truncated because it goes on and on, far beyond the limit of "
    "twenty-four tokens that the test uses for max_len, so only its beginning matters.",
    "tabs\tand\nnewlines\r\nare whitespace",
    "punctuation!!! (brackets) [and] {braces}; colons: done.",
    "numbers 3.14159 and 2,718 and 1e-9",
    "bad utf-8 \xff\xfe here",
    "[CLS] literal specials [SEP] inside",
    "x",
]
torch.manual_seed(7)
rng = np.random.default_rng(7)


def main():
    raws = [t.encode("utf-8", "surrogateescape") if "\xff" not in t else t.encode("latin-1", "replace") for t in TEXTS]
    raws[11] = b"bad utf-8 \xff\xfe here"
    words = set()
    for r in raws:
        for w in bert_ref.basic_tokenize(r.decode("utf-8", "replace"), True):
            words.add(w)
    words.discard("longwordthatisnotinthevocabulary")  # -> pieces / [UNK]
    chars = sorted({c for w in words for c in w})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words - {"unbelievably"}) + \
            ["un", "##believ", "##ably"] + [c for c in chars if c not in words] + ["##" + c for c in chars]
    seen, v2 = set(), []
    for t in vocab:
        if t not in seen:
            seen.add(t); v2.append(t)
    vocab = v2
    vid = {t: i for i, t in enumerate(vocab)}
    V, C, L, NH, I, P = len(vocab), 32, 2, 4, 64, 64
    DT = torch.float64
    F = torch.nn.functional

    def p(*shape, std=0.2, mean=0.0):
        # round through f16 so the F16 file holds exactly these values
        return (torch.randn(*shape) * std + mean).to(torch.float16).to(DT)

    T = {}
    T["embeddings.word_embeddings.weight"] = p(V, C, std=0.5)
    T["embeddings.position_embeddings.weight"] = p(P, C, std=0.3)
    T["embeddings.token_type_embeddings.weight"] = p(2, C, std=0.3)
    T["embeddings.LayerNorm.weight"] = p(C, std=0.1, mean=1)
    T["embeddings.LayerNorm.bias"] = p(C, std=0.1)
    for l in range(L):
        pre = f"encoder.layer.{l}."
        for n in ("query", "key", "value"):
            T[pre + f"attention.self.{n}.weight"] = p(C, C)
            T[pre + f"attention.self.{n}.bias"] = p(C, std=0.1)
        T[pre + "attention.output.dense.weight"] = p(C, C)
        T[pre + "attention.output.dense.bias"] = p(C, std=0.1)
        T[pre + "attention.output.LayerNorm.weight"] = p(C, std=0.1, mean=1)
        T[pre + "attention.output.LayerNorm.bias"] = p(C, std=0.1)
        T[pre + "intermediate.dense.weight"] = p(I, C)
        T[pre + "intermediate.dense.bias"] = p(I, std=0.1)
        T[pre + "output.dense.weight"] = p(C, I)
        T[pre + "output.dense.bias"] = p(C, std=0.1)
        T[pre + "output.LayerNorm.weight"] = p(C, std=0.1, mean=1)
        T[pre + "output.LayerNorm.bias"] = p(C, std=0.1)

    def embed(ids):
        n = len(ids)
        ids_t = torch.tensor(ids)
        x = T["embeddings.word_embeddings.weight"][ids_t] + T["embeddings.position_embeddings.weight"][:n] + \
            T["embeddings.token_type_embeddings.weight"][0]
        x = F.layer_norm(x, (C,), T["embeddings.LayerNorm.weight"], T["embeddings.LayerNorm.bias"], 1e-12)
        hd = C // NH
        for l in range(L):
            g = lambda s: T[f"encoder.layer.{l}." + s]
            h = lambda t: t.view(n, NH, hd).transpose(0, 1)
            q, k, v = (h(F.linear(x, g(f"attention.self.{s}.weight"), g(f"attention.self.{s}.bias")))
                       for s in ("query", "key", "value"))
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), -1)
            y = (a @ v).transpose(0, 1).reshape(n, C)
            h1 = F.layer_norm(F.linear(y, g("attention.output.dense.weight"), g("attention.output.dense.bias")) + x,
                              (C,), g("attention.output.LayerNorm.weight"), g("attention.output.LayerNorm.bias"), 1e-12)
            f = F.gelu(F.linear(h1, g("intermediate.dense.weight"), g("intermediate.dense.bias")))
            x = F.layer_norm(F.linear(f, g("output.dense.weight"), g("output.dense.bias")) + h1, (C,),
                             g("output.LayerNorm.weight"), g("output.LayerNorm.bias"), 1e-12)
        e = x.mean(0)  # no padding in a single-text batch: mean over all tokens
        return e / max(float(e.norm()), 1e-12)

    mdir = os.path.join(OUT, "model")
    os.makedirs(os.path.join(mdir, "1_Pooling"), exist_ok=True)
    # model.safetensors, F16, with the "bert." prefix (as BertForPreTraining-style checkpoints have)
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(T):
        b = T[name].to(torch.float16).numpy().astype("<f2").tobytes()
        header["bert." + name] = {"dtype": "F16", "shape": list(T[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(mdir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    json.dump({"architectures": ["BertModel"], "model_type": "bert", "vocab_size": V, "hidden_size": C,
               "num_hidden_layers": L, "num_attention_heads": NH, "intermediate_size": I, "hidden_act": "gelu",
               "max_position_embeddings": P, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0},
              open(os.path.join(mdir, "config.json"), "w"), indent=1)
    open(os.path.join(mdir, "vocab.txt"), "w", encoding="utf-8").write("\n".join(vocab) + "\n")
    json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
              open(os.path.join(mdir, "modules.json"), "w"), indent=1)
    json.dump({"word_embedding_dimension": C, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True},
              open(os.path.join(mdir, "1_Pooling", "config.json"), "w"), indent=1)
    json.dump({"max_seq_length": MAX_LEN, "do_lower_case": False},
              open(os.path.join(mdir, "sentence_bert_config.json"), "w"), indent=1)
    lines = []
    for r in raws:
        ids = bert_ref.encode(r, vid, True)[: MAX_LEN - 2]
        ids = [vid["[CLS]"]] + ids + [vid["[SEP]"]]
        e = embed(ids).numpy()
        lines.append(" ".join([r.hex() or "-", str(len(ids))] + [str(i) for i in ids] + ["%.9g" % x for x in e]))
    open(os.path.join(OUT, "expected.txt"), "w").write("\n".join(lines) + "\n")
    print(f"e2e fixture: vocab {V}, {len(raws)} texts, max_len {MAX_LEN}")


if __name__ == "__main__":
    main()
