/* finetune.c - `embedtune finetune` as a library call (see finetune.h). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adapt.h"
#include "cJSON.h"
#include "data.h"
#include "experts.h"
#include "fileio.h"
#include "finetune.h"
#include "lora.h"
#include "hf.h"
#include "hybrid.h"
#include "bm25.h"
#include "kernels.h"
#include "metrics.h"
#include "moe.h"
#include "rng.h"
#include "util.h"

void et_finetune_cfg_default(et_finetune_cfg *c) {
    memset(c, 0, sizeof *c);
    et_train_cfg_default(&c->train);
    c->train.max_len_q = 0; /* 0: the encoding's cap (R->mlen), so queries train as dev and held-out encode them */
    c->train.max_len_d = 0;
    c->negatives = -1;   /* decided: 3 ANCE negatives per query (infonce/clp), 7 per positive row (mse/soft) */
    c->mine_lo = 2;
    c->mine_hi = 100;
    c->neg_hard = 1;
    c->neg_source = ET_FT_NEG_DEFAULT;
    c->fusion = 1;
    c->mix = 1;
    c->bm25_fit = 0; /* opt-in: the training-query gains did not carry to held-out queries (README) */
    c->use_bm25 = 1;
    c->start_expert = 1;
    c->hard_ratio = ET_FT_HARD_RATIO;
    c->train.soft_norm = ET_SNORM_RANK;
    c->train.soft_list = 1; /* soft1..3: soft-target InfoNCE over each query's group (finetune.h, issue 20) */
    c->soft_range = ET_FT_RANGE_AUTO;
    c->watch_every = ET_FT_WATCH_AUTO;
    c->collapse_aniso = 0.10;
    c->collapse_margin = 0.5;
    c->sts_max = 5;
    c->pos_threshold = 0.5;
    c->enc_batch = 32;
    c->seed = 42;
    c->train.lr = 0;     /* decided by et_finetune_plan */
    c->train.batch = 0;
    c->train.epochs = 0;
    c->dev = -1;
    c->patience = 2;
    c->max_train_queries = -1;
}

static void say(const et_finetune_cfg *c, const char *fmt, ...) {
    if (c->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("finetune: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}



/* ------------------------------------------------------------------ progress */

/* an encoding's progress: the stderr line (encode.h) of `what`, and cfg->progress for phase ph */
typedef struct { et_encode_progress line; const et_finetune_cfg *c; et_ft_phase ph; } ft_progress;

const char *et_ft_phase_name(et_ft_phase p) {
    static const char *n[] = {"load", "parse", "eval_before", "mine", "experts", "train", "refresh", "eval_after", "done"};
    return (unsigned)p <= ET_FT_PHASE_DONE ? n[p] : "?";
}

/* cfg->progress at a phase start (no count); non-zero = cancel */
static int phase_start(const et_finetune_cfg *c, et_ft_phase ph) {
    if (!c->progress) return 0;
    et_ft_progress p = {ph, 0, 0, NULL};
    return c->progress(c->progress_user, &p);
}

static et_status cancelled(et_error *err, et_ft_phase ph) {
    return et_fail(err, ET_ERR_CANCELLED, "finetune: cancelled (%s)", et_ft_phase_name(ph));
}

/* the progress of a step (an encoding, or any et_progress): cfg->progress (may cancel), and stderr unless quiet */
static int enc_progress(void *user, size_t done, size_t total) {
    ft_progress *p = user;
    if (done == 0) p->line.t0 = et_now_s(); /* a step's first report (0 done) starts its clock: its rate and ETA */
    if (p->c->progress) {
        et_ft_progress q = {p->ph, (double)done, (double)total, NULL, p->line.what, p->line.unit ? p->line.unit : "texts"};
        if (p->c->progress(p->c->progress_user, &q)) return 1;
    }
    return p->c->quiet ? 0 : et_encode_progress_print(&p->line, done, total);
}

/* A step `what` of phase ph counted in `unit` (NULL = texts), started now */
static ft_progress ft_step(const et_finetune_cfg *c, et_ft_phase ph, const char *what, const char *unit) {
    return (ft_progress){{et_now_s(), what, 0, unit}, c, ph};
}
/* p as an et_progress (none when nobody listens) */
static et_progress ft_step_progress(ft_progress *p) {
    return (et_progress){p->c->quiet && !p->c->progress ? NULL : enc_progress, p};
}
/* encoding options of a step: the run's batch and token cap, p's progress */
static et_encode_opts ft_step_encode(const et_finetune_cfg *c, int mlen, ft_progress *p) {
    return (et_encode_opts){c->enc_batch, mlen, c->quiet && !c->progress ? NULL : enc_progress, p};
}

/* ------------------------------------------------------------------ sources */

enum { SRC_BEIR = 0, SRC_PAIRS = 1, SRC_STS = 2 };
static const char *src_names[] = {"beir", "pairs", "sts"};

typedef struct {
    int kind;
    et_beir B;
    et_pairs P;
    et_sts S;
    int loaded;
} source;

static et_status source_load(const char *path, source *s, et_error *err) {
    memset(s, 0, sizeof *s);
    if (et_dir_exists(path)) {
        s->kind = SRC_BEIR;
        et_status st = et_beir_read(path, NULL, &s->B, NULL, err);
        if (!st) s->loaded = 1;
        return st;
    }
    if (!et_file_exists(path)) return et_fail(err, ET_ERR_IO, "%s: no such file or folder", path);
    if (et_sts_sniff(path)) {
        s->kind = SRC_STS;
        et_status st = et_sts_read(path, NULL, &s->S, NULL, err);
        s->loaded = 1;
        return st;
    }
    s->kind = SRC_PAIRS;
    et_status st = et_pairs_read(path, NULL, &s->P, NULL, err);
    s->loaded = 1;
    return st;
}

static void source_free(source *s) {
    if (!s->loaded) return;
    if (s->kind == SRC_BEIR) et_beir_free(&s->B);
    else if (s->kind == SRC_PAIRS) et_pairs_free(&s->P);
    else et_sts_free(&s->S);
    s->loaded = 0;
}

/* rows of a pairs/STS source as (a, b, label, id) */
static int64_t src_rows(const source *s) { return s->kind == SRC_PAIRS ? s->P.n : s->S.n; }
static const char *src_a(const source *s, int64_t i) { return s->kind == SRC_PAIRS ? s->P.query[i] : s->S.s1[i]; }
static const char *src_b(const source *s, int64_t i) { return s->kind == SRC_PAIRS ? s->P.passage[i] : s->S.s2[i]; }
static const char *src_id(const source *s, int64_t i) { return s->kind == SRC_PAIRS ? s->P.id[i] : s->S.id[i]; }
static int src_labelled(const source *s) { return s->kind == SRC_STS || s->P.has_label; }
static float src_label(const source *s, int64_t i, double smax) {
    if (s->kind == SRC_STS) { double v = s->S.score[i] / smax; return (float)(v < 0 ? 0 : v > 1 ? 1 : v); }
    return s->P.label[i];
}

/* A split of the rows/queries, on the key of data.h (et_split_key: the id, else the query text): which (the
 * held-out rule, et_split_keep); dev = 0 ignore the dev rule, 1 dev only, 2 non-dev only (et_split_is_dev);
 * keys above subset_max are left out (et_split_subset_key); none = 1: nothing is kept. */
typedef struct { et_split which; int dev, none; uint32_t subset_max; } ft_split;

static int in_split(const char *id, const char *query, const ft_split *sp) {
    const char *key = et_split_key(id, query);
    if (sp->none || !et_split_keep(sp->which, id, query)) return 0;
    if (sp->dev && et_split_is_dev(key) != (sp->dev == 1)) return 0;
    if (sp->subset_max != UINT32_MAX && et_split_subset_key(key) > sp->subset_max) return 0;
    return 1;
}

static const ft_split SPLIT_ALL = {ET_SPLIT_ALL, 0, 0, UINT32_MAX}, SPLIT_TEST = {ET_SPLIT_TEST, 0, 0, UINT32_MAX};

static int keep_row(const source *s, int64_t i, const ft_split *sp) { return in_split(src_id(s, i), src_a(s, i), sp); }

/* ------------------------------------------------------------------ the evaluation set */

typedef struct {
    et_ft_eval_kind kind;
    /* IR */
    const char **docs; int32_t nd;
    const char **qs; int32_t nq;
    et_qrel *qrels; int64_t *qoff;
    et_pair_index ix; int has_ix;
    const char **docs_own;    /* docs when they are ix's passages + a --corpus file's (evalset_add_corpus) */
    /* pairs */
    const char **a, **b; float *lab; int64_t n;
} evalset;

static void evalset_free(evalset *e) {
    free(e->qs); free(e->qrels); free(e->qoff); free(e->a); free(e->b); free(e->lab); free(e->docs_own);
    if (e->has_ix) et_pair_index_free(&e->ix);
    memset(e, 0, sizeof *e);
}

typedef struct { int32_t q, d, g; } qdg;
static int cmp_qdg(const void *x, const void *y) {
    const qdg *a = x, *b = y;
    if (a->q != b->q) return a->q < b->q ? -1 : 1;
    return (a->d > b->d) - (a->d < b->d);
}

static et_status evalset_make(const source *s, const ft_split *sp, double smax, const char *path, evalset *e, et_error *err) {
    memset(e, 0, sizeof *e);
    if (s->kind == SRC_BEIR) {
        const et_beir *B = &s->B;
        e->kind = ET_FT_EVAL_IR;
        e->docs = B->doc_text; e->nd = B->ndocs;
        e->qs = malloc(sizeof(char *) * (size_t)(B->nqueries + 1));
        e->qoff = malloc(sizeof(int64_t) * ((size_t)B->nqueries + 1));
        e->qrels = malloc(sizeof(et_qrel) * (size_t)(B->nqrels + 1));
        if (!e->qs || !e->qoff || !e->qrels) return et_fail(err, ET_ERR_NOMEM, "out of memory");
        int64_t m = 0;
        for (int32_t q = 0; q < B->nqueries; q++) {
            if (B->qrel_off[q + 1] == B->qrel_off[q]) continue;
            if (!in_split(B->query_id[q], B->query_text[q], sp)) continue;
            e->qoff[e->nq] = m;
            for (int64_t u = B->qrel_off[q]; u < B->qrel_off[q + 1]; u++) { e->qrels[m] = B->qrels[u]; e->qrels[m++].q = e->nq; }
            e->qs[e->nq++] = B->query_text[q];
        }
        e->qoff[e->nq] = m;
        if (!e->nq) return et_fail(err, ET_ERR_FORMAT, "%s: no judged query in the %s split", path, sp->which == ET_SPLIT_TEST ? "held-out" : sp->dev == 1 ? "dev" : "chosen");
        return ET_OK;
    }
    int64_t n = src_rows(s);
    if (src_labelled(s)) {
        e->kind = ET_FT_EVAL_PAIRS;
        e->a = malloc(sizeof(char *) * (size_t)(n + 1));
        e->b = malloc(sizeof(char *) * (size_t)(n + 1));
        e->lab = malloc(sizeof(float) * (size_t)(n + 1));
        if (!e->a || !e->b || !e->lab) return et_fail(err, ET_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < n; i++) {
            if (!keep_row(s, i, sp)) continue;
            e->a[e->n] = src_a(s, i); e->b[e->n] = src_b(s, i); e->lab[e->n++] = src_label(s, i, smax);
        }
        if (e->n < 2) return et_fail(err, ET_ERR_FORMAT, "%s: fewer than 2 rows in the %s split (%lld)", path, sp->which == ET_SPLIT_TEST ? "held-out" : sp->dev == 1 ? "dev" : "chosen", (long long)e->n);
        return ET_OK;
    }
    /* positive pairs: every distinct passage is the corpus; the held-out rows' queries are searched */
    e->kind = ET_FT_EVAL_IR;
    et_status st = et_pair_index_build(&s->P, &e->ix, err);
    if (st) return st;
    e->has_ix = 1;
    e->docs = e->ix.ptext; e->nd = e->ix.np;
    qdg *v = malloc(sizeof(qdg) * (size_t)(n + 1));
    int32_t *qmap = malloc(sizeof(int32_t) * (size_t)(e->ix.nq + 1));
    e->qs = malloc(sizeof(char *) * (size_t)(e->ix.nq + 1));
    e->qoff = malloc(sizeof(int64_t) * ((size_t)e->ix.nq + 1));
    e->qrels = malloc(sizeof(et_qrel) * (size_t)(n + 1));
    if (!v || !qmap || !e->qs || !e->qoff || !e->qrels) { free(v); free(qmap); return et_fail(err, ET_ERR_NOMEM, "out of memory"); }
    for (int32_t q = 0; q < e->ix.nq; q++) qmap[q] = -1;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!keep_row(s, i, sp)) continue;
        int32_t q = e->ix.row_q[i];
        if (qmap[q] < 0) { qmap[q] = e->nq; e->qs[e->nq++] = e->ix.qtext[q]; }
        v[m++] = (qdg){qmap[q], e->ix.row_p[i], 1};
    }
    qsort(v, (size_t)m, sizeof *v, cmp_qdg);
    int64_t w = 0;
    int32_t cq = 0;
    e->qoff[0] = 0;
    for (int64_t i = 0; i < m; i++) {
        if (i && v[i].q == v[i - 1].q && v[i].d == v[i - 1].d) continue;
        while (cq < v[i].q) e->qoff[++cq] = w;
        e->qrels[w++] = (et_qrel){v[i].q, v[i].d, 1};
    }
    while (cq < e->nq) e->qoff[++cq] = w;
    free(v); free(qmap);
    if (!e->nq) return et_fail(err, ET_ERR_FORMAT, "%s: no rows in the %s split", path, sp->which == ET_SPLIT_TEST ? "held-out" : sp->dev == 1 ? "dev" : "chosen");
    return ET_OK;
}

/* A pairs file with a corpus file (--corpus): the held-out queries search the file's distinct passages and then
 * the corpus passages that are not among them (first occurrence kept, in the corpus's order), which is what the
 * page's search box searches. The qrels keep their indices (the pairs' passages stay first). */
typedef struct { const char *t; int64_t i; } txt_at;
static int cmp_txt_at(const void *x, const void *y) {
    const txt_at *a = x, *b = y;
    int c = strcmp(a->t, b->t);
    return c ? c : (a->i > b->i) - (a->i < b->i);
}
static et_status evalset_add_corpus(evalset *e, const char *const *corpus, int32_t n, et_error *err) {
    int64_t nd = e->nd, tot = nd + n;
    if (tot > INT32_MAX) return et_fail(err, ET_ERR_ARG, "finetune: %lld passages to evaluate over (at most %d)", (long long)tot, INT32_MAX);
    txt_at *v = malloc(sizeof(txt_at) * (size_t)(tot ? tot : 1));
    unsigned char *keep = calloc((size_t)(tot ? tot : 1), 1);
    const char **docs = malloc(sizeof(char *) * (size_t)(tot ? tot : 1));
    if (!v || !keep || !docs) { free(v); free(keep); free(docs); return et_fail(err, ET_ERR_NOMEM, "out of memory for %lld passages", (long long)tot); }
    for (int64_t i = 0; i < nd; i++) v[i] = (txt_at){e->docs[i], i};
    for (int32_t j = 0; j < n; j++) v[nd + j] = (txt_at){corpus[j], nd + j};
    qsort(v, (size_t)tot, sizeof *v, cmp_txt_at);
    for (int64_t k = 0; k < tot; k++) if (!k || strcmp(v[k].t, v[k - 1].t)) keep[v[k].i] = 1;
    int32_t m = 0;
    for (int64_t i = 0; i < tot; i++) if (keep[i] || i < nd) docs[m++] = i < nd ? e->docs[i] : corpus[i - nd];
    free(v); free(keep);
    free(e->docs_own);
    e->docs = e->docs_own = docs;
    e->nd = m;
    return ET_OK;
}

/* ------------------------------------------------------------------ training examples */

static char *xstrdup(const char *s) { return strdup(s ? s : ""); }

typedef struct {
    /* mining universe */
    const char **corpus; int32_t nd;
    const char **mq; int32_t nmq;      /* mining queries */
    int64_t *mq_off; int32_t *mq_pos;  /* positives (corpus indices), CSR */
    /* examples -> mining query */
    int32_t *ex_q;
    int n_ex;                          /* examples [0, n_ex) get mined negatives (the labelled ones) */
} mining;

static void ex_free(et_train_example *e) {
    free(e->query); free(e->positive);
    for (int i = 0; i < e->n_neg; i++) free(e->negatives[i]);
    for (int i = 0; i < e->n_negq; i++) free(e->neg_queries[i]);
    free(e->negatives); free(e->neg_queries); free(e->scores);
}

static int is_pos(const mining *M, int32_t q, int32_t d) {
    for (int64_t u = M->mq_off[q]; u < M->mq_off[q + 1]; u++) if (M->mq_pos[u] == d) return 1;
    return 0;
}

/* ------------------------------------------------------------------ BM25 hard negatives (--neg-source bm25|mix) */

/* BM25's ranking of the mining queries over the mining corpus, through the ANCE window rule (et_mine_from_ranking:
 * ranks [mine_lo, mine_hi), positives skipped, own queries for CLP); the ranking ends where a query's terms do
 * (score 0), so those slots stay -1 for the random fill */
static et_status bm25_negatives(const et_finetune_cfg *c, et_pool *pool, const mining *M, int32_t G, int32_t *neg,
                                int32_t *negq, et_mine_stats *stats, et_error *err) {
    int32_t K = c->mine_hi < M->nd ? c->mine_hi : M->nd;
    int32_t *rk = malloc(sizeof(int32_t) * (size_t)(M->nmq ? M->nmq : 1) * (size_t)(K ? K : 1));
    double *sc = malloc(sizeof(double) * (size_t)(M->nmq ? M->nmq : 1) * (size_t)(K ? K : 1));
    float *sf = malloc(sizeof(float) * (size_t)(M->nmq ? M->nmq : 1) * (size_t)(K ? K : 1));
    et_bm25 *bm = NULL;
    et_status s = ET_OK;
    if (!rk || !sc || !sf) { s = et_fail(err, ET_ERR_NOMEM, "BM25 negatives: out of memory (%d queries x %d)", M->nmq, K); goto done; }
    if (!(bm = et_bm25_build(M->corpus, M->nd, NULL, err))) { s = err && err->code ? err->code : ET_ERR_NOMEM; goto done; }
    if ((s = et_bm25_search_batch(pool, bm, M->mq, M->nmq, K, rk, sc, err))) goto done;
    for (int64_t i = 0; i < (int64_t)M->nmq * K; i++) {
        if (!(sc[i] > 0)) rk[i] = -1;
        sf[i] = (float)sc[i];
    }
    et_mine_cfg mc = {c->mine_lo, c->mine_hi, G, 0.f, 0, c->seed, 0, 0};
    s = et_mine_from_ranking(&mc, pool, rk, sf, K, M->nmq, M->nd, M->mq_off, M->mq_pos, neg, NULL, negq, stats, err);
done:
    free(rk); free(sc); free(sf);
    et_bm25_free(bm);
    return s;
}

/* mix: a[0], b[0], a[1], b[1], ... per query (a = ANCE, b = BM25), duplicates and empty slots skipped, G kept */
static void mix_negatives(int32_t nq, int32_t G, const int32_t *a, const int32_t *aq, const int32_t *b, const int32_t *bq,
                          int32_t *out, int32_t *outq) {
    for (int32_t q = 0; q < nq; q++) {
        int32_t *o = out + (int64_t)q * G, *oq = outq + (int64_t)q * G, n = 0;
        for (int32_t j = 0; j < 2 * G && n < G; j++) {
            const int32_t *src = j % 2 ? b : a, *srq = j % 2 ? bq : aq;
            int32_t doc = src[(int64_t)q * G + j / 2], dup = doc < 0;
            for (int32_t u = 0; u < n && !dup; u++) dup = o[u] == doc;
            if (dup) continue;
            oq[n] = srq[(int64_t)q * G + j / 2];
            o[n++] = doc;
        }
        for (; n < G; n++) { o[n] = -1; oq[n] = -1; }
    }
}

const char *et_ft_neg_source_name(int s) { return s == ET_FT_NEG_BM25 ? "bm25" : s == ET_FT_NEG_MIX ? "mix" : "ance"; }

/* encode with `m`, mine, and (re)write every example's negatives */
static et_status mine_and_attach(const et_finetune_cfg *c, const et_bert *m, const et_tokenizer *tok, et_pool *pool,
                                 int mlen, const mining *M, et_train_data *D, int clp, et_mine_stats *stats,
                                 uint64_t round, et_error *err) {
    int32_t d = m->cfg.hidden_size, G = c->negatives;
    float *Q = malloc(sizeof(float) * (size_t)M->nmq * d), *Dm = malloc(sizeof(float) * (size_t)M->nd * d);
    int32_t *neg = malloc(sizeof(int32_t) * (size_t)M->nmq * G), *negq = malloc(sizeof(int32_t) * (size_t)M->nmq * G);
    et_status s = ET_OK;
    int32_t *bneg = NULL, *bnegq = NULL;
    if (!Q || !Dm || !neg || !negq) { s = et_fail(err, ET_ERR_NOMEM, "mining: out of memory"); goto done; }
    if (c->neg_source == ET_FT_NEG_BM25) { /* lexical negatives only: no encoding */
        if ((s = bm25_negatives(c, pool, M, G, neg, negq, stats, err))) goto done;
        goto fill;
    }
    ft_progress ps = {{et_now_s(), round ? "re-encode corpus" : "encode corpus", 0}, c, round ? ET_FT_PHASE_REFRESH : ET_FT_PHASE_MINE};
    et_encode_opts eo = {c->enc_batch, mlen, c->quiet && !c->progress ? NULL : enc_progress, &ps};
    if ((s = et_encode_texts(m, tok, pool, M->corpus, (size_t)M->nd, &eo, Dm, err))) goto done;
    eo.progress = NULL;
    if ((s = et_encode_texts(m, tok, pool, M->mq, (size_t)M->nmq, &eo, Q, err))) goto done;
    et_l2norm_rows(Q, M->nmq, d);
    et_l2norm_rows(Dm, M->nd, d);
    et_mine_cfg mc = {c->mine_lo, c->mine_hi, G, 0.f, 0, c->seed, 0, 0};
    if ((s = et_mine_negatives(&mc, pool, Q, Dm, M->nmq, M->nd, d, M->mq_off, M->mq_pos, neg, NULL, negq, stats, err))) goto done;
    if (c->neg_source == ET_FT_NEG_MIX) {
        bneg = malloc(sizeof(int32_t) * (size_t)M->nmq * G);
        bnegq = malloc(sizeof(int32_t) * (size_t)M->nmq * G);
        int32_t *an = malloc(sizeof(int32_t) * (size_t)M->nmq * G), *anq = malloc(sizeof(int32_t) * (size_t)M->nmq * G);
        if (!bneg || !bnegq || !an || !anq) { free(an); free(anq); s = et_fail(err, ET_ERR_NOMEM, "mining: out of memory"); goto done; }
        memcpy(an, neg, sizeof(int32_t) * (size_t)M->nmq * G);
        memcpy(anq, negq, sizeof(int32_t) * (size_t)M->nmq * G);
        et_mine_stats bst;
        if ((s = bm25_negatives(c, pool, M, G, bneg, bnegq, &bst, err))) { free(an); free(anq); goto done; }
        mix_negatives(M->nmq, G, an, anq, bneg, bnegq, neg, negq);
        free(an); free(anq);
    }
fill:;
    /* fill empty slots with random non-positives (seeded per query and round) */
    et_rng base;
    et_rng_seed(&base, c->seed ^ 0x9e3779b97f4a7c15ull);
    int64_t filled = 0;
    for (int32_t q = 0; q < M->nmq; q++) {
        et_rng r;
        et_rng_fork(&base, (uint64_t)q * 1000003u + round, &r);
        for (int g = 0; g < G; g++) {
            int32_t *x = &neg[(int64_t)q * G + g];
            if (*x >= 0) continue;
            for (int t = 0; t < 1000 && *x < 0; t++) {
                int32_t cand = (int32_t)et_rng_below(&r, (uint64_t)M->nd);
                if (!is_pos(M, q, cand)) *x = cand;
            }
            if (*x < 0) { s = et_fail(err, ET_ERR_ARG, "mining: query '%.60s' has no non-positive document to use as a negative", M->mq[q]); goto done; }
            negq[(int64_t)q * G + g] = -1;
            filled++;
        }
    }
    if (filled) say(c, "%lld negative slot(s) without a candidate in ranks [%d, %d) were filled with random documents", (long long)filled, c->mine_lo, c->mine_hi);
    for (int i = 0; i < M->n_ex; i++) {
        et_train_example *e = &D->ex[i];
        int32_t q = M->ex_q[i];
        for (int g = 0; g < e->n_neg; g++) free(e->negatives[g]);
        for (int g = 0; g < e->n_negq; g++) free(e->neg_queries[g]);
        if (!e->negatives) e->negatives = calloc((size_t)G, sizeof(char *));
        if (clp && !e->neg_queries) e->neg_queries = calloc((size_t)G, sizeof(char *));
        if (!e->negatives || (clp && !e->neg_queries)) { e->n_neg = e->n_negq = 0; s = et_fail(err, ET_ERR_NOMEM, "out of memory"); goto done; }
        e->n_neg = G;
        e->n_negq = clp ? G : 0;
        for (int g = 0; g < G; g++) {
            e->negatives[g] = xstrdup(M->corpus[neg[(int64_t)q * G + g]]);
            if (clp) {
                int32_t oq = negq[(int64_t)q * G + g];
                e->neg_queries[g] = oq >= 0 ? xstrdup(M->mq[oq]) : NULL;
            }
        }
    }
done:
    free(Q); free(Dm); free(neg); free(negq); free(bneg); free(bnegq);
    return s;
}

/* append the adaptation pairs to D, each with `negatives` other pairs' positives (not from its own passage),
 * drawn with a seeded stream; CLP: their negative queries are unknown (masked) */
static et_status adapt_attach(const et_finetune_cfg *c, const et_adapt_pairs *A, et_train_data *D, int clp, et_error *err) {
    int G = c->negatives;
    et_rng r;
    et_rng_seed(&r, c->seed ^ 0xada9700ull);
    for (int64_t i = 0; i < A->n; i++) {
        et_train_example *e = &D->ex[D->n];
        e->line = D->n + 1;
        D->n++;
        e->query = xstrdup(A->query[i]);
        e->positive = xstrdup(A->positive[i]);
        e->negatives = calloc((size_t)G, sizeof(char *));
        if (clp) e->neg_queries = calloc((size_t)G, sizeof(char *));
        if (!e->query || !e->positive || !e->negatives || (clp && !e->neg_queries)) return et_fail(err, ET_ERR_NOMEM, "out of memory");
        e->n_neg = G;
        e->n_negq = clp ? G : 0;
        for (int g = 0; g < G; g++) {
            int64_t j = i;
            for (int t = 0; t < 100 && A->doc[j] == A->doc[i]; t++) j = (int64_t)et_rng_below(&r, (uint64_t)A->n);
            if (!(e->negatives[g] = xstrdup(A->positive[j]))) return et_fail(err, ET_ERR_NOMEM, "out of memory");
        }
    }
    return ET_OK;
}

/* ------------------------------------------------------------------ progress and refresh */

typedef struct {
    const et_finetune_cfg *c;
    int refresh_every; /* resolved: 0 = never */
    int watch_every;   /* resolved: 0 = never */
    long watch_last;   /* the step before the last (0 = none) */
    double t0, last, ema;
    int n;
    double loss;
    int cancelled; /* cfg->progress asked to stop */
    int dev_every;     /* 0 = no dev evaluation */
    double deadline;   /* et_now_s() past which training stops (0 = none) */
    int timed_out;
} step_prog;

static int watch_due(const step_prog *p, long step, long total) {
    return step < total && ((p->watch_every > 0 && step % p->watch_every == 0) || (p->watch_last && step == p->watch_last));
}

static int on_step(void *user, const et_train_stats *s) {
    step_prog *p = user;
    p->n++;
    p->ema = 0.9 * p->ema + 0.1 * s->loss;
    p->loss = p->ema / (1 - pow(0.9, p->n));
    if (p->c->progress) {
        et_ft_progress q = {ET_FT_PHASE_TRAIN, (double)s->step, (double)s->total_steps, s, NULL, "steps"};
        if (p->c->progress(p->c->progress_user, &q)) { p->cancelled = 1; return 1; }
    }
    int more = s->step < s->total_steps;
    int refresh = p->refresh_every > 0 && s->step % p->refresh_every == 0 && more;
    if (p->dev_every > 0 && s->step % p->dev_every == 0 && more) refresh = 1;
    if (p->deadline > 0 && more && et_now_s() > p->deadline) { p->timed_out = 1; refresh = 1; }
    refresh |= watch_due(p, s->step, s->total_steps);
    if (p->c->quiet) return refresh;
    double t = et_now_s();
    if (s->step < s->total_steps && !refresh && t - p->last < 0.2) return refresh;
    p->last = t;
    double per = (t - p->t0) / p->n, eta = per * (double)(s->total_steps - s->step);
    fprintf(stderr, "\rtrain: step %ld/%ld  epoch %d  loss %.4f  lr %.2e  |g| %.3f  %.1f ex/s  ETA %.0fs   ", s->step,
            s->total_steps, s->epoch + 1, p->loss, s->lr, s->grad_norm, s->examples_per_s, eta);
    if (s->step == s->total_steps || refresh) fputc('\n', stderr);
    return refresh;
}

/* remove out_dir/checkpoint-* and out_dir/latest (the final model stays); what cannot be removed is said, not fatal */
static void clean_checkpoints(const et_finetune_cfg *c, const char *out) {
    DIR *d = opendir(out);
    if (!d) return;
    struct dirent *e;
    char p[ET_PATH_MAX];
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "checkpoint-", 11)) continue;
        et_error re = {0};
        if (!et_path_join(p, sizeof p, out, e->d_name, &re)) et_rm_tree(p, &re);
        if (re.code) say(c, "warning: a checkpoint was left behind: %s", re.msg);
    }
    closedir(d);
    if (snprintf(p, sizeof p, "%s/latest", out) < (int)sizeof p) unlink(p);
}

/* ------------------------------------------------------------------ soft targets: calibration, report, guards */

/* Soft losses with sampled negatives: a negative row whose target (the run's rule and normalisation over the expert
 * columns) is at least that of its own positive row contradicts its label. The experts call it as related as the
 * answer: one of the first expert's look-alikes, or an answer the file does not list. Each such negative is
 * replaced, once, by a random passage that is not a positive of the query nor already among the row's negatives, and
 * re-scored. Rows: each positive row is followed by its negatives (rsrc = -1); cols [nex][nr]; the expert columns
 * are those the trainer gets (all but `skip`). */
static et_status soft_fix_negatives(const et_finetune_cfg *c, const et_pair_index *ix, const et_expert *ex, int nex,
                                    int skip, const int32_t *rq, int32_t *rp, const float *rl, const int64_t *rsrc,
                                    int64_t nr, float *cols, int64_t *n_replaced, et_error *err) {
    const et_train_cfg *tc = &c->train;
    int K = 0;
    for (int e = 0; e < nex; e++) K += e != skip;
    *n_replaced = 0;
    if (!K || nr < 2 || nr > INT32_MAX) return ET_OK;
    float *S = malloc(sizeof(float) * (size_t)nr * K), *t = malloc(sizeof(float) * (size_t)nr);
    et_status s = ET_OK;
    if (!S || !t) { s = et_fail(err, ET_ERR_NOMEM, "soft negatives: out of memory"); goto done; }
    for (int64_t i = 0; i < nr; i++)
        for (int e = 0, k = 0; e < nex; e++)
            if (e != skip) S[i * K + k++] = cols[(int64_t)e * nr + i];
    et_soft_rule rule = tc->loss == ET_TRAIN_SOFT1 ? ET_SOFT_MEAN : tc->loss == ET_TRAIN_SOFT2 ? ET_SOFT_BLEND : ET_SOFT_GATED;
    if ((s = et_soft_targets(rule, tc->soft_norm, tc->alpha, rl, S, (int)nr, K, t, err))) goto done;
    et_rng base;
    et_rng_seed(&base, c->seed ^ 0x5eed0f1ee7ull);
    for (int64_t r0 = 0, r; r0 < nr; r0 = r) {
        for (r = r0 + 1; r < nr && rsrc[r] < 0; r++) {
            if (t[r] < t[r0]) continue;
            int32_t q = rq[r];
            et_rng g;
            et_rng_fork(&base, (uint64_t)r, &g);
            for (int tries = 0; tries < 200; tries++) {
                int32_t p = (int32_t)et_rng_below(&g, (uint64_t)ix->np), bad = 0;
                for (int64_t u = ix->pos_off[q]; u < ix->pos_off[q + 1] && !bad; u++) bad = ix->pos[u] == p;
                for (int64_t u = r0 + 1; u < r && !bad; u++) bad = rp[u] == p;
                for (int64_t u = r + 1; u < nr && rsrc[u] < 0 && !bad; u++) bad = rp[u] == p;
                if (bad) continue;
                rp[r] = p;
                for (int e = 0; e < nex && !s; e++) s = et_expert_score_qp(&ex[e], ix, &q, &p, 1, cols + (int64_t)e * nr + r, err);
                if (s) goto done;
                ++*n_replaced;
                break;
            }
        }
    }
done:
    free(S); free(t);
    return s;
}

/* The list form (train.h soft_list): the pair rows (each positive row followed by its label-0 rows, scores K each)
 * become one example per positive row: its query and positive, the negatives in order, and scores
 * [(1 + n_neg) * K] (the positive's first). D is rebuilt in place. */
static et_status ft_group_rows(et_train_data *D, et_error *err) {
    int n = 0, K = D->n ? D->ex[0].n_scores : 0;
    for (int i = 0; i < D->n; i++) n += D->ex[i].label >= 0.5f;
    et_train_example *G = calloc((size_t)n + 1, sizeof *G);
    if (!G) return et_fail(err, ET_ERR_NOMEM, "out of memory");
    int m = 0;
    for (int i = 0; i < D->n;) {
        et_train_example *p = &D->ex[i];
        int j = i + 1;
        while (j < D->n && D->ex[j].label < 0.5f) j++;
        if (p->label < 0.5f) { i = j; continue; } /* not reached: rows start with a positive */
        et_train_example *e = &G[m++];
        int nn = j - i - 1;
        e->query = p->query; e->positive = p->positive; p->query = p->positive = NULL;
        e->label = 1; e->has_label = 1; e->line = m;
        e->negatives = malloc(sizeof(char *) * (size_t)(nn ? nn : 1));
        e->scores = malloc(sizeof(float) * (size_t)(1 + nn) * (K ? K : 1));
        if (!e->negatives || !e->scores) goto nomem;
        e->n_neg = nn;
        e->n_scores = (1 + nn) * K;
        if (K) memcpy(e->scores, p->scores, sizeof(float) * K);
        for (int g = 0; g < nn; g++) {
            et_train_example *r = &D->ex[i + 1 + g];
            e->negatives[g] = r->positive; r->positive = NULL;
            if (K) memcpy(e->scores + (size_t)(1 + g) * K, r->scores, sizeof(float) * K);
        }
        i = j;
    }
    for (int i = 0; i < D->n; i++) ex_free(&D->ex[i]);
    free(D->ex);
    D->ex = G;
    D->n = m;
    return ET_OK;
nomem:
    for (int i = 0; i < m; i++) ex_free(&G[i]);
    free(G);
    return et_fail(err, ET_ERR_NOMEM, "out of memory");
}

/* Before training a soft loss: the targets the trainer will compute (et_soft_targets_ex, same rule and normalisation),
 * reported (share at the clamp, mean for positives vs negatives, P(pos > neg), each expert's correlation with the
 * label), refused when mostly clamped or not separating (et_soft_targets_check; c->soft_force only reports), and a
 * warning when another soft rule gives the same targets. */
static et_status soft_guard(const et_finetune_cfg *c, const et_train_data *D, const et_train_cfg *tc,
                            const float *start_cos, et_finetune_result *res, et_error *err) {
    int N = D->n, K = N ? D->ex[0].n_scores : 0;
    if (!N || !K) return ET_OK;
    float *y = malloc(sizeof(float) * (size_t)N), *S = malloc(sizeof(float) * (size_t)N * K);
    float *t = malloc(sizeof(float) * (size_t)N * 3);
    double *corr = malloc(sizeof(double) * (size_t)K);
    et_status s = ET_OK;
    if (!y || !S || !t || !corr) { s = et_fail(err, ET_ERR_NOMEM, "soft targets: out of memory"); goto done; }
    for (int i = 0; i < N; i++) {
        y[i] = D->ex[i].label;
        memcpy(S + (size_t)i * K, D->ex[i].scores, sizeof(float) * K);
    }
    static const et_soft_rule rules[3] = {ET_SOFT_MEAN, ET_SOFT_BLEND, ET_SOFT_GATED};
    int me = tc->loss == ET_TRAIN_SOFT1 ? 0 : tc->loss == ET_TRAIN_SOFT2 ? 1 : 2, ncl = 0;
    for (int r = 0; r < 3; r++) {
        int cl = 0;
        if ((s = et_soft_targets_ex(rules[r], tc->soft_norm, tc->alpha, y, S, N, K, t + (size_t)r * N, &cl, err))) goto done;
        if (r == me) ncl = cl;
    }
    if (start_cos && c->soft_range == ET_FT_RANGE_AUTO) et_soft_range_match(t + (size_t)me * N, start_cos, N, &res->soft_lo, &res->soft_hi);
    if (res->soft_lo != 0 || res->soft_hi != 1)
        say(c, "soft targets calibrated to the starting model's cosines of the training rows: t -> %.4f + %.4f t", res->soft_lo,
            res->soft_hi - res->soft_lo);
    et_soft_target_stats(y, t + (size_t)me * N, N, ncl, &res->soft);
    res->has_soft = 1;
    et_soft_expert_corr(y, S, N, K, corr);
    for (int k = 0; k < K && k < ET_FT_MAX_EXPERT_MODELS + 8; k++) res->expert_corr[k] = corr[k];
    const et_soft_stats *st = &res->soft;
    say(c, "soft targets (%s, --soft-norm %s, %d expert(s)): %.1f%% at the clamp; positives %.3f +- %.3f (%d rows), "
           "negatives %.3f +- %.3f (%d rows); P(positive > negative) %.3f", et_soft_rule_name(rules[me]),
        et_soft_norm_name(tc->soft_norm), K, 100 * st->share_clamped, st->mean_pos, st->sd_pos, st->n_pos, st->mean_neg,
        st->sd_neg, st->n_neg, st->auc);
    for (int k = 0; k < K; k++)
        say(c, "  expert %-16s correlation with the label %+.3f%s", k < res->n_experts ? res->expert_names[k] : "?", corr[k],
            corr[k] <= 0 ? "  (does not favour the answers)" : "");
    for (int r = 0; r < 3; r++) {
        if (r == me) continue;
        float md = 0;
        for (int i = 0; i < N; i++) md = fmaxf(md, fabsf(t[(size_t)r * N + i] - t[(size_t)me * N + i]));
        if (md < 1e-6f)
            say(c, "warning: %s and %s give the same targets here%s: comparing them compares nothing", et_soft_rule_name(rules[me]),
                et_soft_rule_name(rules[r]),
                K == 1 ? " (one expert: its max and min are its score); add experts (keep BM25 and the starting model, "
                         "--expert-model DIR) for the rules to differ" : "");
    }
    if ((s = et_soft_targets_check(st, rules[me], tc->soft_norm, err)) && c->soft_force) {
        say(c, "warning (--force): %s", err->msg);
        s = ET_OK;
    }
done:
    free(y); free(S); free(t); free(corr);
    return s;
}

/* ------------------------------------------------------------------ collapse watch (finetune.h) */

typedef struct {
    int n;                       /* sample pairs */
    const char **q, **p, **r;    /* [n] queries, their positives, random passages (borrowed) */
    double aniso0, margin0;      /* at the start */
    int checks;
} ft_watch;

static void watch_free(ft_watch *w) {
    free(w->q); free(w->p); free(w->r);
    memset(w, 0, sizeof *w);
}

/* sample: up to ET_FT_WATCH_PAIRS of the examples with label >= 0.5 (all examples when unlabelled), and as many
 * random passages of `corpus` */
static et_status watch_init(ft_watch *w, const et_train_data *D, const char *const *corpus, int32_t nd, uint64_t seed,
                            et_error *err) {
    memset(w, 0, sizeof *w);
    int npos = 0;
    for (int i = 0; i < D->n; i++) npos += !D->ex[i].has_label || D->ex[i].label >= 0.5f;
    int n = npos < ET_FT_WATCH_PAIRS ? npos : ET_FT_WATCH_PAIRS;
    if (n < 2 || nd < 2) return ET_OK; /* too small to watch */
    w->q = malloc(sizeof(char *) * (size_t)n); w->p = malloc(sizeof(char *) * (size_t)n); w->r = malloc(sizeof(char *) * (size_t)n);
    if (!w->q || !w->p || !w->r) { watch_free(w); return et_fail(err, ET_ERR_NOMEM, "collapse watch: out of memory"); }
    et_rng rg;
    et_rng_seed(&rg, seed ^ 0xc011a95eull);
    int *idx = malloc(sizeof(int) * (size_t)npos);
    if (!idx) { watch_free(w); return et_fail(err, ET_ERR_NOMEM, "collapse watch: out of memory"); }
    for (int i = 0, k = 0; i < D->n; i++)
        if (!D->ex[i].has_label || D->ex[i].label >= 0.5f) idx[k++] = i;
    for (int j = 0; j < n; j++) { /* partial Fisher-Yates */
        int v = j + (int)et_rng_below(&rg, (uint64_t)(npos - j)), t = idx[j];
        idx[j] = idx[v]; idx[v] = t;
        w->q[j] = D->ex[idx[j]].query; w->p[j] = D->ex[idx[j]].positive;
    }
    free(idx);
    for (int i = 0; i < n; i++) w->r[i] = corpus[et_rng_below(&rg, (uint64_t)nd)];
    w->n = n;
    return ET_OK;
}

static et_status watch_measure(const ft_watch *w, const et_finetune_cfg *c, const et_bert *m, const et_tokenizer *tok,
                               et_pool *pool, int mlen, double *aniso, double *margin, et_error *err) {
    int32_t d = m->cfg.hidden_size;
    float *E = malloc(sizeof(float) * (size_t)w->n * 3 * d);
    if (!E) return et_fail(err, ET_ERR_NOMEM, "collapse watch: out of memory");
    float *Q = E, *P = E + (size_t)w->n * d, *R = E + (size_t)2 * w->n * d;
    et_encode_opts eo = {c->enc_batch, mlen, NULL, NULL};
    et_status s = et_encode_texts(m, tok, pool, w->q, (size_t)w->n, &eo, Q, err);
    if (!s) s = et_encode_texts(m, tok, pool, w->p, (size_t)w->n, &eo, P, err);
    if (!s) s = et_encode_texts(m, tok, pool, w->r, (size_t)w->n, &eo, R, err);
    if (!s) {
        *aniso = et_mean_random_cosine(R, w->n, d, ET_EVAL_ANISO_PAIRS, ET_EVAL_SEED);
        *margin = et_mean_pair_cosine(Q, P, w->n, d) - et_mean_pair_cosine(Q, R, w->n, d);
    }
    free(E);
    return s;
}

/* The collapse check: measures the sample with the model being trained, sets *collapsed and writes the figures,
 * the cause and the fix into msg when the embeddings are collapsing (finetune.h). The first call (checks == 0)
 * records the start. Called by ft_dev_evaluate only. */
static et_status watch_check(ft_watch *w, const et_finetune_cfg *c, const et_bert *m, const et_tokenizer *tok,
                             et_pool *pool, int mlen, long step, long total, et_finetune_result *res, et_ft_dev_point *pt,
                             char *msg, size_t msg_size, et_error *err) {
    double a = NAN, g = NAN;
    et_status s = watch_measure(w, c, m, tok, pool, mlen, &a, &g, err);
    if (s) return et_error_prefix(err, "collapse watch");
    pt->watch_aniso = a; pt->watch_margin = g;
    if (!w->checks++) {
        w->aniso0 = a; w->margin0 = g;
        res->watch_aniso0 = res->watch_aniso = a; res->watch_margin0 = res->watch_margin = g;
        return ET_OK;
    }
    res->watches = w->checks - 1;
    res->watch_aniso = a; res->watch_margin = g;
    int up = a - w->aniso0 > c->collapse_aniso;
    int gone = w->margin0 > 0 && g < c->collapse_margin * w->margin0 && w->margin0 - g > ET_FT_WATCH_MIN_DROP;
    if (!up && !gone) {
        say(c, "step %ld: collapse watch: anisotropy %.3f (start %.3f), positive margin %.3f (start %.3f) on %d training pairs",
            step, a, w->aniso0, g, w->margin0, w->n);
        return ET_OK;
    }
    pt->collapsed = 1;
    snprintf(msg, msg_size,
             "on %d training pairs the anisotropy went %.3f -> %.3f (limit +%.2f) "
             "and the margin of the positives over random passages %.3f -> %.3f (limit %.0f%% of the start). The targets pull "
             "answers and non-answers together. Fix: a lower --lr or fewer --epochs; for soft losses more experts (the starting "
             "model, --expert-model DIR), --soft-norm rank and random negatives (--hard-ratio 0.5)",
             w->n, w->aniso0, a, c->collapse_aniso, w->margin0, g, 100 * c->collapse_margin);
    return ET_OK;
}

/* ------------------------------------------------------------------ hybrid retrieval: report and retrieval.json */

/* The held-out set's retrieval index and query set in one evaluation phase: the model's embeddings of its passages
 * and queries, BM25 at the default k1/b (when asked), and the queries' fusion candidates. Built once per phase
 * (ft_evix_build) and shared by the dense, BM25 and hybrid rows and, its passages' embeddings, by the fusion's fitting
 * set (whose passages are the held-out set's first ones: the pairs' passages, or the BEIR corpus). */
typedef struct {
    et_hybrid_index ix;
    et_hybrid_queries Y;
    et_bm25_opts bo;
    int built;
} ft_evix;

static void ft_evix_free(ft_evix *E) {
    et_hybrid_queries_free(&E->Y);
    et_hybrid_index_free(&E->ix);
    memset(E, 0, sizeof *E);
}

/* The index of set e's documents (model m + BM25 with bo) and its queries' candidates, each step reporting progress in
 * phase ph. The documents' embeddings are copied from base (may be NULL) when e's documents are its first ones (the
 * same texts, so the same embeddings), else encoded. The caller frees ix and Y. */
static et_status ft_rank_set(const et_finetune_cfg *c, const et_bert *m, const et_tokenizer *tok, et_pool *pool, int mlen,
                             const evalset *e, const et_bm25_opts *bo, const et_hybrid_index *base, et_ft_phase ph,
                             et_hybrid_index *ix, et_hybrid_queries *Y, et_error *err) {
    memset(ix, 0, sizeof *ix);
    memset(Y, 0, sizeof *Y);
    et_encode_cache ec = {0};
    int reuse = base && base->m == m && base->D && e->nd <= base->nd;
    for (int32_t i = 0; reuse && i < e->nd; i++) reuse = e->docs[i] == base->docs[i] || !strcmp(e->docs[i], base->docs[i]);
    ft_progress pb = ft_step(c, ph, "fusion set: BM25 index", "docs");
    et_progress bp = ft_step_progress(&pb);
    et_status s;
    if (reuse) { /* BM25 alone, then the embeddings from base */
        if ((s = et_hybrid_index_build(NULL, tok, pool, NULL, 1, bo, e->docs, e->nd, &bp, ix, err))) return s;
        ix->m = m;
        ix->dim = base->dim;
        if (!(ix->D = malloc(sizeof(float) * (size_t)(e->nd ? e->nd : 1) * (size_t)base->dim))) {
            et_hybrid_index_free(ix);
            return et_fail(err, ET_ERR_NOMEM, "fusion set: out of memory for %d document embeddings", e->nd);
        }
        memcpy(ix->D, base->D, sizeof(float) * (size_t)e->nd * (size_t)base->dim);
    } else {
        ft_progress pe = ft_step(c, ph, "fusion set: encode passages", NULL);
        et_encode_opts eo = ft_step_encode(c, mlen, &pe);
        eo.cache = &ec;
        if ((s = et_hybrid_index_build(m, tok, pool, &eo, 1, bo, e->docs, e->nd, &bp, ix, err))) { et_encode_cache_free(&ec); return s; }
    }
    ft_progress pq = ft_step(c, ph, "fusion set: encode queries", NULL), pc = ft_step(c, ph, "fusion set: candidates", "queries");
    et_encode_opts eq = ft_step_encode(c, mlen, &pq);
    eq.cache = &ec;
    et_progress cp = ft_step_progress(&pc);
    s = et_hybrid_queries_build(ix, pool, &eq, e->qs, e->nq, 0, &cp, Y, err);
    et_encode_cache_free(&ec);
    return s;
}

/* The held-out set ev's index and queries with model m in phase ph (R->eo encodes the passages: its progress is
 * "encode eval corpus"), BM25 (default k1/b) when with_bm25. */
/* ix (built without a model) gets m's embeddings of its docs: rows of kn's texts copied, the rest encoded with eo
 * (its progress counts only those) and L2-normalised, as et_hybrid_index_build would have made them all. */
static et_status ft_index_known(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                                const et_ft_known *kn, et_hybrid_index *ix, int64_t *ncopied, et_error *err) {
    int32_t nd = ix->nd, dim = m->cfg.hidden_size, nenc = 0;
    et_strmap map = {0};
    int32_t *src = malloc(sizeof(int32_t) * (size_t)(nd ? nd : 1));
    const char **todo = malloc(sizeof(char *) * (size_t)(nd ? nd : 1));
    float *D = malloc(sizeof(float) * (size_t)(nd ? nd : 1) * (size_t)dim), *X = NULL;
    et_status s = !src || !todo || !D ? et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory for %d document embeddings", nd)
                                      : et_strmap_init(&map, kn->n, (const char **)kn->text, "the known embeddings' texts", err);
    for (int32_t i = 0; !s && i < kn->n; i++) et_strmap_put(&map, i); /* a repeated text: its first row */
    for (int32_t i = 0; !s && i < nd; i++) {
        src[i] = et_strmap_get(&map, ix->docs[i]);
        if (src[i] >= 0) memcpy(D + (size_t)i * dim, kn->emb + (size_t)src[i] * dim, sizeof(float) * (size_t)dim);
        else todo[nenc++] = ix->docs[i];
    }
    if (!s && nenc) {
        if (!(X = malloc(sizeof(float) * (size_t)nenc * (size_t)dim))) s = et_fail(err, ET_ERR_NOMEM, "evaluation: out of memory for %d document embeddings", nenc);
        if (!s) s = et_encode_texts(m, tok, pool, todo, (size_t)nenc, eo, X, err);
        if (!s) {
            et_l2norm_rows(X, nenc, dim);
            for (int32_t i = 0, j = 0; i < nd; i++)
                if (src[i] < 0) memcpy(D + (size_t)i * dim, X + (size_t)j++ * dim, sizeof(float) * (size_t)dim);
        }
    }
    et_strmap_free(&map);
    free(src); free(todo); free(X);
    if (s) { free(D); return s; }
    ix->m = m;
    ix->dim = dim;
    ix->D = D;
    *ncopied = (int64_t)nd - nenc;
    return ET_OK;
}

/* kn usable for model m at mlen tokens (et_ft_known's conditions) */
static int ft_known_fits(const et_ft_known *kn, const et_bert *m, int mlen) {
    return kn && kn->text && kn->emb && kn->n > 0 && kn->dim == m->cfg.hidden_size && kn->max_len == mlen && !m->int8;
}

static et_status ft_evix_build(const et_finetune_cfg *c, const et_bert *m, const et_tokenizer *tok, et_pool *pool, int mlen,
                               const et_encode_opts *eo, const evalset *ev, int with_bm25, et_ft_phase ph,
                               const et_ft_known *kn, ft_evix *E, int64_t *ncopied, et_error *err) {
    memset(E, 0, sizeof *E);
    E->bo = (et_bm25_opts){0.9, 0.4, 0};
    et_encode_cache ec = {0};
    et_encode_opts e2 = *eo;
    e2.cache = &ec;
    ft_progress pb = ft_step(c, ph, "BM25 index", "docs");
    et_progress bp = ft_step_progress(&pb);
    et_status s;
    if (ncopied) *ncopied = 0;
    if (ft_known_fits(kn, m, mlen)) { /* BM25 alone, then the embeddings: the known ones copied, the rest encoded */
        s = et_hybrid_index_build(NULL, tok, pool, NULL, 1, &E->bo, ev->docs, ev->nd, &bp, &E->ix, err);
        if (!s && !with_bm25) { et_bm25_free(E->ix.bm); E->ix.bm = NULL; }
        int64_t nc = 0;
        if (!s) s = ft_index_known(m, tok, pool, &e2, kn, &E->ix, &nc, err);
        if (!s && ncopied) *ncopied = nc;
    } else s = et_hybrid_index_build(m, tok, pool, &e2, with_bm25, &E->bo, ev->docs, ev->nd, &bp, &E->ix, err);
    ft_progress pq = ft_step(c, ph, "encode eval queries", NULL), pc = ft_step(c, ph, "candidates", "queries");
    et_progress cp = ft_step_progress(&pc);
    et_encode_opts eq = ft_step_encode(c, mlen, &pq);
    eq.cache = &ec;
    if (!s) s = et_hybrid_queries_build(&E->ix, pool, &eq, ev->qs, ev->nq, 0, &cp, &E->Y, err);
    et_encode_cache_free(&ec);
    if (s) ft_evix_free(E);
    else E->built = 1;
    return s;
}

/* Learn the fusion on the judged queries of `fit` ranked by model m (et_fusion_fit: cross-validated nDCG@10; fo NULL =
 * the defaults), the passages' embeddings taken from base when they are its first ones. */
static et_status ft_fusion_learn(const et_finetune_cfg *c, const et_bert *m, const et_tokenizer *tok, et_pool *pool, int mlen,
                                 const evalset *fit, const et_bm25_opts *bo, const et_hybrid_index *base, et_ft_phase ph,
                                 const et_fusion_fit_opts *fo, et_fusion *out, et_fusion_fit_report *rep, et_error *err) {
    et_hybrid_index ix;
    et_hybrid_queries Y;
    et_status s = ft_rank_set(c, m, tok, pool, mlen, fit, bo, base, ph, &ix, &Y, err);
    et_fusion_fit_opts o;
    if (fo) o = *fo;
    else et_fusion_fit_opts_default(&o);
    ft_progress pf = ft_step(c, ph, "fusion cross-validation", "grid points");
    o.pool = pool;
    o.progress = ft_step_progress(&pf);
    if (!s) s = et_fusion_fit(&Y.cands, fit->qrels, fit->qoff, &o, out, rep, err);
    et_hybrid_queries_free(&Y);
    et_hybrid_index_free(&ix);
    return s;
}

/* The held-out queries (ev) ranked by model m: dense, BM25, the default fusion and o->learned (set by the caller), on
 * E (ev's index with m) when its BM25 is bo's, else on an index with bo (E's embeddings). */
static et_status ft_hybrid_eval(const et_finetune_cfg *c, const et_bert *m, const et_tokenizer *tok, et_pool *pool, int mlen,
                                const evalset *ev, const et_bm25_opts *bo, const ft_evix *E, et_ft_phase ph, et_ft_hybrid *o,
                                et_error *err) {
    et_hybrid_index ix;
    et_hybrid_queries Y;
    memset(&ix, 0, sizeof ix);
    memset(&Y, 0, sizeof Y);
    et_fusion dflt = et_fusion_default();
    int same = E->built && E->ix.bm && E->bo.k1 == bo->k1 && E->bo.b == bo->b && E->bo.query_tf == bo->query_tf;
    et_status s = same ? ET_OK : ft_rank_set(c, m, tok, pool, mlen, ev, bo, E->built ? &E->ix : NULL, ph, &ix, &Y, err);
    const et_hybrid_index *X = same ? &E->ix : &ix;
    const et_hybrid_queries *Z = same ? &E->Y : &Y;
    if (!s) s = et_eval_ir_ranked(pool, X, Z, ET_EVAL_DENSE, NULL, 10, ev->qrels, ev->qoff, &o->dense, err);
    if (!s) s = et_eval_ir_ranked(pool, X, Z, ET_EVAL_BM25, NULL, 10, ev->qrels, ev->qoff, &o->bm25, err);
    if (!s) s = et_eval_ir_ranked(pool, X, Z, ET_EVAL_HYBRID, &dflt, 10, ev->qrels, ev->qoff, &o->fused_default, err);
    if (!s) s = et_eval_ir_ranked(pool, X, Z, ET_EVAL_HYBRID, &o->learned, 10, ev->qrels, ev->qoff, &o->fused_learned, err);
    et_hybrid_queries_free(&Y);
    et_hybrid_index_free(&ix);
    return s;
}

static void say_hybrid(const et_finetune_cfg *c, const char *when, const et_ft_hybrid *h) {
    char d[128];
    say(c, "%s: held-out nDCG@10 dense %.4f, BM25 %.4f (the hybrid's k1/b), hybrid default %.4f, hybrid learned %.4f (%s; %s)", when,
        h->dense.ndcg10, h->bm25.ndcg10, h->fused_default.ndcg10, h->fused_learned.ndcg10,
        et_fusion_describe(&h->learned, d, sizeof d), h->fit_note);
}

/* The report's hybrid part and retrieval.json (retrieval data; no-op for pairwise data).
 * Before training (after = 0): the fusion is learned on the training queries with the STARTING model, which has not
 * seen them, then the held-out queries are ranked. After training: the tuned model has been trained on the training
 * queries, so their ranking overstates it (on cacm its training nDCG@10 is 0.68 against 0.28 held out) and a fusion
 * learned there over-weights it; the fusion is learned on `fit_after` (queries the tuned model did not train on: the
 * dev split, when there is one with enough queries) and otherwise the one learned with the starting model is kept.
 * Then out_dir/retrieval.json (mode hybrid) is written. */
static et_status ft_hybrid_step(const et_finetune_cfg *c, const source *src, const evalset *ev, const evalset *fit_after,
                                const et_bert *m, const et_tokenizer *tok, et_pool *pool, int mlen, int after,
                                const ft_evix *E, et_finetune_result *res, et_error *err) {
    et_ft_phase ph = after ? ET_FT_PHASE_EVAL_AFTER : ET_FT_PHASE_EVAL_BEFORE;
    const et_hybrid_index *base = E->built ? &E->ix : NULL;
    if (!c->fusion || ev->kind != ET_FT_EVAL_IR) return ET_OK;
    et_ft_hybrid *h = after ? &res->hyb_after : &res->hyb_before;
    memset(h, 0, sizeof *h);
    et_status s = ET_OK;
    if (!after) {
        evalset tr;
        ft_split tsp = {c->eval_path ? ET_SPLIT_ALL : ET_SPLIT_TRAIN, 0, 0, UINT32_MAX};
        if ((s = evalset_make(src, &tsp, c->sts_max, c->data, &tr, err))) return s;
        if (tr.kind != ET_FT_EVAL_IR) { evalset_free(&tr); return ET_OK; } /* labelled pairs: nothing to rank */
        et_bm25_opts dflt = {0.9, 0.4, 0};
        res->bm25_opts = dflt;
        if (c->bm25_fit) {
            ft_progress pg = ft_step(c, ph, "BM25 k1/b fit", "grid points");
            et_progress gp = ft_step_progress(&pg);
            s = et_bm25_fit(pool, (const char *const *)tr.docs, tr.nd, (const char *const *)tr.qs, tr.nq, tr.qrels, tr.qoff, 1.0,
                            &gp, &res->bm25_opts, &res->bm25_fit, err);
            const et_bm25_fit_report *b = &res->bm25_fit;
            if (!s) say(c, "BM25 k1 %g, b %g: %s (training queries' BM25 nDCG@10 %.4f; at k1 0.9, b 0.4: %.4f; grid best k1 %g, b %g: %.4f)",
                        res->bm25_opts.k1, res->bm25_opts.b,
                        b->learned ? "learned on the training queries"
                        : b->nqueries < ET_FUSION_MIN_QUERIES ? "the default (too few training queries to learn)"
                                                              : "the default (no grid point beats it by more than one standard error)",
                        b->ndcg10, b->default_ndcg10, b->best.k1, b->best.b, b->best_ndcg10);
        }
        if (!s) s = ft_fusion_learn(c, m, tok, pool, mlen, &tr, &res->bm25_opts, base, ph, NULL, &h->learned, &h->fit, err);
        snprintf(h->fit_note, sizeof h->fit_note, "%s on %d training queries with the starting model",
                 !h->fit.learned ? "too few to learn, the default" : h->fit.prior_kept ? "the default kept (no gain beyond one SE)" : "learned",
                 h->fit.nqueries);
        evalset_free(&tr);
    } else if (fit_after && fit_after->kind == ET_FT_EVAL_IR && fit_after->nq >= ET_FUSION_MIN_QUERIES && res->has_hybrid) {
        /* a dev split is small: the starting model's fusion (learned on all training queries) is the prior, kept
         * unless the dev queries tell otherwise beyond the se rule */
        et_fusion_fit_opts fo;
        et_fusion_fit_opts_default(&fo);
        int moved = !et_fusion_transfers(&res->hyb_before.learned);
        fo.prior = moved ? et_fusion_default() : res->hyb_before.learned;
        s = ft_fusion_learn(c, m, tok, pool, mlen, fit_after, &res->bm25_opts, base, ph, &fo, &h->learned, &h->fit, err);
        snprintf(h->fit_note, sizeof h->fit_note, "%s on %d dev queries with the tuned model, %s as prior",
                 !h->fit.prior_kept ? "learned" : moved ? "the default kept: no gain beyond one SE" : "the starting model's kept: no gain beyond one SE",
                 h->fit.nqueries, moved ? "the default (the starting model's tmm fusion does not transfer)" : "the starting model's");
    } else {
        if (!res->has_hybrid) return ET_OK;
        int moved = !et_fusion_transfers(&res->hyb_before.learned);
        h->learned = moved ? et_fusion_default() : res->hyb_before.learned;
        h->fit = res->hyb_before.fit;
        snprintf(h->fit_note, sizeof h->fit_note, "%s (no dev split of >= %d queries to learn on with the tuned model)",
                 moved ? "the default: the starting model's tmm fusion does not transfer" : "the starting model's", ET_FUSION_MIN_QUERIES);
    }
    if (!s) s = ft_hybrid_eval(c, m, tok, pool, mlen, ev, &res->bm25_opts, E, ph, h, err);
    if (s) return s;
    res->has_hybrid = 1;
    say_hybrid(c, after ? "tuned model" : "starting model", h);
    if (!after) return ET_OK;
    et_retrieval_cfg rc;
    et_retrieval_cfg_default(&rc);
    rc.mode = ET_MODE_HYBRID;
    rc.fusion = h->learned;
    rc.bm25.k1 = res->bm25_opts.k1;
    rc.bm25.b = res->bm25_opts.b;
    char note[ET_PATH_MAX + 512];
    snprintf(note, sizeof note, "embedtune finetune on %s: %s; BM25 k1 %g, b %g %s", c->data, h->fit_note, res->bm25_opts.k1,
             res->bm25_opts.b, res->bm25_fit.learned ? "learned on the training queries (et_bm25_fit)" : "(the default)");
    if ((s = et_retrieval_save(c->out_dir, &rc, &h->fit, note, err))) return s;
    res->fusion_saved = 1;
    say(c, "wrote %s/%s: hybrid by default for search and eval", c->out_dir, ET_RETRIEVAL_FILE);
    return ET_OK;
}

/* ------------------------------------------------------------------ automatic settings, the dev evaluation */

double et_finetune_auto_lr(double n_params) {
    if (!(n_params > 0)) return 2e-5;
    double x = (log(n_params) - log(4.6e6)) / (log(1.1e8) - log(4.6e6));
    double lr = exp(log(2e-4) + x * (log(2e-5) - log(2e-4)));
    return lr < 1e-5 ? 1e-5 : lr > 3e-4 ? 3e-4 : lr;
}

/* steps aimed at with a dev split (an upper bound: dev picks the point, early stopping ends sooner), and without one.
 * 400, not 200 (issue 20): cisi's contrastive runs spend about 250 steps coming back from the anisotropy spike that
 * follows the warm-up (dev below the start until step ~250), and only then rise (dev 0.188 -> 0.271 by step 473) */
#define FT_DEV_TARGET_STEPS 400
#define FT_AUTO_NEGATIVES 3
#define FT_FIXED_TARGET_STEPS 120

void et_finetune_plan(const et_finetune_cfg *c, double n_params, int64_t n_ex, int64_t dev_size, int dev_is_ir,
                      et_ft_plan *p) {
    memset(p, 0, sizeof *p);
    const et_train_cfg *t = &c->train;
    int soft = t->loss == ET_TRAIN_SOFT1 || t->loss == ET_TRAIN_SOFT2 || t->loss == ET_TRAIN_SOFT3;
    int pairwise = t->loss == ET_TRAIN_MSE || (soft && !t->soft_list); /* rows trained one by one (cosine MSE) */
    if (t->lr > 0) {
        p->lr = t->lr;
        snprintf(p->why_lr, sizeof p->why_lr, "given");
    } else if (pairwise) { /* cosine regression: the size rule (measured for InfoNCE) collapses it on small models */
        p->lr = 2e-5;
        snprintf(p->why_lr, sizeof p->why_lr, "pairwise loss: 2e-5 (sentence-transformers' CosineSimilarityLoss); the size rule is for infonce/clp");
    } else if (t->lora_rank > 0) { /* adapters start at B = 0 and are few: they want a larger step */
        p->lr = ET_FT_LORA_LR_FACTOR * et_finetune_auto_lr(n_params);
        snprintf(p->why_lr, sizeof p->why_lr, "LoRA: %g x the full fine-tuning rule (%.1f M parameters: log-linear in size between "
                 "2e-4 at 4.6 M and 2e-5 at 110 M)", (double)ET_FT_LORA_LR_FACTOR, n_params / 1e6);
    } else {
        p->lr = et_finetune_auto_lr(n_params);
        snprintf(p->why_lr, sizeof p->why_lr, "%.1f M parameters: log-linear in size between 2e-4 at 4.6 M and 2e-5 at 110 M%s",
                 n_params / 1e6, soft ? " (the list form of the soft losses is a contrastive loss, as infonce)" : "");
    }
    if (t->batch > 0) {
        p->batch = t->batch;
        snprintf(p->why_batch, sizeof p->why_batch, "given");
    } else {
        p->batch = n_ex < 128 ? 8 : 16;
        snprintf(p->why_batch, sizeof p->why_batch, n_ex < 128 ? "%lld examples (< 128): smaller batches keep >= 16 steps per epoch"
                                                             : "%lld examples: 16 queries per step (in-batch + hard negatives)", (long long)n_ex);
    }
    p->negatives = c->negatives;
    if (c->negatives >= 0) snprintf(p->why_negatives, sizeof p->why_negatives, "given");
    else if (pairwise) {
        p->negatives = 7;
        snprintf(p->why_negatives, sizeof p->why_negatives, "7 label-0 rows per positive row (pairwise loss)");
    } else {
        p->negatives = FT_AUTO_NEGATIVES;
        if (soft) snprintf(p->why_negatives, sizeof p->why_negatives, "%d negatives per query (as infonce), sampled by the first expert (share --hard-ratio hard, the rest random)", FT_AUTO_NEGATIVES);
        else snprintf(p->why_negatives, sizeof p->why_negatives, "%d ANCE negatives per query: half the step cost of 7, and at equal time more steps gain more", FT_AUTO_NEGATIVES);
    }
    int64_t spe = n_ex > 0 ? (n_ex + p->batch - 1) / p->batch : 1;
    int64_t min_dev = dev_is_ir ? ET_FT_MIN_DEV_QUERIES : ET_FT_MIN_DEV_ROWS;
    p->dev_size = dev_size;
    p->use_dev = c->dev != 0 && dev_size >= min_dev;
    if (p->use_dev)
        snprintf(p->why_dev, sizeof p->why_dev, "%lld dev %s carved from the training data (et_split_is_dev, %d %%): %s every evaluation",
                 (long long)dev_size, dev_is_ir ? "queries" : "rows", ET_DEV_PERCENT, dev_is_ir ? "nDCG@10" : "Spearman");
    else if (c->dev == 0) snprintf(p->why_dev, sizeof p->why_dev, "off (given)");
    else snprintf(p->why_dev, sizeof p->why_dev, "off: the dev split would hold %lld %s (< %lld)", (long long)dev_size,
                  dev_is_ir ? "queries" : "rows", (long long)min_dev);
    if (t->epochs > 0) {
        p->epochs = t->epochs;
        snprintf(p->why_epochs, sizeof p->why_epochs, p->use_dev ? "given (an upper bound: early stopping on dev)" : "given");
    } else {
        int64_t target = p->use_dev ? FT_DEV_TARGET_STEPS : FT_FIXED_TARGET_STEPS;
        int64_t e = (target + spe - 1) / spe;
        int lo = p->use_dev ? 2 : 1, hi = p->use_dev ? 10 : 3;
        p->epochs = (int)(e < lo ? lo : e > hi ? hi : e);
        snprintf(p->why_epochs, sizeof p->why_epochs, p->use_dev ? "at most %d (%lld steps per epoch, about %lld steps in all); stops when dev stops rising"
                                                                 : "%d (%lld steps per epoch, about %lld steps; no dev split to stop on)",
                 p->epochs, (long long)spe, (long long)target);
    }
    p->patience = c->patience > 0 ? c->patience : 2;
    if (c->dev_every > 0) p->dev_every = c->dev_every;
    else if (spe <= 50) p->dev_every = (int)spe;
    else { int64_t k = (spe + 49) / 50; p->dev_every = (int)((spe + k - 1) / k); }
    if (!p->use_dev) p->dev_every = 0;
}

int et_ft_beats_start(const double *start, const double *cand, int n, double *gain, double *se) {
    double g = NAN, e = NAN;
    if (n >= 1) g = et_fusion_paired_gain(cand, start, n, &e); /* the one paired mean / standard error (fusion.h) */
    if (gain) *gain = g;
    if (se) *se = e;
    return n >= 1 && g > 0 && g >= e;
}

long et_ft_grace_steps(long total_steps, int epochs) {
    long spe = total_steps / (epochs > 0 ? epochs : 1), half = (total_steps + 1) / 2;
    if (spe < 1) spe = 1;
    return spe > half ? spe : half;
}

int et_ft_stopper_add(et_ft_stopper *st, double score, int patience) {
    int better = !isnan(score) && (!st->have || score > st->best_score); /* NaN never wins, ties do not count */
    if (better) { st->best = st->n; st->best_score = score; st->bad = 0; st->have = 1; }
    else st->bad++;
    st->n++;
    return st->bad >= (patience > 0 ? patience : 1);
}

/* The evaluation of the model while it trains (step 0: the starting model): the ONE place where training checks the
 * model. dv (NULL: none) gives the dev score that early stopping compares, with the dev anisotropy and mean positive
 * cosine; w (NULL or empty: off) is the collapse watch (pt->collapsed, the message in msg). */
static et_status ft_dev_evaluate(const et_finetune_cfg *c, const evalset *dv, ft_watch *w, const et_bert *m,
                                 const et_tokenizer *tok, et_pool *pool, int mlen, long step, long total, int epoch, double t0,
                                 et_finetune_result *res, double *pq, const double *pq0, et_ft_dev_point *pt, char *msg,
                                 size_t msg_size, et_error *err) {
    memset(pt, 0, sizeof *pt);
    pt->score = pt->anisotropy = pt->mean_pos_cosine = pt->watch_aniso = pt->watch_margin = NAN;
    pt->gain = pt->gain_se = NAN;
    et_encode_opts eo = {c->enc_batch, mlen, NULL, NULL};
    et_status s;
    const et_matryoshka *mr = &c->train.matryoshka; /* n > 0: the score is the weighted mean over the listed sizes */
    for (int k = 0; k < ET_MRL_MAX_DIMS; k++) pt->score_dim[k] = NAN;
    int big = 0; /* the largest listed size: where anisotropy and the positives' cosine are reported */
    double wsum = 0;
    for (int k = 0; k < mr->n; k++) { wsum += mr->weight[k]; if (mr->dim[k] > mr->dim[big]) big = k; }
    if (dv && dv->kind == ET_FT_EVAL_IR && mr->n > 0) {
        et_ir_eval r[ET_MRL_MAX_DIMS];
        et_ir_eval_opts io = {ET_EVAL_DENSE, 10, NULL, NULL, NULL, NULL};
        double *pqd = pq ? malloc(sizeof(double) * (size_t)mr->n * (size_t)(dv->nq ? dv->nq : 1)) : NULL;
        if (pq && !pqd) return et_fail(err, ET_ERR_NOMEM, "dev evaluation at step %ld: out of memory", step);
        s = et_eval_ir_dims(m, tok, pool, &eo, &io, mr->dim, mr->n, dv->docs, dv->nd, dv->qs, dv->nq, dv->qrels, dv->qoff, r, pqd, err);
        if (!s) {
            pt->score = 0;
            for (int k = 0; k < mr->n; k++) { pt->score_dim[k] = r[k].ndcg10; pt->score += mr->weight[k] * r[k].ndcg10 / wsum; }
            for (int32_t q = 0; pq && q < dv->nq; q++) {
                pq[q] = 0;
                for (int k = 0; k < mr->n; k++) pq[q] += mr->weight[k] * pqd[(size_t)k * (size_t)dv->nq + (size_t)q] / wsum;
            }
        }
        free(pqd);
        if (s) return et_error_prefix(err, "dev evaluation at step %ld", step);
        if (pq && pq0 && step > 0) pt->within_noise = !et_ft_beats_start(pq0, pq, dv->nq, &pt->gain, &pt->gain_se);
        pt->anisotropy = r[big].anisotropy;
        pt->mean_pos_cosine = r[big].mean_pos_cosine;
    } else if (dv && dv->kind == ET_FT_EVAL_IR) {
        et_ir_eval r;
        et_ir_eval_opts io = {ET_EVAL_DENSE, 10, NULL, NULL, NULL, pq};
        if ((s = et_eval_ir(m, tok, pool, &eo, &io, dv->docs, dv->nd, dv->qs, dv->nq, dv->qrels, dv->qoff, &r, err)))
            return et_error_prefix(err, "dev evaluation at step %ld", step);
        pt->score = r.ndcg10;
        if (pq && pq0 && step > 0) pt->within_noise = !et_ft_beats_start(pq0, pq, dv->nq, &pt->gain, &pt->gain_se);
        pt->anisotropy = r.anisotropy;
        pt->mean_pos_cosine = r.mean_pos_cosine;
    } else if (dv) { /* pairs: Spearman; with --matryoshka once per listed size (the pairs are few) */
        int nk = mr->n > 0 ? mr->n : 1;
        if (mr->n > 0) pt->score = 0;
        for (int k = 0; k < nk; k++) {
            et_pair_eval r;
            eo.dim = mr->n > 0 ? mr->dim[k] : 0;
            if ((s = et_eval_pairs_dense(m, tok, pool, &eo, dv->a, dv->b, dv->lab, dv->n, &r, err)))
                return et_error_prefix(err, "dev evaluation at step %ld", step);
            if (mr->n > 0) { pt->score_dim[k] = r.spearman; pt->score += mr->weight[k] * r.spearman / wsum; }
            else pt->score = r.spearman;
            if (k == (mr->n > 0 ? big : 0)) { pt->anisotropy = r.anisotropy; pt->mean_pos_cosine = r.mean_pos_cosine; }
        }
    }
    if (w && w->n && (s = watch_check(w, c, m, tok, pool, mlen, step, total, res, pt, msg, msg_size, err))) return s;
    pt->excluded = pt->collapsed;
    if (dv && w && w->n && step > 0 && res->n_dev > 0 && pt->anisotropy - res->dev[0].anisotropy > ET_FT_KEEP_ANISO)
        pt->excluded = 1;
    pt->step = step;
    pt->epoch = epoch;
    pt->seconds = et_now_s() - t0;
    return ET_OK;
}

/* " (128: 0.2100, 64: 0.1900, 32: 0.1500; the loss's weighted mean)" for a dev point with --matryoshka, "" without */
static void dev_sizes(const et_finetune_cfg *c, const et_ft_dev_point *pt, char *buf, size_t cap) {
    const et_matryoshka *mr = &c->train.matryoshka;
    buf[0] = 0;
    for (int k = 0; k < mr->n; k++) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s%d: %.4f", k ? ", " : " (", mr->dim[k], pt->score_dim[k]);
    }
    if (mr->n > 0) { size_t n = strlen(buf); snprintf(buf + n, cap - n, "; the loss's weighted mean)"); }
}

/* The weight-space mix (cfg.mix; WiSE-FT, Wortsman et al. 2022). After early stopping has kept the model tuned[] (dev
 * score res->dev[best_dev]), try theta0 + l * (theta1 - theta0) for l in ET_FT_MIX_GRID, smallest first, and keep the
 * first whose dev score (ft_dev_evaluate: nDCG@10, or Spearman for pairs) is not below the unmixed model's: as much of
 * the starting model (what it could do beyond this data: general similarity, STS-B) as the dev split allows without a
 * loss on the task. None qualifies: the unmixed model stays. w[nw] is what was trained (m's parameters, or its LoRA
 * adapters; start and tuned are copies of it); it ends as the kept model's; *mixed = 1 when it changed. The choice sees only the dev split (never the held-out queries, never STS-B). */
static et_status ft_mix_step(const et_finetune_cfg *c, const evalset *dv, et_bert *m, float *w, size_t nw, const float *start, const float *tuned,
                             const et_tokenizer *tok, et_pool *pool, int mlen, double t0, et_finetune_result *res, int *mixed,
                             et_error *err) {
    static const double grid[ET_FT_MIX_NGRID] = ET_FT_MIX_GRID;
    double ref = res->dev[res->best_dev].score;
    long step = res->dev[res->best_dev].step;
    int pick = -1;
    et_status s = ET_OK;
    *mixed = 0;
    res->mix_n = 0;
    for (int i = 0; i < ET_FT_MIX_NGRID && pick < 0 && !s; i++) {
        float l = (float)grid[i];
        for (size_t j = 0; j < nw; j++) w[j] = start[j] + l * (tuned[j] - start[j]);
        et_bert_params_changed(m);
        et_ft_dev_point pt;
        char msg[8];
        if ((s = ft_dev_evaluate(c, dv, NULL, m, tok, pool, mlen, step, 0, 0, t0, res, NULL, NULL, &pt, msg, sizeof msg, err))) break;
        res->mix_lambdas[res->mix_n] = grid[i];
        res->mix_dev[res->mix_n++] = pt.score;
        if (pt.score >= ref) pick = i;
    }
    if (!s && pick >= 0) {
        res->mix_lambda = grid[pick];
        *mixed = 1;
    } else {
        res->mix_lambda = 1;
        memcpy(w, tuned, sizeof(float) * nw);
        et_bert_params_changed(m);
    }
    if (s) return et_error_prefix(err, "weight-space mix");
    char line[256] = "";
    for (int i = 0; i < res->mix_n; i++) {
        size_t n = strlen(line);
        snprintf(line + n, sizeof line - n, "%s%.1f: %.4f", i ? ", " : "", res->mix_lambdas[i], res->mix_dev[i]);
    }
    say(c, "weight-space mix with the starting model (WiSE-FT), dev at factor %s (unmixed 1.0: %.4f): %s", line, ref,
        *mixed ? "the first not below the unmixed model is kept" : "none reaches the unmixed model, which is kept");
    return ET_OK;
}

/* ------------------------------------------------------------------ the run */

/* The run's memory, estimated right after parsing so a run that cannot fit is refused before any encoding:
 * the trainer's plan (et_train_plan_bytes, for the batch the settings will pick; the trainer checks its own plan
 * again with the exact data) with the dev split's copies of the trained floats, one encode pass (et_encode_plan_bytes), the embeddings held at once (held-out
 * corpus + queries, mining corpus + queries, ranks) and the texts (x3: the strings, BM25's postings, copies).
 * res->mem_estimate / mem_budget get the figures (bytes). ET_ERR_NOMEM above c->train.mem_budget. */
static et_status ft_memory_check(const et_finetune_cfg *c, const et_bert *m, int nthreads, int mlen, int pairwise,
                                 int listsoft, int adapting, int64_t n_ex, const evalset *ev, const mining *M, et_finetune_result *res,
                                 et_error *err) {
    et_train_cfg tc = c->train;
    if (tc.max_len_q <= 0) tc.max_len_q = mlen;
    if (tc.max_len_d <= 0) tc.max_len_d = mlen;
    if (adapting) n_ex += c->adapt_pairs > 0 ? c->adapt_pairs : 500; /* adapt.h: at least 500 when automatic */
    et_ft_plan P;
    et_finetune_plan(c, (double)m->n_params, pairwise && !listsoft ? n_ex * (1 + c->negatives) : n_ex, 0, 0, &P);
    int G = pairwise && !listsoft ? 0 : c->negatives, C = m->cfg.hidden_size; /* the list form: each positive with its negatives */
    size_t trained = 0;
    et_train_state_bytes(&tc, &m->cfg, NULL, &trained);
    /* the trainer's plan, and the dev split's copies of what is trained (the best model, the starting one with --mix),
     * counted unless the dev split is off: its size, which decides an automatic one, is not known yet */
    int dev_copies = c->dev != 0 ? (c->mix ? 2 : 1) : 0;
    size_t train = et_train_plan_bytes(&tc, &m->cfg, P.batch, G, nthreads, NULL, NULL) + dev_copies * trained * sizeof(float);
    double nd = ev->kind == ET_FT_EVAL_IR ? (double)ev->nd + ev->nq : 2.0 * (double)ev->n;
    double texts = 0;
    if (ev->kind == ET_FT_EVAL_IR)
        for (int32_t i = 0; i < ev->nd; i++) texts += (double)strlen(ev->docs[i]);
    size_t nenc = (size_t)(nd > (double)M->nd + M->nmq ? nd : (double)M->nd + M->nmq);
    double enc = et_encode_plan_bytes(&m->cfg, c->enc_batch, mlen, c->enc_batch, mlen, nenc, nthreads);
    /* + with --matryoshka, the dev evaluation's full corpus embeddings beside the cut ones (et_eval_ir_dims) */
    double cut_copy = c->train.matryoshka.n > 0 && ev->kind == ET_FT_EVAL_IR ? (double)ev->nd : 0;
    double emb = (nd + cut_copy + (double)M->nd + (double)M->nmq) * C * sizeof(float) +
                 (pairwise ? 0.0 : (double)M->nmq * (c->mine_hi - c->mine_lo) * (sizeof(int32_t) + sizeof(float)));
    for (int32_t i = 0; i < M->nd; i++) texts += (double)strlen(M->corpus[i]);
    for (int32_t i = 0; i < c->n_corpus; i++) texts += (double)strlen(c->corpus[i]);
    double need = (double)train + (double)enc + emb + 3.0 * texts, budget = (double)c->train.mem_budget;
    res->mem_estimate = need;
    res->mem_budget = budget;
    if (need > budget) {
        /* the word-embedding table trained and not yet frozen: what the run would need with it frozen */
        char alt[200] = "";
        if (tc.lora_rank <= 0 && !(tc.freeze && strstr(tc.freeze, ET_TRAIN_WORD_EMB_PREFIX))) {
            char fz[512];
            snprintf(fz, sizeof fz, "%s%s" ET_TRAIN_WORD_EMB_PREFIX, tc.freeze ? tc.freeze : "", tc.freeze && *tc.freeze ? "," : "");
            et_train_cfg tf = tc;
            tf.freeze = fz;
            size_t trained_f = 0;
            et_train_state_bytes(&tf, &m->cfg, NULL, &trained_f);
            if (trained_f < trained) {
                double nf = need - (double)train + (double)et_train_plan_bytes(&tf, &m->cfg, P.batch, G, nthreads, NULL, NULL) +
                            (double)dev_copies * (double)trained_f * sizeof(float);
                snprintf(alt, sizeof alt, "; with the word-embedding table frozen (--freeze-embeddings) about %.1f MiB",
                         nf / 1048576.0);
            }
        }
        return et_fail(err, ET_ERR_NOMEM,
                       "this run needs about %.1f MiB (training %.1f: batch %d x %d negatives, max length %d; encoding %.1f; "
                       "embeddings %.1f; texts and BM25 %.1f) but the memory budget is %.1f MiB: lower the batch, the max "
                       "length or the number of negatives, use fewer passages (or raise the budget)%s",
                       need / 1048576.0, train / 1048576.0, P.batch, G, tc.max_len_d > et_bert_max_tokens(&m->cfg) ? et_bert_max_tokens(&m->cfg) : tc.max_len_d,
                       enc / 1048576.0, emb / 1048576.0, 3.0 * texts / 1048576.0, budget / 1048576.0, alt);
    }
    return ET_OK;
}


/* The state of one et_finetune_run, handed from step to step. Each step below says what it reads and what it fills;
 * ft_run_free releases everything any step allocated (a step that fails leaves what it allocated for ft_run_free). */
typedef struct {
    const et_finetune_cfg *cfg; /* as the caller gave it (et_finetune_plan tells explicit settings from defaults) */
    et_finetune_cfg *cc;        /* a copy with the negatives resolved (ft_check_cfg) and the loss form used */
    const et_finetune_cfg *c;   /* = cc */
    et_finetune_result *res;
    et_train_loss loss;
    int pairwise, soft, clp;    /* the loss is pairwise (mse/soft*), soft (soft*), clp */
    int listsoft;               /* soft1..3 in the list form (train.h soft_list; a labelled file turns it off) */
    double t_start;             /* et_now_s() at the start: the time budget and the dev points' seconds */
    /* ft_load_model */
    et_hf_model L;
    int mlen;                   /* the token cap of encoding and training */
    /* ft_split_data */
    source src, esrc;           /* the data, and --eval's file (esrc) */
    evalset ev;                 /* the held-out evaluation set */
    ft_split trs;               /* the training rows: split, --max-train-queries subset, minus the dev split */
    uint32_t *keys;             /* the subset keys (--max-train-queries) */
    evalset dv;                 /* the dev split (early stopping), if use_dev */
    int use_dev;
    int64_t dev_size;
    /* ft_train_rows */
    et_pairs TP;                /* the training rows (strings borrowed from src) */
    et_pair_index ix;
    int has_ix;
    mining M;                   /* the mining universe (infonce/clp) */
    int adapting;               /* corpus adaptation (--adapt / --corpus) */
    /* ft_eval_before (eo is used again by ft_eval_after) */
    ft_progress ps;
    et_encode_opts eo;
    /* ft_mine_examples / ft_score_experts / ft_pairwise_examples */
    et_adapt_pairs AP;
    et_expert ex[ET_FT_MAX_EXPERT_MODELS + 2];
    int nex, istart;            /* experts in ex; istart: the starting model's (-1: none) */
    et_score_table T;           /* the data file's own score columns */
    int32_t *negs, *rq, *rp;
    float *rl, *cols;
    int64_t *rsrc;
    et_train_data D;            /* the training examples */
    /* ft_train_setup / ft_train */
    et_trainer tr;
    int has_tr;
    step_prog sp;               /* the trainer's progress callback state (tr holds a pointer to it) */
    ft_watch W;
    float *best;                /* the parameters of the best dev point */
    float *start;               /* the starting model's parameters (the weight-space mix, cfg.mix) */
    double *pq0, *pq1;          /* per-query dev nDCG@10: the starting model, the latest point (IR dev) */
} ft_run;

static void ft_run_free(ft_run *R) {
    free(R->best); free(R->pq0); free(R->pq1);
    free(R->start);
    free(R->keys);
    et_adapt_pairs_free(&R->AP);
    evalset_free(&R->dv);
    if (R->has_tr) et_trainer_free(&R->tr);
    watch_free(&R->W);
    for (int e = 0; e < R->nex; e++) et_expert_free(&R->ex[e]);
    et_score_table_free(&R->T);
    for (int i = 0; i < R->D.n; i++) ex_free(&R->D.ex[i]);
    free(R->D.ex);
    free(R->M.ex_q);
    if (R->src.kind == SRC_BEIR) { free((void *)R->M.mq); free(R->M.mq_off); free(R->M.mq_pos); }
    if (R->has_ix) et_pair_index_free(&R->ix);
    free((void *)R->TP.query); free((void *)R->TP.passage); free((void *)R->TP.id); free(R->TP.label); free(R->TP.scores);
    free(R->negs); free(R->rq); free(R->rp); free(R->rl); free(R->rsrc); free(R->cols);
    evalset_free(&R->ev);
    source_free(&R->src);
    source_free(&R->esrc);
    et_hf_model_free(&R->L);
}

/* The losses trained on scored pairs (mse, soft1-3) rather than on (query, positive, negatives). */
static int loss_is_pairwise(et_train_loss loss) {
    return loss == ET_TRAIN_MSE || loss == ET_TRAIN_SOFT1 || loss == ET_TRAIN_SOFT2 || loss == ET_TRAIN_SOFT3;
}

/* Checks the options that need no file, and resolves the default negatives in *cc. */
static et_status ft_check_cfg(et_finetune_cfg *cc, et_error *err) {
    const et_finetune_cfg *c = cc;
    et_train_loss loss = c->train.loss;
    int pairwise = loss_is_pairwise(loss);
    int listsoft = pairwise && loss != ET_TRAIN_MSE && c->train.soft_list; /* soft1..3 in the list form (train.h soft_list) */
    if (!c->model_dir || !c->data || !c->out_dir) return et_fail(err, ET_ERR_ARG, "finetune: model, data and out are required");
    if (cc->negatives < 0) cc->negatives = pairwise && !listsoft ? 7 : FT_AUTO_NEGATIVES;
    if (c->negatives < 1 && !pairwise) return et_fail(err, ET_ERR_ARG, "finetune: --negatives must be >= 1 for loss %s", et_train_loss_name(loss));
    if (c->negatives < 0) return et_fail(err, ET_ERR_ARG, "finetune: --negatives must be >= 0");
    if (c->mine_lo < 0 || c->mine_hi <= c->mine_lo) return et_fail(err, ET_ERR_ARG, "finetune: mining range must be A:B with 0 <= A < B");
    if (c->refresh_every < 0 && c->refresh_every != ET_FT_REFRESH_AUTO)
        return et_fail(err, ET_ERR_ARG, "finetune: --refresh-every must be >= 0 or auto");
    if (c->refresh_every > 0 && pairwise)
        return et_fail(err, ET_ERR_ARG, "finetune: --refresh-every re-mines ANCE negatives, which only infonce and clp use (loss %s)", et_train_loss_name(loss));
    if (c->n_expert_models > ET_FT_MAX_EXPERT_MODELS) return et_fail(err, ET_ERR_ARG, "finetune: at most %d expert models", ET_FT_MAX_EXPERT_MODELS);
    if (c->neg_source < ET_FT_NEG_ANCE || c->neg_source > ET_FT_NEG_MIX) return et_fail(err, ET_ERR_ARG, "finetune: unknown negative source %d", c->neg_source);
    return ET_OK;
}

/* Step "load": the model, its tokenizer and the thread pool (R->L), and the token cap R->mlen. */
static et_status ft_load_model(ft_run *R, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_status s;
    say(c, "loading %s", c->model_dir);
    if (phase_start(c, ET_FT_PHASE_LOAD)) return cancelled(err, ET_FT_PHASE_LOAD);
    if ((s = et_hf_model_load(c->model_dir, c->threads, &R->L, err))) return s;
    int mlen = c->max_len ? c->max_len : et_hf_model_max_len(&R->L);
    if (mlen > et_bert_max_tokens(&R->L.model.cfg)) mlen = et_bert_max_tokens(&R->L.model.cfg);
    R->mlen = mlen;
    return ET_OK;
}

/* Step "split": reads the data (R->src) and the held-out evaluation set (R->ev: the test split of the data, or all
 * of --eval's file); R->trs selects the training rows: the train split (all rows with --eval), the first
 * --max-train-queries of them in et_split_subset_key order, minus the dev split (R->dv, R->use_dev) when one is kept. */
static et_status ft_split_data(ft_run *R, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_finetune_result *res = R->res;
    et_status s;
    if (phase_start(c, ET_FT_PHASE_PARSE)) return cancelled(err, ET_FT_PHASE_PARSE);
    if ((s = source_load(c->data, &R->src, err))) return s;
    res->data_kind = src_names[R->src.kind];
    /* rows used for training: all, or the train split; then optionally a subset, minus the dev split */
    R->trs = (ft_split){c->eval_path ? ET_SPLIT_ALL : ET_SPLIT_TRAIN, 0, 0, UINT32_MAX};
    if (c->eval_path) {
        if ((s = source_load(c->eval_path, &R->esrc, err))) return s;
        if ((s = evalset_make(&R->esrc, &SPLIT_ALL, c->sts_max, c->eval_path, &R->ev, err))) return s;
    } else if ((s = evalset_make(&R->src, &SPLIT_TEST, c->sts_max, c->data, &R->ev, err))) return s;
    if (!c->eval_path && R->src.kind == SRC_PAIRS && R->ev.kind == ET_FT_EVAL_IR && c->corpus && c->n_corpus > 0 &&
        (s = evalset_add_corpus(&R->ev, c->corpus, c->n_corpus, err))) return s;
    res->kind = R->ev.kind;
    res->eval_passages = R->ev.kind == ET_FT_EVAL_IR ? R->ev.nd : 0;
    res->test_queries = R->ev.kind == ET_FT_EVAL_IR ? R->ev.nq : R->ev.n;
    if (c->max_train_queries >= 0) { /* keep the first N training queries (rows) in et_split_subset_key order */
        int64_t nk = 0, cap = R->src.kind == SRC_BEIR ? R->src.B.nqueries : src_rows(&R->src);
        if (!(R->keys = malloc(sizeof(uint32_t) * (size_t)(cap + 1)))) return et_fail(err, ET_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < cap; i++) {
            if (R->src.kind == SRC_BEIR) {
                const et_beir *B = &R->src.B;
                int pos = 0;
                for (int64_t u = B->qrel_off[i]; u < B->qrel_off[i + 1]; u++) pos |= B->qrels[u].grade > 0;
                if (pos && in_split(B->query_id[i], B->query_text[i], &R->trs)) R->keys[nk++] = et_split_subset_key(B->query_id[i]);
            } else if (keep_row(&R->src, i, &R->trs)) {
                R->keys[nk++] = et_split_subset_key(et_split_key(src_id(&R->src, i), src_a(&R->src, i)));
            }
        }
        if (c->max_train_queries == 0) R->trs.none = 1;
        else if (c->max_train_queries < nk) {
            for (int64_t i = 1; i < nk; i++) { /* insertion sort: small sets */
                uint32_t v = R->keys[i];
                int64_t j = i;
                while (j > 0 && R->keys[j - 1] > v) { R->keys[j] = R->keys[j - 1]; j--; }
                R->keys[j] = v;
            }
            R->trs.subset_max = R->keys[c->max_train_queries - 1];
        }
        say(c, "using %d of %lld training %s (--max-train-queries)", c->max_train_queries < nk ? c->max_train_queries : (int)nk,
            (long long)nk, R->src.kind == SRC_BEIR ? "queries" : "rows");
    }
    if (c->dev != 0 && !R->trs.none) { /* the dev split: carved from the training rows by et_split_is_dev */
        ft_split ds = R->trs;
        ds.dev = 1;
        et_error e2 = {0};
        et_status s2 = evalset_make(&R->src, &ds, c->sts_max, c->data, &R->dv, &e2);
        R->dev_size = s2 ? 0 : R->dv.kind == ET_FT_EVAL_IR ? R->dv.nq : R->dv.n;
        int64_t need = (s2 ? R->ev.kind : R->dv.kind) == ET_FT_EVAL_IR ? ET_FT_MIN_DEV_QUERIES : ET_FT_MIN_DEV_ROWS;
        if (!s2 && R->dev_size >= need) R->use_dev = 1;
        else {
            evalset_free(&R->dv);
            memset(&R->dv, 0, sizeof R->dv);
            if (c->dev == 1) {
                s = et_fail(err, ET_ERR_FORMAT, "%s: the dev split holds %lld judged %s (need %lld)", c->data, (long long)R->dev_size,
                            R->ev.kind == ET_FT_EVAL_IR ? "queries" : "rows", (long long)need);
                return s;
            }
        }
        if (R->use_dev) R->trs.dev = 2;
    }
    return ET_OK;
}

/* Step "rows": the training rows R->TP selected by R->trs (strings borrowed from R->src); for BEIR data the mining
 * universe R->M (queries with a positive, the corpus), for pairs/STS the pair index R->ix over the rows. Fails when
 * no row is left to train on. */
static et_status ft_train_rows(ft_run *R, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_finetune_result *res = R->res;
    int pairwise = R->pairwise;
    et_train_loss loss = R->loss;
    et_status s;
    if (R->src.kind == SRC_BEIR) {
        const et_beir *B = &R->src.B;
        int64_t cap = B->nqrels + 1;
        R->TP.query = malloc(sizeof(char *) * (size_t)cap);
        R->TP.passage = malloc(sizeof(char *) * (size_t)cap);
        R->TP.id = calloc((size_t)cap, sizeof(char *));
        R->TP.label = malloc(sizeof(float) * (size_t)cap);
        R->M.mq = malloc(sizeof(char *) * (size_t)(B->nqueries + 1));
        R->M.mq_off = malloc(sizeof(int64_t) * ((size_t)B->nqueries + 1));
        R->M.mq_pos = malloc(sizeof(int32_t) * (size_t)cap);
        if (!R->TP.query || !R->TP.passage || !R->TP.id || !R->TP.label || !R->M.mq || !R->M.mq_off || !R->M.mq_pos) return et_fail(err, ET_ERR_NOMEM, "out of memory");
        int64_t m = 0;
        for (int32_t q = 0; q < B->nqueries; q++) {
            if (!in_split(B->query_id[q], B->query_text[q], &R->trs)) continue;
            int64_t m0 = m;
            for (int64_t u = B->qrel_off[q]; u < B->qrel_off[q + 1]; u++) {
                if (B->qrels[u].grade <= 0) continue;
                R->TP.query[R->TP.n] = B->query_text[q]; R->TP.passage[R->TP.n] = B->doc_text[B->qrels[u].d];
                R->TP.id[R->TP.n] = B->query_id[q]; R->TP.label[R->TP.n++] = 1;
                R->M.mq_pos[m++] = B->qrels[u].d;
            }
            if (m == m0) continue;
            R->M.mq_off[R->M.nmq] = m0;
            R->M.mq[R->M.nmq++] = B->query_text[q];
        }
        R->M.mq_off[R->M.nmq] = m;
        R->M.corpus = B->doc_text; R->M.nd = B->ndocs;
        res->train_queries = R->M.nmq;
    } else {
        int64_t n = src_rows(&R->src);
        int lab = src_labelled(&R->src), keep_lab = lab && pairwise;
        R->TP.query = malloc(sizeof(char *) * (size_t)(n + 1));
        R->TP.passage = malloc(sizeof(char *) * (size_t)(n + 1));
        R->TP.id = calloc((size_t)n + 1, sizeof(char *));
        R->TP.label = malloc(sizeof(float) * (size_t)(n + 1));
        int K = R->src.kind == SRC_PAIRS ? R->src.P.K : 0;
        if (K && pairwise) R->TP.scores = malloc(sizeof(float) * (size_t)(n + 1) * K);
        if (!R->TP.query || !R->TP.passage || !R->TP.id || !R->TP.label || (K && pairwise && !R->TP.scores)) return et_fail(err, ET_ERR_NOMEM, "out of memory");
        for (int64_t i = 0; i < n; i++) {
            if (!keep_row(&R->src, i, &R->trs)) continue;
            float y = lab ? src_label(&R->src, i, c->sts_max) : 1.f;
            if (!pairwise && y < c->pos_threshold) continue; /* infonce/clp: positive rows only */
            R->TP.query[R->TP.n] = src_a(&R->src, i); R->TP.passage[R->TP.n] = src_b(&R->src, i); R->TP.id[R->TP.n] = src_id(&R->src, i);
            R->TP.label[R->TP.n] = keep_lab ? y : 1.f;
            if (R->TP.scores) memcpy(R->TP.scores + R->TP.n * K, R->src.P.scores + i * K, sizeof(float) * K);
            R->TP.n++;
        }
        R->TP.has_label = keep_lab;
        if (R->TP.scores) { R->TP.K = K; R->TP.expert_names = R->src.P.expert_names; }
        if ((s = et_pair_index_build(&R->TP, &R->ix, err))) return s;
        R->has_ix = 1;
        R->M.corpus = R->ix.ptext; R->M.nd = R->ix.np; R->M.mq = R->ix.qtext; R->M.nmq = R->ix.nq; R->M.mq_off = NULL; R->M.mq_pos = NULL;
        res->train_queries = pairwise ? R->TP.n : R->ix.nq;
    }
    int adapting = R->adapting = c->adapt || c->corpus;
    if (adapting && pairwise) return et_fail(err, ET_ERR_ARG, "finetune: corpus adaptation (--adapt / --corpus) works with the losses infonce and clp (not %s)", et_train_loss_name(loss));
    if (!R->TP.n && !(adapting && R->src.kind == SRC_BEIR)) return et_fail(err, ET_ERR_FORMAT, "%s: no training rows in the train split%s", c->data, pairwise ? "" : " (with a label >= the positive threshold)");
    return ET_OK;
}

/* Step "evaluate before": the starting model (and BM25, hybrid) on the held-out set R->ev, into R->res; sets up the
 * encoding options R->eo that ft_eval_after uses again. */
static et_status ft_eval_before(ft_run *R, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_finetune_result *res = R->res;
    int mlen = R->mlen;
    et_status s;
    /* memory, up front (before any encoding): THE estimates the trainer and the encoder refuse by */
    if ((s = ft_memory_check(c, &R->L.model, et_pool_size(R->L.pool), mlen, R->pairwise, R->listsoft, R->adapting,
                             R->pairwise && !R->listsoft ? R->TP.n : R->M.nmq, &R->ev, &R->M, res, err)))
        return s;
    double te = et_now_s();
    say(c, "evaluating the starting model on %lld held-out %s", (long long)res->test_queries, R->ev.kind == ET_FT_EVAL_IR ? "queries" : "pairs");
    if (phase_start(c, ET_FT_PHASE_EVAL_BEFORE)) return cancelled(err, ET_FT_PHASE_EVAL_BEFORE);
    R->ps = ft_step(c, ET_FT_PHASE_EVAL_BEFORE, "encode eval corpus", NULL);
    R->eo = ft_step_encode(c, mlen, &R->ps);
    ft_evix E = {0};
    if (R->ev.kind == ET_FT_EVAL_IR) { /* one index and query set for the dense, BM25 and hybrid rows */
        if ((s = ft_evix_build(c, &R->L.model, R->L.tok, R->L.pool, mlen, &R->eo, &R->ev, 1, ET_FT_PHASE_EVAL_BEFORE, c->known, &E,
                               &res->eval_known, err))) return s;
        if (res->eval_known) say(c, "%lld of %d held-out passages' embeddings taken from the caller's (the same model and token cap), not encoded again",
                                 (long long)res->eval_known, R->ev.nd);
        s = et_eval_ir_ranked(R->L.pool, &E.ix, &E.Y, ET_EVAL_DENSE, NULL, 10, R->ev.qrels, R->ev.qoff, &res->before, err);
        if (!s) s = et_eval_ir_ranked(R->L.pool, &E.ix, &E.Y, ET_EVAL_BM25, NULL, 10, R->ev.qrels, R->ev.qoff, &res->bm25, err);
    } else s = et_eval_pairs_dense(&R->L.model, R->L.tok, R->L.pool, &R->eo, R->ev.a, R->ev.b, R->ev.lab, R->ev.n, &res->pbefore, err);
    if (!s) s = ft_hybrid_step(c, &R->src, &R->ev, NULL, &R->L.model, R->L.tok, R->L.pool, mlen, 0, &E, res, err);
    ft_evix_free(&E);
    if (s) return s;
    res->seconds_eval = et_now_s() - te;
    return ET_OK;
}

/* Step "mine" (infonce/clp): one example per (query, positive) of R->M into R->D, hard negatives mined from the
 * starting model's ranking (or BM25's, or both), and with corpus adaptation the self-supervised pairs R->AP. */
static et_status ft_mine_examples(ft_run *R, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_finetune_result *res = R->res;
    int mlen = R->mlen, clp = R->clp, adapting = R->adapting;
    et_status s;
    if (phase_start(c, ET_FT_PHASE_MINE)) return cancelled(err, ET_FT_PHASE_MINE);
    if (R->src.kind != SRC_BEIR) { R->M.mq_off = R->ix.pos_off; R->M.mq_pos = R->ix.pos; }
    int64_t nex_ = R->M.mq_off[R->M.nmq];
    if (adapting) { /* self-supervised pairs from passages (adapt.h) */
        const char *const *pas = c->corpus;
        const int32_t *tl = c->corpus_title_len;
        int32_t np = c->n_corpus;
        if (!pas && R->src.kind == SRC_BEIR) { pas = R->src.B.doc_text; tl = R->src.B.doc_title_len; np = R->src.B.ndocs; }
        else if (!pas) { pas = R->ix.ptext; np = R->ix.np; }
        et_adapt_cfg ac;
        et_adapt_cfg_default(&ac);
        ac.seed = c->seed;
        ac.max_pairs = c->adapt_pairs > 0 ? c->adapt_pairs : nex_ < 500 ? 500 : nex_ > 2000 ? 2000 : nex_;
        if ((s = et_adapt_build(pas, tl, np, &ac, &R->AP, err))) return s;
        if (R->AP.n < 2) return et_fail(err, ET_ERR_FORMAT, "%s: corpus adaptation found %lld usable passage(s) (need 2; passages need >= %d words)", c->corpus ? "--corpus" : c->data, (long long)R->AP.n, ac.min_words);
        res->adapt_pairs = R->AP.n; res->adapt_ict = R->AP.n_ict; res->adapt_crop = R->AP.n_crop;
        say(c, "corpus adaptation: %lld self-supervised pairs (%lld inverse-cloze, %lld crop) from %d passages of %s, mixed with %lld labelled examples",
            (long long)R->AP.n, (long long)R->AP.n_ict, (long long)R->AP.n_crop, np, c->corpus ? "--corpus" : "the data's own corpus", (long long)nex_);
    }
    R->D.ex = calloc((size_t)(nex_ + R->AP.n) + 1, sizeof(et_train_example));
    R->M.ex_q = malloc(sizeof(int32_t) * (size_t)(nex_ + 1));
    if (!R->D.ex || !R->M.ex_q) return et_fail(err, ET_ERR_NOMEM, "out of memory");
    for (int32_t q = 0; q < R->M.nmq; q++)
        for (int64_t u = R->M.mq_off[q]; u < R->M.mq_off[q + 1]; u++) {
            et_train_example *e = &R->D.ex[R->D.n];
            e->query = xstrdup(R->M.mq[q]);
            e->positive = xstrdup(R->M.corpus[R->M.mq_pos[u]]);
            e->line = R->D.n + 1;
            R->M.ex_q[R->D.n++] = q;
            if (!e->query || !e->positive) return et_fail(err, ET_ERR_NOMEM, "out of memory");
        }
    R->M.n_ex = R->D.n;
    if (R->M.nmq > 0) {
        res->neg_source = c->neg_source;
        say(c, "%s mining: %d train queries x %d docs, ranks [%d, %d), %d negatives each%s", c->neg_source == ET_FT_NEG_BM25 ? "BM25"
            : c->neg_source == ET_FT_NEG_MIX ? "ANCE + BM25 (mix)" : "ANCE", R->M.nmq, R->M.nd, c->mine_lo, c->mine_hi, c->negatives,
            c->neg_source == ET_FT_NEG_BM25 ? "" : " (starting model)");
        if ((s = mine_and_attach(c, &R->L.model, R->L.tok, R->L.pool, mlen, &R->M, &R->D, clp, &res->mine, 0, err))) return s;
        say(c, "mined %lld negatives (%lld with an own query), %lld positives skipped in the window", (long long)res->mine.n_found,
            (long long)res->mine.n_with_query, (long long)res->mine.n_pos_skipped);
    }
    if (R->AP.n && (s = adapt_attach(c, &R->AP, &R->D, clp, err))) return s;
    return ET_OK;
}

/* Step "score experts" (pairwise losses): the experts that score the training rows into R->ex (BM25, the starting
 * model as R->istart, --expert-model folders) and the data file's own score columns R->T. */
static et_status ft_score_experts(ft_run *R, et_error *err) {
    const et_finetune_cfg *c = R->c;
    int mlen = R->mlen, soft = R->soft;
    et_status s;
    if (phase_start(c, ET_FT_PHASE_EXPERTS)) return cancelled(err, ET_FT_PHASE_EXPERTS);
    if (!R->has_ix) { if ((s = et_pair_index_build(&R->TP, &R->ix, err))) return s; R->has_ix = 1; }
    if ((s = et_score_table_from_pairs(&R->T, &R->TP, err))) return s;
    if (c->use_bm25) {
        if ((s = et_expert_bm25_init(&R->ex[R->nex], &R->ix, NULL, err))) return s;
        R->nex++;
    }
    if (soft && (c->start_expert || c->soft_range == ET_FT_RANGE_AUTO)) { /* the starting model (issue 20) */
        ft_progress pe = {{et_now_s(), "expert start: encode passages", 0}, c, ET_FT_PHASE_EXPERTS};
        et_encode_opts e2 = {c->enc_batch, mlen, c->quiet && !c->progress ? NULL : enc_progress, &pe};
        if ((s = et_expert_dense_init(&R->ex[R->nex], &R->ix, "start", &R->L.model, R->L.tok, R->L.pool, &e2, err))) return s;
        R->istart = R->nex++;
    }
    for (int i = 0; i < c->n_expert_models; i++) {
        et_hf_model E;
        if ((s = et_hf_model_load(c->expert_models[i], c->threads, &E, err))) { et_hf_model_free(&E); return s; }
        char nm[128];
        const char *p = c->expert_models[i];
        size_t l = strlen(p);
        while (l > 1 && p[l - 1] == '/') l--;
        size_t a = l;
        while (a > 0 && p[a - 1] != '/') a--;
        snprintf(nm, sizeof nm, "%.*s", (int)(l - a), p + a);
        for (int j = 0; j < R->nex; j++) if (!strcmp(R->ex[j].name, nm)) snprintf(nm + strlen(nm) > nm + 100 ? nm + 100 : nm + strlen(nm), 16, "_%d", i + 2);
        ft_progress pe = {{et_now_s(), "expert: encode passages", 0}, c, ET_FT_PHASE_EXPERTS};
        et_encode_opts e2 = {c->enc_batch, mlen, c->quiet && !c->progress ? NULL : enc_progress, &pe};
        s = et_expert_dense_init(&R->ex[R->nex], &R->ix, nm, &E.model, E.tok, E.pool, &e2, err);
        et_hf_model_free(&E);
        if (s) return s;
        R->nex++;
    }
    return ET_OK;
}

/* Step "pairwise examples": the labelled rows as they are, or positives + sampled negatives, each with the experts'
 * scores as columns, into R->D; with a soft loss the target range check (soft_guard). */
static et_status ft_pairwise_examples(ft_run *R, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_finetune_result *res = R->res;
    int soft = R->soft;
    et_train_loss loss = R->loss;
    et_status s;
    /* rows: the labelled rows as they are, or positives + sampled negatives */
    int add = !R->TP.has_label && c->negatives > 0;
    if (R->listsoft && R->TP.has_label) { /* the list form groups a positive with its sampled negatives */
        R->listsoft = 0;
        R->cc->train.soft_list = 0;
        say(c, "note: the file's rows carry labels: loss %s trains on them in its pair form (cosine MSE per row)", et_train_loss_name(loss));
    }
    int64_t nr = R->TP.n + (add ? R->TP.n * (int64_t)c->negatives : 0), r = 0;
    R->rq = malloc(sizeof(int32_t) * (size_t)nr); R->rp = malloc(sizeof(int32_t) * (size_t)nr);
    R->rl = malloc(sizeof(float) * (size_t)nr); R->rsrc = malloc(sizeof(int64_t) * (size_t)nr);
    if (!R->rq || !R->rp || !R->rl || !R->rsrc) return et_fail(err, ET_ERR_NOMEM, "out of memory");
    if (add) {
        R->negs = malloc(sizeof(int32_t) * (size_t)R->TP.n * c->negatives);
        if (!R->negs) return et_fail(err, ET_ERR_NOMEM, "out of memory");
        if (c->neg_hard && !R->nex) return et_fail(err, ET_ERR_ARG, "finetune: hard negatives need an expert to rank (BM25 or --expert-model)");
        et_neg_cfg nc = {c->negatives, c->neg_hard ? ET_NEG_HARD : ET_NEG_RANDOM, c->hard_ratio, c->seed};
        if ((s = et_experts_sample_negatives(&R->ix, R->TP.label, R->nex ? &R->ex[0] : NULL, &nc, R->L.pool, R->negs, err))) return s;
    }
    for (int64_t i = 0; i < R->TP.n; i++) {
        R->rq[r] = R->ix.row_q[i]; R->rp[r] = R->ix.row_p[i]; R->rl[r] = R->TP.label[i]; R->rsrc[r++] = i;
        for (int g = 0; add && g < c->negatives; g++)
            if (R->negs[i * c->negatives + g] >= 0) { R->rq[r] = R->ix.row_q[i]; R->rp[r] = R->negs[i * c->negatives + g]; R->rl[r] = 0; R->rsrc[r++] = -1; }
    }
    nr = r;
    int Ku = add ? 0 : R->T.K; /* the file's own columns exist for its rows only */
    if (add && R->T.K) say(c, "note: the file's own score columns are not used (the added negative rows have none)");
    int nexc = R->istart >= 0 && !c->start_expert ? R->nex - 1 : R->nex; /* expert columns (start only for calibration) */
    int K = Ku + nexc;
    if (soft && !K) return et_fail(err, ET_ERR_ARG, "finetune: loss %s needs expert scores: keep BM25 on, add --expert-model, or give scored pairs", et_train_loss_name(loss));
    R->cols = malloc(sizeof(float) * (size_t)(nr ? nr : 1) * (R->nex ? R->nex : 1));
    if (!R->cols) return et_fail(err, ET_ERR_NOMEM, "out of memory");
    for (int e = 0; e < R->nex; e++)
        if ((s = et_expert_score_qp(&R->ex[e], &R->ix, R->rq, R->rp, nr, R->cols + (int64_t)e * nr, err))) return s;
    if (soft && add && c->neg_hard && c->hard_ratio > 0) {
        if ((s = soft_fix_negatives(c, &R->ix, R->ex, R->nex, c->start_expert ? -1 : R->istart, R->rq, R->rp, R->rl, R->rsrc, nr, R->cols,
                                    &res->soft_neg_replaced, err))) return s;
        say(c, "%lld of %lld negatives had a %s target at least their positive's (the experts call them as related as "
               "the answer): replaced by random passages", (long long)res->soft_neg_replaced, (long long)(nr - R->TP.n),
            et_train_loss_name(loss));
    }
    for (int k = 0; k < Ku && res->n_experts < ET_FT_MAX_EXPERT_MODELS + 8; k++) snprintf(res->expert_names[res->n_experts++], 64, "%s", R->T.names[k]);
    for (int e = 0; e < R->nex && res->n_experts < ET_FT_MAX_EXPERT_MODELS + 8; e++)
        if (e != R->istart || c->start_expert) snprintf(res->expert_names[res->n_experts++], 64, "%s", R->ex[e].name);
    if (soft && c->soft_range == ET_FT_RANGE_FIXED) { res->soft_lo = c->train.soft_lo; res->soft_hi = c->train.soft_hi; }
    else { res->soft_lo = 0; res->soft_hi = 1; } /* ET_FT_RANGE_AUTO: set by soft_guard */
    R->D.ex = calloc((size_t)nr + 1, sizeof(et_train_example));
    if (!R->D.ex) return et_fail(err, ET_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < nr; i++) {
        et_train_example *e = &R->D.ex[R->D.n++];
        e->query = xstrdup(R->ix.qtext[R->rq[i]]);
        e->positive = xstrdup(R->ix.ptext[R->rp[i]]);
        e->label = R->rl[i];
        e->has_label = 1;
        e->line = (int)i + 1;
        if (K) {
            e->scores = malloc(sizeof(float) * K);
            if (!e->scores) return et_fail(err, ET_ERR_NOMEM, "out of memory");
            e->n_scores = K;
            for (int k = 0; k < Ku; k++) e->scores[k] = R->T.scores[R->rsrc[i] * R->T.K + k];
            for (int k = 0, u = Ku; k < R->nex; k++)
                if (k != R->istart || c->start_expert) e->scores[u++] = R->cols[(int64_t)k * nr + i];
        }
        if (!e->query || !e->positive) return et_fail(err, ET_ERR_NOMEM, "out of memory");
    }
    say(c, "%lld pairwise rows (%lld positive-labelled input rows, %lld negatives added%s), %d expert column(s)", (long long)nr,
        (long long)R->TP.n, (long long)(nr - R->TP.n), add ? (c->neg_hard ? " (hard: the first expert's top non-answers, share --hard-ratio; rest random)" : ", random") : "", K);
    if (soft && (s = soft_guard(c, &R->D, &c->train, R->istart >= 0 && !R->listsoft ? R->cols + (int64_t)R->istart * nr : NULL, res, err))) return s;
    if (R->listsoft && (s = ft_group_rows(&R->D, err))) return s;
    if (R->listsoft) say(c, "%s in its list form: %d queries, each with its positive and up to %d negatives; target = softmax(target / tau %g) over the group, cross-entropy against the model's in-batch softmax",
                      et_train_loss_name(loss), R->D.n, c->negatives, c->train.tau);
    return ET_OK;
}

/* The examples R->D (mined, or pairwise with expert scores), their hash for the resume check. */
static et_status ft_examples(ft_run *R, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_finetune_result *res = R->res;
    et_status s;
    double tp0 = et_now_s();
    if (!R->pairwise) {
        if ((s = ft_mine_examples(R, err))) return s;
    } else {
        if ((s = ft_score_experts(R, err))) return s;
        if ((s = ft_pairwise_examples(R, err))) return s;
    }
    res->train_examples = R->D.n;
    snprintf(R->D.path, sizeof R->D.path, "%s (train split)", c->data);
    R->D.hash = et_train_data_hash(&R->D); /* the resume check refuses other data */
    res->data_hash = R->D.hash;
    res->seconds_prepare = et_now_s() - tp0;
    return ET_OK;
}

/* Step "train setup": the training settings *tc (explicit options win, the rest from the model and the data:
 * et_finetune_plan, into R->res->plan), the trainer R->tr, the collapse watch R->W and the refresh schedule R->sp. */
static et_status ft_train_setup(ft_run *R, et_train_cfg *tc_out, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_finetune_result *res = R->res;
    int mlen = R->mlen, pairwise = R->pairwise, soft = R->soft;
    et_status s;
    et_train_cfg tc = c->train;
    if (soft) { tc.soft_lo = res->soft_lo; tc.soft_hi = res->soft_hi; }
    if (soft && !R->listsoft && !c->soft_dropout) tc.dropout = 0; /* finetune.h: soft_dropout (the pair form) */
    if (tc.moe_experts > 0)
        say(c, "MoE: %d experts in the FFN up-projection (layer mask %#llx), gate %s%s", tc.moe_experts,
            (unsigned long long)tc.moe_layer_mask, et_moe_gate_name(tc.moe_gate_scale),
            tc.train_only_moe ? ", training the routers and experts only" : "");

    /* settings: explicit ones win, the rest is decided from the model and the data */
    et_ft_plan *P = &res->plan;
    et_finetune_cfg pc = *R->cfg; /* the plan sees the loss form actually used */
    pc.train.soft_list = c->train.soft_list;
    et_finetune_plan(&pc, (double)R->L.model.n_params, R->D.n, R->use_dev ? R->dev_size : 0, (R->use_dev ? R->dv.kind : R->ev.kind) == ET_FT_EVAL_IR, P);
    tc.lr = P->lr;
    tc.batch = P->batch;
    tc.epochs = P->epochs;
    say(c, "lr %g: %s", P->lr, P->why_lr);
    say(c, "batch %d: %s", P->batch, P->why_batch);
    say(c, "epochs %d: %s", P->epochs, P->why_epochs);
    say(c, "dev split: %s%s", P->why_dev, P->use_dev ? "" : "; the last model is kept");
    if (P->use_dev) say(c, "dev evaluation every %d steps, patience %d", P->dev_every, P->patience);
    if (c->time_budget > 0) say(c, "time budget %.0f s for the whole run", c->time_budget);

    /* the trainer */
    R->sp = (step_prog){.c = c, .refresh_every = pairwise || !R->M.nmq ? 0 : c->refresh_every, .t0 = et_now_s(), .loss = NAN,
                        .dev_every = P->dev_every};
    tc.out_dir = c->out_dir;
    tc.vocab_path = R->L.tok_path;
    tc.max_seq_length = R->L.info.max_seq_length;
    tc.do_lower_case = R->L.info.do_lower_case;
    tc.strip_accents = R->L.info.strip_accents;
    if (tc.max_len_q <= 0) tc.max_len_q = mlen;
    if (tc.max_len_d <= 0) tc.max_len_d = mlen;
    tc.negatives = pairwise ? -1 : c->negatives;
    tc.progress = on_step;
    tc.user = &R->sp;
    tc.save_every = 0;
    tc.keep_checkpoints = 1;
    if ((s = et_mkdir_p(c->out_dir, err))) return s;
    if (c->watch_every > 0 || (c->watch_every == ET_FT_WATCH_AUTO && pairwise)) { /* the collapse watch's start */
        if ((s = watch_init(&R->W, &R->D, R->M.corpus, R->M.nd, c->seed, err))) return s;
    }
    if ((s = et_trainer_init(&R->tr, &tc, &R->L.model, R->L.pool, &R->D, err))) return s;
    R->has_tr = 1;
    if (tc.lora_rank > 0) {
        char ts[64];
        et_lora_targets_str(R->L.model.cfg.lora_sites, ts, sizeof ts);
        say(c, "LoRA r %d, alpha %g, dropout %g on %s: %zu trainable parameters, the base's %zu frozen (no gradient, no AdamW state)",
            tc.lora_rank, et_train_lora_alpha(&tc), tc.lora_dropout, ts, R->tr.train_n,
            R->L.model.n_params);
    }
    say(c, "parameters + gradients + AdamW state: %.2f MiB; activations and the rest planned: %.2f MiB", R->tr.bytes_state / 1048576.0,
        (R->tr.bytes_planned - R->tr.bytes_state) / 1048576.0);
    if (R->W.n) {
        long spe = R->tr.total_steps / (tc.epochs > 0 ? tc.epochs : 1);
        R->sp.watch_every = c->watch_every > 0 ? c->watch_every : spe >= 8 ? (int)((spe + 3) / 4) : 0;
        R->sp.watch_last = R->tr.total_steps >= 2 ? R->tr.total_steps - 1 : 0;
    }
    if (R->sp.refresh_every == ET_FT_REFRESH_AUTO) { /* re-mine 4 times per epoch (not for tiny runs) */
        long spe = R->tr.total_steps / (tc.epochs > 0 ? tc.epochs : 1);
        R->sp.refresh_every = spe >= 8 ? (int)((spe + 3) / 4) : 0;
    }
    if (!pairwise && c->neg_source == ET_FT_NEG_BM25) R->sp.refresh_every = 0; /* BM25's negatives do not change */
    res->refresh_every = R->sp.refresh_every;
    say(c, "training: %d examples, loss %s, %ld steps (%d epoch(s), batch %d), lr %g, warm-up %ld%s", R->D.n, et_train_loss_name(tc.loss),
        R->tr.total_steps, tc.epochs, tc.batch, tc.lr, R->tr.warmup, tc.dropout ? "" : ", no dropout");
    if (R->sp.refresh_every) say(c, "ANCE negatives re-mined with the model being trained every %d steps", R->sp.refresh_every);
    *tc_out = tc;
    return ET_OK;
}

/* Step "train": runs the trainer with the dev evaluation and the collapse watch (early stop, time budget, ANCE
 * refreshes), keeps the best dev point, saves the model to c->out_dir and removes the checkpoints. */
static et_status ft_train(ft_run *R, const et_train_cfg *tcp, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_finetune_result *res = R->res;
    int mlen = R->mlen, clp = R->clp;
    double t_start = R->t_start;
    et_ft_plan *P = &res->plan;
    et_train_cfg tc = *tcp;
    et_status s;
    if (phase_start(c, ET_FT_PHASE_TRAIN)) return cancelled(err, ET_FT_PHASE_TRAIN);
    double tt = et_now_s();
    long spe_ = R->tr.total_steps / (tc.epochs > 0 ? tc.epochs : 1);
    if (spe_ < 1) spe_ = 1;
    long grace = et_ft_grace_steps(R->tr.total_steps, tc.epochs); /* the early transient: no early stop, no watch stop */
    int stopped = 0, collapsed = 0;
    et_ft_stopper stp = {0};
    char wmsg[1024] = "";
    if (P->use_dev && R->dv.kind == ET_FT_EVAL_IR) { /* the keep-the-start rule (et_ft_beats_start) */
        R->pq0 = malloc(sizeof(double) * (size_t)(R->dv.nq + 1));
        R->pq1 = malloc(sizeof(double) * (size_t)(R->dv.nq + 1));
        if (!R->pq0 || !R->pq1) return et_fail(err, ET_ERR_NOMEM, "out of memory");
    }
    if (P->use_dev || R->W.n) { /* the starting model: the watch's reference and the first dev candidate */
        et_ft_dev_point p0;
        if ((s = ft_dev_evaluate(c, P->use_dev ? &R->dv : NULL, &R->W, &R->L.model, R->L.tok, R->L.pool, mlen, 0, R->tr.total_steps, 0, t_start,
                                 res, R->pq0, NULL, &p0, wmsg, sizeof wmsg, err))) return s;
        if (P->use_dev) res->dev[0] = p0;
    }
    if (P->use_dev) { /* the starting model is the first candidate */
        if (!(R->best = malloc(sizeof(float) * R->tr.train_n))) return et_fail(err, ET_ERR_NOMEM, "out of memory (best-model copy)");
        res->n_dev = 1;
        et_ft_stopper_add(&stp, res->dev[0].score, P->patience);
        res->best_dev = 0;
        memcpy(R->best, R->tr.train_params, sizeof(float) * R->tr.train_n); /* what is trained: all, or the LoRA adapters */
        if (c->mix && !(R->start = malloc(sizeof(float) * R->tr.train_n))) return et_fail(err, ET_ERR_NOMEM, "out of memory (starting-model copy)");
        if (R->start) memcpy(R->start, R->tr.train_params, sizeof(float) * R->tr.train_n);
        char sz[256];
        dev_sizes(c, &res->dev[0], sz, sizeof sz);
        say(c, "dev at step 0 (starting model): %.4f%s", res->dev[0].score, sz);
    }
    if (c->time_budget > 0) { /* leave room for the final evaluation (as long as the first) and one dev evaluation */
        double dev_cost = res->n_dev ? res->dev[0].seconds - (tt - t_start) : 0;
        R->sp.deadline = t_start + c->time_budget - res->seconds_eval - (dev_cost > 0 ? dev_cost : 0) - 1.0;
    }
    snprintf(res->stop_reason, sizeof res->stop_reason, "completed %d epoch(s)", tc.epochs);
    for (;;) {
        if ((s = et_trainer_run(&R->tr, R->L.tok, err))) return s;
        if (R->sp.cancelled) return cancelled(err, ET_FT_PHASE_TRAIN);
        long step = et_trainer_step(&R->tr);
        int end = step >= R->tr.total_steps;
        if (R->sp.timed_out && !end) { snprintf(res->stop_reason, sizeof res->stop_reason, "time budget (%.0f s) reached at step %ld", c->time_budget, step); stopped = 1; }
        int due_dev = P->use_dev && (end || stopped || step % P->dev_every == 0) && res->n_dev < ET_FT_MAX_DEV_POINTS;
        int due_watch = R->W.n && (due_dev || (!end && watch_due(&R->sp, step, R->tr.total_steps)));
        if (due_dev || due_watch) { /* one evaluation: dev score and collapse watch */
            et_ft_dev_point pt;
            if ((s = ft_dev_evaluate(c, due_dev ? &R->dv : NULL, due_watch ? &R->W : NULL, &R->L.model, R->L.tok, R->L.pool, mlen, step,
                                     R->tr.total_steps, (int)((step - 1) / spe_), t_start, res, R->pq1, R->pq0, &pt, wmsg, sizeof wmsg,
                                     err))) return s;
            if (pt.collapsed && !P->use_dev) { /* nothing earlier to fall back on */
                clean_checkpoints(c, c->out_dir);
                s = et_fail(err, ET_ERR_NUMERIC, "step %ld/%ld: the embeddings are collapsing, so training stopped and the tuned model "
                            "was NOT written: %s", step, R->tr.total_steps, wmsg);
                return s;
            }
            if (due_dev) {
                res->dev[res->n_dev] = pt;
                int halt = et_ft_stopper_add(&stp, pt.excluded ? NAN : pt.score, P->patience);
                /* the kept model: the best dev score among the points that are not excluded and whose gain over the
                 * starting model is at least one paired standard error (et_ft_beats_start); else the start */
                int better = !pt.excluded && !pt.within_noise && pt.score > res->dev[res->best_dev].score;
                char why[160] = "";
                if (better && !isnan(pt.gain)) snprintf(why, sizeof why, " (best so far; %+.4f over the start, paired SE %.4f)", pt.gain, pt.gain_se);
                else if (better) snprintf(why, sizeof why, " (best so far)");
                else if (pt.within_noise && !pt.excluded && pt.score > res->dev[res->best_dev].score)
                    snprintf(why, sizeof why, " (gain over the start %+.4f is below one paired standard error %.4f: not kept)",
                             pt.gain, pt.gain_se);
                else if (pt.collapsed) snprintf(why, sizeof why, " (collapsing: not kept)");
                else if (pt.excluded) snprintf(why, sizeof why, " (anisotropy %.3f, start %.3f: rose by more than %.2f, not kept)",
                                               pt.anisotropy, res->dev[0].anisotropy, ET_FT_KEEP_ANISO);
                char sz[256];
                dev_sizes(c, &pt, sz, sizeof sz);
                say(c, "dev at step %ld (epoch %d): %.4f%s%s", step, pt.epoch + 1, pt.score, sz, why);
                if (better) { res->best_dev = res->n_dev; memcpy(R->best, R->tr.train_params, sizeof(float) * R->tr.train_n); }
                res->n_dev++;
                if (!end && !stopped && halt && step >= grace) { /* never inside the early transient (et_ft_grace_steps) */
                    snprintf(res->stop_reason, sizeof res->stop_reason, "early stop at step %ld: dev did not rise for %d evaluations", step, stp.bad);
                    stopped = 1;
                }
            }
            /* the list form (a contrastive loss) spikes in anisotropy during its first epoch and comes back (cranfield
             * soft1's dev split: +0.05 at step 33, below the start from step 66 on; cisi and cacm tripped the watch at
             * its first check, steps 20-32, inside the warm-up): with a dev split such a point is only not kept, and
             * the watch stops training only after the same early transient as early stopping (et_ft_grace_steps: on
             * cisi the spike lasts about 250 steps, two epochs) */
            int transient = pt.collapsed && R->listsoft && step < grace;
            if (transient)
                say(c, "step %ld: the collapse watch's limits are crossed in the early transient (the first %ld steps: %s); this point cannot be kept, "
                       "training goes on (the list form's in-batch contrast often spikes early)", step, grace, wmsg);
            if (pt.collapsed && !transient) { /* with a dev split: stop, keep the best point before the collapse */
                collapsed = stopped = 1;
                snprintf(res->stop_reason, sizeof res->stop_reason, "collapse watch at step %ld: anisotropy %.3f -> %.3f, positive margin %.3f -> %.3f",
                         step, R->W.aniso0, pt.watch_aniso, R->W.margin0, pt.watch_margin);
                say(c, "step %ld/%ld: the embeddings are collapsing, so training stopped; the model of step %ld (dev %.4f) is kept: %s",
                    step, R->tr.total_steps, res->dev[res->best_dev].step, res->dev[res->best_dev].score, wmsg);
            }
        }
        if (end || stopped) break;
        if (R->sp.refresh_every > 0 && step % R->sp.refresh_every == 0) { /* an ANCE refresh */
            res->refreshes++;
            if (phase_start(c, ET_FT_PHASE_REFRESH)) return cancelled(err, ET_FT_PHASE_REFRESH);
            say(c, "step %ld: ANCE refresh %d (re-encode with the current model, re-mine)", step, res->refreshes);
            et_mine_stats ms;
            if ((s = mine_and_attach(c, &R->L.model, R->L.tok, R->L.pool, mlen, &R->M, &R->D, clp, &ms, (uint64_t)res->refreshes, err))) return s;
        }
    }
    int restore = P->use_dev && (res->best_dev != res->n_dev - 1 || collapsed);
    if (restore) {
        memcpy(R->tr.train_params, R->best, sizeof(float) * R->tr.train_n);
        et_bert_params_changed(&R->L.model); /* an in-place write: caches of packed weights must not be reused */
        say(c, "keeping the model of step %ld (dev %.4f)%s", res->dev[res->best_dev].step, res->dev[res->best_dev].score,
            res->best_dev == 0 ? ": training did not improve on the starting model on the dev split" : "");
    }
    int mixed = 0;
    res->mix_lambda = NAN;
    if (R->start && res->best_dev > 0) { /* the kept model is in L.model and best[] */
        if (!restore) memcpy(R->best, R->tr.train_params, sizeof(float) * R->tr.train_n);
        if (R->tr.cfg.lora_rank > 0) { /* LoRA: the start as the tuned A with B = 0 (the base whatever A is), so the mix
                                          scales B alone: W + l * scale * B A, the mix of the merged weights */
            const et_bert_config *mc = &R->L.model.cfg;
            et_bert_params v;
            memcpy(R->start, R->best, sizeof(float) * R->tr.train_n);
            memset(&v, 0, sizeof v);
            et_bert_lora_view(mc, mc->lora_rank, mc->lora_sites, R->start, &v);
            for (int l = 0; l < mc->num_layers; l++)
                for (int j = 0; j < ET_LIN_N; j++)
                    if (v.layer[l].lora_B[j])
                        memset(v.layer[l].lora_B[j], 0, sizeof(float) * (size_t)mc->lora_rank *
                                                            (size_t)(j == ET_LIN_I ? mc->intermediate_size : mc->hidden_size));
        }
        if ((s = ft_mix_step(c, &R->dv, &R->L.model, R->tr.train_params, R->tr.train_n, R->start, R->best, R->L.tok, R->L.pool,
                             mlen, t_start, res, &mixed, err))) return s;
    }
    if ((stopped || restore || mixed) && (s = et_trainer_save_model(&R->tr, c->out_dir, err))) return s;
    say(c, "training ended: %s", res->stop_reason);
    res->seconds_train = et_now_s() - tt;
    res->steps = et_trainer_step(&R->tr);
    res->final_loss = R->sp.loss;
    res->fx_cands = R->tr.fx_cands; res->fx_excluded = R->tr.fx_excluded; res->fx_own = R->tr.fx_own;
    if (R->tr.fx_cands > 0)
        say(c, "known false negatives: %lld of %lld in-batch candidates from other rows (%.1f %%) were another positive of the "
            "row's query and left out of its softmax; %lld own negatives were such a positive", (long long)res->fx_excluded,
            (long long)res->fx_cands, 100.0 * (double)res->fx_excluded / (double)res->fx_cands, (long long)res->fx_own);
    clean_checkpoints(c, c->out_dir);
    return ET_OK;
}

/* Step "evaluate after": the tuned model on the held-out set, and the fusion selection and hybrid rows
 * (ft_hybrid_step, the dev split as the fusion's fitting set when there is one). */
static et_status ft_eval_after(ft_run *R, et_error *err) {
    const et_finetune_cfg *c = R->c;
    et_finetune_result *res = R->res;
    int mlen = R->mlen;
    et_status s;
    double te = et_now_s();
    say(c, "evaluating the tuned model");
    if (phase_start(c, ET_FT_PHASE_EVAL_AFTER)) return cancelled(err, ET_FT_PHASE_EVAL_AFTER);
    R->ps = ft_step(c, ET_FT_PHASE_EVAL_AFTER, "encode eval corpus", NULL);
    ft_evix E = {0};
    if (R->ev.kind == ET_FT_EVAL_IR) {
        s = ft_evix_build(c, &R->L.model, R->L.tok, R->L.pool, mlen, &R->eo, &R->ev, c->fusion, ET_FT_PHASE_EVAL_AFTER, NULL, &E, NULL, err);
        if (!s) s = et_eval_ir_ranked(R->L.pool, &E.ix, &E.Y, ET_EVAL_DENSE, NULL, 10, R->ev.qrels, R->ev.qoff, &res->after, err);
    } else s = et_eval_pairs_dense(&R->L.model, R->L.tok, R->L.pool, &R->eo, R->ev.a, R->ev.b, R->ev.lab, R->ev.n, &res->pafter, err);
    if (!s) s = ft_hybrid_step(c, &R->src, &R->ev, R->use_dev ? &R->dv : NULL, &R->L.model, R->L.tok, R->L.pool, mlen, 1, &E, res, err);
    ft_evix_free(&E);
    res->seconds_eval += et_now_s() - te;
    if (!s && c->progress) { et_ft_progress q = {ET_FT_PHASE_DONE, 1, 1, NULL}; c->progress(c->progress_user, &q); }

    return s;
}

et_status et_finetune_run(const et_finetune_cfg *cfg, et_finetune_result *res, et_error *err) {
    memset(res, 0, sizeof *res);
    et_finetune_cfg cc = *cfg; /* with the negatives resolved */
    et_status s = ft_check_cfg(&cc, err);
    if (s) return s;
    ft_run R;
    memset(&R, 0, sizeof R);
    R.cfg = cfg;
    R.c = R.cc = &cc;
    R.res = res;
    R.loss = cc.train.loss;
    R.pairwise = loss_is_pairwise(R.loss);
    R.soft = R.pairwise && R.loss != ET_TRAIN_MSE;
    R.clp = R.loss == ET_TRAIN_CLP;
    R.listsoft = R.soft && cc.train.soft_list;
    R.t_start = et_now_s();
    R.istart = -1;
    res->best_dev = -1;
    et_train_cfg tc;
    if (!(s = ft_load_model(&R, err)) && !(s = ft_split_data(&R, err)) && !(s = ft_train_rows(&R, err)))
        s = ft_eval_before(&R, err);
    if (cfg->known && cfg->known->release) cfg->known->release(cfg->known->user); /* used only by eval_before */
    if (!s && !(s = ft_examples(&R, err)) && !(s = ft_train_setup(&R, &tc, err)) && !(s = ft_train(&R, &tc, err)))
        s = ft_eval_after(&R, err);
    ft_run_free(&R);
    return s;
}
