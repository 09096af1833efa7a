/* test_hf.c - safetensors + Hugging Face folder loading/saving against fixtures written by
 * tools/make_test_model.py (torch does the f16/bf16 conversions and dumps sums and sampled
 * elements), a corpus of broken folders, f16/bf16 conversion tables, and save -> load round trips. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cJSON.h"
#include "fileio.h"
#include "hf.h"
#include "safetensors.h"
#include "et_test.h"

#define FX "tests/fixtures/hf"

static cJSON *load_json(const char *path) {
    char *buf;
    size_t n;
    et_error err = {0};
    if (et_read_file(path, 1 << 24, &buf, &n, &err)) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (!j) { fprintf(stderr, "%s: bad JSON\n", path); exit(1); }
    return j;
}

static int has_sub(const char *h, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(h + i, needle, k)) return 1;
    return 0;
}
static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float fromb(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static int jint(const cJSON *o, const char *k) { return cJSON_GetObjectItem(o, k)->valueint; }

/* ---------------------------------------------------------------- conversions */

static void test_conversion(void) {
    cJSON *j = load_json(FX "/conversion.json");
    const cJSON *rows = cJSON_GetObjectItem(j, "f32_f16_bf16_bits");
    int n = 0;
    for (const cJSON *r = rows->child; r; r = r->next, n++) {
        uint32_t f = (uint32_t)cJSON_GetArrayItem(r, 0)->valuedouble;
        uint16_t h = (uint16_t)cJSON_GetArrayItem(r, 1)->valueint, b = (uint16_t)cJSON_GetArrayItem(r, 2)->valueint;
        float x = fromb(f);
        uint16_t gh = et_f32_to_f16(x), gb = et_f32_to_bf16(x);
        if (isnan(x)) {
            CHECK((gh & 0x7c00) == 0x7c00 && (gh & 0x3ff), "f16 of NaN: %04x", gh);
            CHECK(isnan(et_bf16_to_f32(gb)), "bf16 of NaN: %04x", gb);
        } else {
            CHECK(gh == h, "f32 %08x (%g) -> f16 %04x, torch %04x", f, x, gh, h);
            CHECK(gb == b, "f32 %08x (%g) -> bf16 %04x, torch %04x", f, x, gb, b);
        }
    }
    CHECK(n > 50, "conversion rows %d", n);
    cJSON_Delete(j);
    /* every half / bfloat16 survives the round trip through f32 */
    for (uint32_t u = 0; u < 65536; u++) {
        float x = et_f16_to_f32((uint16_t)u);
        if (isnan(x)) CHECK((u & 0x7c00) == 0x7c00 && (u & 0x3ff), "f16 %04x -> NaN", u);
        else if (et_f32_to_f16(x) != u) { CHECK(0, "f16 %04x -> %g -> %04x", u, x, et_f32_to_f16(x)); break; }
        float y = et_bf16_to_f32((uint16_t)u);
        if (!isnan(y) && et_f32_to_bf16(y) != u) { CHECK(0, "bf16 %04x -> %g -> %04x", u, y, et_f32_to_bf16(y)); break; }
    }
    CHECK(et_f16_to_f32(0x3c00) == 1.0f && et_f16_to_f32(0x0001) == ldexpf(1, -24) && et_f16_to_f32(0xfbff) == -65504.0f, "f16 decode");
}

/* ---------------------------------------------------------------- good folders */

static void compare_expected(const char *dir, const et_bert *m, const et_hf_info *info) {
    char path[512];
    snprintf(path, sizeof path, "%s/expected.json", dir);
    cJSON *j = load_json(path);
    const cJSON *c = cJSON_GetObjectItem(j, "config"), *in = cJSON_GetObjectItem(j, "info");
    CHECK(m->cfg.vocab_size == jint(c, "vocab_size") && m->cfg.hidden_size == jint(c, "hidden_size") &&
              m->cfg.num_layers == jint(c, "num_layers") && m->cfg.num_heads == jint(c, "num_heads") &&
              m->cfg.intermediate_size == jint(c, "intermediate_size") && m->cfg.max_position == jint(c, "max_position") &&
              m->cfg.type_vocab_size == jint(c, "type_vocab_size"), "%s: config sizes", dir);
    CHECK(m->cfg.has_pooler == jint(c, "has_pooler"), "%s: has_pooler %d", dir, m->cfg.has_pooler);
    CHECK((int)m->cfg.pooling == jint(c, "pooling"), "%s: pooling %d", dir, m->cfg.pooling);
    CHECK(m->cfg.normalize == jint(c, "normalize"), "%s: normalize %d", dir, m->cfg.normalize);
    CHECK(m->cfg.layer_norm_eps == 1e-12f && m->cfg.hidden_dropout == 0.1f && m->cfg.pad_token_id == 0, "%s: eps/dropout/pad", dir);
    if (info) {
        CHECK(info->max_seq_length == jint(in, "max_seq_length"), "%s: max_seq_length %d", dir, info->max_seq_length);
        CHECK(info->do_lower_case == jint(in, "do_lower_case"), "%s: do_lower_case %d", dir, info->do_lower_case);
        CHECK(info->has_modules == jint(in, "has_modules"), "%s: has_modules", dir);
        CHECK(info->bert_prefix == jint(in, "bert_prefix"), "%s: bert_prefix %d", dir, info->bert_prefix);
        CHECK(strcmp(et_st_dtype_name((et_st_dtype)info->src_dtype), cJSON_GetObjectItem(in, "src_dtype")->valuestring) == 0,
              "%s: src dtype %s", dir, et_st_dtype_name((et_st_dtype)info->src_dtype));
        CHECK(info->n_ignored == jint(in, "n_ignored"), "%s: n_ignored %d (%s)", dir, info->n_ignored, info->ignored);
        for (const cJSON *e = cJSON_GetObjectItem(in, "ignored")->child; e; e = e->next)
            CHECK(strstr(info->ignored, e->valuestring), "%s: ignored list '%s' lacks %s", dir, info->ignored, e->valuestring);
    }
    const cJSON *ts = cJSON_GetObjectItem(j, "tensors");
    int nt = 0;
    for (const cJSON *t = ts->child; t; t = t->next, nt++) {
        const et_tensor_view *v = et_bert_find(m, t->string);
        CHECK(v != NULL, "%s: tensor %s not in model", dir, t->string);
        if (!v) continue;
        const cJSON *shape = cJSON_GetObjectItem(t, "shape");
        int nd = cJSON_GetArraySize(shape);
        CHECK(nd == v->ndim && v->shape[0] == cJSON_GetArrayItem(shape, 0)->valueint &&
                  (nd == 1 || v->shape[1] == cJSON_GetArrayItem(shape, 1)->valueint), "%s: %s shape", dir, t->string);
        const float *x = m->params + v->offset;
        double s = 0, a = 0;
        for (size_t i = 0; i < v->numel; i++) s += x[i], a += fabs(x[i]);
        double want = cJSON_GetObjectItem(t, "sum")->valuedouble;
        CHECK(fabs(s - want) <= 1e-9 * (1 + a), "%s: %s sum %.10g want %.10g", dir, t->string, s, want);
        for (const cJSON *p = cJSON_GetObjectItem(t, "samples")->child; p; p = p->next) {
            size_t i = (size_t)cJSON_GetArrayItem(p, 0)->valuedouble;
            uint32_t b = (uint32_t)cJSON_GetArrayItem(p, 1)->valuedouble;
            CHECK(i < v->numel && bits(x[i]) == b, "%s: %s[%zu] = %08x (%g), want %08x (%g)", dir, t->string, i, bits(x[i]), x[i], b, fromb(b));
        }
    }
    CHECK(nt == m->n_tensors, "%s: expected %d tensors, model has %d", dir, nt, m->n_tensors);
    cJSON_Delete(j);
}

static void test_good(const char *name) {
    char dir[256];
    snprintf(dir, sizeof dir, FX "/%s", name);
    et_bert m;
    et_hf_info info;
    et_error err = {0};
    et_status s = et_hf_load_ex(dir, &m, &info, &err);
    CHECK(s == ET_OK, "%s: load failed: %s", dir, err.msg);
    if (s) return;
    compare_expected(dir, &m, &info);
    et_bert_free(&m);
}

/* ---------------------------------------------------------------- folders in memory */

typedef struct { char *b[7]; size_t n[7]; } files7;
static const char *F7[7] = {"config.json", "vocab.txt", "model.safetensors", "modules.json", "1_Pooling/config.json",
                            "sentence_bert_config.json", "tokenizer_config.json"};

static void read7(const char *dir, files7 *f, et_hf_buffers *b) {
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 7; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, F7[i]);
        if (et_file_exists(p)) et_read_file(p, 1 << 26, &f->b[i], &f->n[i], NULL);
    }
    *b = (et_hf_buffers){f->b[0], f->n[0], f->b[1], f->n[1], f->b[2], f->n[2], f->b[3], f->n[3],
                         f->b[4], f->n[4], f->b[5], f->n[5], f->b[6], f->n[6]};
}
static void free7(files7 *f) { for (int i = 0; i < 7; i++) free(f->b[i]); }

static void test_buffers(const char *name) {
    char dir[256];
    snprintf(dir, sizeof dir, FX "/%s", name);
    files7 f;
    et_hf_buffers b;
    read7(dir, &f, &b);
    et_bert m;
    et_hf_info info;
    et_error err = {0};
    et_status s = et_hf_load_buffers(&b, &m, &info, &err);
    CHECK(s == ET_OK, "%s (buffers): %s", dir, err.msg);
    if (!s) { compare_expected(dir, &m, &info); et_bert_free(&m); }
    free7(&f);
}

/* ---------------------------------------------------------------- bad folders */

typedef struct {
    const char *dir;
    et_status code;
    const char *has[3];
} bad_case;

static const bad_case BAD[] = {
    {"truncated_st", ET_ERR_FORMAT, {"model.safetensors", "out of range", "truncated"}},
    {"header_len_too_big", ET_ERR_FORMAT, {"model.safetensors", "header length 1000000", NULL}},
    {"file_too_short", ET_ERR_FORMAT, {"model.safetensors", "too short", NULL}},
    {"header_bad_json", ET_ERR_FORMAT, {"model.safetensors", "not valid JSON", NULL}},
    {"header_not_object", ET_ERR_FORMAT, {"model.safetensors", "JSON object", NULL}},
    {"dtype_i64", ET_ERR_UNSUPPORTED, {"model.safetensors", "'embeddings.word_embeddings.weight'", "I64"}},
    {"dtype_unknown", ET_ERR_FORMAT, {"model.safetensors", "'embeddings.LayerNorm.bias'", "unknown dtype \"Q4\""}},
    {"missing_tensor", ET_ERR_MISMATCH, {"model.safetensors", "'encoder.layer.0.output.dense.bias' is missing", NULL}},
    {"wrong_shape", ET_ERR_MISMATCH,
     {"model.safetensors: tensor 'encoder.layer.0.intermediate.dense.weight' has shape [6, 4] but config.json implies [8, 4]", NULL, NULL}},
    {"offsets_overlap", ET_ERR_FORMAT, {"model.safetensors", "'encoder.layer.0.attention.self.value.bias'", "overlaps"}},
    {"offsets_out_of_range", ET_ERR_FORMAT, {"model.safetensors", "'pooler.dense.bias'", "out of range"}},
    {"offsets_size_mismatch", ET_ERR_FORMAT, {"model.safetensors", "'embeddings.LayerNorm.weight'", "'data_offsets'"}},
    {"shape_overflow", ET_ERR_FORMAT, {"model.safetensors", "'embeddings.LayerNorm.weight'", "overflow"}},
    {"duplicate_name", ET_ERR_FORMAT, {"model.safetensors", "'embeddings.LayerNorm.bias'", "twice"}},
    {"config_missing_hidden", ET_ERR_FORMAT, {"config.json", "field 'hidden_size' is missing", NULL}},
    {"config_hidden_string", ET_ERR_FORMAT, {"config.json", "field 'hidden_size' must be an integer, got a string", NULL}},
    {"config_relu", ET_ERR_UNSUPPORTED, {"config.json", "'hidden_act'", "relu"}},
    {"config_distilbert", ET_ERR_UNSUPPORTED, {"config.json", "'model_type'", "distilbert"}},
    {"config_bad_json", ET_ERR_FORMAT, {"config.json", "not valid JSON", "line 3"}},
    {"config_heads", ET_ERR_FORMAT, {"config.json", "'num_attention_heads'", NULL}},
    {"vocab_mismatch", ET_ERR_MISMATCH, {"vocab.txt has 9 tokens but config.json vocab_size is 10", NULL, NULL}},
    {"missing_vocab", ET_ERR_IO, {"vocab.txt", NULL, NULL}},
    {"pooling_max", ET_ERR_UNSUPPORTED, {"1_Pooling/config.json", "'pooling_mode_max_tokens'", NULL}},
    {"pooling_dim", ET_ERR_MISMATCH, {"1_Pooling/config.json", "'word_embedding_dimension'", NULL}},
    {"modules_dense", ET_ERR_UNSUPPORTED, {"modules.json", "module 2", "sentence_transformers.models.Dense"}},
    {"extra_layer", ET_ERR_MISMATCH, {"model.safetensors", "'encoder.layer.1.", "num_hidden_layers 1"}},
    {"nan_weight", ET_ERR_NUMERIC, {"model.safetensors", "'encoder.layer.0.output.LayerNorm.weight' element 0 is NaN", NULL}},
    {"pytorch_bin_only", ET_ERR_UNSUPPORTED, {"model.safetensors", "pytorch_model.bin", NULL}},
};

static void test_bad(void) {
    et_bert m;
    et_error err = {0};
    et_status s = et_hf_load(FX "/bad/ok", &m, &err);
    CHECK(s == ET_OK, "bad/ok (the control) must load: %s", err.msg);
    if (!s) {
        CHECK(m.cfg.normalize == 1 && m.cfg.pooling == ET_POOL_MEAN && !m.cfg.has_pooler, "bad/ok flags");
        et_bert_free(&m);
    }
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        const bad_case *c = &BAD[i];
        char dir[256];
        snprintf(dir, sizeof dir, FX "/bad/%s", c->dir);
        CHECK(et_dir_exists(dir), "fixture %s missing (run tools/make_test_model.py)", dir);
        et_error_clear(&err);
        s = et_hf_load(dir, &m, &err);
        CHECK(s == c->code, "%s: got %s (%d), want %s: %s", c->dir, et_status_name(s), s, et_status_name(c->code), err.msg);
        CHECK(strstr(err.msg, dir) != NULL, "%s: message does not name the folder: %s", c->dir, err.msg);
        for (int k = 0; k < 3 && c->has[k]; k++) CHECK(strstr(err.msg, c->has[k]), "%s: message lacks \"%s\": %s", c->dir, c->has[k], err.msg);
        CHECK(m.params == NULL && m.tensors == NULL, "%s: model not left empty", c->dir);
        if (s == ET_OK) et_bert_free(&m);
        if (getenv("ET_VERBOSE")) printf("  %-22s %s\n", c->dir, err.msg);

        /* the same bytes through the in-memory loader */
        files7 f;
        et_hf_buffers b;
        read7(dir, &f, &b);
        et_error_clear(&err);
        s = et_hf_load_buffers(&b, &m, NULL, &err);
        int missing_file = !strcmp(c->dir, "missing_vocab") || !strcmp(c->dir, "pytorch_bin_only");
        CHECK(s == (missing_file ? ET_ERR_IO : c->code), "%s (buffers): got %s: %s", c->dir, et_status_name(s), err.msg);
        if (!missing_file)
            for (int k = 0; k < 3 && c->has[k]; k++)
                CHECK(strstr(err.msg, c->has[k]), "%s (buffers): message lacks \"%s\": %s", c->dir, c->has[k], err.msg);
        if (s == ET_OK) et_bert_free(&m);
        free7(&f);
    }
    s = et_hf_load(FX "/bad/no_such_folder", &m, &err);
    CHECK(s == ET_ERR_IO && strstr(err.msg, "no_such_folder"), "missing folder: %s", err.msg);
}

/* ---------------------------------------------------------------- round trips */

static void rm_folder(const char *dir) {
    static const char *names[] = {"config.json", "vocab.txt", "model.safetensors", "tokenizer_config.json", "special_tokens_map.json",
                                  "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json"};
    char p[700];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) { snprintf(p, sizeof p, "%s/%s", dir, names[i]); remove(p); }
    snprintf(p, sizeof p, "%s/1_Pooling", dir); rmdir(p);
    snprintf(p, sizeof p, "%s/2_Normalize", dir); rmdir(p);
    rmdir(dir);
}

static void test_roundtrip(const char *name, const char *tmp) {
    char src[256], dst[512], vocab[300];
    snprintf(src, sizeof src, FX "/%s", name);
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", src);
    et_bert a;
    et_hf_info ia;
    et_error err = {0};
    if (et_hf_load_ex(src, &a, &ia, &err)) { CHECK(0, "%s: %s", src, err.msg); return; }
    const int dts[3] = {ET_ST_F32, ET_ST_F16, ET_ST_BF16};
    for (int d = 0; d < 3; d++) {
        snprintf(dst, sizeof dst, "%s/%s_%s/sub", tmp, name, et_st_dtype_name((et_st_dtype)dts[d]));
        et_hf_save_opts o = {.dtype = dts[d], .vocab_path = vocab, .max_seq_length = ia.max_seq_length, .do_lower_case = ia.do_lower_case};
        char stale[700] = "";
        if (d == 0) { /* a killed earlier save left a temp file in the folder: saving again clears it */
            char pool[600];
            snprintf(pool, sizeof pool, "%s/1_Pooling", dst);
            et_mkdir_p(pool, &err);
            snprintf(stale, sizeof stale, "%s/config.json.tmp-0", pool);
            et_write_file_atomic(stale, "{", 1, &err);
        }
        et_status s = et_hf_save(dst, &a, &o, &err);
        CHECK(s == ET_OK, "save %s: %s", dst, err.msg);
        if (stale[0]) CHECK(!et_file_exists(stale), "save left the stale temp file %s", stale);
        if (s) continue;
        et_bert b;
        et_hf_info ib;
        s = et_hf_load_ex(dst, &b, &ib, &err);
        CHECK(s == ET_OK, "reload %s: %s", dst, err.msg);
        if (s) continue;
        CHECK(memcmp(&a.cfg, &b.cfg, sizeof a.cfg) == 0, "%s: config differs after round trip", dst);
        CHECK(ib.max_seq_length == ia.max_seq_length && ib.do_lower_case == ia.do_lower_case && ib.has_modules == 1 &&
                  ib.bert_prefix == 0 && ib.n_ignored == 0 && ib.src_dtype == dts[d], "%s: info after round trip", dst);
        CHECK(a.n_params == b.n_params, "%s: n_params", dst);
        size_t bad = 0;
        for (size_t i = 0; i < a.n_params && i < b.n_params; i++) {
            float want = a.params[i];
            if (dts[d] == ET_ST_F16) want = et_f16_to_f32(et_f32_to_f16(want));
            if (dts[d] == ET_ST_BF16) want = et_bf16_to_f32(et_f32_to_bf16(want));
            if (bits(want) != bits(b.params[i])) bad++;
            if (dts[d] != ET_ST_F32) {
                float tol = (dts[d] == ET_ST_F16 ? 1.0f / 2048 : 1.0f / 256) * fabsf(a.params[i]) + 6e-8f;
                if (fabsf(b.params[i] - a.params[i]) > tol) bad++;
            }
        }
        CHECK(bad == 0, "%s: %zu parameters differ after the round trip", dst, bad);
        /* the saved header: 8-aligned, metadata first, no 'bert.' names */
        char p[600], *buf;
        size_t n;
        snprintf(p, sizeof p, "%s/model.safetensors", dst);
        if (!et_read_file(p, 1 << 26, &buf, &n, &err)) {
            uint64_t hl;
            memcpy(&hl, buf, 8);
            CHECK(hl % 8 == 0, "%s: header length %llu not a multiple of 8", p, (unsigned long long)hl);
            CHECK(strncmp(buf + 8, "{\"__metadata__\":{\"format\":\"pt\"},\"embeddings.LayerNorm.bias\":", 60) == 0, "%s: header start %.60s", p, buf + 8);
            CHECK(!has_sub(buf + 8, hl, "bert."), "%s: 'bert.' prefix written", p);
            free(buf);
        }
        snprintf(p, sizeof p, "%s/2_Normalize", dst);
        CHECK(et_dir_exists(p) == a.cfg.normalize, "%s: 2_Normalize folder iff normalize", dst);
        snprintf(p, sizeof p, "%s/config.json", dst);
        cJSON *cj = load_json(p);
        CHECK(cJSON_GetObjectItem(cj, "layer_norm_eps")->valuedouble == 1e-12 && cJSON_IsArray(cJSON_GetObjectItem(cj, "architectures")) &&
                  !strcmp(cJSON_GetObjectItem(cj, "torch_dtype")->valuestring, d == 0 ? "float32" : d == 1 ? "float16" : "bfloat16"),
              "%s: config.json content", p);
        cJSON_Delete(cj);
        /* the in-memory loader reads the same folder */
        files7 f;
        et_hf_buffers bb;
        read7(dst, &f, &bb);
        et_bert c;
        s = et_hf_load_buffers(&bb, &c, NULL, &err);
        CHECK(s == ET_OK && c.n_params == b.n_params && !memcmp(c.params, b.params, b.n_params * 4), "%s (buffers): %s", dst, err.msg);
        if (!s) et_bert_free(&c);
        free7(&f);
        et_bert_free(&b);
        /* saving over an existing folder works (atomic replace) */
        if (d == 0) {
            s = et_hf_save(dst, &a, &o, &err);
            CHECK(s == ET_OK, "re-save %s: %s", dst, err.msg);
            snprintf(p, sizeof p, "%s/model.safetensors.tmp-0", dst);
            CHECK(!et_file_exists(p), "temp file left behind: %s", p);
        }
        rm_folder(dst);
        char *slash = strrchr(dst, '/');
        *slash = 0;
        rmdir(dst);
    }
    /* old sentence-transformers layout: the BERT files in 0_Transformer/ */
    if (!strcmp(name, "good_f32")) {
        char p[700], q[720];
        snprintf(dst, sizeof dst, "%s/old/0_Transformer", tmp);
        et_hf_save_opts o = {.vocab_path = vocab};
        CHECK(et_hf_save(dst, &a, &o, &err) == ET_OK, "save %s: %s", dst, err.msg);
        snprintf(p, sizeof p, "%s/old/modules.json", tmp);
        const char *mj = "[{\"idx\":0,\"name\":\"0\",\"path\":\"0_Transformer\",\"type\":\"sentence_transformers.models.Transformer\"},"
                         "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"}]";
        CHECK(et_write_file_atomic(p, mj, strlen(mj), &err) == ET_OK, "%s", err.msg);
        snprintf(p, sizeof p, "%s/old/1_Pooling", tmp);
        et_mkdir_p(p, &err);
        snprintf(q, sizeof q, "%s/config.json", p);
        const char *pj = "{\"word_embedding_dimension\": 24, \"pooling_mode_cls_token\": true}";
        CHECK(et_write_file_atomic(q, pj, strlen(pj), &err) == ET_OK, "%s", err.msg);
        snprintf(p, sizeof p, "%s/old", tmp);
        et_bert b;
        et_hf_info ib;
        et_status s = et_hf_load_ex(p, &b, &ib, &err);
        CHECK(s == ET_OK, "old layout: %s", err.msg);
        if (!s) {
            CHECK(b.cfg.pooling == ET_POOL_CLS && !b.cfg.normalize && !strcmp(ib.transformer_dir, "0_Transformer") &&
                      !memcmp(a.params, b.params, a.n_params * 4), "old layout content");
            et_bert_free(&b);
        }
        remove(q);
        snprintf(p, sizeof p, "%s/old/1_Pooling", tmp); rmdir(p);
        snprintf(p, sizeof p, "%s/old/modules.json", tmp); remove(p);
        rm_folder(dst);
        snprintf(p, sizeof p, "%s/old", tmp); rmdir(p);
    }
    /* a WordPiece vocab copied under another name (the wasm trainer's OUT.vocab.txt) is a vocab.txt: it was
     * taken for a SentencePiece model ('not a sentencepiece model') and would have been saved under its own name */
    if (!strcmp(name, "good_f32")) {
        char vc[700], p[720];
        snprintf(vc, sizeof vc, "%s/out.vocab.txt", tmp);
        char *vb = NULL;
        size_t vl = 0;
        CHECK(et_read_file(vocab, 1 << 24, &vb, &vl, &err) == ET_OK, "%s", err.msg);
        CHECK(et_write_file_atomic(vc, vb, vl, &err) == ET_OK, "%s", err.msg);
        free(vb);
        snprintf(dst, sizeof dst, "%s/renamed", tmp);
        et_hf_save_opts o = {.vocab_path = vc};
        et_status s = et_hf_save(dst, &a, &o, &err);
        CHECK(s == ET_OK, "save with a vocab named out.vocab.txt: %s", err.msg);
        snprintf(p, sizeof p, "%s/vocab.txt", dst);
        CHECK(et_file_exists(p), "saved as vocab.txt");
        snprintf(p, sizeof p, "%s/out.vocab.txt", dst);
        CHECK(!et_file_exists(p), "not saved under the copy's name");
        et_bert b;
        et_hf_info ib;
        if (!s) {
            s = et_hf_load_ex(dst, &b, &ib, &err);
            CHECK(s == ET_OK, "reload: %s", err.msg);
            if (!s) et_bert_free(&b);
        }
        remove(vc);
        rm_folder(dst);
    }
    /* a vocab that does not match is refused before anything is written */
    snprintf(dst, sizeof dst, "%s/badvocab", tmp);
    et_hf_save_opts o = {.vocab_buf = "[PAD]\n[UNK]\n", .vocab_len = 12};
    et_status s = et_hf_save(dst, &a, &o, &err);
    CHECK(s == ET_ERR_MISMATCH && strstr(err.msg, "2 tokens") && !et_dir_exists(dst), "save with a wrong vocab: %s", err.msg);
    et_bert_free(&a);
}

/* ---------------------------------------------------------------- fileio + raw safetensors */

static void test_fileio(const char *tmp) {
    et_error err = {0};
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/a/b/c", tmp);
    CHECK(et_mkdir_p(p, &err) == ET_OK && et_dir_exists(p), "mkdir -p: %s", err.msg);
    CHECK(et_mkdir_p(p, &err) == ET_OK, "mkdir -p again: %s", err.msg);
    CHECK(et_path_join(q, sizeof q, p, "x.txt", &err) == ET_OK && strlen(q) == strlen(p) + 6, "join");
    char small[8];
    CHECK(et_path_join(small, sizeof small, "abcdef", "ghi", &err) == ET_ERR_ARG, "join overflow");
    CHECK(et_path_join(small, sizeof small, "a/", "b", &err) == ET_OK && !strcmp(small, "a/b"), "join slash: %s", small);
    CHECK(et_write_file_atomic(q, "hello", 5, &err) == ET_OK, "atomic write: %s", err.msg);
    CHECK(et_write_file_atomic(q, "bye", 3, &err) == ET_OK, "atomic rewrite: %s", err.msg);
    char *buf;
    size_t n;
    CHECK(et_read_file(q, 100, &buf, &n, &err) == ET_OK && n == 3 && !strcmp(buf, "bye"), "read back");
    free(buf);
    CHECK(et_read_file(q, 2, &buf, &n, &err) == ET_ERR_FORMAT && strstr(err.msg, "x.txt"), "size limit: %s", err.msg);
    CHECK(et_mkdir_p(q, &err) == ET_ERR_IO, "mkdir over a file: %s", err.msg);
    snprintf(small, sizeof small, "%s", "");
    char r[600];
    snprintf(r, sizeof r, "%s/nodir/y.txt", tmp);
    CHECK(et_write_file_atomic(r, "x", 1, &err) == ET_ERR_IO && strstr(err.msg, "y.txt"), "write into missing dir: %s", err.msg);
    remove(q);
    /* stale temp files of a killed writer: NAME.tmp-N removed (also one folder down with depth 1), others kept */
    {
        const char *stale[] = {"m.safetensors.tmp-0", "x.json.tmp-17"}, *keep[] = {"notes.tmp-x", "a.tmp-", "plain.txt", "v.tmp-1.bak"};
        char f[700];
        for (int i = 0; i < 2; i++) { snprintf(f, sizeof f, "%s/%s", p, stale[i]); et_write_file_atomic(f, "x", 1, &err); }
        for (int i = 0; i < 4; i++) { snprintf(f, sizeof f, "%s/%s", p, keep[i]); et_write_file_atomic(f, "x", 1, &err); }
        snprintf(f, sizeof f, "%s/a/b/deep.json.tmp-3", tmp);
        et_write_file_atomic(f, "x", 1, &err);
        snprintf(r, sizeof r, "%s/a/b", tmp);
        CHECK(et_remove_stale_tmp(r, 0, &err) == ET_OK && !et_file_exists(f), "remove stale tmp: %s", err.msg);
        snprintf(f, sizeof f, "%s/%s", p, stale[0]);
        CHECK(et_file_exists(f), "depth 0 leaves subfolders alone");
        CHECK(et_remove_stale_tmp(r, 1, &err) == ET_OK, "remove stale tmp, depth 1: %s", err.msg);
        for (int i = 0; i < 2; i++) { snprintf(f, sizeof f, "%s/%s", p, stale[i]); CHECK(!et_file_exists(f), "stale %s removed", stale[i]); }
        for (int i = 0; i < 4; i++) { snprintf(f, sizeof f, "%s/%s", p, keep[i]); CHECK(et_file_exists(f), "%s kept", keep[i]); remove(f); }
        snprintf(f, sizeof f, "%s/missing", tmp);
        CHECK(et_remove_stale_tmp(f, 1, &err) == ET_OK, "a missing folder is not an error");
    }
    snprintf(p, sizeof p, "%s/a/b/c", tmp); rmdir(p);
    snprintf(p, sizeof p, "%s/a/b", tmp); rmdir(p);
    snprintf(p, sizeof p, "%s/a", tmp); rmdir(p);

    /* writer: 0-d and empty tensors, many shapes, header padding */
    snprintf(p, sizeof p, "%s/t.safetensors", tmp);
    float one = 3.5f, v[6] = {1, -2, 3.25f, 1e-6f, 65536.0f, -0.0f};
    et_st_out outs[3] = {{"z.scalar", &one, 0, {0}}, {"a.mat", v, 2, {2, 3}}, {"m.empty", v, 2, {0, 5}}};
    CHECK(et_st_write(p, outs, 3, ET_ST_F16, &err) == ET_OK, "st write: %s", err.msg);
    et_st_file f;
    CHECK(et_st_open(&f, p, 0, &err) == ET_OK, "st open: %s", err.msg);
    CHECK(f.n == 3, "st n %d", f.n);
    const et_st_tensor *t = et_st_find(&f, "a.mat");
    float got[6];
    CHECK(t && t->dtype == ET_ST_F16 && t->ndim == 2 && t->numel == 6 && et_st_read_f32(&f, t, got, &err) == ET_OK, "st a.mat");
    CHECK(got[0] == 1 && got[1] == -2 && got[2] == 3.25f && isinf(got[4]) && bits(got[5]) == 0x80000000u, "st values");
    t = et_st_find(&f, "z.scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && et_st_read_f32(&f, t, got, &err) == ET_OK && got[0] == 3.5f, "st scalar");
    t = et_st_find(&f, "m.empty");
    CHECK(t && t->numel == 0 && t->begin == t->end, "st empty");
    et_st_close(&f);
    outs[2].name = "a.mat";
    CHECK(et_st_write(p, outs, 3, ET_ST_F32, &err) == ET_ERR_ARG && strstr(err.msg, "a.mat"), "duplicate write: %s", err.msg);
    remove(p);
    CHECK(et_st_dtype_parse("bf16") == ET_ST_BF16 && et_st_dtype_parse("float16") == ET_ST_F16 && et_st_dtype_parse("q4") == -1, "dtype parse");
    CHECK(et_hf_vocab_count("a\nb\nc", 5) == 3 && et_hf_vocab_count("a\nb\n", 4) == 2 && et_hf_vocab_count("", 0) == 0 &&
              et_hf_vocab_count("a\n\nb\n", 5) == 3 && et_hf_vocab_count("a\r\nb\r\n\r\n\n", 9) == 2, "vocab count");
}

/* random byte flips / truncations of a good folder: any outcome but a crash (run under ASan) */
static void test_mutations(void) {
    files7 f;
    et_hf_buffers b;
    read7(FX "/bad/ok", &f, &b);
    unsigned char *st = malloc(f.n[2]);
    char *cfg = malloc(f.n[0] + 1);
    uint64_t r = 0x9e3779b97f4a7c15ull;
    int ok = 0, failed = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(st, f.b[2], f.n[2]);
        memcpy(cfg, f.b[0], f.n[0]);
        et_hf_buffers bb = b;
        bb.safetensors = st;
        bb.config_json = cfg;
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            if (it % 3 == 2) cfg[r % f.n[0]] = (char)(r >> 32);
            else {
                size_t at = it % 2 ? 8 + (r % 600) : r % f.n[2]; /* mostly the header */
                if (at < f.n[2]) st[at] = (unsigned char)(r >> 40);
            }
        }
        if (it % 10 == 9) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; bb.safetensors_len = r % f.n[2]; }
        et_bert m;
        et_error err = {0};
        et_status s = et_hf_load_buffers(&bb, &m, NULL, &err);
        if (s == ET_OK) { ok++; et_bert_free(&m); }
        else { failed++; CHECK(err.msg[0] != 0, "mutation %d: empty message", it); }
    }
    CHECK(ok + failed == 2000 && failed > 1000, "mutations: %d ok %d failed", ok, failed);
    free(st);
    free(cfg);
    free7(&f);
}

/* ET_HF_SAVE_DIR=dir: also save the fixtures there (kept) for tools/check_hf_roundtrip.py */
static void save_for_python(const char *out) {
    static const char *src[5] = {"good_f32", "good_f16_bert", "good_bf16_plain", "good_f32", "good_f32"};
    static const int dt[5] = {ET_ST_F32, ET_ST_F16, ET_ST_BF16, ET_ST_F16, ET_ST_BF16};
    for (int i = 0; i < 5; i++) {
        char dir[256], vocab[300], dst[600];
        snprintf(dir, sizeof dir, FX "/%s", src[i]);
        snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
        snprintf(dst, sizeof dst, "%s/%s%s%s", out, src[i], i >= 3 ? "." : "", i >= 3 ? et_st_dtype_name((et_st_dtype)dt[i]) : "");
        et_bert m;
        et_hf_info info;
        et_error err = {0};
        et_status s = et_hf_load_ex(dir, &m, &info, &err);
        if (!s) {
            et_hf_save_opts o = {.dtype = dt[i], .vocab_path = vocab, .max_seq_length = info.max_seq_length, .do_lower_case = info.do_lower_case};
            s = et_hf_save(dst, &m, &o, &err);
            et_bert_free(&m);
        }
        CHECK(s == ET_OK, "save for python %s: %s", dst, err.msg);
        if (!s) printf("saved %s (%s)\n", dst, et_st_dtype_name((et_st_dtype)dt[i]));
    }
}

int main(void) {
    char tmp[] = "/tmp/et_test_hf_XXXXXX";
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    test_conversion();
    test_good("good_f32");
    test_good("good_f16_bert");
    test_good("good_bf16_plain");
    test_buffers("good_f32");
    test_buffers("good_f16_bert");
    test_bad();
    test_mutations();
    test_roundtrip("good_f32", tmp);
    test_roundtrip("good_f16_bert", tmp);
    test_roundtrip("good_bf16_plain", tmp);
    test_fileio(tmp);
    if (getenv("ET_HF_SAVE_DIR")) save_for_python(getenv("ET_HF_SAVE_DIR"));
    rmdir(tmp);
    return et_test_report("test_hf");
}
