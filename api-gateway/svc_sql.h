/* SQL helpers shared by the service modules: dynamic queries with numbered parameters, reading
 * columns into an arena, tags, and "every id was found" checks. Private to the gateway. */
#ifndef NUBO_GW_SVC_SQL_H
#define NUBO_GW_SVC_SQL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "nubo/buf.h"

struct gw_filter;
struct gw_tag;
struct nb_arena;
struct nb_error;
struct nb_pg_conn;

#define SVC_ACQUIRE_MS     5000 /* how long a request waits for a database connection */
#define SVC_SQL_MAX_PARAMS 64

/* A query under construction: SQL text plus its text parameters. Parameters and the strings
 * svc_sql_param() returns live in 'arena'; 'sql' must be nb_buf_free()d. */
struct svc_sql {
    struct nb_buf sql;
    const char *params[SVC_SQL_MAX_PARAMS];
    int n;
    bool overflow; /* more than SVC_SQL_MAX_PARAMS were added; do not run the query */
    struct nb_arena *arena;
};

void svc_sql_init(struct svc_sql *q, struct nb_arena *arena);
/* Adds 'value' (borrowed; must outlive the query) and returns its placeholder, "$3". */
const char *svc_sql_param(struct svc_sql *q, const char *value);
/* Adds 'values' as one text[] parameter and returns its placeholder, "$4::text[]". */
const char *svc_sql_array(struct svc_sql *q, const char *const *values, size_t n);
/* Adds a tag filter ("tag:KEY", "tag-key", "tag-value") on resources whose id is the SQL
 * expression 'id_column'. The query's first parameter ($1) must be the tenant id. Any other filter
 * name is InvalidParameterValue. */
int svc_sql_tag_filter(struct svc_sql *q, const struct gw_filter *f, const char *id_column,
                       struct nb_error *err);

/* Makes 'res' live until 'arena' is freed (the end of the request) and be PQclear()ed then, so
 * that svc_val() can hand out its strings without copying them. */
void svc_keep(PGresult *res, struct nb_arena *arena);

/* The value at ('row', 'col') of a result kept with svc_keep(), or NULL if it is SQL NULL. */
const char *svc_val(PGresult *res, int row, int col);

/* The value at ('row', 'col') copied into 'arena', or NULL if it is SQL NULL. */
const char *svc_col(PGresult *res, int row, int col, struct nb_arena *arena);

/* Parses the JSON '[[key, value], ...]' that the queries aggregate tags into. */
void svc_parse_tags(const char *json, struct nb_arena *arena, const struct gw_tag **tags,
                    size_t *n);

/* Inserts or replaces one tag. Returns 0, or -1 with 'err'. */
int svc_tag_put(struct nb_pg_conn *conn, const char *tenant_id, const char *resource_id,
                const char *resource_type, const struct gw_tag *tag, struct nb_error *err);

/* Checks that each of 'ids' has the form of a nubo id with 'prefix' ("i" for "i-0123..."). If
 * not, sets 'err' to "Invalid id: '<id>'" (NB_ERR_INVALID) with 'reason' and returns -1. */
int svc_check_id_form(const char *const *ids, size_t n_ids, const char *prefix, const char *reason,
                      struct nb_error *err);

/* Checks that each of 'ids' is the id of one of the 'n' items (each 'item_size' bytes, the id a
 * 'const char *' at 'id_offset'). If not, sets 'err' to "The <what> '<ids>' do(es) not exist"
 * with 'reason', and returns -1. */
int svc_check_all_found(const char *const *ids, size_t n_ids, const void *items, size_t item_size,
                        size_t id_offset, size_t n, const char *what, const char *reason,
                        struct nb_arena *arena, struct nb_error *err);

/* Runs 'q' on a pooled connection of 'gw' and frees its SQL text (in every case). A query that
 * took more than SVC_SQL_MAX_PARAMS values is InvalidParameterValue, not run. Returns the result
 * (the caller PQclear()s it or keeps it with svc_keep()), or NULL with 'err'. */
struct gw_ctx;
PGresult *svc_sql_run(struct gw_ctx *gw, struct svc_sql *q, struct nb_error *err);

/* Runs one statement ('n' text parameters) on a pooled connection of 'gw', taken and given back
 * around it (no transaction). Returns the result, or NULL with 'err', as nb_pg_exec(). */
PGresult *svc_exec(struct gw_ctx *gw, const char *sql, int n, const char *const *params,
                   struct nb_error *err);

/* NOTIFY nubo_sched in the current transaction: the schedulers wake up when it commits.
 * Returns 0, or -1 with 'err' set. */
int svc_notify_scheduler(struct nb_pg_conn *conn, struct nb_error *err);

#endif
