/* topk.h - THE bounded best-k selection behind every corpus ranking: exact search (et_topk_search, metrics.h; the
 * GEMM-blocked et_mine_topk, mine.h), BM25 search (bm25.h), the fused rankings of eval and search, and
 * et_rank_scores (metrics.h).
 *
 * Order: higher score first; equal scores by the lower index (corpus order); NaN counts as -inf. A min-heap of the
 * k best (score, index) pairs (the root is the worst kept) costs O(n log k) for n pushes and O(k) memory, never a
 * sort of the whole corpus. Scores are kept as double (float scores convert exactly, so float callers rank exactly
 * as they would in float). The storage (k scores, k indices) is the caller's: the heap allocates nothing, and one
 * heap per query lets a caller run queries on different threads. */
#ifndef ET_TOPK_H
#define ET_TOPK_H

#include <stdint.h>

typedef struct {
    double *s;      /* [k] scores (borrowed) */
    int32_t *i;     /* [k] indices (borrowed) */
    int32_t n, k;   /* kept so far, capacity */
} et_topk;

/* an empty heap over s[k], i[k] (k >= 0; k = 0 keeps nothing) */
static inline void et_topk_init(et_topk *h, double *s, int32_t *i, int32_t k) { h->s = s; h->i = i; h->n = 0; h->k = k; }

/* offer (score, idx) */
void et_topk_push(et_topk *h, double score, int32_t idx);

/* Best-first: out_idx[0..width) gets the kept indices then -1 padding; out_f32 / out_f64 (either may be NULL) the
 * scores then -inf. Returns the number kept (h->n). The heap is spent (its storage is reordered); out_* may alias
 * h's own arrays (h->i as out_idx, h->s as out_f64). width >= h->n. */
int32_t et_topk_take(et_topk *h, int32_t width, int32_t *out_idx, float *out_f32, double *out_f64);

#endif
