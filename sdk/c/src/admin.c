/* The operator's routes (/v1/admin/...): tenants, users, access keys, quotas and the request
 * log. They need a key with the admin role; others get "UnauthorizedOperation". Also a user's
 * own console password (/v1/me/password), the user-side twin of the admin's. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *admin_path(const char *fmt, const char *id, const char *suffix)
{
    char *enc = nubo_urlencode(id);
    char *p = NULL;
    if (enc && asprintf(&p, fmt, enc, suffix) < 0) {
        p = NULL;
    }
    free(enc);
    return p;
}

/* Sends 'method' 'path' with 'body' (stolen, may be NULL) and returns the answer (a new
 * reference), or NULL with '*err' set. Consumes 'path'. */
static json_t *admin_call(struct nubo_client *c, const char *method, char *path, json_t *body,
                          const char *query, struct nubo_error *err)
{
    json_t *reply = NULL;
    if (!path) {
        json_decref(body);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    bool idempotent = !strcmp(method, "GET") || !strcmp(method, "PUT");
    int rc = nubo_call(c, method, path, query, body, idempotent, &reply, err);
    json_decref(body);
    if (rc == 0 && !reply) {
        nubo_err_set(err, 0, "ProtocolError", "%s %s answered nothing", method, path);
        rc = -1;
    }
    free(path);
    return rc < 0 ? NULL : reply;
}

/* --- tenants ------------------------------------------------------------------------------- */

static int tenant_parse(const json_t *o, struct nubo_tenant *t)
{
    t->tenant_id = nubo_js_str(o, "tenant_id");
    t->name = nubo_js_str(o, "name");
    json_t *en = json_object_get(o, "enabled");
    t->enabled = en ? json_is_true(en) : true;
    t->created_at = nubo_js_str(o, "created_at");
    t->instances = nubo_js_int(o, "instances");
    t->json = nubo_js_dump(o);
    return t->tenant_id && t->json ? 0 : -1;
}

static int tenant_parse_v(const json_t *o, void *item)
{
    return tenant_parse(o, item);
}

static void tenant_clear(void *item)
{
    struct nubo_tenant *t = item;
    free(t->tenant_id);
    free(t->name);
    free(t->created_at);
    free(t->json);
}

NUBO_API void nubo_tenant_free(struct nubo_tenant *t)
{
    nubo_item_free(t, tenant_clear);
}

NUBO_API void nubo_tenant_list_free(struct nubo_tenant_list *l)
{
    nubo_list_free(l, sizeof *l->items, tenant_clear);
}

NUBO_API struct nubo_tenant_list *nubo_admin_tenants_list(struct nubo_client *c,
                                                          struct nubo_error *err)
{
    json_t *reply = admin_call(c, "GET", strdup("/v1/admin/tenants"), NULL, NULL, err);
    if (!reply) {
        return NULL;
    }
    return nubo_js_list(reply, "tenants", sizeof(struct nubo_tenant), tenant_parse_v, tenant_clear,
                        err);
}

NUBO_API struct nubo_tenant *nubo_admin_tenant_create(struct nubo_client *c, const char *name,
                                                      struct nubo_error *err)
{
    if (nubo_need(name, "a tenant name", err) < 0) {
        return NULL;
    }
    json_t *reply = admin_call(c, "POST", strdup("/v1/admin/tenants"),
                               json_pack("{s:s}", "name", name), NULL, err);
    if (!reply) {
        return NULL;
    }
    return nubo_js_item(reply, sizeof(struct nubo_tenant), tenant_parse_v, tenant_clear,
                        "the new tenant", err);
}

/* --- users and keys ------------------------------------------------------------------------ */

static int user_parse(const json_t *o, void *item)
{
    struct nubo_user *u = item;
    u->user_id = nubo_js_str(o, "user_id");
    u->tenant_id = nubo_js_str(o, "tenant_id");
    u->name = nubo_js_str(o, "name");
    u->role = nubo_js_str(o, "role");
    u->json = nubo_js_dump(o);
    return u->user_id && u->json ? 0 : -1;
}

static void user_clear(void *item)
{
    struct nubo_user *u = item;
    free(u->user_id);
    free(u->tenant_id);
    free(u->name);
    free(u->role);
    free(u->json);
}

NUBO_API void nubo_user_free(struct nubo_user *u)
{
    nubo_item_free(u, user_clear);
}

NUBO_API struct nubo_user *nubo_admin_user_create(struct nubo_client *c, const char *tenant_id,
                                                  const char *name, const char *role,
                                                  struct nubo_error *err)
{
    if (nubo_need(tenant_id, "a tenant id", err) < 0 || nubo_need(name, "a user name", err) < 0) {
        return NULL;
    }
    json_t *reply = admin_call(c, "POST", admin_path("/v1/admin/tenants/%s%s", tenant_id, "/users"),
                               json_pack("{s:s, s:s?}", "name", name, "role", role), NULL, err);
    if (!reply) {
        return NULL;
    }
    return nubo_js_item(reply, sizeof(struct nubo_user), user_parse, user_clear, "the new user",
                        err);
}

static int key_parse(const json_t *o, void *item)
{
    struct nubo_access_key *k = item;
    k->access_key_id = nubo_js_str(o, "access_key_id");
    k->secret_access_key = nubo_js_str(o, "secret_access_key");
    k->user_id = nubo_js_str(o, "user_id");
    k->json = nubo_js_dump(o);
    return k->access_key_id && k->secret_access_key && k->json ? 0 : -1;
}

/* Frees what 'item' holds, wiping the secret (and the JSON that repeats it) first. */
static void key_clear(void *item)
{
    struct nubo_access_key *k = item;
    free(k->access_key_id);
    if (k->secret_access_key) {
        explicit_bzero(k->secret_access_key, strlen(k->secret_access_key));
    }
    free(k->secret_access_key);
    free(k->user_id);
    if (k->json) {
        explicit_bzero(k->json, strlen(k->json));
    }
    free(k->json);
}

NUBO_API void nubo_access_key_free(struct nubo_access_key *k)
{
    nubo_item_free(k, key_clear);
}

NUBO_API struct nubo_access_key *nubo_admin_key_create(struct nubo_client *c, const char *user_id,
                                                       struct nubo_error *err)
{
    if (nubo_need(user_id, "a user id", err) < 0) {
        return NULL;
    }
    json_t *reply = admin_call(c, "POST", admin_path("/v1/admin/users/%s%s", user_id, "/keys"),
                               NULL, NULL, err);
    if (!reply) {
        return NULL;
    }
    return nubo_js_item(reply, sizeof(struct nubo_access_key), key_parse, key_clear,
                        "the new access key", err);
}

NUBO_API int nubo_admin_set_enabled(struct nubo_client *c, enum nubo_admin_kind kind,
                                    const char *id, bool enabled, struct nubo_error *err)
{
    static const char *const fmts[] = {"/v1/admin/tenants/%s%s", "/v1/admin/users/%s%s",
                                       "/v1/admin/keys/%s%s"};
    if (nubo_need(id, "an id", err) < 0) {
        return -1;
    }
    if ((unsigned)kind >= sizeof fmts / sizeof fmts[0]) {
        nubo_err_set(err, 0, "InvalidParameterValue", "unknown kind %d", (int)kind);
        return -1;
    }
    json_t *reply = admin_call(
        c, "POST", admin_path(fmts[kind], id, enabled ? "/enable" : "/disable"), NULL, NULL, err);
    json_decref(reply);
    return reply ? 0 : -1;
}

NUBO_API int nubo_admin_user_set_password(struct nubo_client *c, const char *user_id,
                                          const char *password, struct nubo_error *err)
{
    if (nubo_need(user_id, "a user id", err) < 0 || nubo_need(password, "a password", err) < 0) {
        return -1;
    }
    json_t *reply = admin_call(c, "PUT", admin_path("/v1/admin/users/%s%s", user_id, "/password"),
                               json_pack("{s:s}", "password", password), NULL, err);
    json_decref(reply);
    return reply ? 0 : -1;
}

NUBO_API int nubo_my_password_set(struct nubo_client *c, const char *current_password,
                                  const char *password, struct nubo_error *err)
{
    if (nubo_need(password, "a new password", err) < 0) {
        return -1;
    }
    const char *current = current_password && *current_password ? current_password : NULL;
    json_t *body = json_pack("{s:s*, s:s}", "current_password", current, "password", password);
    if (!body) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return -1;
    }
    /* Not admin_call(), which retries a PUT (see nubo.h); the text is wiped, not only freed. */
    char *answer = NULL;
    int status = nubo_client_request(c, "PUT", "/v1/me/password", NULL, text, false, &answer, err);
    explicit_bzero(text, strlen(text));
    free(text);
    free(answer);
    return status < 0 ? -1 : 0;
}

/* --- quotas -------------------------------------------------------------------------------- */

static const char *const quota_fields[] = {"max_instances", "max_vcpus", "max_memory_mib",
                                           "max_elastic_ips", "max_image_bytes"};

static long long *quota_slot(struct nubo_quota *q, size_t i)
{
    long long *slots[] = {&q->max_instances, &q->max_vcpus, &q->max_memory_mib, &q->max_elastic_ips,
                          &q->max_image_bytes};
    return slots[i];
}

static int quota_read(json_t *reply, struct nubo_quota *out)
{
    if (!out) {
        return 0;
    }
    memset(out, 0, sizeof *out);
    const char *id = json_string_value(json_object_get(reply, "tenant_id"));
    snprintf(out->tenant_id, sizeof out->tenant_id, "%s", id ? id : "");
    for (size_t i = 0; i < sizeof quota_fields / sizeof quota_fields[0]; i++) {
        *quota_slot(out, i) = nubo_js_int(reply, quota_fields[i]);
    }
    return 0;
}

NUBO_API int nubo_admin_quota_get(struct nubo_client *c, const char *tenant_id,
                                  struct nubo_quota *out, struct nubo_error *err)
{
    if (nubo_need(tenant_id, "a tenant id", err) < 0) {
        return -1;
    }
    json_t *reply = admin_call(c, "GET", admin_path("/v1/admin/tenants/%s%s", tenant_id, "/quota"),
                               NULL, NULL, err);
    if (!reply) {
        return -1;
    }
    quota_read(reply, out);
    json_decref(reply);
    return 0;
}

NUBO_API int nubo_admin_quota_set(struct nubo_client *c, const char *tenant_id,
                                  const struct nubo_quota *set, struct nubo_quota *out,
                                  struct nubo_error *err)
{
    if (nubo_need(tenant_id, "a tenant id", err) < 0) {
        return -1;
    }
    json_t *body = json_object();
    struct nubo_quota copy = *set;
    for (size_t i = 0; body && i < sizeof quota_fields / sizeof quota_fields[0]; i++) {
        long long v = *quota_slot(&copy, i);
        if (v >= 0) {
            json_object_set_new(body, quota_fields[i], json_integer(v));
        }
    }
    json_t *reply = admin_call(c, "PUT", admin_path("/v1/admin/tenants/%s%s", tenant_id, "/quota"),
                               body, NULL, err);
    if (!reply) {
        return -1;
    }
    quota_read(reply, out);
    json_decref(reply);
    return 0;
}

/* --- the request log ----------------------------------------------------------------------- */

static int record_parse(const json_t *o, void *item)
{
    struct nubo_request_record *r = item;
    r->request_id = nubo_js_str(o, "request_id");
    r->time = nubo_js_str(o, "time");
    r->tenant_id = nubo_js_str(o, "tenant_id");
    r->access_key_id = nubo_js_str(o, "access_key_id");
    r->action = nubo_js_str(o, "action");
    r->http_status = (int)nubo_js_int(o, "http_status");
    r->error_code = nubo_js_str(o, "error_code");
    r->latency_us = nubo_js_int(o, "latency_us");
    r->source_addr = nubo_js_str(o, "source_addr");
    r->user_agent = nubo_js_str(o, "user_agent");
    r->api = nubo_js_str(o, "api");
    r->json = nubo_js_dump(o);
    return r->request_id && r->json ? 0 : -1;
}

static void record_clear(void *item)
{
    struct nubo_request_record *r = item;
    free(r->request_id);
    free(r->time);
    free(r->tenant_id);
    free(r->access_key_id);
    free(r->action);
    free(r->error_code);
    free(r->source_addr);
    free(r->user_agent);
    free(r->api);
    free(r->json);
}

NUBO_API void nubo_request_list_free(struct nubo_request_list *l)
{
    nubo_list_free(l, sizeof *l->items, record_clear);
}

NUBO_API struct nubo_request_list *nubo_admin_requests(struct nubo_client *c,
                                                       const struct nubo_request_query *f,
                                                       struct nubo_error *err)
{
    struct nubo_query q = {0};
    char num[32];
    if (f) {
        nubo_query_add(&q, "tenant_id", f->tenant_id);
        nubo_query_add(&q, "action", f->action);
        nubo_query_add(&q, "error_code", f->error_code);
        nubo_query_add(&q, "errors_only", f->errors_only ? "true" : NULL);
        snprintf(num, sizeof num, "%lld", f->from_us);
        nubo_query_add(&q, "from", f->from_us > 0 ? num : NULL);
        snprintf(num, sizeof num, "%lld", f->to_us);
        nubo_query_add(&q, "to", f->to_us > 0 ? num : NULL);
        snprintf(num, sizeof num, "%d", f->limit);
        nubo_query_add(&q, "limit", f->limit > 0 ? num : NULL);
    }
    if (!nubo_query_text(&q)) {
        nubo_query_clear(&q);
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    json_t *reply =
        admin_call(c, "GET", strdup("/v1/admin/requests"), NULL, nubo_query_text(&q), err);
    nubo_query_clear(&q);
    if (!reply) {
        return NULL;
    }
    return nubo_js_list(reply, "requests", sizeof(struct nubo_request_record), record_parse,
                        record_clear, err);
}
