/* test_attn_rs.c - attention without stored probabilities (kernels.h et_attention_forward_rs /
 * et_attention_backward_rs, used by bert's training activations): on every SIMD path here, 1 and 2
 * threads, with a padding mask (one sequence fully masked), with and without dropout, the output and
 * dq, dk, dv must equal BIT FOR BIT those of et_attention_forward / et_attention_backward with the
 * [B,NH,T,T] probabilities stored (which test_kernels checks against references and finite
 * differences). Also the gradients with some outputs not wanted (NULL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "et_test.h"

static uint64_t g_rng = 4242;
static float frand(void) { return et_test_frand(&g_rng); }

static void run_case(et_pool *pool, const char *path, int B, int T, int C, int NH, float p, int with_mask) {
    size_t n = (size_t)B * T * C;
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *dout = malloc(n * 4);
    float *o1 = malloc(n * 4), *o2 = malloc(n * 4), *att = malloc((size_t)B * NH * T * T * 4);
    float *rs = malloc((size_t)B * NH * T * 2 * 4), *scr = malloc((size_t)et_pool_size(pool) * et_attention_scratch_floats(T, C, NH) * 4);
    float *g1[3], *g2[3];
    int32_t *mask = malloc((size_t)B * T * 4);
    for (int i = 0; i < 3; i++) { g1[i] = malloc(n * 4); g2[i] = malloc(n * 4); }
    for (size_t i = 0; i < n; i++) { q[i] = 2 * frand(); k[i] = 2 * frand(); v[i] = frand(); dout[i] = frand(); }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) mask[b * T + t] = b == 1 ? 0 : t < T - b;
    const int32_t *mk = with_mask ? mask : NULL;
    et_attention_forward(pool, o1, att, scr, q, k, v, mk, B, T, C, NH, p, 99);
    et_attention_forward_rs(pool, o2, rs, scr, q, k, v, mk, B, T, C, NH, p, 99);
    CHECK(!memcmp(o1, o2, n * 4), "%s B%d T%d p%g mask%d: forward outputs differ", path, B, T, p, with_mask);
    for (int want = 0; want < 2; want++) {
        for (int i = 0; i < 3; i++) { memset(g1[i], 0, n * 4); memset(g2[i], 0, n * 4); g1[i][0] = g2[i][0] = 0.5f; }
        float *a1[3] = {g1[0], g1[1], g1[2]}, *a2[3] = {g2[0], g2[1], g2[2]};
        if (want) { a1[0] = a2[0] = NULL; a1[2] = a2[2] = NULL; } /* dk only */
        et_attention_backward(pool, a1[0], a1[1], a1[2], scr, dout, att, q, k, v, B, T, C, NH, p, 99);
        et_attention_backward_rs(pool, a2[0], a2[1], a2[2], scr, dout, rs, mk, q, k, v, B, T, C, NH, p, 99);
        for (int i = 0; i < 3; i++)
            CHECK(!memcmp(g1[i], g2[i], n * 4), "%s B%d T%d p%g mask%d want%d: gradient %d differs", path, B, T, p,
                  with_mask, want, i);
    }
    free(q); free(k); free(v); free(dout); free(o1); free(o2); free(att); free(rs); free(scr); free(mask);
    for (int i = 0; i < 3; i++) { free(g1[i]); free(g2[i]); }
}

int main(void) {
    et_error err = {0};
    static const char *paths[] = {"scalar", "avx2", "avx512", "wasm128"};
    for (int nt = 1; nt <= 2; nt++) {
        et_pool *pool = et_pool_create(nt, &err);
        if (!pool) { fprintf(stderr, "pool: %s\n", err.msg); return 1; }
        for (size_t pi = 0; pi < 4; pi++) {
            if (et_kernels_force_path(paths[pi])) continue;
            for (int m = 0; m < 2; m++)
                for (int d = 0; d < 2; d++) {
                    run_case(pool, paths[pi], 3, 13, 24, 3, d ? 0.2f : 0.0f, m);
                    run_case(pool, paths[pi], 2, 40, 64, 2, d ? 0.1f : 0.0f, m);
                    run_case(pool, paths[pi], 1, 5, 8, 1, d ? 0.3f : 0.0f, m);
                }
        }
        et_kernels_force_path(NULL);
        et_pool_destroy(pool);
    }
    return et_test_report("test_attn_rs");
}
