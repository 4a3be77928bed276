/* gemma4 bench: prompt-processing and decode speed, llama-bench style.
 * pp N: one prompt of N tokens from an empty cache; tg N: N tokens decoded one
 * at a time from an empty cache. Each test runs once to warm up, then
 * `repeats` times; the median is reported. */
#include "cli/args.h"
#include "cli/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds for one run of the test, or < 0 on error. */
static double run_once(gemma4_context *ctx, const int32_t *ids, int n, int decode, int depth) {
    gemma4_seq_clear(ctx, 0);
    if (decode && depth && gemma4_bench_fill_cache(ctx, 0, depth)) return -1;
    double t0 = now();
    if (!decode) {
        if (gemma4_eval(ctx, 0, ids, n, NULL)) return -1;
    } else {
        for (int i = 0; i < n; i++)
            if (gemma4_eval(ctx, 0, ids + i, 1, NULL)) return -1;
    }
    return now() - t0;
}

int cmd_bench(int argc, char **argv) {
    model_opts o;
    model_opts_init(&o);
    int n_prompt = 512, n_gen = 128, repeats = 3, depth = 0;
    const char *v, *synth = NULL, *synth_type = "bf16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: gemma4 bench -m PATH [-p 512] [-n 128] [-t THREADS] [-r 3]\n"
                   "       gemma4 bench --gpu --synth e2b|e4b|26b-a4b|31b [--type bf16|q8_0|q4_0|q4_k_m|...] [-p 2048] [-n 128]\n\n"
                   "Measures prompt processing (pp) and decode (tg) tokens/s: a warm-up run, then the median\n"
                   "of -r runs, and the peak resident memory.\n\n" MODEL_OPTS_HELP
                   "  -p N                 prompt tokens (0 = skip)\n"
                   "  -n N                 decoded tokens (0 = skip)\n"
                   "  -r N                 timed repeats (default 3)\n"
                   "  -d N                 decode at depth: tg starts after N cached positions (random keys and\n"
                   "                       values, CPU only), e.g. -d 32768 for decode at a 32K context\n"
                   "      --synth ARCH     random weights in a released model's shapes, made in GPU memory (no file)\n"
                   "      --type TYPE      their storage type (default bf16)\n"
                   "On a GPU it also reports the decode bound (measured copy bandwidth / weight bytes read per\n"
                   "token) and prefill matmul TFLOP/s against a measured bf16 cuBLAS GEMM.\n");
            return 0;
        }
        int r = model_opts_parse(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!(v = arg_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-p")) { if (arg_int(a, v, 0, 1 << 20, &n_prompt)) return 2; }
        else if (!strcmp(a, "-n")) { if (arg_int(a, v, 0, 1 << 20, &n_gen)) return 2; }
        else if (!strcmp(a, "-r")) { if (arg_int(a, v, 1, 1000, &repeats)) return 2; }
        else if (!strcmp(a, "-d")) { if (arg_int(a, v, 0, 1 << 24, &depth)) return 2; }
        else if (!strcmp(a, "--synth")) synth = v;
        else if (!strcmp(a, "--type")) synth_type = v;
        else { fprintf(stderr, "gemma4 bench: unknown option %s\n", a); return 2; }
    }
    int longest = n_prompt > n_gen ? n_prompt : n_gen;
    if (longest < 1) { fprintf(stderr, "gemma4 bench: nothing to measure (-p 0 -n 0)\n"); return 2; }
    if (!o.ctx.n_ctx) o.ctx.n_ctx = longest > depth + n_gen ? longest : depth + n_gen;
    if (!o.ctx.n_batch) o.ctx.n_batch = n_prompt > 0 && n_prompt < 512 ? n_prompt : 512;
    gemma4_model *m;
    gemma4_context *ctx;
    if (synth) {
        if (o.ctx.device == GEMMA4_DEVICE_AUTO) o.ctx.device = GEMMA4_DEVICE_GPU;
        if (gemma4_model_synthetic(synth, synth_type, &m)) { fprintf(stderr, "gemma4: %s\n", gemma4_last_error()); return 1; }
        if (gemma4_context_new(m, &o.ctx, &ctx)) {
            fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
            gemma4_model_free(m);
            return 1;
        }
        o.model_path = synth;
    } else if (model_open(&o, &m, &ctx)) {
        return 1;
    }
    gemma4_model_info in;
    gemma4_model_get_info(m, &in);
    gemma4_gpu_info gpu;
    int on_gpu = gemma4_gpu_info_get(ctx, &gpu) == 0;
    double bound = 0;
    if (on_gpu) {
        in.weight_bytes = gpu.weight_bytes;
        if (synth) in.weight_dtype = synth_type;
        bound = gpu.copy_gb_per_s * 1e9 / (double)gpu.decode_bytes;
        printf("GPU: device copy %.0f GB/s (read + write); decode reads %.2f GB of weights per token -> bound %.1f t/s; "
               "bf16 GEMM %.0f TFLOP/s\n\n", gpu.copy_gb_per_s, gpu.decode_bytes / 1e9, bound, gpu.gemm_tflops);
    }

    /* Ids spread over the vocabulary, the same on every run. */
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)longest);
    uint64_t x = 0x243f6a8885a308d3ull;
    for (int i = 0; i < longest; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = i == 0 ? in.bos_token_id : 3 + (int32_t)((x >> 33) % (uint64_t)(in.vocab_size - 3));
    }
    int threads = o.ctx.n_threads ? o.ctx.n_threads : gemma4_context_default_params().n_threads;
    char threads_text[16];
    snprintf(threads_text, sizeof threads_text, "%d", threads);
    if (on_gpu) printf("| model | weights | params | device | test | t/s | of the bound |\n|---|---|---|---|---|---|---|\n");
    else printf("| model | weights | params | threads | test | t/s |\n|---|---|---|---|---|---|\n");
    int rc = 0;
    for (int test = 0; test < 2 && !rc; test++) {
        int n = test ? n_gen : n_prompt;
        if (!n) continue;
        double *t = malloc(sizeof(double) * (size_t)(repeats + 1));
        for (int r = 0; r <= repeats && !rc; r++) {
            t[r] = run_once(ctx, ids, n, test, depth);
            if (t[r] < 0) { fprintf(stderr, "gemma4: %s\n", gemma4_last_error()); rc = 1; }
        }
        if (!rc) {
            qsort(t + 1, (size_t)repeats, sizeof(double), by_value); /* t[0] is the warm-up */
            double median = repeats % 2 ? t[1 + repeats / 2] : (t[repeats / 2] + t[1 + repeats / 2]) / 2;
            char label[48]; /* llama-bench's names: pp512, tg128, tg128@d4096 */
            if (test && depth) snprintf(label, sizeof label, "tg%d@d%d", n, depth);
            else snprintf(label, sizeof label, "%s%d", test ? "tg" : "pp", n);
            printf("| %s | %.2f GiB %s | %.3f B | %s | %s | %.2f |", o.model_path, in.weight_bytes / 1073741824.0,
                   in.weight_dtype, in.n_params / 1e9, on_gpu ? "GPU" : threads_text, label, n / median);
            if (on_gpu && test) printf(" %.0f%% of the bandwidth bound |", 100 * n / median / bound);
            if (on_gpu && !test) {
                /* only the last prompt token's logits are wanted: the others skip the KV-shared layers */
                double flops = 2.0 * ((double)gpu.prompt_matmul_params * (n - 1) + (double)gpu.matmul_params);
                double tflops = flops / median / 1e12;
                printf(" %.0f matmul TFLOP/s, %.0f%% of GEMM |", tflops, 100 * tflops / gpu.gemm_tflops);
            }
            printf("\n");
            fflush(stdout);
        }
        free(t);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (!rc) printf("\npeak RSS: %.2f GiB\n", ru.ru_maxrss / 1048576.0);
    free(ids);
    gemma4_context_free(ctx);
    gemma4_model_free(m);
    return rc;
}
