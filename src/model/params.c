#include "model/params.h"

g4_param_count g4_count_params(const g4_config *c) {
    g4_param_count n = {0};
    uint64_t D = (uint64_t)c->hidden_size, V = (uint64_t)c->vocab_size, L = (uint64_t)c->n_layers, P = (uint64_t)c->ple_dim;
    uint64_t E = (uint64_t)c->n_experts, Im = (uint64_t)c->moe_dim, Hq = (uint64_t)c->n_heads;
    n.embeddings = V * D + (P ? (uint64_t)c->ple_vocab * L * P : 0);
    n.total = n.embeddings + D /* final norm */ + (P ? L * P * D + P : 0);
    for (int l = 0; l < c->n_layers; l++) {
        const g4_layer_config *lc = &c->layer[l];
        uint64_t hd = (uint64_t)lc->head_dim, kv = (uint64_t)lc->n_kv_heads, I = (uint64_t)lc->ffn_dim;
        uint64_t layer = 2 * Hq * hd * D + hd + 4 * D + 3 * I * D; /* q, o, q_norm, sandwich norms, MLP */
        if (lc->kv_source == l) layer += kv * hd * D * (lc->k_eq_v ? 1 : 2) + hd;
        if (E) {
            uint64_t experts = E * 3 * Im * D;
            n.experts += experts;
            layer += experts + E * D + D + E + 3 * D;
        }
        if (P) layer += 2 * P * D + D;
        n.total += layer;
    }
    uint64_t unused_experts = E ? n.experts / E * (E - (uint64_t)c->top_k_experts) : 0;
    uint64_t ple_table = P ? (uint64_t)c->ple_vocab * L * P : 0;
    n.active = n.total - unused_experts - ple_table + (P ? L * P : 0);
    return n;
}
