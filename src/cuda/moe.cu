/* Mixture-of-experts routing on the device (gemma4-architecture.md §5.2-5.3,
 * as src/model/moe.c): softmax over every expert, top-k, renormalisation,
 * per-expert scales, and the row gathers of prompt chunks. The experts
 * themselves run as one grouped matmul (gpu_matmul_grouped), reading only the
 * chosen matrices; their weighted sum, in ascending expert order, is the
 * first step of the row chain that follows (kernels.cu). */
#include "cuda/gpu.h"
#include "cuda/moe_topk.cuh"

#include <math.h>

/* One block per token (moe_topk.cuh). */
#define TOPK_THREADS 128
static __global__ void topk_kernel(const float *logits, int E, int K, const float *expert_scale, int *experts,
                                   float *weights) {
    __shared__ topk_smem sm;
    gpu_pdl_wait();
    moe_topk_block(logits, blockIdx.x, E, K, expert_scale, experts, weights, sm);
}

void gpu_moe_topk(cudaStream_t st, const float *logits, int n, int E, int K, const float *expert_scale, int *experts,
                  float *weights) {
    if (n > 0) gpu_launch(topk_kernel, n, TOPK_THREADS, st, logits, E, K, expert_scale, experts, weights);
}

static __global__ void gather_rows_kernel(float *dst, const float *src, const int *idx, int dim) {
    int64_t i = blockIdx.y, k = idx[i];
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < dim; c += gridDim.x * blockDim.x) dst[i * dim + c] = src[k * dim + c];
}

void gpu_gather_rows(cudaStream_t st, float *dst, const float *src, const int *idx, int n, int dim) {
    if (n > 0) gather_rows_kernel<<<dim3((dim + 255) / 256, n), 256, 0, st>>>(dst, src, idx, dim);
}

/* 8 values a thread where rows allow (prompt rows: 2816 wide and more). */
template <int VEC>
static __global__ void gather_rows_bf16_kernel(__nv_bfloat16 *dst, const float *src, const int *idx, int div, int dim,
                                               int *inverse) {
    const int64_t i = blockIdx.y, k = idx[i] / div;
    if (inverse && idx[i] >= 0 && blockIdx.x == 0 && threadIdx.x == 0) inverse[idx[i]] = (int)i;
    for (int c = (blockIdx.x * blockDim.x + threadIdx.x) * VEC; c < dim; c += gridDim.x * blockDim.x * VEC) {
        __nv_bfloat16 v[VEC];
#pragma unroll
        for (int j = 0; j < VEC; j++) v[j] = __float2bfloat16_rn(idx[i] < 0 ? 0.0f : src[k * dim + c + j]);
        if (VEC == 8) *(uint4 *)(dst + i * dim + c) = *(const uint4 *)v;
        else dst[i * dim + c] = v[0];
    }
}

void gpu_gather_rows_bf16(cudaStream_t st, __nv_bfloat16 *dst, const float *src, const int *idx, int div, int n, int dim,
                          int *inverse) {
    if (n <= 0) return;
    if (dim % 8 == 0) gather_rows_bf16_kernel<8><<<dim3((dim / 8 + 127) / 128, n), 128, 0, st>>>(dst, src, idx, div, dim, inverse);
    else gather_rows_bf16_kernel<1><<<dim3((dim + 255) / 256, n), 256, 0, st>>>(dst, src, idx, div, dim, inverse);
}
