/* The public text API (include/gemma4.h, "text" section) and the tokenizer
 * in GGUF files:
 *  1. a checkpoint with a tokenizer.json converts to a GGUF with the
 *     tokenizer keys llama.cpp's converter writes (model "gemma4", tokens,
 *     -1000 scores, token types with the 7 visible markers USER_DEFINED,
 *     merges, special ids, add_bos_token, add_space_prefix, the chat
 *     template); the model loaded from it tokenizes like the tokenizer.json;
 *     a checkpoint without one converts with a warning and "none";
 *  2. tokenize / detokenize / the streaming detokenizer on the real
 *     vocabulary (build/tokenizer/tokenizer.json, $G4_TOKENIZER_JSON);
 *  3. chat rendering with the empty-thought prefill decided from the model;
 *  4. the output parser and stop strings on hand-made model outputs
 *     (thoughts, tool calls, end markers, pieces of any size). */
#include "check.h"
#include "gemma4.h"
#include "io/gguf.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp[64];

/* ---- 1. tokenizer keys in converted files ---- */

static const char *const markers[] = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>",
                                      "<|tool_response>", "<tool_response|>", "<|\"|>"};

/* A 512-token Gemma-style tokenizer.json (the fixtures' vocabulary size):
 * specials, the 7 markers, <|turn>, <turn|>, 256 byte tokens, printable
 * ASCII, U+2581 and a few merges; the rest <unusedN>. */
static void write_toy_tokenizer(const char *path) {
    json_t *vocab = json_object(), *added = json_array(), *merges = json_array();
    int id = 0;
    const char *specials[] = {"<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>"};
    for (size_t i = 0; i < 7; i++, id++) {
        json_object_set_new(vocab, specials[i], json_integer(id));
        json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", specials[i],
                                               "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1));
    }
    for (size_t i = 0; i < 7; i++, id++) {
        json_object_set_new(vocab, markers[i], json_integer(id));
        json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", markers[i],
                                               "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1));
    }
    char s[32];
    for (int b = 0; b < 256; b++, id++) {
        snprintf(s, sizeof s, "<0x%02X>", b);
        json_object_set_new(vocab, s, json_integer(id));
    }
    for (int c = '!'; c <= '~'; c++, id++) {
        snprintf(s, sizeof s, "%c", c);
        json_object_set_new(vocab, s, json_integer(id));
    }
    json_object_set_new(vocab, "\xe2\x96\x81", json_integer(id++));
    json_object_set_new(vocab, "\n", json_integer(id++));
    const char *pairs[][2] = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"\xe2\x96\x81", "w"}, {"o", "r"},
                              {"\xe2\x96\x81w", "or"}, {"\xe2\x96\x81wor", "l"}, {"\xe2\x96\x81worl", "d"}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++, id++) {
        snprintf(s, sizeof s, "%s%s", pairs[i][0], pairs[i][1]);
        json_object_set_new(vocab, s, json_integer(id));
        /* both spellings of a merge: "a b" strings and ["a", "b"] pairs */
        char joined[32];
        snprintf(joined, sizeof joined, "%s %s", pairs[i][0], pairs[i][1]);
        json_array_append_new(merges, i % 2 ? json_string(joined) : json_pack("[s, s]", pairs[i][0], pairs[i][1]));
    }
    for (int k = 0; id < 512; k++, id++) {
        snprintf(s, sizeof s, "<unused%d>", k);
        json_object_set_new(vocab, s, json_integer(id));
    }
    json_t *tok = json_pack(
        "{s:s, s:o, s:{s:s, s:{s:s}, s:s}, s:{s:s, s:{s:s}, s:s, s:b}, s:n,"
        " s:{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}]},"
        " s:{s:s, s:n, s:s, s:b, s:b, s:b, s:o, s:o}}",
        "version", "1.0", "added_tokens", added,
        "normalizer", "type", "Replace", "pattern", "String", " ", "content", "\xe2\x96\x81",
        "pre_tokenizer", "type", "Split", "pattern", "String", " ", "behavior", "MergedWithPrevious", "invert", 0,
        "post_processor",
        "decoder", "type", "Sequence", "decoders", "type", "Replace", "pattern", "String", "\xe2\x96\x81", "content", " ",
        "type", "ByteFallback", "type", "Fuse",
        "model", "type", "BPE", "dropout", "unk_token", "<unk>", "fuse_unk", 1, "byte_fallback", 1, "ignore_merges", 0,
        "vocab", vocab, "merges", merges);
    CHECK(tok && json_dump_file(tok, path, 0) == 0, "cannot write %s", path);
    json_decref(tok);
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || !memcmp(a, b, na * sizeof *a));
}

static void converted_tokenizer(void) {
    char dir[128], path[256], cmd[1024];
    snprintf(dir, sizeof dir, "%s/ckpt", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && ln -s $PWD/tests/fixtures/dense/config.json $PWD/tests/fixtures/dense/model.safetensors "
                              "$PWD/tests/data/chat/gemma4_chat_template.jinja %s/ && mv %s/gemma4_chat_template.jinja %s/chat_template.jinja",
             dir, dir, dir, dir);
    CHECK(system(cmd) == 0, "cannot make %s", dir);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_toy_tokenizer(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(path, "w");
    if (f) { fputs("{\"bos_token\": \"<bos>\", \"eos_token\": {\"content\": \"<turn|>\"}, \"pad_token\": \"<pad>\", \"add_eos_token\": false}", f); fclose(f); }

    char out[256];
    snprintf(out, sizeof out, "%s/with-tok.gguf", tmp);
    CHECK(gemma4_convert(dir, out, "f32", NULL, NULL) == 0, "convert: %s", gemma4_last_error());
    CHECK(gemma4_last_warning() == NULL, "unexpected warning: %s", gemma4_last_warning());
    gguf_file *g;
    g4_error err;
    if (gguf_open(out, &g, &err)) { CHECK(0, "%s", err.msg); return; }
    const char *model;
    gguf_array tokens, types, scores, merges;
    uint32_t bos = 0, eos = 0, pad = 9, unk = 0;
    bool add_bos = false, add_space = true, add_eos = true;
    const char *tmpl = NULL;
    uint64_t tmpl_len = 0;
    CHECK(!gguf_get_str(g, "tokenizer.ggml.model", &model, NULL, &err) && !strcmp(model, "gemma4"), "model");
    CHECK(!gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tokens, &err) && tokens.n == 512, "tokens");
    CHECK(!gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &types, &err) && types.n == 512, "types");
    CHECK(!gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &scores, &err) && scores.n == 512, "scores");
    CHECK(!gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &merges, &err) && merges.n == 9, "merges");
    CHECK(!gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos, &err) && bos == 2, "bos %u", bos);
    CHECK(!gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos, &err) && eos == 6, "eos %u (tokenizer_config.json names <turn|>)", eos);
    CHECK(!gguf_get_u32(g, "tokenizer.ggml.padding_token_id", &pad, &err) && pad == 0, "pad %u", pad);
    CHECK(!gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &unk, &err) && unk == 3, "unk %u", unk);
    CHECK(!gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, &err) && add_bos, "add_bos_token");
    CHECK(!gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos, &err) && !add_eos, "add_eos_token");
    CHECK(!gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &add_space, &err) && !add_space, "add_space_prefix");
    CHECK(!gguf_get_str(g, "tokenizer.chat_template", &tmpl, &tmpl_len, &err) && tmpl_len == 18683, "chat template (%llu bytes)",
          (unsigned long long)tmpl_len);
    if (tokens.n == 512 && types.n == 512 && scores.n == 512 && merges.n == 9) {
        const int32_t *ty = types.data;
        const float *sc = scores.data;
        int n_user = 0, n_control = 0, n_byte = 0, n_normal = 0, bad_score = 0;
        for (int i = 0; i < 512; i++) {
            n_user += ty[i] == 4;
            n_control += ty[i] == 3;
            n_byte += ty[i] == 6;
            n_normal += ty[i] == 1;
            bad_score += sc[i] != -1000.0f;
        }
        CHECK(n_user == 7 && n_control == 7 && n_byte == 256 && n_normal == 242 && !bad_score,
              "token types: %d user-defined, %d control, %d byte, %d normal; %d scores not -1000", n_user, n_control, n_byte,
              n_normal, bad_score);
        CHECK(!strcmp(tokens.strs[7], "<|channel>") && ty[7] == 4 && ty[5] == 3 && ty[14] == 6, "types of <|channel>, <|turn>, <0x00>");
        CHECK(!strcmp(merges.strs[0], "h e") && !strcmp(merges.strs[1], "l l") && !strcmp(merges.strs[8], "\xe2\x96\x81worl d"),
              "merges: \"%s\", \"%s\"", merges.strs[0], merges.strs[1]);
    }
    gguf_close(g);

    /* the model from the GGUF tokenizes like the tokenizer.json */
    gemma4_model *m = NULL;
    gemma4_tokenizer *json_tok = NULL;
    CHECK(gemma4_model_load(out, &m) == 0, "%s", gemma4_last_error());
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(gemma4_tokenizer_load(path, &json_tok) == 0, "%s", gemma4_last_error());
    const gemma4_tokenizer *gguf_tok = m ? gemma4_model_tokenizer(m) : NULL;
    CHECK(gguf_tok != NULL, "the converted model has no tokenizer");
    if (gguf_tok && json_tok) {
        const char *texts[] = {"hello world", "<bos><|turn>user\nhello<turn|>", "h\xc3\xa9llo \xf0\x9f\x98\x80", "<|channel>x<channel|>"};
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            int32_t *a, *b;
            size_t na, nb;
            CHECK(!gemma4_tokenize(gguf_tok, texts[i], strlen(texts[i]), GEMMA4_TOKENIZE_PARSE_SPECIAL, &a, &na) &&
                      !gemma4_tokenize(json_tok, texts[i], strlen(texts[i]), GEMMA4_TOKENIZE_PARSE_SPECIAL, &b, &nb) &&
                      same_ids(a, na, b, nb),
                  "GGUF and tokenizer.json tokenizers differ on \"%s\"", texts[i]);
            gemma4_free(a);
            gemma4_free(b);
        }
        /* llama.cpp's rule: USER_DEFINED markers match even without parse_special */
        int32_t *a;
        size_t na;
        CHECK(!gemma4_tokenize(gguf_tok, "<|channel>", 10, 0, &a, &na) && na == 1 && a[0] == 7, "<|channel> without parse_special");
        gemma4_free(a);
        CHECK(!gemma4_tokenize(gguf_tok, "<|turn>", 7, 0, &a, &na) && na > 1, "<|turn> must be text without parse_special");
        gemma4_free(a);
        int32_t stops[8];
        int n = gemma4_chat_stop_tokens(m, stops, 8);
        CHECK(n == 3 && stops[0] == 6 && stops[1] == 1 && stops[2] == 11, "stop tokens: %d (%d, %d, %d)", n, stops[0], stops[1],
              stops[2]); /* the file's EOS (<turn|>), <eos>, <|tool_response> */
    }
    gemma4_tokenizer_free(json_tok);
    gemma4_model_free(m);

    /* a checkpoint without a tokenizer: a warning and "none" */
    snprintf(out, sizeof out, "%s/no-tok.gguf", tmp);
    CHECK(gemma4_convert("tests/fixtures/dense", out, "f32", NULL, NULL) == 0, "convert: %s", gemma4_last_error());
    CHECK(gemma4_last_warning() && strstr(gemma4_last_warning(), "no tokenizer.json"), "no warning for a checkpoint without tokenizer");
    if (!gguf_open(out, &g, &err)) {
        CHECK(!gguf_get_str(g, "tokenizer.ggml.model", &model, NULL, &err) && !strcmp(model, "none"), "tokenizer.ggml.model");
        CHECK(gguf_find_key(g, "tokenizer.ggml.tokens") < 0, "tokens without a tokenizer");
        gguf_close(g);
    }
    CHECK(gemma4_model_load(out, &m) == 0 && gemma4_model_tokenizer(m) == NULL, "a model without tokenizer has one");
    gemma4_model_free(m);
}

/* ---- 2. tokenize / detokenize on the real vocabulary ---- */

static void real_vocabulary(void) {
    const char *path = getenv("G4_TOKENIZER_JSON");
    if (!path || !*path) path = "build/tokenizer/tokenizer.json";
    gemma4_tokenizer *t;
    if (gemma4_tokenizer_load(path, &t)) {
        CHECK(0, "%s (run tools/fetch_tokenizer.sh)", gemma4_last_error());
        return;
    }
    int32_t *ids;
    size_t n;
    const int32_t hello[] = {2, 9259, 236764, 4109, 236888};
    CHECK(!gemma4_tokenize(t, "Hello, World!", 13, GEMMA4_TOKENIZE_ADD_BOS, &ids, &n) && same_ids(ids, n, hello, 5), "with BOS");
    gemma4_free(ids);
    CHECK(!gemma4_tokenize(t, "<bos>Hello, World!", 18, GEMMA4_TOKENIZE_ADD_BOS | GEMMA4_TOKENIZE_PARSE_SPECIAL, &ids, &n) &&
              same_ids(ids, n, hello, 5), "a BOS in the text is not doubled");
    gemma4_free(ids);
    CHECK(!gemma4_tokenize(t, "<bos>", 5, 0, &ids, &n) && n > 1, "<bos> is text without parse_special");
    gemma4_free(ids);
    CHECK(gemma4_token_bos(t) == 2 && gemma4_token_id(t, "<eos>") == 1 && gemma4_tokenizer_n_vocab(t) >= 262144, "special ids");
    size_t len;
    const char *s = gemma4_token_text(t, 9259, &len);
    CHECK(s && len == 5 && !memcmp(s, "Hello", 5), "token text");
    CHECK(gemma4_tokenize(t, "\xff", 1, 0, &ids, &n) == -1 && strlen(gemma4_last_error()) > 0, "invalid UTF-8 is an error");

    /* decode with and without specials, streaming equal to whole */
    const char *text = "<bos>Ünïcödé \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb and \xe4\xb8\xad\xe6\x96\x87\n\n  spaces";
    CHECK(!gemma4_tokenize(t, text, strlen(text), GEMMA4_TOKENIZE_PARSE_SPECIAL, &ids, &n), "%s", gemma4_last_error());
    char *back, *plain;
    CHECK(!gemma4_detokenize(t, ids, n, 0, &back, &len) && len == strlen(text) && !strcmp(back, text), "round trip");
    CHECK(!gemma4_detokenize(t, ids, n, 1, &plain, NULL) && !strcmp(plain, text + 5), "skip_special");
    gemma4_detokenizer *d;
    char streamed[256] = "";
    CHECK(!gemma4_detokenizer_new(t, 0, &d), "detokenizer");
    for (size_t i = 0; i <= n; i++) {
        const char *piece;
        size_t k;
        int rc = i < n ? gemma4_detokenizer_push(d, ids[i], &piece, &k) : gemma4_detokenizer_finish(d, &piece, &k);
        CHECK(!rc, "push");
        if (!rc) strncat(streamed, piece, k < sizeof streamed - strlen(streamed) - 1 ? k : 0);
    }
    CHECK(!strcmp(streamed, text), "streamed \"%s\"", streamed);
    gemma4_detokenizer_free(d);
    gemma4_free(back);
    gemma4_free(plain);
    gemma4_free(ids);
    gemma4_tokenizer_free(t);
}

/* ---- 3. chat rendering ---- */

static void rendering(void) {
    const char *msgs = "[{\"role\":\"user\",\"content\":\"  Name three primes. \"}]";
    char *p;
    CHECK(!gemma4_chat_render(NULL, msgs, NULL, NULL, &p) &&
              !strcmp(p, "<bos><|turn>user\nName three primes.<turn|>\n<|turn>model\n"), "no model: no prefill");
    gemma4_free(p);
    gemma4_model *e_like, *dense;
    CHECK(!gemma4_model_load("tests/fixtures/e-like", &e_like) && !gemma4_model_load("tests/fixtures/dense", &dense), "load");
    CHECK(!gemma4_chat_render(e_like, msgs, NULL, NULL, &p) && !strcmp(p, "<bos><|turn>user\nName three primes.<turn|>\n<|turn>model\n"),
          "E-like (per-layer inputs): no empty thought");
    gemma4_free(p);
    CHECK(!gemma4_chat_render(dense, msgs, NULL, NULL, &p) &&
              !strcmp(p, "<bos><|turn>user\nName three primes.<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"),
          "dense: the empty thought block");
    gemma4_free(p);
    gemma4_chat_params cp = gemma4_chat_default_params();
    cp.enable_thinking = 1;
    CHECK(!gemma4_chat_render(dense, msgs, NULL, &cp, &p) &&
              !strcmp(p, "<bos><|turn>system\n<|think|>\n<turn|>\n<|turn>user\nName three primes.<turn|>\n<|turn>model\n"),
          "thinking: %s", p ? p : "");
    gemma4_free(p);
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Get weather\","
                        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]";
    CHECK(!gemma4_chat_render(e_like, msgs, tools, NULL, &p) && strstr(p, "<|tool>declaration:get_weather{") && strstr(p, "<tool|>"),
          "tools");
    gemma4_free(p);
    CHECK(gemma4_chat_render(NULL, "[{\"role\":", NULL, NULL, &p) == -1 && strstr(gemma4_last_error(), "messages"), "bad JSON");
    CHECK(gemma4_chat_render(NULL, "{}", NULL, NULL, &p) == -1, "not an array");
    int32_t stops[8];
    CHECK(gemma4_chat_stop_tokens(dense, stops, 8) >= 1 && stops[0] == 1, "the model's EOS without a tokenizer");
    gemma4_model_free(e_like);
    gemma4_model_free(dense);
}

/* ---- 4. output parser and stop strings ---- */

/* The events as "[C text][T text][CALL name args][END marker]", adjacent
 * text events of one kind merged (how text is split may vary). */
typedef struct events {
    char log[2048];
    int last; /* kind of the last event, -1 at the start */
} events;

static void record(void *user, const gemma4_chat_event *ev) {
    events *e = user;
    size_t n = strlen(e->log);
    static const char *const kind[] = {"C", "T", "CALL", "END"};
    int text = ev->kind == GEMMA4_CHAT_CONTENT || ev->kind == GEMMA4_CHAT_THOUGHT;
    if (text && e->last == (int)ev->kind) snprintf(e->log + n - 1, sizeof e->log - n + 1, "%.*s]", (int)ev->len, ev->text);
    else if (ev->kind == GEMMA4_CHAT_TOOL_CALL) snprintf(e->log + n, sizeof e->log - n, "[CALL %s %s]", ev->name, ev->arguments);
    else snprintf(e->log + n, sizeof e->log - n, "[%s %.*s]", kind[ev->kind], (int)ev->len, ev->text);
    e->last = (int)ev->kind;
}

/* Feeds text in pieces of `step` bytes. */
static void parse(const char *text, size_t step, int in_thought, char *out, size_t cap) {
    events e = {"", -1};
    gemma4_chat_parser *p;
    CHECK(!gemma4_chat_parser_new(in_thought, record, &e, &p), "parser");
    for (size_t i = 0, n = strlen(text); i < n; i += step) CHECK(!gemma4_chat_parser_feed(p, text + i, n - i < step ? n - i : step), "feed");
    CHECK(!gemma4_chat_parser_finish(p), "finish");
    gemma4_chat_parser_free(p);
    snprintf(out, cap, "%s", e.log);
}

static void parser_and_stops(void) {
    const struct { const char *text; int in_thought; const char *want; } cases[] = {
        {"Hello there<turn|>ignored", 0, "[C Hello there][END <turn|>]"},
        {"<|channel>thought\nLet me see<channel|>It is 4.<turn|>", 0, "[T Let me see][C It is 4.][END <turn|>]"},
        {"still thinking<channel|>Done<eos>", 1, "[T still thinking][C Done][END <eos>]"},
        {"<|tool_call>call:get_weather{city:<|\"|>London<|\"|>,days:3}<tool_call|><|tool_response>", 0,
         "[CALL get_weather {\"city\":\"London\",\"days\":3}][END <|tool_response>]"},
        {"Sure.<|tool_call>call:a{}<tool_call|><|tool_call>call:b{x:[1,true,null]}<tool_call|>", 0,
         "[C Sure.][CALL a {}][CALL b {\"x\":[1,true,null]}]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (size_t step = 1; step <= 64; step *= 4) {
            char got[2048];
            parse(cases[i].text, step, cases[i].in_thought, got, sizeof got);
            CHECK(!strcmp(got, cases[i].want), "case %zu, pieces of %zu: %s\n  want %s", i, step, got, cases[i].want);
        }
    }
    gemma4_stop *s;
    const char *stops[] = {"STOP", "end"};
    CHECK(!gemma4_stop_new(stops, 2, &s), "stop");
    const char *out;
    size_t n;
    char released[64] = "";
    const char *pieces[] = {"one tw", "o ST", "OP three"};
    int matched = 0;
    for (size_t i = 0; i < 3 && !matched; i++) {
        matched = gemma4_stop_feed(s, pieces[i], strlen(pieces[i]), &out, &n);
        strncat(released, out, n);
    }
    CHECK(matched == 1 && !strcmp(released, "one two "), "stop strings: %d \"%s\"", matched, released);
    gemma4_stop_free(s);
    CHECK(gemma4_stop_new((const char *[]){""}, 1, &s) == -1, "an empty stop string is an error");
}

int main(void) {
    strcpy(tmp, "/tmp/g4chatapiXXXXXX");
    if (!mkdtemp(tmp)) return 1;
    converted_tokenizer();
    real_vocabulary();
    rendering();
    parser_and_stops();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", tmp);
    return check_exit("test_chat_api");
}
