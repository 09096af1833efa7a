/* test_lnxhat.c - the LayerNorm variant that keeps xhat instead of its input (kernels.h
 * et_layernorm_forward_xhat / et_layernorm_affine / et_layernorm_backward_xhat, used by bert's
 * training activations), on every SIMD path here, 1 and 2 threads, odd sizes, a weight with zeros:
 *   - out and rstd agree with et_layernorm_forward (1e-6), xhat with a double reference (1e-5);
 *   - et_layernorm_affine(xhat) reproduces out BIT FOR BIT (bert recomputes layer outputs with it);
 *   - the backward (dinp, dw, db, accumulating) agrees with et_layernorm_backward (1e-5 relative) and
 *     with a double-precision reference of the LayerNorm gradient. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "et_test.h"

static uint64_t g_rng = 99;
static float frand(void) { return et_test_frand(&g_rng); }

static double rel(double a, double b) { return fabs(a - b) / (1.0 + fabs(b)); }

static void run(et_pool *pool, const char *path, int N, int C) {
    size_t n = (size_t)N * C;
    float *x = malloc(n * 4), *y1 = malloc(n * 4), *y2 = malloc(n * 4), *y3 = malloc(n * 4), *xh = malloc(n * 4);
    float *dy = malloc(n * 4), *d1 = malloc(n * 4), *d2 = malloc(n * 4);
    float *w = malloc(C * 4), *b = malloc(C * 4), *m1 = malloc(N * 4), *r1 = malloc(N * 4), *r2 = malloc(N * 4);
    float *dw1 = malloc(C * 4), *dw2 = malloc(C * 4), *db1 = malloc(C * 4), *db2 = malloc(C * 4);
    for (size_t i = 0; i < n; i++) { x[i] = 3.0f * frand() + 0.5f; dy[i] = frand(); d1[i] = d2[i] = 0.25f; }
    for (int i = 0; i < C; i++) { w[i] = i % 5 == 0 ? 0.0f : 1.0f + frand(); b[i] = frand(); dw1[i] = dw2[i] = db1[i] = db2[i] = 0.5f; }
    et_layernorm_forward(pool, y1, m1, r1, x, w, b, N, C, 1e-12f);
    et_layernorm_forward_xhat(pool, y2, xh, r2, x, w, b, N, C, 1e-12f);
    et_layernorm_affine(pool, y3, xh, w, b, N, C);
    CHECK(!memcmp(y2, y3, n * 4), "%s N%d C%d: affine(xhat) is not the forward's output", path, N, C);
    double e_out = 0, e_xh = 0, e_r = 0;
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += xr[i];
        m /= C;
        for (int i = 0; i < C; i++) v += (xr[i] - m) * (xr[i] - m);
        v /= C;
        double s = 1.0 / sqrt(v + 1e-12);
        e_r = fmax(e_r, rel(r2[r], r1[r]));
        for (int i = 0; i < C; i++) {
            e_xh = fmax(e_xh, fabs(xh[(size_t)r * C + i] - (xr[i] - m) * s));
            e_out = fmax(e_out, fabs(y2[(size_t)r * C + i] - y1[(size_t)r * C + i]));
        }
    }
    CHECK(e_out < 1e-5 && e_r < 1e-6 && e_xh < 1e-5, "%s N%d C%d: forward out %g rstd %g xhat %g", path, N, C, e_out, e_r, e_xh);
    et_layernorm_backward(pool, d1, dw1, db1, dy, x, w, m1, r1, N, C);
    et_layernorm_backward_xhat(pool, d2, dw2, db2, dy, xh, w, r2, N, C);
    double e_d = 0, e_w = 0, e_b = 0, e_ref = 0;
    for (size_t i = 0; i < n; i++) e_d = fmax(e_d, rel(d2[i], d1[i]));
    for (int i = 0; i < C; i++) { e_w = fmax(e_w, rel(dw2[i], dw1[i])); e_b = fmax(e_b, rel(db2[i], db1[i])); }
    CHECK(e_d < 1e-5 && e_w < 1e-5 && e_b < 1e-5, "%s N%d C%d: backward vs et_layernorm_backward dinp %g dw %g db %g",
          path, N, C, e_d, e_w, e_b);
    /* double reference of dinp: dx = s (g - mean(g) - xh mean(g xh)), g = w dy */
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * C, *dr = dy + (size_t)r * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += xr[i];
        m /= C;
        for (int i = 0; i < C; i++) v += (xr[i] - m) * (xr[i] - m);
        v /= C;
        double s = 1.0 / sqrt(v + 1e-12), mg = 0, mgx = 0;
        for (int i = 0; i < C; i++) { double g = (double)w[i] * dr[i]; mg += g; mgx += g * (xr[i] - m) * s; }
        mg /= C; mgx /= C;
        for (int i = 0; i < C; i++) {
            double ref = 0.25 + s * ((double)w[i] * dr[i] - mg - (xr[i] - m) * s * mgx);
            e_ref = fmax(e_ref, rel(d2[(size_t)r * C + i], ref));
        }
    }
    CHECK(e_ref < 1e-5, "%s N%d C%d: backward vs double reference %g", path, N, C, e_ref);
    free(x); free(y1); free(y2); free(y3); free(xh); free(dy); free(d1); free(d2); free(w); free(b);
    free(m1); free(r1); free(r2); free(dw1); free(dw2); free(db1); free(db2);
}

int main(void) {
    et_error err = {0};
    static const char *paths[] = {"scalar", "avx2", "avx512", "wasm128"};
    for (int nt = 1; nt <= 2; nt++) {
        et_pool *pool = et_pool_create(nt, &err);
        if (!pool) { fprintf(stderr, "pool: %s\n", err.msg); return 1; }
        for (int p = 0; p < 4; p++) {
            if (et_kernels_force_path(paths[p])) continue;
            run(pool, paths[p], 7, 13);
            run(pool, paths[p], 300, 384);
            run(pool, paths[p], 65, 100);
        }
        et_kernels_force_path(NULL);
        et_pool_destroy(pool);
    }
    return et_test_report("test_lnxhat");
}
