#include "model/gguf_hparams.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_LAYERS = 1024 };

static const gguf_value *find(const gguf_file *f, const char *key) {
    int64_t id = gguf_find_key(f, key);
    return id < 0 ? NULL : gguf_kv_value(f, id);
}

/* An unsigned integer of any GGUF integer type, in [lo, hi]. */
static int get_uint(const gguf_file *f, const char *key, int required, long def, long lo, long hi, int *out, g4_error *err) {
    const gguf_value *v = find(f, key);
    if (!v) {
        if (required) return g4_fail(err, "GGUF: missing key %s", key);
        *out = (int)def;
        return 0;
    }
    long long x;
    switch (v->type) {
    case GGUF_TYPE_UINT8: x = v->v.u8; break;
    case GGUF_TYPE_INT8: x = v->v.i8; break;
    case GGUF_TYPE_UINT16: x = v->v.u16; break;
    case GGUF_TYPE_INT16: x = v->v.i16; break;
    case GGUF_TYPE_UINT32: x = v->v.u32; break;
    case GGUF_TYPE_INT32: x = v->v.i32; break;
    case GGUF_TYPE_UINT64: x = v->v.u64 > (uint64_t)hi ? hi + 1LL : (long long)v->v.u64; break;
    case GGUF_TYPE_INT64: x = v->v.i64; break;
    default: return g4_fail(err, "GGUF: key %s is a %s, expected an integer", key, gguf_type_label(v->type));
    }
    if (x < lo || x > hi) return g4_fail(err, "GGUF: %s = %lld is out of range [%ld, %ld]", key, x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_float(const gguf_file *f, const char *key, int required, double def, double *out, g4_error *err) {
    const gguf_value *v = find(f, key);
    if (!v) {
        if (required) return g4_fail(err, "GGUF: missing key %s", key);
        *out = def;
        return 0;
    }
    if (v->type == GGUF_TYPE_FLOAT32) *out = v->v.f32;
    else if (v->type == GGUF_TYPE_FLOAT64) *out = v->v.f64;
    else return g4_fail(err, "GGUF: key %s is a %s, expected a float", key, gguf_type_label(v->type));
    if (!isfinite(*out)) return g4_fail(err, "GGUF: %s is not finite", key);
    return 0;
}

/* A per-layer integer: one value for every layer, or an array of n_layers. */
static int get_per_layer(const gguf_file *f, const char *key, int n_layers, int required, int def, long hi, int *out,
                         g4_error *err) {
    const gguf_value *v = find(f, key);
    if (!v || v->type != GGUF_TYPE_ARRAY) {
        int x;
        if (get_uint(f, key, required, def, 0, hi, &x, err)) return -1;
        for (int l = 0; l < n_layers; l++) out[l] = x;
        return 0;
    }
    const gguf_array *a = &v->arr;
    if (a->n != (uint64_t)n_layers) return g4_fail(err, "GGUF: %s has %llu entries for %d layers", key, (unsigned long long)a->n, n_layers);
    for (int l = 0; l < n_layers; l++) {
        long long x;
        if (a->type == GGUF_TYPE_INT32) x = ((const int32_t *)a->data)[l];
        else if (a->type == GGUF_TYPE_UINT32) x = ((const uint32_t *)a->data)[l];
        else return g4_fail(err, "GGUF: %s must be an array of 32-bit integers", key);
        if (x < 0 || x > hi) return g4_fail(err, "GGUF: %s[%d] = %lld is out of range", key, l, x);
        out[l] = (int)x;
    }
    return 0;
}

static const g4_tensor *tensor(const gguf_file *f, const char *name, int layer) {
    char buf[96];
    if (layer >= 0) snprintf(buf, sizeof buf, "blk.%d.%s", layer, name);
    else snprintf(buf, sizeof buf, "%s", name);
    return gguf_find_tensor(f, buf);
}

/* Proportional RoPE: rope_freqs holds 1 for each rotated pair and 1e30
 * (angle ~ 0, the identity) for the rest. */
static int rope_pairs_from_freqs(const gguf_file *f, int head_dim, int *pairs, g4_error *err) {
    const g4_tensor *t = tensor(f, "rope_freqs.weight", -1);
    *pairs = head_dim / 2;
    if (!t) return 0;
    if (t->dtype != G4_DTYPE_F32 || t->ndim != 1 || t->shape[0] != head_dim / 2)
        return g4_fail(err, "GGUF: rope_freqs.weight must be F32 [%d]", head_dim / 2);
    const float *v = t->data;
    int n = 0;
    while (n < head_dim / 2 && v[n] == 1.0f) n++;
    for (int i = n; i < head_dim / 2; i++)
        if (!(v[i] >= 1e20f)) return g4_fail(err, "GGUF: rope_freqs.weight[%d] = %g: only factors 1 and 1e30 (proportional RoPE) are supported", i, v[i]);
    *pairs = n;
    return 0;
}

int g4_config_from_gguf(const gguf_file *f, g4_config *c, g4_error *err) {
    memset(c, 0, sizeof *c);
    const char *arch = NULL;
    if (gguf_get_str(f, "general.architecture", &arch, NULL, err)) return -1;
    if (strcmp(arch, "gemma4") != 0) return g4_fail(err, "GGUF: architecture \"%s\" is not gemma4", arch);
    const g4_tensor *embd = tensor(f, "token_embd.weight", -1);
    if (!embd || embd->ndim != 2) return g4_fail(err, "GGUF: missing or malformed token_embd.weight");
    if (embd->shape[0] > (1 << 24)) return g4_fail(err, "GGUF: vocabulary of %lld is too large", (long long)embd->shape[0]);
    c->vocab_size = (int)embd->shape[0];

    double eps = 0, softcap = 0, theta_full = 0, theta_swa = 0;
    int hd_full = 0, hd_swa = 0, vd_full = 0, vd_swa = 0, rot_full = 0, rot_swa = 0, shared = 0, eos = 0;
    if (get_uint(f, "gemma4.embedding_length", 1, 0, 1, 1 << 16, &c->hidden_size, err) ||
        get_uint(f, "gemma4.block_count", 1, 0, 1, MAX_LAYERS, &c->n_layers, err) ||
        get_uint(f, "gemma4.attention.head_count", 1, 0, 1, 1024, &c->n_heads, err) ||
        get_uint(f, "gemma4.context_length", 0, 131072, 1, 1 << 30, &c->max_positions, err) ||
        get_uint(f, "gemma4.attention.sliding_window", 1, 0, 1, 1 << 30, &c->sliding_window, err) ||
        get_uint(f, "gemma4.attention.key_length", 1, 0, 2, 4096, &hd_full, err) ||
        get_uint(f, "gemma4.attention.value_length", 0, hd_full, 2, 4096, &vd_full, err) ||
        get_uint(f, "gemma4.attention.key_length_swa", 1, 0, 2, 4096, &hd_swa, err) ||
        get_uint(f, "gemma4.attention.value_length_swa", 0, hd_swa, 2, 4096, &vd_swa, err) ||
        get_uint(f, "gemma4.rope.dimension_count", 0, hd_full, 2, 4096, &rot_full, err) ||
        get_uint(f, "gemma4.rope.dimension_count_swa", 0, hd_swa, 2, 4096, &rot_swa, err) ||
        get_uint(f, "gemma4.attention.shared_kv_layers", 0, 0, 0, MAX_LAYERS, &shared, err) ||
        get_uint(f, "gemma4.embedding_length_per_layer_input", 0, 0, 0, 1 << 16, &c->ple_dim, err) ||
        get_uint(f, "gemma4.expert_count", 0, 0, 0, 4096, &c->n_experts, err) ||
        get_uint(f, "gemma4.expert_used_count", 0, 0, 0, 4096, &c->top_k_experts, err) ||
        get_uint(f, "gemma4.expert_feed_forward_length", 0, 0, 0, 1 << 20, &c->moe_dim, err) ||
        get_float(f, "gemma4.attention.layer_norm_rms_epsilon", 1, 0, &eps, err) ||
        get_float(f, "gemma4.final_logit_softcapping", 0, 0, &softcap, err) ||
        get_float(f, "gemma4.rope.freq_base", 0, 1e6, &theta_full, err) ||
        get_float(f, "gemma4.rope.freq_base_swa", 0, 1e4, &theta_swa, err) ||
        get_uint(f, "tokenizer.ggml.bos_token_id", 0, 2, 0, c->vocab_size - 1, &c->bos_token_id, err) ||
        get_uint(f, "tokenizer.ggml.padding_token_id", 0, 0, 0, c->vocab_size - 1, &c->pad_token_id, err) ||
        get_uint(f, "tokenizer.ggml.eos_token_id", 0, 1, 0, c->vocab_size - 1, &eos, err))
        return -1;
    if (vd_full != hd_full || vd_swa != hd_swa) return g4_fail(err, "GGUF: value head dims differing from key head dims are not supported");
    if (rot_swa != hd_swa) return g4_fail(err, "GGUF: partial RoPE on sliding layers is not supported");
    if (eps <= 0 || eps > 1 || softcap < 0 || theta_full <= 1 || theta_swa <= 1) return g4_fail(err, "GGUF: invalid epsilon, softcap or RoPE base");
    if (embd->shape[1] != c->hidden_size) return g4_fail(err, "GGUF: token_embd.weight width %lld is not embedding_length %d", (long long)embd->shape[1], c->hidden_size);
    if (shared >= c->n_layers) return g4_fail(err, "GGUF: shared_kv_layers must be below block_count");
    if (c->n_experts && (c->top_k_experts < 1 || c->top_k_experts > c->n_experts || c->moe_dim < 1))
        return g4_fail(err, "GGUF: inconsistent expert_count / expert_used_count / expert_feed_forward_length");
    c->rms_eps = (float)eps;
    c->final_logit_softcap = (float)softcap;
    c->n_kv_shared_layers = shared;
    c->eos_token_ids[c->n_eos_token_ids++] = eos;
    int eot;
    if (find(f, "tokenizer.ggml.eot_token_id") && !get_uint(f, "tokenizer.ggml.eot_token_id", 1, 0, 0, c->vocab_size - 1, &eot, err) && eot != eos)
        c->eos_token_ids[c->n_eos_token_ids++] = eot;
    if (c->ple_dim) {
        const g4_tensor *ple = tensor(f, "per_layer_token_embd.weight", -1);
        if (!ple || ple->ndim != 2) return g4_fail(err, "GGUF: missing per_layer_token_embd.weight");
        c->ple_vocab = (int)(ple->shape[0] < (1 << 24) ? ple->shape[0] : 1 << 24);
    }

    int L = c->n_layers;
    int *kv = malloc(sizeof(int) * (size_t)L), *ffn = malloc(sizeof(int) * (size_t)L);
    c->layer = calloc((size_t)L, sizeof *c->layer);
    int rope_pairs_full = 0, rc = -1;
    if (!kv || !ffn || !c->layer) { g4_fail(err, "out of memory"); goto done; }
    if (get_per_layer(f, "gemma4.attention.head_count_kv", L, 1, 0, 1024, kv, err) ||
        get_per_layer(f, "gemma4.feed_forward_length", L, 1, 0, 1 << 20, ffn, err) ||
        rope_pairs_from_freqs(f, rot_full, &rope_pairs_full, err))
        goto done;
    gguf_array pattern;
    if (gguf_get_arr(f, "gemma4.attention.sliding_window_pattern", GGUF_TYPE_BOOL, &pattern, err)) goto done;
    if (pattern.n != (uint64_t)L) { g4_fail(err, "GGUF: sliding_window_pattern has %llu entries for %d layers", (unsigned long long)pattern.n, L); goto done; }
    for (int l = 0; l < L; l++) {
        g4_layer_config *lc = &c->layer[l];
        int swa = ((const uint8_t *)pattern.data)[l] != 0;
        lc->attn = swa ? G4_ATTN_SLIDING : G4_ATTN_FULL;
        lc->head_dim = swa ? hd_swa : hd_full;
        lc->n_kv_heads = kv[l];
        lc->ffn_dim = ffn[l];
        if (lc->n_kv_heads < 1 || c->n_heads % lc->n_kv_heads) { g4_fail(err, "GGUF: layer %d: %d heads are not a multiple of %d kv heads", l, c->n_heads, lc->n_kv_heads); goto done; }
        if (lc->ffn_dim < 1) { g4_fail(err, "GGUF: layer %d has no feed-forward width", l); goto done; }
        /* k = v is not stored: a full layer that owns KV but has no attn_v */
        lc->k_eq_v = !swa && l < L - shared && !tensor(f, "attn_v.weight", l);
        lc->rope_theta = swa ? theta_swa : theta_full;
        lc->rope_pairs = swa ? rot_swa / 2 : rope_pairs_full;
        lc->rope_denominator = swa ? rot_swa : rot_full;
    }
    rc = g4_config_resolve_kv_sources(c, err);
done:
    free(kv);
    free(ffn);
    if (rc) g4_config_free(c);
    return rc;
}

int g4_rope_freqs(const g4_config *c, float *out) {
    for (int l = 0; l < c->n_layers; l++) {
        const g4_layer_config *lc = &c->layer[l];
        if (lc->attn != G4_ATTN_FULL) continue;
        int n = lc->head_dim / 2;
        for (int i = 0; i < n; i++) out[i] = i < lc->rope_pairs ? 1.0f : 1e30f;
        return n;
    }
    return 0;
}

/* The head dim every layer of a kind has: -1 if there is no such layer, -2
 * if they differ (GGUF has one key per kind). */
static int common_head_dim(const g4_config *c, g4_attn_kind kind) {
    int v = -1;
    for (int l = 0; l < c->n_layers; l++) {
        if (c->layer[l].attn != kind) continue;
        if (v >= 0 && c->layer[l].head_dim != v) return -2;
        v = c->layer[l].head_dim;
    }
    return v;
}

int g4_config_to_gguf(const g4_config *c, const char *name, gguf_writer *w, g4_error *err) {
    if (c->n_layers < 1 || c->n_layers > MAX_LAYERS) return g4_fail(err, "GGUF: bad layer count");
    int L = c->n_layers, hd_full = common_head_dim(c, G4_ATTN_FULL), hd_swa = common_head_dim(c, G4_ATTN_SLIDING);
    if (hd_full == -2 || hd_swa == -2) return g4_fail(err, "GGUF stores one head dim per layer kind; this model varies");
    if (hd_full < 0) hd_full = hd_swa;
    if (hd_swa < 0) hd_swa = hd_full;
    double theta_full = 1e6, theta_swa = 1e4;
    int rot_full = hd_full;
    for (int l = 0; l < L; l++) {
        const g4_layer_config *lc = &c->layer[l];
        if (lc->attn == G4_ATTN_FULL) { theta_full = lc->rope_theta; rot_full = lc->rope_denominator; }
        else theta_swa = lc->rope_theta;
    }
    int32_t *kv = malloc(sizeof(int32_t) * (size_t)L), *ffn = malloc(sizeof(int32_t) * (size_t)L);
    uint8_t *swa = malloc((size_t)L);
    if (!kv || !ffn || !swa) { free(kv); free(ffn); free(swa); return g4_fail(err, "out of memory"); }
    for (int l = 0; l < L; l++) {
        kv[l] = c->layer[l].n_kv_heads;
        ffn[l] = c->layer[l].ffn_dim;
        swa[l] = c->layer[l].attn == G4_ATTN_SLIDING;
    }
    int rc = gguf_writer_add_str(w, "general.architecture", "gemma4", err) ||
             gguf_writer_add_str(w, "general.name", name, err) ||
             gguf_writer_add_u32(w, "gemma4.context_length", (uint32_t)c->max_positions, err) ||
             gguf_writer_add_u32(w, "gemma4.embedding_length", (uint32_t)c->hidden_size, err) ||
             gguf_writer_add_u32(w, "gemma4.block_count", (uint32_t)L, err) ||
             gguf_writer_add_arr(w, "gemma4.feed_forward_length", GGUF_TYPE_INT32, ffn, (uint64_t)L, err) ||
             gguf_writer_add_u32(w, "gemma4.attention.head_count", (uint32_t)c->n_heads, err) ||
             gguf_writer_add_arr(w, "gemma4.attention.head_count_kv", GGUF_TYPE_INT32, kv, (uint64_t)L, err) ||
             gguf_writer_add_u32(w, "gemma4.attention.key_length", (uint32_t)hd_full, err) ||
             gguf_writer_add_u32(w, "gemma4.attention.value_length", (uint32_t)hd_full, err) ||
             gguf_writer_add_u32(w, "gemma4.attention.key_length_swa", (uint32_t)hd_swa, err) ||
             gguf_writer_add_u32(w, "gemma4.attention.value_length_swa", (uint32_t)hd_swa, err) ||
             gguf_writer_add_f32(w, "gemma4.attention.layer_norm_rms_epsilon", c->rms_eps, err) ||
             gguf_writer_add_u32(w, "gemma4.attention.sliding_window", (uint32_t)c->sliding_window, err) ||
             gguf_writer_add_arr(w, "gemma4.attention.sliding_window_pattern", GGUF_TYPE_BOOL, swa, (uint64_t)L, err) ||
             gguf_writer_add_u32(w, "gemma4.attention.shared_kv_layers", (uint32_t)c->n_kv_shared_layers, err) ||
             gguf_writer_add_u32(w, "gemma4.embedding_length_per_layer_input", (uint32_t)c->ple_dim, err) ||
             gguf_writer_add_f32(w, "gemma4.rope.freq_base", (float)theta_full, err) ||
             gguf_writer_add_f32(w, "gemma4.rope.freq_base_swa", (float)theta_swa, err) ||
             gguf_writer_add_u32(w, "gemma4.rope.dimension_count", (uint32_t)rot_full, err) ||
             gguf_writer_add_u32(w, "gemma4.rope.dimension_count_swa", (uint32_t)hd_swa, err) ||
             (c->final_logit_softcap > 0 && gguf_writer_add_f32(w, "gemma4.final_logit_softcapping", c->final_logit_softcap, err)) ||
             (c->n_experts && (gguf_writer_add_u32(w, "gemma4.expert_count", (uint32_t)c->n_experts, err) ||
                               gguf_writer_add_u32(w, "gemma4.expert_used_count", (uint32_t)c->top_k_experts, err) ||
                               gguf_writer_add_u32(w, "gemma4.expert_feed_forward_length", (uint32_t)c->moe_dim, err)));
    free(kv);
    free(ffn);
    free(swa);
    return rc ? -1 : 0;
}
