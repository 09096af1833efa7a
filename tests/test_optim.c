/* test_optim.c - AdamW + linear warm-up/decay + clip_grad_norm_ against torch 1.13 (tests/fixtures/loss/adamw.txt
 * from tools/gen_loss_fixture.py), optimizer state round trip, and the RNG (xoshiro256** reference outputs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim.h"
#include "rng.h"
#include "et_test.h"

static void test_adamw_fixture(void) {
    fx_file f;
    if (!fx_load(&f, "tests/fixtures/loss/adamw.txt")) {
        et_test_fails++;
        return;
    }
    int n = (int)fx_get(&f, "n", 1)[0], steps = (int)fx_get(&f, "steps", 1)[0];
    double lr = fx_get(&f, "lr", 1)[0], wd = fx_get(&f, "wd", 1)[0], max_norm = fx_get(&f, "max_norm", 1)[0];
    int warmup = (int)fx_get(&f, "warmup", 1)[0], total = (int)fx_get(&f, "total", 1)[0];
    const double *sd = fx_get(&f, "segs", 16);
    et_param_seg segs[4];
    for (int i = 0; i < 4; i++)
        segs[i] = (et_param_seg){(size_t)sd[4 * i], (size_t)sd[4 * i + 1], (int)sd[4 * i + 2], (int)sd[4 * i + 3]};
    const double *p0 = fx_get(&f, "p0", n);
    float *p = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n), *pc = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) p[i] = (float)p0[i];
    et_adamw_cfg cfg;
    et_adamw_cfg_default(&cfg);
    cfg.weight_decay = wd;
    et_adamw opt, opt2;
    et_error err = {0};
    CHECK(et_adamw_init(&opt, &cfg, (size_t)n, segs, 4, &err) == ET_OK, "init: %s", err.msg);
    double worst = 0;
    char key[64];
    float *msave = malloc(sizeof(float) * n), *vsave = malloc(sizeof(float) * n), *psave = malloc(sizeof(float) * n);
    int64_t tsave = 0;
    for (int t = 0; t < steps; t++) {
        snprintf(key, sizeof key, "grad%d", t);
        const double *gd = fx_get(&f, key, n);
        for (int i = 0; i < n; i++) g[i] = (float)gd[i];
        /* frozen gradient entries hold garbage: they must be ignored */
        for (int s = 0; s < 4; s++)
            if (!segs[s].trainable)
                for (size_t i = 0; i < segs[s].n; i++) g[segs[s].offset + i] = 1e30f;
        double used = et_lr_linear_warmup(lr, opt.t, warmup, total);
        snprintf(key, sizeof key, "lr%d", t);
        CHECK(fabs(used - fx_get(&f, key, 1)[0]) <= 1e-15, "step %d lr %.17g vs %.17g", t, used, fx_get(&f, key, 1)[0]);
        double tn;
        CHECK(et_clip_grad_norm(g, opt.segs, opt.nsegs, max_norm, &tn, &err) == ET_OK, "clip: %s", err.msg);
        snprintf(key, sizeof key, "norm%d", t);
        double ref_tn = fx_get(&f, key, 1)[0];
        CHECK(fabs(tn - ref_tn) <= 1e-6 * ref_tn, "step %d norm %.9g vs torch %.9g", t, tn, ref_tn);
        CHECK(et_adamw_step(&opt, p, g, used, &err) == ET_OK, "step: %s", err.msg);
        snprintf(key, sizeof key, "p%d", t + 1);
        const double *ref = fx_get(&f, key, n);
        double e = 0;
        for (int i = 0; i < n; i++) {
            double d = fabs(p[i] - ref[i]) / fmax(fabs(ref[i]), 1e-3);
            if (d > e) e = d;
        }
        if (e > worst) worst = e;
        CHECK(e <= 1e-6, "step %d: params differ from torch, max rel err %.2e", t + 1, e);
        if (getenv("ET_DEBUG")) { int ne = 0; for (int i = 0; i < n; i++) ne += p[i] != (float)ref[i]; printf("step %d: %d/%d floats differ from torch, max rel %.2e\n", t + 1, ne, n, e); }
        if (t == 2) { /* checkpoint after step 3 */
            et_adamw_get_state(&opt, msave, vsave, &tsave);
            memcpy(psave, p, sizeof(float) * n);
        }
    }
    /* frozen segment untouched */
    for (int s = 0; s < 4; s++)
        if (!segs[s].trainable)
            for (size_t i = 0; i < segs[s].n; i++)
                CHECK(p[segs[s].offset + i] == (float)p0[segs[s].offset + i], "frozen float %zu changed",
                      segs[s].offset + i);
    printf("adamw vs torch: %d steps, worst relative param error %.2e\n", steps, worst);

    /* state round trip: a fresh optimizer restored at step 3 reproduces steps 4..5 bit for bit */
    CHECK(et_adamw_init(&opt2, &cfg, (size_t)n, segs, 4, &err) == ET_OK, "init2");
    CHECK(et_adamw_set_state(&opt2, msave, vsave, (size_t)n, tsave, &err) == ET_OK, "set_state: %s", err.msg);
    CHECK(tsave == 3, "saved t = %lld", (long long)tsave);
    memcpy(pc, psave, sizeof(float) * n);
    for (int t = 3; t < steps; t++) {
        snprintf(key, sizeof key, "grad%d", t);
        const double *gd = fx_get(&f, key, n);
        for (int i = 0; i < n; i++) g[i] = (float)gd[i];
        et_clip_grad_norm(g, opt2.segs, opt2.nsegs, max_norm, NULL, NULL);
        et_adamw_step(&opt2, pc, g, et_lr_linear_warmup(lr, opt2.t, warmup, total), NULL);
    }
    CHECK(!memcmp(pc, p, sizeof(float) * n), "resumed run differs from the continuous one");
    CHECK(et_adamw_set_state(&opt2, msave, vsave, (size_t)n + 1, 3, &err) == ET_ERR_MISMATCH && strstr(err.msg, "floats"),
          "state size mismatch: %s", err.msg);

    /* a NaN gradient is reported and nothing moves */
    memcpy(pc, p, sizeof(float) * n);
    for (int i = 0; i < n; i++) g[i] = 0.1f;
    g[5] = NAN;
    CHECK(et_adamw_step(&opt2, p, g, 1e-3, &err) == ET_ERR_NUMERIC && strstr(err.msg, "float 5"), "NaN grad: %s",
          err.msg);
    CHECK(!memcmp(pc, p, sizeof(float) * n), "params moved on a NaN gradient");
    CHECK(et_clip_grad_norm(g, opt2.segs, opt2.nsegs, 1.0, NULL, &err) == ET_ERR_NUMERIC, "NaN clip");

    et_adamw_free(&opt);
    et_adamw_free(&opt2);
    free(p); free(g); free(pc); free(msave); free(vsave); free(psave);
    fx_free(&f);
}

static void test_schedule_and_misc(void) {
    /* HF get_linear_schedule_with_warmup(warmup=10, total=100), base 2e-5 */
    CHECK(et_lr_linear_warmup(2e-5, 0, 10, 100) == 0.0, "lr(0)");
    CHECK(fabs(et_lr_linear_warmup(2e-5, 5, 10, 100) - 1e-5) < 1e-20, "lr(5)");
    CHECK(fabs(et_lr_linear_warmup(2e-5, 10, 10, 100) - 2e-5) < 1e-20, "lr(10)");
    CHECK(fabs(et_lr_linear_warmup(2e-5, 55, 10, 100) - 1e-5) < 1e-20, "lr(55)");
    CHECK(et_lr_linear_warmup(2e-5, 100, 10, 100) == 0.0 && et_lr_linear_warmup(2e-5, 150, 10, 100) == 0.0, "lr end");
    CHECK(et_lr_linear_warmup(1.0, 0, 0, 4) == 1.0 && et_lr_linear_warmup(1.0, 3, 0, 4) == 0.25, "no warmup");
    /* no-decay names (sentence-transformers fit) */
    CHECK(et_param_no_decay("encoder.layer.0.attention.self.query.bias"), "bias");
    CHECK(et_param_no_decay("embeddings.LayerNorm.weight"), "LN weight");
    CHECK(et_param_no_decay("encoder.layer.3.output.LayerNorm.bias"), "LN bias");
    CHECK(!et_param_no_decay("encoder.layer.3.output.dense.weight"), "dense weight decays");
    CHECK(!et_param_no_decay("embeddings.word_embeddings.weight"), "embeddings decay");
    /* clipping below the threshold leaves grads alone; above it scales to max_norm/(norm+1e-6) */
    et_param_seg seg = {0, 2, 1, 1};
    float g[2] = {3, 4};
    double tn;
    et_clip_grad_norm(g, &seg, 1, 10.0, &tn, NULL);
    CHECK(tn == 5.0 && g[0] == 3 && g[1] == 4, "no clip");
    et_clip_grad_norm(g, &seg, 1, 1.0, &tn, NULL);
    CHECK(fabsf(g[0] - 0.6f) < 1e-6f && fabsf(g[1] - 0.8f) < 1e-6f, "clip: %g %g", g[0], g[1]);
    et_grad_scale(g, &seg, 1, 0.5f);
    CHECK(fabsf(g[0] - 0.3f) < 1e-6f, "grad scale");
    /* bad segments */
    et_adamw opt;
    et_adamw_cfg cfg;
    et_adamw_cfg_default(&cfg);
    et_error err = {0};
    et_param_seg bad[2] = {{0, 6, 1, 1}, {4, 4, 0, 1}};
    CHECK(et_adamw_init(&opt, &cfg, 10, bad, 2, &err) == ET_ERR_ARG && strstr(err.msg, "overlap"), "overlap: %s",
          err.msg);
    et_param_seg past = {8, 4, 1, 1};
    CHECK(et_adamw_init(&opt, &cfg, 10, &past, 1, &err) == ET_ERR_ARG && strstr(err.msg, "past"), "past end: %s",
          err.msg);
}

static void test_rng(void) {
    /* xoshiro256** reference outputs from state {1,2,3,4} (also checked with a Python big-int implementation) */
    et_rng r;
    uint64_t s[4] = {1, 2, 3, 4};
    CHECK(et_rng_set_state(&r, s, NULL) == ET_OK, "set_state");
    const uint64_t want[6] = {11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL, 0x10e0b61ce1009d80ULL,
                              0x870021ce143ad00ULL};
    for (int i = 0; i < 6; i++) {
        uint64_t x = et_rng_next(&r);
        CHECK(x == want[i], "xoshiro output %d: %llx", i, (unsigned long long)x);
    }
    /* splitmix64 seeding of 42 (Python reference) */
    et_rng_seed(&r, 42);
    CHECK(r.s[0] == 0xbdd732262feb6e95ULL && r.s[3] == 0x581ce1ff0e4ae394ULL, "splitmix seed");
    CHECK(et_rng_next(&r) == 0x15780b2e0c2ec716ULL, "first output after seed 42");
    /* state round trip */
    uint64_t st[4];
    et_rng_get_state(&r, st);
    uint64_t a = et_rng_next(&r);
    et_rng r2;
    et_rng_set_state(&r2, st, NULL);
    CHECK(et_rng_next(&r2) == a, "state round trip");
    uint64_t z[4] = {0, 0, 0, 0};
    et_error err = {0};
    CHECK(et_rng_set_state(&r2, z, &err) == ET_ERR_FORMAT, "zero state rejected");
    /* permutation is a permutation; shuffle is uniform-ish: position of element 0 over 20000 shuffles of 5 */
    int perm[100], seen[100] = {0};
    et_rng_seed(&r, 7);
    et_rng_permutation(&r, perm, 100);
    for (int i = 0; i < 100; i++) seen[perm[i]]++;
    for (int i = 0; i < 100; i++) CHECK(seen[i] == 1, "permutation misses %d", i);
    int pos[5] = {0};
    for (int k = 0; k < 20000; k++) {
        int a5[5];
        et_rng_permutation(&r, a5, 5);
        for (int i = 0; i < 5; i++)
            if (a5[i] == 0) pos[i]++;
    }
    for (int i = 0; i < 5; i++) CHECK(abs(pos[i] - 4000) < 300, "shuffle bias: slot %d got %d/20000", i, pos[i]);
    /* uniform ranges, below(), normal moments */
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; i++) {
        double u = et_rng_uniform(&r);
        float uf = et_rng_uniformf(&r);
        CHECK(u >= 0 && u < 1 && uf >= 0 && uf < 1, "uniform range");
        CHECK(et_rng_below(&r, 7) < 7, "below range");
        double x = et_rng_normal(&r);
        sum += x;
        sq += x * x;
    }
    CHECK(fabs(sum / 20000) < 0.05 && fabs(sq / 20000 - 1) < 0.05, "normal moments %g %g", sum / 20000, sq / 20000);
    /* fork: deterministic, does not advance the parent, different streams differ; jump changes the state */
    et_rng_seed(&r, 1);
    et_rng c1, c2, c3;
    et_rng_fork(&r, 0, &c1);
    et_rng_fork(&r, 0, &c2);
    et_rng_fork(&r, 1, &c3);
    CHECK(!memcmp(&c1, &c2, sizeof c1) && memcmp(&c1, &c3, sizeof c1), "fork");
    et_rng_seed(&r2, 1);
    CHECK(!memcmp(&r, &r2, sizeof r), "fork advanced the parent");
    et_rng_jump(&r2);
    CHECK(memcmp(&r, &r2, sizeof r), "jump");
}

int main(void) {
    test_rng();
    test_schedule_and_misc();
    test_adamw_fixture();
    return et_test_report("test_optim");
}
