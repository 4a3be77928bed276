/* The streaming output parser on hand-written Gemma 4 outputs (every
 * thought / tool-call / end shape and the known slips), each fed whole, one
 * byte at a time and in random pieces with identical results; value syntax
 * <-> JSON round trips; and stop strings across pieces. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "chat/output_parser.h"
#include "chat/stop.h"
#include "chat/strbuf.h"
#include "chat/value_syntax.h"
#include "check.h"

/* Events rendered as one string, adjacent text events merged:
 * C[content] T[thought] K[name|arguments] E[marker]. */
typedef struct {
    g4_strbuf s;
    char last; /* kind letter of the open text event, 0 if none */
} transcript;

static void on_event(void *user, const g4_chat_event *ev) {
    transcript *t = user;
    char kind = ev->kind == G4_CHAT_CONTENT ? 'C' : ev->kind == G4_CHAT_THOUGHT ? 'T' : 0;
    if (kind && kind == t->last) { /* extend the open text event */
        t->s.len--;
        g4_strbuf_append(&t->s, ev->text, ev->len);
        g4_strbuf_putc(&t->s, ']');
        return;
    }
    t->last = kind;
    switch (ev->kind) {
    case G4_CHAT_CONTENT:
    case G4_CHAT_THOUGHT:
        g4_strbuf_putc(&t->s, kind);
        g4_strbuf_putc(&t->s, '[');
        g4_strbuf_append(&t->s, ev->text, ev->len);
        g4_strbuf_putc(&t->s, ']');
        break;
    case G4_CHAT_TOOL_CALL:
        g4_strbuf_puts(&t->s, "K[");
        g4_strbuf_puts(&t->s, ev->name);
        g4_strbuf_putc(&t->s, '|');
        g4_strbuf_puts(&t->s, ev->arguments);
        g4_strbuf_putc(&t->s, ']');
        break;
    case G4_CHAT_END:
        g4_strbuf_puts(&t->s, "E[");
        g4_strbuf_append(&t->s, ev->text, ev->len);
        g4_strbuf_putc(&t->s, ']');
        break;
    }
}

/* Parses text cut into pieces of the given sizes (0 = whole); returns the transcript. */
static char *parse_in_pieces(const char *text, bool in_thought, size_t piece, unsigned seed) {
    transcript t = {0};
    g4_chat_parser_options opt = {.start_in_thought = in_thought};
    g4_chat_parser *p = g4_chat_parser_new(&opt, on_event, &t);
    g4_error err = {{0}};
    size_t n = strlen(text);
    for (size_t i = 0; i < n;) {
        size_t k = piece ? piece : n;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 7;
        }
        if (k > n - i) k = n - i;
        CHECK(g4_chat_parser_feed(p, text + i, k, &err) == 0, "feed failed: %s", err.msg);
        i += k;
    }
    CHECK(g4_chat_parser_finish(p, &err) == 0, "finish failed: %s", err.msg);
    g4_chat_parser_free(p);
    return g4_strbuf_take(&t.s);
}

typedef struct {
    const char *what, *output;
    bool in_thought;
    const char *want;
} parser_case;

static const parser_case cases[] = {
    {"plain content", "Hello world.<turn|>", false, "C[Hello world.]E[<turn|>]"},
    {"thought then answer", "<|channel>thought\nLet me think.<channel|>The answer is 4.<turn|>", false,
     "T[Let me think.]C[The answer is 4.]E[<turn|>]"},
    {"empty thought is no thought", "<|channel>thought\n<channel|>Hi<turn|>", false, "C[Hi]E[<turn|>]"},
    {"thought without newline", "<|channel>thought<channel|>x<turn|>", false, "C[x]E[<turn|>]"},
    {"prompt pre-filled the thought", "reasoning here<channel|>Answer<turn|>", true,
     "T[reasoning here]C[Answer]E[<turn|>]"},
    {"tool call", "<|tool_call>call:get_weather{city:<|\"|>London<|\"|>,unit:<|\"|>c<|\"|>}<tool_call|><|tool_response>",
     false, "K[get_weather|{\"city\":\"London\",\"unit\":\"c\"}]E[<|tool_response>]"},
    {"thought and parallel calls",
     "<|channel>thought\nNeed two.<channel|><|tool_call>call:a{x:1}<tool_call|><|tool_call>call:b{y:[1,2.5,true,null],"
     "z:{n:<|\"|>q<|\"|>}}<tool_call|><|tool_response>",
     false, "T[Need two.]K[a|{\"x\":1}]K[b|{\"y\":[1,2.5,true,null],\"z\":{\"n\":\"q\"}}]E[<|tool_response>]"},
    {"values of every kind",
     "<|tool_call>call:say{text:<|\"|>{not: json}, [x] \"q\"<|\"|>,n:-3,f:1e-05,g:0.1,w:bare word,big:99999999999999999999,"
     "e:<|\"|><|\"|>,l:[],o:{}}<tool_call|>",
     false,
     "K[say|{\"text\":\"{not: json}, [x] \\\"q\\\"\",\"n\":-3,\"f\":1e-05,\"g\":0.1,\"w\":\"bare word\",\"big\":1e+20,"
     "\"e\":\"\",\"l\":[],\"o\":{}}]"},
    {"unicode in a call", "<|tool_call>call:translate{text:<|\"|>héllo ✓ 你好<|\"|>}<tool_call|>", false,
     "K[translate|{\"text\":\"héllo ✓ 你好\"}]"},
    {"JSON slip inside a call", "<|tool_call>call:f{\"city\":\"Paris\",\"n\":2}<tool_call|>", false,
     "K[f|{\"city\":\"Paris\",\"n\":2}]"},
    {"missing <|tool_call> after a thought", "<|channel>thought\nhmm<channel|>call:f{a:<|\"|>x<|\"|>}<tool_call|><|tool_response>",
     false, "T[hmm]K[f|{\"a\":\"x\"}]E[<|tool_response>]"},
    {"bare call at the start (empty-thought prefill)", "call:f{}<tool_call|><|tool_response>", false,
     "K[f|{}]E[<|tool_response>]"},
    {"bare call ended by <|tool_response>", "<|channel>thought\nx<channel|>call:f{a:1}<|tool_response>", false,
     "T[x]K[f|{\"a\":1}]E[<|tool_response>]"},
    {"bare call text ended by <turn|> stays content", "<|channel>thought\nx<channel|>call:f{a:1}<turn|>", false,
     "T[x]C[call:f{a:1}]E[<turn|>]"},
    {"whitespace before a bare call", "<|channel>thought\nx<channel|>\ncall:f{}<tool_call|>", false,
     "T[x]C[\n]K[f|{}]"},
    {"\"call:\" that is not a call", "call: me maybe<turn|>", false, "C[call: me maybe]E[<turn|>]"},
    {"a marker right after \"call:\" still counts", "<|channel>thought\nx<channel|>call:<channel|>f<turn|>", false,
     "T[x]C[call:f]E[<turn|>]"},
    {"stray <channel|>", "thinking text<channel|>Answer<turn|>", false, "C[thinking textAnswer]E[<turn|>]"},
    {"trailing garbage after the last call", "<|tool_call>call:f{a:1}<tool_call|>garbage text<turn|>", false,
     "K[f|{\"a\":1}]C[garbage text]E[<turn|>]"},
    {"garbage after the closing brace", "<|tool_call>call:f{a:1} oops<tool_call|>", false,
     "K[f|{\"a\":1}]C[ oops]"},
    {"unterminated call at the end", "<|tool_call>call:f{a:<|\"|>b<|\"|>}", false, "K[f|{\"a\":\"b\"}]"},
    {"unterminated call cut by <turn|>", "<|tool_call>call:f{a:2}<turn|>", false, "K[f|{\"a\":2}]E[<turn|>]"},
    {"incomplete call at the end is content", "<|tool_call>call:f{a:<|\"|>b", false,
     "C[<|tool_call>call:f{a:<|\"|>b]"},
    {"unparseable call is content", "<|tool_call>not a call<tool_call|>more<turn|>", false,
     "C[<|tool_call>not a call<tool_call|>more]E[<turn|>]"},
    {"a new call while one is open", "<|tool_call>call:f{a:1}<|tool_call>call:g{}<tool_call|>", false,
     "K[f|{\"a\":1}]K[g|{}]"},
    {"call inside an unclosed thought", "<|channel>thought\nplan<|tool_call>call:f{}<tool_call|><|tool_response>", false,
     "T[plan]K[f|{}]E[<|tool_response>]"},
    {"stray <tool_call|> is kept", "a<tool_call|>b<turn|>", false, "C[a<tool_call|>b]E[<turn|>]"},
    {"marker look-alikes", "a < b, <|turn> <tool> <eos <chan <turn|", false,
     "C[a < b, <|turn> <tool> <eos <chan <turn|]"},
    {"<eos> ends, later text ignored", "Done<eos>ignored", false, "C[Done]E[<eos>]"},
    {"thought cut off by <turn|>", "<|channel>thought\nstill thinking<turn|>", false,
     "T[still thinking]E[<turn|>]"},
    {"no output at all", "", false, ""},
};

static void test_parser_cases(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const parser_case *c = &cases[i];
        char *whole = parse_in_pieces(c->output, c->in_thought, 0, 0);
        char *bytes = parse_in_pieces(c->output, c->in_thought, 1, 0);
        char *random = parse_in_pieces(c->output, c->in_thought, 0, 7u + (unsigned)i);
        CHECK(strcmp(whole, c->want) == 0, "%s:\n  want %s\n  got  %s", c->what, c->want, whole);
        CHECK(strcmp(bytes, whole) == 0, "%s: byte-at-a-time differs:\n  %s\n  %s", c->what, bytes, whole);
        CHECK(strcmp(random, whole) == 0, "%s: random pieces differ:\n  %s\n  %s", c->what, random, whole);
        free(whole);
        free(bytes);
        free(random);
    }
}

static void test_value_round_trips(void) {
    const char *docs[] = {
        "{\"a\":1,\"b\":\"s\",\"c\":[1,2,{\"d\":null}],\"e\":true,\"f\":0.5,\"g\":-1e-07,\"h\":{\"Z\":\"x\",\"a\":\"y\"}}",
        "{\"i\":\"\",\"j\":[],\"k\":{},\"unicode\":\"h\\u00e9llo \\u2713\",\"quotes\":\"say \\\"hi\\\", {x}: [y]\"}",
        "{\"nums\":[0,-0.0,1e+300,5e-324,123.456,1e16,1e15,9007199254740993],\"nested\":[[[[]]]],\"f\":false}",
        "{\"multiline\":\"a\\nb\\tc\",\"spaces\":\"  padded  \",\"digits\":\"0123\",\"word\":\"true\"}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        g4_error err = {{0}};
        char *gemma = g4_value_from_json(docs[i], false, &err);
        CHECK(gemma != NULL, "from_json %zu: %s", i, err.msg);
        if (!gemma) continue;
        char *back = g4_value_to_json(gemma, strlen(gemma), &err);
        CHECK(back != NULL, "to_json %zu (%s): %s", i, gemma, err.msg);
        json_t *a = json_loads(docs[i], 0, NULL), *b = back ? json_loads(back, 0, NULL) : NULL;
        CHECK(b && json_equal(a, b), "round trip %zu:\n  %s\n  %s\n  %s", i, docs[i], gemma, back ? back : "");
        /* And again: Gemma text -> JSON -> Gemma text is stable. */
        char *gemma2 = back ? g4_value_from_json(back, false, &err) : NULL;
        CHECK(gemma2 && strcmp(gemma, gemma2) == 0, "not stable %zu: %s vs %s", i, gemma, gemma2 ? gemma2 : "");
        json_decref(a);
        json_decref(b);
        free(gemma);
        free(gemma2);
        free(back);
    }
}

static void test_value_format(void) {
    struct { const char *json; bool quote; const char *want; } f[] = {
        {"{\"b\":1,\"A\":2,\"a\":3}", false, "{A:2,a:3,b:1}"},
        {"{\"b\":1,\"A\":[\"x\"]}", true, "{<|\"|>A<|\"|>:[<|\"|>x<|\"|>],<|\"|>b<|\"|>:1}"},
        {"[null,true,false,\"\"]", false, "[null,true,false,<|\"|><|\"|>]"},
        {"[0.1,1e16,1e15,1e-5,0.0001,-0.0,123.456,5e-324,1.7976931348623157e308,2.5,100.0,3]", false,
         "[0.1,1e+16,1000000000000000.0,1e-05,0.0001,-0.0,123.456,5e-324,1.7976931348623157e+308,2.5,100.0,3]"},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        g4_error err = {{0}};
        char *got = g4_value_from_json(f[i].json, f[i].quote, &err);
        CHECK(got && strcmp(got, f[i].want) == 0, "format %zu: want %s got %s", i, f[i].want, got ? got : err.msg);
        free(got);
    }
    struct { const char *gemma, *want; } p[] = {
        {"{a:1,b:[x, y ],c:<|\"|>z<|\"|>}", "{\"a\":1,\"b\":[\"x\",\"y\"],\"c\":\"z\"}"},
        {" {<|\"|>quoted key<|\"|>:{inner:-2.50}} ", "{\"quoted key\":{\"inner\":-2.5}}"},
        {"[1,,2,]", "[1,2]"},
        {"{f:0.1,i:+7,s:1.2.3,n:null}", "{\"f\":0.1,\"i\":7,\"s\":\"1.2.3\",\"n\":null}"},
        {"<|\"|>line\nbreak<|\"|>", "\"line\\nbreak\""},
    };
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) {
        g4_error err = {{0}};
        char *got = g4_value_to_json(p[i].gemma, strlen(p[i].gemma), &err);
        CHECK(got && strcmp(got, p[i].want) == 0, "parse %zu: want %s got %s", i, p[i].want, got ? got : err.msg);
        free(got);
    }
    const char *bad[] = {"{a:", "{a:<|\"|>x}", "{:1}", "[<|\"|>x<|\"|>y]", "{a 1}", "", "{a:1} extra", "{a:{b:}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        g4_error err = {{0}};
        char *got = g4_value_to_json(bad[i], strlen(bad[i]), &err);
        CHECK(got == NULL && err.msg[0], "accepted bad value %s", bad[i]);
        free(got);
    }
    char deep[200];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    g4_error err = {{0}};
    CHECK(g4_value_to_json(deep, strlen(deep), &err) == NULL, "deep nesting accepted");
}

/* Feeds pieces through a stop matcher and returns everything released. */
static char *stop_run(const char *const *stops, size_t n_stops, const char *text, size_t piece, int *matched) {
    g4_error err = {{0}};
    g4_stop_matcher *m = g4_stop_new(stops, n_stops, &err);
    CHECK(m != NULL, "stop_new: %s", err.msg);
    g4_strbuf all = {0};
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += piece) {
        size_t k = piece < n - i ? piece : n - i;
        const char *out;
        size_t len;
        int rc = g4_stop_feed(m, text + i, k, &out, &len, &err);
        CHECK(rc >= 0, "stop_feed: %s", err.msg);
        g4_strbuf_append(&all, out, len);
    }
    const char *out;
    size_t len;
    g4_stop_flush(m, &out, &len);
    g4_strbuf_append(&all, out, len);
    *matched = g4_stop_which(m);
    g4_stop_free(m);
    return g4_strbuf_take(&all);
}

static void test_stop_strings(void) {
    struct { const char *stops[3]; size_t n; const char *text, *want; int which; } s[] = {
        {{"STOP"}, 1, "abcSTOPxyz", "abc", 0},
        {{"STOP"}, 1, "no stop here, ST only", "no stop here, ST only", -1},
        {{"STOP"}, 1, "STSTOP", "ST", 0},
        {{"\n\n", "User:"}, 2, "line one\nline two\n\nUser: more", "line one\nline two", 0},
        {{"User:", "\n\n"}, 2, "answer User: hi\n\n", "answer ", 0},
        {{"abcd", "bc"}, 2, "xabcd", "xa", 1},
        {{"end"}, 1, "end", "", 0},
        {{"ü"}, 1, "grün", "gr", 0},
    };
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
        for (size_t piece = 1; piece <= 4; piece += 3) {
            int which = -2;
            char *got = stop_run(s[i].stops, s[i].n, s[i].text, piece, &which);
            CHECK(strcmp(got, s[i].want) == 0, "stop case %zu piece %zu: want [%s] got [%s]", i, piece, s[i].want, got);
            CHECK(which == s[i].which, "stop case %zu piece %zu: stop %d, want %d", i, piece, which, s[i].which);
            free(got);
        }
        int which;
        char *whole = stop_run(s[i].stops, s[i].n, s[i].text, strlen(s[i].text) + 1, &which);
        CHECK(strcmp(whole, s[i].want) == 0, "stop case %zu whole: want [%s] got [%s]", i, s[i].want, whole);
        free(whole);
    }
    const char *empty[] = {""};
    g4_error err = {{0}};
    CHECK(g4_stop_new(empty, 1, &err) == NULL && err.msg[0], "empty stop string accepted");
}

int main(void) {
    test_parser_cases();
    test_value_round_trips();
    test_value_format();
    test_stop_strings();
    return check_exit("test_chat_parser");
}
