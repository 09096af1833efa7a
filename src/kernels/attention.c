/* kernels/attention.c - multi-head attention forward/backward (padded and packed batches), one task per
 * (sequence, head), the T x T products on the GEMM micro-kernels. */
#include "kernels.h"
#include "impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- attention
 * One task per (b, h). The T x T products run on the GEMM micro-kernels (serial gemm_run). Every
 * buffer a task needs is in the caller's scratch (et_attention_scratch_floats per thread): nothing
 * is allocated, so there is no fallback that could change the result. */
typedef struct {
    float *out, *att, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *attc;
    const int32_t *mask;
    int B, T, C, NH;
    float drop_p;
    uint64_t seed;
    const et_kern_isa *I;
    size_t ws_bfl, ws_afl; /* gemm workspace parts (floats) */
    size_t tt;        /* T*T rounded up to 16 floats */
    size_t sf;        /* scratch floats per thread (et_attention_scratch_floats) */
    float *rs;        /* forward: [B,NH,T,2] row max and 1/sum of the softmax (NULL = not wanted) */
    const float *rsc; /* backward: those row stats; P is recomputed from q, k (then attc is NULL) */
    const int32_t *off; /* packed batches: [B+1] sequence b is rows [off[b], off[b+1]); T is then the
                           longest; NULL = padded [B,T] */
} attn_ctx;

/* where (b, h) lives: its length T, first row, first row-stats row, and the dropout counter of
 * element (i, j) = (d0 + i * dstride) * dT + j. Padded: exactly the indices of [B,NH,T,T]. Packed: rows
 * of the concatenation, row stats [N,NH,2] with head h of sequence b at off[b]*NH + h*T, dropout
 * counters ((off[b] + i) * NH + h) * T_longest + j. */
typedef struct { int T; size_t row0, rs0; uint64_t d0, dstride, dT; } attn_seq;

static attn_seq attn_seq_of(const attn_ctx *a, int b, int h) {
    attn_seq s;
    if (!a->off) {
        s.T = a->T;
        s.row0 = (size_t)b * a->T;
        s.rs0 = ((size_t)b * a->NH + h) * a->T;
        s.d0 = s.rs0; s.dstride = 1; s.dT = (uint64_t)a->T;
    } else {
        s.T = a->off[b + 1] - a->off[b];
        s.row0 = (size_t)a->off[b];
        s.rs0 = (size_t)a->off[b] * a->NH + (size_t)h * s.T;
        s.d0 = (uint64_t)a->off[b] * a->NH + h; s.dstride = (uint64_t)a->NH; s.dT = (uint64_t)a->T;
    }
    return s;
}

/* Per thread, 64-byte aligned inside a slot of sf floats: [tt] probabilities (forward without att) or
 * dS (backward) | gemm workspace (bfl + afl) for the path in use | [tt] dropped-out probabilities |
 * [tt] recomputed probabilities (backward from row stats). Sized for the largest path's gemm
 * workspace of any build (et_kern_gemm_ws_max), so a path forced after the caller sized its buffer still fits
 * and the plan is the same on every CPU and in wasm32. */
static size_t attn_slot_floats(int T, int C, int NH, size_t *tt) {
    int hd = NH > 0 ? C / NH : 0, mx = T > hd ? T : hd;
    size_t bfl, afl;
    et_kern_gemm_ws_max(mx, mx, &bfl, &afl); /* any path of any build: one figure on every CPU and target */
    size_t ws = bfl + afl;
    *tt = et_kern_round_up((size_t)T * T, 16);
    return 3 * *tt + ws + 16; /* + 16: room to align the slot to 64 bytes */
}

size_t et_attention_scratch_floats(int T, int C, int NH) {
    if (T <= 0 || C <= 0 || NH <= 0) return 0;
    size_t tt;
    return attn_slot_floats(T, C, NH, &tt);
}

/* this thread's slot: [tt] P / dS, then the gemm workspace */
static float *attn_slot(const attn_ctx *a, int thread) {
    uintptr_t p = (uintptr_t)(a->scratch + (size_t)thread * a->sf);
    return (float *)((p + 63) & ~(uintptr_t)63);
}

static void attn_setup(attn_ctx *a) {
    int mx = a->T > a->C / a->NH ? a->T : a->C / a->NH;
    et_kern_gemm_ws_sizes(a->I, mx, mx, &a->ws_bfl, &a->ws_afl);
    a->sf = attn_slot_floats(a->T, a->C, a->NH, &a->tt);
}

/* serial C = alpha op(A) op(B) + beta C for one head, using the path's micro-kernels */
static void head_gemm(const attn_ctx *a, float *ws, int ta, int tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    float *Aws[1] = {ws + a->ws_bfl};
    et_kern_gemm_run(a->I, NULL, 1, ws, Aws, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL, 0);
}

static void attn_fwd_task(void *vctx, int task, int thread) {
    attn_ctx *a = vctx;
    int C = a->C, NH = a->NH, hd = C / NH;
    int b = task / NH, h = task % NH;
    const attn_seq sq = attn_seq_of(a, b, h);
    const int T = sq.T;
    if (T <= 0) return;
    float scale = 1.0f / sqrtf((float)hd);
    float *slot = attn_slot(a, thread), *ws = slot + a->tt;
    float *P = a->att ? a->att + ((size_t)b * NH + h) * T * T : slot;
    const float *qh = a->q + sq.row0 * C + h * hd, *kh = a->k + sq.row0 * C + h * hd;
    const float *vh = a->v + sq.row0 * C + h * hd;
    float *oh = a->out + sq.row0 * C + h * hd;
    float *Pd = ws + a->ws_bfl + a->ws_afl; /* dropped-out probabilities [T, T] */
    /* S[T,T] = scale * q_h k_h^T */
    head_gemm(a, ws, 0, 1, T, T, hd, scale, qh, C, kh, C, 0.0f, P, T);
    const int32_t *mk = a->mask ? a->mask + (size_t)b * T : NULL;
    if (mk) { /* a full mask needs no masking pass */
        int j = 0;
        while (j < T && mk[j]) j++;
        if (j == T) mk = NULL;
    }
    for (int i = 0; i < T; i++) {
        float *row = P + (size_t)i * T;
        if (mk) for (int j = 0; j < T; j++) if (!mk[j]) row[j] = -INFINITY;
        float mx = et_kern_rowmax(a->I, row, T);
        if (mx == -INFINITY) { /* every key masked: HF gives a uniform distribution */
            for (int j = 0; j < T; j++) row[j] = 1.0f / T;
            if (a->rs) {
                float *r = a->rs + ((sq.rs0 + i) << 1);
                r[0] = -INFINITY;
                r[1] = 0.0f;
            }
        } else {
            float inv = 1.0f / et_kern_expsum(a->I, row, T, mx);
            et_kern_rowscale(a->I, row, inv, T);
            if (a->rs) {
                float *r = a->rs + ((sq.rs0 + i) << 1);
                r[0] = mx;
                r[1] = inv;
            }
        }
        if (a->drop_p > 0) {
            float ks = 1.0f / (1.0f - a->drop_p);
            uint64_t base = (sq.d0 + (uint64_t)i * sq.dstride) * sq.dT;
            for (int j = 0; j < T; j++)
                Pd[(size_t)i * T + j] = et_dropout_keep(a->seed, base + j, a->drop_p) ? row[j] * ks : 0.0f;
        }
    }
    /* out_h[T,hd] = P' v_h */
    head_gemm(a, ws, 0, 0, T, hd, T, 1.0f, a->drop_p > 0 ? Pd : P, T, vh, C, 0.0f, oh, C);
}

static void attention_forward(et_pool *pool, float *out, float *att, float *rs, float *scratch, const float *q,
                              const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                              int NH, float drop_p, uint64_t drop_seed) {
    if (B <= 0 || T <= 0 || NH <= 0 || C <= 0) return;
    attn_ctx a = {.out = out, .att = att, .scratch = scratch, .q = q, .k = k, .v = v, .mask = mask, .B = B, .T = T,
                  .C = C, .NH = NH, .drop_p = drop_p, .seed = drop_seed, .I = et_kern_cur(), .rs = rs};
    attn_setup(&a);
    et_pool_run_n(pool, attn_fwd_task, &a, B * NH, et_kern_equal_tasks(B * NH, et_pool_size(pool)));
}

void et_attention_forward(et_pool *pool, float *out, float *att, float *scratch, const float *q,
                          const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                          int NH, float drop_p, uint64_t drop_seed) {
    attention_forward(pool, out, att, NULL, scratch, q, k, v, mask, B, T, C, NH, drop_p, drop_seed);
}

void et_attention_forward_rs(et_pool *pool, float *out, float *rowstats, float *scratch, const float *q,
                             const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                             int NH, float drop_p, uint64_t drop_seed) {
    attention_forward(pool, out, NULL, rowstats, scratch, q, k, v, mask, B, T, C, NH, drop_p, drop_seed);
}

/* backward for one (b, h), with m = dropout multiplier (0 or 1/(1-p)) and P' = P * m:
 * dP = (dout v^T) * m, dv += P'^T dout, dS = P * (dP - rowsum(dP * P)) * scale,
 * dq += dS k, dk += dS^T q. Tasks own a (b,h) column block, so no races. */
/* P[T,T] of (b, h) again, exactly as attn_fwd_task made it: S = scale q k^T (same GEMM), masked keys
 * -inf, then exp(S - max) * (1/sum) with the forward's row stats a->rsc */
static const float *recompute_probs(const attn_ctx *a, const attn_seq *sq, float *ws, float *P, int b, int h) {
    int T = sq->T, C = a->C, NH = a->NH, hd = C / NH;
    float scale = 1.0f / sqrtf((float)hd);
    const float *qh = a->q + sq->row0 * C + h * hd, *kh = a->k + sq->row0 * C + h * hd;
    head_gemm(a, ws, 0, 1, T, T, hd, scale, qh, C, kh, C, 0.0f, P, T);
    const int32_t *mk = a->mask && !a->off ? a->mask + (size_t)b * T : NULL;
    for (int i = 0; i < T; i++) {
        float *row = P + (size_t)i * T;
        const float *r = a->rsc + ((sq->rs0 + i) << 1);
        if (r[0] == -INFINITY) {
            for (int j = 0; j < T; j++) row[j] = 1.0f / T;
            continue;
        }
        if (mk) for (int j = 0; j < T; j++) if (!mk[j]) row[j] = -INFINITY;
        et_kern_expsum(a->I, row, T, r[0]);
        et_kern_rowscale(a->I, row, r[1], T);
    }
    return P;
}

static void attn_bwd_task(void *vctx, int task, int thread) {
    attn_ctx *a = vctx;
    int C = a->C, NH = a->NH, hd = C / NH;
    int b = task / NH, h = task % NH;
    const attn_seq sq = attn_seq_of(a, b, h);
    const int T = sq.T;
    if (T <= 0) return;
    float scale = 1.0f / sqrtf((float)hd);
    float *dS = attn_slot(a, thread), *ws = dS + a->tt;
    size_t off = sq.row0 * C + h * hd;
    float *Pd = ws + a->ws_bfl + a->ws_afl;
    const float *P = a->rsc ? recompute_probs(a, &sq, ws, Pd + a->tt, b, h)
                            : a->attc + ((size_t)b * NH + h) * T * T;
    /* dP[T,T] = dout_h v_h^T */
    head_gemm(a, ws, 0, 1, T, T, hd, 1.0f, a->dout + off, C, a->v + off, C, 0.0f, dS, T);
    float keep_scale = a->drop_p > 0 ? 1.0f / (1.0f - a->drop_p) : 1.0f;
    for (int i = 0; i < T; i++) {
        float *drow = dS + (size_t)i * T;
        const float *prow = P + (size_t)i * T;
        if (a->drop_p > 0) {
            uint64_t base = (sq.d0 + (uint64_t)i * sq.dstride) * sq.dT;
            for (int j = 0; j < T; j++) {
                float m = et_dropout_keep(a->seed, base + j, a->drop_p) ? keep_scale : 0.0f;
                drow[j] *= m;
                Pd[(size_t)i * T + j] = prow[j] * m;
            }
        }
    }
    /* dv_h[T,hd] += P'^T dout_h */
    if (a->dv)
        head_gemm(a, ws, 1, 0, T, hd, T, 1.0f, a->drop_p > 0 ? Pd : P, T, a->dout + off, C, 1.0f, a->dv + off, C);
    for (int i = 0; i < T; i++) {
        float *drow = dS + (size_t)i * T;
        const float *prow = P + (size_t)i * T;
        float dot = 0;
        for (int j = 0; j < T; j++) dot += drow[j] * prow[j];
        for (int j = 0; j < T; j++) drow[j] = prow[j] * (drow[j] - dot) * scale;
    }
    if (a->dq) head_gemm(a, ws, 0, 0, T, hd, T, 1.0f, dS, T, a->k + off, C, 1.0f, a->dq + off, C);
    if (a->dk) head_gemm(a, ws, 1, 0, T, hd, T, 1.0f, dS, T, a->q + off, C, 1.0f, a->dk + off, C);
}

static void attention_backward(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                               const float *dout, const float *att, const float *rs, const int32_t *mask,
                               const float *q, const float *k, const float *v, int B, int T, int C, int NH,
                               float drop_p, uint64_t drop_seed) {
    if (B <= 0 || T <= 0 || NH <= 0 || C <= 0) return;
    attn_ctx a = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .q = q, .k = k, .v = v, .dout = dout, .attc = att,
                  .mask = mask, .B = B, .T = T, .C = C, .NH = NH, .drop_p = drop_p, .seed = drop_seed, .I = et_kern_cur(),
                  .rsc = rs};
    attn_setup(&a);
    et_pool_run_n(pool, attn_bwd_task, &a, B * NH, et_kern_equal_tasks(B * NH, et_pool_size(pool)));
}

/* packed batches (kernels.h): one task per (sequence, head), the same per-head code as the padded kernels */
void et_attention_forward_packed(et_pool *pool, float *out, float *rowstats, float *scratch, const float *q,
                                 const float *k, const float *v, const int32_t *off, int B, int Tmax, int C,
                                 int NH, float drop_p, uint64_t drop_seed) {
    if (B <= 0 || Tmax <= 0 || NH <= 0 || C <= 0) return;
    attn_ctx a = {.out = out, .scratch = scratch, .q = q, .k = k, .v = v, .B = B, .T = Tmax, .C = C, .NH = NH,
                  .drop_p = drop_p, .seed = drop_seed, .I = et_kern_cur(), .rs = rowstats, .off = off};
    attn_setup(&a);
    et_pool_run_n(pool, attn_fwd_task, &a, B * NH, et_kern_equal_tasks(B * NH, et_pool_size(pool)));
}

void et_attention_backward_packed(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                                  const float *dout, const float *rowstats, const float *q, const float *k,
                                  const float *v, const int32_t *off, int B, int Tmax, int C, int NH, float drop_p,
                                  uint64_t drop_seed) {
    if (B <= 0 || Tmax <= 0 || NH <= 0 || C <= 0) return;
    attn_ctx a = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .q = q, .k = k, .v = v, .dout = dout, .B = B,
                  .T = Tmax, .C = C, .NH = NH, .drop_p = drop_p, .seed = drop_seed, .I = et_kern_cur(), .rsc = rowstats,
                  .off = off};
    attn_setup(&a);
    et_pool_run_n(pool, attn_bwd_task, &a, B * NH, et_kern_equal_tasks(B * NH, et_pool_size(pool)));
}

void et_attention_backward(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                           const float *dout, const float *att, const float *q, const float *k,
                           const float *v, int B, int T, int C, int NH, float drop_p,
                           uint64_t drop_seed) {
    attention_backward(pool, dq, dk, dv, scratch, dout, att, NULL, NULL, q, k, v, B, T, C, NH, drop_p, drop_seed);
}

void et_attention_backward_rs(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                              const float *dout, const float *rowstats, const int32_t *mask, const float *q,
                              const float *k, const float *v, int B, int T, int C, int NH, float drop_p,
                              uint64_t drop_seed) {
    attention_backward(pool, dq, dk, dv, scratch, dout, NULL, rowstats, mask, q, k, v, B, T, C, NH, drop_p,
                       drop_seed);
}

