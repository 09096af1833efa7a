/* fuzz_index.c - an index file of `embedtune index` (et_index_read_mem, which also reads the BM25 section through
 * et_bm25_deserialize). Whatever reads must hold its promises: ids (and texts) for every doc, finite L2-normalised
 * embeddings, and a BM25 index that answers a search with doc indices in range. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/index.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    et_index x;
    et_error err = {0};
    if (et_index_read_mem(data, size, "fuzz.etix", &x, &err) != ET_OK) {
        if (!err.msg[0]) abort(); /* every refusal says why */
        return 0;
    }
    if (x.nd < 1 || !x.id || !x.ix.bm || et_bm25_ndocs(x.ix.bm) != x.nd) abort();
    for (int32_t i = 0; i < x.nd; i++) {
        if (!x.id[i]) abort();
        if (x.text && !x.text[i]) abort();
    }
    if (x.dtype != ET_INDEX_NONE) {
        if (!x.ix.D || !x.probe || x.dim < 1) abort();
        for (int32_t d = 0; d < x.nd; d++) {
            double n = 0;
            for (int32_t j = 0; j < x.dim; j++) {
                float v = x.ix.D[(size_t)d * x.dim + j];
                if (!isfinite(v)) abort();
                n += (double)v * v;
            }
            if (n > 1.0001) abort();
        }
    }
    int32_t idx[8];
    double sc[8];
    if (et_bm25_search(x.ix.bm, "a b c 0 1 z the of", 8, idx, sc, &err) == ET_OK)
        for (int j = 0; j < 8; j++)
            if (idx[j] < -1 || idx[j] >= x.nd || (idx[j] >= 0 && !(sc[j] >= 0))) abort();
    et_index_free(&x);
    return 0;
}
