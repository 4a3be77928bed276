/* Validation of OpenAI request bodies and their translation into prompts. */
#include "serve/openai_request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int bad(openai_error *err, const char *param, const char *fmt, ...) {
    err->status = 400;
    err->code = NULL;
    snprintf(err->param, sizeof err->param, "%s", param);
    va_list ap;
    va_start(ap, fmt);
    char what[200];
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err->message, sizeof err->message, "%s%s%s", param, *param ? ": " : "", what);
    return -1;
}

/* A field that is absent or null keeps its default. */
static const json_t *field(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

static int get_number(const json_t *o, const char *key, double lo, double hi, double *out, openai_error *err) {
    const json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_number(v)) return bad(err, key, "must be a number");
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) return bad(err, key, "must be between %g and %g", lo, hi);
    *out = x;
    return 0;
}

static int get_int(const json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *out, openai_error *err) {
    const json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_integer(v)) return bad(err, key, "must be an integer");
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return bad(err, key, "must be between %lld and %lld", (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

static int get_bool(const json_t *o, const char *key, int *out, openai_error *err) {
    const json_t *v = field(o, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return bad(err, key, "must be a boolean");
    *out = json_is_true(v);
    return 0;
}

/* Parameters that change the answer in ways this server does not implement:
 * refused rather than silently ignored. */
static int refuse_unsupported(const json_t *body, openai_error *err) {
    static const char *const zero_numbers[] = {"presence_penalty", "frequency_penalty"};
    for (size_t i = 0; i < sizeof zero_numbers / sizeof *zero_numbers; i++) {
        double x = 0;
        if (get_number(body, zero_numbers[i], -2, 2, &x, err)) return -1;
        if (x != 0) return bad(err, zero_numbers[i], "is not supported (only 0)");
    }
    const json_t *v = field(body, "logit_bias");
    if (v && (!json_is_object(v) || json_object_size(v))) return bad(err, "logit_bias", "is not supported");
    v = field(body, "logprobs");
    if (v && !json_is_false(v) && !(json_is_integer(v) && json_integer_value(v) == 0))
        return bad(err, "logprobs", "is not supported");
    if (field(body, "top_logprobs")) return bad(err, "top_logprobs", "is not supported");
    json_int_t n = 1;
    if (get_int(body, "n", 1, 1, &n, err)) return -1;
    return 0;
}

static uint64_t random_seed(void) {
    static atomic_uint_fast64_t counter;
    uint64_t z = (uint64_t)(serve_now() * 1e9) + 0x9e3779b97f4a7c15ull * (atomic_fetch_add(&counter, 1) + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void make_id(serve_request *r, const char *prefix) {
    uint64_t a = random_seed(), b = random_seed();
    snprintf(r->id, sizeof r->id, "%s%016llx%08llx", prefix, (unsigned long long)a, (unsigned long long)(b & 0xffffffff));
}

/* Fields both endpoints share: model, sampling, limits, stop, stream. */
static int parse_common(const openai_limits *lim, const json_t *body, serve_request *r, openai_error *err) {
    if (!json_is_object(body)) return bad(err, "", "the request body must be a JSON object");
    const json_t *model = json_object_get(body, "model");
    if (!json_is_string(model)) return bad(err, "model", "must be a string naming the model");
    if (strcmp(json_string_value(model), lim->model_id)) {
        bad(err, "model", "unknown model \"%.64s\" (this server has \"%s\")", json_string_value(model), lim->model_id);
        err->code = "model_not_found";
        return -1;
    }
    if (refuse_unsupported(body, err)) return -1;
    double temperature = r->sampling.temperature, top_p = r->sampling.top_p, min_p = 0;
    json_int_t top_k = r->sampling.top_k, seed = 0, max_tokens = -1;
    if (get_number(body, "temperature", 0, 2, &temperature, err) || get_number(body, "top_p", 0, 1, &top_p, err) ||
        get_number(body, "min_p", 0, 1, &min_p, err) || get_int(body, "top_k", 0, 1 << 30, &top_k, err) ||
        get_int(body, "seed", INT64_MIN, INT64_MAX, &seed, err) ||
        get_int(body, "max_tokens", 1, 1 << 30, &max_tokens, err) ||
        get_int(body, "max_completion_tokens", 1, 1 << 30, &max_tokens, err) ||
        get_bool(body, "stream", &r->stream, err))
        return -1;
    if (top_p == 0) { /* only the most likely token */
        temperature = 0;
        top_p = 1;
    }
    r->sampling.temperature = (float)temperature;
    r->sampling.top_p = (float)top_p;
    r->sampling.min_p = (float)min_p;
    r->sampling.top_k = (int)top_k;
    r->sampling.seed = field(body, "seed") ? (uint64_t)seed : random_seed();
    r->max_tokens = (int)max_tokens;
    const json_t *so = field(body, "stream_options");
    if (so) {
        if (!json_is_object(so)) return bad(err, "stream_options", "must be an object");
        if (get_bool(so, "include_usage", &r->include_usage, err)) return -1;
    }
    const json_t *stop = field(body, "stop");
    if (json_is_string(stop)) {
        if (!json_string_length(stop)) return bad(err, "stop", "must not be empty");
        if (!(r->stops[r->n_stops++] = strdup(json_string_value(stop)))) return bad(err, "stop", "out of memory");
    } else if (json_is_array(stop)) {
        if (json_array_size(stop) > SERVE_MAX_STOPS) return bad(err, "stop", "at most %d stop strings", SERVE_MAX_STOPS);
        size_t i;
        const json_t *s;
        json_array_foreach(stop, i, s) {
            if (!json_is_string(s) || !json_string_length(s)) return bad(err, "stop", "must be non-empty strings");
            if (!(r->stops[r->n_stops++] = strdup(json_string_value(s)))) return bad(err, "stop", "out of memory");
        }
    } else if (stop) {
        return bad(err, "stop", "must be a string or an array of strings");
    }
    r->t_submit = serve_now();
    r->deadline = r->t_submit + lim->timeout_s;
    r->created = (long)time(NULL);
    return 0;
}

static int check_prompt_length(const openai_limits *lim, serve_request *r, openai_error *err) {
    if (r->n_prompt + 1 <= lim->n_ctx) return 0;
    bad(err, "messages", "the prompt has %d tokens; this server's context holds %d (prompt and answer)", r->n_prompt,
        lim->n_ctx);
    err->code = "context_length_exceeded";
    return -1;
}

/* ---- chat ---- */

static int text_content(const json_t *c, const char *param, int may_be_empty, openai_error *err) {
    if (!c) return may_be_empty ? 0 : bad(err, param, "is required");
    if (json_is_string(c)) return 0;
    if (!json_is_array(c)) return bad(err, param, "must be a string or an array of text parts");
    size_t i;
    const json_t *part;
    json_array_foreach(c, i, part) {
        const json_t *type = json_object_get(part, "type");
        if (!json_is_object(part) || !json_is_string(type)) return bad(err, param, "parts must be objects with a type");
        if (strcmp(json_string_value(type), "text"))
            return bad(err, param, "only text parts are supported, not \"%.32s\"", json_string_value(type));
        if (!json_is_string(json_object_get(part, "text"))) return bad(err, param, "a text part needs a string \"text\"");
    }
    return 0;
}

/* An assistant message's tool_calls, with arguments turned from the JSON
 * text OpenAI sends into the object the chat template expects. */
static int normalize_tool_calls(json_t *m, const char *param, openai_error *err) {
    json_t *calls = json_object_get(m, "tool_calls");
    if (!calls || json_is_null(calls)) return 0;
    if (!json_is_array(calls)) return bad(err, param, "tool_calls must be an array");
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call) {
        json_t *fn = json_object_get(call, "function");
        const json_t *id = json_object_get(call, "id");
        if (!json_is_object(call) || !json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
            return bad(err, param, "tool_calls[%zu] needs function.name", i);
        if (id && !json_is_string(id)) return bad(err, param, "tool_calls[%zu].id must be a string", i);
        json_t *args = json_object_get(fn, "arguments");
        if (json_is_string(args)) {
            json_t *parsed = json_loads(json_string_value(args), JSON_DECODE_ANY, NULL);
            if (!json_is_object(parsed)) {
                json_decref(parsed);
                return bad(err, param, "tool_calls[%zu].function.arguments must be a JSON object", i);
            }
            json_object_set_new(fn, "arguments", parsed);
        } else if (!args || json_is_null(args)) {
            json_object_set_new(fn, "arguments", json_object());
        } else if (!json_is_object(args)) {
            return bad(err, param, "tool_calls[%zu].function.arguments must be a JSON object", i);
        }
    }
    return 0;
}

static json_t *normalize_messages(const json_t *msgs, int max, openai_error *err) {
    if (!json_is_array(msgs)) return bad(err, "messages", "must be an array"), NULL;
    if (!json_array_size(msgs)) return bad(err, "messages", "must not be empty"), NULL;
    if (json_array_size(msgs) > (size_t)max) return bad(err, "messages", "at most %d messages", max), NULL;
    json_t *out = json_deep_copy(msgs);
    if (!out) return bad(err, "messages", "out of memory"), NULL;
    size_t i;
    json_t *m;
    json_array_foreach(out, i, m) {
        char param[48];
        snprintf(param, sizeof param, "messages[%zu]", i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || !role) { bad(err, param, "must be an object with a string role"); goto fail; }
        const json_t *name = field(m, "name"), *reasoning = field(m, "reasoning_content");
        if ((name && !json_is_string(name)) || (reasoning && !json_is_string(reasoning))) {
            bad(err, param, "name and reasoning_content must be strings");
            goto fail;
        }
        const json_t *content = field(m, "content");
        snprintf(param, sizeof param, "messages[%zu].content", i);
        if (!strcmp(role, "assistant")) {
            if (text_content(content, param, 1, err) || normalize_tool_calls(m, param, err)) goto fail;
        } else if (!strcmp(role, "system") || !strcmp(role, "developer") || !strcmp(role, "user") ||
                   !strcmp(role, "tool")) {
            if (text_content(content, param, 0, err)) goto fail;
            const json_t *tcid = field(m, "tool_call_id");
            if (tcid && !json_is_string(tcid)) { bad(err, param, "tool_call_id must be a string"); goto fail; }
        } else {
            snprintf(param, sizeof param, "messages[%zu].role", i);
            bad(err, param, "unknown role \"%.32s\"", role);
            goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static int valid_function_name(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int check_tools(const json_t *tools, int max, openai_error *err) {
    if (!json_is_array(tools)) return bad(err, "tools", "must be an array");
    if (json_array_size(tools) > (size_t)max) return bad(err, "tools", "at most %d tools", max);
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        const json_t *fn = json_object_get(t, "function"), *type = json_object_get(t, "type");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!json_is_object(t) || !json_is_string(type) || strcmp(json_string_value(type), "function") ||
            !json_is_object(fn))
            return bad(err, "tools", "tools[%zu] must be {\"type\":\"function\",\"function\":{...}}", i);
        if (!name || !valid_function_name(name))
            return bad(err, "tools", "tools[%zu].function.name must be 1-64 letters, digits, _ or -", i);
        const json_t *desc = field(fn, "description"), *params = field(fn, "parameters");
        if ((desc && !json_is_string(desc)) || (params && !json_is_object(params)))
            return bad(err, "tools", "tools[%zu]: description must be a string, parameters an object", i);
    }
    return 0;
}

static int has_tool(const json_t *tools, const char *name) {
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        const char *n = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (n && !strcmp(n, name)) return 1;
    }
    return 0;
}

/* tool_choice -> "none", "auto", "required" or the forced tool's name. */
static int parse_tool_choice(const json_t *body, const json_t *tools, const char **choice, openai_error *err) {
    const json_t *tc = field(body, "tool_choice");
    *choice = tools ? "auto" : "none";
    if (!tc) return 0;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "none") && strcmp(s, "auto") && strcmp(s, "required"))
            return bad(err, "tool_choice", "must be \"none\", \"auto\", \"required\" or a named function");
        *choice = s;
    } else {
        const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
        if (!json_is_object(tc) || !name) return bad(err, "tool_choice", "a named choice needs function.name");
        *choice = name;
    }
    if (strcmp(*choice, "none") && strcmp(*choice, "auto") && !tools)
        return bad(err, "tool_choice", "requires tools");
    if (strcmp(*choice, "none") && strcmp(*choice, "auto") && strcmp(*choice, "required") && !has_tool(tools, *choice))
        return bad(err, "tool_choice", "names no declared tool");
    return 0;
}

/* response_format -> a grammar (or none for "text"). */
static int parse_response_format(const gemma4_model *model, const json_t *body, serve_request *r, openai_error *err) {
    const json_t *rf = field(body, "response_format");
    if (!rf) return 0;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!json_is_object(rf) || !type) return bad(err, "response_format", "must be an object with a type");
    if (!strcmp(type, "text")) return 0;
    const char *schema_text = NULL;
    char *dumped = NULL;
    if (!strcmp(type, "json_schema")) {
        const json_t *js = json_object_get(rf, "json_schema");
        const json_t *schema = json_object_get(js, "schema");
        if (!json_is_object(js) || !json_is_object(schema))
            return bad(err, "response_format", "json_schema needs a \"schema\" object");
        if (!(schema_text = dumped = json_dumps(schema, JSON_COMPACT))) return bad(err, "response_format", "out of memory");
    } else if (strcmp(type, "json_object")) {
        return bad(err, "response_format", "type must be \"text\", \"json_object\" or \"json_schema\"");
    }
    int rc = gemma4_grammar_from_json_schema(gemma4_model_tokenizer(model), schema_text, &r->grammar);
    free(dumped);
    return rc ? bad(err, "response_format", "%s", gemma4_last_error()) : 0;
}

/* Thinking: chat_template_kwargs.enable_thinking, else reasoning_effort. */
static int parse_thinking(const json_t *body, int *enable, openai_error *err) {
    const json_t *effort = field(body, "reasoning_effort");
    if (effort) {
        const char *e = json_string_value(effort);
        if (!e || (strcmp(e, "none") && strcmp(e, "minimal") && strcmp(e, "low") && strcmp(e, "medium") && strcmp(e, "high")))
            return bad(err, "reasoning_effort", "must be \"none\", \"minimal\", \"low\", \"medium\" or \"high\"");
        *enable = strcmp(e, "none") && strcmp(e, "minimal");
    }
    const json_t *kw = field(body, "chat_template_kwargs");
    if (kw && !json_is_object(kw)) return bad(err, "chat_template_kwargs", "must be an object");
    return kw ? get_bool(kw, "enable_thinking", enable, err) : 0;
}

/* Tokens up to the end of the first turn ("<turn|>" and its newline): the
 * shared system prompt of most traffic, worth a cache snapshot. */
static int first_turn_end(const gemma4_tokenizer *tok, const int32_t *ids, int n) {
    int32_t end = gemma4_token_id(tok, "<turn|>");
    for (int i = 0; i < n; i++) {
        if (ids[i] != end) continue;
        size_t len;
        const char *next = i + 1 < n ? gemma4_token_text(tok, ids[i + 1], &len) : NULL;
        int b = i + 1 + (next && len == 1 && *next == '\n');
        return b < n ? b : 0;
    }
    return 0;
}

static int tokenize(const gemma4_model *model, const char *text, int flags, serve_request *r, openai_error *err,
                    const char *param) {
    size_t n = 0;
    if (gemma4_tokenize(gemma4_model_tokenizer(model), text, strlen(text), flags, &r->prompt, &n))
        return bad(err, param, "%s", gemma4_last_error());
    r->n_prompt = (int)n;
    return n ? 0 : bad(err, param, "the prompt is empty");
}

serve_request *openai_parse_chat(const gemma4_model *model, const openai_limits *lim, const json_t *body,
                                 openai_error *err) {
    serve_request *r = serve_request_new(SERVE_CHAT);
    json_t *messages = NULL;
    char *messages_text = NULL, *tools_text = NULL, *prompt = NULL;
    if (!r) { bad(err, "", "out of memory"); return NULL; }
    make_id(r, "chatcmpl-");
    r->parse_chat = 1;
    const json_t *tools = field(body, "tools");
    const char *choice;
    int thinking = 0;
    if (parse_common(lim, body, r, err) || !(messages = normalize_messages(json_object_get(body, "messages"), lim->max_messages, err)) ||
        (tools && check_tools(tools, lim->max_tools, err)) || parse_tool_choice(body, tools, &choice, err) ||
        parse_thinking(body, &thinking, err) || parse_response_format(model, body, r, err))
        goto fail;
    int forced = strcmp(choice, "none") && strcmp(choice, "auto");
    if (forced && r->grammar) { bad(err, "tool_choice", "cannot be combined with response_format"); goto fail; }
    r->tools_offered = strcmp(choice, "none") != 0;
    if (r->tools_offered && !(tools_text = json_dumps(tools, JSON_COMPACT))) { bad(err, "tools", "out of memory"); goto fail; }
    if (forced && gemma4_grammar_for_tools(gemma4_model_tokenizer(model), tools_text, choice, &r->grammar)) {
        bad(err, "tool_choice", "%s", gemma4_last_error());
        goto fail;
    }
    gemma4_chat_params cp = gemma4_chat_default_params();
    cp.enable_thinking = thinking;
    if (!(messages_text = json_dumps(messages, JSON_COMPACT))) { bad(err, "messages", "out of memory"); goto fail; }
    if (gemma4_chat_render(model, messages_text, tools_text, &cp, &prompt)) {
        bad(err, "messages", "%s", gemma4_last_error());
        goto fail;
    }
    size_t plen = strlen(prompt), tl = strlen("<|channel>thought\n");
    r->start_in_thought = plen >= tl && !memcmp(prompt + plen - tl, "<|channel>thought\n", tl);
    if (tokenize(model, prompt, GEMMA4_TOKENIZE_PARSE_SPECIAL, r, err, "messages") || check_prompt_length(lim, r, err))
        goto fail;
    r->prefix_boundary = first_turn_end(gemma4_model_tokenizer(model), r->prompt, r->n_prompt);
    json_decref(messages);
    free(messages_text);
    free(tools_text);
    gemma4_free(prompt);
    return r;
fail:
    json_decref(messages);
    free(messages_text);
    free(tools_text);
    gemma4_free(prompt);
    serve_request_unref(r);
    return NULL;
}

/* ---- completions ---- */

serve_request *openai_parse_completion(const gemma4_model *model, const openai_limits *lim, const json_t *body,
                                       openai_error *err) {
    serve_request *r = serve_request_new(SERVE_COMPLETION);
    if (!r) { bad(err, "", "out of memory"); return NULL; }
    make_id(r, "cmpl-");
    r->max_tokens = 16; /* OpenAI's default for this endpoint */
    if (parse_common(lim, body, r, err)) goto fail;
    int echo = 0;
    json_int_t best_of = 1;
    if (get_bool(body, "echo", &echo, err) || get_int(body, "best_of", 1, 1, &best_of, err)) goto fail;
    if (echo) { bad(err, "echo", "is not supported"); goto fail; }
    if (field(body, "suffix")) { bad(err, "suffix", "is not supported"); goto fail; }
    const json_t *p = json_object_get(body, "prompt");
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0))) p = json_array_get(p, 0);
    if (json_is_string(p)) {
        if (tokenize(model, json_string_value(p), GEMMA4_TOKENIZE_ADD_BOS | GEMMA4_TOKENIZE_PARSE_SPECIAL, r, err, "prompt"))
            goto fail;
    } else if (json_is_array(p) && json_array_size(p) > 0 && json_array_size(p) <= (size_t)lim->n_ctx) {
        size_t i;
        const json_t *id;
        int n_vocab = gemma4_vocab_size(model);
        if (!(r->prompt = malloc(sizeof *r->prompt * json_array_size(p)))) { bad(err, "prompt", "out of memory"); goto fail; }
        json_array_foreach(p, i, id) {
            if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= n_vocab) {
                bad(err, "prompt", "must be a string, one string in an array, or token ids below %d", n_vocab);
                goto fail;
            }
            r->prompt[r->n_prompt++] = (int32_t)json_integer_value(id);
        }
    } else {
        bad(err, "prompt", "must be a string, one string in an array, or token ids");
        goto fail;
    }
    if (check_prompt_length(lim, r, err)) goto fail;
    return r;
fail:
    serve_request_unref(r);
    return NULL;
}
