/* kernels/avx512.c - AVX-512F path: 14x32 FMA micro-kernel (28 zmm accumulators), masked edges,
 * vector dot/axpy. Built only on x86 (CMake adds the ISA flags; the pragma keeps a plain
 * `cc -c` working too). Selected at run time by dispatch.c when the CPU has AVX-512F. */
#if defined(__x86_64__) || defined(__i386__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx2,fma")
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx2,fma"))), apply_to = function)
#endif
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include "impl.h"
#include "avx512_common.h"

#define MR 14
#ifndef ET_BPF
#define ET_BPF 256 /* floats ahead (8 k steps) that the micro-kernel prefetches its B panel */
#endif
#define NR 32

#if defined(__GNUC__)
#define ET_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ET_ALWAYS_INLINE inline
#endif

static ET_ALWAYS_INLINE __m512 gelu16(__m512 v); /* below, with the GELU code */

/* R rows (compile-time after inlining) of a 14x32 tile; n <= 32 valid columns. */
static ET_ALWAYS_INLINE void ukr_rows(const int R, int n, int K, const float *Ap, const float *Bp,
                                      float *C, int ldc, float alpha, float beta, const float *bias,
                                      const int gelu) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int r = 0; r < R; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = _mm512_setzero_ps(); }
    for (int k = 0; k < K; k++) {
        _mm_prefetch((const char *)(Bp + ET_BPF), _MM_HINT_T0);
        _mm_prefetch((const char *)(Bp + ET_BPF + 16), _MM_HINT_T0);
        __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
#pragma GCC unroll 14
        for (int r = 0; r < R; r++) {
            __m512 a = _mm512_set1_ps(Ap[r]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
        Ap += MR;
        Bp += NR;
    }
    et_avx512_store_tile(R, n, c0, c1, C, ldc, alpha, beta, bias, gelu ? gelu16 : NULL);
}

#define UKR(R)                                                                                      \
    static void ukr_##R(int n, int K, const float *Ap, const float *Bp, float *C, int ldc,         \
                        float alpha, float beta, const float *bias) {                               \
        ukr_rows(R, n, K, Ap, Bp, C, ldc, alpha, beta, bias, 0);                                    \
    }                                                                                               \
    static void ukrg_##R(int n, int K, const float *Ap, const float *Bp, float *C, int ldc,        \
                         float alpha, float beta, const float *bias) {                              \
        ukr_rows(R, n, K, Ap, Bp, C, ldc, alpha, beta, bias, 1);                                    \
    }
UKR(1) UKR(2) UKR(3) UKR(4) UKR(5) UKR(6) UKR(7) UKR(8) UKR(9) UKR(10) UKR(11) UKR(12) UKR(13) UKR(14)

typedef void (*ukr_fn_r)(int, int, const float *, const float *, float *, int, float, float, const float *);
static const ukr_fn_r tab_ukr[MR + 1] = {0, ukr_1, ukr_2, ukr_3, ukr_4, ukr_5, ukr_6, ukr_7,
                                         ukr_8, ukr_9, ukr_10, ukr_11, ukr_12, ukr_13, ukr_14};

static const ukr_fn_r tab_ukrg[MR + 1] = {0, ukrg_1, ukrg_2, ukrg_3, ukrg_4, ukrg_5, ukrg_6, ukrg_7,
                                          ukrg_8, ukrg_9, ukrg_10, ukrg_11, ukrg_12, ukrg_13, ukrg_14};

/* C = gelu(alpha * acc + (bias ? bias : beta * C)) */
static void ukr_gelu(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                     float beta, const float *bias) {
    tab_ukrg[m](n, K, Ap, Bp, C, ldc, alpha, beta, bias);
}

static void ukr(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                float beta) {
    tab_ukr[m](n, K, Ap, Bp, C, ldc, alpha, beta, NULL);
}

static void ukr_bias(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                     const float *bias) {
    tab_ukr[m](n, K, Ap, Bp, C, ldc, alpha, 0.0f, bias);
}


/* 8x8 transpose of r[0..7] in place (AVX) */
static ET_ALWAYS_INLINE void tr8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* op(A) rows [0,mc) x k [0,kc) -> 14-row panels Ap[p][k][r], zero padded */
static void pack_a(float *Ap, const float *A, int lda, int ta, int mc, int kc, int mr) {
    (void)mr;
    for (int i0 = 0; i0 < mc; i0 += MR) {
        int h = mc - i0 < MR ? mc - i0 : MR;
        float *dst = Ap + (long)i0 * kc;
        if (ta) {
            __mmask16 m = (__mmask16)((1u << h) - 1u);
            for (int k = 0; k < kc; k++)
                _mm512_mask_storeu_ps(dst + (long)k * MR, 0x3FFF, _mm512_maskz_loadu_ps(m, A + (long)k * lda + i0));
            continue;
        }
        const float *row[16];
        static const float zeros[8] = {0};
        for (int r = 0; r < 16; r++) row[r] = r < h ? A + (long)(i0 + r) * lda : zeros;
        int k = 0;
        for (; k + 16 <= kc; k += 16) { /* 16 k at a time: 512-bit rows, one 16x16 transpose */
            __m512 r16[16];
#pragma GCC unroll 16
            for (int r = 0; r < 16; r++) r16[r] = r < h ? _mm512_loadu_ps(row[r] + k) : _mm512_setzero_ps();
            et_tr16(r16);
            float *d = dst + (long)k * MR;
#pragma GCC unroll 16
            for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(d + q * MR, 0x3FFF, r16[q]);
        }
        for (; k + 8 <= kc; k += 8) {
            __m256 r0[8], r1[8];
            for (int r = 0; r < 8; r++) {
                r0[r] = _mm256_loadu_ps(row[r] + (row[r] == zeros ? 0 : k));
                r1[r] = _mm256_loadu_ps(row[8 + r] + (row[8 + r] == zeros ? 0 : k));
            }
            tr8(r0);
            tr8(r1);
            float *d = dst + (long)k * MR;
            for (int q = 0; q < 8; q++) {
                _mm256_storeu_ps(d + q * MR, r0[q]);
                _mm256_mask_storeu_ps(d + q * MR + 8, 0x3F, r1[q]);
            }
        }
        for (; k < kc; k++)
            for (int r = 0; r < MR; r++) dst[(long)k * MR + r] = r < h ? row[r][k] : 0.0f;
    }
}

/* op(B) panel packing: tb = 0 copies rows; tb = 1 transposes 16x16 blocks in registers. */
static void pack_b(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int nr) {
    (void)nr;
    for (int j0 = 0; j0 < nc; j0 += NR) {
        int w = nc - j0 < NR ? nc - j0 : NR;
        float *dst = Bp + (long)j0 * kc;
        if (!tb) {
            __mmask16 m0 = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1u);
            __mmask16 m1 = w >= 32 ? 0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1u) : 0;
            for (int k = 0; k < kc; k++) {
                const float *s = B + (long)k * ldb + j0;
                _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, s));
                _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
            }
        } else {
            /* op(B)[k][j] = B[j*ldb + k]: column j of the panel is a contiguous row of B */
            if (w == NR) {
                int k = 0;
                for (; k + 4 <= kc; k += 4) {
                    /* gather 4 k's for 32 columns: load 32 rows x 4 floats, scatter via 128-bit lanes */
                    for (int half = 0; half < 2; half++) {
                        __m128 r[16];
                        for (int c = 0; c < 16; c++) r[c] = _mm_loadu_ps(B + (long)(j0 + half * 16 + c) * ldb + k);
                        float *o = dst + (long)k * NR + half * 16;
                        for (int g = 0; g < 4; g++) {
                            __m128 t0 = r[4 * g], t1 = r[4 * g + 1], t2 = r[4 * g + 2], t3 = r[4 * g + 3];
                            _MM_TRANSPOSE4_PS(t0, t1, t2, t3);
                            _mm_store_ps(o + 4 * g, t0);
                            _mm_store_ps(o + NR + 4 * g, t1);
                            _mm_store_ps(o + 2 * NR + 4 * g, t2);
                            _mm_store_ps(o + 3 * NR + 4 * g, t3);
                        }
                    }
                }
                for (; k < kc; k++)
                    for (int c = 0; c < NR; c++) dst[k * NR + c] = B[(long)(j0 + c) * ldb + k];
            } else {
                for (int k = 0; k < kc; k++) {
                    int c = 0;
                    for (; c < w; c++) dst[k * NR + c] = B[(long)(j0 + c) * ldb + k];
                    for (; c < NR; c++) dst[k * NR + c] = 0.0f;
                }
            }
        }
    }
}

static float dot(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void axpy(float *y, float alpha, const float *x, int64_t n) {
    __m512 va = _mm512_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}


/* exp(x) for 16 lanes: Cephes-style range reduction x = n ln2 + r, degree-6 polynomial,
 * scalef by 2^n; about 1 ulp. Lanes below -87.3 (incl. -inf) give exactly 0. */
static ET_ALWAYS_INLINE __m512 exp16(__m512 x) {
    __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
    x = _mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f));
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(live, p, n);
}

/* x[i] = exp(x[i] - sub); returns the sum */
static float expsum(float *x, int64_t n, float sub) {
    __m512 vs = _mm512_set1_ps(sub), acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs));
        _mm512_storeu_ps(x + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs)));
        _mm512_mask_storeu_ps(x + i, m, e);
        acc = _mm512_add_ps(acc, e);
    }
    return _mm512_reduce_add_ps(acc);
}

/* ---- GELU: erf for |z| <= 1 (z = x / sqrt 2) is Eigen's generic_fast_erf_float rational
 * (odd degree-13 numerator / even degree-8 denominator, clamped to [-4, 4]); for z < -1, where
 * 1 + erf(z) would cancel, erfc(-z) = exp(-z^2) q P(q^2), q = 1/|z| (Cephes erfcf: P on [1,2),
 * R on [2, inf)), with exp(-x^2/2) from x^2 split exactly (hi + lo, FMA) so the large exponent
 * keeps full accuracy. The same exp(-x^2/2) gives the pdf for the backward. */
static ET_ALWAYS_INLINE __m512 erf_rat16(__m512 z) {
    __m512 x = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(-2.72614225801306e-10f), _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(x, p);
    __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(-1.45660718464996e-05f), _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.42647390514189e-02f));
    return _mm512_div_ps(p, q);
}

/* erfc(a) / exp(-a^2) for a >= 1 */
static ET_ALWAYS_INLINE __m512 erfc_scaled16(__m512 a) {
    __m512 q = _mm512_div_ps(_mm512_set1_ps(1.0f), a), y = _mm512_mul_ps(q, q);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(2.326819970068386E-2f), y, _mm512_set1_ps(-1.387039388740657E-1f));
    p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(3.687424674597105E-1f));
    p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(-5.824733027278666E-1f));
    p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(6.210004621745983E-1f));
    p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(-4.944515323274145E-1f));
    p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(3.404879937665872E-1f));
    p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(-2.741127028184656E-1f));
    p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(5.638259427386472E-1f));
    __m512 r = _mm512_fmadd_ps(_mm512_set1_ps(-1.047766399936249E+1f), y, _mm512_set1_ps(1.297719955372516E+1f));
    r = _mm512_fmadd_ps(r, y, _mm512_set1_ps(-7.495518717768503E+0f));
    r = _mm512_fmadd_ps(r, y, _mm512_set1_ps(2.921019019210786E+0f));
    r = _mm512_fmadd_ps(r, y, _mm512_set1_ps(-1.015265279202700E+0f));
    r = _mm512_fmadd_ps(r, y, _mm512_set1_ps(4.218463358204948E-1f));
    r = _mm512_fmadd_ps(r, y, _mm512_set1_ps(-2.820767439740514E-1f));
    r = _mm512_fmadd_ps(r, y, _mm512_set1_ps(5.641895067754075E-1f));
    __mmask16 mid = _mm512_cmp_ps_mask(a, _mm512_set1_ps(2.0f), _CMP_LT_OQ);
    return _mm512_mul_ps(q, _mm512_mask_blend_ps(mid, r, p));
}

/* exp(-x^2 / 2) with x^2 = hi + lo exactly */
static ET_ALWAYS_INLINE __m512 gauss16(__m512 x) {
    __m512 hi = _mm512_mul_ps(x, x), lo = _mm512_fmsub_ps(x, x, hi);
    __m512 e = exp16(_mm512_mul_ps(hi, _mm512_set1_ps(-0.5f)));
    return _mm512_fmadd_ps(e, _mm512_mul_ps(lo, _mm512_set1_ps(-0.5f)), e);
}

/* Phi(x) = P(X <= x) for a standard normal; *g = exp(-x^2/2) when want_g (else only where needed) */
static ET_ALWAYS_INLINE __m512 phi16(__m512 x, __m512 *g, int want_g) {
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752440f));
    __m512 half = _mm512_set1_ps(0.5f);
    __m512 cdf = _mm512_fmadd_ps(half, erf_rat16(z), half);
    __mmask16 tail = _mm512_cmp_ps_mask(z, _mm512_set1_ps(-1.0f), _CMP_LT_OQ);
    __m512 e = _mm512_setzero_ps();
    if (want_g || tail) e = gauss16(x);
    if (tail) {
        __m512 t = _mm512_mul_ps(_mm512_mul_ps(half, e), erfc_scaled16(_mm512_sub_ps(_mm512_setzero_ps(), z)));
        cdf = _mm512_mask_blend_ps(tail, cdf, t);
    }
    *g = e;
    return cdf;
}

static ET_ALWAYS_INLINE __m512 gelu16(__m512 v) {
    __m512 g;
    return _mm512_mul_ps(v, phi16(v, &g, 0));
}

static void gelu_fwd(float *out, const float *x, int64_t n) {
    int64_t i = 0;
    __m512 g;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(v, phi16(v, &g, 0)));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, phi16(v, &g, 0)));
    }
}

/* gelu'(x) = Phi(x) + x exp(-x^2/2) / sqrt(2 pi) */
static void gelu_bwd(float *dinp, const float *x, const float *dout, int64_t n) {
    const __m512 c = _mm512_set1_ps(0.39894228040143267794f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i), g;
        __m512 cdf = phi16(v, &g, 1);
        __m512 d = _mm512_fmadd_ps(_mm512_mul_ps(v, c), g, cdf);
        __m512 di = _mm512_maskz_loadu_ps(m, dinp + i);
        _mm512_mask_storeu_ps(dinp + i, m, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, dout + i), d, di));
    }
}

/* ---- LayerNorm rows: two passes over the (L1-resident) row in float with 32 partial sums */
static void ln_fwd_row(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                       int C, float eps) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= C; i += 32) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
    }
    for (; i < C; i += 16) {
        __mmask16 m = C - i >= 16 ? 0xFFFF : (__mmask16)((1u << (C - i)) - 1u);
        s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(m, x + i));
    }
    float mf = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)C;
    __m512 vm = _mm512_set1_ps(mf);
    s0 = _mm512_setzero_ps(); s1 = _mm512_setzero_ps();
    for (i = 0; i + 32 <= C; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm), d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i < C; i += 16) {
        __mmask16 m = C - i >= 16 ? 0xFFFF : (__mmask16)((1u << (C - i)) - 1u);
        __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    float var = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)C;
    float s = (float)(1.0 / sqrt((double)var + eps));
    __m512 vs = _mm512_set1_ps(s);
    for (i = 0; i < C; i += 16) {
        __mmask16 m = C - i >= 16 ? 0xFFFF : (__mmask16)((1u << (C - i)) - 1u);
        __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vs);
        _mm512_mask_storeu_ps(out + i, m, _mm512_fmadd_ps(xh, _mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
    *mean = mf;
    *rstd = s;
}

static void ln_bwd_row(float *dinp, float *dw, float *db, const float *dy, const float *x, const float *w,
                       float mean, float rstd, int C) {
    __m512 vm = _mm512_set1_ps(mean), vs = _mm512_set1_ps(rstd);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int i = 0; i < C; i += 16) {
        __mmask16 m = C - i >= 16 ? 0xFFFF : (__mmask16)((1u << (C - i)) - 1u);
        __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vs);
        __m512 g = _mm512_maskz_loadu_ps(m, dy + i);
        __m512 dn = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i), g);
        a0 = _mm512_add_ps(a0, dn);
        a1 = _mm512_fmadd_ps(dn, xh, a1);
        if (db) _mm512_mask_storeu_ps(db + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, db + i), g));
        if (dw) _mm512_mask_storeu_ps(dw + i, m, _mm512_fmadd_ps(xh, g, _mm512_maskz_loadu_ps(m, dw + i)));
    }
    if (!dinp) return;
    __m512 dm = _mm512_set1_ps(_mm512_reduce_add_ps(a0) / (float)C);
    __m512 dnm = _mm512_set1_ps(_mm512_reduce_add_ps(a1) / (float)C);
    for (int i = 0; i < C; i += 16) {
        __mmask16 m = C - i >= 16 ? 0xFFFF : (__mmask16)((1u << (C - i)) - 1u);
        __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vs);
        __m512 dn = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, dy + i));
        __m512 t = _mm512_mul_ps(_mm512_fnmadd_ps(xh, dnm, _mm512_sub_ps(dn, dm)), vs);
        _mm512_mask_storeu_ps(dinp + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dinp + i), t));
    }
}

static float maxv(const float *x, int64_t n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + i));
    }
    return _mm512_reduce_max_ps(mx);
}

static void scale(float *x, float s, int64_t n) {
    __m512 vs = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
    }
}

const et_kern_isa et_kern_isa_avx512 = {"avx512", MR, NR, 14 * 8, 384, 1024, ukr, pack_a, pack_b, dot, axpy, expsum,
                                        gelu_fwd, gelu_bwd, ln_fwd_row, ln_bwd_row, maxv, scale, ukr_bias,
                                        ukr_gelu};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
