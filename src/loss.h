/* loss.h - training losses on embedding matrices, and soft-label targets.
 *
 * Every loss takes the model's output embeddings (rows of C floats; they need NOT be L2-normalised: cosine is
 * always computed properly) and returns the loss (double) plus, optionally, dL/d(each input matrix).
 *
 * Conventions (all losses):
 *   - Shapes: Q [B,C] queries, P [B,C] positives (row i is query i's positive), N [B*G,C] hard negatives (row
 *     i*G+g is the g-th negative of query i; G may be 0), NQ [B*G,C] "the negative's own query" (CLP, aligned
 *     with N), y [B] labels / targets.
 *   - Gradients are ACCUMULATED (+=) into dQ/dP/dN/dNQ (zero them yourself), multiplied by cfg->grad_scale
 *     (e.g. 1/accum_steps for gradient accumulation; the returned loss is NOT scaled). Any gradient pointer
 *     may be NULL: that gradient is skipped.
 *   - Scratch: a caller-owned double buffer of at least et_loss_scratch_doubles(B, G, C) doubles (the same
 *     size serves every loss). Nothing is allocated inside a loss call. Computation is in double.
 *   - Inputs are checked for NaN/Inf (ET_ERR_NUMERIC naming the matrix and row) and shapes (ET_ERR_ARG).
 *   - Cosine: cos(u,v) = (u/max(|u|,eps)) . (v/max(|v|,eps)).
 *       InfoNCE and CLP use eps = cfg->eps = 1e-12, exactly sentence-transformers util.cos_sim
 *       (torch.nn.functional.normalize) and the CLP authors' normalise-then-dot.
 *       Cosine-MSE uses eps = cfg->eps_cos = 1e-8, i.e. torch.nn.functional.cosine_similarity (1.13: per-norm
 *       clamp). The two only differ when a norm is below eps. Below eps the gradient follows F.normalize
 *       (the clamp passes no gradient to the norm).
 */
#ifndef ET_LOSS_H
#define ET_LOSS_H

#include <stddef.h>

#include "error.h"

typedef enum {
    ET_CLP_PEN_MEAN = 0, /* authors' code: pen_i = mean over query i's available negatives of (1 - cos(N_j, NQ_j)) */
    ET_CLP_PEN_SUM = 1   /* paper formula: pen_i = 1 - sum over query i's available negatives of cos(N_j, NQ_j) */
} et_clp_pen;

typedef struct {
    double tau;        /* temperature: logits = cos / tau. Default 0.05 (sentence-transformers scale 20). CLP paper: 0.02 */
    int symmetric;     /* InfoNCE: 1 = MultipleNegativesSymmetricRankingLoss: (L_q->p + L_p->q)/2, where L_p->q is,
                          for each positive j, CE over the B queries with target j. Needs in_batch = 1. Default 0 */
    int in_batch;      /* 1 (default): query i's candidates = all B positives + all B*G negatives (MNRL);
                          0: only its own positive + its own G negatives (the CLP authors' per-query grouping) */
    double lambda;     /* CLP weight: l_i = (1-lambda)*CE_i + lambda*pen_i. Default 0.1 */
    et_clp_pen pen;    /* CLP penalty form. Default ET_CLP_PEN_MEAN */
    double eps;        /* norm clamp for InfoNCE / CLP (F.normalize). Default 1e-12 */
    double eps_cos;    /* norm clamp for cosine-MSE (F.cosine_similarity). Default 1e-8 */
    double grad_scale; /* multiplies every gradient written (not the returned loss). Default 1 */
    const unsigned char *exclude; /* known false negatives of THIS call, [B, B + B*G] (NULL = none, the default):
                          exclude[i*(B+B*G) + j] != 0 removes candidate j (column j < B: positive j; column B + r:
                          negative r) from query i's softmax: no logit, no probability, no gradient. The columns are
                          the in-batch layout in either mode (per query: the own positive is column i, the own g-th
                          negative column B + i*G + g). The symmetric direction reads the same matrix transposed:
                          query i is not a candidate of positive j when exclude[i*(B+B*G) + j] != 0. A target may not
                          be excluded: the own positive (infonce, clp), or an own-group entry with weight > 0 (soft
                          list form): ET_ERR_ARG naming the row. Used by infonce, soft_infonce and clp (cos-MSE has no
                          candidates). With every entry 0 the results are bit for bit those of NULL. A trainer fills
                          it with the batch's other rows whose text is a positive of query i (train.h). */
} et_loss_cfg;

/* Defaults listed above. */
void et_loss_cfg_default(et_loss_cfg *cfg);

/* Scratch size in doubles for any loss below with these shapes (G may be 0; for cos-MSE pass G = 0):
 *   4*B*C + 4*B*G*C   normalised copies of Q,P,N,NQ and their gradients (2x each)
 *   + 2*B + 2*B*G     row norms
 *   + B*(B + B*G)     logits/probabilities (in-batch; the per-query case uses less)
 *   + B*B + B         symmetric direction, per-query values */
size_t et_loss_scratch_doubles(int B, int G, int C);

/* InfoNCE / MultipleNegativesRankingLoss (see cfg->in_batch, cfg->symmetric).
 *   L = (1/B) sum_i [ logsumexp_j s_ij - s_i,target(i) ],  s_ij = cos(Q_i, cand_j) / tau.
 * N may be NULL when G == 0. Grads: dQ [B,C], dP [B,C], dN [B*G,C]. */
et_status et_loss_infonce(const et_loss_cfg *cfg, const float *Q, const float *P, const float *N, int B, int G,
                          int C, float *dQ, float *dP, float *dN, double *scratch, double *loss, et_error *err);

/* Soft-target InfoNCE (the list form of the soft-label losses, issue 20): InfoNCE whose target is a distribution
 * W over each query's own group instead of its positive alone.
 *   s_ij  = cos(Q_i, cand_j) / tau over the candidates of cfg->in_batch (as et_loss_infonce)
 *   w_ij  = W[i*(1+G)] for j = i's positive, W[i*(1+G)+1+g] for j = i's g-th negative, 0 for every other candidate
 *   L     = (1/B) sum_i [ logsumexp_j s_ij - sum_j w_ij s_ij ]          (cross-entropy to the soft target)
 *   dL/ds_ij = (softmax_j(s_i) - w_ij) / B
 * With W one-hot on the positives this IS et_loss_infonce (symmetric = 0). Rows of W must be finite, >= 0 and sum
 * to 1 (within 1e-4; ET_ERR_NUMERIC / ET_ERR_ARG naming the row). cfg->symmetric is refused. Grads as infonce. */
et_status et_loss_soft_infonce(const et_loss_cfg *cfg, const float *Q, const float *P, const float *N, const float *W,
                               int B, int G, int C, float *dQ, float *dP, float *dN, double *scratch, double *loss,
                               et_error *err);

/* Soft targets -> target distributions over each query's own group: for each of n groups of 1+G targets (the
 * positive's first), W = softmax(yhat / tau) (shift-invariant, so only the targets' differences matter). */
void et_soft_list_weights(const float *yhat, int n, int G, double tau, float *W);

/* Cosine-similarity MSE (sentence-transformers CosineSimilarityLoss, hard OR soft targets):
 *   L = (1/B) sum_i (cos(Q_i, P_i) - y_i)^2,  eps = cfg->eps_cos.
 * cos_out [B] (may be NULL) receives cos(Q_i, P_i). */
et_status et_loss_cos_mse(const et_loss_cfg *cfg, const float *Q, const float *P, const float *y, int B, int C,
                          float *dQ, float *dP, double *scratch, float *cos_out, double *loss, et_error *err);

/* CLP (contrastive learning penalty, arXiv 2412.17364), per query i then averaged over queries:
 *   m_i   = number of query i's negatives j (rows i*G..i*G+G-1) with mask[j] != 0 (mask NULL = all available)
 *   CE_i  = InfoNCE cross-entropy of query i (cfg->in_batch as for et_loss_infonce; symmetric is not allowed)
 *   pen_i = (1/m_i) sum_{j avail} (1 - cos(N_j, NQ_j))   [ET_CLP_PEN_MEAN, authors' code]
 *         = 1 - sum_{j avail} cos(N_j, NQ_j)             [ET_CLP_PEN_SUM, paper formula]
 *   l_i   = (1 - lambda) * CE_i + lambda * pen_i   if m_i > 0
 *         = CE_i                                   if m_i == 0 (the authors' code without neg_q: plain CL)
 *   L     = (1/B) sum_i l_i
 * With B = 1 and in_batch = 0 this is exactly the authors' BGEM3Model loss. Masked NQ rows are not read
 * (they may hold anything) and get no gradient. pen_out (may be NULL) receives mean_i pen_i over queries
 * with m_i > 0 (0 if none), for logging. Needs G >= 1. */
et_status et_loss_clp(const et_loss_cfg *cfg, const float *Q, const float *P, const float *N, const float *NQ,
                      const unsigned char *mask, int B, int G, int C, float *dQ, float *dP, float *dN, float *dNQ,
                      double *scratch, double *pen_out, double *loss, et_error *err);

/* ---- soft-label targets (expert-augmented scores, arXiv 2408.11868; rule names are neutral, see paper notes) ---- */

typedef enum {
    ET_SOFT_HARD = 0,    /* yhat = y                                        ("hard") */
    ET_SOFT_MEAN = 1,    /* yhat = mean_k s_k                  (M)          ("soft1", "mean", "M") */
    ET_SOFT_BLEND = 2,   /* yhat = alpha*y + (1-alpha)*mean_k  (B)          ("soft2", "blend", "B") */
    ET_SOFT_GATED = 3,   /* yhat = y*max_k s_k + (1-y)*min_k   (G)          ("soft3", "gated", "G") */
    ET_SOFT_NEGSOFT = 4  /* yhat = 1 if y == 1 else mean_k     (N)          ("negsoft", "N") */
} et_soft_rule;

typedef enum {
    ET_SNORM_NONE = 0,   /* raw expert scores                                  ("none") */
    ET_SNORM_MINMAX = 1, /* per expert over the given N pairs: (s-min)/(max-min); a constant expert -> 0.5 ("minmax") */
    ET_SNORM_RANK = 2    /* per expert: (r-1)/(N-1), r = 1-based rank with ties given their average rank
                            (scipy rankdata 'average'); N == 1 -> 0.5                             ("rank") */
} et_soft_norm;

/* Parse a rule / normalisation name (case-insensitive, names in the comments above). */
et_status et_soft_rule_parse(const char *s, et_soft_rule *out, et_error *err);
et_status et_soft_norm_parse(const char *s, et_soft_norm *out, et_error *err);
const char *et_soft_rule_name(et_soft_rule r);
const char *et_soft_norm_name(et_soft_norm n);

/* Build targets yhat [N] from labels y [N] and expert scores S [N,K] (row-major: S[i*K+k] = expert k on pair i).
 * Normalisation is applied per expert over these N pairs first, then the rule, then yhat is clamped to [-1,1].
 * S may be NULL (and K 0) only for ET_SOFT_HARD. alpha is used by ET_SOFT_BLEND (default 0.5; docs/soft-labels.md).
 * NaN/Inf in y or S -> ET_ERR_NUMERIC naming the pair index (and expert index). Allocates N*(8+4) bytes
 * temporarily for the rank normalisation (fallible: ET_ERR_NOMEM). */
et_status et_soft_targets(et_soft_rule rule, et_soft_norm norm, double alpha, const float *y, const float *S, int N,
                          int K, float *yhat, et_error *err);
/* The same, also counting the targets the clamp to [-1,1] changed (n_clamped may be NULL): raw, unbounded expert
 * scores (BM25 without normalisation) show up here as a large share at the clamp. */
et_status et_soft_targets_ex(et_soft_rule rule, et_soft_norm norm, double alpha, const float *y, const float *S, int N,
                             int K, float *yhat, int *n_clamped, et_error *err);

/* Calibration of soft targets to the model's cosine range. The rules give targets on the experts' scale ([0,1]
 * after minmax/rank normalisation), but a model does not use the cosine range [0,1]: unrelated texts already sit at
 * its anisotropy (e.g. 0.4-0.6) and its positives higher. Training toward 0 for "unrelated" makes it reshape the whole
 * space. The mapping is affine:  yhat' = lo + yhat * (hi - lo),  then clamped to [-1,1]
 * (lo = 0, hi = 1 is the identity). finetune sets lo and hi from the starting model (finetune.h). */
void et_soft_calibrate(float *yhat, int N, double lo, double hi);
/* lo, hi that give targets t [N] the mean and (population) standard deviation of reference cosines c [N] (the
 * starting model's cosines of the same rows): hi - lo = sd(c) / sd(t), lo = mean(c) - mean(t) (hi - lo). Constant
 * targets (sd(t) = 0) give lo = hi = mean(c). */
void et_soft_range_match(const float *t, const float *c, int N, double *lo, double *hi);

/* ---- target guards ---- */
typedef struct {
    int n, n_pos, n_neg;        /* rows; label >= 0.5; label < 0.5 */
    double share_clamped;       /* n_clamped / n (0 when n_clamped < 0 was given) */
    double mean_pos, mean_neg;  /* mean target of the positive / negative rows (NaN if there are none) */
    double sd_pos, sd_neg;      /* standard deviations (population) */
    double auc;                 /* P(target of a random positive row > that of a random negative row), ties count
                                   1/2 (Mann-Whitney); NaN without both kinds of rows */
} et_soft_stats;

/* Statistics of targets yhat [N] against labels y [N] (n_clamped from et_soft_targets_ex, or -1). */
void et_soft_target_stats(const float *y, const float *yhat, int N, int n_clamped, et_soft_stats *st);

/* Pearson correlation of each expert's raw score with the label (point-biserial for 0/1 labels): corr [K]
 * (NaN for a constant column). S [N,K] as for et_soft_targets. */
void et_soft_expert_corr(const float *y, const float *S, int N, int K, double *corr);

/* Refusal thresholds: more than ET_SOFT_MAX_CLAMPED of the targets clamped, or positives not separated from
 * negatives (auc < ET_SOFT_MIN_AUC, or mean_pos - mean_neg < ET_SOFT_MIN_GAP on the [0,1] target scale). */
#define ET_SOFT_MAX_CLAMPED 0.5
#define ET_SOFT_MIN_AUC 0.6
#define ET_SOFT_MIN_GAP 0.05

/* ET_OK, or ET_ERR_ARG with a message that names the cause (the figures) and the fix. Rows without both labels
 * (all positive or all negative) are not judged on separation. rule/norm: what produced the targets (for the
 * message). */
et_status et_soft_targets_check(const et_soft_stats *st, et_soft_rule rule, et_soft_norm norm, et_error *err);

#endif
