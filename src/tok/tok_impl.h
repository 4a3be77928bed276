/* The tokenizer's internal layout, shared by the files of src/tok/: the
 * loaders fill it (load_json.c, arrays.c) through the builder in vocab.c;
 * encode.c and bpe.c read it to encode, decode.c to decode. */
#ifndef G4_TOK_IMPL_H
#define G4_TOK_IMPL_H

#include "tok/tables.h"
#include "tok/tokenizer.h"

/* Per-id flags. */
enum {
    TOKF_VOCAB = 1,   /* in the BPE model's vocabulary (model.vocab) */
    TOKF_ADDED = 2,   /* an added token (added_tokens[]) */
    TOKF_SPECIAL = 4, /* an added token with "special": true */
};

/* An added token: matched in the text before BPE. */
typedef struct tok_added {
    int32_t id;
    uint8_t special, lstrip, rstrip, normalized;
    char *content; /* as matched: the normalized form when `normalized` */
    size_t len;
} tok_added;

/* A byte trie over added-token contents; match = index into added[], or -1. */
typedef struct tok_trie_node {
    int32_t child, sibling, match;
    unsigned char byte;
} tok_trie_node;
typedef struct tok_trie {
    tok_trie_node *node;
    size_t n, cap;
    int32_t root_child[256]; /* -1: no token starts with this byte */
} tok_trie;

/* A string replacement (normalizer Replace, decoder Replace). */
typedef struct tok_replace {
    char *from, *to;
    size_t from_len, to_len;
} tok_replace;

/* Split pre-tokenizer behaviours (HF SplitDelimiterBehavior). */
enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };

/* A per-string decoder step. */
enum { DEC_REPLACE, DEC_STRIP };
typedef struct tok_dec_step {
    int kind;
    tok_replace rep;       /* DEC_REPLACE */
    uint32_t strip_cp;     /* DEC_STRIP: the character removed ... */
    size_t strip_start;    /* ... up to this many times at the start */
    size_t strip_stop;     /* ... and at the end of each string */
} tok_dec_step;

struct g4_tokenizer {
    tok_texts text;   /* id -> text */
    uint8_t *flags;   /* id -> TOKF_* */
    tok_strmap vocab; /* model vocabulary: text -> id */

    tok_added *added;
    size_t n_added, cap_added;
    tok_trie raw_trie;  /* added tokens matched in the raw text */
    tok_trie norm_trie; /* added tokens matched after normalization */

    /* BPE model */
    tok_pairmap merges; /* left << 32 | right -> rank << 32 | merged */
    /* Code-point adjacencies (a << 32 | b) that some merge can join: the last
     * code point of its left part followed by the first of its right part.
     * Between two in-vocabulary code points that are not in this set no
     * merge can ever apply, so BPE splits the text there without changing
     * the result, and works on short pieces. */
    tok_pairmap cross;
    int cut_pieces;   /* use `cross` (off when ignore_merges) */
    int32_t *bmp_id;  /* code point < 0x10000 -> id of its one-character token, or -1 */
    int32_t byte_id[256]; /* id of "<0xXX>", or -1 */
    int32_t unk_id;   /* -1: none (unknown characters are dropped, as HF does) */
    int byte_fallback, fuse_unk, ignore_merges;

    /* normalizer: replacements applied in order */
    tok_replace *norm;
    size_t n_norm;

    /* pre-tokenizer: Split on a literal string (split_len 0: none) */
    char *split;
    size_t split_len;
    int split_behavior;

    /* decoder: per-token steps, then byte fallback, then steps on its output */
    tok_dec_step *dec_pre, *dec_post;
    size_t n_dec_pre, n_dec_post;
    int dec_byte_fallback;
};

/* --- builder (vocab.c) --- */

g4_tokenizer *tok_alloc(void);
/* Sizes the id tables for ids 0..n_ids-1, all without text (the text pool
 * too, unless the loader has filled it already). */
int tok_reserve_ids(g4_tokenizer *t, int32_t n_ids, size_t pool_hint);
/* Extends the id range to 0..n_ids-1 (new ids without text). */
int tok_grow_ids(g4_tokenizer *t, int32_t n_ids);
/* Gives id its text; flags |= TOKF_*. An id may be given text only once. */
int tok_set_text(g4_tokenizer *t, int32_t id, const char *s, size_t n, g4_error *err);
/* Builds the vocabulary index and the one-character and byte tables from
 * the ids flagged TOKF_VOCAB; a text appearing twice is an error. */
int tok_index_vocab(g4_tokenizer *t, g4_error *err);
/* Merges: call begin with the count, then add each with its rank. */
int tok_merges_begin(g4_tokenizer *t, size_t n_merges, g4_error *err);
#define TOK_MERGE_BATCH 64
typedef struct tok_merge_batch {
    char *buf; /* left + right texts, back to back */
    size_t len, cap, n;
    struct {
        size_t off;
        uint32_t ln, rn, rank;
    } item[TOK_MERGE_BATCH];
} tok_merge_batch;
/* Adds a merge by its texts (in batches: errors may surface on a later call
 * or in tok_merges_end, always naming the merge). Start with a zeroed batch. */
int tok_add_merge(g4_tokenizer *t, tok_merge_batch *b, const char *l, size_t ln, const char *r, size_t rn,
                  uint32_t rank, g4_error *err);
/* Resolves the rest of the batch and frees it. */
int tok_merges_end(g4_tokenizer *t, tok_merge_batch *b, g4_error *err);
/* Frees the batch without resolving it (error paths). */
void tok_merges_drop(tok_merge_batch *b);
/* Same, with the parts given by id (-1: out of memory). */
int tok_add_merge_ids(g4_tokenizer *t, int32_t left, int32_t right, int32_t merged, uint32_t rank);
/* Appends an added token (content copied); call after the normalizer is set. */
int tok_add_added(g4_tokenizer *t, int32_t id, const char *content, size_t len, int special, int lstrip,
                  int rstrip, int normalized, g4_error *err);
/* Builds the added-token tries; the last builder step. */
int tok_finish(g4_tokenizer *t, g4_error *err);
int tok_add_replace(tok_replace **list, size_t *n, const char *from, size_t from_len, const char *to,
                    size_t to_len);

/* Applies replacements to s into a malloc'ed buffer (*out, *out_len). */
int tok_apply_replace(const tok_replace *r, const char *s, size_t n, char **out, size_t *out_len);

/* --- encoding (encode.c, bpe.c) --- */

typedef struct tok_sym {
    int32_t id, prev, next; /* id -1: merged into its left neighbour */
} tok_sym;
typedef struct tok_cand {
    uint32_t rank, pos;
    int32_t merged;
} tok_cand;

/* Scratch space of one encode call. */
typedef struct tok_cache_entry tok_cache_entry;
typedef struct tok_work {
    tok_cache_entry *cache; /* NULL: none (short texts) */
    tok_sym *sym;
    size_t n_sym, cap_sym;
    tok_cand *heap;
    size_t n_heap, cap_heap;
    int32_t *out;
    size_t n_out, cap_out;
} tok_work;

int tok_work_push_sym(tok_work *w, int32_t id);
int tok_work_emit(tok_work *w, int32_t id);
/* Runs BPE over w->sym and appends the resulting ids to w->out. */
int tok_bpe(const g4_tokenizer *t, tok_work *w);

/* g4_tok_encode with the piece cache on or off (it is on for texts of
 * 4 KiB and more); for tests. */
int tok_encode_ex(const g4_tokenizer *t, const char *text, size_t len, int parse_special, int use_cache,
                  int32_t **ids, size_t *n, g4_error *err);

/* Rust's char::is_whitespace (Unicode White_Space). */
int tok_is_whitespace(uint32_t cp);

#endif
