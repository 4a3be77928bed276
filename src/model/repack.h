/* Regrouping quantised weight matrices for the 512-bit integer kernels
 * (ops/qdot_x16.h) once, at load. */
#ifndef G4_MODEL_REPACK_H
#define G4_MODEL_REPACK_H

#include "model/config.h"
#include "model/weights.h"
#include "util/error.h"

/* Repacks every eligible matrix product weight into memory of its own (the
 * mapped file's pages are handed back to the kernel as each one is done, so
 * resident memory does not double) and records the buffers in w for
 * g4_weights_free. Embedding rows keep being read from the file; the tied LM
 * head gets its own repacked copy. A no-op on CPUs without the kernels. */
int g4_weights_repack(g4_weights *w, const g4_config *cfg, g4_error *err);

#endif
