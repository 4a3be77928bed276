/* The engine thread: it alone owns the context. Each step it admits queued
 * requests into free sequences (reusing cached prefixes), builds one batch of
 * every generating sequence's next token plus prompt chunks of new ones (up
 * to n_batch tokens), decodes it, samples each sequence and hands the text
 * to its request. */
#ifndef G4_SERVE_ENGINE_H
#define G4_SERVE_ENGINE_H

#include "gemma4.h"
#include "serve/metrics.h"
#include "serve/request.h"

typedef struct engine_params {
    int parallel;    /* sequences generated side by side */
    int cache_slots; /* extra sequences holding prefix snapshots */
    int max_queue;   /* requests waiting for a sequence; more are refused */
    gemma4_context_params ctx; /* n_seq is set from the above */
} engine_params;

typedef struct serve_engine serve_engine;

/* Creates the context and starts the thread; -1 with gemma4_last_error(). */
int engine_start(gemma4_model *model, const engine_params *p, serve_metrics *metrics, serve_engine **out);
/* Fails every queued and running request (503) and stops the thread; later
 * submissions are refused (ENGINE_STOPPING) until engine_free. */
void engine_stop(serve_engine *e);
void engine_free(serve_engine *e);

enum { ENGINE_QUEUED = 0, ENGINE_QUEUE_FULL = -1, ENGINE_STOPPING = -2 };
/* Queues r (taking a reference of its own). */
int engine_submit(serve_engine *e, serve_request *r);
/* Positions per sequence. */
int engine_n_ctx(const serve_engine *e);

#endif
