/* fuzz_pairs.c - the pairs readers (src/data.h): JSONL, CSV, TSV and the sniffing et_pairs_read.
 * Byte 0 selects the reader: bits 0-1 = .jsonl / .csv / .tsv / no extension (sniffed), bit 2 =
 * skip_bad. The rest is written to a temp file (the readers take paths). A successful read must
 * give consistent arrays: CSR offsets non-decreasing, every string valid, labels in [0, 1]. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/data.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char *ext[4] = {"p.jsonl", "p.csv", "p.tsv", "p.txt"};
    int sel = data[0] & 3, skip = (data[0] >> 2) & 1;
    char path[320];
    snprintf(path, sizeof path, "%s/%s", et_fuzz_tmpdir(), ext[sel]);
    et_fuzz_write(path, data + 1, size - 1);
    et_read_opts o = {skip, 1 << 20};
    et_read_report rep;
    et_pairs p;
    et_error err = {0};
    et_status s = sel == 0 ? et_pairs_read_jsonl(path, &o, &p, &rep, &err)
                : sel == 3 ? et_pairs_read(path, &o, &p, &rep, &err)
                           : et_pairs_read_csv(path, 0, &o, &p, &rep, &err);
    if (s == ET_OK) {
        if (p.n < 0 || rep.nread != p.n || rep.nmsgs > ET_DATA_MAX_MSGS) abort();
        if (!skip && rep.nbad) abort();
        for (int64_t i = 0; i < p.n; i++) {
            if (!p.query[i] || !p.passage[i]) abort();
            if (et_utf8_valid(p.query[i], strlen(p.query[i]), NULL) == 0) abort();
            if (!(p.label[i] >= 0 && p.label[i] <= 1)) abort();
            if (p.neg_off[i + 1] < p.neg_off[i]) abort();
            for (int k = 0; k < p.K; k++) if (!isfinite(p.scores[i * p.K + k])) abort();
        }
        for (int64_t j = 0; j < (p.n ? p.neg_off[p.n] : 0); j++) {
            if (!p.neg[j]) abort();
            (void)strlen(p.neg[j]);
            if (p.neg_query && p.neg_query[j]) (void)strlen(p.neg_query[j]);
        }
        for (int k = 0; p.expert_names && k < p.K; k++) (void)strlen(p.expert_names[k]);
        et_pairs_free(&p);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
