/* Response shapes as the OpenAI API documents them (chat.completion,
 * chat.completion.chunk, text_completion, list of models, error). */
#include "serve/openai_response.h"

#include <stdlib.h>
#include <string.h>

static const char *error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

char *openai_error_body(int status, const char *message, const char *param, const char *code) {
    json_t *e = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", message, "type", error_type(status), "param",
                          param && *param ? json_string(param) : json_null(), "code", code ? json_string(code) : json_null());
    if (!e) /* the message was not valid UTF-8 */
        e = json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", "invalid request", "type", error_type(status), "param",
                      "code");
    char *s = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(e);
    return s;
}

static json_t *usage(const serve_request *r) {
    return json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", r->n_prompt, "completion_tokens", r->n_completion,
                     "total_tokens", r->n_prompt + r->n_completion, "prompt_tokens_details", "cached_tokens",
                     r->n_prompt_cached);
}

/* Bytes of a UTF-8 sequence that starts with lead byte c (0: not a lead byte). */
static size_t utf8_length(unsigned char c) {
    return c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
}

/* How much of p[0..n) can be sent now: all but a character still being
 * completed at the end. Model output arrives in token pieces, and byte-level
 * tokens may end in the middle of a character. */
static size_t complete_prefix(const char *p, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)p[n - back];
        if ((c & 0xc0) == 0x80) continue;            /* continuation byte: look further back */
        size_t len = utf8_length(c);
        return len > back ? n - back : n;             /* a lead byte still missing bytes */
    }
    return n;
}

/* A JSON string of text that should be UTF-8; a model can emit invalid
 * bytes, which become U+FFFD rather than failing the response. */
static json_t *json_text(const char *p, size_t n) {
    json_t *s = json_stringn(p, n);
    if (s) return s;
    text_buf clean = {0};
    for (size_t i = 0; i < n;) {
        size_t len = utf8_length((unsigned char)p[i]);
        json_t *one = len && i + len <= n ? json_stringn(p + i, len) : NULL;
        if (one) text_append(&clean, p + i, len), i += len;
        else text_append(&clean, "\xef\xbf\xbd", 3), i++;
        json_decref(one);
    }
    s = json_stringn(clean.p ? clean.p : "", clean.n);
    text_free(&clean);
    return s;
}

static json_t *text_or_null(const text_buf *b, size_t from) {
    return b->n > from ? json_text(b->p + from, b->n - from) : json_null();
}

static json_t *envelope(const serve_request *r, const char *model_id, const char *object, json_t *choices) {
    return json_pack("{s:s, s:s, s:i, s:s, s:o}", "id", r->id, "object", object, "created", (json_int_t)r->created,
                     "model", model_id, "choices", choices);
}

char *openai_completion_body(const serve_request *r, const char *model_id) {
    json_t *choice;
    if (r->endpoint == SERVE_CHAT) {
        json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content", text_or_null(&r->content, 0));
        if (msg && r->reasoning.n) json_object_set_new(msg, "reasoning_content", text_or_null(&r->reasoning, 0));
        if (msg && json_array_size(r->tool_calls)) json_object_set(msg, "tool_calls", r->tool_calls);
        choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "message", msg, "logprobs", "finish_reason", r->finish_reason);
    } else {
        choice = json_pack("{s:o, s:i, s:n, s:s}", "text", json_text(r->content.p ? r->content.p : "", r->content.n),
                           "index", 0, "logprobs", "finish_reason", r->finish_reason);
    }
    json_t *o = envelope(r, model_id, r->endpoint == SERVE_CHAT ? "chat.completion" : "text_completion",
                         json_pack("[o]", choice));
    if (o) json_object_set_new(o, "usage", usage(r));
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return s;
}

/* "data: {...}\n\n" */
static int event(text_buf *out, json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    int rc = !s || text_append(out, "data: ", 6) || text_append(out, s, strlen(s)) || text_append(out, "\n\n", 2) ? -1 : 0;
    free(s);
    return rc;
}

/* One chunk: a chat delta or a completion text, with finish_reason (or null). */
static int chunk(const serve_request *r, const char *model_id, json_t *delta_or_text, const char *finish, text_buf *out) {
    json_t *fin = finish ? json_string(finish) : json_null(), *choice;
    if (r->endpoint == SERVE_CHAT)
        choice = json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta_or_text, "logprobs", "finish_reason", fin);
    else
        choice = json_pack("{s:o, s:i, s:n, s:o}", "text", delta_or_text, "index", 0, "logprobs", "finish_reason", fin);
    json_t *o = envelope(r, model_id, r->endpoint == SERVE_CHAT ? "chat.completion.chunk" : "text_completion",
                         json_pack("[o]", choice));
    if (o && r->include_usage) json_object_set_new(o, "usage", json_null());
    return event(out, o);
}

static int stream_error(const serve_request *r, text_buf *out) {
    json_t *e = json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", r->error_message, "type",
                          error_type(r->error_status), "param", "code");
    return event(out, e);
}

int openai_stream_events(const serve_request *r, const char *model_id, sse_state *st, text_buf *out) {
    int chat = r->endpoint == SERVE_CHAT;
    if (!st->started && chat &&
        chunk(r, model_id, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL, out))
        return -1;
    st->started = 1;
    size_t reasoning_ready = r->done ? r->reasoning.n : complete_prefix(r->reasoning.p, r->reasoning.n);
    if (reasoning_ready > st->reasoning_sent) {
        json_t *text = json_text(r->reasoning.p + st->reasoning_sent, reasoning_ready - st->reasoning_sent);
        if (chunk(r, model_id, json_pack("{s:o}", "reasoning_content", text), NULL, out)) return -1;
        st->reasoning_sent = reasoning_ready;
    }
    size_t content_ready = r->done ? r->content.n : complete_prefix(r->content.p, r->content.n);
    if (content_ready > st->content_sent) {
        json_t *text = json_text(r->content.p + st->content_sent, content_ready - st->content_sent);
        if (chunk(r, model_id, chat ? json_pack("{s:o}", "content", text) : text, NULL, out)) return -1;
        st->content_sent = content_ready;
    }
    for (; st->calls_sent < json_array_size(r->tool_calls); st->calls_sent++) {
        json_t *call = json_deep_copy(json_array_get(r->tool_calls, st->calls_sent));
        if (call) json_object_set_new(call, "index", json_integer((json_int_t)st->calls_sent));
        if (chunk(r, model_id, json_pack("{s:[o]}", "tool_calls", call), NULL, out)) return -1;
    }
    if (!r->done) return 0;
    if (r->error_status) {
        if (stream_error(r, out)) return -1;
    } else {
        if (chunk(r, model_id, chat ? json_object() : json_string(""), r->finish_reason, out)) return -1;
        if (r->include_usage) {
            json_t *o = envelope(r, model_id, chat ? "chat.completion.chunk" : "text_completion", json_array());
            if (o) json_object_set_new(o, "usage", usage(r));
            if (event(out, o)) return -1;
        }
    }
    return text_append(out, "data: [DONE]\n\n", 14) ? -1 : 1;
}

char *openai_models_body(const char *model_id, long created) {
    json_t *o = json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id", model_id, "object", "model",
                          "created", (json_int_t)created, "owned_by", "gemma4");
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return s;
}
