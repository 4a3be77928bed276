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

/* A weight matrix on the device, or a stack of `count` of them ([count][rows][cols]).
 * F32 and BF16 are stored as in the file. Q8_0 and Q4_0 are repacked so
 * every 32-element block's codes are 16-byte aligned: codes[count][rows][cols]
 * (Q8_0: one byte each; Q4_0: cols/2 bytes, GGML's nibble order within a
 * block) and scales[count][rows][cols/32] (f16). */
typedef struct gpu_matrix {
    g4_dtype dtype;
    int64_t count, rows, cols;
    void *data;
    __half *scales;
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
    uint64_t weight_bytes, decode_bytes, matmul_params;
    cublasHandle_t cublas;
};

/* KV rows of one layer for all sequences: [n_seq][rows][row_size] floats. */
typedef struct gpu_kv_layer {
    float *k, *v;
    int64_t rows, ring, row_size; /* ring: slot = pos mod ring (sliding); 0: slot = pos */
} gpu_kv_layer;

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
    int *n_past;              /* [n_seq] */
    int *seq_new;             /* [n_seq] scratch */
    gpu_kv_layer *kv;         /* [L]; KV-shared layers have k = v = NULL */
    cudaStream_t stream;
    /* activations on the device, for n_batch tokens */
    float *h, *x, *o, *q, *k, *v, *attn, *gate, *up;
    float *ple, *ple_gate, *ple_tok; /* [n][L·P], [n][P], [n][L·P] */
    float *moe_x, *router, *moe_weights, *moe_gate_up, *moe_act, *moe_y, *moe_out;
    int *moe_experts;
    float *moe_sorted;        /* [n·K][D] expert inputs grouped by expert (prefill) */
    int *moe_perm, *h_experts, *h_perm; /* item of each sorted row; host copies */
    __nv_bfloat16 *x_bf16;    /* activations rounded for tensor-core GEMMs */
    int64_t x_bf16_cap;
    int32_t *d_token, *d_pos, *d_seq, *d_rows;
    float *d_logits;
    /* pinned host staging */
    int32_t *h_ints;          /* [4][n_batch]: token, pos, seq, logit rows */
    float *h_ple;             /* [n_batch][L·P] token part of the per-layer inputs */
    float *logits;            /* [logits_cap][V] host */
    int n_logits, logits_cap;
    int use_graphs;           /* G4_GPU_GRAPHS=0 turns them off */
    int one_prompt;           /* the batch at hand: one sequence, consecutive positions */
    gpu_graph graphs[GPU_GRAPH_MAX_TOKENS + 1]; /* by batch size */
};

/* Forgets the recorded graphs (their buffers changed). */
void gpu_graphs_drop(g4_gpu_context *c);

/* ---- kernels (kernels.cu, gemv.cu, attention.cu, moe.cu) ---- */

extern "C" int gpu_gemm_min_rows(void);

/* y[n][rows] (row stride y_stride) = x[n][cols] (x_stride) · Wᵀ; x_stride a multiple of 4. */
int gpu_matmul(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
               int64_t y_stride, g4_error *err);
/* The same through cuBLAS whatever n is (bf16 and f32 weights): one expert's share of a prompt. */
int gpu_matmul_gemm(g4_gpu_context *c, const gpu_matrix *w, const float *x, int64_t x_stride, int n, float *y,
                    int64_t y_stride, g4_error *err);
/* Several matrices that read the same activations (q/k/v, gate/up): one launch for decode. */
int gpu_matmul_multi(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                     const float *x, int64_t x_stride, int n, g4_error *err);
/* bf16 matrices times the n rows already in c->x_bf16, through cuBLAS. */
int gpu_matmul_bf16_input(g4_gpu_context *c, const gpu_matrix *const *w, float *const *y, const int64_t *y_stride, int k,
                          int n, g4_error *err);
/* Item p of n: y[p] = W[matrix[p]] · x[p / x_div]: the chosen experts of every token in one launch. */
int gpu_matmul_grouped(g4_gpu_context *c, const gpu_matrix *w, const int *matrix, const float *x, int64_t x_stride,
                       int x_div, int n, float *y, int64_t y_stride, g4_error *err);

void gpu_embed(cudaStream_t st, const gpu_matrix *table, const int32_t *token, int n, float scale, float *out);
/* out[r] = rmsnorm(in[r]) ⊙ weight (weight NULL: none) · extra, for rows of dim floats. */
void gpu_rmsnorm(cudaStream_t st, float *out, int64_t out_stride, const float *in, int64_t in_stride, const float *weight,
                 int rows, int dim, float eps, float extra);
/* Prefill: the norm (with weight) or the GELU gate straight into c->x_bf16's
 * layout, for gpu_matmul_bf16_input (contiguous [rows][dim]). */
void gpu_rmsnorm_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *in, const float *weight, int rows, int dim,
                      float eps);
void gpu_gelu_gate_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *gate, const float *up, int rows, int dim);
/* h[r] = (h[r] + rmsnorm(o[r]) ⊙ weight) · post_scale */
void gpu_add_rmsnorm(cudaStream_t st, float *h, const float *o, const float *weight, int rows, int dim, float eps,
                     float post_scale);
/* o[r] = rmsnorm(o[r]) ⊙ w1 + rmsnorm(e[r]) ⊙ w2 (the two MoE-layer branches) */
void gpu_rmsnorm_sum(cudaStream_t st, float *o, const float *e, const float *w1, const float *w2, int rows, int dim,
                     float eps);
/* Per-head RMSNorm (with weight) then RoPE at each token's position, in place. */
void gpu_norm_rope(cudaStream_t st, float *x, int n, int n_heads, int hd, const float *norm_w, const float *inv_freq,
                   int n_pairs, const int32_t *pos, float eps);
/* K = RoPE(k_norm(k_raw)), V = rmsnorm(v_raw) (no weight), written into each token's cache slot. */
void gpu_kv_write(cudaStream_t st, const float *k_raw, const float *v_raw, int n, int n_kv, int hd, const float *k_norm,
                  const float *inv_freq, int n_pairs, const int32_t *pos, const int32_t *seq, const gpu_kv_layer *kv,
                  float eps);
void gpu_attention(cudaStream_t st, const float *q, int n, int n_heads, int hd, const gpu_kv_layer *kv, int window,
                   const int32_t *pos, const int32_t *seq, float *out);
/* The same on the tensor cores (bf16 inputs) for a batch of one sequence at
 * consecutive positions; -1 for a head dimension it has no kernel for. */
int gpu_attention_prefill(cudaStream_t st, const float *q, int n, int n_heads, int hd, const gpu_kv_layer *kv, int window,
                          const int32_t *pos, const int32_t *seq, float *out);
/* out[r][i] = gelu(gate[r][i]) · up[r][i], rows with their own strides */
void gpu_gelu_gate(cudaStream_t st, float *out, int64_t out_stride, const float *gate, int64_t gate_stride,
                   const float *up, int64_t up_stride, int rows, int dim);
void gpu_softcap(cudaStream_t st, float *x, int64_t n, float cap);
/* Per-layer inputs: ple[t] = (rmsnorm_per_layer(ple[t] · D^-0.5) + token_part[t] · tscale) · 2^-0.5 */
void gpu_ple_combine(cudaStream_t st, float *ple, const float *token_part, int n, int L, int P, const float *norm_w,
                     float d_scale, float tscale, float eps);
/* Gathers rows idx[i] of h into x with the final norm applied. */
void gpu_gather_rmsnorm(cudaStream_t st, float *x, const float *h, const int32_t *idx, int n, int dim,
                        const float *weight, float eps);
/* Router: softmax over E, top K (ties to the lower index), renormalised,
 * times per-expert scales; experts in ascending order per token. */
void gpu_moe_topk(cudaStream_t st, const float *logits, int n, int E, int K, const float *expert_scale, int *experts,
                  float *weights);
/* out[t] = Σ_k weights[t][k] · y[t·K + k], k ascending */
/* dst[i] = src[idx[i] / div] (rows of dim floats), or with scatter dst[idx[i]] = src[i]. */
void gpu_gather_rows(cudaStream_t st, float *dst, const float *src, const int *idx, int div, int n, int dim, int scatter);
void gpu_moe_combine(cudaStream_t st, float *out, const float *y, const float *weights, int n, int K, int dim);
void gpu_to_bf16(cudaStream_t st, __nv_bfloat16 *out, const float *x, int64_t x_stride, int n, int64_t cols);
/* Deterministic pseudo-random fill: uniform in [-scale, scale]. */
void gpu_fill_random(cudaStream_t st, gpu_matrix *w, uint64_t seed, float scale);

#endif
