/* Pieces of the chat template shared between template.c (turns) and
 * declaration.c (tool declarations). */
#ifndef G4_CHAT_TEMPLATE_INTERNAL_H
#define G4_CHAT_TEMPLATE_INTERNAL_H

#include <jansson.h>

#include "chat/strbuf.h"
#include "util/error.h"

/* obj[key] as Jinja sees it: NULL (undefined) unless obj is an object that
 * has the key. A present JSON null is returned as the null value. */
const json_t *g4_tpl_get(const json_t *obj, const char *key);

/* The template's format_function_declaration(tool), without the surrounding
 * <|tool>...<tool|>. tool_index is for error messages. */
int g4_tpl_declaration(g4_strbuf *out, const json_t *tool, size_t tool_index, g4_error *err);

#endif
