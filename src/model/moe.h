/* Mixture of experts beside the dense MLP (26B-A4B, gemma4-architecture.md §5). */
#ifndef G4_MODEL_MOE_H
#define G4_MODEL_MOE_H

#include "model/forward.h"

/* Routes each of the n rows of the residual stream s->h to its top-k experts
 * and leaves the weighted sum of their outputs in s->moe_out. */
void g4_moe(const g4_model *m, int l, g4_state *s, g4_threadpool *pool, int n);

/* The router's choice for one row from its logits (n_experts floats,
 * overwritten with the probabilities): top_k expert indices (ascending) and
 * their weights (softmax over all experts, renormalised over the chosen,
 * times per_expert_scale). */
void g4_moe_route(const g4_model *m, int l, float *logits, int *experts, float *weights);

#endif
