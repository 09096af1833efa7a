/* hybrid.c - see hybrid.h */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hybrid.h"
#include "kernels.h"
#include "metrics.h"

static void l2norm(float *x, int64_t n, int32_t d) {
    for (int64_t i = 0; i < n; i++) {
        float *r = x + i * d;
        float s = sqrtf(et_dot(r, r, d));
        if (s > 1e-12f) for (int32_t j = 0; j < d; j++) r[j] /= s;
    }
}

void et_hybrid_index_free(et_hybrid_index *ix) {
    free(ix->D);
    et_bm25_free(ix->bm);
    memset(ix, 0, sizeof *ix);
}

void et_hybrid_queries_free(et_hybrid_queries *q) {
    free(q->Q);
    et_fusion_cands_free(&q->cands);
    memset(q, 0, sizeof *q);
}

et_status et_hybrid_index_build(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                                 const et_bm25_opts *bo, const char *const *docs, int32_t nd, et_hybrid_index *out,
                                 et_error *err) {
    memset(out, 0, sizeof *out);
    out->m = m;
    out->tok = tok;
    out->docs = docs;
    out->nd = nd;
    et_status s = ET_OK;
    if (m) {
        out->dim = m->cfg.hidden_size;
        out->D = malloc(sizeof(float) * (size_t)(nd ? nd : 1) * (size_t)out->dim);
        if (!out->D) { s = et_fail(err, ET_ERR_NOMEM, "hybrid index: out of memory (%d docs)", nd); goto fail; }
        et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
        if ((s = et_encode_texts(m, tok, pool, docs, (size_t)nd, &e2, out->D, err))) goto fail;
        l2norm(out->D, nd, out->dim);
    }
    et_bm25_opts b = bo ? *bo : (et_bm25_opts){0.9, 0.4, 0};
    if (!(out->bm = et_bm25_build(docs, nd, &b, err))) { s = err && err->code ? err->code : ET_ERR_NOMEM; goto fail; }
    return ET_OK;
fail:
    et_hybrid_index_free(out);
    return s;
}

et_status et_hybrid_queries_build(const et_hybrid_index *ix, et_pool *pool, const et_encode_opts *eo,
                                  const char *const *qs, int32_t nq, int32_t depth, et_hybrid_queries *out,
                                  et_error *err) {
    memset(out, 0, sizeof *out);
    out->qs = qs;
    out->nq = nq;
    et_status s = ET_OK;
    if (ix->m) {
        out->Q = malloc(sizeof(float) * (size_t)(nq ? nq : 1) * (size_t)ix->dim);
        if (!out->Q) { s = et_fail(err, ET_ERR_NOMEM, "hybrid queries: out of memory (%d queries)", nq); goto fail; }
        et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
        e2.progress = NULL;
        if ((s = et_encode_texts(ix->m, ix->tok, pool, qs, (size_t)nq, &e2, out->Q, err))) goto fail;
        l2norm(out->Q, nq, ix->dim);
    }
    if ((s = et_fusion_cands_build(pool, out->Q, ix->D, nq, ix->nd, ix->dim, ix->bm, qs, depth > 0 ? depth : ET_FUSION_DEPTH,
                                   &out->cands, err)))
        goto fail;
    return ET_OK;
fail:
    et_hybrid_queries_free(out);
    return s;
}

typedef struct { const et_hybrid_index *ix; const et_hybrid_queries *Y; int bm25; } pair_ctx;

static float pair_score(void *vc, int32_t q, int32_t d) {
    pair_ctx *c = vc;
    if (c->bm25 || !c->Y->Q) {
        double v = 0;
        if (et_bm25_score_pairs(c->ix->bm, &c->Y->qs[q], &d, 1, &v, NULL)) return 0;
        return (float)v;
    }
    return et_dot(c->Y->Q + (int64_t)q * c->ix->dim, c->ix->D + (int64_t)d * c->ix->dim, c->ix->dim);
}

et_status et_hybrid_eval(et_pool *pool, const et_hybrid_index *ix, const et_hybrid_queries *Y, const et_fusion *f,
                         const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err) {
    memset(out, 0, sizeof *out);
    if (f->kind != ET_FUSION_BM25 && !Y->Q) return et_fail(err, ET_ERR_ARG, "hybrid evaluation: the %s rule needs a model", et_fusion_kind_name(f->kind));
    int32_t depth = Y->cands.depth > 100 ? Y->cands.depth : 100;
    int32_t *rank = malloc(sizeof(int32_t) * (size_t)(Y->nq ? Y->nq : 1) * (size_t)depth);
    if (!rank) return et_fail(err, ET_ERR_NOMEM, "hybrid evaluation: out of memory (%d queries)", Y->nq);
    et_fusion g = *f;
    g.depth = Y->cands.depth;
    if (g.kind == ET_FUSION_RERANK && g.top_n > g.depth) g.top_n = g.depth;
    et_status s = et_fusion_rank_all(pool, &g, &Y->cands, depth, rank, err);
    pair_ctx c = {ix, Y, f->kind == ET_FUSION_BM25};
    if (!s) s = et_eval_ir_rankings(rank, depth, Y->nq, qrels, qoff, pair_score, &c, out, err);
    free(rank);
    if (s) return s;
    out->ndocs = ix->nd;
    if (f->kind == ET_FUSION_BM25 || !ix->D) out->anisotropy = out->mean_pos_cosine = NAN;
    else out->anisotropy = et_mean_random_cosine(ix->D, ix->nd, ix->dim, ET_EVAL_ANISO_PAIRS, ET_EVAL_SEED);
    return ET_OK;
}
