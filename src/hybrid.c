/* hybrid.c - see hybrid.h */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hybrid.h"
#include "util.h"

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
                                 int with_bm25, const et_bm25_opts *bo, const char *const *docs, int32_t nd,
                                 const et_progress *bm25_pr, et_hybrid_index *out, et_error *err) {
    memset(out, 0, sizeof *out);
    if (!m && !with_bm25) return et_fail(err, ET_ERR_ARG, "retrieval index: neither a model nor BM25");
    out->m = m;
    out->tok = tok;
    out->docs = docs;
    out->nd = nd;
    et_status s = ET_OK;
    if (m) {
        out->dim = m->cfg.hidden_size;
        out->D = malloc(sizeof(float) * (size_t)(nd ? nd : 1) * (size_t)out->dim);
        if (!out->D) { s = et_fail(err, ET_ERR_NOMEM, "retrieval index: out of memory for %d document embeddings", nd); goto fail; }
        et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
        if ((s = et_encode_texts(m, tok, pool, docs, (size_t)nd, &e2, out->D, err))) goto fail;
        et_l2norm_rows(out->D, nd, out->dim);
    }
    if (with_bm25) {
        et_bm25_opts b = bo ? *bo : (et_bm25_opts){0.9, 0.4, 0};
        if (!(out->bm = et_bm25_build_p(docs, nd, &b, bm25_pr, err))) { s = err && err->code ? err->code : ET_ERR_NOMEM; goto fail; }
    }
    return ET_OK;
fail:
    et_hybrid_index_free(out);
    return s;
}

et_status et_hybrid_queries_build(const et_hybrid_index *ix, et_pool *pool, const et_encode_opts *eo,
                                  const char *const *qs, int32_t nq, int32_t depth, const et_progress *cands_pr,
                                  et_hybrid_queries *out, et_error *err) {
    memset(out, 0, sizeof *out);
    out->ix = ix;
    out->qs = qs;
    out->nq = nq;
    out->has_bm25 = ix->bm != NULL;
    et_status s = ET_OK;
    if (ix->m) {
        out->Q = malloc(sizeof(float) * (size_t)(nq ? nq : 1) * (size_t)ix->dim);
        if (!out->Q) { s = et_fail(err, ET_ERR_NOMEM, "retrieval: out of memory for %d query embeddings", nq); goto fail; }
        et_encode_opts e2 = eo ? *eo : (et_encode_opts){32, 256, NULL, NULL};
        if ((s = et_encode_texts(ix->m, ix->tok, pool, qs, (size_t)nq, &e2, out->Q, err))) goto fail;
        et_l2norm_rows(out->Q, nq, ix->dim);
    }
    if ((s = et_fusion_cands_build(pool, out->Q, ix->m ? ix->D : NULL, nq, ix->nd, ix->dim, ix->bm, qs, depth > 0 ? depth : ET_FUSION_DEPTH,
                                   cands_pr, &out->cands, err)))
        goto fail;
    return ET_OK;
fail:
    et_hybrid_queries_free(out);
    return s;
}

et_status et_hybrid_rank(et_pool *pool, const et_hybrid_queries *Y, et_retrieval_mode mode, const et_fusion *f,
                         int32_t k, int32_t *out_idx, double *out_score, et_error *err) {
    int has_d = Y->Q != NULL, has_b = Y->has_bm25;
    et_fusion g = f ? *f : et_fusion_default();
    if (mode == ET_MODE_DENSE) g.kind = ET_FUSION_DENSE;
    else if (mode == ET_MODE_BM25) g.kind = ET_FUSION_BM25;
    else if (mode != ET_MODE_HYBRID) return et_fail(err, ET_ERR_ARG, "retrieval: unknown mode %d", (int)mode);
    if (g.kind != ET_FUSION_BM25 && !has_d) return et_fail(err, ET_ERR_ARG, "retrieval: mode %s needs a model", et_retrieval_mode_name(mode));
    if (g.kind != ET_FUSION_DENSE && !has_b) return et_fail(err, ET_ERR_ARG, "retrieval: mode %s needs BM25", et_retrieval_mode_name(mode));
    if (g.kind == ET_FUSION_BM25) { /* exactly BM25's own ranking, also past the matching docs */
        return et_bm25_search_batch(pool, Y->ix->bm, Y->qs, Y->nq, k, out_idx, out_score, err);
    }
    g.depth = Y->cands.depth;
    if (g.kind == ET_FUSION_RERANK && g.top_n > g.depth) g.top_n = g.depth;
    if (!out_score) return et_fusion_rank_all(pool, &g, &Y->cands, k, out_idx, err);
    for (int32_t q = 0; q < Y->nq; q++) {
        et_status s = et_fusion_rank(&g, &Y->cands, q, k, out_idx + (int64_t)q * k, out_score + (int64_t)q * k, err);
        if (s) return s;
    }
    return ET_OK;
}
