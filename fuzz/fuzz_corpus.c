/* fuzz_corpus.c - the corpus.jsonl reader (et_corpus_read, src/data.h; search and mine --corpus) on arbitrary
 * bytes written to a temp file. Byte 0 bit 0 = skip_bad. A successful read must give at least one document, unique
 * non-empty UTF-8 ids, UTF-8 texts whose title length is in range, and a report that adds up; a failure must
 * say why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/data.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int flags;
    const char *path = et_fuzz_flagged_file(data, size, "corpus.jsonl", &flags);
    if (!path) return 0;
    et_read_opts o = {0};
    o.skip_bad = flags & 1;
    et_corpus c;
    et_read_report rep;
    et_error err = {0};
    if (et_corpus_read(path, &o, &c, &rep, &err) == ET_OK) {
        if (c.n < 1 || rep.nread != c.n || (!o.skip_bad && rep.nbad)) abort();
        for (int32_t i = 0; i < c.n; i++) {
            if (!c.id[i] || !c.id[i][0] || !c.text[i]) abort();
            size_t tl = strlen(c.text[i]);
            if (!et_utf8_valid(c.id[i], strlen(c.id[i]), NULL) || !et_utf8_valid(c.text[i], tl, NULL)) abort();
            if (c.title_len[i] < 0 || (size_t)c.title_len[i] > tl) abort();
            for (int32_t j = 0; j < i && j < 64; j++) if (!strcmp(c.id[i], c.id[j])) abort();
        }
        et_corpus_free(&c);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
