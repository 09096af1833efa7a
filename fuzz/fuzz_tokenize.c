/* fuzz_tokenize.c - et_tokenize / et_tokenize_batch on arbitrary bytes with the real fixture vocab
 * (tests/fixtures/tokenizer/vocab.txt, or $ET_FUZZ_VOCAB), loaded once.
 * Checks: ids in range, the count does not depend on the output capacity, the batch row is
 * [CLS] (first ids) [SEP] [PAD].. with a consistent mask. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/tokenizer.h"

static const et_tokenizer *fuzz_tokenize_vocab(void) {
    static et_tokenizer *tok;
    if (!tok) {
        const char *p = getenv("ET_FUZZ_VOCAB");
        et_error err = {0};
        tok = et_tokenizer_load_vocab(p ? p : "tests/fixtures/tokenizer/vocab.txt", &err);
        if (!tok) { fprintf(stderr, "fuzz_tokenize: %s (run from the repo root or set ET_FUZZ_VOCAB)\n", err.msg); abort(); }
    }
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const et_tokenizer *tok = fuzz_tokenize_vocab();
    int V = et_tokenizer_vocab_size(tok);
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    enum { MAXI = 512 };
    static int32_t ids[MAXI], ids2[8];
    int n = et_tokenize(tok, buf, size, ids, MAXI);
    if (n < 0) abort();
    for (int i = 0; i < n && i < MAXI; i++) if (ids[i] < 0 || ids[i] >= V) abort();
    int n0 = et_tokenize(tok, buf, size, NULL, 0);
    int n8 = et_tokenize(tok, buf, size, ids2, 8);
    if (n0 != n || n8 != n) abort();
    for (int i = 0; i < 8 && i < n; i++) if (ids2[i] != ids[i]) abort();
    /* batch of one NUL-terminated text (stops at the first NUL) */
    enum { ML = 16 };
    int32_t bid[ML], bmask[ML];
    int T = 0;
    const char *texts[1] = {buf};
    et_error err = {0};
    if (et_tokenize_batch(tok, texts, 1, ML, 0, bid, bmask, &T, &err)) abort();
    if (T < 2 || T > ML || bid[0] != et_tokenizer_cls_id(tok) || bid[T - 1] != et_tokenizer_sep_id(tok)) abort();
    int nz = et_tokenize(tok, buf, strlen(buf), ids, MAXI);
    if (T != (nz + 2 < ML ? nz + 2 : ML)) abort();
    for (int i = 1; i < T - 1; i++) if (bid[i] != ids[i - 1] || bmask[i] != 1) abort();
    free(buf);
    return 0;
}
