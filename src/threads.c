/* threads.c - see threads.h. Workers sleep on a condition variable between jobs; inside a job,
 * tasks are claimed with an atomic counter (no lock in the hot loop). */
#include "threads.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#if ET_THREADS
#include <pthread.h>
#include <stdatomic.h>

struct et_pool {
    int n; /* threads including the caller */
    pthread_t *tid;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    uint64_t generation; /* bumped per job */
    int stop;
    int active; /* workers still running the current job */
    et_task_fn fn;
    void *ctx;
    int ntasks;
    atomic_int next;
    void **scratch;       /* [n] per-thread buffers (et_pool_scratch) */
    size_t *scratch_size; /* [n] */
};

typedef struct { et_pool *p; int idx; } worker_arg;

static void run_tasks(et_pool *p, int thread) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->ntasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker(void *arg) {
    worker_arg *wa = arg;
    et_pool *p = wa->p;
    int idx = wa->idx;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->cv_start, &p->mu);
        if (p->stop) { pthread_mutex_unlock(&p->mu); break; }
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_tasks(p, idx);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0) pthread_cond_signal(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

et_pool *et_pool_create(int nthreads, et_error *err) {
    if (nthreads <= 0) nthreads = et_cpu_count();
    if (nthreads > 256) return et_fail(err, ET_ERR_ARG, "threads: %d is more than the limit of 256", nthreads), NULL;
    et_pool *p = et_calloc(1, sizeof *p, "thread pool", err);
    if (!p) return NULL;
    p->n = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->next, 0);
    p->scratch = et_calloc((size_t)nthreads, sizeof(void *), "thread scratch", err);
    p->scratch_size = et_calloc((size_t)nthreads, sizeof(size_t), "thread scratch", err);
    if (!p->scratch || !p->scratch_size) { free(p->scratch); free(p->scratch_size); free(p); return NULL; }
    if (nthreads > 1) {
        p->tid = et_calloc((size_t)nthreads, sizeof(pthread_t), "thread ids", err);
        if (!p->tid) { free(p->scratch); free(p->scratch_size); free(p); return NULL; }
        for (int i = 1; i < nthreads; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) { p->n = i; et_pool_destroy(p); et_fail(err, ET_ERR_NOMEM, "out of memory starting threads"); return NULL; }
            wa->p = p; wa->idx = i;
            if (pthread_create(&p->tid[i], NULL, worker, wa) != 0) {
                free(wa); p->n = i; et_pool_destroy(p);
                et_fail(err, ET_ERR_NOMEM, "cannot start thread %d of %d", i, nthreads);
                return NULL;
            }
        }
    }
    return p;
}

void et_pool_destroy(et_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->tid[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    for (int i = 0; i < p->n; i++) free(p->scratch[i]);
    free(p->scratch);
    free(p->scratch_size);
    free(p->tid);
    free(p);
}

int et_pool_size(const et_pool *p) { return p ? p->n : 1; }

void et_pool_run(et_pool *p, et_task_fn fn, void *ctx, int ntasks) {
    if (ntasks <= 0) return;
    if (!p || p->n == 1 || ntasks == 1) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    atomic_store(&p->next, 0);
    p->active = p->n - 1;
    p->generation++;
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->active > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

#else /* no threads (WASI): serial */

struct et_pool { int n; void *scratch[1]; size_t scratch_size[1]; };

et_pool *et_pool_create(int nthreads, et_error *err) {
    (void)nthreads;
    et_pool *p = et_calloc(1, sizeof *p, "thread pool", err);
    if (p) p->n = 1;
    return p;
}
void et_pool_destroy(et_pool *p) { if (p) free(p->scratch[0]); free(p); }
int et_pool_size(const et_pool *p) { (void)p; return 1; }
void et_pool_run(et_pool *p, et_task_fn fn, void *ctx, int ntasks) {
    (void)p;
    for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
}
#endif

void *et_pool_scratch(et_pool *p, int thread, size_t bytes) {
    if (!p || thread < 0 || thread >= p->n) return NULL;
    if (bytes == 0) bytes = 64;
    if (p->scratch_size[thread] < bytes) {
        free(p->scratch[thread]);
        size_t sz = (bytes + 63) & ~(size_t)63;
        p->scratch[thread] = aligned_alloc(64, sz);
        p->scratch_size[thread] = p->scratch[thread] ? sz : 0;
    }
    return p->scratch[thread];
}

int et_cpu_count(void) {
#if ET_THREADS && defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n >= 1) return n > 64 ? 64 : (int)n;
#endif
    return 1;
}
