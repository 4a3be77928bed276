/* The scheduler loop: admit, batch, decode, sample, emit. */
#include "serve/engine.h"

#include "serve/prefix_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENGINE_MAX_STOP_IDS 16

/* A sequence slot running a request. */
typedef struct running {
    serve_request *req; /* NULL: idle */
    int n_done;         /* prompt tokens in the cache */
    int n_cached;       /* of which were reused from the cache */
    int generating;
    int32_t next; /* sampled, to be decoded in the next step */
    int n_generated;
    int chunk; /* prompt tokens of this sequence in the current batch */
    gemma4_sampler *sampler;
    gemma4_detokenizer *det;
    gemma4_stop *stop;
    gemma4_chat_parser *parser;
    gemma4_matcher *matcher;
    int stopped; /* a stop string or the end marker was seen */
    int failed;  /* out of memory while emitting */
} running;

struct serve_engine {
    gemma4_model *model;
    gemma4_context *ctx;
    const gemma4_tokenizer *tok;
    serve_metrics *metrics;
    int n_vocab, n_ctx, n_batch, n_running, max_queue;
    int32_t stop_ids[ENGINE_MAX_STOP_IDS];
    int n_stop_ids;
    prefix_cache cache;
    running *run;
    uint8_t *busy;
    int round_robin; /* which sequence's prompt goes first in the next batch */
    /* the batch */
    int32_t *b_token, *b_pos, *b_seq;
    int8_t *b_logits;
    int *row_slot; /* logits row -> sequence */
    float *masked; /* logits under a grammar */
    /* the queue, a ring of max_queue */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    serve_request **queue;
    int q_head, q_len, stopping;
};

int engine_n_ctx(const serve_engine *e) { return e->n_ctx; }

/* ---- output of one sequence ---- */

static void on_chat_event(void *user, const gemma4_chat_event *ev) {
    running *rs = user;
    serve_request *r = rs->req;
    if (ev->kind == GEMMA4_CHAT_CONTENT || ev->kind == GEMMA4_CHAT_THOUGHT)
        rs->failed |= serve_request_add_text(r, ev->kind == GEMMA4_CHAT_THOUGHT, ev->text, ev->len);
    else if (ev->kind == GEMMA4_CHAT_TOOL_CALL && r->tools_offered)
        rs->failed |= serve_request_add_tool_call(r, ev->name, ev->arguments);
}

/* Text after stop strings, into the parser or straight to the content. */
static int emit_visible(running *rs, const char *text, size_t len) {
    if (!len) return 0;
    if (rs->parser) {
        if (gemma4_chat_parser_feed(rs->parser, text, len)) return -1;
        if (gemma4_chat_parser_done(rs->parser)) rs->stopped = 1;
    } else if (serve_request_add_text(rs->req, 0, text, len)) {
        return -1;
    }
    return rs->failed ? -1 : 0;
}

static int emit(running *rs, const char *text, size_t len) {
    if (rs->stopped || !len) return 0;
    if (!rs->stop) return emit_visible(rs, text, len);
    const char *out;
    size_t n;
    int m = gemma4_stop_feed(rs->stop, text, len, &out, &n);
    if (m < 0 || emit_visible(rs, out, n)) return -1;
    if (m == 1) rs->stopped = 1;
    return 0;
}

static int flush_output(running *rs) {
    const char *piece;
    size_t len;
    if (gemma4_detokenizer_finish(rs->det, &piece, &len) || emit(rs, piece, len)) return -1;
    if (rs->stop && !rs->stopped) {
        gemma4_stop_flush(rs->stop, &piece, &len);
        if (emit_visible(rs, piece, len)) return -1;
    }
    if (rs->parser && gemma4_chat_parser_finish(rs->parser)) return -1;
    return rs->failed ? -1 : 0;
}

static void release_slot(serve_engine *e, int s) {
    running *rs = &e->run[s];
    gemma4_sampler_free(rs->sampler);
    gemma4_detokenizer_free(rs->det);
    gemma4_stop_free(rs->stop);
    gemma4_chat_parser_free(rs->parser);
    gemma4_matcher_free(rs->matcher);
    serve_request_unref(rs->req);
    memset(rs, 0, sizeof *rs);
    e->busy[s] = 0;
}

/* Ends sequence s's request normally. */
static void finish(serve_engine *e, int s, const char *reason) {
    running *rs = &e->run[s];
    serve_request *r = rs->req;
    if (flush_output(rs)) {
        serve_request_fail(r, 500, "out of memory");
    } else {
        pthread_mutex_lock(&r->mu);
        int calls = json_array_size(r->tool_calls) > 0;
        pthread_mutex_unlock(&r->mu);
        if (calls && !strcmp(reason, "stop")) reason = "tool_calls";
        serve_request_finish(r, reason, rs->n_cached, rs->n_generated);
    }
    metrics_tokens(e->metrics, (uint64_t)r->n_prompt, (uint64_t)rs->n_cached, (uint64_t)rs->n_generated);
    release_slot(e, s);
}

static void fail_slot(serve_engine *e, int s, int status, const char *message) {
    if (status == 500) /* a server fault, worth the operator's attention */
        fprintf(stderr, "gemma4 serve: request %s failed: %s\n", e->run[s].req->id, message);
    serve_request_fail(e->run[s].req, status, message);
    release_slot(e, s);
}

static int is_stop_id(const serve_engine *e, int32_t id) {
    for (int i = 0; i < e->n_stop_ids; i++)
        if (e->stop_ids[i] == id) return 1;
    return 0;
}

/* Samples sequence s's next token from its logits and emits its text. */
static void sample(serve_engine *e, int s, const float *logits) {
    running *rs = &e->run[s];
    serve_request *r = rs->req;
    if (rs->matcher) {
        memcpy(e->masked, logits, sizeof *logits * (size_t)e->n_vocab);
        if (gemma4_matcher_mask(rs->matcher, e->masked, e->n_vocab)) {
            fail_slot(e, s, 500, gemma4_last_error());
            return;
        }
        logits = e->masked;
    }
    int32_t id = gemma4_sample(rs->sampler, logits, e->n_vocab);
    if (rs->n_generated == 0) {
        double t = serve_now();
        pthread_mutex_lock(&r->mu);
        r->t_first_token = t;
        pthread_mutex_unlock(&r->mu);
        metrics_first_token(e->metrics, t - r->t_submit);
    }
    if (is_stop_id(e, id)) {
        finish(e, s, "stop");
        return;
    }
    if (rs->matcher && gemma4_matcher_accept(rs->matcher, id)) {
        fail_slot(e, s, 500, "the grammar rejected a token it allowed");
        return;
    }
    rs->n_generated++;
    const char *piece;
    size_t len;
    if (gemma4_detokenizer_push(rs->det, id, &piece, &len) || emit(rs, piece, len)) {
        fail_slot(e, s, 500, rs->failed ? "out of memory" : gemma4_last_error());
        return;
    }
    if (rs->stopped) finish(e, s, "stop");
    else if ((r->max_tokens >= 0 && rs->n_generated >= r->max_tokens) || e->cache.seq[s].n >= e->n_ctx)
        finish(e, s, "length");
    else rs->next = id;
}

/* ---- admission ---- */

/* Puts r into a sequence, which then holds the engine's reference; -1 if
 * none could be prepared (r failed, the caller still holds the reference). */
static int start_request(serve_engine *e, serve_request *r) {
    int s, n_cached;
    if (prefix_cache_assign(&e->cache, e->busy, r->prompt, r->n_prompt, &s, &n_cached)) {
        fprintf(stderr, "gemma4 serve: request %s failed: %s\n", r->id, gemma4_last_error());
        serve_request_fail(r, 500, gemma4_last_error());
        return -1;
    }
    running *rs = &e->run[s];
    memset(rs, 0, sizeof *rs);
    rs->req = r;
    rs->n_done = rs->n_cached = n_cached;
    e->busy[s] = 1;
    if (gemma4_sampler_new(&r->sampling, &rs->sampler) || gemma4_detokenizer_new(e->tok, 0, &rs->det) ||
        (r->n_stops && gemma4_stop_new((const char *const *)r->stops, (size_t)r->n_stops, &rs->stop)) ||
        (r->parse_chat && gemma4_chat_parser_new(r->start_in_thought, on_chat_event, rs, &rs->parser)) ||
        (r->grammar && gemma4_matcher_new(r->grammar, &rs->matcher)))
        fail_slot(e, s, 500, gemma4_last_error()); /* which also lets go of r */
    return 0;
}

static int n_busy(const serve_engine *e) {
    int n = 0;
    for (int s = 0; s < e->n_running; s++) n += e->busy[s];
    return n;
}

static void publish_state(serve_engine *e) {
    pthread_mutex_lock(&e->mu);
    int q = e->q_len;
    pthread_mutex_unlock(&e->mu);
    int b = n_busy(e);
    metrics_engine_state(e->metrics, q, b, b, e->n_running + e->cache.n_snapshots, prefix_cache_tokens(&e->cache));
}

/* Moves queued requests into idle sequences, oldest first. */
static void admit(serve_engine *e) {
    for (;;) {
        if (n_busy(e) == e->n_running) return;
        pthread_mutex_lock(&e->mu);
        serve_request *r = NULL;
        if (e->q_len) {
            r = e->queue[e->q_head];
            e->q_head = (e->q_head + 1) % e->max_queue;
            e->q_len--;
        }
        pthread_mutex_unlock(&e->mu);
        if (!r) return;
        if (atomic_load(&r->cancelled)) {
            metrics_cancelled(e->metrics);
            serve_request_fail(r, 499, "the client went away");
            serve_request_unref(r);
        } else if (serve_now() > r->deadline) {
            serve_request_fail(r, 503, "the request timed out waiting for a free sequence");
            serve_request_unref(r);
        } else if (start_request(e, r)) {
            serve_request_unref(r);
        }
    }
}

/* Ends requests whose client left or whose time is up. */
static void check_running(serve_engine *e) {
    double now = serve_now();
    for (int s = 0; s < e->n_running; s++) {
        if (!e->busy[s]) continue;
        serve_request *r = e->run[s].req;
        if (atomic_load(&r->cancelled)) {
            metrics_cancelled(e->metrics);
            fail_slot(e, s, 499, "the client went away");
        } else if (now > r->deadline) {
            finish(e, s, "length");
        }
    }
}

/* ---- one step ---- */

static void step(serve_engine *e) {
    int n = 0, rows = 0;
    for (int s = 0; s < e->n_running; s++) {
        running *rs = &e->run[s];
        rs->chunk = 0;
        if (!e->busy[s] || !rs->generating) continue;
        e->b_token[n] = rs->next;
        e->b_pos[n] = e->cache.seq[s].n;
        e->b_seq[n] = s;
        e->b_logits[n++] = 1;
        e->row_slot[rows++] = s;
    }
    for (int k = 0; k < e->n_running && n < e->n_batch; k++) {
        int s = (e->round_robin + k) % e->n_running;
        running *rs = &e->run[s];
        if (!e->busy[s] || rs->generating) continue;
        serve_request *r = rs->req;
        int c = r->n_prompt - rs->n_done;
        if (rs->n_done < r->prefix_boundary && r->prefix_boundary - rs->n_done < c) c = r->prefix_boundary - rs->n_done;
        if (c > e->n_batch - n) c = e->n_batch - n;
        for (int i = 0; i < c; i++) {
            e->b_token[n] = r->prompt[rs->n_done + i];
            e->b_pos[n] = rs->n_done + i;
            e->b_seq[n] = s;
            e->b_logits[n++] = 0;
        }
        rs->chunk = c;
        if (rs->n_done + c == r->n_prompt) {
            e->b_logits[n - 1] = 1;
            e->row_slot[rows++] = s;
        }
    }
    e->round_robin = (e->round_robin + 1) % e->n_running;
    if (!n) return;

    gemma4_batch b = {.n_tokens = n, .token = e->b_token, .pos = e->b_pos, .seq = e->b_seq, .want_logits = e->b_logits};
    if (gemma4_decode(e->ctx, &b)) {
        char msg[160];
        snprintf(msg, sizeof msg, "decode failed: %s", gemma4_last_error());
        for (int s = 0; s < e->n_running; s++) {
            if (!e->busy[s] || (!e->run[s].generating && !e->run[s].chunk)) continue;
            prefix_cache_forget(&e->cache, s);
            fail_slot(e, s, 500, msg);
        }
        return;
    }
    /* the caches now hold the batch */
    for (int s = 0; s < e->n_running; s++) {
        running *rs = &e->run[s];
        if (!e->busy[s]) continue;
        int bad = 0;
        if (rs->generating) {
            bad = prefix_cache_append(&e->cache, s, &rs->next, 1);
        } else if (rs->chunk) {
            serve_request *r = rs->req;
            bad = prefix_cache_append(&e->cache, s, r->prompt + rs->n_done, rs->chunk);
            rs->n_done += rs->chunk;
            if (!bad && (rs->n_done == r->prefix_boundary || rs->n_done == r->n_prompt))
                bad = prefix_cache_snapshot(&e->cache, s);
            if (rs->n_done == r->n_prompt) rs->generating = 1;
        }
        if (bad) {
            prefix_cache_forget(&e->cache, s);
            fail_slot(e, s, 500, "out of memory");
        }
    }
    for (int i = 0; i < rows; i++) {
        int s = e->row_slot[i];
        if (e->busy[s]) sample(e, s, gemma4_get_logits(e->ctx, i));
    }
}

static void *engine_main(void *arg) {
    serve_engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stopping && !e->q_len && !n_busy(e)) pthread_cond_wait(&e->wake, &e->mu);
        int stopping = e->stopping;
        pthread_mutex_unlock(&e->mu);
        if (stopping) break;
        check_running(e);
        admit(e);
        step(e);
        publish_state(e);
    }
    for (int s = 0; s < e->n_running; s++)
        if (e->busy[s]) fail_slot(e, s, 503, "the server is shutting down");
    pthread_mutex_lock(&e->mu);
    while (e->q_len) {
        serve_request *r = e->queue[e->q_head];
        e->q_head = (e->q_head + 1) % e->max_queue;
        e->q_len--;
        serve_request_fail(r, 503, "the server is shutting down");
        serve_request_unref(r);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- life cycle ---- */

int engine_submit(serve_engine *e, serve_request *r) {
    pthread_mutex_lock(&e->mu);
    int rc = ENGINE_QUEUED;
    if (e->stopping) rc = ENGINE_STOPPING;
    else if (e->q_len == e->max_queue) rc = ENGINE_QUEUE_FULL;
    else {
        serve_request_ref(r);
        e->queue[(e->q_head + e->q_len++) % e->max_queue] = r;
        pthread_cond_signal(&e->wake);
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void engine_free(serve_engine *e) {
    if (!e) return;
    prefix_cache_free(&e->cache);
    gemma4_context_free(e->ctx);
    free(e->run);
    free(e->busy);
    free(e->b_token);
    free(e->b_pos);
    free(e->b_seq);
    free(e->b_logits);
    free(e->row_slot);
    free(e->masked);
    free(e->queue);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

int engine_start(gemma4_model *model, const engine_params *p, serve_metrics *metrics, serve_engine **out) {
    serve_engine *e = calloc(1, sizeof *e);
    if (!e) return -1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->wake, NULL);
    gemma4_context_params cp = p->ctx;
    cp.n_seq = p->parallel + p->cache_slots;
    e->model = model;
    e->tok = gemma4_model_tokenizer(model);
    e->metrics = metrics;
    e->n_vocab = gemma4_vocab_size(model);
    e->n_running = p->parallel;
    e->max_queue = p->max_queue;
    e->n_ctx = cp.n_ctx;
    e->n_batch = cp.n_batch;
    e->n_stop_ids = gemma4_chat_stop_tokens(model, e->stop_ids, ENGINE_MAX_STOP_IDS);
    size_t nb = (size_t)cp.n_batch;
    if (gemma4_context_new(model, &cp, &e->ctx)) goto fail;
    e->run = calloc((size_t)p->parallel, sizeof *e->run);
    e->busy = calloc((size_t)p->parallel, 1);
    e->b_token = malloc(nb * sizeof *e->b_token);
    e->b_pos = malloc(nb * sizeof *e->b_pos);
    e->b_seq = malloc(nb * sizeof *e->b_seq);
    e->b_logits = malloc(nb);
    e->row_slot = malloc(nb * sizeof *e->row_slot);
    e->masked = malloc((size_t)e->n_vocab * sizeof *e->masked);
    e->queue = calloc((size_t)p->max_queue, sizeof *e->queue);
    if (!e->run || !e->busy || !e->b_token || !e->b_pos || !e->b_seq || !e->b_logits || !e->row_slot || !e->masked ||
        !e->queue || prefix_cache_init(&e->cache, e->ctx, p->parallel, p->cache_slots))
        goto fail;
    if (pthread_create(&e->thread, NULL, engine_main, e)) goto fail;
    publish_state(e);
    *out = e;
    return 0;
fail:
    engine_free(e);
    return -1;
}

void engine_stop(serve_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
}
