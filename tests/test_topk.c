/* test_topk.c - the one bounded best-k heap (src/topk.h) against a full sort: random scores with many ties, NaN
 * (ranks as -inf), k = 0, k > n, pushes in any order, and read-out into the heap's own arrays. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "topk.h"
#include "et_test.h"

typedef struct { double s; int32_t i; } pair;
static int cmp_best(const void *a, const void *b) { /* higher score first, then lower index */
    const pair *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

int main(void) {
    et_rng g;
    et_rng_seed(&g, 5);
    int cases = 0, bad = 0;
    for (int n = 0; n <= 300 && !bad; n += 1 + n / 4)
        for (int k = 0; k <= n + 3 && !bad; k += 1 + k / 3) {
            double *sc = malloc(sizeof(double) * (size_t)(n + 1));
            pair *ref = malloc(sizeof(pair) * (size_t)(n + 1));
            int32_t *order = malloc(sizeof(int32_t) * (size_t)(n + 1));
            for (int i = 0; i < n; i++) {
                int r = (int)et_rng_below(&g, 12);
                sc[i] = r == 0 ? NAN : r == 1 ? -INFINITY : (double)(r % 5); /* many ties */
                ref[i] = (pair){sc[i] != sc[i] ? -INFINITY : sc[i], i};
                order[i] = i;
            }
            qsort(ref, (size_t)n, sizeof *ref, cmp_best);
            for (int i = n - 1; i > 0; i--) { /* push in a random order: the result must not depend on it */
                int j = (int)et_rng_below(&g, (uint64_t)i + 1);
                int32_t t = order[i]; order[i] = order[j]; order[j] = t;
            }
            int32_t kk = k < n ? k : n, width = k + 2;
            double *hs = malloc(sizeof(double) * (size_t)(kk + 1)), *of64 = malloc(sizeof(double) * (size_t)width);
            int32_t *hi = malloc(sizeof(int32_t) * (size_t)(kk + 1)), *oi = malloc(sizeof(int32_t) * (size_t)width);
            float *of32 = malloc(sizeof(float) * (size_t)width);
            et_topk h;
            et_topk_init(&h, hs, hi, kk);
            for (int i = 0; i < n; i++) et_topk_push(&h, sc[order[i]], order[i]);
            CHECK(et_topk_take(&h, width, oi, of32, of64) == kk, "n %d k %d: kept", n, k);
            for (int r = 0; r < width && !bad; r++) {
                int ok = r < kk ? oi[r] == ref[r].i && of64[r] == ref[r].s && of32[r] == (float)ref[r].s
                                : oi[r] == -1 && isinf(of64[r]) && of64[r] < 0 && isinf(of32[r]);
                if (!ok) { CHECK(0, "n %d k %d rank %d: got (%d, %g), want (%d, %g)", n, k, r, oi[r], of64[r], r < kk ? ref[r].i : -1, r < kk ? ref[r].s : -INFINITY); bad = 1; }
            }
            /* read out into the heap's own arrays */
            et_topk_init(&h, hs, hi, kk);
            for (int i = 0; i < n; i++) et_topk_push(&h, sc[i], i);
            et_topk_take(&h, kk, hi, NULL, hs);
            for (int r = 0; r < kk && !bad; r++)
                if (hi[r] != ref[r].i || hs[r] != ref[r].s) { CHECK(0, "in place n %d k %d rank %d", n, k, r); bad = 1; }
            cases++;
            free(sc); free(ref); free(order); free(hs); free(of64); free(hi); free(oi); free(of32);
        }
    CHECK(cases > 100, "%d cases", cases);
    return et_test_report("test_topk");
}
