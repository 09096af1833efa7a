/* moe.h - the mixture-of-experts FFN up-projection of the CLP paper (docs/moe.md;
 * the authors' MoeLayer in CreaLabs/Enhanced-BGE-M3-with-CLP-and-MoE).
 *
 * In every MoE layer (et_bert_config.moe_layer_mask; all layers by default) intermediate.dense
 * (Linear C -> I) is replaced by E experts (Linear C -> I with bias) and a router W_g [E,C] (no bias).
 * Per token x (every position of every sequence, PADDING INCLUDED, as the authors' code does):
 *     logits = W_g (x * jitter)          jitter = U(1-eps, 1+eps) per element, training with dropout only
 *     probs  = softmax(logits); e* = argmax (ties: lowest index); p = probs[e*]
 *     h      = Expert_e*(x) * (moe_gate_scale == 1 ? p : 1)   (2 = straight-through, see the gate modes below)
 * then GELU and output.dense as in the dense layer. moe_gate_scale = 0 is the authors' code: the top-1
 * weight is softmax over one value = 1, so the router never gets a gradient (docs/moe.md: "the router never learns").
 * moe_gate_scale = 1 is Switch Transformer: dL/dlogits = dL/dp * p * (onehot(e*) - probs).
 *
 * Load balancing (Switch, optional): aux = alpha * E * sum_e f_e * P_e per MoE layer, f_e = fraction of
 * the REAL tokens (mask 1) routed to e (constant), P_e = mean router probability of e over the real
 * tokens. Padding is routed (and computed) but does not count in f, P or the logged fractions.
 * et_bert_backward adds d(aux)/d(router, x) * et_bert_acts.moe_aux_scale by itself; the caller's loss
 * gradient (dpooled) does not include it. et_bert_moe_aux_loss() (bert.h) gives the value for logging.
 *
 * This module is the MoE layer alone (it knows the kernels, not the encoder): its activations, forward and backward.
 * What needs the whole model - conversion of a dense model, routing statistics, the aux loss, the MoE-only gradient
 * view - is in bert.h / bert.c, which include this header.
 *
 * Tensors (names of the authors' code, so their loader reads our files and vice versa), per MoE layer i:
 *     encoder.layer.{i}.intermediate.dense.gate.weight          [E, C]
 *     encoder.layer.{i}.intermediate.dense.experts.{j}.weight   [I, C]   j = 0..E-1
 *     encoder.layer.{i}.intermediate.dense.experts.{j}.bias     [I]
 * and no intermediate.dense.weight / .bias in that layer. Dense layers are unchanged. In the parameter
 * buffer they sit where intermediate.dense was (gate, the E weights, the E biases), so a layer stays
 * contiguous; with moe_experts = 0 the layout is exactly the dense one.
 *
 * config.json (written by et_hf_save, read by et_hf_load): "num_experts": E, "num_experts_per_tok": 1,
 * "moe": "intermediate", "moe_layers": [i, ...], "moe_gate_scale": bool, "moe_aux_loss_weight": alpha,
 * "moe_router_jitter": eps. A config without "num_experts" (or 0) is dense. The authors' config has
 * num_experts / num_experts_per_tok / moe only: missing moe_layers = all layers, missing moe_gate_scale =
 * false (their unscaled routing), missing aux / jitter = 0.
 *
 * Training only the MoE parameters (the paper's --only_train intermediate): pass a gradient view made by
 * et_bert_params_view_moe_only() (bert.h) to et_bert_backward (NULL = frozen), or select tensors by name with
 * et_bert_is_moe_tensor(). */
#ifndef ET_MOE_H
#define ET_MOE_H

#include <stdint.h>
#include "error.h"
#include "threads.h"

/* ---- gate modes (et_bert_config.moe_gate_scale) --------------------------------------------------
 * ET_MOE_GATE_UNSCALED (0): h = Expert(x), the router gets no task gradient (the authors' code).
 * ET_MOE_GATE_SWITCH   (1): h = p * Expert(x) (Switch Transformer).
 * ET_MOE_GATE_STE      (2): straight-through: forward h = Expert(x) exactly as unscaled (a converted dense
 *     model is unchanged at step 0), backward as if h = (p / stopgrad(p)) * Expert(x): the experts get the
 *     unscaled gradient, the router dL/dlogit_e = <dL/dh, Expert(x)> (onehot_e - probs_e) (= the Switch
 *     router gradient divided by p). config.json: "moe_gate_scale": false plus "moe_gate_ste": true (so a
 *     reader that knows only moe_gate_scale computes the right forward). */
#define ET_MOE_GATE_UNSCALED 0
#define ET_MOE_GATE_SWITCH 1
#define ET_MOE_GATE_STE 2
/* "switch" | "unscaled" | "ste" -> mode; ET_ERR_ARG naming the choices otherwise. */
et_status et_moe_gate_parse(const char *s, int *mode, et_error *err);
/* mode -> "unscaled" | "switch" | "ste" ("?" if out of range) */
const char *et_moe_gate_name(int mode);

#define ET_MOE_MAX_EXPERTS 64

/* Per-layer MoE state: the activations of one MoE layer (bert.h keeps one per layer in et_bert_acts).
 * All NULL/0 in dense layers. */
typedef struct {
    float *probs;        /* [B,T,E] router softmax of the last forward */
    int32_t *idx;        /* [B,T] chosen expert (top-1, ties to the lowest index) */
    int32_t *counts;     /* [E] REAL tokens (mask 1) routed to each expert in the last forward */
    float *aux;          /* [1] this layer's unweighted balance loss E * sum_e f_e * P_e (real tokens) */
    int32_t *perm;       /* [B*T] scratch: token indices grouped by expert */
    float *xs, *dxs;     /* [B*T,C] scratch (dxs: training only) */
    float *dlogits;      /* [B*T,E] scratch (training only) */
    /* set by et_bert_forward / et_bert_backward before each layer (set them yourself when calling
     * the block functions directly) */
    const int32_t *mask; /* [B,T] real tokens for counts and the aux loss (NULL = all real) */
    float jitter;        /* router jitter eps in force in this forward (0 unless training with dropout) */
    float aux_grad;      /* weight of the aux-loss gradient in backward (alpha * et_bert_acts.moe_aux_scale) */
} et_moe_acts;

/* ---- the layer (used by et_bert_ffn_block_*; exposed for tests) ------------------------------
 * x [N,C] (N = B*T tokens), gate [E,C], W [E,I,C], b [E,I]. out [N,I] = the (scaled) expert output.
 * tmp [N,I] scratch (grouped expert outputs). Fills a->probs, idx, counts, aux (a->mask, a->jitter read).
 * Tokens are grouped per expert: gather rows -> one GEMM per expert -> scatter. Nothing is allocated. */
void et_moe_forward(et_pool *pool, float *out, float *tmp, const float *x, const float *gate, const float *W,
                    const float *b, int N, int C, int I, int E, int gate_scale, et_moe_acts *a,
                    uint64_t jitter_seed);
/* dout [N,I] = dL/dout (CLOBBERED); out = the forward's output. Accumulates (+=) dx [N,C], dgate [E,C],
 * dW [E,I,C], db [E,I] (any may be NULL). The router gets (gate_scale) the gate gradient and
 * (a->aux_grad != 0) the aux-loss gradient; with neither, dgate is left untouched (exactly 0).
 * tmp [N,I] scratch; a->xs, dxs, dlogits, perm are used. */
void et_moe_backward(et_pool *pool, float *dx, float *dgate, float *dW, float *db, float *dout, float *tmp,
                     const float *x, const float *out, const float *gate, const float *W, const float *b,
                     int N, int C, int I, int E, int gate_scale, const et_moe_acts *a, uint64_t jitter_seed);

#endif
