/* Prefix reuse over gemma4_seq_copy / gemma4_seq_truncate. */
#include "serve/prefix_cache.h"

#include <stdlib.h>
#include <string.h>

int prefix_cache_init(prefix_cache *pc, gemma4_context *ctx, int n_running, int n_snapshots) {
    memset(pc, 0, sizeof *pc);
    pc->ctx = ctx;
    pc->n_running = n_running;
    pc->n_snapshots = n_snapshots;
    pc->seq = calloc((size_t)(n_running + n_snapshots), sizeof *pc->seq);
    return pc->seq ? 0 : -1;
}

void prefix_cache_free(prefix_cache *pc) {
    if (pc->seq)
        for (int i = 0; i < pc->n_running + pc->n_snapshots; i++) free(pc->seq[i].ids);
    free(pc->seq);
    memset(pc, 0, sizeof *pc);
}

static int set_tokens(cached_tokens *c, const int32_t *ids, int n) {
    if (n > c->cap) {
        int cap = c->cap ? c->cap : 256;
        while (cap < n) cap *= 2;
        int32_t *p = realloc(c->ids, sizeof *p * (size_t)cap);
        if (!p) return -1;
        c->ids = p;
        c->cap = cap;
    }
    if (n) memmove(c->ids, ids, sizeof *ids * (size_t)n);
    c->n = n;
    return 0;
}

static int common_prefix(const cached_tokens *c, const int32_t *p, int n) {
    int k = 0, m = c->n < n ? c->n : n;
    while (k < m && c->ids[k] == p[k]) k++;
    return k;
}

static int clear(prefix_cache *pc, int s) {
    pc->seq[s].n = 0;
    return gemma4_seq_clear(pc->ctx, s);
}

/* Keeps the first keep tokens of sequence s; 0, or -1 when the cache cannot
 * be cut back that far (the sequence is then unchanged). */
static int keep_prefix(prefix_cache *pc, int s, int keep) {
    if (keep == pc->seq[s].n) return 0;
    if (gemma4_seq_truncate(pc->ctx, s, keep)) return -1;
    pc->seq[s].n = keep;
    return 0;
}

int prefix_cache_assign(prefix_cache *pc, const uint8_t *busy, const int32_t *prompt, int n, int *slot, int *n_cached) {
    int limit = n - 1, best_run = -1, best_run_len = 0, lru = -1, best_snap = -1, best_snap_len = 0;
    for (int s = 0; s < pc->n_running; s++) {
        if (busy[s]) continue;
        int k = common_prefix(&pc->seq[s], prompt, n);
        if (k > limit) k = limit;
        if (best_run < 0 || k > best_run_len) { best_run = s; best_run_len = k; }
        if (lru < 0 || pc->seq[s].last_use < pc->seq[lru].last_use) lru = s;
    }
    if (best_run < 0) return -1; /* the caller only assigns when a sequence is idle */
    for (int s = pc->n_running; s < pc->n_running + pc->n_snapshots; s++) {
        int k = common_prefix(&pc->seq[s], prompt, n);
        if (k > limit) k = limit;
        if (k > best_snap_len) { best_snap = s; best_snap_len = k; }
    }
    pc->clock++;
    if (best_run_len > 0 && best_run_len >= best_snap_len && !keep_prefix(pc, best_run, best_run_len)) {
        *slot = best_run;
        *n_cached = best_run_len;
    } else if (best_snap >= 0) {
        /* the least recently used idle sequence takes a copy of the snapshot */
        *slot = lru;
        if (gemma4_seq_copy(pc->ctx, best_snap, lru) || set_tokens(&pc->seq[lru], pc->seq[best_snap].ids, pc->seq[best_snap].n)) {
            clear(pc, lru);
            return -1;
        }
        pc->seq[best_snap].last_use = pc->clock;
        *n_cached = best_snap_len;
        if (keep_prefix(pc, lru, best_snap_len)) {
            *n_cached = 0;
            if (clear(pc, lru)) return -1;
        }
    } else {
        *slot = best_run_len > 0 ? best_run : lru;
        *n_cached = 0;
        if (clear(pc, *slot)) return -1;
    }
    pc->seq[*slot].last_use = pc->clock;
    return 0;
}

int prefix_cache_append(prefix_cache *pc, int slot, const int32_t *ids, int n) {
    cached_tokens *c = &pc->seq[slot];
    if (c->n + n > c->cap) {
        int cap = c->cap ? c->cap : 256;
        while (cap < c->n + n) cap *= 2;
        int32_t *p = realloc(c->ids, sizeof *p * (size_t)cap);
        if (!p) return -1;
        c->ids = p;
        c->cap = cap;
    }
    memcpy(c->ids + c->n, ids, sizeof *ids * (size_t)n);
    c->n += n;
    return 0;
}

int prefix_cache_snapshot(prefix_cache *pc, int slot) {
    const cached_tokens *src = &pc->seq[slot];
    int lru = -1;
    pc->clock++;
    for (int s = pc->n_running; s < pc->n_running + pc->n_snapshots; s++) {
        cached_tokens *c = &pc->seq[s];
        if (c->n == src->n && common_prefix(c, src->ids, src->n) == src->n) {
            c->last_use = pc->clock;
            return 0;
        }
        if (lru < 0 || c->last_use < pc->seq[lru].last_use) lru = s;
    }
    if (lru < 0 || src->n == 0) return 0; /* no snapshot sequences */
    if (gemma4_seq_copy(pc->ctx, slot, lru) || set_tokens(&pc->seq[lru], src->ids, src->n)) {
        clear(pc, lru);
        return -1;
    }
    pc->seq[lru].last_use = pc->clock;
    return 0;
}

void prefix_cache_forget(prefix_cache *pc, int slot) { clear(pc, slot); }

uint64_t prefix_cache_tokens(const prefix_cache *pc) {
    uint64_t t = 0;
    for (int s = 0; s < pc->n_running + pc->n_snapshots; s++) t += (uint64_t)pc->seq[s].n;
    return t;
}
