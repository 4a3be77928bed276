/* Library-wide error reporting: every function that can fail takes a g4_error
 * and returns a status; the message is printed once by the front end. */
#ifndef G4_UTIL_ERROR_H
#define G4_UTIL_ERROR_H

#include <stddef.h>

typedef struct g4_error {
    char msg[512];
} g4_error;

/* Formats msg into err (if non-NULL) and returns -1, so callers can write
 * `return g4_fail(err, "...", ...);`. */
int g4_fail(g4_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
