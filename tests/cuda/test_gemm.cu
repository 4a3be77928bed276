/* The prefill products of src/cuda/gemm.cu and moe_gemm.cu against a
 * double-precision host product, for bf16 weights and every quantised
 * device form (Q8_0, Q4_0 and the affine forms the K-quants become).
 * What the GPU is meant to compute: bf16(W) · bf16(x) with float32
 * accumulation, W being the weights as the decode GEMV reads them
 * (dequant.cuh). The host builds those values with the same float
 * formulas, rounds both sides to bf16, and sums in double. Bound: float32
 * accumulation of `cols` products, |error| ≤ cols · 2^-23 · Σ|w·x| (the
 * recursive-summation bound at twice float32's unit roundoff: tensor-core
 * accumulation may truncate instead of round).
 * - dense: 130 rows (above the 128-row GEMM threshold), a matrix of 1000 rows
 *   in one dequantised slice and in slices of 300 rows (the last partial);
 * - experts: 150 tokens, top-2 of 8 experts (one never chosen, one chosen
 *   by most tokens), so tiles of 32 rows with padding; the down product's
 *   input is the GPU's own bf16(gelu(gate)·up), so its bound adds what the
 *   gate/up bound lets that input move, plus one bf16 rounding (2^-8).
 * A wrong code, scale, slice or tile moves outputs by O(1) of their size.
 * Without a GPU it reports that and passes. */
#include "cuda/gpu.h"
#include "gpu_test_util.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

static int failures;

static uint16_t half_bits(float x) { __half h = __float2half_rn(x); uint16_t b; memcpy(&b, &h, 2); return b; }
static float half_value(uint16_t b) { __half h; memcpy(&h, &b, 2); return __half2float(h); }

static double gelu(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

static const char *type_name(g4_dtype t) {
    switch ((int)t) {
    case G4_DTYPE_BF16: return "bf16";
    case G4_DTYPE_Q8_0: return "q8_0";
    case G4_DTYPE_Q4_0: return "q4_0";
    case GPU_DTYPE_Q4_AFFINE32: return "q4_affine32";
    default: return "q8_affine16";
    }
}

template <class T> static T *upload(const std::vector<T> &v) {
    T *d = NULL;
    cudaMalloc(&d, v.size() * sizeof(T) + 16);
    cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
    return d;
}

/* A random [count·rows][cols] matrix in the device form of `dt`; `value`
 * gets each weight as the GPU decodes it (float), before bf16 rounding. */
static gpu_matrix make_matrix(g4_dtype dt, int64_t count, int64_t rows, int64_t cols, uint64_t seed, std::vector<float> &value) {
    gpu_matrix m;
    memset(&m, 0, sizeof m);
    m.dtype = dt;
    m.count = count;
    m.rows = rows;
    m.cols = cols;
    int64_t n = count * rows * cols;
    value.assign((size_t)n, 0.0f);
    if (dt == G4_DTYPE_BF16) {
        std::vector<uint16_t> b((size_t)n);
        for (int64_t i = 0; i < n; i++) {
            value[i] = bf16_round(rnd(&seed));
            uint32_t u;
            memcpy(&u, &value[i], 4);
            b[i] = (uint16_t)(u >> 16);
        }
        m.data = upload(b);
    } else if (dt == G4_DTYPE_Q8_0 || dt == GPU_DTYPE_Q8_AFFINE16) {
        const int group = dt == G4_DTYPE_Q8_0 ? 32 : 16;
        std::vector<int8_t> q((size_t)n);
        std::vector<uint16_t> hs;
        std::vector<float> fs, fm;
        for (int64_t g = 0; g < n / group; g++) {
            float d = 0.002f + 0.01f * (rnd(&seed) + 1), mn = 0.05f * rnd(&seed);
            if (dt == G4_DTYPE_Q8_0) { hs.push_back(half_bits(d)); d = half_value(hs.back()); }
            else { fs.push_back(d); fm.push_back(mn); }
            for (int j = 0; j < group; j++) {
                int64_t i = g * group + j;
                q[i] = (int8_t)(int)floorf(rnd(&seed) * 127.5f);
                volatile float p = d * (float)q[i]; /* the product rounded before the add, as the kernels */
                value[i] = dt == G4_DTYPE_Q8_0 ? p : p + mn;
            }
        }
        m.data = upload(q);
        if (dt == G4_DTYPE_Q8_0) m.scales = (__half *)upload(hs);
        else { m.scale_f32 = upload(fs); m.min_f32 = upload(fm); }
    } else { /* Q4_0 and Q4_AFFINE32: byte j of a block holds elements j (low nibble) and j + 16 */
        std::vector<uint8_t> q((size_t)(n / 2));
        std::vector<uint16_t> hs;
        std::vector<float> fs, fm;
        for (int64_t b = 0; b < n / 32; b++) {
            float d = 0.01f + 0.02f * (rnd(&seed) + 1), mn = -8 * d + 0.01f * rnd(&seed);
            if (dt == G4_DTYPE_Q4_0) { hs.push_back(half_bits(d)); d = half_value(hs.back()); }
            else { fs.push_back(d); fm.push_back(mn); }
            for (int j = 0; j < 16; j++) {
                int lo = (int)((rnd(&seed) + 1) * 8) & 15, hi = (int)((rnd(&seed) + 1) * 8) & 15;
                q[b * 16 + j] = (uint8_t)(lo | hi << 4);
                volatile float pl = dt == G4_DTYPE_Q4_0 ? d * (float)(lo - 8) : d * (float)lo;
                volatile float ph = dt == G4_DTYPE_Q4_0 ? d * (float)(hi - 8) : d * (float)hi;
                value[b * 32 + j] = dt == G4_DTYPE_Q4_0 ? pl : pl + mn;
                value[b * 32 + j + 16] = dt == G4_DTYPE_Q4_0 ? ph : ph + mn;
            }
        }
        m.data = upload(q);
        if (dt == G4_DTYPE_Q4_0) m.scales = (__half *)upload(hs);
        else { m.scale_f32 = upload(fs); m.min_f32 = upload(fm); }
    }
    for (auto &v : value) v = bf16_round(v); /* what the GEMM multiplies */
    return m;
}

static void free_matrix(gpu_matrix *m) { cudaFree(m->data); cudaFree(m->scales); cudaFree(m->scale_f32); cudaFree(m->min_f32); }

static void report(int ok, const char *what, double worst) {
    failures += !ok;
    printf("%s %s: error / bound %.3f\n", ok ? "ok  " : "FAIL", what, worst);
}

static void dense(g4_gpu_context *c, g4_dtype dt, size_t slice_bytes) {
    const int64_t rows = 1000, cols = 2816;
    const int n = 130;
    std::vector<float> w, x((size_t)(n * cols)), xb(x.size());
    gpu_matrix m = make_matrix(dt, 1, rows, cols, 7 + dt, w);
    uint64_t seed = 3;
    for (size_t i = 0; i < x.size(); i++) xb[i] = bf16_round(x[i] = rnd(&seed));
    float *dx = upload(x), *dy = NULL;
    cudaMalloc(&dy, sizeof(float) * (size_t)(n * rows));
    cudaMemset(dy, 0xff, sizeof(float) * (size_t)(n * rows)); /* NaN: an output never written fails */
    c->dequant_slice_bytes = slice_bytes;
    g4_error err;
    int rc = gpu_matmul(c, &m, dx, cols, n, dy, rows, &err);
    std::vector<float> y((size_t)(n * rows));
    cudaError_t e = cudaMemcpy(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost);
    double worst = 0;
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            double s = 0, a = 0;
            for (int64_t k = 0; k < cols; k++) {
                double p = (double)w[r * cols + k] * xb[t * cols + k];
                s += p;
                a += fabs(p);
            }
            double d = fabs(y[t * rows + r] - s) / (cols * ldexp(a, -23));
            worst = isnan(d) ? INFINITY : d > worst ? d : worst;
        }
    char what[128];
    snprintf(what, sizeof what, "dense %-12s %lld x %lld, %d rows, slices of %s", type_name(dt), (long long)rows,
             (long long)cols, n, slice_bytes ? "300 rows" : "the default");
    if (rc) printf("  %s\n", err.msg);
    report(!rc && e == cudaSuccess && worst <= 1.0, what, worst);
    c->dequant_slice_bytes = 0;
    free_matrix(&m);
    cudaFree(dx);
    cudaFree(dy);
}

static void experts(g4_gpu_context *c, g4_dtype gu_type, g4_dtype dn_type) {
    const int E = 8, K = 2, n = 150, D = 256, Im = 128, items = n * K;
    std::vector<float> wg, wd, x((size_t)(n * D)), xb(x.size());
    gpu_matrix gu = make_matrix(gu_type, E, 2 * Im, D, 11, wg), dn = make_matrix(dn_type, E, D, Im, 12, wd);
    uint64_t seed = 5;
    for (size_t i = 0; i < x.size(); i++) xb[i] = bf16_round(x[i] = rnd(&seed));
    std::vector<int> chosen((size_t)items);
    for (int t = 0; t < n; t++) { /* expert 7 never; expert 3 for most tokens */
        int a = t % 4 ? 3 : (int)((rnd(&seed) + 1) * 3.5) % 7, b = (a + 1 + (int)((rnd(&seed) + 1) * 3) % 6) % 7;
        chosen[t * K] = a < b ? a : b;
        chosen[t * K + 1] = a < b ? b : a;
    }
    const int64_t padded = gpu_moe_padded_rows(items), problems = items + E;
    c->moe_x = upload(x);
    c->moe_experts = upload(chosen);
    cudaMalloc(&c->moe_y, sizeof(float) * (size_t)items * D);
    cudaMalloc(&c->moe_act, sizeof(float) * (size_t)items * Im);
    cudaMalloc(&c->moe_gate_up, sizeof(float) * (size_t)padded * 2 * Im);
    cudaMalloc(&c->moe_sorted, sizeof(float) * (size_t)padded * D);
    cudaMalloc(&c->moe_perm, sizeof(int) * (size_t)padded);
    cudaMalloc(&c->moe_ptrs, sizeof(void *) * 6 * (size_t)problems);
    cudaMalloc(&c->moe_rows, sizeof(int) * (size_t)items);
    std::vector<int> h_experts((size_t)items), h_perm((size_t)padded);
    std::vector<void *> h_ptrs((size_t)(6 * problems));
    c->h_experts = h_experts.data();
    c->h_perm = h_perm.data();
    c->h_moe_ptrs = h_ptrs.data();
    cudaMemset(c->moe_sorted, 0xff, sizeof(float) * (size_t)padded * D); /* NaN: a row never written fails */
    cudaMemset(c->moe_rows, 0xff, sizeof(int) * (size_t)items);
    g4_error err;
    int rc = gpu_experts_gemm(c, &gu, &dn, n, K, &err);
    /* pair i's outputs: row moe_out_rows[i] of moe_out (the experts' order) */
    std::vector<float> out((size_t)padded * D), y((size_t)items * D);
    std::vector<int> rows((size_t)items);
    cudaError_t e = rc ? cudaSuccess : cudaMemcpy(out.data(), c->moe_out, out.size() * 4, cudaMemcpyDeviceToHost);
    if (!rc && e == cudaSuccess) e = cudaMemcpy(rows.data(), c->moe_out_rows, rows.size() * 4, cudaMemcpyDeviceToHost);
    for (int i = 0; i < items && !rc && e == cudaSuccess; i++) {
        if (rows[i] < 0 || rows[i] >= padded) { rc = -1; snprintf(err.msg, sizeof err.msg, "pair %d: row %d", i, rows[i]); break; }
        memcpy(&y[(size_t)i * D], &out[(size_t)rows[i] * D], sizeof(float) * D);
    }
    double worst = 0;
    std::vector<double> act(Im), eps(Im);
    for (int i = 0; i < items; i++) {
        const int ex = chosen[i];
        const float *xt = &xb[(size_t)(i / K) * D];
        for (int k = 0; k < Im; k++) {
            double g = 0, ga = 0, u = 0, ua = 0;
            for (int j = 0; j < D; j++) {
                double pg = (double)wg[((size_t)ex * 2 * Im + k) * D + j] * xt[j];
                double pu = (double)wg[((size_t)ex * 2 * Im + Im + k) * D + j] * xt[j];
                g += pg; ga += fabs(pg); u += pu; ua += fabs(pu);
            }
            act[k] = gelu(g) * u;
            /* gelu' ≤ 1.13; then one bf16 rounding of the product (2^-8, with margin for the moved value) */
            double dg = D * ldexp(ga, -23), du = D * ldexp(ua, -23);
            double moved = 1.13 * dg * (fabs(u) + du) + fabs(gelu(g)) * du + ldexp(fabs(act[k]), -18); /* + GELU's ulps */
            eps[k] = moved + ldexp(fabs(act[k]) + moved, -8);
        }
        for (int r = 0; r < D; r++) {
            double s = 0, a = 0, moved = 0;
            for (int k = 0; k < Im; k++) {
                double wv = wd[((size_t)ex * D + r) * Im + k];
                s += wv * act[k];
                a += fabs(wv * act[k]);
                moved += fabs(wv) * eps[k];
            }
            double bound = Im * ldexp(a + moved, -23) + moved;
            double d = fabs(y[(size_t)i * D + r] - s) / bound;
            worst = isnan(d) ? INFINITY : d > worst ? d : worst;
        }
    }
    char what[128];
    snprintf(what, sizeof what, "experts gate/up %-12s down %-12s %d tokens, top-%d of %d", type_name(gu_type),
             type_name(dn_type), n, K, E);
    if (rc) printf("  %s\n", err.msg);
    report(!rc && e == cudaSuccess && worst <= 1.0, what, worst);
    void *dev[] = {c->moe_x, c->moe_experts, c->moe_y, c->moe_act, c->moe_gate_up, c->moe_sorted, c->moe_perm, c->moe_ptrs,
                   c->moe_rows};
    for (void *p : dev) cudaFree(p);
    free_matrix(&gu);
    free_matrix(&dn);
}

int main(void) {
    if (!gpu_present()) return 0;
    g4_gpu_model gm;
    memset(&gm, 0, sizeof gm);
    g4_gpu_context c;
    memset(&c, 0, sizeof c);
    c.gm = &gm;
    c.gemm_min_rows = 128;
    cudaStreamCreate(&c.stream);
    if (cublasCreate(&gm.cublas) != CUBLAS_STATUS_SUCCESS) { printf("FAIL: no cuBLAS handle\n"); return 1; }
    c.x_bf16_cap = 130 * 2816;
    cudaMalloc(&c.x_bf16, sizeof(__nv_bfloat16) * (size_t)c.x_bf16_cap);
    const g4_dtype types[] = {G4_DTYPE_BF16, G4_DTYPE_Q8_0, G4_DTYPE_Q4_0, GPU_DTYPE_Q4_AFFINE32, GPU_DTYPE_Q8_AFFINE16};
    for (g4_dtype t : types) dense(&c, t, 0);
    for (g4_dtype t : types)
        if (t != G4_DTYPE_BF16) dense(&c, t, 300 * 2816 * sizeof(__nv_bfloat16));
    experts(&c, G4_DTYPE_BF16, G4_DTYPE_BF16);
    experts(&c, G4_DTYPE_Q4_0, G4_DTYPE_Q8_0);
    experts(&c, GPU_DTYPE_Q4_AFFINE32, GPU_DTYPE_Q8_AFFINE16);
    printf("%s\n", failures ? "FAILED" : "all prefill GEMM checks passed");
    return failures != 0;
}
