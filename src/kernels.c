/* kernels.c - portable reference implementations of kernels.h.
 * (The SIMD GEMM and vector paths replace the hot parts; these stay as the scalar fallback.) */
#include "kernels.h"
#include "kernels_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- SIMD path selection */
#ifndef ET_X86
#if defined(__x86_64__) || defined(__i386__)
#define ET_X86 1
#else
#define ET_X86 0
#endif
#endif
#if ET_X86 && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define ET_HAVE_X86_PATHS 1
#else
#define ET_HAVE_X86_PATHS 0
#endif

static void scalar_ukr(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc,
                       float alpha, float beta);
static float scalar_dot(const float *a, const float *b, int64_t n);
static void scalar_axpy(float *y, float alpha, const float *x, int64_t n);
static const et_kern_isa et_kern_isa_scalar = {"scalar", 4, 8, 4 * 32, 256, 1024, scalar_ukr, 0, 0,
                                               scalar_dot, scalar_axpy, 0};

/* The one piece of process-wide mutable state: a test hook forcing a path (-1 = automatic).
 * Set only through et_kernels_force_path, before running kernels. */
static int et_forced_path = -1;

static const et_kern_isa *path_table(int i) {
    switch (i) {
    case 0: return &et_kern_isa_scalar;
#if ET_HAVE_X86_PATHS
    case 1: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &et_kern_isa_avx2 : 0;
    case 2: return __builtin_cpu_supports("avx512f") ? &et_kern_isa_avx512 : 0;
#endif
#if defined(__wasm_simd128__)
    case 3: return &et_kern_isa_wasm128;
#endif
    default: return 0;
    }
}

static const et_kern_isa *isa(void) {
    if (et_forced_path >= 0) return path_table(et_forced_path);
    for (int i = 3; i > 0; i--) {
        const et_kern_isa *p = path_table(i);
        if (p) return p;
    }
    return &et_kern_isa_scalar;
}

int et_kernels_force_path(const char *name) {
    if (!name || !strcmp(name, "auto")) { et_forced_path = -1; return 0; }
    for (int i = 0; i < 4; i++) {
        const et_kern_isa *p = path_table(i);
        if (p && !strcmp(p->name, name)) { et_forced_path = i; return 0; }
    }
    return -1;
}

const char *et_simd_name(void) { return isa()->name; }

/* ---------------------------------------------------------------- scalar path */
#define SMR 4
#define SNR 8
static void scalar_ukr(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc,
                       float alpha, float beta) {
    float acc[SMR][SNR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < K; k++, Ap += SMR, Bp += SNR)
        for (int r = 0; r < SMR; r++)
            for (int j = 0; j < SNR; j++) acc[r][j] += Ap[r] * Bp[j];
    for (int r = 0; r < m; r++) {
        float *c = C + (size_t)r * ldc;
        if (beta == 0.0f) for (int j = 0; j < n; j++) c[j] = alpha * acc[r][j];
        else for (int j = 0; j < n; j++) c[j] = alpha * acc[r][j] + beta * c[j];
    }
}

static float scalar_dot(const float *a, const float *b, int64_t n) {
    float s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) s[l] += a[i + l] * b[i + l];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static void scalar_axpy(float *y, float alpha, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

float et_dot(const float *a, const float *b, int64_t n) { return isa()->dot(a, b, n); }
void et_axpy(float *y, float alpha, const float *x, int64_t n) { isa()->axpy(y, alpha, x, n); }

/* ---------------------------------------------------------------- GEMM */
/* Portable packers. op(A) rows [0,mc) x k [0,kc) -> MR-row panels Ap[p][k][r] (zero padded). */
static void pack_a(float *Ap, const float *A, int lda, int ta, int mc, int kc, int MR) {
    for (int i0 = 0; i0 < mc; i0 += MR) {
        int h = mc - i0 < MR ? mc - i0 : MR;
        float *dst = Ap + (size_t)i0 * kc;
        if (ta) { /* op(A)[i][k] = A[k*lda + i]: contiguous in i */
            for (int k = 0; k < kc; k++) {
                const float *s = A + (size_t)k * lda + i0;
                float *d = dst + (size_t)k * MR;
                int r = 0;
                for (; r < h; r++) d[r] = s[r];
                for (; r < MR; r++) d[r] = 0.0f;
            }
        } else {
            for (int r = 0; r < h; r++) {
                const float *s = A + (size_t)(i0 + r) * lda;
                for (int k = 0; k < kc; k++) dst[(size_t)k * MR + r] = s[k];
            }
            for (int r = h; r < MR; r++)
                for (int k = 0; k < kc; k++) dst[(size_t)k * MR + r] = 0.0f;
        }
    }
}

/* op(B) k [0,kc) x cols [0,nc) -> NR-column panels Bp[p][k][c] (zero padded). */
static void pack_b_portable(float *Bp, const float *B, int ldb, int tb, int kc, int nc, int NR) {
    for (int j0 = 0; j0 < nc; j0 += NR) {
        int w = nc - j0 < NR ? nc - j0 : NR;
        float *dst = Bp + (size_t)j0 * kc;
        if (!tb) {
            for (int k = 0; k < kc; k++) {
                const float *s = B + (size_t)k * ldb + j0;
                float *d = dst + (size_t)k * NR;
                int c = 0;
                for (; c < w; c++) d[c] = s[c];
                for (; c < NR; c++) d[c] = 0.0f;
            }
        } else {
            for (int c = 0; c < w; c++) {
                const float *s = B + (size_t)(j0 + c) * ldb;
                for (int k = 0; k < kc; k++) dst[(size_t)k * NR + c] = s[k];
            }
            for (int c = w; c < NR; c++)
                for (int k = 0; k < kc; k++) dst[(size_t)k * NR + c] = 0.0f;
        }
    }
}

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

#ifndef ET_SHORT_M_TILES
#define ET_SHORT_M_TILES 4 /* row tiles (MR each) at or below which gemm_run splits columns only */
#endif

/* GotoBLAS loop nest: for each NC block of columns and KC block of k, op(B) is packed ONCE into a
 * shared buffer (in parallel over NR panels), then tasks take a grid of (row chunk x column chunk)
 * of C; each packs its rows of op(A) into its own MC x KC buffer and runs the micro-kernel with the
 * NR-wide B micro-panel in L1 and the A block in L2. et_pool_run is the barrier between phases. */
typedef struct {
    const et_kern_isa *I;
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    float *Bp;       /* shared packed op(B) block, KC x round_up(NC, NR) (or a block of a prepacked B) */
    const float *Bpre; /* prepacked op(B) (et_linear_pack data), NULL = pack per block */
    const float *bias; /* [N] added in the first k block's epilogue (beta then ignored), NULL = none */
    float **Aws;     /* [threads] MC x KC packed op(A) buffers */
    int jc, nc, pc, kc;
    float b;         /* beta for this k block */
    int pb_per_task; /* B panels per packing task */
    int mchunk, nchunk, ntn; /* compute grid: ntm row chunks x ntn column chunks (gemm_grid): chunk i of the um
                                row tiles (MR) is tiles [um*i/ntm, um*(i+1)/ntm), likewise for the un column
                                panels (NR) of the jc block; mchunk, nchunk unused */
    int gelu;        /* GELU applied in the last k block's epilogue (I->ukr_gelu) */
    int allk;        /* prepacked B: each compute task runs all k blocks (Bp = the jc block's start) */
    int ntm, um, un, used; /* grid rows, row tiles, column panels of the block, threads used */
} gemm_job;

/* ---------------------------------------------------------------- work split (kernels.h et_kernel_split)
 * Every kernel splits its work by the shapes and the pool size so that the largest per-thread share is
 * within ET_SPLIT_TOL of the mean, and runs on fewer threads (et_pool_run_n) where more would not finish
 * sooner or would get too little work each. Which thread runs which task never changes any result. */
#define ET_SPLIT_TOL 1.10
#ifndef ET_GEMM_MIN_FLOP_THREAD
#define ET_GEMM_MIN_FLOP_THREAD 1e6 /* below ~1 MFLOP (~10-30 us) per thread, waking one more costs what it saves */
#endif

/* start of part i of u units split in `parts` ranges */
static int part_lo(int u, int parts, int i) { return (int)((int64_t)u * i / parts); }

/* elements in part i of `total` elements in `unit`-element units (the last may be short) split in `parts` */
static int part_len(int total, int unit, int parts, int i) {
    int u = (total + unit - 1) / unit, lo = part_lo(u, parts, i) * unit, hi = part_lo(u, parts, i + 1) * unit;
    if (hi > total) hi = total;
    return hi > lo ? hi - lo : 0;
}

/* (largest thread share) / (mean share) of an a x b grid of an M x nc block whose tasks are handed out in
 * turn to t equally fast threads (t <= 256) */
static double grid_ratio(int M, int nc, int MR, int NR, int a, int b, int t) {
    double sh[256] = {0}, mx = 0;
    for (int i = 0; i < a * b; i++) sh[i % t] += (double)part_len(M, MR, a, i / b) * part_len(nc, NR, b, i % b);
    for (int j = 0; j < t; j++) if (sh[j] > mx) mx = sh[j];
    return mx * t / ((double)M * nc);
}

/* the most threads <= nt that u equal tasks keep busy: the fewest threads with the makespan of nt */
static int equal_tasks_threads(int u, int nt) {
    if (u <= 1 || nt <= 1) return 1;
    if (nt > u) nt = u;
    int m = (u + nt - 1) / nt;
    return (u + m - 1) / m;
}

/* the compute grid of one column block of a GEMM: ntm x ntn chunks, k = ntm*ntn / used tasks per thread
 * (3 preferred: claims balance a busy machine), the largest used <= nt (at most one thread per
 * ET_GEMM_MIN_FLOP_THREAD) whose split is within ET_SPLIT_TOL; rows are split first (each task packs only
 * its A rows), columns only when M is a few row tiles (each B panel then streams once) */
static void gemm_grid(int M, int nc, double flops, int nt, int MR, int NR, int *ntm, int *ntn, int *used) {
    *ntm = *ntn = *used = 1;
    int um = (M + MR - 1) / MR, un = (nc + NR - 1) / NR;
    double cap = flops / ET_GEMM_MIN_FLOP_THREAD;
    int tmax = cap < nt ? (int)cap : nt;
    int short_m = um <= ET_SHORT_M_TILES;
    for (int t = tmax; t >= 2; t--) {
        double br = 1e30;
        int ba = 0, bb = 0;
        for (int k = 3; k >= 1; k--) {
            int n = k * t, amax = n < um ? n : um;
            for (int i = 0; i < amax; i++) {
                int a = short_m ? i + 1 : amax - i; /* the order of preference on ties */
                if (n % a || n / a > un) continue;
                double r = grid_ratio(M, nc, MR, NR, a, n / a, t);
                if (r < br - 1e-3) { br = r; ba = a; bb = n / a; }
            }
            if (br <= ET_SPLIT_TOL) break;
        }
        if (br <= ET_SPLIT_TOL) { *ntm = ba; *ntn = bb; *used = t; return; }
    }
}


static void gemm_packb_task(void *vctx, int task, int thread) {
    (void)thread;
    gemm_job *g = vctx;
    const et_kern_isa *I = g->I;
    int j0 = task * g->pb_per_task * I->NR;
    if (j0 >= g->nc) return;
    int w = g->nc - j0 < g->pb_per_task * I->NR ? g->nc - j0 : g->pb_per_task * I->NR;
    int j = g->jc + j0;
    const float *Bs = g->tb ? g->B + (size_t)j * g->ldb + g->pc : g->B + (size_t)g->pc * g->ldb + j;
    float *dst = g->Bp + (size_t)j0 * g->kc;
    if (I->pack_b) I->pack_b(dst, Bs, g->ldb, g->tb, g->kc, w, I->NR);
    else pack_b_portable(dst, Bs, g->ldb, g->tb, g->kc, w, I->NR);
}

/* one (rows [r0,r1) x columns [c0,c1) of the jc block) region of C for the k block [pc, pc+kc),
 * the B panels of columns c0.. at Bp, beta b */
static void compute_region(const gemm_job *g, int thread, int r0, int r1, int c0, int c1, int pc, int kc,
                           const float *Bp, float b) {
    const et_kern_isa *I = g->I;
    const int MR = I->MR, NR = I->NR, MC = I->MC;
    float *Ap = g->Aws[thread];
    for (int ic = r0; ic < r1; ic += MC) {
        int mc = r1 - ic < MC ? r1 - ic : MC;
        const float *As = g->ta ? g->A + (size_t)pc * g->lda + ic : g->A + (size_t)ic * g->lda + pc;
        if (I->pack_a) I->pack_a(Ap, As, g->lda, g->ta, mc, kc, MR);
        else pack_a(Ap, As, g->lda, g->ta, mc, kc, MR);
        for (int jr = c0; jr < c1; jr += NR) {
            int n = c1 - jr < NR ? c1 - jr : NR;
            const float *bp = Bp + (size_t)(jr - c0) * kc;
            float *Cc = g->C + (size_t)ic * g->ldc + g->jc + jr;
            const float *bias = g->bias && pc == 0 ? g->bias + g->jc + jr : NULL;
            const int act = g->gelu && pc + kc == g->K;
            for (int ir = 0; ir < mc; ir += MR) {
                int m = mc - ir < MR ? mc - ir : MR;
                float *ct = Cc + (size_t)ir * g->ldc;
                if (act) {
                    I->ukr_gelu(m, n, kc, Ap + (size_t)ir * kc, bp, ct, g->ldc, g->alpha, b, bias);
                } else if (!bias) {
                    I->ukr(m, n, kc, Ap + (size_t)ir * kc, bp, ct, g->ldc, g->alpha, b);
                } else if (I->ukr_bias) {
                    I->ukr_bias(m, n, kc, Ap + (size_t)ir * kc, bp, ct, g->ldc, g->alpha, bias);
                } else { /* C = bias, then C += alpha Ap Bp */
                    for (int r = 0; r < m; r++) memcpy(ct + (size_t)r * g->ldc, bias, sizeof(float) * (size_t)n);
                    I->ukr(m, n, kc, Ap + (size_t)ir * kc, bp, ct, g->ldc, g->alpha, 1.0f);
                }
            }
        }
    }
}

static void gemm_compute_task(void *vctx, int task, int thread) {
    gemm_job *g = vctx;
    int tm = task / g->ntn, tn = task % g->ntn;
    const int MR = g->I->MR, NR = g->I->NR;
    int r0 = part_lo(g->um, g->ntm, tm) * MR, r1 = part_lo(g->um, g->ntm, tm + 1) * MR;
    int c0 = part_lo(g->un, g->ntn, tn) * NR, c1 = part_lo(g->un, g->ntn, tn + 1) * NR;
    if (r1 > g->M) r1 = g->M;
    if (c1 > g->nc) c1 = g->nc;
    if (r0 >= r1 || c0 >= c1) return;
    if (!g->allk) {
        compute_region(g, thread, r0, r1, c0, c1, g->pc, g->kc, g->Bp + (size_t)c0 * g->kc, g->b);
        return;
    }
    /* prepacked B: this task walks every k block of its region itself (no barrier between k blocks;
     * each C element still sees the k blocks in the same order, so the same bits) */
    const int KC = g->I->KC, nkb = (g->K + KC - 1) / KC;
    const size_t ncp = round_up((size_t)g->nc, (size_t)g->I->NR);
    for (int kb = 0, pc = 0; kb < nkb; kb++) {
        int kc = (g->K - pc) / (nkb - kb);
        compute_region(g, thread, r0, r1, c0, c1, pc, kc, g->Bp + (size_t)pc * ncp + (size_t)c0 * kc,
                       pc == 0 ? g->beta : 1.0f);
        pc += kc;
    }
}

/* the K == 0 / alpha == 0 cases: C = beta * C (beta == 0: C is write-only) */
static void gemm_scale(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f) for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* packing workspace in floats: B block (bfl) then one A block (afl); both multiples of 16 */
static void gemm_ws_sizes(const et_kern_isa *I, int N, int K, size_t *bfl, size_t *afl) {
    size_t kcmax = (size_t)(K < I->KC ? K : I->KC);
    *bfl = round_up(kcmax * round_up((size_t)(N < I->NC ? N : I->NC), (size_t)I->NR), 16);
    *afl = round_up((size_t)I->MC * kcmax, 16) + 16;
}

static void gemm_run(const et_kern_isa *I, et_pool *pool, int nt, float *Bp, float **Aws, int transA,
                     int transB, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc, const float *Bpre,
                     const float *bias, int gelu);

/* Out of memory for the packing workspace: gemm_run's k blocks, packers and micro-kernel epilogues
 * (compute_region), one NR-column panel x MR-row tile at a time, with the two panels on the stack.
 * Each element of C sees the same operations in the same order as in gemm_run, so the result has
 * the same bits; only slower (A is repacked for every column panel). A prepacked B is not needed. */
static void gemm_stack(const et_kern_isa *I, int transA, int transB, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                       const float *bias, int gelu) {
    const int MR = I->MR, NR = I->NR, KC = I->KC;
    const size_t afl = round_up((size_t)MR * KC, 16), bfl = round_up((size_t)KC * NR, 16);
    float buf[afl + bfl + 16]; /* at most 384 x (14 + 32) floats (AVX-512) */
    float *Ap = (float *)(((uintptr_t)buf + 63) & ~(uintptr_t)63), *Bp = Ap + afl;
    float *Aws[1] = {Ap};
    gemm_job g = {I, transA, transB, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, Bp, NULL, bias, Aws,
                  0, 0, 0, 0, beta, 0, M, 0, 1};
    g.gelu = gelu && I->ukr_gelu;
    const int nkb = (K + KC - 1) / KC;
    for (int jc = 0; jc < N; jc += NR) {
        int w = N - jc < NR ? N - jc : NR;
        g.jc = jc;
        g.nc = w;
        for (int kb = 0, pc = 0; kb < nkb; kb++) {
            int kc = (K - pc) / (nkb - kb);
            const float *Bs = transB ? B + (size_t)jc * ldb + pc : B + (size_t)pc * ldb + jc;
            if (I->pack_b) I->pack_b(Bp, Bs, ldb, transB, kc, w, NR);
            else pack_b_portable(Bp, Bs, ldb, transB, kc, w, NR);
            for (int r0 = 0; r0 < M; r0 += MR)
                compute_region(&g, 0, r0, r0 + MR < M ? r0 + MR : M, 0, w, pc, kc, Bp, pc == 0 ? beta : 1.0f);
            pc += kc;
        }
    }
}

static const et_kern_isa *isa_bf16(void);

void et_gemm_pool_bytes(size_t *first, size_t *each) {
    size_t f = 0, e = 0;
    for (int i = 0; i < 6; i++) { /* the fp32 paths and the bf16 tables (et_sgemm_bf16) */
        const et_kern_isa *I = i < 4 ? path_table(i) : i == 4 ? &et_kern_isa_bf16_ref : isa_bf16();
        size_t bfl, afl;
        if (!I) continue;
        gemm_ws_sizes(I, I->NC, I->KC, &bfl, &afl); /* the largest blocks */
        if (bfl + afl > f) f = bfl + afl;
        if (afl > e) e = afl;
    }
    *first = f * sizeof(float);
    *each = e * sizeof(float);
}

/* et_sgemm, plus: Bpre = op(B) already packed (et_linear_pack layout for this path), bias [N] added
 * to every row (then C is write-only: beta must be 0) */
static void sgemm_ex(const et_kern_isa *I, et_pool *pool, int transA, int transB, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                     const float *Bpre, const float *bias, int gelu) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        gemm_scale(M, N, beta, C, ldc);
        if (bias) for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = bias[j];
        return;
    }
    int nt = et_pool_size(pool);
    if (nt > 256) nt = 256;
    if (nt > 1 && 2.0 * M * N * K < 2e6) nt = 1; /* too small to be worth waking threads */
    et_pool *run_pool = nt == 1 ? NULL : pool; /* scratch still comes from the pool when given */
    size_t bfl, afl;
    gemm_ws_sizes(I, N, K, &bfl, &afl);
    float *Aws[256];
    void *own = NULL;
    float *Bp;
    if (pool) {
        /* workers are idle here, so the caller may size every thread's scratch */
        Bp = et_pool_scratch(pool, 0, sizeof(float) * (bfl + afl));
        Aws[0] = Bp ? Bp + bfl : NULL;
        for (int t = 1; t < nt && Bp; t++)
            if (!(Aws[t] = et_pool_scratch(pool, t, sizeof(float) * afl))) Bp = NULL;
    } else {
        Bp = own = aligned_alloc(64, round_up(sizeof(float) * (bfl + afl), 64));
        Aws[0] = Bp ? Bp + bfl : NULL;
    }
    if (!Bp) /* out of memory: the same arithmetic one tile at a time (slow, the same bits) */
        gemm_stack(I, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, gelu);
    else
        gemm_run(I, run_pool, nt, Bp, Aws, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, Bpre, bias,
                 gelu);
    free(own);
}

void et_sgemm(et_pool *pool, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_ex(isa(), pool, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL, 0);
}

/* the blocked loops; pool NULL / nt 1 = serial on the caller (also used inside attention tasks) */
static void gemm_run(const et_kern_isa *I, et_pool *pool, int nt, float *Bp, float **Aws, int transA,
                     int transB, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc, const float *Bpre,
                     const float *bias, int gelu) {
    const int MR = I->MR, NR = I->NR;
    gemm_job g = {I, transA, transB, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, Bp, Bpre, bias, Aws,
                  0, 0, 0, 0, beta, 0, M, 0, 1};
    size_t pre_off = 0; /* floats into Bpre of the current (jc, k) block */
    g.gelu = gelu && I->ukr_gelu;
    g.um = (M + MR - 1) / MR;
    for (int jc = 0; jc < N; jc += I->NC) {
        g.jc = jc;
        g.nc = N - jc < I->NC ? N - jc : I->NC;
        int units_n = (g.nc + NR - 1) / NR;
        g.un = units_n;
        /* the compute grid of this block: balanced over the threads it uses (gemm_grid) */
        gemm_grid(M, g.nc, 2.0 * M * g.nc * K, nt, MR, NR, &g.ntm, &g.ntn, &g.used);
        const int ntm = g.ntm;
        int pbt = g.used == 1 ? 1 : (units_n < 2 * g.used ? units_n : 2 * g.used);
        g.pb_per_task = (units_n + pbt - 1) / pbt;
        pbt = (units_n + g.pb_per_task - 1) / g.pb_per_task;
        /* balanced k blocks: K = 384 with KC = 256 becomes 192 + 192, not 256 + 128 */
        if (Bpre) { /* one pass over the grid; the tasks walk the k blocks */
            g.allk = 1;
            g.Bp = (float *)Bpre + pre_off;
            pre_off += (size_t)K * round_up((size_t)g.nc, (size_t)NR);
            et_pool_run_n(pool, gemm_compute_task, &g, ntm * g.ntn, g.used);
            continue;
        }
        int nkb = (K + I->KC - 1) / I->KC;
        for (int kb = 0, pc = 0; kb < nkb; kb++) {
            int kc = (K - pc) / (nkb - kb);
            g.pc = pc;
            g.kc = kc;
            g.b = pc == 0 ? beta : 1.0f;
            et_pool_run_n(pool, gemm_packb_task, &g, pbt, g.used);
            et_pool_run_n(pool, gemm_compute_task, &g, ntm * g.ntn, g.used);
            pc += kc;
        }
    }
}

void et_linear_forward(et_pool *pool, float *out, const float *inp, const float *W,
                       const float *bias, int N, int IC, int OC) {
    sgemm_ex(isa(), pool, 0, 1, N, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC, NULL, bias, 0);
}

/* Prepacked Linear weights: a 16-float header {magic, path, IC, OC} then op(B) = W^T packed block
 * after block in gemm_run's order (jc blocks of NC columns, then balanced k blocks), each block
 * kc x round_up(nc, NR) as the path's pack_b writes it. */
#define ET_PACK_MAGIC 0x4B435045u /* "EPCK" */
#define ET_PACK_HDR 16

static int path_index(const et_kern_isa *I) {
    for (int i = 0; i < 4; i++) if (path_table(i) == I) return i;
    return -1;
}

static size_t packed_body_floats(const et_kern_isa *I, int IC, int OC) {
    size_t n = 0;
    for (int jc = 0; jc < OC; jc += I->NC) {
        int nc = OC - jc < I->NC ? OC - jc : I->NC;
        n += (size_t)IC * round_up((size_t)nc, (size_t)I->NR); /* the k blocks sum to IC */
    }
    return n;
}

size_t et_linear_packed_floats(int IC, int OC) {
    if (IC <= 0 || OC <= 0) return 0;
    return ET_PACK_HDR + packed_body_floats(isa(), IC, OC);
}

void et_linear_pack(et_pool *pool, float *Wp, const float *W, int IC, int OC) {
    if (IC <= 0 || OC <= 0) return;
    const et_kern_isa *I = isa();
    uint32_t hdr[ET_PACK_HDR] = {ET_PACK_MAGIC, (uint32_t)path_index(I), (uint32_t)IC, (uint32_t)OC};
    memcpy(Wp, hdr, sizeof hdr);
    const int NR = I->NR;
    gemm_job g = {0};
    g.I = I; g.tb = 1; g.B = W; g.ldb = IC;
    size_t off = ET_PACK_HDR;
    int nt = et_pool_size(pool);
    for (int jc = 0; jc < OC; jc += I->NC) {
        g.jc = jc;
        g.nc = OC - jc < I->NC ? OC - jc : I->NC;
        int units_n = (g.nc + NR - 1) / NR;
        int pbt = nt == 1 ? 1 : (units_n < 2 * nt ? units_n : 2 * nt);
        g.pb_per_task = (units_n + pbt - 1) / pbt;
        pbt = (units_n + g.pb_per_task - 1) / g.pb_per_task;
        int nkb = (IC + I->KC - 1) / I->KC;
        for (int kb = 0, pc = 0; kb < nkb; kb++) {
            int kc = (IC - pc) / (nkb - kb);
            g.pc = pc; g.kc = kc;
            g.Bp = Wp + off;
            et_pool_run(pool, gemm_packb_task, &g, pbt);
            off += (size_t)kc * round_up((size_t)g.nc, (size_t)NR);
            pc += kc;
        }
    }
}

void et_linear_forward_packed(et_pool *pool, float *out, const float *inp, const float *W, const float *Wp,
                              const float *bias, int N, int IC, int OC) {
    uint32_t hdr[4] = {0};
    if (Wp) memcpy(hdr, Wp, sizeof hdr);
    int ok = Wp && hdr[0] == ET_PACK_MAGIC && hdr[1] == (uint32_t)path_index(isa()) && hdr[2] == (uint32_t)IC &&
             hdr[3] == (uint32_t)OC;
    sgemm_ex(isa(), pool, 0, 1, N, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC, ok ? Wp + ET_PACK_HDR : NULL, bias, 0);
}

void et_linear_forward_gelu(et_pool *pool, float *out, const float *inp, const float *W, const float *Wp,
                            const float *bias, int N, int IC, int OC) {
    const et_kern_isa *I = isa();
    uint32_t hdr[4] = {0};
    if (Wp) memcpy(hdr, Wp, sizeof hdr);
    int ok = Wp && hdr[0] == ET_PACK_MAGIC && hdr[1] == (uint32_t)path_index(I) && hdr[2] == (uint32_t)IC &&
             hdr[3] == (uint32_t)OC;
    /* fused only on the blocked path (IC > 0) of a path with ukr_gelu; else GELU as a second pass */
    int fused = I->ukr_gelu && IC > 0 && N > 0 && OC > 0;
    sgemm_ex(I, pool, 0, 1, N, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC, ok ? Wp + ET_PACK_HDR : NULL, bias, fused);
    if (!fused) et_gelu_forward(pool, out, out, (int64_t)N * OC);
}

/* dbias[c0,c1) += sum over the rows of dout[:, c0..c1) (rows in order: the same sums as serial) */
typedef struct { float *dbias; const float *dout; int N, OC, chunk; } dbias_ctx;

static void dbias_task(void *vctx, int task, int thread) {
    (void)thread;
    const dbias_ctx *d = vctx;
    int c0 = task * d->chunk, c1 = c0 + d->chunk < d->OC ? c0 + d->chunk : d->OC;
    if (c0 >= c1) return;
    for (int n = 0; n < d->N; n++) et_axpy(d->dbias + c0, 1.0f, d->dout + (size_t)n * d->OC + c0, c1 - c0);
}

static void linear_backward(const et_kern_isa *I, et_pool *pool, float *dinp, float *dW, float *dbias,
                            const float *dout, const float *inp, const float *W, int N, int IC, int OC) {
    if (dinp) sgemm_ex(I, pool, 0, 0, N, IC, OC, 1.0f, dout, OC, W, IC, 1.0f, dinp, IC, NULL, NULL, 0);
    if (dW) sgemm_ex(I, pool, 1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dW, IC, NULL, NULL, 0);
    if (dbias) {
        dbias_ctx d = {dbias, dout, N, OC, 64};
        int nt = et_pool_size(pool), cols = (OC + d.chunk - 1) / d.chunk;
        if (nt > 1 && (int64_t)N * OC >= 65536 && cols > 1) { /* column blocks in parallel, rows in order */
            d.chunk = (OC + 2 * nt - 1) / (2 * nt);
            d.chunk = (d.chunk + 15) / 16 * 16;
            et_pool_run(pool, dbias_task, &d, (OC + d.chunk - 1) / d.chunk);
        } else {
            for (int n = 0; n < N; n++) et_axpy(dbias, 1.0f, dout + (size_t)n * OC, OC);
        }
    }
}

void et_linear_backward(et_pool *pool, float *dinp, float *dW, float *dbias, const float *dout,
                        const float *inp, const float *W, int N, int IC, int OC) {
    linear_backward(isa(), pool, dinp, dW, dbias, dout, inp, W, N, IC, OC);
}

/* ---------------------------------------------------------------- bf16 GEMMs (kernels_bf16.c) */
/* The bf16 table: VDPBF16PS when the CPU has AVX512_BF16 (and the fp32 path is automatic or forced to
 * avx512), else the scalar reference (the same bits, slowly). */
static const et_kern_isa *isa_bf16(void) {
#if ET_HAVE_X86_PATHS
    if ((et_forced_path < 0 || et_forced_path == 2) && path_table(2) && __builtin_cpu_supports("avx512bf16") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return &et_kern_isa_avx512bf16;
#endif
    return &et_kern_isa_bf16_ref;
}

int et_bf16_native(void) { return isa_bf16() != &et_kern_isa_bf16_ref; }

const char *et_bf16_name(void) { return isa_bf16()->name; }

/* fp32 micro-kernel time / bf16 micro-kernel time on one L1-resident 14 x 32 x 384 tile (the same flops): the
 * best of 9 runs of 64 calls each in process CPU time (clock(): what other jobs on the cores do not inflate),
 * a few milliseconds in all */
double et_bf16_speedup(void) {
    const et_kern_isa *B = isa_bf16(), *F = path_table(2);
    if (B == &et_kern_isa_bf16_ref || !F || F->MR != B->MR || F->NR != B->NR) return 0.0;
    const int MR = B->MR, NR = B->NR, K = ET_BF16_KC;
    size_t na = round_up((size_t)MR * K, 16), nb = round_up((size_t)K * NR, 16), nc = (size_t)MR * NR;
    float *buf = aligned_alloc(64, sizeof(float) * (3 * na + 3 * nb + nc)); /* A, B: row-major source, 2 packed */
    if (!buf) return 0.0;
    float *A = buf, *Bm = A + na, *Apf = Bm + nb, *Bpf = Apf + na, *Apb = Bpf + nb, *Bpb = Apb + na, *C = Bpb + nb;
    for (int i = 0; i < MR * K; i++) A[i] = (float)((i * 37) % 101) * 0.01f - 0.5f;
    for (int i = 0; i < K * NR; i++) Bm[i] = (float)((i * 53) % 97) * 0.01f - 0.5f;
    F->pack_a(Apf, A, K, 0, MR, K, MR);
    F->pack_b(Bpf, Bm, NR, 0, K, NR, NR);
    B->pack_a(Apb, A, K, 0, MR, K, MR);
    B->pack_b(Bpb, Bm, NR, 0, K, NR, NR);
    double best[2] = {1e30, 1e30};
    for (int rep = 0; rep < 9; rep++)
        for (int w = 0; w < 2; w++) {
            const et_kern_isa *I = w ? B : F;
            const float *ap = w ? Apb : Apf, *bp = w ? Bpb : Bpf;
            clock_t t0 = clock();
            for (int i = 0; i < 64; i++) I->ukr(MR, NR, K, ap, bp, C, NR, 1.0f, 0.0f);
            double t = (double)(clock() - t0);
            if (t < best[w]) best[w] = t;
        }
    free(buf);
    return best[1] > 0 ? best[0] / best[1] : 0.0;
}

void et_sgemm_bf16(et_pool *pool, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_ex(isa_bf16(), pool, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL, 0);
}

void et_linear_forward_bf16(et_pool *pool, float *out, const float *inp, const float *W, const float *bias, int N,
                            int IC, int OC) {
    sgemm_ex(isa_bf16(), pool, 0, 1, N, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC, NULL, bias, 0);
}

void et_linear_backward_bf16(et_pool *pool, float *dinp, float *dW, float *dbias, const float *dout,
                             const float *inp, const float *W, int N, int IC, int OC) {
    linear_backward(isa_bf16(), pool, dinp, dW, dbias, dout, inp, W, N, IC, OC);
}

/* ---------------------------------------------------------------- elementwise */
#define ET_INV_SQRT2 0.70710678118654752440f
#define ET_INV_SQRT_2PI 0.39894228040143267794f

/* Row/range kernels are split into tasks of >= min_per_task elements (~16K: below that threads don't pay):
 * `used` threads (each with at least one task's worth), tasks a multiple of used (up to 4 each), so every
 * thread gets the same number of near-equal ranges. Returns the tasks; *used the threads to run them on. */
static int elem_split(int nt, int64_t work, int64_t min_per_task, int *used) {
    *used = 1;
    if (nt <= 1 || work < 2 * min_per_task) return 1;
    int64_t t = work / min_per_task;
    int u = t < nt ? (int)t : nt;
    int64_t k = t / u < 4 ? t / u : 4;
    *used = u;
    return (int)(k * u);
}
static int elem_tasks(et_pool *pool, int64_t work, int64_t min_per_task, int *used) {
    return elem_split(et_pool_size(pool), work, min_per_task, used);
}

typedef struct {
    float *out, *mean, *rstd, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout, *cmean, *crstd;
    int64_t n;
    int N, C, ntasks, used; /* used: threads the tasks run on (elem_split) */
    int cols;           /* layernorm backward: rows per chunk */
    float *part;        /* layernorm backward: [chunks, 2C] partial dw, db */
    float eps;
    const et_kern_isa *I;
    float *xhat;        /* layernorm *_xhat: the normalized input (forward writes, backward reads) */
} elem_ctx;

static void range_of(int64_t n, int ntasks, int task, int64_t *i0, int64_t *i1) {
    *i0 = n * task / ntasks;
    *i1 = n * (task + 1) / ntasks;
}

static void gelu_fwd_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t i0, i1;
    range_of(e->n, e->ntasks, task, &i0, &i1);
    const float *x = e->inp;
    float *o = e->out;
    if (e->I->gelu_fwd) { e->I->gelu_fwd(o + i0, x + i0, i1 - i0); return; }
    for (int64_t i = i0; i < i1; i++) o[i] = 0.5f * x[i] * (1.0f + erff(x[i] * ET_INV_SQRT2));
}

void et_gelu_forward(et_pool *pool, float *out, const float *inp, int64_t n) {
    elem_ctx e = {0};
    e.I = isa();
    e.out = out; e.inp = inp; e.n = n;
    e.ntasks = elem_tasks(pool, n, 16384, &e.used);
    et_pool_run_n(pool, gelu_fwd_task, &e, e.ntasks, e.used);
}

static void gelu_bwd_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t i0, i1;
    range_of(e->n, e->ntasks, task, &i0, &i1);
    if (e->I->gelu_bwd) { e->I->gelu_bwd(e->dinp + i0, e->inp + i0, e->dout + i0, i1 - i0); return; }
    for (int64_t i = i0; i < i1; i++) {
        float x = e->inp[i];
        float cdf = 0.5f * (1.0f + erff(x * ET_INV_SQRT2));
        float pdf = ET_INV_SQRT_2PI * expf(-0.5f * x * x);
        e->dinp[i] += e->dout[i] * (cdf + x * pdf);
    }
}

void et_gelu_backward(et_pool *pool, float *dinp, const float *inp, const float *dout, int64_t n) {
    elem_ctx e = {0};
    e.I = isa();
    e.dinp = dinp; e.inp = inp; e.dout = dout; e.n = n;
    e.ntasks = elem_tasks(pool, n, 16384, &e.used);
    et_pool_run_n(pool, gelu_bwd_task, &e, e.ntasks, e.used);
}

static void gelu_bwd_inplace_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t i0, i1;
    range_of(e->n, e->ntasks, task, &i0, &i1);
    float tmp[256];
    for (int64_t c = i0; c < i1; c += 256) { /* d = 0 + tmp * gelu'(x), chunk by chunk */
        int64_t m = i1 - c < 256 ? i1 - c : 256;
        memcpy(tmp, e->dinp + c, sizeof(float) * (size_t)m);
        memset(e->dinp + c, 0, sizeof(float) * (size_t)m);
        if (e->I->gelu_bwd) { e->I->gelu_bwd(e->dinp + c, e->inp + c, tmp, m); continue; }
        for (int64_t i = 0; i < m; i++) {
            float x = e->inp[c + i];
            float cdf = 0.5f * (1.0f + erff(x * ET_INV_SQRT2));
            float pdf = ET_INV_SQRT_2PI * expf(-0.5f * x * x);
            e->dinp[c + i] += tmp[i] * (cdf + x * pdf);
        }
    }
}

void et_gelu_backward_inplace(et_pool *pool, float *d, const float *inp, int64_t n) {
    elem_ctx e = {0};
    e.I = isa();
    e.dinp = d; e.inp = inp; e.n = n;
    e.ntasks = elem_tasks(pool, n, 16384, &e.used);
    et_pool_run_n(pool, gelu_bwd_inplace_task, &e, e.ntasks, e.used);
}

/* the portable path's statistics of one row: mean and 1 / sqrt(var + eps), accumulated in double */
static void ln_row_stats(const float *x, int C, float eps, float *mean, float *rstd) {
    double m = 0, v = 0;
    for (int i = 0; i < C; i++) m += x[i];
    m /= C;
    for (int i = 0; i < C; i++) { double d = x[i] - m; v += d * d; }
    v /= C;
    *rstd = (float)(1.0 / sqrt(v + eps));
    *mean = (float)m;
}

/* LayerNorm rows split over the pool: tasks of >= 8K elements, at most one per row (sets e->I, e->ntasks) */
static int ln_split(int nt, int N, int C, int *used) {
    int ntasks = elem_split(nt, (int64_t)N * C, 8192, used);
    if (ntasks > N) { /* rows wider than a task's minimum: one row per task */
        ntasks = N > 0 ? N : 1;
        *used = equal_tasks_threads(ntasks, *used);
    }
    return ntasks;
}
static void ln_tasks(et_pool *pool, elem_ctx *e) {
    e->I = isa();
    e->ntasks = ln_split(et_pool_size(pool), e->N, e->C, &e->used);
}

static void ln_run(et_pool *pool, et_task_fn fn, elem_ctx *e) {
    ln_tasks(pool, e);
    et_pool_run_n(pool, fn, e, e->ntasks, e->used);
}

static void ln_fwd_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t r0, r1;
    range_of(e->N, e->ntasks, task, &r0, &r1);
    const int C = e->C;
    if (e->I->ln_fwd_row) {
        for (int64_t n = r0; n < r1; n++) {
            float mf, s;
            e->I->ln_fwd_row(e->out + (size_t)n * C, &mf, &s, e->inp + (size_t)n * C, e->w, e->b, C, e->eps);
            if (e->mean) e->mean[n] = mf;
            if (e->rstd) e->rstd[n] = s;
        }
        return;
    }
    for (int64_t n = r0; n < r1; n++) {
        const float *x = e->inp + (size_t)n * C;
        float *o = e->out + (size_t)n * C;
        float mf, s;
        ln_row_stats(x, C, e->eps, &mf, &s);
        for (int i = 0; i < C; i++) o[i] = (x[i] - mf) * s * e->w[i] + e->b[i];
        if (e->mean) e->mean[n] = mf;
        if (e->rstd) e->rstd[n] = s;
    }
}

void et_layernorm_forward(et_pool *pool, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps) {
    elem_ctx e = {0};
    e.out = out; e.mean = mean; e.rstd = rstd; e.inp = inp; e.w = w; e.b = b;
    e.N = N; e.C = C; e.eps = eps;
    ln_run(pool, ln_fwd_task, &e);
}

/* LayerNorm backward over rows [r0, r1), in order: dinp rows += ... (when e->dinp), dw += xhat * dy and
 * db += dy (either may be NULL) */
static void ln_bwd_rows_x(const elem_ctx *e, int64_t r0, int64_t r1, float *dw, float *db) {
    const int C = e->C;
    if (e->I->ln_bwd_row) {
        for (int64_t n = r0; n < r1; n++)
            e->I->ln_bwd_row(e->dinp ? e->dinp + (size_t)n * C : NULL, dw, db, e->dout + (size_t)n * C,
                             e->inp + (size_t)n * C, e->w, e->cmean[n], e->crstd[n], C);
        return;
    }
    for (int64_t n = r0; n < r1; n++) {
        const float *x = e->inp + (size_t)n * C, *dy = e->dout + (size_t)n * C;
        float m = e->cmean[n], s = e->crstd[n];
        float dnorm_mean = 0, dnorm_norm_mean = 0;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * s;
            float dn = e->w[i] * dy[i];
            dnorm_mean += dn;
            dnorm_norm_mean += dn * xh;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        float *di = e->dinp ? e->dinp + (size_t)n * C : NULL;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * s;
            float dn = e->w[i] * dy[i];
            if (db) db[i] += dy[i];
            if (dw) dw[i] += xh * dy[i];
            if (di) di[i] += (dn - dnorm_mean - xh * dnorm_norm_mean) * s;
        }
    }
}

/* ---- LayerNorm keeping xhat = (x - mean) * rstd instead of x (training memory) ---- */
/* out = xhat * w + b: ONE function for the forward and for the recomputation, so the bits agree */
static void ln_affine_row(float *out, const float *xh, const float *w, const float *b, int C) {
    for (int i = 0; i < C; i++) out[i] = xh[i] * w[i] + b[i];
}

static void ln_fwd_xhat_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t r0, r1;
    range_of(e->N, e->ntasks, task, &r0, &r1);
    const int C = e->C;
    for (int64_t n = r0; n < r1; n++) {
        const float *x = e->inp + (size_t)n * C;
        float *o = e->out + (size_t)n * C, *xh = e->xhat + (size_t)n * C;
        float mf, s;
        if (e->I->ln_fwd_row) { /* the path's statistics (its out row is overwritten below) */
            e->I->ln_fwd_row(o, &mf, &s, x, e->w, e->b, C, e->eps);
        } else {
            ln_row_stats(x, C, e->eps, &mf, &s);
        }
        for (int i = 0; i < C; i++) xh[i] = (x[i] - mf) * s;
        ln_affine_row(o, xh, e->w, e->b, C);
        if (e->rstd) e->rstd[n] = s;
    }
}

void et_layernorm_forward_xhat(et_pool *pool, float *out, float *xhat, float *rstd, const float *inp,
                               const float *w, const float *b, int N, int C, float eps) {
    elem_ctx e = {0};
    e.out = out; e.xhat = xhat; e.rstd = rstd; e.inp = inp; e.w = w; e.b = b;
    e.N = N; e.C = C; e.eps = eps;
    ln_run(pool, ln_fwd_xhat_task, &e);
}

static void ln_affine_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t r0, r1;
    range_of(e->N, e->ntasks, task, &r0, &r1);
    for (int64_t n = r0; n < r1; n++)
        ln_affine_row(e->out + (size_t)n * e->C, e->inp + (size_t)n * e->C, e->w, e->b, e->C);
}

void et_layernorm_affine(et_pool *pool, float *out, const float *xhat, const float *w, const float *b, int N,
                         int C) {
    elem_ctx e = {0};
    e.out = out; e.inp = xhat; e.w = w; e.b = b; e.N = N; e.C = C;
    ln_run(pool, ln_affine_task, &e);
}

/* ln_bwd_rows_x from xhat (e->inp) and rstd */
static void ln_bwd_rows_xhat(const elem_ctx *e, int64_t r0, int64_t r1, float *dw, float *db) {
    const int C = e->C;
    for (int64_t n = r0; n < r1; n++) {
        const float *xh = e->inp + (size_t)n * C, *dy = e->dout + (size_t)n * C;
        float s = e->crstd[n];
        if (db) for (int i = 0; i < C; i++) db[i] += dy[i];
        if (dw) for (int i = 0; i < C; i++) dw[i] += xh[i] * dy[i];
        if (!e->dinp) continue;
        float a0[8] = {0}, a1[8] = {0}; /* 8 partial sums (vectorizable, fixed order) */
        int i = 0;
        for (; i + 8 <= C; i += 8)
            for (int l = 0; l < 8; l++) {
                float dn = e->w[i + l] * dy[i + l];
                a0[l] += dn;
                a1[l] += dn * xh[i + l];
            }
        for (; i < C; i++) {
            float dn = e->w[i] * dy[i];
            a0[0] += dn;
            a1[0] += dn * xh[i];
        }
        float dm = 0, dnm = 0;
        for (int l = 0; l < 8; l++) { dm += a0[l]; dnm += a1[l]; }
        dm /= C;
        dnm /= C;
        float *di = e->dinp + (size_t)n * C;
        for (i = 0; i < C; i++) di[i] += (e->w[i] * dy[i] - dm - xh[i] * dnm) * s;
    }
}

static void ln_bwd_rows(const elem_ctx *e, int64_t r0, int64_t r1, float *dw, float *db) {
    if (e->xhat) ln_bwd_rows_xhat(e, r0, r1, dw, db);
    else ln_bwd_rows_x(e, r0, r1, dw, db);
}

/* The weight/bias gradients are sums over all N rows. The rows are cut into at most ET_LN_CHUNKS
 * chunks by a rule of N alone; each chunk's sums go to its own partial (task = chunk, so not per
 * THREAD), and dw, db then add the partials in chunk order. The serial run does the same chunk by
 * chunk, so every thread count gives the same bits. */
#define ET_LN_CHUNKS 16

static void ln_bwd_chunk_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t r0 = (int64_t)task * e->cols, r1 = r0 + e->cols < e->N ? r0 + e->cols : e->N;
    if (!e->cols) range_of(e->N, e->ntasks, task, &r0, &r1); /* dinp only: the forward's row ranges */
    float *p = e->part ? e->part + (size_t)task * 2 * e->C : NULL;
    if (p) memset(p, 0, sizeof(float) * 2 * (size_t)e->C);
    ln_bwd_rows(e, r0, r1, p && e->dw ? p : NULL, p && e->db ? p + e->C : NULL);
}

static void ln_add_partial(float *dw, float *db, const float *p, int C) {
    if (dw) for (int i = 0; i < C; i++) dw[i] += p[i];
    if (db) for (int i = 0; i < C; i++) db[i] += p[C + i];
}

static void layernorm_backward_any(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                                   const float *inp, const float *w, const float *mean, const float *rstd,
                                   int N, int C, int xhat_mode);

/* threads for the LayerNorm backward with dw/db: its ET_LN_CHUNKS row chunks (fixed by N alone) on the
 * fewest threads with the makespan of the pool (5 threads would wait on one that takes a 4th chunk); 1 =
 * serial (too small) */
static int ln_bwd_threads(int nt, int N, int C) {
    int used;
    if (N <= 0 || C <= 0 || elem_split(nt, (int64_t)N * C, 8192, &used) <= 1) return 1;
    int cols = (N + ET_LN_CHUNKS - 1) / ET_LN_CHUNKS, nch = (N + cols - 1) / cols;
    return equal_tasks_threads(nch, nt);
}

void et_layernorm_backward_xhat(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                                const float *xhat, const float *w, const float *rstd, int N, int C) {
    layernorm_backward_any(pool, dinp, dw, db, dout, xhat, w, NULL, rstd, N, C, 1);
}

void et_layernorm_backward(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean, const float *rstd,
                           int N, int C) {
    layernorm_backward_any(pool, dinp, dw, db, dout, inp, w, mean, rstd, N, C, 0);
}

static void layernorm_backward_any(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                                   const float *inp, const float *w, const float *mean, const float *rstd,
                                   int N, int C, int xhat_mode) {
    if (N <= 0 || C <= 0) return;
    elem_ctx e = {0};
    e.dinp = dinp; e.dw = dw; e.db = db; e.dout = dout; e.inp = inp; e.w = w;
    e.cmean = mean; e.crstd = rstd; e.N = N; e.C = C;
    e.xhat = xhat_mode ? (float *)inp : NULL;
    e.I = isa();
    if (!dw && !db) { /* dinp only: rows split over the pool */
        ln_tasks(pool, &e);
        e.cols = 0;
        et_pool_run_n(pool, ln_bwd_chunk_task, &e, e.ntasks, e.used);
        return;
    }
    e.cols = (N + ET_LN_CHUNKS - 1) / ET_LN_CHUNKS; /* rows per chunk */
    int nch = (N + e.cols - 1) / e.cols;
    int par = ln_bwd_threads(et_pool_size(pool), N, C);
    if (par > 1)
        e.part = et_pool_scratch(pool, 0, sizeof(float) * 2 * (size_t)C * nch); /* reserved: no allocation */
    if (e.part) {
        et_pool_run_n(pool, ln_bwd_chunk_task, &e, nch, par);
        for (int k = 0; k < nch; k++) ln_add_partial(dw, db, e.part + (size_t)k * 2 * C, C);
        return;
    }
    /* serial (small, or no pool scratch): the same chunks one after the other through one partial */
    float p[2 * C];
    for (int k = 0; k < nch; k++) {
        int64_t r0 = (int64_t)k * e.cols, r1 = r0 + e.cols < N ? r0 + e.cols : N;
        memset(p, 0, sizeof p);
        ln_bwd_rows(&e, r0, r1, dw ? p : NULL, db ? p + C : NULL);
        ln_add_partial(dw, db, p, C);
    }
}

/* x[i] = exp(x[i] - sub), returns the sum: the path's vector exp when it has one */
static float expsum(const et_kern_isa *I, float *x, int64_t n, float sub) {
    if (I->expsum) return I->expsum(x, n, sub);
    float sum = 0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - sub); sum += x[i]; }
    return sum;
}

static float rowmax(const et_kern_isa *I, const float *x, int64_t n) {
    if (I->maxv) return I->maxv(x, n);
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) if (x[i] > mx) mx = x[i];
    return mx;
}

static void rowscale(const et_kern_isa *I, float *x, float s, int64_t n) {
    if (I->scale) { I->scale(x, s, n); return; }
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void et_softmax_rows(float *x, int N, int C) {
    const et_kern_isa *I = isa();
    for (int n = 0; n < N; n++) {
        float *r = x + (size_t)n * C;
        float mx = rowmax(I, r, C);
        float sum = expsum(I, r, C, mx);
        rowscale(I, r, 1.0f / sum, C);
    }
}

/* ---------------------------------------------------------------- embeddings */
void et_embedding_forward(et_pool *pool, float *out, const int32_t *ids, const int32_t *type_ids,
                          const float *wte, const float *wpe, const float *wtt, int B, int T, int C) {
    (void)pool;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t bt = (size_t)b * T + t;
            const float *e = wte + (size_t)ids[bt] * C, *p = wpe + (size_t)t * C;
            const float *y = wtt + (size_t)(type_ids ? type_ids[bt] : 0) * C;
            float *o = out + bt * C;
            for (int i = 0; i < C; i++) o[i] = (e[i] + y[i]) + p[i];
        }
}

void et_embedding_forward_packed(et_pool *pool, float *out, const int32_t *ids, const int32_t *type_ids,
                                 const float *wte, const float *wpe, const float *wtt, const int32_t *off, int B,
                                 int C) {
    (void)pool;
    for (int b = 0; b < B; b++)
        for (int r = off[b]; r < off[b + 1]; r++) {
            const float *e = wte + (size_t)ids[r] * C, *p = wpe + (size_t)(r - off[b]) * C;
            const float *y = wtt + (size_t)(type_ids ? type_ids[r] : 0) * C;
            float *o = out + (size_t)r * C;
            for (int i = 0; i < C; i++) o[i] = (e[i] + y[i]) + p[i];
        }
}

void et_embedding_backward_packed(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                                  const int32_t *type_ids, const int32_t *off, int B, int C) {
    for (int b = 0; b < B; b++)
        for (int r = off[b]; r < off[b + 1]; r++) {
            const float *d = dout + (size_t)r * C;
            if (dwte) et_axpy(dwte + (size_t)ids[r] * C, 1.0f, d, C);
            if (dwpe) et_axpy(dwpe + (size_t)(r - off[b]) * C, 1.0f, d, C);
            if (dwtt) et_axpy(dwtt + (size_t)(type_ids ? type_ids[r] : 0) * C, 1.0f, d, C);
        }
}

void et_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                           const int32_t *ids, const int32_t *type_ids, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t bt = (size_t)b * T + t;
            const float *d = dout + bt * C;
            if (dwte) et_axpy(dwte + (size_t)ids[bt] * C, 1.0f, d, C);
            if (dwpe) et_axpy(dwpe + (size_t)t * C, 1.0f, d, C);
            if (dwtt) et_axpy(dwtt + (size_t)(type_ids ? type_ids[bt] : 0) * C, 1.0f, d, C);
        }
}

/* ---------------------------------------------------------------- attention
 * One task per (b, h). The T x T products run on the GEMM micro-kernels (serial gemm_run). Every
 * buffer a task needs is in the caller's scratch (et_attention_scratch_floats per thread): nothing
 * is allocated, so there is no fallback that could change the result. */
typedef struct {
    float *out, *att, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *attc;
    const int32_t *mask;
    int B, T, C, NH;
    float drop_p;
    uint64_t seed;
    const et_kern_isa *I;
    size_t ws_bfl, ws_afl; /* gemm workspace parts (floats) */
    size_t tt;        /* T*T rounded up to 16 floats */
    size_t sf;        /* scratch floats per thread (et_attention_scratch_floats) */
    float *rs;        /* forward: [B,NH,T,2] row max and 1/sum of the softmax (NULL = not wanted) */
    const float *rsc; /* backward: those row stats; P is recomputed from q, k (then attc is NULL) */
    const int32_t *off; /* packed batches: [B+1] sequence b is rows [off[b], off[b+1]); T is then the
                           longest; NULL = padded [B,T] */
} attn_ctx;

/* where (b, h) lives: its length T, first row, first row-stats row, and the dropout counter of
 * element (i, j) = (d0 + i * dstride) * dT + j. Padded: exactly the indices of [B,NH,T,T]. Packed: rows
 * of the concatenation, row stats [N,NH,2] with head h of sequence b at off[b]*NH + h*T, dropout
 * counters ((off[b] + i) * NH + h) * T_longest + j. */
typedef struct { int T; size_t row0, rs0; uint64_t d0, dstride, dT; } attn_seq;

static attn_seq attn_seq_of(const attn_ctx *a, int b, int h) {
    attn_seq s;
    if (!a->off) {
        s.T = a->T;
        s.row0 = (size_t)b * a->T;
        s.rs0 = ((size_t)b * a->NH + h) * a->T;
        s.d0 = s.rs0; s.dstride = 1; s.dT = (uint64_t)a->T;
    } else {
        s.T = a->off[b + 1] - a->off[b];
        s.row0 = (size_t)a->off[b];
        s.rs0 = (size_t)a->off[b] * a->NH + (size_t)h * s.T;
        s.d0 = (uint64_t)a->off[b] * a->NH + h; s.dstride = (uint64_t)a->NH; s.dT = (uint64_t)a->T;
    }
    return s;
}

/* Per thread, 64-byte aligned inside a slot of sf floats: [tt] probabilities (forward without att) or
 * dS (backward) | gemm workspace (bfl + afl) for the path in use | [tt] dropped-out probabilities |
 * [tt] recomputed probabilities (backward from row stats). Sized for the largest path's gemm
 * workspace, so a path forced after the caller sized its buffer still fits. */
static size_t attn_slot_floats(int T, int C, int NH, size_t *tt) {
    int hd = NH > 0 ? C / NH : 0, mx = T > hd ? T : hd;
    size_t ws = 0;
    for (int i = 0; i < 4; i++) {
        const et_kern_isa *I = path_table(i);
        size_t bfl, afl;
        if (!I) continue;
        gemm_ws_sizes(I, mx, mx, &bfl, &afl);
        if (bfl + afl > ws) ws = bfl + afl;
    }
    *tt = round_up((size_t)T * T, 16);
    return 3 * *tt + ws + 16; /* + 16: room to align the slot to 64 bytes */
}

size_t et_attention_scratch_floats(int T, int C, int NH) {
    if (T <= 0 || C <= 0 || NH <= 0) return 0;
    size_t tt;
    return attn_slot_floats(T, C, NH, &tt);
}

/* this thread's slot: [tt] P / dS, then the gemm workspace */
static float *attn_slot(const attn_ctx *a, int thread) {
    uintptr_t p = (uintptr_t)(a->scratch + (size_t)thread * a->sf);
    return (float *)((p + 63) & ~(uintptr_t)63);
}

static void attn_setup(attn_ctx *a) {
    int mx = a->T > a->C / a->NH ? a->T : a->C / a->NH;
    gemm_ws_sizes(a->I, mx, mx, &a->ws_bfl, &a->ws_afl);
    a->sf = attn_slot_floats(a->T, a->C, a->NH, &a->tt);
}

/* serial C = alpha op(A) op(B) + beta C for one head, using the path's micro-kernels */
static void head_gemm(const attn_ctx *a, float *ws, int ta, int tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    float *Aws[1] = {ws + a->ws_bfl};
    gemm_run(a->I, NULL, 1, ws, Aws, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL, 0);
}

static void attn_fwd_task(void *vctx, int task, int thread) {
    attn_ctx *a = vctx;
    int C = a->C, NH = a->NH, hd = C / NH;
    int b = task / NH, h = task % NH;
    const attn_seq sq = attn_seq_of(a, b, h);
    const int T = sq.T;
    if (T <= 0) return;
    float scale = 1.0f / sqrtf((float)hd);
    float *slot = attn_slot(a, thread), *ws = slot + a->tt;
    float *P = a->att ? a->att + ((size_t)b * NH + h) * T * T : slot;
    const float *qh = a->q + sq.row0 * C + h * hd, *kh = a->k + sq.row0 * C + h * hd;
    const float *vh = a->v + sq.row0 * C + h * hd;
    float *oh = a->out + sq.row0 * C + h * hd;
    float *Pd = ws + a->ws_bfl + a->ws_afl; /* dropped-out probabilities [T, T] */
    /* S[T,T] = scale * q_h k_h^T */
    head_gemm(a, ws, 0, 1, T, T, hd, scale, qh, C, kh, C, 0.0f, P, T);
    const int32_t *mk = a->mask ? a->mask + (size_t)b * T : NULL;
    if (mk) { /* a full mask needs no masking pass */
        int j = 0;
        while (j < T && mk[j]) j++;
        if (j == T) mk = NULL;
    }
    for (int i = 0; i < T; i++) {
        float *row = P + (size_t)i * T;
        if (mk) for (int j = 0; j < T; j++) if (!mk[j]) row[j] = -INFINITY;
        float mx = rowmax(a->I, row, T);
        if (mx == -INFINITY) { /* every key masked: HF gives a uniform distribution */
            for (int j = 0; j < T; j++) row[j] = 1.0f / T;
            if (a->rs) {
                float *r = a->rs + ((sq.rs0 + i) << 1);
                r[0] = -INFINITY;
                r[1] = 0.0f;
            }
        } else {
            float inv = 1.0f / expsum(a->I, row, T, mx);
            rowscale(a->I, row, inv, T);
            if (a->rs) {
                float *r = a->rs + ((sq.rs0 + i) << 1);
                r[0] = mx;
                r[1] = inv;
            }
        }
        if (a->drop_p > 0) {
            float ks = 1.0f / (1.0f - a->drop_p);
            uint64_t base = (sq.d0 + (uint64_t)i * sq.dstride) * sq.dT;
            for (int j = 0; j < T; j++)
                Pd[(size_t)i * T + j] = et_dropout_keep(a->seed, base + j, a->drop_p) ? row[j] * ks : 0.0f;
        }
    }
    /* out_h[T,hd] = P' v_h */
    head_gemm(a, ws, 0, 0, T, hd, T, 1.0f, a->drop_p > 0 ? Pd : P, T, vh, C, 0.0f, oh, C);
}

static void attention_forward(et_pool *pool, float *out, float *att, float *rs, float *scratch, const float *q,
                              const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                              int NH, float drop_p, uint64_t drop_seed) {
    if (B <= 0 || T <= 0 || NH <= 0 || C <= 0) return;
    attn_ctx a = {.out = out, .att = att, .scratch = scratch, .q = q, .k = k, .v = v, .mask = mask, .B = B, .T = T,
                  .C = C, .NH = NH, .drop_p = drop_p, .seed = drop_seed, .I = isa(), .rs = rs};
    attn_setup(&a);
    et_pool_run_n(pool, attn_fwd_task, &a, B * NH, equal_tasks_threads(B * NH, et_pool_size(pool)));
}

void et_attention_forward(et_pool *pool, float *out, float *att, float *scratch, const float *q,
                          const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                          int NH, float drop_p, uint64_t drop_seed) {
    attention_forward(pool, out, att, NULL, scratch, q, k, v, mask, B, T, C, NH, drop_p, drop_seed);
}

void et_attention_forward_rs(et_pool *pool, float *out, float *rowstats, float *scratch, const float *q,
                             const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                             int NH, float drop_p, uint64_t drop_seed) {
    attention_forward(pool, out, NULL, rowstats, scratch, q, k, v, mask, B, T, C, NH, drop_p, drop_seed);
}

/* backward for one (b, h), with m = dropout multiplier (0 or 1/(1-p)) and P' = P * m:
 * dP = (dout v^T) * m, dv += P'^T dout, dS = P * (dP - rowsum(dP * P)) * scale,
 * dq += dS k, dk += dS^T q. Tasks own a (b,h) column block, so no races. */
/* P[T,T] of (b, h) again, exactly as attn_fwd_task made it: S = scale q k^T (same GEMM), masked keys
 * -inf, then exp(S - max) * (1/sum) with the forward's row stats a->rsc */
static const float *recompute_probs(const attn_ctx *a, const attn_seq *sq, float *ws, float *P, int b, int h) {
    int T = sq->T, C = a->C, NH = a->NH, hd = C / NH;
    float scale = 1.0f / sqrtf((float)hd);
    const float *qh = a->q + sq->row0 * C + h * hd, *kh = a->k + sq->row0 * C + h * hd;
    head_gemm(a, ws, 0, 1, T, T, hd, scale, qh, C, kh, C, 0.0f, P, T);
    const int32_t *mk = a->mask && !a->off ? a->mask + (size_t)b * T : NULL;
    for (int i = 0; i < T; i++) {
        float *row = P + (size_t)i * T;
        const float *r = a->rsc + ((sq->rs0 + i) << 1);
        if (r[0] == -INFINITY) {
            for (int j = 0; j < T; j++) row[j] = 1.0f / T;
            continue;
        }
        if (mk) for (int j = 0; j < T; j++) if (!mk[j]) row[j] = -INFINITY;
        expsum(a->I, row, T, r[0]);
        rowscale(a->I, row, r[1], T);
    }
    return P;
}

static void attn_bwd_task(void *vctx, int task, int thread) {
    attn_ctx *a = vctx;
    int C = a->C, NH = a->NH, hd = C / NH;
    int b = task / NH, h = task % NH;
    const attn_seq sq = attn_seq_of(a, b, h);
    const int T = sq.T;
    if (T <= 0) return;
    float scale = 1.0f / sqrtf((float)hd);
    float *dS = attn_slot(a, thread), *ws = dS + a->tt;
    size_t off = sq.row0 * C + h * hd;
    float *Pd = ws + a->ws_bfl + a->ws_afl;
    const float *P = a->rsc ? recompute_probs(a, &sq, ws, Pd + a->tt, b, h)
                            : a->attc + ((size_t)b * NH + h) * T * T;
    /* dP[T,T] = dout_h v_h^T */
    head_gemm(a, ws, 0, 1, T, T, hd, 1.0f, a->dout + off, C, a->v + off, C, 0.0f, dS, T);
    float keep_scale = a->drop_p > 0 ? 1.0f / (1.0f - a->drop_p) : 1.0f;
    for (int i = 0; i < T; i++) {
        float *drow = dS + (size_t)i * T;
        const float *prow = P + (size_t)i * T;
        if (a->drop_p > 0) {
            uint64_t base = (sq.d0 + (uint64_t)i * sq.dstride) * sq.dT;
            for (int j = 0; j < T; j++) {
                float m = et_dropout_keep(a->seed, base + j, a->drop_p) ? keep_scale : 0.0f;
                drow[j] *= m;
                Pd[(size_t)i * T + j] = prow[j] * m;
            }
        }
    }
    /* dv_h[T,hd] += P'^T dout_h */
    if (a->dv)
        head_gemm(a, ws, 1, 0, T, hd, T, 1.0f, a->drop_p > 0 ? Pd : P, T, a->dout + off, C, 1.0f, a->dv + off, C);
    for (int i = 0; i < T; i++) {
        float *drow = dS + (size_t)i * T;
        const float *prow = P + (size_t)i * T;
        float dot = 0;
        for (int j = 0; j < T; j++) dot += drow[j] * prow[j];
        for (int j = 0; j < T; j++) drow[j] = prow[j] * (drow[j] - dot) * scale;
    }
    if (a->dq) head_gemm(a, ws, 0, 0, T, hd, T, 1.0f, dS, T, a->k + off, C, 1.0f, a->dq + off, C);
    if (a->dk) head_gemm(a, ws, 1, 0, T, hd, T, 1.0f, dS, T, a->q + off, C, 1.0f, a->dk + off, C);
}

static void attention_backward(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                               const float *dout, const float *att, const float *rs, const int32_t *mask,
                               const float *q, const float *k, const float *v, int B, int T, int C, int NH,
                               float drop_p, uint64_t drop_seed) {
    if (B <= 0 || T <= 0 || NH <= 0 || C <= 0) return;
    attn_ctx a = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .q = q, .k = k, .v = v, .dout = dout, .attc = att,
                  .mask = mask, .B = B, .T = T, .C = C, .NH = NH, .drop_p = drop_p, .seed = drop_seed, .I = isa(),
                  .rsc = rs};
    attn_setup(&a);
    et_pool_run_n(pool, attn_bwd_task, &a, B * NH, equal_tasks_threads(B * NH, et_pool_size(pool)));
}

/* packed batches (kernels.h): one task per (sequence, head), the same per-head code as the padded kernels */
void et_attention_forward_packed(et_pool *pool, float *out, float *rowstats, float *scratch, const float *q,
                                 const float *k, const float *v, const int32_t *off, int B, int Tmax, int C,
                                 int NH, float drop_p, uint64_t drop_seed) {
    if (B <= 0 || Tmax <= 0 || NH <= 0 || C <= 0) return;
    attn_ctx a = {.out = out, .scratch = scratch, .q = q, .k = k, .v = v, .B = B, .T = Tmax, .C = C, .NH = NH,
                  .drop_p = drop_p, .seed = drop_seed, .I = isa(), .rs = rowstats, .off = off};
    attn_setup(&a);
    et_pool_run_n(pool, attn_fwd_task, &a, B * NH, equal_tasks_threads(B * NH, et_pool_size(pool)));
}

void et_attention_backward_packed(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                                  const float *dout, const float *rowstats, const float *q, const float *k,
                                  const float *v, const int32_t *off, int B, int Tmax, int C, int NH, float drop_p,
                                  uint64_t drop_seed) {
    if (B <= 0 || Tmax <= 0 || NH <= 0 || C <= 0) return;
    attn_ctx a = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .q = q, .k = k, .v = v, .dout = dout, .B = B,
                  .T = Tmax, .C = C, .NH = NH, .drop_p = drop_p, .seed = drop_seed, .I = isa(), .rsc = rowstats,
                  .off = off};
    attn_setup(&a);
    et_pool_run_n(pool, attn_bwd_task, &a, B * NH, equal_tasks_threads(B * NH, et_pool_size(pool)));
}

void et_attention_backward(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                           const float *dout, const float *att, const float *q, const float *k,
                           const float *v, int B, int T, int C, int NH, float drop_p,
                           uint64_t drop_seed) {
    attention_backward(pool, dq, dk, dv, scratch, dout, att, NULL, NULL, q, k, v, B, T, C, NH, drop_p, drop_seed);
}

void et_attention_backward_rs(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                              const float *dout, const float *rowstats, const int32_t *mask, const float *q,
                              const float *k, const float *v, int B, int T, int C, int NH, float drop_p,
                              uint64_t drop_seed) {
    attention_backward(pool, dq, dk, dv, scratch, dout, NULL, rowstats, mask, q, k, v, B, T, C, NH, drop_p,
                       drop_seed);
}

/* ---------------------------------------------------------------- work split, for tests (kernels.h) */
int et_kernel_split(et_split_kind kind, int a, int b, int c, int nt, int job, int *used, double *share) {
    if (nt < 1) nt = 1;
    if (nt > 256) nt = 256;
    for (int t = 0; t < nt && share; t++) share[t] = 0;
    *used = 1;
    int tasks = 0;
    if (kind == ET_SPLIT_GEMM) { /* M = a, N = b, K = c: as sgemm_ex and gemm_run split it; job = column block */
        const et_kern_isa *I = isa();
        if (a <= 0 || b <= 0 || c <= 0 || job < 0 || (int64_t)job * I->NC >= b) return 0;
        if (nt > 1 && 2.0 * a * b * c < 2e6) nt = 1;
        int jc = job * I->NC, nc = b - jc < I->NC ? b - jc : I->NC, ntm, ntn, u;
        int um = (a + I->MR - 1) / I->MR, un = (nc + I->NR - 1) / I->NR;
        if (nt == 1) { ntm = ntn = u = 1; }
        else gemm_grid(a, nc, 2.0 * a * nc * c, nt, I->MR, I->NR, &ntm, &ntn, &u);
        *used = u;
        for (int i = 0; i < ntm * ntn; i++, tasks++) {
            int tm = i / ntn, tn = i % ntn;
            int r0 = part_lo(um, ntm, tm) * I->MR, r1 = part_lo(um, ntm, tm + 1) * I->MR;
            int c0 = part_lo(un, ntn, tn) * I->NR, c1 = part_lo(un, ntn, tn + 1) * I->NR;
            if (r1 > a) r1 = a;
            if (c1 > nc) c1 = nc;
            if (share && r1 > r0 && c1 > c0) share[i % u] += (double)(r1 - r0) * (c1 - c0) * c;
        }
        return tasks;
    }
    if (job != 0) return 0; /* the other kernels are one pool job */
    if (kind == ET_SPLIT_ATTENTION) { /* B = a, T = b, NH = c: one task per (b, h) */
        tasks = a * c;
        *used = equal_tasks_threads(tasks, nt);
        for (int i = 0; i < tasks && share; i++) share[i % *used] += (double)b * b;
        return tasks;
    }
    if (kind == ET_SPLIT_LAYERNORM) { /* N = a rows of C = b */
        tasks = ln_split(nt, a, b, used);
        for (int i = 0; i < tasks && share; i++) {
            int64_t r0, r1;
            range_of(a, tasks, i, &r0, &r1);
            share[i % *used] += (double)(r1 - r0);
        }
        return tasks;
    }
    if (kind == ET_SPLIT_LAYERNORM_BWD) { /* with dw/db: ET_LN_CHUNKS chunks of rows */
        if (a <= 0) return 0;
        *used = ln_bwd_threads(nt, a, b);
        int cols = (a + ET_LN_CHUNKS - 1) / ET_LN_CHUNKS;
        tasks = (a + cols - 1) / cols;
        for (int i = 0; i < tasks && share; i++) {
            int r0 = i * cols, r1 = r0 + cols < a ? r0 + cols : a;
            share[i % *used] += (double)(r1 - r0);
        }
        return tasks;
    }
    return 0;
}
