/* The turns of the Gemma 4 chat template (July 2026), in the template's order:
 * BOS, the system turn (thinking switch, first system/developer message, tool
 * declarations), then each non-tool message with its reasoning, tool calls,
 * tool results and content, the closing rules, and the generation prompt.
 * Tool declarations are in declaration.c, value syntax in value_syntax.c. */
#include "chat/template.h"

#include <stdlib.h>
#include <string.h>

#include "chat/pystr.h"
#include "chat/strbuf.h"
#include "chat/template_internal.h"
#include "chat/value_syntax.h"

/* What the last rendered piece was (the template's ns.prev_message_type). */
typedef enum { PREV_NONE, PREV_THINK, PREV_TOOL, PREV_TOOL_CALL, PREV_TOOL_RESPONSE } prev_kind;

typedef struct {
    g4_strbuf *out;
    g4_error *err;
    const g4_chat_options *opt;
    const json_t *loop;   /* the messages after the system turn */
    size_t first;         /* index of loop[0] in messages, for error messages */
} render;

static const char *role_of(const json_t *m) {
    return json_string_value(g4_tpl_get(m, "role")); /* NULL when missing or not a string */
}

static bool role_is(const json_t *m, const char *role) {
    const char *r = role_of(m);
    return r && strcmp(r, role) == 0;
}

/* strip_thinking: drop every <|channel>...<channel|> span (and a dangling
 * <|channel>... at the end of a part), then Python strip(). */
static void strip_thinking(g4_strbuf *out, const char *s, size_t n) {
    static const char open[] = "<|channel>", close[] = "<channel|>";
    g4_strbuf kept = {0};
    size_t i = 0;
    while (i <= n) {
        const char *end = memmem(s + i, n - i, close, sizeof close - 1);
        size_t part_len = end ? (size_t)(end - (s + i)) : n - i;
        const char *o = memmem(s + i, part_len, open, sizeof open - 1);
        g4_strbuf_append(&kept, s + i, o ? (size_t)(o - (s + i)) : part_len);
        if (!end) break;
        i += part_len + sizeof close - 1;
    }
    g4_py_append_stripped(out, kept.data ? kept.data : "", kept.len);
    out->oom |= kept.oom;
    g4_strbuf_free(&kept);
}

/* <|tool_response>response:NAME{...}<tool_response|> */
static void tool_response_block(render *r, const char *name, const json_t *response) {
    g4_strbuf_puts(r->out, "<|tool_response>response:");
    g4_strbuf_puts(r->out, name);
    if (json_is_object(response)) {
        size_t n;
        const char **keys = g4_py_dictsort(response, &n);
        if (n == (size_t)-1) {
            r->out->oom = true;
            return;
        }
        g4_strbuf_putc(r->out, '{');
        for (size_t i = 0; i < n; i++) {
            if (i) g4_strbuf_putc(r->out, ',');
            g4_strbuf_puts(r->out, keys[i]);
            g4_strbuf_putc(r->out, ':');
            g4_value_format(r->out, json_object_get(response, keys[i]), false);
        }
        g4_strbuf_putc(r->out, '}');
        free(keys);
    } else {
        g4_strbuf_puts(r->out, "{value:");
        g4_value_format(r->out, response, false);
        g4_strbuf_putc(r->out, '}');
    }
    g4_strbuf_puts(r->out, "<tool_response|>");
}

static const char *media_placeholder(const json_t *part) {
    const char *type = json_string_value(g4_tpl_get(part, "type"));
    if (!type) return NULL;
    if (!strcmp(type, "image") || !strcmp(type, "image_url")) return "<|image|>";
    if (!strcmp(type, "audio") || !strcmp(type, "input_audio")) return "<|audio|>";
    if (!strcmp(type, "video")) return "<|video|>";
    return NULL;
}

static bool is_text_part(const json_t *part) {
    const char *type = json_string_value(g4_tpl_get(part, "type"));
    return type && !strcmp(type, "text");
}

/* The system turn; *consumed is the number of messages it took (0 or 1). */
static int system_turn(render *r, const json_t *messages, const json_t *tools, prev_kind *prev,
                       size_t *consumed) {
    const json_t *first = json_array_get(messages, 0);
    bool first_is_system = role_is(first, "system") || role_is(first, "developer");
    *consumed = 0;
    if (!r->opt->enable_thinking && !g4_py_truthy(tools) && !first_is_system) return 0;
    g4_strbuf_puts(r->out, "<|turn>system\n");
    if (r->opt->enable_thinking) {
        g4_strbuf_puts(r->out, "<|think|>\n");
        *prev = PREV_THINK;
    }
    if (first_is_system) {
        const json_t *content = g4_tpl_get(first, "content");
        if (json_is_string(content)) {
            g4_py_append_stripped(r->out, json_string_value(content), json_string_length(content));
        } else if (json_is_array(content)) {
            for (size_t i = 0; i < json_array_size(content); i++) {
                g4_strbuf text = {0};
                g4_py_str(&text, g4_tpl_get(json_array_get(content, i), "text"));
                g4_py_append_stripped(r->out, text.data ? text.data : "", text.len);
                g4_strbuf_putc(r->out, ' ');
                r->out->oom |= text.oom;
                g4_strbuf_free(&text);
            }
        } else if (json_is_object(content)) {
            for (size_t i = 0; i < json_object_size(content); i++) g4_strbuf_putc(r->out, ' ');
        }
        *consumed = 1;
    }
    if (g4_py_truthy(tools)) {
        if (!json_is_array(tools)) return g4_fail(r->err, "tools must be an array");
        for (size_t i = 0; i < json_array_size(tools); i++) {
            g4_strbuf_puts(r->out, "<|tool>");
            if (g4_tpl_declaration(r->out, json_array_get(tools, i), i, r->err)) return -1;
            g4_strbuf_puts(r->out, "<tool|>");
        }
        *prev = PREV_TOOL;
    }
    g4_strbuf_puts(r->out, "<turn|>\n");
    return 0;
}

/* <|tool_call>call:NAME{k:v,...}<tool_call|> for each call. */
static int tool_calls(render *r, size_t idx, const json_t *calls) {
    if (!json_is_array(calls))
        return g4_fail(r->err, "messages[%zu]: tool_calls must be an array", r->first + idx);
    for (size_t c = 0; c < json_array_size(calls); c++) {
        const json_t *fn = g4_tpl_get(json_array_get(calls, c), "function");
        const char *name = json_string_value(g4_tpl_get(fn, "name"));
        if (!name)
            return g4_fail(r->err, "messages[%zu]: tool_calls[%zu].function.name must be a string",
                           r->first + idx, c);
        g4_strbuf_puts(r->out, "<|tool_call>call:");
        g4_strbuf_puts(r->out, name);
        g4_strbuf_putc(r->out, '{');
        const json_t *args = g4_tpl_get(fn, "arguments");
        if (json_is_object(args)) {
            size_t n;
            const char **keys = g4_py_dictsort(args, &n);
            if (n == (size_t)-1) return g4_fail(r->err, "out of memory");
            for (size_t i = 0; i < n; i++) {
                if (i) g4_strbuf_putc(r->out, ',');
                g4_strbuf_puts(r->out, keys[i]);
                g4_strbuf_putc(r->out, ':');
                g4_value_format(r->out, json_object_get(args, keys[i]), false);
            }
            free(keys);
        } else if (!json_is_null(args)) {
            /* The July template's own refusal, word for word. */
            return g4_fail(r->err, "chat_template: tool_calls[].function.arguments must be a JSON "
                                   "object (mapping), not a string. Deserialize arguments before "
                                   "passing to the template.");
        }
        g4_strbuf_puts(r->out, "}<tool_call|>");
    }
    return 0;
}

/* The role:"tool" messages right after loop[idx], folded into its turn.
 * Returns -1 on error, else whether any result was rendered. */
static int following_tool_results(render *r, size_t idx, const json_t *calls) {
    int rendered = 0;
    for (size_t k = idx + 1; k < json_array_size(r->loop); k++) {
        const json_t *follow = json_array_get(r->loop, k);
        if (!role_is(follow, "tool")) break;
        const json_t *name = g4_tpl_get(follow, "name");
        if (!g4_py_truthy(name)) name = NULL;
        for (size_t c = 0; c < json_array_size(calls); c++) {
            const json_t *tc = json_array_get(calls, c);
            if (g4_py_equal(g4_tpl_get(tc, "id"), g4_tpl_get(follow, "tool_call_id")))
                name = g4_tpl_get(g4_tpl_get(tc, "function"), "name");
        }
        const char *tool_name = name ? json_string_value(name) : "unknown";
        if (!tool_name) return g4_fail(r->err, "messages[%zu]: tool name must be a string", r->first + k);

        const json_t *body = g4_tpl_get(follow, "content");
        if (json_is_array(body)) {
            g4_strbuf text = {0};
            for (size_t i = 0; i < json_array_size(body); i++) {
                const json_t *part = json_array_get(body, i);
                if (!json_is_object(part)) {
                    g4_strbuf_free(&text);
                    return g4_fail(r->err, "messages[%zu]: content parts must be objects", r->first + k);
                }
                if (!is_text_part(part)) continue;
                const json_t *t = json_object_get(part, "text");
                if (!json_is_string(t)) {
                    g4_strbuf_free(&text);
                    return g4_fail(r->err, "messages[%zu]: a text part needs a string \"text\"", r->first + k);
                }
                g4_strbuf_append(&text, json_string_value(t), json_string_length(t));
            }
            json_t *joined = json_stringn(text.data ? text.data : "", text.len);
            r->out->oom |= text.oom || !joined;
            g4_strbuf_free(&text);
            tool_response_block(r, tool_name, joined);
            json_decref(joined);
            for (size_t i = 0; i < json_array_size(body); i++) {
                const char *media = media_placeholder(json_array_get(body, i));
                if (media) g4_strbuf_puts(r->out, media);
            }
        } else if (json_is_object(body)) {
            /* Jinja treats a mapping as a sequence of its keys here, and a key
             * has no .get(): the template fails unless the object is empty. */
            if (json_object_size(body))
                return g4_fail(r->err, "messages[%zu]: tool content must be a string or a list of "
                                       "parts, not an object (serialize it to a string)", r->first + k);
            json_t *empty = json_string("");
            tool_response_block(r, tool_name, empty);
            json_decref(empty);
        } else {
            tool_response_block(r, tool_name, body ? body : json_null());
        }
        rendered = 1;
    }
    return rendered;
}

/* Google-native tool_responses: [{name, response}] on the message itself. */
static int native_tool_responses(render *r, size_t idx, const json_t *responses) {
    if (!json_is_array(responses))
        return g4_fail(r->err, "messages[%zu]: tool_responses must be an array", r->first + idx);
    for (size_t i = 0; i < json_array_size(responses); i++) {
        const json_t *tr = json_array_get(responses, i);
        const json_t *name = g4_tpl_get(tr, "name");
        const char *tool_name = g4_py_truthy(name) ? json_string_value(name) : "unknown";
        if (!tool_name)
            return g4_fail(r->err, "messages[%zu]: tool_responses[%zu].name must be a string",
                           r->first + idx, i);
        tool_response_block(r, tool_name, g4_tpl_get(tr, "response"));
    }
    return 0;
}

/* The message content: model text goes through strip_thinking, other roles
 * are trimmed; parts are concatenated, media become placeholders. */
static int content(render *r, size_t idx, const json_t *m, bool is_model, g4_strbuf *captured) {
    const json_t *c = g4_tpl_get(m, "content");
    if (json_is_string(c)) {
        if (is_model) strip_thinking(captured, json_string_value(c), json_string_length(c));
        else g4_py_append_stripped(captured, json_string_value(c), json_string_length(c));
    } else if (json_is_array(c)) {
        for (size_t i = 0; i < json_array_size(c); i++) {
            const json_t *part = json_array_get(c, i);
            if (!json_is_object(part))
                return g4_fail(r->err, "messages[%zu]: content parts must be objects", r->first + idx);
            if (is_text_part(part)) {
                const json_t *t = json_object_get(part, "text");
                if (is_model) {
                    if (!json_is_string(t))
                        return g4_fail(r->err, "messages[%zu]: a text part needs a string \"text\"",
                                       r->first + idx);
                    strip_thinking(captured, json_string_value(t), json_string_length(t));
                } else {
                    g4_strbuf text = {0};
                    g4_py_str(&text, t);
                    g4_py_append_stripped(captured, text.data ? text.data : "", text.len);
                    captured->oom |= text.oom;
                    g4_strbuf_free(&text);
                }
            } else {
                const char *media = media_placeholder(part);
                if (media) g4_strbuf_puts(captured, media);
            }
        }
    } else if (json_is_object(c) && json_object_size(c)) {
        return g4_fail(r->err, "messages[%zu]: content must be a string or a list of parts", r->first + idx);
    }
    return 0;
}

/* One non-tool message, with its closing. */
static int message(render *r, size_t idx, long last_user, const char **prev_non_tool_role,
                   prev_kind *prev) {
    const json_t *m = json_array_get(r->loop, idx);
    const char *role = role_of(m);
    if (!role) return g4_fail(r->err, "messages[%zu] needs a string \"role\"", r->first + idx);
    *prev = PREV_NONE;
    /* "assistant" is written "model"; a message whose role already is
     * "model" is treated the same way, as the template compares the
     * rewritten role. */
    const char *turn_role = strcmp(role, "assistant") == 0 ? "model" : role;
    bool is_model = strcmp(turn_role, "model") == 0;
    bool continues = is_model && *prev_non_tool_role && strcmp(*prev_non_tool_role, "assistant") == 0;
    if (!continues) {
        g4_strbuf_puts(r->out, "<|turn>");
        g4_strbuf_puts(r->out, turn_role);
        g4_strbuf_putc(r->out, '\n');
    }

    const json_t *calls = g4_tpl_get(m, "tool_calls");
    bool has_calls = g4_py_truthy(calls);
    const json_t *thinking = g4_tpl_get(m, "reasoning");
    if (!g4_py_truthy(thinking)) thinking = g4_tpl_get(m, "reasoning_content");
    bool gate = (long)idx > last_user || (r->opt->preserve_thinking && has_calls);
    if (g4_py_truthy(thinking) && gate) {
        if (!json_is_string(thinking))
            return g4_fail(r->err, "messages[%zu]: reasoning must be a string", r->first + idx);
        g4_strbuf_puts(r->out, "<|channel>thought\n");
        g4_strbuf_append(r->out, json_string_value(thinking), json_string_length(thinking));
        g4_strbuf_puts(r->out, "\n<channel|>");
    }

    if (has_calls) {
        if (tool_calls(r, idx, calls)) return -1;
        *prev = PREV_TOOL_CALL;
    }
    bool results = false;
    const json_t *native = g4_tpl_get(m, "tool_responses");
    if (g4_py_truthy(native)) {
        if (native_tool_responses(r, idx, native)) return -1;
        results = json_array_size(native) > 0;
    } else if (has_calls) {
        int rc = following_tool_results(r, idx, calls);
        if (rc < 0) return -1;
        results = rc > 0;
    }
    if (results) *prev = PREV_TOOL_RESPONSE;

    g4_strbuf captured = {0};
    int rc = content(r, idx, m, is_model, &captured);
    size_t a = 0, z = 0;
    g4_py_strip(captured.data ? captured.data : "", captured.len, &a, &z);
    bool has_content = z > a;
    g4_strbuf_append(r->out, captured.data ? captured.data : "", captured.len);
    r->out->oom |= captured.oom;
    g4_strbuf_free(&captured);
    if (rc) return rc;

    /* The next non-tool message decides whether the model turn goes on. */
    const json_t *next = NULL;
    for (size_t k = idx + 1; k < json_array_size(r->loop) && !next; k++)
        if (!role_is(json_array_get(r->loop, k), "tool")) next = json_array_get(r->loop, k);
    bool continues_into_next = is_model && role_is(next, "assistant") && (!has_calls || results);

    if (*prev == PREV_TOOL_CALL && !results) g4_strbuf_puts(r->out, "<|tool_response>");
    else if (continues_into_next) {}
    else if (!(results && !has_content && !next)) g4_strbuf_puts(r->out, "<turn|>\n");
    *prev_non_tool_role = role;
    return 0;
}

int g4_chat_render(const json_t *messages, const json_t *tools, const g4_chat_options *opt,
                   char **out, g4_error *err) {
    static const g4_chat_options defaults = {0};
    if (!opt) opt = &defaults;
    if (messages && !json_is_array(messages)) return g4_fail(err, "messages must be a JSON array");

    g4_strbuf buf = {0};
    render r = {.out = &buf, .err = err, .opt = opt};
    prev_kind prev = PREV_NONE;
    g4_strbuf_puts(&buf, opt->bos ? opt->bos : "<bos>");

    json_t *empty = json_array();
    const json_t *all = messages ? messages : empty;
    size_t consumed = 0;
    int rc = system_turn(&r, all, tools, &prev, &consumed);

    json_t *loop = rc ? NULL : json_array();
    for (size_t i = consumed; loop && i < json_array_size(all); i++)
        json_array_append(loop, json_array_get(all, i));
    r.loop = loop;
    r.first = consumed;
    if (!rc && !loop) rc = g4_fail(err, "out of memory");

    long last_user = -1;
    for (size_t i = 0; !rc && i < json_array_size(loop); i++)
        if (role_is(json_array_get(loop, i), "user")) last_user = (long)i;

    const char *prev_non_tool_role = NULL;
    for (size_t i = 0; !rc && i < json_array_size(loop); i++) {
        if (role_is(json_array_get(loop, i), "tool")) continue;
        rc = message(&r, i, last_user, &prev_non_tool_role, &prev);
    }

    if (!rc && opt->add_generation_prompt) {
        if (prev != PREV_TOOL_RESPONSE && prev != PREV_TOOL_CALL) {
            g4_strbuf_puts(&buf, "<|turn>model\n");
            if (opt->empty_thought_prefill && !opt->enable_thinking)
                g4_strbuf_puts(&buf, "<|channel>thought\n<channel|>");
        } else if (prev == PREV_TOOL_RESPONSE && opt->enable_thinking) {
            g4_strbuf_puts(&buf, "<|channel>thought\n");
        }
    }
    json_decref(loop);
    json_decref(empty);
    if (!rc && buf.oom) rc = g4_fail(err, "out of memory rendering the chat");
    if (rc) {
        g4_strbuf_free(&buf);
        return -1;
    }
    *out = g4_strbuf_take(&buf);
    return 0;
}
