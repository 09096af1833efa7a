/* bench_reallen.c - embedtune side of the real-length encode benchmark (bench/run_reallen_bench.sh).
 *
 *   bench_reallen --model DIR --make-ids OUT.txt --data "BEIRDIR ..." [--max-len 256] [--sample N]
 *       reads each BEIR folder with the library's reader (et_beir_read: documents as title + " " + text,
 *       and the queries), tokenizes every text with the model folder's tokenizer as `encode` does
 *       (et_hf_load_tokenizer; at most max-len tokens with [CLS]/[SEP]), keeps every k-th text so that
 *       about N remain (0 = all; the same texts on every run), and writes one line of token ids per text.
 *       Prints the length distribution on stderr.
 *   bench_reallen --model DIR --ids FILE --threads T --mode packed|padded [--batch 32] [--warmup 2]
 *                 [--reps 1] [--emb-out FILE.f32]
 *       encodes every line of FILE as sentence-transformers does: texts sorted by token length, batches of
 *       `batch`; padded = each batch padded to its longest text with the mask (et_bert_forward, dynamic
 *       padding); packed = the batch's texts concatenated without padding (et_bert_forward_packed). Times
 *       whole passes over the file after `warmup` batches (tokenization excluded: every engine gets the same
 *       ids); one JSON line
 *       with per-pass seconds, tokens, padded tokens, peak RSS. --emb-out: the embeddings in file order
 *       (float32, n x hidden) for the runner's cross-engine check. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bert.h"
#include "data.h"
#include "error.h"
#include "hf.h"
#include "kernels.h"
#include "threads.h"
#include "tokenizer.h"
#include "bench_common.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_reallen --model DIR --make-ids OUT --data \"DIR ...\" [--max-len 256] [--sample N]\n"
                    "       bench_reallen --model DIR --ids FILE [--threads N] [--mode packed|padded] [--batch 32]\n"
                    "                     [--warmup BATCHES] [--reps 1] [--emb-out FILE]\n");
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static int make_ids(const char *model_dir, const char *out, const char *data, int max_len, int sample) {
    et_error err = {0};
    et_bert m = {0};
    et_hf_info info;
    if (et_hf_load_ex(model_dir, &m, &info, &err)) { fprintf(stderr, "bench_reallen: %s\n", err.msg); return 1; }
    et_tokenizer *tok = et_hf_load_tokenizer(model_dir, &info, &m.cfg, NULL, 0, &err);
    if (!tok) { fprintf(stderr, "bench_reallen: %s\n", err.msg); return 1; }
    if (max_len > et_bert_max_tokens(&m.cfg)) max_len = et_bert_max_tokens(&m.cfg);
    /* every text of every folder, in order */
    size_t cap = 1024, n = 0;
    const char **texts = malloc(cap * sizeof *texts);
    et_beir *sets = calloc(16, sizeof *sets);
    int nsets = 0;
    char *dl = strdup(data);
    for (char *d = dl, *next; d && *d; d = next) { /* space-separated folders (no strtok: the readers use it) */
        next = strchr(d, ' ');
        if (next) *next++ = '\0';
        if (!*d) continue;
        if (nsets == 16) { fprintf(stderr, "bench_reallen: at most 16 folders\n"); return 1; }
        et_read_report rep;
        if (et_beir_read(d, NULL, &sets[nsets], &rep, &err)) { fprintf(stderr, "bench_reallen: %s\n", err.msg); return 1; }
        et_beir *b = &sets[nsets++];
        for (int pass = 0; pass < 2; pass++) {
            int cnt = pass ? b->nqueries : b->ndocs;
            for (int i = 0; i < cnt; i++) {
                if (n == cap) texts = realloc(texts, (cap *= 2) * sizeof *texts);
                texts[n++] = pass ? b->query_text[i] : b->doc_text[i];
            }
        }
    }
    size_t step = sample > 0 && (size_t)sample < n ? (n + (size_t)sample - 1) / (size_t)sample : 1;
    FILE *f = fopen(out, "w");
    if (!f) { perror(out); return 1; }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)max_len), *mask = malloc(sizeof(int32_t) * (size_t)max_len);
    int *lens = malloc(sizeof(int) * (n / step + 1));
    size_t kept = 0;
    long long tokens = 0;
    for (size_t i = 0; i < n; i += step) {
        int k = 0; /* as encode tokenizes: [CLS] text [SEP], truncated to max_len */
        if (et_tokenize_batch(tok, &texts[i], 1, max_len, 0, ids, mask, &k, &err)) {
            fprintf(stderr, "bench_reallen: text %zu: %s\n", i, err.msg);
            return 1;
        }
        for (int j = 0; j < k; j++) fprintf(f, j ? " %d" : "%d", ids[j]);
        fputc('\n', f);
        lens[kept++] = k;
        tokens += k;
    }
    if (fclose(f)) { perror(out); return 1; }
    qsort(lens, kept, sizeof *lens, cmp_int);
    fprintf(stderr, "bench_reallen: %zu of %zu texts (every %zu-th) -> %s: tokens mean %.1f, median %d, p90 %d, max %d "
                    "(max_len %d), %lld tokens\n", kept, n, step, out, (double)tokens / (double)kept, lens[kept / 2],
            lens[kept * 9 / 10], lens[kept - 1], max_len, tokens);
    for (int s = 0; s < nsets; s++) et_beir_free(&sets[s]);
    free(sets); free(dl); free(texts); free(ids); free(mask); free(lens);
    et_tokenizer_free(tok);
    et_bert_free(&m);
    return 0;
}

typedef struct { int len; int idx; } li;
static int cmp_li(const void *a, const void *b) {
    const li *x = a, *y = b;
    return x->len != y->len ? x->len - y->len : x->idx - y->idx;
}

int main(int argc, char **argv) {
    const char *model_dir = "/tmp/et-bench/minilm", *ids_path = NULL, *make = NULL, *data = NULL, *emb_out = NULL;
    const char *mode = "packed";
    int threads = 2, batch = 32, warmup = 2, reps = 1, max_len = 256, sample = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) { usage(); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "bench_reallen: %s: missing value\n", k); usage(); return 2; }
        const char *v = argv[++i];
        if (!strcmp(k, "--model")) model_dir = v;
        else if (!strcmp(k, "--ids")) ids_path = v;
        else if (!strcmp(k, "--make-ids")) make = v;
        else if (!strcmp(k, "--data")) data = v;
        else if (!strcmp(k, "--emb-out")) emb_out = v;
        else if (!strcmp(k, "--mode")) mode = v;
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--batch")) batch = atoi(v);
        else if (!strcmp(k, "--warmup")) warmup = atoi(v);
        else if (!strcmp(k, "--reps")) reps = atoi(v);
        else if (!strcmp(k, "--max-len")) max_len = atoi(v);
        else if (!strcmp(k, "--sample")) sample = atoi(v);
        else { fprintf(stderr, "bench_reallen: unknown option %s\n", k); usage(); return 2; }
    }
    if (make) {
        if (!data || max_len < 2) { usage(); return 2; }
        return make_ids(model_dir, make, data, max_len, sample);
    }
    int packed = !strcmp(mode, "packed");
    if (!ids_path || (!packed && strcmp(mode, "padded")) || threads < 1 || batch < 1 || reps < 1 || warmup < 0) {
        usage();
        return 2;
    }
    /* the ids file: one text per line */
    FILE *f = fopen(ids_path, "r");
    if (!f) { perror(ids_path); return 1; }
    size_t cap = 1 << 16, ntok = 0, ncap = 1024;
    int32_t *tok = malloc(cap * sizeof *tok);
    size_t *off = malloc((ncap + 1) * sizeof *off);
    int n = 0, Tmax = 0;
    off[0] = 0;
    char line[1 << 16];
    while (fgets(line, sizeof line, f)) {
        char *p = line, *e;
        for (long v = strtol(p, &e, 10); e != p; p = e, v = strtol(p, &e, 10)) {
            if (ntok == cap) tok = realloc(tok, (cap *= 2) * sizeof *tok);
            tok[ntok++] = (int32_t)v;
        }
        if ((size_t)n + 1 >= ncap) off = realloc(off, ((ncap *= 2) + 1) * sizeof *off);
        off[++n] = ntok;
        int len = (int)(off[n] - off[n - 1]);
        if (len < 1) { fprintf(stderr, "bench_reallen: %s: line %d is empty\n", ids_path, n); return 1; }
        if (len > Tmax) Tmax = len;
    }
    fclose(f);
    if (!n) { fprintf(stderr, "bench_reallen: %s: no texts\n", ids_path); return 1; }

    et_error err = {0};
    et_bert m = {0};
    if (et_hf_load(model_dir, &m, &err)) { fprintf(stderr, "bench_reallen: %s\n", err.msg); return 1; }
    const int C = m.cfg.hidden_size;
    et_pool *pool = et_pool_create(threads, &err);
    et_bert_acts acts;
    if (!pool || et_bert_acts_alloc(&acts, &m.cfg, batch, Tmax, 0, threads, &err)) {
        fprintf(stderr, "bench_reallen: %s\n", err.msg);
        return 1;
    }
    /* sentence-transformers' order: by length (stable) */
    li *order = malloc(sizeof(li) * (size_t)n);
    for (int i = 0; i < n; i++) { order[i].len = (int)(off[i + 1] - off[i]); order[i].idx = i; }
    qsort(order, (size_t)n, sizeof *order, cmp_li);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)batch * Tmax), *mask = malloc(sizeof(int32_t) * (size_t)batch * Tmax);
    int32_t *lens = malloc(sizeof(int32_t) * (size_t)batch);
    float *pooled = malloc(sizeof(float) * (size_t)batch * C), *emb = malloc(sizeof(float) * (size_t)n * C);
    long long real = 0, padded_tok = 0;
    double *times = malloc(sizeof(double) * (size_t)reps);
    /* rep < 0: warm-up, the first `warmup` batches only; then `reps` timed passes over every text */
    for (int rep = warmup ? -1 : 0; rep < reps; rep++) {
        double t0 = bench_now_s();
        real = padded_tok = 0;
        for (int b0 = 0; b0 < (rep < 0 ? (warmup * batch < n ? warmup * batch : n) : n); b0 += batch) {
            int B = n - b0 < batch ? n - b0 : batch, T = 0, r = 0;
            for (int b = 0; b < B; b++) if (order[b0 + b].len > T) T = order[b0 + b].len;
            for (int b = 0; b < B; b++) {
                const li *o = &order[b0 + b];
                const int32_t *src = tok + off[o->idx];
                if (packed) {
                    memcpy(ids + r, src, sizeof(int32_t) * (size_t)o->len);
                    r += o->len;
                    lens[b] = o->len;
                } else {
                    for (int t = 0; t < T; t++) {
                        ids[(size_t)b * T + t] = t < o->len ? src[t] : m.cfg.pad_token_id;
                        mask[(size_t)b * T + t] = t < o->len;
                    }
                }
                real += o->len;
            }
            padded_tok += packed ? (long long)r : (long long)B * T; /* tokens the GEMMs see */
            et_status st = packed ? et_bert_forward_packed(&m, &acts, pool, ids, NULL, lens, B, pooled, 0, 0, &err)
                                  : et_bert_forward(&m, &acts, pool, ids, mask, NULL, B, T, pooled, 0, 0, &err);
            if (st) { fprintf(stderr, "bench_reallen: %s\n", err.msg); return 1; }
            for (int b = 0; b < B; b++) memcpy(emb + (size_t)order[b0 + b].idx * C, pooled + (size_t)b * C, sizeof(float) * C);
        }
        if (rep >= 0) times[rep] = bench_now_s() - t0;
    }
    if (emb_out) {
        FILE *g = fopen(emb_out, "wb");
        if (!g || fwrite(emb, sizeof(float) * C, (size_t)n, g) != (size_t)n || fclose(g)) { perror(emb_out); return 1; }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"engine\":\"embedtune\",\"mode\":\"%s\",\"threads\":%d,\"batch\":%d,\"texts\":%d,\"tokens\":%lld,"
           "\"padded_tokens\":%lld,\"simd\":\"%s\",\"times_s\":[", mode, threads, batch, n, real, padded_tok, et_simd_name());
    for (int i = 0; i < reps; i++) printf(i ? ",%.6f" : "%.6f", times[i]);
    printf("],\"peak_rss_kib\":%ld}\n", ru.ru_maxrss);
    free(order); free(ids); free(mask); free(lens); free(pooled); free(emb); free(times); free(tok); free(off);
    et_bert_acts_free(&acts);
    et_pool_destroy(pool);
    et_bert_free(&m);
    return 0;
}
