/* evaluate.c - held-out evaluation (see evaluate.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"
#include "kernels.h"
#include "metrics.h"
#include "mine.h"
#include "rng.h"

#define DEPTH 100

static void l2norm(float *x, int64_t n, int32_t d) {
    for (int64_t i = 0; i < n; i++) {
        float *r = x + i * d;
        float s = sqrtf(et_dot(r, r, d));
        if (s > 1e-12f) for (int32_t j = 0; j < d; j++) r[j] /= s;
    }
}

static int grade_of(const et_qrel *j, int64_t nj, int32_t doc) {
    int64_t a = 0, b = nj;
    while (a < b) {
        int64_t m = (a + b) / 2;
        if (j[m].d == doc) return j[m].grade;
        if (j[m].d < doc) a = m + 1; else b = m;
    }
    return 0;
}

et_status et_eval_ir_rankings(const int32_t *rank, int32_t depth, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                              float (*pair_score)(void *ctx, int32_t q, int32_t d), void *ctx, et_ir_eval *out,
                              et_error *err) {
    double s_ndcg = 0, s_map = 0, s_mrr = 0, s_r100 = 0;
    for (int32_t q = 0; q < nq; q++) {
        const int32_t *r = rank + (int64_t)q * depth;
        const et_qrel *j = qrels + qoff[q];
        int64_t nj = qoff[q + 1] - qoff[q];
        s_ndcg += et_ndcg_at_k(r, depth, j, nj, 10);
        s_map += et_ap_at_k(r, depth, j, nj, 10);
        s_mrr += et_rr_at_k(r, depth, j, nj, 10);
        s_r100 += et_recall_at_k(r, depth, j, nj, 100);
    }
    double nqd = nq ? nq : NAN;
    out->ndcg10 = s_ndcg / nqd;
    out->map10 = s_map / nqd;
    out->mrr10 = s_mrr / nqd;
    out->recall100 = s_r100 / nqd;
    out->nqueries = nq;
    /* AUPRC pairs: positives (grade > 0) + sampled hard negatives from the top 100 (as cli_eval.c) */
    int64_t npos = 0, npairs = 0, nneg = 0;
    for (int64_t i = 0; i < qoff[nq]; i++) npos += qrels[i].grade > 0;
    int64_t cap = 2 * npos + 1;
    float *s = malloc(sizeof(float) * (size_t)cap), *l = malloc(sizeof(float) * (size_t)cap);
    int32_t cand[DEPTH];
    if (!s || !l) { free(s); free(l); return et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory for %lld AUPRC pairs", (long long)cap); }
    et_rng base;
    et_rng_seed(&base, ET_EVAL_SEED);
    double cos_sum = 0;
    for (int32_t q = 0; q < nq; q++) {
        const et_qrel *j = qrels + qoff[q];
        int64_t nj = qoff[q + 1] - qoff[q], qp = 0;
        for (int64_t u = 0; u < nj; u++)
            if (j[u].grade > 0) { s[npairs] = pair_score(ctx, q, j[u].d); cos_sum += s[npairs]; l[npairs++] = 1; qp++; }
        int32_t nc = 0, top = depth < DEPTH ? depth : DEPTH;
        for (int32_t r = 0; r < top; r++) {
            int32_t doc = rank[(int64_t)q * depth + r];
            if (doc >= 0 && grade_of(j, nj, doc) <= 0) cand[nc++] = doc;
        }
        int32_t take = (int32_t)(qp < nc ? qp : nc);
        et_rng rng;
        et_rng_fork(&base, (uint64_t)q, &rng);
        for (int32_t u = 0; u < take; u++) {
            int32_t v = u + (int32_t)et_rng_below(&rng, (uint64_t)(nc - u));
            int32_t t = cand[u]; cand[u] = cand[v]; cand[v] = t;
            s[npairs] = pair_score(ctx, q, cand[u]);
            l[npairs++] = 0;
            nneg++;
        }
    }
    out->auprc = npos ? et_auprc(s, l, npairs) : NAN;
    out->mean_pos_cosine = npos ? cos_sum / npos : NAN;
    out->auprc_pos = npos;
    out->auprc_neg = nneg;
    free(s); free(l);
    return ET_OK;
}

typedef struct { const float *Q, *D; int32_t d; } dense_ctx;
static float dense_score(void *c, int32_t q, int32_t d) {
    dense_ctx *x = c;
    return et_dot(x->Q + (int64_t)q * x->d, x->D + (int64_t)d * x->d, x->d);
}

et_status et_eval_ir_dense(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                           const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                           const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err) {
    memset(out, 0, sizeof *out);
    int32_t d = m->cfg.hidden_size;
    float *D = malloc(sizeof(float) * (size_t)(nd ? nd : 1) * d), *Q = malloc(sizeof(float) * (size_t)(nq ? nq : 1) * d);
    int32_t *rank = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * DEPTH);
    et_status s = ET_OK;
    et_encode_cache ec = {0}; /* one set of activations + packed weights for both encodes */
    if (!D || !Q || !rank) { s = et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory (%d docs, %d queries)", nd, nq); goto done; }
    et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
    if (!e2.cache) e2.cache = &ec;
    if ((s = et_encode_texts(m, tok, pool, docs, (size_t)nd, &e2, D, err))) goto done;
    e2.progress = NULL;
    if ((s = et_encode_texts(m, tok, pool, qs, (size_t)nq, &e2, Q, err))) goto done;
    l2norm(D, nd, d);
    l2norm(Q, nq, d);
    if ((s = et_mine_topk(pool, Q, D, nq, nd, d, DEPTH, 0, 0, rank, NULL, err))) goto done;
    dense_ctx c = {Q, D, d};
    if ((s = et_eval_ir_rankings(rank, DEPTH, nq, qrels, qoff, dense_score, &c, out, err))) goto done;
    out->anisotropy = et_mean_random_cosine(D, nd, d, ET_EVAL_ANISO_PAIRS, ET_EVAL_SEED);
    out->ndocs = nd;
done:
    free(D); free(Q); free(rank);
    et_encode_cache_free(&ec);
    return s;
}

typedef struct { const et_bm25 *bm; const char *const *qs; } bm_ctx;
static float bm_score(void *c, int32_t q, int32_t d) {
    bm_ctx *x = c;
    double v = 0;
    if (et_bm25_score_pairs(x->bm, &x->qs[q], &d, 1, &v, NULL)) return 0;
    return (float)v;
}

et_status et_eval_ir_bm25(et_pool *pool, const et_bm25_opts *opts, const char *const *docs, int32_t nd,
                          const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                          et_ir_eval *out, et_error *err) {
    memset(out, 0, sizeof *out);
    et_bm25_opts bo = opts ? *opts : (et_bm25_opts){0.9, 0.4, 0};
    et_bm25 *bm = et_bm25_build(docs, nd, &bo, err);
    if (!bm) return err && err->code ? err->code : ET_ERR_NOMEM;
    int32_t *rank = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * DEPTH);
    et_status s = ET_OK;
    if (!rank) { s = et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory (%d queries)", nq); goto done; }
    if ((s = et_bm25_search_batch(pool, bm, qs, nq, DEPTH, rank, NULL, err))) goto done;
    bm_ctx c = {bm, qs};
    if ((s = et_eval_ir_rankings(rank, DEPTH, nq, qrels, qoff, bm_score, &c, out, err))) goto done;
    out->anisotropy = NAN;
    out->mean_pos_cosine = NAN;
    out->ndocs = nd;
done:
    free(rank);
    et_bm25_free(bm);
    return s;
}

et_status et_eval_pairs_dense(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                              const char *const *a, const char *const *b, const float *label, int64_t n,
                              et_pair_eval *out, et_error *err) {
    memset(out, 0, sizeof *out);
    int32_t d = m->cfg.hidden_size;
    float *A = malloc(sizeof(float) * (size_t)(n ? n : 1) * d), *Bm = malloc(sizeof(float) * (size_t)(n ? n : 1) * d);
    float *sf = malloc(sizeof(float) * (size_t)(n ? n : 1));
    double *cs = malloc(sizeof(double) * (size_t)(n ? n : 1)), *lab = malloc(sizeof(double) * (size_t)(n ? n : 1));
    et_status s = ET_OK;
    et_encode_cache ec = {0}; /* one set of activations + packed weights for both encodes */
    if (!A || !Bm || !sf || !cs || !lab) { s = et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory (%lld pairs)", (long long)n); goto done; }
    et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
    if (!e2.cache) e2.cache = &ec;
    if ((s = et_encode_texts(m, tok, pool, a, (size_t)n, &e2, A, err))) goto done;
    if ((s = et_encode_texts(m, tok, pool, b, (size_t)n, &e2, Bm, err))) goto done;
    l2norm(A, n, d);
    l2norm(Bm, n, d);
    double pc = 0;
    for (int64_t i = 0; i < n; i++) {
        cs[i] = et_dot(A + i * d, Bm + i * d, d);
        sf[i] = (float)cs[i];
        lab[i] = label[i];
        if (label[i] >= 0.5f) { out->npos++; pc += cs[i]; }
    }
    out->n = n;
    out->spearman = 100 * et_spearman(cs, lab, n);
    out->pearson = 100 * et_pearson(cs, lab, n);
    out->auprc = out->npos ? et_auprc(sf, label, n) : NAN;
    out->mean_pos_cosine = out->npos ? pc / out->npos : NAN;
    out->anisotropy = et_mean_random_cosine(Bm, n, d, ET_EVAL_ANISO_PAIRS, ET_EVAL_SEED);
done:
    free(A); free(Bm); free(sf); free(cs); free(lab);
    et_encode_cache_free(&ec);
    return s;
}
