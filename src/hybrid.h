/* hybrid.h - BM25 + dense retrieval over one corpus with a model: the index (document embeddings
 * and BM25), query sets with their fusion candidates, evaluation of the dense, BM25 and fused
 * rankings side by side, and learning the fusion from judged training queries (fusion.h).
 *
 * Metrics are those of evaluate.h (et_eval_ir_rankings: nDCG@10, MAP@10, MRR@10, Recall@100, AUPRC)
 * over the fused top ET_FUSION_DEPTH; the dense and BM25 rankings are exactly those of
 * et_eval_ir_dense / et_eval_ir_bm25. AUPRC pairs are scored by the cosine for dense and hybrid
 * (a fused score is only defined inside a query's candidate pool) and by BM25 for bm25. */
#ifndef ET_HYBRID_H
#define ET_HYBRID_H

#include <stdint.h>
#include "bert.h"
#include "bm25.h"
#include "encode.h"
#include "error.h"
#include "evaluate.h"
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
    const char *const *qs;   /* borrowed [nq] */
    int32_t nq;
    float *Q;                /* [nq, dim] L2-normalised (owned; NULL without a model) */
    et_fusion_cands cands;
} et_hybrid_queries;

/* Encode docs with m (eo may be NULL; m NULL = BM25 only) and build BM25 (bo NULL = defaults). */
et_status et_hybrid_index_build(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                                 const et_bm25_opts *bo, const char *const *docs, int32_t nd, et_hybrid_index *out,
                                 et_error *err);
void et_hybrid_index_free(et_hybrid_index *ix);

/* Encode the queries and build their candidates (depth per system; 0 = ET_FUSION_DEPTH). */
et_status et_hybrid_queries_build(const et_hybrid_index *ix, et_pool *pool, const et_encode_opts *eo,
                                  const char *const *qs, int32_t nq, int32_t depth, et_hybrid_queries *out,
                                  et_error *err);
void et_hybrid_queries_free(et_hybrid_queries *q);

/* Metrics of one rule (kind dense, bm25 or a fusion) over judged queries Y (qrels/qoff indexed like Y). */
et_status et_hybrid_eval(et_pool *pool, const et_hybrid_index *ix, const et_hybrid_queries *Y, const et_fusion *f,
                         const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err);

#endif
