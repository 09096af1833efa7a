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
#include "fusion.h"
#include "hybrid.h"
#include "index.h"
#include "data.h"
#include "kernels.h"
#include "metrics.h"
#include "topk.h"

/* ------------------------------------------------------------------ encode */
static et_opt encode_opts[] = {
    {"--model", NULL, "DIR", "Hugging Face model folder (config.json, vocab.txt, model.safetensors)", NULL},
    {"--adapter", NULL, "DIR", "a PEFT LoRA adapter folder merged into --model (an adapter folder can also be given as --model: its base is adapter_config.json's base_model_name_or_path)", NULL},
    {"--in", NULL, "FILE", "input texts: one per line, or JSONL with a \"text\" field (default: stdin)", NULL},
    {"--out", NULL, "FILE", "output: X.npy (float32 [n, dim]) or X.jsonl (default: JSONL on stdout)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text incl. [CLS]/[SEP] (default: the model's max_seq_length or 256)", NULL},
    {"--dim", NULL, "D", "cut each embedding (written as [n, D]) to its first D values and re-normalise (Matryoshka models: train/finetune --matryoshka; default: all)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--int8", NULL, NULL, "int8 inference: Linear layers with per-channel int8 weights and per-row int8 activations (VNNI where the CPU has it); an int8 export (embedtune quantize) runs in int8 without it", NULL},
    {"--mem-budget", NULL, "MB", "refuse a --batch x --max-len whose activations exceed this (default: 75% of RAM)", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

/* --mem-budget MB -> bytes (default 75% of physical RAM); 0 with *ok = 0 on a bad value */
static size_t mem_budget_opt(et_opt *o, int n, int *ok) {
    uint64_t mb = (uint64_t)et_cli_int(o, n, "--mem-budget", et_cli_default_mem_budget_mb(), 1, 1L << 30, ok);
    return mb << 20 > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)(mb << 20);
}

/* The encoding options that encode, search and index share (--batch, --threads, --max-len, --mem-budget, --quiet),
 * read here once; 0 (a message printed) on a bad value. */
typedef struct { int batch, threads; long max_len; size_t budget; int quiet; et_encode_progress ps; } enc_args;

static int enc_args_read(et_opt *o, int n, enc_args *a) {
    int ok = 1;
    a->batch = (int)et_cli_int(o, n, "--batch", 32, 1, 4096, &ok);
    a->threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    a->max_len = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    a->budget = mem_budget_opt(o, n, &ok);
    a->quiet = et_cli_get(o, n, "--quiet") != NULL;
    return ok;
}

/* the encoding options for model L (--max-len, else the model's default), with the progress line `what` unless --quiet */
static et_encode_opts enc_args_opts(enc_args *a, const et_hf_model *L, const char *what) {
    a->ps = (et_encode_progress){et_now_s(), what, 0};
    return (et_encode_opts){a->batch, a->max_len ? (int)a->max_len : et_hf_model_max_len(L), a->quiet ? NULL : et_encode_progress_print,
                            &a->ps, a->budget};
}

/* --model DIR loaded for the command (--adapter merged in and --int8 set where the command has those options) */
static et_status model_open(et_opt *o, int n, const char *mdir, int threads, et_hf_model *L, et_error *err) {
    et_status s = et_cli_load_adapted(mdir, et_cli_get(o, n, "--adapter"), threads, L, err);
    if (!s && et_cli_get(o, n, "--int8")) L->model.int8 = 1;
    return s;
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
    enc_args ea;
    ok = enc_args_read(o, n, &ea);
    int dim = (int)et_cli_int(o, n, "--dim", 0, 1, 1 << 20, &ok);
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
    et_hf_model L;
    if (model_open(o, n, et_cli_get(o, n, "--model"), ea.threads, &L, &err)) { et_hf_model_free(&L); return et_cli_fail("encode", &err); }
    et_strvec texts = {0};
    if (et_cli_read_texts(et_cli_get(o, n, "--in"), &texts, &err)) { et_sv_free(&texts); et_hf_model_free(&L); return et_cli_fail("encode", &err); }
    int d = L.model.cfg.hidden_size;
    float *emb = malloc((texts.n ? texts.n : 1) * (size_t)d * sizeof(float));
    if (!emb) { fprintf(stderr, "embedtune encode: out of memory for %zu embeddings\n", texts.n); return 1; }
    et_encode_opts eo = enc_args_opts(&ea, &L, "encode");
    eo.dim = dim;
    int rc = 0;
    if (et_encode_texts(&L.model, L.tok, L.pool, (const char *const *)texts.v, texts.n, &eo, emb, &err)) {
        rc = et_cli_fail("encode", &err);
        goto out;
    }
    if (dim && dim < d) { /* the cut rows, [n, dim] */
        for (size_t i = 0; i < texts.n; i++) memmove(emb + i * (size_t)dim, emb + i * (size_t)d, sizeof(float) * (size_t)dim);
        d = dim;
    }
    if (outp && strstr(outp, ".npy") == outp + strlen(outp) - 4) {
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
out:
    free(emb);
    et_sv_free(&texts);
    et_hf_model_free(&L);
    return rc;
}

et_command et_cmd_encode = {"encode", "Encode texts into sentence embeddings, written in input order.",
     "encode --model DIR [--in FILE] [--out X.npy|X.jsonl] [--dim D] [--batch N] [--max-len L] [--threads T]",
     run_encode, encode_opts, ET_NOPTS(encode_opts)};

/* ------------------------------------------------------------------ search */
static et_opt search_opts[] = {
    {"--model", NULL, "DIR", "Hugging Face model folder", NULL},
    {"--adapter", NULL, "DIR", "a PEFT LoRA adapter folder merged into --model (an adapter folder can also be given as --model: its base is adapter_config.json's base_model_name_or_path)", NULL},
    {"--corpus", NULL, "FILE", "BEIR corpus.jsonl: one {\"_id\", \"title\", \"text\"} per line", NULL},
    {"--index", NULL, "FILE", "an index written by 'embedtune index' (instead of --corpus: nothing is re-encoded)", NULL},
    {"--query", NULL, "TEXT", "the query (repeat the et_command, or use --queries, for more)", NULL},
    {"--queries", NULL, "FILE", "queries: one per line or JSONL with \"text\" (instead of --query)", NULL},
    {"-k", "--top-k", "N", "results per query (default 10)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text (default: the model's max_seq_length or 256)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--int8", NULL, NULL, "int8 inference: Linear layers with per-channel int8 weights and per-row int8 activations (VNNI where the CPU has it); an int8 export (embedtune quantize) runs in int8 without it", NULL},
    {"--mem-budget", NULL, "MB", "refuse a --batch x --max-len whose activations exceed this (default: 75% of RAM)", NULL},
    {"--mode", NULL, "M", "dense | bm25 | hybrid (default: the model folder's retrieval.json, else dense)", NULL},
    {"--dim", NULL, "D", "cut each embedding to its first D values and re-normalise (Matryoshka models: train/finetune --matryoshka; default: all)", NULL},
    {"--fusion", NULL, "SPEC", "hybrid rule instead of the saved one, e.g. convex:alpha=0.3, rrf:k=60,alpha=0.5, "
                               "rerank:top_n=50,alpha=0.5 (implies --mode hybrid; default: retrieval.json, else convex:alpha=0.2)", NULL},
    {"--json", NULL, NULL, "print results as JSONL instead of a table", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

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
    if (!et_cli_need(o, n, "search", "--model")) return 2;
    if (!et_cli_get(o, n, "--corpus") == !et_cli_get(o, n, "--index")) {
        fprintf(stderr, "embedtune search: give exactly one of --corpus FILE or --index FILE\n");
        return 2;
    }
    if (!et_cli_get(o, n, "--query") == !et_cli_get(o, n, "--queries")) {
        fprintf(stderr, "embedtune search: give exactly one of --query TEXT or --queries FILE\n");
        return 2;
    }
    int k = (int)et_cli_int(o, n, "-k", 10, 1, 1000000, &ok);
    enc_args ea;
    if (!enc_args_read(o, n, &ea)) ok = 0;
    int dim = (int)et_cli_int(o, n, "--dim", 0, 1, 1 << 20, &ok);
    if (!ok) return 2;
    et_error err = {0};
    const char *ms = et_cli_get(o, n, "--mode"), *fspec = et_cli_get(o, n, "--fusion"), *mdir = et_cli_get(o, n, "--model");
    et_retrieval_mode mode = ET_MODE_DENSE;
    et_fusion fusion;
    if (ms && et_retrieval_mode_parse(ms, &mode, &err)) { fprintf(stderr, "embedtune search: --mode: %s\n", err.msg); return 2; }
    if (fspec && et_fusion_parse(fspec, &fusion, &err)) { fprintf(stderr, "embedtune search: --fusion: %s\n", err.msg); return 2; }
    et_retrieval_cfg rcfg;
    int have_rcfg = 0;
    if (et_retrieval_load(mdir, &rcfg, &have_rcfg, &err)) return et_cli_fail("search", &err);
    if (!ms) mode = fspec ? ET_MODE_HYBRID : rcfg.mode;
    if (!fspec) fusion = rcfg.fusion;
    et_hf_model L;
    if (model_open(o, n, mdir, ea.threads, &L, &err)) { et_hf_model_free(&L); return et_cli_fail("search", &err); }
    et_corpus C = {0};
    et_strvec qs = {0};
    et_hybrid_index ix;
    et_hybrid_queries Y;
    et_index X;
    const et_hybrid_index *use = &ix;
    const char *const *ids, *const *texts;
    memset(&X, 0, sizeof X);
    memset(&ix, 0, sizeof ix);
    memset(&Y, 0, sizeof Y);
    int32_t *idx = NULL;
    double *score = NULL;
    int rc = 0;
    if (et_cli_get(o, n, "--index")) {
        if (dim) { fprintf(stderr, "embedtune search: --dim cannot be used with --index (the index holds the model's full embeddings)\n"); rc = 2; goto done; }
        if (et_index_read(et_cli_get(o, n, "--index"), &X, &err) ||
            et_index_attach(&X, mode != ET_MODE_BM25 ? &L.model : NULL, L.tok, L.pool, NULL, &err)) {
            rc = et_cli_fail("search", &err);
            goto done;
        }
        use = &X.ix;
        ids = X.id;
        texts = X.text;
    } else {
        if (et_corpus_read(et_cli_get(o, n, "--corpus"), NULL, &C, NULL, &err)) { rc = et_cli_fail("search", &err); goto done; }
        ids = C.id;
        texts = C.text;
    }
    if (et_cli_get(o, n, "--query")) {
        char *q = strdup(et_cli_get(o, n, "--query"));
        if (!q || et_sv_push(&qs, q)) { free(q); rc = 1; goto done; }
    } else if (et_cli_read_texts(et_cli_get(o, n, "--queries"), &qs, &err)) { rc = et_cli_fail("search", &err); goto done; }
    if (k > (X.nd ? X.nd : C.n)) k = X.nd ? X.nd : C.n;
    et_encode_opts eo = enc_args_opts(&ea, &L, "encode corpus");
    eo.dim = dim;
    /* the model for dense and hybrid, BM25 (the saved k1/b) for bm25 and hybrid, over the same title + text */
    if (!X.nd && et_hybrid_index_build(mode != ET_MODE_BM25 ? &L.model : NULL, L.tok, L.pool, &eo, mode != ET_MODE_DENSE, &rcfg.bm25, C.text,
                              C.n, NULL, &ix, &err)) { rc = et_cli_fail("search", &err); goto done; }
    eo.progress = NULL;
    int32_t depth = k > fusion.depth ? k : fusion.depth;
    if (et_hybrid_queries_build(use, L.pool, &eo, (const char *const *)qs.v, (int32_t)qs.n, depth, NULL, &Y, &err)) { rc = et_cli_fail("search", &err); goto done; }
    idx = malloc(sizeof(int32_t) * (qs.n ? qs.n : 1) * (size_t)(k ? k : 1));
    score = malloc(sizeof(double) * (qs.n ? qs.n : 1) * (size_t)(k ? k : 1));
    if (!idx || !score) { fprintf(stderr, "embedtune search: out of memory\n"); rc = 1; goto done; }
    if (et_hybrid_rank(L.pool, &Y, mode, &fusion, k, idx, score, &err)) { rc = et_cli_fail("search", &err); goto done; }
    for (size_t q = 0; q < qs.n; q++) {
        const int32_t *r = idx + q * (size_t)k;
        const double *sc = score + q * (size_t)k;
        if (et_cli_get(o, n, "--json")) {
            cJSON *rj = cJSON_CreateObject(), *arr;
            cJSON_AddStringToObject(rj, "query", qs.v[q]);
            cJSON_AddStringToObject(rj, "mode", et_retrieval_mode_name(mode));
            arr = cJSON_AddArrayToObject(rj, "results");
            for (int j = 0; j < k && r[j] >= 0; j++) {
                cJSON *h = cJSON_CreateObject();
                cJSON_AddNumberToObject(h, "rank", j + 1);
                cJSON_AddStringToObject(h, "id", ids[r[j]]);
                cJSON_AddNumberToObject(h, "score", (float)sc[j]);
                cJSON_AddItemToArray(arr, h);
            }
            char *s = cJSON_PrintUnformatted(rj);
            puts(s);
            free(s);
            cJSON_Delete(rj);
        } else {
            char fd[128];
            if (q == 0) printf("mode: %s%s%s\n", et_retrieval_mode_name(mode), mode == ET_MODE_HYBRID ? ", " : "",
                               mode == ET_MODE_HYBRID ? et_fusion_describe(&fusion, fd, sizeof fd) : "");
            printf("query: %s\n%4s  %7s  %-24s %s\n", qs.v[q], "rank", "score", "id", "text");
            for (int j = 0; j < k && r[j] >= 0; j++) {
                printf("%4d  %7.4f  %-24s ", j + 1, sc[j], ids[r[j]]);
                print_snippet(texts ? texts[r[j]] : "", 70);
                putchar('\n');
            }
            if (q + 1 < qs.n) putchar('\n');
        }
    }
done:
    free(idx); free(score);
    et_hybrid_queries_free(&Y);
    et_hybrid_index_free(&ix);
    et_index_free(&X);
    et_corpus_free(&C);
    et_sv_free(&qs);
    et_hf_model_free(&L);
    return rc;
}

et_command et_cmd_search = {"search", "Rank a BEIR corpus.jsonl for a query: by the model's cosine, BM25, or their fusion (the model folder's retrieval.json).",
     "search --model DIR (--corpus corpus.jsonl | --index X.etix) --query \"...\" [-k 10] [--mode dense|bm25|hybrid] [--fusion SPEC] [--dim D]",
     run_search, search_opts, ET_NOPTS(search_opts)};

/* ------------------------------------------------------------------ index */
static et_opt index_opts[] = {
    {"--model", NULL, "DIR", "Hugging Face model folder (its retrieval.json gives BM25's k1 and b)", NULL},
    {"--corpus", NULL, "FILE", "BEIR corpus.jsonl: one {\"_id\", \"title\", \"text\"} per line", NULL},
    {"--out", "-o", "FILE", "the index file to write (format: docs/data-formats.md, 'Search index')", NULL},
    {"--dtype", NULL, "T", "document embeddings: int8 (default; 1 byte + 4/doc), f16, or none (BM25 only)", NULL},
    {"--no-text", NULL, NULL, "do not store the document texts (results then carry ids only)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text (default: the model's max_seq_length or 256)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--mem-budget", NULL, "MB", "refuse a --batch x --max-len whose activations exceed this (default: 75% of RAM)", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

static int run_index(et_opt *o, int n) {
    int ok = 1;
    if (!et_cli_need(o, n, "index", "--model") || !et_cli_need(o, n, "index", "--corpus") || !et_cli_need(o, n, "index", "--out")) return 2;
    enc_args ea;
    ok = enc_args_read(o, n, &ea);
    if (!ok) return 2;
    et_error err = {0};
    et_index_dtype dt = ET_INDEX_INT8;
    if (et_cli_get(o, n, "--dtype") && et_index_dtype_parse(et_cli_get(o, n, "--dtype"), &dt, &err)) {
        fprintf(stderr, "embedtune index: --dtype: %s\n", err.msg);
        return 2;
    }
    const char *mdir = et_cli_get(o, n, "--model");
    et_retrieval_cfg rcfg;
    int have_rcfg = 0;
    if (et_retrieval_load(mdir, &rcfg, &have_rcfg, &err)) return et_cli_fail("index", &err);
    et_hf_model L;
    if (model_open(o, n, mdir, ea.threads, &L, &err)) { et_hf_model_free(&L); return et_cli_fail("index", &err); }
    et_corpus C = {0};
    et_hybrid_index ix;
    memset(&ix, 0, sizeof ix);
    float *probe = NULL;
    int rc = 0;
    if (et_corpus_read(et_cli_get(o, n, "--corpus"), NULL, &C, NULL, &err)) { rc = et_cli_fail("index", &err); goto done; }
    et_encode_opts eo = enc_args_opts(&ea, &L, "encode corpus");
    if (et_hybrid_index_build(dt != ET_INDEX_NONE ? &L.model : NULL, L.tok, L.pool, &eo, 1, &rcfg.bm25, C.text, C.n, NULL, &ix, &err)) {
        rc = et_cli_fail("index", &err);
        goto done;
    }
    if (dt != ET_INDEX_NONE) {
        probe = malloc(sizeof(float) * (size_t)ix.dim);
        if (!probe) { fprintf(stderr, "embedtune index: out of memory\n"); rc = 1; goto done; }
        if (et_index_probe(&L.model, L.tok, L.pool, &eo, eo.max_len, probe, &err)) { rc = et_cli_fail("index", &err); goto done; }
    }
    if (et_index_write(et_cli_get(o, n, "--out"), &ix, C.id, et_cli_get(o, n, "--no-text") ? NULL : C.text, dt, eo.max_len, probe, &err)) {
        rc = et_cli_fail("index", &err);
        goto done;
    }
    if (!et_cli_get(o, n, "--quiet"))
        fprintf(stderr, "index: %d docs, %s embeddings (dim %d), BM25 %d terms -> %s\n", C.n, et_index_dtype_name(dt), ix.dim,
                et_bm25_nterms(ix.bm), et_cli_get(o, n, "--out"));
done:
    free(probe);
    et_hybrid_index_free(&ix);
    et_corpus_free(&C);
    et_hf_model_free(&L);
    return rc;
}

et_command et_cmd_index = {"index", "Write a search index of a corpus (document embeddings int8/f16 + BM25) for search --index, the Worker and the wasm package.",
     "index --model DIR --corpus corpus.jsonl --out X.etix [--dtype int8|f16|none] [--no-text]",
     run_index, index_opts, ET_NOPTS(index_opts)};
