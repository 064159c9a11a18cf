/* JSON helpers over Jansson: strict parsing with errors that name the field and the expected type.
 *
 * All getters take the object, the field name, whether it is required, and write the value into
 * '*out'. They return 1 when the field was found and valid, 0 when it is absent and optional
 * ('*out' untouched), -1 with 'err' set (NB_ERR_MISSING or NB_ERR_INVALID) otherwise.
 * Strings returned are borrowed from the json_t and live as long as it does. */
#ifndef NUBO_JSON_H
#define NUBO_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct nb_error;

/* Parses 'len' bytes of 'text' that must hold one JSON object. Returns a new reference (the caller
 * json_decref()s it), or NULL with 'err' set to NB_ERR_INVALID naming the line and column. */
json_t *nb_json_parse_object(const char *text, size_t len, struct nb_error *err);

int nb_json_get_string(const json_t *obj, const char *key, bool required, const char **out,
                       struct nb_error *err);
int nb_json_get_int(const json_t *obj, const char *key, bool required, long long min, long long max,
                    long long *out, struct nb_error *err);
int nb_json_get_bool(const json_t *obj, const char *key, bool required, bool *out,
                     struct nb_error *err);
/* The value must be an object / array; '*out' is borrowed. */
int nb_json_get_object(const json_t *obj, const char *key, bool required, json_t **out,
                       struct nb_error *err);
int nb_json_get_array(const json_t *obj, const char *key, bool required, json_t **out,
                      struct nb_error *err);

/* Rejects any member of 'obj' whose name is not in the NULL-terminated list 'allowed'.
 * Returns 0, or -1 with 'err' naming the first unknown field. */
int nb_json_check_fields(const json_t *obj, const char *const *allowed, struct nb_error *err);

/* What an error answer of nubo's internal APIs says: for a body
 * {"error": {"code": "C", "message": "M"}}, "C: M" (or "M" without a code); for any other body
 * its first 200 bytes; "(no message)" for an empty one. Writes at most 'size' bytes (NUL
 * included) to 'out' and returns 'out'. */
char *nb_json_error_text(const char *body, size_t len, char *out, size_t size);

/* Serialises 'v' compactly. Returns a malloc()ed string the caller free()s, or NULL. */
char *nb_json_dump(const json_t *v);

#endif
