/* The router's choice for one token, by one block (gemma4-architecture.md
 * §5.2, as src/model/moe.c): softmax over every expert, the top K (ties to
 * the lower index), renormalised over the chosen, times the per-expert
 * scales; written in ascending expert order, the order the reference
 * accumulates in. Each thread ranks its experts against every other at once
 * (a count over shared memory): the K rounds of a warp arg-max this replaced
 * were a chain of dependent shuffles on every MoE layer's critical path (7.5
 * µs of the 26B-A4B's decode layer on an H100). Logits are read through L2
 * (__ldcg): the caller may be the last block of the kernel that wrote them.
 * Shared by the top-k kernel (moe.cu) and the router GEMV's last block
 * (gemv.cu); weights.cu checks the limits. The block needs at least one
 * warp. */
#ifndef G4_CUDA_MOE_TOPK_CUH
#define G4_CUDA_MOE_TOPK_CUH

#include <math.h>

#define TOPK_MAX_EXPERTS 1024
#define TOPK_MAX_K 32 /* the chosen are one warp's lanes */

struct topk_smem {
    float z[TOPK_MAX_EXPERTS];
    int chosen[TOPK_MAX_K]; /* by rank */
};

/* The block's choice for token t; every thread of the block calls it. Two
 * barriers: the logits into shared memory, the ranks; the rest is warp 0's. */
static __device__ void moe_topk_block(const float *logits, int t, int E, int K, const float *expert_scale, int *experts,
                                      float *weights, topk_smem &sm) {
    const int lane = threadIdx.x & 31;
    const float *z = logits + (int64_t)t * E;
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        const float v = __ldcg(z + e);
        sm.z[e] = v != v ? -INFINITY : v; /* NaN ranks last: the ranks stay a permutation */
    }
    __syncthreads();
    /* rank of expert e: experts with a larger logit, or an equal one and a lower index */
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        const float v = sm.z[e];
        int rank = 0;
#pragma unroll 8
        for (int j = 0; j < E; j++) rank += sm.z[j] > v || (sm.z[j] == v && j < e);
        if (rank < K) sm.chosen[rank] = e;
    }
    __syncthreads();
    if (threadIdx.x < 32) {
        const float mx = sm.z[sm.chosen[0]]; /* the largest */
        double sum = 0; /* the softmax's denominator, as the reference */
        for (int e = lane; e < E; e += 32) sum += expf(sm.z[e] - mx);
        for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        const float inv = (float)(1.0 / sum);
        const int mine = lane < K ? sm.chosen[lane] : 0;
        const float p = lane < K ? expf(sm.z[mine] - mx) * inv : 0.0f;
        float picked = 0; /* in rank order, as the reference */
        for (int k = 0; k < K; k++) picked += __shfl_sync(0xffffffffu, p, k);
        int at = 0; /* lane k's place among the chosen in expert order */
        for (int j = 0; j < K; j++) at += __shfl_sync(0xffffffffu, mine, j) < mine;
        if (lane < K) {
            experts[(int64_t)t * K + at] = mine;
            weights[(int64_t)t * K + at] = p / picked * expert_scale[mine];
        }
    }
    __syncthreads(); /* sm is the next token's */
}

#endif
