/* kernels/bf16_avx512bf16.c - the bf16 GEMM table with VDPBF16PS (AVX512_BF16): a 14x32 micro-kernel on bf16
 * pairs (28 zmm accumulators, one broadcast pair of A against two zmm of B pairs per k pair: 64 multiply-adds
 * per instruction, twice the fp32 FMA's 32), packers that round to bf16 with VCVTNE2PS2BF16 as they pack.
 * Layout and arithmetic: bf16.c (the scalar reference; the same bits). Built only on x86 (CMake adds
 * the ISA flags; the pragma keeps a plain `cc -c` working too); dispatch.c selects it at run time (cpuid). */
#if defined(__x86_64__) || defined(__i386__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma")
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma"))), apply_to = function)
#endif
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include "impl.h"
#define ET_AVX512_BF16_HELPERS 1
#include "avx512_common.h"

#define MR 14
#define NR 32
#ifndef ET_BF16_BPF
#define ET_BF16_BPF 256 /* floats ahead (8 k pairs) that the micro-kernel prefetches its B panel */
#endif

#if defined(__GNUC__)
#define ET_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ET_ALWAYS_INLINE inline
#endif

static ET_ALWAYS_INLINE __m512bh as_bh(__m512 x) { return (__m512bh)x; }

/* R rows (compile-time after inlining) of a 14x32 tile over K k values ((K + 1) / 2 pairs); n <= 32 columns */
static ET_ALWAYS_INLINE void ukr_rows(const int R, int n, int K, const float *Ap, const float *Bp, float *C,
                                      int ldc, float alpha, float beta, const float *bias) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int r = 0; r < R; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
    const int kp = (K + 1) / 2;
    for (int p = 0; p < kp; p++) {
        _mm_prefetch((const char *)(Bp + ET_BF16_BPF), _MM_HINT_T0);
        _mm_prefetch((const char *)(Bp + ET_BF16_BPF + 16), _MM_HINT_T0);
        __m512bh b0 = as_bh(_mm512_loadu_ps(Bp)), b1 = as_bh(_mm512_loadu_ps(Bp + 16));
#pragma GCC unroll 14
        for (int r = 0; r < R; r++) {
            __m512bh a = as_bh(_mm512_set1_ps(Ap[r])); /* the pair's 32 bits, broadcast */
            c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
        }
        Ap += MR;
        Bp += NR;
    }
    et_avx512_store_tile(R, n, c0, c1, C, ldc, alpha, beta, bias, NULL);
}

#define UKR(R)                                                                                      \
    static void ukr_##R(int n, int K, const float *Ap, const float *Bp, float *C, int ldc,         \
                        float alpha, float beta, const float *bias) {                               \
        ukr_rows(R, n, K, Ap, Bp, C, ldc, alpha, beta, bias);                                       \
    }
UKR(1) UKR(2) UKR(3) UKR(4) UKR(5) UKR(6) UKR(7) UKR(8) UKR(9) UKR(10) UKR(11) UKR(12) UKR(13) UKR(14)

typedef void (*ukr_fn_r)(int, int, const float *, const float *, float *, int, float, float, const float *);
static const ukr_fn_r tab_ukr[MR + 1] = {0, ukr_1, ukr_2, ukr_3, ukr_4, ukr_5, ukr_6, ukr_7,
                                         ukr_8, ukr_9, ukr_10, ukr_11, ukr_12, ukr_13, ukr_14};

static void ukr(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                float beta) {
    tab_ukr[m](n, K, Ap, Bp, C, ldc, alpha, beta, NULL);
}

static void ukr_bias(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                     const float *bias) {
    tab_ukr[m](n, K, Ap, Bp, C, ldc, alpha, 0.0f, bias);
}

/* Rows src[0..h) (h <= 16; k contiguous in each, row stride ld) x k [0, kc) -> pair words: pair p of row r
 * to dst[p * stride + r] for r < store (store lanes written: the rest of a row past h is zero) */
static ET_ALWAYS_INLINE void pack_rows_k(float *dst, int stride, const float *src, int ld, int h, int kc,
                                         __mmask16 store) {
    for (int k = 0; k < kc; k += 32) {
        int rem = kc - k;
        __mmask16 mlo = et_lanes16(rem), mhi = et_lanes16(rem - 16);
        __m512 r16[16];
#pragma GCC unroll 16
        for (int r = 0; r < 16; r++) {
            if (r < h) {
                const float *s = src + (long)r * ld + k;
                __m512 lo = _mm512_maskz_loadu_ps(mlo, s), hi = _mm512_maskz_loadu_ps(mhi, s + 16);
                r16[r] = _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(hi, lo)); /* 16 pairs of row r */
            } else {
                r16[r] = _mm512_setzero_ps();
            }
        }
        et_tr16(r16); /* r16[q] = pair q of rows 0..15 */
        int np = rem >= 32 ? 16 : (rem + 1) / 2;
        float *d = dst + (long)(k / 2) * stride;
        for (int q = 0; q < np; q++) _mm512_mask_storeu_ps(d + (long)q * stride, store, r16[q]);
    }
}

/* Two rows (k and k + 1; hi NULL = zero) of w <= 16 contiguous values -> 16 pair words at dst (store lanes) */
static ET_ALWAYS_INLINE void pack_two_rows(float *dst, const float *lo, const float *hi, int w, __mmask16 store) {
    __mmask16 m = et_lanes16(w);
    __m512 x0 = _mm512_maskz_loadu_ps(m, lo), x1 = hi ? _mm512_maskz_loadu_ps(m, hi) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(dst, store, et_pairs16(x0, x1));
}

/* op(A) rows [0,mc) x k [0,kc) -> 14-row pair panels Ap[p * 14 + r] */
static void pack_a(float *Ap, const float *A, int lda, int ta, int mc, int kc, int mr) {
    (void)mr;
    const int kp = (kc + 1) / 2;
    for (int i0 = 0; i0 < mc; i0 += MR) {
        int h = mc - i0 < MR ? mc - i0 : MR;
        float *dst = Ap + (long)i0 * kc;
        if (ta) { /* op(A)[r][k] = A[k * lda + i0 + r]: rows k, k + 1 of A give pair p */
            for (int p = 0; p < kp; p++) {
                const float *s0 = A + (long)(2 * p) * lda + i0;
                pack_two_rows(dst + (long)p * MR, s0, 2 * p + 1 < kc ? s0 + lda : NULL, h, 0x3FFF);
            }
        } else {
            pack_rows_k(dst, MR, A + (long)i0 * lda, lda, h, kc, 0x3FFF);
        }
    }
}

/* op(B) k [0,kc) x cols [0,nc) -> 32-column pair panels Bp[p * 32 + c] (also the AMX table's B tiles) */
void et_bf16_avx512_pack_b(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int nr) {
    (void)nr;
    const int kp = (kc + 1) / 2;
    for (int j0 = 0; j0 < nc; j0 += NR) {
        int w = nc - j0 < NR ? nc - j0 : NR;
        float *dst = Bp + (long)j0 * kc;
        if (!tb) { /* row k of B holds pair p's first halves for the panel's columns */
            for (int p = 0; p < kp; p++) {
                const float *s0 = B + (long)(2 * p) * ldb + j0, *s1 = 2 * p + 1 < kc ? s0 + ldb : NULL;
                pack_two_rows(dst + (long)p * NR, s0, s1, w, 0xFFFF);
                pack_two_rows(dst + (long)p * NR + 16, s0 + 16, s1 ? s1 + 16 : NULL, w - 16, 0xFFFF);
            }
        } else { /* column c of op(B) = row j0 + c of B, k contiguous: 16 columns at a time */
            for (int g = 0; g < 2; g++)
                pack_rows_k(dst + 16 * g, NR, B + (long)(j0 + 16 * g) * ldb, ldb, w - 16 * g, kc, 0xFFFF);
        }
    }
}

/* KC: ET_BF16_KC, as the scalar reference (the same k blocks, so the same sums) */
const et_kern_isa et_kern_isa_avx512bf16 = {"avx512bf16", MR, NR, 14 * 8, ET_BF16_KC, 1024, ukr, pack_a,
                                            et_bf16_avx512_pack_b,
                                            0, 0, 0, 0, 0, 0, 0, 0, 0, ukr_bias, 0};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
