/* rng.c - see rng.h. xoshiro256** 1.0 and splitmix64 by Blackman & Vigna (public domain reference). */
#include "rng.h"

#include <math.h>

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void et_rng_seed(et_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    /* splitmix64 never yields four zeros in a row, so the state is valid. */
}

uint64_t et_rng_next(et_rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t et_rng_u32(et_rng *r) { return (uint32_t)(et_rng_next(r) >> 32); }

double et_rng_uniform(et_rng *r) { return (double)(et_rng_next(r) >> 11) * 0x1.0p-53; }

float et_rng_uniformf(et_rng *r) { return (float)(et_rng_next(r) >> 40) * 0x1.0p-24f; }

uint64_t et_rng_below(et_rng *r, uint64_t n) {
    if (n == 0) return 0;
    /* reject the top partial bucket: threshold = 2^64 mod n */
    uint64_t thresh = (0 - n) % n;
    for (;;) {
        uint64_t x = et_rng_next(r);
        if (x >= thresh) return x % n;
    }
}

double et_rng_normal(et_rng *r) {
    double u1 = et_rng_uniform(r), u2 = et_rng_uniform(r);
    if (u1 < 0x1.0p-60) u1 = 0x1.0p-60; /* avoid log(0) */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void et_rng_shuffle_int(et_rng *r, int *a, size_t n) {
    if (n < 2) return;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)et_rng_below(r, (uint64_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

void et_rng_permutation(et_rng *r, int *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = (int)i;
    et_rng_shuffle_int(r, a, n);
}

void et_rng_jump(et_rng *r) {
    static const uint64_t JUMP[] = {0x180ec6d33cfd0abaULL, 0xd5a61266f0c9392cULL, 0xa9582618e03fc9aaULL,
                                    0x39abdc4529b1661cULL};
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 64; b++) {
            if (JUMP[i] & (UINT64_C(1) << b)) {
                s0 ^= r->s[0];
                s1 ^= r->s[1];
                s2 ^= r->s[2];
                s3 ^= r->s[3];
            }
            et_rng_next(r);
        }
    r->s[0] = s0;
    r->s[1] = s1;
    r->s[2] = s2;
    r->s[3] = s3;
}

void et_rng_fork(const et_rng *r, uint64_t stream, et_rng *child) {
    uint64_t x = stream ^ 0x6a09e667f3bcc909ULL;
    uint64_t h = splitmix64(&x);
    for (int i = 0; i < 4; i++) {
        x = h ^ r->s[i];
        h = splitmix64(&x);
    }
    et_rng_seed(child, h);
}

void et_rng_get_state(const et_rng *r, uint64_t out[4]) {
    for (int i = 0; i < 4; i++) out[i] = r->s[i];
}

et_status et_rng_set_state(et_rng *r, const uint64_t in[4], et_error *err) {
    if ((in[0] | in[1] | in[2] | in[3]) == 0)
        return et_fail(err, ET_ERR_FORMAT, "rng state: all four words are zero (invalid xoshiro256** state)");
    for (int i = 0; i < 4; i++) r->s[i] = in[i];
    return ET_OK;
}
