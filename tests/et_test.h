/* et_test.h - what every tests/test_*.c shares (tests/README.md says how to write one):
 *
 *   CHECK(cond, fmt, ...)       counts a check; when cond is false, counts a failure and prints
 *                               "FAIL file:line: <message>" (the first ET_TEST_MAX_REPORT failures only;
 *                               the rest are counted). The test goes on: one run shows every failure.
 *   CHECK_NEAR(a, b, tol)       |a - b| <= tol (absolute; NaN fails), printing both expressions and values.
 *   CHECK_STREQ(a, b)           a (may be NULL: fails) equals the string b.
 *   return et_test_report("test_x");   at the end of main: prints "ok test_x (N checks)" and returns 0, or
 *                               "test_x: F of N checks failed" and returns 1 (CTest's verdict).
 *
 *   Random inputs: et_test_frand(&state) is the 64-bit LCG every kernel test uses (uniform [-1, 1),
 *   deterministic per seed), so a failing case reproduces.
 *
 *   Fixtures (tests/fixtures/..., committed with the script that made them; CTest runs from the repo root):
 *   - binary ones (tools/gen_bert_fixture.py and friends: int32 header then float32/int32 arrays):
 *     et_test_read(f, p, n) reads n bytes exactly; et_test_read_f32 / et_test_read_i32 read and allocate an
 *     array, clearing *ok on a short read (call them in a row, test ok once);
 *   - text ones (tools/gen_loss_fixture.py): blocks "<name> <count>\n<count numbers>" ('#' starts a comment
 *     line) read by fx_load, looked up by fx_get / fx_floats (a missing or mis-sized block exits 1).
 *
 * Everything here is static (one copy per test executable); the counters are per executable. */
#ifndef ET_TESTS_ET_TEST_H
#define ET_TESTS_ET_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ET_TEST_MAX_REPORT
#define ET_TEST_MAX_REPORT 30 /* failures printed in full; later ones are only counted */
#endif

static int et_test_fails = 0, et_test_checks = 0;

#define CHECK(cond, ...)                                                                                   \
    do {                                                                                                   \
        et_test_checks++;                                                                                  \
        if (!(cond)) {                                                                                     \
            if (et_test_fails < ET_TEST_MAX_REPORT) {                                                      \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                       \
                fprintf(stderr, __VA_ARGS__);                                                              \
                fputc('\n', stderr);                                                                       \
            }                                                                                              \
            et_test_fails++;                                                                               \
        }                                                                                                  \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                              \
    CHECK(fabs((double)(a) - (double)(b)) <= (double)(tol), "%s = %.12g, expected %s = %.12g (tol %g)", #a, \
          (double)(a), #b, (double)(b), (double)(tol))

static inline int et_test_streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }
static inline const char *et_test_str(const char *s) { return s ? s : "(null)"; }
#define CHECK_STREQ(a, b)                                                                                  \
    CHECK(et_test_streq((a), (b)), "%s = '%s', expected '%s'", #a, et_test_str(a), et_test_str(b))

/* the verdict: 0 when every check passed */
static inline int et_test_report(const char *name) {
    if (et_test_fails) {
        if (et_test_fails > ET_TEST_MAX_REPORT)
            fprintf(stderr, "(%d more failures not printed)\n", et_test_fails - ET_TEST_MAX_REPORT);
        fprintf(stderr, "%s: %d of %d checks failed\n", name, et_test_fails, et_test_checks);
        return 1;
    }
    printf("ok %s (%d checks)\n", name, et_test_checks);
    return 0;
}

/* uniform [-1, 1) from a 64-bit LCG (Knuth's MMIX constants) */
static inline float et_test_frand(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*state >> 40) * (1.0 / 8388608.0) - 1.0);
}

/* ---------------------------------------------------------------- binary fixtures */
static inline int et_test_read(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n; }

static inline float *et_test_read_f32(FILE *f, size_t n, int *ok) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p || !et_test_read(f, p, n * sizeof(float))) *ok = 0;
    return p;
}

static inline int32_t *et_test_read_i32(FILE *f, size_t n, int *ok) {
    int32_t *p = malloc((n ? n : 1) * sizeof(int32_t));
    if (!p || !et_test_read(f, p, n * sizeof(int32_t))) *ok = 0;
    return p;
}

/* ---------------------------------------------------------------- text fixtures */
typedef struct {
    char name[128];
    int n;
    double *v;
} fx_entry;
typedef struct {
    fx_entry e[256];
    int n;
} fx_file;

static inline void fx_free(fx_file *f) {
    for (int i = 0; i < f->n; i++) free(f->e[i].v);
    f->n = 0;
}

static inline int fx_load(fx_file *f, const char *path) {
    FILE *fp = fopen(path, "r");
    f->n = 0;
    if (!fp) {
        fprintf(stderr, "cannot open %s (run from the repo root)\n", path);
        return 0;
    }
    char tok[128];
    while (fscanf(fp, "%127s", tok) == 1) {
        if (tok[0] == '#') {
            int c;
            while ((c = fgetc(fp)) != EOF && c != '\n') {}
            continue;
        }
        if (f->n == (int)(sizeof f->e / sizeof *f->e)) {
            fprintf(stderr, "%s: more than %d blocks\n", path, f->n);
            goto bad;
        }
        fx_entry *e = &f->e[f->n];
        snprintf(e->name, sizeof e->name, "%s", tok);
        if (fscanf(fp, "%d", &e->n) != 1 || e->n < 0) {
            fprintf(stderr, "%s: block %s: bad count\n", path, tok);
            goto bad;
        }
        e->v = malloc(sizeof(double) * (size_t)(e->n > 0 ? e->n : 1));
        if (!e->v) goto bad;
        f->n++;
        for (int i = 0; i < e->n; i++)
            if (fscanf(fp, "%lf", &e->v[i]) != 1) {
                fprintf(stderr, "%s: block %s: %d numbers, %d expected\n", path, tok, i, e->n);
                goto bad;
            }
    }
    fclose(fp);
    return 1;
bad:
    fclose(fp);
    fx_free(f);
    return 0;
}

static inline const double *fx_get(const fx_file *f, const char *name, int n) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->e[i].name, name)) {
            if (n >= 0 && f->e[i].n != n) {
                fprintf(stderr, "fixture %s: %d values, expected %d\n", name, f->e[i].n, n);
                exit(1);
            }
            return f->e[i].v;
        }
    fprintf(stderr, "fixture: missing %s\n", name);
    exit(1);
}

static inline float *fx_floats(const fx_file *f, const char *name, int n) {
    const double *d = fx_get(f, name, n);
    float *o = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) o[i] = (float)d[i];
    return o;
}

#endif
