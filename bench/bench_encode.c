/* bench_encode.c - embedtune side of the encode-throughput benchmark (see bench/README.md).
 *
 *   bench_encode --model DIR --threads 2 --batch 32 --seq 128 [--warmup 2] [--reps 5] [--min-time S]
 *       loads the HF folder with et_hf_load, runs et_bert_forward (inference activations, an
 *       et_pool of `threads` threads) on the benchmark's fixed ids (xorshift32, identical to
 *       torch_encode.py and ort_encode.mjs) with a full attention mask, and prints one JSON object.
 *       --int8: the encoder's Linear layers in int8 (docs/int8.md; engine "embedtune-int8").
 *   bench_encode --model DIR --check [--tol 1e-3]
 *       runs DIR/check.json's padded batch (written by make_minilm_random.py) and compares the
 *       pooled output with torch's; exit 1 if the max abs difference exceeds tol.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cJSON.h"
#include "bert.h"
#include "error.h"
#include "fileio.h"
#include "hf.h"
#include "threads.h"
#include "bench_common.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_encode [--model DIR] [--threads N] [--batch B] [--seq T] [--warmup N] [--reps N]\n"
                    "                    [--min-time S] [--int8 [--int8-path amx-int8|vnni|scalar]] [--check [--tol X]]\n");
}

/* Reads DIR/check.json into malloc'd arrays. */
static et_status load_check(const char *dir, int *B, int *T, int *C, int32_t **ids, int32_t **mask, float **pooled,
                            et_error *err) {
    char path[ET_PATH_MAX];
    char *buf = NULL;
    size_t len = 0;
    et_status st = et_path_join(path, sizeof path, dir, "check.json", err);
    if (st == ET_OK) st = et_read_file(path, (size_t)64 << 20, &buf, &len, err);
    if (st != ET_OK) return st;
    cJSON *j = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!j) return et_fail(err, ET_ERR_FORMAT, "%s: not valid JSON", path);
    cJSON *jb = cJSON_GetObjectItem(j, "batch"), *jt = cJSON_GetObjectItem(j, "seq"), *jc = cJSON_GetObjectItem(j, "hidden");
    cJSON *ji = cJSON_GetObjectItem(j, "input_ids"), *jm = cJSON_GetObjectItem(j, "attention_mask");
    cJSON *jp = cJSON_GetObjectItem(j, "pooled");
    if (!cJSON_IsNumber(jb) || !cJSON_IsNumber(jt) || !cJSON_IsNumber(jc) || !cJSON_IsArray(ji) ||
        !cJSON_IsArray(jm) || !cJSON_IsArray(jp)) {
        cJSON_Delete(j);
        return et_fail(err, ET_ERR_FORMAT, "%s: needs batch, seq, hidden, input_ids, attention_mask, pooled", path);
    }
    *B = jb->valueint; *T = jt->valueint; *C = jc->valueint;
    int n = *B * *T;
    if (*B <= 0 || *T <= 0 || *C <= 0 || cJSON_GetArraySize(ji) != n || cJSON_GetArraySize(jm) != n ||
        cJSON_GetArraySize(jp) != *B * *C) {
        cJSON_Delete(j);
        return et_fail(err, ET_ERR_FORMAT, "%s: array sizes do not match batch x seq / batch x hidden", path);
    }
    *ids = malloc(sizeof(int32_t) * (size_t)n);
    *mask = malloc(sizeof(int32_t) * (size_t)n);
    *pooled = malloc(sizeof(float) * (size_t)(*B * *C));
    if (!*ids || !*mask || !*pooled) { cJSON_Delete(j); return et_fail(err, ET_ERR_NOMEM, "check arrays"); }
    int i = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, ji) (*ids)[i++] = (int32_t)e->valueint;
    i = 0;
    cJSON_ArrayForEach(e, jm) (*mask)[i++] = (int32_t)e->valueint;
    i = 0;
    cJSON_ArrayForEach(e, jp) (*pooled)[i++] = (float)e->valuedouble;
    cJSON_Delete(j);
    return ET_OK;
}

int main(int argc, char **argv) {
    const char *model_dir = "/tmp/et-bench/minilm";
    int threads = 1, B = 32, T = 128, warmup = 2, reps = 5, check = 0, int8 = 0;
    double min_time = 0.0, tol = 1e-3;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--check")) { check = 1; continue; }
        if (!strcmp(k, "--int8")) { int8 = 1; continue; }
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) { usage(); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "bench_encode: %s: missing value\n", k); usage(); return 2; }
        const char *v = argv[++i];
        if (!strcmp(k, "--model")) model_dir = v;
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--batch")) B = atoi(v);
        else if (!strcmp(k, "--seq")) T = atoi(v);
        else if (!strcmp(k, "--warmup")) warmup = atoi(v);
        else if (!strcmp(k, "--reps")) reps = atoi(v);
        else if (!strcmp(k, "--int8-path")) { /* amx-int8 | vnni | scalar (et_q8_force; default the fastest here) */
            if (et_q8_force(v) != 0) { fprintf(stderr, "bench_encode: int8 path '%s' does not run here\n", v); return 2; }
        }
        else if (!strcmp(k, "--min-time")) min_time = atof(v);
        else if (!strcmp(k, "--tol")) tol = atof(v);
        else { fprintf(stderr, "bench_encode: unknown option %s\n", k); usage(); return 2; }
    }
    if (threads < 1 || B < 1 || T < 1 || reps < 1 || warmup < 0) {
        fprintf(stderr, "bench_encode: threads, batch, seq, reps must be >= 1 and warmup >= 0\n");
        return 2;
    }

    et_error err = {0};
    et_bert m = {0};
    et_bert_acts acts = {0};
    et_pool *pool = NULL;
    int32_t *ids = NULL, *mask = NULL;
    float *ref = NULL, *pooled = NULL;
    double *times = NULL;
    int rc = 1;
    et_status st = et_hf_load(model_dir, &m, &err);
    if (st != ET_OK) goto fail;
    if (int8) m.int8 = 1; /* int8 inference (docs/int8.md) */
    const int C = m.cfg.hidden_size;
    pool = et_pool_create(threads, &err);
    if (!pool) goto fail;

    if (check) {
        int cC = 0;
        if ((st = load_check(model_dir, &B, &T, &cC, &ids, &mask, &ref, &err)) != ET_OK) goto fail;
        if (cC != C) { et_fail(&err, ET_ERR_MISMATCH, "check.json: hidden %d but the model has %d", cC, C); goto fail; }
    } else {
        ids = malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
        mask = malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
        if (!ids || !mask) { et_fail(&err, ET_ERR_NOMEM, "ids"); goto fail; }
        bench_ids(ids, B * T, m.cfg.vocab_size, 12345u);
        for (int i = 0; i < B * T; i++) mask[i] = 1; /* full mask, passed explicitly like torch/ORT */
    }
    pooled = malloc(sizeof(float) * (size_t)B * (size_t)C);
    if (!pooled) { et_fail(&err, ET_ERR_NOMEM, "pooled"); goto fail; }
    if ((st = et_bert_acts_alloc(&acts, &m.cfg, B, T, 0, threads, &err)) != ET_OK) goto fail;

    if (check) {
        if ((st = et_bert_forward(&m, &acts, pool, ids, mask, NULL, B, T, pooled, 0, 0, &err)) != ET_OK) goto fail;
        double maxd = 0.0;
        int bad = 0;
        for (int i = 0; i < B * C; i++) {
            double d = fabs((double)pooled[i] - (double)ref[i]);
            if (!(d <= maxd)) maxd = d; /* NaN propagates */
            if (!(d <= tol)) bad++;
        }
        fprintf(stderr, "embedtune check: %dx%d padded batch, max |embedtune - torch| = %.2e (tol %g) %s\n", B, T, maxd,
                tol, bad ? "FAIL" : "OK");
        printf("{\"engine\":\"embedtune\",\"check\":true,\"batch\":%d,\"seq\":%d,\"max_abs_diff\":%.6g,\"ok\":%s}\n", B, T,
               maxd, bad ? "false" : "true");
        rc = bad ? 1 : 0;
        goto done;
    }

    for (int i = 0; i < warmup; i++)
        if ((st = et_bert_forward(&m, &acts, pool, ids, mask, NULL, B, T, pooled, 0, 0, &err)) != ET_OK) goto fail;
    int cap = reps > 64 ? reps : 64, n = 0;
    times = malloc(sizeof(double) * (size_t)cap);
    if (!times) { et_fail(&err, ET_ERR_NOMEM, "times"); goto fail; }
    double t_start = bench_now_s();
    while (n < reps || bench_now_s() - t_start < min_time) {
        if (n == cap) {
            double *nt = realloc(times, sizeof(double) * (size_t)(cap *= 2));
            if (!nt) { et_fail(&err, ET_ERR_NOMEM, "times"); goto fail; }
            times = nt;
        }
        double t0 = bench_now_s();
        if ((st = et_bert_forward(&m, &acts, pool, ids, mask, NULL, B, T, pooled, 0, 0, &err)) != ET_OK) goto fail;
        times[n++] = bench_now_s() - t0;
    }
    double checksum = 0.0;
    for (int i = 0; i < B * C; i++) checksum += pooled[i];
    printf("{\"engine\":\"%s\",\"int8_path\":\"%s\",\"threads\":%d,\"batch\":%d,\"seq\":%d,\"times_s\":[",
           m.int8 ? "embedtune-int8" : "embedtune", m.int8 ? et_q8_path_name() : "-", threads, B, T);
    for (int i = 0; i < n; i++) printf("%s%.6f", i ? "," : "", times[i]);
    double med = bench_median(times, n), best = times[0]; /* sorted by bench_median */
    printf("],\"best_s\":%.6f,\"median_s\":%.6f,\"sps_best\":%.3f,\"sps_median\":%.3f,\"checksum\":%.6f}\n", best, med,
           B / best, B / med, checksum);
    rc = 0;
    goto done;

fail:
    fprintf(stderr, "bench_encode: %s\n", err.msg[0] ? err.msg : "failed");
    rc = 1;
done:
    free(times);
    free(pooled);
    free(ref);
    free(ids);
    free(mask);
    et_bert_acts_free(&acts);
    et_pool_destroy(pool);
    et_bert_free(&m);
    return rc;
}
