/* Q4_K / Q6_K weights repacked for the 512-bit integer kernels: the K-quant
 * half of the mechanism of qdot_x16.h, whose functions call these (internal
 * to src/ops).
 *
 * As for Q4_0, 16 rows travel together so that one VNNI instruction with a
 * broadcast activation word advances 16 dot products, and a sub-block's 16
 * scales are one short load. A group of 16 rows of n columns is n / 256
 * super-blocks of 16 · 144 (Q4_K) or 16 · 210 (Q6_K) bytes, one after
 * another, so the group keeps the plain layout's size and offset. Groups do
 * not take turns as Q4_0's do (qdot_x16.h): with two groups' super-blocks
 * side by side the kernel's reads went back and forth between them and the
 * hardware prefetchers lost track (one thread, E4B-shaped Q4_K: 9.3-10.0
 * GB/s against 12.9-13.3 as two streams). Both super-blocks are laid out
 * in the order the kernels read them, scales first, so each group is one
 * front-to-back stream that the hardware prefetchers follow. A "chunk"
 * is 64 bytes whose bytes 4j .. 4j+3 belong to row j (one register: four
 * codes of each row). f16 scales keep their bits; the 6-bit Q4_K scales and
 * mins are re-split so that a sub-block's 16 values unpack with a few
 * instructions (GGML packs them per row in a 12-byte puzzle).
 *
 * Q4_K super-block, 2304 bytes:
 *   d      @0     16 f16, rows 0..15
 *   dmin   @32    16 f16
 *   sc     @64    8 × 16 bytes; sub-block s, row j: scale | (min & 3) << 6
 *   mh     @192   4 × 16 bytes; pair p, row j: min of sub-block 2p >> 2
 *                 | (min of sub-block 2p + 1 >> 2) << 4
 *   codes  @256   32 chunks; chunk 8r + k, lane j = row j's qs[32r + 4k ..
 *                 32r + 4k + 3] (r < 4, k < 8): low nibbles are elements
 *                 4k .. 4k+3 of sub-block 2r, high nibbles those of 2r + 1
 * Q6_K super-block, 3360 bytes, in the order its one-token kernel reads them:
 *   d      @0     16 f16
 *   sc     @32    16 × 16 int8; sub-block s, row j
 *   then for h = 0, 1, at 288 + 1536h, for k = 0 .. 7, 192 bytes at +192k:
 *   ql     +0, +64  chunk 8q + k of ql for q = 2h, 2h + 1: lane j = row j's
 *                 ql[32q + 4k .. +3]
 *   qh     +128   chunk 8h + k of qh: lane j = row j's qh[32h + 4k .. +3]
 *   so element 4k + e of 32-element block b = 4h + c (c < 4) has its low
 *   four bits in byte e of its lane of ql chunk 8(2h + c % 2) + k (low
 *   nibble for c < 2, high for c >= 2) and its top two at bits 2c, 2c + 1 of
 *   byte e of qh chunk 8h + k, as GGML's bytes have them. */
#ifndef G4_OPS_QDOT_X16_K_H
#define G4_OPS_QDOT_X16_K_H

#include "ops/qdot.h"
#include "ops/tensor.h"

#include <stdint.h>

int g4_x16k_is_k(g4_dtype t); /* Q4_K or Q6_K */

/* As g4_x16_repack, g4_x16_unrepack and g4_x16_row_to_f32 (qdot_x16.h). */
void g4_x16k_repack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols);
void g4_x16k_unrepack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols);
void g4_x16k_row_to_f32(g4_dtype t, const void *data, int64_t rows, int64_t cols, int64_t row, float *out);

/* How many groups take turns by block in type t's layout (qdot_x16.h): the
 * groups of its widest one-token kernel (4 for Q4_0, 2 for Q8_0), or 1 (the
 * K-quants: each group whole, one after another). */
int g4_x16_turn_groups(g4_dtype t);

/* Where a run of consecutive groups of one turn lies: group
 * g's block b starts at codes + g·group_step + b·block_step, and (Q4_0,
 * Q8_0) its 16 f16 scales at scales + 32·g + b·block_step; the K-quants
 * keep theirs inside the super-block (scales is NULL). */
typedef struct {
    const uint8_t *codes, *scales;
    int64_t group_step, block_step;
} g4_x16_span;

/* Group g of a matrix of `groups` groups (of 16 rows, `cols` columns). */
g4_x16_span g4_x16_span_of(g4_dtype t, const void *matrix, int64_t groups, int64_t cols, int64_t g);

/* The product of the span's first group (or two, or four) with n tokens;
 * nb = cols / 32 activation blocks per token. */
typedef void (*g4_x16_group_fn)(const g4_x16_span *s, int64_t nb, const g4_block_q8a *x, float *y, int64_t y_stride);

/* The 512-bit kernels of a type: one group by 8, 4 or 1 tokens, and, where
 * it pays (NULL otherwise), two or four consecutive groups of one turn by
 * one token (decode: more rows per pass over the activations). */
typedef struct g4_x16_kernels {
    g4_x16_group_fn tokens8, tokens4, token1, pair_token1, quad_token1;
} g4_x16_kernels;

const g4_x16_kernels *g4_x16k_kernels(g4_dtype t);

/* The scalar reference, the span's first group by n tokens. */
void g4_x16k_group_scalar(g4_dtype t, const g4_x16_span *s, int64_t cols, const g4_block_q8a *x, int n, float *y,
                          int64_t y_stride);

#endif
