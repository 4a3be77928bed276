/* The Gemma 4 config as llama.cpp stores it in GGUF metadata (architecture
 * "gemma4": keys gemma4.*), both ways. Per-layer facts GGUF does not store
 * are inferred as llama.cpp infers them: k = v from the absence of attn_v,
 * proportional RoPE from the rope_freqs tensor (factor 1 = rotate, 1e30 =
 * identity). */
#ifndef G4_MODEL_GGUF_HPARAMS_H
#define G4_MODEL_GGUF_HPARAMS_H

#include "io/gguf.h"
#include "model/config.h"

int g4_config_from_gguf(const gguf_file *f, g4_config *cfg, g4_error *err);

/* Writes general.architecture and every gemma4.* key llama.cpp reads. */
int g4_config_to_gguf(const g4_config *cfg, const char *name, gguf_writer *w, g4_error *err);

/* The rope_freqs tensor of the full-attention layers: head_dim/2 factors, 1
 * for the rotated pairs and 1e30 for the rest. Returns its length (0 if the
 * model has no full-attention layer). out holds at least head_dim/2 floats. */
int g4_rope_freqs(const g4_config *cfg, float *out);

#endif
