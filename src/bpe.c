/* bpe.c - byte-level BPE tokenizer (tokenizer.json and vocab.json + merges.txt faces). See bpe.h. */
#include "bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tok_common.h"
#include "unicode_tables.h"
#include "util.h"

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
    et_tok_added *added;
    int nadded;
};

/* GPT-2 regex class of a code point: ET_GC_L / ET_GC_N / ET_GC_S, or 0 for "other" */
static int gclass(uint32_t c) {
    if (c > 0x10FFFF) return 0;
    return et_uc_gc_stage2[(size_t)et_uc_gc_stage1[c >> ET_UC_BLOCK_SHIFT] << ET_UC_BLOCK_SHIFT | (c & ((1u << ET_UC_BLOCK_SHIFT) - 1))];
}

/* ------------------------------------------------------------------------------------------------
 * token and merge hash tables */
static int32_t find_tok(const et_bpe *b, const char *p, size_t n) { return et_tok_find(b->tok, b->slots, b->cap, p, n); }
/* insert id; a string already present maps to the later id (HF's vocab map keeps the last) */
static void put_tok(et_bpe *b, int32_t id) { et_tok_enter(b->tok, b->slots, b->cap, id, 1); }
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
    et_tok_added_free(b->added, b->nadded);
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
    et_tokbuf map; /* the byte-level string of a piece (ignore_merges) */
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
static void bpe_piece(const et_bpe *b, const uint8_t *p, size_t n, et_tok_out *o, scratch *w) {
    if (!n) return;
    if (b->ignore_merges) {
        w->map.n = 0;
        for (size_t i = 0; i < n; i++) {
            char c[3];
            et_tokbuf_put(&w->map, c, byte_char(p[i], c));
        }
        if (w->map.oom) {
            w->oom = 1;
            return;
        }
        int32_t id = find_tok(b, w->map.p, w->map.n);
        if (id >= 0) {
            et_tok_emit(o, id);
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
    for (int i = ns ? 0 : -1; i >= 0; i = s[i].next) et_tok_emit(o, s[i].id);
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
    int ck = gclass(et_tok_utf8_cp(t + k));
    int other_k = !(ck & (ET_GC_L | ET_GC_N | ET_GC_S));
    if ((ck & ET_GC_L) || (ck & ET_GC_N) || other_k) { /*  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ */
        size_t j = k;
        while (j < n) {
            int cj = gclass(et_tok_utf8_cp(t + j));
            int same = (ck & ET_GC_L) ? (cj & ET_GC_L) != 0 : (ck & ET_GC_N) ? (cj & ET_GC_N) != 0 : !(cj & (ET_GC_L | ET_GC_N | ET_GC_S));
            if (!same) break;
            j += et_tok_utf8_len(t[j]);
        }
        return j;
    }
    /* t[i] is whitespace (k == i, or t[i] == ' ' followed by whitespace): \s+(?!\S) | \s+ */
    size_t j = i, last = i;
    int nch = 0;
    while (j < n && (gclass(et_tok_utf8_cp(t + j)) & ET_GC_S)) {
        last = j;
        j += et_tok_utf8_len(t[j]);
        nch++;
    }
    if (j == n || nch < 2) return j;
    return last; /* the last whitespace character stays for the next match (" word") */
}

/* one section of the text (no added tokens inside): ByteLevel pre-tokenizer, then the model per piece */
static void section(const et_bpe *b, const char *in, size_t n, et_tok_out *o, scratch *w, et_tokbuf *a) {
    const uint8_t *t = (const uint8_t *)in;
    if (b->add_prefix_space && in[0] != ' ') {
        a->n = 0;
        et_tokbuf_put(a, " ", 1);
        et_tokbuf_put(a, in, n);
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

/* et_tok_split_added's section: the state of one et_bpe_encode */
typedef struct {
    const et_bpe *b;
    et_tok_out *o;
    scratch *w;
    et_tokbuf *a;
} encode_ctx;
static int section_cb(void *ctx, const char *p, size_t n, int at_start) {
    encode_ctx *c = ctx;
    (void)at_start;
    section(c->b, p, n, c->o, c->w, c->a);
    return c->w->oom;
}

int et_bpe_encode(const et_bpe *b, const char *text, size_t len, int32_t *ids, int max) {
    if (!b || (!text && len) || max < 0 || (!ids && max > 0)) return -1;
    et_tok_out o = {ids, max, 0};
    scratch w = {0};
    et_tokbuf dec = {0}, a = {0};
    et_tok_decode_utf8(&dec, text, len); /* invalid sequences -> U+FFFD (maximal subpart) */
    encode_ctx c = {b, &o, &w, &a};
    if (!dec.oom) et_tok_split_added(b->added, b->nadded, dec.p, dec.n, &o, section_cb, &c);
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

/* the vocab object {token: id} plus added tokens beyond it; ids must be 0..n-1, each once */
static et_status load_vocab(et_bpe *b, const cJSON *vocab, const cJSON *added, const char *name, et_error *err) {
    const cJSON *e;
    if (!cJSON_IsObject(vocab) || !vocab->child) return et_fail(err, ET_ERR_FORMAT, "%s: the vocab must be a non-empty object {token: id}", name);
    int nv = cJSON_GetArraySize(vocab), na = cJSON_GetArraySize(added), n = nv;
    size_t pool = 0;
    cJSON_ArrayForEach(e, vocab) {
        if (et_tok_jid(e) < 0 || et_tok_jid(e) >= nv)
            return et_fail(err, ET_ERR_FORMAT, "%s: vocab token \"%.40s\" has id %s; ids must be 0..%d, each once", name, e->string,
                           cJSON_IsNumber(e) ? "out of range" : "that is not a number", nv - 1);
        pool += strlen(e->string) + 1;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *c = et_tok_jget(e, "content");
        int32_t id = et_tok_jid(et_tok_jget(e, "id"));
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
        int32_t id = et_tok_jid(e);
        if (b->tok[id]) return et_fail(err, ET_ERR_FORMAT, "%s: vocab id %d is given twice (\"%s\", \"%.40s\")", name, id, b->tok[id], e->string);
        size_t L = strlen(e->string);
        memcpy(b->pool + w, e->string, L + 1);
        b->tok[id] = b->pool + w;
        w += L + 1;
        put_tok(b, id);
    }
    cJSON_ArrayForEach(e, added) {
        int id = et_tok_jid(et_tok_jget(e, "id"));
        const char *c = et_tok_jget(e, "content")->valuestring;
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
                           et_tokbuf *tmp, et_error *err) {
    int32_t a = find_tok(b, l, ll), c = find_tok(b, r, rl);
    if (a < 0 || c < 0)
        return et_fail(err, ET_ERR_FORMAT, "%s: merge %d \"%.*s %.*s\": \"%.*s\" is not in the vocab", name, line, (int)ll, l, (int)rl, r,
                       a < 0 ? (int)ll : (int)rl, a < 0 ? l : r);
    tmp->n = 0;
    et_tokbuf_put(tmp, l, ll);
    et_tokbuf_put(tmp, r, rl);
    if (tmp->oom) return et_fail(err, ET_ERR_NOMEM, "%s: out of memory reading the merges", name);
    int32_t nid = find_tok(b, tmp->p, tmp->n);
    if (nid < 0) return et_fail(err, ET_ERR_FORMAT, "%s: merge %d: \"%s\" is not in the vocab", name, line, tmp->p);
    put_merge(b, a, c, rank, nid);
    return ET_OK;
}

static et_status set_bytelevel(et_bpe *b, const cJSON *pj, const char *name, et_error *err) {
    const cJSON *ty = et_tok_jget(pj, "type");
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence") && cJSON_GetArraySize(et_tok_jget(pj, "pretokenizers")) == 1)
        return set_bytelevel(b, cJSON_GetArrayItem(et_tok_jget(pj, "pretokenizers"), 0), name, err);
    if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "ByteLevel"))
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: pre_tokenizer %s is not supported with a BPE model (only ByteLevel)", name,
                       cJSON_IsString(ty) ? ty->valuestring : "(none)");
    b->add_prefix_space = et_tok_jbool(pj, "add_prefix_space", 1);
    b->use_regex = et_tok_jbool(pj, "use_regex", 1);
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
    et_tokbuf tmp = {0};
    if (!b) goto fail;
    const cJSON *model = et_tok_jget(root, "model"), *mt = model ? et_tok_jget(model, "type") : NULL, *e;
    if (!cJSON_IsString(mt)) {
        et_fail(err, ET_ERR_FORMAT, "%s: no model.type", name);
        goto fail;
    }
    if (strcmp(mt->valuestring, "BPE")) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: model type \"%s\" is not BPE", name, mt->valuestring);
        goto fail;
    }
    const cJSON *dr = et_tok_jget(model, "dropout"), *csp = et_tok_jget(model, "continuing_subword_prefix"), *ews = et_tok_jget(model, "end_of_word_suffix");
    if ((dr && !cJSON_IsNull(dr)) || (cJSON_IsString(csp) && csp->valuestring[0]) || (cJSON_IsString(ews) && ews->valuestring[0])) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: BPE with dropout, continuing_subword_prefix or end_of_word_suffix is not supported", name);
        goto fail;
    }
    const cJSON *nz = et_tok_jget(root, "normalizer");
    if (nz && !cJSON_IsNull(nz)) {
        const cJSON *t = et_tok_jget(nz, "type");
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported with a BPE model", name, cJSON_IsString(t) ? t->valuestring : "?");
        goto fail;
    }
    const cJSON *added = et_tok_jget(root, "added_tokens");
    if (load_vocab(b, et_tok_jget(model, "vocab"), added, name, err)) goto fail;
    const cJSON *merges = et_tok_jget(model, "merges");
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
    const cJSON *unk = et_tok_jget(model, "unk_token");
    if (cJSON_IsString(unk)) {
        b->unk = b->munk = find_tok(b, unk->valuestring, strlen(unk->valuestring));
        if (b->munk < 0) {
            et_fail(err, ET_ERR_MISMATCH, "%s: model.unk_token \"%s\" is not in the vocab", name, unk->valuestring);
            goto fail;
        }
    }
    b->fuse_unk = et_tok_jbool(model, "fuse_unk", 0);
    b->byte_fallback = et_tok_jbool(model, "byte_fallback", 0);
    b->ignore_merges = et_tok_jbool(model, "ignore_merges", 0);
    int na = cJSON_GetArraySize(added);
    b->added = na ? et_calloc((size_t)na, sizeof *b->added, "added tokens", err) : NULL;
    if (na && !b->added) goto fail;
    cJSON_ArrayForEach(e, added) {
        const char *c = et_tok_jget(e, "content")->valuestring;
        if (et_tok_jbool(e, "single_word", 0)) {
            et_fail(err, ET_ERR_UNSUPPORTED, "%s: added token \"%s\": single_word is not supported", name, c);
            goto fail;
        }
        /* without a normalizer, normalized and raw added tokens match the same text */
        if (et_tok_added_push(b->added, &b->nadded, c, et_tok_jid(et_tok_jget(e, "id")), et_tok_jbool(e, "lstrip", 0), et_tok_jbool(e, "rstrip", 0), name, err)) goto fail;
    }
    if (set_bytelevel(b, et_tok_jget(root, "pre_tokenizer"), name, err)) goto fail;
    const et_tok_vocab v = {b->tok, b->slots, b->cap, b->n};
    if (et_tok_json_specials(root, &v, &b->cls, &b->sep, &b->pad, &b->mask, name, err)) goto fail;
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
    et_tokbuf tmp = {0};
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
        if (sid[k] >= 0 && et_tok_added_push(b->added, &b->nadded, sp_names[k], sid[k], k == 4, 0, vocab_name, err)) goto fail;
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
