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
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm25.h"
#include "cli.h"
#include "data.h"
#include "encode.h"
#include "error.h"
#include "fusion.h"
#include "hf.h"
#include "hybrid.h"
#include "index.h"
#include "kernels.h"
#include "lora.h"
#include "metrics.h"
#include "threads.h"
#include "tokenizer.h"

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#include <emscripten/heap.h>
#include <malloc.h>
#define ET_EXPORT EMSCRIPTEN_KEEPALIVE
/* Progress hook: Module.etProgress(kind, done, total) if set; a truthy return cancels. kind 0 =
 * encode (texts), 1 = train, 2 = a BM25 index (docs, et_bm25_build_p). Runs on the thread that called in (the JS
 * worker). */
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
    char *vocab;          /* vocab.txt bytes, for et_hf_save (NULL for a folder loaded by et_wasm_load_dir) */
    size_t vocab_len;
    char tok_path[300];   /* et_wasm_load_dir: the tokenizer file in the module's file system (tokenizer.json, a .model,
                             vocab.json or vocab.txt), which saving and training copy with the files beside it */
    float *corpus;        /* [n_corpus, dim] embeddings for search (NULL = none) */
    size_t n_corpus;
    et_encode_cache enc;  /* encode's activations + packed weights, kept across calls */
    et_hybrid_index ix;   /* the search corpus for et_wasm_search_mode (has_ix): embeddings + BM25 */
    int has_ix;
    int ix_max_len;       /* the tokens per text the corpus was encoded with (queries get the same) */
    int ix_dim;           /* the Matryoshka cut of the corpus (search --dim; 0 = full), queries get the same */
    int ix_int8;          /* the corpus was encoded in int8 (search --int8), queries are too */
    uint64_t ix_version;  /* the model's parameters' version (et_bert.version) when the corpus was encoded */
    char *ix_blob;        /* the corpus texts ix->docs points into (owned) */
    const char **ix_docs;
    et_retrieval_cfg rcfg; /* the model's retrieval.json (has_rcfg), else the defaults */
    int has_rcfg;
    char desc[160];       /* et_wasm_retrieval_describe's answer */
} et_wasm_model;

/* ------------------------------------------------------------------ errors */

ET_EXPORT et_error *et_wasm_error_new(void) { return calloc(1, sizeof(et_error)); }
ET_EXPORT void et_wasm_error_free(et_error *e) { free(e); }
ET_EXPORT const char *et_wasm_error_msg(const et_error *e) { return e ? e->msg : ""; }
ET_EXPORT int et_wasm_error_code(const et_error *e) { return e ? (int)e->code : 0; }
ET_EXPORT const char *et_wasm_simd_name(void) { return et_simd_name(); }
ET_EXPORT int et_wasm_threads_available(void) { return ET_THREADS; }

/* The memory a run may plan for, in MiB: the heap's ceiling (emscripten_get_heap_max: -sMAXIMUM_MEMORY) minus
 * what is in use now (static data, stacks and live allocations: the heap top less its free blocks). `finetune`
 * in the page gets it as its --mem-budget, so its up-front estimate is checked against what the browser can
 * still give (natively: et_cli_default_mem_budget_mb). */
ET_EXPORT int et_wasm_mem_budget_mb(void) {
#ifdef __EMSCRIPTEN__
    struct mallinfo mi = mallinfo();
    size_t top = (size_t)*emscripten_get_sbrk_ptr(), max = emscripten_get_heap_max();
    size_t used = top > (size_t)mi.fordblks ? top - (size_t)mi.fordblks : top;
    return used < max ? (int)((max - used) >> 20) : 0;
#else
    return (int)et_cli_default_mem_budget_mb();
#endif
}

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
    et_hf_apply_case(w->tok, &w->info); /* cased vocabularies (do_lower_case false) */
    w->vocab = et_malloc(vocab_len + 1, "vocab copy", err);
    if (!w->vocab) { et_tokenizer_free(w->tok); et_bert_free(&w->model); free(w); return NULL; }
    memcpy(w->vocab, vocab, vocab_len);
    w->vocab_len = vocab_len;
    w->pool = et_pool_create(threads > 0 ? threads : 1, err);
    if (!w->pool) { free(w->vocab); et_tokenizer_free(w->tok); et_bert_free(&w->model); free(w); return NULL; }
    et_retrieval_cfg_default(&w->rcfg);
    return w;
}

/* Load a model folder written into the module's file system (MEMFS) the way the command does: et_hf_load_ex, then
 * et_hf_load_tokenizer, which picks the tokenizer from the folder's own files (vocab.txt, tokenizer.json with a
 * WordPiece / Unigram / BPE model, a sentencepiece .model, vocab.json + merges.txt). The folder must stay while the
 * model lives (saving and training copy its tokenizer files). */
ET_EXPORT et_wasm_model *et_wasm_load_dir(const char *dir, int threads, et_error *err) {
    et_wasm_model *w = et_calloc(1, sizeof *w, "model handle", err);
    if (!w) return NULL;
    if (et_hf_load_ex(dir, &w->model, &w->info, err)) { free(w); return NULL; }
    w->tok = et_hf_load_tokenizer(dir, &w->info, &w->model.cfg, w->tok_path, sizeof w->tok_path, err);
    if (!w->tok) { et_bert_free(&w->model); free(w); return NULL; }
    w->pool = et_pool_create(threads > 0 ? threads : 1, err);
    if (!w->pool) { et_tokenizer_free(w->tok); et_bert_free(&w->model); free(w); return NULL; }
    et_retrieval_cfg_default(&w->rcfg);
    return w;
}

/* Merge a PEFT LoRA adapter folder written into the module's file system (adapter_config.json +
 * adapter_model.safetensors) into the loaded model: et_lora_apply_dir, what `encode/search/eval --adapter DIR` and
 * `embedtune merge` do (W += alpha/r B A; shapes checked first, so a refused adapter leaves the model as it was).
 * The encode cache sees the new weights (et_lora_merge bumps the model's version); a search index built before
 * holds the old model's vectors: index the passages again. */
ET_EXPORT et_status et_wasm_apply_adapter(et_wasm_model *w, const char *dir, et_error *err) {
    return et_lora_apply_dir(&w->model, dir, err);
}

static void drop_index(et_wasm_model *w) {
    if (w->has_ix) et_hybrid_index_free(&w->ix);
    w->has_ix = 0;
    free(w->ix_blob);
    free(w->ix_docs);
    w->ix_blob = NULL;
    w->ix_docs = NULL;
}

ET_EXPORT void et_wasm_free(et_wasm_model *w) {
    if (!w) return;
    et_pool_destroy(w->pool);
    et_tokenizer_free(w->tok);
    et_bert_free(&w->model);
    free(w->vocab);
    free(w->corpus);
    drop_index(w);
    et_encode_cache_free(&w->enc);
    free(w);
}

ET_EXPORT int et_wasm_dim(const et_wasm_model *w) { return w->model.cfg.hidden_size; }
ET_EXPORT int et_wasm_max_len(const et_wasm_model *w) { return w->info.max_seq_length; }
ET_EXPORT int et_wasm_threads(const et_wasm_model *w) { return et_pool_size(w->pool); }
ET_EXPORT int et_wasm_vocab_size(const et_wasm_model *w) { return w->model.cfg.vocab_size; }
ET_EXPORT int et_wasm_num_layers(const et_wasm_model *w) { return w->model.cfg.num_layers; }
ET_EXPORT int et_wasm_normalize(const et_wasm_model *w) { return w->model.cfg.normalize; }
ET_EXPORT int et_wasm_pooling(const et_wasm_model *w) { return (int)w->model.cfg.pooling; }
/* int8 inference (docs/int8.md): on != 0 runs the encoder's Linear layers in int8 (SIMD128 i32x4.dot_i16x8_s); -1 only
 * reads. Returns the previous setting (1 after loading an int8 export). */
ET_EXPORT int et_wasm_int8(et_wasm_model *w, int on) {
    int prev = w->model.int8;
    if (on >= 0) w->model.int8 = on != 0;
    return prev;
}

/* ------------------------------------------------------------------ encode */

static int encode_progress(void *user, size_t done, size_t total) {
    (void)user;
    return et_wasm_js_progress(0, (double)done, (double)total);
}
static int bm25_progress(void *user, size_t done, size_t total) {
    (void)user;
    return et_wasm_js_progress(2, (double)done, (double)total);
}

/* Split a blob of n NUL-terminated texts into pointers (caller frees). */
static const char **split_texts(const char *blob, size_t blob_len, int n, et_error *err) {
    if (n < 0) return et_fail(err, ET_ERR_ARG, "negative text count %d", n), NULL;
    const char **t = et_malloc(sizeof(char *) * (size_t)(n ? n : 1), "text pointers", err);
    if (!t) return NULL;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const char *z = off < blob_len ? memchr(blob + off, 0, blob_len - off) : NULL;
        if (!z) { free(t); return et_fail(err, ET_ERR_ARG, "text %d is not NUL-terminated in the blob", i), NULL; }
        t[i] = blob + off;
        off = (size_t)(z - blob) + 1;
    }
    return t;
}

/* ------------------------------------------------------------------ the held-out split */

/* The held-out split of docs/data-formats.md, THE rule of eval and finetune (et_split_row_is_test, data.h), for n
 * rows: ids and queries are blobs of n NUL-terminated UTF-8 strings each (an empty id = the row has none, so its
 * query text is the key; STS rows pass s1 as the query). out[i] = 1 if row i is held out, else 0. No model needed. */
ET_EXPORT et_status et_wasm_split(const char *ids, size_t ids_len, const char *queries, size_t queries_len, int n,
                                  unsigned char *out, et_error *err) {
    const char **id = split_texts(ids, ids_len, n, err);
    if (!id) return err ? err->code : ET_ERR_ARG;
    const char **q = split_texts(queries, queries_len, n, err);
    if (!q) { free(id); return err ? err->code : ET_ERR_ARG; }
    for (int i = 0; i < n; i++) out[i] = (unsigned char)et_split_row_is_test(id[i], q[i]);
    free(id);
    free(q);
    return ET_OK;
}

/* out[n, dim]. max_len <= 0: the model's max_seq_length. batch <= 0: 32. */
ET_EXPORT et_status et_wasm_encode(et_wasm_model *w, const char *blob, size_t blob_len, int n, int batch, int max_len,
                                   float *out, et_error *err) {
    const char **t = split_texts(blob, blob_len, n, err);
    if (!t) return err ? err->code : ET_ERR_ARG;
    /* wasm32: one heap of at most 2 GB (-sMAXIMUM_MEMORY), and a single buffer must stay well under it
     * (docs/wasm-build.md, E8): refuse a batch whose activations would not fit, before allocating */
    et_encode_opts o = {batch > 0 ? batch : 32, max_len > 0 ? max_len : w->info.max_seq_length, encode_progress, NULL,
                        (size_t)1024 << 20, &w->enc};
    et_status s = et_encode_texts(&w->model, w->tok, w->pool, t, (size_t)n, &o, out, err);
    free(t);
    return s;
}

/* Tokenize one text (without [CLS]/[SEP]); returns the id count (may exceed max), -1 on error. */
ET_EXPORT int et_wasm_tokenize(const et_wasm_model *w, const char *text, int32_t *ids, int max) {
    return et_tokenize(w->tok, text, strlen(text), ids, max);
}
ET_EXPORT const char *et_wasm_token(const et_wasm_model *w, int32_t id) { return et_tokenizer_token(w->tok, id); }

/* ------------------------------------------------------------------ search index (`embedtune index`) */

/* An index read from its file's bytes (index.h) with the retrieval settings of the model folder
 * (retrieval.json text, or NULL/0 for the defaults), attached to model w (the probe must match). */
typedef struct {
    et_index x;
    et_retrieval_cfg rc;
    et_wasm_model *w;
} et_wasm_index;

ET_EXPORT void et_wasm_index_free(et_wasm_index *ix) {
    if (!ix) return;
    et_index_free(&ix->x);
    free(ix);
}

ET_EXPORT et_wasm_index *et_wasm_index_open(et_wasm_model *w, const void *bytes, size_t len, const char *retrieval,
                                            size_t retrieval_len, et_error *err) {
    et_wasm_index *ix = et_calloc(1, sizeof *ix, "index handle", err);
    if (!ix) return NULL;
    ix->w = w;
    et_retrieval_cfg_default(&ix->rc);
    if ((retrieval && et_retrieval_parse(retrieval, retrieval_len, "retrieval.json", &ix->rc, err)) ||
        et_index_read_mem(bytes, len, "index", &ix->x, err)) { free(ix); return NULL; }
    et_encode_opts eo = {1, 0, NULL, NULL, (size_t)1024 << 20, &w->enc};
    if (et_index_attach(&ix->x, ix->x.dtype != ET_INDEX_NONE ? &w->model : NULL, w->tok, w->pool, &eo, err)) {
        et_wasm_index_free(ix);
        return NULL;
    }
    return ix;
}

ET_EXPORT int et_wasm_index_ndocs(const et_wasm_index *ix) { return ix->x.nd; }
ET_EXPORT int et_wasm_index_dim(const et_wasm_index *ix) { return ix->x.dim; }
ET_EXPORT int et_wasm_index_mode(const et_wasm_index *ix) { return (int)ix->rc.mode; }
ET_EXPORT const char *et_wasm_index_dtype(const et_wasm_index *ix) { return et_index_dtype_name(ix->x.dtype); }
ET_EXPORT const char *et_wasm_index_id(const et_wasm_index *ix, int i) { return i >= 0 && i < ix->x.nd ? ix->x.id[i] : ""; }
/* the stored text of doc i, or NULL (not stored / out of range) */
ET_EXPORT const char *et_wasm_index_text(const et_wasm_index *ix, int i) {
    return ix->x.text && i >= 0 && i < ix->x.nd ? ix->x.text[i] : NULL;
}

/* Rank the index for nq queries (blob of NUL-terminated texts): idx[nq, k], score[nq, k], best first (-1 / -inf
 * padding). mode: 0 dense, 1 bm25, 2 hybrid, -1 the retrieval.json default. fusion: a spec as `search --fusion`
 * (NULL or "" = retrieval.json's). The same code as `embedtune search --index` (hybrid.h). */
ET_EXPORT et_status et_wasm_index_search(et_wasm_index *ix, const char *blob, size_t blob_len, int nq, int k, int mode,
                                         const char *fusion, int32_t *idx, float *score, et_error *err) {
    if (k < 1 || nq < 0) return et_fail(err, ET_ERR_ARG, "search: k = %d, queries = %d", k, nq);
    et_retrieval_mode m = mode < 0 ? ix->rc.mode : (et_retrieval_mode)mode;
    if (m != ET_MODE_DENSE && m != ET_MODE_BM25 && m != ET_MODE_HYBRID) return et_fail(err, ET_ERR_ARG, "search: mode %d", mode);
    et_fusion f = ix->rc.fusion;
    if (fusion && fusion[0] && et_fusion_parse(fusion, &f, err)) return ET_ERR_ARG;
    if (m != ET_MODE_BM25 && !ix->x.ix.m)
        return et_fail(err, ET_ERR_ARG, "search: mode %s needs embeddings; this index has none (dtype none)", et_retrieval_mode_name(m));
    const char **t = split_texts(blob, blob_len, nq, err);
    if (!t) return err ? err->code : ET_ERR_ARG;
    int kk = k > ix->x.nd ? ix->x.nd : k;
    int32_t *ii = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * (size_t)kk);
    double *ss = malloc(sizeof(double) * (size_t)(nq ? nq : 1) * (size_t)kk);
    et_hybrid_queries Y;
    memset(&Y, 0, sizeof Y);
    et_status s = ET_OK;
    if (!ii || !ss) { s = et_fail(err, ET_ERR_NOMEM, "search: out of memory"); goto done; }
    et_encode_opts eo = {32, ix->x.max_len > 0 ? ix->x.max_len : ix->w->info.max_seq_length, NULL, NULL, (size_t)1024 << 20, &ix->w->enc};
    /* BM25 only: no query embeddings */
    const et_bert *keep = ix->x.ix.m;
    if (m == ET_MODE_BM25) ix->x.ix.m = NULL;
    s = et_hybrid_queries_build(&ix->x.ix, ix->w->pool, &eo, t, nq, kk > f.depth ? kk : f.depth, NULL, &Y, err);
    ix->x.ix.m = keep;
    if (!s) s = et_hybrid_rank(ix->w->pool, &Y, m, &f, kk, ii, ss, err);
    if (!s)
        for (int q = 0; q < nq; q++)
            for (int j = 0; j < k; j++) {
                idx[(size_t)q * k + j] = j < kk ? ii[(size_t)q * kk + j] : -1;
                score[(size_t)q * k + j] = j < kk && ii[(size_t)q * kk + j] >= 0 ? (float)ss[(size_t)q * kk + j] : -INFINITY;
            }
done:
    et_hybrid_queries_free(&Y);
    free(ii);
    free(ss);
    free(t);
    return s;
}

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

/* ------------------------------------------------------------------ retrieval: dense, BM25, hybrid (hybrid.h) */
/* The model folder's retrieval.json (fusion.h: mode, BM25 k1/b, the fusion), as `embedtune search` reads it;
 * len 0 = the folder has none (the defaults: the zero-shot fusion). Errors name the file and the field. */
ET_EXPORT et_status et_wasm_set_retrieval(et_wasm_model *w, const char *text, size_t len, et_error *err) {
    et_retrieval_cfg r;
    if (!len) { et_retrieval_cfg_default(&w->rcfg); w->has_rcfg = 0; return ET_OK; }
    et_status s = et_retrieval_parse(text, len, ET_RETRIEVAL_FILE, &r, err);
    if (s) return s;
    w->rcfg = r;
    w->has_rcfg = 1;
    return ET_OK;
}

/* One line for the page: "MODE|FUSION|SOURCE", e.g. "hybrid|convex minmax alpha 0.3|retrieval.json" or
 * "dense|convex minmax alpha 0.2|default" (the string lives in w until the next call). */
ET_EXPORT const char *et_wasm_retrieval_describe(et_wasm_model *w) {
    char f[120];
    snprintf(w->desc, sizeof w->desc, "%s|%s|%s", et_retrieval_mode_name(w->rcfg.mode),
             et_fusion_describe(&w->rcfg.fusion, f, sizeof f), w->has_rcfg ? ET_RETRIEVAL_FILE : "default");
    return w->desc;
}

/* The search corpus: a blob of n NUL-terminated texts, encoded with the model (batch, max_len as
 * et_wasm_encode; progress and cancel per batch, kind 0) and indexed by BM25 (retrieval.json's k1/b; progress and
 * cancel every 2048 docs, kind 2): the
 * hybrid engine of `embedtune search` (et_hybrid_index_build). dim > 0: each embedding cut to its first dim
 * values and re-normalised (`search --dim`, et_embed_truncate); int8 != 0: encoded with int8 inference
 * (`search --int8`); the queries of et_wasm_search_mode get the same. Replaces the previous corpus. */
ET_EXPORT et_status et_wasm_index_texts(et_wasm_model *w, const char *blob, size_t blob_len, int n, int batch, int max_len,
                                        int dim, int int8, et_error *err) {
    drop_index(w);
    char *b = et_malloc(blob_len ? blob_len : 1, "corpus texts", err);
    if (!b) return ET_ERR_NOMEM;
    memcpy(b, blob, blob_len);
    const char **t = split_texts(b, blob_len, n, err);
    if (!t) { free(b); return err ? err->code : ET_ERR_ARG; }
    et_encode_opts o = {batch > 0 ? batch : 32, max_len > 0 ? max_len : w->info.max_seq_length, encode_progress, NULL,
                        (size_t)1024 << 20, &w->enc};
    o.dim = dim > 0 ? dim : 0;
    int prev8 = w->model.int8;
    if (int8) w->model.int8 = 1;
    const et_progress bp = {bm25_progress, NULL};
    et_status s = et_hybrid_index_build(&w->model, w->tok, w->pool, &o, 1, &w->rcfg.bm25, t, n, &bp, &w->ix, err);
    w->model.int8 = prev8;
    if (s) { free(t); free(b); return s; }
    w->has_ix = 1;
    w->ix_max_len = o.max_len;
    w->ix_dim = o.dim;
    w->ix_int8 = int8 != 0;
    w->ix_version = w->model.version;
    w->ix_blob = b;
    w->ix_docs = t;
    return ET_OK;
}

/* Rank the corpus of et_wasm_index_texts for one query: mode 0 dense (cosine), 1 bm25, 2 hybrid (the
 * retrieval.json fusion, else the default one), exactly as `embedtune search --mode`: idx[k], score[k]
 * (-1 / -inf padding). */
ET_EXPORT et_status et_wasm_search_mode(et_wasm_model *w, const char *query, int mode, int k, int32_t *idx, float *score,
                                        et_error *err) {
    if (!w->has_ix) return et_fail(err, ET_ERR_ARG, "search: no corpus (index the passages first)");
    if (k < 1) return et_fail(err, ET_ERR_ARG, "search: k must be >= 1, got %d", k);
    if (mode < 0 || mode > 2) return et_fail(err, ET_ERR_ARG, "search: unknown mode %d", mode);
    et_encode_opts o = {1, w->ix_max_len, NULL, NULL, (size_t)1024 << 20, &w->enc};
    o.dim = w->ix_dim;
    et_hybrid_queries Y;
    int32_t depth = w->rcfg.fusion.depth > k ? w->rcfg.fusion.depth : k;
    int prev8 = w->model.int8;
    if (w->ix_int8) w->model.int8 = 1;
    et_status s = et_hybrid_queries_build(&w->ix, w->pool, &o, &query, 1, depth, NULL, &Y, err);
    w->model.int8 = prev8;
    if (s) return s;
    double *sc = et_malloc(sizeof(double) * (size_t)k, "search scores", err);
    if (!sc) { et_hybrid_queries_free(&Y); return ET_ERR_NOMEM; }
    s = et_hybrid_rank(w->pool, &Y, (et_retrieval_mode)mode, &w->rcfg.fusion, k, idx, sc, err);
    for (int i = 0; i < k && !s; i++) score[i] = (float)sc[i];
    free(sc);
    et_hybrid_queries_free(&Y);
    return s;
}

/* The words of text a search result highlights: the tokens that are terms of query by BM25's token rule
 * (et_bm25_match_spans), as byte spans spans[2i], spans[2i+1] for i < min(count, cap). Returns the count,
 * -1 when out of memory. */
ET_EXPORT int et_wasm_match_spans(const char *query, const char *text, int32_t *spans, int cap) {
    int64_t *sp = malloc(sizeof(int64_t) * 2 * (size_t)(cap > 0 ? cap : 1));
    if (!sp) return -1;
    int64_t n = et_bm25_match_spans(query, text, sp, cap > 0 ? cap : 0);
    for (int64_t i = 0; i < 2 * (n < cap ? n : cap); i++) spans[i] = (int32_t)sp[i];
    free(sp);
    return n > 0x7fffffff ? 0x7fffffff : (int)n;
}

/* ------------------------------------------------------------------ export */

/* Write the model as a sentence-transformers folder at `dir` (in the module's file system: MEMFS on
 * the web); dtype: 0 F32, 1 F16, 2 BF16 (et_st_dtype values). */
ET_EXPORT et_status et_wasm_save(const et_wasm_model *w, const char *dir, int dtype, et_error *err) {
    et_hf_save_opts o = {0};
    o.dtype = dtype;
    o.vocab_buf = w->vocab;
    o.vocab_len = w->vocab_len;
    if (w->tok_path[0]) o.vocab_path = w->tok_path; /* et_wasm_load_dir: its tokenizer file and the files beside it */
    o.max_seq_length = w->info.max_seq_length;
    o.do_lower_case = w->info.do_lower_case;
    o.strip_accents = w->info.strip_accents;
    return et_hf_save(dir, &w->model, &o, err);
}

/* ------------------------------------------------------------------ training (src/train.h) */
/* TRAINING: see the section at the end of this file (present when src/train.h is available). */

/* ------------------------------------------------------------------ TRAINING (added for the page, web/) */
/* A training session trains the handle's model IN PLACE with src/train.h's et_trainer_run, in chunks:
 * et_wasm_train_run(t, steps) runs at most `steps` optimizer steps and returns, so the JS worker gets
 * its event loop back between chunks (cancel, checkpoint upload). The data is a JSONL file in the
 * module's file system (et_train_data_read format); checkpoints go to out_dir (MEMFS), one kept.
 * Per step, Module.etTrainProgress(step, total, loss, lr, epoch, grad_norm, examples_per_s) is called if
 * set (a truthy return stops after that step, with a checkpoint). */
#include "train.h"
#include "fileio.h"

#ifdef __EMSCRIPTEN__
EM_JS(int, et_wasm_js_train_progress, (double step, double total, double loss, double lr, int epoch, double gnorm,
                                       double eps), {
    var f = Module['etTrainProgress'];
    if (!f) return 0;
    return f(step, total, loss, lr, epoch, gnorm, eps) ? 1 : 0;
});
#else
static int et_wasm_js_train_progress(double step, double total, double loss, double lr, int epoch, double gnorm,
                                     double eps) {
    (void)step; (void)total; (void)loss; (void)lr; (void)epoch; (void)gnorm; (void)eps;
    return 0;
}
#endif

typedef struct {
    et_wasm_model *w;
    et_train_data data;
    et_trainer tr;
    char out_dir[256], vocab_path[300];
} et_wasm_train;

static int train_progress(void *user, const et_train_stats *s) {
    (void)user;
    return et_wasm_js_train_progress((double)s->step, (double)s->total_steps, s->loss, s->lr, s->epoch, s->grad_norm,
                                     s->examples_per_s);
}

/* Start a session on w's model. loss: et_train_loss; moe_experts 0 = dense; warmup_ratio < 0: default.
 * data_path / out_dir: paths in the module's file system. Returns NULL on error (err says why, with
 * data_path:line for bad data). */
ET_EXPORT et_wasm_train *et_wasm_train_begin(et_wasm_model *w, const char *data_path, const char *out_dir, int loss,
                                             int epochs, int batch, double lr, int max_len_q, int max_len_d,
                                             int moe_experts, double warmup_ratio, double seed, et_error *err) {
    et_wasm_train *t = et_calloc(1, sizeof *t, "training session", err);
    if (!t) return NULL;
    t->w = w;
    et_encode_cache_free(&w->enc); /* give training the memory (the model may also become MoE) */
    snprintf(t->out_dir, sizeof t->out_dir, "%s", out_dir);
    if (w->tok_path[0]) { /* et_wasm_load_dir: the folder's own tokenizer file */
        snprintf(t->vocab_path, sizeof t->vocab_path, "%s", w->tok_path);
    } else {
        snprintf(t->vocab_path, sizeof t->vocab_path, "%s.vocab.txt", out_dir);
        FILE *f = fopen(t->vocab_path, "wb");
        if (!f || fwrite(w->vocab, 1, w->vocab_len, f) != w->vocab_len) {
            if (f) fclose(f);
            free(t);
            return et_fail(err, ET_ERR_IO, "%s: cannot write the vocabulary copy", t->vocab_path), NULL;
        }
        fclose(f);
    }
    if (et_train_data_read(data_path, &t->data, err)) { free(t); return NULL; }
    et_train_cfg c;
    et_train_cfg_default(&c);
    c.loss = (et_train_loss)loss;
    if (epochs > 0) c.epochs = epochs;
    if (batch > 0) c.batch = batch;
    if (lr > 0) c.lr = lr;
    if (max_len_q > 0) c.max_len_q = max_len_q;
    if (max_len_d > 0) c.max_len_d = max_len_d;
    if (warmup_ratio >= 0) c.warmup_ratio = warmup_ratio;
    c.seed = (uint64_t)seed;
    c.moe_experts = moe_experts > 0 ? moe_experts : 0;
    c.keep_checkpoints = 1;
    c.out_dir = t->out_dir;
    c.vocab_path = t->vocab_path;
    c.max_seq_length = w->info.max_seq_length;
    c.do_lower_case = w->info.do_lower_case;
    c.strip_accents = w->info.strip_accents;
    c.mem_budget = (size_t)et_wasm_mem_budget_mb() << 20; /* what the heap can still give */
    c.progress = train_progress;
    if (et_trainer_init(&t->tr, &c, &w->model, w->pool, &t->data, err)) {
        et_train_data_free(&t->data);
        free(t);
        return NULL;
    }
    return t;
}

/* Load out_dir/latest (written by an earlier session with the same settings and data). */
ET_EXPORT et_status et_wasm_train_resume(et_wasm_train *t, et_error *err) { return et_trainer_resume(&t->tr, err); }

/* Run up to `steps` optimizer steps (<= 0: to the end). A checkpoint is written when it stops early;
 * at the end the final model is saved to out_dir too. */
ET_EXPORT et_status et_wasm_train_run(et_wasm_train *t, int steps, et_error *err) {
    t->tr.cfg.stop_after = steps > 0 ? steps : 0;
    return et_trainer_run(&t->tr, t->w->tok, err);
}

ET_EXPORT double et_wasm_train_step(const et_wasm_train *t) { return (double)et_trainer_step(&t->tr); }
ET_EXPORT double et_wasm_train_total(const et_wasm_train *t) { return (double)t->tr.total_steps; }
ET_EXPORT int et_wasm_train_negatives(const et_wasm_train *t) { return t->tr.G; }
ET_EXPORT int et_wasm_train_examples(const et_wasm_train *t) { return t->data.n; }

/* End the session (the model keeps its trained weights; MoE-converted models stay MoE). */
ET_EXPORT void et_wasm_train_end(et_wasm_train *t) {
    if (!t) return;
    et_trainer_free(&t->tr);
    et_train_data_free(&t->data);
    free(t);
}

/* ------------------------------------------------------------------ FINETUNE (the page's whole workflow) */
/* The page runs `embedtune finetune` itself: the same option table, validation, defaults, data readers,
 * split, mining, experts, trainer, evaluation and --json report as the native command (src/cli/cli_finetune.c,
 * src/finetune.c). The JS side writes the model folder and the user's data file into the module's file
 * system (MEMFS), passes the command line, and reads the --out folder and the --json file back.
 * Progress: Module.etFinetuneProgress(phase, done, total, loss, lr, epoch, examples_per_s, step, unit) for every
 * et_ft_progress (phase = et_ft_phase; loss.. are NaN outside the train phase; step and unit its strings, '' for
 * none: the step of the phase, e.g. "fusion cross-validation", and what done / total count); a truthy return cancels
 * (et_finetune_run returns ET_ERR_CANCELLED within one encode batch or optimizer step). */
#include "cli.h"
#include "data.h"
#include "experts.h"
#include "cJSON.h"

extern et_command et_cmd_finetune;

#ifdef __EMSCRIPTEN__
EM_JS(int, et_wasm_js_ft_progress, (int phase, double done, double total, double loss, double lr, int epoch, double eps,
                                    const char *step, const char *unit), {
    var f = Module['etFinetuneProgress'];
    if (!f) return 0;
    return f(phase, done, total, loss, lr, epoch, eps, step ? UTF8ToString(step) : '', unit ? UTF8ToString(unit) : '') ? 1 : 0;
});
#else
static int et_wasm_js_ft_progress(int phase, double done, double total, double loss, double lr, int epoch, double eps,
                                  const char *step, const char *unit) {
    (void)phase; (void)done; (void)total; (void)loss; (void)lr; (void)epoch; (void)eps; (void)step; (void)unit;
    return 0;
}
#endif

static int ft_progress_js(void *user, const et_ft_progress *p) {
    (void)user;
    const et_train_stats *t = p->train;
    double nan = 0.0 / 0.0;
    return et_wasm_js_ft_progress((int)p->phase, p->done, p->total, t ? t->loss : nan, t ? t->lr : nan, t ? t->epoch : -1,
                                  t ? t->examples_per_s : nan, p->step, p->unit);
}

/* The search index's embeddings kept for the next et_wasm_finetune (et_finetune_cfg.known): its evaluation before
 * training copies the rows of the held-out passages the index has instead of encoding them again. One slot. */
static struct {
    et_ft_known kn;
    char *blob;
    const char **docs;
    float *D;
} g_known;

static void known_release(void *user) {
    (void)user;
    free(g_known.D);
    free(g_known.docs);
    free(g_known.blob);
    memset(&g_known, 0, sizeof g_known);
}

/* Before the page's run frees w: moves w's search index's texts and embeddings into the slot, when they are the
 * model's as the run will encode (full size, fp32, encoded with the current parameters), and frees the rest of the
 * index (BM25). Returns the texts kept (0: none; the slot is emptied either way). */
ET_EXPORT int et_wasm_keep_index(et_wasm_model *w) {
    known_release(NULL);
    if (!w->has_ix || !w->ix.D || w->ix_dim || w->ix_int8 || w->model.int8 || w->ix_version != w->model.version) return 0;
    g_known.D = w->ix.D;
    g_known.docs = w->ix_docs;
    g_known.blob = w->ix_blob;
    w->ix.D = NULL;
    w->ix_docs = NULL;
    w->ix_blob = NULL;
    int mt = et_bert_max_tokens(&w->model.cfg); /* the cap et_encode_texts applied */
    g_known.kn = (et_ft_known){g_known.docs, g_known.D, w->ix.nd, w->ix.dim, w->ix_max_len < mt ? w->ix_max_len : mt,
                               known_release, NULL};
    drop_index(w);
    return g_known.kn.n;
}

/* argv: a blob of argc NUL-terminated arguments (after "finetune"). Returns the command's exit status
 * (0 ok, 1 failed: the message is on stderr as "embedtune finetune: error: ...", 2 bad options). The embeddings
 * et_wasm_keep_index kept are offered to the run (et_finetune_cfg.known) and freed by the end of it. */
ET_EXPORT int et_wasm_finetune(const char *blob, size_t blob_len, int argc) {
    et_error err = {0};
    const char **argv = split_texts(blob, blob_len, argc, &err);
    if (!argv) { known_release(NULL); fprintf(stderr, "embedtune finetune: error: %s\n", err.msg); return 2; }
    /* no --mem-budget given: what the heap can still give (et_wasm_mem_budget_mb), not native's 8 GiB */
    char budget[32];
    const char **av = argv;
    int has_budget = 0;
    for (int i = 0; i < argc; i++) has_budget |= strcmp(argv[i], "--mem-budget") == 0;
    if (!has_budget) {
        const char **a2 = realloc(argv, sizeof(char *) * (size_t)(argc + 2));
        if (!a2) { free(argv); known_release(NULL); fprintf(stderr, "embedtune finetune: error: out of memory\n"); return 1; }
        snprintf(budget, sizeof budget, "%d", et_wasm_mem_budget_mb());
        a2[argc++] = "--mem-budget";
        a2[argc++] = budget;
        av = argv = a2;
    }
    int r = et_cli_parse(&et_cmd_finetune, argc, (char **)av);
    if (!r) r = et_cli_finetune_run(et_cmd_finetune.opts, et_cmd_finetune.nopts, ft_progress_js, NULL, g_known.kn.n ? &g_known.kn : NULL);
    else r = r > 0 ? 0 : 2;
    known_release(NULL); /* when the run did not reach it (bad options) */
    free(argv);
    return r;
}

/* The pairs file as the command reads it (data.h, bad lines skipped and counted here so the page can
 * list them; `finetune` itself stops at the first one) and the held-out split of every row (data.h
 * et_split_row_is_test, the one rule), as JSON:
 * {"rows": n, "test": held-out rows, "K": experts, "expert_names": [..], "has_label": bool, "negatives": bool,
 *  "bad": skipped lines, "errors": ["file:line: reason", ..] (first ET_DATA_MAX_MSGS),
 *  "preview": [{"row", "id", "query", "passage", "label", "scores", "test"}] (first max_rows rows)}.
 * Returns a malloc'ed string (free it with free), NULL on error (err says why). */
ET_EXPORT char *et_wasm_pairs_preview(const char *path, int max_rows, et_error *err) {
    et_pairs P;
    et_read_report rep;
    et_read_opts ro = {1, 0};
    memset(&rep, 0, sizeof rep);
    if (et_pairs_read(path, &ro, &P, &rep, err)) return NULL;
    cJSON *o = cJSON_CreateObject(), *errs = cJSON_CreateArray(), *pv = cJSON_CreateArray(), *names = cJSON_CreateArray();
    int64_t ntest = 0;
    for (int64_t i = 0; i < P.n; i++) ntest += et_split_row_is_test(P.id[i], P.query[i]);
    cJSON_AddNumberToObject(o, "rows", (double)P.n);
    cJSON_AddNumberToObject(o, "test", (double)ntest);
    cJSON_AddNumberToObject(o, "K", P.K);
    for (int k = 0; k < P.K && P.expert_names; k++) cJSON_AddItemToArray(names, cJSON_CreateString(P.expert_names[k]));
    cJSON_AddItemToObject(o, "expert_names", names);
    cJSON_AddBoolToObject(o, "has_label", P.has_label);
    cJSON_AddBoolToObject(o, "negatives", P.n && P.neg_off && P.neg_off[P.n] > 0);
    cJSON_AddNumberToObject(o, "bad", (double)rep.nbad);
    for (int i = 0; i < rep.nmsgs; i++) cJSON_AddItemToArray(errs, cJSON_CreateString(rep.msgs[i]));
    cJSON_AddItemToObject(o, "errors", errs);
    for (int64_t i = 0; i < P.n && i < max_rows; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "row", (double)(i + 1));
        if (P.id[i]) cJSON_AddStringToObject(r, "id", P.id[i]);
        cJSON_AddStringToObject(r, "query", P.query[i]);
        cJSON_AddStringToObject(r, "passage", P.passage[i]);
        if (P.has_label) cJSON_AddNumberToObject(r, "label", P.label[i]);
        if (P.K) {
            cJSON *sc = cJSON_CreateArray();
            for (int k = 0; k < P.K; k++) cJSON_AddItemToArray(sc, cJSON_CreateNumber(P.scores[i * P.K + k]));
            cJSON_AddItemToObject(r, "scores", sc);
        }
        cJSON_AddBoolToObject(r, "test", et_split_row_is_test(P.id[i], P.query[i]));
        cJSON_AddItemToArray(pv, r);
    }
    cJSON_AddItemToObject(o, "preview", pv);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    et_pairs_free(&P);
    if (!s) et_fail(err, ET_ERR_NOMEM, "%s: out of memory for the preview", path);
    return s;
}

/* texts[0..n) as one malloc'ed blob of NUL-terminated texts (*len: bytes); NULL when out of memory. */
static char *texts_blob(const char *const *v, int32_t n, size_t *len_out, et_error *err) {
    size_t len = 0;
    for (int32_t i = 0; i < n; i++) len += strlen(v[i]) + 1;
    char *b = et_malloc(len ? len : 1, "passage blob", err), *q = b;
    if (b)
        for (int32_t i = 0; i < n; i++) { size_t l = strlen(v[i]) + 1; memcpy(q, v[i], l); q += l; }
    *len_out = len;
    return b;
}

/* The distinct passages of the pairs file, in first-seen order, as one blob of NUL-terminated texts
 * (what finetune's held-out evaluation searches over and the page's search box searches). *n_out: count,
 * *len_out: bytes. malloc'ed (free it), NULL on error. */
ET_EXPORT char *et_wasm_pairs_passages(const char *path, int *n_out, size_t *len_out, et_error *err) {
    et_pairs P;
    et_read_opts ro = {1, 0};
    if (et_pairs_read(path, &ro, &P, NULL, err)) return NULL;
    et_pair_index ix;
    if (et_pair_index_build(&P, &ix, err)) { et_pairs_free(&P); return NULL; }
    char *b = texts_blob((const char *const *)ix.ptext, ix.np, len_out, err);
    *n_out = ix.np;
    et_pair_index_free(&ix);
    et_pairs_free(&P);
    return b;
}

/* Passages without questions, read as `finetune --corpus` reads them (et_cli_read_passages: a BEIR
 * corpus.jsonl with title + text, JSONL with "text", or one passage per line): one blob of n NUL-terminated
 * texts (*n_out, *len_out bytes), malloc'ed (free it); NULL on error (err names the file and line). */
ET_EXPORT char *et_wasm_passages_read(const char *path, int *n_out, size_t *len_out, et_error *err) {
    et_cli_passages p;
    if (et_cli_read_passages(path, &p, err)) return NULL;
    char *b = texts_blob(p.v, p.n, len_out, err);
    *n_out = p.n;
    et_cli_passages_free(&p);
    return b;
}
