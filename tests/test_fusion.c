/* test_fusion.c - the fusion rules on hand-computed pools, the candidate builder against brute force,
 * fusion learning on hand-made query sets whose best weight is known (worked out in the comments),
 * BM25's k1/b learned on a hand-made corpus whose best setting is known, and retrieval.json write / read /
 * validation errors. Speed-ups kept exact: the fit's choices and figures on a fixed random set equal those of the
 * implementation before them (golden values), equal the full-sort ranking's (et_fusion_rank) and do not depend on
 * the threads; the candidates built in blocks of queries equal those of a later block built alone; the progress
 * of the BM25 index, the candidates, the fit and the BM25 k1/b fit (counts, cancel). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "et_test.h"
#include "fileio.h"
#include "fusion.h"
#include "kernels.h"
#include "metrics.h"
#include "fx_fusion_random.h"

/* a pool of queries built by hand: each query gets n candidates (dense, bm25) */
typedef struct { double d, b; } dbp;

static void cands_make(et_fusion_cands *c, int nq, const int *nper, const dbp *const *pts) {
    memset(c, 0, sizeof *c);
    int64_t tot = 0;
    for (int q = 0; q < nq; q++) tot += nper[q];
    c->nq = nq;
    c->depth = ET_FUSION_DEPTH;
    c->off = malloc(sizeof(int64_t) * (size_t)(nq + 1));
    c->doc = malloc(sizeof(int32_t) * (size_t)tot);
    c->dense = malloc(sizeof(double) * (size_t)tot);
    c->bm25 = malloc(sizeof(double) * (size_t)tot);
    c->drank = malloc(sizeof(int32_t) * (size_t)tot);
    c->brank = malloc(sizeof(int32_t) * (size_t)tot);
    int64_t m = 0;
    for (int q = 0; q < nq; q++) {
        c->off[q] = m;
        for (int i = 0; i < nper[q]; i++, m++) {
            c->doc[m] = i;
            c->dense[m] = pts[q][i].d;
            c->bm25[m] = pts[q][i].b;
        }
        /* ranks within the pool (ties by doc index); BM25 lists only docs with score > 0 */
        for (int64_t u = c->off[q]; u < m; u++) {
            int rd = 1, rb = 1;
            for (int64_t v = c->off[q]; v < m; v++) {
                if (c->dense[v] > c->dense[u] || (c->dense[v] == c->dense[u] && v < u)) rd++;
                if (c->bm25[v] > c->bm25[u] || (c->bm25[v] == c->bm25[u] && v < u)) rb++;
            }
            c->drank[u] = rd;
            c->brank[u] = c->bm25[u] > 0 ? rb : 0;
        }
    }
    c->off[nq] = m;
}

static void rules(void) {
    /* one query, 4 docs: (dense, bm25) = d0 (0.9, 0), d1 (0.5, 4), d2 (0.1, 2), d3 (0.3, 1)
     * minmax: dense (x - 0.1) / 0.8 -> 1, 0.5, 0, 0.25;  bm25 x / 4 -> 0, 1, 0.5, 0.25
     * convex alpha 0.5: 0.5, 0.75, 0.25, 0.25 -> order d1 d0 d2 d3 (d2, d3 tie: lower index first)
     * convex alpha 0.9: 0.9, 0.55, 0.05, 0.25 -> d0 d1 d3 d2
     * zscore dense: mean 0.45, pop. sd sqrt(0.0875) = 0.295804; bm25: mean 1.75, sd sqrt(2.1875) = 1.479020
     *   d0: 1.521278, -1.183216; d1: 0.169031, 1.521278; d2: -1.183216, 0.169031; d3: -0.507093, -0.507093
     *   alpha 0.5 -> d0 0.169031, d1 0.845154, d2 -0.507093, d3 -0.507093 -> d1 d0 d2 d3
     * tmm (dense min -1, bm25 min 0): dense (x + 1) / 1.9 -> 1, 0.789474, 0.578947, 0.684211; bm25 /4
     *   alpha 0.8 -> 0.8, 0.831579, 0.563158, 0.597368 -> d1 d0 d3 d2
     * dense ranks: d0 1, d1 2, d3 3, d2 4; bm25 ranks (score > 0): d1 1, d2 2, d3 3, d0 none
     * rrf k 1 alpha 0.5: d0 0.5/2 = 0.25; d1 0.5/3 + 0.5/2 = 0.416667; d2 0.5/5 + 0.5/3 = 0.266667;
     *   d3 0.5/4 + 0.5/4 = 0.25 -> d1 d2 d0 d3 (d0, d3 tie at 0.25: lower index first)
     * rerank top 2 (d1, d2), alpha 1 (by the model): d1 (0.5) above d2 (0.1); then d3 (bm25 1), then d0
     *   (bm25 0, by cosine) -> d1 d2 d3 d0; alpha 0 -> the same order */
    dbp q0[] = {{0.9, 0}, {0.5, 4}, {0.1, 2}, {0.3, 1}};
    const dbp *pts[] = {q0};
    int nper[] = {4};
    et_fusion_cands c;
    cands_make(&c, 1, nper, pts);
    et_error err = {0};
    struct { et_fusion f; int order[4]; double top; } cs[] = {
        {{ET_FUSION_DENSE, ET_FUSION_MINMAX, 0, 60, 50, 100}, {0, 1, 3, 2}, 0.9},
        {{ET_FUSION_BM25, ET_FUSION_MINMAX, 0, 60, 50, 100}, {1, 2, 3, 0}, 4},
        {{ET_FUSION_CONVEX, ET_FUSION_MINMAX, 0.5, 60, 50, 100}, {1, 0, 2, 3}, 0.75},
        {{ET_FUSION_CONVEX, ET_FUSION_MINMAX, 0.9, 60, 50, 100}, {0, 1, 3, 2}, 0.9},
        {{ET_FUSION_CONVEX, ET_FUSION_ZSCORE, 0.5, 60, 50, 100}, {1, 0, 2, 3}, 0.845154},
        {{ET_FUSION_CONVEX, ET_FUSION_TMM, 0.8, 60, 50, 100}, {1, 0, 3, 2}, 0.831579},
        {{ET_FUSION_RRF, ET_FUSION_MINMAX, 0.5, 1, 50, 100}, {1, 2, 0, 3}, 0.416667},
        {{ET_FUSION_RERANK, ET_FUSION_MINMAX, 1.0, 60, 2, 100}, {1, 2, 3, 0}, 1.0},
        {{ET_FUSION_RERANK, ET_FUSION_MINMAX, 0.0, 60, 2, 100}, {1, 2, 3, 0}, 1.0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int32_t out[6];
        double sc[6];
        CHECK(et_fusion_rank(&cs[i].f, &c, 0, 6, out, sc, &err) == ET_OK, "case %zu: %s", i, err.msg);
        for (int j = 0; j < 4; j++) CHECK(out[j] == cs[i].order[j], "case %zu rank %d: doc %d, expected %d", i, j, out[j], cs[i].order[j]);
        CHECK(out[4] == -1 && out[5] == -1 && sc[5] == -INFINITY, "case %zu: padding", i);
        CHECK_NEAR(sc[0], cs[i].top, 1e-6);
    }
    /* bad parameters are refused, naming the field */
    et_fusion bad = {ET_FUSION_CONVEX, ET_FUSION_MINMAX, 1.5, 60, 50, 100};
    int32_t o1[1];
    CHECK(et_fusion_rank(&bad, &c, 0, 1, o1, NULL, &err) == ET_ERR_ARG && strstr(err.msg, "alpha"), "%s", err.msg);
    bad = (et_fusion){ET_FUSION_RERANK, ET_FUSION_MINMAX, 0.5, 60, 200, 100};
    CHECK(et_fusion_check(&bad, &err) == ET_ERR_ARG && strstr(err.msg, "top_n"), "%s", err.msg);
    bad = (et_fusion){ET_FUSION_RRF, ET_FUSION_MINMAX, 0.5, 0, 50, 100};
    CHECK(et_fusion_check(&bad, &err) == ET_ERR_ARG && strstr(err.msg, "'k'"), "%s", err.msg);
    et_fusion_cands_free(&c);
}

/* The candidate builder against brute force: random unit embeddings, a tiny BM25 corpus. */
static void builder(void) {
    const char *docs[] = {"the cat sat on the mat", "dogs chase cats", "a mat for the dog", "quantum physics",
                          "cat and dog and mat", "nothing here", "physics of cats", "the the the"};
    const char *qs[] = {"cat mat", "physics", "zebra"};
    int nd = 8, nq = 3, dim = 5, depth = 3;
    float D[8 * 5], Q[3 * 5];
    uint64_t st = 7;
    for (int i = 0; i < nd * dim; i++) D[i] = (float)et_test_frand(&st);
    for (int i = 0; i < nq * dim; i++) Q[i] = (float)et_test_frand(&st);
    for (int i = 0; i < nd; i++) { float s = sqrtf(et_dot(D + i * dim, D + i * dim, dim)); for (int j = 0; j < dim; j++) D[i * dim + j] /= s; }
    for (int i = 0; i < nq; i++) { float s = sqrtf(et_dot(Q + i * dim, Q + i * dim, dim)); for (int j = 0; j < dim; j++) Q[i * dim + j] /= s; }
    et_error err = {0};
    et_bm25 *bm = et_bm25_build(docs, nd, NULL, &err);
    CHECK(bm != NULL, "%s", err.msg);
    et_fusion_cands c;
    CHECK(et_fusion_cands_build(NULL, Q, D, nq, nd, dim, bm, qs, depth, NULL, &c, &err) == ET_OK, "%s", err.msg);
    for (int q = 0; q < nq; q++) {
        double bs[8], ds[8];
        et_bm25_score_all(bm, qs[q], bs, NULL);
        for (int i = 0; i < nd; i++) ds[i] = et_dot(Q + q * dim, D + i * dim, dim);
        /* expected pool: dense top 3, then BM25's top 3 with score > 0 not already in */
        int in[8] = {0}, n = 0, brk[8] = {0}, drk[8] = {0};
        for (int r = 0; r < depth; r++) {
            int best = -1;
            for (int i = 0; i < nd; i++) if (!drk[i] && (best < 0 || ds[i] > ds[best])) best = i;
            drk[best] = r + 1; in[best] = 1; n++;
        }
        for (int r = 0; r < depth; r++) {
            int best = -1;
            for (int i = 0; i < nd; i++) if (!brk[i] && bs[i] > 0 && (best < 0 || bs[i] > bs[best])) best = i;
            if (best < 0) break;
            brk[best] = r + 1;
            if (!in[best]) { in[best] = 1; n++; }
        }
        CHECK(c.off[q + 1] - c.off[q] == n, "query %d: pool of %lld, expected %d", q, (long long)(c.off[q + 1] - c.off[q]), n);
        for (int64_t u = c.off[q]; u < c.off[q + 1]; u++) {
            int doc = c.doc[u];
            CHECK(in[doc], "query %d: doc %d should not be in the pool", q, doc);
            CHECK_NEAR(c.dense[u], ds[doc], 1e-5);
            CHECK_NEAR(c.bm25[u], bs[doc], 1e-9);
            CHECK(c.drank[u] == drk[doc] && c.brank[u] == brk[doc], "query %d doc %d: ranks %d/%d, expected %d/%d", q, doc,
                  c.drank[u], c.brank[u], drk[doc], brk[doc]);
        }
    }
    /* "zebra" matches nothing: the pool is the dense top 3 only */
    CHECK(c.off[3] - c.off[2] == 3, "zebra pool %lld", (long long)(c.off[3] - c.off[2]));
    /* the dense rule reproduces the dense top-depth exactly */
    int32_t r[3];
    et_fusion fd = {ET_FUSION_DENSE, ET_FUSION_MINMAX, 1, 60, 50, depth};
    et_fusion_rank(&fd, &c, 0, 3, r, NULL, &err);
    for (int j = 0; j < 3; j++) CHECK(c.drank[c.off[0] + j] == j + 1 && r[j] == c.doc[c.off[0] + j], "dense rule rank %d", j);
    et_fusion_cands_free(&c);
    et_bm25_free(bm);
}

/* qrels: doc 0 of every query is the one relevant doc */
static void qrels_first(int nq, et_qrel *qr, int64_t *off) {
    for (int q = 0; q < nq; q++) { qr[q] = (et_qrel){q, 0, 1}; off[q] = q; }
    off[nq] = nq;
}

/* Learning where the answer is known. Each query's pool: R (relevant, doc 0), a rival, and F = (0, 0)
 * so that minmax is x / max on both sides.
 *   type L: R = (1, 0), B = (0.26087, 1): R first iff alpha > 1 / (2 - 0.26087) = 0.575
 *   type H: R = (0.4, 1), C = (1, 0):     R first iff alpha < 1 / (2 - 0.4) = 0.625
 * Half of each: convex-minmax is perfect (nDCG 1) only at alpha 0.6 of the 0.05 grid; 0.55 and 0.65
 * lose half the queries (R second: nDCG 1/log2(3)). Other families can be perfect too (e.g. RRF), so
 * the family rule must prefer the simplest, convex-minmax, on a tie. */
static void learn_known(void) {
    enum { NQ = 40 };
    dbp L[] = {{1, 0}, {0.26087, 1}, {0, 0}}, H[] = {{0.4, 1}, {1, 0}, {0, 0}};
    const dbp *pts[NQ];
    int nper[NQ];
    for (int q = 0; q < NQ; q++) { pts[q] = q % 2 ? H : L; nper[q] = 3; }
    et_fusion_cands c;
    cands_make(&c, NQ, nper, pts);
    et_qrel qr[NQ];
    int64_t off[NQ + 1];
    qrels_first(NQ, qr, off);
    et_error err = {0};
    et_fusion f;
    et_fusion_fit_report R;
    CHECK(et_fusion_fit(&c, qr, off, NULL, &f, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(R.learned && f.kind == ET_FUSION_CONVEX && f.norm == ET_FUSION_MINMAX, "chose %s/%s", et_fusion_kind_name(f.kind), et_fusion_norm_name(f.norm));
    CHECK_NEAR(f.alpha, 0.6, 1e-9);
    CHECK_NEAR(R.train_ndcg10, 1.0, 1e-12);
    CHECK_NEAR(R.cv_ndcg10, 1.0, 1e-12);
    CHECK_NEAR(R.bm25_ndcg10, 0.5 + 0.5 / log2(3.0), 1e-9); /* BM25: L has R second, H has R first */
    CHECK_NEAR(R.dense_ndcg10, 0.5 + 0.5 / log2(3.0), 1e-9);
    et_fusion_cands_free(&c);

    /* Only the model is right: R = (1, 0), B = (0.98, 1): R first iff alpha > 1 / 1.02 = 0.980 -> alpha 1. */
    dbp M[] = {{1, 0}, {0.98, 1}, {0, 0}};
    for (int q = 0; q < NQ; q++) pts[q] = M;
    cands_make(&c, NQ, nper, pts);
    CHECK(et_fusion_fit(&c, qr, off, NULL, &f, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(f.kind == ET_FUSION_CONVEX && f.norm == ET_FUSION_MINMAX && fabs(f.alpha - 1.0) < 1e-9, "chose %s %g",
          et_fusion_kind_name(f.kind), f.alpha);
    et_fusion_cands_free(&c);

    /* Only BM25 is right: R = (0, 1), B = (1, 0.98): R first iff alpha < 0.02 / 1.02 -> alpha 0. */
    dbp Bq[] = {{0, 1}, {1, 0.98}, {0, 0}};
    for (int q = 0; q < NQ; q++) pts[q] = Bq;
    cands_make(&c, NQ, nper, pts);
    CHECK(et_fusion_fit(&c, qr, off, NULL, &f, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(f.kind == ET_FUSION_CONVEX && f.norm == ET_FUSION_MINMAX && fabs(f.alpha) < 1e-9, "chose %s %g", et_fusion_kind_name(f.kind), f.alpha);
    et_fusion_cands_free(&c);

    /* A flat optimum: type L alone is perfect for every alpha > 0.575. The data cannot tell 0.6 from 1,
     * so the prior decides: the point nearest the default weight, 0.6. */
    for (int q = 0; q < NQ; q++) pts[q] = L;
    cands_make(&c, NQ, nper, pts);
    CHECK(et_fusion_fit(&c, qr, off, NULL, &f, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(f.kind == ET_FUSION_CONVEX && f.norm == ET_FUSION_MINMAX && fabs(f.alpha - 0.6) < 1e-9, "chose %s %g", et_fusion_kind_name(f.kind), f.alpha);
    /* ... with another prior (e.g. a fusion learned earlier on more queries), the data still cannot tell: the prior's
     * weight 0.8 is kept. A prior in another family that can be perfect too keeps its family and moves to the nearest
     * perfect point, by weight first: RRF puts R (dense rank 1, no BM25 match) above B (dense 2, BM25 1) iff
     * a/(k+1) > a/(k+2) + (1-a)/(k+1), i.e. k + 2 < a/(1-a): at a = 0.9, k < 7, so k 5 of the grid. */
    et_fusion_fit_opts fo;
    et_fusion_fit_opts_default(&fo);
    CHECK(et_fusion_parse("convex:alpha=0.8", &fo.prior, &err) == ET_OK, "%s", err.msg);
    CHECK(et_fusion_fit(&c, qr, off, &fo, &f, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(f.kind == ET_FUSION_CONVEX && f.norm == ET_FUSION_MINMAX && fabs(f.alpha - 0.8) < 1e-9, "prior 0.8: chose %s %g", et_fusion_kind_name(f.kind), f.alpha);
    CHECK(et_fusion_parse("rrf:k=60,alpha=0.9", &fo.prior, &err) == ET_OK, "%s", err.msg);
    CHECK(et_fusion_fit(&c, qr, off, &fo, &f, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(f.kind == ET_FUSION_RRF && fabs(f.alpha - 0.9) < 1e-9 && f.rrf_k == 5, "prior rrf: chose %s k %g alpha %g", et_fusion_kind_name(f.kind), f.rrf_k, f.alpha);
    et_fusion_cands_free(&c);

    /* The guard, on the fits above: a learned fusion beat the default's fixed per-query nDCG@10 by more than one
     * standard error; the prior-0.8 fit could not beat its perfect prior, so the prior is kept as it was. */
    for (int q = 0; q < NQ; q++) pts[q] = L;
    cands_make(&c, NQ, nper, pts);
    CHECK(et_fusion_parse("convex:alpha=0.8", &fo.prior, &err) == ET_OK, "%s", err.msg);
    CHECK(et_fusion_fit(&c, qr, off, &fo, &f, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(R.learned && R.prior_kept && f.kind == ET_FUSION_CONVEX && fabs(f.alpha - 0.8) < 1e-9, "perfect prior: kept %d, %g", R.prior_kept, f.alpha);
    CHECK_NEAR(R.gain_over_prior, 0.0, 1e-12);
    CHECK_NEAR(R.cv_ndcg10, 1.0, 1e-12);
    CHECK(et_fusion_fit(&c, qr, off, NULL, &f, &R, &err) == ET_OK, "%s", err.msg); /* prior 0.2 fails every L query */
    CHECK(R.learned && !R.prior_kept && fabs(f.alpha - 0.6) < 1e-9, "beaten prior: kept %d, %g", R.prior_kept, f.alpha);
    CHECK_NEAR(R.gain_over_prior, 1.0 - 1.0 / log2(3.0), 1e-9); /* R second -> first on every query, se 0 */
    CHECK_NEAR(R.gain_se, 0.0, 1e-12);
    et_fusion_cands_free(&c);

    /* Too few queries: the prior is kept and the report says it was not learned. */
    int few = ET_FUSION_MIN_QUERIES - 1;
    for (int q = 0; q < few; q++) pts[q] = M;
    cands_make(&c, few, nper, pts);
    qrels_first(few, qr, off);
    CHECK(et_fusion_fit(&c, qr, off, NULL, &f, &R, &err) == ET_OK, "%s", err.msg);
    et_fusion dflt = et_fusion_default();
    CHECK(!R.learned && f.kind == dflt.kind && f.norm == dflt.norm && f.alpha == dflt.alpha, "few queries: %s %g learned %d",
          et_fusion_kind_name(f.kind), f.alpha, R.learned);
    CHECK(isnan(R.cv_ndcg10), "cv of an unlearned fit is NaN");
    et_fusion_cands_free(&c);
}

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

static void retrieval_json(void) {
    char dir[] = "/tmp/et_test_fusion_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/retrieval.json", dir);
    et_error err = {0};
    et_retrieval_cfg r, back;
    int found = 1;
    /* no file: defaults, dense, not an error */
    CHECK(et_retrieval_load(dir, &r, &found, &err) == ET_OK && !found && r.mode == ET_MODE_DENSE, "missing file: %s", err.msg);
    /* round trip of every kind */
    et_fusion fs[] = {{ET_FUSION_CONVEX, ET_FUSION_ZSCORE, 0.35, 60, 50, 100}, {ET_FUSION_RRF, ET_FUSION_MINMAX, 0.2, 40, 50, 100},
                      {ET_FUSION_RERANK, ET_FUSION_MINMAX, 0.7, 60, 20, 100}, {ET_FUSION_CONVEX, ET_FUSION_TMM, 0.65, 60, 50, 100}};
    for (int i = 0; i < 4; i++) {
        et_retrieval_cfg_default(&r);
        r.mode = ET_MODE_HYBRID;
        r.bm25 = (et_bm25_opts){1.2, 0.75, 1};
        r.fusion = fs[i];
        CHECK(et_retrieval_save(dir, &r, NULL, "test", &err) == ET_OK, "%s", err.msg);
        CHECK(et_retrieval_load(dir, &back, &found, &err) == ET_OK && found, "%s", err.msg);
        CHECK(back.mode == ET_MODE_HYBRID && back.bm25.k1 == 1.2 && back.bm25.b == 0.75 && back.bm25.query_tf == 1, "bm25 back");
        CHECK(back.fusion.kind == fs[i].kind && back.fusion.alpha == fs[i].alpha && back.fusion.depth == 100, "kind %d back", i);
        if (fs[i].kind == ET_FUSION_CONVEX) CHECK(back.fusion.norm == fs[i].norm, "norm back");
        if (fs[i].kind == ET_FUSION_RRF) CHECK(back.fusion.rrf_k == 40, "k back");
        if (fs[i].kind == ET_FUSION_RERANK) CHECK(back.fusion.top_n == 20, "top_n back");
    }
    /* validation: each bad file is refused with the file name and the field in the message */
    struct { const char *text, *field; } bad[] = {
        {"not json", "not valid JSON"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"dense\"} {}", "bytes after the JSON"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"version\": 1, \"mode\": \"dense\"}", "'format'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 2, \"mode\": \"dense\"}", "'version'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1}", "'mode'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"fancy\"}", "'mode'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"hybrid\", \"fusion\": {\"kind\": \"convex\", \"norm\": \"minmax\", \"alpha\": 0.3}}", "'bm25'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"hybrid\", \"bm25\": {\"k1\": 0.9, \"b\": 0.4}}", "'fusion'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"bm25\", \"bm25\": {\"k1\": -1, \"b\": 0.4}}", "'bm25.k1'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"bm25\", \"bm25\": {\"k1\": 0.9, \"b\": 2}}", "'bm25.b'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"bm25\", \"bm25\": {\"k1\": 0.9, \"b\": 0.4, \"tokens\": \"stemmed\"}}", "'bm25.tokens'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"hybrid\", \"bm25\": {\"k1\": 0.9, \"b\": 0.4}, \"fusion\": {\"kind\": \"magic\"}}", "'fusion.kind'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"hybrid\", \"bm25\": {\"k1\": 0.9, \"b\": 0.4}, \"fusion\": {\"kind\": \"convex\", \"norm\": \"minmax\", \"alpha\": 1.5}}", "'fusion.alpha'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"hybrid\", \"bm25\": {\"k1\": 0.9, \"b\": 0.4}, \"fusion\": {\"kind\": \"convex\", \"alpha\": 0.5}}", "'fusion.norm'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"hybrid\", \"bm25\": {\"k1\": 0.9, \"b\": 0.4}, \"fusion\": {\"kind\": \"rrf\", \"alpha\": 0.5}}", "'fusion.k'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"hybrid\", \"bm25\": {\"k1\": 0.9, \"b\": 0.4}, \"fusion\": {\"kind\": \"rerank\", \"alpha\": 0.5, \"top_n\": 500, \"depth\": 100}}", "'fusion.top_n'"},
        {"{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"hybrid\", \"bm25\": {\"k1\": 0.9, \"b\": 0.4}, \"fusion\": {\"kind\": \"convex\", \"norm\": \"minmax\", \"alpha\": \"high\"}}", "'fusion.alpha'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i].text);
        err.msg[0] = 0;
        et_status s = et_retrieval_load(dir, &r, &found, &err);
        CHECK(s == ET_ERR_FORMAT && strstr(err.msg, path) && strstr(err.msg, bad[i].field), "case %zu: status %d, message '%s' (want %s)", i, s,
              err.msg, bad[i].field);
    }
    /* invalid UTF-8 */
    write_text(path, "{\"format\": \"embedtune-retrieval\xff\"}");
    CHECK(et_retrieval_load(dir, &r, &found, &err) == ET_ERR_FORMAT && strstr(err.msg, "UTF-8"), "%s", err.msg);
    /* unknown fields are ignored; dense mode needs neither bm25 nor fusion */
    write_text(path, "{\"format\": \"embedtune-retrieval\", \"version\": 1, \"mode\": \"dense\", \"future\": [1]}");
    CHECK(et_retrieval_load(dir, &r, &found, &err) == ET_OK && found && r.mode == ET_MODE_DENSE, "%s", err.msg);
    unlink(path);
    rmdir(dir);
}

/* progress recorder: calls, first and last (done, total), decreasing done seen, cancel at call number cancel_at */
typedef struct { int calls, bad, cancel_at; size_t first_done, last_done, total; } prog_rec;
static int prog_cb(void *user, size_t done, size_t total) {
    prog_rec *r = user;
    if (!r->calls) { r->first_done = done; r->total = total; }
    else if (done < r->last_done || total != r->total) r->bad++;
    r->last_done = done;
    r->calls++;
    return r->cancel_at && r->calls >= r->cancel_at;
}

/* BM25's k1 and b learned where the answer is known. Query i is the one term "wi"; doc 2i (relevant) holds it twice
 * among 98 filler tokens (length 100), doc 2i+1 holds it once among 2 (length 3); avgdl 51.5, the idf is the same for
 * both. score = tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)); at k1 0.9, b 0.4: long 1.173 < short 1.217, so the
 * relevant doc is second (nDCG@10 1/log2(3)). Only b 0.2 (any k1 of the grid) puts it first: the first such point in
 * grid order is k1 0.5, b 0.2 (long 1.157 > short 1.067). With every query alike the paired standard error is 0, so
 * the gain beats the se rule. With the short doc relevant instead the default is already perfect and must be kept,
 * and below ET_FUSION_MIN_QUERIES queries nothing is learned. */
static void bm25_fit_known(void) {
    enum { NQ = 10 };
    static char dtext[2 * NQ][1024], qtext[NQ][8];
    const char *docs[2 * NQ], *qs[NQ];
    for (int i = 0; i < NQ; i++) {
        int n = snprintf(dtext[2 * i], sizeof dtext[0], "w%d w%d", i, i);
        for (int k = 0; k < 98; k++) n += snprintf(dtext[2 * i] + n, sizeof dtext[0] - (size_t)n, " filler");
        snprintf(dtext[2 * i + 1], sizeof dtext[0], "w%d short text", i);
        snprintf(qtext[i], sizeof qtext[0], "w%d", i);
        docs[2 * i] = dtext[2 * i];
        docs[2 * i + 1] = dtext[2 * i + 1];
        qs[i] = qtext[i];
    }
    et_qrel qr[NQ];
    int64_t off[NQ + 1];
    for (int q = 0; q < NQ; q++) { qr[q] = (et_qrel){q, 2 * q, 1}; off[q] = q; }
    off[NQ] = NQ;
    et_error err = {0};
    et_bm25_opts o;
    et_bm25_fit_report R;
    CHECK(et_bm25_fit(NULL, docs, 2 * NQ, qs, NQ, qr, off, 1.0, NULL, &o, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(R.learned && o.k1 == 0.5 && o.b == 0.2 && o.query_tf == 0, "learned %d: k1 %g b %g (want 0.5, 0.2)", R.learned, o.k1, o.b);
    CHECK(fabs(R.ndcg10 - 1) < 1e-12 && fabs(R.default_ndcg10 - 1 / log2(3.0)) < 1e-9 && R.nqueries == NQ,
          "nDCG@10 %.6f (default %.6f)", R.ndcg10, R.default_ndcg10);
    /* independently: the chosen setting ranks every relevant doc first, the default none */
    et_bm25 *bm = et_bm25_build(docs, 2 * NQ, &o, &err), *bd = et_bm25_build(docs, 2 * NQ, NULL, &err);
    CHECK(bm && bd, "%s", err.msg);
    for (int q = 0; bm && bd && q < NQ; q++) {
        int32_t t1, t0;
        et_bm25_search(bm, qs[q], 1, &t1, NULL, &err);
        et_bm25_search(bd, qs[q], 1, &t0, NULL, &err);
        CHECK(t1 == 2 * q && t0 == 2 * q + 1, "query %d: top %d with the chosen setting, %d with the default", q, t1, t0);
    }
    et_bm25_free(bm);
    et_bm25_free(bd);
    /* the short doc relevant: the default is perfect already and is kept */
    for (int q = 0; q < NQ; q++) qr[q].d = 2 * q + 1;
    CHECK(et_bm25_fit(NULL, docs, 2 * NQ, qs, NQ, qr, off, 1.0, NULL, &o, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(!R.learned && o.k1 == 0.9 && o.b == 0.4 && fabs(R.default_ndcg10 - 1) < 1e-12, "default kept: learned %d k1 %g b %g", R.learned, o.k1, o.b);
    /* too few queries: the default, even where another setting is better */
    for (int q = 0; q < NQ; q++) qr[q].d = 2 * q;
    CHECK(et_bm25_fit(NULL, docs, 2 * NQ, qs, ET_FUSION_MIN_QUERIES - 1, qr, off, 1.0, NULL, &o, &R, &err) == ET_OK, "%s", err.msg);
    CHECK(!R.learned && o.k1 == 0.9 && o.b == 0.4 && R.best.b == 0.2, "few queries: learned %d k1 %g b %g", R.learned, o.k1, o.b);
    /* progress: grid points 0..36, one report per point, the same choice as without; a cancel at the third report
     * fails and leaves the outputs alone */
    {
        et_bm25_opts o2 = {0};
        et_bm25_fit_report R2;
        memset(&R2, 0, sizeof R2);
        prog_rec pr = {0};
        et_progress p = {prog_cb, &pr};
        CHECK(et_bm25_fit(NULL, docs, 2 * NQ, qs, NQ, qr, off, 1.0, &p, &o2, &R2, &err) == ET_OK, "%s", err.msg);
        CHECK(R2.learned && o2.k1 == 0.5 && o2.b == 0.2 && R2.ndcg10 == 1.0, "with progress: learned %d k1 %g b %g", R2.learned, o2.k1, o2.b);
        CHECK(pr.calls == ET_BM25_FIT_NK1 * ET_BM25_FIT_NB + 1 && pr.first_done == 0 &&
              pr.last_done == ET_BM25_FIT_NK1 * ET_BM25_FIT_NB && pr.total == ET_BM25_FIT_NK1 * ET_BM25_FIT_NB && !pr.bad,
              "bm25 fit progress: %d calls, %zu..%zu of %zu", pr.calls, pr.first_done, pr.last_done, pr.total);
        prog_rec pc = {0, 0, 3, 0, 0, 0};
        et_progress q = {prog_cb, &pc};
        et_bm25_opts o3 = {7, 7, 7};
        CHECK(et_bm25_fit(NULL, docs, 2 * NQ, qs, NQ, qr, off, 1.0, &q, &o3, NULL, &err) == ET_ERR_CANCELLED && pc.calls == 3 &&
              o3.k1 == 7 && strstr(err.msg, "2 of 36"), "bm25 fit cancel: %d after %d calls (%s)", err.code, pc.calls, err.msg);
    }
    CHECK(et_bm25_fit(NULL, docs, 2 * NQ, qs, NQ, qr, off, -1, NULL, &o, &R, &err) == ET_ERR_ARG && strstr(err.msg, "se_rule"), "%s", err.msg);
}

/* The guard's test: mean and standard error of per-query differences, worked out by hand.
 * 10 queries, 3 gain 0.4, 7 gain 0: mean 0.12, sample var 0.4^2 * 3 * 7 / (10 * 9) = 0.037333, se = sqrt(var / 10)
 * = 0.061101 -> clear at 1 se (0.12 > 0.0611), not at 2 se (0.1222).
 * 10 queries, 1 gains 0.4, 1 loses 0.1, 8 gain 0: mean 0.03, var (0.37^2 + 0.13^2 + 8 * 0.03^2) / 9 = 0.01810,
 * se 0.042544 -> not clear: a single query's gain on 10 is noise (this is what stops 8 dev queries from replacing
 * the prior). */
static void gain_rule(void) {
    double x[10] = {0}, y[10] = {0}, se;
    x[0] = x[4] = x[9] = 0.4;
    double g = et_fusion_paired_gain(x, y, 10, &se);
    CHECK_NEAR(g, 0.12, 1e-12);
    CHECK_NEAR(se, sqrt(0.16 * 21.0 / 90.0 / 10.0), 1e-12);
    CHECK(et_fusion_gain_clear(g, se, 1.0) && !et_fusion_gain_clear(g, se, 2.0), "3 of 10 gain 0.4: g %g se %g", g, se);
    double u[10] = {0}, v[10] = {0};
    u[2] = 0.9; v[2] = 0.5; /* +0.4 */
    u[7] = 0.2; v[7] = 0.3; /* -0.1 */
    g = et_fusion_paired_gain(u, v, 10, &se);
    CHECK_NEAR(g, 0.03, 1e-12);
    CHECK_NEAR(se, sqrt((0.37 * 0.37 + 0.13 * 0.13 + 8 * 0.03 * 0.03) / 9.0 / 10.0), 1e-12);
    CHECK(!et_fusion_gain_clear(g, se, 1.0) && et_fusion_gain_clear(g, se, 0.0), "1 of 10: g %g se %g", g, se);
    CHECK(!et_fusion_gain_clear(0.0, 0.0, 0.0), "no gain is never clear");
    CHECK(isnan(et_fusion_paired_gain(u, v, 0, NULL)), "no queries: NaN");
}

/* et_fusion_transfers: a fusion learned with one model means the same with another when its ranking survives an
 * increasing affine map of the model's cosines. Two docs, (cos, bm25) = d0 (0.9, 0), d1 (0.8, 1); the map x -> 3x - 2
 * gives d0 0.7, d1 0.4. Min-max / z-score / RRF / rerank: unchanged by construction. tmm at weight 0.9 (theoretical
 * minimum -1): before, d0 = 0.9 * 1, d1 = 0.9 * 1.8 / 1.9 + 0.1 = 0.9526 -> d1 first; after, d1 = 0.9 * 1.4 / 1.7 + 0.1
 * = 0.8412 < 0.9 -> d0 first: the same tmm fusion ranks differently once the model's score range moves. */
static void transfer_rule(void) {
    dbp a[] = {{0.9, 0}, {0.8, 1}}, b[] = {{0.7, 0}, {0.4, 1}};
    const dbp *pa[1] = {a}, *pb[1] = {b};
    int n2[1] = {2};
    et_fusion_cands ca, cb;
    cands_make(&ca, 1, n2, pa);
    cands_make(&cb, 1, n2, pb);
    static const char *specs[] = {"convex:alpha=0.9", "convex:norm=zscore,alpha=0.9", "rrf:k=60,alpha=0.5",
                                  "rerank:top_n=2,alpha=0.9", "convex:norm=tmm,alpha=0.9"};
    et_error err = {0};
    for (int i = 0; i < 5; i++) {
        et_fusion f;
        CHECK(et_fusion_parse(specs[i], &f, &err) == ET_OK, "%s", err.msg);
        int32_t ra[2], rb[2];
        CHECK(et_fusion_rank(&f, &ca, 0, 2, ra, NULL, &err) == ET_OK && et_fusion_rank(&f, &cb, 0, 2, rb, NULL, &err) == ET_OK, "%s", err.msg);
        int same = ra[0] == rb[0] && ra[1] == rb[1];
        CHECK(same == et_fusion_transfers(&f), "%s: ranking %s under the affine map, transfers %d", specs[i], same ? "kept" : "changed",
              et_fusion_transfers(&f));
        if (i == 4) CHECK(ra[0] == 1 && rb[0] == 0, "tmm: d1 first before the map, d0 after (got %d, %d)", ra[0], rb[0]);
    }
    et_fusion d = et_fusion_default();
    CHECK(et_fusion_transfers(&d), "the default fusion transfers");
    et_fusion_cands_free(&ca);
    et_fusion_cands_free(&cb);
}

/* The candidates are built in blocks of 1024 queries: queries 1024.. built alone give the same pools (block
 * boundaries, offsets); progress at 0, after each block, cancel. The BM25 index's progress. */
static void builder_blocks(void) {
    enum { NQ = 2600, ND = 300, DIM = 8, DEPTH = 20 };
    static const char *words[] = {"alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"};
    static char dtext[ND][64], qtext[NQ][32];
    const char *docs[ND], *qs[NQ];
    uint64_t st = 99;
    for (int i = 0; i < ND; i++) {
        snprintf(dtext[i], sizeof dtext[i], "%s %s %s", words[(int)((et_test_frand(&st) + 1) * 6) % 12],
                 words[(int)((et_test_frand(&st) + 1) * 6) % 12], words[(int)((et_test_frand(&st) + 1) * 6) % 12]);
        docs[i] = dtext[i];
    }
    for (int i = 0; i < NQ; i++) {
        snprintf(qtext[i], sizeof qtext[i], "%s %s", words[(int)((et_test_frand(&st) + 1) * 6) % 12], i % 7 ? words[i % 12] : "nomatch");
        qs[i] = qtext[i];
    }
    float *D = malloc(sizeof(float) * ND * DIM), *Q = malloc(sizeof(float) * NQ * DIM);
    for (int i = 0; i < ND * DIM; i++) D[i] = et_test_frand(&st);
    for (int i = 0; i < NQ * DIM; i++) Q[i] = et_test_frand(&st);
    et_l2norm_rows(D, ND, DIM);
    et_l2norm_rows(Q, NQ, DIM);
    et_error err = {0};
    prog_rec pb = {0};
    et_progress bp = {prog_cb, &pb};
    et_bm25 *bm = et_bm25_build_p(docs, ND, NULL, &bp, &err);
    CHECK(bm != NULL, "%s", err.msg);
    CHECK(pb.calls >= 2 && pb.first_done == 0 && pb.last_done == ND && pb.total == ND && !pb.bad, "bm25 progress: %d calls, %zu..%zu of %zu",
          pb.calls, pb.first_done, pb.last_done, pb.total);
    prog_rec pbc = {0, 0, 1, 0, 0, 0};
    et_progress bpc = {prog_cb, &pbc};
    CHECK(et_bm25_build_p(docs, ND, NULL, &bpc, &err) == NULL && err.code == ET_ERR_CANCELLED, "bm25 cancel: %d", err.code);
    et_pool *pool = et_pool_create(2, &err);
    et_fusion_cands all, tail;
    prog_rec pc = {0};
    et_progress cp = {prog_cb, &pc};
    CHECK(et_fusion_cands_build(pool, Q, D, NQ, ND, DIM, bm, qs, DEPTH, &cp, &all, &err) == ET_OK, "%s", err.msg);
    CHECK(pc.calls == 1 + (NQ + 1023) / 1024 && pc.first_done == 0 && pc.last_done == NQ && !pc.bad, "candidates progress: %d calls, last %zu",
          pc.calls, pc.last_done);
    CHECK(et_fusion_cands_build(pool, Q + 1024 * DIM, D, NQ - 1024, ND, DIM, bm, qs + 1024, DEPTH, NULL, &tail, &err) == ET_OK, "%s", err.msg);
    int same = 1;
    for (int q = 0; q < NQ - 1024 && same; q++) {
        int64_t a = all.off[q + 1024], n = all.off[q + 1025] - a, b = tail.off[q];
        same = n == tail.off[q + 1] - b;
        for (int64_t u = 0; same && u < n; u++)
            same = all.doc[a + u] == tail.doc[b + u] && all.dense[a + u] == tail.dense[b + u] && all.bm25[a + u] == tail.bm25[b + u] &&
                   all.drank[a + u] == tail.drank[b + u] && all.brank[a + u] == tail.brank[b + u];
        CHECK(same, "query %d: the pool built in blocks differs from the one built alone", q + 1024);
    }
    prog_rec pcc = {0, 0, 2, 0, 0, 0};
    et_progress cpc = {prog_cb, &pcc};
    et_fusion_cands x;
    CHECK(et_fusion_cands_build(pool, Q, D, NQ, ND, DIM, bm, qs, DEPTH, &cpc, &x, &err) == ET_ERR_CANCELLED && x.off == NULL,
          "candidates cancel: %d", err.code);
    et_fusion_cands_free(&all);
    et_fusion_cands_free(&tail);
    et_pool_destroy(pool);
    et_bm25_free(bm);
    free(D); free(Q);
}

/* mean nDCG@10 of fusion f over c's queries by the full-sort ranking (et_fusion_rank) */
static double ref_ndcg(const et_fusion *f, const et_fusion_cands *c, const et_qrel *qr, const int64_t *off) {
    double sum = 0;
    for (int32_t q = 0; q < c->nq; q++) {
        int32_t top[10];
        et_fusion g = *f;
        g.depth = c->depth;
        if (et_fusion_rank(&g, c, q, 10, top, NULL, NULL)) return NAN;
        sum += et_ndcg_at_k(top, 10, qr + off[q], off[q + 1] - off[q], 10);
    }
    return c->nq ? sum / c->nq : NAN;
}

/* The fit on fixed random pools (fx_fusion_random.h; ties everywhere): what the implementation before the top-10
 * selection and the threaded grid chose and measured (golden rows printed by fusion.c of 5e7dfb0: seed, prior
 * (0 default, 1 rrf k 60 alpha 0.5, 2 default with se_rule 0), chosen kind, norm, alpha, k, top_n, cv, train, dense,
 * BM25 and prior nDCG@10, learned, prior_kept); the same with 3 threads; every figure equal to the full-sort
 * ranking's; the progress of the grid and its cancel. */
static void fit_golden(void) {
    static const struct { unsigned long long seed; int prior, kind, norm; double alpha, k; int top_n; double cv, train, dense, bm25, pr; int learned, kept; } G[] = {
    {11, 0, 2, 0, 0.20000000000000001, 60, 50, 0.067510220405271756, 0.067510220405271756, 0.079998491631032731, 0.063118817174340619, 0.067510220405271756, 1, 1},
    {11, 1, 3, 0, 0.5, 20, 50, 0.073274631334631107, 0.073414889253986912, 0.079998491631032731, 0.063118817174340619, 0.0666856772915604, 1, 0},
    {11, 2, 2, 1, 0.94999999999999996, 60, 50, 0.07824778051109002, 0.080891540338502849, 0.079998491631032731, 0.063118817174340619, 0.067510220405271756, 1, 0},
    {12, 0, 2, 0, 0.20000000000000001, 60, 50, 0.081384889821209033, 0.081384889821209033, 0.068083752728491417, 0.082901274506646402, 0.081384889821209033, 1, 1},
    {12, 1, 3, 0, 0.40000000000000002, 10, 50, 0.079656417573232566, 0.082169066475761804, 0.068083752728491417, 0.082901274506646402, 0.074429475010254972, 1, 0},
    {12, 2, 2, 0, 0.20000000000000001, 60, 50, 0.081384889821209033, 0.081384889821209033, 0.068083752728491417, 0.082901274506646402, 0.081384889821209033, 1, 1},
    {13, 0, 2, 0, 0.20000000000000001, 60, 50, 0.064410309765512638, 0.064410309765512638, 0.072102345026838072, 0.067635242669110071, 0.064410309765512638, 1, 1},
    {13, 1, 3, 0, 0.5, 60, 50, 0.065893244197704148, 0.065893244197704148, 0.072102345026838072, 0.067635242669110071, 0.065893244197704148, 1, 1},
    {13, 2, 2, 0, 0.20000000000000001, 60, 50, 0.064410309765512638, 0.064410309765512638, 0.072102345026838072, 0.067635242669110071, 0.064410309765512638, 1, 1},
    };
    static et_qrel qr[RQ * 3];
    static int64_t off[RQ + 1];
    et_error err = {0};
    et_pool *pool = et_pool_create(3, &err);
    CHECK(pool != NULL, "%s", err.msg);
    for (size_t i = 0; i < sizeof G / sizeof G[0]; i++) {
        et_fusion_cands c;
        fx_random_cands(&c, qr, off, G[i].seed);
        et_fusion_fit_opts fo;
        et_fusion_fit_opts_default(&fo);
        if (G[i].prior == 1) CHECK(et_fusion_parse("rrf:k=60,alpha=0.5", &fo.prior, &err) == ET_OK, "%s", err.msg);
        if (G[i].prior == 2) fo.se_rule = 0;
        et_fusion f, f3;
        et_fusion_fit_report R, R3;
        CHECK(et_fusion_fit(&c, qr, off, &fo, &f, &R, &err) == ET_OK, "%s", err.msg);
        CHECK((int)f.kind == G[i].kind && (int)f.norm == G[i].norm && f.alpha == G[i].alpha && f.rrf_k == G[i].k && f.top_n == G[i].top_n,
              "row %zu: chose %s %s alpha %g k %g top_n %d", i, et_fusion_kind_name(f.kind), et_fusion_norm_name(f.norm), f.alpha, f.rrf_k, f.top_n);
        CHECK_NEAR(R.cv_ndcg10, G[i].cv, 1e-12);
        CHECK_NEAR(R.train_ndcg10, G[i].train, 1e-12);
        CHECK_NEAR(R.dense_ndcg10, G[i].dense, 1e-12);
        CHECK_NEAR(R.bm25_ndcg10, G[i].bm25, 1e-12);
        CHECK_NEAR(R.prior_ndcg10, G[i].pr, 1e-12);
        CHECK(R.learned == G[i].learned && R.prior_kept == G[i].kept, "row %zu: learned %d kept %d", i, R.learned, R.prior_kept);
        /* the figures are the full-sort ranking's */
        CHECK_NEAR(R.train_ndcg10, ref_ndcg(&f, &c, qr, off), 1e-12);
        for (int fam = 0; fam < ET_FUSION_NFAMILIES; fam++) CHECK_NEAR(R.family[fam].train_ndcg10, ref_ndcg(&R.family[fam].best, &c, qr, off), 1e-12);
        /* threads change nothing; the progress counts the grid + 3 fixed rules */
        prog_rec pr = {0};
        fo.pool = pool;
        fo.progress = (et_progress){prog_cb, &pr};
        CHECK(et_fusion_fit(&c, qr, off, &fo, &f3, &R3, &err) == ET_OK, "%s", err.msg);
        CHECK(!memcmp(&f, &f3, sizeof f) && R3.cv_ndcg10 == R.cv_ndcg10 && R3.train_ndcg10 == R.train_ndcg10 &&
              R3.gain_over_prior == R.gain_over_prior && R3.gain_se == R.gain_se, "row %zu: 3 threads differ", i);
        for (int fam = 0; fam < ET_FUSION_NFAMILIES; fam++)
            CHECK(R3.family[fam].cv_ndcg10 == R.family[fam].cv_ndcg10 && !memcmp(&R3.family[fam].best, &R.family[fam].best, sizeof f),
                  "row %zu family %d: 3 threads differ", i, fam);
        size_t ng = (size_t)et_fusion_grid(c.depth, NULL, NULL, 0) + 3;
        CHECK(pr.calls >= 2 && pr.first_done == 0 && pr.last_done == ng && pr.total == ng && !pr.bad, "fit progress: %d calls, %zu of %zu",
              pr.calls, pr.last_done, pr.total);
        if (i == 0) {
            prog_rec pc = {0, 0, 2, 0, 0, 0};
            fo.progress = (et_progress){prog_cb, &pc};
            CHECK(et_fusion_fit(&c, qr, off, &fo, &f3, &R3, &err) == ET_ERR_CANCELLED && pc.calls == 2, "fit cancel: %d after %d calls", err.code, pc.calls);
        }
        et_fusion_cands_free(&c);
    }
    et_pool_destroy(pool);
}

int main(void) {
    gain_rule();
    transfer_rule();
    rules();
    builder();
    builder_blocks();
    learn_known();
    fit_golden();
    bm25_fit_known();
    retrieval_json();
    return et_test_report("test_fusion");
}
