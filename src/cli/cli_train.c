/* cli_train.c - `embedtune train`: fine-tune a model folder on a JSONL file of training pairs. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fileio.h"
#include "lora.h"
#include "moe.h"
#include "safetensors.h"
#include "train.h"

static et_opt train_opts[] = {
    {"--model", NULL, "DIR", "model folder to start from (Hugging Face / sentence-transformers)", NULL},
    {"--train", NULL, "FILE", "training JSONL: {\"query\", \"positive\", \"negatives\": [..], \"negative_queries\": [..], \"label\", \"scores\": [..]}", NULL},
    {"--out", NULL, "DIR", "output folder: the final model + checkpoint-N/ folders + 'latest'", NULL},
    {"--loss", NULL, "NAME", "infonce (default) | mse | soft1 | soft2 | soft3 | clp", NULL},
    {"--epochs", NULL, "N", "passes over the data (default 1)", NULL},
    {"--lr", NULL, "X", "peak learning rate (default 2e-5)", NULL},
    {"--batch", NULL, "N", "queries per micro-batch (default 16)", NULL},
    {"--grad-accum", NULL, "N", "micro-batches per optimizer step (default 1)", NULL},
    {"--max-len", NULL, "L", "max tokens of queries and documents (sets both)", NULL},
    {"--max-len-query", NULL, "L", "max tokens per query / negative query (default 64)", NULL},
    {"--max-len-doc", NULL, "L", "max tokens per document (default: the model's max_seq_length or 256)", NULL},
    {"--warmup", NULL, "N|R", "warm-up: N steps, or a ratio R < 1 of all steps, e.g. 0.1 (default 0.1)", NULL},
    {"--weight-decay", NULL, "X", "AdamW weight decay, not on biases/LayerNorm (default 0.01)", NULL},
    {"--max-grad-norm", NULL, "X", "gradient clipping norm, 0 = off (default 1.0)", NULL},
    {"--seed", NULL, "N", "data order and dropout seed (default 42)", NULL},
    {"--tau", NULL, "X", "infonce/clp temperature (default 0.05; the CLP paper uses 0.02)", NULL},
    {"--symmetric", NULL, NULL, "infonce: also the positive->query direction (MultipleNegativesSymmetricRankingLoss)", NULL},
    {"--keep-false-negatives", NULL, NULL, "infonce/clp/soft list form: keep in-batch candidates that are another positive of the row's query (same query text) in its softmax (default: left out)", NULL},
    {"--per-query", NULL, NULL, "infonce/clp: only a query's own positive and negatives are candidates (no in-batch)", NULL},
    {"--negatives", NULL, "G", "hard negatives per query (default: the fewest any example has)", NULL},
    {"--lambda", NULL, "X", "clp penalty weight (default 0.1)", NULL},
    {"--clp-pen", NULL, "FORM", "clp penalty: mean (authors' code, default) | sum (paper formula)", NULL},
    {"--soft-norm", NULL, "NORM", "soft1-3: per-expert score normalisation none (default) | minmax | rank", NULL},
    {"--alpha", NULL, "X", "soft2 blend weight of the hard label (default 0.5)", NULL},
    {"--matryoshka", NULL, "DIMS", "Matryoshka loss (sentence-transformers MatryoshkaLoss): the loss summed over the embedding cut to each "
                                   "listed size, e.g. 384,128,64 or with weights 384:1,128:1,64:0.5 (default off); use the vectors "
                                   "cut to a listed size with encode/search/eval --dim", NULL},
    {"--freeze", NULL, "PREFIXES", "comma-separated tensor-name prefixes to freeze, e.g. embeddings.", NULL},
    {"--freeze-embeddings", NULL, NULL, "freeze the word-embedding table: no gradient and no AdamW state for it (for "
                                        "large vocabularies: 250k rows x 384 = 1.1 GiB of gradient + AdamW saved)", NULL},
    ET_CLI_LORA_OPTS,
    {"--no-dropout", NULL, NULL, "train without dropout", NULL},
    {"--packed", NULL, NULL, "run each group packed, without padded tokens (the same gradients to float rounding, other dropout draws; faster when lengths vary)", NULL},
    {"--moe-experts", NULL, "E", "mixture of experts (CLP paper): turn intermediate.dense into E experts + a top-1 router "
                                  "(a dense model is converted, every expert a copy; an MoE model must have E)", NULL},
    {"--moe-layers", NULL, "LIST", "layers made MoE on conversion, e.g. 0,2,5 (default all)", NULL},
    {"--train-only", NULL, "moe", "train only the routers and experts (the paper's setting); everything else frozen", NULL},
    {"--moe-gate", NULL, "MODE", "switch (default: output * router probability, Switch Transformer) | unscaled (the "
                                "authors' code: the router never learns) | ste (recommended for a pretrained model: "
                                "forward unscaled, so the converted model starts identical to the dense one; the "
                                "router gets the Switch gradient straight-through)", NULL},
    {"--moe-aux", NULL, "X", "weight of the Switch load-balancing loss (default 0.01; 0 = off)", NULL},
    {"--moe-jitter", NULL, "X", "router input jitter eps while training (default 0)", NULL},
    {"--save-every", NULL, "N", "checkpoint every N optimizer steps (default 0: only at the end)", NULL},
    {"--keep", NULL, "N", "checkpoints to keep (default 2)", NULL},
    {"--resume", NULL, NULL, "continue from --out's latest checkpoint (same settings and data required)", NULL},
    {"--mem-budget", NULL, "MB", "refuse to start above this much memory (default 8192)", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
    {"--precision", NULL, "P", "fp32 (default) | bf16: the Linear layers' GEMMs with bf16 operands and fp32 "
                               "accumulation (fp32 weights, LayerNorm, softmax, loss); needs AVX512_BF16, refused "
                               "elsewhere | auto: bf16 where the CPU has AVX512_BF16, else fp32", NULL},
    {"--log", NULL, "FILE", "per-step JSONL log: step, epoch, loss, lr, grad_norm, examples_per_s, elapsed "
                            "(MoE: moe_aux, moe_layers, moe_frac = share of real tokens per expert)", NULL},
    {"--quiet", "-q", NULL, "no progress line on stderr", NULL},
};

typedef struct {
    double t0, last, ema;
    int n, quiet;
} train_progress;

static void fmt_time(char *b, size_t n, double s) {
    if (s >= 3600) snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(b, n, "%.0fs", s);
}

static int on_step(void *user, const et_train_stats *s) {
    train_progress *p = user;
    p->n++;
    p->ema = 0.9 * p->ema + 0.1 * s->loss;
    double sm = p->ema / (1 - pow(0.9, p->n)); /* bias-corrected moving average */
    if (p->quiet) return 0;
    double t = et_now_s();
    if (s->step < s->total_steps && t - p->last < 0.2) return 0;
    p->last = t;
    double per_step = s->elapsed_s / p->n;
    char eta[32];
    fmt_time(eta, sizeof eta, per_step * (double)(s->total_steps - s->step));
    fprintf(stderr, "\rtrain: step %ld/%ld  epoch %d  loss %.4f  lr %.2e  |g| %.3f  %.1f ex/s  ETA %s   ", s->step,
            s->total_steps, s->epoch + 1, sm, s->lr, s->grad_norm, s->examples_per_s, eta);
    if (s->step == s->total_steps) fputc('\n', stderr);
    return 0;
}

/* "0,2,5" | "all" -> mask (0 = all); 0 on success, else a message on stderr */
static int parse_layers(const char *s, uint64_t *mask) {
    *mask = 0;
    if (!strcmp(s, "all")) return 0;
    const char *p = s;
    while (*p) {
        char *end;
        long l = strtol(p, &end, 10);
        if (end == p || l < 0 || l >= 64 || (*end && *end != ',')) {
            fprintf(stderr, "embedtune train: --moe-layers: expected layer indices like 0,2,5 or 'all', got '%s'\n", s);
            return 1;
        }
        *mask |= (uint64_t)1 << l;
        p = *end ? end + 1 : end;
    }
    if (!*mask) { fprintf(stderr, "embedtune train: --moe-layers: no layer given\n"); return 1; }
    return 0;
}

/* the MoE options, once the model is loaded (an MoE model gives the defaults of the unset ones) */
static int moe_options(et_opt *o, int n, const et_bert_config *mc, et_train_cfg *c) {
    const char *ex = et_cli_get(o, n, "--moe-experts"), *ly = et_cli_get(o, n, "--moe-layers");
    const char *only = et_cli_get(o, n, "--train-only"), *gate = et_cli_get(o, n, "--moe-gate");
    const char *aux = et_cli_get(o, n, "--moe-aux"), *jit = et_cli_get(o, n, "--moe-jitter");
    int ok = 1;
    if (only) {
        if (strcmp(only, "moe")) { fprintf(stderr, "embedtune train: --train-only: only 'moe' is supported, got '%s'\n", only); return 2; }
        c->train_only_moe = 1;
    }
    if (!ex && !ly && !gate && !aux && !jit) return 0; /* the model as it is */
    if (mc->moe_experts > 0) { /* defaults: the model's own settings */
        c->moe_experts = mc->moe_experts;
        c->moe_gate_scale = mc->moe_gate_scale;
        c->moe_aux_weight = mc->moe_aux_weight;
        c->moe_jitter = mc->moe_jitter;
    } else if (!ex) {
        fprintf(stderr, "embedtune train: the model is dense: --moe-layers/--moe-gate/--moe-aux/--moe-jitter need --moe-experts E\n");
        return 2;
    }
    if (ex) c->moe_experts = (int)et_cli_int(o, n, "--moe-experts", 0, 1, ET_MOE_MAX_EXPERTS, &ok);
    if (ly && parse_layers(ly, &c->moe_layer_mask)) return 2;
    et_error err = {0};
    if (gate && et_moe_gate_parse(gate, &c->moe_gate_scale, &err)) { fprintf(stderr, "embedtune train: --moe-gate: %s\n", err.msg); return 2; }
    if (aux) c->moe_aux_weight = et_cli_float(o, n, "--moe-aux", 0.01, 0, 1e5, &ok);
    if (jit) c->moe_jitter = et_cli_float(o, n, "--moe-jitter", 0, 0, 0.999, &ok);
    return ok ? 0 : 2;
}

static void moe_summary(const et_trainer *tr) {
    float frac[ET_MAX_LAYERS * ET_MOE_MAX_EXPERTS];
    int ids[ET_MAX_LAYERS], E;
    int nl = et_trainer_moe_summary(tr, frac, ids, &E);
    if (nl <= 0) return;
    fprintf(stderr, "train: MoE routing over this run (share of real tokens per expert):");
    float worst = 1;
    for (int k = 0; k < nl; k++) {
        fprintf(stderr, "%s L%d ", k % 6 ? "" : "\n ", ids[k]);
        for (int e = 0; e < E; e++) {
            float f = frac[(size_t)k * E + e];
            fprintf(stderr, "%s%.2f", e ? "/" : "", f);
            if (f < worst) worst = f;
        }
    }
    fprintf(stderr, "\n  least-used expert: %.1f%% of the tokens of its layer (even split: %.1f%%)\n", 100.0 * worst, 100.0 / E);
}

static int run_train(et_opt *o, int n) {
    if (!et_cli_need(o, n, "train", "--model") || !et_cli_need(o, n, "train", "--train") || !et_cli_need(o, n, "train", "--out"))
        return 2;
    et_error err = {0};
    et_train_cfg c;
    et_train_cfg_default(&c);
    int ok = 1;
    if (et_cli_get(o, n, "--loss") && et_train_loss_parse(et_cli_get(o, n, "--loss"), &c.loss, &err)) {
        fprintf(stderr, "embedtune train: --loss: %s\n", err.msg);
        return 2;
    }
    if (et_cli_get(o, n, "--soft-norm") && et_soft_norm_parse(et_cli_get(o, n, "--soft-norm"), &c.soft_norm, &err)) {
        fprintf(stderr, "embedtune train: --soft-norm: %s\n", err.msg);
        return 2;
    }
    char prec_why[200] = "";
    et_precision prec_run;
    if (et_cli_get(o, n, "--precision") && et_train_precision_parse(et_cli_get(o, n, "--precision"), &c.precision, &err)) {
        fprintf(stderr, "embedtune train: --precision: %s\n", err.msg);
        return 2;
    }
    if (et_train_precision_resolve(c.precision, &prec_run, prec_why, sizeof prec_why, &err)) {
        fprintf(stderr, "embedtune train: %s\n", err.msg);
        return 2;
    }
    et_precision prec_asked = c.precision;
    c.precision = prec_run; /* auto is decided once (it times the kernels): the trainer gets the choice */
    if (et_cli_get(o, n, "--matryoshka") && et_matryoshka_parse(et_cli_get(o, n, "--matryoshka"), &c.matryoshka, &err)) {
        fprintf(stderr, "embedtune train: --matryoshka: %s\n", err.msg);
        return 2;
    }
    const char *pen = et_cli_get(o, n, "--clp-pen");
    if (pen) {
        if (!strcmp(pen, "mean")) c.pen = ET_CLP_PEN_MEAN;
        else if (!strcmp(pen, "sum")) c.pen = ET_CLP_PEN_SUM;
        else { fprintf(stderr, "embedtune train: --clp-pen: expected mean or sum, got '%s'\n", pen); return 2; }
    }
    c.epochs = (int)et_cli_int(o, n, "--epochs", 1, 1, 100000, &ok);
    c.lr = et_cli_float(o, n, "--lr", 2e-5, 0, 10, &ok);
    c.batch = (int)et_cli_int(o, n, "--batch", 16, 1, 65536, &ok);
    c.grad_accum = (int)et_cli_int(o, n, "--grad-accum", 1, 1, 65536, &ok);
    c.weight_decay = et_cli_float(o, n, "--weight-decay", 0.01, 0, 10, &ok);
    c.max_grad_norm = et_cli_float(o, n, "--max-grad-norm", 1.0, 0, 1e9, &ok);
    c.seed = (uint64_t)et_cli_int(o, n, "--seed", 42, 0, 0x7fffffffL, &ok);
    c.tau = et_cli_float(o, n, "--tau", 0.05, 1e-6, 1e6, &ok);
    c.lambda = et_cli_float(o, n, "--lambda", 0.1, 0, 1, &ok);
    c.alpha = et_cli_float(o, n, "--alpha", 0.5, 0, 1, &ok);
    c.negatives = (int)et_cli_int(o, n, "--negatives", -1, 0, 4096, &ok);
    c.save_every = et_cli_int(o, n, "--save-every", 0, 0, (long)((1LL << 40) > LONG_MAX ? LONG_MAX : (1LL << 40)), &ok);
    c.keep_checkpoints = (int)et_cli_int(o, n, "--keep", 2, 1, 1000000, &ok);
    { /* MiB -> bytes in 64 bits, clamped for 32-bit size_t (wasm32) */
        uint64_t mb = (uint64_t)et_cli_int(o, n, "--mem-budget", 8192, 1, 1L << 30, &ok) << 20;
        c.mem_budget = mb > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)mb;
    }
    int threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    long ml = et_cli_int(o, n, "--max-len", 0, 2, 1 << 20, &ok);
    long mlq = et_cli_int(o, n, "--max-len-query", ml ? ml : 64, 2, 1 << 20, &ok);
    long mld = et_cli_int(o, n, "--max-len-doc", ml, 2, 1 << 20, &ok);
    const char *wu = et_cli_get(o, n, "--warmup");
    if (wu) {
        char *end;
        double w = strtod(wu, &end);
        if (end == wu || *end || !(w >= 0)) { fprintf(stderr, "embedtune train: --warmup: expected steps or a ratio < 1, got '%s'\n", wu); ok = 0; }
        else if (strchr(wu, '.') || strchr(wu, 'e')) {
            if (w >= 1) { fprintf(stderr, "embedtune train: --warmup %s: a ratio must be below 1 (give whole steps without a '.')\n", wu); ok = 0; }
            c.warmup_ratio = w;
            c.warmup_steps = -1;
        } else c.warmup_steps = (long)w;
    }
    if (!ok) return 2;
    c.symmetric = et_cli_get(o, n, "--symmetric") != NULL;
    c.in_batch = et_cli_get(o, n, "--per-query") == NULL;
    c.exclude_positives = et_cli_get(o, n, "--keep-false-negatives") == NULL;
    c.dropout = et_cli_get(o, n, "--no-dropout") == NULL;
    c.packed = et_cli_get(o, n, "--packed") != NULL;
    c.freeze = et_cli_get(o, n, "--freeze");
    char freeze_buf[1024];
    if (et_cli_freeze_embeddings(o, n, "train", &c, freeze_buf, sizeof freeze_buf)) return 2;
    c.out_dir = et_cli_get(o, n, "--out");
    c.log_path = et_cli_get(o, n, "--log");
    int resume = et_cli_get(o, n, "--resume") != NULL;
    train_progress tp = {et_now_s(), 0, 0, 0, et_cli_get(o, n, "--quiet") != NULL};
    c.progress = on_step;
    c.user = &tp;

    char latest[ET_PATH_MAX];
    if (et_path_join(latest, sizeof latest, c.out_dir, "latest", &err)) return et_cli_fail("train", &err);
    int have_ckpt = et_file_exists(latest);
    if (have_ckpt && !resume) {
        fprintf(stderr, "embedtune train: %s already holds a training run (%s): add --resume to continue it, or choose another --out\n",
                c.out_dir, latest);
        return 2;
    }
    if (resume && !have_ckpt) fprintf(stderr, "embedtune train: no checkpoint in %s yet: starting from the beginning\n", c.out_dir);

    et_hf_model L;
    if (et_cli_load(et_cli_get(o, n, "--model"), threads, &L, &err)) { et_hf_model_free(&L); return et_cli_fail("train", &err); }
    c.vocab_path = L.tok_path; /* the tokenizer file the checkpoints copy */
    c.max_seq_length = L.info.max_seq_length;
    c.do_lower_case = L.info.do_lower_case;
    c.strip_accents = L.info.strip_accents;
    c.max_len_q = (int)mlq;
    c.max_len_d = mld ? (int)mld : et_hf_model_max_len(&L);
    if (moe_options(o, n, &L.model.cfg, &c)) { et_hf_model_free(&L); return 2; }
    char lora_base[ET_PATH_MAX];
    if (et_cli_lora_options(o, n, "train", et_cli_get(o, n, "--model"), &c, lora_base, sizeof lora_base)) { et_hf_model_free(&L); return 2; }

    et_train_data d;
    int rc = 0;
    if (et_train_data_read(et_cli_get(o, n, "--train"), &d, &err)) { et_hf_model_free(&L); return et_cli_fail("train", &err); }
    et_trainer tr;
    if (et_trainer_init(&tr, &c, &L.model, L.pool, &d, &err)) {
        rc = et_cli_fail("train", &err);
        goto out;
    }
    if (resume && have_ckpt) {
        if (et_trainer_resume(&tr, &err)) { rc = et_cli_fail("train", &err); goto out_tr; }
        if (!tp.quiet) fprintf(stderr, "train: resumed at step %ld of %ld\n", et_trainer_step(&tr), tr.total_steps);
    }
    if (!tp.quiet)
        fprintf(stderr, "train: %d examples, loss %s, %ld steps (%d epoch%s, batch %d x %d accumulated, %d negatives), warm-up %ld, "
                        "lr %g, %.0f MiB planned\n",
                d.n, et_train_loss_name(c.loss), tr.total_steps, c.epochs, c.epochs > 1 ? "s" : "", c.batch, c.grad_accum,
                tr.G, tr.warmup, c.lr, tr.bytes_planned / 1048576.0);
    if (!tp.quiet) {
        char ts[64] = "";
        if (c.lora_rank > 0) et_lora_targets_str(L.model.cfg.lora_sites, ts, sizeof ts);
        if (c.lora_rank > 0)
            fprintf(stderr, "train: LoRA r %d, alpha %g (scale %g), dropout %g, on %s: %zu trainable parameters of %zu (base frozen)\n",
                    c.lora_rank, c.lora_alpha, (double)L.model.cfg.lora_scale, c.lora_dropout, ts, tr.train_n, L.model.n_params);
        fprintf(stderr, "train: parameters + gradients + AdamW state: %.2f MiB (gradients and AdamW for %zu floats)\n",
                tr.bytes_state / 1048576.0, tr.train_n);
    }
    if (!tp.quiet && prec_asked != ET_PREC_FP32)
        fprintf(stderr, "train: precision %s (%s)\n", et_train_precision_name(prec_run), prec_why);
    if (!tp.quiet && L.model.cfg.moe_experts > 0) {
        const et_bert_config *mc = &L.model.cfg;
        size_t moe = 0;
        for (int i = 0; i < L.model.n_tensors; i++)
            if (et_bert_is_moe_tensor(L.model.tensors[i].name)) moe += L.model.tensors[i].numel;
        fprintf(stderr, "train: MoE: %d experts in %d of %d layers, gate %s, balance loss %g, jitter %g; %s (%.2fM MoE parameters of %.2fM)\n",
                mc->moe_experts, tr.moe_nl, mc->num_layers, et_moe_gate_name(mc->moe_gate_scale), (double)mc->moe_aux_weight,
                (double)mc->moe_jitter, c.train_only_moe ? "training only the MoE parameters" : "training all parameters",
                moe / 1e6, L.model.n_params / 1e6);
    }
    if (et_trainer_run(&tr, L.tok, &err)) {
        if (!tp.quiet) fputc('\n', stderr);
        rc = et_cli_fail("train", &err);
        goto out_tr;
    }
    if (!tp.quiet) moe_summary(&tr);
    if (!tp.quiet) fprintf(stderr, "train: done, %s saved to %s\n", c.lora_rank > 0 ? "LoRA adapter" : "model", c.out_dir);
    if (et_cli_get(o, n, "--merge")) {
        if (et_cli_merge_adapter(et_cli_get(o, n, "--model"), c.out_dir, et_cli_get(o, n, "--merge"), ET_ST_F32, threads, &err)) {
            rc = et_cli_fail("train", &err);
            goto out_tr;
        }
        if (!tp.quiet) fprintf(stderr, "train: merged model written to %s\n", et_cli_get(o, n, "--merge"));
    }
out_tr:
    et_trainer_free(&tr);
out:
    et_train_data_free(&d);
    et_hf_model_free(&L);
    return rc;
}

et_command et_cmd_train = {"train", "Fine-tune a model on training pairs (InfoNCE, cosine MSE, soft labels, CLP).",
     "train --model DIR --train pairs.jsonl --out DIR [--loss infonce|mse|soft1|soft2|soft3|clp] [--epochs N] [--lr X] [--batch N] "
     "[--moe-experts E [--train-only moe] [--moe-gate switch|unscaled|ste]] [--lora R [--lora-targets q,v] [--merge DIR]] ...",
     run_train, train_opts, ET_NOPTS(train_opts)};
