/* Helpers shared by quant.c and quant_k.c; not part of the ops API. */
#ifndef G4_OPS_QUANT_INTERNAL_H
#define G4_OPS_QUANT_INTERNAL_H

#include <stdint.h>
#include <string.h>

/* Bit-exact agreement with ggml needs every a*b+c rounded twice, as ggml's
 * library is built. GCC does not fuse under -std=c11 (the Makefile's);
 * clang fuses within expressions unless told not to. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Nearest integer, ties to even, as ggml's K-quant code rounds: adding
 * 1.5·2^23 pushes the integer part into the low mantissa bits, where it is
 * read back. Exact for |v| < 2^22; larger values wrap (as they do in ggml),
 * and nothing here is undefined behaviour whatever v holds. */
static inline int g4_round_nearest(float v) {
    float shifted = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

static inline int g4_clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

#endif
