/* cli_quantize.c - `embedtune quantize`: the int8 export for edge use (docs/int8.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "kernels_int8.h"
#include "safetensors.h"

static et_opt quantize_opts[] = {
    {"--model", NULL, "DIR", "model folder to quantize (config.json, vocab, model.safetensors)", NULL},
    {"--out", NULL, "DIR", "output folder (created; its files are replaced atomically)", NULL},
    {"--dtype", NULL, "T", "dtype of the tensors that stay float (embeddings, LayerNorms, biases): F32, F16 or BF16 (default: the "
                           "source file's, F32 if it is another)", NULL},
};

/* copy dir/name to out/name when it exists (retrieval.json) */
static et_status copy_optional(const char *dir, const char *out, const char *name, et_error *err) {
    char src[ET_PATH_MAX], dst[ET_PATH_MAX];
    et_status s = et_path_join(src, sizeof src, dir, name, err);
    if (s || !et_file_exists(src)) return s;
    char *buf = NULL;
    size_t len = 0;
    if ((s = et_read_file(src, 64u << 20, &buf, &len, err))) return s;
    if (!(s = et_path_join(dst, sizeof dst, out, name, err))) s = et_write_file_atomic(dst, buf, len, err);
    free(buf);
    return s;
}

static int quantize_run(et_opt *o, int n) {
    if (!et_cli_need(o, n, "quantize", "--model") || !et_cli_need(o, n, "quantize", "--out")) return 2;
    const char *dir = et_cli_get(o, n, "--model"), *out = et_cli_get(o, n, "--out"), *dt = et_cli_get(o, n, "--dtype");
    et_error err = {0};
    int dtype = -1;
    if (dt && ((dtype = et_st_dtype_parse(dt)) < 0 || (dtype != ET_ST_F32 && dtype != ET_ST_F16 && dtype != ET_ST_BF16))) {
        fprintf(stderr, "embedtune quantize: error: --dtype '%s' is not F32, F16 or BF16\n", dt);
        return 2;
    }
    et_hf_model L;
    memset(&L, 0, sizeof L);
    if (et_cli_load(dir, 1, &L, &err)) { et_hf_model_free(&L); return et_cli_fail("quantize", &err); }
    if (dtype < 0) dtype = L.info.src_dtype == ET_ST_F16 || L.info.src_dtype == ET_ST_BF16 ? L.info.src_dtype : ET_ST_F32;
    et_hf_save_opts so = {0};
    so.dtype = dtype;
    so.vocab_path = L.tok_path;
    so.max_seq_length = L.info.max_seq_length;
    so.do_lower_case = L.info.do_lower_case;
    so.strip_accents = L.info.strip_accents;
    so.int8 = 1;
    et_status s = et_hf_save(out, &L.model, &so, &err);
    if (!s) s = copy_optional(dir, out, "retrieval.json", &err);
    int layers = L.model.cfg.num_layers, moe = 0;
    for (int l = 0; l < layers; l++) moe += et_bert_layer_is_moe(&L.model.cfg, l);
    et_hf_model_free(&L);
    if (s) return et_cli_fail("quantize", &err);
    fprintf(stderr, "quantize: wrote %s: %d layers' Linear weights as int8 per output channel (%s stays %s%s); "
                    "embedtune encode/search/eval run it in int8\n",
            out, layers, "embeddings, LayerNorms, biases", et_st_dtype_name((et_st_dtype)dtype),
            moe ? ", as do the mixture-of-experts layers' expert weights" : "");
    return 0;
}

et_command et_cmd_quantize = {"quantize", "Write an int8 copy of a model (per-channel int8 Linear weights + scales; docs/int8.md).",
                              "quantize --model DIR --out DIR [--dtype F32|F16|BF16]", quantize_run, quantize_opts,
                              ET_NOPTS(quantize_opts)};
