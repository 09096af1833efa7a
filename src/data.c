/* data.c - see data.h */
#include "data.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "fileio.h"
#include "util.h"

/* a score stored as float: finite and within float range (2e89 parses as a finite double but is inf as float) */
static int float_ok(double v) { return isfinite(v) && fabs(v) <= FLT_MAX; }

/* 4 GiB; on 32-bit size_t (wasm32) (size_t)4 << 30 wraps to 0, so cap at SIZE_MAX / 2 there */
#define ET_DATA_DEFAULT_MAX ((size_t)(SIZE_MAX / 2 < ((uint64_t)4 << 30) ? SIZE_MAX / 2 : ((uint64_t)4 << 30)))

/* ================================ UTF-8 ================================================== */
int et_utf8_valid(const char *s, size_t n, size_t *bad_at) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF; /* range of the 2nd byte */
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if (c >= 0xE1 && c <= 0xEC) need = 2;
        else if (c == 0xED) { need = 2; hi = 0x9F; } /* no surrogates */
        else if (c >= 0xEE && c <= 0xEF) need = 2;
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) { need = 3; hi = 0x8F; } /* <= U+10FFFF */
        else goto bad;
        if (i + need >= n) goto bad; /* truncated sequence */
        if (p[i + 1] < lo || p[i + 1] > hi) goto bad;
        for (size_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xC0) != 0x80) goto bad;
        i += need + 1;
        continue;
    bad:
        if (bad_at) *bad_at = i;
        return 0;
    }
    return 1;
}

/* ================================ SHA-1 (FIPS 180-4) ===================================== */
static uint32_t rol32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static void sha1_block(uint32_t h[5], const uint8_t *b) {
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)b[4 * t] << 24 | (uint32_t)b[4 * t + 1] << 16 | (uint32_t)b[4 * t + 2] << 8 | b[4 * t + 3];
    for (int t = 16; t < 80; t++) w[t] = rol32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20) { f = (bb & c) | (~bb & d); k = 0x5A827999u; }
        else if (t < 40) { f = bb ^ c ^ d; k = 0x6ED9EBA1u; }
        else if (t < 60) { f = (bb & c) | (bb & d) | (c & d); k = 0x8F1BBCDCu; }
        else { f = bb ^ c ^ d; k = 0xCA62C1D6u; }
        uint32_t tmp = rol32(a, 5) + f + e + k + w[t];
        e = d; d = c; c = rol32(bb, 30); bb = a; a = tmp;
    }
    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e;
}

void et_sha1(const void *data, size_t n, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    const uint8_t *p = (const uint8_t *)data;
    size_t full = n / 64;
    for (size_t i = 0; i < full; i++) sha1_block(h, p + 64 * i);
    uint8_t tail[128];
    size_t rem = n - 64 * full;
    memset(tail, 0, sizeof tail);
    if (rem) memcpy(tail, p + 64 * full, rem);
    tail[rem] = 0x80;
    size_t tl = rem + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tl == 128) sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24); out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8); out[4 * i + 3] = (uint8_t)h[i];
    }
}

void et_sha1_hex(const void *data, size_t n, char out[41]) {
    static const char hx[] = "0123456789abcdef";
    uint8_t d[20];
    et_sha1(data, n, d);
    for (int i = 0; i < 20; i++) { out[2 * i] = hx[d[i] >> 4]; out[2 * i + 1] = hx[d[i] & 15]; }
    out[40] = 0;
}

int et_split_is_test(const char *key) {
    uint8_t d[20];
    et_sha1(key, strlen(key), d);
    /* int(hex[0:8], 16) = the first 4 bytes, big-endian */
    uint32_t v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    return v % 100 >= 80;
}

const char *et_split_key(const char *id, const char *query) { return id && id[0] ? id : query; }

int et_split_row_is_test(const char *id, const char *query) { return et_split_is_test(et_split_key(id, query)); }

int et_split_keep(et_split which, const char *id, const char *query) {
    if (which == ET_SPLIT_ALL) return 1;
    return et_split_row_is_test(id, query) == (which == ET_SPLIT_TEST);
}

void et_beir_split_free(et_beir_split *s) {
    free(s->qs); free(s->orig); free(s->qrels); free(s->qoff);
    memset(s, 0, sizeof *s);
}

et_status et_beir_split_make(const et_beir *B, et_split which, et_beir_split *o, et_error *err) {
    memset(o, 0, sizeof *o);
    o->qs = malloc(sizeof(char *) * ((size_t)B->nqueries + 1));
    o->orig = malloc(sizeof(int32_t) * ((size_t)B->nqueries + 1));
    o->qoff = malloc(sizeof(int64_t) * ((size_t)B->nqueries + 1));
    o->qrels = malloc(sizeof(et_qrel) * ((size_t)B->nqrels + 1));
    if (!o->qs || !o->orig || !o->qoff || !o->qrels) {
        et_beir_split_free(o);
        return et_fail(err, ET_ERR_NOMEM, "out of memory for the %d queries' split", B->nqueries);
    }
    int64_t m = 0;
    for (int32_t q = 0; q < B->nqueries; q++) {
        if (B->qrel_off[q + 1] == B->qrel_off[q] || !et_split_keep(which, B->query_id[q], B->query_text[q])) continue;
        o->qoff[o->nq] = m;
        for (int64_t u = B->qrel_off[q]; u < B->qrel_off[q + 1]; u++) { o->qrels[m] = B->qrels[u]; o->qrels[m++].q = o->nq; }
        o->orig[o->nq] = q;
        o->qs[o->nq++] = B->query_text[q];
    }
    o->qoff[o->nq] = m;
    return ET_OK;
}

static uint32_t salted_key(const char *salt, const char *id) {
    size_t a = strlen(salt), b = strlen(id);
    char sb[256], *buf = a + b <= sizeof sb ? sb : malloc(a + b);
    uint8_t d[20];
    if (!buf) return 0; /* out of memory: a fixed key (the split stays deterministic) */
    memcpy(buf, salt, a);
    memcpy(buf + a, id, b);
    et_sha1(buf, a + b, d);
    if (buf != sb) free(buf);
    return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

int et_split_is_dev(const char *id) { return salted_key("dev:", id) % 100 < ET_DEV_PERCENT; }

uint32_t et_split_subset_key(const char *id) { return salted_key("subset:", id); }

/* ================================ bad-line reporting ===================================== */
typedef struct {
    const char *path;
    int skip_bad;
    et_read_report *rep;
    et_error *err;
} rctx;

/* A bad line: with skip_bad record it and return ET_OK (the caller skips the line), else fail. */
static et_status bad_line(rctx *c, int64_t line, et_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static et_status bad_line(rctx *c, int64_t line, et_status code, const char *fmt, ...) {
    char reason[ET_ERRMSG_MAX - 300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (c->skip_bad) {
        c->rep->nbad++;
        if (c->rep->nmsgs < ET_DATA_MAX_MSGS)
            if (snprintf(c->rep->msgs[c->rep->nmsgs++], ET_DATA_MSG_LEN, "%s:%lld: %s", c->path, (long long)line,
                         reason) < 0)
                c->rep->msgs[c->rep->nmsgs - 1][0] = 0;
        return ET_OK;
    }
    return et_fail(c->err, code, "%s:%lld: %s", c->path, (long long)line, reason);
}

static void report_init(et_read_report *r) { memset(r, 0, sizeof *r); }

/* ================================ line iteration ========================================== */
typedef struct {
    const char *buf;
    size_t len, pos;
    int64_t lineno;
} lines;

/* next line without its \n / \r\n; returns 0 at the end */
static int next_line(lines *L, const char **s, size_t *n) {
    if (L->pos >= L->len) return 0;
    const char *start = L->buf + L->pos;
    const char *nl = memchr(start, '\n', L->len - L->pos);
    size_t ln = nl ? (size_t)(nl - start) : L->len - L->pos;
    L->pos += ln + (nl ? 1 : 0);
    L->lineno++;
    if (ln && start[ln - 1] == '\r') ln--;
    *s = start;
    *n = ln;
    return 1;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

static et_status load(const char *path, const et_read_opts *opts, char **buf, size_t *len, et_error *err) {
    size_t mx = opts && opts->max_bytes ? opts->max_bytes : ET_DATA_DEFAULT_MAX;
    et_status st = et_read_file(path, mx, buf, len, err);
    if (st) return st;
    return ET_OK;
}

/* skip a UTF-8 BOM */
static size_t bom(const char *b, size_t n) {
    return n >= 3 && (unsigned char)b[0] == 0xEF && (unsigned char)b[1] == 0xBB && (unsigned char)b[2] == 0xBF ? 3 : 0;
}

/* check one raw line: no NUL, valid UTF-8. Returns a reason or NULL. */
static const char *check_raw(const char *s, size_t n, char *tmp, size_t cap) {
    if (memchr(s, 0, n)) return "NUL byte in line";
    size_t at;
    if (!et_utf8_valid(s, n, &at)) {
        snprintf(tmp, cap, "invalid UTF-8 at byte %zu of the line", at + 1);
        return tmp;
    }
    return NULL;
}

/* When cJSON rejects a line, look for bare NaN/Infinity (Python's json.dumps writes them) and name
 * the key (or "scores[i]") holding it, so the user knows which expert is broken. */
static void explain_json_error(const char *s, size_t n, char *out, size_t cap) {
    char key[128] = "";
    int in_str = 0, arr_idx = -1, depth_arr = 0;
    size_t kstart = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\') { i++; continue; }
            if (ch == '"') {
                in_str = 0;
                size_t j = i + 1;
                while (j < n && isspace((unsigned char)s[j])) j++;
                if (j < n && s[j] == ':') {
                    size_t kl = i - kstart;
                    if (kl >= sizeof key) kl = sizeof key - 1;
                    memcpy(key, s + kstart, kl);
                    key[kl] = 0;
                    arr_idx = -1;
                }
            }
            continue;
        }
        if (ch == '"') { in_str = 1; kstart = i + 1; continue; }
        if (ch == '[') { depth_arr++; arr_idx = 0; continue; }
        if (ch == ']') { depth_arr--; continue; }
        if (ch == ',' && depth_arr > 0 && arr_idx >= 0) { arr_idx++; continue; }
        if ((ch == 'N' && i + 3 <= n && !memcmp(s + i, "NaN", 3)) ||
            (ch == 'I' && i + 8 <= n && !memcmp(s + i, "Infinity", 8)) ||
            (ch == 'n' && i + 3 <= n && !memcmp(s + i, "nan", 3)) ||
            (ch == 'i' && i + 3 <= n && !memcmp(s + i, "inf", 3))) {
            if (arr_idx >= 0 && depth_arr > 0)
                snprintf(out, cap, "invalid JSON: %s[%d] is %s (NaN/Inf are not valid scores)", key, arr_idx,
                         ch == 'N' || ch == 'n' ? "NaN" : "Inf");
            else
                snprintf(out, cap, "invalid JSON: expert '%s' is %s (NaN/Inf are not valid scores)", key,
                         ch == 'N' || ch == 'n' ? "NaN" : "Inf");
            return;
        }
    }
    snprintf(out, cap, "invalid JSON");
}

/* The line loop of the JSONL readers: the next line that is not blank, raw (*s, *n) and parsed (*o: NULL when the
 * line is not JSON; the caller says why, as its format needs). A line with a NUL byte or invalid UTF-8 is a bad line
 * (bad_line: skipped under skip_bad). Returns 1 with a line, 0 at the end of the file, -1 when the read stops there
 * (*st: that bad line without skip_bad, or out of memory while parsing). */
static int next_json(lines *L, rctx *c, const char **s, size_t *n, cJSON **o, et_status *st) {
    char tmp[96];
    while (next_line(L, s, n)) {
        if (is_blank(*s, *n)) continue;
        const char *r = check_raw(*s, *n, tmp, sizeof tmp);
        if (r) {
            if ((*st = bad_line(c, L->lineno, ET_ERR_FORMAT, "%s", r))) return -1;
            continue;
        }
        *o = NULL;
        if (et_json_parse(*s, *n, o, NULL) == ET_ERR_NOMEM) {
            *st = et_fail(c->err, ET_ERR_NOMEM, "%s:%lld: out of memory parsing the JSON", c->path, (long long)L->lineno);
            return -1;
        }
        return 1;
    }
    return 0;
}

/* ================================ growable arrays ======================================== */
static int grow(void **p, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 1;
    int64_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

/* ================================ pairs ==================================================== */
void et_pairs_free(et_pairs *p) {
    if (!p) return;
    free(p->query); free(p->passage); free(p->id); free(p->label); free(p->line);
    free(p->neg_off); free(p->neg); free(p->neg_query); free(p->scores);
    if (p->expert_names) for (int k = 0; k < p->K; k++) free(p->expert_names[k]);
    free(p->expert_names);
    free(p->arena);
    memset(p, 0, sizeof *p);
}

static const char *arena_put(et_pairs *p, const char *s, size_t n) {
    if (p->arena_used + n + 1 > p->arena_cap) return NULL;
    char *d = p->arena + p->arena_used;
    memcpy(d, s, n);
    d[n] = 0;
    p->arena_used += n + 1;
    return d;
}

/* per-row staging, committed only when the whole row is good */
typedef struct {
    const char *q, *pas, *id;
    float label;
    int64_t nneg;
    float *sc; /* [K] */
} rowbuf;

static et_status pairs_alloc_rows(et_pairs *p, int64_t need, et_error *err) {
    int64_t c0 = p->cap;
    if (need <= c0) return ET_OK;
    int64_t c = c0;
    if (!grow((void **)&p->query, &c, need, sizeof(char *))) goto nomem;
    c = c0; if (!grow((void **)&p->passage, &c, need, sizeof(char *))) goto nomem;
    c = c0; if (!grow((void **)&p->id, &c, need, sizeof(char *))) goto nomem;
    c = c0; if (!grow((void **)&p->label, &c, need, sizeof(float))) goto nomem;
    c = c0; if (!grow((void **)&p->line, &c, need, sizeof(int64_t))) goto nomem;
    { /* neg_off has one more entry than rows: cap + 1, whatever cap became */
        int64_t *no = realloc(p->neg_off, (size_t)(c + 1) * sizeof(int64_t));
        if (!no) goto nomem;
        p->neg_off = no;
    }
    if (p->K > 0) {
        int64_t cs = c0 * p->K;
        if (!grow((void **)&p->scores, &cs, c * p->K, sizeof(float))) goto nomem;
    }
    p->cap = c;
    return ET_OK;
nomem:
    return et_fail(err, ET_ERR_NOMEM, "out of memory growing the pairs arrays to %lld rows", (long long)need);
}

static void pairs_init(et_pairs *p, char *arena, size_t cap) {
    memset(p, 0, sizeof *p);
    p->arena = arena;
    p->arena_cap = cap;
    p->K = -1; /* unknown until the first row */
    p->has_label = -1;
}

static et_status pairs_finish(et_pairs *p, rctx *c, int any_negq, et_error *err) {
    if (p->K < 0) p->K = 0;
    if (p->has_label < 0) p->has_label = 0;
    if (p->n == 0) {
        if (c->rep->nbad) return et_fail(err, ET_ERR_FORMAT, "%s: no good rows (%lld bad; first: %s)", c->path,
                                         (long long)c->rep->nbad, c->rep->msgs[0]);
        return et_fail(err, ET_ERR_FORMAT, "%s: no data rows", c->path);
    }
    if (!p->neg_off) {
        p->neg_off = et_calloc(1, sizeof(int64_t), "neg_off", err);
        if (!p->neg_off) return ET_ERR_NOMEM;
    }
    if (!any_negq) { free(p->neg_query); p->neg_query = NULL; }
    c->rep->nread = p->n;
    return ET_OK;
}

/* copy a decoded JSON string into the arena, validating UTF-8; NULL + reason on failure */
static const char *json_str(et_pairs *p, const cJSON *v, const char *field, char *why, size_t cap) {
    if (!cJSON_IsString(v) || !v->valuestring) {
        snprintf(why, cap, "field '%s': %s", field, v ? "expected a string" : "missing");
        return NULL;
    }
    size_t n = strlen(v->valuestring), at;
    if (!et_utf8_valid(v->valuestring, n, &at)) {
        snprintf(why, cap, "field '%s': invalid UTF-8 (escaped surrogate?) at byte %zu", field, at + 1);
        return NULL;
    }
    const char *s = arena_put(p, v->valuestring, n);
    if (!s) snprintf(why, cap, "field '%s': internal arena overflow", field);
    return s;
}

/* one JSONL pairs row. Returns ET_OK and *ok=1 if added; on a bad row fills why and *code. */
static int pairs_json_row(et_pairs *p, const cJSON *o, float *sc, int sc_cap, int *any_negq, char *why, size_t cap,
                          et_status *code, et_error *err) {
    *code = ET_ERR_FORMAT;
    if (!cJSON_IsObject(o)) { snprintf(why, cap, "expected a JSON object"); return 0; }
    size_t mark = p->arena_used;
    int64_t neg0 = p->n ? p->neg_off[p->n] : 0;
    const char *q = json_str(p, cJSON_GetObjectItemCaseSensitive(o, "query"), "query", why, cap);
    if (!q) goto fail;
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(o, "positive");
    const char *pname = "positive";
    if (!pv) { pv = cJSON_GetObjectItemCaseSensitive(o, "passage"); pname = "passage"; }
    if (!pv) { snprintf(why, cap, "missing field 'positive' (or 'passage')"); goto fail; }
    const char *pas = json_str(p, pv, pname, why, cap);
    if (!pas) goto fail;
    const char *id = NULL;
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (iv && !cJSON_IsNull(iv)) {
        if (cJSON_IsNumber(iv)) {
            char nb[64];
            snprintf(nb, sizeof nb, "%.17g", iv->valuedouble);
            id = arena_put(p, nb, strlen(nb));
            if (!id) { snprintf(why, cap, "field 'id': internal arena overflow"); goto fail; }
        } else if (!(id = json_str(p, iv, "id", why, cap))) goto fail;
    }
    /* label */
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(o, "label");
    float label = 1.0f;
    if (p->has_label < 0) p->has_label = lv != NULL;
    if (!lv != !p->has_label) {
        snprintf(why, cap, lv ? "field 'label' present but earlier rows have none"
                              : "missing field 'label' (earlier rows have one)");
        *code = ET_ERR_MISMATCH;
        goto fail;
    }
    if (lv) {
        double d;
        if (cJSON_IsBool(lv)) d = cJSON_IsTrue(lv) ? 1.0 : 0.0;
        else if (cJSON_IsNumber(lv)) d = lv->valuedouble;
        else { snprintf(why, cap, "field 'label': expected 0/1 or a number in [0,1]"); goto fail; }
        if (!isfinite(d) || d < 0 || d > 1) {
            snprintf(why, cap, "field 'label': %g is not in [0,1]", d);
            *code = ET_ERR_NUMERIC;
            goto fail;
        }
        label = (float)d;
    }
    /* experts */
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(o, "scores");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "experts");
    if (sv && ev) { snprintf(why, cap, "both 'scores' and 'experts' given; use one"); goto fail; }
    if ((sv && cJSON_IsArray(sv) && !cJSON_GetArraySize(sv)) || (ev && cJSON_IsObject(ev) && !cJSON_GetArraySize(ev))) {
        snprintf(why, cap, "field '%s' is empty (one score per expert)", sv ? "scores" : "experts");
        goto fail;
    }
    if (p->K < 0) { /* the first good row fixes the experts */
        if (sv) {
            if (!cJSON_IsArray(sv)) { snprintf(why, cap, "field 'scores': expected an array of numbers"); goto fail; }
            p->K = cJSON_GetArraySize(sv);
        } else if (ev) {
            if (!cJSON_IsObject(ev)) { snprintf(why, cap, "field 'experts': expected an object {name: score}"); goto fail; }
            int K = cJSON_GetArraySize(ev);
            p->expert_names = et_calloc(K ? (size_t)K : 1, sizeof(char *), "expert names", err);
            if (!p->expert_names) return -1;
            int k = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, ev) {
                p->expert_names[k] = strdup(it->string ? it->string : "");
                if (!p->expert_names[k]) { p->K = k + 1; et_fail(err, ET_ERR_NOMEM, "out of memory copying the expert names"); return -1; }
                for (int j = 0; j < k; j++)
                    if (!strcmp(p->expert_names[j], p->expert_names[k])) {
                        p->K = k + 1;
                        snprintf(why, cap, "field 'experts': duplicate expert '%s'", it->string);
                        /* the expert set is broken from the start: make it fatal */
                        return -2;
                    }
                k++;
            }
            p->K = K;
        } else p->K = 0;
    }
    if (p->K > sc_cap) { p->arena_used = mark; return -3; } /* caller grows sc and retries */
    if (p->K > 0 && !sv && !ev) {
        snprintf(why, cap, "missing expert scores (earlier rows have %d)", p->K);
        *code = ET_ERR_MISMATCH;
        goto fail;
    }
    if (p->K == 0 && (sv || ev)) {
        snprintf(why, cap, "expert scores given but earlier rows have none");
        *code = ET_ERR_MISMATCH;
        goto fail;
    }
    if (sv) {
        if (p->expert_names) { snprintf(why, cap, "positional 'scores' but earlier rows use named 'experts'"); *code = ET_ERR_MISMATCH; goto fail; }
        if (!cJSON_IsArray(sv)) { snprintf(why, cap, "field 'scores': expected an array of numbers"); goto fail; }
        int K = cJSON_GetArraySize(sv);
        if (K != p->K) { snprintf(why, cap, "field 'scores': %d values, earlier rows have %d", K, p->K); *code = ET_ERR_MISMATCH; goto fail; }
        int k = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, sv) {
            if (!cJSON_IsNumber(it)) { snprintf(why, cap, "scores[%d]: expected a number", k); goto fail; }
            if (!float_ok(it->valuedouble)) { snprintf(why, cap, "scores[%d]: not a finite float (%g)", k, it->valuedouble); *code = ET_ERR_NUMERIC; goto fail; }
            sc[k++] = (float)it->valuedouble;
        }
    } else if (ev) {
        if (!p->expert_names) { snprintf(why, cap, "named 'experts' but earlier rows use positional 'scores'"); *code = ET_ERR_MISMATCH; goto fail; }
        if (!cJSON_IsObject(ev)) { snprintf(why, cap, "field 'experts': expected an object {name: score}"); goto fail; }
        int K = cJSON_GetArraySize(ev);
        for (int k = 0; k < p->K; k++) {
            const cJSON *it = cJSON_GetObjectItemCaseSensitive(ev, p->expert_names[k]);
            if (!it) { snprintf(why, cap, "expert '%s' missing", p->expert_names[k]); *code = ET_ERR_MISMATCH; goto fail; }
            if (!cJSON_IsNumber(it)) { snprintf(why, cap, "expert '%s': expected a number", p->expert_names[k]); goto fail; }
            if (!float_ok(it->valuedouble)) { snprintf(why, cap, "expert '%s': not a finite float (%g)", p->expert_names[k], it->valuedouble); *code = ET_ERR_NUMERIC; goto fail; }
            sc[k] = (float)it->valuedouble;
        }
        if (K != p->K) {
            const cJSON *it;
            cJSON_ArrayForEach(it, ev) {
                int found = 0;
                for (int k = 0; k < p->K; k++) if (!strcmp(p->expert_names[k], it->string)) found = 1;
                if (!found) { snprintf(why, cap, "unknown expert '%s' (not in the first row)", it->string); break; }
            }
            *code = ET_ERR_MISMATCH;
            goto fail;
        }
    }
    /* negatives */
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(o, "negatives");
    const cJSON *nq = cJSON_GetObjectItemCaseSensitive(o, "negative_queries");
    int64_t nneg = 0;
    if (nv && !cJSON_IsNull(nv)) {
        if (!cJSON_IsArray(nv)) { snprintf(why, cap, "field 'negatives': expected an array of strings"); goto fail; }
        nneg = cJSON_GetArraySize(nv);
    }
    if (nq && !cJSON_IsNull(nq)) {
        if (!cJSON_IsArray(nq)) { snprintf(why, cap, "field 'negative_queries': expected an array"); goto fail; }
        if (cJSON_GetArraySize(nq) != nneg) {
            snprintf(why, cap, "field 'negative_queries' has %d entries, 'negatives' has %lld", cJSON_GetArraySize(nq), (long long)nneg);
            *code = ET_ERR_MISMATCH;
            goto fail;
        }
        *any_negq = 1;
    } else nq = NULL;
    if (nneg) {
        int64_t c2 = p->neg_cap;
        if (!grow((void **)&p->neg, &c2, neg0 + nneg, sizeof(char *))) { et_fail(err, ET_ERR_NOMEM, "out of memory growing the negatives to %lld", (long long)(neg0 + nneg)); return -1; }
        c2 = p->neg_cap;
        if (!grow((void **)&p->neg_query, &c2, neg0 + nneg, sizeof(char *))) { et_fail(err, ET_ERR_NOMEM, "out of memory growing the negative queries to %lld", (long long)(neg0 + nneg)); return -1; }
        p->neg_cap = c2;
        int64_t j = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, nv) {
            char fname[48];
            snprintf(fname, sizeof fname, "negatives[%lld]", (long long)j);
            const char *s = json_str(p, it, fname, why, cap);
            if (!s) goto fail;
            p->neg[neg0 + j] = s;
            p->neg_query[neg0 + j] = NULL;
            if (nq) {
                const cJSON *qq = cJSON_GetArrayItem(nq, (int)j);
                if (qq && !cJSON_IsNull(qq)) {
                    snprintf(fname, sizeof fname, "negative_queries[%lld]", (long long)j);
                    const char *t = json_str(p, qq, fname, why, cap);
                    if (!t) goto fail;
                    p->neg_query[neg0 + j] = t;
                }
            }
            j++;
        }
    }
    /* commit */
    if (pairs_alloc_rows(p, p->n + 1, err)) return -1;
    if (p->n == 0) p->neg_off[0] = 0;
    p->query[p->n] = q;
    p->passage[p->n] = pas;
    p->id[p->n] = id;
    p->label[p->n] = label;
    if (p->K > 0) memcpy(p->scores + p->n * p->K, sc, sizeof(float) * (size_t)p->K);
    p->neg_off[p->n + 1] = neg0 + nneg;
    p->n++;
    return 1;
fail:
    p->arena_used = mark;
    return 0;
}

/* The start of both pairs readers: the report reset, the file in *buf (BOM not skipped), `out` emptied with a text
 * arena as large as the file. */
static et_status pairs_open(const char *path, const et_read_opts *opts, et_pairs *out, et_read_report *report, char **buf,
                            size_t *len, et_error *err) {
    report_init(report);
    memset(out, 0, sizeof *out);
    et_status st = load(path, opts, buf, len, err);
    if (st) return st;
    char *arena = et_malloc(*len + 64, "pairs text arena", err);
    if (!arena) { free(*buf); return ET_ERR_NOMEM; }
    pairs_init(out, arena, *len + 64);
    return ET_OK;
}

et_status et_pairs_read_jsonl(const char *path, const et_read_opts *opts, et_pairs *out,
                              et_read_report *report, et_error *err) {
    et_read_report local;
    if (!report) report = &local;
    char *buf;
    size_t len;
    et_status st = pairs_open(path, opts, out, report, &buf, &len, err);
    if (st) return st;
    rctx c = {path, opts ? opts->skip_bad : 0, report, err};
    lines L = {buf, len, bom(buf, len), 0};
    const char *s;
    size_t n;
    float *sc = NULL;
    int any_negq = 0, sc_cap = 0;
    char why[ET_DATA_MSG_LEN];
    cJSON *o;
    int more;
    while ((more = next_json(&L, &c, &s, &n, &o, &st)) > 0) {
        if (!o) {
            explain_json_error(s, n, why, sizeof why);
            if ((st = bad_line(&c, L.lineno, ET_ERR_FORMAT, "%s", why))) goto done;
            continue;
        }
        et_status code;
        int rc = pairs_json_row(out, o, sc, sc_cap, &any_negq, why, sizeof why, &code, err);
        if (rc == 1) out->line[out->n - 1] = L.lineno;
        if (rc == -3) { /* the first row fixed K: grow the staging scores and redo the row */
            free(sc);
            sc = et_malloc(sizeof(float) * (size_t)out->K, "scores row", err);
            if (!sc) { cJSON_Delete(o); st = ET_ERR_NOMEM; goto done; }
            sc_cap = out->K;
            rc = pairs_json_row(out, o, sc, sc_cap, &any_negq, why, sizeof why, &code, err);
            if (rc == 1) out->line[out->n - 1] = L.lineno;
        }
        cJSON_Delete(o);
        if (rc == -1) { st = err ? err->code : ET_ERR_NOMEM; if (!st) st = ET_ERR_NOMEM; goto done; }
        if (rc == -2) { st = et_fail(err, ET_ERR_FORMAT, "%s:%lld: %s", path, (long long)L.lineno, why); goto done; }
        if (rc == 0) {
            if (out->n == 0 && !out->expert_names) { out->K = -1; out->has_label = -1; } /* let the next row decide */
            if ((st = bad_line(&c, L.lineno, code, "%s", why))) goto done;
        }
    }
    if (more < 0) goto done;
    st = pairs_finish(out, &c, any_negq, err);
done:
    free(sc);
    free(buf);
    if (st) et_pairs_free(out);
    return st;
}

/* ---- CSV / TSV ----------------------------------------------------------------------------- */
/* Parse one record starting at *pos. Fields are decoded into the arena (NUL-terminated) and their
 * pointers appended to fields (cap nf_cap). Returns the number of fields, 0 at EOF, -1 on a format
 * error, -2 out of memory (why filled). *line advances by the newlines consumed; rec_line = the record's first line. */
static int csv_record(const char *b, size_t len, size_t *pos, int64_t *line, int delim, et_pairs *p,
                      const char ***fields, int64_t *nf_cap, char *why, size_t cap) {
    size_t i = *pos;
    if (i >= len) return 0;
    int nf = 0;
    for (;;) {
        if (!grow((void **)fields, nf_cap, nf + 1, sizeof(char *))) { snprintf(why, cap, "out of memory for the list of %d fields", nf + 1); return -2; }
        char *dst = p->arena + p->arena_used;
        size_t w = 0;
        if (delim == ',' && i < len && b[i] == '"') { /* quoted field */
            i++;
            for (;;) {
                if (i >= len) { snprintf(why, cap, "unterminated quoted field"); return -1; }
                if (b[i] == '"') {
                    if (i + 1 < len && b[i + 1] == '"') { dst[w++] = '"'; i += 2; continue; }
                    i++;
                    break;
                }
                if (b[i] == '\n') (*line)++;
                dst[w++] = b[i++];
            }
            if (i < len && b[i] != delim && b[i] != '\n' && b[i] != '\r') {
                snprintf(why, cap, "unexpected character after a closing quote in field %d", nf + 1);
                return -1;
            }
        } else {
            while (i < len && b[i] != delim && b[i] != '\n') {
                if (delim == ',' && b[i] == '"') { snprintf(why, cap, "stray quote in unquoted field %d (RFC 4180: quote the whole field)", nf + 1); return -1; }
                dst[w++] = b[i++];
            }
            if (w && dst[w - 1] == '\r' && (i >= len || b[i] == '\n')) w--;
        }
        if (i < len && b[i] == '\r' && i + 1 < len && b[i + 1] == '\n') i++;
        dst[w] = 0;
        p->arena_used += w + 1;
        (*fields)[nf++] = dst;
        if (i >= len) break;
        if (b[i] == delim) { i++; continue; }
        if (b[i] == '\n') { i++; (*line)++; break; }
        if (b[i] == '\r') { i++; (*line)++; break; }
    }
    *pos = i;
    return nf;
}

static int parse_float_field(const char *s, double *v) {
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return 0;
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    while (isspace((unsigned char)*e)) e++;
    return *e == 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    if (a < b) return 0;
    for (size_t i = 0; i < b; i++)
        if (tolower((unsigned char)s[a - b + i]) != suf[i]) return 0;
    return 1;
}

et_status et_pairs_read_csv(const char *path, int delim, const et_read_opts *opts, et_pairs *out,
                            et_read_report *report, et_error *err) {
    et_read_report local;
    if (!report) report = &local;
    char *buf;
    size_t len;
    et_status st = pairs_open(path, opts, out, report, &buf, &len, err);
    if (st) return st;
    rctx c = {path, opts ? opts->skip_bad : 0, report, err};
    size_t pos = bom(buf, len);
    if (!delim) {
        if (ends_with(path, ".tsv")) delim = '\t';
        else if (ends_with(path, ".csv")) delim = ',';
        else {
            const char *nl = memchr(buf + pos, '\n', len - pos);
            size_t hl = nl ? (size_t)(nl - buf - pos) : len - pos;
            delim = memchr(buf + pos, '\t', hl) ? '\t' : ',';
        }
    }
    const char **f = NULL;
    int64_t fcap = 0, line = 1;
    char why[ET_DATA_MSG_LEN];
    int *col_exp = NULL;
    float *sc = NULL;
    /* header (skip leading blank lines) */
    int nh;
    int64_t hline;
    for (;;) {
        hline = line;
        nh = csv_record(buf, len, &pos, &line, delim, out, &f, &fcap, why, sizeof why);
        if (nh < 0) { st = et_fail(err, nh == -2 ? ET_ERR_NOMEM : ET_ERR_FORMAT, "%s:%lld: header: %s", path, (long long)hline, why); goto done; }
        if (nh == 0) { st = et_fail(err, ET_ERR_FORMAT, "%s: empty file (expected a header row)", path); goto done; }
        if (!(nh == 1 && f[0][0] == 0)) break;
    }
    int cq = -1, cp = -1, cl = -1, ci = -1;
    out->K = 0;
    col_exp = et_malloc(sizeof(int) * (size_t)nh, "csv columns", err);
    if (!col_exp) { st = ET_ERR_NOMEM; goto done; }
    for (int j = 0; j < nh; j++) {
        const char *h = f[j];
        size_t at;
        if (!et_utf8_valid(h, strlen(h), &at)) { st = et_fail(err, ET_ERR_FORMAT, "%s:%lld: header column %d: invalid UTF-8", path, (long long)hline, j + 1); goto done; }
        col_exp[j] = -1;
        int *slot = !strcmp(h, "query") ? &cq : (!strcmp(h, "passage") || !strcmp(h, "positive")) ? &cp
                  : !strcmp(h, "label") ? &cl : !strcmp(h, "id") ? &ci : NULL;
        if (slot) {
            if (*slot >= 0) { st = et_fail(err, ET_ERR_FORMAT, "%s:%lld: header: column '%s' appears twice", path, (long long)hline, h); goto done; }
            *slot = j;
        } else {
            if (!h[0]) { st = et_fail(err, ET_ERR_FORMAT, "%s:%lld: header column %d has an empty name", path, (long long)hline, j + 1); goto done; }
            for (int k = 0; k < j; k++)
                if (col_exp[k] >= 0 && !strcmp(f[k], h)) { st = et_fail(err, ET_ERR_FORMAT, "%s:%lld: header: expert column '%s' appears twice", path, (long long)hline, h); goto done; }
            col_exp[j] = out->K++;
        }
    }
    if (cq < 0 || cp < 0) {
        st = et_fail(err, ET_ERR_FORMAT, "%s:%lld: header must name 'query' and 'passage' (or 'positive') columns", path, (long long)hline);
        goto done;
    }
    out->has_label = cl >= 0;
    if (out->K) {
        out->expert_names = et_calloc((size_t)out->K, sizeof(char *), "expert names", err);
        sc = et_malloc(sizeof(float) * (size_t)out->K, "scores row", err);
        if (!out->expert_names || !sc) { st = ET_ERR_NOMEM; goto done; }
        for (int j = 0; j < nh; j++)
            if (col_exp[j] >= 0 && !(out->expert_names[col_exp[j]] = strdup(f[j]))) { st = et_fail(err, ET_ERR_NOMEM, "%s: out of memory copying the expert names", path); goto done; }
    }
    const char *hdr_names[4096];
    int nhn = nh < 4096 ? nh : 4096;
    for (int j = 0; j < nhn; j++) hdr_names[j] = f[j]; /* header strings stay in the arena */
    for (;;) {
        int64_t rl = line;
        size_t mark = out->arena_used;
        int nf = csv_record(buf, len, &pos, &line, delim, out, &f, &fcap, why, sizeof why);
        if (nf == 0) break;
        if (nf == -2) { st = et_fail(err, ET_ERR_NOMEM, "%s:%lld: %s", path, (long long)rl, why); goto done; }
        if (nf < 0) {
            /* resync: skip to the end of this physical line */
            out->arena_used = mark;
            if ((st = bad_line(&c, rl, ET_ERR_FORMAT, "%s", why))) goto done;
            const char *nl = memchr(buf + pos, '\n', len - pos);
            pos = nl ? (size_t)(nl - buf) + 1 : len;
            line = rl + 1;
            continue;
        }
        if (nf == 1 && f[0][0] == 0) { out->arena_used = mark; continue; } /* blank line */
        et_status code = ET_ERR_FORMAT;
        why[0] = 0;
        if (nf != nh) {
            snprintf(why, sizeof why, "%d columns, the header has %d", nf, nh);
        } else {
            for (int j = 0; j < nf && !why[0]; j++) {
                size_t at;
                if (!et_utf8_valid(f[j], strlen(f[j]), &at))
                    snprintf(why, sizeof why, "column '%s': invalid UTF-8 at byte %zu", j < nhn ? hdr_names[j] : "?", at + 1);
                else if (col_exp[j] >= 0) {
                    double v;
                    if (!parse_float_field(f[j], &v)) snprintf(why, sizeof why, "expert '%s': '%.40s' is not a number", hdr_names[j], f[j]);
                    else if (!float_ok(v)) { snprintf(why, sizeof why, "expert '%s': not a finite float (%.40s)", hdr_names[j], f[j]); code = ET_ERR_NUMERIC; }
                    else sc[col_exp[j]] = (float)v;
                }
            }
            double lab = 1.0;
            if (!why[0] && cl >= 0) {
                if (!parse_float_field(f[cl], &lab)) snprintf(why, sizeof why, "label '%.40s' is not a number", f[cl]);
                else if (!isfinite(lab) || lab < 0 || lab > 1) { snprintf(why, sizeof why, "label %s is not in [0,1]", f[cl]); code = ET_ERR_NUMERIC; }
            }
            if (!why[0]) {
                if ((st = pairs_alloc_rows(out, out->n + 1, err))) goto done;
                if (out->n == 0) out->neg_off[0] = 0;
                out->query[out->n] = f[cq];
                out->passage[out->n] = f[cp];
                out->id[out->n] = ci >= 0 ? f[ci] : NULL;
                out->label[out->n] = (float)lab;
                if (out->K) memcpy(out->scores + out->n * out->K, sc, sizeof(float) * (size_t)out->K);
                out->neg_off[out->n + 1] = 0;
                out->line[out->n] = rl;
                out->n++;
                continue;
            }
        }
        out->arena_used = mark;
        if ((st = bad_line(&c, rl, code, "%s", why))) goto done;
    }
    st = pairs_finish(out, &c, 0, err);
done:
    free(f);
    free(col_exp);
    free(sc);
    free(buf);
    if (st) et_pairs_free(out);
    return st;
}

et_status et_pairs_read(const char *path, const et_read_opts *opts, et_pairs *out, et_read_report *report,
                        et_error *err) {
    if (ends_with(path, ".jsonl") || ends_with(path, ".json") || ends_with(path, ".ndjson"))
        return et_pairs_read_jsonl(path, opts, out, report, err);
    if (ends_with(path, ".csv")) return et_pairs_read_csv(path, ',', opts, out, report, err);
    if (ends_with(path, ".tsv")) return et_pairs_read_csv(path, '\t', opts, out, report, err);
    FILE *fp = fopen(path, "rb");
    if (!fp) return et_fail(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int ch;
    while ((ch = fgetc(fp)) != EOF && (isspace(ch) || ch == 0xEF || ch == 0xBB || ch == 0xBF)) {}
    fclose(fp);
    if (ch == '{') return et_pairs_read_jsonl(path, opts, out, report, err);
    return et_pairs_read_csv(path, 0, opts, out, report, err);
}

/* ================================ BEIR ===================================================== */
void et_beir_free(et_beir *b) {
    if (!b) return;
    free(b->doc_id); free(b->doc_text); free(b->doc_title_len);
    free(b->query_id); free(b->query_text);
    free(b->qrels); free(b->qrel_off);
    free(b->arena_docs); free(b->arena_queries);
    et_strmap_free(&b->doc_map); et_strmap_free(&b->query_map);
    memset(b, 0, sizeof *b);
}

int32_t et_beir_doc_index(const et_beir *b, const char *id) { return et_strmap_get(&b->doc_map, id); }
int32_t et_beir_query_index(const et_beir *b, const char *id) { return et_strmap_get(&b->query_map, id); }

/* id field: a string, or an integer number (formatted as decimal) */
static int beir_id(const cJSON *v, char *nb, size_t nbcap, const char **s) {
    if (cJSON_IsString(v) && v->valuestring) { *s = v->valuestring; return 1; }
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9e15) {
        snprintf(nb, nbcap, "%.0f", v->valuedouble);
        *s = nb;
        return 1;
    }
    return 0;
}

/* Read corpus.jsonl (is_docs) or queries.jsonl into ids/texts. */
static et_status beir_jsonl(const char *path, int is_docs, const et_read_opts *opts, et_read_report *rep,
                            char **arena_out, const char ***ids_out, const char ***texts_out, int32_t **tlen_out,
                            int32_t *n_out, et_strmap *map_out, et_error *err) {
    char *buf;
    size_t len;
    et_status st = load(path, opts, &buf, &len, err);
    if (st) return st;
    rctx c = {path, opts ? opts->skip_bad : 0, rep, err};
    size_t acap = len + 64, aused = 0;
    char *arena = et_malloc(acap, "BEIR text arena", err);
    const char **ids = NULL, **texts = NULL;
    int32_t *tl = NULL;
    int64_t cap = 0, n = 0;
    int64_t *lineof = NULL;
    et_strmap map = {0};
    if (!arena) { free(buf); return ET_ERR_NOMEM; }
    lines L = {buf, len, bom(buf, len), 0};
    const char *s;
    size_t ln;
    char why[ET_DATA_MSG_LEN];
    cJSON *o;
    int more;
    while ((more = next_json(&L, &c, &s, &ln, &o, &st)) > 0) {
        why[0] = 0;
        const char *id = NULL, *title = "", *text = NULL;
        char nb[40];
        if (!o || !cJSON_IsObject(o)) snprintf(why, sizeof why, "invalid JSON (expected an object)");
        else {
            const cJSON *iv = cJSON_GetObjectItemCaseSensitive(o, "_id");
            const cJSON *tv = cJSON_GetObjectItemCaseSensitive(o, "text");
            const cJSON *hv = is_docs ? cJSON_GetObjectItemCaseSensitive(o, "title") : NULL;
            if (!iv || !beir_id(iv, nb, sizeof nb, &id)) snprintf(why, sizeof why, "field '_id': %s", iv ? "expected a string" : "missing");
            else if (!id[0]) snprintf(why, sizeof why, "field '_id' is empty");
            else if (!cJSON_IsString(tv)) snprintf(why, sizeof why, "field 'text': %s", tv ? "expected a string" : "missing");
            else if (hv && !cJSON_IsNull(hv) && !cJSON_IsString(hv)) snprintf(why, sizeof why, "field 'title': expected a string");
            else {
                text = tv->valuestring;
                if (hv && cJSON_IsString(hv)) title = hv->valuestring;
                size_t at;
                if (!et_utf8_valid(text, strlen(text), &at) || !et_utf8_valid(title, strlen(title), &at) ||
                    !et_utf8_valid(id, strlen(id), &at))
                    snprintf(why, sizeof why, "invalid UTF-8 in a decoded string (escaped surrogate?)");
            }
        }
        if (why[0]) {
            cJSON_Delete(o);
            if ((st = bad_line(&c, L.lineno, ET_ERR_FORMAT, "%s", why))) goto done;
            continue;
        }
        size_t il = strlen(id), hl = strlen(title), xl = strlen(text);
        size_t need = il + 1 + hl + 1 + xl + 1;
        if (aused + need > acap) { /* cannot happen for well-formed JSON; be safe */
            cJSON_Delete(o);
            st = et_fail(err, ET_ERR_FORMAT, "%s:%lld: internal arena overflow", path, (long long)L.lineno);
            goto done;
        }
        if (n + 1 > cap) {
            int64_t c0 = cap, c1 = cap;
            if (!grow((void **)&ids, &c1, n + 1, sizeof(char *)) || !(c1 = c0, grow((void **)&texts, &c1, n + 1, sizeof(char *))) ||
                !(c1 = c0, grow((void **)&tl, &c1, n + 1, sizeof(int32_t))) ||
                !(c1 = c0, grow((void **)&lineof, &c1, n + 1, sizeof(int64_t)))) {
                cJSON_Delete(o); /* was leaked */
                goto nomem;
            }
            cap = c1;
        }
        char *d = arena + aused;
        memcpy(d, id, il + 1);
        ids[n] = d;
        d += il + 1;
        texts[n] = d;
        memcpy(d, title, hl);
        size_t w = hl;
        if (hl && xl) d[w++] = ' ';
        memcpy(d + w, text, xl);
        w += xl;
        d[w] = 0;
        tl[n] = (int32_t)hl;
        lineof[n] = L.lineno;
        aused += il + 1 + w + 1;
        n++;
        cJSON_Delete(o);
        if (n > INT32_MAX - 1) { st = et_fail(err, ET_ERR_UNSUPPORTED, "%s: more than 2^31 rows", path); goto done; }
    }
    if (more < 0) goto done;
    if (n == 0) { st = et_fail(err, ET_ERR_FORMAT, "%s: no %s", path, is_docs ? "documents" : "queries"); goto done; }
    if ((st = et_strmap_init(&map, n, ids, "id map", err))) goto done;
    for (int64_t i = 0; i < n; i++) {
        int32_t prev = et_strmap_put(&map, (int32_t)i);
        if (prev >= 0) { /* duplicate ids are always fatal: which one is right is unknowable */
            st = et_fail(err, ET_ERR_FORMAT, "%s:%lld: duplicate _id '%s' (first at line %lld)", path,
                         (long long)lineof[i], ids[i], (long long)lineof[prev]);
            goto done;
        }
    }
    rep->nread += n;
    *arena_out = arena; *ids_out = ids; *texts_out = texts; *n_out = (int32_t)n; *map_out = map;
    if (tlen_out) *tlen_out = tl; else free(tl);
    free(lineof);
    free(buf);
    return ET_OK;
nomem:
    st = et_fail(err, ET_ERR_NOMEM, "%s:%lld: out of memory growing the lists to %lld rows", path, (long long)L.lineno, (long long)n + 1);
done:
    free(arena); free(ids); free(texts); free(tl); free(lineof); free(buf);
    et_strmap_free(&map);
    return st;
}

typedef struct { int32_t q, d, grade; int32_t pad; int64_t line; } qrel_line;

static int qrel_cmp(const void *a, const void *b) {
    const qrel_line *x = a, *y = b;
    if (x->q != y->q) return x->q < y->q ? -1 : 1;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

static et_status beir_qrels(const char *path, const et_read_opts *opts, et_read_report *rep, et_beir *b,
                            et_error *err) {
    char *buf;
    size_t len;
    et_status st = load(path, opts, &buf, &len, err);
    if (st) return st;
    rctx c = {path, opts ? opts->skip_bad : 0, rep, err};
    qrel_line *v = NULL;
    int64_t cap = 0, n = 0;
    lines L = {buf, len, bom(buf, len), 0};
    const char *s;
    size_t ln;
    char tmp[96], line[4096];
    int first = 1;
    while (next_line(&L, &s, &ln)) {
        if (is_blank(s, ln)) continue;
        const char *r = check_raw(s, ln, tmp, sizeof tmp);
        if (r) { if ((st = bad_line(&c, L.lineno, ET_ERR_FORMAT, "%s", r))) goto done; continue; }
        if (ln >= sizeof line) { if ((st = bad_line(&c, L.lineno, ET_ERR_FORMAT, "line too long"))) goto done; continue; }
        memcpy(line, s, ln);
        line[ln] = 0;
        char *tok[5];
        int nt = 0;
        /* split on spaces and tabs in place (not strtok: it keeps hidden state between calls, which two threads
         * or an interleaved caller would share) */
        for (char *p = line; *p && nt < 5;) {
            while (*p == ' ' || *p == '\t') *p++ = 0;
            if (!*p) break;
            tok[nt++] = p;
            while (*p && *p != ' ' && *p != '\t') p++;
        }
        if (first) {
            first = 0;
            if (nt >= 1 && (!strcmp(tok[0], "query-id") || !strcmp(tok[0], "query_id") || !strcmp(tok[0], "qid")))
                continue; /* header */
        }
        if (nt != 3 && nt != 4) {
            if ((st = bad_line(&c, L.lineno, ET_ERR_FORMAT, "expected 3 columns 'query-id corpus-id score' (or TREC 'qid 0 docid rel'), got %d", nt))) goto done;
            continue;
        }
        const char *qid = tok[0], *did = tok[nt == 3 ? 1 : 2], *gs = tok[nt - 1];
        char *e;
        errno = 0;
        long g = strtol(gs, &e, 10);
        if (*e || errno || g < INT32_MIN || g > INT32_MAX) {
            double dv;
            if (parse_float_field(gs, &dv) && dv == floor(dv) && fabs(dv) < 2e9) g = (long)dv;
            else { if ((st = bad_line(&c, L.lineno, ET_ERR_FORMAT, "score '%s' is not an integer grade", gs))) goto done; continue; }
        }
        int32_t qi = et_strmap_get(&b->query_map, qid), di = et_strmap_get(&b->doc_map, did);
        if (qi < 0 || di < 0) {
            if ((st = bad_line(&c, L.lineno, ET_ERR_MISMATCH, "%s '%s' is not in %s", qi < 0 ? "query-id" : "corpus-id",
                               qi < 0 ? qid : did, qi < 0 ? "queries.jsonl" : "corpus.jsonl"))) goto done;
            continue;
        }
        if (!grow((void **)&v, &cap, n + 1, sizeof *v)) { st = et_fail(err, ET_ERR_NOMEM, "%s:%lld: out of memory growing the judgments to %lld", path, (long long)L.lineno, (long long)n + 1); goto done; }
        v[n].q = qi; v[n].d = di; v[n].grade = (int32_t)g; v[n].pad = 0; v[n].line = L.lineno;
        n++;
    }
    if (n > 1) qsort(v, (size_t)n, sizeof *v, qrel_cmp); /* v is NULL when n == 0 (qsort(NULL) is UB) */
    b->qrels = et_malloc(sizeof(et_qrel) * (size_t)(n ? n : 1), "qrels", err);
    b->qrel_off = et_calloc((size_t)b->nqueries + 1, sizeof(int64_t), "qrel offsets", err);
    if (!b->qrels || !b->qrel_off) { st = ET_ERR_NOMEM; goto done; }
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (m > 0 && b->qrels[m - 1].q == v[i].q && b->qrels[m - 1].d == v[i].d) {
            if ((st = bad_line(&c, v[i].line, ET_ERR_FORMAT, "duplicate judgment for query '%s', doc '%s'",
                               b->query_id[v[i].q], b->doc_id[v[i].d]))) goto done;
            continue;
        }
        b->qrels[m].q = v[i].q; b->qrels[m].d = v[i].d; b->qrels[m].grade = v[i].grade;
        b->qrel_off[v[i].q + 1]++;
        m++;
    }
    b->nqrels = m;
    b->njudged = 0;
    for (int32_t q = 0; q < b->nqueries; q++) {
        if (b->qrel_off[q + 1]) b->njudged++;
        b->qrel_off[q + 1] += b->qrel_off[q];
    }
    if (m == 0) st = et_fail(err, ET_ERR_FORMAT, "%s: no judgments", path);
    else rep->nread += m;
done:
    free(v);
    free(buf);
    return st;
}

et_status et_beir_read(const char *dir, const et_read_opts *opts, et_beir *out, et_read_report *report,
                       et_error *err) {
    et_read_report local;
    if (!report) report = &local;
    report_init(report);
    memset(out, 0, sizeof *out);
    char p[ET_PATH_MAX];
    et_status st;
    if ((st = et_path_join(p, sizeof p, dir, "corpus.jsonl", err))) return st;
    if ((st = beir_jsonl(p, 1, opts, report, &out->arena_docs, &out->doc_id, &out->doc_text, &out->doc_title_len,
                         &out->ndocs, &out->doc_map, err))) goto fail;
    if ((st = et_path_join(p, sizeof p, dir, "queries.jsonl", err))) goto fail;
    if ((st = beir_jsonl(p, 0, opts, report, &out->arena_queries, &out->query_id, &out->query_text, NULL,
                         &out->nqueries, &out->query_map, err))) goto fail;
    if ((st = et_path_join(p, sizeof p, dir, "qrels.tsv", err))) goto fail;
    if (!et_file_exists(p)) {
        char p2[ET_PATH_MAX];
        if ((st = et_path_join(p2, sizeof p2, dir, "qrels/test.tsv", err))) goto fail;
        if (!et_file_exists(p2)) {
            st = et_fail(err, ET_ERR_IO, "%s: no qrels.tsv or qrels/test.tsv", dir);
            goto fail;
        }
        memcpy(p, p2, sizeof p);
    }
    if ((st = beir_qrels(p, opts, report, out, err))) goto fail;
    return ET_OK;
fail:
    et_beir_free(out);
    return st;
}

/* ================================ corpus.jsonl on its own ================================== */
void et_corpus_free(et_corpus *c) {
    if (!c) return;
    free(c->id); free(c->text); free(c->title_len); free(c->arena);
    et_strmap_free(&c->map);
    memset(c, 0, sizeof *c);
}

et_status et_corpus_read(const char *path, const et_read_opts *opts, et_corpus *out, et_read_report *report,
                         et_error *err) {
    et_read_report local;
    if (!report) report = &local;
    report_init(report);
    memset(out, 0, sizeof *out);
    et_status st = beir_jsonl(path, 1, opts, report, &out->arena, &out->id, &out->text, &out->title_len, &out->n, &out->map, err);
    if (st) et_corpus_free(out);
    return st;
}

/* ================================ STS ====================================================== */
void et_sts_free(et_sts *s) {
    if (!s) return;
    free(s->s1); free(s->s2); free(s->id); free(s->score); free(s->arena);
    memset(s, 0, sizeof *s);
}

static const char *sts_str(et_sts *S, const cJSON *v, const char *field, char *why, size_t cap) {
    if (!cJSON_IsString(v) || !v->valuestring) {
        snprintf(why, cap, "field '%s': %s", field, v ? "expected a string" : "missing");
        return NULL;
    }
    size_t n = strlen(v->valuestring), at;
    if (!et_utf8_valid(v->valuestring, n, &at)) {
        snprintf(why, cap, "field '%s': invalid UTF-8 (escaped surrogate?) at byte %zu", field, at + 1);
        return NULL;
    }
    if (S->arena_used + n + 1 > S->arena_cap) { snprintf(why, cap, "field '%s': internal arena overflow", field); return NULL; }
    char *d = S->arena + S->arena_used;
    memcpy(d, v->valuestring, n + 1);
    S->arena_used += n + 1;
    return d;
}

int et_sts_sniff(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int r = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (is_blank(line, (size_t)len)) continue;
        size_t b = bom(line, (size_t)len);
        cJSON *j = NULL;
        et_json_parse(line + b, (size_t)len - b, &j, NULL); /* out of memory: not sniffed as STS (the reader reports it) */
        r = cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "s1") && cJSON_GetObjectItemCaseSensitive(j, "s2");
        cJSON_Delete(j);
        break;
    }
    free(line);
    fclose(f);
    return r;
}

et_status et_sts_read(const char *path, const et_read_opts *opts, et_sts *out, et_read_report *report,
                      et_error *err) {
    et_read_report local;
    if (!report) report = &local;
    report_init(report);
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    et_status st = load(path, opts, &buf, &len, err);
    if (st) return st;
    out->arena = et_malloc(len + 64, "STS text arena", err);
    if (!out->arena) { free(buf); return ET_ERR_NOMEM; }
    out->arena_cap = len + 64;
    rctx c = {path, opts ? opts->skip_bad : 0, report, err};
    lines L = {buf, len, bom(buf, len), 0};
    const char *s;
    size_t n;
    char why[ET_DATA_MSG_LEN];
    cJSON *o;
    int more;
    while ((more = next_json(&L, &c, &s, &n, &o, &st)) > 0) {
        size_t mark = out->arena_used;
        const char *a = NULL, *b = NULL, *id = NULL;
        et_status code = ET_ERR_FORMAT;
        why[0] = 0;
        if (!cJSON_IsObject(o)) {
            if (o) snprintf(why, sizeof why, "expected a JSON object");
            else explain_json_error(s, n, why, sizeof why);
        } else {
            const cJSON *sc = cJSON_GetObjectItemCaseSensitive(o, "score"), *iv = cJSON_GetObjectItemCaseSensitive(o, "id");
            if (!(a = sts_str(out, cJSON_GetObjectItemCaseSensitive(o, "s1"), "s1", why, sizeof why)) ||
                !(b = sts_str(out, cJSON_GetObjectItemCaseSensitive(o, "s2"), "s2", why, sizeof why))) {
            } else if (!cJSON_IsNumber(sc)) {
                snprintf(why, sizeof why, "field 'score': %s", sc ? "expected a number" : "missing");
            } else if (!isfinite(sc->valuedouble)) {
                snprintf(why, sizeof why, "field 'score': not a finite number");
                code = ET_ERR_NUMERIC;
            } else if (iv && !cJSON_IsNull(iv)) {
                if (cJSON_IsNumber(iv)) {
                    char nb[64];
                    snprintf(nb, sizeof nb, "%.17g", iv->valuedouble);
                    cJSON *t = cJSON_CreateString(nb);
                    if (!t) {
                        cJSON_Delete(o);
                        st = et_fail(err, ET_ERR_NOMEM, "%s:%lld: out of memory for the id", path, (long long)L.lineno);
                        goto done;
                    }
                    id = sts_str(out, t, "id", why, sizeof why);
                    cJSON_Delete(t);
                } else id = sts_str(out, iv, "id", why, sizeof why);
            }
            if (!why[0] && (int64_t)out->n + 1 > out->cap) {
                int64_t c0 = out->cap, c1 = c0;
                if (!grow((void **)&out->s1, &c1, out->n + 1, sizeof(char *)) ||
                    !(c1 = c0, grow((void **)&out->s2, &c1, out->n + 1, sizeof(char *))) ||
                    !(c1 = c0, grow((void **)&out->id, &c1, out->n + 1, sizeof(char *))) ||
                    !(c1 = c0, grow((void **)&out->score, &c1, out->n + 1, sizeof(double)))) {
                    cJSON_Delete(o);
                    st = et_fail(err, ET_ERR_NOMEM, "%s:%lld: out of memory growing the rows to %lld", path, (long long)L.lineno, (long long)out->n + 1);
                    goto done;
                }
                out->cap = c1;
            }
            if (!why[0]) {
                out->s1[out->n] = a;
                out->s2[out->n] = b;
                out->id[out->n] = id;
                out->score[out->n++] = sc->valuedouble;
            }
        }
        cJSON_Delete(o);
        if (why[0]) {
            out->arena_used = mark;
            if ((st = bad_line(&c, L.lineno, code, "%s", why))) goto done;
        }
    }
    if (more < 0) goto done;
    report->nread = out->n;
    if (out->n < 2) {
        if (report->nbad)
            st = et_fail(err, ET_ERR_FORMAT, "%s: fewer than 2 good STS rows (%lld; %lld bad, first: %s)", path,
                         (long long)out->n, (long long)report->nbad, report->msgs[0]);
        else
            st = et_fail(err, ET_ERR_FORMAT, "%s: need at least 2 STS rows (found %lld)", path, (long long)out->n);
    }
done:
    free(buf);
    if (st) et_sts_free(out);
    return st;
}
