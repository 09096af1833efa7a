/* metrics.c - see metrics.h */
#include "metrics.h"
#include "topk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "rng.h"

/* ================================ per-query IR metrics ===================================== */
/* grade of doc d in one query's judgments (sorted by d), 0 if absent; negative grades -> 0 */
static int32_t grade_of(const et_qrel *j, int64_t nj, int32_t d) {
    if (d < 0) return 0;
    int64_t lo = 0, hi = nj;
    while (lo < hi) {
        int64_t m = lo + (hi - lo) / 2;
        if (j[m].d < d) lo = m + 1;
        else hi = m;
    }
    if (lo < nj && j[lo].d == d) return j[lo].grade > 0 ? j[lo].grade : 0;
    return 0;
}

static int64_t num_relevant(const et_qrel *j, int64_t nj) {
    int64_t r = 0;
    for (int64_t i = 0; i < nj; i++) r += j[i].grade >= 1;
    return r;
}

static int cmp_int_desc(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x < y) - (x > y);
}

double et_ndcg_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k) {
    if (k <= 0) return 0.0;
    double dcg = 0;
    int32_t n = nrank < k ? nrank : k;
    for (int32_t r = 0; r < n; r++) {
        int32_t g = grade_of(judg, nj, ranking[r]);
        if (g > 0) dcg += g / log2(r + 2.0); /* rank r+1 -> log2(rank + 1) */
    }
    /* ideal: the judged grades, sorted descending, cut at k */
    int32_t stackbuf[256], *gs = stackbuf;
    int64_t npos = 0;
    for (int64_t i = 0; i < nj; i++) npos += judg[i].grade > 0;
    if (npos > 256) {
        gs = malloc(sizeof(int32_t) * (size_t)npos);
        if (!gs) return NAN;
    }
    int64_t m = 0;
    for (int64_t i = 0; i < nj; i++) if (judg[i].grade > 0) gs[m++] = judg[i].grade;
    qsort(gs, (size_t)m, sizeof(int32_t), cmp_int_desc);
    double idcg = 0;
    for (int64_t r = 0; r < m && r < k; r++) idcg += gs[r] / log2((double)r + 2.0);
    if (gs != stackbuf) free(gs);
    return idcg > 0 ? dcg / idcg : 0.0;
}

double et_ap_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k) {
    int64_t R = num_relevant(judg, nj);
    if (R == 0 || k <= 0) return 0.0;
    double sum = 0;
    int64_t hits = 0;
    int32_t n = nrank < k ? nrank : k;
    for (int32_t r = 0; r < n; r++)
        if (grade_of(judg, nj, ranking[r]) >= 1) { hits++; sum += (double)hits / (r + 1); }
    return sum / (double)R;
}

double et_rr_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k) {
    int32_t n = nrank < k ? nrank : k;
    for (int32_t r = 0; r < n; r++)
        if (grade_of(judg, nj, ranking[r]) >= 1) return 1.0 / (r + 1);
    return 0.0;
}

static int64_t hits_at(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k) {
    int32_t n = nrank < k ? nrank : k;
    int64_t h = 0;
    for (int32_t r = 0; r < n; r++) h += grade_of(judg, nj, ranking[r]) >= 1;
    return h;
}

double et_recall_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k) {
    int64_t R = num_relevant(judg, nj);
    if (R == 0 || k <= 0) return 0.0;
    return (double)hits_at(ranking, nrank, judg, nj, k) / (double)R;
}

double et_precision_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k) {
    if (k <= 0) return 0.0;
    return (double)hits_at(ranking, nrank, judg, nj, k) / (double)k;
}

et_status et_ir_evaluate(const int32_t *rankings, int32_t nq, int32_t depth, const et_qrel *qrels,
                         const int64_t *qrel_off, et_ir_summary *out, double *per_query_ndcg10, et_error *err) {
    memset(out, 0, sizeof *out);
    if (nq < 0 || depth < 0) return et_fail(err, ET_ERR_ARG, "ir_evaluate: nq = %d, depth = %d", nq, depth);
    for (int32_t q = 0; q < nq; q++) {
        const et_qrel *j = qrels + qrel_off[q];
        int64_t nj = qrel_off[q + 1] - qrel_off[q];
        if (per_query_ndcg10) per_query_ndcg10[q] = NAN;
        if (nj <= 0) continue; /* not in the qrels: skipped, as trec_eval / BEIR do */
        for (int64_t i = 0; i < nj; i++)
            if (j[i].q != q || (i && j[i].d <= j[i - 1].d))
                return et_fail(err, ET_ERR_ARG, "ir_evaluate: qrels of query %d are not sorted by (q, d) / not unique", q);
        const int32_t *r = rankings + (int64_t)q * depth;
        double n10 = et_ndcg_at_k(r, depth, j, nj, 10);
        if (per_query_ndcg10) per_query_ndcg10[q] = n10;
        out->ndcg10 += n10;
        out->map10 += et_ap_at_k(r, depth, j, nj, 10);
        out->mrr10 += et_rr_at_k(r, depth, j, nj, 10);
        out->p10 += et_precision_at_k(r, depth, j, nj, 10);
        out->recall10 += et_recall_at_k(r, depth, j, nj, 10);
        out->recall100 += et_recall_at_k(r, depth, j, nj, 100);
        out->ndcg100 += et_ndcg_at_k(r, depth, j, nj, 100);
        out->map100 += et_ap_at_k(r, depth, j, nj, 100);
        out->nqueries++;
    }
    if (out->nqueries) {
        double n = out->nqueries;
        out->ndcg10 /= n; out->map10 /= n; out->mrr10 /= n; out->p10 /= n;
        out->recall10 /= n; out->recall100 /= n; out->ndcg100 /= n; out->map100 /= n;
    }
    return ET_OK;
}

/* ================================ ranking helpers ========================================== */
void et_rank_scores(const float *scores, int32_t n, int32_t k, int32_t *out_idx) {
    if (k > n) k = n;
    if (k <= 0) return;
    double *hs = malloc(sizeof(double) * (size_t)k);
    if (!hs) { for (int32_t i = 0; i < k; i++) out_idx[i] = -1; return; }
    et_topk h;
    et_topk_init(&h, hs, out_idx, k);
    for (int32_t i = 0; i < n; i++) et_topk_push(&h, scores[i], i);
    et_topk_take(&h, k, out_idx, NULL, NULL);
    free(hs);
}

/* ================================ AUPRC, Spearman ========================================== */
typedef struct { double s; double y; } sl_pair;
static int sl_cmp(const void *a, const void *b) {
    double x = ((const sl_pair *)a)->s, y = ((const sl_pair *)b)->s;
    return (x < y) - (x > y);
}

double et_auprc(const float *scores, const float *labels, int64_t n) {
    if (n <= 0) return NAN;
    sl_pair *v = malloc(sizeof(sl_pair) * (size_t)n);
    if (!v) return NAN;
    int64_t P = 0;
    for (int64_t i = 0; i < n; i++) {
        float s = scores[i];
        v[i].s = s != s ? -INFINITY : s;
        v[i].y = labels[i] >= 0.5f;
        P += labels[i] >= 0.5f;
    }
    if (P == 0) { free(v); return NAN; }
    qsort(v, (size_t)n, sizeof *v, sl_cmp);
    double ap = 0, prev_recall = 0;
    int64_t tp = 0, fp = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && v[j].s == v[i].s) { if (v[j].y > 0) tp++; else fp++; j++; } /* one threshold per distinct score */
        double recall = (double)tp / P, prec = (double)tp / (double)(tp + fp);
        ap += (recall - prev_recall) * prec;
        prev_recall = recall;
        i = j;
    }
    free(v);
    return ap;
}

double et_pearson(const double *x, const double *y, int64_t n) {
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= n; my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = x[i] - mx, b = y[i] - my;
        sxy += a * b; sxx += a * a; syy += b * b;
    }
    if (sxx <= 0 || syy <= 0) return NAN;
    double r = sxy / sqrt(sxx * syy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

typedef struct { double v; int64_t i; } dv_pair;
static int dv_cmp(const void *a, const void *b) {
    const dv_pair *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* average ranks (1-based; ties get the mean of their positions) */
static int avg_ranks(const double *x, int64_t n, double *rank) {
    dv_pair *v = malloc(sizeof(dv_pair) * (size_t)n);
    if (!v) return 0;
    for (int64_t i = 0; i < n; i++) { v[i].v = x[i]; v[i].i = i; }
    qsort(v, (size_t)n, sizeof *v, dv_cmp);
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && v[j].v == v[i].v) j++;
        double r = 0.5 * ((double)(i + 1) + (double)j); /* mean of ranks i+1 .. j */
        for (int64_t t = i; t < j; t++) rank[v[t].i] = r;
        i = j;
    }
    free(v);
    return 1;
}

double et_spearman(const double *x, const double *y, int64_t n) {
    if (n < 2) return NAN;
    for (int64_t i = 0; i < n; i++) if (x[i] != x[i] || y[i] != y[i]) return NAN;
    double *rx = malloc(sizeof(double) * (size_t)n), *ry = malloc(sizeof(double) * (size_t)n);
    double r = NAN;
    if (rx && ry && avg_ranks(x, n, rx) && avg_ranks(y, n, ry)) r = et_pearson(rx, ry, n);
    free(rx); free(ry);
    return r;
}

/* ================================ anisotropy ============================================== */
double et_mean_random_cosine(const float *E, int64_t n, int32_t d, int64_t max_pairs, uint64_t seed) {
    if (n < 2) return NAN;
    double *nrm = malloc(sizeof(double) * (size_t)n);
    if (!nrm) return NAN;
    for (int64_t i = 0; i < n; i++) nrm[i] = sqrt((double)et_dot(E + i * d, E + i * d, d));
    double sum = 0;
    int64_t cnt = 0;
    int64_t all = n * (n - 1) / 2;
    if (all <= max_pairs || max_pairs <= 0) {
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = i + 1; j < n; j++) {
                double den = nrm[i] * nrm[j];
                sum += den > 0 ? et_dot(E + i * d, E + j * d, d) / den : 0.0;
                cnt++;
            }
    } else {
        et_rng r;
        et_rng_seed(&r, seed);
        for (int64_t t = 0; t < max_pairs; t++) {
            int64_t i = (int64_t)et_rng_below(&r, (uint64_t)n);
            int64_t j = (int64_t)et_rng_below(&r, (uint64_t)(n - 1));
            if (j >= i) j++;
            double den = nrm[i] * nrm[j];
            sum += den > 0 ? et_dot(E + i * d, E + j * d, d) / den : 0.0;
            cnt++;
        }
    }
    free(nrm);
    return sum / (double)cnt;
}

double et_mean_pair_cosine(const float *A, const float *B, int64_t n, int32_t d) {
    if (n <= 0) return NAN;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *a = A + i * d, *b = B + i * d;
        double den = sqrt((double)et_dot(a, a, d) * (double)et_dot(b, b, d));
        sum += den > 0 ? et_dot(a, b, d) / den : 0.0;
    }
    return sum / (double)n;
}

/* ================================ exact top-k search ====================================== */
#define TOPK_QB 8      /* queries per task block */
#define TOPK_DCHUNK 256 /* docs per inner chunk (kept hot in cache across the query block) */

typedef struct {
    const float *Q, *D;
    int64_t nq, nd;
    int32_t d, k, kk, nshards, nqb;
    int64_t shard_len;
    double *hs;    /* [nshards, nq, kk] */
    int32_t *hi;   /* [nshards, nq, kk] */
    int32_t *cnt;  /* [nshards, nq] */
    int32_t *out_idx;
    float *out_score;
} topk_ctx;

static void topk_task(void *vctx, int task, int thread) {
    topk_ctx *c = vctx;
    int64_t qb = task % c->nqb, sh = task / c->nqb;
    int64_t q0 = qb * TOPK_QB, q1 = q0 + TOPK_QB < c->nq ? q0 + TOPK_QB : c->nq;
    int64_t d0 = sh * c->shard_len, d1 = d0 + c->shard_len < c->nd ? d0 + c->shard_len : c->nd;
    for (int64_t c0 = d0; c0 < d1; c0 += TOPK_DCHUNK) {
        int64_t c1 = c0 + TOPK_DCHUNK < d1 ? c0 + TOPK_DCHUNK : d1;
        for (int64_t q = q0; q < q1; q++) {
            const float *qv = c->Q + q * c->d;
            int64_t slot = sh * c->nq + q;
            et_topk h;
            et_topk_init(&h, c->hs + slot * c->kk, c->hi + slot * c->kk, c->kk);
            h.n = c->cnt[slot];
            for (int64_t j = c0; j < c1; j++) et_topk_push(&h, et_dot(qv, c->D + j * c->d, c->d), (int32_t)j);
            c->cnt[slot] = h.n;
        }
    }
}

static void merge_task(void *vctx, int task, int thread) {
    topk_ctx *c = vctx;
    int64_t q = task;
    /* shard 0's heap takes the other shards' kept pairs, then is read out best-first */
    et_topk h;
    et_topk_init(&h, c->hs + q * c->kk, c->hi + q * c->kk, c->kk);
    h.n = c->cnt[q];
    for (int32_t sh = 1; sh < c->nshards; sh++) {
        int64_t slot = (int64_t)sh * c->nq + q;
        const double *hs = c->hs + slot * c->kk;
        const int32_t *hi = c->hi + slot * c->kk;
        for (int32_t i = 0; i < c->cnt[slot]; i++) et_topk_push(&h, hs[i], hi[i]);
    }
    et_topk_take(&h, c->k, c->out_idx + q * c->k, c->out_score ? c->out_score + q * c->k : NULL, NULL);
}

et_status et_topk_search(et_pool *pool, const float *Q, const float *D, int64_t nq, int64_t nd, int32_t d,
                         int32_t k, int32_t *out_idx, float *out_score, et_error *err) {
    if (nq < 0 || nd < 0 || d <= 0 || k <= 0 || !out_idx)
        return et_fail(err, ET_ERR_ARG, "topk_search: nq = %lld, nd = %lld, d = %d, k = %d", (long long)nq, (long long)nd, d, k);
    if (nd > INT32_MAX) return et_fail(err, ET_ERR_UNSUPPORTED, "topk_search: more than 2^31 docs");
    if (nq == 0) return ET_OK;
    int nth = et_pool_size(pool);
    topk_ctx c;
    memset(&c, 0, sizeof c);
    c.Q = Q; c.D = D; c.nq = nq; c.nd = nd; c.d = d; c.k = k;
    c.kk = (int32_t)(k < nd ? k : nd);
    c.nqb = (int32_t)((nq + TOPK_QB - 1) / TOPK_QB);
    /* few query blocks: split the docs too, so every thread has work */
    int32_t want = 4 * nth;
    c.nshards = 1;
    if (c.nqb < want && nd > 4 * TOPK_DCHUNK) {
        int64_t s = (want + c.nqb - 1) / c.nqb;
        int64_t maxs = (nd + 2 * TOPK_DCHUNK - 1) / (2 * TOPK_DCHUNK);
        c.nshards = (int32_t)(s < maxs ? s : maxs);
        if (c.nshards < 1) c.nshards = 1;
    }
    c.shard_len = (nd + c.nshards - 1) / c.nshards;
    if (c.shard_len < 1) c.shard_len = 1;
    c.out_idx = out_idx;
    c.out_score = out_score;
    size_t nslots = (size_t)c.nshards * (size_t)nq;
    size_t kk = (size_t)(c.kk ? c.kk : 1);
    c.hs = et_malloc(sizeof(double) * nslots * kk, "topk heaps", err);
    c.hi = et_malloc(sizeof(int32_t) * nslots * kk, "topk heaps", err);
    c.cnt = et_calloc(nslots, sizeof(int32_t), "topk heaps", err);
    et_status st = ET_OK;
    if (!c.hs || !c.hi || !c.cnt) { st = ET_ERR_NOMEM; goto done; }
    if (c.kk > 0) et_pool_run(pool, topk_task, &c, c.nqb * c.nshards);
    et_pool_run(pool, merge_task, &c, (int)nq);
done:
    free(c.hs); free(c.hi); free(c.cnt);
    return st;
}

/* ================================ fusion ================================================== */
et_status et_fuse_rrf(const int32_t *const *rankings, int32_t nsys, int32_t depth, int32_t ndocs, double rrf_k,
                      double *out, et_error *err) {
    if (nsys < 0 || depth < 0 || ndocs < 0 || !(rrf_k >= 0))
        return et_fail(err, ET_ERR_ARG, "fuse_rrf: nsys = %d, depth = %d, ndocs = %d, k = %g", nsys, depth, ndocs, rrf_k);
    memset(out, 0, sizeof(double) * (size_t)ndocs);
    for (int32_t s = 0; s < nsys; s++)
        for (int32_t r = 0; r < depth; r++) {
            int32_t dd = rankings[s][r];
            if (dd < 0) continue;
            if (dd >= ndocs) return et_fail(err, ET_ERR_ARG, "fuse_rrf: system %d rank %d: doc %d >= ndocs %d", s, r + 1, dd, ndocs);
            out[dd] += 1.0 / (rrf_k + (r + 1));
        }
    return ET_OK;
}

et_status et_fuse_minmax(const double *const *scores, const double *weights, int32_t nsys, int64_t n, double *out,
                         et_error *err) {
    memset(out, 0, sizeof(double) * (size_t)(n > 0 ? n : 0));
    for (int32_t s = 0; s < nsys; s++) {
        const double *x = scores[s];
        double mn = INFINITY, mx = -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(x[i])) return et_fail(err, ET_ERR_NUMERIC, "fuse_minmax: system %d item %lld is not finite", s, (long long)i);
            if (x[i] < mn) mn = x[i];
            if (x[i] > mx) mx = x[i];
        }
        double w = weights ? weights[s] : 1.0;
        if (!(mx > mn)) continue;
        double inv = 1.0 / (mx - mn);
        for (int64_t i = 0; i < n; i++) out[i] += w * (x[i] - mn) * inv;
    }
    return ET_OK;
}
