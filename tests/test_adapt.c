/* test_adapt.c - the corpus-adaptation pair builder (src/adapt.h) on hand-made passages:
 * sentence splitting (abbreviations, initials, tokenised " ." text, line breaks, titles), word spans,
 * ICT pairs (the query is one sentence, the positive the others), crops (spans of the passage within
 * the configured lengths), skipping of short passages, max_pairs, and determinism by seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapt.h"
#include "et_test.h"

/* sentences of t as strings joined by '|' */
static void sents(const char *t, size_t title_len, char *out, size_t cap) {
    size_t se[64];
    int64_t n = et_adapt_sentences(t, strlen(t), title_len, se, 32);
    out[0] = 0;
    for (int64_t k = 0; k < n && k < 32; k++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%.*s", k ? "|" : "", (int)(se[2 * k + 1] - se[2 * k]), t + se[2 * k]);
    }
}

static void sentence_cases(void) {
    char b[1024];
    sents("The cat sat. The dog ran! Did it? Yes.", 0, b, sizeof b);
    CHECK(!strcmp(b, "The cat sat.|The dog ran!|Did it?|Yes."), "basic: %s", b);
    sents("See e.g. the report by J. Smith et al. in 1998. It used 3.5 units.", 0, b, sizeof b);
    CHECK(!strcmp(b, "See e.g. the report by J. Smith et al. in 1998.|It used 3.5 units."), "abbreviations: %s", b);
    sents("an experimental study was made . the results were good . a theory", 0, b, sizeof b);
    CHECK(!strcmp(b, "an experimental study was made .|the results were good .|a theory"), "tokenised: %s", b);
    sents("first line without stop\nsecond \"quoted.\" third", 0, b, sizeof b);
    CHECK(!strcmp(b, "first line without stop|second \"quoted.\"|third"), "newline/quote: %s", b);
    sents("Title here Body starts. Body ends.", 10, b, sizeof b);
    CHECK(!strcmp(b, "Title here|Body starts.|Body ends."), "title: %s", b);
    sents("   ", 0, b, sizeof b);
    CHECK(!strcmp(b, ""), "blank: '%s'", b);
    size_t se[4];
    CHECK(et_adapt_sentences("A. B. C. D.", 11, 0, se, 2) == 1, "initials are not ends"); /* "A. B. C. D." -> one (each is an initial) */
    CHECK(et_adapt_sentences("One. Two. Three.", 16, 0, se, 1) == 3 && se[0] == 0 && se[1] == 4, "count beyond max, first span");
    size_t ws[8];
    CHECK(et_adapt_words("  a bb\tccc \n", 12, ws, 4) == 3 && ws[0] == 2 && ws[1] == 3 && ws[4] == 7 && ws[5] == 10, "words");
}

static int substr_of(const char *s, const char *p) { return strstr(p, s) != NULL; }

static int count_words(const char *s) {
    size_t ws[2];
    return (int)et_adapt_words(s, strlen(s), ws, 0);
}

static void pair_cases(void) {
    const char *P[] = {
        "Alpha one two three. Beta four five six. Gamma seven eight nine ten.",
        "too short text",
        "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20",
        "Delta is a sentence with words. Epsilon is another sentence here.",
    };
    et_adapt_cfg c;
    et_adapt_cfg_default(&c);
    et_error err = {0};
    et_adapt_pairs A, B;
    CHECK(et_adapt_build(P, NULL, 4, &c, &A, &err) == ET_OK, "%s", err.msg);
    CHECK(A.n == 3 && A.n_skipped == 1, "3 pairs, 1 short passage skipped (n %lld, skipped %lld)", (long long)A.n, (long long)A.n_skipped);
    CHECK(A.n_ict + A.n_crop == A.n, "kind counts");
    for (int64_t i = 0; i < A.n; i++) {
        const char *t = P[A.doc[i]];
        CHECK(A.doc[i] != 1, "the short passage gave a pair");
        if (A.kind[i] == ET_ADAPT_ICT) {
            /* the query is exactly one sentence of the passage; the positive holds the other sentences */
            size_t se[16];
            int64_t ns = et_adapt_sentences(t, strlen(t), 0, se, 8), hit = -1;
            for (int64_t k = 0; k < ns; k++)
                if (strlen(A.query[i]) == se[2 * k + 1] - se[2 * k] && !strncmp(A.query[i], t + se[2 * k], strlen(A.query[i]))) hit = k;
            CHECK(hit >= 0, "ICT query '%s' is not a sentence of passage %d", A.query[i], A.doc[i]);
            for (int64_t k = 0; k < ns; k++) {
                if (k == hit) continue;
                char s[128];
                snprintf(s, sizeof s, "%.*s", (int)(se[2 * k + 1] - se[2 * k]), t + se[2 * k]);
                CHECK(substr_of(s, A.positive[i]), "ICT positive '%s' lacks sentence '%s'", A.positive[i], s);
            }
        } else {
            /* crops are spans of the passage, between crop_min_words and the whole passage */
            CHECK(substr_of(A.query[i], t) && substr_of(A.positive[i], t), "crop not a span: '%s' / '%s'", A.query[i], A.positive[i]);
            int nw = count_words(t), qw = count_words(A.query[i]), pw = count_words(A.positive[i]);
            int hi = (int)(0.5 * nw + 0.5);
            CHECK(qw >= 4 && qw <= (hi > 4 ? hi : 4) && pw >= 4 && pw <= (hi > 4 ? hi : 4), "crop lengths %d, %d of %d words", qw, pw, nw);
        }
    }
    /* determinism: same seed, same pairs; another seed differs somewhere */
    CHECK(et_adapt_build(P, NULL, 4, &c, &B, &err) == ET_OK, "%s", err.msg);
    int same = A.n == B.n;
    for (int64_t i = 0; same && i < A.n; i++)
        same = A.doc[i] == B.doc[i] && A.kind[i] == B.kind[i] && !strcmp(A.query[i], B.query[i]) && !strcmp(A.positive[i], B.positive[i]);
    CHECK(same, "same seed, different pairs");
    et_adapt_pairs_free(&B);
    int differs = 0;
    for (uint64_t seed = 1; seed < 6 && !differs; seed++) {
        c.seed = seed;
        CHECK(et_adapt_build(P, NULL, 4, &c, &B, &err) == ET_OK, "%s", err.msg);
        for (int64_t i = 0; i < A.n && i < B.n; i++)
            if (A.doc[i] != B.doc[i] || strcmp(A.query[i], B.query[i]) || strcmp(A.positive[i], B.positive[i])) differs = 1;
        et_adapt_pairs_free(&B);
    }
    CHECK(differs, "five other seeds all gave the same pairs");
    et_adapt_pairs_free(&A);

    /* forced kinds: ict_share 1 on multi-sentence passages gives ICT only, with ict_keep 0 the query sentence is
       left out; ict_share 0 gives crops only */
    et_adapt_cfg_default(&c);
    c.ict_share = 1; c.ict_keep = 0;
    const char *Q[] = {"Alpha one two three. Beta four five six. Gamma seven eight nine ten."};
    CHECK(et_adapt_build(Q, NULL, 1, &c, &A, &err) == ET_OK && A.n == 1 && A.kind[0] == ET_ADAPT_ICT, "forced ICT");
    if (A.n == 1) CHECK(!substr_of(A.query[0], A.positive[0]), "ict_keep 0 kept the query sentence: '%s' in '%s'", A.query[0], A.positive[0]);
    et_adapt_pairs_free(&A);
    c.ict_share = 0;
    CHECK(et_adapt_build(Q, NULL, 1, &c, &A, &err) == ET_OK && A.n == 1 && A.kind[0] == ET_ADAPT_CROP, "forced crop");
    et_adapt_pairs_free(&A);
    /* a one-sentence passage never gives ICT */
    c.ict_share = 1;
    const char *R[] = {"one two three four five six seven eight nine"};
    CHECK(et_adapt_build(R, NULL, 1, &c, &A, &err) == ET_OK && A.n == 1 && A.kind[0] == ET_ADAPT_CROP, "single sentence -> crop");
    et_adapt_pairs_free(&A);
    /* max_pairs */
    et_adapt_cfg_default(&c);
    c.max_pairs = 2;
    CHECK(et_adapt_build(P, NULL, 4, &c, &A, &err) == ET_OK && A.n == 2, "max_pairs 2 gave %lld", (long long)A.n);
    et_adapt_pairs_free(&A);
    /* bad settings are refused with a message */
    c.crop_min = 0.6; c.crop_max = 0.5;
    CHECK(et_adapt_build(P, NULL, 4, &c, &A, &err) == ET_ERR_ARG && strstr(err.msg, "crop"), "bad crop ratios accepted");
}

int main(void) {
    sentence_cases();
    pair_cases();
    return et_test_report("test_adapt");
}
