/* The decode GEMV (src/cuda/gemv.cu) against a double-precision host product
 * on random bf16 and float32 weights, at the shapes whose launches split a
 * row over 1, 2, 4 or 8 warps (G4_GEMV_FILL, G4_GEMV_SPLIT_ROWS pick the
 * split, as the tuning switches do), with 1, 3 and 8 activation rows, plain,
 * GLU, and gelu(x·w) times a given row (the per-layer-input gate).
 * Bound: float32 summation of `cols` products, |error| ≤ cols · 2^-24 ·
 * Σ|w·x| (the recursive-summation bound; the kernel's order is a tree of
 * partial sums, which this covers), plus GELU's few ulps for the gated forms.
 * Without a GPU it reports that and passes. */
#include "cuda/gpu.h"
#include "gpu_test_util.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

static int failures;

static double gelu(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

enum { PLAIN, GLU, GELU_MUL };

/* rows × cols weights (GLU: 2·rows, gate then up), n activation rows. */
static void run(g4_gpu_context *c, g4_dtype dt, int64_t rows, int64_t cols, int n, int mode, const char *env, const char *val) {
    const int glu = mode == GLU;
    const int64_t mul_stride = rows + 5; /* GELU_MUL: the multiplier rows have their own stride */
    uint64_t seed = 99 + rows * 7 + cols + n + mode;
    int64_t wrows = glu ? 2 * rows : rows;
    std::vector<float> w((size_t)(wrows * cols)), x((size_t)(n * cols));
    std::vector<uint16_t> wb(w.size());
    for (size_t i = 0; i < w.size(); i++) w[i] = dt == G4_DTYPE_BF16 ? bf16_round(rnd(&seed), &wb[i]) : rnd(&seed);
    for (auto &v : x) v = rnd(&seed);
    std::vector<float> mul((size_t)(n * mul_stride));
    for (auto &v : mul) v = rnd(&seed);
    gpu_matrix m;
    memset(&m, 0, sizeof m);
    m.dtype = dt;
    m.count = 1;
    m.rows = wrows;
    m.cols = cols;
    size_t wbytes = dt == G4_DTYPE_BF16 ? wb.size() * 2 : w.size() * 4;
    float *dx, *dy, *dmul;
    int *dmat;
    cudaMalloc(&m.data, wbytes);
    cudaMemcpy(m.data, dt == G4_DTYPE_BF16 ? (void *)wb.data() : (void *)w.data(), wbytes, cudaMemcpyHostToDevice);
    cudaMalloc(&dx, x.size() * 4);
    cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
    cudaMalloc(&dy, (size_t)(n * rows) * 4);
    cudaMalloc(&dmul, mul.size() * 4);
    cudaMemcpy(dmul, mul.data(), mul.size() * 4, cudaMemcpyHostToDevice);
    cudaMalloc(&dmat, sizeof(int) * n);
    cudaMemset(dmat, 0, sizeof(int) * n);
    cudaMemset(dy, 0xff, (size_t)(n * rows) * 4); /* NaN: an output never written fails */
    setenv(env, val, 1);
    g4_error err;
    int rc = glu    ? gpu_matmul_grouped(c, &m, dmat, dx, cols, 1, n, dy, rows, 1, &err)
             : mode ? gpu_matmul_gelu_mul(c, &m, dx, cols, n, dy, rows, dmul, mul_stride, &err)
                    : gpu_matmul(c, &m, dx, cols, n, dy, rows, &err);
    unsetenv(env);
    std::vector<float> y((size_t)(n * rows));
    cudaError_t e = cudaMemcpy(y.data(), dy, y.size() * 4, cudaMemcpyDeviceToHost);
    double worst = 0; /* error over its bound */
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < rows; r++) {
            double s = 0, a = 0, su = 0, au = 0;
            for (int64_t k = 0; k < cols; k++) {
                double p = (double)w[r * cols + k] * x[t * cols + k];
                s += p;
                a += fabs(p);
                if (glu) {
                    double pu = (double)w[(r + rows) * cols + k] * x[t * cols + k];
                    su += pu;
                    au += fabs(pu);
                }
            }
            if (mode == GELU_MUL) { /* the multiplier is exact: only the gate's error, scaled as for GLU */
                su = mul[t * mul_stride + r];
                au = 0;
            }
            double want = mode ? gelu(s) * su : s;
            /* gelu'(s) ≤ 1.13, so the gate's error reaches the product scaled by |su|, the up's by |gelu(s)| */
            double bound = mode ? (cols * ldexp(a, -24) * 1.13 * fabs(su) + cols * ldexp(au, -24) * fabs(gelu(s)) +
                                   ldexp(fabs(want), -20))
                                : cols * ldexp(a, -24);
            double d = fabs((double)y[t * rows + r] - want) / (bound > 0 ? bound : 1e-30);
            if (!(d <= worst)) worst = isnan(d) ? INFINITY : d > worst ? d : worst;
        }
    int ok = rc == 0 && e == cudaSuccess && worst <= 1.0;
    failures += !ok;
    printf("%s %-4s %s rows %5lld cols %5lld tokens %d %s=%-5s error / bound %.3f\n", ok ? "ok  " : "FAIL",
           dt == G4_DTYPE_BF16 ? "bf16" : "f32", mode == GLU ? "glu  " : mode ? "gmul " : "plain", (long long)rows, (long long)cols, n, env, val, worst);
    cudaFree(m.data); cudaFree(dx); cudaFree(dy); cudaFree(dmul); cudaFree(dmat);
}

int main(void) {
    if (!gpu_present()) return 0;
    g4_gpu_context c;
    memset(&c, 0, sizeof c);
    c.gemm_min_rows = 1 << 30; /* every product through the GEMV */
    cudaStreamCreate(&c.stream);
    /* o_proj- and down-like shapes (a fill of 100/400% splits them 2-8 ways), a
     * short-row one, odd rows (a block's last row is dead), and 8 warps a row */
    const int64_t shapes[][2] = {{2816, 4096}, {1407, 2112}, {1000, 704}, {1333, 1536}};
    const char *fills[] = {"0", "100", "400"};
    for (int dt = 0; dt < 2; dt++)
        for (const auto &s : shapes)
            for (const char *f : fills)
                for (int n : {1, 3, 8}) run(&c, dt ? G4_DTYPE_F32 : G4_DTYPE_BF16, s[0], s[1], n, PLAIN, "G4_GEMV_FILL", f);
    for (int n : {1, 3}) run(&c, G4_DTYPE_BF16, 333, 1536, n, PLAIN, "G4_GEMV_SPLIT_ROWS", "100000");
    for (const char *f : fills) run(&c, G4_DTYPE_BF16, 1408, 2816, 1, GLU, "G4_GEMV_FILL", f);
    /* the per-layer-input gate: E2B's 256 × 1536 (8 warps a row), and a shape the fill splits */
    for (int n : {1, 3}) run(&c, G4_DTYPE_BF16, 256, 1536, n, GELU_MUL, "G4_GEMV_FILL", "50");
    run(&c, G4_DTYPE_F32, 1333, 1536, 8, GELU_MUL, "G4_GEMV_FILL", "400");
    printf("%s\n", failures ? "FAILED" : "all GEMV checks passed");
    return failures != 0;
}
