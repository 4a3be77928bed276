/* One .safetensors file, memory-mapped read-only. Tensor views point straight
 * into the map (nothing is copied), so they stay valid until st_close.
 *
 * Layout of the format: an 8-byte little-endian header length N, N bytes of
 * JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {str: str}}, then the data section that the offsets are
 * relative to. Every field is validated, since files come from users. */
#ifndef G4_IO_SAFETENSORS_H
#define G4_IO_SAFETENSORS_H

#include <stddef.h>

#include "ops/tensor.h"
#include "util/error.h"

typedef struct st_file st_file;

/* Headers beyond this are refused rather than parsed: real checkpoints need a
 * few MiB at most, and jansson holds the whole document in memory. */
#define ST_MAX_HEADER_BYTES ((size_t)100 << 20)

/* Returns 0 and *out, or -1 with a one-line message naming the file. */
int st_open(const char *path, st_file **out, g4_error *err);
void st_close(st_file *f);

/* Tensors are numbered in data-offset order (the order of the bytes in the
 * file, so walking them reads the map front to back). */
size_t st_count(const st_file *f);
const g4_tensor *st_tensor(const st_file *f, size_t i);
/* NULL if no tensor has that name. O(log n). */
const g4_tensor *st_find(const st_file *f, const char *name);

/* A value of the optional "__metadata__" string map; NULL if absent. */
const char *st_metadata(const st_file *f, const char *key);

#endif
