/* bert.h - the BERT encoder: configuration, parameters in ONE contiguous buffer with a table of
 * named views (Hugging Face BertModel names), and the forward/backward passes.
 *
 * Shapes: V vocab, P max positions, TV token types, C hidden, L layers, NH heads, I intermediate.
 * HF Linear weights are [out, in]. */
#ifndef ET_BERT_H
#define ET_BERT_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "moe.h"
#include "kernels_int8.h"
#include "threads.h"

#define ET_MAX_LAYERS 64
#define ET_NAME_MAX 128

typedef enum { ET_POOL_MEAN = 0, ET_POOL_CLS = 1 } et_pooling;

typedef struct {
    int vocab_size;        /* V  */
    int hidden_size;       /* C  */
    int num_layers;        /* L  */
    int num_heads;         /* NH */
    int intermediate_size; /* I  */
    int max_position;      /* P  */
    int type_vocab_size;   /* TV */
    float layer_norm_eps;
    float hidden_dropout;  /* hidden_dropout_prob */
    float attn_dropout;    /* attention_probs_dropout_prob */
    int pad_token_id;
    int arch;              /* ET_ARCH_BERT (0), ET_ARCH_ROBERTA, ET_ARCH_XLMR: config.json model_type and the tensor prefix */
    int position_offset;   /* token t uses position row t + position_offset: 0 for BERT; RoBERTa / XLM-R count
                              positions from padding_idx + 1 (pad_token_id + 1), as create_position_ids_from_input_ids
                              does for right-padded rows (padding rows use other positions there: masked, no effect) */
    int has_pooler;        /* pooler.dense present in the file (kept and saved back, unused) */
    et_pooling pooling;    /* from 1_Pooling/config.json; mean by default */
    int normalize;         /* L2-normalize the pooled output (sentence-transformers Normalize) */
    /* Mixture of experts in the FFN up-projection (src/moe.h; CLP paper section 3). All zero = dense:
     * a zero-initialised config is the plain BertModel, exactly as before these fields existed. */
    int moe_experts;          /* E: 0 = dense; else experts in every MoE layer (1..ET_MOE_MAX_EXPERTS) */
    uint64_t moe_layer_mask;  /* bit l set = layer l is MoE; 0 (with moe_experts > 0) = all layers */
    int moe_gate_scale;       /* 1: h = p_top * Expert(x) (Switch; the router gets a gradient);
                                 0: h = Expert(x) (the authors' code; the router never learns);
                                 2: straight-through (forward as 0, router gradient as 1; moe.h) */
    float moe_aux_weight;     /* alpha of the Switch load-balancing loss alpha*E*sum_e f_e*P_e (0 = off) */
    float moe_jitter;         /* eps: router input * U(1-eps, 1+eps) while training with dropout (0 = off) */
    /* LoRA adapters attached for training (et_bert_lora_attach; all zero = none). Not read from or written to
     * config.json; the activations plan the adapters' scratch from lora_rank. */
    int lora_rank;            /* r */
    unsigned lora_sites;      /* bit j = Linear j (ET_LIN_Q .. ET_LIN_O) of every layer has an adapter */
    float lora_scale;         /* alpha / r (rsLoRA: alpha / sqrt(r)) */
    float lora_dropout;       /* dropout on the adapter's input while training with dropout (PEFT lora_dropout) */
    /* Activation checkpointing per layer (training acts only; not in config.json; 0 = off): the activations keep
     * each layer's input [B,T,C] and ONE layer's set of saved tensors shared by all layers; et_bert_backward
     * re-runs layer l's forward from its kept input (same kernels, pool and dropout seeds, so the same bits)
     * before layer l's backward. Gradients are bit for bit those without it; a step costs one more forward of
     * layers 0..L-2. Not with MoE layers (their routing statistics are counted in the forward). */
    int act_checkpoint;
} et_bert_config;

/* The six Linear layers of an encoder layer (the order of et_bert_layer_params' lora_A / lora_B and of
 * lora.h's ET_LORA_Q ...): attention.self.query, .key, .value, attention.output.dense, intermediate.dense,
 * output.dense. */
enum { ET_LIN_Q = 0, ET_LIN_K, ET_LIN_V, ET_LIN_AO, ET_LIN_I, ET_LIN_O, ET_LIN_N };


enum { ET_ARCH_BERT = 0, ET_ARCH_ROBERTA = 1, ET_ARCH_XLMR = 2 };

/* The longest sequence (tokens, incl. [CLS]/[SEP]) the position table serves. */
static inline int et_bert_max_tokens(const et_bert_config *c) { return c->max_position - c->position_offset; }

/* 1 if layer l of cfg is a mixture-of-experts layer. */
static inline int et_bert_layer_is_moe(const et_bert_config *c, int l) {
    return c->moe_experts > 0 && l >= 0 && l < 64 && (c->moe_layer_mask == 0 || ((c->moe_layer_mask >> l) & 1u));
}

/* Pointers into a parameter (or gradient) buffer; the same struct serves both, llm.c style. */
typedef struct {
    float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* [C,C], [C] */
    float *ao_w, *ao_b;                        /* attention.output.dense [C,C], [C] */
    float *ln1_w, *ln1_b;                      /* attention.output.LayerNorm [C] */
    float *i_w, *i_b;                          /* intermediate.dense [I,C], [I] */
    float *o_w, *o_b;                          /* output.dense [C,I], [C] */
    float *ln2_w, *ln2_b;                      /* output.LayerNorm [C] */
    /* MoE layers only (then i_w = i_b = NULL); NULL in dense layers. Keep this struct all float*. */
    float *moe_gate;                           /* intermediate.dense.gate.weight [E,C] */
    float *moe_w;                              /* intermediate.dense.experts.{j}.weight: [E,I,C], expert j at j*I*C */
    float *moe_b;                              /* intermediate.dense.experts.{j}.bias: [E,I], expert j at j*I */
    /* LoRA (et_bert_lora_view): Linear j (ET_LIN_*) gets y += scale * dropout(x) @ lora_A[j]^T @ lora_B[j]^T,
     * lora_A[j] [r, in] (PEFT lora_A.weight), lora_B[j] [out, r] (lora_B.weight); NULL = no adapter there.
     * They point into the adapters' own buffer (et_bert.lora), never into the base parameters. */
    float *lora_A[ET_LIN_N], *lora_B[ET_LIN_N];
} et_bert_layer_params;

typedef struct {
    float *wte;               /* embeddings.word_embeddings.weight [V,C] */
    float *wpe;               /* embeddings.position_embeddings.weight [P,C] */
    float *wtt;               /* embeddings.token_type_embeddings.weight [TV,C] */
    float *emb_ln_w, *emb_ln_b; /* embeddings.LayerNorm [C] */
    et_bert_layer_params layer[ET_MAX_LAYERS];
    float *pool_w, *pool_b;   /* pooler.dense [C,C], [C]; NULL unless has_pooler */
} et_bert_params;

/* One named tensor of the model, as stored in model.safetensors (without the "bert." prefix). */
typedef struct {
    char name[ET_NAME_MAX];
    int ndim;
    int64_t shape[2];
    size_t offset; /* in floats, into the parameter buffer */
    size_t numel;
} et_tensor_view;

/* Validate a config (positive sizes, C % NH == 0, L <= ET_MAX_LAYERS, ...). */
et_status et_bert_config_check(const et_bert_config *cfg, et_error *err);

/* The table of tensors for a config, in a fixed order. Returns the count; writes at most `max`
 * entries to `out` (out may be NULL to count). total_floats receives the buffer size. */
int et_bert_tensor_table(const et_bert_config *cfg, et_tensor_view *out, int max, size_t *total_floats);

/* Point `p` at the tensors inside `base` (a buffer of total_floats floats). */
void et_bert_params_view(const et_bert_config *cfg, float *base, et_bert_params *p);

typedef struct {
    et_bert_config cfg;
    float *params;     /* one contiguous buffer */
    size_t n_params;   /* floats */
    et_tensor_view *tensors;
    int n_tensors;
    et_bert_params w;  /* views into params */
    int int8;          /* inference in int8 (kernels_int8.h): the encoder's Linear layers run with per-channel int8
                          weights and per-row int8 activations (embeddings, attention, LayerNorm, GELU stay
                          fp32); training ignores it. Set by the caller (--int8) or by loading an int8
                          export (hf.h). Inference acts quantize the weights at the first such forward. */
    uint64_t version;  /* changes whenever params are written (et_bert_params_changed): caches of derived
                          data (the inference acts' packed weights) key on it; unique per et_bert_alloc */
    float *lora;       /* LoRA adapters (et_bert_lora_attach): ONE buffer of n_lora floats, owned; w.layer[l].lora_A /
                          lora_B are views into it. NULL = no adapters */
    size_t n_lora;
} et_bert;

/* Allocate a model with zeroed parameters for `cfg`. */
et_status et_bert_alloc(et_bert *m, const et_bert_config *cfg, et_error *err);
/* Every writer of m->params calls this after (or before) writing, before the next forward: it bumps
 * m->version, so no cache built from the old values is used (the loaders, the trainer's optimizer
 * step and resume, the MoE conversion do). Writing without it leaves stale packed weights in
 * inference acts that already ran a forward. */
void et_bert_params_changed(et_bert *m);
void et_bert_free(et_bert *m);
/* Find a tensor by HF name (with or without "bert."); NULL if absent. */
const et_tensor_view *et_bert_find(const et_bert *m, const char *name);

/* ==== LoRA adapters in the forward and backward (Hu et al. 2021; PEFT's LoraLayer) ==================
 * Adapted Linear j of every layer: y[N,out] = x @ W^T + b + scale * (dropout(x)[N,in] @ A^T)[N,r] @ B^T.
 * The adapters' buffer: per layer l (in order), per adapted site j (in ET_LIN order): A [r, in] then B [out, r].
 * The base stays as it is (frozen while training: no gradient, no optimizer state; train.h). */

/* Floats of the adapters' buffer for rank r on `sites` (bit j = ET_LIN j) of every layer (0 if r < 1 or no site). */
size_t et_bert_lora_floats(const et_bert_config *cfg, int r, unsigned sites);
/* Point p->layer[l].lora_A[j] / lora_B[j] into base (a buffer of et_bert_lora_floats floats); the other lora
 * pointers become NULL, nothing else in p changes. The same call makes the gradients' view. */
void et_bert_lora_view(const et_bert_config *cfg, int r, unsigned sites, float *base, et_bert_params *p);
/* Attach adapters to m: allocate m->lora, set m->cfg.lora_* (scale alpha / r, or alpha / sqrt(r) with rslora),
 * point m->w's views at it. A as PEFT initialises it (nn.init.kaiming_uniform_(a = sqrt(5)): U(-1/sqrt(in),
 * 1/sqrt(in))), drawn from an et_rng seeded with `seed` (layers, then sites, row-major); B = 0, so the model
 * computes what it did before. Refused: r < 1, no site, a site outside ET_LIN, intermediate.dense of an MoE
 * layer, adapters already attached. Inference acts allocated BEFORE this call have no adapter scratch: allocate
 * activations after attaching. */
et_status et_bert_lora_attach(et_bert *m, int r, double alpha, int rslora, double dropout, unsigned sites,
                              uint64_t seed, et_error *err);
/* Free the adapters and clear m->cfg.lora_* (the model computes the base again). */
void et_bert_lora_detach(et_bert *m);
/* The forward / backward of the adapter of Linear j alone (exposed for tests; the blocks call them):
 * forward: y[N,OC] += scale * dropout_p(x)[N,IC] @ A^T @ B^T with the mask of `seed` (p = 0: none);
 * backward: dA [r,IC] += du^T @ dropout_p(x), dB [OC,r] += scale * dy^T @ (dropout_p(x) @ A^T) (either may be
 * NULL), dx [N,IC] += dropout_p'(du @ A) (NULL = skip) with du = scale * dy @ B.
 * Scratch: xs [N*IC] (only when p > 0), u [N*r], du [N*r]. */
void et_bert_lora_forward(et_pool *pool, float *y, const float *x, const float *A, const float *B, float *xs,
                          float *u, int N, int IC, int OC, int r, float scale, float p, uint64_t seed);
void et_bert_lora_backward(et_pool *pool, float *dx, float *dA, float *dB, const float *dy, const float *x,
                           const float *A, const float *B, float *xs, float *u, float *du, int N, int IC, int OC,
                           int r, float scale, float p, uint64_t seed);

/* ==== Activations (llm.c style): ONE buffer sized up front for (B_max, T_max) ================
 * Inference keeps two ping-pong hidden buffers + per-layer scratch shared by all layers.
 * Training keeps, per layer, what backward needs: q, k, v, the attention output, the softmax row
 * stats [B,NH,T,2] (not the [B,NH,T,T] probabilities: backward recomputes them from q, k), the two
 * LayerNorms' xhat and rstd (not their inputs, nor h1 and the layer output: backward recomputes
 * those as xhat * w + b with the forward's own arithmetic), and the pre-GELU values (the GELU
 * output is recomputed: one erf pass). Dropout masks are NOT kept (counter-based, et_dropout_keep,
 * recomputed in backward from the step seed). Backward scratch: 8 [B,T,C] + 1 [B,T,I] buffers.
 * Per layer that is 7 [B,T,C] + 1 [B,T,I] + 2 NH*T [B,T] floats (MiniLM-L6 at 32 x 128: 481 MB of
 * activations for the documents' side of a train step, was 718 MB). With cfg.act_checkpoint that per-layer set
 * is planned once, and each layer keeps only its input [B,T,C] (et_bert_config.act_checkpoint).
 * Kernel workspace: the attention kernels' is part of this buffer (att_scratch); the GEMMs' is the
 * pool's per-thread scratch, which et_bert_forward / et_bert_backward reserve before running any
 * kernel (et_pool_reserve: an allocation the first time a pool is used, out of memory returned as
 * ET_ERR_NOMEM; call it yourself after et_bert_acts_alloc to fail even earlier). With a NULL pool they
 * run on the activations' own one-thread pool (`serial`). Nothing else is allocated inside
 * forward/backward (inference acts: see wpack below), and no kernel changes algorithm for lack of
 * memory (kernels.h). */
typedef struct {
    float *inp;                 /* [B,T,C] layer input (= previous layer's out / embeddings out) */
    float *q, *k, *v;           /* [B,T,C] */
    float *att;                 /* [B,NH,T,T] softmax probabilities before dropout; NULL at inference and
                                   in et_bert_acts_alloc's training acts (they keep att_rs instead) */
    float *att_rs;              /* [B,NH,T,2] softmax row stats (kernels.h et_attention_forward_rs): when set
                                   (and att is NULL) backward recomputes the probabilities from q, k */
    const int32_t *att_mask;    /* the key mask the attention forward saw (set by the block forward) */
    /* packed batches (et_bert_forward_packed sets them; NULL / 0 = padded [B,T]): the block functions,
     * called with B = 1 and T = N rows, run attention per sequence: sequence b is rows
     * [seq_off[b], seq_off[b+1]), seq_n sequences, seq_T the longest (kernels.h packed batches) */
    const int32_t *seq_off;
    int seq_n, seq_T;
    float *atty;                /* [B,T,C] attention output before attention.output.dense */
    float *ln1_in;              /* [B,T,C] inp + dropout(atty @ ao_w^T + ao_b) */
    float *ln1_mean, *ln1_rstd; /* [B,T]; NULL at inference (training acts: ln1_mean NULL, see ln1_xhat) */
    float *ln1_xhat;            /* [B,T,C] training: (ln1_in - mean) * rstd, kept INSTEAD of ln1_in and h1
                                   (then ln1_in, h1 are transient: h1 is recomputed in backward as
                                   ln1_xhat * ln1_w + ln1_b, kernels.h et_layernorm_affine); NULL otherwise */
    float *h1;                  /* [B,T,C] attention.output.LayerNorm output = FFN input */
    float *fch;                 /* [B,T,I] intermediate.dense output (pre-GELU) */
    float *fch_gelu;            /* [B,T,I] GELU output (training: transient scratch, recomputed) */
    float *ln2_in;              /* [B,T,C] h1 + dropout(fch_gelu @ o_w^T + o_b) */
    float *ln2_mean, *ln2_rstd; /* [B,T]; NULL at inference (training acts: ln2_mean NULL, see ln2_xhat) */
    float *ln2_xhat;            /* [B,T,C] training: as ln1_xhat for output.LayerNorm; out is then transient
                                   (two buffers ping-pong between layers; the backward recomputes the input
                                   of layer l from layer l-1's ln2_xhat, so after et_bert_backward `hidden`
                                   and the layer outputs are no longer the last forward's) */
    float *out;                 /* [B,T,C] output.LayerNorm output = layer output */
    et_moe_acts moe;            /* MoE layers only; fch is the (gate-scaled) expert output */
    /* inference only: q, k, v, ao, i (dense layers), o weights prepacked for the GEMM (kernels.h
     * et_linear_pack), set by et_bert_forward; NULL = pack per call (training, or set to NULL yourself
     * when calling the block functions directly) */
    const float *wpack[6];
    int bf16;                   /* the six Linear layers' GEMMs (forward and backward) in bf16 (kernels.h
                                   et_linear_forward_bf16 ...; MoE experts and attention stay fp32): set for
                                   all layers by et_bert_acts_set_bf16; 0 = fp32 */
    /* inference in int8 (et_bert.int8): the same six weights quantized (kernels_int8.h), set by et_bert_forward;
     * NULL = fp32 */
    const et_q8_matrix *q8[6];
    void *q8work;               /* et_q8_work_bytes(B_max * T_max, max(C, I)) bytes for those (NULL = fp32) */
    /* LoRA scratch shared by all layers (cfg.lora_rank > 0; NULL otherwise): lora_x [B,T,in] (in: I when
     * output.dense has an adapter, else C) the dropped-out
     * adapter input (training with lora_dropout > 0), lora_u / lora_du [B,T,r] (lora_du: training only). Nothing
     * of the adapters is kept between forward and backward: backward recomputes x @ A^T (r multiply-adds per input) */
    float *lora_x, *lora_u, *lora_du;
    float lora_drop;            /* the adapter-input dropout of the last forward (0 = none) */
} et_bert_layer_acts;

/* Backward scratch (training only); every buffer is overwritten as needed. */
typedef struct {
    float *dres_a, *dres_b;            /* [B,T,C] ping-pong dL/d(residual stream) */
    float *dh1, *dln, *datty, *dq, *dk, *dv; /* [B,T,C] */
    float *g;                          /* [B,T,I] recomputed GELU output, then dL/d(GELU output), then dL/dfch */
    float *dg;                         /* [B,T,I] MoE models only: grouped scratch of et_moe_backward */
    float *att;                        /* attention kernel scratch (= et_bert_acts.att_scratch) */
    float *dpool;                      /* [B,C] dL/d(pooled before normalize) */
} et_bert_bwd_scratch;

typedef struct {
    int B_max, T_max, training, nthreads;
    size_t bytes;             /* size of mem */
    float *mem;               /* the one buffer */
    /* embeddings */
    float *emb_ln_in;         /* [B,T,C] word+position+type sum (LayerNorm input) */
    float *emb_mean, *emb_rstd; /* [B,T]; NULL at inference */
    et_bert_layer_acts layer[ET_MAX_LAYERS]; /* layer[0].inp = embeddings output */
    float *att_scratch;       /* [nthreads * et_attention_scratch_floats(T, C, NH)]: the attention kernels'
                                 whole workspace (kernels.h), planned with the activations */
    et_bert_bwd_scratch bwd;  /* zeroed pointers unless training */
    /* outputs of the last forward */
    float *hidden;            /* [B,T,C] last hidden state (= layer[L-1].out) */
    float *pooled_raw;        /* [B,C] pooled, before L2 normalize */
    float *pool_norm;         /* [B] ||pooled_raw|| (if normalize) */
    float *pooled;            /* [B,C] final embedding (normalized if cfg.normalize) */
    /* what the last forward saw (copied; backward replays it) */
    int B, T, have_forward, dropout;
    int packed;               /* the last forward was et_bert_forward_packed: B sequences, N rows */
    int N;                    /* rows of the last forward: B*T padded, sum of lengths packed */
    int32_t *seq_off;         /* [B_max+1] packed: sequence offsets of the last forward */
    uint64_t seed;
    et_pooling pooling;
    int normalize;
    int32_t *ids, *mask, *type_ids; /* [B_max*T_max] copies (type_ids all 0 if NULL was given) */
    float moe_aux_scale;      /* MoE: the aux-loss gradient is scaled by this (set 1 by acts_alloc; a trainer
                                 sets its loss grad_scale, e.g. 1/grad_accum) */
    /* Inference acts only: the model's Linear weights packed for the GEMM once (at the first forward,
     * a separate allocation of about the size of the encoder's Linear weights, freed by
     * et_bert_acts_free) and reused by every later forward, so a small batch does not repack
     * ~10 M weights per call. Repacked when the model (params pointer), the SIMD path or the
     * parameters' version (et_bert.version: every writer calls et_bert_params_changed) changes. If the
     * allocation fails, weights are packed per call (the same bits: kernels.h). */
    float *wpack;
    size_t wpack_floats;      /* capacity of wpack */
    uint64_t wpack_key;       /* key of what was packed: params pointer, path, version (0 = nothing) */
    /* Inference acts with et_bert.int8: the Linear weights quantized once (kernels_int8.h), keyed like wpack, with
     * the activation work buffer; freed by et_bert_acts_free. */
    et_q8_matrix *q8;         /* [L * 6] (unused slots zeroed) */
    int q8_count;
    uint64_t q8_key;
    void *q8work;
    et_pool *serial;          /* one-thread pool used when forward/backward get a NULL pool (owned) */
    int lora_rank;            /* the LoRA rank the scratch was planned for (cfg.lora_rank at allocation) */
    int lora_drop_ok;         /* training acts planned with adapter-input dropout scratch (cfg.lora_dropout > 0) */
    int base_frozen;          /* training acts planned with LoRA adapters (cfg.lora_rank > 0): the base is frozen, so the
                                 embeddings' LayerNorm input and the attention output (unless attention.output.dense
                                 has an adapter) are not kept: [B,T,C] * (1 + L) floats fewer; et_bert_backward refuses
                                 the embeddings' and attention.output.dense.weight's gradients on these acts */
    int checkpoint;           /* training acts planned with cfg.act_checkpoint: layer[l].inp is kept per layer, every
                                 other saved tensor of layer[l] points into one set shared by all layers (the last
                                 forward's top layer), and et_bert_backward recomputes layer l from layer[l].inp */
    int shared;               /* training acts whose transient part lives in a caller's region (et_bert_acts_alloc_shared) */
} et_bert_acts;

/* Bytes et_bert_acts_alloc would allocate (so callers can refuse a too-large batch first).
 * nthreads = the size of the pool that forward/backward will be given (<= 0: et_cpu_count()). */
size_t et_bert_acts_bytes(const et_bert_config *cfg, int B, int T, int training, int nthreads);
et_status et_bert_acts_alloc(et_bert_acts *a, const et_bert_config *cfg, int B, int T, int training,
                             int nthreads, et_error *err);
void et_bert_acts_free(et_bert_acts *a);
/* Training acts that share their transient part with other acts (a trainer's text groups): the attention kernels'
 * and backward's scratch, the layer outputs, the LoRA scratch and, with cfg.act_checkpoint, the one saved layer set
 * live in `shared` (the caller's, 64-byte aligned, at least et_bert_acts_shared_bytes(cfg, B, T, nthreads); it
 * outlives the acts), the rest in the acts' own buffer of et_bert_acts_bytes - et_bert_acts_shared_bytes bytes
 * (a->bytes). Nothing the backward reads is left in the region by the forward (checkpointed acts recompute every
 * layer, the top one too), so acts sharing one region may run their forwards in turn and then their backwards in
 * turn (any order), with the same gradients bit for bit as unshared acts. Not with MoE (0 bytes; refused). */
size_t et_bert_acts_shared_bytes(const et_bert_config *cfg, int B, int T, int nthreads);
et_status et_bert_acts_alloc_shared(et_bert_acts *a, const et_bert_config *cfg, int B, int T, int nthreads,
                                    float *shared, size_t shared_bytes, et_error *err);
/* bf16 mixed precision (training --precision bf16): on = 1 runs the Linear layers' GEMMs of every later
 * forward/backward on `a` with bf16 operands and fp32 accumulation (kernels.h); the parameters, their
 * gradients, the activations, LayerNorm, softmax, GELU and the loss stay fp32. on = 0: fp32, bit for bit
 * as acts that never had it. */
void et_bert_acts_set_bf16(et_bert_acts *a, int on);
/* Bytes of the packed weights inference acts add at their first forward (on top of
 * et_bert_acts_bytes; for the current SIMD path). */
size_t et_bert_acts_packed_bytes(const et_bert_config *cfg);
/* Forget the packed weights of inference acts (the next forward repacks). */
void et_bert_acts_drop_packed(et_bert_acts *a);

/* Reserve the pool scratch the kernels need (the GEMMs' packing buffers, kernels.h), for any batch:
 * an allocation the first time, then nothing. et_bert_forward / et_bert_backward call it; call it
 * yourself after allocating activations to report out of memory before the first step. */
et_status et_bert_reserve(et_pool *pool, et_error *err);

/* Full forward: ids/mask/type_ids [B,T] (mask NULL = all real; type_ids NULL = all 0).
 * embeddings -> LN -> dropout -> L x (attention block, FFN block) -> a->hidden [B,T,C]
 * -> pooling (m->cfg.pooling) -> L2 normalize (m->cfg.normalize) -> a->pooled [B,C]; also copied
 * to pooled_out [B,C] when not NULL. Dropout (hidden_dropout after embeddings LN, attention output
 * dense and FFN output dense; attn_dropout on the probabilities) only if a->training && dropout;
 * the masks are a function of `seed` (pass a new seed per step). Validates B<=B_max, T<=T_max,
 * T<=max_position, ids in [0,V), type_ids in [0,TV), mask in {0,1}. */
et_status et_bert_forward(const et_bert *m, et_bert_acts *a, et_pool *pool, const int32_t *ids,
                          const int32_t *mask, const int32_t *type_ids, int B, int T,
                          float *pooled_out, int dropout, uint64_t seed, et_error *err);

/* Packed forward: B sequences of lens[b] tokens (1 <= lens[b] <= T_max of the acts) concatenated
 * WITHOUT padding: ids/type_ids [N] (N = sum of lens <= B_max * T_max; type_ids NULL = all 0), B <=
 * B_max. Every Linear / LayerNorm / GELU runs on the N real rows only; attention per sequence
 * (kernels.h packed batches); pooling per sequence. The same embeddings as et_bert_forward on the
 * length-padded batch to float rounding (the softmax sums may round differently; the Linear rows are
 * computed by the same code); with dropout the masks are other draws (counters of the packed layout).
 * et_bert_backward then replays it (a->packed); a->hidden is [N,C]. */
et_status et_bert_forward_packed(const et_bert *m, et_bert_acts *a, et_pool *pool, const int32_t *ids,
                                 const int32_t *type_ids, const int32_t *lens, int B, float *pooled_out,
                                 int dropout, uint64_t seed, et_error *err);

/* Full backward of the last et_bert_forward on `a` (training acts), given dpooled [B,C] =
 * dL/d(a->pooled). ACCUMULATES (+=) into the gradient tensors of `grads` (a view made with
 * et_bert_params_view over a buffer of n_params floats). A NULL pointer in `grads` means "frozen":
 * that gradient is skipped, and backprop stops below the lowest tensor that still wants one. */
et_status et_bert_backward(const et_bert *m, et_bert_acts *a, et_pool *pool, const float *dpooled,
                           const et_bert_params *grads, et_error *err);

/* ---- the pieces (exposed for tests); B,T,C,I,NH as above. Backwards accumulate (+=) into
 * parameter gradients (NULL = skip) and into the named input gradient (NULL = skip). ---- */

/* ln_in[B,T,C] = wte[ids] + wpe[t] + wtt[type]; out[B,T,C] = dropout_p(LN(ln_in)).
 * mean/rstd [B,T] may be NULL (inference). */
void et_bert_embeddings_forward(et_pool *pool, const et_bert_config *cfg, const et_bert_params *w,
                                float *out, float *ln_in, float *mean, float *rstd,
                                const int32_t *ids, const int32_t *type_ids, int B, int T,
                                float drop_p, uint64_t seed);
/* dout [B,T,C] is CLOBBERED (the dropout mask is applied in place); dln [B,T,C] scratch. */
void et_bert_embeddings_backward(et_pool *pool, const et_bert_config *cfg, const et_bert_params *w,
                                 const et_bert_params *g, float *dout, float *dln,
                                 const float *ln_in, const float *mean, const float *rstd,
                                 const int32_t *ids, const int32_t *type_ids, int B, int T,
                                 float drop_p, uint64_t seed);

/* Self-attention block: a->inp -> q,k,v -> (masked softmax, attention dropout adrop) -> atty ->
 * ln1_in = inp + dropout_hdrop(atty @ ao_w^T + ao_b) -> h1 = LN1(ln1_in).
 * att_scratch: [et_pool_size(pool) * et_attention_scratch_floats(T, C, NH)] floats (kernels.h).
 * mask [B,T] (NULL = all real).
 * seed: the layer's dropout seed (sites are derived from it). */
void et_bert_attn_block_forward(et_pool *pool, const et_bert_config *cfg, const et_bert_layer_params *w,
                                et_bert_layer_acts *a, float *att_scratch, const int32_t *mask,
                                int B, int T, float hdrop, float adrop, uint64_t seed);
/* dh1 [B,T,C] (read only) -> dinp [B,T,C] += ; uses s->dln, datty, dq, dk, dv, att. */
void et_bert_attn_block_backward(et_pool *pool, const et_bert_config *cfg, const et_bert_layer_params *w,
                                 const et_bert_layer_params *g, const et_bert_layer_acts *a,
                                 const et_bert_bwd_scratch *s, float *dinp, const float *dh1,
                                 int B, int T, float hdrop, float adrop, uint64_t seed);

/* FFN block: fch = h1 @ i_w^T + i_b; fch_gelu = GELU(fch);
 * ln2_in = h1 + dropout_hdrop(fch_gelu @ o_w^T + o_b); out = LN2(ln2_in). */
void et_bert_ffn_block_forward(et_pool *pool, const et_bert_config *cfg, const et_bert_layer_params *w,
                               et_bert_layer_acts *a, int B, int T, float hdrop, uint64_t seed);
/* dout [B,T,C] (read only) -> dh1 [B,T,C] += ; uses s->dln, g (GELU recomputed into s->g), dg (MoE). */
void et_bert_ffn_block_backward(et_pool *pool, const et_bert_config *cfg, const et_bert_layer_params *w,
                                const et_bert_layer_params *g, const et_bert_layer_acts *a,
                                const et_bert_bwd_scratch *s, float *dh1, const float *dout,
                                int B, int T, float hdrop, uint64_t seed);

/* pooled[B,C] from hidden[B,T,C]: ET_POOL_MEAN = mean over tokens with mask==1 (mask NULL = all;
 * a row without real tokens gives 0, as sentence-transformers' clamp(1e-9)); ET_POOL_CLS = t=0. */
void et_bert_pool_forward(float *pooled, const float *hidden, const int32_t *mask, int B, int T, int C,
                          et_pooling mode);
/* dhidden[B,T,C] += */
void et_bert_pool_backward(float *dhidden, const float *dpooled, const int32_t *mask, int B, int T,
                           int C, et_pooling mode);
/* out[B,C] = x / max(||x||_2, 1e-12) (torch F.normalize); norm[B] = ||x|| saved for backward. */
void et_bert_l2norm_forward(float *out, float *norm, const float *x, int B, int C);
/* dx[B,C] += J^T dout (out, norm from the forward) */
void et_bert_l2norm_backward(float *dx, const float *dout, const float *out, const float *norm, int B, int C);

/* Dropout seeds (counter-based masks, nothing stored): et_bert_forward gives the embeddings
 * et_bert_dropout_seed(seed, -1, 0) and layer l the layer seed et_bert_dropout_seed(seed, l, 0);
 * inside a layer the sites use et_bert_dropout_seed(layer_seed, 0, site) with site 1 = attention
 * probabilities, 2 = attention output dense, 3 = FFN output dense, 4 = MoE router jitter, 8 + j = the input
 * of the LoRA adapter of Linear j (ET_LIN_*). */
uint64_t et_bert_dropout_seed(uint64_t seed, int layer, int site);

/* ---- mixture of experts, model level (the MoE itself: moe.h) ------------------------------------- */
/* Convert a dense model in place: in the layers of layer_mask (bit l = layer l; 0 = all layers) every
 * expert becomes a copy of intermediate.dense, and the router is drawn from U(-1/sqrt(C), 1/sqrt(C))
 * (PyTorch's nn.Linear default) with an et_rng seeded by `seed` (layers in order, row-major).
 * Sets moe_gate_scale = 1, moe_aux_weight = 0.01, moe_jitter = 0 (change m->cfg afterwards if wanted:
 * they are read at every forward/backward). With moe_gate_scale = 0 the converted model computes
 * exactly what the dense one did; with 1 each FFN pre-activation is multiplied by p (>= 1/E).
 * On error m is unchanged. */
et_status et_bert_to_moe(et_bert *m, int experts, uint64_t layer_mask, uint64_t seed, et_error *err);

/* Fraction of the real tokens each expert received in layer `layer` in the last forward on `a`:
 * frac[0..E-1] (sums to 1; all 0 if there was no real token). Returns E, or 0 for a dense layer. */
int et_bert_moe_fractions(const et_bert *m, const et_bert_acts *a, int layer, float *frac);
/* alpha * sum over MoE layers of E * sum_e f_e P_e for the last forward on `a` (0 for a dense model). */
double et_bert_moe_aux_loss(const et_bert *m, const et_bert_acts *a);

/* 1 if `name` (with or without "bert.") is a router or expert tensor. */
int et_bert_is_moe_tensor(const char *name);
/* et_bert_params_view, then NULL every pointer but the routers and experts: the gradient view for
 * "train only the MoE parameters" (embeddings, attention, output.dense, LayerNorms, pooler frozen). */
void et_bert_params_view_moe_only(const et_bert_config *c, float *base, et_bert_params *p);

#endif
