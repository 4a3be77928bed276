/* Per-Layer Embeddings (E2B/E4B, gemma4-architecture.md §4): every layer gets
 * its own P-wide input per token, made of a token part (a row of a large
 * table, read one row per token from the mapped file) and a context part
 * (a projection of the input embedding). */
#include "model/forward.h"

#include "ops/activation.h"
#include "ops/matmul.h"
#include "ops/norm.h"

#include <math.h>

void g4_ple_inputs(const g4_model *m, g4_state *s, g4_threadpool *pool, const g4_batch *b) {
    const g4_config *c = &m->cfg;
    const g4_weights *w = &m->w;
    int D = c->hidden_size, L = c->n_layers, P = c->ple_dim, LP = L * P;
    /* context part: (W_plm · h0) · D^-0.5, RMS-normed per layer */
    g4_matmul(pool, &w->ple_model_proj, s->h, b->n, s->ple);
    float d_scale = (float)(1.0 / sqrt((double)D)), mix = (float)(1.0 / sqrt(2.0));
    for (int t = 0; t < b->n; t++) {
        float *row = s->ple + (int64_t)t * LP;
        g4_scale(row, LP, d_scale);
        for (int l = 0; l < L; l++) g4_rmsnorm(row + l * P, row + l * P, w->ple_proj_norm, P, c->rms_eps);
        /* token part: multimodal soft tokens look up the pad id */
        int id = b->embd_row && b->embd_row[t] ? c->pad_token_id : b->token[t];
        g4_embedding_row(&w->ple_embed, id, s->ple_row);
        for (int i = 0; i < LP; i++) row[i] = (row[i] + s->ple_row[i] * w->ple_embed_scale) * mix;
    }
}

void g4_ple_block(const g4_model *m, int l, g4_state *s, g4_threadpool *pool, int n) {
    const g4_config *c = &m->cfg;
    const g4_layer_weights *lw = &m->w.layer[l];
    int D = c->hidden_size, P = c->ple_dim, LP = c->n_layers * P;
    /* h += post_norm( W_proj( gelu(W_gate h) ⊙ ple_l ) ) */
    g4_matmul_read_ahead(pool, &lw->ple_gate, n);
    g4_matmul(pool, &lw->ple_gate, s->h, n, s->ple_gate);
    g4_matmul_read_ahead(pool, &lw->ple_proj, n);
    for (int t = 0; t < n; t++) {
        float *g = s->ple_gate + (int64_t)t * P;
        const float *ple = s->ple + (int64_t)t * LP + (int64_t)l * P;
        for (int i = 0; i < P; i++) g[i] = g4_gelu_tanh(g[i]) * ple[i];
    }
    g4_matmul(pool, &lw->ple_proj, s->ple_gate, n, s->o);
    for (int t = 0; t < n; t++) {
        float *o = s->o + (int64_t)t * D;
        g4_rmsnorm(o, o, lw->ple_post_norm, D, c->rms_eps);
        g4_add(s->h + (int64_t)t * D, o, D);
    }
}
