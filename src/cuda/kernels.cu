/* Element-wise and per-row kernels of the forward pass: embeddings, RMSNorm
 * (fused with the residual add, the layer scalar, or RoPE where the spec
 * applies them back to back), GELU gating, soft-capping, the per-layer-input
 * combination, and the random fill of synthetic weights. Maths as in
 * src/ops (norm.c, rope.c, activation.c); sums of squares in double, as
 * there. */
#include "cuda/gpu.h"

#include <math.h>

#define ROW_THREADS 256

static __device__ float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* √(2/π) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

/* Sum over the block; every thread gets the result. */
static __device__ double block_sum(double v) {
    __shared__ double part[32];
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, n_warps = (blockDim.x + 31) >> 5;
    __syncthreads(); /* part[] may still be read from a previous call */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    double s = 0;
    for (int w = 0; w < n_warps; w++) s += part[w];
    return s;
}

static __device__ float rms_scale(const float *x, int dim, float eps) {
    double ss = 0;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += (double)x[i] * x[i];
    ss = block_sum(ss);
    return powf((float)(ss / dim) + eps, -0.5f); /* pow, not rsqrt, as the reference */
}

/* Element i of a weight row, for table look-ups (embeddings). */
static __device__ float weight_at(const gpu_matrix w, int64_t row, int64_t i) {
    int64_t e = row * w.cols + i;
    switch (w.dtype) {
    case G4_DTYPE_F32: return ((const float *)w.data)[e];
    case G4_DTYPE_BF16: return __bfloat162float(((const __nv_bfloat16 *)w.data)[e]);
    case G4_DTYPE_Q8_0: return __half2float(w.scales[e / 32]) * ((const int8_t *)w.data)[e];
    default: { /* Q4_0: byte j of a block holds elements j (low nibble) and j + 16 (high) */
        int64_t block = e / 32, j = e % 32;
        uint8_t b = ((const uint8_t *)w.data)[block * 16 + (j & 15)];
        int q = j < 16 ? (b & 15) : (b >> 4);
        return __half2float(w.scales[block]) * (float)(q - 8);
    }
    }
}

static __global__ void embed_kernel(gpu_matrix table, const int32_t *token, float scale, float *out) {
    int64_t t = blockIdx.x, D = table.cols;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) out[t * D + i] = weight_at(table, token[t], i) * scale;
}

void gpu_embed(cudaStream_t st, const gpu_matrix *table, const int32_t *token, int n, float scale, float *out) {
    embed_kernel<<<n, ROW_THREADS, 0, st>>>(*table, token, scale, out);
}

static __global__ void rmsnorm_kernel(float *out, int64_t out_stride, const float *in, int64_t in_stride,
                                      const float *w, int dim, float eps, float extra) {
    const float *x = in + blockIdx.x * in_stride;
    float *y = out + blockIdx.x * out_stride;
    float s = rms_scale(x, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) y[i] = (w ? x[i] * s * w[i] : x[i] * s) * extra;
}

void gpu_rmsnorm(cudaStream_t st, float *out, int64_t out_stride, const float *in, int64_t in_stride, const float *weight,
                 int rows, int dim, float eps, float extra) {
    if (rows > 0) rmsnorm_kernel<<<rows, ROW_THREADS, 0, st>>>(out, out_stride, in, in_stride, weight, dim, eps, extra);
}

/* The same, rounded to bf16 for a tensor-core product that reads nothing else. */
static __global__ void rmsnorm_bf16_kernel(__nv_bfloat16 *out, const float *in, const float *w, int dim, float eps) {
    const float *x = in + (int64_t)blockIdx.x * dim;
    __nv_bfloat16 *y = out + (int64_t)blockIdx.x * dim;
    float s = rms_scale(x, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) y[i] = __float2bfloat16_rn(x[i] * s * w[i]);
}

void gpu_rmsnorm_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *in, const float *weight, int rows, int dim,
                      float eps) {
    if (rows > 0) rmsnorm_bf16_kernel<<<rows, ROW_THREADS, 0, st>>>(out, in, weight, dim, eps);
}

static __global__ void add_rmsnorm_kernel(float *h, const float *o, const float *w, int dim, float eps, float post_scale) {
    const float *x = o + (int64_t)blockIdx.x * dim;
    float *r = h + (int64_t)blockIdx.x * dim;
    float s = rms_scale(x, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = r[i] + x[i] * s * w[i];
        r[i] = post_scale == 1.0f ? v : v * post_scale;
    }
}

void gpu_add_rmsnorm(cudaStream_t st, float *h, const float *o, const float *weight, int rows, int dim, float eps,
                     float post_scale) {
    if (rows > 0) add_rmsnorm_kernel<<<rows, ROW_THREADS, 0, st>>>(h, o, weight, dim, eps, post_scale);
}

static __global__ void rmsnorm_sum_kernel(float *o, const float *e, const float *w1, const float *w2, int dim, float eps) {
    float *a = o + (int64_t)blockIdx.x * dim;
    const float *b = e + (int64_t)blockIdx.x * dim;
    float sa = rms_scale(a, dim, eps), sb = rms_scale(b, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) a[i] = a[i] * sa * w1[i] + b[i] * sb * w2[i];
}

void gpu_rmsnorm_sum(cudaStream_t st, float *o, const float *e, const float *w1, const float *w2, int rows, int dim,
                     float eps) {
    if (rows > 0) rmsnorm_sum_kernel<<<rows, ROW_THREADS, 0, st>>>(o, e, w1, w2, dim, eps);
}

/* Rotate-half RoPE of one head held in v (hd floats), pairs (i, i + hd/2). */
static __device__ void rope_head(float *v, int hd, const float *inv_freq, int n_pairs, int pos) {
    int half = hd / 2;
    __syncthreads();
    for (int i = threadIdx.x; i < n_pairs; i += blockDim.x) {
        float angle = (float)pos * inv_freq[i]; /* float32 product, as the reference */
        float c = cosf(angle), s = sinf(angle), a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

/* One block per (token, head). */
static __global__ void norm_rope_kernel(float *x, int n_heads, int hd, const float *norm_w, const float *inv_freq,
                                        int n_pairs, const int32_t *pos, float eps) {
    int t = blockIdx.x / n_heads;
    float *v = x + (int64_t)blockIdx.x * hd;
    float s = rms_scale(v, hd, eps);
    __syncthreads();
    for (int i = threadIdx.x; i < hd; i += blockDim.x) v[i] = v[i] * s * norm_w[i];
    rope_head(v, hd, inv_freq, n_pairs, pos[t]);
}

static int head_threads(int hd) { return hd >= 256 ? 256 : (hd + 31) / 32 * 32; }

void gpu_norm_rope(cudaStream_t st, float *x, int n, int n_heads, int hd, const float *norm_w, const float *inv_freq,
                   int n_pairs, const int32_t *pos, float eps) {
    norm_rope_kernel<<<n * n_heads, head_threads(hd), 0, st>>>(x, n_heads, hd, norm_w, inv_freq, n_pairs, pos, eps);
}

/* One block per (token, kv head): V from the raw projection first (for k = v
 * layers v_raw is k_raw, read before K is normed), then K, both into the cache. */
static __global__ void kv_write_kernel(const float *k_raw, const float *v_raw, int n_kv, int hd, const float *k_norm,
                                       const float *inv_freq, int n_pairs, const int32_t *pos, const int32_t *seq,
                                       gpu_kv_layer kv, float eps) {
    int t = blockIdx.x / n_kv, head = blockIdx.x % n_kv;
    int64_t slot = kv.ring ? pos[t] % kv.ring : pos[t];
    int64_t off = ((int64_t)seq[t] * kv.rows + slot) * kv.row_size + (int64_t)head * hd;
    const float *kr = k_raw + (int64_t)blockIdx.x * hd, *vr = v_raw + (int64_t)blockIdx.x * hd;
    float *kd = kv.k + off, *vd = kv.v + off;
    float sv = rms_scale(vr, hd, eps);
    for (int i = threadIdx.x; i < hd; i += blockDim.x) vd[i] = vr[i] * sv;
    float sk = rms_scale(kr, hd, eps);
    for (int i = threadIdx.x; i < hd; i += blockDim.x) kd[i] = kr[i] * sk * k_norm[i];
    rope_head(kd, hd, inv_freq, n_pairs, pos[t]);
}

void gpu_kv_write(cudaStream_t st, const float *k_raw, const float *v_raw, int n, int n_kv, int hd, const float *k_norm,
                  const float *inv_freq, int n_pairs, const int32_t *pos, const int32_t *seq, const gpu_kv_layer *kv,
                  float eps) {
    kv_write_kernel<<<n * n_kv, head_threads(hd), 0, st>>>(k_raw, v_raw, n_kv, hd, k_norm, inv_freq, n_pairs, pos, seq,
                                                            *kv, eps);
}

static __global__ void gelu_gate_kernel(float *out, int64_t os, const float *gate, int64_t gs, const float *up,
                                        int64_t us, int dim) {
    int64_t r = blockIdx.y;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x)
        out[r * os + i] = gelu_tanh(gate[r * gs + i]) * up[r * us + i];
}

void gpu_gelu_gate(cudaStream_t st, float *out, int64_t out_stride, const float *gate, int64_t gate_stride,
                   const float *up, int64_t up_stride, int rows, int dim) {
    if (rows <= 0) return;
    int bx = (dim + ROW_THREADS - 1) / ROW_THREADS;
    if (bx > 64) bx = 64;
    gelu_gate_kernel<<<dim3(bx, rows), ROW_THREADS, 0, st>>>(out, out_stride, gate, gate_stride, up, up_stride, dim);
}

static __global__ void gelu_gate_bf16_kernel(__nv_bfloat16 *out, const float *gate, const float *up, int dim) {
    int64_t r = blockIdx.y;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x)
        out[r * dim + i] = __float2bfloat16_rn(gelu_tanh(gate[r * dim + i]) * up[r * dim + i]);
}

void gpu_gelu_gate_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *gate, const float *up, int rows, int dim) {
    if (rows <= 0) return;
    int bx = (dim + ROW_THREADS - 1) / ROW_THREADS;
    if (bx > 64) bx = 64;
    gelu_gate_bf16_kernel<<<dim3(bx, rows), ROW_THREADS, 0, st>>>(out, gate, up, dim);
}

static __global__ void softcap_kernel(float *x, int64_t n, float cap) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        x[i] = cap * tanhf(x[i] / cap);
}

void gpu_softcap(cudaStream_t st, float *x, int64_t n, float cap) {
    softcap_kernel<<<1024, ROW_THREADS, 0, st>>>(x, n, cap);
}

/* One block per (token, layer). */
static __global__ void ple_combine_kernel(float *ple, const float *token_part, int P, const float *norm_w, float d_scale,
                                          float tscale, float eps) {
    float *row = ple + (int64_t)blockIdx.x * P;
    const float *tok = token_part + (int64_t)blockIdx.x * P;
    const float mix = 0.70710678118654752f; /* 2^-0.5 */
    for (int i = threadIdx.x; i < P; i += blockDim.x) row[i] *= d_scale;
    __syncthreads();
    float s = rms_scale(row, P, eps);
    __syncthreads();
    for (int i = threadIdx.x; i < P; i += blockDim.x) row[i] = (row[i] * s * norm_w[i] + tok[i] * tscale) * mix;
}

void gpu_ple_combine(cudaStream_t st, float *ple, const float *token_part, int n, int L, int P, const float *norm_w,
                     float d_scale, float tscale, float eps) {
    ple_combine_kernel<<<n * L, head_threads(P), 0, st>>>(ple, token_part, P, norm_w, d_scale, tscale, eps);
}

static __global__ void gather_rmsnorm_kernel(float *x, const float *h, const int32_t *idx, int dim, const float *w,
                                             float eps) {
    const float *in = h + (int64_t)idx[blockIdx.x] * dim;
    float *out = x + (int64_t)blockIdx.x * dim;
    float s = rms_scale(in, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) out[i] = in[i] * s * w[i];
}

void gpu_gather_rmsnorm(cudaStream_t st, float *x, const float *h, const int32_t *idx, int n, int dim,
                        const float *weight, float eps) {
    if (n > 0) gather_rmsnorm_kernel<<<n, ROW_THREADS, 0, st>>>(x, h, idx, dim, weight, eps);
}

static __global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *x, int64_t xs, int64_t cols) {
    int64_t r = blockIdx.y;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < cols; i += (int64_t)gridDim.x * blockDim.x)
        out[r * cols + i] = __float2bfloat16_rn(x[r * xs + i]);
}

void gpu_to_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *x, int64_t x_stride, int n, int64_t cols) {
    int64_t bx = (cols + ROW_THREADS - 1) / ROW_THREADS;
    to_bf16_kernel<<<dim3((unsigned)(bx < 64 ? bx : 64), n), ROW_THREADS, 0, st>>>(out, x, x_stride, cols);
}

/* splitmix64: a counter-based generator, so every element is independent of the launch shape. */
static __device__ uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static __global__ void fill_kernel(gpu_matrix w, int64_t n_elems, uint64_t seed, float scale) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n_elems; i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t r = mix64(seed ^ mix64((uint64_t)i));
        float u = (float)(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f; /* [-1, 1) */
        switch (w.dtype) {
        case G4_DTYPE_F32: ((float *)w.data)[i] = u * scale; break;
        case G4_DTYPE_BF16: ((__nv_bfloat16 *)w.data)[i] = __float2bfloat16_rn(u * scale); break;
        case G4_DTYPE_Q8_0: ((int8_t *)w.data)[i] = (int8_t)(u * 127.0f); break;
        default: if (i % 2 == 0) ((uint8_t *)w.data)[i / 2] = (uint8_t)(r >> 56); break; /* Q4_0: two codes a byte */
        }
        if (w.scales && i % 32 == 0) w.scales[i / 32] = __float2half(w.dtype == G4_DTYPE_Q8_0 ? scale / 127.0f : scale / 8.0f);
    }
}

void gpu_fill_random(cudaStream_t st, gpu_matrix *w, uint64_t seed, float scale) {
    fill_kernel<<<4096, ROW_THREADS, 0, st>>>(*w, w->count * w->rows * w->cols, seed, scale);
}
