/* fuzz_sts.c - the STS reader (et_sts_read, src/data.h) and its sniffer on arbitrary bytes written to a temp
 * .jsonl file. Byte 0 bit 0 = skip_bad. A successful read must give at least 2 rows of non-NULL UTF-8 s1/s2,
 * ids that are NULL or UTF-8, finite scores, and a report that adds up; a failure must say why. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/data.h"
#include "fuzz_common.h"

static void sts_utf8(const char *s) {
    if (!s || !et_utf8_valid(s, strlen(s), NULL)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int flags;
    const char *path = et_fuzz_flagged_file(data, size, "sts.jsonl", &flags);
    if (!path) return 0;
    et_read_opts o = {0};
    o.skip_bad = flags & 1;
    et_sts t;
    et_read_report rep;
    et_error err = {0};
    (void)et_sts_sniff(path);
    if (et_sts_read(path, &o, &t, &rep, &err) == ET_OK) {
        if (t.n < 2 || rep.nread != t.n || rep.nbad < 0 || (!o.skip_bad && rep.nbad)) abort();
        for (int64_t i = 0; i < t.n; i++) {
            sts_utf8(t.s1[i]);
            sts_utf8(t.s2[i]);
            if (t.id[i]) sts_utf8(t.id[i]);
            if (!isfinite(t.score[i])) abort();
        }
        et_sts_free(&t);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
