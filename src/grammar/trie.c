/* The vocabulary as a trie of decoded bytes, laid out depth-first with a
 * skip link per node, so the mask walk is one loop over arrays that jumps
 * over every subtree the grammar rules out at its first byte.
 *
 * Building it takes a few hundred milliseconds, so the last one built is
 * kept and shared (reference counted) by every grammar of a vocabulary with
 * the same fingerprint: the texts and kinds of all its tokens. */
#include "grammar/grammar.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"

static int byte_token_value(const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    const char *h = strchr(hex, s[3]), *l = strchr(hex, s[4]);
    if (!h || !l || !s[3] || !s[4]) return -1;
    return (int)((h - hex) * 16 + (l - hex));
}

/* <unusedN>: reserved slots, never real text. */
static int is_unused(const char *s, size_t n) {
    if (n < 9 || memcmp(s, "<unused", 7) != 0 || s[n - 1] != '>') return 0;
    for (size_t i = 7; i + 1 < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static const g4g_trie *sort_trie; /* qsort has no context argument */

static int cmp_tokens(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    const g4g_trie *t = sort_trie;
    int32_t la = t->tok_len[a], lb = t->tok_len[b];
    int c = memcmp(t->tok_bytes + t->tok_off[a], t->tok_bytes + t->tok_off[b], (size_t)(la < lb ? la : lb));
    if (c) return c;
    if (la != lb) return la < lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

static void trie_free(g4g_trie *t) {
    if (!t) return;
    free(t->byte);
    free(t->depth);
    free(t->skip);
    free(t->tok_begin);
    free(t->tok_ids);
    free(t->tok_off);
    free(t->tok_len);
    free(t->tok_bytes);
    free(t->is_special);
    free(t);
}

/* Decoded bytes of every ordinary token into t->tok_bytes. */
static int decode_vocab(g4g_trie *t, const gemma4_tokenizer *tok, size_t *n_bytes) {
    size_t cap = 1 << 22, used = 0;
    t->tok_bytes = malloc(cap);
    if (!t->tok_bytes) return -1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t n;
        const char *s = gemma4_token_text(tok, id, &n);
        t->tok_len[id] = -1;
        if (!s) continue;
        if (g4_tok_is_added(tok->tok, id)) {
            t->is_special[id] = 1;
            continue;
        }
        if (!n || is_unused(s, n)) continue;
        if (used + n + 1 > cap) {
            while (used + n + 1 > cap) cap *= 2;
            uint8_t *p = realloc(t->tok_bytes, cap);
            if (!p) return -1;
            t->tok_bytes = p;
        }
        t->tok_off[id] = (uint32_t)used;
        int bv = byte_token_value(s, n);
        if (bv >= 0) {
            t->tok_bytes[used++] = (uint8_t)bv;
        } else {
            for (size_t i = 0; i < n; i++) {
                if (i + 2 < n && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
                    t->tok_bytes[used++] = ' ';
                    i += 2;
                } else {
                    t->tok_bytes[used++] = (uint8_t)s[i];
                }
            }
        }
        t->tok_len[id] = (int32_t)(used - t->tok_off[id]);
        if (t->tok_len[id] > 0xFFFF) t->tok_len[id] = -1;
    }
    *n_bytes = used;
    return 0;
}

static g4g_trie *trie_build(const gemma4_tokenizer *tok, g4_error *err) {
    g4g_trie *t = calloc(1, sizeof *t);
    int32_t *order = NULL;
    if (!t) goto oom;
    t->n_vocab = gemma4_tokenizer_n_vocab(tok);
    t->tok_off = calloc((size_t)t->n_vocab, sizeof *t->tok_off);
    t->tok_len = calloc((size_t)t->n_vocab, sizeof *t->tok_len);
    t->is_special = calloc((size_t)t->n_vocab, 1);
    order = malloc(sizeof *order * (size_t)t->n_vocab);
    size_t n_bytes = 0;
    if (!t->tok_off || !t->tok_len || !t->is_special || !order || decode_vocab(t, tok, &n_bytes)) goto oom;
    int32_t n_tok = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->tok_len[id] > 0) order[n_tok++] = id;
    sort_trie = t;
    qsort(order, (size_t)n_tok, sizeof *order, cmp_tokens);

    /* nodes <= bytes of all tokens */
    size_t cap = n_bytes + 1;
    t->byte = malloc(cap);
    t->depth = malloc(sizeof *t->depth * cap);
    t->skip = malloc(sizeof *t->skip * cap);
    t->tok_begin = malloc(sizeof *t->tok_begin * (cap + 1));
    t->tok_ids = malloc(sizeof *t->tok_ids * (size_t)(n_tok ? n_tok : 1));
    int32_t *open = malloc(sizeof *open * 65536); /* node index at each depth of the current path */
    if (!t->byte || !t->depth || !t->skip || !t->tok_begin || !t->tok_ids || !open) {
        free(open);
        goto oom;
    }
    int32_t n = 0, path_len = 0;
    const uint8_t *prev = NULL;
    for (int32_t k = 0; k < n_tok; k++) {
        int32_t id = order[k];
        const uint8_t *s = t->tok_bytes + t->tok_off[id];
        int32_t len = t->tok_len[id], common = 0;
        while (prev && common < path_len && common < len && prev[common] == s[common]) common++;
        for (int32_t d = path_len - 1; d >= common; d--) t->skip[open[d]] = n; /* close the diverging nodes */
        for (int32_t d = common; d < len; d++) {
            t->byte[n] = s[d];
            t->depth[n] = (uint16_t)d;
            t->tok_begin[n] = k;
            open[d] = n++;
        }
        if (len > t->max_depth) t->max_depth = len;
        path_len = len;
        prev = s;
        t->tok_ids[k] = id;
    }
    for (int32_t d = path_len - 1; d >= 0; d--) t->skip[open[d]] = n;
    free(open);
    /* In sorted order a token always ends at the newest node (a prefix sorts
     * before its extensions, duplicates are adjacent), so tok_begin[i], the
     * token being read when node i was made, delimits node i's tokens. */
    t->n_nodes = n;
    t->tok_begin[n] = n_tok;
    free(order);
    return t;
oom:
    free(order);
    trie_free(t);
    g4_fail(err, "grammar: out of memory building the vocabulary trie");
    return NULL;
}

/* FNV-1a over every token's text and kind. */
static uint64_t fingerprint(const gemma4_tokenizer *tok) {
    uint64_t h = 1469598103934665603ull;
    int32_t n = gemma4_tokenizer_n_vocab(tok);
    for (int32_t id = 0; id < n; id++) {
        size_t len = 0;
        const char *s = gemma4_token_text(tok, id, &len);
        for (size_t i = 0; s && i < len; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
        h = (h ^ (uint64_t)(s ? 1 + g4_tok_is_added(tok->tok, id) : 0) ^ 0xFF00) * 1099511628211ull;
    }
    return h;
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static g4g_trie *cached; /* holds one reference */

g4g_trie *g4g_trie_get(const gemma4_tokenizer *tok, g4_error *err) {
    uint64_t fp = fingerprint(tok);
    pthread_mutex_lock(&cache_lock);
    g4g_trie *t = cached && cached->fingerprint == fp && cached->n_vocab == gemma4_tokenizer_n_vocab(tok) ? cached : NULL;
    if (t) t->refs++;
    pthread_mutex_unlock(&cache_lock);
    if (t || !(t = trie_build(tok, err))) return t;
    t->fingerprint = fp;
    t->refs = 2; /* the caller's and the cache's */
    pthread_mutex_lock(&cache_lock);
    g4g_trie *old = cached;
    cached = t;
    if (old && --old->refs == 0) trie_free(old);
    pthread_mutex_unlock(&cache_lock);
    return t;
}

void g4g_trie_release(g4g_trie *t) {
    if (!t) return;
    pthread_mutex_lock(&cache_lock);
    int last = --t->refs == 0;
    pthread_mutex_unlock(&cache_lock);
    if (last) trie_free(t);
}
