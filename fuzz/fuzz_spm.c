/* fuzz_spm.c - the SentencePiece readers and encoder (src/sentencepiece.h).
 * Byte 0 (bits 0-1) picks what the rest is:
 *   0  a tokenizer.json  -> et_spm_from_tokenizer_json, then encode a few fixed texts
 *   1  a .model          -> et_spm_from_model (plain ids), then encode
 *   2  a .model          -> et_spm_from_model (XLM-R ids), then encode
 *   3  a text            -> encoded by the fixture tokenizers (tests/fixtures/spm: xlmr tokenizer.json and
 *                           .model, bytefb tokenizer.json; loaded once; $ET_FUZZ_SPM_DIR overrides the folder)
 * Checks: ids in [0, vocab size), the count does not depend on the output capacity, every id has a name
 * that maps back to an id, and the special ids are in range. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/sentencepiece.h"

static void fuzz_spm_check(const et_spm *s, const char *text, size_t len) {
    int V = et_spm_vocab_size(s);
    if (V < 1) abort();
    enum { MAXI = 1024 };
    static int32_t ids[MAXI], few[4];
    int n = et_spm_encode(s, text, len, ids, MAXI);
    if (n < 0) return; /* scratch allocation failed: allowed */
    for (int i = 0; i < n && i < MAXI; i++) {
        if (ids[i] < 0 || ids[i] >= V) abort();
        const char *t = et_spm_token(s, ids[i]);
        if (!t || et_spm_token_id(s, t) < 0) abort();
    }
    int n0 = et_spm_encode(s, text, len, NULL, 0), n4 = et_spm_encode(s, text, len, few, 4);
    if ((n0 >= 0 && n0 != n) || (n4 >= 0 && n4 != n)) abort();
    for (int i = 0; n4 >= 0 && i < 4 && i < n && i < MAXI; i++)
        if (few[i] != ids[i]) abort();
    int32_t sp[5] = {et_spm_unk_id(s), et_spm_cls_id(s), et_spm_sep_id(s), et_spm_pad_id(s), et_spm_mask_id(s)};
    for (int k = 0; k < 5; k++)
        if (sp[k] < -1 || sp[k] >= V || (k < 4 && sp[k] < 0)) abort();
}

static et_spm *fuzz_spm_fixture(int k) {
    static et_spm *t[3];
    static int loaded;
    if (!loaded) {
        loaded = 1;
        const char *dir = getenv("ET_FUZZ_SPM_DIR");
        static const char *const files[3] = {"xlmr/tokenizer.json", "xlmr/sentencepiece.bpe.model", "bytefb/tokenizer.json"};
        for (int i = 0; i < 3; i++) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir ? dir : "tests/fixtures/spm", files[i]);
            FILE *f = fopen(p, "rb");
            if (!f) { fprintf(stderr, "fuzz_spm: cannot open %s (run from the repo root or set ET_FUZZ_SPM_DIR)\n", p); abort(); }
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            char *b = malloc((size_t)n);
            if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) abort();
            fclose(f);
            et_error err = {0};
            t[i] = i == 1 ? et_spm_from_model(b, (size_t)n, ET_SPM_IDS_FAIRSEQ, p, &err) : et_spm_from_tokenizer_json(b, (size_t)n, p, &err);
            free(b);
            if (!t[i]) { fprintf(stderr, "fuzz_spm: %s\n", err.msg); abort(); }
        }
    }
    return t[k];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] & 3;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    if (mode == 3) {
        for (int k = 0; k < 3; k++) fuzz_spm_check(fuzz_spm_fixture(k), rest, n);
        return 0;
    }
    et_error err = {0};
    et_spm *s = mode == 0 ? et_spm_from_tokenizer_json(rest, n, "fuzz.json", &err)
                          : et_spm_from_model(rest, n, mode == 1 ? ET_SPM_IDS_PLAIN : ET_SPM_IDS_FAIRSEQ, "fuzz.model", &err);
    if (!s) {
        if (!err.code || !err.msg[0]) abort(); /* a failure says why */
        return 0;
    }
#define FUZZ_SPM_T(x) {x, sizeof x - 1}
    static const struct { const char *s; size_t n; } texts[] = {
        FUZZ_SPM_T(""), FUZZ_SPM_T(" "), FUZZ_SPM_T("Hello  world <mask> x "),
        FUZZ_SPM_T("\xef\xbc\xa1\xcc\x81 e\xcc\x81 \xe3\x80\x80\xe5\x85\xa8"), FUZZ_SPM_T("ab\xff\xc0\xaf\xed\xa0\x80"),
        FUZZ_SPM_T("\xf0\x9f\x98\x80\xe2\x80\x8d\xf0\x9f\x98\x80 \x01\x00z")};
#undef FUZZ_SPM_T
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) fuzz_spm_check(s, texts[i].s, texts[i].n);
    et_spm_free(s);
    return 0;
}
