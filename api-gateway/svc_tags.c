/* Tags service (see svc_tags.h). */
#include "svc_tags.h"

#include "auth.h"
#include "gateway.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAGS_PER_RESOURCE 50

/* Taggable resources, by id prefix. */
static const struct resource_kind {
    const char *prefix;
    const char *type;
    const char *table;
    const char *not_found;
} kinds[] = {
    {"i", "instance", "instances", "InvalidInstanceID.NotFound"},
    {"ami", "image", "images", "InvalidAMIID.NotFound"},
    {"aki", "image", "images", "InvalidAMIID.NotFound"},
    {"ari", "image", "images", "InvalidAMIID.NotFound"},
    {"key", "key-pair", "key_pairs", "InvalidKeyPair.NotFound"},
    {"vpc", "vpc", "vpcs", "InvalidVpcID.NotFound"},
    {"subnet", "subnet", "subnets", "InvalidSubnetID.NotFound"},
    {"sg", "security-group", "security_groups", "InvalidGroup.NotFound"},
};

static const struct resource_kind *kind_of(const char *id)
{
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (nb_id_valid(kinds[k].prefix, id)) {
            return &kinds[k];
        }
    }
    return NULL;
}

/* Checks that the tenant has resource 'id' (locking it against a concurrent delete). */
static const struct resource_kind *check_resource(struct nb_pg_conn *conn, const char *tenant_id,
                                                  const char *id, struct nb_error *err)
{
    const struct resource_kind *k = kind_of(id);
    if (!k) {
        nb_error_set(err, NB_ERR_INVALID, "The ID '%s' is not valid", id);
        nb_error_reason(err, "InvalidID");
        return NULL;
    }
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE id = $1 AND tenant_id = $2 FOR SHARE",
             k->table);
    const char *p[] = {id, tenant_id};
    PGresult *res = nb_pg_exec(conn, sql, 2, p, err);
    if (!res) {
        return NULL;
    }
    int found = PQntuples(res);
    PQclear(res);
    if (!found) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The ID '%s' does not exist", id);
        nb_error_reason(err, k->not_found);
        return NULL;
    }
    return k;
}

int gw_tags_create(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                   size_t n_ids, const struct gw_tag *tags, size_t n_tags, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn || nb_pg_begin(conn, err) < 0) {
        nb_pg_release(conn);
        return -1;
    }
    int rc = -1;
    for (size_t r = 0; r < n_ids; r++) {
        const struct resource_kind *k = check_resource(conn, who->tenant_id, ids[r], err);
        if (!k) {
            goto done;
        }
        for (size_t t = 0; t < n_tags; t++) {
            if (svc_tag_put(conn, who->tenant_id, ids[r], k->type, &tags[t], err) < 0) {
                goto done;
            }
        }
        const char *p[] = {who->tenant_id, ids[r]};
        PGresult *res = nb_pg_exec(conn,
                                   "SELECT count(*) FROM tags WHERE tenant_id = $1 "
                                   "AND resource_id = $2",
                                   2, p, err);
        if (!res) {
            goto done;
        }
        int count = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (count > MAX_TAGS_PER_RESOURCE) {
            nb_error_set(err, NB_ERR_LIMIT, "'%s' would have %d tags; the limit is %d", ids[r],
                         count, MAX_TAGS_PER_RESOURCE);
            nb_error_reason(err, "TagLimitExceeded");
            goto done;
        }
    }
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

int gw_tags_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *const *ids,
                   size_t n_ids, const struct gw_tag *tags, size_t n_tags, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn || nb_pg_begin(conn, err) < 0) {
        nb_pg_release(conn);
        return -1;
    }
    int rc = -1;
    for (size_t r = 0; r < n_ids; r++) {
        if (!check_resource(conn, who->tenant_id, ids[r], err)) {
            goto done;
        }
        for (size_t t = 0; t < (n_tags ? n_tags : 1); t++) {
            const char *p[] = {who->tenant_id, ids[r], n_tags ? tags[t].key : NULL,
                               n_tags ? tags[t].value : NULL};
            PGresult *res = nb_pg_exec(conn,
                                       "DELETE FROM tags WHERE tenant_id = $1 AND resource_id = $2 "
                                       "AND ($3::text IS NULL OR key = $3) "
                                       "AND ($4::text IS NULL OR value = $4)",
                                       4, p, err);
            if (!res) {
                goto done;
            }
            PQclear(res);
        }
    }
    rc = nb_pg_commit(conn, err);

done:
    nb_pg_release(conn);
    return rc;
}

int gw_tags_describe(struct gw_ctx *gw, const struct gw_principal *who,
                     const struct gw_filter *filters, size_t n_filters, const struct gw_page *page,
                     struct nb_arena *arena, struct gw_tag_row **out, size_t *n,
                     const char **next_token, struct nb_error *err)
{
    static const char *const map[][2] = {{"key", "key"},
                                         {"value", "value"},
                                         {"resource-id", "resource_id"},
                                         {"resource-type", "resource_type"}};
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT resource_id, resource_type, key, value FROM tags WHERE tenant_id = %s",
                  svc_sql_param(&q, who->tenant_id));
    for (size_t f = 0; f < n_filters; f++) {
        size_t k = 0;
        while (k < 4 && strcmp(filters[f].name, map[k][0])) {
            k++;
        }
        if (k == 4) {
            nb_buf_free(&q.sql);
            nb_error_set(err, NB_ERR_INVALID, "The filter '%s' is invalid", filters[f].name);
            nb_error_reason(err, "InvalidParameterValue");
            return -1;
        }
        nb_buf_printf(&q.sql, " AND %s = ANY(%s)", map[k][1],
                      svc_sql_array(&q, filters[f].values, filters[f].n_values));
    }
    if (page->next_token) {
        const char *dot = strchr(page->next_token, '/');
        if (!dot) {
            nb_buf_free(&q.sql);
            nb_error_set(err, NB_ERR_INVALID, "Invalid NextToken: '%s'", page->next_token);
            nb_error_reason(err, "InvalidParameterValue");
            return -1;
        }
        const char *rid =
            nb_arena_strndup(arena, page->next_token, (size_t)(dot - page->next_token));
        const char *p1 = svc_sql_param(&q, rid);
        const char *p2 = svc_sql_param(&q, dot + 1);
        nb_buf_printf(&q.sql, " AND (resource_id, key) > (%s, %s)", p1, p2);
    }
    nb_buf_puts(&q.sql, " ORDER BY resource_id, key");
    if (page->max_results > 0) {
        nb_buf_printf(&q.sql, " LIMIT %d", page->max_results + 1);
    }
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    int rows = PQntuples(res);
    *next_token = NULL;
    if (page->max_results > 0 && rows > page->max_results) {
        rows = page->max_results;
        *next_token = nb_arena_printf(arena, "%s/%s", PQgetvalue(res, rows - 1, 0),
                                      PQgetvalue(res, rows - 1, 2));
    }
    *n = (size_t)rows;
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < rows; r++) {
        (*out)[r].resource_id = svc_col(res, r, 0, arena);
        (*out)[r].resource_type = svc_col(res, r, 1, arena);
        (*out)[r].key = svc_col(res, r, 2, arena);
        (*out)[r].value = svc_col(res, r, 3, arena);
    }
    PQclear(res);
    return 0;
}
