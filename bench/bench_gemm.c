/* bench_gemm.c - GFLOP/s of et_sgemm against OpenBLAS cblas_sgemm (when CMake found it).
 *
 * usage: bench_gemm [reps=5] [path=auto] [filter] [maxthreads=2]
 *   path: scalar | avx2 | avx512 | auto;  filter: only cases whose name contains it
 * Best of `reps` timings per case (the machine is shared: best-of filters out the noise); with 1
 * thread the clock is the process CPU time, so time stolen by other jobs does not count (wall time under
 * Emscripten, whose CPU clock does not advance in node).
 * OpenBLAS gets the same thread count as et_pool (openblas_set_num_threads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels.h"
#ifdef ET_HAVE_CBLAS
#include <cblas.h>
#endif

/* 1 thread: process CPU time (robust against other jobs on a shared machine); else wall time */
static int g_cpu_clock = 0;
static double now(void) {
    struct timespec ts;
#ifdef __EMSCRIPTEN__
    /* Emscripten's process CPU clock is clock(), which stays 0 in node: wall time there */
    clock_gettime(CLOCK_MONOTONIC, &ts);
#else
    clock_gettime(g_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
#endif
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct { const char *name; int ta, tb, M, N, K; } shape;

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    const char *filter = argc > 3 ? argv[3] : "";
    int maxthr = argc > 4 ? atoi(argv[4]) : 2;
    if (argc > 2 && et_kernels_force_path(argv[2]) != 0) {
        fprintf(stderr, "bench_gemm: path '%s' is not available here\n", argv[2]);
        return 1;
    }
    shape shapes[] = {
        {"512 NN", 0, 0, 512, 512, 512},     {"512 NT", 0, 1, 512, 512, 512},
        {"512 TN", 1, 0, 512, 512, 512},     {"768 NN", 0, 0, 768, 768, 768},
        {"768 NT", 0, 1, 768, 768, 768},     {"768 TN", 1, 0, 768, 768, 768},
        {"1024 NN", 0, 0, 1024, 1024, 1024}, {"1024 NT", 0, 1, 1024, 1024, 1024},
        {"1024 TN", 1, 0, 1024, 1024, 1024}, {"1024 TT", 1, 1, 1024, 1024, 1024},
        /* encoder: 4096 tokens, C=384, FF=1536. forward NT, backward dinp NN, dW TN */
        {"qkv fwd NT 4096x384x384", 0, 1, 4096, 384, 384},
        {"ff1 fwd NT 4096x1536x384", 0, 1, 4096, 1536, 384},
        {"ff2 fwd NT 4096x384x1536", 0, 1, 4096, 384, 1536},
        {"ff1 dinp NN 4096x384x1536", 0, 0, 4096, 384, 1536},
        {"ff1 dW TN 1536x384x4096", 1, 0, 1536, 384, 4096},
        {"ff2 dW TN 384x1536x4096", 1, 0, 384, 1536, 4096},
        {"32 rows NT 32x384x384", 0, 1, 32, 384, 384},
        {"32 rows NT 32x1536x384", 0, 1, 32, 1536, 384},
        {"32 rows NN 32x384x1536", 0, 0, 32, 384, 1536},
    };
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    size_t maxe = (size_t)4096 * 1536;
    float *A = malloc(maxe * 4), *B = malloc(maxe * 4), *C = malloc(maxe * 4);
    if (!A || !B || !C) { fprintf(stderr, "bench_gemm: out of memory\n"); return 1; }
    for (size_t i = 0; i < maxe; i++) {
        A[i] = (float)((i * 7919u) % 1000) / 1000.0f - 0.5f;
        B[i] = (float)((i * 104729u) % 1000) / 1000.0f - 0.5f;
    }
    printf("path %s, best of %d\n", et_simd_name(), reps);
    printf("%-28s %3s %9s %9s %7s\n", "case", "thr", "et GF/s", "blas GF/s", "ratio");
    for (int threads = 1; threads <= maxthr; threads++) {
        et_error err = {0};
        g_cpu_clock = threads == 1;
        et_pool *pool = et_pool_create(threads, &err);
        if (!pool) { fprintf(stderr, "%s\n", err.msg); return 1; }
#ifdef ET_HAVE_CBLAS
        openblas_set_num_threads(threads);
#endif
        for (int s = 0; s < nshapes; s++) {
            shape h = shapes[s];
            if (!strstr(h.name, filter)) continue;
            int lda = h.ta ? h.M : h.K, ldb = h.tb ? h.K : h.N;
            double flops = 2.0 * h.M * h.N * h.K;
            int inner = (int)(2e9 / flops / 10) + 1; /* ~0.1 s per timing at 20 GF/s */
            double best_et = 1e30, best_bl = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                for (int i = 0; i < inner; i++)
                    et_sgemm(pool, h.ta, h.tb, h.M, h.N, h.K, 1.0f, A, lda, B, ldb, 0.0f, C, h.N);
                double t = (now() - t0) / inner;
                if (t < best_et) best_et = t;
#ifdef ET_HAVE_CBLAS
                t0 = now();
                for (int i = 0; i < inner; i++)
                    cblas_sgemm(CblasRowMajor, h.ta ? CblasTrans : CblasNoTrans, h.tb ? CblasTrans : CblasNoTrans,
                                h.M, h.N, h.K, 1.0f, A, lda, B, ldb, 0.0f, C, h.N);
                t = (now() - t0) / inner;
                if (t < best_bl) best_bl = t;
#endif
            }
            double get = flops / best_et * 1e-9;
#ifdef ET_HAVE_CBLAS
            double gbl = flops / best_bl * 1e-9;
            printf("%-28s %3d %9.1f %9.1f %7.2f\n", h.name, threads, get, gbl, get / gbl);
#else
            printf("%-28s %3d %9.1f %9s %7s\n", h.name, threads, get, "-", "-");
#endif
            fflush(stdout);
        }
        if (strstr("attention", filter) || !*filter) {
            /* encoder attention: B=32, T=128, C=384, NH=12 (q, k, v, out, dout slices of A/B/C) */
            int Bn = 32, T = 128, Cc = 384, NH = 12;
            size_t n = (size_t)Bn * T * Cc;
            float *att = malloc(sizeof(float) * (size_t)Bn * NH * T * T);
            float *scr = malloc(sizeof(float) * (size_t)threads * et_attention_scratch_floats(T, Cc, NH));
            float *dq = calloc(3 * n, sizeof(float));
            if (!att || !scr || !dq) { fprintf(stderr, "bench_gemm: out of memory\n"); return 1; }
            double bf = 1e30, bb = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                et_attention_forward(pool, C, att, scr, A, B, A + n, NULL, Bn, T, Cc, NH, 0.1f, 42);
                double t1 = now();
                et_attention_backward(pool, dq, dq + n, dq + 2 * n, scr, C, att, A, B, A + n, Bn, T, Cc, NH, 0.1f, 42);
                double t2 = now();
                if (t1 - t0 < bf) bf = t1 - t0;
                if (t2 - t1 < bb) bb = t2 - t1;
            }
            double fl = 4.0 * Bn * NH * T * T * (Cc / NH);
            printf("%-28s %3d %6.1f ms fwd (%5.1f GF/s) %6.1f ms bwd (%5.1f GF/s)\n", "attention 32x128 C384 H12", threads,
                   bf * 1e3, fl / bf * 1e-9, bb * 1e3, 2 * fl / bb * 1e-9);
            free(att); free(scr); free(dq);
        }
        et_pool_destroy(pool);
    }
    free(A); free(B); free(C);
    return 0;
}
