/* Hash tables for the tokenizer: token text -> id, and 64-bit key -> 64-bit
 * value (merge pairs, code-point adjacencies). Open addressing, linear
 * probing, sized once: the tokenizer never grows them after loading. */
#ifndef G4_TOK_TABLES_H
#define G4_TOK_TABLES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t tok_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t tok_hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xbf58476d1ce4e5b9ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x94d049bb133111ebull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return tok_mix64(h ^ w);
}

/* Token texts, back to back in one pool. at[id].len == TOK_NO_TEXT marks
 * an id that has no token. */
#define TOK_NO_TEXT UINT32_MAX
typedef struct tok_text_at {
    uint32_t off, len;
} tok_text_at;
typedef struct tok_texts {
    char *pool;
    size_t pool_len, pool_cap;
    tok_text_at *at; /* per id */
    int32_t n, cap;  /* ids 0..n-1; room for cap */
} tok_texts;

/* Text -> id. A slot repeats the text's place in the pool so that a lookup
 * touches the table and the pool only; id_plus1 == 0 marks an empty slot. */
typedef struct tok_str_slot {
    uint32_t tag; /* high half of the hash */
    uint32_t id_plus1;
    tok_text_at at;
} tok_str_slot;
typedef struct tok_strmap {
    tok_str_slot *slot;
    uint64_t mask;
} tok_strmap;

int tok_strmap_init(tok_strmap *m, size_t n_keys);
void tok_strmap_free(tok_strmap *m);
/* Returns the id of text, or -1. */
int32_t tok_strmap_get(const tok_strmap *m, const tok_texts *t, const char *s, size_t n);
/* The same, with h = tok_hash_bytes(s, n) already computed, and probing
 * from slot i (h & mask, or a later slot known not to hold s). */
int32_t tok_strmap_get_h(const tok_strmap *m, const tok_texts *t, const char *s, size_t n, uint64_t h);
int32_t tok_strmap_get_from(const tok_strmap *m, const tok_texts *t, const char *s, size_t n, uint64_t h,
                            uint64_t i);
/* Adds id (whose text is in t) unless its text is already there; returns
 * the id already holding that text, or -1 if it was added. */
int32_t tok_strmap_add(tok_strmap *m, const tok_texts *t, int32_t id);
int32_t tok_strmap_add_h(tok_strmap *m, const tok_texts *t, int32_t id, uint64_t h);

/* 64-bit key -> 64-bit value. A slot stores key + 1, so that zeroed memory
 * is an empty table (keys here never reach UINT64_MAX). */
typedef struct tok_pair_slot {
    uint64_t key1, val;
} tok_pair_slot;
typedef struct tok_pairmap {
    tok_pair_slot *slot;
    uint64_t mask;
    size_t n;
} tok_pairmap;

int tok_pairmap_init(tok_pairmap *m, size_t n_keys);
void tok_pairmap_free(tok_pairmap *m);
/* Inserts or overwrites (a later merge of the same pair wins, as in HF);
 * grows the table as needed. -1: out of memory. */
int tok_pairmap_put(tok_pairmap *m, uint64_t key, uint64_t val);

static inline const tok_pair_slot *tok_pairmap_find(const tok_pairmap *m, uint64_t key) {
    uint64_t i = tok_mix64(key) & m->mask;
    for (;;) {
        const tok_pair_slot *s = &m->slot[i];
        if (s->key1 == key + 1) return s;
        if (!s->key1) return NULL;
        i = (i + 1) & m->mask;
    }
}

#endif
