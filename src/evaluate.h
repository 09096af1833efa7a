/* evaluate.h - held-out evaluation of a model (or BM25): retrieval metrics and pair metrics.
 *
 * The definitions are those of `embedtune eval` (src/cli_eval.c) so both commands print the same numbers:
 *   retrieval : exact top-100 search (cosine of L2-normalised embeddings, et_mine_topk; or BM25), nDCG@10,
 *               MAP@10, MRR@10, Recall@100 (metrics.h), averaged over the given (judged) queries;
 *   AUPRC     : the judged pairs with grade > 0 are the positives; per query as many negatives as it has
 *               positives (fewer if not available) are drawn, seeded (20240917, forked per query), from
 *               the non-relevant docs of the evaluated ranking's top 100; scored by the system's score;
 *   anisotropy: mean cosine of random corpus-embedding pairs (100k pairs max, same seed);
 *   pairs     : Spearman / Pearson (x100) of cos(a_i, b_i) against label_i, AUPRC (label >= 0.5 is
 *               positive), anisotropy over the b side, mean cosine of the positive pairs. */
#ifndef ET_EVALUATE_H
#define ET_EVALUATE_H

#include <stdint.h>
#include "bert.h"
#include "bm25.h"
#include "data.h"
#include "encode.h"
#include "error.h"
#include "threads.h"
#include "tokenizer.h"

#define ET_EVAL_SEED 20240917ull
#define ET_EVAL_ANISO_PAIRS 100000

typedef struct {
    double ndcg10, map10, mrr10, recall100;
    double auprc;
    double anisotropy;       /* NaN for BM25 */
    double mean_pos_cosine;  /* NaN for BM25 */
    int32_t nqueries, ndocs;
    int64_t auprc_pos, auprc_neg;
} et_ir_eval;

/* qrels[qoff[q] .. qoff[q+1]) are query q's judgments (q in [0, nq), doc in [0, nd)). eo may be NULL. */
et_status et_eval_ir_dense(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                           const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                           const et_qrel *qrels, const int64_t *qoff, et_ir_eval *out, et_error *err);
/* Same with BM25 over docs (opts NULL = k1 0.9, b 0.4). */
et_status et_eval_ir_bm25(et_pool *pool, const et_bm25_opts *opts, const char *const *docs, int32_t nd,
                          const char *const *qs, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                          et_ir_eval *out, et_error *err);
/* The metric part on its own: rank [nq, depth] (depth >= 100 for Recall@100), pair_score(ctx, q, d). */
et_status et_eval_ir_rankings(const int32_t *rank, int32_t depth, int32_t nq, const et_qrel *qrels, const int64_t *qoff,
                              float (*pair_score)(void *ctx, int32_t q, int32_t d), void *ctx, et_ir_eval *out,
                              et_error *err);

typedef struct {
    double spearman, pearson; /* x100; NaN if the labels are constant */
    double auprc;             /* NaN if no label >= 0.5 */
    double anisotropy, mean_pos_cosine;
    int64_t n, npos;
} et_pair_eval;

et_status et_eval_pairs_dense(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                              const char *const *a, const char *const *b, const float *label, int64_t n,
                              et_pair_eval *out, et_error *err);

#endif
