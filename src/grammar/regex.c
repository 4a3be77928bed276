/* A recursive-descent reader of the common ECMAScript regex subset, building
 * grammar rules as it goes: alternation -> alternatives, concatenation ->
 * sequences, quantifiers -> bounded repetition, classes -> characters as the
 * string's surface syntax writes them (schema_char_class). */
#include "grammar/regex.h"

#include <stdio.h>
#include <string.h>

typedef struct rx {
    schema_ctx *c;
    const unsigned char *p;
    size_t i, n;
    const char *pattern;
} rx;

static int rx_fail(rx *r, const char *what) {
    return schema_fail(r->c, "pattern \"%s\": %s (at character %zu)", r->pattern, what, r->i);
}

/* The code point at r->i (advancing), or -1 for invalid UTF-8. */
static int32_t next_char(rx *r) {
    const unsigned char *p = r->p + r->i;
    size_t left = r->n - r->i;
    int len = p[0] < 0x80 ? 1 : (p[0] >> 5) == 6 ? 2 : (p[0] >> 4) == 14 ? 3 : (p[0] >> 3) == 30 ? 4 : 0;
    if (!len || (size_t)len > left) return -1;
    int32_t c = len == 1 ? p[0] : p[0] & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80) return -1;
        c = c << 6 | (p[k] & 0x3F);
    }
    r->i += (size_t)len;
    return c;
}

static int hex_value(rx *r, int digits) {
    int v = 0;
    for (int k = 0; k < digits; k++) {
        if (r->i >= r->n) return -1;
        int ch = r->p[r->i++], d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

typedef struct cls {
    uint32_t r[2 * 128];
    int n;
} cls;

static void cls_add(cls *k, uint32_t lo, uint32_t hi) {
    if (k->n < 128) {
        k->r[2 * k->n] = lo;
        k->r[2 * k->n + 1] = hi;
        k->n++;
    }
}

/* \d \w \s into k (negated forms: *negate set). 0 if esc is none of them. */
static int shorthand(cls *k, int esc, bool *negate) {
    static const uint32_t space[] = {9, 13, ' ', ' ', 0xA0, 0xA0, 0x1680, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029,
                                     0x202F, 0x202F, 0x205F, 0x205F, 0x3000, 0x3000, 0xFEFF, 0xFEFF};
    int lower = esc | 0x20;
    if (lower != 'd' && lower != 'w' && lower != 's') return 0;
    *negate = esc != lower;
    if (lower == 'd') cls_add(k, '0', '9');
    if (lower == 'w') { cls_add(k, '0', '9'); cls_add(k, 'a', 'z'); cls_add(k, 'A', 'Z'); cls_add(k, '_', '_'); }
    if (lower == 's')
        for (size_t j = 0; j < sizeof space / sizeof *space; j += 2) cls_add(k, space[j], space[j + 1]);
    return 1;
}

/* The character of a single-character escape (after the backslash), or -1. */
static int32_t escaped_char(rx *r) {
    int32_t e = next_char(r);
    switch (e) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case '0': return 0;
    case 'x': return hex_value(r, 2);
    case 'u': return hex_value(r, 4);
    default:
        if (e < 0 || (e < 0x80 && ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '1' && e <= '9'))))
            return -1; /* \b, backreferences, \p{...}: not supported */
        return e;
    }
}

static int class_rule(rx *r, const cls *k, bool negate) { return schema_char_class(r->c, k->r, k->n, negate); }

static int bracket(rx *r) {
    cls k = {.n = 0};
    bool negate = false;
    if (r->i < r->n && r->p[r->i] == '^') { negate = true; r->i++; }
    bool first = true;
    while (r->i < r->n && (r->p[r->i] != ']' || first)) {
        first = false;
        int32_t lo;
        if (r->p[r->i] == '\\') {
            r->i++;
            bool neg = false;
            if (r->i < r->n && shorthand(&k, r->p[r->i], &neg)) {
                if (neg) return rx_fail(r, "\\D, \\W or \\S inside [...] is not supported");
                r->i++;
                continue;
            }
            if ((lo = escaped_char(r)) < 0) return rx_fail(r, "unsupported escape");
        } else if ((lo = next_char(r)) < 0) {
            return rx_fail(r, "invalid UTF-8");
        }
        int32_t hi = lo;
        if (r->i + 1 < r->n && r->p[r->i] == '-' && r->p[r->i + 1] != ']') {
            r->i++;
            if (r->p[r->i] == '\\') {
                r->i++;
                if ((hi = escaped_char(r)) < 0) return rx_fail(r, "unsupported escape");
            } else if ((hi = next_char(r)) < 0) {
                return rx_fail(r, "invalid UTF-8");
            }
            if (hi < lo) return rx_fail(r, "a range out of order");
        }
        cls_add(&k, (uint32_t)lo, (uint32_t)hi);
    }
    if (r->i >= r->n) return rx_fail(r, "unterminated [");
    r->i++;
    if (k.n == 128) return rx_fail(r, "too many ranges in a class");
    return class_rule(r, &k, negate);
}

static int alternation(rx *r);

static int atom(rx *r) {
    int ch = r->p[r->i];
    cls k = {.n = 0};
    bool negate = false;
    switch (ch) {
    case '(': {
        r->i++;
        if (r->i < r->n && r->p[r->i] == '?') {
            if (r->i + 1 < r->n && r->p[r->i + 1] == ':') r->i += 2;
            else return rx_fail(r, "lookaround and named groups are not supported");
        }
        int g = alternation(r);
        if (g < 0) return -1;
        if (r->i >= r->n || r->p[r->i] != ')') return rx_fail(r, "missing )");
        r->i++;
        return g;
    }
    case '[': r->i++; return bracket(r);
    case '.':
        r->i++;
        cls_add(&k, '\n', '\n');
        cls_add(&k, '\r', '\r');
        cls_add(&k, 0x2028, 0x2029);
        return class_rule(r, &k, true);
    case '\\': {
        r->i++;
        if (r->i < r->n && shorthand(&k, r->p[r->i], &negate)) {
            r->i++;
            return class_rule(r, &k, negate);
        }
        int32_t e = escaped_char(r);
        if (e < 0) return rx_fail(r, "unsupported escape (\\b, backreferences and \\p are not supported)");
        cls_add(&k, (uint32_t)e, (uint32_t)e);
        return class_rule(r, &k, false);
    }
    case '*': case '+': case '?': case '{': return rx_fail(r, "nothing to repeat");
    case '^': case '$': return rx_fail(r, "^ and $ are supported only at the start and the end");
    default: {
        int32_t c = next_char(r);
        if (c < 0) return rx_fail(r, "invalid UTF-8");
        cls_add(&k, (uint32_t)c, (uint32_t)c);
        return class_rule(r, &k, false);
    }
    }
}

static int quantified(rx *r) {
    int a = atom(r);
    if (a < 0) return a;
    int min, max, q = g4g_quantifier((const char *)r->p, r->n, &r->i, &min, &max);
    if (q < 0) return rx_fail(r, "a bad {n,m} quantifier");
    if (q == 0) return a;
    if (r->i < r->n && r->p[r->i] == '?') r->i++; /* lazy: the same language */
    if (r->i < r->n && strchr("*+?{", r->p[r->i])) return rx_fail(r, "a quantifier after a quantifier");
    return g4g_repeat(r->c->b, a, min, max);
}

static int sequence(rx *r) {
    g4g_seq s = {0};
    while (r->i < r->n && r->p[r->i] != '|' && r->p[r->i] != ')') {
        int q = quantified(r);
        if (q < 0) {
            g4g_seq_free(&s);
            return -1;
        }
        g4g_seq_rule(r->c->b, &s, q);
    }
    return g4g_rule_of(r->c->b, &s);
}

static int alternation(rx *r) {
    int rule = g4g_rule(r->c->b, "regex");
    for (;;) {
        int s = sequence(r);
        if (s < 0) return -1;
        g4g_seq q = {0};
        g4g_seq_rule(r->c->b, &q, s);
        g4g_alt(r->c->b, rule, &q);
        if (r->i < r->n && r->p[r->i] == '|') {
            r->i++;
            continue;
        }
        return rule;
    }
}

int regex_compile(schema_ctx *c, const char *pattern) {
    size_t n = strlen(pattern);
    bool start = n && pattern[0] == '^', end = false;
    if (n - start > 0 && pattern[n - 1] == '$') {
        size_t slashes = 0; /* an escaped \$ is a literal */
        for (size_t j = n - 1; j > start && pattern[j - 1] == '\\'; j--) slashes++;
        end = slashes % 2 == 0;
    }
    rx r = {c, (const unsigned char *)pattern, start, n - end, pattern};
    int body = alternation(&r);
    if (body < 0) return -1;
    if (r.i != r.n) return rx_fail(&r, "unbalanced )");
    static const uint32_t nothing[] = {0, 0};
    int any = -1;
    if (!start || !end) any = g4g_repeat(c->b, schema_char_class(c, nothing, 0, true), 0, -1);
    g4g_seq s = {0};
    if (!start) g4g_seq_rule(c->b, &s, any);
    g4g_seq_rule(c->b, &s, body);
    if (!end) g4g_seq_rule(c->b, &s, any);
    return g4g_rule_of(c->b, &s);
}
