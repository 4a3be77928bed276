#include "chat/strbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(g4_strbuf *b, size_t extra) {
    if (b->oom) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) { b->oom = true; return false; }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) { b->oom = true; return false; }
    b->data = p;
    b->cap = cap;
    return true;
}

void g4_strbuf_append(g4_strbuf *b, const char *s, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void g4_strbuf_puts(g4_strbuf *b, const char *s) { g4_strbuf_append(b, s, strlen(s)); }

void g4_strbuf_putc(g4_strbuf *b, char c) { g4_strbuf_append(b, &c, 1); }

void g4_strbuf_consume(g4_strbuf *b, size_t n) {
    if (n >= b->len) { g4_strbuf_clear(b); return; }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void g4_strbuf_clear(g4_strbuf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void g4_strbuf_free(g4_strbuf *b) {
    free(b->data);
    *b = (g4_strbuf){0};
}

char *g4_strbuf_take(g4_strbuf *b) {
    if (!b->data) {
        b->oom = false;
        return calloc(1, 1);
    }
    char *s = b->data;
    *b = (g4_strbuf){0};
    return s;
}
