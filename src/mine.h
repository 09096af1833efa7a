/* mine.h - exact blocked top-k search and ANCE-style hard-negative mining.
 *
 * Top-k (et_mine_topk): the same contract as et_topk_search (metrics.h) - for each row of Q [nq, d]
 * the k rows of D [nd, d] with the largest dot product, best first, ties by lower doc index, k > nd
 * padded with idx -1 / score -INFINITY, NaN scores rank last - but computed with GEMM:
 *     for each block of ≤ qblock queries and each chunk of ≤ chunk docs:
 *         S[qb, c] = Qblock[qb, d] · Dchunk[c, d]^T        (et_sgemm, pool-threaded)
 *         per query: merge S's row into its size-k heap      (topk.h; et_pool_run over queries)
 * Extra memory: O(nq·k) heaps + O(qblock·chunk) scores, never nq·nd. GEMM sums in a different order
 * than et_dot, so scores agree with et_topk_search to ~1e-6 relative, and near-ties may swap.
 *
 * Mining (et_mine_negatives): for query q (embedding row q of Q), retrieve the top rank_hi docs,
 * keep ranks [rank_lo, rank_hi) of THAT list (0-based, positives included in the counting, as in
 * FlagEmbedding's `range_for_sampling`), drop q's positives, drop false-negative suspects
 * (score > fn_margin × the score of q's lowest-scoring positive, when fn_margin > 0 and q has
 * positives), then take n_neg of the remaining candidates: the best ones in rank order
 * (sample = 0) or n_neg drawn uniformly without replacement, kept in rank order (sample = 1,
 * et_rng seeded with seed and forked per query, so the result does not depend on threads).
 * Slots without a candidate get -1.
 * Own query (for the CLP loss): if a mined negative doc is a positive of some other query q2,
 * out_negq gets q2 (the lowest such index != q), else -1.
 * Call it again with fresh embeddings to refresh negatives during training (nothing is cached). */
#ifndef ET_MINE_H
#define ET_MINE_H

#include <stdint.h>
#include "error.h"
#include "threads.h"

/* Exact top-k by inner product with GEMM blocks. chunk / qblock 0 = defaults (4096 / 1024).
 * out_score may be NULL. */
et_status et_mine_topk(et_pool *pool, const float *Q, const float *D, int64_t nq, int64_t nd, int32_t d, int32_t k,
                       int32_t chunk, int32_t qblock, int32_t *out_idx, float *out_score, et_error *err);

typedef struct {
    int32_t rank_lo;   /* first rank of the window, 0-based (e.g. 2; 0 = from the top) */
    int32_t rank_hi;   /* end of the window (exclusive; e.g. 200); clipped to nd */
    int32_t n_neg;     /* negatives per query (columns of the outputs) */
    float fn_margin;   /* false-negative filter: drop score > fn_margin * min positive score; 0 = off */
    int sample;        /* 0: best n_neg of the window; 1: uniform sample of n_neg (seeded) */
    uint64_t seed;
    int32_t chunk;     /* docs per GEMM block (0 = 4096) */
    int32_t qblock;    /* queries per GEMM block (0 = 1024) */
} et_mine_cfg;

typedef struct {
    int64_t n_found;         /* negatives written (not -1) */
    int64_t n_fn_dropped;    /* window candidates dropped by the false-negative filter */
    int64_t n_pos_skipped;   /* window candidates dropped because they are positives of the query */
    int64_t n_with_query;    /* negatives that received an own query (out_negq != -1) */
    int32_t n_short;         /* queries that got fewer than n_neg negatives */
} et_mine_stats;

/* Q [nq, d], D [nd, d] (normalise both rows for cosine). Positives of query q, CSR:
 * pos[pos_off[q] .. pos_off[q+1]) are doc indices in [0, nd) (pos_off may be NULL: no positives).
 * Outputs [nq, n_neg]: out_neg (doc index or -1), out_score (may be NULL), out_negq (may be NULL).
 * stats may be NULL. Errors: bad config (ET_ERR_ARG), a positive index out of range (ET_ERR_ARG,
 * naming the query), out of memory. */
et_status et_mine_negatives(const et_mine_cfg *cfg, et_pool *pool, const float *Q, const float *D, int64_t nq,
                            int64_t nd, int32_t d, const int64_t *pos_off, const int32_t *pos, int32_t *out_neg,
                            float *out_score, int32_t *out_negq, et_mine_stats *stats, et_error *err);

/* The same selection over a ranking computed elsewhere (e.g. BM25's, for lexical hard negatives):
 * rank [nq, k] doc indices best first (-1 ends a row), score [nq, k] their scores; the window is clipped
 * to k. No false-negative filter (cfg->fn_margin must be 0). Same outputs and own-query rule. */
et_status et_mine_from_ranking(const et_mine_cfg *cfg, et_pool *pool, const int32_t *rank, const float *score, int32_t k,
                               int64_t nq, int64_t nd, const int64_t *pos_off, const int32_t *pos, int32_t *out_neg,
                               float *out_score, int32_t *out_negq, et_mine_stats *stats, et_error *err);

#endif
