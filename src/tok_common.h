/* tok_common.h - what the two tokenizer.json tokenizers of the formats layer share, once: SentencePiece Unigram
 * (sentencepiece.c) and byte-level BPE (bpe.c). Hugging Face's tokenizers run the same added-token split and
 * post-processors whatever the model, so both read and apply them here:
 *   - a growable byte buffer and the id output of an encode call (inline: they run per character / per id),
 *   - UTF-8 helpers for valid UTF-8 (the text is decoded first: invalid bytes -> U+FFFD, maximal subpart),
 *   - the vocabulary hash (token string -> id, open addressing over mixed FNV-1a; inline: BPE looks up every
 *     piece, the Unigram lattice every candidate),
 *   - added tokens: the list, and the split of a text at them (leftmost-longest, lstrip / rstrip),
 *   - tokenizer.json's special ids: the post_processor's [CLS]/[SEP], the padding token, <mask>,
 *   - the small cJSON readers both use (object member, token id, boolean with a default).
 * Internal to sentencepiece.c and bpe.c (no other module needs it); nothing here keeps state. */
#ifndef ET_TOK_COMMON_H
#define ET_TOK_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "util.h"

/* A growable byte buffer, always NUL-terminated once written to. Zero-initialised it is empty; a failed
 * allocation sets oom and makes every later put a no-op (the caller checks oom once at the end). The
 * owner frees p. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} et_tokbuf;

static inline void et_tokbuf_put(et_tokbuf *b, const void *d, size_t k) {
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

/* The ids of one encode call: the first `max` are written to ids, count counts them all (saturating). */
typedef struct {
    int32_t *ids;
    int max, count;
} et_tok_out;

static inline void et_tok_emit(et_tok_out *o, int32_t id) {
    if (o->count < o->max) o->ids[o->count] = id;
    if (o->count < INT32_MAX) o->count++;
}

/* Length of the sequence led by byte b, and the code point at s: valid UTF-8 only. */
static inline size_t et_tok_utf8_len(uint8_t b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }
static inline uint32_t et_tok_utf8_cp(const uint8_t *s) {
    if (s[0] < 0x80) return s[0];
    if (s[0] < 0xE0) return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    if (s[0] < 0xF0) return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}
/* Rust char::is_whitespace (Unicode White_Space): what an added token's lstrip/rstrip absorbs, and Strip */
static inline int et_tok_is_ws(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* text[0..len) as valid UTF-8 into dec (emptied first is the caller's business): every invalid sequence becomes
 * U+FFFD (maximal subpart, as a JS / Python string holds it). dec->p is set even for empty text. */
void et_tok_decode_utf8(et_tokbuf *dec, const char *text, size_t len);

/* ------------------------------------------------------------------------------------------------
 * The vocabulary hash: slots[cap] (cap a power of two, -1 = empty) holds ids of tok[] (NUL-terminated strings). */
static inline uint32_t et_tok_hash(const char *p, size_t n) {
    uint32_t h = et_fnv1a32(ET_FNV1A32_INIT, p, n);
    h ^= h >> 16; /* FNV's low bits are weak for short keys: mix before masking */
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    return h;
}
/* The id of the token p[0..n) (which may hold a NUL: then no token), or -1. */
static inline int32_t et_tok_find(char *const *tok, const int32_t *slots, uint32_t cap, const char *p, size_t n) {
    uint32_t m = cap - 1;
    for (uint32_t i = et_tok_hash(p, n) & m;; i = (i + 1) & m) {
        int32_t id = slots[i];
        if (id < 0) return -1;
        const char *t = tok[id];
        if (strncmp(t, p, n) == 0 && t[n] == 0 && !memchr(p, 0, n)) return id;
    }
}
/* Enter tok[id]; a string already present keeps its id unless last_wins (HF's vocab map keeps the last). The
 * table must have a free slot. */
static inline void et_tok_enter(char *const *tok, int32_t *slots, uint32_t cap, int32_t id, int last_wins) {
    const char *t = tok[id];
    size_t n = strlen(t);
    uint32_t m = cap - 1;
    for (uint32_t i = et_tok_hash(t, n) & m;; i = (i + 1) & m) {
        int32_t o = slots[i];
        if (o < 0) {
            slots[i] = id;
            return;
        }
        if (!strcmp(tok[o], t)) {
            if (last_wins) slots[i] = id;
            return;
        }
    }
}
/* A loaded vocabulary as the tokenizer.json readers below see it: ids 0..n-1. */
typedef struct {
    char *const *tok;
    const int32_t *slots;
    uint32_t cap;
    int32_t n;
} et_tok_vocab;

/* ------------------------------------------------------------------------------------------------
 * Added tokens (tokenizer.json's added_tokens, RoBERTa's specials): matched in the raw text before the model. */
typedef struct {
    char *s; /* owned (strdup) */
    size_t len;
    int32_t id;
    int lstrip, rstrip;
} et_tok_added;

/* Append s (not empty: an empty one is skipped) with its id and strip flags to list[*n] (room for it is the
 * caller's); ET_ERR_NOMEM naming `name`. */
et_status et_tok_added_push(et_tok_added *list, int *n, const char *s, int32_t id, int lstrip, int rstrip, const char *name,
                            et_error *err);
/* Free the strings of list[0..n) and list. */
void et_tok_added_free(et_tok_added *list, int n);

/* Split t[0..n) (valid UTF-8) at the added tokens as HF's AddedVocabulary does: at each position the longest
 * token starting there, scanning left to right; lstrip / rstrip absorb the Unicode whitespace before (back to
 * the previous match) / after the token. Each stretch between tokens goes to section(ctx, p, len, at_start)
 * (at_start: p is the start of t), each token's id to out. Stops early when section returns nonzero (its out
 * of memory). */
void et_tok_split_added(const et_tok_added *added, int nadded, const char *t, size_t n, et_tok_out *out,
                        int (*section)(void *ctx, const char *p, size_t len, int at_start), void *ctx);

/* ------------------------------------------------------------------------------------------------
 * tokenizer.json */
static inline const cJSON *et_tok_jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
/* a JSON number as a token id: -1 unless an integer in [0, 2^31) */
static inline int32_t et_tok_jid(const cJSON *j) {
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= 0 && j->valuedouble < 2147483647.0) || j->valuedouble != (double)(int32_t)j->valuedouble)
        return -1;
    return (int32_t)j->valuedouble;
}
/* o[k] if a boolean, else def */
static inline int et_tok_jbool(const cJSON *o, const char *k, int def) {
    const cJSON *j = et_tok_jget(o, k);
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : def;
}

/* The special ids of a tokenizer.json (root) over vocabulary v:
 *   cls, sep: what the post_processor adds around a text: TemplateProcessing of the form "X $A Y" (X and Y
 *     through its special_tokens map when that gives one id, else the vocabulary), RobertaProcessing or
 *     BertProcessing ("cls" / "sep" pairs), or a Sequence of ByteLevel (adds nothing) and one of those;
 *   pad: padding.pad_id, else the token "<pad>";  mask: the token "<mask>", else -1.
 * Errors name `name`: no or another post_processor (ET_ERR_UNSUPPORTED), malformed pairs (ET_ERR_FORMAT), an id
 * outside the vocabulary or no padding token (ET_ERR_MISMATCH). */
et_status et_tok_json_specials(const cJSON *root, const et_tok_vocab *v, int32_t *cls, int32_t *sep, int32_t *pad, int32_t *mask,
                               const char *name, et_error *err);

#endif
