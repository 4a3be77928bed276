#include "chat/value_syntax.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/pystr.h"

#define DELIM_LEN (sizeof G4_STRING_DELIM - 1)
#define MAX_DEPTH 64

/* ---- JSON → value syntax (the template's format_argument) ---- */

void g4_value_format(g4_strbuf *out, const json_t *v, bool quote_keys) {
    if (!v) {
        g4_strbuf_puts(out, "[]");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_NULL: g4_strbuf_puts(out, "null"); break;
    case JSON_TRUE: g4_strbuf_puts(out, "true"); break;
    case JSON_FALSE: g4_strbuf_puts(out, "false"); break;
    case JSON_STRING:
        g4_strbuf_puts(out, G4_STRING_DELIM);
        g4_strbuf_append(out, json_string_value(v), json_string_length(v));
        g4_strbuf_puts(out, G4_STRING_DELIM);
        break;
    case JSON_INTEGER:
    case JSON_REAL: g4_py_str(out, v); break;
    case JSON_ARRAY:
        g4_strbuf_putc(out, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) g4_strbuf_putc(out, ',');
            g4_value_format(out, json_array_get(v, i), quote_keys);
        }
        g4_strbuf_putc(out, ']');
        break;
    case JSON_OBJECT: {
        size_t n;
        const char **keys = g4_py_dictsort(v, &n);
        if (n == (size_t)-1) {
            out->oom = true;
            return;
        }
        g4_strbuf_putc(out, '{');
        for (size_t i = 0; i < n; i++) {
            if (i) g4_strbuf_putc(out, ',');
            if (quote_keys) g4_strbuf_puts(out, G4_STRING_DELIM);
            g4_strbuf_puts(out, keys[i]);
            if (quote_keys) g4_strbuf_puts(out, G4_STRING_DELIM);
            g4_strbuf_putc(out, ':');
            g4_value_format(out, json_object_get(v, keys[i]), quote_keys);
        }
        g4_strbuf_putc(out, '}');
        free(keys);
        break;
    }
    }
}

/* ---- compact JSON with shortest floats ---- */

static void json_string_append(g4_strbuf *out, const char *s, size_t n) {
    g4_strbuf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        switch (c) {
        case '"': g4_strbuf_puts(out, "\\\""); break;
        case '\\': g4_strbuf_puts(out, "\\\\"); break;
        case '\n': g4_strbuf_puts(out, "\\n"); break;
        case '\r': g4_strbuf_puts(out, "\\r"); break;
        case '\t': g4_strbuf_puts(out, "\\t"); break;
        case '\b': g4_strbuf_puts(out, "\\b"); break;
        case '\f': g4_strbuf_puts(out, "\\f"); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                g4_strbuf_puts(out, esc);
            } else {
                g4_strbuf_putc(out, (char)c);
            }
        }
    }
    g4_strbuf_putc(out, '"');
}

void g4_json_append(g4_strbuf *out, const json_t *v) {
    char num[32];
    switch (json_typeof(v)) {
    case JSON_NULL: g4_strbuf_puts(out, "null"); break;
    case JSON_TRUE: g4_strbuf_puts(out, "true"); break;
    case JSON_FALSE: g4_strbuf_puts(out, "false"); break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        g4_strbuf_puts(out, num);
        break;
    case JSON_REAL: {
        double x = json_real_value(v);
        if (!isfinite(x)) {
            g4_strbuf_puts(out, "null"); /* JSON has no inf/nan */
            break;
        }
        g4_py_float_repr(x, num);
        g4_strbuf_puts(out, num);
        break;
    }
    case JSON_STRING: json_string_append(out, json_string_value(v), json_string_length(v)); break;
    case JSON_ARRAY:
        g4_strbuf_putc(out, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) g4_strbuf_putc(out, ',');
            g4_json_append(out, json_array_get(v, i));
        }
        g4_strbuf_putc(out, ']');
        break;
    case JSON_OBJECT: {
        const char *key;
        const json_t *val;
        bool first = true;
        g4_strbuf_putc(out, '{');
        json_object_foreach((json_t *)v, key, val) {
            if (!first) g4_strbuf_putc(out, ',');
            first = false;
            json_string_append(out, key, strlen(key));
            g4_strbuf_putc(out, ':');
            g4_json_append(out, val);
        }
        g4_strbuf_putc(out, '}');
        break;
    }
    }
}

/* ---- value syntax → JSON ---- */

typedef struct {
    const char *s;
    size_t n, pos;
    int depth;
    g4_error *err;
} parser;

static json_t *parse_value(parser *p);

static bool at(const parser *p, const char *lit) {
    size_t len = strlen(lit);
    return p->n - p->pos >= len && memcmp(p->s + p->pos, lit, len) == 0;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_ws(parser *p) {
    while (p->pos < p->n && is_ws(p->s[p->pos])) p->pos++;
}

static json_t *fail(parser *p, const char *what) {
    g4_fail(p->err, "value syntax: %s at byte %zu", what, p->pos);
    return NULL;
}

static json_t *make_string(parser *p, const char *s, size_t n) {
    json_t *v = json_stringn(s, n);
    return v ? v : fail(p, "string is not valid UTF-8");
}

/* <|"|>raw<|"|>: everything up to the next delimiter, verbatim. */
static json_t *parse_delimited(parser *p) {
    size_t start = p->pos + DELIM_LEN;
    for (size_t i = start; i + DELIM_LEN <= p->n; i++) {
        if (memcmp(p->s + i, G4_STRING_DELIM, DELIM_LEN) == 0) {
            p->pos = i + DELIM_LEN;
            return make_string(p, p->s + start, i - start);
        }
    }
    return fail(p, "unterminated <|\"|> string");
}

/* A JSON "string" (a model slipping into JSON): decoded with its escapes. */
static json_t *parse_quoted(parser *p) {
    size_t i = p->pos + 1;
    while (i < p->n && p->s[i] != '"') i += p->s[i] == '\\' ? 2 : 1;
    if (i >= p->n) return fail(p, "unterminated \" string");
    json_error_t jerr;
    json_t *v = json_loadb(p->s + p->pos, i + 1 - p->pos, JSON_DECODE_ANY, &jerr);
    if (!v || !json_is_string(v)) {
        json_decref(v);
        return fail(p, "bad \" string");
    }
    p->pos = i + 1;
    return v;
}

static bool is_bare_end(char c) { return c == ',' || c == '}' || c == ']'; }

/* A bare word up to , } ] : a literal, a number, or else a string. */
static json_t *parse_bare(parser *p) {
    size_t start = p->pos;
    while (p->pos < p->n && !is_bare_end(p->s[p->pos]) && !at(p, G4_STRING_DELIM)) p->pos++;
    size_t end = p->pos;
    while (end > start && is_ws(p->s[end - 1])) end--;
    size_t len = end - start;
    const char *w = p->s + start;
    if (len == 0) return fail(p, "expected a value");
    if (len == 4 && memcmp(w, "true", 4) == 0) return json_true();
    if (len == 5 && memcmp(w, "false", 5) == 0) return json_false();
    if (len == 4 && memcmp(w, "null", 4) == 0) return json_null();

    char buf[64];
    size_t k = (w[0] == '-' || w[0] == '+') ? 1 : 0;
    bool numeric_start = k < len && ((w[k] >= '0' && w[k] <= '9') ||
                                     (w[k] == '.' && k + 1 < len && w[k + 1] >= '0' && w[k + 1] <= '9'));
    if (numeric_start && len < sizeof buf) {
        memcpy(buf, w, len);
        buf[len] = '\0';
        bool all_digits = true;
        for (size_t i = k; i < len; i++) all_digits = all_digits && buf[i] >= '0' && buf[i] <= '9';
        char *endp;
        errno = 0;
        if (all_digits) {
            long long iv = strtoll(buf, &endp, 10);
            if (errno == 0 && *endp == '\0') return json_integer(iv);
        }
        errno = 0;
        double dv = strtod(buf, &endp);
        if (*endp == '\0' && isfinite(dv)) return json_real(dv);
    }
    return make_string(p, w, len);
}

static json_t *parse_key(parser *p) {
    if (at(p, G4_STRING_DELIM)) return parse_delimited(p);
    if (p->s[p->pos] == '"') return parse_quoted(p);
    size_t start = p->pos;
    while (p->pos < p->n && p->s[p->pos] != ':') {
        char c = p->s[p->pos];
        if (c == ',' || c == '{' || c == '}' || c == '[' || c == ']') return fail(p, "expected key:value");
        p->pos++;
    }
    size_t end = p->pos;
    while (end > start && is_ws(p->s[end - 1])) end--;
    if (end == start) return fail(p, "empty key");
    return make_string(p, p->s + start, end - start);
}

static json_t *parse_object(parser *p) {
    p->pos++; /* '{' */
    json_t *obj = json_object();
    if (!obj) return fail(p, "out of memory");
    for (;;) {
        while (p->pos < p->n && (is_ws(p->s[p->pos]) || p->s[p->pos] == ',')) p->pos++;
        if (p->pos >= p->n) { json_decref(obj); return fail(p, "unterminated object"); }
        if (p->s[p->pos] == '}') { p->pos++; return obj; }
        json_t *key = parse_key(p);
        if (!key) { json_decref(obj); return NULL; }
        if (memchr(json_string_value(key), '\0', json_string_length(key))) {
            json_decref(key);
            json_decref(obj);
            return fail(p, "NUL byte in a key");
        }
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != ':') {
            json_decref(key);
            json_decref(obj);
            return fail(p, "expected ':'");
        }
        p->pos++;
        json_t *val = parse_value(p);
        if (!val || json_object_setn_new(obj, json_string_value(key), json_string_length(key), val)) {
            json_decref(key);
            json_decref(obj);
            return val ? fail(p, "bad key") : NULL;
        }
        json_decref(key);
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] != ',' && p->s[p->pos] != '}') {
            json_decref(obj);
            return fail(p, "expected ',' or '}'");
        }
    }
}

static json_t *parse_array(parser *p) {
    p->pos++; /* '[' */
    json_t *arr = json_array();
    if (!arr) return fail(p, "out of memory");
    for (;;) {
        while (p->pos < p->n && (is_ws(p->s[p->pos]) || p->s[p->pos] == ',')) p->pos++;
        if (p->pos >= p->n) { json_decref(arr); return fail(p, "unterminated array"); }
        if (p->s[p->pos] == ']') { p->pos++; return arr; }
        json_t *val = parse_value(p);
        if (!val || json_array_append_new(arr, val)) {
            json_decref(arr);
            return val ? fail(p, "out of memory") : NULL;
        }
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] != ',' && p->s[p->pos] != ']') {
            json_decref(arr);
            return fail(p, "expected ',' or ']'");
        }
    }
}

static json_t *parse_value(parser *p) {
    skip_ws(p);
    if (p->pos >= p->n) return fail(p, "expected a value");
    if (at(p, G4_STRING_DELIM)) return parse_delimited(p);
    char c = p->s[p->pos];
    if (c == '"') return parse_quoted(p);
    if (c == '{' || c == '[') {
        if (p->depth >= MAX_DEPTH) return fail(p, "nesting too deep");
        p->depth++;
        json_t *v = c == '{' ? parse_object(p) : parse_array(p);
        p->depth--;
        return v;
    }
    return parse_bare(p);
}

json_t *g4_value_parse(const char *text, size_t n, size_t *used, g4_error *err) {
    parser p = {.s = text, .n = n, .err = err};
    json_t *v = parse_value(&p);
    if (v && used) *used = p.pos;
    return v;
}

char *g4_value_to_json(const char *text, size_t n, g4_error *err) {
    size_t used = 0;
    json_t *v = g4_value_parse(text, n, &used, err);
    if (!v) return NULL;
    while (used < n && is_ws(text[used])) used++;
    if (used != n) {
        json_decref(v);
        g4_fail(err, "value syntax: unexpected text after the value at byte %zu", used);
        return NULL;
    }
    g4_strbuf b = {0};
    g4_json_append(&b, v);
    json_decref(v);
    if (b.oom) {
        g4_strbuf_free(&b);
        g4_fail(err, "value syntax: out of memory");
        return NULL;
    }
    return g4_strbuf_take(&b);
}

char *g4_value_from_json(const char *json_text, bool quote_keys, g4_error *err) {
    json_error_t jerr;
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, &jerr);
    if (!v) {
        g4_fail(err, "JSON: %s (line %d)", jerr.text, jerr.line);
        return NULL;
    }
    g4_strbuf b = {0};
    g4_value_format(&b, v, quote_keys);
    json_decref(v);
    if (b.oom) {
        g4_strbuf_free(&b);
        g4_fail(err, "value syntax: out of memory");
        return NULL;
    }
    return g4_strbuf_take(&b);
}
