/* hf.h - load and save Hugging Face BertModel / sentence-transformers folders.
 *
 * A folder holds (the files sentence-transformers writes):
 *   config.json                      BertModel config (model_type "bert", hidden_act "gelu", absolute positions),
 *                                    or RobertaModel / XLMRobertaModel ("roberta" / "xlm-roberta": positions
 *                                    start at pad_token_id + 1, usually one token type)
 *   vocab.txt                        one WordPiece token per line; the count must equal config vocab_size
 *   tokenizer.json                   (instead of vocab.txt) a Hugging Face Unigram tokenizer (sentencepiece.h)
 *   sentencepiece.bpe.model          (or spiece.model / sentencepiece.model) a sentencepiece Unigram model;
 *                                    RoBERTa-family folders use the XLM-R (fairseq) ids
 *   model.safetensors                F32 / F16 / BF16 (F64 also read); names with or without "bert."
 *                                    ("roberta." for the RoBERTa family)
 *   tokenizer_config.json            optional: do_lower_case, strip_accents, model_max_length
 *   special_tokens_map.json          written, not read
 *   modules.json                     optional: Transformer (+ Pooling) (+ Normalize) module list
 *   1_Pooling/config.json            pooling_mode_mean_tokens | pooling_mode_cls_token (others: unsupported)
 *   sentence_bert_config.json        optional: max_seq_length, do_lower_case
 *   config_sentence_transformers.json  written, not read
 *   2_Normalize/                     present (empty) when the model L2-normalizes
 *
 * Without modules.json (a plain BertModel folder) the model gets MEAN pooling and no normalization.
 * Tensors the model does not use (cls.predictions.*, embeddings.position_ids, ...) are ignored and
 * listed in et_hf_info.ignored; pooler.dense.* is kept (has_pooler = 1) and saved back.
 * Errors name the file and the field or tensor, e.g.
 *   "m/model.safetensors: tensor 'encoder.layer.1.intermediate.dense.weight' has shape [64, 32] but
 *    config.json implies [128, 32]". */
#ifndef ET_HF_H
#define ET_HF_H

#include <stddef.h>
#include "bert.h"
#include "error.h"
#include "fileio.h"
#include "threads.h"
#include "tokenizer.h"

/* strip_accents as tokenizer_config.json says it (et_hf_info, et_hf_save_opts) */
enum { ET_STRIP_NULL = 0, ET_STRIP_TRUE = 1, ET_STRIP_FALSE = 2 };

typedef struct {
    int max_seq_length;  /* sentence_bert_config.json max_seq_length, else tokenizer_config.json
                            model_max_length, else max_position_embeddings; never above the latter */
    int do_lower_case;   /* tokenizer_config.json do_lower_case (default 1) OR sentence_bert_config's */
    int strip_accents;   /* tokenizer_config.json strip_accents: ET_STRIP_NULL (follow do_lower_case), ET_STRIP_TRUE,
                            ET_STRIP_FALSE; a vocab.txt tokenizer from et_hf_load_tokenizer gets both (et_tokenizer_set_case) */
    int has_modules;     /* modules.json was present (a sentence-transformers folder) */
    int src_dtype;       /* et_st_dtype of the word embeddings in the file */
    int bert_prefix;     /* tensor names carried the "bert." prefix */
    int n_ignored;       /* tensors in the file the model does not use */
    char ignored[512];   /* their names, comma separated (truncated with "...") */
    char transformer_dir[256]; /* modules.json's Transformer path: "" normally; old sentence-transformers
                                  folders keep config.json, vocab.txt and the weights in e.g. "0_Transformer" */
} et_hf_info;

/* The folder's tokenizer, chosen from its own files (in the Transformer folder):
 *   a BERT model with vocab.txt              -> WordPiece (tokenizer.h)
 *   else tokenizer.json                      -> SentencePiece Unigram, Hugging Face tokenizers semantics
 *   else sentencepiece.bpe.model / spiece.model / sentencepiece.model
 *                                            -> SentencePiece, sentencepiece semantics (XLM-R ids for RoBERTa-family models)
 *   else vocab.txt                           -> WordPiece
 * The tokenizer must not be larger than cfg->vocab_size (WordPiece: equal; a padded embedding table, as
 * multilingual-e5's 250,037 rows for 250,002 tokens, is fine). The file used is written to path_out
 * (cap bytes; may be NULL): pass it as et_hf_save_opts.vocab_path to save the folder with it. */
et_tokenizer *et_hf_load_tokenizer(const char *dir, const et_hf_info *info, const et_bert_config *cfg, char *path_out, size_t cap,
                                   et_error *err);

/* Give a WordPiece tokenizer the folder's casing (do_lower_case, strip_accents); et_hf_load_tokenizer does it. */
void et_hf_apply_case(et_tokenizer *tok, const et_hf_info *info);

/* A model folder loaded for use: the encoder, the folder's tokenizer (et_hf_load_tokenizer) and settings, and a thread
 * pool. The one loader of the command's model (src/cli/), finetune's model and expert models. Zero-initialised or
 * partly loaded (a failed et_hf_model_load), et_hf_model_free releases it. */
typedef struct {
    et_bert model;
    et_tokenizer *tok;
    et_hf_info info;
    et_pool *pool;              /* `threads` workers (0: all cores) */
    char tok_path[ET_PATH_MAX]; /* the file the tokenizer came from (vocab.txt, tokenizer.json, a .model) */
} et_hf_model;

et_status et_hf_model_load(const char *dir, int threads, et_hf_model *m, et_error *err);
void et_hf_model_free(et_hf_model *m);
/* The default token cap of encoding: the folder's max_seq_length (256 when it gives none), at most the model's. */
int et_hf_model_max_len(const et_hf_model *m);

/* Load a folder into `model` (allocated here; free with et_bert_free). */
et_status et_hf_load(const char *dir, et_bert *model, et_error *err);
/* Same, also filling `info` (may be NULL). */
et_status et_hf_load_ex(const char *dir, et_bert *model, et_hf_info *info, et_error *err);

/* The files of a folder already in memory (the wasm build). Optional ones are NULL when absent.
 * Buffers are only read during the call. Error messages use the plain file names. */
typedef struct {
    const char *config_json; size_t config_len;                     /* required */
    const char *vocab_txt; size_t vocab_len;                         /* required */
    const void *safetensors; size_t safetensors_len;                 /* required */
    const char *modules_json; size_t modules_len;                    /* optional */
    const char *pooling_json; size_t pooling_len;                    /* 1_Pooling/config.json; needed if modules.json names a Pooling module */
    const char *sbert_config_json; size_t sbert_config_len;          /* optional sentence_bert_config.json */
    const char *tokenizer_config_json; size_t tokenizer_config_len;  /* optional */
} et_hf_buffers;

et_status et_hf_load_buffers(const et_hf_buffers *b, et_bert *model, et_hf_info *info, et_error *err);

/* Count the tokens of a vocab.txt buffer: its lines (LF or CRLF; a final line without '\n'
 * counts; blank lines at the very end are ignored, as et_tokenizer_load_vocab does). */
size_t et_hf_vocab_count(const char *buf, size_t len);

typedef struct {
    int dtype;               /* et_st_dtype: ET_ST_F32 (default, 0), ET_ST_F16 or ET_ST_BF16 */
    const char *vocab_path;  /* copy vocab.txt from this file, or ... (a tokenizer.json or sentencepiece .model path:
                                that file is copied under its own name, with the tokenizer files beside it,
                                tokenizer_config.json included, instead of writing BERT's) */
    const char *vocab_buf;   /* ... from this buffer (vocab_len bytes) */
    size_t vocab_len;
    int max_seq_length;      /* sentence_bert_config.json; 0 = max_position_embeddings */
    int do_lower_case;       /* tokenizer_config.json; -1 = default (true) */
    int strip_accents;       /* tokenizer_config.json: ET_STRIP_NULL (0: a zeroed struct), ET_STRIP_TRUE, ET_STRIP_FALSE */
    int int8;                /* 1: the int8 export (docs/int8.md): each dense layer's six Linear weights are written as I8
                                codes [out, in] plus "NAME_scale" [out] (per output channel, kernels_int8.h), the rest in
                                dtype; et_hf_load reads such a file back (dequantized) with et_bert.int8 set */
} et_hf_save_opts;

/* Write a complete sentence-transformers folder (creating `dir`), every file atomically.
 * opts must give vocab_path or vocab_buf (a folder without vocab.txt does not load); its token
 * count must equal the model's vocab_size (checked before anything is written). Tensor names are
 * written without the "bert." prefix, as BertModel.save_pretrained does. Saving over the folder the
 * model was loaded from is fine (the vocab is read first; every file is replaced atomically). */
et_status et_hf_save(const char *dir, const et_bert *m, const et_hf_save_opts *opts, et_error *err);

#endif
