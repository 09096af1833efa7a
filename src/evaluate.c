/* evaluate.c - held-out evaluation (see evaluate.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"
#include "kernels.h"
#include "metrics.h"
#include "mine.h"
#include "rng.h"

#include "util.h"

#define DEPTH 100      /* AUPRC negatives come from the top 100; Recall@100 */
#define RRF_K 60.0
#define RRF_DEPTH 1000 /* RRF fuses the top max(depth, 1000) of each system */

static int grade_of(const et_qrel *j, int64_t nj, int32_t doc) {
    int64_t a = 0, b = nj;
    while (a < b) {
        int64_t m = (a + b) / 2;
        if (j[m].d == doc) return j[m].grade;
        if (j[m].d < doc) a = m + 1; else b = m;
    }
    return 0;
}

et_status et_eval_ir_rankings(const int32_t *rank, int32_t depth, int32_t k, int32_t nq, const et_qrel *qrels,
                              const int64_t *qoff, float (*pair_score)(void *ctx, int32_t q, int32_t d), void *ctx,
                              et_ir_eval *out, et_error *err) {
    if (k <= 0) k = 10;
    double s_ndcg = 0, s_map = 0, s_mrr = 0, s_r100 = 0, s_ndcgk = 0, s_mapk = 0, s_mrrk = 0, s_pk = 0, s_r10 = 0;
    for (int32_t q = 0; q < nq; q++) {
        const int32_t *r = rank + (int64_t)q * depth;
        const et_qrel *j = qrels + qoff[q];
        int64_t nj = qoff[q + 1] - qoff[q];
        s_ndcg += et_ndcg_at_k(r, depth, j, nj, 10);
        s_map += et_ap_at_k(r, depth, j, nj, 10);
        s_mrr += et_rr_at_k(r, depth, j, nj, 10);
        s_ndcgk += et_ndcg_at_k(r, depth, j, nj, k);
        s_mapk += et_ap_at_k(r, depth, j, nj, k);
        s_mrrk += et_rr_at_k(r, depth, j, nj, k);
        s_pk += et_precision_at_k(r, depth, j, nj, k);
        s_r10 += et_recall_at_k(r, depth, j, nj, 10);
        s_r100 += et_recall_at_k(r, depth, j, nj, 100);
    }
    double nqd = nq ? nq : NAN;
    out->ndcg10 = s_ndcg / nqd;
    out->map10 = s_map / nqd;
    out->mrr10 = s_mrr / nqd;
    out->recall100 = s_r100 / nqd;
    out->k = k;
    out->ndcg_k = s_ndcgk / nqd;
    out->map_k = s_mapk / nqd;
    out->mrr_k = s_mrrk / nqd;
    out->p_k = s_pk / nqd;
    out->recall10 = s_r10 / nqd;
    out->nqueries = nq;
    /* AUPRC pairs: positives (grade > 0) + sampled hard negatives from the top 100 */
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

typedef struct { const et_bm25 *bm; const char *const *qs; } bm_ctx;
static float bm_score(void *c, int32_t q, int32_t d) {
    bm_ctx *x = c;
    double v = 0;
    if (et_bm25_score_pairs(x->bm, &x->qs[q], &d, 1, &v, NULL)) return 0;
    return (float)v;
}

/* hybrid ranking of queries [a, b) per task: min-max weighted scores over the corpus, or RRF of the two
 * systems' top-F lists; then the top depth of the fused scores */
typedef struct {
    const float *Q, *D;
    int32_t d, nd, depth;
    const et_bm25 *bm;
    const char *const *qs;
    const int32_t *mrank, *brank; /* [nq, F] (RRF) */
    int32_t F;
    double alpha;
    int weighted;
    int32_t *out;                 /* [nq, depth] */
    double *dbuf;                 /* [nthreads, 3 * nd] */
    float *fbuf;                  /* [nthreads, nd] */
    int nq, ntasks;
} fuse_ctx;

static void fuse_task(void *vctx, int task, int thread) {
    fuse_ctx *c = vctx;
    int a = (int)((int64_t)c->nq * task / c->ntasks), b = (int)((int64_t)c->nq * (task + 1) / c->ntasks);
    double *m = c->dbuf + (int64_t)thread * 3 * c->nd, *bs = m + c->nd, *f = bs + c->nd;
    float *fs = c->fbuf + (int64_t)thread * c->nd;
    for (int q = a; q < b; q++) {
        if (c->weighted) {
            for (int32_t i = 0; i < c->nd; i++) m[i] = et_dot(c->Q + (int64_t)q * c->d, c->D + (int64_t)i * c->d, c->d);
            if (et_bm25_score_all(c->bm, c->qs[q], bs, NULL)) memset(bs, 0, sizeof(double) * (size_t)c->nd);
            const double *sys[2] = {m, bs};
            double w[2] = {c->alpha, 1 - c->alpha};
            if (et_fuse_minmax(sys, w, 2, c->nd, f, NULL)) memcpy(f, m, sizeof(double) * (size_t)c->nd);
        } else {
            const int32_t *rk[2] = {c->mrank + (int64_t)q * c->F, c->brank + (int64_t)q * c->F};
            et_fuse_rrf(rk, 2, c->F, c->nd, RRF_K, f, NULL);
        }
        for (int32_t i = 0; i < c->nd; i++) fs[i] = (float)f[i];
        int32_t *o = c->out + (int64_t)q * c->depth;
        int32_t kk = c->depth < c->nd ? c->depth : c->nd;
        et_rank_scores(fs, c->nd, kk, o);
        for (int32_t j = kk; j < c->depth; j++) o[j] = -1;
    }
}

et_status et_eval_ir(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                     const et_ir_eval_opts *o, const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                     const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err) {
    memset(out, 0, sizeof *out);
    et_ir_eval_opts op = o ? *o : (et_ir_eval_opts){ET_EVAL_DENSE, 10, NULL, 0, NULL};
    int32_t k = op.k > 0 ? op.k : 10, depth = k > DEPTH ? k : DEPTH;
    int use_model = op.mode != ET_EVAL_BM25, use_bm25 = op.mode != ET_EVAL_DENSE;
    if ((unsigned)op.mode > ET_EVAL_HYBRID_WEIGHTED) return et_fail(err, ET_ERR_ARG, "evaluation: unknown mode %d", (int)op.mode);
    if (use_model && (!m || !tok)) return et_fail(err, ET_ERR_ARG, "evaluation: this mode needs a model");
    int32_t d = use_model ? m->cfg.hidden_size : 0;
    float *D = NULL, *Q = NULL, *fbuf = NULL;
    int32_t *rank = NULL, *mrank = NULL, *brank = NULL;
    double *dbuf = NULL;
    et_bm25 *bm = NULL;
    et_status s = ET_OK;
    et_encode_cache ec = {0}; /* one set of activations + packed weights for both encodes */
    double t0 = et_now_s();
    rank = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * depth);
    if (!rank) goto nomem;
    if (use_model) {
        D = malloc(sizeof(float) * (size_t)(nd ? nd : 1) * d);
        Q = malloc(sizeof(float) * (size_t)(nq ? nq : 1) * d);
        if (!D || !Q) goto nomem;
        et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
        if (!e2.cache) e2.cache = &ec;
        if ((s = et_encode_texts(m, tok, pool, docs, (size_t)nd, &e2, D, err))) goto done;
        et_encode_opts e3 = e2;
        if (op.eo_queries) { e3 = *op.eo_queries; if (!e3.cache) e3.cache = e2.cache; }
        else e3.progress = NULL;
        if ((s = et_encode_texts(m, tok, pool, qs, (size_t)nq, &e3, Q, err))) goto done;
        et_l2norm_rows(D, nd, d);
        et_l2norm_rows(Q, nq, d);
    }
    out->seconds_encode = et_now_s() - t0;
    t0 = et_now_s();
    if (use_bm25) {
        et_bm25_opts bo = op.bm25 ? *op.bm25 : (et_bm25_opts){0.9, 0.4, 0};
        if (!(bm = et_bm25_build(docs, nd, &bo, err))) { s = err && err->code ? err->code : ET_ERR_NOMEM; goto done; }
    }
    if (op.mode == ET_EVAL_DENSE) {
        if ((s = et_mine_topk(pool, Q, D, nq, nd, d, depth, 0, 0, rank, NULL, err))) goto done;
    } else if (op.mode == ET_EVAL_BM25) {
        if ((s = et_bm25_search_batch(pool, bm, qs, nq, depth, rank, NULL, err))) goto done;
    } else {
        int32_t F = depth > RRF_DEPTH ? depth : RRF_DEPTH;
        if (F > nd) F = nd;
        int nth = et_pool_size(pool);
        dbuf = malloc(sizeof(double) * (size_t)nth * 3 * (size_t)(nd ? nd : 1));
        fbuf = malloc(sizeof(float) * (size_t)nth * (size_t)(nd ? nd : 1));
        if (!dbuf || !fbuf) goto nomem;
        fuse_ctx c = {Q, D, d, nd, depth, bm, qs, NULL, NULL, F, op.alpha, op.mode == ET_EVAL_HYBRID_WEIGHTED, rank, dbuf, fbuf, nq, 0};
        if (!c.weighted) {
            mrank = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * F);
            brank = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * F);
            if (!mrank || !brank) goto nomem;
            if ((s = et_mine_topk(pool, Q, D, nq, nd, d, F, 0, 0, mrank, NULL, err)) ||
                (s = et_bm25_search_batch(pool, bm, qs, nq, F, brank, NULL, err))) goto done;
            c.mrank = mrank;
            c.brank = brank;
        }
        c.ntasks = nq < nth * 8 ? nq : nth * 8;
        if (c.ntasks) et_pool_run(pool, fuse_task, &c, c.ntasks);
    }
    out->seconds_search = et_now_s() - t0;
    dense_ctx dc = {Q, D, d};
    bm_ctx bc = {bm, qs};
    if ((s = et_eval_ir_rankings(rank, depth, k, nq, qrels, qoff, use_model ? dense_score : bm_score,
                                 use_model ? (void *)&dc : (void *)&bc, out, err))) goto done;
    out->anisotropy = use_model ? et_mean_random_cosine(D, nd, d, ET_EVAL_ANISO_PAIRS, ET_EVAL_SEED) : NAN;
    if (!use_model) out->mean_pos_cosine = NAN;
    out->ndocs = nd;
    goto done;
nomem:
    s = et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory (%d docs, %d queries)", nd, nq);
done:
    free(D); free(Q); free(rank); free(mrank); free(brank); free(dbuf); free(fbuf);
    et_bm25_free(bm);
    et_encode_cache_free(&ec);
    return s;
}

et_status et_eval_ir_dense(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                           const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                           const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err) {
    et_ir_eval_opts o = {ET_EVAL_DENSE, 10, NULL, 0, NULL};
    return et_eval_ir(m, tok, pool, eo, &o, docs, nd, qs, nq, qrels, qoff, out, err);
}

et_status et_eval_ir_bm25(et_pool *pool, const et_bm25_opts *opts, const char *const *docs, int32_t nd,
                          const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                          et_ir_eval *out, et_error *err) {
    et_ir_eval_opts o = {ET_EVAL_BM25, 10, opts, 0, NULL};
    return et_eval_ir(NULL, NULL, pool, NULL, &o, docs, nd, qs, nq, qrels, qoff, out, err);
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
    et_l2norm_rows(A, n, d);
    et_l2norm_rows(Bm, n, d);
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
