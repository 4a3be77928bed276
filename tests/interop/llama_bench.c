/* llama.cpp's speed on a GGUF file, measured the way `gemma4 bench` measures
 * ours: pp N = one prompt of N tokens from an empty cache, tg N = N tokens
 * decoded one at a time from an empty cache; a warm-up run, then the median
 * of `repeats` runs. Prints one line per test: "pp512 123.45".
 * usage: llama_bench MODEL.gguf PROMPT GEN THREADS [REPEATS] */
#define _POSIX_C_SOURCE 199309L
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: llama_bench MODEL.gguf PROMPT GEN THREADS [REPEATS]\n"); return 2; }
    int np = atoi(argv[2]), ng = atoi(argv[3]), nt = atoi(argv[4]), reps = argc > 5 ? atoi(argv[5]) : 3;
    if (reps < 1 || reps > 100) reps = 3;
    llama_log_set(quiet, NULL);
    ggml_backend_load_all();
    llama_backend_init();
    struct llama_model *m = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!m) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    int longest = np > ng ? np : ng;
    cp.n_ctx = (uint32_t)(longest + 16);
    cp.n_batch = cp.n_ubatch = (uint32_t)(np > 0 && np < 512 ? np : 512);
    cp.n_threads = cp.n_threads_batch = nt;
    struct llama_context *c = llama_init_from_model(m, cp);
    struct llama_batch b = llama_batch_init((int32_t)cp.n_batch, 0, 1);
    int V = llama_vocab_n_tokens(llama_model_get_vocab(m));
    double t[101];
    for (int test = 0; test < 2; test++) {
        int n = test ? ng : np;
        if (!n) continue;
        for (int r = 0; r <= reps; r++) {
            llama_memory_clear(llama_get_memory(c), 1);
            double t0 = now();
            for (int done = 0; done < n;) {
                int chunk = test ? 1 : (n - done < (int)cp.n_batch ? n - done : (int)cp.n_batch);
                for (int i = 0; i < chunk; i++) {
                    b.token[i] = 3 + (int)(((unsigned)(done + i) * 2654435761u) % (unsigned)(V - 3));
                    b.pos[i] = done + i;
                    b.n_seq_id[i] = 1;
                    b.seq_id[i][0] = 0;
                    b.logits[i] = i == chunk - 1;
                }
                b.n_tokens = chunk;
                if (llama_decode(c, b)) { fprintf(stderr, "llama_decode failed\n"); return 1; }
                done += chunk;
            }
            t[r] = now() - t0;
        }
        qsort(t + 1, (size_t)reps, sizeof(double), by_value);
        double med = reps % 2 ? t[1 + reps / 2] : (t[reps / 2] + t[1 + reps / 2]) / 2;
        printf("%s%d %.2f\n", test ? "tg" : "pp", n, n / med);
    }
    llama_batch_free(b);
    llama_free(c);
    llama_model_free(m);
    return 0;
}
