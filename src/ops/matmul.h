/* y = x · Wᵀ for a weight W stored as [out, in] (PyTorch nn.Linear layout) in
 * any supported storage type, with float32 activations and accumulation. */
#ifndef G4_OPS_MATMUL_H
#define G4_OPS_MATMUL_H

#include "ops/tensor.h"
#include "util/threadpool.h"

/* x: [n][in] row-major, y: [n][out]. W must be 2-D: F32, F16, BF16 or a GGML
 * block type (those with an integer kernel go through src/ops/qdot.c). */
void g4_matmul(g4_threadpool *pool, const g4_tensor *W, const float *x, int n, float *y);

/* One product of a batch: y = x · Wᵀ, x: [n][in], y: [n][out]. */
typedef struct {
    const g4_tensor *W;
    const float *x;
    int n;
    float *y;
} g4_product;

/* The products p[0..k), k ≤ G4_MATMUL_BATCH: q/k/v, gate/up, the chosen
 * experts' matrices. Repacked ones run as one parallel job, with one
 * quantisation of each distinct input, so the threads meet once instead of
 * once a matrix; each y is what g4_matmul gives. */
#define G4_MATMUL_BATCH 16
void g4_matmul_batch(g4_threadpool *pool, const g4_product *p, int k);

/* Lets idle workers start reading the start of W while the caller does the
 * serial work before the product of n tokens y = x · Wᵀ
 * (g4_threadpool_read_ahead): a decode step spends about a tenth of its time
 * in such gaps. Only products of a few tokens wait on memory; for larger n
 * this does nothing. */
void g4_matmul_read_ahead(g4_threadpool *pool, const g4_tensor *W, int n);

/* Σ a[i]·b[i] over float32 vectors. */
float g4_dot_f32(const float *a, const float *b, int64_t n);
/* out[h·out_stride + j] = (q + h·q_stride) · keys[j] for h < n_rows, j < n_keys
 * (vectors of n): attention scores, each key loaded once for several rows.
 * Keys are floats, or IEEE halves with G4_ROWS_F16. G4_ROWS_WIDE: the keys
 * are in cache (prefill reads them for every query), so take the 512-bit
 * kernels where the CPU has them; streaming keys from memory (decode) they
 * were slower than the 256-bit ones (docs/benchmarks.md). */
enum { G4_ROWS_F16 = 1, G4_ROWS_WIDE = 2 };
void g4_dot_rows(const float *q, int64_t q_stride, int n_rows, const void *const *keys, int n_keys, int64_t n,
                 int flags, float *out, int64_t out_stride);
/* 1 if G4_ROWS_WIDE can use 512-bit kernels on this CPU (n a multiple of 16). */
int g4_wide_kernels(int64_t n);

/* Dot product of row `row` of W with x (length in). */
float g4_dot_row(const g4_tensor *W, int64_t row, const float *x);

/* Copies row `row` of W into out as float32 (embedding lookups). */
void g4_row_to_f32(const g4_tensor *W, int64_t row, float *out);

#endif
