/* gemma4 serve: an OpenAI-compatible HTTP server (src/serve) for one model,
 * with continuous batching of concurrent requests. */
#include "cli/args.h"
#include "cli/common.h"
#include "serve/engine.h"
#include "serve/http.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: gemma4 serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [--ctx N] [--api-key KEY]\n\n"
           "Serves the model over an OpenAI-compatible HTTP API: POST /v1/chat/completions, POST /v1/completions,\n"
           "GET /v1/models, GET /health, GET /metrics (Prometheus). Concurrent requests share each forward pass\n"
           "(continuous batching); a prompt that starts with a cached prefix continues from it. docs/server.md\n"
           "describes the API, the limits and the errors. Ctrl-C (or SIGTERM) stops it.\n\n" MODEL_OPTS_HELP
           "      --host ADDR      numeric IPv4/IPv6 address to listen on (default 127.0.0.1: this machine only)\n"
           "      --port N         TCP port (default 8080; 0 = any free port, printed at start)\n"
           "      --parallel N     requests generated side by side (default 4)\n"
           "      --cache-slots N  extra KV-cache sequences for prefix snapshots (default: as --parallel)\n"
           "      --max-queue N    requests waiting for a free sequence; more get 429 (default 64)\n"
           "      --api-key KEY    require \"Authorization: Bearer KEY\" (default: $GEMMA4_API_KEY, else none)\n"
           "      --alias NAME     the model id clients name (default: the model file's name)\n"
           "      --timeout S      seconds a request may take from arrival to its last token (default 600)\n"
           "      --max-body N     bytes of a request body (default 8388608)\n"
           "      --max-messages N messages in a chat request (default 1024)\n"
           "      --max-tools N    tools in a chat request (default 128)\n"
           "      --max-connections N  open connections (default 256)\n"
           "      --idle-timeout S seconds before an idle or stalled connection is closed (default 30)\n");
}

/* "dir/name.gguf" -> "name" */
static char *model_id_from_path(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t len = n - start;
    if (len > 5 && !strncmp(path + n - 5, ".gguf", 5)) len -= 5;
    return strndup(path + start, len);
}

int cmd_serve(int argc, char **argv) {
    model_opts mo;
    model_opts_init(&mo);
    http_options ho = {.host = "127.0.0.1", .port = 8080, .api_key = getenv("GEMMA4_API_KEY"), .max_body = 8u << 20,
                       .max_connections = 256, .idle_timeout_s = 30};
    engine_params ep = {.parallel = 4, .cache_slots = -1, .max_queue = 64};
    openai_limits lim = {.max_messages = 1024, .max_tools = 128, .timeout_s = 600};
    const char *alias = NULL, *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        int r = model_opts_parse(&mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!(v = arg_value(argc, argv, &i))) return 2;
        int max_body = 0, rc = 0;
        if (!strcmp(a, "--host")) ho.host = v;
        else if (!strcmp(a, "--port")) rc = arg_int(a, v, 0, 65535, &ho.port);
        else if (!strcmp(a, "--parallel")) rc = arg_int(a, v, 1, 256, &ep.parallel);
        else if (!strcmp(a, "--cache-slots")) rc = arg_int(a, v, 0, 256, &ep.cache_slots);
        else if (!strcmp(a, "--max-queue")) rc = arg_int(a, v, 1, 1 << 16, &ep.max_queue);
        else if (!strcmp(a, "--api-key")) ho.api_key = v;
        else if (!strcmp(a, "--alias")) alias = v;
        else if (!strcmp(a, "--timeout")) {
            float t;
            rc = arg_float(a, v, 0.001, 1e6, &t);
            lim.timeout_s = t;
        } else if (!strcmp(a, "--max-body")) { rc = arg_int(a, v, 1024, 1 << 30, &max_body); ho.max_body = (size_t)max_body; }
        else if (!strcmp(a, "--max-messages")) rc = arg_int(a, v, 1, 1 << 20, &lim.max_messages);
        else if (!strcmp(a, "--max-tools")) rc = arg_int(a, v, 0, 1 << 16, &lim.max_tools);
        else if (!strcmp(a, "--max-connections")) rc = arg_int(a, v, 1, 1 << 16, &ho.max_connections);
        else if (!strcmp(a, "--idle-timeout")) rc = arg_int(a, v, 1, 86400, &ho.idle_timeout_s);
        else { fprintf(stderr, "gemma4 serve: unknown option %s\n", a); return 2; }
        if (rc) return 2;
    }
    if (!mo.model_path) { fprintf(stderr, "gemma4 serve: no model given (-m PATH)\n"); return 2; }
    if (ho.api_key && !*ho.api_key) ho.api_key = NULL;
    if (ep.cache_slots < 0) ep.cache_slots = ep.parallel;
    char *model_id = alias ? strdup(alias) : model_id_from_path(mo.model_path);
    if (!model_id) return 1;
    lim.model_id = model_id;

    /* signals are taken by sigwait below, never by the server's threads */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    serve_metrics metrics;
    metrics_init(&metrics);
    serve_http *http = NULL;
    serve_engine *engine = NULL;
    gemma4_model *model = NULL;
    int rc = 1;
    char err[256];
    if (http_start(&ho, &metrics, &http, err, sizeof err)) { fprintf(stderr, "gemma4 serve: %s\n", err); goto done; }
    fprintf(stderr, "gemma4 serve: listening on http://%s%s%s:%d/v1 (model \"%s\" loading)\n", strchr(ho.host, ':') ? "[" : "",
            ho.host, strchr(ho.host, ':') ? "]" : "", http_port(http), model_id);
    if (gemma4_model_load(mo.model_path, &model)) { fprintf(stderr, "gemma4 serve: %s\n", gemma4_last_error()); goto done; }
    if (!gemma4_model_tokenizer(model)) {
        fprintf(stderr, "gemma4 serve: %s has no tokenizer\n", mo.model_path);
        goto done;
    }
    ep.ctx = mo.ctx;
    if (!ep.ctx.n_ctx) {
        gemma4_model_info in;
        gemma4_model_get_info(model, &in);
        ep.ctx.n_ctx = gemma4_context_default_params().n_ctx;
        if (ep.ctx.n_ctx > in.max_positions) ep.ctx.n_ctx = in.max_positions;
    }
    if (!ep.ctx.n_batch) ep.ctx.n_batch = gemma4_context_default_params().n_batch;
    if (engine_start(model, &ep, &metrics, &engine)) {
        fprintf(stderr, "gemma4 serve: %s\n", gemma4_last_error());
        goto done;
    }
    lim.n_ctx = engine_n_ctx(engine);
    http_set_ready(http, model, engine, &lim);
    fprintf(stderr, "gemma4 serve: ready (%d parallel, %d cache slots, context %d, batch %d)\n", ep.parallel,
            ep.cache_slots, lim.n_ctx, ep.ctx.n_batch);
    int sig;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "gemma4 serve: stopping\n");
    rc = 0;
done:
    engine_stop(engine); /* wakes every waiting handler with a 503 */
    http_stop(http);
    engine_free(engine);
    gemma4_model_free(model);
    metrics_destroy(&metrics);
    free(model_id);
    return rc;
}
