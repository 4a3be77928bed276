/* The gemma4 binary as a user runs it: --help everywhere, the logits and
 * generate commands against a reference fixture, and one-line errors with a
 * non-zero exit status for bad input. */
#include "check.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *bin, *fixture;

/* Runs a shell command; captures stdout and stderr; returns the exit status. */
static int run(const char *cmd, char *out, size_t out_len, char *err, size_t err_len) {
    char full[4096];
    snprintf(full, sizeof full, "%s 2>/tmp/g4cli_err.txt", cmd);
    FILE *p = popen(full, "r");
    size_t n = p ? fread(out, 1, out_len - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    FILE *e = fopen("/tmp/g4cli_err.txt", "r");
    n = e ? fread(err, 1, err_len - 1, e) : 0;
    err[n] = 0;
    if (e) fclose(e);
    remove("/tmp/g4cli_err.txt");
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static char *join_ids(json_t *arr) {
    static char buf[8192];
    buf[0] = 0;
    for (size_t i = 0; i < json_array_size(arr); i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%lld", i ? "," : "", (long long)json_integer_value(json_array_get(arr, i)));
    return buf;
}

int main(void) {
    bin = getenv("GEMMA4") ? getenv("GEMMA4") : "build/gemma4";
    fixture = getenv("G4_CLI_FIXTURE") ? getenv("G4_CLI_FIXTURE") : "tests/fixtures/e-like";
    char out[65536], err[8192], cmd[16384];

    const char *helps[] = {"--help", "info --help", "logits --help", "generate --help", "bench --help"};
    for (size_t i = 0; i < sizeof helps / sizeof *helps; i++) {
        snprintf(cmd, sizeof cmd, "%s %s", bin, helps[i]);
        CHECK(run(cmd, out, sizeof out, err, sizeof err) == 0 && strstr(out, "usage:"), "%s: no usage text", helps[i]);
    }

    char path[512];
    snprintf(path, sizeof path, "%s/case.json", fixture);
    json_t *cs = json_load_file(path, 0, NULL);
    CHECK(cs != NULL, "cannot read %s", path);
    if (!cs) return check_exit("test_cli");
    char ids[8192];
    snprintf(ids, sizeof ids, "%s", join_ids(json_object_get(cs, "input_ids")));

    snprintf(cmd, sizeof cmd, "%s info -m %s", bin, fixture);
    CHECK(run(cmd, out, sizeof out, err, sizeof err) == 0 && strstr(out, "parameters"), "info failed: %s", err);

    /* greedy generation through the KV cache equals the reference continuation */
    snprintf(cmd, sizeof cmd, "%s generate -m %s --ids %s -n 24 --temp 0 --ignore-eos", bin, fixture, ids);
    int rc = run(cmd, out, sizeof out, err, sizeof err);
    char want[8192];
    snprintf(want, sizeof want, "%s\n", join_ids(json_object_get(cs, "greedy")));
    for (char *p = want; *p; p++) if (*p == ',') *p = ' ';
    CHECK(rc == 0 && strcmp(out, want) == 0, "generate printed \"%s\", expected \"%s\" (%s)", out, want, err);

    /* logits to a file: the reference's values, token by token and in one shot */
    const char *modes[] = {"", "--batch 1"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, "%s logits -m %s --ids %s -o /tmp/g4cli_logits.f32 %s", bin, fixture, ids, modes[k]);
        rc = run(cmd, out, sizeof out, err, sizeof err);
        CHECK(rc == 0, "logits %s failed: %s", modes[k], err);
        snprintf(path, sizeof path, "%s/%s", fixture, "logits.f32");
        FILE *a = fopen("/tmp/g4cli_logits.f32", "rb"), *b = fopen(path, "rb");
        float x, y, worst = 0;
        long n = 0;
        while (a && b && fread(&x, 4, 1, a) == 1 && fread(&y, 4, 1, b) == 1) {
            n++;
            if (!(fabsf(x - y) <= worst)) worst = fabsf(x - y);
        }
        CHECK(a && b && fread(&x, 4, 1, a) == 0 && fread(&y, 4, 1, b) == 0 && n > 0, "logits file length differs");
        CHECK(worst <= 2e-3f, "logits %s: max |dlogit| %g", modes[k], worst);
        if (a) fclose(a);
        if (b) fclose(b);
        remove("/tmp/g4cli_logits.f32");
    }

    /* bad input: non-zero exit and exactly one line on stderr */
    struct { const char *args, *want; } bad[] = {
        {"", "usage"},
        {"frobnicate", "unknown command"},
        {"generate -m /nonexistent --ids 1,2", "no such file"},
        {"generate --ids 1,2", "no model"},
        {"generate -m FIX --ids 1,x,2", "token ids"},
        {"generate -m FIX --ids 2,99999999", "out of range"},
        {"generate -m FIX --ids 2,3 --temp -1", "--temp"},
        {"generate -m FIX --ids 2,3 -n", "needs a value"},
        {"logits -m FIX --ids 2,3", "required"},
        {"logits -m FIX --ids 2,3 -o /nonexistent-dir/x.f32", "/nonexistent-dir/x.f32"},
        {"info -m FIX --bogus", "unknown option"},
        {"generate -m FIX --ids 2,3 --kv-cache bf16", "--kv-cache takes f32 or f16"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[1024] = "";
        const char *a = bad[i].args, *fx = strstr(a, "FIX");
        if (fx) snprintf(args, sizeof args, "%.*s%s%s", (int)(fx - a), a, fixture, fx + 3);
        else snprintf(args, sizeof args, "%s", a);
        snprintf(cmd, sizeof cmd, "%s %s", bin, args);
        rc = run(cmd, out, sizeof out, err, sizeof err);
        int lines = count_lines(err);
        CHECK(rc != 0, "\"%s\" exited 0", args);
        CHECK(strstr(err, bad[i].want) != NULL, "\"%s\": stderr \"%s\" lacks \"%s\"", args, err, bad[i].want);
        CHECK(lines == 1 || bad[i].args[0] == 0 || strstr(bad[i].args, "frobnicate"), "\"%s\": %d lines on stderr", args, lines);
    }
    json_decref(cs);
    return check_exit("test_cli");
}
