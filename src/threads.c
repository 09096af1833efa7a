/* threads.c - see threads.h. Between jobs, workers spin briefly (ET_SPIN_NS) on an atomic job
 * generation, then sleep on a condition variable; inside a job, tasks are claimed with an atomic
 * counter (no lock in the hot loop). */
#include "threads.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#if ET_THREADS
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ET_CPU_RELAX() _mm_pause()
#else
#define ET_CPU_RELAX() ((void)0)
#endif

/* How long a thread spins (polling an atomic, with pause) before it sleeps on the condition
 * variable (et_pool_set_spin; initial value from the environment variable ET_SPIN_US, else
 * ET_SPIN_DEFAULT_US). A forward pass runs ~90 pool jobs back to back and a sleep/wake-up round trip
 * costs tens of microseconds, which dominates small batches. Measured (MiniLM-L6, 1 x 32 tokens,
 * 2 threads, 2 cores): quiet machine 132 -> 183 sentences/s median (spin 0 -> 50 us), no change at
 * 32 x 128; with two busy processes beside it 67-114 -> 95-107 (noisy, no loss). An earlier
 * measurement at load 10 saw -15%: set ET_SPIN_US=0 there. Bounded: an idle pool sleeps. */
#define ET_SPIN_MAX_US 100000
#define ET_SPIN_DEFAULT_US 50

struct et_pool {
    int n; /* threads including the caller */
    pthread_t *tid;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    /* (generation << 32) | next task index: a task is claimed by a CAS that also checks the job's
     * generation, so a worker that wakes late (descheduled on a busy machine) can never claim a
     * task of another job, and the caller never waits for a worker that did not take part. */
    _Alignas(64) atomic_uint_fast64_t ticket;
    _Alignas(64) atomic_int done; /* tasks of the current job completed */
    atomic_int stop;
    int sleepers;        /* workers blocked on cv_start (under mu) */
    int caller_sleeping; /* the caller is blocked on cv_done (under mu) */
    atomic_uint_fast64_t spin_ns; /* spin before sleeping (0: sleep at once) */
    struct { et_task_fn fn; void *ctx; int ntasks, maxth; } job[2]; /* by generation & 1 */
    void **scratch;       /* [n] per-thread buffers (et_pool_scratch) */
    size_t *scratch_size; /* [n] */
};

typedef struct { et_pool *p; int idx; } worker_arg;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Claims and runs tasks of job `gen` until none are left. A successful CAS on (gen, i) proves job
 * gen was current then, and it cannot end before task i is done, so its job slot is stable. */
static void run_tasks(et_pool *p, uint32_t gen, int thread) {
    for (;;) {
        uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
        if ((uint32_t)(t >> 32) != gen) return;
        uint32_t i = (uint32_t)t;
        int ntasks = p->job[gen & 1].ntasks;
        /* a thread beyond the job's limit takes no task (a stale read can only make it skip: the caller,
         * thread 0, always takes part and runs whatever is left) */
        if (thread >= p->job[gen & 1].maxth) return;
        if ((int)i >= ntasks) return;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel, memory_order_relaxed))
            continue;
        /* read the slot only while our claimed task keeps the job alive */
        et_task_fn fn = p->job[gen & 1].fn;
        void *ctx = p->job[gen & 1].ctx;
        ntasks = p->job[gen & 1].ntasks;
        fn(ctx, (int)i, thread);
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) + 1 == ntasks && thread != 0) {
            /* this finished the job: wake the caller if it went to sleep */
            pthread_mutex_lock(&p->mu);
            if (p->caller_sleeping) pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* one step of a bounded spin: pause; every 64 steps check the clock. Returns 1 once spin_ns
 * have passed since the first check (at once when spin_ns is 0). */
static int relax(et_pool *p, unsigned i, uint64_t *t0) {
    uint64_t lim = atomic_load_explicit(&p->spin_ns, memory_order_relaxed);
    if (!lim) return 1;
    ET_CPU_RELAX();
    if ((i & 63) == 0) {
        uint64_t t = now_ns();
        if (!*t0) *t0 = t;
        else if (t - *t0 > lim) return 1;
    }
    return 0;
}

static uint32_t gen_of(et_pool *p) { return (uint32_t)(atomic_load_explicit(&p->ticket, memory_order_acquire) >> 32); }

static void *worker(void *arg) {
    worker_arg *wa = arg;
    et_pool *p = wa->p;
    int idx = wa->idx;
    free(wa);
    uint32_t seen = 0;
    for (;;) {
        uint64_t t0 = 0;
        int got = 0;
        for (unsigned i = 1;; i++) { /* spin for the next job, then sleep */
            if (gen_of(p) != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) { got = 1; break; }
            if (relax(p, i, &t0)) break;
        }
        if (!got) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (!atomic_load(&p->stop) && gen_of(p) == seen) pthread_cond_wait(&p->cv_start, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = gen_of(p);
        run_tasks(p, seen, idx);
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
    atomic_init(&p->ticket, 0);
    atomic_init(&p->spin_ns, (uint64_t)ET_SPIN_DEFAULT_US * 1000u);
    const char *spin = getenv("ET_SPIN_US");
    if (spin) et_pool_set_spin(p, atoi(spin));
    atomic_init(&p->done, 0);
    atomic_init(&p->stop, 0);
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
    atomic_store(&p->stop, 1);
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

void et_pool_set_spin(et_pool *p, int usec) {
    if (!p) return;
    if (usec < 0) usec = 0;
    if (usec > ET_SPIN_MAX_US) usec = ET_SPIN_MAX_US;
    atomic_store_explicit(&p->spin_ns, (uint64_t)usec * 1000u, memory_order_relaxed);
}

void et_pool_run(et_pool *p, et_task_fn fn, void *ctx, int ntasks) { et_pool_run_n(p, fn, ctx, ntasks, 0); }

void et_pool_run_n(et_pool *p, et_task_fn fn, void *ctx, int ntasks, int maxth) {
    if (ntasks <= 0) return;
    if (maxth <= 0 || (p && maxth > p->n)) maxth = p ? p->n : 1;
    if (!p || p->n == 1 || ntasks == 1 || maxth == 1) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
        return;
    }
    /* the previous job is complete; late workers may still look at it, but cannot claim */
    uint32_t gen = gen_of(p) + 1;
    p->job[gen & 1].fn = fn;
    p->job[gen & 1].ctx = ctx;
    p->job[gen & 1].ntasks = ntasks;
    p->job[gen & 1].maxth = maxth;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ticket, (uint64_t)gen << 32, memory_order_seq_cst); /* publishes the job */
    /* a worker that went to sleep checked the generation under mu after counting itself in
     * sleepers, so either it sees the new generation or we see it in sleepers: no lost wake-up */
    pthread_mutex_lock(&p->mu);
    if (p->sleepers) pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, gen, 0);
    /* wait for tasks other threads claimed: spin briefly, then sleep */
    uint64_t t0 = 0;
    for (unsigned i = 1; atomic_load_explicit(&p->done, memory_order_acquire) < ntasks; i++) {
        if (relax(p, i, &t0)) {
            pthread_mutex_lock(&p->mu);
            p->caller_sleeping = 1;
            while (atomic_load_explicit(&p->done, memory_order_acquire) < ntasks) pthread_cond_wait(&p->cv_done, &p->mu);
            p->caller_sleeping = 0;
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
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
void et_pool_set_spin(et_pool *p, int usec) { (void)p; (void)usec; }
int et_pool_size(const et_pool *p) { (void)p; return 1; }
void et_pool_run(et_pool *p, et_task_fn fn, void *ctx, int ntasks) {
    (void)p;
    for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
}
void et_pool_run_n(et_pool *p, et_task_fn fn, void *ctx, int ntasks, int maxth) {
    (void)maxth;
    et_pool_run(p, fn, ctx, ntasks);
}
#endif

void *et_pool_scratch(et_pool *p, int thread, size_t bytes) {
    if (!p || thread < 0 || thread >= p->n) return NULL;
    if (bytes == 0) bytes = 64;
    if (p->scratch_size[thread] < bytes) { /* grow; on failure keep what is there */
        size_t sz = (bytes + 63) & ~(size_t)63;
        void *q = aligned_alloc(64, sz);
        if (!q) return NULL;
        free(p->scratch[thread]);
        p->scratch[thread] = q;
        p->scratch_size[thread] = sz;
    }
    return p->scratch[thread];
}

et_status et_pool_reserve(et_pool *p, size_t first, size_t each, et_error *err) {
    if (!p) return ET_OK;
    for (int t = 0; t < p->n; t++) {
        size_t want = t ? each : first;
        if (want && !et_pool_scratch(p, t, want))
            return et_fail(err, ET_ERR_NOMEM, "cannot allocate %.1f MiB of kernel workspace for thread %d of %d",
                           (double)want / (1 << 20), t, p->n);
    }
    return ET_OK;
}

int et_cpu_count(void) {
#if ET_THREADS && defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n >= 1) return n > 64 ? 64 : (int)n;
#endif
    return 1;
}
