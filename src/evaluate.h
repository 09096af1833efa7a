/* evaluate.h - held-out evaluation of a model, BM25 or a hybrid: retrieval metrics and pair metrics.
 *
 * The ONE evaluation protocol: `embedtune eval` (src/cli/cli_eval.c), `embedtune finetune` (finetune.c) and the
 * benchmarks call these functions, so every face prints the same numbers for the same data.
 *   retrieval : the ranking of hybrid.h (the model's exact top-depth by cosine of L2-normalised embeddings,
 *               BM25's top-depth, or the fusion of both, fusion.h), depth = max(k, 100), then nDCG@k,
 *               MAP@k, MRR@k, P@k, Recall@10, Recall@100 and the same at k = 10 (metrics.h definitions),
 *               averaged over the given (judged) queries;
 *   AUPRC     : the judged pairs with grade > 0 are the positives; per query as many negatives as it has
 *               positives (fewer if not available) are drawn, seeded (20240917, forked per query), from
 *               the non-relevant docs of the evaluated ranking's top 100; scored by the system's score
 *               (the model cosine for dense and hybrid, BM25 for bm25);
 *   anisotropy: mean cosine of random corpus-embedding pairs (100k pairs max, same seed); NaN for BM25;
 *   mean_pos_cosine: mean model cosine of the positive pairs; NaN for BM25;
 *   pairs     : Spearman / Pearson (x100) of cos(a_i, b_i) against label_i, AUPRC (label >= 0.5 is
 *               positive), anisotropy over the distinct b texts, mean cosine of the positive pairs (or BM25). */
#ifndef ET_EVALUATE_H
#define ET_EVALUATE_H

#include <stdint.h>
#include "bert.h"
#include "bm25.h"
#include "data.h"
#include "encode.h"
#include "error.h"
#include "fusion.h"
#include "hybrid.h"
#include "threads.h"
#include "tokenizer.h"

#define ET_EVAL_SEED 20240917ull
#define ET_EVAL_ANISO_PAIRS 100000

typedef enum {
    ET_EVAL_DENSE = 0,  /* the model's cosine */
    ET_EVAL_BM25 = 1,
    ET_EVAL_HYBRID = 2  /* the fusion of both (et_ir_eval_opts.fusion) */
} et_eval_mode;

typedef struct {
    et_eval_mode mode;                 /* default (0) dense */
    int32_t k;                         /* cut-off of the @k metrics; 0 = 10 */
    const et_bm25_opts *bm25;          /* NULL = k1 0.9, b 0.4 */
    const et_fusion *fusion;           /* hybrid: NULL = et_fusion_default() */
    const et_encode_opts *eo_queries;  /* encoding of the queries; NULL = the corpus options without progress */
    double *per_query_ndcg10;          /* [nq] or NULL: receives each query's nDCG@10 (et_eval_ir_modes: of modes[0]) */
} et_ir_eval_opts;

typedef struct {
    double ndcg10, map10, mrr10, recall100;   /* at 10 (and 100), whatever k is */
    int32_t k;                                /* the cut-off of the next four */
    double ndcg_k, map_k, mrr_k, p_k;
    double recall10;
    double auprc;
    double anisotropy;       /* NaN for BM25 */
    double mean_pos_cosine;  /* NaN for BM25 */
    int32_t nqueries, ndocs;
    int64_t auprc_pos, auprc_neg;
    double seconds_encode, seconds_search;    /* encoding (model modes); BM25 index + search + fusion */
} et_ir_eval;

/* qrels[qoff[q] .. qoff[q+1]) are query q's judgments (q in [0, nq), doc in [0, nd)); every query is
 * evaluated. m, tok and eo are not used by (and may be NULL for) ET_EVAL_BM25; eo NULL = batch 32, 256
 * tokens, no progress. o NULL = dense, k 10. */
et_status et_eval_ir(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                     const et_ir_eval_opts *o, const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                     const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err);
/* Several modes from one encoding of the corpus and the queries (o->mode is ignored): out[i] for modes[i],
 * e.g. dense, bm25 and hybrid side by side. */
et_status et_eval_ir_modes(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                           const et_ir_eval_opts *o, const et_eval_mode *modes, int nmodes, const char *const *docs,
                           int32_t nd, const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                           et_ir_eval *out, et_error *err);
/* The same over an index built already (an `embedtune index` file's, index.h, or et_hybrid_index_build's): encodes
 * the queries (o->eo_queries; NULL = batch 32, 256 tokens) with ix->m and ranks them in every mode (dense and hybrid
 * need ix->m and ix->D, bm25 and hybrid ix->bm). qrels' doc numbers are ix's rows. seconds_encode is the queries'. */
et_status et_eval_ir_modes_ix(const et_hybrid_index *ix, et_pool *pool, const et_ir_eval_opts *o, const et_eval_mode *modes,
                              int nmodes, const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                              et_ir_eval *out, et_error *err);
/* Dense evaluation at several embedding sizes (Matryoshka, matryoshka.h) from ONE encoding of the corpus: out[i] is
 * exactly et_eval_ir's dense result with eo->dim = dims[i] (0 = all values): the corpus embeddings are encoded in full
 * once and cut per size with et_embed_truncate (the first dims[i] values, re-normalised), the queries are encoded at
 * each size (o->eo_queries as in et_eval_ir; its dim is overridden). per_query (NULL, or [ndims * nq]): row i gets
 * each query's nDCG@10 at dims[i]. o->mode and o->per_query_ndcg10 are ignored (dense; per_query instead). Every
 * dims[i] in 0..hidden (ET_ERR_ARG otherwise). */
et_status et_eval_ir_dims(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                          const et_ir_eval_opts *o, const int *dims, int ndims, const char *const *docs, int32_t nd,
                          const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out,
                          double *per_query, et_error *err);
/* The same over an index and a query set built already (hybrid.h; candidates >= max(k, 100) deep): the
 * metrics of one mode. seconds_encode is left 0, seconds_search is the ranking. */
et_status et_eval_ir_ranked(et_pool *pool, const et_hybrid_index *ix, const et_hybrid_queries *Y, et_eval_mode mode,
                            const et_fusion *fusion, int32_t k, const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out,
                            et_error *err);
/* et_eval_ir with mode dense, k 10. */
et_status et_eval_ir_dense(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                           const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                           const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err);
/* et_eval_ir with mode bm25 (opts NULL = k1 0.9, b 0.4), k 10. */
et_status et_eval_ir_bm25(et_pool *pool, const et_bm25_opts *opts, const char *const *docs, int32_t nd,
                          const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                          et_ir_eval *out, et_error *err);
/* The metric part on its own: rank [nq, depth] (depth >= max(k, 100)), cut-off k (0 = 10),
 * pair_score(ctx, q, d) for the AUPRC pairs; fills the metric fields of out (not ndocs, anisotropy, seconds). */
et_status et_eval_ir_rankings(const int32_t *rank, int32_t depth, int32_t k, int32_t nq, const et_qrel *qrels,
                              const int64_t *qoff, float (*pair_score)(void *ctx, int32_t q, int32_t d), void *ctx,
                              et_ir_eval *out, et_error *err);

typedef struct {
    double spearman, pearson; /* x100; NaN if the labels are constant */
    double auprc;             /* NaN if no label >= 0.5 */
    double anisotropy, mean_pos_cosine;
    int64_t n, npos;
} et_pair_eval;

/* Rows (a_i, b_i, label_i): pairs with labels in [0,1], or STS (label = the gold score). The distinct b texts are
 * encoded once each; anisotropy is over them (a passage repeated in many rows counts once). */
et_status et_eval_pairs_dense(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                              const char *const *a, const char *const *b, const float *label, int64_t n,
                              et_pair_eval *out, et_error *err);
/* The same with BM25 (opts NULL = k1 0.9, b 0.4) over the distinct b texts as the corpus; the BM25 score of
 * (a_i, b_i) rounded to float replaces the cosine; anisotropy and mean_pos_cosine are NaN. */
et_status et_eval_pairs_bm25(et_pool *pool, const et_bm25_opts *opts, const char *const *a, const char *const *b,
                             const float *label, int64_t n, et_pair_eval *out, et_error *err);

#endif
