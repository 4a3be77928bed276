/* A prompt chunk's experts on the tensor cores (gemma4-architecture.md §5.3,
 * the same sums as the grouped GEMV of decode).
 *
 * The routing is copied to the host once a layer; the (token, k) items are
 * sorted by expert there and each expert's rows padded with zero rows to a
 * multiple of T. Every tile of T rows is then one problem of a batched cuBLAS
 * GEMM, so a layer is two cuBLAS calls (gate/up, down) whatever the number of
 * experts chosen, instead of a conversion and a GEMM per expert and product
 * (256 of each a layer for the 26B-A4B: launch-bound, not compute-bound).
 * T is the largest power of two up to 64 (G4_MOE_TILE_MAX) whose padding
 * (at most E·(T−1) rows) stays within the items' count, so the padded work
 * is at most twice the real. On the 26B-A4B's 2048-token prompt (H100),
 * tallest tiles of 64 rows gave 24741 / 24796 t/s, 128 rows 24511 / 24478,
 * 32 rows 23235.
 * Quantised stacks are dequantised to bf16 whole, one at a time, into the
 * context's weight scratch (gemm.cu): 1 GiB for the 26B-A4B's gate/up.
 * G4_GPU_PROFILE=1 times each step. */
#include "cuda/gpu.h"
#include "cuda/moe_topk.cuh"

#include <stdlib.h>

int gpu_moe_padded_rows(int64_t items) { return (int)(2 * items); }

static int tile_rows(int items, int E) {
    const char *s = getenv("G4_MOE_TILE_MAX"); /* tuning switch: the tallest tile */
    int t = s && atoi(s) > 0 ? atoi(s) : 64;
    while (t > 1 && (int64_t)E * (t - 1) > items) t /= 2;
    return t;
}

/* C[p] = A[p] · B[p] for every tile p: A a bf16 [rows][cols] weight matrix
 * (one expert's), B t rows of bf16 activations, C t rows of float outputs. */
static int batched_gemm(g4_gpu_context *c, void **ptrs, int problems, int rows, int cols, int t, g4_error *err) {
    const float one = 1, zero = 0;
    cublasSetStream(c->gm->cublas, c->stream);
    /* column-major view, as cublas_matmul: Cᵀ[rows][t] = op(A)ᵀ Bᵀ */
    cublasStatus_t s = cublasGemmBatchedEx(c->gm->cublas, CUBLAS_OP_T, CUBLAS_OP_N, rows, t, cols, &one,
                                           (const void *const *)ptrs, CUDA_R_16BF, cols,
                                           (const void *const *)(ptrs + problems), CUDA_R_16BF, cols, &zero,
                                           ptrs + 2 * problems, CUDA_R_32F, rows, problems, CUBLAS_COMPUTE_32F,
                                           CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) return g4_fail(err, "cuBLAS batched GEMM failed (status %d)", (int)s);
    return 0;
}

int gpu_experts_gemm(g4_gpu_context *c, const gpu_matrix *gate_up, const gpu_matrix *down, int n, int K, g4_error *err) {
    const int E = (int)gate_up->count, D = (int)gate_up->cols, I2 = (int)gate_up->rows, Im = (int)down->cols;
    const int items = n * K, t = tile_rows(items, E);
    if (E > TOPK_MAX_EXPERTS) return g4_fail(err, "the GPU backend handles at most %d experts", TOPK_MAX_EXPERTS);
    CUDA_TRY(cudaMemcpyAsync(c->h_experts, c->moe_experts, sizeof(int) * items, cudaMemcpyDeviceToHost, c->stream));
    CUDA_TRY(cudaStreamSynchronize(c->stream));
    MARK("experts: routing copy");

    /* each expert's rows from start[e], padded to a multiple of t */
    int count[TOPK_MAX_EXPERTS + 1] = {0}, start[TOPK_MAX_EXPERTS + 1];
    for (int i = 0; i < items; i++) count[c->h_experts[i]]++;
    int padded = 0, problems = 0;
    for (int e = 0; e < E; e++) {
        start[e] = padded;
        padded += (count[e] + t - 1) / t * t;
        problems += (count[e] + t - 1) / t;
    }
    for (int r = 0; r < padded; r++) c->h_perm[r] = -1; /* padding: zero rows, results dropped */
    for (int e = 0; e < E; e++) count[e] = start[e];
    for (int i = 0; i < items; i++) c->h_perm[count[c->h_experts[i]]++] = i;

    /* the tiles' pointers: A, B, C of gate/up, then of down */
    const int64_t gu_rows = gate_up->count * I2, dn_rows = down->count * D;
    int dequant = gate_up->dtype != G4_DTYPE_BF16 || down->dtype != G4_DTYPE_BF16;
    size_t most = sizeof(__nv_bfloat16) * (size_t)(gu_rows * D > dn_rows * Im ? gu_rows * D : dn_rows * Im);
    if (dequant && gpu_buffer_reserve(&c->w_bf16, most, err)) return -1;
    const char *gu = (const char *)(gate_up->dtype == G4_DTYPE_BF16 ? gate_up->data : c->w_bf16.data);
    const char *dn = (const char *)(down->dtype == G4_DTYPE_BF16 ? down->data : c->w_bf16.data);
    __nv_bfloat16 *x = (__nv_bfloat16 *)c->moe_y;     /* [padded][D] gathered inputs, bf16 */
    __nv_bfloat16 *act = (__nv_bfloat16 *)c->moe_act; /* [padded][Im] gated activations, bf16 */
    void **p = c->h_moe_ptrs, **q = p + 3 * problems;
    for (int e = 0, j = 0; e < E; e++)
        for (int r = start[e]; r < count[e]; r += t, j++) { /* count[e]: now the end of e's real rows */
            p[j] = (void *)(gu + (size_t)e * I2 * D * sizeof(__nv_bfloat16));
            p[problems + j] = x + (int64_t)r * D;
            p[2 * problems + j] = c->moe_gate_up + (int64_t)r * I2;
            q[j] = (void *)(dn + (size_t)e * D * Im * sizeof(__nv_bfloat16));
            q[problems + j] = act + (int64_t)r * Im;
            q[2 * problems + j] = c->moe_sorted + (int64_t)r * D;
        }
    CUDA_TRY(cudaMemcpyAsync(c->moe_perm, c->h_perm, sizeof(int) * padded, cudaMemcpyHostToDevice, c->stream));
    CUDA_TRY(cudaMemcpyAsync(c->moe_ptrs, p, sizeof(void *) * 6 * problems, cudaMemcpyHostToDevice, c->stream));

    gpu_gather_rows_bf16(c->stream, x, c->moe_x, c->moe_perm, K, padded, D, c->moe_rows);
    MARK("experts: plan+gather");
    if (gate_up->dtype != G4_DTYPE_BF16) gpu_dequant_bf16(c->stream, gate_up, 0, gu_rows, (__nv_bfloat16 *)gu);
    TRY(batched_gemm(c, c->moe_ptrs, problems, I2, D, t, err));
    MARK("experts: gate/up");
    gpu_gelu_gate_bf16(c->stream, act, c->moe_gate_up, c->moe_gate_up + Im, I2, padded, Im);
    MARK("experts: gelu");
    if (down->dtype != G4_DTYPE_BF16) gpu_dequant_bf16(c->stream, down, 0, dn_rows, (__nv_bfloat16 *)dn); /* after gate/up's reads */
    TRY(batched_gemm(c, c->moe_ptrs + 3 * problems, problems, D, Im, t, err));
    MARK("experts: down");
    c->moe_out = c->moe_sorted; /* the row chain finds each pair's row through moe_rows */
    c->moe_out_rows = c->moe_rows;
    return 0;
}
