/* The Gemma 4 text-decoder blueprint: every hyper-parameter the forward pass
 * needs, resolved per layer, from a Hugging Face config.json (both the
 * released flat form and the per_layer_config form transformers >= 5.15
 * writes). Model variants are data: nothing here branches on a model name. */
#ifndef G4_MODEL_CONFIG_H
#define G4_MODEL_CONFIG_H

#include "util/error.h"

typedef enum g4_attn_kind {
    G4_ATTN_SLIDING, /* sees the last sliding_window keys, itself included */
    G4_ATTN_FULL     /* sees every earlier key */
} g4_attn_kind;

typedef struct g4_layer_config {
    g4_attn_kind attn;
    int head_dim;       /* 256 on sliding layers, global_head_dim (512) on full ones */
    int n_kv_heads;
    int k_eq_v;         /* V is the weightless-normed raw K projection (no v_proj) */
    int kv_source;      /* layer whose K/V this layer attends over (itself unless KV-shared) */
    int ffn_dim;        /* dense MLP width (doubled on E2B's KV-shared layers) */
    /* RoPE: rotate-half over pairs (i, i + head_dim/2) for i < rope_pairs, with
     * inv_freq[i] = rope_theta^(-2i / rope_denominator); the other dims pass through. */
    int rope_pairs;
    int rope_denominator;
    double rope_theta;
} g4_layer_config;

typedef struct g4_config {
    int vocab_size;           /* V: 262144 in every release */
    int hidden_size;          /* D */
    int n_layers;             /* L */
    int n_heads;              /* query heads, the same on both layer types */
    int sliding_window;       /* W: 512 (E2B/E4B) or 1024 (26B/31B) */
    float rms_eps;
    float final_logit_softcap; /* 0 = none */
    int max_positions;

    /* Per-Layer Embeddings (E2B/E4B); ple_dim = 0 when absent. */
    int ple_dim;              /* P = hidden_size_per_layer_input (256) */
    int ple_vocab;            /* vocab_size_per_layer_input */

    int n_kv_shared_layers;   /* the last layers read an earlier layer's K/V */

    /* Mixture of experts beside the dense MLP (26B-A4B); n_experts = 0 when absent. */
    int n_experts;
    int top_k_experts;
    int moe_dim;              /* moe_intermediate_size */

    int pad_token_id, bos_token_id;
    int eos_token_ids[8];
    int n_eos_token_ids;

    g4_layer_config *layer;   /* [n_layers] */
} g4_config;

/* Parses config.json text (either a Gemma4Config with text_config or a bare
 * Gemma4TextConfig). On failure fills err and leaves *cfg empty. */
int g4_config_parse(const char *json_text, size_t len, g4_config *cfg, g4_error *err);
int g4_config_load(const char *path, g4_config *cfg, g4_error *err);
void g4_config_free(g4_config *cfg);

/* Sets every layer's kv_source from n_kv_shared_layers and the attention
 * kinds: a KV-shared layer reads the last non-shared layer of its kind. */
int g4_config_resolve_kv_sources(g4_config *cfg, g4_error *err);

/* The last layer that writes the KV cache (kv_source set): after it only
 * the rows whose logits are wanted matter. */
int g4_config_last_kv_layer(const g4_config *cfg);

#endif
