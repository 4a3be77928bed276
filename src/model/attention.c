/* Gemma 4 self-attention (gemma4-architecture.md §3): q/k/v projections,
 * RMS-normed q and k (with weights) and v (without), RoPE on q and k, the
 * cache write, sliding or full attention with scale 1.0, output projection
 * and its post-norm, added to the residual stream. */
#include "model/forward.h"

#include "ops/attention.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/quant.h"
#include "ops/rope.h"

#include <string.h>

static int seq_of(const g4_batch *b, int t) { return b->seq ? b->seq[t] : 0; }

/* q (or k): per-head RMSNorm, then RoPE at the token's position. */
static void norm_rope_heads(float *x, int n_heads, int hd, const float *norm_w, float eps, const g4_layer_weights *lw,
                            const g4_layer_config *lc, int pos) {
    for (int h = 0; h < n_heads; h++) g4_rmsnorm(x + (int64_t)h * hd, x + (int64_t)h * hd, norm_w, hd, eps);
    g4_rope_apply(x, n_heads, hd, lw->rope_inv_freq, lc->rope_pairs, pos);
}

static void input_norm(const g4_model *m, int l, g4_state *s, int n) {
    int D = m->cfg.hidden_size;
    for (int t = 0; t < n; t++) g4_rmsnorm(s->x + (int64_t)t * D, s->h + (int64_t)t * D, m->w.layer[l].input_norm, D, m->cfg.rms_eps);
}

/* The products of s->x that layer l needs: q if with_q, and K and V (one
 * parallel job for all of them). */
static void project(const g4_model *m, int l, g4_state *s, g4_threadpool *pool, int n, int with_q) {
    const g4_layer_config *lc = &m->cfg.layer[l];
    const g4_layer_weights *lw = &m->w.layer[l];
    g4_product p[3] = {{&lw->q_proj, s->x, n, s->q}, {&lw->k_proj, s->x, n, s->k}, {&lw->v_proj, s->x, n, s->v}};
    int k = lc->k_eq_v ? 2 : 3;
    g4_matmul_batch(pool, p + !with_q, k - !with_q);
    if (lc->k_eq_v) memcpy(s->v, s->k, sizeof(float) * (size_t)n * lc->n_kv_heads * lc->head_dim); /* V = raw K, before k_norm and RoPE */
}

static void store_row(const g4_layer_kv *lk, void *dst, const float *x, int n) {
    if (!lk->f16) { memcpy(dst, x, sizeof(float) * (size_t)n); return; }
    for (int i = 0; i < n; i++) ((uint16_t *)dst)[i] = g4_f32_to_f16_rne(x[i]);
}

/* Normalises K (with RoPE) and V, projected by project(), and writes them
 * into each token's sequence cache at the slot of its position. */
static void store_kv(const g4_model *m, int l, g4_kv_cache *kv, g4_state *s, const g4_batch *b) {
    const g4_layer_config *lc = &m->cfg.layer[l];
    const g4_layer_weights *lw = &m->w.layer[l];
    int hd = lc->head_dim, n_kv = lc->n_kv_heads, kv_dim = n_kv * hd;
    for (int t = 0; t < b->n; t++) {
        float *k = s->k + (int64_t)t * kv_dim, *v = s->v + (int64_t)t * kv_dim;
        norm_rope_heads(k, n_kv, hd, lw->k_norm, m->cfg.rms_eps, lw, lc, b->pos[t]);
        for (int h = 0; h < n_kv; h++) g4_rmsnorm(v + (int64_t)h * hd, v + (int64_t)h * hd, NULL, hd, m->cfg.rms_eps);
        g4_layer_kv *lk = &kv->seq[seq_of(b, t)].layer[l];
        int64_t slot = g4_kv_slot(lk, b->pos[t]);
        store_row(lk, g4_kv_at(lk, lk->k, slot * lk->row_size), k, kv_dim);
        store_row(lk, g4_kv_at(lk, lk->v, slot * lk->row_size), v, kv_dim);
    }
}

typedef struct {
    const g4_model *m;
    int l;
    g4_kv_cache *kv;
    g4_state *s;
    const g4_batch *b;
    int parts; /* key ranges per (token, KV head): > 1 when there are too few pairs to keep the threads busy */
} attend_job;

/* One work item: a part of the keys of one token for the query heads that
 * share one KV head. With a single part the result goes straight to
 * s->attn; otherwise the partial sums wait in s->attn_parts for the merge. */
static void attend_items(void *p, int begin, int end, int thread) {
    (void)thread;
    const attend_job *j = p;
    const g4_layer_config *lc = &j->m->cfg.layer[j->l];
    int hd = lc->head_dim, n_heads = j->m->cfg.n_heads, n_kv = lc->n_kv_heads, group = n_heads / n_kv;
    for (int item = begin; item < end; item++) {
        int part = item % j->parts, pair = item / j->parts, t = pair / n_kv, g = pair % n_kv;
        int64_t pos = j->b->pos[t], first = 0;
        if (lc->attn == G4_ATTN_SLIDING && pos - j->m->cfg.sliding_window + 1 > 0) first = pos - j->m->cfg.sliding_window + 1;
        const g4_layer_kv *lk = &j->kv->seq[seq_of(j->b, t)].layer[lc->kv_source];
        /* a sequence's prompt: its keys are read again for each of its tokens */
        int in_cache = j->s->seq_new[seq_of(j->b, t)] > 1;
        g4_kv_view view = {g4_kv_at(lk, lk->k, (int64_t)g * hd), g4_kv_at(lk, lk->v, (int64_t)g * hd), lk->row_size,
                           g4_kv_slot(lk, first), lk->ring, hd, lk->f16, in_cache};
        int n_keys = (int)(pos - first + 1);
        int j0 = (int)((int64_t)n_keys * part / j->parts), j1 = (int)((int64_t)n_keys * (part + 1) / j->parts);
        const float *q = j->s->q + ((int64_t)t * n_heads + (int64_t)g * group) * hd;
        float *attn = j->s->attn + ((int64_t)t * n_heads + (int64_t)g * group) * hd;
        if (j->parts == 1) {
            float m[group], l[group];
            g4_attend_part(&view, q, hd, group, j0, j1, attn, hd, m, l);
            for (int h = 0; h < group; h++)
                for (int d = 0; d < hd; d++) attn[(int64_t)h * hd + d] /= l[h];
        } else {
            float *out = j->s->attn_parts + (int64_t)item * group * (hd + 2);
            g4_attend_part(&view, q, hd, group, j0, j1, out, hd, out + (int64_t)group * hd, out + (int64_t)group * (hd + 1));
        }
    }
}

/* Splits each (token, KV head) pair's keys so that every thread has work,
 * keeping parts at 32 keys or more and all of them within s->attn_parts.
 * Short parts pay: E2B decode from an empty cache, 2 threads, ran at a
 * median 25.8 t/s against 24.1 with parts of 256 keys or more (twelve
 * alternated rounds of 128 tokens; docs/benchmarks.md). */
static int attention_parts(const g4_state *s, int pairs, int max_keys) {
    enum { MIN_PART_KEYS = 32 };
    int parts = 1;
    while (pairs * parts * 2 <= 2 * s->n_threads && max_keys / (parts * 2) >= MIN_PART_KEYS) parts *= 2;
    return parts;
}

static void attend(const g4_model *m, int l, g4_kv_cache *kv, g4_state *s, g4_threadpool *pool, const g4_batch *b) {
    const g4_layer_config *lc = &m->cfg.layer[l];
    int hd = lc->head_dim, n_heads = m->cfg.n_heads, n_kv = lc->n_kv_heads, group = n_heads / n_kv;
    int max_keys = 0;
    for (int t = 0; t < b->n; t++) {
        int keys = lc->attn == G4_ATTN_SLIDING && b->pos[t] >= m->cfg.sliding_window ? m->cfg.sliding_window : b->pos[t] + 1;
        if (keys > max_keys) max_keys = keys;
    }
    attend_job job = {m, l, kv, s, b, attention_parts(s, b->n * n_kv, max_keys)};
    g4_parallel_for(pool, b->n * n_kv * job.parts, attend_items, &job);
    if (job.parts == 1) return;
    int64_t part_floats = (int64_t)group * (hd + 2);
    for (int pair = 0; pair < b->n * n_kv; pair++) {
        int t = pair / n_kv, g = pair % n_kv;
        g4_attend_merge(job.parts, group, hd, s->attn_parts + (int64_t)pair * job.parts * part_floats, part_floats,
                        s->attn + ((int64_t)t * n_heads + (int64_t)g * group) * hd, hd);
    }
}

void g4_attention_write_kv(const g4_model *m, int l, g4_kv_cache *kv, g4_state *s, g4_threadpool *pool, const g4_batch *b) {
    input_norm(m, l, s, b->n);
    project(m, l, s, pool, b->n, 0);
    store_kv(m, l, kv, s, b);
}

void g4_attention_block(const g4_model *m, int l, g4_kv_cache *kv, g4_state *s, g4_threadpool *pool, const g4_batch *b,
                        int kv_written) {
    const g4_config *c = &m->cfg;
    const g4_layer_config *lc = &c->layer[l];
    const g4_layer_weights *lw = &m->w.layer[l];
    int D = c->hidden_size, hd = lc->head_dim, q_dim = c->n_heads * hd;

    g4_matmul_read_ahead(pool, &lw->q_proj, b->n);
    input_norm(m, l, s, b->n);
    /* KV-shared layers read their source's cache */
    int own_kv = lc->kv_source == l && !kv_written;
    if (own_kv) project(m, l, s, pool, b->n, 1);
    else g4_matmul(pool, &lw->q_proj, s->x, b->n, s->q);
    for (int t = 0; t < b->n; t++) norm_rope_heads(s->q + (int64_t)t * q_dim, c->n_heads, hd, lw->q_norm, c->rms_eps, lw, lc, b->pos[t]);
    if (own_kv) store_kv(m, l, kv, s, b);

    attend(m, l, kv, s, pool, b);

    g4_matmul(pool, &lw->o_proj, s->attn, b->n, s->o);
    for (int t = 0; t < b->n; t++) {
        float *o = s->o + (int64_t)t * D, *h = s->h + (int64_t)t * D;
        g4_rmsnorm(o, o, lw->post_attn_norm, D, c->rms_eps);
        for (int i = 0; i < D; i++) h[i] += o[i];
    }
}
