/* Strings of a JSON Schema: characters as JSON encodes them (or raw inside
 * Gemma's <|"|> delimiters), minLength/maxLength, format, pattern; and
 * enum/const literals. */
#include "grammar/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/strbuf.h"
#include "chat/value_syntax.h"
#include "grammar/regex.h"

#define MAX_RANGES 512

typedef struct rset {
    uint32_t r[2 * MAX_RANGES];
    int n;
} rset;

static int cmp_pair(const void *x, const void *y) {
    const uint32_t *a = x, *b = y;
    return a[0] < b[0] ? -1 : a[0] > b[0];
}

static void rset_normalize(rset *s) {
    qsort(s->r, (size_t)s->n, 2 * sizeof *s->r, cmp_pair);
    int m = 0;
    for (int i = 0; i < s->n; i++) {
        if (m && s->r[2 * i] <= s->r[2 * m - 1] + 1) {
            if (s->r[2 * i + 1] > s->r[2 * m - 1]) s->r[2 * m - 1] = s->r[2 * i + 1];
        } else {
            s->r[2 * m] = s->r[2 * i];
            s->r[2 * m + 1] = s->r[2 * i + 1];
            m++;
        }
    }
    s->n = m;
}

static void rset_complement(rset *s) {
    rset out = {.n = 0};
    uint32_t next = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->r[2 * i] > next) { out.r[2 * out.n] = next; out.r[2 * out.n + 1] = s->r[2 * i] - 1; out.n++; }
        next = s->r[2 * i + 1] + 1;
    }
    if (next <= 0x10FFFF) { out.r[2 * out.n] = next; out.r[2 * out.n + 1] = 0x10FFFF; out.n++; }
    *s = out;
}

static bool rset_has(const rset *s, uint32_t c) {
    for (int i = 0; i < s->n; i++)
        if (c >= s->r[2 * i] && c <= s->r[2 * i + 1]) return true;
    return false;
}

/* Removes the code point c (sets are normalised). */
static void rset_remove(rset *s, uint32_t c) {
    for (int i = 0; i < s->n; i++) {
        uint32_t lo = s->r[2 * i], hi = s->r[2 * i + 1];
        if (c < lo || c > hi) continue;
        if (lo == hi) {
            memmove(s->r + 2 * i, s->r + 2 * i + 2, sizeof *s->r * 2 * (size_t)(s->n - i - 1));
            s->n--;
        } else if (c == lo) {
            s->r[2 * i] = lo + 1;
        } else if (c == hi) {
            s->r[2 * i + 1] = hi - 1;
        } else if (s->n < MAX_RANGES) {
            memmove(s->r + 2 * i + 2, s->r + 2 * i, sizeof *s->r * 2 * (size_t)(s->n - i));
            s->r[2 * i + 1] = c - 1;
            s->r[2 * i + 2] = c + 1;
            s->n++;
        }
        return;
    }
}

/* JSON's escape of a character that may not appear raw in a string. */
static void json_escape(uint32_t c, char out[8]) {
    switch (c) {
    case '"': strcpy(out, "\\\""); break;
    case '\\': strcpy(out, "\\\\"); break;
    case '\n': strcpy(out, "\\n"); break;
    case '\t': strcpy(out, "\\t"); break;
    case '\r': strcpy(out, "\\r"); break;
    case '\b': strcpy(out, "\\b"); break;
    case '\f': strcpy(out, "\\f"); break;
    default: snprintf(out, 8, "\\u%04x", (unsigned)c);
    }
}

int schema_char_class(schema_ctx *c, const uint32_t *ranges, int n_ranges, bool negate) {
    if (n_ranges > MAX_RANGES) return g4g_fail(c->b, "grammar: a character class of more than %d ranges", MAX_RANGES);
    rset *s = malloc(sizeof *s);
    if (!s) return g4g_fail(c->b, "grammar: out of memory");
    memcpy(s->r, ranges, sizeof *ranges * 2 * (size_t)n_ranges);
    s->n = n_ranges;
    rset_normalize(s);
    if (negate) rset_complement(s);
    int r = g4g_rule(c->b, "char");
    if (c->value_syntax) { /* raw text; '<' could begin a marker, NUL is no text */
        rset_remove(s, 0);
        rset_remove(s, '<');
    } else {
        for (uint32_t ch = 0; ch < 0x20; ch++) {
            if (!rset_has(s, ch)) continue;
            char esc[8];
            json_escape(ch, esc);
            g4g_seq q = {0};
            g4g_seq_literal(c->b, &q, esc, strlen(esc));
            g4g_alt(c->b, r, &q);
        }
        static const uint32_t specials[] = {'"', '\\'};
        for (int i = 0; i < 2; i++)
            if (rset_has(s, specials[i])) {
                char esc[8];
                json_escape(specials[i], esc);
                g4g_seq q = {0};
                g4g_seq_literal(c->b, &q, esc, strlen(esc));
                g4g_alt(c->b, r, &q);
            }
        for (uint32_t ch = 0; ch < 0x20; ch++) rset_remove(s, ch);
        rset_remove(s, '"');
        rset_remove(s, '\\');
    }
    if (s->n) {
        g4g_seq q = {0};
        g4g_seq_rule(c->b, &q, g4g_char_class(c->b, s->r, s->n, false));
        g4g_alt(c->b, r, &q);
    }
    free(s);
    return r;
}

/* Any character (one code point). */
static int string_char(schema_ctx *c) {
    if (c->string_char < 0) {
        static const uint32_t nothing[] = {0, 0};
        c->string_char = schema_char_class(c, nothing, 0, true);
    }
    return c->string_char;
}

/* In value syntax an unbounded string may also hold '<' when no marker can
 * start there: '<' followed by a character other than < | t e. */
static int delimited_char(schema_ctx *c) {
    if (c->delim_char >= 0) return c->delim_char;
    static const uint32_t after_lt[] = {'<', '<', '|', '|', 't', 't', 'e', 'e', 0, 0};
    g4g_seq s = {0};
    g4g_seq_literal(c->b, &s, "<", 1);
    g4g_seq_rule(c->b, &s, schema_char_class(c, after_lt, 5, true));
    int lt_pair = g4g_rule_of(c->b, &s);
    int r = g4g_rule(c->b, "char");
    g4g_seq_rule(c->b, &s, string_char(c));
    g4g_alt(c->b, r, &s);
    g4g_seq_rule(c->b, &s, lt_pair);
    g4g_alt(c->b, r, &s);
    return c->delim_char = r;
}

static const struct {
    const char *name, *regex;
} formats[] = {
    {"date", "^[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))$"},
    {"time", "^(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"},
    {"date-time", "^[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
                  "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"},
    {"uuid", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
    {"email", "^[a-z0-9_+-]{1,24}(?:\\.[a-z0-9_+-]{1,24}){0,3}@(?:[a-z0-9]{1,24}\\.){1,3}[a-z]{2,8}$"},
    {"ipv4", "^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"},
};

static int string_body(schema_ctx *c, const json_t *schema) {
    const json_t *min_v = json_object_get(schema, "minLength"), *max_v = json_object_get(schema, "maxLength");
    const json_t *pattern = json_object_get(schema, "pattern"), *format = json_object_get(schema, "format");
    int min = 0, max = -1;
    if (min_v && (!json_is_integer(min_v) || json_integer_value(min_v) < 0 || json_integer_value(min_v) > G4G_MAX_REPEAT))
        return schema_fail(c, "minLength must be an integer in 0..%d", G4G_MAX_REPEAT);
    if (max_v && (!json_is_integer(max_v) || json_integer_value(max_v) < 0 || json_integer_value(max_v) > G4G_MAX_REPEAT))
        return schema_fail(c, "maxLength must be an integer in 0..%d", G4G_MAX_REPEAT);
    if (min_v) min = (int)json_integer_value(min_v);
    if (max_v) max = (int)json_integer_value(max_v);
    if (max >= 0 && max < min) return schema_fail(c, "maxLength is below minLength");
    if ((pattern || format) && (min_v || max_v))
        return schema_fail(c, "minLength/maxLength together with pattern or format is not supported");
    if (pattern && format)
        return schema_fail(c, "pattern together with format is not supported");
    if (format) {
        if (!json_is_string(format)) return schema_fail(c, "format must be a string");
        for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
            if (!strcmp(json_string_value(format), formats[i].name)) return regex_compile(c, formats[i].regex);
        return schema_fail(c, "unsupported format \"%s\" (supported: date, time, date-time, uuid, "
                              "email, ipv4)", json_string_value(format));
    }
    if (pattern) {
        if (!json_is_string(pattern)) return schema_fail(c, "pattern must be a string");
        return regex_compile(c, json_string_value(pattern));
    }
    int ch = c->value_syntax && max < 0 && min == 0 ? delimited_char(c) : string_char(c);
    return g4g_repeat(c->b, ch, min, max);
}

int schema_string(schema_ctx *c, const json_t *schema) {
    bool plain = !schema || (!json_object_get(schema, "minLength") && !json_object_get(schema, "maxLength") &&
                             !json_object_get(schema, "pattern") && !json_object_get(schema, "format"));
    if (plain && c->any_string >= 0) return c->any_string;
    int body = string_body(c, plain ? NULL : schema);
    g4g_seq s = {0};
    if (c->value_syntax) {
        g4g_seq_token(c->b, &s, G4_STRING_DELIM);
        g4g_seq_rule(c->b, &s, body);
        g4g_seq_token(c->b, &s, G4_STRING_DELIM);
    } else {
        g4g_seq_literal(c->b, &s, "\"", 1);
        g4g_seq_rule(c->b, &s, body);
        g4g_seq_literal(c->b, &s, "\"", 1);
    }
    int r = g4g_rule_of(c->b, &s);
    if (plain) c->any_string = r;
    return r;
}

/* ---- literals ---- */

int schema_literal(schema_ctx *c, const json_t *value) {
    g4g_seq s = {0};
    if (!c->value_syntax) {
        char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) return g4g_fail(c->b, "grammar: out of memory");
        g4g_seq_literal(c->b, &s, text, strlen(text));
        free(text);
        return g4g_rule_of(c->b, &s);
    }
    g4_strbuf f = {0};
    g4_value_format(&f, value, false);
    if (f.oom) {
        g4_strbuf_free(&f);
        return g4g_fail(c->b, "grammar: out of memory");
    }
    /* the <|"|> delimiters become the special token; anything else that
     * looks like a marker could not be read back */
    const size_t dl = strlen(G4_STRING_DELIM);
    const char *p = f.data ? f.data : "";
    size_t n = f.len, i = 0, start = 0;
    for (; i < n; i++) {
        if (i + dl <= n && !memcmp(p + i, G4_STRING_DELIM, dl)) {
            g4g_seq_literal(c->b, &s, p + start, i - start);
            g4g_seq_token(c->b, &s, G4_STRING_DELIM);
            i += dl - 1;
            start = i + 1;
        } else if (p[i] == '<') {
            g4_strbuf_free(&f);
            g4g_seq_free(&s);
            return schema_fail(c, "an enum/const value with '<' cannot be written in a tool call");
        }
    }
    g4g_seq_literal(c->b, &s, p + start, n - start);
    g4_strbuf_free(&f);
    return g4g_rule_of(c->b, &s);
}
