/* index.c - see index.h */
#include "index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "safetensors.h"
#include "util.h"

static const char MAGIC[8] = {'E', 'T', 'I', 'N', 'D', 'E', 'X', 0};
#define HDR 64
#define MAX_FILE ((uint64_t)SIZE_MAX > ((uint64_t)1 << 40) ? (size_t)((uint64_t)1 << 40) : SIZE_MAX / 2) /* 1 TiB; 2 GiB in wasm32 */

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

et_status et_index_dtype_parse(const char *s, et_index_dtype *out, et_error *err) {
    if (!strcmp(s, "int8")) *out = ET_INDEX_INT8;
    else if (!strcmp(s, "f16")) *out = ET_INDEX_F16;
    else if (!strcmp(s, "none")) *out = ET_INDEX_NONE;
    else return et_fail(err, ET_ERR_ARG, "unknown index dtype '%s' (int8, f16 or none)", s);
    return ET_OK;
}

const char *et_index_dtype_name(et_index_dtype d) {
    return d == ET_INDEX_INT8 ? "int8" : d == ET_INDEX_F16 ? "f16" : "none";
}

static size_t emb_bytes(et_index_dtype dt, int32_t nd, int32_t dim) {
    size_t n = (size_t)nd * (size_t)dim;
    if (dt == ET_INDEX_NONE) return 0;
    return 4 * (size_t)dim + (dt == ET_INDEX_F16 ? 2 * n : 4 * (size_t)nd + n);
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static et_status write_padded(et_atomic_file *af, const void *p, size_t n, et_error *err) {
    static const unsigned char zero[8] = {0};
    et_status s = n ? et_atomic_write(af, p, n, err) : ET_OK;
    if (!s && pad8(n) > n) s = et_atomic_write(af, zero, pad8(n) - n, err);
    return s;
}

static et_status write_strings(et_atomic_file *af, const char *const *v, int32_t n, size_t total, et_error *err) {
    static const unsigned char zero[8] = {0};
    for (int32_t i = 0; i < n; i++) {
        et_status s = et_atomic_write(af, v[i] ? v[i] : "", strlen(v[i] ? v[i] : "") + 1, err);
        if (s) return s;
    }
    return pad8(total) > total ? et_atomic_write(af, zero, pad8(total) - total, err) : ET_OK;
}

static size_t strings_bytes(const char *const *v, int32_t n) {
    size_t t = 0;
    for (int32_t i = 0; v && i < n; i++) t += strlen(v[i] ? v[i] : "") + 1;
    return t;
}

et_status et_index_write(const char *path, const et_hybrid_index *ix, const char *const *ids, const char *const *texts,
                         et_index_dtype dtype, int32_t max_len, const float *probe, et_error *err) {
    if (!ix->bm) return et_fail(err, ET_ERR_ARG, "%s: an index needs BM25", path);
    if (dtype != ET_INDEX_NONE && (!ix->D || !probe || ix->dim <= 0))
        return et_fail(err, ET_ERR_ARG, "%s: dtype %s needs the document embeddings and the probe", path, et_index_dtype_name(dtype));
    int32_t nd = ix->nd, dim = dtype == ET_INDEX_NONE ? 0 : ix->dim;
    size_t idb = strings_bytes(ids, nd), txb = strings_bytes(texts, nd), eb = emb_bytes(dtype, nd, dim);
    size_t bb = et_bm25_serialized_size(ix->bm);
    unsigned char h[HDR] = {0}, *bmbuf = NULL, *ebuf = NULL;
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, ET_INDEX_VERSION);
    put_u32(h + 12, (uint32_t)dtype);
    put_u32(h + 16, (uint32_t)nd);
    put_u32(h + 20, (uint32_t)dim);
    put_u32(h + 24, texts ? 1u : 0u);
    put_u32(h + 28, (uint32_t)max_len);
    put_u64(h + 32, idb);
    put_u64(h + 40, txb);
    put_u64(h + 48, eb);
    put_u64(h + 56, bb);
    bmbuf = malloc(bb ? bb : 1);
    ebuf = malloc(eb ? eb : 1);
    if (!bmbuf || !ebuf) { free(bmbuf); free(ebuf); return et_fail(err, ET_ERR_NOMEM, "%s: out of memory writing the index", path); }
    et_bm25_serialize(ix->bm, bmbuf);
    if (dtype != ET_INDEX_NONE) {
        memcpy(ebuf, probe, 4 * (size_t)dim);
        unsigned char *e = ebuf + 4 * (size_t)dim;
        for (int32_t d = 0; d < nd; d++) {
            const float *x = ix->D + (size_t)d * dim;
            if (dtype == ET_INDEX_F16) {
                for (int32_t j = 0; j < dim; j++) {
                    uint16_t v = et_f32_to_f16(x[j]);
                    memcpy(e + 2 * ((size_t)d * dim + j), &v, 2);
                }
            } else {
                float mx = 0;
                for (int32_t j = 0; j < dim; j++) mx = fabsf(x[j]) > mx ? fabsf(x[j]) : mx;
                float sc = mx > 0 ? mx / 127.0f : 1.0f;
                memcpy(e + 4 * (size_t)d, &sc, 4);
                int8_t *q = (int8_t *)(e + 4 * (size_t)nd + (size_t)d * dim);
                for (int32_t j = 0; j < dim; j++) {
                    long r = lrintf(x[j] / sc);
                    q[j] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
                }
            }
        }
    }
    et_atomic_file af;
    et_status s = et_atomic_open(&af, path, err);
    if (!s) {
        if ((s = et_atomic_write(&af, h, HDR, err)) || (s = write_strings(&af, ids, nd, idb, err)) ||
            (texts && (s = write_strings(&af, texts, nd, txb, err))) || (s = write_padded(&af, ebuf, eb, err)) ||
            (s = write_padded(&af, bmbuf, bb, err)))
            et_atomic_abort(&af);
        else s = et_atomic_commit(&af, err);
    }
    free(bmbuf);
    free(ebuf);
    return s;
}

void et_index_free(et_index *x) {
    free(x->id);
    free(x->text);
    free(x->probe);
    free(x->strings);
    et_hybrid_index_free(&x->ix);
    memset(x, 0, sizeof *x);
}

/* split n NUL-terminated strings from s[0..len): every one must end inside, the last exactly at len */
static int split_strings(char *s, size_t len, int32_t n, const char **out) {
    size_t at = 0;
    for (int32_t i = 0; i < n; i++) {
        char *e = at < len ? memchr(s + at, 0, len - at) : NULL;
        if (!e) return 0;
        out[i] = s + at;
        at = (size_t)(e - s) + 1;
    }
    return at == len;
}

et_status et_index_read_mem(const void *buf, size_t len, const char *name, et_index *out, et_error *err) {
    memset(out, 0, sizeof *out);
    const unsigned char *b = buf;
    if (len < HDR || memcmp(b, MAGIC, 8))
        return et_fail(err, ET_ERR_FORMAT, "%s: not an embedtune index (no ETINDEX header; make one with 'embedtune index')", name);
    uint32_t ver = get_u32(b + 8), dt = get_u32(b + 12), flags = get_u32(b + 24), ml = get_u32(b + 28);
    int32_t nd = (int32_t)get_u32(b + 16), dim = (int32_t)get_u32(b + 20);
    uint64_t idb = get_u64(b + 32), txb = get_u64(b + 40), eb = get_u64(b + 48), bb = get_u64(b + 56);
    if (ver != ET_INDEX_VERSION) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: index version %u (this build reads %d)", name, ver, ET_INDEX_VERSION);
    if (dt > 2) return et_fail(err, ET_ERR_FORMAT, "%s: header field dtype = %u (0 none, 1 f16, 2 int8)", name, dt);
    if (flags > 1) return et_fail(err, ET_ERR_FORMAT, "%s: header field flags = %u", name, flags);
    if (nd < 1 || (dt ? dim < 1 || dim > 65536 : dim != 0) || ml > (1u << 20))
        return et_fail(err, ET_ERR_FORMAT, "%s: header fields out of range (ndocs %d, dim %d, max_len %u)", name, nd, dim, ml);
    if (idb > len || txb > len || eb > len || bb > len || (uint64_t)nd > len)
        return et_fail(err, ET_ERR_FORMAT, "%s: section sizes exceed the file (%zu bytes: truncated or not an index)", name, len);
    size_t need = HDR + pad8((size_t)idb) + pad8((size_t)txb) + pad8((size_t)eb) + pad8((size_t)bb);
    if (need != len) return et_fail(err, ET_ERR_FORMAT, "%s: the file is %zu bytes, its header says %zu (truncated or not an index)", name, len, need);
    if (eb != emb_bytes((et_index_dtype)dt, nd, dim))
        return et_fail(err, ET_ERR_FORMAT, "%s: embedding section is %llu bytes, %d docs x %d %s need %zu", name,
                       (unsigned long long)eb, nd, dim, et_index_dtype_name((et_index_dtype)dt), emb_bytes((et_index_dtype)dt, nd, dim));
    if (!(flags & 1) && txb) return et_fail(err, ET_ERR_FORMAT, "%s: texts section without the texts flag", name);
    out->nd = nd; out->dim = dim; out->dtype = (et_index_dtype)dt; out->max_len = (int32_t)ml;
    const unsigned char *p = b + HDR;
    et_status s = ET_OK;
    out->strings = malloc((size_t)(idb + txb) + 1);
    out->id = malloc(sizeof(char *) * (size_t)nd);
    if ((flags & 1)) out->text = malloc(sizeof(char *) * (size_t)nd);
    if (!out->strings || !out->id || ((flags & 1) && !out->text)) { s = et_fail(err, ET_ERR_NOMEM, "%s: out of memory reading the index", name); goto fail; }
    memcpy(out->strings, p, (size_t)idb);
    if (!split_strings(out->strings, (size_t)idb, nd, out->id)) { s = et_fail(err, ET_ERR_FORMAT, "%s: ids section: not %d NUL-terminated strings", name, nd); goto fail; }
    p += pad8((size_t)idb);
    if (flags & 1) {
        memcpy(out->strings + idb, p, (size_t)txb);
        if (!split_strings(out->strings + idb, (size_t)txb, nd, out->text)) { s = et_fail(err, ET_ERR_FORMAT, "%s: texts section: not %d NUL-terminated strings", name, nd); goto fail; }
    }
    p += pad8((size_t)txb);
    out->ix.nd = nd;
    out->ix.dim = dim;
    out->ix.docs = out->text;
    if (dt) {
        size_t n = (size_t)nd * (size_t)dim;
        out->probe = malloc(4 * (size_t)dim);
        out->ix.D = malloc(sizeof(float) * n);
        if (!out->probe || !out->ix.D) { s = et_fail(err, ET_ERR_NOMEM, "%s: out of memory for %d x %d embeddings", name, nd, dim); goto fail; }
        memcpy(out->probe, p, 4 * (size_t)dim);
        const unsigned char *e = p + 4 * (size_t)dim;
        for (int32_t d = 0; d < nd; d++) {
            float *x = out->ix.D + (size_t)d * dim, sc = 1;
            if (dt == ET_INDEX_INT8) memcpy(&sc, e + 4 * (size_t)d, 4);
            if (!isfinite(sc)) { s = et_fail(err, ET_ERR_FORMAT, "%s: doc %d: scale is not finite", name, d); goto fail; }
            for (int32_t j = 0; j < dim; j++) {
                if (dt == ET_INDEX_F16) {
                    uint16_t v;
                    memcpy(&v, e + 2 * ((size_t)d * dim + j), 2);
                    x[j] = et_f16_to_f32(v);
                } else {
                    x[j] = sc * (float)((const int8_t *)(e + 4 * (size_t)nd))[(size_t)d * dim + j];
                }
                if (!isfinite(x[j])) { s = et_fail(err, ET_ERR_FORMAT, "%s: doc %d: embedding value %d is not finite", name, d, j); goto fail; }
            }
        }
        for (int32_t j = 0; j < dim; j++)
            if (!isfinite(out->probe[j])) { s = et_fail(err, ET_ERR_FORMAT, "%s: probe value %d is not finite", name, j); goto fail; }
        et_l2norm_rows(out->ix.D, nd, dim);
    }
    p += pad8((size_t)eb);
    char bname[ET_PATH_MAX + 16];
    snprintf(bname, sizeof bname, "%s (BM25)", name);
    if (!(out->ix.bm = et_bm25_deserialize(p, (size_t)bb, bname, err))) { s = err && err->code ? err->code : ET_ERR_FORMAT; goto fail; }
    if (et_bm25_ndocs(out->ix.bm) != nd) { s = et_fail(err, ET_ERR_FORMAT, "%s: BM25 has %d docs, the index %d", bname, et_bm25_ndocs(out->ix.bm), nd); goto fail; }
    return ET_OK;
fail:
    et_index_free(out);
    return s;
}

et_status et_index_read(const char *path, et_index *out, et_error *err) {
    char *buf = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    et_status s = et_read_file(path, MAX_FILE, &buf, &len, err);
    if (!s) s = et_index_read_mem(buf, len, path, out, err);
    free(buf);
    return s;
}

et_status et_index_probe(const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo, int32_t max_len,
                         float *out, et_error *err) {
    et_encode_opts o = eo ? *eo : (et_encode_opts){0};
    o.batch = 1;
    o.max_len = max_len > 0 ? max_len : 256;
    o.progress = NULL;
    o.dim = 0;
    o.cache = NULL; /* the cache belongs to m; the float copy below would re-plan it */
    et_bert mf = *m; /* the same weights (an int8 export's are decoded at load), inference in float */
    mf.int8 = 0;
    const char *probe = ET_INDEX_PROBE;
    et_status s = et_encode_texts(&mf, tok, pool, &probe, 1, &o, out, err);
    if (!s) et_l2norm_rows(out, 1, m->cfg.hidden_size);
    return s;
}

et_status et_index_attach(et_index *x, const et_bert *m, const et_tokenizer *tok, et_pool *pool, const et_encode_opts *eo,
                          et_error *err) {
    x->ix.m = NULL;
    x->ix.tok = tok;
    if (!m) return ET_OK;
    if (x->dtype == ET_INDEX_NONE) return et_fail(err, ET_ERR_ARG, "the index holds no embeddings (dtype none): BM25 only");
    if (m->cfg.hidden_size != x->dim)
        return et_fail(err, ET_ERR_ARG, "the index was built with a %d-dimensional model, this one has %d", x->dim, m->cfg.hidden_size);
    float *e = malloc(sizeof(float) * (size_t)x->dim);
    if (!e) return et_fail(err, ET_ERR_NOMEM, "out of memory");
    et_status s = et_index_probe(m, tok, pool, eo, x->max_len, e, err);
    if (!s) {
        double c = 0;
        for (int32_t j = 0; j < x->dim; j++) c += (double)e[j] * x->probe[j];
        if (c < ET_INDEX_PROBE_MIN_COS)
            s = et_fail(err, ET_ERR_ARG, "the index was built with another model: the probe text's embeddings have cosine %.6f, "
                                         "below %g (an adapter, further training or other weights change it; int8 or another "
                                         "precision of the same weights does not): rebuild it with 'embedtune index' and this "
                                         "model", c, ET_INDEX_PROBE_MIN_COS);
        else x->ix.m = m;
    }
    free(e);
    return s;
}
