/* data.h - training/evaluation data readers with defensive validation, SHA-1 and the split.
 *
 * Readers:
 *   - pairs JSONL   : {"query", "positive"} (+ optional "negatives": [..], "negative_queries": [..]
 *                     same length, null entries = unknown, "id"), or pairwise rows
 *                     {"query", "passage"|"positive", "label": 0/1 or float in [0,1],
 *                      "scores": [s1..sK]} or {"experts": {"name": score, ..}}.
 *   - CSV / TSV     : a header row with query, passage (or positive), optional label, optional id,
 *                     every other column is an expert score (named by its header). RFC 4180 quoting
 *                     for CSV; TSV is split on tabs (no quoting). Delimiter from the extension
 *                     (.csv / .tsv), else sniffed from the header line (a tab present => TSV).
 *   - BEIR folder   : corpus.jsonl {"_id","title","text"}, queries.jsonl {"_id","text"},
 *                     qrels.tsv (or qrels/test.tsv) with header "query-id corpus-id score".
 *   - corpus.jsonl  : on its own (search, mine --corpus), the same reader as the BEIR folder's.
 *   - STS JSONL     : {"s1", "s2", "score"[, "id"]} (score any finite number, e.g. 0..5).
 * docs/data-formats.md describes every format and the held-out split for users.
 *
 * Every bad line is reported as "file:line: reason". With opts.skip_bad the reader skips the line,
 * counts it and keeps the first ET_DATA_MAX_MSGS messages in the report; otherwise it stops at the
 * first bad line with ET_ERR_FORMAT (or ET_ERR_MISMATCH / ET_ERR_NUMERIC) and that message.
 * All text is validated as strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF),
 * both the raw line and the decoded JSON strings (so "\ud800" escapes are rejected too).
 *
 * Memory: all strings of one file live in ONE arena allocation (sized from the file length: a
 * decoded field plus its NUL never exceeds its raw bytes), and each per-row array is one
 * allocation. The structs own everything; free with et_pairs_free / et_beir_free. */
#ifndef ET_DATA_H
#define ET_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "util.h"

#define ET_DATA_MAX_MSGS 16
#define ET_DATA_MSG_LEN 256

typedef struct {
    int skip_bad;     /* 0: stop at the first bad line (default); 1: skip and count */
    size_t max_bytes; /* per-file size limit; 0 = 4 GiB */
} et_read_opts;

typedef struct {
    int64_t nread;    /* good rows kept */
    int64_t nbad;     /* bad rows skipped (skip_bad) */
    int nmsgs;        /* messages kept: min(nbad, ET_DATA_MAX_MSGS) */
    char msgs[ET_DATA_MAX_MSGS][ET_DATA_MSG_LEN];
} et_read_report;

/* ---- pairs ------------------------------------------------------------------------------- */
typedef struct {
    int64_t n;               /* rows */
    const char **query;      /* [n] */
    const char **passage;    /* [n] "positive" or "passage" */
    const char **id;         /* [n] NULL entries when a row has no id */
    int64_t *line;           /* [n] the row's 1-based line in the file (CSV/TSV: the record's first line) */
    int has_label;           /* rows carry "label" (else label[] is all 1: positive pairs) */
    float *label;            /* [n] in [0,1] */
    /* negatives, CSR: row i owns neg[neg_off[i] .. neg_off[i+1]) */
    int64_t *neg_off;        /* [n+1] */
    const char **neg;        /* [neg_off[n]] */
    const char **neg_query;  /* [neg_off[n]] or NULL if no row gave negative_queries; NULL entry = unknown */
    /* expert scores */
    int K;                   /* number of experts (0 = none) */
    char **expert_names;     /* [K] names (JSON "experts" keys / CSV headers), or NULL for positional "scores" */
    float *scores;           /* [n, K] row-major */
    /* internal */
    char *arena;
    size_t arena_cap, arena_used;
    int64_t cap, neg_cap;
} et_pairs;

/* Format is chosen from the extension: .jsonl/.json => JSONL, .csv => CSV, .tsv => TSV, other
 * => sniffed (first non-blank byte '{' => JSONL, else CSV/TSV). report may be NULL. */
et_status et_pairs_read(const char *path, const et_read_opts *opts, et_pairs *out,
                        et_read_report *report, et_error *err);
et_status et_pairs_read_jsonl(const char *path, const et_read_opts *opts, et_pairs *out,
                              et_read_report *report, et_error *err);
/* delim: ',' or '\t', or 0 = from extension / sniffed */
et_status et_pairs_read_csv(const char *path, int delim, const et_read_opts *opts, et_pairs *out,
                            et_read_report *report, et_error *err);
void et_pairs_free(et_pairs *p);

/* ---- BEIR -------------------------------------------------------------------------------- */
typedef struct {
    int32_t q;      /* query index */
    int32_t d;      /* doc index */
    int32_t grade;  /* graded relevance (int, as in the qrels) */
} et_qrel;

typedef struct {
    int32_t ndocs;
    const char **doc_id;       /* [ndocs] */
    const char **doc_text;     /* [ndocs] title + " " + text (just the one of them if the other is empty) */
    int32_t *doc_title_len;    /* [ndocs] the title is doc_text[i][0 .. doc_title_len[i]) */
    int32_t nqueries;
    const char **query_id;     /* [nqueries] */
    const char **query_text;   /* [nqueries] */
    int64_t nqrels;
    et_qrel *qrels;            /* [nqrels] sorted by (q, d); no duplicate (q, d) */
    int64_t *qrel_off;         /* [nqueries+1]: query q's judgments are qrels[qrel_off[q] .. qrel_off[q+1]) */
    int32_t njudged;           /* queries with at least one qrels row (the evaluated ones) */
    /* internal */
    char *arena_docs, *arena_queries;
    et_strmap doc_map, query_map;
} et_beir;

/* dir holds corpus.jsonl, queries.jsonl and qrels.tsv (or qrels/test.tsv). Duplicate ids are an
 * error; a qrels row naming a missing doc/query is an error (skipped with skip_bad, like every
 * other bad line). report collects all three files. */
et_status et_beir_read(const char *dir, const et_read_opts *opts, et_beir *out,
                       et_read_report *report, et_error *err);
void et_beir_free(et_beir *b);
/* index of an id, or -1 */
int32_t et_beir_doc_index(const et_beir *b, const char *id);
int32_t et_beir_query_index(const et_beir *b, const char *id);

/* ---- corpus.jsonl ------------------------------------------------------------------------- */
typedef struct {
    int32_t n;
    const char **id;           /* [n] ("_id": a string, or an integer written in decimal) */
    const char **text;         /* [n] title + " " + text (just the one of them if the other is empty) */
    int32_t *title_len;        /* [n] the title is text[i][0 .. title_len[i]) */
    /* internal */
    char *arena;
    et_strmap map;
} et_corpus;

/* corpus.jsonl {"_id", "title"?, "text"}: the reader et_beir_read uses for its corpus. Duplicate ids are
 * an error (always, also with skip_bad); no document at all is an error. */
et_status et_corpus_read(const char *path, const et_read_opts *opts, et_corpus *out, et_read_report *report,
                         et_error *err);
void et_corpus_free(et_corpus *c);

/* ---- STS ------------------------------------------------------------------------------------ */
typedef struct {
    int64_t n;
    const char **s1, **s2;     /* [n] */
    const char **id;           /* [n] "id" (a string, or a number written "%.17g"); NULL entries when absent */
    double *score;             /* [n] finite */
    /* internal */
    char *arena;
    size_t arena_cap, arena_used;
    int64_t cap;
} et_sts;

/* STS JSONL {"s1": str, "s2": str, "score": number[, "id": str|number]}, other fields ignored; validated
 * like the pairs reader (strict UTF-8 of the line and of the decoded strings, file:line messages,
 * skip_bad). Fewer than 2 good rows is an error. */
et_status et_sts_read(const char *path, const et_read_opts *opts, et_sts *out, et_read_report *report,
                      et_error *err);
void et_sts_free(et_sts *s);
/* 1 if path is a file whose first non-blank line is a JSON object with "s1" and "s2" (an STS file). */
int et_sts_sniff(const char *path);

/* ---- UTF-8, SHA-1, split ------------------------------------------------------------------- */
/* 1 if s[0..n) is valid UTF-8 (strict: RFC 3629). If invalid and bad_at != NULL, *bad_at = offset
 * of the first bad byte. */
int et_utf8_valid(const char *s, size_t n, size_t *bad_at);

void et_sha1(const void *data, size_t n, uint8_t out[20]);
/* 40 lowercase hex chars + NUL */
void et_sha1_hex(const void *data, size_t n, char out[41]);
/* The held-out split (docs/data-formats.md), ONE rule for eval, finetune and the web page:
 *   a row is held out iff int(sha1_hex(KEY)[0:8], 16) % 100 >= 80 (SHA-1 of KEY's UTF-8 bytes), where KEY is
 *   - BEIR: the query id;
 *   - pairs / STS rows: the row's "id" when it has a non-empty one, else its query text ("query"; STS: "s1").
 * Keying on the query text keeps every row of one question on the same side (a question asked in several rows
 * is never both trained on and tested on), and the key does not move when rows are added, removed, filtered or
 * reordered (a line number or row index would). */
typedef enum { ET_SPLIT_ALL = 0, ET_SPLIT_TEST = 1, ET_SPLIT_TRAIN = 2 } et_split;

/* the rule on a key: test iff int(sha1_hex(key)[0:8], 16) % 100 >= 80 */
int et_split_is_test(const char *key);
/* the key of a row: id if id && *id, else query (both borrowed; query must not be NULL) */
const char *et_split_key(const char *id, const char *query);
/* et_split_is_test(et_split_key(id, query)) */
int et_split_row_is_test(const char *id, const char *query);
/* 1 if the row belongs to `which` (always for ET_SPLIT_ALL) */
int et_split_keep(et_split which, const char *id, const char *query);
/* The dev split carved from the TRAINING ids (finetune's early stopping), independent of the test rule:
 * dev iff int(sha1_hex("dev:" + id)[0:8], 16) % 100 < ET_DEV_PERCENT. Apply it to the split keys (et_split_key) of training rows. */
#define ET_DEV_PERCENT 15
int et_split_is_dev(const char *id);
/* A deterministic rank key for subsetting training ids: int(sha1_hex("subset:" + id)[0:8], 16). */
uint32_t et_split_subset_key(const char *id);

/* The judged queries (at least one qrels row) of a BEIR set on one side of the split, in query order,
 * their qrels re-indexed to 0..nq-1: qs[q] = B->query_text[orig[q]] (borrowed from B), qrels[qoff[q] ..
 * qoff[q+1]). nq may be 0. */
typedef struct {
    const char **qs;
    int32_t *orig;
    et_qrel *qrels;
    int64_t *qoff;
    int32_t nq;
} et_beir_split;
et_status et_beir_split_make(const et_beir *B, et_split which, et_beir_split *out, et_error *err);
void et_beir_split_free(et_beir_split *s);

#endif
