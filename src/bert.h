/* bert.h - the BERT encoder: configuration, parameters in ONE contiguous buffer with a table of
 * named views (Hugging Face BertModel names), and the forward/backward passes.
 *
 * Shapes: V vocab, P max positions, TV token types, C hidden, L layers, NH heads, I intermediate.
 * HF Linear weights are [out, in]. */
#ifndef ET_BERT_H
#define ET_BERT_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "threads.h"

#define ET_MAX_LAYERS 64
#define ET_NAME_MAX 128

typedef enum { ET_POOL_MEAN = 0, ET_POOL_CLS = 1 } et_pooling;

typedef struct {
    int vocab_size;        /* V  */
    int hidden_size;       /* C  */
    int num_layers;        /* L  */
    int num_heads;         /* NH */
    int intermediate_size; /* I  */
    int max_position;      /* P  */
    int type_vocab_size;   /* TV */
    float layer_norm_eps;
    float hidden_dropout;  /* hidden_dropout_prob */
    float attn_dropout;    /* attention_probs_dropout_prob */
    int pad_token_id;
    int has_pooler;        /* pooler.dense present in the file (kept and saved back, unused) */
    et_pooling pooling;    /* from 1_Pooling/config.json; mean by default */
    int normalize;         /* L2-normalize the pooled output (sentence-transformers Normalize) */
} et_bert_config;

/* Pointers into a parameter (or gradient) buffer; the same struct serves both, llm.c style. */
typedef struct {
    float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* [C,C], [C] */
    float *ao_w, *ao_b;                        /* attention.output.dense [C,C], [C] */
    float *ln1_w, *ln1_b;                      /* attention.output.LayerNorm [C] */
    float *i_w, *i_b;                          /* intermediate.dense [I,C], [I] */
    float *o_w, *o_b;                          /* output.dense [C,I], [C] */
    float *ln2_w, *ln2_b;                      /* output.LayerNorm [C] */
} et_bert_layer_params;

typedef struct {
    float *wte;               /* embeddings.word_embeddings.weight [V,C] */
    float *wpe;               /* embeddings.position_embeddings.weight [P,C] */
    float *wtt;               /* embeddings.token_type_embeddings.weight [TV,C] */
    float *emb_ln_w, *emb_ln_b; /* embeddings.LayerNorm [C] */
    et_bert_layer_params layer[ET_MAX_LAYERS];
    float *pool_w, *pool_b;   /* pooler.dense [C,C], [C]; NULL unless has_pooler */
} et_bert_params;

/* One named tensor of the model, as stored in model.safetensors (without the "bert." prefix). */
typedef struct {
    char name[ET_NAME_MAX];
    int ndim;
    int64_t shape[2];
    size_t offset; /* in floats, into the parameter buffer */
    size_t numel;
} et_tensor_view;

/* Validate a config (positive sizes, C % NH == 0, L <= ET_MAX_LAYERS, ...). */
et_status et_bert_config_check(const et_bert_config *cfg, et_error *err);

/* The table of tensors for a config, in a fixed order. Returns the count; writes at most `max`
 * entries to `out` (out may be NULL to count). total_floats receives the buffer size. */
int et_bert_tensor_table(const et_bert_config *cfg, et_tensor_view *out, int max, size_t *total_floats);

/* Point `p` at the tensors inside `base` (a buffer of total_floats floats). */
void et_bert_params_view(const et_bert_config *cfg, float *base, et_bert_params *p);

typedef struct {
    et_bert_config cfg;
    float *params;     /* one contiguous buffer */
    size_t n_params;   /* floats */
    et_tensor_view *tensors;
    int n_tensors;
    et_bert_params w;  /* views into params */
} et_bert;

/* Allocate a model with zeroed parameters for `cfg`. */
et_status et_bert_alloc(et_bert *m, const et_bert_config *cfg, et_error *err);
void et_bert_free(et_bert *m);
/* Find a tensor by HF name (with or without "bert."); NULL if absent. */
const et_tensor_view *et_bert_find(const et_bert *m, const char *name);

#endif
