/* test_fuzz_regress.c - replay every libFuzzer harness (fuzz/fuzz_*.c) on its committed inputs
 * without libFuzzer: the files of fuzz/regress/<harness>/ (crashes found by fuzzing, fixed since) and the seed
 * corpus fuzz/corpus/<harness>/. A harness aborts (or ASan/UBSan reports, in the sanitizer
 * build) on any violated invariant, so this test passing means none of those inputs crashes.
 * Runs from the repo root (CTest's working directory). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "et_test.h"

#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_hf_one
#include "../fuzz/fuzz_hf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_vocab_one
#include "../fuzz/fuzz_vocab.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tokenize_one
#include "../fuzz/fuzz_tokenize.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_pairs_one
#include "../fuzz/fuzz_pairs.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_beir_one
#include "../fuzz/fuzz_beir.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_train_data_one
#include "../fuzz/fuzz_train_data.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_json_one
#include "../fuzz/fuzz_json.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_retrieval_one
#include "../fuzz/fuzz_retrieval.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_sts_one
#include "../fuzz/fuzz_sts.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_corpus_one
#include "../fuzz/fuzz_corpus.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_spm_one
#include "../fuzz/fuzz_spm.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_bpe_one
#include "../fuzz/fuzz_bpe.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_index_one
#include "../fuzz/fuzz_index.c"
#undef LLVMFuzzerTestOneInput

typedef struct { const char *name; int (*fn)(const uint8_t *, size_t); } harness;
static const harness H[] = {
    {"fuzz_safetensors", fuzz_safetensors_one}, {"fuzz_hf", fuzz_hf_one},
    {"fuzz_vocab", fuzz_vocab_one},             {"fuzz_tokenize", fuzz_tokenize_one},
    {"fuzz_pairs", fuzz_pairs_one},             {"fuzz_beir", fuzz_beir_one},
    {"fuzz_train_data", fuzz_train_data_one},   {"fuzz_json", fuzz_json_one},
    {"fuzz_retrieval", fuzz_retrieval_one},
    {"fuzz_sts", fuzz_sts_one},                 {"fuzz_corpus", fuzz_corpus_one},
    {"fuzz_spm", fuzz_spm_one},                 {"fuzz_index", fuzz_index_one},
    {"fuzz_bpe", fuzz_bpe_one},
};

static int replay_dir(const harness *h, const char *root) {
    char dir[512];
    snprintf(dir, sizeof dir, "fuzz/%s/%s", root, h->name);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
        int ok = buf && (len == 0 || fread(buf, 1, (size_t)len, f) == (size_t)len);
        fclose(f);
        CHECK(ok, "cannot read %s", path);
        if (!ok) { free(buf); continue; }
        h->fn(buf, (size_t)len); /* aborts on a violated invariant */
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

int main(void) {
    int total = 0;
    for (size_t i = 0; i < sizeof H / sizeof H[0]; i++) {
        int r = replay_dir(&H[i], "regress"), c = replay_dir(&H[i], "corpus");
        printf("%-18s %3d regression inputs, %4d corpus inputs: ok\n", H[i].name, r, c);
        total += r + c;
    }
    /* the harnesses' scratch folder (data readers take paths) */
    static const char *scratch[] = {"p.jsonl", "p.csv", "p.tsv", "p.txt", "corpus.jsonl", "queries.jsonl", "qrels.tsv",
                                    "qrels/test.tsv", "qrels", "train.jsonl"};
    char path[512];
    for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", et_fuzz_tmpdir(), scratch[i]);
        remove(path);
    }
    remove(et_fuzz_tmpdir());
    CHECK(total > 0, "no inputs found: run from the repo root");
    printf("test_fuzz_regress: %d inputs replayed\n", total);
    return et_test_report("test_fuzz_regress");
}
