/* fuzz_json.c - et_json_valid_prefix (src/json.h) against cJSON on arbitrary bytes: whenever the grammar check
 * says the text starts with a valid JSON value, cJSON must parse it (memory permitting), since et_json_parse
 * reports a cJSON failure on such text as out of memory. Also et_json_parse's verdict matches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    int valid = et_json_valid_prefix(s, size);
    cJSON *j = cJSON_ParseWithLengthOpts(s, size, NULL, 0);
    if (valid && !j) abort(); /* the check accepted what cJSON refuses */
    cJSON_Delete(j);
    cJSON *k = NULL;
    et_status st = et_json_parse(s, size, &k, NULL);
    if ((st == ET_OK) != (k != NULL) || (st != ET_OK && st != ET_ERR_FORMAT)) abort(); /* memory suffices here */
    cJSON_Delete(k);
    return 0;
}
