/* matryoshka.h - Matryoshka representation learning: a loss over prefixes of the embedding.
 *
 * As sentence-transformers' MatryoshkaLoss (Kusupati et al., arXiv 2205.13147): for each dimension d_k of a list,
 * every embedding row is cut to its first d_k values, the wrapped loss (InfoNCE, CLP or cosine-MSE, loss.h) is
 * computed on the cut rows (the losses take cosines, so the cut rows are re-normalised), and the losses are summed
 * with weights w_k:
 *     L = sum_k w_k * loss(Q[:, :d_k], P[:, :d_k], N[:, :d_k], NQ[:, :d_k])
 * The gradient of each term lands in the first d_k columns of dQ/dP/dN/dNQ. Every dimension is used at every step
 * (sentence-transformers' n_dims_per_step = -1, its default); weights default to 1.
 * A model trained this way can be used at any listed dimension: encode/search/eval --dim D (encode.h
 * et_embed_truncate) cut each embedding to its first D values and re-normalise. */
#ifndef ET_MATRYOSHKA_H
#define ET_MATRYOSHKA_H

#include <stddef.h>

#include "error.h"
#include "loss.h"

#define ET_MRL_MAX_DIMS 16

typedef struct {
    int n;                          /* number of dimensions; 0 = off (the plain loss) */
    int dim[ET_MRL_MAX_DIMS];       /* each > 0, distinct; checked against the model width by et_matryoshka_check */
    double weight[ET_MRL_MAX_DIMS]; /* each >= 0 and finite, not all 0 */
} et_matryoshka;

/* Parse "128,64,32" (weights 1) or "128:1,64:0.5,32:0.25" (DIM:WEIGHT; the two forms may mix). Errors name the item. */
et_status et_matryoshka_parse(const char *spec, et_matryoshka *out, et_error *err);
/* Every dimension <= C (the model's hidden size); ET_ERR_ARG naming the dimension otherwise. */
et_status et_matryoshka_check(const et_matryoshka *m, int C, et_error *err);
/* "128:1,64:1,32:1" (the canonical form: resume checks and logs); buf of size cap. */
void et_matryoshka_describe(const et_matryoshka *m, char *buf, size_t cap);

typedef enum { ET_MRL_INFONCE = 0, ET_MRL_CLP = 1, ET_MRL_COS_MSE = 2 } et_mrl_kind;

/* The wrapped loss and its inputs, with the shapes of loss.h (Q, P [B,C]; N, NQ [B*G,C]; mask [B*G] (CLP); y [B]
 * (cos-MSE targets)). Unused pointers may be NULL (N when G == 0, NQ/mask unless CLP, y unless cos-MSE). */
typedef struct {
    et_mrl_kind kind;
    const float *Q, *P, *N, *NQ;
    const unsigned char *mask;
    const float *y;
    int B, G, C;
} et_mrl_args;

/* Float scratch the wrapper needs on top of the loss scratch (et_loss_scratch_doubles(B, G, C) doubles):
 * the cut copies of Q, P, N, NQ and their gradients, 2 * (2B + 2BG) * C floats. */
size_t et_matryoshka_scratch_floats(int B, int G, int C);

/* L (above) into *loss; gradients ACCUMULATED (+=) into dQ/dP/dN/dNQ [.., C] (any may be NULL), scaled by
 * cfg->grad_scale as every loss. Every dimension must be <= a->C. Nothing is allocated. */
et_status et_loss_matryoshka(const et_loss_cfg *cfg, const et_matryoshka *m, const et_mrl_args *a, float *dQ,
                             float *dP, float *dN, float *dNQ, double *scratch, float *fscratch, double *loss,
                             et_error *err);

#endif
