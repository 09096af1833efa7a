/* test_moe_ste.c - the straight-through MoE gate (ET_MOE_GATE_STE, moe.h):
 *  1. layer level, random sizes: the forward equals the unscaled mode bit for bit; the expert/bias/input
 *     gradients equal the unscaled mode's except for the router's own dx term; the router gradient (dgate, dx)
 *     equals an independent double-precision computation of d/dW_g of the surrogate
 *        h_t = (p_t(W_g) / p_t0) * y_t   (p_t0 held constant),
 *     checked both analytically (dlogit_e = <dout_t, y_t> (onehot_e - probs_e)) and by central finite
 *     differences of that surrogate; and per token dlogits(ste) * p = dlogits(switch) for the same dout.
 *  2. model level: a dense model converted with gate ste encodes like the dense one (|diff| ~ float rounding),
 *     while switch moves it; config.json records the mode ("moe_gate_scale": false, "moe_gate_ste": true) and
 *     it loads back as ET_MOE_GATE_STE; a config with both true is refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bert.h"
#include "fileio.h"
#include "hf.h"
#include "moe.h"
#include "rng.h"
#include "et_test.h"

typedef struct {
    float *probs, *xs, *dxs, *dlogits, *aux;
    int32_t *idx, *counts, *perm;
} bufs;

static void acts_init(et_moe_acts *a, bufs *b, int N, int C, int E) {
    b->probs = calloc((size_t)N * E, 4); b->dlogits = calloc((size_t)N * E, 4);
    b->xs = calloc((size_t)N * C, 4); b->dxs = calloc((size_t)N * C, 4); b->aux = calloc(1, 4);
    b->idx = calloc((size_t)N, 4); b->perm = calloc((size_t)N, 4); b->counts = calloc((size_t)E, 4);
    memset(a, 0, sizeof *a);
    a->probs = b->probs; a->idx = b->idx; a->counts = b->counts; a->aux = b->aux; a->perm = b->perm;
    a->xs = b->xs; a->dxs = b->dxs; a->dlogits = b->dlogits;
}
static void acts_free(bufs *b) {
    free(b->probs); free(b->dlogits); free(b->xs); free(b->dxs); free(b->aux); free(b->idx); free(b->perm); free(b->counts);
}

static float *randv(et_rng *r, size_t n, float s) {
    float *p = malloc(n * 4);
    for (size_t i = 0; i < n; i++) p[i] = s * (2.0f * et_rng_uniformf(r) - 1.0f);
    return p;
}

/* double reference of the router part: logits, probs, top-1, y = W_k x + b_k */
static void ref_token(const float *x, const float *gate, const float *W, const float *b, int C, int I, int E,
                      const double *gd, double *probs, int *k, double *y) {
    double lg[64], mx = -1e300, s = 0;
    for (int e = 0; e < E; e++) {
        lg[e] = 0;
        for (int c = 0; c < C; c++) lg[e] += (gd ? gd[(size_t)e * C + c] : (double)gate[(size_t)e * C + c]) * x[c];
    }
    int best = 0;
    for (int e = 0; e < E; e++) if (lg[e] > lg[best]) best = e;
    mx = lg[best];
    for (int e = 0; e < E; e++) { probs[e] = exp(lg[e] - mx); s += probs[e]; }
    for (int e = 0; e < E; e++) probs[e] /= s;
    *k = best;
    if (y)
        for (int i = 0; i < I; i++) {
            double v = b[(size_t)best * I + i];
            for (int c = 0; c < C; c++) v += (double)W[((size_t)best * I + i) * C + c] * x[c];
            y[i] = v;
        }
}

static void test_layer(et_pool *pool, int N, int C, int I, int E, uint64_t seed) {
    et_rng r;
    et_rng_seed(&r, seed);
    float *x = randv(&r, (size_t)N * C, 1.0f), *gate = randv(&r, (size_t)E * C, 0.5f);
    float *W = randv(&r, (size_t)E * I * C, 0.3f), *b = randv(&r, (size_t)E * I, 0.1f);
    float *dout0 = randv(&r, (size_t)N * I, 1.0f);
    float *out[3], *tmp = malloc((size_t)N * I * 4), *dout = malloc((size_t)N * I * 4);
    float *dx[3], *dg[3], *dW[3], *db[3], *dl[3];
    bufs bb[3];
    et_moe_acts a[3];
    for (int m = 0; m < 3; m++) { /* 0 unscaled, 1 switch, 2 ste */
        acts_init(&a[m], &bb[m], N, C, E);
        out[m] = malloc((size_t)N * I * 4);
        dx[m] = calloc((size_t)N * C, 4); dg[m] = calloc((size_t)E * C, 4);
        dW[m] = calloc((size_t)E * I * C, 4); db[m] = calloc((size_t)E * I, 4); dl[m] = malloc((size_t)N * E * 4);
        et_moe_forward(pool, out[m], tmp, x, gate, W, b, N, C, I, E, m, &a[m], 0);
        memcpy(dout, dout0, (size_t)N * I * 4);
        et_moe_backward(pool, dx[m], dg[m], dW[m], db[m], dout, tmp, x, out[m], gate, W, b, N, C, I, E, m, &a[m], 0);
        memcpy(dl[m], a[m].dlogits, (size_t)N * E * 4);
    }
    /* forward: ste == unscaled exactly; switch differs */
    CHECK(!memcmp(out[2], out[0], (size_t)N * I * 4), "N=%d: ste forward differs from unscaled", N);
    CHECK(memcmp(out[1], out[0], (size_t)N * I * 4), "N=%d: switch forward equals unscaled", N);
    /* experts: ste dW, db == unscaled exactly; the unscaled router gradient is exactly 0 */
    CHECK(!memcmp(dW[2], dW[0], (size_t)E * I * C * 4) && !memcmp(db[2], db[0], (size_t)E * I * 4), "N=%d: ste expert grads differ from unscaled", N);
    double g0 = 0;
    for (int i = 0; i < E * C; i++) g0 = fmax(g0, fabs(dg[0][i]));
    CHECK(g0 == 0, "unscaled router gradient is not 0 (%g)", g0);
    /* independent reference (double): dlogit = <dout, y> (onehot - probs); dgate = sum_t dlogit_t x_t^T;
     * dx = expert part (= unscaled dx) + dlogit_t W_g */
    double *rg = calloc((size_t)E * C, sizeof(double)), *y = malloc((size_t)I * sizeof(double)), pr[64];
    double worst_dl = 0, worst_sw = 0, worst_dx = 0, gmax = 0;
    for (int t = 0; t < N; t++) {
        const float *xt = x + (size_t)t * C;
        int k;
        ref_token(xt, gate, W, b, C, I, E, NULL, pr, &k, y);
        CHECK(k == a[2].idx[t], "token %d: routed to %d, reference %d", t, a[2].idx[t], k);
        double dp = 0;
        for (int i = 0; i < I; i++) dp += (double)dout0[(size_t)t * I + i] * y[i];
        double dlt[64];
        for (int e = 0; e < E; e++) {
            dlt[e] = dp * ((e == k) - pr[e]);
            worst_dl = fmax(worst_dl, fabs(dlt[e] - dl[2][(size_t)t * E + e]) / (fabs(dp) + 1e-3));
            /* the Switch router gradient at the same dout is p times the ste one */
            worst_sw = fmax(worst_sw, fabs((double)dl[2][(size_t)t * E + e] * pr[k] - dl[1][(size_t)t * E + e]) / (fabs(dp) + 1e-3));
            for (int c = 0; c < C; c++) rg[(size_t)e * C + c] += dlt[e] * xt[c];
        }
        for (int c = 0; c < C; c++) {
            double v = dx[0][(size_t)t * C + c];
            for (int e = 0; e < E; e++) v += dlt[e] * gate[(size_t)e * C + c];
            worst_dx = fmax(worst_dx, fabs(v - dx[2][(size_t)t * C + c]) / (fabs(v) + 1e-2));
        }
    }
    double worst_g = 0;
    for (int i = 0; i < E * C; i++) gmax = fmax(gmax, fabs(rg[i]));
    for (int i = 0; i < E * C; i++) worst_g = fmax(worst_g, fabs(rg[i] - dg[2][i]) / gmax);
    CHECK(gmax > 1e-3, "ste router gradient is ~0 (%g)", gmax);
    CHECK(worst_dl < 1e-5, "N=%d: ste dlogits vs double reference: rel err %.3g", N, worst_dl);
    CHECK(worst_sw < 1e-5, "N=%d: ste dlogits * p vs switch dlogits: rel err %.3g", N, worst_sw);
    CHECK(worst_g < 1e-5, "N=%d: ste dgate vs double reference: rel err %.3g", N, worst_g);
    CHECK(worst_dx < 1e-4, "N=%d: ste dx vs reference: rel err %.3g", N, worst_dx);
    /* finite differences of the surrogate S(W_g) = sum_t <dout_t, (p_t(W_g) / p_t0) y_t> (routing frozen at
     * the forward's choice; the step is small enough that no token changes expert) */
    double *gd = malloc((size_t)E * C * sizeof(double)), worst_fd = 0;
    double *p0 = malloc((size_t)N * sizeof(double)), *dy = malloc((size_t)N * sizeof(double));
    int *k0 = malloc((size_t)N * sizeof(int));
    for (int t = 0; t < N; t++) {
        ref_token(x + (size_t)t * C, gate, W, b, C, I, E, NULL, pr, &k0[t], y);
        p0[t] = pr[k0[t]];
        dy[t] = 0;
        for (int i = 0; i < I; i++) dy[t] += (double)dout0[(size_t)t * I + i] * y[i];
    }
    for (int i = 0; i < E * C; i++) gd[i] = gate[i];
    int checked = 0;
    for (int i = 0; i < E * C; i += (E * C) / 24 + 1) {
        double h = 1e-4, S[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            gd[i] = gate[i] + (sgn ? -h : h);
            S[sgn] = 0;
            for (int t = 0; t < N; t++) {
                int k;
                ref_token(x + (size_t)t * C, gate, W, b, C, I, E, gd, pr, &k, NULL);
                S[sgn] += pr[k0[t]] / p0[t] * dy[t];
            }
        }
        gd[i] = gate[i];
        double fd = (S[0] - S[1]) / (2 * h);
        worst_fd = fmax(worst_fd, fabs(fd - dg[2][i]) / gmax);
        checked++;
    }
    CHECK(worst_fd < 1e-4, "N=%d: ste dgate vs finite differences of the surrogate: rel err %.3g", N, worst_fd);
    printf("  N=%d C=%d I=%d E=%d: forward == unscaled, expert grads == unscaled, router vs double ref %.2g, "
           "vs switch/p %.2g, dx %.2g, FD (%d entries) %.2g\n", N, C, I, E, worst_g, worst_sw, worst_dx, checked, worst_fd);
    free(gd); free(p0); free(dy); free(k0); free(rg); free(y);
    for (int m = 0; m < 3; m++) {
        acts_free(&bb[m]); free(out[m]); free(dx[m]); free(dg[m]); free(dW[m]); free(db[m]); free(dl[m]);
    }
    free(x); free(gate); free(W); free(b); free(dout0); free(tmp); free(dout);
}

#define MODEL_DIR "tests/fixtures/hf/good_f32"

static void encode(const et_bert *m, et_pool *pool, float *out, int *Bo) {
    /* a fixed batch of token ids with padding */
    enum { B = 3, T = 7 };
    int32_t ids[B * T], mask[B * T];
    for (int i = 0; i < B * T; i++) {
        ids[i] = 1 + (i * 7919) % (m->cfg.vocab_size - 1);
        mask[i] = (i % T) < T - (i / T); /* lengths 7, 6, 5 */
        if (!mask[i]) ids[i] = 0;
    }
    et_bert_acts a;
    et_error err = {0};
    CHECK(!et_bert_acts_alloc(&a, &m->cfg, B, T, 0, et_pool_size(pool), &err), "acts: %s", err.msg);
    CHECK(!et_bert_forward(m, &a, pool, ids, mask, NULL, B, T, out, 0, 0, &err), "forward: %s", err.msg);
    et_bert_acts_free(&a);
    *Bo = B;
}

static void test_model(et_pool *pool) {
    et_error err = {0};
    et_bert d, s, w;
    if (et_hf_load(MODEL_DIR, &d, &err)) { CHECK(0, "load: %s", err.msg); return; }
    int C = d.cfg.hidden_size, B;
    float e0[64 * 64], e1[64 * 64], e2[64 * 64];
    encode(&d, pool, e0, &B);
    CHECK(!et_hf_load(MODEL_DIR, &s, &err) && !et_bert_to_moe(&s, 3, 0, 5, &err), "to_moe: %s", err.msg);
    CHECK(!et_hf_load(MODEL_DIR, &w, &err) && !et_bert_to_moe(&w, 3, 0, 5, &err), "to_moe: %s", err.msg);
    s.cfg.moe_gate_scale = ET_MOE_GATE_STE;
    w.cfg.moe_gate_scale = ET_MOE_GATE_SWITCH;
    encode(&s, pool, e1, &B);
    encode(&w, pool, e2, &B);
    double ds = 0, dw = 0;
    for (int i = 0; i < B * C; i++) { ds = fmax(ds, fabs(e1[i] - e0[i])); dw = fmax(dw, fabs(e2[i] - e0[i])); }
    CHECK(ds < 1e-5, "ste-converted model differs from the dense one by %g", ds);
    CHECK(dw > 1e-3, "switch-converted model equals the dense one (%g)", dw);
    printf("  converted model vs dense, max |diff| of the embeddings: ste %.2g, switch %.2g\n", ds, dw);
    /* config.json round trip */
    char dir[] = "/tmp/et_moe_ste_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    et_hf_save_opts o = {0};
    o.vocab_path = MODEL_DIR "/vocab.txt";
    CHECK(!et_hf_save(dir, &s, &o, &err), "save: %s", err.msg);
    char p[600], *cj = NULL;
    size_t len = 0;
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(!et_read_file(p, 1 << 20, &cj, &len, &err), "read config: %s", err.msg);
    CHECK(cj && strstr(cj, "\"moe_gate_scale\": false") && strstr(cj, "\"moe_gate_ste\": true"), "config.json: %s", cj ? cj : "");
    et_bert r;
    CHECK(!et_hf_load(dir, &r, &err), "reload: %s", err.msg);
    if (!err.code) {
        CHECK(r.cfg.moe_gate_scale == ET_MOE_GATE_STE, "reloaded gate mode %d", r.cfg.moe_gate_scale);
        CHECK(r.n_params == s.n_params && !memcmp(r.params, s.params, s.n_params * 4), "reloaded params differ");
        et_bert_free(&r);
    }
    /* both flags true: refused, naming the keys */
    if (cj) {
        char *q = strstr(cj, "\"moe_gate_scale\": false");
        if (q) {
            memcpy(q, "\"moe_gate_scale\":  true", strlen("\"moe_gate_scale\": false"));
            CHECK(!et_write_file_atomic(p, cj, len, &err), "write: %s", err.msg);
            et_error e2 = {0};
            CHECK(et_hf_load(dir, &r, &e2) && strstr(e2.msg, "moe_gate_ste"), "both true accepted: %s", e2.msg);
            if (!e2.code) et_bert_free(&r);
        }
    }
    free(cj);
    /* switch saves moe_gate_scale true and no moe_gate_ste key */
    CHECK(!et_hf_save(dir, &w, &o, &err), "save: %s", err.msg);
    cj = NULL;
    CHECK(!et_read_file(p, 1 << 20, &cj, &len, &err), "read: %s", err.msg);
    CHECK(cj && strstr(cj, "\"moe_gate_scale\": true") && !strstr(cj, "moe_gate_ste"), "switch config.json: %s", cj ? cj : "");
    free(cj);
    /* gate names */
    int mode = -1;
    CHECK(!et_moe_gate_parse("ste", &mode, &err) && mode == ET_MOE_GATE_STE && !strcmp(et_moe_gate_name(mode), "ste"), "parse ste");
    CHECK(!et_moe_gate_parse("switch", &mode, &err) && mode == ET_MOE_GATE_SWITCH, "parse switch");
    CHECK(!et_moe_gate_parse("unscaled", &mode, &err) && mode == ET_MOE_GATE_UNSCALED, "parse unscaled");
    CHECK(et_moe_gate_parse("top2", &mode, &err) && strstr(err.msg, "switch, unscaled, ste"), "bad mode: %s", err.msg);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "warning: could not remove %s\n", dir);
    et_bert_free(&d); et_bert_free(&s); et_bert_free(&w);
}

int main(void) {
    et_error err = {0};
    et_pool *pool = et_pool_create(2, &err);
    if (!pool) { fprintf(stderr, "pool: %s\n", err.msg); return 1; }
    test_layer(pool, 37, 24, 20, 2, 1);
    test_layer(pool, 64, 16, 12, 4, 2);
    test_layer(pool, 5, 8, 6, 3, 3);
    test_model(pool);
    et_pool_destroy(pool);
    return et_test_report("test_moe_ste");
}
