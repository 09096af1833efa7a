/* bf16_peak.c - the bf16 GEMM against its instruction's peak (issue 15, item 2), natively on x86:
 *   1. the peak of VDPBF16PS (zmm: 32 bf16 pairs = 64 flops per instruction) and, beside it, of the fp32
 *      VFMADD231PS (zmm: 32 flops): 16 independent accumulator chains per thread (enough to cover either
 *      instruction's latency), T threads started together;
 *      and, where the CPU has AMX-BF16 and Linux grants the tiles, of TDPBF16PS (16 x 16 x 32 = 16,384 flops per
 *      instruction; 4 independent C tiles per thread);
 *   2. et_bf16_speedup(): the bf16 micro-kernel vs the fp32 one on one L1-resident tile (what --precision
 *      auto decides on);
 *   3. et_sgemm and et_sgemm_bf16 on each bf16 table (VDPBF16PS, AMX; et_bf16_force) on the train step's Linear
 *      shapes (MiniLM-L6, 32 x 128 documents), back to back in one process: GFLOP/s and the fraction of the
 *      matching instruction peak at the same thread count.
 *
 *   build/bf16_peak [--threads T] [--reps N]     (built by CMake with the other benchmarks)
 * Prints one JSON line per measurement, then a small table. Times: process CPU time with 1 thread (robust
 * on a shared machine), wall time with more (the threads of the pool then share the cores with others). */
#include <pthread.h>
#include <stdint.h>
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
/* TDPBF16PS into 4 C tiles from 2 A and 2 B tiles (the GEMM's 2 x 2 blocking), operands in L1 */
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } amx_cfg;
__attribute__((target("amx-tile,amx-bf16"), noinline)) static float chains_amx(long iters) {
    static const float src[16 * 16] __attribute__((aligned(64))) = {1e-3f};
    float out[16 * 16] __attribute__((aligned(64)));
    amx_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) { c.colsb[i] = 64; c.rows[i] = 16; }
    _tile_loadconfig(&c);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, src, 64); _tile_loadd(5, src, 64); _tile_loadd(6, src, 64); _tile_loadd(7, src, 64);
    for (long i = 0; i < iters / 16; i++) {
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0];
}
#define HAVE_CHAINS 1
#else
#define HAVE_CHAINS 0
#endif

#if HAVE_CHAINS
typedef struct { int bf16; long iters; float out; } chain_job; /* bf16: 0 fma, 1 vdpbf16ps, 2 tdpbf16ps */
static atomic_int g_go;
static void *chain_worker(void *p) {
    chain_job *j = p;
    while (!atomic_load(&g_go)) {}
    j->out = j->bf16 == 2 ? chains_amx(j->iters) : j->bf16 ? chains_dp(j->iters) : chains_fma(j->iters);
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
    /* AMX: iters / 16 rounds of 4 instructions of 16 x 16 x 32 multiply-adds */
    double flops = bf16 == 2 ? (double)threads * (iters / 16) * 4 * 16 * 16 * 32 * 2
                             : (double)threads * iters * ACC * (bf16 ? 64.0 : 32.0);
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
    const int have_amx = et_bf16_force("amx-bf16") == 0, have_dp = et_bf16_force("avx512bf16") == 0;
    et_bf16_force(NULL);
    static const char *const pk_name[3] = {"vfmadd231ps", "vdpbf16ps", "tdpbf16ps"};
    double pk[3][2] = {{0}}; /* [fma, vdpbf16ps, tdpbf16ps][1 thread, T threads] */
    for (int b = 0; b < 3; b++)
        for (int w = 0; w < 2; w++) {
            int t = w ? threads : 1;
            if ((b == 1 && !have_dp) || (b == 2 && !have_amx)) continue;
            pk[b][w] = chain_peak(b, t, reps, &sink);
            printf("{\"peak\":\"%s\",\"threads\":%d,\"gflops\":%.1f}\n", pk_name[b], t, pk[b][w]);
            fflush(stdout);
        }
    double sp = et_bf16_speedup();
    printf("{\"micro_kernel_speedup_bf16_over_fp32\":%.3f,\"table\":\"%s\"}\n", sp, et_bf16_name());
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
    static const char *const table[3] = {"fp32", "avx512bf16", "amx-bf16"};
    printf("\n%-24s %7s %9s %9s %9s %8s %8s %8s %9s\n", "GEMM (M x N x K)", "threads", "fp32", "vdpbf16", "amx",
           "fp32 %pk", "vdp %pk", "amx %pk", "amx/fp32");
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        const shape *g = &sh[s];
        int lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N;
        double gf[3] = {0};
        for (int b = 0; b < 3; b++) {
            if ((b == 1 && !have_dp) || (b == 2 && !have_amx)) continue;
            if (b) et_bf16_force(table[b]);
            double best = 1e30;
            for (int r = 0; r < reps + 1; r++) {
                double t0 = threads == 1 ? cpu_s() : bench_now_s();
                if (b) et_sgemm_bf16(pool, g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, B, ldb, 0.0f, Cm, g->N);
                else et_sgemm(pool, g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, B, ldb, 0.0f, Cm, g->N);
                double dt = (threads == 1 ? cpu_s() : bench_now_s()) - t0;
                if (r > 0 && dt < best) best = dt;
            }
            et_bf16_force(NULL);
            gf[b] = 2.0 * g->M * g->N * g->K / best * 1e-9;
        }
        double fr[3];
        for (int b = 0; b < 3; b++) fr[b] = pk[b][1] > 0 ? gf[b] / pk[b][1] : 0;
        printf("%-24s %7d %9.1f %9.1f %9.1f %7.0f%% %7.0f%% %7.0f%% %8.2fx\n", g->what, threads, gf[0], gf[1], gf[2],
               100 * fr[0], 100 * fr[1], 100 * fr[2], gf[2] / gf[0]);
        printf("{\"gemm\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"fp32_gflops\":%.1f,"
               "\"vdpbf16ps_gflops\":%.1f,\"amx_gflops\":%.1f,\"fp32_frac_peak\":%.3f,\"vdpbf16ps_frac_peak\":%.3f,"
               "\"amx_frac_peak\":%.3f}\n",
               g->what, g->M, g->N, g->K, threads, gf[0], gf[1], gf[2], fr[0], fr[1], fr[2]);
        fflush(stdout);
    }
    printf("\npeaks (GFLOP/s, 1 thread / %d): vfmadd231ps %.1f / %.1f; vdpbf16ps %.1f / %.1f; tdpbf16ps %.1f / %.1f; "
           "bf16 micro-kernel (%s) %.2fx the fp32 one\n", threads, pk[0][0], pk[0][1], pk[1][0], pk[1][1], pk[2][0],
           pk[2][1], et_bf16_name(), sp);
    free(A); free(B); free(Cm);
    et_pool_destroy(pool);
    (void)sink;
#else
    printf("{\"note\":\"not x86-64: no peak loops\"}\n");
#endif
    return 0;
}
