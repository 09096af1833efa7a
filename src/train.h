/* train.h - the training loop: batches -> forward per text group -> loss -> backward -> AdamW,
 * with gradient accumulation, clipping, the linear warm-up schedule, checkpoints and exact resume.
 *
 * One optimizer step (sentence-transformers fit() / HF Trainer order):
 *   for each of grad_accum micro-batches:
 *       tokenize queries Q [B,Tq], positives P [B,Td], negatives N [B*G,Td], negative queries NQ [B*G,Tq]
 *       -> et_bert_forward per group (each group has its own training activations, planned up front)
 *       -> loss on the pooled embeddings (src/loss.h; grad_scale = 1/micro-batches in this step)
 *       -> et_bert_backward per group, all accumulating into ONE gradient buffer
 *   -> et_clip_grad_norm(max_grad_norm) -> et_adamw_step(lr = et_lr_linear_warmup at opt.t) -> zero grads
 *
 * Data order: epoch e uses the permutation et_rng_permutation(fork(seed, e + 1)); micro-batch k of the
 * epoch holds perm[k*B .. k*B+B) (the last one may be smaller). The step number alone fixes the
 * position in the data, and dropout seeds are a hash of (seed, micro-batch index, group), so a run
 * resumed from a checkpoint repeats the uninterrupted run bit for bit. The kernels' sums do not depend
 * on the thread count (kernels.h "Determinism"), so neither does the result: any cfg.threads, the
 * same bits (for one SIMD path and build; README "Reproducibility").
 *
 * Checkpoints (out_dir/checkpoint-NNNNNNN/): the model as a sentence-transformers folder (et_hf_save,
 * F32) + trainer_state.bin (optimizer m, v, t, step, the canonical config string, a checksum) +
 * trainer_state.json (readable summary). Every file is written atomically; then out_dir/latest (one
 * line: the checkpoint folder name) is atomically replaced. A crash at any point leaves `latest`
 * naming a complete, consistent checkpoint. Resume refuses a checkpoint made with different
 * settings or data, naming the first differing setting.
 *
 * Losses: infonce (MNRL, in-batch + hard negatives; symmetric option), mse (cosine MSE on the hard
 * label), soft1/soft2/soft3 (cosine MSE on et_soft_targets computed ONCE over the whole training set; with
 * cfg.soft_list, soft-target InfoNCE over each query's own group, see et_loss_soft_infonce),
 * clp (InfoNCE + penalty pulling each negative toward its own query; missing negative queries masked).
 *
 * Mixture of experts (src/moe.h): cfg.moe_experts > 0 converts a dense model in et_trainer_init (or checks an MoE
 * one) and applies the gate mode / balance-loss weight / jitter; cfg.train_only_moe freezes all but routers and
 * experts. The balance loss is part of the reported loss (its gradient is scaled like the task loss), and every
 * step reports the share of real tokens routed to each expert per MoE layer (et_train_stats.moe_frac, the log's
 * "moe_frac"). */
#ifndef ET_TRAIN_H
#define ET_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "bert.h"
#include "error.h"
#include "loss.h"
#include "matryoshka.h"
#include "optim.h"
#include "threads.h"
#include "tokenizer.h"
#include "util.h"

typedef enum {
    ET_TRAIN_INFONCE = 0,
    ET_TRAIN_MSE = 1,   /* cosine MSE on the hard label */
    ET_TRAIN_SOFT1 = 2, /* cosine MSE on soft targets, rule ET_SOFT_MEAN */
    ET_TRAIN_SOFT2 = 3, /* ET_SOFT_BLEND */
    ET_TRAIN_SOFT3 = 4, /* ET_SOFT_GATED */
    ET_TRAIN_CLP = 5
} et_train_loss;

et_status et_train_loss_parse(const char *s, et_train_loss *out, et_error *err);
const char *et_train_loss_name(et_train_loss l);

/* --precision: the arithmetic of the Linear layers' GEMMs while training (bert.h et_bert_acts_set_bf16).
 * fp32 (the default): everything fp32, bit for bit as builds without this option. bf16: bf16 operands,
 * fp32 accumulation, fp32 master weights, gradients, AdamW, LayerNorm, softmax, GELU and loss; it needs
 * VDPBF16PS (AVX512_BF16) and is refused without it (WebAssembly has no bf16 instructions). auto: bf16 where
 * it is faster, i.e. VDPBF16PS runs and its GEMM kernel measures at least ET_BF16_AUTO_SPEEDUP times the fp32
 * kernel's speed on this CPU (kernels.h et_bf16_speedup), else fp32. */
typedef enum { ET_PREC_FP32 = 0, ET_PREC_BF16 = 1, ET_PREC_AUTO = 2 } et_precision;
#define ET_BF16_AUTO_SPEEDUP 1.2
et_status et_train_precision_parse(const char *s, et_precision *out, et_error *err);
const char *et_train_precision_name(et_precision p);
/* fp32 or bf16 for this CPU and build (auto: a few milliseconds of timing); why (may be NULL) gets a
 * sentence saying why. ET_ERR_ARG with the reason when bf16 was asked for and cannot run here. */
et_status et_train_precision_resolve(et_precision asked, et_precision *out, char *why, size_t cap, et_error *err);

/* Statistics of one optimizer step, given to the progress callback and written to the log. */
typedef struct {
    long step;            /* 1-based optimizer step just completed */
    long total_steps;
    int epoch;            /* 0-based epoch of this step */
    double loss;          /* mean of the step's micro-batch losses */
    double lr;            /* learning rate used by this step */
    double grad_norm;     /* total gradient norm before clipping */
    double examples_per_s;/* queries per second since the start of this run */
    double elapsed_s;     /* seconds since the start of this run */
    long examples;        /* queries in this step */
    /* mixture of experts (all 0 / NULL for a dense model) */
    int moe_layers;       /* number of MoE layers */
    int moe_experts;      /* E */
    const int *moe_layer_ids;  /* [moe_layers] their layer indices */
    const float *moe_frac;     /* [moe_layers, E]: fraction of the step's REAL tokens (every text group, every
                                  micro-batch) routed to each expert; valid during the callback */
    double moe_aux;       /* the step's balance-loss part of `loss` (mean over micro-batches, unscaled) */
} et_train_stats;

typedef struct {
    et_train_loss loss;
    double tau;           /* InfoNCE / CLP temperature (default 0.05) */
    int symmetric;        /* InfoNCE only: MultipleNegativesSymmetricRankingLoss (default 0) */
    int in_batch;         /* 1 (default): all positives and negatives of the batch are candidates; 0: per query */
    int exclude_positives; /* 1 (default): known false negatives leave the softmax (et_loss_cfg.exclude): for query i,
                             every candidate of the batch's OTHER rows (their positives and negatives) whose text is
                             another positive of i's query (the positives of every example with the same query text),
                             and for infonce/clp also i's own negatives that are; matched by exact text
                             (et_trainer_exclude). Data with
                             several answers per question (BEIR qrels, FAQs) otherwise train relevant passages apart.
                             Data with one positive text per query train bit for bit as with 0 (and keep their
                             resume check). 0: every in-batch candidate counts as a negative (sentence-transformers MNRL) */
    double lambda;        /* CLP weight (default 0.1) */
    et_clp_pen pen;       /* CLP penalty form (default mean) */
    et_soft_norm soft_norm; /* soft1..3: per-expert normalisation over the training set (default none) */
    double alpha;         /* soft2 blend weight (default 0.5) */
    et_matryoshka matryoshka; /* n > 0: the loss is summed over these embedding prefixes (matryoshka.h); default off */
    int soft_list;        /* soft1..3: 0 (default) = the pair form, cosine MSE on each row's target; 1 = the list form
                             (finetune's default, issue 20): each example is a query, its positive and its negatives,
                             scores holds (1 + n_neg) * K values (the positive's K expert scores, then each
                             negative's), the targets yhat (labels 1 / 0) become W = softmax(yhat / tau) over the
                             query's own group (et_soft_list_weights) and the loss is et_loss_soft_infonce */
    double soft_lo, soft_hi; /* soft1..3: targets calibrated to lo + t*(hi - lo) (et_soft_calibrate); default 0, 1 =
                             the targets as the rule gives them */
    double lr;            /* peak learning rate (default 2e-5) */
    double weight_decay;  /* AdamW (default 0.01, sentence-transformers fit); biases and LayerNorm get 0 */
    double adam_eps;      /* default 1e-8 */
    long warmup_steps;    /* >= 0: warm-up steps; -1 (default): use warmup_ratio */
    double warmup_ratio;  /* warm-up = ceil(ratio * total steps) when warmup_steps < 0 (default 0.1) */
    int epochs;           /* default 1 */
    int batch;            /* queries per micro-batch (default 16) */
    int grad_accum;       /* micro-batches per optimizer step (default 1) */
    double max_grad_norm; /* clip (default 1.0, as HF Trainer / ST fit); <= 0: no clipping */
    int max_len_q;        /* tokens per query incl. [CLS]/[SEP] (default 64); negative queries too */
    int max_len_d;        /* tokens per document (default 256) */
    int negatives;        /* hard negatives per query used (G); -1 (default): the fewest any example has */
    uint64_t seed;        /* data order and dropout (default 42) */
    int dropout;          /* 1 (default): the model's dropout is active while training */
    int packed;           /* 1: every forward/backward runs packed, without padded tokens (bert.h
                             et_bert_forward_packed): the same gradients to float rounding, other dropout
                             draws; 0 (default): padded to each group's longest text with a mask */
    const char *freeze;   /* comma-separated tensor-name prefixes to freeze, e.g. "embeddings.,encoder.layer.0." */
    int threads;          /* pool size when the trainer makes its own pool (0 = all cores) */
    long save_every;      /* checkpoint every N optimizer steps (0 = only at the end) */
    int keep_checkpoints; /* checkpoint folders kept (default 2; older ones are deleted) */
    const char *out_dir;  /* checkpoints + the final model (required by et_trainer_run) */
    const char *log_path; /* per-step JSONL log (NULL = none); appended to on resume */
    size_t mem_budget;    /* bytes allowed for activations + parameters/gradients/optimizer (default 8 GiB) */
    long total_steps;     /* schedule length without data (low-level use); computed from the data otherwise */
    long stop_after;      /* stop (with a checkpoint) after this many steps of THIS run; 0 = run to the end */
    /* model folder metadata for saving */
    const char *vocab_path; /* vocab.txt copied into every saved folder (required for saving) */
    int max_seq_length;   /* sentence_bert_config.json (0 = max_position) */
    int do_lower_case;    /* -1 = default */
    int strip_accents;    /* saved tokenizer_config.json strip_accents: ET_STRIP_NULL (0), _TRUE, _FALSE (hf.h) */
    /* mixture of experts (src/moe.h; the CLP paper's MoE FFN up-projection) */
    int moe_experts;      /* E > 0: train an MoE model with E experts per MoE layer. A dense model is converted in
                             place by et_trainer_init (et_bert_to_moe, router seed = seed); an MoE model must
                             already have E experts (and, if moe_layer_mask != 0, those layers). The gate/aux/jitter
                             settings below are then written into model->cfg (saved in config.json).
                             0 (default): keep the model as it is (an MoE model keeps its own settings). */
    uint64_t moe_layer_mask; /* bit l = layer l becomes MoE on conversion; 0 (default) = all layers */
    int train_only_moe;   /* 1: only routers and experts are trained (the paper's --only_train intermediate);
                             everything else is frozen. Needs an MoE model (or moe_experts > 0) */
    int moe_gate_scale;   /* ET_MOE_GATE_*: 1 = Switch (default), 0 = the authors' unscaled routing, 2 = ste */
    double moe_aux_weight; /* alpha of the Switch balance loss (default 0.01) */
    double moe_jitter;    /* router input jitter eps while training with dropout (default 0) */
    et_precision precision; /* ET_PREC_FP32 (default), _BF16 or _AUTO: see et_train_precision_parse; resolved by
                             et_trainer_init (et_trainer.precision); bf16 is part of the resume check */
    /* LoRA (lora.h, bert.h et_bert_lora_attach): lora_rank > 0 attaches low-rank adapters to the Linear layers of
     * lora_sites (A drawn from `seed`, B = 0) and trains them alone. The base is frozen with NO gradient buffer and
     * NO AdamW state for it: gradients and both moments cover the adapters' buffer only (et_trainer.train_n).
     * Checkpoints and the saved model are PEFT adapter folders (et_lora_save); the LoRA settings and a hash of the
     * base's parameters are part of the resume check. Not with freeze or train_only_moe. 0 (default): every
     * parameter is trained, bit for bit as builds without LoRA. */
    int lora_rank;        /* r */
    double lora_alpha;    /* lora_alpha; <= 0 (default): 2 * r (scale 2) */
    double lora_dropout;  /* dropout on the adapters' input while training with dropout (default 0.1) */
    unsigned lora_sites;  /* bits ET_LIN_* (bert.h); 0 (default): query and value (PEFT's default for BERT) */
    int lora_rslora;      /* 1: scale = alpha / sqrt(r) (rsLoRA) instead of alpha / r */
    const char *lora_base; /* base_model_name_or_path written in adapter_config.json (NULL = "") */
    /* Activation checkpointing (bert.h et_bert_config.act_checkpoint): the activations keep each layer's input and
     * one layer's saved set, and backward recomputes each layer; the gradients are bit for bit the same, a step costs
     * one more forward of all but the top layer. -1 (et_train_cfg_default): on with LoRA, off otherwise; 0: off;
     * 1: on. Not with MoE (refused when asked for; auto leaves it off). */
    int act_checkpoint;
    /* called after every optimizer step; return non-zero to stop (a checkpoint is written) */
    int (*progress)(void *user, const et_train_stats *s);
    void *user;
} et_train_cfg;

/* Whether a run checkpoints activations (c->act_checkpoint resolved: -1 = on with LoRA, never with MoE). */
int et_train_act_checkpoint(const et_train_cfg *c, const et_bert_config *model_cfg);

/* The LoRA settings a run uses (c->lora_rank > 0): alpha (lora_alpha, or 2 * r by default) and the adapted Linear
 * layers (lora_sites, or query + value by default; bits ET_LIN_*). */
double et_train_lora_alpha(const et_train_cfg *c);
unsigned et_train_lora_sites(const et_train_cfg *c);

void et_train_cfg_default(et_train_cfg *cfg);

/* One training example (one JSONL line). */
typedef struct {
    char *query, *positive;
    char **negatives; int n_neg;
    char **neg_queries; int n_negq;   /* aligned with negatives; NULL entries (JSON null or "") = missing */
    float label; int has_label;
    float *scores; int n_scores;
    int line;
} et_train_example;

typedef struct {
    et_train_example *ex;
    int n;
    uint64_t hash;        /* et_train_data_hash(this) (part of the resume check); set it when filling ex yourself */
    char path[512];
} et_train_data;

/* FNV-1a (util.h) over every example in order: query, positive, the negatives and negative queries (a NULL
 * negative query hashes differently from ""), the label (if any) and the scores. Two sets that train
 * differently hash differently (up to 64-bit collisions); the file's formatting does not matter. */
uint64_t et_train_data_hash(const et_train_data *d);

/* Training examples from a pairs file, read by THE pairs reader (et_pairs_read, data.h): JSONL rows
 * {"query", "positive"|"passage", "negatives": [str], "negative_queries": [str|null] (null or "" = none),
 * "label": 0/1, true/false or a number in [0,1], "scores": [number] | "experts": {name: number}, "id"},
 * or CSV/TSV with a header (query, passage|positive, label, id, expert columns). Every row has a label or
 * none does; expert scores likewise. Errors name file:line and field. */
et_status et_train_data_read(const char *path, et_train_data *d, et_error *err);
void et_train_data_free(et_train_data *d);

/* One tokenised micro-batch (low-level API; et_trainer_run builds these itself). */
typedef struct {
    int B, G;                          /* G <= the trainer's G; 0 for mse/soft */
    const int32_t *q_ids, *q_mask; int Tq;    /* [B,Tq] */
    const int32_t *p_ids, *p_mask; int Td;    /* [B,Td] */
    const int32_t *n_ids, *n_mask; int Tn;    /* [B*G,Tn] (infonce/clp) */
    const int32_t *nq_ids, *nq_mask; int Tnq; /* [B*G,Tnq] (clp) */
    const unsigned char *nq_avail;     /* [B*G] 1 = the negative has a query (clp; NULL = all) */
    const float *target;               /* [B] mse/soft targets; soft_list: [B, 1+G] target weights W */
    const unsigned char *exclude;      /* [B, B+B*G] et_loss_cfg.exclude for infonce/clp/soft_list (NULL = none) */
} et_train_batch;

typedef struct {
    et_train_cfg cfg;
    et_bert *model;          /* borrowed; its params are trained in place */
    et_pool *pool; int own_pool;
    float *grads;            /* [train_n]: the gradients of train_params[0 .. train_n) (all parameters; those after a
                                frozen prefix of the buffer, e.g. --freeze-embeddings; or the LoRA adapters) */
    et_bert_params gview;    /* views into grads; NULL = frozen */
    et_param_seg *segs; int nsegs;
    et_adamw opt;
    et_bert_acts acts[4];    /* Q, P, N, NQ */
    float *act_shared;       /* their transient part, one region (bert.h et_bert_acts_alloc_shared; NULL with MoE) */
    int G, B;                /* planned negatives per query, queries per micro-batch */
    double *scratch;         /* loss scratch */
    float *mrl_scratch;      /* Matryoshka cut copies (et_matryoshka_scratch_floats); NULL when off */
    float *emb_grad;         /* dQ | dP | dN | dNQ */
    long total_steps, warmup;
    long micro_in_step;      /* micro-batches accumulated since the last update */
    double loss_acc;
    uint64_t micro_seq;      /* index of the next micro-batch (dropout seeds) */
    /* data (et_trainer_run) */
    const et_train_data *data;
    float *targets;          /* [n] mse/soft targets over the training set; soft_list: [n, 1+G] weights */
    int *perm; int perm_epoch;
    /* known false negatives (cfg.exclude_positives; NULL when off, for the pair losses, or when no query has two
       different positive texts): the positive texts interned (exact text; fx_map over fx_keys), each example's
       query id and positive text id, and per query id its sorted positive text ids. Negatives are looked up per
       micro-batch (re-mining replaces them). */
    et_strmap fx_map; const char **fx_keys;
    int32_t *fx_q, *fx_p;              /* [n], [n] */
    int64_t *fx_off; int32_t *fx_pos;  /* [nq+1], [fx_off[nq]] */
    unsigned char *fx_x;               /* [B, B+B*G] the micro-batch's matrix */
    int64_t fx_cands, fx_excluded;     /* other rows' candidates seen by et_trainer_run so far / excluded */
    int64_t fx_own;                    /* own negatives that are other positives of the query (excluded for infonce/clp) */
    int32_t *tok_ids, *tok_mask;
    char canon[2048];        /* canonical settings string (resume check) */
    /* MoE routing statistics (counts of real tokens per expert; NULL for a dense model) */
    int moe_nl;              /* MoE layers */
    int moe_ids[ET_MAX_LAYERS];
    int64_t *moe_cnt_step;   /* [moe_nl, E] this optimizer step */
    int64_t *moe_cnt_run;    /* [moe_nl, E] since et_trainer_init */
    float *moe_frac;         /* [moe_nl, E] the last step's fractions (et_train_stats.moe_frac) */
    double moe_aux_acc;
    size_t bytes_planned;
    float *train_params;     /* the buffer AdamW updates: model->params, or model->lora with LoRA (borrowed) */
    size_t train_n;          /* its floats = the floats of grads and of each AdamW moment */
    size_t bytes_state;      /* parameters (base + adapters) + gradients + AdamW moments allocated, in bytes */
    et_precision precision;  /* what runs: ET_PREC_FP32 or ET_PREC_BF16 (cfg.precision resolved) */
} et_trainer;

/* The word-embedding table's name prefix (--freeze-embeddings): the first tensor of the buffer, so frozen it is a frozen
 * prefix with no gradient and no AdamW state. */
#define ET_TRAIN_WORD_EMB_PREFIX "embeddings.word_embeddings."

/* What training a model of config mc with cfg holds for its parameters, exactly as et_trainer_init allocates it (the
 * one rule both the up-front plan and the trainer count by; the trainer checks that it made what this says):
 * *param_floats the parameter buffer (after the MoE conversion cfg asks for) plus the LoRA adapters,
 * *train_floats the floats that get a gradient and the two AdamW moments: everything from the first tensor that is
 * trained on (a frozen prefix, e.g. --freeze-embeddings' word-embedding table, has no gradient and no AdamW state;
 * frozen tensors after it keep theirs), or the adapters alone with LoRA. Returns 4 * (params + 3 * train) bytes.
 * Either pointer may be NULL. */
size_t et_train_state_bytes(const et_train_cfg *cfg, const et_bert_config *mc, size_t *param_floats, size_t *train_floats);

/* The trainer's memory before it is made, for `finetune`'s up-front check: bytes for the activations of the four
 * text groups (queries B x max_len_q, positives B x max_len_d, negatives B*G x max_len_d, CLP's negative queries
 * B*G x max_len_q; lengths clamped to the model's positions), the parameters with the gradients and AdamW moments
 * of what is trained (et_train_state_bytes: frozen prefixes and LoRA counted as allocated) and the loss/batch
 * scratch, for cfg's loss and matryoshka. et_trainer_init plans the same way with the exact data and refuses by it.
 * The groups' activations are laid out with cfg's checkpointing (et_train_act_checkpoint) and share one region of
 * transient scratch (bert.h et_bert_acts_alloc_shared): the total counts each group's own part plus the largest
 * group's region once. act_bytes[4] and *state_bytes (each may be NULL) receive the groups' own parts and the
 * parameters' share. */
size_t et_train_plan_bytes(const et_train_cfg *cfg, const et_bert_config *mc, int B, int G, int nthreads,
                           size_t act_bytes[4], size_t *state_bytes);

/* Plan and allocate everything for training `model` (borrowed). pool may be NULL (the trainer makes its
 * own with cfg->threads). data may be NULL (low-level use: then cfg->negatives >= 0 and cfg->total_steps
 * > 0 must be given); with data, the loss/data fit is checked (file:line errors), G and the number of
 * steps are derived, and soft targets are computed over the whole set. Refuses (ET_ERR_NOMEM, with the
 * sizes) a plan above cfg->mem_budget. */
et_status et_trainer_init(et_trainer *tr, const et_train_cfg *cfg, et_bert *model, et_pool *pool,
                          const et_train_data *data, et_error *err);
void et_trainer_free(et_trainer *tr);

/* Low-level: forward + loss + backward of one micro-batch, accumulating gradients (scaled by
 * 1/cfg.grad_accum). *loss gets the micro-batch loss. dropout_seed seeds the masks (if cfg.dropout). */
et_status et_trainer_micro(et_trainer *tr, const et_train_batch *b, uint64_t dropout_seed, double *loss,
                           et_error *err);
/* Low-level: clip, AdamW step at the scheduled lr, zero the gradients. stats may be NULL. */
et_status et_trainer_update(et_trainer *tr, et_train_stats *stats, et_error *err);

/* Train on the data given to et_trainer_init (tokenised with tok) from the current step to the end
 * (or cfg.stop_after steps), with checkpoints, log and progress. Saves the final model to cfg.out_dir.
 * A NaN/Inf loss or gradient stops with ET_ERR_NUMERIC; the last checkpoint is left untouched. */
et_status et_trainer_run(et_trainer *tr, const et_tokenizer *tok, et_error *err);

/* Write a checkpoint for the current step into cfg.out_dir (see the top of this file). */
et_status et_trainer_save_checkpoint(et_trainer *tr, et_error *err);
/* Load cfg.out_dir/latest: parameters, optimizer state and step. ET_ERR_IO if there is none;
 * ET_ERR_MISMATCH if it was made with other settings/data or another model shape. */
et_status et_trainer_resume(et_trainer *tr, et_error *err);
/* Save the current model as a sentence-transformers folder (with LoRA: the adapters as a PEFT folder). */
et_status et_trainer_save_model(et_trainer *tr, const char *dir, et_error *err);

/* Known false negatives of a micro-batch (cfg.exclude_positives): for the examples idx [nb] of the trainer's data,
 * x [nb, nb + nb*G] gets et_loss_cfg.exclude: for row i, each candidate of the other rows (their positives, their
 * first G negatives) whose text is one of the OTHER positives of i's query (a positive text of an example with the
 * same query text, not i's own positive text: a copy of the target is left as sentence-transformers leaves it), and
 * when own_neg also i's own negatives that are. G = the negatives the loss sees. Adds to *cands the other rows'
 * candidates and to *excluded those excluded, to *own the own negatives found (each may be NULL). Returns the
 * number of non-zero entries; 0 (x all zero) when the trainer has no index. */
long et_trainer_exclude(const et_trainer *tr, const int *idx, int nb, int G, int own_neg, unsigned char *x, int64_t *cands,
                        int64_t *excluded, int64_t *own);

/* Optimizer steps taken so far. */
long et_trainer_step(const et_trainer *tr);

/* MoE routing over every forward of this trainer so far (all steps of this run, all text groups):
 * frac [n, E] = fraction of real tokens per expert, layer_ids [n] (either may be NULL; room for
 * ET_MAX_LAYERS layers). Returns n, the number of MoE layers (0 for a dense model); *experts = E. */
int et_trainer_moe_summary(const et_trainer *tr, float *frac, int *layer_ids, int *experts);

#endif
