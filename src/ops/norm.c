#include "ops/norm.h"

#include <math.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

/* Σ x[i]² in double: the sum of squares of a 5376-wide row loses bits in
 * float. Four double accumulators of four lanes each, because one running
 * sum is a chain of dependent adds (a sixth of a decode step's serial time
 * went to norms that way). */
static double sum_squares(const float *x, int n) {
    int i = 0;
    double ss = 0;
#ifdef __AVX2__
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; k++) {
            __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k));
            acc[k] = _mm256_fmadd_pd(v, v, acc[k]);
        }
    __m256d a = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    ss = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
#endif
    for (; i < n; i++) ss += (double)x[i] * x[i];
    return ss;
}

void g4_rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    /* transformers uses pow(ms, -0.5), not rsqrt, for parity with JAX */
    float scale = powf((float)(sum_squares(x, n) / n) + eps, -0.5f);
    if (weight)
        for (int i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
    else
        for (int i = 0; i < n; i++) out[i] = x[i] * scale;
}
