/* kernels_int8.h - int8 inference for Linear layers: weights quantized per output channel (symmetric int8,
 * done once), activations per row at run time (symmetric int8), int32 accumulation, float epilogue.
 *
 *   weights:     sw[o] = max_k |W[o,k]| / 127,  qw[o,k] = round(W[o,k] / sw[o])   in [-127, 127]
 *   activations: sa[n] = max_k |x[n,k]| / 127,  qa[n,k] = round(x[n,k] * (127 / max_k |x[n,k]|))
 *   out[n,o]  = (float)(sum_k qa[n,k] * qw[o,k]) * (sa[n] * sw[o]) + bias[o]
 * (round = to nearest, ties to even; an all-zero row or channel has scale 0 and all-zero codes.)
 *
 * The integer sums are exact, so every path gives the same accumulators; the paths (chosen at run time,
 * following kernels.h's path: "avx512" with AMX-INT8 -> tdpbusd, with AVX512_VNNI -> vpdpbusd; "wasm128" ->
 * i32x4.dot_i16x8_s;
 * anything else -> the portable scalar code, which is the reference) differ at most by float rounding
 * in the epilogue. VNNI multiplies unsigned by signed bytes: the activations enter as qa + 128 (u8) and
 * the kernel subtracts 128 * colsum[o] (colsum[o] = sum_k qw[o,k]) from each accumulator.
 *
 * Packed weight layout (all paths): panels of 16 output channels, [OCp/16][ICp/4][16][4] int8: for
 * panel p, k group g, channel j, byte b: qw[16p + j, 4g + b]. ICp = IC rounded up to 4, OCp = OC
 * rounded up to 16; padding is 0. */
#ifndef ET_KERNELS_INT8_H
#define ET_KERNELS_INT8_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "threads.h"

typedef struct {
    int IC, OC, ICp, OCp;
    int8_t *w;       /* packed codes, [OCp/16][ICp/4][16][4] (64-byte aligned, owned) */
    float *scale;    /* [OCp] sw (0 for padding channels) (owned) */
    int32_t *colsum; /* [OCp] sum_k qw[o,k] (owned) */
} et_q8_matrix;

/* Quantize W [OC, IC] (row-major, HF Linear layout) into q (allocates; et_q8_free releases). A
 * non-finite weight is an error naming the channel. */
et_status et_q8_quantize(et_q8_matrix *q, const float *W, int OC, int IC, et_error *err);
/* Build q from codes already quantized (codes [OC, IC] in [-127, 127], scale [OC] >= 0): the int8 export
 * read back (hf.c). A code of -128 or a negative / non-finite scale is an error naming the channel. */
et_status et_q8_from_codes(et_q8_matrix *q, const int8_t *codes, const float *scale, int OC, int IC, et_error *err);
/* codes [OC, IC] out of a packed matrix (the export writes them). */
void et_q8_unpack(const et_q8_matrix *q, int8_t *codes);
void et_q8_free(et_q8_matrix *q);

/* Bytes of work buffer et_q8_linear_forward needs for N rows of IC inputs (quantized rows + scales). */
size_t et_q8_work_bytes(int N, int IC);

/* out[N, OC] = inp[N, IC] @ W^T + bias (bias [OC] may be NULL), through int8 as described above;
 * gelu != 0 applies et_gelu_forward's GELU to the result. work: et_q8_work_bytes(N, IC) bytes, 64-byte
 * aligned. Deterministic for a given path with any pool. */
void et_q8_linear_forward(et_pool *pool, float *out, const float *inp, const et_q8_matrix *W, const float *bias,
                          int N, int gelu, void *work);

/* The same arithmetic, one element at a time, no packing, no threads (the test reference). */
void et_q8_linear_reference(float *out, const float *inp, const et_q8_matrix *W, const float *bias, int N);

/* Name of the int8 path in use: "amx-int8" (TDPBUSD, where the CPU has AMX-INT8 and Linux grants this process the
 * tile state; the VNNI path's bits), "vnni", "wasm128" or "scalar". */
const char *et_q8_path_name(void);
/* Test and benchmark hook: use the int8 path `name` (NULL or "auto": the fastest that runs here); -1 when it
 * cannot run here (nothing changed). A forced path the fp32 path no longer allows is ignored. Process-wide: set
 * it before running kernels. */
int et_q8_force(const char *name);

#endif
