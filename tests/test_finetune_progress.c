/* test_finetune_progress.c - et_finetune_cfg.progress (what the web page shows and how it cancels):
 *   - infonce on the pairs fixture with refresh: the phases arrive in order load, parse, eval_before,
 *     mine, train, refresh, eval_after, done; encode counts rise to their totals; every step is reported
 *     once with its statistics; the results equal those of the same run without a callback;
 *   - the evaluation's steps report too (each named, counting from 0 to its total): in eval_before the held-out
 *     set's encoding, BM25 index and candidates, then the fusion's fitting set (BM25 index, query encoding,
 *     candidates) and the fusion's cross-validation over its grid;
 *   - mse: the experts phase replaces mine;
 *   - returning non-zero cancels: in an encode (eval_before), at a step (train), at a phase start
 *     (mine) -> ET_ERR_CANCELLED, and the callback is not called again. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "et_test.h"
#include "fx_finetune.h"

#define NSTEPS 8
static const char *steps_want[NSTEPS] = {"encode eval corpus", "BM25 index", "encode eval queries", "candidates",
                                          "fusion set: BM25 index", "fusion set: encode queries", "fusion set: candidates",
                                          "fusion cross-validation"};

typedef struct {
    int seen[ET_FT_PHASE_DONE + 1];
    int step_first[NSTEPS], step_done[NSTEPS]; /* eval_before: step reported from 0, and up to its total (> 0) */
    int step_bad;                              /* a step's done went down, or a step without a unit */
    int order[256], norder;       /* distinct phases in arrival order (consecutive repeats folded) */
    long last_step, steps, bad_step;
    int bad_count;
    et_ft_phase cancel_phase;     /* cancel when this phase reports ... */
    double cancel_at;             /* ... done >= this (phase start: done 0) */
    int calls_after_cancel, cancelled;
} rec;

static int cb(void *user, const et_ft_progress *p) {
    rec *r = user;
    if (r->cancelled) { r->calls_after_cancel++; return 1; }
    r->seen[p->phase]++;
    if (p->step && !p->unit) r->step_bad++;
    for (int i = 0; p->phase == ET_FT_PHASE_EVAL_BEFORE && p->step && i < NSTEPS; i++)
        if (!strcmp(p->step, steps_want[i])) {
            if (p->done == 0 && !r->step_done[i]) r->step_first[i] = 1;
            if (p->total > 0 && p->done == p->total) r->step_done[i] = 1;
        }
    if (!r->norder || r->order[r->norder - 1] != (int)p->phase) { if (r->norder < 256) r->order[r->norder++] = p->phase; }
    if (p->total > 0 && (p->done < 0 || p->done > p->total)) r->bad_count++;
    if (p->phase == ET_FT_PHASE_TRAIN && p->train) {
        if (p->train->step != r->last_step + 1 || p->done != (double)p->train->step || !isfinite(p->train->loss)) r->bad_step++;
        r->last_step = p->train->step;
        r->steps++;
    }
    if ((int)r->cancel_phase >= 0 && p->phase == r->cancel_phase && p->done >= r->cancel_at) { r->cancelled = 1; return 1; }
    return 0;
}

/* the fixture's pairs file, one epoch */
static void cfg(et_finetune_cfg *c, const char *out, et_train_loss loss) {
    base_cfg(c, FX "/pairs.jsonl", out, loss);
    c->train.epochs = 1;
}

static void rec_init(rec *R, et_ft_phase cancel_phase, double cancel_at) {
    memset(R, 0, sizeof *R);
    R->cancel_phase = cancel_phase;
    R->cancel_at = cancel_at;
}

int main(void) {
    et_error err = {0};
    char tmpl[] = "/tmp/et_test_ftprog_XXXXXX";
    const char *tmp = mkdtemp(tmpl);
    if (!tmp) { fprintf(stderr, "mkdtemp failed\n"); return 1; }
    char out[512];
    et_finetune_cfg c;
    et_finetune_result plain, r;

    /* 1. infonce + refresh: the phases, in order; same numbers as without the callback */
    snprintf(out, sizeof out, "%s/plain", tmp);
    cfg(&c, out, ET_TRAIN_INFONCE);
    c.refresh_every = 2;
    CHECK(!et_finetune_run(&c, &plain, &err), "plain run: %s", err.msg);
    rec R;
    rec_init(&R, (et_ft_phase)-1, 0);
    snprintf(out, sizeof out, "%s/cb", tmp);
    cfg(&c, out, ET_TRAIN_INFONCE);
    c.refresh_every = 2;
    c.progress = cb;
    c.progress_user = &R;
    et_status s = et_finetune_run(&c, &r, &err);
    CHECK(!s, "run with progress: %s", err.msg);
    int want[64], nw = 0;
    want[nw++] = ET_FT_PHASE_LOAD; want[nw++] = ET_FT_PHASE_PARSE; want[nw++] = ET_FT_PHASE_EVAL_BEFORE;
    want[nw++] = ET_FT_PHASE_MINE; want[nw++] = ET_FT_PHASE_TRAIN;
    for (int i = 0; i < r.refreshes && nw < 60; i++) { want[nw++] = ET_FT_PHASE_REFRESH; want[nw++] = ET_FT_PHASE_TRAIN; }
    want[nw++] = ET_FT_PHASE_EVAL_AFTER; want[nw++] = ET_FT_PHASE_DONE;
    CHECK(r.refreshes == (int)((r.steps - 1) / 2), "refreshes %d (%ld steps, every 2)", r.refreshes, r.steps);
    CHECK(r.refreshes >= 1, "at least one refresh");
    CHECK(R.norder == nw, "phase count %d, want %d", R.norder, nw);
    for (int i = 0; i < nw && i < R.norder; i++)
        CHECK(R.order[i] == want[i], "phase %d: %s, want %s", i, et_ft_phase_name((et_ft_phase)R.order[i]), et_ft_phase_name((et_ft_phase)want[i]));
    CHECK(R.steps == r.steps && R.last_step == r.steps && !R.bad_step, "steps reported %ld of %ld (bad %ld)", R.steps, r.steps, R.bad_step);
    CHECK(!R.bad_count, "%d reports with done outside [0, total]", R.bad_count);
    CHECK(R.seen[ET_FT_PHASE_EVAL_BEFORE] > 1 && R.seen[ET_FT_PHASE_EVAL_AFTER] > 1 && R.seen[ET_FT_PHASE_MINE] > 1,
          "encode batches reported (eval_before %d, mine %d, eval_after %d)", R.seen[ET_FT_PHASE_EVAL_BEFORE],
          R.seen[ET_FT_PHASE_MINE], R.seen[ET_FT_PHASE_EVAL_AFTER]);
    CHECK(R.seen[ET_FT_PHASE_DONE] == 1, "done once");
    for (int i = 0; i < NSTEPS; i++)
        CHECK(R.step_done[i] && (i == 0 || i == 2 || i == 5 || R.step_first[i]), "eval_before step '%s': reported from 0 %d, to its total %d",
              steps_want[i], R.step_first[i], R.step_done[i]);
    CHECK(!R.step_bad, "%d step reports without a unit", R.step_bad);
    CHECK(r.steps == plain.steps && r.before.ndcg10 == plain.before.ndcg10 && r.after.ndcg10 == plain.after.ndcg10 &&
          r.after.auprc == plain.after.auprc && r.bm25.ndcg10 == plain.bm25.ndcg10,
          "the callback changes nothing: nDCG@10 after %.6f vs %.6f", r.after.ndcg10, plain.after.ndcg10);

    /* 2. mse: experts instead of mining */
    rec_init(&R, (et_ft_phase)-1, 0);
    snprintf(out, sizeof out, "%s/mse", tmp);
    cfg(&c, out, ET_TRAIN_MSE);
    c.negatives = 2;
    c.progress = cb;
    c.progress_user = &R;
    s = et_finetune_run(&c, &r, &err);
    CHECK(!s, "mse: %s", err.msg);
    CHECK(R.seen[ET_FT_PHASE_EXPERTS] >= 1 && !R.seen[ET_FT_PHASE_MINE] && !R.seen[ET_FT_PHASE_REFRESH], "mse phases: experts %d mine %d",
          R.seen[ET_FT_PHASE_EXPERTS], R.seen[ET_FT_PHASE_MINE]);

    /* 3. cancel: in an encode, at a step, at a phase start */
    struct { et_ft_phase ph; double at; } cases[] = {{ET_FT_PHASE_EVAL_BEFORE, 1}, {ET_FT_PHASE_TRAIN, 3}, {ET_FT_PHASE_MINE, 0}};
    for (int k = 0; k < 3; k++) {
        rec_init(&R, cases[k].ph, cases[k].at);
        snprintf(out, sizeof out, "%s/cancel%d", tmp, k);
        cfg(&c, out, ET_TRAIN_INFONCE);
        c.progress = cb;
        c.progress_user = &R;
        s = et_finetune_run(&c, &r, &err);
        CHECK(s == ET_ERR_CANCELLED && R.cancelled, "cancel in %s: status %d (%s)", et_ft_phase_name(cases[k].ph), (int)s, err.msg);
        CHECK(R.calls_after_cancel == 0, "cancel in %s: %d calls after the cancel", et_ft_phase_name(cases[k].ph), R.calls_after_cancel);
        CHECK(strstr(err.msg, "cancelled") != NULL, "message: %s", err.msg);
        if (cases[k].ph == ET_FT_PHASE_TRAIN) CHECK(R.last_step == 3, "stopped at step %ld", R.last_step);
    }

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmp);
    return et_test_report("test_finetune_progress");
}
