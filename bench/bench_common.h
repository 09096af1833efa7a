/* bench_common.h - helpers shared by the embedtune benchmark timers (bench_encode.c, bench_train.c). */
#ifndef ET_BENCH_COMMON_H
#define ET_BENCH_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sorts v; the median of n >= 1 values */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* xorshift32 ids in [1000, V), identical to torch_encode.py bench_ids() and ort_encode.mjs */
static inline void bench_ids(int32_t *ids, int n, int vocab, uint32_t seed) {
    uint32_t x = seed;
    for (int i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        ids[i] = (int32_t)(1000u + x % (uint32_t)(vocab - 1000));
    }
}

#endif
