/* test_lora_train.c - LoRA training (bert.h et_bert_lora_*, train.h cfg.lora_rank):
 *   1. the adapter of one Linear layer alone (et_bert_lora_forward / _backward) against central finite differences:
 *      dA, dB and dX, with and without dropout on the adapter input;
 *   2. end to end through the tiny model tests/fixtures/e2e/model with adapters on all six Linear layers of both
 *      layers, hidden, attention and adapter dropout on: dL/dA and dL/dB of every adapter (layer 0's reach the loss
 *      through layer 1's dX, adapters included) against finite differences of the float32 forward;
 *   3. a PyTorch fixture (tools/gen_lora_train_fixture.py, tests/fixtures/lora_train): one trainer micro-batch
 *      (in-batch InfoNCE, 3 queries, 3 positives) gives the loss and the adapter gradients of plain torch within
 *      1e-5;
 *   4. the frozen base: the trainer allocates gradients and AdamW moments for the adapters only (sizes checked
 *      against the full fine-tuning trainer of the same model), an update leaves every base parameter bit for bit
 *      as it was and moves the adapters; B = 0 at attach, so the adapted model starts as the base;
 *   5. save (PEFT folder) -> et_lora_read -> merge gives the embeddings of the unmerged adapted model;
 *   6. exact resume: 3 steps, a checkpoint (an adapter folder + the adapters' AdamW state), a fresh model resumes
 *      for 3 more = 6 steps straight, bit for bit; the saved output is an adapter folder;
 *   7. --freeze-embeddings (the frozen mechanism without LoRA): a frozen word-embedding table, the first tensor of
 *      the buffer, gets no gradient and no AdamW state (sizes checked); every other gradient is bit for bit the
 *      full fine-tuning one; a step leaves the table as it was;
 *   8. training acts planned for LoRA keep fewer floats, and refuse the gradients they cannot give;
 *   9. activation checkpointing (et_bert_config.act_checkpoint): the end-to-end finite differences of 2 on
 *      checkpointed acts; every gradient of full fine-tuning and of LoRA (all six sites) on a 3-layer model, with
 *      dropout, padded and packed, 1 and 2 threads, is BIT FOR BIT that of plain acts (tolerance 0: the recompute
 *      runs the forward's own kernels on the same pool with the same counter-based dropout seeds, so every saved
 *      tensor is the same bits, and the backward then does the same arithmetic); the plan is smaller. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "hf.h"
#include "lora.h"
#include "tokenizer.h"
#include "train.h"
#include "et_test.h"

#define BASE "tests/fixtures/e2e/model"

/* 1 ------------------------------------------------------------------------------------------------ */
static double unit_loss(const float *x, const float *A, const float *B, const float *R, float *y, float *xs, float *u,
                        int N, int IC, int OC, int r, float scale, float p) {
    memset(y, 0, sizeof(float) * (size_t)N * OC);
    et_bert_lora_forward(NULL, y, x, A, B, xs, u, N, IC, OC, r, scale, p, 77);
    double s = 0;
    for (int i = 0; i < N * OC; i++) s += (double)y[i] * R[i];
    return s;
}

static void test_unit(float p) {
    int N = 5, IC = 7, OC = 6, r = 3;
    float scale = 1.7f;
    uint64_t st = 12345;
    float *x = malloc(sizeof(float) * N * IC), *A = malloc(sizeof(float) * r * IC), *B = malloc(sizeof(float) * OC * r);
    float *R = malloc(sizeof(float) * N * OC), *y = malloc(sizeof(float) * N * OC), *xs = malloc(sizeof(float) * N * IC);
    float *u = malloc(sizeof(float) * N * r), *du = malloc(sizeof(float) * N * r);
    float *dx = calloc((size_t)N * IC, sizeof(float)), *dA = calloc((size_t)r * IC, sizeof(float)), *dB = calloc((size_t)OC * r, sizeof(float));
    for (int i = 0; i < N * IC; i++) x[i] = et_test_frand(&st);
    for (int i = 0; i < r * IC; i++) A[i] = et_test_frand(&st);
    for (int i = 0; i < OC * r; i++) B[i] = et_test_frand(&st);
    for (int i = 0; i < N * OC; i++) R[i] = et_test_frand(&st);
    et_bert_lora_backward(NULL, dx, dA, dB, R, x, A, B, xs, u, du, N, IC, OC, r, scale, p, 77);
    /* the loss is linear in each of x, A, B: central differences are exact up to rounding */
    const float h = 1e-2f;
    double worst = 0;
    float *ps[3] = {x, A, B}, *gs[3] = {dx, dA, dB};
    int ns[3] = {N * IC, r * IC, OC * r};
    int dropped = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < ns[k]; i++) {
            float v = ps[k][i];
            ps[k][i] = v + h;
            double lp = unit_loss(x, A, B, R, y, xs, u, N, IC, OC, r, scale, p);
            ps[k][i] = v - h;
            double lm = unit_loss(x, A, B, R, y, xs, u, N, IC, OC, r, scale, p);
            ps[k][i] = v;
            double fd = (lp - lm) / (2 * h), e = fabs(fd - gs[k][i]) / (1 + fabs(fd));
            if (e > worst) worst = e;
            if (k == 0 && gs[k][i] == 0.0f) dropped++;
        }
    printf("adapter alone, dropout %g: worst relative error of dA, dB, dX vs finite differences %.2e\n", p, worst);
    CHECK(worst < 1e-4, "adapter alone (dropout %g): dA, dB, dX vs finite differences, worst relative error %.2e", p, worst);
    if (p > 0) CHECK(dropped > 0 && dropped < N * IC, "dropout %g: %d of %d inputs dropped (their dX is 0)", p, dropped, N * IC);
    else CHECK(dropped == 0, "no dropout: no input without gradient (%d)", dropped);
    free(x); free(A); free(B); free(R); free(y); free(xs); free(u); free(du); free(dx); free(dA); free(dB);
}

/* 2 ------------------------------------------------------------------------------------------------ */
typedef struct { int32_t ids[3 * 9], mask[3 * 9]; int B, T; float R[3 * 64]; } e2e_in;

static double e2e_loss(const et_bert *m, et_bert_acts *a, const e2e_in *in, int C) {
    et_error err = {0};
    if (et_bert_forward(m, a, NULL, in->ids, in->mask, NULL, in->B, in->T, NULL, 1, 4242, &err)) {
        fprintf(stderr, "forward: %s\n", err.msg);
        return NAN;
    }
    double s = 0;
    for (int i = 0; i < in->B * C; i++) s += (double)a->pooled[i] * in->R[i];
    return s;
}

static void test_end_to_end(int ckpt) {
    et_bert m;
    et_error err = {0};
    if (et_hf_load(BASE, &m, &err)) { CHECK(0, "load: %s", err.msg); return; }
    m.cfg.hidden_dropout = 0.1f;
    m.cfg.attn_dropout = 0.1f;
    CHECK(et_bert_lora_attach(&m, 2, 4.0, 0, 0.2, 0x3f, 9, &err) == ET_OK, "attach: %s", err.msg);
    CHECK(m.n_lora == et_bert_lora_floats(&m.cfg, 2, 0x3f), "adapter floats %zu", m.n_lora);
    int C = m.cfg.hidden_size;
    uint64_t st = 99;
    for (size_t i = 0; i < m.n_lora; i++) /* B random too (it starts at 0), so every gradient flows */
        m.lora[i] = 0.3f * et_test_frand(&st);
    e2e_in in = {.B = 3, .T = 9};
    int lens[3] = {9, 5, 7};
    for (int b = 0; b < 3; b++)
        for (int t = 0; t < 9; t++) {
            in.ids[b * 9 + t] = t < lens[b] ? (t == 0 ? 2 : 5 + (int)((b * 31 + t * 17) % 150)) : 0;
            in.mask[b * 9 + t] = t < lens[b];
        }
    for (int i = 0; i < 3 * C; i++) in.R[i] = et_test_frand(&st);
    et_bert_acts a;
    m.cfg.act_checkpoint = ckpt; /* the activations' layout only */
    if (et_bert_acts_alloc(&a, &m.cfg, 3, 9, 1, 1, &err)) { CHECK(0, "acts: %s", err.msg); et_bert_free(&m); return; }
    float *g = calloc(m.n_lora, sizeof(float));
    et_bert_params gv;
    memset(&gv, 0, sizeof gv);
    et_bert_lora_view(&m.cfg, 2, 0x3f, g, &gv);
    e2e_loss(&m, &a, &in, C);
    float *dpooled = malloc(sizeof(float) * 3 * C);
    memcpy(dpooled, in.R, sizeof(float) * 3 * C);
    CHECK(et_bert_backward(&m, &a, NULL, dpooled, &gv, &err) == ET_OK, "backward: %s", err.msg);
    /* finite differences on a spread of entries of every adapter (float32 forward: h 1e-2, the loss is smooth) */
    double worst = 0;
    int checked = 0, nonzero = 0;
    for (int l = 0; l < 2; l++)
        for (int j = 0; j < ET_LIN_N; j++)
            for (int isB = 0; isB < 2; isB++) {
                float *P = isB ? m.w.layer[l].lora_B[j] : m.w.layer[l].lora_A[j];
                float *G = isB ? gv.layer[l].lora_B[j] : gv.layer[l].lora_A[j];
                int in_f = j == ET_LIN_O ? m.cfg.intermediate_size : C, out_f = j == ET_LIN_I ? m.cfg.intermediate_size : C;
                int n = isB ? out_f * 2 : 2 * in_f;
                for (int i = 0; i < n; i += n / 5 + 1) {
                    float v = P[i];
                    const float h = 1e-2f;
                    P[i] = v + h;
                    double lp = e2e_loss(&m, &a, &in, C);
                    P[i] = v - h;
                    double lm = e2e_loss(&m, &a, &in, C);
                    P[i] = v;
                    double fd = (lp - lm) / (2 * h), e = fabs(fd - G[i]) / (0.05 + fabs(fd));
                    if (e > worst) worst = e;
                    checked++;
                    nonzero += fabs(G[i]) > 1e-6;
                }
            }
    printf("end to end, dropout on%s: %d adapter gradients vs finite differences, worst relative error %.2e\n",
           ckpt ? ", checkpointed" : "", checked, worst);
    CHECK(worst < 5e-3, "end to end (dropout on): %d adapter gradients vs finite differences, worst relative error %.2e", checked, worst);
    CHECK(nonzero > checked * 3 / 4, "%d of %d gradients are non-zero", nonzero, checked);
    /* with everything frozen but layer 1's adapters, layer 0's adapters get nothing and the rest is unchanged */
    float *g2 = calloc(m.n_lora, sizeof(float));
    et_bert_params gv2;
    memset(&gv2, 0, sizeof gv2);
    et_bert_lora_view(&m.cfg, 2, 0x3f, g2, &gv2);
    for (int j = 0; j < ET_LIN_N; j++) gv2.layer[0].lora_A[j] = gv2.layer[0].lora_B[j] = NULL;
    e2e_loss(&m, &a, &in, C);
    memcpy(dpooled, in.R, sizeof(float) * 3 * C);
    CHECK(et_bert_backward(&m, &a, NULL, dpooled, &gv2, &err) == ET_OK, "backward: %s", err.msg);
    size_t off1 = (size_t)(gv.layer[1].lora_A[0] - g);
    double d = 0, z = 0;
    for (size_t i = 0; i < m.n_lora; i++) {
        if (i < off1) z += fabs(g2[i]);
        else d = fmax(d, fabs(g2[i] - g[i]));
    }
    CHECK(z == 0 && d == 0, "layer 1 only: layer 0 untouched (%g), layer 1 the same bits (%g)", z, d);
    free(g2);
    free(g); free(dpooled);
    et_bert_acts_free(&a);
    et_bert_free(&m);
}

/* 3 + 4 ---------------------------------------------------------------------------------------------- */
static void test_torch_fixture_and_memory(void) {
    fx_file f;
    if (!fx_load(&f, "tests/fixtures/lora_train/grads.txt")) { CHECK(0, "fixture missing"); return; }
    et_bert m;
    et_error err = {0};
    if (et_hf_load(BASE, &m, &err)) { CHECK(0, "load: %s", err.msg); fx_free(&f); return; }
    int B = (int)fx_get(&f, "B", 1)[0], Tq = (int)fx_get(&f, "Tq", 1)[0], Td = (int)fx_get(&f, "Td", 1)[0];
    int32_t qi[64], qm[64], pi[64], pm[64];
    const double *a0 = fx_get(&f, "q_ids", B * Tq), *a1 = fx_get(&f, "q_mask", B * Tq), *a2 = fx_get(&f, "p_ids", B * Td),
                 *a3 = fx_get(&f, "p_mask", B * Td);
    for (int i = 0; i < B * Tq; i++) { qi[i] = (int32_t)a0[i]; qm[i] = (int32_t)a1[i]; }
    for (int i = 0; i < B * Td; i++) { pi[i] = (int32_t)a2[i]; pm[i] = (int32_t)a3[i]; }
    /* full fine-tuning trainer first: its state sizes */
    et_train_cfg c;
    et_train_cfg_default(&c);
    c.batch = B; c.negatives = 0; c.total_steps = 1; c.dropout = 0; c.threads = 1; c.warmup_steps = 0; c.lr = 1e-2;
    et_trainer full;
    CHECK(et_trainer_init(&full, &c, &m, NULL, NULL, &err) == ET_OK, "full init: %s", err.msg);
    size_t n = m.n_params;
    CHECK(full.train_n == n && full.opt.n == n && full.bytes_state == n * 4 * sizeof(float), "full fine-tuning: grads/opt %zu/%zu of %zu floats",
          full.train_n, full.opt.n, n);
    et_trainer_free(&full);
    /* LoRA: the fixture's adapter */
    c.lora_rank = 3; c.lora_alpha = 5; c.lora_dropout = 0; c.lora_sites = 0x3f;
    CHECK(et_bert_lora_attach(&m, 3, 5.0, 0, 0.0, 0x3f, 1, &err) == ET_OK, "attach: %s", err.msg);
    et_lora_adapter ad;
    CHECK(et_lora_read("tests/fixtures/lora_train/adapter", &ad, &err) == ET_OK, "read: %s", err.msg);
    CHECK(et_lora_load_into(&m, &ad, &err) == ET_OK, "load into: %s", err.msg);
    et_lora_free(&ad);
    et_trainer tr;
    if (et_trainer_init(&tr, &c, &m, NULL, NULL, &err)) { CHECK(0, "lora init: %s", err.msg); et_bert_free(&m); fx_free(&f); return; }
    size_t nl = et_bert_lora_floats(&m.cfg, 3, 0x3f);
    CHECK(tr.train_n == nl && tr.opt.n == nl && tr.train_params == m.lora, "LoRA: gradients and AdamW over %zu floats (adapters: %zu)", tr.opt.n, nl);
    CHECK(tr.bytes_state == (n + nl) * sizeof(float) + nl * 3 * sizeof(float), "LoRA state bytes %zu", tr.bytes_state);
    for (int l = 0; l < 2; l++) {
        const et_bert_layer_params *g = &tr.gview.layer[l];
        CHECK(!g->q_w && !g->q_b && !g->k_w && !g->v_w && !g->ao_w && !g->i_w && !g->o_w && !g->ln1_w && !g->ln2_b,
              "layer %d: no gradient view of a base tensor", l);
    }
    CHECK(!tr.gview.wte && !tr.gview.wpe && !tr.gview.emb_ln_w, "no gradient view of the embeddings");
    printf("state: full fine-tuning %zu bytes (params + grads + m + v), LoRA r 3 on all six Linear layers %zu bytes\n",
           n * 4 * sizeof(float), tr.bytes_state);
    et_train_batch b = {0};
    b.B = B; b.G = 0;
    b.q_ids = qi; b.q_mask = qm; b.Tq = Tq;
    b.p_ids = pi; b.p_mask = pm; b.Td = Td;
    double loss = 0;
    CHECK(et_trainer_micro(&tr, &b, 5, &loss, &err) == ET_OK, "micro: %s", err.msg);
    CHECK_NEAR(loss, fx_get(&f, "loss", 1)[0], 1e-5);
    const double *ref = fx_get(&f, "grads", (int)nl);
    double worst = 0, big = 0;
    for (size_t i = 0; i < nl; i++) { worst = fmax(worst, fabs(tr.grads[i] - ref[i])); big = fmax(big, fabs(ref[i])); }
    CHECK(worst <= 1e-5, "adapter gradients vs torch: max abs err %.2e (max |g| %.3g)", worst, big);
    printf("torch fixture: loss %.9g vs %.9g, gradients max abs err %.2e over %zu values\n", loss, fx_get(&f, "loss", 1)[0], worst, nl);
    /* an update moves the adapters only */
    float *base0 = malloc(sizeof(float) * n), *lora0 = malloc(sizeof(float) * nl);
    memcpy(base0, m.params, sizeof(float) * n);
    memcpy(lora0, m.lora, sizeof(float) * nl);
    CHECK(et_trainer_update(&tr, NULL, &err) == ET_OK, "update: %s", err.msg);
    CHECK(memcmp(base0, m.params, sizeof(float) * n) == 0, "the base is bit for bit unchanged by a step");
    CHECK(memcmp(lora0, m.lora, sizeof(float) * nl) != 0, "the adapters moved");
    free(base0); free(lora0);
    et_trainer_free(&tr);
    et_bert_free(&m);
    fx_free(&f);
}

/* 4b, 5 ------------------------------------------------------------------------------------------------ */
static void test_attach_save_merge(void) {
    et_bert m, plain;
    et_error err = {0};
    if (et_hf_load(BASE, &m, &err) || et_hf_load(BASE, &plain, &err)) { CHECK(0, "load: %s", err.msg); return; }
    int32_t ids[2 * 6] = {2, 40, 41, 42, 3, 0, 2, 77, 3, 0, 0, 0}, mask[2 * 6] = {1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0};
    int C = m.cfg.hidden_size;
    float e0[64], e1[64], e2[64];
    et_bert_acts a;
    CHECK(et_bert_acts_alloc(&a, &m.cfg, 2, 6, 0, 1, &err) == ET_OK, "acts: %s", err.msg);
    CHECK(et_bert_forward(&m, &a, NULL, ids, mask, NULL, 2, 6, e0, 0, 0, &err) == ET_OK, "forward: %s", err.msg);
    CHECK(et_bert_lora_attach(&m, 4, 8.0, 1, 0.1, (1u << ET_LIN_Q) | (1u << ET_LIN_V) | (1u << ET_LIN_O), 3, &err) == ET_OK, "attach: %s", err.msg);
    CHECK(fabs(m.cfg.lora_scale - 4.0f) < 1e-6, "rsLoRA scale alpha/sqrt(r) = %g", m.cfg.lora_scale);
    /* A as PEFT: U(-1/sqrt(in), 1/sqrt(in)), not all equal; B zero */
    float amax = 0, bmax = 0;
    const float *A = m.w.layer[0].lora_A[ET_LIN_O], *Bw = m.w.layer[0].lora_B[ET_LIN_O];
    for (int i = 0; i < 4 * m.cfg.intermediate_size; i++) amax = fmaxf(amax, fabsf(A[i]));
    for (int i = 0; i < 4 * C; i++) bmax = fmaxf(bmax, fabsf(Bw[i]));
    CHECK(amax > 0.5f / sqrtf(64.0f) && amax <= 1.0f / sqrtf(64.0f) && bmax == 0, "init: max|A| %g (bound %g), max|B| %g", amax, 1 / sqrtf(64.0f), bmax);
    /* inference acts planned before attaching are refused with a message, new ones work */
    CHECK(et_bert_forward(&m, &a, NULL, ids, mask, NULL, 2, 6, e1, 0, 0, &err) == ET_ERR_ARG && strstr(err.msg, "LoRA"), "old acts refused: %s", err.msg);
    et_bert_acts_free(&a);
    CHECK(et_bert_acts_alloc(&a, &m.cfg, 2, 6, 0, 1, &err) == ET_OK, "acts: %s", err.msg);
    CHECK(et_bert_forward(&m, &a, NULL, ids, mask, NULL, 2, 6, e1, 0, 0, &err) == ET_OK, "forward: %s", err.msg);
    double d = 0;
    for (int i = 0; i < 2 * C; i++) d = fmax(d, fabs(e1[i] - e0[i]));
    CHECK(d == 0, "B = 0: the adapted model computes the base exactly (%g)", d);
    uint64_t st = 5;
    for (size_t i = 0; i < m.n_lora; i++) m.lora[i] += 0.2f * et_test_frand(&st);
    CHECK(et_bert_forward(&m, &a, NULL, ids, mask, NULL, 2, 6, e1, 0, 0, &err) == ET_OK, "forward: %s", err.msg);
    /* save -> read -> merge into a plain copy of the base */
    char dir[] = "/tmp/et_lora_saveXXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    et_lora_config lc = {.r = 4, .alpha = 8, .dropout = 0.1, .use_rslora = 1, .scale = 4};
    snprintf(lc.base, sizeof lc.base, "%s", BASE);
    CHECK(et_lora_save(dir, &m, &lc, &err) == ET_OK, "save: %s", err.msg);
    et_lora_adapter ad;
    CHECK(et_lora_read(dir, &ad, &err) == ET_OK, "read back: %s", err.msg);
    CHECK(ad.n_modules == 6 && ad.cfg.use_rslora && ad.cfg.scale == 4 && !strcmp(ad.cfg.base, BASE), "read back: %d modules, scale %g", ad.n_modules, ad.cfg.scale);
    CHECK(et_lora_merge(&plain, &ad, &err) == ET_OK, "merge: %s", err.msg);
    et_lora_free(&ad);
    et_bert_acts ap;
    CHECK(et_bert_acts_alloc(&ap, &plain.cfg, 2, 6, 0, 1, &err) == ET_OK, "acts: %s", err.msg);
    CHECK(et_bert_forward(&plain, &ap, NULL, ids, mask, NULL, 2, 6, e2, 0, 0, &err) == ET_OK, "forward: %s", err.msg);
    d = 0;
    double moved = 0;
    for (int i = 0; i < 2 * C; i++) { d = fmax(d, fabs(e1[i] - e2[i])); moved = fmax(moved, fabs(e1[i] - e0[i])); }
    CHECK(d <= 1e-5 && moved > 1e-3, "adapted (unmerged) vs saved+merged: %.2e (the adapter moved them by %.3g)", d, moved);
    char cfgp[ET_PATH_MAX], *txt = NULL;
    size_t len = 0;
    snprintf(cfgp, sizeof cfgp, "%s/adapter_config.json", dir);
    CHECK(et_read_file(cfgp, 1 << 16, &txt, &len, &err) == ET_OK, "config: %s", err.msg);
    CHECK(txt && strstr(txt, "\"peft_type\":\t\"LORA\"") && strstr(txt, "\"bias\":\t\"none\"") &&
              strstr(txt, "encoder\\\\.layer\\\\.\\\\d+\\\\.(attention\\\\.self\\\\.query|attention\\\\.self\\\\.value|output\\\\.dense)"),
          "adapter_config.json: %s", txt ? txt : "");
    free(txt);
    unsigned sites = 0;
    CHECK(et_lora_targets_parse("q,value,ffn_out,intermediate.dense", &sites, &err) == ET_OK && sites == 0x35, "targets %#x", sites);
    CHECK(et_lora_targets_parse("q,x", &sites, &err) == ET_ERR_ARG && strstr(err.msg, "'x'"), "bad target: %s", err.msg);
    et_rm_tree(dir, NULL);
    et_bert_acts_free(&a);
    et_bert_acts_free(&ap);
    et_bert_free(&m);
    et_bert_free(&plain);
}

/* 6 ------------------------------------------------------------------------------------------------- */
#define TRAIN_MODEL "tests/fixtures/hf/good_f32"
#define PAIRS "tests/fixtures/train/tiny_pairs.jsonl"

static et_status lora_run(const char *out, long stop_after, int resume, const et_train_data *d, const et_tokenizer *tok,
                          et_bert *m, et_error *err) {
    et_train_cfg c;
    et_train_cfg_default(&c);
    c.batch = 4; c.epochs = 2; c.lr = 1e-2; c.warmup_steps = 2; c.threads = 2; c.max_len_q = 12; c.max_len_d = 16;
    c.seed = 11; c.out_dir = out; c.vocab_path = TRAIN_MODEL "/vocab.txt"; c.stop_after = stop_after;
    c.lora_rank = 2; c.lora_sites = (1u << ET_LIN_Q) | (1u << ET_LIN_V) | (1u << ET_LIN_I); c.lora_dropout = 0.2;
    c.lora_base = TRAIN_MODEL;
    et_status s = et_hf_load(TRAIN_MODEL, m, err);
    if (s) return s;
    et_trainer tr;
    if ((s = et_trainer_init(&tr, &c, m, NULL, d, err))) return s;
    if (resume && (s = et_trainer_resume(&tr, err))) { et_trainer_free(&tr); return s; }
    s = et_trainer_run(&tr, tok, err);
    et_trainer_free(&tr);
    return s;
}

static void test_resume(void) {
    et_error err = {0};
    et_tokenizer *tok = et_tokenizer_load_vocab(TRAIN_MODEL "/vocab.txt", &err);
    et_train_data d;
    if (!tok || et_train_data_read(PAIRS, &d, &err)) { CHECK(0, "setup: %s", err.msg); et_tokenizer_free(tok); return; }
    char a[] = "/tmp/et_lora_ra_XXXXXX", b[] = "/tmp/et_lora_rb_XXXXXX";
    CHECK(mkdtemp(a) && mkdtemp(b), "mkdtemp");
    et_bert ma, mb;
    CHECK(lora_run(a, 0, 0, &d, tok, &ma, &err) == ET_OK, "straight: %s", err.msg);
    CHECK(lora_run(b, 3, 0, &d, tok, &mb, &err) == ET_OK, "first half: %s", err.msg);
    et_bert_free(&mb);
    CHECK(lora_run(b, 0, 1, &d, tok, &mb, &err) == ET_OK, "resumed: %s", err.msg);
    CHECK(ma.n_lora == mb.n_lora && ma.n_lora > 0 && memcmp(ma.lora, mb.lora, ma.n_lora * sizeof(float)) == 0,
          "resumed adapters are bit for bit the straight run's");
    CHECK(memcmp(ma.params, mb.params, ma.n_params * sizeof(float)) == 0, "the base is untouched in both");
    char p[ET_PATH_MAX];
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", a);
    int has_adapter = et_file_exists(p);
    snprintf(p, sizeof p, "%s/model.safetensors", a);
    CHECK(has_adapter && !et_file_exists(p), "the output is an adapter folder, not a model");
    /* and what was saved is what was trained */
    et_lora_adapter ad;
    CHECK(et_lora_read(a, &ad, &err) == ET_OK, "read: %s", err.msg);
    et_bert mc;
    if (et_hf_load(TRAIN_MODEL, &mc, &err) == ET_OK) {
        CHECK(et_bert_lora_attach(&mc, 2, 4.0, 0, 0.2, (1u << ET_LIN_Q) | (1u << ET_LIN_V) | (1u << ET_LIN_I), 1, &err) == ET_OK &&
              et_lora_load_into(&mc, &ad, &err) == ET_OK, "load: %s", err.msg);
        CHECK(mc.n_lora == ma.n_lora && memcmp(mc.lora, ma.lora, ma.n_lora * sizeof(float)) == 0, "saved adapters = trained ones");
        et_bert_free(&mc);
    }
    et_lora_free(&ad);
    et_rm_tree(a, NULL);
    et_rm_tree(b, NULL);
    et_bert_free(&ma);
    et_bert_free(&mb);
    et_train_data_free(&d);
    et_tokenizer_free(tok);
}

/* 7, 8 ---------------------------------------------------------------------------------------------- */
static void test_freeze_embeddings(void) {
    fx_file f;
    if (!fx_load(&f, "tests/fixtures/lora_train/grads.txt")) { CHECK(0, "fixture missing"); return; }
    et_error err = {0};
    int B = (int)fx_get(&f, "B", 1)[0], Tq = (int)fx_get(&f, "Tq", 1)[0], Td = (int)fx_get(&f, "Td", 1)[0];
    int32_t qi[64], qm[64], pi[64], pm[64];
    const double *a0 = fx_get(&f, "q_ids", B * Tq), *a1 = fx_get(&f, "q_mask", B * Tq), *a2 = fx_get(&f, "p_ids", B * Td),
                 *a3 = fx_get(&f, "p_mask", B * Td);
    for (int i = 0; i < B * Tq; i++) { qi[i] = (int32_t)a0[i]; qm[i] = (int32_t)a1[i]; }
    for (int i = 0; i < B * Td; i++) { pi[i] = (int32_t)a2[i]; pm[i] = (int32_t)a3[i]; }
    et_train_batch b = {0};
    b.B = B; b.q_ids = qi; b.q_mask = qm; b.Tq = Tq; b.p_ids = pi; b.p_mask = pm; b.Td = Td;
    et_bert m1, m2;
    if (et_hf_load(BASE, &m1, &err) || et_hf_load(BASE, &m2, &err)) { CHECK(0, "load: %s", err.msg); fx_free(&f); return; }
    et_train_cfg c;
    et_train_cfg_default(&c);
    c.batch = B; c.negatives = 0; c.total_steps = 1; c.threads = 1; c.warmup_steps = 0; c.lr = 1e-2;
    et_trainer full, fr;
    CHECK(et_trainer_init(&full, &c, &m1, NULL, NULL, &err) == ET_OK, "full: %s", err.msg);
    c.freeze = "embeddings.word_embeddings.";
    CHECK(et_trainer_init(&fr, &c, &m2, NULL, NULL, &err) == ET_OK, "frozen: %s", err.msg);
    size_t n = m1.n_params, vc = (size_t)m1.cfg.vocab_size * m1.cfg.hidden_size;
    CHECK(fr.train_n == n - vc && fr.opt.n == n - vc && fr.train_params == m2.params + vc && !fr.gview.wte && fr.gview.wpe,
          "frozen word embeddings: gradients and AdamW over %zu floats of %zu (the table: %zu)", fr.opt.n, n, vc);
    CHECK(fr.bytes_state == n * sizeof(float) + (n - vc) * 3 * sizeof(float), "state %zu", fr.bytes_state);
    printf("--freeze-embeddings on the tiny model: state %zu -> %zu bytes\n", full.bytes_state, fr.bytes_state);
    double l1 = 0, l2 = 0;
    CHECK(et_trainer_micro(&full, &b, 9, &l1, &err) == ET_OK && et_trainer_micro(&fr, &b, 9, &l2, &err) == ET_OK, "micro: %s", err.msg);
    CHECK(l1 == l2 && memcmp(full.grads + vc, fr.grads, (n - vc) * sizeof(float)) == 0, "the other gradients are the same bits");
    float *wte0 = malloc(vc * sizeof(float));
    memcpy(wte0, m2.params, vc * sizeof(float));
    CHECK(et_trainer_update(&fr, NULL, &err) == ET_OK, "update: %s", err.msg);
    CHECK(memcmp(wte0, m2.params, vc * sizeof(float)) == 0 && memcmp(m1.params + vc, m2.params + vc, 64) != 0, "the table did not move, the rest did");
    free(wte0);
    et_trainer_free(&full);
    et_trainer_free(&fr);
    /* 8: acts planned with adapters (not on attention.output.dense) are smaller by (1 + L) [B,T,C] buffers */
    size_t plain = et_bert_acts_bytes(&m1.cfg, 4, 16, 1, 1);
    CHECK(et_bert_lora_attach(&m1, 2, 4, 0, 0, (1u << ET_LIN_Q) | (1u << ET_LIN_V), 1, &err) == ET_OK, "attach: %s", err.msg);
    size_t withl = et_bert_acts_bytes(&m1.cfg, 4, 16, 1, 1);
    size_t BTC = (size_t)4 * 16 * m1.cfg.hidden_size, extra = 2 * (size_t)4 * 16 * 2; /* lora_u, lora_du */
    CHECK(withl + (1 + (size_t)m1.cfg.num_layers) * BTC * sizeof(float) == plain + extra * sizeof(float),
          "LoRA training acts %zu bytes, plain %zu", withl, plain);
    et_bert_acts a;
    CHECK(et_bert_acts_alloc(&a, &m1.cfg, 4, 16, 1, 1, &err) == ET_OK, "acts: %s", err.msg);
    float *g = calloc(n, sizeof(float)), dp[4 * 64] = {0};
    et_bert_params gv;
    et_bert_params_view(&m1.cfg, g, &gv);
    int32_t ids[4 * 16] = {0};
    for (int i = 0; i < 4 * 16; i++) ids[i] = 5 + i % 100;
    CHECK(et_bert_forward(&m1, &a, NULL, ids, NULL, NULL, 4, 16, NULL, 0, 1, &err) == ET_OK, "forward: %s", err.msg);
    CHECK(et_bert_backward(&m1, &a, NULL, dp, &gv, &err) == ET_ERR_ARG && strstr(err.msg, "frozen base"), "refused: %s", err.msg);
    free(g);
    et_bert_acts_free(&a);
    et_bert_free(&m1);
    et_bert_free(&m2);
    fx_free(&f);
}

/* 9 ------------------------------------------------------------------------------------------------ */
/* one forward + backward on acts with or without checkpointing; grads (n floats) zeroed first */
/* share: the acts' transient part in a region shared with a second acts (another batch, 5 x 7) whose forward runs
 * after this one's and whose backward runs before it, as the trainer's groups do; *acts_bytes then counts the
 * region once */
static int ckpt_run(const et_bert *m0, int ckpt, int share, int packed, int nthreads, const et_bert_params *gv, float *grads,
                    size_t n, size_t *acts_bytes) {
    et_bert_config cfg = m0->cfg;
    cfg.act_checkpoint = ckpt;
    et_error err = {0};
    et_bert_acts a, a2;
    memset(&a2, 0, sizeof a2);
    et_pool *pool = et_pool_create(nthreads, &err);
    size_t sb = share ? et_bert_acts_shared_bytes(&cfg, 3, 11, nthreads) : 0, sb2 = share ? et_bert_acts_shared_bytes(&cfg, 5, 7, nthreads) : 0;
    if (sb2 > sb) sb = sb2;
    float *region = NULL;
    if (share && posix_memalign((void **)&region, 64, sb)) region = NULL;
    if (!pool || (share && !region) ||
        (share ? et_bert_acts_alloc_shared(&a, &cfg, 3, 11, nthreads, region, sb, &err) ||
                     et_bert_acts_alloc_shared(&a2, &cfg, 5, 7, nthreads, region, sb, &err)
               : et_bert_acts_alloc(&a, &cfg, 3, 11, 1, nthreads, &err))) {
        CHECK(0, "acts: %s", err.msg);
        et_pool_destroy(pool);
        free(region);
        return 0;
    }
    *acts_bytes = a.bytes + sb;
    if (share) CHECK(a.bytes + et_bert_acts_shared_bytes(&cfg, 3, 11, nthreads) == et_bert_acts_bytes(&cfg, 3, 11, 1, nthreads),
                     "own %zu + shared = et_bert_acts_bytes %zu", a.bytes, et_bert_acts_bytes(&cfg, 3, 11, 1, nthreads));
    int32_t ids[33], mask[33], lens[3] = {11, 6, 9}, pids[33];
    int np = 0;
    for (int b = 0; b < 3; b++)
        for (int t = 0; t < 11; t++) {
            ids[b * 11 + t] = t < lens[b] ? (t == 0 ? 2 : 5 + (int)((b * 37 + t * 13) % 150)) : 0;
            mask[b * 11 + t] = t < lens[b];
            if (t < lens[b]) pids[np++] = ids[b * 11 + t];
        }
    et_status s = packed ? et_bert_forward_packed(m0, &a, pool, pids, NULL, lens, 3, NULL, 1, 777, &err)
                         : et_bert_forward(m0, &a, pool, ids, mask, NULL, 3, 11, NULL, 1, 777, &err);
    float dp[5 * 64];
    uint64_t st = 5;
    for (int i = 0; i < 5 * m0->cfg.hidden_size; i++) dp[i] = et_test_frand(&st);
    float *junk = share ? calloc(n, sizeof(float)) : NULL;
    if (share && !s) { /* the other group: forward after, backward before (into other gradients) */
        int32_t i2[35], m2[35];
        for (int i = 0; i < 35; i++) { i2[i] = 7 + (i * 11) % 140; m2[i] = i % 7 < 3 + i / 7; }
        et_bert_params g2 = *gv;
        ptrdiff_t off = junk - grads;
        float **pp = (float **)&g2;
        for (size_t k = 0; k < sizeof g2 / sizeof(float *); k++) if (pp[k]) pp[k] += off;
        s = et_bert_forward(m0, &a2, pool, i2, m2, NULL, 5, 7, NULL, 1, 999, &err);
        if (!s) s = et_bert_backward(m0, &a2, pool, dp, &g2, &err);
    }
    memset(grads, 0, n * sizeof(float));
    if (!s) s = et_bert_backward(m0, &a, pool, dp, gv, &err);
    CHECK(s == ET_OK, "checkpoint %d share %d packed %d: %s", ckpt, share, packed, err.msg);
    et_bert_acts_free(&a);
    et_bert_acts_free(&a2);
    free(region);
    free(junk);
    et_pool_destroy(pool);
    return s == ET_OK;
}

static void test_checkpoint_same_bits(void) {
    et_bert m;
    et_error err = {0};
    if (et_hf_load(BASE, &m, &err)) { CHECK(0, "load: %s", err.msg); return; }
    /* a third layer: the model's layers again (so the middle layer is recomputed from a kept input) */
    et_bert_config c3 = m.cfg;
    c3.num_layers = 3;
    c3.hidden_dropout = 0.1f;
    c3.attn_dropout = 0.1f;
    et_bert m3;
    if (et_bert_alloc(&m3, &c3, &err)) { CHECK(0, "alloc: %s", err.msg); et_bert_free(&m); return; }
    uint64_t st = 11;
    for (size_t i = 0; i < m3.n_params; i++) m3.params[i] = 0.08f * et_test_frand(&st);
    /* LayerNorm weights near 1 so the signal survives three layers */
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < c3.hidden_size; i++) { m3.w.layer[l].ln1_w[i] += 1.0f; m3.w.layer[l].ln2_w[i] += 1.0f; }
    for (int i = 0; i < c3.hidden_size; i++) m3.w.emb_ln_w[i] += 1.0f;
    et_bert_params_changed(&m3);
    for (int lora = 0; lora < 2; lora++) {
        if (lora) {
            CHECK(et_bert_lora_attach(&m3, 2, 4.0, 0, 0.2, 0x3f, 9, &err) == ET_OK, "attach: %s", err.msg);
            for (size_t i = 0; i < m3.n_lora; i++) m3.lora[i] = 0.3f * et_test_frand(&st);
        }
        size_t n = lora ? m3.n_lora : m3.n_params;
        float *g0 = calloc(n, sizeof(float)), *g1 = calloc(n, sizeof(float));
        et_bert_params v0, v1;
        memset(&v0, 0, sizeof v0);
        memset(&v1, 0, sizeof v1);
        if (lora) { et_bert_lora_view(&m3.cfg, 2, 0x3f, g0, &v0); et_bert_lora_view(&m3.cfg, 2, 0x3f, g1, &v1); }
        else { et_bert_params_view(&m3.cfg, g0, &v0); et_bert_params_view(&m3.cfg, g1, &v1); }
        for (int mode = 1; mode < 4; mode++) /* 1 checkpointed, 2 shared region, 3 both */
        for (int packed = 0; packed < 2; packed++)
            for (int nt = 1; nt <= 2; nt++) {
                size_t b0 = 0, b1 = 0;
                int ck = mode & 1, sh = mode >> 1;
                if (!ckpt_run(&m3, 0, 0, packed, nt, &v0, g0, n, &b0) || !ckpt_run(&m3, ck, sh, packed, nt, &v1, g1, n, &b1)) continue;
                size_t diff = 0, nz = 0;
                for (size_t i = 0; i < n; i++) { diff += memcmp(&g0[i], &g1[i], sizeof(float)) != 0; nz += g0[i] != 0; }
                const char *mn = mode == 1 ? "checkpointed" : mode == 2 ? "shared region" : "checkpointed + shared region";
                CHECK(diff == 0, "%s, %s, %s, %d threads: %zu of %zu gradients differ from plain acts", mn, lora ? "LoRA" : "full",
                      packed ? "packed" : "padded", nt, diff, n);
                CHECK(nz > n / 2, "%zu of %zu gradients non-zero", nz, n);
                CHECK(mode == 2 || b1 < b0, "checkpointed acts %zu bytes < plain %zu", b1, b0);
                printf("%s, %s, %s, %d threads: %zu gradients bit for bit equal; acts %zu -> %zu bytes%s\n", mn,
                       lora ? "LoRA" : "full", packed ? "packed" : "padded", nt, n, b0, b1, sh ? " (own + region)" : "");
            }
        free(g0); free(g1);
    }
    /* MoE is refused */
    et_bert_config cm = c3;
    cm.moe_experts = 2;
    cm.act_checkpoint = 1;
    CHECK(et_bert_config_check(&cm, &err) == ET_ERR_UNSUPPORTED, "checkpointing with MoE refused");
    et_bert_free(&m3);
    et_bert_free(&m);
}

int main(void) {
    test_unit(0.0f);
    test_unit(0.3f);
    test_end_to_end(0);
    test_end_to_end(1);
    test_torch_fixture_and_memory();
    test_attach_save_merge();
    test_resume();
    test_freeze_embeddings();
    test_checkpoint_same_bits();
    return et_test_report("test_lora_train");
}
