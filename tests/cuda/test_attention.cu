/* The tensor-core prefill attention (src/cuda/attention_tc.cu) and the cuBLAS
 * one (src/cuda/attention_gemm.cu, the same bf16 rounding, so the same
 * bound; it declines a ring that wraps, which is checked too)
 * pinned to the float32 attention kernel (src/cuda/attention.cu) on random data, for every
 * head dim it takes, full and sliding windows, a ring-buffer cache that
 * wraps, grouped query heads and a batch that is not a multiple of the tile.
 * Bound: the tensor-core kernel rounds q, k, v and the probabilities to
 * bf16 (relative error 2^-9 each); with values in [-1, 1] the outputs (convex
 * combinations of v rows) then differ by a few 1e-3: 2e-2 leaves 5x room.
 * The float32 kernel itself, at decode shapes with and without its key
 * splits, is checked against a double-precision host attention (run_decode).
 * Without a GPU it reports that and passes. */
#include "cuda/gpu.h"
#include "gpu_test_util.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

static int failures;

template <typename T> static T *to_device(const std::vector<T> &h) {
    T *d = NULL;
    cudaMalloc(&d, h.size() * sizeof(T));
    cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
    return d;
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
    float *dq = to_device(q), *dk = to_device(k), *dv = to_device(v), *o1 = to_device(q), *o2 = to_device(q);
    int32_t *dpos = to_device(pos), *dseq = to_device(seq);
    size_t qb = q.size() * sizeof(float);
    kv.k = dk;
    kv.v = dv;
    gpu_attention(0, dq, n, n_heads, hd, &kv, window, dpos, dseq, o1, NULL);
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

/* Decode shape: 1 or 3 tokens (two sequences) at long positions, one block
 * per (token, head) and the window split over many blocks, both against a
 * double-precision host attention. Values in [-1, 1], at most 600 keys:
 * float32 sums of 600 terms stay within 600 · 2^-24 ≈ 3.6e-5 of exact
 * (relative to outputs of magnitude <= 1); bound 5e-5. */
static void run_decode(int hd, int window, int n) {
    const int n_heads = 8, n_kv = 2, group = n_heads / n_kv, past = 600, n_seq = 2;
    gpu_kv_layer kv;
    kv.row_size = (int64_t)n_kv * hd;
    kv.ring = window ? window - 1 + n : 0;
    kv.rows = window ? kv.ring : past + n;
    uint64_t seed = 99 + hd + window + n;
    std::vector<float> q((size_t)n * n_heads * hd), k((size_t)n_seq * kv.rows * kv.row_size), v(k.size());
    float qscale = powf((float)hd, -0.25f);
    for (auto &x : q) x = rnd(&seed) * qscale;
    for (auto &x : k) x = rnd(&seed) * qscale;
    for (auto &x : v) x = rnd(&seed);
    std::vector<int32_t> pos(n), seq(n);
    for (int t = 0; t < n; t++) { seq[t] = t % n_seq; pos[t] = past - 7 * t; }
    std::vector<double> ref(q.size());
    for (int t = 0; t < n; t++)
        for (int h = 0; h < n_heads; h++) {
            int64_t first = window && pos[t] - window + 1 > 0 ? pos[t] - window + 1 : 0;
            std::vector<double> sc;
            double mx = -1e300;
            for (int64_t key = first; key <= pos[t]; key++) {
                const float *kr = &k[((size_t)seq[t] * kv.rows + (kv.ring ? key % kv.ring : key)) * kv.row_size + (h / group) * hd];
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)q[((size_t)t * n_heads + h) * hd + d] * kr[d];
                sc.push_back(s);
                if (s > mx) mx = s;
            }
            double L = 0;
            for (double &s : sc) L += (s = exp(s - mx));
            for (int64_t key = first, j = 0; key <= pos[t]; key++, j++) {
                const float *vr = &v[((size_t)seq[t] * kv.rows + (kv.ring ? key % kv.ring : key)) * kv.row_size + (h / group) * hd];
                for (int d = 0; d < hd; d++) ref[((size_t)t * n_heads + h) * hd + d] += sc[j] / L * vr[d];
            }
        }
    float *dq = to_device(q), *dk = to_device(k), *dv = to_device(v), *o = to_device(q);
    int32_t *dpos = to_device(pos), *dseq = to_device(seq);
    size_t qb = q.size() * sizeof(float);
    kv.k = dk;
    kv.v = dv;
    gpu_attn_split sp;
    memset(&sp, 0, sizeof sp);
    sp.target = 264; /* as context.cu sizes it for an H100's 132 SMs */
    sp.max_hd = 512;
    cudaMalloc(&sp.part, sizeof(float) * 2 * sp.target * (sp.max_hd + 2));
    cudaMalloc(&sp.count, sizeof(int) * sp.target);
    cudaMemset(sp.count, 0, sizeof(int) * sp.target);
    /* one block per pair; splits of at least 32 keys (the default); of at least 4 (up to 32 splits a pair) */
    for (int split = 0; split < 3; split++)
        for (int rep = 0; rep < 2; rep++) { /* twice: the counters must be back at zero */
            sp.min_keys = split == 2 ? 4 : 0;
            cudaMemset(o, 0, qb);
            gpu_attention(0, dq, n, n_heads, hd, &kv, window, dpos, dseq, o, split ? &sp : NULL);
            std::vector<float> a(q.size());
            cudaMemcpy(a.data(), o, qb, cudaMemcpyDeviceToHost);
            cudaError_t e = cudaGetLastError();
            double worst = 0;
            for (size_t i = 0; i < a.size(); i++) {
                double d = fabs(a[i] - ref[i]);
                if (!(d <= worst)) worst = d;
            }
            int ok = e == cudaSuccess && worst <= 5e-5;
            failures += !ok;
            printf("%s decode %s hd %3d window %3d tokens %d (run %d): max|dout| vs double %.2e%s\n", ok ? "ok  " : "FAIL",
                   split == 2 ? "split4" : split ? "split " : "single", hd, window, n, rep + 1, worst,
                   e == cudaSuccess ? "" : cudaGetErrorString(e));
        }
    cudaFree(sp.part); cudaFree(sp.count);
    cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(o); cudaFree(dpos); cudaFree(dseq);
}

int main(void) {
    if (!gpu_present()) return 0;
    const int dims[] = {64, 128, 256, 512};
    for (int i = 0; i < 4; i++) {
        run(dims[i], 0, 0);
        run(dims[i], 40, 0);
        run(dims[i], 40, 1);
        run_decode(dims[i], 0, 1);
        run_decode(dims[i], 512, 3);
    }
    printf("test_attention: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
