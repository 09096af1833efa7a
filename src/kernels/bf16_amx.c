/* kernels/bf16_amx.c - the bf16 GEMM table with AMX (TDPBF16PS: C[16 x 16] += A[16 x 32] B[32 x 16], bf16
 * operands, fp32 sums): a 32 x 32 micro-tile in four C tiles (tmm0-3), two A tiles (tmm4-5) and two B tiles
 * (tmm6-7), 32 k values per step. dispatch.c selects it at run time when the CPU has AMX-BF16 and Linux grants
 * the process the tile state (et_kern_amx_ok); GEMMs with K < 32 run on VDPBF16PS (kmin / below).
 *
 * Panels (in the driver's float-sized slots, as bf16.c describes for the other bf16 tables): a k block of kc
 * values is kp = ceil(kc / 2) pairs, zero-padded to kq = 16 * ceil(kp / 16) (whole tiles; kq <= kc for
 * kc >= 31, so a panel fits its slot: K >= 32 guarantees every k block of the driver is at least that deep).
 *  - B: bf16_avx512bf16.c's 32-column pair panels (word p * 32 + c = pair p of column c), which are exactly
 *    TDPBF16PS's B layout (row p of a B tile = pair p of 16 columns, 64 bytes; stride 128 bytes), padded here
 *    with zero pairs kp..kq;
 *  - A: for each step of 16 pairs, 32 rows of 16 pair words (64 bytes each: one A tile row), so each A tile is
 *    1 KiB contiguous.
 * The epilogue is the other AVX-512 tables' (avx512_common.h et_avx512_store_tile) on the tiles' sums. What
 * differs from VDPBF16PS is how the tile unit sums a step's 32 products (kernels.h, "AMX"). */
#if defined(__x86_64__) || defined(__i386__)
#include "amx.h" /* before the target pragma: its one function carries its own target */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma,amx-tile,amx-bf16")
#elif defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma,amx-tile,amx-bf16"))), apply_to = function)
#endif
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "impl.h"
#define ET_AVX512_BF16_HELPERS 1
#include "avx512_common.h"

#define MR 32
#define NR 32
#define KSTEP 16 /* pairs per tile step (32 k values) */
#ifndef ET_AMX_KC
#define ET_AMX_KC 384 /* k block (its own: AMX's sums are not the other tables' bits anyway) */
#endif
#ifndef ET_AMX_MCP
#define ET_AMX_MCP 4 /* A panels (32 rows each) per L2 block */
#endif
#ifndef ET_AMX_NC
#define ET_AMX_NC 1024
#endif

/* the pairs of a k block, padded to whole tile steps */
static inline int pairs_padded(int kc) { return ((kc + 1) / 2 + KSTEP - 1) / KSTEP * KSTEP; }

/* C[m, n] (m, n <= 32) = alpha * Ap Bp + (bias ? bias : beta * C) over kc k values */
static void tile32(int m, int n, int kc, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                   float beta, const float *bias) {
    const int steps = pairs_padded(kc) / KSTEP;
    float acc[MR * NR] __attribute__((aligned(64)));
    et_amx_config_tiles(); /* per micro-kernel call: cheap next to its 4 * kq / 16 tile products (amx.h) */
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int s = 0; s < steps; s++) {
        const float *a = Ap + (size_t)s * MR * KSTEP, *b = Bp + (size_t)s * KSTEP * NR;
        _tile_loadd(4, a, 64);
        _tile_loadd(6, b, 4 * NR);
        _tile_loadd(7, b + 16, 4 * NR);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a + 16 * KSTEP, 64);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, acc, 4 * NR);
    _tile_stored(1, acc + 16, 4 * NR);
    _tile_stored(2, acc + 16 * NR, 4 * NR);
    _tile_stored(3, acc + 16 * NR + 16, 4 * NR);
    __m512 c0[MR], c1[MR];
    for (int r = 0; r < m; r++) {
        c0[r] = _mm512_load_ps(acc + r * NR);
        c1[r] = _mm512_load_ps(acc + r * NR + 16);
    }
    et_avx512_store_tile(m, n, c0, c1, C, ldc, alpha, beta, bias, NULL);
}

static void ukr(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                float beta) {
    tile32(m, n, K, Ap, Bp, C, ldc, alpha, beta, NULL);
}

static void ukr_bias(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                     const float *bias) {
    tile32(m, n, K, Ap, Bp, C, ldc, alpha, 0.0f, bias);
}

/* op(A) rows [0,mc) x k [0,kc) -> 32-row panels: step s, row r, pair q at Ap[(s * 32 + r) * 16 + q] */
static void pack_a(float *Ap, const float *A, int lda, int ta, int mc, int kc, int mr) {
    (void)mr;
    const int kq = pairs_padded(kc), steps = kq / KSTEP;
    for (int i0 = 0; i0 < mc; i0 += MR) {
        int h = mc - i0 < MR ? mc - i0 : MR;
        float *dst = Ap + (size_t)i0 * kc;
        if (!ta) { /* row r of op(A) is row i0 + r of A, k contiguous: 32 k -> 16 pair words in order */
            for (int r = 0; r < MR; r++) {
                const float *s = A + (size_t)(i0 + r) * lda;
                for (int st = 0; st < steps; st++) {
                    int k = 32 * st, rem = r < h ? kc - k : 0;
                    __m512 lo = _mm512_maskz_loadu_ps(et_lanes16(rem), s + k);
                    __m512 hi = _mm512_maskz_loadu_ps(et_lanes16(rem - 16), s + k + 16);
                    _mm512_store_ps(dst + ((size_t)st * MR + r) * KSTEP, (__m512)_mm512_cvtne2ps_pbh(hi, lo));
                }
            }
        } else { /* op(A)[r][k] = A[k * lda + i0 + r]: pairs of A rows give 16 rows' pair words; transpose */
            for (int st = 0; st < steps; st++)
                for (int g = 0; g < 2; g++) {
                    const int rows = h - 16 * g;
                    const __mmask16 m = et_lanes16(rows);
                    __m512 v[16];
                    for (int q = 0; q < KSTEP; q++) {
                        int k = 32 * st + 2 * q;
                        const float *s = A + (size_t)k * lda + i0 + 16 * g;
                        __m512 lo = k < kc ? _mm512_maskz_loadu_ps(m, s) : _mm512_setzero_ps();
                        __m512 hi = k + 1 < kc ? _mm512_maskz_loadu_ps(m, s + lda) : _mm512_setzero_ps();
                        v[q] = et_pairs16(lo, hi); /* lane r = pair q of row 16 g + r */
                    }
                    et_tr16(v); /* v[r] = pairs 0..15 of row 16 g + r */
                    for (int r = 0; r < 16; r++) _mm512_store_ps(dst + ((size_t)st * MR + 16 * g + r) * KSTEP, v[r]);
                }
        }
    }
}

/* op(B) k [0,kc) x cols [0,nc) -> bf16_avx512bf16.c's 32-column pair panels, zero pairs up to the tile steps */
static void pack_b(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int nr) {
    et_bf16_avx512_pack_b(Bp, B, ldb, tb, kc, nc, nr);
    const int kp = (kc + 1) / 2, kq = pairs_padded(kc);
    for (int j0 = 0; j0 < nc; j0 += NR)
        memset(Bp + (size_t)j0 * kc + (size_t)kp * NR, 0, sizeof(float) * (size_t)(kq - kp) * NR);
}

/* MC: 4 panels of A (48 KiB at KC = 384) stay in L2 beside the B block */
const et_kern_isa et_kern_isa_amx_bf16 = {"amx-bf16", MR, NR, MR * ET_AMX_MCP, ET_AMX_KC, ET_AMX_NC, ukr, pack_a, pack_b,
                                          0, 0, 0, 0, 0, 0, 0, 0, 0, ukr_bias, 0, 32, &et_kern_isa_avx512bf16};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
