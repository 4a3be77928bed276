/* Scaled-dot-product attention over cached keys, for the query heads that
 * share one key/value head (grouped-query attention). Gemma 4 normalises q
 * and k with RMSNorm, so the score scale is 1.0.
 *
 * Keys are visited in chunks with a running (online) softmax, so a long
 * context needs no score buffer of its length, and each key and value row
 * is read once for all the group's heads. A range of keys can be split into
 * parts computed separately (on different threads) and merged: decode has
 * one query per head but thousands of keys. */
#ifndef G4_OPS_ATTENTION_H
#define G4_OPS_ATTENTION_H

#include <stdint.h>

/* Where the keys are: the visible key j (0 .. n_keys-1) is slot
 * (first + j) mod ring (ring = 0: no wrap) at element K + slot * row_stride,
 * V alike; elements are floats, or IEEE halves if f16. Attention is a sum
 * over a set, so slot order does not matter. */
typedef struct g4_kv_view {
    const void *K, *V;
    int64_t row_stride, first, ring;
    int head_dim;
    int f16;
    int in_cache; /* the rows serve many queries (prefill): see G4_ROWS_WIDE */
} g4_kv_view;

/* One part: keys j0 .. j1-1 for n_q query heads (q + h * q_stride). Leaves
 * the unnormalised sum out[h] = Σ_j e^{s_hj - m_h} v_j (head_dim floats
 * each, out_stride apart), the running maximum m[h] and the sum l[h] of the
 * exponentials. */
void g4_attend_part(const g4_kv_view *kv, const float *q, int64_t q_stride, int n_q, int j0, int j1, float *out,
                    int64_t out_stride, float *m, float *l);

/* Combines parts into softmax-weighted values (head h at result +
 * h * result_stride). Part p starts at parts + p * part_stride and holds,
 * as g4_attend_part leaves them with out_stride = head_dim: the sums
 * [n_q][head_dim], then the maxima [n_q], then the exponential sums [n_q]. */
void g4_attend_merge(int n_parts, int n_q, int head_dim, const float *parts, int64_t part_stride, float *result,
                     int64_t result_stride);

#endif
