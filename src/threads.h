/* threads.h - a small thread pool (pthreads natively and in Emscripten; serial under WASI).
 *
 * et_pool_run(pool, fn, ctx, ntasks) calls fn(ctx, task, thread) for task = 0..ntasks-1 and
 * returns when all are done. The caller's thread takes part (thread index 0). Tasks are handed
 * out with an atomic counter: no lock in the hot loop. `thread` is in [0, et_pool_size(pool))
 * and lets a task use per-thread scratch. A NULL pool runs everything serially on the caller.
 *
 * Determinism: which thread claims which task is a matter of timing. A task must therefore write
 * results that depend on `task` only (never sum into per-THREAD partials: use per-task outputs
 * combined in task order, or give each task its own outputs), and a job should split its work by
 * the data's shape, not by the pool size, so that results are the same for any thread count
 * (kernels.h, README "Reproducibility"). */
#ifndef ET_THREADS_H
#define ET_THREADS_H

#include <stddef.h>
#include "error.h"

typedef struct et_pool et_pool;
typedef void (*et_task_fn)(void *ctx, int task, int thread);

/* nthreads <= 0 means "all cores". Returns NULL and sets err on failure. */
et_pool *et_pool_create(int nthreads, et_error *err);
void et_pool_destroy(et_pool *pool);
int et_pool_size(const et_pool *pool); /* 1 for a NULL pool */
void et_pool_run(et_pool *pool, et_task_fn fn, void *ctx, int ntasks);
/* The same on at most `maxth` threads (the caller and workers 1..maxth-1; <= 0 = all): a job whose work
 * splits evenly over fewer threads than the pool has runs on those (kernels.h et_kernel_split), so no
 * thread waits on another's extra task and idle cores are not woken for nothing. */
void et_pool_run_n(et_pool *pool, et_task_fn fn, void *ctx, int ntasks, int maxth);
/* Microseconds a thread spins waiting for the next job (workers) or for the job's end (caller)
 * before sleeping (default 50, or $ET_SPIN_US at creation); 0 = sleep at once. Call while idle. */
void et_pool_set_spin(et_pool *pool, int usec);
int et_cpu_count(void);

/* Per-thread scratch owned by the pool: a 64-byte aligned buffer of at least `bytes` for thread
 * `thread` (as passed to a task), kept until et_pool_destroy. Only the owning thread may call it for
 * its index, so no locking. A buffer smaller than `bytes` is grown here (an allocation) unless it was
 * reserved: see et_pool_reserve. Returns NULL for a NULL pool (the caller then allocates per call)
 * or when out of memory. Contents are not preserved across calls. */
void *et_pool_scratch(et_pool *pool, int thread, size_t bytes);
/* Size the scratch up front (as ggml sizes its work buffer), while the pool is idle: thread 0's
 * buffer to at least `first` bytes, every other thread's to at least `each`. Then et_pool_scratch
 * calls within those sizes allocate nothing. Out of memory: ET_ERR_NOMEM naming the size (buffers
 * already there are kept). A NULL pool: nothing to do. */
et_status et_pool_reserve(et_pool *pool, size_t first, size_t each, et_error *err);

#endif
