#include "ops/attention.h"

#include "ops/activation.h"

#include <string.h>

static float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void g4_attend(const float *q, const float *K, const float *V, int64_t row_stride, int64_t first, int n_keys,
               int64_t ring, int head_dim, float *scores, float *out) {
    for (int j = 0; j < n_keys; j++) {
        int64_t slot = ring ? (first + j) % ring : first + j;
        scores[j] = dot(q, K + slot * row_stride, head_dim);
    }
    g4_softmax(scores, n_keys);
    memset(out, 0, sizeof *out * (size_t)head_dim);
    for (int j = 0; j < n_keys; j++) {
        int64_t slot = ring ? (first + j) % ring : first + j;
        const float *v = V + slot * row_stride;
        float p = scores[j];
        for (int d = 0; d < head_dim; d++) out[d] += p * v[d];
    }
}
