/* test_loss.c - losses and soft targets against PyTorch (tests/fixtures/loss/loss.txt from
 * tools/gen_loss_fixture.py), finite differences of every backward, and hand-computed cases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "et_test.h"

/* max |a-b| / max(max|b|, floor) over a matrix */
static double rel_err(const float *a, const double *b, int n) {
    double mx = 0, sc = 1e-12;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > mx) mx = d;
        if (fabs(b[i]) > sc) sc = fabs(b[i]);
    }
    return mx / sc;
}

/* ---------------- generic loss wrapper for FD checks ---------------- */
typedef enum { L_INFONCE, L_MSE, L_CLP, L_SOFT } kind_t;
typedef struct {
    kind_t kind;
    et_loss_cfg cfg;
    int B, G, C;
    float *Q, *P, *N, *NQ, *y, *W;
    const unsigned char *mask;
    double *scratch;
} problem;

static double run(const problem *pb, float *dQ, float *dP, float *dN, float *dNQ) {
    double L = NAN;
    et_error err = {0};
    et_status st = ET_OK;
    if (pb->kind == L_INFONCE)
        st = et_loss_infonce(&pb->cfg, pb->Q, pb->P, pb->N, pb->B, pb->G, pb->C, dQ, dP, dN, pb->scratch, &L, &err);
    else if (pb->kind == L_SOFT)
        st = et_loss_soft_infonce(&pb->cfg, pb->Q, pb->P, pb->N, pb->W, pb->B, pb->G, pb->C, dQ, dP, dN, pb->scratch, &L,
                                  &err);
    else if (pb->kind == L_MSE)
        st = et_loss_cos_mse(&pb->cfg, pb->Q, pb->P, pb->y, pb->B, pb->C, dQ, dP, pb->scratch, NULL, &L, &err);
    else
        st = et_loss_clp(&pb->cfg, pb->Q, pb->P, pb->N, pb->NQ, pb->mask, pb->B, pb->G, pb->C, dQ, dP, dN, dNQ,
                         pb->scratch, NULL, &L, &err);
    if (st) {
        fprintf(stderr, "loss failed: %s\n", err.msg);
        exit(1);
    }
    return L;
}

/* Double-sided finite differences on every input float; returns max |fd - analytic| / max|analytic|. */
static double fd_check(problem *pb, const char *label) {
    int B = pb->B, G = pb->G, C = pb->C;
    int nq = B * C, nn = B * G * C;
    float *g[4] = {calloc((size_t)nq, 4), calloc((size_t)nq, 4), calloc((size_t)nn + 1, 4), calloc((size_t)nn + 1, 4)};
    run(pb, g[0], g[1], pb->kind == L_MSE ? NULL : g[2], pb->kind == L_CLP ? g[3] : NULL);
    float *X[4] = {pb->Q, pb->P, pb->N, pb->NQ};
    int cnt[4] = {nq, nq, pb->kind == L_MSE ? 0 : nn, pb->kind == L_CLP ? nn : 0};
    double worst = 0;
    for (int m = 0; m < 4; m++) {
        double mx = 1e-12, de = 0;
        for (int i = 0; i < cnt[m]; i++)
            if (fabs(g[m][i]) > mx) mx = fabs(g[m][i]);
        for (int i = 0; i < cnt[m]; i++) {
            float x0 = X[m][i];
            float xp = x0 + 1e-3f * (fabsf(x0) > 1 ? fabsf(x0) : 1), xm = x0 - (xp - x0);
            X[m][i] = xp;
            double lp = run(pb, NULL, NULL, NULL, NULL);
            X[m][i] = xm;
            double lm = run(pb, NULL, NULL, NULL, NULL);
            X[m][i] = x0;
            double fd = (lp - lm) / ((double)xp - (double)xm);
            double d = fabs(fd - g[m][i]);
            if (d > de) de = d;
        }
        if (cnt[m] && de / mx > worst) worst = de / mx;
    }
    for (int m = 0; m < 4; m++) free(g[m]);
    printf("  fd %-28s max rel err %.2e\n", label, worst);
    return worst;
}

static void test_fixture(void) {
    fx_file f;
    if (!fx_load(&f, "tests/fixtures/loss/loss.txt")) {
        et_test_fails++;
        return;
    }
    int B = (int)fx_get(&f, "B", 1)[0], G = (int)fx_get(&f, "G", 1)[0], C = (int)fx_get(&f, "C", 1)[0];
    int K = (int)fx_get(&f, "K", 1)[0];
    float *Q = fx_floats(&f, "Q", B * C), *P = fx_floats(&f, "P", B * C), *N = fx_floats(&f, "N", B * G * C);
    float *NQ = fx_floats(&f, "NQ", B * G * C), *y = fx_floats(&f, "y", B), *S = fx_floats(&f, "S", B * K);
    const double *maskd = fx_get(&f, "mask", B * G);
    unsigned char *mask = malloc((size_t)B * G);
    for (int i = 0; i < B * G; i++) mask[i] = maskd[i] != 0;
    double *scratch = malloc(sizeof(double) * et_loss_scratch_doubles(B, G, C));
    float *dQ = malloc(4 * (size_t)B * C), *dP = malloc(4 * (size_t)B * C), *dN = malloc(4 * (size_t)B * G * C),
          *dNQ = malloc(4 * (size_t)B * G * C);
    const double tol = 1e-5;
    double worst = 0;
#define ZERO_GRADS()                                                                                                  \
    do {                                                                                                              \
        memset(dQ, 0, 4 * (size_t)B * C);                                                                             \
        memset(dP, 0, 4 * (size_t)B * C);                                                                             \
        memset(dN, 0, 4 * (size_t)B * G * C);                                                                         \
        memset(dNQ, 0, 4 * (size_t)B * G * C);                                                                        \
    } while (0)
#define CMP(name, got, ref)                                                                                           \
    do {                                                                                                              \
        double e_ = fabs((got) - (ref)) / fmax(fabs(ref), 1e-12);                                                     \
        if (e_ > worst) worst = e_;                                                                                   \
        CHECK(e_ <= tol, "%s: got %.10g, torch %.10g (rel %.2e)", name, (double)(got), (double)(ref), e_);           \
    } while (0)
#define CMPM(name, got, ref, n)                                                                                       \
    do {                                                                                                              \
        double e_ = rel_err(got, ref, n);                                                                             \
        if (e_ > worst) worst = e_;                                                                                   \
        CHECK(e_ <= tol, "%s: max rel err %.2e", name, e_);                                                           \
    } while (0)

    char key[160];
    /* InfoNCE family */
    struct { const char *name; int G, sym, inb; } ic[] = {
        {"infonce_nohn", 0, 0, 1}, {"infonce_hn", 3, 0, 1}, {"infonce_sym", 3, 1, 1}, {"infonce_perquery", 3, 0, 0}};
    for (size_t c = 0; c < sizeof ic / sizeof ic[0]; c++) {
        et_loss_cfg cfg;
        et_loss_cfg_default(&cfg);
        cfg.symmetric = ic[c].sym;
        cfg.in_batch = ic[c].inb;
        ZERO_GRADS();
        double L;
        et_error err = {0};
        et_status st = et_loss_infonce(&cfg, Q, P, ic[c].G ? N : NULL, B, ic[c].G, C, dQ, dP, ic[c].G ? dN : NULL,
                                       scratch, &L, &err);
        CHECK(st == ET_OK, "%s: %s", ic[c].name, err.msg);
        snprintf(key, sizeof key, "%s.loss", ic[c].name);
        CMP(key, L, fx_get(&f, key, 1)[0]);
        snprintf(key, sizeof key, "%s.dQ", ic[c].name);
        CMPM(key, dQ, fx_get(&f, key, B * C), B * C);
        snprintf(key, sizeof key, "%s.dP", ic[c].name);
        CMPM(key, dP, fx_get(&f, key, B * C), B * C);
        if (ic[c].G) {
            snprintf(key, sizeof key, "%s.dN", ic[c].name);
            CMPM(key, dN, fx_get(&f, key, B * G * C), B * G * C);
        }
    }
    /* CLP: tau 0.02, lambda 0.1, mask with one lone masked negative and one fully masked query */
    struct { const char *name; et_clp_pen pen; int inb; } cc[] = {
        {"clp_mean", ET_CLP_PEN_MEAN, 0}, {"clp_sum", ET_CLP_PEN_SUM, 0}, {"clp_mean_inbatch", ET_CLP_PEN_MEAN, 1}};
    for (size_t c = 0; c < sizeof cc / sizeof cc[0]; c++) {
        et_loss_cfg cfg;
        et_loss_cfg_default(&cfg);
        cfg.tau = 0.02;
        cfg.pen = cc[c].pen;
        cfg.in_batch = cc[c].inb;
        ZERO_GRADS();
        /* masked NQ rows must not be read: poison them */
        float *NQp = malloc(4 * (size_t)B * G * C);
        memcpy(NQp, NQ, 4 * (size_t)B * G * C);
        for (int j = 0; j < B * G; j++)
            if (!mask[j])
                for (int k = 0; k < C; k++) NQp[(size_t)j * C + k] = NAN;
        double L, pen;
        et_error err = {0};
        et_status st = et_loss_clp(&cfg, Q, P, N, NQp, mask, B, G, C, dQ, dP, dN, dNQ, scratch, &pen, &L, &err);
        CHECK(st == ET_OK, "%s: %s", cc[c].name, err.msg);
        snprintf(key, sizeof key, "%s.loss", cc[c].name);
        CMP(key, L, fx_get(&f, key, 1)[0]);
        const char *mats[4] = {"dQ", "dP", "dN", "dNQ"};
        float *gs[4] = {dQ, dP, dN, dNQ};
        int ns[4] = {B * C, B * C, B * G * C, B * G * C};
        for (int m = 0; m < 4; m++) {
            snprintf(key, sizeof key, "%s.%s", cc[c].name, mats[m]);
            CMPM(key, gs[m], fx_get(&f, key, ns[m]), ns[m]);
        }
        for (int j = 0; j < B * G; j++)
            if (!mask[j])
                for (int k = 0; k < C; k++) CHECK(dNQ[(size_t)j * C + k] == 0.0f, "%s: masked dNQ row %d", cc[c].name, j);
        free(NQp);
    }
    /* MSE with hard and soft targets: targets from et_soft_targets, then the loss */
    const char *rules[] = {"hard", "soft1", "soft2", "soft3", "negsoft"};
    const char *norms[] = {"none", "minmax", "rank"};
    float yhat[64];
    for (int r = 0; r < 5; r++)
        for (int nm = 0; nm < 3; nm++) {
            et_soft_rule rule;
            et_soft_norm norm;
            et_error err = {0};
            CHECK(et_soft_rule_parse(rules[r], &rule, &err) == ET_OK, "%s", err.msg);
            CHECK(et_soft_norm_parse(norms[nm], &norm, &err) == ET_OK, "%s", err.msg);
            et_status st = et_soft_targets(rule, norm, 0.5, y, S, B, K, yhat, &err);
            CHECK(st == ET_OK, "soft targets %s/%s: %s", rules[r], norms[nm], err.msg);
            snprintf(key, sizeof key, "mse.%s.%s.yhat", rules[r], norms[nm]);
            const double *ref = fx_get(&f, key, B);
            for (int i = 0; i < B; i++)
                CHECK(fabs(yhat[i] - ref[i]) <= 1e-6, "%s[%d]: %.8f vs %.8f", key, i, yhat[i], ref[i]);
            et_loss_cfg cfg;
            et_loss_cfg_default(&cfg);
            ZERO_GRADS();
            double L;
            st = et_loss_cos_mse(&cfg, Q, P, yhat, B, C, dQ, dP, scratch, NULL, &L, &err);
            CHECK(st == ET_OK, "%s", err.msg);
            snprintf(key, sizeof key, "mse.%s.%s.loss", rules[r], norms[nm]);
            CMP(key, L, fx_get(&f, key, 1)[0]);
            snprintf(key, sizeof key, "mse.%s.%s.dQ", rules[r], norms[nm]);
            CMPM(key, dQ, fx_get(&f, key, B * C), B * C);
            snprintf(key, sizeof key, "mse.%s.%s.dP", rules[r], norms[nm]);
            CMPM(key, dP, fx_get(&f, key, B * C), B * C);
        }
    printf("torch fixture: worst relative error %.2e (tolerance %.0e)\n", worst, tol);

    /* finite differences of every backward (loss in double; fp32 inputs perturbed by ~1e-3) */
    problem pb = {0};
    pb.B = B; pb.G = G; pb.C = C; pb.Q = Q; pb.P = P; pb.N = N; pb.NQ = NQ; pb.y = y; pb.mask = mask;
    pb.scratch = scratch;
    const double fdtol = 1e-4;
    struct { const char *label; kind_t k; int sym, inb, G; et_clp_pen pen; double tau; } fc[] = {
        {"infonce no negatives", L_INFONCE, 0, 1, 0, 0, 0.05},   {"infonce hard negatives", L_INFONCE, 0, 1, 3, 0, 0.05},
        {"infonce symmetric", L_INFONCE, 1, 1, 3, 0, 0.05},      {"infonce per query", L_INFONCE, 0, 0, 3, 0, 0.05},
        {"cos mse", L_MSE, 0, 1, 0, 0, 0.05},                    {"clp mean", L_CLP, 0, 0, 3, ET_CLP_PEN_MEAN, 0.05},
        {"clp sum in-batch", L_CLP, 0, 1, 3, ET_CLP_PEN_SUM, 0.1},
    };
    for (size_t c = 0; c < sizeof fc / sizeof fc[0]; c++) {
        pb.kind = fc[c].k;
        et_loss_cfg_default(&pb.cfg);
        pb.cfg.symmetric = fc[c].sym;
        pb.cfg.in_batch = fc[c].inb;
        pb.cfg.pen = fc[c].pen;
        pb.cfg.tau = fc[c].tau;
        pb.G = fc[c].G;
        double e = fd_check(&pb, fc[c].label);
        CHECK(e <= fdtol, "finite differences %s: rel err %.2e", fc[c].label, e);
    }
    free(Q); free(P); free(N); free(NQ); free(y); free(S); free(mask); free(scratch);
    free(dQ); free(dP); free(dN); free(dNQ);
    fx_free(&f);
}

/* Hand-computed soft targets: 3 pairs x 2 experts, y = [1, 0, 0],
 *   S = [[0.8, 0.6],
 *        [0.2, 0.6],
 *        [0.5, 0.1]]
 * none:   mean = [0.7, 0.4, 0.3], max = [0.8, 0.6, 0.5], min = [0.6, 0.2, 0.1]
 *         soft1 = mean; soft2 = 0.5*y + 0.5*mean = [0.85, 0.2, 0.15]; soft3 = y*max + (1-y)*min = [0.8, 0.2, 0.1];
 *         negsoft = [1, 0.4, 0.3]
 * minmax: e0 (min .2, max .8) -> [1, 0, 0.5]; e1 (min .1, max .6) -> [1, 1, 0]
 *         mean = [1, 0.5, 0.25]; soft2 = [1, 0.25, 0.125]; soft3 = [max(1,1), min(0,1), min(.5,0)] = [1, 0, 0];
 *         negsoft = [1, 0.5, 0.25]
 * rank:   e0 .8,.2,.5 -> ranks 3,1,2 -> (r-1)/2 = [1, 0, 0.5];
 *         e1 .6,.6,.1 -> 0.1 is rank 1, the tied 0.6s share (2+3)/2 = 2.5 -> [0.75, 0.75, 0]
 *         mean = [0.875, 0.375, 0.25]; soft2 = [0.9375, 0.1875, 0.125]; soft3 = [1, 0, 0]; negsoft = [1, .375, .25]
 * hard = y for every normalisation. */
static void test_soft_hand(void) {
    const float y[3] = {1, 0, 0};
    const float S[6] = {0.8f, 0.6f, 0.2f, 0.6f, 0.5f, 0.1f};
    const float want[5][3][3] = {
        /* hard */ {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}},
        /* soft1 */ {{0.7f, 0.4f, 0.3f}, {1, 0.5f, 0.25f}, {0.875f, 0.375f, 0.25f}},
        /* soft2 */ {{0.85f, 0.2f, 0.15f}, {1, 0.25f, 0.125f}, {0.9375f, 0.1875f, 0.125f}},
        /* soft3 */ {{0.8f, 0.2f, 0.1f}, {1, 0, 0}, {1, 0, 0}},
        /* negsoft */ {{1, 0.4f, 0.3f}, {1, 0.5f, 0.25f}, {1, 0.375f, 0.25f}},
    };
    for (int r = 0; r < 5; r++)
        for (int n = 0; n < 3; n++) {
            float out[3];
            et_error err = {0};
            et_status st = et_soft_targets((et_soft_rule)r, (et_soft_norm)n, 0.5, y, S, 3, 2, out, &err);
            CHECK(st == ET_OK, "hand soft %d/%d: %s", r, n, err.msg);
            for (int i = 0; i < 3; i++)
                CHECK(fabsf(out[i] - want[r][n][i]) <= 1e-6f, "hand soft %s/%s pair %d: %.7f, want %.7f",
                      et_soft_rule_name((et_soft_rule)r), et_soft_norm_name((et_soft_norm)n), i, out[i],
                      want[r][n][i]);
        }
    /* clamp to [-1, 1]: mean of (1.5, 1.3) = 1.4 -> 1; mean of (-1.5, -1.7) -> -1 */
    {
        const float yy[2] = {1, 0}, SS[4] = {1.5f, 1.3f, -1.5f, -1.7f};
        float out[2];
        CHECK(et_soft_targets(ET_SOFT_MEAN, ET_SNORM_NONE, 0.5, yy, SS, 2, 2, out, NULL) == ET_OK, "clamp");
        CHECK(out[0] == 1.0f && out[1] == -1.0f, "clamp: %g %g", out[0], out[1]);
    }
    /* names */
    et_soft_rule r;
    et_soft_norm nm;
    const char *alias[][2] = {{"soft1", "1"}, {"MEAN", "1"}, {"m", "1"}, {"soft2", "2"}, {"blend", "2"}, {"B", "2"},
                              {"soft3", "3"}, {"gated", "3"}, {"G", "3"}, {"negsoft", "4"}, {"N", "4"}, {"hard", "0"}};
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++) {
        CHECK(et_soft_rule_parse(alias[i][0], &r, NULL) == ET_OK && (int)r == atoi(alias[i][1]), "parse %s",
              alias[i][0]);
    }
    et_error err = {0};
    CHECK(et_soft_rule_parse("soft4", &r, &err) == ET_ERR_ARG && strstr(err.msg, "soft4"), "bad rule: %s", err.msg);
    CHECK(et_soft_norm_parse("zscore", &nm, &err) == ET_ERR_ARG && strstr(err.msg, "zscore"), "bad norm: %s", err.msg);
    CHECK(et_soft_norm_parse("Rank", &nm, NULL) == ET_OK && nm == ET_SNORM_RANK, "parse Rank");
    /* NaN / Inf -> error naming pair and expert */
    float Sb[6];
    memcpy(Sb, S, sizeof Sb);
    Sb[1 * 2 + 1] = NAN;
    float out[3];
    CHECK(et_soft_targets(ET_SOFT_MEAN, ET_SNORM_NONE, 0.5, y, Sb, 3, 2, out, &err) == ET_ERR_NUMERIC &&
              strstr(err.msg, "pair 1, expert 1"),
          "NaN score: %s", err.msg);
    Sb[1 * 2 + 1] = 0.5f;
    Sb[2 * 2 + 0] = INFINITY;
    CHECK(et_soft_targets(ET_SOFT_GATED, ET_SNORM_RANK, 0.5, y, Sb, 3, 2, out, &err) == ET_ERR_NUMERIC &&
              strstr(err.msg, "pair 2, expert 0") && strstr(err.msg, "Inf"),
          "Inf score: %s", err.msg);
    CHECK(et_soft_targets(ET_SOFT_MEAN, ET_SNORM_NONE, 0.5, y, NULL, 3, 0, out, &err) == ET_ERR_ARG, "no experts");
    CHECK(et_soft_targets(ET_SOFT_HARD, ET_SNORM_NONE, 0.5, y, NULL, 3, 0, out, &err) == ET_OK && out[0] == 1,
          "hard without experts");
    /* constant expert under minmax -> 0.5; N == 1 under rank -> 0.5 */
    {
        const float yy[2] = {0, 0}, SS[2] = {0.3f, 0.3f};
        CHECK(et_soft_targets(ET_SOFT_MEAN, ET_SNORM_MINMAX, 0.5, yy, SS, 2, 1, out, NULL) == ET_OK &&
                  out[0] == 0.5f && out[1] == 0.5f, "constant expert minmax");
        CHECK(et_soft_targets(ET_SOFT_MEAN, ET_SNORM_RANK, 0.5, yy, SS, 1, 1, out, NULL) == ET_OK && out[0] == 0.5f,
              "single pair rank");
    }
}

/* Guards and calibration, by hand.
 * Calibration lo = 0.4, hi = 0.7: t -> 0.4 + 0.3 t: [0, 0.5, 1, -1, 2] -> [0.4, 0.55, 0.7, 0.1, 1 (1.0 clamped)].
 * Raw BM25-like scores (one expert, norm none): [12.3, 0.4, 7.5, 0.9] -> soft1 clamps 2 of 4 (12.3, 7.5; 0.4 and
 * 0.9 stay) -> share 0.5 (not refused: the limit is "more than half"); [12.3, 3.1, 7.5, 0.9] -> 3 of 4 -> refused,
 * naming the clamp and the fix (--soft-norm rank). With rank normalisation the same scores give [1, 1/3, 2/3, 0]:
 * nothing clamped.
 * Stats, labels [1, 0, 1, 0, 0], targets [0.9, 0.2, 0.4, 0.4, 0.1]: positives mean 0.65 (sd 0.25), negatives
 * 0.7/3 = 0.2333 (sd sqrt((0.04+0.16+0.01)/3 - 0.2333^2) = 0.12472); pairs (pos, neg): 0.9 beats all 3, 0.4 beats
 * 0.2 and 0.1 and ties 0.4 -> (3 + 2.5) / 6 = 0.916667.
 * Correlation of expert [3, 1, 2, 1, 1] with the labels [1, 0, 1, 0, 0]: means 1.6 and 0.4; deviations
 * (1.4, -.6, .4, -.6, -.6) and (.6, -.4, .6, -.4, -.4): sxy = .84+.24+.24+.24+.24 = 1.8, sxx = 1.96+.36+.16+.36+.36 =
 * 3.2, syy = 1.2 -> r = 1.8 / sqrt(3.84) = 0.918559. */
static void test_soft_guards(void) {
    float t[5] = {0, 0.5f, 1, -1, 2};
    et_soft_calibrate(t, 5, 0.4, 0.7);
    const float tw[5] = {0.4f, 0.55f, 0.7f, 0.1f, 1.0f};
    for (int i = 0; i < 5; i++) CHECK(fabsf(t[i] - tw[i]) < 1e-6f, "calibrate %d: %g want %g", i, t[i], tw[i]);

    /* range matching: t = [0, .5, 1] (mean .5, sd sqrt(1/6) = .408248), c = [.4, .5, .9] (mean .6, sd sqrt(.14/3) =
     * .216025): k = .529150, lo = .6 - .5 k = .335425, hi = .864575; calibrated t = [.335425, .6, .864575] has
     * c's mean and sd */
    {
        const float t3[3] = {0, 0.5f, 1}, c3[3] = {0.4f, 0.5f, 0.9f};
        double lo, hi;
        et_soft_range_match(t3, c3, 3, &lo, &hi);
        CHECK(fabs(lo - 0.335425) < 1e-5 && fabs(hi - 0.864575) < 1e-5, "range match %g %g", lo, hi);
        float u[3] = {0, 0.5f, 1};
        et_soft_calibrate(u, 3, lo, hi);
        double m = (u[0] + u[1] + u[2]) / 3, v = ((u[0] - m) * (u[0] - m) + (u[1] - m) * (u[1] - m) + (u[2] - m) * (u[2] - m)) / 3;
        CHECK(fabs(m - 0.6) < 1e-6 && fabs(sqrt(v) - 0.216025) < 1e-5, "calibrated mean %g sd %g", m, sqrt(v));
        const float tc[3] = {0.3f, 0.3f, 0.3f};
        et_soft_range_match(tc, c3, 3, &lo, &hi);
        CHECK(fabs(lo - 0.6) < 1e-6 && fabs(hi - 0.6) < 1e-6, "constant targets -> mean %g %g", lo, hi);
    }
    et_error err = {0};
    const float y4[4] = {1, 0, 1, 0};
    const float bm_a[4] = {12.3f, 0.4f, 7.5f, 0.9f}, bm_b[4] = {12.3f, 3.1f, 7.5f, 0.9f};
    float o[4];
    int ncl = -1;
    et_soft_stats st;
    CHECK(et_soft_targets_ex(ET_SOFT_MEAN, ET_SNORM_NONE, 0.5, y4, bm_a, 4, 1, o, &ncl, &err) == ET_OK && ncl == 2,
          "clamped count %d", ncl);
    et_soft_target_stats(y4, o, 4, ncl, &st);
    CHECK(st.share_clamped == 0.5 && et_soft_targets_check(&st, ET_SOFT_MEAN, ET_SNORM_NONE, &err) == ET_OK,
          "half clamped is allowed: %g %s", st.share_clamped, err.msg);
    CHECK(et_soft_targets_ex(ET_SOFT_MEAN, ET_SNORM_NONE, 0.5, y4, bm_b, 4, 1, o, &ncl, &err) == ET_OK && ncl == 3,
          "clamped count %d", ncl);
    et_soft_target_stats(y4, o, 4, ncl, &st);
    CHECK(st.share_clamped == 0.75, "share %g", st.share_clamped);
    err.msg[0] = 0;
    CHECK(et_soft_targets_check(&st, ET_SOFT_MEAN, ET_SNORM_NONE, &err) == ET_ERR_ARG && strstr(err.msg, "75%") &&
              strstr(err.msg, "clamped") && strstr(err.msg, "--soft-norm rank"),
          "raw BM25 refused: %s", err.msg);
    CHECK(et_soft_targets_ex(ET_SOFT_MEAN, ET_SNORM_RANK, 0.5, y4, bm_b, 4, 1, o, &ncl, &err) == ET_OK && ncl == 0 &&
              fabsf(o[0] - 1) < 1e-6f && fabsf(o[1] - 1 / 3.f) < 1e-6f && fabsf(o[2] - 2 / 3.f) < 1e-6f && o[3] == 0,
          "rank-normalised BM25: %d clamped, %g %g %g %g", ncl, o[0], o[1], o[2], o[3]);
    et_soft_target_stats(y4, o, 4, ncl, &st);
    CHECK(et_soft_targets_check(&st, ET_SOFT_MEAN, ET_SNORM_RANK, &err) == ET_OK, "rank passes: %s", err.msg);

    const float y5[5] = {1, 0, 1, 0, 0}, t5[5] = {0.9f, 0.2f, 0.4f, 0.4f, 0.1f};
    et_soft_target_stats(y5, t5, 5, -1, &st);
    CHECK(st.n == 5 && st.n_pos == 2 && st.n_neg == 3 && st.share_clamped == 0, "counts");
    CHECK(fabs(st.mean_pos - 0.65) < 1e-6 && fabs(st.sd_pos - 0.25) < 1e-6, "pos %g %g", st.mean_pos, st.sd_pos);
    CHECK(fabs(st.mean_neg - 0.7 / 3) < 1e-6 && fabs(st.sd_neg - 0.124722) < 1e-5, "neg %g %g", st.mean_neg, st.sd_neg);
    CHECK(fabs(st.auc - 5.5 / 6) < 1e-9, "auc %g", st.auc);
    CHECK(et_soft_targets_check(&st, ET_SOFT_MEAN, ET_SNORM_RANK, &err) == ET_OK, "separating: %s", err.msg);
    /* not separating: the negatives' targets as high as the positives' (BM25's own look-alikes) */
    const float t5b[5] = {0.5f, 0.6f, 0.4f, 0.45f, 0.5f};
    et_soft_target_stats(y5, t5b, 5, -1, &st);
    CHECK(et_soft_targets_check(&st, ET_SOFT_MEAN, ET_SNORM_MINMAX, &err) == ET_ERR_ARG &&
              strstr(err.msg, "do not separate") && strstr(err.msg, "Fix"), "not separating: %s", err.msg);
    /* only positives: separation is not judged */
    const float y1[2] = {1, 1};
    et_soft_target_stats(y1, t5b, 2, -1, &st);
    CHECK(isnan(st.auc) && isnan(st.mean_neg) && et_soft_targets_check(&st, ET_SOFT_MEAN, ET_SNORM_RANK, &err) == ET_OK,
          "positives only");

    const float e5[5] = {3, 1, 2, 1, 1};
    double r[1];
    et_soft_expert_corr(y5, e5, 5, 1, r);
    CHECK(fabs(r[0] - 1.8 / sqrt(3.84)) < 1e-9, "corr %g", r[0]);
    const float c5[5] = {2, 2, 2, 2, 2};
    et_soft_expert_corr(y5, c5, 5, 1, r);
    CHECK(isnan(r[0]), "constant expert corr %g", r[0]);
}

/* Hand-computed losses on tiny inputs. */
static void test_loss_hand(void) {
    double scratch[256], L;
    et_loss_cfg cfg;
    et_loss_cfg_default(&cfg);
    /* B=1, G=1: Q=(1,0), P=(3,0) (cos 1), N=(0,5) (cos 0). CE = log(e^20 + e^0) - 20 = log1p(e^-20) */
    const float Q[2] = {1, 0}, P[2] = {3, 0}, N[2] = {0, 5}, NQ[2] = {0, 2};
    CHECK(et_loss_infonce(&cfg, Q, P, N, 1, 1, 2, NULL, NULL, NULL, scratch, &L, NULL) == ET_OK, "hand infonce");
    CHECK(fabs(L - log1p(exp(-20.0))) < 1e-15, "hand infonce: %.17g", L);
    /* CLP on it: NQ parallel to N -> pen 0; L = 0.9 * CE (mean and sum forms: sum = 1 - 1 = 0 too) */
    double pen;
    CHECK(et_loss_clp(&cfg, Q, P, N, NQ, NULL, 1, 1, 2, NULL, NULL, NULL, NULL, scratch, &pen, &L, NULL) == ET_OK,
          "hand clp");
    CHECK(fabs(L - 0.9 * log1p(exp(-20.0))) < 1e-15 && fabs(pen) < 1e-15, "hand clp: %.17g pen %.3g", L, pen);
    /* masked: plain CE, no (1-lambda) */
    const unsigned char m0[1] = {0};
    CHECK(et_loss_clp(&cfg, Q, P, N, NQ, m0, 1, 1, 2, NULL, NULL, NULL, NULL, scratch, &pen, &L, NULL) == ET_OK &&
              fabs(L - log1p(exp(-20.0))) < 1e-15,
          "hand clp masked: %.17g", L);
    /* NQ orthogonal to N: cos 0 -> pen 1: L = 0.9*CE + 0.1 */
    const float NQo[2] = {4, 0};
    CHECK(et_loss_clp(&cfg, Q, P, N, NQo, NULL, 1, 1, 2, NULL, NULL, NULL, NULL, scratch, &pen, &L, NULL) == ET_OK &&
              fabs(L - (0.9 * log1p(exp(-20.0)) + 0.1)) < 1e-15 && fabs(pen - 1) < 1e-15,
          "hand clp orthogonal: %.17g", L);
    /* cos MSE: pairs (1,0)/(3,0) cos 1, y 0.5 -> 0.25; (1,0)/(1,1) cos 1/sqrt2, y 0 -> 0.5. mean = 0.375 */
    const float Q2[4] = {1, 0, 1, 0}, P2[4] = {3, 0, 1, 1}, y2[2] = {0.5f, 0};
    float cs[2];
    CHECK(et_loss_cos_mse(&cfg, Q2, P2, y2, 2, 2, NULL, NULL, scratch, cs, &L, NULL) == ET_OK, "hand mse");
    CHECK(fabs(L - 0.375) < 1e-7 && fabsf(cs[1] - 0.70710678f) < 1e-7f, "hand mse: %.17g", L);

    /* accumulation and grad_scale: two calls accumulate; grad_scale multiplies */
    float g1[4] = {0}, g2[4] = {0};
    et_loss_cos_mse(&cfg, Q2, P2, y2, 2, 2, g1, NULL, scratch, NULL, &L, NULL);
    et_loss_cos_mse(&cfg, Q2, P2, y2, 2, 2, g1, NULL, scratch, NULL, &L, NULL);
    cfg.grad_scale = 0.25;
    double L2;
    et_loss_cos_mse(&cfg, Q2, P2, y2, 2, 2, g2, NULL, scratch, NULL, &L2, NULL);
    CHECK(L2 == L, "grad_scale must not scale the loss");
    for (int i = 0; i < 4; i++) CHECK(fabsf(g1[i] * 0.125f - g2[i]) <= 1e-7f, "accumulate/scale %d", i);

    /* errors */
    et_loss_cfg_default(&cfg);
    et_error err = {0};
    const float Qn[2] = {1, NAN};
    CHECK(et_loss_infonce(&cfg, Qn, P, N, 1, 1, 2, NULL, NULL, NULL, scratch, &L, &err) == ET_ERR_NUMERIC &&
              strstr(err.msg, "Q row 0"),
          "NaN input: %s", err.msg);
    cfg.symmetric = 1;
    cfg.in_batch = 0;
    CHECK(et_loss_infonce(&cfg, Q, P, N, 1, 1, 2, NULL, NULL, NULL, scratch, &L, &err) == ET_ERR_ARG, "sym/in_batch");
    et_loss_cfg_default(&cfg);
    CHECK(et_loss_clp(&cfg, Q, P, NULL, NULL, NULL, 1, 0, 2, NULL, NULL, NULL, NULL, scratch, NULL, &L, &err) ==
              ET_ERR_ARG, "clp G=0");
    CHECK(et_loss_infonce(&cfg, Q, P, N, 0, 1, 2, NULL, NULL, NULL, scratch, &L, &err) == ET_ERR_ARG, "B=0");
}

/* The list form of the soft losses: et_soft_list_weights and et_loss_soft_infonce against PyTorch
 * (tests/fixtures/loss/soft_infonce.txt, tools/gen_soft_infonce_fixture.py), one-hot = InfoNCE, finite differences,
 * refused weights. */
static void test_soft_infonce(void) {
    fx_file f;
    if (!fx_load(&f, "tests/fixtures/loss/soft_infonce.txt")) {
        et_test_fails++;
        return;
    }
    int B = (int)fx_get(&f, "B", 1)[0], G = (int)fx_get(&f, "G", 1)[0], C = (int)fx_get(&f, "C", 1)[0];
    double tau = fx_get(&f, "tau", 1)[0];
    float *Q = fx_floats(&f, "Q", B * C), *P = fx_floats(&f, "P", B * C), *N = fx_floats(&f, "N", B * G * C);
    float *yhat = fx_floats(&f, "yhat", B * (1 + G));
    float *W = malloc(sizeof(float) * (size_t)B * (1 + G));
    et_soft_list_weights(yhat, B, G, tau, W);
    double e = rel_err(W, fx_get(&f, "W", B * (1 + G)), B * (1 + G));
    CHECK(e < 1e-6, "et_soft_list_weights vs torch.softmax: rel err %.2e", e);
    double *scratch = malloc(sizeof(double) * et_loss_scratch_doubles(B, G, C));
    float *dQ = calloc((size_t)B * C, 4), *dP = calloc((size_t)B * C, 4), *dN = calloc((size_t)B * G * C, 4);
    et_error err = {0};
    for (int inb = 1; inb >= 0; inb--) {
        et_loss_cfg cfg;
        et_loss_cfg_default(&cfg);
        cfg.tau = tau;
        cfg.in_batch = inb;
        memset(dQ, 0, 4 * (size_t)B * C); memset(dP, 0, 4 * (size_t)B * C); memset(dN, 0, 4 * (size_t)B * G * C);
        double L = NAN;
        CHECK(et_loss_soft_infonce(&cfg, Q, P, N, W, B, G, C, dQ, dP, dN, scratch, &L, &err) == ET_OK, "soft_infonce: %s", err.msg);
        const char *nm = inb ? "inbatch" : "perquery";
        char key[64];
        snprintf(key, sizeof key, "%s.loss", nm);
        double ref = fx_get(&f, key, 1)[0];
        CHECK(fabs(L - ref) <= 1e-5 * fabs(ref), "soft_infonce %s loss %.10g, torch %.10g", nm, L, ref);
        snprintf(key, sizeof key, "%s.dQ", nm);
        double eq = rel_err(dQ, fx_get(&f, key, B * C), B * C);
        snprintf(key, sizeof key, "%s.dP", nm);
        double ep = rel_err(dP, fx_get(&f, key, B * C), B * C);
        snprintf(key, sizeof key, "%s.dN", nm);
        double en = rel_err(dN, fx_get(&f, key, B * G * C), B * G * C);
        CHECK(eq < 1e-5 && ep < 1e-5 && en < 1e-5, "soft_infonce %s grads vs torch: dQ %.2e dP %.2e dN %.2e", nm, eq, ep, en);
        printf("soft_infonce %s: loss %.8f (torch %.8f), grads max rel err %.2e\n", nm, L, ref, fmax(eq, fmax(ep, en)));
        problem pb = {L_SOFT, cfg, B, G, C, Q, P, N, NULL, NULL, W, NULL, scratch};
        double fd = fd_check(&pb, inb ? "soft_infonce in-batch" : "soft_infonce per query");
        CHECK(fd < 2e-2, "soft_infonce %s finite differences: %.2e", nm, fd);
    }
    /* one-hot targets: exactly InfoNCE (and sentence-transformers MNRL in torch) */
    float *W1 = calloc((size_t)B * (1 + G), sizeof(float));
    for (int i = 0; i < B; i++) W1[i * (1 + G)] = 1;
    et_loss_cfg cfg;
    et_loss_cfg_default(&cfg);
    cfg.tau = tau;
    double Ls = NAN, Li = NAN;
    float *gQ = calloc((size_t)B * C, 4), *gQ2 = calloc((size_t)B * C, 4), *gN = calloc((size_t)B * G * C, 4),
          *gN2 = calloc((size_t)B * G * C, 4);
    CHECK(et_loss_soft_infonce(&cfg, Q, P, N, W1, B, G, C, gQ, NULL, gN, scratch, &Ls, &err) == ET_OK, "one-hot");
    CHECK(et_loss_infonce(&cfg, Q, P, N, B, G, C, gQ2, NULL, gN2, scratch, &Li, &err) == ET_OK, "infonce");
    double mref = fx_get(&f, "mnrl.loss", 1)[0];
    CHECK(fabs(Ls - Li) <= 1e-12 * fabs(Li) && fabs(Ls - mref) <= 1e-5 * mref, "one-hot soft_infonce %.12g, infonce %.12g, torch MNRL %.12g", Ls, Li, mref);
    int same = 1;
    for (int i = 0; i < B * C; i++) same &= gQ[i] == gQ2[i];
    for (int i = 0; i < B * G * C; i++) same &= gN[i] == gN2[i];
    CHECK(same, "one-hot soft_infonce gradients equal infonce's");
    /* refused weights */
    float Wb[4] = {0.5f, 0.2f, 0.2f, 0.2f};
    CHECK(et_loss_soft_infonce(&cfg, Q, P, N, Wb, 1, 3, C, NULL, NULL, NULL, scratch, &Ls, &err) == ET_ERR_ARG &&
              strstr(err.msg, "sum to"), "weights not summing to 1 refused (%s)", err.msg);
    float Wn[4] = {1.2f, -0.2f, 0.0f, 0.0f};
    CHECK(et_loss_soft_infonce(&cfg, Q, P, N, Wn, 1, 3, C, NULL, NULL, NULL, scratch, &Ls, &err) == ET_ERR_NUMERIC,
          "negative weight refused (%s)", err.msg);
    cfg.symmetric = 1;
    CHECK(et_loss_soft_infonce(&cfg, Q, P, N, W, B, G, C, NULL, NULL, NULL, scratch, &Ls, &err) == ET_ERR_ARG, "symmetric refused");
    /* weights: shift-invariant, the tie in the fixture gets equal mass, rows sum to 1 */
    float y2[4] = {1.0f, 0.875f, 0.875f, 0.0f}, y3[4] = {11.0f, 10.875f, 10.875f, 10.0f}, w2[4], w3[4];
    et_soft_list_weights(y2, 1, 3, 0.05, w2);
    et_soft_list_weights(y3, 1, 3, 0.05, w3);
    double sum = w2[0] + w2[1] + w2[2] + w2[3];
    CHECK(fabs(w2[0] - w3[0]) < 1e-6 && w2[1] == w2[2] && fabs(sum - 1) < 1e-6 &&
              fabs(w2[0] / w2[1] - exp(0.125 / 0.05)) < 1e-4, "weights: %g %g %g %g", w2[0], w2[1], w2[2], w2[3]);
    free(W); free(W1); free(scratch); free(dQ); free(dP); free(dN); free(gQ); free(gQ2); free(gN); free(gN2);
    free(Q); free(P); free(N); free(yhat);
    fx_free(&f);
}

/* et_loss_cfg.exclude (known false negatives out of the softmax) against PyTorch (tests/fixtures/loss/exclude.txt,
 * tools/gen_loss_exclude_fixture.py: masked_fill(-inf) before the softmax), finite differences of each backward with
 * excluded entries, an all-zero matrix = NULL bit for bit, and an excluded target refused. */
static void test_exclude(void) {
    fx_file f;
    if (!fx_load(&f, "tests/fixtures/loss/exclude.txt")) {
        et_test_fails++;
        return;
    }
    int B = (int)fx_get(&f, "B", 1)[0], G = (int)fx_get(&f, "G", 1)[0], C = (int)fx_get(&f, "C", 1)[0];
    double tau = fx_get(&f, "tau", 1)[0], lam = fx_get(&f, "lambda", 1)[0];
    int nc = B + B * G;
    float *Q = fx_floats(&f, "Q", B * C), *P = fx_floats(&f, "P", B * C), *N = fx_floats(&f, "N", B * G * C),
          *NQ = fx_floats(&f, "NQ", B * G * C), *W = fx_floats(&f, "W", B * (1 + G));
    const double *xd = fx_get(&f, "X", B * nc), *xhd = fx_get(&f, "Xh", B * nc);
    unsigned char *X = malloc((size_t)B * nc), *Xh = malloc((size_t)B * nc), *Z = calloc((size_t)B * nc, 1);
    for (int i = 0; i < B * nc; i++) { X[i] = xd[i] != 0; Xh[i] = xhd[i] != 0; }
    double *scratch = malloc(sizeof(double) * et_loss_scratch_doubles(B, G, C));
    float *g[4], *h[4];
    for (int k = 0; k < 4; k++) { g[k] = calloc((size_t)B * G * C, 4); h[k] = calloc((size_t)B * G * C, 4); }
    static const struct { const char *name; kind_t kind; int sym, inb, soft; } cases[] = {
        {"infonce", L_INFONCE, 0, 1, 0}, {"infonce_sym", L_INFONCE, 1, 1, 0}, {"infonce_pq", L_INFONCE, 0, 0, 0},
        {"soft", L_SOFT, 0, 1, 1},       {"clp", L_CLP, 0, 1, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        problem pb = {cases[c].kind, {0}, B, G, C, Q, P, N, NQ, NULL, W, NULL, scratch};
        et_loss_cfg_default(&pb.cfg);
        pb.cfg.tau = tau;
        pb.cfg.lambda = lam;
        pb.cfg.symmetric = cases[c].sym;
        pb.cfg.in_batch = cases[c].inb;
        pb.cfg.exclude = cases[c].soft ? X : Xh;
        for (int k = 0; k < 4; k++) memset(g[k], 0, 4 * (size_t)B * G * C);
        double L = run(&pb, g[0], g[1], g[2], cases[c].kind == L_CLP ? g[3] : NULL);
        char key[64];
        snprintf(key, sizeof key, "%s.loss", cases[c].name);
        double ref = fx_get(&f, key, 1)[0], worst = 0;
        static const char *gn[4] = {"dQ", "dP", "dN", "dNQ"};
        int rows[4] = {B, B, B * G, B * G};
        for (int k = 0; k < 4; k++) {
            snprintf(key, sizeof key, "%s.%s", cases[c].name, gn[k]);
            double e = rel_err(g[k], fx_get(&f, key, rows[k] * C), rows[k] * C);
            if (e > worst) worst = e;
        }
        CHECK(fabs(L - ref) <= 1e-5 * fabs(ref) && worst < 1e-5, "exclude %s: loss %.10g (torch %.10g), grads rel err %.2e",
              cases[c].name, L, ref, worst);
        printf("exclude %s: loss %.8f (torch %.8f), grads max rel err %.2e\n", cases[c].name, L, ref, worst);
        snprintf(key, sizeof key, "exclude %s", cases[c].name);
        double fd = fd_check(&pb, key);
        CHECK(fd < 2e-2, "exclude %s finite differences: %.2e", cases[c].name, fd);
        /* the exclusions matter here, and an all-zero matrix is NULL bit for bit */
        pb.cfg.exclude = NULL;
        for (int k = 0; k < 4; k++) memset(g[k], 0, 4 * (size_t)B * G * C);
        double L0 = run(&pb, g[0], g[1], g[2], cases[c].kind == L_CLP ? g[3] : NULL);
        pb.cfg.exclude = Z;
        for (int k = 0; k < 4; k++) memset(h[k], 0, 4 * (size_t)B * G * C);
        double Lz = run(&pb, h[0], h[1], h[2], cases[c].kind == L_CLP ? h[3] : NULL);
        int same = L0 == Lz;
        for (int k = 0; k < 4; k++) same &= !memcmp(g[k], h[k], 4 * (size_t)B * G * C);
        CHECK(same && fabs(L0 - L) > 1e-3, "exclude %s: zero matrix %.17g vs NULL %.17g (bits %s), masked %.6g", cases[c].name,
              Lz, L0, same ? "equal" : "differ", L);
    }
    /* a target may not be excluded */
    et_loss_cfg cfg;
    et_loss_cfg_default(&cfg);
    et_error err = {0};
    double L;
    memcpy(Z, X, (size_t)B * nc);
    Z[1 * nc + 1] = 1; /* query 1's own positive */
    cfg.exclude = Z;
    CHECK(et_loss_infonce(&cfg, Q, P, N, B, G, C, NULL, NULL, NULL, scratch, &L, &err) == ET_ERR_ARG &&
              strstr(err.msg, "query 1's own positive"), "excluded positive refused (%s)", err.msg);
    cfg.exclude = Xh; /* row 2's own negative excluded: fine for infonce, refused where it carries soft weight */
    CHECK(et_loss_infonce(&cfg, Q, P, N, B, G, C, NULL, NULL, NULL, scratch, &L, &err) == ET_OK, "own negative excluded: %s", err.msg);
    CHECK(et_loss_soft_infonce(&cfg, Q, P, N, W, B, G, C, NULL, NULL, NULL, scratch, &L, &err) == ET_ERR_ARG &&
              strstr(err.msg, "own negative"), "excluded weighted negative refused (%s)", err.msg);
    for (int k = 0; k < 4; k++) { free(g[k]); free(h[k]); }
    free(X); free(Xh); free(Z); free(scratch); free(Q); free(P); free(N); free(NQ); free(W);
    fx_free(&f);
}

int main(void) {
    test_exclude();
    test_soft_infonce();
    test_soft_hand();
    test_soft_guards();
    test_loss_hand();
    test_fixture();
    return et_test_report("test_loss");
}
