/* test_determinism.c - same inputs, same bits, whatever the thread count (README "Reproducibility").
 * On every SIMD path available, a small BERT (dense, and MoE with router jitter) runs a training
 * forward (dropout on) and backward twice (accumulating), and an inference forward, with a NULL pool
 * and with pools of 1, 2, 3, 4 and 8 threads (Emscripten: 1, 2, 3, 5), twice each: every gradient
 * and every pooled output must be byte-identical to the NULL-pool run (memcmp). The sizes are chosen
 * so that every kernel splits its work over the threads (GEMMs above the serial cut-off, LayerNorm
 * row chunks, bias columns, attention heads); the kernels are also checked one by one (LayerNorm
 * backward, Linear backward) so a failure names the kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bert.h"
#include "kernels.h"
#include "et_test.h"

static uint64_t g_rng = 4242;
static float frand(void) { return et_test_frand(&g_rng); }
static float *rnd(size_t n) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = frand();
    return x;
}

#if defined(__EMSCRIPTEN__)
static const int g_threads[] = {0, 1, 2, 3, 5}; /* 0 = NULL pool; the build pre-starts 4 workers */
#else
static const int g_threads[] = {0, 1, 2, 3, 4, 8}; /* 0 = NULL pool */
#endif
#define NPOOLS (int)(sizeof g_threads / sizeof *g_threads)

/* one pool at a time (Emscripten runs a thread only on a pre-started worker) */
static et_pool *mkpool(int p) {
    et_error err = {0};
    if (!g_threads[p]) return NULL;
    et_pool *pool = et_pool_create(g_threads[p], &err);
    if (!pool) { fprintf(stderr, "pool of %d threads: %s\n", g_threads[p], err.msg); exit(1); }
    return pool;
}

/* ---- kernels one by one ------------------------------------------------------------------------ */
static void test_layernorm(const char *path) {
    const int N = 300, C = 200; /* C not a multiple of 16 */
    float *x = rnd((size_t)N * C), *dy = rnd((size_t)N * C), *w = rnd(C), *b = rnd(C);
    float *y = malloc(sizeof(float) * N * C), *xh = malloc(sizeof(float) * N * C);
    float *mean = malloc(sizeof(float) * N), *rstd = malloc(sizeof(float) * N);
    et_layernorm_forward(NULL, y, mean, rstd, x, w, b, N, C, 1e-5f);
    et_layernorm_forward_xhat(NULL, y, xh, rstd, x, w, b, N, C, 1e-5f);
    size_t n = (size_t)N * C + 2 * (size_t)C;
    for (int mode = 0; mode < 2; mode++) {
        float *ref = NULL;
        for (int p = 0; p < NPOOLS; p++) {
            et_pool *pool = mkpool(p);
            for (int rep = 0; rep < 2; rep++) {
                float *g = calloc(n, sizeof(float)); /* dinp, dw, db */
                for (size_t i = 0; i < n; i++) g[i] = 0.25f * (float)(i % 7);
                if (mode) et_layernorm_backward_xhat(pool, g, g + (size_t)N * C, g + (size_t)N * C + C, dy, xh, w, rstd, N, C);
                else et_layernorm_backward(pool, g, g + (size_t)N * C, g + (size_t)N * C + C, dy, x, w, mean, rstd, N, C);
                if (!ref) { ref = g; continue; }
                CHECK(!memcmp(ref, g, sizeof(float) * n), "%s layernorm backward%s: %d threads differ from serial", path,
                      mode ? "_xhat" : "", g_threads[p]);
                free(g);
            }
            et_pool_destroy(pool);
        }
        free(ref);
    }
    free(x); free(dy); free(w); free(b); free(y); free(xh); free(mean); free(rstd);
}

static void test_linear_backward(const char *path) {
    const int N = 333, IC = 150, OC = 260;
    float *x = rnd((size_t)N * IC), *W = rnd((size_t)OC * IC), *dy = rnd((size_t)N * OC);
    size_t n = (size_t)N * IC + (size_t)OC * IC + OC;
    float *ref = NULL;
    for (int p = 0; p < NPOOLS; p++) {
        et_pool *pool = mkpool(p);
        for (int rep = 0; rep < 2; rep++) {
            float *g = malloc(sizeof(float) * n);
            for (size_t i = 0; i < n; i++) g[i] = 0.5f * (float)(i % 5);
            et_linear_backward(pool, g, g + (size_t)N * IC, g + (size_t)N * IC + (size_t)OC * IC, dy, x, W, N, IC, OC);
            if (!ref) { ref = g; continue; }
            CHECK(!memcmp(ref, g, sizeof(float) * n), "%s linear backward: %d threads differ from serial", path, g_threads[p]);
            free(g);
        }
        et_pool_destroy(pool);
    }
    free(ref); free(x); free(W); free(dy);
}

/* ---- the model ----------------------------------------------------------------------------------- */
typedef struct { float *grads, *pooled_train, *pooled_inf; } model_out;

static void run_model(const et_bert *m, et_pool *pool, int nthreads, model_out *o, int B, int T) {
    et_error err = {0};
    const et_bert_config *c = &m->cfg;
    int32_t *ids = malloc(sizeof(int32_t) * B * T), *mask = malloc(sizeof(int32_t) * B * T);
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 7 + 3) % c->vocab_size; mask[i] = (i % T) < T - (i / T) % 9; }
    et_bert_acts at, ai;
    o->grads = calloc(m->n_params, sizeof(float));
    o->pooled_train = malloc(sizeof(float) * B * c->hidden_size);
    o->pooled_inf = malloc(sizeof(float) * B * c->hidden_size);
    if (et_bert_acts_alloc(&at, c, B, T, 1, nthreads, &err) || et_bert_acts_alloc(&ai, c, B, T, 0, nthreads, &err)) {
        CHECK(0, "acts: %s", err.msg);
        return;
    }
    et_bert_params g;
    et_bert_params_view(c, o->grads, &g);
    float *dp = malloc(sizeof(float) * B * c->hidden_size);
    uint64_t r = g_rng;
    g_rng = 99;
    for (int i = 0; i < B * c->hidden_size; i++) dp[i] = frand();
    g_rng = r;
    for (int step = 0; step < 2; step++) { /* two micro-batches accumulate */
        CHECK(!et_bert_forward(m, &at, pool, ids, mask, NULL, B, T, o->pooled_train, 1, 1234 + step, &err), "%s", err.msg);
        CHECK(!et_bert_backward(m, &at, pool, dp, &g, &err), "%s", err.msg);
    }
    CHECK(!et_bert_forward(m, &ai, pool, ids, mask, NULL, B, T, o->pooled_inf, 0, 0, &err), "%s", err.msg);
    et_bert_acts_free(&at);
    et_bert_acts_free(&ai);
    free(dp); free(ids); free(mask);
}

static void test_model(const char *path, int experts) {
    et_error err = {0};
    et_bert_config c = {0};
    c.vocab_size = 60; c.hidden_size = 96; c.num_layers = 2; c.num_heads = 4; c.intermediate_size = 256;
    c.max_position = 48; c.type_vocab_size = 2; c.layer_norm_eps = 1e-12f; c.pooling = ET_POOL_MEAN; c.normalize = 1;
    c.hidden_dropout = 0.1f; c.attn_dropout = 0.1f;
    if (experts) { c.moe_experts = experts; c.moe_gate_scale = 1; c.moe_aux_weight = 0.01f; c.moe_jitter = 0.1f; }
    et_bert m;
    if (et_bert_alloc(&m, &c, &err)) { CHECK(0, "%s", err.msg); return; }
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = 0.1f * frand();
    for (int l = 0; l < c.num_layers; l++)
        for (int i = 0; i < c.hidden_size; i++) { m.w.layer[l].ln1_w[i] += 1.0f; m.w.layer[l].ln2_w[i] += 1.0f; }
    const int B = 8, T = 40;
    model_out ref = {0};
    for (int p = 0; p < NPOOLS; p++) {
        et_pool *pool = mkpool(p);
        for (int rep = 0; rep < (p ? 2 : 1); rep++) {
            model_out o = {0};
            run_model(&m, pool, g_threads[p] ? g_threads[p] : 1, &o, B, T);
            if (!ref.grads) { ref = o; continue; }
            CHECK(!memcmp(ref.grads, o.grads, sizeof(float) * m.n_params), "%s %s: gradients at %d threads differ from serial",
                  path, experts ? "moe" : "dense", g_threads[p]);
            CHECK(!memcmp(ref.pooled_train, o.pooled_train, sizeof(float) * B * c.hidden_size),
                  "%s %s: training forward at %d threads differs from serial", path, experts ? "moe" : "dense", g_threads[p]);
            CHECK(!memcmp(ref.pooled_inf, o.pooled_inf, sizeof(float) * B * c.hidden_size),
                  "%s %s: inference forward at %d threads differs from serial", path, experts ? "moe" : "dense", g_threads[p]);
            free(o.grads); free(o.pooled_train); free(o.pooled_inf);
        }
        et_pool_destroy(pool);
    }
    int moved = 0;
    for (size_t i = 0; i < m.n_params && !moved; i++) moved = ref.grads[i] != 0.0f;
    CHECK(moved, "no gradient at all");
    free(ref.grads); free(ref.pooled_train); free(ref.pooled_inf);
    et_bert_free(&m);
}

int main(void) {
    static const char *paths[] = {"scalar", "avx2", "avx512", "wasm128"};
    int tested = 0;
    for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
        if (et_kernels_force_path(paths[p])) continue;
        tested++;
        test_layernorm(paths[p]);
        test_linear_backward(paths[p]);
        test_model(paths[p], 0);
        test_model(paths[p], 2);
    }
    et_kernels_force_path(NULL);
    CHECK(tested > 0, "no SIMD path available");
    return et_test_report("test_determinism");
}
