/* hybrid.h - retrieval over one corpus with a model and/or BM25: the index (L2-normalised document
 * embeddings and the BM25 index), query sets (embeddings and their fusion candidates, fusion.h), and
 * the ranking of a query set in one mode: dense (the model's exact top-depth by cosine, ties by lower
 * doc index, as et_mine_topk), bm25 (et_bm25_search itself: matching docs by score, then the others
 * in corpus order) or hybrid (a fusion over the candidates).
 * `search`, `eval` (evaluate.h), `fuse` and `finetune` all rank through here. */
#ifndef ET_HYBRID_H
#define ET_HYBRID_H

#include <stdint.h>
#include "bert.h"
#include "bm25.h"
#include "encode.h"
#include "error.h"
#include "fusion.h"
#include "threads.h"
#include "tokenizer.h"

typedef struct {
    const et_bert *m;        /* borrowed; NULL = BM25 only */
    const et_tokenizer *tok; /* borrowed */
    const char *const *docs; /* borrowed [nd] */
    int32_t nd, dim;
    float *D;                /* [nd, dim] L2-normalised (owned; NULL without a model) */
    et_bm25 *bm;             /* owned */
} et_hybrid_index;

typedef struct {
    const et_hybrid_index *ix; /* borrowed: the index the set was built on */
    const char *const *qs;   /* borrowed [nq] */
    int32_t nq;
    float *Q;                /* [nq, dim] L2-normalised (owned; NULL without a model) */
    int has_bm25;            /* the index had BM25 */
    et_fusion_cands cands;
} et_hybrid_queries;

/* Encode docs with m (eo may be NULL: batch 32, 256 tokens; m NULL = no embeddings) and, if with_bm25,
 * build BM25 (bo NULL = k1 0.9, b 0.4; bm25_pr, may be NULL: its progress, et_bm25_build_p). At least one of the two. */
et_status et_hybrid_index_build(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                                 int with_bm25, const et_bm25_opts *bo, const char *const *docs, int32_t nd,
                                 const et_progress *bm25_pr, et_hybrid_index *out, et_error *err);
void et_hybrid_index_free(et_hybrid_index *ix);

/* Encode the queries (eo as is: no progress line is forced off) and build their candidates, depth per
 * system (0 = ET_FUSION_DEPTH); rankings of this set can be asked up to that depth exactly. cands_pr (may be NULL):
 * the candidates' progress (et_fusion_cands_build). */
et_status et_hybrid_queries_build(const et_hybrid_index *ix, et_pool *pool, const et_encode_opts *eo,
                                  const char *const *qs, int32_t nq, int32_t depth, const et_progress *cands_pr,
                                  et_hybrid_queries *out, et_error *err);
void et_hybrid_queries_free(et_hybrid_queries *q);

/* Rank every query of Y: out_idx [nq, k] best first (-1 padding), out_score [nq, k] (may be NULL: the
 * cosine for dense, the BM25 score for bm25, the fused score for hybrid). f: the fusion of the hybrid
 * mode (NULL = et_fusion_default()). ET_ERR_ARG when the mode needs what the index lacks. */
et_status et_hybrid_rank(et_pool *pool, const et_hybrid_queries *Y, et_retrieval_mode mode, const et_fusion *f,
                         int32_t k, int32_t *out_idx, double *out_score, et_error *err);

#endif
