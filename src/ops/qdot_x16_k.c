/* Repacked Q4_K / Q6_K matrices (layout: qdot_x16_k.h): the repacking and
 * its inverse, a scalar reference, and the AVX-512 VNNI kernels.
 *
 * Activations are the per-32 blocks of g4_quantize_activations. A Q4_K
 * sub-block is one activation block:
 *   dot = xd·(d·sc)·Σ q·a − (dmin·m)·(xd·Σ a),
 * the second term from the block's float sum. A Q6_K 32-block is two
 * sub-blocks of 16 whose offset q − 32 is corrected in integers with the
 * activations' per-16 sums, and whose int8 scales are applied in integers
 * too (|Σ sc·(q − 32)·a| < 2^24, so the conversion to float is exact):
 *   dot = (d·xd)·(sc0·Σ(q − 32)·a + sc1·Σ(q − 32)·a).
 * The kernels and the reference do the same float operations in the same
 * order (fused multiply-adds in both), so their results are bit-identical. */
#include "ops/qdot_x16_k.h"

#include "ops/half.h"
#include "ops/qdot_x16.h"
#include "ops/quant.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Byte offsets inside a repacked super-block of 16 rows. */
enum {
    Q4K_D = 0, Q4K_DMIN = 32, Q4K_SC = 64, Q4K_MH = 192, Q4K_QS = 256, Q4K_BYTES = 2304,
    Q6K_D = 0, Q6K_SC = 32, Q6K_HALF = 288, Q6K_BYTES = 3360,
    Q6K_STEP = 192, /* from one Q6_K code chunk of a block to the next */
};
_Static_assert(Q4K_BYTES == G4_X16_ROWS * sizeof(g4_block_q4_K), "Q4_K super-block size");
_Static_assert(Q6K_BYTES == G4_X16_ROWS * sizeof(g4_block_q6_K), "Q6_K super-block size");

/* Q6_K: the first of the 8 chunks (Q6K_STEP apart) of ql block q (0..3) and
 * of qh block h (0..1) (qdot_x16_k.h). */
static int q6k_ql(int q) { return Q6K_HALF + 1536 * (q / 2) + 64 * (q % 2); }
static int q6k_qh(int h) { return Q6K_HALF + 1536 * h + 128; }

int g4_x16k_is_k(g4_dtype t) { return t == G4_DTYPE_Q4_K || t == G4_DTYPE_Q6_K; }

/* ---- layout ---- */

/* GGML's 12-byte packing of eight 6-bit scales and mins (ops/quant.h):
 * every bit is used, so unpacking and packing are inverses. */
static void q4_K_unpack_scales(const uint8_t s[12], uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 15) | (s[j] >> 6) << 4);
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | (s[j + 4] >> 6) << 4);
    }
}

static void q4_K_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t s[12]) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

/* Row j's code bytes: bytes[4c .. 4c+3] are its lane of chunk c, n chunks
 * `step` bytes apart. */
static void put_codes(uint8_t *chunks, int step, int j, const uint8_t *bytes, int n) {
    for (int c = 0; c < n; c++) memcpy(chunks + step * c + 4 * j, bytes + 4 * c, 4);
}

static void get_codes(const uint8_t *chunks, int step, int j, uint8_t *bytes, int n) {
    for (int c = 0; c < n; c++) memcpy(bytes + 4 * c, chunks + step * c + 4 * j, 4);
}

/* Row j's block into a repacked super-block sb, and back. */
static void q4_K_put(uint8_t *sb, int j, const g4_block_q4_K *blk) {
    uint8_t sc[8], m[8];
    q4_K_unpack_scales(blk->scales, sc, m);
    put_codes(sb + Q4K_QS, 64, j, blk->qs, 32);
    memcpy(sb + Q4K_D + 2 * j, &blk->d, 2);
    memcpy(sb + Q4K_DMIN + 2 * j, &blk->dmin, 2);
    for (int s = 0; s < 8; s++) sb[Q4K_SC + 16 * s + j] = (uint8_t)(sc[s] | (m[s] & 3) << 6);
    for (int p = 0; p < 4; p++) sb[Q4K_MH + 16 * p + j] = (uint8_t)(m[2 * p] >> 2 | (m[2 * p + 1] >> 2) << 4);
}

static void q4_K_get(const uint8_t *sb, int j, g4_block_q4_K *blk) {
    uint8_t sc[8], m[8];
    get_codes(sb + Q4K_QS, 64, j, blk->qs, 32);
    memcpy(&blk->d, sb + Q4K_D + 2 * j, 2);
    memcpy(&blk->dmin, sb + Q4K_DMIN + 2 * j, 2);
    for (int s = 0; s < 8; s++) {
        uint8_t low = sb[Q4K_SC + 16 * s + j], high = sb[Q4K_MH + 16 * (s / 2) + j];
        sc[s] = low & 63;
        m[s] = (uint8_t)(low >> 6 | ((high >> 4 * (s % 2)) & 15) << 2);
    }
    q4_K_pack_scales(sc, m, blk->scales);
}

static void q6_K_put(uint8_t *sb, int j, const g4_block_q6_K *blk) {
    for (int q = 0; q < 4; q++) put_codes(sb + q6k_ql(q), Q6K_STEP, j, blk->ql + 32 * q, 8);
    for (int h = 0; h < 2; h++) put_codes(sb + q6k_qh(h), Q6K_STEP, j, blk->qh + 32 * h, 8);
    for (int s = 0; s < 16; s++) sb[Q6K_SC + 16 * s + j] = (uint8_t)blk->scales[s];
    memcpy(sb + Q6K_D + 2 * j, &blk->d, 2);
}

static void q6_K_get(const uint8_t *sb, int j, g4_block_q6_K *blk) {
    for (int q = 0; q < 4; q++) get_codes(sb + q6k_ql(q), Q6K_STEP, j, blk->ql + 32 * q, 8);
    for (int h = 0; h < 2; h++) get_codes(sb + q6k_qh(h), Q6K_STEP, j, blk->qh + 32 * h, 8);
    for (int s = 0; s < 16; s++) blk->scales[s] = (int8_t)sb[Q6K_SC + 16 * s + j];
    memcpy(&blk->d, sb + Q6K_D + 2 * j, 2);
}

/* Either block type, by value. */
typedef union {
    g4_block_q4_K q4;
    g4_block_q6_K q6;
} k_block;

/* Super-block sb of row j of the span's group, as GGML's block. */
static void get_block(g4_dtype t, const g4_x16_span *s, int64_t sb, int j, k_block *blk) {
    const uint8_t *p = s->codes + sb * s->block_step;
    if (t == G4_DTYPE_Q4_K) q4_K_get(p, j, &blk->q4);
    else q6_K_get(p, j, &blk->q6);
}

void g4_x16k_repack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols) {
    size_t row_bytes = g4_dtype_row_bytes(t, cols);
    for (int64_t g = 0; g < rows / G4_X16_ROWS; g++) {
        g4_x16_span s = g4_x16_span_of(t, dst, rows / G4_X16_ROWS, cols, g);
        for (int j = 0; j < G4_X16_ROWS; j++) {
            const char *row = (const char *)src + (size_t)(g * G4_X16_ROWS + j) * row_bytes;
            for (int64_t sb = 0; sb < cols / G4_QK_K; sb++) {
                uint8_t *p = (uint8_t *)s.codes + sb * s.block_step;
                if (t == G4_DTYPE_Q4_K) q4_K_put(p, j, (const g4_block_q4_K *)row + sb);
                else q6_K_put(p, j, (const g4_block_q6_K *)row + sb);
            }
        }
    }
}

void g4_x16k_unrepack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols) {
    size_t row_bytes = g4_dtype_row_bytes(t, cols), block_bytes = g4_dtype_block_bytes(t);
    for (int64_t g = 0; g < rows / G4_X16_ROWS; g++) {
        g4_x16_span s = g4_x16_span_of(t, src, rows / G4_X16_ROWS, cols, g);
        for (int j = 0; j < G4_X16_ROWS; j++) {
            char *row = (char *)dst + (size_t)(g * G4_X16_ROWS + j) * row_bytes;
            for (int64_t sb = 0; sb < cols / G4_QK_K; sb++) {
                k_block blk;
                get_block(t, &s, sb, j, &blk);
                memcpy(row + sb * block_bytes, &blk, block_bytes);
            }
        }
    }
}

/* Each block rebuilt and decoded by GGML's own dequantisation: the same
 * floats as the plain row, by construction. */
void g4_x16k_row_to_f32(g4_dtype t, const void *data, int64_t rows, int64_t cols, int64_t row, float *out) {
    g4_x16_span s = g4_x16_span_of(t, data, rows / G4_X16_ROWS, cols, row / G4_X16_ROWS);
    for (int64_t sb = 0; sb < cols / G4_QK_K; sb++, out += G4_QK_K) {
        k_block blk;
        get_block(t, &s, sb, (int)(row % G4_X16_ROWS), &blk);
        if (t == G4_DTYPE_Q4_K) g4_dequantize_row_q4_K(&blk.q4, out, G4_QK_K);
        else g4_dequantize_row_q6_K(&blk.q6, out, G4_QK_K);
    }
}

/* ---- scalar reference ---- */

/* One super-block of one row with its eight activation blocks, added to sum. */
static float q4_K_dot(const g4_block_q4_K *blk, const g4_block_q8a *x, float sum) {
    uint8_t sc[8], m[8];
    q4_K_unpack_scales(blk->scales, sc, m);
    float d = g4_f16_to_f32(blk->d), dmin = g4_f16_to_f32(blk->dmin);
    for (int s = 0; s < 8; s++) {
        const uint8_t *qs = blk->qs + 32 * (s / 2);
        int dot = 0;
        for (int i = 0; i < 32; i++) dot += ((qs[i] >> 4 * (s % 2)) & 15) * x[s].qs[i];
        sum = fmaf((float)dot, d * (float)sc[s] * x[s].d, sum);
        sum = fmaf(-(dmin * (float)m[s]), x[s].sum, sum);
    }
    return sum;
}

static float q6_K_dot(const g4_block_q6_K *blk, const g4_block_q8a *x, float sum) {
    float d = g4_f16_to_f32(blk->d);
    for (int b = 0; b < 8; b++) {
        int h = b / 4, c = b % 4, dot[2] = {0, 0};
        for (int i = 0; i < 32; i++) {
            int low = (blk->ql[64 * h + 32 * (c % 2) + i] >> 4 * (c / 2)) & 15, top = (blk->qh[32 * h + i] >> 2 * c) & 3;
            dot[i / 16] += ((low | top << 4) - 32) * x[b].qs[i];
        }
        int scaled = blk->scales[2 * b] * dot[0] + blk->scales[2 * b + 1] * dot[1];
        sum = fmaf((float)scaled, d * x[b].d, sum);
    }
    return sum;
}

void g4_x16k_group_scalar(g4_dtype t, const g4_x16_span *s, int64_t cols, const g4_block_q8a *x, int n, float *y,
                          int64_t y_stride) {
    int64_t nsb = cols / G4_QK_K;
    for (int tok = 0; tok < n; tok++)
        for (int j = 0; j < G4_X16_ROWS; j++) {
            float sum = 0;
            for (int64_t sb = 0; sb < nsb; sb++) {
                const g4_block_q8a *xb = x + (int64_t)tok * (cols / 32) + 8 * sb;
                k_block blk;
                get_block(t, s, sb, j, &blk);
                sum = t == G4_DTYPE_Q4_K ? q4_K_dot(&blk.q4, xb, sum) : q6_K_dot(&blk.q6, xb, sum);
            }
            y[(int64_t)tok * y_stride + j] = sum;
        }
}

/* ---- AVX-512 VNNI ---- */

/* No software prefetch: both super-blocks are laid out in the order their
 * one-token kernels read them, so each group is one stream that the hardware
 * prefetchers follow (one thread from DRAM, against the earlier layouts
 * with prefetches: Q4_K 14.4-15.2 -> 18.8-19.9 GB/s, Q6_K 12.0-12.5 ->
 * 13.8-14.1, and 28.8-31.8 with each chunk read once; docs/benchmarks.md). */

#define VNNI512 "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"
#define KERNEL static inline __attribute__((target(VNNI512), always_inline))

KERNEL __m512i bcast(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

KERNEL __m512 halves(const uint8_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
KERNEL __m512i bytes_u32(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }
KERNEL __m512i bytes_s32(const uint8_t *p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)); }

/* One group × T tokens (a compile-time constant at each call), one
 * sub-block at a time: its 16 rows' codes, scale·d and min·dmin are unpacked
 * once and stay in registers while the tokens pass; per token, eight VNNI
 * dot products, then two multiply-adds (the scale term, the min term).
 * Decode too takes one group at a time: two groups side by side are two
 * streams, and one thread from DRAM moved less (Q4_K 19.5 GB/s against 27.6,
 * Q6_K 14.3 against 19.1; docs/benchmarks.md). */
KERNEL void q4_K_vnni(const g4_x16_span *w, int64_t nb, const g4_block_q8a *x, float *y,
                      int64_t y_stride, const int T) {
    const __m512i low4 = _mm512_set1_epi8(15), low6 = _mm512_set1_epi32(63), min_top = _mm512_set1_epi32(0x3c);
    __m512 acc[8];
#pragma GCC unroll 8
    for (int i = 0; i < T; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; sb++) {
        /* block_step is the super-block's size (groups are whole), a constant
         * here: with the run-time step this loop was 7% slower */
        const uint8_t *blk = w->codes + sb * Q4K_BYTES;
        __m512 d = halves(blk + Q4K_D), dmin = halves(blk + Q4K_DMIN);
#pragma GCC unroll 8
        for (int s = 0; s < 8; s++) {
            __m512i c[8]; /* c[k]: codes 4k..4k+3 of sub-block s of every row */
            const uint8_t *p = blk + Q4K_QS + 512 * (s / 2);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m512i v = _mm512_loadu_si512(p + 64 * k);
                c[k] = _mm512_and_si512(s % 2 ? _mm512_srli_epi16(v, 4) : v, low4);
            }
            __m512i sc = bytes_u32(blk + Q4K_SC + 16 * s), mh = bytes_u32(blk + Q4K_MH + 16 * (s / 2));
            mh = s % 2 ? _mm512_srli_epi32(mh, 2) : _mm512_slli_epi32(mh, 2); /* min bits 2-5 in place */
            __m512i m = _mm512_ternarylogic_epi32(_mm512_srli_epi32(sc, 6), mh, min_top, 0xf8); /* a | (b & c) */
            __m512 dsc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(sc, low6)), d);
            __m512 dm = _mm512_mul_ps(_mm512_cvtepi32_ps(m), dmin);
#pragma GCC unroll 8
            for (int i = 0; i < T; i++) {
                const g4_block_q8a *xb = x + (int64_t)i * nb + 8 * sb + s;
                __m512i s0 = _mm512_setzero_si512(), s1 = s0; /* two chains */
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) { /* activations four at a time, in every lane */
                    s0 = _mm512_dpbusd_epi32(s0, c[k], bcast(xb->qs + 4 * k));
                    s1 = _mm512_dpbusd_epi32(s1, c[k + 4], bcast(xb->qs + 4 * k + 16));
                }
                __m512 r = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
                                           _mm512_mul_ps(dsc, _mm512_set1_ps(xb->d)), acc[i]);
                acc[i] = _mm512_fnmadd_ps(dm, _mm512_set1_ps(xb->sum), r);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < T; i++) _mm512_storeu_ps(y + (int64_t)i * y_stride, acc[i]);
}

/* As above (prompts; one token: q6_K_x16_t1 below), one 32-element block
 * (two sub-blocks of 16) at a time: the
 * 6-bit codes are the ql nibble with the qh bits OR-ed in above it; per
 * token, two chains of four dot products that start from the
 * −32·Σa offset correction, each multiplied by its sub-block's int8 scale,
 * then one multiply-add by d·xd. */
KERNEL void q6_K_vnni(const g4_x16_span *w, int64_t nb, const g4_block_q8a *x, float *y,
                      int64_t y_stride, const int T) {
    const __m512i low4 = _mm512_set1_epi8(15);
    __m512 acc[8];
#pragma GCC unroll 8
    for (int i = 0; i < T; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; sb++) {
        const uint8_t *blk = w->codes + sb * Q6K_BYTES; /* as for Q4_K */
        __m512 d = halves(blk + Q6K_D);
#pragma GCC unroll 8
        for (int b = 0; b < 8; b++) {
            const int h = b / 4, c = b % 4;
            const uint8_t *ql = blk + q6k_ql(2 * h + c % 2), *qh = blk + q6k_qh(h);
            __m512i q[8];
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m512i low = _mm512_loadu_si512(ql + Q6K_STEP * k), top = _mm512_loadu_si512(qh + Q6K_STEP * k);
                if (c >= 2) low = _mm512_srli_epi16(low, 4);
                /* bits 2c, 2c+1 to 4, 5; masked first, so no bit crosses into the next byte */
                top = _mm512_and_si512(top, _mm512_set1_epi8((char)(3 << 2 * c)));
                top = c == 0 ? _mm512_slli_epi16(top, 4) : c == 1 ? _mm512_slli_epi16(top, 2)
                    : c == 3 ? _mm512_srli_epi16(top, 2) : top;
                q[k] = _mm512_ternarylogic_epi32(low, top, low4, 0xec); /* (a & c) | b */
            }
            __m512i sc0 = bytes_s32(blk + Q6K_SC + 16 * (2 * b)), sc1 = bytes_s32(blk + Q6K_SC + 16 * (2 * b + 1));
#pragma GCC unroll 8
            for (int i = 0; i < T; i++) {
                const g4_block_q8a *xb = x + (int64_t)i * nb + 8 * sb + b;
                __m512i s0 = _mm512_set1_epi32(-32 * xb->isum16[0]), s1 = _mm512_set1_epi32(-32 * xb->isum16[1]);
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    s0 = _mm512_dpbusd_epi32(s0, q[k], bcast(xb->qs + 4 * k));
                    s1 = _mm512_dpbusd_epi32(s1, q[k + 4], bcast(xb->qs + 4 * k + 16));
                }
                __m512i scaled = _mm512_add_epi32(_mm512_mullo_epi32(s0, sc0), _mm512_mullo_epi32(s1, sc1));
                acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(scaled), _mm512_mul_ps(d, _mm512_set1_ps(xb->d)), acc[i]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < T; i++) _mm512_storeu_ps(y + (int64_t)i * y_stride, acc[i]);
}

/* One token: the four blocks of a half at once, so each chunk is read once
 * and in layout order (ql of blocks 2h and 2h + 1, then qh, chunk k of each,
 * side by side): one load of the three gives chunk k of the codes of blocks
 * 4h .. 4h + 3. The blocks' sums go to the accumulator in increasing order,
 * as in the reference. */
static void __attribute__((target(VNNI512))) q6_K_x16_t1(const g4_x16_span *w, int64_t nb, const g4_block_q8a *x,
                                                         float *y, int64_t y_stride) {
    (void)y_stride;
    const __m512i low4 = _mm512_set1_epi8(15), bits45 = _mm512_set1_epi8(0x30), low6 = _mm512_set1_epi8(63);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; sb++) {
        const uint8_t *blk = w->codes + sb * Q6K_BYTES;
        __m512 d = halves(blk + Q6K_D);
        for (int h = 0; h < 2; h++) {
            const g4_block_q8a *xb = x + 8 * sb + 4 * h;
            const uint8_t *p = blk + Q6K_HALF + 1536 * h;
            __m512i s[4][2]; /* block 4h + c, sub-block 0 / 1, from the −32·Σa correction */
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                s[c][0] = _mm512_set1_epi32(-32 * xb[c].isum16[0]);
                s[c][1] = _mm512_set1_epi32(-32 * xb[c].isum16[1]);
            }
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m512i l0 = _mm512_loadu_si512(p + Q6K_STEP * k), l1 = _mm512_loadu_si512(p + Q6K_STEP * k + 64);
                __m512i top = _mm512_loadu_si512(p + Q6K_STEP * k + 128), q[4];
                /* (low nibble) | (bits 2c, 2c + 1 of top moved to 4, 5) */
                q[0] = _mm512_ternarylogic_epi32(l0, _mm512_and_si512(_mm512_slli_epi16(top, 4), bits45), low4, 0xec);
                q[1] = _mm512_ternarylogic_epi32(l1, _mm512_and_si512(_mm512_slli_epi16(top, 2), bits45), low4, 0xec);
                q[2] = _mm512_and_si512(_mm512_ternarylogic_epi32(_mm512_srli_epi16(l0, 4), top, low4, 0xe4), low6);
                q[3] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l1, 4), _mm512_and_si512(_mm512_srli_epi16(top, 2), bits45),
                                                 low4, 0xec);
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++)
                    s[c][k / 4] = _mm512_dpbusd_epi32(s[c][k / 4], q[c], bcast(xb[c].qs + 4 * (k % 4) + 16 * (k / 4)));
            }
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                int b = 4 * h + c;
                __m512i sc0 = bytes_s32(blk + Q6K_SC + 16 * (2 * b)), sc1 = bytes_s32(blk + Q6K_SC + 16 * (2 * b + 1));
                __m512i scaled = _mm512_add_epi32(_mm512_mullo_epi32(s[c][0], sc0), _mm512_mullo_epi32(s[c][1], sc1));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(scaled), _mm512_mul_ps(d, _mm512_set1_ps(xb[c].d)), acc);
            }
        }
    }
    _mm512_storeu_ps(y, acc);
}

#define GROUP_FN(NAME, KERNEL_FN, T)                                                                             \
    static void __attribute__((target(VNNI512))) NAME(const g4_x16_span *w, int64_t nb, const g4_block_q8a *x, \
                                                       float *y, int64_t y_stride) {                           \
        KERNEL_FN(w, nb, x, y, y_stride, T);                                                                  \
    }
GROUP_FN(q4_K_x16_t8, q4_K_vnni, 8)
GROUP_FN(q4_K_x16_t4, q4_K_vnni, 4)
GROUP_FN(q4_K_x16_t1, q4_K_vnni, 1)
GROUP_FN(q6_K_x16_t8, q6_K_vnni, 8)
GROUP_FN(q6_K_x16_t4, q6_K_vnni, 4)

const g4_x16_kernels *g4_x16k_kernels(g4_dtype t) {
    static const g4_x16_kernels q4_K = {q4_K_x16_t8, q4_K_x16_t4, q4_K_x16_t1, NULL, NULL},
                                q6_K = {q6_K_x16_t8, q6_K_x16_t4, q6_K_x16_t1, NULL, NULL};
    return t == G4_DTYPE_Q4_K ? &q4_K : t == G4_DTYPE_Q6_K ? &q6_K : NULL;
}
