/* experts.h - "expert" scores for (query, passage) pairs and negative sampling over a pairs file.
 *
 * An expert scores a pair: BM25 (lexical) or a dense model (cosine of the two embeddings). The
 * scores feed the soft-label / MoE training (a column per expert, named: "bm25", or the model
 * folder's basename) and the `embedtune score` command.
 *
 * The universe is the pairs file itself: et_pair_index gathers its DISTINCT query texts and
 * DISTINCT passage texts (byte-equal strings are one item; both positives, "negatives" lists and
 * label-0 passages count as passages). BM25 statistics (N, df, avgdl) are those of the distinct
 * passages of the file, so a passage repeated in 100 rows is counted once. A query's positives are
 * the passages of its rows with label >= 0.5.
 *
 * Negative sampling (et_experts_sample_negatives): for each positive row (label >= 0.5), n_neg
 * distinct passages that are not positives of the row's query (by text), either
 *   random : uniform without replacement (et_rng seeded with seed, forked per row), or
 *   hard   : the best-ranked non-positive passages by the ranking expert (ties by passage index),
 *            round(n_neg * hard_ratio) of them, the rest random from the remaining candidates.
 * Deterministic for a given seed; the result does not depend on threads. */
#ifndef ET_EXPERTS_H
#define ET_EXPERTS_H

#include <stdint.h>
#include "bert.h"
#include "bm25.h"
#include "data.h"
#include "encode.h"
#include "error.h"
#include "threads.h"
#include "tokenizer.h"

typedef struct {
    int64_t n;            /* rows of the pairs */
    int32_t nq, np;       /* distinct queries, distinct passages */
    const char **qtext;   /* [nq] borrowed from the et_pairs (keep it alive) */
    const char **ptext;   /* [np] borrowed */
    int32_t *row_q;       /* [n] row -> distinct query */
    int32_t *row_p;       /* [n] row -> distinct passage */
    int64_t *pos_off;     /* [nq+1] CSR: positives of query q = pos[pos_off[q] .. pos_off[q+1]) (ascending, unique) */
    int32_t *pos;
    /* passages of the rows' "negatives" lists are included in ptext; neg_p[j] maps the j-th entry
     * of pairs->neg to its passage (NULL if the file has none) */
    int32_t *neg_p;
} et_pair_index;

et_status et_pair_index_build(const et_pairs *p, et_pair_index *out, et_error *err);
void et_pair_index_free(et_pair_index *ix);

typedef enum { ET_EXPERT_BM25 = 1, ET_EXPERT_DENSE = 2 } et_expert_kind;

typedef struct {
    et_expert_kind kind;
    char name[128];
    et_bm25 *bm;      /* BM25: index over ix->ptext */
    float *qemb;      /* DENSE: [nq, d] and [np, d], L2-normalised */
    float *pemb;
    int32_t d;
} et_expert;

/* BM25 over the distinct passages. opts NULL = k1 0.9, b 0.4. Name "bm25". */
et_status et_expert_bm25_init(et_expert *e, const et_pair_index *ix, const et_bm25_opts *opts, et_error *err);
/* Dense expert: encodes the distinct queries and passages once (eo->progress is called for the
 * passages). name: e.g. the model folder's basename. */
et_status et_expert_dense_init(et_expert *e, const et_pair_index *ix, const char *name, const et_bert *m,
                               const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo, et_error *err);
void et_expert_free(et_expert *e);

/* out[ix->n]: the expert's score of every row (BM25 score, or cosine). */
et_status et_expert_score_rows(const et_expert *e, const et_pair_index *ix, et_pool *pool, float *out, et_error *err);
/* out[n]: the expert's score of (distinct query q[i], distinct passage p[i]) for arbitrary index pairs. */
et_status et_expert_score_qp(const et_expert *e, const et_pair_index *ix, const int32_t *q, const int32_t *p, int64_t n,
                             float *out, et_error *err);
/* out[ix->np]: distinct query qi against every distinct passage. */
et_status et_expert_score_all(const et_expert *e, const et_pair_index *ix, int32_t qi, float *out, et_error *err);

/* ---- named score columns ------------------------------------------------------------------ */
typedef struct {
    int64_t n;      /* rows */
    int K;          /* columns */
    char **names;   /* [K] */
    float *scores;  /* [n, K] row-major */
} et_score_table;

/* A table holding the pairs' own expert scores (names kept; positional "scores" become
 * "score_0", "score_1", ...). K = 0 if the file has none. */
et_status et_score_table_from_pairs(et_score_table *t, const et_pairs *p, et_error *err);
/* Add (or, if `name` already exists, replace) a column: col[t->n]. */
et_status et_score_table_set(et_score_table *t, const char *name, const float *col, et_error *err);
int et_score_table_find(const et_score_table *t, const char *name); /* column or -1 */
void et_score_table_free(et_score_table *t);

/* ---- negatives ------------------------------------------------------------------------------ */
typedef enum { ET_NEG_RANDOM = 0, ET_NEG_HARD = 1 } et_neg_mode;

typedef struct {
    int32_t n_neg;       /* negatives per positive row */
    et_neg_mode mode;
    double hard_ratio;   /* hard mode: share of hard negatives (1 = all hard); rest random */
    uint64_t seed;
} et_neg_cfg;

/* out[ix->n, n_neg]: distinct-passage indices for each positive row; rows with label < 0.5 and
 * slots without a candidate get -1. `ranker` is needed for hard mode (NULL is fine for random).
 * labels: [ix->n] (pairs->label). */
et_status et_experts_sample_negatives(const et_pair_index *ix, const float *labels, const et_expert *ranker,
                                      const et_neg_cfg *cfg, et_pool *pool, int32_t *out, et_error *err);

#endif
