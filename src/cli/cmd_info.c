/* gemma4 info: what a checkpoint is and what running it will take. */
#include "cli/args.h"
#include "cli/common.h"

#include <stdio.h>
#include <string.h>

/* 1234567 → "1.23 M" */
static const char *human(double n, char *buf, size_t len) {
    if (n >= 1e9) snprintf(buf, len, "%.3f B", n / 1e9);
    else if (n >= 1e6) snprintf(buf, len, "%.3f M", n / 1e6);
    else snprintf(buf, len, "%.0f", n);
    return buf;
}

static void print_bytes(const char *label, uint64_t b) {
    printf("%-28s %.2f GiB (%llu bytes)\n", label, (double)b / (1u << 30), (unsigned long long)b);
}

int cmd_info(int argc, char **argv) {
    model_opts o;
    model_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: gemma4 info -m PATH [--ctx N]\n\nPrints the architecture, parameter counts and memory needs.\n\n" MODEL_OPTS_HELP);
            return 0;
        }
        int r = model_opts_parse(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r == 0) { fprintf(stderr, "gemma4 info: unknown option %s\n", argv[i]); return 2; }
    }
    if (!o.model_path) { fprintf(stderr, "gemma4 info: no model given (-m PATH)\n"); return 2; }
    gemma4_model *m;
    if (gemma4_model_load(o.model_path, &m)) { fprintf(stderr, "gemma4: %s\n", gemma4_last_error()); return 1; }
    gemma4_model_info in;
    gemma4_model_get_info(m, &in);
    printf("model                        %s\n", o.model_path);
    printf("layers                       %d (%d sliding, window %d; %d full; %d KV-shared)\n", in.n_layers,
           in.n_sliding_layers, in.sliding_window, in.n_full_layers, in.n_kv_shared_layers);
    printf("hidden size                  %d, %d query heads\n", in.hidden_size, in.n_heads);
    printf("vocabulary                   %d\n", in.vocab_size);
    if (in.per_layer_input_dim) printf("per-layer embeddings         %d per layer\n", in.per_layer_input_dim);
    if (in.n_experts) printf("mixture of experts           %d experts, top %d\n", in.n_experts, in.top_k_experts);
    printf("max positions                %d\n", in.max_positions);
    char a[32], b[32], c[32];
    printf("parameters                   %s (embedding tables %s; active per token %s)\n", human((double)in.n_params, a, sizeof a),
           human((double)in.n_embedding_params, b, sizeof b), human((double)in.n_active_params, c, sizeof c));
    printf("weight storage               %s\n", in.weight_dtype);
    print_bytes("weights (memory-mapped)", in.weight_bytes);
    int ctxs[] = {o.ctx.n_ctx ? o.ctx.n_ctx : 4096, 32768, in.max_positions};
    for (int i = 0; i < 3; i++) {
        if (ctxs[i] > in.max_positions || (i > 0 && ctxs[i] == ctxs[i - 1]) || (i == 2 && ctxs[2] == ctxs[0])) continue;
        char label[64];
        int f16 = o.ctx.kv_type == GEMMA4_KV_F16;
        snprintf(label, sizeof label, f16 ? "KV (f16) at %d tokens" : "KV cache at %d tokens", ctxs[i]);
        print_bytes(label, gemma4_kv_cache_bytes(m, ctxs[i], 256) / (f16 ? 2 : 1)); /* every element halves */
    }
    gemma4_model_free(m);
    return 0;
}
