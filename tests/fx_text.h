/* fx_text.h - the text fixture reader shared by tests/test_loss.c and tests/test_optim.c: blocks of
 * "<name> <count>\n<count numbers>" ('#' starts a comment line), as tools/gen_loss_fixture.py writes them. */
#ifndef ET_TESTS_FX_TEXT_H
#define ET_TESTS_FX_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[128];
    int n;
    double *v;
} fx_entry;
typedef struct {
    fx_entry e[256];
    int n;
} fx_file;

static inline int fx_load(fx_file *f, const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "cannot open %s (run from the repo root)\n", path);
        return 0;
    }
    f->n = 0;
    char tok[128];
    while (fscanf(fp, "%127s", tok) == 1) {
        if (tok[0] == '#') {
            int c;
            while ((c = fgetc(fp)) != EOF && c != '\n') {}
            continue;
        }
        if (f->n == (int)(sizeof f->e / sizeof *f->e)) { fprintf(stderr, "%s: more than %d blocks\n", path, f->n); fclose(fp); return 0; }
        fx_entry *e = &f->e[f->n++];
        snprintf(e->name, sizeof e->name, "%s", tok);
        if (fscanf(fp, "%d", &e->n) != 1) return 0;
        e->v = malloc(sizeof(double) * (size_t)(e->n > 0 ? e->n : 1));
        for (int i = 0; i < e->n; i++)
            if (fscanf(fp, "%lf", &e->v[i]) != 1) return 0;
    }
    fclose(fp);
    return 1;
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
    float *o = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) o[i] = (float)d[i];
    return o;
}

static inline void fx_free(fx_file *f) {
    for (int i = 0; i < f->n; i++) free(f->e[i].v);
    f->n = 0;
}

#endif
