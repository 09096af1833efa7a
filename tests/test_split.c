/* test_split.c - the work split is balanced for any thread count (issue 15 item 5).
 *
 * For every pool size T = 1..64 and the real shapes of MiniLM-L6 (C 384, 12 heads, I 1536) and the bundled
 * compact model (C 128, 4 heads, I 512) at the benchmarks' batches (encode 32 x 128 and 1 x 32, the train
 * step's 32 x 32 queries and 32 x 128 documents), on every SIMD path available: every GEMM of the forward
 * and backward (Linear forward, dinp = dout W, dW = dout^T x), the attention (per batch and head) and the
 * LayerNorm (forward rows, backward with weight gradients) are asked how they split their work
 * (et_kernel_split: the split the kernels run), and the largest per-thread share must be within 10 % of
 * the mean share of the threads used. Also: every unit of work is done exactly once (the shares sum to the
 * work), a kernel never uses more threads than the pool, and a big kernel uses at least 3/4 of the pool
 * (it caps threads only where more would not finish sooner or would get too little work; for the kernels
 * of equal tasks the capped split finishes as soon as the full pool would). One exception, stated and
 * checked: the LayerNorm backward with weight gradients sums 16 row chunks fixed by N (so dw/db have the
 * same bits at any thread count); over 3, 6 or 7 threads no split of 16 equal chunks is within 10 % (6 vs
 * 5.33), and the test then asserts the split is still the fastest. It prints the threads each kernel uses
 * for a few pool sizes. */
#include <stdio.h>
#include <string.h>
#include "kernels.h"
#include "et_test.h"

typedef struct { const char *name; int C, NH, I; } model;
typedef struct { const char *name; int B, T; } batch;

static double g_worst = 0;
static char g_worst_at[400];
static int g_exceptions = 0;

static void check_split(const char *path, const char *what, et_split_kind kind, int a, int b, int c, double work,
                        int big) {
    double share[64];
    for (int T = 1; T <= 64; T++) {
        double sum = 0;
        for (int job = 0;; job++) { /* each pool job ends in a barrier: each must be balanced */
            int used = 0;
            int tasks = et_kernel_split(kind, a, b, c, T, job, &used, share);
            if (!tasks) {
                CHECK(job > 0, "%s %s T=%d: no work", path, what, T);
                break;
            }
            CHECK(used >= 1 && used <= T, "%s %s T=%d: %d tasks on %d threads", path, what, T, tasks, used);
            if (used < 1 || used > T) break;
            double js = 0, mx = 0;
            for (int t = 0; t < used; t++) {
                js += share[t];
                if (share[t] > mx) mx = share[t];
            }
            sum += js;
            double ratio = mx / (js / used);
            if (kind == ET_SPLIT_ATTENTION || (kind == ET_SPLIT_LAYERNORM_BWD && (double)a * b >= 2 * 8192)) {
                /* (a LayerNorm below 2 x 8K elements runs serially: waking a thread costs more) */
                /* equal tasks: running on fewer threads than the pool must not finish later */
                int tt = T < tasks ? T : tasks;
                CHECK((tasks + used - 1) / used == (tasks + tt - 1) / tt, "%s %s T=%d: %d threads finish later than %d",
                      path, what, T, used, tt);
            }
            if (kind == ET_SPLIT_LAYERNORM_BWD && ratio > 1.10 + 1e-9) {
                /* the exception: 16 row chunks fixed by N (the same dw/db bits at any thread count, issue 19)
                 * cannot be spread within 10 % over 3, 6 or 7 threads; the split above is still the fastest */
                CHECK(T == 3 || T == 6 || T == 7, "%s %s T=%d: largest share %.3f x the mean", path, what, T, ratio);
                if (!strcmp(path, "avx512") && !strcmp(what, "MiniLM-L6 encode 32x128 layernorm backward"))
                    printf("exception: %s T=%d: %d equal row chunks on %d threads, largest share %.3f x the mean\n", what,
                           T, tasks, used, ratio);
                g_exceptions++;
                continue;
            }
            CHECK(ratio <= 1.10 + 1e-9, "%s %s T=%d job %d: largest share %.3f x the mean (%d tasks on %d threads)", path,
                  what, T, job, ratio, tasks, used);
            if (ratio > g_worst) {
                g_worst = ratio;
                snprintf(g_worst_at, sizeof g_worst_at, "%s %s T=%d job %d (%d tasks on %d threads)", path, what, T, job,
                         tasks, used);
            }
            if (big && job == 0 && kind == ET_SPLIT_GEMM)
                CHECK(4 * used >= 3 * T, "%s %s T=%d: only %d threads used", path, what, T, used);
        }
        CHECK(fabs(sum - work) <= 1e-9 * work, "%s %s T=%d: shares sum to %.0f, the work is %.0f", path, what, T, sum,
              work);
    }
}

static void threads_line(const char *what, et_split_kind kind, int a, int b, int c) {
    static const int Ts[] = {2, 4, 5, 8, 12, 16, 24, 32, 64};
    printf("  %-34s", what);
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++) {
        int used;
        et_kernel_split(kind, a, b, c, Ts[i], 0, &used, NULL);
        printf(" %3d", used);
    }
    printf("\n");
}

int main(void) {
    static const model models[] = {{"MiniLM-L6", 384, 12, 1536}, {"compact", 128, 4, 512}};
    static const batch batches[] = {{"encode 32x128", 32, 128}, {"encode 1x32", 1, 32}, {"train q 32x32", 32, 32}};
    static const char *paths[] = {"scalar", "avx2", "avx512", "wasm128"};
    for (int p = 0; p < 4; p++) {
        if (et_kernels_force_path(paths[p])) continue;
        for (size_t mi = 0; mi < sizeof models / sizeof *models; mi++) {
            const model *m = &models[mi];
            for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
                const batch *bt = &batches[bi];
                const int N = bt->B * bt->T;
                char what[128];
                /* every GEMM shape of the layer: forward [N, out] = [N, in] W^T; backward dinp [N, in] =
                 * dout [N, out] W; dW [out, in] = dout^T [out, N] x [N, in] */
                const int io[3][2] = {{m->C, m->C}, {m->C, m->I}, {m->I, m->C}};
                for (int s = 0; s < 3; s++) {
                    int in = io[s][0], out = io[s][1];
                    const int shp[3][3] = {{N, out, in}, {N, in, out}, {out, in, N}};
                    static const char *nm[3] = {"fwd", "dinp", "dW"};
                    for (int g = 0; g < 3; g++) {
                        snprintf(what, sizeof what, "%s %s gemm %s %dx%dx%d", m->name, bt->name, nm[g], shp[g][0],
                                 shp[g][1], shp[g][2]);
                        double work = (double)shp[g][0] * shp[g][1] * shp[g][2];
                        check_split(paths[p], what, ET_SPLIT_GEMM, shp[g][0], shp[g][1], shp[g][2], work,
                                    work >= 64 * 4e6);
                    }
                }
                snprintf(what, sizeof what, "%s %s attention", m->name, bt->name);
                check_split(paths[p], what, ET_SPLIT_ATTENTION, bt->B, bt->T, m->NH, (double)bt->B * m->NH * bt->T * bt->T,
                            bt->B * m->NH >= 128);
                snprintf(what, sizeof what, "%s %s layernorm", m->name, bt->name);
                check_split(paths[p], what, ET_SPLIT_LAYERNORM, N, m->C, 0, (double)N, 0);
                snprintf(what, sizeof what, "%s %s layernorm backward", m->name, bt->name);
                check_split(paths[p], what, ET_SPLIT_LAYERNORM_BWD, N, m->C, 0, (double)N, 0);
            }
        }
        if (!strcmp(paths[p], "avx512") || !strcmp(paths[p], "wasm128") || !strcmp(paths[p], "scalar")) {
            printf("%s: threads used at a pool of       2   4   5   8  12  16  24  32  64\n", paths[p]);
            threads_line("gemm 4096x384x384 (32x128 qkv)", ET_SPLIT_GEMM, 4096, 384, 384);
            threads_line("gemm 4096x1536x384 (32x128 ffn up)", ET_SPLIT_GEMM, 4096, 1536, 384);
            threads_line("gemm 32x384x384 (1x32 qkv)", ET_SPLIT_GEMM, 32, 384, 384);
            threads_line("gemm 32x1536x384 (1x32 ffn up)", ET_SPLIT_GEMM, 32, 1536, 384);
            threads_line("attention 32x128, 12 heads", ET_SPLIT_ATTENTION, 32, 128, 12);
            threads_line("attention 1x32, 12 heads", ET_SPLIT_ATTENTION, 1, 32, 12);
            threads_line("layernorm 4096x384", ET_SPLIT_LAYERNORM, 4096, 384, 0);
            threads_line("layernorm backward 4096x384", ET_SPLIT_LAYERNORM_BWD, 4096, 384, 0);
        }
    }
    et_kernels_force_path(NULL);
    printf("largest share / mean over all cases but the %d LayerNorm-backward exceptions: %.3f (%s)\n", g_exceptions,
           g_worst, g_worst_at);
    return et_test_report("test_split");
}
