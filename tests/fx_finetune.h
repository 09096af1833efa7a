/* fx_finetune.h - the finetune tests' common setup: the fixture paths and a small, fast et_finetune_cfg
 * (tests/fixtures/e2e/model, 32-dim, 2 layers; lr 1e-3, 5 epochs, no dropout, 32 tokens, 3 negatives, 2 threads,
 * quiet, no dev split). Static: one copy per test executable. */
#ifndef ET_TESTS_FX_FINETUNE_H
#define ET_TESTS_FX_FINETUNE_H

#include "finetune.h"

#define FX "tests/fixtures/finetune"
#define MODEL "tests/fixtures/e2e/model"

static void base_cfg(et_finetune_cfg *c, const char *data, const char *out, et_train_loss loss) {
    et_finetune_cfg_default(c);
    c->model_dir = MODEL;
    c->data = data;
    c->out_dir = out;
    c->train.loss = loss;
    c->train.lr = 1e-3;
    c->train.epochs = 5;
    c->train.dropout = 0;
    c->train.max_len_q = 32;
    c->train.max_len_d = 32;
    c->train.soft_norm = ET_SNORM_MINMAX;
    c->negatives = 3;
    c->threads = 2;
    c->quiet = 1;
    c->dev = 0; /* whole train split, fixed epochs; the dev split has its own tests */
}

#endif
