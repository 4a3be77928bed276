/* gemma4 run: one answer to one prompt in the Gemma 4 chat format, streamed
 * as it is generated, or as one JSON object with --json-out. */
#include "cli/args.h"
#include "cli/common.h"
#include "cli/textgen.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void) {
    printf("usage: gemma4 run -m MODEL -p PROMPT [--system TEXT] [--think] [--tools tools.json] [--json-out]\n"
           "                  [-n N] [sampling options]\n\n"
           "Answers one prompt in the Gemma 4 chat format, streaming the answer to stdout. Thoughts are\n"
           "shown dimmed (prefixed with \"| \" when stdout is not a terminal); tool calls as lines\n"
           "`tool_call {\"name\":...,\"arguments\":{...}}`. Ctrl-C ends the answer early.\n\n" MODEL_OPTS_HELP
           "  -p, --prompt TEXT    the user's message (default: read from stdin)\n"
           "      --system TEXT    a system prompt\n"
           "      --think          thinking mode (the model reasons before answering)\n"
           "      --tools FILE     offer these functions: a JSON array of OpenAI-style tools\n"
           "                       ({\"type\":\"function\",\"function\":{name, description, parameters}})\n"
           "      --prefill TEXT   start the answer with TEXT (the model continues from it)\n"
           "      --json-out       print one JSON object instead: {content, reasoning, tool_calls,\n"
           "                       finish_reason, usage: {prompt_tokens, completion_tokens, total_tokens}}\n"
           GEN_OPTS_HELP);
}

/* The whole of stdin. */
static char *read_stdin(void) {
    text_buf b = {0};
    char chunk[65536];
    size_t n;
    int rc = text_append(&b, "", 0);
    while (!rc && (n = fread(chunk, 1, sizeof chunk, stdin)) > 0) rc = text_append(&b, chunk, n);
    if (rc) text_free(&b);
    return b.p;
}

/* NULL if the texts are not valid UTF-8. */
static char *messages_json(const char *system, const char *prompt) {
    json_t *m = json_array();
    int bad = !m || (system && json_array_append_new(m, json_pack("{s:s, s:s}", "role", "system", "content", system))) ||
              json_array_append_new(m, json_pack("{s:s, s:s}", "role", "user", "content", prompt));
    char *s = bad ? NULL : json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return s;
}

static void print_json(const answer *a) {
    json_t *o = json_pack("{s:s%, s:O, s:s}", "content", a->content.p ? a->content.p : "", a->content.n,
                          "tool_calls", a->tool_calls, "finish_reason", a->finish);
    json_object_set_new(o, "reasoning", a->reasoning.n ? json_stringn(a->reasoning.p, a->reasoning.n) : json_null());
    json_object_set_new(o, "usage", json_pack("{s:i, s:i, s:i}", "prompt_tokens", a->n_prompt, "completion_tokens",
                                              a->n_generated, "total_tokens", a->n_prompt + a->n_generated));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) printf("%s\n", s);
    free(s);
    json_decref(o);
}

int cmd_run(int argc, char **argv) {
    model_opts mo;
    gen_opts go;
    model_opts_init(&mo);
    gen_opts_init(&go);
    const char *prompt = NULL, *system = NULL, *tools_path = NULL, *prefill = NULL, *v;
    int think = 0, json_out = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        int r = model_opts_parse(&mo, argc, argv, &i);
        if (!r) r = gen_opts_parse(&go, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "--think")) { think = 1; continue; }
        if (!strcmp(a, "--json-out")) { json_out = 1; continue; }
        if (!(v = arg_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "--system")) system = v;
        else if (!strcmp(a, "--tools")) tools_path = v;
        else if (!strcmp(a, "--prefill")) prefill = v;
        else { fprintf(stderr, "gemma4 run: unknown option %s\n", a); return 2; }
    }
    if (!mo.model_path) { fprintf(stderr, "gemma4 run: no model given (-m PATH)\n"); return 2; }

    char *stdin_prompt = NULL, *tools = NULL, *messages = NULL, *rendered = NULL;
    int rc = 1;
    session s = {0};
    answer ans = {0};
    if (!prompt && !(prompt = stdin_prompt = read_stdin())) { fprintf(stderr, "gemma4: cannot read the prompt\n"); goto done; }
    if (tools_path && !(tools = read_text_file(tools_path))) goto done;
    if (session_open(&s, &mo, &go)) goto done;
    gemma4_chat_params cp = gemma4_chat_default_params();
    cp.enable_thinking = think;
    if (!(messages = messages_json(system, prompt))) { fprintf(stderr, "gemma4: the prompt is not valid UTF-8\n"); goto done; }
    if (gemma4_chat_render(s.model, messages, tools, &cp, &rendered)) {
        fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
        goto done;
    }
    gen_catch_sigint();
    display d;
    display_init(&d, stdout);
    if (session_answer(&s, rendered, prefill, &go, json_out ? NULL : display_event, &d, &gen_interrupted, &ans)) goto done;
    if (json_out) {
        print_json(&ans);
    } else {
        display_end(&d);
        if (isatty(2))
            fprintf(stderr, "\033[2m[prompt %d tokens, %.1f tok/s; answer %d tokens, %.1f tok/s; %s]\033[0m\n", ans.n_prompt,
                    ans.prompt_s > 0 ? (ans.n_prompt - ans.n_prompt_cached) / ans.prompt_s : 0.0, ans.n_generated,
                    ans.gen_s > 0 ? ans.n_generated / ans.gen_s : 0.0, ans.finish);
    }
    rc = 0;
done:
    answer_free(&ans);
    if (s.model) session_close(&s);
    gemma4_free(rendered);
    free(messages);
    free(tools);
    free(stdin_prompt);
    return rc;
}
