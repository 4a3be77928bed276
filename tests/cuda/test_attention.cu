/* The tensor-core prefill attention (src/cuda/attention_tc.cu) and the cuBLAS
 * one (src/cuda/attention_gemm.cu, the same bf16 rounding, so the same
 * bound; it declines a ring that wraps, which is checked too)
 * pinned to the float32 attention kernel (src/cuda/attention.cu) on random data, for every
 * head dim it takes, full and sliding windows, a ring-buffer cache that
 * wraps, grouped query heads and a batch that is not a multiple of the tile.
 * Bound: the tensor-core kernel rounds q, k, v and the probabilities to
 * bf16 (relative error 2^-9 each); with values in [-1, 1] the outputs (convex
 * combinations of v rows) then differ by a few 1e-3: 2e-2 leaves 5x room.
 * Without a GPU it reports that and passes. */
#include "cuda/gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <vector>

static int failures;

static float rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) * 2 - 1;
}

static void run(int hd, int window, int ring_wrap) {
    const int n = 100, n_heads = 8, n_kv = 2, past = ring_wrap ? 90 : 10;
    const int64_t row_size = (int64_t)n_kv * hd;
    gpu_kv_layer kv;
    kv.row_size = row_size;
    kv.ring = ring_wrap ? window - 1 + n : 0; /* as context.cu sizes a sliding layer's ring */
    kv.rows = ring_wrap ? kv.ring : past + n;
    uint64_t seed = 1234 + hd + window;
    std::vector<float> q((size_t)n * n_heads * hd), k((size_t)kv.rows * row_size), v(k.size());
    float qscale = powf((float)hd, -0.25f);
    for (auto &x : q) x = rnd(&seed) * qscale;
    for (auto &x : k) x = rnd(&seed) * qscale;
    for (auto &x : v) x = rnd(&seed);
    std::vector<int32_t> pos(n), seq(n, 0);
    for (int t = 0; t < n; t++) pos[t] = past + t;
    float *dq, *dk, *dv, *o1, *o2;
    int32_t *dpos, *dseq;
    size_t qb = q.size() * sizeof(float), kb = k.size() * sizeof(float);
    cudaMalloc(&dq, qb); cudaMalloc(&dk, kb); cudaMalloc(&dv, kb); cudaMalloc(&o1, qb); cudaMalloc(&o2, qb);
    cudaMalloc(&dpos, n * sizeof(int32_t)); cudaMalloc(&dseq, n * sizeof(int32_t));
    cudaMemcpy(dq, q.data(), qb, cudaMemcpyHostToDevice);
    cudaMemcpy(dk, k.data(), kb, cudaMemcpyHostToDevice);
    cudaMemcpy(dv, v.data(), kb, cudaMemcpyHostToDevice);
    cudaMemcpy(dpos, pos.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice);
    cudaMemcpy(dseq, seq.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice);
    kv.k = dk;
    kv.v = dv;
    gpu_attention(0, dq, n, n_heads, hd, &kv, window, dpos, dseq, o1);
    int rc = gpu_attention_prefill(0, dq, n, n_heads, hd, &kv, window, dpos, dseq, o2);
    std::vector<float> a(q.size()), b(q.size());
    cudaMemcpy(a.data(), o1, qb, cudaMemcpyDeviceToHost);
    for (int path = 0; path < 2; path++) {
        const char *name = path ? "cublas " : "wmma   ";
        if (path) {
            cublasHandle_t h;
            cublasCreate(&h);
            gpu_buffer scores = {NULL, 0};
            cudaMemset(o2, 0, qb);
            rc = gpu_attention_gemm(h, 0, &scores, dq, n, n_heads, hd, &kv, window, past, 0, o2);
            cudaDeviceSynchronize();
            cudaFree(scores.data);
            cublasDestroy(h);
            if (ring_wrap) { /* declined: nothing written, the caller falls back */
                int ok = rc == -1;
                failures += !ok;
                printf("%s %shd %3d window %3d (ring wraps): declined %s\n", ok ? "ok  " : "FAIL", name, hd, window, ok ? "yes" : "no");
                continue;
            }
        }
        cudaMemcpy(b.data(), o2, qb, cudaMemcpyDeviceToHost);
        cudaError_t e = cudaGetLastError();
        float worst = 0;
        for (size_t i = 0; i < a.size(); i++) {
            float d = fabsf(a[i] - b[i]);
            if (!(d <= worst)) worst = d;
        }
        int ok = rc == 0 && e == cudaSuccess && worst <= 2e-2f;
        failures += !ok;
        printf("%s %shd %3d window %3d%s: max|dout| %.2e%s\n", ok ? "ok  " : "FAIL", name, hd, window,
               ring_wrap ? " (ring wraps)" : "", worst, e == cudaSuccess ? "" : cudaGetErrorString(e));
    }
    cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(o1); cudaFree(o2); cudaFree(dpos); cudaFree(dseq);
}

int main(void) {
    if (g4_gpu_device_count() < 1) {
        printf("test_attention: no GPU, nothing to run\n");
        return 0;
    }
    const int dims[] = {64, 128, 256, 512};
    for (int i = 0; i < 4; i++) {
        run(dims[i], 0, 0);
        run(dims[i], 40, 0);
        run(dims[i], 40, 1);
    }
    printf("test_attention: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
