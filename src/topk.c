/* topk.c - see topk.h */
#include "topk.h"

#include <math.h>

/* a ranks below b: lower score, or the same score and a later index */
static inline int worse(double sa, int32_t ia, double sb, int32_t ib) { return sa < sb || (sa == sb && ia > ib); }

/* move (s, idx) down from slot c within [0, n) */
static void sift_down(double *hs, int32_t *hi, int32_t n, int32_t c, double s, int32_t idx) {
    for (;;) {
        int32_t l = 2 * c + 1, r = l + 1, m = c;
        double ms = s;
        int32_t mi = idx;
        if (l < n && worse(hs[l], hi[l], ms, mi)) { m = l; ms = hs[l]; mi = hi[l]; }
        if (r < n && worse(hs[r], hi[r], ms, mi)) m = r;
        if (m == c) break;
        hs[c] = hs[m]; hi[c] = hi[m];
        c = m;
    }
    hs[c] = s; hi[c] = idx;
}

void et_topk_push(et_topk *h, double s, int32_t idx) {
    if (s != s) s = -INFINITY;
    double *hs = h->s;
    int32_t *hi = h->i;
    if (h->n < h->k) { /* not full: sift up */
        int32_t c = h->n++;
        while (c > 0) {
            int32_t p = (c - 1) / 2;
            if (!worse(s, idx, hs[p], hi[p])) break;
            hs[c] = hs[p]; hi[c] = hi[p];
            c = p;
        }
        hs[c] = s; hi[c] = idx;
        return;
    }
    if (h->k == 0 || !worse(hs[0], hi[0], s, idx)) return; /* not better than the worst kept */
    sift_down(hs, hi, h->n, 0, s, idx);
}

int32_t et_topk_take(et_topk *h, int32_t width, int32_t *out_idx, float *out_f32, double *out_f64) {
    double *hs = h->s;
    int32_t *hi = h->i, n = h->n;
    /* heap sort in place: the worst goes to the back each round, leaving hs/hi[0..n) best-first */
    for (int32_t end = n - 1; end > 0; end--) {
        double s = hs[0];
        int32_t i = hi[0];
        sift_down(hs, hi, end, 0, hs[end], hi[end]);
        hs[end] = s; hi[end] = i;
    }
    for (int32_t r = 0; r < width; r++) { /* forward copy: safe when out_* alias hs / hi */
        int ok = r < n;
        if (out_idx) out_idx[r] = ok ? hi[r] : -1;
        if (out_f32) out_f32[r] = ok ? (float)hs[r] : -INFINITY;
        if (out_f64) out_f64[r] = ok ? hs[r] : -INFINITY;
    }
    h->n = 0;
    return n;
}
