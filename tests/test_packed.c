/* test_packed.c - packed (variable-length) batches give what the length-padded batch gives.
 *
 * A small BERT (dense, and MoE) on every SIMD path: B sequences of different lengths (1 .. T) run
 * once padded to T with the key mask (et_bert_forward) and once concatenated without padding
 * (et_bert_forward_packed). Without dropout:
 *   - inference: pooled embeddings and every real token's last hidden state agree to float rounding
 *     (tolerance 2e-5 absolute on values of order 1; the measured difference is printed);
 *   - training: forward + backward from the same dL/dpooled give the same gradient for every parameter
 *     to float rounding (max |diff| <= 1e-4 * max |grad|): the weight gradients sum over the rows in
 *     another k blocking (the padded rows add zeros), so bits may differ;
 * for mean and CLS pooling. With dropout the packed run is deterministic over thread counts
 * (byte-identical gradients with a NULL pool and 2 and 3 threads). Bad packed inputs are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bert.h"
#include "kernels.h"
#include "et_test.h"

static uint64_t g_rng = 777;
static float frand(void) { return et_test_frand(&g_rng); }

#define NB 7
static const int g_lens[NB] = {40, 33, 17, 16, 5, 1, 29};
#define TP 40 /* the padded length = the longest */

static double maxdiff(const float *a, const float *b, size_t n, double *amax) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e; /* NaN propagates */
        if (fabs(a[i]) > m) m = fabs(a[i]);
    }
    if (amax) *amax = m;
    return d;
}

typedef struct { int32_t pid[NB * TP], pmask[NB * TP], ptype[NB * TP], kid[NB * TP], ktype[NB * TP]; int n; } batch;

static void make_batch(batch *bt, int V) {
    memset(bt, 0, sizeof *bt);
    int r = 0;
    for (int b = 0; b < NB; b++)
        for (int t = 0; t < TP; t++) {
            int real = t < g_lens[b];
            int id = real ? 1 + (int)((frand() + 1.0f) * 0.5f * (V - 2)) : 0;
            int ty = real && t > g_lens[b] / 2 ? 1 : 0;
            bt->pid[b * TP + t] = id;
            bt->pmask[b * TP + t] = real;
            bt->ptype[b * TP + t] = ty;
            if (real) { bt->kid[r] = id; bt->ktype[r] = ty; r++; }
        }
    bt->n = r;
}

static void test_model(const char *path, int experts, et_pooling pooling, int normalize) {
    et_error err = {0};
    et_bert_config c = {0};
    c.vocab_size = 60; c.hidden_size = 96; c.num_layers = 2; c.num_heads = 4; c.intermediate_size = 256;
    c.max_position = 48; c.type_vocab_size = 2; c.layer_norm_eps = 1e-12f; c.pooling = pooling; c.normalize = normalize;
    c.hidden_dropout = 0.1f; c.attn_dropout = 0.1f;
    if (experts) { c.moe_experts = experts; c.moe_gate_scale = 1; c.moe_aux_weight = 0.0f; }
    et_bert m;
    if (et_bert_alloc(&m, &c, &err)) { CHECK(0, "%s", err.msg); return; }
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = 0.1f * frand();
    for (int l = 0; l < c.num_layers; l++)
        for (int i = 0; i < c.hidden_size; i++) { m.w.layer[l].ln1_w[i] += 1.0f; m.w.layer[l].ln2_w[i] += 1.0f; }
    /* larger q/k weights: attention far from uniform, so a wrong sequence boundary shows */
    for (int l = 0; l < c.num_layers; l++)
        for (int i = 0; i < c.hidden_size * c.hidden_size; i++) { m.w.layer[l].q_w[i] *= 4; m.w.layer[l].k_w[i] *= 4; }
    et_bert_params_changed(&m);
    const int C = c.hidden_size;
    batch bt;
    make_batch(&bt, c.vocab_size);
    const char *what = experts ? "moe" : pooling == ET_POOL_CLS ? "dense cls" : "dense mean";
    et_pool *pool = et_pool_create(2, &err);

    /* inference */
    et_bert_acts a;
    if (et_bert_acts_alloc(&a, &c, NB, TP, 0, 2, &err)) { CHECK(0, "%s", err.msg); goto out; }
    float *pp = malloc(sizeof(float) * NB * C), *pk = malloc(sizeof(float) * NB * C);
    float *hp = malloc(sizeof(float) * NB * TP * C);
    CHECK(!et_bert_forward(&m, &a, pool, bt.pid, bt.pmask, bt.ptype, NB, TP, pp, 0, 1, &err), "%s", err.msg);
    memcpy(hp, a.hidden, sizeof(float) * NB * TP * C);
    CHECK(!et_bert_forward_packed(&m, &a, pool, bt.kid, bt.ktype, g_lens, NB, pk, 0, 1, &err), "%s", err.msg);
    double amax, d = maxdiff(pp, pk, (size_t)NB * C, &amax);
    CHECK(d <= 2e-5, "%s %s inference: packed pooled differs from padded by %g", path, what, d);
    double dh = 0;
    for (int b = 0, r = 0; b < NB; b++)
        for (int t = 0; t < g_lens[b]; t++, r++) {
            double e = maxdiff(hp + ((size_t)b * TP + t) * C, a.hidden + (size_t)r * C, (size_t)C, NULL);
            if (!(e <= dh)) dh = e;
        }
    CHECK(dh <= 2e-5, "%s %s inference: packed hidden states differ from padded by %g", path, what, dh);
    printf("%-7s %-10s inference: max |packed - padded| pooled %.2e, hidden %.2e (max |pooled| %.2f)\n", path, what, d,
           dh, amax);
    /* the padded path again after a packed forward on the same acts: the same bits as the first time */
    float *pp2 = malloc(sizeof(float) * NB * C);
    CHECK(!et_bert_forward(&m, &a, pool, bt.pid, bt.pmask, bt.ptype, NB, TP, pp2, 0, 1, &err), "%s", err.msg);
    CHECK(!memcmp(pp, pp2, sizeof(float) * NB * C), "%s %s: padded forward changed after a packed one", path, what);
    /* bad inputs */
    int32_t bad[NB];
    memcpy(bad, g_lens, sizeof bad);
    bad[3] = 0;
    CHECK(et_bert_forward_packed(&m, &a, pool, bt.kid, bt.ktype, bad, NB, pk, 0, 1, &err) == ET_ERR_ARG, "zero length accepted");
    bad[3] = TP + 1;
    CHECK(et_bert_forward_packed(&m, &a, pool, bt.kid, bt.ktype, bad, NB, pk, 0, 1, &err) == ET_ERR_ARG, "too long accepted");
    CHECK(et_bert_forward_packed(&m, &a, pool, bt.kid, bt.ktype, g_lens, NB + 1, pk, 0, 1, &err) == ET_ERR_ARG,
          "more sequences than B_max accepted");
    et_bert_acts_free(&a);
    free(pp); free(pk); free(hp); free(pp2);

    /* training: the same gradients (no dropout); then packed with dropout at 1, 2, 3 threads */
    et_bert_acts ta;
    if (et_bert_acts_alloc(&ta, &c, NB, TP, 1, 3, &err)) { CHECK(0, "%s", err.msg); goto out; }
    float *dpooled = malloc(sizeof(float) * NB * C);
    for (int i = 0; i < NB * C; i++) dpooled[i] = frand();
    float *gp = calloc(m.n_params, sizeof(float)), *gk = calloc(m.n_params, sizeof(float));
    et_bert_params vp, vk;
    et_bert_params_view(&c, gp, &vp);
    et_bert_params_view(&c, gk, &vk);
    CHECK(!et_bert_forward(&m, &ta, pool, bt.pid, bt.pmask, bt.ptype, NB, TP, NULL, 0, 1, &err), "%s", err.msg);
    CHECK(!et_bert_backward(&m, &ta, pool, dpooled, &vp, &err), "%s", err.msg);
    CHECK(!et_bert_forward_packed(&m, &ta, pool, bt.kid, bt.ktype, g_lens, NB, NULL, 0, 1, &err), "%s", err.msg);
    CHECK(!et_bert_backward(&m, &ta, pool, dpooled, &vk, &err), "%s", err.msg);
    double gmax, dg = maxdiff(gp, gk, m.n_params, &gmax);
    CHECK(gmax > 0 && dg <= 1e-4 * gmax, "%s %s training: packed gradients differ from padded by %g (max |grad| %g)", path,
          what, dg, gmax);
    /* per tensor, so a failure names it */
    for (int i = 0; i < m.n_tensors; i++) {
        const et_tensor_view *tv = &m.tensors[i];
        double tm, td = maxdiff(gp + tv->offset, gk + tv->offset, tv->numel, &tm);
        CHECK(td <= 1e-4 * gmax, "%s %s training: gradient of %s differs by %g", path, what, tv->name, td);
    }
    printf("%-7s %-10s training: max |packed - padded| gradient %.2e (max |grad| %.2f)\n", path, what, dg, gmax);
    float *ref = NULL;
    for (int nt = 0; nt <= 3; nt++) {
        if (nt == 1) continue;
        et_pool *p2 = nt ? et_pool_create(nt, &err) : NULL;
        float *g = calloc(m.n_params, sizeof(float));
        et_bert_params vg;
        et_bert_params_view(&c, g, &vg);
        CHECK(!et_bert_forward_packed(&m, &ta, p2, bt.kid, bt.ktype, g_lens, NB, NULL, 1, 99, &err), "%s", err.msg);
        CHECK(!et_bert_backward(&m, &ta, p2, dpooled, &vg, &err), "%s", err.msg);
        et_pool_destroy(p2);
        if (!ref) { ref = g; continue; }
        CHECK(!memcmp(ref, g, sizeof(float) * m.n_params), "%s %s: packed dropout gradients at %d threads differ from serial",
              path, what, nt);
        /* dropout really acted: not the no-dropout gradient */
        CHECK(maxdiff(g, gk, m.n_params, NULL) > 1e-3 * gmax, "%s %s: dropout changed nothing", path, what);
        free(g);
    }
    free(ref);
    free(dpooled); free(gp); free(gk);
    et_bert_acts_free(&ta);
out:
    et_pool_destroy(pool);
    et_bert_free(&m);
}

int main(void) {
    static const char *paths[] = {"scalar", "avx2", "avx512", "wasm128"};
    for (int p = 0; p < 4; p++) {
        if (et_kernels_force_path(paths[p])) continue;
        test_model(paths[p], 0, ET_POOL_MEAN, 1);
        test_model(paths[p], 0, ET_POOL_CLS, 0);
        test_model(paths[p], 3, ET_POOL_MEAN, 1);
    }
    et_kernels_force_path(NULL);
    return et_test_report("test_packed");
}
