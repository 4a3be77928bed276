/* The engine against the transformers reference fixtures (tests/fixtures/,
 * made by tools/gen_fixtures.py): every position's logits of a one-shot
 * prefill, of token-by-token decoding through the KV cache, of odd-sized
 * chunks, and of two sequences interleaved in one batch; and the greedy
 * continuation.
 *
 * Tolerances:
 * - float32 fixtures: max |Δlogit| ≤ 2e-3 and identical argmax everywhere.
 *   Both sides compute in float32; 2e-3 leaves room for summation order only
 *   (the measured error is ~1e-4).
 * - bf16 fixtures hold two references. logits_f32ref.f32 is transformers in
 *   float32 on the same bf16 weights (embedding scale rounded as a bf16 model
 *   does): that is exactly what we compute, so the float32 bound applies.
 *   logits.f32 is transformers computing in bf16, which rounds activations at
 *   every op; we must be within that run's own distance from the float32
 *   computation (measured from the two files) plus the float32 bound. */
#include "check.h"
#include "reference.h"
#include "gemma4.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct fixture {
    char dir[512];
    int32_t *ids;
    int n_ids;
    int32_t greedy[64];
    int n_greedy;
    float *ref;     /* [n_ids][V]: the reference the bounds apply to */
    float *ref_b16; /* bf16-compute reference, or NULL */
    float *ref_greedy; /* [n_greedy][V]: the logits that predicted each greedy token */
} fixture;

static int load_case(fixture *fx, int V) {
    char path[600];
    snprintf(path, sizeof path, "%s/case.json", fx->dir);
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e), *ids = json_object_get(root, "input_ids"), *gr = json_object_get(root, "greedy");
    if (!json_is_array(ids) || !json_is_array(gr) || json_array_size(gr) > 64) { json_decref(root); return -1; }
    fx->n_ids = (int)json_array_size(ids);
    fx->ids = malloc(sizeof(int32_t) * (size_t)fx->n_ids);
    for (int i = 0; i < fx->n_ids; i++) fx->ids[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
    fx->n_greedy = (int)json_array_size(gr);
    for (int i = 0; i < fx->n_greedy; i++) fx->greedy[i] = (int32_t)json_integer_value(json_array_get(gr, (size_t)i));
    json_decref(root);
    size_t n = (size_t)fx->n_ids * (size_t)V;
    fx->ref_b16 = NULL;
    fx->ref = read_f32(fx->dir, "logits_f32ref.f32", n);
    if (fx->ref) fx->ref_b16 = read_f32(fx->dir, "logits.f32", n);
    else fx->ref = read_f32(fx->dir, "logits.f32", n);
    fx->ref_greedy = read_f32(fx->dir, "logits_greedy.f32", (size_t)fx->n_greedy * (size_t)V);
    return fx->ref && fx->ref_greedy ? 0 : -1;
}

/* Compares [n][V] logits against the reference; returns max |Δ|. */
static float compare(const fixture *fx, const char *what, const float *got, int V) {
    size_t n = (size_t)fx->n_ids * (size_t)V;
    float d = max_abs_diff(got, fx->ref, n);
    CHECK(d <= 2e-3f, "%s %s: max |dlogit| %.3g > 2e-3", fx->dir, what, d);
    int agree = 0;
    for (int t = 0; t < fx->n_ids; t++) agree += argmax(got + (size_t)t * V, V) == argmax(fx->ref + (size_t)t * V, V);
    CHECK(agree == fx->n_ids, "%s %s: argmax agrees at %d of %d positions", fx->dir, what, agree, fx->n_ids);
    return d;
}

static gemma4_context *new_ctx_kv(gemma4_model *m, int n_ctx, int n_batch, int n_seq, int kv_type) {
    gemma4_context_params p = gemma4_context_default_params();
    p.kv_type = kv_type;
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_seq = n_seq;
    p.n_threads = 2;
    const char *device = getenv("GEMMA4_TEST_DEVICE"); /* tools/gpu_test.sh: the same suite on the GPU */
    if (device && !strcmp(device, "gpu")) p.device = GEMMA4_DEVICE_GPU;
    gemma4_context *c = NULL;
    if (gemma4_context_new(m, &p, &c)) fprintf(stderr, "context: %s\n", gemma4_last_error());
    return c;
}

static gemma4_context *new_ctx(gemma4_model *m, int n_ctx, int n_batch, int n_seq) {
    return new_ctx_kv(m, n_ctx, n_batch, n_seq, GEMMA4_KV_F32);
}

/* Prefill in chunks of n_batch (n_batch = 1: token by token through the cache). */
static void check_chunked(const fixture *fx, gemma4_model *m, int V, int n_batch, const char *what) {
    gemma4_context *c = new_ctx(m, fx->n_ids + 32, n_batch, 1);
    float *got = malloc(sizeof(float) * (size_t)fx->n_ids * V);
    int rc = gemma4_eval(c, 0, fx->ids, fx->n_ids, got);
    CHECK(rc == 0, "%s %s: %s", fx->dir, what, gemma4_last_error());
    if (!rc) {
        float d = compare(fx, what, got, V);
        printf("  %-32s max|dlogit| %.2e\n", what, d);
    }
    free(got);
    gemma4_context_free(c);
}

/* Two sequences in one batch, their tokens interleaved, the second starting
 * later: each must still see only its own cache. */
static void check_interleaved(const fixture *fx, gemma4_model *m, int V) {
    int n = fx->n_ids, lag = 5;
    gemma4_context *c = new_ctx(m, n + 8, 2 * n, 2);
    int32_t *tok = malloc(sizeof(int32_t) * 2 * n), *pos = malloc(sizeof(int32_t) * 2 * n), *seq = malloc(sizeof(int32_t) * 2 * n);
    int8_t *want = malloc((size_t)2 * n);
    int k = 0;
    for (int i = 0; i < lag; i++) { tok[k] = fx->ids[i]; pos[k] = i; seq[k] = 0; want[k++] = 1; }
    for (int i = lag; i < n; i++) {
        tok[k] = fx->ids[i]; pos[k] = i; seq[k] = 0; want[k++] = 1;
        tok[k] = fx->ids[i - lag]; pos[k] = i - lag; seq[k] = 1; want[k++] = 1;
    }
    gemma4_batch b = {k, tok, pos, seq, want, NULL, NULL};
    int rc = gemma4_decode(c, &b);
    CHECK(rc == 0, "%s interleaved: %s", fx->dir, gemma4_last_error());
    float worst = 0;
    for (int r = 0; !rc && r < k; r++) {
        float d = max_abs_diff(gemma4_get_logits(c, r), fx->ref + (size_t)pos[r] * V, (size_t)V);
        if (!(d <= worst)) worst = d;
    }
    CHECK(!rc && worst <= 2e-3f, "%s interleaved sequences: max |dlogit| %.3g", fx->dir, worst);
    printf("  %-32s max|dlogit| %.2e\n", "two sequences in one batch", worst);
    free(tok); free(pos); free(seq); free(want);
    gemma4_context_free(c);
}

static void check_greedy(const fixture *fx, gemma4_model *m, int V) {
    gemma4_context *c = new_ctx(m, fx->n_ids + fx->n_greedy, 64, 1);
    gemma4_sampler_params sp = gemma4_sampler_default_params();
    sp.temperature = 0;
    gemma4_sampler *s;
    gemma4_sampler_new(&sp, &s);
    int rc = gemma4_eval(c, 0, fx->ids, fx->n_ids, NULL), same = 0;
    float worst = 0;
    for (int i = 0; !rc && i < fx->n_greedy; i++) {
        float d = max_abs_diff(gemma4_get_logits(c, 0), fx->ref_greedy + (size_t)i * V, (size_t)V);
        if (!(d <= worst)) worst = d;
        int32_t next = gemma4_sample(s, gemma4_get_logits(c, 0), V);
        same += next == fx->greedy[i];
        if (next != fx->greedy[i]) break;
        rc = gemma4_eval(c, 0, &next, 1, NULL);
    }
    CHECK(rc == 0 && same == fx->n_greedy, "%s greedy: %d of %d tokens match before the first difference", fx->dir, same,
          fx->n_greedy);
    CHECK(worst <= 2e-3f, "%s greedy decode steps: max |dlogit| %.3g > 2e-3", fx->dir, worst);
    printf("  %-32s %d/%d tokens identical, max|dlogit| %.2e\n", "greedy continuation (KV cache)", same, fx->n_greedy, worst);
    gemma4_sampler_free(s);
    gemma4_context_free(c);
}

/* The bf16-compute reference: within its own distance from float32 compute. */
static void check_bf16_reference(const fixture *fx, gemma4_model *m, int V) {
    size_t n = (size_t)fx->n_ids * V;
    gemma4_context *c = new_ctx(m, fx->n_ids, fx->n_ids, 1);
    float *got = malloc(sizeof(float) * n);
    CHECK(gemma4_eval(c, 0, fx->ids, fx->n_ids, got) == 0, "%s: %s", fx->dir, gemma4_last_error());
    float noise = max_abs_diff(fx->ref_b16, fx->ref, n), d = max_abs_diff(got, fx->ref_b16, n);
    CHECK(d <= noise + 2e-3f, "%s vs bf16 compute: max |dlogit| %.3g > bf16 noise %.3g + 2e-3", fx->dir, d, noise);
    printf("  %-32s max|dlogit| %.2e (transformers bf16 vs f32 on these weights: %.2e)\n", "vs transformers in bf16", d, noise);
    free(got);
    gemma4_context_free(c);
}

/* The half-precision KV cache, token by token: it rounds only K and V, at
 * 2^-11 relative, where the bf16-compute reference rounds every activation
 * at 2^-8; so its logits must stay within an eighth of that reference's
 * distance from float32 (plus the float32 bound). CPU only. */
static void check_f16_cache(const fixture *fx, gemma4_model *m, int V) {
    const char *device = getenv("GEMMA4_TEST_DEVICE");
    if (device && !strcmp(device, "gpu")) return;
    size_t n = (size_t)fx->n_ids * V;
    gemma4_context *c = new_ctx_kv(m, fx->n_ids, 1, 1, GEMMA4_KV_F16);
    float *got = malloc(sizeof(float) * n);
    CHECK(c && gemma4_eval(c, 0, fx->ids, fx->n_ids, got) == 0, "%s f16 cache: %s", fx->dir, gemma4_last_error());
    float noise = max_abs_diff(fx->ref_b16, fx->ref, n), d = max_abs_diff(got, fx->ref, n);
    CHECK(d <= noise / 8 + 2e-3f, "%s f16 KV cache: max |dlogit| %.3g > bf16 noise / 8 %.3g + 2e-3", fx->dir, d, noise / 8);
    printf("  %-32s max|dlogit| %.2e (bound %.2e)\n", "f16 KV cache, token by token", d, noise / 8 + 2e-3f);
    free(got);
    gemma4_context_free(c);
}

static void run_fixture(fixture *fx) {
    gemma4_model *m;
    if (gemma4_model_load(fx->dir, &m)) {
        CHECK(0, "%s: %s", fx->dir, gemma4_last_error());
        return;
    }
    int V = gemma4_vocab_size(m);
    if (load_case(fx, V)) {
        CHECK(0, "%s: cannot read case.json / logits", fx->dir);
        gemma4_model_free(m);
        return;
    }
    printf("%s (%d tokens)\n", fx->dir, fx->n_ids);
    check_chunked(fx, m, V, fx->n_ids, "one-shot prefill");
    check_chunked(fx, m, V, 1, "token by token (KV cache)");
    check_chunked(fx, m, V, 7, "chunks of 7");
    check_interleaved(fx, m, V);
    check_greedy(fx, m, V);
    if (fx->ref_b16) check_bf16_reference(fx, m, V);
    if (fx->ref_b16) check_f16_cache(fx, m, V);
    free(fx->ids);
    free(fx->ref);
    free(fx->ref_b16);
    free(fx->ref_greedy);
    gemma4_model_free(m);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "tests/fixtures";
    DIR *d = opendir(root);
    if (!d) { fprintf(stderr, "cannot open %s\n", root); return 1; }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        char path[600];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/case.json", root, e->d_name);
        if (e->d_name[0] != '.' && stat(path, &st) == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    CHECK(n >= 3, "only %d fixtures found under %s", n, root);
    for (int i = 0; i < n; i++) {
        fixture fx;
        memset(&fx, 0, sizeof fx);
        snprintf(fx.dir, sizeof fx.dir, "%s/%s", root, names[i]);
        run_fixture(&fx);
        free(names[i]);
    }
    return check_exit("test_fixtures");
}
