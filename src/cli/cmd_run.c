/* gemma4 run: one answer to one prompt in the Gemma 4 chat format, streamed
 * as it is generated, or as one JSON object with --json-out; optionally
 * constrained by a grammar (--json, --json-schema, --grammar, --tool-choice)
 * and repeated with successive seeds (--samples). */
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
           "      --json           the answer is one JSON value (constrained decoding)\n"
           "      --json-schema FILE  the answer is JSON valid against this JSON Schema (docs/grammar.md)\n"
           "      --grammar FILE   the answer follows this grammar (docs/grammar.md)\n"
           "      --tool-choice C  with --tools: auto (text and/or calls), required (calls only) or a tool\n"
           "                       name; tool calls then always parse and match the tool's parameters\n"
           "      --samples N      answer N times, seeds S, S+1, ... (one line each with --json-out)\n"
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

/* The grammar the options ask for (NULL, none, after printing an error:
 * *failed set). */
static gemma4_grammar *load_grammar(const gemma4_tokenizer *tok, int json, const char *schema_path,
                                    const char *grammar_path, const char *tools, const char *tool_choice, int *failed) {
    gemma4_grammar *g = NULL;
    char *text = NULL;
    int rc = 0;
    *failed = 0;
    if (json + !!schema_path + !!grammar_path + !!tool_choice > 1) {
        fprintf(stderr, "gemma4 run: give one of --json, --json-schema, --grammar, --tool-choice\n");
        *failed = 1;
        return NULL;
    }
    if (tool_choice && !tools) {
        fprintf(stderr, "gemma4 run: --tool-choice needs --tools\n");
        *failed = 1;
        return NULL;
    }
    if (json) rc = gemma4_grammar_from_json_schema(tok, NULL, &g);
    else if (schema_path) rc = (text = read_text_file(schema_path)) ? gemma4_grammar_from_json_schema(tok, text, &g) : 1;
    else if (grammar_path) rc = (text = read_text_file(grammar_path)) ? gemma4_grammar_from_text(tok, text, &g) : 1;
    else if (tool_choice) rc = gemma4_grammar_for_tools(tok, tools, tool_choice, &g);
    if (rc < 0) fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
    free(text);
    *failed = rc != 0;
    return g;
}

static void print_json(const answer *a) {
    json_t *o = json_pack("{s:s%, s:O, s:s}", "content", a->content.p ? a->content.p : "", a->content.n,
                          "tool_calls", a->tool_calls, "finish_reason", a->finish);
    json_object_set_new(o, "reasoning", a->reasoning.n ? json_stringn(a->reasoning.p, a->reasoning.n) : json_null());
    json_object_set_new(o, "usage", json_pack("{s:i, s:i, s:i}", "prompt_tokens", a->n_prompt, "completion_tokens",
                                              a->n_generated, "total_tokens", a->n_prompt + a->n_generated));
    if (a->n_masks) /* the grammar's share of the decode time */
        json_object_set_new(o, "grammar", json_pack("{s:i, s:f, s:f}", "masks", a->n_masks, "mask_ms",
                                                    1e3 * a->mask_s, "decode_ms", 1e3 * a->gen_s));
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
    const char *schema_path = NULL, *grammar_path = NULL, *tool_choice = NULL;
    int think = 0, json_out = 0, json = 0, samples = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return 0; }
        int r = model_opts_parse(&mo, argc, argv, &i);
        if (!r) r = gen_opts_parse(&go, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "--think")) { think = 1; continue; }
        if (!strcmp(a, "--json-out")) { json_out = 1; continue; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (!(v = arg_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "--system")) system = v;
        else if (!strcmp(a, "--tools")) tools_path = v;
        else if (!strcmp(a, "--prefill")) prefill = v;
        else if (!strcmp(a, "--json-schema")) schema_path = v;
        else if (!strcmp(a, "--grammar")) grammar_path = v;
        else if (!strcmp(a, "--tool-choice")) tool_choice = v;
        else if (!strcmp(a, "--samples")) { if (arg_int(a, v, 1, 1 << 20, &samples)) return 2; }
        else { fprintf(stderr, "gemma4 run: unknown option %s\n", a); return 2; }
    }
    if (!mo.model_path) { fprintf(stderr, "gemma4 run: no model given (-m PATH)\n"); return 2; }

    if (prefill && (json || schema_path || grammar_path || tool_choice)) {
        fprintf(stderr, "gemma4 run: --prefill does not combine with a constraint (the constraint starts the answer)\n");
        return 2;
    }
    if (think && (json || schema_path || grammar_path || tool_choice)) {
        fprintf(stderr, "gemma4 run: constraints apply from the first token of the answer, so they do not combine "
                        "with --think (docs/grammar.md)\n");
        return 2;
    }

    char *stdin_prompt = NULL, *tools = NULL, *messages = NULL, *rendered = NULL;
    int rc = 1, failed = 0;
    session s = {0};
    answer ans = {0};
    gemma4_grammar *grammar = NULL;
    if (!prompt && !(prompt = stdin_prompt = read_stdin())) { fprintf(stderr, "gemma4: cannot read the prompt\n"); goto done; }
    if (tools_path && !(tools = read_text_file(tools_path))) goto done;
    if (session_open(&s, &mo, &go)) goto done;
    grammar = load_grammar(s.tok, json, schema_path, grammar_path, tools, tool_choice, &failed);
    if (failed) goto done;
    go.grammar = grammar;
    go.grammar_content_only = !tool_choice;
    gemma4_chat_params cp = gemma4_chat_default_params();
    cp.enable_thinking = think;
    if (!(messages = messages_json(system, prompt))) { fprintf(stderr, "gemma4: the prompt is not valid UTF-8\n"); goto done; }
    if (gemma4_chat_render(s.model, messages, tools, &cp, &rendered)) {
        fprintf(stderr, "gemma4: %s\n", gemma4_last_error());
        goto done;
    }
    gen_catch_sigint();
    for (int k = 0; k < samples && !gen_interrupted; k++) {
        if (k) { /* the next seed */
            gemma4_sampler_params sp = go.sampling;
            sp.seed += (uint64_t)k;
            gemma4_sampler_free(s.sampler);
            s.sampler = NULL;
            if (gemma4_sampler_new(&sp, &s.sampler)) { fprintf(stderr, "gemma4: %s\n", gemma4_last_error()); goto done; }
            answer_free(&ans);
        }
        display d;
        display_init(&d, stdout);
        if (session_answer(&s, rendered, prefill, &go, json_out ? NULL : display_event, &d, &gen_interrupted, &ans))
            goto done;
        if (json_out) {
            print_json(&ans);
            fflush(stdout);
        } else {
            display_end(&d);
            if (isatty(2))
                fprintf(stderr, "\033[2m[prompt %d tokens, %.1f tok/s; answer %d tokens, %.1f tok/s; %s]\033[0m\n",
                        ans.n_prompt, ans.prompt_s > 0 ? (ans.n_prompt - ans.n_prompt_cached) / ans.prompt_s : 0.0,
                        ans.n_generated, ans.gen_s > 0 ? ans.n_generated / ans.gen_s : 0.0, ans.finish);
            if (isatty(2) && ans.n_masks)
                fprintf(stderr, "\033[2m[grammar mask %.3f ms per token]\033[0m\n", 1e3 * ans.mask_s / ans.n_masks);
        }
    }
    rc = 0;
done:
    answer_free(&ans);
    gemma4_grammar_free(grammar);
    if (s.model) session_close(&s);
    gemma4_free(rendered);
    free(messages);
    free(tools);
    free(stdin_prompt);
    return rc;
}
