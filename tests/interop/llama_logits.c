/* Runs a GGUF file through llama.cpp (its prebuilt libllama) and writes the
 * logits of every prompt position, float32 [tokens][vocab], the format of
 * `gemma4 logits`: the independent second implementation for the interop
 * tests. usage: llama_logits MODEL.gguf 2,17,301 OUT.f32 [threads] */
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: llama_logits MODEL.gguf IDS OUT.f32 [threads]\n");
        return 2;
    }
    int32_t ids[4096];
    int n = 0;
    for (char *p = argv[2]; *p && n < 4096;) {
        ids[n++] = (int32_t)strtol(p, &p, 10);
        if (*p == ',') p++;
    }
    llama_log_set(quiet, NULL);
    ggml_backend_load_all();
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "llama.cpp could not load %s\n", argv[1]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n < 256 ? 256 : n + 16);
    cp.n_batch = cp.n_ubatch = (uint32_t)cp.n_ctx;
    cp.n_threads = cp.n_threads_batch = argc > 4 ? atoi(argv[4]) : 2;
    /* float32 KV cache: the default f16 cache rounds K and V, which is not
     * what a float32 reference computes */
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "llama.cpp could not create a context\n"); return 1; }
    struct llama_batch batch = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        batch.token[i] = ids[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = n;
    if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "llama_decode failed\n"); return 1; }
    int V = llama_vocab_n_tokens(llama_model_get_vocab(model));
    FILE *f = fopen(argv[3], "wb");
    for (int i = 0; f && i < n; i++) fwrite(llama_get_logits_ith(ctx, i), sizeof(float), (size_t)V, f);
    if (!f || fclose(f) != 0) { fprintf(stderr, "cannot write %s\n", argv[3]); return 1; }
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
