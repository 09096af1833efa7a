/* optim.h - AdamW exactly as torch.optim.AdamW (torch 1.13, single-tensor path, amsgrad off), the
 * transformers linear warm-up/decay schedule, torch.nn.utils.clip_grad_norm_, and gradient helpers.
 *
 * The parameters live in ONE float buffer (see bert.h) of n floats, with a same-shaped gradient buffer.
 * Segments (offset, count, decay?, trainable?) say which ranges are updated and which get weight decay;
 * floats not covered by any trainable segment are frozen (never read or written by step/clip).
 * sentence-transformers puts biases and LayerNorm weights in a no-decay group: et_param_no_decay() is that
 * name rule, so a trainer can build segments from the model's tensor table.
 *
 * Training-step order (HF Trainer / sentence-transformers fit):
 *     backward (accumulate grads, loss scaled by 1/accum)  ->  et_clip_grad_norm  ->
 *     et_adamw_step(lr = et_lr_linear_warmup(base_lr, opt.t, warmup, total))  ->  zero grads
 * et_lr_linear_warmup is evaluated at the number of optimizer steps ALREADY taken (the LambdaLR last_epoch
 * before scheduler.step()), so with warmup > 0 the very first update uses lr = 0, as in HF.
 */
#ifndef ET_OPTIM_H
#define ET_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    size_t offset;   /* first float of the range in the parameter buffer */
    size_t n;        /* number of floats */
    int decay;       /* 1: apply weight decay; 0: no decay (biases, LayerNorm) */
    int trainable;   /* 0: frozen (no update, excluded from the clipping norm) */
} et_param_seg;

typedef struct {
    double beta1, beta2;   /* default 0.9, 0.999 */
    double eps;            /* default 1e-8 */
    double weight_decay;   /* default 0.01 (torch AdamW default; HF Trainer default is 0.0) */
} et_adamw_cfg;

typedef struct {
    et_adamw_cfg cfg;
    size_t n;              /* floats in the parameter buffer */
    float *m, *v;          /* [n] first / second moments (exp_avg, exp_avg_sq); frozen ranges stay 0 */
    int64_t t;             /* optimizer steps taken (torch state['step']) */
    et_param_seg *segs;    /* owned copy, sorted by offset */
    int nsegs;
} et_adamw;

void et_adamw_cfg_default(et_adamw_cfg *cfg);

/* Name rule of sentence-transformers fit(): no decay if the name contains "bias", "LayerNorm.bias" or
 * "LayerNorm.weight". Returns 1 for no-decay names. */
int et_param_no_decay(const char *name);

/* Allocate m, v (zeroed) for n floats and copy the segments. Segments must lie inside [0,n) and must not
 * overlap (ET_ERR_ARG naming the segment otherwise). nsegs == 0 / segs == NULL means one trainable,
 * decayed segment covering everything. */
et_status et_adamw_init(et_adamw *opt, const et_adamw_cfg *cfg, size_t n, const et_param_seg *segs, int nsegs,
                        et_error *err);
void et_adamw_free(et_adamw *opt);

/* One AdamW step at learning rate lr on every trainable segment (t += 1 first):
 *   p *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
 *   p += -(lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 * Scalars in double, element arithmetic in float with float-rounded scalars, in torch's order.
 * A non-finite gradient -> ET_ERR_NUMERIC naming the float index (nothing is updated then). */
et_status et_adamw_step(et_adamw *opt, float *params, const float *grads, double lr, et_error *err);

/* transformers.get_linear_schedule_with_warmup, evaluated at `step` (= optimizer steps already taken):
 *   step < warmup: base_lr * step / max(1, warmup)
 *   else:          base_lr * max(0, (total - step) / max(1, total - warmup)) */
double et_lr_linear_warmup(double base_lr, int64_t step, int64_t warmup, int64_t total);

/* torch.nn.utils.clip_grad_norm_(trainable params, max_norm, 2): total = ||all trainable grads||_2,
 * coef = max_norm / (total + 1e-6), grads *= coef only if coef < 1. *total_norm (may be NULL) gets the norm
 * before clipping. Non-finite norm -> ET_ERR_NUMERIC (grads untouched). max_norm <= 0 -> only measures. */
et_status et_clip_grad_norm(float *grads, const et_param_seg *segs, int nsegs, double max_norm, double *total_norm,
                            et_error *err);

/* Gradient accumulation helper: g[i] *= s for every trainable float (e.g. s = 1/accum if the loss wasn't scaled). */
void et_grad_scale(float *grads, const et_param_seg *segs, int nsegs, float s);

/* Checkpoint state: m and v (n floats each) and t. get copies out (any pointer may be NULL);
 * set copies in (n must match the optimizer's n: ET_ERR_MISMATCH otherwise; t must be >= 0). */
void et_adamw_get_state(const et_adamw *opt, float *m, float *v, int64_t *t);
et_status et_adamw_set_state(et_adamw *opt, const float *m, const float *v, size_t n, int64_t t, et_error *err);

#endif
