/* Scalar conversions between float32 and the 16-bit float formats that
 * checkpoints store (bfloat16 and IEEE half). */
#ifndef G4_OPS_HALF_H
#define G4_OPS_HALF_H

#include <stdint.h>
#include <string.h>

static inline float g4_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round to nearest even, as torch does when it casts to bfloat16. */
static inline uint16_t g4_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float g4_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#ifdef __AVX2__
#include <immintrin.h>
/* Elements i .. i+7 of p, float32 or (f16) IEEE half, as floats: SIMD
 * kernels that read either storage (the KV cache). */
static inline __attribute__((always_inline)) __m256 g4_load8_ps(const void *p, int64_t i, int f16) {
    if (!f16) return _mm256_loadu_ps((const float *)p + i);
#ifdef __F16C__
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
#else
    float f[8];
    for (int e = 0; e < 8; e++) f[e] = g4_f16_to_f32(((const uint16_t *)p)[i + e]);
    return _mm256_loadu_ps(f);
#endif
}

/* The same for sixteen elements, in AVX-512 kernels (built for this target
 * whatever the compiler flags, and called only where the CPU has it). */
#define G4_TARGET_AVX512F "avx2,fma,f16c,avx512f"
static inline __attribute__((target(G4_TARGET_AVX512F), always_inline)) __m512 g4_load16_ps(const void *p, int64_t i,
                                                                                            int f16) {
    if (!f16) return _mm512_loadu_ps((const float *)p + i);
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
}
#endif

/* Element i of p, float32 or (f16) IEEE half. */
static inline float g4_load_f32(const void *p, int64_t i, int f16) {
    return f16 ? g4_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

/* Rounds x to the precision of dtype-sized storage: what PyTorch does when it
 * casts a Python float constant to the weight dtype (see the embedding scale). */
float g4_round_to_bf16(float x);
float g4_round_to_f16(float x);

#endif
