/* cli_eval.c - `embedtune eval`, `embedtune score` and `embedtune mine`.
 *
 * eval: --data is one of
 *   - a BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv): retrieval over the whole corpus for the
 *     judged queries (of the chosen --split), exact top-depth search (depth = max(k, 100)), nDCG@k,
 *     MAP@k, MRR@k, P@k, Recall@10, Recall@100 (metrics.h definitions), plus
 *       AUPRC: the judged pairs with grade > 0 are the positives; per query, as many negatives as it
 *              has positives (fewer if not available) are drawn (seeded) from the non-relevant docs of
 *              the evaluated ranking's top 100 ("hard" negatives). Scored by the system's score
 *              (cosine for the model, BM25 for --bm25, the model cosine for --hybrid).
 *       anisotropy: mean cosine of random corpus-embedding pairs (100k pairs max, fixed seed);
 *       mean_pos_cosine: mean cosine over the judged pairs with grade > 0.
 *   - a pairs file with labels (query, passage, label): AUPRC of the score over its rows;
 *     without labels (query, positive): retrieval of the distinct passages for the distinct queries.
 *   - an STS file (JSONL with "s1", "s2", "score"): Spearman and Pearson (x100) of cos(s1, s2) vs score.
 * --split test|train uses the data.md SHA-1 rule on the query id (BEIR), the row "id" (pairs and STS;
 * the query text / s1 when a row has no id).
 *
 * score: adds expert scores to each pair ("experts": {name: score}), see experts.h.
 * mine : ANCE hard negatives for a pairs file with a model (see mine.h), written as training records. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bm25.h"
#include "cJSON.h"
#include "cli.h"
#include "data.h"
#include "encode.h"
#include "experts.h"
#include "fileio.h"
#include "kernels.h"
#include "metrics.h"
#include "mine.h"
#include "rng.h"

#define EVAL_ANISO_PAIRS 100000
#define EVAL_SEED 20240917ull

/* ------------------------------------------------------------------ shared helpers */

static void l2norm(float *x, int64_t n, int32_t d) {
    for (int64_t i = 0; i < n; i++) {
        float *r = x + i * d;
        float s = sqrtf(et_dot(r, r, d));
        if (s > 1e-12f) for (int32_t j = 0; j < d; j++) r[j] /= s;
    }
}

static const char *basename_of(const char *path, char *buf, size_t cap) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t a = n;
    while (a > 0 && path[a - 1] != '/') a--;
    size_t len = n - a < cap - 1 ? n - a : cap - 1;
    memcpy(buf, path + a, len);
    buf[len] = 0;
    return buf;
}

/* a number with ~7 significant digits (cJSON prints doubles with up to 17) */
static double r7(double x) {
    if (!isfinite(x)) return x;
    char b[32];
    snprintf(b, sizeof b, "%.7g", x);
    return strtod(b, NULL);
}

static void json_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, r7(v));
    else cJSON_AddNullToObject(o, k);
}

static int write_json_out(const char *cmd, const char *path, cJSON *root) {
    char *s = cJSON_Print(root);
    if (!s) { fprintf(stderr, "embedtune %s: out of memory\n", cmd); return 1; }
    int rc = 0;
    if (!strcmp(path, "-")) {
        fputs(s, stdout);
        fputc('\n', stdout);
    } else {
        et_error err = {0};
        size_t n = strlen(s);
        s[n] = '\n'; /* replace the NUL: write n + 1 bytes */
        if (et_write_file_atomic(path, s, n + 1, &err)) rc = et_cli_fail(cmd, &err);
    }
    free(s);
    return rc;
}

typedef struct {
    const char *what;
    int quiet;
    et_progress ps;
} prog;

static et_encode_opts enc_opts(int batch, int max_len, prog *p) {
    p->ps = (et_progress){et_now_s(), p->what, 0};
    et_encode_opts eo = {batch, max_len, p->quiet ? NULL : et_cli_progress, &p->ps};
    return eo;
}

/* ------------------------------------------------------------------ eval: retrieval */

typedef struct {
    /* inputs */
    const char *const *docs;
    int32_t nd;
    const char *const *qs;
    int32_t nq;
    const et_qrel *qrels; /* q in [0, nq) */
    const int64_t *qoff;
    /* setup */
    et_cli_model *L;      /* NULL for --bm25 */
    et_pool *pool;
    int use_bm25, use_model; /* hybrid = both */
    int hybrid_weighted;
    double alpha, k1, b;
    int k, batch, max_len, quiet;
    /* outputs */
    cJSON *metrics, *info;
    double t_encode, t_search;
} ir_job;

typedef struct {
    const float *Qe, *De;
    int32_t d, nd, depth;
    const et_bm25 *bm;
    const char *const *qs;
    const int32_t *mrank, *brank; /* [nq, F] (RRF) */
    int32_t F;
    double alpha;
    int weighted;
    int32_t *out;                 /* [nq, depth] */
    double *dbuf;                 /* [nthreads, 3 * nd] */
    float *fbuf;                  /* [nthreads, nd] */
    int nq, ntasks;
} fuse_ctx;

static void fuse_task(void *vctx, int task, int thread) {
    fuse_ctx *c = vctx;
    int a = (int)((int64_t)c->nq * task / c->ntasks), b = (int)((int64_t)c->nq * (task + 1) / c->ntasks);
    double *m = c->dbuf + (int64_t)thread * 3 * c->nd, *bs = m + c->nd, *f = bs + c->nd;
    float *fs = c->fbuf + (int64_t)thread * c->nd;
    for (int q = a; q < b; q++) {
        if (c->weighted) {
            for (int32_t i = 0; i < c->nd; i++) m[i] = et_dot(c->Qe + (int64_t)q * c->d, c->De + (int64_t)i * c->d, c->d);
            if (et_bm25_score_all(c->bm, c->qs[q], bs, NULL)) memset(bs, 0, sizeof(double) * (size_t)c->nd);
            const double *sys[2] = {m, bs};
            double w[2] = {c->alpha, 1 - c->alpha};
            if (et_fuse_minmax(sys, w, 2, c->nd, f, NULL)) memcpy(f, m, sizeof(double) * (size_t)c->nd);
        } else {
            const int32_t *rk[2] = {c->mrank + (int64_t)q * c->F, c->brank + (int64_t)q * c->F};
            et_fuse_rrf(rk, 2, c->F, c->nd, 60.0, f, NULL);
        }
        for (int32_t i = 0; i < c->nd; i++) fs[i] = (float)f[i];
        int32_t *o = c->out + (int64_t)q * c->depth;
        int32_t kk = c->depth < c->nd ? c->depth : c->nd;
        et_rank_scores(fs, c->nd, kk, o);
        for (int32_t j = kk; j < c->depth; j++) o[j] = -1;
    }
}

static int grade_of(const et_qrel *j, int64_t nj, int32_t doc) {
    int64_t a = 0, b = nj;
    while (a < b) {
        int64_t m = (a + b) / 2;
        if (j[m].d == doc) return j[m].grade;
        if (j[m].d < doc) a = m + 1; else b = m;
    }
    return 0;
}

static int run_ir(ir_job *J, et_error *err) {
    int32_t nd = J->nd, nq = J->nq, depth = J->k > 100 ? J->k : 100;
    int d = J->L ? J->L->model.cfg.hidden_size : 0;
    float *De = NULL, *Qe = NULL, *msc = NULL, *auprc_s = NULL, *auprc_l = NULL;
    int32_t *rank = NULL, *mrank = NULL, *brank = NULL, *pq = NULL, *pd = NULL;
    double *bsc = NULL, *dbuf = NULL, *pair_d = NULL;
    float *fbuf = NULL;
    const char **pair_q = NULL;
    et_bm25 *bm = NULL;
    int rc = 0;
    double t0 = et_now_s();
    rank = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * depth);
    if (!rank) goto nomem;
    if (J->use_model) {
        De = malloc(sizeof(float) * (size_t)nd * d);
        Qe = malloc(sizeof(float) * (size_t)(nq ? nq : 1) * d);
        if (!De || !Qe) goto nomem;
        prog pc = {"encode corpus", J->quiet, {0}}, pq_ = {"encode queries", J->quiet, {0}};
        et_encode_opts eo = enc_opts(J->batch, J->max_len, &pc);
        if (et_encode_texts(&J->L->model, J->L->tok, J->pool, J->docs, (size_t)nd, &eo, De, err)) { rc = et_cli_fail("eval", err); goto done; }
        eo = enc_opts(J->batch, J->max_len, &pq_);
        if (nq < 1000) eo.progress = NULL; /* a progress line for big query sets only */
        if (et_encode_texts(&J->L->model, J->L->tok, J->pool, J->qs, (size_t)nq, &eo, Qe, err)) { rc = et_cli_fail("eval", err); goto done; }
        l2norm(De, nd, d);
        l2norm(Qe, nq, d);
    }
    J->t_encode = et_now_s() - t0;
    t0 = et_now_s();
    if (J->use_bm25) {
        et_bm25_opts bo = {J->k1, J->b, 0};
        if (!(bm = et_bm25_build(J->docs, nd, &bo, err))) { rc = et_cli_fail("eval", err); goto done; }
    }
    int32_t F = depth > 1000 ? depth : 1000;
    if (F > nd) F = nd;
    if (J->use_model && !J->use_bm25) {
        msc = malloc(sizeof(float) * (size_t)(nq ? nq : 1) * depth);
        if (!msc) goto nomem;
        if (et_mine_topk(J->pool, Qe, De, nq, nd, d, depth, 0, 0, rank, msc, err)) { rc = et_cli_fail("eval", err); goto done; }
    } else if (J->use_bm25 && !J->use_model) {
        bsc = malloc(sizeof(double) * (size_t)(nq ? nq : 1) * depth);
        if (!bsc) goto nomem;
        if (et_bm25_search_batch(J->pool, bm, J->qs, nq, depth, rank, bsc, err)) { rc = et_cli_fail("eval", err); goto done; }
    } else { /* hybrid */
        int nth = et_pool_size(J->pool);
        dbuf = malloc(sizeof(double) * (size_t)nth * 3 * nd);
        fbuf = malloc(sizeof(float) * (size_t)nth * nd);
        if (!dbuf || !fbuf) goto nomem;
        fuse_ctx c = {Qe, De, d, nd, depth, bm, J->qs, NULL, NULL, F, J->alpha, J->hybrid_weighted, rank, dbuf, fbuf, nq, 0};
        if (!J->hybrid_weighted) {
            mrank = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * F);
            brank = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * F);
            if (!mrank || !brank) goto nomem;
            if (et_mine_topk(J->pool, Qe, De, nq, nd, d, F, 0, 0, mrank, NULL, err) ||
                et_bm25_search_batch(J->pool, bm, J->qs, nq, F, brank, NULL, err)) { rc = et_cli_fail("eval", err); goto done; }
            c.mrank = mrank;
            c.brank = brank;
        }
        c.ntasks = nq < nth * 8 ? nq : nth * 8;
        if (c.ntasks) et_pool_run(J->pool, fuse_task, &c, c.ntasks);
    }
    J->t_search = et_now_s() - t0;

    /* IR metrics at k, averaged over the queries (all of them are judged) */
    double s_ndcg = 0, s_map = 0, s_mrr = 0, s_p = 0, s_r10 = 0, s_r100 = 0;
    for (int32_t q = 0; q < nq; q++) {
        const int32_t *r = rank + (int64_t)q * depth;
        const et_qrel *j = J->qrels + J->qoff[q];
        int64_t nj = J->qoff[q + 1] - J->qoff[q];
        s_ndcg += et_ndcg_at_k(r, depth, j, nj, J->k);
        s_map += et_ap_at_k(r, depth, j, nj, J->k);
        s_mrr += et_rr_at_k(r, depth, j, nj, J->k);
        s_p += et_precision_at_k(r, depth, j, nj, J->k);
        s_r10 += et_recall_at_k(r, depth, j, nj, 10);
        s_r100 += et_recall_at_k(r, depth, j, nj, 100);
    }
    char key[32];
    double nqd = nq ? nq : NAN;
    snprintf(key, sizeof key, "ndcg@%d", J->k); json_num(J->metrics, key, s_ndcg / nqd);
    snprintf(key, sizeof key, "map@%d", J->k); json_num(J->metrics, key, s_map / nqd);
    snprintf(key, sizeof key, "mrr@%d", J->k); json_num(J->metrics, key, s_mrr / nqd);
    snprintf(key, sizeof key, "p@%d", J->k); json_num(J->metrics, key, s_p / nqd);
    json_num(J->metrics, "recall@10", s_r10 / nqd);
    json_num(J->metrics, "recall@100", s_r100 / nqd);

    /* AUPRC pairs: positives (grade > 0) + sampled hard negatives from the top 100 */
    int64_t npairs = 0, npos = 0;
    for (int64_t i = 0; i < J->qoff[nq]; i++) npos += J->qrels[i].grade > 0;
    int64_t cap = 2 * npos + 1;
    pq = malloc(sizeof(int32_t) * (size_t)cap);
    pd = malloc(sizeof(int32_t) * (size_t)cap);
    auprc_s = malloc(sizeof(float) * (size_t)cap);
    auprc_l = malloc(sizeof(float) * (size_t)cap);
    int32_t *cand = malloc(sizeof(int32_t) * 100);
    if (!pq || !pd || !auprc_s || !auprc_l || !cand) { free(cand); goto nomem; }
    et_rng base;
    et_rng_seed(&base, EVAL_SEED);
    int64_t nneg = 0;
    double cos_sum = 0;
    for (int32_t q = 0; q < nq; q++) {
        const et_qrel *j = J->qrels + J->qoff[q];
        int64_t nj = J->qoff[q + 1] - J->qoff[q], qp = 0;
        for (int64_t u = 0; u < nj; u++)
            if (j[u].grade > 0) { pq[npairs] = q; pd[npairs] = j[u].d; auprc_l[npairs++] = 1; qp++; }
        int32_t nc = 0, top = depth < 100 ? depth : 100;
        for (int32_t r = 0; r < top; r++) {
            int32_t doc = rank[(int64_t)q * depth + r];
            if (doc >= 0 && grade_of(j, nj, doc) <= 0) cand[nc++] = doc;
        }
        int32_t take = (int32_t)(qp < nc ? qp : nc);
        et_rng rng;
        et_rng_fork(&base, (uint64_t)q, &rng);
        for (int32_t u = 0; u < take; u++) {
            int32_t v = u + (int32_t)et_rng_below(&rng, (uint64_t)(nc - u));
            int32_t t = cand[u]; cand[u] = cand[v]; cand[v] = t;
            pq[npairs] = q; pd[npairs] = cand[u]; auprc_l[npairs++] = 0;
            nneg++;
        }
    }
    free(cand);
    if (J->use_model) {
        for (int64_t i = 0; i < npairs; i++) {
            auprc_s[i] = et_dot(Qe + (int64_t)pq[i] * d, De + (int64_t)pd[i] * d, d);
            if (auprc_l[i] > 0) cos_sum += auprc_s[i];
        }
    } else {
        pair_q = malloc(sizeof(char *) * (size_t)(npairs ? npairs : 1));
        pair_d = malloc(sizeof(double) * (size_t)(npairs ? npairs : 1));
        if (!pair_q || !pair_d) goto nomem;
        for (int64_t i = 0; i < npairs; i++) pair_q[i] = J->qs[pq[i]];
        if (et_bm25_score_pairs(bm, pair_q, pd, npairs, pair_d, err)) { rc = et_cli_fail("eval", err); goto done; }
        for (int64_t i = 0; i < npairs; i++) auprc_s[i] = (float)pair_d[i];
    }
    json_num(J->metrics, "auprc", npos ? et_auprc(auprc_s, auprc_l, npairs) : NAN);
    if (J->use_model) {
        json_num(J->metrics, "anisotropy", et_mean_random_cosine(De, nd, d, EVAL_ANISO_PAIRS, EVAL_SEED));
        json_num(J->metrics, "mean_pos_cosine", npos ? cos_sum / npos : NAN);
    }
    cJSON *ap = cJSON_AddObjectToObject(J->info, "auprc_pairs");
    cJSON_AddNumberToObject(ap, "positives", (double)npos);
    cJSON_AddNumberToObject(ap, "negatives", (double)nneg);
    cJSON_AddStringToObject(ap, "negatives_from", "non-relevant docs of the evaluated top 100, as many as positives per query, seeded");
    cJSON_AddStringToObject(ap, "scored_by", J->use_model ? "model cosine" : "bm25");
    goto done;
nomem:
    fprintf(stderr, "embedtune eval: out of memory (%d docs, %d queries)\n", nd, nq);
    rc = 1;
done:
    free(De); free(Qe); free(msc); free(rank); free(mrank); free(brank); free(bsc); free(dbuf); free(fbuf);
    free(pq); free(pd); free(auprc_s); free(auprc_l); free(pair_q); free(pair_d);
    et_bm25_free(bm);
    return rc;
}

/* ------------------------------------------------------------------ eval: STS */

typedef struct {
    char **s1, **s2;
    double *score;
    int64_t n, cap;
} sts_set;

static void sts_free(sts_set *s) {
    for (int64_t i = 0; i < s->n; i++) { free(s->s1[i]); free(s->s2[i]); }
    free(s->s1); free(s->s2); free(s->score);
    memset(s, 0, sizeof *s);
}

/* JSONL {"s1","s2","score"[,"id"]}; keeps the rows of the split */
static et_status sts_read(const char *path, int split, sts_set *S, et_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return et_fail(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long ln = 0;
    et_status st = ET_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        ln++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len) continue;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
        cJSON *a = j ? cJSON_GetObjectItemCaseSensitive(j, "s1") : NULL, *b = j ? cJSON_GetObjectItemCaseSensitive(j, "s2") : NULL;
        cJSON *sc = j ? cJSON_GetObjectItemCaseSensitive(j, "score") : NULL, *id = j ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
        if (!j || !cJSON_IsObject(j)) st = et_fail(err, ET_ERR_FORMAT, "%s:%ld: not a JSON object", path, ln);
        else if (!cJSON_IsString(a) || !cJSON_IsString(b)) st = et_fail(err, ET_ERR_FORMAT, "%s:%ld: fields \"s1\" and \"s2\" must be strings", path, ln);
        else if (!cJSON_IsNumber(sc) || !isfinite(sc->valuedouble)) st = et_fail(err, ET_ERR_FORMAT, "%s:%ld: field \"score\" must be a finite number", path, ln);
        if (st) { cJSON_Delete(j); break; }
        char idb[64];
        const char *key = cJSON_IsString(id) ? id->valuestring : a->valuestring;
        if (cJSON_IsNumber(id)) { snprintf(idb, sizeof idb, "%.17g", id->valuedouble); key = idb; }
        if (split && et_split_is_test(key) != (split == 1)) { cJSON_Delete(j); continue; }
        if (S->n == S->cap) {
            int64_t nc = S->cap ? S->cap * 2 : 1024;
            char **n1 = realloc(S->s1, sizeof(char *) * nc);
            if (n1) S->s1 = n1;
            char **n2 = realloc(S->s2, sizeof(char *) * nc);
            if (n2) S->s2 = n2;
            double *ns = realloc(S->score, sizeof(double) * nc);
            if (ns) S->score = ns;
            if (!n1 || !n2 || !ns) { cJSON_Delete(j); st = et_fail(err, ET_ERR_NOMEM, "%s:%ld: out of memory", path, ln); break; }
            S->cap = nc;
        }
        S->s1[S->n] = strdup(a->valuestring);
        S->s2[S->n] = strdup(b->valuestring);
        S->score[S->n] = sc->valuedouble;
        cJSON_Delete(j);
        if (!S->s1[S->n] || !S->s2[S->n]) { free(S->s1[S->n]); free(S->s2[S->n]); st = et_fail(err, ET_ERR_NOMEM, "%s:%ld: out of memory", path, ln); break; }
        S->n++;
    }
    free(line);
    fclose(f);
    if (!st && S->n < 2) st = et_fail(err, ET_ERR_FORMAT, "%s: need at least 2 STS rows in the split (found %lld)", path, (long long)S->n);
    return st;
}

/* ------------------------------------------------------------------ eval command */

static et_opt eval_opts[] = {
    {"--model", NULL, "DIR", "model folder (not needed with --bm25)", NULL},
    {"--data", NULL, "PATH", "BEIR folder, labelled pairs file (.jsonl/.csv/.tsv), or STS JSONL (s1, s2, score)", NULL},
    {"--k", "-k", "N", "cut-off for nDCG/MAP/MRR/P (default 10); Recall is @10 and @100", NULL},
    {"--json", NULL, "FILE", "also write the results as JSON to FILE (- = stdout; the table then goes to stderr)", NULL},
    {"--split", NULL, "S", "test | train | all (default all): data.md SHA-1 split on query ids / row ids", NULL},
    {"--bm25", NULL, NULL, "evaluate BM25 instead of the model", NULL},
    {"--hybrid", NULL, "M", "fuse BM25 with the model: rrf (k = 60) or weighted (min-max normalised scores)", NULL},
    {"--alpha", NULL, "A", "weighted hybrid: weight of the model, BM25 gets 1 - A (default 0.5)", NULL},
    {"--bm25-k1", NULL, "X", "BM25 k1 (default 0.9)", NULL},
    {"--bm25-b", NULL, "X", "BM25 b (default 0.4)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text (default: the model's max_seq_length or 256)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--skip-bad", NULL, NULL, "skip malformed lines (reported) instead of stopping", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

static void print_table(FILE *f, cJSON *root) {
    cJSON *info = cJSON_GetObjectItem(root, "info"), *m = cJSON_GetObjectItem(root, "metrics");
    cJSON *it;
    fprintf(f, "%s  [%s, %s, split %s, %d queries]\n", cJSON_GetStringValue(cJSON_GetObjectItem(root, "data")),
            cJSON_GetStringValue(cJSON_GetObjectItem(root, "kind")), cJSON_GetStringValue(cJSON_GetObjectItem(root, "mode")),
            cJSON_GetStringValue(cJSON_GetObjectItem(root, "split")), (int)cJSON_GetNumberValue(cJSON_GetObjectItem(info, "nqueries")));
    cJSON_ArrayForEach(it, m) {
        if (cJSON_IsNull(it)) fprintf(f, "  %-16s %10s\n", it->string, "n/a");
        else fprintf(f, "  %-16s %10.4f\n", it->string, it->valuedouble);
    }
}

static int run_eval(et_opt *o, int n) {
    int ok = 1;
    if (!et_cli_need(o, n, "eval", "--data")) return 2;
    int k = (int)et_cli_int(o, n, "--k", 10, 1, 100000, &ok);
    int batch = (int)et_cli_int(o, n, "--batch", 32, 1, 4096, &ok);
    int threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    long max_len = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    double alpha = et_cli_float(o, n, "--alpha", 0.5, 0, 1, &ok);
    double k1 = et_cli_float(o, n, "--bm25-k1", 0.9, 0, 100, &ok), bb = et_cli_float(o, n, "--bm25-b", 0.4, 0, 1, &ok);
    if (!ok) return 2;
    const char *data = et_cli_get(o, n, "--data"), *hyb = et_cli_get(o, n, "--hybrid"), *sp = et_cli_get(o, n, "--split");
    const char *model = et_cli_get(o, n, "--model"), *jout = et_cli_get(o, n, "--json");
    int use_bm25 = et_cli_get(o, n, "--bm25") != NULL, quiet = et_cli_get(o, n, "--quiet") != NULL;
    int split = 0; /* 0 all, 1 test, 2 train */
    if (sp && !strcmp(sp, "test")) split = 1;
    else if (sp && !strcmp(sp, "train")) split = 2;
    else if (sp && strcmp(sp, "all")) { fprintf(stderr, "embedtune eval: --split must be test, train or all (got '%s')\n", sp); return 2; }
    if (hyb && strcmp(hyb, "rrf") && strcmp(hyb, "weighted")) { fprintf(stderr, "embedtune eval: --hybrid must be rrf or weighted (got '%s')\n", hyb); return 2; }
    if (hyb && use_bm25) { fprintf(stderr, "embedtune eval: give --bm25 or --hybrid, not both\n"); return 2; }
    if (!use_bm25 && !model) { fprintf(stderr, "embedtune eval: missing --model DIR (or --bm25 for the BM25 baseline)\n"); return 2; }
    int is_dir = et_dir_exists(data);
    if (!is_dir && !et_file_exists(data)) { fprintf(stderr, "embedtune eval: --data %s: no such file or folder\n", data); return 2; }
    /* sniff STS: the first non-blank line has "s1" and "s2" */
    int is_sts = 0;
    if (!is_dir) {
        FILE *f = fopen(data, "rb");
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while (f && (len = getline(&line, &cap, f)) >= 0) {
            if (len <= 1) continue;
            cJSON *j = cJSON_Parse(line);
            is_sts = j && cJSON_GetObjectItemCaseSensitive(j, "s1") && cJSON_GetObjectItemCaseSensitive(j, "s2");
            cJSON_Delete(j);
            break;
        }
        free(line);
        if (f) fclose(f);
    }
    if (is_sts && (use_bm25 || hyb)) { fprintf(stderr, "embedtune eval: STS data is scored by the model only (no --bm25/--hybrid)\n"); return 2; }

    double t_start = et_now_s();
    et_error err = {0};
    et_cli_model L;
    memset(&L, 0, sizeof L);
    et_pool *pool = NULL;
    int have_model = !use_bm25;
    if (have_model) {
        if (et_cli_load(model, threads, &L, &err)) { et_cli_free(&L); return et_cli_fail("eval", &err); }
        pool = L.pool;
    } else if (!(pool = et_pool_create(threads, &err))) return et_cli_fail("eval", &err);
    int mlen = have_model ? (max_len ? (int)max_len : et_cli_default_max_len(&L)) : 0;

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "data", data);
    cJSON_AddStringToObject(root, "kind", is_dir ? "beir" : is_sts ? "sts" : "pairs");
    cJSON_AddStringToObject(root, "mode", use_bm25 ? "bm25" : !hyb ? "dense" : !strcmp(hyb, "rrf") ? "hybrid-rrf" : "hybrid-weighted");
    if (model && have_model) cJSON_AddStringToObject(root, "model", model); else cJSON_AddNullToObject(root, "model");
    cJSON_AddStringToObject(root, "split", split == 1 ? "test" : split == 2 ? "train" : "all");
    cJSON_AddNumberToObject(root, "k", k);
    if (use_bm25 || hyb) {
        cJSON *bp = cJSON_AddObjectToObject(root, "bm25");
        cJSON_AddNumberToObject(bp, "k1", k1);
        cJSON_AddNumberToObject(bp, "b", bb);
        if (hyb && !strcmp(hyb, "weighted")) cJSON_AddNumberToObject(root, "alpha", alpha);
    }
    cJSON *info = cJSON_AddObjectToObject(root, "info");
    cJSON *metrics = cJSON_AddObjectToObject(root, "metrics");
    cJSON *secs = cJSON_CreateObject();
    int rc = 0;
    et_read_opts ro = {et_cli_get(o, n, "--skip-bad") != NULL, 0};
    et_read_report rep;
    memset(&rep, 0, sizeof rep);
    ir_job J = {0};
    J.L = have_model ? &L : NULL;
    J.pool = pool;
    J.use_bm25 = use_bm25 || hyb;
    J.use_model = have_model;
    J.hybrid_weighted = hyb && !strcmp(hyb, "weighted");
    J.alpha = alpha; J.k1 = k1; J.b = bb; J.k = k; J.batch = batch; J.max_len = mlen; J.quiet = quiet;
    J.metrics = metrics;
    J.info = info;

    if (is_dir) {
        et_beir B;
        if (et_beir_read(data, &ro, &B, &rep, &err)) { rc = et_cli_fail("eval", &err); goto out; }
        /* judged queries of the split, qrels remapped */
        int32_t *sel = malloc(sizeof(int32_t) * (size_t)(B.nqueries ? B.nqueries : 1));
        const char **qs = malloc(sizeof(char *) * (size_t)(B.nqueries ? B.nqueries : 1));
        int64_t *off = malloc(sizeof(int64_t) * ((size_t)B.nqueries + 1));
        et_qrel *qr = malloc(sizeof(et_qrel) * (size_t)(B.nqrels ? B.nqrels : 1));
        if (!sel || !qs || !off || !qr) { fprintf(stderr, "embedtune eval: out of memory\n"); rc = 1; }
        int32_t ns = 0;
        int64_t m = 0;
        for (int32_t q = 0; !rc && q < B.nqueries; q++) {
            if (B.qrel_off[q + 1] == B.qrel_off[q]) continue;
            if (split && et_split_is_test(B.query_id[q]) != (split == 1)) continue;
            off[ns] = m;
            for (int64_t u = B.qrel_off[q]; u < B.qrel_off[q + 1]; u++) { qr[m] = B.qrels[u]; qr[m++].q = ns; }
            qs[ns] = B.query_text[q];
            sel[ns++] = q;
        }
        if (!rc) {
            off[ns] = m;
            cJSON_AddNumberToObject(info, "nqueries", ns);
            cJSON_AddNumberToObject(info, "ndocs", B.ndocs);
            cJSON_AddNumberToObject(info, "nqrels", (double)m);
            if (!ns) { fprintf(stderr, "embedtune eval: %s: no judged query in split '%s'\n", data, sp ? sp : "all"); rc = 1; }
        }
        if (!rc) {
            J.docs = B.doc_text; J.nd = B.ndocs; J.qs = qs; J.nq = ns; J.qrels = qr; J.qoff = off;
            rc = run_ir(&J, &err);
        }
        free(sel); free(qs); free(off); free(qr);
        et_beir_free(&B);
    } else if (is_sts) {
        sts_set S = {0};
        if (sts_read(data, split, &S, &err)) { sts_free(&S); rc = et_cli_fail("eval", &err); goto out; }
        int d = L.model.cfg.hidden_size;
        float *a = malloc(sizeof(float) * (size_t)S.n * d), *b = malloc(sizeof(float) * (size_t)S.n * d);
        double *cs = malloc(sizeof(double) * (size_t)S.n);
        if (!a || !b || !cs) { fprintf(stderr, "embedtune eval: out of memory\n"); rc = 1; }
        prog p1 = {"encode s1", quiet, {0}}, p2 = {"encode s2", quiet, {0}};
        double t0 = et_now_s();
        et_encode_opts e1 = enc_opts(batch, mlen, &p1), e2 = enc_opts(batch, mlen, &p2);
        if (!rc && (et_encode_texts(&L.model, L.tok, pool, (const char *const *)S.s1, (size_t)S.n, &e1, a, &err) ||
                    et_encode_texts(&L.model, L.tok, pool, (const char *const *)S.s2, (size_t)S.n, &e2, b, &err)))
            rc = et_cli_fail("eval", &err);
        J.t_encode = et_now_s() - t0;
        if (!rc) {
            l2norm(a, S.n, d);
            l2norm(b, S.n, d);
            for (int64_t i = 0; i < S.n; i++) cs[i] = et_dot(a + i * d, b + i * d, d);
            cJSON_AddNumberToObject(info, "nqueries", (double)S.n);
            json_num(metrics, "spearman", 100 * et_spearman(cs, S.score, S.n));
            json_num(metrics, "pearson", 100 * et_pearson(cs, S.score, S.n));
            json_num(metrics, "anisotropy", et_mean_random_cosine(b, S.n, d, EVAL_ANISO_PAIRS, EVAL_SEED));
        }
        free(a); free(b); free(cs);
        sts_free(&S);
    } else {
        et_pairs P = {0};
        if (et_pairs_read(data, &ro, &P, &rep, &err)) { et_pairs_free(&P); rc = et_cli_fail("eval", &err); goto out; }
        /* the split: keep rows by id (or query text) - done by compacting the row arrays */
        int64_t w = 0;
        for (int64_t i = 0; i < P.n; i++) {
            const char *key = P.id[i] ? P.id[i] : P.query[i];
            if (split && et_split_is_test(key) != (split == 1)) continue;
            P.query[w] = P.query[i]; P.passage[w] = P.passage[i]; P.id[w] = P.id[i]; P.label[w] = P.label[i];
            w++;
        }
        int64_t nneg_lists = P.neg_off ? P.neg_off[P.n] : 0;
        P.n = w;
        if (P.neg_off) { P.neg_off[0] = 0; for (int64_t i = 1; i <= w; i++) P.neg_off[i] = 0; } /* list negatives: not evaluated */
        (void)nneg_lists;
        et_pair_index ix;
        if (!w) { fprintf(stderr, "embedtune eval: %s: no rows in split '%s'\n", data, sp ? sp : "all"); rc = 1; }
        else if (et_pair_index_build(&P, &ix, &err)) rc = et_cli_fail("eval", &err);
        else {
            cJSON_AddNumberToObject(info, "nrows", (double)w);
            if (P.has_label) {
                if (hyb) { fprintf(stderr, "embedtune eval: --hybrid needs retrieval data (a BEIR folder or a positive-pairs file)\n"); rc = 2; }
                et_expert e;
                memset(&e, 0, sizeof e);
                float *sc = malloc(sizeof(float) * (size_t)w);
                prog pp = {"encode passages", quiet, {0}};
                et_encode_opts eo = enc_opts(batch, mlen, &pp);
                double t0 = et_now_s();
                if (!rc && !sc) { fprintf(stderr, "embedtune eval: out of memory\n"); rc = 1; }
                if (!rc && (use_bm25 ? et_expert_bm25_init(&e, &ix, &(et_bm25_opts){k1, bb, 0}, &err)
                                     : et_expert_dense_init(&e, &ix, "model", &L.model, L.tok, pool, &eo, &err)))
                    rc = et_cli_fail("eval", &err);
                J.t_encode = et_now_s() - t0;
                if (!rc && et_expert_score_rows(&e, &ix, pool, sc, &err)) rc = et_cli_fail("eval", &err);
                if (!rc) {
                    int64_t np = 0;
                    double cs = 0;
                    for (int64_t i = 0; i < w; i++) if (P.label[i] >= 0.5f) { np++; cs += sc[i]; }
                    cJSON_AddNumberToObject(info, "nqueries", ix.nq);
                    cJSON_AddNumberToObject(info, "positives", (double)np);
                    cJSON_AddNumberToObject(info, "negatives", (double)(w - np));
                    json_num(metrics, "auprc", np ? et_auprc(sc, P.label, w) : NAN);
                    if (!use_bm25) {
                        json_num(metrics, "mean_pos_cosine", np ? cs / np : NAN);
                        json_num(metrics, "anisotropy", et_mean_random_cosine(e.pemb, ix.np, e.d, EVAL_ANISO_PAIRS, EVAL_SEED));
                    }
                }
                free(sc);
                et_expert_free(&e);
            } else {
                /* positive pairs: the distinct passages are the corpus, each row a (query, doc) grade-1 judgment */
                et_qrel *qr = malloc(sizeof(et_qrel) * (size_t)(ix.pos_off[ix.nq] ? ix.pos_off[ix.nq] : 1));
                if (!qr) { fprintf(stderr, "embedtune eval: out of memory\n"); rc = 1; }
                for (int32_t q = 0; !rc && q < ix.nq; q++)
                    for (int64_t u = ix.pos_off[q]; u < ix.pos_off[q + 1]; u++) qr[u] = (et_qrel){q, ix.pos[u], 1};
                if (!rc) {
                    cJSON_AddNumberToObject(info, "nqueries", ix.nq);
                    cJSON_AddNumberToObject(info, "ndocs", ix.np);
                    J.docs = ix.ptext; J.nd = ix.np; J.qs = ix.qtext; J.nq = ix.nq; J.qrels = qr; J.qoff = ix.pos_off;
                    rc = run_ir(&J, &err);
                }
                free(qr);
            }
            et_pair_index_free(&ix);
        }
        et_pairs_free(&P);
    }
out:
    if (rep.nbad) {
        fprintf(stderr, "embedtune eval: skipped %lld bad line(s):\n", (long long)rep.nbad);
        for (int i = 0; i < rep.nmsgs; i++) fprintf(stderr, "  %s\n", rep.msgs[i]);
        cJSON_AddNumberToObject(info, "skipped_lines", (double)rep.nbad);
    }
    json_num(secs, "encode", J.t_encode);
    json_num(secs, "search", J.t_search);
    json_num(secs, "total", et_now_s() - t_start);
    cJSON_AddItemToObject(root, "seconds", secs);
    if (!rc) {
        print_table(jout && !strcmp(jout, "-") ? stderr : stdout, root);
        if (jout) rc = write_json_out("eval", jout, root);
    }
    cJSON_Delete(root);
    if (have_model) et_cli_free(&L); else et_pool_destroy(pool);
    return rc;
}

et_command et_cmd_eval = {"eval", "Evaluate a model (or BM25, or a hybrid) on a BEIR folder, a labelled pairs file or STS data.",
     "eval --model DIR --data BEIRDIR|pairs.jsonl|sts.jsonl [--k 10] [--json FILE|-] [--split test|train|all] [--bm25] "
     "[--hybrid rrf|weighted] [--alpha 0.5]",
     run_eval, eval_opts, ET_NOPTS(eval_opts)};

/* ------------------------------------------------------------------ score */

#define MAX_MODELS 16

static et_opt score_opts[] = {
    {"--in", NULL, "FILE", "pairs: .jsonl, .csv or .tsv (query, passage|positive, optional label, optional scores)", NULL},
    {"--out", NULL, "FILE", "output JSONL (written atomically): query, passage, label, id, experts {name: score}", NULL},
    {"--bm25", NULL, NULL, "add the BM25 expert (\"bm25\"), over the distinct passages of the file", NULL},
    {"--bm25-k1", NULL, "X", "BM25 k1 (default 0.9)", NULL},
    {"--bm25-b", NULL, "X", "BM25 b (default 0.4)", NULL},
    {"--model", NULL, "DIR", "a dense expert cos(q, p), named after the folder (repeatable)", NULL},
    {"--negatives", NULL, "N", "add N label-0 rows per positive row (passages of the file)", NULL},
    {"--neg-mode", NULL, "M", "random | hard (hard: best-ranked non-positives by the first expert: bm25 if given, else the first --model)", NULL},
    {"--neg-ratio", NULL, "R", "hard mode: share of hard negatives, the rest random (default 1)", NULL},
    {"--seed", NULL, "S", "seed for negative sampling (default 42)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text (default: the model's max_seq_length or 256)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--skip-bad", NULL, NULL, "skip malformed lines (reported) instead of stopping", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

typedef struct {
    int32_t q, p;
    float label;
    int64_t src; /* input row whose user scores / id it carries, -1 for added negatives */
} out_row;

static int run_score(et_opt *o, int n) {
    int ok = 1;
    if (!et_cli_need(o, n, "score", "--in") || !et_cli_need(o, n, "score", "--out")) return 2;
    int batch = (int)et_cli_int(o, n, "--batch", 32, 1, 4096, &ok);
    int threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    long max_len = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    int nneg = (int)et_cli_int(o, n, "--negatives", 0, 0, 100000, &ok);
    long seed = et_cli_int(o, n, "--seed", 42, 0, LONG_MAX, &ok);
    double k1 = et_cli_float(o, n, "--bm25-k1", 0.9, 0, 100, &ok), bb = et_cli_float(o, n, "--bm25-b", 0.4, 0, 1, &ok);
    double ratio = et_cli_float(o, n, "--neg-ratio", 1.0, 0, 1, &ok);
    if (!ok) return 2;
    const char *mode = et_cli_get(o, n, "--neg-mode");
    if (mode && strcmp(mode, "random") && strcmp(mode, "hard")) { fprintf(stderr, "embedtune score: --neg-mode must be random or hard (got '%s')\n", mode); return 2; }
    int hard = mode && !strcmp(mode, "hard");
    const char *models[MAX_MODELS];
    int nm = et_cli_get_all(o, n, "--model", models, MAX_MODELS);
    int use_bm25 = et_cli_get(o, n, "--bm25") != NULL, quiet = et_cli_get(o, n, "--quiet") != NULL;
    if (!use_bm25 && !nm) { fprintf(stderr, "embedtune score: give at least one expert: --bm25 and/or --model DIR\n"); return 2; }
    if (hard && !nneg) { fprintf(stderr, "embedtune score: --neg-mode hard needs --negatives N\n"); return 2; }

    et_error err = {0};
    et_read_opts ro = {et_cli_get(o, n, "--skip-bad") != NULL, 0};
    et_read_report rep;
    memset(&rep, 0, sizeof rep);
    et_pairs P = {0};
    et_pair_index ix;
    memset(&ix, 0, sizeof ix);
    et_score_table T = {0};
    et_expert ex[MAX_MODELS + 1];
    memset(ex, 0, sizeof ex);
    int nex = 0, rc = 0;
    et_pool *pool = NULL;
    out_row *rows = NULL;
    int32_t *neg = NULL, *oq = NULL, *op = NULL;
    float *col = NULL, *ucol = NULL;
    if (et_pairs_read(et_cli_get(o, n, "--in"), &ro, &P, &rep, &err)) { rc = et_cli_fail("score", &err); goto done; }
    if (rep.nbad) {
        fprintf(stderr, "embedtune score: skipped %lld bad line(s):\n", (long long)rep.nbad);
        for (int i = 0; i < rep.nmsgs; i++) fprintf(stderr, "  %s\n", rep.msgs[i]);
    }
    int64_t nlist = P.neg_off ? P.neg_off[P.n] : 0;
    if (P.K && (nneg || nlist)) {
        fprintf(stderr, "embedtune score: %s: the file has its own expert scores, which the added negative rows would "
                        "lack; score it without --negatives and without \"negatives\" lists\n", et_cli_get(o, n, "--in"));
        rc = 2;
        goto done;
    }
    if (et_pair_index_build(&P, &ix, &err) || et_score_table_from_pairs(&T, &P, &err)) { rc = et_cli_fail("score", &err); goto done; }
    if (!(pool = et_pool_create(threads, &err))) { rc = et_cli_fail("score", &err); goto done; }
    if (use_bm25) {
        et_bm25_opts bo = {k1, bb, 0};
        if (et_expert_bm25_init(&ex[nex], &ix, &bo, &err)) { rc = et_cli_fail("score", &err); goto done; }
        nex++;
    }
    for (int i = 0; i < nm; i++) {
        et_cli_model L;
        if (et_cli_load(models[i], 1, &L, &err)) { et_cli_free(&L); rc = et_cli_fail("score", &err); goto done; }
        char nb[128], name[128];
        basename_of(models[i], nb, sizeof nb);
        snprintf(name, sizeof name, "%s", nb);
        for (int dup = 2;; dup++) { /* two models with the same folder name get _2, _3 */
            int clash = 0;
            for (int j = 0; j < nex; j++) clash |= !strcmp(ex[j].name, name);
            if (!clash) break;
            snprintf(name, sizeof name, "%.100s_%d", nb, dup);
        }
        prog pp = {"encode passages", quiet, {0}};
        et_encode_opts eo = enc_opts(batch, max_len ? (int)max_len : et_cli_default_max_len(&L), &pp);
        et_status s = et_expert_dense_init(&ex[nex], &ix, name, &L.model, L.tok, pool, &eo, &err);
        et_cli_free(&L);
        if (s) { rc = et_cli_fail("score", &err); goto done; }
        nex++;
    }
    /* output rows: each input row, then its "negatives" list entries, then sampled negatives */
    if (nneg) {
        neg = malloc(sizeof(int32_t) * (size_t)(P.n ? P.n : 1) * nneg);
        et_neg_cfg nc = {nneg, hard ? ET_NEG_HARD : ET_NEG_RANDOM, ratio, (uint64_t)seed};
        if (!neg) { fprintf(stderr, "embedtune score: out of memory\n"); rc = 1; goto done; }
        if (et_experts_sample_negatives(&ix, P.label, nex ? &ex[0] : NULL, &nc, pool, neg, &err)) { rc = et_cli_fail("score", &err); goto done; }
    }
    int64_t cap = P.n + nlist + P.n * (int64_t)nneg, nr = 0;
    rows = malloc(sizeof(out_row) * (size_t)(cap ? cap : 1));
    if (!rows) { fprintf(stderr, "embedtune score: out of memory\n"); rc = 1; goto done; }
    for (int64_t r = 0; r < P.n; r++) {
        rows[nr++] = (out_row){ix.row_q[r], ix.row_p[r], P.label[r], r};
        for (int64_t j = nlist ? P.neg_off[r] : 0; nlist && j < P.neg_off[r + 1]; j++) rows[nr++] = (out_row){ix.row_q[r], ix.neg_p[j], 0, -1};
        for (int j = 0; j < nneg; j++)
            if (neg[r * nneg + j] >= 0) rows[nr++] = (out_row){ix.row_q[r], neg[r * nneg + j], 0, -1};
    }
    /* expert columns over the output rows */
    oq = malloc(sizeof(int32_t) * (size_t)(nr ? nr : 1));
    op = malloc(sizeof(int32_t) * (size_t)(nr ? nr : 1));
    col = malloc(sizeof(float) * (size_t)(nr ? nr : 1) * (size_t)(nex ? nex : 1));
    if (!oq || !op || !col) { fprintf(stderr, "embedtune score: out of memory\n"); rc = 1; goto done; }
    for (int64_t i = 0; i < nr; i++) { oq[i] = rows[i].q; op[i] = rows[i].p; }
    for (int e = 0; e < nex; e++)
        if (et_expert_score_qp(&ex[e], &ix, oq, op, nr, col + (int64_t)e * nr, &err)) { rc = et_cli_fail("score", &err); goto done; }
    for (int e = 0; e < nex; e++)
        if (et_score_table_find(&T, ex[e].name) >= 0)
            fprintf(stderr, "embedtune score: note: expert '%s' replaces the file's column of the same name\n", ex[e].name);
    /* write */
    et_atomic_file af;
    if (et_atomic_open(&af, et_cli_get(o, n, "--out"), &err)) { rc = et_cli_fail("score", &err); goto done; }
    for (int64_t i = 0; i < nr && !rc; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "query", ix.qtext[rows[i].q]);
        cJSON_AddStringToObject(j, "passage", ix.ptext[rows[i].p]);
        cJSON_AddNumberToObject(j, "label", r7(rows[i].label));
        if (rows[i].src >= 0 && P.id[rows[i].src]) cJSON_AddStringToObject(j, "id", P.id[rows[i].src]);
        cJSON *ej = cJSON_AddObjectToObject(j, "experts");
        for (int k = 0; k < T.K && rows[i].src >= 0; k++) {
            int replaced = 0;
            for (int e = 0; e < nex; e++) replaced |= !strcmp(ex[e].name, T.names[k]);
            if (!replaced) cJSON_AddNumberToObject(ej, T.names[k], r7(T.scores[rows[i].src * T.K + k]));
        }
        for (int e = 0; e < nex; e++) cJSON_AddNumberToObject(ej, ex[e].name, r7(col[(int64_t)e * nr + i]));
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!s) { fprintf(stderr, "embedtune score: out of memory\n"); rc = 1; break; }
        size_t l = strlen(s);
        s[l] = '\n';
        if (et_atomic_write(&af, s, l + 1, &err)) rc = et_cli_fail("score", &err);
        free(s);
    }
    if (rc) et_atomic_abort(&af);
    else if (et_atomic_commit(&af, &err)) rc = et_cli_fail("score", &err);
    if (!rc && !quiet)
        fprintf(stderr, "embedtune score: %lld rows (%lld input, %lld negatives added), %d expert(s) -> %s\n", (long long)nr,
                (long long)P.n, (long long)(nr - P.n), nex, et_cli_get(o, n, "--out"));
done:
    for (int e = 0; e < nex; e++) et_expert_free(&ex[e]);
    free(rows); free(neg); free(oq); free(op); free(col); free(ucol);
    et_score_table_free(&T);
    et_pair_index_free(&ix);
    et_pairs_free(&P);
    et_pool_destroy(pool);
    return rc;
}

et_command et_cmd_score = {"score", "Add expert scores (BM25, models) to (query, passage) pairs, optionally with sampled negatives.",
     "score --in pairs.jsonl|csv|tsv --out FILE.jsonl [--bm25] [--model DIR ...] [--negatives N --neg-mode random|hard]",
     run_score, score_opts, ET_NOPTS(score_opts)};

/* ------------------------------------------------------------------ mine */

static et_opt mine_opts[] = {
    {"--model", NULL, "DIR", "the model that ranks (the current checkpoint for ANCE)", NULL},
    {"--in", NULL, "FILE", "pairs (.jsonl/.csv/.tsv): queries and their positives (label >= 0.5)", NULL},
    {"--out", NULL, "FILE", "training records JSONL: query, positive, negatives, negative_queries", NULL},
    {"--corpus", NULL, "FILE", "also mine from this BEIR corpus.jsonl (default: the file's distinct passages only)", NULL},
    {"--range", NULL, "A:B", "rank window [A, B) of the retrieval list, positives counted (default 2:200)", NULL},
    {"--negatives", NULL, "N", "negatives per query (default 15)", NULL},
    {"--fn-margin", NULL, "M", "drop candidates scoring above M x the query's weakest positive (default 0 = off; e.g. 0.95)", NULL},
    {"--sample", NULL, NULL, "sample the negatives uniformly from the window (default: the best-ranked ones)", NULL},
    {"--seed", NULL, "S", "seed for --sample (default 42)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text (default: the model's max_seq_length or 256)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int run_mine(et_opt *o, int n) {
    int ok = 1;
    if (!et_cli_need(o, n, "mine", "--model") || !et_cli_need(o, n, "mine", "--in") || !et_cli_need(o, n, "mine", "--out")) return 2;
    int batch = (int)et_cli_int(o, n, "--batch", 32, 1, 4096, &ok);
    int threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    long max_len = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    int nneg = (int)et_cli_int(o, n, "--negatives", 15, 1, 100000, &ok);
    long seed = et_cli_int(o, n, "--seed", 42, 0, LONG_MAX, &ok);
    double margin = et_cli_float(o, n, "--fn-margin", 0, 0, 100, &ok);
    if (!ok) return 2;
    int lo = 2, hi = 200;
    const char *rg = et_cli_get(o, n, "--range");
    if (rg && (sscanf(rg, "%d:%d", &lo, &hi) != 2 || lo < 0 || hi <= lo)) {
        fprintf(stderr, "embedtune mine: --range must be A:B with 0 <= A < B (got '%s')\n", rg);
        return 2;
    }
    int quiet = et_cli_get(o, n, "--quiet") != NULL, rc = 0;
    et_error err = {0};
    et_pairs P = {0};
    et_pair_index ix;
    memset(&ix, 0, sizeof ix);
    et_cli_model L;
    memset(&L, 0, sizeof L);
    et_strvec cids = {0}, ctexts = {0};
    const char **docs = NULL;
    float *Q = NULL, *D = NULL, *nsc = NULL;
    int32_t *neg = NULL, *negq = NULL;
    uint64_t *hset = NULL;
    if (et_pairs_read(et_cli_get(o, n, "--in"), NULL, &P, NULL, &err) || et_pair_index_build(&P, &ix, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    if (et_cli_get(o, n, "--corpus") && et_cli_read_corpus(et_cli_get(o, n, "--corpus"), &cids, &ctexts, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    if (et_cli_load(et_cli_get(o, n, "--model"), threads, &L, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    /* corpus = the distinct passages, then the --corpus docs whose text is not one of them */
    int64_t nd = ix.np, hcap = 16;
    while (hcap < 2 * (int64_t)ix.np) hcap <<= 1;
    docs = malloc(sizeof(char *) * (size_t)(ix.np + ctexts.n + 1));
    hset = calloc((size_t)hcap, sizeof(uint64_t)); /* hashes of the passages (0 = empty slot) */
    if (!docs || !hset) { fprintf(stderr, "embedtune mine: out of memory\n"); rc = 1; goto done; }
    for (int32_t p = 0; p < ix.np; p++) {
        docs[p] = ix.ptext[p];
        uint64_t h = fnv(ix.ptext[p]) | 1, u = h & (hcap - 1);
        while (hset[u] && hset[u] != h) u = (u + 1) & (hcap - 1);
        hset[u] = h;
    }
    int64_t ndup = 0;
    for (size_t i = 0; i < ctexts.n; i++) {
        uint64_t h = fnv(ctexts.v[i]) | 1, u = h & (hcap - 1);
        int dup = 0;
        while (hset[u] && !dup) {
            if (hset[u] == h) /* hash hit: confirm by text */
                for (int32_t p = 0; p < ix.np && !dup; p++) dup = !strcmp(ix.ptext[p], ctexts.v[i]);
            u = (u + 1) & (hcap - 1);
        }
        if (dup) ndup++; else docs[nd++] = ctexts.v[i];
    }
    int d = L.model.cfg.hidden_size;
    Q = malloc(sizeof(float) * (size_t)(ix.nq ? ix.nq : 1) * d);
    D = malloc(sizeof(float) * (size_t)(nd ? nd : 1) * d);
    neg = malloc(sizeof(int32_t) * (size_t)(ix.nq ? ix.nq : 1) * nneg);
    negq = malloc(sizeof(int32_t) * (size_t)(ix.nq ? ix.nq : 1) * nneg);
    nsc = malloc(sizeof(float) * (size_t)(ix.nq ? ix.nq : 1) * nneg);
    if (!Q || !D || !neg || !negq || !nsc) { fprintf(stderr, "embedtune mine: out of memory\n"); rc = 1; goto done; }
    prog pc = {"encode corpus", quiet, {0}};
    et_encode_opts eo = enc_opts(batch, max_len ? (int)max_len : et_cli_default_max_len(&L), &pc);
    if (et_encode_texts(&L.model, L.tok, L.pool, docs, (size_t)nd, &eo, D, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    eo.progress = NULL;
    if (et_encode_texts(&L.model, L.tok, L.pool, ix.qtext, (size_t)ix.nq, &eo, Q, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    l2norm(D, nd, d);
    l2norm(Q, ix.nq, d);
    et_mine_cfg mc = {lo, hi, nneg, (float)margin, et_cli_get(o, n, "--sample") != NULL, (uint64_t)seed, 0, 0};
    et_mine_stats st;
    double t0 = et_now_s();
    if (et_mine_negatives(&mc, L.pool, Q, D, ix.nq, nd, d, ix.pos_off, ix.pos, neg, nsc, negq, &st, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    double tm = et_now_s() - t0;
    /* one record per (query, positive) */
    et_atomic_file af;
    int64_t nrec = 0;
    if (et_atomic_open(&af, et_cli_get(o, n, "--out"), &err)) { rc = et_cli_fail("mine", &err); goto done; }
    for (int32_t q = 0; q < ix.nq && !rc; q++)
        for (int64_t u = ix.pos_off[q]; u < ix.pos_off[q + 1] && !rc; u++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "query", ix.qtext[q]);
            cJSON_AddStringToObject(j, "positive", ix.ptext[ix.pos[u]]);
            cJSON *na = cJSON_AddArrayToObject(j, "negatives"), *qa = cJSON_AddArrayToObject(j, "negative_queries");
            for (int k = 0; k < nneg; k++) {
                int32_t doc = neg[(int64_t)q * nneg + k], oq = negq[(int64_t)q * nneg + k];
                if (doc < 0) continue;
                cJSON_AddItemToArray(na, cJSON_CreateString(docs[doc]));
                cJSON_AddItemToArray(qa, oq >= 0 ? cJSON_CreateString(ix.qtext[oq]) : cJSON_CreateNull());
            }
            char *s = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            if (!s) { fprintf(stderr, "embedtune mine: out of memory\n"); rc = 1; break; }
            size_t l = strlen(s);
            s[l] = '\n';
            if (et_atomic_write(&af, s, l + 1, &err)) rc = et_cli_fail("mine", &err);
            free(s);
            nrec++;
        }
    if (rc) et_atomic_abort(&af);
    else if (et_atomic_commit(&af, &err)) rc = et_cli_fail("mine", &err);
    if (!rc && !quiet)
        fprintf(stderr, "embedtune mine: %d queries x %lld docs (%lld duplicates of passages skipped), ranks [%d, %d): "
                        "%lld negatives (%lld with an own query), %lld false-negative suspects dropped, %d queries short; "
                        "search %.2f s; %lld records -> %s\n",
                ix.nq, (long long)nd, (long long)ndup, lo, hi, (long long)st.n_found, (long long)st.n_with_query,
                (long long)st.n_fn_dropped, st.n_short, tm, (long long)nrec, et_cli_get(o, n, "--out"));
done:
    free(docs); free(hset); free(Q); free(D); free(neg); free(negq); free(nsc);
    et_sv_free(&cids); et_sv_free(&ctexts);
    et_cli_free(&L);
    et_pair_index_free(&ix);
    et_pairs_free(&P);
    return rc;
}

et_command et_cmd_mine = {"mine", "ANCE hard negatives: rank a corpus with the model, keep a rank window minus positives.",
     "mine --model DIR --in pairs.jsonl --out train.jsonl [--corpus corpus.jsonl] [--range 2:200] [--negatives 15] "
     "[--fn-margin 0.95] [--sample]",
     run_mine, mine_opts, ET_NOPTS(mine_opts)};
