#include "ops/qdot.h"

#include "ops/half.h"
#include "ops/quant.h"

#include <immintrin.h>
#include <math.h>

int g4_qdot_supported(g4_dtype t) {
    return t == G4_DTYPE_Q8_0 || t == G4_DTYPE_Q4_0 || t == G4_DTYPE_Q4_1 || t == G4_DTYPE_Q5_0 || t == G4_DTYPE_Q5_1;
}

/* The same arithmetic eight lanes at a time (max of |x|, one multiply by
 * the same reciprocal, round to nearest even), so bit-identical. */
static void __attribute__((target("avx2,fma"))) quantize_block_avx2(const float *x, g4_block_q8a *out) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 v[4], m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        m = _mm256_max_ps(m, _mm256_and_ps(v[k], abs_mask));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h), d = amax / 127.0f, inv = d ? 1.0f / d : 0.0f;
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], _mm256_set1_ps(inv)));
    __m256i lo = _mm256_add_epi32(q[0], q[1]), hi = _mm256_add_epi32(q[2], q[3]);
    /* int32 -> int8 (values are within ±127), then undo the packs' lane interleave */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)out->qs, p);
    /* the two halves' sums: after two pairwise adds, lanes 0 and 4 hold
     * halves of Σ qs[0..15], lanes 1 and 5 of Σ qs[16..31] */
    __m256i s = _mm256_hadd_epi32(lo, hi);
    s = _mm256_hadd_epi32(s, s);
    __m128i halves = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    int sum_lo = _mm_cvtsi128_si32(halves), sum_hi = _mm_extract_epi32(halves, 1), total = sum_lo + sum_hi;
    out->d = d;
    out->sum = d * (float)total;
    out->isum = total;
    out->isum16[0] = (int16_t)sum_lo;
    out->isum16[1] = (int16_t)sum_hi;
}

void g4_quantize_activations(const float *x, g4_block_q8a *out, int64_t n) {
    if (g4_qdot_variant() >= 1) {
        for (int64_t b = 0; b < n / 32; b++) quantize_block_avx2(x + 32 * b, out + b);
        return;
    }
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f, inv = d ? 1.0f / d : 0.0f;
        int half[2] = {0, 0};
        for (int i = 0; i < 32; i++) {
            int q = (int)lrintf(x[i] * inv);
            out[b].qs[i] = (int8_t)q;
            half[i / 16] += q;
        }
        out[b].d = d;
        out[b].sum = d * (float)(half[0] + half[1]);
        out[b].isum = half[0] + half[1];
        out[b].isum16[0] = (int16_t)half[0];
        out[b].isum16[1] = (int16_t)half[1];
    }
}

/* ---- scalar reference ---- */

/* Unpacks one weight block into 32 integer codes and its scale and offset:
 * w ≈ scale·q + offset. */
static void unpack(g4_dtype t, const void *blk, int q[32], float *scale, float *offset) {
    switch (t) {
    case G4_DTYPE_Q8_0: {
        const g4_block_q8_0 *b = blk;
        for (int i = 0; i < 32; i++) q[i] = b->qs[i];
        *scale = g4_f16_to_f32(b->d);
        *offset = 0;
        break;
    }
    case G4_DTYPE_Q4_0: {
        const g4_block_q4_0 *b = blk;
        for (int i = 0; i < 16; i++) { q[i] = b->qs[i] & 15; q[i + 16] = b->qs[i] >> 4; }
        *scale = g4_f16_to_f32(b->d);
        *offset = -8 * *scale;
        break;
    }
    case G4_DTYPE_Q4_1: {
        const g4_block_q4_1 *b = blk;
        for (int i = 0; i < 16; i++) { q[i] = b->qs[i] & 15; q[i + 16] = b->qs[i] >> 4; }
        *scale = g4_f16_to_f32(b->d);
        *offset = g4_f16_to_f32(b->m);
        break;
    }
    case G4_DTYPE_Q5_0:
    case G4_DTYPE_Q5_1: {
        const uint8_t *qs, *qh_bytes;
        uint32_t qh;
        if (t == G4_DTYPE_Q5_0) {
            const g4_block_q5_0 *b = blk;
            qs = b->qs; qh_bytes = b->qh;
            *scale = g4_f16_to_f32(b->d);
            *offset = -16 * *scale;
        } else {
            const g4_block_q5_1 *b = blk;
            qs = b->qs; qh_bytes = b->qh;
            *scale = g4_f16_to_f32(b->d);
            *offset = g4_f16_to_f32(b->m);
        }
        qh = (uint32_t)qh_bytes[0] | (uint32_t)qh_bytes[1] << 8 | (uint32_t)qh_bytes[2] << 16 | (uint32_t)qh_bytes[3] << 24;
        for (int i = 0; i < 16; i++) {
            q[i] = (qs[i] & 15) | (int)((qh >> i) & 1) << 4;
            q[i + 16] = (qs[i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4;
        }
        break;
    }
    default:
        for (int i = 0; i < 32; i++) q[i] = 0;
        *scale = *offset = 0;
    }
}

static float qdot_scalar(g4_dtype t, const void *w, const g4_block_q8a *x, int64_t n) {
    size_t bb = g4_dtype_block_bytes(t);
    float sum = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        int q[32], dot = 0;
        float scale, offset;
        unpack(t, (const char *)w + (size_t)b * bb, q, &scale, &offset);
        for (int i = 0; i < 32; i++) dot += q[i] * x[b].qs[i];
        sum += scale * x[b].d * (float)dot + offset * x[b].sum;
    }
    return sum;
}

/* ---- SIMD ---- */

static inline float __attribute__((target("f16c"))) half(uint16_t h) { return _cvtsh_ss(h); }

static inline float __attribute__((target("avx2"))) hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* u8 × s8 products summed into eight int32 lanes. */
static inline __m256i __attribute__((target("avx2"))) dot_u8s8_avx2(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

static inline __m256i __attribute__((target("avx2,avx512f,avx512vl,avx512vnni"))) dot_u8s8_vnni(__m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

/* One loop per weight type and instruction set: BLOCK is the block struct,
 * CODES(b) its 32 codes as unsigned bytes (Q8_0: signed, see below),
 * SCALE(b) and OFFSET(b) the decoded w ≈ scale·q + offset. */
#define QDOT_FN(NAME, TARGET, DOT, BLOCK, CODES, SCALE, OFFSET)                                           \
    static float __attribute__((target(TARGET))) NAME(const void *w, const g4_block_q8a *x, int64_t n) { \
        const BLOCK *blk = w;                                                                             \
        __m256 acc = _mm256_setzero_ps();                                                                 \
        float offsets = 0;                                                                                \
        for (int64_t b = 0; b < n / 32; b++, blk++) {                                                     \
            __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);                                    \
            float scale = SCALE(blk);                                                                     \
            __m256i prod = DOT(CODES(blk), xq);                                                           \
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(prod), _mm256_set1_ps(scale * x[b].d), acc);         \
            offsets += OFFSET(blk, scale) * x[b].sum;                                                     \
        }                                                                                                 \
        return hsum_ps(acc) + offsets;                                                                    \
    }

#define NIBBLES(b)                                                                                         \
    _mm256_and_si256(_mm256_set1_epi8(15),                                                                 \
                     _mm256_insertf128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b)->qs)), \
                                             _mm_srli_epi16(_mm_loadu_si128((const __m128i *)(b)->qs), 4), 1))

/* The fifth bits of a 5-bit block as 0x10 bytes. */
static inline __m256i __attribute__((target("avx2"))) fifth_bits(const uint8_t *qh_bytes) {
    uint32_t qh;
    __builtin_memcpy(&qh, qh_bytes, 4);
    const __m256i shuffle = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuffle);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit), _mm256_set1_epi8(0x10));
}

#define CODES_Q4(b) NIBBLES(b)
#define CODES_Q5(b) _mm256_or_si256(NIBBLES(b), fifth_bits((b)->qh))
#define SCALE_D(b) half((b)->d)
#define OFFSET_Q4_0(b, d) (-8.0f * (d))
#define OFFSET_Q5_0(b, d) (-16.0f * (d))
#define OFFSET_MIN(b, d) half((b)->m)
#define OFFSET_NONE(b, d) 0.0f
/* Q8_0 is signed × signed: the weight's sign moves onto the activations so
 * the unsigned-by-signed instruction applies (|w|·(x·sgn w) = w·x). */
#define Q8_DOT(DOT) DOT
#define CODES_Q8(b) _mm256_loadu_si256((const __m256i *)(b)->qs)

#define Q8_FN(NAME, TARGET, DOT)                                                                          \
    static float __attribute__((target(TARGET))) NAME(const void *w, const g4_block_q8a *x, int64_t n) { \
        const g4_block_q8_0 *blk = w;                                                                     \
        __m256 acc = _mm256_setzero_ps();                                                                 \
        for (int64_t b = 0; b < n / 32; b++, blk++) {                                                     \
            __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs), wq = CODES_Q8(blk);                \
            __m256i prod = DOT(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));                       \
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(prod), _mm256_set1_ps(half(blk->d) * x[b].d), acc);  \
        }                                                                                                 \
        return hsum_ps(acc);                                                                              \
    }

#define AVX2 "avx2,fma,f16c"
#define VNNI "avx2,fma,f16c,avx512f,avx512vl,avx512vnni"
Q8_FN(q8_0_avx2, AVX2, dot_u8s8_avx2)
Q8_FN(q8_0_vnni, VNNI, dot_u8s8_vnni)
QDOT_FN(q4_0_avx2, AVX2, dot_u8s8_avx2, g4_block_q4_0, CODES_Q4, SCALE_D, OFFSET_Q4_0)
QDOT_FN(q4_0_vnni, VNNI, dot_u8s8_vnni, g4_block_q4_0, CODES_Q4, SCALE_D, OFFSET_Q4_0)
QDOT_FN(q4_1_avx2, AVX2, dot_u8s8_avx2, g4_block_q4_1, CODES_Q4, SCALE_D, OFFSET_MIN)
QDOT_FN(q4_1_vnni, VNNI, dot_u8s8_vnni, g4_block_q4_1, CODES_Q4, SCALE_D, OFFSET_MIN)
QDOT_FN(q5_0_avx2, AVX2, dot_u8s8_avx2, g4_block_q5_0, CODES_Q5, SCALE_D, OFFSET_Q5_0)
QDOT_FN(q5_0_vnni, VNNI, dot_u8s8_vnni, g4_block_q5_0, CODES_Q5, SCALE_D, OFFSET_Q5_0)
QDOT_FN(q5_1_avx2, AVX2, dot_u8s8_avx2, g4_block_q5_1, CODES_Q5, SCALE_D, OFFSET_MIN)
QDOT_FN(q5_1_vnni, VNNI, dot_u8s8_vnni, g4_block_q5_1, CODES_Q5, SCALE_D, OFFSET_MIN)

typedef float (*qdot_fn)(const void *w, const g4_block_q8a *x, int64_t n);

/* VNNI, four rows at a time, for the symmetric types (w = d·(q − k), q
 * unsigned): each activation block is loaded once for the four rows, and
 * the − k·Σx term rides in the accumulator operand of the dot instruction,
 * so a block costs one dot, one conversion and one multiply-add per row. */
#define ROWS4_FN(NAME, BLOCK, CODES, K)                                                                     \
    static void __attribute__((target(VNNI))) NAME(const void *w, size_t row_bytes, const g4_block_q8a *x,   \
                                                     int64_t n, float *out) {                                \
        const BLOCK *r0 = w, *r1 = (const BLOCK *)((const char *)w + row_bytes),                              \
                    *r2 = (const BLOCK *)((const char *)w + 2 * row_bytes),                                   \
                    *r3 = (const BLOCK *)((const char *)w + 3 * row_bytes);                                   \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                          \
        const __m256i offset = _mm256_set1_epi8((char)(K));                                                  \
        for (int64_t b = 0; b < n / 32; b++) {                                                               \
            if ((b & 1) == 0) { /* the next four rows' blocks: the hardware prefetcher alone falls behind */ \
                const char *next = (const char *)&r0[b] + 4 * row_bytes;                                     \
                _mm_prefetch(next, _MM_HINT_T0);                                                             \
                _mm_prefetch(next + row_bytes, _MM_HINT_T0);                                                 \
                _mm_prefetch(next + 2 * row_bytes, _MM_HINT_T0);                                             \
                _mm_prefetch(next + 3 * row_bytes, _MM_HINT_T0);                                             \
            }                                                                                                \
            __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);                                       \
            __m256i corr = _mm256_sub_epi32(_mm256_setzero_si256(),                                          \
                                            _mm256_dpbusd_epi32(_mm256_setzero_si256(), offset, xq));        \
            __m256 dx = _mm256_set1_ps(x[b].d);                                                              \
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, CODES(&r0[b]), xq)),           \
                                 _mm256_mul_ps(_mm256_set1_ps(half(r0[b].d)), dx), a0);                      \
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, CODES(&r1[b]), xq)),           \
                                 _mm256_mul_ps(_mm256_set1_ps(half(r1[b].d)), dx), a1);                      \
            a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, CODES(&r2[b]), xq)),           \
                                 _mm256_mul_ps(_mm256_set1_ps(half(r2[b].d)), dx), a2);                      \
            a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, CODES(&r3[b]), xq)),           \
                                 _mm256_mul_ps(_mm256_set1_ps(half(r3[b].d)), dx), a3);                      \
        }                                                                                                    \
        out[0] = hsum_ps(a0);                                                                                \
        out[1] = hsum_ps(a1);                                                                                \
        out[2] = hsum_ps(a2);                                                                                \
        out[3] = hsum_ps(a3);                                                                                \
    }

/* Q8_0 as unsigned: q + 128 (a flip of the sign bit), offset 128. */
#define CODES_Q8_U(b) _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b)->qs), _mm256_set1_epi8((char)0x80))
ROWS4_FN(q8_0_rows4, g4_block_q8_0, CODES_Q8_U, 128)
ROWS4_FN(q4_0_rows4, g4_block_q4_0, CODES_Q4, 8)
ROWS4_FN(q5_0_rows4, g4_block_q5_0, CODES_Q5, 16)

typedef void (*rows4_fn)(const void *w, size_t row_bytes, const g4_block_q8a *x, int64_t n, float *out);
/* AVX-512 VNNI, four rows and two blocks per iteration: one 512-bit dot per
 * row covers two blocks, and the eight f16 scales of the iteration (4 rows ×
 * 2 blocks) are converted by one instruction, multiplied by the activation
 * scales once and spread to each row's lanes by one permute. XPERM arranges
 * the two activation blocks in the lane order CODES512 produces; IDX (lane
 * 15 first) picks each lane's scale from row 0's pair, and
 * with IDX says which 32-bit lanes hold the second block. An odd last block goes
 * through the 256-bit step. */
#define ROWS4_512_FN(NAME, BLOCK, CODES512, CODES256, K, XPERM, IDX)                                      \
    static void __attribute__((target(VNNI512))) NAME(const void *w, size_t row_bytes, const g4_block_q8a *x,   \
                                                        int64_t n, float *out) {                                \
        const BLOCK *r0 = w, *r1 = (const BLOCK *)((const char *)w + row_bytes),                                 \
                    *r2 = (const BLOCK *)((const char *)w + 2 * row_bytes),                                      \
                    *r3 = (const BLOCK *)((const char *)w + 3 * row_bytes);                                      \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                             \
        const __m512i offset = _mm512_set1_epi8((char)(K));                                                     \
        const __m512i i0 = _mm512_set_epi32(IDX),                                                                         \
                      i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(2)), i2 = _mm512_add_epi32(i0, _mm512_set1_epi32(4)), \
                      i3 = _mm512_add_epi32(i0, _mm512_set1_epi32(6));                                          \
        int64_t nb = n / 32, b = 0;                                                                             \
        for (; b + 2 <= nb; b += 2) {                                                                           \
            const char *next = (const char *)&r0[b] + 4 * row_bytes;                                            \
            _mm_prefetch(next, _MM_HINT_T0);                                                                    \
            _mm_prefetch(next + row_bytes, _MM_HINT_T0);                                                        \
            _mm_prefetch(next + 2 * row_bytes, _MM_HINT_T0);                                                    \
            _mm_prefetch(next + 3 * row_bytes, _MM_HINT_T0);                                                    \
            __m512i xq = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[b].qs)), \
                                            _mm256_loadu_si256((const __m256i *)x[b + 1].qs), 1);               \
            xq = XPERM(xq);                                                                                     \
            __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, xq)); \
            __m128i h = _mm_cvtsi32_si128(PAIR(r0, b));                                   \
            h = _mm_insert_epi32(h, PAIR(r1, b), 1);                                      \
            h = _mm_insert_epi32(h, PAIR(r2, b), 2);                                      \
            h = _mm_insert_epi32(h, PAIR(r3, b), 3);                                      \
            __m256 dx = _mm256_castpd_ps(_mm256_broadcastsd_pd(                                                 \
                _mm_castps_pd(_mm_unpacklo_ps(_mm_set_ss(x[b].d), _mm_set_ss(x[b + 1].d)))));                  \
            __m512 sd = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(h), dx));                          \
            a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr, CODES512(r0, b), xq)),            \
                                 _mm512_permutexvar_ps(i0, sd), a0);                                            \
            a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr, CODES512(r1, b), xq)),            \
                                 _mm512_permutexvar_ps(i1, sd), a1);                                            \
            a2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr, CODES512(r2, b), xq)),            \
                                 _mm512_permutexvar_ps(i2, sd), a2);                                            \
            a3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr, CODES512(r3, b), xq)),            \
                                 _mm512_permutexvar_ps(i3, sd), a3);                                            \
        }                                                                                                       \
        float t[4] = {0, 0, 0, 0};                                                                              \
        if (b < nb) {                                                                                           \
            const __m256i off = _mm256_set1_epi8((char)(K));                                                   \
            __m256i xq = _mm256_loadu_si256((const __m256i *)x[b].qs);                                          \
            __m256i corr = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), off, xq)); \
            t[0] = hsum_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, CODES256(&r0[b]), xq)),   \
                                         _mm256_set1_ps(half(r0[b].d) * x[b].d)));                              \
            t[1] = hsum_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, CODES256(&r1[b]), xq)),   \
                                         _mm256_set1_ps(half(r1[b].d) * x[b].d)));                              \
            t[2] = hsum_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, CODES256(&r2[b]), xq)),   \
                                         _mm256_set1_ps(half(r2[b].d) * x[b].d)));                              \
            t[3] = hsum_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, CODES256(&r3[b]), xq)),   \
                                         _mm256_set1_ps(half(r3[b].d) * x[b].d)));                              \
        }                                                                                                       \
        out[0] = _mm512_reduce_add_ps(a0) + t[0];                                                               \
        out[1] = _mm512_reduce_add_ps(a1) + t[1];                                                               \
        out[2] = _mm512_reduce_add_ps(a2) + t[2];                                                               \
        out[3] = _mm512_reduce_add_ps(a3) + t[3];                                                               \
    }

/* Two blocks' f16 scales in one 32-bit lane. */
#define PAIR(r, b) ((int)((uint32_t)(r)[b].d | (uint32_t)(r)[(b) + 1].d << 16))
#define VNNI512 "avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"
/* Q4_0: codes as [q0 low nibbles, q1 low, q0 high, q1 high] (16 bytes each),
 * so the activations go [x0[0:16], x1[0:16], x0[16:32], x1[16:32]]: lanes
 * 0–3 and 8–11 are block b, 4–7 and 12–15 block b+1. */
static inline __m512i __attribute__((target(VNNI512))) codes_q4_x2(const g4_block_q4_0 *r, int64_t b) {
    __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)r[b].qs)),
                                        _mm_loadu_si128((const __m128i *)r[b + 1].qs), 1);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(15));
}
static inline __m512i __attribute__((target(VNNI512))) xperm_q4(__m512i x) {
    return _mm512_shuffle_i64x2(x, x, _MM_SHUFFLE(3, 1, 2, 0));
}
/* Q8_0: codes q + 128, block b in lanes 0–7, b+1 in 8–15. */
static inline __m512i __attribute__((target(VNNI512))) codes_q8_x2(const g4_block_q8_0 *r, int64_t b) {
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)r[b].qs)),
                                   _mm256_loadu_si256((const __m256i *)r[b + 1].qs), 1);
    return _mm512_xor_si512(z, _mm512_set1_epi8((char)0x80));
}
static inline __m512i __attribute__((target(VNNI512))) xperm_none(__m512i x) { return x; }
/* _mm512_set_epi32 takes lanes 15 .. 0; the scale vector is [r0b0, r0b1, r1b0, r1b1, ...]. */
#define IDX_Q4 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0
#define IDX_Q8 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0
ROWS4_512_FN(q4_0_rows4x2, g4_block_q4_0, codes_q4_x2, CODES_Q4, 8, xperm_q4, IDX_Q4)
ROWS4_512_FN(q8_0_rows4x2, g4_block_q8_0, codes_q8_x2, CODES_Q8_U, 128, xperm_none, IDX_Q8)



static qdot_fn simd_fn(g4_dtype t, int vnni) {
    switch (t) {
    case G4_DTYPE_Q8_0: return vnni ? q8_0_vnni : q8_0_avx2;
    case G4_DTYPE_Q4_0: return vnni ? q4_0_vnni : q4_0_avx2;
    case G4_DTYPE_Q4_1: return vnni ? q4_1_vnni : q4_1_avx2;
    case G4_DTYPE_Q5_0: return vnni ? q5_0_vnni : q5_0_avx2;
    case G4_DTYPE_Q5_1: return vnni ? q5_1_vnni : q5_1_avx2;
    default: return NULL;
    }
}

/* ---- dispatch ---- */

static int variant = -2; /* chosen on first use */

static int cpu_has(int v) {
    __builtin_cpu_init();
    if (v == 0) return 1;
    if (v == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (v == 2)
        return cpu_has(1) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vnni");
    return cpu_has(2) && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}

int g4_qdot_set_variant(int v) {
    if (v < 0 || v > 3 || !cpu_has(v)) return -1;
    variant = v;
    return 0;
}

int g4_qdot_variant(void) {
    if (variant == -2) variant = cpu_has(3) ? 3 : cpu_has(2) ? 2 : cpu_has(1) ? 1 : 0;
    return variant;
}

void g4_qdot_rows(g4_dtype t, const void *w, size_t row_bytes, int n_rows, const g4_block_q8a *x, int64_t n, float *out) {
    int r = 0;
    int v = g4_qdot_variant(), has512 = v == 3;
    if (v >= 2) {
        rows4_fn f = t == G4_DTYPE_Q8_0 ? (has512 ? q8_0_rows4x2 : q8_0_rows4)
                   : t == G4_DTYPE_Q4_0 ? (has512 ? q4_0_rows4x2 : q4_0_rows4)
                   : t == G4_DTYPE_Q5_0 ? q5_0_rows4 : NULL;
        for (; f && r + 4 <= n_rows; r += 4) f((const char *)w + (size_t)r * row_bytes, row_bytes, x, n, out + r);
    }
    for (; r < n_rows; r++) out[r] = g4_qdot(t, (const char *)w + (size_t)r * row_bytes, x, n);
}

float g4_qdot(g4_dtype t, const void *w, const g4_block_q8a *x, int64_t n) {
    int v = g4_qdot_variant();
    qdot_fn f = v ? simd_fn(t, v >= 2) : NULL;
    return f ? f(w, x, n) : qdot_scalar(t, w, x, n);
}
