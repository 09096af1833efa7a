/* index.h - a search index built ahead of time (`embedtune index`), read back by `search --index`,
 * the Worker and the wasm package: the corpus's document embeddings (int8 or f16), its BM25 index
 * (bm25.h's serialized form) and the doc ids (and texts), so that dense, BM25 and hybrid search
 * (hybrid.h, with the model folder's retrieval.json fusion) run without re-encoding the corpus.
 *
 * File format (version 1), little-endian, every section padded with zeros to a multiple of 8 bytes:
 *   header, 64 bytes:
 *     0  char[8] "ETINDEX\0"     8  u32 version = 1       12 u32 dtype (0 none, 1 f16, 2 int8)
 *     16 i32 ndocs               20 i32 dim (0 iff dtype none)
 *     24 u32 flags (bit 0: texts stored; other bits 0)  28 u32 max_len the docs were encoded with
 *     32 u64 ids_bytes   40 u64 texts_bytes   48 u64 emb_bytes   56 u64 bm25_bytes   (unpadded sizes)
 *   ids:   ndocs NUL-terminated UTF-8 strings
 *   texts: ndocs NUL-terminated UTF-8 strings (the text BM25 and the model saw: title + " " + text), or none
 *   emb:   f32 probe[dim]: et_index_probe, the model's L2-normalised float embedding of ET_INDEX_PROBE (a
 *          different model is refused);
 *          f16: u16 e[ndocs*dim];  int8: f32 scale[ndocs], i8 q[ndocs*dim], e = scale * q with
 *          scale = max|e| / 127 per row and q = round(e / scale)  (the rows were L2-normalised first)
 *   bm25:  et_bm25_serialize (k1, b and the query-term rule included)
 * On read the embeddings are decoded to f32 and L2-normalised again (the cosine of the stored vectors).
 * Memory once read: ndocs * dim * 4 bytes for the embeddings + the BM25 postings + the strings. */
#ifndef ET_INDEX_H
#define ET_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include "bert.h"
#include "error.h"
#include "hybrid.h"
#include "threads.h"
#include "tokenizer.h"

#define ET_INDEX_VERSION 1
#define ET_INDEX_PROBE "embedtune index probe: does this model match the one that built the index?"
#define ET_INDEX_PROBE_MIN_COS 0.999

typedef enum { ET_INDEX_NONE = 0, ET_INDEX_F16 = 1, ET_INDEX_INT8 = 2 } et_index_dtype;

typedef struct {
    int32_t nd, dim;
    et_index_dtype dtype;
    int32_t max_len;
    const char **id;     /* [nd] (into the owned strings) */
    const char **text;   /* [nd] or NULL when the texts were not stored */
    float *probe;        /* [dim] (owned) */
    et_hybrid_index ix;  /* D [nd, dim] decoded (owned; NULL for dtype none), bm (owned); m, tok are set by
                            et_index_attach; docs = text */
    char *strings;       /* owned arena of ids and texts */
} et_index;

/* "int8" | "f16" | "none" <-> dtype (ET_ERR_ARG otherwise). */
et_status et_index_dtype_parse(const char *s, et_index_dtype *out, et_error *err);
const char *et_index_dtype_name(et_index_dtype d);

/* Write ix (D [nd, dim] L2-normalised, may be NULL only for dtype none; bm required) atomically to path.
 * ids[nd] required; texts[nd] may be NULL (not stored). probe [dim]: the model's embedding of
 * ET_INDEX_PROBE (NULL for dtype none). */
et_status et_index_write(const char *path, const et_hybrid_index *ix, const char *const *ids, const char *const *texts,
                         et_index_dtype dtype, int32_t max_len, const float *probe, et_error *err);

/* Read an index from memory (name for messages; buf is not kept). Every count and offset is checked:
 * ET_ERR_FORMAT naming the file and the part. */
et_status et_index_read_mem(const void *buf, size_t len, const char *name, et_index *out, et_error *err);
/* Read an index file (through et_index_read_mem). */
et_status et_index_read(const char *path, et_index *out, et_error *err);
void et_index_free(et_index *x);

/* The model's probe, what an index stores and et_index_attach compares: ET_INDEX_PROBE encoded (batch 1, max_len
 * tokens; <= 0: 256) in float whatever m->int8 says, L2-normalised, into out [hidden]. int8 inference of the same
 * weights (--int8, or an int8 export, whose weights are decoded to float at load) is the same model: its probe is
 * the float one (an int8 export's differs only by the weights' rounding). eo may carry a memory budget (its batch,
 * max_len, progress, dim and cache are not used). */
et_status et_index_probe(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo, int32_t max_len,
                         float *out, et_error *err);

/* Use model m (with tok) for queries on x: computes its probe (et_index_probe, max_len x->max_len) and refuses a
 * model whose probe differs from the stored one (cosine < ET_INDEX_PROBE_MIN_COS: tools/index_probe_table.py
 * measures which LoRA adapters that refuses and what a stale index costs) or whose dim differs. m NULL: BM25 only.
 * eo may carry a memory budget. */
et_status et_index_attach(et_index *x, const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                          et_error *err);

#endif
