/* kernels.h - the maths. One portable interface; SIMD paths (AVX2 / AVX-512 chosen at run time
 * on x86, wasm_simd128 under Emscripten/WASI, scalar elsewhere) live behind it. This is the only
 * module that knows about intrinsics.
 *
 * Conventions: row-major f32. Shapes are given in comments as [rows, cols].
 * B = batch, T = sequence length, C = channels (hidden size), NH = heads, hd = C / NH.
 * Every backward ACCUMULATES (+=) into its gradient outputs, llm.c style; any gradient pointer
 * may be NULL when that gradient is not wanted. `pool` may be NULL (serial).
 *
 * Determinism: for a given SIMD path every kernel returns the same bits with any pool (NULL, or any
 * number of threads) and any scheduling. Each output element is computed by exactly one task, and
 * the order of every sum is fixed by the shapes alone: the GEMM's k blocks (KC) and micro-kernel,
 * the LayerNorm weight/bias gradients and the Linear bias gradient summed over the rows in row order
 * by column blocks (no per-thread partial sums), attention per (batch, head). Different SIMD paths
 * (et_kernels_force_path) give different bits (FMA or not, vector exp / erf). */
#ifndef ET_KERNELS_H
#define ET_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "threads.h"

/* ---- GEMM ----------------------------------------------------------------------------------
 * C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C      (BLAS sgemm semantics, row-major)
 * op(A) = A (transA = 0, A is [M,K], lda >= K) or A^T (transA = 1, A is [K,M], lda >= M).
 * op(B) = B (transB = 0, B is [K,N], ldb >= N) or B^T (transB = 1, B is [N,K], ldb >= K).
 * beta == 0 means C is write-only (NaNs in C are ignored), as in BLAS. Blocked + packed.
 * Workspace: the packing buffers are the pool's per-thread scratch (et_pool_scratch; a NULL pool:
 * one buffer allocated per call). Reserve it up front with et_gemm_pool_bytes + et_pool_reserve
 * (et_bert_forward / et_bert_backward do) and no GEMM allocates. If a buffer cannot be had, the GEMM
 * runs the same arithmetic one tile at a time with its panels on the stack: slower, the same bits. */
void et_sgemm(et_pool *pool, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Pool scratch the GEMMs use per thread, for any shape on any SIMD path: `first` bytes for thread 0
 * (the shared packed B block and its A block), `each` for the others (et_pool_reserve). */
void et_gemm_pool_bytes(size_t *first, size_t *each);

/* Linear layer in the HF/PyTorch layout: W is [OC, IC], bias [OC] (may be NULL).
 * out[N,OC] = inp[N,IC] @ W^T + bias */
void et_linear_forward(et_pool *pool, float *out, const float *inp, const float *W,
                       const float *bias, int N, int IC, int OC);
/* Prepacked Linear weights (inference: pack once, use for every batch). et_linear_packed_floats
 * = floats of the packed buffer for the SIMD path in use (0 if IC or OC <= 0); et_linear_pack fills
 * Wp (64-byte aligned) from W [OC,IC]; et_linear_forward_packed then computes exactly what
 * et_linear_forward computes (bit-identical) without packing W again. Wp records the path and the
 * shape: if they do not match (another path was forced since, or Wp is NULL), W is used as usual.
 * Wp is a snapshot: pack again after W changes. */
size_t et_linear_packed_floats(int IC, int OC);
void et_linear_pack(et_pool *pool, float *Wp, const float *W, int IC, int OC);
void et_linear_forward_packed(et_pool *pool, float *out, const float *inp, const float *W, const float *Wp,
                              const float *bias, int N, int IC, int OC);
/* out[N,OC] = GELU(inp @ W^T + bias) (Wp as et_linear_forward_packed, may be NULL): the same values
 * as et_linear_forward_packed then et_gelu_forward, with the GELU fused into the GEMM epilogue where
 * the path has it (no pre-GELU pass over memory; inference, where the pre-GELU values are not kept) */
void et_linear_forward_gelu(et_pool *pool, float *out, const float *inp, const float *W, const float *Wp,
                            const float *bias, int N, int IC, int OC);
/* dinp[N,IC] += dout[N,OC] @ W ; dW[OC,IC] += dout^T @ inp ; dbias[OC] += sum_n dout */
void et_linear_backward(et_pool *pool, float *dinp, float *dW, float *dbias, const float *dout,
                        const float *inp, const float *W, int N, int IC, int OC);

/* ---- bf16 mixed precision (training with --precision bf16) ----------------------------------
 * The same GEMMs with their operands in bfloat16 (the top 16 bits of a float: 8 exponent bits, an 8-bit
 * significand) and everything else in fp32: op(A) and op(B) are rounded to bf16 as they are packed
 * (et_f32_to_bf16_daz); each product of two bf16 values is exact in fp32; the sums are fp32, as VDPBF16PS
 * forms them: k in pairs from the start of each k block (ET_BF16_KC = 384, split evenly as et_sgemm's),
 * acc = fma(a[k+1], b[k+1], acc) then fma(a[k], b[k], acc), subnormal sums flushed to zero (kernels/bf16.c
 * writes it out); C, alpha, beta, the bias and the gradient buffers accumulated into are fp32. So a bf16
 * GEMM's error is that of rounding its inputs (relative 2^-8 each at most), not that of a bf16 output.
 * VDPBF16PS runs them when et_bf16_native(), else the scalar reference does, with the same bits (slowly:
 * it serves the tests and builds without AVX512_BF16, WebAssembly included).
 * AMX: where the CPU has AMX-BF16 and Linux grants this process the tile state (arch_prctl, asked once; refused
 * on kernels before 5.16), TDPBF16PS runs them instead (16 x 16 x 32 per instruction, GEMMs with K >= 32; smaller
 * K stays on VDPBF16PS). The same bf16 operands and fp32 epilogue, but the tile unit sums each instruction's
 * 32 products its own way (not a chain of fmas: measured against the reference, about 1/3 of the sums agree to
 * the bit), so its results are within fp32 rounding of the reference's, not equal to them (tests/test_bf16.c
 * bounds the difference). Deterministic as the fp32 GEMMs (any pool, the same bits) on any one table.
 * Workspace: as et_sgemm's (et_gemm_pool_bytes covers every table). */
/* the GEMMs' rounding, as VCVTNE2PS2BF16: to nearest even; zero and subnormal inputs give a zero of their
 * sign (unlike safetensors.h et_f32_to_bf16, torch's rule for files, which keeps subnormals), inf stays inf,
 * a NaN stays a NaN (truncated, quiet bit set); a finite value may round up to inf */
uint16_t et_f32_to_bf16_daz(float x);
/* 1 when this CPU and build run the bf16 GEMMs with AMX or AVX512_BF16 (VDPBF16PS); 0 on other CPUs, in
 * WebAssembly, and while et_kernels_force_path has forced a path other than avx512 */
int et_bf16_native(void);
/* Test and benchmark hook: run the bf16 GEMMs on the table `name` ("amx-bf16", "avx512bf16", "bf16-scalar";
 * NULL or "auto": the fastest this CPU and process can run). -1 (nothing changed) when this CPU or process
 * cannot run it. Process-wide, like et_kernels_force_path: set it before running kernels. */
int et_bf16_force(const char *name);
/* How much faster the bf16 GEMM's micro-kernel runs than the fp32 one on this CPU (their times on one
 * L1-resident tile, the same flops; a few milliseconds of timing): > 1 where VDPBF16PS outpaces the fp32 FMA.
 * 0 when bf16 is not native. (On the AVX-512 Xeon this was written on, VDPBF16PS issues once per 2 cycles
 * and the fp32 FMA twice per cycle, so about 0.6: bf16 is slower there; its AMX tile kernel is several times
 * faster.) */
double et_bf16_speedup(void);
/* "amx-bf16", "avx512bf16" or "bf16-scalar" (the reference) */
const char *et_bf16_name(void);
/* et_sgemm / et_linear_forward / et_linear_backward with bf16 operands (dbias is the fp32 sum) */
void et_sgemm_bf16(et_pool *pool, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);
void et_linear_forward_bf16(et_pool *pool, float *out, const float *inp, const float *W, const float *bias, int N,
                            int IC, int OC);
void et_linear_backward_bf16(et_pool *pool, float *dinp, float *dW, float *dbias, const float *dout,
                             const float *inp, const float *W, int N, int IC, int OC);

/* ---- elementwise / rows -------------------------------------------------------------------- */
/* GELU, exact erf form: 0.5 x (1 + erf(x / sqrt 2)).  out[n] */
void et_gelu_forward(et_pool *pool, float *out, const float *inp, int64_t n);
/* dinp[n] += dout * gelu'(inp) */
void et_gelu_backward(et_pool *pool, float *dinp, const float *inp, const float *dout, int64_t n);

/* In place: d[n] *= gelu'(inp) (d = dL/d(GELU output) becomes dL/d(GELU input); the same values as
 * et_gelu_backward into a zeroed buffer) */
void et_gelu_backward_inplace(et_pool *pool, float *d, const float *inp, int64_t n);

/* LayerNorm over the last dim: out[N,C] = (x - mean) * rstd * w + b.
 * mean[N], rstd[N] are saved for backward (may be NULL at inference). */
void et_layernorm_forward(et_pool *pool, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps);
/* dinp[N,C] += ..., dw[C] += ..., db[C] += ... */
void et_layernorm_backward(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean, const float *rstd,
                           int N, int C);

/* The same LayerNorm keeping xhat [N,C] = (x - mean) * rstd instead of the input x (training
 * memory: the input need not be stored; the output is recomputable from xhat). out = xhat * w + b,
 * computed by the same code as et_layernorm_affine, so a recomputed output has the same bits.
 * rstd [N] may be NULL. */
void et_layernorm_forward_xhat(et_pool *pool, float *out, float *xhat, float *rstd, const float *inp,
                               const float *w, const float *b, int N, int C, float eps);
/* out[N,C] = xhat * w + b (the output of et_layernorm_forward_xhat again) */
void et_layernorm_affine(et_pool *pool, float *out, const float *xhat, const float *w, const float *b, int N,
                         int C);
/* et_layernorm_backward from xhat and rstd: dinp[N,C] += ..., dw[C] += ..., db[C] += ... */
void et_layernorm_backward_xhat(et_pool *pool, float *dinp, float *dw, float *db, const float *dout,
                                const float *xhat, const float *w, const float *rstd, int N, int C);

/* In-place softmax over each row of x[N,C] (numerically stable: max subtracted). */
void et_softmax_rows(float *x, int N, int C);

/* out[N] = sum_i a[i] * b[i] over n elements, SIMD; the building block of search. */
float et_dot(const float *a, const float *b, int64_t n);
/* y[n] += alpha * x[n] */
void et_axpy(float *y, float alpha, const float *x, int64_t n);

/* ---- embeddings ---------------------------------------------------------------------------- */
/* out[B*T, C] = wte[ids] + wpe[t] + wtt[type_ids] (type_ids may be NULL = all 0).
 * wte [V,C], wpe [P,C], wtt [TV,C]. ids are validated by the caller. */
void et_embedding_forward(et_pool *pool, float *out, const int32_t *ids, const int32_t *type_ids,
                          const float *wte, const float *wpe, const float *wtt, int B, int T, int C);
/* dwte[ids] += dout, dwpe[t] += dout, dwtt[type] += dout (any may be NULL) */
void et_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                           const int32_t *ids, const int32_t *type_ids, int B, int T, int C);

/* ---- attention -----------------------------------------------------------------------------
 * Multi-head scaled dot-product attention with a key padding mask, as HF BertSelfAttention:
 * scores = q k^T / sqrt(hd) + (mask ? 0 : -inf-ish), probs = softmax(scores), out = probs v.
 * q, k, v, out: [B, T, C] with head h in columns [h*hd, (h+1)*hd).  mask: [B, T], 1 = real token,
 * 0 = padding (keys only; padded query rows are still computed, as in HF).
 * att: [B, NH, T, T] receives the probabilities (needed by backward); NULL at inference.
 * scratch: [et_pool_size(pool) * et_attention_scratch_floats(T, C, NH)] floats, any alignment: every
 * buffer the kernel needs (the probabilities when att is NULL, the GEMM workspace, dropout and
 * recomputation buffers). The attention kernels allocate nothing. */
size_t et_attention_scratch_floats(int T, int C, int NH);
void et_attention_forward(et_pool *pool, float *out, float *att, float *scratch, const float *q, const float *k,
                          const float *v, const int32_t *mask, int B, int T, int C, int NH,
                          float drop_p, uint64_t drop_seed);
/* Attention dropout (drop_p > 0, training only) is counter-based: the keep/drop decision for
 * element (b,h,i,j) is et_dropout_keep(drop_seed, index, drop_p), so backward recomputes the
 * mask instead of storing it; att stores the probabilities BEFORE dropout.
 * dq, dk, dv [B,T,C] += ...; scratch: as the forward's. */
void et_attention_backward(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                           const float *dout, const float *att, const float *q, const float *k,
                           const float *v, int B, int T, int C, int NH, float drop_p,
                           uint64_t drop_seed);

/* The same without the [B,NH,T,T] probabilities (training memory): the forward keeps per row only
 * rowstats [B,NH,T,2] = (max of the masked scaled scores, 1/sum of exp(score - max)); (-inf, 0) for
 * a row whose keys are all masked. The backward recomputes the probabilities of each (b, h) from
 * q, k, mask and rowstats exactly as the forward made them (the same GEMM and exp, so the same
 * bits), then proceeds as et_attention_backward. mask must be the forward's. scratch: as above. */
void et_attention_forward_rs(et_pool *pool, float *out, float *rowstats, float *scratch, const float *q,
                             const float *k, const float *v, const int32_t *mask, int B, int T, int C,
                             int NH, float drop_p, uint64_t drop_seed);
void et_attention_backward_rs(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                              const float *dout, const float *rowstats, const int32_t *mask, const float *q,
                              const float *k, const float *v, int B, int T, int C, int NH, float drop_p,
                              uint64_t drop_seed);

/* ---- packed (variable-length) batches -------------------------------------------------------
 * B sequences concatenated WITHOUT padding: sequence b is rows [off[b], off[b+1]) of a [N, C] array,
 * off[0] = 0, N = off[B], lengths >= 1 (a zero length is skipped). Row-wise kernels (Linear, GELU,
 * LayerNorm) run on the N rows as they are; these are the ones that must know the sequences.
 * Attention is computed per sequence (no mask: every row is real), one task per (sequence, head), by
 * the same per-head code as the padded kernels; Tmax = the longest sequence (scratch as
 * et_attention_scratch_floats(Tmax, C, NH) per thread). rowstats [N, NH, 2]: head h of sequence b at
 * rows off[b]*NH + h*len(b) (NULL at inference in the forward). Dropout counters of element (i, j) of
 * (b, h): ((off[b] + i) * NH + h) * Tmax + j (the padded layout's counters cannot be had without the
 * padding; without dropout the results equal the padded kernels' up to the softmax sum's rounding). */
void et_attention_forward_packed(et_pool *pool, float *out, float *rowstats, float *scratch, const float *q,
                                 const float *k, const float *v, const int32_t *off, int B, int Tmax, int C,
                                 int NH, float drop_p, uint64_t drop_seed);
void et_attention_backward_packed(et_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                                  const float *dout, const float *rowstats, const float *q, const float *k,
                                  const float *v, const int32_t *off, int B, int Tmax, int C, int NH, float drop_p,
                                  uint64_t drop_seed);
/* out[N,C] = wte[ids] + wpe[position in its sequence] + wtt[type_ids] (the padded kernel's arithmetic) */
void et_embedding_forward_packed(et_pool *pool, float *out, const int32_t *ids, const int32_t *type_ids,
                                 const float *wte, const float *wpe, const float *wtt, const int32_t *off, int B,
                                 int C);
void et_embedding_backward_packed(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                                  const int32_t *type_ids, const int32_t *off, int B, int C);

/* Counter-based RNG (splitmix64 of seed ^ index): deterministic, stateless, thread-safe. */
static inline uint64_t et_hash64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
/* 1 if element `index` is kept under dropout probability p with this seed. */
static inline int et_dropout_keep(uint64_t seed, uint64_t index, float p) {
    uint64_t h = et_hash64(seed ^ et_hash64(index));
    return (float)(h >> 40) * (1.0f / 16777216.0f) >= p;
}

/* ---- work split ------------------------------------------------------------------------------
 * How a kernel splits its work for a pool of nt threads (the kernels run exactly these splits; used by
 * tests/test_split.c), per pool job (`job` = 0, 1, ...: a GEMM runs one job per column block of NC
 * columns, each ending in a barrier; the other kernels one job). Returns the number of tasks of that job
 * (0: no such job); *used = the threads that get work (a kernel runs on
 * fewer threads than the pool where more would not finish sooner or would get under ~1 MFLOP each);
 * share[0..used-1] (nt entries, may be NULL) = the work each thread does when the tasks are handed out
 * in turn to equally fast threads: multiply-adds for the GEMM (a = M, b = N, c = K, as et_sgemm on the
 * SIMD path in use), T*T score elements per (batch, head) for attention (a = B, b = T, c = NH), rows for
 * the LayerNorm forward and its dinp-only backward (a = N, b = C) and for the LayerNorm backward with
 * weight gradients (ET_SPLIT_LAYERNORM_BWD: 16 row chunks fixed by N, for the same bits at any nt). */
typedef enum { ET_SPLIT_GEMM = 0, ET_SPLIT_ATTENTION, ET_SPLIT_LAYERNORM, ET_SPLIT_LAYERNORM_BWD } et_split_kind;
int et_kernel_split(et_split_kind kind, int a, int b, int c, int nt, int job, int *used, double *share);

/* Name of the SIMD path in use, e.g. "avx512", "avx2", "wasm128", "scalar". */
const char *et_simd_name(void);
/* Test/bench hook: force a path by name ("scalar", "avx2", "avx512", "wasm128"; NULL or "auto"
 * = best available). Returns 0, or -1 if that path is not available on this CPU/build.
 * Process-wide: call it only while no kernels are running. */
int et_kernels_force_path(const char *name);

#endif
