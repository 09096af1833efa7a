/* bench_scale.c - mining and evaluation at scale: a synthetic corpus (default 100k documents of
 * 50-100 words drawn Zipf-like from the model's whole-word vocabulary) and 1k queries (8 words of a
 * target document + 2 random words; the target is the query's one positive).
 *
 *   encode corpus + queries (et_encode_texts), exact top-100 with et_topk_search (per-pair et_dot)
 *   and with et_mine_topk (GEMM blocks; results compared), ANCE mining (ranks [2, 200), 15
 *   negatives, false-negative margin 0.95), IR metrics (et_ir_evaluate), BM25 build + search;
 *   wall time of each stage and peak RSS.
 *
 * usage: bench_scale --model DIR [--docs 100000] [--queries 1000] [--max-len 128] [--batch 64]
 *                    [--threads 0] [--encode-docs N  (encode only N docs and tile them: a quick look
 *                    at search/mining cost when the encoder is too slow for the full corpus)]
 * See bench/run_scale_bench.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bm25.h"
#include "hf.h"
#include "kernels.h"
#include "threads.h"
#include "tokenizer.h"
#include "util.h"
#include "encode.h"
#include "metrics.h"
#include "mine.h"
#include "rng.h"

static long rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

static int prog_cb(void *u, size_t done, size_t total) {
    double *last = u, t = et_now_s();
    if (done == total || t - *last > 10) {
        fprintf(stderr, "  encoded %zu/%zu\n", done, total);
        *last = t;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *model = NULL;
    long ndocs = 100000, nq = 1000, max_len = 128, batch = 64, threads = 0, enc_docs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--model") && v) model = argv[++i];
        else if (!strcmp(a, "--docs") && v) ndocs = atol(argv[++i]);
        else if (!strcmp(a, "--queries") && v) nq = atol(argv[++i]);
        else if (!strcmp(a, "--max-len") && v) max_len = atol(argv[++i]);
        else if (!strcmp(a, "--batch") && v) batch = atol(argv[++i]);
        else if (!strcmp(a, "--threads") && v) threads = atol(argv[++i]);
        else if (!strcmp(a, "--encode-docs") && v) enc_docs = atol(argv[++i]);
        else { fprintf(stderr, "usage: bench_scale --model DIR [--docs N] [--queries N] [--max-len L] [--batch B] [--threads T] [--encode-docs N]\n"); return 2; }
    }
    if (!model || ndocs < 300 || nq < 1 || nq > ndocs) { fprintf(stderr, "bench_scale: need --model, docs >= 300, 1 <= queries <= docs\n"); return 2; }
    if (enc_docs <= 0 || enc_docs > ndocs) enc_docs = ndocs;
    et_error err = {0};
    et_hf_model L;
    if (et_hf_model_load(model, (int)threads, &L, &err)) { fprintf(stderr, "load: %s\n", err.msg); return 1; }
    int d = L.model.cfg.hidden_size;
    printf("model %s: hidden %d, layers %d; %ld docs, %ld queries, max_len %ld, threads %d\n", model, d,
           L.model.cfg.num_layers, ndocs, nq, max_len, et_pool_size(L.pool));

    /* ---- synthetic corpus from the whole-word vocabulary */
    double t0 = et_now_s();
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.txt", model);
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return 1; }
    char **words = NULL, line[256];
    int nw = 0, cw = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        int good = strlen(line) >= 3;
        for (char *p = line; *p && good; p++) good = *p >= 'a' && *p <= 'z';
        if (!good) continue;
        if (nw == cw) { cw = cw ? 2 * cw : 4096; words = realloc(words, sizeof(char *) * cw); }
        words[nw++] = strdup(line);
    }
    fclose(f);
    if (nw < 100) { fprintf(stderr, "too few words in %s\n", path); return 1; }
    et_rng r;
    et_rng_seed(&r, 1234);
    char **docs = malloc(sizeof(char *) * ndocs), **qs = malloc(sizeof(char *) * nq);
    size_t total_words = 0;
    for (long i = 0; i < ndocs; i++) {
        int n = 50 + (int)et_rng_below(&r, 51);
        char *s = malloc((size_t)n * 24 + 1), *p = s;
        for (int j = 0; j < n; j++) {
            double u = et_rng_uniform(&r); /* Zipf-like: index ~ nw^u */
            int w = (int)(pow((double)nw, u)) - 1;
            p += sprintf(p, j ? " %s" : "%s", words[w < 0 ? 0 : w >= nw ? nw - 1 : w]);
        }
        docs[i] = s;
        total_words += (size_t)n;
    }
    int64_t *pos_off = malloc(sizeof(int64_t) * (nq + 1));
    int32_t *pos = malloc(sizeof(int32_t) * nq);
    et_qrel *qrels = malloc(sizeof(et_qrel) * nq);
    for (long q = 0; q < nq; q++) {
        int32_t target = (int32_t)(q * (ndocs / nq));
        pos_off[q] = q;
        pos[q] = target;
        qrels[q] = (et_qrel){(int32_t)q, target, 1};
        /* 8 words of the target + 2 random */
        char *s = malloc(16 * 40), *p = s;
        const char *src = docs[target];
        int nt = 0;
        const char *starts[128];
        for (const char *c = src; *c && nt < 128; c++) if (c == src || c[-1] == ' ') starts[nt++] = c;
        for (int j = 0; j < 10; j++) {
            const char *w;
            if (j < 8) {
                const char *st = starts[et_rng_below(&r, (uint64_t)nt)];
                size_t l = strcspn(st, " ");
                p += sprintf(p, j ? " %.*s" : "%.*s", (int)l, st);
                continue;
            }
            w = words[et_rng_below(&r, (uint64_t)nw)];
            p += sprintf(p, " %s", w);
        }
        qs[q] = s;
    }
    pos_off[nq] = nq;
    printf("%-34s %9.2f s   (%.1f words/doc)\n", "generate corpus", et_now_s() - t0, (double)total_words / ndocs);

    /* ---- encode */
    float *De = malloc(sizeof(float) * ndocs * d), *Qe = malloc(sizeof(float) * nq * d);
    if (!De || !Qe) { fprintf(stderr, "out of memory\n"); return 1; }
    double last = et_now_s();
    et_encode_opts eo = {(int)batch, (int)max_len, prog_cb, &last};
    t0 = et_now_s();
    if (et_encode_texts(&L.model, L.tok, L.pool, (const char *const *)docs, (size_t)enc_docs, &eo, De, &err)) { fprintf(stderr, "encode: %s\n", err.msg); return 1; }
    double te = et_now_s() - t0;
    for (long i = enc_docs; i < ndocs; i++) memcpy(De + i * d, De + (i % enc_docs) * d, sizeof(float) * d);
    printf("%-34s %9.2f s   (%.0f docs/s%s)\n", "encode corpus", te, enc_docs / te,
           enc_docs < ndocs ? ", tiled to the full corpus" : "");
    if (enc_docs < ndocs) printf("%-34s %9.2f s   (extrapolated)\n", "  -> full corpus would take", te * ndocs / enc_docs);
    eo.progress = NULL;
    t0 = et_now_s();
    if (et_encode_texts(&L.model, L.tok, L.pool, (const char *const *)qs, (size_t)nq, &eo, Qe, &err)) { fprintf(stderr, "encode: %s\n", err.msg); return 1; }
    printf("%-34s %9.2f s\n", "encode queries", et_now_s() - t0);
    for (long i = 0; i < ndocs; i++) { float *x = De + i * d; float s = sqrtf(et_dot(x, x, d)); if (s > 0) for (int j = 0; j < d; j++) x[j] /= s; }
    for (long i = 0; i < nq; i++) { float *x = Qe + i * d; float s = sqrtf(et_dot(x, x, d)); if (s > 0) for (int j = 0; j < d; j++) x[j] /= s; }
    printf("%-34s %9ld MB\n", "peak RSS after encoding", rss_mb());

    /* ---- exact top-100: per-pair et_dot vs GEMM blocks */
    int K = 100;
    int32_t *i1 = malloc(sizeof(int32_t) * nq * K), *i2 = malloc(sizeof(int32_t) * nq * K);
    float *s1 = malloc(sizeof(float) * nq * K), *s2 = malloc(sizeof(float) * nq * K);
    t0 = et_now_s();
    if (et_topk_search(L.pool, Qe, De, nq, ndocs, d, K, i1, s1, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    double tt1 = et_now_s() - t0;
    t0 = et_now_s();
    if (et_mine_topk(L.pool, Qe, De, nq, ndocs, d, K, 0, 0, i2, s2, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    double tt2 = et_now_s() - t0;
    long same = 0;
    double maxd = 0;
    for (long i = 0; i < nq * K; i++) { same += i1[i] == i2[i]; double dd = fabs(s1[i] - s2[i]); if (dd > maxd) maxd = dd; }
    printf("%-34s %9.2f s   (%.1f GFLOP/s)\n", "top-100, et_topk_search (et_dot)", tt1, 2.0 * nq * ndocs * d / tt1 / 1e9);
    printf("%-34s %9.2f s   (%.1f GFLOP/s; %.4f%% same ids, max |score diff| %.2g)\n", "top-100, et_mine_topk (GEMM)", tt2,
           2.0 * nq * ndocs * d / tt2 / 1e9, 100.0 * same / (nq * K), maxd);

    /* ---- mining */
    int NN = 15;
    int32_t *neg = malloc(sizeof(int32_t) * nq * NN), *negq = malloc(sizeof(int32_t) * nq * NN);
    et_mine_cfg mc = {.rank_lo = 2, .rank_hi = 200, .n_neg = NN, .fn_margin = 0.95f, .sample = 1, .seed = 1};
    et_mine_stats ms;
    t0 = et_now_s();
    if (et_mine_negatives(&mc, L.pool, Qe, De, nq, ndocs, d, pos_off, pos, neg, NULL, negq, &ms, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    printf("%-34s %9.2f s   (%lld negatives, %lld fn-dropped, %d short)\n", "mine ranks [2,200) x15, fn 0.95", et_now_s() - t0,
           (long long)ms.n_found, (long long)ms.n_fn_dropped, ms.n_short);

    /* ---- evaluation */
    t0 = et_now_s();
    et_ir_summary sum;
    if (et_ir_evaluate(i2, (int32_t)nq, K, qrels, pos_off, &sum, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    double aniso = et_mean_random_cosine(De, ndocs, d, 100000, 7);
    printf("%-34s %9.2f s   (nDCG@10 %.4f, R@100 %.4f, anisotropy %.3f)\n", "IR metrics + anisotropy", et_now_s() - t0,
           sum.ndcg10, sum.recall100, aniso);

    /* ---- BM25 */
    t0 = et_now_s();
    et_bm25 *bm = et_bm25_build((const char *const *)docs, (int32_t)ndocs, NULL, &err);
    if (!bm) { fprintf(stderr, "%s\n", err.msg); return 1; }
    printf("%-34s %9.2f s\n", "bm25 build", et_now_s() - t0);
    t0 = et_now_s();
    if (et_bm25_search_batch(L.pool, bm, (const char *const *)qs, (int32_t)nq, K, i1, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    double tb = et_now_s() - t0;
    et_ir_evaluate(i1, (int32_t)nq, K, qrels, pos_off, &sum, NULL, &err);
    printf("%-34s %9.2f s   (nDCG@10 %.4f)\n", "bm25 top-100 search", tb, sum.ndcg10);
    printf("%-34s %9ld MB\n", "peak RSS", rss_mb());

    et_bm25_free(bm);
    for (long i = 0; i < ndocs; i++) free(docs[i]);
    for (long i = 0; i < nq; i++) free(qs[i]);
    for (int i = 0; i < nw; i++) free(words[i]);
    free(words); free(docs); free(qs); free(De); free(Qe); free(i1); free(i2); free(s1); free(s2); free(neg); free(negq);
    free(pos_off); free(pos); free(qrels);
    et_hf_model_free(&L);
    return 0;
}
