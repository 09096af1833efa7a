/* test_matryoshka.c - the Matryoshka loss wrapper (matryoshka.h) against PyTorch (sentence-transformers'
 * MatryoshkaLoss over MNRL, CLP and CosineSimilarityLoss: tests/fixtures/matryoshka/mrl.txt from
 * tools/gen_matryoshka_fixture.py), finite differences of its gradient, the list parser, and the embedding cut of
 * encode.h (et_embed_truncate) on a hand-computed case; et_eval_ir_dims (evaluate.h: several sizes from one corpus
 * encoding, what finetune's dev split uses with --matryoshka) against et_eval_ir with eo.dim, size by size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "encode.h"
#include "evaluate.h"
#include "hf.h"
#include "matryoshka.h"
#include "et_test.h"

/* max |a-b| / max(max|b|, 1e-12) */
static double rel_err(const float *a, const double *b, int n) {
    double mx = 0, sc = 1e-12;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > mx) mx = d;
        if (fabs(b[i]) > sc) sc = fabs(b[i]);
    }
    return mx / sc;
}

typedef struct {
    et_loss_cfg cfg;
    et_matryoshka m;
    et_mrl_args a;
    float *Q, *P, *N, *NQ;
    double *scratch;
    float *fs;
} problem;

static double run(problem *pb, float *dQ, float *dP, float *dN, float *dNQ) {
    pb->a.Q = pb->Q; pb->a.P = pb->P; pb->a.N = pb->N; pb->a.NQ = pb->NQ;
    double L = NAN;
    et_error err = {0};
    if (et_loss_matryoshka(&pb->cfg, &pb->m, &pb->a, dQ, dP, dN, dNQ, pb->scratch, pb->fs, &L, &err)) {
        fprintf(stderr, "matryoshka loss failed: %s\n", err.msg);
        exit(1);
    }
    return L;
}

/* double-sided finite differences on every input float; max |fd - analytic| / max |analytic| */
static double fd_check(problem *pb, int nmat) {
    int B = pb->a.B, G = pb->a.G, C = pb->a.C, cnt[4] = {B * C, B * C, B * G * C, B * G * C};
    float *X[4] = {pb->Q, pb->P, pb->N, pb->NQ}, *g[4];
    for (int m = 0; m < 4; m++) g[m] = calloc((size_t)cnt[m] + 1, sizeof(float));
    run(pb, g[0], g[1], nmat > 2 ? g[2] : NULL, nmat > 3 ? g[3] : NULL);
    double worst = 0;
    for (int m = 0; m < nmat; m++) {
        double mx = 1e-12, de = 0;
        for (int i = 0; i < cnt[m]; i++) if (fabs(g[m][i]) > mx) mx = fabs(g[m][i]);
        for (int i = 0; i < cnt[m]; i++) {
            float x0 = X[m][i], xp = x0 + 1e-3f * (fabsf(x0) > 1 ? fabsf(x0) : 1), xm = x0 - (xp - x0);
            X[m][i] = xp;
            double lp = run(pb, NULL, NULL, NULL, NULL);
            X[m][i] = xm;
            double lm = run(pb, NULL, NULL, NULL, NULL);
            X[m][i] = x0;
            double d = fabs((lp - lm) / ((double)xp - (double)xm) - g[m][i]);
            if (d > de) de = d;
        }
        if (de / mx > worst) worst = de / mx;
    }
    for (int m = 0; m < 4; m++) free(g[m]);
    return worst;
}

static void torch_and_fd(void) {
    fx_file f;
    if (!fx_load(&f, "tests/fixtures/matryoshka/mrl.txt")) { CHECK(0, "fixture missing"); return; }
    int B = (int)fx_get(&f, "B", 1)[0], G = (int)fx_get(&f, "G", 1)[0], C = (int)fx_get(&f, "C", 1)[0];
    problem pb;
    memset(&pb, 0, sizeof pb);
    et_loss_cfg_default(&pb.cfg);
    const double *dims = fx_get(&f, "dims", 3), *w = fx_get(&f, "weights", 3);
    pb.m.n = 3;
    for (int k = 0; k < 3; k++) { pb.m.dim[k] = (int)dims[k]; pb.m.weight[k] = w[k]; }
    pb.Q = fx_floats(&f, "Q", B * C); pb.P = fx_floats(&f, "P", B * C);
    pb.N = fx_floats(&f, "N", B * G * C); pb.NQ = fx_floats(&f, "NQ", B * G * C);
    float *y = fx_floats(&f, "y", B);
    const double *md = fx_get(&f, "mask", B * G);
    unsigned char *mask = malloc((size_t)B * G);
    for (int i = 0; i < B * G; i++) mask[i] = md[i] != 0;
    pb.scratch = malloc(et_loss_scratch_doubles(B, G, C) * sizeof(double));
    pb.fs = malloc(et_matryoshka_scratch_floats(B, G, C) * sizeof(float));
    /* float32 inputs, double arithmetic inside the losses: the loss to ~1e-7 relative, gradients are float32
     * sums of a few dozen terms: 1e-5 relative to the largest entry (as tests/test_loss.c) */
    const double tol = 1e-5;
    const char *names[3] = {"mnrl", "clp", "mse"};
    et_mrl_kind kinds[3] = {ET_MRL_INFONCE, ET_MRL_CLP, ET_MRL_COS_MSE};
    int nmat[3] = {3, 4, 2};
    for (int c = 0; c < 3; c++) {
        pb.a = (et_mrl_args){kinds[c], NULL, NULL, NULL, NULL, c == 1 ? mask : NULL, c == 2 ? y : NULL, B, c == 2 ? 0 : G, C};
        float *g[4];
        int cnt[4] = {B * C, B * C, B * G * C, B * G * C};
        for (int m = 0; m < 4; m++) g[m] = calloc((size_t)cnt[m], sizeof(float));
        double L = run(&pb, g[0], g[1], nmat[c] > 2 ? g[2] : NULL, nmat[c] > 3 ? g[3] : NULL);
        char key[32];
        snprintf(key, sizeof key, "%s.loss", names[c]);
        double ref = fx_get(&f, key, 1)[0];
        CHECK(fabs(L - ref) <= tol * fabs(ref), "%s loss %.10g, torch %.10g", names[c], L, ref);
        const char *gn[4] = {"dQ", "dP", "dN", "dNQ"};
        for (int m = 0; m < nmat[c]; m++) {
            snprintf(key, sizeof key, "%s.%s", names[c], gn[m]);
            double e = rel_err(g[m], fx_get(&f, key, cnt[m]), cnt[m]);
            CHECK(e <= tol, "%s: rel err %.2e against torch", key, e);
        }
        for (int m = 0; m < 4; m++) free(g[m]);
        /* reference-free: finite differences (1e-4: float32 inputs stepped by 1e-3, O(h^2) truncation) */
        double e = fd_check(&pb, nmat[c]);
        CHECK(e <= 1e-4, "finite differences %s: rel err %.2e", names[c], e);
        printf("  %s: loss %.9g (torch %.9g), fd rel err %.2e\n", names[c], L, ref, e);
    }
    /* one dimension = the full width with weight 1 is the plain loss */
    {
        pb.a = (et_mrl_args){ET_MRL_INFONCE, NULL, NULL, NULL, NULL, NULL, NULL, B, G, C};
        et_matryoshka one = {1, {C}, {1.0}};
        et_matryoshka keep = pb.m;
        pb.m = one;
        double L1 = run(&pb, NULL, NULL, NULL, NULL), L0 = 0;
        et_error err = {0};
        CHECK(et_loss_infonce(&pb.cfg, pb.Q, pb.P, pb.N, B, G, C, NULL, NULL, NULL, pb.scratch, &L0, &err) == ET_OK, "infonce");
        CHECK(L1 == L0, "one full dimension %.17g vs plain %.17g", L1, L0);
        pb.m = keep;
        /* a dimension above the width is refused, naming it */
        et_matryoshka big = {1, {C + 1}, {1.0}};
        pb.m = big;
        double L;
        CHECK(et_loss_matryoshka(&pb.cfg, &pb.m, &pb.a, NULL, NULL, NULL, NULL, pb.scratch, pb.fs, &L, &err) == ET_ERR_ARG,
              "dimension above the width accepted");
        CHECK(strstr(err.msg, "dimension 17") != NULL, "message: %s", err.msg);
        pb.m = keep;
    }
    free(pb.Q); free(pb.P); free(pb.N); free(pb.NQ); free(y); free(mask); free(pb.scratch); free(pb.fs);
    fx_free(&f);
}

static void parse(void) {
    et_matryoshka m;
    et_error err = {0};
    CHECK(et_matryoshka_parse("128,64,32", &m, &err) == ET_OK, "parse: %s", err.msg);
    CHECK(m.n == 3 && m.dim[0] == 128 && m.dim[2] == 32 && m.weight[1] == 1.0, "128,64,32");
    CHECK(et_matryoshka_parse("384:1,128:0.5,64", &m, &err) == ET_OK, "parse: %s", err.msg);
    CHECK(m.n == 3 && m.weight[1] == 0.5 && m.weight[2] == 1.0 && m.dim[1] == 128, "weights");
    char d[128];
    et_matryoshka_describe(&m, d, sizeof d);
    CHECK_STREQ(d, "384:1,128:0.5,64:1");
    CHECK(et_matryoshka_parse("64,64", &m, &err) == ET_ERR_ARG && strstr(err.msg, "twice"), "dup: %s", err.msg);
    CHECK(et_matryoshka_parse("64,x", &m, &err) == ET_ERR_ARG && strstr(err.msg, "item 2"), "bad item: %s", err.msg);
    CHECK(et_matryoshka_parse("64:-1", &m, &err) == ET_ERR_ARG, "negative weight");
    CHECK(et_matryoshka_parse("64:0,32:0", &m, &err) == ET_ERR_ARG, "all zero");
    CHECK(et_matryoshka_parse("0", &m, &err) == ET_ERR_ARG, "zero dim");
    CHECK(et_matryoshka_parse("", &m, &err) == ET_ERR_ARG, "empty");
    CHECK(et_matryoshka_parse("64;32", &m, &err) == ET_ERR_ARG, "separator");
}

static void truncate_hand(void) {
    /* row (3, 4, 12, 5) cut to 2: (3, 4) / 5 = (0.6, 0.8), then zeros; row 2 (0, 0, 1, 1) cut to 2 is a zero
     * prefix and stays 0 (the norm clamp) */
    float x[8] = {3, 4, 12, 5, 0, 0, 1, 1};
    et_embed_truncate(x, 2, 4, 2);
    const float want[8] = {0.6f, 0.8f, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) CHECK_NEAR(x[i], want[i], 1e-7);
    float y[4] = {1, 2, 3, 4};
    et_embed_truncate(y, 1, 4, 4); /* d >= C: unchanged */
    et_embed_truncate(y, 1, 4, 0);
    CHECK(y[0] == 1 && y[3] == 4, "full width changed the row");
}

/* et_eval_ir_dims on the finetune fixture (tests/fixtures/e2e/model, 32 values; 36 docs, 72 queries) at 32, 16, 8, 3
 * and 0 (all) must give, size by size, exactly what et_eval_ir gives with eo.dim set: every metric and each query's
 * nDCG@10 (0 tolerance: the same encoder, cut and ranking run on the same floats; only the corpus encoding is shared).
 * A cut that missed the queries or the documents, or left a row unnormalised, changes the rankings. */
static void eval_dims(void) {
    et_hf_model L;
    memset(&L, 0, sizeof L);
    et_error err = {0};
    et_beir b;
    if (et_hf_model_load("tests/fixtures/e2e/model", 2, &L, &err)) { CHECK(0, "model: %s", err.msg); et_hf_model_free(&L); return; }
    if (et_beir_read("tests/fixtures/finetune/beir", NULL, &b, NULL, &err)) { CHECK(0, "data: %s", err.msg); et_hf_model_free(&L); return; }
    enum { ND = 5 };
    const int dims[ND] = {32, 16, 8, 3, 0};
    int nq = b.nqueries;
    et_ir_eval got[ND];
    double *pq = malloc(sizeof(double) * ND * (size_t)nq), *pr = malloc(sizeof(double) * (size_t)nq);
    et_encode_opts eo = {16, 32, NULL, NULL};
    et_ir_eval_opts io = {ET_EVAL_DENSE, 10, NULL, NULL, NULL, NULL};
    et_status s = et_eval_ir_dims(&L.model, L.tok, L.pool, &eo, &io, dims, ND, b.doc_text, b.ndocs, b.query_text, nq, b.qrels,
                                  b.qrel_off, got, pq, &err);
    CHECK(s == ET_OK, "et_eval_ir_dims: %s", err.msg);
    for (int i = 0; !s && i < ND; i++) {
        et_encode_opts e1 = eo;
        e1.dim = dims[i];
        et_ir_eval ref;
        et_ir_eval_opts o1 = io;
        o1.per_query_ndcg10 = pr;
        CHECK(et_eval_ir(&L.model, L.tok, L.pool, &e1, &o1, b.doc_text, b.ndocs, b.query_text, nq, b.qrels, b.qrel_off, &ref, &err) == ET_OK,
              "et_eval_ir dim %d: %s", dims[i], err.msg);
        CHECK(got[i].ndcg10 == ref.ndcg10 && got[i].map10 == ref.map10 && got[i].mrr10 == ref.mrr10 &&
              got[i].recall100 == ref.recall100 && got[i].recall10 == ref.recall10 && got[i].auprc == ref.auprc,
              "dim %d: nDCG@10 %.17g vs %.17g, MAP %.17g vs %.17g, AUPRC %.17g vs %.17g", dims[i], got[i].ndcg10, ref.ndcg10,
              got[i].map10, ref.map10, got[i].auprc, ref.auprc);
        CHECK(got[i].anisotropy == ref.anisotropy && got[i].mean_pos_cosine == ref.mean_pos_cosine,
              "dim %d: anisotropy %.17g vs %.17g", dims[i], got[i].anisotropy, ref.anisotropy);
        int same = 1;
        for (int q = 0; q < nq; q++) same &= pq[(size_t)i * nq + q] == pr[q];
        CHECK(same, "dim %d: per-query nDCG@10 differs", dims[i]);
    }
    /* the sizes are really different rankings (else the comparison above proves nothing about the cut) */
    CHECK(!s && got[3].ndcg10 != got[0].ndcg10 && got[3].anisotropy != got[0].anisotropy,
          "3 values ranked as 32: nDCG %.6f vs %.6f", got[3].ndcg10, got[0].ndcg10);
    CHECK(!s && got[4].ndcg10 == got[0].ndcg10, "0 (all values) differs from 32");
    int bad[1] = {33};
    CHECK(et_eval_ir_dims(&L.model, L.tok, L.pool, &eo, &io, bad, 1, b.doc_text, b.ndocs, b.query_text, nq, b.qrels, b.qrel_off, got,
                          NULL, &err) == ET_ERR_ARG && strstr(err.msg, "33"), "size 33 of 32: %s", err.msg);
    free(pq); free(pr);
    et_beir_free(&b);
    et_hf_model_free(&L);
}

int main(void) {
    torch_and_fd();
    parse();
    truncate_hand();
    eval_dims();
    return et_test_report("test_matryoshka");
}
