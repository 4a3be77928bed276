/* The tokenizer's tables and the builder the loaders use to fill them:
 * id <-> text, the merge table, the added-token tries. */
#include "tok/tok_impl.h"
#include "tok/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

g4_tokenizer *tok_alloc(void) {
    g4_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->unk_id = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int b = 0; b < 256; b++) t->raw_trie.root_child[b] = t->norm_trie.root_child[b] = -1;
    return t;
}

int tok_reserve_ids(g4_tokenizer *t, int32_t n_ids, size_t pool_hint) {
    t->text.n = t->text.cap = n_ids;
    t->text.at = malloc((size_t)n_ids * sizeof *t->text.at + 1);
    t->flags = calloc((size_t)n_ids + 1, 1);
    if (!t->text.pool) {
        t->text.pool_cap = pool_hint + 16;
        t->text.pool = malloc(t->text.pool_cap);
    }
    if (!t->text.at || !t->flags || !t->text.pool) return -1;
    for (int32_t i = 0; i < n_ids; i++) t->text.at[i].len = TOK_NO_TEXT;
    return 0;
}

int tok_grow_ids(g4_tokenizer *t, int32_t n_ids) {
    if (n_ids <= t->text.n) return 0;
    if (n_ids > t->text.cap) { /* geometric: added tokens come one by one */
        int32_t cap = t->text.cap > INT32_MAX / 2 ? INT32_MAX : t->text.cap * 2;
        if (cap < n_ids) cap = n_ids;
        tok_text_at *at = realloc(t->text.at, (size_t)cap * sizeof *at);
        if (at) t->text.at = at;
        uint8_t *flags = realloc(t->flags, (size_t)cap);
        if (flags) t->flags = flags;
        if (!at || !flags) return -1;
        t->text.cap = cap;
    }
    for (int32_t i = t->text.n; i < n_ids; i++) {
        t->text.at[i].len = TOK_NO_TEXT;
        t->flags[i] = 0;
    }
    t->text.n = n_ids;
    return 0;
}

int tok_set_text(g4_tokenizer *t, int32_t id, const char *s, size_t n, g4_error *err) {
    if (id < 0 || id >= t->text.n) return g4_fail(err, "tokenizer: token id %d out of range", (int)id);
    if (t->text.at[id].len != TOK_NO_TEXT) return g4_fail(err, "tokenizer: token id %d is given twice", (int)id);
    if (n >= TOK_NO_TEXT || t->text.pool_len + n >= UINT32_MAX)
        return g4_fail(err, "tokenizer: token texts exceed 4 GiB");
    size_t bad;
    if (!tok_utf8_valid(s, n, &bad)) return g4_fail(err, "tokenizer: token %d is not valid UTF-8", (int)id);
    if (t->text.pool_len + n > t->text.pool_cap) {
        size_t cap = t->text.pool_cap * 2 + n;
        char *p = realloc(t->text.pool, cap);
        if (!p) return g4_fail(err, "tokenizer: out of memory");
        t->text.pool = p;
        t->text.pool_cap = cap;
    }
    memcpy(t->text.pool + t->text.pool_len, s, n);
    t->text.at[id].off = (uint32_t)t->text.pool_len;
    t->text.at[id].len = (uint32_t)n;
    t->text.pool_len += n;
    return 0;
}

static const char *text_of(const g4_tokenizer *t, int32_t id, size_t *n) {
    *n = t->text.at[id].len;
    return t->text.pool + t->text.at[id].off;
}

int tok_index_vocab(g4_tokenizer *t, g4_error *err) {
    size_t n_vocab = 0;
    for (int32_t id = 0; id < t->text.n; id++) n_vocab += (t->flags[id] & TOKF_VOCAB) != 0;
    t->bmp_id = malloc(0x10000 * sizeof *t->bmp_id);
    if (!t->bmp_id || tok_strmap_init(&t->vocab, n_vocab)) return g4_fail(err, "tokenizer: out of memory");
    memset(t->bmp_id, 0xff, 0x10000 * sizeof *t->bmp_id);
    /* Inserted in batches whose slots are prefetched first (random
     * addresses in an 8 MB table: the misses overlap). */
    enum { BATCH = 64 };
    uint64_t h[BATCH];
    for (int32_t base = 0; base < t->text.n; base += BATCH) {
        int32_t end = t->text.n - base < BATCH ? t->text.n : base + BATCH;
        for (int32_t id = base; id < end; id++) {
            if (!(t->flags[id] & TOKF_VOCAB)) continue;
            h[id - base] = tok_hash_bytes(t->text.pool + t->text.at[id].off, t->text.at[id].len);
            __builtin_prefetch(&t->vocab.slot[h[id - base] & t->vocab.mask]);
        }
        for (int32_t id = base; id < end; id++) {
            if (!(t->flags[id] & TOKF_VOCAB)) continue;
            size_t n;
            const char *s = text_of(t, id, &n);
            int32_t other = tok_strmap_add_h(&t->vocab, &t->text, id, h[id - base]);
            if (other >= 0)
                return g4_fail(err, "tokenizer: token text \"%.*s\" has two ids, %d and %d", (int)(n < 40 ? n : 40),
                               s, (int)other, (int)id);
            uint32_t cp;
            if (n && n <= 3 && tok_utf8_next((const unsigned char *)s, n, &cp) == n) t->bmp_id[cp] = id;
        }
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = tok_strmap_get(&t->vocab, &t->text, name, 6);
    }
    return 0;
}

int tok_merges_begin(g4_tokenizer *t, size_t n_merges, g4_error *err) {
    /* n_merges may be an estimate: the tables grow. Far fewer distinct
     * code-point adjacencies than merges. */
    if (tok_pairmap_init(&t->merges, n_merges) || tok_pairmap_init(&t->cross, n_merges / 8))
        return g4_fail(err, "tokenizer: out of memory");
    return 0;
}

static uint32_t last_cp(const char *s, size_t n) {
    size_t i = n - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80) i--;
    uint32_t cp = 0;
    tok_utf8_next((const unsigned char *)s + i, n - i, &cp);
    return cp;
}


static int put_merge(g4_tokenizer *t, int32_t left, int32_t right, int32_t merged, uint32_t rank, uint64_t cross) {
    if (tok_pairmap_put(&t->merges, (uint64_t)(uint32_t)left << 32 | (uint32_t)right,
                        (uint64_t)rank << 32 | (uint32_t)merged) ||
        tok_pairmap_put(&t->cross, cross, 0))
        return -1;
    return 0;
}

static uint64_t cross_key(const char *l, size_t ln, const char *r, size_t rn) {
    uint32_t a = last_cp(l, ln), b = 0;
    tok_utf8_next((const unsigned char *)r, rn, &b);
    return (uint64_t)a << 32 | b;
}

int tok_add_merge_ids(g4_tokenizer *t, int32_t left, int32_t right, int32_t merged, uint32_t rank) {
    size_t ln, rn;
    const char *l = text_of(t, left, &ln), *r = text_of(t, right, &rn);
    return put_merge(t, left, right, merged, rank, cross_key(l, ln, r, rn));
}

/* Merges are resolved in batches, in passes over the batch, so that the
 * cache misses of the ~1.5 million text lookups overlap: hash the three
 * texts of every merge (left, right, left+right) and prefetch their table
 * slots; find each candidate slot and prefetch its text in the pool;
 * verify; then prefetch and fill the merge table. */
static int resolve(g4_tokenizer *t, tok_merge_batch *b, g4_error *err) {
    const tok_strmap *m = &t->vocab;
    struct {
        uint64_t h[3], slot[3], cross;
        int32_t id[3];
    } r[TOK_MERGE_BATCH];
    for (size_t i = 0; i < b->n; i++) {
        const char *s = b->buf + b->item[i].off;
        size_t ln = b->item[i].ln, rn = b->item[i].rn;
        r[i].h[0] = tok_hash_bytes(s, ln);
        r[i].h[1] = tok_hash_bytes(s + ln, rn);
        r[i].h[2] = tok_hash_bytes(s, ln + rn);
        for (int k = 0; k < 3; k++) __builtin_prefetch(&m->slot[r[i].h[k] & m->mask]);
    }
    for (size_t i = 0; i < b->n; i++)
        for (int k = 0; k < 3; k++) {
            uint64_t j = r[i].h[k] & m->mask;
            uint32_t tag = (uint32_t)(r[i].h[k] >> 32);
            while (m->slot[j].id_plus1 && m->slot[j].tag != tag) j = (j + 1) & m->mask;
            r[i].slot[k] = j;
            if (m->slot[j].id_plus1) __builtin_prefetch(t->text.pool + m->slot[j].at.off);
        }
    for (size_t i = 0; i < b->n; i++) {
        const char *s = b->buf + b->item[i].off;
        size_t ln = b->item[i].ln, rn = b->item[i].rn;
        uint32_t rank = b->item[i].rank;
        r[i].id[0] = tok_strmap_get_from(m, &t->text, s, ln, r[i].h[0], r[i].slot[0]);
        r[i].id[1] = tok_strmap_get_from(m, &t->text, s + ln, rn, r[i].h[1], r[i].slot[1]);
        r[i].id[2] = tok_strmap_get_from(m, &t->text, s, ln + rn, r[i].h[2], r[i].slot[2]);
        if (r[i].id[0] < 0 || r[i].id[1] < 0) {
            const char *miss = r[i].id[0] < 0 ? s : s + ln;
            size_t mn = r[i].id[0] < 0 ? ln : rn;
            return g4_fail(err, "tokenizer: merge %u refers to \"%.*s\", which is not in the vocabulary", rank + 1,
                           (int)(mn < 40 ? mn : 40), miss);
        }
        if (r[i].id[2] < 0)
            return g4_fail(err,
                           "tokenizer: merge %u (\"%.*s\" + \"%.*s\") makes a token that is not in the vocabulary",
                           rank + 1, (int)(ln < 40 ? ln : 40), s, (int)(rn < 40 ? rn : 40), s + ln);
        __builtin_prefetch(&t->merges.slot[tok_mix64((uint64_t)(uint32_t)r[i].id[0] << 32 | (uint32_t)r[i].id[1]) &
                                           t->merges.mask]);
        r[i].cross = cross_key(s, ln, s + ln, rn);
        __builtin_prefetch(&t->cross.slot[tok_mix64(r[i].cross) & t->cross.mask]);
    }
    for (size_t i = 0; i < b->n; i++)
        if (put_merge(t, r[i].id[0], r[i].id[1], r[i].id[2], b->item[i].rank, r[i].cross))
            return g4_fail(err, "tokenizer: out of memory");
    b->n = 0;
    b->len = 0;
    return 0;
}

int tok_add_merge(g4_tokenizer *t, tok_merge_batch *b, const char *l, size_t ln, const char *r, size_t rn,
                  uint32_t rank, g4_error *err) {
    if (b->len + ln + rn > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 4096) + ln + rn;
        char *p = realloc(b->buf, cap);
        if (!p) return g4_fail(err, "tokenizer: out of memory");
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, l, ln);
    memcpy(b->buf + b->len + ln, r, rn);
    b->item[b->n].off = b->len;
    b->item[b->n].ln = (uint32_t)ln;
    b->item[b->n].rn = (uint32_t)rn;
    b->item[b->n].rank = rank;
    b->len += ln + rn;
    if (++b->n == TOK_MERGE_BATCH) return resolve(t, b, err);
    return 0;
}

int tok_merges_end(g4_tokenizer *t, tok_merge_batch *b, g4_error *err) {
    int rc = b->n ? resolve(t, b, err) : 0;
    tok_merges_drop(b);
    return rc;
}

void tok_merges_drop(tok_merge_batch *b) {
    free(b->buf);
    memset(b, 0, sizeof *b);
}

int tok_add_replace(tok_replace **list, size_t *n, const char *from, size_t from_len, const char *to,
                    size_t to_len) {
    tok_replace *l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l) return -1;
    *list = l;
    tok_replace *r = &l[*n];
    r->from = malloc(from_len + 1);
    r->to = malloc(to_len + 1);
    if (!r->from || !r->to) {
        free(r->from);
        free(r->to);
        return -1;
    }
    memcpy(r->from, from, from_len);
    memcpy(r->to, to, to_len);
    r->from_len = from_len;
    r->to_len = to_len;
    (*n)++;
    return 0;
}

int tok_apply_replace(const tok_replace *r, const char *s, size_t n, char **out, size_t *out_len) {
    size_t hits = 0;
    for (const char *p = s, *e = s + n; (p = memmem(p, (size_t)(e - p), r->from, r->from_len)); p += r->from_len)
        hits++;
    size_t cap = n - hits * r->from_len + hits * r->to_len;
    char *o = malloc(cap + 1);
    if (!o) return -1;
    size_t k = 0;
    const char *p = s, *e = s + n;
    for (const char *q; (q = memmem(p, (size_t)(e - p), r->from, r->from_len)); p = q + r->from_len) {
        memcpy(o + k, p, (size_t)(q - p));
        k += (size_t)(q - p);
        memcpy(o + k, r->to, r->to_len);
        k += r->to_len;
    }
    memcpy(o + k, p, (size_t)(e - p));
    k += (size_t)(e - p);
    *out = o;
    *out_len = k;
    return 0;
}

int tok_add_added(g4_tokenizer *t, int32_t id, const char *content, size_t len, int special, int lstrip,
                  int rstrip, int normalized, g4_error *err) {
    if (!len) return g4_fail(err, "tokenizer: added token %d has empty content", (int)id);
    if (t->n_added == t->cap_added) {
        size_t cap = t->cap_added ? 2 * t->cap_added : 64;
        tok_added *a = realloc(t->added, cap * sizeof *a);
        if (!a) return g4_fail(err, "tokenizer: out of memory");
        t->added = a;
        t->cap_added = cap;
    }
    tok_added *a = t->added;
    tok_added *x = &a[t->n_added];
    memset(x, 0, sizeof *x);
    x->id = id;
    x->special = (uint8_t)!!special;
    x->lstrip = (uint8_t)!!lstrip;
    x->rstrip = (uint8_t)!!rstrip;
    x->normalized = (uint8_t)!!normalized;
    /* A normalized token is matched in normalized text, so by its normalized form. */
    char *s = NULL;
    size_t n = len;
    if (normalized && t->n_norm) {
        const char *cur = content;
        for (size_t i = 0; i < t->n_norm; i++) {
            char *next;
            if (tok_apply_replace(&t->norm[i], cur, n, &next, &n)) {
                if (cur != content) free((char *)cur);
                return g4_fail(err, "tokenizer: out of memory");
            }
            if (cur != content) free((char *)cur);
            cur = next;
        }
        s = (char *)cur;
        if (!n) {
            free(s);
            return g4_fail(err, "tokenizer: added token %d is empty once normalized", (int)id);
        }
    } else {
        s = malloc(len + 1);
        if (!s) return g4_fail(err, "tokenizer: out of memory");
        memcpy(s, content, len);
    }
    s[n] = 0;
    x->content = s;
    x->len = n;
    t->n_added++;
    t->flags[id] |= (uint8_t)(TOKF_ADDED | (special ? TOKF_SPECIAL : 0));
    return 0;
}

static int trie_new_node(tok_trie *tr, unsigned char byte) {
    if (tr->n == tr->cap) {
        size_t cap = tr->cap ? tr->cap * 2 : 256;
        tok_trie_node *p = realloc(tr->node, cap * sizeof *p);
        if (!p) return -1;
        tr->node = p;
        tr->cap = cap;
    }
    tok_trie_node *x = &tr->node[tr->n];
    x->child = x->sibling = x->match = -1;
    x->byte = byte;
    return (int)tr->n++;
}

/* Adds a[idx] to the trie; -2 if an earlier added token has the same content. */
static int trie_insert(tok_trie *tr, const tok_added *a, int32_t idx) {
    const unsigned char *s = (const unsigned char *)a[idx].content;
    int node = tr->root_child[s[0]];
    if (node < 0) {
        if ((node = trie_new_node(tr, s[0])) < 0) return -1;
        tr->root_child[s[0]] = node;
    }
    for (size_t i = 1; i < a[idx].len; i++) {
        int c = tr->node[node].child, prev = -1;
        while (c >= 0 && tr->node[c].byte != s[i]) prev = c, c = tr->node[c].sibling;
        if (c < 0) {
            if ((c = trie_new_node(tr, s[i])) < 0) return -1;
            if (prev < 0) tr->node[node].child = c;
            else tr->node[prev].sibling = c;
        }
        node = c;
    }
    if (tr->node[node].match >= 0) return -2;
    tr->node[node].match = idx;
    return 0;
}

int tok_finish(g4_tokenizer *t, g4_error *err) {
    for (size_t i = 0; i < t->n_added; i++) {
        tok_trie *tr = t->added[i].normalized && t->n_norm ? &t->norm_trie : &t->raw_trie;
        int rc = trie_insert(tr, t->added, (int32_t)i);
        if (rc == -1) return g4_fail(err, "tokenizer: out of memory");
        if (rc == -2)
            return g4_fail(err, "tokenizer: added token \"%.*s\" appears twice",
                           (int)(t->added[i].len < 40 ? t->added[i].len : 40), t->added[i].content);
    }
    t->cut_pieces = !t->ignore_merges;
    return 0;
}

void g4_tok_free(g4_tokenizer *t) {
    if (!t) return;
    free(t->text.pool);
    free(t->text.at);
    free(t->flags);
    tok_strmap_free(&t->vocab);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->raw_trie.node);
    free(t->norm_trie.node);
    tok_pairmap_free(&t->merges);
    tok_pairmap_free(&t->cross);
    free(t->bmp_id);
    for (size_t i = 0; i < t->n_norm; i++) free(t->norm[i].from), free(t->norm[i].to);
    free(t->norm);
    free(t->split);
    for (size_t i = 0; i < t->n_dec_pre; i++) free(t->dec_pre[i].rep.from), free(t->dec_pre[i].rep.to);
    for (size_t i = 0; i < t->n_dec_post; i++) free(t->dec_post[i].rep.from), free(t->dec_post[i].rep.to);
    free(t->dec_pre);
    free(t->dec_post);
    free(t);
}

int32_t g4_tok_n_vocab(const g4_tokenizer *t) { return t->text.n; }

int32_t g4_tok_token_id(const g4_tokenizer *t, const char *text) {
    size_t n = strlen(text);
    /* The loaders make an added token's id agree with the vocabulary, so the
     * vocabulary answers first; added tokens outside it come next. */
    int32_t id = tok_strmap_get(&t->vocab, &t->text, text, n);
    if (id >= 0) return id;
    for (size_t i = 0; i < t->n_added; i++) {
        int32_t a = t->added[i].id;
        if (t->text.at[a].len == n && !memcmp(t->text.pool + t->text.at[a].off, text, n)) return a;
    }
    return -1;
}

const char *g4_tok_token_text(const g4_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->text.n || t->text.at[id].len == TOK_NO_TEXT) return NULL;
    if (len) *len = t->text.at[id].len;
    return t->text.pool + t->text.at[id].off;
}

int g4_tok_is_special(const g4_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->text.n && (t->flags[id] & TOKF_SPECIAL) != 0;
}

int g4_tok_is_added(const g4_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->text.n && (t->flags[id] & TOKF_ADDED) != 0;
}

int tok_is_whitespace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}
