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
/* Bytes of (float32) KV cache one sequence of n_ctx positions takes; half with GEMMA4_KV_F16. */
uint64_t gemma4_kv_cache_bytes(const gemma4_model *model, int n_ctx, int n_batch);

/* ---- contexts: KV caches and activations for up to n_seq sequences ---- */

typedef struct gemma4_context_params {
    int n_ctx;     /* maximum positions per sequence (default: min(model maximum, 8192)) */
    int n_batch;   /* maximum tokens per gemma4_decode call (default 256) */
    int n_seq;     /* sequences decoded side by side (default 1) */
    int n_threads; /* default: number of online CPUs */
    int device;    /* GEMMA4_DEVICE_CPU (0, the default), GEMMA4_DEVICE_GPU or GEMMA4_DEVICE_AUTO */
    int kv_type;   /* GEMMA4_KV_F32 (0, the default) or GEMMA4_KV_F16 */
} gemma4_context_params;

/* How the KV cache stores keys and values. F32 is the reference's precision.
 * F16 (IEEE half; CPU contexts only so far) halves the cache's memory and
 * the bytes a long-context decode reads. Keys and values are RMS-normed, far
 * inside half's range, so only their rounding (relative 2^-11) changes: on
 * the test models the logits moved by 1-3% of what bf16 compute moves them
 * (tests/unit/test_fixtures.c). */
enum { GEMMA4_KV_F32 = 0, GEMMA4_KV_F16 = 1 };

/* Where a context runs. GPU: the weights are copied to the first CUDA device
 * once per model (bf16, f32, f16, Q8_0, Q4_0) and the KV cache lives there;
 * it fails in a build without CUDA (`make cuda`) or without a device. AUTO:
 * the GPU when gemma4_gpu_available(), else the CPU. */
enum { GEMMA4_DEVICE_CPU = 0, GEMMA4_DEVICE_GPU = 1, GEMMA4_DEVICE_AUTO = 2 };
/* 1 when this library was built with CUDA and a CUDA device is present. */
int gemma4_gpu_available(void);

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
/* Makes dst a copy of src (all cached positions): fork a cached prompt
 * prefix, then continue dst with its own tokens. */
int gemma4_seq_copy(gemma4_context *ctx, int src, int dst);
/* Keeps only positions < n_keep of seq. Sliding-window layers keep a ring of
 * window - 1 + n_batch rows, so this fails (seq unchanged, -1) when more
 * than n_batch positions would be dropped: then clear and re-prefill, or
 * keep a copy (gemma4_seq_copy) made at the prefix's end. */
int gemma4_seq_truncate(gemma4_context *ctx, int seq, int n_keep);
/* For benchmarks: seq holds n_positions positions of random keys and values,
 * as if a prompt of that length had run, so decode speed at a depth can be
 * measured without paying for the prefill. CPU contexts only. */
int gemma4_bench_fill_cache(gemma4_context *ctx, int seq, int n_positions);

/* A model of random weights in the exact shapes of a released Gemma 4
 * (arch: e2b, e4b, 26b-a4b, 31b, tiny) and storage type (any `convert` type:
 * bf16, f32, q8_0, q4_0, q4_k_m, ...), made directly in GPU memory when its
 * first GPU context is created: real-shape speed measurements without a 62 GB
 * file. It has no tokenizer
 * and runs on the GPU only. */
int gemma4_model_synthetic(const char *arch, const char *type, gemma4_model **out);

/* For speed reports on a GPU context: device-to-device copy bandwidth
 * (GB/s, bytes read plus written, measured by this call), the weight bytes
 * one decode step of one token reads (chosen experts only), and the device
 * memory the weights take. */
typedef struct gemma4_gpu_info {
    double copy_gb_per_s;
    uint64_t decode_bytes;
    uint64_t weight_bytes;
    uint64_t matmul_params; /* weights one token multiplies, LM head excluded (attention not counted) */
    double gemm_tflops;     /* bf16 tensor-core throughput of an 8192^3 cuBLAS GEMM, measured by this call */
    uint64_t prompt_matmul_params; /* the same for a prompt token whose logits are not wanted: the layers after
                                    * the last one that writes the KV cache skip it (E2B/E4B) */
} gemma4_gpu_info;
int gemma4_gpu_info_get(const gemma4_context *ctx, gemma4_gpu_info *info);

/* ---- GGUF files ---- */

/* Writes the model at src (checkpoint directory or GGUF file) as a GGUF file
 * llama.cpp can load, with tensors of `type`: f32, f16, bf16, q8_0, q4_0,
 * q4_1, q5_0, q5_1, q4_k, q5_k, q6_k or q4_k_m (docs/formats.md gives each
 * recipe). The tokenizer comes along: a checkpoint's tokenizer.json (with
 * tokenizer_config.json and chat_template.jinja) as llama.cpp's converter
 * writes it, or a GGUF source's tokenizer keys. progress, if
 * not NULL, is called after each tensor with bytes done and total. */
int gemma4_convert(const char *src, const char *dst, const char *type,
                   void (*progress)(void *ctx, uint64_t done, uint64_t total), void *progress_ctx);

/* Writes a model with random weights in the exact shapes of a released
 * Gemma 4 (arch: e2b, e4b, 26b-a4b, 31b, or tiny: a small E2B-like model with
 * the real vocabulary) or of the config.json at config_path (arch NULL), as
 * a GGUF file of tensor type `type`, streaming (never the whole model in
 * memory). branch_scale: see docs/formats.md (1 for realistic scale).
 * tokenizer_json: a tokenizer.json whose vocabulary, merges and special
 * tokens go into the file (plus chat_template.jinja from its directory, if
 * there is one), or NULL for a file without tokenizer. */
int gemma4_synth(const char *arch, const char *config_path, const char *type, const char *dst,
                 const char *tokenizer_json, uint64_t seed, float branch_scale,
                 void (*progress)(void *ctx, uint64_t done, uint64_t total), void *progress_ctx);

/* A warning from the last gemma4_convert on this thread (e.g. a checkpoint
 * without tokenizer.json converts to a file without tokenizer), or NULL. */
const char *gemma4_last_warning(void);

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

/* ---- text: tokenizer, chat prompts, output parsing (src/api/chat_api.c) ----
 *
 * A chat turn end to end:
 *   gemma4_chat_render(model, messages_json, tools_json, &params, &prompt);
 *   gemma4_tokenize(gemma4_model_tokenizer(model), prompt, strlen(prompt),
 *                   GEMMA4_TOKENIZE_PARSE_SPECIAL, &ids, &n);
 *   gemma4_eval(...), then per sampled id (until one of gemma4_chat_stop_tokens):
 *     gemma4_detokenizer_push(d, id, &piece, &len);   // special tokens visible
 *     gemma4_chat_parser_feed(p, piece, len);          // thought / content / tool-call events
 * Memory the library returns through char ** or int32_t ** is freed with
 * gemma4_free. */

typedef struct gemma4_tokenizer gemma4_tokenizer;

/* The model's own tokenizer (the checkpoint's tokenizer.json, or the GGUF
 * file's tokenizer.ggml.* keys), or NULL if it came without one. It belongs
 * to the model. */
const gemma4_tokenizer *gemma4_model_tokenizer(const gemma4_model *model);
/* A tokenizer.json on its own (Hugging Face format, BPE). */
int gemma4_tokenizer_load(const char *tokenizer_json, gemma4_tokenizer **out);
void gemma4_tokenizer_free(gemma4_tokenizer *tok);

/* 1 + the highest token id. */
int32_t gemma4_tokenizer_n_vocab(const gemma4_tokenizer *tok);
/* The id of a token text (e.g. "<turn|>"), or -1. */
int32_t gemma4_token_id(const gemma4_tokenizer *tok, const char *text);
/* A token's text as stored (U+2581 for spaces), len bytes; NULL for no such id. */
const char *gemma4_token_text(const gemma4_tokenizer *tok, int32_t id, size_t *len);
/* The BOS id (2 for Gemma), or -1. */
int32_t gemma4_token_bos(const gemma4_tokenizer *tok);

enum {
    GEMMA4_TOKENIZE_ADD_BOS = 1,       /* start with one BOS (not doubled if the text begins with "<bos>") */
    GEMMA4_TOKENIZE_PARSE_SPECIAL = 2, /* special-token texts in the text become their ids (Hugging Face's default;
                                          chat prompts need it). Without it they are ordinary text. */
};
/* UTF-8 text (len bytes; invalid UTF-8 is an error) -> *ids (n_ids entries). */
int gemma4_tokenize(const gemma4_tokenizer *tok, const char *text, size_t len, int flags, int32_t **ids, size_t *n_ids);
/* ids -> *text (NUL-terminated, *len bytes; len may be NULL). skip_special
 * drops special tokens; otherwise they appear as their text. */
int gemma4_detokenize(const gemma4_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                      size_t *len);
void gemma4_free(void *p);

/* Streaming detokenizer: push ids as they are sampled; each push gives the
 * text that became final (whole UTF-8 characters only; may be empty), valid
 * until the next call. All pushes plus finish equal gemma4_detokenize. */
typedef struct gemma4_detokenizer gemma4_detokenizer;
int gemma4_detokenizer_new(const gemma4_tokenizer *tok, int skip_special, gemma4_detokenizer **out);
int gemma4_detokenizer_push(gemma4_detokenizer *d, int32_t id, const char **text, size_t *len);
/* Flushes what is held back and starts over. */
int gemma4_detokenizer_finish(gemma4_detokenizer *d, const char **text, size_t *len);
void gemma4_detokenizer_free(gemma4_detokenizer *d);

#define GEMMA4_AUTO (-1)

typedef struct gemma4_chat_params {
    int enable_thinking;       /* <|think|> in the system turn (default 0) */
    int add_generation_prompt; /* open the model's turn at the end (default 1) */
    int preserve_thinking;     /* keep the reasoning of earlier tool-calling turns (default 0) */
    /* With thinking off, end the generation prompt with the empty thought
     * block <|channel>thought\n<channel|> (12B / 26B-A4B / 31B; E2B and E4B
     * must not get it). GEMMA4_AUTO (default): from the model, on unless it
     * has per-layer inputs (E2B/E4B); off when no model is given. */
    int empty_thought_prefill;
} gemma4_chat_params;

gemma4_chat_params gemma4_chat_default_params(void);

/* Renders a conversation into the prompt text, exactly as the official
 * Gemma 4 chat template (July 2026) does. messages_json: a JSON array of
 * OpenAI-style messages (system/developer, user, assistant with
 * tool_calls, whose arguments are objects, and reasoning_content, tool).
 * tools_json: NULL or a JSON array of {"type":"function","function":{name,
 * description, parameters}}. model may be NULL (then the prefill is off
 * unless asked for). params NULL: the defaults. */
int gemma4_chat_render(const gemma4_model *model, const char *messages_json, const char *tools_json,
                       const gemma4_chat_params *params, char **prompt);

/* The ids that end a model turn: the model's EOS ids and, when its
 * tokenizer has them, <eos>, <turn|> and <|tool_response>. Returns how many
 * were written to ids (at most cap). */
int gemma4_chat_stop_tokens(const gemma4_model *model, int32_t *ids, int cap);

/* Streaming parser of model output (decoded with special tokens visible):
 * thoughts (<|channel>thought ... <channel|>), visible content, tool calls
 * (<|tool_call>call:NAME{...}<tool_call|>, arguments converted to JSON) and
 * the end marker (<turn|>, <|tool_response> or <eos>), tolerant of the
 * model's usual slips. Events come in order; feeding text whole or in any
 * pieces gives the same events (up to how text is split). */
typedef enum gemma4_chat_event_kind {
    GEMMA4_CHAT_CONTENT,   /* visible text: text, len */
    GEMMA4_CHAT_THOUGHT,   /* reasoning text: text, len */
    GEMMA4_CHAT_TOOL_CALL, /* name, arguments (a compact JSON object), both NUL-terminated */
    GEMMA4_CHAT_END,       /* the end marker: text */
} gemma4_chat_event_kind;

typedef struct gemma4_chat_event {
    gemma4_chat_event_kind kind;
    const char *text; /* not NUL-terminated: use len */
    size_t len;
    const char *name;
    const char *arguments;
} gemma4_chat_event;

/* The event's pointers are valid during the call only. */
typedef void (*gemma4_chat_event_fn)(void *user, const gemma4_chat_event *event);

typedef struct gemma4_chat_parser gemma4_chat_parser;
/* start_in_thought: the prompt ended inside a thought (it ends with
 * "<|channel>thought\n", which the template writes after a tool response
 * with thinking on). */
int gemma4_chat_parser_new(int start_in_thought, gemma4_chat_event_fn on_event, void *user, gemma4_chat_parser **out);
int gemma4_chat_parser_feed(gemma4_chat_parser *p, const char *text, size_t len);
/* End of output without an end marker (token limit): flushes what is held. */
int gemma4_chat_parser_finish(gemma4_chat_parser *p);
/* 1 once an end marker has been seen (later input is ignored). */
int gemma4_chat_parser_done(const gemma4_chat_parser *p);
void gemma4_chat_parser_free(gemma4_chat_parser *p);

/* User stop strings over streamed text: text that may begin a stop string is
 * held back until decided; on a match the text before it is released and
 * the rest dropped. */
typedef struct gemma4_stop gemma4_stop;
int gemma4_stop_new(const char *const *stops, size_t n_stops, gemma4_stop **out);
/* *out, *out_len: the text now safe to show (valid until the next call).
 * Returns 1 when a stop string matched, 0 if not, -1 on error. */
int gemma4_stop_feed(gemma4_stop *s, const char *text, size_t len, const char **out, size_t *out_len);
/* End of the stream: releases the held-back text. */
void gemma4_stop_flush(gemma4_stop *s, const char **out, size_t *out_len);
void gemma4_stop_free(gemma4_stop *s);

/* ---- structured output: grammar-constrained decoding (src/grammar) ----
 *
 *   gemma4_grammar_from_json_schema(tok, schema_or_NULL, &g);   // once per schema
 *   gemma4_matcher_new(g, &m);                                   // once per generation
 *   gemma4_matcher_set_max_tokens(m, n_predict);                 // optional: close within it
 *   per step: gemma4_matcher_mask(m, logits, n_vocab); id = gemma4_sample(...);
 *             gemma4_matcher_accept(m, id);
 * A grammar is compiled against a tokenizer, is immutable and may be shared
 * between threads (the states its matchers explore are cached with it, under
 * a lock, so later generations start warm); a matcher belongs to one
 * generation. Special tokens the grammar does not name are always masked;
 * end-of-turn tokens (<turn|>, <eos>; also <|tool_response> for tool calls)
 * are allowed exactly when the text is complete. docs/grammar.md has the
 * formats and the supported JSON Schema subset. */
typedef struct gemma4_grammar gemma4_grammar;
typedef struct gemma4_matcher gemma4_matcher;

/* schema_json NULL: any JSON value. Otherwise a JSON Schema; keywords that
 * are not supported are an error (never silently ignored). */
int gemma4_grammar_from_json_schema(const gemma4_tokenizer *tok, const char *schema_json, gemma4_grammar **out);
/* A grammar in the user grammar format (docs/grammar.md). */
int gemma4_grammar_from_text(const gemma4_tokenizer *tok, const char *grammar_text, gemma4_grammar **out);
/* Gemma tool calls (<|tool_call>call:NAME{...}<tool_call|>) whose arguments
 * match the declared tools' parameter schemas. tools_json as for
 * gemma4_chat_render; choice: "auto" (text and/or tool calls), "required"
 * (at least one tool call) or a tool name (a call of that tool). */
int gemma4_grammar_for_tools(const gemma4_tokenizer *tok, const char *tools_json, const char *choice,
                             gemma4_grammar **out);
void gemma4_grammar_free(gemma4_grammar *g);

int gemma4_matcher_new(const gemma4_grammar *g, gemma4_matcher **out);
void gemma4_matcher_free(gemma4_matcher *m);
/* Sets the logits of the tokens the grammar does not allow next to -INFINITY. */
int gemma4_matcher_mask(gemma4_matcher *m, float *logits, int n_vocab);
/* Advances over a sampled token; -1 if the grammar does not allow it. */
int gemma4_matcher_accept(gemma4_matcher *m, int32_t token);
/* 1 when the text so far is complete: end-of-turn tokens are allowed now
 * (the grammar may also allow more text, e.g. more digits of a number). */
int gemma4_matcher_is_complete(const gemma4_matcher *m);
/* The answer's token budget (0, the default: none). When the tokens left
 * are just enough to finish, the mask allows only the shortest way to a
 * complete text, so a value cut by the budget still closes cleanly. */
int gemma4_matcher_set_max_tokens(gemma4_matcher *m, int max_tokens);

#ifdef __cplusplus
}
#endif

#endif
