#include "model/convert.h"

#include "model/gguf_hparams.h"
#include "model/tensor_names.h"
#include "ops/half.h"
#include "ops/matmul.h"
#include "ops/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

static const struct {
    const char *name;
    g4_dtype type; /* the matrices' type (Q4_K_M: the default of its mix) */
} ftypes[G4_FTYPE_COUNT] = {
    {"f32", G4_DTYPE_F32}, {"f16", G4_DTYPE_F16}, {"bf16", G4_DTYPE_BF16}, {"q8_0", G4_DTYPE_Q8_0},
    {"q4_0", G4_DTYPE_Q4_0}, {"q4_1", G4_DTYPE_Q4_1}, {"q5_0", G4_DTYPE_Q5_0}, {"q5_1", G4_DTYPE_Q5_1},
    {"q4_k", G4_DTYPE_Q4_K}, {"q5_k", G4_DTYPE_Q5_K}, {"q6_k", G4_DTYPE_Q6_K}, {"q4_k_m", G4_DTYPE_Q4_K},
};

int g4_ftype_parse(const char *name, g4_ftype *out) {
    for (int i = 0; i < G4_FTYPE_COUNT; i++)
        if (strcasecmp(name, ftypes[i].name) == 0) { *out = (g4_ftype)i; return 0; }
    return -1;
}

const char *g4_ftype_name(g4_ftype t) { return t < G4_FTYPE_COUNT ? ftypes[t].name : "unknown"; }

/* llama.cpp's rule for the layers that get more bits in its _M mixes: the
 * first and last eighth, and every third layer between. */
static int more_bits(int layer, int n_layers) {
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

/* K-quants need rows of 256; like llama.cpp, fall back to a 32-block type. */
static g4_dtype fit_rows(g4_dtype t, int64_t row) {
    if (row % g4_dtype_block_elems(t) == 0) return t;
    g4_dtype fallback = t == G4_DTYPE_Q4_K ? G4_DTYPE_Q5_0 : t == G4_DTYPE_Q5_K ? G4_DTYPE_Q5_1 : G4_DTYPE_Q8_0;
    if (row % g4_dtype_block_elems(fallback) == 0) return fallback;
    return G4_DTYPE_F16;
}

g4_dtype g4_ftype_tensor_type(g4_ftype ft, const char *name, int ndim, const int64_t *shape, int n_layers) {
    if (ndim < 2) return G4_DTYPE_F32; /* norms, scales, layer scalars */
    g4_dtype t = ftypes[ft].type;
    if (ft == G4_FTYPE_Q4_K_M) {
        int layer = -1;
        if (sscanf(name, "blk.%d.", &layer) != 1) layer = -1;
        if (strcmp(name, "token_embd.weight") == 0) t = G4_DTYPE_Q6_K; /* also the LM head */
        else if (layer >= 0 && more_bits(layer, n_layers) &&
                 (strstr(name, ".attn_v.") || strstr(name, ".ffn_down.") || strstr(name, ".ffn_down_exps.")))
            t = G4_DTYPE_Q6_K;
    }
    return fit_rows(t, shape[ndim - 1]);
}

/* The tensors to write, in order: GGUF name, shape, and (when converting)
 * the source view the rows come from. */
typedef struct item {
    char name[96];
    int ndim;
    int64_t shape[4];
    const g4_tensor *src;
} item;

static int collect(const g4_model *m, item **out, int *n_out, g4_error *err) {
    int64_t n_src = m->gguf ? gguf_n_tensors(m->gguf) : (int64_t)ckpt_count(m->ckpt);
    item *items = calloc((size_t)n_src + 1, sizeof *items);
    if (!items) return g4_fail(err, "out of memory");
    int n = 0, first_shared = m->cfg.n_layers - m->cfg.n_kv_shared_layers;
    for (int64_t i = 0; i < n_src; i++) {
        const g4_tensor *t = m->gguf ? gguf_tensor(m->gguf, i) : ckpt_tensor(m->ckpt, (size_t)i);
        if (m->gguf) {
            if (strcmp(t->name, "rope_freqs.weight") == 0) continue; /* written anew from the config */
            snprintf(items[n].name, sizeof items[n].name, "%s", t->name);
        } else {
            int layer;
            const char *suffix = g4_hf_text_name(t->name, &layer);
            if (!suffix) continue; /* vision/audio towers, lm_head copies */
            /* transformers ignores K/V weights stored for KV-shared layers */
            if (layer >= first_shared && (strstr(suffix, "k_proj") || strstr(suffix, "v_proj") || strstr(suffix, "k_norm")))
                continue;
            g4_gguf_name(suffix, layer, items[n].name, sizeof items[n].name);
        }
        items[n].ndim = t->ndim;
        for (int d = 0; d < t->ndim && d < 4; d++) items[n].shape[d] = t->shape[d];
        items[n++].src = t;
    }
    *out = items;
    *n_out = n;
    return 0;
}

/* Drops the source tensor's pages from this process once written, so
 * converting a model larger than memory does not hold it all resident. */
static void release_pages(const void *p, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t begin = ((uintptr_t)p + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
    if (end > begin) madvise((void *)begin, end - begin, MADV_DONTNEED);
}

static void release_source(const item *t) {
    if (t->src && t->src->data) release_pages(t->src->data, t->src->nbytes);
}

static int encode_row(g4_dtype t, const float *x, void *out, int64_t n) {
    if (t == G4_DTYPE_F32) { memcpy(out, x, sizeof(float) * (size_t)n); return 0; }
    if (t == G4_DTYPE_F16) { for (int64_t i = 0; i < n; i++) ((uint16_t *)out)[i] = g4_f32_to_f16_rne(x[i]); return 0; }
    if (t == G4_DTYPE_BF16) { for (int64_t i = 0; i < n; i++) ((uint16_t *)out)[i] = g4_f32_to_bf16(x[i]); return 0; }
    return g4_quantize_row(t, x, out, n);
}

/* Fills row `row` (float32) of tensor `i`. */
typedef void (*row_fn)(void *ctx, const item *t, int i, int64_t row, float *out);

/* Rows → float32 → target type, one row at a time: a model larger than
 * memory is written in constant memory. */
static int write_tensor(gguf_writer *w, const item *t, int i, g4_dtype type, row_fn rows, void *ctx, float *row,
                        void *buf, g4_error *err) {
    int64_t cols = t->ndim ? t->shape[t->ndim - 1] : 1, n_rows = 1;
    for (int d = 0; d + 1 < t->ndim; d++) n_rows *= t->shape[d];
    size_t out_bytes = g4_dtype_row_bytes(type, cols);
    size_t src_row = t->src ? t->src->nbytes / (size_t)(n_rows ? n_rows : 1) : 0, released = 0;
    for (int64_t r = 0; r < n_rows; r++) {
        rows(ctx, t, i, r, row);
        if (encode_row(type, row, buf, cols)) return g4_fail(err, "cannot encode %s rows of %lld as %s", t->name, (long long)cols, g4_dtype_name(type));
        if (gguf_writer_write(w, buf, out_bytes, err)) return -1;
        size_t done = (size_t)(r + 1) * src_row;
        if (src_row && done - released >= (64u << 20)) { /* the PLE table alone is 4.7 GB on E2B */
            release_pages((const char *)t->src->data + released, done - released);
            released = done;
        }
    }
    return 0;
}

/* Copies the metadata keys starting with prefix from a GGUF source (the
 * tokenizer of a file being re-quantised). */
static int copy_keys(const gguf_file *src, const char *prefix, gguf_writer *w, g4_error *err) {
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        const char *key = gguf_kv_key(src, i);
        if (strncmp(key, prefix, strlen(prefix)) != 0) continue;
        const gguf_value *v = gguf_kv_value(src, i);
        int rc;
        switch (v->type) {
        case GGUF_TYPE_STRING: rc = gguf_writer_add_str(w, key, v->str, err); break;
        case GGUF_TYPE_ARRAY:
            rc = v->arr.type == GGUF_TYPE_STRING ? gguf_writer_add_arr_str(w, key, v->arr.strs, v->arr.n, err)
                                                 : gguf_writer_add_arr(w, key, v->arr.type, v->arr.data, v->arr.n, err);
            break;
        case GGUF_TYPE_UINT32: rc = gguf_writer_add_u32(w, key, v->v.u32, err); break;
        case GGUF_TYPE_INT32: rc = gguf_writer_add_i32(w, key, v->v.i32, err); break;
        case GGUF_TYPE_FLOAT32: rc = gguf_writer_add_f32(w, key, v->v.f32, err); break;
        case GGUF_TYPE_BOOL: rc = gguf_writer_add_bool(w, key, v->v.b, err); break;
        case GGUF_TYPE_UINT64: rc = gguf_writer_add_u64(w, key, v->v.u64, err); break;
        case GGUF_TYPE_INT64: rc = gguf_writer_add_i64(w, key, v->v.i64, err); break;
        case GGUF_TYPE_FLOAT64: rc = gguf_writer_add_f64(w, key, v->v.f64, err); break;
        case GGUF_TYPE_UINT8: rc = gguf_writer_add_u8(w, key, v->v.u8, err); break;
        case GGUF_TYPE_INT8: rc = gguf_writer_add_i8(w, key, v->v.i8, err); break;
        case GGUF_TYPE_UINT16: rc = gguf_writer_add_u16(w, key, v->v.u16, err); break;
        case GGUF_TYPE_INT16: rc = gguf_writer_add_i16(w, key, v->v.i16, err); break;
        default: rc = 0; break;
        }
        if (rc) return -1;
    }
    return 0;
}

typedef struct write_job {
    const g4_config *cfg;
    const char *name, *out_path;
    g4_ftype ft;
    const item *items;
    int n;
    row_fn rows;
    void *rows_ctx;
    const gguf_file *copy_from; /* tokenizer keys to carry over, or NULL */
    g4_metadata_fn extra;
    void *extra_ctx;
    g4_progress_fn progress;
    void *progress_ctx;
} write_job;

static uint64_t n_elems(const item *t) {
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

static int write_gguf(const write_job *j, g4_error *err) {
    gguf_writer *w = NULL;
    float *row = NULL, rope[4096];
    void *buf = NULL;
    int64_t max_row = 1;
    uint64_t total = 0, done = 0;
    for (int i = 0; i < j->n; i++) {
        const item *t = &j->items[i];
        if (t->ndim && t->shape[t->ndim - 1] > max_row) max_row = t->shape[t->ndim - 1];
        total += n_elems(t);
    }
    int n_rope = g4_rope_freqs(j->cfg, rope);
    row = malloc(sizeof(float) * (size_t)max_row);
    buf = malloc(sizeof(float) * (size_t)max_row + 256);
    int rc = -1;
    if (!row || !buf) { g4_fail(err, "out of memory"); goto done; }
    if (gguf_writer_open(j->out_path, &w, err) || g4_config_to_gguf(j->cfg, j->name, w, err) ||
        gguf_writer_add_u32(w, "general.file_type", (uint32_t)j->ft, err) ||
        gguf_writer_add_str(w, "general.quantization_recipe", g4_ftype_name(j->ft), err) ||
        gguf_writer_add_u32(w, "gemma4.vocab_size", (uint32_t)j->cfg->vocab_size, err) ||
        (j->copy_from && (copy_keys(j->copy_from, "tokenizer.", w, err) || copy_keys(j->copy_from, "general.sampling.", w, err))) ||
        (j->extra && j->extra(j->extra_ctx, w, err)))
        goto done;
    /* No tokenizer at all (the test fixtures have none): llama.cpp's marker
     * for a vocabulary of vocab_size nameless tokens. */
    if (!j->extra && !(j->copy_from && gguf_find_key(j->copy_from, "tokenizer.ggml.model") >= 0) &&
        gguf_writer_add_str(w, "tokenizer.ggml.model", "none", err))
        goto done;
    if (n_rope) {
        int64_t shape[1] = {n_rope};
        if (gguf_writer_add_tensor(w, "rope_freqs.weight", G4_DTYPE_F32, 1, shape, err)) goto done;
    }
    for (int i = 0; i < j->n; i++) {
        const item *t = &j->items[i];
        g4_dtype type = g4_ftype_tensor_type(j->ft, t->name, t->ndim, t->shape, j->cfg->n_layers);
        if (gguf_writer_add_tensor(w, t->name, type, t->ndim, t->shape, err)) goto done;
    }
    if (n_rope && gguf_writer_write(w, rope, sizeof(float) * (size_t)n_rope, err)) goto done;
    for (int i = 0; i < j->n; i++) {
        const item *t = &j->items[i];
        g4_dtype type = g4_ftype_tensor_type(j->ft, t->name, t->ndim, t->shape, j->cfg->n_layers);
        if (write_tensor(w, t, i, type, j->rows, j->rows_ctx, row, buf, err)) goto done;
        release_source(t);
        done += n_elems(t);
        if (j->progress) j->progress(j->progress_ctx, done, total);
    }
    rc = gguf_writer_finish(w, err);
    w = NULL;
done:
    if (w) gguf_writer_abort(w);
    free(row);
    free(buf);
    return rc;
}

static void source_row(void *ctx, const item *t, int i, int64_t row, float *out) {
    (void)ctx;
    (void)i;
    g4_row_to_f32(t->src, row, out);
}

int g4_convert(const g4_model *m, const char *name, const char *out_path, g4_ftype ft, g4_metadata_fn extra,
               void *extra_ctx, g4_progress_fn progress, void *progress_ctx, g4_error *err) {
    if (ft >= G4_FTYPE_COUNT) return g4_fail(err, "unknown file type");
    item *items = NULL;
    int n = 0;
    if (collect(m, &items, &n, err)) return -1;
    write_job j = {&m->cfg, name, out_path, ft, items, n, source_row, NULL, m->gguf, extra, extra_ctx, progress, progress_ctx};
    int rc = write_gguf(&j, err);
    free(items);
    return rc;
}

/* Random weights of realistic scale, the same for a given seed wherever they
 * are generated: each row has its own stream. */
typedef struct synth_ctx {
    uint64_t seed;
    float branch_scale;
} synth_ctx;

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void synth_row(void *ctx, const item *t, int i, int64_t row, float *out) {
    const synth_ctx *s = ctx;
    int64_t cols = t->ndim ? t->shape[t->ndim - 1] : 1;
    uint64_t state = mix64(s->seed ^ mix64(((uint64_t)i << 40) ^ (uint64_t)row));
    /* vectors: norm weights near 1 (the post-branch norms scaled down, as in
     * trained models), layer scalars and expert scales near 1; matrices:
     * uniform with variance 1/fan_in. */
    float lo, hi;
    if (t->ndim < 2) {
        float scale = strstr(t->name, ".post_") ? s->branch_scale : 1.0f;
        lo = 0.6f * scale;
        hi = 1.4f * scale;
    } else {
        hi = sqrtf(3.0f / (float)cols);
        lo = -hi;
    }
    for (int64_t c = 0; c < cols; c++) {
        state += 0x9e3779b97f4a7c15ull;
        double u = (double)(mix64(state) >> 11) * (1.0 / 9007199254740992.0);
        out[c] = lo + (hi - lo) * (float)u;
    }
}

int g4_synth(const g4_config *cfg, const char *name, const char *out_path, g4_ftype ft, uint64_t seed, float branch_scale,
             g4_metadata_fn extra, void *extra_ctx, g4_progress_fn progress, void *progress_ctx, g4_error *err) {
    if (ft >= G4_FTYPE_COUNT) return g4_fail(err, "unknown file type");
    g4_tensor_spec *specs;
    int n;
    if (g4_weights_list(cfg, &specs, &n, err)) return -1;
    item *items = calloc((size_t)n + 1, sizeof *items);
    if (!items) { free(specs); return g4_fail(err, "out of memory"); }
    for (int i = 0; i < n; i++) {
        snprintf(items[i].name, sizeof items[i].name, "%s", specs[i].name);
        items[i].ndim = specs[i].ndim;
        for (int d = 0; d < specs[i].ndim; d++) items[i].shape[d] = specs[i].shape[d];
    }
    free(specs);
    synth_ctx sc = {seed, branch_scale};
    write_job j = {cfg, name, out_path, ft, items, n, synth_row, &sc, NULL, extra, extra_ctx, progress, progress_ctx};
    int rc = write_gguf(&j, err);
    free(items);
    return rc;
}
