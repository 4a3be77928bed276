/* Element-wise and per-row kernels of the forward pass: embeddings, RMSNorm
 * (fused with the residual add, the layer scalar, or RoPE where the spec
 * applies them back to back), GELU gating, soft-capping, the per-layer-input
 * combination, and the random fill of synthetic weights. Maths as in
 * src/ops (norm.c, rope.c, activation.c); sums of squares in double, as
 * there. */
#include "cuda/gpu.h"

#include <math.h>

#define ROW_THREADS 256

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

static __device__ float rms_scale(const float *x, int dim, float eps) {
    double ss[1] = {0};
    float s[1];
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss[0] += (double)x[i] * x[i];
    block_rms<1>(ss, s, dim, eps);
    return s[0];
}

/* Element i of a weight row, for table look-ups (embeddings). */
static __device__ float weight_at(const gpu_matrix w, int64_t row, int64_t i) {
    int64_t e = row * w.cols + i;
    switch ((int)w.dtype) {
    case G4_DTYPE_F32: return ((const float *)w.data)[e];
    case G4_DTYPE_BF16: return __bfloat162float(((const __nv_bfloat16 *)w.data)[e]);
    case G4_DTYPE_Q8_0: return __half2float(w.scales[e / 32]) * ((const int8_t *)w.data)[e];
    /* the affine forms (gpu.h): product rounded before the add, as GGML dequantises */
    case GPU_DTYPE_Q8_AFFINE16:
        return __fmul_rn(w.scale_f32[e / 16], (float)((const int8_t *)w.data)[e]) + (w.min_f32 ? w.min_f32[e / 16] : 0.0f);
    case GPU_DTYPE_Q4_AFFINE32: {
        uint8_t b = ((const uint8_t *)w.data)[e / 32 * 16 + (e % 32 & 15)];
        return __fmul_rn(w.scale_f32[e / 32], (float)(e % 32 < 16 ? b & 15 : b >> 4)) + w.min_f32[e / 32];
    }
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

/* gpu_row_chain_run: one block per row, every value of the row held in
 * registers (value j of thread i is element i + j·blockDim.x), so each step
 * is one pass over registers and the row is read from memory once. */
#define CHAIN_THREADS 1024
#define CHAIN_MAX_VALUES 6 /* values a thread holds at most; kernels for 2, 3, 4 and 6 */

template <int CHAIN_VALUES> static __device__ float chain_rms(const float *v, int dim, float eps) {
    double ss[1] = {0};
    float s[1];
#pragma unroll
    for (int j = 0; j < CHAIN_VALUES; j++) ss[0] += (double)v[j] * v[j];
    block_rms<1>(ss, s, dim, eps);
    return s[0];
}

#define CHAIN_WEIGHTS (3 + GPU_CHAIN_OUTS) /* n1, n2, post, out[k].w */

/* Weight v of a chain (NULL: absent); the kernel and its launch count them alike. */
static __host__ __device__ __forceinline__ const float *chain_weight(const gpu_row_chain &ch, int v) {
    return v == 0 ? ch.n1 : v == 1 ? ch.n2 : v == 2 ? ch.post : v - 3 < ch.n_out ? ch.out[v - 3].w : NULL;
}

/* ROWS: the experts' outputs are found through ch.moe_rows (a prompt's, in
 * expert order); a separate instantiation, so decode's keeps its registers.
 * STAGE (decode): each thread starts asynchronous copies of its values of
 * the norm weights into shared memory before the wait (they are weights):
 * read after it, they were DRAM round trips between the chain's reductions
 * (an L1 prefetch did not keep them; registers are full). Asynchronous, so a
 * chain scheduled only as its predecessor ends (the MoE join, after the
 * experts' down product's second wave) has them in flight beside its row's
 * loads instead of before them. Without STAGE, many rows share an SM and the
 * weights come from L2. */
template <int CHAIN_VALUES, bool ROWS, bool STAGE>
static __global__ void __launch_bounds__(CHAIN_THREADS) row_chain_kernel(float *h, gpu_row_chain ch, int dim, float eps) {
    const int64_t r = blockIdx.x;
    extern __shared__ float staged[]; /* [slot][j][thread] */
    int slot[CHAIN_WEIGHTS], n_staged = 0;
#pragma unroll
    for (int v = 0; v < CHAIN_WEIGHTS; v++) slot[v] = chain_weight(ch, v) ? n_staged++ : -1;
    if (STAGE) {
#pragma unroll
        for (int v = 0; v < CHAIN_WEIGHTS; v++) {
            const float *w = chain_weight(ch, v);
            if (!w) continue;
#pragma unroll
            for (int j = 0; j < CHAIN_VALUES; j++) {
                const int i = threadIdx.x + j * blockDim.x;
                const float *to = &staged[(slot[v] * CHAIN_VALUES + j) * blockDim.x + threadIdx.x];
                if (i < dim)
                    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"((unsigned)__cvta_generic_to_shared(to)),
                                 "l"(w + i) : "memory");
            }
        }
    }
    /* the residual row was written a few kernels back and may have left L2
     * since (a prefetch is safe whatever runs before this kernel) */
    for (int i = threadIdx.x * 32; i < dim; i += blockDim.x * 32)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(h + r * dim + i));
    /* weight v's value j of this thread (i = threadIdx.x + j·blockDim.x < dim), after
     * staged_wait(): each thread reads only what it copied, so its own wait suffices */
    auto staged_wait = [] {
        if (STAGE) asm volatile("cp.async.wait_all;" ::: "memory");
    };
    auto weight = [&](int v, int j) {
        return STAGE ? staged[(slot[v] * CHAIN_VALUES + j) * blockDim.x + threadIdx.x]
                     : chain_weight(ch, v)[threadIdx.x + j * blockDim.x];
    };
    gpu_pdl_wait();
    float hv[CHAIN_VALUES], ov[CHAIN_VALUES];
#pragma unroll
    for (int j = 0; j < CHAIN_VALUES; j++) {
        int i = threadIdx.x + j * blockDim.x;
        hv[j] = i < dim ? h[r * dim + i] : 0.0f;
        ov[j] = i < dim && ch.o ? ch.o[r * dim + i] : 0.0f;
    }
    if (ch.moe_y) { /* the experts' weighted sum, then the two branches' norms */
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
                wk[kk] = k < ch.K ? ch.moe_weights[r * ch.K + k] : 0.0f;
#pragma unroll
                for (int j = 0; j < CHAIN_VALUES; j++) {
                    int i = threadIdx.x + j * blockDim.x;
                    yv[kk][j] = k < ch.K && i < dim ? y[i] : 0.0f;
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
        staged_wait();
#pragma unroll
        for (int j = 0; j < CHAIN_VALUES; j++) {
            int i = threadIdx.x + j * blockDim.x;
            if (i < dim) ov[j] = ov[j] * so * weight(0, j) + ev[j] * se * weight(1, j);
        }
    }
    if (ch.o) { /* the residual add */
        float s = chain_rms<CHAIN_VALUES>(ov, dim, eps);
        staged_wait();
#pragma unroll
        for (int j = 0; j < CHAIN_VALUES; j++) {
            int i = threadIdx.x + j * blockDim.x;
            if (i >= dim) continue;
            float v = hv[j] + ov[j] * s * weight(2, j);
            hv[j] = ch.scale == 1.0f ? v : v * ch.scale;
            h[r * dim + i] = hv[j];
        }
    }
    staged_wait(); /* (no copy is left in flight at the exit) */
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
            float v = (o.w ? hv[j] * s * weight(3 + k, j) : hv[j] * s) * o.extra;
            if (o.out_bf16) o.out_bf16[r * dim + i] = __float2bfloat16_rn(v);
            else o.out[r * o.stride + i] = v;
        }
    }
}

int gpu_row_chain_fits(int dim) { return dim > 0 && dim <= CHAIN_THREADS * CHAIN_MAX_VALUES; }

/* Staging bytes for a decode chain: its weights' values (at most 6 · 6 · 1024
 * floats, 144 KB, for the 31B's rows), so the kernel may ask for that much. */
template <int V, bool ROWS, bool STAGE>
static void chain_kernel_launch(cudaStream_t st, float *h, const gpu_row_chain *ch, int rows, int threads, int dim,
                                float eps) {
    size_t smem = 0;
    if (STAGE) {
        static int opted = 0;
        if (!opted) {
            cudaFuncSetAttribute(row_chain_kernel<V, ROWS, STAGE>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)(sizeof(float) * CHAIN_WEIGHTS * V * CHAIN_THREADS));
            opted = 1;
        }
        int n = 0;
        for (int v = 0; v < CHAIN_WEIGHTS; v++) n += chain_weight(*ch, v) != NULL;
        smem = sizeof(float) * (size_t)n * V * threads;
    }
    gpu_launch_smem(row_chain_kernel<V, ROWS, STAGE>, rows, threads, smem, st, h, *ch, dim, eps);
}

template <bool ROWS, bool STAGE>
static void chain_launch(cudaStream_t st, float *h, const gpu_row_chain *ch, int rows, int threads, int values, int dim,
                         float eps) {
    if (values <= 2) chain_kernel_launch<2, ROWS, STAGE>(st, h, ch, rows, threads, dim, eps);
    else if (values == 3) chain_kernel_launch<3, ROWS, STAGE>(st, h, ch, rows, threads, dim, eps);
    else if (values == 4) chain_kernel_launch<4, ROWS, STAGE>(st, h, ch, rows, threads, dim, eps);
    else chain_kernel_launch<CHAIN_MAX_VALUES, ROWS, STAGE>(st, h, ch, rows, threads, dim, eps);
}

/* Rows up to which the weights are staged (one block each). */
#define CHAIN_STAGE_ROWS 8

void gpu_row_chain_run(cudaStream_t st, float *h, const gpu_row_chain *ch, int rows, int dim, float eps) {
    if (rows <= 0) return;
    /* as many threads as fit (fewer, with more values each, measured slower), and only
     * as many values per thread as the row needs: fewer registers, no spills */
    int threads = dim >= CHAIN_THREADS ? CHAIN_THREADS : (dim + 31) / 32 * 32;
    int values = (dim + threads - 1) / threads;
    if (ch->moe_rows) chain_launch<true, false>(st, h, ch, rows, threads, values, dim, eps);
    else if (rows <= CHAIN_STAGE_ROWS) chain_launch<false, true>(st, h, ch, rows, threads, values, dim, eps);
    else chain_launch<false, false>(st, h, ch, rows, threads, values, dim, eps);
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

/* q: per-head RMSNorm (with weight) then RoPE, in place; block b is (token, head). */
static __device__ void q_norm_rope(int b, float *x, int n_heads, int hd, const float *norm_w, const float *inv_freq,
                                   int n_pairs, const int32_t *pos, float eps) {
    float *v = x + (int64_t)b * hd;
    float s = rms_scale(v, hd, eps);
    __syncthreads();
    for (int i = threadIdx.x; i < hd; i += blockDim.x) v[i] = v[i] * s * norm_w[i];
    rope_head(v, hd, inv_freq, n_pairs, pos[b / n_heads]);
}

/* k and v of block b = (token, kv head): V from the raw projection first (for
 * k = v layers v_raw is k_raw, read before K is normed), then K, both into the cache. */
static __device__ void kv_write(int b, const gpu_qk_rope &a) {
    int t = b / a.n_kv, hd = a.hd;
    const gpu_kv_layer &kv = a.kv;
    int64_t slot = kv.ring ? a.pos[t] % kv.ring : a.pos[t];
    int64_t off = ((int64_t)a.seq[t] * kv.rows + slot) * kv.row_size + (int64_t)(b % a.n_kv) * hd;
    const float *kr = a.k_raw + (int64_t)b * hd, *vr = a.v_raw + (int64_t)b * hd;
    float *kd = kv.k + off, *vd = kv.v + off;
    float sv = rms_scale(vr, hd, a.eps);
    for (int i = threadIdx.x; i < hd; i += blockDim.x) vd[i] = vr[i] * sv;
    float sk = rms_scale(kr, hd, a.eps);
    for (int i = threadIdx.x; i < hd; i += blockDim.x) kd[i] = kr[i] * sk * a.k_norm[i];
    rope_head(kd, hd, a.inv_freq, a.n_pairs, a.pos[t]);
}

/* Decode (one token): the cache rows at positions [first, p) that attention
 * reads next, into L2 while the q/k/v product still runs. They were written
 * by earlier steps, and pos and seq by this step's upload before its first
 * kernel, so none of it waits for the kernel before; row p (this kernel's
 * own write) is not asked for. */
static __device__ void prefetch_keys(const gpu_qk_rope &a) {
    const gpu_kv_layer &kv = a.attn_kv;
    const int64_t p = a.pos[0];
    int64_t first = p - a.prefetch_keys;
    if (a.window && p - a.window + 1 > first) first = p - a.window + 1;
    if (first < 0) first = 0;
    const int64_t lines = (kv.row_size + 31) / 32, base = (int64_t)a.seq[0] * kv.rows; /* 128-byte lines a row */
    const int64_t total = (p - first) * lines;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t key = first + i / lines, slot = kv.ring ? key % kv.ring : key;
        const int64_t off = (base + slot) * kv.row_size + (i % lines) * 32;
        asm volatile("prefetch.global.L2 [%0];" ::"l"(kv.k + off));
        if (kv.v != kv.k) asm volatile("prefetch.global.L2 [%0];" ::"l"(kv.v + off));
    }
}

/* The first n·n_heads blocks do q, the rest k/v (one launch for both). */
static __global__ void qk_rope_kernel(gpu_qk_rope a, int n) {
    int b = blockIdx.x;
    if (n == 1 && a.prefetch_keys > 0) prefetch_keys(a);
    gpu_pdl_wait();
    if (b < n * a.n_heads) q_norm_rope(b, a.q, a.n_heads, a.hd, a.q_norm, a.inv_freq, a.n_pairs, a.pos, a.eps);
    else kv_write(b - n * a.n_heads, a);
}

static int head_threads(int hd) { return hd >= 256 ? 256 : (hd + 31) / 32 * 32; }

void gpu_qk_rope_run(cudaStream_t st, const gpu_qk_rope *a, int n) {
    int blocks = n * a->n_heads + (a->k_raw ? n * a->n_kv : 0);
    gpu_launch(qk_rope_kernel, blocks, head_threads(a->hd), st, *a, n);
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

static __global__ void gelu_gate_bf16_kernel(__nv_bfloat16 *out, const float *gate, const float *up, int64_t in_stride,
                                             int dim) {
    int64_t r = blockIdx.y;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += gridDim.x * blockDim.x)
        out[r * dim + i] = __float2bfloat16_rn(gelu_tanh(gate[r * in_stride + i]) * up[r * in_stride + i]);
}

void gpu_gelu_gate_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *gate, const float *up, int64_t in_stride,
                        int rows, int dim) {
    if (rows <= 0) return;
    int bx = (dim + ROW_THREADS - 1) / ROW_THREADS;
    if (bx > 64) bx = 64;
    gelu_gate_bf16_kernel<<<dim3(bx, rows), ROW_THREADS, 0, st>>>(out, gate, up, in_stride, dim);
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
    const float *in = h + (int64_t)(idx ? idx[blockIdx.x] : (int32_t)blockIdx.x) * dim;
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
        switch ((int)w.dtype) {
        case G4_DTYPE_F32: ((float *)w.data)[i] = u * scale; break;
        case G4_DTYPE_BF16: ((__nv_bfloat16 *)w.data)[i] = __float2bfloat16_rn(u * scale); break;
        case G4_DTYPE_Q8_0: case GPU_DTYPE_Q8_AFFINE16: ((int8_t *)w.data)[i] = (int8_t)(u * 127.0f); break;
        default: if (i % 2 == 0) ((uint8_t *)w.data)[i / 2] = (uint8_t)(r >> 56); break; /* Q4_0: two codes a byte */
        }
        if (w.scales && i % 32 == 0) w.scales[i / 32] = __float2half(w.dtype == G4_DTYPE_Q8_0 ? scale / 127.0f : scale / 8.0f);
        /* affine forms: codes 0..15 map onto [-scale, scale]; int8 codes have no offset */
        int64_t sub = w.dtype == GPU_DTYPE_Q8_AFFINE16 ? 16 : 32;
        if (w.scale_f32 && i % sub == 0) w.scale_f32[i / sub] = sub == 16 ? scale / 127.0f : scale / 7.5f;
        if (w.min_f32 && i % sub == 0) w.min_f32[i / sub] = sub == 16 ? 0.0f : -scale;
    }
}

void gpu_fill_random(cudaStream_t st, gpu_matrix *w, uint64_t seed, float scale) {
    fill_kernel<<<4096, ROW_THREADS, 0, st>>>(*w, w->count * w->rows * w->cols, seed, scale);
}
