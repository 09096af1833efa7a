/* kernels/int8.c - int8 Linear layers (kernels_int8.h): quantization, packing, the threaded driver, the portable
 * scalar path (the reference) and the WebAssembly SIMD128 path (i32x4.dot_i16x8_s). The AVX512-VNNI
 * path is in int8_avx512.c. */
#include "kernels_int8.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "impl.h"
#include "int8_impl.h"
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

#define PANEL 16

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

void et_q8_free(et_q8_matrix *q) {
    if (!q) return;
    free(q->w);
    free(q->scale);
    free(q->colsum);
    memset(q, 0, sizeof *q);
}

static et_status q8_alloc(et_q8_matrix *q, int OC, int IC, et_error *err) {
    memset(q, 0, sizeof *q);
    if (OC <= 0 || IC <= 0) return et_fail(err, ET_ERR_ARG, "int8: matrix shape [%d, %d] must be positive", OC, IC);
    q->OC = OC; q->IC = IC;
    q->ICp = round_up(IC, 4); q->OCp = round_up(OC, PANEL);
    size_t nw = (size_t)q->OCp * q->ICp;
    void *p = NULL;
    if (posix_memalign(&p, 64, nw ? nw : 64) != 0) p = NULL;
    q->w = p;
    q->scale = calloc((size_t)q->OCp, sizeof *q->scale);
    q->colsum = calloc((size_t)q->OCp, sizeof *q->colsum);
    if (!q->w || !q->scale || !q->colsum) {
        et_q8_free(q);
        return et_fail(err, ET_ERR_NOMEM, "int8: out of memory for a [%d, %d] matrix", OC, IC);
    }
    memset(q->w, 0, nw);
    return ET_OK;
}

/* packed position of code (o, k) */
static size_t q8_at(const et_q8_matrix *q, int o, int k) {
    return (size_t)(o / PANEL) * q->ICp * PANEL + (size_t)(k / 4) * PANEL * 4 + (size_t)(o % PANEL) * 4 + (size_t)(k % 4);
}

static void q8_set_row(et_q8_matrix *q, int o, const int8_t *codes) {
    int32_t s = 0;
    for (int k = 0; k < q->IC; k++) {
        q->w[q8_at(q, o, k)] = codes[k];
        s += codes[k];
    }
    q->colsum[o] = s;
}

et_status et_q8_quantize(et_q8_matrix *q, const float *W, int OC, int IC, et_error *err) {
    et_status st = q8_alloc(q, OC, IC, err);
    if (st) return st;
    int8_t *codes = malloc((size_t)IC);
    if (!codes) { et_q8_free(q); return et_fail(err, ET_ERR_NOMEM, "int8: out of memory"); }
    for (int o = 0; o < OC; o++) {
        const float *w = W + (size_t)o * IC;
        float amax = 0.0f;
        for (int k = 0; k < IC; k++) {
            if (!isfinite(w[k])) {
                free(codes);
                et_q8_free(q);
                return et_fail(err, ET_ERR_NUMERIC, "int8: weight [%d, %d] is not finite", o, k);
            }
            float a = fabsf(w[k]);
            if (a > amax) amax = a;
        }
        float s, inv;
        et_q8_row_scale(amax, &s, &inv);
        for (int k = 0; k < IC; k++) {
            float v = nearbyintf(w[k] * inv);
            codes[k] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
        }
        q->scale[o] = s;
        q8_set_row(q, o, codes);
    }
    free(codes);
    return ET_OK;
}

et_status et_q8_from_codes(et_q8_matrix *q, const int8_t *codes, const float *scale, int OC, int IC, et_error *err) {
    for (int o = 0; o < OC; o++) {
        if (!(scale[o] >= 0.0f) || !isfinite(scale[o]))
            return et_fail(err, ET_ERR_FORMAT, "int8: scale of channel %d is %g (must be finite and >= 0)", o, scale[o]);
        for (int k = 0; k < IC; k++)
            if (codes[(size_t)o * IC + k] == -128)
                return et_fail(err, ET_ERR_FORMAT, "int8: code [%d, %d] is -128 (codes are in [-127, 127])", o, k);
    }
    et_status st = q8_alloc(q, OC, IC, err);
    if (st) return st;
    for (int o = 0; o < OC; o++) {
        q->scale[o] = scale[o];
        q8_set_row(q, o, codes + (size_t)o * IC);
    }
    return ET_OK;
}

void et_q8_unpack(const et_q8_matrix *q, int8_t *codes) {
    for (int o = 0; o < q->OC; o++)
        for (int k = 0; k < q->IC; k++) codes[(size_t)o * q->IC + k] = q->w[q8_at(q, o, k)];
}

size_t et_q8_work_bytes(int N, int IC) {
    size_t qa = ((size_t)N * round_up(IC, 4) + 63) / 64 * 64;
    return qa + (size_t)N * sizeof(float) + 64;
}

/* ---------------------------------------------------------------- scalar path (the reference) */
static void scalar_quant_rows(int8_t *qa, float *sa, const float *x, int n, int IC, int ICp) {
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * IC;
        int8_t *q = qa + (size_t)r * ICp;
        float amax = 0.0f;
        for (int k = 0; k < IC; k++) {
            float a = fabsf(xr[k]);
            if (a > amax) amax = a;
        }
        float inv;
        et_q8_row_scale(amax, &sa[r], &inv);
        for (int k = 0; k < IC; k++) {
            float v = nearbyintf(xr[k] * inv);
            q[k] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
        }
        for (int k = IC; k < ICp; k++) q[k] = 0;
    }
}

/* the epilogue every path computes: (float)acc * (sa * sw) + bias, in this order, without contraction */
static inline float q8_epilogue(int32_t acc, float sa, float sw, const float *bias, int o) {
    float s = sa * sw;
    float y = (float)acc * s;
    return bias ? y + bias[o] : y;
}

static void scalar_tile(int m, const int8_t *qa, const float *sa, const et_q8_matrix *W, int p0, int np,
                        const float *bias, float *out, int ldo) {
    const int G = W->ICp / 4;
    for (int r = 0; r < m; r++) {
        const int8_t *a = qa + (size_t)r * W->ICp;
        for (int p = p0; p < p0 + np; p++) {
            const int8_t *wp = W->w + (size_t)p * W->ICp * PANEL;
            int32_t acc[PANEL] = {0};
            for (int g = 0; g < G; g++) {
                const int8_t *wg = wp + (size_t)g * PANEL * 4, *ag = a + 4 * g;
                for (int j = 0; j < PANEL; j++)
                    acc[j] += ag[0] * wg[4 * j] + ag[1] * wg[4 * j + 1] + ag[2] * wg[4 * j + 2] + ag[3] * wg[4 * j + 3];
            }
            for (int j = 0; j < PANEL; j++) {
                int o = p * PANEL + j;
                if (o < W->OC) out[(size_t)r * ldo + o] = q8_epilogue(acc[j], sa[r], W->scale[o], bias, o);
            }
        }
    }
}

static const et_q8_isa et_q8_isa_scalar = {"scalar", scalar_quant_rows, scalar_tile};

/* ---------------------------------------------------------------- WebAssembly SIMD128 path */
#if defined(__wasm_simd128__)
/* 16 bytes of a panel's k group = 4 channels x 4 k; widened to i16 (lo: channels c, c+1; hi: c+2, c+3)
 * and multiplied by the 4 activations repeated twice with i32x4.dot_i16x8_s, each lane sums 2 products:
 * [ch c k0+k1, ch c k2+k3, ch c+1 k0+k1, ch c+1 k2+k3]; the pairs are added at the end. */
static void wasm_tile(int m, const int8_t *qa, const float *sa, const et_q8_matrix *W, int p0, int np,
                      const float *bias, float *out, int ldo) {
    const int G = W->ICp / 4;
    for (int p = p0; p < p0 + np; p++) {
        const int8_t *wp = W->w + (size_t)p * W->ICp * PANEL;
        int nvalid = W->OC - p * PANEL < PANEL ? W->OC - p * PANEL : PANEL;
        for (int r = 0; r < m; r += 2) {
            const int two = r + 1 < m;
            const int8_t *a0 = qa + (size_t)r * W->ICp, *a1 = two ? a0 + W->ICp : a0;
            int32_t acc0[PANEL], acc1[PANEL];
            /* half a panel (8 channels) at a time: 8 accumulators + 4 widened weights + 2 activations fit the 16
             * registers a wasm engine has on x86 (a whole panel spilled) */
            for (int h = 0; h < 2; h++) {
                v128_t c0[4], c1[4];
                for (int i = 0; i < 4; i++) { c0[i] = wasm_i32x4_splat(0); c1[i] = wasm_i32x4_splat(0); }
                const int8_t *wh = wp + 32 * h;
                for (int g = 0; g < G; g++) {
                    const int8_t *wg = wh + (size_t)g * 64;
                    int32_t x0, x1;
                    memcpy(&x0, a0 + 4 * g, 4);
                    memcpy(&x1, a1 + 4 * g, 4);
                    v128_t av0 = wasm_i16x8_extend_low_i8x16(wasm_i32x4_splat(x0));
                    v128_t av1 = wasm_i16x8_extend_low_i8x16(wasm_i32x4_splat(x1));
                    for (int i = 0; i < 2; i++) {
                        v128_t w = wasm_v128_load(wg + 16 * i);
                        v128_t wl = wasm_i16x8_extend_low_i8x16(w), whi = wasm_i16x8_extend_high_i8x16(w);
                        c0[2 * i] = wasm_i32x4_add(c0[2 * i], wasm_i32x4_dot_i16x8(wl, av0));
                        c0[2 * i + 1] = wasm_i32x4_add(c0[2 * i + 1], wasm_i32x4_dot_i16x8(whi, av0));
                        c1[2 * i] = wasm_i32x4_add(c1[2 * i], wasm_i32x4_dot_i16x8(wl, av1));
                        c1[2 * i + 1] = wasm_i32x4_add(c1[2 * i + 1], wasm_i32x4_dot_i16x8(whi, av1));
                    }
                }
                for (int i = 0; i < 4; i++) { /* lanes (0+1) -> channel 2i, (2+3) -> channel 2i+1 of this half */
                    v128_t s0 = wasm_i32x4_add(c0[i], wasm_i32x4_shuffle(c0[i], c0[i], 1, 0, 3, 2));
                    v128_t s1 = wasm_i32x4_add(c1[i], wasm_i32x4_shuffle(c1[i], c1[i], 1, 0, 3, 2));
                    acc0[8 * h + 2 * i] = wasm_i32x4_extract_lane(s0, 0);
                    acc0[8 * h + 2 * i + 1] = wasm_i32x4_extract_lane(s0, 2);
                    acc1[8 * h + 2 * i] = wasm_i32x4_extract_lane(s1, 0);
                    acc1[8 * h + 2 * i + 1] = wasm_i32x4_extract_lane(s1, 2);
                }
            }
            for (int rr = 0; rr < 1 + two; rr++) {
                const int32_t *acc = rr ? acc1 : acc0;
                float *o = out + (size_t)(r + rr) * ldo + p * PANEL;
                float sr = sa[r + rr];
                for (int j = 0; j < nvalid; j++) o[j] = q8_epilogue(acc[j], sr, W->scale[p * PANEL + j], bias, p * PANEL + j);
            }
        }
    }
}
static const et_q8_isa et_q8_isa_wasm128 = {"wasm128", scalar_quant_rows, wasm_tile};
#endif

/* A test/benchmark hook (et_q8_force): the path by name, NULL = automatic. */
static const et_q8_isa *q8_forced;

/* may path I run here (the fp32 path chosen as kernels.h says, the CPU, the process's AMX permission)? */
static int q8_runs(const et_q8_isa *I) {
    if (I == &et_q8_isa_scalar) return 1;
#if defined(__wasm_simd128__)
    if (I == &et_q8_isa_wasm128) return !strcmp(et_simd_name(), "wasm128");
#endif
#if (defined(__x86_64__) || defined(__i386__)) && defined(ET_X86) && ET_X86
    if (!strcmp(et_simd_name(), "avx512") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) {
        if (I == &et_q8_isa_vnni) return 1;
        if (I == &et_q8_isa_amx) return et_kern_amx_ok(25);
    }
#endif
    return 0;
}

/* the paths of this build, the preferred first */
static const et_q8_isa *const q8_paths[] = {
#if (defined(__x86_64__) || defined(__i386__)) && defined(ET_X86) && ET_X86
    &et_q8_isa_amx, &et_q8_isa_vnni,
#endif
#if defined(__wasm_simd128__)
    &et_q8_isa_wasm128,
#endif
    &et_q8_isa_scalar};

static const et_q8_isa *q8_isa(void) {
    if (q8_forced && q8_runs(q8_forced)) return q8_forced;
    for (size_t i = 0; i < sizeof q8_paths / sizeof q8_paths[0]; i++)
        if (q8_runs(q8_paths[i])) return q8_paths[i];
    return &et_q8_isa_scalar;
}

int et_q8_force(const char *name) {
    if (!name || !strcmp(name, "auto")) { q8_forced = NULL; return 0; }
    for (size_t i = 0; i < sizeof q8_paths / sizeof q8_paths[0]; i++)
        if (!strcmp(q8_paths[i]->name, name)) {
            if (!q8_runs(q8_paths[i])) return -1;
            q8_forced = q8_paths[i];
            return 0;
        }
    return -1;
}

const char *et_q8_path_name(void) { return q8_isa()->name; }

/* ---------------------------------------------------------------- the threaded driver */
#define ROWS_PER_QTASK 32
#define ROWS_PER_TASK 48
#define PANELS_PER_TASK 8

typedef struct {
    const et_q8_isa *isa;
    const float *inp;
    const et_q8_matrix *W;
    const float *bias;
    float *out;
    int8_t *qa;
    float *sa;
    int N, rowblocks, panelblocks;
} q8_job;

static void q8_quant_task(void *vctx, int task, int thread) {
    (void)thread;
    q8_job *j = vctx;
    int r0 = task * ROWS_PER_QTASK, n = j->N - r0 < ROWS_PER_QTASK ? j->N - r0 : ROWS_PER_QTASK;
    j->isa->quant_rows(j->qa + (size_t)r0 * j->W->ICp, j->sa + r0, j->inp + (size_t)r0 * j->W->IC, n, j->W->IC,
                       j->W->ICp);
}

static void q8_gemm_task(void *vctx, int task, int thread) {
    (void)thread;
    q8_job *j = vctx;
    int rb = task / j->panelblocks, pb = task % j->panelblocks;
    int r0 = rb * ROWS_PER_TASK, m = j->N - r0 < ROWS_PER_TASK ? j->N - r0 : ROWS_PER_TASK;
    int p0 = pb * PANELS_PER_TASK, np = j->W->OCp / PANEL - p0;
    if (np > PANELS_PER_TASK) np = PANELS_PER_TASK;
    j->isa->tile(m, j->qa + (size_t)r0 * j->W->ICp, j->sa + r0, j->W, p0, np, j->bias, j->out + (size_t)r0 * j->W->OC,
                 j->W->OC);
}

void et_q8_linear_forward(et_pool *pool, float *out, const float *inp, const et_q8_matrix *W, const float *bias,
                          int N, int gelu, void *work) {
    if (N <= 0) return;
    q8_job j;
    j.isa = q8_isa();
    j.inp = inp; j.W = W; j.bias = bias; j.out = out; j.N = N;
    j.qa = work;
    j.sa = (float *)((char *)work + ((size_t)N * W->ICp + 63) / 64 * 64);
    et_pool_run(pool, q8_quant_task, &j, (N + ROWS_PER_QTASK - 1) / ROWS_PER_QTASK);
    j.rowblocks = (N + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    j.panelblocks = (W->OCp / PANEL + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
    et_pool_run(pool, q8_gemm_task, &j, j.rowblocks * j.panelblocks);
    if (gelu) et_gelu_forward(pool, out, out, (int64_t)N * W->OC);
}

void et_q8_linear_reference(float *out, const float *inp, const et_q8_matrix *W, const float *bias, int N) {
    int8_t *codes = malloc((size_t)W->OC * W->IC + 1), *qa = malloc((size_t)W->IC + 1);
    if (!codes || !qa) { free(codes); free(qa); return; }
    et_q8_unpack(W, codes);
    for (int n = 0; n < N; n++) {
        float sa;
        scalar_quant_rows(qa, &sa, inp + (size_t)n * W->IC, 1, W->IC, W->IC);
        for (int o = 0; o < W->OC; o++) {
            int32_t acc = 0;
            for (int k = 0; k < W->IC; k++) acc += (int32_t)qa[k] * codes[(size_t)o * W->IC + k];
            out[(size_t)n * W->OC + o] = q8_epilogue(acc, sa, W->scale[o], bias, o);
        }
    }
    free(codes);
    free(qa);
}
