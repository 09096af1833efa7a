/* error.h - error codes and messages that say what went wrong (SQLite style).
 *
 * Every fallible public call takes an `et_error *err` (may be NULL) and returns an et_status.
 * On failure the message names the file, line or field, e.g.
 *   "models/x/config.json: field 'hidden_size': expected a positive integer, got -3".
 * No global mutable state: the error lives in the caller's struct. */
#ifndef ET_ERROR_H
#define ET_ERROR_H

#include <stddef.h>

typedef enum {
    ET_OK = 0,
    ET_ERR_IO = 1,        /* cannot open / read / write / rename a file */
    ET_ERR_FORMAT = 2,    /* a file is malformed (bad header, truncated, bad JSON, bad UTF-8) */
    ET_ERR_MISMATCH = 3,  /* well-formed but inconsistent: missing tensor, wrong shape, config/vocab */
    ET_ERR_ARG = 4,       /* a bad argument or option value */
    ET_ERR_NOMEM = 5,     /* allocation failed or over the memory budget */
    ET_ERR_NUMERIC = 6,   /* NaN/Inf met */
    ET_ERR_UNSUPPORTED = 7,
    ET_ERR_CANCELLED = 8
} et_status;

#define ET_ERRMSG_MAX 1024

typedef struct et_error {
    et_status code;
    char msg[ET_ERRMSG_MAX];
} et_error;

/* Record an error (printf-style) and return `code`. Safe with err == NULL. */
et_status et_fail(et_error *err, et_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepend context to an existing message: "ctx: old message". Returns err->code. */
et_status et_error_prefix(et_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void et_error_clear(et_error *err);
const char *et_status_name(et_status s);

/* Checked allocation helpers: on failure they record ET_ERR_NOMEM naming `what`. */
void *et_malloc(size_t n, const char *what, et_error *err);
void *et_calloc(size_t count, size_t size, const char *what, et_error *err);

#endif
