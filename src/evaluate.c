/* evaluate.c - held-out evaluation (see evaluate.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"
#include "hybrid.h"
#include "kernels.h"
#include "metrics.h"
#include "mine.h"
#include "rng.h"

#include "util.h"

#define DEPTH 100      /* AUPRC negatives come from the top 100; Recall@100 */

static int grade_of(const et_qrel *j, int64_t nj, int32_t doc) {
    int64_t a = 0, b = nj;
    while (a < b) {
        int64_t m = (a + b) / 2;
        if (j[m].d == doc) return j[m].grade;
        if (j[m].d < doc) a = m + 1; else b = m;
    }
    return 0;
}

static et_status rankings_pq(const int32_t *rank, int32_t depth, int32_t k, int32_t nq, const et_qrel *qrels,
                             const int64_t *qoff, float (*pair_score)(void *ctx, int32_t q, int32_t d), void *ctx,
                             et_ir_eval *out, double *pq, et_error *err);

et_status et_eval_ir_rankings(const int32_t *rank, int32_t depth, int32_t k, int32_t nq, const et_qrel *qrels,
                              const int64_t *qoff, float (*pair_score)(void *ctx, int32_t q, int32_t d), void *ctx,
                              et_ir_eval *out, et_error *err) {
    return rankings_pq(rank, depth, k, nq, qrels, qoff, pair_score, ctx, out, NULL, err);
}

/* pq [nq] (may be NULL) receives each query's nDCG@10 */
static et_status rankings_pq(const int32_t *rank, int32_t depth, int32_t k, int32_t nq, const et_qrel *qrels,
                             const int64_t *qoff, float (*pair_score)(void *ctx, int32_t q, int32_t d), void *ctx,
                             et_ir_eval *out, double *pq, et_error *err) {
    if (k <= 0) k = 10;
    double s_ndcg = 0, s_map = 0, s_mrr = 0, s_r100 = 0, s_ndcgk = 0, s_mapk = 0, s_mrrk = 0, s_pk = 0, s_r10 = 0;
    for (int32_t q = 0; q < nq; q++) {
        const int32_t *r = rank + (int64_t)q * depth;
        const et_qrel *j = qrels + qoff[q];
        int64_t nj = qoff[q + 1] - qoff[q];
        double nd10 = et_ndcg_at_k(r, depth, j, nj, 10);
        if (pq) pq[q] = nd10;
        s_ndcg += nd10;
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

typedef struct { const et_hybrid_index *ix; const et_hybrid_queries *Y; int bm25; } pair_ctx;

/* AUPRC pair score: the cosine (dense and hybrid: a fused score only exists inside a query's pool), BM25 */
static float pair_score(void *vc, int32_t q, int32_t d) {
    pair_ctx *c = vc;
    if (c->bm25) {
        double v = 0;
        if (et_bm25_score_pairs(c->ix->bm, &c->Y->qs[q], &d, 1, &v, NULL)) return 0;
        return (float)v;
    }
    return et_dot(c->Y->Q + (int64_t)q * c->ix->dim, c->ix->D + (int64_t)d * c->ix->dim, c->ix->dim);
}

static et_retrieval_mode rmode(et_eval_mode m) {
    return m == ET_EVAL_BM25 ? ET_MODE_BM25 : m == ET_EVAL_HYBRID ? ET_MODE_HYBRID : ET_MODE_DENSE;
}

static et_status ranked_pq(et_pool *pool, const et_hybrid_index *ix, const et_hybrid_queries *Y, et_eval_mode mode,
                           const et_fusion *fusion, int32_t k, const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out,
                           double *pq, et_error *err);

et_status et_eval_ir_ranked(et_pool *pool, const et_hybrid_index *ix, const et_hybrid_queries *Y, et_eval_mode mode,
                            const et_fusion *fusion, int32_t k, const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out,
                            et_error *err) {
    return ranked_pq(pool, ix, Y, mode, fusion, k, qrels, qoff, out, NULL, err);
}

static et_status ranked_pq(et_pool *pool, const et_hybrid_index *ix, const et_hybrid_queries *Y, et_eval_mode mode,
                           const et_fusion *fusion, int32_t k, const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out,
                           double *pq, et_error *err) {
    memset(out, 0, sizeof *out);
    if ((unsigned)mode > ET_EVAL_HYBRID) return et_fail(err, ET_ERR_ARG, "evaluation: unknown mode %d", (int)mode);
    if (k <= 0) k = 10;
    int32_t depth = k > DEPTH ? k : DEPTH;
    if (Y->cands.depth < depth)
        return et_fail(err, ET_ERR_ARG, "evaluation: the query set's candidates go %d deep, %d needed", Y->cands.depth, depth);
    double t0 = et_now_s();
    int32_t *rank = malloc(sizeof(int32_t) * (size_t)(Y->nq ? Y->nq : 1) * (size_t)depth);
    if (!rank) return et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory (%d queries)", Y->nq);
    et_status s = et_hybrid_rank(pool, Y, rmode(mode), fusion, depth, rank, NULL, err);
    out->seconds_search = et_now_s() - t0;
    pair_ctx c = {ix, Y, mode == ET_EVAL_BM25};
    if (!s) s = rankings_pq(rank, depth, k, Y->nq, qrels, qoff, pair_score, &c, out, pq, err);
    free(rank);
    if (s) return s;
    out->ndocs = ix->nd;
    if (mode == ET_EVAL_BM25) out->anisotropy = out->mean_pos_cosine = NAN;
    else out->anisotropy = et_mean_random_cosine(ix->D, ix->nd, ix->dim, ET_EVAL_ANISO_PAIRS, ET_EVAL_SEED);
    return ET_OK;
}

et_status et_eval_ir_modes(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                           const et_ir_eval_opts *o, const et_eval_mode *modes, int nmodes, const char *const *docs,
                           int32_t nd, const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                           et_ir_eval *out, et_error *err) {
    et_ir_eval_opts op = o ? *o : (et_ir_eval_opts){ET_EVAL_DENSE, 10, NULL, NULL, NULL};
    int use_model = 0, use_bm25 = 0;
    for (int i = 0; i < nmodes; i++) {
        memset(&out[i], 0, sizeof out[i]);
        if ((unsigned)modes[i] > ET_EVAL_HYBRID) return et_fail(err, ET_ERR_ARG, "evaluation: unknown mode %d", (int)modes[i]);
        use_model |= modes[i] != ET_EVAL_BM25;
        use_bm25 |= modes[i] != ET_EVAL_DENSE;
    }
    if (use_model && (!m || !tok)) return et_fail(err, ET_ERR_ARG, "evaluation: this mode needs a model");
    et_hybrid_index ix;
    memset(&ix, 0, sizeof ix);
    et_encode_cache ec = {0}; /* one set of activations + packed weights for both encodes */
    et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
    if (!e2.cache) e2.cache = &ec;
    et_encode_opts e3 = e2;
    if (op.eo_queries) { e3 = *op.eo_queries; if (!e3.cache) e3.cache = e2.cache; }
    else e3.progress = NULL;
    op.eo_queries = &e3;
    double t0 = et_now_s();
    et_status s = et_hybrid_index_build(use_model ? m : NULL, tok, pool, &e2, use_bm25, op.bm25, docs, nd, NULL, &ix, err);
    double t_index = et_now_s() - t0;
    if (!s) s = et_eval_ir_modes_ix(&ix, pool, &op, modes, nmodes, qs, nq, qrels, qoff, out, err);
    for (int i = 0; !s && i < nmodes; i++) out[i].seconds_encode += t_index; /* + the corpus encoded, BM25 built */
    et_hybrid_index_free(&ix);
    et_encode_cache_free(&ec);
    return s;
}

et_status et_eval_ir_dims(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                          const et_ir_eval_opts *o, const int *dims, int ndims, const char *const *docs, int32_t nd,
                          const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out,
                          double *per_query, et_error *err) {
    if (!m || !tok) return et_fail(err, ET_ERR_ARG, "evaluation at several sizes: needs a model");
    int C = m->cfg.hidden_size;
    for (int i = 0; i < ndims; i++) {
        memset(&out[i], 0, sizeof out[i]);
        if (dims[i] < 0 || dims[i] > C)
            return et_fail(err, ET_ERR_ARG, "evaluation at size %d: the model's embeddings have %d values (give 1..%d)", dims[i], C, C);
    }
    et_ir_eval_opts op = o ? *o : (et_ir_eval_opts){ET_EVAL_DENSE, 10, NULL, NULL, NULL};
    et_encode_cache ec = {0}; /* one set of activations + packed weights for every encode */
    et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
    if (!e2.cache) e2.cache = &ec;
    e2.dim = 0; /* the corpus in full, cut below */
    et_encode_opts e3 = e2;
    if (op.eo_queries) { e3 = *op.eo_queries; if (!e3.cache) e3.cache = e2.cache; }
    else e3.progress = NULL;
    op.eo_queries = &e3;
    op.per_query_ndcg10 = NULL;
    /* the index of et_hybrid_index_build (model only) made by hand, so the corpus is encoded once: its rows are the
     * full encoding cut per size, then L2-normalised, the same steps as that build with eo->dim set */
    et_hybrid_index ix;
    memset(&ix, 0, sizeof ix);
    ix.m = m; ix.tok = tok; ix.docs = docs; ix.nd = nd; ix.dim = C;
    size_t nf = (size_t)(nd ? nd : 1) * (size_t)C;
    float *full = malloc(sizeof(float) * nf);
    ix.D = malloc(sizeof(float) * nf);
    et_status s = ET_OK;
    if (!full || !ix.D) s = et_fail(err, ET_ERR_NOMEM, "evaluation at several sizes: out of memory for %d document embeddings", nd);
    double t0 = et_now_s();
    if (!s) s = et_encode_texts(m, tok, pool, docs, (size_t)nd, &e2, full, err);
    double t_index = et_now_s() - t0;
    for (int i = 0; !s && i < ndims; i++) {
        memcpy(ix.D, full, sizeof(float) * (size_t)nd * (size_t)C);
        et_embed_truncate(ix.D, (size_t)nd, C, dims[i]);
        et_l2norm_rows(ix.D, nd, C);
        e3.dim = dims[i];
        op.per_query_ndcg10 = per_query ? per_query + (size_t)i * (size_t)nq : NULL;
        et_eval_mode dense = ET_EVAL_DENSE;
        s = et_eval_ir_modes_ix(&ix, pool, &op, &dense, 1, qs, nq, qrels, qoff, &out[i], err);
        out[i].seconds_encode += t_index / ndims; /* the corpus encoded once, shared */
    }
    free(full);
    et_hybrid_index_free(&ix);
    et_encode_cache_free(&ec);
    return s;
}

et_status et_eval_ir_modes_ix(const et_hybrid_index *ix, et_pool *pool, const et_ir_eval_opts *o, const et_eval_mode *modes,
                              int nmodes, const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                              et_ir_eval *out, et_error *err) {
    et_ir_eval_opts op = o ? *o : (et_ir_eval_opts){ET_EVAL_DENSE, 10, NULL, NULL, NULL};
    int32_t k = op.k > 0 ? op.k : 10, depth = k > DEPTH ? k : DEPTH;
    for (int i = 0; i < nmodes; i++) {
        memset(&out[i], 0, sizeof out[i]);
        if ((unsigned)modes[i] > ET_EVAL_HYBRID) return et_fail(err, ET_ERR_ARG, "evaluation: unknown mode %d", (int)modes[i]);
        if (modes[i] != ET_EVAL_BM25 && (!ix->m || !ix->D)) return et_fail(err, ET_ERR_ARG, "evaluation: mode %s needs a model and document embeddings", modes[i] == ET_EVAL_HYBRID ? "hybrid" : "dense");
        if (modes[i] != ET_EVAL_DENSE && !ix->bm) return et_fail(err, ET_ERR_ARG, "evaluation: this mode needs BM25");
    }
    et_encode_opts e3 = op.eo_queries ? *op.eo_queries : (et_encode_opts){32, 256, NULL, NULL};
    et_hybrid_queries Y;
    memset(&Y, 0, sizeof Y);
    double t0 = et_now_s();
    et_status s = et_hybrid_queries_build(ix, pool, &e3, qs, nq, depth, NULL, &Y, err);
    double t_prep = et_now_s() - t0;
    for (int i = 0; !s && i < nmodes; i++) {
        s = ranked_pq(pool, ix, &Y, modes[i], op.fusion, k, qrels, qoff, &out[i], i == 0 ? op.per_query_ndcg10 : NULL, err);
        out[i].seconds_encode = t_prep; /* queries encoded, candidates gathered */
    }
    et_hybrid_queries_free(&Y);
    return s;
}

et_status et_eval_ir(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                     const et_ir_eval_opts *o, const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                     const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err) {
    et_eval_mode mode = o ? o->mode : ET_EVAL_DENSE;
    return et_eval_ir_modes(m, tok, pool, eo, o, &mode, 1, docs, nd, qs, nq, qrels, qoff, out, err);
}

et_status et_eval_ir_dense(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                           const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                           const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err) {
    et_ir_eval_opts o = {ET_EVAL_DENSE, 10, NULL, NULL, NULL};
    return et_eval_ir(m, tok, pool, eo, &o, docs, nd, qs, nq, qrels, qoff, out, err);
}

et_status et_eval_ir_bm25(et_pool *pool, const et_bm25_opts *opts, const char *const *docs, int32_t nd,
                          const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                          et_ir_eval *out, et_error *err) {
    et_ir_eval_opts o = {ET_EVAL_BM25, 10, opts, NULL, NULL};
    return et_eval_ir(NULL, NULL, pool, NULL, &o, docs, nd, qs, nq, qrels, qoff, out, err);
}

/* The distinct texts of t[n] in first-occurrence order: uniq[*nu] (borrowed pointers) and map[n] (row -> uniq index). */
static et_status distinct_texts(const char *const *t, int64_t n, int32_t *map, const char **uniq, int64_t *nu, et_error *err) {
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n) cap <<= 1;
    int32_t *slot = malloc(sizeof(int32_t) * cap);
    if (!slot) return et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory for a %llu-slot text table", (unsigned long long)cap);
    memset(slot, 0xff, sizeof(int32_t) * cap);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = et_fnv1a64_str(t[i]);
        h ^= h >> 29;
        for (h &= cap - 1;; h = (h + 1) & (cap - 1)) {
            if (slot[h] < 0) { slot[h] = (int32_t)m; uniq[m] = t[i]; map[i] = (int32_t)m++; break; }
            if (!strcmp(uniq[slot[h]], t[i])) { map[i] = slot[h]; break; }
        }
    }
    free(slot);
    *nu = m;
    return ET_OK;
}

/* the pair metrics of scores s[n] (cosine or BM25) against label[n] */
static void pair_metrics(const double *cs, const float *label, int64_t n, et_pair_eval *out, et_error *err) {
    (void)err;
    double *lab = malloc(sizeof(double) * (size_t)(n ? n : 1));
    float *sf = malloc(sizeof(float) * (size_t)(n ? n : 1));
    double pc = 0;
    out->npos = 0;
    for (int64_t i = 0; i < n; i++) if (label[i] >= 0.5f) { out->npos++; pc += cs[i]; }
    out->n = n;
    out->mean_pos_cosine = out->npos ? pc / out->npos : NAN;
    if (!lab || !sf) { /* the rank statistics need the copies */
        out->spearman = out->pearson = out->auprc = NAN;
    } else {
        for (int64_t i = 0; i < n; i++) { lab[i] = label[i]; sf[i] = (float)cs[i]; }
        out->spearman = 100 * et_spearman(cs, lab, n);
        out->pearson = 100 * et_pearson(cs, lab, n);
        out->auprc = out->npos ? et_auprc(sf, label, n) : NAN;
    }
    free(lab); free(sf);
}

et_status et_eval_pairs_dense(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                              const char *const *a, const char *const *b, const float *label, int64_t n,
                              et_pair_eval *out, et_error *err) {
    memset(out, 0, sizeof *out);
    if (n > INT32_MAX) return et_fail(err, ET_ERR_UNSUPPORTED, "evaluation: more than 2^31 pairs");
    int32_t d = m->cfg.hidden_size;
    size_t nn = (size_t)(n ? n : 1);
    float *A = malloc(sizeof(float) * nn * d), *Bm = malloc(sizeof(float) * nn * d);
    double *cs = malloc(sizeof(double) * nn);
    int32_t *map = malloc(sizeof(int32_t) * nn);
    const char **ub = malloc(sizeof(char *) * nn);
    int64_t nb = 0;
    et_status s = ET_OK;
    et_encode_cache ec = {0}; /* one set of activations + packed weights for both encodes */
    if (!A || !Bm || !cs || !map || !ub) { s = et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory (%lld pairs)", (long long)n); goto done; }
    if ((s = distinct_texts(b, n, map, ub, &nb, err))) goto done;
    et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
    if (!e2.cache) e2.cache = &ec;
    if ((s = et_encode_texts(m, tok, pool, a, (size_t)n, &e2, A, err))) goto done;
    if ((s = et_encode_texts(m, tok, pool, ub, (size_t)nb, &e2, Bm, err))) goto done; /* each distinct b once */
    et_l2norm_rows(A, n, d);
    et_l2norm_rows(Bm, nb, d);
    for (int64_t i = 0; i < n; i++) cs[i] = et_dot(A + i * d, Bm + (int64_t)map[i] * d, d);
    pair_metrics(cs, label, n, out, err);
    out->anisotropy = et_mean_random_cosine(Bm, nb, d, ET_EVAL_ANISO_PAIRS, ET_EVAL_SEED);
done:
    free(A); free(Bm); free(cs); free(map); free(ub);
    et_encode_cache_free(&ec);
    return s;
}

et_status et_eval_pairs_bm25(et_pool *pool, const et_bm25_opts *opts, const char *const *a, const char *const *b,
                             const float *label, int64_t n, et_pair_eval *out, et_error *err) {
    (void)pool;
    memset(out, 0, sizeof *out);
    if (n > INT32_MAX) return et_fail(err, ET_ERR_UNSUPPORTED, "evaluation: more than 2^31 pairs");
    size_t nn = (size_t)(n ? n : 1);
    double *cs = malloc(sizeof(double) * nn);
    int32_t *map = malloc(sizeof(int32_t) * nn);
    const char **ub = malloc(sizeof(char *) * nn);
    int64_t nb = 0;
    et_bm25 *bm = NULL;
    et_status s = ET_OK;
    if (!cs || !map || !ub) { s = et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory (%lld pairs)", (long long)n); goto done; }
    if ((s = distinct_texts(b, n, map, ub, &nb, err))) goto done;
    et_bm25_opts bo = opts ? *opts : (et_bm25_opts){0.9, 0.4, 0};
    if (!(bm = et_bm25_build(ub, (int32_t)nb, &bo, err))) { s = err && err->code ? err->code : ET_ERR_NOMEM; goto done; }
    if ((s = et_bm25_score_pairs(bm, a, map, n, cs, err))) goto done;
    for (int64_t i = 0; i < n; i++) cs[i] = (float)cs[i]; /* ranked as floats, as the other systems' scores */
    pair_metrics(cs, label, n, out, err);
    out->anisotropy = NAN;
    out->mean_pos_cosine = NAN;
done:
    free(cs); free(map); free(ub);
    et_bm25_free(bm);
    return s;
}
