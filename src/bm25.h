/* bm25.h - Okapi BM25 over an in-memory corpus (the "lexical expert" and the retrieval baseline).
 *
 *   score(q, d) = Σ_{t in q} idf(t) · tf(t,d) · (k1 + 1) / (tf(t,d) + k1 · (1 − b + b · |d| / avgdl))
 *   idf(t)      = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))          (Lucene's, always > 0)
 *
 * Tokens: maximal runs of ASCII [A-Za-z0-9], lowercased; every other byte (punctuation, spaces,
 * non-ASCII UTF-8 bytes) separates tokens. No stemming, no stopwords. |d| = number of tokens.
 * A term repeated in the query counts ONCE by default (the query is a set of terms, as in the
 * reference numbers of docs/evaluation.md, which this reproduces to 4 decimals; counting repeats instead gives
 * e.g. cisi nDCG@10 0.2955 rather than 0.2304). opts.query_tf = 1 counts every occurrence
 * (rank_bm25 style). Terms absent from the corpus contribute nothing.
 *
 * Index: term hash -> id, postings in CSR form (doc id int32 + tf uint32, sorted by doc), so a
 * query only touches its own terms' postings. Scores are accumulated in double.
 * Ranking: score descending, ties by corpus order (lower doc index first). Documents that share
 * no term with the query have score 0 and follow the matching ones in corpus order. */
#ifndef ET_BM25_H
#define ET_BM25_H

#include <stdint.h>
#include "error.h"
#include "threads.h"
#include "util.h"

typedef struct {
    double k1; /* default 0.9 */
    double b;  /* default 0.4 */
    int query_tf; /* 0 (default): each distinct query term once; 1: once per occurrence */
} et_bm25_opts;

typedef struct et_bm25 et_bm25;

/* Build over texts[0..ndocs) (NUL-terminated; NULL = empty). opts may be NULL (defaults).
 * The texts are not kept. */
et_bm25 *et_bm25_build(const char *const *texts, int32_t ndocs, const et_bm25_opts *opts, et_error *err);
/* The same with progress (pr may be NULL): pr reports docs tokenised at the start (0), every 2048 docs and at the end;
 * a cancel fails with ET_ERR_CANCELLED. */
et_bm25 *et_bm25_build_p(const char *const *texts, int32_t ndocs, const et_bm25_opts *opts, const et_progress *pr,
                         et_error *err);
void et_bm25_free(et_bm25 *bm);

int32_t et_bm25_ndocs(const et_bm25 *bm);
int32_t et_bm25_nterms(const et_bm25 *bm);
int64_t et_bm25_npostings(const et_bm25 *bm);
double et_bm25_avgdl(const et_bm25 *bm);
/* idf of a (lowercase) term, or 0 if absent */
double et_bm25_idf(const et_bm25 *bm, const char *term);

/* Dense scores of one query against every doc: out[ndocs]. */
et_status et_bm25_score_all(const et_bm25 *bm, const char *query, double *out, et_error *err);
/* Top-k docs for one query: out_idx[k], out_score[k] (either may be NULL for score). If k > ndocs,
 * the tail is filled with idx -1 and score -INFINITY. */
et_status et_bm25_search(const et_bm25 *bm, const char *query, int32_t k, int32_t *out_idx, double *out_score,
                         et_error *err);
/* Many queries in parallel: out_idx[nq, k], out_score[nq, k] (out_score may be NULL). */
et_status et_bm25_search_batch(et_pool *pool, const et_bm25 *bm, const char *const *queries, int32_t nq, int32_t k,
                               int32_t *out_idx, double *out_score, et_error *err);
/* Score given (query, corpus doc) pairs: out[n] = score(queries[i], doc_idx[i]) (the "expert" score). */
et_status et_bm25_score_pairs(const et_bm25 *bm, const char *const *queries, const int32_t *doc_idx, int64_t n,
                              double *out, et_error *err);
/* Score a query against an arbitrary text with the corpus statistics (N, df, avgdl) of bm. NaN when out of
 * memory. */
double et_bm25_score_text(const et_bm25 *bm, const char *query, const char *text);

/* Serialized form (the BM25 section of an index file, index.h), little-endian, 8-byte aligned parts:
 *   i32 ndocs, i32 nterms, i32 query_tf, i32 0, f64 k1, f64 b, i64 npost, i64 arena_bytes,
 *   i32 dl[ndocs] (padded to 8), i64 term_off[nterms+1] (into the arena), arena (lowercase terms,
 *   padded to 8), i64 post_off[nterms+1], i32 post_doc[npost] (padded), u32 post_tf[npost] (padded).
 * idf, avgdl and the length norms are recomputed on read exactly as et_bm25_build computes them, so a
 * read index scores bit-identically to the built one. */
size_t et_bm25_serialized_size(const et_bm25 *bm);
/* Write et_bm25_serialized_size(bm) bytes to out. */
void et_bm25_serialize(const et_bm25 *bm, unsigned char *out);
/* Read one from buf[0..len) (name for messages). ET_ERR_FORMAT naming the field when inconsistent. */
et_bm25 *et_bm25_deserialize(const unsigned char *buf, size_t len, const char *name, et_error *err);

/* Number of BM25 tokens in text (the document length BM25 uses). */
int64_t et_bm25_count_tokens(const char *text);

/* The tokens of text that are terms of query, by the token rule above (case-folded; every query term,
 * whether or not a corpus holds it): their byte spans [spans[2i], spans[2i+1]) in text, in text order,
 * for i < min(count, cap). Returns the count (may exceed cap); -1 when out of memory. (What a search
 * result highlights: exactly the words BM25 matched.) */
int64_t et_bm25_match_spans(const char *query, const char *text, int64_t *spans, int64_t cap);

#endif
