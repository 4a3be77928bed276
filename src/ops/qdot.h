/* Integer dot products for the 32-block quantised weight types: activations
 * are quantised on the fly to 8 bits per 32-element block (as llama.cpp
 * does), and each weight block meets its activation block in an int8 dot
 * product, so weights are read once, packed, straight from the mapped file.
 *
 * One scalar reference per type plus AVX-512 VNNI and AVX2 variants chosen
 * once at start-up; tests/unit/test_qdot.c pins every variant to the
 * reference. */
#ifndef G4_OPS_QDOT_H
#define G4_OPS_QDOT_H

#include "ops/tensor.h"

#include <stdint.h>

/* 32 activations: x ≈ d·qs; sum = d·Σqs (for the weight types with an offset). */
typedef struct g4_block_q8a {
    float d, sum;      /* scale, and d · Σ qs */
    int32_t isum;      /* Σ qs, for kernels that correct code offsets in integers */
    int8_t qs[32];
    int16_t isum16[2]; /* Σ qs[0..15] and Σ qs[16..31]: Q6_K's code offset is per 16-element sub-block */
} g4_block_q8a;

/* True for the weight types with an integer kernel. */
int g4_qdot_supported(g4_dtype t);

/* n a multiple of 32. */
void g4_quantize_activations(const float *x, g4_block_q8a *out, int64_t n);

/* Dot of a weight row of type t with quantised activations (n elements). */
float g4_qdot(g4_dtype t, const void *w, const g4_block_q8a *x, int64_t n);

/* out[r] = dot of rows r = 0 .. n_rows-1 (row_bytes apart) with x: the
 * decode path, where several rows share each activation block. */
void g4_qdot_rows(g4_dtype t, const void *w, size_t row_bytes, int n_rows, const g4_block_q8a *x, int64_t n, float *out);

/* The variants, for tests: 0 scalar, 1 AVX2, 2 AVX-512 VNNI (256-bit), 3
 * AVX-512 VNNI with the 512-bit two-block row kernels (needs BW and DQ too);
 * set_variant returns -1 if the CPU lacks it. */
int g4_qdot_set_variant(int variant);
int g4_qdot_variant(void);

#endif
