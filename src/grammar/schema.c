/* JSON Schema -> grammar: types, objects, arrays, enum/const, anyOf/oneOf,
 * $ref. Every keyword is either compiled, known to be an annotation, or an
 * error: nothing is silently ignored. */
#include "grammar/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "chat/pystr.h"
#include "chat/strbuf.h"
#include "chat/value_syntax.h"

enum { T_NULL = 1, T_BOOLEAN = 2, T_INTEGER = 4, T_NUMBER = 8, T_STRING = 16, T_ARRAY = 32, T_OBJECT = 64, T_ALL = 127 };

static const char *const type_names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};

static const char *const annotations[] = {"title", "description", "default", "examples", "$comment", "$schema",
                                          "$id", "readOnly", "writeOnly", "deprecated", "$defs", "definitions"};
static const char *const compiled[] = {"type", "properties", "required", "additionalProperties", "items",
                                       "minItems", "maxItems", "enum", "const", "minLength", "maxLength",
                                       "pattern", "format", "anyOf", "oneOf", "$ref", "nullable", "minimum",
                                       "maximum", "exclusiveMinimum", "exclusiveMaximum"};

static bool in_list(const char *k, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(k, list[i])) return true;
    return false;
}
#define IN(k, list) in_list(k, list, sizeof list / sizeof *list)

void schema_ctx_init(schema_ctx *c, g4g_builder *b, const json_t *root, bool value_syntax) {
    memset(c, 0, sizeof *c);
    c->b = b;
    c->root = root;
    c->value_syntax = value_syntax;
    c->any_value = c->any_string = c->string_char = c->delim_char = -1;
    if (value_syntax) {
        c->ws = g4g_empty(b);
    } else {
        static const uint32_t space[] = {' ', ' ', '\t', '\t', '\n', '\n', '\r', '\r'};
        int one = g4g_char_class(b, space, 4, false);
        c->ws = g4g_repeat(b, one, 0, G4G_JSON_MAX_WS);
    }
}

void schema_ctx_free(schema_ctx *c) { free(c->refs); }

int schema_fail(schema_ctx *c, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return g4g_fail(c->b, "JSON schema%s%s: %s", c->path[0] ? " at " : "", c->path, msg);
}

static int fail_at(schema_ctx *c, const char *what, const char *detail) {
    return schema_fail(c, "%s%s", what, detail ? detail : "");
}

/* ---- small pieces ---- */

static int literal_rule(schema_ctx *c, const char *text) {
    g4g_seq s = {0};
    g4g_seq_literal(c->b, &s, text, strlen(text));
    return g4g_rule_of(c->b, &s);
}

static int alt2(schema_ctx *c, int a, int b_rule) {
    int r = g4g_rule(c->b, "alt");
    g4g_seq s = {0};
    g4g_seq_rule(c->b, &s, a);
    g4g_alt(c->b, r, &s);
    g4g_seq_rule(c->b, &s, b_rule);
    g4g_alt(c->b, r, &s);
    return r;
}

/* open item (sep item)* close, with the count of items in [min, max]
 * (max < 0: unbounded). Whitespace follows the opening bracket, each item
 * and each separator, never two runs in a row: the bound holds. */
static int list_rule(schema_ctx *c, const char *open, int item, const char *sep, const char *close, int min, int max) {
    g4g_builder *b = c->b;
    g4g_seq s = {0};
    g4g_seq_literal(b, &s, sep, strlen(sep));
    g4g_seq_rule(b, &s, c->ws);
    g4g_seq_rule(b, &s, item);
    g4g_seq_rule(b, &s, c->ws);
    int sep_item = g4g_rule_of(b, &s);
    int rest = g4g_repeat(b, sep_item, min > 1 ? min - 1 : 0, max < 0 ? -1 : max - 1);
    g4g_seq_rule(b, &s, item);
    g4g_seq_rule(b, &s, c->ws);
    g4g_seq_rule(b, &s, rest);
    int items = g4g_rule_of(b, &s);
    if (min == 0) items = g4g_repeat(b, items, 0, 1);
    g4g_seq_literal(b, &s, open, strlen(open));
    g4g_seq_rule(b, &s, c->ws);
    if (max != 0) g4g_seq_rule(b, &s, items);
    g4g_seq_literal(b, &s, close, strlen(close));
    return g4g_rule_of(b, &s);
}

/* ---- any value ---- */

static int any_key(schema_ctx *c);

static int any_value(schema_ctx *c) {
    if (c->any_value >= 0) return c->any_value;
    g4g_builder *b = c->b;
    int v = c->any_value = g4g_rule(b, "value");
    g4g_seq s = {0};
    g4g_seq_rule(b, &s, any_key(c));
    g4g_seq_rule(b, &s, c->ws);
    g4g_seq_literal(b, &s, ":", 1);
    g4g_seq_rule(b, &s, c->ws);
    g4g_seq_rule(b, &s, v);
    int member = g4g_rule_of(b, &s);
    int parts[] = {list_rule(c, "{", member, ",", "}", 0, -1), list_rule(c, "[", v, ",", "]", 0, -1),
                   schema_string(c, NULL), schema_number(c, NULL), literal_rule(c, "true"), literal_rule(c, "false"),
                   literal_rule(c, "null")};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        g4g_seq_rule(b, &s, parts[i]);
        g4g_alt(b, v, &s);
    }
    return v;
}

/* A key of an object without declared properties: a JSON string, or in
 * value syntax a bare word that value_syntax.c reads back as a key. */
static int any_key(schema_ctx *c) {
    if (!c->value_syntax) return schema_string(c, NULL);
    static const uint32_t word[] = {'a', 'z', 'A', 'Z', '0', '9', '_', '_'};
    return g4g_repeat(c->b, g4g_char_class(c->b, word, 4, false), 1, 32);
}

/* ---- objects ---- */

static bool bare_key_ok(const char *k) {
    if (!*k || strchr(":,{}[]<\"", k[0]) || k[0] == ' ' || k[0] == '\t' || k[0] == '\n' || k[0] == '\r') return false;
    size_t n = strlen(k);
    if (strchr(" \t\n\r", k[n - 1])) return false;
    return !strpbrk(k, ":,{}[]<");
}

static int key_rule(schema_ctx *c, const char *key) {
    g4g_seq s = {0};
    if (c->value_syntax) {
        if (!bare_key_ok(key)) return fail_at(c, "a property name Gemma's call syntax cannot carry: ", key);
        g4g_seq_literal(c->b, &s, key, strlen(key));
    } else {
        json_t *js = json_string(key);
        char *text = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
        json_decref(js);
        if (!text) return fail_at(c, "a property name that is not valid UTF-8", NULL);
        g4g_seq_literal(c->b, &s, text, strlen(text));
        free(text);
    }
    return g4g_rule_of(c->b, &s);
}

/* key ws : ws value ws (whitespace after it, as list_rule puts it). */
static int member_rule(schema_ctx *c, const char *key, const json_t *schema) {
    size_t len = strlen(c->path);
    snprintf(c->path + len, sizeof c->path - len, "/properties/%s", key);
    g4g_seq s = {0};
    g4g_seq_rule(c->b, &s, key_rule(c, key));
    g4g_seq_rule(c->b, &s, c->ws);
    g4g_seq_literal(c->b, &s, ":", 1);
    g4g_seq_rule(c->b, &s, c->ws);
    g4g_seq_rule(c->b, &s, schema_compile(c, schema));
    g4g_seq_rule(c->b, &s, c->ws);
    c->path[len] = 0;
    return g4g_rule_of(c->b, &s);
}

static bool is_required(const json_t *required, const char *key) {
    size_t i;
    const json_t *v;
    json_array_foreach(required, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), key)) return true;
    return false;
}

/* Declared properties in a fixed order (declaration order in JSON, dictsort
 * order in value syntax), required ones always, optional ones maybe:
 *   after_k(first) ::= member_k after_{k+1}(no) | after_{k+1}(first)   (optional k)
 * where a member that is not first gets a comma. */
static int object_rule(schema_ctx *c, const json_t *schema) {
    g4g_builder *b = c->b;
    const json_t *props = json_object_get(schema, "properties");
    const json_t *required = json_object_get(schema, "required");
    const json_t *additional = json_object_get(schema, "additionalProperties");
    if (props && !json_is_object(props)) return fail_at(c, "\"properties\" must be an object", NULL);
    if (required && !json_is_array(required)) return fail_at(c, "\"required\" must be an array", NULL);
    if (additional && !json_is_boolean(additional) && !json_is_object(additional))
        return fail_at(c, "\"additionalProperties\" must be a boolean or a schema", NULL);

    /* keys: declared properties, then required names not declared */
    size_t n_props = props ? json_object_size(props) : 0, n_req = required ? json_array_size(required) : 0;
    const char **keys = malloc(sizeof *keys * (n_props + n_req + 1));
    if (!keys) return g4g_fail(b, "grammar: out of memory");
    size_t n = 0;
    if (c->value_syntax && props && n_props) {
        size_t m;
        const char **sorted = g4_py_dictsort(props, &m);
        if (!sorted) { free(keys); return g4g_fail(b, "grammar: out of memory"); }
        memcpy(keys, sorted, sizeof *keys * m);
        n = m;
        free(sorted);
    } else if (props) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)props, k, v) keys[n++] = k;
    }
    for (size_t i = 0; i < n_req; i++) {
        const json_t *r = json_array_get(required, i);
        if (!json_is_string(r)) { free(keys); return fail_at(c, "\"required\" must list strings", NULL); }
        if (props && json_object_get(props, json_string_value(r))) continue;
        if (json_is_false(additional)) {
            free(keys);
            return fail_at(c, "a required property that additionalProperties: false forbids: ", json_string_value(r));
        }
        keys[n++] = json_string_value(r);
    }

    if (n == 0) { /* no named properties: a map, unless additionalProperties is false */
        free(keys);
        if (json_is_false(additional)) return literal_rule(c, "{}");
        int value = additional && json_is_object(additional) ? schema_compile(c, additional) : any_value(c);
        g4g_seq s = {0};
        g4g_seq_rule(b, &s, any_key(c));
        g4g_seq_rule(b, &s, c->ws);
        g4g_seq_literal(b, &s, ":", 1);
        g4g_seq_rule(b, &s, c->ws);
        g4g_seq_rule(b, &s, value);
        return list_rule(c, "{", g4g_rule_of(b, &s), ",", "}", 0, -1);
    }

    int next_first = g4g_empty(b), next_rest = g4g_empty(b); /* after the last property */
    for (size_t i = n; i-- > 0;) {
        const json_t *ps = props ? json_object_get(props, keys[i]) : NULL;
        /* a required name without a declared schema: additionalProperties says what it holds */
        const json_t *undeclared = json_is_object(additional) ? additional : json_true();
        int member = member_rule(c, keys[i], ps ? ps : undeclared);
        bool req = is_required(required, keys[i]);
        g4g_seq s = {0};
        int first = g4g_rule(b, "members"), rest = g4g_rule(b, "members");
        g4g_seq_rule(b, &s, member);
        g4g_seq_rule(b, &s, next_rest);
        g4g_alt(b, first, &s);
        g4g_seq_literal(b, &s, ",", 1);
        g4g_seq_rule(b, &s, c->ws);
        g4g_seq_rule(b, &s, member);
        g4g_seq_rule(b, &s, next_rest);
        g4g_alt(b, rest, &s);
        if (!req) {
            g4g_seq_rule(b, &s, next_first);
            g4g_alt(b, first, &s);
            g4g_seq_rule(b, &s, next_rest);
            g4g_alt(b, rest, &s);
        }
        next_first = first;
        next_rest = rest;
    }
    free(keys);
    g4g_seq s = {0};
    g4g_seq_literal(b, &s, "{", 1);
    g4g_seq_rule(b, &s, c->ws);
    g4g_seq_rule(b, &s, next_first);
    g4g_seq_literal(b, &s, "}", 1);
    return g4g_rule_of(b, &s);
}

/* ---- arrays ---- */

static int int_keyword(schema_ctx *c, const json_t *schema, const char *key, int dflt, int *out) {
    const json_t *v = json_object_get(schema, key);
    *out = dflt;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > G4G_MAX_REPEAT) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"%s\" must be an integer in 0..%d", key, G4G_MAX_REPEAT);
        return fail_at(c, msg, NULL);
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static int array_rule(schema_ctx *c, const json_t *schema) {
    int min, max;
    if (int_keyword(c, schema, "minItems", 0, &min) || int_keyword(c, schema, "maxItems", -1, &max)) return -1;
    if (max >= 0 && max < min) return fail_at(c, "maxItems is below minItems", NULL);
    const json_t *items = json_object_get(schema, "items");
    if (items && !json_is_object(items) && !json_is_boolean(items))
        return fail_at(c, "\"items\" must be a schema (tuple forms are not supported)", NULL);
    size_t len = strlen(c->path);
    snprintf(c->path + len, sizeof c->path - len, "/items");
    int item = items ? schema_compile(c, items) : any_value(c);
    c->path[len] = 0;
    return list_rule(c, "[", item, ",", "]", min, max);
}

/* ---- types ---- */

static int type_mask(schema_ctx *c, const json_t *schema, int *mask) {
    const json_t *t = json_object_get(schema, "type");
    *mask = 0;
    if (!t) {
        *mask = T_ALL;
        return 0;
    }
    const json_t *one = t;
    for (size_t i = 0; json_is_array(t) ? i < json_array_size(t) : i < 1; i++) {
        if (json_is_array(t)) one = json_array_get(t, i);
        int k = -1;
        for (int j = 0; j < 7 && json_is_string(one); j++)
            if (!strcmp(json_string_value(one), type_names[j])) k = j;
        if (k < 0) return fail_at(c, "unknown \"type\"", NULL);
        *mask |= 1 << k;
    }
    if (json_is_true(json_object_get(schema, "nullable"))) *mask |= T_NULL;
    if (*mask & T_NUMBER) *mask &= ~T_INTEGER; /* integers are numbers */
    return 0;
}

/* Which types a schema's keywords point to when it names none. */
static int implied_types(const json_t *schema) {
    static const char *const obj[] = {"properties", "required", "additionalProperties"};
    static const char *const arr[] = {"items", "minItems", "maxItems"};
    static const char *const str[] = {"minLength", "maxLength", "pattern", "format"};
    static const char *const num[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
    int m = 0;
    for (size_t i = 0; i < 4; i++) m |= json_object_get(schema, num[i]) ? T_INTEGER : 0;
    for (size_t i = 0; i < 3; i++) m |= json_object_get(schema, obj[i]) ? T_OBJECT : 0;
    for (size_t i = 0; i < 3; i++) m |= json_object_get(schema, arr[i]) ? T_ARRAY : 0;
    for (size_t i = 0; i < 4; i++) m |= json_object_get(schema, str[i]) ? T_STRING : 0;
    return m ? m : T_ALL;
}

static int typed_rule(schema_ctx *c, const json_t *schema, int type) {
    switch (type) {
    case T_NULL: return literal_rule(c, "null");
    case T_BOOLEAN: return alt2(c, literal_rule(c, "true"), literal_rule(c, "false"));
    case T_INTEGER: return schema_integer(c, schema);
    case T_NUMBER: return schema_number(c, schema);
    case T_STRING: return schema_string(c, schema);
    case T_ARRAY: return array_rule(c, schema);
    default: return object_rule(c, schema);
    }
}

/* ---- enum, const ---- */

static int value_type(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_NULL: return T_NULL;
    case JSON_TRUE:
    case JSON_FALSE: return T_BOOLEAN;
    case JSON_INTEGER: return T_INTEGER | T_NUMBER;
    case JSON_REAL: return T_NUMBER;
    case JSON_STRING: return T_STRING;
    case JSON_ARRAY: return T_ARRAY;
    default: return T_OBJECT;
    }
}

static int enum_rule(schema_ctx *c, const json_t *schema, int types) {
    const json_t *cst = json_object_get(schema, "const"), *en = json_object_get(schema, "enum");
    if (en && !json_is_array(en)) return fail_at(c, "\"enum\" must be an array", NULL);
    int r = g4g_rule(c->b, "enum");
    size_t n = cst ? 1 : json_array_size(en), used = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = cst ? cst : json_array_get(en, i);
        if (!(value_type(v) & types)) continue; /* "type" rules it out */
        g4g_seq s = {0};
        g4g_seq_rule(c->b, &s, schema_literal(c, v));
        g4g_alt(c->b, r, &s);
        used++;
    }
    if (!used) return fail_at(c, "no value of \"enum\"/\"const\" fits \"type\"", NULL);
    return r;
}

/* ---- oneOf: compiled as anyOf, so the branches must not overlap ---- */

static int branch_types(schema_ctx *c, const json_t *s) {
    int m;
    if (json_is_object(s) && json_object_get(s, "$ref")) return T_ALL; /* not resolved here: may overlap anything */
    if (!json_is_object(s) || type_mask(c, s, &m)) return T_ALL;
    if (!json_object_get(s, "type")) m = implied_types(s);
    const json_t *cst = json_object_get(s, "const"), *en = json_object_get(s, "enum");
    if (cst || en) {
        int vm = 0;
        for (size_t i = 0; i < (cst ? 1 : json_array_size(en)); i++) vm |= value_type(cst ? cst : json_array_get(en, i));
        m &= vm;
    }
    if (m & T_NUMBER) m |= T_INTEGER;
    if (m & T_INTEGER) m |= T_NUMBER;
    return m;
}

/* A property every branch requires with a const (or enum) value, each
 * branch's values different: a discriminator. */
static bool discriminated(const json_t *branches) {
    const json_t *first = json_array_get(branches, 0);
    const json_t *props = json_object_get(first, "properties");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)props, key, v) {
        bool ok = true;
        for (size_t i = 0; ok && i < json_array_size(branches); i++) {
            const json_t *bi = json_array_get(branches, i);
            const json_t *pi = json_object_get(json_object_get(bi, "properties"), key);
            ok = is_required(json_object_get(bi, "required"), key) && json_object_get(pi, "const");
            for (size_t j = 0; ok && j < i; j++) {
                const json_t *pj = json_object_get(json_object_get(json_array_get(branches, j), "properties"), key);
                ok = !json_equal(json_object_get(pi, "const"), json_object_get(pj, "const"));
            }
        }
        if (ok) return true;
    }
    return false;
}

static int any_of_rule(schema_ctx *c, const json_t *schema) {
    const char *kw = json_object_get(schema, "anyOf") ? "anyOf" : "oneOf";
    const json_t *branches = json_object_get(schema, kw);
    if (!json_is_array(branches) || !json_array_size(branches)) return fail_at(c, "anyOf/oneOf must be a non-empty array", NULL);
    if (!strcmp(kw, "oneOf") && !discriminated(branches)) {
        int seen = 0;
        for (size_t i = 0; i < json_array_size(branches); i++) {
            int m = branch_types(c, json_array_get(branches, i));
            if (m & seen)
                return fail_at(c, "oneOf branches that may overlap are not supported (give them different types, "
                                  "or a required property with a different const in each)", NULL);
            seen |= m;
        }
    }
    int r = g4g_rule(c->b, kw);
    size_t len = strlen(c->path);
    for (size_t i = 0; i < json_array_size(branches); i++) {
        snprintf(c->path + len, sizeof c->path - len, "/%s/%zu", kw, i);
        g4g_seq s = {0};
        g4g_seq_rule(c->b, &s, schema_compile(c, json_array_get(branches, i)));
        g4g_alt(c->b, r, &s);
    }
    c->path[len] = 0;
    return r;
}

/* ---- $ref ---- */

static const json_t *resolve_ref(schema_ctx *c, const char *ref) {
    if (!strcmp(ref, "#")) return c->root;
    const char *name = NULL;
    const json_t *defs = NULL;
    if (!strncmp(ref, "#/$defs/", 8)) { defs = json_object_get(c->root, "$defs"); name = ref + 8; }
    else if (!strncmp(ref, "#/definitions/", 14)) { defs = json_object_get(c->root, "definitions"); name = ref + 14; }
    if (!name || strchr(name, '/') || strchr(name, '~') || strchr(name, '%')) return NULL;
    return json_object_get(defs, name);
}

static int ref_rule(schema_ctx *c, const json_t *schema) {
    const json_t *ref = json_object_get(schema, "$ref");
    if (!json_is_string(ref)) return fail_at(c, "\"$ref\" must be a string", NULL);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)schema, k, v) if (strcmp(k, "$ref") && !IN(k, annotations))
        return fail_at(c, "\"$ref\" beside other keywords is not supported: ", k);
    const json_t *target = resolve_ref(c, json_string_value(ref));
    if (!target) return fail_at(c, "unresolvable or unsupported $ref (only #, #/$defs/NAME, #/definitions/NAME): ",
                                json_string_value(ref));
    for (int i = 0; i < c->n_refs; i++)
        if (c->refs[i].schema == target) return c->refs[i].rule;
    if (c->n_refs == c->cap_refs) {
        int cap = c->cap_refs ? 2 * c->cap_refs : 16;
        schema_ref *p = realloc(c->refs, sizeof *p * (size_t)cap);
        if (!p) return g4g_fail(c->b, "grammar: out of memory");
        c->refs = p;
        c->cap_refs = cap;
    }
    int r = g4g_rule(c->b, json_string_value(ref)); /* defined below; recursion finds it here */
    c->refs[c->n_refs++] = (schema_ref){target, r};
    char saved[sizeof c->path];
    memcpy(saved, c->path, sizeof saved);
    snprintf(c->path, sizeof c->path, "%s", json_string_value(ref) + 1);
    g4g_seq s = {0};
    g4g_seq_rule(c->b, &s, schema_compile(c, target));
    g4g_alt(c->b, r, &s);
    memcpy(c->path, saved, sizeof saved);
    return r;
}

/* ---- dispatch ---- */

int schema_compile(schema_ctx *c, const json_t *schema) {
    if (g4g_failed(c->b)) return -1;
    if (json_is_true(schema)) return any_value(c);
    if (json_is_false(schema)) return fail_at(c, "the schema false matches nothing", NULL);
    if (!json_is_object(schema)) return fail_at(c, "a schema must be an object or a boolean", NULL);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)schema, k, v) if (!IN(k, annotations) && !IN(k, compiled))
        return fail_at(c, "unsupported keyword: ", k);
    if (json_object_get(schema, "$ref")) return ref_rule(c, schema);
    bool any_of = json_object_get(schema, "anyOf") || json_object_get(schema, "oneOf");
    if (any_of) {
        json_object_foreach((json_t *)schema, k, v) if (!IN(k, annotations) && strcmp(k, "anyOf") && strcmp(k, "oneOf"))
            return fail_at(c, "anyOf/oneOf beside other keywords is not supported: ", k);
        if (json_object_get(schema, "anyOf") && json_object_get(schema, "oneOf"))
            return fail_at(c, "anyOf together with oneOf is not supported", NULL);
        return any_of_rule(c, schema);
    }
    int types;
    if (type_mask(c, schema, &types)) return -1;
    if (json_object_get(schema, "enum") || json_object_get(schema, "const")) {
        json_object_foreach((json_t *)schema, k, v) if (!IN(k, annotations) && strcmp(k, "enum") && strcmp(k, "const") &&
                                                        strcmp(k, "type") && strcmp(k, "nullable"))
            return fail_at(c, "enum/const beside other constraints is not supported: ", k);
        return enum_rule(c, schema, types);
    }
    if (!json_object_get(schema, "type")) {
        types = implied_types(schema);
        if (types == T_ALL) return any_value(c);
    }
    int r = g4g_rule(c->b, "typed");
    for (int t = 1; t < T_ALL; t <<= 1) {
        if (!(types & t)) continue;
        g4g_seq s = {0};
        g4g_seq_rule(c->b, &s, typed_rule(c, schema, t));
        g4g_alt(c->b, r, &s);
    }
    return r;
}

/* ---- entry points ---- */

static int build_json(const gemma4_tokenizer *tok, const json_t *schema, gemma4_grammar **out) {
    g4_error *err = g4_api_error();
    g4g_builder *b = g4g_builder_new(tok, err);
    if (!b) return -1;
    schema_ctx c;
    schema_ctx_init(&c, b, schema, false);
    int root = schema_compile(&c, schema ? schema : json_true());
    g4g_add_end_token(b, "<turn|>");
    g4g_add_end_token(b, "<eos>");
    *out = g4g_finish(b, root);
    schema_ctx_free(&c);
    g4g_builder_free(b);
    return *out ? 0 : -1;
}

int gemma4_grammar_from_json_schema(const gemma4_tokenizer *tok, const char *schema_json, gemma4_grammar **out) {
    *out = NULL;
    if (!schema_json) return build_json(tok, NULL, out);
    json_error_t jerr;
    json_t *schema = json_loads(schema_json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!schema) return g4_fail(g4_api_error(), "JSON schema: not valid JSON: %s (line %d)", jerr.text, jerr.line);
    int rc = build_json(tok, schema, out);
    json_decref(schema);
    return rc;
}
