/* Matrix products of many activation rows (prefill) on the tensor cores,
 * through cuBLAS: y = x · Wᵀ.
 * - bf16 weights: activations rounded to bf16 (as transformers computes a
 *   bf16 model), float32 accumulation and output.
 * - Quantised weights (Q8_0, Q4_0 and the K-quant device forms): the same,
 *   after dequantising the matrix to bf16 into a scratch buffer, a slice of
 *   rows at a time. Re-reading the weights once per 8 rows through the GEMV
 *   made a 2048-token prompt of the 26B-A4B at Q4_0 run at 359 t/s. The
 *   rounding to bf16 (relative 2^-9) is 30 times finer than Q4_0's own step
 *   and 2 times finer than Q8_0's; activations are rounded alike.
 * - f32 weights: plain float32 SGEMM. */
#include "cuda/gpu.h"
#include "cuda/dequant.cuh"

#include <stdlib.h>

/* Rows of activations from which cuBLAS beats re-reading the weights once
 * per 8 rows (G4_GPU_GEMM_MIN, read when a context is made, overrides it:
 * 1 sends every product through cuBLAS, for tests). */
extern "C" int gpu_gemm_min_rows(void) {
    const char *s = getenv("G4_GPU_GEMM_MIN");
    return s && atoi(s) > 0 ? atoi(s) : 128;
}

int gpu_gemm_type(g4_dtype t) {
    switch ((int)t) {
    case G4_DTYPE_F32: case G4_DTYPE_BF16: case G4_DTYPE_Q8_0: case G4_DTYPE_Q4_0:
    case GPU_DTYPE_Q4_AFFINE32: case GPU_DTYPE_Q8_AFFINE16: return 1;
    default: return 0;
    }
}

int gpu_gemm_in_bf16(g4_dtype t) { return gpu_gemm_type(t) && t != G4_DTYPE_F32; }

int gpu_buffer_reserve(gpu_buffer *b, size_t bytes, g4_error *err) {
    if (bytes <= b->bytes) return 0;
    cudaFree(b->data); /* synchronises: earlier kernels may still read the old buffer */
    b->data = NULL;
    b->bytes = 0;
    if (cudaMalloc(&b->data, bytes) != cudaSuccess) {
        b->data = NULL;
        cudaGetLastError();
        return g4_fail(err, "cannot allocate %.2f GiB of GPU scratch", bytes / 1073741824.0);
    }
    b->bytes = bytes;
    return 0;
}

/* One thread a 16-byte load of codes: CH weights out as bf16. */
template <int DT> static __global__ void dequant_bf16_kernel(gpu_matrix w, int64_t e0, int64_t n_loads, __nv_bfloat16 *out) {
    const int CH = chunk<DT>::elems;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n_loads; i += (int64_t)gridDim.x * blockDim.x) {
        float wv[CH];
        load_weights<DT>(w, e0 + i * CH, wv);
        uint4 *o = (uint4 *)(out + i * CH);
#pragma unroll
        for (int k = 0; k < CH / 8; k++) {
            __nv_bfloat162 p[4];
#pragma unroll
            for (int j = 0; j < 4; j++) p[j] = __floats2bfloat162_rn(wv[8 * k + 2 * j], wv[8 * k + 2 * j + 1]);
            o[k] = *(uint4 *)p;
        }
    }
}

template <int DT> static void dequant_launch(cudaStream_t st, const gpu_matrix *w, int64_t e0, int64_t n, __nv_bfloat16 *out) {
    int64_t loads = n / chunk<DT>::elems, blocks = (loads + 255) / 256;
    dequant_bf16_kernel<DT><<<(unsigned)(blocks < 65536 ? blocks : 65536), 256, 0, st>>>(*w, e0, loads, out);
}

void gpu_dequant_bf16(cudaStream_t st, const gpu_matrix *w, int64_t row0, int64_t rows, __nv_bfloat16 *out) {
    int64_t e0 = row0 * w->cols, n = rows * w->cols; /* rows of the stack: matrix i's row r is i·rows + r */
    switch ((int)w->dtype) {
    case G4_DTYPE_Q8_0: dequant_launch<G4_DTYPE_Q8_0>(st, w, e0, n, out); break;
    case G4_DTYPE_Q4_0: dequant_launch<G4_DTYPE_Q4_0>(st, w, e0, n, out); break;
    case GPU_DTYPE_Q4_AFFINE32: dequant_launch<GPU_DTYPE_Q4_AFFINE32>(st, w, e0, n, out); break;
    case GPU_DTYPE_Q8_AFFINE16: dequant_launch<GPU_DTYPE_Q8_AFFINE16>(st, w, e0, n, out); break;
    default: break; /* callers pass quantised types only */
    }
}

/* Rows of a quantised matrix dequantised at once: the scratch is whatever
 * the experts already made it, and at least this (the 31B's MLP: 231 MB). */
#define DEQUANT_SLICE_BYTES ((size_t)256 << 20)

/* y[n][rows] = bf16 weights (rows × cols, row-major) · c->x_bf16ᵀ. */
static int gemm_bf16(g4_gpu_context *c, const void *w, int64_t rows, int64_t cols, int n, float *y, int64_t y_stride,
                     g4_error *err) {
    const float one = 1, zero = 0;
    /* Row-major W[rows][cols] is column-major Wᵀ: y (column-major [rows][n]) = op(W)ᵀ x. */
    cublasStatus_t s = cublasGemmEx(c->gm->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, n, (int)cols, &one, w, CUDA_R_16BF,
                                    (int)cols, c->x_bf16, CUDA_R_16BF, (int)cols, &zero, y, CUDA_R_32F, (int)y_stride,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) return g4_fail(err, "cuBLAS GEMM failed (status %d)", (int)s);
    return 0;
}

/* converted: c->x_bf16 already holds x rounded to bf16 (several matrices, one input). */
static int cublas_matmul(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
                         int64_t y_stride, int converted, g4_error *err) {
    cublasSetStream(c->gm->cublas, c->stream);
    if (w->dtype == G4_DTYPE_F32) {
        const float one = 1, zero = 0;
        cublasStatus_t s = cublasSgemm(c->gm->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, n, (int)w->cols, &one,
                                       (const float *)w->data, (int)w->cols, x, (int)x_stride, &zero, y, (int)y_stride);
        if (s != CUBLAS_STATUS_SUCCESS) return g4_fail(err, "cuBLAS SGEMM failed (status %d)", (int)s);
        return 0;
    }
    if (!gpu_gemm_type(w->dtype)) return g4_fail(err, "internal: no GEMM for %s weights", g4_dtype_name(w->dtype));
    if ((int64_t)n * w->cols > c->x_bf16_cap) return g4_fail(err, "internal: bf16 activation scratch too small");
    if (!converted) gpu_to_bf16(c->stream, c->x_bf16, x, x_stride, n, w->cols);
    if (w->dtype == G4_DTYPE_BF16) return gemm_bf16(c, w->data, w->rows, w->cols, n, y, y_stride, err);
    size_t row_bytes = sizeof(__nv_bfloat16) * (size_t)w->cols;
    size_t slice = c->dequant_slice_bytes ? c->dequant_slice_bytes : DEQUANT_SLICE_BYTES;
    if (c->w_bf16.bytes > slice && !c->dequant_slice_bytes) slice = c->w_bf16.bytes;
    int64_t slice_rows = (int64_t)(slice / row_bytes) < 1 ? 1 : (int64_t)(slice / row_bytes);
    if (slice_rows > w->rows) slice_rows = w->rows;
    if (gpu_buffer_reserve(&c->w_bf16, row_bytes * (size_t)slice_rows, err)) return -1;
    for (int64_t r0 = 0; r0 < w->rows; r0 += slice_rows) {
        int64_t m = w->rows - r0 < slice_rows ? w->rows - r0 : slice_rows;
        gpu_dequant_bf16(c->stream, w, r0, m, (__nv_bfloat16 *)c->w_bf16.data);
        if (gemm_bf16(c, c->w_bf16.data, m, w->cols, n, y + r0, y_stride, err)) return -1;
    }
    return 0;
}

int gpu_matmul_gemm(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
                    int64_t y_stride, g4_error *err) {
    if (n <= 0) return 0;
    return cublas_matmul(c, w, x, x_stride, n, y, y_stride, 0, err);
}

int gpu_matmul_gemm_multi(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                          const float *x, int64_t x_stride, int n, int converted, g4_error *err) {
    for (int i = 0; i < k; i++)
        if (cublas_matmul(c, w[i], x, x_stride, n, y[i], y_stride[i], converted || i > 0, err)) return -1;
    return 0;
}
