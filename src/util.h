/* util.h - small helpers that several modules need, kept here once: FNV-1a hashing, a monotonic clock,
 * row-wise L2 normalisation. No state, no allocation. */
#ifndef ET_UTIL_H
#define ET_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3) */
#define ET_FNV1A64_INIT 0xcbf29ce484222325ull

/* continue hash h over p[0..n): et_fnv1a64(ET_FNV1A64_INIT, p, n) is FNV-1a of the bytes; chaining calls
 * hashes the concatenation */
uint64_t et_fnv1a64(uint64_t h, const void *p, size_t n);
/* FNV-1a of a NUL-terminated string (its bytes without the NUL) */
uint64_t et_fnv1a64_str(const char *s);

/* seconds on a monotonic clock (differences only) */
double et_now_s(void);

/* each row of x [n, d] divided by its L2 norm (rows with norm <= 1e-12 are left as they are) */
void et_l2norm_rows(float *x, int64_t n, int32_t d);

#endif
