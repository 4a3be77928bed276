/* Numbers of a JSON Schema: integers (optionally within minimum/maximum and
 * their exclusive forms) and numbers (with bounds: the integers within them). Digit counts are bounded (15 integer
 * digits, 15 fraction digits, a 2-digit exponent), so every value is finite
 * and an integer is exact in a double. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "grammar/schema.h"

#define MAX_MAGNITUDE 999999999999999LL /* 15 digits */

static int digit_range(g4g_builder *b, char lo, char hi) {
    g4g_seq s = {0};
    g4g_seq_byte_range(b, &s, (unsigned char)lo, (unsigned char)hi);
    return g4g_rule_of(b, &s);
}

/* The decimal strings from lo to hi, both n digits long (leading zeros
 * allowed: these are inner digits): equal first digits share it; otherwise
 * lo's first digit with the rest from lo's rest up to 9...9, the digits in
 * between with any rest, hi's first digit with the rest up to hi's rest. */
static int same_length(g4g_builder *b, const char *lo, const char *hi, int n) {
    g4g_seq s = {0};
    if (n == 0) return g4g_rule_of(b, &s);
    if (strspn(lo, "0") >= (size_t)n && strspn(hi, "9") >= (size_t)n) /* any n digits: no splitting */
        return g4g_repeat(b, digit_range(b, '0', '9'), n, n);
    if (lo[0] == hi[0]) {
        g4g_seq_literal(b, &s, lo, 1);
        g4g_seq_rule(b, &s, same_length(b, lo + 1, hi + 1, n - 1));
        return g4g_rule_of(b, &s);
    }
    static const char nines[] = "999999999999999", zeros[] = "000000000000000";
    int r = g4g_rule(b, "digits");
    g4g_seq_literal(b, &s, lo, 1);
    g4g_seq_rule(b, &s, same_length(b, lo + 1, nines, n - 1));
    g4g_alt(b, r, &s);
    if (lo[0] + 1 <= hi[0] - 1) {
        g4g_seq_rule(b, &s, digit_range(b, (char)(lo[0] + 1), (char)(hi[0] - 1)));
        g4g_seq_rule(b, &s, same_length(b, zeros, nines, n - 1));
        g4g_alt(b, r, &s);
    }
    g4g_seq_literal(b, &s, hi, 1);
    g4g_seq_rule(b, &s, same_length(b, zeros, hi + 1, n - 1));
    g4g_alt(b, r, &s);
    return r;
}

/* Magnitudes lo..hi (0 <= lo <= hi <= MAX_MAGNITUDE) without leading zeros,
 * one alternative per digit count. */
static int magnitude_range(g4g_builder *b, long long lo, long long hi) {
    int r = g4g_rule(b, "range");
    long long first = 0, last = 9;
    for (int n = 1; n <= 15 && first <= hi; n++) {
        long long a = lo > first ? lo : first, z = hi < last ? hi : last;
        if (a <= z) {
            char sa[24], sz[24];
            snprintf(sa, sizeof sa, "%lld", a);
            snprintf(sz, sizeof sz, "%lld", z);
            g4g_seq s = {0};
            g4g_seq_rule(b, &s, same_length(b, sa, sz, n));
            g4g_alt(b, r, &s);
        }
        first = last + 1;
        last = last * 10 + 9;
    }
    return r;
}

/* A bound keyword as an integer bound: *v, or *present 0. */
static int integer_bound(schema_ctx *c, const json_t *schema, const char *key, bool upper, long long *v, bool *present) {
    const json_t *x = json_object_get(schema, key);
    *present = x != NULL;
    if (!x) return 0;
    if (!json_is_number(x)) return schema_fail(c, "\"%s\" must be a number", key);
    double d = json_number_value(x);
    bool exclusive = strncmp(key, "exclusive", 9) == 0;
    double r = upper ? floor(d) : ceil(d);
    if (exclusive && r == d) r += upper ? -1 : 1;
    if (r > (double)MAX_MAGNITUDE) r = (double)MAX_MAGNITUDE + 1;
    if (r < -(double)MAX_MAGNITUDE) r = -(double)MAX_MAGNITUDE - 1;
    *v = (long long)r;
    return 0;
}

int schema_integer(schema_ctx *c, const json_t *schema) {
    g4g_builder *b = c->b;
    long long lo = -MAX_MAGNITUDE, hi = MAX_MAGNITUDE, v;
    static const char *const lows[] = {"minimum", "exclusiveMinimum"}, *const highs[] = {"maximum", "exclusiveMaximum"};
    bool present;
    for (int i = 0; i < 2; i++) {
        if (integer_bound(c, schema, lows[i], false, &v, &present)) return -1;
        if (present && v > lo) lo = v;
        if (integer_bound(c, schema, highs[i], true, &v, &present)) return -1;
        if (present && v < hi) hi = v;
    }
    if (lo > hi) return schema_fail(c, "no integer lies within minimum/maximum");
    if (lo > MAX_MAGNITUDE || hi < -MAX_MAGNITUDE)
        return schema_fail(c, "integer bounds beyond 15 digits are not supported");
    int r = g4g_rule(b, "integer");
    g4g_seq s = {0};
    if (lo < 0) { /* -magnitude, magnitudes from max(1, -hi) to -lo */
        g4g_seq_literal(b, &s, "-", 1);
        g4g_seq_rule(b, &s, magnitude_range(b, hi < 0 ? -hi : 1, -lo));
        g4g_alt(b, r, &s);
    }
    if (hi >= 0) {
        g4g_seq_rule(b, &s, magnitude_range(b, lo > 0 ? lo : 0, hi));
        g4g_alt(b, r, &s);
    }
    return r;
}

int schema_number(schema_ctx *c, const json_t *schema) {
    static const char *const bounds[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
    for (size_t i = 0; schema && i < 4; i++) /* bounded numbers: the integers within (a subset) */
        if (json_object_get(schema, bounds[i])) return schema_integer(c, schema);
    g4g_builder *b = c->b;
    g4g_seq s = {0};
    g4g_seq_byte_range(b, &s, '0', '9');
    int digit = g4g_rule_of(b, &s);
    g4g_seq_literal(b, &s, ".", 1);
    g4g_seq_rule(b, &s, g4g_repeat(b, digit, 1, 15));
    int frac = g4g_repeat(b, g4g_rule_of(b, &s), 0, 1);
    static const uint32_t e[] = {'e', 'e', 'E', 'E'}, sign[] = {'+', '+', '-', '-'};
    g4g_seq_rule(b, &s, g4g_char_class(b, e, 2, false));
    g4g_seq_rule(b, &s, g4g_repeat(b, g4g_char_class(b, sign, 2, false), 0, 1));
    g4g_seq_rule(b, &s, g4g_repeat(b, digit, 1, 2));
    int expo = g4g_repeat(b, g4g_rule_of(b, &s), 0, 1);
    g4g_seq_rule(b, &s, schema_integer(c, NULL));
    g4g_seq_rule(b, &s, frac);
    g4g_seq_rule(b, &s, expo);
    return g4g_rule_of(b, &s);
}
