#!/usr/bin/env python3
"""Write the *initial* (untrained) compact model for embedtune as a Hugging Face / sentence-transformers folder.

BERT-shaped (BertModel; mean pooling + L2 normalisation), so that transformers / sentence-transformers load it as is:
  config.json, vocab.txt (bert-base-uncased WordPiece, tests/fixtures/tokenizer/vocab.txt), model.safetensors (F32),
  modules.json, 1_Pooling/config.json (mean), 2_Normalize/, sentence_bert_config.json, tokenizer_config.json,
  special_tokens_map.json, config_sentence_transformers.json.

Initialisation (deterministic for a given --seed), as HF BertPreTrainedModel._init_weights does:
  Linear weights and position / token-type embeddings ~ N(0, 0.02^2), biases 0, LayerNorm weight 1 / bias 0.
  Token embeddings: the GloVe-derived matrix of tools/make_glove_init.py (a float32 .npy [vocab, hidden]) or, with
  --no-glove (the ablation), N(0, 0.02^2) with the [PAD] row zero.

Export mode (--export-from TRAINED_DIR): read a trained folder written by `embedtune train` (F32 safetensors), and
write --out as the bundled model: F16 safetensors (every tensor, including the token embeddings), the same config
(torch_dtype float16), vocab and sentence-transformers files. F16 overflow / underflow are checked and reported.

Only numpy is needed. safetensors are read and written by hand.
Usage: tools/init_compact_model.py --out DIR [--layers 3] [--hidden 128] [--heads 4] [--intermediate 512]
       [--glove-init /work/pretrain/glove_init_128.npy | --no-glove] [--max-seq-length 128] [--seed 0]
       tools/init_compact_model.py --export-from TRAINED_DIR --out models/compact [--max-seq-length 128]
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VOCAB = os.path.join(HERE, "..", "tests", "fixtures", "tokenizer", "vocab.txt")


def die(msg):
    sys.stderr.write("init_compact_model: error: " + msg + "\n")
    sys.exit(2)


def write_safetensors(path, tensors, dtype="F32"):
    np_dtype = {"F16": np.float16, "F32": np.float32}[dtype]
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np_dtype)
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "F16": np.float16}.get(info["dtype"])
        if dt is None:
            die(f"{path}: tensor '{name}' has dtype {info['dtype']} (F32 or F16 expected)")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + a:base + b], dtype=dt).reshape(info["shape"]).astype(np.float32)
    return out


def export_f16(src, out, max_seq_length):
    cfg = json.load(open(os.path.join(src, "config.json")))
    t = read_safetensors(os.path.join(src, "model.safetensors"))
    t = {(k[5:] if k.startswith("bert.") else k): v for k, v in t.items()}
    fmax = float(np.finfo(np.float16).max)
    worst, tiny = 0.0, 0
    for k, v in t.items():
        if not np.all(np.isfinite(v)):
            die(f"{src}/model.safetensors: tensor '{k}' has NaN/Inf")
        if np.abs(v).max() > fmax:
            die(f"{src}/model.safetensors: tensor '{k}' exceeds the F16 range ({np.abs(v).max():g})")
        h = v.astype(np.float16).astype(np.float32)
        worst = max(worst, float(np.abs(h - v).max()))
        tiny += int(np.sum((v != 0) & (h == 0)))
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), t, "F16")
    shutil.copyfile(os.path.join(src, "vocab.txt"), os.path.join(out, "vocab.txt"))
    cfg["torch_dtype"] = "float16"
    write_folder_files(out, cfg, max_seq_length)
    size = os.path.getsize(os.path.join(out, "model.safetensors"))
    print(f"exported {src} -> {out} as F16: {sum(v.size for v in t.values()):,} parameters, model.safetensors "
          f"{size:,} bytes ({size / 2**20:.2f} MiB); max |f16 - f32| = {worst:.3g}, {tiny} nonzero values flushed to 0")


def write_json(path, obj):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def write_folder_files(out, cfg, max_seq_length):
    """Everything except model.safetensors and vocab.txt (shared with tools/export_compact via import)."""
    write_json(os.path.join(out, "config.json"), cfg)
    write_json(os.path.join(out, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    write_json(os.path.join(out, "1_Pooling", "config.json"), {
        "word_embedding_dimension": cfg["hidden_size"], "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False})
    os.makedirs(os.path.join(out, "2_Normalize"), exist_ok=True)
    write_json(os.path.join(out, "sentence_bert_config.json"), {"max_seq_length": max_seq_length,
                                                                 "do_lower_case": False})
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]"}
    write_json(os.path.join(out, "tokenizer_config.json"), dict(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": cfg["max_position_embeddings"]},
        **specials))
    write_json(os.path.join(out, "special_tokens_map.json"), specials)
    write_json(os.path.join(out, "config_sentence_transformers.json"), {
        "__version__": {"sentence_transformers": "2.2.2", "transformers": "4.41.2", "pytorch": "2.0.1"},
        "prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--max-position", type=int, default=512)
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--vocab", default=DEFAULT_VOCAB)
    ap.add_argument("--glove-init", default="/work/pretrain/glove_init_128.npy",
                    help="float32 .npy [vocab, hidden] from tools/make_glove_init.py")
    ap.add_argument("--no-glove", action="store_true", help="random token embeddings (ablation)")
    ap.add_argument("--std", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export-from", metavar="TRAINED_DIR", help="export a trained F32 folder as F16 to --out")
    a = ap.parse_args()
    if a.export_from:
        export_f16(a.export_from, a.out, a.max_seq_length)
        return

    vocab = open(a.vocab, encoding="utf-8").read().split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    V, C, I, L, NH = len(vocab), a.hidden, a.intermediate, a.layers, a.heads
    if C % NH:
        die(f"--hidden {C} is not a multiple of --heads {NH}")
    rng = np.random.default_rng(a.seed)

    def normal(*shape):
        return rng.normal(0.0, a.std, shape).astype(np.float32)

    if a.no_glove:
        wte = normal(V, C)
        wte[0] = 0.0
    else:
        if not os.path.exists(a.glove_init):
            die(f"{a.glove_init}: no such file (run tools/make_glove_init.py --hidden {C} --out ...; or --no-glove)")
        wte = np.load(a.glove_init).astype(np.float32)
        if wte.shape != (V, C):
            die(f"{a.glove_init}: shape {wte.shape} but the model needs [{V}, {C}] (vocab {a.vocab}, --hidden)")
    t = {
        "embeddings.word_embeddings.weight": wte,
        "embeddings.position_embeddings.weight": normal(a.max_position, C),
        "embeddings.token_type_embeddings.weight": normal(2, C),
        "embeddings.LayerNorm.weight": np.ones(C, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(C, np.float32),
    }
    for l in range(L):
        p = f"encoder.layer.{l}."
        for n in ("query", "key", "value"):
            t[p + f"attention.self.{n}.weight"] = normal(C, C)
            t[p + f"attention.self.{n}.bias"] = np.zeros(C, np.float32)
        t[p + "attention.output.dense.weight"] = normal(C, C)
        t[p + "attention.output.dense.bias"] = np.zeros(C, np.float32)
        t[p + "attention.output.LayerNorm.weight"] = np.ones(C, np.float32)
        t[p + "attention.output.LayerNorm.bias"] = np.zeros(C, np.float32)
        t[p + "intermediate.dense.weight"] = normal(I, C)
        t[p + "intermediate.dense.bias"] = np.zeros(I, np.float32)
        t[p + "output.dense.weight"] = normal(C, I)
        t[p + "output.dense.bias"] = np.zeros(C, np.float32)
        t[p + "output.LayerNorm.weight"] = np.ones(C, np.float32)
        t[p + "output.LayerNorm.bias"] = np.zeros(C, np.float32)

    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), t, "F32")
    shutil.copyfile(a.vocab, os.path.join(a.out, "vocab.txt"))
    cfg = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": V, "hidden_size": C,
           "num_hidden_layers": L, "num_attention_heads": NH, "intermediate_size": I, "hidden_act": "gelu",
           "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": a.max_position,
           "type_vocab_size": 2, "initializer_range": a.std, "layer_norm_eps": 1e-12, "pad_token_id": 0,
           "position_embedding_type": "absolute", "torch_dtype": "float32"}
    write_folder_files(a.out, cfg, a.max_seq_length)
    n = sum(v.size for v in t.values())
    print(f"wrote {a.out}: {L} layers x {C} hidden x {NH} heads x {I} intermediate, {n:,} parameters "
          f"({n * 2 / 1e6:.2f} MB as F16), token embeddings {'random' if a.no_glove else a.glove_init}")


if __name__ == "__main__":
    main()
