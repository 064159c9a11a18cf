/* The tenant's resources: the catalogue (regions, zones, instance types), instances, key pairs
 * and tags; JSON answers parsed into the public structs of nubo/nubo.h. Images are in
 * images.c. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- regions and zones --------------------------------------------------------------------- */

static int region_parse(const json_t *o, void *item)
{
    struct nubo_region *r = item;
    r->name = nubo_js_str(o, "name");
    r->endpoint = nubo_js_str(o, "endpoint");
    r->json = nubo_js_dump(o);
    return r->name && r->json ? 0 : -1;
}

static void region_clear(void *item)
{
    struct nubo_region *r = item;
    free(r->name);
    free(r->endpoint);
    free(r->json);
}

NUBO_API struct nubo_region_list *nubo_regions_list(struct nubo_client *c, struct nubo_error *err)
{
    return nubo_get_list(c, "/v1/regions", NULL, "regions", sizeof(struct nubo_region),
                         region_parse, region_clear, err);
}

NUBO_API void nubo_region_list_free(struct nubo_region_list *l)
{
    nubo_list_free(l, sizeof *l->items, region_clear);
}

static int zone_parse(const json_t *o, void *item)
{
    struct nubo_zone *z = item;
    z->name = nubo_js_str(o, "name");
    z->region = nubo_js_str(o, "region");
    z->state = nubo_js_str(o, "state");
    z->json = nubo_js_dump(o);
    return z->name && z->json ? 0 : -1;
}

static void zone_clear(void *item)
{
    struct nubo_zone *z = item;
    free(z->name);
    free(z->region);
    free(z->state);
    free(z->json);
}

NUBO_API struct nubo_zone_list *nubo_zones_list(struct nubo_client *c,
                                                const struct nubo_filter *filters, size_t n_filters,
                                                struct nubo_error *err)
{
    struct nubo_query q = {0};
    const char *text = nubo_filters_query(&q, filters, n_filters, err);
    struct nubo_zone_list *l =
        text ? nubo_get_list(c, "/v1/zones", text, "zones", sizeof(struct nubo_zone), zone_parse,
                             zone_clear, err)
             : NULL;
    nubo_query_clear(&q);
    return l;
}

NUBO_API void nubo_zone_list_free(struct nubo_zone_list *l)
{
    nubo_list_free(l, sizeof *l->items, zone_clear);
}

/* --- instance types ------------------------------------------------------------------------ */

static int type_parse(const json_t *o, void *item)
{
    struct nubo_instance_type *t = item;
    t->name = nubo_js_str(o, "name");
    t->vcpus = (int)nubo_js_int(o, "vcpus");
    t->memory_mib = (int)nubo_js_int(o, "memory_mib");
    t->disk_gib = (int)nubo_js_int(o, "disk_gib");
    t->ephemeral_gib = (int)nubo_js_int(o, "ephemeral_gib");
    t->enabled = nubo_js_bool(o, "enabled");
    t->json = nubo_js_dump(o);
    return t->name && t->json ? 0 : -1;
}

static void type_clear(void *item)
{
    struct nubo_instance_type *t = item;
    free(t->name);
    free(t->json);
}

struct nubo_instance_type_iter {
    struct nubo_page_iter it;
    struct nubo_instance_type cur;
};

NUBO_API struct nubo_instance_type_iter *
nubo_instance_type_iter_new(struct nubo_client *c, const struct nubo_filter *filters,
                            size_t n_filters, int page_size)
{
    struct nubo_instance_type_iter *i = calloc(1, sizeof *i);
    if (i &&
        nubo_page_iter_init(&i->it, c, "/v1/instance-types", "instance_types", filters, n_filters,
                            page_size, &i->cur, sizeof i->cur, type_parse, type_clear) < 0) {
        nubo_instance_type_iter_free(i);
        return NULL;
    }
    return i;
}

NUBO_API int nubo_instance_type_iter_next(struct nubo_instance_type_iter *i,
                                          const struct nubo_instance_type **out,
                                          struct nubo_error *err)
{
    int rc = nubo_page_iter_next(&i->it, err);
    *out = rc == 1 ? &i->cur : NULL;
    return rc;
}

NUBO_API void nubo_instance_type_iter_free(struct nubo_instance_type_iter *i)
{
    if (i) {
        nubo_page_iter_clear(&i->it);
        free(i);
    }
}

NUBO_API void nubo_instance_type_free(struct nubo_instance_type *t)
{
    nubo_item_free(t, type_clear);
}

NUBO_API struct nubo_instance_type *
nubo_instance_type_put(struct nubo_client *c, const struct nubo_instance_type_params *p,
                       struct nubo_error *err)
{
    if (nubo_need(p ? p->name : NULL, "an instance type name", err) < 0) {
        return NULL;
    }
    if (p->vcpus < 1 || p->memory_mib < 1 || p->disk_gib < 0 || p->ephemeral_gib < 0) {
        nubo_err_set(err, 0, "InvalidParameterValue",
                     "instance type \"%s\" needs vcpus and memory_mib above 0, and disk_gib and "
                     "ephemeral_gib not below 0",
                     p->name);
        return NULL;
    }
    char *path = nubo_id_path("/v1/instance-types", p->name, "");
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    json_t *body = json_pack("{s:i, s:i, s:i, s:i, s:b}", "vcpus", p->vcpus, "memory_mib",
                             p->memory_mib, "disk_gib", p->disk_gib, "ephemeral_gib",
                             p->ephemeral_gib, "enabled", !p->disabled);
    /* The whole type is sent: a repeat gives the same type, so it is retried. */
    struct nubo_instance_type *t =
        nubo_call_one(c, "PUT", path, body, true, sizeof *t, type_parse, type_clear, err);
    free(path);
    return t;
}

/* --- instances ----------------------------------------------------------------------------- */

static int instance_parse(const json_t *o, void *item)
{
    struct nubo_instance *in = item;
    json_t *reason = json_object_get(o, "state_reason");
    in->id = nubo_js_str(o, "id");
    in->reservation_id = nubo_js_str(o, "reservation_id");
    in->owner_id = nubo_js_str(o, "owner_id");
    in->launch_index = (int)nubo_js_int(o, "launch_index");
    in->image_id = nubo_js_str(o, "image_id");
    in->instance_type = nubo_js_str(o, "instance_type");
    in->key_name = nubo_js_str(o, "key_name");
    in->zone = nubo_js_str(o, "zone");
    in->state = nubo_js_str(o, "state");
    in->state_reason_code = nubo_js_str(reason, "code");
    in->state_reason_message = nubo_js_str(reason, "message");
    in->launch_time = nubo_js_str(o, "launch_time");
    in->vcpus = (int)nubo_js_int(o, "vcpus");
    in->memory_mib = (int)nubo_js_int(o, "memory_mib");
    in->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &in->tags, &in->n_tags) < 0) {
        return -1;
    }
    return in->id && in->state && in->json ? 0 : -1;
}

static void instance_clear(void *item)
{
    struct nubo_instance *in = item;
    free(in->id);
    free(in->reservation_id);
    free(in->owner_id);
    free(in->image_id);
    free(in->instance_type);
    free(in->key_name);
    free(in->zone);
    free(in->state);
    free(in->state_reason_code);
    free(in->state_reason_message);
    free(in->launch_time);
    nubo_tags_free(in->tags, in->n_tags);
    free(in->json);
}

NUBO_API void nubo_instance_free(struct nubo_instance *in)
{
    nubo_item_free(in, instance_clear);
}

NUBO_API void nubo_instance_list_free(struct nubo_instance_list *l)
{
    nubo_list_free(l, sizeof *l->items, instance_clear);
}

NUBO_API struct nubo_instance_list *
nubo_instances_run(struct nubo_client *c, const struct nubo_run_params *p, struct nubo_error *err)
{
    return nubo_instances_run_placed(c, p, NULL, err);
}

/* Adds what 'pl' (may be NULL) sets to the launch 'body'. Returns 0, or -1 with '*err' set. */
static int add_placement(json_t *body, const struct nubo_run_placement *pl, struct nubo_error *err)
{
    if (!pl) {
        return 0;
    }
    if (pl->partition_number < 0 || pl->partition_number > 7) {
        nubo_err_set(err, 0, "InvalidParameterValue", "the partition number must be 1-7, not %d",
                     pl->partition_number);
        return -1;
    }
    int rc = 0;
    if (pl->placement_group) {
        rc |= json_object_set_new(body, "placement_group", json_string(pl->placement_group));
    }
    if (pl->partition_number > 0) {
        rc |= json_object_set_new(body, "partition_number", json_integer(pl->partition_number));
    }
    if (pl->tenancy) {
        rc |= json_object_set_new(body, "tenancy", json_string(pl->tenancy));
    }
    if (rc) {
        nubo_err_set(err, 0, "InvalidParameterValue", "the placement is not valid UTF-8");
        return -1;
    }
    return 0;
}

/* Adds what 'net' (may be NULL) sets to the launch 'body'. Returns 0, or -1 with '*err' set. */
static int add_network(json_t *body, const struct nubo_run_network *net, struct nubo_error *err)
{
    if (!net) {
        return 0;
    }
    if ((net->private_ip || net->n_security_groups) && !net->subnet_id) {
        nubo_err_set(err, 0, "InvalidParameterCombination",
                     "a private address or security groups need a subnet");
        return -1;
    }
    int rc = 0;
    if (net->subnet_id) {
        rc |= json_object_set_new(body, "subnet_id", json_string(net->subnet_id));
    }
    if (net->private_ip) {
        rc |= json_object_set_new(body, "private_ip", json_string(net->private_ip));
    }
    if (net->n_security_groups) {
        json_t *ids = json_array();
        for (size_t i = 0; ids && i < net->n_security_groups; i++) {
            const char *id = net->security_group_ids ? net->security_group_ids[i] : NULL;
            rc |= json_array_append_new(ids, json_string(id ? id : ""));
        }
        rc |= ids ? json_object_set_new(body, "security_group_ids", ids) : -1;
    }
    if (rc) {
        nubo_err_set(err, 0, "InvalidParameterValue", "the network is not valid UTF-8");
        return -1;
    }
    return 0;
}

NUBO_API struct nubo_instance_list *nubo_instances_run_placed(struct nubo_client *c,
                                                              const struct nubo_run_params *p,
                                                              const struct nubo_run_placement *pl,
                                                              struct nubo_error *err)
{
    return nubo_instances_run_networked(c, p, pl, NULL, err);
}

NUBO_API struct nubo_instance_list *
nubo_instances_run_networked(struct nubo_client *c, const struct nubo_run_params *p,
                             const struct nubo_run_placement *pl,
                             const struct nubo_run_network *net, struct nubo_error *err)
{
    if (nubo_need(p ? p->image_id : NULL, "an image id", err) < 0) {
        return NULL;
    }
    char *token = p->client_token ? NULL : nubo_client_token();
    int min = p->min_count > 0 ? p->min_count : 1;
    int max = p->max_count > 0 ? p->max_count : min;
    json_t *body = json_pack(
        "{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:i, s:i, s:o}", "image_id", p->image_id,
        "instance_type", p->instance_type, "key_name", p->key_name, "zone", p->zone, "user_data",
        p->user_data, "client_token", p->client_token ? p->client_token : token, "min_count", min,
        "max_count", max, "tags", nubo_js_tags_object(p->tags, p->n_tags));
    free(token);
    if (!body) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    if (add_placement(body, pl, err) < 0 || add_network(body, net, err) < 0) {
        json_decref(body);
        return NULL;
    }
    json_t *reply = NULL;
    int rc = nubo_call(c, "POST", "/v1/instances", NULL, body, true, &reply, err);
    json_decref(body);
    if (rc < 0) {
        return NULL;
    }
    return nubo_js_list(reply, "instances", sizeof(struct nubo_instance), instance_parse,
                        instance_clear, err);
}

NUBO_API struct nubo_instance *nubo_instance_get(struct nubo_client *c, const char *id,
                                                 struct nubo_error *err)
{
    if (nubo_need(id, "an instance id", err) < 0) {
        return NULL;
    }
    char *path = nubo_id_path("/v1/instances", id, "");
    json_t *reply = NULL;
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    int rc = nubo_call(c, "GET", path, NULL, NULL, true, &reply, err);
    free(path);
    if (rc < 0) {
        return NULL;
    }
    struct nubo_instance *in = calloc(1, sizeof *in);
    if (!in || instance_parse(reply, in) < 0) {
        nubo_instance_free(in);
        json_decref(reply);
        nubo_err_set(err, 0, "ProtocolError", "could not read instance \"%s\"", id);
        return NULL;
    }
    json_decref(reply);
    return in;
}

NUBO_API int nubo_instance_placement_get(const struct nubo_instance *in,
                                         struct nubo_instance_placement *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->tenancy, sizeof out->tenancy, "default");
    json_t *o = in && in->json ? json_loads(in->json, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    const char *v = json_string_value(json_object_get(o, "tenancy"));
    if (v) {
        snprintf(out->tenancy, sizeof out->tenancy, "%s", v);
    }
    v = json_string_value(json_object_get(o, "placement_group"));
    snprintf(out->placement_group, sizeof out->placement_group, "%s", v ? v : "");
    out->partition_number = (int)nubo_js_int(o, "partition_number");
    json_decref(o);
    return 0;
}

static int console_parse(const json_t *o, void *item)
{
    struct nubo_console *k = item;
    k->instance_id = nubo_js_str(o, "instance_id");
    k->output = nubo_js_str(o, "output");
    k->json = nubo_js_dump(o);
    return k->instance_id && k->output && k->json ? 0 : -1;
}

static void console_clear(void *item)
{
    struct nubo_console *k = item;
    free(k->instance_id);
    free(k->output);
    free(k->json);
}

NUBO_API void nubo_console_free(struct nubo_console *k)
{
    nubo_item_free(k, console_clear);
}

NUBO_API struct nubo_console *nubo_instance_console(struct nubo_client *c, const char *id,
                                                    struct nubo_error *err)
{
    if (nubo_need(id, "an instance id", err) < 0) {
        return NULL;
    }
    char *path = nubo_id_path("/v1/instances", id, "/console");
    json_t *reply = NULL;
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    int rc = nubo_call(c, "GET", path, NULL, NULL, true, &reply, err);
    free(path);
    if (rc < 0) {
        return NULL;
    }
    return nubo_js_item(reply, sizeof(struct nubo_console), console_parse, console_clear,
                        "the console output", err);
}

struct nubo_instance_iter {
    struct nubo_page_iter it;
    struct nubo_instance cur;
};

NUBO_API struct nubo_instance_iter *nubo_instance_iter_new(struct nubo_client *c,
                                                           const struct nubo_filter *filters,
                                                           size_t n_filters, int page_size)
{
    struct nubo_instance_iter *i = calloc(1, sizeof *i);
    if (i &&
        nubo_page_iter_init(&i->it, c, "/v1/instances", "instances", filters, n_filters, page_size,
                            &i->cur, sizeof i->cur, instance_parse, instance_clear) < 0) {
        nubo_instance_iter_free(i);
        return NULL;
    }
    return i;
}

NUBO_API int nubo_instance_iter_next(struct nubo_instance_iter *i, const struct nubo_instance **out,
                                     struct nubo_error *err)
{
    int rc = nubo_page_iter_next(&i->it, err);
    *out = rc == 1 ? &i->cur : NULL;
    return rc;
}

NUBO_API void nubo_instance_iter_free(struct nubo_instance_iter *i)
{
    if (i) {
        nubo_page_iter_clear(&i->it);
        free(i);
    }
}

NUBO_API int nubo_instance_action(struct nubo_client *c, const char *id, enum nubo_instance_op op,
                                  struct nubo_state_change *out, struct nubo_error *err)
{
    static const char *const names[] = {"/stop", "/start", "/reboot", "/terminate"};
    if (nubo_need(id, "an instance id", err) < 0) {
        return -1;
    }
    if ((unsigned)op >= sizeof names / sizeof names[0]) {
        nubo_err_set(err, 0, "InvalidParameterValue", "unknown instance operation %d", (int)op);
        return -1;
    }
    char *path = nubo_id_path("/v1/instances", id, names[op]);
    json_t *reply = NULL;
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    int rc = nubo_call(c, "POST", path, NULL, NULL, false, &reply, err);
    free(path);
    if (rc < 0) {
        return -1;
    }
    if (out) {
        memset(out, 0, sizeof *out);
        const char *v;
        v = json_string_value(json_object_get(reply, "id"));
        snprintf(out->id, sizeof out->id, "%s", v ? v : id);
        v = json_string_value(json_object_get(reply, "previous_state"));
        snprintf(out->previous_state, sizeof out->previous_state, "%s", v ? v : "");
        v = json_string_value(json_object_get(reply, "state"));
        snprintf(out->state, sizeof out->state, "%s", v ? v : "");
    }
    json_decref(reply);
    return 0;
}

NUBO_API struct nubo_instance *nubo_instance_wait(struct nubo_client *c, const char *id,
                                                  const char *state, double timeout_s, int poll_ms,
                                                  nubo_wait_fn progress, void *arg,
                                                  struct nubo_error *err)
{
    double start = nubo_now_s();
    if (poll_ms <= 0) {
        poll_ms = 1000;
    }
    if (nubo_need(state, "a state", err) < 0) {
        return NULL;
    }
    for (;;) {
        struct nubo_instance *in = nubo_instance_get(c, id, err);
        if (!in) {
            return NULL;
        }
        double elapsed = nubo_now_s() - start;
        if (progress && progress(in, elapsed, arg)) {
            nubo_instance_free(in);
            nubo_err_set(err, 0, "Cancelled", "waiting for instance \"%s\" was cancelled", id);
            return NULL;
        }
        if (!strcmp(in->state, state)) {
            return in;
        }
        if (!strcmp(in->state, "terminated")) {
            nubo_err_set(err, 0, "IncorrectInstanceState",
                         "instance \"%s\" is terminated: it will never be %s", id, state);
            nubo_instance_free(in);
            return NULL;
        }
        if (elapsed >= timeout_s) {
            nubo_err_set(err, 0, "Timeout",
                         "instance \"%s\" is still %s after %.0f s (waiting for %s)", id, in->state,
                         elapsed, state);
            nubo_instance_free(in);
            return NULL;
        }
        nubo_instance_free(in);
        double left = timeout_s - elapsed;
        nubo_sleep_s(poll_ms / 1000.0 < left ? poll_ms / 1000.0 : left);
    }
}

/* --- images made from instances ------------------------------------------------------------ */

NUBO_API struct nubo_image *nubo_instance_create_image(struct nubo_client *c, const char *id,
                                                       const char *name, const char *description,
                                                       struct nubo_error *err)
{
    if (nubo_need(id, "an instance id", err) < 0 || nubo_need(name, "an image name", err) < 0) {
        return NULL;
    }
    char *path = nubo_id_path("/v1/instances", id, "/image");
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    /* No client token: a repeat would make a second image (or fail on the name). */
    struct nubo_image *m = nubo_call_one(
        c, "POST", path, json_pack("{s:s, s:s*}", "name", name, "description", description), false,
        sizeof *m, nubo_image_parse, nubo_image_clear, err);
    free(path);
    return m;
}

/* --- key pairs ----------------------------------------------------------------------------- */

static int keypair_parse(const json_t *o, void *item)
{
    struct nubo_keypair *k = item;
    k->id = nubo_js_str(o, "id");
    k->name = nubo_js_str(o, "name");
    k->key_type = nubo_js_str(o, "key_type");
    k->fingerprint = nubo_js_str(o, "fingerprint");
    k->public_key = nubo_js_str(o, "public_key");
    k->created_at = nubo_js_str(o, "created_at");
    k->private_key = nubo_js_str(o, "private_key");
    k->json = nubo_js_dump(o);
    if (nubo_js_tags(o, "tags", &k->tags, &k->n_tags) < 0) {
        return -1;
    }
    return k->name && k->json ? 0 : -1;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void keypair_clear(void *item)
{
    struct nubo_keypair *k = item;
    free(k->id);
    free(k->name);
    free(k->key_type);
    free(k->fingerprint);
    free(k->public_key);
    free(k->created_at);
    wipe_free(k->private_key);
    nubo_tags_free(k->tags, k->n_tags);
    wipe_free(k->json);
}

NUBO_API void nubo_keypair_free(struct nubo_keypair *k)
{
    nubo_item_free(k, keypair_clear);
}

NUBO_API void nubo_keypair_list_free(struct nubo_keypair_list *l)
{
    nubo_list_free(l, sizeof *l->items, keypair_clear);
}

NUBO_API struct nubo_keypair *nubo_keypair_create(struct nubo_client *c, const char *name,
                                                  const char *key_type, struct nubo_error *err)
{
    if (nubo_need(name, "a key pair name", err) < 0) {
        return NULL;
    }
    json_t *body = json_pack("{s:s, s:s?}", "name", name, "key_type", key_type);
    return nubo_call_one(c, "POST", "/v1/keypairs", body, false, sizeof(struct nubo_keypair),
                         keypair_parse, keypair_clear, err);
}

NUBO_API struct nubo_keypair *nubo_keypair_import(struct nubo_client *c, const char *name,
                                                  const char *public_key, struct nubo_error *err)
{
    if (nubo_need(name, "a key pair name", err) < 0 ||
        nubo_need(public_key, "a public key", err) < 0) {
        return NULL;
    }
    json_t *body = json_pack("{s:s, s:s}", "name", name, "public_key", public_key);
    return nubo_call_one(c, "POST", "/v1/keypairs", body, false, sizeof(struct nubo_keypair),
                         keypair_parse, keypair_clear, err);
}

NUBO_API struct nubo_keypair_list *nubo_keypairs_list(struct nubo_client *c,
                                                      const struct nubo_filter *filters,
                                                      size_t n_filters, struct nubo_error *err)
{
    struct nubo_query q = {0};
    const char *text = nubo_filters_query(&q, filters, n_filters, err);
    struct nubo_keypair_list *l =
        text ? nubo_get_list(c, "/v1/keypairs", text, "keypairs", sizeof(struct nubo_keypair),
                             keypair_parse, keypair_clear, err)
             : NULL;
    nubo_query_clear(&q);
    return l;
}

NUBO_API int nubo_keypair_delete(struct nubo_client *c, const char *name, struct nubo_error *err)
{
    if (nubo_need(name, "a key pair name", err) < 0) {
        return -1;
    }
    char *path = nubo_id_path("/v1/keypairs", name, "");
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    int rc = nubo_call(c, "DELETE", path, NULL, NULL, true, NULL, err);
    free(path);
    return rc;
}

/* --- tags ---------------------------------------------------------------------------------- */

static int tag_row_parse(const json_t *o, void *item)
{
    struct nubo_tag_row *t = item;
    t->resource_id = nubo_js_str(o, "resource_id");
    t->resource_type = nubo_js_str(o, "resource_type");
    t->key = nubo_js_str(o, "key");
    t->value = nubo_js_str(o, "value");
    t->json = nubo_js_dump(o);
    return t->resource_id && t->key && t->json ? 0 : -1;
}

static void tag_row_clear(void *item)
{
    struct nubo_tag_row *t = item;
    free(t->resource_id);
    free(t->resource_type);
    free(t->key);
    free(t->value);
    free(t->json);
}

struct nubo_tag_iter {
    struct nubo_page_iter it;
    struct nubo_tag_row cur;
};

NUBO_API struct nubo_tag_iter *nubo_tag_iter_new(struct nubo_client *c,
                                                 const struct nubo_filter *filters,
                                                 size_t n_filters, int page_size)
{
    struct nubo_tag_iter *i = calloc(1, sizeof *i);
    if (i && nubo_page_iter_init(&i->it, c, "/v1/tags", "tags", filters, n_filters, page_size,
                                 &i->cur, sizeof i->cur, tag_row_parse, tag_row_clear) < 0) {
        nubo_tag_iter_free(i);
        return NULL;
    }
    return i;
}

NUBO_API int nubo_tag_iter_next(struct nubo_tag_iter *i, const struct nubo_tag_row **out,
                                struct nubo_error *err)
{
    int rc = nubo_page_iter_next(&i->it, err);
    *out = rc == 1 ? &i->cur : NULL;
    return rc;
}

NUBO_API void nubo_tag_iter_free(struct nubo_tag_iter *i)
{
    if (i) {
        nubo_page_iter_clear(&i->it);
        free(i);
    }
}

NUBO_API int nubo_tags_set(struct nubo_client *c, const char *resource_id,
                           const struct nubo_tag *tags, size_t n_tags, struct nubo_error *err)
{
    if (nubo_need(resource_id, "a resource id", err) < 0) {
        return -1;
    }
    char *path = nubo_id_path("/v1/tags", resource_id, "");
    json_t *body = json_pack("{s:o}", "tags", nubo_js_tags_object(tags, n_tags));
    int rc = -1;
    if (!path || !body) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    } else {
        rc = nubo_call(c, "PUT", path, NULL, body, true, NULL, err);
    }
    json_decref(body);
    free(path);
    return rc;
}

NUBO_API int nubo_tags_delete(struct nubo_client *c, const char *resource_id, const char *key,
                              struct nubo_error *err)
{
    if (nubo_need(resource_id, "a resource id", err) < 0) {
        return -1;
    }
    struct nubo_query q = {0};
    nubo_query_add(&q, "key", key);
    char *path = nubo_id_path("/v1/tags", resource_id, "");
    int rc = -1;
    if (!path || !nubo_query_text(&q)) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    } else {
        rc = nubo_call(c, "DELETE", path, nubo_query_text(&q), NULL, true, NULL, err);
    }
    nubo_query_clear(&q);
    free(path);
    return rc;
}
