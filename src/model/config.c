#include "model/config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits far above any released model; they keep sizes computed from the
 * config (often multiplied together) far from integer overflow. */
enum { MAX_DIM = 1 << 16, MAX_LAYERS = 1024, MAX_HEADS = 1024, MAX_HEAD_DIM = 4096, MAX_VOCAB = 1 << 24 };

/* Reads an integer member; absent or null gives def, anything else but an
 * integer in [lo, hi] is an error naming the key. */
static int get_int(json_t *obj, const char *key, int def, int lo, int hi, int *out, g4_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_integer(v)) return g4_fail(err, "config: %s must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return g4_fail(err, "config: %s = %lld is out of range [%d, %d]", key, (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_required_int(json_t *obj, const char *key, int lo, int hi, int *out, g4_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return g4_fail(err, "config: missing %s", key);
    return get_int(obj, key, 0, lo, hi, out, err);
}

static int get_number(json_t *obj, const char *key, double def, double *out, g4_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_number(v)) return g4_fail(err, "config: %s must be a number", key);
    *out = json_number_value(v);
    if (!isfinite(*out)) return g4_fail(err, "config: %s is not finite", key);
    return 0;
}

static int get_bool(json_t *obj, const char *key, int def, int *out, g4_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_boolean(v)) return g4_fail(err, "config: %s must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* RoPE of one layer type from rope_parameters[type]. "proportional" rotates
 * the first partial*head_dim/2 pairs with frequencies of the FULL head dim
 * (Gemma 4 global layers); "default" with a partial factor rotates a prefix
 * with frequencies of that prefix, as transformers' default RoPE does. */
static int parse_rope(json_t *params, const char *type, int head_dim, g4_layer_config *lc, g4_error *err) {
    json_t *p = params ? json_object_get(params, type) : NULL;
    int full = strcmp(type, "full_attention") == 0;
    const char *rope_type = full ? "proportional" : "default";
    double theta = full ? 1e6 : 1e4, partial = full ? 0.25 : 1.0, factor = 1.0;
    if (p) {
        if (!json_is_object(p)) return g4_fail(err, "config: rope_parameters.%s must be an object", type);
        json_t *t = json_object_get(p, "rope_type");
        if (t) {
            if (!json_is_string(t)) return g4_fail(err, "config: rope_parameters.%s.rope_type must be a string", type);
            rope_type = json_string_value(t);
        }
        if (get_number(p, "rope_theta", theta, &theta, err) ||
            get_number(p, "partial_rotary_factor", strcmp(rope_type, "proportional") == 0 ? partial : 1.0, &partial, err) ||
            get_number(p, "factor", 1.0, &factor, err))
            return -1;
    }
    if (theta <= 1.0) return g4_fail(err, "config: rope_theta of %s must be > 1", type);
    if (partial <= 0.0 || partial > 1.0) return g4_fail(err, "config: partial_rotary_factor of %s must be in (0, 1]", type);
    if (factor != 1.0) return g4_fail(err, "config: rope scaling factor %g on %s is not supported", factor, type);
    lc->rope_theta = theta;
    if (strcmp(rope_type, "proportional") == 0) {
        lc->rope_pairs = (int)(partial * head_dim / 2);
        lc->rope_denominator = head_dim;
    } else if (strcmp(rope_type, "default") == 0) {
        int dim = (int)(head_dim * partial);
        lc->rope_pairs = dim / 2;
        lc->rope_denominator = dim;
        /* The rotated pairs are (i, i + head_dim/2); transformers' default partial
         * RoPE would pair within the prefix instead, which no Gemma 4 uses. */
        if (dim != head_dim) return g4_fail(err, "config: partial default RoPE on %s is not supported", type);
    } else {
        return g4_fail(err, "config: unsupported rope_type \"%s\" on %s", rope_type, type);
    }
    return 0;
}

/* Per-layer overrides: per_layer_config (transformers >= 5.15) or the flat
 * global_head_dim / num_global_key_value_heads of the released configs. */
static int layer_override(json_t *tc, int l, const char *key, int def, int lo, int hi, int *out, g4_error *err) {
    json_t *plc = json_object_get(tc, "per_layer_config");
    if (!plc || json_is_null(plc)) { *out = def; return 0; }
    if (!json_is_object(plc)) return g4_fail(err, "config: per_layer_config must be an object");
    char idx[16];
    snprintf(idx, sizeof idx, "%d", l);
    json_t *o = json_object_get(plc, idx);
    if (!o) { *out = def; return 0; }
    if (!json_is_object(o)) return g4_fail(err, "config: per_layer_config.%s must be an object", idx);
    return get_int(o, key, def, lo, hi, out, err);
}

static int parse_layers(json_t *tc, g4_config *c, g4_error *err) {
    int head_dim = 0, kv_heads = 0, ffn = 0, global_head_dim = 0, global_kv = 0, k_eq_v = 0, double_wide = 0;
    if (get_required_int(tc, "head_dim", 2, MAX_HEAD_DIM, &head_dim, err) ||
        get_required_int(tc, "num_key_value_heads", 1, MAX_HEADS, &kv_heads, err) ||
        get_required_int(tc, "intermediate_size", 1, 1 << 20, &ffn, err) ||
        get_int(tc, "global_head_dim", 512, 2, MAX_HEAD_DIM, &global_head_dim, err) ||
        get_int(tc, "num_global_key_value_heads", 0, 0, MAX_HEADS, &global_kv, err) ||
        get_bool(tc, "attention_k_eq_v", 0, &k_eq_v, err) ||
        get_bool(tc, "use_double_wide_mlp", 0, &double_wide, err))
        return -1;
    if (!global_kv || !k_eq_v) global_kv = kv_heads;

    json_t *types = json_object_get(tc, "layer_types");
    if (types && !json_is_null(types) && (!json_is_array(types) || (int)json_array_size(types) != c->n_layers))
        return g4_fail(err, "config: layer_types must be a list of num_hidden_layers (%d) strings", c->n_layers);
    json_t *rope = json_object_get(tc, "rope_parameters");
    if (rope && !json_is_null(rope) && !json_is_object(rope)) return g4_fail(err, "config: rope_parameters must be an object");

    c->layer = calloc((size_t)c->n_layers, sizeof *c->layer);
    if (!c->layer) return g4_fail(err, "out of memory");
    int first_shared = c->n_layers - c->n_kv_shared_layers;
    for (int l = 0; l < c->n_layers; l++) {
        g4_layer_config *lc = &c->layer[l];
        if (types && !json_is_null(types)) {
            const char *t = json_string_value(json_array_get(types, (size_t)l));
            if (!t) return g4_fail(err, "config: layer_types[%d] must be a string", l);
            if (strcmp(t, "full_attention") == 0) lc->attn = G4_ATTN_FULL;
            else if (strcmp(t, "sliding_attention") == 0) lc->attn = G4_ATTN_SLIDING;
            else return g4_fail(err, "config: layer_types[%d] = \"%s\" is not sliding_attention or full_attention", l, t);
        } else {
            lc->attn = (l + 1) % 6 == 0 ? G4_ATTN_FULL : G4_ATTN_SLIDING; /* transformers' default 5:1 */
        }
        if (l == c->n_layers - 1) lc->attn = G4_ATTN_FULL; /* transformers forces the last layer global */

        int full = lc->attn == G4_ATTN_FULL;
        if (layer_override(tc, l, "head_dim", full ? global_head_dim : head_dim, 2, MAX_HEAD_DIM, &lc->head_dim, err) ||
            layer_override(tc, l, "num_key_value_heads", full ? global_kv : kv_heads, 1, MAX_HEADS, &lc->n_kv_heads, err))
            return -1;
        if (lc->head_dim % 2) return g4_fail(err, "config: layer %d head_dim %d is odd", l, lc->head_dim);
        if (c->n_heads % lc->n_kv_heads)
            return g4_fail(err, "config: layer %d: %d query heads are not a multiple of %d kv heads", l, c->n_heads, lc->n_kv_heads);
        lc->k_eq_v = full && k_eq_v;
        lc->ffn_dim = double_wide && c->n_kv_shared_layers > 0 && l >= first_shared ? 2 * ffn : ffn;
        if (parse_rope(rope, full ? "full_attention" : "sliding_attention", lc->head_dim, lc, err)) return -1;
    }
    return g4_config_resolve_kv_sources(c, err);
}

int g4_config_last_kv_layer(const g4_config *cfg) {
    int last = 0;
    for (int l = 0; l < cfg->n_layers; l++)
        if (cfg->layer[l].kv_source == l) last = l;
    return last;
}

int g4_config_resolve_kv_sources(g4_config *c, g4_error *err) {
    int first_shared = c->n_layers - c->n_kv_shared_layers;
    for (int l = 0; l < c->n_layers; l++) {
        g4_layer_config *lc = &c->layer[l];
        lc->kv_source = l;
        if (l < first_shared) continue;
        lc->kv_source = -1;
        for (int j = first_shared - 1; j >= 0; j--)
            if (c->layer[j].attn == lc->attn) { lc->kv_source = j; break; }
        if (lc->kv_source < 0) return g4_fail(err, "config: KV-shared layer %d has no earlier layer of its type to read", l);
        const g4_layer_config *src = &c->layer[lc->kv_source];
        if (lc->head_dim != src->head_dim || lc->n_kv_heads != src->n_kv_heads)
            return g4_fail(err, "config: layer %d reads the KV of layer %d, whose geometry differs", l, lc->kv_source);
        lc->k_eq_v = src->k_eq_v;
    }
    return 0;
}

static int parse_eos(json_t *tc, json_t *top, g4_config *c, g4_error *err) {
    json_t *v = json_object_get(tc, "eos_token_id");
    if (!v && top) v = json_object_get(top, "eos_token_id");
    c->n_eos_token_ids = 0;
    if (!v || json_is_null(v)) { c->eos_token_ids[c->n_eos_token_ids++] = 1; return 0; }
    if (json_is_integer(v)) { c->eos_token_ids[c->n_eos_token_ids++] = (int)json_integer_value(v); }
    else if (json_is_array(v)) {
        size_t i; json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_integer(e)) return g4_fail(err, "config: eos_token_id entries must be integers");
            if (c->n_eos_token_ids < 8) c->eos_token_ids[c->n_eos_token_ids++] = (int)json_integer_value(e);
        }
    } else return g4_fail(err, "config: eos_token_id must be an integer or a list");
    for (int i = 0; i < c->n_eos_token_ids; i++)
        if (c->eos_token_ids[i] < 0 || c->eos_token_ids[i] >= c->vocab_size) return g4_fail(err, "config: eos_token_id out of range");
    return 0;
}

static int parse_text_config(json_t *tc, json_t *top, g4_config *c, g4_error *err) {
    double eps = 0, softcap = 0;
    int moe = 0;
    if (get_required_int(tc, "vocab_size", 1, MAX_VOCAB, &c->vocab_size, err) ||
        get_required_int(tc, "hidden_size", 1, MAX_DIM, &c->hidden_size, err) ||
        get_required_int(tc, "num_hidden_layers", 1, MAX_LAYERS, &c->n_layers, err) ||
        get_required_int(tc, "num_attention_heads", 1, MAX_HEADS, &c->n_heads, err) ||
        get_int(tc, "sliding_window", 512, 1, 1 << 30, &c->sliding_window, err) ||
        get_int(tc, "max_position_embeddings", 131072, 1, 1 << 30, &c->max_positions, err) ||
        get_number(tc, "rms_norm_eps", 1e-6, &eps, err) ||
        get_number(tc, "final_logit_softcapping", 0.0, &softcap, err) ||
        get_int(tc, "hidden_size_per_layer_input", 256, 0, MAX_DIM, &c->ple_dim, err) ||
        get_int(tc, "vocab_size_per_layer_input", 262144, 0, MAX_VOCAB, &c->ple_vocab, err) ||
        get_int(tc, "num_kv_shared_layers", 0, 0, MAX_LAYERS, &c->n_kv_shared_layers, err) ||
        get_bool(tc, "enable_moe_block", 0, &moe, err) ||
        get_int(tc, "pad_token_id", 0, 0, MAX_VOCAB, &c->pad_token_id, err) ||
        get_int(tc, "bos_token_id", 2, 0, MAX_VOCAB, &c->bos_token_id, err))
        return -1;
    if (eps <= 0 || eps > 1) return g4_fail(err, "config: rms_norm_eps must be in (0, 1]");
    if (softcap < 0) return g4_fail(err, "config: final_logit_softcapping must be >= 0");
    c->rms_eps = (float)eps;
    c->final_logit_softcap = (float)softcap;
    if (c->n_kv_shared_layers >= c->n_layers) return g4_fail(err, "config: num_kv_shared_layers must be below num_hidden_layers");
    if (c->ple_dim && c->ple_vocab < 1) return g4_fail(err, "config: vocab_size_per_layer_input must be positive with per-layer inputs");
    if (moe) {
        if (get_required_int(tc, "num_experts", 1, 4096, &c->n_experts, err) ||
            get_required_int(tc, "top_k_experts", 1, 4096, &c->top_k_experts, err) ||
            get_required_int(tc, "moe_intermediate_size", 1, 1 << 20, &c->moe_dim, err))
            return -1;
        if (c->top_k_experts > c->n_experts) return g4_fail(err, "config: top_k_experts exceeds num_experts");
    }
    const char *act = json_string_value(json_object_get(tc, "hidden_activation"));
    if (act && strcmp(act, "gelu_pytorch_tanh") != 0) return g4_fail(err, "config: hidden_activation \"%s\" is not supported", act);
    const char *bidi = json_string_value(json_object_get(tc, "use_bidirectional_attention"));
    if (bidi && strcmp(bidi, "all") == 0) return g4_fail(err, "config: use_bidirectional_attention = \"all\" is not supported");
    if (parse_eos(tc, top, c, err)) return -1;
    return parse_layers(tc, c, err);
}

int g4_config_parse(const char *text, size_t len, g4_config *cfg, g4_error *err) {
    memset(cfg, 0, sizeof *cfg);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return g4_fail(err, "config.json: invalid JSON at line %d: %s", jerr.line, jerr.text);
    int rc;
    if (!json_is_object(root)) {
        rc = g4_fail(err, "config.json: top level must be an object");
    } else {
        json_t *tc = json_object_get(root, "text_config");
        if (tc && !json_is_object(tc)) rc = g4_fail(err, "config.json: text_config must be an object");
        else rc = parse_text_config(tc ? tc : root, tc ? root : NULL, cfg, err);
    }
    json_decref(root);
    if (rc) g4_config_free(cfg);
    return rc;
}

int g4_config_load(const char *path, g4_config *cfg, g4_error *err) {
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "rb");
    if (!f) return g4_fail(err, "cannot open %s", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= (64u << 20)) { free(buf); fclose(f); return g4_fail(err, "%s is larger than 64 MiB", path); }
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return g4_fail(err, "out of memory"); }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0) break;
        len += n;
    }
    fclose(f);
    int rc = g4_config_parse(buf, len, cfg, err);
    free(buf);
    return rc;
}

void g4_config_free(g4_config *cfg) {
    free(cfg->layer);
    memset(cfg, 0, sizeof *cfg);
}
