/* bench_train.c - embedtune side of the train-step benchmark (bench/run_train_bench.sh).
 *
 * One train step, as sentence-transformers fit() does it with MultipleNegativesRankingLoss:
 *   forward queries [Bq,Tq] and documents [Bd,Td] (training activations, dropout OFF)
 *   -> InfoNCE / MNRL (scale 20 = tau 0.05, cosine, in-batch negatives) on the pooled embeddings
 *   -> backward documents, backward queries (both accumulate into ONE gradient buffer)
 *   -> AdamW (lr 1e-4, wd 0.01 except biases/LayerNorm, pooler frozen: it gets no gradient)
 *   -> zero the gradients.
 *
 *   bench_train --model DIR --threads T [--bq 32 --tq 32 --bd 32 --td 128] [--warmup 1] [--reps 5]
 *               [--min-time S] [--lr 1e-4] [--profile] [--precision fp32|bf16]
 *
 * Prints one JSON object: per-step wall seconds (and process CPU seconds), best/median, the loss
 * before each timed step (the same sequence torch_train.py prints: the runner compares them), the
 * peak RSS (getrusage ru_maxrss) and the bytes of each big buffer.
 * --bf16-table NAME: that bf16 table (et_bf16_force: amx-bf16, avx512bf16, bf16-scalar) instead of the fastest here.
 * --precision bf16: the Linear layers' GEMMs in bf16 (bert.h et_bert_acts_set_bf16; the engine is then
 *   "embedtune-bf16" and "precision" says which table ran); refused where the CPU has no AVX512_BF16.
 *   With --gemm: time et_sgemm_bf16 on the Linear shapes instead of et_sgemm (attention stays fp32).
 * --profile: also time each phase of the step (fwd q, fwd d, loss, bwd d, bwd q, adamw, zero).
 * --gemm: no training; time et_sgemm on every GEMM shape the step runs (the et_linear_forward /
 *   et_linear_backward calls of bert.c, and the per-(batch, head) attention GEMMs), best of --reps,
 *   and print GFLOP/s and the estimated ms per step of each shape (count x time) as JSON lines
 *   (1 thread and the attention GEMMs: process CPU time; else wall time).
 * --elem: no training; time the non-GEMM kernels (GELU, LayerNorm, attention, bias) at the step's
 *   sizes against memcpy of the same bytes, with their per-step counts, as JSON lines.
 * The model folder is made by bench/make_minilm_random.py (the runner does it when missing).
 * The ids are the encode benchmark's xorshift32 ids in [1000, V) (seed 12345 for queries, 54321
 * for documents), identical in torch_train.py; the attention mask is all ones, passed explicitly.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bert.h"
#include "error.h"
#include "hf.h"
#include "kernels.h"
#include "loss.h"
#include "optim.h"
#include "threads.h"
#include "bench_common.h"

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_train [--model DIR] [--threads N] [--bq B] [--tq T] [--bd B] [--td T]\n"
                    "                   [--warmup N] [--reps N] [--min-time S] [--lr X] [--profile] [--gemm] [--elem]\n"
                    "                   [--precision fp32|bf16] [--bf16-table amx-bf16|avx512bf16|bf16-scalar]\n");
}

enum { PH_FWD_Q, PH_FWD_D, PH_LOSS, PH_BWD_D, PH_BWD_Q, PH_ADAMW, PH_ZERO, PH_N };
static const char *ph_name[PH_N] = {"fwd_q", "fwd_d", "loss", "bwd_d", "bwd_q", "adamw", "zero_grad"};

typedef struct {
    et_bert *m;
    et_pool *pool;
    et_bert_acts *aq, *ad;
    int32_t *ids_q, *ids_d, *mask_q, *mask_d;
    int Bq, Tq, Bd, Td, C;
    float *grads, *dq, *dd;
    et_bert_params gv;
    et_adamw *opt;
    et_loss_cfg lcfg;
    double *lscratch;
    double lr;
} step_ctx;

/* One train step; returns the loss (before the update) in *loss; ph[] += phase seconds if ph. */
static et_status train_step(step_ctx *s, double *loss, double *ph, et_error *err) {
    et_status st;
    double t0 = bench_now_s(), t1;
#define MARK(p) do { if (ph) { t1 = bench_now_s(); ph[p] += t1 - t0; t0 = t1; } } while (0)
    if ((st = et_bert_forward(s->m, s->aq, s->pool, s->ids_q, s->mask_q, NULL, s->Bq, s->Tq, NULL, 0, 0, err)) != ET_OK)
        return st;
    MARK(PH_FWD_Q);
    if ((st = et_bert_forward(s->m, s->ad, s->pool, s->ids_d, s->mask_d, NULL, s->Bd, s->Td, NULL, 0, 0, err)) != ET_OK)
        return st;
    MARK(PH_FWD_D);
    memset(s->dq, 0, sizeof(float) * (size_t)s->Bq * (size_t)s->C);
    memset(s->dd, 0, sizeof(float) * (size_t)s->Bd * (size_t)s->C);
    /* MNRL: query i's positive is document i (Bq == Bd) */
    if ((st = et_loss_infonce(&s->lcfg, s->aq->pooled, s->ad->pooled, NULL, s->Bq, 0, s->C, s->dq, s->dd, NULL,
                              s->lscratch, loss, err)) != ET_OK)
        return st;
    MARK(PH_LOSS);
    if ((st = et_bert_backward(s->m, s->ad, s->pool, s->dd, &s->gv, err)) != ET_OK) return st;
    MARK(PH_BWD_D);
    if ((st = et_bert_backward(s->m, s->aq, s->pool, s->dq, &s->gv, err)) != ET_OK) return st;
    MARK(PH_BWD_Q);
    if ((st = et_adamw_step(s->opt, s->m->params, s->grads, s->lr, err)) != ET_OK) return st;
    MARK(PH_ADAMW);
    memset(s->grads, 0, sizeof(float) * s->m->n_params);
    MARK(PH_ZERO);
#undef MARK
    return ET_OK;
}

/* ---- --gemm: the step's GEMM shapes ---------------------------------------------------------- */
typedef struct { const char *what; int ta, tb, M, N, K, count; } gemm_shape;

static int gemm_mode(int threads, int Bq, int Tq, int Bd, int Td, int reps, int bf16, et_error *err) {
    const int C = 384, I = 1536, L = 6, NH = 12, hd = C / NH;
    et_pool *pool = et_pool_create(threads, err);
    et_pool *pool1 = et_pool_create(1, err);
    if (!pool || !pool1) { et_pool_destroy(pool); return 1; }
    gemm_shape sh[64];
    int ns = 0;
    const int Ns[2] = {Bd * Td, Bq * Tq}, Ts[2] = {Td, Tq}, Bs[2] = {Bd, Bq};
    const char *side[2] = {"docs", "queries"};
    (void)side;
    for (int s = 0; s < 2; s++) {
        int N = Ns[s], T = Ts[s], BH = Bs[s] * NH;
        /* et_linear_forward: sgemm(0,1, N, OC, IC) */
        sh[ns++] = (gemm_shape){"fwd qkv/ao  x@W^T", 0, 1, N, C, C, 4 * L};
        sh[ns++] = (gemm_shape){"fwd ffn.i   x@W^T", 0, 1, N, I, C, L};
        sh[ns++] = (gemm_shape){"fwd ffn.o   x@W^T", 0, 1, N, C, I, L};
        /* et_linear_backward: dinp sgemm(0,0, N, IC, OC); dW sgemm(1,0, OC, IC, N) */
        sh[ns++] = (gemm_shape){"bwd qkv/ao  dx=dy@W", 0, 0, N, C, C, 4 * L};
        sh[ns++] = (gemm_shape){"bwd ffn.o   dx=dy@W", 0, 0, N, I, C, L};
        sh[ns++] = (gemm_shape){"bwd ffn.i   dx=dy@W", 0, 0, N, C, I, L};
        sh[ns++] = (gemm_shape){"bwd qkv/ao  dW=dy^T@x", 1, 0, C, C, N, 4 * L};
        sh[ns++] = (gemm_shape){"bwd ffn.o   dW=dy^T@x", 1, 0, C, I, N, L};
        sh[ns++] = (gemm_shape){"bwd ffn.i   dW=dy^T@x", 1, 0, I, C, N, L};
        /* attention, per (batch, head), serial inside a task (1-thread timing) */
        sh[ns++] = (gemm_shape){"att fwd  S=q@k^T", 0, 1, T, T, hd, -BH * L};
        sh[ns++] = (gemm_shape){"att fwd  y=P@v", 0, 0, T, hd, T, -BH * L};
        sh[ns++] = (gemm_shape){"att bwd  dP=dy@v^T", 0, 1, T, T, hd, -BH * L};
        sh[ns++] = (gemm_shape){"att bwd  dv=P^T@dy", 1, 0, T, hd, T, -BH * L};
        sh[ns++] = (gemm_shape){"att bwd  dq=dS@k", 0, 0, T, hd, T, -BH * L};
        sh[ns++] = (gemm_shape){"att bwd  dk=dS^T@q", 1, 0, T, hd, T, -BH * L};
    }
    size_t maxf = (size_t)Bd * Td * I * 2 + (size_t)I * I;
    float *A = malloc(maxf * sizeof(float)), *Bm = malloc(maxf * sizeof(float)), *Cm = malloc(maxf * sizeof(float));
    if (!A || !Bm || !Cm) { free(A); free(Bm); free(Cm); et_pool_destroy(pool); et_pool_destroy(pool1); return 1; }
    for (size_t i = 0; i < maxf; i++) { A[i] = (float)((i * 7919u) % 1000) * 1e-3f - 0.5f; Bm[i] = A[i] * 0.5f; Cm[i] = 0; }
    double total_ms = 0;
    for (int i = 0; i < ns; i++) {
        gemm_shape g = sh[i];
        int att = g.count < 0, cnt = att ? -g.count : g.count;
        et_pool *p = att ? pool1 : pool;
        int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
        int inner = att ? 64 : 1; /* small GEMMs: time a batch of calls */
        double best = 1e30;
        int use_cpu = att || threads == 1; /* 1 thread: CPU time, robust against other jobs */
        for (int r = 0; r < reps + 1; r++) {
            double t0 = use_cpu ? cpu_s() : bench_now_s();
            for (int j = 0; j < inner; j++) {
                if (bf16 && !att) et_sgemm_bf16(p, g.ta, g.tb, g.M, g.N, g.K, 1.0f, A, lda, Bm, ldb, 1.0f, Cm, g.N);
                else et_sgemm(p, g.ta, g.tb, g.M, g.N, g.K, 1.0f, A, lda, Bm, ldb, 1.0f, Cm, g.N);
            }
            double t = ((use_cpu ? cpu_s() : bench_now_s()) - t0) / inner;
            if (r > 0 && t < best) best = t;
        }
        double gf = 2.0 * g.M * g.N * g.K / best * 1e-9;
        /* attention GEMMs run one (b,h) per task, spread over the pool's threads */
        double step_ms = best * cnt * 1e3 / (att ? threads : 1);
        total_ms += step_ms;
        printf("{\"gemm\":\"%s\",\"precision\":\"%s\",\"op\":\"%s%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"threads\":%d,\"per_step\":%d,"
               "\"ms\":%.4f,\"gflops\":%.1f,\"ms_per_step\":%.1f}\n",
               g.what, bf16 && !att ? et_bf16_name() : "fp32", g.ta ? "T" : "N", g.tb ? "T" : "N", g.M, g.N, g.K, att ? 1 : threads, cnt, best * 1e3, gf,
               step_ms);
        fflush(stdout);
    }
    printf("{\"gemm_total_ms_per_step\":%.1f,\"threads\":%d}\n", total_ms, threads);
    free(A); free(Bm); free(Cm);
    et_pool_destroy(pool);
    et_pool_destroy(pool1);
    return 0;
}

/* ---- --elem: the step's non-GEMM kernels at the step's sizes ---------------------------------- */
static void elem_line(const char *what, int n_per_step, double best, double bytes, double ref_best) {
    printf("{\"elem\":\"%s\",\"per_step\":%d,\"ms\":%.3f,\"GB_s\":%.1f,\"x_memcpy\":%.1f,\"ms_per_step\":%.1f}\n", what,
           n_per_step, best * 1e3, bytes / best * 1e-9, ref_best > 0 ? best / ref_best : 0.0, best * n_per_step * 1e3);
    fflush(stdout);
}

#define TIME_BEST(best, reps, stmt)                                              \
    do {                                                                         \
        best = 1e30;                                                             \
        for (int r_ = 0; r_ < (reps) + 1; r_++) {                                \
            double t0_ = use_cpu ? cpu_s() : bench_now_s();                            \
            stmt;                                                                \
            double t_ = (use_cpu ? cpu_s() : bench_now_s()) - t0_;                     \
            if (r_ > 0 && t_ < best) best = t_;                                  \
        }                                                                        \
    } while (0)

static int elem_mode(int threads, int Bq, int Tq, int Bd, int Td, int reps, et_error *err) {
    const int C = 384, I = 1536, NH = 12, L = 6;
    const int use_cpu = threads == 1;
    et_pool *pool = et_pool_create(threads, err);
    if (!pool) return 1;
    const int Bs[2] = {Bd, Bq}, Ts[2] = {Td, Tq};
    size_t BTImax = (size_t)Bd * Td * I, attmax = (size_t)Bd * NH * Td * Td;
    float *x = malloc(BTImax * 4), *y = malloc(BTImax * 4), *z = malloc(BTImax * 4), *att = malloc(attmax * 4);
    float *q = malloc(BTImax / 4 * 4), *k = malloc(BTImax / 4 * 4), *v = malloc(BTImax / 4 * 4);
    float *w = malloc(C * 4), *b = malloc(C * 4), *dw = calloc(C, 4), *db = calloc(C, 4);
    float *mean = malloc((size_t)Bd * Td * 4), *rstd = malloc((size_t)Bd * Td * 4);
    float *scr = malloc((size_t)threads * et_attention_scratch_floats(Td > Tq ? Td : Tq, C, NH) * 4);
    int32_t *mask = malloc(sizeof(int32_t) * (size_t)Bd * Td);
    if (!x || !y || !z || !att || !q || !k || !v || !w || !b || !dw || !db || !mean || !rstd || !scr || !mask) {
        et_fail(err, ET_ERR_NOMEM, "elem buffers");
        et_pool_destroy(pool);
        return 1;
    }
    for (size_t i = 0; i < BTImax; i++) { x[i] = (float)((i * 7919u) % 1000) * 4e-3f - 2.0f; y[i] = 0.01f; z[i] = 0; }
    for (size_t i = 0; i < BTImax / 4; i++) { q[i] = x[i] * 0.3f; k[i] = x[i + 1] * 0.3f; v[i] = x[i + 2]; }
    for (int i = 0; i < C; i++) { w[i] = 1.0f + 0.01f * (float)(i % 7); b[i] = 0.01f * (float)(i % 5); }
    for (int i = 0; i < Bd * Td; i++) mask[i] = 1;
    double total = 0, best, ref;
    for (int s = 0; s < 2; s++) {
        int B = Bs[s], T = Ts[s], BT = B * T;
        int64_t nI = (int64_t)BT * I, nC = (int64_t)BT * C;
        char name[96];
        TIME_BEST(ref, reps, memcpy(z, x, (size_t)nI * 4));
        snprintf(name, sizeof name, "memcpy [%d,%d] (reference)", BT, I);
        elem_line(name, 0, ref, 2.0 * nI * 4, ref);
        TIME_BEST(best, reps, et_gelu_forward(pool, z, x, nI));
        snprintf(name, sizeof name, "gelu fwd [%d,%d] (fwd + bwd recompute)", BT, I);
        elem_line(name, 2 * L, best, 2.0 * nI * 4, ref);
        total += best * 2 * L;
        TIME_BEST(best, reps, et_gelu_backward(pool, z, x, y, nI));
        snprintf(name, sizeof name, "gelu bwd [%d,%d]", BT, I);
        elem_line(name, L, best, 4.0 * nI * 4, ref * 2);
        total += best * L;
        TIME_BEST(ref, reps, memcpy(z, x, (size_t)nC * 4));
        TIME_BEST(best, reps, et_layernorm_forward(pool, z, mean, rstd, x, w, b, BT, C, 1e-12f));
        snprintf(name, sizeof name, "layernorm fwd [%d,%d]", BT, C);
        elem_line(name, 2 * L + 1, best, 2.0 * nC * 4, ref);
        total += best * (2 * L + 1);
        TIME_BEST(best, reps, et_layernorm_backward(pool, z, dw, db, y, x, w, mean, rstd, BT, C));
        snprintf(name, sizeof name, "layernorm bwd [%d,%d]", BT, C);
        elem_line(name, 2 * L + 1, best, 4.0 * nC * 4, ref * 2);
        total += best * (2 * L + 1);
        TIME_BEST(best, reps, et_attention_forward(pool, z, att, scr, q, k, v, mask, B, T, C, NH, 0.0f, 0));
        snprintf(name, sizeof name, "attention fwd B=%d T=%d (incl. its GEMMs)", B, T);
        elem_line(name, L, best, 0, 0);
        total += best * L;
        TIME_BEST(best, reps, et_attention_backward(pool, x, y, z, scr, v, att, q, k, v, B, T, C, NH, 0.0f, 0));
        snprintf(name, sizeof name, "attention bwd B=%d T=%d (incl. its GEMMs)", B, T);
        elem_line(name, L, best, 0, 0);
        total += best * L;
        TIME_BEST(best, reps, for (int n = 0; n < BT; n++) et_axpy(db, 1.0f, y + (size_t)n * C, C));
        snprintf(name, sizeof name, "dbias rows [%d,%d] (et_linear_backward)", BT, C);
        elem_line(name, 4 * L, best, 0, 0);
        total += best * 4 * L;
        TIME_BEST(best, reps, for (int n = 0; n < BT; n++) memcpy(z + (size_t)n * I, b, (size_t)C * 4));
        snprintf(name, sizeof name, "bias broadcast [%d,%d] (et_linear_forward)", BT, C);
        elem_line(name, 5 * L, best, 0, 0); /* 4 C-wide + 1 I-wide (x4) ~ 8 C-wide per layer; rough */
        total += best * 8 * L;
    }
    printf("{\"elem_total_ms_per_step\":%.1f,\"threads\":%d}\n", total * 1e3, threads);
    free(x); free(y); free(z); free(att); free(q); free(k); free(v); free(w); free(b); free(dw); free(db);
    free(mean); free(rstd); free(scr); free(mask);
    et_pool_destroy(pool);
    return 0;
}

int main(int argc, char **argv) {
    const char *model_dir = "/tmp/et-bench/minilm";
    int threads = 1, Bq = 32, Tq = 32, Bd = 32, Td = 128, warmup = 1, reps = 5, profile = 0, gemm = 0, bf16 = 0;
    double min_time = 0.0, lr = 1e-4;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--profile")) { profile = 1; continue; }
        if (!strcmp(k, "--gemm")) { gemm = 1; continue; }
        if (!strcmp(k, "--elem")) { gemm = 2; continue; }
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) { usage(); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "bench_train: %s: missing value\n", k); usage(); return 2; }
        const char *v = argv[++i];
        if (!strcmp(k, "--model")) model_dir = v;
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--bq")) Bq = atoi(v);
        else if (!strcmp(k, "--tq")) Tq = atoi(v);
        else if (!strcmp(k, "--bd")) Bd = atoi(v);
        else if (!strcmp(k, "--td")) Td = atoi(v);
        else if (!strcmp(k, "--warmup")) warmup = atoi(v);
        else if (!strcmp(k, "--reps")) reps = atoi(v);
        else if (!strcmp(k, "--min-time")) min_time = atof(v);
        else if (!strcmp(k, "--lr")) lr = atof(v);
        else if (!strcmp(k, "--precision") && (!strcmp(v, "fp32") || !strcmp(v, "bf16"))) bf16 = !strcmp(v, "bf16");
        else if (!strcmp(k, "--bf16-table")) {
            if (et_bf16_force(v) != 0) { fprintf(stderr, "bench_train: bf16 table '%s' does not run here\n", v); return 2; }
        }
        else { fprintf(stderr, "bench_train: unknown option %s\n", k); usage(); return 2; }
    }
    if (threads < 1 || Bq < 1 || Tq < 1 || Bd != Bq || Td < 1 || reps < 1 || warmup < 0) {
        fprintf(stderr, "bench_train: threads, sizes, reps must be >= 1, warmup >= 0, and --bd == --bq (MNRL pairs)\n");
        return 2;
    }

    if (bf16 && !et_bf16_native()) {
        fprintf(stderr, "bench_train: --precision bf16: this CPU has no AVX512_BF16 (VDPBF16PS) or AMX-BF16\n");
        return 2;
    }
    et_error err = {0};
    if (gemm) {
        int r = gemm == 1 ? gemm_mode(threads, Bq, Tq, Bd, Td, reps, bf16, &err)
                          : elem_mode(threads, Bq, Tq, Bd, Td, reps, &err);
        if (r) fprintf(stderr, "bench_train: --gemm: %s\n", err.msg[0] ? err.msg : "out of memory");
        return r;
    }
    et_bert m = {0};
    et_bert_acts aq = {0}, ad = {0};
    et_adamw opt = {0};
    et_pool *pool = NULL;
    et_param_seg *segs = NULL;
    step_ctx s = {0};
    double *times = NULL, *ctimes = NULL, *losses = NULL;
    int rc = 1, n = 0;
    double ph[PH_N] = {0};

    et_status st = et_hf_load(model_dir, &m, &err);
    if (st != ET_OK) goto fail;
    m.cfg.hidden_dropout = 0.0f; /* dropout off (also not requested: dropout arg 0 below) */
    m.cfg.attn_dropout = 0.0f;
    const int C = m.cfg.hidden_size;
    pool = et_pool_create(threads, &err);
    if (!pool) goto fail;

    /* AdamW segments from the tensor table: sentence-transformers' no-decay rule; pooler frozen */
    segs = calloc((size_t)m.n_tensors, sizeof *segs);
    if (!segs) { et_fail(&err, ET_ERR_NOMEM, "segments"); goto fail; }
    for (int i = 0; i < m.n_tensors; i++) {
        segs[i].offset = m.tensors[i].offset;
        segs[i].n = m.tensors[i].numel;
        segs[i].decay = !et_param_no_decay(m.tensors[i].name);
        segs[i].trainable = strncmp(m.tensors[i].name, "pooler.", 7) != 0;
    }
    et_adamw_cfg acfg;
    et_adamw_cfg_default(&acfg); /* 0.9, 0.999, 1e-8, wd 0.01 = torch.optim.AdamW defaults */
    if ((st = et_adamw_init(&opt, &acfg, m.n_params, segs, m.n_tensors, &err)) != ET_OK) goto fail;

    if ((st = et_bert_acts_alloc(&aq, &m.cfg, Bq, Tq, 1, threads, &err)) != ET_OK) goto fail;
    if ((st = et_bert_acts_alloc(&ad, &m.cfg, Bd, Td, 1, threads, &err)) != ET_OK) goto fail;
    et_bert_acts_set_bf16(&aq, bf16);
    et_bert_acts_set_bf16(&ad, bf16);

    s.m = &m; s.pool = pool; s.aq = &aq; s.ad = &ad;
    s.Bq = Bq; s.Tq = Tq; s.Bd = Bd; s.Td = Td; s.C = C;
    s.opt = &opt; s.lr = lr;
    et_loss_cfg_default(&s.lcfg);
    s.grads = calloc(m.n_params, sizeof(float));
    s.dq = malloc(sizeof(float) * (size_t)Bq * (size_t)C);
    s.dd = malloc(sizeof(float) * (size_t)Bd * (size_t)C);
    size_t lsd = et_loss_scratch_doubles(Bq, 0, C);
    s.lscratch = malloc(sizeof(double) * lsd);
    s.ids_q = malloc(sizeof(int32_t) * (size_t)Bq * (size_t)Tq);
    s.mask_q = malloc(sizeof(int32_t) * (size_t)Bq * (size_t)Tq);
    s.ids_d = malloc(sizeof(int32_t) * (size_t)Bd * (size_t)Td);
    s.mask_d = malloc(sizeof(int32_t) * (size_t)Bd * (size_t)Td);
    if (!s.grads || !s.dq || !s.dd || !s.lscratch || !s.ids_q || !s.mask_q || !s.ids_d || !s.mask_d) {
        et_fail(&err, ET_ERR_NOMEM, "step buffers");
        goto fail;
    }
    et_bert_params_view(&m.cfg, s.grads, &s.gv);
    bench_ids(s.ids_q, Bq * Tq, m.cfg.vocab_size, 12345u);
    bench_ids(s.ids_d, Bd * Td, m.cfg.vocab_size, 54321u);
    for (int i = 0; i < Bq * Tq; i++) s.mask_q[i] = 1;
    for (int i = 0; i < Bd * Td; i++) s.mask_d[i] = 1;

    int cap = reps > 64 ? reps : 64;
    times = malloc(sizeof(double) * (size_t)cap);
    ctimes = malloc(sizeof(double) * (size_t)cap);
    losses = malloc(sizeof(double) * (size_t)(cap + warmup));
    if (!times || !ctimes || !losses) { et_fail(&err, ET_ERR_NOMEM, "times"); goto fail; }
    int nl = 0;
    for (int i = 0; i < warmup; i++)
        if ((st = train_step(&s, &losses[nl++], NULL, &err)) != ET_OK) goto fail;
    double t_start = bench_now_s();
    while (n < reps || bench_now_s() - t_start < min_time) {
        if (n == cap) {
            cap *= 2;
            double *a = realloc(times, sizeof(double) * (size_t)cap);
            if (a) times = a;
            double *b = realloc(ctimes, sizeof(double) * (size_t)cap);
            if (b) ctimes = b;
            double *c = realloc(losses, sizeof(double) * (size_t)(cap + warmup));
            if (c) losses = c;
            if (!a || !b || !c) { et_fail(&err, ET_ERR_NOMEM, "times"); goto fail; }
        }
        double t0 = bench_now_s(), c0 = cpu_s();
        if ((st = train_step(&s, &losses[nl++], profile ? ph : NULL, &err)) != ET_OK) goto fail;
        ctimes[n] = cpu_s() - c0;
        times[n++] = bench_now_s() - t0;
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    size_t acts_bytes = aq.bytes + ad.bytes, pbytes = m.n_params * sizeof(float);
    printf("{\"engine\":\"%s\",\"precision\":\"%s\",\"threads\":%d,\"bq\":%d,\"tq\":%d,\"bd\":%d,\"td\":%d,\"lr\":%g,"
           "\"times_s\":[", bf16 ? "embedtune-bf16" : "embedtune", bf16 ? et_bf16_name() : "fp32", threads, Bq, Tq, Bd, Td, lr);
    for (int i = 0; i < n; i++) printf("%s%.6f", i ? "," : "", times[i]);
    printf("],\"cpu_s\":[");
    for (int i = 0; i < n; i++) printf("%s%.6f", i ? "," : "", ctimes[i]);
    printf("],\"losses\":[");
    for (int i = 0; i < nl; i++) printf("%s%.9g", i ? "," : "", losses[i]);
    double best = 0, med = 0;
    {
        double *tmp = malloc(sizeof(double) * (size_t)n);
        if (tmp) {
            memcpy(tmp, times, sizeof(double) * (size_t)n);
            med = bench_median(tmp, n);
            best = tmp[0];
            free(tmp);
        }
    }
    printf("],\"best_s\":%.6f,\"median_s\":%.6f,\"peak_rss_kib\":%ld,\"bytes\":{\"params\":%zu,\"grads\":%zu,"
           "\"adamw\":%zu,\"acts_q\":%zu,\"acts_d\":%zu}",
           best, med, ru.ru_maxrss, pbytes, pbytes, 2 * pbytes, aq.bytes, ad.bytes);
    (void)acts_bytes;
    if (profile) {
        printf(",\"phases_s\":{");
        for (int p = 0; p < PH_N; p++) printf("%s\"%s\":%.6f", p ? "," : "", ph_name[p], ph[p] / n);
        printf("}");
    }
    printf("}\n");
    rc = 0;
    goto done;

fail:
    fprintf(stderr, "bench_train: %s\n", err.msg[0] ? err.msg : "failed");
    rc = 1;
done:
    free(times);
    free(ctimes);
    free(losses);
    free(s.grads);
    free(s.dq);
    free(s.dd);
    free(s.lscratch);
    free(s.ids_q);
    free(s.mask_q);
    free(s.ids_d);
    free(s.mask_d);
    free(segs);
    et_adamw_free(&opt);
    et_bert_acts_free(&aq);
    et_bert_acts_free(&ad);
    et_pool_destroy(pool);
    et_bert_free(&m);
    return rc;
}
