/* tok_common.c - what sentencepiece.c and bpe.c share: UTF-8 decoding of the input, added tokens, tokenizer.json's
 * special ids. See tok_common.h. */
#include "tok_common.h"

void et_tok_decode_utf8(et_tokbuf *dec, const char *text, size_t len) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t j = et_utf8_next((const uint8_t *)text, len, i, &cp);
        if (cp == 0xFFFD) et_tokbuf_put(dec, "\xef\xbf\xbd", 3);
        else et_tokbuf_put(dec, text + i, j - i);
        i = j;
    }
    if (!dec->p) et_tokbuf_put(dec, "", 0);
}

et_status et_tok_added_push(et_tok_added *list, int *n, const char *s, int32_t id, int lstrip, int rstrip, const char *name,
                            et_error *err) {
    if (!*s) return ET_OK;
    et_tok_added *x = &list[*n];
    x->s = strdup(s);
    if (!x->s) return et_fail(err, ET_ERR_NOMEM, "%s: out of memory for an added token", name);
    ++*n;
    x->len = strlen(s);
    x->id = id;
    x->lstrip = lstrip;
    x->rstrip = rstrip;
    return ET_OK;
}

void et_tok_added_free(et_tok_added *list, int n) {
    for (int i = 0; i < n; i++) free(list[i].s);
    free(list);
}

void et_tok_split_added(const et_tok_added *added, int nadded, const char *t, size_t n, et_tok_out *out,
                        int (*section)(void *ctx, const char *p, size_t len, int at_start), void *ctx) {
    size_t start = 0, i = 0;
    while (i < n) {
        int best = -1;
        size_t bl = 0;
        for (int k = 0; k < nadded; k++) {
            const et_tok_added *x = &added[k];
            if (x->len > bl && n - i >= x->len && !memcmp(t + i, x->s, x->len)) {
                best = k;
                bl = x->len;
            }
        }
        if (best < 0) {
            i++;
            continue;
        }
        const et_tok_added *x = &added[best];
        size_t ms = i, me = i + bl;
        if (x->lstrip) {
            while (ms > start) {
                size_t k = ms - 1;
                while (k > start && ((uint8_t)t[k] & 0xC0) == 0x80) k--;
                if (!et_tok_is_ws(et_tok_utf8_cp((const uint8_t *)t + k))) break;
                ms = k;
            }
        }
        if (x->rstrip)
            while (me < n && et_tok_is_ws(et_tok_utf8_cp((const uint8_t *)t + me))) me += et_tok_utf8_len((uint8_t)t[me]);
        if (ms > start && section(ctx, t + start, ms - start, start == 0)) return;
        et_tok_emit(out, x->id);
        start = i = me;
    }
    if (start < n) section(ctx, t + start, n - start, start == 0);
}

/* [CLS]/[SEP] from the post-processor */
static et_status read_post(const cJSON *post, const et_tok_vocab *v, int32_t *cls, int32_t *sep, const char *name, et_error *err) {
    const cJSON *ty = et_tok_jget(post, "type");
    if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence")) { /* e.g. [ByteLevel, TemplateProcessing] */
        const cJSON *e, *one = NULL;
        cJSON_ArrayForEach(e, et_tok_jget(post, "processors")) {
            const cJSON *t = et_tok_jget(e, "type");
            if (cJSON_IsString(t) && !strcmp(t->valuestring, "ByteLevel")) continue;
            if (one) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: a post_processor Sequence with two token-adding processors", name);
            one = e;
        }
        return read_post(one, v, cls, sep, name, err);
    }
    if (!cJSON_IsString(ty)) return et_fail(err, ET_ERR_UNSUPPORTED, "%s: no post_processor: cannot tell the [CLS]/[SEP] tokens", name);
    if (!strcmp(ty->valuestring, "TemplateProcessing")) {
        const cJSON *single = et_tok_jget(post, "single");
        const cJSON *a = cJSON_GetArrayItem(single, 0), *m = cJSON_GetArrayItem(single, 1), *z = cJSON_GetArrayItem(single, 2);
        const cJSON *sa = a ? et_tok_jget(a, "SpecialToken") : NULL, *sz = z ? et_tok_jget(z, "SpecialToken") : NULL;
        if (cJSON_GetArraySize(single) != 3 || !sa || !sz || !m || !et_tok_jget(m, "Sequence") || !cJSON_IsString(et_tok_jget(sa, "id")) ||
            !cJSON_IsString(et_tok_jget(sz, "id")))
            return et_fail(err, ET_ERR_UNSUPPORTED, "%s: post_processor TemplateProcessing: only the form \"X $A Y\" is supported", name);
        const char *names[2] = {et_tok_jget(sa, "id")->valuestring, et_tok_jget(sz, "id")->valuestring};
        int32_t got[2];
        for (int k = 0; k < 2; k++) { /* the special_tokens map when it gives one id, else the vocabulary */
            const cJSON *st = et_tok_jget(et_tok_jget(post, "special_tokens"), names[k]), *ids = st ? et_tok_jget(st, "ids") : NULL;
            got[k] = cJSON_GetArraySize(ids) == 1 ? et_tok_jid(cJSON_GetArrayItem(ids, 0))
                                                  : et_tok_find(v->tok, v->slots, v->cap, names[k], strlen(names[k]));
        }
        *cls = got[0];
        *sep = got[1];
    } else if (!strcmp(ty->valuestring, "RobertaProcessing") || !strcmp(ty->valuestring, "BertProcessing")) {
        const cJSON *c = et_tok_jget(post, "cls"), *p = et_tok_jget(post, "sep");
        if (cJSON_GetArraySize(c) != 2 || cJSON_GetArraySize(p) != 2)
            return et_fail(err, ET_ERR_FORMAT, "%s: %s needs \"cls\" and \"sep\" pairs", name, ty->valuestring);
        *cls = et_tok_jid(cJSON_GetArrayItem(c, 1));
        *sep = et_tok_jid(cJSON_GetArrayItem(p, 1));
    } else {
        return et_fail(err, ET_ERR_UNSUPPORTED, "%s: post_processor \"%s\" is not supported (it gives no [CLS]/[SEP] tokens)", name,
                       ty->valuestring);
    }
    if (*cls < 0 || *cls >= v->n || *sep < 0 || *sep >= v->n)
        return et_fail(err, ET_ERR_MISMATCH, "%s: post_processor names a token that is not in the vocabulary", name);
    return ET_OK;
}

et_status et_tok_json_specials(const cJSON *root, const et_tok_vocab *v, int32_t *cls, int32_t *sep, int32_t *pad, int32_t *mask,
                               const char *name, et_error *err) {
    et_status st = read_post(et_tok_jget(root, "post_processor"), v, cls, sep, name, err);
    if (st) return st;
    const cJSON *pj = et_tok_jget(root, "padding");
    *pad = cJSON_IsObject(pj) && cJSON_IsNumber(et_tok_jget(pj, "pad_id")) ? et_tok_jid(et_tok_jget(pj, "pad_id"))
                                                                           : et_tok_find(v->tok, v->slots, v->cap, "<pad>", 5);
    if (*pad < 0 || *pad >= v->n) return et_fail(err, ET_ERR_MISMATCH, "%s: no padding token (\"padding.pad_id\" or \"<pad>\")", name);
    *mask = et_tok_find(v->tok, v->slots, v->cap, "<mask>", 6);
    return ET_OK;
}
