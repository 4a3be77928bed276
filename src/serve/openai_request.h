/* OpenAI request bodies -> serve_request: every field is type- and
 * range-checked, the conversation rendered with the Gemma 4 chat template
 * and tokenized. A rejected body yields a status (400) and a one-line
 * message naming the offending parameter. */
#ifndef G4_SERVE_OPENAI_REQUEST_H
#define G4_SERVE_OPENAI_REQUEST_H

#include "gemma4.h"
#include "serve/request.h"

#include <jansson.h>

typedef struct openai_limits {
    const char *model_id; /* the "model" a request must name */
    int n_ctx;            /* positions per sequence: prompt + answer */
    int max_messages, max_tools;
    double timeout_s; /* per request, from arrival */
} openai_limits;

typedef struct openai_error {
    int status;
    const char *code;  /* OpenAI's error code, or NULL */
    char param[64];    /* the offending parameter, or "" */
    char message[256];
} openai_error;

/* POST /v1/chat/completions and /v1/completions. NULL on error (err filled). */
serve_request *openai_parse_chat(const gemma4_model *model, const openai_limits *lim, const json_t *body,
                                 openai_error *err);
serve_request *openai_parse_completion(const gemma4_model *model, const openai_limits *lim, const json_t *body,
                                       openai_error *err);

#endif
