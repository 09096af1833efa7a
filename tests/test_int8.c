/* test_int8.c - int8 inference (src/kernels/kernels_int8.h):
 *   1. a hand-computed case (codes, scales and the output worked out on paper);
 *   2. every path (the automatic one: VNNI here, SIMD128 in wasm) and any thread count against the scalar
 *      one-element-at-a-time reference, bit for bit, over shapes with every edge (IC % 4, OC % 16, rows % 12);
 *   3. the error of int8 against the fp32 product within the rounding bound
 *      |x.w - sa sw qa.qw| <= sa sw sum_k (|qa_k| / 2 + |qw_k| / 2 + 1/4);
 *   4. codes round trip (unpack -> from_codes), bad codes / scales / weights refused;
 *   5. the quality gate: each embedding of eval-set texts (a sample of the corpus and queries of cranfield,
 *      cisi and cacm, or the bundled sample corpus when ../shared/eval-data is absent) in int8 has cosine
 *      >= 0.995 to its fp32 embedding, for the bundled models/compact. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data.h"
#include "encode.h"
#include "fileio.h"
#include "hf.h"
#include "kernels.h"
#include "kernels_int8.h"
#include "et_test.h"

static void hand_case(void) {
    /* W = [[1, -0.5, 0.25], [0, 0, 0]]: sw = 1/127, codes [127, -64 (-63.5 -> even), 32 (31.75)], row 2 all 0.
     * x = [2, 1, -4]: sa = 4/127, codes [64 (63.5 -> even), 32 (31.75), -127].
     * acc = 64*127 + 32*(-64) + (-127)*32 = 8128 - 2048 - 4064 = 2016; y0 = 2016 * (4/127 * 1/127) + 0.5 */
    float W[6] = {1.0f, -0.5f, 0.25f, 0, 0, 0}, x[3] = {2.0f, 1.0f, -4.0f}, b[2] = {0.5f, -1.0f}, y[2], r[2];
    et_q8_matrix q;
    et_error err = {0};
    CHECK(!et_q8_quantize(&q, W, 2, 3, &err), "quantize: %s", err.msg);
    int8_t codes[6];
    et_q8_unpack(&q, codes);
    CHECK(codes[0] == 127 && codes[1] == -64 && codes[2] == 32 && !codes[3] && !codes[4] && !codes[5],
          "codes %d %d %d %d %d %d", codes[0], codes[1], codes[2], codes[3], codes[4], codes[5]);
    CHECK(q.scale[0] == 1.0f / 127.0f && q.scale[1] == 0.0f, "scales %g %g", q.scale[0], q.scale[1]);
    CHECK(q.colsum[0] == 127 - 64 + 32 && q.colsum[1] == 0, "colsum %d", q.colsum[0]);
    void *work = NULL;
    CHECK(!posix_memalign(&work, 64, et_q8_work_bytes(1, 3)), "alloc");
    et_q8_linear_forward(NULL, y, x, &q, b, 1, 0, work);
    et_q8_linear_reference(r, x, &q, b, 1);
    double want = 2016.0 * (4.0 / 127.0) * (1.0 / 127.0) + 0.5;
    CHECK_NEAR(y[0], want, 1e-6);
    CHECK_NEAR(y[1], -1.0, 0);
    CHECK(y[0] == r[0] && y[1] == r[1], "path %s differs from the reference", et_q8_path_name());
    free(work);
    et_q8_free(&q);
}

static void shapes(void) {
    /* ICs 128 and 384: whole AMX tile steps (64 k), so the AMX path runs them; N 50 and 97: 32- and 16-row
     * blocks plus VNNI rows */
    static const int Ns[] = {1, 5, 12, 13, 50, 97}, ICs[] = {3, 4, 128, 385, 384}, OCs[] = {1, 17, 32, 40, 384};
    et_error err = {0};
    et_pool *p2 = et_pool_create(2, &err), *p3 = et_pool_create(3, &err);
    uint64_t st = 42;
    long mismatches = 0, bound_fail = 0, cases = 0;
    for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
        for (size_t bi = 0; bi < sizeof ICs / sizeof *ICs; bi++)
            for (size_t c = 0; c < sizeof OCs / sizeof *OCs; c++) {
                int N = Ns[a], IC = ICs[bi], OC = OCs[c];
                float *W = malloc(sizeof(float) * OC * IC), *x = malloc(sizeof(float) * N * IC),
                      *bias = malloc(sizeof(float) * OC), *y = malloc(sizeof(float) * N * OC),
                      *r = malloc(sizeof(float) * N * OC);
                for (int i = 0; i < OC * IC; i++) W[i] = (float)et_test_frand(&st) * (1 + i % 7);
                for (int i = 0; i < N * IC; i++) x[i] = (float)et_test_frand(&st) * 3.0f;
                for (int i = 0; i < OC; i++) bias[i] = (float)et_test_frand(&st);
                if (N == 5) for (int k = 0; k < IC; k++) x[2 * IC + k] = 0.0f; /* an all-zero row */
                et_q8_matrix q;
                if (et_q8_quantize(&q, W, OC, IC, &err)) { CHECK(0, "%s", err.msg); continue; }
                void *work = NULL;
                if (posix_memalign(&work, 64, et_q8_work_bytes(N, IC))) work = NULL;
                et_q8_linear_reference(r, x, &q, (c & 1) ? bias : NULL, N);
                et_pool *pools[3] = {NULL, p2, p3};
                for (int pi = 0; pi < 3; pi++) {
                    memset(y, 0xff, sizeof(float) * N * OC);
                    et_q8_linear_forward(pools[pi], y, x, &q, (c & 1) ? bias : NULL, N, 0, work);
                    if (memcmp(y, r, sizeof(float) * N * OC)) mismatches++;
                    cases++;
                }
                /* the rounding bound against fp32 (double products) */
                int8_t *codes = malloc((size_t)OC * IC);
                et_q8_unpack(&q, codes);
                for (int n = 0; n < N; n++) {
                    float amax = 0;
                    for (int k = 0; k < IC; k++) amax = fmaxf(amax, fabsf(x[n * IC + k]));
                    double sa = amax / 127.0;
                    for (int o = 0; o < OC; o++) {
                        double exact = (c & 1) ? bias[o] : 0.0, bound = 0;
                        for (int k = 0; k < IC; k++) {
                            exact += (double)x[n * IC + k] * W[o * IC + k];
                            double qa = sa > 0 ? fabs(x[n * IC + k] / sa) : 0;
                            bound += qa / 2 + fabs((double)codes[o * IC + k]) / 2 + 0.25;
                        }
                        bound = bound * sa * q.scale[o] * 1.001 + 1e-5 * (1 + fabs(exact));
                        if (!(fabs(r[n * OC + o] - exact) <= bound)) bound_fail++;
                    }
                }
                free(codes);
                free(work);
                et_q8_free(&q);
                free(W); free(x); free(bias); free(y); free(r);
            }
    CHECK(mismatches == 0, "path %s: %ld of %ld runs differ from the scalar reference", et_q8_path_name(), mismatches, cases);
    CHECK(bound_fail == 0, "%ld outputs outside the int8 rounding bound", bound_fail);
    printf("int8 path %s: %ld runs bit-identical to the reference\n", et_q8_path_name(), cases);
    et_pool_destroy(p2);
    et_pool_destroy(p3);
}

static void codes_roundtrip(void) {
    et_error err = {0};
    uint64_t st = 7;
    int OC = 19, IC = 37;
    float *W = malloc(sizeof(float) * OC * IC);
    for (int i = 0; i < OC * IC; i++) W[i] = (float)et_test_frand(&st);
    et_q8_matrix a, b;
    CHECK(!et_q8_quantize(&a, W, OC, IC, &err), "%s", err.msg);
    int8_t *codes = malloc((size_t)OC * IC);
    et_q8_unpack(&a, codes);
    CHECK(!et_q8_from_codes(&b, codes, a.scale, OC, IC, &err), "%s", err.msg);
    CHECK(!memcmp(a.w, b.w, (size_t)a.OCp * a.ICp) && !memcmp(a.colsum, b.colsum, sizeof(int32_t) * a.OCp) &&
              !memcmp(a.scale, b.scale, sizeof(float) * a.OCp),
          "from_codes(unpack(q)) is not q");
    et_q8_free(&b);
    codes[5] = -128;
    CHECK(et_q8_from_codes(&b, codes, a.scale, OC, IC, &err) == ET_ERR_FORMAT && strstr(err.msg, "[0, 5]"), "-128: %s", err.msg);
    codes[5] = 0;
    float s3 = a.scale[3];
    a.scale[3] = -1.0f;
    CHECK(et_q8_from_codes(&b, codes, a.scale, OC, IC, &err) == ET_ERR_FORMAT && strstr(err.msg, "channel 3"), "scale: %s", err.msg);
    a.scale[3] = s3;
    W[2 * IC + 4] = NAN;
    CHECK(et_q8_quantize(&b, W, OC, IC, &err) == ET_ERR_NUMERIC && strstr(err.msg, "[2, 4]"), "NaN: %s", err.msg);
    et_q8_free(&a);
    free(codes);
    free(W);
}

/* every `step`-th text of a corpus / queries file (up to max) */
static void sample_texts(const char *path, int step, int max, char ***texts, int *n) {
    et_corpus c;
    et_error err = {0};
    if (et_corpus_read(path, NULL, &c, NULL, &err)) { CHECK(0, "%s", err.msg); return; }
    for (int32_t i = 0; i < c.n && *n < max; i += step) {
        *texts = realloc(*texts, sizeof(char *) * (size_t)(*n + 1));
        (*texts)[(*n)++] = strdup(c.text[i]);
    }
    et_corpus_free(&c);
}

static void quality_gate(const char *model_dir) {
    et_error err = {0};
    et_bert m;
    et_hf_info info;
    if (et_hf_load_ex(model_dir, &m, &info, &err)) { CHECK(0, "load %s: %s", model_dir, err.msg); return; }
    et_tokenizer *tok = et_hf_load_tokenizer(model_dir, &info, &m.cfg, NULL, 0, &err);
    if (!tok) { CHECK(0, "%s", err.msg); et_bert_free(&m); return; }
    const char *root = getenv("ET_EVAL_DATA");
    if (!root || !*root) root = "../shared/eval-data";
    static const char *sets[] = {"cranfield", "cisi", "cacm"};
    char **texts = NULL;
    int n = 0;
    char path[ET_PATH_MAX];
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/%s/corpus.jsonl", root, sets[s]);
        if (et_file_exists(path)) sample_texts(path, 23, n + 60, &texts, &n);
        snprintf(path, sizeof path, "%s/%s/queries.jsonl", root, sets[s]);
        if (et_file_exists(path)) sample_texts(path, 5, n + 20, &texts, &n);
    }
    const char *what = "eval sets";
    if (n == 0) {
        what = "the bundled sample corpus (no eval data; set ET_EVAL_DATA)";
        sample_texts("models/samples/debian/corpus.jsonl", 3, 120, &texts, &n);
    }
    int C = m.cfg.hidden_size;
    float *f32 = malloc(sizeof(float) * n * C), *i8 = malloc(sizeof(float) * n * C);
    et_pool *pool = et_pool_create(2, &err);
    et_encode_opts eo = {16, info.max_seq_length > 0 ? info.max_seq_length : 128, NULL, NULL};
    CHECK(!et_encode_texts(&m, tok, pool, (const char *const *)texts, (size_t)n, &eo, f32, &err), "%s", err.msg);
    m.int8 = 1;
    CHECK(!et_encode_texts(&m, tok, pool, (const char *const *)texts, (size_t)n, &eo, i8, &err), "%s", err.msg);
    double worst = 1, sum = 0;
    int differ = 0;
    for (int i = 0; i < n; i++) {
        double d = 0, na = 0, nb = 0;
        for (int j = 0; j < C; j++) {
            d += (double)f32[i * C + j] * i8[i * C + j];
            na += (double)f32[i * C + j] * f32[i * C + j];
            nb += (double)i8[i * C + j] * i8[i * C + j];
            differ |= f32[i * C + j] != i8[i * C + j];
        }
        double cs = d / sqrt(na * nb);
        sum += cs;
        if (!(cs >= worst)) worst = cs;
        CHECK(cs >= 0.995, "%s: text %d: cosine int8 vs fp32 %.5f < 0.995", model_dir, i, cs);
    }
    CHECK(differ, "%s: int8 embeddings equal the fp32 ones (int8 did not run)", model_dir);
    CHECK(n >= 100, "%d texts sampled", n);
    printf("%s, %s: %d texts, cosine int8 vs fp32 min %.5f mean %.5f (path %s)\n", model_dir, what, n, worst, sum / n,
           et_q8_path_name());
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(f32); free(i8);
    et_pool_destroy(pool);
    et_tokenizer_free(tok);
    et_bert_free(&m);
}

int main(void) {
    hand_case();
    shapes();
    codes_roundtrip();
    quality_gate("models/compact");
    /* (models/glove-bert-starter is not a gate: its one layer is an identity with zero Linear weights, so int8
     * changes nothing there) */
    /* every native int8 path this CPU runs (AMX's TDPBUSD, VNNI) forced in turn: the same bits (the shapes again) */
    static const char *const paths[] = {"amx-int8", "vnni"};
    for (int i = 0; i < 2; i++) {
        if (et_q8_force(paths[i]) != 0) continue;
        CHECK_STREQ(et_q8_path_name(), paths[i]);
        shapes();
    }
    et_q8_force(NULL);
    /* the scalar path is also the reference: forcing it gives the same bits (the shapes again) */
    if (strcmp(et_q8_path_name(), "scalar") && !et_kernels_force_path("scalar")) {
        CHECK_STREQ(et_q8_path_name(), "scalar");
        shapes();
        et_kernels_force_path(NULL);
    }
    return et_test_report("test_int8");
}
