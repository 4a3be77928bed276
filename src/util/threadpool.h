/* One persistent pool of worker threads for the whole process: ops split
 * their work into index ranges and run them here, so no thread is created
 * inside the forward pass. */
#ifndef G4_UTIL_THREADPOOL_H
#define G4_UTIL_THREADPOOL_H

#include <stddef.h>

typedef struct g4_threadpool g4_threadpool;

/* fn(ctx, begin, end, thread) processes items [begin, end); thread (0 ..
 * size-1) indexes per-thread scratch space. */
typedef void (*g4_range_fn)(void *ctx, int begin, int end, int thread);

/* n_threads includes the calling thread; 1 means run everything inline. */
g4_threadpool *g4_threadpool_new(int n_threads);
void g4_threadpool_free(g4_threadpool *pool);
int g4_threadpool_size(const g4_threadpool *pool);

/* A buffer of at least `bytes` owned by the pool (one per pool, reused and
 * grown across calls; for the caller thread's scratch between parallel
 * regions). NULL if out of memory. */
void *g4_threadpool_scratch(g4_threadpool *pool, size_t bytes);

/* Splits [0, n) into contiguous chunks, one per thread, and returns when all
 * are done. A NULL pool runs inline. */
void g4_parallel_for(g4_threadpool *pool, int n, g4_range_fn fn, void *ctx);

/* The same, but every thread takes a chunk at a time until none are left: a
 * thread that runs slower (a busy core, a contended memory channel) takes
 * fewer instead of keeping the others waiting. Chunks are whole multiples of
 * `grain` items (the last one excepted), a fraction of what is left. */
void g4_parallel_for_shared(g4_threadpool *pool, int n, int grain, g4_range_fn fn, void *ctx);

/* Idle workers read [data, data + bytes) into their caches while the caller
 * goes on with serial work: the weights of the product that comes next.
 * Returns at once; the next job stops the reading where it has got to. */
void g4_threadpool_read_ahead(g4_threadpool *pool, const void *data, size_t bytes);

#endif
