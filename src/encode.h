/* encode.h - texts in, embeddings out: tokenizer + batching + encoder forward + pooling.
 * The one path that encode, search, mining and evaluation share (natively and in WASM). */
#ifndef ET_ENCODE_H
#define ET_ENCODE_H

#include <stddef.h>
#include "bert.h"
#include "error.h"
#include "threads.h"
#include "tokenizer.h"

/* Reusable state of et_encode_texts across calls: the inference activations, which also hold the
 * prepacked Linear weights. Without one, every call allocates its activations and repacks every
 * weight (for MiniLM ~40 MB of packing: most of the time of a one-query call). With one, the
 * activations are grown as needed (to the largest batch x max_len seen) and the packed weights are
 * kept until the weights change (et_bert_forward re-checks them). A cache belongs to one model
 * (another model reallocates it). Zero-initialise it; et_encode_cache_free releases it. */
typedef struct {
    et_bert_acts acts;
    const et_bert *model; /* the model the acts were planned for */
} et_encode_cache;

void et_encode_cache_free(et_encode_cache *c);

typedef struct {
    int batch;    /* texts per forward pass (default 32) */
    int max_len;  /* tokens per text including [CLS]/[SEP]; clamped to the model's max_position */
    /* progress: called after each batch with (done, total); return non-zero to cancel */
    int (*progress)(void *user, size_t done, size_t total);
    void *user;
    size_t mem_budget; /* bytes: refuse (ET_ERR_NOMEM, before allocating) if the activations and batch
                          buffers for (batch, max_len) would need more; 0 = no limit */
    et_encode_cache *cache; /* optional: keep activations + packed weights across calls (NULL = none) */
    int padded;   /* 1: run each batch padded to its longest text with a mask (et_bert_forward); 0 (default):
                     packed without padding (et_bert_forward_packed: no padded token in any GEMM), which gives
                     the same embeddings (tests/test_packed.c: the same bits on the native paths) */
    int dim;      /* > 0 and < hidden: each embedding is cut to its first `dim` values and re-normalised
                     (et_embed_truncate; Matryoshka models, matryoshka.h); 0 = the full embedding */
} et_encode_opts;

/* The progress line of encoding on stderr, "what: done/total texts  rate texts/s  ETA s" (at most 4 a second, and
 * at the end): an et_encode_opts.progress with user = an et_encode_progress {et_now_s(), "what", 0}. Never cancels.
 * unit (NULL = "texts") names what is counted, for the other long steps that report through it (an et_progress:
 * "docs" of a BM25 index, "queries" of fusion candidates, "grid points" of the fusion's cross-validation). */
typedef struct { double t0; const char *what; double last; const char *unit; } et_encode_progress;
int et_encode_progress_print(void *user, size_t done, size_t total);

/* Matryoshka cut of x [n, C] in place: the first d values of each row are divided by their L2 norm and
 * the other C - d are set to 0, so a dot product or cosine over the whole row is the one over the cut
 * prefix (every caller keeps its [n, C] layout; a writer stores only the first d columns). d <= 0 or
 * d >= C: x is left as it is. */
void et_embed_truncate(float *x, size_t n, int C, int d);

/* What et_encode_texts allocates for n texts in batches of `batch` x `max_len` tokens, with activations planned for
 * acts_batch x acts_len (>= batch x max_len; larger when a cache keeps bigger ones): activations, the prepacked
 * weights, token and batch tables. The estimate opts->mem_budget is checked against (and `finetune` up front). */
double et_encode_plan_bytes(const et_bert_config *mc, int acts_batch, int acts_len, int batch, int max_len, size_t n,
                            int nthreads);

/* out[n, hidden] receives the pooled (and, if the model says so, L2-normalised) embedding of
 * each text, in input order (cut by et_embed_truncate when opts->dim is set; ET_ERR_ARG if
 * opts->dim < 0 or > hidden). Texts are processed in length-sorted batches internally (less
 * padding), which does not change the results. */
et_status et_encode_texts(const et_bert *m, const et_tokenizer *tok, et_pool *pool,
                          const char *const *texts, size_t n, const et_encode_opts *opts,
                          float *out, et_error *err);

#endif
