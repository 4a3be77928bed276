/* Server counters and gauges, rendered as Prometheus text (GET /metrics).
 * Updated from the HTTP threads and the engine thread. */
#ifndef G4_SERVE_METRICS_H
#define G4_SERVE_METRICS_H

#include <pthread.h>
#include <stdint.h>

#define METRICS_RATE_BUCKETS 10 /* seconds of history behind the tokens/s gauge */

typedef struct serve_metrics {
    pthread_mutex_t mu;
    uint64_t requests[6];          /* answered, by status class: [2] = 2xx, [4] = 4xx, [5] = 5xx */
    uint64_t requests_cancelled;   /* clients that went away before the end */
    uint64_t prompt_tokens, prompt_tokens_cached, completion_tokens;
    double ttft_sum;               /* seconds from arrival to the first token, summed */
    uint64_t ttft_count;
    int queue_depth, running, connections_open;
    int kv_sequences_used, kv_sequences_total;
    uint64_t kv_tokens;            /* positions held in all sequences' caches */
    /* generated tokens per whole second, ring indexed by second */
    uint64_t rate_tokens[METRICS_RATE_BUCKETS];
    int64_t rate_second[METRICS_RATE_BUCKETS];
} serve_metrics;

void metrics_init(serve_metrics *m);
void metrics_destroy(serve_metrics *m);
void metrics_request_done(serve_metrics *m, int http_status);
void metrics_add_connection(serve_metrics *m, int delta);
void metrics_cancelled(serve_metrics *m);
void metrics_tokens(serve_metrics *m, uint64_t prompt, uint64_t cached, uint64_t completion);
void metrics_first_token(serve_metrics *m, double seconds);
/* The engine's view after each step. */
void metrics_engine_state(serve_metrics *m, int queue_depth, int running, int kv_used, int kv_total, uint64_t kv_tokens);
/* Prometheus text exposition (malloc'ed), or NULL when out of memory. */
char *metrics_render(serve_metrics *m);

#endif
