/* OpenAI response bodies: errors, whole completions, the server-sent event
 * stream of chunks, the model list. Each returns malloc'ed JSON text, or
 * NULL when out of memory. */
#ifndef G4_SERVE_OPENAI_RESPONSE_H
#define G4_SERVE_OPENAI_RESPONSE_H

#include "serve/request.h"

/* {"error":{"message","type","param","code"}}; param and code may be NULL. */
char *openai_error_body(int status, const char *message, const char *param, const char *code);

/* The whole answer of a finished request (call with r->mu held). */
char *openai_completion_body(const serve_request *r, const char *model_id);

/* What a stream has sent so far. */
typedef struct sse_state {
    size_t content_sent, reasoning_sent, calls_sent;
    int started; /* the first chunk (role) is out */
} sse_state;

/* Appends to out the events for what r produced since the last call, and
 * once r is done the final chunk, the usage chunk if asked for and
 * "data: [DONE]". r->mu held. Returns 1 when the stream is complete, 0 if
 * not, -1 when out of memory. */
int openai_stream_events(const serve_request *r, const char *model_id, sse_state *st, text_buf *out);

char *openai_models_body(const char *model_id, long created);

#endif
