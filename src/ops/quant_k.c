/* The K-quants (Q4_K, Q5_K, Q6_K): 256-element super-blocks split into
 * sub-blocks that each get their own scale (and min), themselves quantised
 * against one f16 scale per super-block. Layouts: ops/quant.h.
 *
 * Quantisation follows ggml's reference quantisers exactly, search included:
 *  - Q4_K/Q5_K fit x ≈ scale·q - min per 32-element sub-block by weighted
 *    least squares over a sweep of candidate scales (fit_affine), with
 *    weights |x| + rms(sub-block) that favour large values;
 *  - Q6_K fits x ≈ scale·q per 16-element sub-block, trying 18 scales around
 *    the max-magnitude one and keeping the best x²-weighted fit
 *    (fit_symmetric);
 *  - then the sub-block scales are quantised to 6 (Q4_K/Q5_K) or 8 bits
 *    (Q6_K) and every element is re-coded against its decoded scale.
 * Floating-point operations keep ggml's order so the bytes come out equal. */
#include <math.h>

#include "ops/half.h"
#include "ops/quant.h"
#include "ops/quant_internal.h"

/* Below this the group is treated as all zeros (ggml's GROUP_MAX_EPS). */
#define ZERO_GROUP_EPS 1e-15f

/* Fits x[i] ≈ scale·L[i] - min_out with L[i] in [0, nmax] and min_out >= 0
 * (the offset never goes above zero), minimising Σ w[i]·err². Starts from the
 * plain min/max mapping, then tries the nstep + 1 scales
 * (nmax + rmin + rdelta·k) / (max - min), solving for the best scale and
 * offset for each candidate code assignment; keeps the lowest error.
 * Returns the scale. codes_tmp: scratch of n. */
static float fit_affine(int n, int nmax, const float *x, const float *w, uint8_t *L,
                        float *min_out, uint8_t *codes_tmp, float rmin, float rdelta,
                        int nstep) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *min_out = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)g4_clamp_int(g4_round_nearest(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (int step = 0; step <= nstep; step++) {
        iscale = (rmin + rdelta * step + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = g4_clamp_int(g4_round_nearest(iscale * (x[i] - min)), 0, nmax);
            codes_tmp[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        /* Normal equations of the weighted fit x ≈ s·l + m. */
        float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0))
            continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (this_min > 0) { /* the offset must not be positive: refit through zero */
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float error = 0;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * codes_tmp[i] + this_min - x[i];
            error += w[i] * (diff * diff);
        }
        if (error < best_error) {
            for (int i = 0; i < n; i++) L[i] = codes_tmp[i];
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    *min_out = -min;
    return scale;
}

/* Fits x[i] ≈ scale·(L[i] - nmax) with L[i] - nmax in [-nmax, nmax - 1],
 * weighting each element by x[i]² (large weights matter most). The
 * element of largest magnitude goes to -nmax; then 18 nearby scales
 * -(nmax ± 0.1·k)/max are tried and the best least-squares fit is kept. */
static float fit_symmetric(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < ZERO_GROUP_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = g4_clamp_int(g4_round_nearest(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx; /* = sumlx²/suml2, the fit's explained energy */
    for (int k = -9; k <= 9; k++) {
        if (k == 0)
            continue;
        iscale = -(nmax + 0.1f * k) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = g4_clamp_int(g4_round_nearest(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + g4_clamp_int(g4_round_nearest(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. */
static void unpack_scale_min(const uint8_t s[12], int j, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0f) | (s[j - 4] >> 6) << 4);
        *mn = (uint8_t)((s[j + 4] >> 4) | (s[j] >> 6) << 4);
    }
}

static void pack_scale_min(uint8_t s[12], int j, uint8_t sc, uint8_t mn) {
    if (j < 4) {
        s[j] = sc;
        s[j + 4] = mn;
    } else {
        s[j + 4] = (uint8_t)((sc & 0x0f) | (mn & 0x0f) << 4);
        s[j - 4] |= (uint8_t)((sc >> 4) << 6);
        s[j] |= (uint8_t)((mn >> 4) << 6);
    }
}

/* Common to Q4_K and Q5_K: fits the eight sub-blocks of x (256 values),
 * fills d, dmin and scales, and leaves each element's code in L. */
static void quantize_affine_superblock(const float *x, int nmax, float rmin, int nstep,
                                       uint16_t *d_out, uint16_t *dmin_out,
                                       uint8_t scales_out[12], uint8_t L[G4_QK_K]) {
    float scales[8], mins[8], weights[32];
    uint8_t codes_tmp[32];
    float max_scale = 0, max_min = 0; /* the min is subtracted, so scales are >= 0 */
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        float rms = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = rms + fabsf(xs[l]);
        scales[j] = fit_affine(32, nmax, xs, weights, L + 32 * j, &mins[j], codes_tmp, rmin,
                               0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }

    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        /* ggml stores the rounded value in a byte before clamping; keep that
         * wrap-around for bit-exactness on degenerate inputs. */
        uint8_t ls = (uint8_t)g4_round_nearest(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)g4_round_nearest(inv_min * mins[j]);
        pack_scale_min(scales_out, j, ls < 63 ? ls : 63, lm < 63 ? lm : 63);
    }
    *d_out = g4_f32_to_f16_rne(max_scale / 63.f);
    *dmin_out = g4_f32_to_f16_rne(max_min / 63.f);

    /* Re-code against the scales as they decode. A sub-block whose scale
     * rounded to zero keeps the codes of its fit (they decode to -min). */
    float d_all = g4_f16_to_f32(*d_out), dmin_all = g4_f16_to_f32(*dmin_out);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, mn;
        unpack_scale_min(scales_out, j, &sc, &mn);
        float d = d_all * sc;
        if (d == 0)
            continue;
        float dm = dmin_all * mn;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)g4_clamp_int(g4_round_nearest((x[32 * j + i] + dm) / d), 0, nmax);
    }
}

void g4_quantize_row_q4_K(const float *x, g4_block_q4_K *y, int64_t n) {
    uint8_t L[G4_QK_K];
    for (int64_t b = 0; b < n / G4_QK_K; b++, x += G4_QK_K) {
        for (int k = 0; k < 12; k++) y[b].scales[k] = 0;
        quantize_affine_superblock(x, 15, -1.f, 20, &y[b].d, &y[b].dmin, y[b].scales, L);
        uint8_t *q = y[b].qs;
        for (int r = 0; r < G4_QK_K; r += 64, q += 32)
            for (int i = 0; i < 32; i++) q[i] = (uint8_t)(L[r + i] | L[r + i + 32] << 4);
    }
}

void g4_dequantize_row_q4_K(const g4_block_q4_K *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK_K; b++) {
        float d = g4_f16_to_f32(x[b].d), dmin = g4_f16_to_f32(x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, mn;
            unpack_scale_min(x[b].scales, j, &sc, &mn);
            float d1 = d * sc, m1 = dmin * mn;
            unpack_scale_min(x[b].scales, j + 1, &sc, &mn);
            float d2 = d * sc, m2 = dmin * mn;
            for (int i = 0; i < 32; i++) *y++ = d1 * (q[i] & 0x0f) - m1;
            for (int i = 0; i < 32; i++) *y++ = d2 * (q[i] >> 4) - m2;
        }
    }
}

void g4_quantize_row_q5_K(const float *x, g4_block_q5_K *y, int64_t n) {
    uint8_t L[G4_QK_K];
    for (int64_t b = 0; b < n / G4_QK_K; b++, x += G4_QK_K) {
        for (int k = 0; k < 12; k++) y[b].scales[k] = 0;
        quantize_affine_superblock(x, 31, -0.5f, 15, &y[b].d, &y[b].dmin, y[b].scales, L);
        for (int i = 0; i < G4_QK_K / 8; i++) y[b].qh[i] = 0;
        uint8_t *ql = y[b].qs;
        for (int r = 0; r < G4_QK_K / 64; r++, ql += 32) {
            for (int i = 0; i < 32; i++) {
                int lo = L[64 * r + i], hi = L[64 * r + i + 32];
                y[b].qh[i] |= (uint8_t)((lo >> 4) << (2 * r) | (hi >> 4) << (2 * r + 1));
                ql[i] = (uint8_t)((lo & 0x0f) | (hi & 0x0f) << 4);
            }
        }
    }
}

void g4_dequantize_row_q5_K(const g4_block_q5_K *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK_K; b++) {
        float d = g4_f16_to_f32(x[b].d), dmin = g4_f16_to_f32(x[b].dmin);
        const uint8_t *ql = x[b].qs, *qh = x[b].qh;
        for (int r = 0; r < 4; r++, ql += 32) {
            uint8_t sc, mn;
            unpack_scale_min(x[b].scales, 2 * r, &sc, &mn);
            float d1 = d * sc, m1 = dmin * mn;
            unpack_scale_min(x[b].scales, 2 * r + 1, &sc, &mn);
            float d2 = d * sc, m2 = dmin * mn;
            for (int i = 0; i < 32; i++)
                *y++ = d1 * ((ql[i] & 0x0f) + ((qh[i] >> (2 * r)) & 1) * 16) - m1;
            for (int i = 0; i < 32; i++)
                *y++ = d2 * ((ql[i] >> 4) + ((qh[i] >> (2 * r + 1)) & 1) * 16) - m2;
        }
    }
}

void g4_quantize_row_q6_K(const float *x, g4_block_q6_K *y, int64_t n) {
    int8_t L[G4_QK_K];
    float scales[G4_QK_K / 16];
    for (int64_t b = 0; b < n / G4_QK_K; b++, x += G4_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int j = 0; j < G4_QK_K / 16; j++) {
            scales[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs_scale < ZERO_GROUP_EPS) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        /* The largest sub-block scale maps to -128, as the element of largest
         * magnitude does inside a sub-block. */
        float iscale = -128.f / max_scale;
        y[b].d = g4_f32_to_f16_rne(1 / iscale);
        for (int j = 0; j < G4_QK_K / 16; j++) {
            int s = g4_round_nearest(iscale * scales[j]);
            y[b].scales[j] = (int8_t)(s < 127 ? s : 127);
        }
        float d_all = g4_f16_to_f32(y[b].d);
        for (int j = 0; j < G4_QK_K / 16; j++) {
            float d = d_all * y[b].scales[j];
            if (d == 0)
                continue;
            for (int i = 0; i < 16; i++)
                L[16 * j + i] = (int8_t)(g4_clamp_int(g4_round_nearest(x[16 * j + i] / d), -32, 31) + 32);
        }
        uint8_t *ql = y[b].ql, *qh = y[b].qh;
        for (int h = 0; h < G4_QK_K; h += 128, ql += 64, qh += 32) {
            for (int i = 0; i < 32; i++) {
                const int8_t *e = L + h + i; /* elements i, i+32, i+64, i+96 */
                ql[i] = (uint8_t)((e[0] & 0x0f) | (e[64] & 0x0f) << 4);
                ql[i + 32] = (uint8_t)((e[32] & 0x0f) | (e[96] & 0x0f) << 4);
                qh[i] = (uint8_t)((e[0] >> 4) | (e[32] >> 4) << 2 | (e[64] >> 4) << 4 | (e[96] >> 4) << 6);
            }
        }
    }
}

void g4_dequantize_row_q6_K(const g4_block_q6_K *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / G4_QK_K; b++) {
        float d = g4_f16_to_f32(x[b].d);
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *sc = x[b].scales;
        for (int h = 0; h < G4_QK_K; h += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int i = 0; i < 32; i++) {
                int s = i / 16;
                int q0 = ((ql[i] & 0x0f) | ((qh[i] >> 0) & 3) << 4) - 32;
                int q1 = ((ql[i + 32] & 0x0f) | ((qh[i] >> 2) & 3) << 4) - 32;
                int q2 = ((ql[i] >> 4) | ((qh[i] >> 4) & 3) << 4) - 32;
                int q3 = ((ql[i + 32] >> 4) | ((qh[i] >> 6) & 3) << 4) - 32;
                y[i] = d * sc[s] * q0;
                y[i + 32] = d * sc[s + 2] * q1;
                y[i + 64] = d * sc[s + 4] * q2;
                y[i + 96] = d * sc[s + 6] * q3;
            }
        }
    }
}
