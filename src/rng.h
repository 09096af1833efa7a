/* rng.h - small deterministic RNG (xoshiro256**, seeded by splitmix64) with serialisable state.
 *
 * Used for data order (Fisher-Yates shuffle), negative sampling and dropout seeds. The same seed gives
 * the same stream on every platform (native, WASM, WASI): only 64-bit integer arithmetic is used, and
 * the float helpers are exact conversions of the integer output.
 *
 * State is 4 x uint64 (32 bytes); a checkpoint stores it with et_rng_get_state / et_rng_set_state.
 * No global state: every stream is a caller-owned et_rng. */
#ifndef ET_RNG_H
#define ET_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    uint64_t s[4];
} et_rng;

/* Seed from one 64-bit value (splitmix64 expansion, as recommended by the xoshiro authors). */
void et_rng_seed(et_rng *r, uint64_t seed);
/* Next raw 64-bit output (xoshiro256**). */
uint64_t et_rng_next(et_rng *r);
/* Upper 32 bits of the next output. */
uint32_t et_rng_u32(et_rng *r);
/* Uniform in [0, 1): 53 random bits (double) / 24 random bits (float). */
double et_rng_uniform(et_rng *r);
float et_rng_uniformf(et_rng *r);
/* Uniform integer in [0, n), unbiased (rejection); n == 0 returns 0. */
uint64_t et_rng_below(et_rng *r, uint64_t n);
/* Standard normal (Box-Muller, one value per call: uses two uniforms). */
double et_rng_normal(et_rng *r);
/* In-place Fisher-Yates shuffle (Durstenfeld: i from n-1 down to 1, j = below(i+1), swap). */
void et_rng_shuffle_int(et_rng *r, int *a, size_t n);
/* Fill a[i] = i, then shuffle: a random permutation of 0..n-1. */
void et_rng_permutation(et_rng *r, int *a, size_t n);
/* Jump ahead 2^128 outputs: call k times on copies of one seeded rng to get k non-overlapping streams. */
void et_rng_jump(et_rng *r);
/* Derive an independent child stream (e.g. per-epoch or per-layer dropout seeds) without advancing r:
 * child = seed(splitmix of (state hash, stream)). Deterministic in (r's state, stream). */
void et_rng_fork(const et_rng *r, uint64_t stream, et_rng *child);

/* Checkpoint helpers. set_state rejects the all-zero state (xoshiro's one invalid state). */
void et_rng_get_state(const et_rng *r, uint64_t out[4]);
et_status et_rng_set_state(et_rng *r, const uint64_t in[4], et_error *err);

#endif
