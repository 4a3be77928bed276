/* Answering a chat prompt, shared by `gemma4 run` and `gemma4 chat`: the
 * generation options, one answer streamed from a rendered prompt (the KV
 * cache reused when the prompt extends what it holds), and how thoughts,
 * content and tool calls are shown. Public API only. */
#ifndef G4_CLI_TEXTGEN_H
#define G4_CLI_TEXTGEN_H

#include "cli/common.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>

#define GEN_MAX_STOPS 16

typedef struct gen_opts {
    gemma4_sampler_params sampling;
    int n_predict; /* tokens per answer; -1: until the turn ends or the context is full */
    const char *stops[GEN_MAX_STOPS];
    int n_stops;
    const gemma4_grammar *grammar; /* constrains every answer from its first token; NULL: free text */
    int grammar_content_only;      /* the grammar's text is all content (no thoughts, no tool calls) */
} gen_opts;

#define GEN_OPTS_HELP \
    "  -n, --n-predict N    at most N tokens per answer (default: until the model ends its turn)\n" \
    "      --stop TEXT      also stop at TEXT (repeatable)\n" \
    "      --temp T         temperature (default 1.0; 0 = greedy)\n" \
    "      --top-k K        keep the K most likely tokens (default 64; 0 = off)\n" \
    "      --top-p P        nucleus mass (default 0.95; 1 = off)\n" \
    "      --min-p P        drop tokens below P x the top probability (default 0 = off)\n" \
    "      --seed S         random seed (default 0)\n"

void gen_opts_init(gen_opts *o);
/* Like model_opts_parse: 1 consumed, 0 not ours, -1 bad value. */
int gen_opts_parse(gen_opts *o, int argc, char **argv, int *i);

/* A growable byte string. */
typedef struct text_buf {
    char *p; /* NUL-terminated once anything was appended */
    size_t n, cap;
} text_buf;
int text_append(text_buf *b, const char *s, size_t n);
void text_free(text_buf *b);

/* A loaded model ready to answer. */
typedef struct session {
    gemma4_model *model;
    gemma4_context *ctx;
    gemma4_sampler *sampler;
    const gemma4_tokenizer *tok;
    int32_t stop_ids[16];
    int n_stop_ids, n_ctx;
    text_buf cached; /* the text whose tokens sequence 0's KV cache holds */
} session;

/* Loads the model (which must have a tokenizer) and a context; prints
 * errors. 0 on success. */
int session_open(session *s, const model_opts *mo, const gen_opts *go);
void session_close(session *s);
/* Forgets the KV cache. */
void session_reset(session *s);

typedef struct answer {
    text_buf content, reasoning;
    json_t *tool_calls;  /* [{"name": ..., "arguments": {...}}] */
    int n_prompt;        /* tokens of the whole prompt */
    int n_prompt_cached; /* of which the KV cache held already */
    int n_generated;
    const char *finish;  /* "stop", "tool_calls", "length" or "interrupted" */
    double prompt_s, gen_s;
    double mask_s;       /* of gen_s: computing the grammar's masks */
    int n_masks;
} answer;

void answer_free(answer *a);

/* Answers prompt (a rendered chat prompt), then prefill (text the answer
 * starts with, fed to the model and the parser as if generated; may be
 * NULL). Events go to show(show_ctx, ...) as they stream. *interrupt set
 * (by SIGINT) ends the answer early. Returns 0, or -1 after printing an
 * error (the prompt does not fit, a library failure). */
int session_answer(session *s, const char *prompt, const char *prefill, const gen_opts *o, gemma4_chat_event_fn show,
                   void *show_ctx, volatile sig_atomic_t *interrupt, answer *a);

/* SIGINT sets *gen_interrupted instead of ending the program (no
 * SA_RESTART: a blocking read returns EINTR). */
extern volatile sig_atomic_t gen_interrupted;
void gen_catch_sigint(void);

/* Shows events on f: content as it comes, thoughts dimmed on a terminal
 * (prefixed with "| " otherwise), each tool call as a line
 * `tool_call {"name":...,"arguments":{...}}`. */
typedef struct display {
    FILE *f;
    int tty, in_thought, at_line_start;
} display;

void display_init(display *d, FILE *f);
void display_event(void *d, const gemma4_chat_event *ev);
/* Ends the answer: closes a thought, ends the line. */
void display_end(display *d);

/* A file's whole content (malloc'ed), or NULL after printing an error. */
char *read_text_file(const char *path);

#endif
