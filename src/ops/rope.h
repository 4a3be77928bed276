/* Rotary position embedding, rotate-half ("split halves") convention: dim i
 * pairs with dim i + d/2. Only the first n_pairs pairs rotate; with
 * proportional RoPE the rest have frequency 0 and pass through. */
#ifndef G4_OPS_ROPE_H
#define G4_OPS_ROPE_H

/* inv_freq[i] = theta^(-2i/denominator) for i < n_pairs, in float32 like
 * transformers' inv_freq buffer. */
void g4_rope_inv_freq(float *inv_freq, int n_pairs, int denominator, double theta);

/* Rotates each of n_heads vectors of length head_dim in x (contiguous) for
 * position pos. */
void g4_rope_apply(float *x, int n_heads, int head_dim, const float *inv_freq, int n_pairs, int pos);

#endif
