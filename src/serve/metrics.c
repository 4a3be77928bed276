/* Prometheus text format, version 0.0.4: one "# HELP", one "# TYPE" and the
 * samples of each metric. */
#include "serve/metrics.h"

#include "serve/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void metrics_init(serve_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    for (int i = 0; i < METRICS_RATE_BUCKETS; i++) m->rate_second[i] = -1;
}

void metrics_destroy(serve_metrics *m) { pthread_mutex_destroy(&m->mu); }

void metrics_request_done(serve_metrics *m, int http_status) {
    int cls = http_status / 100;
    pthread_mutex_lock(&m->mu);
    if (cls >= 2 && cls <= 5) m->requests[cls]++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_add_connection(serve_metrics *m, int delta) {
    pthread_mutex_lock(&m->mu);
    m->connections_open += delta;
    pthread_mutex_unlock(&m->mu);
}

void metrics_cancelled(serve_metrics *m) {
    pthread_mutex_lock(&m->mu);
    m->requests_cancelled++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_tokens(serve_metrics *m, uint64_t prompt, uint64_t cached, uint64_t completion) {
    int64_t second = (int64_t)serve_now();
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += prompt;
    m->prompt_tokens_cached += cached;
    m->completion_tokens += completion;
    int b = (int)(second % METRICS_RATE_BUCKETS);
    if (m->rate_second[b] != second) {
        m->rate_second[b] = second;
        m->rate_tokens[b] = 0;
    }
    m->rate_tokens[b] += completion;
    pthread_mutex_unlock(&m->mu);
}

void metrics_first_token(serve_metrics *m, double seconds) {
    pthread_mutex_lock(&m->mu);
    m->ttft_sum += seconds;
    m->ttft_count++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_engine_state(serve_metrics *m, int queue_depth, int running, int kv_used, int kv_total, uint64_t kv_tokens) {
    pthread_mutex_lock(&m->mu);
    m->queue_depth = queue_depth;
    m->running = running;
    m->kv_sequences_used = kv_used;
    m->kv_sequences_total = kv_total;
    m->kv_tokens = kv_tokens;
    pthread_mutex_unlock(&m->mu);
}

typedef struct out {
    char *p;
    size_t n, cap;
    int failed;
} out;

static void metric(out *o, const char *name, const char *type, const char *help, const char *labels, double value) {
    for (;;) {
        size_t room = o->cap - o->n;
        int k = help ? snprintf(o->p + o->n, room, "# HELP %s %s\n# TYPE %s %s\n%s%s %.17g\n", name, help, name, type,
                                name, labels ? labels : "", value)
                     : snprintf(o->p + o->n, room, "%s%s %.17g\n", name, labels ? labels : "", value);
        if (k < 0) { o->failed = 1; return; }
        if ((size_t)k < room) { o->n += (size_t)k; return; }
        char *p = realloc(o->p, o->cap * 2);
        if (!p) { o->failed = 1; return; }
        o->p = p;
        o->cap *= 2;
    }
}

char *metrics_render(serve_metrics *m) {
    out o = {malloc(4096), 0, 4096, 0};
    if (!o.p) return NULL;
    o.p[0] = 0;
    int64_t now = (int64_t)serve_now();
    pthread_mutex_lock(&m->mu);
    serve_metrics s = *m;
    pthread_mutex_unlock(&m->mu);
    /* the last METRICS_RATE_BUCKETS - 1 whole seconds (the current one is still filling) */
    uint64_t recent = 0;
    for (int i = 0; i < METRICS_RATE_BUCKETS; i++)
        if (s.rate_second[i] >= now - (METRICS_RATE_BUCKETS - 1) && s.rate_second[i] < now) recent += s.rate_tokens[i];
    metric(&o, "gemma4_requests_total", "counter", "HTTP requests answered, by status class", "{status=\"2xx\"}",
           (double)s.requests[2]);
    metric(&o, "gemma4_requests_total", "counter", NULL, "{status=\"4xx\"}", (double)s.requests[4]);
    metric(&o, "gemma4_requests_total", "counter", NULL, "{status=\"5xx\"}", (double)s.requests[5]);
    metric(&o, "gemma4_requests_cancelled_total", "counter", "generations ended because the client went away", NULL,
           (double)s.requests_cancelled);
    metric(&o, "gemma4_prompt_tokens_total", "counter", "prompt tokens of finished generations", NULL,
           (double)s.prompt_tokens);
    metric(&o, "gemma4_prompt_tokens_cached_total", "counter", "of which reused from the KV cache (prefix reuse)", NULL,
           (double)s.prompt_tokens_cached);
    metric(&o, "gemma4_completion_tokens_total", "counter", "generated tokens", NULL, (double)s.completion_tokens);
    metric(&o, "gemma4_completion_tokens_per_second", "gauge", "generated tokens per second over the last 9 s", NULL,
           (double)recent / (METRICS_RATE_BUCKETS - 1));
    metric(&o, "gemma4_time_to_first_token_seconds_sum", "counter", "seconds from arrival to the first token, summed",
           NULL, s.ttft_sum);
    metric(&o, "gemma4_time_to_first_token_seconds_count", "counter", "generations that produced a first token", NULL,
           (double)s.ttft_count);
    metric(&o, "gemma4_queue_depth", "gauge", "requests waiting for a sequence slot", NULL, (double)s.queue_depth);
    metric(&o, "gemma4_requests_running", "gauge", "requests being generated", NULL, (double)s.running);
    metric(&o, "gemma4_http_connections_open", "gauge", "open HTTP connections", NULL, (double)s.connections_open);
    metric(&o, "gemma4_kv_sequences_used", "gauge", "KV-cache sequences holding a running request", NULL,
           (double)s.kv_sequences_used);
    metric(&o, "gemma4_kv_sequences_total", "gauge", "KV-cache sequences (running slots and prefix snapshots)", NULL,
           (double)s.kv_sequences_total);
    metric(&o, "gemma4_kv_cache_tokens", "gauge", "positions held in the KV cache, all sequences", NULL,
           (double)s.kv_tokens);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    return o.p;
}
