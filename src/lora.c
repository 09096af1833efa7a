/* lora.c - PEFT LoRA adapters: read, check, merge (see lora.h). */
#include "lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "fileio.h"
#include "json.h"
#include "safetensors.h"

static const char *const SITE_NAME[ET_LORA_SITES] = {"attention.self.query", "attention.self.key", "attention.self.value",
                                                     "attention.output.dense", "intermediate.dense", "output.dense",
                                                     "pooler.dense"};

int et_lora_is_adapter_dir(const char *dir) {
    char p[ET_PATH_MAX];
    if (et_path_join(p, sizeof p, dir, "adapter_config.json", NULL) || !et_file_exists(p)) return 0;
    if (et_path_join(p, sizeof p, dir, "config.json", NULL)) return 0;
    return !et_file_exists(p);
}

void et_lora_free(et_lora_adapter *a) {
    if (!a) return;
    for (int l = 0; l <= ET_MAX_LAYERS; l++)
        for (int s = 0; s < ET_LORA_SITES; s++) { free(a->A[l][s]); free(a->B[l][s]); }
    memset(a, 0, sizeof *a);
}

static et_status read_config(const char *path, et_lora_config *c, et_error *err) {
    char *buf = NULL;
    size_t len = 0;
    et_status s = et_read_file(path, 1 << 20, &buf, &len, err);
    if (s) return s;
    cJSON *j = NULL;
    s = et_json_parse_doc(buf, len, path, &j, err);
    free(buf);
    if (s) return s;
    cJSON *pt = cJSON_GetObjectItem(j, "peft_type"), *r = cJSON_GetObjectItem(j, "r"), *al = cJSON_GetObjectItem(j, "lora_alpha");
    cJSON *dr = cJSON_GetObjectItem(j, "lora_dropout"), *bi = cJSON_GetObjectItem(j, "bias"), *bm = cJSON_GetObjectItem(j, "base_model_name_or_path");
    cJSON *rs = cJSON_GetObjectItem(j, "use_rslora"), *dora = cJSON_GetObjectItem(j, "use_dora"), *fio = cJSON_GetObjectItem(j, "fan_in_fan_out");
    cJSON *rp = cJSON_GetObjectItem(j, "rank_pattern"), *ap = cJSON_GetObjectItem(j, "alpha_pattern");
    s = ET_OK;
    if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA"))
        s = et_fail(err, ET_ERR_FORMAT, "%s: field 'peft_type' must be \"LORA\" (got %s)", path, cJSON_IsString(pt) ? pt->valuestring : "none");
    else if (!cJSON_IsNumber(r) || r->valuedouble < 1 || r->valuedouble > 65536 || r->valuedouble != (int)r->valuedouble)
        s = et_fail(err, ET_ERR_FORMAT, "%s: field 'r' must be a positive integer", path);
    else if (!cJSON_IsNumber(al) || !isfinite(al->valuedouble))
        s = et_fail(err, ET_ERR_FORMAT, "%s: field 'lora_alpha' must be a number", path);
    else if (dr && !cJSON_IsNull(dr) && (!cJSON_IsNumber(dr) || !(dr->valuedouble >= 0 && dr->valuedouble < 1)))
        s = et_fail(err, ET_ERR_FORMAT, "%s: field 'lora_dropout' must be a number in [0, 1)", path);
    else if (bi && !cJSON_IsNull(bi) && (!cJSON_IsString(bi) || strcmp(bi->valuestring, "none")))
        s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: field 'bias' is %s; only \"none\" is supported", path, cJSON_IsString(bi) ? bi->valuestring : "not a string");
    else if (cJSON_IsTrue(dora))
        s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: use_dora (DoRA) is not supported", path);
    else if (cJSON_IsTrue(fio))
        s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: fan_in_fan_out is not supported (it is for GPT-2's Conv1D)", path);
    else if ((cJSON_IsObject(rp) && cJSON_GetArraySize(rp) > 0) || (cJSON_IsObject(ap) && cJSON_GetArraySize(ap) > 0))
        s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: rank_pattern / alpha_pattern (per-module ranks) are not supported", path);
    if (!s) {
        c->r = (int)r->valuedouble;
        c->alpha = al->valuedouble;
        c->dropout = cJSON_IsNumber(dr) ? dr->valuedouble : 0;
        c->use_rslora = cJSON_IsTrue(rs);
        c->scale = c->use_rslora ? c->alpha / sqrt((double)c->r) : c->alpha / c->r;
        snprintf(c->base, sizeof c->base, "%s", cJSON_IsString(bm) ? bm->valuestring : "");
    }
    cJSON_Delete(j);
    return s;
}

/* key -> (layer, site, is_B); 0 if the key is not a LoRA A/B weight of a known module, -1 if it is a LoRA tensor of
 * a module we cannot adapt */
static int parse_key(const char *key, int *layer, int *site, int *isB) {
    const char *p = key;
    if (!strncmp(p, "base_model.model.", 17)) p += 17;
    if (!strncmp(p, "bert.", 5)) p += 5;
    else if (!strncmp(p, "roberta.", 8)) p += 8;
    size_t n = strlen(p);
    const char *suf = NULL;
    const size_t sl = sizeof ".lora_A.weight" - 1;
    if (n > sl && !strcmp(p + n - sl, ".lora_A.weight")) { suf = p + n - sl; *isB = 0; }
    else if (n > sl && !strcmp(p + n - sl, ".lora_B.weight")) { suf = p + n - sl; *isB = 1; }
    if (!suf) return strstr(key, "lora_") ? -1 : 0;
    size_t mlen = (size_t)(suf - p);
    if (mlen == 12 && !strncmp(p, "pooler.dense", 12)) { *layer = ET_MAX_LAYERS; *site = ET_LORA_POOLER; return 1; }
    if (strncmp(p, "encoder.layer.", 14)) return -1;
    char *e;
    long l = strtol(p + 14, &e, 10);
    if (e == p + 14 || *e != '.' || l < 0 || l >= ET_MAX_LAYERS) return -1;
    const char *m = e + 1;
    size_t ml = (size_t)(suf - m);
    for (int s = 0; s < ET_LORA_POOLER; s++)
        if (strlen(SITE_NAME[s]) == ml && !strncmp(m, SITE_NAME[s], ml)) { *layer = (int)l; *site = s; return 1; }
    return -1;
}

et_status et_lora_read(const char *dir, et_lora_adapter *a, et_error *err) {
    memset(a, 0, sizeof *a);
    char p[ET_PATH_MAX];
    et_status s;
    if ((s = et_path_join(p, sizeof p, dir, "adapter_config.json", err))) return s;
    if (!et_file_exists(p)) return et_fail(err, ET_ERR_IO, "%s: no adapter_config.json (not a PEFT adapter folder)", dir);
    if ((s = read_config(p, &a->cfg, err))) return s;
    if ((s = et_path_join(p, sizeof p, dir, "adapter_model.safetensors", err))) return s;
    if (!et_file_exists(p))
        return et_fail(err, ET_ERR_IO, "%s: no adapter_model.safetensors (adapter_model.bin, PyTorch pickles, cannot be read: save with safe_serialization)", dir);
    et_st_file f;
    if ((s = et_st_open(&f, p, 0, err))) return s;
    for (int i = 0; i < f.n && !s; i++) {
        const et_st_tensor *t = &f.t[i];
        int l = 0, site = 0, isB = 0, k = parse_key(t->name, &l, &site, &isB);
        if (k == 0) continue;
        if (k < 0) { s = et_fail(err, ET_ERR_UNSUPPORTED, "%s: tensor '%s' adapts a module embedtune cannot adapt (only the encoder's Linear layers and the pooler)", p, t->name); break; }
        if (t->ndim != 2) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s' has %d dimensions, expected 2", p, t->name, t->ndim); break; }
        int64_t r = isB ? t->shape[1] : t->shape[0], other = isB ? t->shape[0] : t->shape[1];
        if (r != a->cfg.r) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s' has rank %lld, adapter_config.json says r = %d", p, t->name, (long long)r, a->cfg.r); break; }
        float **slot = isB ? &a->B[l][site] : &a->A[l][site];
        if (*slot) { s = et_fail(err, ET_ERR_FORMAT, "%s: tensor '%s' is given twice (with and without a 'bert.' prefix?)", p, t->name); break; }
        if (!(*slot = et_malloc(t->numel * sizeof(float), "adapter tensor", err))) { s = ET_ERR_NOMEM; break; }
        if ((s = et_st_read_f32(&f, t, *slot, err))) break;
        for (size_t j = 0; j < t->numel; j++)
            if (!isfinite((*slot)[j])) { s = et_fail(err, ET_ERR_NUMERIC, "%s: tensor '%s' has a non-finite value at %zu", p, t->name, j); break; }
        if (isB) a->out[l][site] = (int)other; else a->in[l][site] = (int)other;
        if (l < ET_MAX_LAYERS && l + 1 > a->n_layers) a->n_layers = l + 1;
    }
    et_st_close(&f);
    for (int l = 0; l <= ET_MAX_LAYERS && !s; l++)
        for (int site = 0; site < ET_LORA_SITES && !s; site++) {
            if (!a->A[l][site] != !a->B[l][site])
                s = et_fail(err, ET_ERR_FORMAT, "%s: %s%d.%s has lora_%s but no lora_%s", p, l < ET_MAX_LAYERS ? "encoder.layer." : "",
                            l, SITE_NAME[site], a->A[l][site] ? "A" : "B", a->A[l][site] ? "B" : "A");
            a->n_modules += a->A[l][site] != NULL;
        }
    if (!s && !a->n_modules) s = et_fail(err, ET_ERR_FORMAT, "%s: no lora_A / lora_B tensor", p);
    if (s) et_lora_free(a);
    return s;
}

et_status et_lora_base_dir(const char *adapter_dir, const et_lora_adapter *a, char *out, size_t cap, et_error *err) {
    const char *b = a->cfg.base;
    if (!*b) return et_fail(err, ET_ERR_ARG, "%s/adapter_config.json has no base_model_name_or_path: give the base model with --model DIR", adapter_dir);
    char p[ET_PATH_MAX];
    if (b[0] != '/' && !et_path_join(p, sizeof p, adapter_dir, b, NULL) && et_dir_exists(p)) {
        if (strlen(p) >= cap) return et_fail(err, ET_ERR_ARG, "path too long: %s", p);
        memcpy(out, p, strlen(p) + 1);
        return ET_OK;
    }
    if (et_dir_exists(b)) {
        if (strlen(b) >= cap) return et_fail(err, ET_ERR_ARG, "path too long: %s", b);
        memcpy(out, b, strlen(b) + 1);
        return ET_OK;
    }
    return et_fail(err, ET_ERR_IO, "%s/adapter_config.json: base_model_name_or_path '%s' is not a folder here (nothing is downloaded): "
                   "give the base model folder with --model DIR", adapter_dir, b);
}

/* the Linear weight of (layer, site) in m and its [out, in]; NULL if the model has none there */
static float *site_weight(const et_bert *m, int l, int site, int *out, int *in) {
    int C = m->cfg.hidden_size, I = m->cfg.intermediate_size;
    if (site == ET_LORA_POOLER) { *out = C; *in = C; return m->w.pool_w; }
    if (l >= m->cfg.num_layers) return NULL;
    const et_bert_layer_params *w = &m->w.layer[l];
    float *W[6] = {w->q_w, w->k_w, w->v_w, w->ao_w, w->i_w, w->o_w};
    int o[6] = {C, C, C, C, I, C}, i[6] = {C, C, C, C, C, I};
    *out = o[site];
    *in = i[site];
    return W[site];
}

et_status et_lora_merge(et_bert *m, const et_lora_adapter *a, et_error *err) {
    /* check everything first, so a refused adapter leaves the model as it was */
    for (int l = 0; l <= ET_MAX_LAYERS; l++)
        for (int s = 0; s < ET_LORA_SITES; s++) {
            if (!a->A[l][s]) continue;
            int o = 0, i = 0;
            float *W = site_weight(m, l, s, &o, &i);
            if (s == ET_LORA_POOLER && !W) continue; /* no pooler kept: it does not enter the embeddings */
            if (!W) {
                if (l >= m->cfg.num_layers)
                    return et_fail(err, ET_ERR_MISMATCH, "adapter: encoder.layer.%d.%s, but the model has %d layers", l, SITE_NAME[s], m->cfg.num_layers);
                return et_fail(err, ET_ERR_UNSUPPORTED, "adapter: encoder.layer.%d.%s is a mixture-of-experts layer in this model", l, SITE_NAME[s]);
            }
            if (a->in[l][s] != i || a->out[l][s] != o)
                return et_fail(err, ET_ERR_MISMATCH, "adapter: %s%d.%s is [%d x %d] (B A), the model's weight is [%d x %d]",
                               s == ET_LORA_POOLER ? "" : "encoder.layer.", l, SITE_NAME[s], a->out[l][s], a->in[l][s], o, i);
        }
    int r = a->cfg.r;
    for (int l = 0; l <= ET_MAX_LAYERS; l++)
        for (int s = 0; s < ET_LORA_SITES; s++) {
            int o = 0, i = 0;
            float *W = a->A[l][s] ? site_weight(m, l, s, &o, &i) : NULL;
            if (!W) continue;
            const float *A = a->A[l][s], *B = a->B[l][s];
            for (int u = 0; u < o; u++)
                for (int v = 0; v < i; v++) {
                    double acc = 0;
                    for (int k = 0; k < r; k++) acc += (double)B[(size_t)u * r + k] * A[(size_t)k * i + v];
                    W[(size_t)u * i + v] = (float)((double)W[(size_t)u * i + v] + a->cfg.scale * acc);
                }
        }
    et_bert_params_changed(m);
    return ET_OK;
}

et_status et_lora_apply_dir(et_bert *m, const char *dir, et_error *err) {
    et_lora_adapter a;
    et_status s = et_lora_read(dir, &a, err);
    if (!s) s = et_lora_merge(m, &a, err);
    et_lora_free(&a);
    return s;
}

/* ------------------------------------------------------------------ training: targets, save, resume */

static const char *const SHORT_NAME[ET_LIN_N] = {"q", "k", "v", "o", "ffn_in", "ffn_out"};
static const char *const PEFT_NAME[ET_LIN_N] = {"query", "key", "value", "attention.output.dense", "intermediate.dense",
                                                "output.dense"};

et_status et_lora_targets_parse(const char *s, unsigned *sites, et_error *err) {
    *sites = 0;
    if (!s || !*s) return et_fail(err, ET_ERR_ARG, "LoRA targets: empty list (q, k, v, o, ffn_in, ffn_out or PEFT names)");
    for (const char *p = s; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        if (n == 3 && !strncmp(p, "all", 3)) { *sites |= (1u << ET_LIN_N) - 1; found = ET_LIN_N; }
        for (int j = 0; j < ET_LIN_N && found < 0; j++) {
            const char *alt = j == ET_LIN_I ? "intermediate" : j == ET_LIN_AO ? "attention.output" : NULL;
            if ((strlen(SHORT_NAME[j]) == n && !strncmp(p, SHORT_NAME[j], n)) ||
                (strlen(PEFT_NAME[j]) == n && !strncmp(p, PEFT_NAME[j], n)) ||
                (strlen(SITE_NAME[j]) == n && !strncmp(p, SITE_NAME[j], n)) || (alt && strlen(alt) == n && !strncmp(p, alt, n)))
                found = j;
        }
        if (found < 0)
            return et_fail(err, ET_ERR_ARG, "LoRA targets: unknown Linear layer '%.*s' (q|query, k|key, v|value, "
                                            "o|attention.output.dense, ffn_in|intermediate.dense, ffn_out|output.dense, all)",
                           (int)n, p);
        if (found < ET_LIN_N) *sites |= 1u << found;
        if (!e) break;
        p = e + 1;
    }
    return ET_OK;
}

void et_lora_targets_str(unsigned sites, char *out, size_t cap) {
    size_t k = 0;
    if (cap) out[0] = 0;
    for (int j = 0; j < ET_LIN_N; j++)
        if ((sites >> j) & 1u && k < cap) k += (size_t)snprintf(out + k, cap - k, "%s%s", k ? "," : "", SHORT_NAME[j]);
}

et_status et_lora_save(const char *dir, const et_bert *m, const et_lora_config *c, et_error *err) {
    const et_bert_config *mc = &m->cfg;
    if (!m->lora || mc->lora_rank < 1) return et_fail(err, ET_ERR_ARG, "LoRA save: the model has no adapters attached");
    if (c->r != mc->lora_rank) return et_fail(err, ET_ERR_ARG, "LoRA save: r %d, but the adapters have rank %d", c->r, mc->lora_rank);
    et_status s;
    if ((s = et_mkdir_p(dir, err))) return s;
    unsigned sites = mc->lora_sites;
    int L = mc->num_layers, n = 0;
    et_st_out *t = et_calloc((size_t)L * ET_LIN_N * 2, sizeof *t, "adapter tensor list", err);
    char (*names)[160] = et_calloc((size_t)L * ET_LIN_N * 2, sizeof *names, "adapter tensor names", err);
    if (!t || !names) { free(t); free(names); return ET_ERR_NOMEM; }
    for (int l = 0; l < L; l++)
        for (int j = 0; j < ET_LIN_N; j++) {
            if (!((sites >> j) & 1u) || !m->w.layer[l].lora_A[j]) continue;
            int in = j == ET_LIN_O ? mc->intermediate_size : mc->hidden_size, out = j == ET_LIN_I ? mc->intermediate_size : mc->hidden_size;
            for (int isB = 0; isB < 2; isB++) {
                snprintf(names[n], sizeof names[n], "base_model.model.encoder.layer.%d.%s.lora_%c.weight", l, SITE_NAME[j], isB ? 'B' : 'A');
                t[n].name = names[n];
                t[n].data = isB ? m->w.layer[l].lora_B[j] : m->w.layer[l].lora_A[j];
                t[n].ndim = 2;
                t[n].shape[0] = isB ? out : c->r;
                t[n].shape[1] = isB ? c->r : in;
                n++;
            }
        }
    char p[ET_PATH_MAX];
    if (!(s = et_path_join(p, sizeof p, dir, "adapter_model.safetensors", err))) s = et_st_write(p, t, n, ET_ST_F32, err);
    free(t);
    free(names);
    if (s) return s;
    /* adapter_config.json */
    cJSON *j = cJSON_CreateObject(), *tm = NULL;
    int o_alone = (sites >> ET_LIN_O) & 1u && !((sites >> ET_LIN_AO) & 1u);
    if (o_alone) { /* "output.dense" would also match attention.output.dense: a regex (PEFT: re.fullmatch on the name) */
        char re[512];
        size_t k = (size_t)snprintf(re, sizeof re, "encoder\\.layer\\.\\d+\\.(");
        for (int q = 0, first = 1; q < ET_LIN_N; q++)
            if ((sites >> q) & 1u) {
                char esc[64];
                size_t e = 0;
                for (const char *x = SITE_NAME[q]; *x && e + 3 < sizeof esc; x++) {
                    if (*x == '.') esc[e++] = '\\';
                    esc[e++] = *x;
                }
                esc[e] = 0;
                k += (size_t)snprintf(re + k, sizeof re - k, "%s%s", first ? "" : "|", esc);
                first = 0;
            }
        snprintf(re + k, sizeof re - k, ")");
        tm = cJSON_CreateString(re);
    } else {
        tm = cJSON_CreateArray();
        for (int q = 0; q < ET_LIN_N; q++)
            if ((sites >> q) & 1u) cJSON_AddItemToArray(tm, cJSON_CreateString(q == ET_LIN_O ? "output.dense" : PEFT_NAME[q]));
    }
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddStringToObject(j, "task_type", "FEATURE_EXTRACTION");
    cJSON_AddStringToObject(j, "base_model_name_or_path", c->base);
    cJSON_AddNumberToObject(j, "r", c->r);
    cJSON_AddNumberToObject(j, "lora_alpha", c->alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", c->dropout);
    cJSON_AddBoolToObject(j, "use_rslora", c->use_rslora != 0);
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddItemToObject(j, "target_modules", tm);
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "init_lora_weights", 1);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "use_dora", 0);
    cJSON_AddNullToObject(j, "modules_to_save");
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt) return et_fail(err, ET_ERR_NOMEM, "out of memory writing adapter_config.json");
    size_t len = strlen(txt);
    char *withnl = realloc(txt, len + 2);
    if (withnl) { txt = withnl; txt[len++] = '\n'; txt[len] = 0; }
    if (!(s = et_path_join(p, sizeof p, dir, "adapter_config.json", err))) s = et_write_file_atomic(p, txt, len, err);
    free(txt);
    return s;
}

et_status et_lora_load_into(et_bert *m, const et_lora_adapter *a, et_error *err) {
    const et_bert_config *mc = &m->cfg;
    if (!m->lora) return et_fail(err, ET_ERR_ARG, "LoRA: the model has no adapters attached to load into");
    if (a->cfg.r != mc->lora_rank)
        return et_fail(err, ET_ERR_MISMATCH, "LoRA: the adapter has rank %d, the model's adapters %d", a->cfg.r, mc->lora_rank);
    for (int l = 0; l <= ET_MAX_LAYERS; l++)
        for (int j = 0; j < ET_LORA_SITES; j++) {
            int want = l < mc->num_layers && j < ET_LIN_N && m->w.layer[l].lora_A[j];
            if (want != (a->A[l][j] != NULL))
                return et_fail(err, ET_ERR_MISMATCH, "LoRA: %s%d.%s is %s in the adapter but %s in the model", l < ET_MAX_LAYERS ? "encoder.layer." : "",
                               l, SITE_NAME[j], a->A[l][j] ? "adapted" : "not adapted", want ? "adapted" : "not adapted");
            if (!want) continue;
            int in = j == ET_LIN_O ? mc->intermediate_size : mc->hidden_size, out = j == ET_LIN_I ? mc->intermediate_size : mc->hidden_size;
            if (a->in[l][j] != in || a->out[l][j] != out)
                return et_fail(err, ET_ERR_MISMATCH, "LoRA: encoder.layer.%d.%s is [%d x %d] in the adapter, [%d x %d] in the model",
                               l, SITE_NAME[j], a->out[l][j], a->in[l][j], out, in);
        }
    int r = mc->lora_rank;
    for (int l = 0; l < mc->num_layers; l++)
        for (int j = 0; j < ET_LIN_N; j++) {
            if (!m->w.layer[l].lora_A[j]) continue;
            memcpy(m->w.layer[l].lora_A[j], a->A[l][j], sizeof(float) * (size_t)r * a->in[l][j]);
            memcpy(m->w.layer[l].lora_B[j], a->B[l][j], sizeof(float) * (size_t)r * a->out[l][j]);
        }
    et_bert_params_changed(m);
    return ET_OK;
}
