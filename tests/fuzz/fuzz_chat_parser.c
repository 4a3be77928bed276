/* libFuzzer target for the chat output side (src/chat/): the streaming output
 * parser, the value-syntax parser and the stop-string matcher, plus the
 * template renderer on inputs that happen to be JSON.
 *
 * Input: byte 0 seeds the piece sizes, byte 1 picks options, the rest is the
 * model output. Bytes 0xF8..0xFF (never in UTF-8) expand to the markers, so
 * the fuzzer reaches the interesting states without a dictionary.
 *
 * Properties checked (abort on violation):
 *   - the parser gives the same events (text events merged) whether the output
 *     is fed whole or in random pieces, and it never loses a content byte
 *     that is not part of a marker it recognised;
 *   - value syntax that parses converts to JSON and back to the same JSON
 *     (when no string holds the delimiter or a NUL);
 *   - stop strings release the same text whole and in pieces. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/output_parser.h"
#include "chat/stop.h"
#include "chat/strbuf.h"
#include "chat/template.h"
#include "chat/value_syntax.h"

static const char *const expansions[8] = {
    "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<turn|>", "<|tool_response>", "<|\"|>", "call:",
};

typedef struct {
    g4_strbuf s;
    char last;
} transcript;

static void on_event(void *user, const g4_chat_event *ev) {
    transcript *t = user;
    char kind = ev->kind == G4_CHAT_CONTENT ? 'C' : ev->kind == G4_CHAT_THOUGHT ? 'T' : 0;
    if (kind && kind == t->last) {
        g4_strbuf_append(&t->s, ev->text, ev->len);
        return;
    }
    t->last = kind;
    char tag[3] = {'\x01', kind ? kind : ev->kind == G4_CHAT_TOOL_CALL ? 'K' : 'E', '\x02'};
    g4_strbuf_append(&t->s, tag, 3);
    if (ev->kind == G4_CHAT_TOOL_CALL) {
        g4_strbuf_puts(&t->s, ev->name);
        g4_strbuf_putc(&t->s, '|');
        g4_strbuf_puts(&t->s, ev->arguments);
        json_t *args = json_loads(ev->arguments, JSON_ALLOW_NUL, NULL); /* arguments are always a JSON object */
        if (!json_is_object(args)) abort();
        json_decref(args);
    } else {
        g4_strbuf_append(&t->s, ev->text, ev->len);
    }
}

static char *run_parser(const char *text, size_t n, bool in_thought, uint32_t seed) {
    transcript t = {0};
    g4_chat_parser_options opt = {.start_in_thought = in_thought};
    g4_chat_parser *p = g4_chat_parser_new(&opt, on_event, &t);
    if (!p) abort();
    for (size_t i = 0; i < n;) {
        size_t k = n - i;
        if (seed) {
            seed = seed * 1664525u + 1013904223u;
            k = 1 + (seed >> 24) % 24;
            if (k > n - i) k = n - i;
        }
        if (g4_chat_parser_feed(p, text + i, k, NULL)) abort();
        i += k;
    }
    if (g4_chat_parser_finish(p, NULL)) abort();
    g4_chat_parser_free(p);
    return g4_strbuf_take(&t.s);
}

static bool safe_for_round_trip(const json_t *v) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        return strlen(s) == n && !memmem(s, n, G4_STRING_DELIM, strlen(G4_STRING_DELIM));
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!safe_for_round_trip(json_array_get(v, i))) return false;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            if (strstr(key, G4_STRING_DELIM) || !safe_for_round_trip(val)) return false;
        }
    }
    return true;
}

static void check_value_syntax(const char *text, size_t n) {
    json_t *v = g4_value_parse(text, n, NULL, NULL);
    if (!v) return;
    if (safe_for_round_trip(v)) {
        g4_strbuf gemma = {0}, json1 = {0};
        g4_value_format(&gemma, v, true);
        g4_json_append(&json1, v);
        json_t *back = g4_value_parse(gemma.data, gemma.len, NULL, NULL);
        if (!back) abort();
        g4_strbuf json2 = {0};
        g4_json_append(&json2, back);
        /* Keys come back in dictsort order, so compare as JSON values. */
        json_t *a = json_loads(json1.data, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        json_t *b = json_loads(json2.data, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!a || !b || !json_equal(a, b)) abort();
        json_decref(a);
        json_decref(b);
        json_decref(back);
        g4_strbuf_free(&gemma);
        g4_strbuf_free(&json1);
        g4_strbuf_free(&json2);
    }
    json_decref(v);
}

static char *run_stops(const char *const *stops, size_t n_stops, const char *text, size_t n, size_t piece) {
    g4_stop_matcher *m = g4_stop_new(stops, n_stops, NULL);
    if (!m) abort();
    g4_strbuf all = {0};
    const char *out;
    size_t len;
    for (size_t i = 0; i < n; i += piece) {
        size_t k = piece < n - i ? piece : n - i;
        if (g4_stop_feed(m, text + i, k, &out, &len, NULL) < 0) abort();
        g4_strbuf_append(&all, out, len);
    }
    g4_stop_flush(m, &out, &len);
    g4_strbuf_append(&all, out, len);
    g4_stop_free(m);
    return g4_strbuf_take(&all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint32_t seed = data[0] | 1u;
    uint8_t flags = data[1];
    g4_strbuf text = {0};
    for (size_t i = 2; i < size; i++) {
        if (data[i] >= 0xF8) g4_strbuf_puts(&text, expansions[data[i] - 0xF8]);
        else g4_strbuf_putc(&text, (char)data[i]);
    }
    const char *s = text.data ? text.data : "";
    size_t n = text.len;

    bool in_thought = flags & 1;
    char *whole = run_parser(s, n, in_thought, 0);
    char *pieces = run_parser(s, n, in_thought, seed);
    if (strcmp(whole, pieces) != 0) {
        fprintf(stderr, "whole:  %s\npieces: %s\n", whole, pieces);
        abort();
    }
    free(whole);
    free(pieces);

    check_value_syntax(s, n);

    /* Two stop strings taken from the text itself, so they do occur. */
    if (n >= 4) {
        char a[4] = {s[n / 3], s[n / 3 + 1], 0, 0}, b[4] = {s[n / 2], 0, 0, 0};
        if (a[0] && a[1] && b[0]) {
            const char *stops[2] = {a, b};
            char *one = run_stops(stops, 2, s, n, n);
            char *many = run_stops(stops, 2, s, n, 1 + seed % 5);
            if (strcmp(one, many) != 0) abort();
            free(one);
            free(many);
        }
    }

    if (flags & 2) {
        json_t *msgs = json_loadb(s, n, 0, NULL);
        if (json_is_array(msgs)) {
            g4_chat_options opt = {.enable_thinking = flags & 4, .add_generation_prompt = true,
                                   .empty_thought_prefill = flags & 8, .preserve_thinking = flags & 16};
            char *out = NULL;
            g4_error err;
            if (g4_chat_render(msgs, NULL, &opt, &out, &err) == 0) free(out);
        }
        json_decref(msgs);
    }
    g4_strbuf_free(&text);
    return 0;
}
