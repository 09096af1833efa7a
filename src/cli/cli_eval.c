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
 * --split test|train uses the held-out split of docs/data-formats.md (et_split_keep, data.h): the query id
 * (BEIR), the row "id" (pairs and STS), else the query text / s1.
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
#include "evaluate.h"
#include "experts.h"
#include "fileio.h"
#include "fusion.h"
#include "index.h"
#include "kernels.h"
#include "metrics.h"
#include "mine.h"
#include "rng.h"

/* ------------------------------------------------------------------ shared helpers */

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
    et_encode_progress ps;
} prog;

static et_encode_opts enc_opts(int batch, int max_len, prog *p) {
    p->ps = (et_encode_progress){et_now_s(), p->what, 0};
    et_encode_opts eo = {batch, max_len, p->quiet ? NULL : et_encode_progress_print, &p->ps};
    return eo;
}

/* ------------------------------------------------------------------ eval: retrieval */

/* the evaluation itself is evaluate.h's (the one protocol); this only names and prints the numbers */
typedef struct {
    et_hf_model *L;      /* NULL without a model (--mode bm25) */
    et_pool *pool;
    et_ir_eval_opts eo;   /* eo.mode: the mode reported as "metrics" */
    et_bm25_opts bm25;
    et_fusion fusion;
    int batch, max_len, quiet, dim;
    cJSON *metrics, *by_mode, *info;
    double t_encode, t_search;
} ir_job;

static void ir_metrics(cJSON *o, const et_ir_eval *r, int model) {
    char key[32];
    snprintf(key, sizeof key, "ndcg@%d", r->k); json_num(o, key, r->ndcg_k);
    snprintf(key, sizeof key, "map@%d", r->k); json_num(o, key, r->map_k);
    snprintf(key, sizeof key, "mrr@%d", r->k); json_num(o, key, r->mrr_k);
    snprintf(key, sizeof key, "p@%d", r->k); json_num(o, key, r->p_k);
    json_num(o, "recall@10", r->recall10);
    json_num(o, "recall@100", r->recall100);
    json_num(o, "auprc", r->auprc);
    if (model) {
        json_num(o, "anisotropy", r->anisotropy);
        json_num(o, "mean_pos_cosine", r->mean_pos_cosine);
    }
}

static const char *mode_name(et_eval_mode m) { return m == ET_EVAL_BM25 ? "bm25" : m == ET_EVAL_HYBRID ? "hybrid" : "dense"; }

static void ir_report(ir_job *J, const et_eval_mode *modes, int nm, const et_ir_eval *r);

static int run_ir(ir_job *J, const char *const *docs, int32_t nd, const char *const *qs, int32_t nq,
                  const et_qrel *qrels, const int64_t *qoff, et_error *err) {
    prog pc = {"encode corpus", J->quiet, {0}}, pq = {"encode queries", J->quiet, {0}};
    et_encode_opts ec = {0}, eq = {0};
    if (J->L) {
        ec = enc_opts(J->batch, J->max_len, &pc);
        eq = enc_opts(J->batch, J->max_len, &pq);
        if (nq < 1000) eq.progress = NULL; /* a progress line for big query sets only */
        ec.dim = eq.dim = J->dim;
    }
    J->eo.bm25 = &J->bm25;
    J->eo.fusion = &J->fusion;
    J->eo.eo_queries = J->L ? &eq : NULL;
    /* with a model: dense, BM25 and hybrid side by side (one encoding); without: BM25 */
    et_eval_mode modes[3] = {ET_EVAL_DENSE, ET_EVAL_BM25, ET_EVAL_HYBRID};
    int nm = J->L ? 3 : 1;
    if (!J->L) modes[0] = ET_EVAL_BM25;
    et_ir_eval r[3];
    if (et_eval_ir_modes(J->L ? &J->L->model : NULL, J->L ? J->L->tok : NULL, J->pool, J->L ? &ec : NULL, &J->eo, modes, nm,
                         docs, nd, qs, nq, qrels, qoff, r, err))
        return et_cli_fail("eval", err);
    ir_report(J, modes, nm, r);
    return 0;
}

/* the numbers of run_ir / run_ir_index into J's JSON */
static void ir_report(ir_job *J, const et_eval_mode *modes, int nm, const et_ir_eval *r) {
    int sel = 0;
    for (int i = 0; i < nm; i++) if (modes[i] == J->eo.mode) sel = i;
    J->t_encode = r[0].seconds_encode;
    J->t_search = r[sel].seconds_search;
    ir_metrics(J->metrics, &r[sel], modes[sel] != ET_EVAL_BM25);
    for (int i = 0; i < nm && J->by_mode; i++) ir_metrics(cJSON_AddObjectToObject(J->by_mode, mode_name(modes[i])), &r[i], modes[i] != ET_EVAL_BM25);
    cJSON *ap = cJSON_AddObjectToObject(J->info, "auprc_pairs");
    cJSON_AddNumberToObject(ap, "positives", (double)r[sel].auprc_pos);
    cJSON_AddNumberToObject(ap, "negatives", (double)r[sel].auprc_neg);
    cJSON_AddStringToObject(ap, "negatives_from", "non-relevant docs of the evaluated top 100, as many as positives per query, seeded");
    cJSON_AddStringToObject(ap, "scored_by", modes[sel] != ET_EVAL_BM25 ? "model cosine" : "bm25");
}

static int cmp_qrel_doc(const void *a, const void *b) {
    const et_qrel *x = a, *y = b;
    return (x->d > y->d) - (x->d < y->d);
}

/* eval --index: the corpus's embeddings and BM25 come from an index file (index.h) of --data's corpus (its doc ids must
 * be the corpus's; the judgments are renumbered to the index's rows); the queries are encoded as without it. */
static int run_ir_index(ir_job *J, const char *path, const et_beir *B, et_beir_split *S, cJSON *root, et_error *err) {
    et_index X;
    memset(&X, 0, sizeof X);
    int32_t *pos = NULL;
    int rc = 0;
    if (et_index_read(path, &X, err)) return et_cli_fail("eval", err);
    if (X.nd != B->ndocs) {
        fprintf(stderr, "embedtune eval: --index %s holds %d docs, the corpus of --data %d: build the index from this corpus "
                        "(embedtune index --corpus .../corpus.jsonl)\n", path, X.nd, B->ndocs);
        rc = 2;
        goto done;
    }
    pos = malloc(sizeof(int32_t) * (size_t)(X.nd ? X.nd : 1));
    if (!pos) { fprintf(stderr, "embedtune eval: out of memory\n"); rc = 1; goto done; }
    memset(pos, 0xff, sizeof(int32_t) * (size_t)(X.nd ? X.nd : 1));
    for (int32_t i = 0; i < X.nd; i++) {
        int32_t j = et_beir_doc_index(B, X.id[i]);
        if (j < 0 || pos[j] >= 0) {
            fprintf(stderr, "embedtune eval: --index %s: doc id '%s' %s: build the index from this corpus\n", path, X.id[i],
                    j < 0 ? "is not in the corpus of --data" : "is there twice");
            rc = 2;
            goto done;
        }
        pos[j] = i;
    }
    for (int64_t u = 0; u < S->qoff[S->nq]; u++) S->qrels[u].d = pos[S->qrels[u].d];
    for (int32_t q = 0; q < S->nq; q++)
        qsort(S->qrels + S->qoff[q], (size_t)(S->qoff[q + 1] - S->qoff[q]), sizeof(et_qrel), cmp_qrel_doc);
    if (et_index_attach(&X, J->L ? &J->L->model : NULL, J->L ? J->L->tok : NULL, J->pool, NULL, err)) { rc = et_cli_fail("eval", err); goto done; }
    prog pq = {"encode queries", J->quiet, {0}};
    et_encode_opts eq = {0};
    if (J->L) {
        eq = enc_opts(J->batch, J->max_len, &pq);
        if (S->nq < 1000) eq.progress = NULL;
    }
    J->eo.eo_queries = J->L ? &eq : NULL;
    J->eo.fusion = &J->fusion;
    et_eval_mode modes[3] = {ET_EVAL_DENSE, ET_EVAL_BM25, ET_EVAL_HYBRID};
    int nm = J->L ? 3 : 1;
    if (!J->L) modes[0] = ET_EVAL_BM25;
    et_ir_eval r[3];
    if (et_eval_ir_modes_ix(&X.ix, J->pool, &J->eo, modes, nm, S->qs, S->nq, S->qrels, S->qoff, r, err)) { rc = et_cli_fail("eval", err); goto done; }
    ir_report(J, modes, nm, r);
    cJSON *ij = cJSON_AddObjectToObject(root, "index");
    cJSON_AddStringToObject(ij, "path", path);
    cJSON_AddStringToObject(ij, "dtype", et_index_dtype_name(X.dtype));
    cJSON_AddNumberToObject(ij, "max_len", X.max_len);
    /* BM25 is the index's (k1 and b as it was built with) */
    cJSON_DeleteItemFromObject(root, "bm25");
done:
    free(pos);
    et_index_free(&X);
    return rc;
}

/* ------------------------------------------------------------------ eval command */

static et_opt eval_opts[] = {
    {"--model", NULL, "DIR", "model folder (not needed with --bm25), or a PEFT LoRA adapter folder (its base merged with it)", NULL},
    {"--adapter", NULL, "DIR", "a PEFT LoRA adapter folder merged into --model", NULL},
    {"--data", NULL, "PATH", "BEIR folder, labelled pairs file (.jsonl/.csv/.tsv), or STS JSONL (s1, s2, score)", NULL},
    {"--index", NULL, "FILE", "a BEIR folder's corpus from an index file (embedtune index --corpus DATA/corpus.jsonl): its "
                              "embeddings and BM25 instead of encoding the corpus; only the queries are encoded", NULL},
    {"--k", "-k", "N", "cut-off for nDCG/MAP/MRR/P (default 10); Recall is @10 and @100", NULL},
    {"--json", NULL, "FILE", "also write the results as JSON to FILE (- = stdout; the table then goes to stderr)", NULL},
    {"--split", NULL, "S", "test | train | all (default all): the SHA-1 held-out split on the query id / row id / query text (docs/data-formats.md)", NULL},
    {"--mode", NULL, "M", "dense | bm25 | hybrid: the ranking reported as \"metrics\" (default: the model folder's "
                          "retrieval.json, else dense); with a model the table shows all three side by side", NULL},
    {"--bm25", NULL, NULL, "evaluate BM25 alone, no model needed (= --mode bm25)", NULL},
    {"--fusion", NULL, "SPEC", "hybrid rule instead of the saved one, e.g. convex:alpha=0.3, convex:norm=zscore,alpha=0.4, "
                               "rrf:k=60,alpha=0.5, rerank:top_n=50,alpha=0.5 (default: retrieval.json, else convex:alpha=0.2)", NULL},
    {"--bm25-k1", NULL, "X", "BM25 k1 (default: retrieval.json, else 0.9)", NULL},
    {"--bm25-b", NULL, "X", "BM25 b (default: retrieval.json, else 0.4)", NULL},
    {"--dim", NULL, "D[,D...]", "embeddings cut to their first D values and re-normalised (Matryoshka); a list evaluates "
                                "at each size in turn (JSON: by_dim) (default: all values)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text (default: the model's max_seq_length or 256)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--int8", NULL, NULL, "int8 inference: Linear layers with per-channel int8 weights and per-row int8 activations (VNNI where the CPU has it); an int8 export (embedtune quantize) runs in int8 without it", NULL},
    {"--skip-bad", NULL, NULL, "skip malformed lines (reported) instead of stopping", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

static void print_table(FILE *f, cJSON *root) {
    cJSON *info = cJSON_GetObjectItem(root, "info"), *m = cJSON_GetObjectItem(root, "metrics");
    cJSON *it;
    cJSON *dj = cJSON_GetObjectItem(root, "dim");
    char dtxt[32] = "";
    if (dj && cJSON_IsNumber(dj)) snprintf(dtxt, sizeof dtxt, ", dim %d", (int)dj->valuedouble);
    fprintf(f, "%s  [%s, %s, split %s, %d queries%s]\n", cJSON_GetStringValue(cJSON_GetObjectItem(root, "data")),
            cJSON_GetStringValue(cJSON_GetObjectItem(root, "kind")), cJSON_GetStringValue(cJSON_GetObjectItem(root, "mode")),
            cJSON_GetStringValue(cJSON_GetObjectItem(root, "split")), (int)cJSON_GetNumberValue(cJSON_GetObjectItem(info, "nqueries")), dtxt);
    cJSON *bm = cJSON_GetObjectItem(root, "by_mode");
    if (bm && cJSON_GetArraySize(bm) > 1) { /* dense, bm25, hybrid side by side */
        cJSON *mo;
        fprintf(f, "  %-16s", "");
        cJSON_ArrayForEach(mo, bm) fprintf(f, " %10s", mo->string);
        fputc('\n', f);
        cJSON_ArrayForEach(it, cJSON_GetArrayItem(bm, 0)) {
            fprintf(f, "  %-16s", it->string);
            cJSON_ArrayForEach(mo, bm) {
                cJSON *v = cJSON_GetObjectItem(mo, it->string);
                if (!v || cJSON_IsNull(v)) fprintf(f, " %10s", "-"); else fprintf(f, " %10.4f", v->valuedouble);
            }
            fputc('\n', f);
        }
        if (cJSON_GetObjectItem(root, "fusion")) fprintf(f, "  hybrid: %s\n", cJSON_GetStringValue(cJSON_GetObjectItem(root, "fusion")));
        return;
    }
    cJSON_ArrayForEach(it, m) {
        if (cJSON_IsNull(it)) fprintf(f, "  %-16s %10s\n", it->string, "n/a");
        else fprintf(f, "  %-16s %10.4f\n", it->string, it->valuedouble);
    }
}

/* one evaluation at embedding size dim (0 = all values); collect == NULL: print the table and write --json;
 * else print the table and add the result object to collect (keyed by the size) */
static int eval_one(et_opt *o, int n, int dim, cJSON *collect) {
    int ok = 1;
    if (!et_cli_need(o, n, "eval", "--data")) return 2;
    int k = (int)et_cli_int(o, n, "--k", 10, 1, 100000, &ok);
    int batch = (int)et_cli_int(o, n, "--batch", 32, 1, 4096, &ok);
    int threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    long max_len = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    double k1 = et_cli_float(o, n, "--bm25-k1", 0.9, 0, 100, &ok), bb = et_cli_float(o, n, "--bm25-b", 0.4, 0, 1, &ok);
    if (!ok) return 2;
    const char *data = et_cli_get(o, n, "--data"), *sp = et_cli_get(o, n, "--split"), *ms = et_cli_get(o, n, "--mode");
    const char *model = et_cli_get(o, n, "--model"), *jout = et_cli_get(o, n, "--json"), *fspec = et_cli_get(o, n, "--fusion");
    int bm25_flag = et_cli_get(o, n, "--bm25") != NULL, quiet = et_cli_get(o, n, "--quiet") != NULL;
    et_split split = ET_SPLIT_ALL;
    if (sp && !strcmp(sp, "test")) split = ET_SPLIT_TEST;
    else if (sp && !strcmp(sp, "train")) split = ET_SPLIT_TRAIN;
    else if (sp && strcmp(sp, "all")) { fprintf(stderr, "embedtune eval: --split must be test, train or all (got '%s')\n", sp); return 2; }
    et_error err = {0};
    et_retrieval_mode mode = ET_MODE_DENSE;
    if (ms && et_retrieval_mode_parse(ms, &mode, &err)) { fprintf(stderr, "embedtune eval: --mode: %s\n", err.msg); return 2; }
    if (bm25_flag && ms && mode != ET_MODE_BM25) { fprintf(stderr, "embedtune eval: --bm25 means --mode bm25 (got --mode %s)\n", ms); return 2; }
    et_fusion fusion = et_fusion_default();
    if (fspec && et_fusion_parse(fspec, &fusion, &err)) { fprintf(stderr, "embedtune eval: --fusion: %s\n", err.msg); return 2; }
    if (bm25_flag) mode = ET_MODE_BM25;
    int have_model = model && !bm25_flag;
    if (!have_model && !bm25_flag && !(ms && mode == ET_MODE_BM25)) { fprintf(stderr, "embedtune eval: missing --model DIR (or --bm25 for the BM25 baseline)\n"); return 2; }
    int is_dir = et_dir_exists(data);
    if (!is_dir && !et_file_exists(data)) { fprintf(stderr, "embedtune eval: --data %s: no such file or folder\n", data); return 2; }
    int is_sts = !is_dir && et_sts_sniff(data);
    if (is_sts && (bm25_flag || (ms && mode != ET_MODE_DENSE) || fspec)) { fprintf(stderr, "embedtune eval: STS data is scored by the model only (no --bm25/--mode/--fusion)\n"); return 2; }
    const char *ixpath = et_cli_get(o, n, "--index");
    if (ixpath && !is_dir) { fprintf(stderr, "embedtune eval: --index needs --data to be a BEIR folder (its queries and qrels; the index holds its corpus)\n"); return 2; }
    if (ixpath && (dim || et_cli_get(o, n, "--bm25-k1") || et_cli_get(o, n, "--bm25-b"))) {
        fprintf(stderr, "embedtune eval: --index holds the full embeddings and its own BM25 (no --dim, --bm25-k1 or --bm25-b with it)\n");
        return 2;
    }

    double t_start = et_now_s();
    et_hf_model L;
    memset(&L, 0, sizeof L);
    et_pool *pool = NULL;
    et_retrieval_cfg rcfg;
    et_retrieval_cfg_default(&rcfg);
    int have_rcfg = 0;
    if (have_model) {
        if (et_cli_load_adapted(model, et_cli_get(o, n, "--adapter"), threads, &L, &err) || et_retrieval_load(model, &rcfg, &have_rcfg, &err)) { et_hf_model_free(&L); return et_cli_fail("eval", &err); }
        if (et_cli_get(o, n, "--int8")) L.model.int8 = 1;
        pool = L.pool;
    } else if (!(pool = et_pool_create(threads, &err))) return et_cli_fail("eval", &err);
    /* the saved retrieval settings are the defaults; options override them */
    if (!ms && !bm25_flag) mode = fspec ? ET_MODE_HYBRID : is_sts ? ET_MODE_DENSE : rcfg.mode;
    if (!fspec) fusion = rcfg.fusion;
    if (!et_cli_get(o, n, "--bm25-k1")) k1 = rcfg.bm25.k1;
    if (!et_cli_get(o, n, "--bm25-b")) bb = rcfg.bm25.b;
    int mlen = have_model ? (max_len ? (int)max_len : et_hf_model_max_len(&L)) : 0;

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "data", data);
    cJSON_AddStringToObject(root, "kind", is_dir ? "beir" : is_sts ? "sts" : "pairs");
    cJSON_AddStringToObject(root, "mode", et_retrieval_mode_name(mode));
    if (model && have_model) cJSON_AddStringToObject(root, "model", model); else cJSON_AddNullToObject(root, "model");
    cJSON_AddStringToObject(root, "split", split == ET_SPLIT_TEST ? "test" : split == ET_SPLIT_TRAIN ? "train" : "all");
    cJSON_AddNumberToObject(root, "k", k);
    if (dim) cJSON_AddNumberToObject(root, "dim", dim);
    char fdesc[128];
    if (!is_sts) {
        cJSON *bp = cJSON_AddObjectToObject(root, "bm25");
        cJSON_AddNumberToObject(bp, "k1", k1);
        cJSON_AddNumberToObject(bp, "b", bb);
        if (have_model) {
            cJSON_AddStringToObject(root, "fusion", et_fusion_describe(&fusion, fdesc, sizeof fdesc));
            cJSON_AddStringToObject(root, "fusion_from", fspec ? "--fusion" : have_rcfg ? "retrieval.json" : "default");
        }
    }
    cJSON *info = cJSON_AddObjectToObject(root, "info");
    cJSON *metrics = cJSON_AddObjectToObject(root, "metrics");
    cJSON *by_mode = have_model && !is_sts ? cJSON_AddObjectToObject(root, "by_mode") : NULL;
    cJSON *secs = cJSON_CreateObject();
    int rc = 0;
    et_read_opts ro = {et_cli_get(o, n, "--skip-bad") != NULL, 0};
    et_read_report rep;
    memset(&rep, 0, sizeof rep);
    ir_job J = {0};
    J.L = have_model ? &L : NULL;
    J.pool = pool;
    J.eo.mode = mode == ET_MODE_BM25 ? ET_EVAL_BM25 : mode == ET_MODE_HYBRID ? ET_EVAL_HYBRID : ET_EVAL_DENSE;
    J.eo.k = k;
    J.bm25 = (et_bm25_opts){k1, bb, rcfg.bm25.query_tf};
    J.fusion = fusion;
    J.batch = batch; J.max_len = mlen; J.quiet = quiet; J.dim = dim;
    J.metrics = metrics;
    J.by_mode = by_mode;
    J.info = info;
    int use_bm25 = mode == ET_MODE_BM25;

    if (is_dir) {
        et_beir B;
        if (et_beir_read(data, &ro, &B, &rep, &err)) { rc = et_cli_fail("eval", &err); goto out; }
        et_beir_split S;
        if (et_beir_split_make(&B, split, &S, &err)) rc = et_cli_fail("eval", &err);
        if (!rc) {
            cJSON_AddNumberToObject(info, "nqueries", S.nq);
            cJSON_AddNumberToObject(info, "ndocs", B.ndocs);
            cJSON_AddNumberToObject(info, "nqrels", (double)S.qoff[S.nq]);
            if (!S.nq) { fprintf(stderr, "embedtune eval: %s: no judged query in split '%s'\n", data, sp ? sp : "all"); rc = 1; }
        }
        if (!rc) rc = ixpath ? run_ir_index(&J, ixpath, &B, &S, root, &err) : run_ir(&J, B.doc_text, B.ndocs, S.qs, S.nq, S.qrels, S.qoff, &err);
        et_beir_split_free(&S);
        et_beir_free(&B);
    } else if (is_sts) {
        et_sts S = {0};
        if (et_sts_read(data, &ro, &S, &rep, &err)) { rc = et_cli_fail("eval", &err); goto out; }
        /* the split, by compacting the rows */
        int64_t w = 0;
        for (int64_t i = 0; i < S.n; i++) {
            if (!et_split_keep(split, S.id[i], S.s1[i])) continue;
            S.s1[w] = S.s1[i]; S.s2[w] = S.s2[i]; S.id[w] = S.id[i]; S.score[w++] = S.score[i];
        }
        S.n = w;
        float *lab = malloc(sizeof(float) * (size_t)(w ? w : 1));
        prog p1 = {"encode pairs", quiet, {0}};
        et_encode_opts e1 = enc_opts(batch, mlen, &p1);
        e1.dim = dim;
        et_pair_eval pe;
        if (w < 2) { fprintf(stderr, "embedtune eval: %s: need at least 2 STS rows in split '%s' (found %lld)\n", data, sp ? sp : "all", (long long)w); rc = 1; }
        else if (!lab) { fprintf(stderr, "embedtune eval: out of memory\n"); rc = 1; }
        else {
            for (int64_t i = 0; i < w; i++) lab[i] = (float)S.score[i];
            double t0 = et_now_s();
            if (et_eval_pairs_dense(&L.model, L.tok, pool, &e1, S.s1, S.s2, lab, w, &pe, &err)) rc = et_cli_fail("eval", &err);
            J.t_encode = et_now_s() - t0;
        }
        if (!rc) {
            cJSON_AddNumberToObject(info, "nqueries", (double)w);
            json_num(metrics, "spearman", pe.spearman);
            json_num(metrics, "pearson", pe.pearson);
            json_num(metrics, "anisotropy", pe.anisotropy);
        }
        free(lab);
        et_sts_free(&S);
    } else {
        et_pairs P = {0};
        if (et_pairs_read(data, &ro, &P, &rep, &err)) { et_pairs_free(&P); rc = et_cli_fail("eval", &err); goto out; }
        /* the split: keep rows by id (or query text) - done by compacting the row arrays */
        int64_t w = 0;
        for (int64_t i = 0; i < P.n; i++) {
            if (!et_split_keep(split, P.id[i], P.query[i])) continue;
            P.query[w] = P.query[i]; P.passage[w] = P.passage[i]; P.id[w] = P.id[i]; P.label[w] = P.label[i]; P.line[w] = P.line[i];
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
            if (P.has_label) { /* pairwise AUPRC (evaluate.h, as finetune) */
                /* no ranking, so no hybrid; a saved hybrid default falls back to the model */
                if (mode == ET_MODE_HYBRID && !ms && !fspec) { mode = ET_MODE_DENSE; cJSON_ReplaceItemInObject(root, "mode", cJSON_CreateString("dense")); }
                if (mode == ET_MODE_HYBRID) { fprintf(stderr, "embedtune eval: the hybrid mode needs retrieval data (a BEIR folder or a positive-pairs file); use --mode dense or bm25\n"); rc = 2; }
                cJSON_Delete(cJSON_DetachItemFromObject(root, "by_mode"));
                prog pp = {"encode pairs", quiet, {0}};
                et_encode_opts eo = enc_opts(batch, mlen, &pp);
                eo.dim = dim;
                et_bm25_opts bo = {k1, bb, 0};
                et_pair_eval pe;
                double t0 = et_now_s();
                if (!rc && (use_bm25 ? et_eval_pairs_bm25(pool, &bo, P.query, P.passage, P.label, w, &pe, &err)
                                     : et_eval_pairs_dense(&L.model, L.tok, pool, &eo, P.query, P.passage, P.label, w, &pe, &err)))
                    rc = et_cli_fail("eval", &err);
                J.t_encode = et_now_s() - t0;
                if (!rc) {
                    cJSON_AddNumberToObject(info, "nqueries", ix.nq);
                    cJSON_AddNumberToObject(info, "positives", (double)pe.npos);
                    cJSON_AddNumberToObject(info, "negatives", (double)(w - pe.npos));
                    json_num(metrics, "auprc", pe.auprc);
                    if (!use_bm25) {
                        json_num(metrics, "mean_pos_cosine", pe.mean_pos_cosine);
                        json_num(metrics, "anisotropy", pe.anisotropy);
                    }
                }
            } else {
                /* positive pairs: the distinct passages are the corpus, each row a (query, doc) grade-1 judgment */
                et_qrel *qr = malloc(sizeof(et_qrel) * (size_t)(ix.pos_off[ix.nq] ? ix.pos_off[ix.nq] : 1));
                if (!qr) { fprintf(stderr, "embedtune eval: out of memory\n"); rc = 1; }
                for (int32_t q = 0; !rc && q < ix.nq; q++)
                    for (int64_t u = ix.pos_off[q]; u < ix.pos_off[q + 1]; u++) qr[u] = (et_qrel){q, ix.pos[u], 1};
                if (!rc) {
                    cJSON_AddNumberToObject(info, "nqueries", ix.nq);
                    cJSON_AddNumberToObject(info, "ndocs", ix.np);
                    rc = run_ir(&J, ix.ptext, ix.np, ix.qtext, ix.nq, qr, ix.pos_off, &err);
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
        if (jout && !collect) rc = write_json_out("eval", jout, root);
    }
    if (!rc && collect) {
        char key[16];
        snprintf(key, sizeof key, "%d", dim);
        cJSON_AddItemToObject(collect, key, root);
    } else cJSON_Delete(root);
    if (have_model) et_hf_model_free(&L); else et_pool_destroy(pool);
    return rc;
}

static int run_eval(et_opt *o, int n) {
    const char *ds = et_cli_get(o, n, "--dim");
    if (!ds) return eval_one(o, n, 0, NULL);
    int dims[64], nd = 0;
    for (const char *p = ds; *p;) { /* D[,D...], each a positive integer */
        char *e;
        long d = strtol(p, &e, 10);
        if (e == p || d < 1 || d > (1 << 20) || (*e && *e != ',') || nd == 64) {
            fprintf(stderr, "embedtune eval: --dim must be a size or a comma-separated list of sizes, e.g. 128,64,32 (got '%s')\n", ds);
            return 2;
        }
        dims[nd++] = (int)d;
        p = *e ? e + 1 : e;
    }
    if (nd == 1) return eval_one(o, n, dims[0], NULL);
    if (!et_cli_get(o, n, "--model") || et_cli_get(o, n, "--bm25")) { fprintf(stderr, "embedtune eval: --dim needs a model\n"); return 2; }
    cJSON *all = cJSON_CreateObject(), *by = cJSON_AddObjectToObject(all, "by_dim");
    int rc = 0;
    for (int i = 0; i < nd && !rc; i++) {
        if (i) fputc('\n', stdout);
        rc = eval_one(o, n, dims[i], by);
    }
    const char *jout = et_cli_get(o, n, "--json");
    if (!rc && jout) rc = write_json_out("eval", jout, all);
    cJSON_Delete(all);
    return rc;
}

et_command et_cmd_eval = {"eval", "Evaluate a model (or BM25, or a hybrid) on a BEIR folder, a labelled pairs file or STS data.",
     "eval --model DIR --data BEIRDIR|pairs.jsonl|sts.jsonl [--k 10] [--json FILE|-] [--split test|train|all] [--bm25] "
     "[--mode dense|bm25|hybrid] [--fusion SPEC] [--dim D[,D...]] [--index X.etix]",
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
        et_hf_model L;
        if (et_cli_load(models[i], 1, &L, &err)) { et_hf_model_free(&L); rc = et_cli_fail("score", &err); goto done; }
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
        et_encode_opts eo = enc_opts(batch, max_len ? (int)max_len : et_hf_model_max_len(&L), &pp);
        et_status s = et_expert_dense_init(&ex[nex], &ix, name, &L.model, L.tok, pool, &eo, &err);
        et_hf_model_free(&L);
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
    et_hf_model L;
    memset(&L, 0, sizeof L);
    et_corpus C = {0};
    const char **docs = NULL;
    float *Q = NULL, *D = NULL, *nsc = NULL;
    int32_t *neg = NULL, *negq = NULL;
    uint64_t *hset = NULL;
    if (et_pairs_read(et_cli_get(o, n, "--in"), NULL, &P, NULL, &err) || et_pair_index_build(&P, &ix, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    if (et_cli_get(o, n, "--corpus") && et_corpus_read(et_cli_get(o, n, "--corpus"), NULL, &C, NULL, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    if (et_cli_load(et_cli_get(o, n, "--model"), threads, &L, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    /* corpus = the distinct passages, then the --corpus docs whose text is not one of them */
    int64_t nd = ix.np, hcap = 16;
    while (hcap < 2 * (int64_t)ix.np) hcap <<= 1;
    docs = malloc(sizeof(char *) * (size_t)(ix.np + C.n + 1));
    hset = calloc((size_t)hcap, sizeof(uint64_t)); /* hashes of the passages (0 = empty slot) */
    if (!docs || !hset) { fprintf(stderr, "embedtune mine: out of memory\n"); rc = 1; goto done; }
    for (int32_t p = 0; p < ix.np; p++) {
        docs[p] = ix.ptext[p];
        uint64_t h = et_fnv1a64_str(ix.ptext[p]) | 1, u = h & (hcap - 1);
        while (hset[u] && hset[u] != h) u = (u + 1) & (hcap - 1);
        hset[u] = h;
    }
    int64_t ndup = 0;
    for (int32_t i = 0; i < C.n; i++) {
        uint64_t h = et_fnv1a64_str(C.text[i]) | 1, u = h & (hcap - 1);
        int dup = 0;
        while (hset[u] && !dup) {
            if (hset[u] == h) /* hash hit: confirm by text */
                for (int32_t p = 0; p < ix.np && !dup; p++) dup = !strcmp(ix.ptext[p], C.text[i]);
            u = (u + 1) & (hcap - 1);
        }
        if (dup) ndup++; else docs[nd++] = C.text[i];
    }
    int d = L.model.cfg.hidden_size;
    Q = malloc(sizeof(float) * (size_t)(ix.nq ? ix.nq : 1) * d);
    D = malloc(sizeof(float) * (size_t)(nd ? nd : 1) * d);
    neg = malloc(sizeof(int32_t) * (size_t)(ix.nq ? ix.nq : 1) * nneg);
    negq = malloc(sizeof(int32_t) * (size_t)(ix.nq ? ix.nq : 1) * nneg);
    nsc = malloc(sizeof(float) * (size_t)(ix.nq ? ix.nq : 1) * nneg);
    if (!Q || !D || !neg || !negq || !nsc) { fprintf(stderr, "embedtune mine: out of memory\n"); rc = 1; goto done; }
    prog pc = {"encode corpus", quiet, {0}};
    et_encode_opts eo = enc_opts(batch, max_len ? (int)max_len : et_hf_model_max_len(&L), &pc);
    if (et_encode_texts(&L.model, L.tok, L.pool, docs, (size_t)nd, &eo, D, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    eo.progress = NULL;
    if (et_encode_texts(&L.model, L.tok, L.pool, ix.qtext, (size_t)ix.nq, &eo, Q, &err)) { rc = et_cli_fail("mine", &err); goto done; }
    et_l2norm_rows(D, nd, d);
    et_l2norm_rows(Q, ix.nq, d);
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
    et_corpus_free(&C);
    et_hf_model_free(&L);
    et_pair_index_free(&ix);
    et_pairs_free(&P);
    return rc;
}

et_command et_cmd_mine = {"mine", "ANCE hard negatives: rank a corpus with the model, keep a rank window minus positives.",
     "mine --model DIR --in pairs.jsonl --out train.jsonl [--corpus corpus.jsonl] [--range 2:200] [--negatives 15] "
     "[--fn-margin 0.95] [--sample]",
     run_mine, mine_opts, ET_NOPTS(mine_opts)};
