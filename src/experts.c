/* experts.c - see experts.h */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experts.h"
#include "kernels.h"
#include "metrics.h"
#include "rng.h"
#include "util.h"

/* ------------------------------------------------------------------ pair index */
static int cmp_pair64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

et_status et_pair_index_build(const et_pairs *p, et_pair_index *ix, et_error *err) {
    memset(ix, 0, sizeof *ix);
    int64_t n = p->n, nneg = p->neg_off ? p->neg_off[n] : 0;
    if (n > INT32_MAX / 2 || nneg > INT32_MAX / 2) return et_fail(err, ET_ERR_ARG, "pairs: too many rows (%lld)", (long long)n);
    et_strmap mq = {0}, mp = {0};
    int64_t *pk = NULL;
    et_status s = ET_OK;
    ix->n = n;
    ix->qtext = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    ix->ptext = malloc(sizeof(char *) * (size_t)(n + nneg ? n + nneg : 1));
    ix->row_q = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    ix->row_p = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    ix->neg_p = nneg ? malloc(sizeof(int32_t) * (size_t)nneg) : NULL;
    pk = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!ix->qtext || !ix->ptext || !ix->row_q || !ix->row_p || (nneg && !ix->neg_p) || !pk ||
        et_strmap_init(&mq, n, ix->qtext, "pairs index", NULL) || et_strmap_init(&mp, n + nneg, ix->ptext, "pairs index", NULL)) {
        s = et_fail(err, ET_ERR_NOMEM, "pairs index: out of memory for %lld rows", (long long)n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        ix->row_q[i] = et_strmap_intern(&mq, p->query[i], &ix->nq);
        ix->row_p[i] = et_strmap_intern(&mp, p->passage[i], &ix->np);
    }
    for (int64_t j = 0; j < nneg; j++) ix->neg_p[j] = et_strmap_intern(&mp, p->neg[j], &ix->np);
    /* positives: unique (q, p) of rows with label >= 0.5, sorted */
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!p->label || p->label[i] >= 0.5f) pk[m++] = ((int64_t)ix->row_q[i] << 32) | (uint32_t)ix->row_p[i];
    qsort(pk, (size_t)m, sizeof *pk, cmp_pair64);
    ix->pos_off = calloc((size_t)ix->nq + 1, sizeof(int64_t));
    ix->pos = malloc(sizeof(int32_t) * (size_t)(m ? m : 1));
    if (!ix->pos_off || !ix->pos) { s = et_fail(err, ET_ERR_NOMEM, "pairs index: out of memory"); goto done; }
    int64_t u = 0;
    for (int64_t i = 0; i < m; i++) {
        if (i && pk[i] == pk[i - 1]) continue;
        ix->pos[u++] = (int32_t)(pk[i] & 0xffffffff);
        ix->pos_off[(pk[i] >> 32) + 1]++;
    }
    for (int32_t q = 0; q < ix->nq; q++) ix->pos_off[q + 1] += ix->pos_off[q];
done:
    free(pk);
    et_strmap_free(&mq);
    et_strmap_free(&mp);
    if (s) et_pair_index_free(ix);
    return s;
}

void et_pair_index_free(et_pair_index *ix) {
    free(ix->qtext); free(ix->ptext); free(ix->row_q); free(ix->row_p); free(ix->pos_off); free(ix->pos); free(ix->neg_p);
    memset(ix, 0, sizeof *ix);
}

static int is_pos(const et_pair_index *ix, int32_t q, int32_t p) {
    int64_t a = ix->pos_off[q], b = ix->pos_off[q + 1];
    while (a < b) {
        int64_t mid = (a + b) / 2;
        if (ix->pos[mid] == p) return 1;
        if (ix->pos[mid] < p) a = mid + 1; else b = mid;
    }
    return 0;
}

/* ------------------------------------------------------------------ experts */
et_status et_expert_bm25_init(et_expert *e, const et_pair_index *ix, const et_bm25_opts *opts, et_error *err) {
    memset(e, 0, sizeof *e);
    e->kind = ET_EXPERT_BM25;
    snprintf(e->name, sizeof e->name, "bm25");
    e->bm = et_bm25_build(ix->ptext, ix->np, opts, err);
    return e->bm ? ET_OK : (err && err->code ? err->code : ET_ERR_NOMEM);
}

et_status et_expert_dense_init(et_expert *e, const et_pair_index *ix, const char *name, const et_bert *m,
                               const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo, et_error *err) {
    memset(e, 0, sizeof *e);
    e->kind = ET_EXPERT_DENSE;
    snprintf(e->name, sizeof e->name, "%s", name ? name : "model");
    e->d = m->cfg.hidden_size;
    e->qemb = et_malloc(sizeof(float) * (size_t)(ix->nq ? ix->nq : 1) * (size_t)e->d, "query embeddings", err);
    e->pemb = et_malloc(sizeof(float) * (size_t)(ix->np ? ix->np : 1) * (size_t)e->d, "passage embeddings", err);
    if (!e->qemb || !e->pemb) { et_expert_free(e); return ET_ERR_NOMEM; }
    et_encode_opts o = *eo;
    et_status s = et_encode_texts(m, tok, pool, ix->ptext, (size_t)ix->np, &o, e->pemb, err);
    o.progress = NULL;
    if (!s) s = et_encode_texts(m, tok, pool, ix->qtext, (size_t)ix->nq, &o, e->qemb, err);
    if (s) { et_error_prefix(err, "expert %s", e->name); et_expert_free(e); return s; }
    et_l2norm_rows(e->qemb, ix->nq, e->d);
    et_l2norm_rows(e->pemb, ix->np, e->d);
    return ET_OK;
}

void et_expert_free(et_expert *e) {
    et_bm25_free(e->bm);
    free(e->qemb);
    free(e->pemb);
    memset(e, 0, sizeof *e);
}

et_status et_expert_score_qp(const et_expert *e, const et_pair_index *ix, const int32_t *q, const int32_t *p, int64_t n,
                             float *out, et_error *err) {
    for (int64_t i = 0; i < n; i++)
        if (q[i] < 0 || q[i] >= ix->nq || p[i] < 0 || p[i] >= ix->np)
            return et_fail(err, ET_ERR_ARG, "expert %s: pair %lld (%d, %d) is outside the index", e->name, (long long)i, q[i], p[i]);
    if (e->kind == ET_EXPERT_DENSE) {
        for (int64_t i = 0; i < n; i++) out[i] = et_dot(e->qemb + (int64_t)q[i] * e->d, e->pemb + (int64_t)p[i] * e->d, e->d);
        return ET_OK;
    }
    const char **qs = et_malloc(sizeof(char *) * (size_t)(n ? n : 1), "bm25 queries", err);
    double *sc = et_malloc(sizeof(double) * (size_t)(n ? n : 1), "bm25 scores", err);
    if (!qs || !sc) { free(qs); free(sc); return ET_ERR_NOMEM; }
    for (int64_t i = 0; i < n; i++) qs[i] = ix->qtext[q[i]];
    et_status s = et_bm25_score_pairs(e->bm, qs, p, n, sc, err);
    for (int64_t i = 0; !s && i < n; i++) out[i] = (float)sc[i];
    free(qs); free(sc);
    return s;
}

et_status et_expert_score_rows(const et_expert *e, const et_pair_index *ix, et_pool *pool, float *out, et_error *err) {
    return et_expert_score_qp(e, ix, ix->row_q, ix->row_p, ix->n, out, err);
}

static et_status score_all(const et_expert *e, const et_pair_index *ix, int32_t qi, float *out, double *dbuf, et_error *err) {
    if (e->kind == ET_EXPERT_DENSE) {
        const float *q = e->qemb + (int64_t)qi * e->d;
        for (int32_t p = 0; p < ix->np; p++) out[p] = et_dot(q, e->pemb + (int64_t)p * e->d, e->d);
        return ET_OK;
    }
    et_status s = et_bm25_score_all(e->bm, ix->qtext[qi], dbuf, err);
    for (int32_t p = 0; !s && p < ix->np; p++) out[p] = (float)dbuf[p];
    return s;
}

et_status et_expert_score_all(const et_expert *e, const et_pair_index *ix, int32_t qi, float *out, et_error *err) {
    if (qi < 0 || qi >= ix->nq) return et_fail(err, ET_ERR_ARG, "expert %s: query %d outside [0, %d)", e->name, qi, ix->nq);
    double *d = e->kind == ET_EXPERT_BM25 ? et_malloc(sizeof(double) * (size_t)(ix->np ? ix->np : 1), "bm25 scores", err) : NULL;
    if (e->kind == ET_EXPERT_BM25 && !d) return ET_ERR_NOMEM;
    et_status s = score_all(e, ix, qi, out, d, err);
    free(d);
    return s;
}

/* ------------------------------------------------------------------ score table */
et_status et_score_table_from_pairs(et_score_table *t, const et_pairs *p, et_error *err) {
    memset(t, 0, sizeof *t);
    t->n = p->n;
    if (!p->K) return ET_OK;
    t->names = calloc((size_t)p->K, sizeof(char *));
    t->scores = malloc(sizeof(float) * (size_t)(p->n ? p->n : 1) * (size_t)p->K);
    if (!t->names || !t->scores) { et_score_table_free(t); return et_fail(err, ET_ERR_NOMEM, "score table: out of memory"); }
    t->K = p->K;
    for (int k = 0; k < p->K; k++) {
        char b[32];
        snprintf(b, sizeof b, "score_%d", k);
        t->names[k] = strdup(p->expert_names ? p->expert_names[k] : b);
        if (!t->names[k]) { et_score_table_free(t); return et_fail(err, ET_ERR_NOMEM, "score table: out of memory"); }
    }
    memcpy(t->scores, p->scores, sizeof(float) * (size_t)p->n * (size_t)p->K);
    return ET_OK;
}

int et_score_table_find(const et_score_table *t, const char *name) {
    for (int k = 0; k < t->K; k++) if (!strcmp(t->names[k], name)) return k;
    return -1;
}

et_status et_score_table_set(et_score_table *t, const char *name, const float *col, et_error *err) {
    int k = et_score_table_find(t, name);
    if (k < 0) {
        int K = t->K + 1;
        float *ns = malloc(sizeof(float) * (size_t)(t->n ? t->n : 1) * (size_t)K);
        char **nn = realloc(t->names, sizeof(char *) * (size_t)K);
        if (nn) t->names = nn;
        char *nm = strdup(name);
        if (!ns || !nn || !nm) { free(ns); free(nm); return et_fail(err, ET_ERR_NOMEM, "score table: out of memory adding '%s'", name); }
        for (int64_t i = 0; i < t->n; i++) {
            for (int j = 0; j < t->K; j++) ns[i * K + j] = t->scores[i * t->K + j];
            ns[i * K + t->K] = 0;
        }
        free(t->scores);
        t->scores = ns;
        t->names[t->K] = nm;
        k = t->K;
        t->K = K;
    }
    for (int64_t i = 0; i < t->n; i++) t->scores[i * t->K + k] = col[i];
    return ET_OK;
}

void et_score_table_free(et_score_table *t) {
    for (int k = 0; k < t->K && t->names; k++) free(t->names[k]);
    free(t->names);
    free(t->scores);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------ negatives */
typedef struct {
    const et_pair_index *ix;
    const et_expert *e;
    int32_t h;          /* hard negatives per query */
    int32_t *hard;      /* [nq, h] */
    float *sc;          /* [nthreads, np] */
    double *dsc;        /* [nthreads, np] */
    int32_t *top;       /* [nthreads, np] */
    et_status *st;      /* [nthreads] */
    et_error *errs;     /* [nthreads] */
    int ntasks;
} hard_ctx;

static void hard_task(void *vctx, int task, int thread) {
    hard_ctx *c = vctx;
    const et_pair_index *ix = c->ix;
    int32_t a = (int32_t)((int64_t)ix->nq * task / c->ntasks), b = (int32_t)((int64_t)ix->nq * (task + 1) / c->ntasks);
    float *sc = c->sc + (int64_t)thread * ix->np;
    double *dsc = c->dsc ? c->dsc + (int64_t)thread * ix->np : NULL;
    for (int32_t q = a; q < b && !c->st[thread]; q++) {
        int32_t npos = (int32_t)(ix->pos_off[q + 1] - ix->pos_off[q]);
        int32_t kq = c->h + npos < ix->np ? c->h + npos : ix->np;
        int32_t *top = c->top + (int64_t)thread * ix->np;
        if ((c->st[thread] = score_all(c->e, ix, q, sc, dsc, &c->errs[thread]))) return;
        et_rank_scores(sc, ix->np, kq, top);
        int32_t j = 0;
        for (int32_t r = 0; r < kq && j < c->h; r++)
            if (!is_pos(ix, q, top[r])) c->hard[(int64_t)q * c->h + j++] = top[r];
        for (; j < c->h; j++) c->hard[(int64_t)q * c->h + j] = -1;
    }
}

et_status et_experts_sample_negatives(const et_pair_index *ix, const float *labels, const et_expert *ranker,
                                      const et_neg_cfg *cfg, et_pool *pool, int32_t *out, et_error *err) {
    if (!cfg || cfg->n_neg <= 0 || !(cfg->hard_ratio >= 0 && cfg->hard_ratio <= 1))
        return et_fail(err, ET_ERR_ARG, "negatives: need n_neg > 0 and hard_ratio in [0, 1]");
    int32_t N = cfg->n_neg;
    int32_t h = cfg->mode == ET_NEG_HARD ? (int32_t)lround(N * cfg->hard_ratio) : 0;
    if (h && !ranker) return et_fail(err, ET_ERR_ARG, "negatives: hard mode needs a ranking expert (--bm25 or --model)");
    int nth = et_pool_size(pool);
    et_status s = ET_OK;
    int32_t *hard = NULL, *top = NULL, *cand = NULL;
    float *sc = NULL;
    double *dsc = NULL;
    et_status *st = NULL;
    et_error *errs = NULL;
    if (h && ix->nq) {
        hard = et_malloc(sizeof(int32_t) * (size_t)ix->nq * (size_t)h, "hard negatives", err);
        sc = et_malloc(sizeof(float) * (size_t)nth * (size_t)(ix->np ? ix->np : 1), "negative scores", err);
        if (ranker->kind == ET_EXPERT_BM25) dsc = et_malloc(sizeof(double) * (size_t)nth * (size_t)(ix->np ? ix->np : 1), "negative scores", err);
        top = et_malloc(sizeof(int32_t) * (size_t)nth * (size_t)(ix->np ? ix->np : 1), "negative ranking", err);
        st = et_calloc((size_t)nth, sizeof *st, "status", err);
        errs = et_calloc((size_t)nth, sizeof *errs, "status", err);
        if (!hard || !sc || (ranker->kind == ET_EXPERT_BM25 && !dsc) || !top || !st || !errs) { s = ET_ERR_NOMEM; goto done; }
        hard_ctx c = {ix, ranker, h, hard, sc, dsc, top, st, errs, ix->nq < nth * 8 ? ix->nq : nth * 8};
        et_pool_run(pool, hard_task, &c, c.ntasks);
        for (int t = 0; t < nth; t++)
            if (st[t]) { s = st[t]; if (err) *err = errs[t]; goto done; }
    }
    cand = et_malloc(sizeof(int32_t) * (size_t)(ix->np ? ix->np : 1), "negative candidates", err);
    if (!cand) { s = ET_ERR_NOMEM; goto done; }
    et_rng base;
    et_rng_seed(&base, cfg->seed);
    for (int64_t r = 0; r < ix->n; r++) {
        int32_t *o = out + r * N;
        for (int32_t j = 0; j < N; j++) o[j] = -1;
        if (labels && !(labels[r] >= 0.5f)) continue;
        int32_t q = ix->row_q[r], j = 0;
        for (; j < h && hard[(int64_t)q * h + j] >= 0; j++) o[j] = hard[(int64_t)q * h + j];
        int32_t need = N - j;
        int64_t npos = ix->pos_off[q + 1] - ix->pos_off[q];
        int64_t ncand = ix->np - npos - j; /* non-positive passages not taken yet */
        if (need <= 0 || ncand <= 0) continue;
        et_rng rng;
        et_rng_fork(&base, (uint64_t)r, &rng);
        if (ncand <= 2 * (int64_t)need || ncand * 2 < ix->np) {
            /* enumerate the candidates, then a partial Fisher-Yates */
            int32_t nc = 0;
            for (int32_t p = 0; p < ix->np; p++) {
                if (is_pos(ix, q, p)) continue;
                int taken = 0;
                for (int32_t u = 0; u < j && !taken; u++) taken = o[u] == p;
                if (!taken) cand[nc++] = p;
            }
            int32_t take = nc < need ? nc : need;
            for (int32_t u = 0; u < take; u++) {
                int32_t v = u + (int32_t)et_rng_below(&rng, (uint64_t)(nc - u));
                int32_t t = cand[u]; cand[u] = cand[v]; cand[v] = t;
                o[j + u] = cand[u];
            }
        } else {
            /* rejection: at least half of the passages are candidates */
            int32_t got = 0;
            while (got < need) {
                int32_t p = (int32_t)et_rng_below(&rng, (uint64_t)ix->np);
                if (is_pos(ix, q, p)) continue;
                int taken = 0;
                for (int32_t u = 0; u < j + got && !taken; u++) taken = o[u] == p;
                if (!taken) o[j + got++] = p;
            }
        }
    }
done:
    free(hard); free(top); free(cand); free(sc); free(dsc); free(st); free(errs);
    return s;
}
