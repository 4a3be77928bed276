#include "ops/attention.h"

#include "ops/activation.h"

#include <string.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

/* Four independent accumulators: a head is 256 or 512 floats, and one
 * chain of FMAs would wait on its own latency. */
static float dot(const float *a, const float *b, int n) {
    int i = 0;
    float s = 0;
#ifdef __AVX2__
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    __m256 t = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    s = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* out += p · v */
static void axpy(float *out, float p, const float *v, int n) {
    int i = 0;
#ifdef __AVX2__
    __m256 vp = _mm256_set1_ps(p);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(vp, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
#endif
    for (; i < n; i++) out[i] += p * v[i];
}

void g4_attend(const float *q, const float *K, const float *V, int64_t row_stride, int64_t first, int n_keys,
               int64_t ring, int head_dim, float *scores, float *out) {
    /* The visible slots are one run, or two where the ring wraps. */
    int64_t run = ring && first + n_keys > ring ? ring - first : n_keys;
    for (int j = 0; j < n_keys; j++) {
        int64_t slot = j < run ? first + j : j - run;
        scores[j] = dot(q, K + slot * row_stride, head_dim);
    }
    g4_softmax(scores, n_keys);
    memset(out, 0, sizeof *out * (size_t)head_dim);
    for (int j = 0; j < n_keys; j++) {
        int64_t slot = j < run ? first + j : j - run;
        axpy(out, scores[j], V + slot * row_stride, head_dim);
    }
}
