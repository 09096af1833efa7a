/* kernels.c - portable reference implementations of kernels.h.
 * (The SIMD GEMM and vector paths replace the hot parts; these stay as the scalar fallback.) */
#include "kernels.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- GEMM (reference) */
typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int rows_per_task;
} gemm_ctx;

static void gemm_task(void *vctx, int task, int thread) {
    (void)thread;
    gemm_ctx *g = vctx;
    int i0 = task * g->rows_per_task, i1 = i0 + g->rows_per_task;
    if (i1 > g->M) i1 = g->M;
    for (int i = i0; i < i1; i++) {
        float *c = g->C + (size_t)i * g->ldc;
        if (g->beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)g->N);
        else if (g->beta != 1.0f) for (int j = 0; j < g->N; j++) c[j] *= g->beta;
        for (int p = 0; p < g->K; p++) {
            float a = g->ta ? g->A[(size_t)p * g->lda + i] : g->A[(size_t)i * g->lda + p];
            a *= g->alpha;
            if (!g->tb) {
                const float *b = g->B + (size_t)p * g->ldb;
                for (int j = 0; j < g->N; j++) c[j] += a * b[j];
            } else {
                for (int j = 0; j < g->N; j++) c[j] += a * g->B[(size_t)j * g->ldb + p];
            }
        }
    }
}

void et_sgemm(et_pool *pool, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    gemm_ctx g = {transA, transB, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, 0};
    int nt = et_pool_size(pool) * 4;
    g.rows_per_task = (M + nt - 1) / nt;
    if (g.rows_per_task < 1) g.rows_per_task = 1;
    et_pool_run(pool, gemm_task, &g, (M + g.rows_per_task - 1) / g.rows_per_task);
}

void et_linear_forward(et_pool *pool, float *out, const float *inp, const float *W,
                       const float *bias, int N, int IC, int OC) {
    if (bias) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, sizeof(float) * (size_t)OC);
        et_sgemm(pool, 0, 1, N, OC, IC, 1.0f, inp, IC, W, IC, 1.0f, out, OC);
    } else {
        et_sgemm(pool, 0, 1, N, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC);
    }
}

void et_linear_backward(et_pool *pool, float *dinp, float *dW, float *dbias, const float *dout,
                        const float *inp, const float *W, int N, int IC, int OC) {
    if (dinp) et_sgemm(pool, 0, 0, N, IC, OC, 1.0f, dout, OC, W, IC, 1.0f, dinp, IC);
    if (dW) et_sgemm(pool, 1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dW, IC);
    if (dbias)
        for (int n = 0; n < N; n++) et_axpy(dbias, 1.0f, dout + (size_t)n * OC, OC);
}

/* ---------------------------------------------------------------- elementwise */
#define ET_INV_SQRT2 0.70710678118654752440f
#define ET_INV_SQRT_2PI 0.39894228040143267794f

void et_gelu_forward(et_pool *pool, float *out, const float *inp, int64_t n) {
    (void)pool;
    for (int64_t i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * ET_INV_SQRT2));
}

void et_gelu_backward(et_pool *pool, float *dinp, const float *inp, const float *dout, int64_t n) {
    (void)pool;
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * ET_INV_SQRT2));
        float pdf = ET_INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

void et_layernorm_forward(et_pool *pool, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps) {
    (void)pool;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double m = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        double v = 0;
        for (int i = 0; i < C; i++) { double d = x[i] - m; v += d * d; }
        v /= C;
        float s = (float)(1.0 / sqrt(v + eps));
        float mf = (float)m;
        for (int i = 0; i < C; i++) o[i] = (x[i] - mf) * s * w[i] + b[i];
        if (mean) mean[n] = mf;
        if (rstd) rstd[n] = s;
    }
}

void et_layernorm_backward(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean, const float *rstd,
                           int N, int C) {
    (void)pool;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        float dnorm_mean = 0, dnorm_norm_mean = 0;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * s;
            float dn = w[i] * dy[i];
            dnorm_mean += dn;
            dnorm_norm_mean += dn * xh;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * s;
            float dn = w[i] * dy[i];
            if (db) db[i] += dy[i];
            if (dw) dw[i] += xh * dy[i];
            if (dinp) dinp[(size_t)n * C + i] += (dn - dnorm_mean - xh * dnorm_norm_mean) * s;
        }
    }
}

void et_softmax_rows(float *x, int N, int C) {
    for (int n = 0; n < N; n++) {
        float *r = x + (size_t)n * C;
        float mx = -INFINITY;
        for (int i = 0; i < C; i++) if (r[i] > mx) mx = r[i];
        float sum = 0;
        for (int i = 0; i < C; i++) { r[i] = expf(r[i] - mx); sum += r[i]; }
        float inv = 1.0f / sum;
        for (int i = 0; i < C; i++) r[i] *= inv;
    }
}

float et_dot(const float *a, const float *b, int64_t n) {
    float s[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) s[l] += a[i + l] * b[i + l];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

void et_axpy(float *y, float alpha, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

/* ---------------------------------------------------------------- embeddings */
void et_embedding_forward(et_pool *pool, float *out, const int32_t *ids, const int32_t *type_ids,
                          const float *wte, const float *wpe, const float *wtt, int B, int T, int C) {
    (void)pool;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t bt = (size_t)b * T + t;
            const float *e = wte + (size_t)ids[bt] * C, *p = wpe + (size_t)t * C;
            const float *y = wtt + (size_t)(type_ids ? type_ids[bt] : 0) * C;
            float *o = out + bt * C;
            for (int i = 0; i < C; i++) o[i] = (e[i] + y[i]) + p[i];
        }
}

void et_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                           const int32_t *ids, const int32_t *type_ids, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t bt = (size_t)b * T + t;
            const float *d = dout + bt * C;
            if (dwte) et_axpy(dwte + (size_t)ids[bt] * C, 1.0f, d, C);
            if (dwpe) et_axpy(dwpe + (size_t)t * C, 1.0f, d, C);
            if (dwtt) et_axpy(dwtt + (size_t)(type_ids ? type_ids[bt] : 0) * C, 1.0f, d, C);
        }
}

/* ---------------------------------------------------------------- attention (reference) */
typedef struct {
    float *out, *att, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *attc;
    const int32_t *mask;
    int B, T, C, NH;
    float drop_p;
    uint64_t seed;
} attn_ctx;

static void attn_fwd_task(void *vctx, int task, int thread) {
    attn_ctx *a = vctx;
    int T = a->T, C = a->C, NH = a->NH, hd = C / NH;
    int b = task / NH, h = task % NH;
    float scale = 1.0f / sqrtf((float)hd);
    float *P = a->att ? a->att + ((size_t)b * NH + h) * T * T : a->scratch + (size_t)thread * T * T;
    for (int i = 0; i < T; i++) {
        const float *qi = a->q + ((size_t)b * T + i) * C + h * hd;
        float *row = P + (size_t)i * T;
        for (int j = 0; j < T; j++) {
            const float *kj = a->k + ((size_t)b * T + j) * C + h * hd;
            row[j] = a->mask && !a->mask[(size_t)b * T + j] ? -INFINITY : et_dot(qi, kj, hd) * scale;
        }
        float mx = -INFINITY;
        for (int j = 0; j < T; j++) if (row[j] > mx) mx = row[j];
        if (mx == -INFINITY) { /* every key masked: HF gives a uniform distribution */
            for (int j = 0; j < T; j++) row[j] = 1.0f / T;
        } else {
            float sum = 0;
            for (int j = 0; j < T; j++) { row[j] = expf(row[j] - mx); sum += row[j]; }
            for (int j = 0; j < T; j++) row[j] /= sum;
        }
        float *o = a->out + ((size_t)b * T + i) * C + h * hd;
        memset(o, 0, sizeof(float) * hd);
        for (int j = 0; j < T; j++) {
            float p = row[j];
            if (a->drop_p > 0) {
                uint64_t idx = (((uint64_t)b * NH + h) * T + i) * T + j;
                p = et_dropout_keep(a->seed, idx, a->drop_p) ? p / (1.0f - a->drop_p) : 0.0f;
            }
            et_axpy(o, p, a->v + ((size_t)b * T + j) * C + h * hd, hd);
        }
    }
}

void et_attention_forward(et_pool *pool, float *out, float *att, float *scratch, const float *q,
                          const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                          int NH, float drop_p, uint64_t drop_seed) {
    attn_ctx a = {out, att, 0, 0, 0, scratch, q, k, v, 0, 0, mask, B, T, C, NH, drop_p, drop_seed};
    et_pool_run(pool, attn_fwd_task, &a, B * NH);
}

/* backward for one (b, h): dP = dout v^T (then dropout), dv += P'^T dout, dS = softmax' (dP),
 * dq += dS k * scale, dk += dS^T q * scale. Tasks own a (b,h) column block, so no races. */
static void attn_bwd_task(void *vctx, int task, int thread) {
    attn_ctx *a = vctx;
    int T = a->T, C = a->C, NH = a->NH, hd = C / NH;
    int b = task / NH, h = task % NH;
    float scale = 1.0f / sqrtf((float)hd);
    const float *P = a->attc + ((size_t)b * NH + h) * T * T;
    float *dS = a->scratch + (size_t)thread * T * T;
    float keep_scale = a->drop_p > 0 ? 1.0f / (1.0f - a->drop_p) : 1.0f;
    for (int i = 0; i < T; i++) {
        const float *doi = a->dout + ((size_t)b * T + i) * C + h * hd;
        const float *prow = P + (size_t)i * T;
        float *drow = dS + (size_t)i * T;
        for (int j = 0; j < T; j++) {
            const float *vj = a->v + ((size_t)b * T + j) * C + h * hd;
            float m = keep_scale;
            if (a->drop_p > 0) {
                uint64_t idx = (((uint64_t)b * NH + h) * T + i) * T + j;
                if (!et_dropout_keep(a->seed, idx, a->drop_p)) m = 0.0f;
            }
            drow[j] = et_dot(doi, vj, hd) * m; /* dL/dP (pre-dropout) */
            if (a->dv && m != 0.0f) et_axpy(a->dv + ((size_t)b * T + j) * C + h * hd, prow[j] * m, doi, hd);
        }
        float dot = 0;
        for (int j = 0; j < T; j++) dot += drow[j] * prow[j];
        for (int j = 0; j < T; j++) drow[j] = prow[j] * (drow[j] - dot) * scale;
    }
    for (int i = 0; i < T; i++) {
        const float *drow = dS + (size_t)i * T;
        float *dqi = a->dq ? a->dq + ((size_t)b * T + i) * C + h * hd : NULL;
        const float *qi = a->q + ((size_t)b * T + i) * C + h * hd;
        for (int j = 0; j < T; j++) {
            float g = drow[j];
            if (g == 0.0f) continue;
            if (dqi) et_axpy(dqi, g, a->k + ((size_t)b * T + j) * C + h * hd, hd);
            if (a->dk) et_axpy(a->dk + ((size_t)b * T + j) * C + h * hd, g, qi, hd);
        }
    }
}

void et_attention_backward(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                           const float *dout, const float *att, const float *q, const float *k,
                           const float *v, int B, int T, int C, int NH, float drop_p,
                           uint64_t drop_seed) {
    attn_ctx a = {0, 0, dq, dk, dv, scratch, q, k, v, dout, att, 0, B, T, C, NH, drop_p, drop_seed};
    et_pool_run(pool, attn_bwd_task, &a, B * NH);
}

const char *et_simd_name(void) { return "scalar"; }
