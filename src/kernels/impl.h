/* kernels/impl.h - INTERNAL to the kernels module (src/kernels/ only): the table of one SIMD path, and what the
 * module's files share (path selection, the work split, the GEMM driver, the softmax row helpers).
 *
 * The GEMM driver in gemm.c is BLIS/GotoBLAS style: it packs op(A) into MR-row micro-panels
 * (Ap[k*MR + r]) and op(B) into NR-column micro-panels (Bp[k*NR + c]), zero-padded to full
 * MR/NR, and calls the path's register-blocked micro-kernel on each MR x NR tile of C. */
#ifndef ET_KERNELS_IMPL_H
#define ET_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "threads.h"

/* C[m,n] (row stride ldc, m <= MR, n <= NR) = alpha * Ap[MR-panel, K] * Bp[K, NR-panel] + beta * C.
 * beta == 0: C is write-only. Ap / Bp are 64-byte aligned packed panels. */
typedef void (*et_ukr_fn)(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc,
                          float alpha, float beta);

typedef struct et_kern_isa {
    const char *name;
    int MR, NR;       /* micro-tile */
    int MC, KC, NC;   /* cache blocks (MC multiple of MR, NC multiple of NR) */
    et_ukr_fn ukr;
    /* pack op(A)[i0.., k0..] (mc x kc) into MR panels; NULL = the portable packer */
    void (*pack_a)(float *Ap, const float *A, int lda, int ta, int mc, int kc, int MR);
    /* pack op(B)[k0.., j0..] (kc x nc) into NR panels; NULL = the portable packer */
    void (*pack_b)(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int NR);
    float (*dot)(const float *a, const float *b, int64_t n);
    void (*axpy)(float *y, float alpha, const float *x, int64_t n);
    /* x[i] = exp(x[i] - sub), returns sum (softmax); NULL = scalar expf */
    float (*expsum)(float *x, int64_t n, float sub);
    /* (optional, NULL = scalar code in elementwise.c) out[i] = gelu(x[i]) (exact-erf form, |err| within
     * ~1e-6 relative + 1e-7 absolute of the double reference) */
    void (*gelu_fwd)(float *out, const float *x, int64_t n);
    /* dinp[i] += dout[i] * gelu'(x[i]) */
    void (*gelu_bwd)(float *dinp, const float *x, const float *dout, int64_t n);
    /* one LayerNorm row: out[C] = (x - mean) * rstd * w + b; *mean, *rstd written (two-pass float sums) */
    void (*ln_fwd_row)(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                       int C, float eps);
    /* one LayerNorm backward row (dinp, dw, db may be NULL): dinp[C] += ..., dw[C] += xhat*dy, db[C] += dy */
    void (*ln_bwd_row)(float *dinp, float *dw, float *db, const float *dy, const float *x, const float *w,
                       float mean, float rstd, int C);
    /* returns max_i x[i] (-INFINITY for n == 0) */
    float (*maxv)(const float *x, int64_t n);
    /* x[i] *= s */
    void (*scale)(float *x, float s, int64_t n);
    /* (optional, NULL = copy bias into C then ukr with beta 1) C[m,n] = alpha * Ap Bp + bias[0..n)
     * (bias broadcast over the rows; C write-only): the Linear layer's bias fused into the epilogue */
    void (*ukr_bias)(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                     const float *bias);
    /* (optional) C[m,n] = gelu(alpha * Ap Bp + (bias ? bias : beta * C)) with the path's gelu_fwd
     * arithmetic (the same bits as ukr / ukr_bias then gelu_fwd): the GELU fused into the epilogue */
    void (*ukr_gelu)(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                     float beta, const float *bias);
    /* (optional, 0 = any K) the smallest K the table computes; a GEMM with a smaller K runs on `below` (the AMX
     * tables' tiles are 32 k deep, and their zero-padded panels fit the driver's slots only from K = 32 on) */
    int kmin;
    const struct et_kern_isa *below;
} et_kern_isa;

#if defined(__x86_64__) || defined(__i386__)
extern const et_kern_isa et_kern_isa_avx512;
extern const et_kern_isa et_kern_isa_avx2;
extern const et_kern_isa et_kern_isa_avx512bf16; /* bf16_avx512bf16.c: vdpbf16ps (AVX512_BF16) */
extern const et_kern_isa et_kern_isa_amx_bf16;    /* bf16_amx.c: tdpbf16ps (AMX-BF16) */
/* bf16_avx512bf16.c's B packer (32-column pair panels, ceil(kc / 2) pairs each), shared with bf16_amx.c */
void et_bf16_avx512_pack_b(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int nr);
#endif

/* ---- the bf16 GEMM tables (bf16.c has the layout and the arithmetic) ----
 * Their panels are bf16 pairs in the driver's float-sized slots. Both tables have the same KC (the k
 * blocks decide the sums, so the bits) and the same epilogue, so they give the same bits. */
#define ET_BF16_KC 384
extern const et_kern_isa et_kern_isa_bf16_ref;    /* bf16.c: the scalar reference */
/* the reference packers, for any MR / NR (the SIMD table's edge cases) */
void et_bf16_pack_a_ref(float *Ap, const float *A, int lda, int ta, int mc, int kc, int MR);
void et_bf16_pack_b_ref(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int NR);
#if defined(__wasm_simd128__)
extern const et_kern_isa et_kern_isa_wasm128;
#endif

/* ---- dispatch.c: which path runs ---- */
const et_kern_isa *et_kern_cur(void);   /* the fp32 path in use (automatic, or forced by et_kernels_force_path) */
const et_kern_isa *et_kern_path(int i); /* path i (0 scalar, 1 avx2, 2 avx512, 3 wasm128); NULL = not on this CPU */
const et_kern_isa *et_kern_bf16(void);  /* the bf16 GEMM table in use (et_bf16_force, else the fastest here) */
/* 1 when AMX tiles can run in this process: the CPU has AMX-TILE and the feature `what` (22 AMX-BF16, 25 AMX-INT8,
 * CPUID.7.0:EDX bits), the OS enabled the tile state (XCR0 bits 17, 18) and Linux granted this process the tile
 * data (arch_prctl ARCH_REQ_XCOMP_PERM, asked once); 0 otherwise (then the AVX-512 tables run) */
int et_kern_amx_ok(int what);
const et_kern_isa *et_kern_bf16_table(int i); /* the bf16 tables of this build (any CPU); NULL past the last */

/* ---- dispatch.c: the work split (kernels.h et_kernel_split) ---- */
int et_kern_part_lo(int u, int parts, int i);   /* start of part i of u units split in `parts` ranges */
int et_kern_equal_tasks(int u, int nt);         /* the fewest threads <= nt with the makespan of nt for u equal tasks */
/* the compute grid of one column block (M x nc, `flops`) of a GEMM on nt threads: ntm x ntn chunks on *used */
void et_kern_gemm_grid(int M, int nc, double flops, int nt, int MR, int NR, int *ntm, int *ntn, int *used);
static inline size_t et_kern_round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
/* task `task` of ntasks equal ranges of [0, n) */
static inline void et_kern_range_of(int64_t n, int ntasks, int task, int64_t *i0, int64_t *i1) {
    *i0 = n * task / ntasks;
    *i1 = n * (task + 1) / ntasks;
}

/* ---- gemm.c: the blocked GEMM ---- */
/* packing workspace in floats: B block (bfl) then one A block (afl); both multiples of 16 */
void et_kern_gemm_ws_sizes(const et_kern_isa *I, int N, int K, size_t *bfl, size_t *afl);
/* the largest of et_kern_gemm_ws_sizes over the fp32 paths of every build (the same figure on any CPU and target) */
void et_kern_gemm_ws_max(int N, int K, size_t *bfl, size_t *afl);
int et_kern_blocking_known(const et_kern_isa *I); /* 1: I's blocking is a row of et_kern_gemm_ws_max's table */
/* the blocked loops; pool NULL / nt 1 = serial on the caller (also used inside attention tasks); Bp / Aws the
 * workspace (et_kern_gemm_ws_sizes), Bpre prepacked op(B) or NULL, bias [N] or NULL, gelu fused when the path can */
void et_kern_gemm_run(const et_kern_isa *I, et_pool *pool, int nt, float *Bp, float **Aws, int transA, int transB,
                      int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc, const float *Bpre, const float *bias, int gelu);

/* ---- elementwise.c: LayerNorm splits and the softmax row helpers (the path's vector code when it has it) ---- */
#define ET_LN_CHUNKS 16 /* row chunks of the LayerNorm weight-gradient sums (fixed by N: determinism) */
int et_kern_ln_split(int nt, int N, int C, int *used);
int et_kern_ln_bwd_threads(int nt, int N, int C);
float et_kern_expsum(const et_kern_isa *I, float *x, int64_t n, float sub); /* x = exp(x - sub), returns the sum */
float et_kern_rowmax(const et_kern_isa *I, const float *x, int64_t n);
void et_kern_rowscale(const et_kern_isa *I, float *x, float s, int64_t n);

#endif
