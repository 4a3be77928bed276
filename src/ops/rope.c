#include "ops/rope.h"

#include <math.h>

void g4_rope_inv_freq(float *inv_freq, int n_pairs, int denominator, double theta) {
    for (int i = 0; i < n_pairs; i++)
        inv_freq[i] = 1.0f / powf((float)theta, (float)(2 * i) / (float)denominator);
}

void g4_rope_apply(float *x, int n_heads, int head_dim, const float *inv_freq, int n_pairs, int pos) {
    int half = head_dim / 2;
    for (int i = 0; i < n_pairs; i++) {
        float angle = (float)pos * inv_freq[i]; /* float32 product, as the reference computes it */
        float c = cosf(angle), s = sinf(angle);
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (long)h * head_dim;
            float a = v[i], b = v[i + half];
            v[i] = a * c - b * s;
            v[i + half] = b * c + a * s;
        }
    }
}
