/* Reading the fixtures' reference logits and comparing against them: shared
 * by tests/unit/test_fixtures.c and tests/cuda/test_gpu.c. */
#ifndef G4_TESTS_REFERENCE_H
#define G4_TESTS_REFERENCE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Exactly n floats from dir/name (a shorter or longer file is an error), or NULL. */
static inline float *read_f32(const char *dir, const char *name, size_t n) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *p = malloc(n * sizeof *p);
    size_t got = p ? fread(p, sizeof *p, n, f) : 0;
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        fprintf(stderr, "%s: expected %zu floats\n", path, n);
        free(p);
        return NULL;
    }
    return p;
}

static inline float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

static inline int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

#endif
