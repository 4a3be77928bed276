/* gemma4 logits: one prefill over a prompt, every position's logits to a
 * file (float32 little-endian, [tokens][vocab]). */
#include "cli/args.h"
#include "cli/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_file(const char *path, const float *data, size_t n) {
    /* a temporary name, renamed at the end: no half-written output on failure */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { perror(tmp); return -1; }
    int ok = fwrite(data, sizeof(float), n, f) == n;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "gemma4: cannot write %s\n", path);
        remove(tmp);
        return -1;
    }
    return 0;
}

int cmd_logits(int argc, char **argv) {
    model_opts o;
    model_opts_init(&o);
    const char *out = NULL, *v;
    int32_t *ids = NULL;
    int n_ids = 0, rc = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: gemma4 logits -m PATH --ids 2,17,301 -o OUT.f32\n\n"
                   "Runs the prompt and writes the logits of every position, float32 little-endian,\n"
                   "row-major [tokens][vocab].\n\n" MODEL_OPTS_HELP
                   "      --ids LIST       comma-separated prompt token ids\n"
                   "  -o, --output FILE    where to write the logits\n");
            free(ids);
            return 0;
        }
        int r = model_opts_parse(&o, argc, argv, &i);
        if (r < 0) goto done;
        if (r) continue;
        if (!strcmp(argv[i], "--ids")) {
            free(ids);
            if (!(v = arg_value(argc, argv, &i)) || arg_ids(argv[i - 1], v, &ids, &n_ids)) goto done;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (!(out = arg_value(argc, argv, &i))) goto done;
        } else {
            fprintf(stderr, "gemma4 logits: unknown option %s\n", argv[i]);
            goto done;
        }
    }
    if (!ids || !out) { fprintf(stderr, "gemma4 logits: --ids and -o are required\n"); goto done; }
    if (!o.ctx.n_ctx) o.ctx.n_ctx = n_ids;
    gemma4_model *m;
    gemma4_context *ctx;
    rc = 1;
    if (model_open(&o, &m, &ctx)) goto done;
    size_t V = (size_t)gemma4_vocab_size(m);
    float *logits = malloc(sizeof(float) * V * (size_t)n_ids);
    if (!logits) fprintf(stderr, "gemma4: out of memory for %d x %zu logits\n", n_ids, V);
    else if (gemma4_eval(ctx, 0, ids, n_ids, logits)) fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
    else if (!write_file(out, logits, V * (size_t)n_ids)) rc = 0;
    free(logits);
    gemma4_context_free(ctx);
    gemma4_model_free(m);
done:
    free(ids);
    return rc;
}
