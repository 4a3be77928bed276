#include "util/threadpool.h"

#include <pthread.h>
#include <stdlib.h>

struct g4_threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t work_ready, work_done;
    /* The job being run: each worker takes the chunk of its own index. */
    g4_range_fn fn;
    void *ctx;
    int n_items;
    unsigned generation; /* bumped for every job so workers see new work */
    int pending;         /* workers still running the current job */
    int quit;
    void *scratch;
    size_t scratch_bytes;
};

typedef struct {
    g4_threadpool *pool;
    int index;
} worker_arg;

static void run_chunk(g4_threadpool *p, int index) {
    long n = p->n_items, t = p->n_threads;
    int begin = (int)(n * index / t), end = (int)(n * (index + 1) / t);
    if (begin < end) p->fn(p->ctx, begin, end, index);
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    g4_threadpool *p = wa->pool;
    int index = wa->index;
    free(wa);
    unsigned seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->work_ready, &p->lock);
        if (p->quit) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        run_chunk(p, index);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0) pthread_cond_signal(&p->work_done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
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
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
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

void g4_parallel_for(g4_threadpool *p, int n, g4_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (!p || p->n_threads == 1 || n == 1) { fn(ctx, 0, n, 0); return; }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n;
    p->pending = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->work_ready);
    pthread_mutex_unlock(&p->lock);
    run_chunk(p, 0);
    pthread_mutex_lock(&p->lock);
    while (p->pending > 0) pthread_cond_wait(&p->work_done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}
