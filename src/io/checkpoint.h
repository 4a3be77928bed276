/* A Hugging Face checkpoint directory as users download it: either one
 * model.safetensors, or shards model-0000N-of-0000M.safetensors listed in
 * model.safetensors.index.json ("weight_map": tensor name -> shard file).
 * All shards are mapped at open; tensor views point into those maps and stay
 * valid until ckpt_close. */
#ifndef G4_IO_CHECKPOINT_H
#define G4_IO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "ops/tensor.h"
#include "util/error.h"

typedef struct g4_checkpoint g4_checkpoint;

/* Returns 0 and *out, or -1 with a one-line message. With an index, every
 * shard it names must open and every tensor must be in the shard it names;
 * a tensor name found in two shards is an error either way. */
int ckpt_open(const char *dir, g4_checkpoint **out, g4_error *err);
void ckpt_close(g4_checkpoint *c);

/* NULL if absent. O(log n) over all shards. */
const g4_tensor *ckpt_find(const g4_checkpoint *c, const char *name);
/* Tensors shard by shard (in shard-name order), each in file order. */
size_t ckpt_count(const g4_checkpoint *c);
const g4_tensor *ckpt_tensor(const g4_checkpoint *c, size_t i);
/* Sum of every tensor's nbytes: what the weights occupy in memory. */
uint64_t ckpt_total_bytes(const g4_checkpoint *c);

#endif
