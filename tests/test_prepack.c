/* test_prepack.c - prepacked Linear weights and the fused bias epilogue (kernels.h
 * et_linear_pack / et_linear_forward_packed / et_linear_forward), and the inference acts' packed
 * weight cache (bert.h): on every SIMD path available, 1 and 2 threads, odd shapes.
 *   1. et_linear_forward (bias fused into the GEMM epilogue) vs a double-precision reference.
 *   2. et_linear_forward_packed is bit-identical to et_linear_forward; a buffer packed for another
 *      path (or NULL) falls back to W and is still right; et_linear_forward_gelu (GELU fused into the
 *      GEMM epilogue) is bit-identical to et_linear_forward then et_gelu_forward.
 *   3. et_bert_forward on inference acts (packed cache) == on training acts (no cache) to 1e-6, and
 *      stays right after the weights change on the same acts (the parameters' version repacks), for
 *      an in-place edit of one weight too, also after et_bert_acts_drop_packed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bert.h"
#include "kernels.h"
#include "et_test.h"

static uint64_t g_rng = 777;
static float frand(void) { return et_test_frand(&g_rng); } /* uniform [-1, 1) */
static void fill(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = frand(); }

static float *packed_for(et_pool *pool, const float *W, int IC, int OC) {
    size_t n = et_linear_packed_floats(IC, OC);
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, (n ? n : 1) * sizeof(float))) return NULL;
    et_linear_pack(pool, p, W, IC, OC);
    return p;
}

static void test_linear(et_pool *pool, const char *path, int N, int IC, int OC, const float *foreign_pack,
                        int foreign_IC, int foreign_OC) {
    float *x = malloc(sizeof(float) * (size_t)N * IC), *W = malloc(sizeof(float) * (size_t)OC * IC);
    float *b = malloc(sizeof(float) * OC), *y = malloc(sizeof(float) * (size_t)N * OC);
    float *yp = malloc(sizeof(float) * (size_t)N * OC);
    fill(x, (size_t)N * IC); fill(W, (size_t)OC * IC); fill(b, OC);
    /* 1. vs double reference */
    for (size_t i = 0; i < (size_t)N * OC; i++) y[i] = NAN; /* write-only */
    et_linear_forward(pool, y, x, W, b, N, IC, OC);
    double worst = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b[o];
            for (int i = 0; i < IC; i++) s += (double)x[(size_t)n * IC + i] * W[(size_t)o * IC + i];
            double d = fabs(s - y[(size_t)n * OC + o]) / (1.0 + fabs(s));
            if (!(d <= worst)) worst = d;
        }
    CHECK(worst < 1e-5 * sqrt((double)IC), "%s linear N=%d IC=%d OC=%d: rel err %g", path, N, IC, OC, worst);
    /* 2. packed == unpacked, bit for bit */
    float *Wp = packed_for(pool, W, IC, OC);
    CHECK(Wp != NULL, "alloc");
    if (Wp) {
        for (size_t i = 0; i < (size_t)N * OC; i++) yp[i] = NAN;
        et_linear_forward_packed(pool, yp, x, W, Wp, b, N, IC, OC);
        CHECK(!memcmp(y, yp, sizeof(float) * (size_t)N * OC), "%s packed != unpacked N=%d IC=%d OC=%d", path, N, IC, OC);
        free(Wp);
    }
    et_linear_forward_packed(pool, yp, x, W, NULL, b, N, IC, OC);
    CHECK(!memcmp(y, yp, sizeof(float) * (size_t)N * OC), "%s Wp NULL != unpacked", path);
    if (foreign_pack && foreign_IC == IC && foreign_OC == OC) { /* packed on another path: ignored */
        et_linear_forward_packed(pool, yp, x, W, foreign_pack, b, N, IC, OC);
        CHECK(!memcmp(y, yp, sizeof(float) * (size_t)N * OC), "%s foreign pack not ignored", path);
    }
    /* GELU fused into the epilogue == linear then et_gelu_forward, bit for bit (packed and not) */
    {
        float *g1 = malloc(sizeof(float) * (size_t)N * OC), *g2 = malloc(sizeof(float) * (size_t)N * OC);
        float *Wp2 = packed_for(pool, W, IC, OC);
        et_linear_forward(pool, g1, x, W, b, N, IC, OC);
        et_gelu_forward(pool, g1, g1, (int64_t)N * OC);
        for (int pk = 0; pk < 2; pk++) {
            for (size_t i = 0; i < (size_t)N * OC; i++) g2[i] = NAN;
            et_linear_forward_gelu(pool, g2, x, W, pk ? Wp2 : NULL, b, N, IC, OC);
            CHECK(!memcmp(g1, g2, sizeof(float) * (size_t)N * OC), "%s fused GELU (packed %d) != linear + gelu N=%d IC=%d OC=%d",
                  path, pk, N, IC, OC);
        }
        free(g1); free(g2); free(Wp2);
    }
    /* no bias */
    et_linear_forward(pool, y, x, W, NULL, N, IC, OC);
    et_linear_forward_packed(pool, yp, x, W, NULL, NULL, N, IC, OC);
    CHECK(!memcmp(y, yp, sizeof(float) * (size_t)N * OC), "%s no-bias packed != unpacked", path);
    free(x); free(W); free(b); free(y); free(yp);
}

/* ---- model level: the inference acts' cache ------------------------------------------------- */
static void test_model(et_pool *pool) {
    et_error err = {0};
    et_bert_config c = {0};
    c.vocab_size = 50; c.hidden_size = 40; c.num_layers = 2; c.num_heads = 4; c.intermediate_size = 72;
    c.max_position = 16; c.type_vocab_size = 2; c.layer_norm_eps = 1e-12f; c.pooling = ET_POOL_MEAN; c.normalize = 1;
    et_bert m;
    if (et_bert_alloc(&m, &c, &err)) { CHECK(0, "%s", err.msg); return; }
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = 0.2f * frand();
    for (int l = 0; l < c.num_layers; l++)
        for (int i = 0; i < c.hidden_size; i++) { m.w.layer[l].ln1_w[i] += 1.0f; m.w.layer[l].ln2_w[i] += 1.0f; }
    const int B = 3, T = 11;
    int32_t ids[B * T], mask[B * T];
    for (int i = 0; i < B * T; i++) { ids[i] = (i * 7 + 3) % c.vocab_size; mask[i] = (i % T) < T - (i / T) * 3; }
    et_bert_acts ai, at;
    int nt = et_pool_size(pool);
    if (et_bert_acts_alloc(&ai, &c, B, T, 0, nt, &err) || et_bert_acts_alloc(&at, &c, B, T, 1, nt, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    float pi[B * 40], pt[B * 40];
    for (int round = 0; round < 4; round++) {
        if (round == 3) et_bert_acts_drop_packed(&ai);
        for (int rep = 0; rep < 2; rep++) {
            CHECK(!et_bert_forward(&m, &ai, pool, ids, mask, NULL, B, T, pi, 0, 0, &err), "%s", err.msg);
            CHECK(!et_bert_forward(&m, &at, pool, ids, mask, NULL, B, T, pt, 0, 0, &err), "%s", err.msg);
            double d = 0;
            for (int i = 0; i < B * 40; i++) d = fmax(d, fabs((double)pi[i] - pt[i]));
            CHECK(d < 1e-6, "round %d rep %d: inference (packed) vs training acts differ by %g", round, rep, d);
        }
        CHECK(ai.wpack_key != 0 || ai.wpack == NULL, "the cache was not used");
        CHECK(ai.wpack_floats * sizeof(float) == et_bert_acts_packed_bytes(&c), "packed bytes %zu != et_bert_acts_packed_bytes %zu",
              ai.wpack_floats * sizeof(float), et_bert_acts_packed_bytes(&c));
        /* write the weights, then tell the model (et_bert_params_changed): the next forward must repack.
         * Round 0 edits ONE weight in place (one the old 17-sample fingerprint never looked at): the
         * cache must still see it; rounds 1 and 2 change every weight, as a training step does. */
        if (round == 0) m.w.layer[1].o_w[1] += 0.5f;
        else for (size_t i = 0; i < m.n_params; i++) m.params[i] *= (round == 1 ? -1.0f : 1.01f);
        uint64_t v = m.version;
        et_bert_params_changed(&m);
        CHECK(m.version != v, "et_bert_params_changed did not change the version");
    }
    et_bert_acts_free(&ai);
    et_bert_acts_free(&at);
    et_bert_free(&m);
}

int main(void) {
    et_error err = {0};
    static const char *paths[] = {"scalar", "avx2", "avx512", "wasm128"};
    static const int shapes[][3] = {{1, 7, 3}, {5, 33, 17}, {14, 384, 384}, {32, 384, 1536}, {29, 1536, 384},
                                    {3, 1000, 1100}, {40, 70, 2100}};
    /* a buffer packed on the scalar path, to feed the others */
    float *foreign = NULL;
    const int fIC = 384, fOC = 384;
    for (int nt = 1; nt <= 2; nt++) {
        et_pool *pool = et_pool_create(nt, &err);
        if (!pool) { fprintf(stderr, "pool: %s\n", err.msg); return 1; }
        for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
            if (et_kernels_force_path(paths[p])) continue;
            if (!foreign && !strcmp(paths[p], "scalar")) {
                float *W = malloc(sizeof(float) * fIC * fOC);
                fill(W, (size_t)fIC * fOC);
                foreign = packed_for(pool, W, fIC, fOC);
                free(W);
            }
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                test_linear(pool, paths[p], shapes[s][0], shapes[s][1], shapes[s][2],
                            strcmp(paths[p], "scalar") ? foreign : NULL, fIC, fOC);
            test_model(pool);
        }
        et_kernels_force_path(NULL);
        et_pool_destroy(pool);
    }
    free(foreign);
    return et_test_report("test_prepack");
}
