/* Mixture-of-experts routing on the device (gemma4-architecture.md §5.2-5.3,
 * as src/model/moe.c): softmax over every expert, top-k, renormalisation,
 * per-expert scales, and the weighted sum of the chosen experts' outputs in
 * ascending expert order. The experts themselves run as one grouped matmul
 * (gpu_matmul_grouped), reading only the chosen matrices. */
#include "cuda/gpu.h"

#include <math.h>

/* One warp per token, each lane holding every 32nd expert: the top k are
 * k rounds of a warp arg-max (ties to the lower index, as moe.c). */
static __global__ void topk_kernel(const float *logits, int n, int E, int K, const float *expert_scale, int *experts,
                                   float *weights) {
    int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (t >= n) return;
    const float *z = logits + (int64_t)t * E;
    float mx = -INFINITY;
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, z[e]);
    for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    double sum = 0;
    for (int e = lane; e < E; e += 32) sum += expf(z[e] - mx);
    for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    float inv = (float)(1.0 / sum), picked = 0;
    uint32_t taken = 0; /* bit i: expert lane + 32 i is chosen (E <= 1024) */
    int chosen[32];
    for (int k = 0; k < K; k++) {
        float best = -INFINITY;
        int best_e = E;
        for (int e = lane, i = 0; e < E; e += 32, i++)
            if (!(taken >> i & 1) && (z[e] > best || best_e == E)) { best = z[e]; best_e = e; }
        for (int o = 16; o; o >>= 1) {
            float ob = __shfl_xor_sync(0xffffffffu, best, o);
            int oe = __shfl_xor_sync(0xffffffffu, best_e, o);
            if (oe < E && (best_e == E || ob > best || (ob == best && oe < best_e))) { best = ob; best_e = oe; }
        }
        if (best_e % 32 == lane) taken |= 1u << (best_e / 32);
        chosen[k] = best_e;
        picked += expf(z[best_e] - mx) * inv;
    }
    if (lane) return;
    for (int i = 1; i < K; i++) /* ascending expert order, the order the reference accumulates in */
        for (int j = i; j > 0 && chosen[j - 1] > chosen[j]; j--) {
            int tmp = chosen[j];
            chosen[j] = chosen[j - 1];
            chosen[j - 1] = tmp;
        }
    for (int k = 0; k < K; k++) {
        experts[(int64_t)t * K + k] = chosen[k];
        weights[(int64_t)t * K + k] = expf(z[chosen[k]] - mx) * inv / picked * expert_scale[chosen[k]];
    }
}

void gpu_moe_topk(cudaStream_t st, const float *logits, int n, int E, int K, const float *expert_scale, int *experts,
                  float *weights) {
    topk_kernel<<<(n + 3) / 4, 128, 0, st>>>(logits, n, E, K, expert_scale, experts, weights);
}

static __global__ void combine_kernel(float *out, const float *y, const float *weights, int K, int dim) {
    int64_t t = blockIdx.y;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x) {
        float acc = 0;
        for (int k = 0; k < K; k++) acc += weights[t * K + k] * y[(t * K + k) * dim + i];
        out[t * dim + i] = acc;
    }
}

void gpu_moe_combine(cudaStream_t st, float *out, const float *y, const float *weights, int n, int K, int dim) {
    int bx = (dim + 255) / 256;
    combine_kernel<<<dim3(bx, n), 256, 0, st>>>(out, y, weights, K, dim);
}

static __global__ void gather_rows_kernel(float *dst, const float *src, const int *idx, int div, int dim, int scatter) {
    int64_t i = blockIdx.y, j = scatter ? idx[i] : i, k = scatter ? i : idx[i] / div;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < dim; c += gridDim.x * blockDim.x)
        dst[j * dim + c] = src[k * dim + c];
}

void gpu_gather_rows(cudaStream_t st, float *dst, const float *src, const int *idx, int div, int n, int dim, int scatter) {
    if (n > 0) gather_rows_kernel<<<dim3((dim + 255) / 256, n), 256, 0, st>>>(dst, src, idx, div, dim, scatter);
}
