/* The CUDA backend's own structures: weights resident on the device, the
 * per-context KV cache and activations, and the kernels the forward pass
 * (forward.cu) is written in. C++ (nvcc) only; the engine sees backend.h. */
#ifndef G4_CUDA_GPU_H
#define G4_CUDA_GPU_H

#include "cuda/backend.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

/* Fails the enclosing function (which returns int and has `err`) on a CUDA error. */
#define CUDA_TRY(call)                                                                                \
    do {                                                                                              \
        cudaError_t e_ = (call);                                                                      \
        if (e_ != cudaSuccess) return g4_fail(err, "CUDA: %s (%s:%d)", cudaGetErrorString(e_), __FILE__, __LINE__); \
    } while (0)
/* Fails the enclosing function on a non-zero result whose error is already set. */
#define TRY(x) do { if (x) return -1; } while (0)

/* Device storage forms of the other block types (not file types: values past
 * g4_dtype's, so switch on (int)dtype). Each element decodes as
 * scale·code + min with float32 scale and min precomputed at upload: GGML
 * computes these factors in float32 too (Q4_K: d·sc and dmin·m, Q6_K:
 * d·sc), so the weights are bit-identical to its dequantisation. */
#define GPU_DTYPE_Q4_AFFINE32 ((g4_dtype)G4_DTYPE_COUNT)       /* Q4_K, Q4_1 */
#define GPU_DTYPE_Q8_AFFINE16 ((g4_dtype)(G4_DTYPE_COUNT + 1)) /* Q5_K, Q6_K, Q5_0, Q5_1 */

/* A weight matrix on the device, or a stack of `count` of them ([count][rows][cols]).
 * F32 and BF16 are stored as in the file. Q8_0 and Q4_0 are repacked so
 * every 32-element block's codes are 16-byte aligned: codes[count][rows][cols]
 * (Q8_0: one byte each; Q4_0: cols/2 bytes, GGML's nibble order within a
 * block) and scales[count][rows][cols/32] (f16).
 * GPU_DTYPE_Q4_AFFINE32: 4-bit codes in Q4_0's order (16 bytes per 32
 *   elements, byte j: element j in the low nibble, j + 16 in the high one)
 *   and scale_f32, min_f32 [count][rows][cols/32]: y = scale·q + min
 *   (Q4_K: d·sc and −dmin·m per 32-element sub-block; Q4_1: d and m).
 * GPU_DTYPE_Q8_AFFINE16: int8 codes, one byte per element, and scale_f32
 *   [count][rows][cols/16], min_f32 the same or NULL (no min): y = scale·q + min
 *   (Q6_K: d·sc and q − 32 per 16 elements; Q5_K, Q5_0, Q5_1 repeat their
 *   per-32 factors; Q5_0's code is q − 16). One byte per code costs more
 *   memory than 5 or 6 bits but gives one aligned load per 32 elements. */
typedef struct gpu_matrix {
    g4_dtype dtype;
    int64_t count, rows, cols;
    void *data;
    __half *scales;
    float *scale_f32, *min_f32;
} gpu_matrix;

/* Bytes of one matrix of the stack (codes and scales). */
extern "C" uint64_t gpu_matrix_bytes(const gpu_matrix *w);

typedef struct gpu_layer {
    float *input_norm, *q_norm, *k_norm, *post_attn_norm, *rope_inv_freq;
    gpu_matrix q_proj, k_proj, v_proj, o_proj; /* k/v absent (data NULL) as on the host */
    float *pre_ffn_norm, *post_ffn_norm;
    gpu_matrix gate_proj, up_proj, down_proj;
    /* mixture of experts: gate and up always fused [E][2·Im][D] here */
    float *post_ffn_norm_1, *pre_ffn_norm_2, *post_ffn_norm_2, *router_scale, *router_expert_scale;
    gpu_matrix router_proj, experts_gate_up, experts_down;
    /* Per-Layer Embeddings */
    gpu_matrix ple_gate, ple_proj;
    float *ple_post_norm;
    float layer_scalar;
} gpu_layer;

struct g4_gpu_model {
    const g4_config *cfg;     /* the host model's */
    gpu_matrix embed;         /* [V, D]; also the tied LM head */
    float embed_scale;
    const g4_tensor *ple_embed; /* [V_ple, L·P] in host memory: rows copied per token */
    float ple_embed_scale;
    gpu_matrix ple_model_proj;
    float *ple_proj_norm, *final_norm;
    gpu_layer *layer;         /* [L] host array of device pointers */
    void **allocs;            /* every device allocation, for freeing */
    int n_allocs, cap_allocs;
    uint64_t weight_bytes, decode_bytes, matmul_params, prompt_matmul_params;
    cublasHandle_t cublas;
};

/* KV rows of one layer for all sequences: [n_seq][rows][row_size] floats. */
typedef struct gpu_kv_layer {
    float *k, *v;
    int64_t rows, ring, row_size; /* ring: slot = pos mod ring (sliding); 0: slot = pos */
} gpu_kv_layer;

/* Decode attention split over key ranges when there are too few (token,
 * head) pairs to fill the GPU: each split's partial sums, and per pair a
 * counter by which the last split to finish knows to merge (it resets it). */
typedef struct gpu_attn_split {
    float *part;    /* [2·target][max_hd + 2]: sums, maximum, denominator */
    int *count;     /* [target] (only pairs fewer than target split), zero between launches */
    int target;     /* blocks to aim for: two per SM */
    int max_hd;
    int min_keys;   /* fewest keys a split takes (0: the kernel's default) */
} gpu_attn_split;

typedef struct gpu_profile gpu_profile;

/* Device scratch that grows on demand. */
typedef struct gpu_buffer {
    void *data;
    size_t bytes;
} gpu_buffer;

/* A recorded forward of a small batch (forward.cu, run_graph). */
#define GPU_GRAPH_MAX_TOKENS 16
typedef struct gpu_graph {
    cudaGraphExec_t exec;
    int n_rows;
} gpu_graph;

struct g4_gpu_context {
    g4_gpu_model *gm;
    int n_seq, n_ctx, n_batch;
    int gemm_min_rows;        /* products of at least this many rows go to cuBLAS */
    int attn_prefetch_keys;   /* decode: older keys asked into L2 before attention (0: none) */
    int *n_past;              /* [n_seq] */
    int *seq_new;             /* [n_seq] scratch */
    gpu_kv_layer *kv;         /* [L]; KV-shared layers have k = v = NULL */
    cudaStream_t stream;
    cudaStream_t side;        /* the MoE branch at decode, beside the dense MLP */
    cudaEvent_t fork, join;
    /* activations on the device, for n_batch tokens */
    float *h, *x, *o, *q, *k, *v, *attn, *gate, *up;
    float *ple, *ple_gate, *ple_tok; /* [n][L·P], [n][P], [n][L·P] */
    float *router_x, *moe_x, *router, *moe_weights, *moe_gate_up, *moe_act, *moe_y;
    int *moe_experts;
    int *route_done;          /* gpu_route's counter */
    float *moe_sorted;        /* [padded rows][D] expert outputs grouped by expert (prefill, moe_gemm.cu) */
    int *moe_perm, *h_experts, *h_perm; /* item of each sorted row (-1: padding); host copies */
    void **moe_ptrs, **h_moe_ptrs; /* the batched GEMMs' tile pointers; host copy */
    int *moe_rows;            /* [n·K] the sorted row of each (token, expert) pair (prefill) */
    const float *moe_out;     /* where the last experts' outputs are: moe_y, or moe_sorted in expert */
    const int *moe_out_rows;  /* order with moe_rows (then NULL: token order) */
    __nv_bfloat16 *x_bf16;    /* activations rounded for tensor-core GEMMs */
    int64_t x_bf16_cap;
    int32_t *d_token, *d_pos, *d_seq, *d_rows;
    float *d_logits;
    /* pinned host staging */
    int32_t *h_ints;          /* [6][n_batch]: token, pos, seq, logit rows, and the
                               * positions and sequences of those rows */
    const int32_t *host_pos, *host_seq; /* the rows still carried: h_ints' pos and seq, or the
                                         * logit rows' after keep_logit_rows (forward.cu) */
    float *h_ple;             /* [n_batch][L·P] token part of the per-layer inputs */
    float *logits;            /* [logits_cap][V] host */
    int n_logits, logits_cap;
    gpu_buffer attn_scratch;  /* of gpu_attention_gemm, grown on demand */
    gpu_buffer w_bf16;        /* quantised weights dequantised for a GEMM (gemm.cu), grown on demand */
    size_t dequant_slice_bytes; /* 0: gemm.cu's default (tests set it to force several slices) */
    gpu_attn_split attn_split;
    int use_graphs;           /* G4_GPU_GRAPHS=0 turns them off */
    int fuse_rope;            /* decode: q/k norms and RoPE inside attention: forward.cu (-1: by the q/k/v rows) */
    int experts_on_main;      /* decode's MoE layers, which branch waits for the side stream: forward.cu (-1: by weight type) */
    gpu_profile *profile;     /* G4_GPU_PROFILE=1 */
    int one_prompt;           /* the rows still carried: one sequence, consecutive positions */
    int rows_kept;            /* only the logit rows are left, in order (forward.cu) */
    gpu_graph graphs[GPU_GRAPH_MAX_TOKENS + 1]; /* by batch size */
};

/* G4_GPU_PROFILE=1: stage timings (profile.cu); NULL when off. */
gpu_profile *gpu_profile_new(void);
void gpu_profile_mark(gpu_profile *p, cudaStream_t st, int side, const char *stage);
/* In forward code with a context c: the stage that just ended on c->stream (side: the second stream). */
#define MARK(stage) gpu_profile_mark(c->profile, c->stream, c->stream == c->side, stage)
void gpu_profile_collect(gpu_profile *p);
void gpu_profile_free(gpu_profile *p);

/* Forgets the recorded graphs (their buffers changed). */
void gpu_graphs_drop(g4_gpu_context *c);

/* ---- kernels (kernels.cu, gemv.cu, attention.cu, moe.cu) ---- */

/* Programmatic dependent launch (sm_90): a kernel started with gpu_launch is
 * scheduled while the kernel before it in the stream still runs, and waits
 * in gpu_pdl_wait() for it to finish. A decode step is hundreds of short
 * kernels; this hides the gap between them. Every such kernel calls
 * gpu_pdl_wait() before it reads or writes memory another kernel touches
 * (only weights may be read before), and then lets its own successor be
 * scheduled. */
static __device__ __forceinline__ void gpu_pdl_wait() {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

template <typename... KArgs, typename... Args>
static inline void gpu_launch_smem(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                                   Args... args) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    cudaLaunchKernelEx(&cfg, kernel, (KArgs)args...);
}

template <typename... KArgs, typename... Args>
static inline void gpu_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, cudaStream_t st, Args... args) {
    gpu_launch_smem(kernel, grid, block, 0, st, args...);
}

static __device__ __forceinline__ float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* √(2/π) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

extern "C" int gpu_gemm_min_rows(void);
/* Warps resident on the device at full occupancy (0 if it cannot be queried; gemv.cu). */
int64_t gpu_resident_warps(void);

/* y[n][rows] (row stride y_stride) = x[n][cols] (x_stride) · Wᵀ; x_stride a multiple of 4. */
int gpu_matmul(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
               int64_t y_stride, g4_error *err);
/* The same through cuBLAS whatever n is (weights of a gpu_gemm_type). */
int gpu_matmul_gemm(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
                    int64_t y_stride, g4_error *err);
/* Several matrices that read the same activations (q/k/v, gate/up): one launch for decode. */
int gpu_matmul_multi(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                     const float *x, int64_t x_stride, int n, g4_error *err);
/* gemm.cu. Weight types cuBLAS can take (f32; bf16 and the quantised forms, dequantised to bf16). */
int gpu_gemm_type(g4_dtype t);
/* ... of those, the ones computed in bf16 (activations rounded to bf16 in c->x_bf16). */
int gpu_gemm_in_bf16(g4_dtype t);
/* k matrices of one input through cuBLAS; converted: c->x_bf16 already holds x rounded to bf16. */
int gpu_matmul_gemm_multi(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                          const float *x, int64_t x_stride, int n, int converted, g4_error *err);
/* Rows [row0, row0 + rows) of a quantised stack ([count·rows][cols]) as bf16. */
void gpu_dequant_bf16(cudaStream_t st, const gpu_matrix *w, int64_t row0, int64_t rows, __nv_bfloat16 *out);
/* Grows b to at least `bytes` (its contents are lost). */
int gpu_buffer_reserve(gpu_buffer *b, size_t bytes, g4_error *err);
/* Item p of n: y[p] = W[matrix[p]] · x[p / x_div]: the chosen experts of every token in one launch.
 * glu: W is a fused [2·I][cols] gate/up stack and y[p] = gelu(gate · x) ⊙ (up · x) ([I] per item). */
int gpu_matmul_grouped(g4_gpu_context *c, const gpu_matrix *w, const int *matrix, const float *x, int64_t x_stride,
                       int x_div, int n, float *y, int64_t y_stride, int glu, g4_error *err);
/* The router at decode: logits[n][E] = x · Wᵀ, then the last block to finish
 * picks each token's experts (as gpu_moe_topk): one launch instead of two. */
typedef struct gpu_route {
    int *done; /* block counter, zero between launches */
    int K;
    const float *expert_scale;
    int *experts;
    float *weights;
} gpu_route;
int gpu_matmul_route(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *logits,
                     const gpu_route *route, g4_error *err);
/* y = gelu(x · Wᵀ) ⊙ mul (rows of mul_stride floats): the per-layer-input gate, the gating done on the GEMV's way out. */
int gpu_matmul_gelu_mul(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
                        int64_t y_stride, const float *mul, int64_t mul_stride, g4_error *err);
/* Decode-size batches: y = gelu(x · gateᵀ) ⊙ (x · upᵀ) in one GEMV launch. */
int gpu_matmul_glu(g4_gpu_context *c, const gpu_matrix *gate, const gpu_matrix *up, const float *x, int64_t x_stride,
                   int n, float *y, int64_t y_stride, g4_error *err);

void gpu_embed(cudaStream_t st, const gpu_matrix *table, const int32_t *token, int n, float scale, float *out);
/* Prefill: the GELU gate straight into c->x_bf16's layout, for
 * gpu_matmul_gemm_multi's converted input (contiguous [rows][dim]; gate and up rows in_stride floats apart). */
void gpu_gelu_gate_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *gate, const float *up, int64_t in_stride,
                        int rows, int dim);

/* One output of a row chain: rmsnorm(h) ⊙ w · extra (w NULL: no weight), as
 * float32 rows of `stride` floats or, for a tensor-core product, bf16 [rows][dim]. */
typedef struct gpu_norm_out {
    float *out;
    __nv_bfloat16 *out_bf16;
    int64_t stride;
    const float *w;
    float extra;
} gpu_norm_out;

#define GPU_CHAIN_OUTS 3
/* The per-row steps between two products of the forward pass, in one launch
 * (decode spends more time starting such kernels than running them). Steps
 * whose inputs are NULL are skipped:
 *   experts:  e = Σ_k moe_weights[k] · moe_y[k]      (k ascending, as moe.c; row k of a
 *             token is moe_y's row moe_rows[r·K + k], or r·K + k where moe_rows is NULL)
 *   branches: o = rmsnorm(o) ⊙ n1 + rmsnorm(e) ⊙ n2  (MoE layers)
 *   residual: h = (h + rmsnorm(o) ⊙ post) · scale
 *   norms:    out_j = rmsnorm(h) ⊙ w_j · extra_j     (the next products' inputs) */
typedef struct gpu_row_chain {
    const float *moe_y, *moe_weights;
    const int *moe_rows;
    int K;
    const float *n1, *n2;
    const float *o, *post;
    float scale;
    gpu_norm_out out[GPU_CHAIN_OUTS];
    int n_out;
} gpu_row_chain;
/* Rows of up to 6144 values (every Gemma 4 hidden size: at most 5376). */
int gpu_row_chain_fits(int dim);
void gpu_row_chain_run(cudaStream_t st, float *h, const gpu_row_chain *ch, int rows, int dim, float eps);

#define GPU_ATTN_PREFETCH_KEYS 256 /* a decode step's older keys asked into L2 early, at most */

/* After the q/k/v products: q = RoPE(q_norm(q)) in place, and unless k_raw is
 * NULL (KV-shared layers) K = RoPE(k_norm(k_raw)), V = rmsnorm(v_raw) (no
 * weight) into each token's cache slot; one launch. */
typedef struct gpu_qk_rope {
    float *q;
    int n_heads, n_kv, hd, n_pairs;
    const float *q_norm, *k_norm, *inv_freq;
    const float *k_raw, *v_raw;
    const int32_t *pos, *seq;
    gpu_kv_layer kv;
    float eps;
    /* decode: the older keys attention will read (the layer's cache, `window`
     * positions, at most prefetch_keys), asked for into L2 before this kernel
     * waits for the q/k/v product */
    gpu_kv_layer attn_kv;
    int window, prefetch_keys;
} gpu_qk_rope;
void gpu_qk_rope_run(cudaStream_t st, const gpu_qk_rope *a, int n);
/* One token's attention with the q/k norms, RoPE and the cache write of
 * gpu_qk_rope_run folded in (r->q raw, r->attn_kv the cache read and, unless
 * r->k_raw is NULL, written): one launch instead of two (attention.cu). */
void gpu_attention_rope(cudaStream_t st, const gpu_qk_rope *r, float *out, const gpu_attn_split *split);
/* split: scratch for splitting the keys of few (token, head) pairs; NULL: one block per pair. */
void gpu_attention(cudaStream_t st, const float *q, int n, int n_heads, int hd, const gpu_kv_layer *kv, int window,
                   const int32_t *pos, const int32_t *seq, float *out, const gpu_attn_split *split);
/* The same on the tensor cores (bf16 inputs) for a batch of one sequence at
 * consecutive positions; -1 for a head dimension it has no kernel for. */
int gpu_attention_prefill(cudaStream_t st, const float *q, int n, int n_heads, int hd, const gpu_kv_layer *kv, int window,
                          const int32_t *pos, const int32_t *seq, float *out);
/* The same through cuBLAS (bf16 products, S in memory) for a chunk of
 * sequence seq at positions p0 .. p0 + n - 1; -1 (nothing done) where the
 * scores would not fit or the keys wrap the ring. */
int gpu_attention_gemm(cublasHandle_t h, cudaStream_t st, gpu_buffer *scratch, const float *q, int n, int n_heads, int hd,
                       const gpu_kv_layer *kv, int window, int64_t p0, int seq, float *out);
/* out[r][i] = gelu(gate[r][i]) · up[r][i], rows with their own strides */
void gpu_gelu_gate(cudaStream_t st, float *out, int64_t out_stride, const float *gate, int64_t gate_stride,
                   const float *up, int64_t up_stride, int rows, int dim);
void gpu_softcap(cudaStream_t st, float *x, int64_t n, float cap);
/* Per-layer inputs: ple[t] = (rmsnorm_per_layer(ple[t] · D^-0.5) + token_part[t] · tscale) · 2^-0.5 */
void gpu_ple_combine(cudaStream_t st, float *ple, const float *token_part, int n, int L, int P, const float *norm_w,
                     float d_scale, float tscale, float eps);
/* Gathers rows idx[i] of h (rows 0 .. n-1 where idx is NULL) into x with the final norm applied. */
void gpu_gather_rmsnorm(cudaStream_t st, float *x, const float *h, const int32_t *idx, int n, int dim,
                        const float *weight, float eps);
/* Router: softmax over E, top K (ties to the lower index), renormalised,
 * times per-expert scales; experts in ascending order per token. */
void gpu_moe_topk(cudaStream_t st, const float *logits, int n, int E, int K, const float *expert_scale, int *experts,
                  float *weights);
/* dst[i] = src[idx[i]] (rows of dim floats). */
void gpu_gather_rows(cudaStream_t st, float *dst, const float *src, const int *idx, int n, int dim);
/* dst[i] = bf16(src[idx[i] / div]), zeros where idx[i] < 0; and inverse[idx[i]] = i. */
void gpu_gather_rows_bf16(cudaStream_t st, __nv_bfloat16 *dst, const float *src, const int *idx, int div, int n, int dim,
                          int *inverse);
/* A prompt chunk's experts (moe_gemm.cu): c->moe_out / moe_out_rows from moe_x and the routing
 * in moe_experts, through two batched tensor-core GEMMs (bf16 stacks of E matrices). */
int gpu_experts_gemm(g4_gpu_context *c, const gpu_matrix *gate_up, const gpu_matrix *down, int n, int K, g4_error *err);
/* Rows of moe_sorted and moe_gate_up gpu_experts_gemm may use for `items` (token, expert) pairs. */
int gpu_moe_padded_rows(int64_t items);
void gpu_to_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *x, int64_t x_stride, int n, int64_t cols);
/* Deterministic pseudo-random fill: uniform in [-scale, scale]. */
void gpu_fill_random(cudaStream_t st, gpu_matrix *w, uint64_t seed, float scale);

#endif
