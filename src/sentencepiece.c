/* sentencepiece.c - SentencePiece Unigram tokenizer (tokenizer.json and .model faces). See sentencepiece.h. */
#include "sentencepiece.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grapheme_table.h"
#include "json.h"
#include "tok_common.h"
#include "util.h"

/* piece types (sentencepiece_model.proto) */
enum { PT_NORMAL = 1, PT_UNKNOWN = 2, PT_CONTROL = 3, PT_USER = 4, PT_UNUSED = 5, PT_BYTE = 6 };
/* HF normalizer steps */
enum { NS_PRECOMPILED, NS_REPLACE_STR, NS_REPLACE_RUN, NS_STRIP };
enum { PREPEND_NEVER, PREPEND_ALWAYS, PREPEND_FIRST };

#define MAX_STEPS 16
#define UNK_PENALTY 10.0

typedef struct {
    int kind;
    char *pat, *rep;   /* REPLACE_STR: literal pattern / content; REPLACE_RUN: pat = the repeated char (UTF-8) */
    size_t plen, rlen;
    int min_run;       /* REPLACE_RUN: at least this many */
    int left, right;   /* STRIP */
} nstep;

struct et_spm {
    int hf;            /* 1: tokenizer.json semantics, 0: sentencepiece semantics */
    int n;             /* ids 0..n-1 */
    char **tok;        /* [n] token strings (NUL-terminated, owned by pool) */
    char *pool;
    double *score;     /* [n] */
    uint8_t *lattice;  /* [n] 1: may be used by the Viterbi */
    int32_t *slots;    /* hash table of token strings -> id */
    uint32_t cap;
    int max_piece;     /* longest lattice piece in bytes */
    double min_score;
    int32_t unk, cls, sep, pad, mask;
    int byte_fallback;
    int32_t byte_id[256];
    int fairseq;       /* .model face, XLM-R layout: output id = spm id + 1 (unk 0 -> 3) */
    char **ext;        /* fairseq: [next] names by output id (strings in pool) */
    int next;
    /* charsmap */
    uint32_t *units;
    size_t nunits;
    char *norm;
    size_t norm_len;
    /* sentencepiece normalizer flags */
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    /* HF pipeline */
    nstep steps[MAX_STEPS];
    int nsteps;
    int prepend, split;
    char repl[8];
    size_t repl_len;
    et_tok_added *added;
    int nadded;
};

static void sb_c(et_tokbuf *b, char c) { et_tokbuf_put(b, &c, 1); }

/* ------------------------------------------------------------------------------------------------
 * token hash table */
static int32_t find_tok(const et_spm *s, const char *p, size_t n) { return et_tok_find(s->tok, s->slots, s->cap, p, n); }
/* insert; `last_wins`: a duplicate string maps to the later id (HF), else the first is kept */
static void put_tok(et_spm *s, int32_t id, int last_wins) { et_tok_enter(s->tok, s->slots, s->cap, id, last_wins); }

void et_spm_free(et_spm *s) {
    if (!s) return;
    free(s->tok);
    free(s->ext);
    free(s->pool);
    free(s->score);
    free(s->lattice);
    free(s->slots);
    free(s->units);
    free(s->norm);
    for (int i = 0; i < s->nsteps; i++) {
        free(s->steps[i].pat);
        free(s->steps[i].rep);
    }
    et_tok_added_free(s->added, s->nadded);
    free(s);
}

int et_spm_vocab_size(const et_spm *s) { return !s ? 0 : s->ext ? s->next : s->n; }
int32_t et_spm_token_id(const et_spm *s, const char *t) {
    if (!s || !t) return -1;
    if (s->ext) {
        for (int k = 0; k < 4; k++)
            if (!strcmp(s->ext[k], t)) return k;
        if (!strcmp(s->ext[s->next - 1], t)) return s->next - 1;
        int32_t id = find_tok(s, t, strlen(t));
        return id >= 3 ? id + 1 : -1;
    }
    return find_tok(s, t, strlen(t));
}
const char *et_spm_token(const et_spm *s, int32_t id) {
    if (!s || id < 0 || id >= et_spm_vocab_size(s)) return NULL;
    return s->ext ? s->ext[id] : s->tok[id];
}
int32_t et_spm_unk_id(const et_spm *s) { return !s ? -1 : s->fairseq ? 3 : s->unk; }
int32_t et_spm_cls_id(const et_spm *s) { return s ? s->cls : -1; }
int32_t et_spm_sep_id(const et_spm *s) { return s ? s->sep : -1; }
int32_t et_spm_pad_id(const et_spm *s) { return s ? s->pad : -1; }
int32_t et_spm_mask_id(const et_spm *s) { return s ? s->mask : -1; }

/* Allocate n token slots; strings are copied into one pool of `pool_bytes`. */
static int alloc_vocab(et_spm *s, int n, size_t pool_bytes, et_error *err) {
    s->n = n;
    s->cap = 1024;
    while (s->cap < (uint32_t)n * 2u) s->cap <<= 1;
    s->tok = et_calloc((size_t)n, sizeof *s->tok, "vocab", err);
    s->pool = et_malloc(pool_bytes + 1, "vocab strings", err);
    s->score = et_calloc((size_t)n, sizeof *s->score, "vocab scores", err);
    s->lattice = et_calloc((size_t)n, 1, "vocab flags", err);
    s->slots = et_malloc(s->cap * sizeof *s->slots, "vocab hash", err);
    if (!s->tok || !s->pool || !s->score || !s->lattice || !s->slots) return 0;
    memset(s->slots, 0xFF, s->cap * sizeof *s->slots);
    return 1;
}

static int valid_utf8(const char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t j = et_utf8_next((const uint8_t *)p, n, i, &cp);
        if (cp == 0xFFFD && !(j - i == 3 && (uint8_t)p[i] == 0xEF)) return 0;
        i = j;
    }
    return 1;
}

/* Finish a loaded vocab: byte pieces, min score, longest lattice piece. */
static void finish_vocab(et_spm *s) {
    for (int b = 0; b < 256; b++) {
        char nm[8];
        static const char hx[] = "0123456789ABCDEF";
        nm[0] = '<'; nm[1] = '0'; nm[2] = 'x'; nm[3] = hx[b >> 4]; nm[4] = hx[b & 15]; nm[5] = '>'; nm[6] = 0;
        s->byte_id[b] = find_tok(s, nm, 6);
    }
    s->max_piece = 0;
    for (int i = 0; i < s->n; i++)
        if (s->lattice[i]) {
            int L = (int)strlen(s->tok[i]);
            if (L > s->max_piece) s->max_piece = L;
        }
}

/* ------------------------------------------------------------------------------------------------
 * Precompiled charsmap: [u32 trie bytes][darts-clone units][NUL-separated normalized strings] */

static et_status load_charsmap(et_spm *s, const uint8_t *b, size_t n, const char *name, et_error *err) {
    if (n < 4) return et_fail(err, ET_ERR_FORMAT, "%s: precompiled_charsmap: %zu bytes, too short", name, n);
    uint32_t tb = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    if (tb % 4 || tb == 0 || (size_t)tb > n - 4)
        return et_fail(err, ET_ERR_FORMAT, "%s: precompiled_charsmap: trie size %u does not fit %zu bytes", name, tb, n);
    s->nunits = tb / 4;
    s->units = et_malloc(tb, "charsmap trie", err);
    s->norm_len = n - 4 - tb;
    s->norm = et_malloc(s->norm_len + 1, "charsmap strings", err);
    if (!s->units || !s->norm) return ET_ERR_NOMEM;
    for (size_t i = 0; i < s->nunits; i++) {
        const uint8_t *u = b + 4 + 4 * i;
        s->units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    memcpy(s->norm, b + 4 + tb, s->norm_len);
    s->norm[s->norm_len] = 0; /* a string running off the end stops here */
    return ET_OK;
}

#define U_LEAF(u) (((u) >> 8) & 1)
#define U_VALUE(u) ((u) & 0x7FFFFFFFu)
#define U_LABEL(u) ((u) & 0x800000FFu)
#define U_OFFSET(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))

/* darts-clone commonPrefixSearch over key[0..n) (stops at a NUL byte). shortest: return the first
 * (shortest) match; else the longest. Returns the matched length (0 = none) and its value. */
static size_t trie_prefix(const et_spm *s, const uint8_t *key, size_t n, int shortest, uint32_t *value) {
    if (!s->nunits) return 0;
    size_t pos = 0, best = 0;
    uint32_t u = s->units[0];
    pos ^= U_OFFSET(u);
    for (size_t i = 0; i < n; i++) {
        if (key[i] == 0) break;
        pos ^= key[i];
        if (pos >= s->nunits) break;
        u = s->units[pos];
        if (U_LABEL(u) != key[i]) break;
        pos ^= U_OFFSET(u);
        if (pos >= s->nunits) break;
        if (U_LEAF(u)) {
            uint32_t v = U_VALUE(s->units[pos]);
            if (v < s->norm_len) {
                *value = v;
                best = i + 1;
                if (shortest) return best;
            }
        }
    }
    return best;
}

/* ------------------------------------------------------------------------------------------------
 * Grapheme clusters (UAX #29 extended; enough for HF's Precompiled) */

static int gb_class(uint32_t c) {
    int lo = 0, hi = ET_GB_RANGES - 1;
    while (lo <= hi) {
        int m = (lo + hi) >> 1;
        if (c < et_gb_lo[m]) hi = m - 1;
        else if (c > et_gb_hi[m]) lo = m + 1;
        else return et_gb_cls[m];
    }
    return ET_GB_OTHER;
}

/* End (byte offset) of the grapheme cluster starting at s[i] (valid UTF-8, i < n). */
static size_t grapheme_end(const uint8_t *s, size_t n, size_t i) {
    int prev = gb_class(et_tok_utf8_cp(s + i));
    size_t j = i + et_tok_utf8_len(s[i]);
    int ri = prev == ET_GB_REGIONAL_INDICATOR;     /* RI count parity */
    int emoji = prev == ET_GB_EXTPICT;             /* ExtPict Extend* seen (GB11) */
    while (j < n) {
        int c = gb_class(et_tok_utf8_cp(s + j));
        int join;
        if (prev == ET_GB_CR && c == ET_GB_LF) join = 1;                                         /* GB3 */
        else if (prev == ET_GB_CONTROL || prev == ET_GB_CR || prev == ET_GB_LF) join = 0;        /* GB4 */
        else if (c == ET_GB_CONTROL || c == ET_GB_CR || c == ET_GB_LF) join = 0;                 /* GB5 */
        else if (prev == ET_GB_L && (c == ET_GB_L || c == ET_GB_V || c == ET_GB_LV || c == ET_GB_LVT)) join = 1; /* GB6 */
        else if ((prev == ET_GB_LV || prev == ET_GB_V) && (c == ET_GB_V || c == ET_GB_T)) join = 1;              /* GB7 */
        else if ((prev == ET_GB_LVT || prev == ET_GB_T) && c == ET_GB_T) join = 1;                              /* GB8 */
        else if (c == ET_GB_EXTEND || c == ET_GB_ZWJ) join = 1;                                  /* GB9 */
        else if (c == ET_GB_SPACINGMARK) join = 1;                                               /* GB9a */
        else if (prev == ET_GB_PREPEND) join = 1;                                                /* GB9b */
        else if (prev == ET_GB_ZWJ && c == ET_GB_EXTPICT && emoji) join = 1;                     /* GB11 */
        else if (prev == ET_GB_REGIONAL_INDICATOR && c == ET_GB_REGIONAL_INDICATOR && ri) join = 1; /* GB12/13 */
        else join = 0;
        if (!join) break;
        /* state for GB11 / GB12 */
        if (c == ET_GB_REGIONAL_INDICATOR) ri = !(prev == ET_GB_REGIONAL_INDICATOR && ri);
        else ri = 0;
        if (c == ET_GB_EXTPICT) emoji = 1;
        else if (!(c == ET_GB_EXTEND || (c == ET_GB_ZWJ && emoji))) emoji = 0;
        prev = c;
        j += et_tok_utf8_len(s[j]);
    }
    return j;
}

/* HF Precompiled normalizer over valid UTF-8 in[0..n) */
static void hf_precompiled(const et_spm *s, const char *in, size_t n, et_tokbuf *out) {
    const uint8_t *u = (const uint8_t *)in;
    size_t i = 0;
    while (i < n) {
        size_t g = grapheme_end(u, n, i);
        uint32_t v;
        if (g - i < 6 && trie_prefix(s, u + i, g - i, 1, &v)) {
            et_tokbuf_put(out, s->norm + v, strlen(s->norm + v));
        } else {
            for (size_t k = i; k < g;) {
                size_t L = et_tok_utf8_len(u[k]);
                if (trie_prefix(s, u + k, L, 1, &v)) et_tokbuf_put(out, s->norm + v, strlen(s->norm + v));
                else et_tokbuf_put(out, in + k, L);
                k += L;
            }
        }
        i = g;
    }
}

static void apply_step(const nstep *st, const et_spm *s, const char *in, size_t n, et_tokbuf *out) {
    if (st->kind == NS_PRECOMPILED) {
        hf_precompiled(s, in, n, out);
    } else if (st->kind == NS_REPLACE_STR) {
        for (size_t i = 0; i < n;) {
            if (st->plen && n - i >= st->plen && !memcmp(in + i, st->pat, st->plen)) {
                et_tokbuf_put(out, st->rep, st->rlen);
                i += st->plen;
            } else {
                sb_c(out, in[i++]);
            }
        }
    } else if (st->kind == NS_REPLACE_RUN) {
        for (size_t i = 0; i < n;) {
            size_t j = i;
            int k = 0;
            while (n - j >= st->plen && !memcmp(in + j, st->pat, st->plen)) {
                j += st->plen;
                k++;
            }
            if (k >= st->min_run) {
                et_tokbuf_put(out, st->rep, st->rlen);
                i = j;
            } else if (k > 0) {
                et_tokbuf_put(out, in + i, j - i);
                i = j;
            } else {
                size_t L = et_tok_utf8_len((uint8_t)in[i]);
                et_tokbuf_put(out, in + i, L);
                i += L;
            }
        }
    } else { /* NS_STRIP */
        size_t a = 0, b = n;
        const uint8_t *u = (const uint8_t *)in;
        if (st->left)
            while (a < b && et_tok_is_ws(et_tok_utf8_cp(u + a))) a += et_tok_utf8_len(u[a]);
        if (st->right)
            while (b > a) {
                size_t k = b - 1;
                while (k > a && (u[k] & 0xC0) == 0x80) k--;
                if (!et_tok_is_ws(et_tok_utf8_cp(u + k))) break;
                b = k;
            }
        et_tokbuf_put(out, in + a, b - a);
    }
}

/* ------------------------------------------------------------------------------------------------
 * Unigram Viterbi over str[0..n) (valid UTF-8). Emits ids through et_tok_emit(). */

typedef struct {
    double score;
    int32_t id;  /* piece id, or -1 for unknown */
    int32_t from;
} lnode;

static int viterbi(const et_spm *s, const char *str, size_t n, et_tok_out *o, lnode *nd, int32_t *stack) {
    const uint8_t *u = (const uint8_t *)str;
    for (size_t i = 0; i <= n; i++) nd[i].from = -1;
    nd[0].score = 0;
    double unk_score = s->min_score - UNK_PENALTY;
    float unk_f = (float)s->min_score - (float)UNK_PENALTY;
    for (size_t st = 0; st < n;) {
        size_t mb = et_tok_utf8_len(u[st]);
        double base = nd[st].score;
        int single = 0;
        uint32_t h = 2166136261u;
        size_t lim = n - st < (size_t)s->max_piece ? n - st : (size_t)s->max_piece;
        for (size_t L = 1; L <= lim; L++) {
            h = (h ^ u[st + L - 1]) * 16777619u;
            if (st + L < n && (u[st + L] & 0xC0) == 0x80) continue; /* not a character boundary */
            uint32_t hh = h;
            hh ^= hh >> 16;
            hh *= 0x85ebca6bu;
            hh ^= hh >> 13;
            int32_t id = -1;
            for (uint32_t m = s->cap - 1, k = hh & m;; k = (k + 1) & m) {
                int32_t t = s->slots[k];
                if (t < 0) break;
                if (strnlen(s->tok[t], L + 1) == L && !memcmp(s->tok[t], str + st, L)) { /* exact: a NUL in the text ends no piece */
                    id = t;
                    break;
                }
            }
            if (id < 0 || !s->lattice[id]) continue;
            /* HF: f64 throughout. sentencepiece: the piece score is promoted to double (its
             * "user-defined ? length * max_score - 0.1 : score" expression is double), added to the
             * float path score, compared in double and stored back as float. */
            double cand = s->score[id] + base;
            lnode *t = &nd[st + L];
            if (t->from < 0 || cand > t->score) {
                t->score = s->hf ? cand : (double)(float)cand;
                t->from = (int32_t)st;
                t->id = id;
            }
            if (L == mb) single = 1;
        }
        if (!single) {
            double cand = s->hf ? unk_score + base : (double)(unk_f + (float)base); /* float in sentencepiece */
            lnode *t = &nd[st + mb];
            if (t->from < 0 || cand > t->score) {
                t->score = cand;
                t->from = (int32_t)st;
                t->id = -1;
            }
        }
        st += mb;
    }
    /* backtrack into stack as (start,end,id) triples reversed; fuse unknown runs */
    int k = 0;
    for (size_t e = n; e > 0;) {
        lnode *t = &nd[e];
        size_t b = (size_t)t->from;
        if (t->id < 0 && k > 0 && stack[3 * (k - 1) + 2] < 0) {
            stack[3 * (k - 1)] = (int32_t)b; /* extend the fused unknown leftwards */
        } else {
            stack[3 * k] = (int32_t)b;
            stack[3 * k + 1] = (int32_t)e;
            stack[3 * k + 2] = t->id;
            k++;
        }
        e = b;
    }
    for (int q = k - 1; q >= 0; q--) {
        int32_t a = stack[3 * q], b = stack[3 * q + 1], id = stack[3 * q + 2];
        if (id >= 0) {
            if (s->hf) id = find_tok(s, str + a, (size_t)(b - a)); /* HF maps the string back (last duplicate) */
            et_tok_emit(o, id);
            continue;
        }
        if (s->hf) {
            int32_t same = find_tok(s, str + a, (size_t)(b - a));
            if (same >= 0) {
                et_tok_emit(o, same);
                continue;
            }
        }
        int all = s->byte_fallback;
        for (int32_t c = a; all && c < b; c++) all = s->byte_id[(uint8_t)str[c]] >= 0;
        if (all)
            for (int32_t c = a; c < b; c++) et_tok_emit(o, s->byte_id[(uint8_t)str[c]]);
        else et_tok_emit(o, s->unk);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Encoding */

typedef struct {
    lnode *nd;
    int32_t *stack;
    size_t cap;
    int oom;
} scratch;

static int ensure(scratch *w, size_t n) {
    if (n + 1 <= w->cap) return 1;
    size_t c = n + 1;
    lnode *a = realloc(w->nd, c * sizeof *a);
    if (a) w->nd = a;
    int32_t *b = realloc(w->stack, 3 * c * sizeof *b);
    if (b) w->stack = b;
    if (!a || !b) return 0;
    w->cap = c;
    return 1;
}

static void run_model(const et_spm *s, const char *str, size_t n, et_tok_out *o, scratch *w) {
    if (!n) return;
    if (!ensure(w, n)) {
        w->oom = 1;
        return;
    }
    viterbi(s, str, n, o, w->nd, w->stack);
}

/* sentencepiece normalizer (normalizer.cc Normalize) */
static void spm_normalize(const et_spm *s, const char *in, size_t n, et_tokbuf *out) {
    const uint8_t *u = (const uint8_t *)in;
    static const char ws[] = "\xe2\x96\x81";
    size_t i = 0;
    /* normalize_prefix: (piece, consumed) */
#define PREFIX(pos, P, PL, C)                                                     \
    do {                                                                           \
        uint32_t v_;                                                               \
        size_t m_ = trie_prefix(s, u + (pos), n - (pos), 0, &v_);                  \
        if (m_) {                                                                  \
            P = s->norm + v_;                                                      \
            PL = strlen(P);                                                        \
            C = m_;                                                                \
        } else {                                                                   \
            P = in + (pos);                                                        \
            PL = C = et_tok_utf8_len(u[pos]);                                             \
        }                                                                          \
    } while (0)
    const char *p;
    size_t pl, c;
    if (s->remove_extra_ws) {
        while (i < n) {
            PREFIX(i, p, pl, c);
            if (!(pl == 1 && p[0] == ' ')) break;
            i += c;
        }
    }
    if (i >= n) return;
    if (s->add_dummy_prefix) {
        if (s->escape_ws) et_tokbuf_put(out, ws, 3);
        else sb_c(out, ' ');
    }
    int prev_space = s->remove_extra_ws;
    while (i < n) {
        PREFIX(i, p, pl, c);
        while (prev_space && pl && p[0] == ' ') {
            p++;
            pl--;
        }
        if (pl) {
            for (size_t k = 0; k < pl; k++) {
                if (s->escape_ws && p[k] == ' ') et_tokbuf_put(out, ws, 3);
                else sb_c(out, p[k]);
            }
            prev_space = p[pl - 1] == ' ';
        }
        i += c;
        prev_space = prev_space && s->remove_extra_ws;
    }
#undef PREFIX
    if (s->remove_extra_ws) {
        const char *sp = s->escape_ws ? ws : " ";
        size_t L = s->escape_ws ? 3 : 1;
        while (out->n >= L && !memcmp(out->p + out->n - L, sp, L)) out->n -= L;
        if (out->p) out->p[out->n] = 0;
    }
}

/* HF: one section of the text (no added tokens inside): normalize, pre-tokenize, model */
static void hf_section(const et_spm *s, const char *in, size_t n, int at_start, et_tok_out *o, scratch *w, et_tokbuf *a, et_tokbuf *b) {
    a->n = 0;
    et_tokbuf_put(a, in, n);
    for (int k = 0; k < s->nsteps; k++) {
        b->n = 0;
        et_tokbuf_put(b, "", 0);
        apply_step(&s->steps[k], s, a->p, a->n, b);
        et_tokbuf t = *a;
        *a = *b;
        *b = t;
    }
    if (a->oom || b->oom) {
        w->oom = 1;
        return;
    }
    /* Metaspace: ' ' -> replacement, prepend, split before each replacement */
    b->n = 0;
    int pre = s->prepend == PREPEND_ALWAYS || (s->prepend == PREPEND_FIRST && at_start);
    int starts = a->n > 0 && (a->p[0] == ' ' || (a->n >= s->repl_len && !memcmp(a->p, s->repl, s->repl_len)));
    if (pre && a->n > 0 && !starts) et_tokbuf_put(b, s->repl, s->repl_len); /* HF prepends to non-empty text only; after ' ' -> replacement, as HF checks */
    for (size_t i = 0; i < a->n; i++) {
        if (a->p[i] == ' ') et_tokbuf_put(b, s->repl, s->repl_len);
        else sb_c(b, a->p[i]);
    }
    if (b->oom) {
        w->oom = 1;
        return;
    }
    if (!s->split) {
        run_model(s, b->p, b->n, o, w);
        return;
    }
    size_t ws = 0;
    for (size_t i = 0; i <= b->n; i++) {
        int at_rep = i < b->n && b->n - i >= s->repl_len && !memcmp(b->p + i, s->repl, s->repl_len);
        if ((at_rep && i > ws) || i == b->n) {
            run_model(s, b->p + ws, i - ws, o, w);
            ws = i;
        }
        if (at_rep) i += s->repl_len - 1;
    }
}

/* et_tok_split_added's section: the state of one et_spm_encode */
typedef struct {
    const et_spm *s;
    et_tok_out *o;
    scratch *w;
    et_tokbuf *a, *b;
} encode_ctx;
static int section_cb(void *ctx, const char *p, size_t n, int at_start) {
    encode_ctx *c = ctx;
    hf_section(c->s, p, n, at_start, c->o, c->w, c->a, c->b);
    return c->w->oom || c->a->oom || c->b->oom;
}

int et_spm_encode(const et_spm *s, const char *text, size_t len, int32_t *ids, int max) {
    if (!s || (!text && len) || max < 0 || (!ids && max > 0)) return -1;
    et_tok_out o = {ids, max, 0};
    scratch w = {0};
    et_tokbuf dec = {0}, a = {0}, b = {0};
    et_tok_decode_utf8(&dec, text, len); /* invalid sequences -> U+FFFD (maximal subpart) */
    if (!s->hf) {
        spm_normalize(s, dec.p, dec.n, &a);
        if (!a.oom) run_model(s, a.p ? a.p : "", a.n, &o, &w);
        if (s->fairseq)
            for (int i = 0; i < o.count && i < max; i++) ids[i] = ids[i] == 0 ? 3 : ids[i] + 1; /* spm unk is 0 */
    } else { /* split out added tokens (leftmost-longest), then sections */
        encode_ctx c = {s, &o, &w, &a, &b};
        et_tok_split_added(s->added, s->nadded, dec.p, dec.n, &o, section_cb, &c);
    }
    int oom = w.oom || dec.oom || a.oom || b.oom;
    free(w.nd);
    free(w.stack);
    free(dec.p);
    free(a.p);
    free(b.p);
    return oom ? -1 : o.count;
}

/* ------------------------------------------------------------------------------------------------
 * tokenizer.json */

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}
/* NULL with *bad = 1 for text that is not base64, *bad = 0 when out of memory */
static uint8_t *b64decode(const char *s, size_t *out_n, int *bad) {
    size_t n = strlen(s);
    *bad = 0;
    uint8_t *o = malloc(n / 4 * 3 + 3);
    if (!o) return NULL;
    *bad = 1;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(o);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out_n = k;
    return o;
}

static et_status add_step(et_spm *s, const cJSON *nj, const char *name, et_error *err) {
    const cJSON *ty = et_tok_jget(nj, "type");
    if (!cJSON_IsString(ty)) return et_fail(err, ET_ERR_FORMAT, "%s: normalizer without a \"type\"", name);
    if (!strcmp(ty->valuestring, "Sequence")) {
        const cJSON *arr = et_tok_jget(nj, "normalizers"), *e;
        if (!cJSON_IsArray(arr)) return et_fail(err, ET_ERR_FORMAT, "%s: normalizer Sequence without \"normalizers\"", name);
        cJSON_ArrayForEach(e, arr) {
            et_status st = add_step(s, e, name, err);
            if (st) return st;
        }
        return ET_OK;
    }
    if (s->nsteps == MAX_STEPS) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: more than %d normalizers", name, MAX_STEPS);
    nstep *st = &s->steps[s->nsteps++]; /* counted at once: et_spm_free frees its strings on any failure below */
    memset(st, 0, sizeof *st);
    if (!strcmp(ty->valuestring, "Precompiled")) {
        const cJSON *cm = et_tok_jget(nj, "precompiled_charsmap");
        if (cJSON_IsNull(cm) || (cJSON_IsString(cm) && !cm->valuestring[0])) { /* empty: no-op */
            s->nsteps--;
            return ET_OK;
        }
        if (!cJSON_IsString(cm)) return et_fail(err, ET_ERR_FORMAT, "%s: Precompiled: \"precompiled_charsmap\" must be a base64 string", name);
        if (s->units) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: two Precompiled normalizers", name);
        size_t bn;
        int bad;
        uint8_t *blob = b64decode(cm->valuestring, &bn, &bad);
        if (!blob)
            return bad ? et_fail(err, ET_ERR_FORMAT, "%s: Precompiled: \"precompiled_charsmap\" is not valid base64", name)
                       : et_fail(err, ET_ERR_NOMEM, "%s: out of memory for the precompiled charsmap", name);
        et_status r = load_charsmap(s, blob, bn, name, err);
        free(blob);
        if (r) return r;
        st->kind = NS_PRECOMPILED;
    } else if (!strcmp(ty->valuestring, "Replace")) {
        const cJSON *pat = et_tok_jget(nj, "pattern"), *con = et_tok_jget(nj, "content");
        if (!cJSON_IsObject(pat) || !cJSON_IsString(con))
            return et_fail(err, ET_ERR_FORMAT, "%s: Replace needs \"pattern\" and \"content\"", name);
        const cJSON *ps = et_tok_jget(pat, "String"), *pr = et_tok_jget(pat, "Regex");
        st->rep = strdup(con->valuestring);
        st->rlen = strlen(con->valuestring);
        if (cJSON_IsString(ps)) {
            st->kind = NS_REPLACE_STR;
            st->pat = strdup(ps->valuestring);
            st->plen = strlen(ps->valuestring);
        } else if (cJSON_IsString(pr)) {
            /* only "c{n,}" (a single literal character, optionally backslash-escaped, repeated) */
            const char *r = pr->valuestring;
            size_t rl = strlen(r);
            size_t cl = r[0] == '\\' ? 1 + (r[1] ? et_tok_utf8_len((uint8_t)r[1]) : 0) : (r[0] ? et_tok_utf8_len((uint8_t)r[0]) : 0);
            if (!valid_utf8(r, rl) || cl > rl || cl < (r[0] == '\\' ? 2u : 1u))
                return et_fail(err, ET_ERR_UNSUPPORTED, "%s: Replace regex \"%.40s\" is not supported (only \"c{n,}\")", name, r);
            const char *brace = r + cl;
            int minr = 0;
            char tail[8] = {0};
            if (!cl || strchr("^$.|?*+()[]{}", r[0]) || sscanf(brace, "{%d,%1[}]", &minr, tail) != 2 || minr < 1 ||
                strchr(brace, '}')[1] != 0)
                return et_fail(err, ET_ERR_UNSUPPORTED, "%s: Replace regex \"%s\" is not supported (only \"c{n,}\")", name, r);
            st->kind = NS_REPLACE_RUN;
            st->pat = strndup(r[0] == '\\' ? r + 1 : r, r[0] == '\\' ? cl - 1 : cl);
            st->plen = r[0] == '\\' ? cl - 1 : cl;
            st->min_run = minr;
        } else {
            return et_fail(err, ET_ERR_FORMAT, "%s: Replace pattern must be {\"String\": ...} or {\"Regex\": ...}", name);
        }
        if (!st->rep || !st->pat) return et_fail(err, ET_ERR_NOMEM, "%s: out of memory for a Replace normalizer", name);
    } else if (!strcmp(ty->valuestring, "Strip")) {
        st->kind = NS_STRIP;
        st->left = et_tok_jbool(nj, "strip_left", 1);
        st->right = et_tok_jbool(nj, "strip_right", 1);
    } else {
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported with a Unigram model", name,
                       ty->valuestring);
    }
    return ET_OK;
}

static et_status set_metaspace(et_spm *s, const cJSON *pj, const char *name, et_error *err) {
    const cJSON *ty = et_tok_jget(pj, "type");
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence")) {
        const cJSON *arr = et_tok_jget(pj, "pretokenizers");
        if (cJSON_GetArraySize(arr) == 1) return set_metaspace(s, cJSON_GetArrayItem(arr, 0), name, err);
    }
    if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "Metaspace"))
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: pre_tokenizer %s is not supported with a Unigram model (only Metaspace)",
                       name, cJSON_IsString(ty) ? ty->valuestring : "(none)");
    const cJSON *r = et_tok_jget(pj, "replacement");
    const char *rep = cJSON_IsString(r) ? r->valuestring : "\xe2\x96\x81";
    size_t rl = strlen(rep);
    if (!rl || rl > 4 || et_tok_utf8_len((uint8_t)rep[0]) != rl)
        return et_fail(err, ET_ERR_FORMAT, "%s: Metaspace replacement must be one character", name);
    memcpy(s->repl, rep, rl);
    s->repl_len = rl;
    s->split = et_tok_jbool(pj, "split", 1);
    const cJSON *ps = et_tok_jget(pj, "prepend_scheme");
    if (cJSON_IsString(ps)) {
        if (!strcmp(ps->valuestring, "always")) s->prepend = PREPEND_ALWAYS;
        else if (!strcmp(ps->valuestring, "first")) s->prepend = PREPEND_FIRST;
        else if (!strcmp(ps->valuestring, "never")) s->prepend = PREPEND_NEVER;
        else return et_fail(err, ET_ERR_FORMAT, "%s: Metaspace prepend_scheme \"%s\"", name, ps->valuestring);
    } else {
        s->prepend = et_tok_jbool(pj, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
    }
    return ET_OK;
}

et_spm *et_spm_from_tokenizer_json(const char *json, size_t len, const char *name, et_error *err) {
    if (!name) name = "tokenizer.json";
    cJSON *root = NULL;
    if (et_json_parse_doc(json, len, name, &root, err)) return NULL;
    et_spm *s = et_calloc(1, sizeof *s, "tokenizer", err);
    if (!s) {
        cJSON_Delete(root);
        return NULL;
    }
    s->hf = 1;
    s->unk = s->cls = s->sep = s->pad = s->mask = -1;
    const cJSON *model = et_tok_jget(root, "model"), *mt = model ? et_tok_jget(model, "type") : NULL;
    const cJSON *vocab = model ? et_tok_jget(model, "vocab") : NULL, *added = et_tok_jget(root, "added_tokens"), *e;
    if (!cJSON_IsString(mt)) {
        et_fail(err, ET_ERR_FORMAT, "%s: no model.type", name);
        goto fail;
    }
    if (strcmp(mt->valuestring, "Unigram")) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: model type \"%s\" is not Unigram", name, mt->valuestring);
        goto fail;
    }
    if (!cJSON_IsArray(vocab) || cJSON_GetArraySize(vocab) < 1) {
        et_fail(err, ET_ERR_FORMAT, "%s: model.vocab must be a non-empty array of [piece, score]", name);
        goto fail;
    }
    int nv = cJSON_GetArraySize(vocab), n = nv;
    size_t pool = 0;
    int i = 0;
    cJSON_ArrayForEach(e, vocab) {
        const cJSON *p = cJSON_GetArrayItem(e, 0), *sc = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || !cJSON_IsString(p) || !cJSON_IsNumber(sc) || !isfinite(sc->valuedouble)) {
            et_fail(err, ET_ERR_FORMAT, "%s: model.vocab[%d] must be [\"piece\", finite score]", name, i);
            goto fail;
        }
        pool += strlen(p->valuestring) + 1;
        i++;
    }
    int na0 = cJSON_GetArraySize(added);
    cJSON_ArrayForEach(e, added) {
        const cJSON *c = et_tok_jget(e, "content");
        int32_t id = et_tok_jid(et_tok_jget(e, "id"));
        if (id < 0 || !cJSON_IsString(c)) {
            et_fail(err, ET_ERR_FORMAT, "%s: added_tokens entry needs an integer \"id\" and a \"content\" string", name);
            goto fail;
        }
        if (id >= nv + na0) { /* ids are contiguous: an added token beyond the vocab extends it by one */
            et_fail(err, ET_ERR_FORMAT, "%s: added token id %d leaves a gap after the %d vocabulary ids", name, id, nv);
            goto fail;
        }
        if (id >= n) n = id + 1;
        pool += strlen(c->valuestring) + 1;
    }
    if (!alloc_vocab(s, n, pool, err)) goto fail;
    size_t w = 0;
    i = 0;
    double mn = 1e300;
    cJSON_ArrayForEach(e, vocab) {
        const char *p = cJSON_GetArrayItem(e, 0)->valuestring;
        size_t L = strlen(p);
        if (!valid_utf8(p, L)) {
            et_fail(err, ET_ERR_FORMAT, "%s: model.vocab[%d]: invalid UTF-8", name, i);
            goto fail;
        }
        memcpy(s->pool + w, p, L + 1);
        s->tok[i] = s->pool + w;
        w += L + 1;
        s->score[i] = cJSON_GetArrayItem(e, 1)->valuedouble;
        s->lattice[i] = L > 0;
        if (s->score[i] < mn) mn = s->score[i];
        put_tok(s, i, 1);
        i++;
    }
    s->min_score = mn;
    int na = cJSON_GetArraySize(added);
    s->added = na ? et_calloc((size_t)na, sizeof *s->added, "added tokens", err) : NULL;
    if (na && !s->added) goto fail;
    cJSON_ArrayForEach(e, added) {
        int id = et_tok_jid(et_tok_jget(e, "id"));
        const char *c = et_tok_jget(e, "content")->valuestring;
        if (id < nv) {
            if (strcmp(s->tok[id], c)) {
                et_fail(err, ET_ERR_MISMATCH, "%s: added token %d \"%s\" differs from model.vocab[%d] \"%s\"", name, id, c, id, s->tok[id]);
                goto fail;
            }
        } else if (!s->tok[id]) {
            size_t L = strlen(c);
            memcpy(s->pool + w, c, L + 1);
            s->tok[id] = s->pool + w;
            w += L + 1;
            put_tok(s, id, 1);
        } else if (strcmp(s->tok[id], c)) {
            et_fail(err, ET_ERR_FORMAT, "%s: added token id %d is given twice (\"%s\", \"%s\")", name, id, s->tok[id], c);
            goto fail;
        }
        if (et_tok_jbool(e, "single_word", 0)) {
            et_fail(err, ET_ERR_UNSUPPORTED, "%s: added token \"%s\": single_word is not supported", name, c);
            goto fail;
        }
        if (!*c) continue;
        if (et_tok_jbool(e, "normalized", !et_tok_jbool(e, "special", 0))) {
            et_fail(err, ET_ERR_UNSUPPORTED, "%s: added token \"%s\" with normalized=true is not supported", name, c);
            goto fail;
        }
        if (et_tok_added_push(s->added, &s->nadded, c, id, et_tok_jbool(e, "lstrip", 0), et_tok_jbool(e, "rstrip", 0), name, err)) goto fail;
    }
    for (i = 0; i < n; i++)
        if (!s->tok[i]) {
            et_fail(err, ET_ERR_FORMAT, "%s: no token has id %d (ids must be contiguous)", name, i);
            goto fail;
        }
    int32_t uk = et_tok_jid(et_tok_jget(model, "unk_id"));
    if (uk < 0 || uk >= nv) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: model.unk_id must be a vocabulary id (Unigram without unk is not supported)", name);
        goto fail;
    }
    s->unk = uk;
    s->byte_fallback = et_tok_jbool(model, "byte_fallback", 0);
    finish_vocab(s);
    const cJSON *nz = et_tok_jget(root, "normalizer");
    if (nz && !cJSON_IsNull(nz) && add_step(s, nz, name, err)) goto fail;
    if (set_metaspace(s, et_tok_jget(root, "pre_tokenizer"), name, err)) goto fail;
    const et_tok_vocab v = {s->tok, s->slots, s->cap, s->n};
    if (et_tok_json_specials(root, &v, &s->cls, &s->sep, &s->pad, &s->mask, name, err)) goto fail;
    cJSON_Delete(root);
    return s;
fail:
    cJSON_Delete(root);
    et_spm_free(s);
    return NULL;
}

/* ------------------------------------------------------------------------------------------------
 * .model protobuf */

typedef struct {
    const uint8_t *p, *end;
    int bad;
} pbr;
static uint64_t pb_varint(pbr *r) {
    uint64_t v = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (r->p >= r->end) {
            r->bad = 1;
            return 0;
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << sh;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}
/* next field: returns field number (0 at end / error); sets wire type, and for LEN fields the sub-range */
static int pb_next(pbr *r, int *wt, pbr *sub, uint64_t *val) {
    if (r->p >= r->end || r->bad) return 0;
    uint64_t key = pb_varint(r);
    *wt = (int)(key & 7);
    int f = (int)(key >> 3);
    switch (*wt) {
    case 0: *val = pb_varint(r); break;
    case 1:
        if (r->end - r->p < 8) r->bad = 1;
        else r->p += 8;
        break;
    case 2: {
        uint64_t L = pb_varint(r);
        if (r->bad || L > (uint64_t)(r->end - r->p)) {
            r->bad = 1;
            return 0;
        }
        sub->p = r->p;
        sub->end = r->p + L;
        sub->bad = 0;
        r->p += L;
        break;
    }
    case 5:
        if (r->end - r->p < 4) r->bad = 1;
        else {
            *val = (uint64_t)r->p[0] | (uint64_t)r->p[1] << 8 | (uint64_t)r->p[2] << 16 | (uint64_t)r->p[3] << 24;
            r->p += 4;
        }
        break;
    default: r->bad = 1;
    }
    return r->bad || f == 0 ? 0 : f;
}

et_spm *et_spm_from_model(const void *buf, size_t len, int layout, const char *name, et_error *err) {
    if (!name) name = "sentencepiece.model";
    if (!buf) {
        et_fail(err, ET_ERR_ARG, "%s: NULL data", name);
        return NULL;
    }
    et_spm *s = et_calloc(1, sizeof *s, "tokenizer", err);
    if (!s) return NULL;
    s->unk = s->cls = s->sep = s->pad = s->mask = -1;
    s->add_dummy_prefix = s->remove_extra_ws = s->escape_ws = 1;
    int model_type = 1, byte_fb = 0, unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1, ws_suffix = 0;
    int npieces = 0;
    size_t pool = 0;
    pbr r = {buf, (const uint8_t *)buf + len, 0}, sub, sub2;
    int f, wt;
    uint64_t v;
    /* pass 1: count pieces, read specs */
    while ((f = pb_next(&r, &wt, &sub, &v))) {
        if (f == 1 && wt == 2) {
            npieces++;
            pbr q = sub;
            while ((f = pb_next(&q, &wt, &sub2, &v)))
                if (f == 1 && wt == 2) pool += (size_t)(sub2.end - sub2.p) + 1;
            if (q.bad) r.bad = 1;
        } else if (f == 2 && wt == 2) {
            pbr q = sub;
            while ((f = pb_next(&q, &wt, &sub2, &v))) {
                if (wt != 0) continue;
                if (f == 3) model_type = (int)v;
                else if (f == 35) byte_fb = v != 0;
                else if (f == 40) unk_id = (int32_t)v;
                else if (f == 41) bos_id = (int32_t)v;
                else if (f == 42) eos_id = (int32_t)v;
                else if (f == 43) pad_id = (int32_t)v;
                else if (f == 24) ws_suffix = v != 0;
            }
            if (q.bad) r.bad = 1;
        } else if (f == 3 && wt == 2) {
            pbr q = sub;
            while ((f = pb_next(&q, &wt, &sub2, &v))) {
                if (f == 2 && wt == 2 && sub2.end > sub2.p) {
                    if (s->units) {
                        et_fail(err, ET_ERR_FORMAT, "%s: two precompiled_charsmap fields", name);
                        goto fail;
                    }
                    if (load_charsmap(s, sub2.p, (size_t)(sub2.end - sub2.p), name, err)) goto fail;
                } else if (wt == 0 && f == 3) s->add_dummy_prefix = v != 0;
                else if (wt == 0 && f == 4) s->remove_extra_ws = v != 0;
                else if (wt == 0 && f == 5) s->escape_ws = v != 0;
            }
            if (q.bad) r.bad = 1;
        }
    }
    if (r.bad || npieces == 0) {
        et_fail(err, ET_ERR_FORMAT, "%s: not a sentencepiece model (malformed protobuf or no pieces)", name);
        goto fail;
    }
    if (model_type != 1) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: sentencepiece model_type %d is not Unigram (1)", name, model_type);
        goto fail;
    }
    if (ws_suffix) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: treat_whitespace_as_suffix is not supported", name);
        goto fail;
    }
    int fair = layout == ET_SPM_IDS_FAIRSEQ;
    int n = fair ? npieces + 2 : npieces; /* fairseq: 4 specials replace 3 pieces, + <mask> */
    if (!alloc_vocab(s, npieces, pool + 32, err)) goto fail;

    /* pass 2: pieces, in spm ids (the lattice always works on these; the fairseq view is `ext`) */
    r.p = buf;
    r.bad = 0;
    size_t w = 0;
    int i = 0;
    double mn = 1e300;
    int nnormal = 0;
    while ((f = pb_next(&r, &wt, &sub, &v))) {
        if (f != 1 || wt != 2) continue;
        pbr q = sub;
        const char *p = "";
        size_t L = 0;
        float sc = 0;
        int type = PT_NORMAL;
        while ((f = pb_next(&q, &wt, &sub2, &v))) {
            if (f == 1 && wt == 2) {
                p = (const char *)sub2.p;
                L = (size_t)(sub2.end - sub2.p);
            } else if (f == 2 && wt == 5) {
                uint32_t bits = (uint32_t)v;
                memcpy(&sc, &bits, 4);
            } else if (f == 3 && wt == 0) {
                type = (int)v;
            }
        }
        if (!L || memchr(p, 0, L) || !valid_utf8(p, L) || !isfinite(sc)) {
            et_fail(err, ET_ERR_FORMAT, "%s: piece %d is empty, not valid UTF-8 or has a non-finite score", name, i);
            goto fail;
        }
        if (type == PT_USER) {
            et_fail(err, ET_ERR_UNSUPPORTED, "%s: piece %d \"%.*s\" is USER_DEFINED (not supported)", name, i, (int)L, p);
            goto fail;
        }
        memcpy(s->pool + w, p, L);
        s->pool[w + L] = 0;
        s->tok[i] = s->pool + w;
        w += L + 1;
        s->score[i] = sc;
        s->lattice[i] = type == PT_NORMAL;
        if (type == PT_NORMAL) {
            nnormal++;
            if (sc < mn) mn = sc;
        }
        if (find_tok(s, s->tok[i], L) >= 0) {
            et_fail(err, ET_ERR_FORMAT, "%s: piece %d \"%s\" is defined twice", name, i, s->tok[i]);
            goto fail;
        }
        put_tok(s, i, 0);
        i++;
    }
    s->min_score = nnormal ? mn : 0;
    if (unk_id < 0 || unk_id >= npieces) {
        et_fail(err, ET_ERR_FORMAT, "%s: unk_id %d is not a piece", name, unk_id);
        goto fail;
    }
    s->unk = unk_id;
    s->byte_fallback = byte_fb;
    finish_vocab(s);
    if (fair) {
        /* XLMRobertaTokenizer: <s> <pad> </s> <unk>, spm pieces 3.. shifted by one, <mask>. The lattice
         * keeps spm ids (mapped at the end of et_spm_encode); callers see the `ext` names. */
        if (npieces < 4 || unk_id != 0) {
            et_fail(err, ET_ERR_FORMAT, "%s: the XLM-R id layout needs <unk> at spm id 0 and at least 4 pieces", name);
            goto fail;
        }
        static const char *const fs[4] = {"<s>", "<pad>", "</s>", "<unk>"};
        char **names = et_calloc((size_t)n, sizeof *names, "vocab", err);
        if (!names) goto fail;
        char *extra = s->pool + w;
        size_t ew = 0;
        for (int k = 0; k < 4; k++) {
            memcpy(extra + ew, fs[k], strlen(fs[k]) + 1);
            names[k] = extra + ew;
            ew += strlen(fs[k]) + 1;
        }
        for (int k = 3; k < npieces; k++) names[k + 1] = s->tok[k];
        memcpy(extra + ew, "<mask>", 7);
        names[n - 1] = extra + ew;
        s->ext = names;
        s->fairseq = 1;
        s->next = n;
        s->cls = 0; /* output ids; s->unk stays the spm id the lattice emits */
        s->pad = 1;
        s->sep = 2;
        s->mask = n - 1;
    } else {
        s->cls = bos_id >= 0 && bos_id < n ? bos_id : -1;
        s->sep = eos_id >= 0 && eos_id < n ? eos_id : -1;
        s->pad = pad_id >= 0 && pad_id < n ? pad_id : -1;
        s->mask = find_tok(s, "<mask>", 6);
        if (s->cls < 0 || s->sep < 0 || s->pad < 0) {
            et_fail(err, ET_ERR_MISMATCH, "%s: the model needs bos, eos and pad pieces (bos_id %d, eos_id %d, pad_id %d)",
                    name, bos_id, eos_id, pad_id);
            goto fail;
        }
    }
    return s;
fail:
    et_spm_free(s);
    return NULL;
}
