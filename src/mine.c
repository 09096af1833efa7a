/* mine.c - see mine.h */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "mine.h"
#include "rng.h"
#include "topk.h"
#include "util.h"

/* ------------------------------------------------------------------ blocked top-k */

typedef struct {
    const float *S;     /* [qb, c] */
    int32_t c, c0, qb, k;
    int64_t q0;
    double *hs;         /* [nq, k] heaps (topk.h) */
    int32_t *hi;
    int32_t *hn;        /* [nq] heap sizes */
    int ntasks;
} topk_ctx;

static void topk_merge_task(void *vctx, int task, int thread) {
    topk_ctx *t = vctx;
    int32_t a = (int32_t)((int64_t)t->qb * task / t->ntasks), b = (int32_t)((int64_t)t->qb * (task + 1) / t->ntasks);
    for (int32_t r = a; r < b; r++) {
        int64_t q = t->q0 + r;
        et_topk h;
        et_topk_init(&h, t->hs + q * t->k, t->hi + q * t->k, t->k);
        h.n = t->hn[q];
        const float *row = t->S + (int64_t)r * t->c;
        for (int32_t j = 0; j < t->c; j++) et_topk_push(&h, row[j], t->c0 + j); /* NaN ranks as -inf */
        t->hn[q] = h.n;
    }
}

et_status et_mine_topk(et_pool *pool, const float *Q, const float *D, int64_t nq, int64_t nd, int32_t d, int32_t k,
                       int32_t chunk, int32_t qblock, int32_t *out_idx, float *out_score, et_error *err) {
    if (nq < 0 || nd < 0 || d <= 0 || k < 0 || chunk < 0 || qblock < 0)
        return et_fail(err, ET_ERR_ARG, "et_mine_topk: bad shape (nq %lld, nd %lld, d %d, k %d, chunk %d, qblock %d)",
                       (long long)nq, (long long)nd, d, k, chunk, qblock);
    if (nd > INT32_MAX) return et_fail(err, ET_ERR_ARG, "et_mine_topk: %lld docs is more than 2^31-1", (long long)nd);
    if (nq == 0 || k == 0) return ET_OK;
    if (!chunk) chunk = 4096;
    if (!qblock) qblock = 1024;
    int32_t kk = nd < k ? (int32_t)nd : k; /* heap size */
    int32_t c_max = nd < chunk ? (int32_t)(nd ? nd : 1) : chunk;
    int64_t qb_max = nq < qblock ? nq : qblock;
    float *S = et_malloc(sizeof(float) * (size_t)qb_max * (size_t)c_max, "top-k score block", err);
    double *hs = kk ? et_malloc(sizeof(double) * (size_t)nq * (size_t)kk, "top-k heaps", err) : NULL;
    int32_t *hi = kk ? et_malloc(sizeof(int32_t) * (size_t)nq * (size_t)kk, "top-k heaps", err) : NULL;
    int32_t *hn = et_calloc((size_t)nq, sizeof(int32_t), "top-k heap sizes", err);
    if (!S || (kk && (!hs || !hi)) || !hn) { free(S); free(hs); free(hi); free(hn); return ET_ERR_NOMEM; }
    int nth = et_pool_size(pool);
    for (int64_t q0 = 0; kk && q0 < nq; q0 += qblock) {
        int32_t qb = (int32_t)(nq - q0 < qblock ? nq - q0 : qblock);
        for (int64_t c0 = 0; c0 < nd; c0 += chunk) {
            int32_t c = (int32_t)(nd - c0 < chunk ? nd - c0 : chunk);
            /* S[qb, c] = Q[q0:q0+qb, :] · D[c0:c0+c, :]^T */
            et_sgemm(pool, 0, 1, qb, c, d, 1.0f, Q + q0 * d, d, D + c0 * d, d, 0.0f, S, c);
            topk_ctx t = {S, c, (int32_t)c0, qb, kk, q0, hs, hi, hn, 0};
            t.ntasks = qb < nth * 4 ? qb : nth * 4;
            et_pool_run(pool, topk_merge_task, &t, t.ntasks);
        }
    }
    /* heaps -> best-first lists (pop the worst to the back) */
    for (int64_t q = 0; q < nq; q++) {
        et_topk h;
        et_topk_init(&h, kk ? hs + q * kk : NULL, kk ? hi + q * kk : NULL, kk);
        h.n = kk ? hn[q] : 0;
        et_topk_take(&h, k, out_idx + q * k, out_score ? out_score + q * k : NULL, NULL);
    }
    free(S); free(hs); free(hi); free(hn);
    return ET_OK;
}

/* ------------------------------------------------------------------ mining */

typedef struct {
    const et_mine_cfg *cfg;
    const float *Q, *D;
    int32_t d, kk, n_neg, lo, hi;
    const int64_t *pos_off;
    const int32_t *pos;
    const int64_t *inv_off; /* doc -> queries that have it as a positive */
    const int32_t *inv;
    const int32_t *top_idx; /* [nq, kk] */
    const float *top_score;
    int32_t *out_neg, *out_negq;
    float *out_score;
    et_rng base;
    int32_t *cand_idx; /* [nthreads, window] */
    float *cand_sc;
    int32_t *perm;     /* [nthreads, window] */
    et_mine_stats *tstats; /* [nthreads] */
    int64_t nq;
    int ntasks;
} mine_ctx;

static void mine_task(void *vctx, int task, int thread) {
    mine_ctx *m = vctx;
    int32_t W = m->hi - m->lo;
    int32_t *ci = m->cand_idx + (int64_t)thread * W, *pm = m->perm + (int64_t)thread * W;
    float *cs = m->cand_sc + (int64_t)thread * W;
    et_mine_stats *st = m->tstats + thread;
    int64_t a = m->nq * task / m->ntasks, b = m->nq * (task + 1) / m->ntasks;
    for (int64_t q = a; q < b; q++) {
        int64_t p0 = m->pos_off ? m->pos_off[q] : 0, p1 = m->pos_off ? m->pos_off[q + 1] : 0;
        float thr = INFINITY;
        if (m->cfg->fn_margin > 0 && p1 > p0 && m->Q) {
            float mn = INFINITY;
            for (int64_t p = p0; p < p1; p++) {
                float s = et_dot(m->Q + q * m->d, m->D + (int64_t)m->pos[p] * m->d, m->d);
                if (s < mn) mn = s;
            }
            thr = m->cfg->fn_margin * mn;
        }
        int32_t nc = 0;
        const int32_t *ti = m->top_idx + q * m->kk;
        const float *ts = m->top_score + q * m->kk;
        for (int32_t r = m->lo; r < m->hi; r++) {
            int32_t doc = ti[r];
            if (doc < 0) break;
            int is_pos = 0;
            for (int64_t p = p0; p < p1 && !is_pos; p++) is_pos = m->pos[p] == doc;
            if (is_pos) { st->n_pos_skipped++; continue; }
            if (ts[r] > thr) { st->n_fn_dropped++; continue; }
            ci[nc] = doc;
            cs[nc] = ts[r];
            nc++;
        }
        int32_t take = nc < m->n_neg ? nc : m->n_neg;
        if (m->cfg->sample && nc > take) {
            et_rng rng;
            et_rng_fork(&m->base, (uint64_t)q, &rng);
            for (int32_t j = 0; j < nc; j++) pm[j] = j;
            for (int32_t j = 0; j < take; j++) { /* partial Fisher-Yates */
                int32_t r = j + (int32_t)et_rng_below(&rng, (uint64_t)(nc - j));
                int32_t t = pm[j]; pm[j] = pm[r]; pm[r] = t;
            }
            qsort(pm, (size_t)take, sizeof *pm, et_cmp_i32); /* keep rank order */
        } else {
            for (int32_t j = 0; j < take; j++) pm[j] = j;
        }
        int32_t *on = m->out_neg + q * m->n_neg;
        for (int32_t j = 0; j < m->n_neg; j++) {
            int32_t doc = j < take ? ci[pm[j]] : -1;
            on[j] = doc;
            if (m->out_score) m->out_score[q * m->n_neg + j] = j < take ? cs[pm[j]] : -INFINITY;
            if (m->out_negq) {
                int32_t oq = -1;
                if (doc >= 0)
                    for (int64_t u = m->inv_off[doc]; u < m->inv_off[doc + 1]; u++)
                        if (m->inv[u] != q) { oq = m->inv[u]; break; }
                m->out_negq[q * m->n_neg + j] = oq;
                if (oq >= 0) st->n_with_query++;
            }
        }
        st->n_found += take;
        if (take < m->n_neg) st->n_short++;
    }
}

/* the shared part: check, inverse positive index, then the window selection over a ranking that is either
 * given (top_idx/top_sc [nq, kk_given]) or computed from Q, D */
static et_status mine_core(const et_mine_cfg *cfg, et_pool *pool, const float *Q, const float *D, const int32_t *g_idx,
                           const float *g_sc, int32_t g_k, int64_t nq, int64_t nd, int32_t d, const int64_t *pos_off,
                           const int32_t *pos, int32_t *out_neg, float *out_score, int32_t *out_negq, et_mine_stats *stats,
                           et_error *err) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!cfg || cfg->rank_lo < 0 || cfg->rank_hi <= cfg->rank_lo || cfg->n_neg <= 0 || !(cfg->fn_margin >= 0))
        return et_fail(err, ET_ERR_ARG, "et_mine_negatives: need 0 <= rank_lo < rank_hi, n_neg > 0, fn_margin >= 0 (got %d, %d, %d, %g)",
                       cfg ? cfg->rank_lo : 0, cfg ? cfg->rank_hi : 0, cfg ? cfg->n_neg : 0, cfg ? cfg->fn_margin : 0.0);
    if (nq < 0 || nd < 0 || (!g_idx && d <= 0) || nd > INT32_MAX || nq > INT32_MAX)
        return et_fail(err, ET_ERR_ARG, "et_mine_negatives: bad shape (nq %lld, nd %lld, d %d)", (long long)nq, (long long)nd, d);
    if (pos_off) {
        if (pos_off[0] != 0) return et_fail(err, ET_ERR_ARG, "et_mine_negatives: pos_off[0] must be 0");
        for (int64_t q = 0; q < nq; q++) {
            if (pos_off[q + 1] < pos_off[q]) return et_fail(err, ET_ERR_ARG, "et_mine_negatives: pos_off decreases at query %lld", (long long)q);
            for (int64_t p = pos_off[q]; p < pos_off[q + 1]; p++)
                if (pos[p] < 0 || pos[p] >= nd)
                    return et_fail(err, ET_ERR_ARG, "et_mine_negatives: query %lld: positive doc index %d is outside [0, %lld)",
                                   (long long)q, pos[p], (long long)nd);
        }
    }
    if (nq == 0) return ET_OK;
    int32_t kk = cfg->rank_hi < nd ? cfg->rank_hi : (int32_t)nd;
    if (g_idx && kk > g_k) kk = g_k;
    int32_t lo = cfg->rank_lo < kk ? cfg->rank_lo : kk, W = kk - lo;
    int nth = et_pool_size(pool);
    et_status s = ET_OK;
    int32_t *top_idx = g_idx ? NULL : et_malloc(sizeof(int32_t) * (size_t)nq * (size_t)(kk ? kk : 1), "mining top-k", err);
    float *top_sc = g_idx ? NULL : et_malloc(sizeof(float) * (size_t)nq * (size_t)(kk ? kk : 1), "mining top-k", err);
    int32_t *ci = et_malloc(sizeof(int32_t) * (size_t)nth * (size_t)(W ? W : 1), "mining candidates", err);
    int32_t *pm = et_malloc(sizeof(int32_t) * (size_t)nth * (size_t)(W ? W : 1), "mining candidates", err);
    float *cs = et_malloc(sizeof(float) * (size_t)nth * (size_t)(W ? W : 1), "mining candidates", err);
    et_mine_stats *tst = et_calloc((size_t)nth, sizeof *tst, "mining stats", err);
    int64_t *inv_off = et_calloc((size_t)nd + 1, sizeof(int64_t), "positive inverse index", err);
    int64_t npos = pos_off ? pos_off[nq] : 0;
    int32_t *inv = et_malloc(sizeof(int32_t) * (size_t)(npos ? npos : 1), "positive inverse index", err);
    if ((!g_idx && (!top_idx || !top_sc)) || !ci || !pm || !cs || !tst || !inv_off || !inv) { s = ET_ERR_NOMEM; goto done; }
    /* inverse CSR: doc -> queries (ascending) */
    for (int64_t p = 0; p < npos; p++) inv_off[pos[p] + 1]++;
    for (int64_t i = 0; i < nd; i++) inv_off[i + 1] += inv_off[i];
    {
        int64_t *fill = et_malloc(sizeof(int64_t) * (size_t)(nd ? nd : 1), "positive inverse index", err);
        if (!fill) { s = ET_ERR_NOMEM; goto done; }
        memcpy(fill, inv_off, sizeof(int64_t) * (size_t)nd);
        for (int64_t q = 0; q < nq && pos_off; q++)
            for (int64_t p = pos_off[q]; p < pos_off[q + 1]; p++) {
                int32_t doc = pos[p];
                int64_t u = fill[doc];
                if (u > inv_off[doc] && inv[u - 1] == (int32_t)q) continue; /* duplicate positive */
                inv[fill[doc]++] = (int32_t)q;
            }
        /* duplicates leave holes at the end of a doc's range: mark them -1... compact instead */
        int64_t w = 0;
        for (int64_t i = 0; i < nd; i++) {
            int64_t a = inv_off[i], b = fill[i];
            inv_off[i] = w;
            for (int64_t u = a; u < b; u++) inv[w++] = inv[u];
        }
        inv_off[nd] = w;
        free(fill);
    }
    if (!g_idx && kk && (s = et_mine_topk(pool, Q, D, nq, nd, d, kk, cfg->chunk, cfg->qblock, top_idx, top_sc, err))) goto done;
    mine_ctx m = {cfg, Q, D, d, g_idx ? g_k : kk, cfg->n_neg, lo, kk, pos_off, pos, inv_off, inv, g_idx ? g_idx : top_idx,
                  g_idx ? g_sc : top_sc, out_neg, out_negq, out_score, {{0}}, ci, cs, pm, tst, nq, 0};
    et_rng_seed(&m.base, cfg->seed);
    m.ntasks = nq < nth * 8 ? (int)nq : nth * 8;
    et_pool_run(pool, mine_task, &m, m.ntasks);
    if (stats)
        for (int t = 0; t < nth; t++) {
            stats->n_found += tst[t].n_found;
            stats->n_fn_dropped += tst[t].n_fn_dropped;
            stats->n_pos_skipped += tst[t].n_pos_skipped;
            stats->n_with_query += tst[t].n_with_query;
            stats->n_short += tst[t].n_short;
        }
done:
    free(top_idx); free(top_sc); free(ci); free(pm); free(cs); free(tst); free(inv_off); free(inv);
    return s;
}

et_status et_mine_negatives(const et_mine_cfg *cfg, et_pool *pool, const float *Q, const float *D, int64_t nq,
                            int64_t nd, int32_t d, const int64_t *pos_off, const int32_t *pos, int32_t *out_neg,
                            float *out_score, int32_t *out_negq, et_mine_stats *stats, et_error *err) {
    return mine_core(cfg, pool, Q, D, NULL, NULL, 0, nq, nd, d, pos_off, pos, out_neg, out_score, out_negq, stats, err);
}

et_status et_mine_from_ranking(const et_mine_cfg *cfg, et_pool *pool, const int32_t *rank, const float *score, int32_t k,
                               int64_t nq, int64_t nd, const int64_t *pos_off, const int32_t *pos, int32_t *out_neg,
                               float *out_score, int32_t *out_negq, et_mine_stats *stats, et_error *err) {
    if (!rank || !score || k < 0) return et_fail(err, ET_ERR_ARG, "et_mine_from_ranking: need a ranking and its scores");
    if (cfg && cfg->fn_margin > 0) return et_fail(err, ET_ERR_ARG, "et_mine_from_ranking: the false-negative margin needs embeddings (use et_mine_negatives)");
    return mine_core(cfg, pool, NULL, NULL, rank, score, k, nq, nd, 0, pos_off, pos, out_neg, out_score, out_negq, stats, err);
}
