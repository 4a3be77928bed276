/* The state space of a grammar, built lazily as its matchers run and shared
 * by all of them (src/grammar/states.c; the matcher API is matcher.c).
 *
 * A state is a set of stacks of positions in the grammar's sequences, each
 * stack's top a terminal (a byte set or a special token). Stacks are
 * hash-consed into nodes (position, parent), and sets of stacks into set ids,
 * so an equal state always has the same id. That makes three things cheap:
 *   - a byte transition is memoised per set (a 256-entry table, filled
 *     lazily), so walking the vocabulary trie costs an array lookup per trie
 *     node;
 *   - a loop such as a string's characters returns to the same set, so the
 *     mask of a state seen before comes from a small cache keyed by set id;
 *   - "fewest bytes to finish" is known per node, so with a token budget the
 *     mask keeps only tokens after which the text can still be finished in
 *     the tokens left: a value cut by the budget always closes cleanly.
 * A call whose last element ends its sequence does not push a frame (a tail
 * call), so right-recursive loops keep the stack flat.
 *
 * Everything here runs under `lock` (one matcher step at a time per
 * grammar); set 0 is the empty set (no way on). */
#ifndef G4_GRAMMAR_STATES_H
#define G4_GRAMMAR_STATES_H

#include <pthread.h>

#include "grammar/grammar.h"

#define G4G_MASK_SLOTS 64
#define G4G_NO_LIMIT (1 << 30)

typedef struct g4g_node {
    int32_t pos, parent, minrem, depth;
} g4g_node;

typedef struct g4g_set {
    int32_t off, n, minrem;
    uint32_t hash;
    int32_t *trans; /* [256] next set per byte, -1 not yet known; NULL: none known */
    int32_t slot;   /* mask cache slot, -1: none */
    int32_t accepting;
} g4g_set;

typedef struct g4g_table {
    int32_t *id; /* open addressing, -1 empty */
    uint32_t cap;
} g4g_table;

typedef struct g4g_states {
    const gemma4_grammar *g;
    pthread_mutex_t lock;
    g4g_node *nodes;
    int32_t n_nodes;
    int64_t cap_nodes;
    g4g_table node_table;
    g4g_set *sets;
    int32_t n_sets, cap_sets;
    int32_t *items; /* the sets' sorted node lists */
    int64_t n_items, cap_items;
    g4g_table set_table;
    int32_t **live; /* every live matcher's current set, re-interned by g4g_compact */
    int32_t max_nodes, max_sets; /* when g4g_compact starts over (tests lower them) */
    int n_live, cap_live;
    /* scratch of one transition */
    int32_t *out, *seen;
    int n_out, cap_out, n_seen, cap_seen;
    int32_t *walk_sets; /* [trie max_depth + 2] */
    uint64_t *masks;    /* G4G_MASK_SLOTS masks of mask_words */
    int32_t slot_owner[G4G_MASK_SLOTS];
    int32_t slot_maxrem[G4G_MASK_SLOTS];
    int next_slot, mask_words;
    uint64_t *limited_mask;
    int oom;
} g4g_states;

g4g_states *g4g_states_new(const gemma4_grammar *g);
void g4g_states_free(g4g_states *s);
/* The grammar's start: the root's alternatives expanded. */
int32_t g4g_initial_set(g4g_states *s);
/* The set after one byte / one special token from set `from`. */
int32_t g4g_byte_step(g4g_states *s, int32_t from, int byte);
int32_t g4g_token_step(g4g_states *s, int32_t from, int32_t token);
/* Allowed tokens of set `from` into bits: those after which at most `limit`
 * bytes remain to a complete text. *maxrem: the most that remain after any
 * allowed token. */
void g4g_compute_mask(g4g_states *s, int32_t from, int32_t limit, uint64_t *bits, int32_t *maxrem);
/* The mask of set `from` without a limit, from the cache (computed if not
 * there); *maxrem as above. */
const uint64_t *g4g_cached_mask(g4g_states *s, int32_t from, int32_t *maxrem);
/* Live matchers register where they keep their current set. */
int g4g_live_add(g4g_states *s, int32_t *cur);
void g4g_live_remove(g4g_states *s, int32_t *cur);
/* The tables only grow; past a bound they start over, every live state
 * re-interned. -1 when out of memory. */
int g4g_compact(g4g_states *s);

#endif
