/* fuzz_vocab.c - et_tokenizer_from_buffer on arbitrary bytes (a vocab.txt); a vocab that loads
 * tokenizes a fixed text and the input itself, and every id maps back to a token. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    et_error err = {0};
    et_tokenizer *tok = et_tokenizer_from_buffer(buf, size, "vocab.txt", &err);
    if (tok) {
        int V = et_tokenizer_vocab_size(tok);
        if (V <= 0 || et_tokenizer_unk_id(tok) < 0 || et_tokenizer_cls_id(tok) < 0) abort();
        int32_t ids[256];
        static const char text[] = "Hello, world! The quick brown fox's naïve café \xe4\xb8\xad\xe6\x96\x87 [SEP] unaffable";
        int n = et_tokenize(tok, text, sizeof text - 1, ids, 256);
        for (int i = 0; i < n && i < 256; i++) if (ids[i] < 0 || ids[i] >= V || !et_tokenizer_token(tok, ids[i])) abort();
        n = et_tokenize(tok, buf, size, ids, 256);
        for (int i = 0; i < n && i < 256; i++) if (ids[i] < 0 || ids[i] >= V) abort();
        for (int i = 0; i < V && i < 64; i++) {
            const char *s = et_tokenizer_token(tok, i);
            if (!s) abort();
            int j = et_tokenizer_token_id(tok, s);
            if (j < 0 || j >= V) abort();
        }
        et_tokenizer_free(tok);
    } else if (!err.msg[0]) {
        abort();
    }
    free(buf);
    return 0;
}
