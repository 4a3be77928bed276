#include "chat/pystr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool g4_py_truthy(const json_t *v) {
    if (!v) return false;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return false;
    case JSON_TRUE: return true;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0;
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_ARRAY: return json_array_size(v) > 0;
    case JSON_OBJECT: return json_object_size(v) > 0;
    }
    return false;
}

void g4_py_float_repr(double x, char out[32]) {
    if (isnan(x)) { strcpy(out, "nan"); return; }
    if (isinf(x)) { strcpy(out, x > 0 ? "inf" : "-inf"); return; }
    if (x == 0.0) { strcpy(out, signbit(x) ? "-0.0" : "0.0"); return; }
    /* Shortest precision that round-trips: the correctly rounded digits of
     * that length are the ones Python's repr picks. */
    char e_form[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e_form, sizeof e_form, "%.*e", prec - 1, x);
        if (strtod(e_form, NULL) == x) break;
    }
    char digits[24];
    size_t nd = 0;
    const char *p = e_form;
    bool negative = *p == '-';
    if (negative) p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof digits - 1) digits[nd++] = *p;
    int exp10 = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';

    char *o = out;
    if (negative) *o++ = '-';
    if (exp10 < -4 || exp10 >= 16) {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, nd - 1);
            o += nd - 1;
        }
        snprintf(o, 8, "e%+03d", exp10);
        return;
    }
    int point = exp10 + 1; /* digits before the decimal point */
    if (point <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -point; i++) *o++ = '0';
        memcpy(o, digits, nd);
        o += nd;
    } else if ((size_t)point >= nd) {
        memcpy(o, digits, nd);
        o += nd;
        for (size_t i = nd; i < (size_t)point; i++) *o++ = '0';
        *o++ = '.';
        *o++ = '0';
    } else {
        memcpy(o, digits, (size_t)point);
        o += point;
        *o++ = '.';
        memcpy(o, digits + point, nd - (size_t)point);
        o += nd - (size_t)point;
    }
    *o = '\0';
}

/* One UTF-8 code point at s[0..n): returns its length, *cp = -1 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, long *cp) {
    unsigned c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) { *cp = -1; return 1; }
    long v = len == 1 ? (long)c : (long)(c & (0x7F >> len));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { *cp = -1; return 1; }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

static void repr_string(g4_strbuf *b, const char *s, size_t n) {
    bool has_single = memchr(s, '\'', n) != NULL, has_double = memchr(s, '"', n) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    g4_strbuf_putc(b, quote);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        long cp;
        size_t len = utf8_decode(u + i, n - i, &cp);
        char esc[8];
        if (cp == '\\' || cp == quote) {
            g4_strbuf_putc(b, '\\');
            g4_strbuf_putc(b, (char)cp);
        } else if (cp == '\n') {
            g4_strbuf_puts(b, "\\n");
        } else if (cp == '\r') {
            g4_strbuf_puts(b, "\\r");
        } else if (cp == '\t') {
            g4_strbuf_puts(b, "\\t");
        } else if ((cp >= 0 && cp < 0x20) || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) {
            snprintf(esc, sizeof esc, "\\x%02lx", cp);
            g4_strbuf_puts(b, esc);
        } else {
            g4_strbuf_append(b, s + i, len);
        }
        i += len;
    }
    g4_strbuf_putc(b, quote);
}

static void py_repr(g4_strbuf *b, const json_t *v) {
    if (json_is_string(v)) repr_string(b, json_string_value(v), json_string_length(v));
    else g4_py_str(b, v);
}

void g4_py_str(g4_strbuf *b, const json_t *v) {
    if (!v) return;
    char num[32];
    switch (json_typeof(v)) {
    case JSON_NULL: g4_strbuf_puts(b, "None"); break;
    case JSON_TRUE: g4_strbuf_puts(b, "True"); break;
    case JSON_FALSE: g4_strbuf_puts(b, "False"); break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        g4_strbuf_puts(b, num);
        break;
    case JSON_REAL:
        g4_py_float_repr(json_real_value(v), num);
        g4_strbuf_puts(b, num);
        break;
    case JSON_STRING: g4_strbuf_append(b, json_string_value(v), json_string_length(v)); break;
    case JSON_ARRAY: {
        g4_strbuf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) g4_strbuf_puts(b, ", ");
            py_repr(b, json_array_get(v, i));
        }
        g4_strbuf_putc(b, ']');
        break;
    }
    case JSON_OBJECT: {
        const char *key;
        const json_t *val;
        bool first = true;
        g4_strbuf_putc(b, '{');
        json_object_foreach((json_t *)v, key, val) {
            if (!first) g4_strbuf_puts(b, ", ");
            first = false;
            repr_string(b, key, strlen(key));
            g4_strbuf_puts(b, ": ");
            py_repr(b, val);
        }
        g4_strbuf_putc(b, '}');
        break;
    }
    }
}

static bool is_numeric(const json_t *v) {
    return json_is_number(v) || json_is_boolean(v);
}

static double numeric_value(const json_t *v) {
    if (json_is_boolean(v)) return json_is_true(v) ? 1.0 : 0.0;
    return json_number_value(v);
}

bool g4_py_equal(const json_t *a, const json_t *b) {
    bool a_none = !a || json_is_null(a), b_none = !b || json_is_null(b);
    if (a_none || b_none) return a_none && b_none;
    if (json_is_string(a) && json_is_string(b))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    if (is_numeric(a) && is_numeric(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return numeric_value(a) == numeric_value(b);
    }
    return json_equal((json_t *)a, (json_t *)b);
}

static bool py_isspace(long cp) {
    switch (cp) {
    case '\t': case '\n': case '\v': case '\f': case '\r':
    case 0x1C: case 0x1D: case 0x1E: case 0x1F: case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

void g4_py_strip(const char *s, size_t n, size_t *start, size_t *end) {
    const unsigned char *u = (const unsigned char *)s;
    size_t a = 0, z = n;
    while (a < z) {
        long cp;
        size_t len = utf8_decode(u + a, z - a, &cp);
        if (!py_isspace(cp)) break;
        a += len;
    }
    while (z > a) {
        size_t b = z - 1;
        while (b > a && (u[b] & 0xC0) == 0x80 && z - b < 4) b--;
        long cp;
        size_t len = utf8_decode(u + b, z - b, &cp);
        if (len != z - b || !py_isspace(cp)) break;
        z = b;
    }
    *start = a;
    *end = z;
}

void g4_py_append_stripped(g4_strbuf *b, const char *s, size_t n) {
    size_t a, z;
    g4_py_strip(s, n, &a, &z);
    g4_strbuf_append(b, s + a, z - a);
}

void g4_py_append_upper(g4_strbuf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        g4_strbuf_putc(b, c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c);
    }
}

static int fold_compare(const char *x, const char *y) {
    for (;; x++, y++) {
        unsigned char a = (unsigned char)*x, c = (unsigned char)*y;
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a - 'A' + 'a');
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (a != c || !a) return (int)a - (int)c;
    }
}

const char **g4_py_dictsort(const json_t *obj, size_t *n) {
    *n = 0;
    size_t count = json_object_size(obj);
    if (!count) return NULL;
    const char **keys = malloc(count * sizeof *keys), **tmp = malloc(count * sizeof *tmp);
    if (!keys || !tmp) {
        free(keys);
        free(tmp);
        *n = (size_t)-1;
        return NULL;
    }
    size_t i = 0;
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        (void)val;
        keys[i++] = key;
    }
    /* Bottom-up merge sort: stable, so equal folded keys keep insertion order. */
    for (size_t width = 1; width < count; width *= 2) {
        for (size_t lo = 0; lo < count; lo += 2 * width) {
            size_t mid = lo + width < count ? lo + width : count;
            size_t hi = lo + 2 * width < count ? lo + 2 * width : count;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi) tmp[o++] = fold_compare(keys[b], keys[a]) < 0 ? keys[b++] : keys[a++];
            while (a < mid) tmp[o++] = keys[a++];
            while (b < hi) tmp[o++] = keys[b++];
        }
        memcpy(keys, tmp, count * sizeof *keys);
    }
    free(tmp);
    *n = count;
    return keys;
}
