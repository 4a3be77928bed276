/* Keys and values of past positions, per sequence and per layer.
 * - Full-attention layers keep every position; their rows grow on demand
 *   (doubling) up to the context length, so a short chat does not pay for 128K.
 * - Sliding layers keep a ring of sliding_window - 1 + max_batch rows: a batch
 *   of new tokens plus the window behind its first token. Memory does not grow
 *   with the context.
 * - KV-shared layers own nothing: they read their source layer's cache.
 * Rows are [n_kv_heads][head_dim], K (after k_norm and RoPE) and V (after
 * the weightless v_norm), float32 (the reference's precision, the default)
 * or IEEE half (opt-in: half the memory, and half the bytes long-context
 * decode reads; K and V are RMS-normed, far inside half's range). */
#ifndef G4_MODEL_KV_CACHE_H
#define G4_MODEL_KV_CACHE_H

#include "model/config.h"

#include <stdint.h>

typedef struct g4_layer_kv {
    void *k, *v;      /* float or uint16_t (half) rows */
    int64_t rows;     /* allocated rows */
    int64_t ring;     /* sliding layers: ring size (slot = pos mod ring); full layers: 0 (slot = pos) */
    int64_t row_size; /* elements per row: n_kv_heads * head_dim */
    int f16;          /* elements are halves */
} g4_layer_kv;

typedef struct g4_seq_kv {
    int n_past;         /* positions 0 .. n_past-1 are cached */
    g4_layer_kv *layer; /* [n_layers]; KV-shared layers have k = v = NULL */
} g4_seq_kv;

typedef struct g4_kv_cache {
    int n_seq;
    int n_ctx;   /* maximum positions per sequence */
    int n_batch; /* maximum new tokens of one sequence per forward */
    g4_seq_kv *seq;
} g4_kv_cache;

int g4_kv_cache_init(g4_kv_cache *kv, const g4_config *cfg, int n_seq, int n_ctx, int n_batch, int f16, g4_error *err);
void g4_kv_cache_free(g4_kv_cache *kv, const g4_config *cfg);

/* Makes room for positions < n_positions in every full-attention layer of seq. */
int g4_kv_cache_reserve(g4_kv_cache *kv, const g4_config *cfg, int seq, int n_positions, g4_error *err);

/* Makes dst hold exactly what src holds (prefix reuse: fork a cached prompt). */
int g4_kv_cache_copy_seq(g4_kv_cache *kv, const g4_config *cfg, int src, int dst, g4_error *err);

/* Keeps positions < n_keep of seq. Fails (cache unchanged) when a sliding
 * layer's ring no longer holds the window behind n_keep: more than n_batch
 * positions would be dropped. */
int g4_kv_cache_truncate_seq(g4_kv_cache *kv, const g4_config *cfg, int seq, int n_keep, g4_error *err);

/* For benchmarks: seq holds n positions of random keys and values, as if a
 * prompt of that length had been run (decode speed at depth without the
 * prefill's cost). */
int g4_kv_cache_fill_random(g4_kv_cache *kv, const g4_config *cfg, int seq, int n, g4_error *err);

/* Slot of position pos in a layer's rows. */
static inline int64_t g4_kv_slot(const g4_layer_kv *lk, int64_t pos) { return lk->ring ? pos % lk->ring : pos; }

/* Bytes of one element of a layer's rows. */
static inline size_t g4_kv_elem_bytes(const g4_layer_kv *lk) { return lk->f16 ? 2 : 4; }

/* Element `at` of a layer's K or V rows (base = lk->k or lk->v). */
static inline void *g4_kv_at(const g4_layer_kv *lk, void *base, int64_t at) {
    return (char *)base + (size_t)at * g4_kv_elem_bytes(lk);
}

/* Bytes the cache would take for one sequence of n_ctx positions (f16: in halves). */
uint64_t g4_kv_cache_bytes(const g4_config *cfg, int n_ctx, int n_batch, int f16);

#endif
