#include "model/repack.h"

#include "ops/qdot_x16.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The mapped pages wholly inside [p, p + n): they were read once to repack
 * and are not needed any more, so drop them from this process's memory. */
static void release_pages(const void *p, size_t n) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static int repack_one(g4_weights *w, g4_tensor *t, g4_error *err) {
    if (!t->data || t->ndim < 2) return 0;
    int64_t rows = t->shape[t->ndim - 2], cols = t->shape[t->ndim - 1];
    if (!g4_x16_eligible(t->dtype, rows, cols)) return 0;
    void **owned = realloc(w->repacked, sizeof *owned * (size_t)(w->n_repacked + 1));
    if (!owned) return g4_fail(err, "out of memory");
    w->repacked = owned;
    size_t bytes = (t->nbytes + 63) & ~(size_t)63;
    void *dst = aligned_alloc(64, bytes);
    if (!dst) return g4_fail(err, "out of memory repacking %s (%zu bytes)", t->name, t->nbytes);
    int64_t matrices = t->ndim == 3 ? t->shape[0] : 1;
    size_t matrix_bytes = t->nbytes / (size_t)matrices;
    for (int64_t e = 0; e < matrices; e++)
        g4_x16_repack(t->dtype, (const char *)t->data + e * matrix_bytes, (char *)dst + e * matrix_bytes, rows, cols);
    release_pages(t->data, t->nbytes);
    owned[w->n_repacked++] = dst;
    t->data = dst;
    t->repacked = 1;
    return 0;
}

int g4_weights_repack(g4_weights *w, const g4_config *cfg, g4_error *err) {
    /* The tied embedding table's rows are still looked up in the file, one
     * per token: its pages fault back in as rows are used. */
    if (repack_one(w, &w->lm_head, err) || repack_one(w, &w->ple_model_proj, err)) return -1;
    for (int l = 0; l < cfg->n_layers; l++) {
        g4_layer_weights *lw = &w->layer[l];
        g4_tensor *mats[] = {&lw->q_proj,          &lw->k_proj,       &lw->v_proj,     &lw->o_proj,
                             &lw->gate_proj,       &lw->up_proj,      &lw->down_proj,  &lw->experts_gate_up,
                             &lw->experts_gate,    &lw->experts_up,   &lw->experts_down, &lw->ple_gate,
                             &lw->ple_proj};
        for (size_t i = 0; i < sizeof mats / sizeof *mats; i++)
            if (repack_one(w, mats[i], err)) return -1;
    }
    return 0;
}
