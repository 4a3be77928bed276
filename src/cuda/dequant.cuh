/* A weight matrix's values as floats, one 16-byte load of codes at a time:
 * 8 bf16 or f32 values, or one whole 32-element block of the quantised forms
 * (weights.cu's device layouts). Shared by the decode GEMV (gemv.cu) and the
 * prefill's dequantisation to bf16 (gemm.cu), so both see the same weights. */
#ifndef G4_CUDA_DEQUANT_CUH
#define G4_CUDA_DEQUANT_CUH

#include "cuda/gpu.h"

/* Elements a lane handles per step: one 16-byte load of codes. */
template <int DT> struct chunk { static const int elems = 8; };
template <> struct chunk<G4_DTYPE_Q8_0> { static const int elems = 32; };
template <> struct chunk<G4_DTYPE_Q4_0> { static const int elems = 32; };
template <> struct chunk<GPU_DTYPE_Q4_AFFINE32> { static const int elems = 32; };
template <> struct chunk<GPU_DTYPE_Q8_AFFINE16> { static const int elems = 32; };

static __device__ __forceinline__ void bf16x2_to_f32(uint32_t u, float *out) {
    out[0] = __uint_as_float(u << 16);
    out[1] = __uint_as_float(u & 0xffff0000u);
}

/* The CH weights of matrix mat, row row, from column c, as floats. */
template <int DT> static __device__ __forceinline__ void load_weights(const gpu_matrix &w, int64_t e, float *wv);

template <> __device__ __forceinline__ void load_weights<G4_DTYPE_BF16>(const gpu_matrix &w, int64_t e, float *wv) {
    uint4 u = __ldg((const uint4 *)((const __nv_bfloat16 *)w.data + e));
    bf16x2_to_f32(u.x, wv);
    bf16x2_to_f32(u.y, wv + 2);
    bf16x2_to_f32(u.z, wv + 4);
    bf16x2_to_f32(u.w, wv + 6);
}

template <> __device__ __forceinline__ void load_weights<G4_DTYPE_F32>(const gpu_matrix &w, int64_t e, float *wv) {
    const float4 *p = (const float4 *)((const float *)w.data + e);
    float4 u = __ldg(p), v = __ldg(p + 1);
    wv[0] = u.x; wv[1] = u.y; wv[2] = u.z; wv[3] = u.w;
    wv[4] = v.x; wv[5] = v.y; wv[6] = v.z; wv[7] = v.w;
}

template <> __device__ __forceinline__ void load_weights<G4_DTYPE_Q8_0>(const gpu_matrix &w, int64_t e, float *wv) {
    const uint4 *p = (const uint4 *)((const int8_t *)w.data + e);
    uint4 q[2] = {__ldg(p), __ldg(p + 1)};
    float d = __half2float(w.scales[e / 32]);
    const int8_t *b = (const int8_t *)q;
#pragma unroll
    for (int i = 0; i < 32; i++) wv[i] = d * b[i];
}

template <> __device__ __forceinline__ void load_weights<G4_DTYPE_Q4_0>(const gpu_matrix &w, int64_t e, float *wv) {
    uint4 q = __ldg((const uint4 *)((const uint8_t *)w.data + e / 2));
    float d = __half2float(w.scales[e / 32]);
    const uint8_t *b = (const uint8_t *)&q;
#pragma unroll
    for (int j = 0; j < 16; j++) {
        wv[j] = d * (float)((b[j] & 15) - 8);
        wv[j + 16] = d * (float)((b[j] >> 4) - 8);
    }
}

/* The affine forms (gpu.h): y = scale·q + min, the product rounded before
 * the add as in GGML's dequantisers (__fmul_rn is never fused into an FMA),
 * so every weight is the value the CPU decodes. */
template <> __device__ __forceinline__ void load_weights<GPU_DTYPE_Q4_AFFINE32>(const gpu_matrix &w, int64_t e, float *wv) {
    uint4 q = __ldg((const uint4 *)((const uint8_t *)w.data + e / 2));
    float d = __ldg(w.scale_f32 + e / 32), m = __ldg(w.min_f32 + e / 32);
    const uint8_t *b = (const uint8_t *)&q;
#pragma unroll
    for (int j = 0; j < 16; j++) {
        wv[j] = __fmul_rn(d, (float)(b[j] & 15)) + m;
        wv[j + 16] = __fmul_rn(d, (float)(b[j] >> 4)) + m;
    }
}

template <> __device__ __forceinline__ void load_weights<GPU_DTYPE_Q8_AFFINE16>(const gpu_matrix &w, int64_t e, float *wv) {
    const uint4 *p = (const uint4 *)((const int8_t *)w.data + e);
    uint4 q[2] = {__ldg(p), __ldg(p + 1)};
    float2 d = __ldg((const float2 *)(w.scale_f32 + e / 16)); /* the two 16-element sub-blocks */
    float2 m = w.min_f32 ? __ldg((const float2 *)(w.min_f32 + e / 16)) : make_float2(0.0f, 0.0f);
    const int8_t *b = (const int8_t *)q;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        wv[i] = __fmul_rn(d.x, (float)b[i]) + m.x;
        wv[i + 16] = __fmul_rn(d.y, (float)b[i + 16]) + m.y;
    }
}

#endif
