/* The C chat renderer against the official July 2026 Gemma 4 template as
 * rendered by transformers 5.17.0 (tests/data/chat/expected.json, made by
 * tools/render_chat_fixtures.py): byte-identical prompts, and an error where
 * the template raises. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chat/template.h"
#include "check.h"

static void show_difference(const char *name, const char *want, const char *got) {
    size_t i = 0;
    while (want[i] && want[i] == got[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "%s: first difference at byte %zu\n  want: %.100s\n  got:  %.100s\n", name, i,
            want + from, got + from);
}

static void options_of(const json_t *c, g4_chat_options *opt) {
    const json_t *kw = json_object_get(c, "kwargs");
    *opt = (g4_chat_options){0};
    opt->enable_thinking = json_is_true(json_object_get(kw, "enable_thinking"));
    opt->preserve_thinking = json_is_true(json_object_get(kw, "preserve_thinking"));
    opt->add_generation_prompt = json_is_true(json_object_get(c, "add_generation_prompt"));
    opt->empty_thought_prefill = strcmp(json_string_value(json_object_get(c, "flavour")), "large") == 0;
    opt->bos = json_string_value(json_object_get(kw, "bos_token"));
}

static void test_fixtures(const char *path) {
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    CHECK(doc != NULL, "cannot read %s: %s", path, jerr.text);
    if (!doc) return;
    const json_t *cases = json_object_get(doc, "cases");
    CHECK(json_array_size(cases) >= 30, "only %zu cases", json_array_size(cases));
    size_t rendered = 0, refused = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        g4_chat_options opt;
        options_of(c, &opt);
        char *got = NULL;
        g4_error err = {{0}};
        int rc = g4_chat_render(json_object_get(c, "messages"), json_object_get(c, "tools"), &opt, &got, &err);
        const char *want = json_string_value(json_object_get(c, "expected"));
        if (want) {
            CHECK(rc == 0, "%s: render failed: %s", name, err.msg);
            if (rc == 0) {
                CHECK(strcmp(want, got) == 0, "%s: prompt differs", name);
                if (strcmp(want, got) != 0) show_difference(name, want, got);
                rendered++;
            }
        } else {
            CHECK(rc != 0, "%s: the template raises (%s) but the renderer did not", name,
                  json_string_value(json_object_get(c, "error")));
            if (rc != 0) {
                CHECK(err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL, "%s: no one-line message", name);
                refused++;
            }
        }
        free(got);
    }
    printf("chat template: %zu prompts byte-identical, %zu refusals\n", rendered, refused);
    json_decref(doc);
}

/* The string-arguments refusal carries the template's own words. */
static void test_string_arguments_message(void) {
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"tool_calls\":"
                              "[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}]", 0, NULL);
    char *out = NULL;
    g4_error err = {{0}};
    CHECK(g4_chat_render(msgs, NULL, NULL, &out, &err) == -1, "string arguments accepted");
    CHECK(strstr(err.msg, "must be a JSON object (mapping), not a string") != NULL, "message: %s", err.msg);
    CHECK(out == NULL, "output left behind on failure");
    json_decref(msgs);
}

/* Inputs the template cannot render give errors, not crashes. */
static void test_bad_inputs(void) {
    const char *bad[] = {
        "{\"role\":\"user\"}",
        "[{\"content\":\"no role\"}]",
        "[{\"role\":5,\"content\":\"x\"}]",
        "[\"just a string\"]",
        "[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"arguments\":{}}}]}]",
        "[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]}]",
        "[{\"role\":\"user\",\"content\":[\"not a part\"]}]",
        "[{\"role\":\"assistant\",\"content\":[{\"type\":\"text\"}]}]",
        "[{\"role\":\"assistant\",\"reasoning\":[1]}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *msgs = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        char *out = NULL;
        g4_error err = {{0}};
        CHECK(g4_chat_render(msgs, NULL, NULL, &out, &err) == -1, "accepted %s", bad[i]);
        CHECK(err.msg[0], "no message for %s", bad[i]);
        free(out);
        json_decref(msgs);
    }
    json_t *tools = json_loads("[{\"type\":\"function\"}]", 0, NULL);
    json_t *msgs = json_loads("[]", 0, NULL);
    char *out = NULL;
    g4_error err = {{0}};
    CHECK(g4_chat_render(msgs, tools, NULL, &out, &err) == -1, "tool without function accepted");
    json_decref(tools);
    json_decref(msgs);
}

int main(int argc, char **argv) {
    test_fixtures(argc > 1 ? argv[1] : "tests/data/chat/expected.json");
    test_string_arguments_message();
    test_bad_inputs();
    return check_exit("test_chat_template");
}
