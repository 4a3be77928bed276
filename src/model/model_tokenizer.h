/* The tokenizer that comes with a model (model_tokenizer.c), and the
 * tokenizer keys of the GGUF files we write (tokenizer_gguf.c), the way
 * llama.cpp's convert_hf_to_gguf.py writes them for Gemma 4
 * (../shared/docs/tokenizer-and-chat.md §4, gguf-and-llamacpp.md §1.3). */
#ifndef G4_MODEL_MODEL_TOKENIZER_H
#define G4_MODEL_MODEL_TOKENIZER_H

#include "io/gguf.h"
#include "model/config.h"
#include "tok/tokenizer.h"
#include "util/error.h"

/* The tokenizer of a checkpoint directory (its tokenizer.json) or of a GGUF
 * file (tokenizer.ggml.*: model "gemma4" or "llama" with tokens, token_type,
 * and merges or else scores). *out is NULL when there is none: no
 * tokenizer.json, or tokenizer.ggml.model absent or "none". A tokenizer that
 * is there but cannot be read is an error. */
int g4_model_tokenizer_load(const char *dir, const gguf_file *gguf, g4_tokenizer **out, g4_error *err);

/* Where the tokenizer keys of a GGUF file come from: the g4_metadata_fn
 * g4_tokenizer_gguf_write takes one of these as its context. */
typedef struct g4_tokenizer_source {
    const g4_config *cfg;       /* vocab_size (the token count written), bos/eos/pad ids */
    const g4_tokenizer *tok;    /* loaded already, or NULL to load tokenizer_json */
    const char *tokenizer_json; /* for the merges (and the tokens when tok is NULL); NULL: no tokenizer */
    /* Optional: a directory with tokenizer_config.json (special-token ids,
     * add_eos_token, chat_template) and/or chat_template.jinja. */
    const char *config_dir;
    /* Optional: a chat template file used when config_dir gives none. */
    const char *chat_template_path;
} g4_tokenizer_source;

/* Writes tokenizer.ggml.model "gemma4", tokens, scores (-1000 placeholders),
 * token_type (1 normal, 3 control, 4 user-defined for the 7 protocol markers
 * llama.cpp renders, 6 byte), merges, the special-token ids, add_bos_token
 * true, add_space_prefix false and tokenizer.chat_template; or just
 * tokenizer.ggml.model "none" when tokenizer_json is NULL. Exactly
 * cfg->vocab_size tokens: ids the tokenizer lacks become "[PADn]" (unused);
 * special added tokens past the model's vocabulary are dropped; any other
 * token past it is an error. ctx: a g4_tokenizer_source. */
int g4_tokenizer_gguf_write(void *ctx, gguf_writer *w, g4_error *err);

#endif
