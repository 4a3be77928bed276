/* Encoding: added tokens, normalizer, pre-tokenizer, then BPE per piece with
 * byte fallback, in the order and with the rules of HF tokenizers
 * (AddedVocabulary::extract_and_normalize, then the BPE model). */
#include <stdlib.h>
#include <string.h>

#include "tok/tok_impl.h"
#include "tok/utf8.h"

/* Longest added token starting at s (leftmost-longest, as HF's
 * Aho-Corasick matcher); returns its index in t->added and its length. */
static int32_t match_added(const tok_trie *tr, const unsigned char *s, size_t n, size_t *len) {
    int32_t best = -1;
    int node = tr->root_child[s[0]];
    for (size_t i = 1;; i++) {
        if (tr->node[node].match >= 0) best = tr->node[node].match, *len = i;
        if (i >= n) break;
        int c = tr->node[node].child;
        while (c >= 0 && tr->node[c].byte != s[i]) c = tr->node[c].sibling;
        if (c < 0) break;
        node = c;
    }
    return best;
}

/* The start of the whitespace run that ends at `end` (not before `floor`). */
static size_t ws_run_start(const char *s, size_t floor, size_t end) {
    while (end > floor) {
        size_t i = end - 1;
        while (i > floor && ((unsigned char)s[i] & 0xc0) == 0x80) i--;
        uint32_t cp;
        if (!tok_utf8_next((const unsigned char *)s + i, end - i, &cp) || !tok_is_whitespace(cp)) break;
        end = i;
    }
    return end;
}

static size_t ws_run_end(const char *s, size_t start, size_t n) {
    while (start < n) {
        uint32_t cp;
        size_t k = tok_utf8_next((const unsigned char *)s + start, n - start, &cp);
        if (!k || !tok_is_whitespace(cp)) break;
        start += k;
    }
    return start;
}

/* A piece's ids depend on its text only, so long texts keep a cache of
 * short pieces (words, mostly): direct-mapped, per encode call, so the
 * tokenizer stays read-only and thread-safe. */
#define CACHE_MIN_TEXT 4096 /* texts shorter than this get no cache */
#define CACHE_SLOTS 8192
#define CACHE_TEXT 22
#define CACHE_IDS 8
typedef struct tok_cache_entry {
    uint64_t hash;
    uint8_t len, n_ids; /* len 0: empty (empty pieces are never looked up) */
    char text[CACHE_TEXT];
    int32_t ids[CACHE_IDS];
} tok_cache_entry;

static tok_cache_entry *cache_find(tok_work *w, const char *s, size_t n, uint64_t *hash) {
    if (!w->cache || n > CACHE_TEXT || !n) return NULL;
    *hash = tok_hash_bytes(s, n);
    return &w->cache[*hash & (CACHE_SLOTS - 1)];
}

/* Runs BPE on the symbols of the piece s[0..n), through the cache. */
static int finish_piece(const g4_tokenizer *t, tok_work *w, const char *s, size_t n) {
    uint64_t hash = 0;
    tok_cache_entry *e = cache_find(w, s, n, &hash);
    if (e && e->hash == hash && e->len == n && !memcmp(e->text, s, n)) {
        w->n_sym = 0;
        for (int i = 0; i < e->n_ids; i++)
            if (tok_work_emit(w, e->ids[i])) return -1;
        return 0;
    }
    size_t first = w->n_out;
    if (tok_bpe(t, w)) return -1;
    if (e && w->n_out - first <= CACHE_IDS) {
        e->hash = hash;
        e->len = (uint8_t)n;
        e->n_ids = (uint8_t)(w->n_out - first);
        memcpy(e->text, s, n);
        memcpy(e->ids, w->out + first, e->n_ids * sizeof *e->ids);
    }
    return 0;
}

/* BPE on one pre-token: code points become symbols (or bytes, or <unk>),
 * and the text is cut wherever no merge can join two neighbours. */
static int encode_word(const g4_tokenizer *t, tok_work *w, const char *s, size_t n) {
    if (!n) return 0;
    if (t->ignore_merges) {
        int32_t id = tok_strmap_get(&t->vocab, &t->text, s, n);
        if (id >= 0) return tok_work_emit(w, id);
    }
    const unsigned char *u = (const unsigned char *)s;
    uint32_t prev_cp = 0;
    int prev_known = 0;
    int32_t unk_pending = 0; /* an <unk> waiting to be pushed (fuse_unk gathers several characters) */
    size_t piece = 0;        /* where the current piece starts */
    w->n_sym = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = u[i];
        size_t k = cp < 0x80 ? 1 : tok_utf8_next(u + i, n - i, &cp); /* valid: checked on entry */
        int32_t id = cp < 0x10000 ? t->bmp_id[cp] : tok_strmap_get(&t->vocab, &t->text, s + i, k);
        int known = id >= 0;
        if (known && prev_known && t->cut_pieces && w->n_sym &&
            !tok_pairmap_find(&t->cross, (uint64_t)prev_cp << 32 | cp)) {
            if (finish_piece(t, w, s + piece, i - piece)) return -1;
            piece = i;
        }
        if (known) {
            if (unk_pending && tok_work_push_sym(w, t->unk_id)) return -1;
            unk_pending = 0;
            if (tok_work_push_sym(w, id)) return -1;
        } else {
            int bytes_ok = t->byte_fallback;
            for (size_t b = 0; b < k && bytes_ok; b++) bytes_ok = t->byte_id[u[i + b]] >= 0;
            if (bytes_ok) {
                /* HF pushes the bytes without flushing a pending <unk>. */
                for (size_t b = 0; b < k; b++)
                    if (tok_work_push_sym(w, t->byte_id[u[i + b]])) return -1;
            } else if (t->unk_id >= 0) {
                if (unk_pending && !t->fuse_unk && tok_work_push_sym(w, t->unk_id)) return -1;
                unk_pending = 1;
            }
        }
        prev_cp = cp;
        prev_known = known;
        i += k;
    }
    if (unk_pending && tok_work_push_sym(w, t->unk_id)) return -1;
    return finish_piece(t, w, s + piece, n - piece);
}

/* The Split pre-tokenizer (literal pattern) over normalized text. The text
 * alternates non-matching stretches and single matches; each behaviour folds
 * them into pieces exactly as HF's SplitDelimiterBehavior does, with one
 * pending piece instead of a list. */
typedef struct split_state {
    const char *piece; /* the pending piece, or NULL */
    size_t len;
    int prev_match;
} split_state;

static int flush_piece(const g4_tokenizer *t, tok_work *w, split_state *st) {
    int rc = st->piece ? encode_word(t, w, st->piece, st->len) : 0;
    st->piece = NULL;
    return rc;
}

static int stretch(const g4_tokenizer *t, tok_work *w, split_state *st, const char *s, size_t n, int match) {
    int join = 0;
    switch (t->split_behavior) {
    case SPLIT_REMOVED:
        if (match) goto done;
        break;
    case SPLIT_ISOLATED: break;
    case SPLIT_CONTIGUOUS: join = match && st->prev_match; break;
    case SPLIT_MERGED_PREV: join = match && !st->prev_match; break;
    case SPLIT_MERGED_NEXT: join = !match && st->prev_match; break;
    }
    if (join && st->piece) {
        st->len = (size_t)(s + n - st->piece);
    } else {
        if (flush_piece(t, w, st)) return -1;
        st->piece = s;
        st->len = n;
    }
done:
    st->prev_match = match;
    return 0;
}

static int pre_tokenize(const g4_tokenizer *t, tok_work *w, const char *s, size_t n) {
    if (!t->split_len) return encode_word(t, w, s, n);
    const char *end = s + n, *p = s;
    split_state st = {0};
    while (p < end) {
        const char *m = memmem(p, (size_t)(end - p), t->split, t->split_len);
        if (!m) {
            if (stretch(t, w, &st, p, (size_t)(end - p), 0)) return -1;
            break;
        }
        if (m > p && stretch(t, w, &st, p, (size_t)(m - p), 0)) return -1;
        if (stretch(t, w, &st, m, t->split_len, 1)) return -1;
        p = m + t->split_len;
    }
    return flush_piece(t, w, &st);
}

static int encode_segment(const g4_tokenizer *t, tok_work *w, const char *s, size_t n, int parse_special,
                          int normalized);

/* Splits s on the added tokens of one trie: raw text (stage 0) or
 * normalized text (stage 1); the text between goes to the next stage. */
static int split_added(const g4_tokenizer *t, tok_work *w, const tok_trie *tr, const char *s, size_t n,
                       int parse_special, int normalized) {
    size_t seg = 0, i = 0;
    while (i < n) {
        size_t len = 0;
        int32_t a = tr->root_child[(unsigned char)s[i]] < 0 ? -1 : match_added(tr, (const unsigned char *)s + i, n - i, &len);
        if (a < 0) {
            i++;
            continue;
        }
        const tok_added *x = &t->added[a];
        if (x->special && !parse_special) { /* HF's encode_special_tokens: the match stays text */
            i += len;
            continue;
        }
        size_t start = i, stop = i + len;
        if (x->lstrip) start = ws_run_start(s, seg, start);
        if (x->rstrip) stop = ws_run_end(s, stop, n);
        if (encode_segment(t, w, s + seg, start - seg, parse_special, normalized) || tok_work_emit(w, x->id))
            return -1;
        seg = i = stop;
    }
    return encode_segment(t, w, s + seg, n - seg, parse_special, normalized);
}

static int encode_segment(const g4_tokenizer *t, tok_work *w, const char *s, size_t n, int parse_special,
                          int normalized) {
    if (!n) return 0;
    if (normalized) return pre_tokenize(t, w, s, n);
    char *norm = NULL;
    size_t norm_len = n;
    const char *cur = s;
    for (size_t r = 0; r < t->n_norm; r++) {
        char *next;
        if (tok_apply_replace(&t->norm[r], cur, norm_len, &next, &norm_len)) return free(norm), -1;
        free(norm);
        cur = norm = next;
    }
    int rc = t->norm_trie.n ? split_added(t, w, &t->norm_trie, cur, norm_len, parse_special, 1)
                            : pre_tokenize(t, w, cur, norm_len);
    free(norm);
    return rc;
}

int g4_tok_encode(const g4_tokenizer *t, const char *text, size_t len, int parse_special, int32_t **ids,
                  size_t *n, g4_error *err) {
    return tok_encode_ex(t, text, len, parse_special, len >= CACHE_MIN_TEXT, ids, n, err);
}

int tok_encode_ex(const g4_tokenizer *t, const char *text, size_t len, int parse_special, int use_cache,
                  int32_t **ids, size_t *n, g4_error *err) {
    *ids = NULL;
    *n = 0;
    size_t bad;
    if (len > INT32_MAX / 4) return g4_fail(err, "tokenizer: text too long (%zu bytes; the limit is 512 MiB)", len);
    if (!tok_utf8_valid(text, len, &bad)) return g4_fail(err, "tokenizer: invalid UTF-8 at byte %zu of the text", bad);
    if (!len) { /* nothing to do (and text may be NULL) */
        *ids = malloc(sizeof **ids);
        return *ids ? 0 : g4_fail(err, "tokenizer: out of memory");
    }
    tok_work w = {0};
    if (use_cache && !(w.cache = calloc(CACHE_SLOTS, sizeof *w.cache)))
        return g4_fail(err, "tokenizer: out of memory");
    int rc = t->raw_trie.n ? split_added(t, &w, &t->raw_trie, text, len, parse_special, 0)
                           : encode_segment(t, &w, text, len, parse_special, 0);
    free(w.sym);
    free(w.heap);
    free(w.cache);
    if (rc) {
        free(w.out);
        return g4_fail(err, "tokenizer: out of memory");
    }
    *ids = w.out ? w.out : malloc(sizeof **ids);
    if (!*ids) return g4_fail(err, "tokenizer: out of memory");
    *n = w.n_out;
    return 0;
}
