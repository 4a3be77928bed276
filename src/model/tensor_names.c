#include "model/tensor_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const g4_tensor_name global_names[] = {
    {"embed_tokens.weight", "token_embd.weight"},
    {"norm.weight", "output_norm.weight"},
    {"embed_tokens_per_layer.weight", "per_layer_token_embd.weight"},
    {"per_layer_model_projection.weight", "per_layer_model_proj.weight"},
    {"per_layer_projection_norm.weight", "per_layer_proj_norm.weight"},
};

static const g4_tensor_name layer_names[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "post_attention_norm.weight"},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
    {"layer_scalar", "layer_output_scale.weight"},
    {"router.proj.weight", "ffn_gate_inp.weight"},
    {"router.scale", "ffn_gate_inp.scale"},
    {"router.per_expert_scale", "ffn_down_exps.scale"},
    {"experts.gate_up_proj", "ffn_gate_up_exps.weight"},
    {"experts.down_proj", "ffn_down_exps.weight"},
    {"pre_feedforward_layernorm_2.weight", "pre_ffw_norm_2.weight"},
    {"post_feedforward_layernorm_1.weight", "post_ffw_norm_1.weight"},
    {"post_feedforward_layernorm_2.weight", "post_ffw_norm_2.weight"},
    {"per_layer_input_gate.weight", "inp_gate.weight"},
    {"per_layer_projection.weight", "proj.weight"},
    {"post_per_layer_input_norm.weight", "post_norm.weight"},
};

const char *g4_gguf_name(const char *hf, int layer, char *buf, unsigned len) {
    const g4_tensor_name *t = layer >= 0 ? layer_names : global_names;
    size_t n = layer >= 0 ? sizeof layer_names / sizeof *layer_names : sizeof global_names / sizeof *global_names;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(t[i].hf, hf) != 0) continue;
        if (layer >= 0) snprintf(buf, len, "blk.%d.%s", layer, t[i].gguf);
        else snprintf(buf, len, "%s", t[i].gguf);
        return buf;
    }
    return NULL;
}

const char *g4_hf_text_name(const char *full, int *layer) {
    const char *prefixes[] = {"model.language_model.", "model."};
    const char *s = NULL;
    for (int i = 0; i < 2 && !s; i++)
        if (strncmp(full, prefixes[i], strlen(prefixes[i])) == 0) s = full + strlen(prefixes[i]);
    if (!s) return NULL;
    *layer = -1;
    if (strncmp(s, "layers.", 7) == 0) {
        char *end;
        long l = strtol(s + 7, &end, 10);
        if (end == s + 7 || *end != '.' || l < 0 || l > 100000) return NULL;
        *layer = (int)l;
        s = end + 1;
    }
    char buf[256];
    return g4_gguf_name(s, *layer, buf, sizeof buf) ? s : NULL;
}
