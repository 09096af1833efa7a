/* test_wordpiece_case.c - WordPiece casing variants (et_tokenizer_set_case) vs Hugging Face Rust tokenizers:
 * tests/fixtures/wordpiece_case (tools/gen_wordpiece_case_fixture.py): a cased multilingual vocab and the ids
 * of BertNormalizer{lowercase false, strip_accents null}, {false, true} and {true, false} for 1,944 texts
 * (the multilingual and adversarial texts of tests/fixtures/spm/cases.txt). Every text must match; for a text
 * with unassigned code points (which Rust keeps and Python's BertTokenizer, like embedtune, drops) the
 * reference ids are Rust's for the text without them (counted apart). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx_tok.h"
#include "hf.h"
#include "tokenizer.h"
#include "et_test.h"

#define DIR "tests/fixtures/wordpiece_case"


static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    return b;
}

int main(void) {
    /* the texts: field 3 of the "t" lines of the spm fixture */
    char *spm = slurp("tests/fixtures/spm/cases.txt"), *cases = slurp(DIR "/cases.txt");
    if (!spm || !cases) {
        fprintf(stderr, "FAIL: cannot read the fixtures (run from the repo root)\n");
        return 1;
    }
    enum { MAXT = 16384 };
    static char *text[MAXT];
    static size_t tlen[MAXT];
    int nt = 0;
    for (char *line = spm, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (line[0] != 't' || line[1] != '\t' || nt == MAXT) continue;
        char *a = strchr(line + 2, '\t'), *b = a ? strchr(a + 1, '\t') : NULL;
        if (!b) continue;
        *b = 0;
        text[nt] = a + 1;
        tlen[nt] = fx_unescape(text[nt], 1);
        nt++;
    }
    static const char *const modes[3] = {"cased", "cased_strip", "lower_keep"};
    static const int lower[3] = {0, 0, 1}, strip[3] = {-1, 1, 0};
    et_tokenizer *tok[3];
    for (int m = 0; m < 3; m++) {
        et_error err = {0};
        tok[m] = et_tokenizer_load_vocab(DIR "/vocab.txt", &err);
        if (!tok[m]) {
            fprintf(stderr, "FAIL: %s\n", err.msg);
            return 1;
        }
        et_tokenizer_set_case(tok[m], lower[m], strip[m]);
    }
    int n[3] = {0}, ok[3] = {0}, ncn[3] = {0};
    static int32_t want[65536], got[65536];
    for (char *line = cases, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (line[0] == '#') continue;
        char mode[32];
        int idx, cn, off = 0;
        if (sscanf(line, "%31s %d %d %n", mode, &idx, &cn, &off) != 3 || idx < 0 || idx >= nt) {
            CHECK(0, "bad fixture line '%.60s'", line);
            continue;
        }
        int m = !strcmp(mode, "cased") ? 0 : !strcmp(mode, "cased_strip") ? 1 : 2;
        int nw = fx_parse_ints(line + off, want, 65536), k = et_tokenize(tok[m], text[idx], tlen[idx], got, 65536);
        int same = k == nw;
        for (int i = 0; same && i < k; i++) same = got[i] == want[i];
        n[m]++;
        ok[m] += same;
        ncn[m] += cn;
        if (!same && et_test_fails < 20) {
            int i = 0;
            while (i < k && i < nw && got[i] == want[i]) i++;
            CHECK(0, "%s text %d '%.60s': %d ids, want %d; first difference at %d: %s vs %s", mode, idx, text[idx], k, nw, i,
                  i < k ? et_tokenizer_token(tok[m], got[i]) : "(end)", i < nw ? et_tokenizer_token(tok[m], want[i]) : "(end)");
        } else if (!same) {
            et_test_fails++;
        }
    }
    printf("WordPiece casing vs HF tokenizers: ");
    for (int m = 0; m < 3; m++) printf("%s %d/%d (%d with unassigned code points)  ", modes[m], ok[m], n[m], ncn[m]);
    printf("\n");
    for (int m = 0; m < 3; m++) CHECK(n[m] >= 600, "%s: only %d texts", modes[m], n[m]);
    /* the same vocab uncased (the default) lowercases: "Der" and "der" give the same ids */
    int32_t a[8], b[8];
    int na = et_tokenize(tok[2], "Der Compiler", 12, a, 8), nb = et_tokenize(tok[2], "der compiler", 12, b, 8);
    CHECK(na == nb && na > 0 && !memcmp(a, b, sizeof(int32_t) * (size_t)na), "lowercasing");
    na = et_tokenize(tok[0], "Der", 3, a, 8);
    nb = et_tokenize(tok[0], "der", 3, b, 8);
    CHECK(na == 1 && nb == 1 && a[0] != b[0], "cased keeps 'Der' and 'der' apart");
    /* a folder's tokenizer_config.json casing reaches the tokenizer (et_hf_apply_case, as et_hf_load_tokenizer
     * and the wasm model do): do_lower_case false + strip_accents true = cased_strip */
    {
        et_error err = {0};
        et_tokenizer *t = et_tokenizer_load_vocab(DIR "/vocab.txt", &err);
        et_hf_info info = {.do_lower_case = 0, .strip_accents = ET_STRIP_TRUE};
        if (t) et_hf_apply_case(t, &info);
        const char *s = "Über Ärger café Ǆ";
        na = t ? et_tokenize(t, s, strlen(s), a, 8) : -1;
        nb = et_tokenize(tok[1], s, strlen(s), b, 8);
        CHECK(na == nb && na > 0 && !memcmp(a, b, sizeof(int32_t) * (size_t)(na < 8 ? na : 8)), "et_hf_apply_case");
        et_tokenizer_free(t);
    }
    /* the same three tokenizers read from a tokenizer.json (WordPiece model + BertNormalizer, as the
     * generator gives Rust tokenizers) give the same ids on every text */
    {
        char *vt = slurp(DIR "/vocab.txt");
        size_t cap = strlen(vt) * 3 + 4096, w;
        char *js = malloc(cap);
        static const char *const sa[3] = {"null", "true", "false"}, *const lc[3] = {"false", "false", "true"};
        for (int m = 0; vt && js && m < 3; m++) {
            w = (size_t)snprintf(js, cap, "{\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"
                                           "\"strip_accents\":%s,\"lowercase\":%s},\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
                                           "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\","
                                           "\"max_input_chars_per_word\":100,\"vocab\":{", sa[m], lc[m]);
            int id = 0;
            for (char *p = vt; *p; id++) {
                char *nl = strchr(p, '\n');
                size_t L = nl ? (size_t)(nl - p) : strlen(p);
                js[w++] = id ? ',' : ' ';
                js[w++] = '"';
                for (size_t k = 0; k < L; k++) {
                    if (p[k] == '"' || p[k] == '\\') js[w++] = '\\';
                    js[w++] = p[k];
                }
                w += (size_t)snprintf(js + w, cap - w, "\":%d", id);
                p += L + (nl ? 1 : 0);
            }
            w += (size_t)snprintf(js + w, cap - w, "}}}");
            et_error err = {0};
            et_tokenizer *t = et_tokenizer_from_json(js, w, "wp.json", &err);
            CHECK(t && !et_tokenizer_is_sentencepiece(t) && et_tokenizer_vocab_size(t) == et_tokenizer_vocab_size(tok[m]), "%s json: %s",
                  modes[m], t ? "size" : err.msg);
            int same = 0;
            for (int i = 0; t && i < nt; i++) {
                int k1 = et_tokenize(t, text[i], tlen[i], got, 65536), k2 = et_tokenize(tok[m], text[i], tlen[i], want, 65536);
                same += k1 == k2 && !memcmp(got, want, sizeof(int32_t) * (size_t)(k1 < 65536 ? k1 : 65536));
            }
            CHECK(same == nt, "%s: tokenizer.json and vocab.txt + casing agree on %d/%d texts", modes[m], same, nt);
            printf("%s from tokenizer.json: %d/%d texts as from vocab.txt\n", modes[m], same, nt);
            et_tokenizer_free(t);
        }
        const char *bad = "{\"normalizer\":{\"type\":\"BertNormalizer\"},\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
                          "\"model\":{\"type\":\"WordPiece\",\"continuing_subword_prefix\":\"@@\",\"vocab\":{\"[UNK]\":0}}}";
        et_error err = {0};
        et_tokenizer *t = et_tokenizer_from_json(bad, strlen(bad), "bad.json", &err);
        CHECK(!t && err.code == ET_ERR_UNSUPPORTED && strstr(err.msg, "bad.json"), "prefix @@: %s", err.msg);
        const char *wl = "{\"model\":{\"type\":\"WordLevel\",\"vocab\":{}}}"; /* BPE is read by bpe.h (test_bpe) */
        t = et_tokenizer_from_json(wl, strlen(wl), "wl.json", &err);
        CHECK(!t && err.code == ET_ERR_UNSUPPORTED && strstr(err.msg, "WordLevel"), "WordLevel: %s", err.msg);
        free(js);
        free(vt);
    }
    for (int m = 0; m < 3; m++) et_tokenizer_free(tok[m]);
    free(spm);
    free(cases);
    return et_test_report("test_wordpiece_case");
}
