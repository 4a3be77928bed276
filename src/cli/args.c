#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int arg_int(const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "gemma4: %s: expected an integer from %ld to %ld, got \"%s\"\n", opt, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int arg_u64(const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-') {
        fprintf(stderr, "gemma4: %s: expected a non-negative integer, got \"%s\"\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int arg_float(const char *opt, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "gemma4: %s: expected a number from %g to %g, got \"%s\"\n", opt, lo, hi, s);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int arg_ids(const char *opt, const char *s, int32_t **ids, int *n) {
    int cap = 16, m = 0;
    int32_t *a = malloc(sizeof *a * (size_t)cap);
    if (!a) return -1;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "gemma4: %s: expected comma-separated token ids, got \"%s\"\n", opt, s);
            free(a);
            return -1;
        }
        if (m == cap) {
            int32_t *b = realloc(a, sizeof *a * (size_t)(cap *= 2));
            if (!b) { free(a); return -1; }
            a = b;
        }
        a[m++] = (int32_t)v;
        if (!*end) break;
        p = end + 1;
    }
    *ids = a;
    *n = m;
    return 0;
}

const char *arg_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "gemma4: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}
