/* simd_peak.c - the WebAssembly SIMD128 f32 multiply-add peak of the runtime it runs in
 * (bench/README.md, "WebAssembly"). Built by bench/run_wasm_bench.sh with emcc, not by CMake:
 *   emcc -O3 -msimd128          ... -o simd_peak-st.mjs   (1 thread)
 *   emcc -O3 -msimd128 -pthread ... -o simd_peak.mjs      (t threads: t-1 pthreads + the caller)
 *
 * The kernel: ACC independent f32x4 chains acc = acc * m + c (wasm has no FMA in SIMD128: one f32x4.mul
 * and one f32x4.add = 8 flops per chain step), unrolled so the loop overhead is small. With 12 chains
 * there are enough independent operations in flight to cover mul + add latency on x86 (V8 emits
 * mulps/addps, or vmulps/vaddps), so the figure is the throughput of the two SIMD ports, i.e. what a
 * perfect 128-bit wasm GEMM without FMA could reach.
 *
 * et_simd_peak_run(threads, iters) -> wall seconds for `threads` threads each doing `iters` steps of
 * all chains (flops = threads * iters * ACC * 8); the threads start together on an atomic flag.
 * et_simd_peak_sink() -> a checksum of the last run (keeps the work observable). */
#include <wasm_simd128.h>
#include <stdatomic.h>
#include <emscripten/emscripten.h>
#ifdef __EMSCRIPTEN_PTHREADS__
#include <pthread.h>
#endif

#ifndef ACC
#define ACC 12
#endif

static float kernel(long iters, float seed) {
    v128_t m = wasm_f32x4_splat(0.999999f), c = wasm_f32x4_splat(1e-7f);
    v128_t a[ACC];
#pragma clang loop unroll(full)
    for (int k = 0; k < ACC; k++) a[k] = wasm_f32x4_splat(seed + (float)k);
    for (long i = 0; i < iters; i++) {
#pragma clang loop unroll(full)
        for (int k = 0; k < ACC; k++) a[k] = wasm_f32x4_add(wasm_f32x4_mul(a[k], m), c);
    }
    v128_t s = a[0];
#pragma clang loop unroll(full)
    for (int k = 1; k < ACC; k++) s = wasm_f32x4_add(s, a[k]);
    return wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1) + wasm_f32x4_extract_lane(s, 2) +
           wasm_f32x4_extract_lane(s, 3);
}

typedef struct { long iters; float seed, out; } job;
static atomic_int g_go;
static volatile float g_sink, g_out0; /* volatile: the kernel cannot sink past the second clock read */

#ifdef __EMSCRIPTEN_PTHREADS__
static void *worker(void *p) {
    job *j = p;
    while (!atomic_load(&g_go)) {}
    j->out = kernel(j->iters, j->seed);
    return NULL;
}
#endif

EMSCRIPTEN_KEEPALIVE double et_simd_peak_run(int threads, int iters) {
    if (threads < 1) threads = 1;
    if (threads > 16) threads = 16;
    job jobs[16];
    for (int t = 0; t < threads; t++) jobs[t] = (job){iters, (float)t, 0.f};
    atomic_store(&g_go, 0);
#ifdef __EMSCRIPTEN_PTHREADS__
    pthread_t tid[16];
    int started = 1;
    for (int t = 1; t < threads; t++)
        if (pthread_create(&tid[t], NULL, worker, &jobs[t]) == 0) started++;
        else break;
    if (started != threads) { atomic_store(&g_go, 1); for (int t = 1; t < started; t++) pthread_join(tid[t], NULL); return -1.0; }
#else
    if (threads != 1) return -1.0;
#endif
    double t0 = emscripten_get_now();
    atomic_store(&g_go, 1);
    g_out0 = kernel(iters, 0.f);
#ifdef __EMSCRIPTEN_PTHREADS__
    for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
#endif
    double t1 = emscripten_get_now();
    jobs[0].out = g_out0;
    g_sink = 0.f;
    for (int t = 0; t < threads; t++) g_sink += jobs[t].out;
    return (t1 - t0) * 1e-3;
}

EMSCRIPTEN_KEEPALIVE double et_simd_peak_sink(void) { return g_sink; }

EMSCRIPTEN_KEEPALIVE int et_simd_peak_acc(void) { return ACC; }
