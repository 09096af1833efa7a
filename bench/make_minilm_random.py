#!/usr/bin/python3
"""make_minilm_random.py - a MiniLM-L6-shaped BERT with random weights, for the encode benchmark.

Writes a Hugging Face / sentence-transformers folder (default /tmp/et-bench/minilm, never committed):
  config.json, vocab.txt, model.safetensors (written by hand: u64 LE header length + JSON header +
  raw F32), modules.json, 1_Pooling/config.json (mean pooling), model.onnx (torch.onnx.export of the
  plain-torch BERT in torch_encode.py, with the same weights), and check.json (a padded batch of
  ids/mask and torch's pooled output for it).
Then it runs onnxruntime-node on check.json (node bench/ort_encode.mjs --check) and fails unless the
ONNX output equals torch's to 1e-4.

Run with Debian's torch:  /usr/bin/python3 bench/make_minilm_random.py [--out DIR] [--seed N]
"""
import argparse
import warnings
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from torch_encode import TorchBert, write_safetensors, read_safetensors  # noqa: E402


def make_weights(cfg, rng, with_pooler=True):
    C, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    P, TV = cfg["max_position_embeddings"], cfg["type_vocab_size"]
    f32 = np.float32

    def n(*shape, std=0.02):
        return (rng.standard_normal(shape, dtype=f32) * f32(std)).astype(f32)

    def ln_w():
        return (1.0 + n(C, std=0.05)).astype(f32)

    w = {}
    w["embeddings.word_embeddings.weight"] = n(V, C)
    w["embeddings.position_embeddings.weight"] = n(P, C)
    w["embeddings.token_type_embeddings.weight"] = n(TV, C)
    w["embeddings.LayerNorm.weight"] = ln_w()
    w["embeddings.LayerNorm.bias"] = n(C)
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        # larger Q/K weights so attention is far from uniform: a wrong mask would show in the check
        w[p + "attention.self.query.weight"] = n(C, C, std=0.08)
        w[p + "attention.self.query.bias"] = n(C)
        w[p + "attention.self.key.weight"] = n(C, C, std=0.08)
        w[p + "attention.self.key.bias"] = n(C)
        w[p + "attention.self.value.weight"] = n(C, C)
        w[p + "attention.self.value.bias"] = n(C)
        w[p + "attention.output.dense.weight"] = n(C, C)
        w[p + "attention.output.dense.bias"] = n(C)
        w[p + "attention.output.LayerNorm.weight"] = ln_w()
        w[p + "attention.output.LayerNorm.bias"] = n(C)
        w[p + "intermediate.dense.weight"] = n(I, C)
        w[p + "intermediate.dense.bias"] = n(I)
        w[p + "output.dense.weight"] = n(C, I)
        w[p + "output.dense.bias"] = n(C)
        w[p + "output.LayerNorm.weight"] = ln_w()
        w[p + "output.LayerNorm.bias"] = n(C)
    if with_pooler:  # present in real MiniLM checkpoints; unused by mean pooling
        w["pooler.dense.weight"] = n(C, C)
        w["pooler.dense.bias"] = n(C)
    return w


def write_vocab(path, V):
    fixture = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "vocab.txt")
    if os.path.exists(fixture):
        with open(fixture, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n == V:
            shutil.copyfile(fixture, path)
            return f"copied {fixture}"
    # dummy BERT-uncased-like layout: [PAD]=0, [unused*], [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103
    toks = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    toks += [f"tok{i}" for i in range(len(toks), V)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(toks[:V]) + "\n")
    return f"dummy {V}-line vocab"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/et-bench/minilm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--intermediate", type=int, default=1536)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--type-vocab", type=int, default=2, help="type_vocab_size (XLM-R family: 1)")
    ap.add_argument("--max-position", type=int, default=512, help="max_position_embeddings (XLM-R family: 514)")
    ap.add_argument("--name", default="embedtune-bench/minilm-l6-random", help="config.json _name_or_path")
    ap.add_argument("--no-ort-check", action="store_true", help="skip the onnxruntime-node comparison")
    ap.add_argument("--no-onnx", action="store_true", help="write no model.onnx (implies --no-ort-check)")
    a = ap.parse_args()

    cfg = {
        "_name_or_path": a.name,
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "classifier_dropout": None,
        "gradient_checkpointing": False,
        "hidden_size": a.hidden,
        "initializer_range": 0.02,
        "intermediate_size": a.intermediate,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": a.max_position,
        "num_attention_heads": a.heads,
        "num_hidden_layers": a.layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "type_vocab_size": a.type_vocab,
        "use_cache": True,
        "vocab_size": a.vocab,
    }
    out = a.out
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    vmsg = write_vocab(os.path.join(out, "vocab.txt"), a.vocab)
    with open(os.path.join(out, "modules.json"), "w") as f:
        json.dump([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ], f, indent=2)
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": a.hidden, "pooling_mode_cls_token": False,
                   "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                   "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}, f, indent=2)

    rng = np.random.default_rng(a.seed)
    weights = make_weights(cfg, rng)
    st_path = os.path.join(out, "model.safetensors")
    write_safetensors(st_path, weights)
    # round-trip the hand-written file: the model we export is built from what was written
    back = read_safetensors(st_path)
    assert set(back) == set(weights) and all(np.array_equal(back[k], weights[k]) for k in weights)
    model = TorchBert(cfg, back).eval()

    # check batch: 4 sequences of 32 with padding (lengths 32, 20, 7, 1), pad id 0 where mask is 0
    B, S = 4, 32
    lens = [32, 20, 7, 1]
    crng = np.random.default_rng(a.seed + 1)
    ids = crng.integers(1000, a.vocab, size=(B, S), dtype=np.int64)
    mask = np.zeros((B, S), dtype=np.int64)
    for b, n in enumerate(lens):
        mask[b, :n] = 1
    ids[mask == 0] = 0
    ids[:, 0] = 101  # [CLS]
    with torch.inference_mode():
        pooled = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    with open(os.path.join(out, "check.json"), "w") as f:
        json.dump({"batch": B, "seq": S, "hidden": a.hidden,
                   "input_ids": ids.reshape(-1).tolist(), "attention_mask": mask.reshape(-1).tolist(),
                   "pooled": [float(x) for x in pooled.reshape(-1)]}, f)

    if a.no_onnx:
        print(f"wrote {out}: {sum(v.size for v in weights.values())} params, {vmsg}, no model.onnx", file=sys.stderr)
        return
    onnx_path = os.path.join(out, "model.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 1.13's exporter: 'shape inference of prim::Constant' noise
        torch.onnx.export(model, (torch.from_numpy(ids), torch.from_numpy(mask)), onnx_path,
                          input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "sentence_embedding": {0: "batch"}},
                          opset_version=17, do_constant_folding=True)
    print(f"wrote {out}: {sum(v.size for v in weights.values())} params, {vmsg}, model.onnx "
          f"({os.path.getsize(onnx_path) // (1 << 20)} MiB)", file=sys.stderr)

    if not a.no_ort_check:
        r = subprocess.run(["node", os.path.join(HERE, "ort_encode.mjs"), "--model", out, "--check", "--tol", "1e-4"])
        if r.returncode != 0:
            sys.exit("onnxruntime-node output differs from torch (or onnxruntime-node is not installed in bench/node_modules)")


if __name__ == "__main__":
    main()
