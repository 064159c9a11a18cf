/* JSON helpers: strict, typed field access with errors that name the field (see json.h). */
#include "nubo/json.h"

#include "nubo/error.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

json_t *nb_json_parse_object(const char *text, size_t len, struct nb_error *err)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        nb_error_set(err, NB_ERR_INVALID, "malformed JSON at line %d, column %d: %s", jerr.line,
                     jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        nb_error_set(err, NB_ERR_INVALID, "expected a JSON object");
        return NULL;
    }
    return v;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Common prologue: returns the value, or NULL with '*rc' set to 0 (absent, optional) or -1. */
static json_t *lookup(const json_t *obj, const char *key, bool required, int *rc,
                      struct nb_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) {
            nb_error_set(err, NB_ERR_MISSING, "missing required field \"%s\"", key);
            *rc = -1;
        } else {
            *rc = 0;
        }
        return NULL;
    }
    return v;
}

static int wrong_type(const char *key, const char *want, const json_t *v, struct nb_error *err)
{
    nb_error_set(err, NB_ERR_INVALID, "field \"%s\" must be %s, not %s", key, want, type_name(v));
    return -1;
}

int nb_json_get_string(const json_t *obj, const char *key, bool required, const char **out,
                       struct nb_error *err)
{
    int rc;
    json_t *v = lookup(obj, key, required, &rc, err);
    if (!v) {
        return rc;
    }
    if (!json_is_string(v)) {
        return wrong_type(key, "a string", v, err);
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        nb_error_set(err, NB_ERR_INVALID, "field \"%s\" contains a NUL character", key);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

int nb_json_get_int(const json_t *obj, const char *key, bool required, long long min, long long max,
                    long long *out, struct nb_error *err)
{
    int rc;
    json_t *v = lookup(obj, key, required, &rc, err);
    if (!v) {
        return rc;
    }
    if (!json_is_integer(v)) {
        return wrong_type(key, "an integer", v, err);
    }
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        nb_error_set(err, NB_ERR_INVALID, "field \"%s\" must be between %lld and %lld, not %lld",
                     key, min, max, (long long)x);
        return -1;
    }
    *out = x;
    return 1;
}

int nb_json_get_bool(const json_t *obj, const char *key, bool required, bool *out,
                     struct nb_error *err)
{
    int rc;
    json_t *v = lookup(obj, key, required, &rc, err);
    if (!v) {
        return rc;
    }
    if (!json_is_boolean(v)) {
        return wrong_type(key, "a boolean", v, err);
    }
    *out = json_is_true(v);
    return 1;
}

int nb_json_get_object(const json_t *obj, const char *key, bool required, json_t **out,
                       struct nb_error *err)
{
    int rc;
    json_t *v = lookup(obj, key, required, &rc, err);
    if (!v) {
        return rc;
    }
    if (!json_is_object(v)) {
        return wrong_type(key, "an object", v, err);
    }
    *out = v;
    return 1;
}

int nb_json_get_array(const json_t *obj, const char *key, bool required, json_t **out,
                      struct nb_error *err)
{
    int rc;
    json_t *v = lookup(obj, key, required, &rc, err);
    if (!v) {
        return rc;
    }
    if (!json_is_array(v)) {
        return wrong_type(key, "an array", v, err);
    }
    *out = v;
    return 1;
}

int nb_json_check_fields(const json_t *obj, const char *const *allowed, struct nb_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool known = false;
        for (const char *const *a = allowed; *a; a++) {
            if (!strcmp(*a, key)) {
                known = true;
                break;
            }
        }
        if (!known) {
            nb_error_set(err, NB_ERR_INVALID, "unknown field \"%s\"", key);
            return -1;
        }
    }
    return 0;
}

char *nb_json_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

char *nb_json_error_text(const char *body, size_t len, char *out, size_t size)
{
    json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *e = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (msg) {
        snprintf(out, size, "%s%s%s", code ? code : "", code ? ": " : "", msg);
    } else if (body && len) {
        snprintf(out, size, "%.*s", (int)(len < 200 ? len : 200), body);
    } else {
        snprintf(out, size, "(no message)");
    }
    json_decref(doc);
    return out;
}
