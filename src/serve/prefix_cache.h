/* Which tokens each KV-cache sequence holds, and prefix reuse: a new prompt
 * continues the sequence that already holds its longest prefix.
 *
 * Sequences 0 .. n_running-1 run requests and keep their tokens when the
 * request ends (a conversation's next turn continues them). Sequences
 * n_running .. n_seq-1 are snapshots copied at prompt boundaries (the end of
 * the first turn, the end of a prompt): a sequence that generated past a
 * shared prefix cannot always be cut back to it, since sliding-window layers
 * keep only their window (gemma4_seq_truncate), but a snapshot can be copied. */
#ifndef G4_SERVE_PREFIX_CACHE_H
#define G4_SERVE_PREFIX_CACHE_H

#include "gemma4.h"

#include <stdint.h>

typedef struct cached_tokens {
    int32_t *ids;
    int n, cap;
    uint64_t last_use;
} cached_tokens;

typedef struct prefix_cache {
    gemma4_context *ctx;
    int n_running, n_snapshots;
    cached_tokens *seq; /* [n_running + n_snapshots] */
    uint64_t clock;
} prefix_cache;

int prefix_cache_init(prefix_cache *pc, gemma4_context *ctx, int n_running, int n_snapshots);
void prefix_cache_free(prefix_cache *pc);

/* Prepares an idle running sequence (busy[i] == 0) for prompt: the longest
 * reusable cached prefix is kept (at most n - 1 tokens, so the last one is
 * evaluated for its logits), the rest dropped. *slot: the sequence;
 * *n_cached: prompt tokens it already holds. -1 (library error) or 0. */
int prefix_cache_assign(prefix_cache *pc, const uint8_t *busy, const int32_t *prompt, int n, int *slot, int *n_cached);

/* Tokens were decoded into running sequence slot. */
int prefix_cache_append(prefix_cache *pc, int slot, const int32_t *ids, int n);
/* Snapshots running sequence slot as it is now, unless a snapshot with the
 * same tokens exists (then that one is marked as recently used). */
int prefix_cache_snapshot(prefix_cache *pc, int slot);
/* Forgets what slot holds (after a failed decode). */
void prefix_cache_forget(prefix_cache *pc, int slot);
/* Positions held by all sequences. */
uint64_t prefix_cache_tokens(const prefix_cache *pc);

#endif
