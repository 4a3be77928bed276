/* gemma4 convert / gemma4 quantize: write a model as GGUF (one function in
 * the library; two commands because users look for both). */
#include "cli/args.h"
#include "cli/common.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Redrawn in place on a terminal when the percentage moves; one line at the
 * end otherwise, so logs stay readable. */
static void progress_bar(void *ctx, uint64_t done, uint64_t total) {
    static int last = -1;
    const char *what = ctx;
    int permille = total ? (int)(1000.0 * (double)done / (double)total) : 1000;
    if (permille == last) return;
    last = permille;
    if (!isatty(2) && done < total) return;
    int width = 40, filled = permille * width / 1000;
    fprintf(stderr, "\r%s [%.*s%*s] %5.1f%%  %.1f / %.1f M weights", what, filled, "========================================",
            width - filled, "", permille / 10.0, done / 1e6, total / 1e6);
    if (done >= total) {
        fputc('\n', stderr);
        last = -1;
    }
}

static int run(const char *src, const char *dst, const char *type, const char *what) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (gemma4_convert(src, dst, type, progress_bar, (void *)what)) {
        fprintf(stderr, "\ngemma4: %s\n", gemma4_last_error());
        return 1;
    }
    if (gemma4_last_warning()) fprintf(stderr, "gemma4: warning: %s\n", gemma4_last_warning());
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "wrote %s (%s) in %.1f s\n", dst, type, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return 0;
}

static const char *types = "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m";

int cmd_convert(int argc, char **argv) {
    const char *type = "bf16", *pos[2] = {NULL, NULL};
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: gemma4 convert CHECKPOINT_DIR OUT.gguf [--type TYPE]\n\n"
                   "Writes a Hugging Face checkpoint as a GGUF file llama.cpp can load, with its tokenizer\n"
                   "(tokenizer.json, tokenizer_config.json, chat_template.jinja) when it has one.\n"
                   "TYPE: %s (default bf16). Norms and scales stay f32.\n", types);
            return 0;
        }
        if (!strcmp(argv[i], "--type") || !strcmp(argv[i], "-t")) {
            if (i + 1 >= argc) { fprintf(stderr, "gemma4 convert: %s needs a value\n", argv[i]); return 2; }
            type = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "gemma4 convert: unknown option %s\n", argv[i]);
            return 2;
        } else if (n_pos < 2) {
            pos[n_pos++] = argv[i];
        } else {
            fprintf(stderr, "gemma4 convert: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (n_pos != 2) { fprintf(stderr, "gemma4 convert: expected CHECKPOINT_DIR and OUT.gguf\n"); return 2; }
    return run(pos[0], pos[1], type, "converting");
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL};
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: gemma4 quantize IN.gguf OUT.gguf TYPE\n\nRe-writes a GGUF file with another tensor type.\nTYPE: %s\n", types);
            return 0;
        }
        if (argv[i][0] == '-' || n_pos == 3) { fprintf(stderr, "gemma4 quantize: unexpected argument %s\n", argv[i]); return 2; }
        pos[n_pos++] = argv[i];
    }
    if (n_pos != 3) { fprintf(stderr, "gemma4 quantize: expected IN.gguf OUT.gguf TYPE\n"); return 2; }
    return run(pos[0], pos[1], pos[2], "quantizing");
}

int cmd_synth(int argc, char **argv) {
    const char *arch = NULL, *config = NULL, *type = "q8_0", *out = NULL, *tokenizer = NULL;
    uint64_t seed = 0;
    float branch = 1.0f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: gemma4 synth --arch e2b|e4b|26b-a4b|31b|tiny [--type TYPE] [--tokenizer tokenizer.json] -o OUT.gguf\n"
                   "       gemma4 synth --config config.json [--type TYPE] [--tokenizer tokenizer.json] -o OUT.gguf\n\n"
                   "Writes a model with random weights in the exact released shapes, for speed and memory\n"
                   "measurements. TYPE: %s (default q8_0).\n"
                   "  --tokenizer PATH    put this tokenizer.json (and chat_template.jinja beside it) in the file\n"
                   "  --seed N            random seed (default 0)\n"
                   "  --branch-scale X    scale of the post-branch norm weights (default 1)\n", types);
            return 0;
        }
        if (i + 1 >= argc) { fprintf(stderr, "gemma4 synth: %s needs a value\n", a); return 2; }
        const char *v = argv[++i];
        if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "--tokenizer")) tokenizer = v;
        else if (!strcmp(a, "--type") || !strcmp(a, "-t")) type = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--seed")) { if (arg_u64(a, v, &seed)) return 2; }
        else if (!strcmp(a, "--branch-scale")) { if (arg_float(a, v, 1e-3, 10, &branch)) return 2; }
        else { fprintf(stderr, "gemma4 synth: unknown option %s\n", a); return 2; }
    }
    if (!out || (!arch) == (!config)) { fprintf(stderr, "gemma4 synth: give -o and one of --arch or --config\n"); return 2; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (gemma4_synth(arch, config, type, out, tokenizer, seed, branch, progress_bar, (void *)"writing")) {
        fprintf(stderr, "\ngemma4: %s\n", gemma4_last_error());
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "wrote %s (%s) in %.1f s\n", out, type, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return 0;
}
