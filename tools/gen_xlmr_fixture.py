#!/usr/bin/python3
"""Generate tests/fixtures/xlmr/: a random small XLM-R-shaped sentence-transformers model and the
embeddings PyTorch gives for a few multilingual texts (tests/test_xlmr.c, tests/cli_xlmr.sh).

  model/config.json          model_type xlm-roberta, pad_token_id 1 (positions start at 2),
                             type_vocab_size 1, layer_norm_eps 1e-5, vocab_size 3010 (the tokenizer has
                             3002 tokens: a padded embedding table, as multilingual-e5's)
  model/model.safetensors    F32, names with the "roberta." prefix (XLMRobertaModel inside a task model)
                             and an lm_head tensor that the loader must ignore
  model/modules.json, 1_Pooling/config.json (mean), 2_Normalize/, sentence_bert_config.json
  expected.txt               per text: "t TEXT", "ids ...", "emb ..." (float64 reference, rounded to 9 digits)

The tokenizer (tests/fixtures/spm/xlmr: tokenizer.json + sentencepiece.bpe.model) is not copied here
(0.7 MB): the tests copy it into a scratch copy of the folder. Reference maths: plain torch float64
re-statement of transformers' XLMRobertaModel (create_position_ids_from_input_ids, BERT layers, erf
GELU) + sentence-transformers mean pooling and Normalize; ids from Debian python3-sentencepiece with
XLMRobertaTokenizer's id mapping (spm id + 1, unk 3), <s> ... </s>.

  /usr/bin/python3 tools/gen_xlmr_fixture.py   (Debian python3-torch, python3-sentencepiece)
"""
import json
import os
import struct

import sentencepiece as spm
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "xlmr")
SPM = os.path.join(ROOT, "tests", "fixtures", "spm", "xlmr", "sentencepiece.bpe.model")
V, C, L, NH, I, P, PAD, EPS = 3010, 16, 2, 2, 32, 34, 1, 1e-5
TEXTS = [
    "Der GNU-C++-Compiler",
    "Bibliothèque partagée pour le traitement des images",
    "古代戦争のリアルタイム戦略ゲーム",
    "오픈 소스 3D 그래픽 엔진",
    "Утилиты для работы с файловой системой",
    "Narzędzia do kompresji danych",
    "Una libreria per l'elaborazione di immagini ☃ emoji 😀",
    "kort",
]

torch.manual_seed(16)
DT = torch.float64


def rnd(*shape, std=0.2, mean=0.0):
    return (torch.randn(*shape, dtype=torch.float32) * std + mean).to(DT)


tensors = {}


def add(name, t):
    tensors[name] = t
    return t


add("embeddings.word_embeddings.weight", rnd(V, C))
add("embeddings.position_embeddings.weight", rnd(P, C))
add("embeddings.token_type_embeddings.weight", rnd(1, C))
add("embeddings.LayerNorm.weight", rnd(C, std=0.1, mean=1.0))
add("embeddings.LayerNorm.bias", rnd(C, std=0.1))
for l in range(L):
    p = "encoder.layer.%d." % l
    for m in ("query", "key", "value"):
        add(p + "attention.self.%s.weight" % m, rnd(C, C))
        add(p + "attention.self.%s.bias" % m, rnd(C, std=0.1))
    add(p + "attention.output.dense.weight", rnd(C, C))
    add(p + "attention.output.dense.bias", rnd(C, std=0.1))
    add(p + "attention.output.LayerNorm.weight", rnd(C, std=0.1, mean=1.0))
    add(p + "attention.output.LayerNorm.bias", rnd(C, std=0.1))
    add(p + "intermediate.dense.weight", rnd(I, C))
    add(p + "intermediate.dense.bias", rnd(I, std=0.1))
    add(p + "output.dense.weight", rnd(C, I))
    add(p + "output.dense.bias", rnd(C, std=0.1))
    add(p + "output.LayerNorm.weight", rnd(C, std=0.1, mean=1.0))
    add(p + "output.LayerNorm.bias", rnd(C, std=0.1))


def ln(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + EPS) * w + b


def lin(x, name):
    return x @ tensors[name + ".weight"].T + tensors[name + ".bias"]


def forward(ids, mask):
    """XLMRobertaModel last hidden state for a right-padded batch [B, T]."""
    keep = (ids != PAD).long()
    pos = torch.cumsum(keep, 1) * keep + PAD  # create_position_ids_from_input_ids
    T = tensors
    x = T["embeddings.word_embeddings.weight"][ids] + T["embeddings.position_embeddings.weight"][pos] + \
        T["embeddings.token_type_embeddings.weight"][torch.zeros_like(ids)]
    x = ln(x, T["embeddings.LayerNorm.weight"], T["embeddings.LayerNorm.bias"])
    B, S = ids.shape
    H = C // NH
    bias = (1.0 - mask.to(DT))[:, None, None, :] * torch.finfo(DT).min
    for l in range(L):
        p = "encoder.layer.%d." % l
        q = lin(x, p + "attention.self.query").view(B, S, NH, H).transpose(1, 2)
        k = lin(x, p + "attention.self.key").view(B, S, NH, H).transpose(1, 2)
        v = lin(x, p + "attention.self.value").view(B, S, NH, H).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / H ** 0.5 + bias, -1) @ v
        a = a.transpose(1, 2).reshape(B, S, C)
        x = ln(lin(a, p + "attention.output.dense") + x, T[p + "attention.output.LayerNorm.weight"],
               T[p + "attention.output.LayerNorm.bias"])
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + torch.erf(h / 2 ** 0.5))
        x = ln(lin(h, p + "output.dense") + x, T[p + "output.LayerNorm.weight"], T[p + "output.LayerNorm.bias"])
    return x


def write_safetensors(path, named):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(named):
        a = named[name].to(torch.float32).contiguous()
        b = struct.pack("<%df" % a.numel(), *a.flatten().tolist())
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    md = os.path.join(OUT, "model")
    os.makedirs(os.path.join(md, "1_Pooling"), exist_ok=True)
    os.makedirs(os.path.join(md, "2_Normalize"), exist_ok=True)
    # parameters are float32-representable, the reference runs in float64
    for k in tensors:
        tensors[k] = tensors[k].to(torch.float32).to(DT)
    named = {"roberta." + k: v for k, v in tensors.items()}
    named["lm_head.bias"] = rnd(V)
    write_safetensors(os.path.join(md, "model.safetensors"), named)
    dump(os.path.join(md, "config.json"), {
        "architectures": ["XLMRobertaModel"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "eos_token_id": 2,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": C, "initializer_range": 0.02,
        "intermediate_size": I, "layer_norm_eps": EPS, "max_position_embeddings": P, "model_type": "xlm-roberta",
        "num_attention_heads": NH, "num_hidden_layers": L, "pad_token_id": PAD, "position_embedding_type": "absolute",
        "type_vocab_size": 1, "vocab_size": V})
    dump(os.path.join(md, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    dump(os.path.join(md, "1_Pooling", "config.json"), {"word_embedding_dimension": C, "pooling_mode_cls_token": False,
                                                        "pooling_mode_mean_tokens": True})
    dump(os.path.join(md, "sentence_bert_config.json"), {"max_seq_length": P - PAD - 1, "do_lower_case": False})

    sp = spm.SentencePieceProcessor(model_file=SPM)
    rows = []
    for t in TEXTS:
        ids = [0] + [3 if i == 0 else i + 1 for i in sp.encode(t)] + [2]
        rows.append(ids[:P - PAD - 1 - 1] + [2] if len(ids) > P - PAD - 1 else ids)
    S = max(len(r) for r in rows)
    ids = torch.tensor([r + [PAD] * (S - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (S - len(r)) for r in rows])
    h = forward(ids, mask)
    m = mask.to(DT)[:, :, None]
    pooled = (h * m).sum(1) / m.sum(1)
    pooled = pooled / pooled.norm(dim=1, keepdim=True)
    with open(os.path.join(OUT, "expected.txt"), "w", encoding="utf-8") as f:
        f.write("# generated by tools/gen_xlmr_fixture.py: text, ids (<s> ... </s>), normalized mean-pooled embedding\n")
        for t, r, e in zip(TEXTS, rows, pooled):
            f.write("t %s\nids %s\nemb %s\n" % (t, " ".join(map(str, r)), " ".join("%.9g" % x for x in e.tolist())))


if __name__ == "__main__":
    main()
