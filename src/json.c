/* json.c - see json.h */
#include "json.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    const unsigned char *p, *e;
} jcur;

static void skip_ws(jcur *c) {
    while (c->p < c->e && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hex4(jcur *c, unsigned *v) {
    if (c->e - c->p < 4) return 0;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char h = c->p[i];
        unsigned d = h >= '0' && h <= '9' ? h - '0' + 0u : h >= 'a' && h <= 'f' ? h - 'a' + 10u : h >= 'A' && h <= 'F' ? h - 'A' + 10u : 16u;
        if (d > 15) return 0;
        *v = *v << 4 | d;
    }
    c->p += 4;
    return 1;
}

static int string(jcur *c) { /* at the opening quote */
    c->p++;
    while (c->p < c->e) {
        unsigned char ch = *c->p++;
        if (ch == '"') return 1;
        if (ch < 0x20) return 0;
        if (ch != '\\') continue;
        if (c->p >= c->e) return 0;
        ch = *c->p++;
        if (ch == 'u') { /* cJSON refuses a lone or reversed surrogate */
            unsigned u, lo;
            if (!hex4(c, &u)) return 0;
            if (u >= 0xDC00 && u <= 0xDFFF) return 0;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (c->e - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u') return 0;
                c->p += 2;
                if (!hex4(c, &lo) || lo < 0xDC00 || lo > 0xDFFF) return 0;
            }
        } else if (!strchr("\"\\/bfnrt", ch) || !ch) {
            return 0;
        }
    }
    return 0;
}

static int digits(jcur *c) {
    const unsigned char *s = c->p;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9') c->p++;
    return c->p > s;
}

static int number(jcur *c) {
    if (*c->p == '-') c->p++;
    if (c->p < c->e && *c->p == '0') c->p++;
    else if (!digits(c)) return 0;
    if (c->p < c->e && *c->p == '.') { c->p++; if (!digits(c)) return 0; }
    if (c->p < c->e && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->e && (*c->p == '+' || *c->p == '-')) c->p++;
        if (!digits(c)) return 0;
    }
    return 1;
}

static int literal(jcur *c, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(c->e - c->p) < n || memcmp(c->p, w, n)) return 0;
    c->p += n;
    return 1;
}

int et_json_valid_prefix(const char *buf, size_t len) {
    jcur c = {(const unsigned char *)buf, (const unsigned char *)buf + len};
    if (len >= 5 && !memcmp(buf, "\xEF\xBB\xBF", 3)) c.p += 3; /* cJSON skips a BOM only with 2+ bytes after it */
    /* containers open: bit i of the stack = 1 for an object; cJSON refuses nesting deeper than the limit */
    enum { MAXD = CJSON_NESTING_LIMIT };
    uint8_t obj[(MAXD + 7) / 8];
    int depth = 0;
    skip_ws(&c);
    for (;;) {
        /* a value is expected here */
        if (c.p >= c.e) return 0;
        unsigned char ch = *c.p;
        int opened = 0;
        if (ch == '{' || ch == '[') {
            if (depth >= MAXD) return 0;
            int is_obj = ch == '{';
            if (is_obj) obj[depth / 8] |= (uint8_t)(1u << depth % 8);
            else obj[depth / 8] &= (uint8_t)~(1u << depth % 8);
            depth++;
            c.p++;
            skip_ws(&c);
            if (c.p < c.e && *c.p == (is_obj ? '}' : ']')) { c.p++; depth--; }
            else if (is_obj) {
                if (c.p >= c.e || *c.p != '"' || !string(&c)) return 0;
                skip_ws(&c);
                if (c.p >= c.e || *c.p++ != ':') return 0;
                skip_ws(&c);
                opened = 1;
            } else opened = 1;
            if (opened) continue;
        } else if (ch == '"') {
            if (!string(&c)) return 0;
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            if (!number(&c)) return 0;
        } else if (!literal(&c, "true") && !literal(&c, "false") && !literal(&c, "null")) {
            return 0;
        }
        /* a value ended: close containers or go to the next member */
        for (;;) {
            if (depth == 0) return 1;
            skip_ws(&c);
            if (c.p >= c.e) return 0;
            int is_obj = obj[(depth - 1) / 8] >> (depth - 1) % 8 & 1;
            if (*c.p == (is_obj ? '}' : ']')) { c.p++; depth--; continue; }
            if (*c.p++ != ',') return 0;
            skip_ws(&c);
            if (is_obj) {
                if (c.p >= c.e || *c.p != '"' || !string(&c)) return 0;
                skip_ws(&c);
                if (c.p >= c.e || *c.p++ != ':') return 0;
                skip_ws(&c);
            }
            break;
        }
    }
}

et_status et_json_parse(const char *buf, size_t len, cJSON **out, const char **end) {
    const char *stop = NULL;
    *out = cJSON_ParseWithLengthOpts(buf, len, &stop, 0);
    if (end) *end = stop;
    if (*out) return ET_OK;
    return et_json_valid_prefix(buf, len) ? ET_ERR_NOMEM : ET_ERR_FORMAT;
}

et_status et_json_parse_doc(const char *buf, size_t len, const char *name, cJSON **out, et_error *err) {
    *out = NULL;
    if (!buf) return et_fail(err, ET_ERR_ARG, "%s: NULL data", name);
    et_status js = et_json_parse(buf, len, out, NULL);
    if (js) return et_fail(err, js, js == ET_ERR_NOMEM ? "%s: out of memory parsing the JSON" : "%s: not valid JSON", name);
    return ET_OK;
}
