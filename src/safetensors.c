/* safetensors.c - see safetensors.h. Assumes a little-endian host (x86, arm64, wasm). */
#include "safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "fileio.h"

#if !defined(__wasi__) && !defined(__EMSCRIPTEN__)
#define ET_ST_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#else
#define ET_ST_MMAP 0
#endif

/* ---------------------------------------------------------------- dtypes */

static const struct { const char *name; size_t size; } DT[ET_ST_NDTYPES] = {
    [ET_ST_F32] = {"F32", 4}, [ET_ST_F16] = {"F16", 2}, [ET_ST_BF16] = {"BF16", 2}, [ET_ST_F64] = {"F64", 8},
    [ET_ST_I64] = {"I64", 8}, [ET_ST_I32] = {"I32", 4}, [ET_ST_I16] = {"I16", 2}, [ET_ST_I8] = {"I8", 1},
    [ET_ST_U64] = {"U64", 8}, [ET_ST_U32] = {"U32", 4}, [ET_ST_U16] = {"U16", 2}, [ET_ST_U8] = {"U8", 1},
    [ET_ST_BOOL] = {"BOOL", 1}, [ET_ST_F8_E4M3] = {"F8_E4M3", 1}, [ET_ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *et_st_dtype_name(et_st_dtype d) { return (unsigned)d < ET_ST_NDTYPES ? DT[d].name : "?"; }
size_t et_st_dtype_size(et_st_dtype d) { return (unsigned)d < ET_ST_NDTYPES ? DT[d].size : 0; }

static int ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return 0;
    }
    return *a == *b;
}

int et_st_dtype_parse(const char *s) {
    if (!s) return -1;
    if (ieq(s, "f32") || ieq(s, "float32") || ieq(s, "float")) return ET_ST_F32;
    if (ieq(s, "f16") || ieq(s, "float16") || ieq(s, "half") || ieq(s, "fp16")) return ET_ST_F16;
    if (ieq(s, "bf16") || ieq(s, "bfloat16")) return ET_ST_BF16;
    return -1;
}

/* ---------------------------------------------------------------- conversions */

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* F. Giesen's float_to_half_fast3_rtne: round to nearest even, NaN -> qNaN, overflow -> Inf. */
uint16_t et_f32_to_f16(float f) {
    uint32_t u = f2u(f), sign = u & 0x80000000u;
    u ^= sign;
    uint32_t o;
    if (u >= (143u << 23)) {
        o = u > (255u << 23) ? 0x7e00 : 0x7c00;
    } else if (u < (113u << 23)) {
        /* subnormal or zero: let the FPU round the 10 mantissa bits into place */
        float t = u2f(u) + u2f(126u << 23);
        o = f2u(t) - (126u << 23);
    } else {
        uint32_t mant_odd = (u >> 13) & 1;
        u += (uint32_t)(((int32_t)15 - 127) * (1 << 23)) + 0xfff + mant_odd;
        o = u >> 13;
    }
    return (uint16_t)(o | (sign >> 16));
}

float et_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        float v = (float)m * 5.9604644775390625e-08f; /* m * 2^-24, exact */
        return sign ? -v : v;
    }
    if (e == 31) return u2f(sign | 0x7f800000u | (m << 13));
    return u2f(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t et_f32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; /* NaN, as torch does */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float et_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

/* ---------------------------------------------------------------- reader */

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const et_st_tensor *)a)->name, ((const et_st_tensor *)b)->name);
}

typedef struct { size_t begin, end; int idx; } span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* a JSON number that is a non-negative integer below 2^53 */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static void free_tensors(et_st_file *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    f->t = NULL;
    f->n = 0;
}

et_status et_st_parse(et_st_file *f, const void *buf, size_t len, const char *label, et_error *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->label, sizeof f->label, "%s", label ? label : "model.safetensors");
    const char *L = f->label;
    const unsigned char *b = buf;
    if (len < 8) return et_fail(err, ET_ERR_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header length", L, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];
    if (n > (uint64_t)(len - 8))
        return et_fail(err, ET_ERR_FORMAT, "%s: header length %llu is larger than the rest of the file (%zu bytes); truncated or not a safetensors file",
                       L, (unsigned long long)n, len - 8);
    if (n > ET_ST_MAX_HEADER)
        return et_fail(err, ET_ERR_FORMAT, "%s: header length %llu exceeds the %u-byte limit", L, (unsigned long long)n, ET_ST_MAX_HEADER);
    const char *hdr = (const char *)b + 8;
    if (n < 2 || hdr[0] != '{')
        return et_fail(err, ET_ERR_FORMAT, "%s: header is not a JSON object (it must start with '{')", L);
    const char *end = NULL;
    cJSON *root = NULL;
    et_status jst = et_json_parse(hdr, (size_t)n, &root, &end);
    if (jst == ET_ERR_NOMEM)
        return et_fail(err, jst, "%s: out of memory parsing the %llu-byte JSON header", L, (unsigned long long)n);
    if (jst) {
        size_t at = end && end >= hdr && end <= hdr + n ? (size_t)(end - hdr) : 0;
        return et_fail(err, ET_ERR_FORMAT, "%s: header is not valid JSON (error near header byte %zu)", L, at);
    }
    for (const char *p = end; p && p < hdr + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            cJSON_Delete(root);
            return et_fail(err, ET_ERR_FORMAT, "%s: unexpected bytes after the JSON header (at header byte %zu)", L, (size_t)(p - hdr));
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return et_fail(err, ET_ERR_FORMAT, "%s: header is not a JSON object", L);
    }
    f->data = b + 8 + n;
    f->data_len = len - 8 - (size_t)n;
    int count = 0;
    for (cJSON *c = root->child; c; c = c->next) count++;
    f->t = calloc((size_t)count + 1, sizeof *f->t);
    if (!f->t) { cJSON_Delete(root); return et_fail(err, ET_ERR_NOMEM, "%s: out of memory for the tensor list", L); }
    et_status s = ET_OK;
    for (cJSON *c = root->child; c; c = c->next) {
        const char *name = c->string ? c->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(c)) { s = et_fail(err, ET_ERR_FORMAT, "%s: '__metadata__' must be an object", L); break; }
            continue;
        }
        et_st_tensor *t = &f->t[f->n];
        if (!cJSON_IsObject(c)) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': entry is not an object", L, name); break; }
        t->name = malloc(strlen(name) + 1);
        if (!t->name) { s = et_fail(err, ET_ERR_NOMEM, "%s: out of memory for the name of tensor %d", L, f->n); break; }
        strcpy(t->name, name);
        f->n++;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(c, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(c, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(c, "data_offsets");
        if (!cJSON_IsString(dt)) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'dtype' is missing or not a string", L, name); break; }
        int d = -1;
        for (int k = 0; k < ET_ST_NDTYPES; k++)
            if (strcmp(dt->valuestring, DT[k].name) == 0) d = k;
        if (d < 0) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%.32s\"", L, name, dt->valuestring); break; }
        t->dtype = (et_st_dtype)d;
        if (!cJSON_IsArray(sh)) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'shape' is missing or not an array", L, name); break; }
        int nd = cJSON_GetArraySize(sh);
        if (nd > ET_ST_MAX_DIMS) { s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions (at most %d supported)", L, name, nd, ET_ST_MAX_DIMS); break; }
        t->ndim = nd;
        uint64_t numel = 1;
        int k = 0;
        for (const cJSON *e = sh->child; e; e = e->next, k++) {
            uint64_t v;
            if (!json_uint(e, &v)) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'shape' element %d is not a non-negative integer", L, name, k); break; }
            t->shape[k] = (int64_t)v;
            if (v && numel > UINT64_MAX / v) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'shape' overflows (product too large)", L, name); break; }
            numel *= v;
        }
        if (s) break;
        uint64_t nbytes = numel * DT[d].size;
        if (numel > SIZE_MAX / 8 || nbytes / DT[d].size != numel) {
            s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'shape' overflows (product too large)", L, name);
            break;
        }
        t->numel = (size_t)numel;
        uint64_t o0, o1;
        if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !json_uint(of->child, &o0) || !json_uint(of->child->next, &o1)) {
            s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'data_offsets' must be [begin, end] with non-negative integers", L, name);
            break;
        }
        if (o1 < o0) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'data_offsets' [%llu, %llu] has end before begin", L, name, (unsigned long long)o0, (unsigned long long)o1); break; }
        if (o1 > f->data_len) {
            s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'data_offsets' [%llu, %llu] is out of range: the data block has %zu bytes (file truncated?)",
                        L, name, (unsigned long long)o0, (unsigned long long)o1, f->data_len);
            break;
        }
        if (o1 - o0 != nbytes) {
            char shp[160] = "";
            size_t p = 0;
            for (int q = 0; q < nd && p < sizeof shp - 24; q++) p += (size_t)snprintf(shp + p, sizeof shp - p, "%s%lld", q ? ", " : "", (long long)t->shape[q]);
            s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'data_offsets' [%llu, %llu] spans %llu bytes but dtype %s x shape [%s] needs %llu",
                        L, name, (unsigned long long)o0, (unsigned long long)o1, (unsigned long long)(o1 - o0), DT[d].name, shp, (unsigned long long)nbytes);
            break;
        }
        t->begin = (size_t)o0;
        t->end = (size_t)o1;
    }
    cJSON_Delete(root);
    if (s) { free_tensors(f); return s; }
    /* duplicate names (cJSON keeps both) */
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_tensor_name);
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->t[i - 1].name, f->t[i].name) == 0) {
            s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", L, f->t[i].name);
            free_tensors(f);
            return s;
        }
    /* overlapping data */
    span *sp = malloc(((size_t)f->n + 1) * sizeof *sp);
    if (!sp) { free_tensors(f); return et_fail(err, ET_ERR_NOMEM, "%s: out of memory checking the data offsets of %d tensors", L, f->n); }
    int ns = 0;
    for (int i = 0; i < f->n; i++)
        if (f->t[i].end > f->t[i].begin) sp[ns++] = (span){f->t[i].begin, f->t[i].end, i};
    qsort(sp, (size_t)ns, sizeof *sp, cmp_span);
    for (int i = 1; i < ns; i++)
        if (sp[i].begin < sp[i - 1].end) {
            s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s': field 'data_offsets' [%zu, %zu] overlaps tensor '%s' [%zu, %zu]", L,
                        f->t[sp[i].idx].name, sp[i].begin, sp[i].end, f->t[sp[i - 1].idx].name, sp[i - 1].begin, sp[i - 1].end);
            break;
        }
    free(sp);
    if (s) { free_tensors(f); return s; }
    return ET_OK;
}

et_status et_st_open(et_st_file *f, const char *path, size_t max_bytes, et_error *err) {
    memset(f, 0, sizeof *f);
    if (!max_bytes) max_bytes = SIZE_MAX / 2;
#if ET_ST_MMAP
    int fd = open(path, O_RDONLY);
    if (fd < 0) return et_fail(err, ET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return et_fail(err, ET_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return et_fail(err, ET_ERR_FORMAT, "%s: file is %lld bytes; the limit is %zu", path, (long long)st.st_size, max_bytes);
    }
    size_t len = (size_t)st.st_size;
    void *m = NULL;
    if (len) {
        m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return et_fail(err, ET_ERR_IO, "%s: cannot mmap: %s", path, strerror(e));
        }
    }
    close(fd);
    et_status s = et_st_parse(f, m ? m : "", len, path, err);
    if (s) { if (m) munmap(m, len); return s; }
    f->map = m;
    f->map_len = len;
    f->is_mmap = 1;
    return ET_OK;
#else
    char *buf;
    size_t len;
    et_status s = et_read_file(path, max_bytes, &buf, &len, err);
    if (s) return s;
    s = et_st_parse(f, buf, len, path, err);
    if (s) { free(buf); return s; }
    f->map = buf;
    f->map_len = len;
    return ET_OK;
#endif
}

void et_st_close(et_st_file *f) {
    if (!f) return;
    free_tensors(f);
#if ET_ST_MMAP
    if (f->map && f->is_mmap) munmap(f->map, f->map_len);
    else
#endif
        free(f->map);
    memset(f, 0, sizeof *f);
}

const et_st_tensor *et_st_find(const et_st_file *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(f->t[mid].name, name);
        if (c == 0) return &f->t[mid];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

et_status et_st_read_f32(const et_st_file *f, const et_st_tensor *t, float *out, et_error *err) {
    const unsigned char *p = f->data + t->begin;
    size_t n = t->numel;
    switch (t->dtype) {
    case ET_ST_F32: memcpy(out, p, n * 4); break;
    case ET_ST_F16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = et_f16_to_f32(h); }
        break;
    case ET_ST_BF16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = et_bf16_to_f32(h); }
        break;
    case ET_ST_F64:
        for (size_t i = 0; i < n; i++) { double d; memcpy(&d, p + 8 * i, 8); out[i] = (float)d; }
        break;
    default:
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; only F32, F16, BF16 and F64 can be loaded", f->label, t->name,
                       et_st_dtype_name(t->dtype));
    }
    return ET_OK;
}

et_status et_st_read_i8(const et_st_file *f, const et_st_tensor *t, int8_t *out, et_error *err) {
    if (t->dtype != ET_ST_I8)
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, not I8", f->label, t->name, et_st_dtype_name(t->dtype));
    memcpy(out, f->data + t->begin, t->numel);
    return ET_OK;
}

/* ---------------------------------------------------------------- writer */

typedef struct { char *p; size_t n, cap; int oom; } sbuf;
static void sb_put(sbuf *s, const char *x, size_t n) {
    if (s->oom) return;
    if (s->n + n + 1 > s->cap) {
        size_t c = s->cap ? s->cap * 2 : 4096;
        while (c < s->n + n + 1) c *= 2;
        char *q = realloc(s->p, c);
        if (!q) { s->oom = 1; return; }
        s->p = q;
        s->cap = c;
    }
    memcpy(s->p + s->n, x, n);
    s->n += n;
    s->p[s->n] = 0;
}
static void sb_str(sbuf *s, const char *x) { sb_put(s, x, strlen(x)); }
static void sb_json_string(sbuf *s, const char *x) {
    sb_put(s, "\"", 1);
    for (; *x; x++) {
        unsigned char c = (unsigned char)*x;
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; sb_put(s, e, 2); }
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); sb_put(s, e, 6); }
        else sb_put(s, (const char *)&c, 1);
    }
    sb_put(s, "\"", 1);
}

typedef struct { const et_st_out *t; size_t numel; } wt;
static int cmp_wt(const void *a, const void *b) { return strcmp(((const wt *)a)->t->name, ((const wt *)b)->t->name); }

et_status et_st_write(const char *path, const et_st_out *tensors, int n, et_st_dtype dtype, et_error *err) {
    if (dtype != ET_ST_F32 && dtype != ET_ST_F16 && dtype != ET_ST_BF16)
        return et_fail(err, ET_ERR_ARG, "%s: cannot write dtype %s (F32, F16 or BF16 only)", path, et_st_dtype_name(dtype));
    size_t es = DT[dtype].size;
    wt *order = calloc((size_t)n + 1, sizeof *order);
    if (!order) return et_fail(err, ET_ERR_NOMEM, "%s: out of memory ordering %d tensors", path, n);
    for (int i = 0; i < n; i++) {
        order[i].t = &tensors[i];
        size_t ne = 1;
        for (int k = 0; k < tensors[i].ndim; k++) ne *= (size_t)tensors[i].shape[k];
        order[i].numel = ne;
    }
    qsort(order, (size_t)n, sizeof *order, cmp_wt);
    for (int i = 1; i < n; i++)
        if (strcmp(order[i].t->name, order[i - 1].t->name) == 0) {
            et_fail(err, ET_ERR_ARG, "%s: tensor '%s' given twice", path, order[i].t->name);
            free(order);
            return ET_ERR_ARG;
        }
    sbuf h = {0};
    sb_str(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    char num[64];
    for (int i = 0; i < n; i++) {
        const et_st_out *t = order[i].t;
        sb_str(&h, ",");
        sb_json_string(&h, t->name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, DT[t->i8 ? ET_ST_I8 : t->f32 ? ET_ST_F32 : dtype].name);
        sb_str(&h, "\",\"shape\":[");
        for (int k = 0; k < t->ndim; k++) {
            snprintf(num, sizeof num, "%s%lld", k ? "," : "", (long long)t->shape[k]);
            sb_str(&h, num);
        }
        size_t nb = order[i].numel * (t->i8 ? 1 : t->f32 ? 4 : es);
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        sb_str(&h, num);
        off += nb;
    }
    sb_str(&h, "}");
    while (!h.oom && h.n % 8) sb_str(&h, " ");
    if (h.oom) { free(h.p); free(order); return et_fail(err, ET_ERR_NOMEM, "%s: out of memory building the header", path); }

    et_atomic_file af;
    et_status s = et_atomic_open(&af, path, err);
    if (s) { free(h.p); free(order); return s; }
    unsigned char len8[8];
    uint64_t hn = h.n;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hn >> (8 * i));
    s = et_atomic_write(&af, len8, 8, err);
    if (!s) s = et_atomic_write(&af, h.p, h.n, err);
    free(h.p);
    enum { CH = 8192 };
    uint16_t stage[CH];
    for (int i = 0; i < n && !s; i++) {
        const float *x = order[i].t->data;
        size_t ne = order[i].numel;
        if (order[i].t->i8) { s = et_atomic_write(&af, order[i].t->i8, ne, err); continue; }
        if (dtype == ET_ST_F32 || order[i].t->f32) { s = et_atomic_write(&af, x, ne * 4, err); continue; }
        for (size_t j = 0; j < ne && !s; j += CH) {
            size_t m = ne - j < CH ? ne - j : CH;
            if (dtype == ET_ST_F16) for (size_t q = 0; q < m; q++) stage[q] = et_f32_to_f16(x[j + q]);
            else for (size_t q = 0; q < m; q++) stage[q] = et_f32_to_bf16(x[j + q]);
            s = et_atomic_write(&af, stage, m * 2, err);
        }
    }
    free(order);
    if (s) { et_atomic_abort(&af); return s; }
    return et_atomic_commit(&af, err);
}
