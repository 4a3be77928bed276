#include "util/threadpool.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* A decode step hands the workers hundreds of small jobs; waking a thread
 * through the kernel costs more than many of them. So both sides spin
 * briefly (about a tenth of a millisecond) before sleeping on the condition
 * variables. */
#define SPIN_ROUNDS 4096

struct g4_threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t work_ready, work_done;
    /* The job being run: each worker takes the chunk of its own index. */
    g4_range_fn fn;
    void *ctx;
    int n_items;
    int grain;        /* > 0: threads take `grain` items at a time from `next` */
    atomic_int next;
    atomic_uint generation; /* bumped for every job so workers see new work */
    atomic_int pending;     /* workers still running the current job */
    atomic_int sleepers;    /* workers blocked on work_ready */
    atomic_int waiting;     /* the caller is blocked on work_done */
    atomic_int quit;
    atomic_int cancel;      /* the caller has work: stop reading ahead */
    int reading_ahead;      /* a read-ahead job may still be running */
    const char *ahead;
    size_t ahead_bytes;
    void *scratch;
    size_t scratch_bytes;
};

typedef struct {
    g4_threadpool *pool;
    int index;
} worker_arg;

static void run_chunk(g4_threadpool *p, int index) {
    long n = p->n_items, t = p->n_threads;
    if (p->grain > 0) {
        /* Chunks shrink as the work runs out (a share of what is left, in
         * whole grains): large ones while there is plenty, small ones at the
         * end, so no thread waits long for another's last chunk. */
        for (int b = atomic_load(&p->next);;) {
            if (b >= n) return;
            long size = (n - b) / (2 * t) / p->grain * p->grain;
            if (size < p->grain) size = p->grain;
            if (!atomic_compare_exchange_weak(&p->next, &b, (int)(b + size))) continue; /* b reloaded */
            p->fn(p->ctx, b, b + size < n ? (int)(b + size) : (int)n, index);
            b = atomic_load(&p->next);
        }
    }
    int begin = (int)(n * index / t), end = (int)(n * (index + 1) / t);
    if (begin < end) p->fn(p->ctx, begin, end, index);
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    g4_threadpool *p = wa->pool;
    int index = wa->index;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        for (int i = 0; i < SPIN_ROUNDS && atomic_load(&p->generation) == seen && !atomic_load(&p->quit); i++)
            _mm_pause();
        if (atomic_load(&p->generation) == seen && !atomic_load(&p->quit)) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (!atomic_load(&p->quit) && atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->work_ready, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->quit)) break;
        seen = atomic_load(&p->generation);
        run_chunk(p, index);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->waiting)) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->work_done);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

/* Item i > 0: worker i reads its share of the read-ahead span, a load per
 * cache line, and stops as soon as the caller posts real work. */
static void read_ahead(void *ctx, int begin, int end, int thread) {
    (void)begin; (void)end;
    g4_threadpool *p = ctx;
    if (thread == 0) return;
    size_t share = p->ahead_bytes / (size_t)(p->n_threads - 1) & ~(size_t)63;
    const char *a = p->ahead + share * (size_t)(thread - 1);
    unsigned sink = 0;
    for (size_t off = 0; off < share && !atomic_load_explicit(&p->cancel, memory_order_relaxed); off += 4096)
        for (size_t l = off; l < off + 4096 && l < share; l += 64) sink += *(const volatile unsigned char *)(a + l);
    (void)sink;
}

/* Waits for a read-ahead job, cutting it short. */
static void end_read_ahead(g4_threadpool *p) {
    if (!p->reading_ahead) return;
    atomic_store(&p->cancel, 1);
    while (atomic_load(&p->pending) > 0) _mm_pause();
    atomic_store(&p->cancel, 0);
    p->reading_ahead = 0;
}

/* Hands the workers a job (after any read-ahead has stopped) and wakes
 * those asleep; the caller then runs its own chunk, or not. */
static void post_job(g4_threadpool *p, int n, int grain, g4_range_fn fn, void *ctx) {
    end_read_ahead(p);
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n;
    p->grain = grain;
    atomic_store(&p->next, 0);
    atomic_store(&p->pending, p->n_threads - 1);
    atomic_fetch_add(&p->generation, 1); /* publishes the job (sequentially consistent) */
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->work_ready);
        pthread_mutex_unlock(&p->lock);
    }
}

void g4_threadpool_read_ahead(g4_threadpool *p, const void *data, size_t bytes) {
    if (!p || p->n_threads == 1 || bytes < 64 * (size_t)p->n_threads) return;
    end_read_ahead(p); /* before the span changes under a running one */
    p->ahead = data;
    p->ahead_bytes = bytes;
    post_job(p, p->n_threads, 0, read_ahead, p);
    p->reading_ahead = 1;
}

g4_threadpool *g4_threadpool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    g4_threadpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_ready, NULL);
    pthread_cond_init(&p->work_done, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) { free(p); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || pthread_create(&p->threads[i], NULL, worker_main, (wa->pool = p, wa->index = i, wa)) != 0) {
            free(wa);
            p->n_threads = i; /* run with the threads we got */
            break;
        }
    }
    return p;
}

void g4_threadpool_free(g4_threadpool *p) {
    if (!p) return;
    end_read_ahead(p);
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->work_ready);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work_ready);
    pthread_cond_destroy(&p->work_done);
    free(p->threads);
    free(p->scratch);
    free(p);
}

void *g4_threadpool_scratch(g4_threadpool *p, size_t bytes) {
    if (!p) return NULL;
    if (bytes > p->scratch_bytes) {
        void *s = realloc(p->scratch, bytes);
        if (!s) return NULL;
        p->scratch = s;
        p->scratch_bytes = bytes;
    }
    return p->scratch;
}

int g4_threadpool_size(const g4_threadpool *p) { return p ? p->n_threads : 1; }

static void parallel_for(g4_threadpool *p, int n, int grain, g4_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (!p || p->n_threads == 1 || n == 1) { fn(ctx, 0, n, 0); return; }
    post_job(p, n, grain, fn, ctx);
    run_chunk(p, 0);
    for (int i = 0; i < SPIN_ROUNDS && atomic_load(&p->pending) > 0; i++) _mm_pause();
    if (atomic_load(&p->pending) > 0) {
        pthread_mutex_lock(&p->lock);
        atomic_store(&p->waiting, 1);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->work_done, &p->lock);
        atomic_store(&p->waiting, 0);
        pthread_mutex_unlock(&p->lock);
    }
}

void g4_parallel_for(g4_threadpool *p, int n, g4_range_fn fn, void *ctx) { parallel_for(p, n, 0, fn, ctx); }

void g4_parallel_for_shared(g4_threadpool *p, int n, int grain, g4_range_fn fn, void *ctx) {
    parallel_for(p, n, grain > 0 ? grain : 1, fn, ctx);
}
