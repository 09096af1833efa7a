/* kernels/bf16.c - the bf16 GEMM's scalar reference (every build, x86 or not, WebAssembly too).
 *
 * What the bf16 GEMM computes (kernels.h et_sgemm_bf16), written out one element at a time: op(A) and op(B)
 * are rounded to bfloat16 as they are packed (et_f32_to_bf16_daz: round to nearest even, subnormals to zero, as
 * VCVTNE2PS2BF16), k is walked in pairs (k, k+1) from the start of each of the driver's k blocks (an odd
 * block's last pair has a zero second half), and each pair is added to a float accumulator as VDPBF16PS does:
 * acc = fma(a[k+1], b[k+1], acc), then acc = fma(a[k], b[k], acc), with subnormal results flushed to zero.
 * A bf16 x bf16 product has at most 16 significant bits, so each fma is one rounding of an exact sum. The
 * epilogue is the fp32 AVX-512 path's (alpha * acc, fma(alpha, acc, beta * C), fma(alpha, acc, bias)).
 * bf16_avx512bf16.c must give the same bits (tests/test_bf16.c checks it).
 *
 * Packed layout (both tables): the driver in gemm.c hands out panel slots sized for float panels
 * (MR x kc and kc x NR floats); a bf16 panel fills the first half of its slot. A panel is ceil(kc / 2) pairs;
 * pair p of row r of an A panel is the 32-bit word Ap[p * MR + r] = bf16(op(A)[r][2p]) | bf16(op(A)[r][2p+1])
 * << 16, and of column c of a B panel the word Bp[p * NR + c]; rows and columns past the edge are zero. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "impl.h"

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

/* One packer for both operands (see the top; op(A) row panels and op(B) column panels are the same layout with
 * rows and columns swapped): `n` lines x k [0,kc) -> P-line pair panels, pair p of line l at dst[p * P + l].
 * kfirst: line l, k value k is X[l * ld + k]; else X[k * ld + l]. */
static void pack_pairs(float *dst0, const float *X, int ld, int kfirst, int n, int kc, int P) {
    const int kp = (kc + 1) / 2;
    for (int l0 = 0; l0 < n; l0 += P) {
        int h = n - l0 < P ? n - l0 : P;
        float *dst = dst0 + (size_t)l0 * kc;
        for (int p = 0; p < kp; p++)
            for (int l = 0; l < P; l++) {
                float v[2] = {0.0f, 0.0f};
                for (int e = 0; e < 2; e++) {
                    int k = 2 * p + e;
                    if (l < h && k < kc) v[e] = kfirst ? X[(size_t)(l0 + l) * ld + k] : X[(size_t)k * ld + l0 + l];
                }
                put_pair(dst + (size_t)p * P + l, v[0], v[1]);
            }
    }
}

/* op(A) rows [0,mc) x k [0,kc) -> MR-row pair panels; op(B) k [0,kc) x cols [0,nc) -> NR-column pair panels */
void et_bf16_pack_a_ref(float *Ap, const float *A, int lda, int ta, int mc, int kc, int MR) {
    pack_pairs(Ap, A, lda, !ta, mc, kc, MR);
}

void et_bf16_pack_b_ref(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int NR) {
    pack_pairs(Bp, B, ldb, tb, nc, kc, NR);
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

/* KC must be the AVX-512 bf16 table's: the k blocks decide which sums are formed, so the bits */
const et_kern_isa et_kern_isa_bf16_ref = {"bf16-scalar", RMR, RNR, RMR * 28, ET_BF16_KC, 1024, ref_ukr,
                                          et_bf16_pack_a_ref, et_bf16_pack_b_ref, 0, 0, 0, 0, 0, 0, 0, 0, 0, ref_ukr_bias, 0};
