/* hf.c - see hf.h. The folder loader reads the files and hands them to one core shared with the
 * from-memory loader (et_hf_load_buffers), so both paths validate exactly the same way. */
#include "hf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "fileio.h"
#include "safetensors.h"
#include "bpe.h"
#include "sentencepiece.h"

#define JSON_MAX ((size_t)16 << 20)   /* config-like JSON files */
#define VOCAB_MAX ((size_t)64 << 20)

/* ---------------------------------------------------------------- JSON field helpers */

static const char *jtype(const cJSON *j) {
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsNumber(j)) return "a number";
    return "an unknown value";
}

/* *out = integer field `key`; absent/null -> def, or error if required. */
static et_status jint(const cJSON *o, const char *key, const char *label, int required, int def, int *out, et_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) {
        if (required) return et_fail(err, ET_ERR_FORMAT, "%s: field '%s' is missing", label, key);
        *out = def;
        return ET_OK;
    }
    if (!cJSON_IsNumber(j)) return et_fail(err, ET_ERR_FORMAT, "%s: field '%s' must be an integer, got %s", label, key, jtype(j));
    double d = j->valuedouble;
    if (d != floor(d) || d < -2147483648.0 || d > 2147483647.0)
        return et_fail(err, ET_ERR_FORMAT, "%s: field '%s' must be an integer, got %g", label, key, d);
    *out = (int)d;
    return ET_OK;
}

static et_status jfloat(const cJSON *o, const char *key, const char *label, float def, float *out, et_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) { *out = def; return ET_OK; }
    if (!cJSON_IsNumber(j)) return et_fail(err, ET_ERR_FORMAT, "%s: field '%s' must be a number, got %s", label, key, jtype(j));
    *out = (float)j->valuedouble;
    return ET_OK;
}

/* string field; absent/null -> def */
static et_status jstr(const cJSON *o, const char *key, const char *label, const char *def, const char **out, et_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) { *out = def; return ET_OK; }
    if (!cJSON_IsString(j)) return et_fail(err, ET_ERR_FORMAT, "%s: field '%s' must be a string, got %s", label, key, jtype(j));
    *out = j->valuestring;
    return ET_OK;
}

static et_status jbool(const cJSON *o, const char *key, const char *label, int def, int *out, et_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) { *out = def; return ET_OK; }
    if (!cJSON_IsBool(j)) return et_fail(err, ET_ERR_FORMAT, "%s: field '%s' must be true or false, got %s", label, key, jtype(j));
    *out = cJSON_IsTrue(j);
    return ET_OK;
}

static et_status jparse(const char *buf, size_t len, const char *label, cJSON **out, et_error *err) {
    const char *end = NULL;
    et_status st = et_json_parse(buf, len, out, &end);
    if (st == ET_ERR_NOMEM) return et_fail(err, st, "%s: out of memory parsing the JSON (%zu bytes)", label, len);
    if (st) {
        /* report a line number */
        int line = 1;
        if (end && end >= buf && end <= buf + len)
            for (const char *p = buf; p < end; p++) line += *p == '\n';
        return et_fail(err, ET_ERR_FORMAT, "%s: not valid JSON (error near line %d)", label, line);
    }
    return ET_OK;
}

/* ---------------------------------------------------------------- pieces */

size_t et_hf_vocab_count(const char *buf, size_t len) {
    /* drop blank lines at the very end (as et_tokenizer_load_vocab does) */
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) len--;
    if (!len) return 0;
    size_t n = 1;
    for (size_t i = 0; i < len; i++) n += buf[i] == '\n';
    return n;
}

/* MoE keys (src/moe.h): "num_experts", "num_experts_per_tok", "moe", "moe_layers", "moe_gate_scale",
 * "moe_aux_loss_weight", "moe_router_jitter", "moe_gate_ste" (straight-through gate). Absent "num_experts" (or 0) = dense. */
static et_status parse_moe(const cJSON *o, const char *label, et_bert_config *c, et_error *err) {
    int per_tok = 1, scale = 0, ste = 0;
    const char *where = NULL;
    et_status s;
    if ((s = jint(o, "num_experts", label, 0, 0, &c->moe_experts, err))) return s;
    if (c->moe_experts == 0) return ET_OK;
    if (c->moe_experts < 0 || c->moe_experts > ET_MOE_MAX_EXPERTS)
        return et_fail(err, ET_ERR_FORMAT, "%s: field 'num_experts' must be in [0, %d] (got %d)", label, ET_MOE_MAX_EXPERTS, c->moe_experts);
    if ((s = jint(o, "num_experts_per_tok", label, 0, 1, &per_tok, err)) ||
        (s = jstr(o, "moe", label, "intermediate", &where, err)) ||
        (s = jbool(o, "moe_gate_scale", label, 0, &scale, err)) ||
        (s = jbool(o, "moe_gate_ste", label, 0, &ste, err)) ||
        (s = jfloat(o, "moe_aux_loss_weight", label, 0.0f, &c->moe_aux_weight, err)) ||
        (s = jfloat(o, "moe_router_jitter", label, 0.0f, &c->moe_jitter, err)))
        return s;
    if (per_tok != 1)
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: field 'num_experts_per_tok' is %d; only top-1 routing (1) is supported", label, per_tok);
    if (strcmp(where, "intermediate") != 0)
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: field 'moe' is \"%.64s\"; only \"intermediate\" (the FFN up-projection) is supported", label, where);
    if (ste && scale)
        return et_fail(err, ET_ERR_FORMAT, "%s: fields 'moe_gate_ste' and 'moe_gate_scale' are both true (the straight-through gate's forward is unscaled)", label);
    c->moe_gate_scale = ste ? 2 : scale; /* 2 = ET_MOE_GATE_STE */
    c->moe_layer_mask = 0;
    const cJSON *ly = cJSON_GetObjectItemCaseSensitive(o, "moe_layers");
    if (ly && !cJSON_IsNull(ly)) {
        if (!cJSON_IsArray(ly)) return et_fail(err, ET_ERR_FORMAT, "%s: field 'moe_layers' must be an array of layer indices, got %s", label, jtype(ly));
        int k = 0;
        for (const cJSON *e = ly->child; e; e = e->next, k++) {
            if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 0 || e->valuedouble >= c->num_layers)
                return et_fail(err, ET_ERR_FORMAT, "%s: field 'moe_layers' entry %d must be a layer index in [0, %d)", label, k, c->num_layers);
            c->moe_layer_mask |= (uint64_t)1 << (int)e->valuedouble;
        }
        if (!c->moe_layer_mask) return et_fail(err, ET_ERR_FORMAT, "%s: field 'moe_layers' is empty but 'num_experts' is %d", label, c->moe_experts);
    }
    return ET_OK;
}

static et_status parse_config(const char *buf, size_t len, const char *label, et_bert_config *c, et_error *err) {
    cJSON *o;
    et_status s = jparse(buf, len, label, &o, err);
    if (s) return s;
    if (!cJSON_IsObject(o)) { cJSON_Delete(o); return et_fail(err, ET_ERR_FORMAT, "%s: expected a JSON object", label); }
    memset(c, 0, sizeof *c);
    const char *mt = NULL, *act = NULL, *pet = NULL;
    if ((s = jint(o, "vocab_size", label, 1, 0, &c->vocab_size, err)) ||
        (s = jint(o, "hidden_size", label, 1, 0, &c->hidden_size, err)) ||
        (s = jint(o, "num_hidden_layers", label, 1, 0, &c->num_layers, err)) ||
        (s = jint(o, "num_attention_heads", label, 1, 0, &c->num_heads, err)) ||
        (s = jint(o, "intermediate_size", label, 1, 0, &c->intermediate_size, err)) ||
        (s = jint(o, "max_position_embeddings", label, 0, 512, &c->max_position, err)) ||
        (s = jint(o, "type_vocab_size", label, 0, 2, &c->type_vocab_size, err)) ||
        (s = jint(o, "pad_token_id", label, 0, 0, &c->pad_token_id, err)) ||
        (s = jfloat(o, "layer_norm_eps", label, 1e-12f, &c->layer_norm_eps, err)) ||
        (s = jfloat(o, "hidden_dropout_prob", label, 0.1f, &c->hidden_dropout, err)) ||
        (s = jfloat(o, "attention_probs_dropout_prob", label, 0.1f, &c->attn_dropout, err)) ||
        (s = jstr(o, "model_type", label, "bert", &mt, err)) ||
        (s = jstr(o, "hidden_act", label, "gelu", &act, err)) ||
        (s = jstr(o, "position_embedding_type", label, "absolute", &pet, err)) ||
        (s = parse_moe(o, label, c, err))) {
        cJSON_Delete(o);
        return s;
    }
    c->arch = !strcmp(mt, "bert") ? ET_ARCH_BERT : !strcmp(mt, "roberta") ? ET_ARCH_ROBERTA : !strcmp(mt, "xlm-roberta") ? ET_ARCH_XLMR : -1;
    /* RoBERTa / XLM-R: positions start at padding_idx + 1 */
    c->position_offset = c->arch == ET_ARCH_BERT ? 0 : c->pad_token_id + 1;
    if (c->arch < 0)
        s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: field 'model_type' is \"%.64s\"; only \"bert\", \"roberta\" and \"xlm-roberta\" are supported",
                    label, mt);
    else if (strcmp(act, "gelu") != 0)
        s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: field 'hidden_act' is \"%.64s\"; only \"gelu\" (erf GELU) is supported", label, act);
    else if (strcmp(pet, "absolute") != 0)
        s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: field 'position_embedding_type' is \"%.64s\"; only \"absolute\" is supported", label, pet);
    cJSON_Delete(o);
    if (s) return s;
    c->pooling = ET_POOL_MEAN;
    if ((s = et_bert_config_check(c, err))) return et_error_prefix(err, "%s", label);
    return ET_OK;
}

typedef struct {
    int present;
    int has_pooling, normalize;
    char transformer_path[256];
    char pooling_path[256];
} hf_modules;

static int safe_rel_path(const char *p) {
    if (p[0] == '/' || strstr(p, "..") || strchr(p, '\\')) return 0;
    return strlen(p) < 200;
}

static et_status parse_modules(const char *buf, size_t len, const char *label, hf_modules *m, et_error *err) {
    memset(m, 0, sizeof *m);
    cJSON *a;
    et_status s = jparse(buf, len, label, &a, err);
    if (s) return s;
    m->present = 1;
    if (!cJSON_IsArray(a)) { cJSON_Delete(a); return et_fail(err, ET_ERR_FORMAT, "%s: expected a JSON array of modules", label); }
    int i = 0, has_tr = 0;
    for (const cJSON *e = a->child; e && !s; e = e->next, i++) {
        const char *type = NULL, *path = NULL;
        if (!cJSON_IsObject(e)) { s = et_fail(err, ET_ERR_FORMAT, "%s: module %d is not an object", label, i); break; }
        char fl[300];
        snprintf(fl, sizeof fl, "%s: module %d", label, i);
        if ((s = jstr(e, "type", fl, NULL, &type, err)) || (s = jstr(e, "path", fl, "", &path, err))) break;
        if (!type) { s = et_fail(err, ET_ERR_FORMAT, "%s: field 'type' is missing", fl); break; }
        if (!safe_rel_path(path)) { s = et_fail(err, ET_ERR_FORMAT, "%s: field 'path' \"%.100s\" must be a relative folder inside the model", fl, path); break; }
        const char *dot = strrchr(type, '.');
        const char *cls = dot ? dot + 1 : type;
        if (strcmp(cls, "Transformer") == 0) {
            if (has_tr) { s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: a second Transformer module is not supported", fl); break; }
            if (i != 0) { s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: the Transformer module must come first", fl); break; }
            has_tr = 1;
            snprintf(m->transformer_path, sizeof m->transformer_path, "%s", path);
        } else if (strcmp(cls, "Pooling") == 0) {
            if (!has_tr || m->has_pooling) { s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: Pooling must follow the Transformer module, once", fl); break; }
            m->has_pooling = 1;
            snprintf(m->pooling_path, sizeof m->pooling_path, "%s", path);
        } else if (strcmp(cls, "Normalize") == 0) {
            if (!m->has_pooling) { s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: Normalize must follow the Pooling module", fl); break; }
            m->normalize = 1;
        } else {
            s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: module type \"%.100s\" is not supported (only Transformer, Pooling, Normalize)", fl, type);
        }
    }
    cJSON_Delete(a);
    if (s) return s;
    if (!has_tr) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: no Transformer module", label);
    if (!m->has_pooling) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: no Pooling module (token-level output is not supported)", label);
    return ET_OK;
}

static et_status parse_pooling(const char *buf, size_t len, const char *label, int hidden, et_pooling *out, et_error *err) {
    cJSON *o;
    et_status s = jparse(buf, len, label, &o, err);
    if (s) return s;
    if (!cJSON_IsObject(o)) { cJSON_Delete(o); return et_fail(err, ET_ERR_FORMAT, "%s: expected a JSON object", label); }
    static const char *modes[] = {"pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens",
                                  "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"};
    int on[6] = {0}, n_on = 0, dim = 0;
    for (int i = 0; i < 6 && !s; i++) { s = jbool(o, modes[i], label, 0, &on[i], err); n_on += on[i]; }
    if (!s) s = jint(o, "word_embedding_dimension", label, 0, hidden, &dim, err);
    cJSON_Delete(o);
    if (s) return s;
    if (dim != hidden)
        return et_fail(err, ET_ERR_MISMATCH, "%s: field 'word_embedding_dimension' is %d but config.json hidden_size is %d", label, dim, hidden);
    for (int i = 2; i < 6; i++)
        if (on[i]) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: field '%s' is true; only mean and CLS pooling are supported", label, modes[i]);
    if (n_on == 0) return et_fail(err, ET_ERR_FORMAT, "%s: no pooling mode is set (expected 'pooling_mode_mean_tokens' or 'pooling_mode_cls_token' true)", label);
    if (n_on > 1) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: fields 'pooling_mode_mean_tokens' and 'pooling_mode_cls_token' are both true; concatenated pooling is not supported", label);
    *out = on[1] ? ET_POOL_CLS : ET_POOL_MEAN;
    return ET_OK;
}

/* sentence_bert_config.json / tokenizer_config.json */
static et_status parse_small(const char *buf, size_t len, const char *label, const char *len_key, int *max_len, int *lower, int *strip,
                             et_error *err) {
    cJSON *o;
    et_status s = jparse(buf, len, label, &o, err);
    if (s) return s;
    if (!cJSON_IsObject(o)) { cJSON_Delete(o); return et_fail(err, ET_ERR_FORMAT, "%s: expected a JSON object", label); }
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, len_key);
    if (j && !cJSON_IsNull(j)) {
        if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || j->valuedouble < 1)
            s = et_fail(err, ET_ERR_FORMAT, "%s: field '%s' must be a positive integer, got %s", label, len_key, jtype(j));
        else
            *max_len = j->valuedouble > 2147483647.0 ? 2147483647 : (int)j->valuedouble;
    }
    if (!s) s = jbool(o, "do_lower_case", label, *lower, lower, err);
    if (!s && strip) { /* tokenizer_config.json strip_accents: null (follow do_lower_case) or a boolean */
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(o, "strip_accents");
        if (sa && !cJSON_IsNull(sa)) {
            if (!cJSON_IsBool(sa)) s = et_fail(err, ET_ERR_FORMAT, "%s: field 'strip_accents' must be null or a boolean, got %s", label, jtype(sa));
            else *strip = cJSON_IsTrue(sa) ? ET_STRIP_TRUE : ET_STRIP_FALSE;
        }
    }
    cJSON_Delete(o);
    return s;
}

/* ---------------------------------------------------------------- the core */

typedef struct {
    const char *buf;
    size_t len;
    const char *label;
} hf_text;

typedef struct {
    hf_text config, vocab, modules, pooling, sbert, tokcfg; /* buf NULL = absent */
    et_st_file *st;
} hf_parts;

/* dst[r, k] = code[r, k] * scale[r] for an I8 tensor t [rows, cols] with its F32/F16/BF16 "NAME_scale" [rows] (the int8
 * export, docs/int8.md); marks the scale tensor used. Codes must be in [-127, 127], scales finite and >= 0. */
static et_status read_int8(const et_st_file *st, const et_st_tensor *t, float *dst, unsigned char *used, et_error *err) {
    char sn[ET_NAME_MAX + 32];
    snprintf(sn, sizeof sn, "%s_scale", t->name);
    const et_st_tensor *sc = et_st_find(st, sn);
    if (t->ndim != 2 || !sc)
        return et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s' is I8 but %s", st->label, t->name,
                       t->ndim != 2 ? "not 2-D (int8 is for [out, in] Linear weights)" : "its per-row scale tensor is missing");
    if (sc->ndim != 1 || sc->shape[0] != t->shape[0])
        return et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s' must have shape [%lld] (the rows of '%s')", st->label, sn,
                       (long long)t->shape[0], t->name);
    size_t rows = (size_t)t->shape[0], cols = (size_t)t->shape[1];
    int8_t *codes = malloc(t->numel + 1);
    float *scale = malloc(sizeof(float) * (rows + 1));
    et_status s = !codes || !scale ? et_fail(err, ET_ERR_NOMEM, "%s: out of memory reading '%s'", st->label, t->name) : ET_OK;
    if (!s) s = et_st_read_i8(st, t, codes, err);
    if (!s) s = et_st_read_f32(st, sc, scale, err);
    for (size_t r = 0; r < rows && !s; r++) {
        if (!isfinite(scale[r]) || scale[r] < 0)
            s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s' element %zu is %g (scales are finite and >= 0)", st->label, sn, r, scale[r]);
        for (size_t k = 0; k < cols && !s; k++) {
            int8_t c = codes[r * cols + k];
            if (c == -128)
                s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s' element [%zu, %zu] is -128 (int8 codes are in [-127, 127])", st->label,
                            t->name, r, k);
            dst[r * cols + k] = (float)c * scale[r];
        }
    }
    if (!s) used[sc - st->t] = 1;
    free(codes);
    free(scale);
    return s;
}

static void fmt_shape(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t p = 0;
    out[0] = 0;
    for (int i = 0; i < ndim && p + 24 < cap; i++) p += (size_t)snprintf(out + p, cap - p, "%s%lld", i ? ", " : "", (long long)shape[i]);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void add_ignored(et_hf_info *info, const char *name) {
    info->n_ignored++;
    size_t n = strlen(info->ignored), room = sizeof info->ignored;
    if (strstr(info->ignored, "...")) return;
    if (n + strlen(name) + 8 < room) snprintf(info->ignored + n, room - n, "%s%s", n ? ", " : "", name);
    else snprintf(info->ignored + n, room - n, "%s...", n ? ", " : "");
}

static et_status load_core(const hf_parts *P, const hf_modules *mods, et_bert *m, et_hf_info *info, et_error *err) {
    et_bert_config cfg;
    et_status s = parse_config(P->config.buf, P->config.len, P->config.label, &cfg, err);
    if (s) return s;
    const char *cfgname = base_name(P->config.label);
    size_t nv = P->vocab.buf ? et_hf_vocab_count(P->vocab.buf, P->vocab.len) : 0; /* no vocab.txt: et_hf_load_tokenizer checks */
    if (P->vocab.buf && nv != (size_t)cfg.vocab_size)
        return et_fail(err, ET_ERR_MISMATCH, "%s has %zu tokens but %s vocab_size is %d", P->vocab.label, nv, cfgname, cfg.vocab_size);

    memset(info, 0, sizeof *info);
    snprintf(info->transformer_dir, sizeof info->transformer_dir, "%s", mods->transformer_path);
    info->do_lower_case = 1;
    info->strip_accents = ET_STRIP_NULL;
    int max_len = 0, sb_len = 0, sb_lower = 0;
    if (P->tokcfg.buf && (s = parse_small(P->tokcfg.buf, P->tokcfg.len, P->tokcfg.label, "model_max_length", &max_len, &info->do_lower_case, &info->strip_accents, err)))
        return s;
    if (P->sbert.buf) {
        if ((s = parse_small(P->sbert.buf, P->sbert.len, P->sbert.label, "max_seq_length", &sb_len, &sb_lower, NULL, err))) return s;
        if (sb_len) max_len = sb_len;
        if (sb_lower) info->do_lower_case = 1;
    }
    if (max_len <= 0 || max_len > et_bert_max_tokens(&cfg)) max_len = et_bert_max_tokens(&cfg);
    info->max_seq_length = max_len;

    cfg.pooling = ET_POOL_MEAN;
    cfg.normalize = 0;
    if (mods->present) {
        info->has_modules = 1;
        cfg.normalize = mods->normalize;
        if (!P->pooling.buf)
            return et_fail(err, ET_ERR_IO, "%s: names a Pooling module at '%s' but %s/config.json was not given", P->modules.label,
                           mods->pooling_path, mods->pooling_path);
        if ((s = parse_pooling(P->pooling.buf, P->pooling.len, P->pooling.label, cfg.hidden_size, &cfg.pooling, err))) return s;
    }

    /* tensors */
    const et_st_file *st = P->st;
    const char *L = st->label;
    cfg.has_pooler = et_st_find(st, "pooler.dense.weight") || et_st_find(st, "bert.pooler.dense.weight") ||
                     et_st_find(st, "pooler.dense.bias") || et_st_find(st, "bert.pooler.dense.bias");
    if ((s = et_bert_alloc(m, &cfg, err))) return et_error_prefix(err, "%s", P->config.label);
    unsigned char *used = calloc((size_t)st->n + 1, 1);
    if (!used) { et_bert_free(m); return et_fail(err, ET_ERR_NOMEM, "%s: out of memory for the table of %d tensors", L, st->n); }
    char nm[ET_NAME_MAX + 16], want[96], got[96];
    int n_pref = 0;
    const char *pfx = cfg.arch == ET_ARCH_BERT ? "bert." : "roberta."; /* BertModel / XLMRobertaModel inside a task model */
    size_t npfx = strlen(pfx);
    for (int i = 0; i < m->n_tensors && !s; i++) {
        const et_tensor_view *v = &m->tensors[i];
        snprintf(nm, sizeof nm, "%s%s", pfx, v->name);
        const et_st_tensor *a = et_st_find(st, v->name), *b = et_st_find(st, nm), *t = a ? a : b;
        if (a && b) { s = et_fail(err, ET_ERR_MISMATCH, "%s: tensor '%s' is present both with and without the '%s' prefix", L, v->name, pfx); break; }
        if (!t) {
            /* a dense config over an MoE checkpoint: say so */
            char moe_nm[ET_NAME_MAX + 32];
            size_t ln = strlen(v->name);
            int moe_file = 0;
            if (ln > 25 && strstr(v->name, ".intermediate.dense.") && !strstr(v->name, "experts") && !strstr(v->name, "gate")) {
                const char *kind = strcmp(v->name + ln - 5, ".bias") == 0 ? "bias" : "weight";
                snprintf(moe_nm, sizeof moe_nm, "%.*s.experts.0.%s", (int)(ln - strlen(kind) - 1), v->name, kind);
                char pref[ET_NAME_MAX + 48];
                snprintf(pref, sizeof pref, "%s%s", pfx, moe_nm);
                moe_file = et_st_find(st, moe_nm) || et_st_find(st, pref);
            }
            if (moe_file)
                s = et_fail(err, ET_ERR_MISMATCH, "%s: tensor '%s' is missing; the file holds the mixture-of-experts tensor '%s' but %s "
                            "does not make that layer MoE (num_experts %d, moe_layers)", L, v->name, moe_nm, cfgname, cfg.moe_experts);
            else
                s = et_fail(err, ET_ERR_MISMATCH, "%s: tensor '%s' is missing (%s: num_hidden_layers %d, hidden_size %d)", L, v->name, cfgname,
                            cfg.num_layers, cfg.hidden_size);
            break;
        }
        n_pref += t == b;
        used[t - st->t] = 1;
        int shape_ok = t->ndim == v->ndim;
        for (int k = 0; shape_ok && k < v->ndim; k++) shape_ok = t->shape[k] == v->shape[k];
        if (!shape_ok) {
            fmt_shape(want, sizeof want, v->ndim, v->shape);
            fmt_shape(got, sizeof got, t->ndim, t->shape);
            s = et_fail(err, ET_ERR_MISMATCH, "%s: tensor '%s' has shape [%s] but %s implies [%s]", L, t->name, got, cfgname, want);
            break;
        }
        float *dst = m->params + v->offset;
        et_bert_params_changed(m);
        if (t->dtype == ET_ST_I8) { /* an int8 export (et_hf_save_opts.int8): codes and NAME_scale */
            if ((s = read_int8(st, t, dst, used, err))) break;
            m->int8 = 1;
        } else if ((s = et_st_read_f32(st, t, dst, err))) break;
        for (size_t k = 0; k < v->numel; k++)
            if (!isfinite(dst[k])) {
                s = et_fail(err, ET_ERR_NUMERIC, "%s: tensor '%s' element %zu is %s", L, t->name, k, isnan(dst[k]) ? "NaN" : "infinite");
                break;
            }
        if (i == 0) info->src_dtype = (int)t->dtype;
    }
    info->bert_prefix = n_pref > 0;
    /* what is left: parts of a bigger encoder are an error, the rest (heads, buffers) is ignored */
    for (int i = 0; i < st->n && !s; i++) {
        if (used[i]) continue;
        const char *n = st->t[i].name;
        const char *bare = strncmp(n, pfx, npfx) == 0 ? n + npfx : n;
        if ((strncmp(bare, "encoder.", 8) == 0 || strncmp(bare, "embeddings.", 11) == 0 || strncmp(bare, "pooler.", 7) == 0) &&
            strcmp(bare, "embeddings.position_ids") != 0) {
            if (strstr(bare, ".intermediate.dense.experts.") || strstr(bare, ".intermediate.dense.gate."))
                s = et_fail(err, ET_ERR_MISMATCH, "%s: tensor '%s' is a mixture-of-experts tensor, but %s does not make that layer MoE "
                            "(num_experts %d, moe_layers)", L, n, cfgname, cfg.moe_experts);
            else
                s = et_fail(err, ET_ERR_MISMATCH, "%s: tensor '%s' does not belong to the BertModel that %s describes (num_hidden_layers %d)", L,
                            n, cfgname, cfg.num_layers);
            break;
        }
        add_ignored(info, n);
    }
    free(used);
    if (s) { et_bert_free(m); return s; }
    return ET_OK;
}

/* ---------------------------------------------------------------- public loaders */

et_status et_hf_load_buffers(const et_hf_buffers *b, et_bert *model, et_hf_info *info, et_error *err) {
    et_hf_info dummy;
    if (!info) info = &dummy;
    memset(model, 0, sizeof *model);
    if (!b->config_json) return et_fail(err, ET_ERR_IO, "config.json: not given");
    if (!b->vocab_txt) return et_fail(err, ET_ERR_IO, "vocab.txt: not given");
    if (!b->safetensors) return et_fail(err, ET_ERR_IO, "model.safetensors: not given");
    hf_modules mods = {0};
    et_status s;
    if (b->modules_json && (s = parse_modules(b->modules_json, b->modules_len, "modules.json", &mods, err))) return s;
    char plabel[300];
    snprintf(plabel, sizeof plabel, "%s/config.json", mods.pooling_path[0] ? mods.pooling_path : "1_Pooling");
    et_st_file st;
    if ((s = et_st_parse(&st, b->safetensors, b->safetensors_len, "model.safetensors", err))) return s;
    hf_parts P = {
        .config = {b->config_json, b->config_len, "config.json"},
        .vocab = {b->vocab_txt, b->vocab_len, "vocab.txt"},
        .modules = {b->modules_json, b->modules_len, "modules.json"},
        .pooling = {b->pooling_json, b->pooling_len, plabel},
        .sbert = {b->sbert_config_json, b->sbert_config_len, "sentence_bert_config.json"},
        .tokcfg = {b->tokenizer_config_json, b->tokenizer_config_len, "tokenizer_config.json"},
        .st = &st,
    };
    s = load_core(&P, &mods, model, info, err);
    et_st_close(&st);
    return s;
}

void et_hf_apply_case(et_tokenizer *t, const et_hf_info *info) {
    et_tokenizer_set_case(t, info->do_lower_case, info->strip_accents == ET_STRIP_TRUE ? 1 : info->strip_accents == ET_STRIP_FALSE ? 0 : -1);
}

/* The SentencePiece files a folder may hold, in the order they are tried after tokenizer.json. */
static const char *const spm_files[] = {"sentencepiece.bpe.model", "spiece.model", "sentencepiece.model"};
#define TOKENIZER_FILES "vocab.txt, tokenizer.json, sentencepiece.bpe.model, spiece.model, sentencepiece.model or vocab.json + merges.txt"

/* 1 if `base` holds tokenizer.json, a sentencepiece .model or vocab.json + merges.txt (byte-level BPE); the
 * path of the first (in that order; vocab.json for the BPE pair) goes to out when out != NULL. */
static int tokenizer_file(const char *base, char *out, size_t cap) {
    char p[ET_PATH_MAX], m[ET_PATH_MAX];
    if (!et_path_join(p, sizeof p, base, "tokenizer.json", NULL) && et_file_exists(p)) {
        if (out) snprintf(out, cap, "%s", p);
        return 1;
    }
    for (size_t i = 0; i < sizeof spm_files / sizeof *spm_files; i++)
        if (!et_path_join(p, sizeof p, base, spm_files[i], NULL) && et_file_exists(p)) {
            if (out) snprintf(out, cap, "%s", p);
            return 1;
        }
    if (!et_path_join(p, sizeof p, base, "vocab.json", NULL) && et_file_exists(p) && !et_path_join(m, sizeof m, base, "merges.txt", NULL) &&
        et_file_exists(m)) {
        if (out) snprintf(out, cap, "%s", p);
        return 1;
    }
    return 0;
}

/* vocab.json + merges.txt beside it, add_prefix_space from tokenizer_config.json there (false when absent) */
static et_tokenizer *bpe_from_vocab_json(const char *path, et_error *err) {
    const char *bn = base_name(path);
    char dir[ET_PATH_MAX], mp[ET_PATH_MAX], cp[ET_PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", (int)(bn - path), path);
    if (!dir[0]) snprintf(dir, sizeof dir, ".");
    if (et_path_join(mp, sizeof mp, dir, "merges.txt", err) || et_path_join(cp, sizeof cp, dir, "tokenizer_config.json", err)) return NULL;
    char *v = NULL, *m = NULL, *c = NULL;
    size_t vn = 0, mn = 0, cn = 0;
    et_tokenizer *t = NULL;
    int aps = 0;
    if (et_read_file(path, VOCAB_MAX, &v, &vn, err) || et_read_file(mp, VOCAB_MAX, &m, &mn, err)) goto done;
    if (et_file_exists(cp)) {
        cJSON *o = NULL;
        if (et_read_file(cp, JSON_MAX, &c, &cn, err) || jparse(c, cn, cp, &o, err)) goto done;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "add_prefix_space");
        if (a && !cJSON_IsNull(a) && !cJSON_IsBool(a)) {
            et_fail(err, ET_ERR_FORMAT, "%s: field 'add_prefix_space' must be a boolean, got %s", cp, jtype(a));
            cJSON_Delete(o);
            goto done;
        }
        aps = cJSON_IsTrue(a);
        cJSON_Delete(o);
    }
    et_bpe *b = et_bpe_from_files(v, vn, m, mn, aps, path, mp, err);
    if (b) t = et_tokenizer_from_bpe(b, err);
done:
    free(v);
    free(m);
    free(c);
    return t;
}

/* A tokenizer from one file: vocab.txt (WordPiece), tokenizer.json or a .model (SentencePiece; XLM-R ids
 * for a RoBERTa-family model). Its size must fit the model's vocab_size (equal for WordPiece). */
/* A WordPiece vocabulary is any *.txt file: vocab.txt, or a copy of it under another name (the trainer's
 * out.vocab.txt); it is always saved as vocab.txt. Every other file is a tokenizer.json or a .model. */
static int is_wordpiece_vocab_name(const char *bn) {
    size_t n = strlen(bn);
    return n >= 4 && !strcmp(bn + n - 4, ".txt");
}

static et_tokenizer *tokenizer_from_file(const char *path, const et_bert_config *cfg, const et_hf_info *info, et_error *err) {
    const char *bn = base_name(path);
    et_tokenizer *t = NULL;
    if (is_wordpiece_vocab_name(bn)) {
        t = et_tokenizer_load_vocab(path, err);
        if (t && info) et_hf_apply_case(t, info);
    } else {
        char *buf = NULL;
        size_t len = 0;
        if (et_read_file(path, VOCAB_MAX, &buf, &len, err)) return NULL;
        if (!strcmp(bn, "vocab.json")) {
            t = bpe_from_vocab_json(path, err);
        } else if (!strcmp(bn, "tokenizer.json")) {
            t = et_tokenizer_from_json(buf, len, path, err);
        } else {
            et_spm *s = et_spm_from_model(buf, len, cfg->arch == ET_ARCH_BERT ? ET_SPM_IDS_PLAIN : ET_SPM_IDS_FAIRSEQ, path, err);
            if (s) t = et_tokenizer_from_spm(s, err);
        }
        free(buf);
    }
    if (!t) return NULL;
    int n = et_tokenizer_vocab_size(t);
    if (!et_tokenizer_is_wordpiece(t) ? n > cfg->vocab_size : n != cfg->vocab_size) {
        et_fail(err, ET_ERR_MISMATCH, "%s has %d tokens but config.json vocab_size is %d", path, n, cfg->vocab_size);
        et_tokenizer_free(t);
        return NULL;
    }
    return t;
}

et_tokenizer *et_hf_load_tokenizer(const char *dir, const et_hf_info *info, const et_bert_config *cfg, char *path_out, size_t cap,
                                   et_error *err) {
    char base[ET_PATH_MAX], p[ET_PATH_MAX];
    if (et_path_join(base, sizeof base, dir, info && info->transformer_dir[0] ? info->transformer_dir : ".", err) ||
        et_path_join(p, sizeof p, base, "vocab.txt", err))
        return NULL;
    int vocab = et_file_exists(p);
    if (!(vocab && cfg->arch == ET_ARCH_BERT) && !tokenizer_file(base, p, sizeof p) && !vocab) {
        et_fail(err, ET_ERR_IO, "%s: no tokenizer (" TOKENIZER_FILES ")", base);
        return NULL;
    }
    if (path_out) snprintf(path_out, cap, "%s", p);
    return tokenizer_from_file(p, cfg, info, err);
}

/* read dir/name if it exists (optional) or must exist (required) */
static et_status read_part(const char *dir, const char *name, int required, size_t limit, char *label, size_t cap, hf_text *t, et_error *err) {
    t->buf = NULL;
    t->len = 0;
    t->label = label;
    et_status s = et_path_join(label, cap, dir, name, err);
    if (s) return s;
    if (!et_file_exists(label)) {
        if (required) return et_fail(err, ET_ERR_IO, "%s: file not found", label);
        return ET_OK;
    }
    char *buf;
    if ((s = et_read_file(label, limit, &buf, &t->len, err))) return s;
    t->buf = buf;
    return ET_OK;
}

et_status et_hf_load(const char *dir, et_bert *model, et_error *err) { return et_hf_load_ex(dir, model, NULL, err); }

et_status et_hf_load_ex(const char *dir, et_bert *model, et_hf_info *info, et_error *err) {
    et_hf_info dummy;
    if (!info) info = &dummy;
    memset(model, 0, sizeof *model);
    if (!et_dir_exists(dir)) return et_fail(err, ET_ERR_IO, "%s: model folder not found", dir);
    enum { N = ET_PATH_MAX };
    char *lab = calloc(8, N); /* labels: config vocab modules pooling sbert tokcfg st tmp */
    if (!lab) return et_fail(err, ET_ERR_NOMEM, "%s: out of memory for the file names", dir);
    hf_parts P;
    memset(&P, 0, sizeof P);
    hf_modules mods = {0};
    et_st_file st;
    memset(&st, 0, sizeof st);
    char *base = lab + 7 * N;
    et_status s = read_part(dir, "modules.json", 0, JSON_MAX, lab + 2 * N, N, &P.modules, err);
    if (!s && P.modules.buf) s = parse_modules(P.modules.buf, P.modules.len, P.modules.label, &mods, err);
    if (!s) s = et_path_join(base, N, dir, mods.transformer_path, err);
    if (!s) s = read_part(base, "config.json", 1, JSON_MAX, lab, N, &P.config, err);
    if (!s) s = read_part(base, "vocab.txt", 0, VOCAB_MAX, lab + N, N, &P.vocab, err);
    if (!s && !P.vocab.buf && !tokenizer_file(base, NULL, 0)) /* the message names the files a tokenizer may come from */
        s = et_fail(err, ET_ERR_IO, "%s: file not found (nor tokenizer.json, sentencepiece.bpe.model, spiece.model, sentencepiece.model or vocab.json + merges.txt)", P.vocab.label);
    if (!s && mods.present) {
        char sub[300];
        snprintf(sub, sizeof sub, "%s/config.json", mods.pooling_path);
        s = read_part(dir, sub, 1, JSON_MAX, lab + 3 * N, N, &P.pooling, err);
    }
    if (!s) s = read_part(base, "sentence_bert_config.json", 0, JSON_MAX, lab + 4 * N, N, &P.sbert, err);
    if (!s) s = read_part(base, "tokenizer_config.json", 0, JSON_MAX, lab + 5 * N, N, &P.tokcfg, err);
    if (!s) {
        char *stp = lab + 6 * N;
        s = et_path_join(stp, N, base, "model.safetensors", err);
        if (!s && !et_file_exists(stp)) {
            char alt[N];
            et_path_join(alt, N, base, "pytorch_model.bin", NULL);
            if (et_file_exists(alt))
                s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: file not found; only safetensors weights are supported, and %s is a pickle (convert it, e.g. with "
                            "safetensors.torch.save_file)", stp, alt);
            else
                s = et_fail(err, ET_ERR_IO, "%s: file not found", stp);
        }
        if (!s) s = et_st_open(&st, stp, 0, err);
        if (!s) {
            P.st = &st;
            s = load_core(&P, &mods, model, info, err);
            et_st_close(&st);
        }
    }
    free((void *)P.config.buf);
    free((void *)P.vocab.buf);
    free((void *)P.modules.buf);
    free((void *)P.pooling.buf);
    free((void *)P.sbert.buf);
    free((void *)P.tokcfg.buf);
    free(lab);
    return s;
}

/* ---------------------------------------------------------------- saver */

typedef struct { char *p; size_t n, cap; int oom; } sbuf;
static void sb_printf(sbuf *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *s, const char *fmt, ...) {
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(s->p ? s->p + s->n : NULL, s->p ? s->cap - s->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { s->oom = 1; return; }
        if (s->p && s->n + (size_t)k < s->cap) { s->n += (size_t)k; return; }
        size_t c = s->cap ? s->cap * 2 : 1024;
        while (c < s->n + (size_t)k + 1) c *= 2;
        char *q = realloc(s->p, c);
        if (!q) { s->oom = 1; return; }
        s->p = q;
        s->cap = c;
    }
}

/* shortest decimal that reads back as the same float, always with a '.' or exponent */
static void fmt_float(char *out, size_t cap, float v) {
    for (int p = 1; p <= 9; p++) {
        snprintf(out, cap, "%.*g", p, (double)v);
        if (strtof(out, NULL) == v) break;
    }
    if (!strpbrk(out, ".eEn")) {
        size_t n = strlen(out);
        if (n + 3 < cap) memcpy(out + n, ".0", 3);
    }
}

static et_status write_text(const char *dir, const char *name, sbuf *sb, et_error *err) {
    char path[ET_PATH_MAX];
    et_status s = et_path_join(path, sizeof path, dir, name, err);
    if (!s && sb->oom) s = et_fail(err, ET_ERR_NOMEM, "%s: out of memory building the file", path);
    if (!s) s = et_write_file_atomic(path, sb->p, sb->n, err);
    free(sb->p);
    memset(sb, 0, sizeof *sb);
    return s;
}

et_status et_hf_save(const char *dir, const et_bert *m, const et_hf_save_opts *opts, et_error *err) {
    et_hf_save_opts o = {0};
    o.do_lower_case = -1;
    if (opts) o = *opts;
    const et_bert_config *c = &m->cfg;
    if (o.dtype != ET_ST_F32 && o.dtype != ET_ST_F16 && o.dtype != ET_ST_BF16)
        return et_fail(err, ET_ERR_ARG, "%s: dtype %s cannot be saved (F32, F16 or BF16)", dir, et_st_dtype_name((et_st_dtype)o.dtype));
    if (!m->params || !m->tensors) return et_fail(err, ET_ERR_ARG, "%s: the model has no parameters", dir);
    /* vocab first: fail before touching the folder */
    char *vocab_owned = NULL;
    const char *vocab = o.vocab_buf;
    size_t vlen = o.vocab_len;
    et_status s;
    if (o.vocab_path) {
        if ((s = et_read_file(o.vocab_path, VOCAB_MAX, &vocab_owned, &vlen, err))) return s;
        vocab = vocab_owned;
    }
    if (!vocab) return et_fail(err, ET_ERR_ARG, "%s: no vocab given (vocab_path or vocab_buf)", dir);
    const char *vname = o.vocab_path ? base_name(o.vocab_path) : "vocab.txt";
    int wordpiece = is_wordpiece_vocab_name(vname);
    /* a SentencePiece or BPE tokenizer: its file and the tokenizer files beside it are copied (read first: the
     * source may be this folder) */
    enum { NSIDE = 7 };
    static const char *const side_names[NSIDE] = {"tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "sentencepiece.model",
                                                  "tokenizer_config.json", "vocab.json", "merges.txt"};
    char *side[NSIDE] = {0};
    size_t side_len[NSIDE] = {0};
    if (!wordpiece) {
        et_tokenizer *t = tokenizer_from_file(o.vocab_path, c, NULL, err);
        if (!t) {
            free(vocab_owned);
            return err && err->code ? err->code : ET_ERR_FORMAT;
        }
        et_tokenizer_free(t);
        char sdir[ET_PATH_MAX], sp[ET_PATH_MAX];
        snprintf(sdir, sizeof sdir, "%.*s", (int)(vname - o.vocab_path), o.vocab_path);
        if (!sdir[0]) snprintf(sdir, sizeof sdir, ".");
        for (int k = 0; k < NSIDE; k++) {
            if (!strcmp(side_names[k], vname) || et_path_join(sp, sizeof sp, sdir, side_names[k], NULL) || !et_file_exists(sp)) continue;
            if ((s = et_read_file(sp, VOCAB_MAX, &side[k], &side_len[k], err))) {
                for (int q = 0; q < NSIDE; q++) free(side[q]);
                free(vocab_owned);
                return s;
            }
        }
    }
    size_t nv = wordpiece ? et_hf_vocab_count(vocab, vlen) : (size_t)c->vocab_size;
    if (nv != (size_t)c->vocab_size) {
        free(vocab_owned);
        return et_fail(err, ET_ERR_MISMATCH, "%s: the vocab has %zu tokens but the model's vocab_size is %d", o.vocab_path ? o.vocab_path : "vocab",
                       nv, c->vocab_size);
    }
    int max_len = o.max_seq_length > 0 && o.max_seq_length <= c->max_position ? o.max_seq_length : c->max_position;
    int lower = o.do_lower_case != 0;

    /* a killed earlier save into this folder may have left NAME.tmp-N files: clear them first */
    if ((s = et_mkdir_p(dir, err)) || (s = et_remove_stale_tmp(dir, 1, err))) { free(vocab_owned); return s; }
    char path[ET_PATH_MAX];
    if (!(s = et_path_join(path, sizeof path, dir, wordpiece ? "vocab.txt" : vname, err))) s = et_write_file_atomic(path, vocab, vlen, err);
    free(vocab_owned);
    for (int k = 0; k < NSIDE; k++) {
        if (side[k] && !s && !(s = et_path_join(path, sizeof path, dir, side_names[k], err)))
            s = et_write_file_atomic(path, side[k], side_len[k], err);
        free(side[k]);
    }
    if (s) return s;

    /* model.safetensors */
    int nq = o.int8 ? 6 * c->num_layers : 0, nout = m->n_tensors;
    et_st_out *outs = calloc((size_t)m->n_tensors + nq + 1, sizeof *outs);
    char (*qnames)[ET_NAME_MAX + 8] = calloc((size_t)nq + 1, sizeof *qnames);
    et_q8_matrix *qm = calloc((size_t)nq + 1, sizeof *qm);
    int8_t **qcodes = calloc((size_t)nq + 1, sizeof *qcodes);
    if (!outs || !qnames || !qm || !qcodes) {
        free(outs); free(qnames); free(qm); free(qcodes);
        return et_fail(err, ET_ERR_NOMEM, "%s: out of memory for the list of %d tensors", dir, m->n_tensors);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const et_tensor_view *v = &m->tensors[i];
        outs[i].name = v->name;
        outs[i].data = m->params + v->offset;
        outs[i].ndim = v->ndim;
        outs[i].shape[0] = v->shape[0];
        outs[i].shape[1] = v->shape[1];
        /* int8: the six Linear weights of every dense layer as I8 codes + NAME_scale (kernels_int8.h's quantization) */
        for (int l = 0; o.int8 && !s && l < c->num_layers; l++) {
            const et_bert_layer_params *w = &m->w.layer[l];
            const float *lw[6] = {w->q_w, w->k_w, w->v_w, w->ao_w, w->i_w, w->o_w};
            for (int j = 0; j < 6; j++) {
                if (!lw[j] || lw[j] != outs[i].data || v->ndim != 2) continue;
                int qi = l * 6 + j;
                if ((s = et_q8_quantize(&qm[qi], outs[i].data, (int)v->shape[0], (int)v->shape[1], err))) break;
                if (!(qcodes[qi] = malloc((size_t)v->numel + 1))) { s = et_fail(err, ET_ERR_NOMEM, "%s: out of memory quantizing", dir); break; }
                et_q8_unpack(&qm[qi], qcodes[qi]);
                outs[i].i8 = qcodes[qi];
                snprintf(qnames[qi], sizeof qnames[qi], "%s_scale", v->name);
                et_st_out *so = &outs[nout++];
                so->name = qnames[qi];
                so->data = qm[qi].scale;
                so->ndim = 1;
                so->f32 = 1;
                so->shape[0] = v->shape[0];
            }
        }
    }
    if (!s && !(s = et_path_join(path, sizeof path, dir, "model.safetensors", err))) s = et_st_write(path, outs, nout, (et_st_dtype)o.dtype, err);
    for (int q = 0; q < nq; q++) { et_q8_free(&qm[q]); free(qcodes[q]); }
    free(outs); free(qnames); free(qm); free(qcodes);
    if (s) return s;

    const char *tdt = o.dtype == ET_ST_F16 ? "float16" : o.dtype == ET_ST_BF16 ? "bfloat16" : "float32";
    char eps[32], hd[32], ad[32];
    fmt_float(eps, sizeof eps, c->layer_norm_eps);
    fmt_float(hd, sizeof hd, c->hidden_dropout);
    fmt_float(ad, sizeof ad, c->attn_dropout);
    /* MoE keys (src/moe.h), in sorted position; none for a dense model */
    char moe_a[1024] = "", moe_b[128] = "";
    if (c->moe_experts > 0) {
        char aw[32], jt[32];
        fmt_float(aw, sizeof aw, c->moe_aux_weight);
        fmt_float(jt, sizeof jt, c->moe_jitter);
        /* straight-through (2): the forward is unscaled, so moe_gate_scale is false and moe_gate_ste records the mode */
        size_t p = (size_t)snprintf(moe_a, sizeof moe_a, "  \"moe\": \"intermediate\",\n  \"moe_aux_loss_weight\": %s,\n"
                                    "  \"moe_gate_scale\": %s,\n%s  \"moe_layers\": [", aw, c->moe_gate_scale == 1 ? "true" : "false",
                                    c->moe_gate_scale == 2 ? "  \"moe_gate_ste\": true,\n" : "");
        int first = 1;
        for (int l = 0; l < c->num_layers; l++)
            if (et_bert_layer_is_moe(c, l)) {
                p += (size_t)snprintf(moe_a + p, sizeof moe_a - p, "%s%d", first ? "" : ", ", l);
                first = 0;
            }
        snprintf(moe_a + p, sizeof moe_a - p, "],\n  \"moe_router_jitter\": %s,\n", jt);
        snprintf(moe_b, sizeof moe_b, "  \"num_experts\": %d,\n  \"num_experts_per_tok\": 1,\n", c->moe_experts);
    }
    sbuf sb = {0};
    const char *arch_class = c->arch == ET_ARCH_XLMR ? "XLMRobertaModel" : c->arch == ET_ARCH_ROBERTA ? "RobertaModel" : "BertModel";
    const char *arch_type = c->arch == ET_ARCH_XLMR ? "xlm-roberta" : c->arch == ET_ARCH_ROBERTA ? "roberta" : "bert";
    /* keys sorted, as transformers writes them */
    sb_printf(&sb,
              "{\n"
              "  \"architectures\": [\n    \"%s\"\n  ],\n"
              "  \"attention_probs_dropout_prob\": %s,\n"
              "  \"classifier_dropout\": null,\n"
              "  \"hidden_act\": \"gelu\",\n"
              "  \"hidden_dropout_prob\": %s,\n"
              "  \"hidden_size\": %d,\n"
              "  \"initializer_range\": 0.02,\n"
              "  \"intermediate_size\": %d,\n"
              "  \"layer_norm_eps\": %s,\n"
              "  \"max_position_embeddings\": %d,\n"
              "  \"model_type\": \"%s\",\n"
              "%s"
              "  \"num_attention_heads\": %d,\n"
              "%s"
              "  \"num_hidden_layers\": %d,\n"
              "  \"pad_token_id\": %d,\n"
              "  \"position_embedding_type\": \"absolute\",\n"
              "  \"torch_dtype\": \"%s\",\n"
              "  \"transformers_version\": \"4.41.2\",\n"
              "  \"type_vocab_size\": %d,\n"
              "  \"use_cache\": true,\n"
              "  \"vocab_size\": %d\n"
              "}\n",
              arch_class, ad, hd, c->hidden_size, c->intermediate_size, eps, c->max_position, arch_type, moe_a, c->num_heads, moe_b, c->num_layers, c->pad_token_id, tdt,
              c->type_vocab_size, c->vocab_size);
    if ((s = write_text(dir, "config.json", &sb, err))) return s;

    if (!wordpiece) goto sbert; /* the SentencePiece tokenizer's own files were copied */
    sb_printf(&sb,
              "{\n"
              "  \"clean_up_tokenization_spaces\": true,\n"
              "  \"cls_token\": \"[CLS]\",\n"
              "  \"do_basic_tokenize\": true,\n"
              "  \"do_lower_case\": %s,\n"
              "  \"mask_token\": \"[MASK]\",\n"
              "  \"model_max_length\": %d,\n"
              "  \"never_split\": null,\n"
              "  \"pad_token\": \"[PAD]\",\n"
              "  \"sep_token\": \"[SEP]\",\n"
              "  \"strip_accents\": %s,\n"
              "  \"tokenize_chinese_chars\": true,\n"
              "  \"tokenizer_class\": \"BertTokenizer\",\n"
              "  \"unk_token\": \"[UNK]\"\n"
              "}\n",
              lower ? "true" : "false", c->max_position, o.strip_accents == ET_STRIP_TRUE ? "true" : o.strip_accents == ET_STRIP_FALSE ? "false" : "null");
    if ((s = write_text(dir, "tokenizer_config.json", &sb, err))) return s;

    sb_printf(&sb, "{\n  \"cls_token\": \"[CLS]\",\n  \"mask_token\": \"[MASK]\",\n  \"pad_token\": \"[PAD]\",\n"
                   "  \"sep_token\": \"[SEP]\",\n  \"unk_token\": \"[UNK]\"\n}\n");
    if ((s = write_text(dir, "special_tokens_map.json", &sb, err))) return s;

sbert:
    sb_printf(&sb, "{\n  \"max_seq_length\": %d,\n  \"do_lower_case\": false\n}\n", max_len);
    if ((s = write_text(dir, "sentence_bert_config.json", &sb, err))) return s;

    sb_printf(&sb, "{\n  \"__version__\": {\n    \"sentence_transformers\": \"2.2.2\",\n    \"transformers\": \"4.41.2\",\n"
                   "    \"pytorch\": \"2.0.1\"\n  },\n  \"prompts\": {},\n  \"default_prompt_name\": null,\n"
                   "  \"similarity_fn_name\": \"cosine\"\n}\n");
    if ((s = write_text(dir, "config_sentence_transformers.json", &sb, err))) return s;

    /* the five keys every sentence-transformers version accepts */
    char pdir[ET_PATH_MAX];
    if ((s = et_path_join(pdir, sizeof pdir, dir, "1_Pooling", err)) || (s = et_mkdir_p(pdir, err))) return s;
    sb_printf(&sb,
              "{\n"
              "  \"word_embedding_dimension\": %d,\n"
              "  \"pooling_mode_cls_token\": %s,\n"
              "  \"pooling_mode_mean_tokens\": %s,\n"
              "  \"pooling_mode_max_tokens\": false,\n"
              "  \"pooling_mode_mean_sqrt_len_tokens\": false\n"
              "}\n",
              c->hidden_size, c->pooling == ET_POOL_CLS ? "true" : "false", c->pooling == ET_POOL_CLS ? "false" : "true");
    if ((s = write_text(pdir, "config.json", &sb, err))) return s;
    if (c->normalize) {
        if ((s = et_path_join(pdir, sizeof pdir, dir, "2_Normalize", err)) || (s = et_mkdir_p(pdir, err))) return s;
    }

    sb_printf(&sb,
              "[\n"
              "  {\n    \"idx\": 0,\n    \"name\": \"0\",\n    \"path\": \"\",\n    \"type\": \"sentence_transformers.models.Transformer\"\n  },\n"
              "  {\n    \"idx\": 1,\n    \"name\": \"1\",\n    \"path\": \"1_Pooling\",\n    \"type\": \"sentence_transformers.models.Pooling\"\n  }%s\n",
              c->normalize ? "," : "");
    if (c->normalize)
        sb_printf(&sb, "  {\n    \"idx\": 2,\n    \"name\": \"2\",\n    \"path\": \"2_Normalize\",\n    \"type\": \"sentence_transformers.models.Normalize\"\n  }\n");
    sb_printf(&sb, "]\n");
    return write_text(dir, "modules.json", &sb, err);
}

et_status et_hf_model_load(const char *dir, int threads, et_hf_model *m, et_error *err) {
    memset(m, 0, sizeof *m);
    et_status s = et_hf_load_ex(dir, &m->model, &m->info, err);
    if (s) return s;
    if (!(m->tok = et_hf_load_tokenizer(dir, &m->info, &m->model.cfg, m->tok_path, sizeof m->tok_path, err)))
        return err && err->code ? err->code : ET_ERR_IO;
    if (!(m->pool = et_pool_create(threads, err))) return err && err->code ? err->code : ET_ERR_NOMEM;
    return ET_OK;
}

void et_hf_model_free(et_hf_model *m) {
    et_pool_destroy(m->pool);
    et_tokenizer_free(m->tok);
    et_bert_free(&m->model);
    memset(m, 0, sizeof *m);
}

int et_hf_model_max_len(const et_hf_model *m) {
    int n = m->info.max_seq_length > 0 ? m->info.max_seq_length : 256;
    return n > et_bert_max_tokens(&m->model.cfg) ? et_bert_max_tokens(&m->model.cfg) : n;
}
