/* test_data.c - readers (pairs JSONL, pairwise with experts, CSV/TSV, BEIR) on the committed
 * fixtures in tests/fixtures/data/, their file:line errors and skip_bad reports, strict UTF-8,
 * SHA-1 against the FIPS 180 vectors, the split key (id, else the query text), the STS and corpus.jsonl
 * readers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "et_test.h"

#define FX "tests/fixtures/data/"

static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static void sha1_cases(void) {
    char h[41];
    et_sha1_hex("abc", 3, h);
    CHECK_STREQ(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    et_sha1_hex("", 0, h);
    CHECK_STREQ(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: padding spills a block */
    et_sha1_hex(m, strlen(m), h);
    CHECK_STREQ(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    et_sha1_hex(a, 1000000, h);
    CHECK_STREQ(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(a);
    /* 64-byte input: exactly one block of data, the padding takes a second block */
    et_sha1_hex("0123456701234567012345670123456701234567012345670123456701234567", 64, h);
    CHECK_STREQ(h, "e0c094e867ef46c350ef54a7f59dd60bed92ae83");
    /* split: int(sha1(id)[:8], 16) % 100 >= 80 (prefixes from Python hashlib):
     *   "1" 356a192b -> 896145707 % 100 = 7 train;  "995" 42405d7b -> % 100 = 91 test;
     *   "471" 5e5ad0b7 -> % 100 = 75 train;  "abc" a9993e36 -> train */
    CHECK(!et_split_is_test("1"), "id 1 should be train");
    CHECK(et_split_is_test("995"), "id 995 should be test");
    CHECK(!et_split_is_test("471"), "id 471 should be train");
    CHECK(!et_split_is_test("abc"), "id abc should be train");
}

static void utf8_cases(void) {
    size_t at;
    CHECK(et_utf8_valid("plain ascii", 11, NULL), "ascii");
    CHECK(et_utf8_valid("\xc3\xa9\xe2\x98\x95\xf0\x9f\x98\x80", 9, NULL), "valid 2/3/4-byte");
    CHECK(!et_utf8_valid("ab\xc0\x80", 4, &at) && at == 2, "overlong NUL");
    CHECK(!et_utf8_valid("\xe0\x80\xaf", 3, NULL), "overlong 3-byte");
    CHECK(!et_utf8_valid("\xed\xa0\x80", 3, NULL), "surrogate U+D800");
    CHECK(!et_utf8_valid("\xf4\x90\x80\x80", 4, NULL), "> U+10FFFF");
    CHECK(!et_utf8_valid("x\xe2\x82", 3, &at) && at == 1, "truncated");
    CHECK(!et_utf8_valid("\x80", 1, NULL), "lone continuation");
    CHECK(!et_utf8_valid("\xc3\x28", 2, NULL), "bad continuation");
    CHECK(!et_utf8_valid("\xff", 1, NULL), "0xFF");
}

static void pairs_cases(void) {
    et_error err = {0};
    et_pairs p;
    et_read_report rep;
    /* plain pairs with negatives and negative_queries (null = unknown) */
    et_error_clear(&err);
    CHECK(!et_pairs_read(FX "pairs.jsonl", NULL, &p, &rep, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(p.n == 3 && rep.nread == 3 && rep.nbad == 0, "n %lld", (long long)p.n);
        CHECK(!p.has_label && p.K == 0 && p.label[0] == 1.0f, "plain pairs have no labels/experts");
        CHECK_STREQ(p.query[0], "what is bm25");
        CHECK_STREQ(p.passage[0], "BM25 is a ranking function.");
        CHECK_STREQ(p.id[0], "p1");
        CHECK_STREQ(p.id[1], "7"); /* numeric id */
        CHECK(p.id[2] == NULL, "row 3 has no id");
        CHECK_STREQ(p.query[1], "caf\xc3\xa9 \xe2\x98\x95");
        CHECK_STREQ(p.passage[1], "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 \"quoted\"\\n"); /* JSON "\\n": a literal backslash-n */
        CHECK(p.neg_off[0] == 0 && p.neg_off[1] == 2 && p.neg_off[2] == 2 && p.neg_off[3] == 2, "neg_off");
        CHECK_STREQ(p.neg[0], "Cats purr.");
        CHECK_STREQ(p.neg[1], "Dogs bark.");
        CHECK(p.neg_query && p.neg_query[0] == NULL, "negative_queries[0] is null");
        if (p.neg_query) CHECK_STREQ(p.neg_query[1], "why do dogs bark");
        et_pairs_free(&p);
    }
    /* pairwise rows with positional scores */
    et_error_clear(&err);
    CHECK(!et_pairs_read(FX "pairwise_scores.jsonl", NULL, &p, NULL, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(p.n == 3 && p.has_label && p.K == 2 && !p.expert_names, "pairwise: n %lld K %d", (long long)p.n, p.K);
        float want[] = {0.5f, 1.25f, -0.5f, 2, 0, 0};
        for (int i = 0; i < 6; i++) CHECK(p.scores[i] == want[i], "scores[%d] %g", i, p.scores[i]);
        CHECK(p.label[0] == 1 && p.label[1] == 0 && p.label[2] == 0.75f, "labels");
        CHECK_STREQ(p.passage[2], "p3"); /* "positive" accepted as the passage */
        CHECK(p.neg_query == NULL && p.neg_off[3] == 0, "no negatives");
        et_pairs_free(&p);
    }
    /* named experts, keys in a different order on row 2 */
    et_error_clear(&err);
    CHECK(!et_pairs_read(FX "pairwise_named.jsonl", NULL, &p, NULL, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(p.K == 2 && p.expert_names, "named: K %d", p.K);
        CHECK_STREQ(p.expert_names[0], "bm25");
        CHECK_STREQ(p.expert_names[1], "minilm");
        CHECK(p.scores[0] == 3.5f && p.scores[1] == 0.8f && p.scores[2] == 0.25f && p.scores[3] == 0.1f, "named scores");
        et_pairs_free(&p);
    }
    /* bad lines: strict stops at line 2 (NaN in expert bm25) */
    CHECK(et_pairs_read(FX "bad.jsonl", NULL, &p, NULL, &err) == ET_ERR_FORMAT, "bad.jsonl accepted");
    CHECK(has(err.msg, "bad.jsonl:2:") && has(err.msg, "bm25") && has(err.msg, "NaN"), "msg: %s", err.msg);
    et_read_opts skip = {1, 0};
    et_error_clear(&err);
    CHECK(!et_pairs_read(FX "bad.jsonl", &skip, &p, &rep, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(p.n == 2 && rep.nbad == 8 && rep.nmsgs == 8, "skip_bad: n %lld bad %lld", (long long)p.n, (long long)rep.nbad);
        CHECK_STREQ(p.query[1], "last");
        CHECK(p.scores[2] == 2.0f && p.scores[3] == -0.5f, "row 10 scores");
        const char *want[] = {"bad.jsonl:2:", "bad.jsonl:3:", "bad.jsonl:4:", "bad.jsonl:5:",
                              "bad.jsonl:6:", "bad.jsonl:7:", "bad.jsonl:8:", "bad.jsonl:9:"};
        for (int i = 0; i < 8 && i < rep.nmsgs; i++) CHECK(has(rep.msgs[i], want[i]), "msg %d: %s", i, rep.msgs[i]);
        CHECK(has(rep.msgs[1], "minilm"), "missing expert named: %s", rep.msgs[1]);
        CHECK(has(rep.msgs[2], "label"), "label range: %s", rep.msgs[2]);
        CHECK(has(rep.msgs[3], "UTF-8"), "utf8: %s", rep.msgs[3]);
        CHECK(has(rep.msgs[4], "positive"), "missing passage: %s", rep.msgs[4]);
        CHECK(has(rep.msgs[6], "extra"), "unknown expert: %s", rep.msgs[6]);
        for (int i = 0; i < rep.nmsgs; i++) printf("  skipped: %s\n", rep.msgs[i]);
        et_pairs_free(&p);
    }
    CHECK(et_pairs_read(FX "bad_scores.jsonl", NULL, &p, NULL, &err) != ET_OK, "bad_scores accepted");
    CHECK(has(err.msg, "bad_scores.jsonl:2:") && has(err.msg, "scores[1]"), "msg: %s", err.msg);
    et_error_clear(&err);
    CHECK(!et_pairs_read(FX "bad_scores.jsonl", &skip, &p, &rep, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(p.n == 1 && rep.nbad == 2 && has(rep.msgs[1], ":3:") && has(rep.msgs[1], "3 values"), "K mismatch: %s", rep.msgs[1]);
        et_pairs_free(&p);
    }
    CHECK(et_pairs_read(FX "nope.jsonl", NULL, &p, NULL, &err) == ET_ERR_IO, "missing file: %s", err.msg);
}

static void csv_cases(void) {
    et_error err = {0};
    et_pairs p;
    et_read_report rep;
    et_error_clear(&err);
    CHECK(!et_pairs_read(FX "pairs.csv", NULL, &p, &rep, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(p.n == 4 && p.has_label && p.K == 2, "csv n %lld K %d", (long long)p.n, p.K);
        CHECK_STREQ(p.expert_names[0], "bm25");
        CHECK_STREQ(p.expert_names[1], "minilm");
        CHECK_STREQ(p.query[0], "plain");
        CHECK_STREQ(p.query[1], "with, comma");
        CHECK_STREQ(p.passage[1], "and \"quotes\"");
        CHECK_STREQ(p.query[2], "multi\nline query");
        CHECK_STREQ(p.query[3], "last");
        CHECK(p.scores[2] == 1e-3f && p.scores[3] == -2.0f && p.label[3] == 0.5f, "csv values");
        et_pairs_free(&p);
    }
    et_error_clear(&err);
    CHECK(!et_pairs_read(FX "pairs.tsv", NULL, &p, NULL, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(p.n == 2 && p.K == 1, "tsv n %lld", (long long)p.n);
        CHECK_STREQ(p.query[0], "a \"quoted\" query"); /* TSV: quotes are literal */
        CHECK_STREQ(p.passage[0], "passage, with comma");
        CHECK_STREQ(p.expert_names[0], "exp1");
        CHECK(p.scores[0] == 2.5f && p.scores[1] == -1.0f, "tsv scores");
        et_pairs_free(&p);
    }
    CHECK(et_pairs_read(FX "bad.csv", NULL, &p, NULL, &err) == ET_ERR_FORMAT, "bad.csv accepted");
    CHECK(has(err.msg, "bad.csv:3:") && has(err.msg, "columns"), "msg: %s", err.msg);
    et_read_opts skip = {1, 0};
    et_error_clear(&err);
    CHECK(!et_pairs_read(FX "bad.csv", &skip, &p, &rep, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(p.n == 1 && rep.nbad == 4, "csv skip: n %lld bad %lld", (long long)p.n, (long long)rep.nbad);
        CHECK(has(rep.msgs[1], "bad.csv:4:") && has(rep.msgs[1], "bm25") && has(rep.msgs[1], "finite"), "nan: %s", rep.msgs[1]);
        CHECK(has(rep.msgs[2], "bad.csv:5:") && has(rep.msgs[2], "not a number"), "abc: %s", rep.msgs[2]);
        CHECK(has(rep.msgs[3], "bad.csv:6:") && has(rep.msgs[3], "unterminated"), "quote: %s", rep.msgs[3]);
        et_pairs_free(&p);
    }
}

static void beir_cases(void) {
    et_error err = {0};
    et_beir b;
    et_read_report rep;
    et_error_clear(&err);
    CHECK(!et_beir_read(FX "beir", NULL, &b, &rep, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(b.ndocs == 4 && b.nqueries == 3 && b.nqrels == 4 && b.njudged == 2, "beir sizes %d %d %lld %d", b.ndocs,
              b.nqueries, (long long)b.nqrels, b.njudged);
        CHECK_STREQ(b.doc_text[0], "Wing lift of a wing");
        CHECK(b.doc_title_len[0] == 4, "title len");
        CHECK_STREQ(b.doc_text[1], "drag only");
        CHECK_STREQ(b.doc_text[2], "Title only");
        CHECK_STREQ(b.query_text[2], "unjudged");
        CHECK(et_beir_doc_index(&b, "d4") == 3 && et_beir_doc_index(&b, "zz") == -1, "doc map");
        CHECK(et_beir_query_index(&b, "q2") == 1, "query map");
        /* sorted by (q, d): q1: d1 g3, d3 g0, d4 g2; q2: d2 g1 */
        et_qrel want[] = {{0, 0, 3}, {0, 2, 0}, {0, 3, 2}, {1, 1, 1}};
        for (int i = 0; i < 4; i++)
            CHECK(b.qrels[i].q == want[i].q && b.qrels[i].d == want[i].d && b.qrels[i].grade == want[i].grade,
                  "qrel %d = (%d,%d,%d)", i, b.qrels[i].q, b.qrels[i].d, b.qrels[i].grade);
        CHECK(b.qrel_off[0] == 0 && b.qrel_off[1] == 3 && b.qrel_off[2] == 4 && b.qrel_off[3] == 4, "qrel_off");
        et_beir_free(&b);
    }
    /* qrels/test.tsv layout; strict stops at the missing doc */
    CHECK(et_beir_read(FX "beir_bad", NULL, &b, NULL, &err) == ET_ERR_MISMATCH, "beir_bad accepted: %s", err.msg);
    CHECK(has(err.msg, "qrels/test.tsv:3:") && has(err.msg, "missing"), "msg: %s", err.msg);
    et_read_opts skip = {1, 0};
    et_error_clear(&err);
    CHECK(!et_beir_read(FX "beir_bad", &skip, &b, &rep, &err), "%s", err.msg);
    if (!err.code) {
        CHECK(b.nqrels == 2 && rep.nbad == 4, "beir skip: %lld qrels, %lld bad", (long long)b.nqrels, (long long)rep.nbad);
        CHECK(b.qrels[0].d == 0 && b.qrels[0].grade == 1 && b.qrels[1].d == 1, "kept the first judgment");
        CHECK(has(rep.msgs[1], ":4:") && has(rep.msgs[1], "q9"), "%s", rep.msgs[1]);
        CHECK(has(rep.msgs[3], ":6:") && has(rep.msgs[3], "duplicate"), "%s", rep.msgs[3]);
        et_beir_free(&b);
    }
    /* duplicate _id: fatal even with skip_bad */
    CHECK(et_beir_read(FX "beir_dup", &skip, &b, NULL, &err) == ET_ERR_FORMAT, "duplicate id accepted");
    CHECK(has(err.msg, "corpus.jsonl:3:") && has(err.msg, "duplicate _id 'd1'") && has(err.msg, "line 1"), "msg: %s", err.msg);
    CHECK(et_beir_read(FX "nope", NULL, &b, NULL, &err) == ET_ERR_IO, "missing dir: %s", err.msg);
}

/* growth boundaries: 1..200 rows, each with negatives, so every capacity doubling (64, 128) is
 * crossed; neg_off has rows + 1 entries (a heap overflow at exactly 64 rows was found by ASan) */
static void growth_cases(void) {
    char path[] = "/tmp/et_test_data_growXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    for (int rows = 63; rows <= 200; rows += (rows == 66 ? 60 : 1)) { /* 63..66, 126..129 */
        FILE *g = fopen(path, "w");
        for (int i = 0; i < rows; i++)
            fprintf(g, "{\"query\":\"q%d\",\"positive\":\"p%d\",\"negatives\":[\"n%d\",\"m%d\"]}\n", i, i, i, i);
        fclose(g);
        et_pairs p;
        et_error err = {0};
        et_status st = et_pairs_read(path, NULL, &p, NULL, &err);
        CHECK(st == ET_OK, "%d rows: %s", rows, err.msg);
        if (st) continue;
        CHECK(p.n == rows, "%d rows read as %lld", rows, (long long)p.n);
        CHECK(p.neg_off[p.n] == 2 * (int64_t)rows, "%d rows: neg_off[n] = %lld", rows, (long long)p.neg_off[p.n]);
        char want[32];
        snprintf(want, sizeof want, "m%d", rows - 1);
        CHECK_STREQ(p.neg[p.neg_off[p.n - 1] + 1], want);
        et_pairs_free(&p);
    }
    remove(path);
}

/* the split key: the id when non-empty, else the query text (SHA-1 of its UTF-8 bytes; hashlib values:
 * "café ☕ how do I order" a5a0a5e5 -> 69 train, "what is bm25" 822dd7f6 -> 86 test, "q10" 0bfb18e2 -> 82 test) */
static void split_key_cases(void) {
    const char *cafe = "caf\xc3\xa9 \xe2\x98\x95 how do I order";
    CHECK(!et_split_row_is_test(NULL, cafe), "UTF-8 query text -> train");
    CHECK(et_split_row_is_test(NULL, "what is bm25"), "query text -> test");
    CHECK(et_split_row_is_test("", "what is bm25"), "an empty id counts as none");
    CHECK(!et_split_row_is_test("1", "what is bm25"), "the id wins over the query text");
    CHECK(et_split_row_is_test("q10", cafe), "id q10 -> test");
    CHECK(et_split_key(NULL, "x") && !strcmp(et_split_key(NULL, "x"), "x") && !strcmp(et_split_key("i", "x"), "i"), "et_split_key");
    CHECK(et_split_keep(ET_SPLIT_ALL, NULL, cafe) && et_split_keep(ET_SPLIT_TRAIN, NULL, cafe) && !et_split_keep(ET_SPLIT_TEST, NULL, cafe) &&
          et_split_keep(ET_SPLIT_TEST, "q10", cafe) && !et_split_keep(ET_SPLIT_TRAIN, "q10", cafe), "et_split_keep");
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) { fputs(text, f); fclose(f); }
}

static void sts_corpus_cases(void) {
    et_error err = {0};
    et_read_report rep;
    char path[64];
    snprintf(path, sizeof path, "/tmp/et_test_sts_%d.jsonl", (int)getpid());
    write_text(path, "\xef\xbb\xbf{\"s1\": \"a \\u00e9\", \"s2\": \"b\", \"score\": 4.5, \"id\": 7, \"genre\": \"x\"}\n\n"
                     "{\"s1\": \"c\", \"s2\": \"d\", \"score\": 0, \"id\": \"r2\"}\r\n{\"s1\": \"e\", \"s2\": \"f\", \"score\": -1}\n");
    CHECK(et_sts_sniff(path), "sniffed as STS");
    et_sts S;
    CHECK(!et_sts_read(path, NULL, &S, &rep, &err), "sts: %s", err.msg);
    if (!err.code) {
        CHECK(S.n == 3 && rep.nread == 3, "3 rows");
        CHECK_STREQ(S.s1[0], "a \xc3\xa9");
        CHECK_STREQ(S.id[0], "7");
        CHECK_STREQ(S.id[1], "r2");
        CHECK(S.id[2] == NULL && S.score[0] == 4.5 && S.score[1] == 0 && S.score[2] == -1, "ids and scores");
        et_sts_free(&S);
    }
    /* bad lines: file:line and the field; skip_bad skips and counts */
    write_text(path, "{\"s1\": \"a\", \"s2\": \"b\", \"score\": 1}\n{\"s1\": \"caf\xe9\", \"s2\": \"b\", \"score\": 1}\n"
                     "{\"s1\": \"a\", \"s2\": 3, \"score\": 1}\n{\"s1\": \"a\", \"s2\": \"b\", \"score\": \"high\"}\n"
                     "{\"s1\": \"x\", \"s2\": \"y\", \"score\": 2}\n");
    memset(&err, 0, sizeof err);
    CHECK(et_sts_read(path, NULL, &S, NULL, &err) == ET_ERR_FORMAT && has(err.msg, ":2: invalid UTF-8"), "Latin-1 byte: %s", err.msg);
    et_read_opts skip = {1, 0};
    memset(&err, 0, sizeof err);
    CHECK(!et_sts_read(path, &skip, &S, &rep, &err), "skip_bad: %s", err.msg);
    if (!err.code) {
        CHECK(S.n == 2 && rep.nbad == 3 && has(rep.msgs[1], ":3: field 's2'") && has(rep.msgs[2], ":4: field 'score'"),
              "skipped 3 (%lld): %s | %s", (long long)rep.nbad, rep.msgs[1], rep.msgs[2]);
        et_sts_free(&S);
    }
    write_text(path, "{\"s1\": \"a\", \"s2\": \"b\", \"score\": 1}\n");
    memset(&err, 0, sizeof err);
    CHECK(et_sts_read(path, NULL, &S, NULL, &err) == ET_ERR_FORMAT && has(err.msg, "at least 2"), "one row: %s", err.msg);
    write_text(path, "{\"query\": \"a\", \"positive\": \"b\"}\n");
    CHECK(!et_sts_sniff(path), "a pairs file is not STS");
    /* corpus.jsonl on its own: the BEIR corpus reader */
    write_text(path, "{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"x y\"}\n{\"_id\": 2, \"text\": \"z\"}\n");
    et_corpus C;
    memset(&err, 0, sizeof err);
    CHECK(!et_corpus_read(path, NULL, &C, NULL, &err), "corpus: %s", err.msg);
    if (!err.code) {
        CHECK(C.n == 2 && C.title_len[0] == 1 && C.title_len[1] == 0, "corpus rows");
        CHECK_STREQ(C.text[0], "T x y");
        CHECK_STREQ(C.id[1], "2");
        et_corpus_free(&C);
    }
    write_text(path, "{\"_id\": \"d1\", \"text\": \"x\"}\n{\"_id\": \"d1\", \"text\": \"z\"}\n");
    memset(&err, 0, sizeof err);
    CHECK(et_corpus_read(path, NULL, &C, NULL, &err) == ET_ERR_FORMAT && has(err.msg, ":2: duplicate _id 'd1'"), "dup id: %s", err.msg);
    remove(path);
}

int main(void) {
    growth_cases();
    split_key_cases();
    sts_corpus_cases();
    sha1_cases();
    utf8_cases();
    pairs_cases();
    csv_cases();
    beir_cases();
    return et_test_report("test_data");
}
