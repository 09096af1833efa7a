/* test_metrics.c - hand-computed cases for every metric (the arithmetic is in the comments), golden
 * AUPRC / Spearman / Pearson values from sklearn + scipy (tools/gen_metrics_fixture.py), and the
 * exact top-k search against brute force. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "metrics.h"
#include "rng.h"
#include "et_test.h"

static void ir_cases(void) {
    /* Query 0 (binary): relevant {2, 5, 7}, doc 9 judged non-relevant (grade 0). R = 3.
     * ranking 5 1 2 9 3 7 0 4 6 8  -> relevant at ranks 1, 3, 6.
     *   DCG@10  = 1/log2(2) + 1/log2(4) + 1/log2(7) = 1 + 0.5 + 0.356207 = 1.856207
     *   IDCG@10 = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.630930 + 0.5 = 2.130930
     *   nDCG@10 = 0.8710785;  nDCG@3 = (1 + 0.5) / 2.130930 = 0.7039180
     *   AP@10 = (1/1 + 2/3 + 3/6) / 3 = 0.7222222;  AP@5 = (1 + 2/3) / 3 = 0.5555556 (divides by R=3, not min(R,5))
     *   RR@10 = 1;  P@5 = 2/5;  R@5 = 2/3;  R@10 = 1
     * Query 1 (graded): d0 = 3, d1 = 0, d4 = 1, d6 = 2 (R = 3). Ranking (only 5 retrieved): 4 0 3 6 1.
     *   DCG  = 1/log2(2) + 3/log2(3) + 0 + 2/log2(5) + 0 = 1 + 1.892789 + 0.861353 = 3.754142
     *   IDCG = grades sorted 3 2 1: 3/1 + 2/log2(3) + 1/log2(4) = 3 + 1.261860 + 0.5 = 4.761860
     *   nDCG@5 = nDCG@10 = nDCG@100 = 0.7883774 (k beyond the ranking changes nothing)
     *   AP@5 = (1/1 + 2/2 + 3/4) / 3 = 0.9166667; RR = 1; P@100 = 3/100 (divides by k); R@100 = 1
     * Query 2: judged but all grade 0 -> every metric 0, and it COUNTS in the averages.
     * Query 3: absent from the qrels -> skipped. */
    et_qrel qr[] = {
        {0, 2, 1}, {0, 5, 1}, {0, 7, 1}, {0, 9, 0},
        {1, 0, 3}, {1, 1, 0}, {1, 4, 1}, {1, 6, 2},
        {2, 3, 0},
    };
    int64_t off[] = {0, 4, 8, 9, 9};
    int32_t rk[4][10] = {
        {5, 1, 2, 9, 3, 7, 0, 4, 6, 8},
        {4, 0, 3, 6, 1, -1, -1, -1, -1, -1},
        {3, 0, 1, 2, 4, 5, 6, 7, 8, 9},
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
    };
    const et_qrel *j0 = qr, *j1 = qr + 4;
    double n0 = (1 + 1 / log2(4) + 1 / log2(7)) / (1 + 1 / log2(3) + 0.5);
    double n1 = (1 + 3 / log2(3) + 2 / log2(5)) / (3 + 2 / log2(3) + 0.5);
    CHECK_NEAR(n0, 0.8710785440, 1e-9);
    CHECK_NEAR(n1, 0.7883773915, 1e-9);
    CHECK_NEAR(et_ndcg_at_k(rk[0], 10, j0, 4, 10), n0, 1e-12);
    CHECK_NEAR(et_ndcg_at_k(rk[0], 10, j0, 4, 3), 1.5 / (1 + 1 / log2(3) + 0.5), 1e-12);
    CHECK_NEAR(et_ap_at_k(rk[0], 10, j0, 4, 10), (1 + 2.0 / 3 + 3.0 / 6) / 3, 1e-12);
    CHECK_NEAR(et_ap_at_k(rk[0], 10, j0, 4, 5), (1 + 2.0 / 3) / 3, 1e-12);
    CHECK_NEAR(et_rr_at_k(rk[0], 10, j0, 4, 10), 1.0, 0);
    CHECK_NEAR(et_precision_at_k(rk[0], 10, j0, 4, 5), 0.4, 1e-15);
    CHECK_NEAR(et_recall_at_k(rk[0], 10, j0, 4, 5), 2.0 / 3, 1e-15);
    CHECK_NEAR(et_recall_at_k(rk[0], 10, j0, 4, 10), 1.0, 0);
    /* a later first hit: ranking 1 9 2 ... -> RR = 1/3; RR@2 = 0 */
    int32_t late[] = {1, 9, 2, 5};
    CHECK_NEAR(et_rr_at_k(late, 4, j0, 4, 10), 1.0 / 3, 1e-15);
    CHECK_NEAR(et_rr_at_k(late, 4, j0, 4, 2), 0.0, 0);
    CHECK_NEAR(et_ndcg_at_k(rk[1], 5, j1, 4, 5), n1, 1e-12);
    CHECK_NEAR(et_ndcg_at_k(rk[1], 5, j1, 4, 100), n1, 1e-12);
    CHECK_NEAR(et_ap_at_k(rk[1], 5, j1, 4, 5), 2.75 / 3, 1e-12);
    CHECK_NEAR(et_precision_at_k(rk[1], 5, j1, 4, 100), 0.03, 1e-15);
    CHECK_NEAR(et_recall_at_k(rk[1], 5, j1, 4, 100), 1.0, 0);
    /* grade-0-only query */
    CHECK_NEAR(et_ndcg_at_k(rk[2], 10, qr + 8, 1, 10), 0.0, 0);
    CHECK_NEAR(et_ap_at_k(rk[2], 10, qr + 8, 1, 10), 0.0, 0);
    CHECK_NEAR(et_recall_at_k(rk[2], 10, qr + 8, 1, 10), 0.0, 0);
    /* averages over the 3 judged queries (query 3 skipped, query 2 counts as 0) */
    et_ir_summary m;
    double per[4];
    et_error err = {0};
    CHECK(!et_ir_evaluate(&rk[0][0], 4, 10, qr, off, &m, per, &err), "%s", err.msg);
    CHECK(m.nqueries == 3, "nqueries %d", m.nqueries);
    CHECK_NEAR(m.ndcg10, (n0 + n1 + 0) / 3, 1e-12);
    CHECK_NEAR(m.map10, ((1 + 2.0 / 3 + 0.5) / 3 + 2.75 / 3) / 3, 1e-12);
    CHECK_NEAR(m.mrr10, 2.0 / 3, 1e-12);
    CHECK_NEAR(m.p10, (0.3 + 0.3 + 0) / 3, 1e-12);
    CHECK_NEAR(m.recall100, 2.0 / 3, 1e-12);
    CHECK(isnan(per[3]) && fabs(per[1] - n1) < 1e-12, "per-query nDCG");
    /* unsorted qrels are refused */
    et_qrel badq[] = {{0, 5, 1}, {0, 2, 1}};
    int64_t boff[] = {0, 2};
    CHECK(et_ir_evaluate(&rk[0][0], 1, 10, badq, boff, &m, NULL, &err) == ET_ERR_ARG, "unsorted qrels accepted");

    /* ranking helper: ties by index, NaN last.
     * scores 0.5 0.9 0.5 0.9 NaN 0.1 -> 1 3 0 2 5 4 */
    float s[] = {0.5f, 0.9f, 0.5f, 0.9f, NAN, 0.1f};
    int32_t r[6];
    et_rank_scores(s, 6, 6, r);
    CHECK(r[0] == 1 && r[1] == 3 && r[2] == 0 && r[3] == 2 && r[4] == 5 && r[5] == 4, "rank %d %d %d %d %d %d", r[0], r[1],
          r[2], r[3], r[4], r[5]);
}

static void pair_cases(void) {
    /* AUPRC with ties: scores 0.9 0.8 0.8 0.7 0.7 0.7 0.1, labels 1 0 1 1 0 0 1 (P = 4).
     * thresholds (distinct scores, tied items enter together):
     *   >=0.9: tp 1 fp 0 -> R .25 P 1     -> .25 * 1     = .25
     *   >=0.8: tp 2 fp 1 -> R .50 P 2/3   -> .25 * 2/3   = .1666667
     *   >=0.7: tp 3 fp 3 -> R .75 P 1/2   -> .25 * 1/2   = .125
     *   >=0.1: tp 4 fp 3 -> R 1   P 4/7   -> .25 * 4/7   = .1428571
     *   AP = 0.6845238 (= sklearn average_precision_score) */
    float sc[] = {0.9f, 0.8f, 0.8f, 0.7f, 0.7f, 0.7f, 0.1f};
    float lb[] = {1, 0, 1, 1, 0, 0, 1};
    CHECK_NEAR(et_auprc(sc, lb, 7), 0.25 + 0.25 * 2 / 3.0 + 0.125 + 0.25 * 4 / 7.0, 1e-12);
    CHECK_NEAR(et_auprc(sc, lb, 7), 0.6845238095238095, 1e-12);
    float none[] = {0, 0, 0};
    CHECK(isnan(et_auprc(sc, none, 3)), "AUPRC without positives should be NaN");
    /* all scores tied: one threshold, AP = P/n = 4/7 */
    float flat[] = {1, 1, 1, 1, 1, 1, 1};
    CHECK_NEAR(et_auprc(flat, lb, 7), 4.0 / 7, 1e-12);

    /* Spearman with ties: x = 1 2 2 3 -> ranks 1 2.5 2.5 4; y = 1 3 2 4 -> ranks 1 3 2 4.
     * centred: dx = -1.5 0 0 1.5, dy = -1.5 .5 -.5 1.5; Sxy = 4.5, Sxx = 4.5, Syy = 5
     * rho = 4.5 / sqrt(22.5) = 0.9486833 (= scipy.stats.spearmanr) */
    double x[] = {1, 2, 2, 3}, y[] = {1, 3, 2, 4};
    CHECK_NEAR(et_spearman(x, y, 4), 4.5 / sqrt(22.5), 1e-12);
    double c[] = {2, 2, 2, 2};
    CHECK(isnan(et_spearman(x, c, 4)), "constant input should give NaN");
    /* Pearson: x = 1 2 3, y = 2 4 7: dx = -1 0 1, dy = -2.333 -.333 2.667; Sxy = 5, Sxx = 2,
     * Syy = 5.444+.111+7.111 = 12.6667; r = 5 / sqrt(25.3333) = 0.9933993 */
    double px[] = {1, 2, 3}, py[] = {2, 4, 7};
    CHECK_NEAR(et_pearson(px, py, 3), 5 / sqrt(2 * (38.0 / 3)), 1e-12);

    /* anisotropy: E = (1,0) (0,2) (1,1): cos01 = 0, cos02 = 1/sqrt2, cos12 = 2/(2 sqrt2) = 1/sqrt2
     * mean over the 3 pairs = sqrt2/3 = 0.4714045 (exact path: 3 pairs <= max_pairs) */
    float E[] = {1, 0, 0, 2, 1, 1};
    CHECK_NEAR(et_mean_random_cosine(E, 3, 2, 1000, 1), sqrt(2.0) / 3, 1e-6);
    /* random path on parallel rows: every pair has cosine 1 */
    float P[40];
    for (int i = 0; i < 20; i++) { P[2 * i] = (float)(i + 1); P[2 * i + 1] = (float)(2 * (i + 1)); }
    CHECK_NEAR(et_mean_random_cosine(P, 20, 2, 50, 7), 1.0, 1e-6);
    CHECK(isnan(et_mean_random_cosine(E, 1, 2, 10, 1)), "n < 2 should be NaN");
    /* sampled vs exact mean on random vectors */
    {
        enum { N = 300, D = 16 };
        static float R[N * D];
        et_rng g;
        et_rng_seed(&g, 3);
        for (int i = 0; i < N * D; i++) R[i] = (float)et_rng_normal(&g) + 1.0f; /* shared offset: E cos ~ 1/(1+1) */
        double exact = et_mean_random_cosine(R, N, D, 1000000, 0);
        double samp = et_mean_random_cosine(R, N, D, 20000, 5);
        CHECK_NEAR(samp, exact, 0.01);
        CHECK(exact > 0.4 && exact < 0.6, "offset vectors should be anisotropic, mean cos %g", exact);
        CHECK_NEAR(et_mean_random_cosine(R, N, D, 20000, 5), samp, 0); /* deterministic in the seed */
    }
    /* query-positive cosine: (1,0)·(1,1) -> 1/sqrt2; (3,4)·(3,4) -> 1; mean = 0.8535534 */
    float A[] = {1, 0, 3, 4}, B[] = {1, 1, 3, 4};
    CHECK_NEAR(et_mean_pair_cosine(A, B, 2, 2), (1 / sqrt(2.0) + 1) / 2, 1e-6);

    /* fusion. RRF (k = 60) of rankings [2 0 1] and [0 3 -]:
     *   doc0 = 1/62 + 1/61, doc1 = 1/63, doc2 = 1/61, doc3 = 1/62 */
    int32_t ra[] = {2, 0, 1}, rb[] = {0, 3, -1};
    const int32_t *rr[] = {ra, rb};
    double fo[4];
    et_error err = {0};
    CHECK(!et_fuse_rrf(rr, 2, 3, 4, 60, fo, &err), "%s", err.msg);
    CHECK_NEAR(fo[0], 1.0 / 62 + 1.0 / 61, 1e-15);
    CHECK_NEAR(fo[1], 1.0 / 63, 1e-15);
    CHECK_NEAR(fo[2], 1.0 / 61, 1e-15);
    CHECK_NEAR(fo[3], 1.0 / 62, 1e-15);
    /* min-max: s1 = 1 2 3 -> 0 .5 1 (w 1); s2 = 10 10 10 constant -> 0 (w 5); s3 = 0 4 2 -> 0 1 .5 (w 2)
     *   out = 0, .5 + 2, 1 + 1 = 0, 2.5, 2 */
    double s1[] = {1, 2, 3}, s2[] = {10, 10, 10}, s3[] = {0, 4, 2}, w[] = {1, 5, 2};
    const double *ss[] = {s1, s2, s3};
    CHECK(!et_fuse_minmax(ss, w, 3, 3, fo, &err), "%s", err.msg);
    CHECK_NEAR(fo[0], 0, 1e-15);
    CHECK_NEAR(fo[1], 2.5, 1e-15);
    CHECK_NEAR(fo[2], 2.0, 1e-15);
    double s4[] = {1, NAN, 2};
    const double *ss4[] = {s4};
    CHECK(et_fuse_minmax(ss4, NULL, 1, 3, fo, &err) == ET_ERR_NUMERIC, "NaN accepted in fusion");
}

/* golden values from sklearn / scipy */
static void golden(void) {
    const char *path = "tests/fixtures/data/metrics_golden.txt";
    FILE *f = fopen(path, "r");
    CHECK(f, "cannot open %s", path);
    if (!f) return;
    char kind[32];
    int ncase = 0;
    int c;
    while ((c = fgetc(f)) == '#') while ((c = fgetc(f)) != '\n' && c != EOF) {}
    ungetc(c, f);
    int n;
    while (fscanf(f, "%31s %d", kind, &n) == 2) {
        double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n), want;
        float *xf = malloc(sizeof(float) * n), *yf = malloc(sizeof(float) * n);
        for (int i = 0; i < n; i++) { if (fscanf(f, "%lf", &x[i]) != 1) CHECK(0, "parse"); xf[i] = (float)x[i]; }
        for (int i = 0; i < n; i++) { if (fscanf(f, "%lf", &y[i]) != 1) CHECK(0, "parse"); yf[i] = (float)y[i]; }
        if (fscanf(f, "%lf", &want) != 1) CHECK(0, "parse");
        double got = !strcmp(kind, "auprc") ? et_auprc(xf, yf, n) : !strcmp(kind, "spearman") ? et_spearman(x, y, n)
                                                                                              : et_pearson(x, y, n);
        CHECK(fabs(got - want) < 1e-9, "%s case %d (n=%d): %.12f vs reference %.12f", kind, ncase, n, got, want);
        ncase++;
        free(x); free(y); free(xf); free(yf);
    }
    fclose(f);
    CHECK(ncase >= 30, "only %d golden cases", ncase);
}

/* exact top-k vs brute force */
static void topk_cases(void) {
    et_error err = {0};
    et_pool *pool = et_pool_create(2, &err);
    CHECK(pool, "%s", err.msg);
    enum { D = 24, ND = 3000 };
    float *Dm = malloc(sizeof(float) * ND * D), *Q = malloc(sizeof(float) * 64 * D);
    et_rng g;
    et_rng_seed(&g, 11);
    for (int i = 0; i < ND * D; i++) Dm[i] = (float)et_rng_normal(&g);
    for (int i = 0; i < ND; i++) { /* normalise */
        float n = sqrtf(et_dot(Dm + i * D, Dm + i * D, D));
        for (int j = 0; j < D; j++) Dm[i * D + j] /= n;
    }
    /* duplicates -> exact ties: docs 10 and 2000 equal doc 500 */
    memcpy(Dm + 10 * D, Dm + 500 * D, sizeof(float) * D);
    memcpy(Dm + 2000 * D, Dm + 500 * D, sizeof(float) * D);
    for (int i = 0; i < 64 * D; i++) Q[i] = (float)et_rng_normal(&g);
    memcpy(Q, Dm + 500 * D, sizeof(float) * D); /* query 0 hits the tied triple */
    int nqs[] = {1, 3, 64};
    int ks[] = {1, 10, 100};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            int nq = nqs[a], k = ks[b];
            int32_t *oi = malloc(sizeof(int32_t) * nq * k);
            float *os = malloc(sizeof(float) * nq * k);
            CHECK(!et_topk_search(a == 1 ? NULL : pool, Q, Dm, nq, ND, D, k, oi, os, &err), "%s", err.msg);
            float *all = malloc(sizeof(float) * ND);
            int32_t *ref = malloc(sizeof(int32_t) * k);
            for (int q = 0; q < nq; q++) {
                for (int i = 0; i < ND; i++) all[i] = et_dot(Q + q * D, Dm + i * D, D);
                et_rank_scores(all, ND, k, ref);
                for (int r = 0; r < k; r++)
                    if (oi[q * k + r] != ref[r] || os[q * k + r] != all[ref[r]]) {
                        CHECK(0, "topk nq=%d k=%d q=%d rank %d: got %d (%g), want %d (%g)", nq, k, q, r, oi[q * k + r],
                              os[q * k + r], ref[r], all[ref[r]]);
                        break;
                    }
            }
            if (k >= 3) CHECK(oi[0] == 10 && oi[1] == 500 && oi[2] == 2000, "ties: %d %d %d", oi[0], oi[1], oi[2]);
            free(all); free(ref); free(oi); free(os);
        }
    /* k > nd: pad with -1 / -inf */
    int32_t oi[8];
    float os[8];
    CHECK(!et_topk_search(pool, Q, Dm, 1, 5, D, 8, oi, os, &err), "%s", err.msg);
    CHECK(oi[4] >= 0 && oi[5] == -1 && oi[7] == -1 && isinf(os[7]), "padding %d %d %g", oi[5], oi[7], os[7]);
    CHECK(et_topk_search(pool, Q, Dm, 1, 5, D, 0, oi, os, &err) == ET_ERR_ARG, "k = 0 accepted");
    free(Dm); free(Q);
    et_pool_destroy(pool);
}

int main(void) {
    ir_cases();
    pair_cases();
    golden();
    topk_cases();
    return et_test_report("test_metrics");
}
