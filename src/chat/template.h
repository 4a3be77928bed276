/* The Gemma 4 chat format: renders an OpenAI-style conversation into the prompt
 * string exactly as the official July 2026 chat template does (HF
 * google/gemma-4-*-it chat_template.jinja, commit 68abe48, "#118: null
 * handling, reasoning preservation, turn-tag balance, input validation"; the
 * text we verify against is tests/data/chat/gemma4_chat_template.jinja).
 *
 * Special tokens are written as their text (<bos>, <|turn>, <|"|>, ...); the
 * tokenizer turns them into ids. */
#ifndef G4_CHAT_TEMPLATE_H
#define G4_CHAT_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"

typedef struct g4_chat_options {
    bool enable_thinking;       /* <|think|> in the system turn */
    bool preserve_thinking;     /* keep reasoning of tool-calling turns before the last user turn */
    bool add_generation_prompt; /* open the model turn at the end */
    /* 12B / 26B-A4B / 31B flavour: with thinking off the generation prompt
     * pre-fills the empty thought block <|channel>thought\n<channel|>.
     * E2B / E4B: false. */
    bool empty_thought_prefill;
    const char *bos;            /* the BOS text; NULL means "<bos>" */
} g4_chat_options;

/* Renders messages (a JSON array of OpenAI-style messages: role system,
 * developer, user, assistant or tool; content a string or a list of parts;
 * assistant tool_calls with object arguments, reasoning / reasoning_content,
 * Google-native tool_responses) and tools (NULL or a JSON array of
 * {"type":"function","function":{name, description, parameters, response}}).
 *
 * On success *out is a malloc'd NUL-terminated prompt and 0 is returned. On
 * failure returns -1 with a one-line message in err and *out untouched; the
 * template's own refusals give the template's message, e.g. string
 * tool-call arguments. opt may be NULL (all false, "<bos>"). */
int g4_chat_render(const json_t *messages, const json_t *tools, const g4_chat_options *opt,
                   char **out, g4_error *err);

#endif
