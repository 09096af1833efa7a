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

size_t et_utf8_next(const uint8_t *s, size_t n, size_t i, uint32_t *cp) {
    uint32_t b = s[i], c;
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b < 0x80) {
        *cp = b;
        return i + 1;
    } else if (b < 0xC2) {
        *cp = 0xFFFD;
        return i + 1;
    } else if (b < 0xE0) {
        need = 1;
        c = b & 0x1F;
    } else if (b < 0xF0) {
        need = 2;
        c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b < 0xF5) {
        need = 3;
        c = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *cp = 0xFFFD;
        return i + 1;
    }
    size_t j = i + 1;
    for (int k = 0; k < need; k++, j++) {
        if (j >= n || s[j] < lo || s[j] > hi) {
            *cp = 0xFFFD;
            return j;
        }
        c = (c << 6) | (s[j] & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    *cp = c;
    return j;
}
