/* finetune.h - `embedtune finetune`: split -> expert scores -> negatives -> train -> before/after evaluation.
 *
 * Data (cfg.data):
 *   - a BEIR folder: the judged queries are split with the rule of docs/data-formats.md (et_split_keep on the query
 *     id); training examples are the train queries' (query, doc) pairs with grade > 0; the held-out
 *     queries are searched against the FULL corpus.
 *   - a pairs file (JSONL/CSV/TSV, data.h): rows are split by the same rule on their "id", else on their
 *     query text (et_split_keep, data.h); the held-out rows' queries are searched against all distinct
 *     passages of the file (positive pairs; with cfg.corpus, also the corpus passages not among them) or,
 *     with labels, scored pairwise (AUPRC/Spearman).
 *   - an STS file (JSONL {"s1","s2","score"[,"id"]}, et_sts_read): rows become (s1, s2, label = score /
 *     sts_max); split by id, else s1; held-out: Spearman/Pearson of the cosine vs the score.
 *   With cfg.eval_path the whole of cfg.data is trained on and cfg.eval_path (any of the three kinds)
 *   is the evaluation set instead (e.g. STS-B train.jsonl -> test.jsonl).
 *
 * Negatives:
 *   - infonce / clp: ANCE with the starting model (mine.h): the train queries and the corpus (BEIR: the
 *     whole corpus; pairs: the train rows' distinct passages) are encoded, ranks [mine_lo, mine_hi) minus
 *     the query's positives, `negatives` per query (slots left empty are filled with random
 *     non-positives, seeded). CLP: each negative gets its own query (the train query it is a positive
 *     of, else none = masked). refresh_every N > 0 re-encodes with the model being trained and re-mines
 *     every N optimizer steps (the trainer stops at the step, negatives are replaced, training resumes).
 *   - mse / soft1..3: pairwise rows. A labelled file is used as it is; otherwise each positive row gets
 *     `negatives` label-0 rows sampled by experts.h (neg_mode hard: round(negatives * hard_ratio) of them
 *     the first expert's top-ranked non-answers, BM25 by default, the rest random; random: uniform).
 *     Every row gets the expert scores: the file's own score columns (kept only when no rows were added),
 *     BM25 over the rows' distinct passages, the starting model's cosine ("start", soft losses, unless
 *     start_expert = 0), then each expert model's cosine. mse trains on the label, soft1..3 on
 *     et_soft_targets of the scores (train.soft_norm, rank by default), calibrated (soft_range, below).
 *     Soft losses, before training (issue 20): sampled negatives whose target is at least their own
 *     positive's are replaced by random passages (they contradict their label: look-alikes or unlisted
 *     answers); the targets are reported (share at the clamp, mean for positives and negatives,
 *     P(pos > neg), each expert's correlation with the label) and refused (ET_ERR_ARG, cause and fix) when
 *     mostly clamped or not separating positives from negatives (et_soft_targets_check; soft_force only
 *     warns); a warning names two soft rules that give the same targets (one expert).
 *     soft1..3 train in the LIST form by default (train.soft_list = 1; issue 20, the paper's "contrastive fine-tuning"
 *     with soft labels): each positive row and its sampled negatives (3 by default, as infonce) become one example;
 *     the rule's targets t of the group (rank-normalised experts, and the labels for soft2/soft3) give the target
 *     distribution softmax(t / tau) over the group, and the loss is the cross-entropy of the model's in-batch softmax
 *     against it (et_loss_soft_infonce: other queries' passages are in-batch negatives with target 0). The targets are
 *     not mapped to the model's cosines there (a softmax has no level; the scale is tau's), the lr follows the size
 *     rule (as infonce) and dropout stays on. A labelled file (rows used as they are) trains in the PAIR form (cosine
 *     MSE per row, calibrated below), as does train.soft_list = 0 (`--soft-form pair`).
 * Automatic settings (et_finetune_plan): train.lr, train.batch, train.epochs and negatives left at 0 are chosen
 * from the model and the data, and every choice is reported with its reason (et_finetune_result.plan):
 *   - lr by the model's parameter count, log-linear between (4.6 M, 2e-4) and (110 M, 2e-5), clamped to
 *     [1e-5, 3e-4] (et_finetune_auto_lr), for infonce/clp and soft1..3 in the list form; mse and the pair form get 2e-5;
 *   - batch 16 (8 when the train split has fewer than 128 examples, so an epoch still has >= 16 steps);
 *   - epochs: an upper bound; a DEV split carved from the training queries (et_split_is_dev on the query id,
 *     or the row key for pairs/STS) is evaluated every dev_every steps (dev nDCG@10, or Spearman for pairs)
 *     by ft_dev_evaluate; the best evaluation (the starting model included) is kept (with an IR dev split only
 *     among the points whose per-query gain over the starting model is at least one paired standard error,
 *     et_ft_beats_start; otherwise the starting model) and training stops
 *     after `patience` evaluations without a new best, but never inside the early transient (et_ft_grace_steps: one
 *     full epoch, or half the planned steps when that is longer). Without a usable dev split (fewer than
 *     ET_FT_MIN_DEV_QUERIES dev queries / ET_FT_MIN_DEV_ROWS dev rows) the epochs are fixed;
 *   - time_budget > 0 stops training when the run would otherwise exceed it (the final evaluation included);
 *   - mix (with a dev split, when training improved on the starting model): the kept weights are mixed with the
 *     starting ones, theta0 + l * (theta1 - theta0), l the first of ET_FT_MIX_GRID whose dev score is not below the
 *     unmixed model's, else 1 (WiSE-FT; ft_mix_step; result.mix_lambda and the dev scores tried).
 * Corpus adaptation (adapt.h; infonce/clp): with `adapt` the data's own passages (BEIR corpus / the pairs'
 * passages), or `corpus` when given, yield self-supervised pairs mixed into the labelled ones; their negatives
 * are other pairs' positives (same form), drawn at random and never re-mined.
 * MoE: set train.moe_experts / moe_layer_mask / train_only_moe / moe_gate_scale / moe_aux_weight / moe_jitter
 * (train.h); the trainer converts the model after the "before" evaluation (the CLP paper's MoE FFN).
 * The tuned model is saved to cfg.out_dir as a sentence-transformers folder (checkpoints removed); with LoRA
 * (train.lora_rank > 0, train.h) as a PEFT adapter folder whose best dev point is the adapters' (the base is frozen). */
#ifndef ET_FINETUNE_H
#define ET_FINETUNE_H

#include <stdint.h>
#include "error.h"
#include "evaluate.h"
#include "fusion.h"
#include "loss.h"
#include "mine.h"
#include "train.h"

#define ET_FT_MAX_EXPERT_MODELS 8
/* LoRA (train.lora_rank > 0, infonce/clp, lr not given): the learning rate is this many times the full fine-tuning
 * rule's (et_finetune_auto_lr). Chosen on the dev split carved from cranfield's training queries (README "LoRA"; models/compact,
 * r 8 on all six layers: dev nDCG@10 0.2545 at 5x, 0.2691 at 10x, below the start at 25x), never on held-out queries. */
#define ET_FT_LORA_LR_FACTOR 10

/* Progress of a run, for callers that show it (the web page through wasm/et_wasm.c). Phases in order;
 * mine / refresh only for infonce / clp, experts only for the pairwise losses. */
typedef enum {
    ET_FT_PHASE_LOAD = 0,    /* loading the model */
    ET_FT_PHASE_PARSE,       /* reading + validating the data, the split */
    ET_FT_PHASE_EVAL_BEFORE, /* encoding the held-out set with the starting model, BM25 */
    ET_FT_PHASE_MINE,        /* ANCE: encoding the training corpus and queries, mining */
    ET_FT_PHASE_EXPERTS,     /* expert scores (BM25, expert models) and sampled negatives */
    ET_FT_PHASE_TRAIN,       /* optimizer steps (train != NULL) */
    ET_FT_PHASE_REFRESH,     /* ANCE refresh: re-encoding with the model being trained, re-mining */
    ET_FT_PHASE_EVAL_AFTER,  /* encoding the held-out set with the tuned model */
    ET_FT_PHASE_DONE
} et_ft_phase;

typedef struct {
    et_ft_phase phase;
    double done, total;          /* of `unit` within the step (0, 0 when a phase starts without a count) */
    const et_train_stats *train; /* ET_FT_PHASE_TRAIN: the step's statistics (valid during the call), else NULL */
    const char *step;            /* the step of the phase (a static string, NULL at a phase start and in the train
                                    phase), e.g. "encode eval corpus", "BM25 index", "fusion candidates",
                                    "fusion cross-validation": done / total restart at 0 with each step, so a
                                    caller's ETA is per step. The CLI's progress line prints the same name. */
    const char *unit;            /* what done / total count: "texts", "docs", "queries", "grid points", "steps" */
} et_ft_progress;

/* Return non-zero to cancel the run: et_finetune_run then returns ET_ERR_CANCELLED (within one encode
 * batch or one optimizer step). */
typedef int (*et_ft_progress_fn)(void *user, const et_ft_progress *p);

const char *et_ft_phase_name(et_ft_phase p);

/* Embeddings of the starting model that the caller already holds (the page's search index), so that the evaluation
 * before training does not encode those passages again. text[i] has the row emb[i * dim .. (i + 1) * dim): the
 * starting model's embedding at max_len tokens, fp32 inference, the full hidden size, L2-normalised once after the
 * encoding (what et_hybrid_index_build holds). They are used only when max_len equals the run's token cap and dim the
 * model's hidden size: then a held-out passage found here (same text) has exactly the bits its encoding would give
 * (et_encode_texts' result for a text does not depend on the other texts of the call, encode.h), so its row is copied;
 * the others are encoded as before. release (may be NULL) is called once with user when they are no longer needed:
 * after the evaluation before training, or when the run stops before it. Everything is borrowed. */
typedef struct {
    const char *const *text;  /* [n] */
    const float *emb;         /* [n, dim] */
    int32_t n, dim, max_len;
    void (*release)(void *user);
    void *user;
} et_ft_known;

typedef struct {
    const char *model_dir, *data, *out_dir;
    const char *eval_path;   /* NULL: the held-out split of data */
    et_train_cfg train;      /* loss and hyper-parameters (et_train_cfg_default + changes); out_dir, vocab_path,
                                max_seq_length, do_lower_case, progress are set by et_finetune_run */
    int negatives;           /* per query / per positive row (-1, default: 3 ANCE negatives per query for infonce/clp,
                                3 sampled negatives per positive for soft1..3 in the list form, 7 label-0 rows per
                                positive for mse and the pair form) */
    int mine_lo, mine_hi;    /* ANCE rank window (default 2:100) */
    int neg_hard;            /* mse/soft: 1 = hard negatives by the first expert (default), 0 = random */
    double hard_ratio;       /* mse/soft with neg_hard: share of each positive's negatives that are the first expert's
                                top-ranked non-answers; the rest are random (default ET_FT_HARD_RATIO) */
    int use_bm25;            /* BM25 expert (default 1) */
    int start_expert;        /* the starting model's cosine as an expert (default 1; named "start") */
    const char *expert_models[ET_FT_MAX_EXPERT_MODELS];
    int n_expert_models;
    int refresh_every;       /* infonce/clp: re-mine every N steps (0 = never; ET_FT_REFRESH_AUTO = 4 times per
                                epoch when an epoch has at least 8 steps, else never; ignored by pairwise losses) */
    double sts_max;          /* STS score scale (default 5) */
    double pos_threshold;    /* infonce/clp on labelled rows: rows with label >= this are the positives (default 0.5) */
    int enc_batch;           /* texts per forward pass when encoding (default 32) */
    int max_len;             /* encode max length (0 = the model's max_seq_length or 256) */
    int threads;
    int quiet;
    uint64_t seed;           /* negative sampling (default 42); train.seed is the data order / dropout / router */
    int soft_range;          /* soft1..3 target calibration: ET_FT_RANGE_AUTO (default: from the starting model, see
                                below), ET_FT_RANGE_NONE (targets as the rule gives them), ET_FT_RANGE_FIXED
                                (train.soft_lo / soft_hi as given) */
    int soft_force;          /* 1: train even when the target guards refuse (they still report) */
    int soft_dropout;        /* soft1..3: 1 = train with the model's dropout; 0 (default) = without. The targets are
                                calibrated to the model's (dropout-free) cosines, while cosines under dropout noise are
                                systematically lower, so with dropout the model lifts every similarity to reach them:
                                measured on a dev split of cranfield (soft1, lr 1e-4), anisotropy +0.026 with dropout,
                                -0.003 without */
    int watch_every;         /* collapse watch every N optimizer steps (ET_FT_WATCH_AUTO: for mse/soft1..3, 4 times
                                per epoch and before the last step; off for infonce/clp, whose in-batch negatives
                                push texts apart by construction; 0 = off) */
    double collapse_aniso;   /* stop when the sample's anisotropy rose by more than this (default 0.10) */
    double collapse_margin;  /* ... or its positive margin fell below this share of its start value (default 0.5) */
    int neg_source;          /* infonce/clp hard negatives (see below): ET_FT_NEG_ANCE, ET_FT_NEG_BM25, ET_FT_NEG_MIX
                                (default ET_FT_NEG_DEFAULT) */
    int fusion;              /* retrieval data: 1 (default) = learn the BM25 + model fusion on the training queries with
                                the tuned model (fusion.h) and write out_dir/retrieval.json; 0 = neither */
    int mix;                 /* 1 (default) = after training with a dev split, mix the kept model's weights with the
                                starting model's (WiSE-FT): theta0 + l * (theta1 - theta0), l the smallest of
                                ET_FT_MIX_GRID whose dev score is not below the unmixed model's (ft_mix_step); 0 = off */
    int bm25_fit;            /* with fusion: 1 = learn BM25's k1 and b on the training queries first (et_bm25_fit),
                                used by the fusion and saved in retrieval.json; 0 (default) = k1 0.9, b 0.4 */
    et_ft_progress_fn progress; /* optional: called at every phase start, per encode batch and per step */
    void *progress_user;
    /* automatic settings (train.lr / train.batch / train.epochs = 0: decided, see above) */
    int dev;                 /* -1 (default): a dev split when it is big enough; 0: none; 1: required */
    int patience;            /* dev evaluations without a new best before stopping, never before one epoch (default 2) */
    int dev_every;           /* optimizer steps between dev evaluations (0 = auto: once per epoch, at most 50 steps) */
    double time_budget;      /* seconds for the whole run (0 = none) */
    int max_train_queries;   /* BEIR: use only the first N training queries by et_split_subset_key (-1 = all, default) */
    /* corpus adaptation (infonce / clp) */
    int adapt;               /* 1: self-supervised pairs from `corpus`, or else from the data's own passages */
    const char *const *corpus; int32_t n_corpus; /* passages for adaptation (borrowed; NULL = the data's own) */
    const int32_t *corpus_title_len; /* NULL, or [n_corpus]: corpus[i][0 .. len) is a title (a sentence of its own) */
    int64_t adapt_pairs;     /* at most this many adaptation pairs (0 = auto: as many as labelled examples, 500..2000) */
    const et_ft_known *known; /* optional (NULL): the starting model's embeddings the caller has (et_ft_known) */
} et_finetune_cfg;

/* Hard negatives of infonce/clp (--neg-source):
 *   ance: the model's own ranking (et_mine_negatives), re-mined with the model being trained (refresh_every);
 *   bm25: BM25's ranking of the training queries over the same corpus, through the same window rule
 *         (et_mine_from_ranking: ranks [mine_lo, mine_hi), positives skipped, own queries for CLP); fixed, so
 *         never re-mined; slots past the query's matching documents get random documents;
 *   mix : ANCE's and BM25's lists interleaved (ance[0], bm25[0], ance[1], ...), duplicates skipped; the ANCE half
 *         is re-mined. The hybrid's mistakes are the documents BM25 ranks high that are wrong; bm25/mix put them in
 *         the loss. */
enum { ET_FT_NEG_ANCE = 0, ET_FT_NEG_BM25 = 1, ET_FT_NEG_MIX = 2 };
/* mix: on cranfield, cisi and cacm (models/compact, held-out) it gave the best hybrid with the learned fusion on all
 * three (mean nDCG@10 0.369 vs 0.363 ance, 0.364 bm25) and kept the dense gain (0.289 vs 0.291 ance, 0.233 bm25);
 * README, "Hard negatives from BM25" */
#define ET_FT_NEG_DEFAULT ET_FT_NEG_MIX
const char *et_ft_neg_source_name(int s);

/* Hybrid retrieval in the report (retrieval data only): the held-out queries ranked by the model, BM25, the default
 * fusion and the learned fusion (et_fusion_fit on queries the model has not trained on: before training, the training
 * queries with the starting model; after, the dev split with the tuned model when it has >= ET_FUSION_MIN_QUERIES
 * queries, else the starting model's fusion is kept), all from one encoding of the corpus. */
typedef struct {
    et_ir_eval dense, bm25, fused_default, fused_learned; /* bm25 and the fusions use the learned k1/b (bm25_opts;
                                         et_finetune_result.bm25 is BM25 at k1 0.9, b 0.4) */
    et_fusion learned;
    et_fusion_fit_report fit;
    char fit_note[256];               /* how `learned` was obtained */
} et_ft_hybrid;

#define ET_FT_MIN_DEV_QUERIES 5
#define ET_FT_MIN_DEV_ROWS 20
#define ET_FT_MAX_DEV_POINTS 256
/* Weight-space mixing factors tried after training (cfg.mix), smallest first; 1 = the unmixed model. Wortsman et al.
 * 2022 (WiSE-FT): the fine-tuned and the starting weights lie in one basin, so their mix keeps most of the task gain
 * and more of what the starting model could do elsewhere (here: STS-B, never used to choose). */
#define ET_FT_MIX_GRID {0.5, 0.6, 0.7, 0.8, 0.9}
#define ET_FT_MIX_NGRID 5

/* Settings decided by et_finetune_plan, each with the reason printed and put in --json. */
typedef struct {
    double lr; int batch, epochs, negatives, dev_every, patience;
    int use_dev;             /* 1: early stopping on the dev split */
    int64_t dev_size;        /* dev queries (IR) or rows (pairs) */
    char why_lr[160], why_batch[160], why_epochs[200], why_dev[200], why_negatives[160];
} et_ft_plan;

/* The learning-rate rule alone (n_params: the model's parameter count). */
double et_finetune_auto_lr(double n_params);
/* Fill p from c (explicit settings win), the model size, the number of training examples and the dev size
 * (0 = no dev split). */
void et_finetune_plan(const et_finetune_cfg *c, double n_params, int64_t n_examples, int64_t dev_size, int dev_is_ir,
                      et_ft_plan *p);

/* The keep-the-start rule (issue 20): a dev point may replace the starting model only when its gain over it is at
 * least one paired standard error over the dev queries. With d_q = cand[q] - start[q] (per-query nDCG@10, n queries):
 *   gain = mean(d),  se = sd(d) / sqrt(n)  (sample sd, n - 1),  beats = gain > 0 && gain >= se.
 * n == 1: se = 0 (beats iff gain > 0); n < 1: 0 with gain = se = NaN. gain and se may be NULL. A gain inside the noise
 * of a small dev split (cisi soft2 in stop 12: dev step 49 kept, held-out below the start) then keeps the start. */
int et_ft_beats_start(const double *start, const double *cand, int n, double *gain, double *se);

/* Early stopping on a sequence of dev scores: the best is the first maximum (ties and NaN never win);
 * et_ft_stopper_add returns 1 once `patience` scores in a row were not a new best (zero-initialise st). */
typedef struct { int n, best, bad, have; double best_score; } et_ft_stopper;
int et_ft_stopper_add(et_ft_stopper *st, double score, int patience);
/* The early transient of a run of total_steps over `epochs` epochs: max(one epoch, ceil(total_steps / 2)) steps. Inside it
 * neither early stopping nor the list form's collapse watch stops training (its points can still be kept or not kept):
 * contrastive runs spike in anisotropy after the warm-up and come back, on cisi only after about 250 steps (issue 20). */
long et_ft_grace_steps(long total_steps, int epochs);

/* One evaluation of the model during training (ft_dev_evaluate in finetune.c, the one place that checks it): the dev
 * split's score and, when the collapse watch is on, the watch's figures. */
typedef struct {
    long step; int epoch;
    double score;            /* what early stopping compares: nDCG@10 (IR) or Spearman (pairs); NaN without a dev split.
                                With --matryoshka (train.matryoshka.n > 0): the mean of the score at each listed size,
                                weighted by the loss's weights, sum_k w_k score(d_k) / sum_k w_k, since those are the
                                sizes the vectors will be cut to (the keep-the-start rule uses the same weighted mean
                                per query) */
    double score_dim[ET_MRL_MAX_DIMS]; /* with --matryoshka: the score at train.matryoshka.dim[k] (NaN otherwise) */
    double anisotropy, mean_pos_cosine; /* on the dev split (with --matryoshka: at the largest listed size) */
    double watch_aniso, watch_margin;   /* the collapse watch's sample (NaN when the watch is off) */
    int collapsed;           /* the watch's limits were crossed (see "Collapse watch" below) */
    int excluded;            /* not a candidate for the kept model: collapsed, or (watch on) the dev anisotropy rose by
                                more than ET_FT_KEEP_ANISO over the starting model's */
    double gain, gain_se;    /* IR dev: mean per-query nDCG@10 gain over the starting model and its paired standard error
                                (et_ft_beats_start); NaN otherwise */
    int within_noise;        /* IR dev: the gain is below one paired standard error, so this point may not replace the
                                starting model (it still counts for early stopping) */
    double seconds;          /* run time when it was made */
} et_ft_dev_point;

/* With the collapse watch on (the pairwise losses' default) a dev point whose anisotropy rose by more than this over
 * the starting model's is not kept: the soft-label losses are meant to keep the model's versatility (issue 20). */
#define ET_FT_KEEP_ANISO 0.05

#define ET_FT_REFRESH_AUTO (-1)
#define ET_FT_WATCH_AUTO (-1)
#define ET_FT_HARD_RATIO 0.5
enum { ET_FT_RANGE_AUTO = 0, ET_FT_RANGE_NONE = 1, ET_FT_RANGE_FIXED = 2 };

/* Soft-target calibration (ET_FT_RANGE_AUTO): the rules give targets t on the experts' scale ([0,1] after rank/minmax
 * normalisation), while the model's cosines of the same training rows have their own level and spread (unrelated
 * texts already at its anisotropy, answers a little higher). The targets are mapped affinely,
 *     target = lo + t (hi - lo),   hi - lo = sd(c) / sd(t),   lo = mean(c) - mean(t) (hi - lo),
 * where c are the starting model's cosines of the training rows (query, passage) and t the rule's targets of the same
 * rows: the targets get the mean and spread of the cosines the model already produces, and their ORDER from the rule
 * (experts, and the labels for soft2/soft3). Training then re-orders pairs instead of moving every cosine toward the
 * experts' scale, which is what lifted the anisotropy. Clamped to [-1,1] (et_soft_calibrate). */

/* Collapse watch: a fixed sample of up to ET_FT_WATCH_PAIRS training (query, positive) pairs and as many random
 * training passages, encoded with the model being trained:
 *   anisotropy = mean cosine of the random passages' pairs (et_mean_random_cosine, as evaluate.h);
 *   margin     = mean cos(query, its positive) - mean cos(query, a random passage).
 * Collapsed when anisotropy - anisotropy_start > collapse_aniso, or margin < collapse_margin * margin_start and
 * margin_start - margin > ET_FT_WATCH_MIN_DROP (when margin_start > 0). The watch is measured at every dev evaluation
 * and 4 times per epoch. With a dev split, training then stops (soft1..3 in the list form: only from the second epoch on;
 * a first-epoch point past the limits is just not kept, since in-batch contrast spikes the anisotropy early and brings
 * it back) and the best dev point before the collapse is kept (the
 * starting model when none was better); without one the run stops with ET_ERR_NUMERIC and a message naming the
 * figures, and the tuned model is not written (the last check is one step before the end, before the trainer saves). */
#define ET_FT_WATCH_PAIRS 128
#define ET_FT_WATCH_MIN_DROP 0.05

void et_finetune_cfg_default(et_finetune_cfg *c);

typedef enum { ET_FT_EVAL_IR = 1, ET_FT_EVAL_PAIRS = 2 } et_ft_eval_kind;

typedef struct {
    et_ft_eval_kind kind;
    et_ir_eval before, after, bm25;   /* IR */
    et_pair_eval pbefore, pafter;     /* pairs / STS */
    const char *data_kind;            /* "beir" | "pairs" | "sts" */
    int64_t train_queries, test_queries; /* BEIR / positive pairs: queries; pairwise: rows */
    int64_t eval_passages;                 /* retrieval evaluation: the passages the held-out queries search */
    int64_t eval_known;                    /* of those, the ones whose embeddings before training came from cfg.known */
    int64_t train_examples;           /* examples given to the trainer */
    int n_experts;
    char expert_names[ET_FT_MAX_EXPERT_MODELS + 8][64];
    et_mine_stats mine;               /* first mining (infonce/clp) */
    int refreshes;
    /* known false negatives (train.h exclude_positives; all 0 when off or when no query has two positive texts):
     * other rows' in-batch candidates seen while training, those excluded as another positive of the row's query,
     * and own negatives that were (excluded for infonce/clp) */
    int64_t fx_cands, fx_excluded, fx_own;
    /* soft1..3: the target report (finetune's guards; before calibration) */
    int has_soft;
    et_soft_stats soft;
    double soft_lo, soft_hi;          /* calibration used (0, 1 = none) */
    int64_t soft_neg_replaced;        /* hard negatives replaced because their target was >= their positive's */
    double expert_corr[ET_FT_MAX_EXPERT_MODELS + 8]; /* per expert (expert_names order): Pearson r with the label */
    /* collapse watch */
    int watches;                      /* checks made */
    double watch_aniso0, watch_margin0, watch_aniso, watch_margin; /* at the start / at the last check */
    int refresh_every;                /* what was used (ET_FT_REFRESH_AUTO resolved; 0 = none) */
    long steps;
    uint64_t data_hash;               /* et_train_data_hash of the examples given to the trainer (resume check) */
    double final_loss;
    double seconds_prepare, seconds_train, seconds_eval;
    double mem_estimate, mem_budget;  /* bytes: the run's up-front memory estimate and the budget it was checked against */
    /* hybrid retrieval (cfg.fusion and retrieval data): the starting and the tuned model */
    int has_hybrid;
    et_ft_hybrid hyb_before, hyb_after;
    int fusion_saved;                 /* out_dir/retrieval.json written (the learned fusion, mode hybrid) */
    et_bm25_opts bm25_opts;           /* BM25's k1/b for the hybrid (learned on the training queries, or the default) */
    et_bm25_fit_report bm25_fit;      /* how (cfg.bm25_fit) */
    int neg_source;                   /* what was used (infonce/clp) */
    et_ft_plan plan;                  /* the settings used and why */
    et_ft_dev_point dev[ET_FT_MAX_DEV_POINTS]; int n_dev; /* dev curve (the first point is the starting model) */
    int best_dev;                     /* index in dev of the kept model (-1: no dev split, the last model is kept) */
    /* the weight-space mix with the starting model (cfg.mix): the factor kept (1 = the unmixed model; NaN = not tried:
     * no dev split, or the starting model was kept) and the dev scores of the factors tried, smallest first */
    double mix_lambda;
    int mix_n;
    double mix_lambdas[8], mix_dev[8];
    char stop_reason[160];            /* why training ended */
    int64_t adapt_pairs, adapt_ict, adapt_crop; /* adaptation pairs added */
} et_finetune_result;

/* Runs everything; progress on stderr unless cfg->quiet, and to cfg->progress if set. */
et_status et_finetune_run(const et_finetune_cfg *cfg, et_finetune_result *res, et_error *err);

#endif
