/* Command-line parsing shared by the gemma4 commands: strict number parsing
 * (the whole string must be a number in range) and id lists. */
#ifndef G4_CLI_ARGS_H
#define G4_CLI_ARGS_H

#include <stdint.h>

/* Each returns 0 on success; on failure prints "gemma4: OPTION: problem" to
 * stderr and returns -1. */
int arg_int(const char *opt, const char *s, long lo, long hi, int *out);
int arg_u64(const char *opt, const char *s, uint64_t *out);
int arg_float(const char *opt, const char *s, double lo, double hi, float *out);
/* "2,17,301" → malloc'ed array. */
int arg_ids(const char *opt, const char *s, int32_t **ids, int *n);

/* Value of the option at argv[*i] (advancing *i), or NULL after printing an
 * error if it is the last argument. */
const char *arg_value(int argc, char **argv, int *i);

#endif
