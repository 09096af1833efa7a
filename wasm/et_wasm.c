/* et_wasm.c - the small C API the JavaScript module (wasm/embedtune.mjs) calls.
 *
 * Everything goes through one opaque handle, et_wasm_model: the model, its tokenizer, a copy of
 * vocab.txt (for export), a thread pool, and an optional encoded corpus for search. Every fallible
 * call takes an et_error* (allocated by et_wasm_error_new, read with et_wasm_error_msg) and returns an
 * et_status (0 = ok) or NULL. The same file builds for the threaded and the single-threaded
 * Emscripten module; nothing here is Emscripten-specific except the progress hook.
 *
 * Strings cross the boundary as one blob of n NUL-terminated UTF-8 texts (JS: TextEncoder +
 * a 0 byte after each). Buffers are owned by the caller (JS _malloc / _free). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "error.h"
#include "hf.h"
#include "kernels.h"
#include "metrics.h"
#include "threads.h"
#include "tokenizer.h"

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#define ET_EXPORT EMSCRIPTEN_KEEPALIVE
/* Progress hook: Module.etProgress(kind, done, total) if set; a truthy return cancels. kind 0 =
 * encode, 1 = train. Runs on the thread that called in (the JS worker). */
EM_JS(int, et_wasm_js_progress, (int kind, double done, double total), {
    var f = Module['etProgress'];
    if (!f) return 0;
    return f(kind, done, total) ? 1 : 0;
});
#else
#define ET_EXPORT
static int et_wasm_js_progress(int kind, double done, double total) { (void)kind; (void)done; (void)total; return 0; }
#endif

typedef struct {
    et_bert model;
    et_tokenizer *tok;
    et_hf_info info;
    et_pool *pool;
    char *vocab;          /* vocab.txt bytes, for et_hf_save */
    size_t vocab_len;
    float *corpus;        /* [n_corpus, dim] embeddings for search (NULL = none) */
    size_t n_corpus;
} et_wasm_model;

/* ------------------------------------------------------------------ errors */

ET_EXPORT et_error *et_wasm_error_new(void) { return calloc(1, sizeof(et_error)); }
ET_EXPORT void et_wasm_error_free(et_error *e) { free(e); }
ET_EXPORT const char *et_wasm_error_msg(const et_error *e) { return e ? e->msg : ""; }
ET_EXPORT int et_wasm_error_code(const et_error *e) { return e ? (int)e->code : 0; }
ET_EXPORT const char *et_wasm_simd_name(void) { return et_simd_name(); }
ET_EXPORT int et_wasm_threads_available(void) { return ET_THREADS; }

/* ------------------------------------------------------------------ model */

/* Load from the files' bytes (optional ones: NULL, 0). threads <= 0: 1 (the JS side decides). */
ET_EXPORT et_wasm_model *et_wasm_load(const char *config, size_t config_len, const char *vocab, size_t vocab_len,
                                      const void *st, size_t st_len, const char *modules, size_t modules_len,
                                      const char *pooling, size_t pooling_len, const char *sbert, size_t sbert_len,
                                      const char *tokcfg, size_t tokcfg_len, int threads, et_error *err) {
    et_wasm_model *w = et_calloc(1, sizeof *w, "model handle", err);
    if (!w) return NULL;
    et_hf_buffers b = {config, config_len, vocab, vocab_len, st, st_len, modules, modules_len,
                       pooling, pooling_len, sbert, sbert_len, tokcfg, tokcfg_len};
    if (et_hf_load_buffers(&b, &w->model, &w->info, err)) { free(w); return NULL; }
    w->tok = et_tokenizer_from_buffer(vocab, vocab_len, "vocab.txt", err);
    if (!w->tok) { et_bert_free(&w->model); free(w); return NULL; }
    w->vocab = et_malloc(vocab_len + 1, "vocab copy", err);
    if (!w->vocab) { et_tokenizer_free(w->tok); et_bert_free(&w->model); free(w); return NULL; }
    memcpy(w->vocab, vocab, vocab_len);
    w->vocab_len = vocab_len;
    w->pool = et_pool_create(threads > 0 ? threads : 1, err);
    if (!w->pool) { free(w->vocab); et_tokenizer_free(w->tok); et_bert_free(&w->model); free(w); return NULL; }
    return w;
}

ET_EXPORT void et_wasm_free(et_wasm_model *w) {
    if (!w) return;
    et_pool_destroy(w->pool);
    et_tokenizer_free(w->tok);
    et_bert_free(&w->model);
    free(w->vocab);
    free(w->corpus);
    free(w);
}

ET_EXPORT int et_wasm_dim(const et_wasm_model *w) { return w->model.cfg.hidden_size; }
ET_EXPORT int et_wasm_max_len(const et_wasm_model *w) { return w->info.max_seq_length; }
ET_EXPORT int et_wasm_threads(const et_wasm_model *w) { return et_pool_size(w->pool); }
ET_EXPORT int et_wasm_vocab_size(const et_wasm_model *w) { return w->model.cfg.vocab_size; }
ET_EXPORT int et_wasm_num_layers(const et_wasm_model *w) { return w->model.cfg.num_layers; }
ET_EXPORT int et_wasm_normalize(const et_wasm_model *w) { return w->model.cfg.normalize; }
ET_EXPORT int et_wasm_pooling(const et_wasm_model *w) { return (int)w->model.cfg.pooling; }

/* ------------------------------------------------------------------ encode */

static int encode_progress(void *user, size_t done, size_t total) {
    (void)user;
    return et_wasm_js_progress(0, (double)done, (double)total);
}

/* Split a blob of n NUL-terminated texts into pointers (caller frees). */
static const char **split_texts(const char *blob, size_t blob_len, int n, et_error *err) {
    if (n < 0) return et_fail(err, ET_ERR_ARG, "encode: negative text count %d", n), NULL;
    const char **t = et_malloc(sizeof(char *) * (size_t)(n ? n : 1), "text pointers", err);
    if (!t) return NULL;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const char *z = off < blob_len ? memchr(blob + off, 0, blob_len - off) : NULL;
        if (!z) { free(t); return et_fail(err, ET_ERR_ARG, "encode: text %d is not NUL-terminated in the blob", i), NULL; }
        t[i] = blob + off;
        off = (size_t)(z - blob) + 1;
    }
    return t;
}

/* out[n, dim]. max_len <= 0: the model's max_seq_length. batch <= 0: 32. */
ET_EXPORT et_status et_wasm_encode(et_wasm_model *w, const char *blob, size_t blob_len, int n, int batch, int max_len,
                                   float *out, et_error *err) {
    const char **t = split_texts(blob, blob_len, n, err);
    if (!t) return err ? err->code : ET_ERR_ARG;
    et_encode_opts o = {batch > 0 ? batch : 32, max_len > 0 ? max_len : w->info.max_seq_length, encode_progress, NULL};
    et_status s = et_encode_texts(&w->model, w->tok, w->pool, t, (size_t)n, &o, out, err);
    free(t);
    return s;
}

/* Tokenize one text (without [CLS]/[SEP]); returns the id count (may exceed max), -1 on error. */
ET_EXPORT int et_wasm_tokenize(const et_wasm_model *w, const char *text, int32_t *ids, int max) {
    return et_tokenize(w->tok, text, strlen(text), ids, max);
}
ET_EXPORT const char *et_wasm_token(const et_wasm_model *w, int32_t id) { return et_tokenizer_token(w->tok, id); }

/* ------------------------------------------------------------------ search */

/* Keep a copy of corpus embeddings [n, dim] (e.g. from et_wasm_encode) for et_wasm_search. */
ET_EXPORT et_status et_wasm_set_corpus(et_wasm_model *w, const float *emb, size_t n, et_error *err) {
    size_t d = (size_t)w->model.cfg.hidden_size;
    float *c = NULL;
    if (n) {
        c = et_malloc(sizeof(float) * n * d, "corpus embeddings", err);
        if (!c) return ET_ERR_NOMEM;
        memcpy(c, emb, sizeof(float) * n * d);
    }
    free(w->corpus);
    w->corpus = c;
    w->n_corpus = n;
    return ET_OK;
}

ET_EXPORT size_t et_wasm_corpus_size(const et_wasm_model *w) { return w->n_corpus; }

/* Top k corpus rows by dot product (cosine for a normalizing model) for nq query embeddings
 * q[nq, dim]: idx[nq, k], score[nq, k], best first; k > corpus size pads with -1 / -inf. */
ET_EXPORT et_status et_wasm_search(et_wasm_model *w, const float *q, int nq, int k, int32_t *idx, float *score,
                                   et_error *err) {
    if (!w->corpus && w->n_corpus == 0 && nq > 0)
        return et_fail(err, ET_ERR_ARG, "search: no corpus (call setCorpus/encodeCorpus first)");
    if (k < 1) return et_fail(err, ET_ERR_ARG, "search: k must be >= 1, got %d", k);
    return et_topk_search(w->pool, q, w->corpus, nq, (int64_t)w->n_corpus, w->model.cfg.hidden_size, k, idx, score,
                          err);
}

/* ------------------------------------------------------------------ export */

/* Write the model as a sentence-transformers folder at `dir` (in the module's file system: MEMFS on
 * the web); dtype: 0 F32, 1 F16, 2 BF16 (et_st_dtype values). */
ET_EXPORT et_status et_wasm_save(const et_wasm_model *w, const char *dir, int dtype, et_error *err) {
    et_hf_save_opts o = {0};
    o.dtype = dtype;
    o.vocab_buf = w->vocab;
    o.vocab_len = w->vocab_len;
    o.max_seq_length = w->info.max_seq_length;
    o.do_lower_case = w->info.do_lower_case;
    return et_hf_save(dir, &w->model, &o, err);
}

/* ------------------------------------------------------------------ training (src/train.h) */
/* TRAINING: see the section at the end of this file (present when src/train.h is available). */
