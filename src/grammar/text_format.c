/* The user grammar format (docs/grammar.md), GBNF-like:
 *
 *   root   ::= "{" ws item ("," ws item)* "}"     # comments run to the end of the line
 *   item   ::= [a-z]+ | "x"{2,5} | call
 *   call   ::= @"<|tool_call>" "call:f{}" @"<tool_call|>"
 *   ws     ::= [ \t\n]{0,4}
 *
 * "..." literal text (escapes \n \t \r \\ \" \xHH \uHHHH), [...] / [^...]
 * a character of a set of code points, . any character, @"..." one special
 * token, name a rule, ( ) grouping, | alternatives, * + ? {m} {m,} {m,n}
 * repetition. A rule runs until the next `name ::=`. The start is `root`. */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "grammar/grammar.h"

typedef struct named {
    char name[48];
    int rule;
    bool defined;
} named;

typedef struct reader {
    g4g_builder *b;
    const char *s;
    size_t i, n;
    int line;
    named *names;
    int n_names, cap_names;
} reader;

static int read_fail(reader *r, const char *what) { return g4g_fail(r->b, "grammar line %d: %s", r->line, what); }

static void skip_space(reader *r) {
    while (r->i < r->n) {
        char c = r->s[r->i];
        if (c == '#') {
            while (r->i < r->n && r->s[r->i] != '\n') r->i++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (c == '\n') r->line++;
            r->i++;
        } else {
            break;
        }
    }
}

static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static size_t name_len(const reader *r, size_t at) {
    size_t k = at;
    while (k < r->n && is_name_char(r->s[k])) k++;
    return k - at;
}

/* Is a `name ::=` at r->i (after spaces)? */
static bool at_definition(reader *r) {
    size_t len = name_len(r, r->i), k = r->i + len;
    if (!len) return false;
    while (k < r->n && (r->s[k] == ' ' || r->s[k] == '\t')) k++;
    return r->n - k >= 3 && !memcmp(r->s + k, "::=", 3);
}

static int rule_named(reader *r, const char *name, size_t len, bool define) {
    if (len >= sizeof r->names->name) return read_fail(r, "a rule name longer than 47 characters");
    for (int k = 0; k < r->n_names; k++)
        if (strlen(r->names[k].name) == len && !memcmp(r->names[k].name, name, len)) {
            if (define && r->names[k].defined) return read_fail(r, "a rule defined twice");
            r->names[k].defined |= define;
            return r->names[k].rule;
        }
    if (r->n_names == r->cap_names) {
        int cap = r->cap_names ? 2 * r->cap_names : 32;
        named *p = realloc(r->names, sizeof *p * (size_t)cap);
        if (!p) return g4g_fail(r->b, "grammar: out of memory");
        r->names = p;
        r->cap_names = cap;
    }
    named *nm = &r->names[r->n_names++];
    memcpy(nm->name, name, len);
    nm->name[len] = 0;
    nm->defined = define;
    nm->rule = g4g_rule(r->b, nm->name);
    return nm->rule;
}

static int hex(reader *r, int digits, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < digits; k++) {
        if (r->i >= r->n) return -1;
        char c = r->s[r->i++];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* One character of a literal or class: a code point (escapes decoded). */
static int read_char(reader *r, uint32_t *cp) {
    unsigned char c = (unsigned char)r->s[r->i];
    if (c == '\\') {
        r->i++;
        if (r->i >= r->n) return read_fail(r, "a lone backslash");
        char e = r->s[r->i++];
        switch (e) {
        case 'n': *cp = '\n'; return 0;
        case 't': *cp = '\t'; return 0;
        case 'r': *cp = '\r'; return 0;
        case 'x': return hex(r, 2, cp) ? read_fail(r, "a bad \\x escape") : 0;
        case 'u': return hex(r, 4, cp) ? read_fail(r, "a bad \\u escape") : 0;
        default: *cp = (unsigned char)e; return 0;
        }
    }
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || r->i + (size_t)len > r->n) return read_fail(r, "invalid UTF-8");
    uint32_t v = len == 1 ? c : c & (0x7Fu >> len);
    for (int k = 1; k < len; k++) v = v << 6 | ((unsigned char)r->s[r->i + (size_t)k] & 0x3F);
    r->i += (size_t)len;
    *cp = v;
    return 0;
}

static void append_utf8(char *buf, size_t *n, uint32_t c) {
    if (c < 0x80) buf[(*n)++] = (char)c;
    else if (c < 0x800) { buf[(*n)++] = (char)(0xC0 | c >> 6); buf[(*n)++] = (char)(0x80 | (c & 0x3F)); }
    else if (c < 0x10000) {
        buf[(*n)++] = (char)(0xE0 | c >> 12);
        buf[(*n)++] = (char)(0x80 | (c >> 6 & 0x3F));
        buf[(*n)++] = (char)(0x80 | (c & 0x3F));
    } else {
        buf[(*n)++] = (char)(0xF0 | c >> 18);
        buf[(*n)++] = (char)(0x80 | (c >> 12 & 0x3F));
        buf[(*n)++] = (char)(0x80 | (c >> 6 & 0x3F));
        buf[(*n)++] = (char)(0x80 | (c & 0x3F));
    }
}

/* "..." as bytes into buf (at most cap - 4 bytes). */
static int read_string(reader *r, char *buf, size_t cap, size_t *len) {
    r->i++; /* the opening quote */
    *len = 0;
    while (r->i < r->n && r->s[r->i] != '"') {
        if (r->s[r->i] == '\n') return read_fail(r, "a string runs past the end of the line");
        uint32_t cp;
        if (read_char(r, &cp)) return -1;
        if (*len + 4 >= cap) return read_fail(r, "a string longer than 4096 bytes");
        append_utf8(buf, len, cp);
    }
    if (r->i >= r->n) return read_fail(r, "an unterminated string");
    r->i++;
    return 0;
}

static int alternatives(reader *r, int rule);

static int primary(reader *r) {
    char c = r->s[r->i];
    char buf[4096];
    size_t len;
    if (c == '"') {
        if (read_string(r, buf, sizeof buf, &len)) return -1;
        g4g_seq s = {0};
        g4g_seq_literal(r->b, &s, buf, len);
        return g4g_rule_of(r->b, &s);
    }
    if (c == '@') {
        r->i++;
        if (r->i >= r->n || r->s[r->i] != '"') return read_fail(r, "@ must be followed by a \"token\"");
        if (read_string(r, buf, sizeof buf, &len)) return -1;
        buf[len] = 0;
        g4g_seq s = {0};
        if (g4g_seq_token(r->b, &s, buf)) return -1;
        return g4g_rule_of(r->b, &s);
    }
    if (c == '[') {
        r->i++;
        bool negate = r->i < r->n && r->s[r->i] == '^';
        if (negate) r->i++;
        uint32_t ranges[2 * 256];
        int n = 0;
        while (r->i < r->n && r->s[r->i] != ']') {
            if (n == 256) return read_fail(r, "more than 256 ranges in a class");
            uint32_t lo, hi;
            if (read_char(r, &lo)) return -1;
            hi = lo;
            if (r->i + 1 < r->n && r->s[r->i] == '-' && r->s[r->i + 1] != ']') {
                r->i++;
                if (read_char(r, &hi)) return -1;
            }
            ranges[2 * n] = lo;
            ranges[2 * n + 1] = hi;
            n++;
        }
        if (r->i >= r->n) return read_fail(r, "an unterminated [");
        r->i++;
        return g4g_char_class(r->b, ranges, n, negate);
    }
    if (c == '.') {
        r->i++;
        return g4g_char_class(r->b, NULL, 0, true);
    }
    if (c == '(') {
        r->i++;
        int g = g4g_rule(r->b, "group");
        if (alternatives(r, g)) return -1;
        if (r->i >= r->n || r->s[r->i] != ')') return read_fail(r, "missing )");
        r->i++;
        return g;
    }
    size_t nl = name_len(r, r->i);
    if (!nl) return read_fail(r, "expected a string, [class], ., @\"token\", (group) or rule name");
    int rule = rule_named(r, r->s + r->i, nl, false);
    r->i += nl;
    return rule;
}

static int postfix(reader *r) {
    int p = primary(r);
    if (p < 0) return p;
    int min, max, q = g4g_quantifier(r->s, r->n, &r->i, &min, &max);
    if (q < 0) return read_fail(r, "a bad {m,n}");
    return q ? g4g_repeat(r->b, p, min, max) : p;
}

/* seq ('|' seq)* into rule, until ')' or the next definition. */
static int alternatives(reader *r, int rule) {
    g4g_seq s = {0};
    for (;;) {
        skip_space(r);
        if (r->i >= r->n || r->s[r->i] == ')' || at_definition(r)) break;
        if (r->s[r->i] == '|') {
            r->i++;
            g4g_alt(r->b, rule, &s);
            continue;
        }
        int p = postfix(r);
        if (p < 0) {
            g4g_seq_free(&s);
            return -1;
        }
        g4g_seq_rule(r->b, &s, p);
    }
    g4g_alt(r->b, rule, &s);
    return g4g_failed(r->b) ? -1 : 0;
}

int gemma4_grammar_from_text(const gemma4_tokenizer *tok, const char *grammar_text, gemma4_grammar **out) {
    *out = NULL;
    g4_error *err = g4_api_error();
    if (!grammar_text) return g4_fail(err, "grammar: no text");
    g4g_builder *b = g4g_builder_new(tok, err);
    if (!b) return -1;
    reader r = {.b = b, .s = grammar_text, .n = strlen(grammar_text), .line = 1};
    int root = -1;
    for (skip_space(&r); r.i < r.n && !g4g_failed(b); skip_space(&r)) {
        if (!at_definition(&r)) {
            read_fail(&r, "expected `name ::= ...`");
            break;
        }
        size_t nl = name_len(&r, r.i);
        int rule = rule_named(&r, r.s + r.i, nl, true);
        if (rule < 0) break;
        r.i += nl;
        while (r.s[r.i] != ':') r.i++;
        r.i += 3;
        if (alternatives(&r, rule)) break;
        if (r.i < r.n && r.s[r.i] == ')') read_fail(&r, "unbalanced )");
    }
    for (int k = 0; k < r.n_names && !g4g_failed(b); k++) {
        if (!r.names[k].defined) g4g_fail(b, "grammar: rule %s is used but never defined", r.names[k].name);
        if (!strcmp(r.names[k].name, "root")) root = r.names[k].rule;
    }
    if (root < 0 && !g4g_failed(b)) g4g_fail(b, "grammar: no rule named root");
    g4g_add_end_token(b, "<turn|>");
    g4g_add_end_token(b, "<eos>");
    *out = g4g_finish(b, root);
    free(r.names);
    g4g_builder_free(b);
    return *out ? 0 : -1;
}
