/* A GPU context: the KV cache of every sequence on the device, activation
 * buffers for n_batch tokens, pinned staging buffers, and the sequence
 * operations of the public API. Cache layout as src/model/kv_cache.c
 * (sliding layers a ring of sliding_window - 1 + n_batch rows, KV-shared
 * layers none), except that full-attention layers get all n_ctx rows up
 * front: device memory is reserved once instead of growing. The speed
 * probes are in probe.cu. */
#include "cuda/gpu.h"

#include <stdlib.h>
#include <string.h>

extern "C" int g4_gpu_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear: "no device" is an answer, not an error */
        return 0;
    }
    return n;
}

static int dev_alloc(void **p, size_t bytes, int *failed) {
    if (*failed) return -1;
    if (cudaMalloc(p, bytes ? bytes : 16) != cudaSuccess) { *p = NULL; *failed = 1; return -1; }
    return 0;
}

extern "C" void g4_gpu_context_free(g4_gpu_context *c) {
    if (!c) return;
    gpu_graphs_drop(c);
    gpu_profile_free(c->profile);
    void *dev[] = {c->h, c->x, c->o, c->q, c->k, c->v, c->attn, c->gate, c->up, c->ple, c->ple_gate, c->ple_tok, c->moe_x,
                   c->router_x, c->router, c->moe_weights, c->moe_gate_up, c->moe_act, c->moe_y, c->moe_experts,
                   c->moe_sorted, c->moe_perm, c->moe_ptrs, c->moe_rows, c->route_done, c->attn_split.part, c->attn_split.count,
                   c->x_bf16, c->d_token, c->d_pos, c->d_seq, c->d_rows, c->d_logits, c->attn_scratch.data,
                   c->w_bf16.data};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) cudaFree(dev[i]);
    if (c->kv)
        for (int l = 0; l < c->gm->cfg->n_layers; l++) { cudaFree(c->kv[l].k); cudaFree(c->kv[l].v); }
    cudaFreeHost(c->h_ints);
    cudaFreeHost(c->h_ple);
    cudaFreeHost(c->logits);
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->side) cudaStreamDestroy(c->side);
    if (c->fork) cudaEventDestroy(c->fork);
    if (c->join) cudaEventDestroy(c->join);
    free(c->kv);
    free(c->n_past);
    free(c->seq_new);
    cudaFreeHost(c->h_experts);
    cudaFreeHost(c->h_perm);
    cudaFreeHost(c->h_moe_ptrs);
    free(c);
}

extern "C" int g4_gpu_context_new(g4_gpu_model *gm, int n_seq, int n_ctx, int n_batch, g4_gpu_context **out,
                                  g4_error *err) {
    *out = NULL;
    const g4_config *cfg = gm->cfg;
    g4_gpu_context *c = (g4_gpu_context *)calloc(1, sizeof *c);
    if (!c) return g4_fail(err, "out of memory");
    c->gm = gm;
    c->n_seq = n_seq;
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    c->gemm_min_rows = gpu_gemm_min_rows();
    const char *pf = getenv("G4_ATTN_PREFETCH_KEYS"); /* tuning */
    c->attn_prefetch_keys = pf ? atoi(pf) : GPU_ATTN_PREFETCH_KEYS;
    const char *graphs = getenv("G4_GPU_GRAPHS");
    c->use_graphs = !graphs || atoi(graphs) != 0;
    const char *fr = getenv("G4_GPU_FUSE_ROPE");
    c->fuse_rope = fr ? atoi(fr) != 0 : -1;
    const char *em = getenv("G4_GPU_EXPERTS_MAIN");
    c->experts_on_main = em ? atoi(em) != 0 : -1;
    c->profile = gpu_profile_new();
    if (c->profile) c->use_graphs = 0;
    c->n_past = (int *)calloc((size_t)n_seq, sizeof(int));
    c->seq_new = (int *)calloc((size_t)n_seq, sizeof(int));
    c->kv = (gpu_kv_layer *)calloc((size_t)cfg->n_layers, sizeof *c->kv);
    if (!c->n_past || !c->seq_new || !c->kv) { g4_gpu_context_free(c); return g4_fail(err, "out of memory"); }
    if (!gpu_row_chain_fits(cfg->hidden_size)) {
        g4_gpu_context_free(c);
        return g4_fail(err, "the GPU backend takes hidden sizes up to 6144 (this model: %d)", cfg->hidden_size);
    }
    if (cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking) != cudaSuccess ||
        cudaStreamCreateWithFlags(&c->side, cudaStreamNonBlocking) != cudaSuccess ||
        cudaEventCreateWithFlags(&c->fork, cudaEventDisableTiming) != cudaSuccess ||
        cudaEventCreateWithFlags(&c->join, cudaEventDisableTiming) != cudaSuccess) {
        g4_gpu_context_free(c);
        return g4_fail(err, "cannot create CUDA streams and events");
    }

    int failed = 0;
    int64_t max_q = 0, max_kv = 0, max_ffn = 0, max_cols = cfg->hidden_size;
    for (int l = 0; l < cfg->n_layers; l++) {
        const g4_layer_config *lc = &cfg->layer[l];
        int64_t q = (int64_t)cfg->n_heads * lc->head_dim, kvd = (int64_t)lc->n_kv_heads * lc->head_dim;
        if (q > max_q) max_q = q;
        if (kvd > max_kv) max_kv = kvd;
        if (lc->ffn_dim > max_ffn) max_ffn = lc->ffn_dim;
        if (lc->kv_source != l) continue;
        gpu_kv_layer *kv = &c->kv[l];
        kv->row_size = kvd;
        if (lc->attn == G4_ATTN_SLIDING) {
            int64_t ring = (int64_t)cfg->sliding_window - 1 + n_batch;
            kv->rows = kv->ring = ring < n_ctx ? ring : n_ctx;
        } else {
            kv->rows = n_ctx;
        }
        size_t bytes = sizeof(float) * (size_t)(n_seq * kv->rows * kvd);
        dev_alloc((void **)&kv->k, bytes, &failed);
        dev_alloc((void **)&kv->v, bytes, &failed);
    }
    if (max_q > max_cols) max_cols = max_q;
    if (max_ffn > max_cols) max_cols = max_ffn;
    int64_t n = n_batch, D = cfg->hidden_size, LP = (int64_t)cfg->n_layers * cfg->ple_dim, K = cfg->top_k_experts;
    size_t f = sizeof(float);
    dev_alloc((void **)&c->h, f * n * D, &failed);
    dev_alloc((void **)&c->x, f * n * D, &failed);
    dev_alloc((void **)&c->o, f * n * D, &failed);
    dev_alloc((void **)&c->q, f * n * max_q, &failed);
    dev_alloc((void **)&c->attn, f * n * max_q, &failed);
    dev_alloc((void **)&c->k, f * n * max_kv, &failed);
    dev_alloc((void **)&c->v, f * n * max_kv, &failed);
    dev_alloc((void **)&c->gate, f * n * max_ffn, &failed);
    dev_alloc((void **)&c->up, f * n * max_ffn, &failed);
    c->x_bf16_cap = n * max_cols;
    dev_alloc((void **)&c->x_bf16, sizeof(__nv_bfloat16) * (size_t)c->x_bf16_cap, &failed);
    if (LP) {
        dev_alloc((void **)&c->ple, f * n * LP, &failed);
        dev_alloc((void **)&c->ple_gate, f * n * cfg->ple_dim, &failed);
        dev_alloc((void **)&c->ple_tok, f * n * LP, &failed);
    }
    if (cfg->n_experts) {
        dev_alloc((void **)&c->moe_x, f * n * D, &failed);
        dev_alloc((void **)&c->router, f * n * cfg->n_experts, &failed);
        dev_alloc((void **)&c->moe_weights, f * n * K, &failed);
        dev_alloc((void **)&c->moe_experts, sizeof(int) * n * K, &failed);
        /* prompt chunks sort (token, expert) pairs by expert and pad each expert's rows (moe_gemm.cu) */
        const int64_t padded = gpu_moe_padded_rows(n * K), problems = n * K + cfg->n_experts;
        dev_alloc((void **)&c->moe_gate_up, f * padded * 2 * cfg->moe_dim, &failed);
        dev_alloc((void **)&c->moe_act, f * n * K * cfg->moe_dim, &failed);
        dev_alloc((void **)&c->moe_y, f * n * K * D, &failed);
        dev_alloc((void **)&c->router_x, f * n * D, &failed);
        dev_alloc((void **)&c->moe_sorted, f * padded * D, &failed);
        dev_alloc((void **)&c->moe_perm, sizeof(int) * padded, &failed);
        dev_alloc((void **)&c->moe_ptrs, sizeof(void *) * 6 * problems, &failed);
        dev_alloc((void **)&c->moe_rows, sizeof(int) * n * K, &failed);
        const char *fuse = getenv("G4_GPU_FUSE_ROUTE"); /* 0: router and top-k as two kernels (A/B timing) */
        if (!fuse || atoi(fuse)) {
            dev_alloc((void **)&c->route_done, sizeof(int), &failed);
            if (!failed && cudaMemsetAsync(c->route_done, 0, sizeof(int), c->stream) != cudaSuccess) failed = 1;
        }
        /* pinned: the routing's copies are asynchronous (each layer's plan is written only
         * after its stream synchronisation, so the previous layer's uploads are done) */
        if (cudaMallocHost((void **)&c->h_experts, sizeof(int) * (size_t)(n * K)) != cudaSuccess ||
            cudaMallocHost((void **)&c->h_perm, sizeof(int) * (size_t)padded) != cudaSuccess ||
            cudaMallocHost((void **)&c->h_moe_ptrs, sizeof(void *) * 6 * (size_t)problems) != cudaSuccess)
            failed = 1;
    }
    int sms = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess) sms = 0;
    gpu_attn_split *sp = &c->attn_split;
    const char *split = getenv("G4_ATTN_SPLIT"); /* 0: one block per (token, head) (A/B timing) */
    sp->target = !split || atoi(split) ? 2 * sms : 0;
    const char *keys = getenv("G4_ATTN_SPLIT_KEYS"); /* tuning: fewest keys per split */
    sp->min_keys = keys ? atoi(keys) : 0;
    for (int l = 0; l < cfg->n_layers; l++)
        if (cfg->layer[l].head_dim > sp->max_hd) sp->max_hd = cfg->layer[l].head_dim;
    if (sms) {
        dev_alloc((void **)&sp->part, f * 2 * sp->target * (sp->max_hd + 2), &failed);
        dev_alloc((void **)&sp->count, sizeof(int) * sp->target, &failed);
        if (!failed && cudaMemsetAsync(sp->count, 0, sizeof(int) * sp->target, c->stream) != cudaSuccess) failed = 1;
    }
    dev_alloc((void **)&c->d_token, sizeof(int32_t) * n, &failed);
    dev_alloc((void **)&c->d_pos, sizeof(int32_t) * n, &failed);
    dev_alloc((void **)&c->d_seq, sizeof(int32_t) * n, &failed);
    dev_alloc((void **)&c->d_rows, sizeof(int32_t) * n, &failed);
    if (!failed && cudaMallocHost((void **)&c->h_ints, sizeof(int32_t) * 6 * n) != cudaSuccess) failed = 1;
    if (!failed && LP && cudaMallocHost((void **)&c->h_ple, f * n * LP) != cudaSuccess) failed = 1;
    if (failed) {
        g4_gpu_context_free(c);
        return g4_fail(err, "out of GPU memory for the KV cache and activations (n_ctx %d, n_batch %d, %d sequences)",
                       n_ctx, n_batch, n_seq);
    }
    *out = c;
    return 0;
}

extern "C" float *g4_gpu_logits(g4_gpu_context *c, int *n_logits) {
    *n_logits = c->n_logits;
    return c->logits;
}

extern "C" void g4_gpu_logits_keep_row(g4_gpu_context *c, int row) {
    size_t V = (size_t)c->gm->cfg->vocab_size;
    if (row < 0 || row >= c->n_logits) return;
    if (row) memmove(c->logits, c->logits + (size_t)row * V, sizeof(float) * V);
    c->n_logits = 1;
}

extern "C" int g4_gpu_seq_length(const g4_gpu_context *c, int seq) { return c->n_past[seq]; }

extern "C" int g4_gpu_seq_clear(g4_gpu_context *c, int seq) {
    c->n_past[seq] = 0;
    return 0;
}

extern "C" int g4_gpu_seq_copy(g4_gpu_context *c, int src, int dst, g4_error *err) {
    if (src == dst) return 0;
    for (int l = 0; l < c->gm->cfg->n_layers; l++) {
        const gpu_kv_layer *kv = &c->kv[l];
        if (!kv->k) continue;
        size_t seq_bytes = sizeof(float) * (size_t)(kv->rows * kv->row_size);
        CUDA_TRY(cudaMemcpyAsync((char *)kv->k + dst * seq_bytes, (char *)kv->k + src * seq_bytes, seq_bytes,
                                 cudaMemcpyDeviceToDevice, c->stream));
        CUDA_TRY(cudaMemcpyAsync((char *)kv->v + dst * seq_bytes, (char *)kv->v + src * seq_bytes, seq_bytes,
                                 cudaMemcpyDeviceToDevice, c->stream));
    }
    CUDA_TRY(cudaStreamSynchronize(c->stream));
    c->n_past[dst] = c->n_past[src];
    return 0;
}

extern "C" int g4_gpu_seq_truncate(g4_gpu_context *c, int seq, int n_keep, g4_error *err) {
    const g4_config *cfg = c->gm->cfg;
    int n_past = c->n_past[seq];
    if (n_keep < 0 || n_keep > n_past)
        return g4_fail(err, "cannot keep %d positions of a sequence that has %d", n_keep, n_past);
    for (int l = 0; l < cfg->n_layers; l++) {
        const gpu_kv_layer *kv = &c->kv[l];
        if (!kv->k || !kv->ring) continue;
        /* as kv_cache.c: the ring must still hold the window behind n_keep */
        int64_t needed = (int64_t)n_keep - (cfg->sliding_window - 1), oldest = (int64_t)n_past - kv->ring;
        if (needed < 0) needed = 0;
        if (oldest < 0) oldest = 0;
        if (needed < oldest)
            return g4_fail(err, "cannot rewind from %d to %d positions: the sliding-window cache keeps only %lld "
                                "positions behind the window", n_past, n_keep, (long long)(kv->ring - (cfg->sliding_window - 1)));
    }
    c->n_past[seq] = n_keep;
    return 0;
}
