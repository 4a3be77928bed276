#include "model/moe.h"

#include "ops/activation.h"
#include "ops/matmul.h"
#include "ops/norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Router logits of every row at once (one matrix product): the router
 * reads the FFN block's residual input through a weightless RMSNorm, then
 * the learned scale vector, then D^-0.5. z: scratch [n][D]; logits: [n][E]. */
static void router_logits(const g4_model *m, int l, g4_threadpool *pool, const float *residual, int n, float *z,
                          float *logits) {
    const g4_config *c = &m->cfg;
    const g4_layer_weights *lw = &m->w.layer[l];
    int D = c->hidden_size;
    float root = (float)(1.0 / sqrt((double)D));
    g4_matmul_read_ahead(pool, &lw->router_proj, n);
    for (int t = 0; t < n; t++) {
        float *zt = z + (int64_t)t * D;
        g4_rmsnorm(zt, residual + (int64_t)t * D, NULL, D, c->rms_eps);
        for (int i = 0; i < D; i++) zt[i] = zt[i] * lw->router_scale[i] * root;
    }
    g4_matmul(pool, &lw->router_proj, z, n, logits);
}

void g4_moe_route(const g4_model *m, int l, float *logits, int *experts, float *weights) {
    const g4_config *c = &m->cfg;
    const g4_layer_weights *lw = &m->w.layer[l];
    int E = c->n_experts, K = c->top_k_experts;
    g4_softmax(logits, E); /* over all experts, before the top-k */

    /* Top-k by probability (ties: lower index first). */
    for (int k = 0; k < K; k++) experts[k] = -1;
    float sum = 0;
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= experts[j] == e;
            if (!taken && (best < 0 || logits[e] > logits[best])) best = e;
        }
        experts[k] = best;
        sum += logits[best];
    }
    /* ascending expert order, the order the reference accumulates in */
    for (int i = 1; i < K; i++)
        for (int j = i; j > 0 && experts[j - 1] > experts[j]; j--) {
            int tmp = experts[j];
            experts[j] = experts[j - 1];
            experts[j - 1] = tmp;
        }
    for (int k = 0; k < K; k++) weights[k] = logits[experts[k]] / sum * lw->router_expert_scale[experts[k]];
}

/* Experts a wave: two products each when gate and up are apart. */
#define G4_MOE_WAVE (G4_MATMUL_BATCH / 2)

/* The experts of one wave: their rows are gathered end to end in s->moe_in
 * (expert i's from row first[i]), so all their gate/up products run as one
 * parallel job and all their down products as another. */
typedef struct {
    int expert[G4_MOE_WAVE];
    int first[G4_MOE_WAVE + 1];
    int k;
} moe_wave;

static void run_wave(const g4_model *m, int l, g4_state *s, g4_threadpool *pool, const moe_wave *w) {
    const g4_layer_weights *lw = &m->w.layer[l];
    int D = m->cfg.hidden_size, Im = m->cfg.moe_dim, rows = w->first[w->k];
    int fused = lw->experts_gate_up.data != NULL;
    g4_tensor mats[2 * G4_MOE_WAVE];
    g4_product p[2 * G4_MOE_WAVE];
    int np = 0;
    for (int i = 0; i < w->k; i++) {
        int e = w->expert[i], r0 = w->first[i], nr = w->first[i + 1] - r0;
        const float *x = s->moe_in + (int64_t)r0 * D;
        if (fused) { /* [rows][2·Im]: gate, then up */
            mats[np] = g4_tensor_index0(&lw->experts_gate_up, e);
            p[np] = (g4_product){&mats[np], x, nr, s->gate + (int64_t)r0 * 2 * Im}, np++;
        } else {
            mats[np] = g4_tensor_index0(&lw->experts_gate, e);
            p[np] = (g4_product){&mats[np], x, nr, s->gate + (int64_t)r0 * Im}, np++;
            mats[np] = g4_tensor_index0(&lw->experts_up, e);
            p[np] = (g4_product){&mats[np], x, nr, s->up + (int64_t)r0 * Im}, np++;
        }
    }
    g4_matmul_batch(pool, p, np);
    g4_tensor first_down = g4_tensor_index0(&lw->experts_down, w->expert[0]);
    g4_matmul_read_ahead(pool, &first_down, w->first[1]);

    float *act; /* [rows][Im] gelu(gate) ⊙ up */
    if (fused) {
        for (int r = 0; r < rows; r++) {
            float *gu = s->gate + (int64_t)r * 2 * Im;
            g4_gelu_gate(s->up + (int64_t)r * Im, gu, gu + Im, Im);
        }
        act = s->up;
    } else {
        g4_gelu_gate(s->gate, s->gate, s->up, rows * Im);
        act = s->gate;
    }
    for (int i = 0; i < w->k; i++) { /* the outputs replace the inputs, no longer needed */
        int r0 = w->first[i];
        mats[i] = g4_tensor_index0(&lw->experts_down, w->expert[i]);
        p[i] = (g4_product){&mats[i], act + (int64_t)r0 * Im, w->first[i + 1] - r0, s->moe_in + (int64_t)r0 * D};
    }
    g4_matmul_batch(pool, p, w->k);

    for (int r = 0; r < rows; r++) { /* experts in increasing index order, as the reference adds them */
        float *out = s->moe_out + (int64_t)s->moe_rows[r] * D, *y = s->moe_in + (int64_t)r * D, wt = s->moe_row_weight[r];
        for (int i = 0; i < D; i++) out[i] += wt * y[i];
    }
}

/* Rows are grouped by expert so each chosen expert's matrices are read once
 * per batch; experts go in waves of as many as s->moe_cap rows hold (a
 * decode step's top-k fit in one). */
void g4_moe(const g4_model *m, int l, g4_state *s, g4_threadpool *pool, int n) {
    const g4_config *c = &m->cfg;
    const g4_layer_weights *lw = &m->w.layer[l];
    int D = c->hidden_size, E = c->n_experts, K = c->top_k_experts;

    /* s->gate is free until the experts run: it holds the router logits */
    router_logits(m, l, pool, s->h, n, s->moe_in, s->gate);
    for (int t = 0; t < n; t++) {
        g4_moe_route(m, l, s->gate + (int64_t)t * E, s->moe_experts + (int64_t)t * K, s->moe_weights + (int64_t)t * K);
        if (t == 0) { /* the first expert in wave order */
            g4_tensor first = g4_tensor_index0(lw->experts_gate_up.data ? &lw->experts_gate_up : &lw->experts_gate,
                                               s->moe_experts[0]);
            g4_matmul_read_ahead(pool, &first, n);
        }
        g4_rmsnorm(s->moe_x + (int64_t)t * D, s->h + (int64_t)t * D, lw->pre_ffn_norm_2, D, c->rms_eps);
    }
    memset(s->moe_out, 0, sizeof(float) * (size_t)n * D);

    moe_wave w = {.k = 0};
    for (int e = 0; e < E; e++) {
        int count = 0;
        for (int i = 0; i < n * K; i++) count += s->moe_experts[i] == e;
        if (!count) continue; /* the other experts' weights are never touched */
        if (w.k == G4_MOE_WAVE || w.first[w.k] + count > s->moe_cap) {
            run_wave(m, l, s, pool, &w);
            w.k = 0;
        }
        int rows = w.first[w.k];
        for (int t = 0; t < n; t++)
            for (int k = 0; k < K; k++)
                if (s->moe_experts[(int64_t)t * K + k] == e) {
                    s->moe_rows[rows] = t;
                    s->moe_row_weight[rows] = s->moe_weights[(int64_t)t * K + k];
                    memcpy(s->moe_in + (int64_t)rows * D, s->moe_x + (int64_t)t * D, sizeof(float) * (size_t)D);
                    rows++;
                }
        w.expert[w.k++] = e;
        w.first[w.k] = rows;
    }
    if (w.k) run_wave(m, l, s, pool, &w);
}
