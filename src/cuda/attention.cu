/* Attention over the KV cache (gemma4-architecture.md §3, scale 1.0, no
 * soft-cap): one block per (token, query head) and key range; its warps take
 * every ATTN_WARPS-th key of the range with an online softmax, each lane
 * holding head_dim/32 dimensions, and the warps' partial results are merged
 * at the end. A decode step has too few (token, head) pairs to fill the GPU
 * (16 blocks for the 26B), so their windows are split over several blocks
 * whose results the last one to finish merges (flash decoding). Keys are found by each token's own sequence and position, so
 * a batch may mix sequences; sliding layers see the last `window` positions,
 * the token itself included. */
#include "cuda/gpu.h"

#include <math.h>
#include <string.h>

#define ATTN_WARPS 4
#define ATTN_SPLIT_KEYS 8 /* fewest keys worth a block of their own (G4_ATTN_SPLIT_KEYS) */
#define ATTN_MAX_SPLITS 512

/* The keys of (token, head) pair bh, split s of S: this block's share of the
 * window [first, p], merged with the other splits' by the last to finish. */
template <int PER_LANE>
static __global__ void __launch_bounds__(ATTN_WARPS * 32)
    attention_kernel(const float *q, int n_heads, int group, gpu_kv_layer kv, int window, const int32_t *pos,
                     const int32_t *seq, float *out, gpu_attn_split sp) {
    const int hd = PER_LANE * 32;
    const int bh = blockIdx.x, t = bh / n_heads, head = bh % n_heads, split = blockIdx.y, S = gridDim.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    gpu_pdl_wait();
    const int64_t p = pos[t];
    const int64_t first = window && p - window + 1 > 0 ? p - window + 1 : 0;
    /* at least ATTN_SPLIT_KEYS keys a split: short windows use fewer of the S blocks */
    const int64_t len = p - first + 1;
    int64_t chunk = (len + S - 1) / S;
    if (chunk < sp.min_keys) chunk = sp.min_keys;
    const int used = (int)((len + chunk - 1) / chunk);
    if (split >= used) return;
    const int64_t kbeg = first + split * chunk, kend = kbeg + chunk - 1 < p ? kbeg + chunk - 1 : p;
    const float *qh = q + (int64_t)bh * hd;
    const float *kbase = kv.k + (int64_t)seq[t] * kv.rows * kv.row_size + (int64_t)(head / group) * hd;
    const float *vbase = kv.v + (int64_t)seq[t] * kv.rows * kv.row_size + (int64_t)(head / group) * hd;

    float qr[PER_LANE], acc[PER_LANE];
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) { qr[i] = qh[i * 32 + lane]; acc[i] = 0; }
    float m = -INFINITY, l = 0;
    /* two keys per step, both rows requested before either score is reduced */
    for (int64_t key = kbeg + warp; key <= kend; key += 2 * ATTN_WARPS) {
        const bool two = key + ATTN_WARPS <= kend;
        int64_t slot = kv.ring ? key % kv.ring : key, slot2 = two ? (kv.ring ? (key + ATTN_WARPS) % kv.ring : key + ATTN_WARPS) : slot;
        const float *kr = kbase + slot * kv.row_size, *vr = vbase + slot * kv.row_size;
        const float *kr2 = kbase + slot2 * kv.row_size, *vr2 = vbase + slot2 * kv.row_size;
        float s = 0, s2 = 0;
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) { s += qr[i] * kr[i * 32 + lane]; s2 += qr[i] * kr2[i * 32 + lane]; }
        for (int o = 16; o; o >>= 1) {
            s += __shfl_xor_sync(0xffffffffu, s, o);
            s2 += __shfl_xor_sync(0xffffffffu, s2, o);
        }
        float m_new = fmaxf(m, two ? fmaxf(s, s2) : s), corr = expf(m - m_new), e = expf(s - m_new);
        float e2 = two ? expf(s2 - m_new) : 0.0f;
        l = l * corr + e + e2;
#pragma unroll
        for (int i = 0; i < PER_LANE; i++) acc[i] = acc[i] * corr + e * vr[i * 32 + lane] + e2 * vr2[i * 32 + lane];
        m = m_new;
    }
    __shared__ float sm_m[ATTN_WARPS], sm_l[ATTN_WARPS];
    __shared__ float sm_acc[ATTN_WARPS][PER_LANE * 32];
    __shared__ int sm_last;
    if (lane == 0) { sm_m[warp] = m; sm_l[warp] = l; }
#pragma unroll
    for (int i = 0; i < PER_LANE; i++) sm_acc[warp][i * 32 + lane] = acc[i];
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < ATTN_WARPS; w++)
        if (sm_l[w] > 0) M = fmaxf(M, sm_m[w]);
    float L = 0, f[ATTN_WARPS];
    for (int w = 0; w < ATTN_WARPS; w++) {
        f[w] = sm_l[w] > 0 ? expf(sm_m[w] - M) : 0; /* a warp with no keys contributes nothing */
        L += sm_l[w] * f[w];
    }
    float *o = out + (int64_t)bh * hd;
    if (used == 1) {
        for (int d = threadIdx.x; d < hd; d += blockDim.x) {
            float s = 0;
            for (int w = 0; w < ATTN_WARPS; w++) s += sm_acc[w][d] * f[w];
            o[d] = s / L;
        }
        return;
    }
    /* split: this block's unnormalised sums relative to its own maximum M, then
     * the last block of the pair to finish merges all `used` of them (in split order) */
    float *mine = sp.part + ((int64_t)bh * S + split) * (hd + 2);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float s = 0;
        for (int w = 0; w < ATTN_WARPS; w++) s += sm_acc[w][d] * f[w];
        mine[d] = s;
    }
    if (threadIdx.x == 0) { mine[hd] = M; mine[hd + 1] = L; }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        sm_last = atomicAdd(sp.count + bh, 1) == used - 1;
        if (sm_last) sp.count[bh] = 0; /* every split has counted: ready for the next launch */
    }
    __syncthreads();
    if (!sm_last) return;
    __threadfence();
    /* the merge: warp 0 finds the splits' common maximum, weights and denominator (a lane per
     * split), then every thread sums its dimensions' partial sums, whose loads are independent */
    __shared__ float sm_f[ATTN_MAX_SPLITS], sm_L;
    const float *all = sp.part + (int64_t)bh * S * (hd + 2);
    if (warp == 0) {
        float MM = -INFINITY, LL = 0;
        for (int s = lane; s < used; s += 32)
            if (__ldcg(all + s * (hd + 2) + hd + 1) > 0) MM = fmaxf(MM, __ldcg(all + s * (hd + 2) + hd));
        for (int k = 16; k; k >>= 1) MM = fmaxf(MM, __shfl_xor_sync(0xffffffffu, MM, k));
        for (int s = lane; s < used; s += 32) {
            float ls = __ldcg(all + s * (hd + 2) + hd + 1);
            sm_f[s] = ls > 0 ? expf(__ldcg(all + s * (hd + 2) + hd) - MM) : 0.0f; /* a split with no keys adds nothing */
            LL += ls * sm_f[s];
        }
        for (int k = 16; k; k >>= 1) LL += __shfl_xor_sync(0xffffffffu, LL, k);
        if (lane == 0) sm_L = LL;
    }
    __syncthreads();
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc_d = 0;
#pragma unroll 4
        for (int s = 0; s < used; s++) acc_d += __ldcg(all + s * (hd + 2) + d) * sm_f[s];
        o[d] = acc_d / sm_L;
    }
}

/* Splits per (token, head) pair: enough blocks for every SM twice over when
 * the pairs alone are too few (decode: 8 to 32 heads, one token). Fewer
 * pairs than target, so pairs · S < 2 · target: the scratch's size. */
static int attention_splits(const gpu_attn_split *sp, int pairs, int hd) {
    if (!sp || !sp->part || pairs >= sp->target || hd > sp->max_hd) return 1;
    int s = (sp->target + pairs - 1) / pairs;
    return s < ATTN_MAX_SPLITS ? s : ATTN_MAX_SPLITS;
}

void gpu_attention(cudaStream_t st, const float *q, int n, int n_heads, int hd, const gpu_kv_layer *kv, int window,
                   const int32_t *pos, const int32_t *seq, float *out, const gpu_attn_split *split) {
    int group = n_heads / (int)(kv->row_size / hd);
    gpu_attn_split sp;
    memset(&sp, 0, sizeof sp);
    if (split) sp = *split;
    if (sp.min_keys < 1) sp.min_keys = ATTN_SPLIT_KEYS;
    dim3 grid(n * n_heads, attention_splits(split, n * n_heads, hd)), block(ATTN_WARPS * 32);
    switch (hd / 32) {
    case 1: gpu_launch(attention_kernel<1>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp); break;
    case 2: gpu_launch(attention_kernel<2>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp); break;
    case 4: gpu_launch(attention_kernel<4>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp); break;
    case 8: gpu_launch(attention_kernel<8>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp); break;
    default: gpu_launch(attention_kernel<16>, grid, block, st, q, n_heads, group, *kv, window, pos, seq, out, sp); break;
    }
}
