/* bench_int8.c - the int8 Linear kernel (src/kernels/kernels_int8.h) against the fp32 prepacked Linear on the MiniLM-L6
 * shapes (N = 32 x 128 tokens; [384 -> 384], [384 -> 1536], [1536 -> 384]), one pool of --threads threads.
 * Prints per shape: best time, GOP/s (2*N*IC*OC per call) for fp32 and for each int8 path this CPU runs (VNNI's
 * vpdpbusd, AMX's tdpbusd; et_q8_force), timed back to back in one process, and the ratios. With 1 thread the
 * clock is the process CPU time (what other jobs on a shared machine take does not count), else wall time.
 *   bench_int8 [--threads T] [--rows N] [--reps R]
 * The peak of one core: vpdpbusd (zmm) = 64 int8 multiply-adds = 128 ops per instruction, 1 per cycle on
 * Intel parts with one 512-bit FMA port per core... (2 on those with two): compare the GOP/s with
 * 128 x GHz x (ports) x threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels.h"
#include "kernels_int8.h"
#include "threads.h"
#include "bench_common.h"

static int g_cpu;


static double now_s(void) {
    if (!g_cpu) return bench_now_s();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stdint.h>
/* TDPBUSD's peak on the calling thread: 4 independent C tiles from 2 A and 2 B tiles (the kernel's blocking),
 * operands in L1; GOP/s (one instruction = 16 x 16 x 64 multiply-adds = 32,768 ops). Needs the tile state (the
 * library asked for it when the AMX path was forced). */
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } tcfg;
__attribute__((target("amx-tile,amx-int8"), noinline)) static double tdpbusd_peak(long rounds) {
    static const int8_t src[16 * 64] __attribute__((aligned(64))) = {1};
    tcfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) { c.colsb[i] = 64; c.rows[i] = 16; }
    _tile_loadconfig(&c);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    _tile_loadd(4, src, 64); _tile_loadd(5, src, 64); _tile_loadd(6, src, 64); _tile_loadd(7, src, 64);
    double t0 = now_s();
    for (long i = 0; i < rounds; i++) {
        _tile_dpbusd(0, 4, 6); _tile_dpbusd(1, 4, 7); _tile_dpbusd(2, 5, 6); _tile_dpbusd(3, 5, 7);
    }
    double dt = now_s() - t0;
    _tile_release();
    return 4.0 * rounds * 32768.0 / dt * 1e-9;
}
#endif

int main(int argc, char **argv) {
    int threads = 1, N = 32 * 128, reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rows")) N = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else { fprintf(stderr, "usage: bench_int8 [--threads T] [--rows N] [--reps R]\n"); return 2; }
    }
    et_error err = {0};
    et_pool *pool = et_pool_create(threads, &err);
    if (!pool) { fprintf(stderr, "%s\n", err.msg); return 1; }
    static const int shapes[3][2] = {{384, 384}, {384, 1536}, {1536, 384}};
    g_cpu = threads == 1;
    static const char *const paths[2] = {"vnni", "amx-int8"};
    int runs[2];
    for (int i = 0; i < 2; i++) runs[i] = et_q8_force(paths[i]) == 0;
    et_q8_force(NULL);
    printf("int8 path (auto) %s, fp32 path %s, %d threads (%s time), N %d\n", et_q8_path_name(), et_simd_name(), threads,
           g_cpu ? "CPU" : "wall", N);
#if defined(__x86_64__) && defined(__GNUC__)
    if (runs[1]) {
        int keep = g_cpu;
        g_cpu = 1; /* one thread: its CPU time */
        double best = 0;
        for (int r = 0; r < 3; r++) { double g = tdpbusd_peak(1000000); if (g > best) best = g; }
        g_cpu = keep;
        printf("TDPBUSD peak, 1 thread (4 C tiles, L1 operands): %.0f GOP/s; the amx column is per %d threads\n", best,
               threads);
    }
#endif
    printf("| IC -> OC | fp32 ms | fp32 GFLOP/s | vnni ms | vnni GOP/s | amx ms | amx GOP/s | vnni / fp32 | amx / fp32 | amx / vnni |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int s = 0; s < 3; s++) {
        int IC = shapes[s][0], OC = shapes[s][1];
        float *W = malloc(sizeof(float) * IC * OC), *x = malloc(sizeof(float) * N * IC), *y = malloc(sizeof(float) * N * OC),
              *b = calloc((size_t)OC, sizeof(float));
        uint32_t st = 1;
        for (int i = 0; i < IC * OC; i++) { st = st * 1664525u + 1013904223u; W[i] = (float)(st >> 8) / 16777216.0f - 0.5f; }
        for (int i = 0; i < N * IC; i++) { st = st * 1664525u + 1013904223u; x[i] = (float)(st >> 8) / 16777216.0f - 0.5f; }
        float *Wp = NULL;
        size_t pf = et_linear_packed_floats(IC, OC);
        if (posix_memalign((void **)&Wp, 64, pf * sizeof(float))) return 1;
        et_linear_pack(pool, Wp, W, IC, OC);
        et_q8_matrix q;
        if (et_q8_quantize(&q, W, OC, IC, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        void *work = NULL;
        if (posix_memalign(&work, 64, et_q8_work_bytes(N, IC))) return 1;
        double bf = 1e9, bq[2] = {1e9, 1e9};
        for (int r = 0; r < reps + 1; r++) { /* fp32, vnni, amx in turn, every rep */
            double t0 = now_s();
            et_linear_forward_packed(pool, y, x, W, Wp, b, N, IC, OC);
            double t1 = now_s();
            if (r && t1 - t0 < bf) bf = t1 - t0;
            for (int i = 0; i < 2; i++) {
                if (!runs[i]) continue;
                et_q8_force(paths[i]);
                double t2 = now_s();
                et_q8_linear_forward(pool, y, x, &q, b, N, 0, work);
                double t3 = now_s();
                if (r && t3 - t2 < bq[i]) bq[i] = t3 - t2;
            }
            et_q8_force(NULL);
        }
        double ops = 2.0 * N * IC * OC;
        printf("| %d -> %d | %.2f | %.1f | %.2f | %.1f | %.2f | %.1f | %.2fx | %.2fx | %.2fx |\n", IC, OC, bf * 1e3,
               ops / bf * 1e-9, runs[0] ? bq[0] * 1e3 : 0, runs[0] ? ops / bq[0] * 1e-9 : 0, runs[1] ? bq[1] * 1e3 : 0,
               runs[1] ? ops / bq[1] * 1e-9 : 0, runs[0] ? bf / bq[0] : 0, runs[1] ? bf / bq[1] : 0,
               runs[0] && runs[1] ? bq[0] / bq[1] : 0);
        free(W); free(x); free(y); free(b); free(Wp); free(work);
        et_q8_free(&q);
    }
    et_pool_destroy(pool);
    return 0;
}
