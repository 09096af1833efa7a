/* test_json.c - et_json_parse / et_json_valid_prefix (src/json.h): hand-made valid and invalid texts, each
 * also given to cJSON, so that the grammar check never accepts what cJSON refuses (et_json_parse would then
 * call a syntax error "out of memory"); cJSON's nesting limit exactly; where et_json_parse reports the stop.
 * The out-of-memory verdict itself is exercised by test_oom (every allocation of the parse made to fail). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "et_test.h"

static void one(const char *s, size_t n, int want_valid) {
    int v = et_json_valid_prefix(s, n);
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, NULL, 0);
    CHECK(v == want_valid, "'%.60s': valid_prefix %d, expected %d", s, v, want_valid);
    CHECK(!v || j, "'%.60s': the grammar check accepts what cJSON refuses", s);
    cJSON_Delete(j);
    cJSON *k = NULL;
    et_status st = et_json_parse(s, n, &k, NULL);
    CHECK(st == (j ? ET_OK : ET_ERR_FORMAT) && (st == ET_OK) == (k != NULL), "'%.60s': et_json_parse %d", s, (int)st);
    cJSON_Delete(k);
}
#define V(lit) one(lit, sizeof lit - 1, 1)
#define X(lit) one(lit, sizeof lit - 1, 0)

static void nesting(int depth, int want_valid) {
    char *s = malloc((size_t)depth * 2 + 1);
    for (int i = 0; i < depth; i++) { s[i] = '['; s[2 * depth - 1 - i] = ']'; }
    s[2 * depth] = 0;
    int v = et_json_valid_prefix(s, (size_t)depth * 2);
    cJSON *j = cJSON_ParseWithLength(s, (size_t)depth * 2);
    CHECK(v == want_valid && (j != NULL) == want_valid, "nesting %d: check %d, cJSON %d, expected %d", depth, v, j != NULL,
          want_valid);
    cJSON_Delete(j);
    free(s);
}

int main(void) {
    V("{}");
    V("[]");
    V(" \t\r\n{ \"a\" : [ 1 , 2.5 , -3e-2 , 0 , -0.0 , 1E+9 ] , \"b\" : { } } ");
    V("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"");
    V("true");
    V("false");
    V("null");
    V("12345678901234567890123456789012345678901234567890123456789012345678901234567890");
    V("\xef\xbb\xbf{\"bom\": 1}");       /* a UTF-8 BOM is skipped, as cJSON does */
    V("\xef\xbb\xbf" "12");
    X("\xef\xbb\xbf" "1");                   /* ... but cJSON skips it only with 2+ bytes after it (fuzz_json) */
    V("{\"a\": 1} trailing bytes");        /* only the first value counts (callers check the rest) */
    V("[\"caf\xc3\xa9\"]");                /* raw UTF-8 in strings */
    X("");
    X("   ");
    X("{");
    X("{\"a\" 1}");
    X("{\"a\": }");
    X("{a: 1}");
    X("[1, 2,]");
    X("[1 2]");
    X("\"unterminated");
    X("\"bad escape \\x\"");
    X("\"\\ud800\"");                       /* lone high surrogate: cJSON refuses it */
    X("\"\\udc00\"");                       /* lone low surrogate */
    X("\"\\ud800\\u0041\"");                /* high surrogate + not a low one */
    X("\"\\u12\"");
    X("tru");
    X("nul");
    X("-");
    X("1.");
    X(".5");
    X("1e");
    X("NaN");
    X("\"tab\there\"");                    /* raw control character: not JSON (cJSON accepts it) */
    nesting(1, 1);
    nesting(CJSON_NESTING_LIMIT, 1);
    nesting(CJSON_NESTING_LIMIT + 1, 0);
    /* where a failure stopped: after "[1, " */
    cJSON *j = NULL;
    const char *s = "[1, }", *end = NULL;
    et_status st = et_json_parse(s, strlen(s), &j, &end);
    CHECK(st == ET_ERR_FORMAT && !j && end == s + 4, "stop at byte %d", end ? (int)(end - s) : -1);
    s = "{\"k\": 1}  x";
    st = et_json_parse(s, strlen(s), &j, &end);
    CHECK(st == ET_OK && j && end == s + 8, "end at byte %d", end ? (int)(end - s) : -1);
    cJSON_Delete(j);
    return et_test_report("test_json");
}
