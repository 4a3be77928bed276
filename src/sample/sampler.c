/* Token sampling: greedy, or temperature → top-k → top-p → min-p → draw,
 * the order transformers applies its logits warpers in. */
#include "gemma4.h"

#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct gemma4_sampler {
    gemma4_sampler_params p;
    uint64_t rng;
    int cap;
    int *idx;    /* candidate token ids, best first */
    float *prob; /* their probabilities */
};

gemma4_sampler_params gemma4_sampler_default_params(void) {
    gemma4_sampler_params p = {1.0f, 64, 0.95f, 0.0f, 0};
    return p;
}

int gemma4_sampler_new(const gemma4_sampler_params *params, gemma4_sampler **out) {
    *out = NULL;
    gemma4_sampler_params p = params ? *params : gemma4_sampler_default_params();
    if (!(p.temperature >= 0) || p.top_k < 0 || !(p.top_p > 0 && p.top_p <= 1) || !(p.min_p >= 0 && p.min_p <= 1))
        return -1; /* the CLI validates with its own messages */
    gemma4_sampler *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->p = p;
    s->rng = p.seed ^ 0x9e3779b97f4a7c15ull;
    *out = s;
    return 0;
}

void gemma4_sampler_free(gemma4_sampler *s) {
    if (!s) return;
    free(s->idx);
    free(s->prob);
    free(s);
}

/* splitmix64: small, fast, and good enough for drawing tokens */
static double next_uniform(gemma4_sampler *s) {
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int by_logit_desc(const void *a, const void *b, void *logits) {
    const float *l = logits;
    float x = l[*(const int *)a], y = l[*(const int *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

/* The k best ids, best first: a running sorted list, cheap for k ≈ 64. */
static int top_k_ids(const float *logits, int n, int k, int *idx) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m == k && !(logits[i] > logits[idx[m - 1]])) continue;
        int j = m < k ? m++ : m - 1;
        while (j > 0 && logits[idx[j - 1]] < logits[i]) { idx[j] = idx[j - 1]; j--; }
        idx[j] = i;
    }
    return m;
}

int32_t gemma4_sample(gemma4_sampler *s, const float *logits, int n) {
    if (s->p.temperature == 0.0f) return argmax(logits, n);
    if (s->cap < n) {
        int *idx = realloc(s->idx, sizeof(int) * (size_t)n);
        if (idx) s->idx = idx;
        float *prob = realloc(s->prob, sizeof(float) * (size_t)n);
        if (prob) s->prob = prob;
        if (!idx || !prob) return argmax(logits, n); /* out of memory: degrade, don't crash */
        s->cap = n;
    }
    int m;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        m = top_k_ids(logits, n, s->p.top_k, s->idx);
    } else {
        for (int i = 0; i < n; i++) s->idx[i] = i;
        qsort_r(s->idx, (size_t)n, sizeof(int), by_logit_desc, (void *)logits);
        m = n;
    }
    /* softmax of logits / temperature over the candidates */
    double sum = 0;
    float top = logits[s->idx[0]] / s->p.temperature;
    for (int i = 0; i < m; i++) sum += s->prob[i] = expf(logits[s->idx[i]] / s->p.temperature - top);
    for (int i = 0; i < m; i++) s->prob[i] = (float)(s->prob[i] / sum);
    if (s->p.top_p < 1.0f) { /* smallest prefix whose mass reaches top_p */
        double cum = 0;
        int keep = m;
        for (int i = 0; i < m; i++) {
            cum += s->prob[i];
            if (cum >= s->p.top_p) { keep = i + 1; break; }
        }
        m = keep;
    }
    if (s->p.min_p > 0.0f) {
        double psum = 0;
        for (int i = 0; i < m; i++) psum += s->prob[i];
        float floor_p = s->p.min_p * (float)(s->prob[0] / psum);
        int keep = 1;
        while (keep < m && s->prob[keep] / psum >= floor_p) keep++;
        m = keep;
    }
    double mass = 0;
    for (int i = 0; i < m; i++) mass += s->prob[i];
    double r = next_uniform(s) * mass;
    for (int i = 0; i < m; i++) {
        r -= s->prob[i];
        if (r < 0) return s->idx[i];
    }
    return s->idx[m - 1];
}
