/* error.c - see error.h */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

et_status et_fail(et_error *err, et_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

et_status et_error_prefix(et_error *err, const char *fmt, ...) {
    if (!err) return ET_OK;
    char pre[ET_ERRMSG_MAX], old[ET_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t np = strlen(pre);
    if (np > sizeof err->msg - 3) np = sizeof err->msg - 3;
    memcpy(err->msg, pre, np);
    memcpy(err->msg + np, ": ", 2);
    size_t room = sizeof err->msg - np - 3, no = strlen(old);
    if (no > room) no = room;
    memcpy(err->msg + np + 2, old, no);
    err->msg[np + 2 + no] = 0;
    return err->code;
}

void et_error_clear(et_error *err) {
    if (err) {
        err->code = ET_OK;
        err->msg[0] = 0;
    }
}

const char *et_status_name(et_status s) {
    switch (s) {
    case ET_OK: return "ok";
    case ET_ERR_IO: return "i/o error";
    case ET_ERR_FORMAT: return "format error";
    case ET_ERR_MISMATCH: return "mismatch";
    case ET_ERR_ARG: return "bad argument";
    case ET_ERR_NOMEM: return "out of memory";
    case ET_ERR_NUMERIC: return "numeric error";
    case ET_ERR_UNSUPPORTED: return "unsupported";
    case ET_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}

void *et_malloc(size_t n, const char *what, et_error *err) {
    void *p = malloc(n ? n : 1);
    if (!p) et_fail(err, ET_ERR_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *et_calloc(size_t count, size_t size, const char *what, et_error *err) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) et_fail(err, ET_ERR_NOMEM, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}
