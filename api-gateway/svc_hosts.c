/* Compute hosts: see svc_hosts.h. The host's JSON is built by PostgreSQL (HOST_JSON), so that
 * every call shows the same shape. */
#include "svc_hosts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "gateway.h"
#include "svc.h"
#include "svc_instances.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/httpc.h"
#include "nubo/id.h"
#include "nubo/json.h"
#include "nubo/pg.h"

/* How often agents heartbeat; the scheduler's heartbeat timeout should be a few times this. */
#define HEARTBEAT_INTERVAL_S 5

#define HOST_JSON                                                                                  \
    "json_build_object('id', h.id, 'name', h.name, 'zone', h.zone, 'state', h.state, "             \
    "'state_reason', h.state_reason, 'simulated', h.simulated, 'agent_url', h.agent_url, "         \
    "'capacity', json_build_object('vcpus', h.vcpus, 'memory_mib', h.memory_mib, "                 \
    "'disk_gib', h.disk_gib), "                                                                    \
    "'reserved', json_build_object('vcpus', h.reserved_vcpus, 'memory_mib', "                      \
    "h.reserved_memory_mib, 'disk_gib', h.reserved_disk_gib), "                                    \
    "'ratios', json_build_object('cpu', h.cpu_ratio, 'memory', h.memory_ratio, "                   \
    "'disk', h.disk_ratio), "                                                                      \
    "'used', json_build_object('vcpus', h.used_vcpus, 'memory_mib', h.used_memory_mib, "           \
    "'disk_gib', h.used_disk_gib, 'instances', h.instance_count), "                                \
    "'traits', h.traits, 'dedicated_tenant', h.dedicated_tenant, 'cpu_load', h.cpu_load, "         \
    "'last_heartbeat', to_char(h.last_heartbeat AT TIME ZONE 'UTC', "                              \
    "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'stats', h.stats)::text"

/* The fields of a host spec, and the SQL expression reading each from the JSON body $2 (b). */
static const char *const spec_fields[] = {"name",
                                          "zone",
                                          "vcpus",
                                          "memory_mib",
                                          "disk_gib",
                                          "reserved_vcpus",
                                          "reserved_memory_mib",
                                          "reserved_disk_gib",
                                          "cpu_ratio",
                                          "memory_ratio",
                                          "disk_ratio",
                                          "traits",
                                          "dedicated_tenant",
                                          "simulated",
                                          "agent_url",
                                          "state",
                                          NULL};

static struct nb_pg_conn *admin_conn(struct gw_ctx *gw, const struct gw_principal *who,
                                     struct nb_error *err)
{
    if (gw_require_admin(who, err) < 0) {
        return NULL;
    }
    return nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
}

static void host_not_found(const char *id, struct nb_error *err)
{
    nb_error_set(err, NB_ERR_NOT_FOUND, "The host '%s' does not exist", id);
    nb_error_reason(err, "InvalidHostID.NotFound");
}

/* Parses the first column of every row as JSON into an array (or the one object when 'one').
 * Returns a new reference, or NULL with 'err' set. */
static json_t *rows_json(PGresult *res, bool one, struct nb_error *err)
{
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *v = json_loads(PQgetvalue(res, r, 0), 0, NULL);
        if (!v) {
            json_decref(arr);
            nb_error_set(err, NB_ERR_INTERNAL, "database returned malformed host JSON");
            return NULL;
        }
        if (one) {
            json_decref(arr);
            return v;
        }
        json_array_append_new(arr, v);
    }
    return arr;
}

static void invalid(struct nb_error *err)
{
    if (err->code == NB_ERR_INVALID || err->code == NB_ERR_CONFLICT) {
        nb_error_reason(err, err->code == NB_ERR_CONFLICT ? "InvalidHost.Duplicate"
                                                          : "InvalidParameterValue");
    }
}

/* Makes a fresh node token for host 'id' into 'token' (160 bytes) and returns it sealed under
 * the master key (malloc()ed; the caller free()s it), or NULL with 'err'. */
static char *new_node_token(struct gw_ctx *gw, const char *id, char token[160],
                            struct nb_error *err)
{
    uint8_t secret[32];
    char secret_hex[65];
    if (nb_random_bytes(secret, sizeof secret) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a node credential");
        return NULL;
    }
    nb_hex_encode(secret, sizeof secret, secret_hex);
    snprintf(token, 160, "%s:%s", id, secret_hex);
    return nb_seal(gw->master_key, token, strlen(token), id, err);
}

json_t *gw_host_create(struct gw_ctx *gw, const struct gw_principal *who, const json_t *spec,
                       struct nb_error *err)
{
    const char *name;
    if (nb_json_check_fields(spec, spec_fields, err) < 0 ||
        nb_json_get_string(spec, "name", true, &name, err) < 0) {
        nb_error_reason(err, "InvalidParameterValue");
        return NULL;
    }
    bool simulated = json_is_true(json_object_get(spec, "simulated"));
    char id[NB_ID_MAX], token[160];
    if (nb_id_new("h", id, sizeof id) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a host id");
        return NULL;
    }
    /* A simulated host has no agent, so no credential. */
    char *sealed = NULL;
    if (!simulated && !(sealed = new_node_token(gw, id, token, err))) {
        return NULL;
    }
    char *body = json_dumps(spec, JSON_COMPACT);
    const char *p[] = {id, body, sealed};
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    json_t *out = NULL;
    if (!conn) {
        goto done;
    }
    PGresult *res = nb_pg_exec(
        conn,
        "INSERT INTO hosts AS h (id, name, zone, vcpus, memory_mib, disk_gib, reserved_vcpus, "
        "reserved_memory_mib, reserved_disk_gib, cpu_ratio, memory_ratio, disk_ratio, traits, "
        "dedicated_tenant, simulated, agent_url, node_secret, state) "
        "SELECT $1, b->>'name', COALESCE(b->>'zone', (SELECT min(name) FROM zones)), "
        "COALESCE((b->>'vcpus')::int, 0), COALESCE((b->>'memory_mib')::bigint, 0), "
        "COALESCE((b->>'disk_gib')::bigint, 0), COALESCE((b->>'reserved_vcpus')::int, 0), "
        "COALESCE((b->>'reserved_memory_mib')::bigint, 0), "
        "COALESCE((b->>'reserved_disk_gib')::bigint, 0), "
        "COALESCE((b->>'cpu_ratio')::float8, 4.0), COALESCE((b->>'memory_ratio')::float8, 1.0), "
        "COALESCE((b->>'disk_ratio')::float8, 1.0), "
        "COALESCE(ARRAY(SELECT jsonb_array_elements_text(b->'traits')), '{}'), "
        "b->>'dedicated_tenant', COALESCE((b->>'simulated')::boolean, false), b->>'agent_url', "
        "$3, COALESCE(b->>'state', 'up') FROM (SELECT $2::jsonb AS b) s RETURNING " HOST_JSON,
        3, p, err);
    nb_pg_release(conn);
    if (!res) {
        invalid(err);
        goto done;
    }
    out = rows_json(res, true, err);
    PQclear(res);
    if (out && !simulated) {
        json_object_set_new(out, "node_token", json_string(token));
    }

done:
    free(body);
    free(sealed);
    return out;
}

int gw_host_issue_token(struct gw_ctx *gw, const char *name, const char *zone, char token[160],
                        struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    char id[NB_ID_MAX];
    char *sealed = NULL;
    const char *p_name[] = {name};
    PGresult *res = NULL;
    if (nb_pg_begin(conn, err) < 0 ||
        !(res = nb_pg_exec(conn, "SELECT id FROM hosts WHERE name = $1 FOR UPDATE", 1, p_name,
                           err))) {
        goto done;
    }
    if (PQntuples(res) == 1) {
        snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    } else if (nb_id_new("h", id, sizeof id) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a host id");
        goto done;
    }
    PQclear(res);
    res = NULL;
    if (!(sealed = new_node_token(gw, id, token, err))) {
        goto done;
    }
    const char *p[] = {id, name, zone, sealed};
    if (!(res = nb_pg_exec(conn,
                           "INSERT INTO hosts (id, name, zone, node_secret) "
                           "VALUES ($1, $2, COALESCE($3, (SELECT min(name) FROM zones)), $4) "
                           "ON CONFLICT (id) DO UPDATE SET node_secret = EXCLUDED.node_secret, "
                           "updated_at = now()",
                           4, p, err)) ||
        nb_pg_commit(conn, err) < 0) {
        invalid(err);
        goto done;
    }
    rc = 0;

done:
    PQclear(res);
    free(sealed);
    nb_pg_release(conn);
    return rc;
}

json_t *gw_hosts_list(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                      struct nb_error *err)
{
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    if (!conn) {
        return NULL;
    }
    const char *p[] = {id};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT " HOST_JSON " FROM hosts h "
                               "WHERE $1::text IS NULL OR h.id = $1 ORDER BY h.name",
                               1, p, err);
    nb_pg_release(conn);
    if (!res) {
        return NULL;
    }
    if (id && PQntuples(res) == 0) {
        PQclear(res);
        host_not_found(id, err);
        return NULL;
    }
    json_t *out = rows_json(res, id != NULL, err);
    PQclear(res);
    return out;
}

json_t *gw_host_update(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                       const json_t *set, struct nb_error *err)
{
    static const char *const fields[] = {"state",
                                         "vcpus",
                                         "memory_mib",
                                         "disk_gib",
                                         "reserved_vcpus",
                                         "reserved_memory_mib",
                                         "reserved_disk_gib",
                                         "cpu_ratio",
                                         "memory_ratio",
                                         "disk_ratio",
                                         "traits",
                                         "dedicated_tenant",
                                         NULL};
    if (nb_json_check_fields(set, fields, err) < 0) {
        nb_error_reason(err, "InvalidParameterValue");
        return NULL;
    }
    const char *state = NULL;
    if (nb_json_get_string(set, "state", false, &state, err) < 0) {
        nb_error_reason(err, "InvalidParameterValue");
        return NULL;
    }
    if (state && strcmp(state, "up") && strcmp(state, "disabled") && strcmp(state, "draining")) {
        nb_error_set(err, NB_ERR_INVALID,
                     "Invalid host state '%s': the operator sets up, disabled or draining", state);
        nb_error_reason(err, "InvalidParameterValue");
        return NULL;
    }
    char *body = json_dumps(set, JSON_COMPACT);
    const char *p[] = {id, body};
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    json_t *out = NULL;
    if (!conn) {
        free(body);
        return NULL;
    }
    /* The capacity of a real host is what its agent reports; the operator sets it only for
     * simulated hosts. */
    PGresult *res = nb_pg_exec(
        conn,
        "UPDATE hosts h SET state = COALESCE(b->>'state', h.state), "
        "state_reason = CASE WHEN b ? 'state' THEN 'set by the operator' ELSE h.state_reason END, "
        "vcpus = CASE WHEN h.simulated THEN COALESCE((b->>'vcpus')::int, h.vcpus) ELSE h.vcpus "
        "END, "
        "memory_mib = CASE WHEN h.simulated THEN COALESCE((b->>'memory_mib')::bigint, "
        "h.memory_mib) ELSE h.memory_mib END, "
        "disk_gib = CASE WHEN h.simulated THEN COALESCE((b->>'disk_gib')::bigint, h.disk_gib) "
        "ELSE h.disk_gib END, "
        "reserved_vcpus = COALESCE((b->>'reserved_vcpus')::int, h.reserved_vcpus), "
        "reserved_memory_mib = COALESCE((b->>'reserved_memory_mib')::bigint, "
        "h.reserved_memory_mib), "
        "reserved_disk_gib = COALESCE((b->>'reserved_disk_gib')::bigint, h.reserved_disk_gib), "
        "cpu_ratio = COALESCE((b->>'cpu_ratio')::float8, h.cpu_ratio), "
        "memory_ratio = COALESCE((b->>'memory_ratio')::float8, h.memory_ratio), "
        "disk_ratio = COALESCE((b->>'disk_ratio')::float8, h.disk_ratio), "
        "traits = CASE WHEN b ? 'traits' THEN ARRAY(SELECT jsonb_array_elements_text(b->'traits')) "
        "ELSE h.traits END, "
        "dedicated_tenant = CASE WHEN b ? 'dedicated_tenant' THEN b->>'dedicated_tenant' "
        "ELSE h.dedicated_tenant END, "
        "generation = h.generation + 1, updated_at = now() "
        "FROM (SELECT $2::jsonb AS b) s WHERE h.id = $1 RETURNING " HOST_JSON,
        2, p, err);
    nb_pg_release(conn);
    free(body);
    if (!res) {
        invalid(err);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        host_not_found(id, err);
        return NULL;
    }
    out = rows_json(res, true, err);
    PQclear(res);
    return out;
}

json_t *gw_host_evacuate(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                         struct nb_error *err)
{
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    if (!conn) {
        return NULL;
    }
    const char *p[] = {id};
    json_t *out = NULL;
    PGresult *res = NULL;
    if (nb_pg_begin(conn, err) < 0 ||
        !(res = nb_pg_exec(conn, "SELECT state FROM hosts WHERE id = $1 FOR UPDATE", 1, p, err))) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        host_not_found(id, err);
        goto done;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "down") && strcmp(PQgetvalue(res, 0, 0), "disabled")) {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "The host '%s' is %s: only a down or disabled host can be evacuated", id,
                     PQgetvalue(res, 0, 0));
        nb_error_reason(err, "IncorrectState");
        goto done;
    }
    PQclear(res);
    if (!(res = nb_pg_exec(conn, "SELECT unnest(host_evacuate($1))", 1, p, err)) ||
        svc_notify_scheduler(conn, err) < 0 || nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    json_t *ids = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_array_append_new(ids, json_string(PQgetvalue(res, r, 0)));
    }
    out = json_pack("{s:s, s:o}", "host_id", id, "instances", ids);

done:
    PQclear(res);
    nb_pg_release(conn);
    return out;
}

int gw_host_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                   struct nb_error *err)
{
    struct nb_pg_conn *conn = admin_conn(gw, who, err);
    if (!conn) {
        return -1;
    }
    const char *p[] = {id};
    PGresult *res = nb_pg_exec(
        conn,
        "WITH live AS (SELECT count(*) AS n FROM instances WHERE host_id = $1 "
        "AND state NOT IN ('terminated', 'error')), "
        "gone AS (UPDATE instances SET host_id = NULL WHERE host_id = $1 "
        "AND (SELECT n FROM live) = 0 RETURNING 1), "
        "del AS (DELETE FROM hosts WHERE id = $1 AND (SELECT n FROM live) = 0 RETURNING 1) "
        "SELECT (SELECT n FROM live), (SELECT count(*) FROM del), "
        "(SELECT count(*) FROM hosts WHERE id = $1)",
        1, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    long long live = atoll(PQgetvalue(res, 0, 0)), deleted = atoll(PQgetvalue(res, 0, 1));
    long long exists = atoll(PQgetvalue(res, 0, 2));
    PQclear(res);
    if (deleted) {
        return 0;
    }
    if (!exists) {
        host_not_found(id, err);
    } else {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "The host '%s' still holds %lld live instances: evacuate or terminate them "
                     "first",
                     id, live);
        nb_error_reason(err, "IncorrectState");
    }
    return -1;
}

int gw_node_authenticate(struct gw_ctx *gw, const char *authorization, char host_id[32],
                         struct nb_error *err)
{
    const char *token =
        authorization && !strncmp(authorization, "Bearer ", 7) ? authorization + 7 : NULL;
    const char *colon = token ? strchr(token, ':') : NULL;
    if (!colon || colon - token >= 32) {
        nb_error_set(err, NB_ERR_AUTH, "a node call needs \"Authorization: Bearer <node token>\"");
        return -1;
    }
    snprintf(host_id, 32, "%.*s", (int)(colon - token), token);
    const char *p[] = {host_id};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    PGresult *res = nb_pg_exec(conn, "SELECT node_secret FROM hosts WHERE id = $1", 1, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    int rc = -1;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        struct nb_error ignored = {0};
        size_t len;
        char *want = nb_unseal(gw->master_key, PQgetvalue(res, 0, 0), host_id, &len, &ignored);
        if (want && len == strlen(token) && nb_ct_equal(want, token, len)) {
            rc = 0;
        }
        free(want);
    }
    PQclear(res);
    if (rc < 0) {
        nb_error_set(err, NB_ERR_AUTH, "the node token of host \"%s\" is not valid", host_id);
    }
    return rc;
}

/* Network bytes for billing ($1 = host, $2 = the heartbeat): the increase of each domain's
 * counters since the last heartbeat, as one instance_net_events row per instance, in the same
 * statement as the new last counters, so that a failure loses nothing (the next heartbeat counts
 * from the last counters stored). A counter lower than the last one seen means the domain
 * restarted: it counts again from 0. */
static const char HEARTBEAT_NET_SQL[] =
    "WITH s AS ("
    "  SELECT DISTINCT ON (i.id) i.id AS instance_id, i.tenant_id,"
    "         (e->>'net_rx_bytes')::bigint AS rx, (e->>'net_tx_bytes')::bigint AS tx"
    "  FROM jsonb_array_elements(CASE WHEN jsonb_typeof($2::jsonb #> '{stats,instances}')"
    "       = 'array' THEN $2::jsonb #> '{stats,instances}' ELSE '[]' END) e"
    "  JOIN instances i ON i.id = e->>'id' AND i.host_id = $1"
    "  WHERE e->>'net_rx_bytes' ~ '^[0-9]{1,18}$' AND e->>'net_tx_bytes' ~ '^[0-9]{1,18}$'"
    "  ORDER BY i.id"
    "), d AS ("
    "  SELECT s.*,"
    "    CASE WHEN c.rx_bytes IS NULL OR s.rx < c.rx_bytes THEN s.rx"
    "         ELSE s.rx - c.rx_bytes END AS drx,"
    "    CASE WHEN c.tx_bytes IS NULL OR s.tx < c.tx_bytes THEN s.tx"
    "         ELSE s.tx - c.tx_bytes END AS dtx"
    "  FROM s LEFT JOIN instance_net_counters c ON c.instance_id = s.instance_id"
    "), ev AS ("
    "  INSERT INTO instance_net_events (instance_id, tenant_id, rx_bytes, tx_bytes)"
    "  SELECT instance_id, tenant_id, drx, dtx FROM d WHERE drx > 0 OR dtx > 0"
    ") INSERT INTO instance_net_counters (instance_id, rx_bytes, tx_bytes, at)"
    "  SELECT instance_id, rx, tx, now() FROM d"
    "  ON CONFLICT (instance_id) DO UPDATE SET rx_bytes = EXCLUDED.rx_bytes,"
    "      tx_bytes = EXCLUDED.tx_bytes, at = EXCLUDED.at";

json_t *gw_node_heartbeat(struct gw_ctx *gw, const char *host_id, const json_t *report,
                          struct nb_error *err)
{
    char *body = json_dumps(report, JSON_COMPACT);
    const char *p[] = {host_id, body};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        free(body);
        return NULL;
    }
    /* Capacity changes bump the generation so that schedulers re-read the host. */
    PGresult *res = nb_pg_exec(
        conn,
        "UPDATE hosts h SET last_heartbeat = now(), updated_at = now(), "
        "agent_url = COALESCE(b->>'agent_url', h.agent_url), "
        "vcpus = COALESCE((b#>>'{capacity,vcpus}')::int, h.vcpus), "
        "memory_mib = COALESCE((b#>>'{capacity,memory_mib}')::bigint, h.memory_mib), "
        "disk_gib = COALESCE((b#>>'{capacity,disk_gib}')::bigint, h.disk_gib), "
        "cpu_load = COALESCE((b#>>'{stats,cpu_load}')::float8, h.cpu_load), "
        "stats = COALESCE(b->'stats', '{}') || jsonb_build_object('virt_type', b->>'virt_type'), "
        "state = CASE WHEN h.state = 'down' THEN 'up' ELSE h.state END, "
        "state_reason = CASE WHEN h.state = 'down' THEN NULL ELSE h.state_reason END, "
        "generation = h.generation + 1 "
        "FROM (SELECT $2::jsonb AS b) s WHERE h.id = $1 RETURNING h.name, h.zone",
        2, p, err);
    /* A guest that powered itself off (shutdown inside, or a crash with on_crash=destroy) while
     * nothing was asked of it is 'stopped', as EC2 reports it, with EC2's reason. */
    if (res && PQntuples(res) == 1) {
        PGresult *sync = nb_pg_exec(
            conn,
            "UPDATE instances i SET state = 'stopped', updated_at = now(), "
            "state_reason_code = 'Client.InstanceInitiatedShutdown', "
            "state_reason_message = 'Client.InstanceInitiatedShutdown: the guest shut down' "
            "FROM jsonb_array_elements(CASE WHEN jsonb_typeof($2::jsonb #> '{stats,instances}') "
            "= 'array' THEN $2::jsonb #> '{stats,instances}' ELSE '[]' END) e "
            "WHERE i.host_id = $1 AND i.id = e->>'id' AND e->>'state' IN ('shutoff', 'crashed') "
            "AND i.state = 'running' AND i.pending_op IS NULL "
            "AND i.updated_at < now() - interval '2 seconds'",
            2, p, err);
        PGresult *net = sync ? nb_pg_exec(conn, HEARTBEAT_NET_SQL, 2, p, err) : NULL;
        if (!sync || !net) {
            PQclear(res);
            res = NULL;
        }
        PQclear(sync);
        PQclear(net);
    }
    nb_pg_release(conn);
    free(body);
    if (!res) {
        invalid(err);
        return NULL;
    }
    json_t *out = NULL;
    if (PQntuples(res) == 1) {
        out =
            json_pack("{s:s, s:s, s:s, s:i}", "host_id", host_id, "name", PQgetvalue(res, 0, 0),
                      "zone", PQgetvalue(res, 0, 1), "heartbeat_interval_s", HEARTBEAT_INTERVAL_S);
    } else {
        host_not_found(host_id, err);
    }
    PQclear(res);
    return out;
}

json_t *gw_node_instances(struct gw_ctx *gw, const char *host_id, struct nb_error *err)
{
    const char *p[] = {host_id};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return NULL;
    }
    PGresult *res = nb_pg_exec(conn,
                               "SELECT id, state, pending_op FROM instances "
                               "WHERE host_id = $1 AND state NOT IN ('terminated', 'error') "
                               "ORDER BY id",
                               1, p, err);
    nb_pg_release(conn);
    if (!res) {
        return NULL;
    }
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s?}", "id", PQgetvalue(res, r, 0), "state",
                                        PQgetvalue(res, r, 1), "pending_op",
                                        PQgetisnull(res, r, 2) ? NULL : PQgetvalue(res, r, 2)));
    }
    PQclear(res);
    return json_pack("{s:o}", "instances", arr);
}

/* The agent of the tenant's instance 'instance_id': its URL and node token (malloc()ed; the
 * caller free()s them) and the instance's state (into 'state', 16 bytes). Returns 0, or -1
 * with 'err': InvalidInstanceID.NotFound, or IncorrectInstanceState when the instance is on no
 * host or on a simulated one. */
static int instance_agent(struct gw_ctx *gw, const struct gw_principal *who,
                          const char *instance_id, char **agent_url, char **token, char state[16],
                          struct nb_error *err)
{
    *agent_url = *token = NULL;
    const char *p[] = {who->tenant_id, instance_id};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    PGresult *res = nb_pg_exec(conn,
                               "SELECT h.id, h.agent_url, h.node_secret, i.state "
                               "FROM instances i LEFT JOIN hosts h ON h.id = i.host_id "
                               "WHERE i.tenant_id = $1 AND i.id = $2",
                               2, p, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    int rc = -1;
    if (PQntuples(res) == 0) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The instance ID '%s' does not exist", instance_id);
        nb_error_reason(err, "InvalidInstanceID.NotFound");
    } else if (PQgetisnull(res, 0, 1) || PQgetisnull(res, 0, 2)) {
        nb_error_set(err, NB_ERR_CONFLICT, "The instance '%s' runs on no host with an agent",
                     instance_id);
        nb_error_reason(err, "IncorrectInstanceState");
    } else {
        size_t len;
        char *t =
            nb_unseal(gw->master_key, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 0), &len, err);
        if (t) {
            *token = t;
            *agent_url = strdup(PQgetvalue(res, 0, 1));
            snprintf(state, 16, "%s", PQgetvalue(res, 0, 3));
            rc = 0;
        }
    }
    PQclear(res);
    return rc;
}

/* Calls the agent at 'url' with its node token: 'method' 'path' with 'body' (NULL: none).
 * Returns 0 with '*resp' filled (any status; the caller nb_httpc_response_free()s it), or -1
 * with 'err' (the agent did not answer: Unavailable). */
static int agent_request(const char *url, const char *token, const char *method, const char *path,
                         const char *body, long timeout_ms, struct nb_httpc_response *resp,
                         struct nb_error *err)
{
    char full[512], auth[192];
    snprintf(full, sizeof full, "%s%s", url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    struct nb_httpc_request rq = {.method = method,
                                  .url = full,
                                  .headers = headers,
                                  .body = body,
                                  .body_len = body ? strlen(body) : 0,
                                  .timeout_ms = timeout_ms,
                                  .max_retries = strcmp(method, "GET") ? 0 : 1};
    int rc = nb_httpc_do(&rq, resp, err);
    memset(auth, 0, sizeof auth);
    if (rc < 0) {
        nb_error_set(err, NB_ERR_UNAVAILABLE,
                     "the compute agent at %s did not answer; try again "
                     "later",
                     url);
        nb_error_reason(err, "Unavailable");
    }
    return rc;
}

int gw_instance_console(struct gw_ctx *gw, const struct gw_principal *who, const char *instance_id,
                        char **text, struct nb_error *err)
{
    *text = NULL;
    char *url = NULL, *token = NULL, state[16], path[96];
    if (instance_agent(gw, who, instance_id, &url, &token, state, err) < 0) {
        return -1;
    }
    snprintf(path, sizeof path, "/v1/instances/%s/console?bytes=65536", instance_id);
    struct nb_httpc_response resp = {0};
    int rc = -1;
    if (agent_request(url, token, "GET", path, NULL, 5000, &resp, err) < 0) {
        /* err says it */
    } else if (resp.status == 404) {
        *text = strdup(""); /* the instance has not booted there yet */
        rc = 0;
    } else if (resp.status != 200) {
        nb_error_set(err, NB_ERR_UNAVAILABLE,
                     "the compute agent of instance '%s' answered %ld to a console request",
                     instance_id, resp.status);
        nb_error_reason(err, "Unavailable");
    } else {
        *text = resp.body;
        resp.body = NULL;
        rc = 0;
    }
    nb_httpc_response_free(&resp);
    free(url);
    free(token);
    return rc;
}

int gw_instance_vnc(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                    struct nb_arena *arena, const char **address, int *port, const char **password,
                    struct nb_error *err)
{
    *address = *password = NULL;
    *port = 0;
    char *url = NULL, *token = NULL, state[16], path[96];
    if (instance_agent(gw, who, id, &url, &token, state, err) < 0) {
        return -1;
    }
    int rc = -1;
    struct nb_httpc_response resp = {0};
    snprintf(path, sizeof path, "/v1/instances/%s/vnc", id);
    if (strcmp(state, "running")) {
        nb_error_set(err, NB_ERR_CONFLICT, "The instance '%s' is not in the 'running' state", id);
        nb_error_reason(err, "IncorrectInstanceState");
    } else if (agent_request(url, token, "GET", path, NULL, 5000, &resp, err) < 0) {
        /* err says it */
    } else if (resp.status == 404 || resp.status == 409) {
        /* Placed but not (or no longer) running on its host: no display to open. */
        nb_error_set(err, NB_ERR_CONFLICT, "The instance '%s' is not running on its host", id);
        nb_error_reason(err, "IncorrectInstanceState");
    } else if (resp.status != 200) {
        char why[256];
        nb_error_set(err, NB_ERR_UNAVAILABLE,
                     "the compute agent of instance '%s' answered %ld to a VNC request: %s", id,
                     resp.status, nb_json_error_text(resp.body, resp.body_len, why, sizeof why));
        nb_error_reason(err, "Unavailable");
    } else {
        json_t *o = nb_json_parse_object(resp.body, resp.body_len, err);
        const char *a = NULL;
        long long p = 0;
        if (o && nb_json_get_string(o, "address", true, &a, err) > 0 &&
            nb_json_get_int(o, "port", true, 1, 65535, &p, err) > 0) {
            char pw[9];
            nb_vnc_password(token, id, pw);
            *address = nb_arena_strdup(arena, a);
            *port = (int)p;
            *password = nb_arena_strdup(arena, pw);
            memset(pw, 0, sizeof pw);
            rc = 0;
        }
        json_decref(o);
    }
    nb_httpc_response_free(&resp);
    free(url);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    return rc;
}

/* Asks the agent at 'url' to snapshot 'instance_id' as 'image_id'; returns its JSON answer. */
static json_t *agent_snapshot_call(const char *url, const char *token, const char *instance_id,
                                   const char *image_id, struct nb_error *err)
{
    char path[96], body[96];
    snprintf(path, sizeof path, "/v1/instances/%s/snapshot", instance_id);
    snprintf(body, sizeof body, "{\"image_id\": \"%s\"}", image_id);
    struct nb_httpc_response resp = {0};
    json_t *out = NULL;
    if (agent_request(url, token, "POST", path, body, 600000, &resp, err) < 0) {
        /* err says it */
    } else if (resp.status != 200) {
        char why[256];
        nb_error_set(err, NB_ERR_INTERNAL, "the compute agent could not save the disk of %s: %s",
                     instance_id, nb_json_error_text(resp.body, resp.body_len, why, sizeof why));
    } else {
        out = nb_json_parse_object(resp.body, resp.body_len, err);
    }
    nb_httpc_response_free(&resp);
    return out;
}

int gw_instance_create_image(struct gw_ctx *gw, const struct gw_principal *who,
                             const char *instance_id, const char *name, const char *description,
                             char *id_out, struct nb_error *err)
{
    if (gw_require_writer(who, err) < 0) {
        return -1;
    }
    char *token = NULL, *url = NULL, state[16];
    if (instance_agent(gw, who, instance_id, &url, &token, state, err) < 0) {
        return -1;
    }
    int rc = -1;
    json_t *snap = NULL;
    struct nb_pg_conn *conn = NULL;
    if (strcmp(state, "running") && strcmp(state, "stopped")) {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "The instance '%s' is not in a state from which an image can be made (%s)",
                     instance_id, state);
        nb_error_reason(err, "IncorrectInstanceState");
        goto done;
    }
    if (nb_id_new("ami", id_out, NB_ID_MAX) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make an image id");
        goto done;
    }
    if (!(conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err))) {
        goto done;
    }
    /* The new image boots as its source does: same kernel, ramdisk, arguments, architecture. */
    const char *pi[] = {id_out, who->tenant_id, name, description ? description : "", instance_id};
    PGresult *ins = nb_pg_exec(conn,
                               "INSERT INTO images (id, tenant_id, name, description, state, "
                               "kernel_id, ramdisk_id, kernel_args, architecture, disk_format) "
                               "SELECT $1, $2, $3, $4, 'pending', m.kernel_id, m.ramdisk_id, "
                               "m.kernel_args, m.architecture, 'qcow2' FROM instances i "
                               "JOIN images m ON m.id = i.image_id WHERE i.id = $5",
                               5, pi, err);
    if (!ins) {
        if (err->code == NB_ERR_CONFLICT) {
            nb_error_set(err, NB_ERR_CONFLICT, "An image named '%s' already exists", name);
            nb_error_reason(err, "InvalidAMIName.Duplicate");
        } else if (err->code == NB_ERR_INVALID) {
            nb_error_reason(err, "InvalidParameterValue");
        }
        goto done;
    }
    PQclear(ins);
    nb_pg_release(conn); /* no connection held during the copy */
    conn = NULL;
    snap = agent_snapshot_call(url, token, instance_id, id_out, err);
    struct nb_error uerr = {0};
    if (!(conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, snap ? err : &uerr))) {
        goto done;
    }
    /* The snapshot stays on the node only until nubo-imaged has copied it into the image
     * store (an import task from the agent's signed URL): then the image is available, with
     * its bytes where every node can fetch them, whatever becomes of this one. */
    char task[NB_ID_MAX + 16];
    snprintf(task, sizeof task, "import-%s", id_out);
    const char *pu[] = {id_out, task, who->tenant_id,
                        json_string_value(json_object_get(snap, "location"))};
    PGresult *up =
        snap ? nb_pg_exec(conn,
                          "WITH t AS (INSERT INTO image_tasks (id, kind, tenant_id, image_id, "
                          "source_format, source_url, trusted) VALUES ($2, 'import', $3, $1, "
                          "'qcow2', $4, true) RETURNING id) SELECT pg_notify('nubo_imaged', id) "
                          "FROM t",
                          4, pu, err)
             : nb_pg_exec(conn,
                          "UPDATE images SET state = 'failed', state_reason = "
                          "'Server.InternalError: the snapshot failed' WHERE id = $1",
                          1, pu, &uerr);
    if (up && snap) {
        rc = 0;
    }
    PQclear(up);

done:
    nb_pg_release(conn);
    json_decref(snap);
    free(token);
    free(url);
    return rc;
}
