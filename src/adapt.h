/* adapt.h - self-supervised (query, positive) pairs from passages alone, for corpus-only adaptation
 * (`embedtune finetune --adapt` / `--corpus FILE`).
 *
 * Two kinds of pair, both from one passage:
 *   ICT  (inverse cloze task, Lee et al. 2019): a random sentence of the passage is the query and the rest
 *        of the passage the positive; with probability ict_keep the sentence is left in the positive too
 *        (the paper keeps it 10 % of the time, so the model still learns word overlap). Needs >= 2 sentences.
 *   crop (independent cropping, Contriever, Izacard et al. 2021): two spans of the passage's words are drawn
 *        independently, each of length ratio r ~ U[crop_min, crop_max] of the passage (at least
 *        crop_min_words words, at most the passage), at a uniform start; one is the query, the other the
 *        positive. Needs >= min_words words.
 * Each selected passage gives one pair: ICT with probability ict_share when it has >= 2 sentences, else a
 * crop. Passages with fewer than min_words words give none.
 *
 * Sentences (et_adapt_sentences): a sentence ends at '.', '!' or '?' (plus any closing quotes or brackets
 * right after it) that is followed by whitespace or the end of the text, unless the '.' ends a known
 * abbreviation (e.g., i.e., etc., al., fig., vs., mr., mrs., dr., no., cf.) or a single letter (an initial:
 * "J. Smith") glued to its word; a line break also ends a sentence, and so does the end of the title when
 * the passage has one (title_len). A period preceded by a space (" .", as in tokenised text) always ends a
 * sentence. Surrounding whitespace is trimmed; empty sentences are dropped.
 * Words (crops) are maximal runs of non-whitespace bytes; a crop is the original text from its first
 * word's start to its last word's end, so UTF-8 sequences are never split.
 *
 * Determinism: passage i uses its own stream et_rng_fork(seed, i), and the passages used are the first
 * max_pairs of a seeded permutation; the result depends only on (passages, cfg), not on threads. */
#ifndef ET_ADAPT_H
#define ET_ADAPT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum { ET_ADAPT_ICT = 1, ET_ADAPT_CROP = 2 };

typedef struct {
    double ict_share;    /* P(ICT) for a passage with >= 2 sentences (default 0.5) */
    double ict_keep;     /* P(the query sentence stays in the positive) (default 0.1) */
    double crop_min, crop_max; /* crop length as a fraction of the passage's words (default 0.1 .. 0.5) */
    int crop_min_words;  /* shortest crop (default 4) */
    int min_words;       /* passages with fewer words are skipped (default 8) */
    int64_t max_pairs;   /* at most this many pairs (<= 0: one per usable passage) */
    uint64_t seed;       /* default 42 */
} et_adapt_cfg;

void et_adapt_cfg_default(et_adapt_cfg *c);

typedef struct {
    char **query, **positive; /* [n] owned, NUL-terminated */
    int32_t *doc;             /* [n] source passage index */
    unsigned char *kind;      /* [n] ET_ADAPT_ICT | ET_ADAPT_CROP */
    int64_t n;
    int64_t n_ict, n_crop, n_skipped; /* skipped: passages too short (counted over the permutation prefix used) */
} et_adapt_pairs;

/* Sentence spans of text[0..len): writes up to max (start, end) byte offsets into se[2*k], se[2*k+1]
 * (end exclusive, trimmed) and returns the number of sentences (which may exceed max: only max are
 * written). title_len > 0 marks text[0..title_len) as a sentence of its own. */
int64_t et_adapt_sentences(const char *text, size_t len, size_t title_len, size_t *se, int64_t max);

/* Word spans (maximal non-whitespace runs), same convention as et_adapt_sentences. */
int64_t et_adapt_words(const char *text, size_t len, size_t *se, int64_t max);

/* Pairs from passages[0..n) (title_len may be NULL; else title_len[i] as in et_adapt_sentences). */
et_status et_adapt_build(const char *const *passages, const int32_t *title_len, int32_t n, const et_adapt_cfg *cfg,
                         et_adapt_pairs *out, et_error *err);
void et_adapt_pairs_free(et_adapt_pairs *p);

#endif
