/* The Gemma 4 forward pass over a batch of tokens (gemma4-architecture.md §2).
 * The batch is the unit of work: each token carries its own sequence and
 * position, so a decode step of many sequences and a prompt chunk of a new
 * one run together. */
#ifndef G4_MODEL_FORWARD_H
#define G4_MODEL_FORWARD_H

#include "model/kv_cache.h"
#include "model/model.h"
#include "util/threadpool.h"

#include <stdint.h>

typedef struct g4_batch {
    int n;
    const int32_t *token;       /* [n] */
    const int32_t *pos;         /* [n]; each sequence's tokens continue its cache: n_past, n_past+1, ... */
    const int32_t *seq;         /* [n]; NULL = all sequence 0 */
    const int8_t *want_logits;  /* [n]; NULL = only the last token */
    /* Multimodal soft tokens: rows i with embd_row[i] != 0 take embd[i*D ..]
     * instead of the scaled token embedding (not multiplied by √D); their
     * per-layer-embedding token part uses the pad id, as transformers does. */
    const float *embd;
    const int8_t *embd_row;
} g4_batch;

/* Activation buffers for at most n_batch tokens, allocated once. */
typedef struct g4_state {
    int n_batch;
    int n_threads;
    float *h;        /* [n][D] residual stream */
    float *x;        /* [n][D] normed input of a block */
    float *o;        /* [n][D] block output */
    float *q;        /* [n][Hq·hd_max] */
    float *k, *v;    /* [n][Hkv·hd_max] */
    float *attn;     /* [n][Hq·hd_max] */
    float *gate, *up;/* [max(n, moe_cap)][max(I, 2·Im)] */
    float *moe_x;    /* [n][D] expert input (pre_feedforward_layernorm_2 of the residual) */
    int moe_cap;     /* rows one wave of experts holds: max(n, K), so a token's K experts fit */
    float *moe_in;   /* [moe_cap][D] rows gathered for a wave of experts */
    float *moe_out;  /* [n][D] */
    int *moe_experts;      /* [n][K] chosen experts per row */
    float *moe_weights;    /* [n][K] their weights */
    int *moe_rows;         /* [moe_cap] the token of each row of moe_in */
    float *moe_row_weight; /* [moe_cap] */
    float *ple;      /* [n][L·P] per-layer inputs */
    float *ple_gate; /* [n][P] */
    float *ple_row;  /* [L·P] one row of the per-layer token table */
    float *attn_parts; /* [4·threads][n_heads][hd_max + 2] partial attention of key ranges split across threads */
    int n_ctx;
    int n_seq;
    int *seq_new;    /* [n_seq] tokens of each sequence in the batch at hand */
    int32_t *kept_token, *kept_pos, *kept_seq; /* [n] the batch once rows without logits are dropped */
    int n_logits;
    float *logits;   /* [n_logits][V] */
    int logits_cap;
} g4_state;

int g4_state_init(g4_state *s, const g4_config *cfg, int n_batch, int n_seq, int n_ctx, int n_threads, g4_error *err);
void g4_state_free(g4_state *s);

/* Runs the batch, appends its keys/values to the cache and leaves the logits
 * of the requested rows in s->logits (row order = batch order). */
int g4_forward(const g4_model *m, g4_kv_cache *kv, g4_state *s, g4_threadpool *pool, const g4_batch *b, g4_error *err);

/* The blocks of one decoder layer, in the order of the spec. */
/* kv_written: the batch's K/V for this layer are already in the cache
 * (g4_attention_write_kv ran for a larger batch these rows came from). */
void g4_attention_block(const g4_model *m, int l, g4_kv_cache *kv, g4_state *s, g4_threadpool *pool, const g4_batch *b,
                        int kv_written);
void g4_attention_write_kv(const g4_model *m, int l, g4_kv_cache *kv, g4_state *s, g4_threadpool *pool, const g4_batch *b);
void g4_ffn_block(const g4_model *m, int l, g4_state *s, g4_threadpool *pool, int n);
void g4_ple_inputs(const g4_model *m, g4_state *s, g4_threadpool *pool, const g4_batch *b);
void g4_ple_block(const g4_model *m, int l, g4_state *s, g4_threadpool *pool, int n);

#endif
