/* SQL helpers for the service modules (see svc_sql.h). */
#include "svc_sql.h"
#include "gateway.h"

#include "svc.h"

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/pg.h"

#include <jansson.h>
#include <string.h>

void svc_sql_init(struct svc_sql *q, struct nb_arena *arena)
{
    memset(q, 0, sizeof *q);
    q->arena = arena;
}

const char *svc_sql_param(struct svc_sql *q, const char *value)
{
    if (q->n == SVC_SQL_MAX_PARAMS) {
        q->overflow = true;
        return "NULL";
    }
    q->params[q->n++] = value;
    return nb_arena_printf(q->arena, "$%d", q->n);
}

const char *svc_sql_array(struct svc_sql *q, const char *const *values, size_t n)
{
    /* A PostgreSQL array literal: {"a","b\"c"} with " and \ escaped. */
    struct nb_buf b = NB_BUF_INIT;
    nb_buf_puts(&b, "{");
    for (size_t i = 0; i < n; i++) {
        nb_buf_puts(&b, i ? ",\"" : "\"");
        for (const char *s = values[i]; *s; s++) {
            if (*s == '"' || *s == '\\') {
                nb_buf_puts(&b, "\\");
            }
            nb_buf_append(&b, s, 1);
        }
        nb_buf_puts(&b, "\"");
    }
    nb_buf_puts(&b, "}");
    const char *p = svc_sql_param(q, nb_arena_strdup(q->arena, b.data));
    nb_buf_free(&b);
    return nb_arena_printf(q->arena, "%s::text[]", p);
}

int svc_sql_tag_filter(struct svc_sql *q, const struct gw_filter *f, const char *id_column,
                       struct nb_error *err)
{
    const char *values = svc_sql_array(q, f->values, f->n_values);
    const char *cond;
    if (!strncmp(f->name, "tag:", 4) && f->name[4]) {
        cond = nb_arena_printf(q->arena, "t.key = %s AND t.value = ANY(%s)",
                               svc_sql_param(q, f->name + 4), values);
    } else if (!strcmp(f->name, "tag-key")) {
        cond = nb_arena_printf(q->arena, "t.key = ANY(%s)", values);
    } else if (!strcmp(f->name, "tag-value")) {
        cond = nb_arena_printf(q->arena, "t.value = ANY(%s)", values);
    } else {
        nb_error_set(err, NB_ERR_INVALID, "The filter '%s' is invalid", f->name);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    nb_buf_printf(&q->sql,
                  " AND EXISTS (SELECT 1 FROM tags t WHERE t.tenant_id = $1 "
                  "AND t.resource_id = %s AND %s)",
                  id_column, cond);
    return 0;
}

static void clear_result(void *res)
{
    PQclear(res);
}

void svc_keep(PGresult *res, struct nb_arena *arena)
{
    nb_arena_on_free(arena, clear_result, res);
}

const char *svc_val(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

const char *svc_col(PGresult *res, int row, int col, struct nb_arena *arena)
{
    if (PQgetisnull(res, row, col)) {
        return NULL;
    }
    return nb_arena_strndup(arena, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

void svc_parse_tags(const char *text, struct nb_arena *arena, const struct gw_tag **tags, size_t *n)
{
    *tags = NULL;
    *n = 0;
    json_t *arr = json_loads(text, 0, NULL);
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        json_decref(arr);
        return;
    }
    struct gw_tag *t = nb_arena_zalloc(arena, sizeof *t * json_array_size(arr));
    size_t i;
    json_t *pair;
    json_array_foreach(arr, i, pair)
    {
        t[*n].key = nb_arena_strdup(arena, json_string_value(json_array_get(pair, 0)) ?: "");
        t[*n].value = nb_arena_strdup(arena, json_string_value(json_array_get(pair, 1)) ?: "");
        (*n)++;
    }
    *tags = t;
    json_decref(arr);
}

int svc_tag_put(struct nb_pg_conn *conn, const char *tenant_id, const char *resource_id,
                const char *resource_type, const struct gw_tag *tag, struct nb_error *err)
{
    const char *p[] = {tenant_id, resource_id, resource_type, tag->key,
                       tag->value ? tag->value : ""};
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO tags (tenant_id, resource_id, resource_type, key, "
                               "value) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, "
                               "resource_id, key) DO UPDATE SET value = EXCLUDED.value",
                               5, p, err);
    if (!res) {
        if (err && err->code == NB_ERR_INVALID) {
            nb_error_set(err, NB_ERR_INVALID,
                         "invalid tag \"%.128s\": keys have 1 to 128 characters, values at most "
                         "256",
                         tag->key);
            nb_error_reason(err, "InvalidParameterValue");
        }
        return -1;
    }
    PQclear(res);
    return 0;
}

int svc_check_all_found(const char *const *ids, size_t n_ids, const void *items, size_t item_size,
                        size_t id_offset, size_t n, const char *what, const char *reason,
                        struct nb_arena *arena, struct nb_error *err)
{
    struct nb_buf missing = NB_BUF_INIT;
    size_t n_missing = 0;
    for (size_t k = 0; k < n_ids; k++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++) {
            const char *id;
            memcpy(&id, (const char *)items + i * item_size + id_offset, sizeof id);
            found = !strcmp(id, ids[k]);
        }
        if (!found) {
            nb_buf_printf(&missing, "%s%s", n_missing++ ? ", " : "", ids[k]);
        }
    }
    if (!n_missing) {
        return 0;
    }
    nb_error_set(err, NB_ERR_NOT_FOUND, "The %s%s '%s' do%s not exist", what,
                 n_missing > 1 ? "s" : "", missing.data, n_missing > 1 ? "" : "es");
    nb_error_reason(err, reason);
    nb_buf_free(&missing);
    (void)arena;
    return -1;
}

int svc_check_id_form(const char *const *ids, size_t n_ids, const char *prefix, const char *reason,
                      struct nb_error *err)
{
    for (size_t k = 0; k < n_ids; k++) {
        if (!nb_id_valid(prefix, ids[k])) {
            nb_error_set(err, NB_ERR_INVALID, "Invalid id: '%.64s'", ids[k]);
            nb_error_reason(err, reason);
            return -1;
        }
    }
    return 0;
}

int svc_notify_scheduler(struct nb_pg_conn *conn, struct nb_error *err)
{
    PGresult *res = nb_pg_exec(conn, "NOTIFY nubo_sched", 0, NULL, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

PGresult *svc_sql_run(struct gw_ctx *gw, struct svc_sql *q, struct nb_error *err)
{
    PGresult *res = NULL;
    if (q->overflow) {
        nb_error_set(err, NB_ERR_INVALID, "too many filter values (at most %d)",
                     SVC_SQL_MAX_PARAMS);
        nb_error_reason(err, "InvalidParameterValue");
    } else {
        struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
        if (conn) {
            res = nb_pg_exec(conn, q->sql.data, q->n, q->params, err);
            nb_pg_release(conn);
        }
    }
    nb_buf_free(&q->sql);
    return res;
}

PGresult *svc_exec(struct gw_ctx *gw, const char *sql, int n, const char *const *params,
                   struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return NULL;
    }
    PGresult *res = nb_pg_exec(conn, sql, n, params, err);
    nb_pg_release(conn);
    return res;
}
