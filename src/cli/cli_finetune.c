/* cli_finetune.c - `embedtune finetune`: one command from a model + data to a tuned model and a
 * before/after table on held-out data (src/finetune.h does the work). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "cli.h"
#include "safetensors.h"
#include "fileio.h"
#include "finetune.h"
#include "lora.h"
#include "moe.h"

static et_opt ft_opts[] = {
    {"--model", NULL, "DIR", "starting model folder (Hugging Face / sentence-transformers)", NULL},
    {"--data", NULL, "PATH", "BEIR folder, pairs file (.jsonl/.csv/.tsv) or STS JSONL (s1, s2, score)", NULL},
    {"--out", NULL, "DIR", "where the tuned model is written (a Hugging Face folder)", NULL},
    {"--loss", NULL, "NAME", "infonce (default) | mse | soft1 | soft2 | soft3 | clp", NULL},
    {"--json", NULL, "FILE", "also write the before/after results as JSON (- = stdout)", NULL},
    {"--eval", NULL, "PATH", "evaluate on this set instead of the held-out split (then all of --data is trained on)", NULL},
    {"--negatives", NULL, "N", "negatives per query (infonce/clp: ANCE-mined, default 3) or per positive row (mse/soft, default 7)", NULL},
    {"--mine-range", NULL, "A:B", "ANCE rank window of the starting model's ranking, positives counted (default 2:100)", NULL},
    {"--neg-mode", NULL, "M", "mse/soft: hard (ranked by the first expert, default) | random", NULL},
    {"--hard-ratio", NULL, "X", "mse/soft, --neg-mode hard: share of each positive's negatives that are the first expert's top non-answers; the rest are random (default 0.5)", NULL},
    {"--neg-source", NULL, "S", "infonce/clp hard negatives: ance (the model's own ranking, re-mined) | bm25 (BM25's ranking, "
                                "the documents keyword search gets wrong) | mix (interleaved; the default: the best hybrid in the README's runs)", NULL},
    {"--no-mix", NULL, NULL, "keep the tuned weights as they are: no weight-space mix with the starting model (default: after training with a dev split, the smallest mix 0.5..0.9 x tuned + the rest x start whose dev score is not below the tuned model's is kept, WiSE-FT)", NULL},
    {"--no-fusion", NULL, NULL, "do not learn the BM25 + model fusion nor write OUT/retrieval.json (retrieval data)", NULL},
    {"--bm25-fit", NULL, NULL, "learn BM25's k1 and b on the training queries for the hybrid and save them in retrieval.json (default: k1 0.9, b 0.4; see the README for why it is off)", NULL},
    {"--refresh-every", NULL, "N|auto", "infonce/clp: re-encode and re-mine negatives with the current model every N steps (default auto: 4 times per epoch; 0 = mine once, cheaper on big corpora)", NULL},
    {"--no-bm25", NULL, NULL, "do not use BM25 as an expert (soft losses then need --expert-model or scored pairs)", NULL},
    {"--expert-model", NULL, "DIR", "a dense expert cos(q, p) for the soft losses (repeatable)", NULL},
    {"--no-start-expert", NULL, NULL, "soft losses: do not use the starting model's cosine as an expert (it is one by default)", NULL},
    {"--soft-norm", NULL, "NORM", "soft1-3: per-expert score normalisation none | minmax | rank (default: the rank of each expert's score among the training rows, scaled to [0,1])", NULL},
    {"--soft-form", NULL, "list|pair", "soft1-3: list (default) = cross-entropy of the model's in-batch softmax against softmax(target / tau) over each query's positive and negatives (a contrastive loss, like infonce); pair = cosine MSE on each row's target (the earlier form)", NULL},
    {"--soft-range", NULL, "auto|none|LO:HI", "soft1-3: map each target t in [0,1] to LO + t*(HI-LO); auto (default) = the pair form matches the starting model's cosines of the training rows (mean and spread), the list form keeps the targets as they are", NULL},
    {"--force", NULL, NULL, "soft losses: train even when the target guards refuse (targets mostly clamped or not separating positives from negatives)", NULL},
    {"--watch-every", NULL, "N|auto|0", "collapse watch: measure anisotropy and the positives' margin on a sample every N steps and at each dev evaluation, and stop a collapsing run: the best dev point before it is kept (without a dev split no model is written) (default auto, for mse/soft: 4 times per epoch and before the last step; 0 = off)", NULL},
    {"--alpha", NULL, "X", "soft2 blend weight of the hard label (default 0.5)", NULL},
    {"--pos-threshold", NULL, "X", "infonce/clp on labelled rows: positives are rows with label >= X (default 0.5)", NULL},
    {"--sts-max", NULL, "X", "STS data: label = score / X (default 5)", NULL},
    {"--epochs", NULL, "N", "passes over the training examples; with a dev split an upper bound (default auto: about 400 steps with a dev split, 2..10 epochs; 120 steps, 1..3 epochs without)", NULL},
    {"--lr", NULL, "X", "peak learning rate (default auto by model size: 2e-4 at 4.6 M parameters, 2e-5 at 110 M, log-linear between; "
                        "with --lora 10 times that)", NULL},
    ET_CLI_LORA_OPTS,
    {"--freeze-embeddings", NULL, NULL, "freeze the word-embedding table: no gradient and no AdamW state for it (for "
                                        "large vocabularies)", NULL},
    {"--batch", NULL, "N", "queries (or rows) per micro-batch (default auto: 16, or 8 below 128 examples)", NULL},
    {"--dev", NULL, "auto|on|off", "early stopping on a dev split carved from the training queries (15 %, by a hash of the id); auto = when it holds >= 5 queries (20 rows) (default auto)", NULL},
    {"--patience", NULL, "N", "dev evaluations without a new best before stopping, never inside the first epoch nor the first half of the planned steps (default 2)", NULL},
    {"--dev-every", NULL, "N", "optimizer steps between dev evaluations (default auto: once per epoch, at most 50 steps apart)", NULL},
    {"--time-budget", NULL, "SECONDS", "stop training so that the whole run (final evaluation included) fits in this many seconds (default none)", NULL},
    {"--max-train-queries", NULL, "N", "use only N of the training queries (rows), chosen by a hash of the id (default all; 0 = none, with --adapt)", NULL},
    {"--adapt", NULL, NULL, "infonce/clp: add self-supervised pairs (inverse cloze + random crops) from the data's own passages (BEIR corpus, or the pairs' passages)", NULL},
    {"--corpus", NULL, "FILE", "passages for --adapt (implies it): BEIR folder or corpus.jsonl, JSONL with \"text\", or one passage per line; with a pairs file the held-out queries also search them", NULL},
    {"--adapt-pairs", NULL, "N", "at most N adaptation pairs (default: as many as labelled examples, 500..2000)", NULL},
    {"--max-len", NULL, "L", "max tokens per text, queries included, in training as in encoding (default: the model's max_seq_length or 256)", NULL},
    {"--warmup", NULL, "N|R", "warm-up: N steps, or a ratio R < 1 (default 0.1)", NULL},
    {"--tau", NULL, "X", "infonce/clp temperature (default 0.05)", NULL},
    {"--lambda", NULL, "X", "clp penalty weight (default 0.1)", NULL},
    {"--matryoshka", NULL, "DIMS", "Matryoshka loss over the embedding cut to each listed size, e.g. 128,64,32 or 128:1,64:1,32:0.5 "
                                   "(default off; see train --help); the tuned vectors then work cut: encode/search/eval --dim", NULL},
    {"--weight-decay", NULL, "X", "AdamW weight decay (default 0.01)", NULL},
    {"--keep-false-negatives", NULL, NULL, "keep in-batch candidates that are another positive of the row's query (several answers per question) in its softmax, as sentence-transformers does (default: left out)", NULL},
    {"--no-dropout", NULL, NULL, "train without dropout", NULL},
    {"--dropout", NULL, NULL, "soft1-3 in the pair form: train with the model's dropout (off by default for it: dropout lowers the cosines the calibrated targets are compared with; the list form keeps dropout, as infonce)", NULL},
    {"--moe-experts", NULL, "E", "convert the FFN up-projections to E experts before training (CLP paper MoE)", NULL},
    {"--moe-layers", NULL, "LIST", "MoE layers, comma-separated indices (default: all)", NULL},
    {"--moe-gate", NULL, "G", "switch (router output scales the expert, default) | unscaled (the authors' top-1) | ste", NULL},
    {"--moe-aux", NULL, "X", "Switch load-balancing loss weight (default 0.01)", NULL},
    {"--moe-jitter", NULL, "X", "router input jitter while training (default 0)", NULL},
    {"--train-only", NULL, "WHAT", "moe: train only the routers and experts (needs --moe-experts)", NULL},
    {"--seed", NULL, "N", "data order, dropout, negative sampling (default 42)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--precision", NULL, "P", "fp32 (default) | bf16: training's Linear GEMMs with bf16 operands and fp32 "
                               "accumulation (fp32 weights, LayerNorm, softmax, loss; mining and evaluation stay fp32); "
                               "needs AVX512_BF16, refused elsewhere | auto: bf16 where the CPU has AVX512_BF16, "
                               "else fp32", NULL},
    {"--mem-budget", NULL, "MB", "refuse to train above this much memory (default 8192)", NULL},
    {"--quiet", "-q", NULL, "no progress on stderr", NULL},
};

static double r7(double x) {
    if (!isfinite(x)) return x;
    char b[32];
    snprintf(b, sizeof b, "%.7g", x);
    return strtod(b, NULL);
}
static void jnum(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, r7(v)); else cJSON_AddNullToObject(o, k);
}

typedef struct { const char *name; double b, a, bm; } row;

static int rows_of(const et_finetune_result *r, row *out) {
    int n = 0;
    if (r->kind == ET_FT_EVAL_IR) {
        const et_ir_eval *b = &r->before, *a = &r->after, *m = &r->bm25;
        out[n++] = (row){"ndcg@10", b->ndcg10, a->ndcg10, m->ndcg10};
        out[n++] = (row){"map@10", b->map10, a->map10, m->map10};
        out[n++] = (row){"mrr@10", b->mrr10, a->mrr10, m->mrr10};
        out[n++] = (row){"recall@100", b->recall100, a->recall100, m->recall100};
        out[n++] = (row){"auprc", b->auprc, a->auprc, m->auprc};
        out[n++] = (row){"anisotropy", b->anisotropy, a->anisotropy, NAN};
        out[n++] = (row){"mean_pos_cosine", b->mean_pos_cosine, a->mean_pos_cosine, NAN};
    } else {
        const et_pair_eval *b = &r->pbefore, *a = &r->pafter;
        out[n++] = (row){"spearman", b->spearman, a->spearman, NAN};
        out[n++] = (row){"pearson", b->pearson, a->pearson, NAN};
        out[n++] = (row){"auprc", b->auprc, a->auprc, NAN};
        out[n++] = (row){"anisotropy", b->anisotropy, a->anisotropy, NAN};
        out[n++] = (row){"mean_pos_cosine", b->mean_pos_cosine, a->mean_pos_cosine, NAN};
    }
    return n;
}

static void cell(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, " %10.4f", v); else fprintf(f, " %10s", "-");
}

/* the retrieval modes side by side on the held-out queries: dense, BM25, the default and the learned fusion */
static void print_hybrid(FILE *f, const et_finetune_result *r, const char *out) {
    if (!r->has_hybrid) return;
    const et_ft_hybrid *h[2] = {&r->hyb_before, &r->hyb_after};
    fprintf(f, "  BM25 k1 %g, b %g (%s)\n", r->bm25_opts.k1, r->bm25_opts.b, r->bm25_fit.learned ? "learned on the training queries" : "default");
    fprintf(f, "  held-out nDCG@10   %10s %10s %10s %10s\n", "dense", "bm25", "hyb-dflt", "hyb-learn");
    for (int i = 0; i < 2; i++) {
        fprintf(f, "  %-18s", i ? "after" : "before");
        cell(f, h[i]->dense.ndcg10); cell(f, h[i]->bm25.ndcg10); cell(f, h[i]->fused_default.ndcg10); cell(f, h[i]->fused_learned.ndcg10);
        fputc('\n', f);
    }
    char d[128];
    fprintf(f, "  learned fusion: %s (%s) -> %s/retrieval.json\n", et_fusion_describe(&h[1]->learned, d, sizeof d), h[1]->fit_note,
            r->fusion_saved ? out : "(not saved)");
}

static void json_hybrid(cJSON *root, const et_finetune_result *r) {
    if (!r->has_hybrid) return;
    cJSON *hj = cJSON_AddObjectToObject(root, "hybrid");
    const et_ft_hybrid *h[2] = {&r->hyb_before, &r->hyb_after};
    for (int i = 0; i < 2; i++) {
        cJSON *o = cJSON_AddObjectToObject(hj, i ? "after" : "before");
        const et_ir_eval *e[4] = {&h[i]->dense, &h[i]->bm25, &h[i]->fused_default, &h[i]->fused_learned};
        static const char *nm[4] = {"dense", "bm25", "hybrid_default", "hybrid_learned"};
        for (int k = 0; k < 4; k++) {
            cJSON *m = cJSON_AddObjectToObject(o, nm[k]);
            jnum(m, "ndcg@10", e[k]->ndcg10);
            jnum(m, "map@10", e[k]->map10);
            jnum(m, "mrr@10", e[k]->mrr10);
            jnum(m, "recall@100", e[k]->recall100);
        }
        char d[128];
        cJSON_AddStringToObject(o, "learned_fusion", et_fusion_describe(&h[i]->learned, d, sizeof d));
        cJSON_AddBoolToObject(o, "learned", h[i]->fit.learned);
        cJSON_AddStringToObject(o, "how", h[i]->fit_note);
        jnum(o, "train_queries", h[i]->fit.nqueries);
        jnum(o, "cv_ndcg@10", h[i]->fit.cv_ndcg10);
        cJSON_AddBoolToObject(o, "prior_kept", h[i]->fit.prior_kept);
        jnum(o, "cv_gain_over_prior", h[i]->fit.gain_over_prior);
        jnum(o, "cv_gain_se", h[i]->fit.gain_se);
    }
    cJSON_AddBoolToObject(hj, "retrieval_json_written", r->fusion_saved);
    cJSON *bj = cJSON_AddObjectToObject(hj, "bm25_settings");
    jnum(bj, "k1", r->bm25_opts.k1);
    jnum(bj, "b", r->bm25_opts.b);
    cJSON_AddBoolToObject(bj, "learned", r->bm25_fit.learned);
    jnum(bj, "train_queries", r->bm25_fit.nqueries);
    jnum(bj, "train_ndcg@10", r->bm25_fit.ndcg10);
    jnum(bj, "train_ndcg@10_default", r->bm25_fit.default_ndcg10);
}

static int run_finetune(et_opt *o, int n) { return et_cli_finetune_run(o, n, NULL, NULL, NULL); }

int et_cli_finetune_run(et_opt *o, int n, et_ft_progress_fn progress, void *progress_user, const et_ft_known *known) {
    if (!et_cli_need(o, n, "finetune", "--model") || !et_cli_need(o, n, "finetune", "--data") ||
        !et_cli_need(o, n, "finetune", "--out"))
        return 2;
    et_error err = {0};
    et_finetune_cfg c;
    et_finetune_cfg_default(&c);
    et_train_cfg *t = &c.train;
    int ok = 1;
    const char *ln = et_cli_get(o, n, "--loss");
    if (et_train_loss_parse(ln ? ln : "infonce", &t->loss, &err)) { fprintf(stderr, "embedtune finetune: --loss: %s\n", err.msg); return 2; }
    if (et_cli_get(o, n, "--soft-norm") && et_soft_norm_parse(et_cli_get(o, n, "--soft-norm"), &t->soft_norm, &err)) {
        fprintf(stderr, "embedtune finetune: --soft-norm: %s\n", err.msg);
        return 2;
    }
    char prec_why[200] = "";
    et_precision prec_run;
    if (et_cli_get(o, n, "--precision") && et_train_precision_parse(et_cli_get(o, n, "--precision"), &t->precision, &err)) {
        fprintf(stderr, "embedtune finetune: --precision: %s\n", err.msg);
        return 2;
    }
    if (et_train_precision_resolve(t->precision, &prec_run, prec_why, sizeof prec_why, &err)) {
        fprintf(stderr, "embedtune finetune: %s\n", err.msg);
        return 2;
    }
    et_precision prec_asked = t->precision;
    t->precision = prec_run; /* auto is decided once (it times the kernels): the trainer gets the choice */
    if (et_cli_get(o, n, "--matryoshka") && et_matryoshka_parse(et_cli_get(o, n, "--matryoshka"), &t->matryoshka, &err)) {
        fprintf(stderr, "embedtune finetune: --matryoshka: %s\n", err.msg);
        return 2;
    }
    c.model_dir = et_cli_get(o, n, "--model");
    c.data = et_cli_get(o, n, "--data");
    c.out_dir = et_cli_get(o, n, "--out");
    c.eval_path = et_cli_get(o, n, "--eval");
    c.negatives = (int)et_cli_int(o, n, "--negatives", -1, 0, 4096, &ok);
    const char *rf = et_cli_get(o, n, "--refresh-every");
    c.refresh_every = rf && !strcmp(rf, "auto") ? ET_FT_REFRESH_AUTO : rf ? (int)et_cli_int(o, n, "--refresh-every", 0, 0, INT_MAX, &ok)
                                                                          : ET_FT_REFRESH_AUTO;
    c.pos_threshold = et_cli_float(o, n, "--pos-threshold", 0.5, 0, 1, &ok);
    c.sts_max = et_cli_float(o, n, "--sts-max", 5, 1e-9, 1e9, &ok);
    c.use_bm25 = et_cli_get(o, n, "--no-bm25") == NULL;
    c.fusion = et_cli_get(o, n, "--no-fusion") == NULL;
    c.bm25_fit = et_cli_get(o, n, "--bm25-fit") != NULL;
    c.mix = et_cli_get(o, n, "--no-mix") == NULL;
    const char *ns = et_cli_get(o, n, "--neg-source");
    if (ns) {
        if (!strcmp(ns, "ance")) c.neg_source = ET_FT_NEG_ANCE;
        else if (!strcmp(ns, "bm25")) c.neg_source = ET_FT_NEG_BM25;
        else if (!strcmp(ns, "mix")) c.neg_source = ET_FT_NEG_MIX;
        else { fprintf(stderr, "embedtune finetune: --neg-source must be ance, bm25 or mix (got '%s')\n", ns); return 2; }
    }
    c.start_expert = et_cli_get(o, n, "--no-start-expert") == NULL;
    c.soft_force = et_cli_get(o, n, "--force") != NULL;
    c.soft_dropout = et_cli_get(o, n, "--dropout") != NULL;
    if (c.soft_dropout && et_cli_get(o, n, "--no-dropout")) { fprintf(stderr, "embedtune finetune: give --dropout or --no-dropout, not both\n"); ok = 0; }
    c.hard_ratio = et_cli_float(o, n, "--hard-ratio", ET_FT_HARD_RATIO, 0, 1, &ok);
    const char *sf = et_cli_get(o, n, "--soft-form");
    if (sf && !strcmp(sf, "list")) t->soft_list = 1;
    else if (sf && !strcmp(sf, "pair")) t->soft_list = 0;
    else if (sf) { fprintf(stderr, "embedtune finetune: --soft-form must be list or pair (got '%s')\n", sf); ok = 0; }
    const char *sr = et_cli_get(o, n, "--soft-range");
    if (sr && !strcmp(sr, "auto")) c.soft_range = ET_FT_RANGE_AUTO;
    else if (sr && !strcmp(sr, "none")) c.soft_range = ET_FT_RANGE_NONE;
    else if (sr) {
        char *e1, *e2;
        t->soft_lo = strtod(sr, &e1);
        t->soft_hi = *e1 == ':' ? strtod(e1 + 1, &e2) : NAN;
        if (e1 == sr || *e1 != ':' || e2 == e1 + 1 || *e2 || !(t->soft_lo >= -1 && t->soft_hi <= 1 && t->soft_lo < t->soft_hi)) {
            fprintf(stderr, "embedtune finetune: --soft-range must be auto, none or LO:HI with -1 <= LO < HI <= 1 (got '%s')\n", sr);
            ok = 0;
        }
        c.soft_range = ET_FT_RANGE_FIXED;
    }
    const char *we = et_cli_get(o, n, "--watch-every");
    c.watch_every = we && !strcmp(we, "auto") ? ET_FT_WATCH_AUTO : we ? (int)et_cli_int(o, n, "--watch-every", 0, 0, INT_MAX, &ok) : ET_FT_WATCH_AUTO;
    c.n_expert_models = et_cli_get_all(o, n, "--expert-model", c.expert_models, ET_FT_MAX_EXPERT_MODELS);
    c.threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    c.quiet = et_cli_get(o, n, "--quiet") != NULL;
    c.seed = (uint64_t)et_cli_int(o, n, "--seed", 42, 0, 0x7fffffffL, &ok);
    t->seed = c.seed;
    t->epochs = (int)et_cli_int(o, n, "--epochs", 0, 1, 100000, &ok);   /* 0: decided (et_finetune_plan) */
    t->lr = et_cli_float(o, n, "--lr", 0, 1e-12, 10, &ok);
    t->batch = (int)et_cli_int(o, n, "--batch", 0, 1, 65536, &ok);
    const char *dv = et_cli_get(o, n, "--dev");
    if (dv && strcmp(dv, "auto") && strcmp(dv, "on") && strcmp(dv, "off")) { fprintf(stderr, "embedtune finetune: --dev must be auto, on or off (got '%s')\n", dv); ok = 0; }
    c.dev = !dv || !strcmp(dv, "auto") ? -1 : !strcmp(dv, "on");
    c.patience = (int)et_cli_int(o, n, "--patience", 2, 1, 1000, &ok);
    c.dev_every = (int)et_cli_int(o, n, "--dev-every", 0, 1, INT_MAX, &ok);
    c.time_budget = et_cli_float(o, n, "--time-budget", 0, 1, 1e9, &ok);
    c.max_train_queries = (int)et_cli_int(o, n, "--max-train-queries", -1, 0, INT_MAX, &ok);
    c.adapt = et_cli_get(o, n, "--adapt") != NULL || et_cli_get(o, n, "--corpus") != NULL;
    c.adapt_pairs = et_cli_int(o, n, "--adapt-pairs", 0, 1, 100000000, &ok);
    t->tau = et_cli_float(o, n, "--tau", 0.05, 1e-6, 1e6, &ok);
    t->lambda = et_cli_float(o, n, "--lambda", 0.1, 0, 1, &ok);
    t->alpha = et_cli_float(o, n, "--alpha", 0.5, 0, 1, &ok);
    t->weight_decay = et_cli_float(o, n, "--weight-decay", 0.01, 0, 10, &ok);
    t->dropout = et_cli_get(o, n, "--no-dropout") == NULL;
    t->exclude_positives = et_cli_get(o, n, "--keep-false-negatives") == NULL;
    t->threads = c.threads;
    { /* MiB -> bytes in 64 bits, clamped for 32-bit size_t (wasm32) */
        uint64_t mb = (uint64_t)et_cli_int(o, n, "--mem-budget", 8192, 1, 1L << 30, &ok) << 20;
        t->mem_budget = mb > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)mb;
    }
    long ml = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    c.max_len = (int)ml;
    t->max_len_q = (int)ml; /* 0: the model's length, as encoding uses (finetune.c) */
    t->max_len_d = (int)ml;
    const char *rg = et_cli_get(o, n, "--mine-range");
    if (rg && (sscanf(rg, "%d:%d", &c.mine_lo, &c.mine_hi) != 2 || c.mine_lo < 0 || c.mine_hi <= c.mine_lo)) {
        fprintf(stderr, "embedtune finetune: --mine-range must be A:B with 0 <= A < B (got '%s')\n", rg);
        ok = 0;
    }
    const char *nm = et_cli_get(o, n, "--neg-mode");
    if (nm && strcmp(nm, "hard") && strcmp(nm, "random")) { fprintf(stderr, "embedtune finetune: --neg-mode must be hard or random (got '%s')\n", nm); ok = 0; }
    c.neg_hard = !nm || !strcmp(nm, "hard");
    const char *wu = et_cli_get(o, n, "--warmup");
    if (wu) {
        char *end;
        double w = strtod(wu, &end);
        if (end == wu || *end || !(w >= 0)) { fprintf(stderr, "embedtune finetune: --warmup: expected steps or a ratio < 1, got '%s'\n", wu); ok = 0; }
        else if (strchr(wu, '.') || strchr(wu, 'e')) {
            if (w >= 1) { fprintf(stderr, "embedtune finetune: --warmup %s: a ratio must be below 1\n", wu); ok = 0; }
            t->warmup_ratio = w;
            t->warmup_steps = -1;
        } else t->warmup_steps = (long)w;
    }
    t->moe_experts = (int)et_cli_int(o, n, "--moe-experts", 0, 0, 64, &ok);
    t->moe_aux_weight = et_cli_float(o, n, "--moe-aux", 0.01, 0, 100, &ok);
    t->moe_jitter = et_cli_float(o, n, "--moe-jitter", 0, 0, 1, &ok);
    const char *ly = et_cli_get(o, n, "--moe-layers");
    if (ly) {
        const char *p = ly;
        while (*p && ok) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v > 63 || (*end && *end != ',')) { fprintf(stderr, "embedtune finetune: --moe-layers: expected comma-separated layer indices 0..63, got '%s'\n", ly); ok = 0; break; }
            t->moe_layer_mask |= 1ull << v;
            p = *end ? end + 1 : end;
        }
    }
    const char *gt = et_cli_get(o, n, "--moe-gate");
    if (gt && et_moe_gate_parse(gt, &t->moe_gate_scale, &err)) { fprintf(stderr, "embedtune finetune: --moe-gate: %s\n", err.msg); ok = 0; }
    const char *to = et_cli_get(o, n, "--train-only");
    if (to && strcmp(to, "moe")) { fprintf(stderr, "embedtune finetune: --train-only: only 'moe' is supported (got '%s')\n", to); ok = 0; }
    t->train_only_moe = to != NULL;
    if (ok && t->train_only_moe && !t->moe_experts) { fprintf(stderr, "embedtune finetune: --train-only moe needs --moe-experts E\n"); ok = 0; }
    if (ok && (ly || gt) && !t->moe_experts) { fprintf(stderr, "embedtune finetune: --moe-layers / --moe-gate need --moe-experts E\n"); ok = 0; }
    if (!ok) return 2;
    static char freeze_buf[64]; /* c.train.freeze points here during the run */
    if (et_cli_freeze_embeddings(o, n, "finetune", t, freeze_buf, sizeof freeze_buf)) return 2;
    static char lora_base[ET_PATH_MAX]; /* c.train.lora_base points here during the run */
    if (et_cli_lora_options(o, n, "finetune", c.model_dir, t, lora_base, sizeof lora_base)) return 2;

    et_cli_passages cps;
    memset(&cps, 0, sizeof cps);
    const char *cp = et_cli_get(o, n, "--corpus");
    if (cp) { /* a BEIR folder / corpus.jsonl (title + text), else texts (JSONL "text" or lines) */
        if (et_cli_read_passages(cp, &cps, &err)) return et_cli_fail("finetune", &err);
        c.corpus = cps.v;
        c.corpus_title_len = cps.title_len;
        c.n_corpus = cps.n;
    }
    c.progress = progress;
    c.progress_user = progress_user;
    c.known = known;
    static et_finetune_result r; /* large (the dev curve) */
    et_status fs = et_finetune_run(&c, &r, &err);
    et_cli_passages_free(&cps);
    if (fs) {
        if (!c.quiet) fputc('\n', stderr);
        return et_cli_fail("finetune", &err);
    }
    if (et_cli_get(o, n, "--merge")) { /* --lora: the tuned adapter merged into the base, a plain folder */
        if (et_cli_merge_adapter(c.model_dir, c.out_dir, et_cli_get(o, n, "--merge"), ET_ST_F32, c.threads, &err))
            return et_cli_fail("finetune", &err);
        if (!c.quiet) fprintf(stderr, "finetune: merged model written to %s\n", et_cli_get(o, n, "--merge"));
    }
    const char *jout = et_cli_get(o, n, "--json");
    FILE *f = jout && !strcmp(jout, "-") ? stderr : stdout;
    row rw[8];
    int nr = rows_of(&r, rw);
    fprintf(f, "\n%s  [%s, loss %s, %lld train %s, %lld held-out %s%s]\n", c.data, r.data_kind, et_train_loss_name(t->loss),
            (long long)r.train_queries, r.kind == ET_FT_EVAL_IR ? "queries" : "rows", (long long)r.test_queries,
            r.kind == ET_FT_EVAL_IR ? "queries" : "pairs", c.eval_path ? ", eval on --eval" : "");
    fprintf(f, "  %-16s %10s %10s %10s %10s\n", "metric", "before", "after", "delta", r.kind == ET_FT_EVAL_IR ? "bm25" : "");
    for (int i = 0; i < nr; i++) {
        fprintf(f, "  %-16s", rw[i].name);
        cell(f, rw[i].b); cell(f, rw[i].a); cell(f, rw[i].a - rw[i].b);
        if (r.kind == ET_FT_EVAL_IR) cell(f, rw[i].bm);
        fputc('\n', f);
    }
    print_hybrid(f, &r, c.out_dir);
    fprintf(f, "  %ld steps, %lld examples, %.1f s training; model -> %s\n", r.steps, (long long)r.train_examples, r.seconds_train, c.out_dir);
    const et_ft_plan *P = &r.plan;
    fprintf(f, "  settings: lr %g (%s); batch %d (%s); epochs %d (%s); dev: %s\n", P->lr, P->why_lr, P->batch, P->why_batch, P->epochs,
            P->why_epochs, P->why_dev);
    if (prec_asked != ET_PREC_FP32) fprintf(f, "  precision: %s (%s)\n", et_train_precision_name(prec_run), prec_why);
    if (r.best_dev >= 0)
        fprintf(f, "  kept the model of step %ld (dev %.4f, starting model %.4f); %s\n", r.dev[r.best_dev].step, r.dev[r.best_dev].score,
                r.dev[0].score, r.stop_reason);
    if (r.mix_n > 0 && r.mix_lambda < 1)
        fprintf(f, "  weights mixed with the starting model: %.1f x tuned + %.1f x start (dev %.4f)\n", r.mix_lambda, 1 - r.mix_lambda,
                r.mix_dev[r.mix_n - 1]);
    else fprintf(f, "  %s\n", r.stop_reason);
    if (r.adapt_pairs)
        fprintf(f, "  corpus adaptation: %lld pairs (%lld inverse-cloze, %lld crops)\n", (long long)r.adapt_pairs, (long long)r.adapt_ict, (long long)r.adapt_crop);
    int rc = 0;
    if (jout) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "data", c.data);
        cJSON_AddStringToObject(root, "kind", r.data_kind);
        if (c.eval_path) cJSON_AddStringToObject(root, "eval", c.eval_path); else cJSON_AddStringToObject(root, "eval", "held-out split");
        cJSON_AddStringToObject(root, "model", c.model_dir);
        cJSON_AddStringToObject(root, "out", c.out_dir);
        cJSON_AddStringToObject(root, "loss", et_train_loss_name(t->loss));
        cJSON_AddStringToObject(root, "eval_kind", r.kind == ET_FT_EVAL_IR ? "retrieval" : "pairs");
        cJSON *st = cJSON_AddObjectToObject(root, "settings");
        cJSON_AddNumberToObject(st, "epochs", P->epochs);
        cJSON_AddNumberToObject(st, "lr", P->lr);
        cJSON_AddNumberToObject(st, "batch", P->batch);
        cJSON *why = cJSON_AddObjectToObject(root, "why"); /* the reasons for the settings */
        cJSON_AddStringToObject(why, "lr", P->why_lr);
        cJSON_AddStringToObject(why, "batch", P->why_batch);
        cJSON_AddStringToObject(why, "epochs", P->why_epochs);
        cJSON_AddStringToObject(why, "dev", P->why_dev);
        cJSON_AddStringToObject(why, "negatives", P->why_negatives);
        cJSON_AddStringToObject(why, "precision", prec_why);
        cJSON_AddStringToObject(st, "precision", et_train_precision_name(prec_run));
        cJSON_AddBoolToObject(st, "dev", P->use_dev);
        cJSON_AddNumberToObject(st, "dev_size", (double)P->dev_size);
        cJSON_AddNumberToObject(st, "dev_every", P->dev_every);
        cJSON_AddNumberToObject(st, "patience", P->patience);
        if (c.time_budget > 0) cJSON_AddNumberToObject(st, "time_budget", c.time_budget);
        if (c.max_train_queries >= 0) cJSON_AddNumberToObject(st, "max_train_queries", c.max_train_queries);
        cJSON_AddBoolToObject(st, "adapt", c.adapt);
        cJSON_AddNumberToObject(st, "negatives", P->negatives);
        cJSON_AddNumberToObject(st, "tau", t->tau);
        cJSON_AddNumberToObject(st, "lambda", t->lambda);
        cJSON_AddNumberToObject(st, "alpha", t->alpha);
        cJSON_AddStringToObject(st, "soft_norm", et_soft_norm_name(t->soft_norm));
        cJSON_AddNumberToObject(st, "hard_ratio", c.hard_ratio);
        if (r.has_soft) {
            cJSON *sr2 = cJSON_AddArrayToObject(st, "soft_range");
            cJSON_AddItemToArray(sr2, cJSON_CreateNumber(r7(r.soft_lo)));
            cJSON_AddItemToArray(sr2, cJSON_CreateNumber(r7(r.soft_hi)));
        }
        cJSON_AddNumberToObject(st, "seed", (double)c.seed);
        cJSON_AddNumberToObject(st, "refresh_every", r.refresh_every);
        cJSON_AddStringToObject(st, "neg_source", et_ft_neg_source_name(c.neg_source));
        cJSON_AddNumberToObject(st, "moe_experts", t->moe_experts);
        if (t->moe_experts) { cJSON_AddStringToObject(st, "moe_gate", et_moe_gate_name(t->moe_gate_scale)); cJSON_AddBoolToObject(st, "train_only_moe", t->train_only_moe); }
        if (t->lora_rank > 0) { /* --lora: the adapter's settings (absent for full fine-tuning) */
            char ts[64];
            et_lora_targets_str(et_train_lora_sites(t), ts, sizeof ts);
            cJSON_AddNumberToObject(st, "lora_r", t->lora_rank);
            cJSON_AddNumberToObject(st, "lora_alpha", et_train_lora_alpha(t));
            cJSON_AddNumberToObject(st, "lora_dropout", t->lora_dropout);
            cJSON_AddStringToObject(st, "lora_targets", ts);
            if (t->lora_rslora) cJSON_AddBoolToObject(st, "lora_rslora", 1);
        }
        cJSON *ex = cJSON_AddArrayToObject(st, "experts");
        for (int i = 0; i < r.n_experts; i++) cJSON_AddItemToArray(ex, cJSON_CreateString(r.expert_names[i]));
        cJSON *cnt = cJSON_AddObjectToObject(root, "counts");
        cJSON_AddNumberToObject(cnt, "train", (double)r.train_queries);
        cJSON_AddNumberToObject(cnt, "test", (double)r.test_queries);
        if (r.kind == ET_FT_EVAL_IR) cJSON_AddNumberToObject(cnt, "eval_passages", (double)r.eval_passages);
        if (r.eval_known) cJSON_AddNumberToObject(cnt, "eval_passages_known", (double)r.eval_known); /* the page's index reused */
        cJSON_AddNumberToObject(cnt, "examples", (double)r.train_examples);
        cJSON_AddNumberToObject(cnt, "steps", (double)r.steps);
        cJSON_AddNumberToObject(cnt, "refreshes", r.refreshes);
        cJSON_AddNumberToObject(cnt, "mined_negatives", (double)r.mine.n_found);
        cJSON_AddNumberToObject(cnt, "negatives_with_query", (double)r.mine.n_with_query);
        cJSON_AddNumberToObject(cnt, "inbatch_candidates", (double)r.fx_cands);
        cJSON_AddNumberToObject(cnt, "inbatch_excluded", (double)r.fx_excluded);
        cJSON_AddNumberToObject(cnt, "own_negatives_positive", (double)r.fx_own);
        cJSON *b = cJSON_AddObjectToObject(root, "before"), *a = cJSON_AddObjectToObject(root, "after");
        cJSON *bm = r.kind == ET_FT_EVAL_IR ? cJSON_AddObjectToObject(root, "bm25") : NULL;
        for (int i = 0; i < nr; i++) {
            jnum(b, rw[i].name, rw[i].b);
            jnum(a, rw[i].name, rw[i].a);
            if (bm && isfinite(rw[i].bm)) jnum(bm, rw[i].name, rw[i].bm);
        }
        json_hybrid(root, &r);
        if (r.adapt_pairs) {
            cJSON *ad = cJSON_AddObjectToObject(cnt, "adaptation");
            cJSON_AddNumberToObject(ad, "pairs", (double)r.adapt_pairs);
            cJSON_AddNumberToObject(ad, "ict", (double)r.adapt_ict);
            cJSON_AddNumberToObject(ad, "crop", (double)r.adapt_crop);
        }
        cJSON *dc = cJSON_AddArrayToObject(root, "dev");
        for (int i = 0; i < r.n_dev; i++) {
            cJSON *pt = cJSON_CreateObject();
            cJSON_AddNumberToObject(pt, "step", (double)r.dev[i].step);
            cJSON_AddNumberToObject(pt, "epoch", r.dev[i].step ? r.dev[i].epoch + 1 : 0);
            jnum(pt, "score", r.dev[i].score);
            jnum(pt, "anisotropy", r.dev[i].anisotropy);
            jnum(pt, "mean_pos_cosine", r.dev[i].mean_pos_cosine);
            if (c.train.matryoshka.n > 0) { /* the score at each listed size ("score" is their weighted mean) */
                cJSON *bd = cJSON_AddObjectToObject(pt, "score_by_dim");
                for (int k = 0; k < c.train.matryoshka.n; k++) {
                    char key[16];
                    snprintf(key, sizeof key, "%d", c.train.matryoshka.dim[k]);
                    jnum(bd, key, r.dev[i].score_dim[k]);
                }
            }
            if (isfinite(r.dev[i].watch_aniso)) {
                jnum(pt, "watch_anisotropy", r.dev[i].watch_aniso);
                jnum(pt, "watch_margin", r.dev[i].watch_margin);
            }
            if (r.dev[i].excluded) cJSON_AddBoolToObject(pt, "excluded", 1);
            if (r.dev[i].collapsed) cJSON_AddBoolToObject(pt, "collapsed", 1);
            jnum(pt, "seconds", r.dev[i].seconds);
            cJSON_AddItemToArray(dc, pt);
        }
        if (r.best_dev >= 0) cJSON_AddNumberToObject(root, "best_dev_step", (double)r.dev[r.best_dev].step);
        cJSON_AddStringToObject(root, "stop_reason", r.stop_reason);
        if (r.mix_n > 0) {
            cJSON *mx = cJSON_AddObjectToObject(root, "weight_mix");
            jnum(mx, "kept", r.mix_lambda);
            cJSON *tr = cJSON_AddArrayToObject(mx, "dev");
            for (int i = 0; i < r.mix_n; i++) {
                cJSON *pt = cJSON_CreateObject();
                jnum(pt, "factor", r.mix_lambdas[i]);
                jnum(pt, "score", r.mix_dev[i]);
                cJSON_AddItemToArray(tr, pt);
            }
        }
        cJSON *sec = cJSON_AddObjectToObject(root, "seconds");
        jnum(sec, "prepare", r.seconds_prepare);
        jnum(sec, "train", r.seconds_train);
        jnum(sec, "eval", r.seconds_eval);
        cJSON *mem = cJSON_AddObjectToObject(root, "memory"); /* MiB: the up-front estimate and the budget */
        jnum(mem, "estimate_mib", r.mem_estimate / 1048576.0);
        jnum(mem, "budget_mib", r.mem_budget / 1048576.0);
        jnum(root, "final_loss", r.final_loss);
        if (r.has_soft) { /* the target report of the guards (before calibration) */
            cJSON *tg = cJSON_AddObjectToObject(root, "soft_targets");
            jnum(tg, "share_clamped", r.soft.share_clamped);
            jnum(tg, "mean_pos", r.soft.mean_pos);
            jnum(tg, "mean_neg", r.soft.mean_neg);
            jnum(tg, "auc", r.soft.auc);
            cJSON_AddNumberToObject(tg, "negatives_replaced", (double)r.soft_neg_replaced);
            cJSON *ec = cJSON_AddObjectToObject(tg, "expert_label_corr");
            for (int i = 0; i < r.n_experts; i++) jnum(ec, r.expert_names[i], r.expert_corr[i]);
        }
        if (r.watches) {
            cJSON *w = cJSON_AddObjectToObject(root, "collapse_watch");
            cJSON_AddNumberToObject(w, "checks", r.watches);
            jnum(w, "anisotropy_start", r.watch_aniso0);
            jnum(w, "anisotropy_last", r.watch_aniso);
            jnum(w, "margin_start", r.watch_margin0);
            jnum(w, "margin_last", r.watch_margin);
        }
        char *s = cJSON_Print(root);
        cJSON_Delete(root);
        if (!s) { fprintf(stderr, "embedtune finetune: out of memory\n"); return 1; }
        if (!strcmp(jout, "-")) { fputs(s, stdout); fputc('\n', stdout); }
        else {
            size_t l = strlen(s);
            s[l] = '\n';
            if (et_write_file_atomic(jout, s, l + 1, &err)) rc = et_cli_fail("finetune", &err);
        }
        free(s);
    }
    return rc;
}

et_command et_cmd_finetune = {"finetune", "Split, mine negatives, score with experts, train, and compare before/after on held-out data.",
     "finetune --model DIR --data BEIRDIR|pairs.jsonl|sts.jsonl --out DIR [--loss infonce|mse|soft1|soft2|soft3|clp] [--json FILE] "
     "[--eval PATH] [--negatives N] [--mine-range A:B] [--refresh-every N|auto] [--expert-model DIR ...] [--epochs N] [--lr X] ...",
     run_finetune, ft_opts, ET_NOPTS(ft_opts)};
