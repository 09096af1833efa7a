/* kernels_bf16.c - the bf16 GEMM's scalar reference (every build, x86 or not, WebAssembly too).
 *
 * What the bf16 GEMM computes (kernels.h et_sgemm_bf16), written out one element at a time: op(A) and op(B)
 * are rounded to bfloat16 as they are packed (et_f32_to_bf16_daz: round to nearest even, subnormals to zero, as
 * VCVTNE2PS2BF16), k is walked in pairs (k, k+1) from the start of each of the driver's k blocks (an odd
 * block's last pair has a zero second half), and each pair is added to a float accumulator as VDPBF16PS does:
 * acc = fma(a[k+1], b[k+1], acc), then acc = fma(a[k], b[k], acc), with subnormal results flushed to zero.
 * A bf16 x bf16 product has at most 16 significant bits, so each fma is one rounding of an exact sum. The
 * epilogue is the fp32 AVX-512 path's (alpha * acc, fma(alpha, acc, beta * C), fma(alpha, acc, bias)).
 * kernels_avx512bf16.c must give the same bits (tests/test_bf16.c checks it).
 *
 * Packed layout (both tables): the driver in kernels.c hands out panel slots sized for float panels
 * (MR x kc and kc x NR floats); a bf16 panel fills the first half of its slot. A panel is ceil(kc / 2) pairs;
 * pair p of row r of an A panel is the 32-bit word Ap[p * MR + r] = bf16(op(A)[r][2p]) | bf16(op(A)[r][2p+1])
 * << 16, and of column c of a B panel the word Bp[p * NR + c]; rows and columns past the edge are zero. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "kernels_impl.h"

uint16_t et_f32_to_bf16_daz(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);   /* zero, subnormal: signed zero */
    if ((u & 0x7F800000u) == 0x7F800000u) {
        if (u & 0x007FFFFFu) return (uint16_t)((u >> 16) | 0x0040u);       /* NaN: truncated, quiet */
        return (uint16_t)(u >> 16);                                         /* +-inf */
    }
    u += 0x7FFFu + ((u >> 16) & 1u); /* round to nearest, ties to even (may carry into inf) */
    return (uint16_t)(u >> 16);
}

static float widen(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* the word of a pair (lo = element 2p, hi = element 2p + 1) to *dst (bits copied: a word may look like a NaN) */
static void put_pair(float *dst, float lo, float hi) {
    uint32_t w = (uint32_t)et_f32_to_bf16_daz(lo) | (uint32_t)et_f32_to_bf16_daz(hi) << 16;
    memcpy(dst, &w, 4);
}

/* op(A) rows [0,mc) x k [0,kc) -> MR-row pair panels (see the top); also the AVX-512 table's edge packer */
void et_bf16_pack_a_ref(float *Ap, const float *A, int lda, int ta, int mc, int kc, int MR) {
    const int kp = (kc + 1) / 2;
    for (int i0 = 0; i0 < mc; i0 += MR) {
        int h = mc - i0 < MR ? mc - i0 : MR;
        float *dst = Ap + (size_t)i0 * kc;
        for (int p = 0; p < kp; p++)
            for (int r = 0; r < MR; r++) {
                float v[2] = {0.0f, 0.0f};
                for (int e = 0; e < 2; e++) {
                    int k = 2 * p + e;
                    if (r < h && k < kc) v[e] = ta ? A[(size_t)k * lda + i0 + r] : A[(size_t)(i0 + r) * lda + k];
                }
                put_pair(dst + (size_t)p * MR + r, v[0], v[1]);
            }
    }
}

/* op(B) k [0,kc) x cols [0,nc) -> NR-column pair panels */
void et_bf16_pack_b_ref(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int NR) {
    const int kp = (kc + 1) / 2;
    for (int j0 = 0; j0 < nc; j0 += NR) {
        int w = nc - j0 < NR ? nc - j0 : NR;
        float *dst = Bp + (size_t)j0 * kc;
        for (int p = 0; p < kp; p++)
            for (int c = 0; c < NR; c++) {
                float v[2] = {0.0f, 0.0f};
                for (int e = 0; e < 2; e++) {
                    int k = 2 * p + e;
                    if (c < w && k < kc) v[e] = tb ? B[(size_t)(j0 + c) * ldb + k] : B[(size_t)k * ldb + j0 + c];
                }
                put_pair(dst + (size_t)p * NR + c, v[0], v[1]);
            }
    }
}

/* one VDPBF16PS lane: acc + hi product, then + lo product, each an fma flushed to zero when subnormal */
static float ftz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }

static float dp_pair(float acc, const float *aw, const float *bw) {
    uint32_t a, b;
    memcpy(&a, aw, 4);
    memcpy(&b, bw, 4);
    /* bf16 inputs are never subnormal here (the packers flush them), so no separate DAZ step */
    acc = ftz(fmaf(widen((uint16_t)(a >> 16)), widen((uint16_t)(b >> 16)), acc));
    return ftz(fmaf(widen((uint16_t)a), widen((uint16_t)b), acc));
}

#define RMR 4
#define RNR 8

/* C[m,n] = alpha * Ap Bp + (bias ? bias : beta * C): the AVX-512 epilogue's arithmetic */
static void ref_tile(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                     float beta, const float *bias) {
    float acc[RMR][RNR];
    memset(acc, 0, sizeof acc);
    const int kp = (K + 1) / 2;
    for (int p = 0; p < kp; p++, Ap += RMR, Bp += RNR)
        for (int r = 0; r < RMR; r++)
            for (int j = 0; j < RNR; j++) acc[r][j] = dp_pair(acc[r][j], Ap + r, Bp + j);
    for (int r = 0; r < m; r++) {
        float *c = C + (size_t)r * ldc;
        for (int j = 0; j < n; j++) {
            if (bias) c[j] = fmaf(alpha, acc[r][j], bias[j]);
            else if (beta == 0.0f) c[j] = alpha * acc[r][j];
            else c[j] = fmaf(alpha, acc[r][j], beta * c[j]);
        }
    }
}

static void ref_ukr(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                    float beta) {
    ref_tile(m, n, K, Ap, Bp, C, ldc, alpha, beta, NULL);
}

static void ref_ukr_bias(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                         const float *bias) {
    ref_tile(m, n, K, Ap, Bp, C, ldc, alpha, 0.0f, bias);
}

static void ref_pack_a(float *Ap, const float *A, int lda, int ta, int mc, int kc, int MR) {
    et_bf16_pack_a_ref(Ap, A, lda, ta, mc, kc, MR);
}

static void ref_pack_b(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int NR) {
    et_bf16_pack_b_ref(Bp, B, ldb, tb, kc, nc, NR);
}

/* KC must be the AVX-512 bf16 table's: the k blocks decide which sums are formed, so the bits */
const et_kern_isa et_kern_isa_bf16_ref = {"bf16-scalar", RMR, RNR, RMR * 28, ET_BF16_KC, 1024, ref_ukr,
                                          ref_pack_a, ref_pack_b, 0, 0, 0, 0, 0, 0, 0, 0, 0, ref_ukr_bias, 0};
