/* The Gemma 4 text decoder's weights: plain structs that mirror the
 * architecture (gemma4-architecture.md §2-§5). Matrices are typed views into
 * the memory-mapped checkpoint; the small vectors (norm weights, scales) are
 * decoded to float32 once at load. Optional members are absent (data == NULL
 * or pointer NULL) where the architecture has none. */
#ifndef G4_MODEL_WEIGHTS_H
#define G4_MODEL_WEIGHTS_H

#include "io/checkpoint.h"
#include "io/gguf.h"
#include "model/config.h"
#include "ops/tensor.h"

typedef struct g4_layer_weights {
    /* attention */
    float *input_norm;          /* [D] */
    g4_tensor q_proj;           /* [Hq·hd, D] */
    float *q_norm;              /* [hd] */
    g4_tensor k_proj;           /* [Hkv·hd, D]; absent on KV-shared layers */
    float *k_norm;              /* [hd]; absent on KV-shared layers */
    g4_tensor v_proj;           /* [Hkv·hd, D]; absent on k=v and KV-shared layers */
    g4_tensor o_proj;           /* [D, Hq·hd] */
    float *post_attn_norm;      /* [D] */
    float *rope_inv_freq;       /* [rope_pairs] */

    /* dense gated MLP */
    float *pre_ffn_norm;        /* [D] */
    g4_tensor gate_proj, up_proj; /* [I, D] */
    g4_tensor down_proj;        /* [D, I] */
    float *post_ffn_norm;       /* [D] (applied to the sum on MoE layers) */

    /* mixture of experts (26B-A4B) */
    float *post_ffn_norm_1;     /* [D] dense branch output */
    float *pre_ffn_norm_2;      /* [D] expert input */
    float *post_ffn_norm_2;     /* [D] expert output */
    g4_tensor router_proj;      /* [E, D] */
    float *router_scale;        /* [D] */
    float *router_expert_scale; /* [E] per_expert_scale */
    g4_tensor experts_gate_up;  /* [E, 2·Im, D]: rows 0..Im-1 gate, Im..2Im-1 up */
    g4_tensor experts_gate, experts_up; /* [E, Im, D] each: GGUF files may split them instead */
    g4_tensor experts_down;     /* [E, D, Im] */

    /* Per-Layer Embeddings (E2B/E4B) */
    g4_tensor ple_gate;         /* [P, D] per_layer_input_gate */
    g4_tensor ple_proj;         /* [D, P] per_layer_projection */
    float *ple_post_norm;       /* [D] post_per_layer_input_norm */

    float layer_scalar;         /* multiplies the whole residual stream at the end of the layer */
} g4_layer_weights;

typedef struct g4_weights {
    g4_tensor embed;            /* [V, D]; also the (tied) LM head */
    float embed_scale;          /* √D rounded to the table's dtype, as transformers multiplies */
    g4_tensor ple_embed;        /* [V_ple, L·P] embed_tokens_per_layer */
    float ple_embed_scale;      /* √P rounded likewise */
    g4_tensor ple_model_proj;   /* [L·P, D] per_layer_model_projection */
    float *ple_proj_norm;       /* [P] per_layer_projection_norm */
    float *final_norm;          /* [D] */
    g4_tensor lm_head;          /* [V, D] */
    g4_layer_weights *layer;    /* [L] */
    float *vectors;             /* one allocation behind every float* above */
    void **repacked;            /* buffers of the matrices model/repack.c regrouped */
    int n_repacked;
} g4_weights;

/* Binds every tensor the config calls for, checking names, shapes and dtypes,
 * from a Hugging Face checkpoint (ckpt) or a GGUF file (gguf; the other is
 * NULL). Tensors of the vision and audio towers (and K/V projections stored
 * for KV-shared layers, which transformers ignores) are left alone. */
int g4_weights_bind(g4_weights *w, const g4_config *cfg, const g4_checkpoint *ckpt, const gguf_file *gguf, g4_error *err);
void g4_weights_free(g4_weights *w, const g4_config *cfg);

/* Row `row` of an embedding table (the token or per-layer table, read in
 * place from the mapped file), as float. The table's mapped pages around the
 * row are then handed back: the kernel maps whole large folios around a
 * fault, so a 512-token prompt would otherwise keep hundreds of MB of
 * tables resident for a few KB of rows. */
void g4_embedding_row(const g4_tensor *table, int64_t row, float *out);

/* Name (GGUF) and shape of every tensor the config calls for, in loading
 * order: what a synthetic model must hold. *out is malloc'ed. */
typedef struct g4_tensor_spec {
    char name[64];
    int ndim;
    int64_t shape[3];
} g4_tensor_spec;
int g4_weights_list(const g4_config *cfg, g4_tensor_spec **out, int *n, g4_error *err);

#endif
