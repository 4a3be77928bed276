/* Parameter counts of a Gemma 4 text decoder, from its config alone (what
 * the weights must hold; used for memory reports before anything loads). */
#ifndef G4_MODEL_PARAMS_H
#define G4_MODEL_PARAMS_H

#include "model/config.h"

#include <stdint.h>

typedef struct g4_param_count {
    uint64_t total;      /* every weight of the text decoder (layer_scalar buffers excluded, as transformers does) */
    uint64_t embeddings; /* token embedding (= tied LM head) + per-layer embedding table */
    uint64_t experts;    /* routed expert matrices (MoE) */
    uint64_t active;     /* used per token: all but the unchosen experts and the per-layer table (one row of it);
                          * the token embedding counts whole, as it is also the LM head */
} g4_param_count;

g4_param_count g4_count_params(const g4_config *cfg);

#endif
