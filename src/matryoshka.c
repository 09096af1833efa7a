/* matryoshka.c - the Matryoshka wrapper around the losses of loss.h (see matryoshka.h). */
#include "matryoshka.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

et_status et_matryoshka_parse(const char *spec, et_matryoshka *out, et_error *err) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return et_fail(err, ET_ERR_ARG, "matryoshka: empty list of dimensions (e.g. 128,64,32)");
    const char *p = spec;
    double wsum = 0;
    while (*p) {
        char *e;
        errno = 0;
        long d = strtol(p, &e, 10);
        if (e == p || errno || d < 1 || d > 1000000)
            return et_fail(err, ET_ERR_ARG, "matryoshka: item %d of '%s' is not a dimension (a positive integer)", out->n + 1, spec);
        double w = 1.0;
        p = e;
        if (*p == ':') {
            p++;
            errno = 0;
            w = strtod(p, &e);
            if (e == p || errno || !isfinite(w) || w < 0)
                return et_fail(err, ET_ERR_ARG, "matryoshka: the weight of dimension %ld in '%s' must be a number >= 0", d, spec);
            p = e;
        }
        if (*p && *p != ',')
            return et_fail(err, ET_ERR_ARG, "matryoshka: unexpected '%c' in '%s' (write DIM or DIM:WEIGHT, comma-separated)", *p, spec);
        if (*p == ',') p++;
        if (out->n == ET_MRL_MAX_DIMS)
            return et_fail(err, ET_ERR_ARG, "matryoshka: at most %d dimensions ('%s')", ET_MRL_MAX_DIMS, spec);
        for (int k = 0; k < out->n; k++)
            if (out->dim[k] == d) return et_fail(err, ET_ERR_ARG, "matryoshka: dimension %ld is listed twice in '%s'", d, spec);
        out->dim[out->n] = (int)d;
        out->weight[out->n++] = w;
        wsum += w;
    }
    if (!(wsum > 0)) return et_fail(err, ET_ERR_ARG, "matryoshka: every weight in '%s' is 0", spec);
    return ET_OK;
}

et_status et_matryoshka_check(const et_matryoshka *m, int C, et_error *err) {
    for (int k = 0; k < m->n; k++)
        if (m->dim[k] > C)
            return et_fail(err, ET_ERR_ARG, "matryoshka: dimension %d is larger than the model's embedding size %d", m->dim[k], C);
    return ET_OK;
}

void et_matryoshka_describe(const et_matryoshka *m, char *buf, size_t cap) {
    size_t l = 0;
    if (cap) buf[0] = 0;
    for (int k = 0; k < m->n && l < cap; k++) {
        int w = snprintf(buf + l, cap - l, "%s%d:%.9g", k ? "," : "", m->dim[k], m->weight[k]);
        if (w < 0) break;
        l += (size_t)w;
    }
}

size_t et_matryoshka_scratch_floats(int B, int G, int C) {
    return (size_t)2 * ((size_t)2 * B + (size_t)2 * B * G) * (size_t)C;
}

/* dst [rows, d] = the first d columns of src [rows, C] */
static void cut(float *dst, const float *src, size_t rows, int C, int d) {
    for (size_t i = 0; i < rows; i++) memcpy(dst + i * d, src + i * C, sizeof(float) * (size_t)d);
}

/* the first d columns of dst [rows, C] += src [rows, d] */
static void uncut_add(float *dst, const float *src, size_t rows, int C, int d) {
    for (size_t i = 0; i < rows; i++)
        for (int j = 0; j < d; j++) dst[i * C + j] += src[i * d + j];
}

et_status et_loss_matryoshka(const et_loss_cfg *cfg, const et_matryoshka *m, const et_mrl_args *a, float *dQ,
                             float *dP, float *dN, float *dNQ, double *scratch, float *fscratch, double *loss,
                             et_error *err) {
    int B = a->B, G = a->G, C = a->C;
    if (m->n < 1) return et_fail(err, ET_ERR_ARG, "matryoshka: no dimension given");
    et_status s = et_matryoshka_check(m, C, err);
    if (s) return s;
    size_t nb = (size_t)B, ng = (size_t)B * G;
    int useN = a->kind != ET_MRL_COS_MSE && G > 0 && a->N, useNQ = a->kind == ET_MRL_CLP;
    if (useNQ && !a->NQ) return et_fail(err, ET_ERR_ARG, "matryoshka: CLP needs the negatives' queries");
    double total = 0;
    for (int k = 0; k < m->n; k++) {
        int d = m->dim[k];
        if (m->weight[k] == 0) continue;
        /* layout: Q P N NQ | dQ dP dN dNQ, each at its cut size */
        float *q = fscratch, *p = q + nb * d, *n = p + nb * d, *nq = n + ng * d;
        float *gq = nq + ng * d, *gp = gq + nb * d, *gn = gp + nb * d, *gnq = gn + ng * d;
        cut(q, a->Q, nb, C, d);
        cut(p, a->P, nb, C, d);
        if (useN) cut(n, a->N, ng, C, d);
        if (useNQ) cut(nq, a->NQ, ng, C, d);
        memset(gq, 0, sizeof(float) * (2 * nb + 2 * ng) * (size_t)d);
        et_loss_cfg lc = *cfg;
        lc.grad_scale = cfg->grad_scale * m->weight[k];
        double l = 0;
        if (a->kind == ET_MRL_INFONCE)
            s = et_loss_infonce(&lc, q, p, useN ? n : NULL, B, useN ? G : 0, d, gq, gp, useN ? gn : NULL, scratch, &l, err);
        else if (a->kind == ET_MRL_CLP)
            s = et_loss_clp(&lc, q, p, n, nq, a->mask, B, G, d, gq, gp, gn, gnq, scratch, NULL, &l, err);
        else
            s = et_loss_cos_mse(&lc, q, p, a->y, B, d, gq, gp, scratch, NULL, &l, err);
        if (s) return et_error_prefix(err, "matryoshka dimension %d", d);
        total += m->weight[k] * l;
        if (dQ) uncut_add(dQ, gq, nb, C, d);
        if (dP) uncut_add(dP, gp, nb, C, d);
        if (dN && useN) uncut_add(dN, gn, ng, C, d);
        if (dNQ && useNQ) uncut_add(dNQ, gnq, ng, C, d);
    }
    *loss = total;
    return ET_OK;
}
