/* test_moe.c - the mixture-of-experts FFN (src/moe.h): PyTorch parity (tools/gen_moe_fixture.py,
 * float64 reference; MoE in both layers, experts perturbed, padded batch, Switch gate scaling + aux
 * loss and the authors' unscaled routing), finite differences of the whole model (router, experts,
 * aux loss, jitter + dropout), the router getting exactly no gradient without gate scaling, the
 * MoE-only gradient view, dense -> MoE conversion, HF save/load round trip and load errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bert.h"
#include "fileio.h"
#include "hf.h"
#include "kernels.h"
#include "moe.h"
#include "et_test.h"

/* ---------------------------------------------------------------- fixture */
typedef struct {
    int V, C, L, NH, I, P, TV, B, T, E, n_params, n_variants;
    float eps;
    float *params;
    int32_t *ids, *mask, *type_ids;
    float *R;
    int gate_scale[2]; float alpha[2];
    float *pooled[2], loss[2], aux[2], *grads[2];
    int32_t *counts[2];
} fixture;

static int load_fixture(const char *path, fixture *x) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return 0; }
    int32_t h[16];
    int ok = et_test_read(f, h, sizeof h) && h[0] == 0x464D5445 && h[1] == 1;
    if (!ok) { fprintf(stderr, "%s: bad header\n", path); fclose(f); return 0; }
    x->V = h[2]; x->C = h[3]; x->L = h[4]; x->NH = h[5]; x->I = h[6]; x->P = h[7]; x->TV = h[8];
    x->B = h[9]; x->T = h[10]; x->E = h[11]; x->n_params = h[12]; x->n_variants = h[13];
    ok = et_test_read(f, &x->eps, 4) && x->n_variants == 2;
    size_t BT = (size_t)x->B * x->T, BC = (size_t)x->B * x->C;
    x->params = et_test_read_f32(f, (size_t)x->n_params, &ok);
    x->ids = malloc(BT * 4); x->mask = malloc(BT * 4); x->type_ids = malloc(BT * 4);
    ok = ok && et_test_read(f, x->ids, BT * 4) && et_test_read(f, x->mask, BT * 4) && et_test_read(f, x->type_ids, BT * 4);
    x->R = et_test_read_f32(f, BC, &ok);
    for (int v = 0; v < 2 && ok; v++) {
        ok = et_test_read(f, &x->gate_scale[v], 4) && et_test_read(f, &x->alpha[v], 4);
        x->pooled[v] = et_test_read_f32(f, BC, &ok);
        ok = ok && et_test_read(f, &x->loss[v], 4) && et_test_read(f, &x->aux[v], 4);
        x->counts[v] = malloc(sizeof(int32_t) * x->L * x->E);
        ok = ok && et_test_read(f, x->counts[v], sizeof(int32_t) * x->L * x->E);
        x->grads[v] = et_test_read_f32(f, (size_t)x->n_params, &ok);
    }
    fclose(f);
    if (!ok) fprintf(stderr, "%s: truncated\n", path);
    return ok;
}

static et_bert_config fixture_config(const fixture *x, int moe) {
    et_bert_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = x->V; c.hidden_size = x->C; c.num_layers = x->L; c.num_heads = x->NH;
    c.intermediate_size = x->I; c.max_position = x->P; c.type_vocab_size = x->TV;
    c.layer_norm_eps = x->eps; c.hidden_dropout = 0.1f; c.attn_dropout = 0.1f;
    c.pooling = ET_POOL_MEAN; c.normalize = 1;
    if (moe) c.moe_experts = x->E; /* layer mask 0 = all layers */
    return c;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) { double d = fabs((double)a[i] - b[i]); if (d > m || d != d) m = d != d ? INFINITY : d; }
    return m;
}
static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}
static double dotR(const float *pooled, const float *R, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)pooled[i] * R[i];
    return s;
}

/* ---------------------------------------------------------------- 1. PyTorch parity */
static void test_parity(et_bert *m, const fixture *x, et_pool *pool, int nthreads, float *grads_out[2]) {
    et_error err = {0};
    et_bert_acts a;
    size_t BC = (size_t)x->B * x->C;
    if (et_bert_acts_alloc(&a, &m->cfg, x->B, x->T, 1, nthreads, &err)) { CHECK(0, "acts: %s", err.msg); return; }
    float *grads = calloc(m->n_params, sizeof(float));
    et_bert_params g;
    et_bert_params_view(&m->cfg, grads, &g);
    for (int v = 0; v < 2; v++) {
        m->cfg.moe_gate_scale = x->gate_scale[v];
        m->cfg.moe_aux_weight = x->alpha[v];
        et_status s = et_bert_forward(m, &a, pool, x->ids, x->mask, x->type_ids, x->B, x->T, NULL, 0, 0, &err);
        CHECK(s == ET_OK, "forward: %s", err.msg);
        double dp = max_abs_diff(a.pooled, x->pooled[v], BC);
        double aux = et_bert_moe_aux_loss(m, &a), loss = dotR(a.pooled, x->R, BC) + aux;
        printf("  [t%d] gate_scale %d aux %.2g: pooled max abs err %.3g, loss %.7f vs %.7f, aux %.7f vs %.7f\n", nthreads,
               x->gate_scale[v], x->alpha[v], dp, loss, x->loss[v], aux, x->aux[v]);
        CHECK(dp <= 1e-5, "pooled differs from PyTorch by %g", dp);
        CHECK(fabs(loss - x->loss[v]) <= 1e-5 * fmax(1, fabs(x->loss[v])), "loss %g vs %g", loss, x->loss[v]);
        CHECK(fabs(aux - x->aux[v]) <= 1e-6, "aux loss %g vs %g", aux, x->aux[v]);
        for (int l = 0; l < x->L; l++) {
            float frac[ET_MOE_MAX_EXPERTS];
            int ne = et_bert_moe_fractions(m, &a, l, frac), tot = 0;
            CHECK(ne == x->E, "fractions: %d experts", ne);
            for (int e = 0; e < x->E; e++) tot += x->counts[v][l * x->E + e];
            for (int e = 0; e < x->E; e++) {
                CHECK(a.layer[l].moe.counts[e] == x->counts[v][l * x->E + e], "layer %d expert %d: %d tokens vs %d", l, e,
                      a.layer[l].moe.counts[e], x->counts[v][l * x->E + e]);
                CHECK(fabsf(frac[e] - (float)x->counts[v][l * x->E + e] / tot) < 1e-6f, "fraction");
            }
            if (v == 0 && nthreads == 1)
                printf("  layer %d real-token fractions: %.3f %.3f %.3f\n", l, frac[0], frac[1], x->E > 2 ? frac[2] : 0.0f);
        }
        memset(grads, 0, sizeof(float) * m->n_params);
        s = et_bert_backward(m, &a, pool, x->R, &g, &err);
        CHECK(s == ET_OK, "backward: %s", err.msg);
        double gscale = max_abs(x->grads[v], m->n_params), tiny = 1e-3 * gscale, worst = 0, worst_moe = 0;
        const char *wn = "";
        for (int t = 0; t < m->n_tensors; t++) {
            const et_tensor_view *tv = &m->tensors[t];
            const float *ref = x->grads[v] + tv->offset, *mine = grads + tv->offset;
            double ad = max_abs_diff(mine, ref, tv->numel);
            double rel = ad / fmax(max_abs(ref, tv->numel), tiny);
            if (rel > worst) { worst = rel; wn = tv->name; }
            if (et_bert_is_moe_tensor(tv->name) && rel > worst_moe) worst_moe = rel;
            if (rel > 1e-4) CHECK(0, "grad %s (gate_scale %d) rel err %.3g", tv->name, x->gate_scale[v], rel);
            if (!x->gate_scale[v] && strstr(tv->name, ".gate.weight"))
                CHECK(max_abs(mine, tv->numel) == 0.0, "%s: router gradient must be exactly 0 without gate scaling", tv->name);
        }
        printf("  [t%d] gate_scale %d: worst grad rel err %.3g (%s), worst MoE tensor %.3g\n", nthreads, x->gate_scale[v],
               worst, wn, worst_moe);
        if (grads_out) { grads_out[v] = malloc(sizeof(float) * m->n_params); memcpy(grads_out[v], grads, sizeof(float) * m->n_params); }
    }
    /* inference activations give the same embedding (variant 1 settings) */
    et_bert_acts ai;
    if (et_bert_acts_alloc(&ai, &m->cfg, x->B, x->T, 0, nthreads, &err) == ET_OK) {
        float *out = malloc(sizeof(float) * BC);
        CHECK(et_bert_forward(m, &ai, pool, x->ids, x->mask, x->type_ids, x->B, x->T, out, 1, 7, &err) == ET_OK, "%s", err.msg);
        double d = max_abs_diff(out, x->pooled[1], BC);
        CHECK(d <= 1e-5, "inference forward differs from PyTorch by %g", d);
        free(out);
        et_bert_acts_free(&ai);
    } else CHECK(0, "inference acts: %s", err.msg);
    free(grads);
    et_bert_acts_free(&a);
}

/* ---------------------------------------------------------------- 2. finite differences */
static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static double fwd_loss(et_bert *m, et_bert_acts *a, const fixture *x, int dropout, uint64_t seed) {
    et_error err = {0};
    if (et_bert_forward(m, a, NULL, x->ids, x->mask, x->type_ids, x->B, x->T, NULL, dropout, seed, &err)) {
        fprintf(stderr, "forward: %s\n", err.msg);
        return NAN;
    }
    return dotR(a->pooled, x->R, (size_t)x->B * x->C) + et_bert_moe_aux_loss(m, a);
}

static void idx_snapshot(const et_bert *m, const et_bert_acts *a, int32_t *out) {
    size_t BT = (size_t)a->B * a->T;
    for (int l = 0; l < m->cfg.num_layers; l++) memcpy(out + l * BT, a->layer[l].moe.idx, BT * sizeof(int32_t));
}

static void test_fd(et_bert *m, const fixture *x, int gate_scale, float alpha, int dropout, float jitter, int per_tensor) {
    et_error err = {0};
    et_bert_acts a;
    m->cfg.moe_gate_scale = gate_scale; m->cfg.moe_aux_weight = alpha; m->cfg.moe_jitter = jitter;
    if (et_bert_acts_alloc(&a, &m->cfg, x->B, x->T, 1, 1, &err)) { CHECK(0, "%s", err.msg); return; }
    const uint64_t seed = 0xC0FFEE;
    size_t BT = (size_t)x->B * x->T;
    int32_t *idx0 = malloc(sizeof(int32_t) * BT * x->L), *idx1 = malloc(sizeof(int32_t) * BT * x->L);
    float *grads = calloc(m->n_params, sizeof(float));
    et_bert_params g;
    et_bert_params_view(&m->cfg, grads, &g);
    if (jitter > 0) { /* jitter changes the router input (and is reproducible for a seed) */
        double Lj = fwd_loss(m, &a, x, dropout, seed);
        float *pr = malloc(sizeof(float) * BT * x->E);
        memcpy(pr, a.layer[0].moe.probs, sizeof(float) * BT * x->E);
        m->cfg.moe_jitter = 0;
        fwd_loss(m, &a, x, dropout, seed);
        double dj = max_abs_diff(pr, a.layer[0].moe.probs, BT * x->E);
        m->cfg.moe_jitter = jitter;
        double Lj2 = fwd_loss(m, &a, x, dropout, seed);
        CHECK(dj > 1e-4 && Lj == Lj2, "jitter: probs change %g, repeat %g vs %g", dj, Lj, Lj2);
        free(pr);
    }
    double L0 = fwd_loss(m, &a, x, dropout, seed);
    idx_snapshot(m, &a, idx0);
    CHECK(et_bert_backward(m, &a, NULL, x->R, &g, &err) == ET_OK, "%s", err.msg);
    const float h = 1e-3f;
    double floor_ = 1e-2 * max_abs(grads, m->n_params), worst = 0;
    const char *wn = "";
    int flips = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const et_tensor_view *tv = &m->tensors[t];
        const float *an = grads + tv->offset;
        if (strstr(tv->name, "key.bias")) continue; /* true gradient 0 (see test_bert) */
        int is_gate = strstr(tv->name, ".gate.weight") != NULL;
        if (is_gate && !gate_scale && alpha == 0) {
            CHECK(max_abs(an, tv->numel) == 0.0, "%s: router gradient must be exactly 0 (authors' routing)", tv->name);
        }
        double scale = fmax(max_abs(an, tv->numel), floor_), terr = 0;
        for (int k = 0; k < per_tensor; k++) {
            size_t i = rnd() % tv->numel;
            if (k & 1) for (int r = 0; r < 16; r++) { size_t j = rnd() % tv->numel; if (fabs(an[j]) > fabs(an[i])) i = j; }
            float *p = m->params + tv->offset + i, old = *p;
            *p = old + h; double Lp = fwd_loss(m, &a, x, dropout, seed); idx_snapshot(m, &a, idx1);
            int same = memcmp(idx0, idx1, sizeof(int32_t) * BT * x->L) == 0;
            *p = old - h; double Lm = fwd_loss(m, &a, x, dropout, seed); idx_snapshot(m, &a, idx1);
            same = same && memcmp(idx0, idx1, sizeof(int32_t) * BT * x->L) == 0;
            *p = old;
            if (!same) { flips++; continue; } /* a routing decision flipped: not differentiable there */
            double fd = (Lp - Lm) / (2.0 * h);
            double noise = fabs(Lp + Lm - 2.0 * L0) / (2.0 * h);
            double e = fmax(fabs(fd - an[i]) - noise, 0.0) / scale;
            if (is_gate && !gate_scale && alpha == 0) e = fabs(fd) / floor_; /* piecewise constant: fd must be ~0 */
            if (e > terr) terr = e;
        }
        if (terr > worst) { worst = terr; wn = tv->name; }
        CHECK(terr <= 1e-2, "fd (gate_scale %d, aux %g, dropout %d, jitter %g) %s: rel err %.3g", gate_scale, alpha, dropout,
              jitter, tv->name, terr);
    }
    printf("  fd gate_scale %d aux %.2g dropout %d jitter %.2g: worst rel err %.3g (%s), %d routing flips skipped\n", gate_scale,
           alpha, dropout, jitter, worst, wn, flips);
    CHECK(flips <= 2, "too many routing flips (%d)", flips);
    m->cfg.moe_jitter = 0;
    free(idx0); free(idx1); free(grads);
    et_bert_acts_free(&a);
}

/* ---------------------------------------------------------------- 3. MoE-only gradients */
static void test_moe_only(et_bert *m, const fixture *x, const float *full) {
    et_error err = {0};
    et_bert_acts a;
    m->cfg.moe_gate_scale = x->gate_scale[0]; m->cfg.moe_aux_weight = x->alpha[0];
    if (et_bert_acts_alloc(&a, &m->cfg, x->B, x->T, 1, 1, &err)) { CHECK(0, "%s", err.msg); return; }
    float *grads = calloc(m->n_params, sizeof(float));
    et_bert_params g;
    et_bert_params_view_moe_only(&m->cfg, grads, &g);
    fwd_loss(m, &a, x, 0, 0);
    CHECK(et_bert_backward(m, &a, NULL, x->R, &g, &err) == ET_OK, "%s", err.msg);
    double worst = 0;
    int n_moe = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const et_tensor_view *tv = &m->tensors[t];
        if (!et_bert_is_moe_tensor(tv->name)) {
            CHECK(max_abs(grads + tv->offset, tv->numel) == 0, "frozen %s got a gradient", tv->name);
            continue;
        }
        n_moe++;
        worst = fmax(worst, max_abs_diff(grads + tv->offset, full + tv->offset, tv->numel));
    }
    CHECK(n_moe == x->L * (1 + 2 * x->E), "%d MoE tensors", n_moe);
    CHECK(worst <= 1e-6, "MoE-only grads differ from the full backward by %g", worst);
    printf("  MoE-only view: %d trainable tensors, grads match full backward (max diff %.3g)\n", n_moe, worst);
    free(grads);
    et_bert_acts_free(&a);
}

/* ---------------------------------------------------------------- 4. conversion, save/load */
static void fill_random(et_bert *m) {
    for (int t = 0; t < m->n_tensors; t++) {
        const et_tensor_view *tv = &m->tensors[t];
        int ln = strstr(tv->name, "LayerNorm.weight") != NULL;
        for (size_t i = 0; i < tv->numel; i++)
            m->params[tv->offset + i] = (ln ? 1.0f : 0.0f) + 0.15f * ((float)(rnd() % 20001) / 10000.0f - 1.0f);
    }
}

static int forward_pooled(const et_bert *m, const fixture *x, float *out) {
    et_error err = {0};
    et_bert_acts a;
    if (et_bert_acts_alloc(&a, &m->cfg, x->B, x->T, 0, 1, &err)) { CHECK(0, "%s", err.msg); return 0; }
    et_status s = et_bert_forward(m, &a, NULL, x->ids, x->mask, x->type_ids, x->B, x->T, out, 0, 0, &err);
    CHECK(s == ET_OK, "forward: %s", err.msg);
    et_bert_acts_free(&a);
    return s == ET_OK;
}

static int copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb"), *g = f ? fopen(to, "wb") : NULL;
    char buf[1 << 14];
    size_t n;
    int ok = f && g;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) ok = fwrite(buf, 1, n, g) == n;
    if (f) fclose(f);
    if (g) fclose(g);
    return ok;
}

static void test_convert_and_io(const fixture *x) {
    et_error err = {0};
    et_bert_config dc = fixture_config(x, 0);
    et_bert d, m;
    size_t BC = (size_t)x->B * x->C;
    float *p0 = malloc(sizeof(float) * BC), *p1 = malloc(sizeof(float) * BC), *p2 = malloc(sizeof(float) * BC);
    if (et_bert_alloc(&d, &dc, &err)) { CHECK(0, "%s", err.msg); return; }
    fill_random(&d);
    forward_pooled(&d, x, p0);
    size_t dense_acts = et_bert_acts_bytes(&dc, 4, 8, 1, 1);
    /* only layer 1, then all layers */
    et_bert_alloc(&m, &dc, &err);
    memcpy(m.params, d.params, sizeof(float) * d.n_params);
    CHECK(et_bert_to_moe(&m, 2, 2u, 42, &err) == ET_OK, "%s", err.msg);
    CHECK(et_bert_find(&m, "encoder.layer.0.intermediate.dense.weight") && !et_bert_find(&m, "encoder.layer.1.intermediate.dense.weight") &&
          et_bert_find(&m, "encoder.layer.1.intermediate.dense.experts.1.bias") && !et_bert_find(&m, "encoder.layer.0.intermediate.dense.gate.weight"),
          "layer-1-only MoE table");
    CHECK(m.n_params == d.n_params + (size_t)x->I * x->C + x->I + 2 * x->C, "n_params %zu", m.n_params);
    m.cfg.moe_gate_scale = 0;
    forward_pooled(&m, x, p1);
    double dl1 = max_abs_diff(p0, p1, BC);
    et_bert_free(&m);
    et_bert_alloc(&m, &dc, &err);
    memcpy(m.params, d.params, sizeof(float) * d.n_params);
    CHECK(et_bert_to_moe(&m, 2, 0, 42, &err) == ET_OK, "%s", err.msg);
    CHECK(m.cfg.moe_experts == 2 && m.cfg.moe_gate_scale == 1 && m.cfg.moe_aux_weight == 0.01f, "to_moe defaults");
    CHECK(et_bert_to_moe(&m, 2, 0, 42, &err) == ET_ERR_ARG, "second conversion must fail");
    const et_tensor_view *ge = et_bert_find(&m, "encoder.layer.0.intermediate.dense.gate.weight");
    CHECK(ge && max_abs(m.params + ge->offset, ge->numel) <= 1.0 / sqrt(x->C) && max_abs(m.params + ge->offset, ge->numel) > 0.5 / sqrt(x->C),
          "router init range");
    CHECK(memcmp(m.params + et_bert_find(&m, "encoder.layer.1.intermediate.dense.experts.1.weight")->offset,
                 d.params + et_bert_find(&d, "encoder.layer.1.intermediate.dense.weight")->offset, sizeof(float) * x->I * x->C) == 0,
          "expert is not a copy of intermediate.dense");
    m.cfg.moe_gate_scale = 0;
    forward_pooled(&m, x, p1);
    double dl = max_abs_diff(p0, p1, BC);
    m.cfg.moe_gate_scale = 1;
    forward_pooled(&m, x, p2);
    double dsw = max_abs_diff(p0, p2, BC);
    printf("  dense -> MoE (unscaled routing): pooled max diff %.3g (all layers), %.3g (layer 1 only); "
           "with Switch gate scaling at step 0: %.3g\n", dl, dl1, dsw);
    CHECK(dl <= 1e-6 && dl1 <= 1e-6, "converted model (unscaled) differs from the dense one: %g / %g", dl, dl1);
    CHECK(et_bert_acts_bytes(&dc, 4, 8, 1, 1) == dense_acts, "dense acts size changed");

    /* save / load round trip */
    char dir[] = "/tmp/et_moe_test_XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    char vocab[4096] = "", path[800], path2[800];
    for (int i = 0; i < x->V; i++) snprintf(vocab + strlen(vocab), sizeof vocab - strlen(vocab), "tok%d\n", i);
    et_hf_save_opts o = {0};
    o.vocab_buf = vocab; o.vocab_len = strlen(vocab); o.do_lower_case = -1;
    m.cfg.moe_aux_weight = 0.02f; m.cfg.moe_jitter = 0.05f;
    m.cfg.moe_layer_mask = 0; /* = all */
    char mdir[600], ddir[600];
    snprintf(mdir, sizeof mdir, "%s/moe", dir);
    snprintf(ddir, sizeof ddir, "%s/dense", dir);
    CHECK(et_hf_save(mdir, &m, &o, &err) == ET_OK, "save: %s", err.msg);
    CHECK(et_hf_save(ddir, &d, &o, &err) == ET_OK, "save: %s", err.msg);
    et_bert r;
    if (et_hf_load(mdir, &r, &err) == ET_OK) {
        CHECK(r.cfg.moe_experts == 2 && r.cfg.moe_gate_scale == 1 && r.cfg.moe_aux_weight == 0.02f && r.cfg.moe_jitter == 0.05f &&
              et_bert_layer_is_moe(&r.cfg, 0) && et_bert_layer_is_moe(&r.cfg, 1), "MoE config not round-tripped");
        CHECK(r.n_params == m.n_params && memcmp(r.params, m.params, sizeof(float) * m.n_params) == 0, "params not round-tripped");
        r.cfg.pooling = ET_POOL_MEAN; r.cfg.normalize = 1;
        forward_pooled(&r, x, p1);
        CHECK(max_abs_diff(p1, p2, BC) == 0, "reloaded model computes differently");
        et_bert_free(&r);
    } else CHECK(0, "load: %s", err.msg);
    snprintf(path, sizeof path, "%s/config.json", mdir);
    char *cj = NULL; size_t cl = 0;
    if (et_read_file(path, 1 << 20, &cj, &cl, &err) == ET_OK) {
        CHECK(strstr(cj, "\"num_experts\": 2") && strstr(cj, "\"num_experts_per_tok\": 1") && strstr(cj, "\"moe\": \"intermediate\"") &&
              strstr(cj, "\"moe_layers\": [0, 1]") && strstr(cj, "\"moe_gate_scale\": true"), "config.json MoE keys:\n%s", cj);
        free(cj);
    }
    /* dense folder: no MoE keys, loads as before */
    snprintf(path, sizeof path, "%s/config.json", ddir);
    if (et_read_file(path, 1 << 20, &cj, &cl, &err) == ET_OK) { CHECK(!strstr(cj, "experts") && !strstr(cj, "moe"), "dense config has MoE keys"); free(cj); }
    if (et_hf_load(ddir, &r, &err) == ET_OK) {
        CHECK(r.cfg.moe_experts == 0 && r.n_params == d.n_params && memcmp(r.params, d.params, sizeof(float) * d.n_params) == 0, "dense round trip");
        et_bert_free(&r);
    } else CHECK(0, "dense load: %s", err.msg);
    /* MoE config over dense tensors: the missing tensor is named */
    snprintf(path, sizeof path, "%s/config.json", mdir);
    snprintf(path2, sizeof path2, "%s/config.json", ddir);
    char save_cfg[800];
    snprintf(save_cfg, sizeof save_cfg, "%s/config.dense", dir);
    copy_file(path2, save_cfg);
    copy_file(path, path2);
    CHECK(et_hf_load(ddir, &r, &err) == ET_ERR_MISMATCH && strstr(err.msg, "'encoder.layer.0.intermediate.dense.gate.weight' is missing"),
          "missing MoE tensor not named: %s", err.msg);
    printf("  error: %s\n", err.msg);
    /* dense config over MoE tensors */
    snprintf(path, sizeof path, "%s/config.json", mdir);
    copy_file(save_cfg, path);
    CHECK(et_hf_load(mdir, &r, &err) == ET_ERR_MISMATCH && strstr(err.msg, "mixture-of-experts"), "MoE tensors with a dense config: %s", err.msg);
    printf("  error: %s\n", err.msg);
    /* bad MoE keys */
    const char *bad[][2] = {{"\"num_experts_per_tok\": 1", "\"num_experts_per_tok\": 2"},
                            {"\"moe\": \"intermediate\"", "\"moe\": \"output\""},
                            {"\"moe_layers\": [0, 1]", "\"moe_layers\": [0, 5]"}};
    const char *want[] = {"num_experts_per_tok", "'moe'", "moe_layers"};
    snprintf(path, sizeof path, "%s/config.json", ddir);
    snprintf(path2, sizeof path2, "%s/config.json", mdir);
    for (int k = 0; k < 3; k++) {
        char *txt = NULL; size_t n = 0;
        copy_file(path, path2); /* path (ddir) holds the MoE config now */
        if (et_read_file(path2, 1 << 20, &txt, &n, &err)) break;
        char *at = strstr(txt, bad[k][0]);
        CHECK(at != NULL, "key %s not found", bad[k][0]);
        if (!at) { free(txt); continue; }
        char out[8192];
        snprintf(out, sizeof out, "%.*s%s%s", (int)(at - txt), txt, bad[k][1], at + strlen(bad[k][0]));
        et_write_file_atomic(path2, out, strlen(out), &err);
        CHECK(et_hf_load(mdir, &r, &err) != ET_OK && strstr(err.msg, want[k]), "bad key %s: %s", bad[k][1], err.msg);
        printf("  error: %s\n", err.msg);
        free(txt);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    et_bert_free(&m);
    et_bert_free(&d);
    free(p0); free(p1); free(p2);
}

static void report_minilm(void) {
    et_bert_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 30522; c.hidden_size = 384; c.num_layers = 6; c.num_heads = 12; c.intermediate_size = 1536;
    c.max_position = 512; c.type_vocab_size = 2; c.layer_norm_eps = 1e-12f; c.normalize = 1;
    size_t d = et_bert_acts_bytes(&c, 32, 128, 1, 2), np;
    et_bert_tensor_table(&c, NULL, 0, &np);
    c.moe_experts = 2;
    size_t dm = et_bert_acts_bytes(&c, 32, 128, 1, 2), npm;
    et_bert_tensor_table(&c, NULL, 0, &npm);
    printf("  MiniLM-L6, E=2 in all layers: params %.1f -> %.1f MiB (+%.1f%%), training acts 32x128 %.1f -> %.1f MiB (+%.1f%%)\n",
           np * 4 / 1048576.0, npm * 4 / 1048576.0, 100.0 * ((double)npm / np - 1), d / 1048576.0, dm / 1048576.0,
           100.0 * ((double)dm / d - 1));
}

int main(void) {
    fixture x = {0};
    if (!load_fixture("tests/fixtures/moe/tiny_moe.bin", &x)) return 1;
    et_bert_config cfg = fixture_config(&x, 1);
    et_bert m;
    et_error err = {0};
    if (et_bert_alloc(&m, &cfg, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    if ((int)m.n_params != x.n_params) { fprintf(stderr, "param count %zu vs fixture %d\n", m.n_params, x.n_params); return 1; }
    memcpy(m.params, x.params, sizeof(float) * m.n_params);

    printf("PyTorch parity (%s kernels)\n", et_simd_name());
    float *g1[2], *g2[2];
    test_parity(&m, &x, NULL, 1, g1);
    et_pool *pool = et_pool_create(2, &err);
    if (!pool) { fprintf(stderr, "%s\n", err.msg); return 1; }
    test_parity(&m, &x, pool, 2, g2);
    for (int v = 0; v < 2; v++) {
        double dg = max_abs_diff(g1[v], g2[v], m.n_params);
        CHECK(dg <= 1e-6, "1 vs 2 threads: grads differ by %g", dg);
    }
    printf("finite differences\n");
    test_fd(&m, &x, 1, 0.05f, 0, 0.0f, 4);
    test_fd(&m, &x, 0, 0.0f, 0, 0.0f, 4);
    test_fd(&m, &x, 0, 0.3f, 0, 0.0f, 2);  /* unscaled routing + aux: the router learns only balance */
    test_fd(&m, &x, 1, 0.05f, 1, 0.1f, 3); /* dropout + router jitter */
    printf("MoE-only gradients\n");
    test_moe_only(&m, &x, g1[0]);
    printf("conversion, save/load\n");
    test_convert_and_io(&x);
    report_minilm();
    et_pool_destroy(pool);
    et_bert_free(&m);
    for (int v = 0; v < 2; v++) { free(g1[v]); free(g2[v]); free(x.pooled[v]); free(x.grads[v]); free(x.counts[v]); }
    free(x.params); free(x.ids); free(x.mask); free(x.type_ids); free(x.R);
    return et_test_report("test_moe");
}
