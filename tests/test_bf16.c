/* test_bf16.c - the bf16 GEMMs (kernels.h et_sgemm_bf16, et_linear_*_bf16):
 *  - the rounding et_f32_to_bf16_daz on hand cases (ties to even, carries, subnormals, inf, NaN; the values
 *    VCVTNE2PS2BF16 gave on this machine's AVX512_BF16 CPU are the same, listed in the comment);
 *  - the scalar reference against an independent double-precision sum of the bf16-rounded operands, within
 *    the fp32 accumulation bound, and against the fp32 GEMM within the bf16 input-rounding bound;
 *  - the VDPBF16PS path (where the CPU has it) against the scalar reference BIT FOR BIT on odd shapes, every
 *    transpose, alpha/beta/bias, several k blocks, subnormal and rounding-tie inputs;
 *  - the AMX path (TDPBF16PS, where the CPU and OS allow it) on the same cases against the double sum of the
 *    bf16-rounded operands, within twice the reference's fp32 bound (its sums are not a chain of fmas: see
 *    kernels.h), and bit for bit with the reference below K = 32 (those GEMMs run on VDPBF16PS);
 *  - the same bits with pools of 1..4 threads; the Linear forward/backward entry points against et_sgemm_bf16. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "et_test.h"

static uint64_t g_rng = 777;
static float frand(void) { return et_test_frand(&g_rng); }

static float fbits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bitsf(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static double bf(float x) { return (double)fbits((uint32_t)et_f32_to_bf16_daz(x) << 16); }

static void test_round(void) {
    /* {input bits, bf16}: on this machine VCVTNE2PS2BF16 (_mm512_cvtneps_pbh) gave exactly these */
    static const uint32_t cases[][2] = {
        {0x3f800000, 0x3f80}, /* 1 */
        {0x3f808000, 0x3f80}, /* 1 + 2^-8: a tie, kept even */
        {0x3f818000, 0x3f82}, /* 1 + 3 * 2^-8: a tie, rounded up to even */
        {0x3f808001, 0x3f81}, /* just above the tie: up */
        {0x3f7fffff, 0x3f80}, /* carry into the exponent */
        {0x00ff8000, 0x0100}, /* a tie at the smallest exponent, carry */
        {0x00800000, 0x0080}, /* FLT_MIN stays */
        {0x00000001, 0x0000}, /* subnormal: zero */
        {0x007fffff, 0x0000},
        {0x807fffff, 0x8000}, /* negative subnormal: -0 */
        {0x80400000, 0x8000},
        {0x80000000, 0x8000},
        {0x7f7fffff, 0x7f80}, /* FLT_MAX rounds to inf */
        {0x7f800000, 0x7f80}, /* inf */
        {0xff800000, 0xff80},
        {0x7fa00000, 0x7fe0}, /* signalling NaN: truncated, quiet bit set */
        {0xffc00001, 0xffc0},
        {0xc0490fdb, 0xc049}, /* -pi: 0xc0490fdb -> 0xc049 (0x0fdb < 0x8000) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = et_f32_to_bf16_daz(fbits(cases[i][0]));
        CHECK(got == cases[i][1], "round %08x -> %04x, want %04x", cases[i][0], got, cases[i][1]);
    }
    /* every normal bf16 value is kept, and the midpoints between neighbours go to the even one */
    int bad = 0;
    for (uint32_t h = 0x0080; h < 0x7f80 && !bad; h++) {
        uint32_t u = h << 16;
        if (et_f32_to_bf16_daz(fbits(u)) != h) bad = 1;
        uint32_t mid = u | 0x8000u; /* halfway to h + 1 */
        uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (et_f32_to_bf16_daz(fbits(mid)) != want) bad = 2;
        if (et_f32_to_bf16_daz(fbits(mid - 1)) != h || et_f32_to_bf16_daz(fbits(mid + 1)) != h + 1) bad = 3;
        if (bad) CHECK(0, "bf16 %04x: case %d", h, bad);
    }
    CHECK(!bad, "normal values and ties");
}

/* op(X)[i][k] of a stored matrix */
static float opa(const float *A, int lda, int ta, int i, int k) { return ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]; }
static float opb(const float *B, int ldb, int tb, int k, int j) { return tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]; }

/* fill with uniform [-1, 1), plus (special = 1) subnormals, rounding ties and values of other magnitudes */
static void fill(float *x, size_t n, int special) {
    for (size_t i = 0; i < n; i++) {
        x[i] = frand();
        if (!special) continue;
        switch (i % 11) {
        case 3: x[i] = fbits((bitsf(x[i]) & 0xffff0000u) | 0x8000u); break;          /* a tie */
        case 5: x[i] = fbits(0x00000001u + (uint32_t)(i % 997) * 4099u); break;       /* subnormal */
        case 7: x[i] *= 1024.0f; break;
        case 9: x[i] *= 1.0f / 4096.0f; break;
        default: break;
        }
    }
}

typedef struct { int ta, tb, M, N, K; float alpha, beta; int pad; } gcase;

static int n_native[2];     /* cases run on VDPBF16PS, on AMX */
static double amx_worst;    /* AMX's worst relative error against the double sum */

/* one GEMM: reference (scalar table) vs double, vs fp32 GEMM, and the native table vs the reference bits */
static void gemm_case(et_pool *pool, const gcase *g, int special) {
    const int lda = (g->ta ? g->M : g->K) + g->pad, ldb = (g->tb ? g->K : g->N) + g->pad, ldc = g->N + g->pad;
    size_t na = (size_t)(g->ta ? g->K : g->M) * lda, nb = (size_t)(g->tb ? g->N : g->K) * ldb, nc = (size_t)g->M * ldc;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C0 = malloc(nc * 4), *Cr = malloc(nc * 4), *Cn = malloc(nc * 4);
    float *Cf = malloc(nc * 4);
    fill(A, na, special);
    fill(B, nb, special);
    fill(C0, nc, 0);
    memcpy(Cr, C0, nc * 4);
    memcpy(Cn, C0, nc * 4);
    memcpy(Cf, C0, nc * 4);
    char label[128];
    snprintf(label, sizeof label, "%c%c M%d N%d K%d a%g b%g pad%d%s", g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', g->M, g->N,
             g->K, g->alpha, g->beta, g->pad, special ? " special" : "");
    /* the scalar reference */
    CHECK(et_kernels_force_path("scalar") == 0, "force scalar");
    CHECK(!strcmp(et_bf16_name(), "bf16-scalar") && !et_bf16_native(), "scalar forced: %s", et_bf16_name());
    et_sgemm_bf16(pool, g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, Cr, ldc);
    et_kernels_force_path(NULL);
    et_sgemm(pool, g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, Cf, ldc);
    /* Bounds, relative to sum |alpha a b| + |beta c| (u = 2^-24, fp32's unit roundoff):
     * - reference vs the exact sum of the bf16-rounded products (exact in double): every fma of a k block's
     *   chain rounds once (K of them), the epilogue once or twice per k block (beta * C, then the fma):
     *   (K + 2 * nblocks + 1) u;
     * - vs the fp32 GEMM: rounding an operand to bf16 is within 2^-8 relative (8-bit significand), so a
     *   product within 2 * 2^-8 + 2^-16; plus both GEMMs' own fp32 rounding (the bound above, twice). Flushed
     *   subnormal operands are off by less than 1e-37 absolute, far below these. */
    const int nblocks = (g->K + 383) / 384;
    const double bound = (g->K + 2 * nblocks + 1) * ldexp(1.0, -24);
    const double bound_fp = 2 * ldexp(1.0, -8) + ldexp(1.0, -16) + 2 * bound;
    double worst_ref = 0, worst_fp = 0;
    int bad_pad = 0;
    for (int i = 0; i < g->M; i++) {
        for (int j = 0; j < g->N; j++) {
            double s = 0, sa = 0, sf = 0;
            for (int k = 0; k < g->K; k++) {
                float a = opa(A, lda, g->ta, i, k), b = opb(B, ldb, g->tb, k, j);
                s += bf(a) * bf(b);
                sa += fabs(bf(a) * bf(b));
                sf += fabs((double)a * b);
            }
            double c0 = C0[(size_t)i * ldc + j];
            double want = g->alpha * s + (g->beta != 0.0f ? g->beta * c0 : 0.0);
            double scale = fabs(g->alpha) * sa + fabs(g->beta * c0);
            double got = Cr[(size_t)i * ldc + j];
            double e = fabs(got - want) / (scale > 1e-30 ? scale : 1e-30);
            if (e > worst_ref) worst_ref = e;
            double ef = fabs(got - Cf[(size_t)i * ldc + j]) /
                        (fabs(g->alpha) * sf + fabs(g->beta * c0) > 1e-30 ? fabs(g->alpha) * sf + fabs(g->beta * c0) : 1e-30);
            if (ef > worst_fp) worst_fp = ef;
        }
        for (int j = g->N; j < ldc; j++) bad_pad |= bitsf(Cr[(size_t)i * ldc + j]) != bitsf(C0[(size_t)i * ldc + j]);
    }
    CHECK(worst_ref <= bound, "%s: reference vs double rel %.3g > %.3g", label, worst_ref, bound);
    CHECK(worst_fp <= bound_fp, "%s: reference vs fp32 GEMM rel %.3g > %.3g", label, worst_fp, bound_fp);
    CHECK(!bad_pad, "%s: the reference wrote outside C's columns", label);
    /* the VDPBF16PS table: the same bits */
    if (et_bf16_force("avx512bf16") == 0) {
        memcpy(Cn, C0, nc * 4);
        et_sgemm_bf16(pool, g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, Cn, ldc);
        size_t diff = 0, first = 0;
        for (size_t i = 0; i < nc; i++)
            if (bitsf(Cn[i]) != bitsf(Cr[i]) && !diff++) first = i;
        CHECK(!diff, "%s: %s differs from the reference in %zu of %zu (first [%zu] %.9g vs %.9g)", label,
              et_bf16_name(), diff, nc, first, Cn[first], Cr[first]);
        n_native[0]++;
    }
    /* the AMX table: within twice the reference's bound of the exact sum (every addition of the tile unit and
     * the epilogue rounds once; allowing 2u each covers rounding toward zero as well as to nearest, since the
     * tile unit's order and rounding of a step's 32 products are not documented); below K = 32 the bits */
    if (et_bf16_force("amx-bf16") == 0) {
        memcpy(Cn, C0, nc * 4);
        et_sgemm_bf16(pool, g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, Cn, ldc);
        double worst_amx = 0;
        int bad_pad_amx = 0;
        size_t diff = 0;
        for (int i = 0; i < g->M; i++) {
            for (int j = 0; j < g->N; j++) {
                double s = 0, sa = 0;
                for (int k = 0; k < g->K; k++) {
                    double p = bf(opa(A, lda, g->ta, i, k)) * bf(opb(B, ldb, g->tb, k, j));
                    s += p;
                    sa += fabs(p);
                }
                double c0 = C0[(size_t)i * ldc + j];
                double want = g->alpha * s + (g->beta != 0.0f ? g->beta * c0 : 0.0);
                double scale = fabs(g->alpha) * sa + fabs(g->beta * c0);
                double e = fabs(Cn[(size_t)i * ldc + j] - want) / (scale > 1e-30 ? scale : 1e-30);
                if (e > worst_amx) worst_amx = e;
                diff += bitsf(Cn[(size_t)i * ldc + j]) != bitsf(Cr[(size_t)i * ldc + j]);
            }
            for (int j = g->N; j < ldc; j++) bad_pad_amx |= bitsf(Cn[(size_t)i * ldc + j]) != bitsf(C0[(size_t)i * ldc + j]);
        }
        CHECK(worst_amx <= 2 * bound, "%s: amx-bf16 vs double rel %.3g > %.3g", label, worst_amx, 2 * bound);
        CHECK(!bad_pad_amx, "%s: amx-bf16 wrote outside C's columns", label);
        if (g->K < 32) CHECK(!diff, "%s: K < 32 runs on VDPBF16PS, yet %zu values differ from the reference", label, diff);
        if (worst_amx > amx_worst) amx_worst = worst_amx;
        n_native[1]++;
    }
    et_bf16_force(NULL);
    free(A); free(B); free(C0); free(Cr); free(Cn); free(Cf);
}

static void test_gemm(void) {
    et_error err = {0};
    et_pool *p2 = et_pool_create(2, &err);
    CHECK(p2 != NULL, "pool: %s", err.msg);
    const int sizes[][3] = {{1, 1, 1}, {1, 1, 2}, {3, 5, 7}, {14, 32, 2}, {13, 31, 33}, {15, 33, 64}, {29, 65, 385},
                            {28, 64, 769}, {113, 47, 96}, {5, 200, 1}, {70, 1030, 40}, {200, 17, 31}};
    int nc = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++) {
            gcase g = {t & 1, t >> 1, sizes[s][0], sizes[s][1], sizes[s][2], 1.0f, 0.0f, (int)(s % 3)};
            if (s % 4 == 1) g.beta = 1.0f;
            if (s % 4 == 2) { g.alpha = 0.5f; g.beta = -0.75f; }
            if (s % 4 == 3) g.alpha = -2.0f;
            gemm_case(s % 2 ? p2 : NULL, &g, (int)(s + t) % 2);
            nc++;
        }
    printf("bf16 GEMM: %d cases, %d on VDPBF16PS (bits = reference), %d on AMX (worst rel error %.3g); auto: %s\n",
           nc, n_native[0], n_native[1], amx_worst, et_bf16_native() ? et_bf16_name() : "the reference");
    et_pool_destroy(p2);
}

/* the same bits with any pool, and the Linear entry points equal to their GEMMs */
static void test_pools_and_linear(void) {
    const int N = 77, IC = 96, OC = 70;
    float *x = malloc(sizeof(float) * N * IC), *W = malloc(sizeof(float) * OC * IC), *b = malloc(sizeof(float) * OC);
    float *dy = malloc(sizeof(float) * N * OC);
    fill(x, (size_t)N * IC, 1); fill(W, (size_t)OC * IC, 0); fill(b, OC, 0); fill(dy, (size_t)N * OC, 0);
    float *y1 = malloc(sizeof(float) * N * OC), *yt = malloc(sizeof(float) * N * OC), *yg = malloc(sizeof(float) * N * OC);
    float *dx1 = calloc((size_t)N * IC, 4), *dxt = calloc((size_t)N * IC, 4), *dxg = calloc((size_t)N * IC, 4);
    float *dW1 = calloc((size_t)OC * IC, 4), *dWt = calloc((size_t)OC * IC, 4), *dWg = calloc((size_t)OC * IC, 4);
    float *db1 = calloc(OC, 4), *dbt = calloc(OC, 4);
    for (int i = 0; i < N * IC; i++) dx1[i] = dxt[i] = dxg[i] = 0.25f * frand(); /* backward accumulates */
    et_linear_forward_bf16(NULL, y1, x, W, b, N, IC, OC);
    et_linear_backward_bf16(NULL, dx1, dW1, db1, dy, x, W, N, IC, OC);
    /* forward = x @ W^T + bias: the GEMM with C = bias rows and beta 1 is one fma per element more (alpha 1:
     * fma(1, acc, bias) == acc + bias == fma(1, acc, 1 * bias)), so the same bits */
    for (int i = 0; i < N; i++) memcpy(yg + (size_t)i * OC, b, sizeof(float) * OC);
    et_sgemm_bf16(NULL, 0, 1, N, OC, IC, 1.0f, x, IC, W, IC, 1.0f, yg, OC);
    CHECK(!memcmp(y1, yg, sizeof(float) * N * OC), "linear forward bf16 != gemm + bias");
    et_sgemm_bf16(NULL, 0, 0, N, IC, OC, 1.0f, dy, OC, W, IC, 1.0f, dxg, IC);
    et_sgemm_bf16(NULL, 1, 0, OC, IC, N, 1.0f, dy, OC, x, IC, 1.0f, dWg, IC);
    CHECK(!memcmp(dx1, dxg, sizeof(float) * N * IC), "linear backward dinp != gemm");
    CHECK(!memcmp(dW1, dWg, sizeof(float) * OC * IC), "linear backward dW != gemm");
    double worst = 0;
    for (int o = 0; o < OC; o++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += dy[(size_t)n * OC + o];
        worst = fmax(worst, fabs(s - db1[o]));
    }
    CHECK(worst < 1e-4, "dbias (fp32 sum) off by %g", worst);
    /* pools of 1..4 threads: the serial run's bits (backward from one starting dinp) */
    float *dx0 = malloc(sizeof(float) * N * IC), *dxs = malloc(sizeof(float) * N * IC);
    float *dWs = calloc((size_t)OC * IC, 4), *dbs = calloc(OC, 4);
    for (int i = 0; i < N * IC; i++) dx0[i] = 0.25f * frand();
    memcpy(dxs, dx0, sizeof(float) * N * IC);
    et_linear_backward_bf16(NULL, dxs, dWs, dbs, dy, x, W, N, IC, OC);
    for (int t = 1; t <= 4; t++) {
        et_error err = {0};
        et_pool *p = et_pool_create(t, &err);
        CHECK(p != NULL, "pool %d", t);
        if (!p) continue;
        et_linear_forward_bf16(p, yt, x, W, b, N, IC, OC);
        CHECK(!memcmp(yt, y1, sizeof(float) * N * OC), "forward with %d threads: other bits", t);
        memcpy(dxt, dx0, sizeof(float) * N * IC);
        memset(dWt, 0, sizeof(float) * OC * IC);
        memset(dbt, 0, sizeof(float) * OC);
        et_linear_backward_bf16(p, dxt, dWt, dbt, dy, x, W, N, IC, OC);
        CHECK(!memcmp(dxt, dxs, sizeof(float) * N * IC) && !memcmp(dWt, dWs, sizeof(float) * OC * IC) &&
                  !memcmp(dbt, dbs, sizeof(float) * OC),
              "backward with %d threads: other bits", t);
        et_pool_destroy(p);
    }
    free(dx0); free(dxs); free(dWs); free(dbs);
    /* a bigger GEMM, where the pool splits rows and columns into many tasks */
    /* (smaller where the scalar reference runs it: the WebAssembly builds) */
    const int M = et_bf16_native() ? 300 : 96, NN = et_bf16_native() ? 200 : 80, K = et_bf16_native() ? 500 : 200;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * NN);
    float *C1 = malloc(sizeof(float) * M * NN), *C3 = malloc(sizeof(float) * M * NN);
    fill(A, (size_t)M * K, 0); fill(B, (size_t)K * NN, 0);
    et_sgemm_bf16(NULL, 0, 0, M, NN, K, 1.0f, A, K, B, NN, 0.0f, C1, NN);
    et_error err = {0};
    et_pool *p3 = et_pool_create(3, &err);
    et_sgemm_bf16(p3, 0, 0, M, NN, K, 1.0f, A, K, B, NN, 0.0f, C3, NN);
    CHECK(!memcmp(C1, C3, sizeof(float) * M * NN), "%dx%dx%d with 3 threads: other bits", M, NN, K);
    et_pool_destroy(p3);
    free(A); free(B); free(C1); free(C3);
    free(x); free(W); free(b); free(dy); free(y1); free(yt); free(yg); free(dx1); free(dxt); free(dxg);
    free(dW1); free(dWt); free(dWg); free(db1); free(dbt);
}

int main(void) {
    test_round();
    test_gemm();
    test_pools_and_linear();
    return et_test_report("test_bf16");
}
