#include "ops/norm.h"

#include <math.h>

void g4_rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    double ss = 0; /* double: the sum of squares of a 5376-wide row loses bits in float */
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    /* transformers uses pow(ms, -0.5), not rsqrt, for parity with JAX */
    float scale = powf((float)(ss / n) + eps, -0.5f);
    if (weight)
        for (int i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
    else
        for (int i = 0; i < n; i++) out[i] = x[i] * scale;
}
