/* fusion.h - hybrid retrieval: BM25 fused with the dense model, the fusion rules, learning a rule's
 * parameters from training queries (cross-validated nDCG@10), and the model folder's retrieval.json.
 *
 * Candidates. Every rule works on a per-query candidate pool: the union of the dense model's top
 * `depth` docs (cosine of L2-normalised embeddings, ties by lower doc index, et_mine_topk) and BM25's
 * top `depth` docs that share a term with the query (BM25 score > 0). Each candidate carries BOTH
 * exact scores (the cosine, and the BM25 score even when only the model retrieved it) and its
 * 1-based rank in each system's list (0 = not in that list). Pool order: dense list, then the
 * BM25-only docs in BM25 order.
 *
 * Rules (alpha = the dense model's weight, in [0, 1]; BM25 gets 1 - alpha):
 *   dense  : the dense list's order (exactly et_mine_topk's), then the other candidates by cosine.
 *   bm25   : BM25's list order, then other matching candidates by score, then the rest by cosine.
 *   convex : alpha * N(cos) + (1 - alpha) * N(bm25), N the per-query normalisation over the pool:
 *            minmax (x - min) / (max - min); tmm (x - tmin) / (max - tmin) with the theoretical minimum
 *            tmin = -1 for the cosine and 0 for BM25 (Bruch et al. 2023), so a model whose cosines are all
 *            alike moves the ranking less; zscore (x - mean) / std (population std). A constant system
 *            normalises to 0.
 *   rrf    : alpha / (k + rank_dense) + (1 - alpha) / (k + rank_bm25), a system's term is 0 for a
 *            doc outside its list (reciprocal rank fusion, Cormack et al. 2009, with weights).
 *   rerank : BM25's top top_n re-ordered by alpha * N(cos) + (1 - alpha) * N(bm25) with N over those
 *            top_n docs; the rest of the pool follows in BM25 order (then by cosine).
 * The fused ranking is score descending, ties by lower doc index; it holds every pool doc, so the
 * first `depth` entries of the dense / bm25 rules are exactly that system's top `depth`.
 *
 * Learning (et_fusion_fit). Per family, in preference order (convex-minmax, convex-tmm, convex-zscore,
 * rrf, rerank), a flat grid:
 *   convex : alpha in {0, 0.05, ..., 1} (alpha 0 = BM25's order, 1 = the model's);
 *   rrf    : k in {5, 10, 20, 40, 60, 100} x alpha in {0, 0.1, ..., 1};
 *   rerank : top_n in {10, 20, 50, 100} (<= depth) x alpha in {0, 0.1, ..., 1} (minmax).
 * Selection on a set S of queries: the grid point with the best mean nDCG@10 over S, then the
 * "se rule": among the points whose mean is within se_rule standard errors (of the per-query paired
 * difference with the best point) of the best, the one nearest the prior: in the prior's family the
 * prior's own parameters; in convex-minmax otherwise the default weight (ties: the smaller); elsewhere
 * the most BM25-leaning (smallest alpha, then larger k / smaller top_n).
 * Cross-validation: the training queries are dealt into `folds` folds (seeded shuffle); each family's
 * selection is run on all folds but one and scored on the held fold, giving a cross-validated
 * nDCG@10 per query and family. The family with the best CV mean wins, except that the prior's family,
 * else an earlier (simpler) family, within se_rule standard errors of it is preferred; its parameters
 * are then selected on all training queries. The guard: the prior is a fixed rule, so its nDCG@10 on these queries
 * carries no selection optimism, while the chosen family's cross-validated nDCG@10 is what a fit on other queries
 * delivers; the chosen fusion replaces the prior only when its per-query CV nDCG@10 beats the prior's by more than
 * se_rule standard errors of the paired difference (et_fusion_gain_clear), else the prior is kept (prior_kept). With
 * few queries (a dev split of 8-30) the standard error is large, so a fusion that merely fits the noise of a handful
 * of queries cannot displace the prior. The prior is the default fusion, or e.g. a fusion learned
 * earlier on more queries (finetune: the starting model's, when refitting on a small dev split). Fewer than ET_FUSION_MIN_QUERIES judged training queries: the
 * default fusion is kept (CV cannot tell anything apart) and the report says so.
 *
 * retrieval.json (in a model folder, next to config.json; sentence-transformers ignores it):
 *   {"format": "embedtune-retrieval", "version": 1,
 *    "mode": "hybrid" | "dense" | "bm25",                  the default of search / eval
 *    "bm25": {"k1": 0.9, "b": 0.4, "tokens": "ascii-alnum-lowercase", "query_terms": "distinct" | "all"},
 *    "fusion": {"kind": "convex", "norm": "minmax" | "tmm" | "zscore", "alpha": 0.3, "depth": 100}
 *            | {"kind": "rrf", "k": 60, "alpha": 0.5, "depth": 100}
 *            | {"kind": "rerank", "top_n": 50, "alpha": 0.5, "norm": "minmax", "depth": 100},
 *    "chosen_by": {...}}                                     how it was chosen (informative, not read back)
 * Unknown fields are ignored; known ones are validated (errors name the file and the field). */
#ifndef ET_FUSION_H
#define ET_FUSION_H

#include <stdint.h>
#include "bm25.h"
#include "data.h"
#include "error.h"
#include "threads.h"

#define ET_FUSION_DEPTH 100       /* candidates per system */
#define ET_FUSION_MIN_QUERIES 8   /* fewer judged training queries: keep the default fusion */
/* The zero-shot default (a folder without retrieval.json, --mode hybrid): BM25-heavy convex min-max. */
#define ET_FUSION_DEFAULT_ALPHA 0.2

typedef enum { ET_FUSION_DENSE = 0, ET_FUSION_BM25 = 1, ET_FUSION_CONVEX = 2, ET_FUSION_RRF = 3, ET_FUSION_RERANK = 4 } et_fusion_kind;
typedef enum { ET_FUSION_MINMAX = 0, ET_FUSION_ZSCORE = 1, ET_FUSION_TMM = 2 } et_fusion_norm;

typedef struct {
    et_fusion_kind kind;
    et_fusion_norm norm; /* convex, rerank */
    double alpha;        /* the dense model's weight in [0, 1] (convex, rrf, rerank) */
    double rrf_k;        /* rrf: > 0 */
    int32_t top_n;       /* rerank: >= 1 */
    int32_t depth;       /* candidates per system (ET_FUSION_DEPTH) */
} et_fusion;

/* The zero-shot default fusion (convex, minmax, ET_FUSION_DEFAULT_ALPHA). */
et_fusion et_fusion_default(void);
/* 1 iff fusion f, learned with one model, means the same with another model (finetune: the starting model's fusion as
 * the tuned model's prior): its ranking does not change when the model's cosines undergo an increasing affine map
 * (a*x + b, a > 0), which is what tuning does to a model's score range. Min-max and z-score (convex, rerank) and RRF
 * (ranks) are invariant; convex tmm is not (its fixed theoretical minimum -1 makes the model's effective weight grow
 * with the spread of its cosines), so a tmm fusion does not transfer and the default fusion is the prior instead. */
int et_fusion_transfers(const et_fusion *f);

/* "convex-minmax", "rrf", ... (static strings) and a one-line description "convex minmax alpha 0.3" into buf. */
const char *et_fusion_kind_name(et_fusion_kind k);
const char *et_fusion_norm_name(et_fusion_norm n);
const char *et_fusion_describe(const et_fusion *f, char *buf, size_t cap);
/* Parse a fusion written as KIND[:NAME=VALUE,...] (the fields of retrieval.json's "fusion"): e.g.
 * "convex:alpha=0.3", "convex:norm=zscore,alpha=0.4", "rrf:k=60,alpha=0.5", "rerank:top_n=50,alpha=0.5".
 * Fields not given keep the default fusion's values. ET_ERR_ARG naming the bad part. */
et_status et_fusion_parse(const char *spec, et_fusion *out, et_error *err);
/* ET_ERR_ARG naming the bad field ("alpha", "k", "top_n", "depth") when f is out of range. */
et_status et_fusion_check(const et_fusion *f, et_error *err);

/* ---- candidates ------------------------------------------------------------------------------ */
typedef struct {
    int32_t nq, depth;
    int64_t *off;        /* [nq + 1]: query q's candidates are [off[q], off[q+1]) */
    int32_t *doc;        /* doc index */
    double *dense;       /* cosine (0 when built without a model) */
    double *bm25;        /* BM25 score (0 when built without BM25) */
    int32_t *drank;      /* 1-based rank in the dense top-depth list, 0 = not in it */
    int32_t *brank;      /* 1-based rank in BM25's top-depth list (score > 0), 0 = not in it */
} et_fusion_cands;

/* Q [nq, dim] and D [nd, dim] L2-normalised embeddings (both NULL: BM25 only), bm the BM25 index over
 * the same nd docs (NULL: dense only), queries[nq] the query texts (for BM25). depth >= 1. The queries are taken in
 * blocks of 1024 (the model's top-depth, BM25's, then each query's pool); pr (may be NULL) reports the queries done
 * at the start (0) and after each block, and a cancel there fails with ET_ERR_CANCELLED. */
et_status et_fusion_cands_build(et_pool *pool, const float *Q, const float *D, int32_t nq, int32_t nd, int32_t dim,
                                const et_bm25 *bm, const char *const *queries, int32_t depth, const et_progress *pr,
                                et_fusion_cands *out, et_error *err);
void et_fusion_cands_free(et_fusion_cands *c);

/* Query q's fused ranking: out_idx[k] doc indices best first (-1 padding past the pool), out_score[k]
 * the fused scores (may be NULL; -INFINITY for padding; for rerank the blend for the top_n, else the
 * BM25 score). */
et_status et_fusion_rank(const et_fusion *f, const et_fusion_cands *c, int32_t q, int32_t k, int32_t *out_idx,
                         double *out_score, et_error *err);
/* All queries: out_idx [nq, k] (row-major). */
et_status et_fusion_rank_all(et_pool *pool, const et_fusion *f, const et_fusion_cands *c, int32_t k, int32_t *out_idx,
                             et_error *err);

/* ---- learning -------------------------------------------------------------------------------- */
typedef struct {
    int folds;        /* k-fold (default 5; capped at the number of queries) */
    uint64_t seed;    /* fold assignment (default 20240917) */
    double se_rule;   /* tolerance in standard errors (default 1.0; 0 = only exact ties go to the prior) */
    et_fusion prior;  /* kept when too few queries, preferred when the data cannot tell (default: et_fusion_default()) */
    et_pool *pool;    /* the grid's points are ranked on it, one task per point (default NULL: the calling thread);
                         the choice does not depend on it */
    et_progress progress; /* grid points ranked on all queries, of the grid's size + 3 (the dense and BM25 rules and the
                         prior), at the start (0) and after each block of points; a cancel fails with ET_ERR_CANCELLED (default none) */
} et_fusion_fit_opts;

void et_fusion_fit_opts_default(et_fusion_fit_opts *o);

#define ET_FUSION_NFAMILIES 5
typedef struct {
    et_fusion chosen;
    int learned;          /* 0: too few queries, the prior was kept */
    int prior_kept;       /* 1: learned, but the chosen family did not beat the prior by more than se_rule SE (the guard) */
    double gain_over_prior, gain_se; /* the chosen family's CV nDCG@10 minus the prior's, per query: mean and standard
                             error (NaN when not learned) */
    int32_t nqueries, folds;
    double cv_ndcg10;     /* cross-validated nDCG@10 of the chosen family (NaN when not learned) */
    double train_ndcg10;  /* the chosen fusion on all the training queries */
    double dense_ndcg10, bm25_ndcg10, prior_ndcg10; /* the same queries, fixed rules (no selection) */
    struct { et_fusion best; double cv_ndcg10, train_ndcg10; } family[ET_FUSION_NFAMILIES]; /* convex-minmax,
                             convex-tmm, convex-zscore, rrf, rerank: the point selected on all queries, its CV and
                             train nDCG@10 */
} et_fusion_fit_report;

/* Mean of x[q] - y[q] over n queries (NaN for n = 0) and its standard error in *se (sample sd / sqrt(n); 0 for n < 2;
 * se may be NULL). */
double et_fusion_paired_gain(const double *x, const double *y, int32_t n, double *se);
/* 1 iff gain > se_rule * se (the guard of et_fusion_fit; also finetune's weight-space mix): a gain within the noise
 * of the queries it was measured on does not count. */
int et_fusion_gain_clear(double gain, double se, double se_rule);

/* The grid of et_fusion_fit (for reports): fills out[0..cap) and family[0..cap) (0 convex-minmax,
 * 1 convex-tmm, 2 convex-zscore, 3 rrf, 4 rerank; either may be NULL) and returns the grid's size. */
#define ET_FUSION_GRID_MAX 173
int et_fusion_grid(int32_t depth, et_fusion *out, int *family, int cap);

/* Learn the fusion from judged training queries: c's queries 0..nq-1 with qrels[qoff[q]..qoff[q+1])
 * (grade >= 1 relevant). o may be NULL (defaults). rep may be NULL. Cost: every grid point ranks every query once
 * (the top 10 of its pool by selection, not a sort; about 176 x nq pools); the cross-validation then only averages
 * those per-query nDCG@10 over folds. */
et_status et_fusion_fit(const et_fusion_cands *c, const et_qrel *qrels, const int64_t *qoff,
                        const et_fusion_fit_opts *o, et_fusion *chosen, et_fusion_fit_report *rep, et_error *err);

/* ---- BM25's settings ---------------------------------------------------------------------------- */
/* Learning k1 and b from judged training queries (et_bm25_fit): BM25 alone ranks the queries at every point of
 * the grid k1 in {0.5, 0.9, 1.2, 1.6, 2, 3} x b in {0.2, 0.4, 0.6, 0.75, 0.9, 1} (the default k1 0.9, b 0.4
 * included); the point with the best mean nDCG@10 is taken (ties: the first in that order) unless it beats the
 * default by no more than se_rule standard errors of the per-query paired difference, in which case the default
 * is kept. Fewer than ET_FUSION_MIN_QUERIES queries: the default is kept. Collections differ here (on the training
 * queries of cranfield, cisi and cacm the best points are k1 2-3 with b 0.75-0.9, +0.04 to +0.09 nDCG@10 over the
 * default), yet on their held-out queries the learned setting was worse on cranfield and cacm (README), so
 * finetune uses this only with --bm25-fit. The fusion learned afterwards sees the BM25 scores of the chosen setting. */
#define ET_BM25_FIT_NK1 6
#define ET_BM25_FIT_NB 6
typedef struct {
    et_bm25_opts chosen;
    int learned;           /* 1: chosen from the grid; 0: the default was kept (too few queries, or within the se rule) */
    int32_t nqueries;
    double ndcg10;         /* the chosen setting on the queries */
    double default_ndcg10; /* k1 0.9, b 0.4 on the same queries */
    et_bm25_opts best;     /* the grid's best point (before the se rule) and its nDCG@10 */
    double best_ndcg10;
} et_bm25_fit_report;

/* docs[nd], queries qs[nq] with qrels[qoff[q]..qoff[q+1]) (grade >= 1 relevant); se_rule >= 0 (1 in finetune).
 * chosen and rep may be NULL. query_tf of the result is 0 (distinct query terms, the default). pr (may be NULL):
 * grid points done of ET_BM25_FIT_NK1 x ET_BM25_FIT_NB, reported at 0 and after each point (each builds one BM25
 * index and ranks every query); a cancel fails with ET_ERR_CANCELLED and leaves chosen and rep as they were. */
et_status et_bm25_fit(et_pool *pool, const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                      const et_qrel *qrels, const int64_t *qoff, double se_rule, const et_progress *pr,
                      et_bm25_opts *chosen, et_bm25_fit_report *rep, et_error *err);

/* ---- retrieval.json ---------------------------------------------------------------------------- */
typedef enum { ET_MODE_DENSE = 0, ET_MODE_BM25 = 1, ET_MODE_HYBRID = 2 } et_retrieval_mode;

typedef struct {
    et_retrieval_mode mode;  /* default mode of search / eval */
    et_bm25_opts bm25;
    et_fusion fusion;
} et_retrieval_cfg;

#define ET_RETRIEVAL_FILE "retrieval.json"
#define ET_RETRIEVAL_MAX_BYTES (1u << 20)

/* mode dense, BM25 defaults (k1 0.9, b 0.4, distinct query terms), the default fusion. */
void et_retrieval_cfg_default(et_retrieval_cfg *r);
/* "dense" | "bm25" | "hybrid" -> mode (ET_ERR_ARG otherwise). */
et_status et_retrieval_mode_parse(const char *s, et_retrieval_mode *out, et_error *err);
const char *et_retrieval_mode_name(et_retrieval_mode m);

/* Parse the text of a retrieval.json (name = the path, for messages). */
et_status et_retrieval_parse(const char *text, size_t len, const char *name, et_retrieval_cfg *out, et_error *err);
/* Read <model_dir>/retrieval.json. *found = 0 (and defaults in *out, ET_OK) when the folder has none. */
et_status et_retrieval_load(const char *model_dir, et_retrieval_cfg *out, int *found, et_error *err);
/* Write <dir>/retrieval.json atomically; rep (may be NULL) and note (may be NULL, e.g. "finetune on
 * data/x, train split") go into "chosen_by". */
et_status et_retrieval_save(const char *dir, const et_retrieval_cfg *r, const et_fusion_fit_report *rep,
                            const char *note, et_error *err);

#endif
