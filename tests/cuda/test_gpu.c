/* The device choice of gemma4_context_params in any build, and on a machine
 * with a GPU what tests/unit/test_fixtures.c does not cover (it runs there
 * too, with GEMMA4_TEST_DEVICE=gpu; see tools/gpu_test.sh):
 * - the tensor-core path (cuBLAS, activations rounded to bf16 as
 *   transformers computes a bf16 model) on the bf16 fixtures: a bf16
 *   computation, so the float32 bound does not apply; it must be no further
 *   from transformers' float32 computation than transformers' own bf16
 *   computation is (measured from the two reference files), plus the 2e-3
 *   of summation order. (Its distance to the bf16 run is then at most twice
 *   that; both are printed.)
 * - synthetic device-only models of every storage type give finite logits
 *   and identical results for one-shot and token-by-token evaluation (to
 *   summation order).
 * Usage: test_gpu [fixtures-root] */
#include "../unit/check.h"
#include "gemma4.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *read_f32(const char *dir, const char *name, size_t n) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *p = malloc(n * sizeof *p);
    size_t got = fread(p, sizeof *p, n, f);
    fclose(f);
    if (got != n) { free(p); return NULL; }
    return p;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static gemma4_context *new_ctx(gemma4_model *m, int device, int n_ctx, int n_batch) {
    gemma4_context_params p = gemma4_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_threads = 2;
    p.device = device;
    gemma4_context *c = NULL;
    if (gemma4_context_new(m, &p, &c)) c = NULL;
    return c;
}

/* The ids of a fixture's case.json (a flat "input_ids": [...] list). */
static int read_ids(const char *dir, int32_t *ids, int cap) {
    char path[600];
    snprintf(path, sizeof path, "%s/case.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *p = strstr(buf, "\"input_ids\"");
    p = p ? strchr(p, '[') : NULL;
    int n = 0;
    while (p && *p && *p != ']' && n < cap) {
        p++;
        ids[n++] = (int32_t)strtol(p, &p, 10);
        while (*p == ' ' || *p == '\n') p++;
    }
    return n;
}

static void device_choice(const char *root) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/dense", root);
    gemma4_model *m;
    if (gemma4_model_load(dir, &m)) { CHECK(0, "%s: %s", dir, gemma4_last_error()); return; }
    CHECK(new_ctx(m, 7, 64, 8) == NULL && strstr(gemma4_last_error(), "device"), "device 7 accepted: %s", gemma4_last_error());
    gemma4_context *c = new_ctx(m, GEMMA4_DEVICE_AUTO, 64, 8);
    CHECK(c != NULL, "auto device: %s", gemma4_last_error());
    gemma4_context_free(c);
    if (!gemma4_gpu_available()) {
        c = new_ctx(m, GEMMA4_DEVICE_GPU, 64, 8);
        CHECK(c == NULL && gemma4_last_error()[0], "GPU context without a GPU");
        printf("no GPU: \"%s\"\n", gemma4_last_error());
        gemma4_context_free(c);
    }
    gemma4_model_free(m);
    gemma4_model *s;
    if (!gemma4_gpu_available()) {
        CHECK(gemma4_model_synthetic("tiny", "bf16", &s) != 0 || new_ctx(s, GEMMA4_DEVICE_CPU, 64, 8) == NULL,
              "a synthetic model ran on the CPU");
        if (s) gemma4_model_free(s);
    }
}

static void bf16_tensor_cores(const char *root, const char *name) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    gemma4_model *m;
    if (gemma4_model_load(dir, &m)) { CHECK(0, "%s: %s", dir, gemma4_last_error()); return; }
    int V = gemma4_vocab_size(m);
    int32_t ids[512];
    int n = read_ids(dir, ids, 512);
    float *ref_b16 = read_f32(dir, "logits.f32", (size_t)n * V), *ref = read_f32(dir, "logits_f32ref.f32", (size_t)n * V);
    float *got = malloc(sizeof(float) * (size_t)n * V);
    gemma4_context *c = new_ctx(m, GEMMA4_DEVICE_GPU, n, n);
    CHECK(n > 0 && ref && ref_b16 && c, "%s: %s", dir, c ? "no references" : gemma4_last_error());
    if (n > 0 && ref && ref_b16 && c) {
        CHECK(gemma4_eval(c, 0, ids, n, got) == 0, "%s: %s", dir, gemma4_last_error());
        float noise = max_abs_diff(ref_b16, ref, (size_t)n * V), d = max_abs_diff(got, ref_b16, (size_t)n * V);
        float d32 = max_abs_diff(got, ref, (size_t)n * V);
        CHECK(d32 <= noise + 2e-3f, "%s tensor cores vs transformers f32: %.3g > transformers' own bf16 error %.3g + 2e-3",
              dir, d32, noise);
        printf("  %-12s cuBLAS bf16: max|dlogit| %.2e vs transformers f32 (transformers bf16: %.2e); %.2e vs transformers bf16\n",
               name, d32, noise, d);
    }
    gemma4_context_free(c);
    free(got);
    free(ref);
    free(ref_b16);
    gemma4_model_free(m);
}

static void synthetic(const char *type) {
    gemma4_model *m;
    if (gemma4_model_synthetic("tiny", type, &m)) { CHECK(0, "synthetic %s: %s", type, gemma4_last_error()); return; }
    int V = gemma4_vocab_size(m), n = 12;
    int32_t ids[12];
    for (int i = 0; i < n; i++) ids[i] = 2 + 977 * i;
    gemma4_context *a = new_ctx(m, GEMMA4_DEVICE_GPU, 64, n), *b = new_ctx(m, GEMMA4_DEVICE_GPU, 64, 1);
    float *la = malloc(sizeof(float) * (size_t)n * V), *lb = malloc(sizeof(float) * (size_t)n * V);
    CHECK(a && b, "synthetic %s context: %s", type, gemma4_last_error());
    if (a && b) {
        CHECK(gemma4_eval(a, 0, ids, n, la) == 0 && gemma4_eval(b, 0, ids, n, lb) == 0, "synthetic %s: %s", type,
              gemma4_last_error());
        int finite = 1;
        for (size_t i = 0; i < (size_t)n * V; i++) finite &= isfinite(la[i]) != 0;
        float d = max_abs_diff(la, lb, (size_t)n * V);
        CHECK(finite && d <= 2e-3f, "synthetic %s: finite %d, one-shot vs token by token %.3g", type, finite, d);
        printf("  synthetic tiny %-5s one-shot vs token by token: max|dlogit| %.2e\n", type, d);
    }
    gemma4_context_free(a);
    gemma4_context_free(b);
    free(la);
    free(lb);
    gemma4_model_free(m);
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "tests/fixtures";
    device_choice(root);
    if (gemma4_gpu_available()) {
        setenv("G4_GPU_GEMM_MIN", "1", 1); /* every product through cuBLAS */
        bf16_tensor_cores(root, "dense-bf16");
        bf16_tensor_cores(root, "e-like-bf16");
        bf16_tensor_cores(root, "moe-bf16");
        unsetenv("G4_GPU_GEMM_MIN");
        const char *types[] = {"bf16", "f32", "q8_0", "q4_0"};
        for (int i = 0; i < 4; i++) synthetic(types[i]);
    }
    return check_exit("test_gpu");
}
