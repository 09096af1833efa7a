/* bench_int8.c - the int8 Linear kernel (src/kernels/kernels_int8.h) against the fp32 prepacked Linear on the MiniLM-L6
 * shapes (N = 32 x 128 tokens; [384 -> 384], [384 -> 1536], [1536 -> 384]), one pool of --threads threads.
 * Prints per shape: best time, GOP/s (2*N*IC*OC per call) for each, and int8 / fp32.
 *   bench_int8 [--threads T] [--rows N] [--reps R]
 * The peak of one core: vpdpbusd (zmm) = 64 int8 multiply-adds = 128 ops per instruction, 1 per cycle on
 * Intel parts with one 512-bit FMA port per core... (2 on those with two): compare the GOP/s with
 * 128 x GHz x (ports) x threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "kernels_int8.h"
#include "threads.h"
#include "bench_common.h"

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
    printf("int8 path %s, fp32 path %s, %d threads, N %d\n", et_q8_path_name(), et_simd_name(), threads, N);
    printf("| IC -> OC | fp32 ms | fp32 GFLOP/s | int8 ms | int8 GOP/s | int8 / fp32 |\n|---|---|---|---|---|---|\n");
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
        double bf = 1e9, bq = 1e9;
        for (int r = 0; r < reps + 1; r++) {
            double t0 = bench_now_s();
            et_linear_forward_packed(pool, y, x, W, Wp, b, N, IC, OC);
            double t1 = bench_now_s();
            et_q8_linear_forward(pool, y, x, &q, b, N, 0, work);
            double t2 = bench_now_s();
            if (r) { if (t1 - t0 < bf) bf = t1 - t0; if (t2 - t1 < bq) bq = t2 - t1; }
        }
        double ops = 2.0 * N * IC * OC;
        printf("| %d -> %d | %.2f | %.1f | %.2f | %.1f | %.2fx |\n", IC, OC, bf * 1e3, ops / bf * 1e-9, bq * 1e3, ops / bq * 1e-9, bf / bq);
        free(W); free(x); free(y); free(b); free(Wp); free(work);
        et_q8_free(&q);
    }
    et_pool_destroy(pool);
    return 0;
}
