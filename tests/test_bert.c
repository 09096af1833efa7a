/* test_bert.c - BERT encoder forward/backward against a PyTorch fixture (tools/gen_bert_fixture.py,
 * float64 reference), finite differences (whole model with padding mask, GELU, LayerNorm, mean/CLS
 * pooling, L2 normalize, dropout), the pooling / L2 pieces alone, thread-count determinism, frozen
 * tensors, and input validation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bert.h"
#include "kernels.h"
#include "et_test.h"

/* ---------------------------------------------------------------- fixture */
typedef struct {
    int V, C, L, NH, I, P, TV, B, T, n_params, n_variants;
    float eps;
    float *params;
    int32_t *ids, *mask, *type_ids;
    float *R, *hs; /* hs: [(L+1), B, T, C] */
    int pooling[2], normalize[2];
    float *pooled[2], loss[2], *grads[2];
} fixture;

static int load_fixture(const char *path, fixture *x) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return 0; }
    int32_t h[16];
    int ok = et_test_read(f, h, sizeof h) && h[0] == 0x46425445 && h[1] == 1;
    if (!ok) { fprintf(stderr, "%s: bad header\n", path); fclose(f); return 0; }
    x->V = h[2]; x->C = h[3]; x->L = h[4]; x->NH = h[5]; x->I = h[6]; x->P = h[7]; x->TV = h[8];
    x->B = h[9]; x->T = h[10]; x->n_params = h[11]; x->n_variants = h[12];
    ok = et_test_read(f, &x->eps, 4) && x->n_variants == 2;
    size_t BT = (size_t)x->B * x->T, BC = (size_t)x->B * x->C;
    x->params = et_test_read_f32(f, (size_t)x->n_params, &ok);
    x->ids = malloc(BT * 4); x->mask = malloc(BT * 4); x->type_ids = malloc(BT * 4);
    ok = ok && et_test_read(f, x->ids, BT * 4) && et_test_read(f, x->mask, BT * 4) && et_test_read(f, x->type_ids, BT * 4);
    x->R = et_test_read_f32(f, BC, &ok);
    x->hs = et_test_read_f32(f, (size_t)(x->L + 1) * BT * x->C, &ok);
    for (int v = 0; v < 2 && ok; v++) {
        int32_t pn[2];
        ok = et_test_read(f, pn, 8);
        x->pooling[v] = pn[0]; x->normalize[v] = pn[1];
        x->pooled[v] = et_test_read_f32(f, BC, &ok);
        ok = ok && et_test_read(f, &x->loss[v], 4);
        x->grads[v] = et_test_read_f32(f, (size_t)x->n_params, &ok);
    }
    fclose(f);
    if (!ok) fprintf(stderr, "%s: truncated\n", path);
    return ok;
}

static et_bert_config fixture_config(const fixture *x) {
    et_bert_config c = {0};
    c.vocab_size = x->V; c.hidden_size = x->C; c.num_layers = x->L; c.num_heads = x->NH;
    c.intermediate_size = x->I; c.max_position = x->P; c.type_vocab_size = x->TV;
    c.layer_norm_eps = x->eps; c.hidden_dropout = 0.1f; c.attn_dropout = 0.1f;
    c.pooling = ET_POOL_MEAN; c.normalize = 1;
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

static double loss_of(const float *pooled, const float *R, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)pooled[i] * R[i];
    return s;
}

/* ---------------------------------------------------------------- 1. PyTorch parity */
static void test_parity(et_bert *m, const fixture *x, et_pool *pool, int nthreads, float *grads_out[2],
                        float *pooled_out[2]) {
    et_error err = {0};
    et_bert_acts a;
    size_t BT = (size_t)x->B * x->T, BC = (size_t)x->B * x->C, BTC = BT * x->C;
    if (et_bert_acts_alloc(&a, &m->cfg, x->B, x->T, 1, nthreads, &err)) { CHECK(0, "acts: %s", err.msg); return; }
    float *grads = calloc((size_t)m->n_params, sizeof(float));
    et_bert_params g;
    et_bert_params_view(&m->cfg, grads, &g);
    for (int v = 0; v < 2; v++) {
        m->cfg.pooling = (et_pooling)x->pooling[v];
        m->cfg.normalize = x->normalize[v];
        et_status s = et_bert_forward(m, &a, pool, x->ids, x->mask, x->type_ids, x->B, x->T, NULL, 0, 0, &err);
        CHECK(s == ET_OK, "forward: %s", err.msg);
        if (v == 0) {
            double worst = 0;
            for (int l = 0; l <= x->L; l++) {
                const float *mine = l == 0 ? a.layer[0].inp : a.layer[l - 1].out;
                double d = max_abs_diff(mine, x->hs + (size_t)l * BTC, BTC);
                if (d > worst) worst = d;
                printf("  [t%d] hidden_states[%d] max abs err %.3g\n", nthreads, l, d);
            }
            CHECK(worst <= 1e-4, "hidden states differ from PyTorch by %g", worst);
            CHECK(a.hidden == a.layer[x->L - 1].out, "a.hidden is not the last layer output");
        }
        double dp = max_abs_diff(a.pooled, x->pooled[v], BC);
        double loss = loss_of(a.pooled, x->R, BC);
        printf("  [t%d] %s pooling: pooled max abs err %.3g, loss %.7f vs %.7f\n", nthreads,
               v ? "cls" : "mean", dp, loss, x->loss[v]);
        CHECK(dp <= 1e-4, "pooled (%s) differs from PyTorch by %g", v ? "cls" : "mean", dp);
        memset(grads, 0, sizeof(float) * m->n_params);
        s = et_bert_backward(m, &a, pool, x->R, &g, &err);
        CHECK(s == ET_OK, "backward: %s", err.msg);
        /* robust relative error: max|a-b| / max(max|b| over the tensor, tiny), with tiny = 1e-3 x the
         * largest gradient of the model (the key biases have an exactly-zero true gradient: softmax
         * is invariant to the per-query constant q.b_k, so only rounding noise is left there) */
        double gscale = max_abs(x->grads[v], (size_t)m->n_params), tiny = 1e-3 * gscale;
        double worst = 0; const char *wn = "";
        for (int t = 0; t < m->n_tensors; t++) {
            const et_tensor_view *tv = &m->tensors[t];
            const float *ref = x->grads[v] + tv->offset;
            double ad = max_abs_diff(grads + tv->offset, ref, tv->numel);
            double rel = ad / fmax(max_abs(ref, tv->numel), tiny);
            if (strstr(tv->name, "key.bias"))
                printf("  [t%d] %s: max|ref| %.3g max|mine| %.3g abs err %.3g (true gradient is 0)\n", nthreads, tv->name,
                       max_abs(ref, tv->numel), max_abs(grads + tv->offset, tv->numel), ad);
            if (strstr(tv->name, "key.bias")) {
                /* true gradient 0: both sides are float rounding noise, whose size depends on the SIMD
                 * path (wasm128 has no FMA); require noise-sized values, as test_train does */
                CHECK(ad <= 1e-5 * gscale, "grad %s (%s pooling) is not noise-sized: %.3g", tv->name, v ? "cls" : "mean", ad);
                continue;
            }
            if (rel > worst) { worst = rel; wn = tv->name; }
            if (rel > 1e-4) CHECK(0, "grad %s (%s pooling) rel err %.3g", tv->name, v ? "cls" : "mean", rel);
        }
        printf("  [t%d] %s pooling: worst grad rel err %.3g (%s)\n", nthreads, v ? "cls" : "mean", worst, wn);
        if (grads_out) { grads_out[v] = malloc(sizeof(float) * m->n_params); memcpy(grads_out[v], grads, sizeof(float) * m->n_params); }
        if (pooled_out) { pooled_out[v] = malloc(sizeof(float) * BC); memcpy(pooled_out[v], a.pooled, sizeof(float) * BC); }
    }
    /* inference activations give the same embedding */
    et_bert_acts ai;
    if (et_bert_acts_alloc(&ai, &m->cfg, x->B, x->T, 0, nthreads, &err) == ET_OK) {
        float *out = malloc(sizeof(float) * BC);
        et_status s = et_bert_forward(m, &ai, pool, x->ids, x->mask, x->type_ids, x->B, x->T, out, 1, 7, &err);
        CHECK(s == ET_OK, "inference forward: %s", err.msg);
        double d = max_abs_diff(out, a.pooled, BC);
        CHECK(d <= 1e-6, "inference forward differs from training forward by %g", d);
        CHECK(ai.bytes < a.bytes, "inference activations (%zu) not smaller than training (%zu)", ai.bytes, a.bytes);
        CHECK(et_bert_backward(m, &ai, pool, x->R, &g, &err) == ET_ERR_ARG, "backward on inference acts must fail");
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
    return loss_of(a->pooled, x->R, (size_t)x->B * x->C);
}

static void test_fd(et_bert *m, const fixture *x, et_pooling pooling, int normalize, int dropout, int per_tensor) {
    et_error err = {0};
    et_bert_acts a;
    m->cfg.pooling = pooling; m->cfg.normalize = normalize;
    if (et_bert_acts_alloc(&a, &m->cfg, x->B, x->T, 1, 1, &err)) { CHECK(0, "%s", err.msg); return; }
    const uint64_t seed = 0xC0FFEE;
    float *grads = calloc((size_t)m->n_params, sizeof(float));
    et_bert_params g;
    et_bert_params_view(&m->cfg, grads, &g);
    double L0 = fwd_loss(m, &a, x, dropout, seed);
    if (dropout) {
        double Lnd = fwd_loss(m, &a, x, 0, seed);
        double Ld2 = fwd_loss(m, &a, x, dropout, seed + 1);
        printf("  dropout: loss %.6f (seed), %.6f (seed+1), %.6f (no dropout)\n", L0, Ld2, Lnd);
        CHECK(fabs(L0 - Lnd) > 1e-4 && fabs(L0 - Ld2) > 1e-4, "dropout does not change the forward");
        double L0b = fwd_loss(m, &a, x, dropout, seed);
        CHECK(L0b == L0, "dropout forward is not deterministic for a fixed seed");
    }
    L0 = fwd_loss(m, &a, x, dropout, seed);
    et_bert_backward(m, &a, NULL, x->R, &g, &err);
    const float h = 1e-3f;
    /* error relative to max(tensor's max|grad|, 1e-2 x model's max|grad|): the float forward's
     * rounding noise in (L+ - L-) / 2h is ~1e-4 absolute, and some tensors (key biases) have a true
     * gradient of exactly 0 */
    double floor_ = 1e-2 * max_abs(grads, m->n_params);
    double worst = 0; const char *wn = "";
    for (int t = 0; t < m->n_tensors; t++) {
        const et_tensor_view *tv = &m->tensors[t];
        const float *an = grads + tv->offset;
        double scale = fmax(max_abs(an, tv->numel), floor_);
        double terr = 0;
        if (strstr(tv->name, "key.bias")) {
            /* the true gradient is exactly 0 (softmax ignores the per-query constant q.b_k), so a
             * difference quotient is pure float noise there: check the analytic value is ~0 */
            double z = max_abs(an, tv->numel) / max_abs(grads, m->n_params);
            CHECK(z <= 1e-5, "%s: gradient should be 0, is %g of the largest", tv->name, z);
            continue;
        }
        for (int k = 0; k < per_tensor; k++) {
            size_t i;
            if (k & 1) { /* a large entry: pick the biggest of a few random ones */
                i = rnd() % tv->numel;
                for (int r = 0; r < 16; r++) { size_t j = rnd() % tv->numel; if (fabs(an[j]) > fabs(an[i])) i = j; }
            } else i = rnd() % tv->numel;
            float *p = m->params + tv->offset + i, old = *p;
            *p = old + h; double Lp = fwd_loss(m, &a, x, dropout, seed);
            *p = old - h; double Lm = fwd_loss(m, &a, x, dropout, seed);
            *p = old;
            double fd = (Lp - Lm) / (2.0 * h);
            /* |L+ + L- - 2 L0| / 2h estimates the noise (+ curvature) of this difference quotient;
             * it is subtracted from the error so tensors with an exactly-zero true gradient (the
             * key biases: softmax ignores the per-query constant q.b_k) test only the noise */
            double noise = fabs(Lp + Lm - 2.0 * L0) / (2.0 * h);
            double e = fmax(fabs(fd - an[i]) - noise, 0.0) / scale;
            if (e > terr) terr = e;
        }
        if (terr > worst) { worst = terr; wn = tv->name; }
        CHECK(terr <= 1e-2, "fd (%s%s%s) %s: rel err %.3g", pooling ? "cls" : "mean", normalize ? ",norm" : "",
              dropout ? ",dropout" : "", tv->name, terr);
    }
    printf("  fd %s pooling, normalize %d, dropout %d: worst rel err %.3g (%s)\n", pooling ? "cls" : "mean",
           normalize, dropout, worst, wn);
    free(grads);
    et_bert_acts_free(&a);
}

/* pooling + L2 normalize alone, FD w.r.t. every input element, in double-checked float */
static void test_pool_l2(void) {
    enum { B = 3, T = 5, C = 7 };
    int32_t mask[B * T] = {1,1,1,1,1, 1,1,0,0,0, 1,0,0,0,0};
    float hid[B * T * C], R[B * C], dh[B * T * C], pr[B * C], po[B * C], nrm[B], dp[B * C];
    for (int i = 0; i < B * T * C; i++) hid[i] = (float)((int)(rnd() % 2001) - 1000) / 500.0f;
    for (int i = 0; i < B * C; i++) R[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
    for (int mode = 0; mode < 2; mode++)
        for (int norm = 0; norm < 2; norm++) {
            #define LOSS(out) ( et_bert_pool_forward(pr, hid, mask, B, T, C, (et_pooling)mode), \
                norm ? et_bert_l2norm_forward(po, nrm, pr, B, C) : (void)memcpy(po, pr, sizeof pr), \
                out = loss_of(po, R, B * C) )
            double L0; LOSS(L0); (void)L0;
            memset(dh, 0, sizeof dh); memset(dp, 0, sizeof dp);
            if (norm) et_bert_l2norm_backward(dp, R, po, nrm, B, C); else memcpy(dp, R, sizeof dp);
            et_bert_pool_backward(dh, dp, mask, B, T, C, (et_pooling)mode);
            double worst = 0, scale = fmax(max_abs(dh, B * T * C), 1e-3);
            for (int i = 0; i < B * T * C; i++) {
                float old = hid[i]; double Lp, Lm;
                hid[i] = old + 1e-3f; LOSS(Lp);
                hid[i] = old - 1e-3f; LOSS(Lm);
                hid[i] = old;
                double e = fabs((Lp - Lm) / 2e-3 - dh[i]) / scale;
                if (e > worst) worst = e;
            }
            #undef LOSS
            printf("  fd pool=%s l2=%d: worst rel err %.3g\n", mode ? "cls" : "mean", norm, worst);
            CHECK(worst <= 1e-2, "pool/l2 fd (pool=%d, l2=%d) rel err %g", mode, norm, worst);
        }
    /* a row with no real tokens pools to 0 and normalizes to 0 (no NaN) */
    int32_t m0[T] = {0};
    et_bert_pool_forward(pr, hid, m0, 1, T, C, ET_POOL_MEAN);
    et_bert_l2norm_forward(po, nrm, pr, 1, C);
    CHECK(max_abs(po, C) == 0, "all-padding row must give a zero embedding");
}

/* ---------------------------------------------------------------- 3. frozen tensors, errors */
static void test_frozen(et_bert *m, const fixture *x, float *full_grads) {
    et_error err = {0};
    et_bert_acts a;
    m->cfg.pooling = ET_POOL_MEAN; m->cfg.normalize = 1;
    if (et_bert_acts_alloc(&a, &m->cfg, x->B, x->T, 1, 1, &err)) { CHECK(0, "%s", err.msg); return; }
    float *grads = calloc((size_t)m->n_params, sizeof(float));
    et_bert_params g;
    et_bert_params_view(&m->cfg, grads, &g);
    /* freeze embeddings and layer 0, and layer 1's query weight */
    g.wte = g.wpe = g.wtt = g.emb_ln_w = g.emb_ln_b = NULL;
    memset(&g.layer[0], 0, sizeof g.layer[0]);
    g.layer[1].q_w = NULL;
    fwd_loss(m, &a, x, 0, 0);
    CHECK(et_bert_backward(m, &a, NULL, x->R, &g, &err) == ET_OK, "%s", err.msg);
    double worst = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const et_tensor_view *tv = &m->tensors[t];
        int frozen = strncmp(tv->name, "embeddings", 10) == 0 || strncmp(tv->name, "encoder.layer.0.", 16) == 0 ||
                     strcmp(tv->name, "encoder.layer.1.attention.self.query.weight") == 0;
        if (frozen) { CHECK(max_abs(grads + tv->offset, tv->numel) == 0, "frozen %s got a gradient", tv->name); continue; }
        double d = max_abs_diff(grads + tv->offset, full_grads + tv->offset, tv->numel);
        if (d > worst) worst = d;
    }
    CHECK(worst <= 1e-6, "trainable grads with frozen tensors differ from full backward by %g", worst);
    printf("  frozen: trainable grads match full backward (max diff %.3g)\n", worst);
    /* accumulation: a second backward doubles the gradients */
    float *g1 = malloc(sizeof(float) * m->n_params);
    memcpy(g1, grads, sizeof(float) * m->n_params);
    et_bert_backward(m, &a, NULL, x->R, &g, &err);
    double acc = 0;
    for (size_t i = 0; i < m->n_params; i++) acc = fmax(acc, fabs(grads[i] - 2 * g1[i]));
    CHECK(acc <= 1e-6, "backward does not accumulate (+=): %g", acc);
    free(g1);

    /* validation errors */
    int32_t ids[32 * 2];
    for (int i = 0; i < 64; i++) ids[i] = 1;
    ids[5] = x->V;
    CHECK(et_bert_forward(m, &a, NULL, ids, NULL, NULL, 1, x->T, NULL, 0, 0, &err) == ET_ERR_ARG &&
          strstr(err.msg, "vocabulary"), "bad id not reported: %s", err.msg);
    printf("  error: %s\n", err.msg);
    ids[5] = 1;
    CHECK(et_bert_forward(m, &a, NULL, ids, NULL, NULL, 1, x->P + 1, NULL, 0, 0, &err) == ET_ERR_ARG &&
          strstr(err.msg, "max_position"), "long sequence not reported: %s", err.msg);
    printf("  error: %s\n", err.msg);
    CHECK(et_bert_forward(m, &a, NULL, ids, NULL, NULL, x->B + 1, 2, NULL, 0, 0, &err) == ET_ERR_ARG,
          "batch over B_max not reported");
    CHECK(et_bert_backward(m, &a, NULL, x->R, &g, &err) == ET_ERR_ARG, "backward after failed forward must fail");
    free(grads);
    et_bert_acts_free(&a);
}

static void report_minilm(void) {
    et_bert_config c = {30522, 384, 6, 12, 1536, 512, 2, 1e-12f, 0.1f, 0.1f, 0, 1, ET_POOL_MEAN, 1};
    size_t q = et_bert_acts_bytes(&c, 32, 32, 1, 2), d = et_bert_acts_bytes(&c, 32, 128, 1, 2);
    size_t np; et_bert_tensor_table(&c, NULL, 0, &np);
    printf("  MiniLM-L6 training acts: queries 32x32 %.1f MiB, docs 32x128 %.1f MiB, total %.1f MiB; "
           "params %.1f MiB (x4 with grads+AdamW = %.1f MiB); inference 32x128 %.1f MiB\n",
           q / 1048576.0, d / 1048576.0, (q + d) / 1048576.0, np * 4 / 1048576.0, np * 16 / 1048576.0,
           et_bert_acts_bytes(&c, 32, 128, 0, 2) / 1048576.0);
}

int main(void) {
    fixture x = {0};
    if (!load_fixture("tests/fixtures/bert/tiny.bin", &x)) return 1;
    et_bert_config cfg = fixture_config(&x);
    et_bert m;
    et_error err = {0};
    if (et_bert_alloc(&m, &cfg, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    if ((int)m.n_params != x.n_params) { fprintf(stderr, "param count %zu vs fixture %d\n", m.n_params, x.n_params); return 1; }
    memcpy(m.params, x.params, sizeof(float) * m.n_params);

    printf("PyTorch parity (%s kernels)\n", et_simd_name());
    float *g1[2], *p1[2], *g2[2], *p2[2];
    test_parity(&m, &x, NULL, 1, g1, p1);
    et_pool *pool = et_pool_create(2, &err);
    if (!pool) { fprintf(stderr, "%s\n", err.msg); return 1; }
    test_parity(&m, &x, pool, 2, g2, p2);
    for (int v = 0; v < 2; v++) {
        double dg = max_abs_diff(g1[v], g2[v], m.n_params), dp = max_abs_diff(p1[v], p2[v], (size_t)x.B * x.C);
        printf("  threads 1 vs 2 (%s): pooled max diff %.3g, grads max diff %.3g\n", v ? "cls" : "mean", dp, dg);
        CHECK(dp <= 1e-6 && dg <= 1e-6, "1 vs 2 threads differ: pooled %g grads %g", dp, dg);
    }
    printf("finite differences\n");
    test_fd(&m, &x, ET_POOL_MEAN, 1, 0, 4);
    test_fd(&m, &x, ET_POOL_CLS, 0, 0, 4);
    test_fd(&m, &x, ET_POOL_MEAN, 1, 1, 4);
    test_pool_l2();
    printf("frozen tensors, accumulation, errors\n");
    test_frozen(&m, &x, g1[0]);
    report_minilm();
    et_pool_destroy(pool);
    et_bert_free(&m);
    for (int v = 0; v < 2; v++) { free(g1[v]); free(g2[v]); free(p1[v]); free(p2[v]); free(x.pooled[v]); free(x.grads[v]); }
    free(x.params); free(x.ids); free(x.mask); free(x.type_ids); free(x.R); free(x.hs);
    return et_test_report("test_bert");
}
