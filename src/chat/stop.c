#include "chat/stop.h"

#include <stdlib.h>
#include <string.h>

#include "chat/strbuf.h"

struct g4_stop_matcher {
    char **stops;
    size_t *lens;
    size_t n;
    g4_strbuf held;   /* text received but not yet released */
    g4_strbuf out;    /* text released by the last call */
    int matched;      /* index of the stop string seen, -1 before */
};

g4_stop_matcher *g4_stop_new(const char *const *stops, size_t n, g4_error *err) {
    g4_stop_matcher *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->matched = -1;
    m->stops = calloc(n ? n : 1, sizeof *m->stops);
    m->lens = calloc(n ? n : 1, sizeof *m->lens);
    if (!m->stops || !m->lens) goto oom;
    for (size_t i = 0; i < n; i++) {
        if (!stops[i] || !stops[i][0]) {
            g4_stop_free(m);
            g4_fail(err, "stop string %zu is empty", i);
            return NULL;
        }
        m->stops[i] = strdup(stops[i]);
        if (!m->stops[i]) goto oom;
        m->lens[i] = strlen(stops[i]);
        m->n = i + 1;
    }
    m->n = n;
    return m;
oom:
    g4_stop_free(m);
    g4_fail(err, "out of memory");
    return NULL;
}

void g4_stop_free(g4_stop_matcher *m) {
    if (!m) return;
    for (size_t i = 0; m->stops && i < m->n; i++) free(m->stops[i]);
    free(m->stops);
    free(m->lens);
    g4_strbuf_free(&m->held);
    g4_strbuf_free(&m->out);
    free(m);
}

/* The stop string that is complete first in s[0..n) (earliest end; on a tie
 * the longer one, which starts earlier). Ending first, not starting first,
 * makes the result the same however the text was split into pieces. */
static bool find_stop(const g4_stop_matcher *m, const char *s, size_t n, size_t *at, int *which) {
    bool found = false;
    for (size_t i = 0; i < m->n; i++) {
        const char *hit = memmem(s, n, m->stops[i], m->lens[i]);
        if (!hit) continue;
        size_t pos = (size_t)(hit - s), end = pos + m->lens[i];
        size_t best_end = found ? *at + m->lens[*which] : 0;
        if (!found || end < best_end || (end == best_end && m->lens[i] > m->lens[*which])) {
            *at = pos;
            *which = (int)i;
            found = true;
        }
    }
    return found;
}

/* Length of the longest tail of s[0..n) that is a proper prefix of a stop string. */
static size_t partial_stop(const g4_stop_matcher *m, const char *s, size_t n) {
    size_t best = 0;
    for (size_t i = 0; i < m->n; i++) {
        size_t max = m->lens[i] - 1 < n ? m->lens[i] - 1 : n;
        for (size_t k = max; k > best; k--) {
            if (memcmp(s + n - k, m->stops[i], k) == 0) {
                best = k;
                break;
            }
        }
    }
    return best;
}

static void release(g4_stop_matcher *m, size_t n, const char **out, size_t *out_len) {
    g4_strbuf_clear(&m->out);
    g4_strbuf_append(&m->out, m->held.data, n);
    g4_strbuf_consume(&m->held, n);
    *out = m->out.data ? m->out.data : "";
    *out_len = m->out.len;
}

int g4_stop_feed(g4_stop_matcher *m, const char *piece, size_t len, const char **out, size_t *out_len,
                 g4_error *err) {
    *out = "";
    *out_len = 0;
    if (m->matched >= 0) return 1;
    g4_strbuf_append(&m->held, piece, len);
    if (m->held.oom) return g4_fail(err, "out of memory");
    size_t at = 0;
    int which = -1;
    if (find_stop(m, m->held.data, m->held.len, &at, &which)) {
        m->matched = which;
        release(m, at, out, out_len);
        g4_strbuf_clear(&m->held);
        return m->out.oom ? g4_fail(err, "out of memory") : 1;
    }
    size_t keep = partial_stop(m, m->held.data, m->held.len);
    release(m, m->held.len - keep, out, out_len);
    return m->out.oom ? g4_fail(err, "out of memory") : 0;
}

void g4_stop_flush(g4_stop_matcher *m, const char **out, size_t *out_len) {
    release(m, m->matched >= 0 ? 0 : m->held.len, out, out_len);
    g4_strbuf_clear(&m->held);
}

int g4_stop_which(const g4_stop_matcher *m) { return m->matched; }
