/* fuzz_train_data.c - the trainer's reader (et_train_data_read, src/train.h: the rows of the one pairs
 * reader, data.h, as examples) on arbitrary bytes written to a temp .jsonl file. A successful read must
 * give non-NULL UTF-8 strings, labels in [0,1] and scores that are finite as floats. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/data.h"
#include "../src/train.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[320];
    snprintf(path, sizeof path, "%s/train.jsonl", et_fuzz_tmpdir());
    et_fuzz_write(path, data, size);
    et_train_data d;
    et_error err = {0};
    memset(&d, 0, sizeof d);
    if (et_train_data_read(path, &d, &err) == ET_OK) {
        for (int i = 0; i < d.n; i++) {
            const et_train_example *e = &d.ex[i];
            if (!e->query || !e->positive) abort();
            if (!et_utf8_valid(e->query, strlen(e->query), NULL) || !et_utf8_valid(e->positive, strlen(e->positive), NULL))
                abort(); /* the reader rejects non-UTF-8 lines (a Latin-1 file) */
            for (int j = 0; j < e->n_neg; j++) if (!e->negatives[j]) abort(); else (void)strlen(e->negatives[j]);
            for (int j = 0; j < e->n_negq; j++) if (e->neg_queries[j]) (void)strlen(e->neg_queries[j]);
            if (e->has_label && !(e->label >= 0 && e->label <= 1)) abort();
            for (int j = 0; j < e->n_scores; j++) if (!isfinite(e->scores[j])) abort();
        }
        et_train_data_free(&d);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
