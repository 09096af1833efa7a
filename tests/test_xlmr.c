/* test_xlmr.c - an XLM-R-shaped sentence-transformers folder (tests/fixtures/xlmr, tools/gen_xlmr_fixture.py)
 * with the SentencePiece tokenizer of tests/fixtures/spm/xlmr:
 *   - the loader: model_type xlm-roberta, positions from pad_token_id + 1, "roberta." prefix, ignored lm_head,
 *     a padded embedding table (3010 rows, 3002 tokens), the tokenizer chosen from the folder's files
 *   - ids (<s> ... </s>) and normalized mean-pooled embeddings vs the float64 PyTorch reference (<= 1e-4)
 *   - save (tokenizer files copied, XLMRobertaModel config) and reload give the same embeddings
 *   - without tokenizer.json the folder's sentencepiece.bpe.model is used (same ids for these texts) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encode.h"
#include "fileio.h"
#include "hf.h"
#include "et_test.h"

#define FX "tests/fixtures/xlmr"
#define MAXT 16


static int copy_file(const char *src, const char *dst) {
    char *b;
    size_t n;
    et_error e = {0};
    if (et_read_file(src, (size_t)64 << 20, &b, &n, &e) || et_write_file_atomic(dst, b, n, &e)) {
        fprintf(stderr, "copy %s -> %s: %s\n", src, dst, e.msg);
        return 0;
    }
    free(b);
    return 1;
}

/* scratch folder = fixture model + tokenizer files */
static int make_folder(const char *dir, int with_json) {
    static const char *const files[] = {"config.json", "model.safetensors", "modules.json", "sentence_bert_config.json",
                                        "1_Pooling/config.json"};
    char a[512], b[512];
    et_error e = {0};
    snprintf(a, sizeof a, "%s/1_Pooling", dir);
    snprintf(b, sizeof b, "%s/2_Normalize", dir);
    if (et_mkdir_p(a, &e) || et_mkdir_p(b, &e)) return 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(a, sizeof a, FX "/model/%s", files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        if (!copy_file(a, b)) return 0;
    }
    snprintf(b, sizeof b, "%s/sentencepiece.bpe.model", dir);
    if (!copy_file("tests/fixtures/spm/xlmr/sentencepiece.bpe.model", b)) return 0;
    snprintf(b, sizeof b, "%s/tokenizer.json", dir);
    if (with_json && !copy_file("tests/fixtures/spm/xlmr/tokenizer.json", b)) return 0;
    return 1;
}

typedef struct {
    int n, C;
    char *text[MAXT];
    int32_t ids[MAXT][64];
    int nids[MAXT];
    float emb[MAXT][64];
} expected;

static int read_expected(expected *x) {
    FILE *f = fopen(FX "/expected.txt", "r");
    if (!f) return 0;
    static char line[1 << 14];
    x->n = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "t ", 2) && x->n + 1 < MAXT) x->text[++x->n] = strdup(line + 2);
        else if (!strncmp(line, "ids ", 4) && x->n >= 0) {
            char *p = line + 4, *end;
            for (x->nids[x->n] = 0; x->nids[x->n] < 64; x->nids[x->n]++, p = end) {
                long v = strtol(p, &end, 10);
                if (end == p) break;
                x->ids[x->n][x->nids[x->n]] = (int32_t)v;
            }
        } else if (!strncmp(line, "emb ", 4) && x->n >= 0) {
            char *p = line + 4, *end;
            for (x->C = 0; x->C < 64; x->C++, p = end) {
                float v = strtof(p, &end);
                if (end == p) break;
                x->emb[x->n][x->C] = v;
            }
        }
    }
    fclose(f);
    x->n++;
    return x->n > 0;
}

/* load dir, check ids and embeddings against x; returns the embeddings (caller frees) */
static float *check_folder(const char *dir, const expected *x, const char *want_tok, const char *what) {
    et_error err = {0};
    et_bert m;
    et_hf_info info;
    if (et_hf_load_ex(dir, &m, &info, &err)) {
        CHECK(0, "%s: load: %s", what, err.msg);
        return NULL;
    }
    CHECK(m.cfg.arch == ET_ARCH_XLMR && m.cfg.position_offset == 2 && m.cfg.vocab_size == 3010 && m.cfg.type_vocab_size == 1,
          "%s: config (arch %d, offset %d, V %d)", what, m.cfg.arch, m.cfg.position_offset, m.cfg.vocab_size);
    CHECK(info.max_seq_length == 32, "%s: max_seq_length %d (max_position 34 - offset 2)", what, info.max_seq_length);
    char tp[4096];
    et_tokenizer *tok = et_hf_load_tokenizer(dir, &info, &m.cfg, tp, sizeof tp, &err);
    if (!tok) {
        CHECK(0, "%s: tokenizer: %s", what, err.msg);
        et_bert_free(&m);
        return NULL;
    }
    CHECK(strstr(tp, want_tok) != NULL, "%s: tokenizer from %s, want %s", what, tp, want_tok);
    CHECK(et_tokenizer_vocab_size(tok) == 3002 && et_tokenizer_is_sentencepiece(tok), "%s: tokenizer size %d", what,
          et_tokenizer_vocab_size(tok));
    for (int i = 0; i < x->n; i++) {
        int32_t ids[64], mask[64];
        int T = 0;
        const char *one[1] = {x->text[i]};
        et_status s = et_tokenize_batch(tok, one, 1, 32, 0, ids, mask, &T, &err);
        int same = s == ET_OK && T == x->nids[i];
        for (int k = 0; same && k < T; k++) same = ids[k] == x->ids[i][k];
        CHECK(same, "%s: ids of text %d '%s' (T %d, want %d)", what, i, x->text[i], T, x->nids[i]);
    }
    et_pool *pool = et_pool_create(2, &err);
    float *out = malloc(sizeof(float) * (size_t)x->n * m.cfg.hidden_size);
    et_encode_opts eo = {.batch = 3, .max_len = 64};
    if (et_encode_texts(&m, tok, pool, (const char *const *)x->text, (size_t)x->n, &eo, out, &err)) {
        CHECK(0, "%s: encode: %s", what, err.msg);
    } else {
        double worst = 0;
        for (int i = 0; i < x->n; i++)
            for (int j = 0; j < x->C; j++) worst = fmax(worst, fabs(out[i * x->C + j] - x->emb[i][j]));
        CHECK(worst <= 1e-4, "%s: embeddings differ from PyTorch by %.3g", what, worst);
        printf("%-28s max |C - torch| = %.2e over %d texts x %d dims\n", what, worst, x->n, x->C);
    }
    et_pool_destroy(pool);
    et_tokenizer_free(tok);
    et_bert_free(&m);
    return out;
}

int main(void) {
    expected x;
    if (!read_expected(&x)) {
        fprintf(stderr, "FAIL: cannot read " FX "/expected.txt (run from the repo root)\n");
        return 1;
    }
    char tmpl[] = "/tmp/et_xlmr_XXXXXX";
    char *root = mkdtemp(tmpl);
    if (!root) return 1;
    char d1[256], d2[256], d3[256];
    snprintf(d1, sizeof d1, "%s/json", root);
    snprintf(d2, sizeof d2, "%s/saved", root);
    snprintf(d3, sizeof d3, "%s/model_only", root);
    if (!make_folder(d1, 1) || !make_folder(d3, 0)) return 1;

    float *e1 = check_folder(d1, &x, "tokenizer.json", "tokenizer.json folder");
    float *e3 = check_folder(d3, &x, "sentencepiece.bpe.model", "sentencepiece.bpe.model folder");

    /* info: the lm_head tensor is ignored, the prefix recorded */
    et_error err = {0};
    et_bert m;
    et_hf_info info;
    if (!et_hf_load_ex(d1, &m, &info, &err)) {
        CHECK(info.n_ignored == 1 && strstr(info.ignored, "lm_head.bias") && info.bert_prefix == 1, "ignored '%s' (%d), prefix %d",
              info.ignored, info.n_ignored, info.bert_prefix);
        /* save with the tokenizer file: copied with the files beside it; reload gives the same embeddings */
        char tp[4096];
        et_tokenizer *tok = et_hf_load_tokenizer(d1, &info, &m.cfg, tp, sizeof tp, &err);
        et_hf_save_opts so = {.vocab_path = tp, .max_seq_length = info.max_seq_length};
        CHECK(tok && et_hf_save(d2, &m, &so, &err) == ET_OK, "save: %s", err.msg);
        char p[512];
        snprintf(p, sizeof p, "%s/tokenizer.json", d2);
        CHECK(et_file_exists(p), "saved tokenizer.json");
        snprintf(p, sizeof p, "%s/sentencepiece.bpe.model", d2);
        CHECK(et_file_exists(p), "saved sentencepiece.bpe.model (beside tokenizer.json)");
        snprintf(p, sizeof p, "%s/vocab.txt", d2);
        CHECK(!et_file_exists(p), "no vocab.txt written for a SentencePiece model");
        snprintf(p, sizeof p, "%s/config.json", d2);
        char *cfg = NULL;
        size_t cl = 0;
        CHECK(!et_read_file(p, 1 << 20, &cfg, &cl, &err) && strstr(cfg, "\"xlm-roberta\"") && strstr(cfg, "XLMRobertaModel") &&
                  strstr(cfg, "\"pad_token_id\": 1"),
              "saved config.json: %s", cfg ? cfg : err.msg);
        free(cfg);
        et_tokenizer_free(tok);
        et_bert_free(&m);
        float *e2 = check_folder(d2, &x, "tokenizer.json", "saved + reloaded");
        if (e1 && e2) CHECK(!memcmp(e1, e2, sizeof(float) * (size_t)x.n * x.C), "reloaded embeddings are bit-identical");
        free(e2);
    } else {
        CHECK(0, "load: %s", err.msg);
    }
    if (e1 && e3) CHECK(!memcmp(e1, e3, sizeof(float) * (size_t)x.n * x.C), ".model and tokenizer.json folders agree");
    free(e1);
    free(e3);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", root);
    for (int i = 0; i < x.n; i++) free(x.text[i]);
    return et_test_report("test_xlmr");
}
