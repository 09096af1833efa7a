/* fuzz_retrieval.c - a model folder's retrieval.json (et_retrieval_parse) and a --fusion SPEC string
 * (et_fusion_parse) from the same bytes. Whatever parses must pass et_fusion_check and hold its documented
 * ranges; a parsed fusion must rank a small hand-made candidate pool without error. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/fusion.h"
#include "fuzz_common.h"

static void rank_small(const et_fusion *f) {
    int64_t off[2] = {0, 3};
    int32_t doc[3] = {0, 1, 2}, dr[3] = {1, 2, 0}, br[3] = {2, 0, 1}, out[5];
    double dn[3] = {0.9, 0.1, -0.2}, bs[3] = {1.5, 0, 2.5}, sc[5];
    et_fusion_cands c = {1, 100, off, doc, dn, bs, dr, br};
    et_fusion g = *f;
    g.depth = 100;
    if (g.top_n > g.depth) g.top_n = g.depth;
    et_error err = {0};
    if (et_fusion_rank(&g, &c, 0, 5, out, sc, &err) != ET_OK) abort();
    int seen = 0;
    for (int j = 0; j < 3; j++) { if (out[j] < 0 || out[j] > 2) abort(); seen |= 1 << out[j]; }
    if (seen != 7 || out[3] != -1 || out[4] != -1) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    et_retrieval_cfg r;
    et_error err = {0};
    if (et_retrieval_parse(buf, size, "retrieval.json", &r, &err) == ET_OK) {
        if (et_fusion_check(&r.fusion, NULL) != ET_OK) abort();
        if (!(r.bm25.k1 >= 0 && r.bm25.k1 <= 100 && r.bm25.b >= 0 && r.bm25.b <= 1)) abort();
        if ((int)r.mode < ET_MODE_DENSE || (int)r.mode > ET_MODE_HYBRID) abort();
        rank_small(&r.fusion);
    } else if (!err.msg[0] || !strstr(err.msg, "retrieval.json")) abort(); /* every error names the file */
    et_fusion f;
    if (et_fusion_parse(buf, &f, &err) == ET_OK) {
        if (et_fusion_check(&f, NULL) != ET_OK || !(f.alpha >= 0 && f.alpha <= 1)) abort();
        rank_small(&f);
    }
    free(buf);
    return 0;
}
