/* cli_merge.c - `embedtune merge`: a LoRA adapter merged into its base, written as a plain model folder. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lora.h"
#include "safetensors.h"

static et_opt merge_opts[] = {
    {"--adapter", NULL, "DIR", "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)", NULL},
    {"--model", NULL, "DIR", "the base model folder (default: adapter_config.json's base_model_name_or_path, as a folder "
                             "absolute or relative to the adapter folder, else to the working directory)", NULL},
    {"--out", NULL, "DIR", "output model folder (config.json, model.safetensors, tokenizer and pooling files)", NULL},
    {"--dtype", NULL, "T", "f32 (default) | f16 | bf16: the stored weights", NULL},
    {"--threads", NULL, "T", "worker threads (default: all cores)", NULL},
};

static int run_merge(et_opt *o, int n) {
    if (!et_cli_need(o, n, "merge", "--adapter") || !et_cli_need(o, n, "merge", "--out")) return 2;
    int ok = 1;
    int threads = (int)et_cli_int(o, n, "--threads", 0, 0, 256, &ok);
    if (!ok) return 2;
    const char *adapter = et_cli_get(o, n, "--adapter"), *model = et_cli_get(o, n, "--model"), *out = et_cli_get(o, n, "--out");
    const char *dt = et_cli_get(o, n, "--dtype");
    int dtype = dt ? et_st_dtype_parse(dt) : ET_ST_F32;
    if (dtype < 0) { fprintf(stderr, "embedtune merge: --dtype must be f32, f16 or bf16 (got '%s')\n", dt); return 2; }
    et_error err = {0};
    char base[ET_PATH_MAX];
    if (!model) { /* the adapter's own base */
        et_lora_adapter a;
        et_status s = et_lora_read(adapter, &a, &err);
        if (!s) s = et_lora_base_dir(adapter, &a, base, sizeof base, &err);
        et_lora_free(&a);
        if (s) return et_cli_fail("merge", &err);
        model = base;
    }
    if (et_cli_merge_adapter(model, adapter, out, dtype, threads, &err)) return et_cli_fail("merge", &err);
    fprintf(stderr, "merged %s into %s -> %s\n", adapter, model, out);
    return 0;
}

et_status et_cli_merge_adapter(const char *model, const char *adapter, const char *out, int dtype, int threads, et_error *err) {
    et_hf_model L;
    et_status s = et_cli_load_adapted(model, adapter, threads, &L, err);
    if (!s) {
        et_hf_save_opts so;
        memset(&so, 0, sizeof so);
        so.dtype = dtype;
        so.vocab_path = L.tok_path;
        so.max_seq_length = L.info.max_seq_length;
        so.do_lower_case = L.info.do_lower_case;
        so.strip_accents = L.info.strip_accents;
        s = et_hf_save(out, &L.model, &so, err);
    }
    et_hf_model_free(&L);
    return s;
}

et_command et_cmd_merge = {"merge", "Merge a LoRA adapter (PEFT format) into its base model and write a plain model folder.",
     "merge --adapter DIR [--model BASE] --out DIR [--dtype f32|f16|bf16]", run_merge, merge_opts, ET_NOPTS(merge_opts)};
