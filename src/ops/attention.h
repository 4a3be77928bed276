/* Scaled-dot-product attention for one query head over cached keys.
 * Gemma 4 normalises q and k with RMSNorm, so the score scale is 1.0. */
#ifndef G4_OPS_ATTENTION_H
#define G4_OPS_ATTENTION_H

#include <stdint.h>

/* The keys live in a ring of `ring` slots (ring = 0: no wrap): key j of the
 * n_keys visible ones is slot (first + j) mod ring, at K + slot * row_stride
 * (V alike). Attention is a sum over a set, so slot order does not matter.
 * scores: scratch of n_keys floats; out: head_dim floats. */
void g4_attend(const float *q, const float *K, const float *V, int64_t row_stride, int64_t first, int n_keys,
               int64_t ring, int head_dim, float *scores, float *out);

#endif
