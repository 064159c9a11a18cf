/* Fuzz target: the strict JSON helpers that read REST API bodies. Any bytes are parsed as an
 * object and read through every typed getter the REST routes use. */
#include "nubo/error.h"
#include "nubo/json.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nb_error err = {0};
    json_t *v = nb_json_parse_object((const char *)data, size, &err);
    if (!v) {
        return 0;
    }
    static const char *const fields[] = {"name", "count", "tags", "enabled", NULL};
    const char *s;
    long long n;
    bool b;
    json_t *o;
    nb_json_check_fields(v, fields, &err);
    nb_json_get_string(v, "name", true, &s, &err);
    nb_json_get_int(v, "count", false, 1, 1000, &n, &err);
    nb_json_get_bool(v, "enabled", false, &b, &err);
    if (nb_json_get_object(v, "tags", false, &o, &err) == 1) {
        const char *key;
        json_t *val;
        json_object_foreach(o, key, val)
        {
            nb_json_get_string(o, key, true, &s, &err);
        }
    }
    nb_json_get_array(v, "items", false, &o, &err);
    free(nb_json_dump(v));
    json_decref(v);
    return 0;
}
