/* Tests for src/io/safetensors.c and src/io/checkpoint.c: valid files load
 * with the right views, and every kind of malformed file fails with a message
 * that says what is wrong. Files are written into a fresh mkdtemp directory. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "scratch_dir.h"

static int failures;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            failures++;                                                        \
        }                                                                      \
    } while (0)


/* A file with an explicit header length (which may lie) and raw header bytes. */
static void write_raw(const char *path, uint64_t header_len, const char *header,
                      size_t header_bytes, const void *data, size_t data_bytes) {
    size_t n = 8 + header_bytes + data_bytes;
    unsigned char *buf = malloc(n ? n : 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(header_len >> (8 * i));
    memcpy(buf + 8, header, header_bytes);
    if (data_bytes)
        memcpy(buf + 8 + header_bytes, data, data_bytes);
    write_bytes(path, buf, n);
    free(buf);
}

/* A well-formed container: header padded with spaces to 8 bytes, as the
 * reference writer does, so the data section starts aligned. */
static void write_st(const char *path, const char *header, const void *data,
                     size_t data_bytes) {
    size_t len = strlen(header), padded = (len + 7) / 8 * 8;
    char *h = malloc(padded + 1);
    memcpy(h, header, len);
    memset(h + len, ' ', padded - len);
    write_raw(path, padded, h, padded, data, data_bytes);
    free(h);
}

/* st_open on path must fail, name the file, and mention want. */
static void check_fail_at(int line, const char *path, const char *want) {
    st_file *f = (st_file *)1;
    g4_error err = {{0}};
    int rc = st_open(path, &f, &err);
    if (rc != -1 || f != NULL || !strstr(err.msg, want) || !strstr(err.msg, path)) {
        fprintf(stderr, "%s:%d: expected failure containing \"%s\", got rc=%d msg=\"%s\"\n",
                __FILE__, line, want, rc, err.msg);
        failures++;
    }
    if (rc == 0)
        st_close(f);
}
#define CHECK_FAIL(path, want) check_fail_at(__LINE__, path, want)

/* Writes header + 64 zero data bytes and expects st_open to fail. */
static void check_header_fails_at(int line, const char *header, const char *want) {
    static const unsigned char zeros[64];
    const char *path = tmp_path("bad.safetensors");
    write_st(path, header, zeros, sizeof zeros);
    check_fail_at(line, path, want);
}
#define CHECK_HEADER_FAILS(header, want) check_header_fails_at(__LINE__, header, want)

static void test_valid(void) {
    unsigned char data[48] = {0};
    float f32[6] = {0, 1, 2, 3, 4, 5};
    uint16_t f16[4] = {0x3C00, 0xC000, 0x3800, 0x0000}; /* 1, -2, 0.5, 0 */
    uint16_t bf16[4] = {0x3F80, 0x4000, 0xBF80, 0x4040}; /* 1, 2, -1, 3 */
    int64_t scalar = 42;
    memcpy(data, f32, 24);
    memcpy(data + 24, f16, 8);
    memcpy(data + 32, bf16, 8);
    memcpy(data + 40, &scalar, 8);
    const char *path = tmp_path("valid.safetensors");
    /* Entries out of offset order, to check that st_tensor follows the file. */
    write_st(path,
             "{\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[32,40]},"
             "\"__metadata__\":{\"format\":\"pt\"},"
             "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
             "\"scalar\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[40,48]},"
             "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[40,40]},"
             "\"w.f16\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]}}",
             data, sizeof data);
    st_file *f = NULL;
    g4_error err = {{0}};
    CHECK(st_open(path, &f, &err) == 0);
    if (!f) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK(st_count(f) == 5);
    CHECK(strcmp(st_tensor(f, 0)->name, "w.f32") == 0);
    CHECK(strcmp(st_tensor(f, 1)->name, "w.f16") == 0);
    CHECK(strcmp(st_tensor(f, 2)->name, "w.bf16") == 0);
    CHECK(strcmp(st_tensor(f, 3)->name, "empty") == 0);
    CHECK(strcmp(st_tensor(f, 4)->name, "scalar") == 0);
    CHECK(st_tensor(f, 5) == NULL);

    const g4_tensor *t = st_find(f, "w.f32");
    CHECK(t && t->dtype == G4_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 2 &&
          t->shape[1] == 3 && t->numel == 6 && t->nbytes == 24);
    CHECK(t && memcmp(t->data, f32, 24) == 0 && ((const float *)t->data)[5] == 5.0f);
    CHECK(t && strcmp(t->name, "w.f32") == 0);

    t = st_find(f, "w.f16");
    CHECK(t && t->dtype == G4_DTYPE_F16 && t->ndim == 1 && t->shape[0] == 4 &&
          t->numel == 4 && t->nbytes == 8);
    CHECK(t && ((const uint16_t *)t->data)[1] == 0xC000);

    t = st_find(f, "w.bf16");
    CHECK(t && t->dtype == G4_DTYPE_BF16 && t->ndim == 2 && t->numel == 4);
    CHECK(t && memcmp(t->data, bf16, 8) == 0);
    /* Views point into the map: consecutive tensors are consecutive bytes. */
    CHECK(t && (const char *)t->data == (const char *)st_find(f, "w.f32")->data + 32);

    t = st_find(f, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 5 && t->numel == 0 &&
          t->nbytes == 0);
    t = st_find(f, "scalar");
    CHECK(t && t->dtype == G4_DTYPE_I64 && t->ndim == 0 && t->numel == 1 &&
          *(const int64_t *)t->data == 42);

    CHECK(st_find(f, "missing") == NULL);
    CHECK(st_find(f, "") == NULL);
    CHECK(st_metadata(f, "format") && strcmp(st_metadata(f, "format"), "pt") == 0);
    CHECK(st_metadata(f, "missing") == NULL);
    st_close(f);
    st_close(NULL);
}

static void test_empty_header_and_no_metadata(void) {
    const char *path = tmp_path("empty.safetensors");
    write_st(path, "{}", NULL, 0);
    st_file *f = NULL;
    g4_error err = {{0}};
    CHECK(st_open(path, &f, &err) == 0);
    if (!f)
        return;
    CHECK(st_count(f) == 0);
    CHECK(st_find(f, "x") == NULL);
    CHECK(st_metadata(f, "format") == NULL);
    st_close(f);
}

/* Thousands of tensors, as in a real checkpoint: every one is found. */
static void test_many_tensors(void) {
    enum { N = 3000 };
    size_t cap = (size_t)N * 80 + 16, len = 0;
    char *header = malloc(cap);
    unsigned char *data = malloc(N);
    len += (size_t)snprintf(header + len, cap - len, "{");
    for (int i = 0; i < N; i++) {
        data[i] = (unsigned char)(i * 7);
        len += (size_t)snprintf(header + len, cap - len,
                                "%s\"layers.%d.w\":{\"dtype\":\"U8\",\"shape\":[1],"
                                "\"data_offsets\":[%d,%d]}",
                                i ? "," : "", i, i, i + 1);
    }
    snprintf(header + len, cap - len, "}");
    const char *path = tmp_path("many.safetensors");
    write_st(path, header, data, N);
    st_file *f = NULL;
    g4_error err = {{0}};
    CHECK(st_open(path, &f, &err) == 0);
    if (f) {
        CHECK(st_count(f) == N);
        int all_found = 1;
        for (int i = 0; i < N; i++) {
            char name[32];
            snprintf(name, sizeof name, "layers.%d.w", i);
            const g4_tensor *t = st_find(f, name);
            if (!t || strcmp(t->name, name) != 0 ||
                *(const unsigned char *)t->data != (unsigned char)(i * 7))
                all_found = 0;
        }
        CHECK(all_found);
        st_close(f);
    }
    free(header);
    free(data);
}

static void test_bad_container(void) {
    const char *path = tmp_path("short.safetensors");
    write_bytes(path, "\x10\0\0\0", 4);
    CHECK_FAIL(path, "truncated");
    write_bytes(path, "", 0);
    CHECK_FAIL(path, "truncated");

    write_raw(path, 0, "", 0, "{}      ", 8);
    CHECK_FAIL(path, "header length is 0");
    write_raw(path, (uint64_t)200 << 20, "{}", 2, NULL, 0);
    CHECK_FAIL(path, "100 MiB limit");
    write_raw(path, 1000, "{}      ", 8, NULL, 0);
    CHECK_FAIL(path, "truncated");
    write_raw(path, UINT64_MAX, "{}      ", 8, NULL, 0);
    CHECK_FAIL(path, "limit");

    CHECK_FAIL(tmp_path("does-not-exist.safetensors"), "No such file");
    CHECK_FAIL(tmpdir, "not a regular file");
}

static void test_bad_json(void) {
    CHECK_HEADER_FAILS("{\"a\": ", "not valid JSON");
    CHECK_HEADER_FAILS("{\"a\":{}} trailing", "not valid JSON");
    CHECK_HEADER_FAILS("[1,2]", "not a JSON object");
    CHECK_HEADER_FAILS("\"str\"", "not a JSON object");
    CHECK_HEADER_FAILS("{\"a\":5}", "entry is not an object");
    CHECK_HEADER_FAILS("{\"a\":[]}", "entry is not an object");
    CHECK_HEADER_FAILS("{\"__metadata__\":[1]}", "__metadata__ is not an object");
    CHECK_HEADER_FAILS("{\"__metadata__\":{\"k\":1}}", "not a string");
}

static void test_bad_fields(void) {
    CHECK_HEADER_FAILS("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}",
                       "missing or non-string \"dtype\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}",
                       "missing or non-string \"dtype\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                       "unknown dtype \"F128\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                       "unknown dtype \"f32\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}",
                       "missing or non-array \"shape\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}",
                       "missing or non-array \"shape\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
                       "negative");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,4]}}",
                       "not an integer");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}",
                       "not an integer");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                       "\"data_offsets\":[0,4]}}", "9 dims");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],"
                       "\"data_offsets\":[0,4]}}", "element count overflows");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                       "\"data_offsets\":[0,4]}}", "byte size overflows");
    /* Too big for a 64-bit integer: jansson refuses it while parsing. */
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
                       "\"data_offsets\":[0,4]}}", "not valid JSON");
}

static void test_bad_offsets(void) {
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "\"data_offsets\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
                       "\"data_offsets\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}",
                       "\"data_offsets\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}",
                       "\"data_offsets\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}",
                       "\"data_offsets\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}",
                       "\"data_offsets\"");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}",
                       "begin 8 > end 4");
    /* The data section holds 64 bytes. */
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[32],\"data_offsets\":[0,128]}}",
                       "out of bounds");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[65,65]}}",
                       "out of bounds");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}",
                       "do not match");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,4]}}",
                       "do not match");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
                       "unaligned");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[1,3]}}",
                       "unaligned");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]}}",
                       "unaligned");
}

static void test_overlap_and_duplicates(void) {
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                       "overlaps");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]}}",
                       "overlaps");
    /* Inside an earlier, longer tensor, with an empty one between them in
     * offset order: comparing only neighbours would miss it. */
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
                       "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]},"
                       "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
                       "tensor 'c' overlaps tensor 'a'");
    CHECK_HEADER_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                       "duplicate");

    /* Empty tensors own no bytes, so sharing an offset is not an overlap. */
    static const unsigned char zeros[16];
    const char *path = tmp_path("touching.safetensors");
    write_st(path,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"e\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[4,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
             zeros, sizeof zeros);
    st_file *f = NULL;
    g4_error err = {{0}};
    CHECK(st_open(path, &f, &err) == 0);
    CHECK(f && st_count(f) == 3);
    st_close(f);
}

/* --- checkpoint directories --- */

static const char *make_dir(const char *name) {
    const char *p = tmp_path(name);
    if (mkdir(p, 0700) != 0) {
        perror(p);
        exit(2);
    }
    return p;
}

static void write_in(const char *dir, const char *name, const char *text) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_bytes(path, text, strlen(text));
}

static const float SHARD_DATA[4] = {1.5f, 2.5f, 3.5f, 4.5f};
#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"

/* shard 1 holds a (F32[2]) and b (F16[2]); shard 2 holds c (BF16[4]). */
static void write_shards(const char *dir, const char *extra_in_shard2) {
    char path[600], header[512];
    snprintf(path, sizeof path, "%s/" SHARD1, dir);
    write_st(path,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]}}",
             SHARD_DATA, 12);
    snprintf(path, sizeof path, "%s/" SHARD2, dir);
    snprintf(header, sizeof header,
             "{\"c\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}%s}",
             extra_in_shard2);
    write_st(path, header, SHARD_DATA + 2, 8);
}

static void check_ckpt_fail_at(int line, const char *dir, const char *want) {
    g4_checkpoint *c = (g4_checkpoint *)1;
    g4_error err = {{0}};
    int rc = ckpt_open(dir, &c, &err);
    if (rc != -1 || c != NULL || !strstr(err.msg, want)) {
        fprintf(stderr, "%s:%d: expected failure containing \"%s\", got rc=%d msg=\"%s\"\n",
                __FILE__, line, want, rc, err.msg);
        failures++;
    }
    if (rc == 0)
        ckpt_close(c);
}
#define CHECK_CKPT_FAIL(dir, want) check_ckpt_fail_at(__LINE__, dir, want)

#define INDEX_OK                                                               \
    "{\"metadata\":{\"total_size\":20},\"weight_map\":{\"a\":\"" SHARD1        \
    "\",\"b\":\"" SHARD1 "\",\"c\":\"" SHARD2 "\"}}"

static void test_checkpoint_single(void) {
    const char *dir = make_dir("single");
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_st(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
             SHARD_DATA, 16);
    g4_checkpoint *c = NULL;
    g4_error err = {{0}};
    CHECK(ckpt_open(dir, &c, &err) == 0);
    if (!c)
        return;
    CHECK(ckpt_count(c) == 1);
    CHECK(ckpt_total_bytes(c) == 16);
    const g4_tensor *t = ckpt_find(c, "x");
    CHECK(t && t == ckpt_tensor(c, 0) && ((const float *)t->data)[3] == 4.5f);
    CHECK(ckpt_find(c, "y") == NULL);
    CHECK(ckpt_tensor(c, 1) == NULL);
    ckpt_close(c);
    ckpt_close(NULL);
}

static void test_checkpoint_sharded(void) {
    const char *dir = make_dir("sharded");
    write_shards(dir, "");
    write_in(dir, "model.safetensors.index.json", INDEX_OK);
    g4_checkpoint *c = NULL;
    g4_error err = {{0}};
    CHECK(ckpt_open(dir, &c, &err) == 0);
    if (!c) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    CHECK(ckpt_count(c) == 3);
    CHECK(ckpt_total_bytes(c) == 20);
    CHECK(strcmp(ckpt_tensor(c, 0)->name, "a") == 0);
    CHECK(strcmp(ckpt_tensor(c, 1)->name, "b") == 0);
    CHECK(strcmp(ckpt_tensor(c, 2)->name, "c") == 0);
    const g4_tensor *a = ckpt_find(c, "a"), *cc = ckpt_find(c, "c");
    CHECK(a && a->dtype == G4_DTYPE_F32 && ((const float *)a->data)[1] == 2.5f);
    CHECK(cc && cc->dtype == G4_DTYPE_BF16 && memcmp(cc->data, SHARD_DATA + 2, 8) == 0);
    CHECK(ckpt_find(c, "d") == NULL);
    ckpt_close(c);
}

static void test_checkpoint_errors(void) {
    char want[600];
    const char *dir = make_dir("nothing");
    snprintf(want, sizeof want,
             "no model.safetensors or model.safetensors.index.json in %s", dir);
    CHECK_CKPT_FAIL(dir, want);
    CHECK_CKPT_FAIL(tmp_path("no-such-dir"), "No such file");
    CHECK_CKPT_FAIL(tmp_path("valid.safetensors"), "not a directory");

    dir = make_dir("missing-shard");
    write_shards(dir, "");
    write_in(dir, "model.safetensors.index.json",
             "{\"weight_map\":{\"a\":\"" SHARD1 "\",\"z\":\"model-00003.safetensors\"}}");
    CHECK_CKPT_FAIL(dir, "model-00003.safetensors: No such file");

    dir = make_dir("wrong-shard");
    write_shards(dir, "");
    write_in(dir, "model.safetensors.index.json",
             "{\"weight_map\":{\"a\":\"" SHARD1 "\",\"c\":\"" SHARD1 "\",\"b\":\"" SHARD2
             "\"}}");
    CHECK_CKPT_FAIL(dir, "but the index says");

    dir = make_dir("absent-tensor");
    write_shards(dir, "");
    write_in(dir, "model.safetensors.index.json",
             "{\"weight_map\":{\"a\":\"" SHARD1 "\",\"d\":\"" SHARD2 "\"}}");
    CHECK_CKPT_FAIL(dir, "tensor 'd' not found in shard '" SHARD2 "'");

    dir = make_dir("escape");
    write_shards(dir, "");
    write_in(dir, "model.safetensors.index.json",
             "{\"weight_map\":{\"a\":\"../single/model.safetensors\"}}");
    CHECK_CKPT_FAIL(dir, "not a plain file name");
    write_in(dir, "model.safetensors.index.json",
             "{\"weight_map\":{\"a\":\"/etc/passwd\"}}");
    CHECK_CKPT_FAIL(dir, "not a plain file name");
    write_in(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":\"..\"}}");
    CHECK_CKPT_FAIL(dir, "not a plain file name");

    dir = make_dir("dup-across");
    write_shards(dir, ",\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}");
    write_in(dir, "model.safetensors.index.json", INDEX_OK);
    CHECK_CKPT_FAIL(dir, "tensor 'a' is in both shard");

    dir = make_dir("bad-index");
    write_shards(dir, "");
    write_in(dir, "model.safetensors.index.json", "{\"weight_map\":");
    CHECK_CKPT_FAIL(dir, "invalid JSON");
    write_in(dir, "model.safetensors.index.json", "{\"metadata\":{}}");
    CHECK_CKPT_FAIL(dir, "\"weight_map\"");
    write_in(dir, "model.safetensors.index.json", "{\"weight_map\":{}}");
    CHECK_CKPT_FAIL(dir, "empty");
    write_in(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":1}}");
    CHECK_CKPT_FAIL(dir, "not a string");

    /* A corrupt shard reports the shard's own problem and path. */
    dir = make_dir("corrupt-shard");
    write_shards(dir, "");
    write_in(dir, SHARD2, "garbage");
    write_in(dir, "model.safetensors.index.json", INDEX_OK);
    CHECK_CKPT_FAIL(dir, SHARD2 ": truncated");
}

int main(void) {
    char template[] = "/tmp/g4_test_st_XXXXXX";
    scratch_dir_make(template);
    test_valid();
    test_empty_header_and_no_metadata();
    test_many_tensors();
    test_bad_container();
    test_bad_json();
    test_bad_fields();
    test_bad_offsets();
    test_overlap_and_duplicates();
    test_checkpoint_single();
    test_checkpoint_sharded();
    test_checkpoint_errors();
    scratch_dir_remove();
    if (failures) {
        fprintf(stderr, "test_safetensors: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_safetensors: all checks passed\n");
    return 0;
}
