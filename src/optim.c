/* optim.c - see optim.h. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void et_adamw_cfg_default(et_adamw_cfg *cfg) {
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->weight_decay = 0.01;
}

int et_param_no_decay(const char *name) {
    return strstr(name, "bias") || strstr(name, "LayerNorm.bias") || strstr(name, "LayerNorm.weight");
}

static int cmp_seg(const void *a, const void *b) {
    const et_param_seg *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

et_status et_adamw_init(et_adamw *opt, const et_adamw_cfg *cfg, size_t n, const et_param_seg *segs, int nsegs,
                        et_error *err) {
    memset(opt, 0, sizeof *opt);
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1))
        return et_fail(err, ET_ERR_ARG, "adamw: betas must be in [0,1) (got %g, %g)", cfg->beta1, cfg->beta2);
    if (!(cfg->eps >= 0) || !(cfg->weight_decay >= 0))
        return et_fail(err, ET_ERR_ARG, "adamw: eps and weight_decay must be >= 0 (got %g, %g)", cfg->eps,
                       cfg->weight_decay);
    if (n == 0) return et_fail(err, ET_ERR_ARG, "adamw: empty parameter buffer");
    et_param_seg whole = {0, n, 1, 1};
    if (!segs || nsegs <= 0) {
        segs = &whole;
        nsegs = 1;
    }
    opt->segs = et_malloc(sizeof(et_param_seg) * (size_t)nsegs, "adamw segments", err);
    if (!opt->segs) return ET_ERR_NOMEM;
    memcpy(opt->segs, segs, sizeof(et_param_seg) * (size_t)nsegs);
    opt->nsegs = nsegs;
    qsort(opt->segs, (size_t)nsegs, sizeof(et_param_seg), cmp_seg);
    for (int i = 0; i < nsegs; i++) {
        const et_param_seg *s = &opt->segs[i];
        if (s->offset > n || s->n > n - s->offset) {
            et_fail(err, ET_ERR_ARG, "adamw: segment at offset %zu with %zu floats runs past the buffer (%zu floats)",
                    s->offset, s->n, n);
            et_adamw_free(opt);
            return ET_ERR_ARG;
        }
        if (i > 0 && opt->segs[i - 1].offset + opt->segs[i - 1].n > s->offset) {
            et_fail(err, ET_ERR_ARG, "adamw: segments at offsets %zu and %zu overlap", opt->segs[i - 1].offset,
                    s->offset);
            et_adamw_free(opt);
            return ET_ERR_ARG;
        }
    }
    opt->m = et_calloc(n, sizeof(float), "adamw exp_avg", err);
    opt->v = et_calloc(n, sizeof(float), "adamw exp_avg_sq", err);
    if (!opt->m || !opt->v) {
        et_adamw_free(opt);
        return ET_ERR_NOMEM;
    }
    opt->cfg = *cfg;
    opt->n = n;
    opt->t = 0;
    return ET_OK;
}

void et_adamw_free(et_adamw *opt) {
    free(opt->m);
    free(opt->v);
    free(opt->segs);
    memset(opt, 0, sizeof *opt);
}

et_status et_adamw_step(et_adamw *opt, float *params, const float *grads, double lr, et_error *err) {
    if (!(lr >= 0) || !isfinite(lr)) return et_fail(err, ET_ERR_ARG, "adamw: learning rate must be >= 0 (got %g)", lr);
    for (int s = 0; s < opt->nsegs; s++) {
        const et_param_seg *sg = &opt->segs[s];
        if (!sg->trainable) continue;
        for (size_t i = sg->offset; i < sg->offset + sg->n; i++)
            if (!isfinite(grads[i]))
                return et_fail(err, ET_ERR_NUMERIC, "adamw: gradient at float %zu (segment %d) is %s", i, s,
                               isnan(grads[i]) ? "NaN" : "Inf");
    }
    opt->t += 1;
    const double b1 = opt->cfg.beta1, b2 = opt->cfg.beta2;
    const double step = (double)opt->t;
    const double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
    const double step_size = lr / bc1;
    const double bc2_sqrt = sqrt(bc2);
    /* torch converts each Python scalar to the tensor dtype (float) at the op */
    const float b1f = (float)b1, omb1 = (float)(1.0 - b1), b2f = (float)b2, omb2 = (float)(1.0 - b2);
    const float bc2f = (float)bc2_sqrt, epsf = (float)opt->cfg.eps, nstep = (float)(-step_size);
    for (int s = 0; s < opt->nsegs; s++) {
        const et_param_seg *sg = &opt->segs[s];
        if (!sg->trainable) continue;
        const double wd = sg->decay ? opt->cfg.weight_decay : 0.0;
        const float decay = (float)(1.0 - lr * wd);
        float *p = params + sg->offset, *m = opt->m + sg->offset, *v = opt->v + sg->offset;
        const float *g = grads + sg->offset;
        for (size_t i = 0; i < sg->n; i++) {
            float gi = g[i];
            p[i] = p[i] * decay;                      /* param.mul_(1 - lr*wd) */
            m[i] = m[i] * b1f;                        /* exp_avg.mul_(b1) */
            m[i] = m[i] + omb1 * gi;                  /*        .add_(g, alpha=1-b1) */
            v[i] = v[i] * b2f;                        /* exp_avg_sq.mul_(b2) */
            v[i] = v[i] + omb2 * gi * gi;             /*           .addcmul_(g, g, value=1-b2) */
            float denom = sqrtf(v[i]) / bc2f + epsf;  /* (v.sqrt() / bc2_sqrt).add_(eps) */
            p[i] = p[i] + nstep * (m[i] / denom);     /* param.addcdiv_(m, denom, value=-step_size) */
        }
    }
    return ET_OK;
}

double et_lr_linear_warmup(double base_lr, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup) return base_lr * ((double)step / (double)(warmup > 1 ? warmup : 1));
    double den = (double)(total - warmup > 1 ? total - warmup : 1);
    double f = (double)(total - step) / den;
    return base_lr * (f > 0.0 ? f : 0.0);
}

et_status et_clip_grad_norm(float *grads, const et_param_seg *segs, int nsegs, double max_norm, double *total_norm,
                            et_error *err) {
    if (!segs || nsegs <= 0) return et_fail(err, ET_ERR_ARG, "clip_grad_norm: no segments given");
    double ss = 0.0;
    for (int s = 0; s < nsegs; s++) {
        if (!segs[s].trainable) continue;
        const float *g = grads + segs[s].offset;
        for (size_t i = 0; i < segs[s].n; i++) ss += (double)g[i] * (double)g[i];
    }
    double total = sqrt(ss);
    if (total_norm) *total_norm = total;
    if (!isfinite(total))
        return et_fail(err, ET_ERR_NUMERIC, "clip_grad_norm: the gradient norm is %s (NaN/Inf in the gradients)",
                       isnan(total) ? "NaN" : "Inf");
    if (max_norm <= 0) return ET_OK;
    /* torch: clip_coef = max_norm / (total_norm + 1e-6) on a float tensor (Tensor.__rtruediv__ is
     * reciprocal() * max_norm); clamp(max=1); g.mul_(coef) */
    float coef = (1.0f / ((float)total + 1e-6f)) * (float)max_norm;
    if (coef < 1.0f)
        for (int s = 0; s < nsegs; s++) {
            if (!segs[s].trainable) continue;
            float *g = grads + segs[s].offset;
            for (size_t i = 0; i < segs[s].n; i++) g[i] *= coef;
        }
    return ET_OK;
}

void et_grad_scale(float *grads, const et_param_seg *segs, int nsegs, float s) {
    for (int k = 0; k < nsegs; k++) {
        if (!segs[k].trainable) continue;
        float *g = grads + segs[k].offset;
        for (size_t i = 0; i < segs[k].n; i++) g[i] *= s;
    }
}

void et_adamw_get_state(const et_adamw *opt, float *m, float *v, int64_t *t) {
    if (m) memcpy(m, opt->m, sizeof(float) * opt->n);
    if (v) memcpy(v, opt->v, sizeof(float) * opt->n);
    if (t) *t = opt->t;
}

et_status et_adamw_set_state(et_adamw *opt, const float *m, const float *v, size_t n, int64_t t, et_error *err) {
    if (n != opt->n)
        return et_fail(err, ET_ERR_MISMATCH, "adamw state: checkpoint holds %zu floats, the optimizer has %zu", n,
                       opt->n);
    if (t < 0) return et_fail(err, ET_ERR_FORMAT, "adamw state: step count %lld is negative", (long long)t);
    memcpy(opt->m, m, sizeof(float) * n);
    memcpy(opt->v, v, sizeof(float) * n);
    opt->t = t;
    return ET_OK;
}
