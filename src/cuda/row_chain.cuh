/* The row chain (gpu_row_chain, gpu.h) of one row by one block: every
 * value of the row in registers (value j of thread i is element
 * i + j·blockDim.x), so each step is one pass over registers and the row is
 * read from memory once. Run by row_chain_kernel (kernels.cu), and at
 * decode by every block of the router's GEMV for its own input (gemv.cu).
 * Activations are read through L2 (__ldcg). */
#ifndef G4_CUDA_ROW_CHAIN_CUH
#define G4_CUDA_ROW_CHAIN_CUH

#include "cuda/gpu.h"

/* RMSNorm scales of the block's sums of squares, NV at once: each warp adds
 * its lanes', then warp 0 adds the warps' and computes each scale once
 * (pow, not rsqrt, as the reference), and every thread gets them. (Every
 * warp finishing the sum and the pow itself made decode's one-block norms
 * issue-bound.) Sums in double, as ops/norm.c. */
template <int NV> static __device__ void block_rms(double (&ss)[NV], float (&scale)[NV], int dim, float eps) {
    __shared__ double part[NV][32];
    __shared__ float result[NV];
#pragma unroll
    for (int k = 0; k < NV; k++)
        for (int o = 16; o; o >>= 1) ss[k] += __shfl_xor_sync(0xffffffffu, ss[k], o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = (blockDim.x + 31) >> 5;
    __syncthreads(); /* part[] and result[] may still be read from a previous call */
    if (lane == 0)
#pragma unroll
        for (int k = 0; k < NV; k++) part[k][warp] = ss[k];
    __syncthreads();
    if (warp == 0)
#pragma unroll
        for (int k = 0; k < NV; k++) {
            double t = lane < n_warps ? part[k][lane] : 0.0;
            for (int o = 16; o; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
            if (lane == 0) result[k] = powf((float)(t / dim) + eps, -0.5f);
        }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < NV; k++) scale[k] = result[k];
}

template <int CHAIN_VALUES> static __device__ float chain_rms(const float *v, int dim, float eps) {
    double ss[1] = {0};
    float s[1];
#pragma unroll
    for (int j = 0; j < CHAIN_VALUES; j++) ss[0] += (double)v[j] * v[j];
    block_rms<1>(ss, s, dim, eps);
    return s[0];
}

/* The norm weights do not depend on the kernel before: they are on their
 * way into this SM's L1 while it finishes, instead of each costing a memory
 * round trip between two reductions (a decode chain is latency). */
static __device__ __forceinline__ void row_chain_prefetch(const gpu_row_chain &ch, int dim) {
    const int lines = (dim + 31) / 32;
    for (int j = threadIdx.x; j < (3 + GPU_CHAIN_OUTS) * lines; j += blockDim.x) {
        const int v = j / lines;
        const float *w = v == 0 ? ch.n1 : v == 1 ? ch.n2 : v == 2 ? ch.post : v - 3 >= ch.n_out ? NULL
                       : v == 3 ? ch.out[0].w : v == 4 ? ch.out[1].w : ch.out[2].w;
        if (w) asm volatile("prefetch.global.L1 [%0];" ::"l"(w + (j % lines) * 32));
    }
}

/* Row r: the residual read from h_in and written to h_out with the
 * outputs (h_out NULL: nothing written to memory); output xs_k, if given,
 * also to xs (shared memory, the caller's input). CHAIN_VALUES ≥ dim /
 * blockDim.x. ROWS: the experts' outputs are found through ch.moe_rows (a
 * prompt's, in expert order); a separate instantiation, so decode's keeps
 * its registers. MOE false: ch.moe_y is NULL (fewer registers). */
template <int CHAIN_VALUES, bool ROWS, bool MOE = true>
static __device__ __forceinline__ void row_chain_row(const float *h_in, float *h_out, const gpu_row_chain &ch, int64_t r,
                                                     int dim, float eps, float *xs = nullptr, int xs_k = -1) {
    float hv[CHAIN_VALUES], ov[CHAIN_VALUES];
#pragma unroll
    for (int j = 0; j < CHAIN_VALUES; j++) {
        int i = threadIdx.x + j * blockDim.x;
        hv[j] = i < dim ? __ldcg(h_in + r * dim + i) : 0.0f;
        ov[j] = i < dim && ch.o ? __ldcg(ch.o + r * dim + i) : 0.0f;
    }
    if (MOE && ch.moe_y) { /* the experts' weighted sum, then the two branches' norms */
        float ev[CHAIN_VALUES] = {0};
        /* several experts' loads in flight together (as registers allow: all 8 of the 26B-A4B's,
         * 3 values a thread, took its decode from 257.7 to 260.4 t/s), then their sums (k ascending) */
        const int CHAIN_EXPERTS = CHAIN_VALUES <= 3 ? 8 : CHAIN_VALUES <= 4 ? 4 : 2;
        for (int k0 = 0; k0 < ch.K; k0 += CHAIN_EXPERTS) {
            float wk[CHAIN_EXPERTS], yv[CHAIN_EXPERTS][CHAIN_VALUES];
#pragma unroll
            for (int kk = 0; kk < CHAIN_EXPERTS; kk++) {
                const int k = k0 + kk;
                const float *y = ch.moe_y + (ROWS ? ch.moe_rows[r * ch.K + (k < ch.K ? k : 0)] : r * ch.K + k) * dim;
                wk[kk] = k < ch.K ? __ldcg(ch.moe_weights + r * ch.K + k) : 0.0f;
#pragma unroll
                for (int j = 0; j < CHAIN_VALUES; j++) {
                    int i = threadIdx.x + j * blockDim.x;
                    yv[kk][j] = k < ch.K && i < dim ? __ldcg(y + i) : 0.0f;
                }
            }
#pragma unroll
            for (int kk = 0; kk < CHAIN_EXPERTS; kk++)
#pragma unroll
                for (int j = 0; j < CHAIN_VALUES; j++)
                    if (k0 + kk < ch.K && threadIdx.x + j * blockDim.x < dim) ev[j] += wk[kk] * yv[kk][j];
        }
        double ss[2] = {0, 0}; /* both branches' norms in one reduction */
        float sc[2];
#pragma unroll
        for (int j = 0; j < CHAIN_VALUES; j++) {
            ss[0] += (double)ov[j] * ov[j];
            ss[1] += (double)ev[j] * ev[j];
        }
        block_rms<2>(ss, sc, dim, eps);
        const float so = sc[0], se = sc[1];
#pragma unroll
        for (int j = 0; j < CHAIN_VALUES; j++) {
            int i = threadIdx.x + j * blockDim.x;
            if (i < dim) ov[j] = ov[j] * so * ch.n1[i] + ev[j] * se * ch.n2[i];
        }
    }
    if (ch.o) { /* the residual add */
        float s = chain_rms<CHAIN_VALUES>(ov, dim, eps);
#pragma unroll
        for (int j = 0; j < CHAIN_VALUES; j++) {
            int i = threadIdx.x + j * blockDim.x;
            if (i >= dim) continue;
            float v = hv[j] + ov[j] * s * ch.post[i];
            hv[j] = ch.scale == 1.0f ? v : v * ch.scale;
            if (h_out) h_out[r * dim + i] = hv[j];
        }
    }
    if (!ch.n_out) return;
    float s = chain_rms<CHAIN_VALUES>(hv, dim, eps);
#pragma unroll /* constant indices: the parameter struct is not copied to local memory */
    for (int k = 0; k < GPU_CHAIN_OUTS; k++) {
        if (k >= ch.n_out) break;
        const gpu_norm_out &o = ch.out[k];
#pragma unroll
        for (int j = 0; j < CHAIN_VALUES; j++) {
            int i = threadIdx.x + j * blockDim.x;
            if (i >= dim) continue;
            float v = (o.w ? hv[j] * s * o.w[i] : hv[j] * s) * o.extra;
            if (k == xs_k) xs[i] = v;
            if (!h_out) continue;
            if (o.out_bf16) o.out_bf16[r * dim + i] = __float2bfloat16_rn(v);
            else o.out[r * o.stride + i] = v;
        }
    }
}

#endif
