/* The Gemma 4 decoder on the device, block by block as src/model/forward.c,
 * attention.c, ffn.c, moe.c and ple.c (gemma4-architecture.md §2-§5):
 * scaled embeddings, per-layer inputs, L decoder layers, final norm, tied LM
 * head, logit soft-cap. Activations are float32; weights stay in their
 * storage type and are widened inside the matmul kernels. Every launch goes
 * to the context's stream; the host waits once, for the logits. */
#include "cuda/gpu.h"

extern "C" {
#include "ops/matmul.h"
}

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* As check_batch in forward.c: everything is checked before anything is written. */
static int check_batch(g4_gpu_context *c, const g4_batch *b, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    if (b->n < 1 || b->n > c->n_batch) return g4_fail(err, "batch of %d tokens; this context takes 1 to %d", b->n, c->n_batch);
    memset(c->seq_new, 0, sizeof(int) * (size_t)c->n_seq);
    for (int t = 0; t < b->n; t++) {
        int seq = b->seq ? b->seq[t] : 0;
        if (seq < 0 || seq >= c->n_seq) return g4_fail(err, "token %d: sequence %d out of range (0..%d)", t, seq, c->n_seq - 1);
        int is_embd = b->embd_row && b->embd_row[t];
        if (!is_embd && (b->token[t] < 0 || b->token[t] >= cfg->vocab_size))
            return g4_fail(err, "token id %d out of range (vocabulary of %d)", b->token[t], cfg->vocab_size);
        if (!is_embd && cfg->ple_dim && b->token[t] >= cfg->ple_vocab)
            return g4_fail(err, "token id %d has no per-layer embedding (table of %d)", b->token[t], cfg->ple_vocab);
        int expect = c->n_past[seq] + c->seq_new[seq]++;
        if (b->pos[t] != expect)
            return g4_fail(err, "token %d of sequence %d has position %d; the sequence continues at %d", t, seq, b->pos[t], expect);
    }
    for (int seq = 0; seq < c->n_seq; seq++)
        if (c->n_past[seq] + c->seq_new[seq] > c->n_ctx)
            return g4_fail(err, "context full: %d positions requested, the context holds %d", c->n_past[seq] + c->seq_new[seq],
                           c->n_ctx);
    return 0;
}

static int wants_logits(const g4_batch *b, int t) { return b->want_logits ? b->want_logits[t] != 0 : t == b->n - 1; }

/* Host side of a batch, before anything is enqueued: token ids, positions,
 * sequences, the rows that want logits, and the per-layer embedding rows,
 * all into pinned buffers the device copies from (a replayed graph too).
 * The previous batch has finished with them: every forward ends in a sync. */
static int stage_batch(g4_gpu_context *c, const g4_batch *b) {
    const g4_gpu_model *g = c->gm;
    const g4_config *cfg = g->cfg;
    int n = b->n, nb = c->n_batch, k = 0;
    int32_t *tok = c->h_ints, *pos = tok + nb, *seq = pos + nb, *rows = seq + nb;
    int32_t *row_pos = rows + nb, *row_seq = row_pos + nb; /* the logit rows' positions and sequences */
    for (int t = 0; t < n; t++) {
        int is_embd = b->embd_row && b->embd_row[t];
        tok[t] = is_embd ? cfg->pad_token_id : b->token[t]; /* soft tokens look up the pad id's per-layer row */
        pos[t] = b->pos[t];
        seq[t] = b->seq ? b->seq[t] : 0;
        if (!wants_logits(b, t)) continue;
        row_pos[k] = pos[t];
        row_seq[k] = seq[t];
        rows[k++] = t;
    }
    int64_t LP = (int64_t)cfg->n_layers * cfg->ple_dim;
    for (int t = 0; LP && t < n; t++) { /* the per-layer table stays in host memory: one row per token */
        if (g->ple_embed && g->ple_embed->data) g4_row_to_f32(g->ple_embed, tok[t], c->h_ple + t * LP);
        else memset(c->h_ple + t * LP, 0, sizeof(float) * LP); /* synthetic model: no table */
    }
    return k;
}

static int upload_batch(g4_gpu_context *c, int n, int n_rows, g4_error *err) {
    int nb = c->n_batch;
    int32_t *tok = c->h_ints, *pos = tok + nb, *seq = pos + nb, *rows = seq + nb;
    CUDA_TRY(cudaMemcpyAsync(c->d_token, tok, sizeof(int32_t) * n, cudaMemcpyHostToDevice, c->stream));
    CUDA_TRY(cudaMemcpyAsync(c->d_pos, pos, sizeof(int32_t) * n, cudaMemcpyHostToDevice, c->stream));
    CUDA_TRY(cudaMemcpyAsync(c->d_seq, seq, sizeof(int32_t) * n, cudaMemcpyHostToDevice, c->stream));
    if (n_rows) CUDA_TRY(cudaMemcpyAsync(c->d_rows, rows, sizeof(int32_t) * n_rows, cudaMemcpyHostToDevice, c->stream));
    return 0;
}

static int embed(g4_gpu_context *c, const g4_batch *b, g4_error *err) {
    const g4_gpu_model *g = c->gm;
    int64_t D = g->cfg->hidden_size;
    gpu_embed(c->stream, &g->embed, c->d_token, b->n, g->embed_scale, c->h);
    for (int t = 0; b->embd_row && t < b->n; t++) /* multimodal soft tokens, not scaled */
        if (b->embd_row[t])
            CUDA_TRY(cudaMemcpyAsync(c->h + t * D, b->embd + t * D, sizeof(float) * D, cudaMemcpyHostToDevice, c->stream));
    return 0;
}

/* Per-layer inputs (ple.c): the context part projected on the device, the
 * token part (staged by stage_batch) copied over and mixed in. */
static int ple_inputs(g4_gpu_context *c, int n, g4_error *err) {
    const g4_gpu_model *g = c->gm;
    const g4_config *cfg = g->cfg;
    int64_t D = cfg->hidden_size, L = cfg->n_layers, P = cfg->ple_dim, LP = L * P;
    TRY(gpu_matmul(c, &g->ple_model_proj, c->h, D, n, c->ple, LP, err));
    CUDA_TRY(cudaMemcpyAsync(c->ple_tok, c->h_ple, sizeof(float) * n * LP, cudaMemcpyHostToDevice, c->stream));
    gpu_ple_combine(c->stream, c->ple, c->ple_tok, n, (int)L, (int)P, g->ple_proj_norm, (float)(1.0 / sqrt((double)D)),
                    g->ple_embed_scale, cfg->rms_eps);
    return 0;
}

/* A prompt chunk of a bf16 model: the norms and the GELU gate write bf16
 * directly for the tensor-core products (the same rounding as converting
 * their float32 output, one pass less over the activations). */
static int bf16_prefill(const g4_gpu_context *c, const gpu_matrix *const *w, int k, int n) {
    int ok = n >= c->gemm_min_rows;
    for (int i = 0; i < k; i++) ok &= gpu_gemm_in_bf16(w[i]->dtype);
    return ok;
}

/* The products that read the attention block's input: q, and k and v unless
 * the layer reads another layer's cache (KV-shared) or V is K (k = v). */
static int attention_inputs(const g4_gpu_context *c, int l, const gpu_matrix **proj) {
    const g4_layer_config *lc = &c->gm->cfg->layer[l];
    const gpu_layer *w = &c->gm->layer[l];
    proj[0] = &w->q_proj;
    proj[1] = &w->k_proj;
    proj[2] = &w->v_proj;
    return lc->kv_source != l ? 1 : lc->k_eq_v ? 2 : 3;
}

static gpu_norm_out norm_into(float *out, __nv_bfloat16 *out_bf16, int64_t stride, const float *w, float extra) {
    gpu_norm_out o = {out, out_bf16, stride, w, extra};
    return o;
}

/* The norms a chain ends with: the inputs of layer l's attention block (none
 * past the last layer; the final norm gathers only the rows that want logits). */
static void attention_norms(const g4_gpu_context *c, int l, int n, gpu_row_chain *ch) {
    if (l >= c->gm->cfg->n_layers) return;
    const gpu_matrix *proj[3];
    int bf16 = bf16_prefill(c, proj, attention_inputs(c, l, proj), n);
    int64_t D = c->gm->cfg->hidden_size;
    ch->out[ch->n_out++] = norm_into(c->x, bf16 ? c->x_bf16 : NULL, D, c->gm->layer[l].input_norm, 1.0f);
}

/* ... and of layer l's feed-forward block: the MLP's input, and on MoE layers
 * the router's (weightless norm, learned scale, D^-0.5) and the experts'. */
static void ffn_norms(const g4_gpu_context *c, int l, int n, gpu_row_chain *ch) {
    const g4_config *cfg = c->gm->cfg;
    const gpu_layer *w = &c->gm->layer[l];
    const gpu_matrix *proj[3] = {&w->gate_proj, &w->up_proj, &w->down_proj};
    int64_t D = cfg->hidden_size;
    ch->out[ch->n_out++] = norm_into(c->x, bf16_prefill(c, proj, 3, n) ? c->x_bf16 : NULL, D, w->pre_ffn_norm, 1.0f);
    if (!cfg->n_experts) return;
    ch->out[ch->n_out++] = norm_into(c->router_x, NULL, D, w->router_scale, (float)(1.0 / sqrt((double)D)));
    ch->out[ch->n_out++] = norm_into(c->moe_x, NULL, D, w->pre_ffn_norm_2, 1.0f);
}

static gpu_row_chain residual(const float *o, const float *post, float scale) {
    gpu_row_chain ch;
    memset(&ch, 0, sizeof ch);
    ch.o = o;
    ch.post = post;
    ch.scale = scale;
    return ch;
}

static void run_chain(g4_gpu_context *c, const gpu_row_chain *ch, int n) {
    gpu_row_chain_run(c->stream, c->h, ch, n, c->gm->cfg->hidden_size, c->gm->cfg->rms_eps);
}

/* Decode: the q/k norms and RoPE inside the attention kernel, one launch
 * less on the critical path (H100, every layer fused: 26B-A4B bf16 269.5 →
 * 272.2 t/s). Its blocks are resident early, waiting for the q/k/v product,
 * and hold their warps meanwhile; where that product needs two waves of the
 * device's warps (the 31B's 16384 rows: 1.94 waves) they hold back its second
 * wave (31B fused: 44.77 → 44.23 t/s), so such layers keep the separate
 * kernel. The threshold, 1.5 waves, fuses every layer of the 26B-A4B (its
 * full-attention layers' 9216 rows are 1.09 waves) and none of the 31B's
 * (measured against the other choice on one machine start: 26B-A4B 240.0
 * against 238.1 with another experiment on, 31B 43.67 against 43.14).
 * G4_GPU_FUSE_ROPE=0/1 forces either. */
static int fuse_rope(const g4_gpu_context *c, int64_t qkv_rows) {
    return c->fuse_rope >= 0 ? c->fuse_rope : 2 * qkv_rows <= 3 * gpu_resident_warps();
}

/* attention.c: (input norm, done by the chain before) q/k/v, norms and RoPE,
 * the cache write, attention, output projection, residual and the FFN's input norms. */
static int attention_block(g4_gpu_context *c, int l, int n, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    const g4_layer_config *lc = &cfg->layer[l];
    const gpu_layer *w = &c->gm->layer[l];
    int D = cfg->hidden_size, hd = lc->head_dim, q_dim = cfg->n_heads * hd, kv_dim = lc->n_kv_heads * hd;

    const gpu_matrix *proj[3];
    int n_proj = attention_inputs(c, l, proj);
    float *out[3] = {c->q, c->k, c->v};
    int64_t out_stride[3] = {q_dim, kv_dim, kv_dim};
    if (bf16_prefill(c, proj, n_proj, n)) TRY(gpu_matmul_gemm_multi(c, proj, out, out_stride, n_proj, NULL, 0, n, 1, err));
    else TRY(gpu_matmul_multi(c, proj, out, out_stride, n_proj, c->x, D, n, err));
    MARK("qkv");
    gpu_qk_rope r;
    memset(&r, 0, sizeof r);
    r.q = c->q;
    r.n_heads = cfg->n_heads;
    r.n_kv = lc->n_kv_heads;
    r.hd = hd;
    r.n_pairs = lc->rope_pairs;
    r.q_norm = w->q_norm;
    r.k_norm = w->k_norm;
    r.inv_freq = w->rope_inv_freq;
    if (lc->kv_source == l) { /* k = v layers: V is the raw K projection, before k_norm and RoPE */
        r.k_raw = c->k;
        r.v_raw = lc->k_eq_v ? c->k : c->v;
        r.kv = c->kv[l];
    }
    r.pos = c->d_pos;
    r.seq = c->d_seq;
    r.eps = cfg->rms_eps;
    int window = lc->attn == G4_ATTN_SLIDING ? cfg->sliding_window : 0;
    const gpu_kv_layer *kv = &c->kv[lc->kv_source];
    r.attn_kv = *kv;
    r.window = window;
    r.prefetch_keys = c->attn_prefetch_keys;
    /* a prompt chunk large enough for the tensor cores (the same switch as the matmuls; float32
     * models keep float32 attention, as their matmuls keep SGEMM): cuBLAS where the scores fit,
     * else the flash-style kernel */
    int p0 = c->host_pos[0], seq = c->host_seq[0];
    int tc = c->one_prompt && n >= c->gemm_min_rows && w->q_proj.dtype != G4_DTYPE_F32;
    if (n == 1 && fuse_rope(c, q_dim + kv_dim * (n_proj - 1))) {
        gpu_attention_rope(c->stream, &r, c->attn, &c->attn_split);
    } else {
        gpu_qk_rope_run(c->stream, &r, n);
        MARK("qk norm+rope");
        if (!(tc && (gpu_attention_gemm(c->gm->cublas, c->stream, &c->attn_scratch, c->q, n, cfg->n_heads, hd, kv, window,
                                        p0, seq, c->attn) == 0 ||
                     gpu_attention_prefill(c->stream, c->q, n, cfg->n_heads, hd, kv, window, c->d_pos, c->d_seq,
                                           c->attn) == 0)))
            gpu_attention(c->stream, c->q, n, cfg->n_heads, hd, kv, window, c->d_pos, c->d_seq, c->attn, &c->attn_split);
    }
    CUDA_TRY(cudaGetLastError());
    MARK("attention");
    TRY(gpu_matmul(c, &w->o_proj, c->attn, q_dim, n, c->o, D, err));
    MARK("o_proj");
    gpu_row_chain ch = residual(c->o, w->post_attn_norm, 1.0f);
    ffn_norms(c, l, n, &ch);
    run_chain(c, &ch, n);
    MARK("chain (ffn in)");
    return 0;
}

/* moe.c: router and the chosen experts, from the norms ffn_norms made; the
 * weighted sum is the next chain's first step. */
static int moe(g4_gpu_context *c, int l, int n, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    const gpu_layer *w = &c->gm->layer[l];
    int D = cfg->hidden_size, E = cfg->n_experts, K = cfg->top_k_experts, Im = cfg->moe_dim;
    MARK("moe start");
    if (n < c->gemm_min_rows && c->route_done) {
        gpu_route r = {c->route_done, K, w->router_expert_scale, c->moe_experts, c->moe_weights};
        TRY(gpu_matmul_route(c, &w->router_proj, c->router_x, D, n, c->router, &r, err));
    } else {
        TRY(gpu_matmul(c, &w->router_proj, c->router_x, D, n, c->router, E, err));
        MARK("router");
        gpu_moe_topk(c->stream, c->router, n, E, K, w->router_expert_scale, c->moe_experts, c->moe_weights);
    }
    MARK("top-k");
    if (n >= c->gemm_min_rows && gpu_gemm_in_bf16(w->experts_gate_up.dtype) && gpu_gemm_in_bf16(w->experts_down.dtype)) {
        TRY(gpu_experts_gemm(c, &w->experts_gate_up, &w->experts_down, n, K, err));
    } else {
        TRY(gpu_matmul_grouped(c, &w->experts_gate_up, c->moe_experts, c->moe_x, D, K, n * K, c->moe_act, Im, 1, err));
        MARK("experts gate/up");
        TRY(gpu_matmul_grouped(c, &w->experts_down, c->moe_experts, c->moe_act, Im, 1, n * K, c->moe_y, D, 0, err));
        MARK("experts down");
        c->moe_out = c->moe_y;
        c->moe_out_rows = NULL;
    }
    return 0;
}

/* Decode's MoE layers run one branch on the side stream beside the other on
 * the main one; each alone is short of work for the whole GPU. (Prompts
 * run them one after the other on one stream: cuBLAS's workspace is per
 * handle, and both use the bf16 activation buffer.) */
static int on_side(g4_gpu_context *c, int (*branch)(g4_gpu_context *, int, int, g4_error *), int l, int n, g4_error *err) {
    CUDA_TRY(cudaEventRecord(c->fork, c->stream));
    CUDA_TRY(cudaStreamWaitEvent(c->side, c->fork, 0));
    cudaStream_t main_stream = c->stream;
    c->stream = c->side;
    int rc = branch(c, l, n, err);
    c->stream = main_stream;
    TRY(rc);
    CUDA_TRY(cudaEventRecord(c->join, c->side));
    return 0;
}

/* The dense GELU-gated MLP: c->x → c->o. */
static int dense_mlp(g4_gpu_context *c, int l, int n, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    const gpu_layer *w = &c->gm->layer[l];
    int D = cfg->hidden_size, I = cfg->layer[l].ffn_dim;
    const gpu_matrix *proj[3] = {&w->gate_proj, &w->up_proj, &w->down_proj};
    int64_t d_stride = D;
    if (bf16_prefill(c, proj, 3, n)) {
        float *out[2] = {c->gate, c->up};
        int64_t out_stride[2] = {I, I};
        TRY(gpu_matmul_gemm_multi(c, proj, out, out_stride, 2, NULL, 0, n, 1, err));
        gpu_gelu_gate_bf16(c->stream, c->x_bf16, c->gate, c->up, I, n, I);
        TRY(gpu_matmul_gemm_multi(c, proj + 2, &c->o, &d_stride, 1, NULL, 0, n, 1, err));
    } else if (n < c->gemm_min_rows && w->gate_proj.dtype == w->up_proj.dtype) {
        TRY(gpu_matmul_glu(c, &w->gate_proj, &w->up_proj, c->x, D, n, c->gate, I, err));
        MARK("mlp gate/up");
        TRY(gpu_matmul(c, &w->down_proj, c->gate, I, n, c->o, D, err));
        MARK("mlp down");
    } else {
        float *out[2] = {c->gate, c->up};
        int64_t out_stride[2] = {I, I};
        TRY(gpu_matmul_multi(c, proj, out, out_stride, 2, c->x, D, n, err));
        gpu_gelu_gate(c->stream, c->gate, I, c->gate, I, c->up, I, n, I);
        TRY(gpu_matmul(c, &w->down_proj, c->gate, I, n, c->o, D, err));
    }
    return 0;
}

static int ffn_out(g4_gpu_context *c, int l, int n, float post_scale);

/* ffn.c: the dense MLP, and on MoE layers the experts beside it, then the
 * residual and the norms of what comes next.
 * post_scale: the layer scalar when no PLE block follows.
 * At decode the experts (router, top-k, gate/up, down: the longer branch)
 * stay on the main stream for bf16 and f32 weights, so each of their
 * kernels starts under its predecessor's programmatic launch, and the dense
 * MLP goes beside them (H100, 26B-A4B bf16: 259.8 → 269.6 t/s). Quantised
 * experts stay beside the MLP (Q4_0: 260.3 against 257.3 the other way).
 * G4_GPU_EXPERTS_MAIN=0/1 forces either. */
static int ffn_block(g4_gpu_context *c, int l, int n, float post_scale, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    int beside = cfg->n_experts && n < c->gemm_min_rows;
    g4_dtype experts_type = c->gm->layer[l].experts_gate_up.dtype;
    int experts_main = c->experts_on_main >= 0 ? c->experts_on_main
                                               : experts_type == G4_DTYPE_BF16 || experts_type == G4_DTYPE_F32;
    if (beside && experts_main) {
        TRY(on_side(c, dense_mlp, l, n, err));
        TRY(moe(c, l, n, err));
    } else {
        if (beside) TRY(on_side(c, moe, l, n, err));
        TRY(dense_mlp(c, l, n, err));
        if (!beside && cfg->n_experts) TRY(moe(c, l, n, err));
    }
    if (beside) CUDA_TRY(cudaStreamWaitEvent(c->stream, c->join, 0));
    MARK("moe join");
    return ffn_out(c, l, n, post_scale);
}

/* After the feed-forward products: the experts' sum, residual, next norms. */
static int ffn_out(g4_gpu_context *c, int l, int n, float post_scale) {
    const g4_config *cfg = c->gm->cfg;
    const gpu_layer *w = &c->gm->layer[l];
    gpu_row_chain ch = residual(c->o, w->post_ffn_norm, post_scale);
    if (cfg->n_experts) { /* m = post_ffn_norm_1(MLP) + post_ffn_norm_2(Experts(residual)) */
        ch.moe_y = c->moe_out;
        ch.moe_rows = c->moe_out_rows;
        ch.moe_weights = c->moe_weights;
        ch.K = cfg->top_k_experts;
        ch.n1 = w->post_ffn_norm_1;
        ch.n2 = w->post_ffn_norm_2;
    }
    if (!cfg->ple_dim) attention_norms(c, l + 1, n, &ch); /* the PLE block reads h itself */
    run_chain(c, &ch, n);
    MARK("chain (ffn out)");
    return 0;
}

/* ple.c: h += post_norm( W_proj( gelu(W_gate h) ⊙ ple_l ) ), then the layer scalar. */
static int ple_block(g4_gpu_context *c, int l, int n, float post_scale, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    const gpu_layer *w = &c->gm->layer[l];
    int D = cfg->hidden_size, P = cfg->ple_dim;
    int64_t LP = (int64_t)cfg->n_layers * P;
    TRY(gpu_matmul_gelu_mul(c, &w->ple_gate, c->h, D, n, c->ple_gate, P, c->ple + (int64_t)l * P, LP, err));
    TRY(gpu_matmul(c, &w->ple_proj, c->ple_gate, P, n, c->o, D, err));
    MARK("ple");
    gpu_row_chain ch = residual(c->o, w->ple_post_norm, post_scale);
    attention_norms(c, l + 1, n, &ch);
    run_chain(c, &ch, n);
    MARK("chain (ple out)");
    return 0;
}

/* Room for n_rows rows of logits on both sides; made before anything is
 * enqueued, since graphs hold these addresses (new buffers drop them). */
static int reserve_logits(g4_gpu_context *c, int n_rows, g4_error *err) {
    int64_t V = c->gm->cfg->vocab_size;
    if (n_rows <= c->logits_cap) return 0;
    cudaFreeHost(c->logits);
    cudaFree(c->d_logits);
    c->logits = NULL;
    c->d_logits = NULL;
    c->logits_cap = 0;
    gpu_graphs_drop(c);
    CUDA_TRY(cudaMallocHost((void **)&c->logits, sizeof(float) * (size_t)(n_rows * V)));
    CUDA_TRY(cudaMalloc((void **)&c->d_logits, sizeof(float) * (size_t)(n_rows * V)));
    c->logits_cap = n_rows;
    return 0;
}

/* Logits of the rows that asked for them: final norm, tied head, soft-cap, to the host. */
static int lm_head(g4_gpu_context *c, int n_rows, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    int64_t D = cfg->hidden_size, V = cfg->vocab_size;
    if (!n_rows) return 0;
    gpu_gather_rmsnorm(c->stream, c->x, c->h, c->rows_kept ? NULL : c->d_rows, n_rows, (int)D, c->gm->final_norm,
                       cfg->rms_eps);
    TRY(gpu_matmul(c, &c->gm->embed, c->x, D, n_rows, c->d_logits, V, err));
    if (cfg->final_logit_softcap > 0) gpu_softcap(c->stream, c->d_logits, n_rows * V, cfg->final_logit_softcap);
    CUDA_TRY(cudaMemcpyAsync(c->logits, c->d_logits, sizeof(float) * (size_t)(n_rows * V), cudaMemcpyDeviceToHost,
                             c->stream));
    return 0;
}

/* After the last layer that writes the KV cache, only the rows whose logits
 * are wanted affect anything (the later layers read that cache, not each
 * other's rows): they move to the front, in order, with their per-layer
 * inputs, positions and sequences, and the rest are dropped. The CPU does
 * this one layer earlier (model/forward.c, keep_logit_rows); here on E2B 20
 * of 35 layers, all the double-wide ones, run for the logit rows only. */
static int keep_logit_rows(g4_gpu_context *c, int l, int n_rows, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    int64_t D = cfg->hidden_size, LP = (int64_t)cfg->n_layers * cfg->ple_dim;
    const int32_t *rows = c->h_ints + 3 * c->n_batch;
    if (n_rows) { /* through scratch: a row may move onto one not yet read */
        gpu_gather_rows(c->stream, c->o, c->h, c->d_rows, n_rows, (int)D);
        CUDA_TRY(cudaMemcpyAsync(c->h, c->o, sizeof(float) * n_rows * D, cudaMemcpyDeviceToDevice, c->stream));
        if (LP) {
            gpu_gather_rows(c->stream, c->ple_tok, c->ple, c->d_rows, n_rows, (int)LP);
            CUDA_TRY(cudaMemcpyAsync(c->ple, c->ple_tok, sizeof(float) * n_rows * LP, cudaMemcpyDeviceToDevice,
                                     c->stream));
        }
        c->host_pos = rows + c->n_batch;
        c->host_seq = rows + 2 * c->n_batch;
        CUDA_TRY(cudaMemcpyAsync(c->d_pos, c->host_pos, sizeof(int32_t) * n_rows, cudaMemcpyHostToDevice, c->stream));
        CUDA_TRY(cudaMemcpyAsync(c->d_seq, c->host_seq, sizeof(int32_t) * n_rows, cudaMemcpyHostToDevice, c->stream));
    }
    for (int k = 1; k < n_rows; k++) c->one_prompt &= rows[k] == rows[0] + k;
    c->rows_kept = 1;
    gpu_row_chain ch = residual(NULL, NULL, 1.0f); /* the next layer's input norm, for the rows kept */
    attention_norms(c, l + 1, n_rows, &ch);
    run_chain(c, &ch, n_rows);
    MARK("logit rows kept");
    return 0;
}

/* Everything a batch does on the device, in stream order (§2.1). */
static int enqueue_forward(g4_gpu_context *c, const g4_batch *b, int n_rows, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    int n = b->n, last_kv = g4_config_last_kv_layer(cfg);
    MARK("start");
    TRY(upload_batch(c, n, n_rows, err));
    TRY(embed(c, b, err));
    if (cfg->ple_dim) TRY(ple_inputs(c, n, err));
    gpu_row_chain ch = residual(NULL, NULL, 1.0f); /* the first layer's input norm */
    attention_norms(c, 0, n, &ch);
    run_chain(c, &ch, n);
    MARK("embed");
    for (int l = 0; l < cfg->n_layers && n; l++) {
        float scalar = c->gm->layer[l].layer_scalar;
        TRY(attention_block(c, l, n, err));
        TRY(ffn_block(c, l, n, cfg->ple_dim ? 1.0f : scalar, err));
        if (cfg->ple_dim) TRY(ple_block(c, l, n, scalar, err));
        if (l == last_kv && n_rows < n && l + 1 < cfg->n_layers) {
            TRY(keep_logit_rows(c, l, n_rows, err));
            n = n_rows;
        }
    }
    TRY(lm_head(c, n_rows, err));
    MARK("lm head");
    return 0;
}

/* Small batches (decode steps) replay a CUDA graph of the whole forward:
 * one launch instead of hundreds. Every input a step changes is read from
 * device or pinned memory, so a graph recorded for a batch of n tokens (and
 * n_rows logit rows) serves every later batch of that shape. */
static int run_graph(g4_gpu_context *c, const g4_batch *b, int n_rows, g4_error *err) {
    gpu_graph *gr = &c->graphs[b->n];
    if (gr->exec && gr->n_rows != n_rows) {
        cudaGraphExecDestroy(gr->exec);
        gr->exec = NULL;
    }
    if (!gr->exec) {
        cudaGraph_t graph;
        CUDA_TRY(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal));
        int rc = enqueue_forward(c, b, n_rows, err);
        cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
        if (rc) { if (e == cudaSuccess) cudaGraphDestroy(graph); return -1; }
        CUDA_TRY(e);
        e = cudaGraphInstantiate(&gr->exec, graph, 0);
        cudaGraphDestroy(graph);
        CUDA_TRY(e);
        gr->n_rows = n_rows;
    }
    CUDA_TRY(cudaGraphLaunch(gr->exec, c->stream));
    return 0;
}

void gpu_graphs_drop(g4_gpu_context *c) {
    for (int i = 0; i <= GPU_GRAPH_MAX_TOKENS; i++)
        if (c->graphs[i].exec) {
            cudaGraphExecDestroy(c->graphs[i].exec);
            c->graphs[i].exec = NULL;
        }
}

extern "C" int g4_gpu_forward(g4_gpu_context *c, const g4_batch *b, g4_error *err) {
    c->n_logits = 0;
    TRY(check_batch(c, b, err));
    int n_rows = stage_batch(c, b);
    c->host_pos = c->h_ints + c->n_batch;
    c->host_seq = c->h_ints + 2 * c->n_batch;
    c->rows_kept = 0;
    c->one_prompt = 1;
    for (int t = 1; t < b->n; t++)
        c->one_prompt &= (b->seq ? b->seq[t] == b->seq[0] : 1) && b->pos[t] == b->pos[0] + t;
    TRY(reserve_logits(c, n_rows, err));
    /* graphs only where no product goes to cuBLAS and no soft-token rows are copied from the caller */
    int graph = c->use_graphs && b->n <= GPU_GRAPH_MAX_TOKENS && b->n < c->gemm_min_rows && !b->embd_row;
    TRY(graph ? run_graph(c, b, n_rows, err) : enqueue_forward(c, b, n_rows, err));
    CUDA_TRY(cudaStreamSynchronize(c->stream));
    CUDA_TRY(cudaGetLastError());
    gpu_profile_collect(c->profile);
    c->n_logits = n_rows;
    for (int seq = 0; seq < c->n_seq; seq++) c->n_past[seq] += c->seq_new[seq];
    return 0;
}
