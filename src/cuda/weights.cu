/* The model's weights on the device: matrices in their storage type (f16
 * widened to f32; Q8_0/Q4_0 repacked for aligned loads; the other block
 * types as codes with float32 factors, see gpu.h), small vectors as
 * float32. The per-layer embedding table stays in host memory.
 * A synthetic model (tensors with shapes but no data) gets random weights
 * made directly in device memory, so real-shape 31B models need no file. */
#include "cuda/gpu.h"

extern "C" {
#include "model/convert.h"
#include "model/tensor_names.h"
#include "ops/half.h"
#include "ops/qdot_x16.h"
#define _Static_assert static_assert /* quant.h is C11; C++ spells its layout checks so */
#include "ops/quant.h"
#undef _Static_assert
#include "ops/rope.h"
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int track(g4_gpu_model *g, void *p, g4_error *err) {
    if (g->n_allocs == g->cap_allocs) {
        int cap = g->cap_allocs ? 2 * g->cap_allocs : 256;
        void **a = (void **)realloc(g->allocs, sizeof *a * (size_t)cap);
        if (!a) { cudaFree(p); return g4_fail(err, "out of memory"); }
        g->allocs = a;
        g->cap_allocs = cap;
    }
    g->allocs[g->n_allocs++] = p;
    return 0;
}

static int device_alloc(g4_gpu_model *g, void **p, size_t bytes, g4_error *err) {
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e != cudaSuccess)
        return g4_fail(err, "cannot allocate %.2f GiB of GPU memory for weights: %s", bytes / 1073741824.0,
                       cudaGetErrorString(e));
    g->weight_bytes += bytes;
    return track(g, *p, err);
}

extern "C" uint64_t gpu_matrix_bytes(const gpu_matrix *w) {
    uint64_t n = (uint64_t)w->rows * (uint64_t)w->cols;
    switch ((int)w->dtype) {
    case G4_DTYPE_F32: return 4 * n;
    case G4_DTYPE_BF16: return 2 * n;
    case G4_DTYPE_Q8_0: return n + n / 16;
    case G4_DTYPE_Q4_0: return n / 2 + n / 16;
    case GPU_DTYPE_Q4_AFFINE32: return n / 2 + n / 4;
    case GPU_DTYPE_Q8_AFFINE16: return n + (w->min_f32 ? n / 2 : n / 4);
    default: return 0;
    }
}

static size_t code_bytes(g4_dtype t, int64_t elems) {
    return t == G4_DTYPE_F32 ? 4 * (size_t)elems : t == G4_DTYPE_BF16 ? 2 * (size_t)elems
         : t == G4_DTYPE_Q8_0 || t == GPU_DTYPE_Q8_AFFINE16 ? (size_t)elems : (size_t)elems / 2;
}

/* The device form of a file's storage type (gpu.h). */
static g4_dtype device_form(g4_dtype t) {
    switch (t) {
    case G4_DTYPE_F16: return G4_DTYPE_F32;
    case G4_DTYPE_Q4_K: case G4_DTYPE_Q4_1: return GPU_DTYPE_Q4_AFFINE32;
    case G4_DTYPE_Q5_K: case G4_DTYPE_Q6_K: case G4_DTYPE_Q5_0: case G4_DTYPE_Q5_1: return GPU_DTYPE_Q8_AFFINE16;
    default: return t;
    }
}

static int affine_form(g4_dtype form) { return form == GPU_DTYPE_Q4_AFFINE32 || form == GPU_DTYPE_Q8_AFFINE16; }
static int64_t factor_elems(g4_dtype form) { return form == GPU_DTYPE_Q8_AFFINE16 ? 16 : 32; } /* per scale and min */
/* Q6_K and Q5_0 have no min: their 8-bit form goes without one. */
static int has_min(g4_dtype t) { return t != G4_DTYPE_Q6_K && t != G4_DTYPE_Q5_0; }

/* Sub-block j's 6-bit scale and min of a Q4_K/Q5_K block (layout: ops/quant.h). */
static void k4_scale_min(const uint8_t s[12], int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* One GGML block (32 or 256 elements) as integer codes and the factors its
 * dequantiser (ops/quant.c, quant_k.c) applies, y[i] = scale[i/16]·code[i] +
 * min[i/16]: the same float32 products (d·sc, dmin·m) GGML forms, so
 * scale·code + min, rounded after the product as there, gives its values
 * bit for bit (x − m1 is x + (−m1) exactly). */
static void decode_block(g4_dtype t, const uint8_t *blk, int8_t *code, float *scale, float *min) {
    switch (t) {
    case G4_DTYPE_Q4_K:
    case G4_DTYPE_Q5_K: { /* the two share their head: d, dmin, scales[12] */
        const g4_block_q4_K *b = (const g4_block_q4_K *)blk;
        const uint8_t *qs = t == G4_DTYPE_Q4_K ? b->qs : ((const g4_block_q5_K *)blk)->qs;
        const uint8_t *qh = t == G4_DTYPE_Q5_K ? ((const g4_block_q5_K *)blk)->qh : NULL;
        float d = g4_f16_to_f32(b->d), dmin = g4_f16_to_f32(b->dmin);
        for (int j = 0; j < 8; j++) { /* 32-element sub-blocks: low nibbles of a 32-byte run, then high */
            int sc, mn;
            k4_scale_min(b->scales, j, &sc, &mn);
            scale[2 * j] = scale[2 * j + 1] = d * sc;
            min[2 * j] = min[2 * j + 1] = -(dmin * mn);
            const uint8_t *q = qs + 32 * (j / 2);
            for (int i = 0; i < 32; i++)
                code[32 * j + i] = (int8_t)((j % 2 ? q[i] >> 4 : q[i] & 15) + (qh ? (qh[i] >> j & 1) << 4 : 0));
        }
        break;
    }
    case G4_DTYPE_Q6_K: {
        const g4_block_q6_K *b = (const g4_block_q6_K *)blk;
        float d = g4_f16_to_f32(b->d);
        for (int j = 0; j < 16; j++) scale[j] = d * b->scales[j], min[j] = 0;
        for (int h = 0; h < 2; h++) /* halves of 128: element 32k + i from ql[i + 32(k & 1)] and bits 2k of qh[i] */
            for (int k = 0; k < 4; k++)
                for (int i = 0; i < 32; i++) {
                    int lo = b->ql[64 * h + i + 32 * (k & 1)] >> (k < 2 ? 0 : 4) & 15, hi = b->qh[32 * h + i] >> 2 * k & 3;
                    code[128 * h + 32 * k + i] = (int8_t)((lo | hi << 4) - 32);
                }
        break;
    }
    default: { /* Q4_1, Q5_0, Q5_1: one f16 scale (and min) per 32; nibbles as Q4_0, Q5's fifth bits in a word */
        const uint8_t *qs = blk + (t == G4_DTYPE_Q4_1 ? 4 : t == G4_DTYPE_Q5_0 ? 6 : 8);
        uint32_t qh = 0;
        if (t != G4_DTYPE_Q4_1) memcpy(&qh, blk + (t == G4_DTYPE_Q5_0 ? 2 : 4), 4);
        uint16_t dm[2];
        memcpy(dm, blk, sizeof dm);
        scale[0] = scale[1] = g4_f16_to_f32(dm[0]);
        min[0] = min[1] = t == G4_DTYPE_Q5_0 ? 0.0f : g4_f16_to_f32(dm[1]);
        for (int j = 0; j < 32; j++) {
            int q = (j < 16 ? qs[j] & 15 : qs[j - 16] >> 4) | (int)(qh >> j & 1) << 4;
            code[j] = (int8_t)(t == G4_DTYPE_Q5_0 ? q - 16 : q);
        }
        break;
    }
    }
}

/* n elements of GGML blocks of type t as the affine device form: codes, and
 * a scale and min per factor_elems(form) elements (min NULL: not kept). */
static void to_affine(g4_dtype t, g4_dtype form, const uint8_t *src, int64_t n, uint8_t *codes, float *scale, float *min) {
    int64_t be = g4_dtype_block_elems(t), sub = factor_elems(form);
    size_t bb = g4_dtype_block_bytes(t);
    int8_t code[G4_QK_K];
    float s16[G4_QK_K / 16], m16[G4_QK_K / 16];
    for (int64_t b = 0; b < n / be; b++) {
        decode_block(t, src + (size_t)b * bb, code, s16, m16);
        int64_t e0 = b * be;
        for (int64_t i = 0; i < be; i += sub) {
            scale[(e0 + i) / sub] = s16[i / 16];
            if (min) min[(e0 + i) / sub] = m16[i / 16];
        }
        if (form == GPU_DTYPE_Q8_AFFINE16) {
            memcpy(codes + e0, code, (size_t)be);
            continue;
        }
        for (int64_t k = 0; k < be; k += 32) /* byte j: element j low, j + 16 high (Q4_0's order) */
            for (int j = 0; j < 16; j++)
                codes[(e0 + k) / 2 + j] = (uint8_t)((code[k + j] & 15) | (code[k + j + 16] & 15) << 4);
    }
}

/* Copies n_rows rows of src (host, in the file's layout) to rows first_row.. of dst. */
static int put_rows(gpu_matrix *dst, int64_t first_row, const void *src, g4_dtype src_type, int64_t n_rows, g4_error *err) {
    int64_t cols = dst->cols;
    size_t src_row = g4_dtype_row_bytes(src_type, cols);
    int64_t chunk = (64 << 20) / (int64_t)(src_row ? src_row : 1) + 1;
    void *codes = malloc(code_bytes(dst->dtype, chunk * cols));
    uint16_t *scales = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)(chunk * cols / 32 + 1));
    int64_t sub = factor_elems(dst->dtype), n_factors = dst->scale_f32 ? chunk * cols / sub + 1 : 1;
    float *fscale = (float *)malloc(sizeof(float) * (size_t)n_factors), *fmin = (float *)malloc(sizeof(float) * (size_t)n_factors);
    int rc = codes && scales && fscale && fmin ? 0 : g4_fail(err, "out of memory");
    for (int64_t r0 = 0; r0 < n_rows && !rc; r0 += chunk) {
        int64_t rows = n_rows - r0 < chunk ? n_rows - r0 : chunk, elems = rows * cols;
        const uint8_t *in = (const uint8_t *)src + (size_t)r0 * src_row;
        if (src_type == G4_DTYPE_F16) {
            for (int64_t i = 0; i < elems; i++) ((float *)codes)[i] = g4_f16_to_f32(((const uint16_t *)in)[i]);
        } else if (src_type == G4_DTYPE_F32 || src_type == G4_DTYPE_BF16) {
            memcpy(codes, in, code_bytes(src_type, elems));
        } else if (affine_form(dst->dtype)) {
            to_affine(src_type, dst->dtype, in, elems, (uint8_t *)codes, fscale, dst->min_f32 ? fmin : NULL);
        } else { /* GGML blocks: f16 scale, then the codes */
            size_t bb = g4_dtype_block_bytes(src_type);
            for (int64_t b = 0; b < elems / 32; b++) {
                const uint8_t *blk = in + (size_t)b * bb;
                memcpy(&scales[b], blk, 2);
                if (src_type == G4_DTYPE_Q8_0) memcpy((int8_t *)codes + b * 32, blk + 2, 32);
                else memcpy((uint8_t *)codes + b * 16, blk + 2, 16);
            }
        }
        int64_t e0 = (first_row + r0) * cols;
        cudaError_t e = cudaMemcpy((uint8_t *)dst->data + code_bytes(dst->dtype, e0), codes, code_bytes(dst->dtype, elems),
                                   cudaMemcpyHostToDevice);
        if (e == cudaSuccess && dst->scales)
            e = cudaMemcpy(dst->scales + e0 / 32, scales, sizeof(uint16_t) * (size_t)(elems / 32), cudaMemcpyHostToDevice);
        if (e == cudaSuccess && dst->scale_f32)
            e = cudaMemcpy(dst->scale_f32 + e0 / sub, fscale, sizeof(float) * (size_t)(elems / sub), cudaMemcpyHostToDevice);
        if (e == cudaSuccess && dst->min_f32)
            e = cudaMemcpy(dst->min_f32 + e0 / sub, fmin, sizeof(float) * (size_t)(elems / sub), cudaMemcpyHostToDevice);
        if (e != cudaSuccess) rc = g4_fail(err, "CUDA: %s copying weights", cudaGetErrorString(e));
    }
    free(codes);
    free(scales);
    free(fscale);
    free(fmin);
    return rc;
}

/* Allocates a [count][rows][cols] matrix on the device, in the form of the file's type `file_type`. */
static int alloc_matrix(g4_gpu_model *g, gpu_matrix *m, g4_dtype file_type, int64_t count, int64_t rows, int64_t cols,
                        const char *name, g4_error *err) {
    g4_dtype type = device_form(file_type);
    if (type != G4_DTYPE_F32 && type != G4_DTYPE_BF16 && type != G4_DTYPE_Q8_0 && type != G4_DTYPE_Q4_0 && !affine_form(type))
        return g4_fail(err, "tensor %s is %s; the GPU backend runs f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, "
                       "q5_K and q6_K weights", name, g4_dtype_name(file_type));
    int64_t multiple = type == G4_DTYPE_F32 || type == G4_DTYPE_BF16 ? 8 : 32;
    if (cols % multiple)
        return g4_fail(err, "tensor %s has rows of %lld; the GPU kernels need a multiple of %lld", name, (long long)cols,
                       (long long)multiple);
    m->dtype = type;
    m->count = count;
    m->rows = rows;
    m->cols = cols;
    m->scales = NULL;
    m->scale_f32 = m->min_f32 = NULL;
    int64_t n = count * rows * cols;
    if (device_alloc(g, &m->data, code_bytes(type, n), err)) return -1;
    if (type == G4_DTYPE_Q8_0 || type == G4_DTYPE_Q4_0)
        if (device_alloc(g, (void **)&m->scales, sizeof(__half) * (size_t)(n / 32), err)) return -1;
    if (affine_form(type)) {
        size_t factors = sizeof(float) * (size_t)(n / factor_elems(type));
        if (device_alloc(g, (void **)&m->scale_f32, factors, err) ||
            (has_min(file_type) && device_alloc(g, (void **)&m->min_f32, factors, err)))
            return -1;
    }
    return 0;
}

/* The tensor's bytes in GGML's block layout: model/repack.c regroups
 * Q4_0/Q8_0/Q4_K/Q6_K rows for the CPU's kernels, so those are unpacked into *tmp
 * (free it; NULL when nothing was needed). */
static const void *plain_layout(const g4_tensor *t, void **tmp, g4_error *err) {
    *tmp = NULL;
    if (!t->repacked) return t->data;
    if (!(*tmp = malloc(t->nbytes))) {
        g4_fail(err, "out of memory unpacking %s for the GPU", t->name);
        return NULL;
    }
    int64_t count = t->ndim == 3 ? t->shape[0] : 1, rows = t->shape[t->ndim - 2], cols = t->shape[t->ndim - 1];
    size_t matrix_bytes = (size_t)rows * g4_dtype_row_bytes(t->dtype, cols);
    for (int64_t i = 0; i < count; i++) /* each matrix of a stacked tensor is repacked on its own */
        g4_x16_unrepack(t->dtype, (const char *)t->data + i * matrix_bytes, (char *)*tmp + i * matrix_bytes, rows, cols);
    return *tmp;
}

/* A host tensor to the device; a tensor without data (synthetic) gets
 * uniform random values of unit output variance. Absent tensors stay absent. */
static int upload_matrix(g4_gpu_model *g, gpu_matrix *m, const g4_tensor *t, g4_error *err) {
    memset(m, 0, sizeof *m);
    if (t->ndim < 2) return 0;
    int64_t count = t->ndim == 3 ? t->shape[0] : 1, rows = t->shape[t->ndim - 2], cols = t->shape[t->ndim - 1];
    if (alloc_matrix(g, m, t->dtype, count, rows, cols, t->name ? t->name : "(synthetic)", err)) return -1;
    if (t->data) {
        void *tmp;
        const void *plain = plain_layout(t, &tmp, err);
        int rc = plain ? put_rows(m, 0, plain, t->dtype, count * rows, err) : -1;
        free(tmp);
        return rc;
    }
    static uint64_t seed = 1;
    gpu_fill_random(0, m, seed++ * 0x9e3779b97f4a7c15ull, sqrtf(3.0f / (float)cols));
    CUDA_TRY(cudaGetLastError());
    return 0;
}

/* GGUF files may split the experts' gate and up: fused here, gate rows first. */
static int upload_split_experts(g4_gpu_model *g, gpu_matrix *m, const g4_tensor *gate, const g4_tensor *up, g4_error *err) {
    int64_t E = gate->shape[0], Im = gate->shape[1], D = gate->shape[2];
    if (gate->dtype != up->dtype) return g4_fail(err, "experts' gate and up tensors differ in type");
    if (alloc_matrix(g, m, gate->dtype, E, 2 * Im, D, gate->name, err)) return -1;
    size_t mat = g4_dtype_row_bytes(gate->dtype, D) * (size_t)Im;
    void *tmp_gate, *tmp_up;
    const uint8_t *g_data = (const uint8_t *)plain_layout(gate, &tmp_gate, err);
    const uint8_t *u_data = g_data ? (const uint8_t *)plain_layout(up, &tmp_up, err) : NULL;
    int rc = u_data ? 0 : -1;
    for (int64_t e = 0; e < E && !rc; e++)
        rc = put_rows(m, e * 2 * Im, g_data + e * mat, gate->dtype, Im, err) ||
             put_rows(m, e * 2 * Im + Im, u_data + e * mat, up->dtype, Im, err);
    free(tmp_gate);
    if (g_data) free(tmp_up);
    return rc ? -1 : 0;
}

static int upload_vector(g4_gpu_model *g, float **out, const float *v, int64_t n, g4_error *err) {
    *out = NULL;
    if (!v) return 0;
    if (device_alloc(g, (void **)out, sizeof(float) * (size_t)n, err)) return -1;
    CUDA_TRY(cudaMemcpy(*out, v, sizeof(float) * (size_t)n, cudaMemcpyHostToDevice));
    return 0;
}

static int upload_layer(g4_gpu_model *g, const g4_config *c, int l, const g4_layer_weights *hw, gpu_layer *gl,
                        g4_error *err) {
    const g4_layer_config *lc = &c->layer[l];
    int64_t D = c->hidden_size, hd = lc->head_dim, E = c->n_experts;
    gl->layer_scalar = hw->layer_scalar;
    if (upload_vector(g, &gl->input_norm, hw->input_norm, D, err) || upload_vector(g, &gl->q_norm, hw->q_norm, hd, err) ||
        upload_vector(g, &gl->k_norm, hw->k_norm, hd, err) ||
        upload_vector(g, &gl->post_attn_norm, hw->post_attn_norm, D, err) ||
        upload_vector(g, &gl->rope_inv_freq, hw->rope_inv_freq, lc->rope_pairs > 0 ? lc->rope_pairs : 1, err) ||
        upload_matrix(g, &gl->q_proj, &hw->q_proj, err) || upload_matrix(g, &gl->k_proj, &hw->k_proj, err) ||
        upload_matrix(g, &gl->v_proj, &hw->v_proj, err) || upload_matrix(g, &gl->o_proj, &hw->o_proj, err) ||
        upload_vector(g, &gl->pre_ffn_norm, hw->pre_ffn_norm, D, err) ||
        upload_vector(g, &gl->post_ffn_norm, hw->post_ffn_norm, D, err) ||
        upload_matrix(g, &gl->gate_proj, &hw->gate_proj, err) || upload_matrix(g, &gl->up_proj, &hw->up_proj, err) ||
        upload_matrix(g, &gl->down_proj, &hw->down_proj, err) ||
        upload_matrix(g, &gl->ple_gate, &hw->ple_gate, err) || upload_matrix(g, &gl->ple_proj, &hw->ple_proj, err) ||
        upload_vector(g, &gl->ple_post_norm, hw->ple_post_norm, D, err))
        return -1;
    if (!E) return 0;
    if (upload_vector(g, &gl->post_ffn_norm_1, hw->post_ffn_norm_1, D, err) ||
        upload_vector(g, &gl->pre_ffn_norm_2, hw->pre_ffn_norm_2, D, err) ||
        upload_vector(g, &gl->post_ffn_norm_2, hw->post_ffn_norm_2, D, err) ||
        upload_vector(g, &gl->router_scale, hw->router_scale, D, err) ||
        upload_vector(g, &gl->router_expert_scale, hw->router_expert_scale, E, err) ||
        upload_matrix(g, &gl->router_proj, &hw->router_proj, err) ||
        upload_matrix(g, &gl->experts_down, &hw->experts_down, err))
        return -1;
    if (hw->experts_gate_up.ndim) return upload_matrix(g, &gl->experts_gate_up, &hw->experts_gate_up, err);
    return upload_split_experts(g, &gl->experts_gate_up, &hw->experts_gate, &hw->experts_up, err);
}

/* Weights one token multiplies in layers 0 .. n_layers-1: every layer
 * matrix, K of E experts, the per-layer projection; not the LM head
 * (prefill computes it for one row). */
static uint64_t matmul_params(const g4_gpu_model *g, int n_layers) {
    const g4_config *c = g->cfg;
    uint64_t p = g->ple_model_proj.data ? (uint64_t)(g->ple_model_proj.rows * g->ple_model_proj.cols) : 0;
    for (int l = 0; l < n_layers; l++) {
        const gpu_layer *gl = &g->layer[l];
        const gpu_matrix *ms[] = {&gl->q_proj, &gl->k_proj, &gl->v_proj, &gl->o_proj, &gl->gate_proj, &gl->up_proj,
                                  &gl->down_proj, &gl->router_proj, &gl->ple_gate, &gl->ple_proj};
        for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
            if (ms[i]->data) p += (uint64_t)(ms[i]->rows * ms[i]->cols);
        if (gl->experts_gate_up.data)
            p += (uint64_t)c->top_k_experts * (uint64_t)(gl->experts_gate_up.rows * gl->experts_gate_up.cols +
                                                         gl->experts_down.rows * gl->experts_down.cols);
    }
    return p;
}

extern "C" uint64_t g4_gpu_matmul_params(const g4_gpu_model *g, uint64_t *prompt_row) {
    *prompt_row = g->prompt_matmul_params;
    return g->matmul_params;
}

/* Weight bytes one token's decode step reads: every matrix once, the K
 * chosen experts of E, one embedding row and the whole (tied) LM head. */
static uint64_t decode_bytes(const g4_gpu_model *g) {
    const g4_config *c = g->cfg;
    uint64_t b = gpu_matrix_bytes(&g->embed) + (g->ple_model_proj.data ? gpu_matrix_bytes(&g->ple_model_proj) : 0);
    for (int l = 0; l < c->n_layers; l++) {
        const gpu_layer *gl = &g->layer[l];
        const gpu_matrix *ms[] = {&gl->q_proj, &gl->k_proj, &gl->v_proj, &gl->o_proj, &gl->gate_proj, &gl->up_proj,
                                  &gl->down_proj, &gl->router_proj, &gl->ple_gate, &gl->ple_proj};
        for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
            if (ms[i]->data) b += gpu_matrix_bytes(ms[i]);
        if (gl->experts_gate_up.data)
            b += (uint64_t)c->top_k_experts * (gpu_matrix_bytes(&gl->experts_gate_up) + gpu_matrix_bytes(&gl->experts_down));
    }
    return b;
}

extern "C" int g4_gpu_model_new(const g4_model *m, g4_gpu_model **out, g4_error *err) {
    *out = NULL;
    const g4_config *c = &m->cfg;
    const g4_weights *w = &m->w;
    for (int l = 0; l < c->n_layers; l++) {
        int hd = c->layer[l].head_dim;
        if (hd % 32 || hd / 32 > 16 || (hd / 32 & (hd / 32 - 1)))
            return g4_fail(err, "layer %d has head dimension %d; the GPU attention takes 32, 64, 128, 256 or 512", l, hd);
    }
    if (c->n_experts > 1024 || c->top_k_experts > 32)
        return g4_fail(err, "the GPU router takes at most 1024 experts and 32 chosen ones (%d, %d)", c->n_experts,
                       c->top_k_experts);
    if (g4_gpu_device_count() < 1) return g4_fail(err, "no CUDA device found");
    g4_gpu_model *g = (g4_gpu_model *)calloc(1, sizeof *g);
    if (!g) return g4_fail(err, "out of memory");
    g->cfg = c;
    g->layer = (gpu_layer *)calloc((size_t)c->n_layers, sizeof *g->layer);
    int rc = g->layer ? 0 : g4_fail(err, "out of memory");
    if (!rc && cublasCreate(&g->cublas) != CUBLAS_STATUS_SUCCESS) rc = g4_fail(err, "cannot initialise cuBLAS");
    g->embed_scale = w->embed_scale;
    g->ple_embed = c->ple_dim ? &w->ple_embed : NULL;
    g->ple_embed_scale = w->ple_embed_scale;
    if (!rc)
        rc = upload_matrix(g, &g->embed, &w->embed, err) || upload_matrix(g, &g->ple_model_proj, &w->ple_model_proj, err) ||
             upload_vector(g, &g->ple_proj_norm, w->ple_proj_norm, c->ple_dim, err) ||
             upload_vector(g, &g->final_norm, w->final_norm, c->hidden_size, err);
    for (int l = 0; !rc && l < c->n_layers; l++) rc = upload_layer(g, c, l, &w->layer[l], &g->layer[l], err);
    if (!rc && cudaDeviceSynchronize() != cudaSuccess) rc = g4_fail(err, "CUDA: %s", cudaGetErrorString(cudaGetLastError()));
    if (rc) { g4_gpu_model_free(g); return -1; }
    g->decode_bytes = decode_bytes(g);
    g->matmul_params = matmul_params(g, g->cfg->n_layers);
    g->prompt_matmul_params = matmul_params(g, g4_config_last_kv_layer(g->cfg) + 1);
    *out = g;
    return 0;
}

extern "C" void g4_gpu_model_free(g4_gpu_model *g) {
    if (!g) return;
    for (int i = 0; i < g->n_allocs; i++) cudaFree(g->allocs[i]);
    if (g->cublas) cublasDestroy(g->cublas);
    free(g->allocs);
    free(g->layer);
    free(g);
}

extern "C" uint64_t g4_gpu_decode_bytes(const g4_gpu_model *g) { return g->decode_bytes; }
extern "C" uint64_t g4_gpu_weight_bytes(const g4_gpu_model *g) { return g->weight_bytes; }

/* ---- synthetic models: shapes from the config, storage types from the file-type recipe ---- */

typedef struct synth {
    const g4_config *cfg;
    g4_ftype ft;
    float *next; /* bump allocator over w->vectors */
} synth;

static void synth_tensor(synth *s, g4_tensor *t, const char *hf, int layer, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    char gguf[96];
    int64_t dims[3] = {d0, d1, d2};
    memset(t, 0, sizeof *t);
    if (!g4_gguf_name(hf, layer, gguf, sizeof gguf)) snprintf(gguf, sizeof gguf, "%s", hf);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) t->shape[i] = dims[i], t->numel *= dims[i];
    t->dtype = g4_ftype_tensor_type(s->ft, gguf, ndim, t->shape, s->cfg->n_layers);
}

static float *synth_ones(synth *s, int64_t n) {
    float *v = s->next;
    for (int64_t i = 0; i < n; i++) v[i] = 1.0f;
    s->next += n;
    return v;
}

extern "C" int g4_gpu_synth_weights(const g4_config *c, const char *ftype, g4_weights *w, g4_error *err) {
    memset(w, 0, sizeof *w);
    synth s = {c, G4_FTYPE_BF16, NULL};
    if (g4_ftype_parse(ftype, &s.ft)) return g4_fail(err, "unknown weight type \"%s\"", ftype);
    int64_t D = c->hidden_size, V = c->vocab_size, L = c->n_layers, P = c->ple_dim, E = c->n_experts, Im = c->moe_dim;
    int64_t n_vec = 2 * D + P + 1;
    for (int l = 0; l < L; l++) n_vec += 10 * D + 3 * c->layer[l].head_dim + E + 1;
    w->vectors = (float *)malloc(sizeof(float) * (size_t)n_vec);
    w->layer = (g4_layer_weights *)calloc((size_t)L, sizeof *w->layer);
    if (!w->vectors || !w->layer) { free(w->vectors); free(w->layer); return g4_fail(err, "out of memory"); }
    s.next = w->vectors;
    synth_tensor(&s, &w->embed, "embed_tokens.weight", -1, 2, V, D, 0);
    w->final_norm = synth_ones(&s, D);
    float root = sqrtf((float)D);
    w->embed_scale = w->embed.dtype == G4_DTYPE_BF16 ? g4_round_to_bf16(root) : root;
    if (P) {
        /* the per-layer table lives in host memory: f32 zeros would take 9-11 GiB, so
         * the synthetic model has none and the token part is zero (same work on the device) */
        synth_tensor(&s, &w->ple_model_proj, "per_layer_model_projection.weight", -1, 2, L * P, D, 0);
        w->ple_proj_norm = synth_ones(&s, P);
        w->ple_embed_scale = 16.0f;
    }
    for (int l = 0; l < L; l++) {
        const g4_layer_config *lc = &c->layer[l];
        g4_layer_weights *lw = &w->layer[l];
        int64_t hd = lc->head_dim, q_dim = c->n_heads * hd, kv_dim = lc->n_kv_heads * hd, I = lc->ffn_dim;
        lw->input_norm = synth_ones(&s, D);
        lw->q_norm = synth_ones(&s, hd);
        lw->post_attn_norm = synth_ones(&s, D);
        synth_tensor(&s, &lw->q_proj, "self_attn.q_proj.weight", l, 2, q_dim, D, 0);
        synth_tensor(&s, &lw->o_proj, "self_attn.o_proj.weight", l, 2, D, q_dim, 0);
        if (lc->kv_source == l) {
            synth_tensor(&s, &lw->k_proj, "self_attn.k_proj.weight", l, 2, kv_dim, D, 0);
            lw->k_norm = synth_ones(&s, hd);
            if (!lc->k_eq_v) synth_tensor(&s, &lw->v_proj, "self_attn.v_proj.weight", l, 2, kv_dim, D, 0);
        }
        lw->rope_inv_freq = s.next;
        s.next += hd; /* rope_pairs <= hd/2 */
        g4_rope_inv_freq(lw->rope_inv_freq, lc->rope_pairs, lc->rope_denominator, lc->rope_theta);
        lw->pre_ffn_norm = synth_ones(&s, D);
        lw->post_ffn_norm = synth_ones(&s, D);
        synth_tensor(&s, &lw->gate_proj, "mlp.gate_proj.weight", l, 2, I, D, 0);
        synth_tensor(&s, &lw->up_proj, "mlp.up_proj.weight", l, 2, I, D, 0);
        synth_tensor(&s, &lw->down_proj, "mlp.down_proj.weight", l, 2, D, I, 0);
        if (E) {
            lw->post_ffn_norm_1 = synth_ones(&s, D);
            lw->pre_ffn_norm_2 = synth_ones(&s, D);
            lw->post_ffn_norm_2 = synth_ones(&s, D);
            lw->router_scale = synth_ones(&s, D);
            lw->router_expert_scale = synth_ones(&s, E);
            synth_tensor(&s, &lw->router_proj, "router.proj.weight", l, 2, E, D, 0);
            synth_tensor(&s, &lw->experts_gate_up, "experts.gate_up_proj", l, 3, E, 2 * Im, D);
            synth_tensor(&s, &lw->experts_down, "experts.down_proj", l, 3, E, D, Im);
        }
        if (P) {
            synth_tensor(&s, &lw->ple_gate, "per_layer_input_gate.weight", l, 2, P, D, 0);
            synth_tensor(&s, &lw->ple_proj, "per_layer_projection.weight", l, 2, D, P, 0);
            lw->ple_post_norm = synth_ones(&s, D);
        }
        lw->layer_scalar = 1.0f;
    }
    w->lm_head = w->embed;
    return 0;
}
