/* Block quantisation (src/ops/quant*.c) against its own error bounds and,
 * bit for bit, against llama.cpp's ggml: libggml-base.so from the npm package
 * @node-llama-cpp/linux-x64@3.22.1, fetched by tools/fetch_llama.sh into
 * build/llama/ (or the directory in $G4_LLAMA_LIB_DIR), loaded with dlopen.
 * Without that library the test fails: the comparison is the point.
 *
 * Compared with ggml, per type: quantize_row_<t>_ref (the reference quantiser
 * llama-quantize uses without an importance matrix) and ggml_quantize_chunk
 * give the same bytes as g4_quantize_row; dequantize_row_<t> gives the same
 * floats as g4_dequantize_row, on our blocks and on random block bytes.
 * Also ggml_fp32_to_fp16 against g4_f32_to_f16_rne, and ggml's block sizes. */
#include "check.h"
#include "ops/half.h"
#include "ops/matmul.h"
#include "ops/quant.h"

#include <dlfcn.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- deterministic random numbers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_u64(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_uniform(void) { return (float)((rng_u64() >> 40) + 0.5) / (float)(1 << 24); } /* (0,1) */

static float rng_gauss(void) {
    float u = rng_uniform(), v = rng_uniform();
    return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v);
}

/* Test signals: each fills n values in a different shape that stresses a
 * different part of the scale search. */
enum { DIST_GAUSS, DIST_UNIFORM_POS, DIST_HEAVY, DIST_OUTLIERS, DIST_SPARSE, DIST_TINY, DIST_COUNT };
static const char *const dist_names[DIST_COUNT] = {"gaussian",  "uniform>0", "heavy-tailed",
                                                   "outliers",  "sparse",    "tiny"};

static void fill(float *x, int64_t n, int dist) {
    for (int64_t i = 0; i < n; i++) {
        float g = rng_gauss();
        switch (dist) {
        case DIST_GAUSS: x[i] = 0.02f * g; break;
        case DIST_UNIFORM_POS: x[i] = 0.5f + rng_uniform(); break; /* all positive: min > 0 */
        case DIST_HEAVY: x[i] = g / (0.05f + fabsf(rng_gauss())); break; /* Cauchy-like */
        case DIST_OUTLIERS: x[i] = (rng_u64() % 97 == 0) ? 40 * g : g; break;
        case DIST_SPARSE: x[i] = (rng_u64() % 4 == 0) ? g : 0; break; /* all-zero sub-blocks too */
        case DIST_TINY: x[i] = 1e-6f * g; break; /* f16 scales in the subnormal range */
        }
    }
}

/* ---- the types under test ---- */

static const struct {
    g4_dtype t;
    const char *ggml; /* ggml's spelling in function names */
    int ggml_type;    /* enum ggml_type */
} types[] = {
    {G4_DTYPE_Q8_0, "q8_0", 8},  {G4_DTYPE_Q4_0, "q4_0", 2},  {G4_DTYPE_Q4_1, "q4_1", 3},
    {G4_DTYPE_Q5_0, "q5_0", 6},  {G4_DTYPE_Q5_1, "q5_1", 7},  {G4_DTYPE_Q4_K, "q4_K", 12},
    {G4_DTYPE_Q5_K, "q5_K", 13}, {G4_DTYPE_Q6_K, "q6_K", 14},
};
#define N_TYPES (int)(sizeof types / sizeof types[0])

/* Same float, NaNs of any payload counting as equal. */
static int same_float(float a, float b) { return memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b)); }

/* ---- self-contained checks ---- */

static void test_dtype_helpers(void) {
    CHECK(g4_dtype_size(G4_DTYPE_F32) == 4 && g4_dtype_size(G4_DTYPE_BF16) == 2, "plain sizes");
    for (int k = 0; k < N_TYPES; k++) {
        g4_dtype t = types[k].t;
        CHECK(g4_dtype_size(t) == 0, "%s: no per-element size", g4_dtype_name(t));
        CHECK(g4_dtype_is_quantized(t), "%s is quantised", g4_dtype_name(t));
        int64_t be = g4_dtype_block_elems(t);
        uint64_t nb;
        CHECK(g4_dtype_nbytes(t, 4 * be, 3, &nb) == 0 && nb == 12 * g4_dtype_block_bytes(t),
              "%s: nbytes of 3 rows of 4 blocks", g4_dtype_name(t));
        CHECK(g4_dtype_nbytes(t, be + 1, 1, &nb) == -1, "%s: partial block refused", g4_dtype_name(t));
        CHECK(g4_dtype_row_bytes(t, 2 * be) == 2 * g4_dtype_block_bytes(t), "%s: row bytes", g4_dtype_name(t));
        float x[256] = {0};
        char out[256];
        CHECK(g4_quantize_row(t, x, out, be / 2) == -1, "%s: quantize of a partial block refused",
              g4_dtype_name(t));
    }
    uint64_t nb;
    CHECK(g4_dtype_nbytes(G4_DTYPE_F32, INT64_MAX / 2, 4, &nb) == -1, "overflow refused");
    CHECK(g4_dtype_nbytes(G4_DTYPE_F32, -1, 1, &nb) == -1, "negative refused");
    CHECK(!g4_dtype_is_quantized(G4_DTYPE_F16) && g4_dtype_block_elems(G4_DTYPE_F16) == 1, "F16 blocks of 1");
    CHECK(strcmp(g4_dtype_name(G4_DTYPE_Q4_K), "Q4_K") == 0, "names");
    float x[32] = {0};
    CHECK(g4_quantize_row(G4_DTYPE_F32, x, x, 32) == -1, "F32 is not a block type");
}

/* Against F16C (round to nearest even) for every non-NaN input sampled, and
 * the edges of the half range. */
static void test_f32_to_f16(void) {
    int bad = 0;
    for (uint64_t u = 0; u < (1ull << 32); u += 4093) {
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, 4);
        if (isnan(f)) continue;
        if (g4_f32_to_f16_rne(f) != _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)) bad++;
    }
    CHECK(bad == 0, "%d floats convert to f16 differently from F16C", bad);
    CHECK(g4_f32_to_f16_rne(65504.0f) == 0x7bff && g4_f32_to_f16_rne(65519.996f) == 0x7bff &&
              g4_f32_to_f16_rne(65520.0f) == 0x7c00 && g4_f32_to_f16_rne(-INFINITY) == 0xfc00,
          "overflow edge");
    CHECK(g4_f32_to_f16_rne(ldexpf(1, -25)) == 0 && g4_f32_to_f16_rne(ldexpf(1.0001f, -25)) == 1 &&
              g4_f32_to_f16_rne(ldexpf(3, -25)) == 2 && g4_f32_to_f16_rne(ldexpf(1, -14)) == 0x0400,
          "subnormal rounding");
    CHECK(g4_f32_to_f16_rne(NAN) == 0x7e00 && g4_f32_to_f16_rne(-NAN) == 0xfe00, "NaN");
}

/* Rounding error of storing v as f16: half an ulp, 2^-11 relative for
 * normal halves, at most 2^-25 absolute in the subnormal range (below 2^-24
 * a scale becomes 0 and the block decodes to nothing: tiny weights lose
 * everything in these formats, as in ggml). */
static double fe(double v) { return fmax(fabs(v) / 2048, ldexp(1, -25)); }

static double absmax_of(const float *x, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static void range_of(const float *x, int n, double *lo, double *hi) {
    *lo = *hi = x[0];
    for (int i = 1; i < n; i++) {
        *lo = fmin(*lo, x[i]);
        *hi = fmax(*hi, x[i]);
    }
}

/* Bound on |x - dequant(quant(x))| over one block (or super-block), and why.
 * Codes are chosen against the exact scale and decoded with its f16
 * rounding, so a code c adds |c|·fe(d). */
static double block_bound(g4_dtype t, const float *x) {
    double lo, hi;
    switch (t) {
    case G4_DTYPE_Q8_0: { /* step d = amax/127, round to nearest: d/2 */
        double d = absmax_of(x, 32) / 127;
        return d / 2 + 127 * fe(d);
    }
    case G4_DTYPE_Q4_0:   /* step d = amax/8 (16); the value at +8d (+16d) clamps */
    case G4_DTYPE_Q5_0: { /* to code 7 (15): a whole step off */
        double levels = t == G4_DTYPE_Q4_0 ? 8 : 16, d = absmax_of(x, 32) / levels;
        return d + levels * fe(d);
    }
    case G4_DTYPE_Q4_1:
    case G4_DTYPE_Q5_1: { /* step (max-min)/levels, round to nearest; min in f16 */
        range_of(x, 32, &lo, &hi);
        double levels = t == G4_DTYPE_Q4_1 ? 15 : 31, d = (hi - lo) / levels;
        return d / 2 + levels * fe(d) + fe(lo);
    }
    case G4_DTYPE_Q4_K:
    case G4_DTYPE_Q5_K: {
        /* Per 32-element sub-block the fit gives step s_j and offset m_j with
         * s_j <= S (about the largest sub-block range / nmax) and m_j <= M
         * (the largest |negative value|). They are stored in 6 bits against
         * S/63 and M/63, so decode up to S/126 and M/126 off, and codes are
         * re-fitted against them: half a step, plus the top code drifting by
         * nmax·S/126 + M/126. The least-squares fit does not minimise the
         * largest error; a factor 2 covers that. The f16 super-scales add
         * 63·nmax·fe(S/63) and 63·fe(M/63). */
        double nmax = t == G4_DTYPE_Q4_K ? 15 : 31, S = 0, M = 0;
        for (int j = 0; j < 8; j++) {
            range_of(x + 32 * j, 32, &lo, &hi);
            S = fmax(S, (hi - fmin(lo, 0)) / nmax);
            M = fmax(M, -fmin(lo, 0));
        }
        return 2 * (S / 2 + nmax * S / 126 + M / 126) + 63 * nmax * fe(S / 63) + 63 * fe(M / 63);
    }
    case G4_DTYPE_Q6_K: {
        /* Per 16 elements x ≈ s_j·c, c in [-32, 31], s_j <= S = amax_j/31.5
         * about; s_j is stored in 8 bits against S/128 (off by S/256, times
         * 32 codes) and codes are re-fitted: half a step plus that drift,
         * doubled for the fit; the f16 super-scale adds 128·32·fe(S/128). */
        double S = 0;
        for (int j = 0; j < 16; j++) S = fmax(S, absmax_of(x + 16 * j, 16) / 31.5);
        return 2 * (S / 2 + 32 * S / 256) + 128 * 32 * fe(S / 128);
    }
    default: return 0;
    }
}

/* Round trips on every test signal: every element within its block's bound,
 * and on gaussian data the RMS error relative to the signal's RMS under a
 * ceiling per type. Uniform quantisation with step Δ has RMS error Δ/√12;
 * over a block of gaussian samples max|x| is about 2.1σ (32 samples; 1.8σ
 * for 16) and the range about 4.1σ, so Δ/σ is 2.1/127 (Q8_0), 2.1/8 (Q4_0),
 * 4.1/15 (Q4_1, Q4_K), 2.1/16 (Q5_0), 4.1/31 (Q5_1, Q5_K), 1.8/32 (Q6_K),
 * i.e. 0.0048, 0.076, 0.079, 0.038, 0.038, 0.016. The ceilings add 25%
 * (50% for Q6_K, whose 8-bit sub-scales on 16 elements add more). */
static void test_round_trips(void) {
    const int64_t n = 256 * 64;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    unsigned char *q = malloc(n * 2);
    static const double rms_ceiling[] = {
        [G4_DTYPE_Q8_0] = 0.0060, [G4_DTYPE_Q4_0] = 0.095, [G4_DTYPE_Q4_1] = 0.099,
        [G4_DTYPE_Q5_0] = 0.048,  [G4_DTYPE_Q5_1] = 0.048, [G4_DTYPE_Q4_K] = 0.099,
        [G4_DTYPE_Q5_K] = 0.048,  [G4_DTYPE_Q6_K] = 0.024,
    };
    for (int k = 0; k < N_TYPES; k++) {
        g4_dtype t = types[k].t;
        int64_t be = g4_dtype_block_elems(t);
        for (int dist = 0; dist < DIST_COUNT; dist++) {
            fill(x, n, dist);
            CHECK(g4_quantize_row(t, x, q, n) == 0 && g4_dequantize_row(t, q, y, n) == 0, "%s", g4_dtype_name(t));
            int over = 0;
            double worst_ratio = 0, se = 0, sx = 0;
            for (int64_t b = 0; b < n; b += be) {
                double bound = block_bound(t, x + b) * (1 + 1e-6) + 1e-30;
                for (int64_t i = b; i < b + be; i++) {
                    double e = fabs((double)x[i] - y[i]);
                    if (e > bound) over++;
                    worst_ratio = fmax(worst_ratio, e / bound);
                    se += e * e;
                    sx += (double)x[i] * x[i];
                }
            }
            CHECK(over == 0, "%s on %s data: %d elements beyond their block's bound (worst %.2fx)",
                  g4_dtype_name(t), dist_names[dist], over, worst_ratio);
            if (dist == DIST_GAUSS) {
                double rel = sqrt(se / sx);
                CHECK(rel < rms_ceiling[t], "%s: relative RMS error %.4f above %.4f", g4_dtype_name(t), rel,
                      rms_ceiling[t]);
                printf("  %-5s gaussian: relative RMS error %.4f (ceiling %.3f), worst element %.2f of its bound\n",
                       g4_dtype_name(t), rel, rms_ceiling[t], worst_ratio);
            }
        }
        /* All-zero and constant blocks decode exactly. */
        for (int64_t i = 0; i < be; i++) x[i] = 0;
        g4_quantize_row(t, x, q, be);
        g4_dequantize_row(t, q, y, be);
        int nonzero = 0;
        for (int64_t i = 0; i < be; i++) nonzero += y[i] != 0;
        CHECK(nonzero == 0, "%s: zeros decode to %d non-zeros", g4_dtype_name(t), nonzero);
    }
    free(x);
    free(y);
    free(q);
}

/* The reference dot product, and the matmul entry points for block types
 * (row offsets through g4_dtype_row_bytes), against double sums of the
 * dequantised weights. */
static void test_dot_and_matmul(void) {
    const int64_t rows = 3, in = 512;
    float *w = malloc(rows * in * sizeof *w), *x = malloc(in * sizeof *x), *row = malloc(in * sizeof *row);
    unsigned char *q = malloc(rows * in * 2);
    fill(x, in, DIST_GAUSS);
    for (int k = 0; k < N_TYPES; k++) {
        g4_dtype t = types[k].t;
        fill(w, rows * in, DIST_OUTLIERS);
        size_t rb = g4_dtype_row_bytes(t, in);
        for (int64_t r = 0; r < rows; r++) g4_quantize_row(t, w + r * in, q + r * rb, in);
        g4_tensor W = {"w", t, 2, {rows, in}, rows * in, q, rows * rb, 0};
        for (int64_t r = 0; r < rows; r++) {
            g4_dequantize_row(t, q + r * rb, w + r * in, in);
            g4_row_to_f32(&W, r, row);
            CHECK(memcmp(row, w + r * in, in * sizeof *row) == 0, "%s: g4_row_to_f32 row %lld",
                  g4_dtype_name(t), (long long)r);
            double want = 0, mag = 0;
            for (int64_t i = 0; i < in; i++) {
                want += (double)w[r * in + i] * x[i];
                mag += fabs((double)w[r * in + i] * x[i]);
            }
            float got = g4_quant_dot_row(t, q + r * rb, x, in), got_row = g4_dot_row(&W, r, x);
            /* float accumulation of in terms: error below in·2^-24·Σ|w·x| */
            CHECK(fabs(got - want) <= 1e-4 * mag && got == got_row, "%s: dot %g vs %g (row %g)",
                  g4_dtype_name(t), got, want, got_row);
        }
    }
    free(w);
    free(x);
    free(row);
    free(q);
}

/* ---- against llama.cpp's ggml ---- */

typedef void (*ggml_quantize_ref_fn)(const float *x, void *y, int64_t k);
typedef void (*ggml_dequantize_fn)(const void *x, float *y, int64_t k);
typedef size_t (*ggml_quantize_chunk_fn)(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                                         int64_t n_per_row, const float *imatrix);
typedef uint16_t (*ggml_fp32_to_fp16_fn)(float);
typedef int64_t (*ggml_blck_size_fn)(int type);
typedef size_t (*ggml_type_size_fn)(int type);

static void *open_ggml(void) {
    const char *dir = getenv("G4_LLAMA_LIB_DIR");
    if (!dir || !*dir) dir = "build/llama/package/bins/linux-x64";
    char path[1024];
    snprintf(path, sizeof path, "%s/libggml-base.so", dir);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(lib != NULL,
          "cannot load llama.cpp's %s (%s).\n"
          "  The bit-exactness tests need it: run tools/fetch_llama.sh from the repository root\n"
          "  (npm pack @node-llama-cpp/linux-x64@3.22.1 into build/llama/), or set G4_LLAMA_LIB_DIR\n"
          "  to a directory holding libggml-base.so",
          path, dlerror());
    return lib;
}

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    CHECK(p != NULL, "libggml-base.so has no symbol %s", name);
    return p;
}

static void test_against_ggml(void *lib) {
    ggml_quantize_chunk_fn chunk = (ggml_quantize_chunk_fn)sym(lib, "ggml_quantize_chunk");
    ggml_fp32_to_fp16_fn to_f16 = (ggml_fp32_to_fp16_fn)sym(lib, "ggml_fp32_to_fp16");
    ggml_blck_size_fn blck_size = (ggml_blck_size_fn)sym(lib, "ggml_blck_size");
    ggml_type_size_fn type_size = (ggml_type_size_fn)sym(lib, "ggml_type_size");
    if (!chunk || !to_f16 || !blck_size || !type_size) return;

    /* f32 -> f16, NaNs included (ggml's software conversion makes them 0x7e00). */
    int bad = 0;
    for (uint64_t u = 0; u < (1ull << 32); u += 65521) {
        uint32_t bits = (uint32_t)u ^ (uint32_t)(u >> 7);
        float f;
        memcpy(&f, &bits, 4);
        if (g4_f32_to_f16_rne(f) != to_f16(f)) bad++;
    }
    const float edges[] = {0.f, -0.f, 65504.f, 65519.996f, 65520.f, 1e-8f, 2.98e-8f, 6.1e-5f, INFINITY, NAN, -NAN};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) bad += g4_f32_to_f16_rne(edges[i]) != to_f16(edges[i]);
    if (getenv("G4_EXHAUSTIVE")) /* every float: about 20 s */
        for (uint64_t u = 0; u < (1ull << 32); u++) {
            uint32_t bits = (uint32_t)u;
            float f;
            memcpy(&f, &bits, 4);
            bad += g4_f32_to_f16_rne(f) != to_f16(f);
        }
    CHECK(bad == 0, "%d floats convert to f16 differently from ggml_fp32_to_fp16", bad);

    const int64_t n_per_row = 4096, nrows = 16, n = n_per_row * nrows;
    float *x = malloc(n * sizeof *x), *ours_f = malloc(n * sizeof *ours_f), *theirs_f = malloc(n * sizeof *theirs_f);
    unsigned char *ours = malloc(n * 2), *ref = malloc(n * 2), *chunked = malloc(n * 2), *noise = malloc(n * 2);
    for (int k = 0; k < N_TYPES; k++) {
        g4_dtype t = types[k].t;
        char name[64];
        snprintf(name, sizeof name, "quantize_row_%s_ref", types[k].ggml);
        ggml_quantize_ref_fn quant_ref = (ggml_quantize_ref_fn)sym(lib, name);
        snprintf(name, sizeof name, "dequantize_row_%s", types[k].ggml);
        ggml_dequantize_fn dequant = (ggml_dequantize_fn)sym(lib, name);
        if (!quant_ref || !dequant) continue;
        CHECK(blck_size(types[k].ggml_type) == g4_dtype_block_elems(t) &&
                  type_size(types[k].ggml_type) == g4_dtype_block_bytes(t),
              "%s: ggml's block is %lld elements in %zu bytes", g4_dtype_name(t),
              (long long)blck_size(types[k].ggml_type), type_size(types[k].ggml_type));

        size_t nbytes = g4_dtype_row_bytes(t, n);
        int64_t blocks = n / g4_dtype_block_elems(t);
        int64_t diff_blocks = 0, diff_chunk = 0, diff_deq = 0, diff_noise = 0;
        for (int dist = 0; dist < DIST_COUNT; dist++) {
            fill(x, n, dist);
            g4_quantize_row(t, x, ours, n);
            quant_ref(x, ref, n);
            CHECK(chunk(types[k].ggml_type, x, chunked, 0, nrows, n_per_row, NULL) == nbytes,
                  "%s: ggml_quantize_chunk size", g4_dtype_name(t));
            size_t bb = g4_dtype_block_bytes(t);
            int64_t here = 0;
            for (int64_t b = 0; b < blocks; b++) {
                here += memcmp(ours + b * bb, ref + b * bb, bb) != 0;
                diff_chunk += memcmp(ours + b * bb, chunked + b * bb, bb) != 0;
            }
            CHECK(here == 0, "%s on %s data: %lld of %lld blocks differ from ggml's quantize_row_%s_ref",
                  g4_dtype_name(t), dist_names[dist], (long long)here, (long long)blocks, types[k].ggml);
            diff_blocks += here;

            g4_dequantize_row(t, ours, ours_f, n);
            dequant(ours, theirs_f, n);
            for (int64_t i = 0; i < n; i++) diff_deq += !same_float(ours_f[i], theirs_f[i]);
        }
        /* Arbitrary bytes: every code and scale pattern, infinities and NaN
         * scales included, decode the same. */
        for (size_t i = 0; i < nbytes; i++) noise[i] = (unsigned char)rng_u64();
        g4_dequantize_row(t, noise, ours_f, n);
        dequant(noise, theirs_f, n);
        for (int64_t i = 0; i < n; i++) diff_noise += !same_float(ours_f[i], theirs_f[i]);

        CHECK(diff_chunk == 0, "%s: %lld blocks differ from ggml_quantize_chunk", g4_dtype_name(t),
              (long long)diff_chunk);
        CHECK(diff_deq == 0 && diff_noise == 0, "%s: %lld (%lld on random bytes) floats differ from ggml's dequantize_row_%s",
              g4_dtype_name(t), (long long)diff_deq, (long long)diff_noise, types[k].ggml);
        printf("  %-5s vs ggml: %lld blocks x %d signals quantised, %s; dequantised %s\n", g4_dtype_name(t),
               (long long)blocks, DIST_COUNT, diff_blocks || diff_chunk ? "DIFFERENT" : "bit-exact",
               diff_deq || diff_noise ? "DIFFERENT" : "bit-exact (incl. random bytes)");
    }
    free(x);
    free(ours_f);
    free(theirs_f);
    free(ours);
    free(ref);
    free(chunked);
    free(noise);
}

/* Degenerate blocks where scale searches and f16 scales hit their edges. */
static void test_edge_blocks_against_ggml(void *lib) {
    float x[256];
    unsigned char ours[256], ref[256];
    for (int k = 0; k < N_TYPES; k++) {
        char name[64];
        snprintf(name, sizeof name, "quantize_row_%s_ref", types[k].ggml);
        ggml_quantize_ref_fn quant_ref = (ggml_quantize_ref_fn)dlsym(lib, name);
        if (!quant_ref) continue;
        g4_dtype t = types[k].t;
        int64_t be = g4_dtype_block_elems(t);
        size_t bb = g4_dtype_block_bytes(t);
        for (int c = 0; c < 9; c++) {
            for (int i = 0; i < 256; i++) {
                float g = rng_gauss();
                switch (c) {
                case 0: x[i] = 0; break;
                case 1: x[i] = 1.5f; break;                            /* constant */
                case 2: x[i] = i == 17 ? -3.0f : 0; break;             /* one spike */
                case 3: x[i] = 3e4f * g; break;                        /* scales near f16's top */
                case 4: x[i] = 1e-30f * g; break;                      /* scales flush to zero */
                case 5: x[i] = (i % 64 < 32) ? 1e-3f * g : 10 * g; break; /* one tiny sub-block per pair */
                case 6: x[i] = -fabsf(g) - 1; break;                   /* all negative */
                case 7: x[i] = (float)(i % 7) - 3; break;              /* exact small integers (ties) */
                case 8: x[i] = i < 128 ? 0 : g; break;                 /* half zero */
                }
            }
            g4_quantize_row(t, x, ours, be);
            quant_ref(x, ref, be);
            CHECK(memcmp(ours, ref, bb) == 0, "%s: edge case %d differs from ggml", g4_dtype_name(t), c);
        }
    }
}

int main(void) {
    test_dtype_helpers();
    test_f32_to_f16();
    test_round_trips();
    test_dot_and_matmul();
    void *lib = open_ggml();
    if (lib) {
        test_against_ggml(lib);
        test_edge_blocks_against_ggml(lib);
        dlclose(lib);
    }
    return check_exit("test_quant");
}
