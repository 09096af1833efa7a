/* bf16_peak.c - the bf16 GEMM against its instruction's peak (issue 15, item 2), natively on x86:
 *   1. the peak of VDPBF16PS (zmm: 32 bf16 pairs = 64 flops per instruction) and, beside it, of the fp32
 *      VFMADD231PS (zmm: 32 flops): 16 independent accumulator chains per thread (enough to cover either
 *      instruction's latency), T threads started together;
 *   2. et_bf16_speedup(): the bf16 micro-kernel vs the fp32 one on one L1-resident tile (what --precision
 *      auto decides on);
 *   3. et_sgemm_bf16 and et_sgemm on the train step's Linear shapes (MiniLM-L6, 32 x 128 documents): GFLOP/s
 *      and the fraction of the matching instruction peak at the same thread count.
 *
 *   build/bf16_peak [--threads T] [--reps N]     (built by CMake with the other benchmarks)
 * Prints one JSON line per measurement, then a small table. Times: process CPU time with 1 thread (robust
 * on a shared machine), wall time with more (the threads of the pool then share the cores with others). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "threads.h"
#include "bench_common.h"

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define ACC 16
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f,avx512bf16"), noinline)) static float chains_dp(long iters) {
    __m512 a[ACC];
    __m512bh x = (__m512bh)_mm512_set1_ps(1e-3f), y = (__m512bh)_mm512_set1_ps(2e-3f);
    for (int k = 0; k < ACC; k++) a[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++) a[k] = _mm512_dpbf16_ps(a[k], x, y);
        __asm__ volatile("" : "+v"(x)); /* x is "changed": the loop cannot be folded */
    }
    __m512 s = a[0];
    for (int k = 1; k < ACC; k++) s = _mm512_add_ps(s, a[k]);
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx512f,fma"), noinline)) static float chains_fma(long iters) {
    __m512 a[ACC], x = _mm512_set1_ps(0.9999f), y = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < ACC; k++) a[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int k = 0; k < ACC; k++) a[k] = _mm512_fmadd_ps(a[k], x, y);
        __asm__ volatile("" : "+v"(x));
    }
    __m512 s = a[0];
    for (int k = 1; k < ACC; k++) s = _mm512_add_ps(s, a[k]);
    return _mm512_reduce_add_ps(s);
}
#define HAVE_CHAINS 1
#else
#define HAVE_CHAINS 0
#endif

#if HAVE_CHAINS
typedef struct { int bf16; long iters; float out; } chain_job;
static atomic_int g_go;
static void *chain_worker(void *p) {
    chain_job *j = p;
    while (!atomic_load(&g_go)) {}
    j->out = j->bf16 ? chains_dp(j->iters) : chains_fma(j->iters);
    return NULL;
}

/* GFLOP/s of T threads running the chains; best of reps */
static double chain_peak(int bf16, int threads, int reps, volatile float *sink) {
    const long iters = 2000000;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        chain_job jobs[64];
        pthread_t tid[64];
        atomic_store(&g_go, 0);
        for (int t = 1; t < threads; t++) {
            jobs[t] = (chain_job){bf16, iters, 0};
            pthread_create(&tid[t], NULL, chain_worker, &jobs[t]);
        }
        double t0 = threads == 1 ? cpu_s() : bench_now_s();
        atomic_store(&g_go, 1);
        jobs[0] = (chain_job){bf16, iters, 0};
        chain_worker(&jobs[0]);
        for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
        double dt = (threads == 1 ? cpu_s() : bench_now_s()) - t0;
        for (int t = 0; t < threads; t++) *sink += jobs[t].out;
        if (dt < best) best = dt;
    }
    double flops = (double)threads * iters * ACC * (bf16 ? 64.0 : 32.0);
    return flops / best * 1e-9;
}
#endif

typedef struct { const char *what; int ta, tb, M, N, K; } shape;

int main(int argc, char **argv) {
    int threads = 2, reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: bf16_peak [--threads T] [--reps N]\n"); return 2; }
    }
    if (threads < 1 || threads > 64 || reps < 1) { fprintf(stderr, "bf16_peak: 1 <= threads <= 64, reps >= 1\n"); return 2; }
    if (!et_bf16_native()) {
        printf("{\"bf16\":\"%s\",\"note\":\"no AVX512_BF16 here: nothing to measure\"}\n", et_bf16_name());
        return 0;
    }
#if HAVE_CHAINS
    volatile float sink = 0;
    double pk[2][2] = {{0}}; /* [bf16][1 thread, T threads] */
    for (int b = 0; b < 2; b++)
        for (int w = 0; w < 2; w++) {
            int t = w ? threads : 1;
            pk[b][w] = chain_peak(b, t, reps, &sink);
            printf("{\"peak\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", b ? "vdpbf16ps" : "vfmadd231ps", t, pk[b][w]);
            fflush(stdout);
        }
    double sp = et_bf16_speedup();
    printf("{\"micro_kernel_speedup_bf16_over_fp32\":%.3f}\n", sp);
    et_error err = {0};
    et_pool *pool = et_pool_create(threads, &err);
    if (!pool) { fprintf(stderr, "bf16_peak: %s\n", err.msg); return 1; }
    const int C = 384, I = 1536, N = 32 * 128;
    const shape sh[] = {{"fwd x@W^T (qkv/ao)", 0, 1, N, C, C}, {"fwd x@W^T (ffn.i)", 0, 1, N, I, C},
                        {"fwd x@W^T (ffn.o)", 0, 1, N, C, I}, {"bwd dx=dy@W (ffn.o)", 0, 0, N, I, C},
                        {"bwd dW=dy^T@x (ffn.i)", 1, 0, I, C, N}};
    size_t maxf = (size_t)N * I;
    float *A = malloc(maxf * 4), *B = malloc(maxf * 4), *Cm = malloc(maxf * 4);
    if (!A || !B || !Cm) return 1;
    for (size_t i = 0; i < maxf; i++) { A[i] = (float)((i * 7919u) % 1000) * 1e-3f - 0.5f; B[i] = A[i] * 0.5f; Cm[i] = 0; }
    printf("\n%-24s %8s %10s %10s %12s %12s\n", "GEMM (M x N x K)", "threads", "fp32 GF/s", "bf16 GF/s",
           "fp32 % peak", "bf16 % peak");
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        const shape *g = &sh[s];
        int lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N;
        double gf[2];
        for (int b = 0; b < 2; b++) {
            double best = 1e30;
            for (int r = 0; r < reps + 1; r++) {
                double t0 = threads == 1 ? cpu_s() : bench_now_s();
                if (b) et_sgemm_bf16(pool, g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, B, ldb, 0.0f, Cm, g->N);
                else et_sgemm(pool, g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, B, ldb, 0.0f, Cm, g->N);
                double dt = (threads == 1 ? cpu_s() : bench_now_s()) - t0;
                if (r > 0 && dt < best) best = dt;
            }
            gf[b] = 2.0 * g->M * g->N * g->K / best * 1e-9;
        }
        printf("%-24s %8d %10.1f %10.1f %11.0f%% %11.0f%%\n", g->what, threads, gf[0], gf[1], 100 * gf[0] / pk[0][1],
               100 * gf[1] / pk[1][1]);
        printf("{\"gemm\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"fp32_gflops\":%.1f,\"bf16_gflops\":%.1f,"
               "\"fp32_frac_peak\":%.3f,\"bf16_frac_peak\":%.3f}\n",
               g->what, g->M, g->N, g->K, threads, gf[0], gf[1], gf[0] / pk[0][1], gf[1] / pk[1][1]);
        fflush(stdout);
    }
    printf("\npeaks (GFLOP/s): vdpbf16ps %.1f (1 thread) / %.1f (%d); vfmadd231ps %.1f / %.1f; bf16 micro-kernel "
           "%.2fx the fp32 one\n", pk[1][0], pk[1][1], threads, pk[0][0], pk[0][1], sp);
    free(A); free(B); free(Cm);
    et_pool_destroy(pool);
    (void)sink;
#else
    printf("{\"note\":\"not x86-64: no peak loops\"}\n");
#endif
    return 0;
}
