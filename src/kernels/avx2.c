/* kernels/avx2.c - AVX2+FMA path: 6x16 micro-kernel (12 ymm accumulators), vector dot/axpy.
 * Built only on x86; selected at run time by dispatch.c when the CPU has AVX2 and FMA. */
#if defined(__x86_64__) || defined(__i386__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx2,fma")
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#endif
#include <immintrin.h>
#include <math.h>
#include "impl.h"

#define MR 6
#define NR 16

#if defined(__GNUC__)
#define ET_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ET_ALWAYS_INLINE inline
#endif

static ET_ALWAYS_INLINE __m256i tail_mask(int n) { /* lanes < n set */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static ET_ALWAYS_INLINE void ukr_rows(const int R, int n, int K, const float *Ap, const float *Bp,
                                      float *C, int ldc, float alpha, float beta) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) { c0[r] = _mm256_setzero_ps(); c1[r] = _mm256_setzero_ps(); }
    for (int k = 0; k < K; k++) {
        __m256 b0 = _mm256_load_ps(Bp), b1 = _mm256_load_ps(Bp + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m256 a = _mm256_broadcast_ss(Ap + r);
            c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
        }
        Ap += MR;
        Bp += NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (n == NR) {
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            float *c = C + (long)r * ldc;
            __m256 o0 = _mm256_mul_ps(va, c0[r]), o1 = _mm256_mul_ps(va, c1[r]);
            if (beta != 0.0f) {
                o0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), o0);
                o1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), o1);
            }
            _mm256_storeu_ps(c, o0);
            _mm256_storeu_ps(c + 8, o1);
        }
    } else {
        __m256i m0 = tail_mask(n), m1 = tail_mask(n - 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            float *c = C + (long)r * ldc;
            __m256 o0 = _mm256_mul_ps(va, c0[r]), o1 = _mm256_mul_ps(va, c1[r]);
            if (beta != 0.0f) {
                o0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, m0), o0);
                o1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + 8, m1), o1);
            }
            _mm256_maskstore_ps(c, m0, o0);
            _mm256_maskstore_ps(c + 8, m1, o1);
        }
    }
}

#define UKR(R)                                                                                      \
    static void ukr_##R(int n, int K, const float *Ap, const float *Bp, float *C, int ldc,         \
                        float alpha, float beta) {                                                  \
        ukr_rows(R, n, K, Ap, Bp, C, ldc, alpha, beta);                                             \
    }
UKR(1) UKR(2) UKR(3) UKR(4) UKR(5) UKR(6)

static void ukr(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                float beta) {
    typedef void (*fn)(int, int, const float *, const float *, float *, int, float, float);
    static const fn tab[MR + 1] = {0, ukr_1, ukr_2, ukr_3, ukr_4, ukr_5, ukr_6};
    tab[m](n, K, Ap, Bp, C, ldc, alpha, beta);
}

static float dot(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static void axpy(float *y, float alpha, const float *x, int64_t n) {
    __m256 va = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    /* the tail fused too: an element's value must not depend on where a range split puts it */
    for (; i < n; i++) y[i] = fmaf(alpha, x[i], y[i]);
}

const et_kern_isa et_kern_isa_avx2 = {"avx2", MR, NR, 6 * 24, 256, 2048, ukr, 0, 0, dot, axpy, 0};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
