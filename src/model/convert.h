/* Writing a loaded Gemma 4 model as a GGUF file llama.cpp can load, in any
 * supported tensor type (the converter and the quantiser are one thing: the
 * source may be a checkpoint directory or another GGUF file). */
#ifndef G4_MODEL_CONVERT_H
#define G4_MODEL_CONVERT_H

#include "model/model.h"

#include <stdint.h>

/* File types: one tensor type for the matrices, or a mixed recipe. */
typedef enum g4_ftype {
    G4_FTYPE_F32, G4_FTYPE_F16, G4_FTYPE_BF16,
    G4_FTYPE_Q8_0, G4_FTYPE_Q4_0, G4_FTYPE_Q4_1, G4_FTYPE_Q5_0, G4_FTYPE_Q5_1,
    G4_FTYPE_Q4_K, G4_FTYPE_Q5_K, G4_FTYPE_Q6_K,
    G4_FTYPE_Q4_K_M, /* llama.cpp-like mix: Q4_K, with Q6_K for the embedding and some attn_v / ffn_down */
    G4_FTYPE_COUNT
} g4_ftype;

/* "q4_k_m" → G4_FTYPE_Q4_K_M (case-insensitive); -1 if unknown. */
int g4_ftype_parse(const char *name, g4_ftype *out);
const char *g4_ftype_name(g4_ftype t);

/* The storage type the recipe gives one tensor (GGUF name, shape outermost
 * first). 1-D tensors stay F32; rows that are not whole blocks fall back to a
 * type with smaller blocks, as llama.cpp does. */
g4_dtype g4_ftype_tensor_type(g4_ftype ft, const char *gguf_name, int ndim, const int64_t *shape, int n_layers);

typedef void (*g4_progress_fn)(void *ctx, uint64_t done, uint64_t total);
/* Extra metadata (the tokenizer); may be NULL. */
typedef int (*g4_metadata_fn)(void *ctx, gguf_writer *w, g4_error *err);

int g4_convert(const g4_model *m, const char *name, const char *out_path, g4_ftype ft, g4_metadata_fn extra,
               void *extra_ctx, g4_progress_fn progress, void *progress_ctx, g4_error *err);

/* A model with the config's exact shapes and random weights (for speed and
 * memory measurements, and tests that need no reference), streamed to a GGUF
 * file row by row. branch_scale scales the post-branch norm weights (1 = the
 * same range as the others; below 1 keeps a random model's residual stream
 * dominant, so small numeric differences stay small). */
int g4_synth(const g4_config *cfg, const char *name, const char *out_path, g4_ftype ft, uint64_t seed, float branch_scale,
             g4_metadata_fn extra, void *extra_ctx, g4_progress_fn progress, void *progress_ctx, g4_error *err);

#endif
