/* In-browser VM consoles: single-use tickets and the record of proxied connections. */
#include "svc_console.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "auth.h"
#include "nubo/arena.h"
#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/pg.h"
#include "session.h"
#include "svc_sql.h"

int gw_console_ticket_issue(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                            struct nb_arena *arena, struct gw_console_ticket *out,
                            struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    long long ttl = 30;
    if (nb_config_get_int(gw->cfg, "console.ticket_ttl_s", 30, 5, 600, &ttl, err) < 0) {
        return -1;
    }
    char token[GW_TOKEN_LEN + 1], key[GW_TOKEN_KEY_LEN], ttl_text[16];
    if (gw_token_new(token, err) < 0) {
        return -1;
    }
    gw_token_key(token, key, NULL);
    snprintf(ttl_text, sizeof ttl_text, "%lld", ttl);

    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    /* One statement: the instance is checked and the ticket written together, so a ticket never
     * exists for an instance of another tenant. Old tickets go on the way. */
    const char *p[] = {who->tenant_id, id, key, who->user_id, ttl_text};
    PGresult *res = nb_pg_exec(
        conn,
        "WITH i AS (SELECT id, state FROM instances WHERE tenant_id = $1 AND id = $2), "
        "gone AS (DELETE FROM console_tickets WHERE expires_at < now() - interval '1 hour'), "
        "ins AS (INSERT INTO console_tickets (id_hash, instance_id, tenant_id, user_id, "
        "expires_at) SELECT $3::bytea, i.id, $1, $4, now() + $5::int * interval '1 second' "
        "FROM i WHERE i.state = 'running' RETURNING 1) "
        "SELECT i.state, (SELECT count(*) FROM ins) FROM i",
        5, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    int rc = -1;
    if (PQntuples(res) == 0) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The instance ID '%s' does not exist", id);
        nb_error_reason(err, "InvalidInstanceID.NotFound");
    } else if (strcmp(PQgetvalue(res, 0, 1), "1")) {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "The instance '%s' is %s: its console opens only while it runs", id,
                     PQgetvalue(res, 0, 0));
        nb_error_reason(err, "IncorrectInstanceState");
    } else {
        out->instance_id = nb_arena_strdup(arena, id);
        out->token = nb_arena_strdup(arena, token);
        out->expires_in_s = (int)ttl;
        out->websocket = nb_arena_printf(arena, "/v1/console/websocket?token=%s", token);
        out->viewer = nb_arena_printf(arena, "/console/vnc.html?instance=%s&token=%s", id, token);
        rc = 0;
    }
    PQclear(res);
    return rc;
}

int gw_console_ticket_consume(struct gw_ctx *gw, const char *token, const char *source,
                              struct gw_console_target *out, struct nb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!gw_token_well_formed(token)) {
        goto refused;
    }
    char key[GW_TOKEN_KEY_LEN];
    gw_token_key(token, key, NULL);
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    /* The conditional UPDATE is the single use: of two requests with one ticket, on one
     * gateway or two, only one finds used_at NULL. The instance must still run, and its tenant
     * and the asking user still be enabled. */
    const char *p[] = {key, source};
    PGresult *res =
        nb_pg_exec(conn,
                   "UPDATE console_tickets c SET used_at = now(), used_from = $2::inet "
                   "FROM instances i, tenants t WHERE c.id_hash = $1::bytea AND c.used_at IS NULL "
                   "AND c.expires_at > now() AND i.id = c.instance_id AND i.state = 'running' "
                   "AND t.id = c.tenant_id AND t.enabled "
                   "RETURNING c.instance_id, c.tenant_id, c.user_id",
                   2, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    if (PQntuples(res) == 1) {
        snprintf(out->instance_id, sizeof out->instance_id, "%s", PQgetvalue(res, 0, 0));
        snprintf(out->tenant_id, sizeof out->tenant_id, "%s", PQgetvalue(res, 0, 1));
        snprintf(out->user_id, sizeof out->user_id, "%s", PQgetvalue(res, 0, 2));
        PQclear(res);
        return 0;
    }
    PQclear(res);
refused:
    nb_error_set(err, NB_ERR_AUTH,
                 "the console ticket is unknown, already used or expired: ask for a new one");
    nb_error_reason(err, "InvalidConsoleTicket");
    return -1;
}

int64_t gw_console_conn_open(struct gw_ctx *gw, const struct gw_console_target *t,
                             const char *source, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    const char *p[] = {t->instance_id, t->tenant_id, t->user_id, source};
    PGresult *res = nb_pg_exec(conn,
                               "INSERT INTO vnc_connections (instance_id, tenant_id, user_id, "
                               "source_addr) VALUES ($1, $2, $3, $4::inet) RETURNING id",
                               4, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return id;
}

int gw_console_conn_update(struct gw_ctx *gw, int64_t id, uint64_t bytes_in, uint64_t bytes_out,
                           bool closed, struct nb_error *err)
{
    char ids[24], in[24], outb[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(in, sizeof in, "%" PRIu64, bytes_in);
    snprintf(outb, sizeof outb, "%" PRIu64, bytes_out);
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    const char *p[] = {ids, in, outb, closed ? "t" : "f"};
    PGresult *res = nb_pg_exec(conn,
                               "UPDATE vnc_connections SET seen_at = now(), bytes_in = $2, "
                               "bytes_out = $3, closed_at = CASE WHEN $4::bool THEN now() END "
                               "WHERE id = $1 AND closed_at IS NULL",
                               4, p, err);
    nb_pg_release(conn);
    PQclear(res);
    return res ? 0 : -1;
}
