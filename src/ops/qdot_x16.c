/* Repacked Q4_0 / Q8_0 matrices (layout: qdot_x16.h): the repacking, a
 * scalar reference, and the AVX-512 VNNI kernel that multiplies one group of
 * 16 rows by up to eight tokens at a time. Q4_K and Q6_K live in
 * qdot_x16_k.c; the functions here hand them over. */
#include "ops/qdot_x16.h"

#include "ops/qdot_x16_k.h"

#include "ops/half.h"
#include "ops/quant.h"

#include <immintrin.h>
#include <string.h>

/* Code bytes of one block of the 16 rows; the offset that makes the codes
 * unsigned for VNNI (Q4_0 codes are stored as q + 8; Q8_0 is signed, the
 * kernel adds 128). */
static int64_t codes_per_block(g4_dtype t) { return t == G4_DTYPE_Q4_0 ? 256 : 512; }

int g4_x16_eligible(g4_dtype t, int64_t rows, int64_t cols) {
    int64_t block = g4_x16k_is_k(t) ? 256 : 32;
    return (t == G4_DTYPE_Q4_0 || t == G4_DTYPE_Q8_0 || g4_x16k_is_k(t)) && rows % G4_X16_ROWS == 0 &&
           cols % block == 0 && cols > 0 && g4_qdot_variant() == 3;
}

#define QUAD 4 /* the groups of g4_x16_kernels.quad_token1 */

int g4_x16_turn_groups(g4_dtype t) { return t == G4_DTYPE_Q4_0 ? QUAD : t == G4_DTYPE_Q8_0 ? 2 : 1; }

g4_x16_span g4_x16_span_of(g4_dtype t, const void *matrix, int64_t groups, int64_t cols, int64_t g) {
    int64_t blocks = cols / (g4_x16k_is_k(t) ? G4_QK_K : 32), turn = g4_x16_turn_groups(t);
    int64_t unit = G4_X16_ROWS * (int64_t)g4_dtype_row_bytes(t, cols) / blocks; /* a group's block, scales included */
    int64_t first = g / turn * turn, in_turn = groups - first < turn ? groups - first : turn, i = g - first;
    const uint8_t *base = (const uint8_t *)matrix + first * blocks * unit;
    if (g4_x16k_is_k(t)) return (g4_x16_span){base, NULL, blocks * unit, unit}; /* a group after another */
    int64_t cb = codes_per_block(t);
    return (g4_x16_span){base + i * cb, base + in_turn * cb + 32 * i, cb, in_turn * unit};
}

/* Row j of the span's group, block b: scale and code bytes in place, or
 * back (to_plain). */
static void move_block(g4_dtype t, const g4_x16_span *s, int j, int64_t b, uint8_t *plain_block, int to_plain) {
    uint8_t *codes = (uint8_t *)s->codes + b * s->block_step, *scale = (uint8_t *)s->scales + b * s->block_step + 2 * j;
    /* f16 scale, then the codes (both GGML block types) */
    if (to_plain) memcpy(plain_block, scale, 2);
    else memcpy(scale, plain_block, 2);
    for (int64_t k = 0; k < codes_per_block(t) / 64; k++)
        if (to_plain) memcpy(plain_block + 2 + 4 * k, codes + k * 64 + 4 * j, 4);
        else memcpy(codes + k * 64 + 4 * j, plain_block + 2 + 4 * k, 4);
}

static void convert(g4_dtype t, const void *plain, const void *packed, int64_t rows, int64_t cols, int to_plain) {
    int64_t nb = cols / 32, groups = rows / G4_X16_ROWS;
    size_t row_bytes = g4_dtype_row_bytes(t, cols), block_bytes = g4_dtype_block_bytes(t);
    for (int64_t g = 0; g < groups; g++) {
        g4_x16_span s = g4_x16_span_of(t, packed, groups, cols, g);
        for (int j = 0; j < G4_X16_ROWS; j++)
            for (int64_t b = 0; b < nb; b++)
                move_block(t, &s, j, b, (uint8_t *)plain + (size_t)(g * G4_X16_ROWS + j) * row_bytes + b * block_bytes,
                           to_plain);
    }
}

void g4_x16_repack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols) {
    if (g4_x16k_is_k(t)) g4_x16k_repack(t, src, dst, rows, cols);
    else convert(t, src, dst, rows, cols, 0);
}

void g4_x16_unrepack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols) {
    if (g4_x16k_is_k(t)) g4_x16k_unrepack(t, src, dst, rows, cols);
    else convert(t, dst, src, rows, cols, 1);
}

/* Element i (0..31) of block b of row j of the span's group, as a signed code. */
static int code_at(g4_dtype t, const g4_x16_span *s, int64_t b, int j, int i) {
    const uint8_t *codes = s->codes + b * s->block_step;
    if (t == G4_DTYPE_Q8_0) return (int8_t)codes[(i / 4) * 64 + 4 * j + i % 4];
    int k = (i % 16) / 4, byte = codes[k * 64 + 4 * j + i % 4];
    return (i < 16 ? byte & 15 : byte >> 4) - 8;
}

static float scale_at(const g4_x16_span *s, int64_t b, int j) {
    uint16_t h;
    memcpy(&h, s->scales + b * s->block_step + 2 * j, 2);
    return g4_f16_to_f32(h);
}

void g4_x16_row_to_f32(g4_dtype t, const void *data, int64_t rows, int64_t cols, int64_t row, float *out) {
    /* a stacked tensor's row: its matrix, then the row in it */
    data = (const char *)data + (size_t)(row / rows) * (size_t)rows * g4_dtype_row_bytes(t, cols);
    row %= rows;
    if (g4_x16k_is_k(t)) {
        g4_x16k_row_to_f32(t, data, rows, cols, row, out);
        return;
    }
    g4_x16_span s = g4_x16_span_of(t, data, rows / G4_X16_ROWS, cols, row / G4_X16_ROWS);
    int j = (int)(row % G4_X16_ROWS);
    for (int64_t b = 0; b < cols / 32; b++) {
        float d = scale_at(&s, b, j);
        for (int i = 0; i < 32; i++) out[b * 32 + i] = d * (float)code_at(t, &s, b, j, i);
    }
}

/* The reference: per row and token, Σ_b scale · x.d · Σ_i q_i x_i. */
static void matmul_group_scalar(g4_dtype t, const g4_x16_span *s, int64_t cols, const g4_block_q8a *x, int n, float *y,
                                int64_t y_stride) {
    int64_t nb = cols / 32;
    for (int tok = 0; tok < n; tok++) {
        const g4_block_q8a *xt = x + (int64_t)tok * nb;
        for (int j = 0; j < G4_X16_ROWS; j++) {
            float sum = 0;
            for (int64_t b = 0; b < nb; b++) {
                int dot = 0;
                for (int i = 0; i < 32; i++) dot += code_at(t, s, b, j, i) * xt[b].qs[i];
                sum += scale_at(s, b, j) * xt[b].d * (float)dot;
            }
            y[(int64_t)tok * y_stride + j] = sum;
        }
    }
}

/* No software prefetch: a thread's share of a turn is one sequential
 * stream, which the hardware prefetchers follow. Prefetching 2-16 KB ahead
 * measured slower (one thread, 350 MB of E4B-shaped matrices: Q4_0 28.9-29.8
 * GB/s without, 23.7-27.9 with; Q8_0 30.4-30.7 against 18.6-19.9;
 * docs/benchmarks.md). */

#define VNNI512 "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"

static inline __m512i __attribute__((target(VNNI512), always_inline)) bcast(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* G groups (16·G rows) × T tokens, both compile-time constants at each
 * call. A block's unpacked codes stay in registers while every token passes
 * over them; per token, group and block: eight VNNI dot products (each lane
 * one row, four codes at a time), an integer correction of the code offset,
 * one conversion and one FMA with the 16 rows' scales times the token's
 * scale. Decode (T = 1) takes two groups of a turn at once (Q8_0's whole
 * turn), the activation broadcasts shared. */
static inline void __attribute__((target(VNNI512), always_inline))
matmul_vnni(g4_dtype t, const g4_x16_span *s, int64_t nb, const g4_block_q8a *x, float *y, int64_t y_stride,
            const int G, const int T) {
    const __m512i low4 = _mm512_set1_epi8(15), flip = _mm512_set1_epi8((char)0x80);
    const int offset = t == G4_DTYPE_Q4_0 ? 8 : 128;
    __m512 acc[8];
#pragma GCC unroll 8
    for (int i = 0; i < G * T; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i c[2][8]; /* c[g][k]: codes 4k..4k+3 of every row of group g, as unsigned bytes */
        __m512 d[2];
#pragma GCC unroll 2
        for (int g = 0; g < G; g++) {
            const uint8_t *p = s->codes + g * s->group_step + b * s->block_step;
            if (t == G4_DTYPE_Q4_0) {
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    __m512i v = _mm512_loadu_si512(p + 64 * k);
                    c[g][k] = _mm512_and_si512(v, low4);
                    c[g][k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
                }
            } else {
#pragma GCC unroll 8
                for (int k = 0; k < 8; k++) c[g][k] = _mm512_xor_si512(_mm512_loadu_si512(p + 64 * k), flip);
            }
            const uint8_t *scales = s->scales + 32 * g + b * s->block_step;
            d[g] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)scales));
        }
#pragma GCC unroll 8
        for (int i = 0; i < T; i++) {
            const g4_block_q8a *xb = x + (int64_t)i * nb + b;
            __m512i w[8]; /* the token's 32 activations, four at a time, in every lane */
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) w[k] = bcast(xb->qs + 4 * k);
            __m512 dx = _mm512_set1_ps(xb->d);
#pragma GCC unroll 2
            for (int g = 0; g < G; g++) {
                /* two chains, so the dot products do not wait on each other */
                __m512i s0 = _mm512_set1_epi32(-offset * xb->isum), s1 = _mm512_setzero_si512();
                if (t == G4_DTYPE_Q4_0) { /* low nibbles: elements 4k.., high: 16+4k.. */
#pragma GCC unroll 4
                    for (int k = 0; k < 4; k++) {
                        s0 = _mm512_dpbusd_epi32(s0, c[g][k], w[k]);
                        s1 = _mm512_dpbusd_epi32(s1, c[g][k + 4], w[k + 4]);
                    }
                } else {
#pragma GCC unroll 4
                    for (int k = 0; k < 8; k += 2) {
                        s0 = _mm512_dpbusd_epi32(s0, c[g][k], w[k]);
                        s1 = _mm512_dpbusd_epi32(s1, c[g][k + 1], w[k + 1]);
                    }
                }
                acc[g * T + i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_mul_ps(d[g], dx),
                                                 acc[g * T + i]);
            }
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < G; g++)
#pragma GCC unroll 8
        for (int i = 0; i < T; i++) _mm512_storeu_ps(y + g * G4_X16_ROWS + (int64_t)i * y_stride, acc[g * T + i]);
}

/* Q4_0 decode over a whole quad (64 rows) per pass, the activations
 * broadcast once for four groups (with the earlier layout, a stream per
 * group, E2B Q4_0 decode +12-20% over pairs, docs/benchmarks.md; Q8_0 gained
 * nothing measurable). Too few registers to hold four groups' unpacked codes, so
 * each group's are unpacked as its dot products use them: the same sums in
 * the same order as matmul_vnni. */
static void __attribute__((target(VNNI512))) q4_0_x64_t1(const g4_x16_span *s, int64_t nb, const g4_block_q8a *x,
                                                         float *y, int64_t y_stride) {
    (void)y_stride; /* one token: one row of outputs */
    const __m512i low4 = _mm512_set1_epi8(15);
    __m512 acc[QUAD];
#pragma GCC unroll 4
    for (int g = 0; g < QUAD; g++) acc[g] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const g4_block_q8a *xb = x + b;
        __m512i w[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) w[k] = bcast(xb->qs + 4 * k);
        const __m512 dx = _mm512_set1_ps(xb->d);
#pragma GCC unroll 4
        for (int g = 0; g < QUAD; g++) {
            const uint8_t *p = s->codes + g * s->group_step + b * s->block_step;
            const uint8_t *scales = s->scales + 32 * g + b * s->block_step;
            __m512i s0 = _mm512_set1_epi32(-8 * xb->isum), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) { /* low nibbles: elements 4k.., high: 16+4k.. */
                __m512i v = _mm512_loadu_si512(p + 64 * k);
                s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(v, low4), w[k]);
                s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4), w[k + 4]);
            }
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)scales));
            acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_mul_ps(d, dx), acc[g]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < QUAD; g++) _mm512_storeu_ps(y + g * G4_X16_ROWS, acc[g]);
}

#define GROUP_FN(NAME, TYPE, G, T)                                                                                  \
    static void __attribute__((target(VNNI512))) NAME(const g4_x16_span *s, int64_t nb, const g4_block_q8a *x,      \
                                                       float *y, int64_t y_stride) {                                \
        matmul_vnni(TYPE, s, nb, x, y, y_stride, G, T);                                                            \
    }
GROUP_FN(q4_0_x16_t8, G4_DTYPE_Q4_0, 1, 8)
GROUP_FN(q4_0_x16_t4, G4_DTYPE_Q4_0, 1, 4)
GROUP_FN(q4_0_x16_t1, G4_DTYPE_Q4_0, 1, 1)
GROUP_FN(q4_0_x32_t1, G4_DTYPE_Q4_0, 2, 1)
GROUP_FN(q8_0_x16_t8, G4_DTYPE_Q8_0, 1, 8)
GROUP_FN(q8_0_x16_t4, G4_DTYPE_Q8_0, 1, 4)
GROUP_FN(q8_0_x16_t1, G4_DTYPE_Q8_0, 1, 1)
GROUP_FN(q8_0_x32_t1, G4_DTYPE_Q8_0, 2, 1)

static const g4_x16_kernels q4_0_kernels = {q4_0_x16_t8, q4_0_x16_t4, q4_0_x16_t1, q4_0_x32_t1, q4_0_x64_t1},
                            q8_0_kernels = {q8_0_x16_t8, q8_0_x16_t4, q8_0_x16_t1, q8_0_x32_t1, NULL};

/* Groups [g0, g1), within one turn where groups take turns (qdot_x16.h):
 * four at once, then pairs, where the type has kernels for them, then one
 * at a time. */
static void matmul_turn(const g4_x16_kernels *f, g4_dtype t, const void *matrix, int64_t groups, int64_t cols,
                        int64_t g0, int64_t g1, const g4_block_q8a *x, int n, float *y, int64_t y_stride) {
    int64_t nb = cols / 32, g = g0;
    g4_x16_span s;
    if (n == 1 && f->quad_token1 && g1 - g == QUAD) {
        s = g4_x16_span_of(t, matrix, groups, cols, g);
        f->quad_token1(&s, nb, x, y, y_stride);
        return;
    }
    for (; n == 1 && f->pair_token1 && g + 2 <= g1; g += 2) {
        s = g4_x16_span_of(t, matrix, groups, cols, g);
        f->pair_token1(&s, nb, x, y + (g - g0) * G4_X16_ROWS, y_stride);
    }
    for (; g < g1; g++) {
        s = g4_x16_span_of(t, matrix, groups, cols, g);
        float *yg = y + (g - g0) * G4_X16_ROWS;
        int i = 0;
        for (; i + 8 <= n; i += 8) f->tokens8(&s, nb, x + i * nb, yg + i * y_stride, y_stride);
        for (; i + 4 <= n; i += 4) f->tokens4(&s, nb, x + i * nb, yg + i * y_stride, y_stride);
        for (; i < n; i++) f->token1(&s, nb, x + i * nb, yg + i * y_stride, y_stride);
    }
}

void g4_x16_matmul(g4_dtype t, const void *matrix, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                   const g4_block_q8a *x, int n, float *y, int64_t y_stride) {
    int64_t groups = rows / G4_X16_ROWS;
    if (g4_qdot_variant() != 3) {
        for (int64_t g = g0; g < g1; g++) {
            g4_x16_span s = g4_x16_span_of(t, matrix, groups, cols, g);
            (g4_x16k_is_k(t) ? g4_x16k_group_scalar : matmul_group_scalar)(t, &s, cols, x, n, y + (g - g0) * G4_X16_ROWS,
                                                                          y_stride);
        }
        return;
    }
    const g4_x16_kernels *f = g4_x16k_is_k(t) ? g4_x16k_kernels(t) : t == G4_DTYPE_Q4_0 ? &q4_0_kernels : &q8_0_kernels;
    int64_t turn = g4_x16_turn_groups(t);
    for (int64_t g = g0; g < g1;) {
        int64_t end = turn > 1 ? (g / turn + 1) * turn : g1; /* the turn's end, or the range's */
        if (end > g1) end = g1;
        matmul_turn(f, t, matrix, groups, cols, g, end, x, n, y + (g - g0) * G4_X16_ROWS, y_stride);
        g = end;
    }
}
