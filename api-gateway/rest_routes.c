/* The REST API's routes: request JSON in, service call, response JSON out (see rest_api.h and
 * docs/openapi.yaml). No rule lives here that the EC2 API would need too. */
#include "rest_api.h"
#include "svc_images.h"
#include "nubo/id.h"

#include "auth.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "gateway.h"
#include "reqlog.h"
#include "rest_billing.h"
#include "rest_console.h"
#include "rest_network_edge.h"
#include "rest_remote_access.h"
#include "rest_vdi.h"
#include "svc_admin.h"
#include "svc_hosts.h"
#include "svc_catalog.h"
#include "svc_image_meta.h"
#include "svc_instances.h"
#include "svc_keypairs.h"
#include "svc_network.h"
#include "svc_tags.h"

#include "nubo/arena.h"
#include "nubo/json.h"

#include <stdlib.h>
#include <string.h>

/* --- helpers ------------------------------------------------------------------------------- */

static const char *time_text(struct rest_call *c, int64_t ms)
{
    char *t = nb_arena_alloc(c->arena, EC2_XML_TIME_LEN);
    return ec2_xml_format_time_ms(ms, t);
}

static json_t *tags_json(const struct gw_tag *tags, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(o, tags[i].key, json_string(tags[i].value));
    }
    return o;
}

/* Query arguments other than paging become filters: "?instance-state-name=running,stopped".
 * 'own' names one more argument the route reads itself ("owner" for images), or is NULL. */
static int query_filters_except(struct rest_call *c, const char *own, struct gw_filter **out,
                                size_t *n)
{
    size_t count = ec2_params_count(c->query);
    *out = nb_arena_zalloc(c->arena, sizeof **out * (count ? count : 1));
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        const struct ec2_params_entry *e = ec2_params_at(c->query, i);
        if (!strcmp(e->name, "max_results") || !strcmp(e->name, "next_token") ||
            (own && !strcmp(e->name, own))) {
            continue;
        }
        size_t nv = 1;
        for (const char *p = e->value; *p; p++) {
            nv += *p == ',';
        }
        const char **values = nb_arena_alloc(c->arena, sizeof *values * nv);
        char *copy = nb_arena_strdup(c->arena, e->value);
        char *save = NULL;
        size_t k = 0;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            values[k++] = tok;
        }
        if (k == 0) {
            nb_error_set(&c->err, NB_ERR_INVALID, "filter \"%s\" needs at least one value",
                         e->name);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        (*out)[(*n)++] = (struct gw_filter){e->name, values, k};
    }
    return 0;
}

static int query_filters(struct rest_call *c, struct gw_filter **out, size_t *n)
{
    return query_filters_except(c, NULL, out, n);
}

static int query_page(struct rest_call *c, int max, struct gw_page *page)
{
    long long m = 0;
    if (ec2_params_get_int(c->query, "max_results", false, 1, max, &m, &c->err) < 0) {
        return -1;
    }
    page->max_results = (int)m;
    page->next_token = ec2_params_get(c->query, "next_token");
    return 0;
}

/* Reads {"tags": {"k": "v", ...}} from the body into an arena array. */
static int body_tags(struct rest_call *c, struct gw_tag **tags, size_t *n)
{
    json_t *obj = NULL;
    *tags = NULL;
    *n = 0;
    if (c->body && nb_json_get_object(c->body, "tags", false, &obj, &c->err) < 0) {
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    if (!obj) {
        return 0;
    }
    *tags = nb_arena_zalloc(c->arena, sizeof **tags * (json_object_size(obj) + 1));
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v)) {
            nb_error_set(&c->err, NB_ERR_INVALID, "tag \"%s\" must have a string value", key);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        (*tags)[(*n)++] = (struct gw_tag){key, json_string_value(v)};
    }
    return 0;
}

static int body_string(struct rest_call *c, const char *key, bool required, const char **out)
{
    if (!c->body && !required) {
        return 0;
    }
    if (rest_need_body(c) < 0 || nb_json_get_string(c->body, key, required, out, &c->err) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, c->err.code == NB_ERR_MISSING ? "MissingParameter"
                                                                   : "InvalidParameterValue");
        }
        return -1;
    }
    return 0;
}

static int body_int(struct rest_call *c, const char *key, long long min, long long max,
                    long long *out)
{
    if (c->body && nb_json_get_int(c->body, key, false, min, max, out, &c->err) < 0) {
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    return 0;
}

/* --- catalogue ------------------------------------------------------------------------------ */

static int get_regions(struct rest_call *c)
{
    c->reply = json_pack("{s:[{s:s, s:s}]}", "regions", "name", c->gw->region, "endpoint",
                         c->gw->endpoint);
    return 0;
}

static int get_zones(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_zone *z;
    if (query_filters(c, &f, &nf) < 0 ||
        gw_zones_list(c->gw, NULL, 0, f, nf, c->arena, &z, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", z[i].name, "region",
                                             z[i].region, "state", z[i].state));
    }
    c->reply = json_pack("{s:o}", "zones", arr);
    return 0;
}

static json_t *type_json(const struct gw_instance_type *t)
{
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:b}", "name", t->name, "vcpus", t->vcpus,
                     "memory_mib", t->memory_mib, "disk_gib", t->disk_gib, "ephemeral_gib",
                     t->ephemeral_gib, "enabled", t->enabled);
}

static int get_instance_types(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_page page;
    struct gw_instance_type *t;
    const char *next;
    if (query_filters(c, &f, &nf) < 0 || query_page(c, 1000, &page) < 0 ||
        gw_instance_types_list(c->gw, NULL, 0, f, nf, &page, c->arena, &t, &n, &next, &c->err) <
            0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, type_json(&t[i]));
    }
    c->reply = json_pack("{s:o, s:s?}", "instance_types", arr, "next_token", next);
    return 0;
}

static int put_instance_type(struct rest_call *c)
{
    struct gw_instance_type t = {.name = c->args[0], .enabled = true};
    long long v = 0, m = 0, d = 0, e = 0;
    static const char *const fields[] = {"vcpus",         "memory_mib", "disk_gib",
                                         "ephemeral_gib", "enabled",    NULL};
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        nb_json_get_int(c->body, "vcpus", true, 1, 1024, &v, &c->err) < 0 ||
        nb_json_get_int(c->body, "memory_mib", true, 64, 1LL << 24, &m, &c->err) < 0 ||
        nb_json_get_int(c->body, "disk_gib", false, 0, 65536, &d, &c->err) < 0 ||
        nb_json_get_int(c->body, "ephemeral_gib", false, 0, 65536, &e, &c->err) < 0 ||
        nb_json_get_bool(c->body, "enabled", false, &t.enabled, &c->err) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, c->err.code == NB_ERR_MISSING ? "MissingParameter"
                                                                   : "InvalidParameterValue");
        }
        return -1;
    }
    t.vcpus = (int)v;
    t.memory_mib = (int)m;
    t.disk_gib = (int)d;
    t.ephemeral_gib = (int)e;
    if (gw_instance_type_put(c->gw, c->who, &t, &c->err) < 0) {
        return -1;
    }
    c->reply = type_json(&t);
    return 0;
}

static json_t *image_json(struct rest_call *c, const struct gw_image *m)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:o}", "id", m->id,
                          "owner_id", m->owner_id, "name", m->name, "description", m->description,
                          "state", m->state, "public", m->is_public, "image_type", m->image_type,
                          "architecture", m->architecture, "created_at",
                          time_text(c, m->created_ms), "tags", tags_json(m->tags, m->n_tags));
    if (m->state_reason && !strcmp(m->state, "failed")) {
        json_object_set_new(o, "state_reason", json_string(m->state_reason));
    }
    if (m->disk_format) {
        json_object_set_new(o, "disk_format", json_string(m->disk_format));
    }
    if (m->size_bytes > 0) {
        json_object_set_new(o, "size_bytes", json_integer(m->size_bytes));
    }
    if (m->virtual_size > 0) {
        json_object_set_new(o, "virtual_size", json_integer(m->virtual_size));
    }
    if (m->source_image_id) {
        json_object_set_new(o, "source_image_id", json_string(m->source_image_id));
    }
    return o;
}

static int get_images(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_image *m;
    const char *owner = ec2_params_get(c->query, "owner");
    if (query_filters_except(c, "owner", &f, &nf) < 0 ||
        gw_images_describe(c->gw, c->who, NULL, 0, owner ? &owner : NULL, owner ? 1 : 0, f, nf,
                           c->arena, &m, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, image_json(c, &m[i]));
    }
    c->reply = json_pack("{s:o}", "images", arr);
    return 0;
}

/* Answers 201 with the image 'id' just made, as GET shows it. */
static int reply_new_image(struct rest_call *c, const char *id)
{
    struct gw_image *out;
    size_t n;
    const char *ids[] = {id};
    if (gw_images_describe(c->gw, c->who, ids, 1, NULL, 0, NULL, 0, c->arena, &out, &n, &c->err) <
        0) {
        return -1;
    }
    c->status = 201;
    c->reply = image_json(c, &out[0]);
    return 0;
}

static int post_images(struct rest_call *c)
{
    struct gw_image m = {0};
    long long size = 0;
    const char *source_format = NULL; /* set: an image whose bytes the tenant uploads */
    if (body_string(c, "name", true, &m.name) < 0 ||
        body_string(c, "source_format", false, &source_format) < 0 ||
        body_string(c, "description", false, &m.description) < 0 ||
        body_string(c, "image_type", false, &m.image_type) < 0 ||
        body_string(c, "architecture", false, &m.architecture) < 0 ||
        nb_json_get_bool(c->body, "public", false, &m.is_public, &c->err) < 0 ||
        body_string(c, "location", false, &m.location) < 0 ||
        body_string(c, "sha256", false, &m.sha256) < 0 ||
        body_int(c, "size_bytes", 0, INT64_MAX, &size) < 0 ||
        body_string(c, "disk_format", false, &m.disk_format) < 0 ||
        body_string(c, "kernel_id", false, &m.kernel_id) < 0 ||
        body_string(c, "ramdisk_id", false, &m.ramdisk_id) < 0 ||
        body_string(c, "kernel_args", false, &m.kernel_args) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, "InvalidParameterValue");
        }
        return -1;
    }
    m.size_bytes = size;
    char id[32];
    if (source_format) {
        if (gw_image_create_for_upload(c->gw, c->who, &m, source_format, id, &c->err) < 0) {
            return -1;
        }
        return reply_new_image(c, id);
    }
    if (gw_image_register(c->gw, c->who, &m, id, &c->err) < 0) {
        return -1;
    }
    return reply_new_image(c, id);
}

/* GET /v1/images/{id}: one image the tenant sees (its own, public or shared with it). */
static int get_image(struct rest_call *c)
{
    struct gw_image *m;
    size_t n;
    if (gw_image_check_id(c->args[0], &c->err) < 0 ||
        gw_images_describe(c->gw, c->who, c->args, 1, NULL, 0, NULL, 0, c->arena, &m, &n, &c->err) <
            0) {
        return -1;
    }
    c->reply = image_json(c, &m[0]);
    return 0;
}

/* DELETE /v1/images/{id}: DeregisterImage; 204. */
static int delete_image(struct rest_call *c)
{
    if (gw_image_deregister(c->gw, c->who, c->args[0], &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}

/* Answers the launch permissions of image 'c->args[0]'. */
static int reply_launch_perms(struct rest_call *c)
{
    struct gw_launch_perms p;
    if (gw_image_launch_perms_get(c->gw, c->who, c->args[0], c->arena, &p, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < p.n_tenant_ids; i++) {
        json_array_append_new(arr, json_string(p.tenant_ids[i]));
    }
    c->reply =
        json_pack("{s:s, s:b, s:o}", "image_id", c->args[0], "public", p.is_public, "tenants", arr);
    return 0;
}

static int get_image_launch_perms(struct rest_call *c)
{
    return reply_launch_perms(c);
}

/* Reads the body's array of strings 'key' (absent: none) into an arena array. */
static int body_string_array(struct rest_call *c, const char *key, const char ***out, size_t *n)
{
    json_t *a = json_object_get(c->body, key);
    *out = NULL;
    *n = 0;
    if (!a || json_is_null(a)) {
        return 0;
    }
    if (!json_is_array(a)) {
        nb_error_set(&c->err, NB_ERR_INVALID, "\"%s\" must be an array of ids (strings)", key);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    *out = nb_arena_zalloc(c->arena, sizeof **out * (json_array_size(a) + 1));
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v)) {
            nb_error_set(&c->err, NB_ERR_INVALID, "\"%s\" must be an array of ids (strings)", key);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        (*out)[(*n)++] = json_string_value(v);
    }
    return 0;
}

/* PUT /v1/images/{id}/launch-permissions {"add": [...], "remove": [...], "public": bool}. */
static int put_image_launch_perms(struct rest_call *c)
{
    static const char *const fields[] = {"add", "remove", "public", NULL};
    struct gw_launch_perm_change ch = {.set_public = -1};
    const char **add, **remove;
    bool public_set = false, is_public = false;
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        body_string_array(c, "add", &add, &ch.n_add) < 0 ||
        body_string_array(c, "remove", &remove, &ch.n_remove) < 0 ||
        nb_json_get_bool(c->body, "public", false, &is_public, &c->err) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, "InvalidParameterValue");
        }
        return -1;
    }
    public_set = json_is_boolean(json_object_get(c->body, "public"));
    ch.add = add;
    ch.remove = remove;
    ch.set_public = public_set ? is_public : -1;
    if (gw_image_launch_perms_modify(c->gw, c->who, c->args[0], &ch, &c->err) < 0) {
        return -1;
    }
    return reply_launch_perms(c);
}

/* POST /v1/images/{id}/copy {"name", "description", "client_token"}: CopyImage; 201 with the
 * new image. */
static int post_image_copy(struct rest_call *c)
{
    static const char *const fields[] = {"name", "description", "client_token", NULL};
    struct gw_image_copy_request rq = {.source_image_id = c->args[0]};
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        body_string(c, "name", true, &rq.name) < 0 ||
        body_string(c, "description", false, &rq.description) < 0 ||
        body_string(c, "client_token", false, &rq.client_token) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, "InvalidParameterValue");
        }
        return -1;
    }
    char id[32];
    if (gw_image_copy(c->gw, c->who, &rq, id, &c->err) < 0) {
        return -1;
    }
    return reply_new_image(c, id);
}

/* POST /v1/images/{id}/export: queues an export to OVA (nubo-imaged makes it); 202 with the
 * task, whose OVA is then GET /v1/images/{id}/export.ova. */
static int post_image_export(struct rest_call *c)
{
    char task[NB_ID_MAX + 16];
    if (gw_image_export(c->gw, c->who, c->args[0], task, &c->err) < 0) {
        return -1;
    }
    c->status = 202;
    c->reply = json_pack("{s:s, s:s, s:s}", "export_task_id", task, "image_id", c->args[0], "state",
                         "pending");
    return 0;
}

/* GET /v1/images/{id}/parts: the parts of a multipart upload received so far. */
static int get_image_parts(struct rest_call *c)
{
    struct gw_upload_part *parts;
    size_t n;
    if (gw_upload_parts_list(c->gw, c->who, c->args[0], c->arena, &parts, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_pack("{s:i, s:I, s:s}", "part", parts[i].part_number,
                                             "size_bytes", (json_int_t)parts[i].size_bytes,
                                             "sha256", parts[i].sha256));
    }
    c->reply = json_pack("{s:s, s:o}", "image_id", c->args[0], "parts", arr);
    return 0;
}

/* POST /v1/images/{id}/parts/complete {"parts": [1, 2, ...], "sha256"}: joins the parts into
 * the image's upload, which finishes as a whole upload does. */
static int post_image_parts_complete(struct rest_call *c)
{
    static const char *const fields[] = {"parts", "sha256", NULL};
    const char *sha = NULL;
    json_t *arr = c->body ? json_object_get(c->body, "parts") : NULL;
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        body_string(c, "sha256", false, &sha) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, "InvalidParameterValue");
        }
        return -1;
    }
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (n == 0 || n > GW_UPLOAD_MAX_PARTS) {
        nb_error_set(&c->err, NB_ERR_INVALID, "\"parts\" must list 1 to %d part numbers",
                     GW_UPLOAD_MAX_PARTS);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    int *parts = nb_arena_alloc(c->arena, sizeof *parts * n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > GW_UPLOAD_MAX_PARTS) {
            nb_error_set(&c->err, NB_ERR_INVALID, "\"parts\"[%zu] is not a part number", i);
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        parts[i] = (int)json_integer_value(v);
    }
    char state[16], task[NB_ID_MAX + 16];
    if (gw_upload_complete(c->gw, c->who, c->args[0], parts, n, sha, state, task, &c->err) < 0) {
        return -1;
    }
    c->reply = json_pack("{s:s, s:s}", "image_id", c->args[0], "state", state);
    if (task[0]) {
        json_object_set_new(c->reply, "import_task_id", json_string(task));
        c->status = 202;
    }
    return 0;
}

/* GET /v1/image-tasks/{id}: an import, export or copy of the caller's images. */
static int get_image_task(struct rest_call *c)
{
    struct gw_image_task t;
    if (gw_image_task_get(c->gw, c->who, c->args[0], c->arena, &t, &c->err) < 0) {
        return -1;
    }
    c->reply =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "id", t.id, "kind", t.kind, "image_id",
                  t.image_id, "state", t.state, "progress", t.progress, "status_message",
                  t.status_message, "updated_at", time_text(c, t.updated_ms));
    if (t.result_sha256) {
        json_object_set_new(c->reply, "result_bytes", json_integer(t.result_bytes));
        json_object_set_new(c->reply, "result_sha256", json_string(t.result_sha256));
    }
    return 0;
}

/* --- instances ------------------------------------------------------------------------------ */

static json_t *instance_json(struct rest_call *c, const struct gw_instance *in)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s?, s:s, s:s, s:s, s:i, s:i, s:o}", "id",
                  in->id, "reservation_id", in->reservation_id, "owner_id", in->owner_id,
                  "launch_index", in->launch_index, "image_id", in->image_id, "instance_type",
                  in->instance_type, "key_name", in->key_name, "zone", in->zone, "state", in->state,
                  "launch_time", time_text(c, in->launch_time_ms), "vcpus", in->vcpus, "memory_mib",
                  in->memory_mib, "tags", tags_json(in->tags, in->n_tags));
    json_object_set_new(o, "tenancy", json_string(in->tenancy ? in->tenancy : "default"));
    if (in->placement_group) {
        json_object_set_new(o, "placement_group", json_string(in->placement_group));
    }
    if (in->partition_number) {
        json_object_set_new(o, "partition_number", json_integer(in->partition_number));
    }
    if (in->reason_code) {
        json_object_set_new(
            o, "state_reason",
            json_pack("{s:s, s:s?}", "code", in->reason_code, "message", in->reason_message));
    }
    if (in->interface_id) {
        json_t *groups = json_array();
        for (size_t g = 0; g < in->n_groups; g++) {
            json_array_append_new(groups, json_pack("{s:s, s:s}", "id", in->groups[g].id, "name",
                                                    in->groups[g].name));
        }
        json_object_update_new(o,
                               json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "vpc_id", in->vpc_id,
                                         "subnet_id", in->subnet_id, "private_ip", in->private_ip,
                                         "mac_address", in->mac_address, "network_interface_id",
                                         in->interface_id, "security_groups", groups));
        if (in->public_ip) { /* its elastic IP */
            json_object_set_new(o, "public_ip", json_string(in->public_ip));
        }
    }
    return o;
}

static json_t *instances_json(struct rest_call *c, const struct gw_instance_list *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++) {
        json_array_append_new(arr, instance_json(c, &l->items[i]));
    }
    return json_pack("{s:o, s:s?}", "instances", arr, "next_token", l->next_token);
}

static int get_instances(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf;
    struct gw_page page;
    struct gw_instance_list l;
    if (query_filters(c, &f, &nf) < 0 || query_page(c, 1000, &page) < 0 ||
        gw_instances_describe(c->gw, c->who, NULL, 0, f, nf, &page, c->arena, &l, &c->err) < 0) {
        return -1;
    }
    c->reply = instances_json(c, &l);
    return 0;
}

static int get_instance(struct rest_call *c)
{
    struct gw_page page = {0};
    struct gw_instance_list l;
    if (gw_instances_describe(c->gw, c->who, c->args, 1, NULL, 0, &page, c->arena, &l, &c->err) <
        0) {
        return -1;
    }
    c->reply = instance_json(c, &l.items[0]);
    return 0;
}

static int post_instances(struct rest_call *c)
{
    struct gw_run_request rq = {0};
    const char **group_ids = NULL;
    long long count = 1, min_count = 0, max_count = 0, partition = 0;
    struct gw_tag *tags;
    static const char *const fields[] = {
        "image_id",  "instance_type", "key_name",        "zone",
        "user_data", "client_token",  "count",           "min_count",
        "max_count", "tags",          "placement_group", "partition_number",
        "tenancy",   "subnet_id",     "private_ip",      "security_group_ids",
        NULL};
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        body_string(c, "image_id", true, &rq.image_id) < 0 ||
        body_string(c, "instance_type", false, &rq.instance_type) < 0 ||
        body_string(c, "key_name", false, &rq.key_name) < 0 ||
        body_string(c, "zone", false, &rq.zone) < 0 ||
        body_string(c, "user_data", false, &rq.user_data) < 0 ||
        body_string(c, "client_token", false, &rq.client_token) < 0 ||
        body_int(c, "count", 1, 1000, &count) < 0 ||
        body_int(c, "min_count", 1, 1000, &min_count) < 0 ||
        body_int(c, "max_count", 1, 1000, &max_count) < 0 ||
        body_string(c, "placement_group", false, &rq.placement_group) < 0 ||
        body_int(c, "partition_number", 1, 7, &partition) < 0 ||
        body_string(c, "tenancy", false, &rq.tenancy) < 0 || body_tags(c, &tags, &rq.n_tags) < 0 ||
        body_string(c, "subnet_id", false, &rq.subnet_id) < 0 ||
        body_string(c, "private_ip", false, &rq.private_ip) < 0 ||
        body_string_array(c, "security_group_ids", &group_ids, &rq.n_group_ids) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, "InvalidParameterValue");
        }
        return -1;
    }
    rq.tags = tags;
    rq.group_ids = group_ids;
    rq.partition_number = (int)partition;
    rq.min_count = (int)(min_count ? min_count : count);
    rq.max_count = (int)(max_count ? max_count : count);
    struct gw_instance_list l;
    if (gw_instances_run(c->gw, c->who, &rq, c->arena, &l, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = instances_json(c, &l);
    return 0;
}

static int instance_op(struct rest_call *c, enum gw_instance_op op)
{
    struct gw_state_change *ch;
    if (gw_instances_change(c->gw, c->who, op, c->args, 1, c->arena, &ch, &c->err) < 0) {
        return -1;
    }
    c->reply = json_pack("{s:s, s:s, s:s}", "id", ch[0].id, "previous_state", ch[0].previous_state,
                         "state", ch[0].current_state);
    return 0;
}

/* POST /v1/instances/{id}/image {"name", "description"}: CreateImage; 201 with the image. */
static int post_instance_image(struct rest_call *c)
{
    const char *name, *description = NULL;
    static const char *const fields[] = {"name", "description", NULL};
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        body_string(c, "name", true, &name) < 0 ||
        body_string(c, "description", false, &description) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, "InvalidParameterValue");
        }
        return -1;
    }
    char id[32];
    if (gw_instance_create_image(c->gw, c->who, c->args[0], name, description, id, &c->err) < 0) {
        return -1;
    }
    return reply_new_image(c, id);
}

static int post_instance_action(struct rest_call *c)
{
    static const struct {
        const char *name;
        enum gw_instance_op op;
    } ops[] = {{"terminate", GW_OP_TERMINATE},
               {"stop", GW_OP_STOP},
               {"start", GW_OP_START},
               {"reboot", GW_OP_REBOOT}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (!strcmp(c->args[1], ops[i].name)) {
            return instance_op(c, ops[i].op);
        }
    }
    if (!strcmp(c->args[1], "image")) {
        return post_instance_image(c);
    }
    nb_error_set(&c->err, NB_ERR_INVALID,
                 "unknown instance action \"%s\": expected stop, start, reboot, terminate or "
                 "image",
                 c->args[1]);
    nb_error_reason(&c->err, "InvalidAction");
    return -1;
}

static int delete_instance(struct rest_call *c)
{
    return instance_op(c, GW_OP_TERMINATE);
}

/* --- networks: VPCs, subnets, security groups ---------------------------------------------- */

static json_t *vpc_json(const struct gw_vpc *v)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "id", v->id, "owner_id", v->owner_id,
                     "cidr_block", v->cidr_block, "state", v->state, "segment", v->segment, "tags",
                     tags_json(v->tags, v->n_tags));
}

static json_t *subnet_json(const struct gw_subnet *s)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "id", s->id, "owner_id",
                     s->owner_id, "vpc_id", s->vpc_id, "zone", s->zone, "cidr_block", s->cidr_block,
                     "state", s->state, "available_ips", (json_int_t)s->available_ips, "tags",
                     tags_json(s->tags, s->n_tags));
}

static void rules_json(json_t *arr, const char *direction, const struct gw_sg_rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s?, s:s?, s:s}", "id", r[i].id, "direction",
                           direction, "protocol", r[i].protocol, "from_port", r[i].from_port,
                           "to_port", r[i].to_port, "cidr", r[i].cidr, "group_id", r[i].group_id,
                           "description", r[i].description ? r[i].description : ""));
    }
}

static json_t *sg_json(const struct gw_security_group *g)
{
    json_t *rules = json_array();
    rules_json(rules, "ingress", g->ingress, g->n_ingress);
    rules_json(rules, "egress", g->egress, g->n_egress);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", g->id, "owner_id", g->owner_id,
                     "vpc_id", g->vpc_id, "name", g->name, "description", g->description, "rules",
                     rules, "tags", tags_json(g->tags, g->n_tags));
}

static int get_vpcs(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_vpc *v;
    if (query_filters(c, &f, &nf) < 0 ||
        gw_vpcs_describe(c->gw, c->who, NULL, 0, f, nf, c->arena, &v, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, vpc_json(&v[i]));
    }
    c->reply = json_pack("{s:o}", "vpcs", arr);
    return 0;
}

static int get_vpc(struct rest_call *c)
{
    struct gw_vpc *v;
    size_t n;
    if (gw_vpcs_describe(c->gw, c->who, c->args, 1, NULL, 0, c->arena, &v, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = vpc_json(&v[0]);
    return 0;
}

static int post_vpcs(struct rest_call *c)
{
    static const char *const fields[] = {"cidr_block", "tags", NULL};
    const char *cidr;
    struct gw_tag *tags;
    size_t n_tags;
    struct gw_vpc v;
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        body_string(c, "cidr_block", true, &cidr) < 0 || body_tags(c, &tags, &n_tags) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, "InvalidParameterValue");
        }
        return -1;
    }
    if (gw_vpc_create(c->gw, c->who, cidr, tags, n_tags, c->arena, &v, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = vpc_json(&v);
    return 0;
}

static int delete_vpc(struct rest_call *c)
{
    if (gw_vpc_delete(c->gw, c->who, c->args[0], &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}

static int get_subnets(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_subnet *s;
    if (query_filters(c, &f, &nf) < 0 ||
        gw_subnets_describe(c->gw, c->who, NULL, 0, f, nf, c->arena, &s, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, subnet_json(&s[i]));
    }
    c->reply = json_pack("{s:o}", "subnets", arr);
    return 0;
}

static int get_subnet(struct rest_call *c)
{
    struct gw_subnet *s;
    size_t n;
    if (gw_subnets_describe(c->gw, c->who, c->args, 1, NULL, 0, c->arena, &s, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = subnet_json(&s[0]);
    return 0;
}

static int post_subnets(struct rest_call *c)
{
    static const char *const fields[] = {"vpc_id", "cidr_block", "zone", "tags", NULL};
    const char *vpc_id, *cidr, *zone = NULL;
    struct gw_tag *tags;
    size_t n_tags;
    struct gw_subnet s;
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        body_string(c, "vpc_id", true, &vpc_id) < 0 ||
        body_string(c, "cidr_block", true, &cidr) < 0 || body_string(c, "zone", false, &zone) < 0 ||
        body_tags(c, &tags, &n_tags) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, "InvalidParameterValue");
        }
        return -1;
    }
    if (gw_subnet_create(c->gw, c->who, vpc_id, cidr, zone, tags, n_tags, c->arena, &s, &c->err) <
        0) {
        return -1;
    }
    c->status = 201;
    c->reply = subnet_json(&s);
    return 0;
}

static int delete_subnet(struct rest_call *c)
{
    if (gw_subnet_delete(c->gw, c->who, c->args[0], &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}

static int get_security_groups(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_security_group *g;
    if (query_filters(c, &f, &nf) < 0 ||
        gw_sgs_describe(c->gw, c->who, NULL, 0, NULL, 0, f, nf, c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, sg_json(&g[i]));
    }
    c->reply = json_pack("{s:o}", "security_groups", arr);
    return 0;
}

/* Replies with group 'id' as it is now. */
static int reply_security_group(struct rest_call *c, const char *id)
{
    struct gw_security_group *g;
    size_t n;
    const char *ids[] = {id};
    if (gw_sgs_describe(c->gw, c->who, ids, 1, NULL, 0, NULL, 0, c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = sg_json(&g[0]);
    return 0;
}

static int get_security_group(struct rest_call *c)
{
    return reply_security_group(c, c->args[0]);
}

static int post_security_groups(struct rest_call *c)
{
    static const char *const fields[] = {"name", "description", "vpc_id", "tags", NULL};
    const char *name, *description, *vpc_id;
    struct gw_tag *tags;
    size_t n_tags;
    struct gw_security_group g;
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        body_string(c, "name", true, &name) < 0 ||
        body_string(c, "description", true, &description) < 0 ||
        body_string(c, "vpc_id", true, &vpc_id) < 0 || body_tags(c, &tags, &n_tags) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, "InvalidParameterValue");
        }
        return -1;
    }
    if (gw_sg_create(c->gw, c->who, name, description, vpc_id, tags, n_tags, c->arena, &g,
                     &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = sg_json(&g);
    return 0;
}

static int delete_security_group(struct rest_call *c)
{
    if (gw_sg_delete(c->gw, c->who, c->args[0], &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}

/* Reads {"rules": [{"direction", "protocol", "from_port", "to_port", "cidr" | "group_id",
 * "description"}, ...]} and adds or removes them, ingress and egress each in one change. */
static int change_sg_rules(struct rest_call *c, bool add)
{
    static const char *const fields[] = {"direction", "protocol", "from_port",   "to_port",
                                         "cidr",      "group_id", "description", NULL};
    json_t *arr = NULL;
    if (rest_need_body(c) < 0 || nb_json_get_array(c->body, "rules", true, &arr, &c->err) < 0) {
        if (!c->err.reason[0]) {
            nb_error_reason(&c->err, c->err.code == NB_ERR_MISSING ? "MissingParameter"
                                                                   : "InvalidParameterValue");
        }
        return -1;
    }
    size_t n = json_array_size(arr);
    struct gw_sg_rule *rules[2];
    size_t count[2] = {0, 0};
    for (int d = 0; d < 2; d++) {
        rules[d] = nb_arena_zalloc(c->arena, sizeof *rules[d] * (n ? n : 1));
    }
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r)
    {
        const char *direction = NULL;
        long long from = -1, to = -1;
        struct gw_sg_rule rule = {0};
        if (!json_is_object(r) || nb_json_check_fields(r, fields, &c->err) < 0 ||
            nb_json_get_string(r, "direction", true, &direction, &c->err) < 0 ||
            nb_json_get_string(r, "protocol", true, &rule.protocol, &c->err) < 0 ||
            nb_json_get_int(r, "from_port", false, -1, 65535, &from, &c->err) < 0 ||
            nb_json_get_int(r, "to_port", false, -1, 65535, &to, &c->err) < 0 ||
            nb_json_get_string(r, "cidr", false, &rule.cidr, &c->err) < 0 ||
            nb_json_get_string(r, "group_id", false, &rule.group_id, &c->err) < 0 ||
            nb_json_get_string(r, "description", false, &rule.description, &c->err) < 0 ||
            (strcmp(direction, "ingress") && strcmp(direction, "egress"))) {
            if (!c->err.msg[0]) {
                nb_error_set(&c->err, NB_ERR_INVALID,
                             "rules[%zu] must be an object with \"direction\" ingress or egress",
                             i);
            }
            nb_error_reason(&c->err, "InvalidParameterValue");
            return -1;
        }
        rule.from_port = (int)from;
        rule.to_port = (int)to;
        int d = !strcmp(direction, "egress");
        rules[d][count[d]++] = rule;
    }
    if (n == 0) {
        nb_error_set(&c->err, NB_ERR_MISSING, "\"rules\" must name at least one rule");
        nb_error_reason(&c->err, "MissingParameter");
        return -1;
    }
    for (int d = 0; d < 2; d++) {
        if (count[d] && gw_sg_rules_change(c->gw, c->who, c->args[0], d == 1, add, rules[d],
                                           count[d], &c->err) < 0) {
            return -1;
        }
    }
    return reply_security_group(c, c->args[0]);
}

static int post_sg_rules(struct rest_call *c)
{
    return change_sg_rules(c, true);
}

static int delete_sg_rules(struct rest_call *c)
{
    return change_sg_rules(c, false);
}

/* --- key pairs ------------------------------------------------------------------------------ */

static json_t *keypair_json(struct rest_call *c, const struct gw_keypair *k)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s?}", "id", k->id, "name", k->name,
                     "key_type", k->key_type, "fingerprint", k->fingerprint, "public_key",
                     k->public_key, "created_at", time_text(c, k->created_ms), "tags",
                     tags_json(k->tags, k->n_tags), "private_key", k->private_key);
}

static int get_keypairs(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_keypair *k;
    if (query_filters(c, &f, &nf) < 0 || gw_keypairs_describe(c->gw, c->who, NULL, 0, NULL, 0, f,
                                                              nf, c->arena, &k, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, keypair_json(c, &k[i]));
    }
    c->reply = json_pack("{s:o}", "keypairs", arr);
    return 0;
}

static int post_keypairs(struct rest_call *c)
{
    const char *name, *type = NULL, *public_key = NULL;
    struct gw_tag *tags;
    size_t n_tags;
    if (body_string(c, "name", true, &name) < 0 || body_string(c, "key_type", false, &type) < 0 ||
        body_string(c, "public_key", false, &public_key) < 0 || body_tags(c, &tags, &n_tags) < 0) {
        return -1;
    }
    struct gw_keypair k;
    int rc = public_key ? gw_keypair_import(c->gw, c->who, name, public_key, strlen(public_key),
                                            tags, n_tags, c->arena, &k, &c->err)
                        : gw_keypair_create(c->gw, c->who, name, type, tags, n_tags, c->arena, &k,
                                            &c->err);
    if (rc < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = keypair_json(c, &k);
    return 0;
}

static int delete_keypair(struct rest_call *c)
{
    char deleted[32];
    if (gw_keypair_delete(c->gw, c->who, c->args[0], NULL, deleted, &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}

/* --- tags ----------------------------------------------------------------------------------- */

static int get_tags(struct rest_call *c)
{
    struct gw_filter *f;
    size_t nf, n;
    struct gw_page page;
    struct gw_tag_row *rows;
    const char *next;
    if (query_filters(c, &f, &nf) < 0 || query_page(c, 1000, &page) < 0 ||
        gw_tags_describe(c->gw, c->who, f, nf, &page, c->arena, &rows, &n, &next, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s, s:s}", "resource_id", rows[i].resource_id,
                                        "resource_type", rows[i].resource_type, "key", rows[i].key,
                                        "value", rows[i].value));
    }
    c->reply = json_pack("{s:o, s:s?}", "tags", arr, "next_token", next);
    return 0;
}

static int put_tags(struct rest_call *c)
{
    struct gw_tag *tags;
    size_t n;
    if (rest_need_body(c) < 0 || body_tags(c, &tags, &n) < 0 ||
        gw_tags_create(c->gw, c->who, c->args, 1, tags, n, &c->err) < 0) {
        return -1;
    }
    c->reply = json_pack("{s:s, s:o}", "resource_id", c->args[0], "tags", tags_json(tags, n));
    return 0;
}

static int delete_tags(struct rest_call *c)
{
    const char *key = ec2_params_get(c->query, "key");
    struct gw_tag t = {key, NULL};
    if (gw_tags_delete(c->gw, c->who, c->args, 1, key ? &t : NULL, key ? 1 : 0, &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}

/* --- operator ------------------------------------------------------------------------------- */

static int get_tenants(struct rest_call *c)
{
    json_t *arr = gw_admin_tenants_list(c->gw, c->who, &c->err);
    return rest_reply(c, arr ? json_pack("{s:o}", "tenants", arr) : NULL, 200);
}

static int post_tenants(struct rest_call *c)
{
    const char *name;
    if (body_string(c, "name", true, &name) < 0) {
        return -1;
    }
    return rest_reply(c, gw_admin_tenant_create(c->gw, c->who, name, &c->err), 201);
}

static int post_users(struct rest_call *c)
{
    const char *name, *role = "member";
    if (body_string(c, "name", true, &name) < 0 || body_string(c, "role", false, &role) < 0) {
        return -1;
    }
    return rest_reply(c, gw_admin_user_create(c->gw, c->who, c->args[0], name, role, &c->err), 201);
}

static int post_keys(struct rest_call *c)
{
    return rest_reply(c, gw_admin_key_create(c->gw, c->who, c->args[0], &c->err), 201);
}

/* POST /v1/admin/{tenants|users|keys}/{id}/{enable|disable} */
static int post_enable(struct rest_call *c, const char *kind)
{
    bool enable = !strcmp(c->args[1], "enable");
    if (!enable && strcmp(c->args[1], "disable")) {
        nb_error_set(&c->err, NB_ERR_INVALID, "unknown action \"%s\": expected enable or disable",
                     c->args[1]);
        nb_error_reason(&c->err, "InvalidAction");
        return -1;
    }
    return rest_reply(c, gw_admin_set_enabled(c->gw, c->who, kind, c->args[0], enable, &c->err),
                      200);
}

static int post_tenant_enable(struct rest_call *c)
{
    return post_enable(c, "tenant");
}

static int post_user_enable(struct rest_call *c)
{
    return post_enable(c, "user");
}

static int post_key_enable(struct rest_call *c)
{
    return post_enable(c, "key");
}

static int get_quota(struct rest_call *c)
{
    return rest_reply(c, gw_admin_quota(c->gw, c->who, c->args[0], NULL, &c->err), 200);
}

static int put_quota(struct rest_call *c)
{
    if (rest_need_body(c) < 0) {
        return -1;
    }
    return rest_reply(c, gw_admin_quota(c->gw, c->who, c->args[0], c->body, &c->err), 200);
}

/* --- hosts (operator) --------------------------------------------------------------------- */

static int get_hosts(struct rest_call *c)
{
    json_t *arr = gw_hosts_list(c->gw, c->who, NULL, &c->err);
    return rest_reply(c, arr ? json_pack("{s:o}", "hosts", arr) : NULL, 200);
}

static int get_host(struct rest_call *c)
{
    return rest_reply(c, gw_hosts_list(c->gw, c->who, c->args[0], &c->err), 200);
}

static int post_hosts(struct rest_call *c)
{
    if (rest_need_body(c) < 0) {
        return -1;
    }
    return rest_reply(c, gw_host_create(c->gw, c->who, c->body, &c->err), 201);
}

static int patch_host(struct rest_call *c)
{
    if (rest_need_body(c) < 0) {
        return -1;
    }
    return rest_reply(c, gw_host_update(c->gw, c->who, c->args[0], c->body, &c->err), 200);
}

static int delete_host(struct rest_call *c)
{
    if (gw_host_delete(c->gw, c->who, c->args[0], &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}

static int post_host_evacuate(struct rest_call *c)
{
    return rest_reply(c, gw_host_evacuate(c->gw, c->who, c->args[0], &c->err), 200);
}

/* GET /v1/instances/{id}/console: the tail of the serial console, as GetConsoleOutput. */
static int get_instance_console(struct rest_call *c)
{
    char *text;
    if (gw_instance_console(c->gw, c->who, c->args[0], &text, &c->err) < 0) {
        return -1;
    }
    c->reply = json_pack("{s:s, s:s%}", "instance_id", c->args[0], "output", text, strlen(text));
    free(text);
    return 0;
}

/* GET /v1/admin/requests?tenant_id=&action=&error_code=&errors_only=&from=&to=&limit=
 * 'from' and 'to' are microseconds since the epoch. */
static int get_requests(struct rest_call *c)
{
    if (gw_require_admin(c->who, &c->err) < 0) {
        return -1;
    }
    struct gw_reqlog_filter f = {
        .tenant_id = ec2_params_get(c->query, "tenant_id"),
        .action = ec2_params_get(c->query, "action"),
        .error_code = ec2_params_get(c->query, "error_code"),
    };
    long long from = 0, to = 0, limit = 0;
    if (ec2_params_get_bool(c->query, "errors_only", false, &f.errors_only, &c->err) < 0 ||
        ec2_params_get_int(c->query, "from", false, 0, 1LL << 62, &from, &c->err) < 0 ||
        ec2_params_get_int(c->query, "to", false, 0, 1LL << 62, &to, &c->err) < 0 ||
        ec2_params_get_int(c->query, "limit", false, 1, GW_REQLOG_QUERY_MAX, &limit, &c->err) < 0) {
        return -1;
    }
    f.from_us = from;
    f.to_us = to;
    f.limit = (int)limit;
    json_t *arr = gw_reqlog_query(c->gw->pool, &f, &c->err);
    return rest_reply(c, arr ? json_pack("{s:o}", "requests", arr) : NULL, 200);
}

const struct rest_route rest_routes[] = {
    {"GET", "/v1/regions", get_regions},
    {"GET", "/v1/zones", get_zones},
    {"GET", "/v1/instance-types", get_instance_types},
    {"PUT", "/v1/instance-types/{}", put_instance_type},
    {"GET", "/v1/images", get_images},
    {"POST", "/v1/images", post_images},
    {"GET", "/v1/images/{}", get_image},
    {"DELETE", "/v1/images/{}", delete_image},
    {"GET", "/v1/images/{}/launch-permissions", get_image_launch_perms},
    {"PUT", "/v1/images/{}/launch-permissions", put_image_launch_perms},
    {"POST", "/v1/images/{}/copy", post_image_copy},
    {"POST", "/v1/images/{}/export", post_image_export},
    {"GET", "/v1/images/{}/parts", get_image_parts},
    {"POST", "/v1/images/{}/parts/complete", post_image_parts_complete},
    {"GET", "/v1/image-tasks/{}", get_image_task},
    {"GET", "/v1/instances", get_instances},
    {"POST", "/v1/instances", post_instances},
    {"GET", "/v1/instances/{}", get_instance},
    {"DELETE", "/v1/instances/{}", delete_instance},
    {"POST", "/v1/instances/{}/vnc", rest_post_instance_vnc},
    {"POST", "/v1/instances/{}/{}", post_instance_action},
    {"GET", "/v1/keypairs", get_keypairs},
    {"POST", "/v1/keypairs", post_keypairs},
    {"DELETE", "/v1/keypairs/{}", delete_keypair},
    {"GET", "/v1/tags", get_tags},
    {"PUT", "/v1/tags/{}", put_tags},
    {"DELETE", "/v1/tags/{}", delete_tags},
    {"GET", "/v1/admin/tenants", get_tenants},
    {"POST", "/v1/admin/tenants", post_tenants},
    {"POST", "/v1/admin/tenants/{}/users", post_users},
    {"GET", "/v1/admin/tenants/{}/quota", get_quota},
    {"PUT", "/v1/admin/tenants/{}/quota", put_quota},
    {"POST", "/v1/admin/tenants/{}/{}", post_tenant_enable},
    {"POST", "/v1/admin/users/{}/keys", post_keys},
    {"PUT", "/v1/admin/users/{}/password", rest_put_user_password},
    {"PUT", "/v1/me/password", rest_put_my_password},
    {"POST", "/v1/admin/users/{}/{}", post_user_enable},
    {"POST", "/v1/admin/keys/{}/{}", post_key_enable},
    {"GET", "/v1/admin/requests", get_requests},
    {"GET", "/v1/admin/hosts", get_hosts},
    {"POST", "/v1/admin/hosts", post_hosts},
    {"GET", "/v1/admin/hosts/{}", get_host},
    {"PATCH", "/v1/admin/hosts/{}", patch_host},
    {"DELETE", "/v1/admin/hosts/{}", delete_host},
    {"POST", "/v1/admin/hosts/{}/evacuate", post_host_evacuate},
    {"GET", "/v1/instances/{}/console", get_instance_console},
    {"GET", "/v1/usage", rest_get_usage},
    {"GET", "/v1/invoices", rest_get_invoices},
    {"GET", "/v1/invoices/{}", rest_get_invoice},
    {"GET", "/v1/budget", rest_get_budget},
    {"PUT", "/v1/budget", rest_put_budget},
    {"GET", "/v1/admin/prices", rest_get_prices},
    {"GET", "/v1/vpcs", get_vpcs},
    {"POST", "/v1/vpcs", post_vpcs},
    {"GET", "/v1/vpcs/{}", get_vpc},
    {"DELETE", "/v1/vpcs/{}", delete_vpc},
    {"GET", "/v1/subnets", get_subnets},
    {"POST", "/v1/subnets", post_subnets},
    {"GET", "/v1/subnets/{}", get_subnet},
    {"DELETE", "/v1/subnets/{}", delete_subnet},
    {"GET", "/v1/security-groups", get_security_groups},
    {"POST", "/v1/security-groups", post_security_groups},
    {"GET", "/v1/security-groups/{}", get_security_group},
    {"DELETE", "/v1/security-groups/{}", delete_security_group},
    {"POST", "/v1/security-groups/{}/rules", post_sg_rules},
    {"DELETE", "/v1/security-groups/{}/rules", delete_sg_rules},
    {"GET", "/v1/internet-gateways", rest_get_igws},
    {"POST", "/v1/internet-gateways", rest_post_igws},
    {"GET", "/v1/internet-gateways/{}", rest_get_igw},
    {"DELETE", "/v1/internet-gateways/{}", rest_delete_igw},
    {"POST", "/v1/internet-gateways/{}/attach", rest_post_igw_attach},
    {"POST", "/v1/internet-gateways/{}/detach", rest_post_igw_detach},
    {"GET", "/v1/route-tables", rest_get_rtbs},
    {"POST", "/v1/route-tables", rest_post_rtbs},
    {"GET", "/v1/route-tables/{}", rest_get_rtb},
    {"DELETE", "/v1/route-tables/{}", rest_delete_rtb},
    {"POST", "/v1/route-tables/{}/routes", rest_post_rtb_routes},
    {"DELETE", "/v1/route-tables/{}/routes", rest_delete_rtb_routes},
    {"POST", "/v1/route-tables/{}/associations", rest_post_rtb_associations},
    {"DELETE", "/v1/route-tables/{}/associations/{}", rest_delete_rtb_association},
    {"GET", "/v1/addresses", rest_get_addresses},
    {"POST", "/v1/addresses", rest_post_addresses},
    {"GET", "/v1/addresses/{}", rest_get_address},
    {"DELETE", "/v1/addresses/{}", rest_delete_address},
    {"POST", "/v1/addresses/{}/associate", rest_post_address_associate},
    {"POST", "/v1/addresses/{}/disassociate", rest_post_address_disassociate},
    {"GET", "/v1/vpn-gateways", rest_get_vgws},
    {"POST", "/v1/vpn-gateways", rest_post_vgws},
    {"GET", "/v1/vpn-gateways/{}", rest_get_vgw},
    {"DELETE", "/v1/vpn-gateways/{}", rest_delete_vgw},
    {"POST", "/v1/vpn-gateways/{}/attach", rest_post_vgw_attach},
    {"POST", "/v1/vpn-gateways/{}/detach", rest_post_vgw_detach},
    {"GET", "/v1/customer-gateways", rest_get_cgws},
    {"POST", "/v1/customer-gateways", rest_post_cgws},
    {"GET", "/v1/customer-gateways/{}", rest_get_cgw},
    {"DELETE", "/v1/customer-gateways/{}", rest_delete_cgw},
    {"GET", "/v1/vpn-connections", rest_get_vpns},
    {"POST", "/v1/vpn-connections", rest_post_vpns},
    {"GET", "/v1/vpn-connections/{}", rest_get_vpn},
    {"DELETE", "/v1/vpn-connections/{}", rest_delete_vpn},
    {"POST", "/v1/vpn-connections/{}/routes", rest_post_vpn_routes},
    {"DELETE", "/v1/vpn-connections/{}/routes", rest_delete_vpn_routes},
    {"GET", "/v1/remote-access", rest_get_ras},
    {"POST", "/v1/remote-access", rest_post_ras},
    {"GET", "/v1/remote-access/{}", rest_get_ra},
    {"DELETE", "/v1/remote-access/{}", rest_delete_ra},
    {"GET", "/v1/remote-access/{}/peers", rest_get_ra_peers},
    {"POST", "/v1/remote-access/{}/peers", rest_post_ra_peers},
    {"DELETE", "/v1/remote-access/{}/peers/{}", rest_delete_ra_peer},
    /* Hosted VDI desktops (rest_vdi.h). */
    {"GET", "/v1/vdi/pools", rest_get_vdi_pools},
    {"POST", "/v1/vdi/pools", rest_post_vdi_pools},
    {"GET", "/v1/vdi/pools/{}", rest_get_vdi_pool},
    {"PATCH", "/v1/vdi/pools/{}", rest_patch_vdi_pool},
    {"DELETE", "/v1/vdi/pools/{}", rest_delete_vdi_pool},
    {"GET", "/v1/vdi/pools/{}/desktops", rest_get_vdi_pool_desktops},
    {"GET", "/v1/vdi/pools/{}/users", rest_get_vdi_pool_users},
    {"PUT", "/v1/vdi/pools/{}/users/{}", rest_put_vdi_pool_user},
    {"DELETE", "/v1/vdi/pools/{}/users/{}", rest_delete_vdi_pool_user},
    {"POST", "/v1/vdi/pools/{}/connect", rest_post_vdi_connect},
    {"GET", "/v1/vdi/desktops/{}", rest_get_vdi_desktop},
    {"POST", "/v1/vdi/desktops/{}/console", rest_post_vdi_console},
    {"POST", "/v1/vdi/desktops/{}/sign-out", rest_post_vdi_sign_out},
    {"GET", "/v1/vdi/my-desktops", rest_get_vdi_my_desktops},
    {NULL, NULL, NULL},
};
