/* Matrix products with the weights: y = x · Wᵀ for a batch of activation rows.
 * - Few rows (decode): a bandwidth-bound GEMV. Each warp owns one output
 *   row and streams its weights with 16-byte loads (8 bf16 / 8 f32 / one
 *   32-element Q8_0 or Q4_0 block per lane and step), dequantising in
 *   registers; up to 8 activation rows share every weight load.
 * - Many rows of bf16 or f32 weights (prefill): cuBLAS on the tensor cores,
 *   activations rounded to bf16 for bf16 weights (as transformers computes a
 *   bf16 model), plain float32 SGEMM for f32 weights.
 * - Grouped: item p multiplies matrix matrix[p] of a stack with activation
 *   row p / x_div: a token's chosen experts in one launch. */
#include "cuda/gpu.h"

#include <stdlib.h>
#include <string.h>

#define GEMV_WARPS 8 /* output rows per block */

#define GEMV_MAX_MATS 3 /* matrices that share one input: q/k/v, gate/up */

typedef struct gemv_args {
    gpu_matrix w[GEMV_MAX_MATS]; /* output rows are w[0]'s, then w[1]'s, ... */
    float *y[GEMV_MAX_MATS];
    int64_t y_stride[GEMV_MAX_MATS];
    int64_t row_end[GEMV_MAX_MATS]; /* cumulative rows */
    int n_mats;
    const int *matrix; /* grouped: the matrix of the stack for each item; NULL: matrix 0 */
    const float *x;
    int64_t x_stride;
    int x_div;
    int n;
} gemv_args;

/* Elements a lane handles per step: one 16-byte load of codes. */
template <int DT> struct chunk { static const int elems = 8; };
template <> struct chunk<G4_DTYPE_Q8_0> { static const int elems = 32; };
template <> struct chunk<G4_DTYPE_Q4_0> { static const int elems = 32; };

static __device__ __forceinline__ void bf16x2_to_f32(uint32_t u, float *out) {
    out[0] = __uint_as_float(u << 16);
    out[1] = __uint_as_float(u & 0xffff0000u);
}

/* The CH weights of matrix mat, row row, from column c, as floats. */
template <int DT> static __device__ __forceinline__ void load_weights(const gpu_matrix &w, int64_t e, float *wv);

template <> __device__ __forceinline__ void load_weights<G4_DTYPE_BF16>(const gpu_matrix &w, int64_t e, float *wv) {
    uint4 u = __ldg((const uint4 *)((const __nv_bfloat16 *)w.data + e));
    bf16x2_to_f32(u.x, wv);
    bf16x2_to_f32(u.y, wv + 2);
    bf16x2_to_f32(u.z, wv + 4);
    bf16x2_to_f32(u.w, wv + 6);
}

template <> __device__ __forceinline__ void load_weights<G4_DTYPE_F32>(const gpu_matrix &w, int64_t e, float *wv) {
    const float4 *p = (const float4 *)((const float *)w.data + e);
    float4 u = __ldg(p), v = __ldg(p + 1);
    wv[0] = u.x; wv[1] = u.y; wv[2] = u.z; wv[3] = u.w;
    wv[4] = v.x; wv[5] = v.y; wv[6] = v.z; wv[7] = v.w;
}

template <> __device__ __forceinline__ void load_weights<G4_DTYPE_Q8_0>(const gpu_matrix &w, int64_t e, float *wv) {
    const uint4 *p = (const uint4 *)((const int8_t *)w.data + e);
    uint4 q[2] = {__ldg(p), __ldg(p + 1)};
    float d = __half2float(w.scales[e / 32]);
    const int8_t *b = (const int8_t *)q;
#pragma unroll
    for (int i = 0; i < 32; i++) wv[i] = d * b[i];
}

template <> __device__ __forceinline__ void load_weights<G4_DTYPE_Q4_0>(const gpu_matrix &w, int64_t e, float *wv) {
    uint4 q = __ldg((const uint4 *)((const uint8_t *)w.data + e / 2));
    float d = __half2float(w.scales[e / 32]);
    const uint8_t *b = (const uint8_t *)&q;
#pragma unroll
    for (int j = 0; j < 16; j++) {
        wv[j] = d * (float)((b[j] & 15) - 8);
        wv[j + 16] = d * (float)((b[j] >> 4) - 8);
    }
}

template <int DT, int NT> static __global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_kernel(gemv_args a) {
    const int CH = chunk<DT>::elems;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int64_t row = (int64_t)blockIdx.x * GEMV_WARPS + warp;
    if (row >= a.row_end[a.n_mats - 1]) return;
    int m = 0;
    while (row >= a.row_end[m]) m++;
    if (m) row -= a.row_end[m - 1];
    const gpu_matrix &w = a.w[m];
    const int item0 = blockIdx.y * NT;
    const int n_items = a.n - item0 < NT ? a.n - item0 : NT;
    const int64_t mat = a.matrix ? a.matrix[item0] : 0;
    const int64_t base = mat * w.rows * w.cols + row * w.cols;
    const float *x[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) x[t] = a.x + (int64_t)((item0 + (t < n_items ? t : 0)) / a.x_div) * a.x_stride;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0;
#pragma unroll 2
    for (int64_t c = (int64_t)lane * CH; c < w.cols; c += 32 * CH) {
        float wv[CH];
        load_weights<DT>(w, base + c, wv);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= n_items) break;
            const float4 *xp = (const float4 *)(x[t] + c);
            float s = 0;
#pragma unroll
            for (int i = 0; i < CH / 4; i++) {
                float4 v = __ldg(xp + i);
                s += wv[4 * i] * v.x + wv[4 * i + 1] * v.y + wv[4 * i + 2] * v.z + wv[4 * i + 3] * v.w;
            }
            acc[t] += s;
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float s = acc[t];
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0 && t < n_items) a.y[m][(int64_t)(item0 + t) * a.y_stride[m] + row] = s;
    }
}

template <int DT> static void launch_dt(cudaStream_t st, const gemv_args &a, int nt) {
    dim3 grid((unsigned)((a.row_end[a.n_mats - 1] + GEMV_WARPS - 1) / GEMV_WARPS), (unsigned)((a.n + nt - 1) / nt));
    switch (nt) {
    case 1: gemv_kernel<DT, 1><<<grid, GEMV_WARPS * 32, 0, st>>>(a); break;
    case 2: gemv_kernel<DT, 2><<<grid, GEMV_WARPS * 32, 0, st>>>(a); break;
    case 4: gemv_kernel<DT, 4><<<grid, GEMV_WARPS * 32, 0, st>>>(a); break;
    default: gemv_kernel<DT, 8><<<grid, GEMV_WARPS * 32, 0, st>>>(a); break;
    }
}

static int launch_gemv(g4_gpu_context *c, const gemv_args &a, int nt, g4_error *err) {
    switch (a.w[0].dtype) {
    case G4_DTYPE_F32: launch_dt<G4_DTYPE_F32>(c->stream, a, nt); break;
    case G4_DTYPE_BF16: launch_dt<G4_DTYPE_BF16>(c->stream, a, nt); break;
    case G4_DTYPE_Q8_0: launch_dt<G4_DTYPE_Q8_0>(c->stream, a, nt); break;
    case G4_DTYPE_Q4_0: launch_dt<G4_DTYPE_Q4_0>(c->stream, a, nt); break;
    default: return g4_fail(err, "the GPU backend has no kernel for %s weights", g4_dtype_name(a.w[0].dtype));
    }
    CUDA_TRY(cudaGetLastError());
    return 0;
}

/* Rows of activations from which cuBLAS beats re-reading the weights once
 * per 8 rows (G4_GPU_GEMM_MIN, read when a context is made, overrides it:
 * 1 sends every product through cuBLAS, for tests). */
extern "C" int gpu_gemm_min_rows(void) {
    const char *s = getenv("G4_GPU_GEMM_MIN");
    return s && atoi(s) > 0 ? atoi(s) : 128;
}

/* converted: c->x_bf16 already holds x rounded to bf16 (several matrices, one input). */
static int cublas_matmul(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
                         int64_t y_stride, int converted, g4_error *err) {
    const float one = 1, zero = 0;
    cublasStatus_t s;
    /* Row-major W[rows][cols] is column-major Wᵀ: y (column-major [rows][n]) = op(W)ᵀ x. */
    if (w->dtype == G4_DTYPE_F32) {
        s = cublasSgemm(c->gm->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, n, (int)w->cols, &one,
                        (const float *)w->data, (int)w->cols, x, (int)x_stride, &zero, y, (int)y_stride);
    } else {
        if ((int64_t)n * w->cols > c->x_bf16_cap) return g4_fail(err, "internal: bf16 activation scratch too small");
        if (!converted) gpu_to_bf16(c->stream, c->x_bf16, x, x_stride, n, w->cols);
        s = cublasGemmEx(c->gm->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, n, (int)w->cols, &one, w->data,
                         CUDA_R_16BF, (int)w->cols, c->x_bf16, CUDA_R_16BF, (int)w->cols, &zero, y, CUDA_R_32F,
                         (int)y_stride, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
    if (s != CUBLAS_STATUS_SUCCESS) return g4_fail(err, "cuBLAS GEMM failed (status %d)", (int)s);
    return 0;
}

/* One launch of the GEMV kernel for k matrices that read the same activations. */
static int gemv(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                const float *x, int64_t x_stride, int n, g4_error *err) {
    gemv_args a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < k; i++) {
        a.w[i] = *w[i];
        a.y[i] = y[i];
        a.y_stride[i] = y_stride[i];
        a.row_end[i] = (i ? a.row_end[i - 1] : 0) + w[i]->rows;
    }
    a.n_mats = k;
    a.x = x;
    a.x_stride = x_stride;
    a.x_div = 1;
    a.n = n;
    return launch_gemv(c, a, n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1, err);
}

static int tensor_core_type(g4_dtype t) { return t == G4_DTYPE_BF16 || t == G4_DTYPE_F32; }

int gpu_matmul_gemm(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
                    int64_t y_stride, g4_error *err) {
    if (n <= 0) return 0;
    if (!tensor_core_type(w->dtype)) return gemv(c, &w, &y, &y_stride, 1, x, x_stride, n, err);
    cublasSetStream(c->gm->cublas, c->stream);
    return cublas_matmul(c, w, x, x_stride, n, y, y_stride, 0, err);
}

int gpu_matmul(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
               int64_t y_stride, g4_error *err) {
    if (n <= 0) return 0;
    if (n >= c->gemm_min_rows && tensor_core_type(w->dtype)) return gpu_matmul_gemm(c, w, x, x_stride, n, y, y_stride, err);
    return gemv(c, &w, &y, &y_stride, 1, x, x_stride, n, err);
}

int gpu_matmul_multi(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                     const float *x, int64_t x_stride, int n, g4_error *err) {
    int fused = k <= GEMV_MAX_MATS && n < c->gemm_min_rows;
    for (int i = 1; i < k; i++) fused &= w[i]->dtype == w[0]->dtype;
    if (fused) return n > 0 ? gemv(c, w, y, y_stride, k, x, x_stride, n, err) : 0;
    int all_bf16 = n >= c->gemm_min_rows;
    for (int i = 0; i < k; i++) all_bf16 &= w[i]->dtype == G4_DTYPE_BF16 && w[i]->cols == w[0]->cols;
    if (all_bf16) { /* round the shared input once */
        cublasSetStream(c->gm->cublas, c->stream);
        for (int i = 0; i < k; i++)
            if (cublas_matmul(c, w[i], x, x_stride, n, y[i], y_stride[i], i > 0, err)) return -1;
        return 0;
    }
    for (int i = 0; i < k; i++)
        if (gpu_matmul(c, w[i], x, x_stride, n, y[i], y_stride[i], err)) return -1;
    return 0;
}

int gpu_matmul_bf16_input(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                          int n, g4_error *err) {
    cublasSetStream(c->gm->cublas, c->stream);
    for (int i = 0; i < k; i++) {
        if (w[i]->dtype != G4_DTYPE_BF16) return g4_fail(err, "internal: bf16 input for %s weights", g4_dtype_name(w[i]->dtype));
        if (cublas_matmul(c, w[i], NULL, 0, n, y[i], y_stride[i], 1, err)) return -1;
    }
    return 0;
}

int gpu_matmul_grouped(g4_gpu_context *c, const gpu_matrix *w, const int *matrix, const float *x, int64_t x_stride,
                       int x_div, int n, float *y, int64_t y_stride, g4_error *err) {
    if (n <= 0) return 0;
    gemv_args a;
    memset(&a, 0, sizeof a);
    a.w[0] = *w;
    a.y[0] = y;
    a.y_stride[0] = y_stride;
    a.row_end[0] = w->rows;
    a.n_mats = 1;
    a.matrix = matrix;
    a.x = x;
    a.x_stride = x_stride;
    a.x_div = x_div;
    a.n = n;
    return launch_gemv(c, a, 1, err);
}
