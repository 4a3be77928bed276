/* RMSNorm as Gemma 4 defines it: x / sqrt(mean(x²) + eps), then times the
 * weight as stored (no "1 + w"); a NULL weight is the weightless variant. */
#ifndef G4_OPS_NORM_H
#define G4_OPS_NORM_H

/* out may alias x. */
void g4_rmsnorm(float *out, const float *x, const float *weight, int n, float eps);

#endif
