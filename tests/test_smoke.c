/* test_smoke.c - the build links and the pool runs tasks. */
#include <stdio.h>
#include "kernels.h"
#include "et_test.h"
static void inc(void *ctx, int task, int thread) { (void)thread; ((int *)ctx)[task] += task; }
int main(void) {
    et_error err = {0};
    et_pool *p = et_pool_create(2, &err);
    if (!p) { fprintf(stderr, "%s\n", err.msg); return 1; }
    int v[100] = {0};
    for (int r = 0; r < 50; r++) et_pool_run(p, inc, v, 100);
    for (int i = 0; i < 100; i++) CHECK(v[i] == 50 * i, "task %d ran %d", i, v[i]);
    et_pool_destroy(p);
    printf("SIMD path %s\n", et_simd_name());
    return et_test_report("test_smoke");
}
