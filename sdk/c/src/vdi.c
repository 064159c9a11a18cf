/* Console tickets and hosted VDI desktops: the single-use tickets that open a screen in a browser
 * (/v1/instances/{id}/vnc, /v1/vdi/desktops/{id}/console), desktop pools (/v1/vdi/pools) and the
 * connection broker (/v1/vdi/pools/{id}/connect, /v1/vdi/desktops, /v1/vdi/my-desktops); JSON
 * answers parsed into the public structs of nubo/vdi.h. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sends 'method' to "<base>/<id><suffix>" with 'body' (stolen, may be NULL) and parses the 2xx
 * answer's object 'key' (the whole answer when NULL) with 'parse' into a new item of 'size'
 * bytes. Returns it (the caller frees it with nubo_item_free(.., 'clear')), or NULL with '*err'
 * set. Only GETs are retried: every POST here makes something (a ticket, a session, a pool). */
static void *vdi_call(struct nubo_client *c, const char *method, const char *base, const char *id,
                      const char *suffix, const char *what, json_t *body, const char *key,
                      size_t size, int (*parse)(const json_t *, void *), void (*clear)(void *),
                      struct nubo_error *err)
{
    if (nubo_need(id, what, err) < 0) {
        json_decref(body);
        return NULL;
    }
    char *path = nubo_id_path(base, id, suffix);
    json_t *reply = NULL;
    int rc = -1;
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    } else {
        rc = nubo_call(c, method, path, NULL, body, !strcmp(method, "GET"), &reply, err);
    }
    free(path);
    json_decref(body);
    if (rc < 0) {
        return NULL;
    }
    if (key) {
        /* The item is a member of the answer: keep it alive past the answer's own release. */
        json_t *inner = json_incref(json_object_get(reply, key));
        json_decref(reply);
        reply = inner;
    }
    return nubo_js_item(reply, size, parse, clear, what, err);
}

/* --- console tickets --------------------------------------------------------------------------- */

/* Returns "<endpoint><path>" with the endpoint's scheme http(s) turned into 'ws' ws(s) when
 * 'ws' is true, as a new string, or NULL when out of memory. */
static char *endpoint_url(const char *endpoint, const char *path, bool ws)
{
    const char *rest = endpoint, *scheme = "";
    if (ws && !strncmp(endpoint, "https://", 8)) {
        scheme = "wss://";
        rest = endpoint + 8;
    } else if (ws && !strncmp(endpoint, "http://", 7)) {
        scheme = "ws://";
        rest = endpoint + 7;
    }
    size_t n = strlen(scheme) + strlen(rest) + strlen(path) + 1;
    char *url = malloc(n);
    if (url) {
        snprintf(url, n, "%s%s%s", scheme, rest, path);
    }
    return url;
}

static int ticket_parse(const json_t *o, void *item)
{
    struct nubo_console_ticket *t = item;
    t->instance_id = nubo_js_str(o, "instance_id");
    t->token = nubo_js_str(o, "token");
    t->expires_in = (int)nubo_js_int(o, "expires_in");
    t->websocket = nubo_js_str(o, "websocket");
    t->viewer = nubo_js_str(o, "viewer");
    t->json = nubo_js_dump(o);
    return t->instance_id && t->token && t->websocket && t->viewer && t->json ? 0 : -1;
}

static void ticket_clear(void *item)
{
    struct nubo_console_ticket *t = item;
    /* The token (also inside the URLs and the JSON) opens the screen: leave no copy behind. */
    char *secrets[] = {t->token, t->websocket, t->viewer, t->viewer_url, t->websocket_url, t->json};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        if (secrets[i]) {
            explicit_bzero(secrets[i], strlen(secrets[i]));
        }
        free(secrets[i]);
    }
    free(t->instance_id);
}

/* POSTs to "<base>/<id><suffix>" for a ticket and completes its URLs from the client's
 * endpoint. Returns it, or NULL with '*err' set. */
static struct nubo_console_ticket *ticket_call(struct nubo_client *c, const char *base,
                                               const char *id, const char *suffix, const char *what,
                                               struct nubo_error *err)
{
    struct nubo_console_ticket *t = vdi_call(c, "POST", base, id, suffix, what, NULL, NULL,
                                             sizeof *t, ticket_parse, ticket_clear, err);
    if (!t) {
        return NULL;
    }
    const char *endpoint = nubo_client_endpoint(c);
    t->viewer_url = endpoint_url(endpoint, t->viewer, false);
    t->websocket_url = endpoint_url(endpoint, t->websocket, true);
    if (!t->viewer_url || !t->websocket_url) {
        nubo_console_ticket_free(t);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    return t;
}

NUBO_API struct nubo_console_ticket *nubo_instance_vnc(struct nubo_client *c, const char *id,
                                                       struct nubo_error *err)
{
    return ticket_call(c, "/v1/instances", id, "/vnc", "an instance id", err);
}

NUBO_API void nubo_console_ticket_free(struct nubo_console_ticket *t)
{
    nubo_item_free(t, ticket_clear);
}

/* --- pools ------------------------------------------------------------------------------------- */

static int pool_parse(const json_t *o, void *item)
{
    struct nubo_vdi_pool *p = item;
    p->id = nubo_js_str(o, "id");
    p->owner_id = nubo_js_str(o, "owner_id");
    p->name = nubo_js_str(o, "name");
    p->description = nubo_js_str(o, "description");
    p->image_id = nubo_js_str(o, "image_id");
    p->instance_type = nubo_js_str(o, "instance_type");
    p->subnet_id = nubo_js_str(o, "subnet_id");
    p->size = (int)nubo_js_int(o, "size");
    p->spares = (int)nubo_js_int(o, "spares");
    p->persistent = nubo_js_bool(o, "persistent");
    p->idle_stop_s = (int)nubo_js_int(o, "idle_stop_s");
    p->state = nubo_js_str(o, "state");
    p->last_error = nubo_js_str(o, "last_error");
    p->last_error_at = nubo_js_str(o, "last_error_at");
    p->created_at = nubo_js_str(o, "created_at");
    p->entitlement = nubo_js_str(o, "entitlement");
    p->json = nubo_js_dump(o);
    const json_t *n = json_object_get(o, "desktops");
    struct nubo_vdi_desktop_counts *d = &p->desktops;
    d->available = nubo_js_int(n, "available");
    d->assigned = nubo_js_int(n, "assigned");
    d->reserved = nubo_js_int(n, "reserved");
    d->resetting = nubo_js_int(n, "resetting");
    d->restarting = nubo_js_int(n, "restarting");
    d->terminating = nubo_js_int(n, "terminating");
    d->total = nubo_js_int(n, "total");
    d->running = nubo_js_int(n, "running");
    const json_t *groups = json_object_get(o, "security_group_ids");
    size_t count = json_array_size(groups);
    if (count) {
        p->security_group_ids = calloc(count, sizeof *p->security_group_ids);
        if (!p->security_group_ids) {
            return -1;
        }
        for (size_t i = 0; i < count; i++) {
            const char *g = json_string_value(json_array_get(groups, i));
            p->security_group_ids[p->n_security_groups] = g ? strdup(g) : NULL;
            if (!p->security_group_ids[p->n_security_groups++]) {
                return -1;
            }
        }
    }
    return p->id && p->name && p->json ? 0 : -1;
}

static void pool_clear(void *item)
{
    struct nubo_vdi_pool *p = item;
    free(p->id);
    free(p->owner_id);
    free(p->name);
    free(p->description);
    free(p->image_id);
    free(p->instance_type);
    free(p->subnet_id);
    for (size_t i = 0; i < p->n_security_groups; i++) {
        free(p->security_group_ids[i]);
    }
    free(p->security_group_ids);
    free(p->state);
    free(p->last_error);
    free(p->last_error_at);
    free(p->created_at);
    free(p->entitlement);
    free(p->json);
}

#define POOL sizeof(struct nubo_vdi_pool), pool_parse, pool_clear

NUBO_API void nubo_vdi_pool_params_init(struct nubo_vdi_pool_params *p)
{
    memset(p, 0, sizeof *p);
    p->idle_stop_s = -1;
}

NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_create(struct nubo_client *c,
                                                    const struct nubo_vdi_pool_params *p,
                                                    struct nubo_error *err)
{
    return nubo_vdi_pool_create_entitled(c, p, NULL, err);
}

NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_create_entitled(struct nubo_client *c,
                                                             const struct nubo_vdi_pool_params *p,
                                                             const char *entitlement,
                                                             struct nubo_error *err)
{
    if (!p) {
        nubo_err_set(err, 0, "InvalidParameterValue", "the pool's parameters are required");
        return NULL;
    }
    if (nubo_need(p->name, "a pool name", err) < 0 ||
        nubo_need(p->image_id, "an image id", err) < 0 ||
        nubo_need(p->instance_type, "an instance type", err) < 0) {
        return NULL;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:i, s:i, s:b}", "name", p->name, "image_id",
                             p->image_id, "instance_type", p->instance_type, "size", p->size,
                             "spares", p->spares, "persistent", p->persistent);
    int rc = body ? 0 : -1;
    if (body && p->description) {
        rc |= json_object_set_new(body, "description", json_string(p->description));
    }
    if (body && p->subnet_id) {
        rc |= json_object_set_new(body, "subnet_id", json_string(p->subnet_id));
    }
    if (body && p->idle_stop_s >= 0) {
        rc |= json_object_set_new(body, "idle_stop_s", json_integer(p->idle_stop_s));
    }
    if (body && entitlement) {
        rc |= json_object_set_new(body, "entitlement", json_string(entitlement));
    }
    if (body && p->n_security_groups) {
        json_t *groups = json_array();
        for (size_t i = 0; groups && i < p->n_security_groups; i++) {
            rc |= json_array_append_new(groups, json_string(p->security_group_ids[i]));
        }
        rc |= json_object_set_new(body, "security_group_ids", groups);
    }
    if (rc) {
        json_decref(body);
        body = NULL; /* nubo_call_one() says "out of memory" */
    }
    return nubo_call_one(c, "POST", "/v1/vdi/pools", body, false, POOL, err);
}

NUBO_API struct nubo_vdi_pool_list *nubo_vdi_pools_list(struct nubo_client *c,
                                                        struct nubo_error *err)
{
    return nubo_get_list(c, "/v1/vdi/pools", NULL, "pools", POOL, err);
}

NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_get(struct nubo_client *c, const char *id,
                                                 struct nubo_error *err)
{
    return vdi_call(c, "GET", "/v1/vdi/pools", id, "", "a pool id", NULL, NULL, POOL, err);
}

NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_update(struct nubo_client *c, const char *id, int size,
                                                    int spares, int idle_stop_s,
                                                    struct nubo_error *err)
{
    return nubo_vdi_pool_update_entitled(c, id, size, spares, idle_stop_s, NULL, err);
}

NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_update_entitled(struct nubo_client *c, const char *id,
                                                             int size, int spares, int idle_stop_s,
                                                             const char *entitlement,
                                                             struct nubo_error *err)
{
    if (size < 0 && spares < 0 && idle_stop_s < 0 && !entitlement) {
        nubo_err_set(err, 0, "InvalidParameterValue",
                     "a size, a number of spares, an idle time or an entitlement is required");
        return NULL;
    }
    json_t *body = json_object();
    int rc = body ? 0 : -1;
    if (body && size >= 0) {
        rc |= json_object_set_new(body, "size", json_integer(size));
    }
    if (body && spares >= 0) {
        rc |= json_object_set_new(body, "spares", json_integer(spares));
    }
    if (body && idle_stop_s >= 0) {
        rc |= json_object_set_new(body, "idle_stop_s", json_integer(idle_stop_s));
    }
    if (body && entitlement) {
        rc |= json_object_set_new(body, "entitlement", json_string(entitlement));
    }
    if (rc) {
        json_decref(body);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    return vdi_call(c, "PATCH", "/v1/vdi/pools", id, "", "a pool id", body, NULL, POOL, err);
}

NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_delete(struct nubo_client *c, const char *id,
                                                    struct nubo_error *err)
{
    return vdi_call(c, "DELETE", "/v1/vdi/pools", id, "", "a pool id", NULL, NULL, POOL, err);
}

NUBO_API void nubo_vdi_pool_free(struct nubo_vdi_pool *p)
{
    nubo_item_free(p, pool_clear);
}

NUBO_API void nubo_vdi_pool_list_free(struct nubo_vdi_pool_list *l)
{
    nubo_list_free(l, sizeof *l->items, pool_clear);
}

/* --- entitlements ------------------------------------------------------------------------------ */

static int grant_parse(const json_t *o, void *item)
{
    struct nubo_vdi_grant *g = item;
    g->pool_id = nubo_js_str(o, "pool_id");
    g->user_id = nubo_js_str(o, "user_id");
    g->user_name = nubo_js_str(o, "user_name");
    g->granted_at = nubo_js_str(o, "granted_at");
    g->json = nubo_js_dump(o);
    return g->pool_id && g->user_id && g->json ? 0 : -1;
}

static void grant_clear(void *item)
{
    struct nubo_vdi_grant *g = item;
    free(g->pool_id);
    free(g->user_id);
    free(g->user_name);
    free(g->granted_at);
    free(g->json);
}

#define GRANT sizeof(struct nubo_vdi_grant), grant_parse, grant_clear

NUBO_API struct nubo_vdi_grant_list *nubo_vdi_pool_users(struct nubo_client *c, const char *pool_id,
                                                         struct nubo_error *err)
{
    if (nubo_need(pool_id, "a pool id", err) < 0) {
        return NULL;
    }
    char *path = nubo_id_path("/v1/vdi/pools", pool_id, "/users");
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    struct nubo_vdi_grant_list *l = nubo_get_list(c, path, NULL, "users", GRANT, err);
    free(path);
    return l;
}

/* Returns "/v1/vdi/pools/<pool_id>/users/<user_id>" as a new string, or NULL with '*err' set. */
static char *grant_path(const char *pool_id, const char *user_id, struct nubo_error *err)
{
    if (nubo_need(pool_id, "a pool id", err) < 0 || nubo_need(user_id, "a user id", err) < 0) {
        return NULL;
    }
    char *users = nubo_id_path("/v1/vdi/pools", pool_id, "/users");
    char *path = users ? nubo_id_path(users, user_id, "") : NULL;
    free(users);
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    }
    return path;
}

NUBO_API struct nubo_vdi_grant *nubo_vdi_pool_grant(struct nubo_client *c, const char *pool_id,
                                                    const char *user_id, struct nubo_error *err)
{
    char *path = grant_path(pool_id, user_id, err);
    if (!path) {
        return NULL;
    }
    json_t *reply = NULL;
    int rc = nubo_call(c, "PUT", path, NULL, NULL, true, &reply, err);
    free(path);
    return rc < 0 ? NULL : nubo_js_item(reply, GRANT, "a grant", err);
}

NUBO_API int nubo_vdi_pool_revoke(struct nubo_client *c, const char *pool_id, const char *user_id,
                                  struct nubo_error *err)
{
    char *path = grant_path(pool_id, user_id, err);
    if (!path) {
        return -1;
    }
    json_t *reply = NULL;
    int rc = nubo_call(c, "DELETE", path, NULL, NULL, true, &reply, err);
    json_decref(reply);
    free(path);
    return rc < 0 ? -1 : 0;
}

NUBO_API void nubo_vdi_grant_free(struct nubo_vdi_grant *g)
{
    nubo_item_free(g, grant_clear);
}

NUBO_API void nubo_vdi_grant_list_free(struct nubo_vdi_grant_list *l)
{
    nubo_list_free(l, sizeof *l->items, grant_clear);
}

/* --- desktops and the broker ------------------------------------------------------------------- */

static int desktop_parse(const json_t *o, void *item)
{
    struct nubo_vdi_desktop *d = item;
    d->id = nubo_js_str(o, "id");
    d->pool_id = nubo_js_str(o, "pool_id");
    d->pool_name = nubo_js_str(o, "pool_name");
    d->instance_id = nubo_js_str(o, "instance_id");
    d->state = nubo_js_str(o, "state");
    d->instance_state = nubo_js_str(o, "instance_state");
    d->owner_id = nubo_js_str(o, "owner_id");
    d->user_id = nubo_js_str(o, "user_id");
    d->assigned_at = nubo_js_str(o, "assigned_at");
    d->last_active_at = nubo_js_str(o, "last_active_at");
    d->private_ip = nubo_js_str(o, "private_ip");
    d->ready = nubo_js_bool(o, "ready");
    d->json = nubo_js_dump(o);
    return d->id && d->state && d->json ? 0 : -1;
}

static void desktop_clear(void *item)
{
    struct nubo_vdi_desktop *d = item;
    free(d->id);
    free(d->pool_id);
    free(d->pool_name);
    free(d->instance_id);
    free(d->state);
    free(d->instance_state);
    free(d->owner_id);
    free(d->user_id);
    free(d->assigned_at);
    free(d->last_active_at);
    free(d->private_ip);
    free(d->json);
}

#define DESKTOP sizeof(struct nubo_vdi_desktop), desktop_parse, desktop_clear

NUBO_API struct nubo_vdi_desktop_list *
nubo_vdi_pool_desktops(struct nubo_client *c, const char *pool_id, struct nubo_error *err)
{
    if (nubo_need(pool_id, "a pool id", err) < 0) {
        return NULL;
    }
    char *path = nubo_id_path("/v1/vdi/pools", pool_id, "/desktops");
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    struct nubo_vdi_desktop_list *l = nubo_get_list(c, path, NULL, "desktops", DESKTOP, err);
    free(path);
    return l;
}

NUBO_API struct nubo_vdi_desktop_list *nubo_vdi_my_desktops(struct nubo_client *c,
                                                            struct nubo_error *err)
{
    return nubo_get_list(c, "/v1/vdi/my-desktops", NULL, "desktops", DESKTOP, err);
}

NUBO_API struct nubo_vdi_desktop *nubo_vdi_connect(struct nubo_client *c, const char *pool_id,
                                                   struct nubo_error *err)
{
    /* The answer is {"desktop": {...}, "ready": b}; the desktop carries 'ready' too. */
    return vdi_call(c, "POST", "/v1/vdi/pools", pool_id, "/connect", "a pool id", NULL, "desktop",
                    DESKTOP, err);
}

NUBO_API struct nubo_vdi_desktop *nubo_vdi_desktop_get(struct nubo_client *c, const char *id,
                                                       struct nubo_error *err)
{
    return vdi_call(c, "GET", "/v1/vdi/desktops", id, "", "a desktop id", NULL, NULL, DESKTOP, err);
}

NUBO_API struct nubo_vdi_desktop *nubo_vdi_desktop_wait(struct nubo_client *c, const char *id,
                                                        double timeout_s, int poll_ms,
                                                        nubo_vdi_wait_fn progress, void *arg,
                                                        struct nubo_error *err)
{
    double start = nubo_now_s(), poll_s = (poll_ms > 0 ? poll_ms : 1000) / 1000.0;
    for (;;) {
        struct nubo_vdi_desktop *d = nubo_vdi_desktop_get(c, id, err);
        if (!d) {
            return NULL;
        }
        double elapsed = nubo_now_s() - start;
        if (progress && progress(d, elapsed, arg) != 0) {
            nubo_vdi_desktop_free(d);
            nubo_err_set(err, 0, "Cancelled", "the wait for desktop %s was cancelled", id);
            return NULL;
        }
        if (d->ready) {
            return d;
        }
        /* Only a desktop in a session becomes ready: any other state means the session ended
         * (signed out, idle, its pool deleted) and waiting longer would wait for nothing. */
        if (strcmp(d->state, "assigned")) {
            nubo_err_set(err, 0, "IncorrectState",
                         "desktop %s is no longer in a session (it is %s): connect again", id,
                         d->state);
            nubo_vdi_desktop_free(d);
            return NULL;
        }
        if (elapsed + poll_s > timeout_s) {
            nubo_err_set(err, 0, "Timeout",
                         "desktop %s is not ready after %.0f s (its instance is %s)", id, elapsed,
                         d->instance_state ? d->instance_state : "being launched");
            nubo_vdi_desktop_free(d);
            return NULL;
        }
        nubo_vdi_desktop_free(d);
        nubo_sleep_s(poll_s);
    }
}

NUBO_API struct nubo_console_ticket *nubo_vdi_desktop_console(struct nubo_client *c, const char *id,
                                                              struct nubo_error *err)
{
    return ticket_call(c, "/v1/vdi/desktops", id, "/console", "a desktop id", err);
}

NUBO_API struct nubo_vdi_desktop *nubo_vdi_desktop_sign_out(struct nubo_client *c, const char *id,
                                                            struct nubo_error *err)
{
    return vdi_call(c, "POST", "/v1/vdi/desktops", id, "/sign-out", "a desktop id", NULL, NULL,
                    DESKTOP, err);
}

NUBO_API void nubo_vdi_desktop_free(struct nubo_vdi_desktop *d)
{
    nubo_item_free(d, desktop_clear);
}

NUBO_API void nubo_vdi_desktop_list_free(struct nubo_vdi_desktop_list *l)
{
    nubo_list_free(l, sizeof *l->items, desktop_clear);
}
