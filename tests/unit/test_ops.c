/* Ops against independent references: half-float conversions against the
 * CPU's F16C instructions over every 16-bit pattern, the matrix product for
 * each weight type against a double-precision sum, and the sampler. */
#include "check.h"
#include "gemma4.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/half.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/qdot_x16.h"
#include "ops/quant.h"
#include "util/threadpool.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_half_conversions(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float want = _cvtsh_ss((unsigned short)h), got = g4_f16_to_f32((uint16_t)h);
        if (memcmp(&want, &got, 4) != 0 && !(isnan(want) && isnan(got))) bad++;
    }
    CHECK(bad == 0, "%d f16 patterns decode differently from F16C", bad);

    /* rounding a float to f16 precision, against F16C's round-to-nearest-even */
    srand(1);
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        float x = ldexpf((float)rand() / RAND_MAX * 2 - 1, rand() % 40 - 26);
        float want = _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)), got = g4_round_to_f16(x);
        if (want != got) bad++;
    }
    CHECK(bad == 0, "%d values round to f16 differently from F16C", bad);
    CHECK(g4_round_to_bf16(sqrtf(1536)) == 39.25f && g4_round_to_bf16(sqrtf(2560)) == 50.5f &&
              g4_round_to_bf16(sqrtf(2816)) == 53.0f && g4_round_to_bf16(sqrtf(5376)) == 73.5f,
          "bf16-rounded embedding scales differ from the spec's table");
    CHECK(g4_bf16_to_f32(0x3f80) == 1.0f && g4_f32_to_bf16(1.00390625f) == 0x3f80 && g4_f32_to_bf16(1.01171875f) == 0x3f82,
          "bf16 round-to-nearest-even");
}

/* y = x·Wᵀ for F32, BF16 and F16 storage against double sums over the same
 * (decoded) weight values; odd sizes exercise the SIMD tails. */
static void test_matmul(void) {
    const int out = 37, in = 203, n = 5;
    float *w = malloc(sizeof(float) * out * in), *x = malloc(sizeof(float) * n * in), *y = malloc(sizeof(float) * n * out);
    uint16_t *wb = malloc(2 * out * in), *wh = malloc(2 * out * in);
    srand(2);
    for (int i = 0; i < out * in; i++) {
        w[i] = (float)rand() / RAND_MAX - 0.5f;
        wb[i] = g4_f32_to_bf16(w[i]);
        wh[i] = _cvtss_sh(w[i], _MM_FROUND_TO_NEAREST_INT);
    }
    for (int i = 0; i < n * in; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    g4_threadpool *pool = g4_threadpool_new(2);
    struct { g4_dtype t; const void *data; size_t esz; } kinds[] = {
        {G4_DTYPE_F32, w, 4}, {G4_DTYPE_BF16, wb, 2}, {G4_DTYPE_F16, wh, 2}};
    for (int k = 0; k < 3; k++) {
        g4_tensor W = {"w", kinds[k].t, 2, {out, in}, (int64_t)out * in, kinds[k].data, kinds[k].esz * out * in, 0};
        g4_matmul(pool, &W, x, n, y);
        double worst = 0;
        float row[203];
        for (int o = 0; o < out; o++) {
            g4_row_to_f32(&W, o, row);
            for (int t = 0; t < n; t++) {
                double s = 0;
                for (int i = 0; i < in; i++) s += (double)row[i] * x[t * in + i];
                worst = fmax(worst, fabs(s - y[t * out + o]));
            }
        }
        CHECK(worst < 1e-5, "matmul %s: max error %g", g4_dtype_name(kinds[k].t), worst);
    }
    g4_threadpool_free(pool);
    free(w); free(x); free(y); free(wb); free(wh);
}

/* A batch of repacked products as one job: each output is bit for bit what
 * g4_matmul gives that product alone. Four types in one batch, matrices of
 * 3, 1, 5 and 2 groups of 16 rows (two threads' ranges cross the matrices'
 * borders), products 0, 1 and 3 sharing one input (one quantisation) and
 * product 2 with its own input and token count, at 1 and 3 tokens; and a
 * batch with one matrix not repacked takes the per-product path with the
 * same result. */
static void test_matmul_batch(void) {
    enum { K = 4 };
    const int in = 256, groups[K] = {3, 1, 5, 2};
    const g4_dtype types[K] = {G4_DTYPE_Q4_0, G4_DTYPE_Q8_0, G4_DTYPE_Q4_K, G4_DTYPE_Q6_K};
    float *x = malloc(sizeof(float) * 4 * in), *x2 = malloc(sizeof(float) * 4 * in), *wf = malloc(sizeof(float) * in);
    srand(5);
    for (int i = 0; i < 4 * in; i++) {
        x[i] = (float)rand() / RAND_MAX - 0.5f;
        x2[i] = (float)rand() / RAND_MAX - 0.5f;
    }
    g4_threadpool *pool = g4_threadpool_new(2);
    g4_tensor W[K];
    void *plain[K], *packed[K];
    float *alone[K], *batch[K];
    for (int i = 0; i < K; i++) {
        int rows = 16 * groups[i];
        size_t rb = g4_dtype_row_bytes(types[i], in);
        plain[i] = malloc(rb * rows);
        packed[i] = malloc(rb * rows);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < in; c++) wf[c] = (float)rand() / RAND_MAX - 0.5f;
            g4_quantize_row(types[i], wf, (char *)plain[i] + (size_t)r * rb, in);
        }
        g4_x16_repack(types[i], plain[i], packed[i], rows, in);
        W[i] = (g4_tensor){"w", types[i], 2, {rows, in}, (int64_t)rows * in, packed[i], rb * rows, 1};
        alone[i] = malloc(sizeof(float) * 4 * rows);
        batch[i] = malloc(sizeof(float) * 4 * rows);
    }
    for (int pass = 0; pass < 3; pass++) {
        int n = pass == 0 ? 1 : 3;
        if (pass == 2) { /* matrix 1 not repacked: every product alone */
            size_t rb = g4_dtype_row_bytes(types[1], in);
            W[1] = (g4_tensor){"w", types[1], 2, {16 * groups[1], in}, (int64_t)16 * groups[1] * in, plain[1], rb * 16 * groups[1], 0};
        }
        g4_product p[K];
        for (int i = 0; i < K; i++) {
            p[i] = (g4_product){&W[i], i == 2 ? x2 : x, i == 2 ? n + 1 : n, batch[i]};
            g4_matmul(pool, &W[i], p[i].x, p[i].n, alone[i]);
            memset(batch[i], 0xff, sizeof(float) * p[i].n * W[i].shape[0]); /* NaN: a group left out shows */
        }
        g4_matmul_batch(pool, p, K);
        for (int i = 0; i < K; i++)
            CHECK(memcmp(alone[i], batch[i], sizeof(float) * p[i].n * W[i].shape[0]) == 0,
                  "matmul_batch pass %d: product %d (%s) differs", pass, i, g4_dtype_name(types[i]));
    }
    for (int i = 0; i < K; i++) { free(plain[i]); free(packed[i]); free(alone[i]); free(batch[i]); }
    g4_threadpool_free(pool);
    free(x); free(x2); free(wf);
}

static void test_sampler(void) {
    float logits[6] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f};
    gemma4_sampler_params p = gemma4_sampler_default_params();
    CHECK(p.temperature == 1.0f && p.top_k == 64 && fabsf(p.top_p - 0.95f) < 1e-7f, "default sampling is Gemma's 1.0/64/0.95");
    gemma4_sampler *s;
    p.temperature = 0;
    gemma4_sampler_new(&p, &s);
    CHECK(gemma4_sample(s, logits, 6) == 1, "greedy picks the first of tied maxima");
    gemma4_sampler_free(s);

    /* top-k 2 draws only ids 1 and 3, about equally often */
    p.temperature = 1;
    p.top_k = 2;
    p.top_p = 1;
    p.seed = 7;
    gemma4_sampler_new(&p, &s);
    int count[6] = {0};
    for (int i = 0; i < 4000; i++) count[gemma4_sample(s, logits, 6)]++;
    CHECK(count[1] + count[3] == 4000 && count[1] > 1800 && count[3] > 1800, "top-k: counts %d %d", count[1], count[3]);
    gemma4_sampler_free(s);

    /* min-p 0.5 keeps tokens within half the top probability: ids 1, 3 (e^0)
     * and 2 (e^-1 = 0.37 < 0.5 → dropped) */
    p.top_k = 0;
    p.min_p = 0.5f;
    gemma4_sampler_new(&p, &s);
    memset(count, 0, sizeof count);
    for (int i = 0; i < 2000; i++) count[gemma4_sample(s, logits, 6)]++;
    CHECK(count[1] + count[3] == 2000, "min-p let other ids through");
    gemma4_sampler_free(s);

    /* temperature sampling follows softmax: P(id 2)/P(id 0) = e^1 */
    p.min_p = 0;
    p.seed = 11;
    gemma4_sampler_new(&p, &s);
    memset(count, 0, sizeof count);
    for (int i = 0; i < 200000; i++) count[gemma4_sample(s, logits, 6)]++;
    double ratio = (double)count[2] / count[0];
    CHECK(fabs(ratio - exp(1.0)) < 0.15, "P(2)/P(0) = %g, expected e", ratio);
    gemma4_sampler_free(s);
}

/* The vectorised tanh / exp behind softcap, GELU and softmax against double
 * precision libm, over the range logits and activations take (and beyond):
 * float rounding is about 6e-8 relative, the polynomial adds about as much. */
static void test_activations(void) {
    enum { N = 20003 }; /* not a multiple of 8: the scalar tails run too */
    static float x[N], y[N], up[N];
    double worst_cap = 0, worst_gelu = 0, worst_soft = 0;
    for (int i = 0; i < N; i++) x[i] = -120.0f + 240.0f * (float)i / (N - 1);
    memcpy(y, x, sizeof x);
    g4_softcap(y, N, 30.0f);
    for (int i = 0; i < N; i++) worst_cap = fmax(worst_cap, fabs(y[i] - 30.0 * tanh(x[i] / 30.0)));
    for (int i = 0; i < N; i++) { x[i] = -12.0f + 24.0f * (float)i / (N - 1); up[i] = 1.0f; }
    g4_gelu_gate(y, x, up, N);
    for (int i = 0; i < N; i++) {
        double g = 0.5 * x[i] * (1 + tanh(0.7978845608028654 * (x[i] + 0.044715 * (double)x[i] * x[i] * x[i])));
        /* where 1 + tanh cancels, float tanh's absolute error (≈1e-7) is
         * what the result carries, scaled by x/2: bound the absolute error */
        worst_gelu = fmax(worst_gelu, fabs(y[i] - g) / (1 + fabs(x[i])));
    }
    for (int i = 0; i < N; i++) x[i] = (float)((i * 7919) % 1000) / 37.0f - 20.0f;
    x[5] = -INFINITY; /* a masked key */
    memcpy(y, x, sizeof x);
    g4_softmax(y, N);
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < N; i++) mx = fmax(mx, x[i]);
    for (int i = 0; i < N; i++) sum += exp(x[i] - mx);
    for (int i = 0; i < N; i++) worst_soft = fmax(worst_soft, fabs(y[i] - exp(x[i] - mx) / sum) / (exp(x[i] - mx) / sum + 1e-30));
    CHECK(worst_cap <= 30 * 4e-7, "softcap: max |error| %g", worst_cap);
    CHECK(worst_gelu <= 3e-7, "gelu: max |error| / (1 + |x|) %g", worst_gelu);
    /* exp(y) of a float y carries |y|·2^-24 relative error from y's own
     * rounding: about 2.4e-6 for the |y| <= 40 here */
    CHECK(worst_soft <= 3e-6, "softmax: max relative error %g", worst_soft);
    CHECK(y[5] < 1e-30f, "softmax of -inf: %g", y[5]);
    printf("activations: softcap %.2g, gelu %.2g, softmax %.2g\n", worst_cap, worst_gelu, worst_soft);
}

/* Reading ahead while the caller works: the jobs that follow still cover
 * every item once (the read-ahead is stopped and waited for, not raced: the
 * caller's work between the two keeps the worker inside the read-ahead when
 * the job is posted), and freeing the pool mid-read-ahead is clean. */
typedef struct {
    int *hits;
} count_job;

static void count_items(void *p, int begin, int end, int thread) {
    (void)thread;
    count_job *j = p;
    for (int i = begin; i < end; i++) j->hits[i]++;
}

static void test_read_ahead(void) {
    enum { SPAN = 8 << 20, ITEMS = 1000, ROUNDS = 300 };
    char *span = malloc(SPAN);
    memset(span, 1, SPAN);
    static int hits[ITEMS];
    g4_threadpool *pool = g4_threadpool_new(2);
    count_job job = {hits};
    int wrong = 0;
    for (int r = 0; r < ROUNDS; r++) {
        g4_threadpool_read_ahead(pool, span + (r % 7) * 4096, SPAN / 2);
        volatile double serial = 0; /* the caller's serial work, some microseconds */
        for (int i = 0; i < 20000; i++) serial += i;
        if (r % 2) g4_parallel_for(pool, ITEMS, count_items, &job);
        else g4_parallel_for_shared(pool, ITEMS, 3, count_items, &job);
        for (int i = 0; i < ITEMS; i++) wrong += hits[i] != r + 1; /* done when the call returns */
    }
    CHECK(wrong == 0, "read-ahead then jobs: %d item-rounds not run exactly once by the job's return", wrong);
    g4_threadpool_read_ahead(pool, span, SPAN);
    g4_threadpool_free(pool);
    free(span);
    g4_threadpool_read_ahead(NULL, hits, sizeof hits); /* no pool, no workers: nothing to do */
    g4_threadpool *one = g4_threadpool_new(1);
    g4_threadpool_read_ahead(one, hits, sizeof hits);
    g4_threadpool_free(one);
}

/* RMSNorm against a double-precision reference, in place and not, weighted
 * and not, at lengths that leave every tail of the 16-wide loop: the result
 * is the float rounding of scale·x·w, so within a few ulp (4e-7 relative). */
static void test_rmsnorm(void) {
    enum { MAX = 5376 + 13 };
    static float x[MAX], w[MAX], y[MAX];
    const int lens[] = {1, 7, 16, 17, 256, 1536 + 9, MAX};
    double worst = 0;
    srand(3);
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (int variant = 0; variant < 4; variant++) {
            int n = lens[li], weighted = variant & 1, in_place = variant & 2;
            for (int i = 0; i < n; i++) {
                x[i] = (float)rand() / RAND_MAX * 8 - 4 + (i == 3 ? 300.0f : 0); /* one outlier, as activations have */
                w[i] = (float)rand() / RAND_MAX * 2;
            }
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
            double scale = 1 / sqrt(ss / n + 1e-6);
            float *out = in_place ? x : y;
            double want[MAX];
            for (int i = 0; i < n; i++) want[i] = x[i] * scale * (weighted ? w[i] : 1.0);
            g4_rmsnorm(out, x, weighted ? w : NULL, n, 1e-6f);
            for (int i = 0; i < n; i++) worst = fmax(worst, fabs(out[i] - want[i]) / (fabs(want[i]) + 1e-30));
        }
    CHECK(worst <= 4e-7, "rmsnorm: max relative error %g", worst);
    printf("rmsnorm: max relative error %.2g\n", worst);
}

/* Rows against several keys (attention scores): every row count up to 13
 * (8 + 4 + 1: each way rows are grouped), three keys, lengths with and
 * without a tail past the last 8 (and multiples of 16, which the 512-bit
 * kernels of G4_ROWS_WIDE take), against double; rows never asked for stay
 * NaN. Bound: n · 2^-24 · Σ|q·k| (recursive summation). */
static void test_dot_rows(int flags) {
    enum { ROWS = 13, KEYS = 3, STRIDE = 520 };
    float q[ROWS * STRIDE], k[KEYS][STRIDE], out[ROWS * KEYS];
    const void *keys[KEYS] = {k[0], k[1], k[2]};
    for (int i = 0; i < ROWS * STRIDE; i++) q[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int j = 0; j < KEYS; j++)
        for (int i = 0; i < STRIDE; i++) k[j][i] = (float)rand() / RAND_MAX - 0.5f;
    double worst = 0;
    const int lengths[] = {512, 80, 77, 5};
    for (int li = 0; li < 4; li++)
        for (int nr = 1; nr <= ROWS; nr++) {
            int n = lengths[li];
            for (int i = 0; i < ROWS * KEYS; i++) out[i] = NAN;
            g4_dot_rows(q, STRIDE, nr, keys, KEYS, n, flags, out, KEYS);
            for (int h = 0; h < ROWS; h++)
                for (int j = 0; j < KEYS; j++) {
                    if (h >= nr) {
                        CHECK(isnan(out[h * KEYS + j]), "dot rows: row %d of %d written", h, nr);
                        continue;
                    }
                    double want = 0, mag = 0;
                    for (int i = 0; i < n; i++) {
                        want += (double)q[h * STRIDE + i] * k[j][i];
                        mag += fabs((double)q[h * STRIDE + i] * k[j][i]);
                    }
                    double e = fabs(out[h * KEYS + j] - want) / (n * ldexp(mag, -24));
                    worst = isnan(e) ? INFINITY : fmax(worst, e);
                }
        }
    const char *kind = flags & G4_ROWS_WIDE ? (g4_wide_kernels(16) ? "512-bit" : "wide, none here") : "256-bit";
    CHECK(worst <= 1.0, "dot rows (%s): max error / bound %g", kind, worst);
    printf("dot rows (%s; 1-13 rows, 3 keys, lengths 512, 80, 77, 5): max error / bound %.2g\n", kind, worst);
}

/* Grouped attention over a wrapping ring of keys, in one part and split
 * into uneven parts then merged, against a double-precision softmax; keys
 * and values stored as floats or (f16) as halves, the reference using the
 * same (rounded) values. */
static void test_attention(int f16, int in_cache) {
    enum { HD = 256, NQ = 8, RING = 700, N_KEYS = 600, FIRST = 450 };
    float *K = malloc(sizeof(float) * RING * HD), *V = malloc(sizeof(float) * RING * HD), q[NQ * HD], out[NQ * HD];
    uint16_t *K16 = malloc(sizeof(uint16_t) * RING * HD), *V16 = malloc(sizeof(uint16_t) * RING * HD);
    float *parts = malloc(sizeof(float) * 5 * NQ * (HD + 2));
    for (int i = 0; i < RING * HD; i++) {
        K[i] = (float)rand() / RAND_MAX - 0.5f;
        V[i] = (float)rand() / RAND_MAX - 0.5f;
        K16[i] = g4_f32_to_f16_rne(K[i]);
        V16[i] = g4_f32_to_f16_rne(V[i]);
        if (f16) K[i] = g4_f16_to_f32(K16[i]), V[i] = g4_f16_to_f32(V16[i]);
    }
    for (int i = 0; i < NQ * HD; i++) q[i] = ((float)rand() / RAND_MAX - 0.5f) * 0.5f;
    g4_kv_view kv = {f16 ? (const void *)K16 : K, f16 ? (const void *)V16 : V, HD, FIRST, RING, HD, f16, in_cache};
    double worst = 0;
    /* 8 query heads, and 7 (4 + 2 + 1: every head-group width of the value sums) */
    for (int nq = NQ; nq >= NQ - 1; nq--)
    for (int n_parts = 1; n_parts <= 5; n_parts += 4) {
        for (int p = 0; p < n_parts; p++) {
            int j0 = N_KEYS * p * p / (n_parts * n_parts), j1 = N_KEYS * (p + 1) * (p + 1) / (n_parts * n_parts);
            float *part = parts + (int64_t)p * NQ * (HD + 2); /* parts keep the 8-head stride */
            g4_attend_part(&kv, q, HD, nq, j0, j1, part, HD, part + nq * HD, part + nq * (HD + 1));
        }
        g4_attend_merge(n_parts, nq, HD, parts, NQ * (HD + 2), out, HD);
        for (int h = 0; h < nq; h++) {
            double s[N_KEYS], mx = -1e300, sum = 0;
            for (int j = 0; j < N_KEYS; j++) {
                const float *k = K + (int64_t)((FIRST + j) % RING) * HD;
                s[j] = 0;
                for (int d = 0; d < HD; d++) s[j] += (double)q[h * HD + d] * k[d];
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < N_KEYS; j++) sum += exp(s[j] - mx);
            for (int d = 0; d < HD; d++) {
                double want = 0;
                for (int j = 0; j < N_KEYS; j++) want += exp(s[j] - mx) / sum * V[(int64_t)((FIRST + j) % RING) * HD + d];
                worst = fmax(worst, fabs(out[h * HD + d] - want));
            }
        }
    }
    /* float dot products of 256 terms and a 600-term weighted sum: ~1e-6 */
    const char *kind = in_cache && g4_wide_kernels(HD) ? "512-bit" : "256-bit";
    CHECK(worst <= 1e-5, "attention (%s cache, %s): max |error| %g", f16 ? "f16" : "f32", kind, worst);
    printf("attention (%s cache, %s; ring wrap, 8 and 7 heads, 1 and 5 parts): max |error| %.2g\n", f16 ? "f16" : "f32",
           kind, worst);
    free(K); free(V); free(K16); free(V16); free(parts);
}

int main(void) {
    test_dot_rows(0);
    test_dot_rows(G4_ROWS_WIDE);
    for (int f16 = 0; f16 < 2; f16++)
        for (int in_cache = 0; in_cache < 2; in_cache++) test_attention(f16, in_cache);
    test_activations();
    test_rmsnorm();
    test_read_ahead();
    test_half_conversions();
    test_matmul();
    test_matmul_batch();
    test_sampler();
    return check_exit("test_ops");
}
