/* The router's choice for one token, by one warp (gemma4-architecture.md
 * §5.2, as src/model/moe.c): softmax over every expert, the top K (ties to
 * the lower index), renormalised over the chosen, times the per-expert
 * scales; written in ascending expert order, the order the reference
 * accumulates in. Each lane scans every 32nd expert (from shared memory)
 * in each of the K rounds of a warp arg-max. Logits are read through L2 (__ldcg): the caller
 * may be the last block of the kernel that wrote them. Shared by the top-k
 * kernel (moe.cu) and the router GEMV's last block (gemv.cu). */
#ifndef G4_CUDA_MOE_TOPK_CUH
#define G4_CUDA_MOE_TOPK_CUH

#include <math.h>

#define TOPK_MAX_EXPERTS 1024 /* one bit per lane and slot in `taken` */

/* sz: E floats of shared memory for this warp (the logits, read once). */
static __device__ void moe_topk_token(const float *logits, int t, int E, int K, const float *expert_scale, int *experts,
                                      float *weights, float *sz) {
    const int lane = threadIdx.x & 31;
    const float *z = logits + (int64_t)t * E;
    float mx = -INFINITY;
    for (int e = lane; e < E; e += 32) {
        sz[e] = __ldcg(z + e);
        mx = fmaxf(mx, sz[e]);
    }
    for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    double sum = 0;
    for (int e = lane; e < E; e += 32) sum += expf(sz[e] - mx);
    for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    float inv = (float)(1.0 / sum), picked = 0;
    uint32_t taken = 0; /* bit i: expert lane + 32 i is chosen */
    int mine = 0;       /* this lane's chosen expert for round `lane` (lane < K) */
    for (int k = 0; k < K; k++) {
        float best = -INFINITY;
        int best_e = E;
        for (int i = 0, e = lane; e < E; i++, e += 32)
            if (!(taken >> i & 1) && (sz[e] > best || best_e == E)) { best = sz[e]; best_e = e; }
        for (int o = 16; o; o >>= 1) {
            float ob = __shfl_xor_sync(0xffffffffu, best, o);
            int oe = __shfl_xor_sync(0xffffffffu, best_e, o);
            if (oe < E && (best_e == E || ob > best || (ob == best && oe < best_e))) { best = ob; best_e = oe; }
        }
        if (best_e % 32 == lane) taken |= 1u << (best_e / 32);
        if (lane == k) mine = best_e;
        picked += expf(best - mx) * inv;
    }
    /* lane k's rank among the chosen */
    int rank = 0;
    for (int j = 0; j < K; j++) {
        int other = __shfl_sync(0xffffffffu, mine, j);
        rank += j != lane && other < mine;
    }
    if (lane < K) {
        experts[(int64_t)t * K + rank] = mine;
        weights[(int64_t)t * K + rank] = expf(sz[mine] - mx) * inv / picked * expert_scale[mine];
    }
    __syncwarp();
}

#endif
