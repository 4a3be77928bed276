#include "ops/activation.h"

#include <math.h>

float g4_gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* √(2/π) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

void g4_gelu_gate(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) out[i] = g4_gelu_tanh(gate[i]) * up[i];
}

void g4_softcap(float *x, int n, float cap) {
    for (int i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

void g4_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - mx); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void g4_scale(float *x, int n, float s) {
    for (int i = 0; i < n; i++) x[i] *= s;
}

void g4_add(float *acc, const float *x, int n) {
    for (int i = 0; i < n; i++) acc[i] += x[i];
}
