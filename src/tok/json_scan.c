#include "tok/json_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "tok/utf8.h"

#define TJ_MAX_DEPTH 64

void tj_init(tok_json *j, const char *s, size_t n) {
    memset(j, 0, sizeof *j);
    j->p = j->base = s;
    j->end = s + n;
}

void tj_free(tok_json *j) {
    free(j->buf);
    j->buf = NULL;
}

int tj_fail(tok_json *j, const char *what) {
    if (!j->err[0]) snprintf(j->err, sizeof j->err, "byte %zu: %s", (size_t)(j->p - j->base), what);
    return -1;
}

int tj_peek(tok_json *j) {
    /* Pretty-printed files are mostly indentation: whitespace runs are
     * skipped 16 bytes at a time where SSE2 is there. */
    const char *p = j->p, *end = j->end;
#ifdef __SSE2__
    const __m128i sp = _mm_set1_epi8(' '), nl = _mm_set1_epi8('\n');
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        unsigned ws = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, sp), _mm_cmpeq_epi8(x, nl)));
        if (ws == 0xffff) {
            p += 16;
            continue;
        }
        p += __builtin_ctz(~ws);
        if (*p != '\r' && *p != '\t') break;
        p++; /* rare whitespace: step over it and go on */
    }
#endif
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    j->p = p;
    return j->p < j->end ? (unsigned char)*j->p : -1;
}

int tj_expect(tok_json *j, char c) {
    if (tj_peek(j) != (unsigned char)c) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        return tj_fail(j, what);
    }
    j->p++;
    return 0;
}

static int hex4(const char *s, uint32_t *v) {
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *v = x;
    return 0;
}

/* The slow path: a string with escapes, from `start` (after the quote). */
static int string_escaped(tok_json *j, const char *start, const char **s, size_t *n) {
    size_t k = 0; /* bytes written to j->buf */
    const char *p = start;
    for (;;) {
        if (p >= j->end) return j->p = p, tj_fail(j, "unterminated string");
        if (k + 4 > j->cap) { /* room for one more character */
            size_t cap = j->cap ? j->cap * 2 : 256;
            char *b = realloc(j->buf, cap);
            if (!b) return tj_fail(j, "out of memory");
            j->buf = b;
            j->cap = cap;
        }
        char *o = j->buf + k;
        unsigned char c = (unsigned char)*p;
        if (c == '"') break;
        if (c < 0x20) return j->p = p, tj_fail(j, "control character in string");
        if (c >= 0x80) {
            uint32_t cp;
            size_t len = tok_utf8_next((const unsigned char *)p, (size_t)(j->end - p), &cp);
            if (!len) return j->p = p, tj_fail(j, "invalid UTF-8 in string");
            memcpy(o, p, len);
            k += len;
            p += len;
            continue;
        }
        if (c != '\\') {
            *o = (char)c;
            k++;
            p++;
            continue;
        }
        if (p + 1 >= j->end) return j->p = p, tj_fail(j, "unterminated string");
        char e = p[1], out = 0;
        p += 2;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (j->end - p < 4 || hex4(p, &cp)) return j->p = p, tj_fail(j, "bad \\u escape");
            p += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff) return j->p = p, tj_fail(j, "lone surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (j->end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return j->p = p, tj_fail(j, "lone surrogate in \\u escape");
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            k += tok_utf8_put(cp, o);
            continue;
        }
        default: return j->p = p, tj_fail(j, "bad escape in string");
        }
        *o = out;
        k++;
    }
    j->p = p + 1;
    *s = j->buf;
    *n = k;
    return 0;
}

int tj_string(tok_json *j, const char **s, size_t *n) {
    if (tj_peek(j) != '"') return tj_fail(j, "expected a string");
    const char *start = j->p + 1, *p = start, *end = j->end;
    while (p < end) {
#ifdef __SSE2__
        if (end - p >= 16) { /* plain ASCII goes 16 bytes at a time */
            __m128i x = _mm_loadu_si128((const __m128i *)p);
            /* '"', '\\', and (signed) bytes below 0x20: controls and non-ASCII */
            __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                                    _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                                       _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
            unsigned m = (unsigned)_mm_movemask_epi8(hit);
            if (!m) {
                p += 16;
                continue;
            }
            p += __builtin_ctz(m);
        }
#endif
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *s = start;
            *n = (size_t)(p - start);
            j->p = p + 1;
            return 0;
        }
        if (c == '\\') return string_escaped(j, start, s, n);
        if (c < 0x20) return j->p = p, tj_fail(j, "control character in string");
        if (c < 0x80) {
            p++;
            continue;
        }
        uint32_t cp;
        size_t k = tok_utf8_next((const unsigned char *)p, (size_t)(end - p), &cp);
        if (!k) return j->p = p, tj_fail(j, "invalid UTF-8 in string");
        p += k;
    }
    j->p = p;
    return tj_fail(j, "unterminated string");
}

/* Scans a number's syntax; *is_int says whether it had no fraction/exponent. */
static int scan_number(tok_json *j, int *is_int) {
    const char *p = j->p;
    *is_int = 1;
    if (p < j->end && *p == '-') p++;
    if (p >= j->end || *p < '0' || *p > '9') return tj_fail(j, "bad number");
    if (*p == '0') p++;
    else
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    if (p < j->end && *p == '.') {
        *is_int = 0;
        p++;
        if (p >= j->end || *p < '0' || *p > '9') return j->p = p, tj_fail(j, "bad number");
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        *is_int = 0;
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) p++;
        if (p >= j->end || *p < '0' || *p > '9') return j->p = p, tj_fail(j, "bad number");
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    j->p = p;
    return 0;
}

int tj_int(tok_json *j, int64_t lo, int64_t hi, int64_t *v) {
    int c = tj_peek(j);
    if (c != '-' && (c < '0' || c > '9')) return tj_fail(j, "expected an integer");
    const char *start = j->p;
    int is_int;
    if (scan_number(j, &is_int)) return -1;
    if (!is_int) return j->p = start, tj_fail(j, "expected an integer");
    int neg = *start == '-';
    int64_t x = 0;
    for (const char *p = start + neg; p < j->p; p++) {
        if (x > (INT64_MAX - 9) / 10) return j->p = start, tj_fail(j, "integer out of range");
        x = x * 10 + (*p - '0');
    }
    if (neg) x = -x;
    if (x < lo || x > hi) return j->p = start, tj_fail(j, "integer out of range");
    *v = x;
    return 0;
}

static int literal(tok_json *j, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n)) return 0;
    j->p += n;
    return 1;
}

int tj_bool(tok_json *j, int *v) {
    tj_peek(j);
    if (literal(j, "true")) return *v = 1, 0;
    if (literal(j, "false")) return *v = 0, 0;
    return tj_fail(j, "expected true or false");
}

int tj_null(tok_json *j) {
    tj_peek(j);
    return literal(j, "null");
}

static int skip_depth(tok_json *j, int depth) {
    if (depth > TJ_MAX_DEPTH) return tj_fail(j, "nesting too deep");
    int c = tj_peek(j);
    size_t n = 0;
    const char *s;
    size_t len;
    int is_int, rc;
    switch (c) {
    case '{':
        j->p++;
        while ((rc = tj_obj_next(j, &n, &s, &len)) == 1)
            if (skip_depth(j, depth + 1)) return -1;
        return rc;
    case '[':
        j->p++;
        while ((rc = tj_arr_next(j, &n)) == 1)
            if (skip_depth(j, depth + 1)) return -1;
        return rc;
    case '"': return tj_string(j, &s, &len);
    case 't':
    case 'f': return tj_bool(j, &is_int);
    case 'n': return tj_null(j) ? 0 : tj_fail(j, "bad literal");
    case -1: return tj_fail(j, "unexpected end of input");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return scan_number(j, &is_int);
        return tj_fail(j, "unexpected character");
    }
}

int tj_skip(tok_json *j) { return skip_depth(j, 0); }

/* Before member n (> 0): a comma or the closing bracket. */
static int next_member(tok_json *j, size_t *n, char close) {
    int c = tj_peek(j);
    if (c == close) {
        j->p++;
        return 0;
    }
    if (*n > 0) {
        if (c != ',') return tj_fail(j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        j->p++;
        if (tj_peek(j) == close) return tj_fail(j, "trailing comma");
    }
    if (c == -1) return tj_fail(j, "unexpected end of input");
    (*n)++;
    return 1;
}

int tj_obj_next(tok_json *j, size_t *n, const char **key, size_t *key_len) {
    int rc = next_member(j, n, '}');
    if (rc != 1) return rc;
    if (tj_string(j, key, key_len) || tj_expect(j, ':')) return -1;
    return 1;
}

int tj_arr_next(tok_json *j, size_t *n) { return next_member(j, n, ']'); }
