/* Prompt attention through cuBLAS: for each KV head, S = Q·Kᵀ for all of its
 * query heads (one strided-batched GEMM), the causal / sliding-window mask
 * and the softmax, then O = P·V (a second one). Q, K, V and P are rounded to
 * bf16 with float32 accumulation, the rounding points of transformers' sdpa
 * on a bf16 model (and of attention_tc.cu); K and V are converted once per
 * layer instead of by every query tile. The price is S in memory (heads of
 * a group × tokens × keys floats), which is why it is taken only for chunks
 * whose scores fit GPU_ATTN_GEMM_MAX_BYTES and whose keys are contiguous in
 * the cache (attention_tc.cu handles the others). */
#include "cuda/gpu.h"

#include <math.h>

#define GPU_ATTN_GEMM_MAX_BYTES ((size_t)1 << 30)
#define SOFTMAX_THREADS 256

/* Row r = (head of the group, token i) of S: keys k0 + j, j < nk, visible to
 * position p0 + i when at or before it and, in a sliding layer, within the window. */
static __global__ void masked_softmax_kernel(const float *s, __nv_bfloat16 *p_out, int n, int64_t nk, int64_t k0, int64_t p0,
                                             int window) {
    __shared__ float red[SOFTMAX_THREADS / 32];
    int64_t i = blockIdx.x % n, p = p0 + i;
    const float *row = s + (int64_t)blockIdx.x * nk;
    __nv_bfloat16 *out = p_out + (int64_t)blockIdx.x * nk;
    int64_t lo = window && p - window + 1 > k0 ? p - window + 1 - k0 : 0, hi = p - k0; /* visible j in [lo, hi] */
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float mx = -INFINITY;
    for (int64_t j = lo + threadIdx.x; j <= hi; j += blockDim.x) mx = fmaxf(mx, row[j]);
    for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < SOFTMAX_THREADS / 32; w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0;
    for (int64_t j = lo + threadIdx.x; j <= hi; j += blockDim.x) sum += expf(row[j] - mx);
    for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0;
    for (int w = 0; w < SOFTMAX_THREADS / 32; w++) sum += red[w];
    float inv = 1.0f / sum;
    for (int64_t j = threadIdx.x; j < nk; j += blockDim.x)
        out[j] = __float2bfloat16_rn(j >= lo && j <= hi ? expf(row[j] - mx) * inv : 0.0f);
}

/* The scratch of one call: S, P, and Q, K, V as bf16. */
static size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

int gpu_attention_gemm(cublasHandle_t h, cudaStream_t st, gpu_buffer *scratch, const float *q, int n, int n_heads, int hd,
                       const gpu_kv_layer *kv, int window, int64_t p0, int seq, float *out) {
    int n_kv = (int)(kv->row_size / hd), group = n_heads / n_kv;
    int64_t k1 = p0 + n - 1, k0 = window && p0 - window + 1 > 0 ? p0 - window + 1 : 0, nk = k1 - k0 + 1;
    if (kv->ring && k0 / kv->ring != k1 / kv->ring) return -1; /* the keys wrap around the ring */
    size_t s_bytes = align256(sizeof(float) * (size_t)group * (size_t)n * (size_t)nk);
    if (s_bytes > GPU_ATTN_GEMM_MAX_BYTES) return -1;
    size_t p_bytes = align256(s_bytes / 2), q_bytes = align256(2 * (size_t)n * n_heads * hd),
           kv_bytes = align256(2 * (size_t)nk * kv->row_size), bytes = s_bytes + p_bytes + q_bytes + 2 * kv_bytes;
    g4_error err;
    if (gpu_buffer_reserve(scratch, bytes, &err)) return -1; /* the caller falls back to the wmma kernel */
    float *s = (float *)scratch->data;
    __nv_bfloat16 *pb = (__nv_bfloat16 *)((char *)s + s_bytes), *qb = (__nv_bfloat16 *)((char *)pb + p_bytes),
                  *kb = (__nv_bfloat16 *)((char *)qb + q_bytes), *vb = (__nv_bfloat16 *)((char *)kb + kv_bytes);
    int64_t slot0 = kv->ring ? k0 % kv->ring : k0;
    gpu_to_bf16(st, qb, q, (int64_t)n_heads * hd, n, (int64_t)n_heads * hd);
    gpu_to_bf16(st, kb, kv->k + ((int64_t)seq * kv->rows + slot0) * kv->row_size, kv->row_size, (int)nk, kv->row_size);
    gpu_to_bf16(st, vb, kv->v + ((int64_t)seq * kv->rows + slot0) * kv->row_size, kv->row_size, (int)nk, kv->row_size);
    int ld_q = n_heads * hd, ld_kv = (int)kv->row_size;
    const float one = 1, zero = 0;
    cublasSetStream(h, st);
    for (int g = 0; g < n_kv; g++) {
        /* column-major S_h (nk × n) = K_gᵀ-as-stored (op T of hd × nk) · Q_h (hd × n) */
        if (cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)nk, n, hd, &one, kb + g * hd, CUDA_R_16BF, ld_kv, 0,
                                       qb + (int64_t)g * group * hd, CUDA_R_16BF, ld_q, hd, &zero, s, CUDA_R_32F, (int)nk,
                                       nk * n, group, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
            return -1;
        masked_softmax_kernel<<<group * n, SOFTMAX_THREADS, 0, st>>>(s, pb, n, nk, k0, p0, window);
        /* column-major O_h (hd × n) = V_g (hd × nk) · P_h (nk × n) */
        if (cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, hd, n, (int)nk, &one, vb + g * hd, CUDA_R_16BF, ld_kv, 0,
                                       pb, CUDA_R_16BF, (int)nk, nk * n, &zero, out + (int64_t)g * group * hd, CUDA_R_32F,
                                       ld_q, hd, group, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
            return -1;
    }
    return 0;
}
