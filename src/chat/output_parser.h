/* Incremental parsing of Gemma 4 model output, fed as decoded text pieces
 * (special tokens visible) while they stream in:
 *
 *   <|channel>thought\n ... <channel|>          a thought
 *   <|tool_call>call:NAME{ARGS}<tool_call|>     a tool call, ARGS in value syntax
 *   <turn|> | <|tool_response> | <eos>          the end of the answer
 *   anything else                               visible content
 *
 * Events come out in order through a callback. A possible marker split across
 * pieces is held back until it is decided, so feeding a text whole or one
 * byte at a time gives the same events (up to how text events are split).
 *
 * Tolerated slips, none of which loses text: a call written as bare
 * "call:NAME{...}" (no <|tool_call>) at the start of the answer or right after
 * a thought; a stray <channel|> (dropped, content goes on); <|tool_call>
 * inside a thought (ends the thought); text after a call's closing brace
 * (content); a call left unterminated at the end (parsed if complete, else
 * content). Anything that does not parse is reported as content, markers
 * included. After an end marker the parser is done and ignores input. */
#ifndef G4_CHAT_OUTPUT_PARSER_H
#define G4_CHAT_OUTPUT_PARSER_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

typedef enum g4_chat_event_kind {
    G4_CHAT_CONTENT,   /* visible text: text, len */
    G4_CHAT_THOUGHT,   /* reasoning text: text, len (without "thought\n") */
    G4_CHAT_TOOL_CALL, /* a complete call: name, arguments (compact JSON object) */
    G4_CHAT_END,       /* the end marker seen: text = "<turn|>", "<|tool_response>" or "<eos>" */
} g4_chat_event_kind;

typedef struct g4_chat_event {
    g4_chat_event_kind kind;
    const char *text;      /* CONTENT, THOUGHT, END; not NUL-terminated for text events */
    size_t len;
    const char *name;      /* TOOL_CALL, NUL-terminated */
    const char *arguments; /* TOOL_CALL, NUL-terminated JSON object */
} g4_chat_event;

/* Called for each event; the pointers are valid only during the call. */
typedef void (*g4_chat_event_fn)(void *user, const g4_chat_event *ev);

typedef struct g4_chat_parser_options {
    /* The prompt ended with <|channel>thought\n (thinking on, after a tool
     * response): generation starts inside a thought. */
    bool start_in_thought;
} g4_chat_parser_options;

typedef struct g4_chat_parser g4_chat_parser;

/* opt may be NULL. Returns NULL when out of memory. */
g4_chat_parser *g4_chat_parser_new(const g4_chat_parser_options *opt, g4_chat_event_fn on_event, void *user);
void g4_chat_parser_free(g4_chat_parser *p);

/* Feeds the next piece of decoded output. Returns 0, or -1 (out of memory). */
int g4_chat_parser_feed(g4_chat_parser *p, const char *piece, size_t len, g4_error *err);

/* End of the stream without an end marker (e.g. max tokens): flushes held
 * text and any unterminated call. Returns 0 or -1. */
int g4_chat_parser_finish(g4_chat_parser *p, g4_error *err);

/* Whether an end marker has been seen. */
bool g4_chat_parser_done(const g4_chat_parser *p);

#endif
