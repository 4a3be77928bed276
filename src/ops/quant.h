/* GGML's block-quantised weight formats, bit-compatible with llama.cpp.
 *
 * A row of n elements (n a multiple of the block size) is n / block_elems
 * consecutive blocks. Each block stores its own scale(s) as IEEE half floats
 * and packed integer codes; an element decodes as d·q (symmetric types) or
 * d·q + m (types with a min). The structs below are byte-for-byte the layouts
 * of ggml-common.h (sizes pinned by the static asserts), so a pointer into a
 * GGUF tensor can be read as an array of them (2-byte alignment suffices).
 * Multi-byte fields are little-endian, as on every machine this engine
 * targets.
 *
 * Quantisers reproduce ggml's reference quantisers (quantize_row_*_ref, what
 * llama-quantize runs without an importance matrix) bit for bit: same scale
 * search, same float operations in the same order. The K-quants search for
 * the best scale per sub-block (quant_k.c). tests/unit/test_quant.c checks
 * every type against llama.cpp's own library.
 *
 * These are the scalar reference kernels. Preconditions (n a multiple of the
 * block size, pointers to whole blocks) are the caller's; the loaders check
 * them for data that comes from files. Non-finite inputs quantise to
 * unspecified but well-defined codes. */
#ifndef G4_OPS_QUANT_H
#define G4_OPS_QUANT_H

#include <stdint.h>

#include "ops/tensor.h"

#define G4_QK 32    /* elements per block of Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 */
#define G4_QK_K 256 /* elements per super-block of the K-quants */

/* x = d·q, q in [-128, 127] (the quantiser uses [-127, 127]). */
typedef struct g4_block_q8_0 {
    uint16_t d; /* f16 scale */
    int8_t qs[G4_QK];
} g4_block_q8_0;

/* x = d·(q - 8), q in [0, 15]. Byte j holds element j in its low nibble and
 * element j + 16 in its high nibble. */
typedef struct g4_block_q4_0 {
    uint16_t d;
    uint8_t qs[G4_QK / 2];
} g4_block_q4_0;

/* x = d·q + m, q in [0, 15]; nibbles as Q4_0. */
typedef struct g4_block_q4_1 {
    uint16_t d, m;
    uint8_t qs[G4_QK / 2];
} g4_block_q4_1;

/* x = d·(q - 16), q in [0, 31]: low four bits in nibbles as Q4_0, the fifth
 * bit of element j is bit j of the little-endian 32-bit word qh. */
typedef struct g4_block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[G4_QK / 2];
} g4_block_q5_0;

/* x = d·q + m, q in [0, 31]; bits as Q5_0. */
typedef struct g4_block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[G4_QK / 2];
} g4_block_q5_1;

/* Eight sub-blocks of 32: x = d·sc[j]·q - dmin·mn[j], q in [0, 15], with
 * 6-bit sub-block scales sc and mins mn packed into 12 bytes: for j < 4,
 * sc[j] and mn[j] are the low 6 bits of scales[j] and scales[j + 4]; for
 * j >= 4 their low 4 bits are the nibbles of scales[j + 4] and their top 2
 * bits the top 2 bits of scales[j - 4] and scales[j]. qs holds 64 elements
 * per 32 bytes: element i of each 64-run in the low nibble of byte i, element
 * i + 32 in the high nibble. */
typedef struct g4_block_q4_K {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[G4_QK_K / 2];
} g4_block_q4_K;

/* As Q4_K with q in [0, 31]: the fifth bit of element 64·r + i (i < 32) is
 * bit 2r of qh[i], of element 64·r + 32 + i bit 2r + 1. */
typedef struct g4_block_q5_K {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[G4_QK_K / 8];
    uint8_t qs[G4_QK_K / 2];
} g4_block_q5_K;

/* Sixteen sub-blocks of 16: x = d·scales[j]·(q - 32), q in [0, 63]. Per
 * 128-element half h (ql + 64h, qh + 32h), element 32k + i (k < 4, i < 32)
 * has its low 4 bits in ql[i + 32·(k & 1)] (low nibble for k < 2, high for
 * k >= 2) and its top 2 bits at bit 2k of qh[i]. */
typedef struct g4_block_q6_K {
    uint8_t ql[G4_QK_K / 2];
    uint8_t qh[G4_QK_K / 4];
    int8_t scales[G4_QK_K / 16];
    uint16_t d;
} g4_block_q6_K;

_Static_assert(sizeof(g4_block_q8_0) == 34, "q8_0 block layout");
_Static_assert(sizeof(g4_block_q4_0) == 18, "q4_0 block layout");
_Static_assert(sizeof(g4_block_q4_1) == 20, "q4_1 block layout");
_Static_assert(sizeof(g4_block_q5_0) == 22, "q5_0 block layout");
_Static_assert(sizeof(g4_block_q5_1) == 24, "q5_1 block layout");
_Static_assert(sizeof(g4_block_q4_K) == 144, "q4_K block layout");
_Static_assert(sizeof(g4_block_q5_K) == 176, "q5_K block layout");
_Static_assert(sizeof(g4_block_q6_K) == 210, "q6_K block layout");

/* By type, for the block types of g4_dtype. Return -1 (writing nothing) if
 * t is not a block-quantised type or n is not a multiple of its block size. */
int g4_quantize_row(g4_dtype t, const float *x, void *out, int64_t n);
int g4_dequantize_row(g4_dtype t, const void *row, float *out, int64_t n);

/* Dot product of a quantised row of n elements with x (float32). Scalar
 * reference: each block is dequantised and multiplied out in float. Returns
 * 0 for types that are not block-quantised. */
float g4_quant_dot_row(g4_dtype t, const void *row, const float *x, int64_t n);

/* float32 -> IEEE half bits, round to nearest even, overflow to infinity,
 * NaN -> quiet NaN (0x7e00 with the sign): the same bits ggml's converter
 * gives for every input, which the quantisers rely on. */
uint16_t g4_f32_to_f16_rne(float f);

/* Per-type kernels; n is the element count (a multiple of the block size). */
void g4_quantize_row_q8_0(const float *x, g4_block_q8_0 *y, int64_t n);
void g4_quantize_row_q4_0(const float *x, g4_block_q4_0 *y, int64_t n);
void g4_quantize_row_q4_1(const float *x, g4_block_q4_1 *y, int64_t n);
void g4_quantize_row_q5_0(const float *x, g4_block_q5_0 *y, int64_t n);
void g4_quantize_row_q5_1(const float *x, g4_block_q5_1 *y, int64_t n);
void g4_quantize_row_q4_K(const float *x, g4_block_q4_K *y, int64_t n);
void g4_quantize_row_q5_K(const float *x, g4_block_q5_K *y, int64_t n);
void g4_quantize_row_q6_K(const float *x, g4_block_q6_K *y, int64_t n);

void g4_dequantize_row_q8_0(const g4_block_q8_0 *x, float *y, int64_t n);
void g4_dequantize_row_q4_0(const g4_block_q4_0 *x, float *y, int64_t n);
void g4_dequantize_row_q4_1(const g4_block_q4_1 *x, float *y, int64_t n);
void g4_dequantize_row_q5_0(const g4_block_q5_0 *x, float *y, int64_t n);
void g4_dequantize_row_q5_1(const g4_block_q5_1 *x, float *y, int64_t n);
void g4_dequantize_row_q4_K(const g4_block_q4_K *x, float *y, int64_t n);
void g4_dequantize_row_q5_K(const g4_block_q5_K *x, float *y, int64_t n);
void g4_dequantize_row_q6_K(const g4_block_q6_K *x, float *y, int64_t n);

#endif
