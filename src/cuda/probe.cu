/* The two figures speed is measured against: device-to-device copy
 * bandwidth (the decode bound) and a large bf16 cuBLAS GEMM (the prefill
 * bound), both timed with CUDA events on the default stream. */
#include "cuda/gpu.h"

/* Milliseconds between two events recorded around the work; frees them. */
static float elapsed_ms(cudaEvent_t e0, cudaEvent_t e1) {
    float ms = 0;
    cudaEventSynchronize(e1);
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return ms;
}

extern "C" int g4_gpu_copy_bandwidth(double *gb_per_s, g4_error *err) {
    *gb_per_s = 0;
    size_t bytes = (size_t)1 << 30;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0, e1;
    CUDA_TRY(cudaMalloc(&a, bytes));
    if (cudaMalloc(&b, bytes) != cudaSuccess) { cudaFree(a); return g4_fail(err, "cannot allocate 1 GiB for the copy test"); }
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaMemset(a, 1, bytes);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice); /* warm-up */
    const int reps = 10;
    cudaEventRecord(e0);
    for (int i = 0; i < reps; i++) cudaMemcpy(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    float ms = elapsed_ms(e0, e1);
    cudaFree(a);
    cudaFree(b);
    CUDA_TRY(cudaGetLastError());
    *gb_per_s = 2.0 * bytes * reps / (ms * 1e-3) / 1e9; /* read + write */
    return 0;
}

extern "C" int g4_gpu_gemm_tflops(g4_gpu_model *g, double *tflops, g4_error *err) {
    *tflops = 0;
    const int n = 8192, reps = 10;
    size_t bytes = sizeof(__nv_bfloat16) * (size_t)n * n;
    void *a = NULL, *b = NULL, *y = NULL;
    cudaEvent_t e0, e1;
    CUDA_TRY(cudaMalloc(&a, bytes));
    if (cudaMalloc(&b, bytes) != cudaSuccess || cudaMalloc(&y, 2 * bytes) != cudaSuccess) {
        cudaFree(a);
        cudaFree(b);
        return g4_fail(err, "cannot allocate the GEMM test matrices");
    }
    gpu_matrix ma = {G4_DTYPE_BF16, 1, n, n, a, NULL, NULL, NULL}, mb = {G4_DTYPE_BF16, 1, n, n, b, NULL, NULL, NULL};
    gpu_fill_random(0, &ma, 1, 1.0f); /* random data: zeros would flatter the tensor cores */
    gpu_fill_random(0, &mb, 2, 1.0f);
    cublasSetStream(g->cublas, 0);
    const float one = 1, zero = 0;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    for (int i = 0; i <= reps && s == CUBLAS_STATUS_SUCCESS; i++) {
        if (i == 1) cudaEventRecord(e0); /* the first product is the warm-up */
        s = cublasGemmEx(g->cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n, &zero, y,
                         CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
    cudaEventRecord(e1);
    float ms = elapsed_ms(e0, e1);
    cudaFree(a);
    cudaFree(b);
    cudaFree(y);
    if (s != CUBLAS_STATUS_SUCCESS) return g4_fail(err, "cuBLAS GEMM failed (status %d)", (int)s);
    CUDA_TRY(cudaGetLastError());
    *tflops = 2.0 * n * n * (double)n * reps / (ms * 1e-3) / 1e12;
    return 0;
}
