/* kernels/dispatch.c - which path runs (the fp32 SIMD paths, the bf16 tables), the scalar path, and how
 * every kernel splits its work over the pool's threads (et_kernel_split). */
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE 1 /* syscall(), for arch_prctl (AMX); the build defines only _POSIX_C_SOURCE */
#endif
#include "kernels.h"
#include "impl.h"

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

const et_kern_isa *et_kern_path(int i) {
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

const et_kern_isa *et_kern_cur(void) {
    if (et_forced_path >= 0) return et_kern_path(et_forced_path);
    for (int i = 3; i > 0; i--) {
        const et_kern_isa *p = et_kern_path(i);
        if (p) return p;
    }
    return &et_kern_isa_scalar;
}

int et_kernels_force_path(const char *name) {
    if (!name || !strcmp(name, "auto")) { et_forced_path = -1; return 0; }
    for (int i = 0; i < 4; i++) {
        const et_kern_isa *p = et_kern_path(i);
        if (p && !strcmp(p->name, name)) { et_forced_path = i; return 0; }
    }
    return -1;
}

const char *et_simd_name(void) { return et_kern_cur()->name; }

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

float et_dot(const float *a, const float *b, int64_t n) { return et_kern_cur()->dot(a, b, n); }
void et_axpy(float *y, float alpha, const float *x, int64_t n) { et_kern_cur()->axpy(y, alpha, x, n); }

/* ---------------------------------------------------------------- work split (kernels.h et_kernel_split)
 * Every kernel splits its work by the shapes and the pool size so that the largest per-thread share is
 * within ET_SPLIT_TOL of the mean, and runs on fewer threads (et_pool_run_n) where more would not finish
 * sooner or would get too little work each. Which thread runs which task never changes any result. */
#ifndef ET_SHORT_M_TILES
#define ET_SHORT_M_TILES 4 /* row tiles (MR each) at or below which the GEMM splits columns only */
#endif
#define ET_SPLIT_TOL 1.10
#ifndef ET_GEMM_MIN_FLOP_THREAD
#define ET_GEMM_MIN_FLOP_THREAD 1e6 /* below ~1 MFLOP (~10-30 us) per thread, waking one more costs what it saves */
#endif

/* start of part i of u units split in `parts` ranges */
int et_kern_part_lo(int u, int parts, int i) { return (int)((int64_t)u * i / parts); }

/* elements in part i of `total` elements in `unit`-element units (the last may be short) split in `parts` */
static int part_len(int total, int unit, int parts, int i) {
    int u = (total + unit - 1) / unit, lo = et_kern_part_lo(u, parts, i) * unit, hi = et_kern_part_lo(u, parts, i + 1) * unit;
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
int et_kern_equal_tasks(int u, int nt) {
    if (u <= 1 || nt <= 1) return 1;
    if (nt > u) nt = u;
    int m = (u + nt - 1) / nt;
    return (u + m - 1) / m;
}

/* the compute grid of one column block of a GEMM: ntm x ntn chunks, k = ntm*ntn / used tasks per thread
 * (3 preferred: claims balance a busy machine), the largest used <= nt (at most one thread per
 * ET_GEMM_MIN_FLOP_THREAD) whose split is within ET_SPLIT_TOL; rows are split first (each task packs only
 * its A rows), columns only when M is a few row tiles (each B panel then streams once) */
void et_kern_gemm_grid(int M, int nc, double flops, int nt, int MR, int NR, int *ntm, int *ntn, int *used) {
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


/* ---------------------------------------------------------------- AMX: may this process use the tiles? */
#if ET_HAVE_X86_PATHS
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#define ET_ARCH_REQ_XCOMP_PERM 0x1023 /* Linux asm/prctl.h */
#define ET_XFEATURE_XTILEDATA 18

static unsigned long long xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

/* the CPU and OS part (no syscall): AMX-TILE + feature bit `what`, tile state enabled in XCR0 */
static int amx_cpu(int what) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(d & (1u << 24)) || !(d & (1u << what))) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE: xgetbv allowed */
    return (xcr0() & (3ull << 17)) == (3ull << 17);
}

/* Linux grants the tile data per process, once asked (kernels >= 5.16; older ones and other systems refuse:
 * then no AMX). The answer is kept: asking twice is harmless, so two threads racing here only ask twice. */
static int amx_perm(void) {
    static _Atomic int state; /* 0 not asked yet, 1 granted, -1 refused */
    int s = state;
    if (s) return s > 0;
#if defined(__linux__) && defined(SYS_arch_prctl)
    s = syscall(SYS_arch_prctl, ET_ARCH_REQ_XCOMP_PERM, ET_XFEATURE_XTILEDATA) == 0 ? 1 : -1;
#else
    s = -1;
#endif
    state = s;
    return s > 0;
}

int et_kern_amx_ok(int what) { return amx_cpu(what) && amx_perm(); }
#else
int et_kern_amx_ok(int what) { (void)what; return 0; }
#endif

/* ---------------------------------------------------------------- bf16 GEMMs (bf16.c, bf16_avx512bf16.c, bf16_amx.c) */
/* A test/benchmark hook like et_forced_path: the bf16 table by name (NULL = automatic). */
static const et_kern_isa *et_forced_bf16;

/* the bf16 tables this build has, whether or not this CPU runs them (i = 0, 1, ...; NULL past the last) */
static const et_kern_isa *bf16_table(int i) {
    static const et_kern_isa *const t[] = {&et_kern_isa_bf16_ref,
#if ET_HAVE_X86_PATHS
                                           &et_kern_isa_avx512bf16, &et_kern_isa_amx_bf16
#endif
    };
    return i >= 0 && i < (int)(sizeof t / sizeof t[0]) ? t[i] : NULL;
}

/* may table I run on this CPU and process? */
static int bf16_runs(const et_kern_isa *I) {
    if (I == &et_kern_isa_bf16_ref) return 1;
#if ET_HAVE_X86_PATHS
    if ((et_forced_path >= 0 && et_forced_path != 2) || !et_kern_path(2) || !__builtin_cpu_supports("avx512bf16") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl"))
        return 0;
    if (I == &et_kern_isa_avx512bf16) return 1;
    if (I == &et_kern_isa_amx_bf16) return et_kern_amx_ok(22);
#endif
    return 0;
}

/* The bf16 table: the forced one, else AMX (TDPBF16PS) when this CPU has AMX-BF16 and Linux grants the tiles,
 * else VDPBF16PS when the CPU has AVX512_BF16 (and the fp32 path is automatic or forced to avx512), else the
 * scalar reference (VDPBF16PS's bits, slowly). */
const et_kern_isa *et_kern_bf16(void) {
    if (et_forced_bf16) return et_forced_bf16;
    for (int i = 2; i > 0; i--)
        if (bf16_table(i) && bf16_runs(bf16_table(i))) return bf16_table(i);
    return &et_kern_isa_bf16_ref;
}

int et_bf16_force(const char *name) {
    if (!name || !strcmp(name, "auto")) { et_forced_bf16 = NULL; return 0; }
    for (int i = 0; bf16_table(i); i++)
        if (!strcmp(bf16_table(i)->name, name)) {
            if (!bf16_runs(bf16_table(i))) return -1;
            et_forced_bf16 = bf16_table(i);
            return 0;
        }
    return -1;
}

const et_kern_isa *et_kern_bf16_table(int i) { return bf16_table(i); }

int et_bf16_native(void) { return et_kern_bf16() != &et_kern_isa_bf16_ref; }

const char *et_bf16_name(void) { return et_kern_bf16()->name; }

/* micro-kernel seconds per flop of table I on one L1-resident MR x NR x ET_BF16_KC tile: the best of 9 runs of
 * 64 calls in process CPU time (clock(): what other jobs on the cores do not inflate); 0 if out of memory */
static double ukr_time_per_flop(const et_kern_isa *I) {
    const int MR = I->MR, NR = I->NR, K = ET_BF16_KC;
    size_t na = et_kern_round_up((size_t)MR * K, 16), nb = et_kern_round_up((size_t)K * NR, 16);
    float *buf = aligned_alloc(64, sizeof(float) * (2 * na + 2 * nb + (size_t)MR * NR));
    if (!buf) return 0.0;
    float *A = buf, *Bm = A + na, *Ap = Bm + nb, *Bp = Ap + na, *C = Bp + nb;
    for (int i = 0; i < MR * K; i++) A[i] = (float)((i * 37) % 101) * 0.01f - 0.5f;
    for (int i = 0; i < K * NR; i++) Bm[i] = (float)((i * 53) % 97) * 0.01f - 0.5f;
    I->pack_a(Ap, A, K, 0, MR, K, MR);
    I->pack_b(Bp, Bm, NR, 0, K, NR, NR);
    double best = 1e30;
    for (int rep = 0; rep < 9; rep++) {
        clock_t t0 = clock();
        for (int i = 0; i < 64; i++) I->ukr(MR, NR, K, Ap, Bp, C, NR, 1.0f, 0.0f);
        double t = (double)(clock() - t0) / CLOCKS_PER_SEC;
        if (t < best) best = t;
    }
    free(buf);
    return best / (64.0 * 2.0 * MR * NR * K);
}

/* fp32 (AVX-512) micro-kernel time / bf16 micro-kernel time for the same flops, a few milliseconds in all */
double et_bf16_speedup(void) {
    const et_kern_isa *B = et_kern_bf16(), *F = et_kern_path(2);
    if (B == &et_kern_isa_bf16_ref || !F) return 0.0;
    double tf = ukr_time_per_flop(F), tb = ukr_time_per_flop(B);
    return tb > 0 ? tf / tb : 0.0;
}

/* ---------------------------------------------------------------- work split, for tests (kernels.h) */
int et_kernel_split(et_split_kind kind, int a, int b, int c, int nt, int job, int *used, double *share) {
    if (nt < 1) nt = 1;
    if (nt > 256) nt = 256;
    for (int t = 0; t < nt && share; t++) share[t] = 0;
    *used = 1;
    int tasks = 0;
    if (kind == ET_SPLIT_GEMM) { /* M = a, N = b, K = c: as sgemm_ex and gemm_run split it; job = column block */
        const et_kern_isa *I = et_kern_cur();
        if (a <= 0 || b <= 0 || c <= 0 || job < 0 || (int64_t)job * I->NC >= b) return 0;
        if (nt > 1 && 2.0 * a * b * c < 2e6) nt = 1;
        int jc = job * I->NC, nc = b - jc < I->NC ? b - jc : I->NC, ntm, ntn, u;
        int um = (a + I->MR - 1) / I->MR, un = (nc + I->NR - 1) / I->NR;
        if (nt == 1) { ntm = ntn = u = 1; }
        else et_kern_gemm_grid(a, nc, 2.0 * a * nc * c, nt, I->MR, I->NR, &ntm, &ntn, &u);
        *used = u;
        for (int i = 0; i < ntm * ntn; i++, tasks++) {
            int tm = i / ntn, tn = i % ntn;
            int r0 = et_kern_part_lo(um, ntm, tm) * I->MR, r1 = et_kern_part_lo(um, ntm, tm + 1) * I->MR;
            int c0 = et_kern_part_lo(un, ntn, tn) * I->NR, c1 = et_kern_part_lo(un, ntn, tn + 1) * I->NR;
            if (r1 > a) r1 = a;
            if (c1 > nc) c1 = nc;
            if (share && r1 > r0 && c1 > c0) share[i % u] += (double)(r1 - r0) * (c1 - c0) * c;
        }
        return tasks;
    }
    if (job != 0) return 0; /* the other kernels are one pool job */
    if (kind == ET_SPLIT_ATTENTION) { /* B = a, T = b, NH = c: one task per (b, h) */
        tasks = a * c;
        *used = et_kern_equal_tasks(tasks, nt);
        for (int i = 0; i < tasks && share; i++) share[i % *used] += (double)b * b;
        return tasks;
    }
    if (kind == ET_SPLIT_LAYERNORM) { /* N = a rows of C = b */
        tasks = et_kern_ln_split(nt, a, b, used);
        for (int i = 0; i < tasks && share; i++) {
            int64_t r0, r1;
            et_kern_range_of(a, tasks, i, &r0, &r1);
            share[i % *used] += (double)(r1 - r0);
        }
        return tasks;
    }
    if (kind == ET_SPLIT_LAYERNORM_BWD) { /* with dw/db: ET_LN_CHUNKS chunks of rows */
        if (a <= 0) return 0;
        *used = et_kern_ln_bwd_threads(nt, a, b);
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

