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

/* Pointers to one block of one source row: scale and the 16 (Q4_0) or 32
 * (Q8_0) code bytes. */
static void source_block(g4_dtype t, const void *row, int64_t b, uint16_t *scale, const uint8_t **qs) {
    if (t == G4_DTYPE_Q4_0) {
        const g4_block_q4_0 *blk = (const g4_block_q4_0 *)row + b;
        *scale = blk->d;
        *qs = blk->qs;
    } else {
        const g4_block_q8_0 *blk = (const g4_block_q8_0 *)row + b;
        *scale = blk->d;
        *qs = (const uint8_t *)blk->qs;
    }
}

void g4_x16_repack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols) {
    if (g4_x16k_is_k(t)) {
        g4_x16k_repack(t, src, dst, rows, cols);
        return;
    }
    int64_t nb = cols / 32, cb = codes_per_block(t), chunks = cb / 64;
    size_t row_bytes = g4_dtype_row_bytes(t, cols);
    for (int64_t g = 0; g < rows / G4_X16_ROWS; g++) {
        uint8_t *codes = (uint8_t *)dst + (size_t)g * G4_X16_ROWS * row_bytes;
        uint16_t *scales = (uint16_t *)(codes + nb * cb);
        for (int j = 0; j < G4_X16_ROWS; j++) {
            const char *row = (const char *)src + (size_t)(g * G4_X16_ROWS + j) * row_bytes;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *qs;
                source_block(t, row, b, &scales[b * G4_X16_ROWS + j], &qs);
                for (int64_t k = 0; k < chunks; k++) memcpy(codes + b * cb + k * 64 + 4 * j, qs + 4 * k, 4);
            }
        }
    }
}

void g4_x16_unrepack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols) {
    if (g4_x16k_is_k(t)) {
        g4_x16k_unrepack(t, src, dst, rows, cols);
        return;
    }
    int64_t nb = cols / 32, cb = codes_per_block(t), chunks = cb / 64;
    size_t row_bytes = g4_dtype_row_bytes(t, cols), block_bytes = g4_dtype_block_bytes(t);
    for (int64_t g = 0; g < rows / G4_X16_ROWS; g++) {
        const uint8_t *codes = (const uint8_t *)src + (size_t)g * G4_X16_ROWS * row_bytes;
        const uint16_t *scales = (const uint16_t *)(codes + nb * cb);
        for (int j = 0; j < G4_X16_ROWS; j++) {
            uint8_t *row = (uint8_t *)dst + (size_t)(g * G4_X16_ROWS + j) * row_bytes;
            for (int64_t b = 0; b < nb; b++) {
                uint8_t *blk = row + b * block_bytes; /* f16 scale, then the codes (both GGML block types) */
                memcpy(blk, &scales[b * G4_X16_ROWS + j], 2);
                for (int64_t k = 0; k < chunks; k++) memcpy(blk + 2 + 4 * k, codes + b * cb + k * 64 + 4 * j, 4);
            }
        }
    }
}

/* Element i (0..31) of block b of row j in a group, as a signed code. */
static int code_at(g4_dtype t, const uint8_t *codes, int64_t b, int j, int i) {
    if (t == G4_DTYPE_Q8_0) return (int8_t)codes[b * 512 + (i / 4) * 64 + 4 * j + i % 4];
    int k = (i % 16) / 4, byte = codes[b * 256 + k * 64 + 4 * j + i % 4];
    return (i < 16 ? byte & 15 : byte >> 4) - 8;
}

void g4_x16_row_to_f32(g4_dtype t, const void *data, int64_t row, int64_t cols, float *out) {
    if (g4_x16k_is_k(t)) {
        g4_x16k_row_to_f32(t, data, row, cols, out);
        return;
    }
    int64_t nb = cols / 32, cb = codes_per_block(t);
    const uint8_t *codes = (const uint8_t *)data + (size_t)(row / G4_X16_ROWS) * G4_X16_ROWS * g4_dtype_row_bytes(t, cols);
    const uint16_t *scales = (const uint16_t *)(codes + nb * cb);
    int j = (int)(row % G4_X16_ROWS);
    for (int64_t b = 0; b < nb; b++) {
        float d = g4_f16_to_f32(scales[b * G4_X16_ROWS + j]);
        for (int i = 0; i < 32; i++) out[b * 32 + i] = d * (float)code_at(t, codes, b, j, i);
    }
}

/* The reference: per row and token, Σ_b scale · x.d · Σ_i q_i x_i. */
static void matmul_group_scalar(g4_dtype t, const void *group, int64_t cols, const g4_block_q8a *x, int n, float *y,
                                int64_t y_stride) {
    int64_t nb = cols / 32;
    const uint8_t *codes = group;
    const uint16_t *scales = (const uint16_t *)(codes + nb * codes_per_block(t));
    for (int tok = 0; tok < n; tok++) {
        const g4_block_q8a *xt = x + (int64_t)tok * nb;
        for (int j = 0; j < G4_X16_ROWS; j++) {
            float sum = 0;
            for (int64_t b = 0; b < nb; b++) {
                int dot = 0;
                for (int i = 0; i < 32; i++) dot += code_at(t, codes, b, j, i) * xt[b].qs[i];
                sum += g4_f16_to_f32(scales[b * G4_X16_ROWS + j]) * xt[b].d * (float)dot;
            }
            y[(int64_t)tok * y_stride + j] = sum;
        }
    }
}

/* Bytes ahead to prefetch: a decode step streams every weight once, so the
 * loads must be in flight well before they are needed (DRAM latency is
 * several blocks' worth of work). */
#ifndef PREFETCH
#define PREFETCH 2048
#endif

/* ... and blocks ahead for the scales, a stream of their own at the end of
 * the group, at decode (measured ~3% faster with it on E2B Q4_0 and Q8_0; 32
 * blocks ahead was no better; prompts, compute-bound, are left alone). */
#define SCALE_PREFETCH_BLOCKS 8

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
 * scale. Decode (T = 1) takes two groups at once: two independent streams
 * from memory and the activation broadcasts shared. */
static inline void __attribute__((target(VNNI512), always_inline))
matmul_vnni(g4_dtype t, const uint8_t *codes0, int64_t group_bytes, int64_t nb, const g4_block_q8a *x, float *y,
            int64_t y_stride, const int G, const int T) {
    const int64_t cb = codes_per_block(t);
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
            const uint8_t *p = codes0 + g * group_bytes + b * cb;
            if (t == G4_DTYPE_Q4_0) {
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) _mm_prefetch((const char *)p + PREFETCH + 64 * k, _MM_HINT_T0);
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    __m512i v = _mm512_loadu_si512(p + 64 * k);
                    c[g][k] = _mm512_and_si512(v, low4);
                    c[g][k + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
                }
            } else {
#pragma GCC unroll 8
                for (int k = 0; k < 8; k++) _mm_prefetch((const char *)p + PREFETCH + 64 * k, _MM_HINT_T0);
#pragma GCC unroll 8
                for (int k = 0; k < 8; k++) c[g][k] = _mm512_xor_si512(_mm512_loadu_si512(p + 64 * k), flip);
            }
            const uint16_t *scales = (const uint16_t *)(codes0 + g * group_bytes + nb * cb);
            if (T == 1) _mm_prefetch((const char *)(scales + (b + SCALE_PREFETCH_BLOCKS) * G4_X16_ROWS), _MM_HINT_T0);
            d[g] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + b * G4_X16_ROWS)));
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

/* Q4_0 decode over four groups (64 rows) per pass: four streams from memory
 * in flight instead of two (E2B Q4_0 decode +12-20%, docs/benchmarks.md;
 * Q8_0, with twice the lines a block, gained nothing measurable). Too few
 * registers to hold four groups' unpacked codes, so each group's are
 * unpacked as its dot products use them: the same sums in the same order as
 * matmul_vnni. */
#define Q4_0_STREAMS 4 /* the groups of g4_x16_kernels.quad_token1 */
static void __attribute__((target(VNNI512))) q4_0_x64_t1(const uint8_t *codes0, int64_t group_bytes, int64_t nb,
                                                         const g4_block_q8a *x, float *y, int64_t y_stride) {
    (void)y_stride; /* one token: one row of outputs */
    const int64_t cb = codes_per_block(G4_DTYPE_Q4_0);
    const __m512i low4 = _mm512_set1_epi8(15);
    __m512 acc[Q4_0_STREAMS];
#pragma GCC unroll 4
    for (int g = 0; g < Q4_0_STREAMS; g++) acc[g] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const g4_block_q8a *xb = x + b;
        __m512i w[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) w[k] = bcast(xb->qs + 4 * k);
        const __m512 dx = _mm512_set1_ps(xb->d);
#pragma GCC unroll 4
        for (int g = 0; g < Q4_0_STREAMS; g++) {
            const uint8_t *p = codes0 + g * group_bytes + b * cb;
            const uint16_t *scales = (const uint16_t *)(codes0 + g * group_bytes + nb * cb);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) _mm_prefetch((const char *)p + PREFETCH + 64 * k, _MM_HINT_T0);
            _mm_prefetch((const char *)(scales + (b + SCALE_PREFETCH_BLOCKS) * G4_X16_ROWS), _MM_HINT_T0);
            __m512i s0 = _mm512_set1_epi32(-8 * xb->isum), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) { /* low nibbles: elements 4k.., high: 16+4k.. */
                __m512i v = _mm512_loadu_si512(p + 64 * k);
                s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(v, low4), w[k]);
                s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4), w[k + 4]);
            }
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(scales + b * G4_X16_ROWS)));
            acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_mul_ps(d, dx), acc[g]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < Q4_0_STREAMS; g++) _mm512_storeu_ps(y + g * G4_X16_ROWS, acc[g]);
}

#define GROUP_FN(NAME, TYPE, G, T)                                                                                  \
    static void __attribute__((target(VNNI512))) NAME(const uint8_t *codes, int64_t group_bytes, int64_t nb,        \
                                                       const g4_block_q8a *x, float *y, int64_t y_stride) {         \
        matmul_vnni(TYPE, codes, group_bytes, nb, x, y, y_stride, G, T);                                           \
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

void g4_x16_matmul_groups(g4_dtype t, const void *groups, int n_groups, int64_t cols, const g4_block_q8a *x, int n,
                          float *y, int64_t y_stride) {
    int64_t nb = cols / 32, group_bytes = G4_X16_ROWS * (int64_t)g4_dtype_row_bytes(t, cols);
    const uint8_t *w = groups;
    if (g4_qdot_variant() != 3) {
        for (int g = 0; g < n_groups; g++)
            (g4_x16k_is_k(t) ? g4_x16k_group_scalar : matmul_group_scalar)(t, w + g * group_bytes, cols, x, n,
                                                                          y + g * G4_X16_ROWS, y_stride);
        return;
    }
    const g4_x16_kernels *f = g4_x16k_is_k(t) ? g4_x16k_kernels(t) : t == G4_DTYPE_Q4_0 ? &q4_0_kernels : &q8_0_kernels;
    int g = 0;
    if (n == 1 && f->quad_token1)
        for (; g + 4 <= n_groups; g += 4) f->quad_token1(w + g * group_bytes, group_bytes, nb, x, y + g * G4_X16_ROWS, y_stride);
    if (n == 1)
        for (; g + 2 <= n_groups; g += 2) f->pair_token1(w + g * group_bytes, group_bytes, nb, x, y + g * G4_X16_ROWS, y_stride);
    for (; g < n_groups; g++) {
        const uint8_t *grp = w + g * group_bytes;
        float *yg = y + g * G4_X16_ROWS;
        int i = 0;
        for (; i + 8 <= n; i += 8) f->tokens8(grp, group_bytes, nb, x + i * nb, yg + i * y_stride, y_stride);
        for (; i + 4 <= n; i += 4) f->tokens4(grp, group_bytes, nb, x + i * nb, yg + i * y_stride, y_stride);
        for (; i < n; i++) f->token1(grp, group_bytes, nb, x + i * nb, yg + i * y_stride, y_stride);
    }
}
