/* The feed-forward block of a decoder layer (gemma4-architecture.md §2.2-2.3):
 * the dense GELU-gated MLP, and on MoE layers the experts beside it, each
 * branch with its own norms, summed before the final post-norm. */
#include "model/forward.h"
#include "model/moe.h"

#include "ops/activation.h"
#include "ops/matmul.h"
#include "ops/norm.h"

void g4_ffn_block(const g4_model *m, int l, g4_state *s, g4_threadpool *pool, int n) {
    const g4_config *c = &m->cfg;
    const g4_layer_weights *lw = &m->w.layer[l];
    int D = c->hidden_size, I = c->layer[l].ffn_dim;

    /* MLP(x) = W_down( gelu(W_gate x) ⊙ (W_up x) ) */
    g4_matmul_read_ahead(pool, &lw->gate_proj, n);
    for (int t = 0; t < n; t++) g4_rmsnorm(s->x + (int64_t)t * D, s->h + (int64_t)t * D, lw->pre_ffn_norm, D, c->rms_eps);
    g4_product gate_up[2] = {{&lw->gate_proj, s->x, n, s->gate}, {&lw->up_proj, s->x, n, s->up}};
    g4_matmul_batch(pool, gate_up, 2);
    g4_matmul_read_ahead(pool, &lw->down_proj, n);
    g4_gelu_gate(s->gate, s->gate, s->up, n * I);
    g4_matmul(pool, &lw->down_proj, s->gate, n, s->o);

    if (c->n_experts) {
        /* m = post_ffn_norm_1(MLP) + post_ffn_norm_2(Experts(residual)) */
        g4_moe(m, l, s, pool, n);
        for (int t = 0; t < n; t++) {
            float *o = s->o + (int64_t)t * D, *e = s->moe_out + (int64_t)t * D;
            g4_rmsnorm(o, o, lw->post_ffn_norm_1, D, c->rms_eps);
            g4_rmsnorm(e, e, lw->post_ffn_norm_2, D, c->rms_eps);
            g4_add(o, e, D);
        }
    }
    for (int t = 0; t < n; t++) {
        float *o = s->o + (int64_t)t * D;
        g4_rmsnorm(o, o, lw->post_ffn_norm, D, c->rms_eps);
        g4_add(s->h + (int64_t)t * D, o, D);
    }
}
