/* util.h - small helpers that several modules need, kept here once: FNV-1a hashing (inline: the tokenizer and
 * BM25 hash every token with it), the string -> index map, UTF-8 decoding, a monotonic clock, row-wise L2
 * normalisation. No global state; only the string map allocates. */
#ifndef ET_UTIL_H
#define ET_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

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

/* The one string -> index map (ids of the data readers, the distinct texts of the pair index): open addressing
 * over FNV-1a. It holds indices into an array of strings that the caller owns (keys[i]), never the strings, so
 * the keys must outlive it. Zero-initialised it is empty (et_strmap_get returns -1); et_strmap_free releases it. */
typedef struct {
    const char **keys; /* the owner's strings: every entry of the map is an index into it */
    int32_t *slot;     /* [cap] an index into keys, -1 = empty */
    uint32_t cap;      /* a power of two, above twice the entries it was sized for */
} et_strmap;

/* A map for up to n entries over keys; ET_ERR_NOMEM (naming `what`) when it cannot be allocated. */
et_status et_strmap_init(et_strmap *m, int64_t n, const char **keys, const char *what, et_error *err);
void et_strmap_free(et_strmap *m);
/* Enters keys[i]. Returns the index of an equal key already entered (then keys[i] is not entered), else -1. */
int32_t et_strmap_put(et_strmap *m, int32_t i);
/* The index of the key equal to key, or -1. */
int32_t et_strmap_get(const et_strmap *m, const char *key);
/* Interning: the index of the key equal to s (NULL counts as ""); a new s is stored as keys[*n] and entered
 * under that index, then ++*n. At most the n given to et_strmap_init strings may be interned. */
int32_t et_strmap_intern(et_strmap *m, const char *s, int32_t *n);

/* Decode one code point at s[i] (i < n). Invalid input yields U+FFFD and consumes the maximal
 * subpart of an ill-formed sequence (WHATWG "UTF-8 decode", = Python errors='replace'). Returns
 * the index after the sequence. */
size_t et_utf8_next(const uint8_t *s, size_t n, size_t i, uint32_t *cp);

/* The first i in [lo, hi) with a[i] >= key (hi when none), a[lo..hi) sorted ascending: the binary search of the
 * CSR lists (BM25 postings by document, the trainer's known false negatives by text) */
static inline int64_t et_lower_bound_i32(const int32_t *a, int64_t lo, int64_t hi, int32_t key) {
    while (lo < hi) {
        int64_t m = lo + (hi - lo) / 2;
        if (a[m] < key) lo = m + 1;
        else hi = m;
    }
    return lo;
}

/* qsort comparator of int32_t values, ascending */
int et_cmp_i32(const void *a, const void *b);

/* seconds on a monotonic clock (differences only) */
double et_now_s(void);

/* Progress of a long step that is not an encoding (a BM25 index, fusion candidates, the fusion grid): fn(user, done,
 * total) after each chunk of work and at the end (done == total), always from the calling thread; a non-zero return
 * cancels the step (it then fails with ET_ERR_CANCELLED). The signature is et_encode_opts.progress's, so one callback
 * (e.g. et_encode_progress_print) serves both. fn NULL (or the et_progress pointer NULL) = no reports. */
typedef struct {
    int (*fn)(void *user, size_t done, size_t total);
    void *user;
} et_progress;

/* p->fn(p->user, done, total) when there is one, else 0 */
int et_progress_report(const et_progress *p, size_t done, size_t total);

/* each row of x [n, d] divided by its L2 norm (rows with norm <= 1e-12 are left as they are) */
void et_l2norm_rows(float *x, int64_t n, int32_t d);

#endif
