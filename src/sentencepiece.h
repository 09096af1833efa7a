/* sentencepiece.h - SentencePiece Unigram tokenization, two exact faces:
 *
 *  1. Hugging Face tokenizer.json with a "Unigram" model (XLM-R, multilingual-e5, BGE-M3,
 *     paraphrase-multilingual-*): identical ids to Rust tokenizers 0.22. Pipeline per text:
 *       UTF-8 decode (invalid bytes -> U+FFFD, maximal subpart, as a JS/Python string would hold them)
 *       -> added tokens with normalized=false (specials) split out of the raw text, leftmost-longest,
 *          lstrip/rstrip absorbing Unicode whitespace
 *       -> per remaining section: normalizers in order: Precompiled (the sentencepiece charsmap, a
 *          darts-clone double array, applied per extended grapheme cluster as HF does: a cluster of
 *          < 6 bytes is replaced by the rule of its SHORTEST matching prefix, else per code point),
 *          Replace (a string, or a regex "c{n,}"), Strip
 *       -> Metaspace (' ' -> U+2581, prefix U+2581 by prepend_scheme / legacy add_prefix_space,
 *          split before each U+2581)
 *       -> Unigram Viterbi per word over the vocab scores (double sums; ties keep the shorter piece;
 *          unknown characters score min_score - 10 and consecutive ones fuse into one unk), a fused
 *          unknown string becomes its <0xXX> pieces with byte_fallback, else unk_id.
 *     Supported post-processors (for [CLS]/[SEP]): TemplateProcessing "X $A Y", RobertaProcessing,
 *     BertProcessing. Other normalizers / pre-tokenizers are rejected with a message naming them.
 *
 *  2. A sentencepiece .model protobuf (unigram): identical ids to the sentencepiece library
 *     (spm.encode of the decoded string). normalizer_spec: longest-prefix charsmap rewrite per
 *     position, remove_extra_whitespaces (leading / trailing / repeated), add_dummy_prefix,
 *     escape_whitespaces; Viterbi over the whole text with float sums over NORMAL pieces; unknown
 *     runs fused; byte_fallback to <0xXX> pieces. Literal "<s>" etc. in the text are plain text.
 *     Id layout: ET_SPM_IDS_PLAIN (the .model's ids; cls/sep/pad = bos/eos/pad pieces) or
 *     ET_SPM_IDS_FAIRSEQ (transformers' XLMRobertaTokenizer: <s>=0 <pad>=1 </s>=2 <unk>=3, piece i
 *     (i >= 3) = i + 1, <mask> = last).
 *
 * Known differences between the two references (each face follows its own): HF keeps a trailing
 * space as a final U+2581 token and does not drop leading spaces after an added token; HF applies
 * the charsmap per grapheme cluster (e.g. "A\u0301" full-width becomes "A"), sentencepiece per longest
 * prefix; sentencepiece does not treat "<s>" in text as special.
 *
 * Thread safety: a loaded et_spm is immutable; encode may run concurrently. Encoding allocates
 * O(text length) scratch per call (freed before return). */
#ifndef ET_SENTENCEPIECE_H
#define ET_SENTENCEPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct et_spm et_spm;

enum { ET_SPM_IDS_PLAIN = 0, ET_SPM_IDS_FAIRSEQ = 1 };

/* From tokenizer.json bytes (`name` is used in messages). Fails with ET_ERR_UNSUPPORTED when the
 * model is not Unigram (e.g. "WordPiece", "BPE"): callers may try another reader then. */
et_spm *et_spm_from_tokenizer_json(const char *json, size_t len, const char *name, et_error *err);
/* From a sentencepiece .model (serialized ModelProto). */
et_spm *et_spm_from_model(const void *buf, size_t len, int layout, const char *name, et_error *err);
void et_spm_free(et_spm *s);

int et_spm_vocab_size(const et_spm *s);
int32_t et_spm_token_id(const et_spm *s, const char *token);  /* -1 if absent */
const char *et_spm_token(const et_spm *s, int32_t id);         /* NULL if out of range */
int32_t et_spm_unk_id(const et_spm *s);
int32_t et_spm_cls_id(const et_spm *s);
int32_t et_spm_sep_id(const et_spm *s);
int32_t et_spm_pad_id(const et_spm *s);
int32_t et_spm_mask_id(const et_spm *s); /* -1 if none */

/* Ids of `len` bytes of text without <s>/</s>. Writes at most `max` ids; returns the total count
 * (may exceed max), or -1 on a bad argument or when scratch memory cannot be allocated. */
int et_spm_encode(const et_spm *s, const char *text, size_t len, int32_t *ids, int max);

#endif
