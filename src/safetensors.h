/* safetensors.h - read and write .safetensors files (https://github.com/huggingface/safetensors).
 *
 * Layout: u64 little-endian N, then N bytes of JSON header
 *   {"__metadata__": {...}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * then the data block; offsets are relative to the start of the data block.
 *
 * The reader validates everything before any value is used: header length vs file size, JSON,
 * known dtype, shape (non-negative, no overflow), offsets inside the data block, end-begin equal to
 * numel * dtype size, no two tensors overlapping, no duplicate names. Every error names the file
 * (the `label` given) and the tensor or field. Values are converted to f32 on read from F32, F16,
 * BF16 and F64; other dtypes (I64, I32, U8, BOOL, ...) are accepted in the header (e.g. the
 * "embeddings.position_ids" buffer of older checkpoints) but cannot be read as floats.
 *
 * The writer writes F32 (or F16 / BF16, rounding to nearest even) with the header padded with
 * spaces to a multiple of 8 bytes, keys sorted, "__metadata__": {"format": "pt"}, as the reference
 * implementation does; the file is written atomically. */
#ifndef ET_SAFETENSORS_H
#define ET_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define ET_ST_MAX_DIMS 8
#define ET_ST_MAX_HEADER (100u * 1024u * 1024u) /* the reference implementation's limit */

typedef enum {
    ET_ST_F32 = 0, ET_ST_F16, ET_ST_BF16, ET_ST_F64,
    /* header-only dtypes: validated, not readable as floats */
    ET_ST_I64, ET_ST_I32, ET_ST_I16, ET_ST_I8, ET_ST_U64, ET_ST_U32, ET_ST_U16, ET_ST_U8, ET_ST_BOOL,
    ET_ST_F8_E4M3, ET_ST_F8_E5M2,
    ET_ST_NDTYPES
} et_st_dtype;

const char *et_st_dtype_name(et_st_dtype d);
size_t et_st_dtype_size(et_st_dtype d);
/* parse "F32", "f16", "bf16", "float32", "float16", "bfloat16" (for CLI options); -1 if unknown */
int et_st_dtype_parse(const char *s);

typedef struct {
    char *name;                     /* owned */
    et_st_dtype dtype;
    int ndim;
    int64_t shape[ET_ST_MAX_DIMS];
    size_t numel;
    size_t begin, end;              /* byte offsets into the data block */
} et_st_tensor;

typedef struct {
    char label[512];                /* file name used in error messages */
    const unsigned char *data;      /* start of the data block */
    size_t data_len;
    et_st_tensor *t;                /* sorted by name */
    int n;
    /* storage */
    void *map;                      /* mmap'd or malloc'd whole file (NULL if borrowed) */
    size_t map_len;
    int is_mmap;
} et_st_file;

/* Open a file (mmap where available, else read it whole; at most max_bytes, 0 = no limit). */
et_status et_st_open(et_st_file *f, const char *path, size_t max_bytes, et_error *err);
/* Parse a buffer already in memory. The buffer is borrowed and must outlive `f`. */
et_status et_st_parse(et_st_file *f, const void *buf, size_t len, const char *label, et_error *err);
void et_st_close(et_st_file *f);

const et_st_tensor *et_st_find(const et_st_file *f, const char *name);
/* Convert tensor `t` to f32 into out[0..numel). */
et_status et_st_read_f32(const et_st_file *f, const et_st_tensor *t, float *out, et_error *err);
/* Copy an I8 tensor's bytes into out[0..numel) (another dtype: ET_ERR_UNSUPPORTED naming the tensor). */
et_status et_st_read_i8(const et_st_file *f, const et_st_tensor *t, int8_t *out, et_error *err);

/* One tensor to write. */
typedef struct {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[ET_ST_MAX_DIMS];
    const int8_t *i8;   /* non-NULL: the tensor is written as I8 from these bytes (data unused) */
    int f32;            /* 1: written as F32 whatever the file's dtype (the int8 export's scales) */
} et_st_out;

/* Write tensors (sorted by name in the file) as dtype F32, F16 or BF16 (those with i8 set: I8, f32 set: F32), atomically. */
et_status et_st_write(const char *path, const et_st_out *tensors, int n, et_st_dtype dtype, et_error *err);

/* scalar conversions (round to nearest even; NaN stays NaN, overflow -> Inf) */
uint16_t et_f32_to_f16(float f);
float et_f16_to_f32(uint16_t h);
uint16_t et_f32_to_bf16(float f);
float et_bf16_to_f32(uint16_t h);

#endif
