/* The operator's compute hosts (/v1/admin/hosts...): list, show, register, change, remove and
 * evacuate. They need a key with the admin role; others get "UnauthorizedOperation". */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "/v1/admin/hosts/<id, encoded><suffix>" as a new string, or NULL when out of memory. */
static char *host_path(const char *id, const char *suffix)
{
    char *enc = nubo_urlencode(id);
    char *p = NULL;
    if (enc && asprintf(&p, "/v1/admin/hosts/%s%s", enc, suffix) < 0) {
        p = NULL;
    }
    free(enc);
    return p;
}

/* Sends 'method' 'path' (consumed) with 'body' (consumed, may be NULL). Returns 0 with the answer
 * in '*reply' (a new reference; NULL for 204), or -1 with '*err' set. Only GETs are retried. */
static int host_call(struct nubo_client *c, const char *method, char *path, json_t *body,
                     json_t **reply, struct nubo_error *err)
{
    *reply = NULL;
    if (!path) {
        json_decref(body);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    int rc = nubo_call(c, method, path, NULL, body, !strcmp(method, "GET"), reply, err);
    json_decref(body);
    free(path);
    return rc;
}

static double js_real(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static void resources_read(const json_t *o, struct nubo_host_resources *r)
{
    r->vcpus = nubo_js_int(o, "vcpus");
    r->memory_mib = nubo_js_int(o, "memory_mib");
    r->disk_gib = nubo_js_int(o, "disk_gib");
}

/* Reads the string array 'key' of 'o' into a new array '*out' of '*n' strings. Returns 0, or -1
 * when out of memory. */
static int strings_read(const json_t *o, const char *key, char ***out, size_t *n)
{
    json_t *arr = json_object_get(o, key);
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        return 0;
    }
    *out = calloc(json_array_size(arr), sizeof **out);
    if (!*out) {
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (!((*out)[(*n)++] = strdup(s ? s : ""))) {
            return -1;
        }
    }
    return 0;
}

static void strings_free(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i]);
    }
    free(s);
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static int host_parse(const json_t *o, void *item)
{
    struct nubo_host *h = item;
    json_t *used = json_object_get(o, "used");
    json_t *ratios = json_object_get(o, "ratios");
    h->id = nubo_js_str(o, "id");
    h->name = nubo_js_str(o, "name");
    h->zone = nubo_js_str(o, "zone");
    h->state = nubo_js_str(o, "state");
    h->state_reason = nubo_js_str(o, "state_reason");
    h->simulated = nubo_js_bool(o, "simulated");
    h->agent_url = nubo_js_str(o, "agent_url");
    resources_read(json_object_get(o, "capacity"), &h->capacity);
    resources_read(json_object_get(o, "reserved"), &h->reserved);
    resources_read(used, &h->used);
    h->used_instances = nubo_js_int(used, "instances");
    h->cpu_ratio = js_real(ratios, "cpu");
    h->memory_ratio = js_real(ratios, "memory");
    h->disk_ratio = js_real(ratios, "disk");
    h->dedicated_tenant = nubo_js_str(o, "dedicated_tenant");
    h->cpu_load = js_real(o, "cpu_load");
    h->last_heartbeat = nubo_js_str(o, "last_heartbeat");
    h->node_token = nubo_js_str(o, "node_token");
    h->json = nubo_js_dump(o);
    if (strings_read(o, "traits", &h->traits, &h->n_traits) < 0) {
        return -1;
    }
    return h->id && h->state && h->json ? 0 : -1;
}

/* Frees what 'item' holds, wiping the node token (and the JSON that repeats it) first. */
static void host_clear(void *item)
{
    struct nubo_host *h = item;
    free(h->id);
    free(h->name);
    free(h->zone);
    free(h->state);
    free(h->state_reason);
    free(h->agent_url);
    strings_free(h->traits, h->n_traits);
    free(h->dedicated_tenant);
    free(h->last_heartbeat);
    wipe_free(h->node_token);
    wipe_free(h->json);
}

NUBO_API void nubo_host_free(struct nubo_host *h)
{
    nubo_item_free(h, host_clear);
}

NUBO_API void nubo_host_list_free(struct nubo_host_list *l)
{
    nubo_list_free(l, sizeof *l->items, host_clear);
}

NUBO_API void nubo_host_params_init(struct nubo_host_params *p)
{
    memset(p, 0, sizeof *p);
    p->vcpus = p->memory_mib = p->disk_gib = -1;
    p->reserved_vcpus = p->reserved_memory_mib = p->reserved_disk_gib = -1;
}

/* Builds the JSON body of 'p'; 'create' adds the fields only a registration takes. Returns a new
 * reference, or NULL with '*err' set. */
static json_t *host_body(const struct nubo_host_params *p, bool create, struct nubo_error *err)
{
    json_t *b = json_object();
    if (!b) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    int rc = 0;
    const struct {
        const char *key, *value;
    } strs[] = {
        {"name", p->name}, {"zone", p->zone}, {"agent_url", p->agent_url}, {"state", p->state}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strs[i].value) {
            rc |= json_object_set_new(b, strs[i].key, json_string(strs[i].value));
        }
    }
    if (create) {
        rc |= json_object_set_new(b, "simulated", json_boolean(p->simulated));
    }
    const struct {
        const char *key;
        long long value;
    } ints[] = {{"vcpus", p->vcpus},
                {"memory_mib", p->memory_mib},
                {"disk_gib", p->disk_gib},
                {"reserved_vcpus", p->reserved_vcpus},
                {"reserved_memory_mib", p->reserved_memory_mib},
                {"reserved_disk_gib", p->reserved_disk_gib}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (ints[i].value >= 0) {
            rc |= json_object_set_new(b, ints[i].key, json_integer(ints[i].value));
        }
    }
    const struct {
        const char *key;
        double value;
    } reals[] = {{"cpu_ratio", p->cpu_ratio},
                 {"memory_ratio", p->memory_ratio},
                 {"disk_ratio", p->disk_ratio}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        if (reals[i].value > 0) {
            rc |= json_object_set_new(b, reals[i].key, json_real(reals[i].value));
        }
    }
    if (p->traits) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < p->n_traits; i++) {
            rc |= json_array_append_new(arr, json_string(p->traits[i] ? p->traits[i] : ""));
        }
        rc |= json_object_set_new(b, "traits", arr);
    }
    if (p->dedicated_tenant) {
        rc |= json_object_set_new(b, "dedicated_tenant",
                                  p->dedicated_tenant[0] ? json_string(p->dedicated_tenant)
                                                         : json_null());
    }
    if (rc) {
        json_decref(b);
        nubo_err_set(err, 0, "InvalidParameterValue", "a host field is not valid UTF-8");
        return NULL;
    }
    return b;
}

NUBO_API struct nubo_host_list *nubo_admin_hosts_list(struct nubo_client *c, struct nubo_error *err)
{
    json_t *reply;
    if (host_call(c, "GET", strdup("/v1/admin/hosts"), NULL, &reply, err) < 0) {
        return NULL;
    }
    return nubo_js_list(reply, "hosts", sizeof(struct nubo_host), host_parse, host_clear, err);
}

/* Sends 'method' to the host 'id' (+ 'suffix') with 'body' (consumed) and reads one host. */
static struct nubo_host *host_one(struct nubo_client *c, const char *method, const char *id,
                                  json_t *body, struct nubo_error *err)
{
    json_t *reply;
    char *path = id ? host_path(id, "") : strdup("/v1/admin/hosts");
    if (host_call(c, method, path, body, &reply, err) < 0) {
        return NULL;
    }
    return nubo_js_item(reply, sizeof(struct nubo_host), host_parse, host_clear, "the host", err);
}

NUBO_API struct nubo_host *nubo_admin_host_get(struct nubo_client *c, const char *id,
                                               struct nubo_error *err)
{
    if (nubo_need(id, "a host id", err) < 0) {
        return NULL;
    }
    return host_one(c, "GET", id, NULL, err);
}

NUBO_API struct nubo_host *nubo_admin_host_create(struct nubo_client *c,
                                                  const struct nubo_host_params *p,
                                                  struct nubo_error *err)
{
    if (nubo_need(p ? p->name : NULL, "a host name", err) < 0) {
        return NULL;
    }
    json_t *body = host_body(p, true, err);
    return body ? host_one(c, "POST", NULL, body, err) : NULL;
}

NUBO_API struct nubo_host *nubo_admin_host_update(struct nubo_client *c, const char *id,
                                                  const struct nubo_host_params *p,
                                                  struct nubo_error *err)
{
    if (nubo_need(id, "a host id", err) < 0) {
        return NULL;
    }
    if (!p) {
        nubo_err_set(err, 0, "InvalidParameterValue", "the changes are required");
        return NULL;
    }
    json_t *body = host_body(p, false, err);
    return body ? host_one(c, "PATCH", id, body, err) : NULL;
}

NUBO_API int nubo_admin_host_delete(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    if (nubo_need(id, "a host id", err) < 0) {
        return -1;
    }
    json_t *reply;
    int rc = host_call(c, "DELETE", host_path(id, ""), NULL, &reply, err);
    json_decref(reply);
    return rc;
}

static int evacuation_parse(const json_t *o, void *item)
{
    struct nubo_evacuation *e = item;
    e->host_id = nubo_js_str(o, "host_id");
    e->json = nubo_js_dump(o);
    if (!json_is_array(json_object_get(o, "instances")) ||
        strings_read(o, "instances", &e->instances, &e->n_instances) < 0) {
        return -1;
    }
    return e->host_id && e->json ? 0 : -1;
}

static void evacuation_clear(void *item)
{
    struct nubo_evacuation *e = item;
    free(e->host_id);
    strings_free(e->instances, e->n_instances);
    free(e->json);
}

NUBO_API void nubo_evacuation_free(struct nubo_evacuation *e)
{
    nubo_item_free(e, evacuation_clear);
}

NUBO_API struct nubo_evacuation *nubo_admin_host_evacuate(struct nubo_client *c, const char *id,
                                                          struct nubo_error *err)
{
    if (nubo_need(id, "a host id", err) < 0) {
        return NULL;
    }
    json_t *reply;
    if (host_call(c, "POST", host_path(id, "/evacuate"), NULL, &reply, err) < 0) {
        return NULL;
    }
    if (!reply) {
        nubo_err_set(err, 0, "ProtocolError", "the evacuation answered nothing");
        return NULL;
    }
    return nubo_js_item(reply, sizeof(struct nubo_evacuation), evacuation_parse, evacuation_clear,
                        "the evacuation", err);
}
