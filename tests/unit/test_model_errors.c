/* Malformed checkpoints give a one-line error naming the problem, never a
 * crash: each case copies a good fixture into a temporary directory, breaks
 * one thing, and checks gemma4_model_load's message. */
#include "check.h"
#include "gemma4.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *base_dir;
static char tmp_dir[64];

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) { free(p); p = NULL; }
    fclose(f);
    if (p) { p[n] = 0; *len = (size_t)n; }
    return p;
}

static void put(const char *name, const void *data, size_t len) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

typedef struct checkpoint {
    char *config;
    size_t config_len;
    json_t *header;  /* the safetensors header, to edit */
    char *data;      /* the tensor bytes after the header */
    size_t data_len;
} checkpoint;

static int read_base(checkpoint *c) {
    char path[512];
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", base_dir);
    c->config = slurp(path, &c->config_len);
    snprintf(path, sizeof path, "%s/model.safetensors", base_dir);
    char *st = slurp(path, &len);
    if (!c->config || !st || len < 8) return -1;
    uint64_t n;
    memcpy(&n, st, 8);
    c->header = json_loadb(st + 8, (size_t)n, 0, NULL);
    c->data_len = len - 8 - (size_t)n;
    c->data = malloc(c->data_len);
    memcpy(c->data, st + 8 + n, c->data_len);
    free(st);
    return c->header ? 0 : -1;
}

/* Writes config.json and model.safetensors (header padded to 8 bytes, data
 * cut to data_len) into the temporary directory. */
static void write_checkpoint(const char *config, json_t *header, const char *data, size_t data_len) {
    put("config.json", config, strlen(config));
    char *h = json_dumps(header, JSON_COMPACT);
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8;
    size_t total = 8 + padded + data_len;
    char *buf = malloc(total);
    uint64_t n = padded;
    memcpy(buf, &n, 8);
    memcpy(buf + 8, h, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    memcpy(buf + 8 + padded, data, data_len);
    put("model.safetensors", buf, total);
    free(buf);
    free(h);
}

/* Loads the temporary checkpoint and expects failure mentioning `want`. */
static void expect_error(const char *what, const char *want) {
    gemma4_model *m = NULL;
    int rc = gemma4_model_load(tmp_dir, &m);
    const char *msg = gemma4_last_error();
    CHECK(rc != 0, "%s: load succeeded", what);
    CHECK(rc == 0 || strstr(msg, want) != NULL, "%s: message \"%s\" does not mention \"%s\"", what, msg, want);
    CHECK(rc == 0 || strchr(msg, '\n') == NULL, "%s: message is not one line", what);
    if (rc == 0) gemma4_model_free(m);
    else printf("  %-34s -> %s\n", what, msg);
}

static json_t *tensor(checkpoint *c, const char *name) { return json_object_get(c->header, name); }

int main(int argc, char **argv) {
    base_dir = argc > 1 ? argv[1] : "tests/fixtures/dense";
    checkpoint c;
    if (read_base(&c)) { fprintf(stderr, "cannot read %s\n", base_dir); return 1; }
    strcpy(tmp_dir, "/tmp/g4errXXXXXX");
    if (!mkdtemp(tmp_dir)) return 1;
    const char *prefix = tensor(&c, "model.language_model.embed_tokens.weight") ? "model.language_model." : "model.";
    char q[128], up1[128], want_up1[160];
    snprintf(q, sizeof q, "%slayers.0.self_attn.q_proj.weight", prefix);
    snprintf(up1, sizeof up1, "%slayers.1.mlp.up_proj.weight", prefix);
    snprintf(want_up1, sizeof want_up1, "missing tensor %s", up1);
    if (!tensor(&c, q)) { fprintf(stderr, "%s lacks %s\n", base_dir, q); return 1; }

    /* the untouched copy loads */
    write_checkpoint(c.config, c.header, c.data, c.data_len);
    gemma4_model *m = NULL;
    CHECK(gemma4_model_load(tmp_dir, &m) == 0, "good copy: %s", gemma4_last_error());
    gemma4_model_free(m);

    write_checkpoint(c.config, c.header, c.data, c.data_len / 2);
    expect_error("truncated data", "out of bounds");

    { /* a header that points past the data */
        json_t *h = json_deep_copy(c.header), *off = json_object_get(json_object_get(h, q), "data_offsets");
        json_array_set_new(off, 0, json_integer(c.data_len + 64));
        json_array_set_new(off, 1, json_integer(c.data_len + 64 + 4));
        write_checkpoint(c.config, h, c.data, c.data_len);
        expect_error("offsets past the end", "out of bounds");
        json_decref(h);
    }
    { /* a missing tensor */
        json_t *h = json_deep_copy(c.header);
        json_object_del(h, up1);
        write_checkpoint(c.config, h, c.data, c.data_len);
        expect_error("missing tensor", want_up1);
        json_decref(h);
    }
    { /* the same bytes with transposed dims */
        json_t *h = json_deep_copy(c.header), *shape = json_object_get(json_object_get(h, q), "shape");
        json_t *a = json_incref(json_array_get(shape, 0)), *b = json_incref(json_array_get(shape, 1));
        json_array_set_new(shape, 0, b);
        json_array_set_new(shape, 1, a);
        write_checkpoint(c.config, h, c.data, c.data_len);
        expect_error("wrong shape", "has shape");
        json_decref(h);
    }
    { /* a dtype safetensors does not define */
        json_t *h = json_deep_copy(c.header);
        json_object_set_new(json_object_get(h, q), "dtype", json_string("Q4_Z"));
        write_checkpoint(c.config, h, c.data, c.data_len);
        expect_error("unknown dtype", "unknown dtype \"Q4_Z\"");
        json_decref(h);
    }
    { /* a known dtype that cannot be a weight */
        json_t *h = json_deep_copy(c.header);
        json_object_set_new(json_object_get(h, q), "dtype", json_string("I32"));
        write_checkpoint(c.config, h, c.data, c.data_len);
        expect_error("integer weights", "has dtype I32; weights must be F32, F16, BF16 or a GGML quantised type");
        json_decref(h);
    }

    /* bad configs, with good weights */
    struct { const char *what, *from, *to, *want; } cfgs[] = {
        {"config not JSON", "{", "[[", "invalid JSON"},
        {"hidden_size missing", "\"hidden_size\"", "\"hidden_size_x\"", "missing hidden_size"},
        {"hidden_size a string", "\"hidden_size\": ", "\"hidden_size\": \"64\", \"x\": ", "hidden_size must be an integer"},
        {"negative heads", "\"num_attention_heads\": ", "\"num_attention_heads\": -4, \"x\": ", "num_attention_heads = -4 is out of range"},
        {"unknown layer type", "\"sliding_attention\"", "\"chunked_attention\"", "chunked_attention"},
        {"heads not a kv multiple", "\"num_key_value_heads\": ", "\"num_key_value_heads\": 3, \"x\": ", "not a multiple"},
        {"unsupported rope", "\"proportional\"", "\"yarn\"", "unsupported rope_type \"yarn\""},
        {"hidden size disagrees", "\"hidden_size\": ", "\"hidden_size\": 96, \"x\": ", "has shape"},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        const char *at = strstr(c.config, cfgs[i].from);
        CHECK(at != NULL, "base config lacks %s", cfgs[i].from);
        if (!at) continue;
        char *cfg = malloc(c.config_len + strlen(cfgs[i].to) + 1);
        size_t pre = (size_t)(at - c.config);
        memcpy(cfg, c.config, pre);
        strcpy(cfg + pre, cfgs[i].to);
        strcat(cfg, at + strlen(cfgs[i].from));
        write_checkpoint(cfg, c.header, c.data, c.data_len);
        expect_error(cfgs[i].what, cfgs[i].want);
        free(cfg);
    }

    { /* no weights at all */
        char path[256];
        snprintf(path, sizeof path, "%s/model.safetensors", tmp_dir);
        unlink(path);
        expect_error("no safetensors", "no model.safetensors");
        snprintf(path, sizeof path, "%s/config.json", tmp_dir);
        unlink(path);
        expect_error("no config.json", "config.json");
    }
    rmdir(tmp_dir);
    expect_error("no such directory", "no such file");

    json_decref(c.header);
    free(c.data);
    free(c.config);
    return check_exit("test_model_errors");
}
