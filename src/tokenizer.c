/* tokenizer.c - BERT WordPiece tokenizer (Hugging Face BertTokenizer, uncased). See tokenizer.h.
 *
 * The text is processed as a stream of code points with a fixed-size state (no allocation):
 *   decode (UTF-8, maximal-subpart U+FFFD) -> special-token match -> clean -> CJK split ->
 *   lower + NFD (+ canonical reordering) + drop Mn -> whitespace / punctuation split -> WordPiece.
 * Only the current "piece" (a run of non-space, non-punctuation code points) is buffered; a piece
 * longer than ET_TOK_MAX_WORD_CHARS becomes [UNK] without being stored in full. */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "bpe.h"
#include "sentencepiece.h"
#include "unicode_tables.h"
#include "util.h"

/* ------------------------------------------------------------------------------------------------
 * Unicode helpers (tables generated from Python's unicodedata, see tools/gen_unicode_tables.py) */

static inline unsigned uc_flags(uint32_t cp) {
    return et_uc_stage2[((unsigned)et_uc_stage1[cp >> ET_UC_BLOCK_SHIFT] << ET_UC_BLOCK_SHIFT) |
                        (cp & ((1u << ET_UC_BLOCK_SHIFT) - 1))];
}

/* HF BasicTokenizer._is_chinese_char (by code point, including the supplementary planes) */
static inline int uc_is_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* The normalisation of one code point, by casing mode: MAP_LOWER_NFD = NFD(lower(cp)) (flag ET_UC_MAP),
 * MAP_NFD = NFD(cp) (ET_UC_NFD), MAP_LOWER = lower(cp) (ET_UC_LOW). Writes up to ET_UC_MAP_MAXLEN code
 * points; only called for a code point carrying the mode's flag. */
enum { MAP_LOWER_NFD = 0, MAP_NFD = 1, MAP_LOWER = 2 };
static int uc_map(uint32_t cp, int mode, uint32_t *out) {
    if (cp < 128) { /* only A-Z are flagged in ASCII, and only for lowercasing */
        out[0] = cp + 32;
        return 1;
    }
    if (mode != MAP_LOWER && cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllable: algorithmic canonical decomposition */
        uint32_t s = cp - 0xAC00, t = s % 28;
        out[0] = 0x1100 + s / (21 * 28);
        out[1] = 0x1161 + (s % (21 * 28)) / 28;
        if (t) {
            out[2] = 0x11A7 + t;
            return 3;
        }
        return 2;
    }
    const uint32_t *keys = mode == MAP_NFD ? et_uc_nfd_keys : mode == MAP_LOWER ? et_uc_low_keys : et_uc_map_keys;
    const uint16_t *offs = mode == MAP_NFD ? et_uc_nfd_offs : mode == MAP_LOWER ? et_uc_low_offs : et_uc_map_offs;
    const uint32_t *pool = mode == MAP_NFD ? et_uc_nfd_pool : mode == MAP_LOWER ? et_uc_low_pool : et_uc_map_pool;
    int lo = 0, hi = (mode == MAP_NFD ? ET_UC_NFD_COUNT : mode == MAP_LOWER ? ET_UC_LOW_COUNT : ET_UC_MAP_COUNT) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        uint32_t k = keys[mid];
        if (k == cp) {
            int n = offs[mid + 1] - offs[mid];
            memcpy(out, pool + offs[mid], (size_t)n * sizeof *out);
            return n;
        }
        if (k < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    out[0] = cp; /* unreachable for flagged code points */
    return 1;
}

/* canonical combining class of a non-Mn code point with ccc > 0 (the only ones kept in a piece) */
static int uc_mc_ccc(uint32_t cp) {
    for (int i = 0; i < ET_UC_MC_COUNT; i++)
        if (et_uc_mc_cp[i] == cp) return et_uc_mc_ccc[i];
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Vocabulary: strings in one pool, open-addressing hash table of ids. */

struct et_tokenizer {
    int n;            /* vocab size */
    char *pool;       /* token strings, NUL-terminated, in id order */
    uint32_t *off;    /* [n] offset of token i in pool */
    uint32_t *len;    /* [n] byte length of token i */
    uint32_t *hash;   /* [n] hash of token i */
    int32_t *slots;   /* [cap] token id or -1 */
    uint32_t cap;     /* power of two */
    int max_first;    /* longest token in code points */
    int max_cont;     /* longest "##" token in code points, without the "##" */
    int32_t unk, cls, sep, pad, mask;
    int lower, strip; /* WordPiece casing (et_tokenizer_set_case); 1, 1 = uncased BERT */
    et_spm *spm;      /* non-NULL: a SentencePiece Unigram tokenizer; everything dispatches to it */
    et_bpe *bpe;      /* non-NULL: a byte-level BPE tokenizer; everything dispatches to it */
};

static inline uint32_t fmix(uint32_t h) { /* spread FNV's low bits before masking */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    return h;
}

/* Find "##"(if cont) + p[0..n) in the vocab; -1 if absent. */
static int32_t vocab_find(const et_tokenizer *t, const char *p, size_t n, int cont) {
    uint32_t h = ET_FNV1A32_INIT; /* the vocab's hashes: FNV-1a 32 (util.h) of the token */
    if (cont) h = et_fnv1a32(h, "##", 2);
    h = et_fnv1a32(h, p, n);
    size_t total = n + (cont ? 2 : 0);
    uint32_t mask = t->cap - 1;
    for (uint32_t s = fmix(h) & mask;; s = (s + 1) & mask) {
        int32_t id = t->slots[s];
        if (id < 0) return -1;
        if (t->hash[id] == h && t->len[id] == total) {
            const char *q = t->pool + t->off[id];
            if (cont) {
                if (q[0] == '#' && q[1] == '#' && memcmp(q + 2, p, n) == 0) return id;
            } else if (memcmp(q, p, n) == 0) {
                return id;
            }
        }
    }
}

int et_tokenizer_vocab_size(const et_tokenizer *t) {
    return !t ? 0 : t->spm ? et_spm_vocab_size(t->spm) : t->bpe ? et_bpe_vocab_size(t->bpe) : t->n;
}
int32_t et_tokenizer_token_id(const et_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    if (t->spm) return et_spm_token_id(t->spm, token);
    if (t->bpe) return et_bpe_token_id(t->bpe, token);
    return vocab_find(t, token, strlen(token), 0);
}
const char *et_tokenizer_token(const et_tokenizer *t, int32_t id) {
    if (t && t->spm) return et_spm_token(t->spm, id);
    if (t && t->bpe) return et_bpe_token(t->bpe, id);
    if (!t || id < 0 || id >= t->n) return NULL;
    return t->pool + t->off[id];
}
int et_tokenizer_is_sentencepiece(const et_tokenizer *t) { return t && t->spm; }
int et_tokenizer_is_bpe(const et_tokenizer *t) { return t && t->bpe; }
int et_tokenizer_is_wordpiece(const et_tokenizer *t) { return t && !t->spm && !t->bpe; }

void et_tokenizer_set_case(et_tokenizer *t, int lowercase, int strip_accents) {
    if (!t) return;
    t->lower = lowercase != 0;
    t->strip = strip_accents < 0 ? t->lower : strip_accents != 0;
}

et_tokenizer *et_tokenizer_from_spm(et_spm *s, et_error *err) {
    if (!s) {
        et_fail(err, ET_ERR_ARG, "et_tokenizer_from_spm: NULL");
        return NULL;
    }
    et_tokenizer *t = et_calloc(1, sizeof *t, "tokenizer", err);
    if (!t) {
        et_spm_free(s);
        return NULL;
    }
    t->spm = s;
    t->unk = et_spm_unk_id(s);
    t->cls = et_spm_cls_id(s);
    t->sep = et_spm_sep_id(s);
    t->pad = et_spm_pad_id(s);
    t->mask = et_spm_mask_id(s);
    return t;
}
et_tokenizer *et_tokenizer_from_bpe(et_bpe *b, et_error *err) {
    if (!b) {
        et_fail(err, ET_ERR_ARG, "et_tokenizer_from_bpe: NULL");
        return NULL;
    }
    et_tokenizer *t = et_calloc(1, sizeof *t, "tokenizer", err);
    if (!t) {
        et_bpe_free(b);
        return NULL;
    }
    t->bpe = b;
    t->unk = et_bpe_unk_id(b);
    t->cls = et_bpe_cls_id(b);
    t->sep = et_bpe_sep_id(b);
    t->pad = et_bpe_pad_id(b);
    t->mask = et_bpe_mask_id(b);
    return t;
}
int32_t et_tokenizer_pad_id(const et_tokenizer *t) { return t ? t->pad : -1; }
int32_t et_tokenizer_unk_id(const et_tokenizer *t) { return t ? t->unk : -1; }
int32_t et_tokenizer_cls_id(const et_tokenizer *t) { return t ? t->cls : -1; }
int32_t et_tokenizer_sep_id(const et_tokenizer *t) { return t ? t->sep : -1; }
int32_t et_tokenizer_mask_id(const et_tokenizer *t) { return t ? t->mask : -1; }

void et_tokenizer_free(et_tokenizer *t) {
    if (!t) return;
    et_spm_free(t->spm);
    et_bpe_free(t->bpe);
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->hash);
    free(t->slots);
    free(t);
}

/* Returns 0 if p[0..n) is valid UTF-8, else 1 + byte offset of the first bad sequence.
 * Counts code points into *ncp. */
static size_t utf8_check(const char *p, size_t n, int *ncp) {
    const uint8_t *s = (const uint8_t *)p;
    size_t i = 0;
    int k = 0;
    while (i < n) {
        uint32_t cp;
        size_t j = et_utf8_next(s, n, i, &cp);
        if (cp == 0xFFFD && !(j - i == 3 && s[i] == 0xEF && s[i + 1] == 0xBF && s[i + 2] == 0xBD)) return i + 1;
        i = j;
        k++;
    }
    *ncp = k;
    return 0;
}

et_tokenizer *et_tokenizer_from_buffer(const char *data, size_t len, const char *name, et_error *err) {
    if (!name) name = "vocab";
    if (!data && len) {
        et_fail(err, ET_ERR_ARG, "%s: NULL data", name);
        return NULL;
    }
    size_t pos = 0;
    if (len >= 3 && (uint8_t)data[0] == 0xEF && (uint8_t)data[1] == 0xBB && (uint8_t)data[2] == 0xBF) pos = 3;
    /* drop trailing blank lines (LF / CRLF only) */
    size_t end = len;
    while (end > pos && (data[end - 1] == '\n' || data[end - 1] == '\r')) end--;
    if (end == pos) {
        et_fail(err, ET_ERR_FORMAT, "%s: empty vocabulary", name);
        return NULL;
    }
    /* count lines */
    size_t nlines = 1;
    for (size_t i = pos; i < end; i++) nlines += data[i] == '\n';
    if (nlines > (size_t)INT32_MAX / 4) {
        et_fail(err, ET_ERR_FORMAT, "%s: too many lines (%zu)", name, nlines);
        return NULL;
    }
    et_tokenizer *t = et_calloc(1, sizeof *t, "tokenizer", err);
    if (!t) return NULL;
    t->n = (int)nlines;
    t->cap = 1024;
    while (t->cap < nlines * 2) t->cap <<= 1;
    t->pool = et_malloc(end - pos + 1, "vocab strings", err);
    t->off = et_malloc(nlines * sizeof *t->off, "vocab offsets", err);
    t->len = et_malloc(nlines * sizeof *t->len, "vocab lengths", err);
    t->hash = et_malloc(nlines * sizeof *t->hash, "vocab hashes", err);
    t->slots = et_malloc(t->cap * sizeof *t->slots, "vocab hash table", err);
    if (!t->pool || !t->off || !t->len || !t->hash || !t->slots) goto fail;
    memset(t->slots, 0xFF, t->cap * sizeof *t->slots);
    t->unk = t->cls = t->sep = t->pad = t->mask = -1;
    t->lower = t->strip = 1;

    size_t w = 0, i = pos;
    for (int id = 0; id < t->n; id++) {
        size_t a = i;
        while (i < end && data[i] != '\n') i++;
        size_t b = i;
        i++; /* skip '\n' */
        if (b > a && data[b - 1] == '\r') b--;
        long line = id + 1;
        if (b == a) {
            et_fail(err, ET_ERR_FORMAT, "%s:%ld: empty token (blank line)", name, line);
            goto fail;
        }
        if (memchr(data + a, '\r', b - a)) {
            et_fail(err, ET_ERR_FORMAT, "%s:%ld: stray carriage return inside a token", name, line);
            goto fail;
        }
        if (memchr(data + a, '\0', b - a)) {
            et_fail(err, ET_ERR_FORMAT, "%s:%ld: NUL byte inside a token", name, line);
            goto fail;
        }
        int ncp = 0;
        size_t bad = utf8_check(data + a, b - a, &ncp);
        if (bad) {
            et_fail(err, ET_ERR_FORMAT, "%s:%ld: invalid UTF-8 at byte %zu of the token", name, line, bad);
            goto fail;
        }
        memcpy(t->pool + w, data + a, b - a);
        t->pool[w + (b - a)] = 0;
        t->off[id] = (uint32_t)w;
        t->len[id] = (uint32_t)(b - a);
        t->hash[id] = et_fnv1a32(ET_FNV1A32_INIT, data + a, b - a);
        w += b - a + 1;
        const char *s = t->pool + t->off[id];
        /* insert, rejecting duplicates */
        int32_t prev = vocab_find(t, s, t->len[id], 0);
        if (prev >= 0) {
            et_fail(err, ET_ERR_FORMAT, "%s:%ld: duplicate token '%s' (first at line %ld)", name, line, s,
                    (long)prev + 1);
            goto fail;
        }
        uint32_t m = t->cap - 1, slot = fmix(t->hash[id]) & m;
        while (t->slots[slot] >= 0) slot = (slot + 1) & m;
        t->slots[slot] = id;
        if (ncp > t->max_first) t->max_first = ncp;
        if (t->len[id] > 2 && s[0] == '#' && s[1] == '#' && ncp - 2 > t->max_cont) t->max_cont = ncp - 2;
        if (!strcmp(s, "[UNK]")) t->unk = id;
        else if (!strcmp(s, "[CLS]")) t->cls = id;
        else if (!strcmp(s, "[SEP]")) t->sep = id;
        else if (!strcmp(s, "[PAD]")) t->pad = id;
        else if (!strcmp(s, "[MASK]")) t->mask = id;
    }
    const char *missing = t->unk < 0 ? "[UNK]" : t->cls < 0 ? "[CLS]" : t->sep < 0 ? "[SEP]" : t->pad < 0 ? "[PAD]" : NULL;
    if (missing) {
        et_fail(err, ET_ERR_MISMATCH, "%s: special token %s missing from the vocabulary", name, missing);
        goto fail;
    }
    return t;
fail:
    et_tokenizer_free(t);
    return NULL;
}

et_tokenizer *et_tokenizer_load_vocab(const char *path, et_error *err) {
    if (!path) {
        et_fail(err, ET_ERR_ARG, "vocab path is NULL");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        et_fail(err, ET_ERR_IO, "%s: cannot open vocabulary", path);
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t nc = cap ? cap * 2 : 262144;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                fclose(f);
                et_fail(err, ET_ERR_NOMEM, "%s: out of memory reading vocabulary", path);
                return NULL;
            }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        et_fail(err, ET_ERR_IO, "%s: read error", path);
        return NULL;
    }
    et_tokenizer *t = et_tokenizer_from_buffer(buf, n, path, err);
    free(buf);
    return t;
}

/* ------------------------------------------------------------------------------------------------
 * Tokenizing: fixed-size streaming state. */

#define PIECE_CAP 128 /* > ET_TOK_MAX_WORD_CHARS: a longer piece is only counted */

typedef struct {
    const et_tokenizer *t;
    int32_t *ids;
    int max;       /* capacity of ids */
    int count;     /* ids produced so far (may exceed max) */
    int stop;      /* stop once count >= stop (batch truncation); INT32_MAX for none */
    int pn;        /* code points in the current piece (may exceed PIECE_CAP) */
    int run_start; /* start of the trailing run of ccc>0 code points (canonical reordering) */
    uint32_t piece[PIECE_CAP];
    char utf8[PIECE_CAP * 4 + 4];
    int boff[PIECE_CAP + 1];
    int32_t sub[PIECE_CAP];
} tok_state;

static inline void emit(tok_state *st, int32_t id) {
    if (st->count < st->max) st->ids[st->count] = id;
    st->count++;
}

/* Greedy longest-match-first WordPiece over piece[0..n), n <= ET_TOK_MAX_WORD_CHARS. */
static void wordpiece(tok_state *st, const uint32_t *cps, int n) {
    const et_tokenizer *t = st->t;
    int w = 0;
    for (int i = 0; i < n; i++) {
        uint32_t c = cps[i];
        st->boff[i] = w;
        char *o = st->utf8 + w;
        if (c < 0x80) {
            o[0] = (char)c;
            w += 1;
        } else if (c < 0x800) {
            o[0] = (char)(0xC0 | (c >> 6));
            o[1] = (char)(0x80 | (c & 0x3F));
            w += 2;
        } else if (c < 0x10000) {
            o[0] = (char)(0xE0 | (c >> 12));
            o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
            o[2] = (char)(0x80 | (c & 0x3F));
            w += 3;
        } else {
            o[0] = (char)(0xF0 | (c >> 18));
            o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
            o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
            o[3] = (char)(0x80 | (c & 0x3F));
            w += 4;
        }
    }
    st->boff[n] = w;
    int nsub = 0, start = 0;
    while (start < n) {
        int cont = start > 0;
        int lim = cont ? t->max_cont : t->max_first;
        int end = n - start > lim ? start + lim : n; /* longer candidates cannot be in the vocab */
        int32_t id = -1;
        for (; end > start; end--) {
            id = vocab_find(t, st->utf8 + st->boff[start], (size_t)(st->boff[end] - st->boff[start]), cont);
            if (id >= 0) break;
        }
        if (id < 0) {
            emit(st, t->unk);
            return;
        }
        st->sub[nsub++] = id;
        start = end;
    }
    for (int i = 0; i < nsub; i++) emit(st, st->sub[i]);
}

static void flush_piece(tok_state *st) {
    if (st->pn > 0) {
        if (st->pn > ET_TOK_MAX_WORD_CHARS) emit(st, st->t->unk);
        else wordpiece(st, st->piece, st->pn);
    }
    st->pn = 0;
    st->run_start = 0;
}

/* One code point of the lowered + decomposed text. */
static inline void push_norm(tok_state *st, uint32_t x, unsigned f) {
    if (f & ET_UC_MN) {                          /* accent: dropped */
        if (!(f & ET_UC_CCC)) st->run_start = st->pn; /* a starter still ends the reordering run */
        return;
    }
    if (f & ET_UC_PUNCT) { /* punctuation: a word of its own (always a starter) */
        flush_piece(st);
        wordpiece(st, &x, 1);
        return;
    }
    if (f & ET_UC_CCC) { /* non-Mn combining mark: stable insertion by combining class */
        if (st->pn < PIECE_CAP) {
            int c = uc_mc_ccc(x), p = st->pn;
            while (p > st->run_start && uc_mc_ccc(st->piece[p - 1]) > c) {
                st->piece[p] = st->piece[p - 1];
                p--;
            }
            st->piece[p] = x;
        }
        st->pn++;
        return;
    }
    if (st->pn < PIECE_CAP) st->piece[st->pn] = x;
    st->pn++;
    st->run_start = st->pn;
}

/* One code point of a tokenizer that keeps accents (no NFD, so no reordering and no dropped marks). */
static inline void push_keep(tok_state *st, uint32_t x, unsigned f) {
    if (f & ET_UC_PUNCT) {
        flush_piece(st);
        wordpiece(st, &x, 1);
        return;
    }
    if (st->pn < PIECE_CAP) st->piece[st->pn] = x;
    st->pn++;
}

/* One code point of the (decoded) input text. Casing as Hugging Face's BertNormalizer: strip accents
 * (NFD, drop Mn) and/or lowercase, per code point. */
static inline void push_input(tok_state *st, uint32_t cp) {
    unsigned f = uc_flags(cp);
    if (f & ET_UC_DROP) return;
    if (f & ET_UC_WS) {
        flush_piece(st);
        return;
    }
    int cjk = uc_is_cjk(cp);
    if (cjk) flush_piece(st);
    const et_tokenizer *t = st->t;
    int mode = t->lower ? (t->strip ? MAP_LOWER_NFD : MAP_LOWER) : MAP_NFD;
    unsigned flag = t->lower ? (t->strip ? ET_UC_MAP : ET_UC_LOW) : (t->strip ? ET_UC_NFD : 0);
    if (f & flag) {
        uint32_t m[ET_UC_MAP_MAXLEN];
        int k = uc_map(cp, mode, m);
        for (int i = 0; i < k; i++) {
            if (t->strip) push_norm(st, m[i], uc_flags(m[i]));
            else push_keep(st, m[i], uc_flags(m[i]));
        }
    } else if (t->strip) {
        push_norm(st, cp, f);
    } else {
        push_keep(st, cp, f);
    }
    if (cjk) flush_piece(st);
}

/* Special token literally at s[i..]: returns its byte length and id, or 0. */
static int match_special(const et_tokenizer *t, const uint8_t *s, size_t n, size_t i, int32_t *id) {
    static const char *const names[5] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"};
    const int32_t ids[5] = {t->cls, t->sep, t->pad, t->unk, t->mask};
    for (int k = 0; k < 5; k++) {
        size_t L = k == 4 ? 6 : 5;
        if (n - i >= L && memcmp(s + i, names[k], L) == 0) {
            *id = ids[k] >= 0 ? ids[k] : t->unk;
            return (int)L;
        }
    }
    return 0;
}

static void tokenize_run(tok_state *st, const char *text, size_t len) {
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    while (i < len && st->count < st->stop) {
        uint32_t b = s[i];
        if (b < 0x80) { /* ASCII fast path */
            if (b == '[') {
                int32_t id;
                int L = match_special(st->t, s, len, i, &id);
                if (L) {
                    flush_piece(st);
                    emit(st, id);
                    i += (size_t)L;
                    continue;
                }
            }
            if (b >= 'A' && b <= 'Z' && st->t->lower) b += 32;
            push_input(st, b);
            i++;
            continue;
        }
        uint32_t cp;
        i = et_utf8_next(s, len, i, &cp);
        push_input(st, cp);
    }
    if (st->count < st->stop) flush_piece(st);
}

int et_tokenize(const et_tokenizer *t, const char *text, size_t len, int32_t *ids, int max) {
    if (!t || (!text && len) || max < 0 || (!ids && max > 0)) return -1;
    if (t->spm) return et_spm_encode(t->spm, text, len, ids, max);
    if (t->bpe) return et_bpe_encode(t->bpe, text, len, ids, max);
    tok_state st;
    st.t = t;
    st.ids = ids;
    st.max = max;
    st.count = 0;
    st.stop = INT32_MAX;
    st.pn = 0;
    st.run_start = 0;
    tokenize_run(&st, text, len);
    return st.count;
}

et_status et_tokenize_batch(const et_tokenizer *t, const char *const *texts, int B, int max_len, int pad_to_max,
                            int32_t *ids, int32_t *mask, int *T_out, et_error *err) {
    if (!t || !texts || !ids || !mask || !T_out) return et_fail(err, ET_ERR_ARG, "et_tokenize_batch: NULL argument");
    if (B < 1) return et_fail(err, ET_ERR_ARG, "et_tokenize_batch: batch size %d < 1", B);
    if (max_len < 2) return et_fail(err, ET_ERR_ARG, "et_tokenize_batch: max_len %d < 2 (room for [CLS] and [SEP])", max_len);
    for (int b = 0; b < B; b++)
        if (!texts[b]) return et_fail(err, ET_ERR_ARG, "et_tokenize_batch: text %d is NULL", b);
    /* pass 1: rows with stride max_len (T is not known yet); each row's length is parked in
     * mask[b * max_len] */
    int T = 2;
    tok_state st;
    st.t = t;
    for (int b = 0; b < B; b++) {
        int32_t *row = ids + (size_t)b * max_len;
        row[0] = t->cls;
        int n;
        if (t->spm || t->bpe) {
            n = t->spm ? et_spm_encode(t->spm, texts[b], strlen(texts[b]), row + 1, max_len - 2)
                       : et_bpe_encode(t->bpe, texts[b], strlen(texts[b]), row + 1, max_len - 2);
            if (n < 0) return et_fail(err, ET_ERR_NOMEM, "et_tokenize_batch: out of memory tokenizing text %d", b);
        } else {
            st.ids = row + 1;
            st.max = max_len - 2;
            st.stop = max_len - 2;
            st.count = 0;
            st.pn = 0;
            st.run_start = 0;
            tokenize_run(&st, texts[b], strlen(texts[b]));
            n = st.count;
        }
        if (n > max_len - 2) n = max_len - 2;
        row[n + 1] = t->sep;
        mask[(size_t)b * max_len] = n + 2; /* row length, parked in mask until pass 2 */
        if (n + 2 > T) T = n + 2;
    }
    if (pad_to_max) T = max_len;
    /* pass 2: compact rows to stride T (destinations never overlap later sources), pad, build mask */
    for (int b = 0; b < B; b++) {
        int L = mask[(size_t)b * max_len];
        int32_t *src = ids + (size_t)b * max_len, *dst = ids + (size_t)b * T;
        if (dst != src) memmove(dst, src, (size_t)L * sizeof *dst);
        for (int j = L; j < T; j++) dst[j] = t->pad;
        int32_t *m = mask + (size_t)b * T;
        /* mask row b (stride T) starts at or before the parked length of row b, and the parked
         * lengths of rows > b are at b' * max_len >= (b+1) * T, beyond this row: safe to write. */
        for (int j = 0; j < T; j++) m[j] = j < L ? 1 : 0;
    }
    *T_out = T;
    return ET_OK;
}

/* ------------------------------------------------------------------------------------------------
 * tokenizer.json: Unigram -> sentencepiece.h; WordPiece -> this file's tokenizer, built from the
 * model's vocab map and the BertNormalizer's flags. */

static et_tokenizer *wordpiece_from_json(const cJSON *root, const char *name, et_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab"), *e;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const cJSON *mx = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
    if (!cJSON_IsObject(vocab) || !vocab->child) {
        et_fail(err, ET_ERR_FORMAT, "%s: model.vocab must be a non-empty object {token: id}", name);
        return NULL;
    }
    if ((unk && !(cJSON_IsString(unk) && !strcmp(unk->valuestring, "[UNK]"))) ||
        (pre && !(cJSON_IsString(pre) && !strcmp(pre->valuestring, "##"))) ||
        (mx && !(cJSON_IsNumber(mx) && mx->valuedouble == ET_TOK_MAX_WORD_CHARS))) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: WordPiece with unk_token \"[UNK]\", prefix \"##\" and max_input_chars_per_word %d is supported",
                name, ET_TOK_MAX_WORD_CHARS);
        return NULL;
    }
    /* the normalizer: BertNormalizer (clean_text, handle_chinese_chars: on), its casing */
    const cJSON *nz = cJSON_GetObjectItemCaseSensitive(root, "normalizer"), *ty = cJSON_GetObjectItemCaseSensitive(nz, "type");
    if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "BertNormalizer")) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: a WordPiece tokenizer.json needs the BertNormalizer (got %s)", name,
                cJSON_IsString(ty) ? ty->valuestring : "none");
        return NULL;
    }
    const cJSON *lc = cJSON_GetObjectItemCaseSensitive(nz, "lowercase"), *sa = cJSON_GetObjectItemCaseSensitive(nz, "strip_accents");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(nz, "clean_text"), *cc = cJSON_GetObjectItemCaseSensitive(nz, "handle_chinese_chars");
    if (cJSON_IsFalse(ct) || cJSON_IsFalse(cc)) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: BertNormalizer with clean_text or handle_chinese_chars false is not supported", name);
        return NULL;
    }
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), *ptt = cJSON_GetObjectItemCaseSensitive(pt, "type");
    if (!cJSON_IsString(ptt) || strcmp(ptt->valuestring, "BertPreTokenizer")) {
        et_fail(err, ET_ERR_UNSUPPORTED, "%s: a WordPiece tokenizer.json needs the BertPreTokenizer (got %s)", name,
                cJSON_IsString(ptt) ? ptt->valuestring : "none");
        return NULL;
    }
    /* vocab.txt text in id order (ids must be 0..n-1, each once) */
    int n = cJSON_GetArraySize(vocab);
    const char **by_id = calloc((size_t)n, sizeof *by_id);
    size_t bytes = 0;
    if (!by_id) {
        et_fail(err, ET_ERR_NOMEM, "%s: out of memory for the vocabulary", name);
        return NULL;
    }
    cJSON_ArrayForEach(e, vocab) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!(d >= 0 && d < n) || d != (double)(int)d || by_id[(int)d] || strchr(e->string, '\n')) {
            et_fail(err, ET_ERR_FORMAT, "%s: model.vocab: token \"%.40s\" has id %s; ids must be 0..%d, each once", name, e->string,
                    cJSON_IsNumber(e) ? "out of range or repeated" : "that is not a number", n - 1);
            free(by_id);
            return NULL;
        }
        by_id[(int)d] = e->string;
        bytes += strlen(e->string) + 1;
    }
    char *txt = malloc(bytes + 1), *w = txt;
    if (!txt) {
        free(by_id);
        et_fail(err, ET_ERR_NOMEM, "%s: out of memory for the vocabulary", name);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        size_t L = strlen(by_id[i]);
        memcpy(w, by_id[i], L);
        w[L] = '\n';
        w += L + 1;
    }
    free(by_id);
    et_tokenizer *t = et_tokenizer_from_buffer(txt, bytes, name, err);
    free(txt);
    if (t) et_tokenizer_set_case(t, cJSON_IsFalse(lc) ? 0 : 1, cJSON_IsBool(sa) ? cJSON_IsTrue(sa) : -1);
    return t;
}

et_tokenizer *et_tokenizer_from_json(const char *json, size_t len, const char *name, et_error *err) {
    if (!name) name = "tokenizer.json";
    cJSON *root = NULL;
    if (et_json_parse_doc(json, len, name, &root, err)) return NULL;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "model"), "type");
    et_tokenizer *t = NULL;
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "WordPiece")) {
        t = wordpiece_from_json(root, name, err);
        cJSON_Delete(root);
        return t;
    }
    int bpe = cJSON_IsString(ty) && !strcmp(ty->valuestring, "BPE");
    cJSON_Delete(root);
    if (bpe) {
        et_bpe *b = et_bpe_from_tokenizer_json(json, len, name, err);
        return b ? et_tokenizer_from_bpe(b, err) : NULL;
    }
    et_spm *s = et_spm_from_tokenizer_json(json, len, name, err); /* Unigram, or its message naming the model type */
    return s ? et_tokenizer_from_spm(s, err) : NULL;
}
