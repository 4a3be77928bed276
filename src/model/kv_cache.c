#include "model/kv_cache.h"

#include "ops/quant.h"

#include <stdlib.h>
#include <string.h>

static int64_t sliding_rows(const g4_config *cfg, int n_ctx, int n_batch) {
    int64_t r = (int64_t)cfg->sliding_window - 1 + n_batch;
    return r < n_ctx ? r : n_ctx;
}

uint64_t g4_kv_cache_bytes(const g4_config *cfg, int n_ctx, int n_batch, int f16) {
    uint64_t total = 0;
    for (int l = 0; l < cfg->n_layers; l++) {
        const g4_layer_config *lc = &cfg->layer[l];
        if (lc->kv_source != l) continue;
        int64_t rows = lc->attn == G4_ATTN_SLIDING ? sliding_rows(cfg, n_ctx, n_batch) : n_ctx;
        total += 2ull * (uint64_t)rows * (uint64_t)lc->n_kv_heads * (uint64_t)lc->head_dim * (f16 ? 2u : 4u);
    }
    return total;
}

static int grow(g4_layer_kv *lk, int64_t rows, g4_error *err) {
    size_t bytes = (size_t)rows * (size_t)lk->row_size * g4_kv_elem_bytes(lk);
    void *k = realloc(lk->k, bytes);
    if (!k) return g4_fail(err, "out of memory growing the KV cache to %lld positions", (long long)rows);
    lk->k = k;
    void *v = realloc(lk->v, bytes);
    if (!v) return g4_fail(err, "out of memory growing the KV cache to %lld positions", (long long)rows);
    lk->v = v;
    lk->rows = rows;
    return 0;
}

int g4_kv_cache_init(g4_kv_cache *kv, const g4_config *cfg, int n_seq, int n_ctx, int n_batch, int f16, g4_error *err) {
    memset(kv, 0, sizeof *kv);
    kv->n_seq = n_seq;
    kv->n_ctx = n_ctx;
    kv->n_batch = n_batch;
    kv->seq = calloc((size_t)n_seq, sizeof *kv->seq);
    if (!kv->seq) return g4_fail(err, "out of memory");
    for (int s = 0; s < n_seq; s++) {
        g4_seq_kv *sq = &kv->seq[s];
        sq->layer = calloc((size_t)cfg->n_layers, sizeof *sq->layer);
        if (!sq->layer) { g4_kv_cache_free(kv, cfg); return g4_fail(err, "out of memory"); }
        for (int l = 0; l < cfg->n_layers; l++) {
            const g4_layer_config *lc = &cfg->layer[l];
            if (lc->kv_source != l) continue;
            g4_layer_kv *lk = &sq->layer[l];
            lk->row_size = (int64_t)lc->n_kv_heads * lc->head_dim;
            lk->f16 = f16;
            int64_t rows = 0;
            if (lc->attn == G4_ATTN_SLIDING) rows = lk->ring = sliding_rows(cfg, n_ctx, n_batch);
            else rows = n_batch < n_ctx ? n_batch : n_ctx; /* grows with the context */
            if (grow(lk, rows, err)) { g4_kv_cache_free(kv, cfg); return -1; }
        }
    }
    return 0;
}

int g4_kv_cache_reserve(g4_kv_cache *kv, const g4_config *cfg, int seq, int n_positions, g4_error *err) {
    if (n_positions > kv->n_ctx)
        return g4_fail(err, "context full: %d positions requested, the context holds %d", n_positions, kv->n_ctx);
    g4_seq_kv *sq = &kv->seq[seq];
    for (int l = 0; l < cfg->n_layers; l++) {
        g4_layer_kv *lk = &sq->layer[l];
        if (!lk->k || lk->ring || lk->rows >= n_positions) continue;
        int64_t rows = lk->rows * 2 > n_positions ? lk->rows * 2 : n_positions;
        if (rows > kv->n_ctx) rows = kv->n_ctx;
        if (grow(lk, rows, err)) return -1;
    }
    return 0;
}

int g4_kv_cache_copy_seq(g4_kv_cache *kv, const g4_config *cfg, int src, int dst, g4_error *err) {
    if (src == dst) return 0;
    const g4_seq_kv *from = &kv->seq[src];
    if (g4_kv_cache_reserve(kv, cfg, dst, from->n_past, err)) return -1;
    g4_seq_kv *to = &kv->seq[dst];
    for (int l = 0; l < cfg->n_layers; l++) {
        const g4_layer_kv *a = &from->layer[l];
        g4_layer_kv *b = &to->layer[l];
        if (!a->k) continue;
        int64_t rows = a->ring ? a->ring : from->n_past;
        size_t bytes = (size_t)rows * (size_t)a->row_size * g4_kv_elem_bytes(a);
        memcpy(b->k, a->k, bytes);
        memcpy(b->v, a->v, bytes);
    }
    to->n_past = from->n_past;
    return 0;
}

int g4_kv_cache_truncate_seq(g4_kv_cache *kv, const g4_config *cfg, int seq, int n_keep, g4_error *err) {
    g4_seq_kv *sq = &kv->seq[seq];
    if (n_keep < 0 || n_keep > sq->n_past)
        return g4_fail(err, "cannot keep %d positions of a sequence that has %d", n_keep, sq->n_past);
    for (int l = 0; l < cfg->n_layers; l++) {
        const g4_layer_kv *lk = &sq->layer[l];
        if (!lk->k || !lk->ring) continue;
        /* The next token at n_keep attends back to n_keep - (window - 1); the
         * ring still holds the last `ring` positions before n_past. */
        int64_t needed = (int64_t)n_keep - (cfg->sliding_window - 1);
        int64_t oldest = (int64_t)sq->n_past - lk->ring;
        if (needed < 0) needed = 0;
        if (oldest < 0) oldest = 0;
        if (needed < oldest)
            return g4_fail(err, "cannot rewind from %d to %d positions: the sliding-window cache keeps only %lld "
                                "positions behind the window", sq->n_past, n_keep, (long long)(lk->ring - (cfg->sliding_window - 1)));
    }
    sq->n_past = n_keep;
    return 0;
}

int g4_kv_cache_fill_random(g4_kv_cache *kv, const g4_config *cfg, int seq, int n, g4_error *err) {
    if (g4_kv_cache_reserve(kv, cfg, seq, n, err)) return -1;
    g4_seq_kv *sq = &kv->seq[seq];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int l = 0; l < cfg->n_layers; l++) {
        g4_layer_kv *lk = &sq->layer[l];
        if (!lk->k) continue;
        int64_t rows = lk->ring && lk->ring < n ? lk->ring : n, count = rows * lk->row_size;
        for (int64_t i = 0; i < count; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            float r = (float)(int32_t)(x >> 32) * (1.0f / 2147483648.0f); /* [-1, 1): keys and values are RMS-normed */
            if (lk->f16) {
                ((uint16_t *)lk->k)[i] = g4_f32_to_f16_rne(r);
                ((uint16_t *)lk->v)[i] = g4_f32_to_f16_rne(-r);
            } else {
                ((float *)lk->k)[i] = r;
                ((float *)lk->v)[i] = -r;
            }
        }
    }
    sq->n_past = n;
    return 0;
}

void g4_kv_cache_free(g4_kv_cache *kv, const g4_config *cfg) {
    if (kv->seq) {
        for (int s = 0; s < kv->n_seq; s++) {
            if (!kv->seq[s].layer) continue;
            for (int l = 0; l < cfg->n_layers; l++) {
                free(kv->seq[s].layer[l].k);
                free(kv->seq[s].layer[l].v);
            }
            free(kv->seq[s].layer);
        }
        free(kv->seq);
    }
    memset(kv, 0, sizeof *kv);
}
