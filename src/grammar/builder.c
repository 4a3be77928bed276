/* Building a grammar: rules of alternatives, byte sets, UTF-8 character
 * classes, bounded repetition; then the checks and the flat form the
 * matcher runs on. */
#include "grammar/grammar.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "grammar/states.h"

typedef struct rule_def {
    g4g_seq *alts;
    int n, cap;
    char name[48];
} rule_def;

struct g4g_builder {
    const gemma4_tokenizer *tok;
    rule_def *rules;
    int n_rules, cap_rules;
    g4g_byteset *sets;
    int n_sets, cap_sets;
    int32_t special[64];
    int n_special;
    int32_t end_ids[4];
    int n_end;
    g4_error *err;
    bool failed;
};

#define GROW(ptr, n, cap, fail_expr)                                              \
    do {                                                                          \
        if ((n) >= (cap)) {                                                       \
            int new_cap_ = (cap) ? 2 * (cap) : 8;                                 \
            void *p_ = realloc((ptr), sizeof *(ptr) * (size_t)new_cap_);          \
            if (!p_) { fail_expr; }                                               \
            else { (ptr) = p_; (cap) = new_cap_; }                                \
        }                                                                         \
    } while (0)

int g4g_fail(g4g_builder *b, const char *fmt, ...) {
    if (!b->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err->msg, sizeof b->err->msg, fmt, ap);
        va_end(ap);
        b->failed = true;
    }
    return -1;
}

bool g4g_failed(const g4g_builder *b) { return b->failed; }
const gemma4_tokenizer *g4g_tokenizer(const g4g_builder *b) { return b->tok; }

g4g_builder *g4g_builder_new(const gemma4_tokenizer *tok, g4_error *err) {
    if (!tok) {
        g4_fail(err, "grammar: no tokenizer");
        return NULL;
    }
    g4g_builder *b = calloc(1, sizeof *b);
    if (!b) {
        g4_fail(err, "grammar: out of memory");
        return NULL;
    }
    b->tok = tok;
    b->err = err;
    return b;
}

void g4g_seq_free(g4g_seq *s) {
    free(s->v);
    memset(s, 0, sizeof *s);
}

void g4g_builder_free(g4g_builder *b) {
    if (!b) return;
    for (int r = 0; r < b->n_rules; r++) {
        for (int a = 0; a < b->rules[r].n; a++) g4g_seq_free(&b->rules[r].alts[a]);
        free(b->rules[r].alts);
    }
    free(b->rules);
    free(b->sets);
    free(b);
}

int g4g_rule(g4g_builder *b, const char *name) {
    GROW(b->rules, b->n_rules, b->cap_rules, return g4g_fail(b, "grammar: out of memory"));
    rule_def *r = &b->rules[b->n_rules];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name ? name : "");
    return b->n_rules++;
}

void g4g_alt(g4g_builder *b, int rule, g4g_seq *seq) {
    if (rule < 0 || b->failed) {
        g4g_seq_free(seq);
        return;
    }
    rule_def *r = &b->rules[rule];
    GROW(r->alts, r->n, r->cap, g4g_fail(b, "grammar: out of memory"); g4g_seq_free(seq); return);
    r->alts[r->n++] = *seq;
    memset(seq, 0, sizeof *seq);
}

int g4g_rule_of(g4g_builder *b, g4g_seq *seq) {
    int r = g4g_rule(b, NULL);
    g4g_alt(b, r, seq);
    return r;
}

int g4g_empty(g4g_builder *b) {
    g4g_seq s = {0};
    return g4g_rule_of(b, &s);
}

static void push(g4g_builder *b, g4g_seq *s, int kind, int arg) {
    GROW(s->v, s->n, s->cap, g4g_fail(b, "grammar: out of memory"); return);
    s->v[s->n++] = (g4g_elem){kind, arg};
}

void g4g_seq_rule(g4g_builder *b, g4g_seq *s, int rule) {
    if (rule < 0) return; /* the failure is already recorded */
    push(b, s, G4G_RULE, rule);
}

void g4g_seq_bytes(g4g_builder *b, g4g_seq *s, const g4g_byteset *set) {
    int i;
    for (i = 0; i < b->n_sets; i++)
        if (!memcmp(&b->sets[i], set, sizeof *set)) break;
    if (i == b->n_sets) {
        GROW(b->sets, b->n_sets, b->cap_sets, g4g_fail(b, "grammar: out of memory"); return);
        b->sets[b->n_sets++] = *set;
    }
    push(b, s, G4G_BYTES, i);
}

void g4g_seq_byte_range(g4g_builder *b, g4g_seq *s, unsigned lo, unsigned hi) {
    g4g_byteset set = {{0}};
    for (unsigned c = lo; c <= hi && c < 256; c++) g4g_byteset_add(&set, c);
    g4g_seq_bytes(b, s, &set);
}

void g4g_seq_literal(g4g_builder *b, g4g_seq *s, const char *text, size_t n) {
    for (size_t i = 0; i < n; i++) g4g_seq_byte_range(b, s, (unsigned char)text[i], (unsigned char)text[i]);
}

static int32_t special_id(g4g_builder *b, const char *text) {
    int32_t id = gemma4_token_id(b->tok, text);
    if (id < 0 || !g4_tok_is_added(b->tok->tok, id))
        return g4g_fail(b, "grammar: the tokenizer has no special token %s", text);
    return id;
}

int g4g_seq_token(g4g_builder *b, g4g_seq *s, const char *token_text) {
    int32_t id = special_id(b, token_text);
    if (id < 0) return -1;
    int i;
    for (i = 0; i < b->n_special && b->special[i] != id; i++) {}
    if (i == b->n_special) {
        if (b->n_special == (int)(sizeof b->special / sizeof *b->special))
            return g4g_fail(b, "grammar: too many different special tokens");
        b->special[b->n_special++] = id;
    }
    push(b, s, G4G_TOKEN, id);
    return 0;
}

int g4g_add_end_token(g4g_builder *b, const char *token_text) {
    int32_t id = gemma4_token_id(b->tok, token_text);
    if (id < 0) return 0; /* a tokenizer without it simply cannot end that way */
    if (b->n_end < 4) b->end_ids[b->n_end++] = id;
    return 0;
}

/* ---- UTF-8 character classes ---- */

static int encode_utf8(uint32_t c, uint8_t out[4]) {
    if (c < 0x80) { out[0] = (uint8_t)c; return 1; }
    if (c < 0x800) { out[0] = (uint8_t)(0xC0 | c >> 6); out[1] = (uint8_t)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        out[0] = (uint8_t)(0xE0 | c >> 12);
        out[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | c >> 18);
    out[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

/* Adds the UTF-8 encodings of [lo, hi] (same encoded length, not crossing
 * surrogates) to rule as alternatives of byte ranges: split until every
 * byte position is one contiguous range. */
static void utf8_range(g4g_builder *b, int rule, uint32_t lo, uint32_t hi) {
    static const uint32_t limits[] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++)
        if (lo <= limits[i] && hi > limits[i]) {
            utf8_range(b, rule, lo, limits[i]);
            utf8_range(b, rule, limits[i] + 1, hi);
            return;
        }
    if (hi < 0x80) {
        g4g_seq s = {0};
        g4g_seq_byte_range(b, &s, lo, hi);
        g4g_alt(b, rule, &s);
        return;
    }
    for (int i = 1; i < 4; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0) {
                utf8_range(b, rule, lo, lo | m);
                utf8_range(b, rule, (lo | m) + 1, hi);
                return;
            }
            if ((hi & m) != m) {
                utf8_range(b, rule, lo, (hi & ~m) - 1);
                utf8_range(b, rule, hi & ~m, hi);
                return;
            }
        }
    }
    uint8_t a[4], z[4];
    int n = encode_utf8(lo, a);
    encode_utf8(hi, z);
    g4g_seq s = {0};
    for (int i = 0; i < n; i++) g4g_seq_byte_range(b, &s, a[i], z[i]);
    g4g_alt(b, rule, &s);
}

static int cmp_u32_pair(const void *x, const void *y) {
    const uint32_t *a = x, *b = y;
    return a[0] < b[0] ? -1 : a[0] > b[0];
}

int g4g_char_class(g4g_builder *b, const uint32_t *ranges, int n_ranges, bool negate) {
    uint32_t *r = malloc(sizeof *r * 2 * (size_t)(n_ranges + 2));
    if (!r) return g4g_fail(b, "grammar: out of memory");
    int n = 0;
    for (int i = 0; i < n_ranges; i++) {
        uint32_t lo = ranges[2 * i], hi = ranges[2 * i + 1];
        if (lo > hi) { uint32_t t = lo; lo = hi; hi = t; }
        if (lo > 0x10FFFF) continue;
        if (hi > 0x10FFFF) hi = 0x10FFFF;
        r[2 * n] = lo;
        r[2 * n + 1] = hi;
        n++;
    }
    qsort(r, (size_t)n, 2 * sizeof *r, cmp_u32_pair);
    int m = 0; /* merge overlapping and touching ranges */
    for (int i = 0; i < n; i++) {
        if (m && r[2 * i] <= r[2 * m - 1] + 1) {
            if (r[2 * i + 1] > r[2 * m - 1]) r[2 * m - 1] = r[2 * i + 1];
        } else {
            r[2 * m] = r[2 * i];
            r[2 * m + 1] = r[2 * i + 1];
            m++;
        }
    }
    if (negate) { /* the gaps between the ranges; r has room for m + 1 of them */
        uint32_t next = 0;
        int k = 0;
        uint32_t *gaps = malloc(sizeof *gaps * 2 * (size_t)(m + 1));
        if (!gaps) { free(r); return g4g_fail(b, "grammar: out of memory"); }
        for (int i = 0; i < m; i++) {
            if (r[2 * i] > next) { gaps[2 * k] = next; gaps[2 * k + 1] = r[2 * i] - 1; k++; }
            next = r[2 * i + 1] + 1;
        }
        if (next <= 0x10FFFF) { gaps[2 * k] = next; gaps[2 * k + 1] = 0x10FFFF; k++; }
        free(r);
        r = gaps;
        m = k;
    }
    int rule = g4g_rule(b, "char-class");
    for (int i = 0; i < m; i++) {
        uint32_t lo = r[2 * i], hi = r[2 * i + 1];
        /* never a surrogate code point: they have no UTF-8 form */
        if (lo < 0xD800 && hi >= 0xD800) {
            utf8_range(b, rule, lo, 0xD7FF);
            lo = 0xE000;
        }
        if (lo >= 0xD800 && lo <= 0xDFFF) lo = 0xE000;
        if (lo <= hi) utf8_range(b, rule, lo, hi);
    }
    free(r);
    if (rule >= 0 && !b->failed && b->rules[rule].n == 0) return g4g_fail(b, "grammar: an empty character class");
    return rule;
}

/* ---- repetition ---- */

int g4g_repeat(g4g_builder *b, int item, int min, int max) {
    if (item < 0) return -1;
    if (min < 0 || (max >= 0 && max < min)) return g4g_fail(b, "grammar: bad repetition {%d,%d}", min, max);
    if (min > G4G_MAX_REPEAT || max > G4G_MAX_REPEAT)
        return g4g_fail(b, "grammar: a repetition bound above %d", G4G_MAX_REPEAT);
    int tail; /* what follows the min mandatory copies */
    if (max < 0) { /* star ::= item star | ε  (right recursion: the matcher keeps the stack flat) */
        tail = g4g_rule(b, "repeat");
        g4g_seq s = {0};
        g4g_seq_rule(b, &s, item);
        g4g_seq_rule(b, &s, tail);
        g4g_alt(b, tail, &s);
        g4g_alt(b, tail, &s); /* s is empty now: the ε alternative */
    } else { /* opt_k ::= item opt_{k-1} | ε */
        tail = g4g_empty(b);
        for (int k = 0; k < max - min; k++) {
            int r = g4g_rule(b, "repeat");
            g4g_seq s = {0};
            g4g_seq_rule(b, &s, item);
            g4g_seq_rule(b, &s, tail);
            g4g_alt(b, r, &s);
            g4g_alt(b, r, &s);
            tail = r;
        }
    }
    g4g_seq s = {0};
    for (int k = 0; k < min; k++) g4g_seq_rule(b, &s, item);
    g4g_seq_rule(b, &s, tail);
    return g4g_rule_of(b, &s);
}

static int read_count(const char *s, size_t n, size_t *i, int *v) {
    size_t start = *i;
    long x = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9' && x <= G4G_MAX_REPEAT) x = x * 10 + (s[(*i)++] - '0');
    *v = (int)x;
    return *i > start ? 0 : -1;
}

int g4g_quantifier(const char *s, size_t n, size_t *i, int *min, int *max) {
    if (*i >= n) return 0;
    switch (s[*i]) {
    case '*': *min = 0; *max = -1; break;
    case '+': *min = 1; *max = -1; break;
    case '?': *min = 0; *max = 1; break;
    case '{': {
        size_t k = *i + 1;
        if (read_count(s, n, &k, min)) return -1;
        *max = *min;
        if (k < n && s[k] == ',') {
            k++;
            *max = -1;
            if (k < n && s[k] != '}' && read_count(s, n, &k, max)) return -1;
        }
        if (k >= n || s[k] != '}') return -1;
        *i = k + 1;
        return 1;
    }
    default: return 0;
    }
    (*i)++;
    return 1;
}

/* ---- finishing ---- */

#define INF_LEN (1 << 29)

static int sat_add(int a, int b) { return a + b >= INF_LEN ? INF_LEN : a + b; }

/* Fewest bytes each rule can match; INF_LEN for a rule that cannot finish. */
static int *rule_min_lengths(const g4g_builder *b) {
    int *len = malloc(sizeof *len * (size_t)b->n_rules);
    if (!len) return NULL;
    for (int r = 0; r < b->n_rules; r++) len[r] = INF_LEN;
    for (bool changed = true; changed;) {
        changed = false;
        for (int r = 0; r < b->n_rules; r++)
            for (int a = 0; a < b->rules[r].n; a++) {
                const g4g_seq *s = &b->rules[r].alts[a];
                int total = 0;
                for (int i = 0; i < s->n; i++)
                    total = sat_add(total, s->v[i].kind == G4G_RULE ? len[s->v[i].arg] : 1);
                if (total < len[r]) { len[r] = total; changed = true; }
            }
    }
    return len;
}

/* Depth-first search for a rule reachable from itself without consuming
 * anything (left recursion): the matcher could not expand it. */
static int left_recursive(const g4g_builder *b, const int *min_len, int r, uint8_t *mark) {
    if (mark[r] == 1) return r;
    if (mark[r] == 2) return -1;
    mark[r] = 1;
    for (int a = 0; a < b->rules[r].n; a++) {
        const g4g_seq *s = &b->rules[r].alts[a];
        for (int i = 0; i < s->n; i++) {
            if (s->v[i].kind != G4G_RULE) break;
            int found = left_recursive(b, min_len, s->v[i].arg, mark);
            if (found >= 0) return found;
            if (min_len[s->v[i].arg] != 0) break;
        }
    }
    mark[r] = 2;
    return -1;
}

static void grammar_free_parts(gemma4_grammar *g) {
    free(g->elems);
    free(g->alt_start);
    free(g->rule_alts);
    free(g->rest_min);
    free(g->bytesets);
    free(g->special_ids);
    g4g_trie_release(g->trie);
    g4g_states_free(g->states);
    free(g);
}

void gemma4_grammar_free(gemma4_grammar *g) {
    if (g) grammar_free_parts(g);
}

gemma4_grammar *g4g_finish(g4g_builder *b, int root) {
    if (b->failed || root < 0) {
        if (!b->failed) g4g_fail(b, "grammar: no root rule");
        return NULL;
    }
    for (int r = 0; r < b->n_rules; r++)
        if (b->rules[r].n == 0) {
            g4g_fail(b, "grammar: rule %s is used but never defined", b->rules[r].name[0] ? b->rules[r].name : "?");
            return NULL;
        }
    int *min_len = rule_min_lengths(b);
    uint8_t *mark = calloc((size_t)b->n_rules, 1);
    gemma4_grammar *g = calloc(1, sizeof *g);
    if (!min_len || !mark || !g) {
        g4g_fail(b, "grammar: out of memory");
        goto fail;
    }
    for (int r = 0; r < b->n_rules; r++) {
        int lr = left_recursive(b, min_len, r, mark);
        if (lr >= 0) {
            g4g_fail(b, "grammar: rule %s is left-recursive", b->rules[lr].name[0] ? b->rules[lr].name : "?");
            goto fail;
        }
    }
    if (min_len[root] >= INF_LEN) {
        g4g_fail(b, "grammar: the grammar cannot match any finite text");
        goto fail;
    }
    int n_alts = 0, n_elems = 0;
    for (int r = 0; r < b->n_rules; r++)
        for (int a = 0; a < b->rules[r].n; a++) {
            n_alts++;
            n_elems += b->rules[r].alts[a].n + 1;
        }
    g->elems = malloc(sizeof *g->elems * (size_t)n_elems);
    g->rest_min = malloc(sizeof *g->rest_min * (size_t)n_elems);
    g->alt_start = malloc(sizeof *g->alt_start * (size_t)n_alts);
    g->rule_alts = malloc(sizeof *g->rule_alts * (size_t)(b->n_rules + 1));
    g->bytesets = malloc(sizeof *g->bytesets * (size_t)(b->n_sets ? b->n_sets : 1));
    g->special_ids = malloc(sizeof *g->special_ids * (size_t)(b->n_special ? b->n_special : 1));
    if (!g->elems || !g->rest_min || !g->alt_start || !g->rule_alts || !g->bytesets || !g->special_ids) {
        g4g_fail(b, "grammar: out of memory");
        goto fail;
    }
    int e = 0, alt = 0;
    for (int r = 0; r < b->n_rules; r++) {
        g->rule_alts[r] = alt;
        for (int a = 0; a < b->rules[r].n; a++) {
            const g4g_seq *s = &b->rules[r].alts[a];
            g->alt_start[alt++] = e;
            if (s->n) memcpy(g->elems + e, s->v, sizeof *s->v * (size_t)s->n);
            g->elems[e + s->n] = (g4g_elem){G4G_END, 0};
            int rest = 0;
            for (int i = s->n; i >= 0; i--) {
                if (i < s->n) rest = sat_add(rest, s->v[i].kind == G4G_RULE ? min_len[s->v[i].arg] : 1);
                g->rest_min[e + i] = rest;
            }
            e += s->n + 1;
        }
    }
    g->rule_alts[b->n_rules] = alt;
    g->n_elems = n_elems;
    g->n_alts = n_alts;
    g->n_rules = b->n_rules;
    g->root = root;
    if (b->n_sets) memcpy(g->bytesets, b->sets, sizeof *b->sets * (size_t)b->n_sets);
    g->n_bytesets = b->n_sets;
    if (b->n_special) memcpy(g->special_ids, b->special, sizeof *b->special * (size_t)b->n_special);
    g->n_special = b->n_special;
    memcpy(g->end_ids, b->end_ids, sizeof b->end_ids);
    g->n_end = b->n_end;
    g->n_vocab = gemma4_tokenizer_n_vocab(b->tok);
    if (!(g->trie = g4g_trie_get(b->tok, b->err))) {
        b->failed = true;
        goto fail;
    }
    if (!(g->states = g4g_states_new(g))) {
        g4g_fail(b, "grammar: out of memory");
        goto fail;
    }
    free(min_len);
    free(mark);
    return g;
fail:
    free(min_len);
    free(mark);
    if (g) grammar_free_parts(g);
    return NULL;
}
