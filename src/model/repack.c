#include "model/repack.h"

#include "ops/qdot_x16.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* The mapped pages wholly inside [p, p + n): they were read once to repack
 * and are not needed any more, so drop them from this process's memory;
 * with `evict`, from the page cache too (see g4_weights_repack). */
static void release_pages(const void *p, size_t n, int evict) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi <= lo) return;
    if (evict) madvise((void *)lo, hi - lo, MADV_PAGEOUT); /* harmless where unsupported */
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Rows [first, first + rows) of a matrix, repacked by one thread: first is
 * a multiple of 64 and the slice ends at one or at the matrix's end, so it
 * is a repacked matrix of its own (ops/qdot_x16.h). */
typedef struct {
    g4_dtype type;
    const char *src;
    char *dst;
    int64_t rows, cols;
} repack_slice;

enum { QUAD_ROWS = 4 * G4_X16_ROWS };

static void *repack_slice_main(void *p) {
    const repack_slice *r = p;
    /* Fault the destination in with one call instead of a page fault per
     * page (costly under virtualisation), on this thread: the kernel zeroes
     * each new page, the larger part of loading a big model, so the threads
     * share that too. Harmless where unsupported. */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)r->dst & ~(page - 1);
    uintptr_t hi = (uintptr_t)r->dst + (uintptr_t)r->rows * g4_dtype_row_bytes(r->type, r->cols);
    madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
    g4_x16_repack(r->type, r->src, r->dst, r->rows, r->cols);
    return NULL;
}

/* A slice of a matrix, split among the CPUs at multiples of 64 rows. */
static void repack_parallel(g4_dtype type, const void *src, void *dst, int64_t rows, int64_t cols) {
    enum { MAX_THREADS = 16 };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t quads = (rows + QUAD_ROWS - 1) / QUAD_ROWS, n = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : cpus;
    if (n > quads) n = quads;
    size_t row_bytes = g4_dtype_row_bytes(type, cols);
    repack_slice slice[MAX_THREADS];
    pthread_t thread[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t r0 = quads * i / n * QUAD_ROWS, r1 = i + 1 == n ? rows : quads * (i + 1) / n * QUAD_ROWS;
        slice[i] = (repack_slice){type, (const char *)src + r0 * row_bytes, (char *)dst + r0 * row_bytes, r1 - r0, cols};
        if (i > 0) started[i] = pthread_create(&thread[i], NULL, repack_slice_main, &slice[i]) == 0;
    }
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || !started[i]) repack_slice_main(&slice[i]); /* this thread's share, and any that failed to start */
    for (int64_t i = 1; i < n; i++)
        if (started[i]) pthread_join(thread[i], NULL);
}

/* Whether t gets a repacked copy. */
static int repackable(const g4_tensor *t) {
    return t->data && t->ndim >= 2 && g4_x16_eligible(t->dtype, t->shape[t->ndim - 2], t->shape[t->ndim - 1]);
}

static int repack_one(g4_weights *w, g4_tensor *t, int evict, g4_error *err) {
    if (!repackable(t)) return 0;
    int64_t rows = t->shape[t->ndim - 2], cols = t->shape[t->ndim - 1];
    void **owned = realloc(w->repacked, sizeof *owned * (size_t)(w->n_repacked + 1));
    if (!owned) return g4_fail(err, "out of memory");
    w->repacked = owned;
    size_t bytes = (t->nbytes + 63) & ~(size_t)63;
    void *dst = aligned_alloc(64, bytes);
    if (!dst) return g4_fail(err, "out of memory repacking %s (%zu bytes)", t->name, t->nbytes);
    uintptr_t page_mask = ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
    madvise((void *)((uintptr_t)dst & page_mask), bytes, MADV_HUGEPAGE);
    /* Each matrix (an expert of a stacked tensor) on its own, in slices of
     * about 32 MB, each slice's mapped pages released when done: resident
     * memory never holds a whole tensor twice (the LM head alone is 226 MB
     * at E2B Q4_0). */
    int64_t matrices = t->ndim == 3 ? t->shape[0] : 1;
    size_t row_bytes = g4_dtype_row_bytes(t->dtype, cols);
    int64_t per_slice = ((int64_t)((32u << 20) / (QUAD_ROWS * row_bytes)) + 1) * QUAD_ROWS;
    for (int64_t m = 0; m < matrices; m++)
        for (int64_t r0 = 0; r0 < rows; r0 += per_slice) {
            int64_t n = rows - r0 < per_slice ? rows - r0 : per_slice;
            size_t at = (size_t)(m * rows + r0) * row_bytes;
            const char *src = (const char *)t->data + at;
            madvise((void *)((uintptr_t)src & page_mask), (size_t)n * row_bytes + ((uintptr_t)src & ~page_mask),
                    MADV_POPULATE_READ); /* one call, not a fault per page */
            repack_parallel(t->dtype, src, (char *)dst + at, n, cols);
            release_pages(src, (size_t)n * row_bytes, evict);
        }
    owned[w->n_repacked++] = dst;
    t->data = dst;
    t->repacked = 1;
    return 0;
}

enum { LAYER_MATRICES = 14 };

/* Layer l's product weights (l = -1: the LM head and the PLE projection). */
static int matrices_of(g4_weights *w, int l, g4_tensor **out) {
    if (l < 0) {
        out[0] = &w->lm_head;
        out[1] = &w->ple_model_proj;
        return 2;
    }
    g4_layer_weights *lw = &w->layer[l];
    g4_tensor *mats[LAYER_MATRICES] = {&lw->q_proj,       &lw->k_proj,        &lw->v_proj,     &lw->o_proj,
                                       &lw->gate_proj,    &lw->up_proj,       &lw->down_proj,  &lw->experts_gate_up,
                                       &lw->experts_gate, &lw->experts_up,    &lw->experts_down, &lw->ple_gate,
                                       &lw->ple_proj,     &lw->router_proj};
    memcpy(out, mats, sizeof mats);
    return LAYER_MATRICES;
}

int g4_weights_repack(g4_weights *w, const g4_config *cfg, g4_error *err) {
    /* When the repacked copy does not fit in free memory, the file's pages
     * are dropped from the page cache as each slice is done: otherwise the
     * cache (full of this very file, e.g. after another engine ran it)
     * leaves no room for huge pages, and a quarter of the 26B-A4B copy and
     * half of E2B Q8_0's came in 4 KB pages, slower to stream
     * (docs/benchmarks.md). */
    g4_tensor *mats[LAYER_MATRICES];
    size_t total = 0;
    for (int l = -1; l < cfg->n_layers; l++)
        for (int i = 0, n = matrices_of(w, l, mats); i < n; i++) total += repackable(mats[i]) ? mats[i]->nbytes : 0;
    long free_pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    int evict = free_pages >= 0 && page > 0 && total > (size_t)free_pages * (size_t)page;
    /* The tied embedding table's rows are still looked up in the file, one
     * per token: its pages fault back in as rows are used. */
    for (int l = -1; l < cfg->n_layers; l++)
        for (int i = 0, n = matrices_of(w, l, mats); i < n; i++)
            if (repack_one(w, mats[i], evict, err)) return -1;
    return 0;
}
