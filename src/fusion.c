/* fusion.c - see fusion.h */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "fusion.h"
#include "json.h"
#include "kernels.h"
#include "metrics.h"
#include "mine.h"
#include "rng.h"

et_fusion et_fusion_default(void) {
    et_fusion f = {ET_FUSION_CONVEX, ET_FUSION_MINMAX, ET_FUSION_DEFAULT_ALPHA, 60.0, 50, ET_FUSION_DEPTH};
    return f;
}

int et_fusion_transfers(const et_fusion *f) { return !(f->kind == ET_FUSION_CONVEX && f->norm == ET_FUSION_TMM); }

const char *et_fusion_kind_name(et_fusion_kind k) {
    switch (k) {
    case ET_FUSION_DENSE: return "dense";
    case ET_FUSION_BM25: return "bm25";
    case ET_FUSION_CONVEX: return "convex";
    case ET_FUSION_RRF: return "rrf";
    case ET_FUSION_RERANK: return "rerank";
    }
    return "?";
}

const char *et_fusion_norm_name(et_fusion_norm n) { return n == ET_FUSION_ZSCORE ? "zscore" : n == ET_FUSION_TMM ? "tmm" : "minmax"; }

const char *et_fusion_describe(const et_fusion *f, char *buf, size_t cap) {
    switch (f->kind) {
    case ET_FUSION_CONVEX: snprintf(buf, cap, "convex %s, model weight %.2f", et_fusion_norm_name(f->norm), f->alpha); break;
    case ET_FUSION_RRF: snprintf(buf, cap, "rrf k %g, model weight %.2f", f->rrf_k, f->alpha); break;
    case ET_FUSION_RERANK: snprintf(buf, cap, "rerank BM25 top %d, %s, model weight %.2f", f->top_n, et_fusion_norm_name(f->norm), f->alpha); break;
    default: snprintf(buf, cap, "%s only", et_fusion_kind_name(f->kind)); break;
    }
    return buf;
}

et_status et_fusion_check(const et_fusion *f, et_error *err) {
    if ((int)f->kind < ET_FUSION_DENSE || (int)f->kind > ET_FUSION_RERANK) return et_fail(err, ET_ERR_ARG, "fusion: field 'kind': unknown kind %d", (int)f->kind);
    if (f->norm != ET_FUSION_MINMAX && f->norm != ET_FUSION_ZSCORE && f->norm != ET_FUSION_TMM) return et_fail(err, ET_ERR_ARG, "fusion: field 'norm': unknown normalisation %d", (int)f->norm);
    if (!(f->alpha >= 0 && f->alpha <= 1)) return et_fail(err, ET_ERR_ARG, "fusion: field 'alpha': must be in [0, 1] (got %g)", f->alpha);
    if (f->kind == ET_FUSION_RRF && !(f->rrf_k > 0 && f->rrf_k <= 1e6)) return et_fail(err, ET_ERR_ARG, "fusion: field 'k': must be in (0, 1e6] (got %g)", f->rrf_k);
    if (f->depth < 1 || f->depth > 100000) return et_fail(err, ET_ERR_ARG, "fusion: field 'depth': must be in [1, 100000] (got %d)", f->depth);
    if (f->kind == ET_FUSION_RERANK && (f->top_n < 1 || f->top_n > f->depth))
        return et_fail(err, ET_ERR_ARG, "fusion: field 'top_n': must be in [1, depth = %d] (got %d)", f->depth, f->top_n);
    return ET_OK;
}

et_status et_fusion_parse(const char *spec, et_fusion *out, et_error *err) {
    et_fusion f = et_fusion_default();
    char buf[256];
    if (!spec || strlen(spec) >= sizeof buf) return et_fail(err, ET_ERR_ARG, "fusion '%.40s': expected KIND[:NAME=VALUE,...]", spec ? spec : "");
    strcpy(buf, spec);
    char *colon = strchr(buf, ':');
    if (colon) *colon = 0;
    int found = 0;
    for (int k = ET_FUSION_DENSE; k <= ET_FUSION_RERANK; k++)
        if (!strcmp(buf, et_fusion_kind_name((et_fusion_kind)k))) { f.kind = (et_fusion_kind)k; found = 1; }
    if (!found) return et_fail(err, ET_ERR_ARG, "fusion '%s': unknown kind '%s' (dense, bm25, convex, rrf, rerank)", spec, buf);
    for (char *p = colon ? colon + 1 : NULL, *next; p && *p; p = next) {
        next = strchr(p, ',');
        if (next) *next++ = 0;
        char *eq = strchr(p, '=');
        if (!eq) return et_fail(err, ET_ERR_ARG, "fusion '%s': '%s' is not NAME=VALUE", spec, p);
        *eq = 0;
        const char *v = eq + 1;
        char *end;
        double x = strtod(v, &end);
        int num = *v && !*end;
        if (!strcmp(p, "norm")) {
            if (!strcmp(v, "minmax")) f.norm = ET_FUSION_MINMAX;
            else if (!strcmp(v, "zscore")) f.norm = ET_FUSION_ZSCORE;
            else if (!strcmp(v, "tmm")) f.norm = ET_FUSION_TMM;
            else return et_fail(err, ET_ERR_ARG, "fusion '%s': norm must be minmax, zscore or tmm (got '%s')", spec, v);
        } else if (!num) return et_fail(err, ET_ERR_ARG, "fusion '%s': %s: expected a number (got '%s')", spec, p, v);
        else if (!strcmp(p, "alpha")) f.alpha = x;
        else if (!strcmp(p, "k")) f.rrf_k = x;
        else if (!strcmp(p, "top_n") && x == floor(x) && fabs(x) < 1e9) f.top_n = (int32_t)x;
        else if (!strcmp(p, "depth") && x == floor(x) && fabs(x) < 1e9) f.depth = (int32_t)x;
        else return et_fail(err, ET_ERR_ARG, "fusion '%s': unknown field or non-integer value '%s=%s' (alpha, norm, k, top_n, depth)", spec, p, v);
    }
    et_status s = et_fusion_check(&f, err);
    if (s) return s;
    *out = f;
    return ET_OK;
}

/* ------------------------------------------------------------------ candidates */

void et_fusion_cands_free(et_fusion_cands *c) {
    free(c->off); free(c->doc); free(c->dense); free(c->bm25); free(c->drank); free(c->brank);
    memset(c, 0, sizeof *c);
}

#define CANDS_QCHUNK 1024 /* queries per block of et_mine_topk / BM25 search (= et_mine_topk's own query block) */

et_status et_fusion_cands_build(et_pool *pool, const float *Q, const float *D, int32_t nq, int32_t nd, int32_t dim,
                                const et_bm25 *bm, const char *const *queries, int32_t depth, const et_progress *pr,
                                et_fusion_cands *out, et_error *err) {
    memset(out, 0, sizeof *out);
    if (nq < 0 || nd < 0 || depth < 1 || (!Q) != (!D) || (Q && dim <= 0) || (!Q && !bm) || (bm && !queries))
        return et_fail(err, ET_ERR_ARG, "fusion candidates: bad arguments (nq %d, nd %d, depth %d)", nq, nd, depth);
    if (bm && et_bm25_ndocs(bm) != nd)
        return et_fail(err, ET_ERR_ARG, "fusion candidates: the BM25 index has %d docs, the embeddings %d", et_bm25_ndocs(bm), nd);
    int32_t K = depth < nd ? depth : nd;
    int32_t QC = nq < CANDS_QCHUNK ? (nq ? nq : 1) : CANDS_QCHUNK;
    size_t rows = (size_t)QC * (size_t)(K ? K : 1); /* one block of queries */
    int32_t *di = malloc(sizeof(int32_t) * rows), *bi = malloc(sizeof(int32_t) * rows);
    float *dsc = malloc(sizeof(float) * rows);
    double *bsc = malloc(sizeof(double) * rows);
    int32_t *mark = malloc(sizeof(int32_t) * (size_t)(nd ? nd : 1)); /* doc -> slot in the current query's pool, -1 */
    size_t cap = 2 * (size_t)(nq ? nq : 1) * (size_t)(K ? K : 1);
    out->off = malloc(sizeof(int64_t) * ((size_t)nq + 1));
    out->doc = malloc(sizeof(int32_t) * cap);
    out->dense = malloc(sizeof(double) * cap);
    out->bm25 = malloc(sizeof(double) * cap);
    out->drank = malloc(sizeof(int32_t) * cap);
    out->brank = malloc(sizeof(int32_t) * cap);
    et_status s = ET_OK;
    if (!di || !bi || !dsc || !bsc || !mark || !out->off || !out->doc || !out->dense || !out->bm25 || !out->drank || !out->brank) {
        s = et_fail(err, ET_ERR_NOMEM, "fusion candidates: out of memory (%d queries x %d)", nq, K);
        goto done;
    }
    out->nq = nq;
    out->depth = depth;
    for (int32_t i = 0; i < nd; i++) mark[i] = -1;
    int64_t m = 0;
    if (et_progress_report(pr, 0, (size_t)nq)) { s = et_fail(err, ET_ERR_CANCELLED, "fusion candidates: cancelled"); goto done; }
    for (int32_t q0 = 0; q0 < nq; q0 += QC) {
        int32_t nb = nq - q0 < QC ? nq - q0 : QC;
        if (K > 0 && Q && (s = et_mine_topk(pool, Q + (int64_t)q0 * dim, D, nb, nd, dim, K, 0, 0, di, dsc, err))) goto done;
        if (K > 0 && bm && (s = et_bm25_search_batch(pool, bm, queries + q0, nb, K, bi, bsc, err))) goto done;
        for (int32_t qi = 0; qi < nb; qi++) {
            int32_t q = q0 + qi;
            out->off[q] = m;
            int64_t m0 = m;
            for (int32_t r = 0; Q && r < K; r++) {
                int32_t doc = di[(int64_t)qi * K + r];
                if (doc < 0) break;
                mark[doc] = (int32_t)(m - m0);
                out->doc[m] = doc;
                out->dense[m] = dsc[(int64_t)qi * K + r];
                out->bm25[m] = 0;
                out->drank[m] = r + 1;
                out->brank[m++] = 0;
            }
            for (int32_t r = 0; bm && r < K; r++) {
                int32_t doc = bi[(int64_t)qi * K + r];
                double sc = bsc[(int64_t)qi * K + r];
                if (doc < 0 || !(sc > 0)) break; /* the list ends where the query's terms do */
                int64_t u = mark[doc] >= 0 ? m0 + mark[doc] : -1;
                if (u < 0) {
                    u = m++;
                    mark[doc] = (int32_t)(u - m0);
                    out->doc[u] = doc;
                    out->dense[u] = Q ? et_dot(Q + (int64_t)q * dim, D + (int64_t)doc * dim, dim) : 0;
                    out->drank[u] = 0;
                }
                out->bm25[u] = sc;
                out->brank[u] = r + 1;
            }
            /* the model's docs that are not in BM25's list still get their exact BM25 score */
            for (int64_t u = m0; bm && u < m; u++) {
                if (out->brank[u]) continue;
                const char *qt = queries[q];
                if ((s = et_bm25_score_pairs(bm, &qt, &out->doc[u], 1, &out->bm25[u], err))) goto done;
            }
            for (int64_t u = m0; u < m; u++) mark[out->doc[u]] = -1;
        }
        if (et_progress_report(pr, (size_t)(q0 + nb), (size_t)nq)) {
            s = et_fail(err, ET_ERR_CANCELLED, "fusion candidates: cancelled (%d of %d queries)", q0 + nb, nq);
            goto done;
        }
    }
    out->off[nq] = m;
done:
    free(di); free(bi); free(dsc); free(bsc); free(mark);
    if (s) et_fusion_cands_free(out);
    return s;
}

/* ------------------------------------------------------------------ ranking */

typedef struct { int group; double score; int32_t doc; double show; } fkey; /* show: the score reported */

static int cmp_fkey(const void *a, const void *b) {
    const fkey *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->doc > y->doc) - (x->doc < y->doc);
}

/* normalise v over the entries with sel[i] (sel NULL = all) into o (o[i] = 0 for the others);
 * tmin = the score's theoretical minimum (tmm: (x - tmin) / (max - tmin)) */
static void normalise(const double *v, const int *sel, int64_t n, et_fusion_norm norm, double tmin, double *o) {
    double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) {
        if (sel && !sel[i]) continue;
        if (v[i] < mn) mn = v[i];
        if (v[i] > mx) mx = v[i];
        sum += v[i];
        cnt++;
    }
    double mean = cnt ? sum / cnt : 0;
    for (int64_t i = 0; i < n; i++)
        if (!sel || sel[i]) sq += (v[i] - mean) * (v[i] - mean);
    double sd = cnt ? sqrt(sq / cnt) : 0;
    for (int64_t i = 0; i < n; i++) {
        if (sel && !sel[i]) { o[i] = 0; continue; }
        if (norm == ET_FUSION_MINMAX) o[i] = mx > mn ? (v[i] - mn) / (mx - mn) : 0;
        else if (norm == ET_FUSION_TMM) o[i] = mx > tmin ? (v[i] - tmin) / (mx - tmin) : 0;
        else o[i] = sd > 1e-12 * (fabs(mean) + 1e-30) && sd > 0 ? (v[i] - mean) / sd : 0;
    }
}

/* query q's keys, unsorted, into key[] (scratch [n]) with scratch buffers nd_/nb_/sel_ [n]; returns n */
static int64_t fuse_keys_unsorted(const et_fusion *f, const et_fusion_cands *c, int32_t q, fkey *key, double *nd_, double *nb_,
                                  int *sel) {
    int64_t a = c->off[q], n = c->off[q + 1] - a;
    const double *dn = c->dense + a, *bs = c->bm25 + a;
    const int32_t *dr = c->drank + a, *br = c->brank + a, *doc = c->doc + a;
    double al = f->alpha;
    switch (f->kind) {
    case ET_FUSION_DENSE: /* the system's own list order first (exactly et_mine_topk's), then by cosine */
        for (int64_t i = 0; i < n; i++) key[i] = dr[i] > 0 ? (fkey){0, -dr[i], doc[i], dn[i]} : (fkey){1, dn[i], doc[i], dn[i]};
        break;
    case ET_FUSION_BM25: /* BM25's list (et_bm25_search order), then other matching docs, then by cosine */
        for (int64_t i = 0; i < n; i++)
            key[i] = br[i] > 0 ? (fkey){0, -br[i], doc[i], bs[i]} : bs[i] > 0 ? (fkey){1, bs[i], doc[i], bs[i]} : (fkey){2, dn[i], doc[i], bs[i]};
        break;
    case ET_FUSION_CONVEX:
        normalise(dn, NULL, n, f->norm, -1.0, nd_);
        normalise(bs, NULL, n, f->norm, 0.0, nb_);
        for (int64_t i = 0; i < n; i++) key[i] = (fkey){0, al * nd_[i] + (1 - al) * nb_[i], doc[i], 0};
        break;
    case ET_FUSION_RRF:
        for (int64_t i = 0; i < n; i++) {
            double s = (dr[i] > 0 ? al / (f->rrf_k + dr[i]) : 0) + (br[i] > 0 ? (1 - al) / (f->rrf_k + br[i]) : 0);
            key[i] = (fkey){0, s, doc[i], 0};
        }
        break;
    case ET_FUSION_RERANK:
        for (int64_t i = 0; i < n; i++) sel[i] = br[i] > 0 && br[i] <= f->top_n;
        normalise(dn, sel, n, f->norm, -1.0, nd_);
        normalise(bs, sel, n, f->norm, 0.0, nb_);
        for (int64_t i = 0; i < n; i++)
            key[i] = sel[i] ? (fkey){0, al * nd_[i] + (1 - al) * nb_[i], doc[i], 0}
                   : bs[i] > 0 ? (fkey){1, bs[i], doc[i], 0} : (fkey){2, dn[i], doc[i], 0};
        break;
    }
    for (int64_t i = 0; i < n; i++) {
        if (isnan(key[i].score)) key[i].score = -INFINITY;
        if (f->kind >= ET_FUSION_CONVEX) key[i].show = key[i].score;
    }
    return n;
}

/* rank query q into key[] (scratch [n]) with scratch buffers nd_/nb_/sel_ [n]; returns n */
static int64_t fuse_keys(const et_fusion *f, const et_fusion_cands *c, int32_t q, fkey *key, double *nd_, double *nb_, int *sel) {
    int64_t n = fuse_keys_unsorted(f, c, q, key, nd_, nb_, sel);
    qsort(key, (size_t)n, sizeof *key, cmp_fkey);
    return n;
}

#define TOP_MAX 16
/* The first k (<= TOP_MAX) docs of query q's fused ranking into out_idx[k] (-1 past the pool): what fuse_keys + emit
 * give, by selection instead of a full sort. cmp_fkey is a strict total order over a pool (a doc is in it once, NaN
 * scores are -INFINITY), so the k smallest keys and their order are exactly the sort's first k. */
static void fuse_top(const et_fusion *f, const et_fusion_cands *c, int32_t q, int32_t k, fkey *key, double *nd_,
                     double *nb_, int *sel, int32_t *out_idx) {
    int64_t n = fuse_keys_unsorted(f, c, q, key, nd_, nb_, sel);
    fkey top[TOP_MAX];
    int32_t nt = 0;
    for (int64_t i = 0; i < n; i++) {
        if (nt == k && cmp_fkey(&key[i], &top[k - 1]) >= 0) continue;
        int32_t j = nt < k ? nt++ : k - 1; /* insertion: shift the larger keys right */
        while (j > 0 && cmp_fkey(&key[i], &top[j - 1]) < 0) { top[j] = top[j - 1]; j--; }
        top[j] = key[i];
    }
    for (int32_t j = 0; j < k; j++) out_idx[j] = j < nt ? top[j].doc : -1;
}

typedef struct { fkey *key; double *a, *b; int *sel; } scratch;

static int scratch_alloc(scratch *s, int64_t n) {
    if (n < 1) n = 1;
    s->key = malloc(sizeof(fkey) * (size_t)n);
    s->a = malloc(sizeof(double) * (size_t)n);
    s->b = malloc(sizeof(double) * (size_t)n);
    s->sel = malloc(sizeof(int) * (size_t)n);
    return s->key && s->a && s->b && s->sel;
}
static void scratch_free(scratch *s) { free(s->key); free(s->a); free(s->b); free(s->sel); }

static int64_t max_pool(const et_fusion_cands *c) {
    int64_t mx = 1;
    for (int32_t q = 0; q < c->nq; q++) if (c->off[q + 1] - c->off[q] > mx) mx = c->off[q + 1] - c->off[q];
    return mx;
}

static void emit(const fkey *key, int64_t n, int32_t k, int32_t *out_idx, double *out_score) {
    for (int32_t j = 0; j < k; j++) {
        out_idx[j] = j < n ? key[j].doc : -1;
        if (out_score) out_score[j] = j < n ? key[j].show : -INFINITY;
    }
}

et_status et_fusion_rank(const et_fusion *f, const et_fusion_cands *c, int32_t q, int32_t k, int32_t *out_idx,
                         double *out_score, et_error *err) {
    et_status s = et_fusion_check(f, err);
    if (s) return s;
    if (q < 0 || q >= c->nq || k < 0) return et_fail(err, ET_ERR_ARG, "fusion: query %d of %d, k %d", q, c->nq, k);
    scratch sc = {0};
    int64_t n = c->off[q + 1] - c->off[q];
    if (!scratch_alloc(&sc, n)) { scratch_free(&sc); return et_fail(err, ET_ERR_NOMEM, "fusion: out of memory"); }
    fuse_keys(f, c, q, sc.key, sc.a, sc.b, sc.sel);
    emit(sc.key, n, k, out_idx, out_score);
    scratch_free(&sc);
    return ET_OK;
}

typedef struct {
    const et_fusion *f;
    const et_fusion_cands *c;
    int32_t k;
    int32_t *out;
    scratch *sc; /* [threads] */
    int ntasks;
} rank_ctx;

static void rank_task(void *vc, int task, int thread) {
    rank_ctx *r = vc;
    int32_t a = (int32_t)((int64_t)r->c->nq * task / r->ntasks), b = (int32_t)((int64_t)r->c->nq * (task + 1) / r->ntasks);
    scratch *sc = &r->sc[thread];
    for (int32_t q = a; q < b; q++) {
        int64_t n = fuse_keys(r->f, r->c, q, sc->key, sc->a, sc->b, sc->sel);
        emit(sc->key, n, r->k, r->out + (int64_t)q * r->k, NULL);
    }
}

et_status et_fusion_rank_all(et_pool *pool, const et_fusion *f, const et_fusion_cands *c, int32_t k, int32_t *out_idx,
                             et_error *err) {
    et_status s = et_fusion_check(f, err);
    if (s) return s;
    if (k < 0) return et_fail(err, ET_ERR_ARG, "fusion: k %d", k);
    if (!c->nq) return ET_OK;
    int nth = et_pool_size(pool);
    scratch *sc = calloc((size_t)nth, sizeof *sc);
    int64_t mx = max_pool(c);
    int ok = sc != NULL;
    for (int t = 0; ok && t < nth; t++) ok = scratch_alloc(&sc[t], mx);
    if (!ok) s = et_fail(err, ET_ERR_NOMEM, "fusion: out of memory");
    else {
        rank_ctx r = {f, c, k, out_idx, sc, c->nq < nth * 8 ? c->nq : nth * 8};
        et_pool_run(pool, rank_task, &r, r.ntasks);
    }
    for (int t = 0; sc && t < nth; t++) scratch_free(&sc[t]);
    free(sc);
    return s;
}

/* ------------------------------------------------------------------ learning */

void et_fusion_fit_opts_default(et_fusion_fit_opts *o) {
    o->folds = 5;
    o->seed = 20240917ull;
    o->se_rule = 1.0;
    o->prior = et_fusion_default();
    o->pool = NULL;
    o->progress = (et_progress){NULL, NULL};
}

typedef struct { et_fusion f; int family; } gpoint;

/* the grid, families in preference order (see fusion.h) */
static int make_grid(int32_t depth, gpoint *g) {
    int n = 0;
    static const et_fusion_norm norms[3] = {ET_FUSION_MINMAX, ET_FUSION_TMM, ET_FUSION_ZSCORE};
    for (int nm = 0; nm < 3; nm++)
        for (int a = 0; a <= 20; a++) g[n++] = (gpoint){{ET_FUSION_CONVEX, norms[nm], a / 20.0, 60, 50, depth}, nm};
    static const double ks[] = {5, 10, 20, 40, 60, 100};
    for (int ki = 0; ki < 6; ki++)
        for (int a = 0; a <= 10; a++) g[n++] = (gpoint){{ET_FUSION_RRF, ET_FUSION_MINMAX, a / 10.0, ks[ki], 50, depth}, 3};
    static const int tn[] = {10, 20, 50, 100};
    for (int ti = 0; ti < 4; ti++) {
        if (tn[ti] > depth) continue;
        for (int a = 0; a <= 10; a++) g[n++] = (gpoint){{ET_FUSION_RERANK, ET_FUSION_MINMAX, a / 10.0, 60, tn[ti], depth}, 4};
    }
    return n;
}
#define GRID_MAX (63 + 66 + 44)

int et_fusion_grid(int32_t depth, et_fusion *out, int *family, int cap) {
    gpoint g[GRID_MAX];
    int n = make_grid(depth, g);
    for (int i = 0; i < n && i < cap; i++) {
        if (out) out[i] = g[i].f;
        if (family) family[i] = g[i].family;
    }
    return n;
}

/* the family of a fusion (0 convex-minmax, 1 convex-tmm, 2 convex-zscore, 3 rrf, 4 rerank; dense/bm25 = convex-minmax) */
static int family_of(const et_fusion *f) {
    if (f->kind == ET_FUSION_RRF) return 3;
    if (f->kind == ET_FUSION_RERANK) return 4;
    if (f->kind == ET_FUSION_CONVEX) return f->norm == ET_FUSION_TMM ? 1 : f->norm == ET_FUSION_ZSCORE ? 2 : 0;
    return 0;
}

/* lexicographic preference key: smaller = preferred when the data cannot tell. In the prior's family: the point nearest
 * the prior (weight, then k / top_n); in convex-minmax otherwise: nearest the default weight; elsewhere the most
 * BM25-leaning (smaller weight, then larger k / smaller top_n). */
static void prior_key(const gpoint *p, const et_fusion *prior, double key[3]) {
    key[0] = key[1] = key[2] = 0;
    int pf = family_of(prior);
    double pa = prior->kind == ET_FUSION_DENSE ? 1 : prior->kind == ET_FUSION_BM25 ? 0 : prior->alpha;
    if (p->family == pf) {
        key[0] = fabs(p->f.alpha - pa);
        key[1] = p->family == 3 ? fabs(p->f.rrf_k - prior->rrf_k) : p->family == 4 ? fabs((double)(p->f.top_n - prior->top_n)) : 0;
        key[2] = p->f.alpha;
    } else if (p->family == 0) {
        key[0] = fabs(p->f.alpha - ET_FUSION_DEFAULT_ALPHA);
        key[1] = p->f.alpha;
    } else if (p->family == 3) {
        key[0] = p->f.alpha;
        key[1] = -p->f.rrf_k;
    } else if (p->family == 4) {
        key[0] = p->f.alpha;
        key[1] = p->f.top_n;
    } else key[0] = p->f.alpha;
}

static int key_less(const double *a, const double *b) {
    for (int i = 0; i < 3; i++) {
        if (a[i] < b[i] - 1e-12) return 1;
        if (a[i] > b[i] + 1e-12) return 0;
    }
    return 0;
}

/* mean and standard error of (x[q] - y[q]) over the queries with in[q] (in NULL = all) */
static void paired(const double *x, const double *y, const int *in, int32_t nq, double *mean, double *se) {
    double s = 0, ss = 0;
    int64_t n = 0;
    for (int32_t q = 0; q < nq; q++) if (!in || in[q]) { s += x[q] - y[q]; n++; }
    double m = n ? s / n : 0;
    for (int32_t q = 0; q < nq; q++) if (!in || in[q]) ss += (x[q] - y[q] - m) * (x[q] - y[q] - m);
    *mean = m;
    *se = n > 1 ? sqrt(ss / (n - 1) / n) : 0;
}

double et_fusion_paired_gain(const double *x, const double *y, int32_t n, double *se) {
    double d, e;
    paired(x, y, NULL, n, &d, &e);
    if (se) *se = e;
    return n > 0 ? d : NAN;
}

int et_fusion_gain_clear(double gain, double se, double se_rule) { return gain > se_rule * se + 1e-12; }

static double mean_in(const double *x, const int *in, int32_t nq) {
    double s = 0;
    int64_t n = 0;
    for (int32_t q = 0; q < nq; q++) if (!in || in[q]) { s += x[q]; n++; }
    return n ? s / n : NAN;
}

/* select within `family` on the queries with in[q]: index into the grid */
static int select_in(const gpoint *g, int ng, int family, const double *M, int32_t nq, const int *in, double se_rule,
                     const et_fusion *prior) {
    int best = -1;
    double bm = -INFINITY;
    for (int i = 0; i < ng; i++) {
        if (g[i].family != family) continue;
        double m = mean_in(M + (int64_t)i * nq, in, nq);
        if (m > bm + 1e-12) { bm = m; best = i; }
    }
    if (best < 0) return -1;
    int pick = best;
    double pk[3];
    prior_key(&g[best], prior, pk);
    for (int i = 0; i < ng; i++) {
        if (g[i].family != family || i == best) continue;
        double d, se;
        paired(M + (int64_t)i * nq, M + (int64_t)best * nq, in, nq, &d, &se);
        if (d < -(se_rule * se) - 1e-12) continue;
        double k[3];
        prior_key(&g[i], prior, k);
        if (key_less(k, pk)) { pick = i; memcpy(pk, k, sizeof pk); }
    }
    return pick;
}

static void ndcg_of(const et_fusion *f, const et_fusion_cands *c, const et_qrel *qrels, const int64_t *qoff, scratch *sc,
                    double *out) {
    int32_t top[10];
    for (int32_t q = 0; q < c->nq; q++) {
        fuse_top(f, c, q, 10, sc->key, sc->a, sc->b, sc->sel, top);
        out[q] = et_ndcg_at_k(top, 10, qrels + qoff[q], qoff[q + 1] - qoff[q], 10);
    }
}

/* nDCG@10 of every query for fusions fl[0..n): M[i * nq + q]; one task per fusion (results depend on the task only) */
typedef struct {
    const et_fusion *fl;
    const et_fusion_cands *c;
    const et_qrel *qrels;
    const int64_t *qoff;
    scratch *sc; /* [threads] */
    double *M;
    int i0;
} grid_ctx;

static void grid_task(void *vc, int task, int thread) {
    grid_ctx *g = vc;
    int i = g->i0 + task;
    ndcg_of(&g->fl[i], g->c, g->qrels, g->qoff, &g->sc[thread], g->M + (int64_t)i * g->c->nq);
}

/* fl[0..n) on all queries into M, on the pool, reporting progress (fusions done of n) between blocks of fusions */
static et_status ndcg_grid(et_pool *pool, const et_fusion *fl, int n, const et_fusion_cands *c, const et_qrel *qrels,
                           const int64_t *qoff, const et_progress *pr, double *M, et_error *err) {
    int nth = et_pool_size(pool);
    scratch *sc = calloc((size_t)nth, sizeof *sc);
    int ok = sc != NULL;
    for (int t = 0; ok && t < nth; t++) ok = scratch_alloc(&sc[t], max_pool(c));
    et_status s = ok ? ET_OK : et_fail(err, ET_ERR_NOMEM, "fusion fit: out of memory (%d queries)", c->nq);
    /* a block of fusions per pool run: enough tasks to keep the threads busy, small enough for a progress line */
    int blk = 4 * nth > 8 ? 4 * nth : 8;
    if (!s && et_progress_report(pr, 0, (size_t)n)) s = et_fail(err, ET_ERR_CANCELLED, "fusion fit: cancelled");
    for (int i0 = 0; !s && i0 < n; i0 += blk) {
        int nb = n - i0 < blk ? n - i0 : blk;
        grid_ctx g = {fl, c, qrels, qoff, sc, M, i0};
        et_pool_run(pool, grid_task, &g, nb);
        if (et_progress_report(pr, (size_t)(i0 + nb), (size_t)n))
            s = et_fail(err, ET_ERR_CANCELLED, "fusion fit: cancelled (%d of %d grid points)", i0 + nb, n);
    }
    for (int t = 0; sc && t < nth; t++) scratch_free(&sc[t]);
    free(sc);
    return s;
}

et_status et_fusion_fit(const et_fusion_cands *c, const et_qrel *qrels, const int64_t *qoff,
                        const et_fusion_fit_opts *o, et_fusion *chosen, et_fusion_fit_report *rep, et_error *err) {
    et_fusion_fit_opts oo;
    if (!o) { et_fusion_fit_opts_default(&oo); o = &oo; }
    et_status s = et_fusion_check(&o->prior, err);
    if (s) return s;
    if (o->folds < 2 || !(o->se_rule >= 0)) return et_fail(err, ET_ERR_ARG, "fusion fit: folds must be >= 2 and se_rule >= 0 (got %d, %g)", o->folds, o->se_rule);
    et_fusion_fit_report R;
    memset(&R, 0, sizeof R);
    int32_t nq = c->nq;
    R.nqueries = nq;
    R.cv_ndcg10 = R.gain_over_prior = R.gain_se = NAN;
    gpoint g[GRID_MAX];
    int ng = make_grid(c->depth, g);
    double *M = malloc(sizeof(double) * (size_t)(ng + 3) * (size_t)(nq ? nq : 1));
    double *cv = malloc(sizeof(double) * ET_FUSION_NFAMILIES * (size_t)(nq ? nq : 1));
    int *in = malloc(sizeof(int) * (size_t)(nq ? nq : 1));
    int32_t *fold = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1));
    scratch sc = {0};
    if (!M || !cv || !in || !fold || !scratch_alloc(&sc, max_pool(c))) {
        free(M); free(cv); free(in); free(fold); scratch_free(&sc);
        return et_fail(err, ET_ERR_NOMEM, "fusion fit: out of memory (%d queries)", nq);
    }
    double *Md = M + (int64_t)ng * nq, *Mb = Md + nq, *Mp = Mb + nq;
    et_fusion fd = {ET_FUSION_DENSE, ET_FUSION_MINMAX, 1, 60, 50, c->depth}, fb = fd, fp = o->prior;
    fb.kind = ET_FUSION_BM25;
    fp.depth = c->depth;
    if (fp.kind == ET_FUSION_RERANK && fp.top_n > fp.depth) fp.top_n = fp.depth;
    {   /* every grid point, then the dense and BM25 rules and the prior: rows 0..ng+2 of M */
        et_fusion fl[GRID_MAX + 3];
        for (int i = 0; i < ng; i++) fl[i] = g[i].f;
        fl[ng] = fd; fl[ng + 1] = fb; fl[ng + 2] = fp;
        if ((s = ndcg_grid(o->pool, fl, ng + 3, c, qrels, qoff, &o->progress, M, err))) goto done;
    }
    R.dense_ndcg10 = mean_in(Md, NULL, nq);
    R.bm25_ndcg10 = mean_in(Mb, NULL, nq);
    R.prior_ndcg10 = mean_in(Mp, NULL, nq);
    R.chosen = fp;
    if (nq >= ET_FUSION_MIN_QUERIES) {
        int K = o->folds < nq ? o->folds : nq;
        R.folds = K;
        /* deal a seeded shuffle of the queries into K folds */
        int32_t *perm = fold; /* reuse: perm first, then fold ids */
        for (int32_t q = 0; q < nq; q++) perm[q] = q;
        et_rng r;
        et_rng_seed(&r, o->seed);
        for (int32_t q = nq - 1; q > 0; q--) {
            int32_t j = (int32_t)et_rng_below(&r, (uint64_t)q + 1), t = perm[q];
            perm[q] = perm[j]; perm[j] = t;
        }
        int32_t *fid = malloc(sizeof(int32_t) * (size_t)nq);
        if (!fid) { s = et_fail(err, ET_ERR_NOMEM, "fusion fit: out of memory"); goto done; }
        for (int32_t i = 0; i < nq; i++) fid[perm[i]] = i % K;
        memcpy(fold, fid, sizeof(int32_t) * (size_t)nq);
        free(fid);
        for (int fam = 0; fam < ET_FUSION_NFAMILIES; fam++) {
            double *v = cv + (int64_t)fam * nq;
            for (int k = 0; k < K; k++) {
                for (int32_t q = 0; q < nq; q++) in[q] = fold[q] != k;
                int sel = select_in(g, ng, fam, M, nq, in, o->se_rule, &fp);
                for (int32_t q = 0; q < nq; q++) if (fold[q] == k) v[q] = sel >= 0 ? M[(int64_t)sel * nq + q] : Mb[q];
            }
            int all = select_in(g, ng, fam, M, nq, NULL, o->se_rule, &fp);
            R.family[fam].cv_ndcg10 = mean_in(v, NULL, nq);
            if (all >= 0) {
                R.family[fam].best = g[all].f;
                R.family[fam].train_ndcg10 = mean_in(M + (int64_t)all * nq, NULL, nq);
            }
        }
        int bf = 0;
        for (int fam = 1; fam < ET_FUSION_NFAMILIES; fam++)
            if (R.family[fam].cv_ndcg10 > R.family[bf].cv_ndcg10 + 1e-12) bf = fam;
        /* within se_rule standard errors of the best family: the prior's family first, then the simpler ones */
        int pick = bf, pf = family_of(&fp), order[ET_FUSION_NFAMILIES + 1], no = 0;
        order[no++] = pf;
        for (int fam = 0; fam < ET_FUSION_NFAMILIES; fam++) if (fam != pf) order[no++] = fam;
        for (int u = 0; u < no && order[u] != bf; u++) {
            int fam = order[u];
            if (fam > bf && fam != pf) continue; /* only simpler families, or the prior's */
            double d, se;
            paired(cv + (int64_t)fam * nq, cv + (int64_t)bf * nq, NULL, nq, &d, &se);
            if (d >= -(o->se_rule * se) - 1e-12) { pick = fam; break; }
        }
        R.chosen = R.family[pick].best;
        R.cv_ndcg10 = R.family[pick].cv_ndcg10;
        R.learned = 1;
        /* the guard: the prior is a fixed rule (no selection on these queries, so its nDCG@10 is not optimistic);
         * the chosen family's cross-validated nDCG@10 must beat it by more than se_rule standard errors */
        R.gain_over_prior = et_fusion_paired_gain(cv + (int64_t)pick * nq, Mp, nq, &R.gain_se);
        if (!et_fusion_gain_clear(R.gain_over_prior, R.gain_se, o->se_rule)) {
            R.chosen = fp;
            R.cv_ndcg10 = R.prior_ndcg10;
            R.prior_kept = 1;
        }
    }
    {
        double *tmp = cv; /* the chosen fusion on all queries */
        ndcg_of(&R.chosen, c, qrels, qoff, &sc, tmp);
        R.train_ndcg10 = mean_in(tmp, NULL, nq);
    }
done:
    free(M); free(cv); free(in); free(fold);
    scratch_free(&sc);
    if (!s) {
        if (chosen) *chosen = R.chosen;
        if (rep) *rep = R;
    }
    return s;
}

/* ------------------------------------------------------------------ retrieval.json */

void et_retrieval_cfg_default(et_retrieval_cfg *r) {
    memset(r, 0, sizeof *r);
    r->mode = ET_MODE_DENSE;
    r->bm25 = (et_bm25_opts){0.9, 0.4, 0};
    r->fusion = et_fusion_default();
}

const char *et_retrieval_mode_name(et_retrieval_mode m) {
    return m == ET_MODE_HYBRID ? "hybrid" : m == ET_MODE_BM25 ? "bm25" : "dense";
}

et_status et_retrieval_mode_parse(const char *s, et_retrieval_mode *out, et_error *err) {
    if (s && !strcmp(s, "dense")) *out = ET_MODE_DENSE;
    else if (s && !strcmp(s, "bm25")) *out = ET_MODE_BM25;
    else if (s && !strcmp(s, "hybrid")) *out = ET_MODE_HYBRID;
    else return et_fail(err, ET_ERR_ARG, "mode must be dense, bm25 or hybrid (got '%s')", s ? s : "");
    return ET_OK;
}

static et_status num_field(const cJSON *o, const char *obj, const char *key, const char *name, int required,
                           double lo, double hi, double *out, et_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        if (required) return et_fail(err, ET_ERR_FORMAT, "%s: field '%s.%s' is missing", name, obj, key);
        return ET_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return et_fail(err, ET_ERR_FORMAT, "%s: field '%s.%s': expected a number in [%g, %g]", name, obj, key, lo, hi);
    *out = v->valuedouble;
    return ET_OK;
}

static et_status str_field(const cJSON *o, const char *obj, const char *key, const char *name, int required,
                           const char *const *allowed, int nallowed, int *out, et_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        if (required) return et_fail(err, ET_ERR_FORMAT, "%s: field '%s%s%s' is missing", name, obj, *obj ? "." : "", key);
        return ET_OK;
    }
    if (cJSON_IsString(v))
        for (int i = 0; i < nallowed; i++)
            if (!strcmp(v->valuestring, allowed[i])) { *out = i; return ET_OK; }
    char list[256] = "";
    for (int i = 0; i < nallowed; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s\"%s\"", i ? ", " : "", allowed[i]);
    }
    return et_fail(err, ET_ERR_FORMAT, "%s: field '%s%s%s': expected one of %s", name, obj, *obj ? "." : "", key, list);
}

et_status et_retrieval_parse(const char *text, size_t len, const char *name, et_retrieval_cfg *out, et_error *err) {
    et_retrieval_cfg r;
    et_retrieval_cfg_default(&r);
    size_t bad;
    if (!et_utf8_valid(text, len, &bad)) return et_fail(err, ET_ERR_FORMAT, "%s: invalid UTF-8 at byte %zu", name, bad + 1);
    cJSON *j = NULL;
    const char *end = NULL;
    et_status ps = et_json_parse(text, len, &j, &end);
    if (ps == ET_ERR_NOMEM) return et_fail(err, ET_ERR_NOMEM, "%s: out of memory parsing the JSON", name);
    if (ps) return et_fail(err, ET_ERR_FORMAT, "%s: not valid JSON", name);
    for (const char *e = end; e && e < text + len; e++)
        if (*e != ' ' && *e != '\n' && *e != '\r' && *e != '\t') { cJSON_Delete(j); return et_fail(err, ET_ERR_FORMAT, "%s: bytes after the JSON object", name); }
    et_status s = ET_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format"), *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(j, "bm25"), *fu = cJSON_GetObjectItemCaseSensitive(j, "fusion");
    static const char *modes[] = {"dense", "bm25", "hybrid"};
    static const char *kinds[] = {"dense", "bm25", "convex", "rrf", "rerank"};
    static const char *norms[] = {"minmax", "zscore", "tmm"};
    static const char *toks[] = {"ascii-alnum-lowercase"};
    static const char *qterms[] = {"distinct", "all"};
    if (!cJSON_IsObject(j)) { s = et_fail(err, ET_ERR_FORMAT, "%s: expected a JSON object", name); goto done; }
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "embedtune-retrieval")) {
        s = et_fail(err, ET_ERR_FORMAT, "%s: field 'format': expected \"embedtune-retrieval\"", name);
        goto done;
    }
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
        s = et_fail(err, ET_ERR_FORMAT, "%s: field 'version': expected 1 (this embedtune reads version 1)", name);
        goto done;
    }
    int mode = 0;
    if ((s = str_field(j, "", "mode", name, 1, modes, 3, &mode, err))) goto done;
    r.mode = (et_retrieval_mode)mode;
    if (bm) {
        if (!cJSON_IsObject(bm)) { s = et_fail(err, ET_ERR_FORMAT, "%s: field 'bm25': expected an object", name); goto done; }
        int t = 0, qt = 0;
        if ((s = num_field(bm, "bm25", "k1", name, 1, 0, 100, &r.bm25.k1, err)) ||
            (s = num_field(bm, "bm25", "b", name, 1, 0, 1, &r.bm25.b, err)) ||
            (s = str_field(bm, "bm25", "tokens", name, 0, toks, 1, &t, err)) ||
            (s = str_field(bm, "bm25", "query_terms", name, 0, qterms, 2, &qt, err)))
            goto done;
        r.bm25.query_tf = qt;
    } else if (r.mode != ET_MODE_DENSE) {
        s = et_fail(err, ET_ERR_FORMAT, "%s: field 'bm25' is missing (mode %s needs it)", name, modes[r.mode]);
        goto done;
    }
    if (fu) {
        if (!cJSON_IsObject(fu)) { s = et_fail(err, ET_ERR_FORMAT, "%s: field 'fusion': expected an object", name); goto done; }
        int kind = 0, norm = 0;
        double depth = ET_FUSION_DEPTH, topn = 50;
        if ((s = str_field(fu, "fusion", "kind", name, 1, kinds, 5, &kind, err))) goto done;
        r.fusion.kind = (et_fusion_kind)kind;
        int need_alpha = kind >= ET_FUSION_CONVEX;
        if ((s = str_field(fu, "fusion", "norm", name, kind == ET_FUSION_CONVEX, norms, 3, &norm, err)) ||
            (s = num_field(fu, "fusion", "alpha", name, need_alpha, 0, 1, &r.fusion.alpha, err)) ||
            (s = num_field(fu, "fusion", "k", name, kind == ET_FUSION_RRF, 1e-9, 1e6, &r.fusion.rrf_k, err)) ||
            (s = num_field(fu, "fusion", "depth", name, 0, 1, 100000, &depth, err)) ||
            (s = num_field(fu, "fusion", "top_n", name, kind == ET_FUSION_RERANK, 1, 100000, &topn, err)))
            goto done;
        if (depth != floor(depth) || topn != floor(topn)) { s = et_fail(err, ET_ERR_FORMAT, "%s: fields 'fusion.depth' and 'fusion.top_n' must be integers", name); goto done; }
        r.fusion.norm = (et_fusion_norm)norm;
        r.fusion.depth = (int32_t)depth;
        r.fusion.top_n = (int32_t)topn;
        if (kind == ET_FUSION_RERANK && r.fusion.top_n > r.fusion.depth) {
            s = et_fail(err, ET_ERR_FORMAT, "%s: field 'fusion.top_n' (%d) must not exceed 'fusion.depth' (%d)", name, r.fusion.top_n, r.fusion.depth);
            goto done;
        }
    } else if (r.mode == ET_MODE_HYBRID) {
        s = et_fail(err, ET_ERR_FORMAT, "%s: field 'fusion' is missing (mode hybrid needs it)", name);
        goto done;
    }
    if ((s = et_fusion_check(&r.fusion, err))) { et_error_prefix(err, "%s", name); goto done; }
    *out = r;
done:
    cJSON_Delete(j);
    return s;
}

et_status et_bm25_fit(et_pool *pool, const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                      const et_qrel *qrels, const int64_t *qoff, double se_rule, const et_progress *pr,
                      et_bm25_opts *chosen, et_bm25_fit_report *rep, et_error *err) {
    static const double K1[ET_BM25_FIT_NK1] = {0.5, 0.9, 1.2, 1.6, 2.0, 3.0};
    static const double B[ET_BM25_FIT_NB] = {0.2, 0.4, 0.6, 0.75, 0.9, 1.0};
    enum { NG = ET_BM25_FIT_NK1 * ET_BM25_FIT_NB };
    if (!(se_rule >= 0)) return et_fail(err, ET_ERR_ARG, "bm25 fit: se_rule must be >= 0 (got %g)", se_rule);
    et_bm25_fit_report R;
    memset(&R, 0, sizeof R);
    const et_bm25_opts dflt = {0.9, 0.4, 0};
    R.chosen = R.best = dflt;
    R.nqueries = nq;
    R.ndcg10 = R.default_ndcg10 = R.best_ndcg10 = NAN;
    size_t n = (size_t)(nq > 0 ? nq : 1);
    double *M = malloc(sizeof(double) * NG * n);
    int32_t *top = malloc(sizeof(int32_t) * 10 * n);
    if (!M || !top) { free(M); free(top); return et_fail(err, ET_ERR_NOMEM, "bm25 fit: out of memory (%d queries)", nq); }
    et_status s = ET_OK;
    int idef = -1, best = -1;
    if (nq > 0 && et_progress_report(pr, 0, NG)) s = et_fail(err, ET_ERR_CANCELLED, "bm25 fit: cancelled");
    for (int i = 0; i < NG && !s && nq > 0; i++) {
        et_bm25_opts o = {K1[i / ET_BM25_FIT_NB], B[i % ET_BM25_FIT_NB], 0};
        if (o.k1 == dflt.k1 && o.b == dflt.b) idef = i;
        et_bm25 *bm = et_bm25_build(docs, nd, &o, err);
        if (!bm) { s = err && err->code ? err->code : ET_ERR_NOMEM; break; }
        s = et_bm25_search_batch(pool, bm, qs, nq, 10, top, NULL, err);
        et_bm25_free(bm);
        for (int32_t q = 0; q < nq && !s; q++)
            M[(int64_t)i * nq + q] = et_ndcg_at_k(top + (int64_t)q * 10, 10, qrels + qoff[q], qoff[q + 1] - qoff[q], 10);
        if (!s && (best < 0 || mean_in(M + (int64_t)i * nq, NULL, nq) > mean_in(M + (int64_t)best * nq, NULL, nq) + 1e-12)) best = i;
        if (!s && et_progress_report(pr, (size_t)i + 1, NG))
            s = et_fail(err, ET_ERR_CANCELLED, "bm25 fit: cancelled (%d of %d grid points)", i + 1, (int)NG);
    }
    if (!s && nq > 0 && idef >= 0 && best >= 0) {
        R.default_ndcg10 = mean_in(M + (int64_t)idef * nq, NULL, nq);
        R.best = (et_bm25_opts){K1[best / ET_BM25_FIT_NB], B[best % ET_BM25_FIT_NB], 0};
        R.best_ndcg10 = mean_in(M + (int64_t)best * nq, NULL, nq);
        R.ndcg10 = R.default_ndcg10;
        double d, se;
        paired(M + (int64_t)best * nq, M + (int64_t)idef * nq, NULL, nq, &d, &se);
        if (nq >= ET_FUSION_MIN_QUERIES && best != idef && d > se_rule * se + 1e-12) {
            R.chosen = R.best;
            R.ndcg10 = R.best_ndcg10;
            R.learned = 1;
        }
    }
    free(M);
    free(top);
    if (!s) {
        if (chosen) *chosen = R.chosen;
        if (rep) *rep = R;
    }
    return s;
}

et_status et_retrieval_load(const char *model_dir, et_retrieval_cfg *out, int *found, et_error *err) {
    et_retrieval_cfg_default(out);
    *found = 0;
    char path[ET_PATH_MAX];
    et_status s = et_path_join(path, sizeof path, model_dir, ET_RETRIEVAL_FILE, err);
    if (s) return s;
    if (!et_file_exists(path)) return ET_OK;
    char *buf = NULL;
    size_t len = 0;
    if ((s = et_read_file(path, ET_RETRIEVAL_MAX_BYTES, &buf, &len, err))) return s;
    s = et_retrieval_parse(buf, len, path, out, err);
    free(buf);
    if (!s) *found = 1;
    return s;
}

static double r6(double x) {
    char b[32];
    snprintf(b, sizeof b, "%.6g", x);
    return strtod(b, NULL);
}

static void add_fusion(cJSON *o, const et_fusion *f) {
    cJSON_AddStringToObject(o, "kind", et_fusion_kind_name(f->kind));
    if (f->kind == ET_FUSION_CONVEX || f->kind == ET_FUSION_RERANK) cJSON_AddStringToObject(o, "norm", et_fusion_norm_name(f->norm));
    if (f->kind == ET_FUSION_RRF) cJSON_AddNumberToObject(o, "k", r6(f->rrf_k));
    if (f->kind == ET_FUSION_RERANK) cJSON_AddNumberToObject(o, "top_n", f->top_n);
    if (f->kind >= ET_FUSION_CONVEX) cJSON_AddNumberToObject(o, "alpha", r6(f->alpha));
    cJSON_AddNumberToObject(o, "depth", f->depth);
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, r6(v)); else cJSON_AddNullToObject(o, k);
}

et_status et_retrieval_save(const char *dir, const et_retrieval_cfg *r, const et_fusion_fit_report *rep,
                            const char *note, et_error *err) {
    et_status s = et_fusion_check(&r->fusion, err);
    if (s) return s;
    char path[ET_PATH_MAX];
    if ((s = et_path_join(path, sizeof path, dir, ET_RETRIEVAL_FILE, err))) return s;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "embedtune-retrieval");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "mode", et_retrieval_mode_name(r->mode));
    cJSON *b = cJSON_AddObjectToObject(j, "bm25");
    cJSON_AddNumberToObject(b, "k1", r6(r->bm25.k1));
    cJSON_AddNumberToObject(b, "b", r6(r->bm25.b));
    cJSON_AddStringToObject(b, "tokens", "ascii-alnum-lowercase");
    cJSON_AddStringToObject(b, "query_terms", r->bm25.query_tf ? "all" : "distinct");
    add_fusion(cJSON_AddObjectToObject(j, "fusion"), &r->fusion);
    cJSON *cb = cJSON_AddObjectToObject(j, "chosen_by");
    if (note) cJSON_AddStringToObject(cb, "data", note);
    if (rep) {
        cJSON_AddStringToObject(cb, "method", !rep->learned ? "default fusion (too few judged training queries to learn one)"
                                              : rep->prior_kept ? "the prior kept: the grid search's cross-validated nDCG@10 did not beat it by more than one standard error (fusion.h)"
                                                                : "grid search, k-fold cross-validated nDCG@10 on the training queries (fusion.h)");
        if (rep->learned) {
            add_num(cb, "cv_gain_over_prior", rep->gain_over_prior);
            add_num(cb, "cv_gain_se", rep->gain_se);
        }
        cJSON_AddNumberToObject(cb, "train_queries", rep->nqueries);
        if (rep->learned) cJSON_AddNumberToObject(cb, "folds", rep->folds);
        add_num(cb, "cv_ndcg@10", rep->cv_ndcg10);
        add_num(cb, "train_ndcg@10", rep->train_ndcg10);
        add_num(cb, "train_ndcg@10_dense", rep->dense_ndcg10);
        add_num(cb, "train_ndcg@10_bm25", rep->bm25_ndcg10);
        add_num(cb, "train_ndcg@10_default_fusion", rep->prior_ndcg10);
        if (rep->learned) {
            cJSON *fa = cJSON_AddArrayToObject(cb, "families");
            static const char *fn[] = {"convex-minmax", "convex-tmm", "convex-zscore", "rrf", "rerank"};
            for (int i = 0; i < ET_FUSION_NFAMILIES; i++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "family", fn[i]);
                add_num(e, "cv_ndcg@10", rep->family[i].cv_ndcg10);
                add_fusion(cJSON_AddObjectToObject(e, "selected"), &rep->family[i].best);
                cJSON_AddItemToArray(fa, e);
            }
        }
    } else cJSON_AddStringToObject(cb, "method", "set by hand");
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt) return et_fail(err, ET_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(txt);
    char *buf = malloc(n + 2);
    if (!buf) { free(txt); return et_fail(err, ET_ERR_NOMEM, "%s: out of memory", path); }
    memcpy(buf, txt, n);
    buf[n] = '\n';
    free(txt);
    s = et_write_file_atomic(path, buf, n + 1, err);
    free(buf);
    return s;
}
