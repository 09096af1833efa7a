/* adapt.c - self-supervised pairs from passages (see adapt.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "adapt.h"
#include "rng.h"

void et_adapt_cfg_default(et_adapt_cfg *c) {
    memset(c, 0, sizeof *c);
    c->ict_share = 0.5;
    c->ict_keep = 0.1;
    c->crop_min = 0.1;
    c->crop_max = 0.5;
    c->crop_min_words = 4;
    c->min_words = 8;
    c->max_pairs = 0;
    c->seed = 42;
}

static int is_ws(unsigned char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; }

/* does the '.' at text[p] end an abbreviation or an initial glued to its word? */
static int abbrev_before(const char *text, size_t p) {
    static const char *ab[] = {"e.g", "i.e", "etc", "al", "fig", "vs", "mr", "mrs", "dr", "no", "cf"};
    size_t a = p;
    while (a > 0 && !is_ws((unsigned char)text[a - 1])) a--;
    size_t w = p - a;
    if (w == 0) return 0; /* " ." : tokenised text, a real end */
    if (w == 1 && isalpha((unsigned char)text[a])) return 1; /* an initial */
    for (size_t k = 0; k < sizeof ab / sizeof *ab; k++) {
        size_t l = strlen(ab[k]);
        if (l != w) continue;
        size_t i = 0;
        while (i < l && tolower((unsigned char)text[a + i]) == ab[k][i]) i++;
        if (i == l) return 1;
    }
    return 0;
}

static int64_t push_span(const char *t, size_t b, size_t e, size_t *se, int64_t k, int64_t max) {
    while (b < e && is_ws((unsigned char)t[b])) b++;
    while (e > b && is_ws((unsigned char)t[e - 1])) e--;
    if (e <= b) return k;
    if (k < max) { se[2 * k] = b; se[2 * k + 1] = e; }
    return k + 1;
}

int64_t et_adapt_sentences(const char *text, size_t len, size_t title_len, size_t *se, int64_t max) {
    int64_t k = 0;
    size_t start = 0, i = 0;
    if (title_len > 0 && title_len <= len) {
        k = push_span(text, 0, title_len, se, k, max);
        start = i = title_len;
    }
    while (i < len) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n' || ch == '\r') {
            k = push_span(text, start, i, se, k, max);
            start = ++i;
            continue;
        }
        if (ch == '.' || ch == '!' || ch == '?') {
            size_t e = i + 1;
            while (e < len && (text[e] == '"' || text[e] == '\'' || text[e] == ')' || text[e] == ']')) e++;
            if ((e == len || is_ws((unsigned char)text[e])) && !(ch == '.' && abbrev_before(text, i))) {
                k = push_span(text, start, e, se, k, max);
                start = i = e;
                continue;
            }
        }
        i++;
    }
    return push_span(text, start, len, se, k, max);
}

int64_t et_adapt_words(const char *text, size_t len, size_t *se, int64_t max) {
    int64_t k = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_ws((unsigned char)text[i])) i++;
        if (i >= len) break;
        size_t b = i;
        while (i < len && !is_ws((unsigned char)text[i])) i++;
        if (k < max) { se[2 * k] = b; se[2 * k + 1] = i; }
        k++;
    }
    return k;
}

void et_adapt_pairs_free(et_adapt_pairs *p) {
    for (int64_t i = 0; i < p->n; i++) { free(p->query[i]); free(p->positive[i]); }
    free(p->query); free(p->positive); free(p->doc); free(p->kind);
    memset(p, 0, sizeof *p);
}

static char *span_dup(const char *t, size_t b, size_t e) {
    char *s = malloc(e - b + 1);
    if (!s) return NULL;
    memcpy(s, t + b, e - b);
    s[e - b] = 0;
    return s;
}

/* passage without sentence j (sentences joined by one space) */
static char *ict_context(const char *t, const size_t *se, int64_t ns, int64_t skip) {
    size_t n = 1;
    for (int64_t k = 0; k < ns; k++) if (k != skip) n += se[2 * k + 1] - se[2 * k] + 1;
    char *s = malloc(n), *w = s;
    if (!s) return NULL;
    for (int64_t k = 0; k < ns; k++) {
        if (k == skip) continue;
        if (w > s) *w++ = ' ';
        memcpy(w, t + se[2 * k], se[2 * k + 1] - se[2 * k]);
        w += se[2 * k + 1] - se[2 * k];
    }
    *w = 0;
    return s;
}

/* one random crop of the word spans: [b, e) byte range */
static void crop(et_rng *r, const et_adapt_cfg *c, const size_t *ws, int64_t nw, size_t *b, size_t *e) {
    double ratio = c->crop_min + (c->crop_max - c->crop_min) * et_rng_uniform(r);
    int64_t L = (int64_t)(ratio * (double)nw + 0.5);
    if (L < c->crop_min_words) L = c->crop_min_words;
    if (L > nw) L = nw;
    if (L < 1) L = 1;
    int64_t s0 = (int64_t)et_rng_below(r, (uint64_t)(nw - L + 1));
    *b = ws[2 * s0];
    *e = ws[2 * (s0 + L - 1) + 1];
}

et_status et_adapt_build(const char *const *passages, const int32_t *title_len, int32_t n, const et_adapt_cfg *cfg,
                         et_adapt_pairs *out, et_error *err) {
    memset(out, 0, sizeof *out);
    et_adapt_cfg c;
    if (cfg) c = *cfg; else et_adapt_cfg_default(&c);
    if (!(c.crop_min > 0) || c.crop_max < c.crop_min || c.crop_max > 1)
        return et_fail(err, ET_ERR_ARG, "adaptation: crop ratios must satisfy 0 < min <= max <= 1 (got %g, %g)", c.crop_min, c.crop_max);
    if (c.ict_share < 0 || c.ict_share > 1 || c.ict_keep < 0 || c.ict_keep > 1)
        return et_fail(err, ET_ERR_ARG, "adaptation: ICT probabilities must lie in [0, 1]");
    if (c.min_words < 2) c.min_words = 2;
    if (c.crop_min_words < 1) c.crop_min_words = 1;
    if (n <= 0) return ET_OK;
    int64_t cap = c.max_pairs > 0 && c.max_pairs < n ? c.max_pairs : n;
    int *perm = malloc(sizeof(int) * (size_t)n);
    out->query = calloc((size_t)cap, sizeof(char *));
    out->positive = calloc((size_t)cap, sizeof(char *));
    out->doc = malloc(sizeof(int32_t) * (size_t)cap);
    out->kind = malloc((size_t)cap);
    size_t *se = NULL, *ws = NULL;
    int64_t sc = 0, wc = 0;
    et_status st = ET_OK;
    if (!perm || !out->query || !out->positive || !out->doc || !out->kind) { st = et_fail(err, ET_ERR_NOMEM, "adaptation: out of memory"); goto done; }
    et_rng base;
    et_rng_seed(&base, c.seed ^ 0xada97ull);
    et_rng_permutation(&base, perm, (size_t)n);
    for (int32_t k = 0; k < n && out->n < cap; k++) {
        int32_t i = perm[k];
        const char *t = passages[i] ? passages[i] : "";
        size_t len = strlen(t), tl = title_len && title_len[i] > 0 ? (size_t)title_len[i] : 0;
        int64_t nw = et_adapt_words(t, len, ws, wc);
        if (nw < c.min_words) { out->n_skipped++; continue; }
        if (nw > wc) {
            free(ws);
            wc = nw;
            if (!(ws = malloc(sizeof(size_t) * 2 * (size_t)wc))) { st = et_fail(err, ET_ERR_NOMEM, "adaptation: out of memory"); goto done; }
            et_adapt_words(t, len, ws, wc);
        }
        int64_t ns = et_adapt_sentences(t, len, tl, se, sc);
        if (ns > sc) {
            free(se);
            sc = ns;
            if (!(se = malloc(sizeof(size_t) * 2 * (size_t)sc))) { st = et_fail(err, ET_ERR_NOMEM, "adaptation: out of memory"); goto done; }
            et_adapt_sentences(t, len, tl, se, sc);
        }
        et_rng r;
        et_rng_fork(&base, (uint64_t)i + 1, &r);
        double u = et_rng_uniform(&r);
        char *q = NULL, *p = NULL;
        unsigned char kind;
        if (ns >= 2 && u < c.ict_share) {
            int64_t j = (int64_t)et_rng_below(&r, (uint64_t)ns);
            int keep = et_rng_uniform(&r) < c.ict_keep;
            q = span_dup(t, se[2 * j], se[2 * j + 1]);
            p = ict_context(t, se, ns, keep ? -1 : j);
            kind = ET_ADAPT_ICT;
        } else {
            size_t b1, e1, b2, e2;
            crop(&r, &c, ws, nw, &b1, &e1);
            crop(&r, &c, ws, nw, &b2, &e2);
            q = span_dup(t, b1, e1);
            p = span_dup(t, b2, e2);
            kind = ET_ADAPT_CROP;
        }
        if (!q || !p) { free(q); free(p); st = et_fail(err, ET_ERR_NOMEM, "adaptation: out of memory"); goto done; }
        out->query[out->n] = q;
        out->positive[out->n] = p;
        out->doc[out->n] = i;
        out->kind[out->n++] = kind;
        if (kind == ET_ADAPT_ICT) out->n_ict++; else out->n_crop++;
    }
done:
    free(perm); free(se); free(ws);
    if (st) et_adapt_pairs_free(out);
    return st;
}
