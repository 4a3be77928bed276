/* Mixture-of-experts routing on the device (gemma4-architecture.md §5.2-5.3,
 * as src/model/moe.c): softmax over every expert, top-k, renormalisation,
 * per-expert scales, and the row gathers of prompt chunks. The experts
 * themselves run as one grouped matmul (gpu_matmul_grouped), reading only the
 * chosen matrices; their weighted sum, in ascending expert order, is the
 * first step of the row chain that follows (kernels.cu). */
#include "cuda/gpu.h"

#include <math.h>

/* One warp per token, each lane holding every 32nd expert: the top k are
 * k rounds of a warp arg-max (ties to the lower index, as moe.c). */
#define TOPK_MAX_PER_LANE 32 /* E <= 1024 */

static __global__ void topk_kernel(const float *logits, int n, int E, int K, const float *expert_scale, int *experts,
                                   float *weights) {
    int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    gpu_pdl_wait();
    if (t >= n) return;
    const float *z = logits + (int64_t)t * E;
    float zv[TOPK_MAX_PER_LANE]; /* expert lane + 32 i, in registers for the K rounds */
    float mx = -INFINITY;
#pragma unroll
    for (int i = 0; i < TOPK_MAX_PER_LANE; i++) {
        zv[i] = lane + 32 * i < E ? z[lane + 32 * i] : -INFINITY;
        mx = fmaxf(mx, zv[i]);
    }
    for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    double sum = 0;
#pragma unroll
    for (int i = 0; i < TOPK_MAX_PER_LANE; i++)
        if (lane + 32 * i < E) sum += expf(zv[i] - mx);
    for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    float inv = (float)(1.0 / sum), picked = 0;
    uint32_t taken = 0; /* bit i: expert lane + 32 i is chosen */
    int mine = 0;       /* this lane's chosen expert for round `lane` (lane < K) */
    for (int k = 0; k < K; k++) {
        float best = -INFINITY;
        int best_e = E;
#pragma unroll
        for (int i = 0; i < TOPK_MAX_PER_LANE; i++) {
            int e = lane + 32 * i;
            if (e < E && !(taken >> i & 1) && (zv[i] > best || best_e == E)) { best = zv[i]; best_e = e; }
        }
        for (int o = 16; o; o >>= 1) {
            float ob = __shfl_xor_sync(0xffffffffu, best, o);
            int oe = __shfl_xor_sync(0xffffffffu, best_e, o);
            if (oe < E && (best_e == E || ob > best || (ob == best && oe < best_e))) { best = ob; best_e = oe; }
        }
        if (best_e % 32 == lane) taken |= 1u << (best_e / 32);
        if (lane == k) mine = best_e;
        picked += expf(best - mx) * inv;
    }
    /* ascending expert order, the order the reference accumulates in: lane k's rank among the chosen */
    int rank = 0;
    for (int j = 0; j < K; j++) {
        int other = __shfl_sync(0xffffffffu, mine, j);
        rank += j != lane && other < mine;
    }
    if (lane < K) {
        experts[(int64_t)t * K + rank] = mine;
        weights[(int64_t)t * K + rank] = expf(z[mine] - mx) * inv / picked * expert_scale[mine];
    }
}

void gpu_moe_topk(cudaStream_t st, const float *logits, int n, int E, int K, const float *expert_scale, int *experts,
                  float *weights) {
    gpu_launch(topk_kernel, (n + 3) / 4, 128, st, logits, n, E, K, expert_scale, experts, weights);
}

static __global__ void gather_rows_kernel(float *dst, const float *src, const int *idx, int div, int dim, int scatter) {
    int64_t i = blockIdx.y, j = scatter ? idx[i] : i, k = scatter ? i : idx[i] / div;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < dim; c += gridDim.x * blockDim.x)
        dst[j * dim + c] = src[k * dim + c];
}

void gpu_gather_rows(cudaStream_t st, float *dst, const float *src, const int *idx, int div, int n, int dim, int scatter) {
    if (n > 0) gather_rows_kernel<<<dim3((dim + 255) / 256, n), 256, 0, st>>>(dst, src, idx, div, dim, scatter);
}
