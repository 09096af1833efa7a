/* test_experts.c - expert scores and negative sampling over a pairs file
 * (tests/fixtures/eval/pairs.jsonl: 11 rows, 4 distinct queries, 8 distinct passages, one duplicate row).
 *   - the distinct-text index (hand-checked counts, positives CSR);
 *   - the BM25 expert equals et_bm25_score_pairs / et_bm25_score_text over the distinct passages,
 *     built independently here;
 *   - the dense expert equals cos(encode(q), encode(p)) of single-text encodes (e2e fixture model);
 *   - named score columns: the file's own names are kept, a new expert is appended, the same name replaces;
 *   - negatives: random ones are deterministic per seed, never a positive of the query, distinct per row;
 *     hard ones equal a brute-force ranking by the ranker (BM25 and dense). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experts.h"
#include "hf.h"
#include "kernels.h"
#include "et_test.h"

static const char *PASS[8] = {
    "lift on the wing lets airplanes fly", "the wing shape creates lift", "cats sleep most of the day",
    "dogs bark at night", "water boils at 100 degrees celsius", "ice melts at zero degrees",
    "a compiler translates source code to machine code", "an interpreter runs source code line by line"};

static int pidx(const et_pair_index *ix, const char *s) {
    for (int i = 0; i < ix->np; i++) if (!strcmp(ix->ptext[i], s)) return i;
    return -1;
}

/* brute force hard negatives of one query: best non-positive passages by scores[np], ties by index */
static void brute_hard(const et_pair_index *ix, int q, const float *sc, int n, int32_t *out) {
    char used[64] = {0};
    for (int j = 0; j < n; j++) {
        int b = -1;
        for (int p = 0; p < ix->np; p++) {
            int pos = 0;
            for (int64_t u = ix->pos_off[q]; u < ix->pos_off[q + 1]; u++) pos |= ix->pos[u] == p;
            if (pos || used[p]) continue;
            if (b < 0 || sc[p] > sc[b]) b = p;
        }
        out[j] = b;
        if (b >= 0) used[b] = 1;
    }
}

static void check_negatives(const et_pair_index *ix, const et_pairs *P, const et_expert *ranker, et_pool *pool) {
    enum { N = 3 };
    int32_t a[11 * N], b[11 * N], c[11 * N];
    et_error err = {0};
    et_neg_cfg cfg = {N, ET_NEG_RANDOM, 1.0, 42};
    CHECK(!et_experts_sample_negatives(ix, P->label, NULL, &cfg, pool, a, &err), "%s", err.msg);
    CHECK(!et_experts_sample_negatives(ix, P->label, NULL, &cfg, NULL, b, &err), "%s", err.msg);
    CHECK(!memcmp(a, b, sizeof a), "random negatives not deterministic");
    int differs = 0;
    for (uint64_t seed = 43; seed < 48 && !differs; seed++) {
        cfg.seed = seed;
        CHECK(!et_experts_sample_negatives(ix, P->label, NULL, &cfg, pool, c, &err), "%s", err.msg);
        differs = memcmp(a, c, sizeof a) != 0;
    }
    CHECK(differs, "the seed does not change random negatives");
    for (int64_t r = 0; r < ix->n; r++) {
        int q = ix->row_q[r];
        if (P->label[r] < 0.5f) { CHECK(a[r * N] == -1 && a[r * N + 2] == -1, "label-0 row %lld got negatives", (long long)r); continue; }
        for (int j = 0; j < N; j++) {
            int p = a[r * N + j];
            CHECK(p >= 0 && p < ix->np, "row %lld slot %d: %d", (long long)r, j, p);
            for (int64_t u = ix->pos_off[q]; u < ix->pos_off[q + 1]; u++) CHECK(ix->pos[u] != p, "row %lld: negative %d is a positive", (long long)r, p);
            for (int k = 0; k < j; k++) CHECK(a[r * N + k] != p, "row %lld: duplicate negative %d", (long long)r, p);
        }
    }
    /* hard: equals brute force over the ranker's scores */
    cfg = (et_neg_cfg){N, ET_NEG_HARD, 1.0, 42};
    CHECK(!et_experts_sample_negatives(ix, P->label, ranker, &cfg, pool, a, &err), "%s", err.msg);
    float sc[8];
    int32_t ref[N];
    for (int64_t r = 0; r < ix->n; r++) {
        if (P->label[r] < 0.5f) continue;
        CHECK(!et_expert_score_all(ranker, ix, ix->row_q[r], sc, &err), "%s", err.msg);
        brute_hard(ix, ix->row_q[r], sc, N, ref);
        CHECK(!memcmp(ref, a + r * N, sizeof ref), "%s hard row %lld: got %d %d %d, expected %d %d %d", ranker->name,
              (long long)r, a[r * N], a[r * N + 1], a[r * N + 2], ref[0], ref[1], ref[2]);
    }
    /* mixed: ratio 1/3 -> 1 hard (the best one) + 2 random */
    cfg.hard_ratio = 1.0 / 3;
    CHECK(!et_experts_sample_negatives(ix, P->label, ranker, &cfg, pool, b, &err), "%s", err.msg);
    for (int64_t r = 0; r < ix->n; r++)
        if (P->label[r] >= 0.5f) CHECK(b[r * N] == a[r * N] && b[r * N + 1] >= 0 && b[r * N + 2] >= 0, "mixed row %lld", (long long)r);
    /* hard without a ranker is an error */
    CHECK(et_experts_sample_negatives(ix, P->label, NULL, &cfg, pool, b, &err) == ET_ERR_ARG, "hard without ranker accepted");
    /* more negatives than candidates: q0 has 2 positives among 8 passages -> 6 candidates, then -1 */
    int32_t big[11 * 7];
    et_neg_cfg bc = {7, ET_NEG_RANDOM, 1.0, 1};
    CHECK(!et_experts_sample_negatives(ix, P->label, NULL, &bc, pool, big, &err), "%s", err.msg);
    CHECK(big[5] >= 0 && big[6] == -1, "row 0 (q0): slot 5 = %d, slot 6 = %d", big[5], big[6]);
}

int main(void) {
    et_error err = {0};
    et_pool *pool = et_pool_create(2, &err);
    et_pairs P = {0};
    if (!pool || et_pairs_read("tests/fixtures/eval/pairs.jsonl", NULL, &P, NULL, &err)) { fprintf(stderr, "setup: %s\n", err.msg); return 1; }
    et_pair_index ix;
    CHECK(!et_pair_index_build(&P, &ix, &err), "%s", err.msg);
    CHECK(ix.n == 11 && ix.nq == 4 && ix.np == 8, "index: n %lld nq %d np %d", (long long)ix.n, ix.nq, ix.np);
    for (int i = 0; i < 8; i++) CHECK(pidx(&ix, PASS[i]) >= 0, "passage '%s' missing", PASS[i]);
    /* q0 = "how do airplanes fly": positives {lift..., the wing...} (the duplicate row counts once) */
    CHECK(ix.pos_off[1] - ix.pos_off[0] == 2 && ix.pos_off[4] == 5, "positives CSR %lld %lld", (long long)ix.pos_off[1], (long long)ix.pos_off[4]);
    CHECK(ix.row_p[0] == ix.row_p[10] && ix.row_p[1] == ix.row_p[8] && ix.row_p[2] == ix.row_p[3], "row -> passage mapping");

    /* BM25 expert vs an independent BM25 over the distinct passages (in first-seen order) */
    et_expert bm;
    CHECK(!et_expert_bm25_init(&bm, &ix, NULL, &err), "%s", err.msg);
    et_bm25 *ref = et_bm25_build(PASS, 8, NULL, &err);
    float rows[11];
    double dref[11];
    int32_t didx[11];
    CHECK(!et_expert_score_rows(&bm, &ix, pool, rows, &err), "%s", err.msg);
    for (int i = 0; i < 11; i++) {
        for (didx[i] = 0; strcmp(PASS[didx[i]], P.passage[i]); didx[i]++) {}
    }
    CHECK(!et_bm25_score_pairs(ref, P.query, didx, 11, dref, &err), "%s", err.msg);
    for (int i = 0; i < 11; i++) {
        CHECK(fabs(rows[i] - dref[i]) <= 1e-5 * (1 + fabs(dref[i])), "bm25 row %d: %g vs %g", i, rows[i], dref[i]);
        double t = et_bm25_score_text(ref, P.query[i], P.passage[i]);
        CHECK(fabs(rows[i] - t) <= 1e-5 * (1 + fabs(t)), "bm25 row %d vs score_text: %g vs %g", i, rows[i], t);
    }
    CHECK(rows[0] > 0 && rows[2] == 0, "bm25: matching row %g > 0, no shared term %g == 0", rows[0], rows[2]);
    et_bm25_free(ref);

    /* dense expert vs single-text encodes */
    et_bert m = {0};
    et_hf_info info;
    et_tokenizer *tok = NULL;
    if (et_hf_load_ex("tests/fixtures/e2e/model", &m, &info, &err) ||
        !(tok = et_tokenizer_load_vocab("tests/fixtures/e2e/model/vocab.txt", &err))) {
        fprintf(stderr, "load model: %s\n", err.msg);
        return 1;
    }
    et_encode_opts eo = {4, 64, NULL, NULL};
    et_expert de;
    CHECK(!et_expert_dense_init(&de, &ix, "e2e", &m, tok, pool, &eo, &err), "%s", err.msg);
    float drows[11];
    CHECK(!et_expert_score_rows(&de, &ix, pool, drows, &err), "%s", err.msg);
    int d = m.cfg.hidden_size;
    float *qa = malloc(sizeof(float) * d), *pa = malloc(sizeof(float) * d);
    for (int i = 0; i < 11; i++) {
        et_encode_opts one = {1, 64, NULL, NULL};
        CHECK(!et_encode_texts(&m, tok, NULL, &P.query[i], 1, &one, qa, &err), "%s", err.msg);
        CHECK(!et_encode_texts(&m, tok, NULL, &P.passage[i], 1, &one, pa, &err), "%s", err.msg);
        double c = et_dot(qa, pa, d) / sqrt((double)et_dot(qa, qa, d) * et_dot(pa, pa, d));
        CHECK(fabs(drows[i] - c) < 2e-5, "dense row %d: %g vs %g", i, drows[i], c);
    }
    free(qa); free(pa);

    /* score table: file names kept, bm25 appended, then replaced */
    et_pairs N = {0};
    CHECK(!et_pairs_read("tests/fixtures/data/pairwise_named.jsonl", NULL, &N, NULL, &err), "%s", err.msg);
    et_score_table t;
    CHECK(!et_score_table_from_pairs(&t, &N, &err), "%s", err.msg);
    int kb = et_score_table_find(&t, "bm25"), km = et_score_table_find(&t, "minilm");
    CHECK(t.K == 2 && kb >= 0 && km >= 0 && t.scores[kb] == 3.5f && t.scores[km] == 0.8f && t.scores[t.K + kb] == 0.25f,
          "file scores: K %d", t.K);
    float *col = malloc(sizeof(float) * (size_t)N.n);
    for (int64_t i = 0; i < N.n; i++) col[i] = (float)i + 0.5f;
    CHECK(!et_score_table_set(&t, "e2e", col, &err), "%s", err.msg);
    CHECK(t.K == 3 && !strcmp(t.names[2], "e2e") && t.scores[2] == 0.5f && t.scores[t.K + 2] == 1.5f && t.scores[km] == 0.8f &&
          t.scores[t.K + kb] == 0.25f, "append: K %d", t.K);
    for (int64_t i = 0; i < N.n; i++) col[i] = -1.0f;
    CHECK(!et_score_table_set(&t, "bm25", col, &err), "%s", err.msg);
    CHECK(t.K == 3 && t.scores[kb] == -1.0f && t.scores[km] == 0.8f && t.scores[2] == 0.5f, "replace");
    et_score_table_free(&t);
    free(col);
    et_pairs_free(&N);
    /* positional scores are named score_0.. */
    CHECK(!et_pairs_read("tests/fixtures/data/pairwise_scores.jsonl", NULL, &N, NULL, &err), "%s", err.msg);
    CHECK(!et_score_table_from_pairs(&t, &N, &err) && t.K > 0 && !strcmp(t.names[0], "score_0"), "positional names");
    et_score_table_free(&t);
    et_pairs_free(&N);

    check_negatives(&ix, &P, &bm, pool);
    check_negatives(&ix, &P, &de, pool);

    et_expert_free(&bm);
    et_expert_free(&de);
    et_tokenizer_free(tok);
    et_bert_free(&m);
    et_pair_index_free(&ix);
    et_pairs_free(&P);
    et_pool_destroy(pool);
    return et_test_report("test_experts");
}
