/* fileio.h - small, careful file helpers: read a whole file (with a size limit), write a file
 * atomically (temp file in the same directory + fsync + rename), mkdir -p, path join.
 *
 * Atomic write: readers of `path` see either the old file or the complete new one, never a torn
 * file; a crash leaves at most a stray "<path>.tmp-N" next to it. */
#ifndef ET_FILEIO_H
#define ET_FILEIO_H

#include <stddef.h>
#include <stdio.h>
#include "error.h"

#define ET_PATH_MAX 4096

/* Read all of `path` into a malloc'd buffer (NUL-terminated; the NUL is not counted in *len).
 * Fails with ET_ERR_IO if it cannot be opened/read, ET_ERR_FORMAT if larger than max_bytes. */
et_status et_read_file(const char *path, size_t max_bytes, char **out, size_t *len, et_error *err);

/* 1 if `path` exists and is a regular file, else 0. */
int et_file_exists(const char *path);
/* 1 if `path` exists and is a directory, else 0. */
int et_dir_exists(const char *path);

/* mkdir -p (mode 0777 & ~umask). ET_OK if it already exists as a directory. */
et_status et_mkdir_p(const char *path, et_error *err);

/* out = a "/" b (b used as-is if absolute or a is empty/"."). ET_ERR_ARG if it does not fit. */
et_status et_path_join(char *out, size_t cap, const char *a, const char *b, et_error *err);

/* Streaming atomic writer, for files too big to build in memory (model.safetensors). */
typedef struct {
    FILE *f;
    char path[ET_PATH_MAX];
    char tmp[ET_PATH_MAX + 32];
} et_atomic_file;

et_status et_atomic_open(et_atomic_file *af, const char *path, et_error *err);
et_status et_atomic_write(et_atomic_file *af, const void *buf, size_t n, et_error *err);
/* flush + fsync + close + rename over `path` (+ best-effort fsync of the directory). On failure
 * the temp file is removed. */
et_status et_atomic_commit(et_atomic_file *af, et_error *err);
/* close and remove the temp file (safe to call after a failed write or twice). */
void et_atomic_abort(et_atomic_file *af);

/* Remove the temp files a killed writer left behind ("NAME.tmp-N", N digits, as et_atomic_open makes)
 * in `dir` and, for depth > 0, in its subfolders. Call before writing into a folder that may hold
 * a killed run's half-written output (checkpoints, saved models). A missing dir is not an error. */
et_status et_remove_stale_tmp(const char *dir, int depth, et_error *err);

/* Remove a file, or a folder with everything in it (symbolic links are removed, not followed). A missing path is
 * not an error; the first entry that cannot be removed stops it and is named in the error. */
et_status et_rm_tree(const char *path, et_error *err);

/* One-shot atomic write of a buffer. */
et_status et_write_file_atomic(const char *path, const void *data, size_t len, et_error *err);

#endif
