/* test_bm25.c - BM25 against a hand-computed case, plus (if ../shared/eval-data or $ET_EVAL_DATA
 * exists) a reproduction of the BM25 reference table of docs/evaluation.md to 4 decimals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bm25.h"
#include "data.h"
#include "fileio.h"
#include "metrics.h"
#include "et_test.h"

/* Hand-computed BM25, k1 = 0.9, b = 0.4.
 * Corpus (tokens after lowercasing / splitting on non-[a-z0-9]):
 *   d0 "The cat sat."          -> the cat sat            |d0| = 3
 *   d1 "A cat, a CAT!"         -> a cat a cat            |d1| = 4
 *   d2 "dogs & cats-2"         -> dogs cats 2            |d2| = 3
 *   d3 ""                      ->                        |d3| = 0
 * N = 4, avgdl = 10/4 = 2.5.
 * df(cat) = 2 -> idf = ln(1 + (4 - 2 + 0.5)/(2 + 0.5)) = ln(2)          = 0.6931471805599453
 * df(dogs)= 1 -> idf = ln(1 + (4 - 1 + 0.5)/(1 + 0.5)) = ln(1 + 7/3) = ln(10/3) = 1.2039728043259361
 * knorm(d) = 0.9 * (1 - 0.4 + 0.4 * |d| / 2.5):
 *   d0: 0.9 * (0.6 + 0.48) = 0.972 ; d1: 0.9 * (0.6 + 0.64) = 1.116 ; d2: 0.972
 * query "cat":  d0 = ln2 * 1 * 1.9 / (1 + 0.972) = ln2 * 0.963488843813387 = 0.6678396
 *               d1 = ln2 * 2 * 1.9 / (2 + 1.116) = ln2 * 1.219512195121951 = 0.8453014
 *   ranking: d1, d0, then the zero-score docs in corpus order: d2, d3.
 * query "Dogs cat cat", default (distinct terms, "cat" once):
 *   d2 = ln(10/3) * 1.9 / 1.972 = 1.1600144; d1 = 0.8453014; d0 = 0.6678396 -> ranking d2, d1, d0, d3.
 * same query with query_tf = 1 ("cat" twice): d1 = 2 * 0.8453014 = 1.6906029, d0 = 2 * 0.6678396 = 1.3356792,
 *   d2 = 1.1600144 -> ranking d1, d0, d2. */
static void hand_case(void) {
    const char *docs[] = {"The cat sat.", "A cat, a CAT!", "dogs & cats-2", ""};
    et_error err = {0};
    et_bm25 *bm = et_bm25_build(docs, 4, NULL, &err);
    CHECK(bm, "%s", err.msg);
    if (!bm) return;
    CHECK(et_bm25_nterms(bm) == 7, "nterms %d (the cat sat a dogs cats 2)", et_bm25_nterms(bm));
    CHECK_NEAR(et_bm25_avgdl(bm), 2.5, 1e-12);
    CHECK_NEAR(et_bm25_idf(bm, "cat"), log(2.0), 1e-12);
    CHECK_NEAR(et_bm25_idf(bm, "dogs"), log(10.0 / 3.0), 1e-12);
    CHECK_NEAR(et_bm25_idf(bm, "zebra"), 0.0, 0);
    double s[4];
    CHECK(!et_bm25_score_all(bm, "cat", s, &err), "%s", err.msg);
    CHECK_NEAR(s[0], log(2.0) * 1.9 / 1.972, 1e-12);
    CHECK_NEAR(s[1], log(2.0) * 3.8 / 3.116, 1e-12);
    CHECK_NEAR(s[2], 0.0, 0);
    CHECK_NEAR(s[3], 0.0, 0);
    int32_t idx[6];
    double sc[6];
    CHECK(!et_bm25_search(bm, "CAT", 6, idx, sc, &err), "%s", err.msg);
    CHECK(idx[0] == 1 && idx[1] == 0 && idx[2] == 2 && idx[3] == 3 && idx[4] == -1 && idx[5] == -1,
          "ranking %d %d %d %d %d %d", idx[0], idx[1], idx[2], idx[3], idx[4], idx[5]);
    CHECK_NEAR(sc[0], 0.8453014, 1e-7);
    CHECK_NEAR(sc[1], 0.6678396, 1e-7);
    CHECK(isinf(sc[5]) && sc[5] < 0, "padding score %g", sc[5]);
    CHECK(!et_bm25_search(bm, "Dogs cat cat", 3, idx, sc, &err), "%s", err.msg);
    CHECK(idx[0] == 2 && idx[1] == 1 && idx[2] == 0, "ranking2 %d %d %d", idx[0], idx[1], idx[2]);
    CHECK_NEAR(sc[0], 1.1600144, 1e-7);
    CHECK_NEAR(sc[1], 0.8453014, 1e-7);
    {
        et_bm25_opts o = {0.9, 0.4, 1};
        et_bm25 *b2 = et_bm25_build(docs, 4, &o, &err);
        CHECK(b2 && !et_bm25_search(b2, "Dogs cat cat", 3, idx, sc, &err), "%s", err.msg);
        CHECK(idx[0] == 1 && idx[1] == 0 && idx[2] == 2, "ranking3 %d %d %d", idx[0], idx[1], idx[2]);
        CHECK_NEAR(sc[0], 1.6906029, 1e-7);
        CHECK_NEAR(sc[1], 1.3356792, 1e-7);
        CHECK_NEAR(sc[2], 1.1600144, 1e-7);
        CHECK_NEAR(et_bm25_score_text(b2, "dogs cat CAT", "A cat, a CAT!"), 1.6906029, 1e-7);
        et_bm25_free(b2);
    }
    /* pairs and free text agree with the index */
    const char *qs[] = {"cat", "dogs cat cat", "nothing"};
    int32_t di[] = {1, 2, 0};
    double ps[3];
    CHECK(!et_bm25_score_pairs(bm, qs, di, 3, ps, &err), "%s", err.msg);
    CHECK_NEAR(ps[0], log(2.0) * 3.8 / 3.116, 1e-12);
    CHECK_NEAR(ps[1], log(10.0 / 3.0) * 1.9 / 1.972, 1e-12); /* d2 has "dogs" only ("cats" != "cat") */
    CHECK_NEAR(ps[2], 0.0, 0);
    CHECK_NEAR(et_bm25_score_text(bm, "cat", "A cat, a CAT!"), ps[0], 1e-12);
    CHECK_NEAR(et_bm25_score_text(bm, "dogs cat cat", "dogs & cats-2"), ps[1], 1e-12);
    /* tie: two identical docs -> corpus order */
    const char *tdocs[] = {"x y", "y z", "x y"};
    et_bm25 *tb = et_bm25_build(tdocs, 3, NULL, &err);
    CHECK(tb && !et_bm25_search(tb, "x", 3, idx, sc, &err), "%s", err.msg);
    CHECK(idx[0] == 0 && idx[1] == 2 && idx[2] == 1 && sc[0] == sc[1], "tie order %d %d %d", idx[0], idx[1], idx[2]);
    et_bm25_free(tb);
    /* bad options */
    et_bm25_opts bad = {0.9, 1.5, 0};
    CHECK(!et_bm25_build(docs, 4, &bad, &err) && err.code == ET_ERR_ARG, "b = 1.5 accepted");
    et_bm25_free(bm);
}

/* docs/evaluation.md reference numbers */
typedef struct { const char *name; double ndcg10, map10, mrr10, r100; } baseline;
static const baseline BASE[] = {
    {"cranfield", 0.3104, 0.1965, 0.4763, 0.6795},
    {"cisi", 0.2304, 0.0345, 0.4493, 0.3573},
    {"cacm", 0.3462, 0.1621, 0.6245, 0.5504},
};

static void eval_sets(void) {
    const char *root = getenv("ET_EVAL_DATA");
    char dflt[] = "../shared/eval-data";
    if (!root || !*root) root = dflt;
    if (!et_dir_exists(root)) {
        printf("skip: BM25 baseline reproduction (no eval data at %s; set ET_EVAL_DATA)\n", root);
        return;
    }
    et_pool *pool = et_pool_create(0, NULL);
    for (size_t s = 0; s < sizeof BASE / sizeof BASE[0]; s++) {
        char dir[ET_PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", root, BASE[s].name);
        if (!et_dir_exists(dir)) { printf("skip: %s (absent)\n", dir); continue; }
        et_error err = {0};
        et_beir b;
        clock_t t0 = clock();
        if (et_beir_read(dir, NULL, &b, NULL, &err)) { CHECK(0, "%s", err.msg); continue; }
        et_bm25 *bm = et_bm25_build(b.doc_text, b.ndocs, NULL, &err);
        CHECK(bm, "%s", err.msg);
        if (!bm) { et_beir_free(&b); continue; }
        int32_t depth = 100;
        int32_t *rk = malloc(sizeof(int32_t) * (size_t)b.nqueries * depth);
        CHECK(!et_bm25_search_batch(pool, bm, b.query_text, b.nqueries, depth, rk, NULL, &err), "%s", err.msg);
        et_ir_summary m;
        CHECK(!et_ir_evaluate(rk, b.nqueries, depth, b.qrels, b.qrel_off, &m, NULL, &err), "%s", err.msg);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        printf("%-9s docs %5d queries %4d judged %4d | nDCG@10 %.4f MAP@10 %.4f MRR@10 %.4f R@100 %.4f "
               "(table %.4f %.4f %.4f %.4f) %.2fs cpu\n",
               BASE[s].name, b.ndocs, b.nqueries, m.nqueries, m.ndcg10, m.map10, m.mrr10, m.recall100, BASE[s].ndcg10,
               BASE[s].map10, BASE[s].mrr10, BASE[s].r100, secs);
        /* 4 decimals: the rounded values agree */
        CHECK_NEAR(round(m.ndcg10 * 1e4), round(BASE[s].ndcg10 * 1e4), 0);
        CHECK_NEAR(round(m.map10 * 1e4), round(BASE[s].map10 * 1e4), 0);
        CHECK_NEAR(round(m.mrr10 * 1e4), round(BASE[s].mrr10 * 1e4), 0);
        CHECK_NEAR(round(m.recall100 * 1e4), round(BASE[s].r100 * 1e4), 0);
        free(rk);
        et_bm25_free(bm);
        et_beir_free(&b);
    }
    et_pool_destroy(pool);
}

/* 100k synthetic docs: build + search stay fast, and search / score_all / score_pairs / score_text
 * agree with each other. Words are "w<zipf rank>" so the vocabulary is long-tailed like real text. */
static void scale_case(void) {
    enum { N = 100000, L = 40, NQ = 64 };
    uint64_t x = 88172645463325252ull;
    char *buf = malloc((size_t)N * L * 8);
    const char **docs = malloc(sizeof(char *) * N);
    char *w = buf;
    for (int d = 0; d < N; d++) {
        docs[d] = w;
        for (int t = 0; t < L; t++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            double u = (double)(x >> 11) / 9007199254740992.0;
            int r = (int)pow(50000.0, u); /* log-uniform rank ~ Zipf-ish */
            w += sprintf(w, "w%d ", r);
        }
        *w++ = 0;
    }
    et_error err = {0};
    clock_t t0 = clock();
    et_bm25 *bm = et_bm25_build(docs, N, NULL, &err);
    double tb = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(bm, "%s", err.msg);
    if (!bm) { free(buf); free(docs); return; }
    const char *qs[NQ];
    char qbuf[NQ][64];
    for (int q = 0; q < NQ; q++) { snprintf(qbuf[q], 64, "w%d w%d w%d", 3 + q, 100 + 7 * q, 2000 + 31 * q); qs[q] = qbuf[q]; }
    int32_t *idx = malloc(sizeof(int32_t) * NQ * 10);
    double *sc = malloc(sizeof(double) * NQ * 10);
    t0 = clock();
    CHECK(!et_bm25_search_batch(NULL, bm, qs, NQ, 10, idx, sc, &err), "%s", err.msg);
    double ts = (double)(clock() - t0) / CLOCKS_PER_SEC;
    double *all = malloc(sizeof(double) * N);
    for (int q = 0; q < NQ; q += 9) {
        CHECK(!et_bm25_score_all(bm, qs[q], all, &err), "%s", err.msg);
        int32_t best = 0;
        for (int d = 1; d < N; d++) if (all[d] > all[best]) best = d;
        CHECK(idx[q * 10] == best && all[best] == sc[q * 10], "q%d: top %d vs argmax %d", q, idx[q * 10], best);
        for (int r = 1; r < 10; r++) CHECK(sc[q * 10 + r] <= sc[q * 10 + r - 1], "not sorted");
        const char *qq[10];
        double ps[10];
        for (int r = 0; r < 10; r++) qq[r] = qs[q];
        CHECK(!et_bm25_score_pairs(bm, qq, idx + q * 10, 10, ps, &err), "%s", err.msg);
        for (int r = 0; r < 10; r++) {
            CHECK(fabs(ps[r] - sc[q * 10 + r]) < 1e-12, "pair score %g vs %g", ps[r], sc[q * 10 + r]);
            CHECK(fabs(et_bm25_score_text(bm, qs[q], docs[idx[q * 10 + r]]) - sc[q * 10 + r]) < 1e-12, "text score");
        }
    }
    printf("scale: %d docs x %d tokens, %d terms, %lld postings: build %.2fs, %d queries %.3fs cpu\n", N, L,
           et_bm25_nterms(bm), (long long)et_bm25_npostings(bm), tb, NQ, ts);
    free(all); free(idx); free(sc);
    et_bm25_free(bm);
    free(buf); free(docs);
}

/* et_bm25_match_spans: the query's terms in a text by the token rule (what a search result highlights) */
static void match_spans_case(void) {
    const char *text = "The CAT's cat-flap: catalogue, \xc3\xa9t\xc3\xa9 cat2 ca t 2";
    int64_t sp[16];
    int64_t n = et_bm25_match_spans("cat  2 Cat \xc3\xa9t\xc3\xa9", text, sp, 8);
    /* tokens: The CAT s cat flap catalogue t t cat2 ca t 2 (the UTF-8 bytes separate tokens): query terms
     * cat, 2, cat, t (from the non-ASCII word) -> CAT, cat, t, t, 2 */
    CHECK(n == 5, "match count %lld", (long long)n);
    const char *want[5] = {"CAT", "cat", "t", "t", "2"};
    for (int i = 0; i < 5 && i < n; i++) {
        int64_t a = sp[2 * i], b = sp[2 * i + 1];
        CHECK((size_t)(b - a) == strlen(want[i]) && !strncmp(text + a, want[i], (size_t)(b - a)), "span %d: %.*s", i,
              (int)(b - a), text + a);
    }
    CHECK(sp[0] == 4 && sp[1] == 7 && sp[2] == 10 && sp[3] == 13, "spans %lld %lld %lld %lld", (long long)sp[0],
          (long long)sp[1], (long long)sp[2], (long long)sp[3]);
    CHECK(et_bm25_match_spans("cat", text, sp, 1) == 2 && sp[0] == 4 && sp[1] == 7, "cap 1");
    CHECK(et_bm25_match_spans("", text, sp, 8) == 0, "empty query");
    CHECK(et_bm25_match_spans("!!", text, sp, 8) == 0, "query without tokens");
    CHECK(et_bm25_match_spans("cat", NULL, sp, 8) == 0, "NULL text");
    CHECK(et_bm25_match_spans("flapp catalog", text, sp, 8) == 0, "no partial matches");
}

int main(void) {
    match_spans_case();
    hand_case();
    scale_case();
    eval_sets();
    return et_test_report("test_bm25");
}
