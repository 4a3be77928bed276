/* Tool declarations in the system turn: the template's format_parameters and
 * format_function_declaration macros, rule for rule, including their quirks
 * (a "parameters" block without a "type" is never closed; an "object"
 * property without "properties" lists its own non-standard keys). */
#include <stdlib.h>
#include <string.h>

#include "chat/pystr.h"
#include "chat/template_internal.h"
#include "chat/value_syntax.h"

#define Q G4_STRING_DELIM

typedef struct {
    g4_strbuf *out;
    g4_error *err;
    size_t tool;   /* index of the tool, for messages */
    int depth;
} decl;

const json_t *g4_tpl_get(const json_t *obj, const char *key) {
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

/* upper(str(v)) into a scratch buffer; "" for undefined. */
static const char *upper_of(g4_strbuf *scratch, const json_t *v) {
    g4_strbuf tmp = {0};
    g4_py_str(&tmp, v);
    g4_strbuf_clear(scratch);
    g4_py_append_upper(scratch, tmp.data ? tmp.data : "", tmp.len);
    scratch->oom |= tmp.oom;
    g4_strbuf_free(&tmp);
    return scratch->data ? scratch->data : "";
}

/* Calls fn on each item of v as a Jinja for-loop sees it: list items, the
 * characters of a string, the keys of an object. Numbers are not iterable. */
static int for_each_item(decl *d, const json_t *v, const char *what,
                         void (*fn)(decl *, const json_t *, size_t, size_t), size_t *count) {
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) fn(d, json_array_get(v, i), i, n);
        if (count) *count = n;
        return 0;
    }
    if (json_is_string(v) || json_is_object(v)) {
        json_t *items = json_array();
        if (!items) return g4_fail(d->err, "out of memory");
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            size_t len = json_string_length(v);
            for (size_t i = 0; i < len;) {
                size_t k = 1;
                while (i + k < len && ((unsigned char)s[i + k] & 0xC0) == 0x80) k++;
                json_array_append_new(items, json_stringn(s + i, k));
                i += k;
            }
        } else {
            const char *key;
            const json_t *val;
            json_object_foreach((json_t *)v, key, val) {
                (void)val;
                json_array_append_new(items, json_string(key));
            }
        }
        int rc = for_each_item(d, items, what, fn, count);
        json_decref(items);
        return rc;
    }
    return g4_fail(d->err, "tools[%zu]: %s is not iterable", d->tool, what);
}

static void put_quoted_item(decl *d, const json_t *item, size_t i, size_t n) {
    (void)n;
    if (i) g4_strbuf_putc(d->out, ',');
    g4_strbuf_puts(d->out, Q);
    g4_py_str(d->out, item);
    g4_strbuf_puts(d->out, Q);
}

/* upper(str(v)) appended to the output. */
static void put_upper(decl *d, const json_t *v) {
    g4_strbuf scratch = {0};
    g4_strbuf_puts(d->out, upper_of(&scratch, v));
    d->out->oom |= scratch.oom;
    g4_strbuf_free(&scratch);
}

static void put_upper_item(decl *d, const json_t *item, size_t i, size_t n) {
    (void)n;
    if (i) g4_strbuf_putc(d->out, ',');
    g4_strbuf_puts(d->out, Q);
    put_upper(d, item);
    g4_strbuf_puts(d->out, Q);
}

static bool is_standard_key(const char *k) {
    static const char *const standard[] = {"description", "type", "properties", "required", "nullable"};
    for (size_t i = 0; i < sizeof standard / sizeof *standard; i++)
        if (strcmp(k, standard[i]) == 0) return true;
    return false;
}

static void comma(decl *d, bool *add_comma) {
    if (*add_comma) g4_strbuf_putc(d->out, ',');
    *add_comma = true;
}

static int parameters(decl *d, const json_t *props, bool filter_keys);

/* The items:{...} of an ARRAY property. */
static int array_items(decl *d, const json_t *items) {
    size_t n;
    const char **keys = g4_py_dictsort(items, &n);
    if (n == (size_t)-1) return g4_fail(d->err, "out of memory");
    int rc = 0;
    bool found_first = false;
    g4_strbuf_puts(d->out, "items:{");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const json_t *v = json_object_get(items, keys[i]);
        if (json_is_null(v)) continue;
        if (found_first) g4_strbuf_putc(d->out, ',');
        found_first = true;
        if (strcmp(keys[i], "properties") == 0) {
            g4_strbuf_puts(d->out, "properties:{");
            if (json_is_object(v)) rc = parameters(d, v, false);
            g4_strbuf_putc(d->out, '}');
        } else if (strcmp(keys[i], "required") == 0) {
            g4_strbuf_puts(d->out, "required:[");
            rc = for_each_item(d, v, "items.required", put_quoted_item, NULL);
            g4_strbuf_putc(d->out, ']');
        } else if (strcmp(keys[i], "type") == 0) {
            g4_strbuf_puts(d->out, "type:");
            if (json_is_string(v)) {
                put_upper_item(d, v, 0, 1);
            } else {
                g4_strbuf_putc(d->out, '[');
                rc = for_each_item(d, v, "items.type", put_upper_item, NULL);
                g4_strbuf_putc(d->out, ']');
            }
        } else {
            g4_strbuf_puts(d->out, keys[i]);
            g4_strbuf_putc(d->out, ':');
            g4_value_format(d->out, v, true);
        }
    }
    g4_strbuf_putc(d->out, '}');
    free(keys);
    return rc;
}

/* One property: key:{description,enum|items,nullable,properties,required,type}. */
static int property(decl *d, const char *key, const json_t *value) {
    g4_strbuf type = {0};
    upper_of(&type, g4_tpl_get(value, "type"));
    const char *t = type.data ? type.data : "";
    bool add_comma = false;
    int rc = 0;

    g4_strbuf_puts(d->out, key);
    g4_strbuf_puts(d->out, ":{");
    const json_t *desc = g4_tpl_get(value, "description");
    if (g4_py_truthy(desc)) {
        g4_strbuf_puts(d->out, "description:" Q);
        g4_py_str(d->out, desc);
        g4_strbuf_puts(d->out, Q);
        add_comma = true;
    }
    if (strcmp(t, "STRING") == 0) {
        const json_t *en = g4_tpl_get(value, "enum");
        if (g4_py_truthy(en)) {
            comma(d, &add_comma);
            g4_strbuf_puts(d->out, "enum:");
            g4_value_format(d->out, en, true);
        }
    } else if (strcmp(t, "ARRAY") == 0) {
        const json_t *items = g4_tpl_get(value, "items");
        if (json_is_object(items) && g4_py_truthy(items)) {
            comma(d, &add_comma);
            rc = array_items(d, items);
        }
    }
    if (rc == 0 && g4_py_truthy(g4_tpl_get(value, "nullable"))) {
        comma(d, &add_comma);
        g4_strbuf_puts(d->out, "nullable:true");
    }
    if (rc == 0 && strcmp(t, "OBJECT") == 0) {
        const json_t *props = g4_tpl_get(value, "properties");
        if (json_is_object(props) || json_is_object(value)) {
            comma(d, &add_comma);
            g4_strbuf_puts(d->out, "properties:{");
            rc = json_is_object(props) ? parameters(d, props, false) : parameters(d, value, true);
            g4_strbuf_putc(d->out, '}');
        }
        const json_t *req = g4_tpl_get(value, "required");
        if (rc == 0 && g4_py_truthy(req)) {
            comma(d, &add_comma);
            g4_strbuf_puts(d->out, "required:[");
            rc = for_each_item(d, req, "required", put_quoted_item, NULL);
            g4_strbuf_putc(d->out, ']');
        }
    }
    comma(d, &add_comma);
    g4_strbuf_puts(d->out, "type:" Q);
    g4_strbuf_puts(d->out, t);
    g4_strbuf_puts(d->out, Q "}");
    d->out->oom |= type.oom;
    g4_strbuf_free(&type);
    return rc;
}

/* format_parameters(properties, required, filter_keys). */
static int parameters(decl *d, const json_t *props, bool filter_keys) {
    if (!json_is_object(props))
        return g4_fail(d->err, "tools[%zu]: parameter properties must be an object", d->tool);
    if (++d->depth > 64) return g4_fail(d->err, "tools[%zu]: parameters nested too deeply", d->tool);
    size_t n;
    const char **keys = g4_py_dictsort(props, &n);
    if (n == (size_t)-1) return g4_fail(d->err, "out of memory");
    int rc = 0;
    bool found_first = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (filter_keys && is_standard_key(keys[i])) continue;
        if (found_first) g4_strbuf_putc(d->out, ',');
        found_first = true;
        rc = property(d, keys[i], json_object_get(props, keys[i]));
    }
    free(keys);
    d->depth--;
    return rc;
}

int g4_tpl_declaration(g4_strbuf *out, const json_t *tool, size_t tool_index, g4_error *err) {
    decl d = {.out = out, .err = err, .tool = tool_index};
    const json_t *fn = g4_tpl_get(tool, "function");
    if (!json_is_object(fn)) return g4_fail(err, "tools[%zu]: \"function\" must be an object", tool_index);

    g4_strbuf_puts(out, "declaration:");
    g4_py_str(out, g4_tpl_get(fn, "name"));
    g4_strbuf_puts(out, "{description:" Q);
    g4_py_str(out, g4_tpl_get(fn, "description"));
    g4_strbuf_puts(out, Q);

    const json_t *params = g4_tpl_get(fn, "parameters");
    int rc = 0;
    if (g4_py_truthy(params)) {
        g4_strbuf_puts(out, ",parameters:{");
        const json_t *props = g4_tpl_get(params, "properties");
        if (g4_py_truthy(props)) {
            g4_strbuf_puts(out, "properties:{");
            rc = parameters(&d, props, false);
            g4_strbuf_puts(out, "},");
        }
        const json_t *req = g4_tpl_get(params, "required");
        if (rc == 0 && g4_py_truthy(req)) {
            g4_strbuf_puts(out, "required:[");
            rc = for_each_item(&d, req, "parameters.required", put_quoted_item, NULL);
            g4_strbuf_puts(out, "],");
        }
        const json_t *type = g4_tpl_get(params, "type");
        if (rc == 0 && g4_py_truthy(type)) {
            g4_strbuf_puts(out, "type:" Q);
            put_upper(&d, type);
            g4_strbuf_puts(out, Q "}");
        }
    }
    if (rc) return rc;
    if (json_object_get(fn, "response")) {
        const json_t *resp = json_object_get(fn, "response");
        g4_strbuf_puts(out, ",response:{");
        const json_t *desc = g4_tpl_get(resp, "description");
        if (g4_py_truthy(desc)) {
            g4_strbuf_puts(out, "description:" Q);
            g4_py_str(out, desc);
            g4_strbuf_puts(out, Q ",");
        }
        g4_strbuf scratch = {0};
        if (strcmp(upper_of(&scratch, g4_tpl_get(resp, "type")), "OBJECT") == 0)
            g4_strbuf_puts(out, "type:" Q "OBJECT" Q "}");
        out->oom |= scratch.oom;
        g4_strbuf_free(&scratch);
    }
    g4_strbuf_putc(out, '}');
    return 0;
}
