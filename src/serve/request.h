/* One generation request as it travels between an HTTP handler thread and
 * the engine thread: what to generate (fixed once parsed) and the output so
 * far (under the request's lock). Both sides hold a reference; the last one
 * to let go frees it. */
#ifndef G4_SERVE_REQUEST_H
#define G4_SERVE_REQUEST_H

#include "cli/textgen.h"
#include "gemma4.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#define SERVE_MAX_STOPS 16

typedef enum serve_endpoint { SERVE_CHAT, SERVE_COMPLETION } serve_endpoint;

typedef struct serve_request {
    /* ---- what to generate: set by the parser, read-only afterwards ---- */
    serve_endpoint endpoint;
    int32_t *prompt; /* token ids */
    int n_prompt;
    int prefix_boundary; /* tokens up to the end of the first turn (worth a cache snapshot), or 0 */
    gemma4_sampler_params sampling;
    int max_tokens;     /* -1: until the turn ends or the context is full */
    char *stops[SERVE_MAX_STOPS];
    int n_stops;
    int stream, include_usage;
    int parse_chat;       /* split the output into content / reasoning / tool calls */
    int start_in_thought; /* the prompt ends inside a thought */
    int tools_offered;    /* tool calls in the output become tool_calls (else stay text) */
    gemma4_grammar *grammar; /* constrained decoding, or NULL */
    char id[40];
    long created;
    double t_submit, deadline; /* monotonic seconds */

    /* ---- the output: written by the engine, read by the handler, under mu ---- */
    pthread_mutex_t mu;
    pthread_cond_t changed;
    text_buf content, reasoning; /* everything so far */
    json_t *tool_calls;          /* [{"id","type":"function","function":{"name","arguments"}}] */
    int done;
    const char *finish_reason; /* "stop", "length", "tool_calls" */
    int error_status;          /* non-zero: failed with this HTTP status and error_message */
    char error_message[160];
    int n_prompt_cached, n_completion;
    double t_first_token;

    atomic_int cancelled; /* set by the handler: the client went away */
    atomic_int refs;
} serve_request;

/* A new request with one reference (the caller's); NULL when out of memory. */
serve_request *serve_request_new(serve_endpoint endpoint);
void serve_request_ref(serve_request *r);
void serve_request_unref(serve_request *r);

/* Engine side: output arrives (each takes the lock and wakes the handler). */
int serve_request_add_text(serve_request *r, int reasoning, const char *text, size_t len);
int serve_request_add_tool_call(serve_request *r, const char *name, const char *arguments_json);
void serve_request_finish(serve_request *r, const char *finish_reason, int n_prompt_cached, int n_completion);
void serve_request_fail(serve_request *r, int http_status, const char *message);

double serve_now(void);

#endif
