/* test_oom.c - out of memory, tested as SQLite does: the allocator fails the N-th allocation, for every N.
 *
 * This executable is linked with -Wl,--wrap=malloc,... (CMakeLists.txt), so every allocation of the library,
 * of cJSON (vendored, compiled in) and of this file goes through the __wrap_* functions below. A scenario
 * (load a small model, encode, two training steps with checkpoints, each reader, the tokenizer, BM25) first runs once without failures: that run
 * gives the reference result and A, its number of allocations. Then, for N = 1 .. A, it runs again with the
 * N-th allocation failing (one-shot: later ones succeed), and
 *   - either it succeeds, and its result must equal the reference byte for byte (a failure handled by a
 *     fallback must not change the result),
 *   - or it fails with ET_ERR_NOMEM and a message saying what could not be allocated ("out of memory ..." or
 *     "cannot allocate ..." then what; no other code: "not valid JSON" for a valid file is a defect),
 *   - and in both cases every block allocated during the run has been freed (leaks are counted here, so the
 *     plain build checks them too; the ASan build adds LSan and use-after-free detection),
 *   - and nothing crashes (a crash fails the test).
 * With persistent failures (every allocation from the N-th on fails) the same holds; that mode is run for the
 * readers (short scenarios), where error paths that allocate would show.
 *
 * Allocations made inside libc (fopen's buffer, getline's line) are not seen: they cannot be made to fail.
 * Everything runs on one thread (pool NULL / threads = 1) so the allocation order is deterministic.
 * ET_OOM_VERBOSE=1 prints every distinct failure message; ET_OOM_ONLY=name runs one scenario; ET_OOM_N=n runs
 * only the n-th failure (debugging: `gdb -ex 'break oom_hit'` stops where the allocation fails). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bm25.h"
#include "bpe.h"
#include "data.h"
#include "encode.h"
#include "fileio.h"
#include "hf.h"
#include "safetensors.h"
#include "sentencepiece.h"
#include "tokenizer.h"
#include "train.h"
#include "et_test.h"

#define MODEL "tests/fixtures/e2e/model"

/* ---------------------------------------------------------------- the failing allocator */
void *__real_malloc(size_t n);
void *__real_calloc(size_t c, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_posix_memalign(void **pp, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);

enum { TRACK_SLOTS = 1 << 18 };
#define TOMB ((void *)1)
static struct {
    pthread_mutex_t mu;
    int armed;       /* counting, failing and tracking */
    int persistent;  /* fail every allocation from fail_at on */
    long fail_at;    /* 1-based; 0 = never */
    long count;      /* allocations seen while armed */
    long failed;     /* allocations failed */
    long live;       /* tracked blocks not yet freed */
    void *slot[TRACK_SLOTS];
} g = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, {0}};

static size_t slot_of(void *p) {
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 46) & (TRACK_SLOTS - 1);
}
static void track_add(void *p) {
    for (size_t i = slot_of(p);; i = (i + 1) & (TRACK_SLOTS - 1))
        if (!g.slot[i] || g.slot[i] == TOMB) { g.slot[i] = p; g.live++; return; }
}
static void track_del(void *p) {
    for (size_t i = slot_of(p); g.slot[i]; i = (i + 1) & (TRACK_SLOTS - 1))
        if (g.slot[i] == p) { g.slot[i] = TOMB; g.live--; return; }
}
/* a breakpoint for gdb: the allocation that fails */
__attribute__((noinline)) void oom_hit(long k);
__attribute__((noinline)) void oom_hit(long k) { __asm__ volatile("" ::"r"(k)); }
/* called under the lock: 1 if this allocation must fail */
static int should_fail(void) {
    if (!g.armed) return 0;
    long k = ++g.count;
    int f = g.fail_at > 0 && (k == g.fail_at || (g.persistent && k > g.fail_at));
    g.failed += f;
    if (f) oom_hit(k);
    return f;
}

void *__wrap_malloc(size_t n) {
    pthread_mutex_lock(&g.mu);
    void *p = should_fail() ? NULL : __real_malloc(n);
    if (p && g.armed) track_add(p);
    pthread_mutex_unlock(&g.mu);
    return p;
}
void *__wrap_calloc(size_t c, size_t n) {
    pthread_mutex_lock(&g.mu);
    void *p = should_fail() ? NULL : __real_calloc(c, n);
    if (p && g.armed) track_add(p);
    pthread_mutex_unlock(&g.mu);
    return p;
}
void *__wrap_realloc(void *p, size_t n) {
    pthread_mutex_lock(&g.mu);
    void *q = NULL;
    if (!should_fail()) {
        q = __real_realloc(p, n);
        if (q && p) track_del(p);
        if (q && g.armed) track_add(q);
    }
    pthread_mutex_unlock(&g.mu);
    return q;
}
void __wrap_free(void *p) {
    if (!p) return;
    pthread_mutex_lock(&g.mu);
    track_del(p); /* a block allocated before arming (or inside libc) is simply not in the table */
    __real_free(p);
    pthread_mutex_unlock(&g.mu);
}
char *__wrap_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = __wrap_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}
int __wrap_posix_memalign(void **pp, size_t a, size_t n) {
    pthread_mutex_lock(&g.mu);
    int r = should_fail() ? ENOMEM : __real_posix_memalign(pp, a, n);
    if (!r && g.armed) track_add(*pp);
    pthread_mutex_unlock(&g.mu);
    return r;
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
    pthread_mutex_lock(&g.mu);
    void *p = should_fail() ? NULL : __real_aligned_alloc(a, n);
    if (p && g.armed) track_add(p);
    pthread_mutex_unlock(&g.mu);
    return p;
}

static void oom_begin(long fail_at, int persistent) {
    pthread_mutex_lock(&g.mu);
    memset(g.slot, 0, sizeof g.slot);
    g.count = g.failed = g.live = 0;
    g.fail_at = fail_at;
    g.persistent = persistent;
    g.armed = 1;
    pthread_mutex_unlock(&g.mu);
}
/* pause/resume: the scenario's own bookkeeping (serialising the result) is neither counted nor failed */
static void oom_pause(void) { pthread_mutex_lock(&g.mu); g.armed = 0; pthread_mutex_unlock(&g.mu); }
static void oom_resume(void) { pthread_mutex_lock(&g.mu); g.armed = 1; pthread_mutex_unlock(&g.mu); }
static void oom_end(void) { oom_pause(); }

/* ---------------------------------------------------------------- results, serialised for comparison */
typedef struct {
    unsigned char *p;
    size_t n, cap;
} sbuf;
static void sb_put(sbuf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) { fprintf(stderr, "test_oom: out of memory in the test itself\n"); exit(1); }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s ? s : "\1(null)", (s ? strlen(s) : 7) + 1); }
static void sb_i64(sbuf *b, int64_t v) { sb_put(b, &v, sizeof v); }

/* ---------------------------------------------------------------- scenarios */
static et_status sc_load(et_error *err, sbuf *out) {
    et_bert m;
    et_hf_info info;
    et_status st = et_hf_load_ex(MODEL, &m, &info, err);
    if (st) return st;
    et_tokenizer *tok = et_tokenizer_load_vocab(MODEL "/vocab.txt", err);
    if (!tok) { et_bert_free(&m); return err->code ? err->code : ET_ERR_NOMEM; }
    oom_pause();
    sb_put(out, m.params, m.n_params * sizeof(float));
    sb_i64(out, info.max_seq_length);
    sb_i64(out, et_tokenizer_vocab_size(tok));
    oom_resume();
    et_tokenizer_free(tok);
    et_bert_free(&m);
    return ET_OK;
}

/* SentencePiece: the byte-fallback test vocabulary from tokenizer.json (cJSON tree, charsmap-free pipeline)
 * and from its .model, the XLM-R test .model (charsmap, XLM-R ids), then ids of a few texts (normalizer
 * buffers, lattice, byte fallback) */
static et_status sc_spm(et_error *err, sbuf *out) {
    static const char *const files[3] = {"tests/fixtures/spm/bytefb/tokenizer.json", "tests/fixtures/spm/bytefb/spm.model",
                                         "tests/fixtures/spm/xlmr/sentencepiece.bpe.model"};
    static const char *const texts[3] = {"Bibliothèque partagée  ", "古代戦争のリアルタイム 😀", "x <s> y"};
    for (int f = 0; f < 3; f++) {
        char *buf = NULL;
        size_t len = 0;
        oom_pause();
        et_status st = et_read_file(files[f], (size_t)1 << 20, &buf, &len, err);
        oom_resume();
        if (st) return st;
        et_spm *s = f == 0 ? et_spm_from_tokenizer_json(buf, len, files[f], err)
                           : et_spm_from_model(buf, len, f == 1 ? ET_SPM_IDS_PLAIN : ET_SPM_IDS_FAIRSEQ, files[f], err);
        oom_pause();
        free(buf);
        oom_resume();
        if (!s) return err->code ? err->code : ET_ERR_NOMEM;
        for (int i = 0; i < 3; i++) {
            int32_t ids[256];
            int n = et_spm_encode(s, texts[i], strlen(texts[i]), ids, 256);
            if (n < 0) {
                et_spm_free(s);
                return et_fail(err, ET_ERR_NOMEM, "out of memory tokenizing text %d", i);
            }
            oom_pause();
            sb_put(out, ids, sizeof(int32_t) * (size_t)(n < 256 ? n : 256));
            oom_resume();
        }
        et_spm_free(s);
    }
    return ET_OK;
}

/* byte-level BPE: a small tokenizer.json (unk, fuse_unk, ignore_merges, a Sequence post-processor, added tokens)
 * and vocab.json + merges.txt, then ids of texts long enough to grow every scratch buffer */
static et_status sc_bpe(et_error *err, sbuf *out) {
    static const char tj[] =
        "{\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"ignore_merges\":true,"
        "\"vocab\":{\"<s>\":0,\"<pad>\":1,\"</s>\":2,\"<unk>\":3,\"a\":4,\"b\":5,\"\xc4\xa0\":6,\"ab\":7,\"\xc4\xa0" "a\":8,\"\xc4\xa0" "ab\":9,"
        "\"<mask>\":10},\"merges\":[\"a b\",[\"\xc4\xa0\",\"a\"],\"\xc4\xa0" "a b\",\"\xc4\xa0 ab\"]},"
        "\"added_tokens\":[{\"id\":0,\"content\":\"<s>\",\"special\":true},{\"id\":10,\"content\":\"<mask>\",\"lstrip\":true,\"special\":true}],"
        "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true},"
        "\"post_processor\":{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\"},"
        "{\"type\":\"RobertaProcessing\",\"cls\":[\"<s>\",0],\"sep\":[\"</s>\",2]}]}}";
    static const char vj[] = "{\"<s>\":0,\"<pad>\":1,\"</s>\":2,\"<unk>\":3,\"a\":4,\"b\":5,\"\xc4\xa0\":6,\"ab\":7,\"\xc4\xa0" "ab\":8,\"<mask>\":9}";
    static const char mt[] = "#version: 0.2\na b\n\xc4\xa0 ab\n";
    char longt[1200];
    for (int i = 0; i < 1199; i++) longt[i] = "ab abba <mask> x\xc3\xa9 "[i % 20];
    longt[1199] = 0;
    const char *texts[3] = {"ab <mask> aab xyz  ", longt, "\xff<s>b"};
    for (int f = 0; f < 2; f++) {
        et_bpe *b = f == 0 ? et_bpe_from_tokenizer_json(tj, sizeof tj - 1, "tiny.json", err)
                           : et_bpe_from_files(vj, sizeof vj - 1, mt, sizeof mt - 1, 1, "vocab.json", "merges.txt", err);
        if (!b) return err->code ? err->code : ET_ERR_NOMEM;
        for (int i = 0; i < 3; i++) {
            int32_t ids[1024];
            int n = et_bpe_encode(b, texts[i], strlen(texts[i]), ids, 1024);
            if (n < 0) {
                et_bpe_free(b);
                return et_fail(err, ET_ERR_NOMEM, "out of memory tokenizing text %d", i);
            }
            oom_pause();
            sb_put(out, ids, sizeof(int32_t) * (size_t)(n < 1024 ? n : 1024));
            oom_resume();
        }
        et_bpe_free(b);
    }
    return ET_OK;
}

static et_bert g_model;      /* loaded once, unarmed, for the encode and train scenarios */
static et_tokenizer *g_tok;

static const char *TEXTS[] = {"how do i reset my password", "the lazy dog sleeps", "", "a much longer text about "
                              "water boiling at one hundred degrees and ice melting at zero", "dog"};
enum { NTEXTS = sizeof TEXTS / sizeof TEXTS[0] };

static et_status sc_encode(et_error *err, sbuf *out, int with_cache) {
    int C = g_model.cfg.hidden_size;
    oom_pause();
    float *emb = malloc(sizeof(float) * NTEXTS * (size_t)C);
    oom_resume();
    et_encode_cache cache = {0};
    et_encode_opts o = {0};
    o.batch = 2;
    o.max_len = 24;
    o.cache = with_cache ? &cache : NULL;
    et_status st = et_encode_texts(&g_model, g_tok, NULL, TEXTS, NTEXTS, &o, emb, err);
    if (!st && with_cache) st = et_encode_texts(&g_model, g_tok, NULL, TEXTS + 1, 2, &o, emb, err); /* reuse */
    if (!st) {
        oom_pause();
        sb_put(out, emb, sizeof(float) * NTEXTS * (size_t)C);
        oom_resume();
    }
    et_encode_cache_free(&cache);
    oom_pause();
    free(emb);
    oom_resume();
    return st;
}
static et_status sc_encode_plain(et_error *err, sbuf *out) { return sc_encode(err, out, 0); }
static et_status sc_encode_cached(et_error *err, sbuf *out) { return sc_encode(err, out, 1); }

static char g_tmp[64];
static void rm_out(void) { /* the trainer's output folder of one run */
    char dir[160];
    snprintf(dir, sizeof dir, "%s/out", g_tmp);
    et_error err = {0};
    if (et_rm_tree(dir, &err)) fprintf(stderr, "warning: %s\n", err.msg);
}

static et_status sc_train(et_error *err, sbuf *out) {
    et_bert m;
    oom_pause();
    rm_out();
    et_status st = et_hf_load(MODEL, &m, err); /* fresh parameters each run, unarmed */
    oom_resume();
    if (st) { fprintf(stderr, "test_oom: cannot load %s: %s\n", MODEL, err->msg); exit(1); }
    char outdir[128];
    snprintf(outdir, sizeof outdir, "%s/out", g_tmp);
    et_train_data d;
    memset(&d, 0, sizeof d);
    st = et_train_data_read("tests/fixtures/train/tiny_pairs.jsonl", &d, err);
    if (!st) {
        et_train_cfg cfg;
        et_train_cfg_default(&cfg);
        cfg.loss = ET_TRAIN_INFONCE;
        cfg.batch = 4;
        cfg.epochs = 1;
        cfg.stop_after = 2;  /* two optimizer steps */
        cfg.save_every = 1;  /* a checkpoint after each */
        cfg.threads = 1;
        cfg.max_len_q = 16;
        cfg.max_len_d = 16;
        cfg.lr = 1e-3;
        cfg.out_dir = outdir;
        cfg.vocab_path = MODEL "/vocab.txt";
        et_trainer tr;
        memset(&tr, 0, sizeof tr);
        st = et_trainer_init(&tr, &cfg, &m, NULL, &d, err);
        if (!st) st = et_trainer_run(&tr, g_tok, err);
        if (!st) {
            oom_pause();
            sb_put(out, m.params, m.n_params * sizeof(float));
            sb_i64(out, et_trainer_step(&tr));
            oom_resume();
        }
        et_trainer_free(&tr);
    }
    et_train_data_free(&d);
    oom_pause();
    et_bert_free(&m);
    oom_resume();
    return st;
}

static void ser_pairs(sbuf *b, const et_pairs *p) {
    sb_i64(b, p->n);
    sb_i64(b, p->K);
    sb_i64(b, p->has_label);
    for (int64_t i = 0; i < p->n; i++) {
        sb_str(b, p->query[i]);
        sb_str(b, p->passage[i]);
        sb_str(b, p->id[i]);
        sb_put(b, &p->label[i], sizeof(float));
        for (int64_t j = p->neg_off[i]; j < p->neg_off[i + 1]; j++) {
            sb_str(b, p->neg[j]);
            sb_str(b, p->neg_query ? p->neg_query[j] : NULL);
        }
        sb_i64(b, -1);
    }
    if (p->K) sb_put(b, p->scores, sizeof(float) * (size_t)p->n * (size_t)p->K);
    for (int k = 0; k < p->K && p->expert_names; k++) sb_str(b, p->expert_names[k]);
}
static et_status rd_pairs(const char *path, et_error *err, sbuf *out) {
    et_pairs p;
    memset(&p, 0, sizeof p);
    et_read_opts o = {0};
    et_status st = et_pairs_read(path, &o, &p, NULL, err);
    if (!st) {
        oom_pause();
        ser_pairs(out, &p);
        oom_resume();
    }
    et_pairs_free(&p);
    return st;
}
static et_status sc_pairs_jsonl(et_error *err, sbuf *out) { return rd_pairs("tests/fixtures/data/pairs.jsonl", err, out); }
static et_status sc_pairs_named(et_error *err, sbuf *out) {
    return rd_pairs("tests/fixtures/data/pairwise_named.jsonl", err, out);
}
static et_status sc_pairs_csv(et_error *err, sbuf *out) { return rd_pairs("tests/fixtures/data/pairs.csv", err, out); }
static et_status sc_pairs_tsv(et_error *err, sbuf *out) { return rd_pairs("tests/fixtures/data/pairs.tsv", err, out); }

static et_status sc_beir(et_error *err, sbuf *out) {
    et_beir b;
    memset(&b, 0, sizeof b);
    et_read_opts o = {0};
    et_status st = et_beir_read("tests/fixtures/data/beir", &o, &b, NULL, err);
    if (!st) {
        oom_pause();
        sb_i64(out, b.ndocs);
        for (int i = 0; i < b.ndocs; i++) { sb_str(out, b.doc_id[i]); sb_str(out, b.doc_text[i]); sb_i64(out, b.doc_title_len[i]); }
        for (int i = 0; i < b.nqueries; i++) { sb_str(out, b.query_id[i]); sb_str(out, b.query_text[i]); }
        sb_put(out, b.qrels, sizeof(et_qrel) * (size_t)b.nqrels);
        sb_put(out, b.qrel_off, sizeof(int64_t) * (size_t)(b.nqueries + 1));
        sb_i64(out, et_beir_doc_index(&b, b.ndocs ? b.doc_id[b.ndocs - 1] : "x"));
        oom_resume();
    }
    et_beir_free(&b);
    return st;
}

static et_status sc_train_data(et_error *err, sbuf *out) {
    et_train_data d;
    memset(&d, 0, sizeof d);
    et_status st = et_train_data_read("tests/fixtures/train/tiny_pairs.jsonl", &d, err);
    if (!st) {
        oom_pause();
        sb_i64(out, d.n);
        for (int i = 0; i < d.n; i++) {
            sb_str(out, d.ex[i].query);
            sb_str(out, d.ex[i].positive);
            for (int j = 0; j < d.ex[i].n_neg; j++) sb_str(out, d.ex[i].negatives[j]);
        }
        oom_resume();
    }
    et_train_data_free(&d);
    return st;
}

static et_status sc_corpus(et_error *err, sbuf *out) {
    et_corpus c;
    memset(&c, 0, sizeof c);
    et_read_opts o = {0};
    et_status st = et_corpus_read("tests/fixtures/data/beir/corpus.jsonl", &o, &c, NULL, err);
    if (!st) {
        oom_pause();
        sb_i64(out, c.n);
        for (int64_t i = 0; i < c.n; i++) { sb_str(out, c.id[i]); sb_str(out, c.text[i]); }
        oom_resume();
    }
    et_corpus_free(&c);
    return st;
}

static et_status sc_sts(et_error *err, sbuf *out) {
    et_sts t;
    memset(&t, 0, sizeof t);
    et_read_opts o = {0};
    et_status st = et_sts_read("tests/fixtures/eval/sts.jsonl", &o, &t, NULL, err);
    if (!st) {
        oom_pause();
        sb_i64(out, t.n);
        for (int64_t i = 0; i < t.n; i++) {
            sb_str(out, t.s1[i]);
            sb_str(out, t.s2[i]);
            sb_str(out, t.id[i]);
            sb_put(out, &t.score[i], sizeof(double));
        }
        oom_resume();
    }
    et_sts_free(&t);
    return st;
}

static et_status sc_vocab(et_error *err, sbuf *out) {
    et_tokenizer *t = et_tokenizer_load_vocab(MODEL "/vocab.txt", err);
    if (!t) return err->code ? err->code : ET_ERR_NOMEM;
    int32_t ids[32];
    int n = et_tokenize(t, "Hello, unaffable world!", 23, ids, 32);
    oom_pause();
    sb_i64(out, et_tokenizer_vocab_size(t));
    sb_put(out, ids, sizeof(int32_t) * (size_t)(n > 0 ? n : 0));
    oom_resume();
    et_tokenizer_free(t);
    return ET_OK;
}

static et_status sc_safetensors(et_error *err, sbuf *out) {
    et_st_file f;
    et_status st = et_st_open(&f, MODEL "/model.safetensors", 0, err);
    if (st) return st;
    const et_st_tensor *t = et_st_find(&f, "embeddings.word_embeddings.weight");
    if (!t) t = et_st_find(&f, "bert.embeddings.word_embeddings.weight");
    if (!t) { fprintf(stderr, "test_oom: no word embeddings in the fixture\n"); exit(1); }
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    oom_pause();
    float *v = malloc(n * sizeof(float));
    oom_resume();
    st = et_st_read_f32(&f, t, v, err);
    if (!st) { oom_pause(); sb_put(out, v, n * sizeof(float)); oom_resume(); }
    oom_pause();
    free(v);
    oom_resume();
    et_st_close(&f);
    return st;
}

static et_status sc_bm25(et_error *err, sbuf *out) {
    et_bm25 *bm = et_bm25_build(TEXTS, NTEXTS, NULL, err);
    if (!bm) return err->code ? err->code : ET_ERR_NOMEM;
    int32_t idx[3], pd[2] = {1, 3};
    double sc[3], all[NTEXTS], pairs[2], text;
    const char *pq[2] = {"lazy dog", "water zero"};
    et_status st = et_bm25_search(bm, "dog water", 3, idx, sc, err);
    if (!st) st = et_bm25_score_all(bm, "dog password", all, err);
    if (!st) st = et_bm25_score_pairs(bm, pq, pd, 2, pairs, err);
    if (!st) {
        text = et_bm25_score_text(bm, "dog water", "the dog drinks water");
        if (text != text) st = et_fail(err, ET_ERR_NOMEM, "out of memory in et_bm25_score_text (it returned NaN)");
    }
    if (!st) {
        oom_pause();
        sb_put(out, idx, sizeof idx); sb_put(out, sc, sizeof sc); sb_put(out, all, sizeof all);
        sb_put(out, pairs, sizeof pairs); sb_put(out, &text, sizeof text);
        oom_resume();
    }
    et_bm25_free(bm);
    return st;
}

typedef struct {
    const char *name;
    et_status (*fn)(et_error *, sbuf *);
    int persistent_too;
} scenario;
static const scenario SC[] = {
    {"load", sc_load, 1},           {"pairs_jsonl", sc_pairs_jsonl, 1}, {"pairs_named", sc_pairs_named, 1},
    {"pairs_csv", sc_pairs_csv, 1}, {"pairs_tsv", sc_pairs_tsv, 1},     {"beir", sc_beir, 1},
    {"corpus", sc_corpus, 1},       {"sts", sc_sts, 1},                 {"train_data", sc_train_data, 1},
    {"vocab", sc_vocab, 1},         {"spm", sc_spm, 1},         {"bpe", sc_bpe, 1},         {"encode", sc_encode_plain, 0},     {"encode_cached", sc_encode_cached, 0},
    {"train", sc_train, 0},
    {"safetensors", sc_safetensors, 1}, {"bm25", sc_bm25, 1},
};

static int verbose;
static long only_n;

static void run_mode(const scenario *s, const sbuf *ref, long A, int persistent) {
    char seen[16][ET_ERRMSG_MAX];
    int nseen = 0;
    long ok_runs = 0, nomem_runs = 0, other_runs = 0;
    for (long N = only_n ? only_n : 1; N <= (only_n ? only_n : A); N++) {
        et_error err = {0};
        sbuf got = {0};
        if (verbose > 1) fprintf(stderr, "%s N=%ld\n", s->name, N);
        oom_begin(N, persistent);
        et_status st = s->fn(&err, &got);
        oom_end();
        long failed = g.failed, live = g.live;
        CHECK(failed > 0, "%s: run %ld of %ld allocations failed none (allocation order not deterministic?)", s->name,
              N, A);
        CHECK(live == 0, "%s%s: with allocation %ld failing, %ld block(s) leaked (status %s: %s)", s->name,
              persistent ? " (persistent)" : "", N, live, et_status_name(st), err.msg);
        if (st == ET_OK) {
            ok_runs++;
            CHECK(got.n == ref->n && !memcmp(got.p, ref->p, ref->n),
                  "%s%s: allocation %ld failed, the call succeeded but its result differs from the reference "
                  "(a silent fallback)", s->name, persistent ? " (persistent)" : "", N);
        } else {
            if (st == ET_ERR_NOMEM) nomem_runs++;
            else other_runs++;
            CHECK(st == ET_ERR_NOMEM && err.code == ET_ERR_NOMEM && err.msg[0],
                  "%s%s: allocation %ld failed, got %s (%d): '%s' (want out of memory, naming what)", s->name,
                  persistent ? " (persistent)" : "", N, et_status_name(st), (int)st, err.msg);
            /* the message says what could not be allocated: "out of memory" followed by what ("allocating N
             * bytes for X", "for the tensor list", "parsing the JSON", ...), or "cannot allocate <what>" */
            const char *oom = strstr(err.msg, "out of memory"), *cannot = strstr(err.msg, "cannot allocate ");
            CHECK((oom && oom[13] == ' ' && oom[14]) || (cannot && cannot[16]),
                  "%s%s: allocation %ld failed: the message does not say what: '%s'",
                  s->name, persistent ? " (persistent)" : "", N, err.msg);
            int dup = 0;
            for (int i = 0; i < nseen && !dup; i++) dup = !strcmp(seen[i], err.msg);
            if (!dup && nseen < 16) {
                snprintf(seen[nseen++], ET_ERRMSG_MAX, "%s", err.msg);
                if (verbose) fprintf(stderr, "  %s: N=%ld: %s\n", s->name, N, err.msg);
            }
        }
        free(got.p);
    }
    printf("%-14s %-10s %5ld allocations: %5ld runs failed with ET_ERR_NOMEM, %4ld with another code, %4ld "
           "recovered\n", s->name, persistent ? "persistent" : "one-shot", A, nomem_runs, other_runs, ok_runs);
}

static void run_scenario(const scenario *s) {
    et_error err = {0};
    sbuf ref = {0};
    oom_begin(0, 0);
    et_status st = s->fn(&err, &ref);
    oom_end();
    long A = g.count, live = g.live;
    CHECK(st == ET_OK, "%s: the reference run failed: %s", s->name, err.msg);
    CHECK(live == 0, "%s: the reference run leaked %ld block(s)", s->name, live);
    CHECK(st != ET_OK || A > 0, "%s: no allocation seen (is the test linked with --wrap?)", s->name);
    if (st != ET_OK || A == 0) { free(ref.p); return; }
    run_mode(s, &ref, A, 0);
    if (s->persistent_too) run_mode(s, &ref, A, 1);
    free(ref.p);
}

int main(void) {
    const char *v = getenv("ET_OOM_VERBOSE"), *only = getenv("ET_OOM_ONLY");
    verbose = v ? atoi(v) : 0;
    only_n = getenv("ET_OOM_N") ? atol(getenv("ET_OOM_N")) : 0;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/et_oom_XXXXXX");
    if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 1; }
    et_error err = {0};
    if (et_hf_load(MODEL, &g_model, &err)) { fprintf(stderr, "load %s: %s\n", MODEL, err.msg); return 1; }
    g_tok = et_tokenizer_load_vocab(MODEL "/vocab.txt", &err);
    if (!g_tok) { fprintf(stderr, "vocab: %s\n", err.msg); return 1; }
    for (size_t i = 0; i < sizeof SC / sizeof SC[0]; i++)
        if (!only || !strcmp(only, SC[i].name)) run_scenario(&SC[i]);
    et_tokenizer_free(g_tok);
    et_bert_free(&g_model);
    rm_out();
    rmdir(g_tmp);
    return et_test_report("test_oom");
}
