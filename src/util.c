/* util.c - see util.h */
#include "util.h"

#include <math.h>
#include <time.h>

#include "kernels.h"

double et_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void et_l2norm_rows(float *x, int64_t n, int32_t d) {
    for (int64_t i = 0; i < n; i++) {
        float *r = x + i * d;
        float s = sqrtf(et_dot(r, r, d));
        if (s > 1e-12f) for (int32_t j = 0; j < d; j++) r[j] /= s;
    }
}
