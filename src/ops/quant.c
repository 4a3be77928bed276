/* The 32-element block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), the per-type
 * dispatch and the reference dot product. The K-quants are in quant_k.c.
 *
 * The arithmetic mirrors ggml's reference quantisers operation by operation
 * (e.g. scales are inverted once and multiplied, codes are truncated after
 * adding 8.5 rather than rounded), because the goal is identical bytes, not
 * merely equally good ones. */
#include "ops/quant.h"

#include <float.h>
#include <math.h>

#include "ops/half.h"
#include "ops/quant_internal.h"

uint16_t g4_f32_to_f16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN */
        return sign | 0x7e00u;
    if (a >= 0x477ff000u) /* >= 65520, halfway above the largest half: infinity */
        return sign | 0x7c00u;
    if (a >= 0x38800000u) { /* >= 2^-14: a normal half */
        /* Round the 13 dropped mantissa bits to nearest even (a carry into the
         * exponent is the right answer), then rebias the exponent 127 -> 15. */
        uint32_t rounded = a + 0x0fffu + ((a >> 13) & 1u);
        return sign | (uint16_t)((rounded - 0x38000000u) >> 13);
    }
    /* Subnormal half: a multiple of 2^-24. With the float as m·2^(e-150),
     * the count of quanta is m·2^(e-126), rounded to nearest even. */
    int e = (int)(a >> 23);
    uint32_t m = (a & 0x007fffffu) | (e ? 0x00800000u : 0);
    int shift = 126 - (e ? e : 1);
    if (shift > 24) /* below 2^-25: rounds to zero */
        return sign;
    uint32_t q = m >> shift, rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u)))
        q++;
    return sign | (uint16_t)q;
}

static float f16(uint16_t h) { return g4_f16_to_f32(h); }

/* The element of largest magnitude, with its sign (the first one on ties).
 * The symmetric 4/5-bit types map it to the most negative code, so the
 * other side gets the extra level. */
static float signed_absmax(const float *x, int n) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *min, float *max) {
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

/* Truncates v (>= 0 for finite inputs) to a code in [0, top]: ggml converts
 * to an integer first and clamps after, which gives the same for every v it
 * defines; NaN lands on top rather than being undefined. */
static uint8_t truncate_code(float v, int top) {
    if (!(v < (float)top)) return (uint8_t)top;
    return v > 0 ? (uint8_t)(int)v : 0;
}

void g4_quantize_row_q8_0(const float *x, g4_block_q8_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK; b++, x += G4_QK) {
        float amax = 0;
        for (int j = 0; j < G4_QK; j++) {
            float a = fabsf(x[j]);
            amax = amax > a ? amax : a; /* NaN propagates, as in ggml */
        }
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = g4_f32_to_f16_rne(d);
        for (int j = 0; j < G4_QK; j++) {
            float r = roundf(x[j] * id); /* half away from zero */
            y[b].qs[j] = (int8_t)(r >= 127 ? 127 : r <= -128 ? -128 : r == r ? (int)r : 0);
        }
    }
}

void g4_dequantize_row_q8_0(const g4_block_q8_0 *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK; b++) {
        float d = f16(x[b].d);
        for (int j = 0; j < G4_QK; j++) *y++ = x[b].qs[j] * d;
    }
}

void g4_quantize_row_q4_0(const float *x, g4_block_q4_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK; b++, x += G4_QK) {
        float d = signed_absmax(x, G4_QK) / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = g4_f32_to_f16_rne(d);
        for (int j = 0; j < G4_QK / 2; j++) {
            uint8_t lo = truncate_code(x[j] * id + 8.5f, 15);
            uint8_t hi = truncate_code(x[j + G4_QK / 2] * id + 8.5f, 15);
            y[b].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

void g4_dequantize_row_q4_0(const g4_block_q4_0 *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK; b++, y += G4_QK) {
        float d = f16(x[b].d);
        for (int j = 0; j < G4_QK / 2; j++) {
            y[j] = ((x[b].qs[j] & 0x0f) - 8) * d;
            y[j + G4_QK / 2] = ((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

void g4_quantize_row_q4_1(const float *x, g4_block_q4_1 *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK; b++, x += G4_QK) {
        float min, max;
        min_max(x, G4_QK, &min, &max);
        float d = (max - min) / 15;
        float id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = g4_f32_to_f16_rne(d);
        y[b].m = g4_f32_to_f16_rne(min);
        for (int j = 0; j < G4_QK / 2; j++) {
            uint8_t lo = truncate_code((x[j] - min) * id + 0.5f, 15);
            uint8_t hi = truncate_code((x[j + G4_QK / 2] - min) * id + 0.5f, 15);
            y[b].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

void g4_dequantize_row_q4_1(const g4_block_q4_1 *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK; b++, y += G4_QK) {
        float d = f16(x[b].d), m = f16(x[b].m);
        for (int j = 0; j < G4_QK / 2; j++) {
            y[j] = (x[b].qs[j] & 0x0f) * d + m;
            y[j + G4_QK / 2] = (x[b].qs[j] >> 4) * d + m;
        }
    }
}

/* Splits 32 five-bit codes into the nibble bytes and the bit word of the
 * Q5 blocks. */
static void pack_q5(const uint8_t codes[G4_QK], uint8_t qs[G4_QK / 2], uint8_t qh_bytes[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < G4_QK / 2; j++) {
        uint8_t lo = codes[j], hi = codes[j + G4_QK / 2];
        qs[j] = (uint8_t)((lo & 0x0f) | (hi & 0x0f) << 4);
        qh |= (uint32_t)(lo >> 4) << j;
        qh |= (uint32_t)(hi >> 4) << (j + G4_QK / 2);
    }
    for (int k = 0; k < 4; k++) qh_bytes[k] = (uint8_t)(qh >> (8 * k));
}

/* The five-bit code of element j of a Q5 block. */
static int q5_code(const uint8_t qs[G4_QK / 2], const uint8_t qh_bytes[4], int j) {
    uint32_t qh = (uint32_t)qh_bytes[0] | (uint32_t)qh_bytes[1] << 8 |
                  (uint32_t)qh_bytes[2] << 16 | (uint32_t)qh_bytes[3] << 24;
    int low = j < G4_QK / 2 ? qs[j] & 0x0f : qs[j - G4_QK / 2] >> 4;
    return low | (int)((qh >> j) & 1u) << 4;
}

void g4_quantize_row_q5_0(const float *x, g4_block_q5_0 *y, int64_t n) {
    uint8_t codes[G4_QK];
    for (int64_t b = 0; b < n / G4_QK; b++, x += G4_QK) {
        float d = signed_absmax(x, G4_QK) / -16;
        float id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = g4_f32_to_f16_rne(d);
        for (int j = 0; j < G4_QK; j++) codes[j] = truncate_code(x[j] * id + 16.5f, 31);
        pack_q5(codes, y[b].qs, y[b].qh);
    }
}

void g4_dequantize_row_q5_0(const g4_block_q5_0 *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK; b++) {
        float d = f16(x[b].d);
        for (int j = 0; j < G4_QK; j++) *y++ = (q5_code(x[b].qs, x[b].qh, j) - 16) * d;
    }
}

void g4_quantize_row_q5_1(const float *x, g4_block_q5_1 *y, int64_t n) {
    uint8_t codes[G4_QK];
    for (int64_t b = 0; b < n / G4_QK; b++, x += G4_QK) {
        float min, max;
        min_max(x, G4_QK, &min, &max);
        float d = (max - min) / 31;
        float id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = g4_f32_to_f16_rne(d);
        y[b].m = g4_f32_to_f16_rne(min);
        for (int j = 0; j < G4_QK; j++) codes[j] = truncate_code((x[j] - min) * id + 0.5f, 31);
        pack_q5(codes, y[b].qs, y[b].qh);
    }
}

void g4_dequantize_row_q5_1(const g4_block_q5_1 *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK; b++) {
        float d = f16(x[b].d), m = f16(x[b].m);
        for (int j = 0; j < G4_QK; j++) *y++ = q5_code(x[b].qs, x[b].qh, j) * d + m;
    }
}

/* ---- dispatch by type ---- */

typedef void (*quantize_fn)(const float *x, void *y, int64_t n);
typedef void (*dequantize_fn)(const void *x, float *y, int64_t n);

/* Adapters from untyped rows to each kernel's block type (calling the
 * kernels through a cast function pointer would be undefined behaviour). */
#define ADAPTERS(name)                                                              \
    static void quantize_##name(const float *x, void *y, int64_t n) {               \
        g4_quantize_row_##name(x, (g4_block_##name *)y, n);                         \
    }                                                                               \
    static void dequantize_##name(const void *x, float *y, int64_t n) {             \
        g4_dequantize_row_##name((const g4_block_##name *)x, y, n);                 \
    }
ADAPTERS(q8_0)
ADAPTERS(q4_0)
ADAPTERS(q4_1)
ADAPTERS(q5_0)
ADAPTERS(q5_1)
ADAPTERS(q4_K)
ADAPTERS(q5_K)
ADAPTERS(q6_K)

#define KERNELS(name) {quantize_##name, dequantize_##name}

static const struct {
    quantize_fn quantize;
    dequantize_fn dequantize;
} kernels[G4_DTYPE_COUNT] = {
    [G4_DTYPE_Q8_0] = KERNELS(q8_0), [G4_DTYPE_Q4_0] = KERNELS(q4_0),
    [G4_DTYPE_Q4_1] = KERNELS(q4_1), [G4_DTYPE_Q5_0] = KERNELS(q5_0),
    [G4_DTYPE_Q5_1] = KERNELS(q5_1), [G4_DTYPE_Q4_K] = KERNELS(q4_K),
    [G4_DTYPE_Q5_K] = KERNELS(q5_K), [G4_DTYPE_Q6_K] = KERNELS(q6_K),
};

static int row_ok(g4_dtype t, int64_t n) {
    return (unsigned)t < G4_DTYPE_COUNT && kernels[t].quantize && n >= 0 &&
           n % g4_dtype_block_elems(t) == 0;
}

int g4_quantize_row(g4_dtype t, const float *x, void *out, int64_t n) {
    if (!row_ok(t, n)) return -1;
    kernels[t].quantize(x, out, n);
    return 0;
}

int g4_dequantize_row(g4_dtype t, const void *row, float *out, int64_t n) {
    if (!row_ok(t, n)) return -1;
    kernels[t].dequantize(row, out, n);
    return 0;
}

float g4_quant_dot_row(g4_dtype t, const void *row, const float *x, int64_t n) {
    if (!row_ok(t, n)) return 0;
    int64_t be = g4_dtype_block_elems(t);
    size_t bb = g4_dtype_block_bytes(t);
    const unsigned char *block = row;
    float w[G4_QK_K], sum = 0;
    /* One block at a time: the decoded weights stay in L1 and a partial sum
     * per block keeps long rows from losing small terms. */
    for (int64_t i = 0; i < n; i += be, block += bb) {
        kernels[t].dequantize(block, w, be);
        float part = 0;
        for (int64_t j = 0; j < be; j++) part += w[j] * x[i + j];
        sum += part;
    }
    return sum;
}
