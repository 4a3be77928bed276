/* libmicrohttpd glue. Handlers run on the connection's own thread, so they
 * may block while the engine works; a blocked handler polls its socket to
 * notice a client that hung up. */
#include "serve/http.h"

#include "serve/openai_response.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_SLICE_S 0.1 /* how often a waiting handler checks its client */

struct serve_http {
    struct MHD_Daemon *daemon;
    http_options opt;
    serve_metrics *metrics;
    atomic_int ready;
    const gemma4_model *model;
    serve_engine *engine;
    openai_limits limits;
    long started;
    double keep_alive_s; /* longest silence in a stream */
};

/* One HTTP request on a connection. */
typedef struct request_state {
    text_buf body;
    int too_large;
} request_state;

/* A streamed answer. */
typedef struct stream_state {
    serve_http *h;
    serve_request *r;
    int fd;
    sse_state sse;
    text_buf out;
    size_t out_pos;
    int complete;
} stream_state;

/* ---- replies ---- */

/* Tells keep-alive clients when the server drops an idle connection, so they
 * stop reusing it first instead of racing the close with a new request. */
static void keep_alive_hint(const serve_http *h, struct MHD_Response *resp) {
    char v[32];
    snprintf(v, sizeof v, "timeout=%d", h->opt.idle_timeout_s);
    MHD_add_response_header(resp, "Keep-Alive", v);
}

static enum MHD_Result reply(serve_http *h, struct MHD_Connection *c, int status, const char *content_type, char *body) {
    static char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";
    struct MHD_Response *resp = body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
                                     : MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (!body) status = 500;
    MHD_add_response_header(resp, "Content-Type", content_type);
    keep_alive_hint(h, resp);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    metrics_request_done(h->metrics, status);
    return ret;
}

static enum MHD_Result reply_error(serve_http *h, struct MHD_Connection *c, int status, const char *message,
                                   const char *param, const char *code) {
    return reply(h, c, status, "application/json", openai_error_body(status, message, param, code));
}

static enum MHD_Result reply_json(serve_http *h, struct MHD_Connection *c, int status, char *body) {
    return reply(h, c, status, "application/json", body);
}

/* ---- waiting for the engine ---- */

static int client_gone(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Waits (r->mu held) a slice of time for r to change. */
static void wait_slice(serve_request *r) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += (long)(WAIT_SLICE_S * 1e9);
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->changed, &r->mu, &t);
}

static int connection_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static int has_news(const serve_request *r, const sse_state *st) {
    return r->done || !st->started || r->content.n > st->content_sent || r->reasoning.n > st->reasoning_sent ||
           json_array_size(r->tool_calls) > st->calls_sent;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_state *s = cls;
    for (;;) {
        if (s->out_pos < s->out.n) {
            size_t n = s->out.n - s->out_pos < max ? s->out.n - s->out_pos : max;
            memcpy(buf, s->out.p + s->out_pos, n);
            s->out_pos += n;
            return (ssize_t)n;
        }
        if (s->complete) return MHD_CONTENT_READER_END_OF_STREAM;
        s->out.n = s->out_pos = 0;
        serve_request *r = s->r;
        int rc = 0;
        double quiet_until = serve_now() + s->h->keep_alive_s;
        pthread_mutex_lock(&r->mu);
        for (;;) { /* news may yield nothing yet: half a character is held back */
            if (has_news(r, &s->sse) && ((rc = openai_stream_events(r, s->h->limits.model_id, &s->sse, &s->out)) || s->out.n))
                break;
            if (client_gone(s->fd)) {
                pthread_mutex_unlock(&r->mu);
                return MHD_CONTENT_READER_END_WITH_ERROR; /* stream_free cancels */
            }
            /* a comment line keeps a stream that waits (in the queue, on a long
             * prompt) from being closed as idle; SSE clients ignore it */
            if (serve_now() > quiet_until && !text_append(&s->out, ": waiting\n\n", 11)) break;
            wait_slice(r);
        }
        pthread_mutex_unlock(&r->mu);
        if (rc < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        s->complete = rc == 1;
    }
}

static void stream_free(void *cls) {
    stream_state *s = cls;
    if (!s->complete) atomic_store(&s->r->cancelled, 1);
    serve_request_unref(s->r);
    text_free(&s->out);
    free(s);
}

static enum MHD_Result reply_stream(serve_http *h, struct MHD_Connection *c, serve_request *r) {
    stream_state *s = calloc(1, sizeof *s);
    if (!s) {
        atomic_store(&r->cancelled, 1);
        serve_request_unref(r);
        return reply_error(h, c, 500, "out of memory", NULL, NULL);
    }
    s->h = h;
    s->r = r;
    s->fd = connection_fd(c);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    keep_alive_hint(h, resp);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    metrics_request_done(h->metrics, 200);
    return ret;
}

/* Waits for the whole answer; MHD_NO (closing the connection) if the client
 * hangs up first. */
static enum MHD_Result reply_when_done(serve_http *h, struct MHD_Connection *c, serve_request *r) {
    int fd = connection_fd(c);
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        if (client_gone(fd)) {
            pthread_mutex_unlock(&r->mu);
            atomic_store(&r->cancelled, 1);
            serve_request_unref(r);
            return MHD_NO;
        }
        wait_slice(r);
    }
    int status = r->error_status;
    char *body = status ? openai_error_body(status, r->error_message, NULL, NULL)
                        : openai_completion_body(r, h->limits.model_id);
    pthread_mutex_unlock(&r->mu);
    serve_request_unref(r);
    if (status == 499) { /* cancelled: nobody to answer */
        free(body);
        return MHD_NO;
    }
    return reply_json(h, c, status ? status : 200, body);
}

/* ---- the API ---- */

static enum MHD_Result generate(serve_http *h, struct MHD_Connection *c, const char *url, request_state *rs) {
    json_error_t jerr;
    json_t *body = json_loadb(rs->body.p ? rs->body.p : "", rs->body.n, 0, &jerr);
    if (!body) {
        char msg[256];
        snprintf(msg, sizeof msg, "the body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return reply_error(h, c, 400, msg, NULL, NULL);
    }
    openai_error err = {0};
    serve_request *r = !strcmp(url, "/v1/chat/completions") ? openai_parse_chat(h->model, &h->limits, body, &err)
                                                            : openai_parse_completion(h->model, &h->limits, body, &err);
    json_decref(body);
    if (!r) return reply_error(h, c, err.status, err.message, err.param, err.code);
    int q = engine_submit(h->engine, r);
    if (q != ENGINE_QUEUED) {
        serve_request_unref(r);
        return q == ENGINE_QUEUE_FULL ? reply_error(h, c, 429, "too many requests are waiting; retry later", NULL, NULL)
                                      : reply_error(h, c, 503, "the server is shutting down", NULL, NULL);
    }
    return r->stream ? reply_stream(h, c, r) : reply_when_done(h, c, r);
}

/* Constant-time comparison of the bearer token. */
static int authorized(const serve_http *h, struct MHD_Connection *c) {
    if (!h->opt.api_key) return 1;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncmp(auth, "Bearer ", 7)) return 0;
    const char *given = auth + 7, *key = h->opt.api_key;
    size_t n = strlen(key), m = strlen(given);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < m ? given[i] : 0);
    return diff == 0;
}

static enum MHD_Result route(serve_http *h, struct MHD_Connection *c, const char *url, const char *method,
                             request_state *rs) {
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    int ready = atomic_load(&h->ready);
    if (!strcmp(url, "/health")) {
        if (!get) return reply_error(h, c, 405, "use GET", NULL, NULL);
        return reply_json(h, c, ready ? 200 : 503, strdup(ready ? "{\"status\":\"ok\"}" : "{\"status\":\"loading\"}"));
    }
    int known = !strcmp(url, "/metrics") || !strcmp(url, "/v1/models") || !strcmp(url, "/v1/chat/completions") ||
                !strcmp(url, "/v1/completions");
    if (!known) return reply_error(h, c, 404, "no such endpoint", NULL, NULL);
    if (!authorized(h, c)) return reply_error(h, c, 401, "missing or wrong API key (Authorization: Bearer KEY)", NULL, "invalid_api_key");
    int wants_post = !strncmp(url, "/v1/c", 5);
    if (wants_post ? !post : !get) return reply_error(h, c, 405, wants_post ? "use POST" : "use GET", NULL, NULL);
    if (!strcmp(url, "/metrics")) return reply(h, c, 200, "text/plain; version=0.0.4", metrics_render(h->metrics));
    if (!ready) return reply_error(h, c, 503, "the model is loading", NULL, NULL);
    if (!strcmp(url, "/v1/models")) return reply_json(h, c, 200, openai_models_body(h->limits.model_id, h->started));
    if (rs->too_large) return reply_error(h, c, 413, "the request body is too large", NULL, NULL);
    return generate(h, c, url, rs);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **req_cls) {
    (void)version;
    serve_http *h = cls;
    request_state *rs = *req_cls;
    if (!rs) { /* headers are in; the body (if any) follows */
        if (!(rs = calloc(1, sizeof *rs))) return MHD_NO;
        *req_cls = rs;
        const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (len && strtoull(len, NULL, 10) > h->opt.max_body)
            return reply_error(h, c, 413, "the request body is too large", NULL, NULL);
        return MHD_YES;
    }
    if (*upload_size) {
        if (rs->too_large || rs->body.n + *upload_size > h->opt.max_body) {
            rs->too_large = 1;
            text_free(&rs->body);
        } else if (text_append(&rs->body, upload_data, *upload_size)) {
            return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return route(h, c, url, method, rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode code) {
    (void)cls, (void)c, (void)code;
    request_state *rs = *req_cls;
    if (!rs) return;
    text_free(&rs->body);
    free(rs);
    *req_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx, enum MHD_ConnectionNotificationCode code) {
    (void)c, (void)socket_ctx;
    serve_http *h = cls;
    metrics_add_connection(h->metrics, code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* ---- life cycle ---- */

int http_start(const http_options *o, serve_metrics *metrics, serve_http **out, char *err, size_t err_size) {
    serve_http *h = calloc(1, sizeof *h);
    if (!h) return snprintf(err, err_size, "out of memory"), -1;
    h->opt = *o;
    h->metrics = metrics;
    h->started = (long)time(NULL);
    h->keep_alive_s = o->idle_timeout_s / 3.0;
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
    const char *host = !strcmp(o->host, "localhost") ? "127.0.0.1" : o->host;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)o->port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)o->port);
        flags |= MHD_USE_IPv6;
    } else {
        free(h);
        return snprintf(err, err_size, "--host %s: not a numeric IPv4 or IPv6 address", o->host), -1;
    }
    h->daemon = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
                                 on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (!h->daemon) {
        int e = errno;
        free(h);
        return snprintf(err, err_size, "cannot listen on %s port %d: %s", o->host, o->port, e ? strerror(e) : "failed"), -1;
    }
    *out = h;
    return 0;
}

int http_port(const serve_http *h) {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : -1;
}

void http_set_ready(serve_http *h, const gemma4_model *model, serve_engine *engine, const openai_limits *limits) {
    h->model = model;
    h->engine = engine;
    h->limits = *limits;
    atomic_store(&h->ready, 1);
}

void http_stop(serve_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
