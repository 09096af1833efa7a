/* lora.h - LoRA adapters (Hu et al., arXiv 2106.09685) in PEFT's format: read, check, merge into the base.
 *
 * A LoRA adapter adds to a Linear layer y = x W^T + b the low-rank term  scale * (x A^T) B^T, with
 * A [r, in] (PEFT lora_A.weight), B [out, r] (lora_B.weight) and scale = lora_alpha / r (use_rslora:
 * lora_alpha / sqrt(r)). At inference the adapter is merged: W' = W + scale * B A (PEFT merge_and_unload), which
 * gives the same embeddings as applying the term at every call (up to float rounding).
 *
 * The folder (PEFT save_pretrained):
 *   adapter_config.json        {"peft_type": "LORA", "r", "lora_alpha", "target_modules", "lora_dropout", "bias",
 *                               "base_model_name_or_path", ...}
 *   adapter_model.safetensors  base_model.model.encoder.layer.{i}.attention.self.query.lora_A.weight, ...lora_B.weight
 * Linear layers an adapter may target (the module names of BertModel / XLMRobertaModel):
 *   encoder.layer.{i}.attention.self.query | .key | .value, encoder.layer.{i}.attention.output.dense,
 *   encoder.layer.{i}.intermediate.dense, encoder.layer.{i}.output.dense, pooler.dense (merged when the model keeps
 *   its pooler, else ignored: the pooler does not enter the embeddings).
 * Key names may carry "bert." / "roberta." after "base_model.model.". Refused with a message naming the field or
 * key: another peft_type, use_dora, bias other than "none", fan_in_fan_out, rank_pattern / alpha_pattern, an
 * A without its B, a shape that does not fit the model, a key naming another module (embeddings, an MoE layer's
 * intermediate.dense). */
#ifndef ET_LORA_H
#define ET_LORA_H

#include <stddef.h>

#include "bert.h"
#include "error.h"

/* the six encoder Linear layers in bert.h's order (ET_LIN_*), then the pooler */
enum { ET_LORA_Q = ET_LIN_Q, ET_LORA_K = ET_LIN_K, ET_LORA_V = ET_LIN_V, ET_LORA_AO = ET_LIN_AO, ET_LORA_I = ET_LIN_I,
       ET_LORA_O = ET_LIN_O, ET_LORA_POOLER = ET_LIN_N, ET_LORA_SITES };

typedef struct {
    int r;                 /* rank */
    double alpha;          /* lora_alpha */
    double dropout;        /* lora_dropout (training only; recorded) */
    int use_rslora;        /* scale = alpha / sqrt(r) instead of alpha / r */
    double scale;          /* the factor of B A */
    char base[1024];       /* base_model_name_or_path ("" if absent) */
} et_lora_config;

typedef struct {
    et_lora_config cfg;
    int n_layers;                           /* 1 + the highest layer index with an adapter */
    float *A[ET_MAX_LAYERS + 1][ET_LORA_SITES]; /* [r, in] owned; NULL = no adapter there (row ET_MAX_LAYERS: pooler) */
    float *B[ET_MAX_LAYERS + 1][ET_LORA_SITES]; /* [out, r] owned */
    int in[ET_MAX_LAYERS + 1][ET_LORA_SITES], out[ET_MAX_LAYERS + 1][ET_LORA_SITES];
    int n_modules;                          /* adapted Linear layers */
} et_lora_adapter;

/* 1 if dir holds adapter_config.json and no config.json (a folder that is an adapter, not a model). */
int et_lora_is_adapter_dir(const char *dir);

/* Read dir/adapter_config.json and dir/adapter_model.safetensors (F32, F16 or BF16). Errors name the file and the
 * field or tensor. et_lora_free releases it (also after a failed read). */
et_status et_lora_read(const char *dir, et_lora_adapter *a, et_error *err);
void et_lora_free(et_lora_adapter *a);

/* The base model folder of an adapter folder: base_model_name_or_path as an absolute folder, else relative to the
 * adapter folder, else to the working directory. ET_ERR_IO naming the value when none is a folder (a Hub name is
 * not downloaded: give the base yourself). */
et_status et_lora_base_dir(const char *adapter_dir, const et_lora_adapter *a, char *out, size_t cap, et_error *err);

/* W += scale * B A for every adapted layer of m (shapes checked against m first: on error m is unchanged);
 * bumps m->version (et_bert_params_changed). */
et_status et_lora_merge(et_bert *m, const et_lora_adapter *a, et_error *err);

/* Read the adapter folder dir and merge it into m (et_lora_read + et_lora_merge). */
et_status et_lora_apply_dir(et_bert *m, const char *dir, et_error *err);

/* ---- training (bert.h et_bert_lora_attach; train.h cfg.lora_rank) ---- */

/* --lora-targets: a comma-separated list of Linear layers, each by its short or its PEFT name:
 * q|query, k|key, v|value, o|attention.output.dense, ffn_in|intermediate.dense, ffn_out|output.dense; "all" = the six.
 * *sites gets bit ET_LORA_Q .. ET_LORA_O (= bert.h ET_LIN_*). ET_ERR_ARG naming an unknown entry. */
et_status et_lora_targets_parse(const char *s, unsigned *sites, et_error *err);
/* "q,v" etc. (short names, in ET_LIN order) */
void et_lora_targets_str(unsigned sites, char *out, size_t cap);

/* Write the adapters attached to m (m->lora) as a PEFT folder in dir (created if needed):
 *   adapter_config.json: peft_type "LORA", task_type "FEATURE_EXTRACTION", r, lora_alpha, lora_dropout, use_rslora,
 *     bias "none", target_modules (PEFT module names: ["query", "value"]; a regex when output.dense is adapted without
 *     attention.output.dense, which the name "output.dense" would also match), base_model_name_or_path (c->base),
 *     fan_in_fan_out false, init_lora_weights true, inference_mode true;
 *   adapter_model.safetensors: F32, base_model.model.encoder.layer.{i}.<module>.lora_A.weight [r, in] and
 *     .lora_B.weight [out, r].
 * c gives r, alpha, dropout, use_rslora and base (its scale must be m's). Each file is written atomically. */
et_status et_lora_save(const char *dir, const et_bert *m, const et_lora_config *c, et_error *err);

/* Copy an adapter read from a folder into m's attached adapters (resume): the same rank and the same adapted
 * Linear layers, else ET_ERR_MISMATCH naming the difference; m is unchanged on error. */
et_status et_lora_load_into(et_bert *m, const et_lora_adapter *a, et_error *err);

#endif
