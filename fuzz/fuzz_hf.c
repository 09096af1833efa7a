/* fuzz_hf.c - a whole Hugging Face folder from buffers (et_hf_load_buffers).
 * Input: config.json, vocab.txt, model.safetensors, modules.json, 1_Pooling/config.json,
 * sentence_bert_config.json, tokenizer_config.json separated by ET_FUZZ_SEP (missing or empty
 * optional parts are absent). A model that loads is run forward on one short sequence. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/bert.h"
#include "../src/hf.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p[7] = {0};
    size_t l[7] = {0};
    int np = et_fuzz_split(data, size, p, l, 7);
    /* exact-size copies so ASan sees reads past each buffer */
    char *c[7] = {0};
    for (int i = 0; i < np; i++) {
        c[i] = malloc(l[i] ? l[i] : 1);
        if (!c[i]) goto out;
        memcpy(c[i], p[i], l[i]);
    }
    et_hf_buffers b = {0};
    b.config_json = c[0]; b.config_len = l[0];
    b.vocab_txt = c[1]; b.vocab_len = l[1];
    b.safetensors = c[2]; b.safetensors_len = l[2];
    if (np > 3 && l[3]) { b.modules_json = c[3]; b.modules_len = l[3]; }
    if (np > 4 && l[4]) { b.pooling_json = c[4]; b.pooling_len = l[4]; }
    if (np > 5 && l[5]) { b.sbert_config_json = c[5]; b.sbert_config_len = l[5]; }
    if (np > 6 && l[6]) { b.tokenizer_config_json = c[6]; b.tokenizer_config_len = l[6]; }
    if (np < 3) { /* required parts missing: NULL with length 0 must be refused cleanly */
        if (np < 2) { b.vocab_txt = NULL; b.vocab_len = 0; }
        b.safetensors = NULL; b.safetensors_len = 0;
    }
    et_bert m;
    et_hf_info info;
    et_error err = {0};
    memset(&m, 0, sizeof m);
    if (et_hf_load_buffers(&b, &m, &info, &err) == ET_OK) {
        const et_bert_config *cfg = &m.cfg;
        if (cfg->hidden_size <= 0 || cfg->vocab_size <= 0 || cfg->max_position <= 0) abort();
        if (info.max_seq_length > cfg->max_position) abort();
        /* a forward pass on [CLS]-like id 0.. of length min(3, max_position), if it is small */
        int T = cfg->max_position < 3 ? cfg->max_position : 3;
        if ((size_t)cfg->hidden_size * cfg->intermediate_size < (1u << 22)) {
            et_bert_acts a;
            if (et_bert_acts_alloc(&a, cfg, 1, T, 0, 1, &err) == ET_OK) {
                int32_t ids[3] = {0, cfg->vocab_size - 1, cfg->vocab_size / 2};
                float *pooled = malloc(sizeof(float) * cfg->hidden_size);
                if (pooled && et_bert_forward(&m, &a, NULL, ids, NULL, NULL, 1, T, pooled, 0, 0, &err) && !err.msg[0]) abort();
                free(pooled);
                et_bert_acts_free(&a);
            }
        }
        et_bert_free(&m);
    } else if (!err.msg[0]) {
        abort();
    }
out:
    for (int i = 0; i < 7; i++) free(c[i]);
    return 0;
}
