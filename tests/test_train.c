/* test_train.c - the trainer against PyTorch (tests/fixtures/train/steps.bin from tools/gen_train_fixture.py):
 * for each loss (infonce with hard negatives, mse, soft1, soft2, soft3, clp, infonce with frozen tensors):
 * 3 optimizer steps x 2 accumulated micro-batches: every micro loss, the step-0 gradient of every tensor, the
 * clip norms and lrs, and the parameters after 3 steps (warm-up/decay schedule, clipping, no-decay groups).
 * Then, on a tiny HF model and a committed JSONL: exact resume (6 steps straight == 3 + checkpoint + fresh
 * trainer resume + 3, bit for bit), refusal to resume with other settings, NaN handling (the last checkpoint
 * is kept), data errors with file:line, and the memory budget. MoE: a dense model converted by the trainer (2 experts,
 * ste gate, balance loss, jitter, only MoE trained, accumulation 2) resumes bit for bit; the non-MoE tensors stay
 * bit-identical; per-step routing fractions sum to 1; mismatching expert counts / layers / gate modes are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "hf.h"
#include "kernels.h"
#include "moe.h"
#include "tokenizer.h"
#include "train.h"
#include "et_test.h"

/* robust relative error: max|a-b| / max(max|b|, floor) */
static double rel_err(const float *a, const float *b, size_t n, double floor) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d; /* NaN-propagating */
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return md / (mb > floor ? mb : floor);
}

typedef struct {
    int32_t *q_ids, *q_mask, *p_ids, *p_mask, *n_ids, *n_mask, *nq_ids, *nq_mask, *avail;
    float *labels, *scores;
} fx_micro;

/* tolerances of one parity run: loss (relative), gradients and parameters after the steps (rel_err), the
 * gradient norm (relative) */
typedef struct { double loss, grad, params, norm; } parity_tol;

static void test_parity(const char *path, et_precision prec, const parity_tol *tol) {
    FILE *f = fopen(path, "rb");
    CHECK(f, "cannot open %s", path);
    if (!f) return;
    int32_t h[20];
    double hp[8];
    int ok = et_test_read(f, h, sizeof h) && h[0] == 0x46545445 && h[1] == 1 && et_test_read(f, hp, sizeof hp);
    CHECK(ok, "%s: bad header", path);
    if (!ok) { fclose(f); return; }
    int n_params = h[9], B = h[10], G = h[11], Tq = h[12], Td = h[13], NM = h[14], NS = h[15], K = h[16], NC = h[17];
    et_bert_config cfg = {0};
    cfg.vocab_size = h[2]; cfg.hidden_size = h[3]; cfg.num_layers = h[4]; cfg.num_heads = h[5];
    cfg.intermediate_size = h[6]; cfg.max_position = h[7]; cfg.type_vocab_size = h[8];
    cfg.layer_norm_eps = 1e-12f; cfg.hidden_dropout = 0.1f; cfg.attn_dropout = 0.1f;
    cfg.pooling = ET_POOL_MEAN; cfg.normalize = 1;
    et_bert m;
    et_error err = {0};
    CHECK(!et_bert_alloc(&m, &cfg, &err), "alloc: %s", err.msg);
    CHECK(m.n_params == (size_t)n_params, "n_params %zu vs fixture %d", m.n_params, n_params);
    float *p0 = et_test_read_f32(f, (size_t)n_params, &ok);
    fx_micro mb[4];
    CHECK(NM <= 4, "n_micro");
    for (int i = 0; i < NM; i++) {
        mb[i].q_ids = et_test_read_i32(f, (size_t)B * Tq, &ok); mb[i].q_mask = et_test_read_i32(f, (size_t)B * Tq, &ok);
        mb[i].p_ids = et_test_read_i32(f, (size_t)B * Td, &ok); mb[i].p_mask = et_test_read_i32(f, (size_t)B * Td, &ok);
        mb[i].n_ids = et_test_read_i32(f, (size_t)B * G * Td, &ok); mb[i].n_mask = et_test_read_i32(f, (size_t)B * G * Td, &ok);
        mb[i].nq_ids = et_test_read_i32(f, (size_t)B * G * Tq, &ok); mb[i].nq_mask = et_test_read_i32(f, (size_t)B * G * Tq, &ok);
        mb[i].avail = et_test_read_i32(f, (size_t)B * G, &ok);
        mb[i].labels = et_test_read_f32(f, (size_t)B, &ok); mb[i].scores = et_test_read_f32(f, (size_t)B * K, &ok);
    }
    float *y_all = malloc((size_t)NM * B * 4), *S_all = malloc((size_t)NM * B * K * 4), *yh = malloc((size_t)NM * B * 4);
    for (int i = 0; i < NM; i++) {
        memcpy(y_all + i * B, mb[i].labels, (size_t)B * 4);
        memcpy(S_all + (size_t)i * B * K, mb[i].scores, (size_t)B * K * 4);
    }
    unsigned char avail[4][64];
    for (int i = 0; i < NM; i++)
        for (int j = 0; j < B * G; j++) avail[i][j] = (unsigned char)mb[i].avail[j];
    double worst_g = 0, worst_p = 0, worst_l = 0;
    for (int c = 0; c < NC && ok; c++) {
        int32_t ch[4];
        ok = et_test_read(f, ch, sizeof ch);
        double *tg = malloc(sizeof(double) * NM * B), *losses = malloc(sizeof(double) * NS * NM);
        double *norms = malloc(sizeof(double) * NS), *lrs = malloc(sizeof(double) * NS);
        ok = ok && et_test_read(f, tg, sizeof(double) * NM * B) && et_test_read(f, losses, sizeof(double) * NS * NM) &&
             et_test_read(f, norms, sizeof(double) * NS) && et_test_read(f, lrs, sizeof(double) * NS);
        float *g0 = et_test_read_f32(f, (size_t)n_params, &ok), *pa = et_test_read_f32(f, (size_t)n_params, &ok);
        CHECK(ok, "%s: truncated", path);
        if (!ok) { free(tg); free(losses); free(norms); free(lrs); free(g0); free(pa); break; }
        et_train_cfg tc;
        et_train_cfg_default(&tc);
        tc.loss = (et_train_loss)ch[0];
        tc.soft_norm = (et_soft_norm)ch[1];
        tc.freeze = ch[2] ? "embeddings.,encoder.layer.0.attention." : NULL;
        tc.lr = hp[0]; tc.weight_decay = hp[1]; tc.adam_eps = hp[2]; tc.max_grad_norm = hp[3];
        tc.tau = hp[4]; tc.lambda = hp[5]; tc.alpha = hp[6]; tc.warmup_steps = (long)hp[7];
        tc.total_steps = NS + 1;
        tc.batch = B; tc.grad_accum = NM; tc.negatives = G; tc.dropout = 0; tc.threads = 2;
        tc.max_len_q = Tq; tc.max_len_d = Td;
        tc.precision = prec;
        char label[96];
        snprintf(label, sizeof label, "%s%s (%s, %s)", et_train_loss_name(tc.loss), ch[2] ? "+freeze" : "",
                 et_train_precision_name(prec), path);
        int pairwise = tc.loss != ET_TRAIN_INFONCE && tc.loss != ET_TRAIN_CLP;
        if (pairwise) {
            if (tc.loss == ET_TRAIN_MSE) memcpy(yh, y_all, (size_t)NM * B * 4);
            else {
                et_soft_rule r = tc.loss == ET_TRAIN_SOFT1 ? ET_SOFT_MEAN : tc.loss == ET_TRAIN_SOFT2 ? ET_SOFT_BLEND : ET_SOFT_GATED;
                CHECK(!et_soft_targets(r, tc.soft_norm, tc.alpha, y_all, S_all, NM * B, K, yh, &err), "soft: %s", err.msg);
            }
            for (int i = 0; i < NM * B; i++)
                CHECK(fabs(yh[i] - tg[i]) < 1e-6, "%s: target %d: %g vs %g", label, i, yh[i], tg[i]);
        }
        memcpy(m.params, p0, (size_t)n_params * 4);
        et_trainer tr;
        et_status s = et_trainer_init(&tr, &tc, &m, NULL, NULL, &err);
        CHECK(!s, "%s: init: %s", label, err.msg);
        if (s) continue;
        for (int st = 0; st < NS; st++) {
            for (int i = 0; i < NM; i++) {
                et_train_batch b = {0};
                b.B = B; b.G = pairwise ? 0 : G;
                b.q_ids = mb[i].q_ids; b.q_mask = mb[i].q_mask; b.Tq = Tq;
                b.p_ids = mb[i].p_ids; b.p_mask = mb[i].p_mask; b.Td = Td;
                b.n_ids = mb[i].n_ids; b.n_mask = mb[i].n_mask; b.Tn = Td;
                b.nq_ids = mb[i].nq_ids; b.nq_mask = mb[i].nq_mask; b.Tnq = Tq; b.nq_avail = avail[i];
                b.target = yh + i * B;
                double l = 0;
                s = et_trainer_micro(&tr, &b, 0, &l, &err);
                CHECK(!s, "%s: micro: %s", label, err.msg);
                double want = losses[st * NM + i], e = fabs(l - want) / fmax(fabs(want), 1e-3);
                if (e > worst_l) worst_l = e;
                CHECK(e < tol->loss, "%s step %d micro %d: loss %.8g vs torch %.8g", label, st, i, l, want);
            }
            if (st == 0) {
                /* tr.grads covers what gets a gradient: params[lo, n) (a frozen prefix has none, train.h) */
                size_t lo = (size_t)(tr.train_params - m.params);
                float *gfull = calloc((size_t)n_params, sizeof(float));
                memcpy(gfull + lo, tr.grads, tr.train_n * sizeof(float));
                double gmax = 0;
                for (int i = 0; i < n_params; i++) gmax = fmax(gmax, fabs(g0[i]));
                for (int t = 0; t < m.n_tensors; t++) {
                    const et_tensor_view *v = &m.tensors[t];
                    double rmax = 0, cmax = 0;
                    for (size_t i = 0; i < v->numel; i++) {
                        rmax = fmax(rmax, fabs(g0[v->offset + i]));
                        cmax = fmax(cmax, fabs(gfull[v->offset + i]));
                    }
                    if (rmax < 1e-12 * gmax && rmax > 0) {
                        /* mathematically zero (attention key bias: softmax is shift invariant); torch float64 gives
                         * ~1e-17, float32 ~1e-8 rounding noise: check it is noise-sized relative to the model's grads */
                        CHECK(cmax <= 1e-5 * gmax, "%s: grad %s should be ~0: max %.3g (model max %.3g)", label, v->name, cmax, gmax);
                        continue;
                    }
                    double e = rel_err(gfull + v->offset, g0 + v->offset, v->numel, 1e-6);
                    if (e > worst_g) worst_g = e;
                    CHECK(e <= tol->grad, "%s: grad %s rel err %.3g", label, v->name, e);
                }
                free(gfull);
            }
            et_train_stats sts;
            s = et_trainer_update(&tr, &sts, &err);
            CHECK(!s, "%s: update: %s", label, err.msg);
            CHECK(fabs(sts.grad_norm - norms[st]) <= tol->norm * norms[st], "%s step %d: grad norm %.8g vs %.8g", label, st,
                  sts.grad_norm, norms[st]);
            CHECK(fabs(sts.lr - lrs[st]) <= 1e-12, "%s step %d: lr %.8g vs %.8g", label, st, sts.lr, lrs[st]);
        }
        for (int t = 0; t < m.n_tensors; t++) {
            const et_tensor_view *v = &m.tensors[t];
            double e = rel_err(m.params + v->offset, pa + v->offset, v->numel, 1e-3);
            if (e > worst_p) worst_p = e;
            CHECK(e <= tol->params, "%s: params after %d steps: %s rel err %.3g", label, NS, v->name, e);
            /* frozen tensors must be bit-identical to the start */
            if (ch[2] && (strncmp(v->name, "embeddings.", 11) == 0 || strncmp(v->name, "encoder.layer.0.attention.", 26) == 0))
                CHECK(!memcmp(m.params + v->offset, p0 + v->offset, v->numel * 4), "%s: frozen %s changed", label, v->name);
        }
        et_trainer_free(&tr);
        free(tg); free(losses); free(norms); free(lrs); free(g0); free(pa);
    }
    printf("parity %s vs torch %s (%d cases x %d steps x %d micro-batches): worst loss rel %.2e, grad rel %.2e, "
           "params-after rel %.2e\n", et_train_precision_name(prec), path, NC, NS, NM, worst_l, worst_g, worst_p);
    fclose(f);
    for (int i = 0; i < NM; i++) {
        free(mb[i].q_ids); free(mb[i].q_mask); free(mb[i].p_ids); free(mb[i].p_mask); free(mb[i].n_ids);
        free(mb[i].n_mask); free(mb[i].nq_ids); free(mb[i].nq_mask); free(mb[i].avail); free(mb[i].labels); free(mb[i].scores);
    }
    free(y_all); free(S_all); free(yh); free(p0);
    et_bert_free(&m);
}

/* ---------------------------------------------------------------- run / resume on a tiny HF model */

#define MODEL_DIR "tests/fixtures/hf/good_f32"
#define PAIRS "tests/fixtures/train/tiny_pairs.jsonl"

typedef struct { double loss[64]; int n; } rec;
static int record(void *u, const et_train_stats *s) {
    rec *r = u;
    if (r->n < 64) r->loss[r->n++] = s->loss;
    return 0;
}

static void base_cfg(et_train_cfg *c, const char *out, rec *r) {
    et_train_cfg_default(c);
    c->loss = ET_TRAIN_INFONCE;
    c->batch = 4; c->epochs = 2; c->lr = 1e-3; c->warmup_steps = 2; c->dropout = 1; c->threads = 2;
    c->max_len_q = 12; c->max_len_d = 16; c->seed = 7;
    c->out_dir = out; c->vocab_path = MODEL_DIR "/vocab.txt";
    c->progress = record; c->user = r;
}

/* train (optionally resuming) on a fresh model; returns the status, leaves final params in *m */
static et_status train_once(et_train_cfg *c, int resume, et_bert *m, const et_train_data *d, const et_tokenizer *tok,
                            et_error *err) {
    et_status s = et_hf_load(MODEL_DIR, m, err);
    if (s) return s;
    et_trainer tr;
    if ((s = et_trainer_init(&tr, c, m, NULL, d, err))) return s;
    if (resume && (s = et_trainer_resume(&tr, err))) { et_trainer_free(&tr); return s; }
    s = et_trainer_run(&tr, tok, err);
    et_trainer_free(&tr);
    return s;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

static void test_resume(void) {
    et_error err = {0};
    et_tokenizer *tok = et_tokenizer_load_vocab(MODEL_DIR "/vocab.txt", &err);
    CHECK(tok, "vocab: %s", err.msg);
    et_train_data d;
    et_status s = et_train_data_read(PAIRS, &d, &err);
    CHECK(!s && d.n == 12, "read pairs: %s", err.msg);
    if (!tok || s) return;
    char dir_a[] = "/tmp/et_train_a_XXXXXX", dir_b[] = "/tmp/et_train_b_XXXXXX";
    CHECK(mkdtemp(dir_a) && mkdtemp(dir_b), "mkdtemp");

    /* A: 6 steps straight (12 examples / batch 4 = 3 steps per epoch, 2 epochs) */
    rec ra = {0}, rb = {0};
    et_train_cfg ca, cb;
    base_cfg(&ca, dir_a, &ra);
    et_bert ma, mb;
    s = train_once(&ca, 0, &ma, &d, tok, &err);
    CHECK(!s, "run A: %s", err.msg);
    CHECK(ra.n == 6, "run A: %d steps (want 6)", ra.n);

    /* B: 3 steps, stop (checkpoint), then a fresh model + trainer resumes for the other 3 */
    base_cfg(&cb, dir_b, &rb);
    cb.stop_after = 3;
    s = train_once(&cb, 0, &mb, &d, tok, &err);
    CHECK(!s, "run B1: %s", err.msg);
    CHECK(rb.n == 3, "run B1: %d steps (want 3)", rb.n);
    et_bert_free(&mb);
    cb.stop_after = 0;
    s = train_once(&cb, 1, &mb, &d, tok, &err);
    CHECK(!s, "run B2 (resume): %s", err.msg);
    CHECK(rb.n == 6, "run B: %d steps in all (want 6)", rb.n);
    for (int i = 0; i < 6 && i < ra.n && i < rb.n; i++)
        CHECK(ra.loss[i] == rb.loss[i], "step %d: loss %.17g (straight) vs %.17g (resumed)", i + 1, ra.loss[i], rb.loss[i]);
    CHECK(ma.n_params == mb.n_params && !memcmp(ma.params, mb.params, ma.n_params * 4), "final params differ after resume");
    CHECK(ra.loss[5] < ra.loss[0], "loss did not fall: %g -> %g", ra.loss[0], ra.loss[5]);
    printf("resume: losses %.6f %.6f %.6f | %.6f %.6f %.6f identical, final params bit-identical\n", ra.loss[0], ra.loss[1],
           ra.loss[2], ra.loss[3], ra.loss[4], ra.loss[5]);

    /* the saved final model loads and equals the trained parameters */
    et_bert mf;
    s = et_hf_load(dir_a, &mf, &err);
    CHECK(!s, "load final: %s", err.msg);
    if (!s) {
        CHECK(mf.n_params == ma.n_params && !memcmp(mf.params, ma.params, ma.n_params * 4), "saved final model differs");
        et_bert_free(&mf);
    }
    et_bert_free(&ma);
    et_bert_free(&mb);

    /* resume with a different lr is refused, naming the setting */
    rec rc = {0};
    et_train_cfg cc;
    base_cfg(&cc, dir_b, &rc);
    cc.lr = 5e-4;
    et_bert mc;
    s = train_once(&cc, 1, &mc, &d, tok, &err);
    CHECK(s == ET_ERR_MISMATCH && strstr(err.msg, "lr="), "resume with other lr: %d %s", s, err.msg);
    et_bert_free(&mc);

    /* NaN: a poisoned parameter stops training with ET_ERR_NUMERIC; 'latest' is left as it was */
    char latest[512], *before = NULL, *after = NULL;
    size_t lb = 0, la = 0;
    snprintf(latest, sizeof latest, "%s/latest", dir_b);
    et_read_file(latest, 4096, &before, &lb, NULL);
    {
        et_train_cfg cn;
        rec rn = {0};
        base_cfg(&cn, dir_b, &rn);
        cn.epochs = 3; /* other settings: a fresh run into the same folder must not touch 'latest' before a step */
        s = et_hf_load(MODEL_DIR, &mc, &err);
        for (size_t i = 0; i < mc.n_params; i++) mc.params[i] = NAN;
        et_trainer tr;
        s = et_trainer_init(&tr, &cn, &mc, NULL, &d, &err);
        CHECK(!s, "init: %s", err.msg);
        if (!s) {
            s = et_trainer_run(&tr, tok, &err);
            CHECK(s == ET_ERR_NUMERIC && strstr(err.msg, "diverged"), "NaN run: %d %s", s, err.msg);
            et_trainer_free(&tr);
        }
        et_bert_free(&mc);
    }
    et_read_file(latest, 4096, &after, &la, NULL);
    CHECK(before && after && la == lb && !memcmp(before, after, la), "'latest' changed after a diverged run");
    free(before); free(after);

    /* memory budget */
    {
        et_train_cfg cm;
        rec rm = {0};
        base_cfg(&cm, dir_b, &rm);
        cm.mem_budget = 1 << 16;
        et_hf_load(MODEL_DIR, &mc, &err);
        et_trainer tr;
        s = et_trainer_init(&tr, &cm, &mc, NULL, &d, &err);
        CHECK(s == ET_ERR_NOMEM && strstr(err.msg, "memory budget"), "budget: %d %s", s, err.msg);
        et_bert_free(&mc);
    }

    /* data errors name file:line */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir_b);
    const char *cases[][2] = {
        {"{\"query\": \"a\", \"positive\": \"b\"}\n\n{\"query\": \"a\"}\n", ":3: missing field 'positive'"},
        {"{\"query\": \"a\", \"positive\": \"b\"}\nnot json\n", ":2: invalid JSON"},
        {"{\"query\": \"a\", \"positive\": \"b\", \"negatives\": [\"x\"], \"negative_queries\": []}\n", ":1: field 'negative_queries' has 0 entries"},
        {"{\"query\": \"a\", \"positive\": \"b\", \"scores\": [1, \"x\"]}\n", ":1: scores[1]: expected a number"},
        {"", "no data rows"},
        {"{\"query\": \"a\", \"positive\": \"b\", \"label\": 1}\n{\"query\": \"a\", \"positive\": \"b\"}\n", ":2: missing field 'label'"},
        {"{\"query\": \"a\", \"positive\": \"b\", \"label\": 2}\n", ":1: field 'label': 2 is not in [0,1]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(bad, cases[i][0]);
        et_train_data bd;
        s = et_train_data_read(bad, &bd, &err);
        CHECK(s && strstr(err.msg, cases[i][1]), "bad data %zu: want '%s', got '%s'", i, cases[i][1], err.msg);
    }
    /* loss/data fit: mse needs labels (file:line), clp needs negatives */
    write_text(bad, "\n{\"query\": \"a\", \"positive\": \"b\"}\n{\"query\": \"a\", \"positive\": \"b\"}\n");
    et_train_data bd;
    s = et_train_data_read(bad, &bd, &err);
    CHECK(!s, "read: %s", err.msg);
    if (!s) {
        et_train_cfg cx;
        rec rx = {0};
        base_cfg(&cx, dir_b, &rx);
        cx.loss = ET_TRAIN_MSE;
        et_hf_load(MODEL_DIR, &mc, &err);
        et_trainer tr;
        s = et_trainer_init(&tr, &cx, &mc, NULL, &bd, &err);
        CHECK(s && strstr(err.msg, ":2: field 'label' is missing"), "mse without label: %s", err.msg);
        cx.loss = ET_TRAIN_CLP;
        s = et_trainer_init(&tr, &cx, &mc, NULL, &bd, &err);
        CHECK(s && strstr(err.msg, ":2: loss clp needs"), "clp without negatives: %s", err.msg);
        et_bert_free(&mc);
        et_train_data_free(&bd);
    }
    et_train_data_free(&d);
    et_tokenizer_free(tok);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir_a, dir_b);
    if (system(cmd)) fprintf(stderr, "warning: could not remove temp folders\n");
}

/* ---------------------------------------------------------------- MoE (src/moe.h) in the trainer */

typedef struct { double loss[64]; int n; int frac_ok; int layers; } moe_rec;
static int moe_record(void *u, const et_train_stats *s) {
    moe_rec *r = u;
    if (r->n < 64) r->loss[r->n++] = s->loss;
    r->layers = s->moe_layers;
    for (int k = 0; k < s->moe_layers; k++) {
        double sum = 0;
        for (int e = 0; e < s->moe_experts; e++) sum += s->moe_frac[k * s->moe_experts + e];
        if (fabs(sum - 1) > 1e-5 || !(s->moe_aux > 0)) r->frac_ok = 0;
    }
    return 0;
}

static void moe_cfg(et_train_cfg *c, const char *out, moe_rec *r) {
    et_train_cfg_default(c);
    c->batch = 4; c->epochs = 2; c->lr = 1e-3; c->warmup_steps = 2; c->dropout = 1; c->threads = 2;
    c->max_len_q = 12; c->max_len_d = 16; c->seed = 11; c->grad_accum = 2;
    c->out_dir = out; c->vocab_path = MODEL_DIR "/vocab.txt";
    c->moe_experts = 2; c->train_only_moe = 1; c->moe_gate_scale = ET_MOE_GATE_STE; c->moe_aux_weight = 0.02;
    c->moe_jitter = 0.05; /* exercised with dropout on */
    c->progress = moe_record; c->user = r;
    r->frac_ok = 1;
}

static et_status moe_once(et_train_cfg *c, int resume, et_bert *m, const et_train_data *d, const et_tokenizer *tok,
                          et_error *err) {
    et_status s = et_hf_load(MODEL_DIR, m, err);
    if (s) return s;
    et_trainer tr;
    if ((s = et_trainer_init(&tr, c, m, NULL, d, err))) return s;
    if (resume && (s = et_trainer_resume(&tr, err))) { et_trainer_free(&tr); return s; }
    s = et_trainer_run(&tr, tok, err);
    et_trainer_free(&tr);
    return s;
}

static void test_moe(void) {
    et_error err = {0};
    et_tokenizer *tok = et_tokenizer_load_vocab(MODEL_DIR "/vocab.txt", &err);
    et_train_data d;
    et_status s = et_train_data_read(PAIRS, &d, &err);
    CHECK(tok && !s, "setup: %s", err.msg);
    if (!tok || s) return;
    char dir_a[] = "/tmp/et_train_moe_a_XXXXXX", dir_b[] = "/tmp/et_train_moe_b_XXXXXX";
    CHECK(mkdtemp(dir_a) && mkdtemp(dir_b), "mkdtemp");
    et_bert dense, ma, mb;
    CHECK(!et_hf_load(MODEL_DIR, &dense, &err), "load: %s", err.msg);

    /* straight: 12 examples / batch 4 / accum 2 = 2 steps per epoch, 2 epochs = 4 steps */
    moe_rec ra = {0}, rb = {0};
    et_train_cfg ca, cb;
    moe_cfg(&ca, dir_a, &ra);
    s = moe_once(&ca, 0, &ma, &d, tok, &err);
    CHECK(!s, "MoE run A: %s", err.msg);
    CHECK(ra.n == 4 && ra.layers == ma.cfg.num_layers && ra.frac_ok, "MoE run A: %d steps, %d MoE layers, fractions ok %d",
          ra.n, ra.layers, ra.frac_ok);
    CHECK(ma.cfg.moe_experts == 2 && ma.cfg.moe_gate_scale == ET_MOE_GATE_STE && ma.cfg.moe_aux_weight == 0.02f,
          "converted config: E %d gate %d aux %g", ma.cfg.moe_experts, ma.cfg.moe_gate_scale, ma.cfg.moe_aux_weight);
    /* stop after 1 step, resume on a fresh dense model (converted again by init, then the checkpoint) */
    moe_cfg(&cb, dir_b, &rb);
    cb.stop_after = 1;
    s = moe_once(&cb, 0, &mb, &d, tok, &err);
    CHECK(!s && rb.n == 1, "MoE run B1: %s (%d steps)", err.msg, rb.n);
    et_bert_free(&mb);
    cb.stop_after = 0;
    s = moe_once(&cb, 1, &mb, &d, tok, &err);
    CHECK(!s && rb.n == 4, "MoE run B2 (resume): %s (%d steps)", err.msg, rb.n);
    for (int i = 0; i < 4 && i < ra.n && i < rb.n; i++)
        CHECK(ra.loss[i] == rb.loss[i], "MoE step %d: loss %.17g (straight) vs %.17g (resumed)", i + 1, ra.loss[i], rb.loss[i]);
    CHECK(!s && ma.n_params == mb.n_params && !memcmp(ma.params, mb.params, ma.n_params * 4), "MoE final params differ after resume");
    /* only the MoE tensors moved; every other tensor is bit-identical to the dense model's */
    int moved = 0, kept = 0, bad = 0;
    for (int i = 0; i < ma.n_tensors; i++) {
        const et_tensor_view *v = &ma.tensors[i];
        if (et_bert_is_moe_tensor(v->name)) continue; /* checked below */
        const et_tensor_view *dv = et_bert_find(&dense, v->name);
        if (!dv || memcmp(ma.params + v->offset, dense.params + dv->offset, v->numel * 4)) { bad++; CHECK(0, "frozen tensor %s changed", v->name); }
        else kept++;
    }
    for (int l = 0; l < ma.cfg.num_layers; l++) { /* experts differ from the dense up-projection they were copied from */
        char nm[ET_NAME_MAX];
        snprintf(nm, sizeof nm, "encoder.layer.%d.intermediate.dense.weight", l);
        const et_tensor_view *dv = et_bert_find(&dense, nm);
        for (int e = 0; e < 2 && dv; e++) {
            snprintf(nm, sizeof nm, "encoder.layer.%d.intermediate.dense.experts.%d.weight", l, e);
            const et_tensor_view *v = et_bert_find(&ma, nm);
            moved += v && memcmp(ma.params + v->offset, dense.params + dv->offset, v->numel * 4) != 0;
        }
    }
    CHECK(moved == 2 * ma.cfg.num_layers && !bad, "train_only_moe: %d experts moved (want %d), %d frozen tensors changed", moved,
          2 * ma.cfg.num_layers, bad);
    printf("MoE: losses %.6f %.6f %.6f %.6f straight == resumed, final params bit-identical; %d non-MoE tensors unchanged, %d experts trained\n",
           ra.loss[0], ra.loss[1], ra.loss[2], ra.loss[3], kept, moved);
    /* the saved folder records the mode and loads with the trained parameters */
    et_bert mf;
    s = et_hf_load(dir_a, &mf, &err);
    CHECK(!s, "load MoE final: %s", err.msg);
    if (!s) {
        CHECK(mf.cfg.moe_gate_scale == ET_MOE_GATE_STE && mf.n_params == ma.n_params && !memcmp(mf.params, ma.params, ma.n_params * 4),
              "saved MoE model differs");
        et_bert_free(&mf);
    }
    /* resume with another gate mode is refused, naming it */
    {
        moe_rec rc = {0};
        et_train_cfg cc;
        moe_cfg(&cc, dir_b, &rc);
        cc.moe_gate_scale = ET_MOE_GATE_SWITCH;
        et_bert mc;
        s = moe_once(&cc, 1, &mc, &d, tok, &err);
        CHECK(s == ET_ERR_MISMATCH && strstr(err.msg, "moe_gate="), "resume with other gate: %d %s", s, err.msg);
        et_bert_free(&mc);
    }
    /* an MoE model with 2 experts is refused for 3; train_only_moe on a dense model without experts is refused */
    {
        moe_rec rc = {0};
        et_train_cfg cc;
        moe_cfg(&cc, dir_b, &rc);
        cc.moe_experts = 3;
        et_trainer tr;
        s = et_trainer_init(&tr, &cc, &ma, NULL, &d, &err);
        CHECK(s == ET_ERR_MISMATCH && strstr(err.msg, "already a mixture of experts with 2") && strstr(err.msg, "3 were asked"),
              "expert count mismatch: %d %s", s, err.msg);
        cc.moe_experts = 2; cc.moe_layer_mask = (uint64_t)1 << 5;
        s = et_trainer_init(&tr, &cc, &ma, NULL, &d, &err);
        CHECK(s == ET_ERR_ARG && strstr(err.msg, "layer"), "bad layer mask: %d %s", s, err.msg);
        cc.moe_experts = 0; cc.moe_layer_mask = 0;
        s = et_trainer_init(&tr, &cc, &dense, NULL, &d, &err);
        CHECK(s == ET_ERR_ARG && strstr(err.msg, "dense"), "train_only_moe on a dense model: %d %s", s, err.msg);
        CHECK(dense.cfg.moe_experts == 0, "a refused init converted the model");
        /* moe_experts = 0 keeps an MoE model as it is (its own settings) */
        cc.train_only_moe = 0; cc.moe_gate_scale = ET_MOE_GATE_UNSCALED;
        s = et_trainer_init(&tr, &cc, &ma, NULL, &d, &err);
        CHECK(!s && ma.cfg.moe_gate_scale == ET_MOE_GATE_STE && tr.moe_nl == ma.cfg.num_layers, "keep MoE model: %s", err.msg);
        if (!s) et_trainer_free(&tr);
    }
    et_bert_free(&ma); et_bert_free(&mb); et_bert_free(&dense);
    et_train_data_free(&d);
    et_tokenizer_free(tok);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir_a, dir_b);
    if (system(cmd)) fprintf(stderr, "warning: could not remove temp folders\n");
}

/* ---------------------------------------------------------------- known false negatives (exclude_positives) */

/* et_trainer_exclude on hand-made FAQ rows (several answers per question, an answer shared by two questions, a
 * negative that is another question's answer): exactly the other positives of each row's query are excluded; data
 * with one answer per question get no index (bit for bit the old training, the old resume check). */
static void test_exclude(void) {
    et_error err = {0};
    static char *q[5] = {"faq a", "faq a", "faq b", "faq a", "faq c"};
    static char *p[5] = {"a1", "a2", "b1", "a1", "a1"};
    static char *ng[5][2] = {{"b1", "x"}, {"y", "z"}, {"a2", "w"}, {"a2", "v"}, {"u", "t"}};
    et_train_example ex[5];
    memset(ex, 0, sizeof ex);
    for (int i = 0; i < 5; i++) { ex[i].query = q[i]; ex[i].positive = p[i]; ex[i].negatives = ng[i]; ex[i].n_neg = 2; }
    et_train_data d = {ex, 5, 0, "faq"};
    d.hash = et_train_data_hash(&d);
    et_bert m;
    if (et_hf_load(MODEL_DIR, &m, &err)) { CHECK(0, "model: %s", err.msg); return; }
    et_train_cfg c;
    rec r = {0};
    base_cfg(&c, "/tmp/et_train_exclude_unused", &r);
    c.batch = 5;
    c.negatives = 2;
    et_trainer tr;
    CHECK(et_trainer_init(&tr, &c, &m, NULL, &d, &err) == ET_OK, "init: %s", err.msg);
    int idx[5] = {0, 1, 2, 3, 4}, nc = 5 + 10;
    unsigned char x[5 * 15];
    int64_t cands = 0, excl = 0, own = 0;
    long nx = et_trainer_exclude(&tr, idx, 5, 2, 1, x, &cands, &excl, &own);
    /* expected entries: row 0 (a, own a1): a2 = positive 1, the negatives a2 of rows 2 and 3; row 1 (a, own a2): the
     * a1 of rows 0, 3, 4; row 3 (a, own a1): positive 1, row 2's negative a2 and its own negative a2; rows 2 (b) and
     * 4 (c): none */
    unsigned char want[5 * 15] = {0};
    want[0 * nc + 1] = want[0 * nc + 5 + 2 * 2] = want[0 * nc + 5 + 3 * 2] = 1;
    want[1 * nc + 0] = want[1 * nc + 3] = want[1 * nc + 4] = 1;
    want[3 * nc + 1] = want[3 * nc + 5 + 2 * 2] = want[3 * nc + 5 + 3 * 2] = 1;
    CHECK(nx == 9 && !memcmp(x, want, sizeof want), "exclude matrix: %ld entries", nx);
    for (int i = 0; i < 5 * 15; i++)
        if (x[i] != want[i]) printf("  exclude[%d][%d] = %d, want %d\n", i / nc, i % nc, x[i], want[i]);
    CHECK(cands == 5 * 4 + 5 * 4 * 2 && excl == 8 && own == 1, "counts: %lld candidates, %lld excluded, %lld own",
          (long long)cands, (long long)excl, (long long)own);
    CHECK(strstr(tr.canon, ";exclude_positives=1") != NULL, "canon names the exclusion: %s", tr.canon);
    /* the soft list form keeps its own group (targets): own_neg = 0 */
    nx = et_trainer_exclude(&tr, idx, 5, 2, 0, x, NULL, NULL, NULL);
    want[3 * nc + 5 + 3 * 2] = 0;
    CHECK(nx == 8 && !memcmp(x, want, sizeof want), "exclude matrix without own negatives: %ld entries", nx);
    /* a batch of a sub-set, in another order, and G = 0 (no negatives seen) */
    int idx2[3] = {3, 2, 1};
    unsigned char x2[3 * 3];
    nx = et_trainer_exclude(&tr, idx2, 3, 0, 1, x2, NULL, NULL, NULL);
    unsigned char want2[9] = {0, 0, 1, 0, 0, 0, 1, 0, 0};
    CHECK(nx == 2 && !memcmp(x2, want2, sizeof want2), "sub-batch G=0: %ld entries", nx);
    et_trainer_free(&tr);
    /* off: no index, canon as before */
    c.exclude_positives = 0;
    CHECK(et_trainer_init(&tr, &c, &m, NULL, &d, &err) == ET_OK && !tr.fx_off && !strstr(tr.canon, "exclude"), "off: %s", err.msg);
    et_trainer_free(&tr);
    /* one answer per question (even one shared by two questions, or a negative that is another question's answer):
     * no index, the canon of exclude_positives = 0 */
    c.exclude_positives = 1;
    ex[1].query = "faq d"; ex[3].query = "faq e";
    d.hash = et_train_data_hash(&d);
    CHECK(et_trainer_init(&tr, &c, &m, NULL, &d, &err) == ET_OK && !tr.fx_off && !tr.fx_x && !strstr(tr.canon, "exclude"),
          "one answer per question: index %p, canon %s", (void *)tr.fx_off, tr.canon);
    CHECK(et_trainer_exclude(&tr, idx, 5, 2, 1, x, NULL, NULL, NULL) == 0, "no index: nothing excluded");
    et_trainer_free(&tr);
    et_bert_free(&m);
    printf("exclude: FAQ rows -> 9 entries as expected; one answer per question -> no index\n");
}

int main(void) {
    const parity_tol fp32 = {1e-4, 1e-4, 1e-4, 1e-4};
    test_parity("tests/fixtures/train/steps.bin", ET_PREC_FP32, &fp32);
    /* --precision bf16 (where VDPBF16PS or AMX runs; elsewhere it is refused and there is nothing to run):
     * 1. against steps_bf16.bin, torch's float64 steps with every Linear GEMM operand rounded to bf16 (tools/
     *    gen_train_fixture.py --bf16): the same arithmetic, so only float32 rounding differs, except that now and
     *    then a value float32 and float64 compute a hair apart lies on two sides of a bf16 rounding boundary and
     *    rounds 2^-8 apart: measured worst loss 1.3e-4, gradient 1.2e-3, parameters 9.3e-4; tolerances 4x that;
     * 2. against steps.bin (exact): what bf16 operands cost (each rounding within 2^-8 = 3.9e-3 relative). The torch
     *    emulation itself is 3.4e-3 (loss) and 6.7e-3 (gradients, of the largest) from steps.bin; measured here
     *    loss 3.5e-3, per-tensor gradient 1.3e-2, parameters 2.2e-2; tolerances about 3x that, still 10-100x below
     *    a wrong GEMM (a transposed or unrounded operand moves these by O(1)). */
    /* Each native bf16 table in turn (et_bf16_force). AMX (TDPBF16PS) sums a tile step's 32 products its own way,
     * within fp32 rounding of the exact sum like VDPBF16PS (tests/test_bf16.c; at K = 4096 its rms error is even
     * smaller, 2.0e-9 vs 2.7e-9 of sum |ab|), but its float32 rounding differs from the chain of fmas, so other
     * values land on the other side of a bf16 rounding boundary than in the float64 emulation: measured worst
     * against steps_bf16.bin loss 5.6e-4, gradient 3.3e-3, parameters 7.9e-3 (3 AdamW steps magnify the
     * gradients' differences where they are small); tolerances about 3x that, as for VDPBF16PS. Against the exact
     * steps.bin it measures as VDPBF16PS does (3.4e-3, 1.4e-2, 2.2e-2), under the same tolerances. */
    static const char *const tables[2] = {"avx512bf16", "amx-bf16"};
    const parity_tol same[2] = {{5e-4, 5e-3, 4e-3, 1e-3}, {2e-3, 1e-2, 2.5e-2, 3e-3}}, exact = {1e-2, 4e-2, 6e-2, 1e-2};
    int ran = 0;
    for (int i = 0; i < 2; i++) {
        if (et_bf16_force(tables[i]) != 0) continue;
        printf("parity bf16 on %s:\n", et_bf16_name());
        test_parity("tests/fixtures/train/steps_bf16.bin", ET_PREC_BF16, &same[i]);
        test_parity("tests/fixtures/train/steps.bin", ET_PREC_BF16, &exact);
        ran++;
    }
    et_bf16_force(NULL);
    if (!ran) printf("parity bf16: skipped (%s: no VDPBF16PS or AMX here)\n", et_bf16_name());
    test_exclude();
    test_resume();
    test_moe();
    return et_test_report("test_train");
}
