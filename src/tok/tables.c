#include "tok/tables.h"

#include <stdlib.h>
#include <sys/mman.h>

/* Zeroed memory for a table. Big tables take anonymous mappings with
 * transparent huge pages where the kernel offers them: their slots are hit
 * at random, and 4 KiB pages would mean thousands of page faults and TLB
 * misses while loading. */
#define BIG_TABLE ((size_t)2 << 20)
static void *table_alloc(size_t bytes) {
    if (bytes < BIG_TABLE) return calloc(1, bytes);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

static void table_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < BIG_TABLE) free(p);
    else munmap(p, bytes);
}

static uint64_t table_size(size_t n_keys) {
    uint64_t size = 16;
    while (size < (uint64_t)n_keys * 2) size <<= 1; /* load factor <= 1/2 */
    return size;
}

int tok_strmap_init(tok_strmap *m, size_t n_keys) {
    uint64_t size = table_size(n_keys);
    m->slot = table_alloc(size * sizeof *m->slot);
    m->mask = size - 1;
    return m->slot ? 0 : -1;
}

void tok_strmap_free(tok_strmap *m) {
    table_free(m->slot, (m->mask + 1) * sizeof *m->slot);
    m->slot = NULL;
}

static inline int same_bytes(const char *a, const char *b, size_t n) {
    if (n <= 8) { /* most tokens: no libc call */
        for (size_t i = 0; i < n; i++)
            if (a[i] != b[i]) return 0;
        return 1;
    }
    return memcmp(a, b, n) == 0;
}

int32_t tok_strmap_get(const tok_strmap *m, const tok_texts *t, const char *s, size_t n) {
    return tok_strmap_get_h(m, t, s, n, tok_hash_bytes(s, n));
}

int32_t tok_strmap_get_h(const tok_strmap *m, const tok_texts *t, const char *s, size_t n, uint64_t h) {
    return tok_strmap_get_from(m, t, s, n, h, h & m->mask);
}

int32_t tok_strmap_get_from(const tok_strmap *m, const tok_texts *t, const char *s, size_t n, uint64_t h,
                            uint64_t i) {
    uint32_t tag = (uint32_t)(h >> 32);
    for (;; i = (i + 1) & m->mask) {
        const tok_str_slot *x = &m->slot[i];
        if (!x->id_plus1) return -1;
        if (x->tag == tag && x->at.len == n && same_bytes(t->pool + x->at.off, s, n))
            return (int32_t)(x->id_plus1 - 1);
    }
}

int32_t tok_strmap_add(tok_strmap *m, const tok_texts *t, int32_t id) {
    return tok_strmap_add_h(m, t, id, tok_hash_bytes(t->pool + t->at[id].off, t->at[id].len));
}

int32_t tok_strmap_add_h(tok_strmap *m, const tok_texts *t, int32_t id, uint64_t h) {
    tok_text_at at = t->at[id];
    const char *s = t->pool + at.off;
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        tok_str_slot *x = &m->slot[i];
        if (!x->id_plus1) {
            *x = (tok_str_slot){tag, (uint32_t)id + 1, at};
            return -1;
        }
        if (x->tag == tag && x->at.len == at.len && same_bytes(t->pool + x->at.off, s, at.len))
            return (int32_t)(x->id_plus1 - 1);
    }
}

int tok_pairmap_init(tok_pairmap *m, size_t n_keys) {
    uint64_t size = table_size(n_keys);
    m->slot = table_alloc(size * sizeof *m->slot);
    if (!m->slot) return -1;
    m->mask = size - 1;
    m->n = 0;
    return 0;
}

void tok_pairmap_free(tok_pairmap *m) {
    table_free(m->slot, (m->mask + 1) * sizeof *m->slot);
    m->slot = NULL;
}

static int pairmap_grow(tok_pairmap *m) {
    tok_pairmap bigger;
    if (tok_pairmap_init(&bigger, (size_t)(m->mask + 1))) return -1; /* twice the slots */
    for (uint64_t i = 0; i <= m->mask; i++)
        if (m->slot[i].key1) tok_pairmap_put(&bigger, m->slot[i].key1 - 1, m->slot[i].val);
    table_free(m->slot, (m->mask + 1) * sizeof *m->slot);
    *m = bigger;
    return 0;
}

int tok_pairmap_put(tok_pairmap *m, uint64_t key, uint64_t val) {
    if ((m->n + 1) * 2 > m->mask + 1 && pairmap_grow(m)) return -1;
    uint64_t i = tok_mix64(key) & m->mask;
    for (;;) {
        tok_pair_slot *s = &m->slot[i];
        if (s->key1 == key + 1) {
            s->val = val;
            return 0;
        }
        if (!s->key1) {
            s->key1 = key + 1;
            s->val = val;
            m->n++;
            return 0;
        }
        i = (i + 1) & m->mask;
    }
}
