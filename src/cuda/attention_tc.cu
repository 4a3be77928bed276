/* Prefill attention on the tensor cores: a block takes 64 consecutive query
 * tokens of one sequence and one head, and walks the keys of their windows
 * in chunks of 32, with Q, K, V and the probabilities rounded to bf16 and
 * float32 accumulation (as transformers computes a bf16 model with sdpa).
 * One pass with an online softmax (flash-attention style): the output stays
 * in the tensor-core accumulators, rescaled row by row as the maximum grows. Used for chunks of at
 * least gemm_min_rows tokens of one sequence at consecutive positions (a
 * prompt); attention.cu handles everything else and is the reference
 * tests/cuda/test_attention.cu pins this kernel to. */
#include "cuda/gpu.h"

#include <math.h>
#include <mma.h>

using namespace nvcuda;

#define TC_WARPS 4     /* per row group */
#define PAD16 8        /* bf16 row padding (wmma ldm: a multiple of 8) */
#define PADF 4         /* float row padding (a multiple of 4) */

/* Keys k0 .. k0+CHUNK-1 of the sequence (rows of the cache, ring-mapped) as bf16; past `last`: zeros.
 * Each thread first issues all its loads, then converts: the loads are in flight together
 * instead of one L2 round trip after another. */
template <int HD, int CHUNK, int THREADS>
static __device__ void load_keys(__nv_bfloat16 (*dst)[HD + PAD16], const float *base, const gpu_kv_layer &kv, int64_t k0,
                                 int64_t last) {
    const int per_thread = CHUNK * HD / 4 / THREADS, batch = per_thread < 16 ? per_thread : 16;
    for (int j0 = 0; j0 < per_thread; j0 += batch) {
        float4 v[batch];
#pragma unroll
        for (int j = 0; j < batch; j++) {
            int i = threadIdx.x + (j0 + j) * THREADS, r = i / (HD / 4), c = i % (HD / 4) * 4;
            int64_t key = k0 + r;
            int64_t slot = kv.ring ? (int64_t)((uint32_t)key % (uint32_t)kv.ring) : key;
            v[j] = key <= last ? __ldg((const float4 *)(base + slot * kv.row_size + c)) : make_float4(0, 0, 0, 0);
        }
#pragma unroll
        for (int j = 0; j < batch; j++) {
            int i = threadIdx.x + (j0 + j) * THREADS, r = i / (HD / 4), c = i % (HD / 4) * 4;
            __nv_bfloat162 *d = (__nv_bfloat162 *)&dst[r][c];
            d[0] = __floats2bfloat162_rn(v[j].x, v[j].y);
            d[1] = __floats2bfloat162_rn(v[j].z, v[j].w);
        }
    }
}

/* 64 query rows a block, 16 per row group of CW warps; each warp holds its
 * rows' output columns (HD/CW of them) in accumulators. K/V chunks of 32 keys
 * are shared by all 64 rows: 4x fewer loads per query than the kernel above.
 * CW = 1 for head dims up to 256, 2 for 512 (8 warps). */
#define TQR 64
#define TKR 32

template <int HD> struct tc_rows_smem {
    __nv_bfloat16 q[TQR][HD + PAD16];
    __nv_bfloat16 k[TKR][HD + PAD16];
    __nv_bfloat16 v[TKR][HD + PAD16];
    float s[TQR][TKR + PADF]; /* reused for the output at the end */
    __nv_bfloat16 p[TQR][TKR + PAD16];
    float corr[TQR]; /* per row: the rescale factor of a chunk, at the end 1 / sum */
};

template <int HD, int CW>
static __global__ void __launch_bounds__(TC_WARPS * 32 * CW)
    attention_tc_rows_kernel(const float *q, int n, int n_heads, int group, gpu_kv_layer kv, int window,
                             const int32_t *pos, const int32_t *seq, float *out) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    tc_rows_smem<HD> &sm = *(tc_rows_smem<HD> *)smem_raw;
    const int head = blockIdx.y, t0 = blockIdx.x * TQR, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int rw = warp % TC_WARPS, cw = warp / TC_WARPS; /* row group, column share */
    const int n_rows = n - t0 < TQR ? n - t0 : TQR;
    const int TPR = 2 * CW, KPT = TKR / TPR; /* softmax: threads per query row, keys per thread */
    const int64_t q_stride = (int64_t)n_heads * HD;
    const float *kbase = kv.k + (int64_t)seq[t0] * kv.rows * kv.row_size + (int64_t)(head / group) * HD;
    const float *vbase = kv.v + (int64_t)seq[t0] * kv.rows * kv.row_size + (int64_t)(head / group) * HD;

    for (int i = threadIdx.x; i < TQR * HD; i += blockDim.x) {
        int r = i / HD, c = i % HD;
        sm.q[r][c] = __float2bfloat16_rn(r < n_rows ? q[(int64_t)(t0 + r) * q_stride + (int64_t)head * HD + c] : 0.0f);
    }
    const int row = threadIdx.x / TPR, part = threadIdx.x % TPR;
    const int64_t my_pos = row < n_rows ? pos[t0 + row] : -1;
    const int64_t my_first = window && my_pos - window + 1 > 0 ? my_pos - window + 1 : 0;
    const int64_t last = pos[t0 + n_rows - 1];
    const int64_t first = window && pos[t0] - window + 1 > 0 ? pos[t0] - window + 1 : 0;

    /* Which row of a 16x16 tile each accumulator element holds: the layout is
     * the library's, so it is read back from a tile of row numbers. */
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sm.s[i / 16][i % 16] = (float)(i / 16);
    __syncthreads();
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> row_of;
    wmma::load_matrix_sync(row_of, &sm.s[0][0], TKR + PADF, wmma::mem_row_major);

    float m = -INFINITY, l = 0;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> o[HD / 16 / CW];
    for (int f = 0; f < HD / 16 / CW; f++) wmma::fill_fragment(o[f], 0.0f);
    for (int64_t k0 = first; k0 <= last; k0 += TKR) {
        __syncthreads(); /* the previous chunk is done with k, v, s, p */
        load_keys<HD, TKR, TC_WARPS * 32 * CW>(sm.k, kbase, kv, k0, last);
        load_keys<HD, TKR, TC_WARPS * 32 * CW>(sm.v, vbase, kv, k0, last);
        __syncthreads();
        for (int kf = cw; kf < TKR / 16; kf += CW) { /* S of this row group, key tiles shared by its warps */
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int d = 0; d < HD; d += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;
                wmma::load_matrix_sync(a, &sm.q[16 * rw][d], HD + PAD16);
                wmma::load_matrix_sync(b, &sm.k[16 * kf][d], HD + PAD16);
                wmma::mma_sync(acc, a, b, acc);
            }
            wmma::store_matrix_sync(&sm.s[16 * rw][16 * kf], acc, TKR + PADF, wmma::mem_row_major);
        }
        __syncthreads();
        /* online softmax: new running maximum, unnormalised probabilities, the
         * factor the output rows so far are rescaled by (no branch around the shuffles) */
        float sv[TKR / 2], cmax = -INFINITY;
        for (int j = 0; j < KPT; j++) {
            int64_t key = k0 + part * KPT + j;
            sv[j] = key >= my_first && key <= my_pos ? sm.s[row][part * KPT + j] : -INFINITY;
            cmax = fmaxf(cmax, sv[j]);
        }
        for (int o_ = 1; o_ < TPR; o_ <<= 1) cmax = fmaxf(cmax, __shfl_xor_sync(0xffffffffu, cmax, o_));
        float m_new = fmaxf(m, cmax), sum = 0;
        for (int j = 0; j < KPT; j++) {
            float p = sv[j] == -INFINITY ? 0.0f : expf(sv[j] - m_new);
            sm.p[row][part * KPT + j] = __float2bfloat16_rn(p);
            sum += p;
        }
        for (int o_ = 1; o_ < TPR; o_ <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o_);
        float corr = m == -INFINITY ? 0.0f : expf(m - m_new);
        l = l * corr + sum;
        m = m_new;
        if (part == 0) sm.corr[row] = corr;
        __syncthreads();
        /* O = O · corr + P · V for this warp's rows and columns */
        for (int f = 0; f < HD / 16 / CW; f++)
            for (int i = 0; i < o[f].num_elements; i++) o[f].x[i] *= sm.corr[16 * rw + (int)row_of.x[i]];
        for (int kk = 0; kk < TKR; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
            wmma::load_matrix_sync(a, &sm.p[16 * rw][kk], TKR + PAD16);
            for (int f = 0; f < HD / 16 / CW; f++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> b;
                wmma::load_matrix_sync(b, &sm.v[kk][cw * (HD / CW) + 16 * f], HD + PAD16);
                wmma::mma_sync(o[f], a, b, o[f]);
            }
        }
    }
    __syncthreads(); /* every warp is done with the last chunk's factors */
    if (part == 0) sm.corr[row] = l > 0 ? 1.0f / l : 0.0f; /* now each row's normaliser */
    __syncthreads();
    float *stage = &sm.s[0][0] + warp * 256; /* one 16x16 tile per warp at a time */
    int rows_here = n_rows - 16 * rw;
    for (int f = 0; f < HD / 16 / CW; f++) {
        wmma::store_matrix_sync(stage, o[f], 16, wmma::mem_row_major);
        __syncwarp();
        for (int i = lane; i < 256; i += 32) {
            int r = i / 16, c = i % 16;
            if (r < rows_here)
                out[(int64_t)(t0 + 16 * rw + r) * q_stride + (int64_t)head * HD + cw * (HD / CW) + 16 * f + c] =
                    stage[i] * sm.corr[16 * rw + r];
        }
        __syncwarp();
    }
}

template <int HD, int CW>
static int launch_rows(cudaStream_t st, const float *q, int n, int n_heads, int group, const gpu_kv_layer *kv, int window,
                       const int32_t *pos, const int32_t *seq, float *out) {
    size_t bytes = sizeof(tc_rows_smem<HD>);
    if (cudaFuncSetAttribute(attention_tc_rows_kernel<HD, CW>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes) !=
        cudaSuccess)
        return -1;
    dim3 grid((n + TQR - 1) / TQR, n_heads);
    attention_tc_rows_kernel<HD, CW><<<grid, TC_WARPS * 32 * CW, bytes, st>>>(q, n, n_heads, group, *kv, window, pos, seq, out);
    return 0;
}

int gpu_attention_prefill(cudaStream_t st, const float *q, int n, int n_heads, int hd, const gpu_kv_layer *kv, int window,
                          const int32_t *pos, const int32_t *seq, float *out) {
    int group = n_heads / (int)(kv->row_size / hd);
    switch (hd) {
    case 64: return launch_rows<64, 1>(st, q, n, n_heads, group, kv, window, pos, seq, out);
    case 128: return launch_rows<128, 1>(st, q, n, n_heads, group, kv, window, pos, seq, out);
    case 256: return launch_rows<256, 1>(st, q, n, n_heads, group, kv, window, pos, seq, out);
    case 512: return launch_rows<512, 2>(st, q, n, n_heads, group, kv, window, pos, seq, out);
    default: return -1;
    }
}
