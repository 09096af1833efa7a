/* fx_tok.h - tokenizer fixture helpers shared by tests/test_tokenizer.c and tests/test_spm.c:
 * escaped text fields and whitespace-separated id lists. */
#ifndef ET_TESTS_FX_TOK_H
#define ET_TESTS_FX_TOK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Undo "\xHH" escapes in place (and "\\" -> "\" when `backslash` is set); returns the byte length
 * (the text may then hold NUL bytes). */
static inline size_t fx_unescape(char *s, int backslash) {
    size_t w = 0;
    for (size_t r = 0; s[r];) {
        if (s[r] == '\\' && s[r + 1] == 'x') {
            unsigned v = 0;
            sscanf(s + r + 2, "%2x", &v);
            s[w++] = (char)v;
            r += 4;
        } else if (backslash && s[r] == '\\' && s[r + 1] == '\\') {
            s[w++] = '\\';
            r += 2;
        } else {
            s[w++] = s[r++];
        }
    }
    s[w] = 0;
    return w;
}

/* Integers of s into out (at most max stored); returns how many s holds. */
static inline int fx_parse_ints(const char *s, int32_t *out, int max) {
    int n = 0;
    char *end;
    for (;;) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        if (n < max) out[n] = (int32_t)v;
        n++;
        s = end;
    }
    return n;
}

#endif
