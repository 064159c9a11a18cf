/* Operator service (see svc_admin.h). */
#include "svc_admin.h"

#include "auth.h"
#include "gateway.h"
#include "identity.h"
#include "svc.h"
#include "svc_sql.h"

#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/json.h"
#include "nubo/pg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Acquires a connection for an admin operation after the role check. */
static struct nb_pg_conn *admin_conn(struct gw_ctx *gw, const struct gw_principal *who,
                                     struct nb_error *err)
{
    if (gw_require_admin(who, err) < 0) {
        return NULL;
    }
    return nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
}

json_t *gw_admin_tenant_create(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                               struct nb_error *err)
{
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    if (!conn) {
        return NULL;
    }
    char id[GW_TENANT_ID_LEN + 1];
    int rc = gw_tenant_create(conn, name, id, err);
    nb_pg_release(conn);
    if (rc < 0) {
        if (err->code == NB_ERR_CONFLICT) {
            nb_error_reason(err, "InvalidTenant.Duplicate");
        }
        return NULL;
    }
    return json_pack("{s:s, s:s}", "tenant_id", id, "name", name);
}

json_t *gw_admin_tenants_list(struct gw_ctx *gw, const struct gw_principal *who,
                              struct nb_error *err)
{
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    if (!conn) {
        return NULL;
    }
    PGresult *res = nb_pg_exec(conn,
                               "SELECT t.id, t.name, t.enabled, "
                               "to_char(t.created_at AT TIME ZONE 'UTC', "
                               "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                               "(SELECT count(*) FROM instances i WHERE i.tenant_id = t.id "
                               "AND i.state <> 'terminated') FROM tenants t ORDER BY t.name",
                               0, NULL, err);
    nb_pg_release(conn);
    if (!res) {
        return NULL;
    }
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:s, s:I}", "tenant_id",
                                             PQgetvalue(res, r, 0), "name", PQgetvalue(res, r, 1),
                                             "enabled", PQgetvalue(res, r, 2)[0] == 't',
                                             "created_at", PQgetvalue(res, r, 3), "instances",
                                             (json_int_t)atoll(PQgetvalue(res, r, 4))));
    }
    PQclear(res);
    return arr;
}

json_t *gw_admin_set_enabled(struct gw_ctx *gw, const struct gw_principal *who, const char *kind,
                             const char *id, bool enabled, struct nb_error *err)
{
    static const struct {
        const char *kind, *sql, *reason;
    } kinds[] = {
        {"tenant", "UPDATE tenants SET enabled = $2 WHERE id = $1", "InvalidTenantID.NotFound"},
        {"user", "UPDATE users SET enabled = $2 WHERE id = $1", "InvalidUserID.NotFound"},
        {"key", "UPDATE access_keys SET enabled = $2 WHERE id = $1", "InvalidAccessKeyId.NotFound"},
    };
    size_t k = 0;
    while (k < 3 && strcmp(kinds[k].kind, kind)) {
        k++;
    }
    if (k == 3) {
        nb_error_set(err, NB_ERR_INTERNAL, "unknown kind \"%s\"", kind);
        return NULL;
    }
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    if (!conn) {
        return NULL;
    }
    const char *p[] = {id, enabled ? "true" : "false"};
    PGresult *res = nb_pg_exec(conn, kinds[k].sql, 2, p, err);
    nb_pg_release(conn);
    if (!res) {
        return NULL;
    }
    bool found = atoi(PQcmdTuples(res)) == 1;
    PQclear(res);
    if (!found) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The %s '%s' does not exist", kind, id);
        nb_error_reason(err, kinds[k].reason);
        return NULL;
    }
    /* Keys of a disabled user or tenant are found by the next lookup; drop them all here. */
    gw_auth_forget(gw->auth, k == 2 ? id : NULL);
    return json_pack("{s:s, s:b}", "id", id, "enabled", enabled);
}

json_t *gw_admin_user_create(struct gw_ctx *gw, const struct gw_principal *who,
                             const char *tenant_id, const char *name, const char *role,
                             struct nb_error *err)
{
    /* The admin role is the cloud operator's: only the operator's own tenant holds it. */
    if (!strcmp(role, "admin") && strcmp(tenant_id, who->tenant_id)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "the admin role belongs to the operator's tenant (%s); give users of "
                     "tenant %s the member, reader or desktop role",
                     who->tenant_id, tenant_id);
        nb_error_reason(err, "InvalidParameterValue");
        return NULL;
    }
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    if (!conn) {
        return NULL;
    }
    char user_id[NB_ID_MAX];
    int rc = gw_user_create(conn, tenant_id, name, role, user_id, err);
    nb_pg_release(conn);
    if (rc < 0) {
        if (err->code == NB_ERR_INVALID && strstr(err->detail, "23503")) {
            nb_error_set(err, NB_ERR_NOT_FOUND, "The tenant '%s' does not exist", tenant_id);
            nb_error_reason(err, "InvalidTenantID.NotFound");
        } else if (err->code == NB_ERR_INVALID || err->code == NB_ERR_CONFLICT) {
            nb_error_reason(err, "InvalidParameterValue");
        }
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s}", "user_id", user_id, "tenant_id", tenant_id, "name",
                     name, "role", role);
}

json_t *gw_admin_key_create(struct gw_ctx *gw, const struct gw_principal *who, const char *user_id,
                            struct nb_error *err)
{
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    if (!conn) {
        return NULL;
    }
    struct gw_new_key key;
    int rc = gw_key_create(conn, gw->master_key, user_id, &key, err);
    nb_pg_release(conn);
    if (rc < 0) {
        if (err->code == NB_ERR_INVALID && strstr(err->detail, "23503")) {
            nb_error_set(err, NB_ERR_NOT_FOUND, "The user '%s' does not exist", user_id);
            nb_error_reason(err, "InvalidUserID.NotFound");
        }
        return NULL;
    }
    json_t *v = json_pack("{s:s, s:s, s:s}", "access_key_id", key.key_id, "secret_access_key",
                          key.secret, "user_id", user_id);
    memset(&key, 0, sizeof key);
    return v;
}

json_t *gw_admin_quota(struct gw_ctx *gw, const struct gw_principal *who, const char *tenant_id,
                       const json_t *set, struct nb_error *err)
{
    static const char *const fields[] = {"max_instances",   "max_vcpus",       "max_memory_mib",
                                         "max_elastic_ips", "max_image_bytes", NULL};
    if (set && nb_json_check_fields(set, fields, err) < 0) {
        nb_error_reason(err, "InvalidParameterValue");
        return NULL;
    }
    /* COALESCE keeps the fields the request leaves out. */
    const char *p[6] = {tenant_id};
    char values[5][24];
    for (int f = 0; f < 5; f++) {
        long long v = 0;
        /* max_memory_mib and max_image_bytes are bigint columns, the others integer. */
        long long max = (f == 2 || f == 4) ? INT64_MAX : INT32_MAX;
        int got = set ? nb_json_get_int(set, fields[f], false, 0, max, &v, err) : 0;
        if (got < 0) {
            nb_error_reason(err, "InvalidParameterValue");
            return NULL;
        }
        snprintf(values[f], sizeof values[f], "%lld", v);
        p[f + 1] = got ? values[f] : NULL;
    }
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    if (!conn) {
        return NULL;
    }
    PGresult *res =
        nb_pg_exec(conn,
                   "UPDATE quotas SET max_instances = COALESCE($2::int, max_instances), "
                   "max_vcpus = COALESCE($3::int, max_vcpus), "
                   "max_memory_mib = COALESCE($4::bigint, max_memory_mib), "
                   "max_elastic_ips = COALESCE($5::int, max_elastic_ips), "
                   "max_image_bytes = COALESCE($6::bigint, max_image_bytes) "
                   "WHERE tenant_id = $1 RETURNING max_instances, max_vcpus, "
                   "max_memory_mib, max_elastic_ips, max_image_bytes",
                   6, p, err);
    nb_pg_release(conn);
    if (!res) {
        if (err->code == NB_ERR_INVALID) {
            nb_error_reason(err, "InvalidParameterValue");
        }
        return NULL;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        nb_error_set(err, NB_ERR_NOT_FOUND, "The tenant '%s' does not exist", tenant_id);
        nb_error_reason(err, "InvalidTenantID.NotFound");
        return NULL;
    }
    json_t *q = json_object();
    json_object_set_new(q, "tenant_id", json_string(tenant_id));
    for (int f = 0; f < 5; f++) {
        json_object_set_new(q, fields[f], json_integer(atoll(PQgetvalue(res, 0, f))));
    }
    PQclear(res);
    return q;
}
