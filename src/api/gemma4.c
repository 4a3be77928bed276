/* The public C API (include/gemma4.h) over the model, cache and forward pass. */
#include "api/api_internal.h"

#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/model_tokenizer.h"
#include "model/params.h"
#include "model/convert.h"
#include "model/released_configs.h"
#include "cuda/backend.h"

#include <stdio.h>
#include "util/threadpool.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct gemma4_context {
    gemma4_model *model;
    gemma4_context_params params;
    g4_kv_cache kv;
    g4_state state;
    g4_threadpool *pool;
    int32_t *pos_buf; /* [n_batch] scratch for gemma4_eval */
    int32_t *seq_buf;
    int8_t *want_buf;
    g4_gpu_context *gpu; /* set: the context runs on the GPU (kv, state and pool unused) */
};

static _Thread_local g4_error last_error, last_warning;

const char *gemma4_last_error(void) { return last_error.msg; }
const char *gemma4_last_warning(void) { return last_warning.msg[0] ? last_warning.msg : NULL; }
g4_error *g4_api_error(void) { return &last_error; }

static int fail(const char *msg) { return g4_fail(&last_error, "%s", msg); }

int gemma4_model_load(const char *path, gemma4_model **out) {
    *out = NULL;
    gemma4_model *gm = calloc(1, sizeof *gm);
    if (!gm) return fail("out of memory");
    if (g4_model_load(path, &gm->m, &last_error)) { free(gm); return -1; }
    gm->tok.tok = gm->m->tok;
    gm->tok.bos_id = gm->m->tok ? gm->m->cfg.bos_token_id : -1;
    *out = gm;
    return 0;
}

void gemma4_model_free(gemma4_model *model) {
    if (!model) return;
    g4_gpu_model_free(model->gpu);
    g4_model_free(model->m);
    free(model);
}

static uint64_t tensor_bytes(const g4_tensor *t) { return t->data ? (uint64_t)t->nbytes : 0; }

void gemma4_model_get_info(const gemma4_model *model, gemma4_model_info *info) {
    const g4_config *c = &model->m->cfg;
    const g4_weights *w = &model->m->w;
    memset(info, 0, sizeof *info);
    info->vocab_size = c->vocab_size;
    info->hidden_size = c->hidden_size;
    info->n_layers = c->n_layers;
    info->n_heads = c->n_heads;
    info->n_kv_shared_layers = c->n_kv_shared_layers;
    info->sliding_window = c->sliding_window;
    info->max_positions = c->max_positions;
    info->per_layer_input_dim = c->ple_dim;
    info->n_experts = c->n_experts;
    info->top_k_experts = c->top_k_experts;
    info->bos_token_id = c->bos_token_id;
    info->pad_token_id = c->pad_token_id;
    info->n_eos_token_ids = c->n_eos_token_ids;
    memcpy(info->eos_token_ids, c->eos_token_ids, sizeof info->eos_token_ids);
    info->weight_dtype = g4_dtype_name(w->embed.dtype);
    g4_param_count pc = g4_count_params(c);
    info->n_params = pc.total;
    info->n_embedding_params = pc.embeddings;
    info->n_active_params = pc.active;

    const g4_tensor *top[] = {&w->embed, &w->ple_embed, &w->ple_model_proj};
    for (size_t i = 0; i < 3; i++) info->weight_bytes += tensor_bytes(top[i]);
    for (int l = 0; l < c->n_layers; l++) {
        const g4_layer_weights *lw = &w->layer[l];
        if (c->layer[l].attn == G4_ATTN_SLIDING) info->n_sliding_layers++;
        else info->n_full_layers++;
        const g4_tensor *mats[] = {&lw->q_proj, &lw->k_proj, &lw->v_proj, &lw->o_proj, &lw->gate_proj, &lw->up_proj,
                                   &lw->down_proj, &lw->router_proj, &lw->experts_gate_up, &lw->experts_down,
                                   &lw->ple_gate, &lw->ple_proj};
        for (size_t i = 0; i < sizeof mats / sizeof *mats; i++) info->weight_bytes += tensor_bytes(mats[i]);
    }
}

int gemma4_convert(const char *src, const char *dst, const char *type,
                   void (*progress)(void *ctx, uint64_t done, uint64_t total), void *progress_ctx) {
    last_warning.msg[0] = 0;
    g4_ftype ft;
    if (g4_ftype_parse(type, &ft)) return g4_fail(&last_error, "unknown type \"%s\" (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m)", type);
    g4_model *m;
    if (g4_model_load(src, &m, &last_error)) return -1;
    const char *base = strrchr(src, '/');
    base = base && base[1] ? base + 1 : src;
    /* A checkpoint directory: its tokenizer.json as llama.cpp writes it (a
     * GGUF source's tokenizer keys are copied by g4_convert). */
    char tok_path[4096];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", src);
    g4_tokenizer_source tok = {&m->cfg, m->tok, m->tok ? tok_path : NULL, src, NULL};
    if (m->ckpt && !m->tok)
        g4_fail(&last_warning, "%s has no tokenizer.json: %s gets no tokenizer (tokenizer.ggml.model = none)", src, dst);
    int rc = g4_convert(m, base, dst, ft, m->ckpt ? g4_tokenizer_gguf_write : NULL, &tok, progress, progress_ctx, &last_error);
    g4_model_free(m);
    return rc;
}

int gemma4_synth(const char *arch, const char *config_path, const char *type, const char *dst,
                 const char *tokenizer_json, uint64_t seed, float branch_scale,
                 void (*progress)(void *ctx, uint64_t done, uint64_t total), void *progress_ctx) {
    g4_ftype ft;
    if (g4_ftype_parse(type, &ft)) return g4_fail(&last_error, "unknown type \"%s\"", type);
    if (!(branch_scale > 0 && branch_scale <= 10)) return fail("branch scale must be in (0, 10]");
    g4_config cfg;
    int rc = -1;
    if (config_path) {
        rc = g4_config_load(config_path, &cfg, &last_error);
    } else {
        for (const g4_released_config *r = g4_released_configs; r->arch; r++)
            if (arch && strcmp(r->arch, arch) == 0) rc = g4_config_parse(r->json, strlen(r->json), &cfg, &last_error);
        if (rc) g4_fail(&last_error, "unknown architecture \"%s\" (e2b, e4b, 26b-a4b, 31b, tiny)", arch ? arch : "");
    }
    if (rc) return -1;
    char name[64];
    snprintf(name, sizeof name, "gemma4-%s-synthetic", arch ? arch : "custom");
    /* the tokenizer, and a chat_template.jinja beside it if there is one */
    char tmpl[4096] = "";
    if (tokenizer_json) {
        const char *slash = strrchr(tokenizer_json, '/');
        snprintf(tmpl, sizeof tmpl, "%.*schat_template.jinja", slash ? (int)(slash - tokenizer_json + 1) : 0, tokenizer_json);
    }
    g4_tokenizer_source tok = {&cfg, NULL, tokenizer_json, NULL, tokenizer_json ? tmpl : NULL};
    rc = g4_synth(&cfg, name, dst, ft, seed, branch_scale, tokenizer_json ? g4_tokenizer_gguf_write : NULL, &tok,
                  progress, progress_ctx, &last_error);
    g4_config_free(&cfg);
    return rc;
}

int gemma4_vocab_size(const gemma4_model *model) { return model->m->cfg.vocab_size; }

uint64_t gemma4_kv_cache_bytes(const gemma4_model *model, int n_ctx, int n_batch) {
    return g4_kv_cache_bytes(&model->m->cfg, n_ctx, n_batch, 0);
}

gemma4_context_params gemma4_context_default_params(void) {
    gemma4_context_params p = {0};
    p.n_ctx = 8192;
    p.n_batch = 256;
    p.n_seq = 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p.n_threads = cpus > 0 ? (int)cpus : 1;
    return p;
}

int gemma4_gpu_available(void) { return g4_gpu_device_count() > 0; }

/* The GPU half of gemma4_context_new: the model's weights go to the device
 * with its first GPU context and stay there until the model is freed. */
static int gpu_context_new(gemma4_context *ctx, gemma4_context **out) {
    gemma4_context_params p = ctx->params;
    ctx->pos_buf = malloc(sizeof(int32_t) * (size_t)p.n_batch);
    ctx->seq_buf = malloc(sizeof(int32_t) * (size_t)p.n_batch);
    ctx->want_buf = malloc((size_t)p.n_batch);
    int rc = ctx->pos_buf && ctx->seq_buf && ctx->want_buf ? 0 : fail("out of memory");
    if (!rc && !ctx->model->gpu) rc = g4_gpu_model_new(ctx->model->m, &ctx->model->gpu, &last_error);
    if (!rc) rc = g4_gpu_context_new(ctx->model->gpu, p.n_seq, p.n_ctx, p.n_batch, &ctx->gpu, &last_error);
    if (rc) { gemma4_context_free(ctx); return -1; }
    *out = ctx;
    return 0;
}

int gemma4_model_synthetic(const char *arch, const char *type, gemma4_model **out) {
    *out = NULL;
    gemma4_model *gm = calloc(1, sizeof *gm);
    g4_model *m = calloc(1, sizeof *m);
    if (!gm || !m) { free(gm); free(m); return fail("out of memory"); }
    int rc = -1;
    for (const g4_released_config *r = g4_released_configs; r->arch; r++)
        if (arch && strcmp(r->arch, arch) == 0) rc = g4_config_parse(r->json, strlen(r->json), &m->cfg, &last_error);
    if (rc) g4_fail(&last_error, "unknown architecture \"%s\" (e2b, e4b, 26b-a4b, 31b, tiny)", arch ? arch : "");
    if (rc || g4_gpu_synth_weights(&m->cfg, type, &m->w, &last_error)) {
        g4_model_free(m);
        free(gm);
        return -1;
    }
    gm->m = m;
    gm->tok.bos_id = -1;
    gm->synthetic = 1;
    *out = gm;
    return 0;
}

int gemma4_gpu_info_get(const gemma4_context *ctx, gemma4_gpu_info *info) {
    memset(info, 0, sizeof *info);
    if (!ctx->gpu) return fail("this context runs on the CPU");
    info->decode_bytes = g4_gpu_decode_bytes(ctx->model->gpu);
    info->weight_bytes = g4_gpu_weight_bytes(ctx->model->gpu);
    info->matmul_params = g4_gpu_matmul_params(ctx->model->gpu, &info->prompt_matmul_params);
    return g4_gpu_copy_bandwidth(&info->copy_gb_per_s, &last_error) ||
           g4_gpu_gemm_tflops(ctx->model->gpu, &info->gemm_tflops, &last_error);
}

int gemma4_context_new(gemma4_model *model, const gemma4_context_params *params, gemma4_context **out) {
    *out = NULL;
    gemma4_context_params p = gemma4_context_default_params();
    const g4_config *c = &model->m->cfg;
    if (p.n_ctx > c->max_positions) p.n_ctx = c->max_positions;
    if (params) {
        if (params->n_ctx < 0 || params->n_batch < 0 || params->n_seq < 0 || params->n_threads < 0)
            return fail("context parameters must not be negative");
        if (params->n_ctx) p.n_ctx = params->n_ctx;
        if (params->n_batch) p.n_batch = params->n_batch;
        if (params->n_seq) p.n_seq = params->n_seq;
        if (params->n_threads) p.n_threads = params->n_threads;
        if (params->device < GEMMA4_DEVICE_CPU || params->device > GEMMA4_DEVICE_AUTO) return fail("unknown device");
        p.device = params->device;
        if (params->kv_type != GEMMA4_KV_F32 && params->kv_type != GEMMA4_KV_F16) return fail("unknown KV cache type");
        p.kv_type = params->kv_type;
    }
    int on_gpu = p.device == GEMMA4_DEVICE_GPU || (p.device == GEMMA4_DEVICE_AUTO && gemma4_gpu_available());
    if (model->synthetic && !on_gpu) return fail("a synthetic model runs on the GPU only (device GPU)");
    if (on_gpu && p.kv_type != GEMMA4_KV_F32)
        return fail("a half-precision KV cache is CPU-only so far: run on the CPU, or keep the float32 cache on the GPU");
    if (p.n_ctx > c->max_positions)
        return g4_fail(&last_error, "context of %d positions exceeds the model's maximum of %d", p.n_ctx, c->max_positions);
    if (p.n_seq > 4096 || p.n_threads > 1024 || p.n_batch > 65536) return fail("context parameters out of range");

    gemma4_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return fail("out of memory");
    ctx->model = model;
    ctx->params = p;
    if (on_gpu) return gpu_context_new(ctx, out);
    ctx->pool = g4_threadpool_new(p.n_threads);
    ctx->pos_buf = malloc(sizeof(int32_t) * (size_t)p.n_batch);
    ctx->seq_buf = malloc(sizeof(int32_t) * (size_t)p.n_batch);
    ctx->want_buf = malloc((size_t)p.n_batch);
    if (!ctx->pool || !ctx->pos_buf || !ctx->seq_buf || !ctx->want_buf) { gemma4_context_free(ctx); return fail("out of memory"); }
    if (g4_kv_cache_init(&ctx->kv, c, p.n_seq, p.n_ctx, p.n_batch, p.kv_type == GEMMA4_KV_F16, &last_error) ||
        g4_state_init(&ctx->state, c, p.n_batch, p.n_seq, p.n_ctx, g4_threadpool_size(ctx->pool), &last_error)) {
        gemma4_context_free(ctx);
        return -1;
    }
    *out = ctx;
    return 0;
}

void gemma4_context_free(gemma4_context *ctx) {
    if (!ctx) return;
    g4_gpu_context_free(ctx->gpu);
    g4_kv_cache_free(&ctx->kv, &ctx->model->m->cfg);
    g4_state_free(&ctx->state);
    if (ctx->pool) g4_threadpool_free(ctx->pool);
    free(ctx->pos_buf);
    free(ctx->seq_buf);
    free(ctx->want_buf);
    free(ctx);
}

int gemma4_decode(gemma4_context *ctx, const gemma4_batch *batch) {
    if (!batch || !batch->token || !batch->pos) return fail("batch needs token and pos arrays");
    if (batch->embd_row && !batch->embd) return fail("batch has embd_row but no embd");
    g4_batch b = {batch->n_tokens, batch->token, batch->pos, batch->seq, batch->want_logits, batch->embd, batch->embd_row};
    if (ctx->gpu) return g4_gpu_forward(ctx->gpu, &b, &last_error);
    return g4_forward(ctx->model->m, &ctx->kv, &ctx->state, ctx->pool, &b, &last_error);
}

/* The logits rows of the last decode, wherever the context runs. */
static float *logits_rows(const gemma4_context *ctx, int *n) {
    if (ctx->gpu) return g4_gpu_logits(ctx->gpu, n);
    *n = ctx->state.n_logits;
    return ctx->state.logits;
}

const float *gemma4_get_logits(const gemma4_context *ctx, int i) {
    int n;
    float *rows = logits_rows(ctx, &n);
    if (i < 0 || i >= n) return NULL;
    return rows + (size_t)i * (size_t)ctx->model->m->cfg.vocab_size;
}

int gemma4_n_logits(const gemma4_context *ctx) {
    int n;
    logits_rows(ctx, &n);
    return n;
}

int gemma4_eval(gemma4_context *ctx, int seq, const int32_t *tokens, int n, float *all_logits) {
    if (seq < 0 || seq >= ctx->params.n_seq) return g4_fail(&last_error, "sequence %d out of range", seq);
    if (n < 1) return fail("nothing to evaluate");
    size_t V = (size_t)ctx->model->m->cfg.vocab_size;
    for (int done = 0; done < n;) {
        int chunk = n - done < ctx->params.n_batch ? n - done : ctx->params.n_batch;
        int start = gemma4_seq_length(ctx, seq);
        for (int i = 0; i < chunk; i++) {
            ctx->pos_buf[i] = start + i;
            ctx->seq_buf[i] = seq;
            ctx->want_buf[i] = all_logits != NULL || done + i == n - 1;
        }
        gemma4_batch b = {chunk, tokens + done, ctx->pos_buf, ctx->seq_buf, ctx->want_buf, NULL, NULL};
        if (gemma4_decode(ctx, &b)) return -1;
        int n_rows;
        float *rows = logits_rows(ctx, &n_rows);
        if (all_logits) memcpy(all_logits + (size_t)done * V, rows, sizeof(float) * (size_t)chunk * V);
        done += chunk;
    }
    if (all_logits && ctx->gpu) g4_gpu_logits_keep_row(ctx->gpu, gemma4_n_logits(ctx) - 1);
    else if (all_logits && ctx->state.n_logits > 1) { /* leave the last row first, as documented */
        memmove(ctx->state.logits, ctx->state.logits + (size_t)(ctx->state.n_logits - 1) * V, sizeof(float) * V);
        ctx->state.n_logits = 1;
    }
    return 0;
}

int gemma4_seq_length(const gemma4_context *ctx, int seq) {
    if (seq < 0 || seq >= ctx->params.n_seq) return -1;
    if (ctx->gpu) return g4_gpu_seq_length(ctx->gpu, seq);
    return ctx->kv.seq[seq].n_past;
}

int gemma4_seq_clear(gemma4_context *ctx, int seq) {
    if (seq < 0 || seq >= ctx->params.n_seq) return g4_fail(&last_error, "sequence %d out of range", seq);
    if (ctx->gpu) return g4_gpu_seq_clear(ctx->gpu, seq);
    ctx->kv.seq[seq].n_past = 0;
    return 0;
}

int gemma4_seq_copy(gemma4_context *ctx, int src, int dst) {
    if (src < 0 || src >= ctx->params.n_seq || dst < 0 || dst >= ctx->params.n_seq)
        return g4_fail(&last_error, "sequence %d or %d out of range", src, dst);
    if (ctx->gpu) return g4_gpu_seq_copy(ctx->gpu, src, dst, &last_error);
    return g4_kv_cache_copy_seq(&ctx->kv, &ctx->model->m->cfg, src, dst, &last_error);
}

int gemma4_bench_fill_cache(gemma4_context *ctx, int seq, int n_positions) {
    if (ctx->gpu) return fail("gemma4_bench_fill_cache: CPU contexts only");
    if (seq < 0 || seq >= ctx->params.n_seq) return g4_fail(&last_error, "sequence %d out of range", seq);
    if (n_positions < 0 || n_positions > ctx->params.n_ctx)
        return g4_fail(&last_error, "%d positions do not fit a context of %d", n_positions, ctx->params.n_ctx);
    return g4_kv_cache_fill_random(&ctx->kv, &ctx->model->m->cfg, seq, n_positions, &last_error);
}

int gemma4_seq_truncate(gemma4_context *ctx, int seq, int n_keep) {
    if (seq < 0 || seq >= ctx->params.n_seq) return g4_fail(&last_error, "sequence %d out of range", seq);
    if (ctx->gpu) return g4_gpu_seq_truncate(ctx->gpu, seq, n_keep, &last_error);
    return g4_kv_cache_truncate_seq(&ctx->kv, &ctx->model->m->cfg, seq, n_keep, &last_error);
}
