/* The BPE merge loop over one piece of text, as HF tokenizers' Word::merge_all:
 * symbols in a doubly linked list, candidate merges in a binary min-heap
 * ordered by (rank, position of the left symbol); a popped candidate whose
 * pair has changed since it was pushed is skipped. */
#include <stdlib.h>

#include "tok/tok_impl.h"

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) cap2 *= 2;
    void *q = realloc(*p, cap2 * elem);
    if (!q) return -1;
    *p = q;
    *cap = cap2;
    return 0;
}

int tok_work_push_sym(tok_work *w, int32_t id) {
    if (grow((void **)&w->sym, &w->cap_sym, w->n_sym + 1, sizeof *w->sym)) return -1;
    w->sym[w->n_sym++].id = id;
    return 0;
}

int tok_work_emit(tok_work *w, int32_t id) {
    if (grow((void **)&w->out, &w->cap_out, w->n_out + 1, sizeof *w->out)) return -1;
    w->out[w->n_out++] = id;
    return 0;
}

static inline int before(const tok_cand *a, const tok_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(tok_work *w, tok_cand c) {
    tok_cand *h = w->heap;
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&c, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = c;
}

static tok_cand heap_pop(tok_work *w) {
    tok_cand *h = w->heap, top = h[0], last = h[--w->n_heap];
    size_t n = w->n_heap, i = 0;
    for (;;) {
        size_t kid = 2 * i + 1;
        if (kid >= n) break;
        if (kid + 1 < n && before(&h[kid + 1], &h[kid])) kid++;
        if (!before(&h[kid], &last)) break;
        h[i] = h[kid];
        i = kid;
    }
    if (n) h[i] = last;
    return top;
}

static inline const tok_pair_slot *find_merge(const g4_tokenizer *t, int32_t left, int32_t right) {
    return tok_pairmap_find(&t->merges, (uint64_t)(uint32_t)left << 32 | (uint32_t)right);
}

/* Pushes the merge of the pair starting at symbol pos, if there is one. */
static void consider(const g4_tokenizer *t, tok_work *w, int32_t pos) {
    const tok_sym *s = &w->sym[pos];
    const tok_pair_slot *m = find_merge(t, s->id, w->sym[s->next].id);
    if (m) heap_push(w, (tok_cand){(uint32_t)(m->val >> 32), (uint32_t)pos, (int32_t)(uint32_t)m->val});
}

int tok_bpe(const g4_tokenizer *t, tok_work *w) {
    size_t n = w->n_sym;
    if (n == 0) return 0;
    tok_sym *sym = w->sym;
    if (n > 1) {
        /* Every merge adds at most two candidates, and there are at most
         * n - 1 merges, on top of the n - 1 initial pairs. */
        if (grow((void **)&w->heap, &w->cap_heap, 3 * n, sizeof *w->heap)) return -1;
        w->n_heap = 0;
        for (size_t i = 0; i < n; i++) {
            sym[i].prev = (int32_t)i - 1;
            sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
        }
        for (size_t i = 0; i + 1 < n; i++) consider(t, w, (int32_t)i);
        while (w->n_heap) {
            tok_cand c = heap_pop(w);
            tok_sym *s = &sym[c.pos];
            if (s->id < 0 || s->next < 0) continue;
            tok_sym *r = &sym[s->next];
            const tok_pair_slot *m = find_merge(t, s->id, r->id);
            if (!m || (int32_t)(uint32_t)m->val != c.merged) continue; /* stale */
            s->id = c.merged;
            s->next = r->next;
            r->id = -1;
            if (s->next >= 0) sym[s->next].prev = (int32_t)c.pos;
            if (s->prev >= 0) consider(t, w, s->prev);
            if (s->next >= 0) consider(t, w, (int32_t)c.pos);
        }
    }
    for (int32_t i = 0; i >= 0; i = n > 1 ? sym[i].next : -1)
        if (tok_work_emit(w, sym[i].id)) return -1;
    w->n_sym = 0;
    return 0;
}
