/* Gemma tool calls as a grammar:
 *   call_NAME ::= <|tool_call> "call:NAME" ARGS <tool_call|>
 * where ARGS is the tool's parameter schema in Gemma's value syntax (the
 * form src/chat/output_parser.c reads back into JSON). "auto" also allows
 * text before the calls, or text alone. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "grammar/schema.h"

static bool name_ok(const char *s) {
    if (!*s) return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                  c == '.' || c >= 0x80;
        if (!ok) return false;
    }
    return true;
}

static int call_rule(schema_ctx *c, const char *name, const json_t *params) {
    g4g_builder *b = c->b;
    snprintf(c->path, sizeof c->path, "tool %s parameters", name);
    if (params && !json_is_object(params)) return g4g_fail(b, "tools: the parameters of %s must be a schema object", name);
    const json_t *type = json_object_get(params, "type");
    if (type && !(json_is_string(type) && !strcmp(json_string_value(type), "object")))
        return g4g_fail(b, "tools: the parameters of %s must be of type object", name);
    int args;
    if (params) {
        json_t *obj = json_deep_copy(params); /* an object even where "type" is left out */
        if (!obj || json_object_set_new(obj, "type", json_string("object"))) {
            json_decref(obj);
            return g4g_fail(b, "grammar: out of memory");
        }
        c->root = obj; /* $ref inside parameters resolve against them */
        args = schema_compile(c, obj);
        c->root = NULL;
        c->n_refs = 0; /* they pointed into obj */
        json_decref(obj);
    } else {
        g4g_seq s = {0};
        g4g_seq_literal(b, &s, "{}", 2);
        args = g4g_rule_of(b, &s);
    }
    g4g_seq s = {0};
    g4g_seq_token(b, &s, "<|tool_call>");
    g4g_seq_literal(b, &s, "call:", 5);
    g4g_seq_literal(b, &s, name, strlen(name));
    g4g_seq_rule(b, &s, args);
    g4g_seq_token(b, &s, "<tool_call|>");
    return g4g_rule_of(b, &s);
}

/* Free text that the output parser keeps as content: no '<' that could
 * begin a marker (<|..., <channel|>, <tool_call|>, <turn|>, <eos>). */
static int text_rule(schema_ctx *c) {
    static const uint32_t lt[] = {'<', '<', 0, 0},
                          after_lt[] = {'<', '<', '|', '|', 't', 't', 'e', 'e', 'c', 'c', 0, 0};
    g4g_builder *b = c->b;
    int plain = g4g_char_class(b, lt, 2, true);
    g4g_seq s = {0};
    g4g_seq_literal(b, &s, "<", 1);
    g4g_seq_rule(b, &s, g4g_char_class(b, after_lt, 6, true));
    int lt_pair = g4g_rule_of(b, &s);
    int ch = g4g_rule(b, "text");
    g4g_seq_rule(b, &s, plain);
    g4g_alt(b, ch, &s);
    g4g_seq_rule(b, &s, lt_pair);
    g4g_alt(b, ch, &s);
    return g4g_repeat(b, ch, 1, -1);
}

int gemma4_grammar_for_tools(const gemma4_tokenizer *tok, const char *tools_json, const char *choice,
                             gemma4_grammar **out) {
    *out = NULL;
    g4_error *err = g4_api_error();
    if (!tools_json) return g4_fail(err, "tools: no tools given");
    if (!choice) choice = "auto";
    json_error_t jerr;
    json_t *tools = json_loads(tools_json, 0, &jerr);
    if (!tools) return g4_fail(err, "tools: not valid JSON: %s (line %d)", jerr.text, jerr.line);
    if (!json_is_array(tools) || !json_array_size(tools)) {
        json_decref(tools);
        return g4_fail(err, "tools: expected a non-empty JSON array of tools");
    }
    g4g_builder *b = g4g_builder_new(tok, err);
    if (!b) {
        json_decref(tools);
        return -1;
    }
    schema_ctx c;
    schema_ctx_init(&c, b, NULL, true);
    int any_call = g4g_rule(b, "call"), chosen = -1;
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        const json_t *fn = json_object_get(t, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!json_is_object(fn) || !name) {
            g4g_fail(b, "tools: tool %zu is not {\"type\":\"function\",\"function\":{\"name\":...}}", i);
            break;
        }
        if (!name_ok(name)) {
            g4g_fail(b, "tools: the tool name \"%s\" has characters a Gemma tool call cannot carry", name);
            break;
        }
        int call = call_rule(&c, name, json_object_get(fn, "parameters"));
        g4g_seq s = {0};
        g4g_seq_rule(b, &s, call);
        g4g_alt(b, any_call, &s);
        if (!strcmp(name, choice)) chosen = call;
    }
    int root = -1;
    if (!g4g_failed(b)) {
        int calls = g4g_repeat(b, any_call, 1, -1);
        if (!strcmp(choice, "auto")) {
            int text = text_rule(&c);
            root = g4g_rule(b, "root");
            g4g_seq s = {0};
            g4g_seq_rule(b, &s, text);
            g4g_alt(b, root, &s);
            g4g_seq_rule(b, &s, g4g_repeat(b, text, 0, 1));
            g4g_seq_rule(b, &s, calls);
            g4g_alt(b, root, &s);
        } else if (!strcmp(choice, "required")) {
            root = calls;
        } else if (chosen >= 0) {
            root = chosen;
        } else {
            g4g_fail(b, "tools: tool_choice \"%s\" is neither auto, required nor a declared tool", choice);
        }
    }
    g4g_add_end_token(b, "<|tool_response>");
    g4g_add_end_token(b, "<turn|>");
    g4g_add_end_token(b, "<eos>");
    *out = g4g_finish(b, root);
    schema_ctx_free(&c);
    g4g_builder_free(b);
    json_decref(tools);
    return *out ? 0 : -1;
}
