/* The names of the Gemma 4 text decoder's tensors in Hugging Face
 * checkpoints and in llama.cpp's GGUF files: one table, used by the loader
 * and the converter alike. */
#ifndef G4_MODEL_TENSOR_NAMES_H
#define G4_MODEL_TENSOR_NAMES_H

typedef struct g4_tensor_name {
    const char *hf;   /* after "model.[language_model.]" and, per layer, "layers.N." */
    const char *gguf; /* per layer after "blk.N." */
} g4_tensor_name;

/* The GGUF name for an HF name (NULL if the text decoder has no such
 * tensor), per layer when layer >= 0. Writes into buf. */
const char *g4_gguf_name(const char *hf, int layer, char *buf, unsigned len);

/* Splits a full HF tensor name into its layer (-1 for global) and the name
 * within the layer/model, skipping the model prefix. Returns the suffix, or
 * NULL if the name is not part of the text decoder (vision, audio, lm_head). */
const char *g4_hf_text_name(const char *full, int *layer);

#endif
