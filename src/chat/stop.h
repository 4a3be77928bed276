/* User stop strings over streamed text. Text that may be the start of a stop
 * string is held back until it is decided; when a stop string appears, the
 * text before it is released and everything from it on is dropped. The stop
 * string that is complete first wins, so the released text does not depend
 * on how the stream was cut into pieces. */
#ifndef G4_CHAT_STOP_H
#define G4_CHAT_STOP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

typedef struct g4_stop_matcher g4_stop_matcher;

/* Copies the n stop strings (none may be empty). NULL + err on failure. */
g4_stop_matcher *g4_stop_new(const char *const *stops, size_t n, g4_error *err);
void g4_stop_free(g4_stop_matcher *m);

/* Feeds the next piece. *out / *out_len receive the text that is now safe to
 * show (valid until the next call). Returns 1 when a stop string matched
 * (the released text is everything before it; later feeds release nothing),
 * 0 otherwise, -1 when out of memory. */
int g4_stop_feed(g4_stop_matcher *m, const char *piece, size_t len, const char **out, size_t *out_len,
                 g4_error *err);

/* End of the stream: releases the held-back text (nothing after a stop). */
void g4_stop_flush(g4_stop_matcher *m, const char **out, size_t *out_len);

/* The index of the stop string that matched, or -1. */
int g4_stop_which(const g4_stop_matcher *m);

#endif
