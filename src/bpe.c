/* bpe.c - byte-level BPE tokenizer (tokenizer.json and vocab.json + merges.txt faces). See bpe.h. */
#include "bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "unicode_tables.h"
#include "util.h"

typedef struct {
    char *s;
    size_t len;
    int32_t id;
    int lstrip, rstrip;
} added_tok;

struct et_bpe {
    int n;              /* ids 0..n-1 */
    char **tok;         /* [n] token strings (in pool) */
    char *pool;
    int32_t *slots;     /* hash of token strings -> id */
    uint32_t cap;
    uint64_t *mkey;     /* merges: (left id << 32 | right id) -> rank, new id; open addressing */
    uint32_t *mrank;
    int32_t *mnew;
    uint32_t mcap;      /* 0: no merges */
    int32_t byte_id[256]; /* id of the byte-level character of each byte, -1 if not in the vocab */
    int32_t byte_fb[256]; /* id of "<0xXX>", -1 if none */
    int32_t munk;       /* the model's unk_token id, -1 if none (unknown characters are dropped) */
    int32_t unk, cls, sep, pad, mask;
    int fuse_unk, byte_fallback, ignore_merges, add_prefix_space, use_regex;
    added_tok *added;
    int nadded;
};

/* ------------------------------------------------------------------------------------------------
 * growable byte buffer */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;
static void sb_put(sbuf *b, const void *d, size_t k) {
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + k + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    if (k) memcpy(b->p + b->n, d, k);
    b->n += k;
    b->p[b->n] = 0;
}

static size_t utf8_len(uint8_t b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; } /* valid UTF-8 only */
static uint32_t utf8_cp(const uint8_t *s) {
    if (s[0] < 0x80) return s[0];
    if (s[0] < 0xE0) return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    if (s[0] < 0xF0) return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}
/* Rust char::is_whitespace (Unicode White_Space): what an added token's lstrip/rstrip absorbs */
static int is_ws(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
/* GPT-2 regex class of a code point: ET_GC_L / ET_GC_N / ET_GC_S, or 0 for "other" */
static int gclass(uint32_t c) {
    if (c > 0x10FFFF) return 0;
    return et_uc_gc_stage2[(size_t)et_uc_gc_stage1[c >> ET_UC_BLOCK_SHIFT] << ET_UC_BLOCK_SHIFT | (c & ((1u << ET_UC_BLOCK_SHIFT) - 1))];
}

/* ------------------------------------------------------------------------------------------------
 * token and merge hash tables */
static uint32_t hbytes(const char *p, size_t n) {
    uint32_t h = et_fnv1a32(ET_FNV1A32_INIT, p, n);
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    return h;
}
static int32_t find_tok(const et_bpe *b, const char *p, size_t n) {
    uint32_t m = b->cap - 1;
    for (uint32_t i = hbytes(p, n) & m;; i = (i + 1) & m) {
        int32_t id = b->slots[i];
        if (id < 0) return -1;
        const char *t = b->tok[id];
        if (strncmp(t, p, n) == 0 && t[n] == 0 && !memchr(p, 0, n)) return id;
    }
}
/* insert id; a string already present maps to the later id (HF's vocab map keeps the last) */
static void put_tok(et_bpe *b, int32_t id) {
    const char *t = b->tok[id];
    size_t n = strlen(t);
    uint32_t m = b->cap - 1;
    for (uint32_t i = hbytes(t, n) & m;; i = (i + 1) & m) {
        int32_t o = b->slots[i];
        if (o < 0 || !strcmp(b->tok[o], t)) {
            b->slots[i] = id;
            return;
        }
    }
}
static uint32_t hkey(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (uint32_t)k;
}
/* merge of (a, b): its slot, or -1 */
static int64_t find_merge(const et_bpe *b, int32_t l, int32_t r) {
    if (!b->mcap || l < 0 || r < 0) return -1;
    uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint32_t m = b->mcap - 1;
    for (uint32_t i = hkey(k) & m;; i = (i + 1) & m) {
        if (b->mnew[i] < 0) return -1;
        if (b->mkey[i] == k) return i;
    }
}
/* insert; a repeated pair takes the later rank (HF collects the merges into a map) */
static void put_merge(et_bpe *b, int32_t l, int32_t r, uint32_t rank, int32_t nid) {
    uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint32_t m = b->mcap - 1;
    for (uint32_t i = hkey(k) & m;; i = (i + 1) & m) {
        if (b->mnew[i] < 0 || b->mkey[i] == k) {
            b->mkey[i] = k;
            b->mrank[i] = rank;
            b->mnew[i] = nid;
            return;
        }
    }
}

void et_bpe_free(et_bpe *b) {
    if (!b) return;
    free(b->tok);
    free(b->pool);
    free(b->slots);
    free(b->mkey);
    free(b->mrank);
    free(b->mnew);
    for (int i = 0; i < b->nadded; i++) free(b->added[i].s);
    free(b->added);
    free(b);
}

int et_bpe_vocab_size(const et_bpe *b) { return b ? b->n : 0; }
int32_t et_bpe_token_id(const et_bpe *b, const char *t) { return b && t ? find_tok(b, t, strlen(t)) : -1; }
const char *et_bpe_token(const et_bpe *b, int32_t id) { return b && id >= 0 && id < b->n ? b->tok[id] : NULL; }
int32_t et_bpe_unk_id(const et_bpe *b) { return b ? b->unk : -1; }
int32_t et_bpe_cls_id(const et_bpe *b) { return b ? b->cls : -1; }
int32_t et_bpe_sep_id(const et_bpe *b) { return b ? b->sep : -1; }
int32_t et_bpe_pad_id(const et_bpe *b) { return b ? b->pad : -1; }
int32_t et_bpe_mask_id(const et_bpe *b) { return b ? b->mask : -1; }

/* GPT-2's byte -> character map (bytes_to_unicode): printable Latin-1 bytes stand for themselves, the
 * others (0-32, 127-160, 173) become U+0100 + their rank among them. Writes the UTF-8 (1-2 bytes). */
static size_t byte_char(int byte, char out[3]) {
    uint32_t cp;
    if ((byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255)) {
        cp = (uint32_t)byte;
    } else {
        int k = 0;
        for (int x = 0; x < byte; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) k++;
        cp = 256u + (uint32_t)k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    out[2] = 0;
    return 2;
}

/* ------------------------------------------------------------------------------------------------
 * encoding */

typedef struct {
    int32_t *ids;
    int max, count;
} outv;
static void emit(outv *o, int32_t id) {
    if (o->count < o->max) o->ids[o->count] = id;
    if (o->count < INT32_MAX) o->count++;
}

typedef struct {
    int32_t id;
    int prev, next; /* -1: none */
    int alive;
} sym;
typedef struct {
    uint32_t rank;
    int pos;
    int32_t nid;
} qent;
typedef struct {
    sym *s;
    qent *q;
    size_t cap_s, cap_q;
    sbuf map; /* the byte-level string of a piece (ignore_merges) */
    int oom;
} scratch;

static int q_less(const qent *a, const qent *b) { return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos; }
static void q_push(qent *q, size_t *n, qent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!q_less(&e, &q[p])) break;
        q[i] = q[p];
        i = p;
    }
    q[i] = e;
}
static qent q_pop(qent *q, size_t *n) {
    qent top = q[0], last = q[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, c = i;
        const qent *best = &last;
        if (l < m && q_less(&q[l], best)) { c = l; best = &q[l]; }
        if (r < m && q_less(&q[r], best)) c = r;
        if (c == i) break;
        q[i] = q[c];
        i = c;
    }
    if (m) q[i] = last;
    return top;
}
static void q_pair(const et_bpe *b, const sym *s, int pos, qent *q, size_t *nq) {
    int nx = s[pos].next;
    if (nx < 0) return;
    int64_t k = find_merge(b, s[pos].id, s[nx].id);
    if (k >= 0) q_push(q, nq, (qent){b->mrank[k], pos, b->mnew[k]});
}

/* BPE of one pre-tokenized piece (raw bytes), as HF's BPE::tokenize_with_cache + Word::merge_all */
static void bpe_piece(const et_bpe *b, const uint8_t *p, size_t n, outv *o, scratch *w) {
    if (!n) return;
    if (b->ignore_merges) {
        w->map.n = 0;
        for (size_t i = 0; i < n; i++) {
            char c[3];
            sb_put(&w->map, c, byte_char(p[i], c));
        }
        if (w->map.oom) {
            w->oom = 1;
            return;
        }
        int32_t id = find_tok(b, w->map.p, w->map.n);
        if (id >= 0) {
            emit(o, id);
            return;
        }
    }
    /* symbols: one per byte (a byte-level character), or its fallbacks */
    size_t need = n * 4 + 1;
    if (need > w->cap_s) {
        free(w->s);
        free(w->q);
        w->cap_s = w->cap_q = 0;
        w->s = malloc(need * sizeof *w->s);
        w->q = malloc(need * 3 * sizeof *w->q);
        if (!w->s || !w->q) {
            w->oom = 1;
            return;
        }
        w->cap_s = need;
        w->cap_q = need * 3;
    }
    sym *s = w->s;
    int ns = 0, pend = 0; /* pend: an unknown run not yet added (HF adds it at the next known character) */
#define ADD_SYM(x) do { s[ns] = (sym){(x), ns - 1, -1, 1}; ns++; } while (0)
    for (size_t i = 0; i < n; i++) {
        int32_t id = b->byte_id[p[i]];
        if (id >= 0) {
            if (pend) ADD_SYM(b->munk);
            pend = 0;
            ADD_SYM(id);
            continue;
        }
        if (b->byte_fallback) { /* the character's UTF-8 bytes as <0xXX>, if all exist (a pending unk waits, as in HF) */
            char c[3];
            size_t L = byte_char(p[i], c);
            int ok = 1;
            for (size_t k = 0; k < L; k++) ok &= b->byte_fb[(uint8_t)c[k]] >= 0;
            if (ok) {
                for (size_t k = 0; k < L; k++) ADD_SYM(b->byte_fb[(uint8_t)c[k]]);
                continue;
            }
        }
        if (b->munk >= 0) {
            if (pend && !b->fuse_unk) ADD_SYM(b->munk);
            pend = 1;
        }
    }
    if (pend) ADD_SYM(b->munk);
#undef ADD_SYM
    for (int i = 0; i + 1 < ns; i++) s[i].next = i + 1;
    size_t nq = 0;
    for (int i = 0; i + 1 < ns; i++) q_pair(b, s, i, w->q, &nq);
    while (nq) {
        qent t = q_pop(w->q, &nq);
        if (!s[t.pos].alive || s[t.pos].next < 0) continue;
        int r = s[t.pos].next;
        int64_t k = find_merge(b, s[t.pos].id, s[r].id);
        if (k < 0 || b->mnew[k] != t.nid) continue; /* an expired entry */
        s[t.pos].id = t.nid;
        s[t.pos].next = s[r].next;
        s[r].alive = 0;
        if (s[r].next >= 0) s[s[r].next].prev = t.pos;
        if (s[t.pos].prev >= 0) q_pair(b, s, s[t.pos].prev, w->q, &nq);
        q_pair(b, s, t.pos, w->q, &nq);
    }
    for (int i = ns ? 0 : -1; i >= 0; i = s[i].next) emit(o, s[i].id);
}

/* end of the GPT-2 regex match that starts at i (there always is one: every character is \p{L}, \p{N},
 * \s or other) */
static size_t gpt2_match(const uint8_t *t, size_t n, size_t i) {
    if (t[i] == '\'' && i + 1 < n) {
        uint8_t c = t[i + 1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
        if (i + 2 < n && ((c == 'r' && t[i + 2] == 'e') || (c == 'v' && t[i + 2] == 'e') || (c == 'l' && t[i + 2] == 'l'))) return i + 3;
    }
    size_t k = t[i] == ' ' && i + 1 < n ? i + 1 : i;
    int ck = gclass(utf8_cp(t + k));
    int other_k = !(ck & (ET_GC_L | ET_GC_N | ET_GC_S));
    if ((ck & ET_GC_L) || (ck & ET_GC_N) || other_k) { /*  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ */
        size_t j = k;
        while (j < n) {
            int cj = gclass(utf8_cp(t + j));
            int same = (ck & ET_GC_L) ? (cj & ET_GC_L) != 0 : (ck & ET_GC_N) ? (cj & ET_GC_N) != 0 : !(cj & (ET_GC_L | ET_GC_N | ET_GC_S));
            if (!same) break;
            j += utf8_len(t[j]);
        }
        return j;
    }
    /* t[i] is whitespace (k == i, or t[i] == ' ' followed by whitespace): \s+(?!\S) | \s+ */
    size_t j = i, last = i;
    int nch = 0;
    while (j < n && (gclass(utf8_cp(t + j)) & ET_GC_S)) {
        last = j;
        j += utf8_len(t[j]);
        nch++;
    }
    if (j == n || nch < 2) return j;
    return last; /* the last whitespace character stays for the next match (" word") */
}

/* one section of the text (no added tokens inside): ByteLevel pre-tokenizer, then the model per piece */
static void section(const et_bpe *b, const char *in, size_t n, outv *o, scratch *w, sbuf *a) {
    const uint8_t *t = (const uint8_t *)in;
    if (b->add_prefix_space && in[0] != ' ') {
        a->n = 0;
        sb_put(a, " ", 1);
        sb_put(a, in, n);
        if (a->oom) {
            w->oom = 1;
            return;
        }
        t = (const uint8_t *)a->p;
        n = a->n;
    }
    if (!b->use_regex) {
        bpe_piece(b, t, n, o, w);
        return;
    }
    for (size_t i = 0; i < n && !w->oom;) {
        size_t j = gpt2_match(t, n, i);
        bpe_piece(b, t + i, j - i, o, w);
        i = j;
    }
}

int et_bpe_encode(const et_bpe *b, const char *text, size_t len, int32_t *ids, int max) {
    if (!b || (!text && len) || max < 0 || (!ids && max > 0)) return -1;
    outv o = {ids, max, 0};
    scratch w = {0};
    sbuf dec = {0}, a = {0};
    for (size_t i = 0; i < len;) { /* invalid sequences -> U+FFFD (maximal subpart) */
        uint32_t cp;
        size_t j = et_utf8_next((const uint8_t *)text, len, i, &cp);
        if (cp == 0xFFFD) sb_put(&dec, "\xef\xbf\xbd", 3);
        else sb_put(&dec, text + i, j - i);
        i = j;
    }
    if (!dec.p) sb_put(&dec, "", 0);
    const char *t = dec.p;
    size_t n = dec.oom ? 0 : dec.n, start = 0, i = 0;
    while (i < n && !w.oom) { /* added tokens, leftmost-longest */
        int best = -1;
        size_t bl = 0;
        for (int k = 0; k < b->nadded; k++) {
            const added_tok *x = &b->added[k];
            if (x->len > bl && n - i >= x->len && !memcmp(t + i, x->s, x->len)) {
                best = k;
                bl = x->len;
            }
        }
        if (best < 0) {
            i++;
            continue;
        }
        const added_tok *x = &b->added[best];
        size_t ms = i, me = i + bl;
        if (x->lstrip) {
            while (ms > start) {
                size_t k = ms - 1;
                while (k > start && ((uint8_t)t[k] & 0xC0) == 0x80) k--;
                if (!is_ws(utf8_cp((const uint8_t *)t + k))) break;
                ms = k;
            }
        }
        if (x->rstrip)
            while (me < n && is_ws(utf8_cp((const uint8_t *)t + me))) me += utf8_len((uint8_t)t[me]);
        if (ms > start) section(b, t + start, ms - start, &o, &w, &a);
        emit(&o, x->id);
        start = i = me;
    }
    if (start < n && !w.oom) section(b, t + start, n - start, &o, &w, &a);
    int oom = w.oom || dec.oom || a.oom || w.map.oom;
    free(w.s);
    free(w.q);
    free(w.map.p);
    free(dec.p);
    free(a.p);
    return oom ? -1 : o.count;
}

/* ------------------------------------------------------------------------------------------------
 * loading */

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static int32_t jid(const cJSON *j) { /* -1 unless an integer in [0, 2^31) */
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= 0 && j->valuedouble < 2147483647.0) || j->valuedouble != (double)(int32_t)j->valuedouble)
        return -1;
    return (int32_t)j->valuedouble;
}
static int jbool(const cJSON *o, const char *k, int def) {
    const cJSON *j = jget(o, k);
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

/* the vocab object {token: id} plus added tokens beyond it; ids must be 0..n-1, each once */
static et_status load_vocab(et_bpe *b, const cJSON *vocab, const cJSON *added, const char *name, et_error *err) {
    const cJSON *e;
    if (!cJSON_IsObject(vocab) || !vocab->child) return et_fail(err, ET_ERR_FORMAT, "%s: the vocab must be a non-empty object {token: id}", name);
    int nv = cJSON_GetArraySize(vocab), na = cJSON_GetArraySize(added), n = nv;
    size_t pool = 0;
    cJSON_ArrayForEach(e, vocab) {
        if (jid(e) < 0 || jid(e) >= nv)
            return et_fail(err, ET_ERR_FORMAT, "%s: vocab token \"%.40s\" has id %s; ids must be 0..%d, each once", name, e->string,
                           cJSON_IsNumber(e) ? "out of range" : "that is not a number", nv - 1);
        pool += strlen(e->string) + 1;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *c = jget(e, "content");
        int32_t id = jid(jget(e, "id"));
        if (id < 0 || !cJSON_IsString(c))
            return et_fail(err, ET_ERR_FORMAT, "%s: added_tokens entry needs an integer \"id\" and a \"content\" string", name);
        if (id >= nv + na) return et_fail(err, ET_ERR_FORMAT, "%s: added token id %d leaves a gap after the %d vocabulary ids", name, id, nv);
        if (id >= n) n = id + 1;
        pool += strlen(c->valuestring) + 1;
    }
    b->n = n;
    b->cap = 1024;
    while (b->cap < (uint32_t)n * 2u) b->cap <<= 1;
    b->tok = et_calloc((size_t)n, sizeof *b->tok, "vocab", err);
    b->pool = et_malloc(pool + 1, "vocab strings", err);
    b->slots = et_malloc(b->cap * sizeof *b->slots, "vocab hash", err);
    if (!b->tok || !b->pool || !b->slots) return ET_ERR_NOMEM;
    memset(b->slots, 0xFF, b->cap * sizeof *b->slots);
    size_t w = 0;
    cJSON_ArrayForEach(e, vocab) {
        int32_t id = jid(e);
        if (b->tok[id]) return et_fail(err, ET_ERR_FORMAT, "%s: vocab id %d is given twice (\"%s\", \"%.40s\")", name, id, b->tok[id], e->string);
        size_t L = strlen(e->string);
        memcpy(b->pool + w, e->string, L + 1);
        b->tok[id] = b->pool + w;
        w += L + 1;
        put_tok(b, id);
    }
    cJSON_ArrayForEach(e, added) {
        int id = jid(jget(e, "id"));
        const char *c = jget(e, "content")->valuestring;
        if (b->tok[id]) {
            if (strcmp(b->tok[id], c))
                return et_fail(err, ET_ERR_MISMATCH, "%s: added token %d \"%s\" differs from the vocab's \"%s\"", name, id, c, b->tok[id]);
        } else {
            size_t L = strlen(c);
            memcpy(b->pool + w, c, L + 1);
            b->tok[id] = b->pool + w;
            w += L + 1;
            put_tok(b, id);
        }
    }
    for (int i = 0; i < n; i++)
        if (!b->tok[i]) return et_fail(err, ET_ERR_FORMAT, "%s: no token has id %d (ids must be contiguous)", name, i);
    for (int x = 0; x < 256; x++) {
        char c[3], fb[8];
        b->byte_id[x] = find_tok(b, c, byte_char(x, c));
        snprintf(fb, sizeof fb, "<0x%02X>", x);
        b->byte_fb[x] = find_tok(b, fb, 6);
    }
    return ET_OK;
}

/* the merges, given one at a time: left and right token strings */
static et_status alloc_merges(et_bpe *b, int count, et_error *err) {
    if (count <= 0) return ET_OK;
    b->mcap = 16;
    while (b->mcap < (uint32_t)count * 2u) b->mcap <<= 1;
    b->mkey = et_malloc(b->mcap * sizeof *b->mkey, "merges", err);
    b->mrank = et_malloc(b->mcap * sizeof *b->mrank, "merges", err);
    b->mnew = et_malloc(b->mcap * sizeof *b->mnew, "merges", err);
    if (!b->mkey || !b->mrank || !b->mnew) return ET_ERR_NOMEM;
    memset(b->mnew, 0xFF, b->mcap * sizeof *b->mnew);
    return ET_OK;
}
static et_status add_merge(et_bpe *b, const char *l, size_t ll, const char *r, size_t rl, uint32_t rank, const char *name, int line,
                           sbuf *tmp, et_error *err) {
    int32_t a = find_tok(b, l, ll), c = find_tok(b, r, rl);
    if (a < 0 || c < 0)
        return et_fail(err, ET_ERR_FORMAT, "%s: merge %d \"%.*s %.*s\": \"%.*s\" is not in the vocab", name, line, (int)ll, l, (int)rl, r,
                       a < 0 ? (int)ll : (int)rl, a < 0 ? l : r);
    tmp->n = 0;
    sb_put(tmp, l, ll);
    sb_put(tmp, r, rl);
    if (tmp->oom) return et_fail(err, ET_ERR_NOMEM, "%s: out of memory reading the merges", name);
    int32_t nid = find_tok(b, tmp->p, tmp->n);
    if (nid < 0) return et_fail(err, ET_ERR_FORMAT, "%s: merge %d: \"%s\" is not in the vocab", name, line, tmp->p);
    put_merge(b, a, c, rank, nid);
    return ET_OK;
}

static et_status add_special(et_bpe *b, const char *s, int32_t id, int lstrip, int rstrip, const char *name, et_error *err) {
    if (!*s) return ET_OK;
    added_tok *x = &b->added[b->nadded];
    x->s = strdup(s);
    if (!x->s) return et_fail(err, ET_ERR_NOMEM, "%s: out of memory for an added token", name);
    b->nadded++;
    x->len = strlen(s);
    x->id = id;
    x->lstrip = lstrip;
    x->rstrip = rstrip;
    return ET_OK;
}

/* [CLS]/[SEP] from the post-processor */
static et_status set_post(et_bpe *b, const cJSON *post, const char *name, et_error *err) {
    const cJSON *ty = jget(post, "type");
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence")) { /* e.g. [ByteLevel, TemplateProcessing] */
        const cJSON *e, *one = NULL;
        cJSON_ArrayForEach(e, jget(post, "processors")) {
            const cJSON *t = jget(e, "type");
            if (cJSON_IsString(t) && !strcmp(t->valuestring, "ByteLevel")) continue;
            if (one) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: a post_processor Sequence with two token-adding processors", name);
            one = e;
        }
        return set_post(b, one, name, err);
    }
    if (!cJSON_IsString(ty)) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: no post_processor: cannot tell the [CLS]/[SEP] tokens", name);
    if (!strcmp(ty->valuestring, "TemplateProcessing")) {
        const cJSON *single = jget(post, "single");
        const cJSON *a = cJSON_GetArrayItem(single, 0), *m = cJSON_GetArrayItem(single, 1), *z = cJSON_GetArrayItem(single, 2);
        const cJSON *sa = a ? jget(a, "SpecialToken") : NULL, *sz = z ? jget(z, "SpecialToken") : NULL;
        if (cJSON_GetArraySize(single) != 3 || !sa || !sz || !m || !jget(m, "Sequence") || !cJSON_IsString(jget(sa, "id")) ||
            !cJSON_IsString(jget(sz, "id")))
            return et_fail(err, ET_ERR_UNSUPPORTED, "%s: post_processor TemplateProcessing: only the form \"X $A Y\" is supported", name);
        const char *names[2] = {jget(sa, "id")->valuestring, jget(sz, "id")->valuestring};
        int32_t got[2];
        for (int k = 0; k < 2; k++) {
            const cJSON *st = jget(jget(post, "special_tokens"), names[k]), *ids = st ? jget(st, "ids") : NULL;
            got[k] = cJSON_GetArraySize(ids) == 1 ? jid(cJSON_GetArrayItem(ids, 0)) : find_tok(b, names[k], strlen(names[k]));
        }
        b->cls = got[0];
        b->sep = got[1];
    } else if (!strcmp(ty->valuestring, "RobertaProcessing") || !strcmp(ty->valuestring, "BertProcessing")) {
        const cJSON *c = jget(post, "cls"), *p = jget(post, "sep");
        if (cJSON_GetArraySize(c) != 2 || cJSON_GetArraySize(p) != 2)
            return et_fail(err, ET_ERR_FORMAT, "%s: %s needs \"cls\" and \"sep\" pairs", name, ty->valuestring);
        b->cls = jid(cJSON_GetArrayItem(c, 1));
        b->sep = jid(cJSON_GetArrayItem(p, 1));
    } else {
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: post_processor \"%s\" is not supported (it gives no [CLS]/[SEP] tokens)", name,
                       ty->valuestring);
    }
    if (b->cls < 0 || b->cls >= b->n || b->sep < 0 || b->sep >= b->n)
        return et_fail(err, ET_ERR_MISMATCH, "%s: post_processor names a token that is not in the vocabulary", name);
    return ET_OK;
}

static et_status set_bytelevel(et_bpe *b, const cJSON *pj, const char *name, et_error *err) {
    const cJSON *ty = jget(pj, "type");
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence") && cJSON_GetArraySize(jget(pj, "pretokenizers")) == 1)
        return set_bytelevel(b, cJSON_GetArrayItem(jget(pj, "pretokenizers"), 0), name, err);
    if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "ByteLevel"))
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: pre_tokenizer %s is not supported with a BPE model (only ByteLevel)", name,
                       cJSON_IsString(ty) ? ty->valuestring : "(none)");
    b->add_prefix_space = jbool(pj, "add_prefix_space", 1);
    b->use_regex = jbool(pj, "use_regex", 1);
    return ET_OK;
}

static et_bpe *new_bpe(et_error *err) {
    et_bpe *b = et_calloc(1, sizeof *b, "tokenizer", err);
    if (b) b->munk = b->unk = b->cls = b->sep = b->pad = b->mask = -1;
    return b;
}

et_bpe *et_bpe_from_tokenizer_json(const char *json, size_t len, const char *name, et_error *err) {
    if (!name) name = "tokenizer.json";
    cJSON *root = NULL;
    if (et_json_parse_doc(json, len, name, &root, err)) return NULL;
    et_bpe *b = new_bpe(err);
    sbuf tmp = {0};
    if (!b) goto fail;
    const cJSON *model = jget(root, "model"), *mt = model ? jget(model, "type") : NULL, *e;
    if (!cJSON_IsString(mt)) {
        et_fail(err, ET_ERR_FORMAT, "%s: no model.type", name);
        goto fail;
    }
    if (strcmp(mt->valuestring, "BPE")) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: model type \"%s\" is not BPE", name, mt->valuestring);
        goto fail;
    }
    const cJSON *dr = jget(model, "dropout"), *csp = jget(model, "continuing_subword_prefix"), *ews = jget(model, "end_of_word_suffix");
    if ((dr && !cJSON_IsNull(dr)) || (cJSON_IsString(csp) && csp->valuestring[0]) || (cJSON_IsString(ews) && ews->valuestring[0])) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: BPE with dropout, continuing_subword_prefix or end_of_word_suffix is not supported", name);
        goto fail;
    }
    const cJSON *nz = jget(root, "normalizer");
    if (nz && !cJSON_IsNull(nz)) {
        const cJSON *t = jget(nz, "type");
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported with a BPE model", name, cJSON_IsString(t) ? t->valuestring : "?");
        goto fail;
    }
    const cJSON *added = jget(root, "added_tokens");
    if (load_vocab(b, jget(model, "vocab"), added, name, err)) goto fail;
    const cJSON *merges = jget(model, "merges");
    if (merges && !cJSON_IsArray(merges)) {
        et_fail(err, ET_ERR_FORMAT, "%s: model.merges must be an array", name);
        goto fail;
    }
    if (alloc_merges(b, cJSON_GetArraySize(merges), err)) goto fail;
    uint32_t rank = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *l, *r;
        size_t ll, rl;
        if (cJSON_IsString(e)) { /* "a b" */
            const char *sp = strchr(e->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                et_fail(err, ET_ERR_FORMAT, "%s: model.merges[%u] \"%.40s\" is not two tokens separated by one space", name, rank, e->valuestring);
                goto fail;
            }
            l = e->valuestring;
            ll = (size_t)(sp - l);
            r = sp + 1;
            rl = strlen(r);
        } else if (cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) && cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            l = cJSON_GetArrayItem(e, 0)->valuestring;
            r = cJSON_GetArrayItem(e, 1)->valuestring;
            ll = strlen(l);
            rl = strlen(r);
        } else {
            et_fail(err, ET_ERR_FORMAT, "%s: model.merges[%u] must be \"a b\" or [\"a\", \"b\"]", name, rank);
            goto fail;
        }
        if (add_merge(b, l, ll, r, rl, rank, name, (int)rank, &tmp, err)) goto fail;
        rank++;
    }
    const cJSON *unk = jget(model, "unk_token");
    if (cJSON_IsString(unk)) {
        b->unk = b->munk = find_tok(b, unk->valuestring, strlen(unk->valuestring));
        if (b->munk < 0) {
            et_fail(err, ET_ERR_MISMATCH, "%s: model.unk_token \"%s\" is not in the vocab", name, unk->valuestring);
            goto fail;
        }
    }
    b->fuse_unk = jbool(model, "fuse_unk", 0);
    b->byte_fallback = jbool(model, "byte_fallback", 0);
    b->ignore_merges = jbool(model, "ignore_merges", 0);
    int na = cJSON_GetArraySize(added);
    b->added = na ? et_calloc((size_t)na, sizeof *b->added, "added tokens", err) : NULL;
    if (na && !b->added) goto fail;
    cJSON_ArrayForEach(e, added) {
        const char *c = jget(e, "content")->valuestring;
        if (jbool(e, "single_word", 0)) {
            et_fail(err, ET_ERR_UNSUPPORTED, "%s: added token \"%s\": single_word is not supported", name, c);
            goto fail;
        }
        /* without a normalizer, normalized and raw added tokens match the same text */
        if (add_special(b, c, jid(jget(e, "id")), jbool(e, "lstrip", 0), jbool(e, "rstrip", 0), name, err)) goto fail;
    }
    if (set_bytelevel(b, jget(root, "pre_tokenizer"), name, err)) goto fail;
    if (set_post(b, jget(root, "post_processor"), name, err)) goto fail;
    const cJSON *pad = jget(root, "padding");
    b->pad = cJSON_IsObject(pad) && cJSON_IsNumber(jget(pad, "pad_id")) ? jid(jget(pad, "pad_id")) : find_tok(b, "<pad>", 5);
    if (b->pad < 0 || b->pad >= b->n) {
        et_fail(err, ET_ERR_MISMATCH, "%s: no padding token (\"padding.pad_id\" or \"<pad>\")", name);
        goto fail;
    }
    b->mask = find_tok(b, "<mask>", 6);
    if (b->unk < 0) b->unk = find_tok(b, "<unk>", 5);
    free(tmp.p);
    cJSON_Delete(root);
    return b;
fail:
    free(tmp.p);
    cJSON_Delete(root);
    et_bpe_free(b);
    return NULL;
}

et_bpe *et_bpe_from_files(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len, int add_prefix_space,
                          const char *vocab_name, const char *merges_name, et_error *err) {
    if (!vocab_name) vocab_name = "vocab.json";
    if (!merges_name) merges_name = "merges.txt";
    if (!merges && merges_len) {
        et_fail(err, ET_ERR_ARG, "%s: NULL data", merges_name);
        return NULL;
    }
    cJSON *root = NULL;
    if (et_json_parse_doc(vocab_json, vocab_len, vocab_name, &root, err)) return NULL;
    et_bpe *b = new_bpe(err);
    sbuf tmp = {0};
    if (!b) goto fail;
    if (load_vocab(b, root, NULL, vocab_name, err)) goto fail;
    /* count the merge lines, then read them */
    int lines = 0;
    for (size_t i = 0; i < merges_len; i++) lines += merges[i] == '\n';
    if (alloc_merges(b, lines + 1, err)) goto fail;
    uint32_t rank = 0;
    int line = 0;
    for (size_t i = 0; i < merges_len;) {
        const char *ls = merges + i, *nl = memchr(ls, '\n', merges_len - i);
        size_t L = nl ? (size_t)(nl - ls) : merges_len - i;
        i += L + (nl ? 1 : 0);
        line++;
        if (L && ls[L - 1] == '\r') L--;
        if (line == 1 && L >= 8 && !memcmp(ls, "#version", 8)) continue;
        const char *sp = memchr(ls, ' ', L);
        if (!sp || memchr(sp + 1, ' ', L - (size_t)(sp + 1 - ls)) || sp == ls || sp + 1 == ls + L) {
            et_fail(err, ET_ERR_FORMAT, "%s:%d: a merge is two tokens separated by one space", merges_name, line);
            goto fail;
        }
        if (add_merge(b, ls, (size_t)(sp - ls), sp + 1, L - (size_t)(sp + 1 - ls), rank, merges_name, line, &tmp, err)) goto fail;
        rank++;
    }
    static const char *const sp_names[5] = {"<s>", "</s>", "<unk>", "<pad>", "<mask>"};
    b->added = et_calloc(5, sizeof *b->added, "added tokens", err);
    if (!b->added) goto fail;
    int32_t sid[5];
    for (int k = 0; k < 5; k++) {
        sid[k] = find_tok(b, sp_names[k], strlen(sp_names[k]));
        if (sid[k] >= 0 && add_special(b, sp_names[k], sid[k], k == 4, 0, vocab_name, err)) goto fail;
    }
    if (sid[0] < 0 || sid[1] < 0 || sid[3] < 0) {
        et_fail(err, ET_ERR_MISMATCH, "%s: no \"%s\" token (RoBERTa's <s>, </s> and <pad> are needed)", vocab_name,
                sid[0] < 0 ? "<s>" : sid[1] < 0 ? "</s>" : "<pad>");
        goto fail;
    }
    b->cls = sid[0];
    b->sep = sid[1];
    b->unk = sid[2];
    b->pad = sid[3];
    b->mask = sid[4];
    b->add_prefix_space = add_prefix_space != 0;
    b->use_regex = 1;
    free(tmp.p);
    cJSON_Delete(root);
    return b;
fail:
    free(tmp.p);
    cJSON_Delete(root);
    et_bpe_free(b);
    return NULL;
}
