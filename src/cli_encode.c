/* cli_encode.c - `embedtune encode` and `embedtune search`. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cJSON.h"
#include "cli.h"
#include "encode.h"
#include "fileio.h"
#include "bm25.h"
#include "data.h"
#include "kernels.h"
#include "metrics.h"
#include "topk.h"

/* ------------------------------------------------------------------ encode */
static et_opt encode_opts[] = {
    {"--model", NULL, "DIR", "Hugging Face model folder (config.json, vocab.txt, model.safetensors)", NULL},
    {"--in", NULL, "FILE", "input texts: one per line, or JSONL with a \"text\" field (default: stdin)", NULL},
    {"--out", NULL, "FILE", "output: X.npy (float32 [n, dim]) or X.jsonl (default: JSONL on stdout)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text incl. [CLS]/[SEP] (default: the model's max_seq_length or 256)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--mem-budget", NULL, "MB", "refuse a --batch x --max-len whose activations exceed this (default: 75% of RAM)", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

/* --mem-budget MB -> bytes (default 75% of physical RAM); 0 with *ok = 0 on a bad value */
static size_t mem_budget_opt(et_opt *o, int n, int *ok) {
    uint64_t mb = (uint64_t)et_cli_int(o, n, "--mem-budget", et_cli_default_mem_budget_mb(), 1, 1L << 30, ok);
    return mb << 20 > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)(mb << 20);
}

static et_status write_npy(const char *path, const float *x, size_t n, int d, et_error *err) {
    char hdr[128];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %d), }", n, d);
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    et_atomic_file af;
    et_status s = et_atomic_open(&af, path, err);
    if (s) return s;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    uint16_t hlen = (uint16_t)(hl + pad + 1);
    pre[8] = hlen & 0xff;
    pre[9] = hlen >> 8;
    char sp[64];
    memset(sp, ' ', sizeof sp);
    if ((s = et_atomic_write(&af, pre, 10, err)) || (s = et_atomic_write(&af, hdr, (size_t)hl, err)) ||
        (s = et_atomic_write(&af, sp, (size_t)pad, err)) || (s = et_atomic_write(&af, "\n", 1, err)) ||
        (s = et_atomic_write(&af, x, n * (size_t)d * sizeof(float), err))) {
        et_atomic_abort(&af);
        return s;
    }
    return et_atomic_commit(&af, err);
}

static int write_jsonl(FILE *f, const float *x, size_t n, int d) {
    for (size_t i = 0; i < n; i++) {
        fputs("{\"index\":", f);
        fprintf(f, "%zu,\"embedding\":[", i);
        for (int j = 0; j < d; j++) fprintf(f, j ? ",%.8g" : "%.8g", x[i * d + j]);
        fputs("]}\n", f);
    }
    return ferror(f) ? -1 : 0;
}

static int run_encode(et_opt *o, int n) {
    int ok = 1;
    if (!et_cli_need(o, n, "encode", "--model")) return 2;
    int batch = (int)et_cli_int(o, n, "--batch", 32, 1, 4096, &ok);
    int threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    long max_len = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    size_t budget = mem_budget_opt(o, n, &ok);
    if (!ok) return 2;
    const char *outp = et_cli_get(o, n, "--out");
    if (outp) {
        size_t l = strlen(outp);
        if (!(l > 4 && !strcmp(outp + l - 4, ".npy")) && !(l > 6 && !strcmp(outp + l - 6, ".jsonl"))) {
            fprintf(stderr, "embedtune encode: --out %s: the name must end in .npy or .jsonl\n", outp);
            return 2;
        }
    }
    et_error err = {0};
    et_cli_model L;
    if (et_cli_load(et_cli_get(o, n, "--model"), threads, &L, &err)) { et_cli_free(&L); return et_cli_fail("encode", &err); }
    et_strvec texts = {0};
    if (et_cli_read_texts(et_cli_get(o, n, "--in"), &texts, &err)) { et_sv_free(&texts); et_cli_free(&L); return et_cli_fail("encode", &err); }
    int d = L.model.cfg.hidden_size;
    float *emb = malloc((texts.n ? texts.n : 1) * (size_t)d * sizeof(float));
    if (!emb) { fprintf(stderr, "embedtune encode: out of memory for %zu embeddings\n", texts.n); return 1; }
    et_progress ps = {et_now_s(), "encode", 0};
    et_encode_opts eo = {batch, max_len ? (int)max_len : et_cli_default_max_len(&L), et_cli_get(o, n, "--quiet") ? NULL : et_cli_progress, &ps, budget};
    int rc = 0;
    if (et_encode_texts(&L.model, L.tok, L.pool, (const char *const *)texts.v, texts.n, &eo, emb, &err)) rc = et_cli_fail("encode", &err);
    else if (outp && strstr(outp, ".npy") == outp + strlen(outp) - 4) {
        if (write_npy(outp, emb, texts.n, d, &err)) rc = et_cli_fail("encode", &err);
    } else if (outp) {
        et_atomic_file af;
        char *buf = NULL;
        size_t blen = 0;
        FILE *mf = open_memstream(&buf, &blen);
        if (!mf || write_jsonl(mf, emb, texts.n, d)) { fprintf(stderr, "embedtune encode: out of memory\n"); rc = 1; }
        if (mf) fclose(mf);
        if (!rc && (et_atomic_open(&af, outp, &err) || et_atomic_write(&af, buf, blen, &err) || et_atomic_commit(&af, &err))) rc = et_cli_fail("encode", &err);
        free(buf);
    } else if (write_jsonl(stdout, emb, texts.n, d)) {
        fprintf(stderr, "embedtune encode: error writing to stdout\n");
        rc = 1;
    }
    free(emb);
    et_sv_free(&texts);
    et_cli_free(&L);
    return rc;
}

et_command et_cmd_encode = {"encode", "Encode texts into sentence embeddings, written in input order.",
     "encode --model DIR [--in FILE] [--out X.npy|X.jsonl] [--batch N] [--max-len L] [--threads T]",
     run_encode, encode_opts, ET_NOPTS(encode_opts)};

/* ------------------------------------------------------------------ search */
static et_opt search_opts[] = {
    {"--model", NULL, "DIR", "Hugging Face model folder", NULL},
    {"--corpus", NULL, "FILE", "BEIR corpus.jsonl: one {\"_id\", \"title\", \"text\"} per line", NULL},
    {"--query", NULL, "TEXT", "the query (repeat the et_command, or use --queries, for more)", NULL},
    {"--queries", NULL, "FILE", "queries: one per line or JSONL with \"text\" (instead of --query)", NULL},
    {"-k", "--top-k", "N", "results per query (default 10)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text (default: the model's max_seq_length or 256)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--mem-budget", NULL, "MB", "refuse a --batch x --max-len whose activations exceed this (default: 75% of RAM)", NULL},
    {"--hybrid", NULL, "M", "fuse with BM25: rrf (reciprocal rank fusion, k = 60) or weighted (min-max normalised scores)", NULL},
    {"--alpha", NULL, "A", "weighted hybrid: weight of the model, BM25 gets 1 - A (default 0.5)", NULL},
    {"--json", NULL, NULL, "print results as JSONL instead of a table", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

/* hybrid ranking, one query per task (the pool runs queries in parallel): the model's cosines and BM25 over the
 * whole corpus, fused (RRF over the two full rankings, or min-max weighted), then the top k by the bounded heap of
 * topk.h. Scores are ranked as floats, ties by corpus order. */
typedef struct {
    const float *qe, *de;
    int d;
    int32_t nd, k;
    const et_bm25 *bm;
    const char *const *qs;
    int rrf;
    double alpha;
    double *dbuf;            /* [nthreads, 4 * nd]: cosine, BM25, fused, heap scores */
    int32_t *ibuf;           /* [nthreads, 2 * nd]: the two rankings (RRF) */
    int32_t *out_idx;        /* [nq, k] */
    float *out_score;        /* [nq, k] */
    et_status *st;           /* [nq] */
} hybrid_ctx;

/* the first k of scores[nd] ranked as floats (best first, ties by index) into idx[k] (and score[k]) */
static void rank_f32(const double *scores, int32_t nd, int32_t k, double *hs, int32_t *idx, float *score) {
    et_topk h;
    et_topk_init(&h, hs, idx, k);
    for (int32_t i = 0; i < nd; i++) et_topk_push(&h, (float)scores[i], i);
    et_topk_take(&h, k, idx, score, NULL);
}

static void hybrid_task(void *vctx, int q, int thread) {
    hybrid_ctx *c = vctx;
    int32_t nd = c->nd;
    double *ds = c->dbuf + (int64_t)thread * 4 * nd, *bs = ds + nd, *fs = bs + nd, *hs = fs + nd;
    for (int32_t i = 0; i < nd; i++) ds[i] = et_dot(c->qe + (int64_t)q * c->d, c->de + (int64_t)i * c->d, c->d);
    if ((c->st[q] = et_bm25_score_all(c->bm, c->qs[q], bs, NULL))) return;
    if (c->rrf) {
        int32_t *rk[2] = {c->ibuf + (int64_t)thread * 2 * nd, c->ibuf + (int64_t)thread * 2 * nd + nd};
        rank_f32(ds, nd, nd, hs, rk[0], NULL);
        rank_f32(bs, nd, nd, hs, rk[1], NULL);
        c->st[q] = et_fuse_rrf((const int32_t *const *)rk, 2, nd, nd, 60.0, fs, NULL);
    } else {
        const double *sys[2] = {ds, bs};
        double w[2] = {c->alpha, 1.0 - c->alpha};
        c->st[q] = et_fuse_minmax(sys, w, 2, nd, fs, NULL);
    }
    if (!c->st[q]) rank_f32(fs, nd, c->k, hs, c->out_idx + (int64_t)q * c->k, c->out_score + (int64_t)q * c->k);
}

static void print_snippet(const char *s, int width) {
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && w < width; p++) {
        if ((*p & 0xC0) != 0x80) w++;
        putchar(*p == '\t' || *p == '\n' ? ' ' : *p);
    }
    if ((int)strlen(s) > width) fputs("...", stdout);
}

static int run_search(et_opt *o, int n) {
    int ok = 1;
    if (!et_cli_need(o, n, "search", "--model") || !et_cli_need(o, n, "search", "--corpus")) return 2;
    if (!et_cli_get(o, n, "--query") == !et_cli_get(o, n, "--queries")) {
        fprintf(stderr, "embedtune search: give exactly one of --query TEXT or --queries FILE\n");
        return 2;
    }
    int k = (int)et_cli_int(o, n, "-k", 10, 1, 1000000, &ok);
    int batch = (int)et_cli_int(o, n, "--batch", 32, 1, 4096, &ok);
    int threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    long max_len = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    size_t budget = mem_budget_opt(o, n, &ok);
    double alpha = et_cli_float(o, n, "--alpha", 0.5, 0.0, 1.0, &ok);
    const char *hyb = et_cli_get(o, n, "--hybrid");
    if (hyb && strcmp(hyb, "rrf") && strcmp(hyb, "weighted")) {
        fprintf(stderr, "embedtune search: --hybrid must be rrf or weighted (got '%s')\n", hyb);
        return 2;
    }
    if (!ok) return 2;
    et_error err = {0};
    et_bm25 *bm = NULL;
    double *dbuf = NULL;
    int32_t *ibuf = NULL, *top = NULL;
    et_status *qst = NULL;
    et_cli_model L;
    if (et_cli_load(et_cli_get(o, n, "--model"), threads, &L, &err)) { et_cli_free(&L); return et_cli_fail("search", &err); }
    et_corpus C = {0};
    et_strvec qs = {0};
    int rc = 0;
    float *de = NULL, *qe = NULL, *tops = NULL;
    if (et_corpus_read(et_cli_get(o, n, "--corpus"), NULL, &C, NULL, &err)) { rc = et_cli_fail("search", &err); goto done; }
    if (et_cli_get(o, n, "--query")) {
        char *q = strdup(et_cli_get(o, n, "--query"));
        if (!q || et_sv_push(&qs, q)) { free(q); rc = 1; goto done; }
    } else if (et_cli_read_texts(et_cli_get(o, n, "--queries"), &qs, &err)) { rc = et_cli_fail("search", &err); goto done; }
    int d = L.model.cfg.hidden_size;
    if (k > C.n) k = C.n;
    size_t nq = qs.n;
    de = malloc((size_t)C.n * (size_t)d * sizeof(float));
    qe = malloc((nq ? nq : 1) * (size_t)d * sizeof(float));
    top = malloc((nq ? nq : 1) * (size_t)k * sizeof(int32_t));
    tops = malloc((nq ? nq : 1) * (size_t)k * sizeof(float));
    if (!de || !qe || !top || !tops) { fprintf(stderr, "embedtune search: out of memory\n"); rc = 1; goto done; }
    et_progress ps = {et_now_s(), "encode corpus", 0};
    et_encode_opts eo = {batch, max_len ? (int)max_len : et_cli_default_max_len(&L), et_cli_get(o, n, "--quiet") ? NULL : et_cli_progress, &ps, budget};
    if (et_encode_texts(&L.model, L.tok, L.pool, C.text, (size_t)C.n, &eo, de, &err)) { rc = et_cli_fail("search", &err); goto done; }
    eo.progress = NULL;
    if (et_encode_texts(&L.model, L.tok, L.pool, (const char *const *)qs.v, nq, &eo, qe, &err)) { rc = et_cli_fail("search", &err); goto done; }
    et_l2norm_rows(de, C.n, d); /* cosine similarity */
    et_l2norm_rows(qe, (int64_t)nq, d);
    if (!hyb) { /* the exact top k of every query, threaded (metrics.h) */
        if (nq && et_topk_search(L.pool, qe, de, (int64_t)nq, C.n, d, k, top, tops, &err)) { rc = et_cli_fail("search", &err); goto done; }
    } else { /* BM25 over the same documents (title + text), fused per query */
        if (!(bm = et_bm25_build(C.text, C.n, NULL, &err))) { rc = et_cli_fail("search", &err); goto done; }
        int nth = et_pool_size(L.pool);
        dbuf = malloc((size_t)nth * 4 * (size_t)C.n * sizeof(double));
        ibuf = malloc((size_t)nth * 2 * (size_t)C.n * sizeof(int32_t));
        qst = calloc(nq ? nq : 1, sizeof(et_status));
        if (!dbuf || !ibuf || !qst) { fprintf(stderr, "embedtune search: out of memory\n"); rc = 1; goto done; }
        hybrid_ctx hc = {qe, de, d, C.n, k, bm, (const char *const *)qs.v, !strcmp(hyb, "rrf"), alpha, dbuf, ibuf, top, tops, qst};
        if (nq) et_pool_run(L.pool, hybrid_task, &hc, (int)nq);
        for (size_t q = 0; q < nq; q++)
            if (qst[q]) { et_fail(&err, qst[q], "query %zu: out of memory (BM25 scoring or fusion)", q + 1); rc = et_cli_fail("search", &err); goto done; }
    }
    for (size_t q = 0; q < nq; q++) {
        const int32_t *ti = top + q * (size_t)k;
        const float *ts = tops + q * (size_t)k;
        if (et_cli_get(o, n, "--json")) {
            cJSON *r = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(r, "results");
            cJSON_AddStringToObject(r, "query", qs.v[q]);
            for (int j = 0; j < k; j++) {
                cJSON *h = cJSON_CreateObject();
                cJSON_AddNumberToObject(h, "rank", j + 1);
                cJSON_AddStringToObject(h, "id", C.id[ti[j]]);
                cJSON_AddNumberToObject(h, "score", ts[j]);
                cJSON_AddItemToArray(arr, h);
            }
            char *s = cJSON_PrintUnformatted(r);
            puts(s);
            free(s);
            cJSON_Delete(r);
        } else {
            printf("query: %s\n%4s  %7s  %-24s %s\n", qs.v[q], "rank", "score", "id", "text");
            for (int j = 0; j < k; j++) {
                printf("%4d  %7.4f  %-24s ", j + 1, ts[j], C.id[ti[j]]);
                print_snippet(C.text[ti[j]], 70);
                putchar('\n');
            }
            if (q + 1 < nq) putchar('\n');
        }
    }
done:
    et_bm25_free(bm);
    free(dbuf); free(ibuf); free(qst); free(top); free(tops);
    free(de); free(qe);
    et_corpus_free(&C);
    et_sv_free(&qs);
    et_cli_free(&L);
    return rc;
}

et_command et_cmd_search = {"search", "Encode a BEIR corpus.jsonl and rank its documents by cosine similarity to a query.",
     "search --model DIR --corpus corpus.jsonl --query \"...\" [-k 10] [--hybrid rrf|weighted [--alpha A]]",
     run_search, search_opts, ET_NOPTS(search_opts)};
