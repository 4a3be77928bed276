/* What the device tests (tests/cuda/*.cu) share: a seeded generator of
 * values in [-1, 1), bf16 rounding as the GPU does it, and the check that
 * a GPU is there at all (without one they report it and pass). */
#ifndef G4_TESTS_GPU_TEST_UTIL_CUH
#define G4_TESTS_GPU_TEST_UTIL_CUH

#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static float rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) * 2 - 1;
}

/* Round to nearest even, as __float2bfloat16_rn; bits (if given) gets the bf16 pattern. */
static float bf16_round(float x, uint16_t *bits = NULL) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fff + ((u >> 16) & 1);
    if (bits) *bits = (uint16_t)(u >> 16);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static int gpu_present(void) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) return 1;
    printf("no GPU: nothing to test\n");
    return 0;
}

#endif
