#include "chat/output_parser.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chat/strbuf.h"
#include "chat/value_syntax.h"

#define THOUGHT_HEADER "thought\n"
#define BARE_CALL "call:"

typedef enum { S_CONTENT, S_THOUGHT_HEADER, S_THOUGHT, S_CALL, S_DONE } state;

typedef enum {
    M_CHANNEL_OPEN, M_CHANNEL_CLOSE, M_CALL_OPEN, M_CALL_CLOSE, M_TURN_END, M_TOOL_RESPONSE, M_EOS,
    M_COUNT
} marker;

static const char *const marker_text[M_COUNT] = {
    "<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<turn|>", "<|tool_response>", "<eos>",
};

/* Which markers mean something in each state; the rest is plain text. */
static const unsigned state_markers[] = {
    [S_CONTENT] = 1u << M_CHANNEL_OPEN | 1u << M_CHANNEL_CLOSE | 1u << M_CALL_OPEN | 1u << M_CALL_CLOSE |
                  1u << M_TURN_END | 1u << M_TOOL_RESPONSE | 1u << M_EOS,
    [S_THOUGHT] = 1u << M_CHANNEL_CLOSE | 1u << M_CALL_OPEN | 1u << M_TURN_END | 1u << M_TOOL_RESPONSE |
                  1u << M_EOS,
    [S_CALL] = 1u << M_CALL_OPEN | 1u << M_CALL_CLOSE | 1u << M_TURN_END | 1u << M_TOOL_RESPONSE | 1u << M_EOS,
};

struct g4_chat_parser {
    state st;
    g4_strbuf pending;   /* input not yet processed (at most a marker prefix between feeds) */
    g4_strbuf held;      /* CONTENT at a segment start: text that may begin a bare "call:" */
    g4_strbuf call;      /* S_CALL: the call body after <|tool_call> (or from "call:") */
    bool segment_start;  /* CONTENT: a bare call may start here */
    bool call_bare;      /* the call had no <|tool_call> */
    bool bare_name_done; /* a bare call got past "call:NAME{" */
    g4_chat_event_fn fn;
    void *user;
};

static void emit_text(g4_chat_parser *p, g4_chat_event_kind kind, const char *s, size_t n) {
    if (!n) return;
    g4_chat_event ev = {.kind = kind, .text = s, .len = n};
    p->fn(p->user, &ev);
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static bool is_name_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c >= 0x80;
}

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && is_ws(s[i])) i++;
    return i;
}

static void flush_held(g4_chat_parser *p) {
    emit_text(p, G4_CHAT_CONTENT, p->held.data, p->held.len);
    g4_strbuf_clear(&p->held);
    p->segment_start = false;
}

static void start_call(g4_chat_parser *p, bool bare) {
    p->st = S_CALL;
    p->call_bare = bare;
    p->bare_name_done = false;
    g4_strbuf_clear(&p->call);
}

/* Call body text. A bare call that can no longer be "call:NAME{" is given up
 * as content just before the first byte that rules it out; that byte and the
 * rest are left for the caller to scan again as content (so a marker there
 * still counts). Returns the bytes used. */
static size_t call_text(g4_chat_parser *p, const char *s, size_t n) {
    if (!p->call_bare || p->bare_name_done) {
        g4_strbuf_append(&p->call, s, n);
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool has_name = p->call.len > sizeof BARE_CALL - 1;
        if (c == '{' && has_name) {
            p->bare_name_done = true;
            g4_strbuf_append(&p->call, s + i, n - i);
            return n;
        }
        if (!is_name_char(c)) {
            emit_text(p, G4_CHAT_CONTENT, p->call.data, p->call.len);
            g4_strbuf_clear(&p->call);
            p->st = S_CONTENT;
            p->segment_start = false;
            return i;
        }
        g4_strbuf_putc(&p->call, s[i]);
    }
    return n;
}

/* Content text. At a segment start it is held, byte by byte, while it may
 * still be the start of a bare "call:"; once that is decided either the held
 * text is released as content or the parser switches to a bare call (and the
 * bytes after "call:" are left for the caller). Returns the bytes used. */
static size_t content_text(g4_chat_parser *p, const char *s, size_t n) {
    if (!p->segment_start) {
        emit_text(p, G4_CHAT_CONTENT, s, n);
        return n;
    }
    const size_t want = sizeof BARE_CALL - 1;
    for (size_t i = 0; i < n; i++) {
        g4_strbuf_putc(&p->held, s[i]);
        size_t ws = skip_ws(p->held.data, p->held.len, 0);
        size_t rest = p->held.len - ws;
        if (memcmp(p->held.data + ws, BARE_CALL, rest < want ? rest : want) != 0) {
            flush_held(p);
            emit_text(p, G4_CHAT_CONTENT, s + i + 1, n - i - 1);
            return n;
        }
        if (rest == want) {
            emit_text(p, G4_CHAT_CONTENT, p->held.data, ws);
            start_call(p, true);
            g4_strbuf_append(&p->call, BARE_CALL, want);
            g4_strbuf_clear(&p->held);
            p->segment_start = false;
            return i + 1;
        }
    }
    return n;
}

/* Routes text by state; returns the bytes used, fewer than n only when the
 * state changed inside the text (the rest must be scanned again). */
static size_t text(g4_chat_parser *p, const char *s, size_t n) {
    switch (p->st) {
    case S_CONTENT: return content_text(p, s, n);
    case S_THOUGHT: emit_text(p, G4_CHAT_THOUGHT, s, n); return n;
    case S_CALL: return call_text(p, s, n);
    default: return n;
    }
}

/* Parses "call:NAME{ARGS}" at body[0..n): the name, the arguments and where
 * the text after the closing brace starts. */
static bool parse_call(const char *body, size_t n, char **name, json_t **args, size_t *rest) {
    size_t i = skip_ws(body, n, 0);
    if (n - i < sizeof BARE_CALL - 1 || memcmp(body + i, BARE_CALL, sizeof BARE_CALL - 1) != 0) return false;
    i += sizeof BARE_CALL - 1;
    size_t name_start = i;
    while (i < n && is_name_char((unsigned char)body[i])) i++;
    if (i == name_start || i >= n || body[i] != '{') return false;
    size_t used = 0;
    json_t *v = g4_value_parse(body + i, n - i, &used, NULL);
    if (!json_is_object(v)) {
        json_decref(v);
        return false;
    }
    *name = strndup(body + name_start, i - name_start);
    if (!*name) {
        json_decref(v);
        return false;
    }
    *args = v;
    *rest = i + used;
    return true;
}

/* Ends the current call: closed by <tool_call|>, or cut off by `ended_by`
 * (an end marker, a new <|tool_call>, or NULL at the end of the stream). */
static void finish_call(g4_chat_parser *p, bool closed, marker ended_by) {
    char *name = NULL;
    json_t *args = NULL;
    size_t rest = 0;
    const char *body = p->call.data ? p->call.data : "";
    bool parsed = parse_call(body, p->call.len, &name, &args, &rest);
    /* A bare call counts only when something says a call was meant. */
    bool accept = parsed && (closed || !p->call_bare || ended_by == M_TOOL_RESPONSE);
    if (accept) {
        g4_strbuf json = {0};
        g4_json_append(&json, args);
        g4_chat_event ev = {.kind = G4_CHAT_TOOL_CALL, .name = name, .arguments = json.data ? json.data : "{}"};
        if (!json.oom) p->fn(p->user, &ev);
        g4_strbuf_free(&json);
        emit_text(p, G4_CHAT_CONTENT, body + rest, p->call.len - rest);
    } else {
        if (!p->call_bare) emit_text(p, G4_CHAT_CONTENT, marker_text[M_CALL_OPEN], strlen(marker_text[M_CALL_OPEN]));
        emit_text(p, G4_CHAT_CONTENT, body, p->call.len);
        if (closed) emit_text(p, G4_CHAT_CONTENT, marker_text[M_CALL_CLOSE], strlen(marker_text[M_CALL_CLOSE]));
    }
    free(name);
    json_decref(args);
    g4_strbuf_clear(&p->call);
    p->st = S_CONTENT;
    p->segment_start = true;
}

static void end(g4_chat_parser *p, marker m) {
    g4_chat_event ev = {.kind = G4_CHAT_END, .text = marker_text[m], .len = strlen(marker_text[m])};
    p->fn(p->user, &ev);
    p->st = S_DONE;
}

static void on_marker(g4_chat_parser *p, marker m) {
    if (p->st == S_CONTENT && m != M_CALL_CLOSE) flush_held(p);
    switch (m) {
    case M_CHANNEL_OPEN: /* only in CONTENT */
        p->st = S_THOUGHT_HEADER;
        break;
    case M_CHANNEL_CLOSE: /* ends a thought; a stray one in content is dropped */
        p->st = S_CONTENT;
        p->segment_start = true;
        break;
    case M_CALL_OPEN:
        if (p->st == S_CALL) finish_call(p, false, M_CALL_OPEN);
        start_call(p, false);
        break;
    case M_CALL_CLOSE:
        if (p->st == S_CALL) {
            finish_call(p, true, M_CALL_CLOSE);
        } else { /* a stray close in content is kept as text */
            content_text(p, marker_text[m], strlen(marker_text[m]));
        }
        break;
    case M_TURN_END:
    case M_TOOL_RESPONSE:
    case M_EOS:
        if (p->st == S_CALL) finish_call(p, false, m);
        end(p, m);
        break;
    case M_COUNT: break;
    }
}

/* Earliest full marker of the state in s[0..n), or M_COUNT. */
static marker find_marker(unsigned set, const char *s, size_t n, size_t *at) {
    for (const char *lt = memchr(s, '<', n); lt; lt = memchr(lt + 1, '<', n - (size_t)(lt + 1 - s))) {
        size_t left = n - (size_t)(lt - s);
        for (int m = 0; m < M_COUNT; m++) {
            size_t len = strlen(marker_text[m]);
            if ((set >> m & 1u) && left >= len && memcmp(lt, marker_text[m], len) == 0) {
                *at = (size_t)(lt - s);
                return (marker)m;
            }
        }
        if (left <= 1) break;
    }
    return M_COUNT;
}

/* Length of the longest tail of s[0..n) that is a proper prefix of a marker. */
static size_t partial_marker(unsigned set, const char *s, size_t n) {
    size_t from = n > 15 ? n - 15 : 0; /* the longest marker is 16 bytes */
    for (size_t j = from; j < n; j++) {
        if (s[j] != '<') continue;
        for (int m = 0; m < M_COUNT; m++) {
            size_t len = strlen(marker_text[m]);
            if ((set >> m & 1u) && n - j < len && memcmp(s + j, marker_text[m], n - j) == 0) return n - j;
        }
    }
    return 0;
}

static void process(g4_chat_parser *p, bool final) {
    while (p->pending.len && p->st != S_DONE) {
        const char *s = p->pending.data;
        size_t n = p->pending.len;
        if (p->st == S_THOUGHT_HEADER) {
            size_t hl = sizeof THOUGHT_HEADER - 1;
            size_t cmp = n < hl ? n : hl;
            if (memcmp(s, THOUGHT_HEADER, cmp) == 0 && n < hl && !final) return; /* undecided */
            if (memcmp(s, THOUGHT_HEADER, cmp) == 0) g4_strbuf_consume(&p->pending, cmp);
            else if (n >= hl - 1 && memcmp(s, THOUGHT_HEADER, hl - 1) == 0) g4_strbuf_consume(&p->pending, hl - 1);
            p->st = S_THOUGHT;
            continue;
        }
        unsigned set = state_markers[p->st];
        size_t at = 0;
        marker m = find_marker(set, s, n, &at);
        if (m != M_COUNT) {
            state before = p->st;
            size_t used = text(p, s, at);
            if (used < at || p->st != before) { /* the state changed: scan again */
                g4_strbuf_consume(&p->pending, used);
                continue;
            }
            g4_strbuf_consume(&p->pending, at + strlen(marker_text[m]));
            on_marker(p, m);
            continue;
        }
        size_t keep = final ? 0 : partial_marker(set, s, n);
        size_t used = text(p, s, n - keep);
        g4_strbuf_consume(&p->pending, used);
        if (used < n - keep) continue;
        return;
    }
}

g4_chat_parser *g4_chat_parser_new(const g4_chat_parser_options *opt, g4_chat_event_fn on_event, void *user) {
    g4_chat_parser *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->fn = on_event;
    p->user = user;
    p->st = opt && opt->start_in_thought ? S_THOUGHT : S_CONTENT;
    p->segment_start = true;
    return p;
}

void g4_chat_parser_free(g4_chat_parser *p) {
    if (!p) return;
    g4_strbuf_free(&p->pending);
    g4_strbuf_free(&p->held);
    g4_strbuf_free(&p->call);
    free(p);
}

static int check_memory(g4_chat_parser *p, g4_error *err) {
    if (p->pending.oom || p->held.oom || p->call.oom) return g4_fail(err, "chat parser: out of memory");
    return 0;
}

int g4_chat_parser_feed(g4_chat_parser *p, const char *piece, size_t len, g4_error *err) {
    if (p->st == S_DONE) return 0;
    g4_strbuf_append(&p->pending, piece, len);
    process(p, false);
    return check_memory(p, err);
}

int g4_chat_parser_finish(g4_chat_parser *p, g4_error *err) {
    process(p, true);
    if (p->st == S_CONTENT) flush_held(p);
    if (p->st == S_CALL) finish_call(p, false, M_COUNT);
    if (p->st == S_THOUGHT_HEADER) p->st = S_THOUGHT;
    return check_memory(p, err);
}

bool g4_chat_parser_done(const g4_chat_parser *p) { return p->st == S_DONE; }
