/* test_strmap.c - et_strmap (util.h), the one string -> index map of the data readers' ids and the pair index:
 * put reports the first index of a duplicate, get finds every key and misses absent ones (also on a zeroed map),
 * intern numbers distinct strings in first-seen order (NULL as ""), and a map grown to thousands of keys with
 * colliding low hash bits finds them all; against a linear search. */
#include <stdio.h>

#include "et_test.h"
#include "util.h"

int main(void) {
    et_strmap z = {0};
    CHECK(et_strmap_get(&z, "a") == -1, "a zeroed map is empty");
    et_strmap_free(&z);

    const char *ids[] = {"d1", "d2", "", "d10", "d2", "é", "d1"};
    int n = (int)(sizeof ids / sizeof ids[0]);
    et_strmap m;
    CHECK(et_strmap_init(&m, n, ids, "ids", NULL) == ET_OK, "init");
    int want_put[] = {-1, -1, -1, -1, 1, -1, 0};
    for (int i = 0; i < n; i++) CHECK(et_strmap_put(&m, i) == want_put[i], "put %d -> %d", i, want_put[i]);
    CHECK(et_strmap_get(&m, "d1") == 0 && et_strmap_get(&m, "d2") == 1 && et_strmap_get(&m, "") == 2, "get");
    CHECK(et_strmap_get(&m, "d10") == 3 && et_strmap_get(&m, "é") == 5, "get");
    CHECK(et_strmap_get(&m, "d") == -1 && et_strmap_get(&m, "d100") == -1 && et_strmap_get(&m, "D1") == -1, "absent keys");
    et_strmap_free(&m);
    CHECK(m.slot == NULL && et_strmap_get(&m, "d1") == -1, "freed map is empty");

    /* interning: first-seen order, NULL counts as "" */
    const char *in[] = {"b", "a", NULL, "b", "", "c", "a"};
    const char *keys[8];
    int32_t nk = 0, got[7], want[] = {0, 1, 2, 0, 2, 3, 1};
    CHECK(et_strmap_init(&m, 7, keys, "interned", NULL) == ET_OK, "init");
    for (int i = 0; i < 7; i++) got[i] = et_strmap_intern(&m, in[i], &nk);
    for (int i = 0; i < 7; i++) CHECK(got[i] == want[i], "intern %d: %d, want %d", i, got[i], want[i]);
    CHECK(nk == 4 && !strcmp(keys[0], "b") && !strcmp(keys[1], "a") && !strcmp(keys[2], "") && !strcmp(keys[3], "c"),
          "distinct keys in order (%d)", nk);
    et_strmap_free(&m);

    /* many keys: every one found at its index, against a linear search of the first occurrence */
    enum { N = 5000 };
    static char buf[N][16];
    static const char *big[N];
    for (int i = 0; i < N; i++) { snprintf(buf[i], sizeof buf[i], "q%d", (i * 7919) % (N / 2)); big[i] = buf[i]; }
    CHECK(et_strmap_init(&m, N, big, "big", NULL) == ET_OK, "init");
    int bad = 0;
    for (int i = 0; i < N; i++) {
        int first = i;
        for (int j = 0; j < i; j++) if (!strcmp(big[j], big[i])) { first = j; break; }
        int32_t r = et_strmap_put(&m, i);
        bad += r != (first == i ? -1 : first);
    }
    for (int i = 0; i < N; i++) {
        int first = 0;
        while (strcmp(big[first], big[i])) first++;
        bad += et_strmap_get(&m, big[i]) != first;
    }
    CHECK(bad == 0, "%d of %d lookups wrong", bad, 2 * N);
    CHECK(et_strmap_get(&m, "q-1") == -1 && et_strmap_get(&m, "x") == -1, "absent");
    et_strmap_free(&m);
    return et_test_report("test_strmap");
}
