/* loss.c - see loss.h. Forward/backward pairs in double on small matrices; clarity over speed. */
#include "loss.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void et_loss_cfg_default(et_loss_cfg *cfg) {
    cfg->tau = 0.05;
    cfg->symmetric = 0;
    cfg->in_batch = 1;
    cfg->lambda = 0.1;
    cfg->pen = ET_CLP_PEN_MEAN;
    cfg->eps = 1e-12;
    cfg->eps_cos = 1e-8;
    cfg->grad_scale = 1.0;
    cfg->exclude = NULL;
}

size_t et_loss_scratch_doubles(int B, int G, int C) {
    size_t b = (size_t)(B > 0 ? B : 0), g = (size_t)(G > 0 ? G : 0), c = (size_t)(C > 0 ? C : 0);
    return 4 * b * c + 4 * b * g * c + 2 * b + 2 * b * g + b * (b + b * g) + b * b + b;
}

/* Scratch layout shared by all losses. */
typedef struct {
    double *qn, *pn, *nn, *nqn; /* normalised rows */
    double *gq, *gp, *gn, *gnq; /* dL/d(normalised rows) */
    double *qr, *pr, *nr, *nqr; /* raw row norms */
    double *S;                  /* [B, B+BG] logits -> probabilities */
    double *S2;                 /* [B, B] symmetric direction */
    double *v;                  /* [B] per-query values */
} scratch_t;

static scratch_t carve(double *s, int B, int G, int C) {
    size_t b = (size_t)B, g = (size_t)G, c = (size_t)C;
    scratch_t t;
    t.qn = s; s += b * c;
    t.pn = s; s += b * c;
    t.nn = s; s += b * g * c;
    t.nqn = s; s += b * g * c;
    t.gq = s; s += b * c;
    t.gp = s; s += b * c;
    t.gn = s; s += b * g * c;
    t.gnq = s; s += b * g * c;
    t.qr = s; s += b;
    t.pr = s; s += b;
    t.nr = s; s += b * g;
    t.nqr = s; s += b * g;
    t.S = s; s += b * (b + b * g);
    t.S2 = s; s += b * b;
    t.v = s;
    return t;
}

static et_status check_finite(const float *X, int R, int C, const char *what, const char *loss, et_error *err) {
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            if (!isfinite(X[(size_t)r * C + c]))
                return et_fail(err, ET_ERR_NUMERIC, "loss %s: input %s row %d, column %d is %s", loss, what, r, c,
                               isnan(X[(size_t)r * C + c]) ? "NaN" : "Inf");
    return ET_OK;
}

/* Xn[r] = X[r] / max(|X[r]|, eps); nrm[r] = |X[r]| (raw).  X [R,C] -> Xn [R,C], nrm [R] */
static void normalize_rows(const float *X, int R, int C, double eps, double *Xn, double *nrm,
                           const unsigned char *rowmask) {
    for (int r = 0; r < R; r++) {
        const float *x = X + (size_t)r * C;
        double *xn = Xn + (size_t)r * C;
        if (rowmask && !rowmask[r]) { /* unused row: never read */
            memset(xn, 0, sizeof(double) * (size_t)C);
            nrm[r] = 1.0;
            continue;
        }
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * (double)x[c];
        double n = sqrt(ss);
        nrm[r] = n;
        double d = n > eps ? n : eps;
        for (int c = 0; c < C; c++) xn[c] = (double)x[c] / d;
    }
}

/* Backward of normalize_rows: dX[r] += scale * (g - (xn.g) xn) / |x|   (or scale * g / eps when clamped).
 * g [R,C] = dL/dXn. Rows with rowmask[r] == 0 are skipped. */
static void normalize_backward(const double *Xn, const double *nrm, const double *g, int R, int C, double eps,
                               double scale, float *dX, const unsigned char *rowmask) {
    if (!dX) return;
    for (int r = 0; r < R; r++) {
        if (rowmask && !rowmask[r]) continue;
        const double *xn = Xn + (size_t)r * C, *gr = g + (size_t)r * C;
        float *dx = dX + (size_t)r * C;
        if (nrm[r] > eps) {
            double dot = 0.0;
            for (int c = 0; c < C; c++) dot += xn[c] * gr[c];
            double inv = scale / nrm[r];
            for (int c = 0; c < C; c++) dx[c] += (float)(inv * (gr[c] - dot * xn[c]));
        } else {
            double inv = scale / eps;
            for (int c = 0; c < C; c++) dx[c] += (float)(inv * gr[c]);
        }
    }
}

static double dot(const double *a, const double *b, int C) {
    double s = 0.0;
    for (int c = 0; c < C; c++) s += a[c] * b[c];
    return s;
}

static void axpy(double a, const double *x, double *y, int C) {
    for (int c = 0; c < C; c++) y[c] += a * x[c];
}

/* Candidate j of query i. in_batch: j < B -> pn[j], else nn[j-B]  (ncand = B + B*G).
 * per query: j == 0 -> pn[i], else nn[i*G + j-1]                    (ncand = 1 + G). */
static inline const double *cand(const double *pn, const double *nn, int i, int j, int B, int G, int C, int in_batch,
                                 double *const *gp, double *const *gn, double **gout) {
    size_t r;
    if (in_batch) {
        if (j < B) {
            if (gout) *gout = *gp ? *gp + (size_t)j * C : NULL;
            return pn + (size_t)j * C;
        }
        r = (size_t)(j - B);
    } else {
        if (j == 0) {
            if (gout) *gout = *gp ? *gp + (size_t)i * C : NULL;
            return pn + (size_t)i * C;
        }
        r = (size_t)i * G + (size_t)(j - 1);
    }
    if (gout) *gout = *gn ? *gn + r * C : NULL;
    return nn + r * C;
}

/* Cross-entropy rows. For each "query" row i of A [B,C]: logits s_ij = A_i . cand_j / tau, target = i (in_batch)
 * or 0 (per query); ce[i] = logsumexp_j s_ij - s_i,target. S [B, ncand] scratch.
 * If coef != NULL: ga_i += sum_j d_ij cand_j / tau, gcand_j += d_ij A_i / tau, d_ij = coef[i] (p_ij - [j==t]). */
/* W [B, 1+G] (NULL = one-hot on the own positive): target weights over query i's own group, W[i*(1+G)] for its
 * positive and W[i*(1+G)+1+g] for its g-th negative (rows sum to 1; other in-batch candidates get weight 0); then
 * ce[i] = logsumexp_j s_ij - sum_own w_ij s_ij and d_ij = coef[i] (p_ij - w_ij). */
static inline int own_slot(int i, int j, int B, int G, int in_batch) {
    if (!in_batch) return j;
    if (j < B) return j == i ? 0 : -1;
    int r = j - B;
    return r / (G > 0 ? G : 1) == i && G > 0 ? 1 + r % G : -1;
}

/* Exclusion (et_loss_cfg.exclude) of candidate j for anchor row i: X [B, ldx] in the in-batch layout (ldx = B + B*G).
 * rev = 0: the anchors are the queries (in_batch: column j; per query: j == 0 -> column i, else B + i*G + j-1);
 * rev = 1: the anchors are the positives and the candidates the queries (symmetric direction): X[j][i]. */
typedef struct {
    const unsigned char *X;
    int ldx, rev;
} excl_t;

static inline int excluded(const excl_t *x, int i, int j, int B, int G, int in_batch) {
    if (!x || !x->X) return 0;
    if (x->rev) return x->X[(size_t)j * x->ldx + i] != 0;
    int col = in_batch ? j : j == 0 ? i : B + i * G + (j - 1);
    return x->X[(size_t)i * x->ldx + col] != 0;
}

static void ce_rows_w(const double *A, const double *pn, const double *nn, int B, int G, int C, double tau, int in_batch,
                      const float *W, const excl_t *x, double *S, double *ce, const double *coef, double *ga, double *gp,
                      double *gn) {
    int ncand = in_batch ? B + B * G : 1 + G;
    for (int i = 0; i < B; i++) {
        const double *a = A + (size_t)i * C;
        double *s = S + (size_t)i * ncand;
        int t = in_batch ? i : 0;
        double mx = -INFINITY;
        for (int j = 0; j < ncand; j++) {
            if (excluded(x, i, j, B, G, in_batch)) continue;
            s[j] = dot(a, cand(pn, nn, i, j, B, G, C, in_batch, &gp, &gn, NULL), C) / tau;
            if (s[j] > mx) mx = s[j];
        }
        double z = 0.0;
        for (int j = 0; j < ncand; j++)
            if (!excluded(x, i, j, B, G, in_batch)) z += exp(s[j] - mx);
        double lse = mx + log(z);
        const float *w = W ? W + (size_t)i * (1 + G) : NULL;
        if (!w) ce[i] = lse - s[t];
        else {
            double ws = 0.0;
            for (int j = 0; j < ncand; j++) {
                int o = own_slot(i, j, B, G, in_batch);
                if (o >= 0 && !excluded(x, i, j, B, G, in_batch)) ws += (double)w[o] * s[j];
            }
            ce[i] = lse - ws;
        }
        if (!coef || coef[i] == 0.0) continue;
        for (int j = 0; j < ncand; j++) {
            if (excluded(x, i, j, B, G, in_batch)) continue;
            double p = exp(s[j] - lse), y;
            if (!w) y = j == t ? 1.0 : 0.0;
            else {
                int o = own_slot(i, j, B, G, in_batch);
                y = o >= 0 ? (double)w[o] : 0.0;
            }
            double d = coef[i] * (p - y) / tau;
            double *gc = NULL;
            const double *c = cand(pn, nn, i, j, B, G, C, in_batch, &gp, &gn, &gc);
            if (ga) axpy(d, c, ga + (size_t)i * C, C);
            if (gc) axpy(d, a, gc, C);
        }
    }
}

static void ce_rows(const double *A, const double *pn, const double *nn, int B, int G, int C, double tau, int in_batch,
                    const excl_t *x, double *S, double *ce, const double *coef, double *ga, double *gp, double *gn) {
    ce_rows_w(A, pn, nn, B, G, C, tau, in_batch, NULL, x, S, ce, coef, ga, gp, gn);
}

/* cfg->exclude must leave every target a candidate: query i's own positive (W NULL) or each own-group entry with
 * weight > 0 (W [B, 1+G]). */
static et_status check_exclude(const char *loss, const et_loss_cfg *cfg, const float *W, int B, int G, et_error *err) {
    if (!cfg->exclude) return ET_OK;
    size_t ld = (size_t)B + (size_t)B * G;
    for (int i = 0; i < B; i++)
        for (int g = 0; g <= G; g++) {
            size_t col = g == 0 ? (size_t)i : (size_t)B + (size_t)i * G + (size_t)(g - 1);
            int target = W ? W[(size_t)i * (1 + G) + g] > 0 : g == 0;
            if (target && cfg->exclude[(size_t)i * ld + col])
                return et_fail(err, ET_ERR_ARG, "loss %s: query %d's %s is excluded (exclude[%d][%zu]) but is a target", loss,
                               i, g == 0 ? "own positive" : "own negative", i, col);
        }
    return ET_OK;
}

static et_status check_shapes(const char *loss, int B, int G, int C, const void *scratch, const double *out,
                              et_error *err) {
    if (B <= 0 || C <= 0 || G < 0)
        return et_fail(err, ET_ERR_ARG, "loss %s: bad shape B=%d G=%d C=%d (need B>0, C>0, G>=0)", loss, B, G, C);
    if (!scratch || !out) return et_fail(err, ET_ERR_ARG, "loss %s: scratch and loss output must not be NULL", loss);
    return ET_OK;
}

/* ---- the InfoNCE family's common steps (infonce, soft_infonce, clp): Q, P [B, C] and, when G > 0, N [B*G, C] ---- */

/* every input row finite (messages name the loss, the input, row and column) */
static et_status check_qpn(const char *loss, const float *Q, const float *P, const float *N, int B, int G, int C, et_error *err) {
    et_status st;
    if ((st = check_finite(Q, B, C, "Q", loss, err)) || (st = check_finite(P, B, C, "P", loss, err)) ||
        (G > 0 && (st = check_finite(N, B * G, C, "N", loss, err))))
        return st;
    return ET_OK;
}

/* scratch carved; Q, P (and N) rows normalised with eps; their gradient accumulators zeroed when grads */
static inline scratch_t qpn_forward(double eps, const float *Q, const float *P, const float *N, int B, int G, int C,
                                    double *scratch, int grads) {
    scratch_t t = carve(scratch, B, G, C);
    int BG = B * G;
    normalize_rows(Q, B, C, eps, t.qn, t.qr, NULL);
    normalize_rows(P, B, C, eps, t.pn, t.pr, NULL);
    if (G > 0) normalize_rows(N, BG, C, eps, t.nn, t.nr, NULL);
    if (grads) {
        memset(t.gq, 0, sizeof(double) * (size_t)B * C);
        memset(t.gp, 0, sizeof(double) * (size_t)B * C);
        if (G > 0) memset(t.gn, 0, sizeof(double) * (size_t)BG * C);
    }
    return t;
}

/* dQ, dP (and dN), each may be NULL: the accumulated gradients of the normalised rows through the normalisation,
 * times gs */
static inline void qpn_backward(const scratch_t *t, double eps, double gs, int B, int G, int C, float *dQ, float *dP, float *dN) {
    normalize_backward(t->qn, t->qr, t->gq, B, C, eps, gs, dQ, NULL);
    normalize_backward(t->pn, t->pr, t->gp, B, C, eps, gs, dP, NULL);
    if (G > 0) normalize_backward(t->nn, t->nr, t->gn, B * G, C, eps, gs, dN, NULL);
}

et_status et_loss_infonce(const et_loss_cfg *cfg, const float *Q, const float *P, const float *N, int B, int G,
                          int C, float *dQ, float *dP, float *dN, double *scratch, double *loss, et_error *err) {
    et_status st;
    if ((st = check_shapes("infonce", B, G, C, scratch, loss, err))) return st;
    if (!(cfg->tau > 0)) return et_fail(err, ET_ERR_ARG, "loss infonce: tau must be > 0 (got %g)", cfg->tau);
    if (cfg->symmetric && !cfg->in_batch)
        return et_fail(err, ET_ERR_ARG, "loss infonce: symmetric=1 needs in_batch=1 (the reverse CE is over queries)");
    if (!Q || !P || (G > 0 && !N)) return et_fail(err, ET_ERR_ARG, "loss infonce: Q, P (and N when G>0) are required");
    if ((st = check_qpn("infonce", Q, P, N, B, G, C, err)) || (st = check_exclude("infonce", cfg, NULL, B, G, err))) return st;
    int grads = dQ || dP || dN;
    scratch_t t = qpn_forward(cfg->eps, Q, P, N, B, G, C, scratch, grads);
    double half = cfg->symmetric ? 0.5 : 1.0;
    /* coef_i = dL/dCE_i = half / B */
    double *coef = t.S2; /* B doubles; S2 is free until the symmetric pass, which uses t.v for its coef */
    for (int i = 0; i < B; i++) coef[i] = half / B;
    excl_t xf = {cfg->exclude, B + B * G, 0}, xr = {cfg->exclude, B + B * G, 1};
    ce_rows(t.qn, t.pn, t.nn, B, G, C, cfg->tau, cfg->in_batch, &xf, t.S, t.v, grads ? coef : NULL, t.gq, t.gp,
            G > 0 ? t.gn : NULL);
    double lf = 0.0;
    for (int i = 0; i < B; i++) lf += t.v[i];
    lf /= B;
    double L = lf;
    if (cfg->symmetric) {
        /* reverse direction: row j = positive j, candidates = the B queries, target j */
        for (int i = 0; i < B; i++) t.v[i] = half / B;
        /* logits reuse S (B x B); per-row CE values go to S2 (first B entries are free again) */
        ce_rows(t.pn, t.qn, NULL, B, 0, C, cfg->tau, 1, &xr, t.S, t.S2, grads ? t.v : NULL, t.gp, t.gq, NULL);
        double lb = 0.0;
        for (int i = 0; i < B; i++) lb += t.S2[i];
        lb /= B;
        L = 0.5 * (lf + lb);
    }
    qpn_backward(&t, cfg->eps, cfg->grad_scale, B, G, C, dQ, dP, dN);
    *loss = L;
    return ET_OK;
}

et_status et_loss_soft_infonce(const et_loss_cfg *cfg, const float *Q, const float *P, const float *N, const float *W,
                               int B, int G, int C, float *dQ, float *dP, float *dN, double *scratch, double *loss,
                               et_error *err) {
    et_status st;
    if ((st = check_shapes("soft_infonce", B, G, C, scratch, loss, err))) return st;
    if (!(cfg->tau > 0)) return et_fail(err, ET_ERR_ARG, "loss soft_infonce: tau must be > 0 (got %g)", cfg->tau);
    if (cfg->symmetric) return et_fail(err, ET_ERR_ARG, "loss soft_infonce: symmetric=1 is not supported");
    if (!Q || !P || !W || (G > 0 && !N))
        return et_fail(err, ET_ERR_ARG, "loss soft_infonce: Q, P, W (and N when G>0) are required");
    if ((st = check_qpn("soft_infonce", Q, P, N, B, G, C, err))) return st;
    for (int i = 0; i < B; i++) { /* each row a distribution over the query's own group */
        double sum = 0.0;
        for (int g = 0; g <= G; g++) {
            double v = W[(size_t)i * (1 + G) + g];
            if (!isfinite(v) || v < 0)
                return et_fail(err, ET_ERR_NUMERIC, "loss soft_infonce: target weight W[%d][%d] = %g (need finite, >= 0)", i, g, v);
            sum += v;
        }
        if (fabs(sum - 1.0) > 1e-4)
            return et_fail(err, ET_ERR_ARG, "loss soft_infonce: target weights of query %d sum to %.6g (need 1)", i, sum);
    }
    if ((st = check_exclude("soft_infonce", cfg, W, B, G, err))) return st;
    int grads = dQ || dP || dN;
    scratch_t t = qpn_forward(cfg->eps, Q, P, N, B, G, C, scratch, grads);
    double *coef = t.S2;
    for (int i = 0; i < B; i++) coef[i] = 1.0 / B;
    excl_t xf = {cfg->exclude, B + B * G, 0};
    ce_rows_w(t.qn, t.pn, t.nn, B, G, C, cfg->tau, cfg->in_batch, W, &xf, t.S, t.v, grads ? coef : NULL, t.gq, t.gp,
              G > 0 ? t.gn : NULL);
    double L = 0.0;
    for (int i = 0; i < B; i++) L += t.v[i];
    L /= B;
    qpn_backward(&t, cfg->eps, cfg->grad_scale, B, G, C, dQ, dP, dN);
    *loss = L;
    return ET_OK;
}

void et_soft_list_weights(const float *yhat, int n, int G, double tau, float *W) {
    for (int i = 0; i < n; i++) {
        const float *y = yhat + (size_t)i * (1 + G);
        float *w = W + (size_t)i * (1 + G);
        double mx = -INFINITY, z = 0.0;
        for (int g = 0; g <= G; g++) if (y[g] > mx) mx = y[g];
        for (int g = 0; g <= G; g++) z += exp(((double)y[g] - mx) / tau);
        for (int g = 0; g <= G; g++) w[g] = (float)(exp(((double)y[g] - mx) / tau) / z);
    }
}

et_status et_loss_cos_mse(const et_loss_cfg *cfg, const float *Q, const float *P, const float *y, int B, int C,
                          float *dQ, float *dP, double *scratch, float *cos_out, double *loss, et_error *err) {
    et_status st;
    if ((st = check_shapes("cos_mse", B, 0, C, scratch, loss, err))) return st;
    if (!Q || !P || !y) return et_fail(err, ET_ERR_ARG, "loss cos_mse: Q, P and y are required");
    if ((st = check_finite(Q, B, C, "Q", "cos_mse", err)) || (st = check_finite(P, B, C, "P", "cos_mse", err)))
        return st;
    for (int i = 0; i < B; i++)
        if (!isfinite(y[i])) return et_fail(err, ET_ERR_NUMERIC, "loss cos_mse: target y[%d] is not finite", i);
    scratch_t t = carve(scratch, B, 0, C);
    normalize_rows(Q, B, C, cfg->eps_cos, t.qn, t.qr, NULL);
    normalize_rows(P, B, C, cfg->eps_cos, t.pn, t.pr, NULL);
    double L = 0.0;
    for (int i = 0; i < B; i++) {
        double c = dot(t.qn + (size_t)i * C, t.pn + (size_t)i * C, C);
        if (cos_out) cos_out[i] = (float)c;
        double e = c - (double)y[i];
        L += e * e;
        t.v[i] = 2.0 * e / B; /* dL/dcos_i */
    }
    L /= B;
    if (dQ || dP) {
        for (int i = 0; i < B; i++)
            for (int c = 0; c < C; c++) {
                size_t k = (size_t)i * C + c;
                t.gq[k] = t.v[i] * t.pn[k];
                t.gp[k] = t.v[i] * t.qn[k];
            }
        normalize_backward(t.qn, t.qr, t.gq, B, C, cfg->eps_cos, cfg->grad_scale, dQ, NULL);
        normalize_backward(t.pn, t.pr, t.gp, B, C, cfg->eps_cos, cfg->grad_scale, dP, NULL);
    }
    *loss = L;
    return ET_OK;
}

et_status et_loss_clp(const et_loss_cfg *cfg, const float *Q, const float *P, const float *N, const float *NQ,
                      const unsigned char *mask, int B, int G, int C, float *dQ, float *dP, float *dN, float *dNQ,
                      double *scratch, double *pen_out, double *loss, et_error *err) {
    et_status st;
    if ((st = check_shapes("clp", B, G, C, scratch, loss, err))) return st;
    if (G < 1) return et_fail(err, ET_ERR_ARG, "loss clp: needs at least one hard negative per query (G=%d)", G);
    if (!(cfg->tau > 0)) return et_fail(err, ET_ERR_ARG, "loss clp: tau must be > 0 (got %g)", cfg->tau);
    if (!(cfg->lambda >= 0 && cfg->lambda <= 1))
        return et_fail(err, ET_ERR_ARG, "loss clp: lambda must be in [0,1] (got %g)", cfg->lambda);
    if (cfg->symmetric) return et_fail(err, ET_ERR_ARG, "loss clp: symmetric=1 is not supported");
    if (!Q || !P || !N || !NQ) return et_fail(err, ET_ERR_ARG, "loss clp: Q, P, N and NQ are required");
    int BG = B * G;
    if ((st = check_qpn("clp", Q, P, N, B, G, C, err)) || (st = check_exclude("clp", cfg, NULL, B, G, err))) return st; /* G >= 1 */
    for (int j = 0; j < BG; j++)
        if ((!mask || mask[j]) && (st = check_finite(NQ + (size_t)j * C, 1, C, "NQ", "clp", err)))
            return et_error_prefix(err, "negative %d (query %d)", j, j / G);
    double lam = cfg->lambda, eps = cfg->eps;
    int grads = dQ || dP || dN || dNQ;
    scratch_t t = qpn_forward(eps, Q, P, N, B, G, C, scratch, grads);
    normalize_rows(NQ, BG, C, eps, t.nqn, t.nqr, mask);
    if (grads) memset(t.gnq, 0, sizeof(double) * (size_t)BG * C);
    /* per-query CE weight: (1-lambda) if the query has penalty pairs, else 1; coef = weight / B */
    double *coef = t.S2, *ce = t.v;
    for (int i = 0; i < B; i++) {
        int m = 0;
        for (int g = 0; g < G; g++) m += (!mask || mask[i * G + g]) ? 1 : 0;
        coef[i] = (m > 0 ? 1.0 - lam : 1.0) / B;
    }
    excl_t xf = {cfg->exclude, B + B * G, 0};
    ce_rows(t.qn, t.pn, t.nn, B, G, C, cfg->tau, cfg->in_batch, &xf, t.S, ce, grads ? coef : NULL, t.gq, t.gp, t.gn);
    double L = 0.0, pen_sum = 0.0;
    int npen = 0;
    for (int i = 0; i < B; i++) {
        int m = 0;
        double csum = 0.0;
        for (int g = 0; g < G; g++) {
            int j = i * G + g;
            if (mask && !mask[j]) continue;
            m++;
            csum += dot(t.nn + (size_t)j * C, t.nqn + (size_t)j * C, C);
        }
        if (m == 0) {
            L += ce[i];
            continue;
        }
        double pen = cfg->pen == ET_CLP_PEN_SUM ? 1.0 - csum : (m - csum) / m;
        pen_sum += pen;
        npen++;
        L += (1.0 - lam) * ce[i] + lam * pen;
        if (!grads) continue;
        double dc = -lam / B * (cfg->pen == ET_CLP_PEN_SUM ? 1.0 : 1.0 / m); /* dL/dcos_j */
        for (int g = 0; g < G; g++) {
            int j = i * G + g;
            if (mask && !mask[j]) continue;
            axpy(dc, t.nqn + (size_t)j * C, t.gn + (size_t)j * C, C);
            axpy(dc, t.nn + (size_t)j * C, t.gnq + (size_t)j * C, C);
        }
    }
    L /= B;
    qpn_backward(&t, eps, cfg->grad_scale, B, G, C, dQ, dP, dN);
    normalize_backward(t.nqn, t.nqr, t.gnq, BG, C, eps, cfg->grad_scale, dNQ, mask);
    if (pen_out) *pen_out = npen ? pen_sum / npen : 0.0;
    *loss = L;
    return ET_OK;
}

/* ---------------- soft targets ---------------- */

static int streq_ci(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

et_status et_soft_rule_parse(const char *s, et_soft_rule *out, et_error *err) {
    static const struct { const char *name; et_soft_rule r; } tab[] = {
        {"hard", ET_SOFT_HARD},    {"soft1", ET_SOFT_MEAN},  {"mean", ET_SOFT_MEAN},      {"M", ET_SOFT_MEAN},
        {"soft2", ET_SOFT_BLEND},  {"blend", ET_SOFT_BLEND}, {"B", ET_SOFT_BLEND},        {"soft3", ET_SOFT_GATED},
        {"gated", ET_SOFT_GATED},  {"G", ET_SOFT_GATED},     {"negsoft", ET_SOFT_NEGSOFT}, {"N", ET_SOFT_NEGSOFT},
    };
    for (size_t i = 0; s && i < sizeof tab / sizeof tab[0]; i++)
        if (streq_ci(s, tab[i].name)) {
            *out = tab[i].r;
            return ET_OK;
        }
    return et_fail(err, ET_ERR_ARG,
                   "soft label rule '%s' is unknown (expected hard, soft1|mean|M, soft2|blend|B, soft3|gated|G, "
                   "negsoft|N)", s ? s : "(null)");
}

et_status et_soft_norm_parse(const char *s, et_soft_norm *out, et_error *err) {
    if (s && streq_ci(s, "none")) *out = ET_SNORM_NONE;
    else if (s && streq_ci(s, "minmax")) *out = ET_SNORM_MINMAX;
    else if (s && streq_ci(s, "rank")) *out = ET_SNORM_RANK;
    else
        return et_fail(err, ET_ERR_ARG, "expert score normalisation '%s' is unknown (expected none, minmax, rank)",
                       s ? s : "(null)");
    return ET_OK;
}

const char *et_soft_rule_name(et_soft_rule r) {
    switch (r) {
    case ET_SOFT_HARD: return "hard";
    case ET_SOFT_MEAN: return "soft1";
    case ET_SOFT_BLEND: return "soft2";
    case ET_SOFT_GATED: return "soft3";
    case ET_SOFT_NEGSOFT: return "negsoft";
    }
    return "?";
}

const char *et_soft_norm_name(et_soft_norm n) {
    switch (n) {
    case ET_SNORM_NONE: return "none";
    case ET_SNORM_MINMAX: return "minmax";
    case ET_SNORM_RANK: return "rank";
    }
    return "?";
}

typedef struct {
    double v;
    int i;
} vi_t;

static int cmp_vi(const void *a, const void *b) {
    const vi_t *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

et_status et_soft_targets(et_soft_rule rule, et_soft_norm norm, double alpha, const float *y, const float *S, int N,
                          int K, float *yhat, et_error *err) {
    return et_soft_targets_ex(rule, norm, alpha, y, S, N, K, yhat, NULL, err);
}

et_status et_soft_targets_ex(et_soft_rule rule, et_soft_norm norm, double alpha, const float *y, const float *S, int N,
                             int K, float *yhat, int *n_clamped, et_error *err) {
    if (n_clamped) *n_clamped = 0;
    if (N <= 0) return et_fail(err, ET_ERR_ARG, "soft targets: need N > 0 pairs (got %d)", N);
    if (!y || !yhat) return et_fail(err, ET_ERR_ARG, "soft targets: labels and output must not be NULL");
    if ((int)rule < ET_SOFT_HARD || (int)rule > ET_SOFT_NEGSOFT)
        return et_fail(err, ET_ERR_ARG, "soft targets: rule %d is out of range", (int)rule);
    if ((int)norm < ET_SNORM_NONE || (int)norm > ET_SNORM_RANK)
        return et_fail(err, ET_ERR_ARG, "soft targets: normalisation %d is out of range", (int)norm);
    for (int i = 0; i < N; i++)
        if (!isfinite(y[i]))
            return et_fail(err, ET_ERR_NUMERIC, "soft targets: label of pair %d is %s", i, isnan(y[i]) ? "NaN" : "Inf");
    if (rule != ET_SOFT_HARD) {
        if (K <= 0 || !S)
            return et_fail(err, ET_ERR_ARG, "soft targets: rule '%s' needs expert scores (got K=%d%s)",
                           et_soft_rule_name(rule), K, S ? "" : ", S=NULL");
        for (int i = 0; i < N; i++)
            for (int k = 0; k < K; k++) {
                float s = S[(size_t)i * K + k];
                if (!isfinite(s))
                    return et_fail(err, ET_ERR_NUMERIC, "soft targets: expert score of pair %d, expert %d is %s", i,
                                   k, isnan(s) ? "NaN" : "Inf");
            }
    }
    if (rule == ET_SOFT_BLEND && !(alpha >= 0 && alpha <= 1))
        return et_fail(err, ET_ERR_ARG, "soft targets: blend alpha must be in [0,1] (got %g)", alpha);
    if (rule == ET_SOFT_HARD) {
        for (int i = 0; i < N; i++) {
            if (n_clamped && (y[i] < -1.0f || y[i] > 1.0f)) ++*n_clamped;
            yhat[i] = y[i] < -1.0f ? -1.0f : (y[i] > 1.0f ? 1.0f : y[i]);
        }
        return ET_OK;
    }
    /* normalised scores, column by column: Sn [N,K] (double) */
    double *Sn = et_malloc(sizeof(double) * (size_t)N * K, "soft targets: normalised scores", err);
    if (!Sn) return ET_ERR_NOMEM;
    vi_t *tmp = NULL;
    if (norm == ET_SNORM_RANK) {
        tmp = et_malloc(sizeof(vi_t) * (size_t)N, "soft targets: rank buffer", err);
        if (!tmp) {
            free(Sn);
            return ET_ERR_NOMEM;
        }
    }
    for (int k = 0; k < K; k++) {
        if (norm == ET_SNORM_NONE) {
            for (int i = 0; i < N; i++) Sn[(size_t)i * K + k] = S[(size_t)i * K + k];
        } else if (norm == ET_SNORM_MINMAX) {
            double lo = INFINITY, hi = -INFINITY;
            for (int i = 0; i < N; i++) {
                double s = S[(size_t)i * K + k];
                if (s < lo) lo = s;
                if (s > hi) hi = s;
            }
            for (int i = 0; i < N; i++)
                Sn[(size_t)i * K + k] = hi > lo ? ((double)S[(size_t)i * K + k] - lo) / (hi - lo) : 0.5;
        } else {
            for (int i = 0; i < N; i++) {
                tmp[i].v = S[(size_t)i * K + k];
                tmp[i].i = i;
            }
            qsort(tmp, (size_t)N, sizeof *tmp, cmp_vi);
            for (int a = 0; a < N;) {
                int b = a;
                while (b + 1 < N && tmp[b + 1].v == tmp[a].v) b++;
                double r = 0.5 * (a + b); /* average 0-based rank of the tie group = (rank - 1) */
                double v = N > 1 ? r / (N - 1) : 0.5;
                for (int c = a; c <= b; c++) Sn[(size_t)tmp[c].i * K + k] = v;
                a = b + 1;
            }
        }
    }
    for (int i = 0; i < N; i++) {
        const double *s = Sn + (size_t)i * K;
        double mean = 0.0, mx = -INFINITY, mn = INFINITY;
        for (int k = 0; k < K; k++) {
            mean += s[k];
            if (s[k] > mx) mx = s[k];
            if (s[k] < mn) mn = s[k];
        }
        mean /= K;
        double yi = y[i], v;
        switch (rule) {
        case ET_SOFT_MEAN: v = mean; break;
        case ET_SOFT_BLEND: v = alpha * yi + (1.0 - alpha) * mean; break;
        case ET_SOFT_GATED: v = yi * mx + (1.0 - yi) * mn; break;
        case ET_SOFT_NEGSOFT: v = yi == 1.0 ? 1.0 : mean; break;
        default: v = yi; break;
        }
        if (n_clamped && (v < -1.0 || v > 1.0)) ++*n_clamped;
        if (v < -1.0) v = -1.0;
        if (v > 1.0) v = 1.0;
        yhat[i] = (float)v;
    }
    free(tmp);
    free(Sn);
    return ET_OK;
}

void et_soft_calibrate(float *yhat, int N, double lo, double hi) {
    for (int i = 0; i < N; i++) {
        double v = lo + (double)yhat[i] * (hi - lo);
        yhat[i] = (float)(v < -1.0 ? -1.0 : v > 1.0 ? 1.0 : v);
    }
}

void et_soft_range_match(const float *t, const float *c, int N, double *lo, double *hi) {
    double mt = 0, mc = 0, vt = 0, vc = 0;
    for (int i = 0; i < N; i++) { mt += t[i]; mc += c[i]; }
    mt /= N > 0 ? N : 1;
    mc /= N > 0 ? N : 1;
    for (int i = 0; i < N; i++) { vt += (t[i] - mt) * (t[i] - mt); vc += (c[i] - mc) * (c[i] - mc); }
    double st = sqrt(vt / (N > 0 ? N : 1)), sc = sqrt(vc / (N > 0 ? N : 1)), k = st > 1e-9 ? sc / st : 0.0;
    *lo = mc - mt * k;
    *hi = *lo + k;
}

void et_soft_target_stats(const float *y, const float *yhat, int N, int n_clamped, et_soft_stats *st) {
    memset(st, 0, sizeof *st);
    st->n = N > 0 ? N : 0;
    st->share_clamped = n_clamped > 0 && N > 0 ? (double)n_clamped / N : 0.0;
    double sp = 0, sn = 0, qp = 0, qn = 0;
    for (int i = 0; i < N; i++) {
        double t = yhat[i];
        if (y[i] >= 0.5f) { st->n_pos++; sp += t; qp += t * t; }
        else { st->n_neg++; sn += t; qn += t * t; }
    }
    st->mean_pos = st->n_pos ? sp / st->n_pos : NAN;
    st->mean_neg = st->n_neg ? sn / st->n_neg : NAN;
    st->sd_pos = st->n_pos ? sqrt(fmax(0.0, qp / st->n_pos - st->mean_pos * st->mean_pos)) : NAN;
    st->sd_neg = st->n_neg ? sqrt(fmax(0.0, qn / st->n_neg - st->mean_neg * st->mean_neg)) : NAN;
    st->auc = NAN;
    if (!st->n_pos || !st->n_neg) return;
    /* Mann-Whitney: sum of the positives' average ranks (1-based, ties averaged) */
    vi_t *t = malloc(sizeof *t * (size_t)N);
    if (!t) return; /* stays NaN: reported as "unknown" */
    for (int i = 0; i < N; i++) { t[i].v = yhat[i]; t[i].i = i; }
    qsort(t, (size_t)N, sizeof *t, cmp_vi);
    double rs = 0;
    for (int a = 0; a < N;) {
        int b = a;
        while (b + 1 < N && t[b + 1].v == t[a].v) b++;
        double r = 0.5 * (a + b) + 1.0;
        for (int c = a; c <= b; c++) if (y[t[c].i] >= 0.5f) rs += r;
        a = b + 1;
    }
    free(t);
    double np = st->n_pos, nn = st->n_neg;
    st->auc = (rs - np * (np + 1) / 2) / (np * nn);
}

void et_soft_expert_corr(const float *y, const float *S, int N, int K, double *corr) {
    for (int k = 0; k < K; k++) {
        double my = 0, ms = 0;
        for (int i = 0; i < N; i++) { my += y[i]; ms += S[(size_t)i * K + k]; }
        my /= N > 0 ? N : 1;
        ms /= N > 0 ? N : 1;
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < N; i++) {
            double a = y[i] - my, b = S[(size_t)i * K + k] - ms;
            sxy += a * b; syy += a * a; sxx += b * b;
        }
        corr[k] = sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
    }
}

et_status et_soft_targets_check(const et_soft_stats *st, et_soft_rule rule, et_soft_norm norm, et_error *err) {
    if (st->share_clamped > ET_SOFT_MAX_CLAMPED)
        return et_fail(err, ET_ERR_ARG,
                       "soft targets: %.0f%% of the %s targets are clamped at +-1, so the loss sees almost one value: the "
                       "expert scores are not on a cosine scale (an unbounded score such as raw BM25 with --soft-norm %s). "
                       "Fix: --soft-norm rank (or minmax), or give the experts' scores on a [0,1] / cosine scale",
                       100 * st->share_clamped, et_soft_rule_name(rule), et_soft_norm_name(norm));
    if (!st->n_pos || !st->n_neg) return ET_OK;
    if (!(st->auc >= ET_SOFT_MIN_AUC) || !(st->mean_pos - st->mean_neg >= ET_SOFT_MIN_GAP))
        return et_fail(err, ET_ERR_ARG,
                       "soft targets: the %s targets do not separate positives from negatives (mean %.3f for the %d "
                       "positive rows vs %.3f for the %d negative rows; P(positive > negative) = %.2f, needs >= %.2f and "
                       "a gap >= %.2f): training on them teaches the model that answers and non-answers are about equally "
                       "related, which collapses the embeddings. Fix: add experts that know the answers (--expert-model "
                       "DIR, keep the starting model as an expert), use random negatives (--hard-ratio 0.5 or --neg-mode "
                       "random) rather than only the experts' own look-alikes, or a label-aware rule (soft2/soft3)",
                       et_soft_rule_name(rule), st->mean_pos, st->n_pos, st->mean_neg, st->n_neg, st->auc,
                       ET_SOFT_MIN_AUC, ET_SOFT_MIN_GAP);
    return ET_OK;
}
