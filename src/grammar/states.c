/* The shared state space of a grammar (states.h): hash-consed stacks and
 * sets, lazy byte transitions, masks by walking the vocabulary trie. */
#include "grammar/states.h"

#include <stdlib.h>
#include <string.h>

#define MAX_NODES (1 << 21) /* 32 MiB of nodes */
#define MAX_SETS (1 << 16)  /* up to 64 MiB of transition tables */

static uint32_t mix(uint32_t h, uint32_t v) {
    h ^= v + 0x9E3779B9u + (h << 6) + (h >> 2);
    return h;
}

static int grow(void **p, int64_t need, int64_t *cap, size_t elem) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int grow32(int32_t **p, int need, int *cap) {
    int64_t c = *cap;
    int r = grow((void **)p, need, &c, sizeof **p);
    *cap = (int)c;
    return r;
}

/* ---- hash-consed nodes ---- */

static int table_init(g4g_table *t, uint32_t cap) {
    t->id = malloc(sizeof *t->id * cap);
    if (!t->id) return -1;
    memset(t->id, 0xFF, sizeof *t->id * cap);
    t->cap = cap;
    return 0;
}

static uint32_t node_hash(int32_t pos, int32_t parent) { return mix(mix(0, (uint32_t)pos), (uint32_t)parent); }

static int rehash_nodes(g4g_states *m) {
    g4g_table t;
    if (table_init(&t, m->node_table.cap * 2)) return -1;
    for (int32_t i = 0; i < m->n_nodes; i++) {
        uint32_t h = node_hash(m->nodes[i].pos, m->nodes[i].parent) & (t.cap - 1);
        while (t.id[h] >= 0) h = (h + 1) & (t.cap - 1);
        t.id[h] = i;
    }
    free(m->node_table.id);
    m->node_table = t;
    return 0;
}

static int32_t intern_node(g4g_states *m, int32_t pos, int32_t parent) {
    uint32_t h = node_hash(pos, parent) & (m->node_table.cap - 1);
    for (int32_t id; (id = m->node_table.id[h]) >= 0; h = (h + 1) & (m->node_table.cap - 1))
        if (m->nodes[id].pos == pos && m->nodes[id].parent == parent) return id;
    if (grow((void **)&m->nodes, m->n_nodes + 1, &m->cap_nodes, sizeof *m->nodes)) { m->oom = 1; return -1; }
    int32_t id = m->n_nodes++;
    const g4g_node *p = &m->nodes[parent];
    m->nodes[id] = (g4g_node){pos, parent, m->g->rest_min[pos] + p->minrem, p->depth + 1};
    if (m->nodes[id].minrem > (1 << 29)) m->nodes[id].minrem = 1 << 29;
    m->node_table.id[h] = id;
    if ((uint32_t)m->n_nodes * 2 > m->node_table.cap && rehash_nodes(m)) m->oom = 1;
    return id;
}

/* ---- expansion: a position to the terminal tops it can reach ---- */

static void add_out(g4g_states *m, int32_t id) {
    if (grow32(&m->out, m->n_out + 1, &m->cap_out)) { m->oom = 1; return; }
    m->out[m->n_out++] = id;
}

/* 1 if (pos, parent) was expanded already in this transition. */
static int seen_before(g4g_states *m, int32_t pos, int32_t parent) {
    for (int i = 0; i < m->n_seen; i += 2)
        if (m->seen[i] == pos && m->seen[i + 1] == parent) return 1;
    if (grow32(&m->seen, m->n_seen + 2, &m->cap_seen)) { m->oom = 1; return 1; }
    m->seen[m->n_seen++] = pos;
    m->seen[m->n_seen++] = parent;
    return 0;
}

static void expand(g4g_states *m, int32_t pos, int32_t parent) {
    const gemma4_grammar *g = m->g;
    if (m->oom || seen_before(m, pos, parent)) return;
    const g4g_elem *e = &g->elems[pos];
    switch (e->kind) {
    case G4G_END:
        if (parent == 0) add_out(m, 0);
        else expand(m, m->nodes[parent].pos, m->nodes[parent].parent);
        break;
    case G4G_RULE: {
        int32_t cont = parent;
        if (g->elems[pos + 1].kind != G4G_END) {
            if (m->nodes[parent].depth >= G4G_MAX_STACK_DEPTH) return; /* too deep: this way is closed */
            if ((cont = intern_node(m, pos + 1, parent)) < 0) return;
        }
        for (int32_t a = g->rule_alts[e->arg]; a < g->rule_alts[e->arg + 1]; a++) expand(m, g->alt_start[a], cont);
        break;
    }
    default: {
        int32_t id = intern_node(m, pos, parent);
        if (id >= 0) add_out(m, id);
    }
    }
}

/* ---- hash-consed sets ---- */

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static int rehash_sets(g4g_states *m) {
    g4g_table t;
    if (table_init(&t, m->set_table.cap * 2)) return -1;
    for (int32_t i = 0; i < m->n_sets; i++) {
        uint32_t h = m->sets[i].hash & (t.cap - 1);
        while (t.id[h] >= 0) h = (h + 1) & (t.cap - 1);
        t.id[h] = i;
    }
    free(m->set_table.id);
    m->set_table = t;
    return 0;
}

/* The set of m->out's nodes (sorted, deduplicated here); 0 is the empty set. */
static int32_t intern_out(g4g_states *m) {
    if (m->oom) return 0;
    qsort(m->out, (size_t)m->n_out, sizeof *m->out, cmp_i32);
    int n = 0;
    for (int i = 0; i < m->n_out; i++)
        if (!n || m->out[i] != m->out[n - 1]) m->out[n++] = m->out[i];
    uint32_t hash = 0;
    for (int i = 0; i < n; i++) hash = mix(hash, (uint32_t)m->out[i]);
    uint32_t h = hash & (m->set_table.cap - 1);
    for (int32_t id; (id = m->set_table.id[h]) >= 0; h = (h + 1) & (m->set_table.cap - 1)) {
        const g4g_set *s = &m->sets[id];
        if (s->hash == hash && s->n == n && (!n || !memcmp(m->items + s->off, m->out, sizeof *m->out * (size_t)n)))
            return id;
    }
    int64_t cap_sets = m->cap_sets;
    if (grow((void **)&m->sets, m->n_sets + 1, &cap_sets, sizeof *m->sets) ||
        grow((void **)&m->items, m->n_items + n, &m->cap_items, sizeof *m->items)) {
        m->oom = 1;
        return 0;
    }
    m->cap_sets = (int32_t)cap_sets;
    int32_t id = m->n_sets++;
    g4g_set *s = &m->sets[id];
    *s = (g4g_set){.off = (int32_t)m->n_items, .n = n, .minrem = 1 << 29, .hash = hash, .slot = -1};
    if (n) memcpy(m->items + m->n_items, m->out, sizeof *m->out * (size_t)n);
    m->n_items += n;
    for (int i = 0; i < n; i++) {
        if (m->nodes[m->out[i]].minrem < s->minrem) s->minrem = m->nodes[m->out[i]].minrem;
        if (m->out[i] == 0) s->accepting = 1;
    }
    m->set_table.id[h] = id;
    if ((uint32_t)m->n_sets * 2 > m->set_table.cap && rehash_sets(m)) m->oom = 1;
    return id;
}

/* The set after one terminal: a byte (token < 0) or a special token. */
static int32_t step(g4g_states *m, int32_t from, int byte, int32_t token) {
    m->n_out = 0;
    m->n_seen = 0;
    const gemma4_grammar *g = m->g;
    for (int32_t i = 0; i < m->sets[from].n; i++) {
        int32_t id = m->items[m->sets[from].off + i];
        if (id == 0) continue;
        const g4g_node *nd = &m->nodes[id];
        const g4g_elem *e = &g->elems[nd->pos];
        int match = token < 0 ? e->kind == G4G_BYTES && g4g_byteset_has(&g->bytesets[e->arg], (unsigned)byte)
                              : e->kind == G4G_TOKEN && e->arg == token;
        if (match) expand(m, nd->pos + 1, nd->parent);
    }
    return m->n_out ? intern_out(m) : 0;
}

int32_t g4g_byte_step(g4g_states *m, int32_t from, int byte) {
    g4g_set *s = &m->sets[from];
    if (s->trans && s->trans[byte] >= 0) return s->trans[byte];
    if (!s->trans) {
        if (!(s->trans = malloc(sizeof *s->trans * 256))) { m->oom = 1; return 0; }
        memset(s->trans, 0xFF, sizeof *s->trans * 256);
    }
    int32_t to = step(m, from, byte, -1);
    if (!m->oom) m->sets[from].trans[byte] = to;
    return to;
}

/* ---- state ---- */

static void reset_memo(g4g_states *m) {
    for (int32_t i = 0; i < m->n_sets; i++) free(m->sets[i].trans);
    m->n_sets = 1;
    m->sets[0] = (g4g_set){.slot = -1, .minrem = 1 << 29};
    m->sets[0].hash = 0;
    m->n_items = 0;
    m->n_nodes = 1;
    m->nodes[0] = (g4g_node){-1, -1, 0, 0};
    memset(m->node_table.id, 0xFF, sizeof *m->node_table.id * m->node_table.cap);
    memset(m->set_table.id, 0xFF, sizeof *m->set_table.id * m->set_table.cap);
    m->set_table.id[0] = 0; /* the empty set: hash 0, slot 0 */
    for (int i = 0; i < G4G_MASK_SLOTS; i++) m->slot_owner[i] = -1;
}

int32_t g4g_initial_set(g4g_states *m) {
    const gemma4_grammar *g = m->g;
    m->n_out = 0;
    m->n_seen = 0;
    for (int32_t a = g->rule_alts[g->root]; a < g->rule_alts[g->root + 1]; a++) expand(m, g->alt_start[a], 0);
    return intern_out(m);
}


void g4g_compute_mask(g4g_states *m, int32_t from, int32_t limit, uint64_t *bits, int32_t *maxrem) {
    const g4g_trie *t = m->g->trie;
    memset(bits, 0, sizeof *bits * (size_t)m->mask_words);
    *maxrem = 0;
    int32_t *at = m->walk_sets;
    at[0] = from;
    for (int32_t i = 0; i < t->n_nodes && !m->oom;) {
        int d = t->depth[i];
        int32_t to = g4g_byte_step(m, at[d], t->byte[i]);
        if (!to) {
            i = t->skip[i];
            continue;
        }
        at[d + 1] = to;
        int32_t rem = m->sets[to].minrem;
        if (t->tok_begin[i] < t->tok_begin[i + 1] && rem <= limit) {
            if (rem > *maxrem) *maxrem = rem;
            for (int32_t k = t->tok_begin[i]; k < t->tok_begin[i + 1]; k++) {
                int32_t id = t->tok_ids[k];
                bits[id >> 6] |= 1ull << (id & 63);
            }
        }
        i++;
    }
    for (int i = 0; i < m->g->n_special; i++) {
        int32_t id = m->g->special_ids[i], to = step(m, from, 0, id);
        if (!to || m->sets[to].minrem > limit || id >= m->g->n_vocab) continue;
        if (m->sets[to].minrem > *maxrem) *maxrem = m->sets[to].minrem;
        bits[id >> 6] |= 1ull << (id & 63);
    }
}


int32_t g4g_token_step(g4g_states *m, int32_t from, int32_t token) { return step(m, from, 0, token); }

const uint64_t *g4g_cached_mask(g4g_states *m, int32_t from, int32_t *maxrem) {
    if (m->sets[from].slot < 0) {
        int slot = m->next_slot;
        m->next_slot = (m->next_slot + 1) % G4G_MASK_SLOTS;
        if (m->slot_owner[slot] >= 0) m->sets[m->slot_owner[slot]].slot = -1;
        g4g_compute_mask(m, from, G4G_NO_LIMIT, m->masks + (size_t)slot * (size_t)m->mask_words, &m->slot_maxrem[slot]);
        m->slot_owner[slot] = from;
        m->sets[from].slot = slot;
    }
    int slot = m->sets[from].slot;
    *maxrem = m->slot_maxrem[slot];
    return m->masks + (size_t)slot * (size_t)m->mask_words;
}

g4g_states *g4g_states_new(const gemma4_grammar *g) {
    g4g_states *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->g = g;
    m->mask_words = (g->n_vocab + 63) / 64;
    m->max_nodes = MAX_NODES;
    m->max_sets = MAX_SETS;
    pthread_mutex_init(&m->lock, NULL);
    int64_t cap_sets = 0;
    if (table_init(&m->node_table, 1 << 12) || table_init(&m->set_table, 1 << 10) ||
        grow((void **)&m->nodes, 1024, &m->cap_nodes, sizeof *m->nodes) ||
        grow((void **)&m->sets, 256, &cap_sets, sizeof *m->sets) ||
        !(m->walk_sets = malloc(sizeof *m->walk_sets * (size_t)(g->trie->max_depth + 2))) ||
        !(m->masks = malloc(sizeof *m->masks * (size_t)m->mask_words * G4G_MASK_SLOTS)) ||
        !(m->limited_mask = malloc(sizeof *m->limited_mask * (size_t)m->mask_words))) {
        g4g_states_free(m);
        return NULL;
    }
    m->cap_sets = (int32_t)cap_sets;
    reset_memo(m);
    return m;
}

void g4g_states_free(g4g_states *m) {
    if (!m) return;
    for (int32_t i = 0; i < m->n_sets; i++) free(m->sets[i].trans);
    pthread_mutex_destroy(&m->lock);
    free(m->nodes);
    free(m->node_table.id);
    free(m->sets);
    free(m->items);
    free(m->set_table.id);
    free(m->live);
    free(m->out);
    free(m->seen);
    free(m->walk_sets);
    free(m->masks);
    free(m->limited_mask);
    free(m);
}

int g4g_live_add(g4g_states *m, int32_t *cur) {
    int64_t cap = m->cap_live;
    if (grow((void **)&m->live, m->n_live + 1, &cap, sizeof *m->live)) return -1;
    m->cap_live = (int)cap;
    m->live[m->n_live++] = cur;
    return 0;
}

void g4g_live_remove(g4g_states *m, int32_t *cur) {
    for (int i = 0; i < m->n_live; i++)
        if (m->live[i] == cur) {
            m->live[i] = m->live[--m->n_live];
            return;
        }
}

/* Each live state's stacks as: stack count, then per stack its depth and
 * positions from the bottom; reset; intern them again. */
int g4g_compact(g4g_states *m) {
    if (m->n_nodes < m->max_nodes && m->n_sets < m->max_sets) return 0;
    int64_t total = 0;
    for (int l = 0; l < m->n_live; l++) {
        const g4g_set *s = &m->sets[*m->live[l]];
        total += 1 + s->n;
        for (int32_t i = 0; i < s->n; i++) total += m->nodes[m->items[s->off + i]].depth;
    }
    int32_t *saved = malloc(sizeof *saved * (size_t)(total + 1));
    if (!saved) return -1;
    int64_t k = 0;
    for (int l = 0; l < m->n_live; l++) {
        const g4g_set *s = &m->sets[*m->live[l]];
        saved[k++] = s->n;
        for (int32_t i = 0; i < s->n; i++) {
            int32_t id = m->items[s->off + i], d = m->nodes[id].depth;
            saved[k++] = d;
            for (int32_t j = d - 1; j >= 0; j--, id = m->nodes[id].parent) saved[k + j] = m->nodes[id].pos;
            k += d;
        }
    }
    reset_memo(m);
    k = 0;
    for (int l = 0; l < m->n_live; l++) {
        int32_t n = saved[k++];
        m->n_out = 0;
        for (int32_t i = 0; i < n; i++) {
            int32_t d = saved[k++], id = 0;
            for (int32_t j = 0; j < d; j++) id = intern_node(m, saved[k + j], id);
            k += d;
            add_out(m, id);
        }
        *m->live[l] = intern_out(m);
    }
    free(saved);
    return m->oom ? -1 : 0;
}
