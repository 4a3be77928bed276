/* The public matcher: one generation's place in a grammar. The state space
 * (states.h) belongs to the grammar and is shared by its matchers, so what
 * one generation computed (transitions, masks) serves the next; each call
 * takes the grammar's lock. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "grammar/states.h"

#define ERR g4_api_error()

struct gemma4_matcher {
    const gemma4_grammar *g;
    g4g_states *st;
    int32_t cur;  /* the current set */
    int finished; /* an end token was accepted */
    int max_tokens, n_tokens;
};

int gemma4_matcher_new(const gemma4_grammar *g, gemma4_matcher **out) {
    *out = NULL;
    gemma4_matcher *m = calloc(1, sizeof *m);
    if (!m) return g4_fail(ERR, "grammar: out of memory");
    m->g = g;
    m->st = g->states;
    pthread_mutex_lock(&m->st->lock);
    if (g4g_compact(m->st) == 0) m->cur = g4g_initial_set(m->st);
    int ok = !m->st->oom && m->cur != 0 && !g4g_live_add(m->st, &m->cur);
    pthread_mutex_unlock(&m->st->lock);
    if (!ok) {
        free(m);
        return g4_fail(ERR, "grammar: out of memory");
    }
    *out = m;
    return 0;
}

void gemma4_matcher_free(gemma4_matcher *m) {
    if (!m) return;
    pthread_mutex_lock(&m->st->lock);
    g4g_live_remove(m->st, &m->cur);
    pthread_mutex_unlock(&m->st->lock);
    free(m);
}

int gemma4_matcher_set_max_tokens(gemma4_matcher *m, int max_tokens) {
    if (max_tokens < 0) return g4_fail(ERR, "grammar: negative token budget");
    m->max_tokens = max_tokens;
    return 0;
}

/* Sets what bits rule out to -INFINITY, keeping the end tokens when allowed. */
static void apply(const gemma4_grammar *g, const uint64_t *bits, int mask_words, int allow_end, float *logits,
                  int n_vocab) {
    float end_logit[4];
    for (int i = 0; i < g->n_end; i++) end_logit[i] = g->end_ids[i] < n_vocab ? logits[g->end_ids[i]] : 0;
    int any = 0;
    for (int w = 0; w * 64 < n_vocab; w++) {
        uint64_t word = bits && w < mask_words ? bits[w] : 0;
        any |= word != 0;
        float *l = logits + (size_t)w * 64;
        if (word == ~0ull && (w + 1) * 64 <= n_vocab) continue;
        if ((w + 1) * 64 <= n_vocab) { /* a select, not a branch: the compiler vectorises it */
            for (int j = 0; j < 64; j++) l[j] = word >> j & 1 ? l[j] : -INFINITY;
        } else {
            for (int j = 0; w * 64 + j < n_vocab; j++) l[j] = word >> j & 1 ? l[j] : -INFINITY;
        }
    }
    /* End tokens once the text is complete; also the way out if the grammar
     * has nowhere to go (only possible when the nesting bound cut it off). */
    if (allow_end || !any)
        for (int i = 0; i < g->n_end; i++)
            if (g->end_ids[i] < n_vocab) logits[g->end_ids[i]] = end_logit[i];
}

/* With a token budget, a token may leave at most as many bytes to finish
 * as tokens will be left after it (less the end token): a byte token can
 * always take one more byte of the shortest way, so the text can always
 * close within the budget (if the budget is already too small, each token
 * must at least shorten the way). Masks are cached per state without the
 * limit; near the end of the budget, where the limit bites, they are
 * computed. */
int gemma4_matcher_mask(gemma4_matcher *m, float *logits, int n_vocab) {
    g4g_states *st = m->st;
    pthread_mutex_lock(&st->lock);
    int rc = g4g_compact(st);
    const uint64_t *bits = NULL;
    int accepting = 0;
    if (!rc && !m->finished) {
        int32_t limit = m->max_tokens > 0 ? m->max_tokens - m->n_tokens - 2 : G4G_NO_LIMIT;
        if (limit < st->sets[m->cur].minrem - 1) /* a budget too small to guarantee: at least get closer */
            limit = st->sets[m->cur].minrem - 1;
        int32_t maxrem;
        bits = g4g_cached_mask(st, m->cur, &maxrem);
        if (maxrem > limit) {
            g4g_compute_mask(st, m->cur, limit, st->limited_mask, &maxrem);
            bits = st->limited_mask;
        }
        accepting = st->sets[m->cur].accepting;
    }
    if (rc || st->oom) {
        pthread_mutex_unlock(&st->lock);
        return g4_fail(ERR, "grammar: out of memory");
    }
    apply(m->g, bits, st->mask_words, accepting || m->finished, logits, n_vocab);
    pthread_mutex_unlock(&st->lock);
    return 0;
}

static int is_end_token(const gemma4_grammar *g, int32_t token) {
    for (int i = 0; i < g->n_end; i++)
        if (g->end_ids[i] == token) return 1;
    return 0;
}

int gemma4_matcher_accept(gemma4_matcher *m, int32_t token) {
    const gemma4_grammar *g = m->g;
    const g4g_trie *t = g->trie;
    g4g_states *st = m->st;
    if (token < 0 || token >= t->n_vocab) return g4_fail(ERR, "grammar: token id %d out of range", token);
    pthread_mutex_lock(&st->lock);
    int32_t to = 0;
    if (!m->finished && t->is_special[token]) {
        to = g4g_token_step(st, m->cur, token);
    } else if (!m->finished && t->tok_len[token] > 0) {
        const uint8_t *b = t->tok_bytes + t->tok_off[token];
        to = m->cur;
        for (int32_t i = 0; i < t->tok_len[token] && to; i++) to = g4g_byte_step(st, to, b[i]);
    }
    int oom = st->oom, accepting = st->sets[m->cur].accepting;
    if (to) m->cur = to;
    pthread_mutex_unlock(&st->lock);
    if (oom) return g4_fail(ERR, "grammar: out of memory");
    if (!to) {
        if (is_end_token(g, token) && (m->finished || accepting)) {
            m->finished = 1;
            return 0;
        }
        size_t len = t->tok_len[token] > 0 ? (size_t)t->tok_len[token] : 0;
        const char *text = len ? (const char *)t->tok_bytes + t->tok_off[token] : "";
        return g4_fail(ERR, "grammar: token %d (\"%.*s\") is not allowed here", token, (int)(len > 40 ? 40 : len), text);
    }
    m->n_tokens++;
    return 0;
}

int gemma4_matcher_is_complete(const gemma4_matcher *m) {
    if (m->finished) return 1;
    pthread_mutex_lock(&m->st->lock);
    int accepting = m->st->sets[m->cur].accepting;
    pthread_mutex_unlock(&m->st->lock);
    return accepting;
}
