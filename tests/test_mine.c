/* test_mine.c - blocked GEMM top-k against brute force (integer-valued embeddings, so every dot
 * product is exact in float whatever the summation order, and ties are plentiful), and ANCE mining
 * on hand-made embeddings whose rankings are known: rank window, exclusion of positives,
 * false-negative filter, own-query attachment, sampling determinism, chunk boundaries, k > nd. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "mine.h"
#include "rng.h"
#include "et_test.h"

/* brute force: score desc, ties by lower index */
static void brute_topk(const float *Q, const float *D, int nd, int d, int k, int32_t *oi, float *os) {
    float *s = malloc(sizeof(float) * nd);
    char *used = calloc(nd, 1);
    for (int i = 0; i < nd; i++) {
        double a = 0;
        for (int j = 0; j < d; j++) a += (double)Q[j] * D[(size_t)i * d + j];
        s[i] = (float)a;
    }
    for (int r = 0; r < k; r++) {
        int b = -1;
        for (int i = 0; i < nd; i++) if (!used[i] && (b < 0 || s[i] > s[b])) b = i;
        oi[r] = b;
        os[r] = b >= 0 ? s[b] : -INFINITY;
        if (b >= 0) used[b] = 1;
    }
    free(s); free(used);
}

static void topk_cases(et_pool *pool) {
    enum { NQ = 37, ND = 1000, D = 24 };
    et_rng r;
    et_rng_seed(&r, 7);
    float *Q = malloc(sizeof(float) * NQ * D), *Dm = malloc(sizeof(float) * ND * D);
    for (int i = 0; i < NQ * D; i++) Q[i] = (float)((int)et_rng_below(&r, 7) - 3);
    for (int i = 0; i < ND * D; i++) Dm[i] = (float)((int)et_rng_below(&r, 7) - 3);
    int ks[] = {1, 10, 50, 1000, 1003};
    int chunks[] = {1, 7, 64, 999, 1000, 0};
    int qblocks[] = {1, 5, 0};
    et_error err = {0};
    int32_t *oi = malloc(sizeof(int32_t) * NQ * 1003), *ri = malloc(sizeof(int32_t) * 1003);
    float *os = malloc(sizeof(float) * NQ * 1003), *rs = malloc(sizeof(float) * 1003);
    int ncase = 0;
    for (int a = 0; a < 5; a++)
        for (int c = 0; c < 6; c++)
            for (int b = 0; b < 3; b++) {
                int k = ks[a];
                if ((c == 0 || b == 0) && k > 50) continue; /* slow combos: enough coverage elsewhere */
                CHECK(!et_mine_topk((c + b) % 2 ? pool : NULL, Q, Dm, NQ, ND, D, k, chunks[c], qblocks[b], oi, os, &err), "%s", err.msg);
                int bad = 0;
                for (int q = 0; q < NQ && !bad; q++) {
                    brute_topk(Q + q * D, Dm, ND, D, k, ri, rs);
                    for (int j = 0; j < k && !bad; j++)
                        if (oi[q * k + j] != ri[j] || !(os[q * k + j] == rs[j])) {
                            CHECK(0, "k %d chunk %d qblock %d: q %d rank %d: got (%d, %g), brute force (%d, %g)", k, chunks[c],
                                  qblocks[b], q, j, oi[q * k + j], os[q * k + j], ri[j], rs[j]);
                            bad = 1;
                        }
                }
                ncase++;
            }
    printf("top-k: %d (k, chunk, qblock) cases vs brute force\n", ncase);
    /* same contract as et_topk_search (metrics.h) */
    int32_t *ti = malloc(sizeof(int32_t) * NQ * 20);
    CHECK(!et_topk_search(pool, Q, Dm, NQ, ND, D, 20, ti, NULL, &err), "%s", err.msg);
    CHECK(!et_mine_topk(pool, Q, Dm, NQ, ND, D, 20, 100, 8, oi, NULL, &err), "%s", err.msg);
    CHECK(!memcmp(ti, oi, sizeof(int32_t) * NQ * 20), "et_mine_topk != et_topk_search");
    /* k > nd: padding */
    CHECK(!et_mine_topk(pool, Q, Dm, 2, 5, D, 8, 2, 0, oi, os, &err), "%s", err.msg);
    CHECK(oi[4] >= 0 && oi[5] == -1 && oi[7] == -1 && isinf(os[7]) && os[7] < 0 && oi[8 + 4] >= 0 && oi[8 + 5] == -1,
          "padding %d %d %g", oi[5], oi[7], os[7]);
    /* NaN ranks last */
    float qn[2] = {1, 0}, dn[6] = {1, 0, NAN, 0, 2, 0};
    CHECK(!et_mine_topk(NULL, qn, dn, 1, 3, 2, 3, 0, 0, oi, os, &err), "%s", err.msg);
    CHECK(oi[0] == 2 && oi[1] == 0 && oi[2] == 1, "NaN order %d %d %d", oi[0], oi[1], oi[2]);
    CHECK(et_mine_topk(NULL, qn, dn, 1, 3, 0, 3, 0, 0, oi, os, &err) == ET_ERR_ARG, "d = 0 accepted");
    free(Q); free(Dm); free(oi); free(ri); free(os); free(rs); free(ti);
}

/* 10 docs, d = 3. Query 0 = (1,0,0): score(doc i) = 10 - i, so rank r holds doc r.
 * Query 1 = (0,1,0): score = i, rank r holds doc 9 - r. Query 2 = (0,0,1): score = (i*7) % 10. */
static void mine_cases(et_pool *pool) {
    enum { ND = 10, D = 3 };
    float Dm[ND * D], Q[3 * D] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    for (int i = 0; i < ND; i++) { Dm[i * D] = 10.0f - i; Dm[i * D + 1] = (float)i; Dm[i * D + 2] = (float)((i * 7) % 10); }
    /* positives: q0 {1, 4}, q1 {3}, q2 {3, 5} */
    int64_t off[] = {0, 2, 3, 5};
    int32_t pos[] = {1, 4, 3, 3, 5};
    int32_t neg[3 * 8], negq[3 * 8];
    float ns[3 * 8];
    et_error err = {0};
    et_mine_stats st;

    /* window [1, 6) of q0 = docs 1..5; positives 1, 4 dropped -> 2, 3, 5 */
    et_mine_cfg c = {.rank_lo = 1, .rank_hi = 6, .n_neg = 2};
    CHECK(!et_mine_negatives(&c, pool, Q, Dm, 3, ND, D, off, pos, neg, ns, negq, &st, &err), "%s", err.msg);
    CHECK(neg[0] == 2 && neg[1] == 3, "q0 window: %d %d", neg[0], neg[1]);
    CHECK(ns[0] == 8 && ns[1] == 7, "q0 scores %g %g", ns[0], ns[1]);
    CHECK(negq[0] == -1 && negq[1] == 1, "own query of doc 2 / doc 3: %d %d (doc 3 is q1's positive)", negq[0], negq[1]);
    /* q1: ranks 1..5 = docs 8, 7, 6, 5, 4: none positive -> 8, 7 */
    CHECK(neg[2] == 8 && neg[3] == 7 && negq[2] == -1 && negq[3] == -1, "q1: %d %d", neg[2], neg[3]);
    /* q2: scores (i*7)%10: doc 0:0 1:7 2:4 3:1 4:8 5:5 6:2 7:9 8:6 9:3 -> order 7 4 1 8 5 2 9 6 3 0;
     * ranks 1..5 = 4 1 8 5 2; positive 5 dropped -> 4, 1; both are q0's positives -> own query 0 */
    CHECK(neg[4] == 4 && neg[5] == 1 && negq[4] == 0 && negq[5] == 0, "q2: %d %d | %d %d", neg[4], neg[5], negq[4], negq[5]);
    CHECK(st.n_found == 6 && st.n_short == 0 && st.n_pos_skipped == 3 && st.n_with_query == 3,
          "stats found %lld short %d posskip %lld withq %lld", (long long)st.n_found, st.n_short,
          (long long)st.n_pos_skipped, (long long)st.n_with_query);

    /* more negatives than candidates: q0 has 3 -> 2, 3, 5, -1, -1 */
    c.n_neg = 5;
    CHECK(!et_mine_negatives(&c, pool, Q, Dm, 3, ND, D, off, pos, neg, ns, negq, &st, &err), "%s", err.msg);
    CHECK(neg[0] == 2 && neg[1] == 3 && neg[2] == 5 && neg[3] == -1 && neg[4] == -1 && negq[4] == -1 && isinf(ns[4]),
          "q0 short: %d %d %d %d %d", neg[0], neg[1], neg[2], neg[3], neg[4]);
    CHECK(negq[2] == 2, "doc 5 is q2's positive: %d", negq[2]);
    CHECK(st.n_short == 2 && st.n_found == 3 + 5 + 4, "short %d found %lld", st.n_short, (long long)st.n_found);

    /* false-negative filter: q0's positives score 9 (doc 1) and 6 (doc 4); margin 0.9 -> threshold 5.4:
     * docs 0 (10), 2 (8), 3 (7) dropped; 5 (5), 6 (4), ... kept */
    et_mine_cfg f = {.rank_lo = 0, .rank_hi = 10, .n_neg = 3, .fn_margin = 0.9f};
    CHECK(!et_mine_negatives(&f, NULL, Q, Dm, 1, ND, D, off, pos, neg, NULL, NULL, &st, &err), "%s", err.msg);
    CHECK(neg[0] == 5 && neg[1] == 6 && neg[2] == 7, "fn filter: %d %d %d", neg[0], neg[1], neg[2]);
    CHECK(st.n_fn_dropped == 3 && st.n_pos_skipped == 2, "fn dropped %lld", (long long)st.n_fn_dropped);
    /* no positives (pos_off NULL): filter inactive, nothing skipped */
    CHECK(!et_mine_negatives(&f, NULL, Q, Dm, 1, ND, D, NULL, NULL, neg, NULL, negq, &st, &err), "%s", err.msg);
    CHECK(neg[0] == 0 && neg[1] == 1 && neg[2] == 2 && negq[0] == -1, "no positives: %d %d %d", neg[0], neg[1], neg[2]);

    /* window beyond the corpus: rank_hi 50 > nd, and rank_lo >= nd gives nothing */
    et_mine_cfg w = {.rank_lo = 8, .rank_hi = 50, .n_neg = 3};
    CHECK(!et_mine_negatives(&w, pool, Q, Dm, 1, ND, D, off, pos, neg, NULL, NULL, &st, &err), "%s", err.msg);
    CHECK(neg[0] == 8 && neg[1] == 9 && neg[2] == -1, "tail window: %d %d %d", neg[0], neg[1], neg[2]);
    w.rank_lo = 20;
    CHECK(!et_mine_negatives(&w, pool, Q, Dm, 1, ND, D, off, pos, neg, NULL, NULL, &st, &err), "%s", err.msg);
    CHECK(neg[0] == -1 && st.n_short == 1, "empty window: %d", neg[0]);

    /* bad inputs */
    int32_t badpos[] = {1, 44};
    int64_t badoff[] = {0, 2};
    CHECK(et_mine_negatives(&c, pool, Q, Dm, 1, ND, D, badoff, badpos, neg, NULL, NULL, NULL, &err) == ET_ERR_ARG &&
          strstr(err.msg, "query 0") && strstr(err.msg, "44"), "bad positive: %s", err.msg);
    et_mine_cfg bc = {.rank_lo = 5, .rank_hi = 5, .n_neg = 1};
    CHECK(et_mine_negatives(&bc, pool, Q, Dm, 1, ND, D, NULL, NULL, neg, NULL, NULL, NULL, &err) == ET_ERR_ARG, "empty window accepted");
}

/* sampling: deterministic per seed, independent of threads and chunking, a subset of the
 * candidates in rank order; different seeds differ */
static void sample_cases(et_pool *pool) {
    enum { NQ = 50, ND = 3000, D = 16, NN = 8 };
    et_rng r;
    et_rng_seed(&r, 11);
    float *Q = malloc(sizeof(float) * NQ * D), *Dm = malloc(sizeof(float) * ND * D);
    for (int i = 0; i < NQ * D; i++) Q[i] = (float)et_rng_normal(&r);
    for (int i = 0; i < ND * D; i++) Dm[i] = (float)et_rng_normal(&r);
    int64_t off[NQ + 1];
    int32_t pos[NQ];
    for (int q = 0; q <= NQ; q++) off[q] = q;
    for (int q = 0; q < NQ; q++) pos[q] = q * 3; /* doc 3q is q's positive */
    int32_t a[NQ * NN], b[NQ * NN], cq[NQ * NN], all[NQ * 100], none[NQ * NN];
    et_error err = {0};
    et_mine_cfg c = {.rank_lo = 0, .rank_hi = 100, .n_neg = NN, .sample = 1, .seed = 5, .chunk = 256};
    CHECK(!et_mine_negatives(&c, pool, Q, Dm, NQ, ND, D, off, pos, a, NULL, cq, NULL, &err), "%s", err.msg);
    c.chunk = 0;
    CHECK(!et_mine_negatives(&c, NULL, Q, Dm, NQ, ND, D, off, pos, b, NULL, NULL, NULL, &err), "%s", err.msg);
    CHECK(!memcmp(a, b, sizeof a), "sampling depends on threads / chunking");
    et_mine_cfg t = {.rank_lo = 0, .rank_hi = 100, .n_neg = 100};
    CHECK(!et_mine_negatives(&t, pool, Q, Dm, NQ, ND, D, off, pos, all, NULL, NULL, NULL, &err), "%s", err.msg);
    int order_ok = 1, subset_ok = 1, pos_ok = 1, q_ok = 1;
    for (int q = 0; q < NQ; q++) {
        int last = -1;
        for (int j = 0; j < NN; j++) {
            int doc = a[q * NN + j], at = -1;
            for (int u = 0; u < 100; u++) if (all[q * 100 + u] == doc) at = u;
            if (at < 0) subset_ok = 0;
            if (at <= last) order_ok = 0;
            last = at;
            if (doc == q * 3) pos_ok = 0;
            int owner = doc % 3 == 0 && doc / 3 < NQ ? doc / 3 : -1;
            if (cq[q * NN + j] != owner) q_ok = 0;
        }
    }
    CHECK(subset_ok && order_ok && pos_ok && q_ok, "sample: subset %d order %d positives-excluded %d own-query %d", subset_ok, order_ok, pos_ok, q_ok);
    c.seed = 6;
    CHECK(!et_mine_negatives(&c, pool, Q, Dm, NQ, ND, D, off, pos, none, NULL, NULL, NULL, &err), "%s", err.msg);
    CHECK(memcmp(a, none, sizeof a), "seeds 5 and 6 sample the same negatives");
    c.seed = 5;
    CHECK(!et_mine_negatives(&c, pool, Q, Dm, NQ, ND, D, off, pos, none, NULL, NULL, NULL, &err), "%s", err.msg);
    CHECK(!memcmp(a, none, sizeof a), "same seed, different negatives");
    /* et_mine_from_ranking over the model's own ranking selects exactly what et_mine_negatives does
     * (window [2, 60), positives out, own queries), with and without sampling */
    {
        int32_t *rk = malloc(sizeof(int32_t) * NQ * 100), e1[NQ * NN], e2[NQ * NN], q1[NQ * NN], q2[NQ * NN];
        float *rs = malloc(sizeof(float) * NQ * 100), s1[NQ * NN], s2[NQ * NN];
        CHECK(!et_mine_topk(pool, Q, Dm, NQ, ND, D, 100, 0, 0, rk, rs, &err), "%s", err.msg);
        for (int smp = 0; smp < 2; smp++) {
            et_mine_cfg w = {.rank_lo = 2, .rank_hi = 60, .n_neg = NN, .sample = smp, .seed = 9};
            et_mine_stats st1, st2;
            CHECK(!et_mine_negatives(&w, pool, Q, Dm, NQ, ND, D, off, pos, e1, s1, q1, &st1, &err), "%s", err.msg);
            CHECK(!et_mine_from_ranking(&w, pool, rk, rs, 100, NQ, ND, off, pos, e2, s2, q2, &st2, &err), "%s", err.msg);
            CHECK(!memcmp(e1, e2, sizeof e1) && !memcmp(q1, q2, sizeof q1) && !memcmp(s1, s2, sizeof s1) &&
                  st1.n_found == st2.n_found && st1.n_with_query == st2.n_with_query, "from_ranking differs (sample %d)", smp);
        }
        /* a ranking shorter than the window: the window is clipped to it, rows ending in -1 stop early */
        et_mine_cfg w = {.rank_lo = 0, .rank_hi = 60, .n_neg = NN};
        for (int q = 0; q < NQ; q++) rk[q * 100 + 5] = -1;
        CHECK(!et_mine_from_ranking(&w, pool, rk, rs, 100, NQ, ND, off, pos, e2, NULL, NULL, NULL, &err), "%s", err.msg);
        int short_ok = 1;
        for (int q = 0; q < NQ; q++)
            for (int j = 0; j < NN; j++) {
                int at = -1;
                for (int u = 0; u < 5; u++) if (rk[q * 100 + u] == e2[q * NN + j]) at = u;
                if (e2[q * NN + j] >= 0 && at < 0) short_ok = 0;
            }
        CHECK(short_ok, "from_ranking read past the end of a row");
        et_mine_cfg fm = {.rank_lo = 0, .rank_hi = 10, .n_neg = 2, .fn_margin = 0.9f};
        CHECK(et_mine_from_ranking(&fm, pool, rk, rs, 100, NQ, ND, off, pos, e2, NULL, NULL, NULL, &err) == ET_ERR_ARG, "fn_margin accepted without embeddings");
        free(rk); free(rs);
    }
    free(Q); free(Dm);
}

int main(void) {
    et_error err = {0};
    et_pool *pool = et_pool_create(2, &err);
    if (!pool) { fprintf(stderr, "pool: %s\n", err.msg); return 1; }
    topk_cases(pool);
    mine_cases(pool);
    sample_cases(pool);
    et_pool_destroy(pool);
    return et_test_report("test_mine");
}
