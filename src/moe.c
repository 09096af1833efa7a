/* moe.c - see moe.h. Forward/backward of the MoE up-projection, llm.c style (the model-level helpers are in bert.c). */
#include "moe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* multiplicative router jitter for element i: 1 + eps * (2u - 1), u in [0,1) (counter-based) */
static inline float jit(uint64_t seed, size_t i, float eps) {
    uint64_t h = et_hash64(seed ^ et_hash64((uint64_t)i));
    float u = (float)(h >> 40) * (1.0f / 16777216.0f);
    return 1.0f + eps * (2.0f * u - 1.0f);
}

/* ---------------------------------------------------------------- row gather / scatter (pooled) */
enum { ROWS_GATHER = 0, ROWS_SCATTER = 1, ROWS_SCATTER_ADD = 2, ROWS_SCALE = 3 };
typedef struct {
    float *dst; const float *src; const int32_t *perm;
    const float *probs; const int32_t *idx; int E; /* scale of token t = probs[t*E + idx[t]] (NULL = 1) */
    int n, w, mode, chunk;
} rows_ctx;

static void rows_task(void *vctx, int task, int thread) {
    (void)thread;
    const rows_ctx *r = vctx;
    int k0 = task * r->chunk, k1 = k0 + r->chunk < r->n ? k0 + r->chunk : r->n;
    size_t w = (size_t)r->w;
    for (int k = k0; k < k1; k++) {
        int t = r->perm ? r->perm[k] : k;
        float s = r->probs ? r->probs[(size_t)t * r->E + r->idx[t]] : 1.0f;
        switch (r->mode) {
        case ROWS_GATHER: memcpy(r->dst + (size_t)k * w, r->src + (size_t)t * w, w * sizeof(float)); break;
        case ROWS_SCATTER: {
            float *d = r->dst + (size_t)t * w; const float *x = r->src + (size_t)k * w;
            if (r->probs) for (size_t i = 0; i < w; i++) d[i] = x[i] * s;
            else memcpy(d, x, w * sizeof(float));
            break;
        }
        case ROWS_SCATTER_ADD: et_axpy(r->dst + (size_t)t * w, 1.0f, r->src + (size_t)k * w, (int64_t)w); break;
        case ROWS_SCALE: { float *d = r->dst + (size_t)t * w; for (size_t i = 0; i < w; i++) d[i] *= s; break; }
        }
    }
}

static void rows(et_pool *pool, int mode, float *dst, const float *src, const int32_t *perm, const float *probs,
                 const int32_t *idx, int E, int n, int w) {
    if (n <= 0) return;
    int nt = et_pool_size(pool);
    int chunk = nt > 1 ? (n + 4 * nt - 1) / (4 * nt) : n;
    if (chunk < 8) chunk = 8;
    rows_ctx r = {dst, src, perm, probs, idx, E, n, w, mode, chunk};
    et_pool_run(pool, rows_task, &r, (n + chunk - 1) / chunk);
}

/* ---------------------------------------------------------------- forward */
void et_moe_forward(et_pool *pool, float *out, float *tmp, const float *x, const float *gate, const float *W,
                    const float *b, int N, int C, int I, int E, int gate_scale, et_moe_acts *a,
                    uint64_t jitter_seed) {
    float eps = a->jitter;
    /* router: probs[N,E] = softmax(W_g (x * jitter)); top-1 */
    for (int t = 0; t < N; t++) {
        const float *xr = x + (size_t)t * C;
        if (eps > 0) {
            float *j = a->xs + (size_t)t * C;
            for (int c = 0; c < C; c++) j[c] = xr[c] * jit(jitter_seed, (size_t)t * C + c, eps);
            xr = j;
        }
        float *pr = a->probs + (size_t)t * E;
        int best = 0;
        for (int e = 0; e < E; e++) {
            pr[e] = et_dot(xr, gate + (size_t)e * C, C);
            if (pr[e] > pr[best]) best = e;
        }
        float mx = pr[best], sum = 0;
        for (int e = 0; e < E; e++) { pr[e] = expf(pr[e] - mx); sum += pr[e]; }
        for (int e = 0; e < E; e++) pr[e] /= sum;
        a->idx[t] = best;
    }
    /* group tokens per expert (stable counting sort); statistics over real tokens */
    int off[ET_MOE_MAX_EXPERTS + 1] = {0}, pos[ET_MOE_MAX_EXPERTS];
    double P[ET_MOE_MAX_EXPERTS] = {0};
    int nreal = 0;
    for (int e = 0; e < E; e++) a->counts[e] = 0;
    for (int t = 0; t < N; t++) {
        off[a->idx[t] + 1]++;
        if (!a->mask || a->mask[t]) {
            a->counts[a->idx[t]]++;
            nreal++;
            for (int e = 0; e < E; e++) P[e] += a->probs[(size_t)t * E + e];
        }
    }
    double aux = 0;
    for (int e = 0; e < E; e++) aux += nreal ? (double)a->counts[e] / nreal * (P[e] / nreal) : 0.0;
    a->aux[0] = (float)(E * aux);
    for (int e = 0; e < E; e++) { off[e + 1] += off[e]; pos[e] = off[e]; }
    for (int t = 0; t < N; t++) a->perm[pos[a->idx[t]]++] = t;
    /* gather -> one GEMM per expert -> scatter (scaled by p) */
    rows(pool, ROWS_GATHER, a->xs, x, a->perm, NULL, NULL, E, N, C);
    for (int e = 0; e < E; e++) {
        int n = off[e + 1] - off[e];
        if (n > 0)
            et_linear_forward(pool, tmp + (size_t)off[e] * I, a->xs + (size_t)off[e] * C, W + (size_t)e * I * C,
                              b + (size_t)e * I, n, C, I);
    }
    /* Switch scales the expert output by p; unscaled and straight-through (ste) modes do not */
    rows(pool, ROWS_SCATTER, out, tmp, a->perm, gate_scale == ET_MOE_GATE_SWITCH ? a->probs : NULL, a->idx, E, N, I);
}

/* ---------------------------------------------------------------- backward */
void et_moe_backward(et_pool *pool, float *dx, float *dgate, float *dW, float *db, float *dout, float *tmp,
                     const float *x, const float *out, const float *gate, const float *W, const float *b,
                     int N, int C, int I, int E, int gate_scale, const et_moe_acts *a, uint64_t jitter_seed) {
    (void)b;
    float eps = a->jitter;
    int router = (gate_scale || a->aux_grad != 0.0f) && (dgate || dx);
    if (router) {
        float *dl = a->dlogits;
        memset(dl, 0, sizeof(float) * (size_t)N * E);
        if (gate_scale == ET_MOE_GATE_SWITCH) { /* h = p y: dL/dp = dout . y = dout . out / p ; dp/dlogit_e = p (onehot - probs_e) */
            for (int t = 0; t < N; t++) {
                const float *pr = a->probs + (size_t)t * E;
                int k = a->idx[t];
                float p = pr[k];
                double dp = 0;
                const float *d = dout + (size_t)t * I, *o = out + (size_t)t * I;
                for (int i = 0; i < I; i++) dp += (double)d[i] * o[i];
                dp /= p;
                for (int e = 0; e < E; e++) dl[(size_t)t * E + e] += (float)(dp * p * ((e == k) - pr[e]));
            }
        } else if (gate_scale == ET_MOE_GATE_STE) {
            /* Straight-through gate. The forward computes h = (p / sg(p)) * y with y = Expert_k(x) and
             * sg = stop-gradient, so h = y exactly (out = y: identical to the unscaled / dense model).
             * Backward differentiates the numerator only:
             *     dL/dy = dout * (p / sg(p)) = dout                     (experts: as unscaled routing)
             *     dL/dp = <dout, y> / sg(p) = <dout, out> / p
             *     dp/dlogit_e = p (onehot_e(k) - probs_e)               (softmax Jacobian, row k)
             *  => dL/dlogit_e = <dout, out> (onehot_e(k) - probs_e)
             * i.e. the Switch router gradient at the same upstream dout divided by p (Switch has
             * dL/dlogit_e = <dout, y> p (onehot - probs)); the router learns as in Switch while the
             * forward is the unscaled one. */
            for (int t = 0; t < N; t++) {
                const float *pr = a->probs + (size_t)t * E;
                int k = a->idx[t];
                double dp = 0;
                const float *d = dout + (size_t)t * I, *o = out + (size_t)t * I;
                for (int i = 0; i < I; i++) dp += (double)d[i] * o[i];
                for (int e = 0; e < E; e++) dl[(size_t)t * E + e] += (float)(dp * ((e == k) - pr[e]));
            }
        }
        int nreal = 0;
        for (int e = 0; e < E; e++) nreal += a->counts[e];
        if (a->aux_grad != 0.0f && nreal > 0) { /* d(E sum f_e P_e)/dprobs[t,e] = E f_e / nreal (real t) */
            double g[ET_MOE_MAX_EXPERTS];
            for (int e = 0; e < E; e++) g[e] = (double)a->aux_grad * E * ((double)a->counts[e] / nreal) / nreal;
            for (int t = 0; t < N; t++) {
                if (a->mask && !a->mask[t]) continue;
                const float *pr = a->probs + (size_t)t * E;
                double s = 0;
                for (int e = 0; e < E; e++) s += pr[e] * g[e];
                for (int e = 0; e < E; e++) dl[(size_t)t * E + e] += (float)(pr[e] * (g[e] - s));
            }
        }
        /* logits = xr W_g^T, xr = x * jitter */
        const float *xr = x;
        if (eps > 0) {
            for (size_t i = 0; i < (size_t)N * C; i++) a->xs[i] = x[i] * jit(jitter_seed, i, eps);
            xr = a->xs;
        }
        if (dgate) et_sgemm(pool, 1, 0, E, C, N, 1.0f, dl, E, xr, C, 1.0f, dgate, C);
        if (dx) {
            et_sgemm(pool, 0, 0, N, C, E, 1.0f, dl, E, gate, C, 0.0f, a->dxs, C);
            if (eps > 0)
                for (size_t i = 0; i < (size_t)N * C; i++) dx[i] += a->dxs[i] * jit(jitter_seed, i, eps);
            else
                et_axpy(dx, 1.0f, a->dxs, (int64_t)N * C);
        }
    }
    if (!dx && !dW && !db) return;
    /* experts: dy = dout * p (gate_scale), grouped like the forward */
    int off[ET_MOE_MAX_EXPERTS + 1] = {0};
    for (int t = 0; t < N; t++) off[a->idx[t] + 1]++;
    for (int e = 0; e < E; e++) off[e + 1] += off[e];
    /* a->perm still holds the grouping of this layer's forward only if no other layer ran since;
     * rebuild it from idx (cheap) */
    {
        int pos[ET_MOE_MAX_EXPERTS];
        for (int e = 0; e < E; e++) pos[e] = off[e];
        for (int t = 0; t < N; t++) a->perm[pos[a->idx[t]]++] = t;
    }
    if (gate_scale == ET_MOE_GATE_SWITCH) rows(pool, ROWS_SCALE, dout, NULL, NULL, a->probs, a->idx, E, N, I);
    rows(pool, ROWS_GATHER, tmp, dout, a->perm, NULL, NULL, E, N, I);
    rows(pool, ROWS_GATHER, a->xs, x, a->perm, NULL, NULL, E, N, C);
    if (dx) memset(a->dxs, 0, sizeof(float) * (size_t)N * C);
    for (int e = 0; e < E; e++) {
        int n = off[e + 1] - off[e];
        if (n <= 0) continue;
        et_linear_backward(pool, dx ? a->dxs + (size_t)off[e] * C : NULL, dW ? dW + (size_t)e * I * C : NULL,
                           db ? db + (size_t)e * I : NULL, tmp + (size_t)off[e] * I, a->xs + (size_t)off[e] * C,
                           W + (size_t)e * I * C, n, C, I);
    }
    if (dx) rows(pool, ROWS_SCATTER_ADD, dx, a->dxs, a->perm, NULL, NULL, E, N, C);
}

/* ---------------------------------------------------------------- gate modes */
static const char *gate_names[] = {"unscaled", "switch", "ste"};

et_status et_moe_gate_parse(const char *s, int *mode, et_error *err) {
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, gate_names[i])) { *mode = i; return ET_OK; }
    return et_fail(err, ET_ERR_ARG, "unknown MoE gate mode '%s' (switch, unscaled, ste)", s ? s : "(null)");
}

const char *et_moe_gate_name(int mode) { return mode >= 0 && mode < 3 ? gate_names[mode] : "?"; }
