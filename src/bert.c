/* bert.c - the BERT encoder. Parameters live in one buffer; et_bert_tensor_table() is the single
 * source of truth for names, shapes and offsets (the loader and saver use it too). */
#include "bert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <math.h>
#include "kernels.h"
#include "rng.h"

et_status et_bert_config_check(const et_bert_config *c, et_error *err) {
#define POS(f, key) if (c->f <= 0) return et_fail(err, ET_ERR_FORMAT, "config field '" key "' must be a positive integer (got %d)", c->f)
    POS(vocab_size, "vocab_size"); POS(hidden_size, "hidden_size"); POS(num_layers, "num_hidden_layers");
    POS(num_heads, "num_attention_heads"); POS(intermediate_size, "intermediate_size");
    POS(max_position, "max_position_embeddings"); POS(type_vocab_size, "type_vocab_size");
#undef POS
    if (c->num_layers > ET_MAX_LAYERS)
        return et_fail(err, ET_ERR_UNSUPPORTED, "config field 'num_hidden_layers' is %d; at most %d are supported", c->num_layers, ET_MAX_LAYERS);
    if (c->hidden_size % c->num_heads)
        return et_fail(err, ET_ERR_FORMAT, "config field 'hidden_size' (%d) is not a multiple of 'num_attention_heads' (%d)", c->hidden_size, c->num_heads);
    if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1))
        return et_fail(err, ET_ERR_FORMAT, "config field 'layer_norm_eps' must be in (0, 1) (got %g)", c->layer_norm_eps);
    if (!(c->hidden_dropout >= 0 && c->hidden_dropout < 1))
        return et_fail(err, ET_ERR_FORMAT, "config field 'hidden_dropout_prob' must be in [0, 1) (got %g)", c->hidden_dropout);
    if (!(c->attn_dropout >= 0 && c->attn_dropout < 1))
        return et_fail(err, ET_ERR_FORMAT, "config field 'attention_probs_dropout_prob' must be in [0, 1) (got %g)", c->attn_dropout);
    if (c->position_offset < 0 || c->position_offset >= c->max_position)
        return et_fail(err, ET_ERR_FORMAT, "position offset %d (RoBERTa: pad_token_id + 1) leaves no room in max_position_embeddings (%d)",
                       c->position_offset, c->max_position);
    if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab_size)
        return et_fail(err, ET_ERR_FORMAT, "config field 'pad_token_id' (%d) is outside the vocabulary (size %d)", c->pad_token_id, c->vocab_size);
    if (c->moe_experts < 0 || c->moe_experts > ET_MOE_MAX_EXPERTS)
        return et_fail(err, ET_ERR_FORMAT, "config field 'num_experts' must be in [0, %d] (got %d)", ET_MOE_MAX_EXPERTS, c->moe_experts);
    if (c->moe_experts) {
        if (c->num_layers < 64 && (c->moe_layer_mask >> c->num_layers))
            return et_fail(err, ET_ERR_FORMAT, "config field 'moe_layers' names a layer >= num_hidden_layers (%d)", c->num_layers);
        if (c->moe_gate_scale < 0 || c->moe_gate_scale > 2) /* 2 = straight-through (moe.h) */
            return et_fail(err, ET_ERR_FORMAT, "config field 'moe_gate_scale' must be 0, 1 or 2 (ste) (got %d)", c->moe_gate_scale);
        if (!(c->moe_aux_weight >= 0 && c->moe_aux_weight < 1e6))
            return et_fail(err, ET_ERR_FORMAT, "config field 'moe_aux_loss_weight' must be >= 0 (got %g)", c->moe_aux_weight);
        if (!(c->moe_jitter >= 0 && c->moe_jitter < 1))
            return et_fail(err, ET_ERR_FORMAT, "config field 'moe_router_jitter' must be in [0, 1) (got %g)", c->moe_jitter);
    }
    if (c->act_checkpoint && c->moe_experts)
        return et_fail(err, ET_ERR_UNSUPPORTED, "activation checkpointing does not support mixture-of-experts layers (their "
                                                "routing statistics are counted in the forward)");
    /* guard the parameter count against overflow / absurd sizes (1e10 floats = 40 GB) */
    double n = (double)c->vocab_size * c->hidden_size + (double)c->max_position * c->hidden_size +
               (double)c->num_layers * (4.0 * c->hidden_size * c->hidden_size +
                                        (1.0 + (c->moe_experts > 1 ? c->moe_experts : 1)) * c->hidden_size * c->intermediate_size);
    if (n > 1e10) return et_fail(err, ET_ERR_UNSUPPORTED, "config describes %.3g parameters; that is too large", n);
    return ET_OK;
}

typedef struct { et_tensor_view *out; int max, n; size_t off; } table_b;

static void add(table_b *t, const char *name, int64_t d0, int64_t d1) {
    if (t->out && t->n < t->max) {
        et_tensor_view *v = &t->out[t->n];
        snprintf(v->name, sizeof v->name, "%s", name);
        v->ndim = d1 ? 2 : 1;
        v->shape[0] = d0;
        v->shape[1] = d1;
        v->offset = t->off;
        v->numel = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    }
    t->off += (size_t)d0 * (size_t)(d1 ? d1 : 1);
    t->n++;
}

int et_bert_tensor_table(const et_bert_config *c, et_tensor_view *out, int max, size_t *total) {
    table_b t = {out, max, 0, 0};
    int C = c->hidden_size, I = c->intermediate_size;
    add(&t, "embeddings.word_embeddings.weight", c->vocab_size, C);
    add(&t, "embeddings.position_embeddings.weight", c->max_position, C);
    add(&t, "embeddings.token_type_embeddings.weight", c->type_vocab_size, C);
    add(&t, "embeddings.LayerNorm.weight", C, 0);
    add(&t, "embeddings.LayerNorm.bias", C, 0);
    char nm[ET_NAME_MAX];
    for (int l = 0; l < c->num_layers; l++) {
#define L(suffix, d0, d1) snprintf(nm, sizeof nm, "encoder.layer.%d.%s", l, suffix), add(&t, nm, d0, d1)
        L("attention.self.query.weight", C, C); L("attention.self.query.bias", C, 0);
        L("attention.self.key.weight", C, C);   L("attention.self.key.bias", C, 0);
        L("attention.self.value.weight", C, C); L("attention.self.value.bias", C, 0);
        L("attention.output.dense.weight", C, C); L("attention.output.dense.bias", C, 0);
        L("attention.output.LayerNorm.weight", C, 0); L("attention.output.LayerNorm.bias", C, 0);
        if (et_bert_layer_is_moe(c, l)) {
            /* the authors' MoeLayer names; experts' weights first, then their biases, so that
             * each kind is one contiguous [E,...] block (et_bert_layer_params.moe_w / moe_b) */
            int E = c->moe_experts;
            L("intermediate.dense.gate.weight", E, C);
            for (int j = 0; j < E; j++) {
                char sfx[64];
                snprintf(sfx, sizeof sfx, "intermediate.dense.experts.%d.weight", j);
                L(sfx, I, C);
            }
            for (int j = 0; j < E; j++) {
                char sfx[64];
                snprintf(sfx, sizeof sfx, "intermediate.dense.experts.%d.bias", j);
                L(sfx, I, 0);
            }
        } else {
            L("intermediate.dense.weight", I, C); L("intermediate.dense.bias", I, 0);
        }
        L("output.dense.weight", C, I); L("output.dense.bias", C, 0);
        L("output.LayerNorm.weight", C, 0); L("output.LayerNorm.bias", C, 0);
#undef L
    }
    if (c->has_pooler) {
        add(&t, "pooler.dense.weight", C, C);
        add(&t, "pooler.dense.bias", C, 0);
    }
    if (total) *total = t.off;
    return t.n;
}

void et_bert_params_view(const et_bert_config *c, float *base, et_bert_params *p) {
    /* walk the same order as et_bert_tensor_table */
    size_t C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    float *q = base;
    memset(p, 0, sizeof *p);
    p->wte = q; q += (size_t)c->vocab_size * C;
    p->wpe = q; q += (size_t)c->max_position * C;
    p->wtt = q; q += (size_t)c->type_vocab_size * C;
    p->emb_ln_w = q; q += C;
    p->emb_ln_b = q; q += C;
    for (int l = 0; l < c->num_layers; l++) {
        et_bert_layer_params *y = &p->layer[l];
        y->q_w = q; q += C * C; y->q_b = q; q += C;
        y->k_w = q; q += C * C; y->k_b = q; q += C;
        y->v_w = q; q += C * C; y->v_b = q; q += C;
        y->ao_w = q; q += C * C; y->ao_b = q; q += C;
        y->ln1_w = q; q += C; y->ln1_b = q; q += C;
        if (et_bert_layer_is_moe(c, l)) {
            size_t E = (size_t)c->moe_experts;
            y->moe_gate = q; q += E * C;
            y->moe_w = q; q += E * I * C;
            y->moe_b = q; q += E * I;
        } else {
            y->i_w = q; q += I * C; y->i_b = q; q += I;
        }
        y->o_w = q; q += C * I; y->o_b = q; q += C;
        y->ln2_w = q; q += C; y->ln2_b = q; q += C;
    }
    if (c->has_pooler) {
        p->pool_w = q; q += C * C;
        p->pool_b = q; q += C;
    }
}

et_status et_bert_alloc(et_bert *m, const et_bert_config *cfg, et_error *err) {
    memset(m, 0, sizeof *m);
    et_status s = et_bert_config_check(cfg, err);
    if (s) return s;
    m->cfg = *cfg;
    m->n_tensors = et_bert_tensor_table(cfg, NULL, 0, &m->n_params);
    m->tensors = et_calloc((size_t)m->n_tensors, sizeof *m->tensors, "tensor table", err);
    if (!m->tensors) return ET_ERR_NOMEM;
    et_bert_tensor_table(cfg, m->tensors, m->n_tensors, NULL);
    m->params = et_calloc(m->n_params, sizeof(float), "model parameters", err);
    if (!m->params) { free(m->tensors); m->tensors = NULL; return ET_ERR_NOMEM; }
    et_bert_params_view(cfg, m->params, &m->w);
    /* a version no earlier model had, even one freed at the same address: the clock mixed in */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    m->version = et_hash64((uint64_t)(uintptr_t)m->params ^ et_hash64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec));
    return ET_OK;
}

void et_bert_params_changed(et_bert *m) { m->version++; }

void et_bert_free(et_bert *m) {
    if (!m) return;
    free(m->lora);
    free(m->params);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}

const et_tensor_view *et_bert_find(const et_bert *m, const char *name) {
    if (strncmp(name, "bert.", 5) == 0) name += 5;
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

/* ============================================================================================
 * Activations, forward and backward (llm.c style).
 * ============================================================================================ */

#define ET_ALIGN_FLOATS 16 /* 64-byte alignment of every buffer inside the one allocation */

uint64_t et_bert_dropout_seed(uint64_t seed, int layer, int site) {
    return et_hash64(seed ^ et_hash64(((uint64_t)(uint32_t)(layer + 1) << 8) | (uint64_t)(site & 0xff)));
}

/* The plan: walks every buffer in a fixed order, counting floats; when `a` is given (and a->mem
 * is set) it also points the fields into a->mem. One source of truth for size and layout. */
/* sizes are counted in 64 bits, so an absurd batch cannot wrap around on 32-bit targets (wasm32) */
typedef struct { float *base; uint64_t off; } plan_b;

static float *take(plan_b *p, uint64_t n) {
    float *r = p->base ? p->base + p->off : NULL;
    p->off += (n + ET_ALIGN_FLOATS - 1) / ET_ALIGN_FLOATS * ET_ALIGN_FLOATS;
    return r;
}

/* share (training, not MoE): the transient part (kernel and backward scratch, the layer outputs, the LoRA scratch and,
 * checkpointing, the one saved layer set) is counted in *sfloats and laid out from sbase instead of a->mem */
static uint64_t plan(const et_bert_config *c, int B, int T, int training, int nthreads, et_bert_acts *a, int share,
                     float *sbase, uint64_t *sfloats) {
    plan_b p = {a ? a->mem : NULL, 0};
    plan_b q = {sbase, 0};
    uint64_t BT = (uint64_t)B * T, C = (uint64_t)c->hidden_size, I = (uint64_t)c->intermediate_size;
    uint64_t BTC = BT * C, BTI = BT * I, NH = (uint64_t)c->num_heads, L = (uint64_t)c->num_layers;
    uint64_t E = (uint64_t)(c->moe_experts > 0 ? c->moe_experts : 0);
    et_bert_acts tmp;
    if (!a) { memset(&tmp, 0, sizeof tmp); a = &tmp; }
    /* training with LoRA adapters: the base gets no gradient, so what only base-weight gradients read is not kept
     * (the embeddings' LayerNorm input; the attention output, unless attention.output.dense has an adapter): it
     * lives in backward scratch that the forward does not use (s->dq), and et_bert_backward refuses those gradients */
    int frozen = training && c->lora_rank > 0 && c->lora_sites;
    a->checkpoint = training && c->act_checkpoint != 0;
    share = share && training && !E;
    a->shared = share;
    plan_b *sh = share ? &q : &p;
    a->emb_ln_in = frozen ? NULL : take(&p, BTC);
    a->att_scratch = take(sh, (uint64_t)nthreads * et_attention_scratch_floats(T, c->hidden_size, c->num_heads));
    a->pooled_raw = take(&p, (size_t)B * C);
    a->pool_norm = take(&p, (size_t)B);
    a->pooled = take(&p, (size_t)B * C);
    if (!training) {
        /* two ping-pong hidden buffers; one set of per-layer scratch shared by all layers */
        float *h[2] = {take(&p, BTC), take(&p, BTC)};
        et_bert_layer_acts s = {0};
        s.q = take(&p, BTC); s.k = take(&p, BTC); s.v = take(&p, BTC);
        s.atty = take(&p, BTC); s.ln1_in = take(&p, BTC); s.h1 = take(&p, BTC);
        s.fch = take(&p, BTI); s.fch_gelu = take(&p, BTI);
        s.ln2_in = s.ln1_in; /* ln1_in is dead once h1 exists */
        if (c->lora_rank > 0 && c->lora_sites) s.lora_u = take(&p, BT * (uint64_t)c->lora_rank);
        if (E) { /* MoE: one set of routing buffers shared by all layers */
            s.moe.probs = take(&p, BT * E);
            s.moe.idx = (int32_t *)take(&p, BT);
            s.moe.perm = (int32_t *)take(&p, BT);
            s.moe.xs = take(&p, BTC);
        }
        a->emb_mean = a->emb_rstd = NULL;
        for (size_t l = 0; l < L; l++) {
            a->layer[l] = s;
            a->layer[l].inp = h[l & 1];
            a->layer[l].out = h[(l + 1) & 1];
            if (!et_bert_layer_is_moe(c, (int)l)) memset(&a->layer[l].moe, 0, sizeof a->layer[l].moe);
        }
        memset(&a->bwd, 0, sizeof a->bwd);
    } else {
        a->emb_mean = take(&p, BT); a->emb_rstd = take(&p, BT);
        et_bert_bwd_scratch *s = &a->bwd;
        s->dres_a = take(sh, BTC); s->dres_b = take(sh, BTC);
        s->dh1 = take(sh, BTC); s->dln = take(sh, BTC); s->datty = take(sh, BTC);
        s->dq = take(sh, BTC); s->dk = take(sh, BTC); s->dv = take(sh, BTC);
        s->g = take(sh, BTI);
        s->dg = E ? take(&p, BTI) : NULL; /* MoE backward's grouped scratch only */
        s->att = a->att_scratch;
        s->dpool = take(sh, (size_t)B * C);
        if (frozen) a->emb_ln_in = s->dq; /* transient */
        float *inp = take(&p, BTC); /* embeddings output */
        /* layer outputs are NOT kept: layer l keeps xhat of its LayerNorms (ln*_xhat) and backward
         * recomputes out = xhat * w + b (et_layernorm_affine, the same bits) when it needs it as the next
         * layer's input; outputs ping-pong in hbuf. The LayerNorm inputs and h1 are transient in the
         * forward: they live in backward scratch (s->dln, s->datty), unused until backward. */
        int ckpt = c->act_checkpoint != 0;
        float *hbuf[2] = {take(sh, BTC), ckpt ? NULL : take(sh, BTC)}; /* checkpointing: the top layer's output only */
        float *lx = NULL, *lu = NULL, *ldu = NULL; /* LoRA scratch shared by all layers */
        if (c->lora_rank > 0 && c->lora_sites) {
            if (c->lora_dropout > 0) lx = take(sh, BT * ((c->lora_sites >> ET_LIN_O) & 1u ? (I > C ? I : C) : C)); /* widest adapted input */
            lu = take(sh, BT * (uint64_t)c->lora_rank);
            ldu = take(sh, BT * (uint64_t)c->lora_rank);
        }
        et_moe_acts ms = {0};
        if (E) { /* MoE scratch shared by all layers */
            ms.perm = (int32_t *)take(&p, BT);
            ms.xs = take(&p, BTC); ms.dxs = take(&p, BTC);
            ms.dlogits = take(&p, BT * E);
        }
        /* checkpointing: each layer's input kept (layer 0's is `inp` above), the per-layer set below planned once */
        float *kin[ET_MAX_LAYERS] = {0};
        if (ckpt) {
            kin[0] = inp;
            for (size_t l = 1; l < L; l++) kin[l] = take(&p, BTC);
        }
        for (size_t l = 0; l < L; l++) {
            et_bert_layer_acts *y = &a->layer[l];
            if (ckpt && l > 0) { /* the same saved set as layer 0; its own input; the output is the next input */
                *y = a->layer[0];
                y->inp = kin[l];
                y->out = l + 1 < L ? kin[l + 1] : hbuf[0];
                continue;
            }
            y->inp = inp;
            plan_b *ls = ckpt ? sh : &p; /* checkpointing: the one saved set is recomputed, so it may be shared */
            y->q = take(ls, BTC); y->k = take(ls, BTC); y->v = take(ls, BTC);
            y->att = NULL; /* recomputed in backward from q, k and the row stats */
            y->att_rs = take(ls, (uint64_t)B * NH * T * 2);
            y->atty = frozen && !((c->lora_sites >> ET_LIN_AO) & 1u) ? s->dq : take(ls, BTC); /* s->dq: transient */
            y->ln1_in = s->dln; /* transient */
            y->ln1_xhat = take(ls, BTC); y->ln1_mean = NULL; y->ln1_rstd = take(ls, BT);
            y->h1 = s->datty;   /* transient; recomputed in backward from ln1_xhat */
            y->fch = take(ls, BTI);
            y->fch_gelu = s->g; /* transient; recomputed in backward */
            y->ln2_in = s->dln; /* transient */
            y->ln2_xhat = take(ls, BTC); y->ln2_mean = NULL; y->ln2_rstd = take(ls, BT);
            y->out = ckpt ? (L > 1 ? kin[1] : hbuf[0]) : hbuf[l & 1]; /* transient; recomputed in backward from ln2_xhat */
            inp = y->out;
            y->lora_x = lx; y->lora_u = lu; y->lora_du = ldu;
            memset(&y->moe, 0, sizeof y->moe);
            if (et_bert_layer_is_moe(c, (int)l)) {
                y->moe = ms;
                y->moe.probs = take(&p, BT * E); /* kept per layer for backward */
                y->moe.idx = (int32_t *)take(&p, BT);
            }
        }
    }
    for (size_t l = 0; l < L && E; l++) /* per-layer routing statistics (both modes) */
        if (et_bert_layer_is_moe(c, (int)l)) {
            a->layer[l].moe.counts = (int32_t *)take(&p, E);
            a->layer[l].moe.aux = take(&p, 1);
        }
    a->hidden = L ? a->layer[L - 1].out : NULL;
    /* int32 copies of the inputs, counted in floats (same size) */
    a->ids = (int32_t *)take(&p, BT);
    a->mask = (int32_t *)take(&p, BT);
    a->type_ids = (int32_t *)take(&p, BT);
    a->seq_off = (int32_t *)take(&p, (uint64_t)B + 1);
    if (sfloats) *sfloats = q.off;
    return p.off;
}

static int resolve_threads(int nthreads) {
    if (nthreads <= 0) nthreads = et_cpu_count();
    return nthreads < 1 ? 1 : nthreads;
}

size_t et_bert_acts_bytes(const et_bert_config *cfg, int B, int T, int training, int nthreads) {
    if (B <= 0 || T <= 0) return 0;
    uint64_t n = plan(cfg, B, T, training, resolve_threads(nthreads), NULL, 0, NULL, NULL);
    return n > (uint64_t)(SIZE_MAX / sizeof(float)) ? SIZE_MAX : (size_t)n * sizeof(float);
}

size_t et_bert_acts_shared_bytes(const et_bert_config *cfg, int B, int T, int nthreads) {
    if (B <= 0 || T <= 0 || cfg->moe_experts > 0) return 0;
    uint64_t sf = 0;
    plan(cfg, B, T, 1, resolve_threads(nthreads), NULL, 1, NULL, &sf);
    return sf > (uint64_t)(SIZE_MAX / sizeof(float)) ? SIZE_MAX : (size_t)sf * sizeof(float);
}

static et_status acts_alloc(et_bert_acts *a, const et_bert_config *cfg, int B, int T, int training, int nthreads,
                            float *shared, size_t shared_bytes, et_error *err);

et_status et_bert_acts_alloc(et_bert_acts *a, const et_bert_config *cfg, int B, int T, int training,
                             int nthreads, et_error *err) {
    return acts_alloc(a, cfg, B, T, training, nthreads, NULL, 0, err);
}

et_status et_bert_acts_alloc_shared(et_bert_acts *a, const et_bert_config *cfg, int B, int T, int nthreads,
                                    float *shared, size_t shared_bytes, et_error *err) {
    memset(a, 0, sizeof *a);
    if (!shared || ((uintptr_t)shared & 63))
        return et_fail(err, ET_ERR_ARG, "activation buffer: the shared region must be given, 64-byte aligned");
    if (cfg->moe_experts > 0)
        return et_fail(err, ET_ERR_UNSUPPORTED, "activation buffer: a shared region is not supported with mixture-of-experts layers");
    return acts_alloc(a, cfg, B, T, 1, nthreads, shared, shared_bytes, err);
}

static et_status acts_alloc(et_bert_acts *a, const et_bert_config *cfg, int B, int T, int training, int nthreads,
                            float *shared, size_t shared_bytes, et_error *err) {
    memset(a, 0, sizeof *a);
    et_status s = et_bert_config_check(cfg, err);
    if (s) return s;
    if (B <= 0 || T <= 0)
        return et_fail(err, ET_ERR_ARG, "activation buffer: batch size (%d) and sequence length (%d) must be positive", B, T);
    if (T > et_bert_max_tokens(cfg))
        return et_fail(err, ET_ERR_ARG, "activation buffer: sequence length %d exceeds the model's max_position_embeddings (%d, offset %d)", T,
                       cfg->max_position, cfg->position_offset);
    nthreads = resolve_threads(nthreads);
    double approx = (double)B * T * (double)cfg->hidden_size * (training ? 12.0 * cfg->num_layers : 8.0);
    if (approx > 1e11)
        return et_fail(err, ET_ERR_NOMEM, "activation buffer for batch %d x %d tokens is too large", B, T);
    uint64_t sf = 0;
    uint64_t n64 = plan(cfg, B, T, training, nthreads, NULL, shared != NULL, NULL, &sf);
    if (shared && (double)sf * sizeof(float) > (double)shared_bytes)
        return et_fail(err, ET_ERR_ARG, "activation buffer: the shared region has %zu bytes, batch %d x %d needs %.0f", shared_bytes,
                       B, T, (double)sf * sizeof(float));
    void *mem = NULL;
    if (n64 > (uint64_t)(SIZE_MAX / sizeof(float)) || posix_memalign(&mem, 64, (size_t)n64 * sizeof(float)) != 0 || !mem)
        return et_fail(err, ET_ERR_NOMEM, "cannot allocate %.1f MiB of activations for batch %d x %d tokens%s",
                       (double)n64 * sizeof(float) / (1 << 20), B, T, training ? " (training)" : "");
    size_t n = (size_t)n64;
    a->mem = mem;
    a->bytes = n * sizeof(float);
    a->B_max = B; a->T_max = T; a->training = training; a->nthreads = nthreads;
    a->moe_aux_scale = 1.0f;
    plan(cfg, B, T, training, nthreads, a, shared != NULL, shared, NULL);
    a->lora_rank = cfg->lora_sites ? cfg->lora_rank : 0;
    a->base_frozen = training && a->lora_rank > 0;
    a->lora_drop_ok = training && a->lora_rank > 0 && cfg->lora_dropout > 0;
    if (!(a->serial = et_pool_create(1, err))) {
        free(a->mem);
        memset(a, 0, sizeof *a);
        return err && err->code ? err->code : ET_ERR_NOMEM;
    }
    return ET_OK;
}

void et_bert_acts_drop_packed(et_bert_acts *a) {
    if (!a) return;
    a->wpack_key = 0;
    for (int l = 0; l < ET_MAX_LAYERS; l++) memset(a->layer[l].wpack, 0, sizeof a->layer[l].wpack);
}

static void q8_drop(et_bert_acts *a) {
    for (int i = 0; i < a->q8_count; i++) et_q8_free(&a->q8[i]);
    free(a->q8);
    free(a->q8work);
    a->q8 = NULL; a->q8work = NULL; a->q8_count = 0; a->q8_key = 0;
    for (int l = 0; l < ET_MAX_LAYERS; l++) {
        memset(a->layer[l].q8, 0, sizeof a->layer[l].q8);
        a->layer[l].q8work = NULL;
    }
}

void et_bert_acts_free(et_bert_acts *a) {
    if (!a) return;
    q8_drop(a);
    free(a->wpack);
    free(a->mem);
    et_pool_destroy(a->serial);
    memset(a, 0, sizeof *a);
}

void et_bert_acts_set_bf16(et_bert_acts *a, int on) {
    for (int l = 0; l < ET_MAX_LAYERS; l++) a->layer[l].bf16 = on != 0;
}

/* ---------------------------------------------------------------- small kernels (static) */
/* Inverted dropout fused with the residual add, in place, split over the pool:
 *   x[i] = x[i] * keep(i) / (1 - p) + (res ? res[i] : 0)        (p <= 0: no dropout)
 * Masks are counter-based (et_dropout_keep(seed, i, p)), so backward recomputes them: the same
 * call with res = NULL is the dropout's own backward. */
typedef struct { float *x; const float *res; int64_t n, chunk; float p; uint64_t seed; } drop_ctx;

static void drop_add_task(void *vctx, int task, int thread) {
    (void)thread;
    const drop_ctx *d = vctx;
    int64_t i0 = (int64_t)task * d->chunk, i1 = i0 + d->chunk < d->n ? i0 + d->chunk : d->n;
    float *x = d->x;
    if (d->p > 0) {
        float s = 1.0f / (1.0f - d->p);
        for (int64_t i = i0; i < i1; i++) x[i] = et_dropout_keep(d->seed, (uint64_t)i, d->p) ? x[i] * s : 0.0f;
    }
    if (d->res) for (int64_t i = i0; i < i1; i++) x[i] += d->res[i];
}

static void dropout_add(et_pool *pool, float *x, const float *res, int64_t n, float p, uint64_t seed) {
    if (!(p > 0) && !res) return;
    drop_ctx d = {x, res, n, 1 << 15, p > 0 ? p : 0.0f, seed};
    et_pool_run(pool, drop_add_task, &d, (int)((n + d.chunk - 1) / d.chunk));
}

static void zero(float *x, size_t n) { memset(x, 0, n * sizeof(float)); }

/* out = inp @ W^T + b for the layer's Linear j (0..5 = q, k, v, ao, i, o): in int8 when the acts have its
 * quantized weights, bf16 when the acts say so (kernels.h), else with W's prepacked copy when there is one */
static void lin(et_pool *pool, const et_bert_layer_acts *a, int j, float *out, const float *inp, const float *W,
                const float *b, int N, int IC, int OC) {
    if (a->q8[j]) et_q8_linear_forward(pool, out, inp, a->q8[j], b, N, 0, a->q8work);
    else if (a->bf16) et_linear_forward_bf16(pool, out, inp, W, b, N, IC, OC);
    else if (a->wpack[j]) et_linear_forward_packed(pool, out, inp, W, a->wpack[j], b, N, IC, OC);
    else et_linear_forward(pool, out, inp, W, b, N, IC, OC);
}

/* et_linear_backward, in bf16 when asked */
static void lin_bwd(et_pool *pool, int bf16, float *dinp, float *dW, float *dbias, const float *dout,
                    const float *inp, const float *W, int N, int IC, int OC) {
    if (bf16) et_linear_backward_bf16(pool, dinp, dW, dbias, dout, inp, W, N, IC, OC);
    else et_linear_backward(pool, dinp, dW, dbias, dout, inp, W, N, IC, OC);
}

/* C[M,N] = A[M,K] @ B[K,N] (row-major, beta 0), in bf16 when asked */
static void matmul(et_pool *pool, int bf16, int M, int N, int K, const float *A, const float *B, float *C) {
    if (bf16) et_sgemm_bf16(pool, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    else et_sgemm(pool, 0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
}

/* ---------------------------------------------------------------- LoRA adapters */
size_t et_bert_lora_floats(const et_bert_config *c, int r, unsigned sites) {
    if (r < 1) return 0;
    size_t C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size, n = 0;
    const size_t in[ET_LIN_N] = {C, C, C, C, C, I}, out[ET_LIN_N] = {C, C, C, C, I, C};
    for (int l = 0; l < c->num_layers; l++)
        for (int j = 0; j < ET_LIN_N; j++)
            if ((sites >> j) & 1u) n += (size_t)r * (in[j] + out[j]);
    return n;
}

void et_bert_lora_view(const et_bert_config *c, int r, unsigned sites, float *base, et_bert_params *p) {
    size_t C = (size_t)c->hidden_size, I = (size_t)c->intermediate_size;
    const size_t in[ET_LIN_N] = {C, C, C, C, C, I}, out[ET_LIN_N] = {C, C, C, C, I, C};
    float *q = base;
    for (int l = 0; l < ET_MAX_LAYERS; l++)
        for (int j = 0; j < ET_LIN_N; j++) {
            p->layer[l].lora_A[j] = p->layer[l].lora_B[j] = NULL;
            if (l >= c->num_layers || r < 1 || !base || !((sites >> j) & 1u)) continue;
            p->layer[l].lora_A[j] = q; q += (size_t)r * in[j];
            p->layer[l].lora_B[j] = q; q += out[j] * (size_t)r;
        }
}

et_status et_bert_lora_attach(et_bert *m, int r, double alpha, int rslora, double dropout, unsigned sites,
                              uint64_t seed, et_error *err) {
    et_bert_config *c = &m->cfg;
    if (m->lora) return et_fail(err, ET_ERR_ARG, "LoRA: the model already has adapters attached");
    if (r < 1 || r > 4096) return et_fail(err, ET_ERR_ARG, "LoRA: the rank r must be in [1, 4096] (got %d)", r);
    if (!sites || sites >> ET_LIN_N) return et_fail(err, ET_ERR_ARG, "LoRA: no Linear layer to adapt (sites mask %#x)", sites);
    if (!(isfinite(alpha) && alpha > 0)) return et_fail(err, ET_ERR_ARG, "LoRA: alpha must be a positive number (got %g)", alpha);
    if (!(dropout >= 0 && dropout < 1)) return et_fail(err, ET_ERR_ARG, "LoRA: dropout must be in [0, 1) (got %g)", dropout);
    if ((sites >> ET_LIN_I) & 1u)
        for (int l = 0; l < c->num_layers; l++)
            if (et_bert_layer_is_moe(c, l))
                return et_fail(err, ET_ERR_UNSUPPORTED, "LoRA: intermediate.dense of layer %d is a mixture of experts; "
                                                        "adapt other Linear layers", l);
    size_t n = et_bert_lora_floats(c, r, sites);
    if (!(m->lora = et_calloc(n, sizeof(float), "LoRA adapters", err))) return ET_ERR_NOMEM;
    m->n_lora = n;
    c->lora_rank = r;
    c->lora_sites = sites;
    c->lora_scale = (float)(rslora ? alpha / sqrt((double)r) : alpha / r);
    c->lora_dropout = (float)dropout;
    et_bert_lora_view(c, r, sites, m->lora, &m->w);
    /* PEFT reset_lora_parameters: kaiming_uniform_(A, a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), B zeros */
    et_rng rng;
    et_rng_seed(&rng, et_hash64(seed ^ 0x4c6f5241ULL)); /* "LoRA": not the stream of other uses of the seed */
    for (int l = 0; l < c->num_layers; l++)
        for (int j = 0; j < ET_LIN_N; j++) {
            float *A = m->w.layer[l].lora_A[j];
            if (!A) continue;
            int in = j == ET_LIN_O ? c->intermediate_size : c->hidden_size;
            float bound = 1.0f / sqrtf((float)in);
            for (size_t i = 0; i < (size_t)r * in; i++) A[i] = bound * (2.0f * et_rng_uniformf(&rng) - 1.0f);
        }
    et_bert_params_changed(m);
    return ET_OK;
}

void et_bert_lora_detach(et_bert *m) {
    free(m->lora);
    m->lora = NULL;
    m->n_lora = 0;
    m->cfg.lora_rank = 0; m->cfg.lora_sites = 0; m->cfg.lora_scale = 0; m->cfg.lora_dropout = 0;
    et_bert_lora_view(&m->cfg, 0, 0, NULL, &m->w);
    et_bert_params_changed(m);
}

void et_bert_lora_forward(et_pool *pool, float *y, const float *x, const float *A, const float *B, float *xs,
                          float *u, int N, int IC, int OC, int r, float scale, float p, uint64_t seed) {
    const float *xd = x; /* [N,IC] dropout(x) */
    if (p > 0) {
        memcpy(xs, x, (size_t)N * IC * sizeof(float));
        dropout_add(pool, xs, NULL, (int64_t)N * IC, p, seed);
        xd = xs;
    }
    et_sgemm(pool, 0, 1, N, r, IC, 1.0f, xd, IC, A, IC, 0.0f, u, r);     /* u[N,r] = xd @ A^T */
    et_sgemm(pool, 0, 1, N, OC, r, scale, u, r, B, r, 1.0f, y, OC);      /* y[N,OC] += scale * u @ B^T */
}

void et_bert_lora_backward(et_pool *pool, float *dx, float *dA, float *dB, const float *dy, const float *x,
                           const float *A, const float *B, float *xs, float *u, float *du, int N, int IC, int OC,
                           int r, float scale, float p, uint64_t seed) {
    if (dA || dB) {
        const float *xd = x;
        if (p > 0) {
            memcpy(xs, x, (size_t)N * IC * sizeof(float));
            dropout_add(pool, xs, NULL, (int64_t)N * IC, p, seed);
            xd = xs;
        }
        if (dB) {
            et_sgemm(pool, 0, 1, N, r, IC, 1.0f, xd, IC, A, IC, 0.0f, u, r);        /* u[N,r] = xd @ A^T, again */
            et_sgemm(pool, 1, 0, OC, r, N, scale, dy, OC, u, r, 1.0f, dB, r);       /* dB[OC,r] += scale dy^T u */
        }
        if (dA) {
            et_sgemm(pool, 0, 0, N, r, OC, scale, dy, OC, B, r, 0.0f, du, r);       /* du[N,r] = scale dy @ B */
            et_sgemm(pool, 1, 0, r, IC, N, 1.0f, du, r, xd, IC, 1.0f, dA, IC);      /* dA[r,IC] += du^T xd */
        }
    }
    if (dx) {
        et_sgemm(pool, 0, 0, N, r, OC, scale, dy, OC, B, r, 0.0f, du, r);
        if (p > 0) { /* dx += dropout'(du @ A) */
            et_sgemm(pool, 0, 0, N, IC, r, 1.0f, du, r, A, IC, 0.0f, xs, IC);
            dropout_add(pool, xs, NULL, (int64_t)N * IC, p, seed);
            et_axpy(dx, 1.0f, xs, (int64_t)N * IC);
        } else {
            et_sgemm(pool, 0, 0, N, IC, r, 1.0f, du, r, A, IC, 1.0f, dx, IC);
        }
    }
}

static int lora_wants(const et_bert_layer_params *g, int j) { return g->lora_A[j] || g->lora_B[j]; }

/* in/out features of Linear j */
static void lin_dims(const et_bert_config *c, int j, int *IC, int *OC) {
    *IC = j == ET_LIN_O ? c->intermediate_size : c->hidden_size;
    *OC = j == ET_LIN_I ? c->intermediate_size : c->hidden_size;
}

/* the adapter of Linear j (if any) added to its output y [N,OC], input x [N,IC]; seed: the layer's */
static void lora_fwd(et_pool *pool, const et_bert_config *c, const et_bert_layer_params *w, const et_bert_layer_acts *a,
                     int j, float *y, const float *x, int N, uint64_t seed) {
    if (!w->lora_A[j]) return;
    int IC, OC;
    lin_dims(c, j, &IC, &OC);
    et_bert_lora_forward(pool, y, x, w->lora_A[j], w->lora_B[j], a->lora_x, a->lora_u, N, IC, OC, c->lora_rank,
                         c->lora_scale, a->lora_drop, et_bert_dropout_seed(seed, 0, 8 + j));
}

/* its backward: weights = 1: dA, dB (from g) and dx; weights = 0: dx only */
static void lora_bwd(et_pool *pool, const et_bert_config *c, const et_bert_layer_params *w, const et_bert_layer_params *g,
                     const et_bert_layer_acts *a, int j, float *dx, const float *dy, const float *x, int N, uint64_t seed,
                     int weights) {
    if (!w->lora_A[j]) return;
    float *dA = weights ? g->lora_A[j] : NULL, *dB = weights ? g->lora_B[j] : NULL;
    if (!dA && !dB && !dx) return;
    int IC, OC;
    lin_dims(c, j, &IC, &OC);
    et_bert_lora_backward(pool, dx, dA, dB, dy, x, w->lora_A[j], w->lora_B[j], a->lora_x, a->lora_u, a->lora_du, N, IC,
                          OC, c->lora_rank, c->lora_scale, a->lora_drop, et_bert_dropout_seed(seed, 0, 8 + j));
}

/* ---------------------------------------------------------------- prepacked weights (inference) */
/* the six Linear weights of a layer (q, k, v, ao, i, o) with their [OC, IC]; i is NULL in MoE layers */
static void layer_linears(const et_bert_config *c, const et_bert_layer_params *w, const float *W[6], int OC[6],
                          int IC[6]) {
    int C = c->hidden_size, I = c->intermediate_size;
    const float *ws[6] = {w->q_w, w->k_w, w->v_w, w->ao_w, w->i_w, w->o_w};
    int oc[6] = {C, C, C, C, I, C}, ic[6] = {C, C, C, C, C, I};
    for (int j = 0; j < 6; j++) { W[j] = ws[j]; OC[j] = oc[j]; IC[j] = ic[j]; }
}

/* what was packed: the params pointer, the SIMD path and the parameters' version (et_bert_params_changed) */
static uint64_t wpack_fingerprint(const et_bert *m) {
    uint64_t h = et_hash64((uint64_t)(uintptr_t)m->params ^ et_hash64((uint64_t)(uintptr_t)et_simd_name()));
    h = et_hash64(h ^ m->version);
    return h ? h : 1;
}

static size_t wpack_need(const et_bert_config *c, const et_bert_params *w) {
    size_t need = 0;
    for (int l = 0; l < c->num_layers; l++) {
        const float *W[6];
        int OC[6], IC[6];
        layer_linears(c, &w->layer[l], W, OC, IC);
        int by_cfg = !w->layer[l].q_w; /* no parameters given: what the config has (MoE layers: no i_w) */
        for (int j = 0; j < 6; j++)
            if (by_cfg ? j != 4 || !et_bert_layer_is_moe(c, l) : W[j] != NULL)
                need += (et_linear_packed_floats(IC[j], OC[j]) + ET_ALIGN_FLOATS - 1) / ET_ALIGN_FLOATS * ET_ALIGN_FLOATS;
    }
    return need;
}

size_t et_bert_acts_packed_bytes(const et_bert_config *cfg) {
    et_bert_params none;
    memset(&none, 0, sizeof none);
    return wpack_need(cfg, &none) * sizeof(float);
}

/* (re)pack the model's Linear weights into a->wpack when what is there is not them; on allocation
 * failure leave every layer's wpack NULL (per-call packing) */
static void wpack_update(const et_bert *m, et_bert_acts *a, et_pool *pool) {
    uint64_t key = wpack_fingerprint(m);
    if (a->wpack && a->wpack_key == key) return;
    et_bert_acts_drop_packed(a);
    const int L = m->cfg.num_layers;
    size_t need = wpack_need(&m->cfg, &m->w);
    if (need > a->wpack_floats) {
        free(a->wpack);
        a->wpack_floats = 0;
        void *p = NULL;
        if (posix_memalign(&p, 64, need * sizeof(float)) != 0) p = NULL;
        a->wpack = p;
        if (!p) return;
        a->wpack_floats = need;
    }
    float *q = a->wpack;
    for (int l = 0; l < L; l++) {
        const float *W[6];
        int OC[6], IC[6];
        layer_linears(&m->cfg, &m->w.layer[l], W, OC, IC);
        for (int j = 0; j < 6; j++) {
            if (!W[j]) continue;
            et_linear_pack(pool, q, W[j], IC[j], OC[j]);
            a->layer[l].wpack[j] = q;
            q += (et_linear_packed_floats(IC[j], OC[j]) + ET_ALIGN_FLOATS - 1) / ET_ALIGN_FLOATS * ET_ALIGN_FLOATS;
        }
    }
    a->wpack_key = key;
}

/* int8 inference (et_bert.int8): quantize the model's Linear weights into a->q8 when what is there is not
 * them, and point the layers at them; fp32 (every layer's q8 NULL) when the model is not int8. */
static et_status q8_update(const et_bert *m, et_bert_acts *a, et_error *err) {
    const et_bert_config *c = &m->cfg;
    if (!m->int8) {
        for (int l = 0; l < c->num_layers; l++) memset(a->layer[l].q8, 0, sizeof a->layer[l].q8);
        return ET_OK;
    }
    uint64_t key = wpack_fingerprint(m);
    if (a->q8 && a->q8_key == key) goto point;
    q8_drop(a);
    int L = c->num_layers, IC_max = c->intermediate_size > c->hidden_size ? c->intermediate_size : c->hidden_size;
    a->q8 = calloc((size_t)L * 6, sizeof *a->q8);
    size_t wb = et_q8_work_bytes(a->B_max * a->T_max, IC_max);
    void *p = NULL;
    if (posix_memalign(&p, 64, wb) != 0) p = NULL;
    a->q8work = p;
    if (!a->q8 || !a->q8work) {
        q8_drop(a);
        return et_fail(err, ET_ERR_NOMEM, "int8: out of memory for the quantized weights");
    }
    a->q8_count = L * 6;
    for (int l = 0; l < L; l++) {
        const float *W[6];
        int OC[6], IC[6];
        layer_linears(c, &m->w.layer[l], W, OC, IC);
        for (int j = 0; j < 6; j++) {
            if (!W[j]) continue;
            et_status st = et_q8_quantize(&a->q8[l * 6 + j], W[j], OC[j], IC[j], err);
            if (st) { q8_drop(a); return st; }
        }
    }
    a->q8_key = key;
point:
    for (int l = 0; l < c->num_layers; l++) {
        for (int j = 0; j < 6; j++) a->layer[l].q8[j] = a->q8[l * 6 + j].w ? &a->q8[l * 6 + j] : NULL;
        a->layer[l].q8work = a->q8work;
    }
    return ET_OK;
}

/* ---------------------------------------------------------------- embeddings */
void et_bert_embeddings_forward(et_pool *pool, const et_bert_config *cfg, const et_bert_params *w,
                                float *out, float *ln_in, float *mean, float *rstd,
                                const int32_t *ids, const int32_t *type_ids, int B, int T,
                                float drop_p, uint64_t seed) {
    int C = cfg->hidden_size, BT = B * T;
    et_embedding_forward(pool, ln_in, ids, type_ids, w->wte, w->wpe + (size_t)cfg->position_offset * C, w->wtt, B, T, C);
    et_layernorm_forward(pool, out, mean, rstd, ln_in, w->emb_ln_w, w->emb_ln_b, BT, C, cfg->layer_norm_eps);
    dropout_add(pool, out, NULL, (int64_t)BT * C, drop_p, seed);
}

void et_bert_embeddings_backward(et_pool *pool, const et_bert_config *cfg, const et_bert_params *w,
                                 const et_bert_params *g, float *dout, float *dln,
                                 const float *ln_in, const float *mean, const float *rstd,
                                 const int32_t *ids, const int32_t *type_ids, int B, int T,
                                 float drop_p, uint64_t seed) {
    int C = cfg->hidden_size, BT = B * T;
    dropout_add(pool, dout, NULL, (int64_t)BT * C, drop_p, seed);
    int need_emb = g->wte || g->wpe || g->wtt;
    if (need_emb) zero(dln, (size_t)BT * C);
    et_layernorm_backward(pool, need_emb ? dln : NULL, g->emb_ln_w, g->emb_ln_b, dout, ln_in,
                          w->emb_ln_w, mean, rstd, BT, C);
    if (need_emb)
        et_embedding_backward(g->wte, g->wpe ? g->wpe + (size_t)cfg->position_offset * C : NULL, g->wtt, dln, ids, type_ids, B, T, C);
}

/* ---------------------------------------------------------------- attention block */
void et_bert_attn_block_forward(et_pool *pool, const et_bert_config *cfg, const et_bert_layer_params *w,
                                et_bert_layer_acts *a, float *att_scratch, const int32_t *mask,
                                int B, int T, float hdrop, float adrop, uint64_t seed) {
    int C = cfg->hidden_size, NH = cfg->num_heads, BT = B * T;
    size_t BTC = (size_t)BT * C;
    lin(pool, a, 0, a->q, a->inp, w->q_w, w->q_b, BT, C, C);
    lin(pool, a, 1, a->k, a->inp, w->k_w, w->k_b, BT, C, C);
    lin(pool, a, 2, a->v, a->inp, w->v_w, w->v_b, BT, C, C);
    lora_fwd(pool, cfg, w, a, ET_LIN_Q, a->q, a->inp, BT, seed);
    lora_fwd(pool, cfg, w, a, ET_LIN_K, a->k, a->inp, BT, seed);
    lora_fwd(pool, cfg, w, a, ET_LIN_V, a->v, a->inp, BT, seed);
    a->att_mask = mask;
    if (a->seq_off)
        et_attention_forward_packed(pool, a->atty, a->att_rs, att_scratch, a->q, a->k, a->v,
                                    a->seq_off, a->seq_n, a->seq_T, C, NH, adrop > 0 ? adrop : 0.0f,
                                    et_bert_dropout_seed(seed, 0, 1));
    else if (a->att_rs && !a->att)
        et_attention_forward_rs(pool, a->atty, a->att_rs, att_scratch, a->q, a->k, a->v, mask, B, T, C, NH,
                                adrop > 0 ? adrop : 0.0f, et_bert_dropout_seed(seed, 0, 1));
    else
        et_attention_forward(pool, a->atty, a->att, att_scratch, a->q, a->k, a->v, mask, B, T, C, NH,
                             adrop > 0 ? adrop : 0.0f, et_bert_dropout_seed(seed, 0, 1));
    lin(pool, a, 3, a->ln1_in, a->atty, w->ao_w, w->ao_b, BT, C, C);
    lora_fwd(pool, cfg, w, a, ET_LIN_AO, a->ln1_in, a->atty, BT, seed);
    dropout_add(pool, a->ln1_in, a->inp, (int64_t)BTC, hdrop, et_bert_dropout_seed(seed, 0, 2));
    if (a->ln1_xhat)
        et_layernorm_forward_xhat(pool, a->h1, a->ln1_xhat, a->ln1_rstd, a->ln1_in, w->ln1_w, w->ln1_b, BT, C,
                                  cfg->layer_norm_eps);
    else
        et_layernorm_forward(pool, a->h1, a->ln1_mean, a->ln1_rstd, a->ln1_in, w->ln1_w, w->ln1_b, BT, C,
                             cfg->layer_norm_eps);
}

void et_bert_attn_block_backward(et_pool *pool, const et_bert_config *cfg, const et_bert_layer_params *w,
                                 const et_bert_layer_params *g, const et_bert_layer_acts *a,
                                 const et_bert_bwd_scratch *s, float *dinp, const float *dh1,
                                 int B, int T, float hdrop, float adrop, uint64_t seed) {
    int C = cfg->hidden_size, NH = cfg->num_heads, BT = B * T;
    size_t BTC = (size_t)BT * C;
    /* h1 = LN1(ln1_in) */
    zero(s->dln, BTC);
    if (a->ln1_xhat)
        et_layernorm_backward_xhat(pool, s->dln, g->ln1_w, g->ln1_b, dh1, a->ln1_xhat, w->ln1_w, a->ln1_rstd, BT, C);
    else
        et_layernorm_backward(pool, s->dln, g->ln1_w, g->ln1_b, dh1, a->ln1_in, w->ln1_w, a->ln1_mean,
                              a->ln1_rstd, BT, C);
    /* ln1_in = inp + dropout(ao) */
    if (dinp) et_axpy(dinp, 1.0f, s->dln, (int64_t)BTC);
    dropout_add(pool, s->dln, NULL, (int64_t)BTC, hdrop, et_bert_dropout_seed(seed, 0, 2));
    int need_qkv = dinp || g->q_w || g->q_b || g->k_w || g->k_b || g->v_w || g->v_b || lora_wants(g, ET_LIN_Q) ||
                   lora_wants(g, ET_LIN_K) || lora_wants(g, ET_LIN_V);
    lin_bwd(pool, a->bf16, NULL, g->ao_w, g->ao_b, s->dln, a->atty, w->ao_w, BT, C, C);
    lora_bwd(pool, cfg, w, g, a, ET_LIN_AO, NULL, s->dln, a->atty, BT, seed, 1);
    if (need_qkv) matmul(pool, a->bf16, BT, C, C, s->dln, w->ao_w, s->datty); /* datty = dln @ ao_w */
    if (!need_qkv) return;
    lora_bwd(pool, cfg, w, g, a, ET_LIN_AO, s->datty, s->dln, a->atty, BT, seed, 0); /* datty += the adapter's part */
    zero(s->dq, BTC); zero(s->dk, BTC); zero(s->dv, BTC);
    if (a->seq_off)
        et_attention_backward_packed(pool, s->dq, s->dk, s->dv, s->att, s->datty, a->att_rs, a->q, a->k, a->v,
                                     a->seq_off, a->seq_n, a->seq_T, C, NH, adrop > 0 ? adrop : 0.0f,
                                     et_bert_dropout_seed(seed, 0, 1));
    else if (a->att_rs && !a->att)
        et_attention_backward_rs(pool, s->dq, s->dk, s->dv, s->att, s->datty, a->att_rs, a->att_mask, a->q, a->k,
                                 a->v, B, T, C, NH, adrop > 0 ? adrop : 0.0f, et_bert_dropout_seed(seed, 0, 1));
    else
        et_attention_backward(pool, s->dq, s->dk, s->dv, s->att, s->datty, a->att, a->q, a->k, a->v,
                              B, T, C, NH, adrop > 0 ? adrop : 0.0f, et_bert_dropout_seed(seed, 0, 1));
    lin_bwd(pool, a->bf16, dinp, g->q_w, g->q_b, s->dq, a->inp, w->q_w, BT, C, C);
    lin_bwd(pool, a->bf16, dinp, g->k_w, g->k_b, s->dk, a->inp, w->k_w, BT, C, C);
    lin_bwd(pool, a->bf16, dinp, g->v_w, g->v_b, s->dv, a->inp, w->v_w, BT, C, C);
    lora_bwd(pool, cfg, w, g, a, ET_LIN_Q, dinp, s->dq, a->inp, BT, seed, 1);
    lora_bwd(pool, cfg, w, g, a, ET_LIN_K, dinp, s->dk, a->inp, BT, seed, 1);
    lora_bwd(pool, cfg, w, g, a, ET_LIN_V, dinp, s->dv, a->inp, BT, seed, 1);
}

/* ---------------------------------------------------------------- FFN block */
void et_bert_ffn_block_forward(et_pool *pool, const et_bert_config *cfg, const et_bert_layer_params *w,
                               et_bert_layer_acts *a, int B, int T, float hdrop, uint64_t seed) {
    int C = cfg->hidden_size, I = cfg->intermediate_size, BT = B * T;
    size_t BTC = (size_t)BT * C;
    if (w->moe_w) /* MoE: fch_gelu serves as the grouped expert-output scratch before GELU fills it */
        et_moe_forward(pool, a->fch, a->fch_gelu, a->h1, w->moe_gate, w->moe_w, w->moe_b, BT, C, I,
                       cfg->moe_experts, cfg->moe_gate_scale, &a->moe, et_bert_dropout_seed(seed, 0, 4));
    else if (!a->ln2_rstd && a->q8[4] && !w->lora_A[ET_LIN_I]) /* int8 inference */
        et_q8_linear_forward(pool, a->fch_gelu, a->h1, a->q8[4], w->i_b, BT, 1, a->q8work);
    else if (!a->ln2_rstd && !a->bf16 && !w->lora_A[ET_LIN_I]) /* inference (no pre-GELU values kept): GELU fused into the GEMM */
        et_linear_forward_gelu(pool, a->fch_gelu, a->h1, w->i_w, a->wpack[4], w->i_b, BT, C, I);
    else {
        lin(pool, a, 4, a->fch, a->h1, w->i_w, w->i_b, BT, C, I);
        lora_fwd(pool, cfg, w, a, ET_LIN_I, a->fch, a->h1, BT, seed);
    }
    if (w->moe_w || a->ln2_rstd || w->lora_A[ET_LIN_I]) et_gelu_forward(pool, a->fch_gelu, a->fch, (int64_t)BT * I);
    lin(pool, a, 5, a->ln2_in, a->fch_gelu, w->o_w, w->o_b, BT, I, C);
    lora_fwd(pool, cfg, w, a, ET_LIN_O, a->ln2_in, a->fch_gelu, BT, seed);
    dropout_add(pool, a->ln2_in, a->h1, (int64_t)BTC, hdrop, et_bert_dropout_seed(seed, 0, 3));
    if (a->ln2_xhat)
        et_layernorm_forward_xhat(pool, a->out, a->ln2_xhat, a->ln2_rstd, a->ln2_in, w->ln2_w, w->ln2_b, BT, C,
                                  cfg->layer_norm_eps);
    else
        et_layernorm_forward(pool, a->out, a->ln2_mean, a->ln2_rstd, a->ln2_in, w->ln2_w, w->ln2_b, BT, C,
                             cfg->layer_norm_eps);
}

void et_bert_ffn_block_backward(et_pool *pool, const et_bert_config *cfg, const et_bert_layer_params *w,
                                const et_bert_layer_params *g, const et_bert_layer_acts *a,
                                const et_bert_bwd_scratch *s, float *dh1, const float *dout,
                                int B, int T, float hdrop, uint64_t seed) {
    int C = cfg->hidden_size, I = cfg->intermediate_size, BT = B * T;
    size_t BTC = (size_t)BT * C, BTI = (size_t)BT * I;
    /* out = LN2(ln2_in) */
    zero(s->dln, BTC);
    if (a->ln2_xhat)
        et_layernorm_backward_xhat(pool, s->dln, g->ln2_w, g->ln2_b, dout, a->ln2_xhat, w->ln2_w, a->ln2_rstd, BT, C);
    else
        et_layernorm_backward(pool, s->dln, g->ln2_w, g->ln2_b, dout, a->ln2_in, w->ln2_w, a->ln2_mean,
                              a->ln2_rstd, BT, C);
    /* ln2_in = h1 + dropout(o) */
    if (dh1) et_axpy(dh1, 1.0f, s->dln, (int64_t)BTC);
    dropout_add(pool, s->dln, NULL, (int64_t)BTC, hdrop, et_bert_dropout_seed(seed, 0, 3));
    /* o = gelu(fch) @ o_w^T + o_b; recompute gelu(fch) into s->g for dW_o, then s->g (one [B,T,I]
     * buffer) becomes dL/d(gelu) and, in place, dL/dfch */
    et_gelu_forward(pool, s->g, a->fch, (int64_t)BTI);
    int need_fch = dh1 || g->i_w || g->i_b || g->moe_gate || g->moe_w || g->moe_b || lora_wants(g, ET_LIN_I);
    lin_bwd(pool, a->bf16, NULL, g->o_w, g->o_b, s->dln, s->g, w->o_w, BT, I, C);
    lora_bwd(pool, cfg, w, g, a, ET_LIN_O, NULL, s->dln, s->g, BT, seed, 1); /* before s->g is overwritten */
    if (!need_fch) return;
    matmul(pool, a->bf16, BT, I, C, s->dln, w->o_w, s->g); /* g = dln @ o_w (no zeroing pass) */
    lora_bwd(pool, cfg, w, g, a, ET_LIN_O, s->g, s->dln, NULL, BT, seed, 0); /* g += the adapter's part */
    et_gelu_backward_inplace(pool, s->g, a->fch, (int64_t)BTI);
    if (w->moe_w) /* s->g (dL/dfch) is clobbered; s->dg is grouped scratch */
        et_moe_backward(pool, dh1, g->moe_gate, g->moe_w, g->moe_b, s->g, s->dg, a->h1, a->fch, w->moe_gate,
                        w->moe_w, w->moe_b, BT, C, I, cfg->moe_experts, cfg->moe_gate_scale, &a->moe,
                        et_bert_dropout_seed(seed, 0, 4));
    else
        lin_bwd(pool, a->bf16, dh1, g->i_w, g->i_b, s->g, a->h1, w->i_w, BT, C, I);
    lora_bwd(pool, cfg, w, g, a, ET_LIN_I, dh1, s->g, a->h1, BT, seed, 1);
}

/* ---------------------------------------------------------------- pooling, L2 normalize */
void et_bert_pool_forward(float *pooled, const float *hidden, const int32_t *mask, int B, int T, int C,
                          et_pooling mode) {
    for (int b = 0; b < B; b++) {
        float *o = pooled + (size_t)b * C;
        if (mode == ET_POOL_CLS) {
            memcpy(o, hidden + (size_t)b * T * C, sizeof(float) * (size_t)C);
            continue;
        }
        zero(o, (size_t)C);
        int n = 0;
        for (int t = 0; t < T; t++) {
            if (mask && !mask[(size_t)b * T + t]) continue;
            et_axpy(o, 1.0f, hidden + ((size_t)b * T + t) * C, C);
            n++;
        }
        float inv = n ? 1.0f / (float)n : 0.0f;
        for (int i = 0; i < C; i++) o[i] *= inv;
    }
}

void et_bert_pool_backward(float *dhidden, const float *dpooled, const int32_t *mask, int B, int T,
                           int C, et_pooling mode) {
    for (int b = 0; b < B; b++) {
        const float *d = dpooled + (size_t)b * C;
        if (mode == ET_POOL_CLS) {
            et_axpy(dhidden + (size_t)b * T * C, 1.0f, d, C);
            continue;
        }
        int n = 0;
        for (int t = 0; t < T; t++) n += !mask || mask[(size_t)b * T + t];
        if (!n) continue;
        float inv = 1.0f / (float)n;
        for (int t = 0; t < T; t++) {
            if (mask && !mask[(size_t)b * T + t]) continue;
            et_axpy(dhidden + ((size_t)b * T + t) * C, inv, d, C);
        }
    }
}

#define ET_L2_EPS 1e-12f

void et_bert_l2norm_forward(float *out, float *norm, const float *x, int B, int C) {
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)xb[i] * xb[i];
        float n = (float)sqrt(ss);
        if (norm) norm[b] = n;
        float inv = 1.0f / (n > ET_L2_EPS ? n : ET_L2_EPS);
        for (int i = 0; i < C; i++) out[(size_t)b * C + i] = xb[i] * inv;
    }
}

void et_bert_l2norm_backward(float *dx, const float *dout, const float *out, const float *norm, int B, int C) {
    for (int b = 0; b < B; b++) {
        const float *y = out + (size_t)b * C, *dy = dout + (size_t)b * C;
        float *d = dx + (size_t)b * C;
        if (norm[b] > ET_L2_EPS) {
            double yd = 0;
            for (int i = 0; i < C; i++) yd += (double)y[i] * dy[i];
            float inv = 1.0f / norm[b], ydf = (float)yd;
            for (int i = 0; i < C; i++) d[i] += (dy[i] - y[i] * ydf) * inv;
        } else { /* the eps clamp is active: out = x / eps, a linear map */
            for (int i = 0; i < C; i++) d[i] += dy[i] / ET_L2_EPS;
        }
    }
}

/* ---------------------------------------------------------------- full forward / backward */
/* The kernels' workspace, before any kernel runs: the attention's is in the activations (planned);
 * the GEMMs' is the pool's per-thread scratch, reserved here (an allocation only the first time a
 * pool is seen; out of memory is an error, never another algorithm). A NULL pool runs on the
 * activations' own one-thread pool, so the GEMMs need not allocate per call either. */
et_status et_bert_reserve(et_pool *pool, et_error *err) {
    size_t first, each;
    et_gemm_pool_bytes(&first, &each);
    return et_pool_reserve(pool, first, each, err);
}

static et_status kernel_workspace(et_bert_acts *a, et_pool **pool, et_error *err) {
    if (!*pool) *pool = a->serial;
    return et_bert_reserve(*pool, err);
}

/* pooled[B,C] from the packed hidden rows (et_bert_pool_forward's arithmetic per sequence) */
static void pool_forward_packed(float *pooled, const float *hidden, const int32_t *off, int B, int C, et_pooling mode) {
    for (int b = 0; b < B; b++) {
        float *o = pooled + (size_t)b * C;
        if (mode == ET_POOL_CLS) {
            memcpy(o, hidden + (size_t)off[b] * C, sizeof(float) * (size_t)C);
            continue;
        }
        zero(o, (size_t)C);
        for (int r = off[b]; r < off[b + 1]; r++) et_axpy(o, 1.0f, hidden + (size_t)r * C, C);
        int n = off[b + 1] - off[b];
        float inv = n ? 1.0f / (float)n : 0.0f;
        for (int i = 0; i < C; i++) o[i] *= inv;
    }
}

static void pool_backward_packed(float *dhidden, const float *dpooled, const int32_t *off, int B, int C,
                                 et_pooling mode) {
    for (int b = 0; b < B; b++) {
        const float *d = dpooled + (size_t)b * C;
        if (mode == ET_POOL_CLS) {
            et_axpy(dhidden + (size_t)off[b] * C, 1.0f, d, C);
            continue;
        }
        int n = off[b + 1] - off[b];
        if (!n) continue;
        float inv = 1.0f / (float)n;
        for (int r = off[b]; r < off[b + 1]; r++) et_axpy(dhidden + (size_t)r * C, inv, d, C);
    }
}

/* the forward of et_bert_forward / et_bert_forward_packed once the inputs are in a (ids, mask or
 * seq_off, B, T, packed, N) */
static et_status run_forward(const et_bert *m, et_bert_acts *a, et_pool *pool, int dropout, uint64_t seed,
                             float *pooled_out, et_error *err) {
    const et_bert_config *c = &m->cfg;
    a->dropout = a->training && dropout;
    a->seed = seed;
    a->pooling = c->pooling;
    a->normalize = c->normalize;
    float hp = a->dropout ? c->hidden_dropout : 0.0f, ap = a->dropout ? c->attn_dropout : 0.0f;
    if (m->lora && (a->lora_rank < c->lora_rank || (a->dropout && c->lora_dropout > 0 && !a->lora_drop_ok))) {
        a->have_forward = 0;
        return et_fail(err, ET_ERR_ARG, "bert forward: the activations were planned without room for the LoRA adapters "
                                        "(allocate them after et_bert_lora_attach)");
    }
    if (!a->training) {
        et_status st = q8_update(m, a, err);
        if (st) return st;
        if (m->int8) et_bert_acts_drop_packed(a); /* no fp32 Linear runs */
        else wpack_update(m, a, pool);
    }

    const int B = a->B, rB = a->packed ? 1 : a->B, rT = a->packed ? a->N : a->T; /* rows as [rB, rT] */
    if (!a->packed) {
        et_bert_embeddings_forward(pool, c, &m->w, a->layer[0].inp, a->emb_ln_in, a->emb_mean, a->emb_rstd,
                                   a->ids, a->type_ids, B, a->T, hp, et_bert_dropout_seed(seed, -1, 0));
    } else { /* et_bert_embeddings_forward with positions per sequence */
        int C = c->hidden_size;
        et_embedding_forward_packed(pool, a->emb_ln_in, a->ids, a->type_ids, m->w.wte,
                                    m->w.wpe + (size_t)c->position_offset * C, m->w.wtt, a->seq_off, B, C);
        et_layernorm_forward(pool, a->layer[0].inp, a->emb_mean, a->emb_rstd, a->emb_ln_in, m->w.emb_ln_w,
                             m->w.emb_ln_b, a->N, C, c->layer_norm_eps);
        dropout_add(pool, a->layer[0].inp, NULL, (int64_t)a->N * C, hp, et_bert_dropout_seed(seed, -1, 0));
    }
    for (int l = 0; l < c->num_layers; l++) {
        et_bert_layer_acts *y = &a->layer[l];
        uint64_t ls = et_bert_dropout_seed(seed, l, 0);
        y->seq_off = a->packed ? a->seq_off : NULL;
        y->seq_n = a->packed ? B : 0;
        y->seq_T = a->packed ? a->T : 0;
        y->lora_drop = a->dropout && m->lora && y->lora_x ? c->lora_dropout : 0.0f;
        if (y->moe.counts) {
            y->moe.mask = a->packed ? NULL : a->mask;
            y->moe.jitter = a->dropout ? c->moe_jitter : 0.0f;
            y->moe.aux_grad = c->moe_aux_weight * a->moe_aux_scale;
        }
        et_bert_attn_block_forward(pool, c, &m->w.layer[l], y, a->att_scratch, a->packed ? NULL : a->mask, rB, rT,
                                   hp, ap, ls);
        et_bert_ffn_block_forward(pool, c, &m->w.layer[l], y, rB, rT, hp, ls);
    }
    a->hidden = a->layer[c->num_layers - 1].out;
    size_t BC = (size_t)B * c->hidden_size;
    if (a->packed) pool_forward_packed(a->pooled_raw, a->hidden, a->seq_off, B, c->hidden_size, a->pooling);
    else et_bert_pool_forward(a->pooled_raw, a->hidden, a->mask, B, a->T, c->hidden_size, a->pooling);
    if (a->normalize) et_bert_l2norm_forward(a->pooled, a->pool_norm, a->pooled_raw, B, c->hidden_size);
    else memcpy(a->pooled, a->pooled_raw, BC * sizeof(float));
    for (size_t i = 0; i < BC; i++)
        if (!isfinite(a->pooled[i]))
            return et_fail(err, ET_ERR_NUMERIC, "bert forward: non-finite embedding value at batch %zu dim %zu", i / c->hidden_size, i % c->hidden_size);
    if (pooled_out) memcpy(pooled_out, a->pooled, BC * sizeof(float));
    a->have_forward = 1;
    return ET_OK;
}


et_status et_bert_forward(const et_bert *m, et_bert_acts *a, et_pool *pool, const int32_t *ids,
                          const int32_t *mask, const int32_t *type_ids, int B, int T,
                          float *pooled_out, int dropout, uint64_t seed, et_error *err) {
    const et_bert_config *c = &m->cfg;
    if (!a->mem) return et_fail(err, ET_ERR_ARG, "bert forward: activations are not allocated");
    a->have_forward = 0;
    if (B <= 0 || T <= 0) return et_fail(err, ET_ERR_ARG, "bert forward: batch size (%d) and sequence length (%d) must be positive", B, T);
    if (T > et_bert_max_tokens(c))
        return et_fail(err, ET_ERR_ARG, "bert forward: sequence length %d exceeds max_position_embeddings (%d, offset %d)", T, c->max_position,
                       c->position_offset);
    if (B > a->B_max || T > a->T_max)
        return et_fail(err, ET_ERR_ARG, "bert forward: batch %d x %d exceeds the activation buffer's %d x %d", B, T, a->B_max, a->T_max);
    if (et_pool_size(pool) > a->nthreads)
        return et_fail(err, ET_ERR_ARG, "bert forward: pool has %d threads but activations were planned for %d", et_pool_size(pool), a->nthreads);
    et_status st = kernel_workspace(a, &pool, err);
    if (st) return st;
    size_t BT = (size_t)B * T;
    for (size_t i = 0; i < BT; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return et_fail(err, ET_ERR_ARG, "bert forward: token id %d at batch %zu position %zu is outside the vocabulary (size %d)",
                           ids[i], i / T, i % T, c->vocab_size);
        if (type_ids && (type_ids[i] < 0 || type_ids[i] >= c->type_vocab_size))
            return et_fail(err, ET_ERR_ARG, "bert forward: token type %d at batch %zu position %zu is outside [0, %d)",
                           type_ids[i], i / T, i % T, c->type_vocab_size);
        if (mask && mask[i] != 0 && mask[i] != 1)
            return et_fail(err, ET_ERR_ARG, "bert forward: attention mask value %d at batch %zu position %zu is not 0 or 1",
                           mask[i], i / T, i % T);
    }
    memcpy(a->ids, ids, BT * sizeof *ids);
    for (size_t i = 0; i < BT; i++) {
        a->mask[i] = mask ? mask[i] : 1;
        a->type_ids[i] = type_ids ? type_ids[i] : 0;
    }
    a->B = B; a->T = T;
    a->packed = 0;
    a->N = B * T;
    return run_forward(m, a, pool, dropout, seed, pooled_out, err);
}

et_status et_bert_forward_packed(const et_bert *m, et_bert_acts *a, et_pool *pool, const int32_t *ids,
                                 const int32_t *type_ids, const int32_t *lens, int B, float *pooled_out,
                                 int dropout, uint64_t seed, et_error *err) {
    const et_bert_config *c = &m->cfg;
    if (!a->mem) return et_fail(err, ET_ERR_ARG, "bert forward: activations are not allocated");
    a->have_forward = 0;
    if (B <= 0) return et_fail(err, ET_ERR_ARG, "bert forward: batch size (%d) must be positive", B);
    if (B > a->B_max) return et_fail(err, ET_ERR_ARG, "bert forward: %d sequences exceed the activation buffer's %d", B, a->B_max);
    if (et_pool_size(pool) > a->nthreads)
        return et_fail(err, ET_ERR_ARG, "bert forward: pool has %d threads but activations were planned for %d", et_pool_size(pool), a->nthreads);
    int64_t N = 0;
    int longest = 0;
    for (int b = 0; b < B; b++) {
        if (lens[b] < 1 || lens[b] > a->T_max || lens[b] > et_bert_max_tokens(c))
            return et_fail(err, ET_ERR_ARG, "bert forward: sequence %d has %d tokens (must be 1..%d)", b, lens[b],
                           a->T_max < et_bert_max_tokens(c) ? a->T_max : et_bert_max_tokens(c));
        N += lens[b];
        if (lens[b] > longest) longest = lens[b];
    }
    if (N > (int64_t)a->B_max * a->T_max)
        return et_fail(err, ET_ERR_ARG, "bert forward: %lld packed tokens exceed the activation buffer's %d x %d",
                       (long long)N, a->B_max, a->T_max);
    et_status st = kernel_workspace(a, &pool, err);
    if (st) return st;
    for (int64_t i = 0; i < N; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return et_fail(err, ET_ERR_ARG, "bert forward: token id %d at packed position %lld is outside the vocabulary (size %d)",
                           ids[i], (long long)i, c->vocab_size);
        if (type_ids && (type_ids[i] < 0 || type_ids[i] >= c->type_vocab_size))
            return et_fail(err, ET_ERR_ARG, "bert forward: token type %d at packed position %lld is outside [0, %d)",
                           type_ids[i], (long long)i, c->type_vocab_size);
    }
    memcpy(a->ids, ids, (size_t)N * sizeof *ids);
    for (int64_t i = 0; i < N; i++) {
        a->mask[i] = 1;
        a->type_ids[i] = type_ids ? type_ids[i] : 0;
    }
    a->seq_off[0] = 0;
    for (int b = 0; b < B; b++) a->seq_off[b + 1] = a->seq_off[b] + lens[b];
    a->B = B; a->T = longest;
    a->packed = 1;
    a->N = (int)N;
    return run_forward(m, a, pool, dropout, seed, pooled_out, err);
}

static int layer_wants(const et_bert_layer_params *g) {
    const float *const *p = (const float *const *)g;
    for (size_t i = 0; i < sizeof *g / sizeof(float *); i++) if (p[i]) return 1;
    return 0;
}

et_status et_bert_backward(const et_bert *m, et_bert_acts *a, et_pool *pool, const float *dpooled,
                           const et_bert_params *grads, et_error *err) {
    const et_bert_config *c = &m->cfg;
    if (!a->training) return et_fail(err, ET_ERR_ARG, "bert backward: activations were allocated for inference (training = 0)");
    if (!a->have_forward) return et_fail(err, ET_ERR_ARG, "bert backward: no successful forward pass on these activations");
    if (et_pool_size(pool) > a->nthreads)
        return et_fail(err, ET_ERR_ARG, "bert backward: pool has %d threads but activations were planned for %d", et_pool_size(pool), a->nthreads);
    et_status st = kernel_workspace(a, &pool, err);
    if (st) return st;
    int B = a->B, C = c->hidden_size, L = c->num_layers;
    int rB = a->packed ? 1 : a->B, rT = a->packed ? a->N : a->T; /* rows as [rB, rT] (packed: N rows) */
    size_t BTC = (size_t)a->N * C, BC = (size_t)B * C;
    const et_bert_bwd_scratch *s = &a->bwd;
    float hp = a->dropout ? c->hidden_dropout : 0.0f, ap = a->dropout ? c->attn_dropout : 0.0f;
    /* lowest = index of the lowest "stage" wanting a gradient: -1 embeddings, l layers */
    int emb_wants = grads->wte || grads->wpe || grads->wtt || grads->emb_ln_w || grads->emb_ln_b;
    if (a->base_frozen) { /* planned for LoRA: the inputs only these gradients read were not kept */
        int ao = 0;
        for (int l = 0; l < L; l++) ao |= grads->layer[l].ao_w != NULL && a->layer[l].atty == a->bwd.dq;
        if (emb_wants || ao)
            return et_fail(err, ET_ERR_ARG, "bert backward: the activations were planned for LoRA training (a frozen base): "
                                            "no gradient of the %s", emb_wants ? "embeddings" : "attention output dense weight");
    }
    int lowest = emb_wants ? -1 : L;
    for (int l = L - 1; l >= 0 && !emb_wants; l--) if (layer_wants(&grads->layer[l])) lowest = l;
    if (lowest == L) return ET_OK; /* everything frozen */

    /* pooled = normalize(pool(hidden)) */
    if (a->normalize) {
        zero(s->dpool, BC);
        et_bert_l2norm_backward(s->dpool, dpooled, a->pooled, a->pool_norm, B, C);
    } else {
        memcpy(s->dpool, dpooled, BC * sizeof(float));
    }
    float *dcur = s->dres_a, *dnext = s->dres_b;
    zero(dcur, BTC);
    if (a->packed) pool_backward_packed(dcur, s->dpool, a->seq_off, B, C, a->pooling);
    else et_bert_pool_backward(dcur, s->dpool, a->mask, B, a->T, C, a->pooling);
    for (int l = L - 1; l >= 0 && l >= lowest; l--) {
        if (a->layer[l].moe.counts) a->layer[l].moe.aux_grad = c->moe_aux_weight * a->moe_aux_scale;
        et_bert_layer_acts *y = &a->layer[l];
        uint64_t ls = et_bert_dropout_seed(a->seed, l, 0);
        if (a->checkpoint && (l < L - 1 || a->shared)) { /* layer l's saved set again, from its kept input (the top layer's is there) */
            et_bert_attn_block_forward(pool, c, &m->w.layer[l], y, a->att_scratch, a->packed ? NULL : a->mask, rB, rT,
                                       hp, ap, ls);
            et_bert_ffn_block_forward(pool, c, &m->w.layer[l], y, rB, rT, hp, ls);
        }
        zero(s->dh1, BTC);
        if (y->ln1_xhat) /* h1 again (it lives in s->datty until the attention backward needs that) */
            et_layernorm_affine(pool, y->h1, y->ln1_xhat, m->w.layer[l].ln1_w, m->w.layer[l].ln1_b, a->N, C);
        et_bert_ffn_block_backward(pool, c, &m->w.layer[l], &grads->layer[l], y, s, s->dh1, dcur, rB, rT, hp, ls);
        if (l > 0 && !a->checkpoint && a->layer[l - 1].ln2_xhat) /* this layer's input = the previous layer's output, again */
            et_layernorm_affine(pool, y->inp, a->layer[l - 1].ln2_xhat, m->w.layer[l - 1].ln2_w,
                                m->w.layer[l - 1].ln2_b, a->N, C);
        int need_dinp = l > lowest;
        if (need_dinp) zero(dnext, BTC);
        et_bert_attn_block_backward(pool, c, &m->w.layer[l], &grads->layer[l], y, s,
                                    need_dinp ? dnext : NULL, s->dh1, rB, rT, hp, ap, ls);
        float *t = dcur; dcur = dnext; dnext = t;
    }
    if (lowest == -1 && !a->packed)
        et_bert_embeddings_backward(pool, c, &m->w, grads, dcur, s->dln, a->emb_ln_in, a->emb_mean,
                                    a->emb_rstd, a->ids, a->type_ids, B, a->T, hp, et_bert_dropout_seed(a->seed, -1, 0));
    if (lowest == -1 && a->packed) { /* et_bert_embeddings_backward with positions per sequence */
        int N = a->N;
        dropout_add(pool, dcur, NULL, (int64_t)N * C, hp, et_bert_dropout_seed(a->seed, -1, 0));
        int need_emb = grads->wte || grads->wpe || grads->wtt;
        if (need_emb) zero(s->dln, (size_t)N * C);
        et_layernorm_backward(pool, need_emb ? s->dln : NULL, grads->emb_ln_w, grads->emb_ln_b, dcur, a->emb_ln_in,
                              m->w.emb_ln_w, a->emb_mean, a->emb_rstd, N, C);
        if (need_emb)
            et_embedding_backward_packed(grads->wte, grads->wpe ? grads->wpe + (size_t)c->position_offset * C : NULL,
                                         grads->wtt, s->dln, a->ids, a->type_ids, a->seq_off, B, C);
    }
    return ET_OK;
}

/* ---------------------------------------------------------------- mixture of experts, model level */
int et_bert_is_moe_tensor(const char *name) {
    return strstr(name, ".intermediate.dense.experts.") != NULL || strstr(name, ".intermediate.dense.gate.") != NULL;
}

void et_bert_params_view_moe_only(const et_bert_config *c, float *base, et_bert_params *p) {
    et_bert_params full;
    et_bert_params_view(c, base, &full);
    memset(p, 0, sizeof *p);
    for (int l = 0; l < c->num_layers; l++) {
        p->layer[l].moe_gate = full.layer[l].moe_gate;
        p->layer[l].moe_w = full.layer[l].moe_w;
        p->layer[l].moe_b = full.layer[l].moe_b;
    }
}

int et_bert_moe_fractions(const et_bert *m, const et_bert_acts *a, int layer, float *frac) {
    if (layer < 0 || layer >= m->cfg.num_layers || !et_bert_layer_is_moe(&m->cfg, layer)) return 0;
    const et_moe_acts *ma = &a->layer[layer].moe;
    int E = m->cfg.moe_experts;
    if (!ma->counts) return 0;
    long n = 0;
    for (int e = 0; e < E; e++) n += ma->counts[e];
    for (int e = 0; e < E; e++) frac[e] = n ? (float)ma->counts[e] / (float)n : 0.0f;
    return E;
}

double et_bert_moe_aux_loss(const et_bert *m, const et_bert_acts *a) {
    double s = 0;
    for (int l = 0; l < m->cfg.num_layers; l++)
        if (et_bert_layer_is_moe(&m->cfg, l) && a->layer[l].moe.aux) s += a->layer[l].moe.aux[0];
    return m->cfg.moe_aux_weight * s;
}

et_status et_bert_to_moe(et_bert *m, int experts, uint64_t layer_mask, uint64_t seed, et_error *err) {
    const et_bert_config *oc = &m->cfg;
    if (!m->params) return et_fail(err, ET_ERR_ARG, "to MoE: the model has no parameters");
    if (oc->moe_experts) return et_fail(err, ET_ERR_ARG, "to MoE: the model already has %d experts per MoE layer", oc->moe_experts);
    if (m->lora) return et_fail(err, ET_ERR_ARG, "to MoE: the model has LoRA adapters attached (convert first, then attach)");
    if (experts < 1 || experts > ET_MOE_MAX_EXPERTS)
        return et_fail(err, ET_ERR_ARG, "to MoE: number of experts must be in [1, %d] (got %d)", ET_MOE_MAX_EXPERTS, experts);
    if (oc->num_layers < 64 && (layer_mask >> oc->num_layers))
        return et_fail(err, ET_ERR_ARG, "to MoE: layer mask 0x%llx names a layer >= num_hidden_layers (%d)",
                       (unsigned long long)layer_mask, oc->num_layers);
    et_bert_config c = *oc;
    c.moe_experts = experts;
    c.moe_layer_mask = layer_mask;
    c.moe_gate_scale = 1;
    c.moe_aux_weight = 0.01f;
    c.moe_jitter = 0.0f;
    et_bert n;
    et_status s = et_bert_alloc(&n, &c, err);
    if (s) return s;
    for (int i = 0; i < m->n_tensors; i++) {
        const et_tensor_view *v = &m->tensors[i];
        const et_tensor_view *d = et_bert_find(&n, v->name);
        if (d) { memcpy(n.params + d->offset, m->params + v->offset, v->numel * sizeof(float)); continue; }
        /* intermediate.dense.{weight,bias} of an MoE layer: copy into every expert */
        char nm[ET_NAME_MAX + 32];
        size_t len = strlen(v->name);
        const char *kind = len > 7 && strcmp(v->name + len - 7, ".weight") == 0 ? "weight" : "bias";
        size_t stem = len - strlen(kind) - 1;
        for (int j = 0; j < experts; j++) {
            snprintf(nm, sizeof nm, "%.*s.experts.%d.%s", (int)stem, v->name, j, kind);
            d = et_bert_find(&n, nm);
            if (!d || d->numel != v->numel) {
                et_bert_free(&n);
                return et_fail(err, ET_ERR_ARG, "to MoE: no place for tensor '%s'", v->name);
            }
            memcpy(n.params + d->offset, m->params + v->offset, v->numel * sizeof(float));
        }
    }
    et_rng r;
    et_rng_seed(&r, seed);
    int C = c.hidden_size;
    float bound = 1.0f / sqrtf((float)C);
    for (int l = 0; l < c.num_layers; l++) {
        float *g = n.w.layer[l].moe_gate;
        if (!g) continue;
        for (size_t i = 0; i < (size_t)experts * C; i++) g[i] = bound * (2.0f * et_rng_uniformf(&r) - 1.0f);
    }
    et_bert_params_changed(&n);
    et_bert_free(m);
    *m = n;
    et_bert_params_view(&m->cfg, m->params, &m->w); /* views point into the moved buffer (unchanged) */
    return ET_OK;
}
