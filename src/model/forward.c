/* The Gemma 4 decoder, top to bottom (gemma4-architecture.md §2.1):
 * scaled embeddings, per-layer inputs, L decoder layers, final norm, tied LM
 * head, logit soft-cap. */
#include "model/forward.h"

#include "ops/activation.h"
#include "ops/matmul.h"
#include "ops/norm.h"

#include <stdlib.h>
#include <string.h>

static float *alloc_floats(int64_t n, int *failed) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) *failed = 1;
    return p;
}

int g4_state_init(g4_state *s, const g4_config *c, int n_batch, int n_seq, int n_ctx, int n_threads, g4_error *err) {
    memset(s, 0, sizeof *s);
    int max_hd = 0, max_kv = 0, max_ffn = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const g4_layer_config *lc = &c->layer[l];
        if (lc->head_dim > max_hd) max_hd = lc->head_dim;
        if (lc->n_kv_heads * lc->head_dim > max_kv) max_kv = lc->n_kv_heads * lc->head_dim;
        if (lc->ffn_dim > max_ffn) max_ffn = lc->ffn_dim;
    }
    if (2 * c->moe_dim > max_ffn) max_ffn = 2 * c->moe_dim;
    if (c->n_experts > max_ffn) max_ffn = c->n_experts; /* s->gate holds the router logits too */
    int64_t n = n_batch, D = c->hidden_size, q = (int64_t)c->n_heads * max_hd, LP = (int64_t)c->n_layers * c->ple_dim;
    int64_t K = c->top_k_experts;
    int failed = 0;
    s->n_batch = n_batch;
    s->n_threads = n_threads;
    s->n_ctx = n_ctx;
    s->n_seq = n_seq;
    s->h = alloc_floats(n * D, &failed);
    s->x = alloc_floats(n * D, &failed);
    s->o = alloc_floats(n * D, &failed);
    s->q = alloc_floats(n * q, &failed);
    s->k = alloc_floats(n * max_kv, &failed);
    s->v = alloc_floats(n * max_kv, &failed);
    s->attn = alloc_floats(n * q, &failed);
    s->moe_cap = n_batch > c->top_k_experts ? n_batch : c->top_k_experts;
    int64_t rows = c->n_experts ? s->moe_cap : n;
    s->gate = alloc_floats(rows * max_ffn, &failed);
    s->up = alloc_floats(rows * max_ffn, &failed);
    s->attn_parts = alloc_floats(4 * (int64_t)n_threads * c->n_heads * (max_hd + 2), &failed);
    s->seq_new = calloc((size_t)n_seq, sizeof(int));
    s->kept_token = malloc(sizeof(int32_t) * (size_t)n);
    s->kept_pos = malloc(sizeof(int32_t) * (size_t)n);
    s->kept_seq = malloc(sizeof(int32_t) * (size_t)n);
    if (!s->seq_new || !s->kept_token || !s->kept_pos || !s->kept_seq) failed = 1;
    if (c->ple_dim) {
        s->ple = alloc_floats(n * LP, &failed);
        s->ple_gate = alloc_floats(n * c->ple_dim, &failed);
        s->ple_row = alloc_floats(LP, &failed);
    }
    if (c->n_experts) {
        s->moe_x = alloc_floats(n * D, &failed);
        s->moe_in = alloc_floats(rows * D, &failed);
        s->moe_out = alloc_floats(n * D, &failed);
        s->moe_weights = alloc_floats(n * K, &failed);
        s->moe_row_weight = alloc_floats(rows, &failed);
        s->moe_experts = malloc(sizeof(int) * (size_t)(n * K));
        s->moe_rows = malloc(sizeof(int) * (size_t)rows);
        if (!s->moe_experts || !s->moe_rows) failed = 1;
    }
    if (failed) { g4_state_free(s); return g4_fail(err, "out of memory allocating activations for a batch of %d", n_batch); }
    return 0;
}

void g4_state_free(g4_state *s) {
    void *bufs[] = {s->h, s->x, s->o, s->q, s->k, s->v, s->attn, s->gate, s->up, s->attn_parts, s->seq_new,
                    s->kept_token, s->kept_pos, s->kept_seq,
                    s->ple, s->ple_gate, s->ple_row, s->moe_x, s->moe_in, s->moe_out, s->moe_weights,
                    s->moe_row_weight, s->moe_experts, s->moe_rows, s->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    memset(s, 0, sizeof *s);
}

/* Checks the batch against the model and the cache before anything is
 * written, and grows the full-attention caches to fit it. */
static int check_batch(const g4_model *m, g4_kv_cache *kv, g4_state *s, const g4_batch *b, g4_error *err) {
    const g4_config *c = &m->cfg;
    if (b->n < 1 || b->n > s->n_batch) return g4_fail(err, "batch of %d tokens; this context takes 1 to %d", b->n, s->n_batch);
    memset(s->seq_new, 0, sizeof(int) * (size_t)s->n_seq);
    for (int t = 0; t < b->n; t++) {
        int seq = b->seq ? b->seq[t] : 0;
        if (seq < 0 || seq >= kv->n_seq) return g4_fail(err, "token %d: sequence %d out of range (0..%d)", t, seq, kv->n_seq - 1);
        int is_embd = b->embd_row && b->embd_row[t];
        if (!is_embd && (b->token[t] < 0 || b->token[t] >= c->vocab_size))
            return g4_fail(err, "token id %d out of range (vocabulary of %d)", b->token[t], c->vocab_size);
        if (!is_embd && c->ple_dim && b->token[t] >= c->ple_vocab)
            return g4_fail(err, "token id %d has no per-layer embedding (table of %d)", b->token[t], c->ple_vocab);
        int expect = kv->seq[seq].n_past + s->seq_new[seq]++;
        if (b->pos[t] != expect)
            return g4_fail(err, "token %d of sequence %d has position %d; the sequence continues at %d", t, seq, b->pos[t], expect);
    }
    for (int seq = 0; seq < kv->n_seq; seq++)
        if (s->seq_new[seq] && g4_kv_cache_reserve(kv, c, seq, kv->seq[seq].n_past + s->seq_new[seq], err)) return -1;
    return 0;
}

static void embed(const g4_model *m, g4_state *s, const g4_batch *b) {
    int D = m->cfg.hidden_size;
    for (int t = 0; t < b->n; t++) {
        float *h = s->h + (int64_t)t * D;
        if (b->embd_row && b->embd_row[t]) {
            memcpy(h, b->embd + (int64_t)t * D, sizeof(float) * (size_t)D);
        } else {
            g4_embedding_row(&m->w.embed, b->token[t], h);
            g4_scale(h, D, m->w.embed_scale);
        }
    }
}

static int wants_logits(const g4_batch *b, int t) { return b->want_logits ? b->want_logits[t] != 0 : t == b->n - 1; }

/* After the last layer that writes the KV cache, only rows whose logits are
 * wanted affect anything: the rest are dropped. On E2B this skips 20 of 35
 * layers (all the double-wide ones) for all but the last prompt token. */
static g4_batch keep_logit_rows(const g4_model *m, g4_state *s, const g4_batch *b) {
    int D = m->cfg.hidden_size, LP = m->cfg.n_layers * m->cfg.ple_dim, k = 0;
    for (int t = 0; t < b->n; t++) {
        if (!wants_logits(b, t)) continue;
        if (k != t) {
            memmove(s->h + (int64_t)k * D, s->h + (int64_t)t * D, sizeof(float) * (size_t)D);
            if (LP) memmove(s->ple + (int64_t)k * LP, s->ple + (int64_t)t * LP, sizeof(float) * (size_t)LP);
        }
        s->kept_token[k] = b->token[t];
        s->kept_pos[k] = b->pos[t];
        s->kept_seq[k] = b->seq ? b->seq[t] : 0;
        k++;
    }
    g4_batch kept = {k, s->kept_token, s->kept_pos, s->kept_seq, NULL, NULL, NULL};
    return kept;
}

/* The softcap over the logits, in slices across the threads: 262144 tanh a
 * token took as long as 6 MB of weights. */
typedef struct {
    float *logits;
    float cap;
} softcap_job;

enum { SOFTCAP_SLICE = 8192 };

static void softcap_slices(void *p, int begin, int end, int thread) {
    (void)thread;
    const softcap_job *j = p;
    g4_softcap(j->logits + (int64_t)begin * SOFTCAP_SLICE, (end - begin) * SOFTCAP_SLICE, j->cap);
}

static void softcap_logits(g4_threadpool *pool, float *logits, int64_t n, float cap) {
    int64_t whole = n / SOFTCAP_SLICE;
    softcap_job job = {logits, cap};
    g4_parallel_for(pool, (int)whole, softcap_slices, &job);
    g4_softcap(logits + whole * SOFTCAP_SLICE, (int)(n - whole * SOFTCAP_SLICE), cap);
}

/* Logits of every row of `rows` (the rows that asked for them). */
static int lm_head(const g4_model *m, g4_state *s, g4_threadpool *pool, const g4_batch *rows, g4_error *err) {
    const g4_config *c = &m->cfg;
    int D = c->hidden_size, V = c->vocab_size, n = rows->n;
    s->n_logits = n;
    if (!n) return 0;
    if (n > s->logits_cap) {
        float *p = realloc(s->logits, sizeof(float) * (size_t)n * (size_t)V);
        if (!p) return g4_fail(err, "out of memory for %d rows of logits", n);
        s->logits = p;
        s->logits_cap = n;
    }
    /* Only the wanted rows go through the 262144-row head. */
    g4_matmul_read_ahead(pool, &m->w.lm_head, n);
    for (int i = 0; i < n; i++)
        g4_rmsnorm(s->x + (int64_t)i * D, s->h + (int64_t)i * D, m->w.final_norm, D, c->rms_eps);
    g4_matmul(pool, &m->w.lm_head, s->x, n, s->logits);
    if (c->final_logit_softcap > 0) softcap_logits(pool, s->logits, (int64_t)n * V, c->final_logit_softcap);
    /* sampling comes next, then the next token's first product */
    g4_matmul_read_ahead(pool, c->ple_dim ? &m->w.ple_model_proj : &m->w.layer[0].q_proj, n);
    return 0;
}

int g4_forward(const g4_model *m, g4_kv_cache *kv, g4_state *s, g4_threadpool *pool, const g4_batch *b, g4_error *err) {
    const g4_config *c = &m->cfg;
    if (check_batch(m, kv, s, b, err)) return -1;

    int last_kv_layer = g4_config_last_kv_layer(c);

    embed(m, s, b);
    if (c->ple_dim) g4_ple_inputs(m, s, pool, b);
    g4_batch kept;
    const g4_batch *rows = b; /* the rows still carried */
    for (int l = 0; l < c->n_layers; l++) {
        int kv_written = 0;
        if (l == last_kv_layer && rows == b) {
            g4_attention_write_kv(m, l, kv, s, pool, b);
            kept = keep_logit_rows(m, s, b);
            rows = &kept;
            kv_written = 1;
        }
        if (rows->n) {
            g4_attention_block(m, l, kv, s, pool, rows, kv_written);
            g4_ffn_block(m, l, s, pool, rows->n);
            if (c->ple_dim) g4_ple_block(m, l, s, pool, rows->n);
            g4_scale(s->h, rows->n * c->hidden_size, m->w.layer[l].layer_scalar);
        }
    }
    for (int seq = 0; seq < kv->n_seq; seq++) kv->seq[seq].n_past += s->seq_new[seq];
    return lm_head(m, s, pool, rows, err);
}
