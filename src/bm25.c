/* bm25.c - see bm25.h */
#include "bm25.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "topk.h"
#include "util.h"

struct et_bm25 {
    int32_t ndocs, nterms;
    double k1, b, avgdl;
    int query_tf;
    /* term table: open addressing over term ids; term strings (lowercase) in one arena */
    uint32_t tcap;          /* power of two */
    int32_t *tslot;         /* [tcap], -1 empty */
    int64_t *term_off;      /* [nterms+1] offsets into tarena (term t = tarena[term_off[t] .. term_off[t+1]) ) */
    uint64_t *term_hash;    /* [nterms] */
    char *tarena;
    int64_t tarena_len, tarena_cap, term_cap;
    /* postings CSR */
    int64_t *post_off;      /* [nterms+1] */
    int32_t *post_doc;      /* [npost] sorted by doc within a term */
    uint32_t *post_tf;      /* [npost] */
    double *idf;            /* [nterms] */
    double *knorm;          /* [ndocs] k1 * (1 - b + b * dl / avgdl) */
    int32_t *dl;            /* [ndocs] */
};

/* ---- tokens ------------------------------------------------------------------------------- */
static inline int is_tok(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
static inline unsigned char lc(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

/* next token at or after *p: returns start and len (0 at end) */
static inline const char *next_tok(const char **p, int64_t *len) {
    const unsigned char *s = (const unsigned char *)*p;
    while (*s && !is_tok(*s)) s++;
    if (!*s) { *p = (const char *)s; *len = 0; return NULL; }
    const unsigned char *st = s;
    while (is_tok(*s)) s++;
    *p = (const char *)s;
    *len = s - st;
    return (const char *)st;
}

static inline uint64_t tok_hash(const char *t, int64_t n) {
    uint64_t h = ET_FNV1A64_INIT; /* FNV-1a of the lowercased bytes */
    for (int64_t i = 0; i < n; i++) h = et_fnv1a64_byte(h, lc((unsigned char)t[i]));
    return h ^ (h >> 31);
}

int64_t et_bm25_count_tokens(const char *text) {
    if (!text) return 0;
    int64_t n = 0, len;
    while (next_tok(&text, &len)) n++;
    return n;
}

int64_t et_bm25_match_spans(const char *query, const char *text, int64_t *spans, int64_t cap) {
    const char *p = query ? query : "", *t;
    size_t qcap = strlen(p) / 2 + 1;
    uint64_t *qh = malloc(sizeof(uint64_t) * qcap);
    const char **qt = malloc(sizeof(char *) * qcap);
    int64_t *ql = malloc(sizeof(int64_t) * qcap), len, nq = 0, n = 0;
    if (!qh || !qt || !ql) { free(qh); free(qt); free(ql); return -1; }
    while ((t = next_tok(&p, &len)) && (size_t)nq < qcap) { qh[nq] = tok_hash(t, len); qt[nq] = t; ql[nq++] = len; }
    const char *s = text ? text : "";
    while (nq && (t = next_tok(&s, &len))) {
        uint64_t h = tok_hash(t, len);
        int hit = 0;
        for (int64_t j = 0; j < nq && !hit; j++) {
            if (qh[j] != h || ql[j] != len) continue;
            hit = 1;
            for (int64_t i = 0; i < len && hit; i++) hit = lc((unsigned char)t[i]) == lc((unsigned char)qt[j][i]);
        }
        if (!hit) continue;
        if (n < cap) { spans[2 * n] = t - text; spans[2 * n + 1] = t - text + len; }
        n++;
    }
    free(qh); free(qt); free(ql);
    return n;
}

/* term id of (t, n) (case-folded), or -1 */
static int32_t term_find(const et_bm25 *bm, const char *t, int64_t n, uint64_t h) {
    uint32_t m = bm->tcap - 1, i = (uint32_t)h & m;
    for (;;) {
        int32_t id = bm->tslot[i];
        if (id < 0) return -1;
        if (bm->term_hash[id] == h && bm->term_off[id + 1] - bm->term_off[id] == n) {
            const char *s = bm->tarena + bm->term_off[id];
            int64_t j = 0;
            while (j < n && s[j] == (char)lc((unsigned char)t[j])) j++;
            if (j == n) return id;
        }
        i = (i + 1) & m;
    }
}

static int term_rehash(et_bm25 *bm, uint32_t ncap) {
    int32_t *ns = malloc(sizeof(int32_t) * ncap);
    if (!ns) return 0;
    memset(ns, 0xff, sizeof(int32_t) * ncap);
    for (int32_t id = 0; id < bm->nterms; id++) {
        uint32_t i = (uint32_t)bm->term_hash[id] & (ncap - 1);
        while (ns[i] >= 0) i = (i + 1) & (ncap - 1);
        ns[i] = id;
    }
    free(bm->tslot);
    bm->tslot = ns;
    bm->tcap = ncap;
    return 1;
}

/* find or insert; -1 on out of memory */
static int32_t term_intern(et_bm25 *bm, const char *t, int64_t n) {
    uint64_t h = tok_hash(t, n);
    int32_t id = term_find(bm, t, n, h);
    if (id >= 0) return id;
    if ((int64_t)(bm->nterms + 1) * 2 > (int64_t)bm->tcap && !term_rehash(bm, bm->tcap * 2)) return -1;
    if (bm->nterms + 2 > bm->term_cap) {
        int64_t nc = bm->term_cap * 2;
        int64_t *o = realloc(bm->term_off, sizeof(int64_t) * (size_t)nc);
        if (!o) return -1;
        bm->term_off = o;
        uint64_t *hh = realloc(bm->term_hash, sizeof(uint64_t) * (size_t)nc);
        if (!hh) return -1;
        bm->term_hash = hh;
        bm->term_cap = nc;
    }
    if (bm->tarena_len + n > bm->tarena_cap) {
        int64_t nc = bm->tarena_cap * 2;
        while (nc < bm->tarena_len + n) nc *= 2;
        char *a = realloc(bm->tarena, (size_t)nc);
        if (!a) return -1;
        bm->tarena = a;
        bm->tarena_cap = nc;
    }
    for (int64_t j = 0; j < n; j++) bm->tarena[bm->tarena_len + j] = (char)lc((unsigned char)t[j]);
    id = bm->nterms++;
    bm->term_off[id] = bm->tarena_len;
    bm->tarena_len += n;
    bm->term_off[id + 1] = bm->tarena_len;
    bm->term_hash[id] = h;
    uint32_t i = (uint32_t)h & (bm->tcap - 1);
    while (bm->tslot[i] >= 0) i = (i + 1) & (bm->tcap - 1);
    bm->tslot[i] = id;
    return id;
}

void et_bm25_free(et_bm25 *bm) {
    if (!bm) return;
    free(bm->tslot); free(bm->term_off); free(bm->term_hash); free(bm->tarena);
    free(bm->post_off); free(bm->post_doc); free(bm->post_tf); free(bm->idf); free(bm->knorm); free(bm->dl);
    free(bm);
}

/* idf and the length norms from the postings and dl (avgdl already set): shared by build and read */
static void derive_stats(et_bm25 *bm) {
    for (int32_t t = 0; t < bm->nterms; t++) {
        double df = (double)(bm->post_off[t + 1] - bm->post_off[t]);
        bm->idf[t] = log(1.0 + ((double)bm->ndocs - df + 0.5) / (df + 0.5));
    }
    for (int32_t d = 0; d < bm->ndocs; d++)
        bm->knorm[d] = bm->k1 * (1.0 - bm->b + (bm->avgdl > 0 ? bm->b * bm->dl[d] / bm->avgdl : 0.0));
}

et_bm25 *et_bm25_build(const char *const *texts, int32_t ndocs, const et_bm25_opts *opts, et_error *err) {
    return et_bm25_build_p(texts, ndocs, opts, NULL, err);
}

#define BM25_PROGRESS_DOCS 2048 /* docs between progress reports */

et_bm25 *et_bm25_build_p(const char *const *texts, int32_t ndocs, const et_bm25_opts *opts, const et_progress *pr,
                         et_error *err) {
    if (ndocs < 0) { et_fail(err, ET_ERR_ARG, "bm25: ndocs = %d", ndocs); return NULL; }
    double k1 = opts ? opts->k1 : 0.9, b = opts ? opts->b : 0.4;
    if (!(k1 >= 0) || !(b >= 0 && b <= 1)) {
        et_fail(err, ET_ERR_ARG, "bm25: k1 = %g must be >= 0 and b = %g in [0,1]", k1, b);
        return NULL;
    }
    et_bm25 *bm = et_calloc(1, sizeof *bm, "bm25", err);
    if (!bm) return NULL;
    bm->ndocs = ndocs; bm->k1 = k1; bm->b = b;
    bm->query_tf = opts ? opts->query_tf : 0;
    int32_t *last = NULL;   /* [term_cap] last doc that saw the term */
    uint32_t *cnt = NULL;   /* [term_cap] tf within the current doc */
    int32_t *uniq = NULL;   /* unique terms of the current doc */
    int32_t *tmp_t = NULL;  /* (term, tf) per (doc, term), doc-major */
    uint32_t *tmp_f = NULL;
    int64_t *doc_off = NULL;
    int64_t ucap = 0, tcap2 = 0, lcap = 0, ntmp = 0;
    bm->tcap = 1024;
    bm->term_cap = 1024;
    bm->tarena_cap = 8192;
    bm->tslot = malloc(sizeof(int32_t) * bm->tcap);
    bm->term_off = malloc(sizeof(int64_t) * (size_t)bm->term_cap);
    bm->term_hash = malloc(sizeof(uint64_t) * (size_t)bm->term_cap);
    bm->tarena = malloc((size_t)bm->tarena_cap);
    bm->dl = malloc(sizeof(int32_t) * (size_t)(ndocs ? ndocs : 1));
    bm->knorm = malloc(sizeof(double) * (size_t)(ndocs ? ndocs : 1));
    doc_off = malloc(sizeof(int64_t) * ((size_t)ndocs + 1));
    if (!bm->tslot || !bm->term_off || !bm->term_hash || !bm->tarena || !bm->dl || !bm->knorm || !doc_off) goto nomem;
    memset(bm->tslot, 0xff, sizeof(int32_t) * bm->tcap);
    bm->term_off[0] = 0;
    double total = 0;
    doc_off[0] = 0;
    if (et_progress_report(pr, 0, (size_t)ndocs)) { et_fail(err, ET_ERR_CANCELLED, "bm25: cancelled before building the index"); goto fail; }
    for (int32_t d = 0; d < ndocs; d++) {
        const char *p = texts[d] ? texts[d] : "";
        int64_t len, nu = 0, ntok = 0;
        const char *t;
        while ((t = next_tok(&p, &len))) {
            int32_t id = term_intern(bm, t, len);
            if (id < 0) goto nomem;
            if (bm->nterms > lcap) {
                int64_t nc = lcap ? lcap : 1024;
                while (nc < bm->nterms) nc *= 2;
                int32_t *l2 = realloc(last, sizeof(int32_t) * (size_t)nc);
                if (!l2) goto nomem;
                last = l2;
                uint32_t *c2 = realloc(cnt, sizeof(uint32_t) * (size_t)nc);
                if (!c2) goto nomem;
                cnt = c2;
                for (int64_t i = lcap; i < nc; i++) last[i] = -1;
                lcap = nc;
            }
            if (last[id] != d) {
                last[id] = d;
                cnt[id] = 0;
                if (nu + 1 > ucap) {
                    int64_t nc = ucap ? ucap * 2 : 256;
                    int32_t *u2 = realloc(uniq, sizeof(int32_t) * (size_t)nc);
                    if (!u2) goto nomem;
                    uniq = u2;
                    ucap = nc;
                }
                uniq[nu++] = id;
            }
            if (cnt[id] < UINT32_MAX) cnt[id]++;
            ntok++;
        }
        if (ntok > INT32_MAX) { et_fail(err, ET_ERR_UNSUPPORTED, "bm25: doc %d has more than 2^31 tokens", d); goto fail; }
        bm->dl[d] = (int32_t)ntok;
        total += (double)ntok;
        if (ntmp + nu > tcap2) {
            int64_t nc = tcap2 ? tcap2 : 4096;
            while (nc < ntmp + nu) nc *= 2;
            int32_t *a = realloc(tmp_t, sizeof(int32_t) * (size_t)nc);
            if (!a) goto nomem;
            tmp_t = a;
            uint32_t *f = realloc(tmp_f, sizeof(uint32_t) * (size_t)nc);
            if (!f) goto nomem;
            tmp_f = f;
            tcap2 = nc;
        }
        for (int64_t i = 0; i < nu; i++) { tmp_t[ntmp + i] = uniq[i]; tmp_f[ntmp + i] = cnt[uniq[i]]; }
        ntmp += nu;
        doc_off[d + 1] = ntmp;
        if ((d + 1) % BM25_PROGRESS_DOCS == 0 && d + 1 < ndocs && et_progress_report(pr, (size_t)d + 1, (size_t)ndocs)) {
            et_fail(err, ET_ERR_CANCELLED, "bm25: cancelled building the index (%d of %d docs)", d + 1, ndocs);
            goto fail;
        }
    }
    free(last); last = NULL;
    free(cnt); cnt = NULL;
    free(uniq); uniq = NULL;
    bm->avgdl = ndocs ? total / ndocs : 0;
    /* CSR postings: docs were visited in order, so each term's list comes out sorted by doc */
    int32_t T = bm->nterms;
    bm->post_off = calloc((size_t)T + 1, sizeof(int64_t));
    bm->post_doc = malloc(sizeof(int32_t) * (size_t)(ntmp ? ntmp : 1));
    bm->post_tf = malloc(sizeof(uint32_t) * (size_t)(ntmp ? ntmp : 1));
    bm->idf = malloc(sizeof(double) * (size_t)(T ? T : 1));
    if (!bm->post_off || !bm->post_doc || !bm->post_tf || !bm->idf) goto nomem;
    for (int64_t i = 0; i < ntmp; i++) bm->post_off[tmp_t[i] + 1]++;
    for (int32_t t = 0; t < T; t++) bm->post_off[t + 1] += bm->post_off[t];
    {
        int64_t *fill = malloc(sizeof(int64_t) * (size_t)(T ? T : 1));
        if (!fill) goto nomem;
        memcpy(fill, bm->post_off, sizeof(int64_t) * (size_t)T);
        for (int32_t d = 0; d < ndocs; d++)
            for (int64_t i = doc_off[d]; i < doc_off[d + 1]; i++) {
                int64_t at = fill[tmp_t[i]]++;
                bm->post_doc[at] = d;
                bm->post_tf[at] = tmp_f[i];
            }
        free(fill);
    }
    derive_stats(bm);
    free(tmp_t); free(tmp_f); free(doc_off);
    if (et_progress_report(pr, (size_t)ndocs, (size_t)ndocs)) {
        et_fail(err, ET_ERR_CANCELLED, "bm25: cancelled after building the index (%d docs)", ndocs);
        et_bm25_free(bm);
        return NULL;
    }
    return bm;
nomem:
    et_fail(err, ET_ERR_NOMEM, "bm25: out of memory building the index (%d docs)", ndocs);
fail:
    free(last); free(cnt); free(uniq); free(tmp_t); free(tmp_f); free(doc_off);
    et_bm25_free(bm);
    return NULL;
}

int32_t et_bm25_ndocs(const et_bm25 *bm) { return bm->ndocs; }
int32_t et_bm25_nterms(const et_bm25 *bm) { return bm->nterms; }
int64_t et_bm25_npostings(const et_bm25 *bm) { return bm->post_off[bm->nterms]; }
double et_bm25_avgdl(const et_bm25 *bm) { return bm->avgdl; }

double et_bm25_idf(const et_bm25 *bm, const char *term) {
    int64_t n = (int64_t)strlen(term);
    int32_t id = term_find(bm, term, n, tok_hash(term, n));
    return id < 0 ? 0.0 : bm->idf[id];
}

/* The query's term ids (terms absent from the corpus dropped; repeats dropped unless query_tf).
 * Returns a malloc'd array (NULL with *n = 0 if none or out of memory). */
static int32_t *query_terms(const et_bm25 *bm, const char *query, int32_t *n) {
    const char *p = query ? query : "";
    size_t cap = strlen(p) / 2 + 1; /* a token takes >= 1 byte plus a separator */
    int32_t *ids = malloc(sizeof(int32_t) * cap);
    *n = 0;
    if (!ids) { *n = -1; return NULL; } /* out of memory: the callers report it */
    int64_t len;
    const char *t;
    while ((t = next_tok(&p, &len))) {
        int32_t id = term_find(bm, t, len, tok_hash(t, len));
        if (id < 0) continue;
        int dup = 0;
        if (!bm->query_tf)
            for (int32_t i = 0; i < *n && !dup; i++) dup = ids[i] == id;
        if (!dup && (size_t)*n < cap) ids[(*n)++] = id;
    }
    return ids;
}

/* accumulate one query into acc (dense, zero on entry); touched gets each doc once. Returns #touched, or -1
 * when out of memory (acc untouched). */
static int32_t accumulate(const et_bm25 *bm, const char *query, double *acc, int32_t *touched) {
    int32_t nq, nt = 0;
    int32_t *ids = query_terms(bm, query, &nq);
    if (nq < 0) return -1;
    double k1p1 = bm->k1 + 1.0;
    for (int32_t qi = 0; qi < nq; qi++) {
        int32_t id = ids[qi];
        double idf = bm->idf[id];
        for (int64_t i = bm->post_off[id]; i < bm->post_off[id + 1]; i++) {
            int32_t d = bm->post_doc[i];
            double tf = (double)bm->post_tf[i];
            if (acc[d] == 0.0) touched[nt++] = d;
            acc[d] += idf * tf * k1p1 / (tf + bm->knorm[d]);
        }
    }
    free(ids);
    return nt;
}

et_status et_bm25_score_all(const et_bm25 *bm, const char *query, double *out, et_error *err) {
    int32_t *touched = et_malloc(sizeof(int32_t) * (size_t)(bm->ndocs ? bm->ndocs : 1), "bm25 scratch", err);
    if (!touched) return ET_ERR_NOMEM;
    memset(out, 0, sizeof(double) * (size_t)bm->ndocs);
    int32_t nt = accumulate(bm, query, out, touched);
    free(touched);
    return nt < 0 ? et_fail(err, ET_ERR_NOMEM, "bm25: out of memory for the terms of the query") : ET_OK;
}

/* one query with caller scratch: acc [ndocs] zeroed, touched [ndocs], hs/hi [k]. -1: out of memory */
static int search_one(const et_bm25 *bm, const char *query, int32_t k, int32_t *out_idx, double *out_score,
                       double *acc, int32_t *touched, double *hs, int32_t *hi) {
    int32_t nt = accumulate(bm, query, acc, touched);
    if (nt < 0) return -1;
    et_topk h;
    et_topk_init(&h, hs, hi, k < bm->ndocs ? k : bm->ndocs);
    for (int32_t i = 0; i < nt; i++) et_topk_push(&h, acc[touched[i]], touched[i]);
    /* fill with non-matching docs (score 0) in corpus order */
    for (int32_t d = 0; h.n < h.k && d < bm->ndocs; d++)
        if (acc[d] == 0.0) et_topk_push(&h, 0.0, d);
    et_topk_take(&h, k, out_idx, NULL, out_score);
    for (int32_t i = 0; i < nt; i++) acc[touched[i]] = 0.0;
    return 0;
}

et_status et_bm25_search(const et_bm25 *bm, const char *query, int32_t k, int32_t *out_idx, double *out_score,
                         et_error *err) {
    return et_bm25_search_batch(NULL, bm, &query, 1, k, out_idx, out_score, err);
}

typedef struct {
    const et_bm25 *bm;
    const char *const *queries;
    int32_t k;
    int32_t *out_idx;
    double *out_score;
    double **acc;
    int32_t **touched;
    double **hs;
    int32_t **hi;
    int *nomem; /* [threads] a query of this thread ran out of memory */
} batch_ctx;

static void batch_task(void *vctx, int task, int thread) {
    batch_ctx *c = vctx;
    if (search_one(c->bm, c->queries[task], c->k, c->out_idx + (int64_t)task * c->k,
                   c->out_score ? c->out_score + (int64_t)task * c->k : NULL, c->acc[thread], c->touched[thread],
                   c->hs[thread], c->hi[thread]))
        c->nomem[thread] = 1;
}

et_status et_bm25_search_batch(et_pool *pool, const et_bm25 *bm, const char *const *queries, int32_t nq, int32_t k,
                               int32_t *out_idx, double *out_score, et_error *err) {
    if (k <= 0 || nq < 0 || !out_idx) return et_fail(err, ET_ERR_ARG, "bm25 search: k = %d, nq = %d", k, nq);
    int nth = et_pool_size(pool);
    batch_ctx c = {bm, queries, k, out_idx, out_score, NULL, NULL, NULL, NULL, NULL};
    c.nomem = calloc((size_t)nth, sizeof(int));
    c.acc = calloc((size_t)nth, sizeof(double *));
    c.touched = calloc((size_t)nth, sizeof(int32_t *));
    c.hs = calloc((size_t)nth, sizeof(double *));
    c.hi = calloc((size_t)nth, sizeof(int32_t *));
    et_status st = ET_OK;
    size_t nd = (size_t)(bm->ndocs ? bm->ndocs : 1);
    if (!c.nomem || !c.acc || !c.touched || !c.hs || !c.hi) { st = et_fail(err, ET_ERR_NOMEM, "bm25 search: out of memory for the per-thread tables"); goto done; }
    for (int t = 0; t < nth; t++) {
        c.acc[t] = calloc(nd, sizeof(double));
        c.touched[t] = malloc(nd * sizeof(int32_t));
        c.hs[t] = malloc((size_t)k * sizeof(double));
        c.hi[t] = malloc((size_t)k * sizeof(int32_t));
        if (!c.acc[t] || !c.touched[t] || !c.hs[t] || !c.hi[t]) {
            st = et_fail(err, ET_ERR_NOMEM, "bm25 search: out of memory for scratch (%zu docs)", nd);
            goto done;
        }
    }
    et_pool_run(pool, batch_task, &c, nq);
    for (int t = 0; t < nth && !st; t++)
        if (c.nomem[t]) st = et_fail(err, ET_ERR_NOMEM, "bm25 search: out of memory for the terms of a query");
done:
    for (int t = 0; t < nth; t++) {
        if (c.acc) free(c.acc[t]);
        if (c.touched) free(c.touched[t]);
        if (c.hs) free(c.hs[t]);
        if (c.hi) free(c.hi[t]);
    }
    free(c.acc); free(c.touched); free(c.hs); free(c.hi); free(c.nomem);
    return st;
}

static uint32_t tf_of(const et_bm25 *bm, int32_t id, int32_t d) {
    int64_t lo = et_lower_bound_i32(bm->post_doc, bm->post_off[id], bm->post_off[id + 1], d);
    return lo < bm->post_off[id + 1] && bm->post_doc[lo] == d ? bm->post_tf[lo] : 0;
}

et_status et_bm25_score_pairs(const et_bm25 *bm, const char *const *queries, const int32_t *doc_idx, int64_t n,
                              double *out, et_error *err) {
    for (int64_t i = 0; i < n; i++) {
        int32_t d = doc_idx[i];
        if (d < 0 || d >= bm->ndocs)
            return et_fail(err, ET_ERR_ARG, "bm25 score_pairs: pair %lld: doc index %d out of [0, %d)", (long long)i, d, bm->ndocs);
        int32_t nq;
        int32_t *ids = query_terms(bm, queries[i], &nq);
        if (nq < 0)
            return et_fail(err, ET_ERR_NOMEM, "bm25 score_pairs: pair %lld: out of memory for the query's terms", (long long)i);
        double s = 0;
        for (int32_t qi = 0; qi < nq; qi++) {
            int32_t id = ids[qi];
            double tf = tf_of(bm, id, d);
            if (tf > 0) s += bm->idf[id] * tf * (bm->k1 + 1.0) / (tf + bm->knorm[d]);
        }
        free(ids);
        out[i] = s;
    }
    return ET_OK;
}

double et_bm25_score_text(const et_bm25 *bm, const char *query, const char *text) {
    int32_t nq;
    int32_t *qid = query_terms(bm, query, &nq);
    if (nq < 0) return NAN; /* out of memory */
    if (nq == 0) { free(qid); return 0.0; }
    uint32_t *tf = calloc((size_t)nq, sizeof(uint32_t));
    if (!tf) { free(qid); return NAN; }
    int64_t dl = 0, len;
    const char *t, *p = text ? text : "";
    while ((t = next_tok(&p, &len))) {
        dl++;
        uint64_t h = tok_hash(t, len);
        int32_t id = -2;
        for (int32_t j = 0; j < nq; j++)
            if (bm->term_hash[qid[j]] == h) {
                if (id == -2) id = term_find(bm, t, len, h);
                if (qid[j] == id) tf[j]++;
            }
    }
    double knorm = bm->k1 * (1.0 - bm->b + (bm->avgdl > 0 ? bm->b * (double)dl / bm->avgdl : 0.0));
    double s = 0;
    for (int32_t j = 0; j < nq; j++)
        if (tf[j]) s += bm->idf[qid[j]] * tf[j] * (bm->k1 + 1.0) / (tf[j] + knorm);
    free(tf);
    free(qid);
    return s;
}

/* ---- serialized form ------------------------------------------------------------------------ */
static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static size_t ser_size(int32_t N, int32_t T, int64_t A, int64_t P) {
    return 48 + pad8(4 * (size_t)N) + 8 * ((size_t)T + 1) + pad8((size_t)A) + 8 * ((size_t)T + 1) + 2 * pad8(4 * (size_t)P);
}

size_t et_bm25_serialized_size(const et_bm25 *bm) {
    return ser_size(bm->ndocs, bm->nterms, bm->tarena_len, bm->post_off[bm->nterms]);
}

static unsigned char *put(unsigned char *o, const void *p, size_t n) {
    memcpy(o, p, n);
    memset(o + n, 0, pad8(n) - n);
    return o + pad8(n);
}

void et_bm25_serialize(const et_bm25 *bm, unsigned char *out) {
    int64_t P = bm->post_off[bm->nterms];
    int32_t h[4] = {bm->ndocs, bm->nterms, bm->query_tf, 0};
    double kb[2] = {bm->k1, bm->b};
    int64_t n2[2] = {P, bm->tarena_len};
    out = put(out, h, 16);
    out = put(out, kb, 16);
    out = put(out, n2, 16);
    out = put(out, bm->dl, 4 * (size_t)bm->ndocs);
    out = put(out, bm->term_off, 8 * ((size_t)bm->nterms + 1));
    out = put(out, bm->tarena, (size_t)bm->tarena_len);
    out = put(out, bm->post_off, 8 * ((size_t)bm->nterms + 1));
    out = put(out, bm->post_doc, 4 * (size_t)P);
    put(out, bm->post_tf, 4 * (size_t)P);
}

et_bm25 *et_bm25_deserialize(const unsigned char *buf, size_t len, const char *name, et_error *err) {
    int32_t h[4];
    double kb[2];
    int64_t n2[2];
    if (len < 48) { et_fail(err, ET_ERR_FORMAT, "%s: BM25 section truncated (%zu bytes)", name, len); return NULL; }
    memcpy(h, buf, 16); memcpy(kb, buf + 16, 16); memcpy(n2, buf + 32, 16);
    int32_t N = h[0], T = h[1];
    int64_t P = n2[0], A = n2[1];
    if (N < 0 || T < 0 || P < 0 || A < 0 || P > (int64_t)len || A > (int64_t)len || (int64_t)T > (int64_t)len || (int64_t)N > (int64_t)len || !(kb[0] >= 0) || !(kb[1] >= 0 && kb[1] <= 1) ||
        (h[2] != 0 && h[2] != 1)) {
        et_fail(err, ET_ERR_FORMAT, "%s: BM25 header out of range (docs %d, terms %d, postings %lld, k1 %g, b %g)", name, N, T,
                (long long)P, kb[0], kb[1]);
        return NULL;
    }
    if (ser_size(N, T, A, P) != len) {
        et_fail(err, ET_ERR_FORMAT, "%s: BM25 section is %zu bytes, its counts need %zu", name, len, ser_size(N, T, A, P));
        return NULL;
    }
    et_bm25 *bm = et_calloc(1, sizeof *bm, "bm25", err);
    if (!bm) return NULL;
    bm->ndocs = N; bm->nterms = T; bm->query_tf = h[2]; bm->k1 = kb[0]; bm->b = kb[1];
    bm->tarena_len = bm->tarena_cap = A; bm->term_cap = (int64_t)T + 1;
    bm->dl = malloc(sizeof(int32_t) * (size_t)(N ? N : 1));
    bm->knorm = malloc(sizeof(double) * (size_t)(N ? N : 1));
    bm->term_off = malloc(sizeof(int64_t) * ((size_t)T + 1));
    bm->term_hash = malloc(sizeof(uint64_t) * (size_t)(T ? T : 1));
    bm->tarena = malloc((size_t)(A ? A : 1));
    bm->post_off = malloc(sizeof(int64_t) * ((size_t)T + 1));
    bm->post_doc = malloc(sizeof(int32_t) * (size_t)(P ? P : 1));
    bm->post_tf = malloc(sizeof(uint32_t) * (size_t)(P ? P : 1));
    bm->idf = malloc(sizeof(double) * (size_t)(T ? T : 1));
    uint32_t tcap = 1024;
    while ((int64_t)tcap < 2 * (int64_t)T + 2) tcap *= 2;
    bm->tslot = malloc(sizeof(int32_t) * tcap);
    bm->tcap = tcap;
    if (!bm->dl || !bm->knorm || !bm->term_off || !bm->term_hash || !bm->tarena || !bm->post_off || !bm->post_doc || !bm->post_tf ||
        !bm->idf || !bm->tslot) {
        et_fail(err, ET_ERR_NOMEM, "%s: out of memory reading BM25 (%d docs, %lld postings)", name, N, (long long)P);
        et_bm25_free(bm);
        return NULL;
    }
    const unsigned char *p = buf + 48;
    memcpy(bm->dl, p, 4 * (size_t)N); p += pad8(4 * (size_t)N);
    memcpy(bm->term_off, p, 8 * ((size_t)T + 1)); p += 8 * ((size_t)T + 1);
    memcpy(bm->tarena, p, (size_t)A); p += pad8((size_t)A);
    memcpy(bm->post_off, p, 8 * ((size_t)T + 1)); p += 8 * ((size_t)T + 1);
    memcpy(bm->post_doc, p, 4 * (size_t)P); p += pad8(4 * (size_t)P);
    memcpy(bm->post_tf, p, 4 * (size_t)P);
    /* validate everything a search dereferences */
    const char *bad = NULL;
    if (bm->term_off[0] != 0 || bm->term_off[T] != A || bm->post_off[0] != 0 || bm->post_off[T] != P) bad = "offsets";
    for (int32_t t = 0; t < T && !bad; t++) {
        if (bm->term_off[t + 1] <= bm->term_off[t]) bad = "term_off";
        else if (bm->post_off[t + 1] <= bm->post_off[t]) bad = "post_off";
    }
    for (int64_t i = 0; i < A && !bad; i++)
        if (!is_tok((unsigned char)bm->tarena[i]) || lc((unsigned char)bm->tarena[i]) != (unsigned char)bm->tarena[i]) bad = "terms";
    for (int32_t t = 0; t < T && !bad; t++)
        for (int64_t i = bm->post_off[t]; i < bm->post_off[t + 1] && !bad; i++)
            if (bm->post_doc[i] < 0 || bm->post_doc[i] >= N || (i > bm->post_off[t] && bm->post_doc[i] <= bm->post_doc[i - 1]) ||
                bm->post_tf[i] == 0)
                bad = "postings";
    double total = 0;
    for (int32_t d = 0; d < N && !bad; d++) {
        if (bm->dl[d] < 0) bad = "doc lengths";
        total += (double)bm->dl[d];
    }
    memset(bm->tslot, 0xff, sizeof(int32_t) * tcap);
    for (int32_t t = 0; t < T && !bad; t++) {
        const char *s = bm->tarena + bm->term_off[t];
        int64_t n = bm->term_off[t + 1] - bm->term_off[t];
        uint64_t hh = tok_hash(s, n);
        if (term_find(bm, s, n, hh) >= 0) { bad = "terms (duplicate)"; break; }
        bm->term_hash[t] = hh;
        uint32_t i = (uint32_t)hh & (tcap - 1);
        while (bm->tslot[i] >= 0) i = (i + 1) & (tcap - 1);
        bm->tslot[i] = t;
    }
    if (bad) {
        et_fail(err, ET_ERR_FORMAT, "%s: BM25 section: inconsistent %s", name, bad);
        et_bm25_free(bm);
        return NULL;
    }
    bm->avgdl = N ? total / N : 0;
    derive_stats(bm);
    return bm;
}
