/* kernels/avx512_common.h - INTERNAL to the kernels module: what the AVX-512 GEMM files share (avx512.c,
 * bf16_avx512bf16.c, and the AMX tables): the register transpose of the packers and the fp32 epilogue of a
 * 32-column tile. Include it after <immintrin.h>, inside the file's AVX-512 target region (the pragma at the
 * top of those files). */
#ifndef ET_KERNELS_AVX512_COMMON_H
#define ET_KERNELS_AVX512_COMMON_H
#include <immintrin.h>

/* 16x16 transpose of r[0..15] in place: afterwards r[j] holds column j of the input rows */
static inline __attribute__((always_inline)) void et_tr16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) { /* r[4g + c], lane L = column 4L + c of rows 4g..4g+3 */
        r[4 * g] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xDD);
        r[4 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xDD);
    }
}

/* The epilogue of every AVX-512 GEMM table (one definition, so fp32, bf16 and AMX give the same bits from the same
 * sums): rows r < R (R a constant after inlining) of a tile with n <= 32 valid columns, accumulators c0[r]
 * (columns 0-15) and c1[r] (16-31) -> C[r * ldc + j] =
 *   bias: alpha * acc + bias[j] (one fma; C write-only: the fused Linear bias),
 *   beta == 0: alpha * acc (C write-only),  else: fma(alpha, acc, beta * C),
 * then act (NULL = none; a constant after inlining: the fused GELU) before the masked store. */
static inline __attribute__((always_inline)) void et_avx512_store_tile(const int R, int n, const __m512 *c0,
                                                                       const __m512 *c1, float *C, long ldc,
                                                                       float alpha, float beta, const float *bias,
                                                                       __m512 (*act)(__m512)) {
    __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1u);
    __mmask16 m1 = n >= 32 ? 0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1u) : 0;
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    if (bias) { b0 = _mm512_maskz_loadu_ps(m0, bias); b1 = _mm512_maskz_loadu_ps(m1, bias + 16); }
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
        float *c = C + (long)r * ldc;
        __m512 o0, o1;
        if (bias) {
            o0 = _mm512_fmadd_ps(va, c0[r], b0);
            o1 = _mm512_fmadd_ps(va, c1[r], b1);
        } else if (beta == 0.0f) {
            o0 = _mm512_mul_ps(va, c0[r]);
            o1 = _mm512_mul_ps(va, c1[r]);
        } else {
            __m512 x0 = _mm512_maskz_loadu_ps(m0, c), x1 = _mm512_maskz_loadu_ps(m1, c + 16);
            o0 = _mm512_fmadd_ps(va, c0[r], _mm512_mul_ps(vb, x0));
            o1 = _mm512_fmadd_ps(va, c1[r], _mm512_mul_ps(vb, x1));
        }
        if (act) { o0 = act(o0); o1 = act(o1); }
        _mm512_mask_storeu_ps(c, m0, o0);
        _mm512_mask_storeu_ps(c + 16, m1, o1);
    }
}

/* the bf16 packers' helpers: for the files whose target has AVX512_BF16 + BW (they define ET_AVX512_BF16_HELPERS) */
#if defined(ET_AVX512_BF16_HELPERS)
#define ET_AVX512_AI inline __attribute__((always_inline))
/* 16 pair words from two fp32 vectors: word i = bf16(lo[i]) | bf16(hi[i]) << 16 (rows k and k + 1) */
static ET_AVX512_AI __m512 et_pairs16(__m512 lo, __m512 hi) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* words 0..15 = bf16(lo), 16..31 = bf16(hi) */
    return _mm512_castsi512_ps(_mm512_permutexvar_epi16(idx, v));
}

static ET_AVX512_AI __mmask16 et_lanes16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

#endif

#endif