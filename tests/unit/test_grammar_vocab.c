/* Structured output on the real 262,144-token vocabulary: random walks
 * through the masks of every schema in tests/grammar/schemas/ (answers
 * checked by jansson), timing each mask. Prints the mask cost per token
 * (mean, p50, p99, max) and the grammar compile time, and holds the mean to
 * the target: under 5% of an E2B Q4_0 decode step on the CI machine
 * (75 ms), i.e. 3.7 ms (not under the sanitizers, which slow everything).
 *
 * Needs build/tokenizer/tokenizer.json (tools/fetch_tokenizer.sh) or
 * G4_TOKENIZER_JSON; skipped without it. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "gemma4.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define MAX_MASKS 200000

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static unsigned rng_state = 7;
static float frand(void) {
    rng_state = rng_state * 1103515245u + 12345u;
    return (float)((rng_state >> 8) & 0xFFFF) / 65536.0f;
}

static double mask_ms[MAX_MASKS];
static int n_masks;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One answer: uniform among the allowed tokens, budget 128. */
static void walk(const gemma4_tokenizer *tok, const gemma4_grammar *g, float *logits, const char *name) {
    int V = gemma4_tokenizer_n_vocab(tok);
    int32_t ids[256];
    int n = 0, ended = 0;
    int32_t eos = gemma4_token_id(tok, "<eos>"), eot = gemma4_token_id(tok, "<turn|>");
    gemma4_matcher *m;
    if (gemma4_matcher_new(g, &m)) { CHECK(0, "%s", gemma4_last_error()); return; }
    gemma4_matcher_set_max_tokens(m, 128);
    while (n < 128) {
        for (int i = 0; i < V; i++) logits[i] = frand();
        double t0 = now();
        int rc = gemma4_matcher_mask(m, logits, V);
        if (n_masks < MAX_MASKS) mask_ms[n_masks++] = 1e3 * (now() - t0);
        if (rc) { CHECK(0, "%s", gemma4_last_error()); break; }
        int best = -1;
        for (int i = 0; i < V; i++)
            if (isfinite(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
        if (best < 0) { CHECK(0, "%s: nothing allowed", name); break; }
        if (best == eos || best == eot) { ended = 1; break; }
        if (gemma4_matcher_accept(m, best)) { CHECK(0, "%s: %s", name, gemma4_last_error()); break; }
        ids[n++] = best;
    }
    gemma4_matcher_free(m);
    char *text = NULL;
    gemma4_detokenize(tok, ids, (size_t)n, 0, &text, NULL);
    json_error_t e;
    json_t *v = json_loads(text ? text : "", JSON_DECODE_ANY, &e);
    CHECK(v && ended, "%s: not a complete JSON value (%s): %s", name, e.text, text ? text : "");
    json_decref(v);
    gemma4_free(text);
}

int main(void) {
    const char *path = getenv("G4_TOKENIZER_JSON") ? getenv("G4_TOKENIZER_JSON") : "build/tokenizer/tokenizer.json";
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("test_grammar_vocab: skipped (no %s; run tools/fetch_tokenizer.sh)\n", path);
        return 0;
    }
    fclose(f);
    gemma4_tokenizer *tok;
    if (gemma4_tokenizer_load(path, &tok)) {
        fprintf(stderr, "test_grammar_vocab: %s\n", gemma4_last_error());
        return 1;
    }
    int V = gemma4_tokenizer_n_vocab(tok);
    float *logits = malloc(sizeof *logits * (size_t)V);
    const char *dir = "tests/grammar/schemas";
    struct dirent **list;
    int n_files = scandir(dir, &list, NULL, alphasort);
    CHECK(n_files > 25, "schemas in %s: %d", dir, n_files);
    double compile_ms = 0;
    int n_grammars = 0;
    for (int k = 0; k < n_files; k++) {
        const char *name = list[k]->d_name;
        if (!strstr(name, ".json")) { free(list[k]); continue; }
        char file[512];
        snprintf(file, sizeof file, "%s/%s", dir, name);
        json_t *s = json_load_file(file, 0, NULL);
        char *text = s ? json_dumps(s, JSON_COMPACT) : NULL;
        gemma4_grammar *g = NULL;
        double t0 = now();
        int rc = text ? gemma4_grammar_from_json_schema(tok, text, &g) : -1;
        compile_ms += 1e3 * (now() - t0);
        n_grammars++;
        CHECK(!rc, "%s: %s", name, gemma4_last_error());
        for (int w = 0; g && w < (SANITIZED ? 1 : 4); w++) walk(tok, g, logits, name);
        gemma4_grammar_free(g);
        free(text);
        json_decref(s);
        free(list[k]);
    }
    free(list);
    double sum = 0;
    for (int i = 0; i < n_masks; i++) sum += mask_ms[i];
    qsort(mask_ms, (size_t)n_masks, sizeof *mask_ms, cmp_double);
    double mean = n_masks ? sum / n_masks : 0;
    printf("test_grammar_vocab: %d grammars (compile %.0f ms each, the vocabulary trie built once and shared), %d masks over %d tokens: "
           "mean %.3f ms, p50 %.3f, p99 %.3f, max %.3f\n",
           n_grammars, n_grammars ? compile_ms / n_grammars : 0, n_masks, V, mean,
           n_masks ? mask_ms[n_masks / 2] : 0, n_masks ? mask_ms[n_masks * 99 / 100] : 0,
           n_masks ? mask_ms[n_masks - 1] : 0);
    if (!SANITIZED) CHECK(mean < 3.7, "mask %.3f ms per token: over 5%% of an E2B decode step (75 ms)", mean);
    free(logits);
    gemma4_tokenizer_free(tok);
    return check_exit("test_grammar_vocab");
}
