/* encode.h - texts in, embeddings out: tokenizer + batching + encoder forward + pooling.
 * The one path that encode, search, mining and evaluation share (natively and in WASM). */
#ifndef ET_ENCODE_H
#define ET_ENCODE_H

#include <stddef.h>
#include "bert.h"
#include "error.h"
#include "threads.h"
#include "tokenizer.h"

typedef struct {
    int batch;    /* texts per forward pass (default 32) */
    int max_len;  /* tokens per text including [CLS]/[SEP]; clamped to the model's max_position */
    /* progress: called after each batch with (done, total); return non-zero to cancel */
    int (*progress)(void *user, size_t done, size_t total);
    void *user;
    size_t mem_budget; /* bytes: refuse (ET_ERR_NOMEM, before allocating) if the activations and batch
                          buffers for (batch, max_len) would need more; 0 = no limit */
} et_encode_opts;

/* out[n, hidden] receives the pooled (and, if the model says so, L2-normalised) embedding of
 * each text, in input order. Texts are processed in length-sorted batches internally (less
 * padding), which does not change the results. */
et_status et_encode_texts(const et_bert *m, const et_tokenizer *tok, et_pool *pool,
                          const char *const *texts, size_t n, const et_encode_opts *opts,
                          float *out, et_error *err);

#endif
