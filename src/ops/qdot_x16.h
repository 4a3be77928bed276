/* Q4_0 / Q8_0 (and Q4_K / Q6_K) weights repacked for the 512-bit integer
 * kernels.
 *
 * GGML's row layout (18- or 34-byte blocks, one row after another) makes a
 * SIMD dot product spend most of its instructions gathering scales and
 * shuffling codes. Repacked, 16 rows travel together: one 512-bit register
 * holds four codes of each of the 16 rows, so a single VNNI instruction with
 * a broadcast activation word advances all 16 dot products, and the 16 rows'
 * scales of a block are one 256-bit load. The bytes are the same, only their
 * order changes.
 *
 * A group of 16 rows of n columns (nb = n / 32 blocks) has, per block b,
 *   codes:  CB bytes, as chunks of 64 bytes where bytes 4j .. 4j+3 of chunk
 *           k are row j's qs[4k .. 4k+3]
 *           (Q4_0: 4 chunks, CB = 256; low nibbles hold elements 4k..4k+3,
 *            high nibbles 16+4k..16+4k+3, as in the GGML block;
 *            Q8_0: 8 chunks, CB = 512)
 *   scales: the 16 rows' f16 scales (32 bytes).
 * Consecutive groups take turns by block, as many as the type's one-token
 * kernel multiplies at once (Q4_0: four, 64 rows; Q8_0: two): block b of
 * such a turn is its groups' codes, then their sets of scales, so a decode
 * pass over them reads one sequential stream (one thread, E4B-shaped
 * matrices from DRAM: Q4_0 +43%, Q8_0 +27% over a stream per group,
 * docs/benchmarks.md). A matrix is turns from its first row; the last one
 * may have fewer groups, taking turns in the same way. A turn sits where
 * the plain layout has its rows, so a slice of rows starting at a multiple
 * of 64 (one expert of a stacked tensor) is still a plain offset and,
 * ending at a multiple of 64 or the matrix's end, is itself a repacked
 * matrix. Q4_K and Q6_K groups (columns a multiple of 256) are built the
 * same way with super-blocks of 256 columns in place of blocks, but whole
 * groups follow one another: qdot_x16_k.h. */
#ifndef G4_OPS_QDOT_X16_H
#define G4_OPS_QDOT_X16_H

#include "ops/qdot.h"
#include "ops/tensor.h"

#include <stdint.h>

#define G4_X16_ROWS 16

/* True if a [rows, cols] matrix of type t can be repacked (and the CPU has
 * the 512-bit kernels that make it worth it). */
int g4_x16_eligible(g4_dtype t, int64_t rows, int64_t cols);

/* Repacks a [rows, cols] matrix (rows a multiple of 16) from src (plain rows)
 * into dst (same size; the buffers must not overlap). */
void g4_x16_repack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols);

/* The inverse: GGML's plain rows again (for consumers of the file layout,
 * e.g. the GPU upload). */
void g4_x16_unrepack(g4_dtype t, const void *src, void *dst, int64_t rows, int64_t cols);

/* Row `row` of a repacked [rows, cols] matrix, dequantised. */
void g4_x16_row_to_f32(g4_dtype t, const void *data, int64_t rows, int64_t cols, int64_t row, float *out);

/* y[i·y_stride + 16·(g − g0) + j] = dot(row j of group g, token i's
 * activations x[i·nb ..]) for the groups g0 <= g < g1 of a repacked [rows,
 * cols] matrix and n tokens. */
void g4_x16_matmul(g4_dtype t, const void *matrix, int64_t rows, int64_t cols, int64_t g0, int64_t g1,
                   const g4_block_q8a *x, int n, float *y, int64_t y_stride);

#endif
