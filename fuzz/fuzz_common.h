/* fuzz_common.h - helpers shared by the libFuzzer harnesses fuzz/fuzz_*.c.
 *
 * Each harness defines LLVMFuzzerTestOneInput. tests/test_fuzz_regress.c includes every harness
 * source (renaming that symbol) and replays the files in fuzz/regress/<harness>/ and fuzz/corpus/<harness>/
 * without libFuzzer, so crash inputs stay fixed. Nothing here is part of the library.
 *
 * Multi-file inputs are split on ET_FUZZ_SEP ("\n--8<--\n"): part i is file i of the harness. */
#ifndef ET_FUZZ_COMMON_H
#define ET_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ET_FUZZ_SEP "\n--8<--\n"
#define ET_FUZZ_SEP_LEN 8

/* Split data into at most max parts on ET_FUZZ_SEP; returns the number of parts (>= 1). */
static inline int et_fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, int max) {
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; n < max - 1 && i + ET_FUZZ_SEP_LEN <= size; i++) {
        if (data[i] == '\n' && !memcmp(data + i, ET_FUZZ_SEP, ET_FUZZ_SEP_LEN)) {
            part[n] = data + start; len[n] = i - start; n++;
            start = i + ET_FUZZ_SEP_LEN;
            i = start - 1;
        }
    }
    part[n] = data + start; len[n] = size - start; n++;
    return n;
}

/* Write buf to path (truncating); aborts on an I/O error (a harness bug, not a finding). */
static inline void et_fuzz_write(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(buf, 1, n, f) != n) || fclose(f)) { perror(path); abort(); }
}

/* A per-process scratch directory (created once, never removed: libFuzzer exits via _exit). */
static inline const char *et_fuzz_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/et_fuzz.XXXXXX", t && t[0] ? t : "/tmp");
        if (!mkdtemp(dir)) { perror(dir); abort(); }
    }
    return dir;
}

/* Single-file harnesses with a flags byte: writes data[1..size) to <tmpdir>/name and returns its path (a static
 * buffer), *flags = data[0]; NULL for an empty input. */
static inline const char *et_fuzz_flagged_file(const uint8_t *data, size_t size, const char *name, int *flags) {
    static char path[320];
    if (size < 1) return NULL;
    snprintf(path, sizeof path, "%s/%s", et_fuzz_tmpdir(), name);
    et_fuzz_write(path, data + 1, size - 1);
    *flags = data[0];
    return path;
}

#endif
