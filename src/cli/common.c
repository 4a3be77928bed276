#include "cli/common.h"

#include "cli/args.h"

#include <stdio.h>
#include <string.h>

void model_opts_init(model_opts *o) {
    memset(o, 0, sizeof *o);
    o->ctx.device = GEMMA4_DEVICE_AUTO;
}

int model_opts_parse(model_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!(v = arg_value(argc, argv, i))) return -1;
        o->model_path = v;
        return 1;
    }
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!(v = arg_value(argc, argv, i))) return -1;
        return arg_int(a, v, 1, 1024, &o->ctx.n_threads) ? -1 : 1;
    }
    if (!strcmp(a, "--ctx")) {
        if (!(v = arg_value(argc, argv, i))) return -1;
        return arg_int(a, v, 1, 1 << 30, &o->ctx.n_ctx) ? -1 : 1;
    }
    if (!strcmp(a, "--gpu") || !strcmp(a, "--cpu")) {
        o->ctx.device = a[2] == 'g' ? GEMMA4_DEVICE_GPU : GEMMA4_DEVICE_CPU;
        return 1;
    }
    if (!strcmp(a, "--kv-cache")) {
        if (!(v = arg_value(argc, argv, i))) return -1;
        if (strcmp(v, "f32") && strcmp(v, "f16")) {
            fprintf(stderr, "gemma4: --kv-cache takes f32 or f16, not '%s'\n", v);
            return -1;
        }
        o->ctx.kv_type = !strcmp(v, "f16") ? GEMMA4_KV_F16 : GEMMA4_KV_F32;
        return 1;
    }
    if (!strcmp(a, "--batch")) {
        if (!(v = arg_value(argc, argv, i))) return -1;
        return arg_int(a, v, 1, 65536, &o->ctx.n_batch) ? -1 : 1;
    }
    return 0;
}

int model_open(const model_opts *o, gemma4_model **model, gemma4_context **ctx) {
    *model = NULL;
    *ctx = NULL;
    if (!o->model_path) {
        fprintf(stderr, "gemma4: no model given (-m PATH)\n");
        return -1;
    }
    if (gemma4_model_load(o->model_path, model)) {
        fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
        return -1;
    }
    if (gemma4_context_new(*model, &o->ctx, ctx)) {
        fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
        gemma4_model_free(*model);
        *model = NULL;
        return -1;
    }
    return 0;
}
