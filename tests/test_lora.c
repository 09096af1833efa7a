/* test_lora.c - PEFT LoRA adapters (lora.h) against an independent plain-torch reader: tests/fixtures/lora/emb.txt
 * holds the embeddings tools/lora_reader.py gives for the tiny model tests/fixtures/e2e/model without and with the
 * adapter tests/fixtures/lora/adapter (W + (alpha/r) B A, r 4, alpha 8, every Linear layer of both layers adapted);
 * made by tools/gen_lora_fixture.py. Then the refusals (other PEFT types, DoRA, bias, an A without its B, a wrong
 * rank, a layer the model does not have) with their messages, and that a refused merge leaves the model unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "hf.h"
#include "lora.h"
#include "safetensors.h"
#include "et_test.h"

#define BASE "tests/fixtures/e2e/model"
#define ADAPTER "tests/fixtures/lora/adapter"

/* pooled embeddings of the fixture's ids through m; returns max |got - ref| */
static double embed_err(const et_bert *m, const fx_file *f, const char *which, float **out) {
    int B = (int)fx_get(f, "B", 1)[0], T = (int)fx_get(f, "T", 1)[0], C = (int)fx_get(f, "C", 1)[0];
    const double *di = fx_get(f, "ids", B * T), *dm = fx_get(f, "mask", B * T), *ref = fx_get(f, which, B * C);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * T), *mask = malloc(sizeof(int32_t) * (size_t)B * T);
    for (int i = 0; i < B * T; i++) { ids[i] = (int32_t)di[i]; mask[i] = (int32_t)dm[i]; }
    float *e = malloc(sizeof(float) * (size_t)B * C);
    et_bert_acts a;
    et_error err = {0};
    double worst = INFINITY;
    if (et_bert_acts_alloc(&a, &m->cfg, B, T, 0, 1, &err) == ET_OK &&
        et_bert_forward(m, &a, NULL, ids, mask, NULL, B, T, e, 0, 0, &err) == ET_OK) {
        worst = 0;
        for (int i = 0; i < B * C; i++) if (fabs(e[i] - ref[i]) > worst) worst = fabs(e[i] - ref[i]);
    } else fprintf(stderr, "forward: %s\n", err.msg);
    et_bert_acts_free(&a);
    free(ids); free(mask);
    if (out) *out = e; else free(e);
    return worst;
}

static void against_reader(void) {
    fx_file f;
    if (!fx_load(&f, "tests/fixtures/lora/emb.txt")) { CHECK(0, "fixture missing"); return; }
    et_bert m;
    et_error err = {0};
    if (et_hf_load(BASE, &m, &err)) { CHECK(0, "load: %s", err.msg); fx_free(&f); return; }
    /* float32 encoder against a float64 reader on unit vectors of 32 values: measured 1e-7, 1e-5 is the bound */
    float *e0 = NULL, *e1 = NULL;
    double eb = embed_err(&m, &f, "base", &e0);
    CHECK(eb <= 1e-5, "base model vs the reader: max abs err %.2e", eb);
    et_lora_adapter ad;
    CHECK(et_lora_read(ADAPTER, &ad, &err) == ET_OK, "read: %s", err.msg);
    CHECK(ad.cfg.r == 4 && ad.cfg.alpha == 8 && fabs(ad.cfg.scale - 2) < 1e-15 && fabs(ad.cfg.dropout - 0.1) < 1e-15, "config r %d alpha %g", ad.cfg.r, ad.cfg.alpha);
    CHECK(ad.n_modules == 12, "modules %d (2 layers x 6 Linear layers)", ad.n_modules);
    char base[ET_PATH_MAX];
    CHECK(et_lora_base_dir(ADAPTER, &ad, base, sizeof base, &err) == ET_OK && !strcmp(base, ADAPTER "/../../e2e/model"), "base dir %s", base);
    et_lora_free(&ad);
    CHECK(et_lora_is_adapter_dir(ADAPTER) && !et_lora_is_adapter_dir(BASE), "adapter folder detection");
    CHECK(et_lora_apply_dir(&m, ADAPTER, &err) == ET_OK, "apply: %s", err.msg);
    double ea = embed_err(&m, &f, "adapted", &e1);
    CHECK(ea <= 1e-5, "merged adapter vs the reader: max abs err %.2e", ea);
    /* the adapter matters: the merged model is far from the base (a no-op merge would fail here) */
    double d = 0;
    for (int i = 0; i < 3 * 32; i++) if (fabs(e1[i] - e0[i]) > d) d = fabs(e1[i] - e0[i]);
    CHECK(d > 0.05, "adapter changed the embeddings by only %.2e", d);
    printf("  reader vs embedtune: base %.2e, adapted %.2e (adapter moves them by %.3f)\n", eb, ea, d);
    free(e0); free(e1);
    et_bert_free(&m);
    fx_free(&f);
}

/* an adapter folder in tmp with this config and these tensors */
static void write_adapter(const char *dir, const char *config, const et_st_out *t, int n) {
    char p[ET_PATH_MAX];
    et_error err = {0};
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    CHECK(et_write_file_atomic(p, config, strlen(config), &err) == ET_OK, "write config: %s", err.msg);
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir);
    CHECK(et_st_write(p, t, n, ET_ST_F32, &err) == ET_OK, "write tensors: %s", err.msg);
}

static void refusals(void) {
    char tmpl[] = "/tmp/et_test_lora.XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) { CHECK(0, "mkdtemp"); return; }
    static float A[4 * 32], Bm[32 * 4], A3[3 * 32];
    for (int i = 0; i < 4 * 32; i++) { A[i] = 0.01f * (float)(i % 7); Bm[i] = 0.02f * (float)(i % 5); }
    const char *good = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"bias\": \"none\", \"target_modules\": [\"query\"]}";
    et_st_out q[2] = {{"base_model.model.encoder.layer.0.attention.self.query.lora_A.weight", A, 2, {4, 32}},
                      {"base_model.model.encoder.layer.0.attention.self.query.lora_B.weight", Bm, 2, {32, 4}}};
    struct { const char *cfg; int nt; et_st_out t[2]; const char *msg; } cases[] = {
        {"{\"peft_type\": \"PREFIX_TUNING\", \"r\": 4, \"lora_alpha\": 8}", 2, {q[0], q[1]}, "'peft_type' must be \"LORA\""},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"use_dora\": true}", 2, {q[0], q[1]}, "DoRA"},
        {"{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"bias\": \"all\"}", 2, {q[0], q[1]}, "'bias' is all"},
        {"{\"peft_type\": \"LORA\", \"r\": 0, \"lora_alpha\": 8}", 2, {q[0], q[1]}, "'r' must be a positive integer"},
        {good, 1, {q[0]}, "has lora_A but no lora_B"},
        {good, 2, {{"base_model.model.encoder.layer.0.attention.self.query.lora_A.weight", A3, 2, {3, 32}}, q[1]}, "rank 3"},
        {good, 2, {{"base_model.model.embeddings.word_embeddings.lora_A.weight", A, 2, {4, 32}}, q[1]}, "cannot adapt"},
    };
    et_error err = {0};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        write_adapter(dir, cases[c].cfg, cases[c].t, cases[c].nt);
        et_lora_adapter a;
        et_status s = et_lora_read(dir, &a, &err);
        CHECK(s != ET_OK && strstr(err.msg, cases[c].msg), "case %zu: status %d, message '%s'", c, (int)s, err.msg);
        et_lora_free(&a);
    }
    /* a layer the model does not have: read fine, merge refused, model unchanged */
    et_st_out l5[2] = {{"base_model.model.bert.encoder.layer.5.attention.self.query.lora_A.weight", A, 2, {4, 32}},
                       {"base_model.model.bert.encoder.layer.5.attention.self.query.lora_B.weight", Bm, 2, {32, 4}}};
    write_adapter(dir, good, l5, 2);
    et_bert m;
    if (et_hf_load(BASE, &m, &err) == ET_OK) {
        float *copy = malloc(m.n_params * sizeof(float));
        memcpy(copy, m.params, m.n_params * sizeof(float));
        et_status s = et_lora_apply_dir(&m, dir, &err);
        CHECK(s == ET_ERR_MISMATCH && strstr(err.msg, "encoder.layer.5.attention.self.query, but the model has 2 layers"), "layer 5: %s", err.msg);
        CHECK(!memcmp(copy, m.params, m.n_params * sizeof(float)), "refused merge changed the model");
        /* and the same adapter on layer 0 (with the bert. prefix) changes exactly the query weight of layer 0 */
        l5[0].name = "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight";
        l5[1].name = "base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight";
        write_adapter(dir, good, l5, 2);
        CHECK(et_lora_apply_dir(&m, dir, &err) == ET_OK, "layer 0: %s", err.msg);
        const et_tensor_view *qv = et_bert_find(&m, "encoder.layer.0.attention.self.query.weight");
        size_t changed_out = 0;
        for (size_t i = 0; i < m.n_params; i++)
            if (copy[i] != m.params[i] && (i < qv->offset || i >= qv->offset + qv->numel)) changed_out++;
        CHECK(changed_out == 0, "%zu floats outside the query weight changed", changed_out);
        /* W[u][v] += 2 * sum_k B[u][k] A[k][v]: element (1, 3) by hand */
        double want = copy[qv->offset + 1 * 32 + 3];
        double acc = 0;
        for (int k = 0; k < 4; k++) acc += (double)Bm[1 * 4 + k] * A[k * 32 + 3];
        want += 2 * acc;
        CHECK_NEAR(m.params[qv->offset + 1 * 32 + 3], want, 1e-6);
        free(copy);
        et_bert_free(&m);
    } else CHECK(0, "load: %s", err.msg);
    et_rm_tree(dir, &err);
}

int main(void) {
    against_reader();
    refusals();
    return et_test_report("test_lora");
}
