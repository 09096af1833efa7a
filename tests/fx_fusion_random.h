/* fx_fusion_random.h - a fixed, seeded set of fusion candidate pools with ties, for test_fusion.c's check that
 * et_fusion_fit chooses what the implementation before the top-10 selection and the threaded grid chose (the golden
 * values in test_fusion.c were printed by that implementation, fusion.c of commit 5e7dfb0, on this set).
 *   fx_random_cands(c, qr, off, seed): RQ queries; query q's pool holds 1..150 docs (doc ids distinct, spread over
 *   0..9999); the model's cosine in [-1, 1] and the BM25 score in [0, 12) are rounded to coarse steps (many exact
 *   ties, broken by the lower doc index), a third of the pool has BM25 score 0 (no shared term); the dense / BM25
 *   ranks are those of the pool's order (ties by doc), 0 past depth 100 and for BM25 score 0; 1-3 relevant docs
 *   per query (grades 1-2), some of them outside the pool. Needs et_test.h (et_test_frand) and fusion.h. */
#ifndef ET_FX_FUSION_RANDOM_H
#define ET_FX_FUSION_RANDOM_H

#define RQ 240
#define RPOOL 150

static int fx_rank_of(const double *v, const int32_t *doc, int n, int i) {
    int r = 1;
    for (int j = 0; j < n; j++)
        if (v[j] > v[i] || (v[j] == v[i] && doc[j] < doc[i])) r++;
    return r;
}

/* c: RQ queries' pools (free with et_fusion_cands_free); qr [RQ * 3], off [RQ + 1] */
static void fx_random_cands(et_fusion_cands *c, et_qrel *qr, int64_t *off, uint64_t seed) {
    uint64_t st = seed;
    memset(c, 0, sizeof *c);
    size_t cap = (size_t)RQ * RPOOL;
    c->nq = RQ;
    c->depth = ET_FUSION_DEPTH;
    c->off = malloc(sizeof(int64_t) * (RQ + 1));
    c->doc = malloc(sizeof(int32_t) * cap);
    c->dense = malloc(sizeof(double) * cap);
    c->bm25 = malloc(sizeof(double) * cap);
    c->drank = malloc(sizeof(int32_t) * cap);
    c->brank = malloc(sizeof(int32_t) * cap);
    int64_t m = 0, nr = 0;
    for (int q = 0; q < RQ; q++) {
        c->off[q] = m;
        int n = 1 + (int)((et_test_frand(&st) + 1) * 0.5f * (RPOOL - 1));
        if (n > RPOOL) n = RPOOL;
        int32_t base = (int32_t)((et_test_frand(&st) + 1) * 2000);
        for (int i = 0; i < n; i++) {
            c->doc[m + i] = base + i * 37 % 9973 / 3 + i; /* distinct: strictly increasing in i */
            c->dense[m + i] = round(et_test_frand(&st) * 20) / 20;                       /* steps of 0.05 */
            double b = et_test_frand(&st);
            c->bm25[m + i] = b < -1.0 / 3 ? 0 : round((b + 1) * 6 * 4) / 4;             /* steps of 0.25 */
        }
        for (int i = 0; i < n; i++) {
            int rd = fx_rank_of(c->dense + m, c->doc + m, n, i), rb = fx_rank_of(c->bm25 + m, c->doc + m, n, i);
            c->drank[m + i] = rd <= ET_FUSION_DEPTH ? rd : 0;
            c->brank[m + i] = c->bm25[m + i] > 0 && rb <= ET_FUSION_DEPTH ? rb : 0;
        }
        off[q] = nr;
        int nrel = 1 + (int)((et_test_frand(&st) + 1) * 1.5f);
        if (nrel > 3) nrel = 3;
        for (int j = 0; j < nrel; j++) {
            int pick = (int)((et_test_frand(&st) + 1) * 0.5f * (n + 2)); /* n, n + 1: a doc outside the pool */
            int32_t d = pick < n ? c->doc[m + pick] : 20000 + q * 4 + j;
            int dup = 0;
            for (int64_t u = off[q]; u < nr; u++) dup |= qr[u].d == d;
            if (!dup) qr[nr++] = (et_qrel){q, d, 1 + (j == 0)};
        }
        m += n;
    }
    c->off[RQ] = m;
    off[RQ] = nr;
}

#endif
