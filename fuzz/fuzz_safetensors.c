/* fuzz_safetensors.c - et_st_parse on arbitrary bytes, then every tensor read as f32.
 * Checks the reader's promises: offsets inside the data block, end - begin == numel * dtype size,
 * names unique and sorted, readable dtypes convert without touching bytes outside the tensor. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* copy into an exact-size heap buffer so ASan sees any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    et_st_file f;
    et_error err = {0};
    if (et_st_parse(&f, buf, size, "fuzz.safetensors", &err) == ET_OK) {
        for (int i = 0; i < f.n; i++) {
            const et_st_tensor *t = &f.t[i];
            if (t->end < t->begin || t->end > f.data_len) abort();
            if (t->end - t->begin != t->numel * et_st_dtype_size(t->dtype)) abort();
            if (i && strcmp(f.t[i - 1].name, t->name) >= 0) abort();
            if (et_st_find(&f, t->name) != t) abort();
            float *out = malloc(t->numel ? t->numel * sizeof(float) : 1);
            if (!out) continue;
            et_error e2 = {0};
            et_status s = et_st_read_f32(&f, t, out, &e2);
            if (s && !e2.msg[0]) abort(); /* an error always has a message */
            free(out);
        }
        et_st_close(&f);
    } else if (!err.msg[0]) {
        abort();
    }
    free(buf);
    return 0;
}
