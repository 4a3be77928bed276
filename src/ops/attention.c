#include "ops/attention.h"

#include "ops/activation.h"
#include "ops/half.h"
#include "ops/matmul.h"

#include <math.h>
#include <string.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

/* out += p · v */
static void axpy(float *out, float p, const float *v, int n) {
    int i = 0;
#ifdef __AVX2__
    __m256 vp = _mm256_set1_ps(p);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_fmadd_ps(vp, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
#endif
    for (; i < n; i++) out[i] += p * v[i];
}

/* Keys per chunk, and heads per pass (the chunk's scores live on the stack). */
enum { CHUNK = 128, MAX_GROUP = 16 };

/* out[h] = out[h] · rescale[h] + Σ_j p[h][j] · v[j] for NH heads (a
 * compile-time constant at each call): eight output dimensions at a time
 * with every head's accumulator in a register, so each value row is loaded
 * once per head group and no output is reloaded per key. */
static inline __attribute__((always_inline)) void weighted_values_nh(const int NH, const int F16, const void *const *v, int n,
                                                                      const float (*p)[CHUNK], const float *rescale,
                                                                      float *out, int64_t out_stride, int hd) {
    int d = 0;
#ifdef __AVX2__
    for (; d + 8 <= hd; d += 8) {
        __m256 acc[8];
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) acc[h] = _mm256_mul_ps(_mm256_set1_ps(rescale[h]), _mm256_loadu_ps(out + h * out_stride + d));
        for (int j = 0; j < n; j++) {
            __m256 x = g4_load8_ps(v[j], d, F16);
#pragma GCC unroll 8
            for (int h = 0; h < NH; h++) acc[h] = _mm256_fmadd_ps(_mm256_set1_ps(p[h][j]), x, acc[h]);
        }
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) _mm256_storeu_ps(out + h * out_stride + d, acc[h]);
    }
#endif
    for (; d < hd; d++)
        for (int h = 0; h < NH; h++) {
            float a = out[h * out_stride + d] * rescale[h];
            for (int j = 0; j < n; j++) a += p[h][j] * g4_load_f32(v[j], d, F16);
            out[h * out_stride + d] = a;
        }
}

#ifdef __AVX2__
/* weighted_values_nh at sixteen dimensions a step (hd a multiple of 16). */
static inline __attribute__((target(G4_TARGET_AVX512F), always_inline)) void
weighted_values_512(const int NH, const int F16, const void *const *v, int n, const float (*p)[CHUNK],
                    const float *rescale, float *out, int64_t out_stride, int hd) {
    for (int d = 0; d < hd; d += 16) {
        __m512 acc[8];
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) acc[h] = _mm512_mul_ps(_mm512_set1_ps(rescale[h]), _mm512_loadu_ps(out + h * out_stride + d));
        for (int j = 0; j < n; j++) {
            __m512 x = g4_load16_ps(v[j], d, F16);
#pragma GCC unroll 8
            for (int h = 0; h < NH; h++) acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[h][j]), x, acc[h]);
        }
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) _mm512_storeu_ps(out + h * out_stride + d, acc[h]);
    }
}

static __attribute__((target(G4_TARGET_AVX512F))) void weighted_values_t512(int f16, int nh, const void *const *v, int n,
                                                                              const float (*p)[CHUNK], const float *rescale,
                                                                              float *out, int64_t out_stride, int hd) {
#define WV512(NH)                                                                                                  \
    (f16 ? weighted_values_512(NH, 1, v, n, p, rescale, out, out_stride, hd)                                       \
         : weighted_values_512(NH, 0, v, n, p, rescale, out, out_stride, hd))
    switch (nh) {
    case 8: WV512(8); break;
    case 4: WV512(4); break;
    case 2: WV512(2); break;
    default: WV512(1); break;
    }
#undef WV512
}
#endif

static inline __attribute__((always_inline)) void weighted_values_t(const int F16, int nh, const void *const *v, int n,
                                                                     const float (*p)[CHUNK], const float *rescale,
                                                                     float *out, int64_t out_stride, int hd) {
    switch (nh) {
    case 8: weighted_values_nh(8, F16, v, n, p, rescale, out, out_stride, hd); break;
    case 4: weighted_values_nh(4, F16, v, n, p, rescale, out, out_stride, hd); break;
    case 2: weighted_values_nh(2, F16, v, n, p, rescale, out, out_stride, hd); break;
    default: weighted_values_nh(1, F16, v, n, p, rescale, out, out_stride, hd); break;
    }
}

static void weighted_values(int nh, int f16, int wide, const void *const *v, int n, const float (*p)[CHUNK],
                            const float *rescale, float *out, int64_t out_stride, int hd) {
#ifdef __AVX2__
    if (wide && g4_wide_kernels(hd)) {
        weighted_values_t512(f16, nh, v, n, p, rescale, out, out_stride, hd);
        return;
    }
#endif
    if (f16) weighted_values_t(1, nh, v, n, p, rescale, out, out_stride, hd);
    else weighted_values_t(0, nh, v, n, p, rescale, out, out_stride, hd);
}

/* Visible row j of base (kv->K or kv->V). */
static const void *row_of(const g4_kv_view *kv, const void *base, int64_t j) {
    int64_t s = kv->first + j;
    if (kv->ring && s >= kv->ring) s -= kv->ring;
    return (const char *)base + (size_t)(s * kv->row_stride) * (kv->f16 ? 2 : 4);
}


static void attend_heads(const g4_kv_view *kv, const float *q, int64_t q_stride, int n_q, int j0, int j1, float *out,
                         int64_t out_stride, float *m, float *l) {
    int hd = kv->head_dim;
    float sc[MAX_GROUP][CHUNK];
    for (int h = 0; h < n_q; h++) {
        m[h] = -INFINITY;
        l[h] = 0;
        memset(out + h * out_stride, 0, sizeof(float) * (size_t)hd);
    }
    for (int c0 = j0; c0 < j1; c0 += CHUNK) {
        int n = j1 - c0 < CHUNK ? j1 - c0 : CHUNK;
        const void *k[CHUNK];
        for (int j = 0; j < n; j++) k[j] = row_of(kv, kv->K, c0 + j);
        g4_dot_rows(q, q_stride, n_q, k, n, hd, (kv->f16 ? G4_ROWS_F16 : 0) | (kv->in_cache ? G4_ROWS_WIDE : 0),
                    &sc[0][0], CHUNK);
        float rescale[MAX_GROUP];
        for (int h = 0; h < n_q; h++) {
            float cm = -INFINITY;
            for (int j = 0; j < n; j++) cm = sc[h][j] > cm ? sc[h][j] : cm;
            float mx = cm > m[h] ? cm : m[h];
            rescale[h] = m[h] == -INFINITY ? 0.0f : expf(m[h] - mx);
            m[h] = mx;
            l[h] = l[h] * rescale[h] + (float)g4_exp_shifted(sc[h], n, mx);
        }
        const void *v[CHUNK];
        for (int j = 0; j < n; j++) v[j] = row_of(kv, kv->V, c0 + j);
        for (int h0 = 0; h0 < n_q;) {
            int nh = n_q - h0 >= 8 ? 8 : n_q - h0 >= 4 ? 4 : n_q - h0 >= 2 ? 2 : 1;
            weighted_values(nh, kv->f16, kv->in_cache, v, n, &sc[h0], rescale + h0, out + h0 * out_stride, out_stride, hd);
            h0 += nh;
        }
    }
}

void g4_attend_part(const g4_kv_view *kv, const float *q, int64_t q_stride, int n_q, int j0, int j1, float *out,
                    int64_t out_stride, float *m, float *l) {
    for (int h0 = 0; h0 < n_q; h0 += MAX_GROUP) {
        int n = n_q - h0 < MAX_GROUP ? n_q - h0 : MAX_GROUP;
        attend_heads(kv, q + h0 * q_stride, q_stride, n, j0, j1, out + h0 * out_stride, out_stride, m + h0, l + h0);
    }
}

void g4_attend_merge(int n_parts, int n_q, int head_dim, const float *parts, int64_t part_stride, float *result,
                     int64_t result_stride) {
    const float *m = parts + (int64_t)n_q * head_dim, *l = m + n_q;
    for (int h = 0; h < n_q; h++) {
        float mx = -INFINITY;
        for (int p = 0; p < n_parts; p++) mx = m[p * part_stride + h] > mx ? m[p * part_stride + h] : mx;
        float *r = result + h * result_stride;
        memset(r, 0, sizeof(float) * (size_t)head_dim);
        double total = 0;
        for (int p = 0; p < n_parts; p++) {
            float mp = m[p * part_stride + h];
            if (mp == -INFINITY) continue; /* an empty part */
            float w = expf(mp - mx);
            total += (double)w * l[p * part_stride + h];
            axpy(r, w, parts + p * part_stride + (int64_t)h * head_dim, head_dim);
        }
        float inv = (float)(1.0 / total);
        for (int d = 0; d < head_dim; d++) r[d] *= inv;
    }
}
