/* cli_fuse.c - `embedtune fuse`: learn the BM25 + model fusion from a data set's training queries
 * (fusion.h: cross-validated nDCG@10 on the train split of data.md), report it beside dense, BM25 and
 * the default fusion on the held-out queries, and optionally save it as the model's retrieval.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "cli.h"
#include "data.h"
#include "fileio.h"
#include "fusion.h"
#include "evaluate.h"
#include "hybrid.h"

static et_opt fuse_opts[] = {
    {"--model", NULL, "DIR", "model folder", NULL},
    {"--data", NULL, "DIR", "BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv): learn on its train split", NULL},
    {"--save", NULL, NULL, "write the learned fusion to DIR/retrieval.json (the model folder's default retrieval becomes hybrid)", NULL},
    {"--json", NULL, "FILE", "write the results as JSON (- = stdout)", NULL},
    {"--folds", NULL, "K", "cross-validation folds over the training queries (default 5)", NULL},
    {"--se-rule", NULL, "X", "prefer the default / BM25-leaning choice within X standard errors of the best (default 1)", NULL},
    {"--grid", NULL, NULL, "also print every grid point's train and held-out nDCG@10 (a report; the choice uses train only)", NULL},
    {"--k1", NULL, "X", "BM25 k1 (default 0.9)", NULL},
    {"--b", NULL, "X", "BM25 b (default 0.4)", NULL},
    {"--batch", NULL, "N", "texts per forward pass (default 32)", NULL},
    {"--max-len", NULL, "L", "max tokens per text (default: the model's max_seq_length or 256)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

static void jnum(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, round(v * 1e6) / 1e6); else cJSON_AddNullToObject(o, k);
}

static int run_fuse(et_opt *o, int n) {
    if (!et_cli_need(o, n, "fuse", "--model") || !et_cli_need(o, n, "fuse", "--data")) return 2;
    int ok = 1;
    et_fusion_fit_opts fo;
    et_fusion_fit_opts_default(&fo);
    fo.folds = (int)et_cli_int(o, n, "--folds", 5, 2, 1000, &ok);
    fo.se_rule = et_cli_float(o, n, "--se-rule", 1.0, 0, 100, &ok);
    et_bm25_opts bo = {et_cli_float(o, n, "--k1", 0.9, 0, 100, &ok), et_cli_float(o, n, "--b", 0.4, 0, 1, &ok), 0};
    int batch = (int)et_cli_int(o, n, "--batch", 32, 1, 4096, &ok);
    int threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    long max_len = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    if (!ok) return 2;
    int quiet = et_cli_get(o, n, "--quiet") != NULL, rc = 0;
    const char *mdir = et_cli_get(o, n, "--model"), *data = et_cli_get(o, n, "--data");
    et_error err = {0};
    et_hf_model L;
    memset(&L, 0, sizeof L);
    et_beir B;
    memset(&B, 0, sizeof B);
    et_beir_split tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    et_hybrid_index ix;
    memset(&ix, 0, sizeof ix);
    et_hybrid_queries Ytr, Yte;
    memset(&Ytr, 0, sizeof Ytr);
    memset(&Yte, 0, sizeof Yte);
    if (!et_dir_exists(data)) { fprintf(stderr, "embedtune fuse: --data %s: not a BEIR folder\n", data); return 2; }
    if (et_beir_read(data, NULL, &B, NULL, &err) || et_beir_split_make(&B, ET_SPLIT_TRAIN, &tr, &err) ||
        et_beir_split_make(&B, ET_SPLIT_TEST, &te, &err) ||
        et_cli_load(mdir, threads, &L, &err)) { rc = et_cli_fail("fuse", &err); goto done; }
    et_encode_progress ps = {et_now_s(), "encode corpus", 0};
    et_encode_opts eo = {batch, max_len ? (int)max_len : et_hf_model_max_len(&L), quiet ? NULL : et_encode_progress_print, &ps};
    if (et_hybrid_index_build(&L.model, L.tok, L.pool, &eo, 1, &bo, B.doc_text, B.ndocs, NULL, &ix, &err)) { rc = et_cli_fail("fuse", &err); goto done; }
    eo.progress = NULL;
    if (et_hybrid_queries_build(&ix, L.pool, &eo, tr.qs, tr.nq, 0, NULL, &Ytr, &err) ||
        et_hybrid_queries_build(&ix, L.pool, &eo, te.qs, te.nq, 0, NULL, &Yte, &err)) { rc = et_cli_fail("fuse", &err); goto done; }
    et_fusion chosen;
    et_fusion_fit_report R;
    if (et_fusion_fit(&Ytr.cands, tr.qrels, tr.qoff, &fo, &chosen, &R, &err)) { rc = et_cli_fail("fuse", &err); goto done; }
    /* held-out: the fixed rules, each family's pick, the chosen one */
    et_fusion rules[4 + ET_FUSION_NFAMILIES];
    const char *names[4 + ET_FUSION_NFAMILIES] = {"dense", "bm25", "default fusion", "learned fusion", "convex-minmax", "convex-tmm", "convex-zscore", "rrf", "rerank"};
    double trv[4 + ET_FUSION_NFAMILIES], cvv[4 + ET_FUSION_NFAMILIES];
    rules[0] = rules[1] = chosen;
    rules[0].kind = ET_FUSION_DENSE;
    rules[1].kind = ET_FUSION_BM25;
    rules[2] = fo.prior;
    rules[3] = chosen;
    trv[0] = R.dense_ndcg10; trv[1] = R.bm25_ndcg10; trv[2] = R.prior_ndcg10; trv[3] = R.train_ndcg10;
    cvv[0] = cvv[1] = cvv[2] = NAN; cvv[3] = R.cv_ndcg10;
    int nr = 4;
    for (int f = 0; R.learned && f < ET_FUSION_NFAMILIES; f++, nr++) {
        rules[nr] = R.family[f].best;
        trv[nr] = R.family[f].train_ndcg10;
        cvv[nr] = R.family[f].cv_ndcg10;
    }
    cJSON *J = cJSON_CreateObject(), *ja = cJSON_AddArrayToObject(J, "rules");
    cJSON_AddStringToObject(J, "model", mdir);
    cJSON_AddStringToObject(J, "data", data);
    cJSON_AddNumberToObject(J, "train_queries", tr.nq);
    cJSON_AddNumberToObject(J, "test_queries", te.nq);
    cJSON_AddBoolToObject(J, "learned", R.learned);
    cJSON_AddBoolToObject(J, "prior_kept", R.prior_kept);
    jnum(J, "cv_gain_over_prior", R.gain_over_prior);
    jnum(J, "cv_gain_se", R.gain_se);
    if (!quiet || !et_cli_get(o, n, "--json"))
        printf("%d training queries (%s, %d folds), %d held-out; nDCG@10\n%-16s %-44s %9s %9s %9s\n", tr.nq,
               !R.learned ? "too few: default kept" : R.prior_kept ? "default kept: no CV gain beyond the se rule" : "learned", R.folds, te.nq, "rule", "parameters", "train", "train-CV", "held-out");
    for (int i = 0; i < nr && !rc; i++) {
        et_ir_eval ev;
        et_eval_mode em = rules[i].kind == ET_FUSION_DENSE ? ET_EVAL_DENSE : rules[i].kind == ET_FUSION_BM25 ? ET_EVAL_BM25 : ET_EVAL_HYBRID;
        if (et_eval_ir_ranked(L.pool, &ix, &Yte, em, &rules[i], 10, te.qrels, te.qoff, &ev, &err)) { rc = et_cli_fail("fuse", &err); break; }
        char d[128];
        et_fusion_describe(&rules[i], d, sizeof d);
        char cvs[16] = "-";
        if (isfinite(cvv[i])) snprintf(cvs, sizeof cvs, "%.4f", cvv[i]);
        if (!quiet || !et_cli_get(o, n, "--json"))
            printf("%-16s %-44s %9.4f %9s %9.4f\n", names[i], i < 2 ? "" : d, trv[i], cvs, ev.ndcg10);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "rule", names[i]);
        cJSON_AddStringToObject(e, "parameters", d);
        jnum(e, "train_ndcg@10", trv[i]);
        jnum(e, "cv_ndcg@10", cvv[i]);
        jnum(e, "test_ndcg@10", ev.ndcg10);
        jnum(e, "test_map@10", ev.map10);
        jnum(e, "test_recall@100", ev.recall100);
        cJSON_AddItemToArray(ja, e);
    }
    if (!rc && et_cli_get(o, n, "--grid")) {
        et_fusion G[ET_FUSION_GRID_MAX];
        int ng = et_fusion_grid(Ytr.cands.depth, G, NULL, ET_FUSION_GRID_MAX);
        cJSON *jg = cJSON_AddArrayToObject(J, "grid");
        for (int i = 0; i < ng && !rc; i++) {
            et_ir_eval a, b;
            if (et_eval_ir_ranked(L.pool, &ix, &Ytr, ET_EVAL_HYBRID, &G[i], 10, tr.qrels, tr.qoff, &a, &err) ||
                et_eval_ir_ranked(L.pool, &ix, &Yte, ET_EVAL_HYBRID, &G[i], 10, te.qrels, te.qoff, &b, &err)) { rc = et_cli_fail("fuse", &err); break; }
            char d[128];
            et_fusion_describe(&G[i], d, sizeof d);
            if (!quiet || !et_cli_get(o, n, "--json")) printf("grid %-44s %9.4f %9.4f\n", d, a.ndcg10, b.ndcg10);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "parameters", d);
            cJSON_AddStringToObject(e, "kind", et_fusion_kind_name(G[i].kind));
            cJSON_AddStringToObject(e, "norm", et_fusion_norm_name(G[i].norm));
            jnum(e, "alpha", G[i].alpha);
            jnum(e, "k", G[i].rrf_k);
            cJSON_AddNumberToObject(e, "top_n", G[i].top_n);
            jnum(e, "train_ndcg@10", a.ndcg10);
            jnum(e, "test_ndcg@10", b.ndcg10);
            cJSON_AddItemToArray(jg, e);
        }
    }
    const char *jp = et_cli_get(o, n, "--json");
    if (!rc && jp) {
        char *s = cJSON_Print(J);
        if (!strcmp(jp, "-")) puts(s);
        else if (et_write_file_atomic(jp, s, strlen(s), &err)) rc = et_cli_fail("fuse", &err);
        free(s);
    }
    cJSON_Delete(J);
    if (!rc && et_cli_get(o, n, "--save")) {
        et_retrieval_cfg rcfg;
        et_retrieval_cfg_default(&rcfg);
        rcfg.mode = ET_MODE_HYBRID;
        rcfg.bm25 = bo;
        rcfg.fusion = chosen;
        char note[ET_PATH_MAX + 64];
        snprintf(note, sizeof note, "embedtune fuse on %s (train split, %d judged queries)", data, tr.nq);
        if (et_retrieval_save(mdir, &rcfg, &R, note, &err)) rc = et_cli_fail("fuse", &err);
        else if (!quiet) fprintf(stderr, "embedtune fuse: wrote %s/%s\n", mdir, ET_RETRIEVAL_FILE);
    }
done:
    et_hybrid_queries_free(&Ytr);
    et_hybrid_queries_free(&Yte);
    et_hybrid_index_free(&ix);
    et_beir_split_free(&tr);
    et_beir_split_free(&te);
    if (B.ndocs || B.nqueries) et_beir_free(&B);
    et_hf_model_free(&L);
    return rc;
}

et_command et_cmd_fuse = {"fuse", "Learn the BM25 + model fusion on a data set's training queries (cross-validated nDCG@10); --save stores it in the model folder.",
     "fuse --model DIR --data BEIRDIR [--save] [--json FILE] [--folds 5] [--se-rule 1]",
     run_fuse, fuse_opts, ET_NOPTS(fuse_opts)};
