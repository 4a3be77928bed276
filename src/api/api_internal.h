/* What the files of src/api/ share: the public handles' layouts and the
 * per-thread error of gemma4_last_error. */
#ifndef G4_API_INTERNAL_H
#define G4_API_INTERNAL_H

#include "gemma4.h"
#include "model/model.h"
#include "tok/tokenizer.h"
#include "util/error.h"

struct gemma4_tokenizer {
    g4_tokenizer *tok;
    int32_t bos_id; /* -1: none */
    int owned;      /* 0: the model's, freed with it */
};

struct gemma4_model {
    g4_model *m;
    gemma4_tokenizer tok; /* tok.tok NULL: the model has no tokenizer */
    struct g4_gpu_model *gpu; /* the weights on the GPU, made with the first GPU context */
    int synthetic;        /* gemma4_model_synthetic: no host weights, GPU only */
};

/* The calling thread's gemma4_last_error message. */
g4_error *g4_api_error(void);

#endif
