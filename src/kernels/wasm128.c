/* kernels/wasm128.c - wasm_simd128 path (Emscripten and WASI with -msimd128): 4x8 micro-kernel with
 * mul + add (wasm SIMD has no FMA outside relaxed SIMD, which emcc 3.1.6 can't use), dot, axpy. */
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#include "impl.h"

#define MR 4
#define NR 8

static inline __attribute__((always_inline)) void ukr_rows(const int R, int n, int K, const float *Ap,
                                                           const float *Bp, float *C, int ldc,
                                                           float alpha, float beta) {
    v128_t c0[MR], c1[MR];
    for (int r = 0; r < R; r++) { c0[r] = wasm_f32x4_splat(0.0f); c1[r] = wasm_f32x4_splat(0.0f); }
    for (int k = 0; k < K; k++) {
        v128_t b0 = wasm_v128_load(Bp), b1 = wasm_v128_load(Bp + 4);
        for (int r = 0; r < R; r++) {
            v128_t a = wasm_v128_load32_splat(Ap + r);
            c0[r] = wasm_f32x4_add(c0[r], wasm_f32x4_mul(a, b0));
            c1[r] = wasm_f32x4_add(c1[r], wasm_f32x4_mul(a, b1));
        }
        Ap += MR;
        Bp += NR;
    }
    v128_t va = wasm_f32x4_splat(alpha), vb = wasm_f32x4_splat(beta);
    for (int r = 0; r < R; r++) {
        float *c = C + (long)r * ldc;
        v128_t o0 = wasm_f32x4_mul(va, c0[r]), o1 = wasm_f32x4_mul(va, c1[r]);
        if (n == NR) {
            if (beta != 0.0f) {
                o0 = wasm_f32x4_add(o0, wasm_f32x4_mul(vb, wasm_v128_load(c)));
                o1 = wasm_f32x4_add(o1, wasm_f32x4_mul(vb, wasm_v128_load(c + 4)));
            }
            wasm_v128_store(c, o0);
            wasm_v128_store(c + 4, o1);
        } else {
            float t[NR];
            wasm_v128_store(t, o0);
            wasm_v128_store(t + 4, o1);
            for (int j = 0; j < n; j++) c[j] = beta == 0.0f ? t[j] : t[j] + beta * c[j];
        }
    }
}

#define UKR(R)                                                                                      \
    static void ukr_##R(int n, int K, const float *Ap, const float *Bp, float *C, int ldc,         \
                        float alpha, float beta) {                                                  \
        ukr_rows(R, n, K, Ap, Bp, C, ldc, alpha, beta);                                             \
    }
UKR(1) UKR(2) UKR(3) UKR(4)

static void ukr(int m, int n, int K, const float *Ap, const float *Bp, float *C, int ldc, float alpha,
                float beta) {
    typedef void (*fn)(int, int, const float *, const float *, float *, int, float, float);
    static const fn tab[MR + 1] = {0, ukr_1, ukr_2, ukr_3, ukr_4};
    tab[m](n, K, Ap, Bp, C, ldc, alpha, beta);
}

static float dot(const float *a, const float *b, int64_t n) {
    v128_t s0 = wasm_f32x4_splat(0.0f), s1 = wasm_f32x4_splat(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
        s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
    }
    for (; i + 4 <= n; i += 4) s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    s0 = wasm_f32x4_add(s0, s1);
    float r = (wasm_f32x4_extract_lane(s0, 0) + wasm_f32x4_extract_lane(s0, 1)) +
              (wasm_f32x4_extract_lane(s0, 2) + wasm_f32x4_extract_lane(s0, 3));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

static void axpy(float *y, float alpha, const float *x, int64_t n) {
    v128_t va = wasm_f32x4_splat(alpha);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(y + i), wasm_f32x4_mul(va, wasm_v128_load(x + i))));
    for (; i < n; i++) y[i] += alpha * x[i];
}

const et_kern_isa et_kern_isa_wasm128 = {"wasm128", MR, NR, 4 * 32, 256, 1024, ukr, 0, 0, dot, axpy, 0};
#endif
