#include "ops/half.h"

#include <math.h>

float g4_round_to_bf16(float x) { return g4_bf16_to_f32(g4_f32_to_bf16(x)); }

float g4_round_to_f16(float x) {
    if (!isfinite(x) || x == 0.0f) return x;
    float a = fabsf(x);
    if (a < 6.103515625e-05f) /* below the smallest normal half: fixed quantum 2^-24 */
        return copysignf(ldexpf(nearbyintf(ldexpf(a, 24)), -24), x);
    int e;
    float m = frexpf(a, &e);                     /* a = m * 2^e, m in [0.5, 1) */
    float r = ldexpf(nearbyintf(ldexpf(m, 11)), e - 11); /* 11 significant bits */
    if (r > 65504.0f) r = INFINITY;
    return copysignf(r, x);
}
