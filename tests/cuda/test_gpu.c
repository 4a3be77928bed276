/* The device choice of gemma4_context_params in any build, and on a machine
 * with a GPU what tests/unit/test_fixtures.c does not cover (it runs there
 * too, with GEMMA4_TEST_DEVICE=gpu; see tools/gpu_test.sh):
 * - the tensor-core path (cuBLAS, activations rounded to bf16 as
 *   transformers computes a bf16 model) on the bf16 fixtures: a bf16
 *   computation, so the float32 bound does not apply; on average over
 *   positions it must be no further from transformers' float32 computation
 *   than transformers' own bf16 computation is (measured from the two
 *   reference files), plus the 2e-3 of summation order (the worst positions
 *   are printed too).
 * - synthetic device-only models of every storage type give finite logits
 *   and identical results for one-shot and token-by-token evaluation (to
 *   summation order).
 * - GGUF files of the block types the GPU decodes into codes with float32
 *   factors (q4_k_m, q4_k, q5_k, q6_k, q4_1, q5_0, q5_1) give the CPU's
 *   logits on the same weights, and split expert tensors fuse correctly.
 * - the router GEMV that also picks the experts gives the separate kernels'
 *   logits bit for bit on the MoE fixtures, token by token (and was used).
 * - the decode GEMV with several rows a warp gives the one-row kernel's
 *   logits bit for bit, for every quantised type.
 * - decode attention with the q/k norms and RoPE folded in gives the
 *   separate kernels' logits to float32 rounding (head dims 32 to 128,
 *   k = v, KV-shared and partial-RoPE layers, past the sliding window).
 * - prompts that want a few rows' logits (the rest dropped after the last
 *   layer that writes the KV cache) give those rows' reference logits.
 * Usage: test_gpu [fixtures-root] */
#include "../unit/check.h"
#include "../unit/reference.h"
#include "gemma4.h"
#include "cuda/backend.h"
#include "io/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gemma4_context *new_ctx(gemma4_model *m, int device, int n_ctx, int n_batch) {
    gemma4_context_params p = gemma4_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_threads = 2;
    p.device = device;
    gemma4_context *c = NULL;
    if (gemma4_context_new(m, &p, &c)) c = NULL;
    return c;
}

/* The ids of a fixture's case.json (a flat "input_ids": [...] list). */
static int read_ids(const char *dir, int32_t *ids, int cap) {
    char path[600];
    snprintf(path, sizeof path, "%s/case.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *p = strstr(buf, "\"input_ids\"");
    p = p ? strchr(p, '[') : NULL;
    int n = 0;
    while (p && *p && *p != ']' && n < cap) {
        p++;
        ids[n++] = (int32_t)strtol(p, &p, 10);
        while (*p == ' ' || *p == '\n') p++;
    }
    return n;
}

static void device_choice(const char *root) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/dense", root);
    gemma4_model *m;
    if (gemma4_model_load(dir, &m)) { CHECK(0, "%s: %s", dir, gemma4_last_error()); return; }
    CHECK(new_ctx(m, 7, 64, 8) == NULL && strstr(gemma4_last_error(), "device"), "device 7 accepted: %s", gemma4_last_error());
    gemma4_context *c = new_ctx(m, GEMMA4_DEVICE_AUTO, 64, 8);
    CHECK(c != NULL, "auto device: %s", gemma4_last_error());
    gemma4_context_free(c);
    if (!gemma4_gpu_available()) {
        c = new_ctx(m, GEMMA4_DEVICE_GPU, 64, 8);
        CHECK(c == NULL && gemma4_last_error()[0], "GPU context without a GPU");
        printf("no GPU: \"%s\"\n", gemma4_last_error());
        gemma4_context_free(c);
    }
    gemma4_model_free(m);
    gemma4_model *s;
    if (!gemma4_gpu_available()) {
        CHECK(gemma4_model_synthetic("tiny", "bf16", &s) != 0 || new_ctx(s, GEMMA4_DEVICE_CPU, 64, 8) == NULL,
              "a synthetic model ran on the CPU");
        if (s) gemma4_model_free(s);
    }
}

static void bf16_tensor_cores(const char *root, const char *name) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    gemma4_model *m;
    if (gemma4_model_load(dir, &m)) { CHECK(0, "%s: %s", dir, gemma4_last_error()); return; }
    int V = gemma4_vocab_size(m);
    int32_t ids[512];
    int n = read_ids(dir, ids, 512);
    float *ref_b16 = read_f32(dir, "logits.f32", (size_t)n * V), *ref = read_f32(dir, "logits_f32ref.f32", (size_t)n * V);
    float *got = malloc(sizeof(float) * (size_t)n * V);
    gemma4_context *c = new_ctx(m, GEMMA4_DEVICE_GPU, n, n);
    CHECK(n > 0 && ref && ref_b16 && c, "%s: %s", dir, c ? "no references" : gemma4_last_error());
    if (n > 0 && ref && ref_b16 && c) {
        CHECK(gemma4_eval(c, 0, ids, n, got) == 0, "%s: %s", dir, gemma4_last_error());
        float noise = max_abs_diff(ref_b16, ref, (size_t)n * V), d = max_abs_diff(got, ref_b16, (size_t)n * V);
        float d32 = max_abs_diff(got, ref, (size_t)n * V);
        /* Mean over positions of each position's max|dlogit| against transformers f32, ours and
         * transformers' own bf16 run's. Not the max over positions: on these random MoE models a
         * bf16 rounding anywhere can flip one token's expert choice, which moves that position's
         * logits by several units whoever computes it (transformers' bf16 run is 9.3 off at its
         * worst position of moe-bf16); which positions flip differs between two equally valid bf16
         * computations, so the worst position measures luck, the mean measures the arithmetic. */
        double mean32 = 0, mean_noise = 0;
        for (int t = 0; t < n; t++) {
            mean32 += max_abs_diff(got + (size_t)t * V, ref + (size_t)t * V, V) / n;
            mean_noise += max_abs_diff(ref_b16 + (size_t)t * V, ref + (size_t)t * V, V) / n;
        }
        CHECK(mean32 <= mean_noise + 2e-3, "%s tensor cores vs transformers f32: mean per-position max|dlogit| %.3g > "
              "transformers' own bf16 run's %.3g + 2e-3", dir, mean32, mean_noise);
        printf("  %-12s cuBLAS bf16 vs transformers f32: mean per-position max|dlogit| %.3f (transformers bf16: %.3f), "
               "max %.2e (transformers bf16: %.2e); max %.2e vs transformers bf16\n",
               name, mean32, mean_noise, d32, noise, d);
        if (getenv("G4_TEST_POSITIONS")) /* per position: ours vs f32, transformers bf16 vs f32, argmax agreement */
            for (int t = 0; t < n; t++) {
                const float *g = got + (size_t)t * V, *r = ref + (size_t)t * V, *b = ref_b16 + (size_t)t * V;
                int ar = argmax(r, V);
                printf("    pos %3d  ours %.3f  tf-bf16 %.3f  argmax ours %d tf-bf16 %d\n", t, max_abs_diff(g, r, V),
                       max_abs_diff(b, r, V), argmax(g, V) == ar, argmax(b, V) == ar);
            }
    }
    gemma4_context_free(c);
    free(got);
    free(ref);
    free(ref_b16);
    gemma4_model_free(m);
}

static void prefill_gemms(gemma4_model *m, const char *type, const int32_t *ids, int n, const float *ref);

static void synthetic(const char *type) {
    gemma4_model *m;
    if (gemma4_model_synthetic("tiny", type, &m)) { CHECK(0, "synthetic %s: %s", type, gemma4_last_error()); return; }
    int V = gemma4_vocab_size(m), n = 12;
    int32_t ids[12];
    for (int i = 0; i < n; i++) ids[i] = 2 + 977 * i;
    gemma4_context *a = new_ctx(m, GEMMA4_DEVICE_GPU, 64, n), *b = new_ctx(m, GEMMA4_DEVICE_GPU, 64, 1);
    float *la = malloc(sizeof(float) * (size_t)n * V), *lb = malloc(sizeof(float) * (size_t)n * V);
    CHECK(a && b, "synthetic %s context: %s", type, gemma4_last_error());
    if (a && b) {
        CHECK(gemma4_eval(a, 0, ids, n, la) == 0 && gemma4_eval(b, 0, ids, n, lb) == 0, "synthetic %s: %s", type,
              gemma4_last_error());
        int finite = 1;
        for (size_t i = 0; i < (size_t)n * V; i++) finite &= isfinite(la[i]) != 0;
        float d = max_abs_diff(la, lb, (size_t)n * V);
        CHECK(finite && d <= 2e-3f, "synthetic %s: finite %d, one-shot vs token by token %.3g", type, finite, d);
        printf("  synthetic tiny %-5s one-shot vs token by token: max|dlogit| %.2e\n", type, d);
        if (strcmp(type, "f32")) prefill_gemms(m, type, ids, n, lb);
    }
    gemma4_context_free(a);
    gemma4_context_free(b);
    free(la);
    free(lb);
    gemma4_model_free(m);
}

/* Small, but every matrix has rows of a multiple of 256, so the K-quants
 * apply everywhere they can: a tied embedding, experts (fused gate/up),
 * Per-Layer Embeddings (their 32-wide projection falls back to Q5_0, Q5_1
 * or Q8_0, as llama.cpp does), a double-wide KV-shared layer, full-attention
 * layers of head dimension 128. */
static const char kquant_config[] =
    "{\"architectures\": [\"Gemma4ForCausalLM\"], \"model_type\": \"gemma4_text\", \"vocab_size\": 1024,"
    " \"vocab_size_per_layer_input\": 1024, \"hidden_size\": 256, \"intermediate_size\": 512,"
    " \"use_double_wide_mlp\": true, \"enable_moe_block\": true, \"num_experts\": 8, \"top_k_experts\": 2,"
    " \"moe_intermediate_size\": 256, \"hidden_size_per_layer_input\": 32, \"num_hidden_layers\": 5,"
    " \"num_kv_shared_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 64,"
    " \"attention_k_eq_v\": true, \"per_layer_config\": {\"2\": {\"head_dim\": 128, \"num_key_value_heads\": 1},"
    " \"4\": {\"head_dim\": 128, \"num_key_value_heads\": 1}}, \"layer_types\": [\"sliding_attention\","
    " \"sliding_attention\", \"full_attention\", \"sliding_attention\", \"full_attention\"], \"sliding_window\": 8,"
    " \"final_logit_softcapping\": 30.0, \"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": true,"
    " \"hidden_activation\": \"gelu_pytorch_tanh\", \"bos_token_id\": 2, \"eos_token_id\": 1, \"pad_token_id\": 0,"
    " \"rope_parameters\": {\"full_attention\": {\"partial_rotary_factor\": 0.25, \"rope_theta\": 1000000.0,"
    " \"rope_type\": \"proportional\"}, \"sliding_attention\": {\"rope_theta\": 10000.0, \"rope_type\": \"default\"}}}";

/* All n positions' logits of ids on a new context of the given batch size. */
static float *eval_logits(gemma4_model *m, int device, const int32_t *ids, int n, int batch) {
    gemma4_context *c = new_ctx(m, device, 64, batch);
    float *out = c ? malloc(sizeof(float) * (size_t)n * gemma4_vocab_size(m)) : NULL;
    if (out && gemma4_eval(c, 0, ids, n, out)) { free(out); out = NULL; }
    gemma4_context_free(c);
    return out;
}

/* A prompt through the prefill GEMMs (G4_GPU_GEMM_MIN=1: quantised weights
 * dequantised to bf16 on the GPU, activations rounded to bf16, the experts
 * as batched tiles) against `ref`, the same weights with float32
 * activations. tests/cuda/test_gemm.cu pins the products' arithmetic
 * exactly; this checks the forward's plumbing (which buffer each product
 * reads, the chain's bf16 outputs, quantised expert stacks). The measure is
 * the RMS of the logits' change relative to the RMS of the logits: bf16
 * rounding (2^-8 relative) of every product's inputs, grown through the
 * layers, moves it by a few percent; a product that reads the wrong rows,
 * scales or buffer makes it O(1). Bound 0.1. (The largest single change,
 * printed too, is a poor measure: over 3 million logits it is an extreme
 * value, 5 to 17% of the largest logit on the tiny synthetic models.) */
static void prefill_gemms(gemma4_model *m, const char *type, const int32_t *ids, int n, const float *ref) {
    setenv("G4_GPU_GEMM_MIN", "1", 1);
    float *got = eval_logits(m, GEMMA4_DEVICE_GPU, ids, n, n);
    unsetenv("G4_GPU_GEMM_MIN");
    CHECK(got != NULL, "%s prefill GEMMs: %s", type, gemma4_last_error());
    if (!got) return;
    size_t nv = (size_t)n * gemma4_vocab_size(m);
    double change = 0, size = 0, scale = 0;
    for (size_t i = 0; i < nv; i++) {
        change += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
        size += (double)ref[i] * ref[i];
        scale = fmax(scale, fabsf(ref[i]));
    }
    double rel = sqrt(change / size);
    float d = max_abs_diff(got, ref, nv);
    CHECK(rel <= 0.1, "%s prefill GEMMs vs float32 activations: relative RMS change %.3g > 0.1", type, rel);
    printf("  %-6s prefill GEMMs (bf16) vs float32 activations: relative RMS change %.2e, max|dlogit| %.2e (%.1f%% of "
           "max|logit|)\n", type, rel, d, 100 * d / scale);
    free(got);
}

/* Copies a GGUF file with every fused ffn_gate_up_exps tensor split into
 * ffn_gate_exps and ffn_up_exps, as some converters write them (rows are
 * whole blocks, so the halves are byte ranges of each expert). */
static int split_experts(const char *src, const char *dst) {
    gguf_file *f;
    gguf_writer *w;
    g4_error err;
    if (gguf_open(src, &f, &err)) return -1;
    if (gguf_writer_open(dst, &w, &err)) { gguf_close(f); return -1; }
    int rc = 0;
    for (int64_t i = 0; i < gguf_n_kv(f) && !rc; i++) {
        const char *key = gguf_kv_key(f, i);
        const gguf_value *v = gguf_kv_value(f, i);
        switch (v->type) {
        case GGUF_TYPE_STRING: rc = gguf_writer_add_str(w, key, v->str, &err); break;
        case GGUF_TYPE_UINT32: rc = gguf_writer_add_u32(w, key, v->v.u32, &err); break;
        case GGUF_TYPE_FLOAT32: rc = gguf_writer_add_f32(w, key, v->v.f32, &err); break;
        case GGUF_TYPE_BOOL: rc = gguf_writer_add_bool(w, key, v->v.b, &err); break;
        case GGUF_TYPE_ARRAY:
            rc = v->arr.type == GGUF_TYPE_STRING ? gguf_writer_add_arr_str(w, key, v->arr.strs, v->arr.n, &err)
                                                 : gguf_writer_add_arr(w, key, v->arr.type, v->arr.data, v->arr.n, &err);
            break;
        default: rc = -1; snprintf(err.msg, sizeof err.msg, "%s: value type %d not copied", key, (int)v->type); break;
        }
    }
    for (int pass = 0; pass < 2 && !rc; pass++) /* tensor infos, then data */
        for (int64_t i = 0; i < gguf_n_tensors(f) && !rc; i++) {
            const g4_tensor *t = gguf_tensor(f, i);
            const char *fused = strstr(t->name, "ffn_gate_up_exps");
            if (!fused) {
                rc = pass ? gguf_writer_write(w, t->data, t->nbytes, &err)
                          : gguf_writer_add_tensor(w, t->name, t->dtype, t->ndim, t->shape, &err);
                continue;
            }
            int64_t E = t->shape[0], Im = t->shape[1] / 2, shape[3] = {E, Im, t->shape[2]};
            size_t half_bytes = t->nbytes / (size_t)(2 * E);
            for (int up = 0; up < 2 && !rc; up++) {
                char name[96];
                snprintf(name, sizeof name, "%.*s%s", (int)(fused - t->name), t->name,
                         up ? "ffn_up_exps.weight" : "ffn_gate_exps.weight");
                if (!pass) rc = gguf_writer_add_tensor(w, name, t->dtype, 3, shape, &err);
                for (int64_t e = 0; pass && e < E && !rc; e++)
                    rc = gguf_writer_write(w, (const char *)t->data + (size_t)(2 * e + up) * half_bytes, half_bytes, &err);
            }
        }
    if (rc) {
        fprintf(stderr, "split_experts: %s\n", err.msg);
        gguf_writer_abort(w);
    } else {
        rc = gguf_writer_finish(w, &err);
    }
    gguf_close(f);
    return rc ? -1 : 0;
}

/* The GPU decodes these types into codes and float32 factors at upload
 * (src/cuda/weights.cu), which must give exactly the weights GGML's
 * dequantisers give. The reference is the CPU on the same file converted
 * to f32 (gemma4_convert decodes with those dequantisers): the same weights,
 * float32 activations, as the GPU's GEMV. What is left is the order of
 * float32 sums, ~1e-6 relative per dot product, grown through the layers;
 * the bound is 1e-4 of the largest |logit|. A wrong code, scale or min
 * moves logits by O(0.1..1). One-shot (GEMV of several rows) and token by
 * token (graphs) both. With split_check, the file rewritten with split
 * expert gate/up tensors must give bit-identical GPU logits (fused on upload). */
static void kquant_exact(const char *dir, const char *type, int split_check) {
    char cfg[600], q[600], ref[600], split[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(q, sizeof q, "%s/%s.gguf", dir, type);
    snprintf(ref, sizeof ref, "%s/%s-f32.gguf", dir, type);
    snprintf(split, sizeof split, "%s/%s-split.gguf", dir, type);
    if (gemma4_synth(NULL, cfg, type, q, NULL, 11, 0.15f, NULL, NULL) || gemma4_convert(q, ref, "f32", NULL, NULL)) {
        CHECK(0, "%s: %s", type, gemma4_last_error());
        return;
    }
    gemma4_model *mq = NULL, *mr = NULL;
    CHECK(gemma4_model_load(q, &mq) == 0 && gemma4_model_load(ref, &mr) == 0, "%s: %s", type, gemma4_last_error());
    int n = 12, V = mq ? gemma4_vocab_size(mq) : 0;
    int32_t ids[12];
    for (int i = 0; i < n; i++) ids[i] = (2 + 977 * i) % (V ? V : 1);
    float *cpu = mr ? eval_logits(mr, GEMMA4_DEVICE_CPU, ids, n, n) : NULL;
    float *one_shot = mq ? eval_logits(mq, GEMMA4_DEVICE_GPU, ids, n, n) : NULL;
    float *by_token = mq ? eval_logits(mq, GEMMA4_DEVICE_GPU, ids, n, 1) : NULL;
    CHECK(cpu && one_shot && by_token, "%s: %s", type, gemma4_last_error());
    if (cpu && one_shot && by_token) {
        size_t nv = (size_t)n * V;
        float scale = 0;
        for (size_t i = 0; i < nv; i++) scale = fmaxf(scale, fabsf(cpu[i]));
        float d1 = max_abs_diff(one_shot, cpu, nv), d2 = max_abs_diff(by_token, cpu, nv);
        CHECK(d1 <= 1e-4f * scale && d2 <= 1e-4f * scale, "%s: GPU vs CPU on the same weights %.3g / %.3g > 1e-4 x %.3g",
              type, d1, d2, scale);
        printf("  %-6s GPU vs CPU (f32 of the same weights): max|dlogit| %.2e one-shot, %.2e token by token (max|logit| %.1f)\n",
               type, d1, d2, scale);
        prefill_gemms(mq, type, ids, n, cpu);
    }
    if (split_check && one_shot) {
        gemma4_model *ms = NULL;
        CHECK(split_experts(q, split) == 0 && gemma4_model_load(split, &ms) == 0, "%s split experts: %s", type,
              gemma4_last_error());
        float *s = ms ? eval_logits(ms, GEMMA4_DEVICE_GPU, ids, n, n) : NULL;
        CHECK(s && memcmp(s, one_shot, sizeof(float) * (size_t)n * V) == 0, "%s: split expert tensors give other GPU logits",
              type);
        if (s) printf("  %-6s split ffn_gate_exps/ffn_up_exps: GPU logits bit-identical to fused\n", type);
        free(s);
        gemma4_model_free(ms);
        unlink(split);
    }
    free(cpu);
    free(one_shot);
    free(by_token);
    gemma4_model_free(mq);
    gemma4_model_free(mr);
    unlink(q);
    unlink(ref);
}

static void kquant_types(void) {
    char dir[] = "/tmp/g4-kquant-XXXXXX", cfg[64];
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp failed"); return; }
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "wb");
    int ok = f && fputs(kquant_config, f) >= 0;
    if (f) ok &= fclose(f) == 0;
    CHECK(ok, "cannot write %s", cfg);
    const char *types[] = {"q4_k_m", "q4_k", "q5_k", "q6_k", "q4_1", "q5_0", "q5_1"};
    for (int i = 0; i < 7; i++) kquant_exact(dir, types[i], i == 0);
    unlink(cfg);
    rmdir(dir);
}

/* Token-by-token logits of ids with the switch `var` on and off; the run
 * with it on must have launched the fused kernel (count() went up) and the
 * other not. Both NULL on failure. */
static int on_off_logits(gemma4_model *m, const char *name, const char *var, long (*count)(void), const int32_t *ids,
                         int n, float **on, float **off) {
    long before = count();
    setenv(var, "1", 1);
    *on = eval_logits(m, GEMMA4_DEVICE_GPU, ids, n, 1);
    long used = count() - before;
    setenv(var, "0", 1);
    *off = eval_logits(m, GEMMA4_DEVICE_GPU, ids, n, 1);
    unsetenv(var);
    CHECK(*on && *off, "%s: %s", name, gemma4_last_error());
    CHECK(used > 0 && count() - before == used, "%s: %s=1 made %ld fused launches, %s=0 %ld", name, var, used, var,
          count() - before - used);
    return *on && *off;
}

/* The router's GEMV that also picks the experts (its last block runs the
 * top-k) does the separate kernels' arithmetic, so token-by-token logits
 * with it on and off must be bit-identical; on the MoE fixtures of f32 and
 * bf16 weights. */
static void fused_decode(gemma4_model *m, const char *name, const int32_t *ids, int n) {
    float *a, *b;
    if (on_off_logits(m, name, "G4_GPU_FUSE_ROUTE", g4_gpu_fused_route_count, ids, n, &a, &b)) {
        float d = max_abs_diff(a, b, (size_t)n * gemma4_vocab_size(m));
        CHECK(d == 0, "%s: router with top-k differs from the separate kernels by %.3g", name, d);
        printf("  %-16s %d tokens one at a time, router with top-k vs separate kernels: max|dlogit| %.1e\n", name, n, d);
    }
    free(a);
    free(b);
}

static void fused_decode_models(const char *root) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/moe", root);
    gemma4_model *m;
    int32_t ids[512];
    if (gemma4_model_load(dir, &m)) { CHECK(0, "%s: %s", dir, gemma4_last_error()); return; }
    int n = read_ids(dir, ids, 512);
    fused_decode(m, "moe (f32)", ids, n);
    gemma4_model_free(m);
    snprintf(dir, sizeof dir, "%s/moe-bf16", root);
    if (gemma4_model_load(dir, &m)) { CHECK(0, "%s: %s", dir, gemma4_last_error()); return; }
    n = read_ids(dir, ids, 512);
    fused_decode(m, "moe-bf16", ids, n);
    gemma4_model_free(m);
}

/* A prompt whose logits are wanted at a few rows only: after the last layer
 * that writes the KV cache the GPU carries just those rows (forward.cu,
 * keep_logit_rows). On the float32 e-like fixture each wanted row must still
 * be within 2e-3 of transformers with the same argmax (the fixture bound),
 * for scattered rows, a consecutive tail, and none at all (then the next
 * token, evaluated alone, must see a complete cache). */
static void kept_rows(const char *root, const char *name) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    gemma4_model *m;
    if (gemma4_model_load(dir, &m)) { CHECK(0, "%s: %s", dir, gemma4_last_error()); return; }
    int V = gemma4_vocab_size(m);
    int32_t ids[512], pos[512];
    int8_t want[512];
    int n = read_ids(dir, ids, 512);
    float *ref = read_f32(dir, "logits.f32", (size_t)n * V);
    CHECK(n >= 12 && ref, "%s: no references", dir);
    for (int t = 0; t < n; t++) pos[t] = t;
    const int patterns[3][5] = {{4, 3, n / 2, n / 2 + 1, n - 1}, {3, n - 3, n - 2, n - 1}, {0}}; /* count, rows */
    for (int p = 0; ref && n >= 12 && p < 3; p++) {
        gemma4_context *c = new_ctx(m, GEMMA4_DEVICE_GPU, n + 1, n);
        int count = patterns[p][0];
        memset(want, 0, sizeof want);
        for (int i = 1; i <= count; i++) want[patterns[p][i]] = 1;
        /* no row wanted: the prompt stops short of its last token, which follows alone */
        gemma4_batch b = {count ? n : n - 1, ids, pos, NULL, want, NULL, NULL};
        int rc = !c || gemma4_decode(c, &b);
        if (!rc && !count) {
            gemma4_batch next = {1, ids + n - 1, pos + n - 1, NULL, NULL, NULL, NULL};
            rc = gemma4_decode(c, &next);
        }
        CHECK(rc == 0, "%s kept rows %d: %s", dir, p, gemma4_last_error());
        float worst = 0;
        int agree = 1;
        for (int i = 0; !rc && i < (count ? count : 1); i++) {
            int row = count ? patterns[p][i + 1] : n - 1;
            const float *got = gemma4_get_logits(c, i), *r = ref + (size_t)row * V;
            float d = got ? max_abs_diff(got, r, V) : INFINITY;
            if (!(d <= worst)) worst = d;
            agree &= got && argmax(got, V) == argmax(r, V);
        }
        CHECK(!rc && worst <= 2e-3f && agree, "%s kept rows %d: max|dlogit| %.3g, argmax %s", dir, p, worst,
              agree ? "agrees" : "differs");
        printf("  %-16s %d of %d rows wanted (pattern %d): max|dlogit| %.2e\n", name, count, n, p, worst);
        gemma4_context_free(c);
    }
    free(ref);
    gemma4_model_free(m);
}

/* The decode GEMV that gives each warp 2 or 4 rows (gemv.cu,
 * gemv_rows_kernel) forms every row's sum in the one-row kernel's order, so
 * token-by-token logits must be bit-identical to it; for every quantised
 * type (one row a warp: G4_GEMV_ROWS_PER_WARP=1), and for bf16 when asked.
 * Rows are shared among warps on small matrices (G4_GEMV_FILL,
 * G4_GEMV_SPLIT_ROWS), which the tiny model's all are: both are turned off
 * so every launch may take the new kernel. */
static float *rows_decode(gemma4_model *m, const char *var, const char *rw, const int32_t *ids, int n) {
    setenv(var, rw, 1);
    float *out = eval_logits(m, GEMMA4_DEVICE_GPU, ids, n, 1);
    unsetenv(var);
    return out;
}

static void rows_per_warp(void) {
    const char *types[] = {"q8_0", "q4_0", "q4_k_m", "q5_k", "bf16"};
    setenv("G4_GEMV_SPLIT_ROWS", "1", 1);
    setenv("G4_GEMV_FILL", "0", 1);
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        gemma4_model *m;
        if (gemma4_model_synthetic("tiny", types[k], &m)) { CHECK(0, "synthetic %s: %s", types[k], gemma4_last_error()); continue; }
        const char *var = strcmp(types[k], "bf16") ? "G4_GEMV_ROWS_PER_WARP" : "G4_GEMV_ROWS_PER_WARP_BF16";
        int n = 10;
        int32_t ids[10];
        for (int i = 0; i < n; i++) ids[i] = 5 + 131 * i;
        float *one = rows_decode(m, var, "1", ids, n);
        for (int rw = 2; rw <= 4; rw += 2) {
            char s[2] = {(char)('0' + rw), 0};
            long before = g4_gpu_rows_kernel_count();
            float *got = rows_decode(m, var, s, ids, n);
            long used = g4_gpu_rows_kernel_count() - before;
            CHECK(one && got, "%s rows per warp: %s", types[k], gemma4_last_error());
            if (one && got) {
                float d = max_abs_diff(one, got, (size_t)n * gemma4_vocab_size(m));
                CHECK(d == 0 && used > 0, "%s, %d rows a warp: max|dlogit| %.3g vs one row (launches %ld)", types[k], rw, d, used);
                printf("  %-6s %d rows a warp vs one, %d tokens one at a time: max|dlogit| %.1e (%ld launches)\n", types[k], rw,
                       n, d, used);
            }
            free(got);
        }
        free(one);
        gemma4_model_free(m);
    }
    unsetenv("G4_GEMV_SPLIT_ROWS");
    unsetenv("G4_GEMV_FILL");
}

/* Decode attention with the q/k norms, RoPE and the cache write folded in,
 * against the separate kernels, token by token past the sliding window. The
 * same maths, but the squares of a norm are summed in another order and the
 * token's own key joins warp 0's online softmax first, so float32 rounding
 * differs: bound 1e-4 × max|logit| (as the block types': a rotation by a
 * wrong angle, a missed norm weight or a wrong cache slot moves these logits
 * by O(0.1–1) of that). The folded kernel must have run, the other not. */
static void fused_rope(gemma4_model *m, const char *name, const int32_t *ids, int n) {
    size_t count = (size_t)n * gemma4_vocab_size(m);
    float *a, *b;
    if (on_off_logits(m, name, "G4_GPU_FUSE_ROPE", g4_gpu_attention_rope_count, ids, n, &a, &b)) {
        float d = max_abs_diff(a, b, count), top = 0;
        for (size_t i = 0; i < count; i++) top = fmaxf(top, fabsf(b[i]));
        CHECK(d <= 1e-4f * top, "%s: attention with norms and RoPE differs from the separate kernels by %.3g (max|logit| %.3g)",
              name, d, top);
        printf("  %-16s %d tokens one at a time, attention with norms and RoPE vs separate: max|dlogit| %.1e of %.3g\n", name,
               n, d, top);
    }
    free(a);
    free(b);
}

static void fused_rope_models(const char *root) {
    const char *fixtures[] = {"moe", "e-like", "dense-bf16"};
    int32_t ids[512];
    for (int i = 0; i < 3; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", root, fixtures[i]);
        gemma4_model *m;
        if (gemma4_model_load(dir, &m)) { CHECK(0, "%s: %s", dir, gemma4_last_error()); continue; }
        fused_rope(m, fixtures[i], ids, read_ids(dir, ids, 512));
        gemma4_model_free(m);
    }
    gemma4_model *m; /* head dims 64 and 128, partial RoPE on the full-attention layers, window 16 */
    if (gemma4_model_synthetic("tiny", "bf16", &m)) { CHECK(0, "synthetic bf16: %s", gemma4_last_error()); return; }
    int n = 40;
    for (int i = 0; i < n; i++) ids[i] = 7 + 613 * i;
    fused_rope(m, "synthetic tiny", ids, n);
    gemma4_model_free(m);
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "tests/fixtures";
    device_choice(root);
    if (gemma4_gpu_available()) {
        setenv("G4_GPU_GEMM_MIN", "1", 1); /* every product through cuBLAS */
        bf16_tensor_cores(root, "dense-bf16");
        bf16_tensor_cores(root, "e-like-bf16");
        bf16_tensor_cores(root, "moe-bf16");
        unsetenv("G4_GPU_GEMM_MIN");
        const char *types[] = {"bf16", "f32", "q8_0", "q4_0", "q4_k_m", "q5_k"};
        for (size_t i = 0; i < sizeof types / sizeof *types; i++) synthetic(types[i]);
        kquant_types();
        fused_decode_models(root);
        fused_rope_models(root);
        rows_per_warp();
        kept_rows(root, "e-like"); /* GEMVs for these 40 rows */
        setenv("G4_GPU_GEMM_MIN", "1", 1);
        kept_rows(root, "e-like"); /* SGEMM */
        unsetenv("G4_GPU_GEMM_MIN");
    }
    return check_exit("test_gpu");
}
