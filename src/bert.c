/* bert.c - the BERT encoder. Parameters live in one buffer; et_bert_tensor_table() is the single
 * source of truth for names, shapes and offsets (the loader and saver use it too). */
#include "bert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

et_status et_bert_config_check(const et_bert_config *c, et_error *err) {
#define POS(f) if (c->f <= 0) return et_fail(err, ET_ERR_FORMAT, "config field '" #f "' must be a positive integer (got %d)", c->f)
    POS(vocab_size); POS(hidden_size); POS(num_layers); POS(num_heads); POS(intermediate_size);
    POS(max_position); POS(type_vocab_size);
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
    if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab_size)
        return et_fail(err, ET_ERR_FORMAT, "config field 'pad_token_id' (%d) is outside the vocabulary (size %d)", c->pad_token_id, c->vocab_size);
    /* guard the parameter count against overflow / absurd sizes (1e10 floats = 40 GB) */
    double n = (double)c->vocab_size * c->hidden_size + (double)c->max_position * c->hidden_size +
               (double)c->num_layers * (4.0 * c->hidden_size * c->hidden_size + 2.0 * c->hidden_size * c->intermediate_size);
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
        L("intermediate.dense.weight", I, C); L("intermediate.dense.bias", I, 0);
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
        y->i_w = q; q += I * C; y->i_b = q; q += I;
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
    return ET_OK;
}

void et_bert_free(et_bert *m) {
    if (!m) return;
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
