#include "model/weights.h"

#include "ops/half.h"
#include "ops/matmul.h"
#include "ops/rope.h"
#include "model/tensor_names.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct binder {
    const g4_checkpoint *ckpt; /* a Hugging Face checkpoint, or */
    const gguf_file *gguf;     /* a GGUF file (names mapped by tensor_names.c) */
    const char *prefix; /* "model." or "model.language_model." */
    float *next;        /* bump allocator over w->vectors */
    float *end;
    g4_error *err;
    /* List mode (g4_weights_list): bind nothing, record the GGUF name and
     * shape of every tensor the config calls for. */
    g4_tensor_spec *list;
    int n_list, cap_list, listing;
} binder;

static int record(binder *b, const char *full, int ndim, const int64_t *dims) {
    if (b->n_list == b->cap_list) {
        int cap = b->cap_list ? 2 * b->cap_list : 256;
        g4_tensor_spec *p = realloc(b->list, sizeof *p * (size_t)cap);
        if (!p) return g4_fail(b->err, "out of memory");
        b->list = p;
        b->cap_list = cap;
    }
    g4_tensor_spec *t = &b->list[b->n_list++];
    snprintf(t->name, sizeof t->name, "%s", full);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = dims[i];
    return 0;
}

/* name is the Hugging Face name within the model (or layer); full receives
 * the name as stored in the file. */
static const g4_tensor *find(binder *b, const char *name, int layer, char *full, size_t full_len) {
    if (b->gguf || b->listing) {
        if (!g4_gguf_name(name, layer, full, (unsigned)full_len)) snprintf(full, full_len, "(no GGUF name for %s)", name);
        return b->gguf ? gguf_find_tensor(b->gguf, full) : NULL;
    }
    if (layer >= 0) snprintf(full, full_len, "%slayers.%d.%s", b->prefix, layer, name);
    else snprintf(full, full_len, "%s%s", b->prefix, name);
    return ckpt_find(b->ckpt, full);
}

static int check_shape(binder *b, const g4_tensor *t, const char *full, int ndim, const int64_t *dims) {
    if (t->dtype != G4_DTYPE_F32 && t->dtype != G4_DTYPE_F16 && t->dtype != G4_DTYPE_BF16 && !g4_dtype_is_quantized(t->dtype))
        return g4_fail(b->err, "tensor %s has dtype %s; weights must be F32, F16, BF16 or a GGML quantised type", full,
                       g4_dtype_name(t->dtype));
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == dims[i];
    if (ok) return 0;
    char got[128] = "", want[128] = "";
    for (int i = 0; i < t->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
    for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)dims[i]);
    return g4_fail(b->err, "tensor %s has shape [%s], expected [%s]", full, got, want);
}

/* A matrix (or stacked matrices) left in the mapped file. */
static int bind_tensor(binder *b, g4_tensor *out, const char *name, int layer, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    char full[256];
    const g4_tensor *t = find(b, name, layer, full, sizeof full);
    int64_t dims[3] = {d0, d1, d2};
    if (b->listing) return record(b, full, ndim, dims);
    if (!t) return g4_fail(b->err, "missing tensor %s", full);
    if (check_shape(b, t, full, ndim, dims)) return -1;
    *out = *t;
    return 0;
}

static int bind_matrix(binder *b, g4_tensor *out, const char *name, int layer, int64_t rows, int64_t cols) {
    return bind_tensor(b, out, name, layer, 2, rows, cols, 0);
}

/* A small vector, decoded to float32. */
static int bind_vector(binder *b, float **out, const char *name, int layer, int64_t n) {
    char full[256];
    const g4_tensor *t = find(b, name, layer, full, sizeof full);
    if (b->listing) {
        *out = NULL;
        return record(b, full, 1, &n);
    }
    if (!t) return g4_fail(b->err, "missing tensor %s", full);
    if (check_shape(b, t, full, 1, &n)) return -1;
    if (b->next + n > b->end) return g4_fail(b->err, "internal: vector storage exhausted at %s", full);
    *out = b->next;
    b->next += n;
    g4_row_to_f32(t, 0, *out);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite((*out)[i])) return g4_fail(b->err, "tensor %s holds a non-finite value", full);
    return 0;
}

static int64_t vector_floats(const g4_config *c) {
    int64_t per_layer = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const g4_layer_config *lc = &c->layer[l];
        per_layer += 10 * (int64_t)c->hidden_size + 3 * (int64_t)lc->head_dim + c->n_experts + 1;
    }
    return per_layer + c->ple_dim + c->hidden_size + 1 + 1;
}

static int bind_attention(binder *b, g4_layer_weights *lw, const g4_config *c, int l) {
    const g4_layer_config *lc = &c->layer[l];
    int64_t D = c->hidden_size, hd = lc->head_dim, q_dim = (int64_t)c->n_heads * hd, kv_dim = (int64_t)lc->n_kv_heads * hd;
    if (bind_vector(b, &lw->input_norm, "input_layernorm.weight", l, D) ||
        bind_matrix(b, &lw->q_proj, "self_attn.q_proj.weight", l, q_dim, D) ||
        bind_vector(b, &lw->q_norm, "self_attn.q_norm.weight", l, hd) ||
        bind_matrix(b, &lw->o_proj, "self_attn.o_proj.weight", l, D, q_dim) ||
        bind_vector(b, &lw->post_attn_norm, "post_attention_layernorm.weight", l, D))
        return -1;
    if (lc->kv_source == l) { /* KV-shared layers' stored k/v weights are ignored, as in transformers */
        if (bind_matrix(b, &lw->k_proj, "self_attn.k_proj.weight", l, kv_dim, D) ||
            bind_vector(b, &lw->k_norm, "self_attn.k_norm.weight", l, hd))
            return -1;
        if (!lc->k_eq_v && bind_matrix(b, &lw->v_proj, "self_attn.v_proj.weight", l, kv_dim, D)) return -1;
    }
    if (b->listing) return 0;
    lw->rope_inv_freq = b->next;
    b->next += lc->rope_pairs;
    g4_rope_inv_freq(lw->rope_inv_freq, lc->rope_pairs, lc->rope_denominator, lc->rope_theta);
    return 0;
}

/* Fused [E, 2·Im, D] gate+up, or (GGUF only) split gate and up tensors. */
static int bind_experts(binder *b, g4_layer_weights *lw, int l, int64_t E, int64_t Im, int64_t D) {
    char full[256];
    if (!b->gguf || find(b, "experts.gate_up_proj", l, full, sizeof full)) /* fused: checkpoints, lists, most GGUFs */
        return bind_tensor(b, &lw->experts_gate_up, "experts.gate_up_proj", l, 3, E, 2 * Im, D);
    const g4_tensor *names[2];
    g4_tensor *fields[2] = {&lw->experts_gate, &lw->experts_up};
    const char *gguf_names[2] = {"ffn_gate_exps.weight", "ffn_up_exps.weight"};
    int64_t dims[3] = {E, Im, D};
    for (int i = 0; i < 2; i++) {
        snprintf(full, sizeof full, "blk.%d.%s", l, gguf_names[i]);
        names[i] = gguf_find_tensor(b->gguf, full);
        if (!names[i]) return g4_fail(b->err, "missing tensor blk.%d.ffn_gate_up_exps.weight (or split %s)", l, full);
        if (check_shape(b, names[i], full, 3, dims)) return -1;
        *fields[i] = *names[i];
    }
    return 0;
}

static int bind_ffn(binder *b, g4_layer_weights *lw, const g4_config *c, int l) {
    int64_t D = c->hidden_size, I = c->layer[l].ffn_dim;
    if (bind_vector(b, &lw->pre_ffn_norm, "pre_feedforward_layernorm.weight", l, D) ||
        bind_matrix(b, &lw->gate_proj, "mlp.gate_proj.weight", l, I, D) ||
        bind_matrix(b, &lw->up_proj, "mlp.up_proj.weight", l, I, D) ||
        bind_matrix(b, &lw->down_proj, "mlp.down_proj.weight", l, D, I) ||
        bind_vector(b, &lw->post_ffn_norm, "post_feedforward_layernorm.weight", l, D))
        return -1;
    if (!c->n_experts) return 0;
    int64_t E = c->n_experts, Im = c->moe_dim;
    return bind_vector(b, &lw->post_ffn_norm_1, "post_feedforward_layernorm_1.weight", l, D) ||
           bind_vector(b, &lw->pre_ffn_norm_2, "pre_feedforward_layernorm_2.weight", l, D) ||
           bind_vector(b, &lw->post_ffn_norm_2, "post_feedforward_layernorm_2.weight", l, D) ||
           bind_matrix(b, &lw->router_proj, "router.proj.weight", l, E, D) ||
           bind_vector(b, &lw->router_scale, "router.scale", l, D) ||
           bind_vector(b, &lw->router_expert_scale, "router.per_expert_scale", l, E) ||
           bind_experts(b, lw, l, E, Im, D) ||
           bind_tensor(b, &lw->experts_down, "experts.down_proj", l, 3, E, D, Im)
               ? -1 : 0;
}

static int bind_layer(binder *b, g4_layer_weights *lw, const g4_config *c, int l) {
    int64_t D = c->hidden_size, P = c->ple_dim;
    if (bind_attention(b, lw, c, l) || bind_ffn(b, lw, c, l)) return -1;
    if (P && (bind_matrix(b, &lw->ple_gate, "per_layer_input_gate.weight", l, P, D) ||
              bind_matrix(b, &lw->ple_proj, "per_layer_projection.weight", l, D, P) ||
              bind_vector(b, &lw->ple_post_norm, "post_per_layer_input_norm.weight", l, D)))
        return -1;
    char full[256];
    lw->layer_scalar = 1.0f; /* llama.cpp's GGUF loader treats it as optional */
    if (b->gguf && !find(b, "layer_scalar", l, full, sizeof full)) return 0;
    float *scalar;
    if (bind_vector(b, &scalar, "layer_scalar", l, 1)) return -1;
    if (scalar) lw->layer_scalar = *scalar;
    return 0;
}

/* transformers casts the Python float √n to the table's dtype before it
 * multiplies, so a bf16 checkpoint scales by e.g. 39.25 instead of 39.19. */
static float embed_scale(int n, g4_dtype dtype) {
    float s = sqrtf((float)n);
    if (dtype == G4_DTYPE_BF16) return g4_round_to_bf16(s);
    if (dtype == G4_DTYPE_F16) return g4_round_to_f16(s);
    return s;
}

/* Every tensor of the text decoder, in order. */
static int bind_all(binder *b, g4_weights *w, const g4_config *c) {
    int64_t D = c->hidden_size, V = c->vocab_size, L = c->n_layers, P = c->ple_dim;
    int rc = bind_matrix(b, &w->embed, "embed_tokens.weight", -1, V, D) ||
             bind_vector(b, &w->final_norm, "norm.weight", -1, D);
    if (!rc && P)
        rc = bind_matrix(b, &w->ple_embed, "embed_tokens_per_layer.weight", -1, c->ple_vocab, L * P) ||
             bind_matrix(b, &w->ple_model_proj, "per_layer_model_projection.weight", -1, L * P, D) ||
             bind_vector(b, &w->ple_proj_norm, "per_layer_projection_norm.weight", -1, P);
    for (int l = 0; !rc && l < c->n_layers; l++) rc = bind_layer(b, &w->layer[l], c, l);
    return rc ? -1 : 0;
}

int g4_weights_bind(g4_weights *w, const g4_config *c, const g4_checkpoint *ckpt, const gguf_file *gguf, g4_error *err) {
    memset(w, 0, sizeof *w);
    binder b = {ckpt, gguf, "model.", NULL, NULL, err, NULL, 0, 0, 0};
    if (ckpt && ckpt_find(ckpt, "model.language_model.embed_tokens.weight")) b.prefix = "model.language_model.";
    int64_t n_vec = vector_floats(c);
    w->vectors = malloc((size_t)n_vec * sizeof(float));
    w->layer = calloc((size_t)c->n_layers, sizeof *w->layer);
    if (!w->vectors || !w->layer) { g4_weights_free(w, c); return g4_fail(err, "out of memory"); }
    b.next = w->vectors;
    b.end = w->vectors + n_vec;

    int rc = bind_all(&b, w, c);
    if (rc) { g4_weights_free(w, c); return -1; }
    w->embed_scale = embed_scale(c->hidden_size, w->embed.dtype);
    if (c->ple_dim) w->ple_embed_scale = embed_scale(c->ple_dim, w->ple_embed.dtype);
    w->lm_head = w->embed; /* every Gemma 4 ties the LM head to the input embedding */
    return 0;
}

int g4_weights_list(const g4_config *c, g4_tensor_spec **out, int *n, g4_error *err) {
    binder b = {NULL, NULL, "", NULL, NULL, err, NULL, 0, 0, 1};
    g4_weights w;
    memset(&w, 0, sizeof w);
    w.layer = calloc((size_t)c->n_layers, sizeof *w.layer);
    int rc = w.layer ? bind_all(&b, &w, c) : g4_fail(err, "out of memory");
    free(w.layer);
    if (rc) { free(b.list); return -1; }
    *out = b.list;
    *n = b.n_list;
    return 0;
}

void g4_embedding_row(const g4_tensor *table, int64_t row, float *out) {
    g4_row_to_f32(table, row, out);
    const uintptr_t window = (uintptr_t)2 << 20; /* the largest folio the kernel maps at once */
    size_t row_bytes = g4_dtype_row_bytes(table->dtype, table->shape[table->ndim - 1]);
    uintptr_t start = (uintptr_t)table->data, end = start + table->nbytes, page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t at = start + (uintptr_t)row * row_bytes;
    uintptr_t lo = at & ~(window - 1), hi = ((at + row_bytes) | (window - 1)) + 1;
    /* only this table's own whole pages */
    if (lo < start) lo = (start + page - 1) & ~(page - 1);
    if (hi > end) hi = end & ~(page - 1);
    /* Tables are views into the mapped file (never repacked copies): dropping
     * the pages loses nothing, they fault back in from the page cache. */
    if (hi > lo && !table->repacked) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void g4_weights_free(g4_weights *w, const g4_config *c) {
    (void)c;
    for (int i = 0; i < w->n_repacked; i++) free(w->repacked[i]);
    free(w->repacked);
    free(w->vectors);
    free(w->layer);
    memset(w, 0, sizeof *w);
}
