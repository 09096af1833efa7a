/* encode.c - see encode.h */
#include "encode.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 16 bytes on every target (not size_t), so the plan below is the same figure in wasm32 and native */
typedef struct { uint64_t len, idx; } len_idx;

static int cmp_len(const void *a, const void *b) {
    const len_idx *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

void et_encode_cache_free(et_encode_cache *c) {
    if (!c) return;
    et_bert_acts_free(&c->acts);
    c->model = NULL;
}

void et_embed_truncate(float *x, size_t n, int C, int d) {
    if (d <= 0 || d >= C) return;
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * (size_t)C;
        et_l2norm_rows(r, 1, d);
        memset(r + d, 0, sizeof(float) * (size_t)(C - d));
    }
}

double et_encode_plan_bytes(const et_bert_config *mc, int acts_batch, int acts_len, int batch, int max_len, size_t n,
                            int nthreads) { /* in double: 32-bit size_t (wasm32) would wrap for a huge batch */
    /* one figure on every target, so the page refuses a run with native's numbers: the batch's text pointers are
     * counted at 8 bytes (wasm32's are 4: an over-count of 4 bytes per batch row) */
    return (double)et_bert_acts_bytes(mc, acts_batch, acts_len, 0, nthreads) +
           (double)et_bert_acts_packed_bytes(mc) + /* the prepacked weights of inference */
           (double)batch * max_len * 2 * sizeof(int32_t) +
           (double)batch * ((double)mc->hidden_size * sizeof(float) + sizeof(uint64_t) + sizeof(int32_t)) + (double)n * sizeof(len_idx);
}

et_status et_encode_texts(const et_bert *m, const et_tokenizer *tok, et_pool *pool,
                          const char *const *texts, size_t n, const et_encode_opts *opts,
                          float *out, et_error *err) {
    if (n == 0) return ET_OK;
    int batch = opts && opts->batch > 0 ? opts->batch : 32;
    int max_len = opts && opts->max_len > 0 ? opts->max_len : 256;
    if (max_len > et_bert_max_tokens(&m->cfg)) max_len = et_bert_max_tokens(&m->cfg);
    if (max_len < 2) return et_fail(err, ET_ERR_ARG, "max_len must be at least 2 (got %d)", max_len);
    if (opts && (opts->dim < 0 || opts->dim > m->cfg.hidden_size))
        return et_fail(err, ET_ERR_ARG, "--dim %d: the model's embeddings have %d values (give 1..%d)", opts->dim,
                       m->cfg.hidden_size, m->cfg.hidden_size);
    if ((size_t)batch > n) batch = (int)n;
    /* WordPiece: the same size; a SentencePiece model's table may be padded (multilingual-e5: 250,002
     * tokens, vocab_size 250,037), never smaller */
    int tv = et_tokenizer_vocab_size(tok);
    if (!et_tokenizer_is_wordpiece(tok) ? tv > m->cfg.vocab_size : tv != m->cfg.vocab_size)
        return et_fail(err, ET_ERR_MISMATCH, "the tokenizer has %d tokens but the model's vocab_size is %d", tv, m->cfg.vocab_size);
    int C = m->cfg.hidden_size, nth = et_pool_size(pool);
    et_encode_cache *cache = opts ? opts->cache : NULL;
    /* the cached acts are this model's (same handle, same plan) */
    int same = cache && cache->acts.mem && cache->model == m && !cache->acts.training &&
               et_bert_acts_bytes(&m->cfg, cache->acts.B_max, cache->acts.T_max, 0, cache->acts.nthreads) == cache->acts.bytes;
    int reuse = same && cache->acts.B_max >= batch && cache->acts.T_max >= max_len && cache->acts.nthreads >= nth;
    int aB = batch, aT = max_len; /* the activations to allocate: grown to the largest seen when cached */
    if (same && !reuse) {
        if (cache->acts.B_max > aB) aB = cache->acts.B_max;
        if (cache->acts.T_max > aT) aT = cache->acts.T_max;
    }
    if (opts && opts->mem_budget && !reuse) { /* what the allocations below would take, checked before any of them */
        double need = et_encode_plan_bytes(&m->cfg, aB, aT, batch, max_len, n, nth);
        if (need > (double)opts->mem_budget)
            return et_fail(err, ET_ERR_NOMEM, "batch %d x max_len %d needs %.1f MiB for activations and packed weights, over the memory budget of %.1f MiB "
                           "(lower the batch size or max_len, or raise the budget)", aB, aT, need / 1048576.0,
                           (double)opts->mem_budget / 1048576.0);
    }
    et_bert_acts local, *acts = cache ? &cache->acts : &local;
    et_status s = ET_OK;
    if (!reuse) {
        if (cache) et_encode_cache_free(cache);
        if ((s = et_bert_acts_alloc(acts, &m->cfg, aB, aT, 0, nth, err))) return s;
        if (cache) cache->model = m;
    }
    len_idx *order = et_malloc(n * sizeof *order, "text order", err);
    int32_t *ids = et_malloc((size_t)batch * max_len * sizeof(int32_t), "token ids", err);
    int32_t *mask = et_malloc((size_t)batch * max_len * sizeof(int32_t), "attention mask", err);
    const char **bt = et_malloc((size_t)batch * sizeof *bt, "batch texts", err);
    float *pooled = et_malloc((size_t)batch * C * sizeof(float), "pooled output", err);
    int32_t *lens = et_malloc((size_t)batch * sizeof(int32_t), "sequence lengths", err);
    if (!order || !ids || !mask || !bt || !pooled || !lens) { s = ET_ERR_NOMEM; goto done; }
    /* length-sorted batches: less padding, and results do not depend on batch composition
     * (padding is masked out), so the output equals one-by-one encoding. */
    for (size_t i = 0; i < n; i++) {
        if (!texts[i]) { s = et_fail(err, ET_ERR_ARG, "text %zu is NULL", i); goto done; }
        order[i].len = strlen(texts[i]);
        order[i].idx = i;
    }
    qsort(order, n, sizeof *order, cmp_len);
    for (size_t b0 = 0; b0 < n; b0 += (size_t)batch) {
        int B = (int)((n - b0) < (size_t)batch ? (n - b0) : (size_t)batch), T;
        for (int b = 0; b < B; b++) bt[b] = texts[order[b0 + b].idx];
        if ((s = et_tokenize_batch(tok, bt, B, max_len, 0, ids, mask, &T, err))) goto done;
        if (opts && opts->padded) {
            if ((s = et_bert_forward(m, acts, pool, ids, mask, NULL, B, T, pooled, 0, 0, err))) goto done;
        } else { /* packed: the real tokens of each row (right-padded: a prefix), in place */
            int r = 0;
            for (int b = 0; b < B; b++) {
                int len = 0;
                while (len < T && mask[(size_t)b * T + len]) len++;
                memmove(ids + r, ids + (size_t)b * T, sizeof(int32_t) * (size_t)len);
                r += len;
                lens[b] = len;
            }
            if ((s = et_bert_forward_packed(m, acts, pool, ids, NULL, lens, B, pooled, 0, 0, err))) goto done;
        }
        for (int b = 0; b < B; b++)
            memcpy(out + order[b0 + b].idx * (size_t)C, pooled + (size_t)b * C, sizeof(float) * C);
        if (opts && opts->progress && opts->progress(opts->user, b0 + B, n)) {
            s = et_fail(err, ET_ERR_CANCELLED, "encoding cancelled after %zu of %zu texts", b0 + B, n);
            goto done;
        }
    }
    if (opts) et_embed_truncate(out, n, C, opts->dim);
done:
    free(order); free(ids); free(mask); free(bt); free(pooled); free(lens);
    if (!cache) et_bert_acts_free(&local);
    return s;
}

int et_encode_progress_print(void *user, size_t done, size_t total) {
    et_encode_progress *p = user;
    double t = et_now_s(), el = t - p->t0;
    if (done < total && t - p->last < 0.25) return 0; /* throttle */
    p->last = t;
    double rate = el > 0 ? done / el : 0;
    const char *u = p->unit ? p->unit : "texts";
    fprintf(stderr, "\r%s: %zu/%zu %s  %.1f %s/s  ETA %.0fs   ", p->what, done, total, u, rate, u, rate > 0 ? (total - done) / rate : 0);
    if (done == total) fputc('\n', stderr);
    return 0;
}
