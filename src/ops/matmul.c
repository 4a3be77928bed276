#include "ops/matmul.h"

#include "ops/half.h"
#include "ops/quant.h"
#include "ops/qdot.h"
#include "ops/qdot_x16.h"

#include <stdlib.h>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#ifdef __AVX2__
static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/* Four independent accumulators: one chain of FMAs would wait on its own
 * latency (attention heads are 256 or 512 floats, matrix rows thousands). */
float g4_dot_f32(const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    float s = 0;
#ifdef __AVX2__
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* out[h·out_stride] = q_h · k for NH rows q_h (q_stride apart) against one k:
 * k is loaded once per 8 elements and multiplied into every row's
 * accumulator (attention scores: a head group against one cached key). */
static inline __attribute__((always_inline)) void dot_rows(const int NH, const int F16, const float *q, int64_t q_stride,
                                                           const void *k, int64_t n, float *out, int64_t out_stride) {
    int64_t i = 0;
    float sum[8] = {0};
#ifdef __AVX2__
    __m256 acc[8];
#pragma GCC unroll 8
    for (int h = 0; h < NH; h++) acc[h] = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 kv = g4_load8_ps(k, i, F16);
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) acc[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * q_stride + i), kv, acc[h]);
    }
#pragma GCC unroll 8
    for (int h = 0; h < NH; h++) sum[h] = hsum256(acc[h]);
#endif
    for (int h = 0; h < NH; h++) {
        float s = sum[h];
        for (int64_t j = i; j < n; j++) s += q[h * q_stride + j] * g4_load_f32(k, j, F16);
        out[h * out_stride] = s;
    }
}

#ifdef __AVX2__
/* dot_rows at sixteen floats a step (n a multiple of 16). */
static inline __attribute__((target(G4_TARGET_AVX512F), always_inline)) void
dot_rows_512(const int NH, const int F16, const float *q, int64_t q_stride, const void *k, int64_t n, float *out,
             int64_t out_stride) {
    __m512 acc[8];
#pragma GCC unroll 8
    for (int h = 0; h < NH; h++) acc[h] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __m512 kv = g4_load16_ps(k, i, F16);
#pragma GCC unroll 8
        for (int h = 0; h < NH; h++) acc[h] = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * q_stride + i), kv, acc[h]);
    }
#pragma GCC unroll 8
    for (int h = 0; h < NH; h++) out[h * out_stride] = _mm512_reduce_add_ps(acc[h]);
}

/* The 8- and 4-row groups of dot_rows_keys with AVX-512; returns the rows done. */
static __attribute__((target(G4_TARGET_AVX512F))) int dot_rows_keys_512(int f16, const float *q, int64_t q_stride,
                                                                          int n_rows, const void *const *keys,
                                                                          int n_keys, int64_t n, float *out,
                                                                          int64_t out_stride) {
    int h = 0;
    for (; h + 8 <= n_rows; h += 8)
        for (int j = 0; j < n_keys; j++)
            if (f16) dot_rows_512(8, 1, q + h * q_stride, q_stride, keys[j], n, out + h * out_stride + j, out_stride);
            else dot_rows_512(8, 0, q + h * q_stride, q_stride, keys[j], n, out + h * out_stride + j, out_stride);
    for (; h + 4 <= n_rows; h += 4)
        for (int j = 0; j < n_keys; j++)
            if (f16) dot_rows_512(4, 1, q + h * q_stride, q_stride, keys[j], n, out + h * out_stride + j, out_stride);
            else dot_rows_512(4, 0, q + h * q_stride, q_stride, keys[j], n, out + h * out_stride + j, out_stride);
    return h;
}
#endif

static float dot_f16(const uint16_t *w, const float *x, int64_t n) {
    int64_t i = 0;
    float s = 0;
#if defined(__AVX2__) && defined(__F16C__)
    __m256 a0 = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), a0);
    s = hsum256(a0);
#endif
    for (; i < n; i++) s += g4_f16_to_f32(w[i]) * x[i];
    return s;
}

/* Groups of 8 and 4 rows share each load of a key; fewer rows keep
 * g4_dot_f32's four accumulator chains (one chain a row was slower: 0.5-0.8x). */
static inline __attribute__((always_inline)) void dot_rows_keys(const int F16, const float *q, int64_t q_stride,
                                                                int n_rows, const void *const *keys, int n_keys,
                                                                int64_t n, float *out, int64_t out_stride) {
    int h = 0;
    for (; h + 8 <= n_rows; h += 8)
        for (int j = 0; j < n_keys; j++) dot_rows(8, F16, q + h * q_stride, q_stride, keys[j], n, out + h * out_stride + j, out_stride);
    for (; h + 4 <= n_rows; h += 4)
        for (int j = 0; j < n_keys; j++) dot_rows(4, F16, q + h * q_stride, q_stride, keys[j], n, out + h * out_stride + j, out_stride);
    for (; h < n_rows; h++)
        for (int j = 0; j < n_keys; j++)
            out[h * out_stride + j] = F16 ? dot_f16(keys[j], q + h * q_stride, n) : g4_dot_f32(q + h * q_stride, keys[j], n);
}

int g4_wide_kernels(int64_t n) { return n % 16 == 0 && g4_qdot_variant() >= 2; }

void g4_dot_rows(const float *q, int64_t q_stride, int n_rows, const void *const *keys, int n_keys, int64_t n,
                 int flags, float *out, int64_t out_stride) {
    int f16 = flags & G4_ROWS_F16, h = 0;
#ifdef __AVX2__
    if ((flags & G4_ROWS_WIDE) && g4_wide_kernels(n))
        h = dot_rows_keys_512(f16, q, q_stride, n_rows, keys, n_keys, n, out, out_stride);
#endif
    q += h * q_stride;
    out += h * out_stride;
    if (f16) dot_rows_keys(1, q, q_stride, n_rows - h, keys, n_keys, n, out, out_stride);
    else dot_rows_keys(0, q, q_stride, n_rows - h, keys, n_keys, n, out, out_stride);
}

static float dot_bf16(const uint16_t *w, const float *x, int64_t n) {
    int64_t i = 0;
    float s = 0;
#ifdef __AVX2__
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        __m256i raw = _mm256_loadu_si256((const __m256i *)(w + i));
        __m256 lo = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(raw)), 16));
        __m256 hi = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(raw, 1)), 16));
        a0 = _mm256_fmadd_ps(lo, _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(hi, _mm256_loadu_ps(x + i + 8), a1);
    }
    s = hsum256(_mm256_add_ps(a0, a1));
#endif
    for (; i < n; i++) s += g4_bf16_to_f32(w[i]) * x[i];
    return s;
}

float g4_dot_row(const g4_tensor *W, int64_t row, const float *x) {
    int64_t in = W->shape[W->ndim - 1];
    if (W->repacked) { /* not on any hot path: the loader repacks only full matrix products */
        float *w = malloc(sizeof(float) * (size_t)in), s = 0;
        if (!w) return 0;
        g4_x16_row_to_f32(W->dtype, W->data, W->shape[W->ndim - 2], in, row, w);
        s = g4_dot_f32(w, x, in);
        free(w);
        return s;
    }
    const void *p = (const char *)W->data + (size_t)row * g4_dtype_row_bytes(W->dtype, in);
    switch (W->dtype) {
    case G4_DTYPE_F32: return g4_dot_f32(p, x, in);
    case G4_DTYPE_BF16: return dot_bf16(p, x, in);
    case G4_DTYPE_F16: return dot_f16(p, x, in);
    default: return g4_quant_dot_row(W->dtype, p, x, in); /* 0 for types the loader never admits */
    }
}

void g4_row_to_f32(const g4_tensor *W, int64_t row, float *out) {
    int64_t in = W->shape[W->ndim - 1];
    if (W->repacked) {
        g4_x16_row_to_f32(W->dtype, W->data, W->shape[W->ndim - 2], in, row, out);
        return;
    }
    const void *p = (const char *)W->data + (size_t)row * g4_dtype_row_bytes(W->dtype, in);
    switch (W->dtype) {
    case G4_DTYPE_F32: {
        const float *w = p;
        for (int64_t i = 0; i < in; i++) out[i] = w[i];
        break;
    }
    case G4_DTYPE_BF16: {
        const uint16_t *w = p;
        for (int64_t i = 0; i < in; i++) out[i] = g4_bf16_to_f32(w[i]);
        break;
    }
    case G4_DTYPE_F16: {
        const uint16_t *w = p;
        for (int64_t i = 0; i < in; i++) out[i] = g4_f16_to_f32(w[i]);
        break;
    }
    default: g4_dequantize_row(W->dtype, p, out, in); break; /* block types; a no-op for others */
    }
}

/* One product: float activations x, or (quantised weights) xq. */
typedef struct {
    const g4_tensor *W;
    const float *x;
    const g4_block_q8a *xq;
    float *y;
    int n;
} matmul_job;

/* Rows of W are the unit of work: each weight row is read from memory once
 * and reused for every token while it is in L1. */
static void matmul_rows(void *p, int begin, int end, int thread) {
    (void)thread;
    const matmul_job *j = p;
    int64_t in = j->W->shape[1], out = j->W->shape[0];
    /* Block types without an integer kernel (the K-quants unless
     * repacked): each row is decoded once, then dotted with every token. */
    float *row = g4_dtype_is_quantized(j->W->dtype) ? malloc(sizeof(float) * (size_t)in) : NULL;
    for (int o = begin; o < end; o++) {
        if (row) {
            g4_row_to_f32(j->W, o, row);
            for (int t = 0; t < j->n; t++) j->y[(int64_t)t * out + o] = g4_dot_f32(row, j->x + (int64_t)t * in, in);
        } else {
            for (int t = 0; t < j->n; t++) j->y[(int64_t)t * out + o] = g4_dot_row(j->W, o, j->x + (int64_t)t * in);
        }
    }
    free(row);
}

static void qmatmul_rows(void *p, int begin, int end, int thread) {
    (void)thread;
    const matmul_job *j = p;
    int64_t in = j->W->shape[1], out = j->W->shape[0], nb = in / 32;
    size_t row_bytes = g4_dtype_row_bytes(j->W->dtype, in);
    float tmp[16];
    /* 16 rows at a time, every token: the rows stay in L1 while each token's
     * activations pass over them. */
    for (int o = begin; o < end; o += 16) {
        int rows = end - o < 16 ? end - o : 16;
        const void *w = (const char *)j->W->data + (size_t)o * row_bytes;
        for (int t = 0; t < j->n; t++) {
            g4_qdot_rows(j->W->dtype, w, row_bytes, rows, j->xq + (int64_t)t * nb, in, tmp);
            for (int r = 0; r < rows; r++) j->y[(int64_t)t * out + o + r] = tmp[r];
        }
    }
}

/* Repacked weights: groups of 16 rows are the unit of work. */
static void x16_matmul_groups(void *p, int begin, int end, int thread) {
    (void)thread;
    const matmul_job *j = p;
    int64_t in = j->W->shape[1], out = j->W->shape[0];
    g4_x16_matmul(j->W->dtype, j->W->data, out, in, begin, end, j->xq, j->n, j->y + (int64_t)begin * G4_X16_ROWS, out);
}

/* x's n rows of `in` (a multiple of 32) as 8-bit blocks. */
static void quantize_rows(const float *x, int n, int64_t in, g4_block_q8a *xq) {
    for (int t = 0; t < n; t++) g4_quantize_activations(x + (int64_t)t * in, xq + (int64_t)t * (in / 32), in);
}

/* Groups of 16 rows taken by the threads four at a time (whole turns of
 * every type's layout, ops/qdot_x16.h), in shrinking chunks, not half each. */
static void run_groups(g4_threadpool *pool, int groups, g4_range_fn fn, void *job) {
    g4_parallel_for_shared(pool, groups, 4, fn, job);
}

/* Several repacked matrices: item i is group i of their groups laid end to end. */
typedef struct {
    matmul_job mat[G4_MATMUL_BATCH];
    int first[G4_MATMUL_BATCH + 1]; /* each matrix's first item */
    int k;
} batch_job;

static void x16_batch_groups(void *p, int begin, int end, int thread) {
    const batch_job *j = p;
    for (int i = 0; i < j->k; i++) {
        int b = begin > j->first[i] ? begin : j->first[i], e = end < j->first[i + 1] ? end : j->first[i + 1];
        if (b < e) x16_matmul_groups((void *)&j->mat[i], b - j->first[i], e - j->first[i], thread);
    }
}

/* The earlier product of p that reads the same input as p[i], or -1. */
static int same_input(const g4_product *p, int i) {
    for (int j = 0; j < i; j++)
        if (p[j].x == p[i].x && p[j].n == p[i].n && p[j].W->shape[1] == p[i].W->shape[1]) return j;
    return -1;
}

/* The products as one parallel job over their groups, each distinct input
 * quantised once into the pool's scratch; 0 (nothing done) unless they are
 * all repacked and the scratch could be had. */
static int run_batch(g4_threadpool *pool, const g4_product *p, int k) {
    size_t blocks = 0;
    if (k > G4_MATMUL_BATCH) return 0;
    for (int i = 0; i < k; i++) {
        if (!p[i].W->repacked || p[i].W->shape[1] % 32) return 0;
        if (same_input(p, i) < 0) blocks += (size_t)(p[i].W->shape[1] / 32) * (size_t)p[i].n;
    }
    g4_block_q8a *xq = blocks ? g4_threadpool_scratch(pool, sizeof *xq * blocks) : NULL;
    if (!xq) return 0;
    batch_job job = {.k = k};
    for (int i = 0; i < k; i++) {
        int64_t in = p[i].W->shape[1];
        int j = same_input(p, i);
        job.mat[i] = (matmul_job){p[i].W, NULL, j >= 0 ? job.mat[j].xq : xq, p[i].y, p[i].n};
        if (j < 0) {
            quantize_rows(p[i].x, p[i].n, in, xq);
            xq += (int64_t)p[i].n * (in / 32);
        }
        job.first[i + 1] = job.first[i] + (int)(p[i].W->shape[0] / G4_X16_ROWS);
    }
    run_groups(pool, job.first[k], x16_batch_groups, &job);
    return 1;
}

void g4_matmul_batch(g4_threadpool *pool, const g4_product *p, int k) {
    if (run_batch(pool, p, k)) return;
    for (int i = 0; i < k; i++) g4_matmul(pool, p[i].W, p[i].x, p[i].n, p[i].y);
}

/* At most half a core's L2 (2 MB on Zen 4), so what is read is still
 * there when the product starts. */
#define READ_AHEAD_MAX (1u << 20)
#define READ_AHEAD_TOKENS 4

void g4_matmul_read_ahead(g4_threadpool *pool, const g4_tensor *W, int n) {
    if (n > READ_AHEAD_TOKENS) return;
    g4_threadpool_read_ahead(pool, W->data, W->nbytes < READ_AHEAD_MAX ? W->nbytes : READ_AHEAD_MAX);
}

void g4_matmul(g4_threadpool *pool, const g4_tensor *W, const float *x, int n, float *y) {
    int64_t in = W->shape[1];
    /* Quantised weights: activations to 8 bits once, then integer dots
     * (repacked K-quants too; plain ones take the float path below). */
    if (W->repacked) {
        g4_product one = {W, x, n, y};
        if (run_batch(pool, &one, 1)) return;
    } else if (g4_qdot_supported(W->dtype) && in % 32 == 0) {
        g4_block_q8a *xq = g4_threadpool_scratch(pool, sizeof *xq * (size_t)(in / 32) * (size_t)n);
        if (xq) {
            quantize_rows(x, n, in, xq);
            matmul_job qjob = {W, NULL, xq, y, n};
            g4_parallel_for(pool, (int)W->shape[0], qmatmul_rows, &qjob);
            return;
        }
    }
    matmul_job job = {W, x, NULL, y, n};
    int64_t out = W->shape[0];
    /* Small products are not worth waking the workers for. */
    if (out * W->shape[1] * n < 32768) matmul_rows(&job, 0, (int)out, 0);
    else g4_parallel_for(pool, (int)out, matmul_rows, &job);
}
