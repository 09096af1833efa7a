/* bpe.h - byte-level BPE tokenization (GPT-2 / RoBERTa style), identical ids to Hugging Face's Rust
 * tokenizers 0.22 for the two ways a folder ships it:
 *
 *  1. tokenizer.json with a "BPE" model and a "ByteLevel" pre-tokenizer (RoBERTa, GPT-2, ModernBERT-like).
 *  2. vocab.json + merges.txt (the "slow" GPT2Tokenizer / RobertaTokenizer files) read as transformers'
 *     RobertaTokenizerFast converts them: ByteLevel(add_prefix_space from tokenizer_config.json), no
 *     unk token in the model, <s> </s> <unk> <pad> <mask> as special added tokens (<mask> with lstrip),
 *     RobertaProcessing <s> ... </s>.
 *
 * Pipeline per text:
 *   UTF-8 decode (invalid bytes -> U+FFFD, maximal subpart, as a JS/Python string would hold them)
 *   -> added tokens split out of the raw text (leftmost-longest; lstrip/rstrip absorb Unicode whitespace)
 *   -> per remaining section: ByteLevel pre-tokenizer: a ' ' is prepended when add_prefix_space and the
 *      section does not start with ' '; the section is split by GPT-2's regex
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      (Oniguruma's classes: \p{L} = Lu Ll Lt Lm Lo, \p{N} = Nd Nl No, \s = U+0009-000D, U+0085, Zs Zl Zp;
 *      from unicode_tables.h, Unicode ET_UNICODE_VERSION), unless use_regex is false;
 *      each piece's bytes become GPT-2's byte-to-unicode characters
 *   -> BPE per piece as HF's Word::merge_all: the pair of lowest merge rank (then leftmost) is merged
 *      first, from a queue whose stale entries are dropped as HF drops them; ignore_merges (a piece that
 *      is a vocab token is taken whole); characters not in the vocab -> <0xXX> with byte_fallback, else
 *      unk_token (consecutive ones fused with fuse_unk), else dropped.
 * Post-processors for [CLS]/[SEP]: RobertaProcessing, BertProcessing, TemplateProcessing "X $A Y", or a
 * Sequence holding ByteLevel and one of those. A normalizer other than null, a continuing_subword_prefix
 * or end_of_word_suffix, dropout, or another pre-tokenizer are rejected with a message naming them.
 *
 * Thread safety: a loaded et_bpe is immutable; encode may run concurrently. Encoding allocates
 * O(text length) scratch per call (freed before return). */
#ifndef ET_BPE_H
#define ET_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct et_bpe et_bpe;

/* From tokenizer.json bytes (`name` is used in messages). Fails with ET_ERR_UNSUPPORTED when the model
 * is not "BPE" (callers may try another reader) or uses a feature listed above as rejected. */
et_bpe *et_bpe_from_tokenizer_json(const char *json, size_t len, const char *name, et_error *err);

/* From vocab.json ({"token": id, ...}, ids 0..n-1 each once) and merges.txt ("a b" per line, a first line
 * "#version..." skipped). `add_prefix_space`: tokenizer_config.json's (0 when absent). Names in messages:
 * vocab_name, merges_name. Needs "<s>", "</s>" and "<pad>" in the vocab. */
et_bpe *et_bpe_from_files(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len, int add_prefix_space,
                          const char *vocab_name, const char *merges_name, et_error *err);
void et_bpe_free(et_bpe *b);

int et_bpe_vocab_size(const et_bpe *b);
int32_t et_bpe_token_id(const et_bpe *b, const char *token); /* -1 if absent */
const char *et_bpe_token(const et_bpe *b, int32_t id);        /* NULL if out of range */
int32_t et_bpe_unk_id(const et_bpe *b);                       /* -1 if none */
int32_t et_bpe_cls_id(const et_bpe *b);
int32_t et_bpe_sep_id(const et_bpe *b);
int32_t et_bpe_pad_id(const et_bpe *b);
int32_t et_bpe_mask_id(const et_bpe *b); /* -1 if none */

/* Ids of `len` bytes of text without <s>/</s>. Writes at most `max` ids; returns the total count (may
 * exceed max), or -1 on a bad argument or when scratch memory cannot be allocated. */
int et_bpe_encode(const et_bpe *b, const char *text, size_t len, int32_t *ids, int max);

#endif
