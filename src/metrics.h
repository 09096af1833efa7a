/* metrics.h - retrieval and classification metrics, exact top-k search, score fusion.
 *
 * IR metrics follow trec_eval / pytrec_eval / BEIR (see docs/evaluation.md):
 *   ranking  : doc indices, best first (score desc, ties by corpus order); -1 entries = padding.
 *   judgments: one query's qrels, sorted by doc (et_qrel from data.h). A doc that is not judged
 *              has grade 0. "Relevant" = grade >= 1. Negative grades count as 0.
 *   nDCG@k   : Σ_{r<=k} grade(d_r)/log2(r+1) / IDCG@k (linear gain; ideal = judged grades sorted
 *              desc, cut at k). IDCG = 0 => 0.
 *   AP@k     : Σ_{r<=k, rel(d_r)} P@r / R, R = ALL relevant docs of the query (not min(R,k)); R=0 => 0.
 *   RR@k     : 1 / rank of the first relevant doc within the top k, else 0.
 *   Recall@k : |relevant ∩ top k| / R; R=0 => 0.
 *   P@k      : |relevant ∩ top k| / k (k, not the number retrieved: trec_eval P_k).
 *   k larger than the ranking (or the corpus) just means "all that was retrieved" in the sums.
 * Averages (et_ir_evaluate) run over the queries that appear in the qrels (trec_eval / BEIR skip the
 * others); a query in the qrels whose judgments are all grade 0 counts, with 0 for every metric.
 *
 * AUPRC = sklearn.metrics.average_precision_score: sort by score desc, one threshold per distinct
 * score (tied scores enter together), AP = Σ_n (R_n − R_{n−1}) P_n. Positive = label >= 0.5.
 * No positive => NaN (sklearn warns and returns a meaningless value).
 * Spearman ρ = Pearson correlation of the average ranks (ties get the mean rank), like
 * scipy.stats.spearmanr. Constant input => NaN. */
#ifndef ET_METRICS_H
#define ET_METRICS_H

#include <stdint.h>
#include "data.h"
#include "error.h"
#include "threads.h"

/* ---- per-query IR metrics ------------------------------------------------------------------ */
double et_ndcg_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k);
double et_ap_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k);
double et_rr_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k);
double et_recall_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k);
double et_precision_at_k(const int32_t *ranking, int32_t nrank, const et_qrel *judg, int64_t nj, int32_t k);

/* ---- averaged over the judged queries -------------------------------------------------------- */
typedef struct {
    double ndcg10, map10, mrr10, p10, recall10, recall100;
    double ndcg100, map100;
    int32_t nqueries; /* queries evaluated (those present in the qrels) */
} et_ir_summary;

/* rankings: [nq, depth] row-major (row q = query q's ranking, -1 = padding). qrels sorted by (q, d)
 * with qrel_off[nq+1] ranges (et_beir gives both). per_query_ndcg10 [nq] may be NULL; it receives
 * nDCG@10 for judged queries and NaN for the rest. */
et_status et_ir_evaluate(const int32_t *rankings, int32_t nq, int32_t depth, const et_qrel *qrels,
                         const int64_t *qrel_off, et_ir_summary *out, double *per_query_ndcg10, et_error *err);

/* Rank scores[n] best-first: out_idx[k] (k <= n; ties by lower index; NaN ranks as -inf, so after every finite
 * score). The bounded heap of topk.h: O(n log k), allocates k doubles. */
void et_rank_scores(const float *scores, int32_t n, int32_t k, int32_t *out_idx);

/* ---- pairwise metrics ------------------------------------------------------------------------ */
double et_auprc(const float *scores, const float *labels, int64_t n);
double et_spearman(const double *x, const double *y, int64_t n);
/* Pearson correlation (NaN if either side is constant). */
double et_pearson(const double *x, const double *y, int64_t n);

/* ---- anisotropy ------------------------------------------------------------------------------ */
/* Mean cosine over random pairs i != j of E [n, d] (rows need not be normalised; zero rows count
 * as cosine 0). If n(n-1)/2 <= max_pairs every unordered pair is used once (exact), else max_pairs
 * pairs drawn with et_rng seeded by `seed`. NaN if n < 2. */
double et_mean_random_cosine(const float *E, int64_t n, int32_t d, int64_t max_pairs, uint64_t seed);
/* Mean cosine of row i of A with row i of B, both [n, d] (query–positive cosine). */
double et_mean_pair_cosine(const float *A, const float *B, int64_t n, int32_t d);

/* ---- exact top-k search ---------------------------------------------------------------------- */
/* For each query row of Q [nq, d], the k rows of D [nd, d] with the largest dot product (cosine if
 * both are L2-normalised): out_idx [nq, k], out_score [nq, k] (out_score may be NULL), best first,
 * ties by lower doc index. k > nd pads with idx -1 / score -INFINITY. Docs are streamed in chunks
 * with one heap (topk.h) per query, so extra memory is O(nq * k * shards + chunk), never nq * nd.
 * SIMD through et_dot, threads through pool (NULL = serial). */
et_status et_topk_search(et_pool *pool, const float *Q, const float *D, int64_t nq, int64_t nd, int32_t d,
                         int32_t k, int32_t *out_idx, float *out_score, et_error *err);

/* ---- fusion ---------------------------------------------------------------------------------- */
/* Reciprocal rank fusion: out[ndocs] = Σ_s 1 / (rrf_k + rank_s(doc)), rank 1-based, over nsys
 * rankings rankings[s][0..depth) (-1 = padding; docs not in a ranking add nothing). rrf_k = 60
 * is the usual constant. */
et_status et_fuse_rrf(const int32_t *const *rankings, int32_t nsys, int32_t depth, int32_t ndocs, double rrf_k,
                      double *out, et_error *err);
/* Weighted sum of min-max-normalised scores: out[n] = Σ_s w_s (x_s − min_s) / (max_s − min_s);
 * a constant system contributes 0. Non-finite inputs are an error. weights NULL = all 1. */
et_status et_fuse_minmax(const double *const *scores, const double *weights, int32_t nsys, int64_t n, double *out,
                         et_error *err);

#endif
