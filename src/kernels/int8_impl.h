/* kernels/int8_impl.h - INTERNAL to the int8 kernels (int8*.c only): the table of one int8 path. */
#ifndef ET_KERNELS_INT8_IMPL_H
#define ET_KERNELS_INT8_IMPL_H

#include <stdint.h>
#include "kernels_int8.h"

typedef struct {
    const char *name;
    /* quantize rows x[n, IC] (row stride IC) into qa[n, ICp] and sa[n]; codes as quant.h (VNNI: the code
     * + 128 as a byte), padding k's get the code 0 */
    void (*quant_rows)(int8_t *qa, float *sa, const float *x, int n, int IC, int ICp);
    /* out[m rows, channels of panels p0 .. p0+np) (stride ldo; channels >= W->OC not written) from m
     * quantized rows qa (stride W->ICp), sa; bias may be NULL */
    void (*tile)(int m, const int8_t *qa, const float *sa, const et_q8_matrix *W, int p0, int np, const float *bias,
                 float *out, int ldo);
} et_q8_isa;

/* the row scale and its reciprocal multiplier as every path computes them: sa = amax / 127,
 * inv = 127 / amax (0, 0 for an all-zero row) */
static inline void et_q8_row_scale(float amax, float *sa, float *inv) {
    if (amax > 0.0f) { *sa = amax / 127.0f; *inv = 127.0f / amax; }
    else { *sa = 0.0f; *inv = 0.0f; }
}

#if defined(__x86_64__) || defined(__i386__)
extern const et_q8_isa et_q8_isa_vnni;
extern const et_q8_isa et_q8_isa_amx; /* int8_avx512.c: TDPBUSD, the VNNI path's bits */
#endif

#endif
