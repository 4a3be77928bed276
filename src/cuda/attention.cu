/* Attention over the KV cache (gemma4-architecture.md §3, scale 1.0, no
 * soft-cap): one block per (token, query head); its warps take every
 * ATTN_WARPS-th key of the token's window with an online softmax, each lane
 * holding head_dim/32 dimensions, and the warps' partial results are merged
 * at the end. Keys are found by each token's own sequence and position, so
 * a batch may mix sequences; sliding layers see the last `window` positions,
 * the token itself included. */
#include "cuda/gpu.h"

#include <math.h>

#define ATTN_WARPS 4

template <int PER_LANE>
static __global__ void __launch_bounds__(ATTN_WARPS * 32)
    attention_kernel(const float *q, int n_heads, int group, gpu_kv_layer kv, int window, const int32_t *pos,
                     const int32_t *seq, float *out) {
    const int hd = PER_LANE * 32;
    const int t = blockIdx.x / n_heads, head = blockIdx.x % n_heads;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    gpu_pdl_wait();
    const int64_t p = pos[t];
    const int64_t first = window && p - window + 1 > 0 ? p - window + 1 : 0;
    const float *qh = q + (int64_t)blockIdx.x * hd;
    const float *kbase = kv.k + (int64_t)seq[t] * kv.rows * kv.row_size + (int64_t)(head / group) * hd;
    const float *vbase = kv.v + (int64_t)seq[t] * kv.rows * kv.row_size + (int64_t)(head / group) * hd;

    float qr[PER_LANE], acc[PER_LANE];
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) { qr[i] = qh[i * 32 + lane]; acc[i] = 0; }
    float m = -INFINITY, l = 0;
    for (int64_t key = first + warp; key <= p; key += ATTN_WARPS) {
        int64_t slot = kv.ring ? key % kv.ring : key;
        const float *kr = kbase + slot * kv.row_size, *vr = vbase + slot * kv.row_size;
        float s = 0;
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) s += qr[i] * kr[i * 32 + lane];
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        float m_new = fmaxf(m, s), corr = expf(m - m_new), e = expf(s - m_new);
        l = l * corr + e;
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) acc[i] = acc[i] * corr + e * vr[i * 32 + lane];
        m = m_new;
    }

    __shared__ float sm_m[ATTN_WARPS], sm_l[ATTN_WARPS];
    __shared__ float sm_acc[ATTN_WARPS][PER_LANE * 32];
    if (lane == 0) { sm_m[warp] = m; sm_l[warp] = l; }
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) sm_acc[warp][i * 32 + lane] = acc[i];
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < ATTN_WARPS; w++) M = fmaxf(M, sm_m[w]);
    float L = 0, f[ATTN_WARPS];
    for (int w = 0; w < ATTN_WARPS; w++) {
        f[w] = sm_l[w] > 0 ? expf(sm_m[w] - M) : 0; /* a warp with no keys contributes nothing */
        L += sm_l[w] * f[w];
    }
    float *o = out + (int64_t)blockIdx.x * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float s = 0;
        for (int w = 0; w < ATTN_WARPS; w++) s += sm_acc[w][d] * f[w];
        o[d] = s / L;
    }
}

void gpu_attention(cudaStream_t st, const float *q, int n, int n_heads, int hd, const gpu_kv_layer *kv, int window,
                   const int32_t *pos, const int32_t *seq, float *out) {
    int group = n_heads / (int)(kv->row_size / hd);
    dim3 grid(n * n_heads), block(ATTN_WARPS * 32);
    switch (hd / 32) {
    case 1: gpu_launch(attention_kernel<1>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out); break;
    case 2: gpu_launch(attention_kernel<2>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out); break;
    case 4: gpu_launch(attention_kernel<4>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out); break;
    case 8: gpu_launch(attention_kernel<8>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out); break;
    default: gpu_launch(attention_kernel<16>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out); break;
    }
}
