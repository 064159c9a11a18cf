/* Plumbing of the edge services (see svc_edge.h). */
#include "svc_edge.h"

#include "gateway.h"
#include "svc.h"
#include "svc_network.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/buf.h"
#include "nubo/config.h"
#include "nubo/pg.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_LOCK        "7008" /* pg_advisory_xact_lock key of the public pool (7007: segments) */
#define POOL_MIN_PLEN    16
#define POOL_MAX_PLEN    30
#define CLIENT_TOKEN_MAX 64

int edge_fail(struct nb_error *err, enum nb_errcode code, const char *reason, const char *fmt, ...)
{
    char msg[NB_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nb_error_set(err, code, "%s", msg);
    nb_error_reason(err, reason);
    return -1;
}

int edge_require(const char *value, const char *name, struct nb_error *err)
{
    if (!value) {
        return edge_fail(err, NB_ERR_MISSING, "MissingParameter",
                         "The request must contain the parameter %s", name);
    }
    return 0;
}

int edge_check_id(const char *id, const char *prefix, const char *reason, struct nb_error *err)
{
    if (!nb_id_valid(prefix, id)) {
        return edge_fail(err, NB_ERR_INVALID, reason, "Invalid id: '%.64s' (expecting '%s-...')",
                         id, prefix);
    }
    return 0;
}

struct nb_pg_conn *edge_begin(struct gw_ctx *gw, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (conn && nb_pg_begin(conn, err) < 0) {
        nb_pg_release(conn);
        return NULL;
    }
    return conn;
}

int edge_exec(struct nb_pg_conn *conn, const char *sql, int n, const char *const *p,
              struct nb_error *err)
{
    PGresult *res = nb_pg_exec(conn, sql, n, p, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

int edge_count(struct nb_pg_conn *conn, const char *sql, int n, const char *const *p,
               long long *count, struct nb_error *err)
{
    PGresult *res = nb_pg_exec(conn, sql, n, p, err);
    if (!res) {
        return -1;
    }
    *count = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int edge_lock_row(struct nb_pg_conn *conn, const char *table, const char *key, const char *mode,
                  const char *tenant_id, const char *id, const char *what, const char *not_found,
                  struct nb_error *err)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE %s = $1 AND tenant_id = $2 FOR %s", table,
             key, mode);
    const char *p[] = {id, tenant_id};
    PGresult *res = nb_pg_exec(conn, sql, 2, p, err);
    if (!res) {
        return -1;
    }
    int found = PQntuples(res);
    PQclear(res);
    if (!found) {
        return edge_fail(err, NB_ERR_NOT_FOUND, not_found, "The %s '%.64s' does not exist", what,
                         id);
    }
    return 0;
}

int edge_new_id(const char *prefix, char id[NB_ID_MAX], struct nb_error *err)
{
    if (nb_id_new(prefix, id, NB_ID_MAX) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a %s id", prefix);
        return -1;
    }
    return 0;
}

int edge_put_tags(struct nb_pg_conn *conn, const char *tenant_id, const char *id, const char *type,
                  const struct gw_tag *tags, size_t n_tags, struct nb_error *err)
{
    for (size_t t = 0; t < n_tags; t++) {
        if (svc_tag_put(conn, tenant_id, id, type, &tags[t], err) < 0) {
            return -1;
        }
    }
    return 0;
}

int edge_drop_tags(struct nb_pg_conn *conn, const char *tenant_id, const char *id,
                   struct nb_error *err)
{
    const char *p[] = {tenant_id, id};
    return edge_exec(conn, "DELETE FROM tags WHERE tenant_id = $1 AND resource_id = $2", 2, p, err);
}

void edge_key_tags(struct nb_buf *key, const struct gw_tag *tags, size_t n)
{
    for (size_t t = 0; t < n; t++) {
        nb_buf_printf(key, "tag %zu:%s=%zu:%s\n", strlen(tags[t].key), tags[t].key,
                      strlen(tags[t].value ? tags[t].value : ""),
                      tags[t].value ? tags[t].value : "");
    }
}

struct gw_tag *edge_copy_tags(struct nb_arena *arena, const struct gw_tag *tags, size_t n)
{
    struct gw_tag *copy = nb_arena_zalloc(arena, sizeof *copy * (n ? n : 1));
    for (size_t t = 0; t < n; t++) {
        copy[t].key = nb_arena_strdup(arena, tags[t].key);
        copy[t].value = nb_arena_strdup(arena, tags[t].value ? tags[t].value : "");
    }
    return copy;
}

int edge_add_filters(struct svc_sql *q, const char *const (*map)[2], size_t n_map,
                     const char *id_column, const struct gw_filter *filters, size_t n_filters,
                     struct nb_error *err)
{
    for (size_t f = 0; f < n_filters; f++) {
        size_t k = 0;
        while (k < n_map && strcmp(filters[f].name, map[k][0])) {
            k++;
        }
        if (k < n_map) {
            const char *values = svc_sql_array(q, filters[f].values, filters[f].n_values);
            const char *text = map[k][1], *hole = strstr(text, "%s");
            if (hole) { /* a condition of its own, the values wherever "%s" is */
                nb_buf_puts(&q->sql, " AND ");
                for (; hole; text = hole + 2, hole = strstr(text, "%s")) {
                    nb_buf_append(&q->sql, text, (size_t)(hole - text));
                    nb_buf_puts(&q->sql, values);
                }
                nb_buf_puts(&q->sql, text);
            } else {
                nb_buf_printf(&q->sql, " AND %s = ANY(%s)", map[k][1], values);
            }
        } else if (svc_sql_tag_filter(q, &filters[f], id_column, err) < 0) {
            return -1;
        }
    }
    return 0;
}

int edge_claim_token(struct nb_pg_conn *conn, const char *tenant_id, const char *token,
                     const char *action, const char *key, const char *new_id, char *earlier,
                     struct nb_error *err)
{
    if (!token[0] || strlen(token) > CLIENT_TOKEN_MAX) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Value for parameter ClientToken is invalid: 1 to %d characters",
                         CLIENT_TOKEN_MAX);
    }
    const char *p[] = {tenant_id, token, action, key, new_id};
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO client_tokens (tenant_id, token, action, params_hash, "
                               "result_id) VALUES ($1, $2, $3, md5($4), $5) "
                               "ON CONFLICT DO NOTHING RETURNING 1",
                               5, p, err);
    if (!res) {
        return -1;
    }
    int first = PQntuples(res);
    PQclear(res);
    if (first) {
        return 1;
    }
    res = nb_pg_exec(conn,
                     "SELECT action = $3 AND params_hash = md5($4), result_id FROM client_tokens "
                     "WHERE tenant_id = $1 AND token = $2",
                     4, p, err);
    if (!res) {
        return -1;
    }
    int rc = 0;
    if (PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't') {
        rc = edge_fail(err, NB_ERR_CONFLICT, "IdempotentParameterMismatch",
                       "The client token '%s' was used before with different parameters", token);
    } else {
        snprintf(earlier, NB_ID_MAX, "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return rc;
}

static void ipv4_text(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

int edge_pool_get(struct gw_ctx *gw, const char *empty_reason, struct edge_pool *out,
                  struct nb_error *err)
{
    const char *cidr = nb_config_get(gw->cfg, "network.public_pool", "");
    const char *router = nb_config_get(gw->cfg, "network.public_gateway", "");
    uint32_t net, gw_addr;
    int len;
    if (!cidr[0]) {
        return edge_fail(err, NB_ERR_LIMIT, empty_reason,
                         "This cloud has no public IPv4 addresses (the operator has set no "
                         "network.public_pool)");
    }
    if (gw_cidr_parse(cidr, &net, &len) < 0 || len < POOL_MIN_PLEN || len > POOL_MAX_PLEN) {
        nb_error_set(err, NB_ERR_INTERNAL,
                     "the setting network.public_pool \"%.64s\" is not a CIDR block of /%d to /%d",
                     cidr, POOL_MIN_PLEN, POOL_MAX_PLEN);
        return -1;
    }
    if (router[0] && gw_ipv4_parse(router, &gw_addr) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL,
                     "the setting network.public_gateway \"%.64s\" is not an IPv4 address", router);
        return -1;
    }
    snprintf(out->cidr, sizeof out->cidr, "%s", cidr);
    if (router[0]) {
        snprintf(out->gateway, sizeof out->gateway, "%s", router);
    } else {
        ipv4_text(net + 1, out->gateway);
    }
    return 0;
}

int edge_pool_take(struct nb_pg_conn *conn, const struct edge_pool *pool, const char *empty_reason,
                   char ip[16], struct nb_error *err)
{
    const char *p[] = {pool->cidr, pool->gateway};
    if (edge_exec(conn, "SELECT pg_advisory_xact_lock(" POOL_LOCK ")", 0, NULL, err) < 0) {
        return -1;
    }
    /* Host addresses only (the network and broadcast addresses are left out), not the router,
     * not held by an address or a live connection. */
    PGresult *res = nb_pg_exec(conn,
                               "SELECT host(x.ip) FROM (SELECT o, "
                               "set_masklen(network($1::cidr), 32) + o AS ip "
                               "FROM generate_series(1, (2 ^ (32 - masklen($1::cidr)))::bigint "
                               "- 2) o) x WHERE x.ip <> $2::inet "
                               "AND NOT EXISTS (SELECT 1 FROM addresses a "
                               "WHERE a.public_ip = x.ip) "
                               "AND NOT EXISTS (SELECT 1 FROM vpn_connections c "
                               "WHERE c.outside_ip = x.ip AND c.state <> 'deleted') "
                               "AND NOT EXISTS (SELECT 1 FROM remote_access_endpoints r "
                               "WHERE r.outside_ip = x.ip) "
                               "ORDER BY x.o LIMIT 1",
                               2, p, err);
    if (!res) {
        return -1;
    }
    int rc = 0;
    if (PQntuples(res) != 1) {
        rc = edge_fail(err, NB_ERR_LIMIT, empty_reason,
                       "The maximum number of addresses has been reached: every address of the "
                       "public pool %s is in use",
                       pool->cidr);
    } else {
        snprintf(ip, 16, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return rc;
}

int edge_check_cidr(const char *param, const char *cidr, struct nb_error *err)
{
    uint32_t a;
    int len;
    if (edge_require(cidr, param, err) < 0) {
        return -1;
    }
    if (gw_cidr_parse(cidr, &a, &len) < 0) {
        return edge_fail(err, NB_ERR_INVALID, "InvalidParameterValue",
                         "Value (%.64s) for parameter %s is invalid. This is not a valid IPv4 "
                         "CIDR block.",
                         cidr, param);
    }
    return 0;
}

long long edge_ms(const char *text)
{
    return text ? atoll(text) : 0;
}
