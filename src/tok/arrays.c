/* A tokenizer from plain arrays: the shape of GGUF's tokenizer.ggml.* keys
 * (tokens, token_type, merges or scores). The pipeline is Gemma's: ' ' ->
 * U+2581 when escape_whitespace, no pre-tokenizer, byte fallback; CONTROL
 * tokens become special added tokens, USER_DEFINED ones always-matched added
 * tokens (llama.cpp's parse_special rule). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tok/tok_impl.h"
#include "tok/utf8.h"

typedef struct cand {
    int32_t left, right, merged;
    float score;
} cand;

static int by_score(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->merged < y->merged ? -1 : x->merged > y->merged;
}

/* SentencePiece BPE merges the adjacent pair whose merged piece scores
 * highest (leftmost on a tie). As merge ranks: every split of a normal
 * token into two vocabulary tokens, ranked by the token's score, equal
 * scores sharing a rank so that the position decides. */
static int merges_from_scores(g4_tokenizer *t, const g4_tok_arrays *a, g4_error *err) {
    if (!a->scores) return g4_fail(err, "tokenizer: neither merges nor scores given");
    size_t n = 0, cap = 1024;
    cand *c = malloc(cap * sizeof *c);
    if (!c) return g4_fail(err, "tokenizer: out of memory");
    for (int32_t id = 0; id < t->text.n; id++) {
        if (a->token_types && a->token_types[id] != G4_TOK_TYPE_NORMAL) continue;
        if (isnan(a->scores[id])) return free(c), g4_fail(err, "tokenizer: the score of token %d is NaN", (int)id);
        const char *s = t->text.pool + t->text.at[id].off;
        size_t len = t->text.at[id].len;
        uint32_t cp;
        for (size_t k = len ? tok_utf8_next((const unsigned char *)s, len, &cp) : len; k < len;
             k += tok_utf8_next((const unsigned char *)s + k, len - k, &cp)) {
            int32_t l = tok_strmap_get(&t->vocab, &t->text, s, k);
            int32_t r = l < 0 ? -1 : tok_strmap_get(&t->vocab, &t->text, s + k, len - k);
            if (r < 0) continue;
            if (n == cap) {
                cand *bigger = realloc(c, (cap *= 2) * sizeof *c);
                if (!bigger) return free(c), g4_fail(err, "tokenizer: out of memory");
                c = bigger;
            }
            c[n++] = (cand){l, r, id, a->scores[id]};
        }
    }
    qsort(c, n, sizeof *c, by_score);
    int rc = tok_merges_begin(t, n, err);
    uint32_t rank = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i && c[i].score != c[i - 1].score) rank++;
        if (tok_add_merge_ids(t, c[i].left, c[i].right, c[i].merged, rank)) rc = g4_fail(err, "tokenizer: out of memory");
    }
    free(c);
    return rc;
}

static int build(g4_tokenizer *t, const g4_tok_arrays *a, g4_error *err) {
    if (!a->n_tokens || a->n_tokens >= INT32_MAX || !a->tokens) return g4_fail(err, "tokenizer: no tokens given");
    size_t pool = 0;
    for (size_t i = 0; i < a->n_tokens; i++) {
        if (!a->tokens[i]) return g4_fail(err, "tokenizer: token %zu has no text", i);
        pool += a->token_lens ? a->token_lens[i] : strlen(a->tokens[i]);
    }
    if (tok_reserve_ids(t, (int32_t)a->n_tokens, pool)) return g4_fail(err, "tokenizer: out of memory");
    for (size_t i = 0; i < a->n_tokens; i++) {
        size_t len = a->token_lens ? a->token_lens[i] : strlen(a->tokens[i]);
        if (tok_set_text(t, (int32_t)i, a->tokens[i], len, err)) return -1;
        t->flags[i] |= TOKF_VOCAB;
    }
    if (tok_index_vocab(t, err)) return -1;
    if (a->escape_whitespace) {
        static const char space[] = " ", meta[] = "\xe2\x96\x81"; /* U+2581 */
        tok_replace *r = NULL;
        size_t nr = 0;
        if (tok_add_replace(&t->norm, &t->n_norm, space, 1, meta, 3) || tok_add_replace(&r, &nr, meta, 3, space, 1) ||
            !(t->dec_pre = malloc(sizeof *t->dec_pre))) {
            if (r) free(r->from), free(r->to);
            free(r);
            return g4_fail(err, "tokenizer: out of memory");
        }
        t->dec_pre[0] = (tok_dec_step){.kind = DEC_REPLACE, .rep = r[0]};
        t->n_dec_pre = 1;
        free(r);
    }
    t->dec_byte_fallback = 1;
    t->byte_fallback = a->byte_fallback;
    t->fuse_unk = 1;
    t->unk_id = a->unk_id;
    if (t->unk_id >= (int32_t)a->n_tokens) return g4_fail(err, "tokenizer: unk id %d out of range", (int)a->unk_id);
    for (size_t i = 0; i < a->n_tokens && a->token_types; i++) {
        int type = a->token_types[i];
        if (type == G4_TOK_TYPE_UNKNOWN && t->unk_id < 0) t->unk_id = (int32_t)i;
        if ((type == G4_TOK_TYPE_CONTROL || type == G4_TOK_TYPE_USER_DEFINED) && t->text.at[i].len &&
            tok_add_added(t, (int32_t)i, t->text.pool + t->text.at[i].off, t->text.at[i].len, type == G4_TOK_TYPE_CONTROL,
                          0, 0, 0, err))
            return -1;
    }
    if (!a->n_merges) {
        if (merges_from_scores(t, a, err)) return -1;
    } else {
        if (!a->merges || tok_merges_begin(t, a->n_merges, err)) return a->merges ? -1 : g4_fail(err, "tokenizer: no merges given");
        tok_merge_batch batch = {0};
        for (size_t i = 0; i < a->n_merges; i++) {
            const char *m = a->merges[i];
            if (!m) return tok_merges_drop(&batch), g4_fail(err, "tokenizer: merge %zu has no text", i + 1);
            size_t len = a->merge_lens ? a->merge_lens[i] : strlen(m);
            /* llama.cpp splits at the first space after the first byte */
            const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
            if (!sp || sp + 1 == m + len || i > UINT32_MAX)
                return tok_merges_drop(&batch),
                       g4_fail(err, "tokenizer: merge %zu is not two tokens separated by a space", i + 1);
            if (tok_add_merge(t, &batch, m, (size_t)(sp - m), sp + 1, len - (size_t)(sp - m) - 1, (uint32_t)i, err))
                return tok_merges_drop(&batch), -1;
        }
        if (tok_merges_end(t, &batch, err)) return -1;
    }
    return tok_finish(t, err);
}

int g4_tok_from_arrays(const g4_tok_arrays *a, g4_tokenizer **out, g4_error *err) {
    *out = NULL;
    g4_tokenizer *t = tok_alloc();
    if (!t) return g4_fail(err, "tokenizer: out of memory");
    if (build(t, a, err)) {
        g4_tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}
