/* gemma4: inference for Google's Gemma 4 models.
 *
 * Usage:
 *   gemma4_model *m;   gemma4_model_load("path/to/checkpoint", &m);
 *   gemma4_context *c; gemma4_context_new(m, NULL, &c);
 *   gemma4_eval(c, 0, ids, n_ids, NULL);            // prompt
 *   int32_t next = gemma4_sample(s, gemma4_get_logits(c, 0), gemma4_vocab_size(m));
 *
 * Every function that can fail returns 0 on success and -1 on failure;
 * gemma4_last_error() then describes the problem in one line (per thread).
 * Nothing in the library exits the process or prints. */
#ifndef GEMMA4_H
#define GEMMA4_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gemma4_model gemma4_model;
typedef struct gemma4_context gemma4_context;
typedef struct gemma4_sampler gemma4_sampler;

const char *gemma4_last_error(void);

/* ---- models ---- */

/* path: a Hugging Face checkpoint directory (config.json and model.safetensors
 * or sharded model-*.safetensors with model.safetensors.index.json).
 * Weights are memory-mapped, not copied. */
int gemma4_model_load(const char *path, gemma4_model **out);
void gemma4_model_free(gemma4_model *model);

typedef struct gemma4_model_info {
    int vocab_size, hidden_size, n_layers, n_heads;
    int n_sliding_layers, n_full_layers, n_kv_shared_layers;
    int sliding_window, max_positions;
    int per_layer_input_dim;     /* 0 without Per-Layer Embeddings */
    int n_experts, top_k_experts;/* 0 without mixture of experts */
    int bos_token_id, pad_token_id;
    int eos_token_ids[8], n_eos_token_ids;
    uint64_t n_params;           /* text decoder parameters */
    uint64_t n_embedding_params; /* of which token embedding tables (incl. per-layer) */
    uint64_t n_active_params;    /* used per token: chosen experts only, one row of the per-layer table */
    uint64_t weight_bytes;       /* bytes of the text decoder's matrices in the files (norms not counted) */
    const char *weight_dtype;    /* storage type of the token embedding */
} gemma4_model_info;

void gemma4_model_get_info(const gemma4_model *model, gemma4_model_info *info);
int gemma4_vocab_size(const gemma4_model *model);
/* Bytes of KV cache one sequence of n_ctx positions takes. */
uint64_t gemma4_kv_cache_bytes(const gemma4_model *model, int n_ctx, int n_batch);

/* ---- contexts: KV caches and activations for up to n_seq sequences ---- */

typedef struct gemma4_context_params {
    int n_ctx;     /* maximum positions per sequence (default: min(model maximum, 8192)) */
    int n_batch;   /* maximum tokens per gemma4_decode call (default 256) */
    int n_seq;     /* sequences decoded side by side (default 1) */
    int n_threads; /* default: number of online CPUs */
} gemma4_context_params;

gemma4_context_params gemma4_context_default_params(void);
/* params may be NULL for the defaults; zero fields take their default. */
int gemma4_context_new(gemma4_model *model, const gemma4_context_params *params, gemma4_context **out);
void gemma4_context_free(gemma4_context *ctx);

/* A batch of tokens, each with its own sequence and position. Positions of a
 * sequence must continue where its cache ends (gemma4_seq_length). */
typedef struct gemma4_batch {
    int n_tokens;
    const int32_t *token;
    const int32_t *pos;
    const int32_t *seq;         /* NULL: all in sequence 0 */
    const int8_t *want_logits;  /* NULL: only the last token */
    /* Optional rows of input embeddings (hidden_size floats each) replacing
     * token embeddings where embd_row[i] != 0: multimodal soft tokens. */
    const float *embd;
    const int8_t *embd_row;
} gemma4_batch;

int gemma4_decode(gemma4_context *ctx, const gemma4_batch *batch);
/* Logits of the i-th token that asked for them in the last gemma4_decode or
 * gemma4_eval (vocab_size floats), or NULL. */
const float *gemma4_get_logits(const gemma4_context *ctx, int i);
int gemma4_n_logits(const gemma4_context *ctx);

/* Appends n tokens to sequence seq, in chunks of n_batch. If all_logits is
 * non-NULL it receives [n][vocab_size] logits; either way the last token's
 * logits are then gemma4_get_logits(ctx, 0). */
int gemma4_eval(gemma4_context *ctx, int seq, const int32_t *tokens, int n, float *all_logits);

int gemma4_seq_length(const gemma4_context *ctx, int seq);
/* Forgets everything cached for seq. */
int gemma4_seq_clear(gemma4_context *ctx, int seq);

/* ---- GGUF files ---- */

/* Writes the model at src (checkpoint directory or GGUF file) as a GGUF file
 * llama.cpp can load, with tensors of `type`: f32, f16, bf16, q8_0, q4_0,
 * q4_1, q5_0, q5_1, q4_k, q5_k, q6_k or q4_k_m (docs/formats.md gives each
 * recipe). Tokenizer metadata comes along from a GGUF source. progress, if
 * not NULL, is called after each tensor with bytes done and total. */
int gemma4_convert(const char *src, const char *dst, const char *type,
                   void (*progress)(void *ctx, uint64_t done, uint64_t total), void *progress_ctx);

/* Writes a model with random weights in the exact shapes of a released
 * Gemma 4 (arch: e2b, e4b, 26b-a4b, 31b, or tiny: a small E2B-like model with
 * the real vocabulary) or of the config.json at config_path (arch NULL), as
 * a GGUF file of tensor type `type`, streaming (never the whole model in
 * memory). branch_scale: see docs/formats.md (1 for realistic scale). */
int gemma4_synth(const char *arch, const char *config_path, const char *type, const char *dst, uint64_t seed,
                 float branch_scale, void (*progress)(void *ctx, uint64_t done, uint64_t total), void *progress_ctx);

/* ---- sampling ---- */

typedef struct gemma4_sampler_params {
    float temperature; /* 0 = greedy (argmax) */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off */
    float min_p;       /* 0 = off */
    uint64_t seed;
} gemma4_sampler_params;

/* Gemma 4's recommended settings: temperature 1.0, top-k 64, top-p 0.95. */
gemma4_sampler_params gemma4_sampler_default_params(void);
int gemma4_sampler_new(const gemma4_sampler_params *params, gemma4_sampler **out);
void gemma4_sampler_free(gemma4_sampler *s);
/* Applies temperature, top-k, top-p and min-p (transformers' order) and
 * draws a token. Ties in greedy mode go to the lowest id. */
int32_t gemma4_sample(gemma4_sampler *s, const float *logits, int n_vocab);

#ifdef __cplusplus
}
#endif

#endif
