/* The seam between the engine and the CUDA backend (docs/cuda.md). The CPU
 * build links backend_none.c, where every entry point reports that the
 * library was built without CUDA; `make cuda` links the real backend from
 * the other files of this folder. Plain C: the API layer includes it. */
#ifndef G4_CUDA_BACKEND_H
#define G4_CUDA_BACKEND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* the engine's headers are C */
#endif

#include "model/forward.h"
#include "model/model.h"
#include "util/error.h"

typedef struct g4_gpu_model g4_gpu_model;     /* the weights, resident on the device */
typedef struct g4_gpu_context g4_gpu_context; /* KV cache and activations of one context */

/* Number of usable CUDA devices; 0 in a CPU build or without a GPU. */
int g4_gpu_device_count(void);

/* Copies the model's weights to the device (bf16, f32, Q8_0 and Q4_0 as
 * stored; f16 converted to f32). The per-layer embedding table stays in host
 * memory. Tensors without data (a synthetic model, g4_gpu_synth_weights) are
 * filled with random values on the device. */
int g4_gpu_model_new(const g4_model *m, g4_gpu_model **out, g4_error *err);
void g4_gpu_model_free(g4_gpu_model *g);

/* Weight descriptors of a synthetic model of config cfg and file type ftype
 * (g4_ftype names: bf16, q8_0, q4_0, f32): shapes and storage types with no
 * data, and norm vectors of ones. For g4_gpu_model_new. */
int g4_gpu_synth_weights(const g4_config *cfg, const char *ftype, g4_weights *w, g4_error *err);

int g4_gpu_context_new(g4_gpu_model *gm, int n_seq, int n_ctx, int n_batch, g4_gpu_context **out, g4_error *err);
void g4_gpu_context_free(g4_gpu_context *c);

/* The batch through the model on the device; afterwards the logits of the
 * rows that asked for them are in g4_gpu_logits (row order = batch order). */
int g4_gpu_forward(g4_gpu_context *c, const g4_batch *b, g4_error *err);
float *g4_gpu_logits(g4_gpu_context *c, int *n_logits);
/* Keeps only the first row of logits (gemma4_eval's "last row first"). */
void g4_gpu_logits_keep_row(g4_gpu_context *c, int row);

int g4_gpu_seq_length(const g4_gpu_context *c, int seq);
int g4_gpu_seq_clear(g4_gpu_context *c, int seq);
int g4_gpu_seq_copy(g4_gpu_context *c, int src, int dst, g4_error *err);
int g4_gpu_seq_truncate(g4_gpu_context *c, int seq, int n_keep, g4_error *err);

/* Device-to-device copy bandwidth in GB/s (bytes read plus bytes written),
 * the bound decode speed is measured against. */
int g4_gpu_copy_bandwidth(double *gb_per_s, g4_error *err);
/* Bytes of weights one decode step of one token reads (chosen experts only,
 * one embedding row, the whole LM head), for the bandwidth bound. */
uint64_t g4_gpu_decode_bytes(const g4_gpu_model *g);
/* Device memory the weights take, in bytes. */
uint64_t g4_gpu_weight_bytes(const g4_gpu_model *g);
/* Weights one token multiplies, the LM head excluded (attention not
 * counted); *prompt_row: the same for a prompt row whose logits are not
 * wanted (dropped after the last layer that writes the KV cache). */
uint64_t g4_gpu_matmul_params(const g4_gpu_model *g, uint64_t *prompt_row);
/* Measured bf16 tensor-core throughput (an 8192^3 cuBLAS GEMM), TFLOP/s. */
int g4_gpu_gemm_tflops(g4_gpu_model *g, double *tflops, g4_error *err);
/* Router launches that also chose the experts, so far in this process (tests check that the path ran). */
long g4_gpu_fused_route_count(void);
/* Decode attention launches with the q/k norms and RoPE folded in (attention.cu), so far in this process. */
long g4_gpu_attention_rope_count(void);
/* Decode GEMV launches that gave each warp several rows (gemv.cu), so far in this process. */
long g4_gpu_rows_kernel_count(void);

#ifdef __cplusplus
}
#endif

#endif
