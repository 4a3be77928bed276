/* The text commands as a user runs them, on a tiny random model with the
 * real 262,144-token vocabulary (`gemma4 synth --arch tiny --tokenizer`,
 * made here and deleted after):
 *  - tokenize / detokenize: one line of ids, --bos, -m MODEL, --jsonl
 *    against the committed parity corpus, round trips, errors;
 *  - run: streamed text, --json-out, --think, --tools with a hand-made tool
 *    call (--prefill: random weights rarely call a tool), --stop;
 *  - chat with piped input: multi-line input, /save, the KV cache reused
 *    across turns, a clean exit at end of input;
 *  - chat in a terminal, driven through tmux: it starts, streams an answer,
 *    takes /think on, stops an answer on Ctrl-C and answers again, leaves
 *    on /quit with status 0.
 * Needs build/tokenizer/tokenizer.json (tools/fetch_tokenizer.sh;
 * $G4_TOKENIZER_JSON) and tmux. */
#include "check.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CORPUS "tests/data/tokenizer_corpus.jsonl"
#define N_CORPUS 400

static char bin[PATH_MAX], tok[PATH_MAX], tmp[64], model[128];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Runs a shell command (printf-style); stdout into out (NUL-terminated),
 * stderr into err; returns the exit status. */
static char out[1 << 20], err[1 << 16];
__attribute__((format(printf, 1, 2))) static int run(const char *fmt, ...) {
    char cmd[8192], full[8400], err_path[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmp);
    snprintf(full, sizeof full, "%s 2>%s", cmd, err_path);
    FILE *p = popen(full, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    FILE *e = fopen(err_path, "r");
    n = e ? fread(err, 1, sizeof err - 1, e) : 0;
    err[n] = 0;
    if (e) fclose(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

/* ---- tokenize / detokenize ---- */

/* U+2581 -> ' ' in place (shortens the string). */
static void meta_to_space(char *s) {
    char *o = s;
    for (const char *p = s; *p;) {
        if (!strncmp(p, "\xe2\x96\x81", 3)) { *o++ = ' '; p += 3; }
        else *o++ = *p++;
    }
    *o = 0;
}

static void tokenize(void) {
    write_file("text.txt", "Hello, World!");
    CHECK(run("%s tokenize --tokenizer %s --file %s/text.txt", bin, tok, tmp) == 0 && !strcmp(out, "9259 236764 4109 236888\n"),
          "tokenize: \"%s\" %s", out, err);
    CHECK(run("%s tokenize --tokenizer %s --file %s/text.txt --bos", bin, tok, tmp) == 0 && !strcmp(out, "2 9259 236764 4109 236888\n"),
          "tokenize --bos: \"%s\"", out);
    CHECK(run("%s tokenize -m %s --file %s/text.txt", bin, model, tmp) == 0 && !strcmp(out, "9259 236764 4109 236888\n"),
          "tokenize -m: \"%s\" %s", out, err);
    CHECK(run("printf 'Hello, World!' | %s tokenize --tokenizer %s", bin, tok) == 0 && !strcmp(out, "9259 236764 4109 236888\n"),
          "tokenize from stdin: \"%s\"", out);
    CHECK(run("%s tokenize --tokenizer %s --text '<bos>hi'", bin, tok) == 0 && !strncmp(out, "2 ", 2), "specials parsed: %s", out);
    CHECK(run("%s tokenize --tokenizer %s --text '<bos>hi' --no-special", bin, tok) == 0 && strncmp(out, "2 ", 2), "--no-special: %s", out);
    CHECK(run("%s detokenize --tokenizer %s --ids 2,9259,236764,4109,236888", bin, tok) == 0 && !strcmp(out, "<bos>Hello, World!"),
          "detokenize: \"%s\" %s", out, err);
    CHECK(run("echo '2 9259 236764' | %s detokenize -m %s --skip-special", bin, model) == 0 && !strcmp(out, "Hello,"),
          "detokenize --skip-special: \"%s\" %s", out, err);

    /* --jsonl against the committed reference ids, both tokenizers */
    char strings[256], ids[256], texts_path[256];
    snprintf(strings, sizeof strings, "%s/strings.jsonl", tmp);
    snprintf(ids, sizeof ids, "%s/ids.jsonl", tmp);
    snprintf(texts_path, sizeof texts_path, "%s/want.jsonl", tmp);
    FILE *in = fopen(CORPUS, "r"), *fs = fopen(strings, "w"), *fi = fopen(ids, "w");
    json_t *want_ids = json_array(), *want_texts = json_array();
    char *line = NULL;
    size_t cap = 0;
    for (int n = 0; in && fs && fi && n < N_CORPUS && getline(&line, &cap, in) > 0; n++) {
        json_t *o = json_loads(line, JSON_ALLOW_NUL, NULL);
        char *s = json_dumps(json_object_get(o, "text"), JSON_ENCODE_ANY | JSON_COMPACT);
        char *a = json_dumps(json_object_get(o, "ids"), JSON_COMPACT);
        if (s && a) {
            fprintf(fs, "%s\n", s);
            fprintf(fi, "%s\n", a);
            json_array_append_new(want_ids, json_string(a));
            /* decoding gives a space for a literal U+2581 */
            meta_to_space(s);
            json_array_append_new(want_texts, json_string(s));
        }
        free(s);
        free(a);
        json_decref(o);
    }
    free(line);
    if (in) fclose(in);
    if (fs) fclose(fs);
    if (fi) fclose(fi);
    CHECK(json_array_size(want_ids) == N_CORPUS, "corpus: %zu lines", json_array_size(want_ids));
    /* The model's tokenizer (from the GGUF) has exactly its 262,144 tokens:
     * Gemma 3's <image_soft_token> 262144 (not in Gemma 4) is left out. */
    const char *sources[2] = {"--tokenizer", "-m"};
    for (int k = 0; k < 2; k++) {
        int rc = run("%s tokenize %s %s --jsonl < %s", bin, sources[k], k ? model : tok, strings);
        size_t same = 0, i = 0, excluded = 0;
        for (char *p = out, *nl; rc == 0 && (nl = strchr(p, '\n')); p = nl + 1, i++) {
            *nl = 0;
            const char *text = json_string_value(json_array_get(want_texts, i));
            if (k && text && strstr(text, "<image_soft_token>")) excluded++;
            else same += i < json_array_size(want_ids) && !strcmp(p, json_string_value(json_array_get(want_ids, i)));
        }
        printf("  tokenize %s --jsonl: %zu of %zu corpus lines identical to the reference (%zu with <image_soft_token> left out)\n",
               sources[k], same, json_array_size(want_ids), excluded);
        CHECK(rc == 0 && i == N_CORPUS && same + excluded == N_CORPUS && excluded < 10, "tokenize %s --jsonl: %zu of %zu lines identical (%s)",
              sources[k], same, i, err);
    }
    int rc = run("%s detokenize --tokenizer %s --jsonl < %s", bin, tok, ids);
    size_t same = 0, i = 0;
    for (char *p = out, *nl; rc == 0 && (nl = strchr(p, '\n')); p = nl + 1, i++) {
        *nl = 0;
        json_t *got = json_loads(p, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        json_t *want = json_loads(json_string_value(json_array_get(want_texts, i)), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        same += got && want && json_equal(got, want);
        json_decref(got);
        json_decref(want);
    }
    CHECK(rc == 0 && same == N_CORPUS, "detokenize --jsonl: %zu of %zu round trips (%s)", same, i, err);
    json_decref(want_ids);
    json_decref(want_texts);

    /* errors: one line, non-zero status */
    CHECK(run("%s tokenize --text hi", bin) == 2 && strstr(err, "--tokenizer"), "no tokenizer given: %s", err);
    CHECK(run("%s tokenize -m tests/fixtures/dense --text hi", bin) == 1 && strstr(err, "no tokenizer"), "fixture: %s", err);
    CHECK(run("echo '[1,2' | %s detokenize --tokenizer %s --jsonl", bin, tok) == 1 && strstr(err, "line 1"), "bad line: %s", err);
    CHECK(run("printf '\"ok\"\\n42\\n' | %s tokenize --tokenizer %s --jsonl", bin, tok) == 1 && strstr(err, "line 2"), "bad jsonl: %s", err);
    CHECK(run("%s detokenize --tokenizer %s --ids 999999999", bin, tok) == 1 && *err, "unknown id accepted");
}

/* ---- run ---- */

static json_t *run_json(const char *args) {
    int rc = run("%s run -m %s %s --json-out", bin, model, args);
    json_t *o = rc == 0 ? json_loads(out, 0, NULL) : NULL;
    CHECK(o != NULL, "run %s: status %d, \"%s\" %s", args, rc, out, err);
    return o;
}

static void run_cmd(void) {
    json_t *o = run_json("-p 'Hi there' -n 8 --seed 1");
    json_t *usage = json_object_get(o, "usage");
    CHECK(json_is_string(json_object_get(o, "content")) && json_is_array(json_object_get(o, "tool_calls")) &&
              json_is_null(json_object_get(o, "reasoning")) &&
              !strcmp(json_string_value(json_object_get(o, "finish_reason")) ? json_string_value(json_object_get(o, "finish_reason")) : "", "length") &&
              json_integer_value(json_object_get(usage, "completion_tokens")) == 8 &&
              json_integer_value(json_object_get(usage, "prompt_tokens")) > 5 &&
              json_integer_value(json_object_get(usage, "total_tokens")) == json_integer_value(json_object_get(usage, "prompt_tokens")) + 8,
          "run --json-out: %s", out);
    json_decref(o);
    json_decref(run_json("-p hi -n 4 --think --system 'Be brief.' --top-k 5 --top-p 0.9 --temp 0.7"));

    CHECK(run("%s run -m %s -p 'Hi there' -n 8 --seed 1", bin, model) == 0 && strlen(out) > 1 && out[strlen(out) - 1] == '\n',
          "streamed run: \"%s\" %s", out, err);

    /* tools: the declaration reaches the prompt; a call the model makes is
     * reported (hand-made with --prefill, since random weights rarely call) */
    write_file("tools.json", "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather of a city\","
                             "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]");
    char args[1024];
    snprintf(args, sizeof args, "-p 'Weather in London?' --tools %s/tools.json -n 0 --prefill "
             "'<|channel>thought\nThe user wants weather.<channel|><|tool_call>call:get_weather{city:<|\"|>London<|\"|>}<tool_call|>'", tmp);
    o = run_json(args);
    json_t *call = json_array_get(json_object_get(o, "tool_calls"), 0);
    CHECK(call && !strcmp(json_string_value(json_object_get(call, "name")), "get_weather") &&
              !strcmp(json_string_value(json_object_get(json_object_get(call, "arguments"), "city")), "London") &&
              !strcmp(json_string_value(json_object_get(o, "reasoning")), "The user wants weather.") &&
              !strcmp(json_string_value(json_object_get(o, "content")), ""),
          "tool call: %s", out);
    json_decref(o);
    CHECK(run("%s run -m %s %s", bin, model, args) == 0 &&
              strstr(out, "| The user wants weather.\n") &&
              strstr(out, "tool_call {\"name\":\"get_weather\",\"arguments\":{\"city\":\"London\"}}\n"),
          "tool call shown: \"%s\" %s", out, err);
    /* the model continues a prefill; a stop string cuts the answer */
    o = run_json("-p hi -n 0 --prefill 'one two STOP three' --stop STOP");
    CHECK(!strcmp(json_string_value(json_object_get(o, "content")) ? json_string_value(json_object_get(o, "content")) : "", "one two ") &&
              !strcmp(json_string_value(json_object_get(o, "finish_reason")), "stop"),
          "--stop: %s", out);
    json_decref(o);

    CHECK(run("%s run -m tests/fixtures/dense -p hi", bin) == 1 && strstr(err, "no tokenizer"), "no tokenizer: %s", err);
    write_file("bad_tools.json", "{\"not\": \"an array\"}");
    CHECK(run("%s run -m %s -p hi --tools %s/bad_tools.json", bin, model, tmp) == 1 && strstr(err, "tools"), "bad tools: %s", err);
    CHECK(run("%s run -m %s -p hi --ctx 8", bin, model) == 1 && strstr(err, "context"), "prompt too long: %s", err);
}

/* ---- chat, piped ---- */

static void chat_piped(void) {
    int rc = run("printf 'hello\\nsecond\\\\\\nline\\n\"\"\"\\nblock\\nof text\\n\"\"\"\\n/think on\\n/think\\n/save %s/conv.json\\n/bogus\\n' "
                 "| %s chat -m %s -n 6 --temp 0", tmp, bin, model);
    CHECK(rc == 0 && strstr(out, "thinking on\nthinking on\n") && strstr(out, "saved 6 messages") && strstr(out, "unknown command /bogus"),
          "chat: status %d, \"%s\" %s", rc, out, err);
    char path[256];
    snprintf(path, sizeof path, "%s/conv.json", tmp);
    json_t *conv = json_load_file(path, 0, NULL);
    const char *roles[] = {"user", "assistant", "user", "assistant", "user", "assistant"};
    const char *users[] = {"hello", NULL, "second\nline", NULL, "block\nof text", NULL};
    CHECK(json_array_size(conv) == 6, "saved %zu messages", json_array_size(conv));
    for (size_t i = 0; i < json_array_size(conv) && i < 6; i++) {
        json_t *m = json_array_get(conv, i);
        const char *role = json_string_value(json_object_get(m, "role")), *content = json_string_value(json_object_get(m, "content"));
        CHECK(role && !strcmp(role, roles[i]) && content && (!users[i] || !strcmp(content, users[i])), "message %zu: %s \"%s\"", i,
              role ? role : "?", content ? content : "?");
    }
    /* Turn 2 extends turn 1's text unless the answer had edge whitespace
     * (the template trims it): then only the new tokens are evaluated. */
    const char *a1 = json_string_value(json_object_get(json_array_get(conv, 1), "content"));
    int trimmed = a1 && *a1 && !strchr(" \n\t\r", a1[0]) && !strchr(" \n\t\r", a1[strlen(a1) - 1]);
    int p1 = 0, c1 = -1, p2 = 0, c2 = -1;
    const char *second = strstr(err, "]\n");
    CHECK(sscanf(err, "[%*d tokens, %*f tok/s; prompt %d tokens, %d cached", &p1, &c1) == 2 && second &&
              sscanf(second + 2, "[%*d tokens, %*f tok/s; prompt %d tokens, %d cached", &p2, &c2) == 2,
          "stats: %s", err);
    CHECK(c1 == 0 && (!trimmed || (c2 > p1 && p2 > c2)), "KV reuse: turn 1 %d/%d cached, turn 2 %d/%d (answer \"%s\")", c1, p1, c2, p2,
          a1 ? a1 : "");
    printf("  chat: turn 2 evaluated %d new prompt tokens, %d from the cache\n", p2 - c2, c2);
    json_decref(conv);
    CHECK(run("printf '/quit\\nhello\\n' | %s chat -m %s -n 2", bin, model) == 0 && !strstr(err, "tokens"), "/quit: %s", err);
}

/* ---- chat in a terminal (tmux) ---- */

static char sock[64];

__attribute__((format(printf, 1, 2))) static int tmux(const char *fmt, ...) {
    char cmd[4096], full[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "tmux -L %s %s >/dev/null 2>&1", sock, cmd);
    return system(full);
}

/* The pane's text (wrapped lines joined), trailing blank lines dropped. */
static const char *pane(void) {
    static char buf[1 << 16];
    char cmd[256];
    snprintf(cmd, sizeof cmd, "tmux -L %s capture-pane -p -J -S -500 -t chat 2>/dev/null", sock);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
    if (p) pclose(p);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
    buf[n] = 0;
    return buf;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

/* The last line is the empty prompt "> " (capture-pane drops its space). */
static int at_prompt(const char *s) {
    const char *last = strrchr(s, '\n');
    return !strcmp(last ? last + 1 : s, ">");
}

/* Polls the pane until cond(pane, arg) holds; returns 1, or 0 on timeout. */
static int wait_for(int (*cond)(const char *, int), int arg, double timeout_s) {
    for (double t0 = now(); now() - t0 < timeout_s; usleep(20000))
        if (cond(pane(), arg)) return 1;
    return 0;
}

static int stats_lines(const char *s, int n) { return count(s, " cached; ") >= n && at_prompt(s); }
static int interrupted(const char *s, int n) { (void)n; return strstr(s, "[interrupted after") && at_prompt(s); }
static int has_text(const char *s, int n) { (void)n; return strstr(s, "> hello") != NULL; }
static int prompt_shown(const char *s, int n) { (void)n; return at_prompt(s); }
static int exited(const char *s, int n) { (void)n; return strstr(s, "EXIT=") != NULL; }

/* Some answer text after the last "> MESSAGE" line. */
static int answering(const char *s, int n) {
    (void)n;
    const char *m = strstr(s, "> why is the sky blue");
    const char *nl = m ? strchr(m, '\n') : NULL;
    return nl && nl[1] && nl[1] != '[';
}

static void chat_tmux(void) {
    if (system("command -v tmux >/dev/null 2>&1")) {
        CHECK(0, "tmux is missing (tools/test.sh installs it)");
        return;
    }
    /* Answers of ~1.5 s at this build's speed, so that Ctrl-C lands mid-answer. */
    double t0 = now();
    run("%s run -m %s -p hi -n 0", bin, model);
    double t1 = now();
    run("%s run -m %s -p hi -n 48 --json-out", bin, model);
    double per_token = (now() - t1 - (t1 - t0)) / 48;
    int n = per_token > 0 ? (int)(1.5 / per_token) : 200;
    if (n < 24) n = 24;
    if (n > 1500) n = 1500;

    snprintf(sock, sizeof sock, "g4test%d", (int)getpid());
    double start = now();
    CHECK(tmux("new-session -d -s chat -x 160 -y 50 '%s chat -m %s -n %d --seed 7; echo EXIT=$?; sleep 60'", bin, model, n) == 0,
          "tmux new-session failed");
    int ok = wait_for(prompt_shown, 0, 30);
    CHECK(ok && strstr(pane(), "gemma4 chat"), "chat did not start: %s", pane());
    if (!ok) goto out;

    /* 1: an answer streams and ends at the token limit */
    tmux("send-keys -t chat 'hello' Enter");
    CHECK(wait_for(has_text, 0, 10), "the message did not show");
    ok = wait_for(stats_lines, 1, 60);
    CHECK(ok, "no complete answer: %s", pane());
    if (!ok) goto out;

    /* 2: /think on, then Ctrl-C in the middle of the answer */
    tmux("send-keys -t chat '/think on' Enter");
    CHECK(wait_for(prompt_shown, 0, 10) && strstr(pane(), "thinking on"), "/think on: %s", pane());
    tmux("send-keys -t chat 'why is the sky blue' Enter");
    ok = wait_for(answering, 0, 60);
    CHECK(ok, "the second answer did not start: %s", pane());
    tmux("send-keys -t chat C-c");
    ok = wait_for(interrupted, 0, 30);
    CHECK(ok, "Ctrl-C did not stop the answer and return to the prompt: %s", pane());
    if (!ok) goto out;

    /* 3: another message works after the interruption */
    tmux("send-keys -t chat 'one more' Enter");
    CHECK(wait_for(stats_lines, 2, 60), "no answer after Ctrl-C: %s", pane());

    /* 4: /quit leaves with status 0 */
    tmux("send-keys -t chat '/quit' Enter");
    CHECK(wait_for(exited, 0, 20) && strstr(pane(), "EXIT=0"), "chat did not exit cleanly: %s", pane());
    printf("  chat in tmux (answers of %d tokens): started, streamed, /think on, Ctrl-C, answered again, /quit: %.1f s\n", n,
           now() - start);
out:
    tmux("kill-server");
}

int main(void) {
    const char *b = getenv("GEMMA4") ? getenv("GEMMA4") : "build/gemma4";
    const char *t = getenv("G4_TOKENIZER_JSON") ? getenv("G4_TOKENIZER_JSON") : "build/tokenizer/tokenizer.json";
    if (!realpath(b, bin) || !realpath(t, tok)) {
        fprintf(stderr, "test_chat_cli: needs %s and %s (tools/fetch_tokenizer.sh)\n", b, t);
        return 1;
    }
    strcpy(tmp, "/tmp/g4chatXXXXXX");
    if (!mkdtemp(tmp)) return 1;
    snprintf(model, sizeof model, "%s/tiny.gguf", tmp);
    const char *helps[] = {"run", "chat", "tokenize", "detokenize", "synth"};
    for (size_t i = 0; i < sizeof helps / sizeof *helps; i++)
        CHECK(run("%s %s --help", bin, helps[i]) == 0 && strstr(out, "usage:"), "%s --help", helps[i]);
    CHECK(run("%s synth --arch tiny --type q8_0 --tokenizer %s -o %s", bin, tok, model) == 0, "synth: %s", err);

    tokenize();
    run_cmd();
    chat_piped();
    chat_tmux();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", tmp);
    return check_exit("test_chat_cli");
}
