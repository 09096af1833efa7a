/* fuzz_bpe.c - the byte-level BPE readers and encoder (src/bpe.h).
 * Byte 0 (bits 0-1) picks what the rest is:
 *   0  a tokenizer.json            -> et_bpe_from_tokenizer_json, then encode a few fixed texts
 *   1  vocab.json NUL merges.txt   -> et_bpe_from_files (byte 0 bit 2: add_prefix_space), then encode
 *   2, 3  a text                   -> encoded by the fixture tokenizers (tests/fixtures/bpe: tokenizer.json and
 *                                     tokenizer-unk.json; loaded once; $ET_FUZZ_BPE_DIR overrides the folder)
 * Checks: ids in [0, vocab size), the count does not depend on the output capacity, every id has a name
 * that maps back to an id, the special ids are in range, a failed load says why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/bpe.h"

static void fuzz_bpe_check(const et_bpe *b, const char *text, size_t len) {
    int V = et_bpe_vocab_size(b);
    if (V < 1) abort();
    enum { MAXI = 1024 };
    static int32_t ids[MAXI], few[4];
    int n = et_bpe_encode(b, text, len, ids, MAXI);
    if (n < 0) return; /* scratch allocation failed: allowed */
    for (int i = 0; i < n && i < MAXI; i++) {
        if (ids[i] < 0 || ids[i] >= V) abort();
        const char *t = et_bpe_token(b, ids[i]);
        if (!t || et_bpe_token_id(b, t) < 0) abort();
    }
    int n0 = et_bpe_encode(b, text, len, NULL, 0), n4 = et_bpe_encode(b, text, len, few, 4);
    if ((n0 >= 0 && n0 != n) || (n4 >= 0 && n4 != n)) abort();
    for (int i = 0; n4 >= 0 && i < 4 && i < n && i < MAXI; i++)
        if (few[i] != ids[i]) abort();
    int32_t sp[5] = {et_bpe_cls_id(b), et_bpe_sep_id(b), et_bpe_pad_id(b), et_bpe_unk_id(b), et_bpe_mask_id(b)};
    for (int k = 0; k < 5; k++)
        if (sp[k] < -1 || sp[k] >= V || (k < 3 && sp[k] < 0)) abort();
}

static et_bpe *fuzz_bpe_fixture(int k) {
    static et_bpe *t[2];
    static int loaded;
    if (!loaded) {
        loaded = 1;
        const char *dir = getenv("ET_FUZZ_BPE_DIR");
        static const char *const files[2] = {"tokenizer.json", "tokenizer-unk.json"};
        for (int i = 0; i < 2; i++) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir ? dir : "tests/fixtures/bpe", files[i]);
            FILE *f = fopen(p, "rb");
            if (!f) { fprintf(stderr, "fuzz_bpe: cannot open %s (run from the repo root or set ET_FUZZ_BPE_DIR)\n", p); abort(); }
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            char *b = malloc((size_t)n);
            if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) abort();
            fclose(f);
            et_error err = {0};
            t[i] = et_bpe_from_tokenizer_json(b, (size_t)n, p, &err);
            free(b);
            if (!t[i]) { fprintf(stderr, "fuzz_bpe: %s\n", err.msg); abort(); }
        }
    }
    return t[k];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] & 3;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    if (mode >= 2) {
        for (int k = 0; k < 2; k++) fuzz_bpe_check(fuzz_bpe_fixture(k), rest, n);
        return 0;
    }
    et_error err = {0};
    et_bpe *b;
    if (mode == 0) {
        b = et_bpe_from_tokenizer_json(rest, n, "fuzz.json", &err);
    } else {
        const char *nul = memchr(rest, 0, n);
        size_t vn = nul ? (size_t)(nul - rest) : n;
        b = et_bpe_from_files(rest, vn, nul ? nul + 1 : "", nul ? n - vn - 1 : 0, (data[0] >> 2) & 1, "fuzz_vocab.json", "fuzz_merges.txt", &err);
    }
    if (!b) {
        if (!err.code || !err.msg[0]) abort(); /* a failure says why */
        return 0;
    }
#define FUZZ_BPE_T(x) {x, sizeof x - 1}
    static const struct { const char *s; size_t n; } texts[] = {
        FUZZ_BPE_T(""), FUZZ_BPE_T(" "), FUZZ_BPE_T("Hello  world <mask> x's   "),
        FUZZ_BPE_T("\xef\xbc\xa1\xcc\x81 e\xcc\x81 \xe3\x80\x80\xe5\x85\xa8 123 \xd9\xa3"), FUZZ_BPE_T("ab\xff\xc0\xaf\xed\xa0\x80"),
        FUZZ_BPE_T("\xf0\x9f\x98\x80\xe2\x80\x8d\xf0\x9f\x98\x80 \x01\x00z\t\n <s></s>")};
#undef FUZZ_BPE_T
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) fuzz_bpe_check(b, texts[i].s, texts[i].n);
    et_bpe_free(b);
    return 0;
}
