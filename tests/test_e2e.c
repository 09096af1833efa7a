/* test_e2e.c - texts -> embeddings end to end, against PyTorch (tools/gen_e2e_fixture.py):
 * a sentence-transformers folder (F16, "bert." prefix, mean pooling + Normalize, max_seq_length 24)
 * is loaded with et_hf_load_ex, texts are tokenized and encoded in padded, length-sorted batches by
 * et_encode_texts, and every embedding must match the float64 reference within 1e-4 (ids exactly). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "hf.h"
#include "tokenizer.h"
#include "et_test.h"

#define DIR "tests/fixtures/e2e"
#define MAXT 64

static int unhex(const char *h, char *out) {
    int n = 0;
    if (!strcmp(h, "-")) { out[0] = 0; return 0; }
    for (; h[0] && h[1]; h += 2) { unsigned v; sscanf(h, "%2x", &v); out[n++] = (char)v; }
    out[n] = 0;
    return n;
}

int main(void) {
    et_error err = {0};
    et_bert m;
    et_hf_info info;
    if (et_hf_load_ex(DIR "/model", &m, &info, &err)) { fprintf(stderr, "load: %s\n", err.msg); return 1; }
    CHECK(m.cfg.pooling == ET_POOL_MEAN && m.cfg.normalize == 1, "pooling/normalize from modules.json");
    CHECK(info.max_seq_length == 24, "max_seq_length from sentence_bert_config.json: %d", info.max_seq_length);
    CHECK(info.bert_prefix == 1, "bert. prefix detected");
    et_tokenizer *tok = et_tokenizer_load_vocab(DIR "/model/vocab.txt", &err);
    if (!tok) { fprintf(stderr, "vocab: %s\n", err.msg); return 1; }
    FILE *f = fopen(DIR "/expected.txt", "r");
    if (!f) { perror(DIR "/expected.txt"); return 1; }
    int C = m.cfg.hidden_size, n = 0;
    char *texts[MAXT];
    int32_t eids[MAXT][64], nids[MAXT];
    float *expect = malloc(sizeof(float) * MAXT * C);
    static char line[1 << 16];
    while (n < MAXT && fgets(line, sizeof line, f)) {
        char *save, *t = strtok_r(line, " \n", &save);
        texts[n] = malloc(strlen(t) / 2 + 1);
        unhex(t, texts[n]);
        nids[n] = atoi(strtok_r(NULL, " \n", &save));
        for (int i = 0; i < nids[n]; i++) eids[n][i] = atoi(strtok_r(NULL, " \n", &save));
        for (int j = 0; j < C; j++) expect[n * C + j] = strtof(strtok_r(NULL, " \n", &save), NULL);
        n++;
    }
    fclose(f);
    CHECK(n == 14, "expected 14 texts, read %d", n);
    /* ids: one text at a time, truncated at 24 */
    int32_t ids[64], mask[64];
    for (int i = 0; i < n; i++) {
        int T;
        const char *one[1] = {texts[i]};
        if (et_tokenize_batch(tok, one, 1, info.max_seq_length, 0, ids, mask, &T, &err)) { CHECK(0, "%s", err.msg); continue; }
        int same = T == nids[i];
        for (int j = 0; same && j < T; j++) same = ids[j] == eids[i][j];
        CHECK(same, "text %d: token ids differ from the reference (T %d vs %d)", i, T, nids[i]);
    }
    /* embeddings: batches of 5 (padding inside batches), 1 and 2 threads */
    float *out = malloc(sizeof(float) * n * C), *out1 = malloc(sizeof(float) * n * C);
    for (int th = 1; th <= 2; th++) {
        et_pool *pool = et_pool_create(th, &err);
        et_encode_opts eo = {5, info.max_seq_length, NULL, NULL};
        if (et_encode_texts(&m, tok, pool, (const char *const *)texts, (size_t)n, &eo, out, &err)) { CHECK(0, "encode: %s", err.msg); return 1; }
        double worst = 0;
        for (int i = 0; i < n * C; i++) worst = fmax(worst, fabs(out[i] - expect[i]));
        printf("threads %d: max abs error vs PyTorch over %d texts x %d dims: %.3g\n", th, n, C, worst);
        CHECK(worst <= 1e-4, "embeddings differ from PyTorch by %.3g (> 1e-4)", worst);
        if (th == 1) memcpy(out1, out, sizeof(float) * n * C);
        else CHECK(!memcmp(out1, out, sizeof(float) * n * C), "1 and 2 threads give different embeddings");
        et_pool_destroy(pool);
    }
    /* batch composition must not matter: batch 1 equals batch 5 */
    et_encode_opts e1 = {1, info.max_seq_length, NULL, NULL};
    et_encode_texts(&m, tok, NULL, (const char *const *)texts, (size_t)n, &e1, out, &err);
    double d = 0;
    for (int i = 0; i < n * C; i++) d = fmax(d, fabs(out[i] - out1[i]));
    CHECK(d <= 1e-5, "batch 1 vs batch 5 differ by %.3g", d);
    /* an encode cache (activations + packed weights kept across calls) gives the same embeddings, grows
     * to the largest call, is reused without reallocating, and repacks when the weights change */
    {
        et_pool *pool = et_pool_create(2, &err);
        et_encode_cache ec = {0};
        float *o2 = malloc(sizeof(float) * n * C), *o3 = malloc(sizeof(float) * n * C);
        et_encode_opts small = {1, 8, NULL, NULL, 0, &ec}, full = {5, info.max_seq_length, NULL, NULL, 0, &ec};
        et_encode_opts fresh = {5, info.max_seq_length, NULL, NULL};
        CHECK(!et_encode_texts(&m, tok, pool, (const char *const *)texts, 1, &small, o2, &err), "cached encode: %s", err.msg);
        CHECK(ec.acts.B_max == 1 && ec.acts.T_max == 8, "cache sized for the first call (%d x %d)", ec.acts.B_max, ec.acts.T_max);
        CHECK(!et_encode_texts(&m, tok, pool, (const char *const *)texts, (size_t)n, &full, o2, &err), "cached encode: %s", err.msg);
        const void *mem = ec.acts.mem;
        double dc = 0;
        for (int i = 0; i < n * C; i++) dc = fmax(dc, fabs(o2[i] - out1[i]));
        CHECK(dc <= 1e-6, "cached encode differs from uncached by %.3g", dc);
        CHECK(!et_encode_texts(&m, tok, pool, (const char *const *)texts, 2, &small, o3, &err), "cached encode: %s", err.msg);
        CHECK(ec.acts.mem == mem && ec.acts.B_max == 5, "a smaller call reuses the cache without reallocating");
        /* weights change (as after a training step): the cached path must not use the stale packed copy */
        float *wq = m.w.layer[0].q_w;
        for (int i = 0; i < C * C; i += 7) wq[i] += 0.25f;
        et_bert_params_changed(&m); /* every writer of the parameters says so (bert.h) */
        CHECK(!et_encode_texts(&m, tok, pool, (const char *const *)texts, (size_t)n, &full, o2, &err), "cached encode: %s", err.msg);
        CHECK(!et_encode_texts(&m, tok, pool, (const char *const *)texts, (size_t)n, &fresh, o3, &err), "encode: %s", err.msg);
        double dw = 0, moved = 0;
        for (int i = 0; i < n * C; i++) { dw = fmax(dw, fabs(o2[i] - o3[i])); moved = fmax(moved, fabs(o3[i] - out1[i])); }
        CHECK(moved > 1e-3, "the weight change moved the embeddings (%.3g)", moved);
        CHECK(dw <= 1e-6, "after a weight change the cached encode differs from a fresh one by %.3g (stale packed weights?)", dw);
        for (int i = 0; i < C * C; i += 7) wq[i] -= 0.25f;
        et_bert_params_changed(&m);
        printf("encode cache: vs uncached %.3g, after a weight change %.3g\n", dc, dw);
        et_encode_cache_free(&ec);
        CHECK(ec.acts.mem == NULL, "cache freed");
        free(o2); free(o3);
        et_pool_destroy(pool);
    }
    /* a tokenizer whose vocab does not fit the model is refused */
    et_tokenizer *big = et_tokenizer_load_vocab("tests/fixtures/tokenizer/vocab.txt", &err);
    if (big) {
        et_status s = et_encode_texts(&m, big, NULL, (const char *const *)texts, 1, &e1, out, &err);
        CHECK(s == ET_ERR_MISMATCH && strstr(err.msg, "vocab_size"), "vocab mismatch refused: %s", err.msg);
        et_tokenizer_free(big);
    }
    for (int i = 0; i < n; i++) free(texts[i]);
    free(out); free(out1); free(expect);
    et_tokenizer_free(tok);
    et_bert_free(&m);
    return et_test_report("test_e2e");
}
