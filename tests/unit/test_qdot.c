/* The integer dot-product kernels (src/ops/qdot.c): every SIMD variant the
 * CPU has must give the scalar reference's result for every weight type, on
 * random weights and activations, single rows and four-row groups; and the
 * integer path must stay close to the float dequantise-and-dot reference. */
#include "check.h"
#include "ops/qdot.h"
#include "ops/qdot_x16.h"
#include "ops/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float frand(void) { return (float)rand() / RAND_MAX * 2 - 1; }

/* Repacked Q4_0/Q8_0 (groups of 16 rows): the repacking keeps every row
 * (dequantised rows identical to the plain ones) and the group kernel, for
 * 1 to 13 tokens (its 8-, 4- and 1-token paths), gives the plain scalar dot
 * of each row and token, in the scalar variant and the 512-bit one. */
static void test_repacked(void) {
    const g4_dtype types[] = {G4_DTYPE_Q4_0, G4_DTYPE_Q8_0};
    const int rows = 112, n_tok = 14; /* seven groups: at one token Q4_0 takes four, then a pair and a single */
    const int64_t n = 1568;
    float *wf = malloc(sizeof(float) * n), *deq = malloc(sizeof(float) * n), *deq2 = malloc(sizeof(float) * n);
    float *x = malloc(sizeof(float) * n * n_tok), *y = malloc(sizeof(float) * rows * n_tok);
    float *part = malloc(sizeof(float) * 80 * n_tok);
    g4_block_q8a *xq = malloc(sizeof *xq * (size_t)(n / 32) * n_tok);
    for (int64_t i = 0; i < n * n_tok; i++) x[i] = frand();
    for (int t = 0; t < n_tok; t++) g4_quantize_activations(x + t * n, xq + t * (n / 32), n);
    for (int k = 0; k < 2; k++) {
        g4_dtype t = types[k];
        size_t rb = g4_dtype_row_bytes(t, n);
        unsigned char *w = malloc(rb * rows), *packed = malloc(rb * rows);
        for (int r = 0; r < rows; r++) {
            for (int64_t i = 0; i < n; i++) wf[i] = frand() * (r + 1) * 0.05f;
            g4_quantize_row(t, wf, w + (size_t)r * rb, n);
        }
        g4_x16_repack(t, w, packed, rows, n);
        unsigned char *plain = malloc(rb * rows);
        g4_x16_unrepack(t, packed, plain, rows, n);
        CHECK(memcmp(plain, w, rb * rows) == 0, "%s: unrepack does not restore the original bytes", g4_dtype_name(t));
        free(plain);
        for (int r = 0; r < rows; r++) {
            g4_dequantize_row(t, w + (size_t)r * rb, deq, n);
            g4_x16_row_to_f32(t, packed, rows, n, r, deq2);
            CHECK(memcmp(deq, deq2, sizeof(float) * n) == 0, "%s repacked row %d differs", g4_dtype_name(t), r);
        }
        for (int v = 0; v <= 3; v += 3) {
            if (g4_qdot_set_variant(v) != 0) continue;
            /* 1 token (four groups, then two, then one at a time) and 13 (the 8-, 4- and 1-token paths) */
            g4_x16_matmul(t, packed, rows, n, 0, rows / 16, xq, 1, y, rows);
            g4_x16_matmul(t, packed, rows, n, 0, rows / 16, xq + n / 32, n_tok - 1, y + rows, rows);
            /* groups 1..5 alone: a range that starts inside the first quad
             * and ends inside the second, for 1 and 13 tokens */
            for (int tokens = 1; tokens <= 13; tokens += 12) {
                g4_x16_matmul(t, packed, rows, n, 1, 6, xq, tokens, part, 80);
                int keep = g4_qdot_variant();
                g4_qdot_set_variant(0);
                for (int tok = 0; tok < tokens; tok++)
                    for (int r = 16; r < 96; r++) {
                        float ref = g4_qdot(t, w + (size_t)r * rb, xq + tok * (n / 32), n), got = part[tok * 80 + r - 16];
                        CHECK(fabsf(got - ref) <= 1e-5f * (fabsf(ref) + 1), "%s variant %d groups 1-5, token %d row %d: %.7g vs %.7g",
                              g4_dtype_name(t), v, tok, r, got, ref);
                    }
                g4_qdot_set_variant(keep);
            }
            g4_qdot_set_variant(0);
            for (int tok = 0; tok < n_tok; tok++)
                for (int r = 0; r < rows; r++) {
                    float ref = g4_qdot(t, w + (size_t)r * rb, xq + tok * (n / 32), n), got = y[tok * rows + r];
                    CHECK(fabsf(got - ref) <= 1e-5f * (fabsf(ref) + 1), "%s repacked variant %d token %d row %d: %.7g vs %.7g",
                          g4_dtype_name(t), v, tok, r, got, ref);
                }
        }
        free(w);
        free(packed);
    }
    free(wf); free(deq); free(deq2); free(x); free(y); free(part); free(xq);
}

/* Repacked Q4_K/Q6_K. Half the rows come from the quantisers, half are
 * random bytes (every code, 6-bit scale and min, int8 scale -128 .. 127)
 * with finite random f16 scales. Checked: unrepack restores the bytes;
 * row_to_f32 gives GGML's dequantisation bit for bit; the 512-bit kernel
 * gives the scalar reference's floats bit for bit (same operations in the
 * same order, fused multiply-adds in both), for 1, 13 and 14 tokens (its
 * two-group, 8-, 4- and 1-token paths) and 1, 2, 3 and 5 groups; and the
 * reference is within a rounding bound of the exact (double) dot of the
 * dequantised weights and dequantised activations. */
static void test_repacked_k(void) {
    const g4_dtype types[] = {G4_DTYPE_Q4_K, G4_DTYPE_Q6_K};
    const int rows = 80, n_tok = 14, tokens[] = {1, 13, 14}, groups[] = {1, 2, 3, 5};
    for (int64_t n = 256; n <= 2560; n += 2304) {
        int64_t nb = n / 32;
        float *wf = malloc(sizeof(float) * n), *deq = malloc(sizeof(float) * n), *deq2 = malloc(sizeof(float) * n);
        float *mins = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * n * n_tok);
        float *ref = malloc(sizeof(float) * rows * n_tok), *got = malloc(sizeof(float) * rows * n_tok);
        g4_block_q8a *xq = malloc(sizeof *xq * (size_t)nb * n_tok);
        for (int64_t i = 0; i < n * n_tok; i++) x[i] = frand() * (i % 61 == 0 ? 6 : 1);
        g4_qdot_set_variant(0);
        for (int t = 0; t < n_tok; t++) g4_quantize_activations(x + t * n, xq + t * nb, n);
        for (int k = 0; k < 2; k++) {
            g4_dtype t = types[k];
            size_t rb = g4_dtype_row_bytes(t, n), bb = g4_dtype_block_bytes(t);
            unsigned char *w = malloc(rb * rows), *packed = malloc(rb * rows), *plain = malloc(rb * rows);
            for (int r = 0; r < rows; r++) {
                unsigned char *row = w + (size_t)r * rb;
                for (int64_t i = 0; i < n; i++) wf[i] = frand() * (r + 1) * 0.05f;
                g4_quantize_row(t, wf, row, n);
                if (r % 2 == 0) continue;
                for (size_t i = 0; i < rb; i++) row[i] = (unsigned char)rand();
                for (int64_t b = 0; b < n / 256; b++) { /* finite scales: d, dmin (Q4_K) or d (Q6_K, last) */
                    uint16_t d = g4_f32_to_f16_rne(frand() * 0.01f), dmin = g4_f32_to_f16_rne(fabsf(frand()) * 0.01f);
                    memcpy(row + b * bb + (t == G4_DTYPE_Q4_K ? 0 : bb - 2), &d, 2);
                    if (t == G4_DTYPE_Q4_K) memcpy(row + b * bb + 2, &dmin, 2);
                }
            }
            g4_x16_repack(t, w, packed, rows, n);
            g4_x16_unrepack(t, packed, plain, rows, n);
            CHECK(memcmp(plain, w, rb * rows) == 0, "%s: unrepack does not restore the original bytes", g4_dtype_name(t));
            for (int r = 0; r < rows; r++) {
                g4_dequantize_row(t, w + (size_t)r * rb, deq, n);
                g4_x16_row_to_f32(t, packed, rows, n, r, deq2);
                CHECK(memcmp(deq, deq2, sizeof(float) * n) == 0, "%s repacked row %d differs", g4_dtype_name(t), r);
            }
            /* the reference against the exact dot: its float roundings are
             * two per activation block (Q4_K: scale and min terms) plus a few
             * per term, each at most 2^-24 of the terms' magnitudes, which
             * mag sums (Q4_K: scale and min parts of every weight apart) */
            double worst = 0;
            g4_x16_matmul(t, packed, rows, n, 0, rows / 16, xq, n_tok, ref, rows);
            for (int r = 0; r < rows; r++) {
                unsigned char *row = w + (size_t)r * rb;
                g4_dequantize_row(t, row, deq, n);
                for (int64_t i = 0; i < n; i++) mins[i] = 0;
                if (t == G4_DTYPE_Q4_K) { /* codes zeroed: the element's −dmin·m alone */
                    memcpy(plain, row, rb);
                    for (int64_t b = 0; b < n / 256; b++) memset(plain + b * bb + 16, 0, 128);
                    g4_dequantize_row(t, plain, mins, n);
                }
                for (int tok = 0; tok < n_tok; tok++) {
                    double exact = 0, mag = 0;
                    for (int64_t i = 0; i < n; i++) {
                        const g4_block_q8a *xb = &xq[tok * nb + i / 32];
                        double a = (double)xb->d * xb->qs[i % 32];
                        exact += (double)deq[i] * a;
                        mag += (fabs((double)deq[i] - mins[i]) + fabs((double)mins[i])) * fabs(a);
                    }
                    double err = fabs(ref[tok * rows + r] - exact), tol = (2.0 * nb + 4) * 0x1p-24 * mag;
                    if (mag > 0 && err / mag > worst) worst = err / mag;
                    CHECK(err <= tol, "%s n %lld row %d token %d: reference %.9g vs exact %.9g (bound %.3g)", g4_dtype_name(t),
                          (long long)n, r, tok, ref[tok * rows + r], exact, tol);
                }
            }
            printf("test_qdot: %s n=%lld: reference vs exact dot, worst error %.3g of the terms' magnitude (bound %.3g)\n",
                   g4_dtype_name(t), (long long)n, worst, (2.0 * nb + 4) * 0x1p-24);
            if (g4_qdot_set_variant(3) == 0) {
                for (size_t gi = 0; gi < sizeof groups / sizeof *groups; gi++)
                    for (size_t ti = 0; ti < sizeof tokens / sizeof *tokens; ti++) {
                        int ng = groups[gi], nt = tokens[ti];
                        /* tokens from the end, so 13 starts off the first */
                        const g4_block_q8a *xs = xq + (n_tok - nt) * nb;
                        for (int i = 0; i < rows * n_tok; i++) got[i] = NAN;
                        g4_x16_matmul(t, packed, rows, n, 0, ng, xs, nt, got, rows);
                        for (int tok = 0; tok < nt; tok++)
                            for (int r = 0; r < 16 * ng; r++) {
                                float a = got[tok * rows + r], b = ref[(n_tok - nt + tok) * rows + r];
                                CHECK(memcmp(&a, &b, sizeof a) == 0, "%s 512-bit, %d groups, %d tokens: token %d row %d: %.9g vs %.9g",
                                      g4_dtype_name(t), ng, nt, tok, r, a, b);
                            }
                    }
                for (int nt = 1; nt <= 13; nt += 12) { /* groups 1..3: a range that starts after the first group */
                    const g4_block_q8a *xs = xq + (n_tok - nt) * nb;
                    for (int i = 0; i < rows * n_tok; i++) got[i] = NAN;
                    g4_x16_matmul(t, packed, rows, n, 1, 4, xs, nt, got, rows);
                    for (int tok = 0; tok < nt; tok++)
                        for (int r = 16; r < 64; r++) {
                            float a = got[tok * rows + r - 16], b = ref[(n_tok - nt + tok) * rows + r];
                            CHECK(memcmp(&a, &b, sizeof a) == 0, "%s 512-bit, groups 1-3, %d tokens: token %d row %d: %.9g vs %.9g",
                                  g4_dtype_name(t), nt, tok, r, a, b);
                        }
                }
                g4_qdot_set_variant(0);
            }
            free(w); free(packed); free(plain);
        }
        free(wf); free(deq); free(deq2); free(mins); free(x); free(ref); free(got); free(xq);
    }
}

int main(void) {
    const g4_dtype types[] = {G4_DTYPE_Q8_0, G4_DTYPE_Q4_0, G4_DTYPE_Q4_1, G4_DTYPE_Q5_0, G4_DTYPE_Q5_1};
    const int rows = 11; /* not a multiple of 4: the four-row kernel and the tail both run */
    srand(5);
    int variants = 0;
    /* 49 blocks: the two-block kernels' odd last block */
    for (int64_t n = 1536; n <= 1568; n += 32) {
    float *x = malloc(sizeof(float) * n), *wf = malloc(sizeof(float) * n);
    g4_block_q8a *xq = malloc(sizeof *xq * (size_t)(n / 32));
    for (int64_t i = 0; i < n; i++) x[i] = frand() * (i % 97 == 0 ? 8 : 1);
    CHECK(g4_qdot_set_variant(0) == 0, "scalar variant");
    g4_quantize_activations(x, xq, n);
    /* the SIMD activation quantiser is bit-identical to the scalar one */
    for (int v = 1; v <= 3; v++) {
        g4_block_q8a *xv = malloc(sizeof *xv * (size_t)(n / 32));
        if (g4_qdot_set_variant(v) != 0) { free(xv); continue; }
        g4_quantize_activations(x, xv, n);
        CHECK(memcmp(xv, xq, sizeof *xv * (size_t)(n / 32)) == 0, "variant %d activation blocks differ from scalar", v);
        free(xv);
    }
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        g4_dtype t = types[k];
        size_t row_bytes = g4_dtype_row_bytes(t, n);
        unsigned char *w = malloc(row_bytes * rows);
        for (int r = 0; r < rows; r++) {
            for (int64_t i = 0; i < n; i++) wf[i] = frand() * (r + 1) * 0.1f;
            g4_quantize_row(t, wf, w + (size_t)r * row_bytes, n);
        }
        float ref[16], got[16], deq[1568];
        CHECK(g4_qdot_set_variant(0) == 0, "scalar variant");
        for (int r = 0; r < rows; r++) ref[r] = g4_qdot(t, w + (size_t)r * row_bytes, xq, n);
        /* the integer path against float dequantise-and-dot: only the
         * activations' 8-bit rounding separates them */
        for (int r = 0; r < rows; r++) {
            g4_dequantize_row(t, w + (size_t)r * row_bytes, deq, n);
            double exact = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) { exact += (double)deq[i] * x[i]; mag += fabs((double)deq[i] * x[i]); }
            CHECK(fabs(ref[r] - exact) <= 0.01 * mag, "%s row %d: integer dot %g vs float %g", g4_dtype_name(t), r, ref[r], exact);
        }
        for (int v = 1; v <= 3; v++) {
            if (g4_qdot_set_variant(v) != 0) continue;
            variants |= 1 << v;
            g4_qdot_rows(t, w, row_bytes, rows, xq, n, got);
            for (int r = 0; r < rows; r++) {
                float tol = 1e-5f * (fabsf(ref[r]) + 1); /* summation order only */
                CHECK(fabsf(got[r] - ref[r]) <= tol, "%s variant %d row %d: %.7g vs scalar %.7g", g4_dtype_name(t), v, r, got[r], ref[r]);
            }
        }
        free(w);
    }
    free(x);
    free(wf);
    free(xq);
    }
    printf("test_qdot: variants checked against scalar: %s%s%s\n", variants & 2 ? "AVX2 " : "", variants & 4 ? "AVX-512 VNNI " : "",
           variants & 8 ? "AVX-512 VNNI 512-bit" : "");
    test_repacked();
    test_repacked_k();
    g4_qdot_set_variant(0);
    return check_exit("test_qdot");
}
