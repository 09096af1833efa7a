/* util.c - see util.h */
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

double et_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int et_progress_report(const et_progress *p, size_t done, size_t total) {
    return p && p->fn ? p->fn(p->user, done, total) : 0;
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

/* the slot of key: where it is, or the empty slot where it goes (FNV-1a, its high bits folded into the low ones
 * that the mask keeps: util.h) */
static uint32_t strmap_probe(const et_strmap *m, const char *key) {
    uint64_t x = et_fnv1a64_str(key);
    uint32_t h = (uint32_t)(x ^ (x >> 29)) & (m->cap - 1);
    while (m->slot[h] >= 0 && strcmp(m->keys[m->slot[h]], key)) h = (h + 1) & (m->cap - 1);
    return h;
}

et_status et_strmap_init(et_strmap *m, int64_t n, const char **keys, const char *what, et_error *err) {
    memset(m, 0, sizeof *m);
    uint32_t cap = 16;
    while ((int64_t)cap < 2 * n + 16) cap <<= 1;
    if (!(m->slot = et_malloc(sizeof(int32_t) * cap, what, err))) return ET_ERR_NOMEM;
    memset(m->slot, 0xff, sizeof(int32_t) * cap);
    m->cap = cap;
    m->keys = keys;
    return ET_OK;
}

void et_strmap_free(et_strmap *m) {
    free(m->slot);
    memset(m, 0, sizeof *m);
}

int32_t et_strmap_put(et_strmap *m, int32_t i) {
    uint32_t h = strmap_probe(m, m->keys[i]);
    if (m->slot[h] >= 0) return m->slot[h];
    m->slot[h] = i;
    return -1;
}

int32_t et_strmap_get(const et_strmap *m, const char *key) { return m->slot ? m->slot[strmap_probe(m, key)] : -1; }

int32_t et_strmap_intern(et_strmap *m, const char *s, int32_t *n) {
    if (!s) s = "";
    uint32_t h = strmap_probe(m, s);
    if (m->slot[h] >= 0) return m->slot[h];
    m->keys[*n] = s;
    m->slot[h] = *n;
    return (*n)++;
}

int et_cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}
