/* kernels/elementwise.c - GELU, LayerNorm, softmax, embeddings: row/range kernels split over the pool. */
#include "kernels.h"
#include "impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- elementwise */
#define ET_INV_SQRT2 0.70710678118654752440f
#define ET_INV_SQRT_2PI 0.39894228040143267794f

/* Row/range kernels are split into tasks of >= min_per_task elements (~16K: below that threads don't pay):
 * `used` threads (each with at least one task's worth), tasks a multiple of used (up to 4 each), so every
 * thread gets the same number of near-equal ranges. Returns the tasks; *used the threads to run them on. */
static int elem_split(int nt, int64_t work, int64_t min_per_task, int *used) {
    *used = 1;
    if (nt <= 1 || work < 2 * min_per_task) return 1;
    int64_t t = work / min_per_task;
    int u = t < nt ? (int)t : nt;
    int64_t k = t / u < 4 ? t / u : 4;
    *used = u;
    return (int)(k * u);
}
static int elem_tasks(et_pool *pool, int64_t work, int64_t min_per_task, int *used) {
    return elem_split(et_pool_size(pool), work, min_per_task, used);
}

typedef struct {
    float *out, *mean, *rstd, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout, *cmean, *crstd;
    int64_t n;
    int N, C, ntasks, used; /* used: threads the tasks run on (elem_split) */
    int cols;           /* layernorm backward: rows per chunk */
    float *part;        /* layernorm backward: [chunks, 2C] partial dw, db */
    float eps;
    const et_kern_isa *I;
    float *xhat;        /* layernorm *_xhat: the normalized input (forward writes, backward reads) */
} elem_ctx;

static void gelu_fwd_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t i0, i1;
    et_kern_range_of(e->n, e->ntasks, task, &i0, &i1);
    const float *x = e->inp;
    float *o = e->out;
    if (e->I->gelu_fwd) { e->I->gelu_fwd(o + i0, x + i0, i1 - i0); return; }
    for (int64_t i = i0; i < i1; i++) o[i] = 0.5f * x[i] * (1.0f + erff(x[i] * ET_INV_SQRT2));
}

void et_gelu_forward(et_pool *pool, float *out, const float *inp, int64_t n) {
    elem_ctx e = {0};
    e.I = et_kern_cur();
    e.out = out; e.inp = inp; e.n = n;
    e.ntasks = elem_tasks(pool, n, 16384, &e.used);
    et_pool_run_n(pool, gelu_fwd_task, &e, e.ntasks, e.used);
}

static void gelu_bwd_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t i0, i1;
    et_kern_range_of(e->n, e->ntasks, task, &i0, &i1);
    if (e->I->gelu_bwd) { e->I->gelu_bwd(e->dinp + i0, e->inp + i0, e->dout + i0, i1 - i0); return; }
    for (int64_t i = i0; i < i1; i++) {
        float x = e->inp[i];
        float cdf = 0.5f * (1.0f + erff(x * ET_INV_SQRT2));
        float pdf = ET_INV_SQRT_2PI * expf(-0.5f * x * x);
        e->dinp[i] += e->dout[i] * (cdf + x * pdf);
    }
}

void et_gelu_backward(et_pool *pool, float *dinp, const float *inp, const float *dout, int64_t n) {
    elem_ctx e = {0};
    e.I = et_kern_cur();
    e.dinp = dinp; e.inp = inp; e.dout = dout; e.n = n;
    e.ntasks = elem_tasks(pool, n, 16384, &e.used);
    et_pool_run_n(pool, gelu_bwd_task, &e, e.ntasks, e.used);
}

static void gelu_bwd_inplace_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t i0, i1;
    et_kern_range_of(e->n, e->ntasks, task, &i0, &i1);
    float tmp[256];
    for (int64_t c = i0; c < i1; c += 256) { /* d = 0 + tmp * gelu'(x), chunk by chunk */
        int64_t m = i1 - c < 256 ? i1 - c : 256;
        memcpy(tmp, e->dinp + c, sizeof(float) * (size_t)m);
        memset(e->dinp + c, 0, sizeof(float) * (size_t)m);
        if (e->I->gelu_bwd) { e->I->gelu_bwd(e->dinp + c, e->inp + c, tmp, m); continue; }
        for (int64_t i = 0; i < m; i++) {
            float x = e->inp[c + i];
            float cdf = 0.5f * (1.0f + erff(x * ET_INV_SQRT2));
            float pdf = ET_INV_SQRT_2PI * expf(-0.5f * x * x);
            e->dinp[c + i] += tmp[i] * (cdf + x * pdf);
        }
    }
}

void et_gelu_backward_inplace(et_pool *pool, float *d, const float *inp, int64_t n) {
    elem_ctx e = {0};
    e.I = et_kern_cur();
    e.dinp = d; e.inp = inp; e.n = n;
    e.ntasks = elem_tasks(pool, n, 16384, &e.used);
    et_pool_run_n(pool, gelu_bwd_inplace_task, &e, e.ntasks, e.used);
}

/* the portable path's statistics of one row: mean and 1 / sqrt(var + eps), accumulated in double */
static void ln_row_stats(const float *x, int C, float eps, float *mean, float *rstd) {
    double m = 0, v = 0;
    for (int i = 0; i < C; i++) m += x[i];
    m /= C;
    for (int i = 0; i < C; i++) { double d = x[i] - m; v += d * d; }
    v /= C;
    *rstd = (float)(1.0 / sqrt(v + eps));
    *mean = (float)m;
}

/* LayerNorm rows split over the pool: tasks of >= 8K elements, at most one per row (sets e->I, e->ntasks) */
int et_kern_ln_split(int nt, int N, int C, int *used) {
    int ntasks = elem_split(nt, (int64_t)N * C, 8192, used);
    if (ntasks > N) { /* rows wider than a task's minimum: one row per task */
        ntasks = N > 0 ? N : 1;
        *used = et_kern_equal_tasks(ntasks, *used);
    }
    return ntasks;
}
static void ln_tasks(et_pool *pool, elem_ctx *e) {
    e->I = et_kern_cur();
    e->ntasks = et_kern_ln_split(et_pool_size(pool), e->N, e->C, &e->used);
}

static void ln_run(et_pool *pool, et_task_fn fn, elem_ctx *e) {
    ln_tasks(pool, e);
    et_pool_run_n(pool, fn, e, e->ntasks, e->used);
}

static void ln_fwd_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t r0, r1;
    et_kern_range_of(e->N, e->ntasks, task, &r0, &r1);
    const int C = e->C;
    if (e->I->ln_fwd_row) {
        for (int64_t n = r0; n < r1; n++) {
            float mf, s;
            e->I->ln_fwd_row(e->out + (size_t)n * C, &mf, &s, e->inp + (size_t)n * C, e->w, e->b, C, e->eps);
            if (e->mean) e->mean[n] = mf;
            if (e->rstd) e->rstd[n] = s;
        }
        return;
    }
    for (int64_t n = r0; n < r1; n++) {
        const float *x = e->inp + (size_t)n * C;
        float *o = e->out + (size_t)n * C;
        float mf, s;
        ln_row_stats(x, C, e->eps, &mf, &s);
        for (int i = 0; i < C; i++) o[i] = (x[i] - mf) * s * e->w[i] + e->b[i];
        if (e->mean) e->mean[n] = mf;
        if (e->rstd) e->rstd[n] = s;
    }
}

void et_layernorm_forward(et_pool *pool, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps) {
    elem_ctx e = {0};
    e.out = out; e.mean = mean; e.rstd = rstd; e.inp = inp; e.w = w; e.b = b;
    e.N = N; e.C = C; e.eps = eps;
    ln_run(pool, ln_fwd_task, &e);
}

/* LayerNorm backward over rows [r0, r1), in order: dinp rows += ... (when e->dinp), dw += xhat * dy and
 * db += dy (either may be NULL) */
static void ln_bwd_rows_x(const elem_ctx *e, int64_t r0, int64_t r1, float *dw, float *db) {
    const int C = e->C;
    if (e->I->ln_bwd_row) {
        for (int64_t n = r0; n < r1; n++)
            e->I->ln_bwd_row(e->dinp ? e->dinp + (size_t)n * C : NULL, dw, db, e->dout + (size_t)n * C,
                             e->inp + (size_t)n * C, e->w, e->cmean[n], e->crstd[n], C);
        return;
    }
    for (int64_t n = r0; n < r1; n++) {
        const float *x = e->inp + (size_t)n * C, *dy = e->dout + (size_t)n * C;
        float m = e->cmean[n], s = e->crstd[n];
        float dnorm_mean = 0, dnorm_norm_mean = 0;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * s;
            float dn = e->w[i] * dy[i];
            dnorm_mean += dn;
            dnorm_norm_mean += dn * xh;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        float *di = e->dinp ? e->dinp + (size_t)n * C : NULL;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - m) * s;
            float dn = e->w[i] * dy[i];
            if (db) db[i] += dy[i];
            if (dw) dw[i] += xh * dy[i];
            if (di) di[i] += (dn - dnorm_mean - xh * dnorm_norm_mean) * s;
        }
    }
}

/* ---- LayerNorm keeping xhat = (x - mean) * rstd instead of x (training memory) ---- */
/* out = xhat * w + b: ONE function for the forward and for the recomputation, so the bits agree */
static void ln_affine_row(float *out, const float *xh, const float *w, const float *b, int C) {
    for (int i = 0; i < C; i++) out[i] = xh[i] * w[i] + b[i];
}

static void ln_fwd_xhat_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t r0, r1;
    et_kern_range_of(e->N, e->ntasks, task, &r0, &r1);
    const int C = e->C;
    for (int64_t n = r0; n < r1; n++) {
        const float *x = e->inp + (size_t)n * C;
        float *o = e->out + (size_t)n * C, *xh = e->xhat + (size_t)n * C;
        float mf, s;
        if (e->I->ln_fwd_row) { /* the path's statistics (its out row is overwritten below) */
            e->I->ln_fwd_row(o, &mf, &s, x, e->w, e->b, C, e->eps);
        } else {
            ln_row_stats(x, C, e->eps, &mf, &s);
        }
        for (int i = 0; i < C; i++) xh[i] = (x[i] - mf) * s;
        ln_affine_row(o, xh, e->w, e->b, C);
        if (e->rstd) e->rstd[n] = s;
    }
}

void et_layernorm_forward_xhat(et_pool *pool, float *out, float *xhat, float *rstd, const float *inp,
                               const float *w, const float *b, int N, int C, float eps) {
    elem_ctx e = {0};
    e.out = out; e.xhat = xhat; e.rstd = rstd; e.inp = inp; e.w = w; e.b = b;
    e.N = N; e.C = C; e.eps = eps;
    ln_run(pool, ln_fwd_xhat_task, &e);
}

static void ln_affine_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t r0, r1;
    et_kern_range_of(e->N, e->ntasks, task, &r0, &r1);
    for (int64_t n = r0; n < r1; n++)
        ln_affine_row(e->out + (size_t)n * e->C, e->inp + (size_t)n * e->C, e->w, e->b, e->C);
}

void et_layernorm_affine(et_pool *pool, float *out, const float *xhat, const float *w, const float *b, int N,
                         int C) {
    elem_ctx e = {0};
    e.out = out; e.inp = xhat; e.w = w; e.b = b; e.N = N; e.C = C;
    ln_run(pool, ln_affine_task, &e);
}

/* ln_bwd_rows_x from xhat (e->inp) and rstd */
static void ln_bwd_rows_xhat(const elem_ctx *e, int64_t r0, int64_t r1, float *dw, float *db) {
    const int C = e->C;
    for (int64_t n = r0; n < r1; n++) {
        const float *xh = e->inp + (size_t)n * C, *dy = e->dout + (size_t)n * C;
        float s = e->crstd[n];
        if (db) for (int i = 0; i < C; i++) db[i] += dy[i];
        if (dw) for (int i = 0; i < C; i++) dw[i] += xh[i] * dy[i];
        if (!e->dinp) continue;
        float a0[8] = {0}, a1[8] = {0}; /* 8 partial sums (vectorizable, fixed order) */
        int i = 0;
        for (; i + 8 <= C; i += 8)
            for (int l = 0; l < 8; l++) {
                float dn = e->w[i + l] * dy[i + l];
                a0[l] += dn;
                a1[l] += dn * xh[i + l];
            }
        for (; i < C; i++) {
            float dn = e->w[i] * dy[i];
            a0[0] += dn;
            a1[0] += dn * xh[i];
        }
        float dm = 0, dnm = 0;
        for (int l = 0; l < 8; l++) { dm += a0[l]; dnm += a1[l]; }
        dm /= C;
        dnm /= C;
        float *di = e->dinp + (size_t)n * C;
        for (i = 0; i < C; i++) di[i] += (e->w[i] * dy[i] - dm - xh[i] * dnm) * s;
    }
}

static void ln_bwd_rows(const elem_ctx *e, int64_t r0, int64_t r1, float *dw, float *db) {
    if (e->xhat) ln_bwd_rows_xhat(e, r0, r1, dw, db);
    else ln_bwd_rows_x(e, r0, r1, dw, db);
}

/* The weight/bias gradients are sums over all N rows. The rows are cut into at most ET_LN_CHUNKS
 * chunks by a rule of N alone; each chunk's sums go to its own partial (task = chunk, so not per
 * THREAD), and dw, db then add the partials in chunk order. The serial run does the same chunk by
 * chunk, so every thread count gives the same bits. */

static void ln_bwd_chunk_task(void *vctx, int task, int thread) {
    (void)thread;
    elem_ctx *e = vctx;
    int64_t r0 = (int64_t)task * e->cols, r1 = r0 + e->cols < e->N ? r0 + e->cols : e->N;
    if (!e->cols) et_kern_range_of(e->N, e->ntasks, task, &r0, &r1); /* dinp only: the forward's row ranges */
    float *p = e->part ? e->part + (size_t)task * 2 * e->C : NULL;
    if (p) memset(p, 0, sizeof(float) * 2 * (size_t)e->C);
    ln_bwd_rows(e, r0, r1, p && e->dw ? p : NULL, p && e->db ? p + e->C : NULL);
}

static void ln_add_partial(float *dw, float *db, const float *p, int C) {
    if (dw) for (int i = 0; i < C; i++) dw[i] += p[i];
    if (db) for (int i = 0; i < C; i++) db[i] += p[C + i];
}

static void layernorm_backward_any(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                                   const float *inp, const float *w, const float *mean, const float *rstd,
                                   int N, int C, int xhat_mode);

/* threads for the LayerNorm backward with dw/db: its ET_LN_CHUNKS row chunks (fixed by N alone) on the
 * fewest threads with the makespan of the pool (5 threads would wait on one that takes a 4th chunk); 1 =
 * serial (too small) */
int et_kern_ln_bwd_threads(int nt, int N, int C) {
    int used;
    if (N <= 0 || C <= 0 || elem_split(nt, (int64_t)N * C, 8192, &used) <= 1) return 1;
    int cols = (N + ET_LN_CHUNKS - 1) / ET_LN_CHUNKS, nch = (N + cols - 1) / cols;
    return et_kern_equal_tasks(nch, nt);
}

void et_layernorm_backward_xhat(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                                const float *xhat, const float *w, const float *rstd, int N, int C) {
    layernorm_backward_any(pool, dinp, dw, db, dout, xhat, w, NULL, rstd, N, C, 1);
}

void et_layernorm_backward(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean, const float *rstd,
                           int N, int C) {
    layernorm_backward_any(pool, dinp, dw, db, dout, inp, w, mean, rstd, N, C, 0);
}

static void layernorm_backward_any(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                                   const float *inp, const float *w, const float *mean, const float *rstd,
                                   int N, int C, int xhat_mode) {
    if (N <= 0 || C <= 0) return;
    elem_ctx e = {0};
    e.dinp = dinp; e.dw = dw; e.db = db; e.dout = dout; e.inp = inp; e.w = w;
    e.cmean = mean; e.crstd = rstd; e.N = N; e.C = C;
    e.xhat = xhat_mode ? (float *)inp : NULL;
    e.I = et_kern_cur();
    if (!dw && !db) { /* dinp only: rows split over the pool */
        ln_tasks(pool, &e);
        e.cols = 0;
        et_pool_run_n(pool, ln_bwd_chunk_task, &e, e.ntasks, e.used);
        return;
    }
    e.cols = (N + ET_LN_CHUNKS - 1) / ET_LN_CHUNKS; /* rows per chunk */
    int nch = (N + e.cols - 1) / e.cols;
    int par = et_kern_ln_bwd_threads(et_pool_size(pool), N, C);
    if (par > 1)
        e.part = et_pool_scratch(pool, 0, sizeof(float) * 2 * (size_t)C * nch); /* reserved: no allocation */
    if (e.part) {
        et_pool_run_n(pool, ln_bwd_chunk_task, &e, nch, par);
        for (int k = 0; k < nch; k++) ln_add_partial(dw, db, e.part + (size_t)k * 2 * C, C);
        return;
    }
    /* serial (small, or no pool scratch): the same chunks one after the other through one partial */
    float p[2 * C];
    for (int k = 0; k < nch; k++) {
        int64_t r0 = (int64_t)k * e.cols, r1 = r0 + e.cols < N ? r0 + e.cols : N;
        memset(p, 0, sizeof p);
        ln_bwd_rows(&e, r0, r1, dw ? p : NULL, db ? p + C : NULL);
        ln_add_partial(dw, db, p, C);
    }
}

/* x[i] = exp(x[i] - sub), returns the sum: the path's vector exp when it has one */
float et_kern_expsum(const et_kern_isa *I, float *x, int64_t n, float sub) {
    if (I->expsum) return I->expsum(x, n, sub);
    float sum = 0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - sub); sum += x[i]; }
    return sum;
}

float et_kern_rowmax(const et_kern_isa *I, const float *x, int64_t n) {
    if (I->maxv) return I->maxv(x, n);
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) if (x[i] > mx) mx = x[i];
    return mx;
}

void et_kern_rowscale(const et_kern_isa *I, float *x, float s, int64_t n) {
    if (I->scale) { I->scale(x, s, n); return; }
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

void et_softmax_rows(float *x, int N, int C) {
    const et_kern_isa *I = et_kern_cur();
    for (int n = 0; n < N; n++) {
        float *r = x + (size_t)n * C;
        float mx = et_kern_rowmax(I, r, C);
        float sum = et_kern_expsum(I, r, C, mx);
        et_kern_rowscale(I, r, 1.0f / sum, C);
    }
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

void et_embedding_forward_packed(et_pool *pool, float *out, const int32_t *ids, const int32_t *type_ids,
                                 const float *wte, const float *wpe, const float *wtt, const int32_t *off, int B,
                                 int C) {
    (void)pool;
    for (int b = 0; b < B; b++)
        for (int r = off[b]; r < off[b + 1]; r++) {
            const float *e = wte + (size_t)ids[r] * C, *p = wpe + (size_t)(r - off[b]) * C;
            const float *y = wtt + (size_t)(type_ids ? type_ids[r] : 0) * C;
            float *o = out + (size_t)r * C;
            for (int i = 0; i < C; i++) o[i] = (e[i] + y[i]) + p[i];
        }
}

void et_embedding_backward_packed(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                                  const int32_t *type_ids, const int32_t *off, int B, int C) {
    for (int b = 0; b < B; b++)
        for (int r = off[b]; r < off[b + 1]; r++) {
            const float *d = dout + (size_t)r * C;
            if (dwte) et_axpy(dwte + (size_t)ids[r] * C, 1.0f, d, C);
            if (dwpe) et_axpy(dwpe + (size_t)(r - off[b]) * C, 1.0f, d, C);
            if (dwtt) et_axpy(dwtt + (size_t)(type_ids ? type_ids[r] : 0) * C, 1.0f, d, C);
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

