/* json.h - the library's one way to parse JSON text (cJSON underneath, third_party/cjson).
 *
 * cJSON returns NULL both for malformed text and when an allocation fails, so a reader that trusts it
 * reports "not valid JSON" for a valid file when memory runs out. et_json_parse tells the two apart: when
 * cJSON fails, the text is checked against the JSON grammar (RFC 8259, plus cJSON's own limits: nesting
 * depth CJSON_NESTING_LIMIT, well-formed \u surrogate pairs) without allocating; valid text means cJSON ran
 * out of memory. Content after the first complete value is not looked at (as cJSON_ParseWithLengthOpts
 * with require_null_terminated = 0): callers that refuse trailing bytes check *end themselves. A UTF-8 BOM is
 * skipped as cJSON skips it (only when at least two bytes follow it). */
#ifndef ET_JSON_H
#define ET_JSON_H

#include <stddef.h>
#include "cJSON.h"
#include "error.h"

/* Parse buf[0..len). Returns ET_OK with *out the tree (free with cJSON_Delete); ET_ERR_FORMAT (malformed)
 * or ET_ERR_NOMEM with *out = NULL. *end (may be NULL) receives the byte after the parsed value, or on
 * ET_ERR_FORMAT where cJSON stopped. Records nothing in an et_error: callers name the file and line. */
et_status et_json_parse(const char *buf, size_t len, cJSON **out, const char **end);

/* A whole JSON document named `name` (a file name, for messages): NULL data is ET_ERR_ARG, then et_json_parse,
 * with the failure recorded in err as "NAME: not valid JSON" or "NAME: out of memory parsing the JSON". */
et_status et_json_parse_doc(const char *buf, size_t len, const char *name, cJSON **out, et_error *err);

/* 1 if buf[0..len) starts (after optional whitespace and a UTF-8 BOM) with one complete JSON value that
 * cJSON accepts when memory suffices; never allocates. */
int et_json_valid_prefix(const char *buf, size_t len);

#endif
