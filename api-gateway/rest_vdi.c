/* The REST routes of hosted VDI desktops (see rest_vdi.h): request JSON in, svc_vdi.h call,
 * response JSON out. */
#include "rest_vdi.h"

#include "auth.h"
#include "rest_api.h"
#include "rest_console.h"
#include "svc_console.h"
#include "svc_vdi.h"

#include "nubo/arena.h"
#include "nubo/json.h"

#include <string.h>

/* Gives 'c->err' an EC2 reason when the failing helper set none. Returns -1. */
static int bad_request(struct rest_call *c)
{
    if (!c->err.reason[0]) {
        nb_error_reason(&c->err, c->err.code == NB_ERR_MISSING ? "MissingParameter"
                                                               : "InvalidParameterValue");
    }
    return -1;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *pool_json(const struct gw_vdi_pool *p)
{
    json_t *groups = json_array();
    for (size_t i = 0; i < p->n_group_ids; i++) {
        json_array_append_new(groups, json_string(p->group_ids[i]));
    }
    const struct gw_vdi_counts *n = &p->counts;
    json_t *counts = json_pack(
        "{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "available", n->available, "assigned",
        n->assigned, "reserved", n->reserved, "resetting", n->resetting, "restarting",
        n->restarting, "terminating", n->terminating, "total", n->total, "running", n->running);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:i, s:i, s:b, s:i, s:s, s:s, "
                     "s:o, s:o, s:s, s:o}",
                     "id", p->id, "owner_id", p->owner_id, "name", p->name, "description",
                     p->description, "image_id", p->image_id, "instance_type", p->instance_type,
                     "subnet_id", str_or_null(p->subnet_id), "security_group_ids", groups, "size",
                     p->size, "spares", p->spares, "persistent", p->persistent, "idle_stop_s",
                     p->idle_stop_s, "entitlement", p->entitlement, "state", p->state, "last_error",
                     str_or_null(p->last_error), "last_error_at", str_or_null(p->last_error_at),
                     "created_at", p->created_at, "desktops", counts);
}

static json_t *desktop_json(const struct gw_vdi_desktop *d)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:b}", "id", d->id,
                     "pool_id", d->pool_id, "pool_name", d->pool_name, "instance_id",
                     str_or_null(d->instance_id), "state", d->state, "instance_state",
                     str_or_null(d->instance_state), "owner_id", str_or_null(d->owner_id),
                     "user_id", str_or_null(d->user_id), "assigned_at", str_or_null(d->assigned_at),
                     "last_active_at", d->last_active_at, "private_ip", str_or_null(d->private_ip),
                     "ready", d->ready);
}

static json_t *desktops_json(const struct gw_vdi_desktop *d, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, desktop_json(&d[i]));
    }
    return json_pack("{s:o}", "desktops", arr);
}

/* Reads the optional integer 'key' of the body into '*out' (untouched when absent). */
static int body_int(struct rest_call *c, const char *key, long long max, int *out)
{
    long long v;
    int got = nb_json_get_int(c->body, key, false, 0, max, &v, &c->err);
    if (got < 0) {
        return bad_request(c);
    }
    if (got > 0) {
        *out = (int)v;
    }
    return 0;
}

/* GET /v1/vdi/pools. A desktop user sees which pools there are to connect to, nothing more. */
int rest_get_vdi_pools(struct rest_call *c)
{
    struct gw_vdi_pool *p;
    size_t n;
    if (gw_vdi_pools_describe(c->gw, c->who, NULL, c->arena, &p, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (c->who->role == GW_ROLE_DESKTOP) {
            if (!strcmp(p[i].state, "active")) {
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b}", "id", p[i].id, "name",
                                                     p[i].name, "description", p[i].description,
                                                     "persistent", p[i].persistent));
            }
        } else {
            json_array_append_new(arr, pool_json(&p[i]));
        }
    }
    c->reply = json_pack("{s:o}", "pools", arr);
    return 0;
}

/* POST /v1/vdi/pools {"name", "image_id", "instance_type", "size", "spares", "persistent",
 * "idle_stop_s", "description"?, "subnet_id"?, "security_group_ids"?}: 201 with the pool. */
int rest_post_vdi_pools(struct rest_call *c)
{
    static const char *const fields[] = {
        "name",       "description", "image_id",  "instance_type",      "size",        "spares",
        "persistent", "idle_stop_s", "subnet_id", "security_group_ids", "entitlement", NULL};
    struct gw_vdi_pool_spec s = {.idle_stop_s = 1800};
    json_t *groups = NULL;
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        nb_json_get_string(c->body, "name", true, &s.name, &c->err) < 0 ||
        nb_json_get_string(c->body, "description", false, &s.description, &c->err) < 0 ||
        nb_json_get_string(c->body, "image_id", true, &s.image_id, &c->err) < 0 ||
        nb_json_get_string(c->body, "instance_type", true, &s.instance_type, &c->err) < 0 ||
        nb_json_get_string(c->body, "subnet_id", false, &s.subnet_id, &c->err) < 0 ||
        nb_json_get_string(c->body, "entitlement", false, &s.entitlement, &c->err) < 0 ||
        nb_json_get_bool(c->body, "persistent", true, &s.persistent, &c->err) < 0 ||
        nb_json_get_array(c->body, "security_group_ids", false, &groups, &c->err) < 0) {
        return bad_request(c);
    }
    long long size, spares = 0;
    if (nb_json_get_int(c->body, "size", true, 1, 1000, &size, &c->err) < 0 ||
        nb_json_get_int(c->body, "spares", false, 0, 1000, &spares, &c->err) < 0 ||
        body_int(c, "idle_stop_s", 2592000, &s.idle_stop_s) < 0) {
        return bad_request(c);
    }
    s.size = (int)size;
    s.spares = (int)spares;
    if (groups) {
        size_t n = json_array_size(groups);
        const char **ids = nb_arena_zalloc(c->arena, sizeof *ids * (n ? n : 1));
        for (size_t i = 0; i < n; i++) {
            ids[i] = json_string_value(json_array_get(groups, i));
            if (!ids[i]) {
                nb_error_set(&c->err, NB_ERR_INVALID, "security_group_ids must hold strings");
                return bad_request(c);
            }
        }
        s.group_ids = ids;
        s.n_group_ids = n;
    }
    struct gw_vdi_pool p;
    if (gw_vdi_pool_create(c->gw, c->who, &s, c->arena, &p, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = pool_json(&p);
    return 0;
}

int rest_get_vdi_pool(struct rest_call *c)
{
    struct gw_vdi_pool *p;
    size_t n;
    if (gw_vdi_pools_describe(c->gw, c->who, c->args[0], c->arena, &p, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = pool_json(&p[0]);
    return 0;
}

/* PATCH /v1/vdi/pools/{id} {"size"?, "spares"?, "idle_stop_s"?, "entitlement"?} */
int rest_patch_vdi_pool(struct rest_call *c)
{
    static const char *const fields[] = {"size", "spares", "idle_stop_s", "entitlement", NULL};
    struct gw_vdi_pool_patch patch = {-1, -1, -1, NULL};
    if (rest_need_body(c) < 0 || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        nb_json_get_string(c->body, "entitlement", false, &patch.entitlement, &c->err) < 0 ||
        body_int(c, "size", 1000, &patch.size) < 0 ||
        body_int(c, "spares", 1000, &patch.spares) < 0 ||
        body_int(c, "idle_stop_s", 2592000, &patch.idle_stop_s) < 0) {
        return bad_request(c);
    }
    struct gw_vdi_pool p;
    if (gw_vdi_pool_update(c->gw, c->who, c->args[0], &patch, c->arena, &p, &c->err) < 0) {
        return -1;
    }
    c->reply = pool_json(&p);
    return 0;
}

/* DELETE /v1/vdi/pools/{id}: 202 with the pool, now 'deleting' (the worker finishes it). */
int rest_delete_vdi_pool(struct rest_call *c)
{
    struct gw_vdi_pool p;
    if (gw_vdi_pool_delete(c->gw, c->who, c->args[0], c->arena, &p, &c->err) < 0) {
        return -1;
    }
    c->status = 202;
    c->reply = pool_json(&p);
    return 0;
}

int rest_get_vdi_pool_desktops(struct rest_call *c)
{
    struct gw_vdi_desktop *d;
    size_t n;
    if (gw_vdi_desktops_describe(c->gw, c->who, c->args[0], c->arena, &d, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = desktops_json(d, n);
    return 0;
}

/* POST /v1/vdi/pools/{id}/connect: {"desktop": {...}, "ready": bool}. */
int rest_post_vdi_connect(struct rest_call *c)
{
    struct gw_vdi_desktop d;
    if (gw_vdi_connect(c->gw, c->who, c->args[0], c->arena, &d, &c->err) < 0) {
        return -1;
    }
    c->reply = json_pack("{s:o, s:b}", "desktop", desktop_json(&d), "ready", d.ready);
    return 0;
}

int rest_get_vdi_desktop(struct rest_call *c)
{
    struct gw_vdi_desktop d;
    if (gw_vdi_desktop_get(c->gw, c->who, c->args[0], c->arena, &d, &c->err) < 0) {
        return -1;
    }
    c->reply = desktop_json(&d);
    return 0;
}

/* POST /v1/vdi/desktops/{id}/console: 201 with a console ticket, as for an instance. */
int rest_post_vdi_console(struct rest_call *c)
{
    struct gw_console_ticket t;
    if (gw_vdi_console(c->gw, c->who, c->args[0], c->arena, &t, &c->err) < 0) {
        return -1;
    }
    c->status = 201;
    c->reply = rest_console_ticket_json(&t);
    return 0;
}

int rest_post_vdi_sign_out(struct rest_call *c)
{
    struct gw_vdi_desktop d;
    if (gw_vdi_sign_out(c->gw, c->who, c->args[0], c->arena, &d, &c->err) < 0) {
        return -1;
    }
    c->reply = desktop_json(&d);
    return 0;
}

int rest_get_vdi_my_desktops(struct rest_call *c)
{
    struct gw_vdi_desktop *d;
    size_t n;
    if (gw_vdi_desktops_describe(c->gw, c->who, NULL, c->arena, &d, &n, &c->err) < 0) {
        return -1;
    }
    c->reply = desktops_json(d, n);
    return 0;
}

static json_t *grant_json(const struct gw_vdi_grant *g)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "pool_id", g->pool_id, "user_id", g->user_id,
                     "user_name", g->user_name, "granted_at", g->granted_at);
}

/* GET /v1/vdi/pools/{id}/users: {"users": [grant...]}. */
int rest_get_vdi_pool_users(struct rest_call *c)
{
    struct gw_vdi_grant *g;
    size_t n;
    if (gw_vdi_grants_describe(c->gw, c->who, c->args[0], c->arena, &g, &n, &c->err) < 0) {
        return -1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, grant_json(&g[i]));
    }
    c->reply = json_pack("{s:o}", "users", arr);
    return 0;
}

/* PUT /v1/vdi/pools/{id}/users/{user_id}: the grant (granting again is no error). */
int rest_put_vdi_pool_user(struct rest_call *c)
{
    struct gw_vdi_grant g;
    if (gw_vdi_grant(c->gw, c->who, c->args[0], c->args[1], c->arena, &g, &c->err) < 0) {
        return -1;
    }
    c->reply = grant_json(&g);
    return 0;
}

/* DELETE /v1/vdi/pools/{id}/users/{user_id}: 204 (revoking what is not granted is no error). */
int rest_delete_vdi_pool_user(struct rest_call *c)
{
    if (gw_vdi_revoke(c->gw, c->who, c->args[0], c->args[1], c->arena, NULL, &c->err) < 0) {
        return -1;
    }
    c->status = 204;
    return 0;
}

/* Matches 'path' against 'pattern' whose "{}" stands for one non-empty segment. */
static bool path_is(const char *pattern, const char *path)
{
    while (*pattern && *path) {
        if (!strncmp(pattern, "{}", 2)) {
            size_t len = strcspn(path, "/");
            if (len == 0) {
                return false;
            }
            path += len;
            pattern += 2;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && !*path;
}

bool rest_vdi_desktop_user_may(const char *method, const char *path)
{
    static const struct {
        const char *method;
        const char *pattern;
    } allowed[] = {
        {"GET", "/v1/vdi/pools"},
        {"POST", "/v1/vdi/pools/{}/connect"},
        {"GET", "/v1/vdi/desktops/{}"},
        {"POST", "/v1/vdi/desktops/{}/console"},
        {"POST", "/v1/vdi/desktops/{}/sign-out"},
        {"GET", "/v1/vdi/my-desktops"},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (!strcmp(method, allowed[i].method) && path_is(allowed[i].pattern, path)) {
            return true;
        }
    }
    return false;
}
