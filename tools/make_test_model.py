#!/usr/bin/python3
"""Generate the small Hugging Face / sentence-transformers folders used by tests/test_hf.c.

Run with Debian's python (it has torch + numpy):  /usr/bin/python3 tools/make_test_model.py
Writes tests/fixtures/hf/:
  good_f32/        F32, names without 'bert.', pooler, modules.json mean pooling + Normalize,
                   sentence_bert_config max_seq_length 12, an I64 'embeddings.position_ids' buffer (ignored)
  good_f16_bert/   F16, names with 'bert.', pooler, cls.predictions.* heads (ignored), CLS pooling, no normalize,
                   tokenizer_config do_lower_case false, some f16 subnormals and -0.0
  good_bf16_plain/ BF16, plain BertModel folder (no modules.json -> mean, no normalize), no pooler
  each with expected.json: per tensor the shape, the float64 sum of the f32 values and sampled elements as
  f32 bit patterns (the f16/bf16 -> f32 values come from torch), plus the expected et_hf_info/config.
  conversion.json: f32 bit patterns and torch's f16 / bf16 roundings (round to nearest even) of each.
  bad/<case>/      small broken folders (1 layer, hidden 4, vocab 10); tests/test_hf.c lists the expected errors.
safetensors is written by hand (u64 LE header length, JSON header padded with spaces to 8 bytes, data),
as the reference implementation does; there is no `safetensors` package here.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "hf")

DT_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8}


def tensor_bytes(x, dtype):
    """x: float32 numpy array -> (raw little-endian bytes, the f32 values they decode to)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if dtype == "F32":
        y = t
    elif dtype == "F16":
        y = t.to(torch.float16)
    elif dtype == "BF16":
        y = t.to(torch.bfloat16)
    elif dtype == "F64":
        y = t.to(torch.float64)
    else:
        raise ValueError(dtype)
    raw = y.view(torch.int16 if dtype in ("F16", "BF16") else y.dtype).numpy().tobytes()
    return raw, y.to(torch.float32).numpy()


def write_safetensors(path, entries, metadata={"format": "pt"}, header_override=None, len_override=None, cut=None):
    """entries: list of (name, dtype, shape, raw bytes). Data laid out in the given order."""
    hdr = {}
    if metadata is not None:
        hdr["__metadata__"] = metadata
    off = 0
    for name, dt, shape, raw in entries:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = header_override if header_override is not None else json.dumps(hdr, separators=(",", ":"))
    h = h.encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    blob = struct.pack("<Q", len(h) if len_override is None else len_override) + h + b"".join(e[3] for e in entries)
    if cut is not None:
        blob = blob[:cut]
    with open(path, "wb") as f:
        f.write(blob)


def bert_tensors(cfg, pooler, rng):
    V, C, P, TV, I, L = (cfg["vocab_size"], cfg["hidden_size"], cfg["max_position_embeddings"], cfg["type_vocab_size"],
                         cfg["intermediate_size"], cfg["num_hidden_layers"])
    t = []

    def add(name, *shape, kind="w"):
        if kind == "ln_w":
            x = 1.0 + 0.1 * rng.standard_normal(shape)
        elif kind == "b":
            x = 0.05 * rng.standard_normal(shape)
        else:
            x = 0.2 * rng.standard_normal(shape)
        t.append((name, x.astype(np.float32)))

    add("embeddings.word_embeddings.weight", V, C)
    add("embeddings.position_embeddings.weight", P, C)
    add("embeddings.token_type_embeddings.weight", TV, C)
    add("embeddings.LayerNorm.weight", C, kind="ln_w")
    add("embeddings.LayerNorm.bias", C, kind="b")
    for l in range(L):
        p = "encoder.layer.%d." % l
        for nm in ("query", "key", "value"):
            add(p + "attention.self.%s.weight" % nm, C, C)
            add(p + "attention.self.%s.bias" % nm, C, kind="b")
        add(p + "attention.output.dense.weight", C, C)
        add(p + "attention.output.dense.bias", C, kind="b")
        add(p + "attention.output.LayerNorm.weight", C, kind="ln_w")
        add(p + "attention.output.LayerNorm.bias", C, kind="b")
        add(p + "intermediate.dense.weight", I, C)
        add(p + "intermediate.dense.bias", I, kind="b")
        add(p + "output.dense.weight", C, I)
        add(p + "output.dense.bias", C, kind="b")
        add(p + "output.LayerNorm.weight", C, kind="ln_w")
        add(p + "output.LayerNorm.bias", C, kind="b")
    if pooler:
        add("pooler.dense.weight", C, C)
        add("pooler.dense.bias", C, kind="b")
    return t


def config(V, C, L, NH, I, P, **kw):
    c = {
        "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": C, "initializer_range": 0.02, "intermediate_size": I,
        "layer_norm_eps": 1e-12, "max_position_embeddings": P, "model_type": "bert", "num_attention_heads": NH,
        "num_hidden_layers": L, "pad_token_id": 0, "position_embedding_type": "absolute", "torch_dtype": "float32",
        "transformers_version": "4.41.2", "type_vocab_size": 2, "use_cache": True, "vocab_size": V,
    }
    c.update(kw)
    return c


def vocab_lines(n):
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = ["the", "a", "of", "and", "to", "in", "is", "it", "that", "was", "for", "on", "are", "with", "as", "i", "his",
             "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "hot", "word", "but", "what", "some",
             "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an",
             "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them",
             "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has",
             "look", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my",
             "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been", "now", "find"]
    toks = special + ["##s", "##ing", "##ed", "."] + words
    return toks[:n]


def dump_json(path, obj, compact=False):
    with open(path, "w") as f:
        json.dump(obj, f, indent=None if compact else 2, separators=(",", ":") if compact else None)
        f.write("\n")


def f32_bits(v):
    return int(np.array([v], dtype=np.float32).view(np.uint32)[0])


def st_modules(d, pooling, normalize, C):
    mods = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        mods.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        os.makedirs(os.path.join(d, "2_Normalize"), exist_ok=True)
    dump_json(os.path.join(d, "modules.json"), mods)
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    dump_json(os.path.join(d, "1_Pooling", "config.json"), {
        "word_embedding_dimension": C, "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False, "include_prompt": True})


def make_good(name, dtype, prefix, pooler, pooling, normalize, seed, extras=(), sbert=None, tokcfg=None, specials=False):
    d = os.path.join(OUT, name)
    os.makedirs(d)
    V, C, L, NH, I, P = 100, 24, 2, 4, 48, 16
    cfg = config(V, C, L, NH, I, P, torch_dtype={"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype])
    dump_json(os.path.join(d, "config.json"), cfg)
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab_lines(V)) + "\n")
    rng = np.random.default_rng(seed)
    ts = bert_tensors(cfg, pooler, rng)
    if specials:  # f16 subnormals, -0.0, a tie, the largest half
        w = ts[0][1]
        w[0, :8] = [1e-6, -3e-7, 6.1e-5, -0.0, 5.96e-8, 1.0 + 2.0 ** -11, 65504.0 / 65536.0, 2.0 ** -24 * 1.5]
    entries, expect = [], {}
    for nm, x in ts:
        raw, dec = tensor_bytes(x, dtype)
        fname = ("bert." if prefix else "") + nm
        entries.append((fname, dtype, x.shape, raw))
        flat = dec.reshape(-1)
        idx = sorted(set([0, 1, len(flat) - 1, len(flat) // 2] + [int(i) for i in rng.integers(0, len(flat), 4)]))
        if specials and nm == "embeddings.word_embeddings.weight":
            idx = sorted(set(idx + list(range(8))))
        expect[nm] = {"shape": list(x.shape), "sum": float(flat.astype(np.float64).sum()),
                      "samples": [[i, f32_bits(flat[i])] for i in idx]}
    ignored = []
    for nm, dt, shape in extras:
        x = rng.standard_normal(shape).astype(np.float32)
        if dt == "I64":
            raw = np.arange(int(np.prod(shape)), dtype=np.int64).tobytes()
        else:
            raw, _ = tensor_bytes(x, dt)
        entries.append((nm, dt, shape, raw))
        ignored.append(nm)
    # the reference writer sorts by dtype then name; we shuffle a bit to check the reader does not care
    entries.sort(key=lambda e: (e[0].count("layer.1"), e[0]))
    write_safetensors(os.path.join(d, "model.safetensors"), entries)
    if pooling is not None:
        st_modules(d, pooling, normalize, C)
    if sbert is not None:
        dump_json(os.path.join(d, "sentence_bert_config.json"), sbert)
    if tokcfg is not None:
        dump_json(os.path.join(d, "tokenizer_config.json"), tokcfg)
    max_len = P
    if tokcfg and "model_max_length" in tokcfg:
        max_len = min(tokcfg["model_max_length"], P)
    if sbert and "max_seq_length" in sbert:
        max_len = min(sbert["max_seq_length"], P)
    lower = 1
    if tokcfg is not None and "do_lower_case" in tokcfg:
        lower = int(tokcfg["do_lower_case"])
    if sbert and sbert.get("do_lower_case"):
        lower = 1
    dump_json(os.path.join(d, "expected.json"), {
        "config": {"vocab_size": V, "hidden_size": C, "num_layers": L, "num_heads": NH, "intermediate_size": I,
                   "max_position": P, "type_vocab_size": 2, "has_pooler": int(pooler),
                   "pooling": 1 if pooling == "cls" else 0, "normalize": int(normalize)},
        "info": {"max_seq_length": max_len, "do_lower_case": lower, "has_modules": int(pooling is not None),
                 "src_dtype": dtype, "bert_prefix": int(prefix), "n_ignored": len(ignored), "ignored": ignored},
        "tensors": expect}, compact=True)


def make_conversion():
    vals = [0.0, -0.0, 1.0, -2.5, 0.1, 1.0 / 3.0, 65504.0, 65519.99, 65520.0, 1e6, -1e6, 6.1e-5, 6.0e-5, 5.96e-8,
            2.98e-8, 2.9802322e-8, 2.9802326e-8, 1e-10, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -8,
            1.0 + 3 * 2.0 ** -8, 3.0e38, -3.4e38, 1.17549435e-38, 1e-40, float("inf"), float("-inf"), float("nan")]
    rng = np.random.default_rng(7)
    vals += [float(v) for v in rng.standard_normal(40) * 10.0 ** rng.integers(-9, 6, 40)]
    x = torch.tensor(vals, dtype=torch.float32)
    rows = []
    for v32, h, b in zip(x.view(torch.int32).tolist(), x.to(torch.float16).view(torch.int16).tolist(),
                         x.to(torch.bfloat16).view(torch.int16).tolist()):
        rows.append([v32 & 0xFFFFFFFF, h & 0xFFFF, b & 0xFFFF])
    dump_json(os.path.join(OUT, "conversion.json"), {"f32_f16_bf16_bits": rows}, compact=True)


# ---------------------------------------------------------------- bad inputs

MV, MC, ML, MNH, MI, MP = 10, 4, 1, 2, 8, 4


def micro(case, cfg_over=None, cfg_drop=(), vocab_n=MV, tensors=None, st_kwargs=None, modules=True, pooling_cfg=None,
          modules_json=None, raw_config=None, no_vocab=False, no_st=False, extra_files=None):
    d = os.path.join(OUT, "bad", case)
    os.makedirs(d)
    cfg = config(MV, MC, ML, MNH, MI, MP)
    for k in cfg_drop:
        del cfg[k]
    cfg.update(cfg_over or {})
    if raw_config is not None:
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write(raw_config)
    else:
        dump_json(os.path.join(d, "config.json"), cfg)
    if not no_vocab:
        with open(os.path.join(d, "vocab.txt"), "w") as f:
            f.write("\n".join(vocab_lines(vocab_n)) + "\n")
    if tensors is None:
        tensors = good_micro_entries()
    if not no_st:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors, **(st_kwargs or {}))
    if modules:
        st_modules(d, "mean", True, MC)
    if pooling_cfg is not None:
        dump_json(os.path.join(d, "1_Pooling", "config.json"), pooling_cfg)
    if modules_json is not None:
        dump_json(os.path.join(d, "modules.json"), modules_json)
    for nm, content in (extra_files or {}).items():
        with open(os.path.join(d, nm), "wb") as f:
            f.write(content)


def good_micro_entries(seed=3):
    cfg = config(MV, MC, ML, MNH, MI, MP)
    rng = np.random.default_rng(seed)
    out = []
    for nm, x in bert_tensors(cfg, False, rng):
        raw, _ = tensor_bytes(x, "F32")
        out.append((nm, "F32", x.shape, raw))
    return out


def header_json(entries, mutate):
    """the header of `entries` as a dict, changed by mutate(dict), dumped."""
    hdr = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, dt, shape, raw in entries:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    mutate(hdr)
    return json.dumps(hdr, separators=(",", ":"))


def make_bad():
    E = good_micro_entries()
    total = sum(len(e[3]) for e in E)
    micro("ok")  # the control: must load
    micro("truncated_st", st_kwargs={"cut": -200})  # data cut short, header intact
    micro("header_len_too_big", st_kwargs={"len_override": 10 ** 6})
    micro("file_too_short", st_kwargs={"cut": 5})
    micro("header_bad_json", st_kwargs={"header_override": '{"embeddings.word_embeddings.weight": {"dtype": "F32",'})
    micro("header_not_object", st_kwargs={"header_override": "[1, 2, 3]"})
    E2 = [(n, "I64" if n == "embeddings.word_embeddings.weight" else dt, s, (r + r) if n == "embeddings.word_embeddings.weight" else r)
          for n, dt, s, r in E]
    micro("dtype_i64", tensors=E2)

    def set_dtype(h):
        h["embeddings.LayerNorm.bias"]["dtype"] = "Q4"
    micro("dtype_unknown", st_kwargs={"header_override": header_json(E, set_dtype)})
    micro("missing_tensor", tensors=[e for e in E if e[0] != "encoder.layer.0.output.dense.bias"])
    # intermediate.dense.weight [8, 4] stored as [6, 4], and the rest shifted accordingly
    E3 = [(n, dt, (6, 4), r[: 6 * 4 * 4]) if n == "encoder.layer.0.intermediate.dense.weight" else (n, dt, s, r) for n, dt, s, r in E]
    micro("wrong_shape", tensors=E3)

    def overlap(h):
        a = h["encoder.layer.0.attention.self.key.bias"]["data_offsets"]
        h["encoder.layer.0.attention.self.value.bias"]["data_offsets"] = [a[0] + 4, a[1] + 4]
    micro("offsets_overlap", st_kwargs={"header_override": header_json(E, overlap)})

    def out_of_range(h):
        h["pooler.dense.bias"] = {"dtype": "F32", "shape": [4], "data_offsets": [total, total + 16]}
    micro("offsets_out_of_range", st_kwargs={"header_override": header_json(E, out_of_range)})

    def size_mismatch(h):
        h["embeddings.LayerNorm.weight"]["shape"] = [3]
    micro("offsets_size_mismatch", st_kwargs={"header_override": header_json(E, size_mismatch)})

    def overflow(h):
        h["embeddings.LayerNorm.weight"]["shape"] = [2 ** 32, 2 ** 32, 2 ** 32]
    micro("shape_overflow", st_kwargs={"header_override": header_json(E, overflow)})
    hj = header_json(E, lambda h: None)
    dup = hj[:-1] + ',"embeddings.LayerNorm.bias":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    micro("duplicate_name", st_kwargs={"header_override": dup})
    micro("config_missing_hidden", cfg_drop=("hidden_size",))
    micro("config_hidden_string", cfg_over={"hidden_size": "4"})
    micro("config_relu", cfg_over={"hidden_act": "relu"})
    micro("config_distilbert", cfg_over={"model_type": "distilbert"})
    micro("config_bad_json", raw_config='{"vocab_size": 10,\n "hidden_size": 4\n "num_hidden_layers": 1}\n')
    micro("config_heads", cfg_over={"num_attention_heads": 3})
    micro("vocab_mismatch", vocab_n=9)
    micro("missing_vocab", no_vocab=True)
    micro("pooling_max", pooling_cfg={"word_embedding_dimension": MC, "pooling_mode_cls_token": False,
                                      "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True})
    micro("pooling_dim", pooling_cfg={"word_embedding_dimension": 8, "pooling_mode_mean_tokens": True})
    micro("modules_dense", modules_json=[
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}])
    # an extra layer the config does not describe
    cfg2 = config(MV, MC, 2, MNH, MI, MP)
    E4 = [(n, "F32", x.shape, tensor_bytes(x, "F32")[0]) for n, x in bert_tensors(cfg2, False, np.random.default_rng(5))]
    micro("extra_layer", tensors=E4)
    E5 = [(n, dt, s, (struct.pack("<f", float("nan")) + r[4:]) if n == "encoder.layer.0.output.LayerNorm.weight" else r)
          for n, dt, s, r in E]
    micro("nan_weight", tensors=E5)
    micro("pytorch_bin_only", no_st=True, extra_files={"pytorch_model.bin": b"PK\x03\x04"})


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    make_good("good_f32", "F32", prefix=False, pooler=True, pooling="mean", normalize=True, seed=1,
              extras=[("embeddings.position_ids", "I64", (1, 16))],
              sbert={"max_seq_length": 12, "do_lower_case": False}, tokcfg={"do_lower_case": True, "model_max_length": 512})
    make_good("good_f16_bert", "F16", prefix=True, pooler=True, pooling="cls", normalize=False, seed=2,
              extras=[("cls.predictions.bias", "F16", (100,)), ("cls.predictions.transform.dense.weight", "F16", (24, 24))],
              tokcfg={"do_lower_case": False, "tokenizer_class": "BertTokenizer"}, specials=True)
    make_good("good_bf16_plain", "BF16", prefix=False, pooler=False, pooling=None, normalize=False, seed=3)
    make_conversion()
    make_bad()
    total = 0
    for dp, _, fs in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    print("wrote %s (%d bytes)" % (OUT, total))


if __name__ == "__main__":
    sys.exit(main())
