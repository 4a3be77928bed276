/* A loaded Gemma 4 text model: its config, the mapped checkpoint and the
 * weight views into it. */
#ifndef G4_MODEL_MODEL_H
#define G4_MODEL_MODEL_H

#include "io/checkpoint.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "tok/tokenizer.h"

typedef struct g4_model {
    g4_config cfg;
    g4_checkpoint *ckpt; /* the weights come from a checkpoint directory, */
    gguf_file *gguf;     /* or from a GGUF file */
    g4_weights w;
    g4_tokenizer *tok;   /* its tokenizer (model_tokenizer.c), or NULL: ids only */
} g4_model;

/* path: a Hugging Face checkpoint directory (config.json + safetensors) or a
 * GGUF file. The tokenizer comes along when there is one (tokenizer.json in
 * the directory, tokenizer.ggml.* keys in the file). */
int g4_model_load(const char *path, g4_model **out, g4_error *err);
void g4_model_free(g4_model *m);

#endif
