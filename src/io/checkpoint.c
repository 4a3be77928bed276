#include "io/checkpoint.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"

static const char INDEX_NAME[] = "model.safetensors.index.json";
static const char SINGLE_NAME[] = "model.safetensors";

/* A tensor and the shard it was found in, so the index can be checked. */
typedef struct ckpt_ref {
    const g4_tensor *tensor;
    size_t shard;
} ckpt_ref;

struct g4_checkpoint {
    size_t shard_count;
    st_file **shards;
    char **shard_names; /* file names as in the index, for messages */
    size_t count;
    const g4_tensor **tensors; /* shard by shard, file order */
    ckpt_ref *by_name;         /* sorted by tensor name */
    uint64_t total_bytes;
};

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + 1 + b + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_ref_name(const void *a, const void *b) {
    const ckpt_ref *x = a, *y = b;
    return strcmp(x->tensor->name, y->tensor->name);
}

static int cmp_key_ref(const void *key, const void *elem) {
    const ckpt_ref *r = elem;
    return strcmp(key, r->tensor->name);
}

static const ckpt_ref *find_ref(const g4_checkpoint *c, const char *name) {
    if (c->count == 0)
        return NULL;
    return bsearch(name, c->by_name, c->count, sizeof *c->by_name, cmp_key_ref);
}

/* The index comes from the network; a name like "../../x" must not make us
 * map files outside the checkpoint directory. */
static int check_shard_name(const char *index_path, const char *name, g4_error *err) {
    if (name[0] == '\0' || strchr(name, '/') || strstr(name, ".."))
        return g4_fail(err, "%s: shard file name '%s' is not a plain file name "
                       "(path components are not allowed)", index_path, name);
    return 0;
}

/* Appends one mapped shard; takes ownership of f. */
static int add_shard(g4_checkpoint *c, const char *name, st_file *f, g4_error *err) {
    char *copy = strdup(name);
    if (!copy) {
        st_close(f);
        return g4_fail(err, "out of memory");
    }
    c->shards[c->shard_count] = f;
    c->shard_names[c->shard_count] = copy;
    c->shard_count++;
    return 0;
}

static int open_shard(g4_checkpoint *c, const char *dir, const char *name,
                      g4_error *err) {
    char *path = join_path(dir, name);
    if (!path)
        return g4_fail(err, "out of memory");
    st_file *f;
    int rc = st_open(path, &f, err);
    free(path);
    if (rc != 0)
        return -1;
    return add_shard(c, name, f, err);
}

static int alloc_shards(g4_checkpoint *c, size_t n, g4_error *err) {
    c->shards = calloc(n ? n : 1, sizeof *c->shards);
    c->shard_names = calloc(n ? n : 1, sizeof *c->shard_names);
    if (!c->shards || !c->shard_names)
        return g4_fail(err, "out of memory");
    return 0;
}

/* Opens the shards named by weight_map, each once, in name order. */
static int open_indexed_shards(g4_checkpoint *c, const char *dir,
                               const char *index_path, const json_t *weight_map,
                               g4_error *err) {
    size_t n = json_object_size(weight_map);
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        return g4_fail(err, "out of memory");
    size_t k = 0;
    const char *tensor;
    json_t *v;
    int rc = 0;
    json_object_foreach((json_t *)weight_map, tensor, v) {
        if (!json_is_string(v)) {
            rc = g4_fail(err, "%s: weight_map entry for '%s' is not a string",
                         index_path, tensor);
            goto done;
        }
        if ((rc = check_shard_name(index_path, json_string_value(v), err)) != 0)
            goto done;
        names[k++] = json_string_value(v);
    }
    qsort(names, k, sizeof *names, cmp_str);
    size_t unique = 0;
    for (size_t i = 0; i < k; i++)
        if (unique == 0 || strcmp(names[unique - 1], names[i]) != 0)
            names[unique++] = names[i];
    if ((rc = alloc_shards(c, unique, err)) != 0)
        goto done;
    for (size_t i = 0; i < unique && rc == 0; i++)
        rc = open_shard(c, dir, names[i], err);
done:
    free(names);
    return rc;
}

/* Builds the flat and by-name tables over all shards; rejects a name that
 * two shards both hold, since which copy is meant is unknowable. */
static int build_tables(g4_checkpoint *c, const char *dir, g4_error *err) {
    size_t total = 0;
    for (size_t s = 0; s < c->shard_count; s++)
        total += st_count(c->shards[s]);
    c->tensors = calloc(total ? total : 1, sizeof *c->tensors);
    c->by_name = calloc(total ? total : 1, sizeof *c->by_name);
    if (!c->tensors || !c->by_name)
        return g4_fail(err, "out of memory");
    for (size_t s = 0; s < c->shard_count; s++) {
        for (size_t i = 0; i < st_count(c->shards[s]); i++) {
            const g4_tensor *t = st_tensor(c->shards[s], i);
            c->tensors[c->count] = t;
            c->by_name[c->count] = (ckpt_ref){t, s};
            c->total_bytes += t->nbytes;
            c->count++;
        }
    }
    qsort(c->by_name, c->count, sizeof *c->by_name, cmp_ref_name);
    for (size_t i = 1; i < c->count; i++) {
        const ckpt_ref *a = &c->by_name[i - 1], *b = &c->by_name[i];
        if (strcmp(a->tensor->name, b->tensor->name) == 0)
            return g4_fail(err, "%s: tensor '%s' is in both shard '%s' and shard '%s'",
                           dir, a->tensor->name, c->shard_names[a->shard],
                           c->shard_names[b->shard]);
    }
    return 0;
}

/* Every tensor the index lists must be in the shard it names. Tensors present
 * in a shard but absent from the index are kept: the shard itself is the
 * authority on what it holds, and the duplicate check already ran. */
static int check_index(const g4_checkpoint *c, const char *index_path,
                       const json_t *weight_map, g4_error *err) {
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)weight_map, name, v) {
        const char *shard = json_string_value(v);
        const ckpt_ref *r = find_ref(c, name);
        if (!r)
            return g4_fail(err, "%s: tensor '%s' not found in shard '%s'", index_path,
                           name, shard);
        if (strcmp(c->shard_names[r->shard], shard) != 0)
            return g4_fail(err, "%s: tensor '%s' is in shard '%s' but the index says "
                           "'%s'", index_path, name, c->shard_names[r->shard], shard);
    }
    return 0;
}

static int open_indexed(g4_checkpoint *c, const char *dir, const char *index_path,
                        const struct stat *st, g4_error *err) {
    if (!S_ISREG(st->st_mode))
        return g4_fail(err, "%s: not a regular file", index_path);
    /* Real indexes are a few MiB; refuse to slurp an arbitrarily large file. */
    if ((unsigned long long)st->st_size > ST_MAX_HEADER_BYTES)
        return g4_fail(err, "%s: %lld bytes, larger than the %zu MiB limit", index_path,
                       (long long)st->st_size, ST_MAX_HEADER_BYTES >> 20);
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return g4_fail(err, "%s: invalid JSON: %s (line %d)", index_path, jerr.text,
                       jerr.line);
    int rc = 0;
    const json_t *weight_map = json_object_get(root, "weight_map");
    if (!json_is_object(weight_map))
        rc = g4_fail(err, "%s: missing or non-object \"weight_map\"", index_path);
    else if (json_object_size(weight_map) == 0)
        rc = g4_fail(err, "%s: \"weight_map\" is empty", index_path);
    if (rc == 0)
        rc = open_indexed_shards(c, dir, index_path, weight_map, err);
    if (rc == 0)
        rc = build_tables(c, dir, err);
    if (rc == 0)
        rc = check_index(c, index_path, weight_map, err);
    json_decref(root);
    return rc;
}

static int open_single(g4_checkpoint *c, const char *dir, g4_error *err) {
    char *path = join_path(dir, SINGLE_NAME);
    if (!path)
        return g4_fail(err, "out of memory");
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            rc = g4_fail(err, "no %s or %s in %s", SINGLE_NAME, INDEX_NAME, dir);
        else
            rc = g4_fail(err, "%s: %s", path, strerror(errno));
    }
    free(path);
    if (rc == 0)
        rc = alloc_shards(c, 1, err);
    if (rc == 0)
        rc = open_shard(c, dir, SINGLE_NAME, err);
    if (rc == 0)
        rc = build_tables(c, dir, err);
    return rc;
}

int ckpt_open(const char *dir, g4_checkpoint **out, g4_error *err) {
    *out = NULL;
    g4_checkpoint *c = calloc(1, sizeof *c);
    char *index_path = join_path(dir, INDEX_NAME);
    int rc = 0;
    if (!c || !index_path) {
        rc = g4_fail(err, "out of memory");
    } else {
        struct stat st;
        if (stat(dir, &st) != 0)
            rc = g4_fail(err, "%s: %s", dir, strerror(errno));
        else if (!S_ISDIR(st.st_mode))
            rc = g4_fail(err, "%s: not a directory", dir);
        else if (stat(index_path, &st) == 0)
            rc = open_indexed(c, dir, index_path, &st, err);
        else if (errno == ENOENT)
            rc = open_single(c, dir, err);
        else
            rc = g4_fail(err, "%s: %s", index_path, strerror(errno));
    }
    free(index_path);
    if (rc != 0) {
        ckpt_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

void ckpt_close(g4_checkpoint *c) {
    if (!c)
        return;
    for (size_t s = 0; s < c->shard_count; s++) {
        st_close(c->shards[s]);
        free(c->shard_names[s]);
    }
    free(c->shards);
    free(c->shard_names);
    free(c->tensors);
    free(c->by_name);
    free(c);
}

const g4_tensor *ckpt_find(const g4_checkpoint *c, const char *name) {
    const ckpt_ref *r = find_ref(c, name);
    return r ? r->tensor : NULL;
}

size_t ckpt_count(const g4_checkpoint *c) { return c->count; }

const g4_tensor *ckpt_tensor(const g4_checkpoint *c, size_t i) {
    return i < c->count ? c->tensors[i] : NULL;
}

uint64_t ckpt_total_bytes(const g4_checkpoint *c) { return c->total_bytes; }
