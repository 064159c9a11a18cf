/* Placement groups service (see svc_placement.h): the database half. */
#include "svc_placement.h"

#include "auth.h"
#include "gateway.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/pg.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN       255
#define MAX_PARTITIONS     7
#define DEFAULT_PARTITIONS 2

/* The columns every query reads, in the order row_to_group() expects; $1 is the tenant. */
#define GROUP_COLUMNS                                                                              \
    "g.id, g.name, g.strategy, g.state, g.partition_count, "                                       \
    "COALESCE((SELECT json_agg(json_build_array(t.key, t.value) ORDER BY t.key) FROM tags t "      \
    "WHERE t.tenant_id = $1 AND t.resource_id = g.id), '[]')"

static void row_to_group(PGresult *res, int r, struct nb_arena *arena, struct gw_placement_group *g)
{
    g->id = svc_col(res, r, 0, arena);
    g->name = svc_col(res, r, 1, arena);
    g->strategy = svc_col(res, r, 2, arena);
    g->state = svc_col(res, r, 3, arena);
    g->partition_count = atoi(PQgetvalue(res, r, 4));
    svc_parse_tags(PQgetvalue(res, r, 5), arena, &g->tags, &g->n_tags);
}

static int check_name(const char *name, struct nb_error *err)
{
    size_t len = name ? strlen(name) : 0;
    bool ok = len >= 1 && len <= NAME_MAX_LEN;
    for (size_t i = 0; i < len && ok; i++) {
        ok = name[i] >= 0x20 && name[i] < 0x7f;
    }
    if (!ok) {
        nb_error_set(err, NB_ERR_INVALID,
                     "Value for parameter GroupName is invalid: a placement group name has 1 to "
                     "%d printable ASCII characters",
                     NAME_MAX_LEN);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    return 0;
}

static void unknown_group(const char *name, struct nb_error *err)
{
    nb_error_set(err, NB_ERR_NOT_FOUND, "The Placement Group '%.255s' is unknown.", name);
    nb_error_reason(err, "InvalidPlacementGroup.Unknown");
}

int gw_placement_group_create(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                              const char *strategy, int partition_count, const struct gw_tag *tags,
                              size_t n_tags, struct nb_arena *arena, struct gw_placement_group *out,
                              struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0 || check_name(name, err) < 0) {
        return -1;
    }
    if (!strategy || (strcmp(strategy, "cluster") && strcmp(strategy, "spread") &&
                      strcmp(strategy, "partition"))) {
        nb_error_set(err, NB_ERR_INVALID,
                     "The strategy '%.64s' is not valid: use cluster, spread or partition",
                     strategy ? strategy : "");
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    bool partition = !strcmp(strategy, "partition");
    if (partition && partition_count == 0) {
        partition_count = DEFAULT_PARTITIONS;
    }
    if (partition ? (partition_count < 1 || partition_count > MAX_PARTITIONS)
                  : partition_count != 0) {
        nb_error_set(err, NB_ERR_INVALID,
                     partition ? "Value for parameter PartitionCount is invalid: a partition "
                                 "group has 1 to 7 partitions"
                               : "PartitionCount is only valid with the partition strategy");
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    char id[NB_ID_MAX], count[16];
    if (nb_id_new("pg", id, sizeof id) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a placement group id");
        return -1;
    }
    snprintf(count, sizeof count, "%d", partition_count);
    const char *p[] = {id, who->tenant_id, name, strategy, count};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    if (nb_pg_begin(conn, err) < 0) {
        goto done;
    }
    res = nb_pg_exec(conn,
                     "INSERT INTO placement_groups (id, tenant_id, name, strategy, "
                     "partition_count) VALUES ($1, $2, $3, $4, $5::int)",
                     5, p, err);
    if (!res) {
        if (err && err->code == NB_ERR_CONFLICT) {
            nb_error_set(err, NB_ERR_CONFLICT, "The Placement Group '%s' already exists.", name);
            nb_error_reason(err, "InvalidPlacementGroup.Duplicate");
        } else if (err && err->code == NB_ERR_INVALID) {
            nb_error_reason(err, "InvalidParameterValue");
        }
        goto done;
    }
    PQclear(res);
    res = NULL;
    for (size_t t = 0; t < n_tags; t++) {
        if (svc_tag_put(conn, who->tenant_id, id, "placement-group", &tags[t], err) < 0) {
            goto done;
        }
    }
    if (nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    memset(out, 0, sizeof *out);
    out->id = nb_arena_strdup(arena, id);
    out->name = nb_arena_strdup(arena, name);
    out->strategy = nb_arena_strdup(arena, strategy);
    out->state = "available";
    out->partition_count = partition_count;
    if (n_tags) {
        struct gw_tag *copy = nb_arena_alloc(arena, sizeof *copy * n_tags);
        for (size_t t = 0; t < n_tags; t++) {
            copy[t].key = nb_arena_strdup(arena, tags[t].key);
            copy[t].value = nb_arena_strdup(arena, tags[t].value ? tags[t].value : "");
        }
        out->tags = copy;
        out->n_tags = n_tags;
    }
    rc = 0;

done:
    PQclear(res);
    nb_pg_release(conn); /* rolls back an open transaction */
    return rc;
}

int gw_placement_group_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *name,
                              struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    if (!name) {
        nb_error_set(err, NB_ERR_MISSING, "The request must contain the parameter GroupName");
        nb_error_reason(err, "MissingParameter");
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    char id[NB_ID_MAX];
    /* The row lock first (RunInstances' foreign key check waits for it), then the count in a
     * statement of its own, so that it sees an instance that went in just before. */
    const char *p[] = {who->tenant_id, name};
    if (nb_pg_begin(conn, err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "SELECT id FROM placement_groups WHERE tenant_id = $1 AND name = $2 "
                           "FOR UPDATE",
                           2, p, err))) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        unknown_group(name, err);
        goto done;
    }
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *q[] = {who->tenant_id, id};
    if (!(res = nb_pg_exec(conn,
                           "SELECT count(*) FROM instances WHERE tenant_id = $1 "
                           "AND placement_group_id = $2 AND state NOT IN ('terminated', 'error')",
                           2, q, err))) {
        goto done;
    }
    long long live = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    if (live > 0) {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "The placement group '%s' is in use by %lld instance(s) and may not be "
                     "deleted.",
                     name, live);
        nb_error_reason(err, "InvalidPlacementGroup.InUse");
        goto done;
    }
    if (!(res = nb_pg_exec(conn,
                           "WITH dead AS (UPDATE instances SET placement_group_id = NULL "
                           "WHERE tenant_id = $1 AND placement_group_id = $2 RETURNING 1), "
                           "t AS (DELETE FROM tags WHERE tenant_id = $1 AND resource_id = $2 "
                           "RETURNING 1) "
                           "DELETE FROM placement_groups WHERE tenant_id = $1 AND id = $2",
                           2, q, err)) ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    rc = 0;

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

static int column_filter(struct svc_sql *q, const struct gw_filter *f, struct nb_error *err)
{
    static const char *const map[][2] = {
        {"group-name", "g.name"},
        {"group-id", "g.id"},
        {"strategy", "g.strategy"},
        {"state", "g.state"},
        {"partition-count", "g.partition_count::text"},
    };
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        if (!strcmp(f->name, map[k][0])) {
            nb_buf_printf(&q->sql, " AND %s = ANY(%s)", map[k][1],
                          svc_sql_array(q, f->values, f->n_values));
            return 0;
        }
    }
    nb_error_set(err, NB_ERR_INVALID, "The filter '%s' is invalid", f->name);
    nb_error_reason(err, "InvalidParameterValue");
    return -1;
}

int gw_placement_groups_describe(struct gw_ctx *gw, const struct gw_principal *who,
                                 const char *const *names, size_t n_names, const char *const *ids,
                                 size_t n_ids, const struct gw_filter *filters, size_t n_filters,
                                 struct nb_arena *arena, struct gw_placement_group **out, size_t *n,
                                 struct nb_error *err)
{
    struct svc_sql q;
    svc_sql_init(&q, arena);
    nb_buf_printf(&q.sql,
                  "SELECT " GROUP_COLUMNS " FROM placement_groups g WHERE g.tenant_id = %s "
                  "AND g.state <> 'deleted'",
                  svc_sql_param(&q, who->tenant_id));
    if (n_names) {
        nb_buf_printf(&q.sql, " AND g.name = ANY(%s)", svc_sql_array(&q, names, n_names));
    }
    if (n_ids) {
        nb_buf_printf(&q.sql, " AND g.id = ANY(%s)", svc_sql_array(&q, ids, n_ids));
    }
    for (size_t f = 0; f < n_filters; f++) {
        if (!strncmp(filters[f].name, "tag", 3)
                ? svc_sql_tag_filter(&q, &filters[f], "g.id", err) < 0
                : column_filter(&q, &filters[f], err) < 0) {
            nb_buf_free(&q.sql);
            return -1;
        }
    }
    nb_buf_puts(&q.sql, " ORDER BY g.name");
    PGresult *res = svc_sql_run(gw, &q, err);
    if (!res) {
        return -1;
    }
    *n = (size_t)PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (*n ? *n : 1));
    for (int r = 0; r < (int)*n; r++) {
        row_to_group(res, r, arena, &(*out)[r]);
    }
    PQclear(res);
    if (n_names &&
        svc_check_all_found(names, n_names, *out, sizeof **out,
                            offsetof(struct gw_placement_group, name), *n, "placement group",
                            "InvalidPlacementGroup.Unknown", arena, err) < 0) {
        return -1;
    }
    if (n_ids && svc_check_all_found(ids, n_ids, *out, sizeof **out,
                                     offsetof(struct gw_placement_group, id), *n, "placement group",
                                     "InvalidPlacementGroup.Unknown", arena, err) < 0) {
        return -1;
    }
    return 0;
}

int gw_placement_group_lookup(struct nb_pg_conn *conn, const char *tenant_id, const char *name,
                              char *id, int *partition_count, struct nb_error *err)
{
    const char *p[] = {tenant_id, name};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT id, partition_count FROM placement_groups "
                               "WHERE tenant_id = $1 AND name = $2 AND state = 'available' "
                               "FOR SHARE",
                               2, p, err);
    if (!res) {
        return -1;
    }
    int rc = -1;
    if (PQntuples(res) == 1) {
        snprintf(id, NB_ID_MAX, "%s", PQgetvalue(res, 0, 0));
        *partition_count = atoi(PQgetvalue(res, 0, 1));
        rc = 0;
    } else {
        unknown_group(name, err);
    }
    PQclear(res);
    return rc;
}
