/* util.h - small helpers that several modules need, kept here once: FNV-1a hashing (inline: the tokenizer and
 * BM25 hash every token with it), UTF-8 decoding, a monotonic clock, row-wise L2 normalisation. No state, no allocation. */
#ifndef ET_UTIL_H
#define ET_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3). Hash tables that mask the low bits
 * should mix the result first (FNV's low bits are weak for short keys). */
#define ET_FNV1A64_INIT 0xcbf29ce484222325ull

/* one byte into hash h */
static inline uint64_t et_fnv1a64_byte(uint64_t h, unsigned char b) { return (h ^ b) * 0x100000001b3ull; }

/* continue hash h over p[0..n): et_fnv1a64(ET_FNV1A64_INIT, p, n) is FNV-1a of the bytes; chaining calls
 * hashes the concatenation */
static inline uint64_t et_fnv1a64(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) h = et_fnv1a64_byte(h, b[i]);
    return h;
}

/* 32-bit FNV-1a (offset basis 2166136261, prime 16777619), continued over p[0..n): for tables of 32-bit hashes
 * in hot loops (the tokenizer's vocabulary lookup: 4% fewer instructions than the 64-bit one truncated) */
#define ET_FNV1A32_INIT 2166136261u
static inline uint32_t et_fnv1a32(uint32_t h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 16777619u;
    return h;
}

/* FNV-1a of a NUL-terminated string (its bytes without the NUL) */
static inline uint64_t et_fnv1a64_str(const char *s) {
    uint64_t h = ET_FNV1A64_INIT;
    for (; *s; s++) h = et_fnv1a64_byte(h, (unsigned char)*s);
    return h;
}

/* Decode one code point at s[i] (i < n). Invalid input yields U+FFFD and consumes the maximal
 * subpart of an ill-formed sequence (WHATWG "UTF-8 decode", = Python errors='replace'). Returns
 * the index after the sequence. */
size_t et_utf8_next(const uint8_t *s, size_t n, size_t i, uint32_t *cp);

/* seconds on a monotonic clock (differences only) */
double et_now_s(void);

/* each row of x [n, d] divided by its L2 norm (rows with norm <= 1e-12 are left as they are) */
void et_l2norm_rows(float *x, int64_t n, int32_t d);

#endif
