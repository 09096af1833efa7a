/* fileio.c - see fileio.h */
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

et_status et_read_file(const char *path, size_t max_bytes, char **out, size_t *len, et_error *err) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return et_fail(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return et_fail(err, ET_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(f);
        return et_fail(err, ET_ERR_IO, "%s: is a directory, expected a file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)max_bytes || (uint64_t)st.st_size >= (uint64_t)SIZE_MAX) {
        fclose(f);
        return et_fail(err, ET_ERR_FORMAT, "%s: file is %lld bytes; the limit for this file is %zu bytes", path,
                       (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = et_malloc(n + 1, path, err);
    if (!buf) { fclose(f); return ET_ERR_NOMEM; }
    size_t got = 0;
    while (got < n) {
        size_t r = fread(buf + got, 1, n - got, f);
        if (r == 0) break;
        got += r;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || got != n) {
        free(buf);
        return et_fail(err, ET_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return ET_OK;
}

int et_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int et_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

et_status et_mkdir_p(const char *path, et_error *err) {
    char buf[ET_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0) return et_fail(err, ET_ERR_ARG, "mkdir: empty path");
    if (n >= sizeof buf) return et_fail(err, ET_ERR_ARG, "mkdir: path too long: %.100s...", path);
    memcpy(buf, path, n + 1);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            return et_fail(err, ET_ERR_IO, "%s: cannot create directory: %s", buf, strerror(e));
        }
        if (!et_dir_exists(buf)) return et_fail(err, ET_ERR_IO, "%s: exists and is not a directory", buf);
        buf[i] = c;
    }
    return ET_OK;
}

et_status et_path_join(char *out, size_t cap, const char *a, const char *b, et_error *err) {
    int n;
    if (!a || !a[0] || (a[0] == '.' && a[1] == 0) || b[0] == '/') n = snprintf(out, cap, "%s", b);
    else if (!b[0]) n = snprintf(out, cap, "%s", a);
    else {
        size_t la = strlen(a);
        n = snprintf(out, cap, "%s%s%s", a, a[la - 1] == '/' ? "" : "/", b);
    }
    if (n < 0 || (size_t)n >= cap) {
        if (cap) out[0] = 0;
        return et_fail(err, ET_ERR_ARG, "path too long: '%.200s' + '%.200s'", a ? a : "", b);
    }
    return ET_OK;
}

static int is_tmp_name(const char *n) {
    const char *t = strstr(n, ".tmp-"), *last = NULL;
    while (t) { last = t; t = strstr(t + 1, ".tmp-"); }
    if (!last || last == n || !last[5]) return 0;
    for (const char *c = last + 5; *c; c++) if (*c < '0' || *c > '9') return 0;
    return 1;
}

et_status et_remove_stale_tmp(const char *dir, int depth, et_error *err) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT || errno == ENOTDIR ? ET_OK : et_fail(err, ET_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    et_status s = ET_OK;
    struct dirent *de;
    while (!s && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char p[ET_PATH_MAX];
        if ((s = et_path_join(p, sizeof p, dir, de->d_name, err))) break;
        struct stat sb;
        if (lstat(p, &sb)) continue;
        if (S_ISDIR(sb.st_mode)) {
            if (depth > 0) s = et_remove_stale_tmp(p, depth - 1, err);
        } else if (S_ISREG(sb.st_mode) && is_tmp_name(de->d_name) && unlink(p) && errno != ENOENT) {
            s = et_fail(err, ET_ERR_IO, "%s: cannot remove a stale temporary file: %s", p, strerror(errno));
        }
    }
    closedir(d);
    return s;
}

et_status et_atomic_open(et_atomic_file *af, const char *path, et_error *err) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path) return et_fail(err, ET_ERR_ARG, "path too long: %.200s...", path);
    snprintf(af->path, sizeof af->path, "%s", path);
    for (int i = 0; i < 1000; i++) {
        snprintf(af->tmp, sizeof af->tmp, "%s.tmp-%d", path, i);
        af->f = fopen(af->tmp, "wbx"); /* C11 exclusive create */
        if (af->f) return ET_OK;
        if (errno != EEXIST) {
            int e = errno;
            af->tmp[0] = 0;
            return et_fail(err, ET_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(e));
        }
    }
    af->tmp[0] = 0;
    return et_fail(err, ET_ERR_IO, "%s: cannot create temporary file (1000 stale %s.tmp-N files?)", path, path);
}

et_status et_atomic_write(et_atomic_file *af, const void *buf, size_t n, et_error *err) {
    if (!af->f) return et_fail(err, ET_ERR_IO, "%s: write after close", af->path);
    if (n && fwrite(buf, 1, n, af->f) != n) {
        int e = errno;
        et_atomic_abort(af);
        return et_fail(err, ET_ERR_IO, "%s: write failed: %s", af->path, strerror(e));
    }
    return ET_OK;
}

static void fsync_dir_of(const char *path) {
#if !defined(__wasi__) && !defined(__EMSCRIPTEN__)
    char d[ET_PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    char *s = strrchr(d, '/');
    if (s == d) s[1] = 0;
    else if (s) *s = 0;
    else snprintf(d, sizeof d, ".");
    int fd = open(d, O_RDONLY);
    if (fd >= 0) { (void)fsync(fd); close(fd); }
#else
    (void)path;
#endif
}

et_status et_atomic_commit(et_atomic_file *af, et_error *err) {
    if (!af->f) return et_fail(err, ET_ERR_IO, "%s: commit after close", af->path);
    int e = 0;
    if (fflush(af->f) != 0) e = errno;
#if !defined(__EMSCRIPTEN__)
    if (!e && fsync(fileno(af->f)) != 0 && errno != EINVAL && errno != ENOTSUP) e = errno;
#endif
    if (fclose(af->f) != 0 && !e) e = errno;
    af->f = NULL;
    if (e) {
        et_atomic_abort(af);
        return et_fail(err, ET_ERR_IO, "%s: write failed: %s", af->path, strerror(e));
    }
    if (rename(af->tmp, af->path) != 0) {
        e = errno;
        et_atomic_abort(af);
        return et_fail(err, ET_ERR_IO, "%s: cannot rename temporary file into place: %s", af->path, strerror(e));
    }
    af->tmp[0] = 0;
    fsync_dir_of(af->path);
    return ET_OK;
}

void et_atomic_abort(et_atomic_file *af) {
    if (af->f) { fclose(af->f); af->f = NULL; }
    if (af->tmp[0]) { remove(af->tmp); af->tmp[0] = 0; }
}

et_status et_write_file_atomic(const char *path, const void *data, size_t len, et_error *err) {
    et_atomic_file af;
    et_status s = et_atomic_open(&af, path, err);
    if (s) return s;
    if ((s = et_atomic_write(&af, data, len, err))) return s;
    return et_atomic_commit(&af, err);
}

et_status et_rm_tree(const char *path, et_error *err) {
    struct stat sb;
    if (lstat(path, &sb)) return ET_OK;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return et_fail(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        struct dirent *de;
        et_status s = ET_OK;
        while (!s && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char sub[ET_PATH_MAX];
            if (!(s = et_path_join(sub, sizeof sub, path, de->d_name, err))) s = et_rm_tree(sub, err);
        }
        closedir(d);
        if (!s && rmdir(path)) s = et_fail(err, ET_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return s;
    }
    if (unlink(path)) return et_fail(err, ET_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return ET_OK;
}
