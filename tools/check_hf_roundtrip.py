#!/usr/bin/python3
"""Check folders written by et_hf_save with plain torch + json (no transformers / safetensors /
sentence-transformers packages here): the safetensors file is parsed by hand exactly as the reference
loader validates it, tensor names/shapes must be those of a transformers BertModel for the config, the
values must equal torch's own conversion of the reference weights to the saved dtype (bit for bit),
and the sentence-transformers files must have the layout SentenceTransformer(dir) loads.

  ET_HF_SAVE_DIR=/tmp/hfsave build/test_hf          # writes /tmp/hfsave/good_{f32,f16_bert,bf16_plain}, good_f32.{F16,BF16}
  /usr/bin/python3 tools/check_hf_roundtrip.py /tmp/hfsave
or one folder against its source:  check_hf_roundtrip.py SAVED_DIR REFERENCE_DIR
"""
import json
import os
import struct
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64, "I64": torch.int64}
SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8}


def read_safetensors(path, strict=False):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert 8 + n <= len(blob), "%s: header length %d > file" % (path, n)
    raw = blob[8:8 + n]
    hdr = json.loads(raw)
    data = blob[8 + n:]
    if strict:
        assert n % 8 == 0, "%s: header length %d not a multiple of 8" % (path, n)
        assert raw.rstrip(b" ").endswith(b"}") and set(raw[len(raw.rstrip(b' ')):]) <= {32}, "%s: padding is not spaces" % path
        assert hdr.get("__metadata__") == {"format": "pt"}, "%s: __metadata__ %r" % (path, hdr.get("__metadata__"))
        # the reference loader wants the offsets to tile the data block exactly
        spans = sorted(tuple(v["data_offsets"]) for k, v in hdr.items() if k != "__metadata__")
        end = 0
        for b, e in spans:
            assert b == end, "%s: gap/overlap at %d (expected %d)" % (path, b, end)
            end = e
        assert end == len(data), "%s: data block %d bytes, tensors cover %d" % (path, len(data), end)
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        dt = TORCH_DT[v["dtype"]]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=dt) if e > b else torch.empty(0, dtype=dt)
        out[k] = (v["dtype"], t.reshape(v["shape"]))
    return out


def bert_model_keys(cfg, pooler):
    keys = {"embeddings.word_embeddings.weight": [cfg["vocab_size"], cfg["hidden_size"]],
            "embeddings.position_embeddings.weight": [cfg["max_position_embeddings"], cfg["hidden_size"]],
            "embeddings.token_type_embeddings.weight": [cfg["type_vocab_size"], cfg["hidden_size"]],
            "embeddings.LayerNorm.weight": [cfg["hidden_size"]], "embeddings.LayerNorm.bias": [cfg["hidden_size"]]}
    C, I = cfg["hidden_size"], cfg["intermediate_size"]
    for l in range(cfg["num_hidden_layers"]):
        p = "encoder.layer.%d." % l
        for m in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            keys[p + m + ".weight"] = [C, C]
            keys[p + m + ".bias"] = [C]
        for m in ("attention.output.LayerNorm", "output.LayerNorm"):
            keys[p + m + ".weight"] = [C]
            keys[p + m + ".bias"] = [C]
        keys[p + "intermediate.dense.weight"] = [I, C]
        keys[p + "intermediate.dense.bias"] = [I]
        keys[p + "output.dense.weight"] = [C, I]
        keys[p + "output.dense.bias"] = [C]
    if pooler:
        keys["pooler.dense.weight"] = [C, C]
        keys["pooler.dense.bias"] = [C]
    return keys


def load(d, name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def check(saved, ref):
    cfg, rcfg = load(saved, "config.json"), load(ref, "config.json")
    for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "hidden_dropout_prob",
              "attention_probs_dropout_prob", "pad_token_id", "hidden_act", "position_embedding_type"):
        assert cfg[k] == rcfg.get(k, cfg[k]), "config %s: %r vs %r" % (k, cfg[k], rcfg.get(k))
    assert cfg["model_type"] == "bert" and cfg["architectures"] == ["BertModel"]
    st = read_safetensors(os.path.join(saved, "model.safetensors"), strict=True)
    ref_st = read_safetensors(os.path.join(ref, "model.safetensors"))
    ref_st = {k[5:] if k.startswith("bert.") else k: v for k, v in ref_st.items()}
    pooler = "pooler.dense.weight" in ref_st
    want = bert_model_keys(cfg, pooler)
    assert set(st) == set(want), "names differ: extra %s missing %s" % (sorted(set(st) - set(want)), sorted(set(want) - set(st)))
    dtypes = {v[0] for v in st.values()}
    assert len(dtypes) == 1, dtypes
    dt = dtypes.pop()
    assert cfg["torch_dtype"] == {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dt]
    worst = 0.0
    for k, (_, t) in st.items():
        assert list(t.shape) == want[k], "%s shape %s" % (k, list(t.shape))
        r = ref_st[k][1].to(torch.float32).to(TORCH_DT[dt])  # torch's own rounding of the reference weights
        assert torch.equal(t.view(torch.int16 if dt != "F32" else torch.int32), r.view(torch.int16 if dt != "F32" else torch.int32)), \
            "%s: values differ from torch's %s conversion" % (k, dt)
        worst = max(worst, (t.float() - ref_st[k][1].float()).abs().max().item())
    # torch can use it as a state dict of the right shapes
    sd = {k: t.float() for k, (_, t) in st.items()}
    emb = torch.nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
    emb.load_state_dict({"weight": sd["embeddings.word_embeddings.weight"]})
    # sentence-transformers layout
    mods = load(saved, "modules.json")
    assert mods[0] == {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}, mods[0]
    assert mods[1] == {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}, mods[1]
    pool = load(saved, "1_Pooling/config.json")
    assert set(pool) <= {"word_embedding_dimension", "pooling_mode_cls_token", "pooling_mode_mean_tokens",
                         "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"}, pool
    assert pool["word_embedding_dimension"] == cfg["hidden_size"]
    norm = len(mods) == 3
    if norm:
        assert mods[2]["type"] == "sentence_transformers.models.Normalize" and os.path.isdir(os.path.join(saved, mods[2]["path"]))
    if os.path.exists(os.path.join(ref, "modules.json")):
        rmods = load(ref, "modules.json")
        rpool = load(ref, "1_Pooling/config.json")
        assert norm == any(m["type"].endswith("Normalize") for m in rmods)
        assert pool["pooling_mode_cls_token"] == rpool["pooling_mode_cls_token"]
        assert pool["pooling_mode_mean_tokens"] == rpool["pooling_mode_mean_tokens"]
    else:
        assert pool["pooling_mode_mean_tokens"] and not norm
    sb = load(saved, "sentence_bert_config.json")
    assert isinstance(sb["max_seq_length"], int) and sb["max_seq_length"] <= cfg["max_position_embeddings"]
    tok = load(saved, "tokenizer_config.json")
    assert tok["tokenizer_class"] == "BertTokenizer" and isinstance(tok["do_lower_case"], bool)
    load(saved, "special_tokens_map.json")
    load(saved, "config_sentence_transformers.json")
    assert open(os.path.join(saved, "vocab.txt"), "rb").read() == open(os.path.join(ref, "vocab.txt"), "rb").read()
    print("ok %s: %s, %d tensors, bit-identical to torch's %s conversion (max |diff| vs reference %.3g), pooling %s%s" % (
        saved, dt, len(st), dt, worst, "cls" if pool["pooling_mode_cls_token"] else "mean", " + normalize" if norm else ""))


def main(argv):
    if len(argv) == 3:
        check(argv[1], argv[2])
    elif len(argv) == 2:
        n = 0
        for name in sorted(os.listdir(argv[1])):
            ref = os.path.join(ROOT, "tests", "fixtures", "hf", name.split(".")[0])  # good_f32.F16 -> good_f32
            if os.path.isdir(ref):
                check(os.path.join(argv[1], name), ref)
                n += 1
        assert n, "no saved folders named like tests/fixtures/hf/* in %s" % argv[1]
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
