/* fuzz_beir.c - the BEIR folder reader (et_beir_read). Input: byte 0 (bit 0: qrels/test.tsv
 * instead of qrels.tsv, bit 1: skip_bad), then corpus.jsonl, queries.jsonl, qrels separated by
 * ET_FUZZ_SEP, written to a temp folder. A successful read must give qrels sorted by (q, d)
 * without duplicates, indices in range, and CSR offsets that cover them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/data.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int sub = data[0] & 1, skip = (data[0] >> 1) & 1;
    const uint8_t *p[3] = {0};
    size_t l[3] = {0};
    int np = et_fuzz_split(data + 1, size - 1, p, l, 3);
    const char *dir = et_fuzz_tmpdir();
    char path[400];
    static const char *names[3] = {"corpus.jsonl", "queries.jsonl", "qrels.tsv"};
    snprintf(path, sizeof path, "%s/qrels", dir);
    mkdir(path, 0777);
    for (int i = 0; i < 3; i++) {
        if (i == 2 && sub) snprintf(path, sizeof path, "%s/qrels/test.tsv", dir);
        else snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (i < np) et_fuzz_write(path, p[i], l[i]);
        else remove(path);
    }
    snprintf(path, sizeof path, sub ? "%s/qrels.tsv" : "%s/qrels/test.tsv", dir);
    remove(path);
    et_read_opts o = {skip, 1 << 20};
    et_read_report rep;
    et_beir b;
    et_error err = {0};
    if (et_beir_read(dir, &o, &b, &rep, &err) == ET_OK) {
        if (b.ndocs < 0 || b.nqueries < 0 || b.nqrels < 0) abort();
        for (int32_t i = 0; i < b.ndocs; i++) {
            if (et_beir_doc_index(&b, b.doc_id[i]) != i) abort();
            if (b.doc_title_len[i] < 0 || (size_t)b.doc_title_len[i] > strlen(b.doc_text[i])) abort();
        }
        for (int32_t i = 0; i < b.nqueries; i++) {
            if (et_beir_query_index(&b, b.query_id[i]) != i) abort();
            (void)strlen(b.query_text[i]);
        }
        int32_t judged = 0;
        for (int32_t q = 0; q < b.nqueries; q++) {
            if (b.qrel_off[q + 1] < b.qrel_off[q]) abort();
            judged += b.qrel_off[q + 1] > b.qrel_off[q];
        }
        if (b.qrel_off[b.nqueries] != b.nqrels || judged != b.njudged) abort();
        for (int64_t i = 0; i < b.nqrels; i++) {
            const et_qrel *r = &b.qrels[i];
            if (r->q < 0 || r->q >= b.nqueries || r->d < 0 || r->d >= b.ndocs) abort();
            if (i && (r->q < r[-1].q || (r->q == r[-1].q && r->d <= r[-1].d))) abort();
        }
        et_beir_free(&b);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
