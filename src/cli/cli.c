/* cli.c - see cli.h */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "cli.h"
#include "data.h"
#include "fileio.h"
#include "lora.h"

void et_cli_print_opts(FILE *f, const et_opt *o, int n) {
    for (int i = 0; i < n; i++) {
        char left[80];
        snprintf(left, sizeof left, "%s%s%s%s%s", o[i].alias ? o[i].alias : "", o[i].alias ? ", " : "",
                 o[i].name, o[i].arg ? " " : "", o[i].arg ? o[i].arg : "");
        fprintf(f, "  %-26s %s\n", left, o[i].help);
    }
    fprintf(f, "  %-26s %s\n", "-h, --help", "show this help");
}

void et_cli_help(FILE *f, const et_command *c) {
    fprintf(f, "usage: embedtune %s\n\n%s\n\noptions:\n", c->usage, c->summary);
    et_cli_print_opts(f, c->opts, c->nopts);
}

/* returns 0 ok, 1 help shown, -1 error */
int et_cli_parse(const et_command *c, int argc, char **argv) {
    for (int j = 0; j < c->nopts; j++) { c->opts[j].argv = argv; c->opts[j].argc = argc; c->opts[j].value = NULL; }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { et_cli_help(stdout, c); return 1; }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t alen = eq ? (size_t)(eq - a) : strlen(a);
        et_opt *o = NULL;
        for (int j = 0; j < c->nopts; j++)
            if ((strlen(c->opts[j].name) == alen && !strncmp(c->opts[j].name, a, alen)) ||
                (c->opts[j].alias && !strcmp(c->opts[j].alias, a)))
                o = &c->opts[j];
        if (!o) {
            fprintf(stderr, "embedtune %s: unknown option '%s' (see 'embedtune %s --help')\n", c->name, a, c->name);
            return -1;
        }
        if (o->arg) {
            if (eq) o->value = eq + 1;
            else if (i + 1 < argc) o->value = argv[++i];
            else { fprintf(stderr, "embedtune %s: option %s needs a value (%s)\n", c->name, o->name, o->arg); return -1; }
        } else {
            if (eq) { fprintf(stderr, "embedtune %s: option %s takes no value\n", c->name, o->name); return -1; }
            o->value = "1";
        }
    }
    return 0;
}

const char *et_cli_get(et_opt *o, int n, const char *name) {
    for (int i = 0; i < n; i++) if (!strcmp(o[i].name, name)) return o[i].value;
    return NULL;
}

int et_cli_get_all(et_opt *o, int n, const char *name, const char **out, int max) {
    if (n <= 0) return 0;
    int cnt = 0;
    for (int i = 0; i < o[0].argc; i++) {
        const char *a = o[0].argv[i];
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t alen = eq ? (size_t)(eq - a) : strlen(a);
        et_opt *m = NULL;
        for (int j = 0; j < n; j++)
            if ((strlen(o[j].name) == alen && !strncmp(o[j].name, a, alen)) || (o[j].alias && !strcmp(o[j].alias, a))) m = &o[j];
        if (!m) continue;
        const char *v = NULL;
        if (m->arg) v = eq ? eq + 1 : (i + 1 < o[0].argc ? o[0].argv[++i] : NULL);
        if (v && !strcmp(m->name, name) && cnt < max) out[cnt++] = v;
    }
    return cnt;
}

/* Parse an integer option in [lo, hi]; *ok = 0 and a message on error. */
long et_cli_int(et_opt *o, int n, const char *name, long def, long lo, long hi, int *ok) {
    const char *v = et_cli_get(o, n, name);
    if (!v) return def;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "embedtune: option %s: expected an integer in [%ld, %ld], got '%s'\n", name, lo, hi, v);
        *ok = 0;
        return def;
    }
    return x;
}

double et_cli_float(et_opt *o, int n, const char *name, double def, double lo, double hi, int *ok) {
    const char *v = et_cli_get(o, n, name);
    if (!v) return def;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "embedtune: option %s: expected a number in [%g, %g], got '%s'\n", name, lo, hi, v);
        *ok = 0;
        return def;
    }
    return x;
}

int et_cli_need(et_opt *o, int n, const char *cmd, const char *name) {
    if (et_cli_get(o, n, name)) return 1;
    fprintf(stderr, "embedtune %s: missing required option %s (see 'embedtune %s --help')\n", cmd, name, cmd);
    return 0;
}

int et_cli_fail(const char *cmd, const et_error *e) {
    fprintf(stderr, "embedtune %s: error: %s\n", cmd, e->msg[0] ? e->msg : et_status_name(e->code));
    return 1;
}

/* ------------------------------------------------------------------ text input */

int et_sv_push(et_strvec *s, char *x) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        char **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) return -1;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = x;
    return 0;
}

void et_sv_free(et_strvec *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* 1 (and *st set) if line is not valid UTF-8, e.g. a Latin-1 file (the tokenizer would silently drop
 * the bad bytes); UTF-16 files already fail on their NUL bytes. */
static int bad_utf8(const char *line, size_t len, const char *label, long lineno, et_status *st, et_error *err) {
    size_t at;
    if (et_utf8_valid(line, len, &at)) return 0;
    *st = et_fail(err, ET_ERR_FORMAT, "%s:%ld: invalid UTF-8 at byte %zu of the line (convert the file to UTF-8)", label, lineno, at + 1);
    return 1;
}

/* Read texts: one per line, or JSONL objects with a "text" field (detected from the first
 * non-empty line starting with '{', or a .jsonl name). Blank lines are skipped in JSONL mode and
 * kept (as empty texts) in plain mode, so output lines match input lines. */
et_status et_cli_read_texts(const char *path, et_strvec *out, et_error *err) {
    FILE *f = path ? fopen(path, "rb") : stdin;
    const char *label = path ? path : "<stdin>";
    if (!f) return et_fail(err, ET_ERR_IO, "%s: cannot open: %s", label, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int mode = -1; /* -1 unknown, 0 plain, 1 jsonl */
    size_t plen = path ? strlen(path) : 0;
    if (plen > 6 && !strcmp(path + plen - 6, ".jsonl")) mode = 1;
    et_status st = ET_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (mode == -1 && len > 0) mode = line[0] == '{' ? 1 : 0;
        if ((size_t)len != strlen(line)) { st = et_fail(err, ET_ERR_FORMAT, "%s:%ld: line contains a NUL byte", label, lineno); break; }
        if (bad_utf8(line, (size_t)len, label, lineno, &st, err)) break;
        char *text = NULL;
        if (mode == 1) {
            if (len == 0) continue;
            cJSON *j = NULL;
            if (et_json_parse(line, (size_t)len, &j, NULL) == ET_ERR_NOMEM) {
                st = et_fail(err, ET_ERR_NOMEM, "%s:%ld: out of memory parsing the JSON", label, lineno);
                break;
            }
            if (!j || !cJSON_IsObject(j)) {
                cJSON_Delete(j);
                st = et_fail(err, ET_ERR_FORMAT, "%s:%ld: not a JSON object (JSONL input needs one object per line with a \"text\" field)", label, lineno);
                break;
            }
            cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
            if (!cJSON_IsString(t)) {
                cJSON_Delete(j);
                st = et_fail(err, ET_ERR_FORMAT, "%s:%ld: field \"text\" is missing or not a string", label, lineno);
                break;
            }
            text = strdup(t->valuestring);
            cJSON_Delete(j);
        } else {
            text = strdup(line);
        }
        if (!text || et_sv_push(out, text)) { free(text); st = et_fail(err, ET_ERR_NOMEM, "%s:%ld: out of memory storing the text", label, lineno); break; }
    }
    free(line);
    if (!st && ferror(f)) st = et_fail(err, ET_ERR_IO, "%s: read error", label);
    if (path) fclose(f);
    return st;
}

/* ------------------------------------------------------------------ model */

et_status et_cli_read_passages(const char *path, et_cli_passages *out, et_error *err) {
    memset(out, 0, sizeof *out);
    char pb[4096];
    size_t l = strlen(path);
    int dir = et_dir_exists(path);
    out->beir = dir || (l >= 12 && !strcmp(path + l - 12, "corpus.jsonl"));
    if (dir) snprintf(pb, sizeof pb, "%s/corpus.jsonl", path); else snprintf(pb, sizeof pb, "%s", path);
    et_status s = out->beir ? et_corpus_read(pb, NULL, &out->corp, NULL, err) : et_cli_read_texts(pb, &out->texts, err);
    if (!s && !out->beir && out->texts.n > INT32_MAX) s = et_fail(err, ET_ERR_ARG, "%s: too many passages", pb);
    if (s) { et_cli_passages_free(out); return s; }
    out->v = out->beir ? (const char *const *)out->corp.text : (const char *const *)out->texts.v;
    out->title_len = out->beir ? out->corp.title_len : NULL;
    out->n = out->beir ? out->corp.n : (int32_t)out->texts.n;
    return ET_OK;
}

void et_cli_passages_free(et_cli_passages *p) {
    if (p->beir) et_corpus_free(&p->corp);
    et_sv_free(&p->texts);
    memset(p, 0, sizeof *p);
}

et_status et_cli_load(const char *dir, int threads, et_hf_model *L, et_error *err) {
    memset(L, 0, sizeof *L);
    if (!et_lora_is_adapter_dir(dir)) return et_hf_model_load(dir, threads, L, err);
    /* a PEFT adapter folder: its base (adapter_config.json base_model_name_or_path), then the adapter merged in */
    et_lora_adapter ad;
    char base[ET_PATH_MAX];
    et_status s = et_lora_read(dir, &ad, err);
    if (!s) s = et_lora_base_dir(dir, &ad, base, sizeof base, err);
    if (!s) s = et_hf_model_load(base, threads, L, err);
    if (!s) s = et_lora_merge(&L->model, &ad, err);
    et_lora_free(&ad);
    return s;
}

et_status et_cli_load_adapted(const char *dir, const char *adapter, int threads, et_hf_model *L, et_error *err) {
    et_status s = et_cli_load(dir, threads, L, err);
    if (!s && adapter && (s = et_lora_apply_dir(&L->model, adapter, err))) et_error_prefix(err, "--adapter %s", adapter);
    return s;
}

long et_cli_default_mem_budget_mb(void) {
#if defined(__EMSCRIPTEN__) || defined(__wasi__)
    return 2048; /* the wasm32 heap limit (MAXIMUM_MEMORY) */
#else
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psize <= 0) return 4096;
    return (long)((double)pages * (double)psize * 0.75 / 1048576.0);
#endif
}

/* ------------------------------------------------------------------ LoRA options (train, finetune) */
int et_cli_lora_options(et_opt *o, int n, const char *cmd, const char *model_dir, et_train_cfg *c, char *base_abs, size_t cap) {
    int ok = 1;
    const char *names[] = {"--lora-alpha", "--lora-dropout", "--lora-targets", "--lora-rslora", "--lora-base", "--merge"};
    if (et_cli_get(o, n, "--checkpoint") && et_cli_get(o, n, "--no-checkpoint")) {
        fprintf(stderr, "embedtune %s: --checkpoint and --no-checkpoint contradict each other\n", cmd);
        return 2;
    }
    if (et_cli_get(o, n, "--checkpoint")) c->act_checkpoint = 1;
    if (et_cli_get(o, n, "--no-checkpoint")) c->act_checkpoint = 0;
    if (!et_cli_get(o, n, "--lora")) {
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (et_cli_get(o, n, names[i])) {
                fprintf(stderr, "embedtune %s: %s needs --lora R\n", cmd, names[i]);
                return 2;
            }
        return 0;
    }
    c->lora_rank = (int)et_cli_int(o, n, "--lora", 8, 1, 4096, &ok);
    c->lora_alpha = et_cli_float(o, n, "--lora-alpha", 2.0 * c->lora_rank, 1e-9, 1e9, &ok);
    c->lora_dropout = et_cli_float(o, n, "--lora-dropout", 0.1, 0, 0.999, &ok);
    c->lora_rslora = et_cli_get(o, n, "--lora-rslora") != NULL;
    et_error err = {0};
    const char *tg = et_cli_get(o, n, "--lora-targets");
    if (tg && et_lora_targets_parse(tg, &c->lora_sites, &err)) {
        fprintf(stderr, "embedtune %s: --lora-targets: %s\n", cmd, err.msg);
        return 2;
    }
    if (c->freeze) { fprintf(stderr, "embedtune %s: --lora freezes the whole base already: drop --freeze / --freeze-embeddings\n", cmd); return 2; }
    if (!ok) return 2;
    /* base_model_name_or_path: --lora-base as given (the page names the model it loaded, not its in-memory folder),
     * else absolute, so the adapter folder can move */
    const char *lb = et_cli_get(o, n, "--lora-base");
    char cwd[ET_PATH_MAX];
    if (lb) {
        if (strlen(lb) >= cap) { fprintf(stderr, "embedtune %s: --lora-base: longer than %zu bytes\n", cmd, cap - 1); return 2; }
        snprintf(base_abs, cap, "%s", lb);
    } else if (model_dir[0] == '/' || !getcwd(cwd, sizeof cwd) || et_path_join(base_abs, cap, cwd, model_dir, NULL))
        snprintf(base_abs, cap, "%s", model_dir);
    c->lora_base = base_abs;
    return 0;
}

int et_cli_freeze_embeddings(et_opt *o, int n, const char *cmd, et_train_cfg *c, char *buf, size_t cap) {
    if (!et_cli_get(o, n, "--freeze-embeddings")) return 0;
    int k = snprintf(buf, cap, "%s%s" ET_TRAIN_WORD_EMB_PREFIX, c->freeze ? c->freeze : "", c->freeze && *c->freeze ? "," : "");
    if (k < 0 || (size_t)k >= cap) { fprintf(stderr, "embedtune %s: --freeze list too long\n", cmd); return 2; }
    c->freeze = buf;
    return 0;
}
