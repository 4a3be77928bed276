/* gemma4 eval-quant: how much a quantised file changes the model's
 * next-token distribution. For each type, the reference model is converted
 * to a temporary GGUF and both run the same prompt; reported per type: top-1
 * agreement and mean KL(reference || quantised) over all positions, and the
 * file size. */
#include "cli/args.h"
#include "cli/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static float *run_logits(const char *path, const int32_t *ids, int n, int threads, int *V) {
    gemma4_model *m;
    gemma4_context *ctx;
    model_opts o;
    model_opts_init(&o);
    o.model_path = path;
    o.ctx.n_ctx = n;
    o.ctx.n_batch = n;
    o.ctx.n_threads = threads;
    if (model_open(&o, &m, &ctx)) return NULL;
    *V = gemma4_vocab_size(m);
    float *out = malloc(sizeof(float) * (size_t)n * (size_t)*V);
    if (out && gemma4_eval(ctx, 0, ids, n, out)) {
        fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
        free(out);
        out = NULL;
    }
    gemma4_context_free(ctx);
    gemma4_model_free(m);
    return out;
}

/* log-softmax in place */
static void log_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)(x[i] - mx));
    float lse = mx + (float)log(s);
    for (int i = 0; i < n; i++) x[i] -= lse;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

int cmd_eval_quant(int argc, char **argv) {
    const char *model = NULL, *types = "q8_0,q6_k,q5_k,q4_k_m,q4_k,q5_0,q4_0", *v;
    int32_t *ids = NULL;
    int n_ids = 0, n_random = 128, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: gemma4 eval-quant -m MODEL [--types q8_0,q4_0,...] [--ids LIST | -n 128]\n\n"
                   "Converts MODEL (checkpoint directory or GGUF) to each type and reports top-1 agreement and\n"
                   "mean KL divergence of the next-token distribution against MODEL itself.\n"
                   "  --ids LIST   prompt token ids (default: -n ids spread over the vocabulary)\n"
                   "  -t N         threads\n");
            free(ids);
            return 0;
        }
        if (!(v = arg_value(argc, argv, &i))) { free(ids); return 2; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--types")) types = v;
        else if (!strcmp(a, "--ids")) { free(ids); if (arg_ids(a, v, &ids, &n_ids)) return 2; }
        else if (!strcmp(a, "-n")) { if (arg_int(a, v, 2, 1 << 16, &n_random)) { free(ids); return 2; } }
        else if (!strcmp(a, "-t")) { if (arg_int(a, v, 1, 1024, &threads)) { free(ids); return 2; } }
        else { fprintf(stderr, "gemma4 eval-quant: unknown option %s\n", a); free(ids); return 2; }
    }
    if (!model) { fprintf(stderr, "gemma4 eval-quant: no model given (-m PATH)\n"); free(ids); return 2; }
    int V = 0;
    if (!ids) { /* spread over the vocabulary; the vocabulary size comes with the first run */
        n_ids = n_random;
        ids = malloc(sizeof(int32_t) * (size_t)n_ids);
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (int i = 0; i < n_ids; i++) { x = x * 6364136223846793005ull + 1; ids[i] = i ? (int32_t)(x >> 40) : 2; }
    }
    float *ref = NULL;
    for (int attempt = 0; attempt < 2 && !ref; attempt++) {
        ref = run_logits(model, ids, n_ids, threads, &V);
        if (!ref && attempt == 0 && V > 3) /* ids were beyond a small vocabulary: fold them in */
            for (int i = 1; i < n_ids; i++) ids[i] = 3 + ids[i] % (V - 3);
    }
    if (!ref) { free(ids); return 1; }
    for (int t = 0; t < n_ids * V; t += V) log_softmax(ref + t, V);

    printf("| type | file size | top-1 agreement | mean KL |\n|---|---|---|---|\n");
    char list[256], tmp[] = "/tmp/g4evalXXXXXX";
    snprintf(list, sizeof list, "%s", types);
    if (!mkdtemp(tmp)) { free(ref); free(ids); return 1; }
    int rc = 0;
    for (char *type = strtok(list, ","); type; type = strtok(NULL, ",")) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s.gguf", tmp, type);
        if (gemma4_convert(model, path, type, NULL, NULL)) { fprintf(stderr, "gemma4: %s\n", gemma4_last_error()); rc = 1; break; }
        int Vq;
        float *q = run_logits(path, ids, n_ids, threads, &Vq);
        struct stat st;
        stat(path, &st);
        unlink(path);
        if (!q || Vq != V) { free(q); rc = 1; break; }
        double kl = 0;
        int agree = 0;
        for (int r = 0; r < n_ids; r++) {
            float *p = ref + (size_t)r * V, *lq = q + (size_t)r * V;
            agree += argmax(p, V) == argmax(lq, V);
            log_softmax(lq, V);
            for (int i = 0; i < V; i++) kl += exp((double)p[i]) * ((double)p[i] - lq[i]);
        }
        printf("| %s | %.2f MiB | %.1f%% | %.5f |\n", type, st.st_size / 1048576.0, 100.0 * agree / n_ids, kl / n_ids);
        fflush(stdout);
        free(q);
    }
    rmdir(tmp);
    free(ref);
    free(ids);
    return rc;
}
