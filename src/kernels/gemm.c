/* kernels/gemm.c - the GEMM driver (GotoBLAS blocking, packing, the Linear layers, prepacked weights) over the
 * paths' micro-kernels; the portable packer is the scalar fallback. */
#include "kernels.h"
#include "impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- GEMM */
/* The portable packer, for both operands (op(A) row panels and op(B) column panels are the same layout with
 * the roles of rows and columns swapped): `n` lines (rows of op(A) / columns of op(B)) x k [0,kc) -> P-line
 * panels dst[p][k][l] (zero padded to P lines). kfirst: line l, k value k is X[l * ld + k] (A untransposed,
 * B transposed); else X[k * ld + l]. op(A): pack_panels(Ap, A, lda, !ta, mc, kc, MR);
 * op(B): pack_panels(Bp, B, ldb, tb, nc, kc, NR). */
static void pack_panels(float *dst0, const float *X, int ld, int kfirst, int n, int kc, int P) {
    for (int l0 = 0; l0 < n; l0 += P) {
        int h = n - l0 < P ? n - l0 : P;
        float *dst = dst0 + (size_t)l0 * kc;
        if (!kfirst) { /* line l, k at X[k*ld + l]: contiguous in l */
            for (int k = 0; k < kc; k++) {
                const float *s = X + (size_t)k * ld + l0;
                float *d = dst + (size_t)k * P;
                int l = 0;
                for (; l < h; l++) d[l] = s[l];
                for (; l < P; l++) d[l] = 0.0f;
            }
        } else {
            for (int l = 0; l < h; l++) {
                const float *s = X + (size_t)(l0 + l) * ld;
                for (int k = 0; k < kc; k++) dst[(size_t)k * P + l] = s[k];
            }
            for (int l = h; l < P; l++)
                for (int k = 0; k < kc; k++) dst[(size_t)k * P + l] = 0.0f;
        }
    }
}

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
    float *Bp;       /* shared packed op(B) block, KC x et_kern_round_up(NC, NR) (or a block of a prepacked B) */
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
    else pack_panels(dst, Bs, g->ldb, g->tb, w, g->kc, I->NR);
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
        else pack_panels(Ap, As, g->lda, !g->ta, mc, kc, MR);
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
    int r0 = et_kern_part_lo(g->um, g->ntm, tm) * MR, r1 = et_kern_part_lo(g->um, g->ntm, tm + 1) * MR;
    int c0 = et_kern_part_lo(g->un, g->ntn, tn) * NR, c1 = et_kern_part_lo(g->un, g->ntn, tn + 1) * NR;
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
    const size_t ncp = et_kern_round_up((size_t)g->nc, (size_t)g->I->NR);
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
void et_kern_gemm_ws_sizes(const et_kern_isa *I, int N, int K, size_t *bfl, size_t *afl) {
    size_t kcmax = (size_t)(K < I->KC ? K : I->KC);
    *bfl = et_kern_round_up(kcmax * et_kern_round_up((size_t)(N < I->NC ? N : I->NC), (size_t)I->NR), 16);
    *afl = et_kern_round_up((size_t)I->MC * kcmax, 16) + 16;
}

/* The fp32 paths' blocking in every build, CPU or not (dispatch.c scalar, avx2.c, avx512.c, wasm128.c: MR, NR, MC,
 * KC, NC). Scratch sized by et_kern_gemm_ws_max fits any of them and is one figure on every machine and target, so a
 * memory plan (and the refusal that quotes it) is the same natively and in wasm32; test_kernels checks that every
 * path compiled here is a row of this table. */
static const int fp32_blocking[4][5] = {{4, 8, 4 * 32, 256, 1024}, {6, 16, 6 * 24, 256, 2048},
                                        {14, 32, 14 * 8, 384, 1024}, {4, 8, 4 * 32, 256, 1024}};

int et_kern_blocking_known(const et_kern_isa *I) {
    for (int i = 0; i < 4; i++) {
        const int *b = fp32_blocking[i];
        if (I->MR == b[0] && I->NR == b[1] && I->MC == b[2] && I->KC == b[3] && I->NC == b[4]) return 1;
    }
    return 0;
}

void et_kern_gemm_ws_max(int N, int K, size_t *bfl, size_t *afl) {
    *bfl = *afl = 0;
    for (int i = 0; i < 4; i++) {
        et_kern_isa I = {0};
        I.MR = fp32_blocking[i][0], I.NR = fp32_blocking[i][1], I.MC = fp32_blocking[i][2];
        I.KC = fp32_blocking[i][3], I.NC = fp32_blocking[i][4];
        size_t b, a;
        et_kern_gemm_ws_sizes(&I, N, K, &b, &a);
        if (b + a > *bfl + *afl) *bfl = b, *afl = a;
    }
}

/* Out of memory for the packing workspace: gemm_run's k blocks, packers and micro-kernel epilogues
 * (compute_region), one NR-column panel x MR-row tile at a time, with the two panels on the stack.
 * Each element of C sees the same operations in the same order as in gemm_run, so the result has
 * the same bits; only slower (A is repacked for every column panel). A prepacked B is not needed. */
static void gemm_stack(const et_kern_isa *I, int transA, int transB, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                       const float *bias, int gelu) {
    const int MR = I->MR, NR = I->NR, KC = I->KC;
    const size_t afl = et_kern_round_up((size_t)MR * KC, 16), bfl = et_kern_round_up((size_t)KC * NR, 16);
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
            else pack_panels(Bp, Bs, ldb, transB, w, kc, NR);
            for (int r0 = 0; r0 < M; r0 += MR)
                compute_region(&g, 0, r0, r0 + MR < M ? r0 + MR : M, 0, w, pc, kc, Bp, pc == 0 ? beta : 1.0f);
            pc += kc;
        }
    }
}


void et_gemm_pool_bytes(size_t *first, size_t *each) {
    size_t f = 0, e = 0;
    for (int i = 0; i < 4 + 8; i++) { /* the fp32 paths and every bf16 table (et_sgemm_bf16, even when forced) */
        const et_kern_isa *I = i < 4 ? et_kern_path(i) : et_kern_bf16_table(i - 4);
        size_t bfl, afl;
        if (!I) continue;
        et_kern_gemm_ws_sizes(I, I->NC, I->KC, &bfl, &afl); /* the largest blocks */
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
    while (I->kmin && K < I->kmin) I = I->below; /* a table for any K below it */
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
    et_kern_gemm_ws_sizes(I, N, K, &bfl, &afl);
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
        Bp = own = aligned_alloc(64, et_kern_round_up(sizeof(float) * (bfl + afl), 64));
        Aws[0] = Bp ? Bp + bfl : NULL;
    }
    if (!Bp) /* out of memory: the same arithmetic one tile at a time (slow, the same bits) */
        gemm_stack(I, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, gelu);
    else
        et_kern_gemm_run(I, run_pool, nt, Bp, Aws, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, Bpre, bias,
                 gelu);
    free(own);
}

void et_sgemm(et_pool *pool, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_ex(et_kern_cur(), pool, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL, 0);
}

/* the blocked loops; pool NULL / nt 1 = serial on the caller (also used inside attention tasks) */
void et_kern_gemm_run(const et_kern_isa *I, et_pool *pool, int nt, float *Bp, float **Aws, int transA,
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
        et_kern_gemm_grid(M, g.nc, 2.0 * M * g.nc * K, nt, MR, NR, &g.ntm, &g.ntn, &g.used);
        const int ntm = g.ntm;
        int pbt = g.used == 1 ? 1 : (units_n < 2 * g.used ? units_n : 2 * g.used);
        g.pb_per_task = (units_n + pbt - 1) / pbt;
        pbt = (units_n + g.pb_per_task - 1) / g.pb_per_task;
        /* balanced k blocks: K = 384 with KC = 256 becomes 192 + 192, not 256 + 128 */
        if (Bpre) { /* one pass over the grid; the tasks walk the k blocks */
            g.allk = 1;
            g.Bp = (float *)Bpre + pre_off;
            pre_off += (size_t)K * et_kern_round_up((size_t)g.nc, (size_t)NR);
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
    sgemm_ex(et_kern_cur(), pool, 0, 1, N, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC, NULL, bias, 0);
}

/* Prepacked Linear weights: a 16-float header {magic, path, IC, OC} then op(B) = W^T packed block
 * after block in gemm_run's order (jc blocks of NC columns, then balanced k blocks), each block
 * kc x et_kern_round_up(nc, NR) as the path's pack_b writes it. */
#define ET_PACK_MAGIC 0x4B435045u /* "EPCK" */
#define ET_PACK_HDR 16

static int path_index(const et_kern_isa *I) {
    for (int i = 0; i < 4; i++) if (et_kern_path(i) == I) return i;
    return -1;
}

static size_t packed_body_floats(const et_kern_isa *I, int IC, int OC) {
    size_t n = 0;
    for (int jc = 0; jc < OC; jc += I->NC) {
        int nc = OC - jc < I->NC ? OC - jc : I->NC;
        n += (size_t)IC * et_kern_round_up((size_t)nc, (size_t)I->NR); /* the k blocks sum to IC */
    }
    return n;
}

size_t et_linear_packed_floats(int IC, int OC) {
    if (IC <= 0 || OC <= 0) return 0;
    return ET_PACK_HDR + packed_body_floats(et_kern_cur(), IC, OC);
}

void et_linear_pack(et_pool *pool, float *Wp, const float *W, int IC, int OC) {
    if (IC <= 0 || OC <= 0) return;
    const et_kern_isa *I = et_kern_cur();
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
            off += (size_t)kc * et_kern_round_up((size_t)g.nc, (size_t)NR);
            pc += kc;
        }
    }
}

void et_linear_forward_packed(et_pool *pool, float *out, const float *inp, const float *W, const float *Wp,
                              const float *bias, int N, int IC, int OC) {
    uint32_t hdr[4] = {0};
    if (Wp) memcpy(hdr, Wp, sizeof hdr);
    int ok = Wp && hdr[0] == ET_PACK_MAGIC && hdr[1] == (uint32_t)path_index(et_kern_cur()) && hdr[2] == (uint32_t)IC &&
             hdr[3] == (uint32_t)OC;
    sgemm_ex(et_kern_cur(), pool, 0, 1, N, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC, ok ? Wp + ET_PACK_HDR : NULL, bias, 0);
}

void et_linear_forward_gelu(et_pool *pool, float *out, const float *inp, const float *W, const float *Wp,
                            const float *bias, int N, int IC, int OC) {
    const et_kern_isa *I = et_kern_cur();
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
    linear_backward(et_kern_cur(), pool, dinp, dW, dbias, dout, inp, W, N, IC, OC);
}



void et_sgemm_bf16(et_pool *pool, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_ex(et_kern_bf16(), pool, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL, 0);
}

void et_linear_forward_bf16(et_pool *pool, float *out, const float *inp, const float *W, const float *bias, int N,
                            int IC, int OC) {
    sgemm_ex(et_kern_bf16(), pool, 0, 1, N, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC, NULL, bias, 0);
}

void et_linear_backward_bf16(et_pool *pool, float *dinp, float *dW, float *dbias, const float *dout,
                             const float *inp, const float *W, int N, int IC, int OC) {
    linear_backward(et_kern_bf16(), pool, dinp, dW, dbias, dout, inp, W, N, IC, OC);
}

