/* kernels/int8_avx512.c - the int8 path with AVX512_VNNI (vpdpbusd: u8 x s8, 4 products per int32 lane):
 * 12 rows x 2 panels (32 channels) of int32 accumulators, the activations' 4-byte groups broadcast from
 * memory. Activations are stored as code + 128 (u8); the kernel subtracts 128 * colsum (kernels_int8.h).
 * Selected at run time by int8.c when the fp32 path is avx512 and the CPU has AVX512_VNNI. */
#if defined(__x86_64__) || defined(__i386__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma")
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma"))), apply_to = function)
#endif
#include <immintrin.h>
#include <string.h>
#include "amx.h"
#include "int8_impl.h"

#define PANEL 16
#define MR 12

#if defined(__GNUC__)
#define ET_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ET_ALWAYS_INLINE inline
#endif

/* rows: amax with vector max, codes with the default rounding (nearest even, as nearbyintf) and a
 * saturating narrow (|x * inv| <= 127 up to rounding: the clamp of the scalar code), then + 128 */
static void vnni_quant_rows(int8_t *qa, float *sa, const float *x, int n, int IC, int ICp) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * IC;
        uint8_t *q = (uint8_t *)qa + (size_t)r * ICp;
        __m512 m = _mm512_setzero_ps();
        int k = 0;
        for (; k + 16 <= IC; k += 16) m = _mm512_max_ps(m, _mm512_and_ps(absmask, _mm512_loadu_ps(xr + k)));
        if (k < IC) {
            __mmask16 mk = (__mmask16)((1u << (IC - k)) - 1u);
            m = _mm512_max_ps(m, _mm512_and_ps(absmask, _mm512_maskz_loadu_ps(mk, xr + k)));
        }
        float inv;
        et_q8_row_scale(_mm512_reduce_max_ps(m), &sa[r], &inv);
        const __m512 vi = _mm512_set1_ps(inv);
        const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127), off = _mm512_set1_epi32(128);
        for (k = 0; k < IC; k += 16) {
            int left = IC - k;
            __mmask16 mk = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1u);
            __m512i c = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, xr + k), vi));
            c = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(c, lo), hi), off);
            _mm_mask_storeu_epi8(q + k, mk, _mm512_cvtepi32_epi8(c));
        }
        for (k = IC; k < ICp; k++) q[k] = 128;
    }
}

/* the epilogue of one row's 16 channels o0.. (n valid): (acc - 128 colsum) * (sa * sw) + bias */
static ET_ALWAYS_INLINE void vnni_store16(__m512i acc, float sa, const et_q8_matrix *W, int o0, int n, const float *bias,
                                          float *out) {
    __mmask16 mk = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1u);
    __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(W->colsum + o0)), 7);
    __m512 s = _mm512_mul_ps(_mm512_set1_ps(sa), _mm512_loadu_ps(W->scale + o0));
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, corr)), s);
    if (bias) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mk, bias + o0));
    _mm512_mask_storeu_ps(out + o0, mk, y);
}

static ET_ALWAYS_INLINE void vnni_block(const int R, const int NP, int G, const uint8_t *a, int lda,
                                        const int8_t *w0, const int8_t *w1, const float *sa, const et_q8_matrix *W,
                                        int p, const float *bias, float *out, int ldo) {
    __m512i c0[MR], c1[MR]; /* R x NP <= 24 zmm accumulators, kept in registers */
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) { c0[r] = _mm512_setzero_si512(); c1[r] = _mm512_setzero_si512(); }
    for (int g = 0; g < G; g++) {
        __m512i b0 = _mm512_load_si512((const void *)(w0 + (size_t)g * 64));
        __m512i b1 = NP > 1 ? _mm512_load_si512((const void *)(w1 + (size_t)g * 64)) : b0;
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            int32_t x;
            memcpy(&x, a + (size_t)r * lda + 4 * g, 4);
            __m512i av = _mm512_set1_epi32(x);
            c0[r] = _mm512_dpbusd_epi32(c0[r], av, b0);
            if (NP > 1) c1[r] = _mm512_dpbusd_epi32(c1[r], av, b1);
        }
    }
    int o0 = p * PANEL, n0 = W->OC - o0, n1 = n0 - PANEL;
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
        vnni_store16(c0[r], sa[r], W, o0, n0, bias, out + (size_t)r * ldo);
        if (NP > 1 && n1 > 0) vnni_store16(c1[r], sa[r], W, o0 + PANEL, n1, bias, out + (size_t)r * ldo);
    }
}

#define VNNI_RP(R, NP)                                                                                       \
    static void vnni_##R##_##NP(int G, const uint8_t *a, int lda, const int8_t *w0, const int8_t *w1,        \
                                const float *sa, const et_q8_matrix *W, int p, const float *bias, float *out, \
                                int ldo) {                                                                   \
        vnni_block(R, NP, G, a, lda, w0, w1, sa, W, p, bias, out, ldo);                                      \
    }
#define VNNI_R(R) VNNI_RP(R, 1) VNNI_RP(R, 2)
VNNI_R(1) VNNI_R(2) VNNI_R(3) VNNI_R(4) VNNI_R(5) VNNI_R(6) VNNI_R(7) VNNI_R(8) VNNI_R(9) VNNI_R(10) VNNI_R(11)
VNNI_R(12)

typedef void (*vnni_fn)(int, const uint8_t *, int, const int8_t *, const int8_t *, const float *, const et_q8_matrix *, int,
                        const float *, float *, int);
static const vnni_fn vnni_fns[MR][2] = {
    {vnni_1_1, vnni_1_2},   {vnni_2_1, vnni_2_2},   {vnni_3_1, vnni_3_2},   {vnni_4_1, vnni_4_2},
    {vnni_5_1, vnni_5_2},   {vnni_6_1, vnni_6_2},   {vnni_7_1, vnni_7_2},   {vnni_8_1, vnni_8_2},
    {vnni_9_1, vnni_9_2},   {vnni_10_1, vnni_10_2}, {vnni_11_1, vnni_11_2}, {vnni_12_1, vnni_12_2},
};

static void vnni_tile(int m, const int8_t *qa, const float *sa, const et_q8_matrix *W, int p0, int np,
                      const float *bias, float *out, int ldo) {
    const int G = W->ICp / 4;
    const size_t pstride = (size_t)W->ICp * PANEL;
    for (int p = p0; p < p0 + np; p += 2) {
        int NP = p + 1 < p0 + np ? 2 : 1;
        const int8_t *w0 = W->w + (size_t)p * pstride, *w1 = w0 + pstride;
        for (int r = 0; r < m; r += MR) {
            int R = m - r < MR ? m - r : MR;
            vnni_fns[R - 1][NP - 1](G, (const uint8_t *)qa + (size_t)r * W->ICp, W->ICp, w0, w1, sa + r, W, p, bias,
                                    out + (size_t)r * ldo, ldo);
        }
    }
}

const et_q8_isa et_q8_isa_vnni = {"vnni", vnni_quant_rows, vnni_tile};

/* ---- AMX (TDPBUSD: C[16 x 16] int32 += A[16 x 64] u8 . B[64 x 16] s8): the same u8 codes (vnni_quant_rows), the
 * same packed weights (a panel's [ICp/4][16][4] bytes ARE TDPBUSD's B layout: row g = k group g of 16 channels,
 * 64 bytes), the same integer sums (exact), the same epilogue (vnni_store16): the VNNI path's bits. Row blocks of
 * 32 (four C tiles: 2 row tiles x 2 panels) and 16 (two); rows left over (< 16) and ICp not a multiple of 64 (a
 * tile step is 64 k) run on VNNI. Selected by int8.c when et_kern_amx_ok(25) (AMX-INT8 and the tile state). */
#define AMX_TARGET "avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma,amx-tile,amx-int8"

/* R2 row tiles (1 or 2) x 2 panels p, p + 1 (np2 = 0: only p is stored) of rows a[0 .. 16 R2) */
__attribute__((target(AMX_TARGET))) static void amx_block(const int R2, int np2, int S, const uint8_t *a, int lda,
                                                        const int8_t *w0, const int8_t *w1, const float *sa,
                                                        const et_q8_matrix *W, int p, const float *bias, float *out,
                                                        int ldo) {
    int32_t acc[32 * 32] __attribute__((aligned(64)));
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (int s = 0; s < S; s++) {
        _tile_loadd(4, a + (size_t)s * 64, lda);
        _tile_loadd(6, w0 + (size_t)s * 1024, 64);
        _tile_loadd(7, w1 + (size_t)s * 1024, 64);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        if (R2 > 1) {
            _tile_loadd(5, a + (size_t)16 * lda + (size_t)s * 64, lda);
            _tile_dpbusd(2, 5, 6);
            _tile_dpbusd(3, 5, 7);
        }
    }
    _tile_stored(0, acc, 128);
    _tile_stored(1, acc + 16, 128);
    if (R2 > 1) { _tile_stored(2, acc + 16 * 32, 128); _tile_stored(3, acc + 16 * 32 + 16, 128); }
    int o0 = p * PANEL, n0 = W->OC - o0, n1 = n0 - PANEL;
    for (int r = 0; r < 16 * R2; r++) {
        vnni_store16(_mm512_load_si512((const void *)(acc + r * 32)), sa[r], W, o0, n0, bias, out + (size_t)r * ldo);
        if (np2 && n1 > 0)
            vnni_store16(_mm512_load_si512((const void *)(acc + r * 32 + 16)), sa[r], W, o0 + PANEL, n1, bias,
                         out + (size_t)r * ldo);
    }
}

__attribute__((target(AMX_TARGET))) static void amx_tile(int m, const int8_t *qa, const float *sa,
                                                       const et_q8_matrix *W, int p0, int np, const float *bias,
                                                       float *out, int ldo) {
    const int ICp = W->ICp;
    if (ICp % 64) { vnni_tile(m, qa, sa, W, p0, np, bias, out, ldo); return; }
    et_amx_config_tiles();
    const size_t pstride = (size_t)ICp * PANEL;
    const int S = ICp / 64, full = m / 16 * 16;
    for (int p = p0; p < p0 + np; p += 2) {
        int two = p + 1 < p0 + np;
        const int8_t *w0 = W->w + (size_t)p * pstride, *w1 = two ? w0 + pstride : w0;
        int r = 0;
        for (; r + 32 <= full; r += 32)
            amx_block(2, two, S, (const uint8_t *)qa + (size_t)r * ICp, ICp, w0, w1, sa + r, W, p, bias,
                      out + (size_t)r * ldo, ldo);
        if (r < full)
            amx_block(1, two, S, (const uint8_t *)qa + (size_t)r * ICp, ICp, w0, w1, sa + r, W, p, bias,
                      out + (size_t)r * ldo, ldo);
    }
    if (full < m) vnni_tile(m - full, qa + (size_t)full * ICp, sa + full, W, p0, np, bias, out + (size_t)full * ldo, ldo);
}

const et_q8_isa et_q8_isa_amx = {"amx-int8", vnni_quant_rows, amx_tile};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
