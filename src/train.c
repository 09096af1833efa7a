/* train.c - see train.h */
#include "train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data.h"
#include "fileio.h"
#include "hf.h"
#include "kernels.h"
#include "lora.h"
#include "moe.h"
#include "rng.h"
#include "util.h"

/* ------------------------------------------------------------------ small helpers */

/* a byte count clamped to what size_t can hold (wasm32: (size_t)1 << 34 would wrap to 0) */
static size_t size_cap(uint64_t v) { return v > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)v; }

static const char *loss_names[] = {"infonce", "mse", "soft1", "soft2", "soft3", "clp"};

et_status et_train_loss_parse(const char *s, et_train_loss *out, et_error *err) {
    for (int i = 0; i < 6; i++)
        if (s && !strcmp(s, loss_names[i])) { *out = (et_train_loss)i; return ET_OK; }
    return et_fail(err, ET_ERR_ARG, "unknown loss '%s' (infonce, mse, soft1, soft2, soft3, clp)", s ? s : "(null)");
}

const char *et_train_loss_name(et_train_loss l) { return (unsigned)l < 6 ? loss_names[l] : "?"; }

static const char *const prec_names[3] = {"fp32", "bf16", "auto"};

et_status et_train_precision_parse(const char *s, et_precision *out, et_error *err) {
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, prec_names[i])) { *out = (et_precision)i; return ET_OK; }
    return et_fail(err, ET_ERR_ARG, "unknown precision '%s' (fp32, bf16, auto)", s ? s : "(null)");
}

const char *et_train_precision_name(et_precision p) { return (unsigned)p < 3 ? prec_names[p] : "?"; }

et_status et_train_precision_resolve(et_precision asked, et_precision *out, char *why, size_t cap, et_error *err) {
#if defined(__wasm__)
    static const char no_bf16[] = "WebAssembly has no bf16 instructions";
#else
    static const char no_bf16[] = "this CPU has no AVX512_BF16 (VDPBF16PS) and no AMX-BF16";
#endif
    char tmp[200];
    if (!why) { why = tmp; cap = sizeof tmp; }
    if (asked == ET_PREC_FP32) {
        *out = ET_PREC_FP32;
        snprintf(why, cap, "fp32 asked for");
    } else if (asked == ET_PREC_BF16) {
        if (!et_bf16_native())
            return et_fail(err, ET_ERR_ARG, "--precision bf16: %s; use --precision fp32 (or auto, which trains in "
                                            "fp32 here)", no_bf16);
        *out = ET_PREC_BF16;
        snprintf(why, cap, "bf16 asked for (%s, fp32 accumulation)", et_bf16_name());
    } else if (asked == ET_PREC_AUTO) {
        /* bf16 only where it is faster: VDPBF16PS does twice the multiply-adds of an fp32 FMA per instruction,
         * but not every CPU issues it as often (measured, not guessed from the CPU's name) */
        double sp = et_bf16_native() ? et_bf16_speedup() : 0.0;
        /* AMX's bf16 (TDPBF16PS) is several times the fp32 kernel, but auto takes it only once the fine-tuning
         * quality table (bf16 vs fp32 within 0.005 held-out nDCG@10 on the three sets, tools/bf16_finetune_table.sh)
         * has been confirmed on it; until then --precision bf16 asks for it */
        const int amx = !strcmp(et_bf16_name(), "amx-bf16");
        *out = sp >= ET_BF16_AUTO_SPEEDUP && !amx ? ET_PREC_BF16 : ET_PREC_FP32;
        if (!et_bf16_native()) snprintf(why, cap, "auto: %s, so fp32", no_bf16);
        else if (amx && sp >= ET_BF16_AUTO_SPEEDUP)
            snprintf(why, cap, "auto: the bf16 GEMM kernel (amx-bf16) runs at %.2fx the fp32 one on this CPU, but its "
                               "fine-tuning quality is not confirmed yet, so fp32 (--precision bf16 uses it)", sp);
        else snprintf(why, cap, "auto: the bf16 GEMM kernel (%s) runs at %.2fx the fp32 one on this CPU, %s", et_bf16_name(),
                      sp, *out == ET_PREC_BF16 ? "so bf16" : "below the 1.2x that pays for bf16's rounding, so fp32");
    } else {
        return et_fail(err, ET_ERR_ARG, "unknown precision %d", (int)asked);
    }
    return ET_OK;
}

static int is_soft(et_train_loss l) { return l == ET_TRAIN_SOFT1 || l == ET_TRAIN_SOFT2 || l == ET_TRAIN_SOFT3; }
static int is_pairwise(et_train_loss l) { return l == ET_TRAIN_MSE || is_soft(l); }
/* the loss trains on single (query, passage) rows: mse, and the soft losses in their pair form */
static int pair_rows(const et_train_cfg *c) { return c->loss == ET_TRAIN_MSE || (is_soft(c->loss) && !c->soft_list); }
static int soft_list(const et_train_cfg *c) { return is_soft(c->loss) && c->soft_list; }

#define FNV0 ET_FNV1A64_INIT

static uint64_t mix64(uint64_t x) { /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void et_train_cfg_default(et_train_cfg *c) {
    memset(c, 0, sizeof *c);
    c->loss = ET_TRAIN_INFONCE;
    c->tau = 0.05;
    c->in_batch = 1;
    c->exclude_positives = 1;
    c->lambda = 0.1;
    c->pen = ET_CLP_PEN_MEAN;
    c->soft_norm = ET_SNORM_NONE;
    c->alpha = 0.5;
    c->soft_hi = 1.0;
    c->lr = 2e-5;
    c->weight_decay = 0.01;
    c->adam_eps = 1e-8;
    c->warmup_steps = -1;
    c->warmup_ratio = 0.1;
    c->epochs = 1;
    c->batch = 16;
    c->grad_accum = 1;
    c->max_grad_norm = 1.0;
    c->max_len_q = 64;
    c->max_len_d = 256;
    c->negatives = -1;
    c->seed = 42;
    c->dropout = 1;
    c->keep_checkpoints = 2;
    c->mem_budget = size_cap((uint64_t)8 << 30);
    c->do_lower_case = -1;
    c->moe_gate_scale = ET_MOE_GATE_SWITCH;
    c->moe_aux_weight = 0.01;
    c->lora_dropout = 0.1;
    c->act_checkpoint = -1;
}

/* ------------------------------------------------------------------ data */

static void ex_free(et_train_example *e) {
    free(e->query); free(e->positive);
    for (int i = 0; i < e->n_neg; i++) free(e->negatives[i]);
    for (int i = 0; i < e->n_negq; i++) free(e->neg_queries[i]);
    free(e->negatives); free(e->neg_queries); free(e->scores);
}

static uint64_t hash_str(uint64_t h, const char *s) {
    if (!s) return et_fnv1a64(h, "\xff", 1); /* never a byte of UTF-8 text: NULL differs from "" */
    return et_fnv1a64(h, s, strlen(s) + 1);
}

uint64_t et_train_data_hash(const et_train_data *d) {
    uint64_t h = FNV0;
    int32_t n = d->n;
    h = et_fnv1a64(h, &n, sizeof n);
    for (int i = 0; i < d->n; i++) {
        const et_train_example *e = &d->ex[i];
        int32_t k[4] = {e->n_neg, e->n_negq, e->has_label, e->n_scores};
        h = et_fnv1a64(h, k, sizeof k);
        h = hash_str(h, e->query);
        h = hash_str(h, e->positive);
        for (int j = 0; j < e->n_neg; j++) h = hash_str(h, e->negatives[j]);
        for (int j = 0; j < e->n_negq; j++) h = hash_str(h, e->neg_queries[j]);
        if (e->has_label) h = et_fnv1a64(h, &e->label, sizeof e->label);
        if (e->n_scores) h = et_fnv1a64(h, e->scores, sizeof(float) * (size_t)e->n_scores);
    }
    return h;
}

void et_train_data_free(et_train_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) ex_free(&d->ex[i]);
    free(d->ex);
    memset(d, 0, sizeof *d);
}

/* The rows of the ONE pairs reader (data.h: JSONL, CSV or TSV, strict UTF-8, file:line errors) as examples. */
et_status et_train_data_read(const char *path, et_train_data *d, et_error *err) {
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s", path);
    et_pairs P;
    et_status st = et_pairs_read(path, NULL, &P, NULL, err);
    if (st) return st;
    if (P.n > INT32_MAX / 2) { et_pairs_free(&P); return et_fail(err, ET_ERR_UNSUPPORTED, "%s: more than 2^30 training examples", path); }
    d->ex = calloc((size_t)P.n, sizeof *d->ex);
    if (!d->ex) { et_pairs_free(&P); return et_fail(err, ET_ERR_NOMEM, "%s: out of memory for %lld examples", path, (long long)P.n); }
    for (int64_t i = 0; i < P.n && !st; i++) {
        et_train_example *e = &d->ex[d->n++]; /* freed by et_train_data_free even when partially filled */
        int64_t n0 = P.neg_off[i], nn = P.neg_off[i + 1] - n0;
        e->line = (int)(P.line[i] < INT32_MAX ? P.line[i] : INT32_MAX);
        e->has_label = P.has_label;
        e->label = P.label[i];
        int ok = (e->query = strdup(P.query[i])) && (e->positive = strdup(P.passage[i]));
        if (ok && nn) {
            ok = (e->negatives = calloc((size_t)nn, sizeof(char *))) != NULL;
            if (ok) e->n_neg = (int)nn;
            for (int64_t j = 0; ok && j < nn; j++) ok = (e->negatives[j] = strdup(P.neg[n0 + j])) != NULL;
            if (ok && P.neg_query) { /* aligned with negatives; null or "" = no own query */
                ok = (e->neg_queries = calloc((size_t)nn, sizeof(char *))) != NULL;
                if (ok) e->n_negq = (int)nn;
                for (int64_t j = 0; ok && j < nn; j++) {
                    const char *q = P.neg_query[n0 + j];
                    if (q && q[0]) ok = (e->neg_queries[j] = strdup(q)) != NULL;
                }
            }
        }
        if (ok && P.K) {
            ok = (e->scores = malloc(sizeof(float) * (size_t)P.K)) != NULL;
            if (ok) { e->n_scores = P.K; memcpy(e->scores, P.scores + i * P.K, sizeof(float) * (size_t)P.K); }
        }
        if (!ok) st = et_fail(err, ET_ERR_NOMEM, "%s:%d: out of memory copying the example", path, e->line);
    }
    et_pairs_free(&P);
    if (st) et_train_data_free(d);
    else d->hash = et_train_data_hash(d);
    return st;
}

/* ------------------------------------------------------------------ init */

static int param_slots(et_bert_params *p, int L, float ***s) {
    int n = 0;
    s[n++] = &p->wte; s[n++] = &p->wpe; s[n++] = &p->wtt; s[n++] = &p->emb_ln_w; s[n++] = &p->emb_ln_b;
    for (int l = 0; l < L; l++) {
        et_bert_layer_params *y = &p->layer[l];
        float **f[] = {&y->q_w, &y->q_b, &y->k_w, &y->k_b, &y->v_w, &y->v_b, &y->ao_w, &y->ao_b,
                       &y->ln1_w, &y->ln1_b, &y->i_w, &y->i_b, &y->o_w, &y->o_b, &y->ln2_w, &y->ln2_b};
        for (int i = 0; i < 16; i++) s[n++] = f[i];
        s[n++] = &y->moe_gate; s[n++] = &y->moe_w; s[n++] = &y->moe_b;
    }
    s[n++] = &p->pool_w; s[n++] = &p->pool_b;
    return n;
}

static int frozen_name(const char *freeze, const char *name) {
    if (!strncmp(name, "pooler.", 7)) return 1; /* unused by sentence embeddings: no gradient, no update */
    if (!freeze) return 0;
    const char *nm = strncmp(name, "bert.", 5) ? name : name + 5;
    for (const char *p = freeze; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *q = p;
        if (n >= 5 && !strncmp(q, "bert.", 5)) { q += 5; n -= 5; }
        if (n > 0 && !strncmp(nm, q, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* frozen while training with cfg (no LoRA): frozen_name, or not an MoE tensor when only the MoE parameters train */
static int tensor_frozen(const et_train_cfg *c, const char *name) {
    return frozen_name(c->freeze, name) || (c->train_only_moe && !et_bert_is_moe_tensor(name));
}

/* The first float of the parameter buffer that gets a gradient (and AdamW moments): every tensor before it is frozen.
 * A tensor's gradient range starts where its et_bert_params pointer does, and the experts of an MoE layer share one
 * pointer (moe_w / moe_b), so a trainable "...experts.J.weight" starts at "...experts.0.weight". All frozen: total. */
static size_t grad_start(const et_train_cfg *c, const et_tensor_view *t, int nt, size_t total) {
    size_t lo = total;
    for (int i = 0; i < nt; i++) {
        if (tensor_frozen(c, t[i].name) || t[i].offset >= lo) continue;
        size_t off = t[i].offset;
        const char *x = strstr(t[i].name, ".experts.");
        if (x) {
            const char *d = x + 9, *e = d;
            while (*e >= '0' && *e <= '9') e++;
            char first[ET_NAME_MAX + 8];
            snprintf(first, sizeof first, "%.*s0%s", (int)(d - t[i].name), t[i].name, e);
            for (int j = 0; j < nt; j++)
                if (!strcmp(t[j].name, first)) { off = t[j].offset; break; }
        }
        if (off < lo) lo = off;
    }
    return lo;
}

/* the model's config as et_trainer_init will train it: converted to MoE (prepare_moe) or with LoRA adapters attached
 * (prepare_lora), which change the parameters and the activations */
static et_bert_config trained_cfg(const et_train_cfg *c, const et_bert_config *mc) {
    et_bert_config cc = *mc;
    if (c->lora_rank > 0 && cc.lora_rank == 0) {
        cc.lora_rank = c->lora_rank;
        cc.lora_sites = et_train_lora_sites(c);
        cc.lora_dropout = (float)c->lora_dropout;
    } else if (c->lora_rank <= 0 && c->moe_experts > 0 && cc.moe_experts == 0) {
        cc.moe_experts = c->moe_experts;
        cc.moe_layer_mask = c->moe_layer_mask;
    }
    cc.act_checkpoint = et_train_act_checkpoint(c, mc);
    return cc;
}

int et_train_act_checkpoint(const et_train_cfg *c, const et_bert_config *mc) {
    if (c->act_checkpoint < 0) return c->lora_rank > 0 && mc->moe_experts == 0 && c->moe_experts == 0;
    return c->act_checkpoint != 0;
}

size_t et_train_state_bytes(const et_train_cfg *c, const et_bert_config *mc, size_t *param_floats, size_t *train_floats) {
    et_bert_config cc = trained_cfg(c, mc);
    size_t total = 0, train;
    int nt = et_bert_tensor_table(&cc, NULL, 0, &total);
    size_t params = total;
    if (c->lora_rank > 0) { /* the base frozen whole: the adapters alone get gradients and moments */
        train = et_bert_lora_floats(&cc, c->lora_rank, et_train_lora_sites(c));
        params += train;
    } else {
        et_tensor_view *t = nt > 0 ? malloc(sizeof *t * (size_t)nt) : NULL;
        if (t) et_bert_tensor_table(&cc, t, nt, &total);
        train = t ? total - grad_start(c, t, nt, total) : total; /* out of memory for the table: the upper bound */
        free(t);
    }
    if (param_floats) *param_floats = params;
    if (train_floats) *train_floats = train;
    return (params + 3 * train) * sizeof(float);
}

double et_train_lora_alpha(const et_train_cfg *c) { return c->lora_alpha > 0 ? c->lora_alpha : 2.0 * c->lora_rank; }
unsigned et_train_lora_sites(const et_train_cfg *c) { return c->lora_sites ? c->lora_sites : (1u << ET_LIN_Q) | (1u << ET_LIN_V); }

/* cfg.lora_*: attach the adapters (or keep ones attached with the same settings, e.g. loaded to continue) */
static et_status prepare_lora(const et_train_cfg *c, et_bert *m, et_error *err) {
    if (c->lora_rank <= 0) {
        if (m->lora) return et_fail(err, ET_ERR_ARG, "the model has LoRA adapters attached but no LoRA rank was given");
        return ET_OK;
    }
    if (c->freeze && *c->freeze) return et_fail(err, ET_ERR_ARG, "LoRA freezes the whole base already: drop --freeze");
    if (c->train_only_moe) return et_fail(err, ET_ERR_ARG, "LoRA cannot be combined with training only the MoE parameters");
    double alpha = et_train_lora_alpha(c);
    unsigned sites = et_train_lora_sites(c);
    float scale = (float)(c->lora_rslora ? alpha / sqrt((double)c->lora_rank) : alpha / c->lora_rank);
    if (m->lora) {
        const et_bert_config *k = &m->cfg;
        if (k->lora_rank != c->lora_rank || k->lora_sites != sites || k->lora_scale != scale || k->lora_dropout != (float)c->lora_dropout)
            return et_fail(err, ET_ERR_MISMATCH, "the model has LoRA adapters attached with other settings (r %d, scale %g, "
                                                 "dropout %g) than asked for (r %d, scale %g, dropout %g)",
                           k->lora_rank, k->lora_scale, k->lora_dropout, c->lora_rank, scale, c->lora_dropout);
        return ET_OK;
    }
    return et_bert_lora_attach(m, c->lora_rank, alpha, c->lora_rslora, c->lora_dropout, sites, c->seed, err);
}

static void build_canon(et_trainer *tr, uint64_t data_hash) {
    const et_train_cfg *c = &tr->cfg;
    snprintf(tr->canon, sizeof tr->canon,
             "loss=%s;tau=%.17g;symmetric=%d;in_batch=%d;lambda=%.17g;pen=%d;soft_norm=%s;alpha=%.17g;lr=%.17g;"
             "weight_decay=%.17g;adam_eps=%.17g;warmup=%ld;epochs=%d;batch=%d;grad_accum=%d;max_grad_norm=%.17g;"
             "max_len_q=%d;max_len_d=%d;negatives=%d;seed=%llu;dropout=%d;freeze=%s;total_steps=%ld;data=%016llx;"
             "n_params=%zu",
             et_train_loss_name(c->loss), c->tau, c->symmetric, c->in_batch, c->lambda, (int)c->pen,
             et_soft_norm_name(c->soft_norm), c->alpha, c->lr, c->weight_decay, c->adam_eps, tr->warmup, c->epochs,
             c->batch, c->grad_accum, c->max_grad_norm, c->max_len_q, c->max_len_d, tr->G,
             (unsigned long long)c->seed, c->dropout, c->freeze ? c->freeze : "", tr->total_steps,
             (unsigned long long)data_hash, tr->model->n_params);
    if (is_soft(c->loss) && (c->soft_lo != 0.0 || c->soft_hi != 1.0)) { /* appended only when calibrated */
        size_t l = strlen(tr->canon);
        snprintf(tr->canon + l, sizeof tr->canon - l, ";soft_lo=%.17g;soft_hi=%.17g", c->soft_lo, c->soft_hi);
    }
    if (tr->fx_off) { /* appended only when known false negatives can be excluded: other data keep older builds' canon */
        size_t l = strlen(tr->canon);
        snprintf(tr->canon + l, sizeof tr->canon - l, ";exclude_positives=1");
    }
    if (soft_list(c)) { /* appended only for the list form */
        size_t l = strlen(tr->canon);
        snprintf(tr->canon + l, sizeof tr->canon - l, ";soft_list=1");
    }
    if (tr->precision == ET_PREC_BF16) { /* appended only for bf16: fp32 runs keep the canon of older builds */
        size_t l = strlen(tr->canon);
        snprintf(tr->canon + l, sizeof tr->canon - l, ";precision=bf16");
    }
    if (c->matryoshka.n > 0) { /* appended only when on */
        size_t l = strlen(tr->canon);
        char md[512];
        et_matryoshka_describe(&c->matryoshka, md, sizeof md);
        snprintf(tr->canon + l, sizeof tr->canon - l, ";matryoshka=%s", md);
    }
    const et_bert_config *mc = &tr->model->cfg;
    if (c->lora_rank > 0) { /* appended only with LoRA: full fine-tuning keeps the canon of older builds */
        size_t l = strlen(tr->canon);
        char ts[64];
        et_lora_targets_str(mc->lora_sites, ts, sizeof ts);
        uint64_t bh = et_fnv1a64(FNV0, tr->model->params, tr->model->n_params * sizeof(float));
        snprintf(tr->canon + l, sizeof tr->canon - l, ";lora_r=%d;lora_alpha=%.17g;lora_dropout=%.17g;lora_rslora=%d;"
                 "lora_targets=%s;base=%016llx", c->lora_rank, et_train_lora_alpha(c), c->lora_dropout, c->lora_rslora, ts,
                 (unsigned long long)bh);
    }
    if (mc->moe_experts > 0) { /* appended only for MoE models: dense runs keep the canon of older builds */
        size_t l = strlen(tr->canon);
        uint64_t layers = 0; /* explicit (a loaded model lists its layers; a converted one may have 0 = all) */
        for (int k = 0; k < mc->num_layers && k < 64; k++)
            if (et_bert_layer_is_moe(mc, k)) layers |= (uint64_t)1 << k;
        snprintf(tr->canon + l, sizeof tr->canon - l, ";moe_experts=%d;moe_layers=%016llx;moe_gate=%s;moe_aux=%.9g;moe_jitter=%.9g;train_only_moe=%d",
                 mc->moe_experts, (unsigned long long)layers, et_moe_gate_name(mc->moe_gate_scale),
                 (double)mc->moe_aux_weight, (double)mc->moe_jitter, c->train_only_moe);
    }
}

/* layer mask as a list "0,2,5" for messages */
static void mask_str(char *b, size_t n, uint64_t mask, int L) {
    size_t p = 0;
    b[0] = 0;
    for (int l = 0; l < L && l < 64 && p + 4 < n; l++)
        if (!mask || ((mask >> l) & 1u)) p += (size_t)snprintf(b + p, n - p, "%s%d", p ? "," : "", l);
}

/* cfg.moe_*: convert a dense model or check an MoE one, then apply the gate / aux / jitter settings */
static et_status prepare_moe(const et_train_cfg *c, et_bert *m, et_error *err) {
    if (c->moe_experts < 0 || c->moe_experts > ET_MOE_MAX_EXPERTS)
        return et_fail(err, ET_ERR_ARG, "moe_experts must be in [0, %d] (got %d)", ET_MOE_MAX_EXPERTS, c->moe_experts);
    if (c->moe_experts == 0) {
        if (c->train_only_moe && m->cfg.moe_experts == 0)
            return et_fail(err, ET_ERR_ARG, "training only the MoE parameters needs a mixture-of-experts model: the model is "
                                            "dense (give a number of experts to convert it)");
        return ET_OK;
    }
    int L = m->cfg.num_layers;
    if (L < 64 && (c->moe_layer_mask >> L))
        return et_fail(err, ET_ERR_ARG, "MoE layers: the mask 0x%llx names a layer >= %d (the model has %d layers, 0..%d)",
                       (unsigned long long)c->moe_layer_mask, L, L, L - 1);
    if (c->moe_gate_scale < ET_MOE_GATE_UNSCALED || c->moe_gate_scale > ET_MOE_GATE_STE)
        return et_fail(err, ET_ERR_ARG, "moe_gate_scale must be 0 (unscaled), 1 (switch) or 2 (ste) (got %d)", c->moe_gate_scale);
    if (!(c->moe_aux_weight >= 0 && c->moe_aux_weight < 1e6) || !(c->moe_jitter >= 0 && c->moe_jitter < 1))
        return et_fail(err, ET_ERR_ARG, "MoE settings: aux weight >= 0 and 0 <= jitter < 1 are required (got %g, %g)",
                       c->moe_aux_weight, c->moe_jitter);
    et_status s;
    if (m->cfg.moe_experts == 0) {
        if ((s = et_bert_to_moe(m, c->moe_experts, c->moe_layer_mask, c->seed, err))) return s;
    } else {
        if (m->cfg.moe_experts != c->moe_experts)
            return et_fail(err, ET_ERR_MISMATCH, "the model is already a mixture of experts with %d experts per MoE layer, "
                                                 "but %d were asked for (give %d, or start from the dense model)",
                           m->cfg.moe_experts, c->moe_experts, m->cfg.moe_experts);
        uint64_t have = 0, want = 0;
        for (int l = 0; l < L && l < 64; l++) {
            if (et_bert_layer_is_moe(&m->cfg, l)) have |= (uint64_t)1 << l;
            if (!c->moe_layer_mask || ((c->moe_layer_mask >> l) & 1u)) want |= (uint64_t)1 << l;
        }
        if (c->moe_layer_mask && have != want) {
            char a[256], b[256];
            mask_str(a, sizeof a, have, L);
            mask_str(b, sizeof b, want, L);
            return et_fail(err, ET_ERR_MISMATCH, "the model is already a mixture of experts in layers %s, but layers %s were asked for",
                           a, b);
        }
    }
    m->cfg.moe_gate_scale = c->moe_gate_scale;
    m->cfg.moe_aux_weight = (float)c->moe_aux_weight;
    m->cfg.moe_jitter = (float)c->moe_jitter;
    return ET_OK;
}

static void count_steps(et_trainer *tr, const et_train_data *d) {
    long nb = (d->n + tr->cfg.batch - 1) / tr->cfg.batch;
    long spe = (nb + tr->cfg.grad_accum - 1) / tr->cfg.grad_accum;
    tr->total_steps = spe * tr->cfg.epochs;
}

/* soft1..3, list form: G from the negatives (as infonce), targets of every candidate of the first G negatives of each
 * example (normalisation over all these candidates), then the weights W = softmax(yhat / tau) per example */
static et_status prepare_soft_list(et_trainer *tr, const et_train_data *d, et_error *err) {
    const et_train_cfg *c = &tr->cfg;
    const char *path = d->path;
    int mn = 1 << 30, mnl = 0, K = -1;
    for (int i = 0; i < d->n; i++) {
        const et_train_example *e = &d->ex[i];
        if (e->n_neg < mn) { mn = e->n_neg; mnl = e->line; }
        if (!e->n_scores || e->n_scores % (1 + e->n_neg))
            return et_fail(err, ET_ERR_FORMAT, "%s:%d: field 'scores' has %d values; loss %s in its list form needs the "
                           "same number of expert scores for the positive and each of the %d negatives", path, e->line,
                           e->n_scores, et_train_loss_name(c->loss), e->n_neg);
        int k = e->n_scores / (1 + e->n_neg);
        if (K < 0) K = k;
        else if (k != K)
            return et_fail(err, ET_ERR_FORMAT, "%s:%d: %d expert scores per candidate but earlier lines have %d", path,
                           e->line, k, K);
    }
    if (d->n < 1) return et_fail(err, ET_ERR_FORMAT, "%s: no training examples", path);
    if (c->negatives >= 0) {
        if (c->negatives > mn)
            return et_fail(err, ET_ERR_MISMATCH, "%s:%d: the example has %d negatives but %d per query were asked for",
                           path, mnl, mn, c->negatives);
        tr->G = c->negatives;
    } else tr->G = mn;
    int G = tr->G;
    size_t rows = (size_t)d->n * (1 + G);
    float *y = malloc(rows * sizeof(float)), *S = malloc(rows * (size_t)K * sizeof(float));
    tr->targets = et_malloc(rows * sizeof(float), "targets", err);
    if (!y || !S || !tr->targets) { free(y); free(S); return et_fail(err, ET_ERR_NOMEM, "out of memory for expert scores"); }
    for (int i = 0; i < d->n; i++)
        for (int g = 0; g <= G; g++) {
            size_t r = (size_t)i * (1 + G) + g;
            y[r] = g == 0 ? 1.f : 0.f;
            memcpy(S + r * K, d->ex[i].scores + (size_t)g * K, (size_t)K * sizeof(float));
        }
    et_soft_rule rule = c->loss == ET_TRAIN_SOFT1 ? ET_SOFT_MEAN : c->loss == ET_TRAIN_SOFT2 ? ET_SOFT_BLEND : ET_SOFT_GATED;
    float *yhat = S; /* S [rows, K] has room for rows targets; written only after S is read (below, via tr->targets) */
    et_status s = et_soft_targets(rule, c->soft_norm, c->alpha, y, S, (int)rows, K, tr->targets, err);
    if (s) { free(y); free(S); return et_error_prefix(err, "%s", path); }
    memcpy(yhat, tr->targets, rows * sizeof(float));
    if (c->soft_lo != 0.0 || c->soft_hi != 1.0) et_soft_calibrate(yhat, (int)rows, c->soft_lo, c->soft_hi);
    et_soft_list_weights(yhat, d->n, G, c->tau, tr->targets);
    free(y); free(S);
    count_steps(tr, d);
    return ET_OK;
}

/* check the data against the loss; derive G; compute targets */
static et_status prepare_data(et_trainer *tr, const et_train_data *d, et_error *err) {
    const et_train_cfg *c = &tr->cfg;
    const char *path = d->path;
    if (soft_list(c)) return prepare_soft_list(tr, d, err);
    if (c->loss == ET_TRAIN_INFONCE || c->loss == ET_TRAIN_CLP) {
        int mn = 1 << 30, mnl = 0;
        for (int i = 0; i < d->n; i++)
            if (d->ex[i].n_neg < mn) { mn = d->ex[i].n_neg; mnl = d->ex[i].line; }
        if (c->negatives >= 0) {
            if (c->negatives > mn)
                return et_fail(err, ET_ERR_MISMATCH, "%s:%d: the example has %d negatives but %d per query were asked for",
                               path, mnl, mn, c->negatives);
            tr->G = c->negatives;
        } else {
            tr->G = mn;
        }
        if (c->loss == ET_TRAIN_CLP && tr->G < 1)
            return et_fail(err, ET_ERR_MISMATCH, "%s:%d: loss clp needs at least one entry in 'negatives' per example",
                           path, mnl);
    } else {
        tr->G = 0;
        int K = -1;
        for (int i = 0; i < d->n; i++) {
            const et_train_example *e = &d->ex[i];
            int need_label = c->loss != ET_TRAIN_SOFT1;
            if (need_label && !e->has_label)
                return et_fail(err, ET_ERR_FORMAT, "%s:%d: field 'label' is missing (needed by loss %s)", path, e->line,
                               et_train_loss_name(c->loss));
            if (is_soft(c->loss)) {
                if (!e->n_scores)
                    return et_fail(err, ET_ERR_FORMAT, "%s:%d: field 'scores' (expert similarities) is missing (needed by loss %s)",
                                   path, e->line, et_train_loss_name(c->loss));
                if (K < 0) K = e->n_scores;
                else if (e->n_scores != K)
                    return et_fail(err, ET_ERR_FORMAT, "%s:%d: field 'scores' has %d values but earlier lines have %d",
                                   path, e->line, e->n_scores, K);
            }
        }
        tr->targets = et_malloc((size_t)d->n * sizeof(float), "targets", err);
        if (!tr->targets) return ET_ERR_NOMEM;
        if (c->loss == ET_TRAIN_MSE) {
            for (int i = 0; i < d->n; i++) tr->targets[i] = d->ex[i].label;
        } else {
            float *y = malloc((size_t)d->n * sizeof(float)), *S = malloc((size_t)d->n * K * sizeof(float));
            if (!y || !S) { free(y); free(S); return et_fail(err, ET_ERR_NOMEM, "out of memory for expert scores"); }
            for (int i = 0; i < d->n; i++) {
                y[i] = d->ex[i].has_label ? d->ex[i].label : 0.f;
                memcpy(S + (size_t)i * K, d->ex[i].scores, (size_t)K * sizeof(float));
            }
            et_soft_rule rule = c->loss == ET_TRAIN_SOFT1 ? ET_SOFT_MEAN : c->loss == ET_TRAIN_SOFT2 ? ET_SOFT_BLEND : ET_SOFT_GATED;
            et_status s = et_soft_targets(rule, c->soft_norm, c->alpha, y, S, d->n, K, tr->targets, err);
            free(y); free(S);
            if (s) return et_error_prefix(err, "%s", path);
            if (c->soft_lo != 0.0 || c->soft_hi != 1.0) et_soft_calibrate(tr->targets, d->n, c->soft_lo, c->soft_hi);
        }
    }
    long nb = (d->n + c->batch - 1) / c->batch;
    long spe = (nb + c->grad_accum - 1) / c->grad_accum;
    tr->total_steps = spe * c->epochs;
    return ET_OK;
}

static int fx_is_pos(const et_trainer *tr, int32_t q, int32_t t) {
    int64_t lo = et_lower_bound_i32(tr->fx_pos, tr->fx_off[q], tr->fx_off[q + 1], t);
    return lo < tr->fx_off[q + 1] && tr->fx_pos[lo] == t;
}

static void fx_free(et_trainer *tr) {
    et_strmap_free(&tr->fx_map);
    free(tr->fx_keys); free(tr->fx_q); free(tr->fx_p); free(tr->fx_off); free(tr->fx_pos); free(tr->fx_x);
    tr->fx_keys = NULL;
    tr->fx_q = tr->fx_p = tr->fx_pos = NULL;
    tr->fx_off = NULL;
    tr->fx_x = NULL;
}

/* The known-false-negative index (train.h exclude_positives): queries and positive texts interned (exact text), the
 * positives of each query sorted and unique. Kept only when some query has two different positive texts; else (one
 * answer per question) nothing can be excluded and everything trains as without it. */
static et_status prepare_exclude(et_trainer *tr, const et_train_data *d, et_error *err) {
    const et_train_cfg *c = &tr->cfg;
    if (!c->exclude_positives || pair_rows(c) || d->n < 1) return ET_OK;
    int n = d->n, G = tr->G;
    const char **qk = malloc(sizeof(char *) * (size_t)n);
    int64_t *cnt = NULL;
    et_strmap qm = {0};
    et_status s = ET_OK;
    int several = 0;
    tr->fx_keys = malloc(sizeof(char *) * (size_t)n);
    tr->fx_q = malloc(sizeof(int32_t) * (size_t)n);
    tr->fx_p = malloc(sizeof(int32_t) * (size_t)n);
    if (!qk || !tr->fx_keys || !tr->fx_q || !tr->fx_p) { s = et_fail(err, ET_ERR_NOMEM, "out of memory for the false-negative index"); goto done; }
    if ((s = et_strmap_init(&qm, n, qk, "the false-negative index", err)) ||
        (s = et_strmap_init(&tr->fx_map, n, tr->fx_keys, "the false-negative index", err)))
        goto done;
    int32_t nq = 0, ntx = 0;
    for (int i = 0; i < n; i++) {
        tr->fx_q[i] = et_strmap_intern(&qm, d->ex[i].query, &nq);
        tr->fx_p[i] = et_strmap_intern(&tr->fx_map, d->ex[i].positive, &ntx);
    }
    /* positives per query: counting sort by query, then sort and unique each list */
    cnt = calloc((size_t)nq + 1, sizeof(int64_t));
    tr->fx_off = malloc(sizeof(int64_t) * ((size_t)nq + 1));
    tr->fx_pos = malloc(sizeof(int32_t) * (size_t)n);
    if (!cnt || !tr->fx_off || !tr->fx_pos) { s = et_fail(err, ET_ERR_NOMEM, "out of memory for the false-negative index"); goto done; }
    for (int i = 0; i < n; i++) cnt[tr->fx_q[i] + 1]++;
    for (int32_t q = 0; q < nq; q++) cnt[q + 1] += cnt[q];
    memcpy(tr->fx_off, cnt, sizeof(int64_t) * ((size_t)nq + 1));
    for (int i = 0; i < n; i++) tr->fx_pos[cnt[tr->fx_q[i]]++] = tr->fx_p[i];
    int64_t w = 0;
    for (int32_t q = 0; q < nq; q++) {
        int64_t a = tr->fx_off[q], b = tr->fx_off[q + 1];
        qsort(tr->fx_pos + a, (size_t)(b - a), sizeof(int32_t), et_cmp_i32);
        tr->fx_off[q] = w;
        for (int64_t u = a; u < b; u++)
            if (u == a || tr->fx_pos[u] != tr->fx_pos[u - 1]) tr->fx_pos[w++] = tr->fx_pos[u];
        several |= w - tr->fx_off[q] > 1;
    }
    tr->fx_off[nq] = w;
    if (several && !(tr->fx_x = malloc((size_t)c->batch * ((size_t)c->batch + (size_t)c->batch * G) + 1)))
        s = et_fail(err, ET_ERR_NOMEM, "out of memory for the false-negative matrix");
done:
    if (s || !several) fx_free(tr);
    et_strmap_free(&qm);
    free(qk); free(cnt);
    return s;
}

long et_trainer_exclude(const et_trainer *tr, const int *idx, int nb, int G, int own_neg, unsigned char *x, int64_t *cands,
                        int64_t *excluded, int64_t *own) {
    size_t ld = (size_t)nb + (size_t)nb * G;
    memset(x, 0, (size_t)nb * ld);
    if (!tr->fx_off || !tr->data) return 0;
    const et_train_data *d = tr->data;
    long nx = 0;
    int32_t nid[1024], *ni = nid; /* the negatives' positive-text ids (-1: not a positive of any query) */
    if ((size_t)nb * G > sizeof nid / sizeof nid[0] && !(ni = malloc(sizeof(int32_t) * (size_t)nb * G))) return -1;
    for (int r = 0; r < nb; r++)
        for (int g = 0; g < G; g++) {
            const et_train_example *e = &d->ex[idx[r]];
            ni[r * G + g] = g < e->n_neg ? et_strmap_get(&tr->fx_map, e->negatives[g]) : -1;
        }
    for (int i = 0; i < nb; i++) {
        int32_t q = tr->fx_q[idx[i]], own_p = tr->fx_p[idx[i]];
        unsigned char *xi = x + (size_t)i * ld;
        for (int j = 0; j < nb; j++) {
            if (j == i) continue;
            int32_t t = tr->fx_p[idx[j]];
            int e = t != own_p && fx_is_pos(tr, q, t);
            xi[j] = (unsigned char)e;
            nx += e;
            if (cands) ++*cands;
            if (excluded) *excluded += e;
        }
        for (int r = 0; r < nb; r++)
            for (int g = 0; g < G; g++) {
                int32_t t = ni[r * G + g];
                int e = t >= 0 && t != own_p && fx_is_pos(tr, q, t);
                if (r == i) {
                    if (own) *own += e;
                    if (!own_neg) continue;
                } else {
                    if (cands) ++*cands;
                    if (excluded) *excluded += e;
                }
                xi[nb + (size_t)r * G + g] = (unsigned char)e;
                nx += e;
            }
    }
    if (ni != nid) free(ni);
    return nx;
}

/* The text groups' activations (one rule for the plan and the trainer): each group's own part (act_bytes[g]) plus
 * one region of the largest group's transient part, shared by all groups (bert.h et_bert_acts_alloc_shared: their
 * forwards run in turn, then their backwards); *shared = that region's bytes (0: MoE, unshared acts). */
static size_t group_acts_bytes(const et_bert_config *acfg, const int gB[4], const int gT[4], int nthreads,
                               size_t act_bytes[4], size_t *shared) {
    size_t total = 0, sh = 0;
    for (int g = 0; g < 4; g++) {
        size_t a = 0, s = 0;
        if (gB[g] > 0) {
            a = et_bert_acts_bytes(acfg, gB[g], gT[g], 1, nthreads);
            s = et_bert_acts_shared_bytes(acfg, gB[g], gT[g], nthreads);
        }
        act_bytes[g] = a - s;
        total += a - s;
        if (s > sh) sh = s;
    }
    *shared = sh;
    return total + sh;
}

size_t et_train_plan_bytes(const et_train_cfg *c, const et_bert_config *model_cfg, int B, int G, int nthreads,
                           size_t act_bytes[4], size_t *state_bytes) {
    et_bert_config tcfg = trained_cfg(c, model_cfg);
    const et_bert_config *mc = &tcfg;
    int P = et_bert_max_tokens(mc), C = mc->hidden_size;
    int Tq = c->max_len_q > P ? P : c->max_len_q, Td = c->max_len_d > P ? P : c->max_len_d;
    int gB[4] = {B, B, B * G, c->loss == ET_TRAIN_CLP ? B * G : 0};
    int gT[4] = {Tq, Td, Td, Tq};
    size_t ab[4], shared;
    size_t total = group_acts_bytes(mc, gB, gT, nthreads, ab, &shared);
    if (act_bytes) memcpy(act_bytes, ab, sizeof ab);
    size_t state = et_train_state_bytes(c, mc, NULL, NULL); /* params, and grads, m, v of what is trained */
    if (state_bytes) *state_bytes = state;
    size_t rows = (size_t)2 * B + (size_t)2 * B * G;
    size_t misc = et_loss_scratch_doubles(B, G, C) * sizeof(double) + rows * C * sizeof(float) +
                  (size_t)2 * ((size_t)B * Tq + (size_t)B * Td + (size_t)B * G * (Td + Tq)) * sizeof(int32_t) +
                  (c->matryoshka.n > 0 ? et_matryoshka_scratch_floats(B, G, C) * sizeof(float) : 0);
    return total + state + misc;
}

et_status et_trainer_init(et_trainer *tr, const et_train_cfg *cfg, et_bert *model, et_pool *pool,
                          const et_train_data *data, et_error *err) {
    memset(tr, 0, sizeof *tr);
    tr->cfg = *cfg;
    tr->model = model;
    tr->perm_epoch = -1;
    const et_train_cfg *c = &tr->cfg;
    if (c->batch < 1 || c->grad_accum < 1 || c->epochs < 1 || c->max_len_q < 2 || c->max_len_d < 2 || !(c->tau > 0) ||
        !(c->lr >= 0) || !(c->lambda >= 0 && c->lambda <= 1) || !(c->weight_decay >= 0) || !(c->adam_eps > 0))
        return et_fail(err, ET_ERR_ARG, "training settings: batch, grad_accum, epochs >= 1, max_len >= 2, tau > 0, "
                                        "lr >= 0, 0 <= lambda <= 1, weight_decay >= 0 and adam_eps > 0 are required");
    if (c->symmetric && (c->loss != ET_TRAIN_INFONCE || !c->in_batch))
        return et_fail(err, ET_ERR_ARG, "symmetric needs loss infonce with in-batch negatives");
    et_status ps = et_train_precision_resolve(c->precision, &tr->precision, NULL, 0, err);
    if (ps) return ps;
    if (soft_list(c) && c->matryoshka.n > 0)
        return et_fail(err, ET_ERR_ARG, "Matryoshka training does not support the list form of loss %s (use its pair "
                                        "form, or infonce)", et_train_loss_name(c->loss));
    if (c->matryoshka.n > 0) {
        et_status ms = et_matryoshka_check(&c->matryoshka, model->cfg.hidden_size, err);
        if (ms) return ms;
    }
    int P = et_bert_max_tokens(&model->cfg);
    if (tr->cfg.max_len_q > P) tr->cfg.max_len_q = P;
    if (tr->cfg.max_len_d > P) tr->cfg.max_len_d = P;
    et_status s;
    if (data) {
        if ((s = prepare_data(tr, data, err)) || (s = prepare_exclude(tr, data, err))) goto fail;
        tr->data = data;
    } else {
        if (c->negatives < 0 || c->total_steps < 1) {
            s = et_fail(err, ET_ERR_ARG, "trainer without data: negatives >= 0 and total_steps >= 1 must be given");
            goto fail;
        }
        tr->G = pair_rows(c) ? 0 : c->negatives;
        tr->total_steps = c->total_steps;
    }
    tr->warmup = c->warmup_steps >= 0 ? c->warmup_steps : (long)ceil(c->warmup_ratio * (double)tr->total_steps);
    tr->B = c->batch;
    /* MoE: converts a dense model in place (it stays converted if a later step of init fails) */
    if ((s = prepare_moe(c, model, err))) goto fail;
    if ((s = prepare_lora(c, model, err))) goto fail;
    build_canon(tr, data ? data->hash : 0);

    /* pool */
    if (pool) tr->pool = pool;
    else {
        if (!(tr->pool = et_pool_create(c->threads, err))) { s = err && err->code ? err->code : ET_ERR_NOMEM; goto fail; }
        tr->own_pool = 1;
    }
    int nt = et_pool_size(tr->pool);

    /* memory plan */
    const et_bert_config *mc = &model->cfg;
    et_bert_config acfg = *mc; /* the activations' config: the model's, with checkpointing as the settings resolve it */
    acfg.act_checkpoint = et_train_act_checkpoint(c, mc);
    if (acfg.act_checkpoint && mc->moe_experts) {
        s = et_fail(err, ET_ERR_ARG, "activation checkpointing does not support mixture-of-experts layers: drop --checkpoint");
        goto fail;
    }
    int B = tr->B, G = tr->G, C = mc->hidden_size, Tq = tr->cfg.max_len_q, Td = tr->cfg.max_len_d;
    int gB[4] = {B, B, B * G, c->loss == ET_TRAIN_CLP ? B * G : 0};
    int gT[4] = {Tq, Td, Td, Tq};
    size_t act_bytes[4] = {0}, shared = 0;
    size_t total = group_acts_bytes(&acfg, gB, gT, nt, act_bytes, &shared);
    size_t n = model->n_params;
    int lora = c->lora_rank > 0;
    /* frozen tensors and optimizer segments (offsets into the parameter buffer), before the memory plan: what precedes
     * the first tensor that gets a gradient (a frozen prefix: the word embeddings come first, --freeze-embeddings) has
     * no gradient and no AdamW state at all; with LoRA the base has none */
    size_t lo = 0;
    et_bert_params fview;
    float **slots[5 + 19 * ET_MAX_LAYERS + 2];
    int nslots = 0;
    if (!lora) {
        et_bert_params_view(mc, model->params, &fview);
        nslots = param_slots(&fview, mc->num_layers, slots);
        if (!(tr->segs = et_calloc((size_t)model->n_tensors, sizeof *tr->segs, "segments", err))) { s = ET_ERR_NOMEM; goto fail; }
        int ntrain = 0;
        for (int i = 0; i < model->n_tensors; i++) {
            const et_tensor_view *t = &model->tensors[i];
            int fr = tensor_frozen(c, t->name);
            tr->segs[i] = (et_param_seg){t->offset, t->numel, !et_param_no_decay(t->name), !fr};
            ntrain += !fr;
        }
        if (!ntrain) {
            s = et_fail(err, ET_ERR_ARG, "freeze '%s'%s leaves no trainable tensor", c->freeze ? c->freeze : "",
                        c->train_only_moe ? " with only the MoE parameters trained" : "");
            goto fail;
        }
        /* a gradient view pointer becomes NULL ("frozen": skipped by backward) only if every tensor inside its
         * range is frozen (one MoE pointer covers all experts of a layer; a partly frozen range keeps its
         * gradient, and the frozen tensors in it are simply not updated) */
        for (int k = 0; k < nslots; k++) {
            if (!*slots[k]) continue;
            size_t a = (size_t)(*slots[k] - model->params), e = n;
            for (int j = 0; j < nslots; j++)
                if (*slots[j] && (size_t)(*slots[j] - model->params) > a && (size_t)(*slots[j] - model->params) < e)
                    e = (size_t)(*slots[j] - model->params);
            int all = 1, any = 0;
            for (int i = 0; i < model->n_tensors; i++)
                if (model->tensors[i].offset >= a && model->tensors[i].offset < e) { any = 1; all &= !tr->segs[i].trainable; }
            if (any && all) *slots[k] = NULL;
        }
        lo = grad_start(c, model->tensors, model->n_tensors, n);
        int ns = 0; /* the segments of [lo, n), relative to lo (those before lo are frozen) */
        for (int i = 0; i < model->n_tensors; i++)
            if (tr->segs[i].offset >= lo) { tr->segs[ns] = tr->segs[i]; tr->segs[ns++].offset -= lo; }
        tr->nsegs = ns;
    }
    tr->train_params = lora ? model->lora : model->params + lo;
    tr->train_n = lora ? model->n_lora : n - lo;
    /* params (the base, and the adapters with LoRA), then gradients and the two AdamW moments of what is trained:
     * et_train_state_bytes, the rule the up-front plan (et_train_plan_bytes) counts by, must be what is allocated */
    size_t plan_params = 0, plan_train = 0;
    size_t state = et_train_state_bytes(c, mc, &plan_params, &plan_train);
    if (plan_params != n + (lora ? model->n_lora : 0) || plan_train != tr->train_n) {
        s = et_fail(err, ET_ERR_MISMATCH, "memory plan (internal): %zu parameters and %zu trained floats planned, %zu and %zu made",
                    plan_params, plan_train, n + (lora ? model->n_lora : 0), tr->train_n);
        goto fail;
    }
    tr->bytes_state = state;
    size_t rows = (size_t)2 * B + (size_t)2 * B * G;
    size_t misc = et_loss_scratch_doubles(B, G, C) * sizeof(double) + rows * C * sizeof(float) +
                  (size_t)2 * ((size_t)B * Tq + (size_t)B * Td + (size_t)B * G * (Td + Tq)) * sizeof(int32_t) +
                  (c->matryoshka.n > 0 ? et_matryoshka_scratch_floats(B, G, C) * sizeof(float) : 0);
    tr->bytes_planned = total + state + misc;
    if (tr->bytes_planned > c->mem_budget) {
        s = et_fail(err, ET_ERR_NOMEM,
                    "training needs %.1f MiB (activations: queries %.1f, positives %.1f, negatives %.1f, negative queries %.1f, "
                    "scratch shared by the groups %.1f; "
                    "parameters+gradients+AdamW %.1f) but the memory budget is %.1f MiB: lower the batch, the max length or "
                    "the number of negatives (or raise the budget)",
                    tr->bytes_planned / 1048576.0, act_bytes[0] / 1048576.0, act_bytes[1] / 1048576.0,
                    act_bytes[2] / 1048576.0, act_bytes[3] / 1048576.0, shared / 1048576.0, state / 1048576.0,
                    c->mem_budget / 1048576.0);
        goto fail;
    }
    if (shared && posix_memalign((void **)&tr->act_shared, 64, shared) != 0) {
        tr->act_shared = NULL;
        s = et_fail(err, ET_ERR_NOMEM, "cannot allocate %.1f MiB of activation scratch shared by the text groups", shared / 1048576.0);
        goto fail;
    }
    for (int g = 0; g < 4; g++)
        if (gB[g] > 0) {
            if ((s = shared ? et_bert_acts_alloc_shared(&tr->acts[g], &acfg, gB[g], gT[g], nt, tr->act_shared, shared, err)
                            : et_bert_acts_alloc(&tr->acts[g], &acfg, gB[g], gT[g], 1, nt, err))) goto fail;
            et_bert_acts_set_bf16(&tr->acts[g], tr->precision == ET_PREC_BF16);
        }
    if ((s = et_bert_reserve(tr->pool, err))) goto fail; /* the kernels' workspace, up front */

    /* gradients, frozen tensors, optimizer segments */
    if (!(tr->grads = et_calloc(tr->train_n, sizeof(float), "gradients", err))) { s = ET_ERR_NOMEM; goto fail; }
    if (lora) { /* the adapters alone: one decayed segment (PEFT/sentence-transformers decay every *.weight) */
        memset(&tr->gview, 0, sizeof tr->gview);
        et_bert_lora_view(mc, mc->lora_rank, mc->lora_sites, tr->grads, &tr->gview);
        if (!(tr->segs = et_calloc(1, sizeof *tr->segs, "segments", err))) { s = ET_ERR_NOMEM; goto fail; }
        tr->segs[0] = (et_param_seg){0, tr->train_n, 1, 1};
        tr->nsegs = 1;
        goto optimizer;
    }
    tr->gview = fview; /* the parameters' view with frozen pointers NULL, moved into the gradients of [lo, n) */
    nslots = param_slots(&tr->gview, mc->num_layers, slots);
    for (int k = 0; k < nslots; k++)
        if (*slots[k]) *slots[k] = tr->grads + ((size_t)(*slots[k] - model->params) - lo);
optimizer:
    /* MoE routing statistics */
    if (mc->moe_experts > 0) {
        for (int l = 0; l < mc->num_layers; l++)
            if (et_bert_layer_is_moe(mc, l)) tr->moe_ids[tr->moe_nl++] = l;
        size_t ne = (size_t)tr->moe_nl * mc->moe_experts;
        if (!(tr->moe_cnt_step = et_calloc(ne, sizeof(int64_t), "MoE counts", err)) ||
            !(tr->moe_cnt_run = et_calloc(ne, sizeof(int64_t), "MoE counts", err)) ||
            !(tr->moe_frac = et_calloc(ne, sizeof(float), "MoE fractions", err))) { s = ET_ERR_NOMEM; goto fail; }
    }
    et_adamw_cfg ac;
    et_adamw_cfg_default(&ac);
    ac.weight_decay = c->weight_decay;
    ac.eps = c->adam_eps;
    if ((s = et_adamw_init(&tr->opt, &ac, tr->train_n, tr->segs, tr->nsegs, err))) goto fail;

    if (!(tr->scratch = et_malloc(et_loss_scratch_doubles(B, G, C) * sizeof(double), "loss scratch", err)) ||
        !(tr->emb_grad = et_malloc(rows * C * sizeof(float), "embedding gradients", err))) { s = ET_ERR_NOMEM; goto fail; }
    if (c->matryoshka.n > 0 &&
        !(tr->mrl_scratch = et_malloc(et_matryoshka_scratch_floats(B, G, C) * sizeof(float), "matryoshka scratch", err))) {
        s = ET_ERR_NOMEM;
        goto fail;
    }
    if (data) {
        size_t ntok = (size_t)B * Tq + (size_t)B * Td + (size_t)B * G * (Td + Tq);
        if (!(tr->tok_ids = et_malloc(ntok * sizeof(int32_t), "token ids", err)) ||
            !(tr->tok_mask = et_malloc(ntok * sizeof(int32_t), "token mask", err)) ||
            !(tr->perm = et_malloc((size_t)data->n * sizeof(int), "permutation", err))) { s = ET_ERR_NOMEM; goto fail; }
    }
    return ET_OK;
fail:
    et_trainer_free(tr);
    return s;
}

void et_trainer_free(et_trainer *tr) {
    if (!tr) return;
    for (int g = 0; g < 4; g++) et_bert_acts_free(&tr->acts[g]);
    free(tr->act_shared);
    if (tr->own_pool) et_pool_destroy(tr->pool);
    et_adamw_free(&tr->opt);
    free(tr->grads); free(tr->segs); free(tr->scratch); free(tr->emb_grad); free(tr->mrl_scratch);
    free(tr->targets); free(tr->perm); free(tr->tok_ids); free(tr->tok_mask);
    fx_free(tr);
    free(tr->moe_cnt_step); free(tr->moe_cnt_run); free(tr->moe_frac);
    memset(tr, 0, sizeof *tr);
}

long et_trainer_step(const et_trainer *tr) { return (long)tr->opt.t; }

int et_trainer_moe_summary(const et_trainer *tr, float *frac, int *layer_ids, int *experts) {
    int E = tr->model ? tr->model->cfg.moe_experts : 0;
    if (experts) *experts = E;
    if (!tr->moe_cnt_run || E <= 0) return 0;
    for (int k = 0; k < tr->moe_nl; k++) {
        if (layer_ids) layer_ids[k] = tr->moe_ids[k];
        int64_t n = 0;
        for (int e = 0; e < E; e++) n += tr->moe_cnt_run[(size_t)k * E + e];
        if (frac)
            for (int e = 0; e < E; e++) frac[(size_t)k * E + e] = n ? (float)((double)tr->moe_cnt_run[(size_t)k * E + e] / (double)n) : 0.0f;
    }
    return tr->moe_nl;
}

/* ------------------------------------------------------------------ one micro-batch / one update */

/* one group's forward: padded [B,T] with its mask, or (cfg.packed) the real tokens of each right-padded row
 * concatenated (et_bert_forward_packed; the acts keep their own copy, so the buffer is freed at once) */
static et_status group_forward(et_trainer *tr, et_bert_acts *a, const int32_t *ids, const int32_t *mask, int B, int T,
                               int drop, uint64_t seed, et_error *err) {
    if (!tr->cfg.packed) return et_bert_forward(tr->model, a, tr->pool, ids, mask, NULL, B, T, NULL, drop, seed, err);
    int32_t *pk = et_malloc(((size_t)B * T + (size_t)B) * sizeof(int32_t), "packed token ids", err);
    if (!pk) return ET_ERR_NOMEM;
    int32_t *lens = pk + (size_t)B * T;
    size_t r = 0;
    for (int b = 0; b < B; b++) {
        int len = 0;
        while (len < T && (!mask || mask[(size_t)b * T + len])) len++;
        memcpy(pk + r, ids + (size_t)b * T, sizeof(int32_t) * (size_t)len);
        r += (size_t)len;
        lens[b] = len;
    }
    et_status s = et_bert_forward_packed(tr->model, a, tr->pool, pk, NULL, lens, B, NULL, drop, seed, err);
    free(pk);
    return s;
}

static et_status micro_scaled(et_trainer *tr, const et_train_batch *b, uint64_t seed, double scale, double *loss_out,
                              et_error *err) {
    const et_train_cfg *c = &tr->cfg;
    const et_bert *m = tr->model;
    int B = b->B, G = b->G, C = m->cfg.hidden_size;
    if (B < 1 || B > tr->B || G < 0 || G > tr->G || (tr->G > 0 && G != tr->G && c->loss == ET_TRAIN_CLP))
        return et_fail(err, ET_ERR_ARG, "micro-batch of %d queries x %d negatives does not fit the plan (%d x %d)", B, G,
                       tr->B, tr->G);
    if (is_pairwise(c->loss) && !b->target) return et_fail(err, ET_ERR_ARG, "loss %s needs targets", et_train_loss_name(c->loss));
    int drop = c->dropout;
    et_status s;
    uint64_t sd[4];
    for (int g = 0; g < 4; g++) sd[g] = mix64(seed ^ mix64(0x7472616e + (uint64_t)g));
    if ((s = group_forward(tr, &tr->acts[0], b->q_ids, b->q_mask, B, b->Tq, drop, sd[0], err)))
        return et_error_prefix(err, "queries");
    if ((s = group_forward(tr, &tr->acts[1], b->p_ids, b->p_mask, B, b->Td, drop, sd[1], err)))
        return et_error_prefix(err, "positives");
    int useN = !pair_rows(c) && G > 0, useNQ = c->loss == ET_TRAIN_CLP;
    if (useN && (s = group_forward(tr, &tr->acts[2], b->n_ids, b->n_mask, B * G, b->Tn, drop, sd[2], err)))
        return et_error_prefix(err, "negatives");
    if (useNQ && (s = group_forward(tr, &tr->acts[3], b->nq_ids, b->nq_mask, B * G, b->Tnq, drop, sd[3], err)))
        return et_error_prefix(err, "negative queries");
    float *dQ = tr->emb_grad, *dP = dQ + (size_t)B * C, *dN = dP + (size_t)B * C, *dNQ = dN + (size_t)B * G * C;
    memset(tr->emb_grad, 0, ((size_t)2 * B + (size_t)2 * B * G) * C * sizeof(float));
    et_loss_cfg lc;
    et_loss_cfg_default(&lc);
    lc.tau = c->tau;
    lc.symmetric = c->symmetric;
    lc.in_batch = c->in_batch;
    lc.lambda = c->lambda;
    lc.pen = c->pen;
    lc.grad_scale = scale;
    lc.exclude = b->exclude;
    double loss = 0;
    const float *Q = tr->acts[0].pooled, *Pp = tr->acts[1].pooled, *N = useN ? tr->acts[2].pooled : NULL;
    if (c->matryoshka.n > 0) {
        et_mrl_args ma = {c->loss == ET_TRAIN_INFONCE ? ET_MRL_INFONCE : c->loss == ET_TRAIN_CLP ? ET_MRL_CLP : ET_MRL_COS_MSE,
                          Q, Pp, N, useNQ ? tr->acts[3].pooled : NULL, b->nq_avail, b->target, B, useN ? G : 0, C};
        s = et_loss_matryoshka(&lc, &c->matryoshka, &ma, dQ, dP, useN ? dN : NULL, useNQ ? dNQ : NULL, tr->scratch,
                               tr->mrl_scratch, &loss, err);
    } else switch (c->loss) {
    case ET_TRAIN_INFONCE:
        s = et_loss_infonce(&lc, Q, Pp, N, B, useN ? G : 0, C, dQ, dP, useN ? dN : NULL, tr->scratch, &loss, err);
        break;
    case ET_TRAIN_SOFT1: case ET_TRAIN_SOFT2: case ET_TRAIN_SOFT3:
        if (c->soft_list) {
            s = et_loss_soft_infonce(&lc, Q, Pp, N, b->target, B, useN ? G : 0, C, dQ, dP, useN ? dN : NULL, tr->scratch,
                                     &loss, err);
            break;
        }
        s = et_loss_cos_mse(&lc, Q, Pp, b->target, B, C, dQ, dP, tr->scratch, NULL, &loss, err);
        break;
    case ET_TRAIN_CLP:
        s = et_loss_clp(&lc, Q, Pp, N, tr->acts[3].pooled, b->nq_avail, B, G, C, dQ, dP, dN, dNQ, tr->scratch, NULL, &loss, err);
        break;
    default:
        s = et_loss_cos_mse(&lc, Q, Pp, b->target, B, C, dQ, dP, tr->scratch, NULL, &loss, err);
    }
    if (s) return s;
    if (m->cfg.moe_experts > 0) { /* the MoE balance loss (its gradient is added by et_bert_backward) */
        int E = m->cfg.moe_experts;
        double aux = 0;
        for (int g = 0; g < 4; g++)
            if (g < 2 || (g == 2 && useN) || (g == 3 && useNQ)) {
                tr->acts[g].moe_aux_scale = (float)scale;
                aux += et_bert_moe_aux_loss(m, &tr->acts[g]);
                for (int k = 0; k < tr->moe_nl && tr->moe_cnt_step; k++) { /* routing statistics (real tokens) */
                    const int32_t *cnt = tr->acts[g].layer[tr->moe_ids[k]].moe.counts;
                    for (int e = 0; cnt && e < E; e++) {
                        tr->moe_cnt_step[(size_t)k * E + e] += cnt[e];
                        tr->moe_cnt_run[(size_t)k * E + e] += cnt[e];
                    }
                }
            }
        loss += aux;
        tr->moe_aux_acc += aux;
    }
    if (!isfinite(loss)) return et_fail(err, ET_ERR_NUMERIC, "the loss is %g", loss);
    if (useNQ && (s = et_bert_backward(m, &tr->acts[3], tr->pool, dNQ, &tr->gview, err))) return s;
    if (useN && (s = et_bert_backward(m, &tr->acts[2], tr->pool, dN, &tr->gview, err))) return s;
    if ((s = et_bert_backward(m, &tr->acts[1], tr->pool, dP, &tr->gview, err))) return s;
    if ((s = et_bert_backward(m, &tr->acts[0], tr->pool, dQ, &tr->gview, err))) return s;
    tr->loss_acc += loss;
    tr->micro_in_step++;
    if (loss_out) *loss_out = loss;
    return ET_OK;
}

et_status et_trainer_micro(et_trainer *tr, const et_train_batch *b, uint64_t dropout_seed, double *loss,
                           et_error *err) {
    return micro_scaled(tr, b, dropout_seed, 1.0 / tr->cfg.grad_accum, loss, err);
}

et_status et_trainer_update(et_trainer *tr, et_train_stats *st, et_error *err) {
    double lr = et_lr_linear_warmup(tr->cfg.lr, tr->opt.t, tr->warmup, tr->total_steps), norm = 0;
    et_status s = et_clip_grad_norm(tr->grads, tr->segs, tr->nsegs, tr->cfg.max_grad_norm, &norm, err);
    if (!s) s = et_adamw_step(&tr->opt, tr->train_params, tr->grads, lr, err);
    et_bert_params_changed(tr->model);
    if (s) return et_error_prefix(err, "step %ld", (long)tr->opt.t + 1);
    memset(tr->grads, 0, tr->train_n * sizeof(float));
    if (st) {
        memset(st, 0, sizeof *st);
        st->step = (long)tr->opt.t;
        st->total_steps = tr->total_steps;
        st->loss = tr->micro_in_step ? tr->loss_acc / tr->micro_in_step : 0;
        st->lr = lr;
        st->grad_norm = norm;
    }
    if (tr->moe_cnt_step) { /* this step's routing fractions */
        int E = tr->model->cfg.moe_experts;
        for (int k = 0; k < tr->moe_nl; k++) {
            int64_t n = 0;
            for (int e = 0; e < E; e++) n += tr->moe_cnt_step[(size_t)k * E + e];
            for (int e = 0; e < E; e++)
                tr->moe_frac[(size_t)k * E + e] = n ? (float)((double)tr->moe_cnt_step[(size_t)k * E + e] / (double)n) : 0.0f;
        }
        memset(tr->moe_cnt_step, 0, (size_t)tr->moe_nl * E * sizeof(int64_t));
        if (st) {
            st->moe_layers = tr->moe_nl;
            st->moe_experts = E;
            st->moe_layer_ids = tr->moe_ids;
            st->moe_frac = tr->moe_frac;
            st->moe_aux = tr->micro_in_step ? tr->moe_aux_acc / tr->micro_in_step : 0;
        }
    }
    tr->moe_aux_acc = 0;
    tr->loss_acc = 0;
    tr->micro_in_step = 0;
    return ET_OK;
}

/* ------------------------------------------------------------------ checkpoints */

et_status et_trainer_save_model(et_trainer *tr, const char *dir, et_error *err) {
    if (tr->cfg.lora_rank > 0) {
        et_lora_config lc = {0};
        lc.r = tr->cfg.lora_rank;
        lc.alpha = et_train_lora_alpha(&tr->cfg);
        lc.dropout = tr->cfg.lora_dropout;
        lc.use_rslora = tr->cfg.lora_rslora;
        lc.scale = tr->model->cfg.lora_scale;
        snprintf(lc.base, sizeof lc.base, "%s", tr->cfg.lora_base ? tr->cfg.lora_base : "");
        return et_lora_save(dir, tr->model, &lc, err);
    }
    et_hf_save_opts o = {0};
    o.vocab_path = tr->cfg.vocab_path;
    o.max_seq_length = tr->cfg.max_seq_length;
    o.do_lower_case = tr->cfg.do_lower_case;
    o.strip_accents = tr->cfg.strip_accents;
    return et_hf_save(dir, tr->model, &o, err);
}

typedef struct { et_atomic_file af; uint64_t h; } hashed_file;

static et_status hw(hashed_file *f, const void *p, size_t n, et_error *err) {
    f->h = et_fnv1a64(f->h, p, n);
    return et_atomic_write(&f->af, p, n, err);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* delete all but the newest keep_checkpoints checkpoint folders (best effort: a folder that cannot be
 * removed stays); out of memory listing them is reported */
static et_status prune_checkpoints(et_trainer *tr, const char *keep_name, et_error *err) {
    int keep = tr->cfg.keep_checkpoints;
    if (keep < 1) return ET_OK;
    DIR *d = opendir(tr->cfg.out_dir);
    if (!d) return ET_OK;
    char *names[4096];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 4096)
        if (!strncmp(de->d_name, "checkpoint-", 11) && !strchr(de->d_name, '.')) {
            if (!(names[n] = strdup(de->d_name))) {
                closedir(d);
                while (n > 0) free(names[--n]);
                return et_fail(err, ET_ERR_NOMEM, "%s: out of memory listing the checkpoints to prune", tr->cfg.out_dir);
            }
            n++;
        }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str); /* zero-padded step numbers: sorted by step */
    for (int i = 0; i < n; i++) {
        if (names[i] && i < n - keep && strcmp(names[i], keep_name)) {
            char p[ET_PATH_MAX];
            if (!et_path_join(p, sizeof p, tr->cfg.out_dir, names[i], NULL)) et_rm_tree(p, NULL);
        }
        free(names[i]);
    }
    return ET_OK;
}

#define STATE_MAGIC "ETTRNST1"

et_status et_trainer_save_checkpoint(et_trainer *tr, et_error *err) {
    if (!tr->cfg.out_dir) return et_fail(err, ET_ERR_ARG, "no output folder for checkpoints");
    long step = (long)tr->opt.t;
    char name[64], dir[ET_PATH_MAX], p[ET_PATH_MAX];
    snprintf(name, sizeof name, "checkpoint-%07ld", step);
    et_status s;
    if ((s = et_path_join(dir, sizeof dir, tr->cfg.out_dir, name, err)) || (s = et_mkdir_p(dir, err))) return s;
    if ((s = et_trainer_save_model(tr, dir, err))) return s;
    /* trainer_state.bin */
    if ((s = et_path_join(p, sizeof p, dir, "trainer_state.bin", err))) return s;
    hashed_file f = {.h = FNV0};
    if ((s = et_atomic_open(&f.af, p, err))) return s;
    uint32_t ver = 1, clen = (uint32_t)strlen(tr->canon);
    int64_t hdr[2] = {step, tr->total_steps};
    uint64_t n = tr->opt.n;
    int64_t t = tr->opt.t;
    et_rng base;
    et_rng_seed(&base, tr->cfg.seed);
    uint64_t rs[4];
    et_rng_get_state(&base, rs);
    if ((s = hw(&f, STATE_MAGIC, 8, err)) || (s = hw(&f, &ver, 4, err)) || (s = hw(&f, &clen, 4, err)) ||
        (s = hw(&f, tr->canon, clen, err)) || (s = hw(&f, hdr, sizeof hdr, err)) || (s = hw(&f, &n, 8, err)) ||
        (s = hw(&f, &t, 8, err)) || (s = hw(&f, rs, sizeof rs, err)) || (s = hw(&f, tr->opt.m, n * sizeof(float), err)) ||
        (s = hw(&f, tr->opt.v, n * sizeof(float), err))) {
        et_atomic_abort(&f.af);
        return s;
    }
    uint64_t h = f.h;
    if ((s = et_atomic_write(&f.af, &h, 8, err))) { et_atomic_abort(&f.af); return s; }
    if ((s = et_atomic_commit(&f.af, err))) return s;
    /* trainer_state.json (readable; not needed to resume) */
    long spe = tr->data ? tr->total_steps / tr->cfg.epochs : 0;
    char js[4096];
    int jl = snprintf(js, sizeof js,
                      "{\n  \"step\": %ld,\n  \"total_steps\": %ld,\n  \"epoch\": %ld,\n  \"step_in_epoch\": %ld,\n"
                      "  \"warmup_steps\": %ld,\n  \"settings\": \"%s\"\n}\n",
                      step, tr->total_steps, spe ? step / spe : 0, spe ? step % spe : 0, tr->warmup, tr->canon);
    if ((s = et_path_join(p, sizeof p, dir, "trainer_state.json", err)) || (s = et_write_file_atomic(p, js, (size_t)jl, err)))
        return s;
    /* the pointer, last */
    char line[80];
    int ll = snprintf(line, sizeof line, "%s\n", name);
    if ((s = et_path_join(p, sizeof p, tr->cfg.out_dir, "latest", err)) || (s = et_write_file_atomic(p, line, (size_t)ll, err)))
        return s;
    return prune_checkpoints(tr, name, err);
}

static const char *canon_diff(const char *a, const char *b, char *out, size_t cap) {
    /* first ';'-separated entry that differs */
    while (*a || *b) {
        const char *ea = strchr(a, ';'), *eb = strchr(b, ';');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la)) {
            snprintf(out, cap, "the checkpoint has %.*s, this run has %.*s", (int)la, a, (int)lb, b);
            return out;
        }
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
    snprintf(out, cap, "settings differ");
    return out;
}

/* field by field (no padding bytes); MoE layers compared as sets (a saved mask lists the layers, 0 = all) */
static int same_config(const et_bert_config *a, const et_bert_config *b) {
#define EQ(f) (a->f == b->f)
    if (!(EQ(vocab_size) && EQ(hidden_size) && EQ(num_layers) && EQ(num_heads) && EQ(intermediate_size) &&
          EQ(max_position) && EQ(type_vocab_size) && EQ(layer_norm_eps) && EQ(hidden_dropout) && EQ(attn_dropout) &&
          EQ(pad_token_id) && EQ(arch) && EQ(position_offset) && EQ(has_pooler) && EQ(pooling) && EQ(normalize) && EQ(moe_experts) && EQ(moe_gate_scale) &&
          EQ(moe_aux_weight) && EQ(moe_jitter)))
        return 0;
#undef EQ
    for (int l = 0; l < a->num_layers; l++)
        if (et_bert_layer_is_moe(a, l) != et_bert_layer_is_moe(b, l)) return 0;
    return 1;
}

et_status et_trainer_resume(et_trainer *tr, et_error *err) {
    if (!tr->cfg.out_dir) return et_fail(err, ET_ERR_ARG, "no output folder to resume from");
    char p[ET_PATH_MAX], dir[ET_PATH_MAX];
    char *buf = NULL;
    size_t len;
    et_status s;
    if ((s = et_path_join(p, sizeof p, tr->cfg.out_dir, "latest", err))) return s;
    if (!et_file_exists(p)) return et_fail(err, ET_ERR_IO, "%s: no checkpoint to resume from (no 'latest' file)", tr->cfg.out_dir);
    if ((s = et_read_file(p, 4096, &buf, &len, err))) return s;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) buf[--len] = 0;
    if (!len || strchr(buf, '/')) { free(buf); return et_fail(err, ET_ERR_FORMAT, "%s: not a checkpoint name", p); }
    s = et_path_join(dir, sizeof dir, tr->cfg.out_dir, buf, err);
    free(buf);
    if (s || (s = et_path_join(p, sizeof p, dir, "trainer_state.bin", err))) return s;
    if ((s = et_read_file(p, size_cap((uint64_t)1 << 40), &buf, &len, err))) return s;
    const char *q = buf, *end = buf + len;
    uint32_t ver, clen;
    int64_t hdr[2], t;
    uint64_t n, rs[4], h;
#define TAKE(dst, sz) do { if ((size_t)(end - q) < (size_t)(sz)) goto trunc; memcpy((dst), q, (sz)); q += (sz); } while (0)
    if (len < 16 || memcmp(q, STATE_MAGIC, 8)) { s = et_fail(err, ET_ERR_FORMAT, "%s: not a trainer state file", p); goto out; }
    q += 8;
    TAKE(&ver, 4);
    TAKE(&clen, 4);
    if (ver != 1) { s = et_fail(err, ET_ERR_FORMAT, "%s: unsupported version %u", p, ver); goto out; }
    if ((size_t)(end - q) < clen) goto trunc;
    const char *canon = q;
    q += clen;
    TAKE(hdr, sizeof hdr);
    TAKE(&n, 8);
    TAKE(&t, 8);
    TAKE(rs, sizeof rs);
    memcpy(&h, end - 8, 8);
    if (et_fnv1a64(FNV0, buf, len - 8) != h) { s = et_fail(err, ET_ERR_FORMAT, "%s: checksum mismatch (damaged file)", p); goto out; }
    if (clen != strlen(tr->canon) || memcmp(canon, tr->canon, clen)) { /* settings before sizes: the clearer message */
        char tmp[8192], d[1024];
        snprintf(tmp, sizeof tmp, "%.*s", (int)clen, canon);
        s = et_fail(err, ET_ERR_MISMATCH, "%s: cannot resume with different settings or data: %s", p,
                    canon_diff(tmp, tr->canon, d, sizeof d));
        goto out;
    }
    if (n != tr->opt.n) {
        s = et_fail(err, ET_ERR_MISMATCH, "%s: the checkpoint has %llu parameters, the model %zu", p, (unsigned long long)n, tr->opt.n);
        goto out;
    }
    if ((size_t)(end - q) != n * 8 + 8) goto trunc;
    if (tr->cfg.lora_rank > 0) { /* the adapters from the checkpoint's adapter folder; the base is the one given */
        et_lora_adapter la;
        if (!(s = et_lora_read(dir, &la, err))) s = et_lora_load_into(tr->model, &la, err);
        et_lora_free(&la);
        if (s) goto out;
        goto state;
    }
    /* parameters from the checkpoint's model folder */
    et_bert ck;
    if ((s = et_hf_load(dir, &ck, err))) goto out;
    if (ck.n_params != tr->model->n_params || !same_config(&ck.cfg, &tr->model->cfg)) {
        et_bert_free(&ck);
        s = et_fail(err, ET_ERR_MISMATCH, "%s: the checkpoint's model differs in shape or configuration from the one given", dir);
        goto out;
    }
    memcpy(tr->model->params, ck.params, ck.n_params * sizeof(float));
    et_bert_params_changed(tr->model);
    et_bert_free(&ck);
state:;
    float *mv = malloc(n * 2 * sizeof(float));
    if (!mv) { s = et_fail(err, ET_ERR_NOMEM, "out of memory for the optimizer state of the checkpoint (%zu floats)", (size_t)(n * 2)); goto out; }
    memcpy(mv, q, n * 2 * sizeof(float));
    s = et_adamw_set_state(&tr->opt, mv, mv + n, n, t, err);
    free(mv);
    memset(tr->grads, 0, n * sizeof(float));
    tr->micro_in_step = 0;
    tr->loss_acc = 0;
    tr->moe_aux_acc = 0;
    if (tr->moe_cnt_step) memset(tr->moe_cnt_step, 0, (size_t)tr->moe_nl * tr->model->cfg.moe_experts * sizeof(int64_t));
    goto out;
trunc:
    s = et_fail(err, ET_ERR_FORMAT, "%s: truncated trainer state", p);
out:
#undef TAKE
    free(buf);
    return s;
}

/* ------------------------------------------------------------------ the loop */

static et_status tokenize_group(const et_tokenizer *tok, const char **texts, int n, int max_len, int32_t *ids,
                                int32_t *mask, int *T, const char *what, et_error *err) {
    et_status s = et_tokenize_batch(tok, texts, n, max_len, 0, ids, mask, T, err);
    return s ? et_error_prefix(err, "tokenizing %s", what) : ET_OK;
}

et_status et_trainer_run(et_trainer *tr, const et_tokenizer *tok, et_error *err) {
    const et_train_data *d = tr->data;
    const et_train_cfg *c = &tr->cfg;
    if (!d) return et_fail(err, ET_ERR_ARG, "et_trainer_run needs the trainer to be made with data");
    if (!c->out_dir) return et_fail(err, ET_ERR_ARG, "no output folder");
    et_status s;
    if ((s = et_mkdir_p(c->out_dir, err)) || (s = et_remove_stale_tmp(c->out_dir, 0, err))) return s;
    int B = tr->B, G = tr->G, Tq = c->max_len_q, Td = c->max_len_d;
    long nb = (d->n + B - 1) / B, spe = tr->total_steps / c->epochs;
    size_t ntext = (size_t)B * (G > 1 ? G : 1);
    const char **texts = malloc(ntext * sizeof(char *));
    unsigned char *avail = malloc(ntext);
    int tw = soft_list(c) ? 1 + G : 1; /* targets per example */
    float *tg = malloc((size_t)B * tw * sizeof(float));
    FILE *log = NULL;
    if (!texts || !avail || !tg) { s = et_fail(err, ET_ERR_NOMEM, "out of memory for the batch tables (%zu texts)", ntext); goto done; }
    if (c->log_path && !(log = fopen(c->log_path, tr->opt.t > 0 ? "a" : "w"))) {
        s = et_fail(err, ET_ERR_IO, "%s: cannot open the log: %s", c->log_path, strerror(errno));
        goto done;
    }
    int32_t *qi = tr->tok_ids, *qm = tr->tok_mask;
    int32_t *pi = qi + (size_t)B * Tq, *pm = qm + (size_t)B * Tq;
    int32_t *ni = pi + (size_t)B * Td, *nm = pm + (size_t)B * Td;
    int32_t *nqi = ni + (size_t)B * G * Td, *nqm = nm + (size_t)B * G * Td;
    double t0 = et_now_s();
    long start = (long)tr->opt.t, examples = 0;
    et_rng base;
    et_rng_seed(&base, c->seed);
    while ((long)tr->opt.t < tr->total_steps) {
        long step = (long)tr->opt.t;
        int epoch = (int)(step / spe);
        long k = step % spe;
        if (tr->perm_epoch != epoch) {
            et_rng er;
            et_rng_fork(&base, (uint64_t)epoch + 1, &er);
            et_rng_permutation(&er, tr->perm, (size_t)d->n);
            tr->perm_epoch = epoch;
        }
        long m0 = k * c->grad_accum, m1 = m0 + c->grad_accum < nb ? m0 + c->grad_accum : nb;
        long step_ex = 0;
        for (long mb = m0; mb < m1; mb++) {
            int i0 = (int)(mb * B), nbat = d->n - i0 < B ? d->n - i0 : B;
            const int *idx = tr->perm + i0;
            et_train_batch b = {0};
            b.B = nbat;
            b.G = G;
            for (int i = 0; i < nbat; i++) texts[i] = d->ex[idx[i]].query;
            if ((s = tokenize_group(tok, texts, nbat, Tq, qi, qm, &b.Tq, "queries", err))) goto done;
            for (int i = 0; i < nbat; i++) texts[i] = d->ex[idx[i]].positive;
            if ((s = tokenize_group(tok, texts, nbat, Td, pi, pm, &b.Td, "positives", err))) goto done;
            b.q_ids = qi; b.q_mask = qm; b.p_ids = pi; b.p_mask = pm;
            if (G > 0) {
                for (int i = 0; i < nbat; i++)
                    for (int g = 0; g < G; g++) texts[i * G + g] = d->ex[idx[i]].negatives[g];
                if ((s = tokenize_group(tok, texts, nbat * G, Td, ni, nm, &b.Tn, "negatives", err))) goto done;
                b.n_ids = ni; b.n_mask = nm;
            }
            if (c->loss == ET_TRAIN_CLP) {
                for (int i = 0; i < nbat; i++)
                    for (int g = 0; g < G; g++) {
                        const et_train_example *e = &d->ex[idx[i]];
                        const char *t = e->n_negq ? e->neg_queries[g] : NULL;
                        avail[i * G + g] = t != NULL;
                        texts[i * G + g] = t ? t : "";
                    }
                if ((s = tokenize_group(tok, texts, nbat * G, Tq, nqi, nqm, &b.Tnq, "negative queries", err))) goto done;
                b.nq_ids = nqi; b.nq_mask = nqm; b.nq_avail = avail;
            }
            if (tr->fx_x) {
                long nx = et_trainer_exclude(tr, idx, nbat, pair_rows(c) ? 0 : G, !soft_list(c), tr->fx_x, &tr->fx_cands,
                                             &tr->fx_excluded, &tr->fx_own);
                if (nx < 0) { s = et_fail(err, ET_ERR_NOMEM, "out of memory for the false-negative matrix"); goto done; }
                if (nx > 0) b.exclude = tr->fx_x;
            }
            if (tr->targets) {
                for (int i = 0; i < nbat; i++)
                    memcpy(tg + (size_t)i * tw, tr->targets + (size_t)idx[i] * tw, sizeof(float) * (size_t)tw);
                b.target = tg;
            }
            uint64_t seed = mix64(c->seed ^ mix64((uint64_t)epoch * (uint64_t)nb + (uint64_t)mb + 1));
            if ((s = micro_scaled(tr, &b, seed, 1.0 / (double)(m1 - m0), NULL, err))) {
                if (s == ET_ERR_NUMERIC) goto numeric;
                goto done;
            }
            step_ex += nbat;
        }
        et_train_stats st;
        if ((s = et_trainer_update(tr, &st, err))) {
            if (s == ET_ERR_NUMERIC) goto numeric;
            goto done;
        }
        examples += step_ex;
        st.epoch = epoch;
        st.elapsed_s = et_now_s() - t0;
        st.examples = step_ex;
        st.examples_per_s = st.elapsed_s > 0 ? examples / st.elapsed_s : 0;
        if (log) {
            fprintf(log, "{\"step\":%ld,\"epoch\":%d,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"examples_per_s\":%.6g,\"elapsed\":%.6g",
                    st.step, st.epoch, st.loss, st.lr, st.grad_norm, st.examples_per_s, st.elapsed_s);
            if (st.moe_layers > 0) { /* "moe_aux": balance-loss part of loss; "moe_frac": [MoE layer][expert] */
                fprintf(log, ",\"moe_aux\":%.9g,\"moe_layers\":[", st.moe_aux);
                for (int k = 0; k < st.moe_layers; k++) fprintf(log, "%s%d", k ? "," : "", st.moe_layer_ids[k]);
                fputs("],\"moe_frac\":[", log);
                for (int k = 0; k < st.moe_layers; k++) {
                    fputs(k ? ",[" : "[", log);
                    for (int e = 0; e < st.moe_experts; e++)
                        fprintf(log, "%s%.4g", e ? "," : "", st.moe_frac[(size_t)k * st.moe_experts + e]);
                    fputc(']', log);
                }
                fputc(']', log);
            }
            fputs("}\n", log);
            fflush(log);
        }
        int stop = c->progress ? c->progress(c->user, &st) : 0;
        if (c->stop_after > 0 && st.step - start >= c->stop_after) stop = 1;
        if (stop && st.step < tr->total_steps) {
            s = et_trainer_save_checkpoint(tr, err);
            goto done;
        }
        if (c->save_every > 0 && st.step % c->save_every == 0 && st.step < tr->total_steps &&
            (s = et_trainer_save_checkpoint(tr, err)))
            goto done;
    }
    if ((long)tr->opt.t > start && (s = et_trainer_save_checkpoint(tr, err))) goto done;
    s = et_trainer_save_model(tr, c->out_dir, err);
    goto done;
numeric: {
        char p[ET_PATH_MAX], *lb = NULL;
        size_t ln = 0;
        const char *last = NULL;
        if (!et_path_join(p, sizeof p, c->out_dir, "latest", NULL) && et_file_exists(p) && !et_read_file(p, 4096, &lb, &ln, NULL)) {
            while (ln && (lb[ln - 1] == '\n' || lb[ln - 1] == '\r')) lb[--ln] = 0;
            last = lb;
        }
        if (last)
            et_error_prefix(err, "step %ld: training diverged (non-finite values); stopped, the last good checkpoint is %s/%s",
                            (long)tr->opt.t + 1, c->out_dir, last);
        else
            et_error_prefix(err, "step %ld: training diverged (non-finite values); stopped (no checkpoint was written yet)",
                            (long)tr->opt.t + 1);
        free(lb);
        s = ET_ERR_NUMERIC;
    }
done:
    if (log) fclose(log);
    free(texts); free(avail); free(tg);
    return s;
}
