/* The HTTP front of `gemma4 serve` over libmicrohttpd (one thread per
 * connection): routing, bearer-token check, body size limit, JSON errors,
 * waiting for an answer or streaming it as server-sent events, and
 * cancelling the request when the client goes away. */
#ifndef G4_SERVE_HTTP_H
#define G4_SERVE_HTTP_H

#include "serve/engine.h"
#include "serve/metrics.h"
#include "serve/openai_request.h"

#include <stddef.h>

typedef struct http_options {
    const char *host; /* numeric IPv4 or IPv6 address, or "localhost" */
    int port;         /* 0: any free port */
    const char *api_key; /* NULL: no authentication */
    size_t max_body;     /* bytes of a request body */
    int max_connections;
    int idle_timeout_s; /* an idle or stalled connection is closed after this */
} http_options;

typedef struct serve_http serve_http;

/* Starts listening; until http_set_ready the API answers 503. -1 with a
 * message in err. */
int http_start(const http_options *o, serve_metrics *metrics, serve_http **out, char *err, size_t err_size);
/* The port it listens on. */
int http_port(const serve_http *h);
/* The model is loaded: requests go to engine, checked against limits. */
void http_set_ready(serve_http *h, const gemma4_model *model, serve_engine *engine, const openai_limits *limits);
/* Stops accepting and waits for the connection threads (the engine must have
 * failed every request first, so no handler is left waiting). */
void http_stop(serve_http *h);

#endif
