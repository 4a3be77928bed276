/* gemma4 chat: an interactive conversation in the terminal. The history is
 * re-rendered with the chat template every turn; when the new prompt
 * extends the text the KV cache holds (the usual case), only the new turn's
 * tokens are evaluated. Thoughts are kept out of the history, as the
 * template requires. Ctrl-C ends the current answer; EOF or /quit ends the
 * program. */
#include "cli/args.h"
#include "cli/common.h"
#include "cli/textgen.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void) {
    printf("usage: gemma4 chat -m MODEL [--system TEXT] [--think] [-n N] [sampling options]\n\n"
           "An interactive chat. A line ending in \\ continues on the next line; a line starting with\n"
           "\"\"\" opens a block that a line ending with \"\"\" closes. Ctrl-C stops the current answer;\n"
           "Ctrl-D (end of input) or /quit leaves. Commands: /help in the chat.\n\n" MODEL_OPTS_HELP
           "      --system TEXT    a system prompt\n"
           "      --think          start with thinking mode on\n" GEN_OPTS_HELP);
}

static const char commands_help[] =
    "  /think on|off   thinking mode (the model reasons before answering)\n"
    "  /system TEXT    set the system prompt (/system alone removes it)\n"
    "  /reset          forget the conversation\n"
    "  /save FILE      write the conversation as OpenAI-style JSON messages\n"
    "  /help           this list\n"
    "  /quit           leave (also /exit, or Ctrl-D)\n";

typedef struct chat {
    session s;
    gen_opts go;
    json_t *history; /* user and assistant messages */
    char *system;    /* NULL: no system prompt */
    int think, tty_in, tty_err, n_calls;
} chat;

/* ---- input ---- */

enum { READ_EOF = 0, READ_OK = 1, READ_INTERRUPTED = 2 };

static int read_line(chat *c, const char *prompt, char **line, size_t *cap, size_t *len) {
    if (c->tty_in) { fputs(prompt, stdout); fflush(stdout); }
    errno = 0;
    ssize_t n = getline(line, cap, stdin);
    if (n < 0) {
        int interrupted = gen_interrupted || errno == EINTR;
        clearerr(stdin);
        gen_interrupted = 0;
        return interrupted ? READ_INTERRUPTED : READ_EOF;
    }
    if (n && (*line)[n - 1] == '\n') (*line)[--n] = 0;
    if (n && (*line)[n - 1] == '\r') (*line)[--n] = 0;
    *len = (size_t)n;
    return READ_OK;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

/* One message: a line, lines joined by a trailing backslash, or a """ block. */
static int read_message(chat *c, text_buf *msg) {
    char *line = NULL;
    size_t cap = 0, len;
    msg->n = 0;
    text_append(msg, "", 0);
    int r = read_line(c, "> ", &line, &cap, &len);
    if (r == READ_OK && len >= 3 && !memcmp(line, "\"\"\"", 3)) { /* a block */
        size_t first = len - 3;
        int closed = first >= 3 && ends_with(line + 3, first, "\"\"\""), started = first > 0;
        text_append(msg, line + 3, closed ? first - 3 : first);
        while (!closed && (r = read_line(c, "... ", &line, &cap, &len)) == READ_OK) {
            closed = ends_with(line, len, "\"\"\"");
            size_t k = closed ? len - 3 : len;
            if (closed && !k) break; /* a closing line of its own */
            if (started) text_append(msg, "\n", 1);
            text_append(msg, line, k);
            started = 1;
        }
        if (r == READ_EOF && msg->n) r = READ_OK;
    } else {
        while (r == READ_OK && len && line[len - 1] == '\\') {
            text_append(msg, line, len - 1);
            text_append(msg, "\n", 1);
            r = read_line(c, "... ", &line, &cap, &len);
            if (r == READ_EOF) { r = READ_OK; len = 0; break; }
        }
        if (r == READ_OK) text_append(msg, line, len);
    }
    free(line);
    return r;
}

/* ---- the conversation ---- */

static json_t *messages(const chat *c) {
    json_t *m = json_array();
    if (c->system) json_array_append_new(m, json_pack("{s:s, s:s}", "role", "system", "content", c->system));
    json_array_extend(m, c->history);
    return m;
}

static int save(const chat *c, const char *path) {
    json_t *m = messages(c);
    int rc = json_dump_file(m, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (rc) fprintf(stderr, "gemma4: cannot write %s\n", path);
    else printf("saved %zu messages to %s\n", json_array_size(m), path);
    json_decref(m);
    return rc;
}

/* The assistant message for the history: content, reasoning_content (the
 * template leaves it out once a user message follows), tool calls. */
static json_t *assistant_message(chat *c, const answer *a) {
    json_t *m = json_pack("{s:s, s:s%}", "role", "assistant", "content", a->content.p ? a->content.p : "", a->content.n);
    if (m && a->reasoning.n) json_object_set_new(m, "reasoning_content", json_stringn(a->reasoning.p, a->reasoning.n));
    if (m && json_array_size(a->tool_calls)) {
        json_t *calls = json_array();
        size_t i;
        json_t *call;
        json_array_foreach(a->tool_calls, i, call) {
            char id[32];
            snprintf(id, sizeof id, "call_%d", ++c->n_calls);
            json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:O, s:O}}", "id", id, "type", "function", "function",
                                                   "name", json_object_get(call, "name"), "arguments",
                                                   json_object_get(call, "arguments")));
        }
        json_object_set_new(m, "tool_calls", calls);
    }
    return m;
}

static void stats(const chat *c, const answer *a) {
    const char *dim = c->tty_err ? "\033[2m" : "", *reset = c->tty_err ? "\033[0m" : "";
    if (!strcmp(a->finish, "interrupted"))
        fprintf(stderr, "%s[interrupted after %d tokens]%s\n", dim, a->n_generated, reset);
    else
        fprintf(stderr, "%s[%d tokens, %.1f tok/s; prompt %d tokens, %d cached; %s]%s\n", dim, a->n_generated,
                a->gen_s > 0 ? a->n_generated / a->gen_s : 0.0, a->n_prompt, a->n_prompt_cached, a->finish, reset);
}

static void turn(chat *c, const char *text) {
    json_t *user = json_pack("{s:s, s:s}", "role", "user", "content", text);
    if (!user) { fprintf(stderr, "gemma4: the message is not valid UTF-8\n"); return; }
    json_array_append_new(c->history, user);
    json_t *m = messages(c);
    char *msgs = json_dumps(m, JSON_COMPACT), *prompt = NULL;
    json_decref(m);
    gemma4_chat_params cp = gemma4_chat_default_params();
    cp.enable_thinking = c->think;
    answer a = {0};
    display d;
    display_init(&d, stdout);
    gen_interrupted = 0;
    int ok = msgs && !gemma4_chat_render(c->s.model, msgs, NULL, &cp, &prompt);
    if (!ok) fprintf(stderr, "gemma4: %s\n", msgs ? gemma4_last_error() : "out of memory");
    ok = ok && !session_answer(&c->s, prompt, NULL, &c->go, display_event, &d, &gen_interrupted, &a);
    display_end(&d);
    if (ok && (a.n_generated || strcmp(a.finish, "interrupted"))) {
        json_array_append_new(c->history, assistant_message(c, &a));
        stats(c, &a);
    } else { /* nothing came back: forget the question */
        json_array_remove(c->history, json_array_size(c->history) - 1);
        if (ok) stats(c, &a);
    }
    gen_interrupted = 0;
    answer_free(&a);
    gemma4_free(prompt);
    free(msgs);
}

/* A /command; returns 1 to quit. */
static int command(chat *c, const char *line) {
    const char *arg = line;
    while (*arg && !isspace((unsigned char)*arg)) arg++;
    size_t name_len = (size_t)(arg - line);
    while (isspace((unsigned char)*arg)) arg++;
#define IS(name) (name_len == strlen(name) && !memcmp(line, name, name_len))
    if (IS("/quit") || IS("/exit")) return 1;
    if (IS("/help")) { fputs(commands_help, stdout); }
    else if (IS("/think")) {
        if (!strcmp(arg, "on")) c->think = 1;
        else if (!strcmp(arg, "off")) c->think = 0;
        else if (*arg) { printf("usage: /think on|off\n"); return 0; }
        printf("thinking %s\n", c->think ? "on" : "off");
    } else if (IS("/system")) {
        free(c->system);
        c->system = *arg ? strdup(arg) : NULL;
        printf(*arg ? "system prompt set\n" : "system prompt removed\n");
    } else if (IS("/reset")) {
        json_array_clear(c->history);
        session_reset(&c->s);
        printf("conversation cleared\n");
    } else if (IS("/save")) {
        if (*arg) save(c, arg);
        else printf("usage: /save FILE\n");
    } else {
        printf("unknown command %.*s (/help lists them)\n", (int)name_len, line);
    }
#undef IS
    return 0;
}

int cmd_chat(int argc, char **argv) {
    model_opts mo;
    chat c;
    memset(&c, 0, sizeof c);
    model_opts_init(&mo);
    gen_opts_init(&c.go);
    const char *system = NULL, *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        int r = model_opts_parse(&mo, argc, argv, &i);
        if (!r) r = gen_opts_parse(&c.go, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "--think")) { c.think = 1; continue; }
        if (!strcmp(a, "--system")) { if (!(v = arg_value(argc, argv, &i))) return 2; system = v; continue; }
        fprintf(stderr, "gemma4 chat: unknown option %s\n", a);
        return 2;
    }
    if (!mo.model_path) { fprintf(stderr, "gemma4 chat: no model given (-m PATH)\n"); return 2; }
    if (session_open(&c.s, &mo, &c.go)) return 1;
    c.history = json_array();
    c.system = system ? strdup(system) : NULL;
    c.tty_in = isatty(0);
    c.tty_err = isatty(2);
    gen_catch_sigint();
    if (c.tty_in) printf("gemma4 chat: %s (/help for commands, Ctrl-C stops an answer, /quit leaves)\n", mo.model_path);
    text_buf msg = {0};
    for (;;) {
        int r = read_message(&c, &msg);
        if (r == READ_EOF) break;
        if (r == READ_INTERRUPTED) { putchar('\n'); continue; }
        const char *p = msg.p;
        while (isspace((unsigned char)*p)) p++;
        if (!*p) continue;
        if (*p == '/' && msg.p[0] == '/') {
            if (command(&c, msg.p)) break;
            continue;
        }
        turn(&c, msg.p);
    }
    if (c.tty_in) putchar('\n');
    text_free(&msg);
    free(c.system);
    json_decref(c.history);
    session_close(&c.s);
    return 0;
}
