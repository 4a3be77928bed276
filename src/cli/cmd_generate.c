/* gemma4 generate: continue a prompt of token ids through the KV cache and
 * print the new ids on one line. */
#include "cli/args.h"
#include "cli/common.h"
#include "cli/textgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: gemma4 generate -m PATH --ids 2,17,301 [-n 24] [sampling options]\n\n"
           "Prints the generated token ids, space-separated, on one line.\n\n" MODEL_OPTS_HELP
           "      --ids LIST       comma-separated prompt token ids\n"
           "  -n, --n-predict N    tokens to generate (default 24)\n"
           "      --temp T         temperature (default 1.0; 0 = greedy)\n"
           "      --top-k K        keep the K most likely tokens (default 64; 0 = off)\n"
           "      --top-p P        nucleus mass (default 0.95; 1 = off)\n"
           "      --min-p P        drop tokens below P x the top probability (default 0 = off)\n"
           "      --seed S         random seed (default 0)\n"
           "      --ignore-eos     keep going past end-of-sequence tokens\n");
}

static int is_eos(const gemma4_model_info *in, int32_t id) {
    for (int i = 0; i < in->n_eos_token_ids; i++)
        if (in->eos_token_ids[i] == id) return 1;
    return 0;
}

int cmd_generate(int argc, char **argv) {
    model_opts o;
    model_opts_init(&o);
    gen_opts g;
    gen_opts_init(&g);
    g.n_predict = 24;
    int32_t *ids = NULL;
    int n_ids = 0, ignore_eos = 0, rc = 2;
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); free(ids); return 0; }
        int r = model_opts_parse(&o, argc, argv, &i);
        if (!r) r = gen_opts_parse(&g, argc, argv, &i);
        if (r < 0) goto done;
        if (r) continue;
        if (!strcmp(a, "--ignore-eos")) { ignore_eos = 1; continue; }
        if (!strcmp(a, "--ids")) {
            free(ids);
            if (!(v = arg_value(argc, argv, &i)) || arg_ids(a, v, &ids, &n_ids)) goto done;
        } else {
            fprintf(stderr, "gemma4 generate: unknown option %s\n", a);
            goto done;
        }
    }
    if (g.n_stops) { fprintf(stderr, "gemma4 generate: --stop needs text; generate works on ids (use gemma4 run)\n"); goto done; }
    if (g.n_predict < 0) { fprintf(stderr, "gemma4 generate: -n must be given as a count\n"); goto done; }
    int n_predict = g.n_predict;
    gemma4_sampler_params sp = g.sampling;
    if (!ids) { fprintf(stderr, "gemma4 generate: --ids is required\n"); goto done; }
    if (!o.ctx.n_ctx) o.ctx.n_ctx = n_ids + n_predict;
    gemma4_model *m;
    gemma4_context *ctx;
    gemma4_sampler *smp;
    rc = 1;
    if (model_open(&o, &m, &ctx)) goto done;
    if (gemma4_sampler_new(&sp, &smp)) { fprintf(stderr, "gemma4: bad sampling parameters\n"); goto close; }
    gemma4_model_info in;
    gemma4_model_get_info(m, &in);
    int V = gemma4_vocab_size(m);
    if (gemma4_eval(ctx, 0, ids, n_ids, NULL)) { fprintf(stderr, "gemma4: %s\n", gemma4_last_error()); goto free_sampler; }
    for (int k = 0; k < n_predict; k++) {
        int32_t next = gemma4_sample(smp, gemma4_get_logits(ctx, 0), V);
        printf(k ? " %d" : "%d", next);
        fflush(stdout);
        if (!ignore_eos && is_eos(&in, next)) break;
        if (k + 1 < n_predict && gemma4_eval(ctx, 0, &next, 1, NULL)) {
            fprintf(stderr, "\ngemma4: %s\n", gemma4_last_error());
            goto free_sampler;
        }
    }
    printf("\n");
    rc = 0;
free_sampler:
    gemma4_sampler_free(smp);
close:
    gemma4_context_free(ctx);
    gemma4_model_free(m);
done:
    free(ids);
    return rc;
}
