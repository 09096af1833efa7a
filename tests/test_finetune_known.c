/* test_finetune_known.c - et_finetune_cfg.known (the page's search index reused by the evaluation before training):
 *   - the starting model's embeddings of most held-out passages (in another order, with a text the run does not
 *     have, one passage left out, encoded in batches of another size) give a run whose every result equals the run
 *     without them, bit for bit (before, BM25, after, hybrid before and after, steps, final loss): the copied rows are
 *     what the encoding would give;
 *   - only the passages not in it are encoded (the "encode eval corpus" step counts them);
 *   - a token cap other than the run's is not used (nothing copied), and the results are again the same;
 *   - release is called once, in each case, and also when the run fails before the evaluation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "encode.h"
#include "et_test.h"
#include "fx_finetune.h"
#include "hf.h"
#include "util.h"

typedef struct { int releases; double enc_total; } rec;

static void release(void *user) { ((rec *)user)->releases++; }
static int cb(void *user, const et_ft_progress *p) {
    rec *r = user;
    if (p->phase == ET_FT_PHASE_EVAL_BEFORE && p->step && !strcmp(p->step, "encode eval corpus")) r->enc_total = p->total;
    return 0;
}

static void cfg(et_finetune_cfg *c, const char *out) {
    base_cfg(c, FX "/pairs.jsonl", out, ET_TRAIN_INFONCE);
    c->train.epochs = 1;
    c->max_len = 32;
}

/* every figure equal, bit for bit (the timings left out) */
static void untime(et_ir_eval *e) { e->seconds_encode = e->seconds_search = 0; }
static void untime_h(et_ft_hybrid *h) { untime(&h->dense); untime(&h->bm25); untime(&h->fused_default); untime(&h->fused_learned); }
static int same(const et_finetune_result *a0, const et_finetune_result *b0) {
    et_finetune_result a = *a0, b = *b0;
    et_finetune_result *r[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        untime(&r[i]->before); untime(&r[i]->after); untime(&r[i]->bm25);
        untime_h(&r[i]->hyb_before); untime_h(&r[i]->hyb_after);
    }
    return !memcmp(&a.before, &b.before, sizeof a.before) && !memcmp(&a.bm25, &b.bm25, sizeof a.bm25) &&
           !memcmp(&a.after, &b.after, sizeof a.after) && !memcmp(&a.hyb_before, &b.hyb_before, sizeof a.hyb_before) &&
           !memcmp(&a.hyb_after, &b.hyb_after, sizeof a.hyb_after) && a.steps == b.steps && a.final_loss == b.final_loss;
}

int main(void) {
    et_error err = {0};
    char tmpl[] = "/tmp/et_test_ftknown_XXXXXX";
    const char *tmp = mkdtemp(tmpl);
    if (!tmp) { fprintf(stderr, "mkdtemp failed\n"); return 1; }
    char out[512];
    et_finetune_cfg c;
    et_finetune_result plain, r;

    snprintf(out, sizeof out, "%s/plain", tmp);
    cfg(&c, out);
    rec P = {0};
    c.progress = cb;
    c.progress_user = &P;
    CHECK(!et_finetune_run(&c, &plain, &err), "plain run: %s", err.msg);
    CHECK(plain.eval_known == 0 && plain.eval_passages > 2 && P.enc_total == (double)plain.eval_passages,
          "plain: %lld known, %lld passages, %g encoded", (long long)plain.eval_known, (long long)plain.eval_passages, P.enc_total);

    /* the known texts: the file's distinct passages in reverse order without the first one, and one more */
    et_pairs D;
    et_read_opts ro = {0, 0};
    CHECK(!et_pairs_read(FX "/pairs.jsonl", &ro, &D, NULL, &err), "%s", err.msg);
    const char **kt = malloc(sizeof(char *) * (size_t)(D.n + 1));
    int32_t nk = 0;
    et_strmap seen = {0};
    CHECK(kt && !et_strmap_init(&seen, D.n, D.passage, "test", &err), "%s", err.msg);
    for (int64_t i = 0; i < D.n; i++)
        if (et_strmap_put(&seen, (int32_t)i) < 0) kt[nk++] = D.passage[i];
    for (int32_t i = 0; i < nk / 2; i++) { const char *t = kt[i]; kt[i] = kt[nk - 1 - i]; kt[nk - 1 - i] = t; }
    nk--; /* the file's first passage (now last) left out */
    kt[nk++] = "a passage the run does not have";
    et_hf_model M = {0};
    CHECK(!et_hf_model_load(MODEL, 1, &M, &err), "%s", err.msg);
    int dim = M.model.cfg.hidden_size;
    float *E = malloc(sizeof(float) * (size_t)nk * (size_t)dim);
    et_encode_opts eo = {5, 32, NULL, NULL};
    CHECK(E && !et_encode_texts(&M.model, M.tok, M.pool, kt, (size_t)nk, &eo, E, &err), "encode: %s", err.msg);
    et_l2norm_rows(E, nk, dim);

    for (int k = 0; k < 2; k++) {
        rec R = {0};
        et_ft_known kn = {kt, E, nk, dim, k == 0 ? 32 : 31, release, &R};
        snprintf(out, sizeof out, "%s/known%d", tmp, k);
        cfg(&c, out);
        c.known = &kn;
        c.progress = cb;
        c.progress_user = &R;
        CHECK(!et_finetune_run(&c, &r, &err), "run with known embeddings (cap %d): %s", kn.max_len, err.msg);
        CHECK(R.releases == 1, "cap %d: released %d times", kn.max_len, R.releases);
        CHECK(same(&r, &plain), "cap %d: results differ from the plain run (nDCG@10 before %.9f vs %.9f, after %.9f vs %.9f)",
              kn.max_len, r.before.ndcg10, plain.before.ndcg10, r.after.ndcg10, plain.after.ndcg10);
        if (k == 0) /* every held-out passage but the left-out one is copied; only what is not is encoded */
            CHECK(r.eval_known >= r.eval_passages - 1 && r.eval_known <= r.eval_passages && r.eval_known > 0 &&
                  R.enc_total == (double)(r.eval_passages - r.eval_known),
                  "cap 32: %lld of %lld copied, %g encoded", (long long)r.eval_known, (long long)r.eval_passages, R.enc_total);
        else CHECK(r.eval_known == 0 && R.enc_total == (double)r.eval_passages, "cap 31: %lld copied, %g encoded", (long long)r.eval_known, R.enc_total);
    }

    /* a run that fails before the evaluation still releases them */
    {
        rec R = {0};
        et_ft_known kn = {kt, E, nk, dim, 32, release, &R};
        snprintf(out, sizeof out, "%s/bad", tmp);
        cfg(&c, out);
        c.data = FX "/no_such_file.jsonl";
        c.known = &kn;
        CHECK(et_finetune_run(&c, &r, &err) != ET_OK && R.releases == 1, "failed run: released %d times", R.releases);
    }

    et_strmap_free(&seen);
    free(E);
    free(kt);
    et_hf_model_free(&M);
    et_pairs_free(&D);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmp);
    return et_test_report("test_finetune_known");
}
