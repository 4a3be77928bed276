/* The compiled form every structured-output front end produces (JSON Schema,
 * tool calls, the user grammar format): a context-free grammar over bytes.
 *
 * A rule is a list of alternatives; an alternative is a sequence of elements
 * ending in G4G_END. An element matches one byte of a byte set, one special
 * token, or a whole rule. Rules may recurse (not on the left). The runtime
 * (matcher.c) keeps a set of stacks of positions in these sequences, so the
 * grammar may be ambiguous; docs/grammar.md describes the whole design. The
 * state space a grammar's matchers explore is a cache kept with it (behind
 * a lock), so the grammar stays logically immutable and shareable.
 *
 * Front ends build grammars with g4g_builder: sequences are assembled in a
 * g4g_seq and added as alternatives of a rule. */
#ifndef G4_GRAMMAR_GRAMMAR_H
#define G4_GRAMMAR_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemma4.h"
#include "util/error.h"

typedef enum { G4G_END, G4G_BYTES, G4G_RULE, G4G_TOKEN } g4g_kind;

typedef struct g4g_elem {
    int32_t kind; /* g4g_kind */
    int32_t arg;  /* BYTES: byte-set index; RULE: rule id; TOKEN: token id */
} g4g_elem;

typedef struct g4g_byteset {
    uint32_t bits[8];
} g4g_byteset;

static inline bool g4g_byteset_has(const g4g_byteset *s, unsigned b) { return s->bits[b >> 5] >> (b & 31) & 1u; }
static inline void g4g_byteset_add(g4g_byteset *s, unsigned b) { s->bits[b >> 5] |= 1u << (b & 31); }

typedef struct g4g_trie g4g_trie;
typedef struct g4g_states g4g_states;

/* Limits that keep generation bounded and memory small. */
#define G4G_MAX_STACK_DEPTH 192  /* frames; deeper alternatives are dropped (nesting bound) */
#define G4G_MAX_REPEAT 10000     /* the largest {m,n} bound */
#define G4G_JSON_MAX_WS 12       /* whitespace bytes between JSON tokens */

struct gemma4_grammar {
    g4g_elem *elems; /* every alternative's sequence, each ending in G4G_END */
    int32_t *alt_start;   /* [n_alts] first element of each alternative */
    int32_t *rule_alts;   /* [n_rules + 1] the rule's alternatives: alt_start[rule_alts[r] .. rule_alts[r+1]) */
    int32_t *rest_min;    /* [n_elems] fewest bytes (a special token counts 1) from here to the END */
    g4g_byteset *bytesets;
    int n_elems, n_alts, n_rules, n_bytesets, root;
    int32_t *special_ids; /* special tokens the grammar uses */
    int n_special;
    int32_t end_ids[4]; /* tokens allowed once the text is complete */
    int n_end;
    int32_t n_vocab;
    g4g_trie *trie;
    g4g_states *states; /* built as matchers run, shared by them (states.h) */
};

/* ---- builder ---- */

typedef struct g4g_seq {
    g4g_elem *v;
    int n, cap;
} g4g_seq;

typedef struct g4g_builder g4g_builder;

g4g_builder *g4g_builder_new(const gemma4_tokenizer *tok, g4_error *err);
void g4g_builder_free(g4g_builder *b);
/* A new rule without alternatives (name: for error messages; may be NULL). */
int g4g_rule(g4g_builder *b, const char *name);
/* Adds seq (copied; then cleared) as an alternative of rule. */
void g4g_alt(g4g_builder *b, int rule, g4g_seq *seq);
/* A rule with the single alternative seq (consumed). */
int g4g_rule_of(g4g_builder *b, g4g_seq *seq);

void g4g_seq_free(g4g_seq *s);
void g4g_seq_rule(g4g_builder *b, g4g_seq *s, int rule);
void g4g_seq_bytes(g4g_builder *b, g4g_seq *s, const g4g_byteset *set);
void g4g_seq_byte_range(g4g_builder *b, g4g_seq *s, unsigned lo, unsigned hi);
void g4g_seq_literal(g4g_builder *b, g4g_seq *s, const char *text, size_t n);
/* A special token by its text (e.g. "<|tool_call>"); -1 with an error if the
 * tokenizer has no such token. */
int g4g_seq_token(g4g_builder *b, g4g_seq *s, const char *token_text);

/* Code-point ranges [lo, hi] (inclusive pairs, any order) as UTF-8: a rule
 * matching one character of the set; negate takes the complement (within
 * U+0000..U+10FFFF, never surrogates). */
int g4g_char_class(g4g_builder *b, const uint32_t *ranges, int n_ranges, bool negate);
/* item{min,max} (max < 0: no upper bound) as a new rule. */
int g4g_repeat(g4g_builder *b, int item_rule, int min, int max);
/* A quantifier at s[*i] (* + ? {m} {m,} {m,n}), shared by the regex and
 * user grammar readers: 1 with *min, *max (-1: unbounded) and *i past it,
 * 0 if there is none there, -1 if it is malformed. */
int g4g_quantifier(const char *s, size_t n, size_t *i, int *min, int *max);
/* The empty rule (matches nothing, always succeeds). */
int g4g_empty(g4g_builder *b);

/* Records a failure (the first one wins); returns -1. */
int g4g_fail(g4g_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool g4g_failed(const g4g_builder *b);
const gemma4_tokenizer *g4g_tokenizer(const g4g_builder *b);
int g4g_add_end_token(g4g_builder *b, const char *token_text);

/* Checks the grammar (every rule defined, no left recursion), builds the
 * vocabulary trie and returns the immutable grammar, or NULL (b's error). */
gemma4_grammar *g4g_finish(g4g_builder *b, int root);

/* ---- vocabulary trie (trie.c) ---- */

/* The decoded bytes of every ordinary token (U+2581 -> ' ', <0xNN> -> the
 * byte), added and unused tokens left out, as a trie in depth-first order;
 * shared by the grammars of one vocabulary (a reference each). */
g4g_trie *g4g_trie_get(const gemma4_tokenizer *tok, g4_error *err);
void g4g_trie_release(g4g_trie *t);

struct g4g_trie {
    int32_t n_nodes;
    uint8_t *byte;      /* [n_nodes] the byte on the edge into the node */
    uint16_t *depth;    /* [n_nodes] 0 for the root's children */
    int32_t *skip;      /* [n_nodes] the node after this one's subtree */
    int32_t *tok_begin; /* [n_nodes + 1] tokens ending here: tok_ids[tok_begin[i] .. tok_begin[i+1]) */
    int32_t *tok_ids;
    int max_depth;
    /* per token id: its decoded bytes (tok_len -1: not in the trie) */
    int32_t n_vocab;
    uint32_t *tok_off;
    int32_t *tok_len;
    uint8_t *tok_bytes;
    uint8_t *is_special; /* [n_vocab] added tokens (control, user-defined, unused): never ordinary text */
    uint64_t fingerprint; /* of the vocabulary it was built from */
    int refs;             /* under the cache's lock */
};

#endif
