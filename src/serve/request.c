/* The shared request object: reference counting and the engine's writes
 * into the output, each followed by a wake-up of the waiting handler. */
#include "serve/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double serve_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

serve_request *serve_request_new(serve_endpoint endpoint) {
    serve_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (!(r->tool_calls = json_array())) {
        free(r);
        return NULL;
    }
    r->endpoint = endpoint;
    r->max_tokens = -1;
    r->sampling = gemma4_sampler_default_params();
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t attr; /* handlers wait with CLOCK_MONOTONIC deadlines */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->changed, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&r->refs, 1);
    atomic_init(&r->cancelled, 0);
    return r;
}

void serve_request_ref(serve_request *r) { atomic_fetch_add(&r->refs, 1); }

void serve_request_unref(serve_request *r) {
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1) return;
    free(r->prompt);
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    gemma4_grammar_free(r->grammar);
    text_free(&r->content);
    text_free(&r->reasoning);
    json_decref(r->tool_calls);
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int serve_request_add_text(serve_request *r, int reasoning, const char *text, size_t len) {
    if (!len) return 0;
    pthread_mutex_lock(&r->mu);
    int rc = text_append(reasoning ? &r->reasoning : &r->content, text, len);
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int serve_request_add_tool_call(serve_request *r, const char *name, const char *arguments_json) {
    pthread_mutex_lock(&r->mu);
    char id[48];
    snprintf(id, sizeof id, "call_%s_%zu", r->id + 9, json_array_size(r->tool_calls)); /* after "chatcmpl-" */
    json_t *call = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function", "name", name,
                             "arguments", arguments_json);
    int rc = !call || json_array_append_new(r->tool_calls, call) ? -1 : 0;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void serve_request_finish(serve_request *r, const char *finish_reason, int n_prompt_cached, int n_completion) {
    pthread_mutex_lock(&r->mu);
    r->finish_reason = finish_reason;
    r->n_prompt_cached = n_prompt_cached;
    r->n_completion = n_completion;
    r->done = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mu);
}

void serve_request_fail(serve_request *r, int http_status, const char *message) {
    pthread_mutex_lock(&r->mu);
    if (!r->done) {
        r->error_status = http_status;
        snprintf(r->error_message, sizeof r->error_message, "%s", message);
        r->done = 1;
    }
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mu);
}
