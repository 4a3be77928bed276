/* A growable byte string for building prompts and parser output.
 * Allocation failure is sticky: the buffer remembers it and every later
 * append is a no-op, so callers check `oom` once at the end. */
#ifndef G4_CHAT_STRBUF_H
#define G4_CHAT_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct g4_strbuf {
    char *data;     /* NUL-terminated while non-NULL */
    size_t len;     /* bytes used, excluding the NUL */
    size_t cap;     /* bytes allocated */
    bool oom;       /* an allocation failed */
} g4_strbuf;

void g4_strbuf_append(g4_strbuf *b, const char *s, size_t n);
void g4_strbuf_puts(g4_strbuf *b, const char *s);
void g4_strbuf_putc(g4_strbuf *b, char c);
/* Drops the first n bytes (n <= len). */
void g4_strbuf_consume(g4_strbuf *b, size_t n);
void g4_strbuf_clear(g4_strbuf *b);
void g4_strbuf_free(g4_strbuf *b);
/* Hands the string to the caller ("" when empty); the buffer is left empty. */
char *g4_strbuf_take(g4_strbuf *b);

#endif
