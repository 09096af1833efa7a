/* cli.h - shared pieces of the `embedtune` command: an options table per subcommand (the same
 * text drives parsing and --help), text/corpus readers, model loading, progress lines.
 * Subcommands live in src/cli/cli_*.c and are listed in src/cli/main.c. */
#ifndef ET_CLI_H
#define ET_CLI_H

#include <stdio.h>
#include "bert.h"
#include "data.h"
#include "encode.h"
#include "error.h"
#include "fileio.h"
#include "finetune.h"
#include "hf.h"
#include "threads.h"
#include "tokenizer.h"
#include "util.h"

#define ET_VERSION "0.1.0"

typedef struct {
    const char *name;  /* "--model" */
    const char *alias; /* "-k" or NULL */
    const char *arg;   /* metavar, NULL for a flag */
    const char *help;
    const char *value; /* parsed value ("1" for a flag) */
    char **argv;       /* set by et_cli_parse (for et_cli_get_all) */
    int argc;
} et_opt;

typedef struct {
    const char *name;
    const char *summary;
    const char *usage;
    int (*run)(et_opt *o, int n);
    et_opt *opts;
    int nopts;
} et_command;

typedef struct {
    char **v;
    size_t n, cap;
} et_strvec;

#define ET_NOPTS(a) (int)(sizeof a / sizeof a[0])

void et_cli_print_opts(FILE *f, const et_opt *o, int n);
void et_cli_help(FILE *f, const et_command *c);
/* Parse argv into c->opts: 0 ok, 1 help shown, -1 error (message printed). */
int et_cli_parse(const et_command *c, int argc, char **argv);
const char *et_cli_get(et_opt *o, int n, const char *name);
/* Every value given to a repeatable option, in command-line order: fills out[0..max), returns the count. */
int et_cli_get_all(et_opt *o, int n, const char *name, const char **out, int max);
/* Integer option in [lo, hi] (default def); on a bad value prints a message and sets *ok = 0. */
long et_cli_int(et_opt *o, int n, const char *name, long def, long lo, long hi, int *ok);
/* Float option in [lo, hi]. */
double et_cli_float(et_opt *o, int n, const char *name, double def, double lo, double hi, int *ok);
int et_cli_need(et_opt *o, int n, const char *cmd, const char *name);
/* Print "embedtune CMD: error: MESSAGE" and return 1. */
int et_cli_fail(const char *cmd, const et_error *e);

int et_sv_push(et_strvec *s, char *x);
void et_sv_free(et_strvec *s);
/* Texts: one per line, or JSONL objects with a "text" field (NULL path = stdin). */
et_status et_cli_read_texts(const char *path, et_strvec *out, et_error *err);
/* (corpus.jsonl: et_corpus_read in data.h) */

/* Passages without questions (finetune --corpus, the page's corpus file): a BEIR folder or a file named
 * *corpus.jsonl (et_corpus_read: title + text, titles marked in title_len), else texts (et_cli_read_texts:
 * JSONL "text" or one per line). v[0..n) borrow from the struct; free with et_cli_passages_free. */
typedef struct {
    const char *const *v;
    const int32_t *title_len; /* NULL, or [n]: v[i][0 .. title_len[i]) is a title */
    int32_t n;
    int beir;
    et_corpus corp;
    et_strvec texts;
} et_cli_passages;
et_status et_cli_read_passages(const char *path, et_cli_passages *out, et_error *err);
void et_cli_passages_free(et_cli_passages *p);

/* Load a model folder (et_hf_model_load), or a PEFT LoRA adapter folder (lora.h: its base, with the adapter merged in).
 * Free with et_hf_model_free (also after a failure). */
et_status et_cli_load(const char *dir, int threads, et_hf_model *L, et_error *err);
/* et_cli_load, then the LoRA adapter folder `adapter` merged in (NULL: none): the --adapter option. */
et_status et_cli_load_adapted(const char *dir, const char *adapter, int threads, et_hf_model *L, et_error *err);
/* Default --mem-budget of encode/search in MiB: 75% of physical RAM (2048 in wasm, 4096 if unknown). */
long et_cli_default_mem_budget_mb(void);

/* The LoRA options of train and finetune (one table, one parser): put ET_CLI_LORA_OPTS in the command's et_opt array. */
#define ET_CLI_LORA_OPTS                                                                                                  \
    {"--lora", NULL, "R", "train a LoRA adapter of rank R (PEFT format) instead of the whole model: the base is frozen "     \
                          "with no gradient or optimizer state; --out becomes an adapter folder (adapter_config.json + "   \
                          "adapter_model.safetensors) that encode/search/eval take as --model (or --adapter)", NULL},     \
    {"--lora-alpha", NULL, "X", "LoRA alpha: the adapter is scaled by alpha / R (default 2 * R)", NULL},                     \
    {"--lora-dropout", NULL, "P", "dropout on the adapter's input while training (default 0.1)", NULL},                     \
    {"--lora-targets", NULL, "LIST", "Linear layers given adapters, short or PEFT names: q|query, k|key, v|value, "          \
                                     "o|attention.output.dense, ffn_in|intermediate.dense, ffn_out|output.dense, all "        \
                                     "(default q,v)", NULL},                                                                  \
    {"--lora-rslora", NULL, NULL, "rank-stabilised LoRA: scale alpha / sqrt(R) instead of alpha / R", NULL},                 \
    {"--lora-base", NULL, "NAME", "base_model_name_or_path written in adapter_config.json, as given (a Hub name, or a "      \
                                  "path relative to where the adapter will be used; default: the --model folder made "     \
                                  "absolute)", NULL},                                                                      \
    {"--merge", NULL, "DIR", "with --lora: also write the base with the trained adapter merged in, as a plain model "        \
                             "folder (as `embedtune merge`)", NULL},                                                      \
    {"--checkpoint", NULL, NULL, "activation checkpointing: keep each layer's input only and recompute the layer in "       \
                                 "backward (same gradients, less memory, about one more forward per step; on by default "  \
                                 "with --lora)", NULL},                                                                     \
    {"--no-checkpoint", NULL, NULL, "keep every layer's activations (the default without --lora)", NULL}

/* Read the ET_CLI_LORA_OPTS of a command into c (--checkpoint / --no-checkpoint with or without --lora; nothing without --lora; the others without it are refused). The
 * adapter's base_model_name_or_path is --lora-base as given, else model_dir made absolute, kept in base_abs[cap]
 * (c->lora_base points to it).
 * 0 on success, else 2 after a message naming the option. */
int et_cli_lora_options(et_opt *o, int n, const char *cmd, const char *model_dir, et_train_cfg *c, char *base_abs, size_t cap);
/* --freeze-embeddings: add "embeddings.word_embeddings." to c->freeze (kept in buf[cap]). The trainer gives a frozen
 * prefix of the parameter buffer no gradient and no AdamW state (train.h), and the word embeddings come first.
 * 0 on success, else 2 after a message. */
int et_cli_freeze_embeddings(et_opt *o, int n, const char *cmd, et_train_cfg *c, char *buf, size_t cap);
/* Merge the adapter folder into the model folder and write a plain folder at out (`embedtune merge`, train/finetune
 * --merge); dtype ET_ST_F32, _F16 or _BF16. */
et_status et_cli_merge_adapter(const char *model, const char *adapter, const char *out, int dtype, int threads, et_error *err);

/* `embedtune finetune` on parsed options (et_cli_parse of et_cmd_finetune), with a progress / cancel
 * callback (NULL: none) and the starting model's embeddings the caller already has (known, may be NULL:
 * et_finetune_cfg.known); the web page runs the command through this (wasm/et_wasm.c). Exit status. */
int et_cli_finetune_run(et_opt *o, int n, et_ft_progress_fn progress, void *progress_user, const et_ft_known *known);

#endif
