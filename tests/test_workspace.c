/* test_workspace.c - out of memory never changes a kernel's result, and bert's forward/backward turn
 * it into an et_status (kernels.h, bert.h "Kernel workspace"). The process's address space is capped
 * (setrlimit RLIMIT_AS) a little above what it uses, so the next large allocation fails; then
 *   1. et_sgemm / et_linear_forward / et_linear_forward_gelu with a NULL pool (whose packing buffer is
 *      allocated per call) must still return the bits of the uncapped run (the tile-by-tile stack path),
 *   2. the attention kernels (forward with and without stored probabilities, both backwards, dropout
 *      on) must return the uncapped bits: they allocate nothing (the caller's scratch holds it all),
 *   3. et_bert_forward on a pool whose scratch was never reserved must fail with ET_ERR_NOMEM naming
 *      the kernel workspace (or, if it needs nothing more, return the uncapped bits), never a result
 *      computed some other way; after the cap is lifted the same call succeeds with the uncapped bits.
 * Skipped (reported) under AddressSanitizer, whose shadow memory cannot live under such a cap, and
 * where there is no setrlimit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bert.h"
#include "kernels.h"
#include "et_test.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ET_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ET_ASAN 1
#endif

#if defined(__linux__) && !defined(ET_ASAN) && !defined(__EMSCRIPTEN__) && !defined(__wasi__)
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

static uint64_t g_rng = 99;
static float *rnd(size_t n, float s) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = s * et_test_frand(&g_rng);
    return x;
}

static size_t vm_bytes(void) { /* the address space in use now */
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static struct rlimit g_old;
static int cap(void) { /* 256 KiB above what is in use: any allocation of ~1 MiB fails */
    struct rlimit r = g_old;
    r.rlim_cur = (rlim_t)(vm_bytes() + (256 << 10));
    if (setrlimit(RLIMIT_AS, &r)) return 0;
    void *probe = malloc(1 << 20); /* the cap must bite, or this test proves nothing */
    free(probe);
    return probe == NULL;
}
static void uncap(void) { setrlimit(RLIMIT_AS, &g_old); }

enum { M = 100, N = 300, K = 500, B = 3, T = 64, C = 64, NH = 4 };

typedef struct { float *gemm, *lin, *gelu, *att_out, *rs_out, *g_att, *g_rs; } outs;

static void alloc_outs(outs *o) {
    o->gemm = malloc(sizeof(float) * M * N);
    o->lin = malloc(sizeof(float) * M * N);
    o->gelu = malloc(sizeof(float) * M * N);
    o->att_out = malloc(sizeof(float) * B * T * C);
    o->rs_out = malloc(sizeof(float) * B * T * C);
    o->g_att = calloc((size_t)3 * B * T * C, sizeof(float));
    o->g_rs = calloc((size_t)3 * B * T * C, sizeof(float));
}
static void free_outs(outs *o) {
    free(o->gemm); free(o->lin); free(o->gelu); free(o->att_out); free(o->rs_out); free(o->g_att); free(o->g_rs);
}

typedef struct { float *A, *Bm, *bias, *q, *k, *v, *dout, *att, *rs, *scr; int32_t *mask; } inputs;

static void run_kernels(const inputs *in, outs *o) {
    size_t n = (size_t)B * T * C;
    et_sgemm(NULL, 1, 0, M, N, K, 0.7f, in->A, M, in->Bm, N, 0.0f, o->gemm, N);
    et_linear_forward(NULL, o->lin, in->A, in->Bm, in->bias, M, K, N > K ? K : N);
    et_linear_forward_gelu(NULL, o->gelu, in->A, in->Bm, NULL, in->bias, M, K, N > K ? K : N);
    et_attention_forward(NULL, o->att_out, in->att, in->scr, in->q, in->k, in->v, in->mask, B, T, C, NH, 0.1f, 7);
    et_attention_forward_rs(NULL, o->rs_out, in->rs, in->scr, in->q, in->k, in->v, in->mask, B, T, C, NH, 0.1f, 7);
    et_attention_backward(NULL, o->g_att, o->g_att + n, o->g_att + 2 * n, in->scr, in->dout, in->att, in->q, in->k,
                          in->v, B, T, C, NH, 0.1f, 7);
    et_attention_backward_rs(NULL, o->g_rs, o->g_rs + n, o->g_rs + 2 * n, in->scr, in->dout, in->rs, in->mask, in->q,
                             in->k, in->v, B, T, C, NH, 0.1f, 7);
}

static void test_kernels(void) {
    inputs in;
    size_t n = (size_t)B * T * C;
    in.A = rnd((size_t)K * M, 1); in.Bm = rnd((size_t)K * N, 1); in.bias = rnd(N, 1);
    in.q = rnd(n, 2); in.k = rnd(n, 2); in.v = rnd(n, 1); in.dout = rnd(n, 1);
    in.att = malloc(sizeof(float) * B * NH * T * T);
    in.rs = malloc(sizeof(float) * B * NH * T * 2);
    in.scr = malloc(sizeof(float) * et_attention_scratch_floats(T, C, NH));
    in.mask = malloc(sizeof(int32_t) * B * T);
    for (int i = 0; i < B * T; i++) in.mask[i] = (i % T) < T - 5 * (i / T);
    outs ref, got;
    alloc_outs(&ref);
    alloc_outs(&got);
    run_kernels(&in, &ref);
    malloc_trim(0);
    if (!cap()) { CHECK(0, "could not cap the address space (setrlimit RLIMIT_AS)"); uncap(); return; }
    run_kernels(&in, &got);
    uncap();
    CHECK(!memcmp(ref.gemm, got.gemm, sizeof(float) * M * N), "et_sgemm out of memory: other bits");
    CHECK(!memcmp(ref.lin, got.lin, sizeof(float) * M * N), "et_linear_forward out of memory: other bits");
    CHECK(!memcmp(ref.gelu, got.gelu, sizeof(float) * M * N), "et_linear_forward_gelu out of memory: other bits");
    CHECK(!memcmp(ref.att_out, got.att_out, sizeof(float) * n), "et_attention_forward out of memory: other bits");
    CHECK(!memcmp(ref.rs_out, got.rs_out, sizeof(float) * n), "et_attention_forward_rs out of memory: other bits");
    CHECK(!memcmp(ref.g_att, got.g_att, sizeof(float) * 3 * n), "et_attention_backward out of memory: other bits");
    CHECK(!memcmp(ref.g_rs, got.g_rs, sizeof(float) * 3 * n), "et_attention_backward_rs out of memory: other bits");
    free_outs(&ref);
    free_outs(&got);
    free(in.A); free(in.Bm); free(in.bias); free(in.q); free(in.k); free(in.v); free(in.dout);
    free(in.att); free(in.rs); free(in.scr); free(in.mask);
}

static void test_bert(void) {
    et_error err = {0};
    et_bert_config c = {0};
    c.vocab_size = 50; c.hidden_size = 96; c.num_layers = 2; c.num_heads = 4; c.intermediate_size = 256;
    c.max_position = 64; c.type_vocab_size = 2; c.layer_norm_eps = 1e-12f; c.pooling = ET_POOL_MEAN; c.normalize = 1;
    et_bert m;
    if (et_bert_alloc(&m, &c, &err)) { CHECK(0, "%s", err.msg); return; }
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = 0.1f * et_test_frand(&g_rng);
    const int Bb = 4, Tt = 48;
    int32_t ids[4 * 48];
    for (int i = 0; i < Bb * Tt; i++) ids[i] = (i * 7 + 1) % c.vocab_size;
    et_bert_acts a;
    float ref[4 * 96], got[4 * 96];
    et_pool *p1 = et_pool_create(2, &err), *p2 = et_pool_create(2, &err);
    if (!p1 || !p2 || et_bert_acts_alloc(&a, &c, Bb, Tt, 1, 2, &err)) { CHECK(0, "%s", err.msg); return; }
    CHECK(!et_bert_forward(&m, &a, p1, ids, NULL, NULL, Bb, Tt, ref, 1, 5, &err), "%s", err.msg);
    /* p2 has never run a kernel: its scratch is still to be allocated */
    malloc_trim(0);
    if (!cap()) { CHECK(0, "could not cap the address space"); uncap(); return; }
    memset(&err, 0, sizeof err);
    et_status s = et_bert_forward(&m, &a, p2, ids, NULL, NULL, Bb, Tt, got, 1, 5, &err);
    uncap();
    if (s) {
        CHECK(s == ET_ERR_NOMEM && strstr(err.msg, "kernel workspace"), "capped forward: status %d '%s'", s, err.msg);
    } else {
        CHECK(!memcmp(ref, got, sizeof ref), "capped forward succeeded with other bits");
    }
    CHECK(s != ET_OK, "capped forward on an unreserved pool allocated nothing? (the cap did not bite)");
    memset(&err, 0, sizeof err);
    CHECK(!et_bert_forward(&m, &a, p2, ids, NULL, NULL, Bb, Tt, got, 1, 5, &err), "uncapped: %s", err.msg);
    CHECK(!memcmp(ref, got, sizeof ref), "after the cap: other bits");
    et_bert_acts_free(&a);
    et_pool_destroy(p1);
    et_pool_destroy(p2);
    et_bert_free(&m);
}

int main(void) {
    mallopt(M_MMAP_THRESHOLD, 64 << 10); /* big blocks are mapped and unmapped: freed memory is given back */
    printf("test_workspace: capping the address space\n");
    fflush(stdout);
    if (getrlimit(RLIMIT_AS, &g_old)) { printf("test_workspace: no getrlimit, skipped\n"); return 0; }
    test_kernels();
    test_bert();
    return et_test_report("test_workspace");
}
#else
int main(void) {
    printf("test_workspace: skipped (AddressSanitizer, or no setrlimit)\n");
    return 0;
}
#endif
