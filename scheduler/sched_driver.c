/* Drivers: see sched_driver.h. */
#include "sched_driver.h"
#include "sched_agent.h"
#include "scheduler.h"
#include "sched_store.h"

#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACQUIRE_MS 10000
#define SIM_BATCH  256

static const char FETCH_SQL[] =
    "WITH w AS (SELECT i.id FROM instances i JOIN hosts h ON h.id = i.host_id "
    "WHERE i.pending_op IS NOT NULL AND i.host_id IS NOT NULL "
    "AND (i.op_lease_until IS NULL OR i.op_lease_until < now()) AND h.simulated = $2 "
    "LIMIT $1 FOR UPDATE OF i SKIP LOCKED) "
    "UPDATE instances i SET op_lease_until = now() + $3 * interval '1 second' "
    "FROM w, hosts h WHERE i.id = w.id AND h.id = i.host_id "
    "RETURNING i.id, i.op_seq, i.pending_op, i.host_id, h.name, h.state, h.agent_url, "
    "h.node_secret, i.reset_root";
enum { F_ID, F_SEQ, F_OP, F_HOST, F_HOST_NAME, F_HOST_STATE, F_AGENT_URL, F_SECRET, F_RESET };

/* An agent that did not answer is tried again soon (not after the whole lease): it may be
 * restarting, and the operation is idempotent. */
static const char RETRY_SOON_SQL[] =
    "UPDATE instances SET op_lease_until = now() + interval '2 seconds' "
    "WHERE id = $1 AND op_seq = $2::bigint";

/* Host rows in id order, then the instance rows in id order (sched_store.h's lock order). */
static const char LOCK_HOSTS_SQL[] =
    "SELECT 1 FROM hosts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE";
static const char LOCK_INSTANCES_SQL[] =
    "SELECT 1 FROM instances WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE";

/* Successful operations. A terminate releases the claim and the host in the same statement; a
 * start clears reset_root, which it carried out (a reset start of a non-persistent desktop,
 * deploy/migrations/0014_reset_root.sql). */
static const char DONE_SQL[] =
    "WITH w AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) "
    "AS w(id, seq, op, host)), "
    "i AS (UPDATE instances i SET "
    "state = CASE w.op WHEN 'stop' THEN 'stopped' WHEN 'terminate' THEN 'terminated' "
    "ELSE 'running' END, "
    "pending_op = NULL, op_lease_until = NULL, updated_at = now(), "
    "reset_root = CASE WHEN w.op = 'start' THEN false ELSE i.reset_root END, "
    "host_id = CASE WHEN w.op = 'terminate' THEN NULL ELSE i.host_id END, "
    "terminated_at = CASE WHEN w.op = 'terminate' THEN now() ELSE i.terminated_at END, "
    "state_reason_code = CASE WHEN w.op IN ('stop', 'terminate') THEN i.state_reason_code END, "
    "state_reason_message = CASE WHEN w.op IN ('stop', 'terminate') "
    "THEN i.state_reason_message END "
    "FROM w WHERE i.id = w.id AND i.op_seq = w.seq AND i.pending_op = w.op "
    "AND i.host_id = w.host "
    "RETURNING w.op, w.host, i.vcpus, i.memory_mib, i.disk_gib + i.ephemeral_gib AS disk), "
    "r AS (UPDATE hosts h SET used_vcpus = h.used_vcpus - s.v, "
    "used_memory_mib = h.used_memory_mib - s.m, used_disk_gib = h.used_disk_gib - s.d, "
    "instance_count = h.instance_count - s.n, generation = h.generation + 1 "
    "FROM (SELECT host, sum(vcpus) AS v, sum(memory_mib) AS m, sum(disk) AS d, count(*) AS n "
    "FROM i WHERE op = 'terminate' GROUP BY host) s WHERE h.id = s.host RETURNING 1) "
    "SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM r)";

/* Failed spawns: release the claim, remember the host, try another or give up. */
static const char SPAWN_FAILED_SQL[] =
    "WITH w AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) "
    "AS w(id, seq, host, msg)), "
    "i AS (UPDATE instances i SET host_id = NULL, op_lease_until = NULL, updated_at = now(), "
    "attempts = i.attempts + 1, tried_hosts = array_append(i.tried_hosts, w.host), "
    "state = CASE WHEN i.attempts + 1 >= $5 THEN 'error' ELSE 'pending' END, "
    "pending_op = CASE WHEN i.attempts + 1 >= $5 THEN NULL ELSE 'spawn' END, "
    "state_reason_code = CASE WHEN i.attempts + 1 >= $5 THEN 'Server.InternalError' END, "
    "state_reason_message = CASE WHEN i.attempts + 1 >= $5 "
    "THEN format('could not start the instance: %s spawn attempt(s) failed, the last on host "
    "%s: %s', i.attempts + 1, w.host, w.msg) "
    "ELSE format('spawn attempt %s failed on host %s: %s; trying another host', "
    "i.attempts + 1, w.host, w.msg) END "
    "FROM w WHERE i.id = w.id AND i.op_seq = w.seq AND i.host_id = w.host "
    "AND i.pending_op = 'spawn' "
    "RETURNING w.host, i.vcpus, i.memory_mib, i.disk_gib + i.ephemeral_gib AS disk, i.state), "
    "r AS (UPDATE hosts h SET used_vcpus = h.used_vcpus - s.v, "
    "used_memory_mib = h.used_memory_mib - s.m, used_disk_gib = h.used_disk_gib - s.d, "
    "instance_count = h.instance_count - s.n, generation = h.generation + 1 "
    "FROM (SELECT host, sum(vcpus) AS v, sum(memory_mib) AS m, sum(disk) AS d, count(*) AS n "
    "FROM i GROUP BY host) s WHERE h.id = s.host RETURNING 1) "
    "SELECT (SELECT count(*) FROM i), (SELECT count(*) FROM i WHERE state = 'error')";

/* A stop, start or reboot the agent refused: back to where the instance was, with the reason.
 * A start keeps reset_root: the next start still has to discard the disks. ($5 is typed:
 * format() takes "any", from which PostgreSQL cannot infer a parameter's type.) */
static const char OP_FAILED_SQL[] =
    "UPDATE instances SET state = CASE $3 WHEN 'stop' THEN 'running' WHEN 'start' THEN 'stopped' "
    "ELSE state END, pending_op = NULL, op_lease_until = NULL, updated_at = now(), "
    "state_reason_code = 'Server.InternalError', "
    "state_reason_message = format('%s failed on host %s: %s', $3, $4, $5::text) "
    "WHERE id = $1 AND op_seq = $2 AND pending_op = $3 AND host_id = $4";

/* The spawn body of the agent API, built by PostgreSQL. "interfaces" are the instance's network
 * interfaces (RunInstances into a subnet), in device order: the agent plugs them into the
 * host's Open vSwitch. */
static const char SPEC_SQL[] =
    "SELECT json_build_object("
    "'instance_id', i.id, 'tenant_id', i.tenant_id, 'hostname', i.id, "
    "'instance_type', i.instance_type, 'vcpus', i.vcpus, 'memory_mib', i.memory_mib, "
    "'disk_gib', i.disk_gib, 'ephemeral_gib', i.ephemeral_gib, 'user_data', i.user_data, "
    "'ssh_keys', COALESCE((SELECT json_agg(k.public_key) FROM key_pairs k "
    "WHERE k.tenant_id = i.tenant_id AND k.name = i.key_name), '[]'::json), "
    "'interfaces', COALESCE((SELECT json_agg(json_build_object('id', n.id, "
    "'mac', n.mac_address::text, 'private_ip', host(n.private_ip), "
    "'device_index', n.device_index) ORDER BY n.device_index) "
    "FROM network_interfaces n WHERE n.instance_id = i.id), '[]'::json), "
    "'image', json_build_object('id', im.id, 'location', im.location, 'sha256', im.sha256, "
    "'format', im.disk_format, 'size_bytes', im.size_bytes, 'kernel_args', im.kernel_args), "
    "'kernel', CASE WHEN kr.id IS NULL THEN NULL ELSE json_build_object('id', kr.id, "
    "'location', kr.location, 'sha256', kr.sha256, 'format', kr.disk_format, "
    "'size_bytes', kr.size_bytes, 'kernel_args', kr.kernel_args) END, "
    "'ramdisk', CASE WHEN rd.id IS NULL THEN NULL ELSE json_build_object('id', rd.id, "
    "'location', rd.location, 'sha256', rd.sha256, 'format', rd.disk_format, "
    "'size_bytes', rd.size_bytes, 'kernel_args', rd.kernel_args) END)::text "
    "FROM instances i JOIN images im ON im.id = i.image_id "
    "LEFT JOIN images kr ON kr.id = im.kernel_id LEFT JOIN images rd ON rd.id = im.ramdisk_id "
    "WHERE i.id = $1";

/* Outcomes gathered for one batch, written together. */
struct outcomes {
    struct nb_buf ok_id, ok_seq, ok_op, ok_host;
    struct nb_buf f_id, f_seq, f_host, f_msg;
    struct nb_buf lock_hosts; /* hosts whose claims change: terminates and failed spawns */
    struct nb_buf lock_insts; /* every instance written */
    int n_ok, n_failed, n_lock;
};

static void add_ok(struct outcomes *o, PGresult *res, int r)
{
    sched_store_array_add(&o->lock_insts, PQgetvalue(res, r, F_ID));
    sched_store_array_add(&o->ok_id, PQgetvalue(res, r, F_ID));
    sched_store_array_add(&o->ok_seq, PQgetvalue(res, r, F_SEQ));
    sched_store_array_add(&o->ok_op, PQgetvalue(res, r, F_OP));
    sched_store_array_add(&o->ok_host, PQgetvalue(res, r, F_HOST));
    if (!strcmp(PQgetvalue(res, r, F_OP), "terminate")) {
        sched_store_array_add(&o->lock_hosts, PQgetvalue(res, r, F_HOST));
        o->n_lock++;
    }
    o->n_ok++;
}

static void add_failed(struct outcomes *o, PGresult *res, int r, const char *msg)
{
    sched_store_array_add(&o->lock_insts, PQgetvalue(res, r, F_ID));
    sched_store_array_add(&o->f_id, PQgetvalue(res, r, F_ID));
    sched_store_array_add(&o->f_seq, PQgetvalue(res, r, F_SEQ));
    sched_store_array_add(&o->f_host, PQgetvalue(res, r, F_HOST));
    sched_store_array_add(&o->f_msg, msg);
    sched_store_array_add(&o->lock_hosts, PQgetvalue(res, r, F_HOST));
    o->n_lock++;
    o->n_failed++;
}

static void outcomes_free(struct outcomes *o)
{
    struct nb_buf *all[] = {&o->ok_id, &o->ok_seq, &o->ok_op, &o->ok_host,    &o->f_id,
                            &o->f_seq, &o->f_host, &o->f_msg, &o->lock_hosts, &o->lock_insts};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        nb_buf_free(all[i]);
    }
}

/* Writes the outcomes in one transaction. Returns 0 or -1 with 'err'. */
static int write_outcomes(struct sched_ctx *ctx, struct nb_pg_conn *conn, struct outcomes *o,
                          struct nb_error *err)
{
    if (o->n_ok == 0 && o->n_failed == 0) {
        return 0;
    }
    if (nb_pg_begin(conn, err) < 0) {
        return -1;
    }
    PGresult *res = NULL;
    if (o->n_lock > 0) {
        const char *p[] = {sched_store_array_end(&o->lock_hosts)};
        if (!(res = nb_pg_exec(conn, LOCK_HOSTS_SQL, 1, p, err))) {
            goto fail;
        }
        PQclear(res);
    }
    const char *pi[] = {sched_store_array_end(&o->lock_insts)};
    if (!(res = nb_pg_exec(conn, LOCK_INSTANCES_SQL, 1, pi, err))) {
        goto fail;
    }
    PQclear(res);
    if (o->n_ok > 0) {
        const char *p[] = {sched_store_array_end(&o->ok_id), sched_store_array_end(&o->ok_seq),
                           sched_store_array_end(&o->ok_op), sched_store_array_end(&o->ok_host)};
        if (!(res = nb_pg_exec(conn, DONE_SQL, 4, p, err))) {
            goto fail;
        }
        atomic_fetch_add(&ctx->stats.ops_done, atoll(PQgetvalue(res, 0, 0)));
        PQclear(res);
    }
    if (o->n_failed > 0) {
        char max[16];
        snprintf(max, sizeof max, "%d", ctx->cfg.max_attempts);
        const char *p[] = {sched_store_array_end(&o->f_id), sched_store_array_end(&o->f_seq),
                           sched_store_array_end(&o->f_host), sched_store_array_end(&o->f_msg),
                           max};
        if (!(res = nb_pg_exec(conn, SPAWN_FAILED_SQL, 5, p, err))) {
            goto fail;
        }
        atomic_fetch_add(&ctx->stats.spawn_failed, atoll(PQgetvalue(res, 0, 0)));
        PQclear(res);
    }
    if (nb_pg_commit(conn, err) < 0) {
        return -1;
    }
    if (o->n_failed > 0) {
        sched_wake(ctx); /* workers: instances to place again */
    }
    return 0;

fail:
    nb_pg_rollback(conn);
    return -1;
}

/* Carries out one operation on a real agent and writes its outcome. */
static int drive_real(struct sched_ctx *ctx, struct nb_pg_conn *conn, PGresult *res, int r,
                      struct outcomes *o, struct nb_error *err)
{
    const char *id = PQgetvalue(res, r, F_ID), *op = PQgetvalue(res, r, F_OP);
    const char *host = PQgetvalue(res, r, F_HOST), *host_name = PQgetvalue(res, r, F_HOST_NAME);
    char *spec = NULL;
    if (!strcmp(op, "spawn")) {
        const char *p[] = {id};
        PGresult *s = nb_pg_exec(conn, SPEC_SQL, 1, p, err);
        if (!s) {
            return -1;
        }
        if (PQntuples(s) == 1) {
            spec = strdup(PQgetvalue(s, 0, 0));
        }
        PQclear(s);
        if (!spec) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not build the spec of instance \"%s\"", id);
            return -1;
        }
    }
    struct sched_agent_call call = {
        .base_url = PQgetisnull(res, r, F_AGENT_URL) ? NULL : PQgetvalue(res, r, F_AGENT_URL),
        .host_id = host,
        .node_secret = PQgetisnull(res, r, F_SECRET) ? NULL : PQgetvalue(res, r, F_SECRET),
        .instance_id = id,
        .op = op,
        .spec_json = spec,
        /* The op_seq names this start request: a retry of it is not a second reset. */
        .reset_root = !strcmp(op, "start") && !strcmp(PQgetvalue(res, r, F_RESET), "t"),
        .reset_id = PQgetvalue(res, r, F_SEQ),
        .timeout_ms = ctx->cfg.agent_timeout_s * 1000L,
    };
    struct nb_error why = {0};
    struct sched_inflight held = {0};
    snprintf(held.id, sizeof held.id, "%s", id);
    snprintf(held.seq, sizeof held.seq, "%s", PQgetvalue(res, r, F_SEQ));
    sched_inflight_add(ctx, &held);
    enum sched_agent_outcome out =
        sched_agent_call(ctx->have_master_key ? ctx->master_key : NULL, &call, &why);
    sched_inflight_remove(ctx, &held);
    free(spec);
    char msg[NB_ERROR_MSG_MAX + 64];
    snprintf(msg, sizeof msg, "%s", why.msg);
    switch (out) {
    case SCHED_AGENT_OK:
        nb_debug("%s of %s on host \"%s\" done", op, id, host_name);
        add_ok(o, res, r);
        break;
    case SCHED_AGENT_UNREACHABLE: {
        nb_warn("%s of %s: agent of host \"%s\" (%s) unreachable, will retry: %s", op, id,
                host_name, host, msg);
        const char *p[] = {id, PQgetvalue(res, r, F_SEQ)};
        PGresult *u = nb_pg_exec(conn, RETRY_SOON_SQL, 2, p, err);
        if (!u) {
            return -1;
        }
        PQclear(u);
        break;
    }
    case SCHED_AGENT_FAILED:
        nb_warn("%s of %s failed on host \"%s\" (%s): %s", op, id, host_name, host, msg);
        if (!strcmp(op, "spawn")) {
            add_failed(o, res, r, msg);
        } else if (!strcmp(op, "terminate")) {
            /* Must happen eventually: the lease runs out and it is tried again. */
        } else {
            const char *p[] = {id, PQgetvalue(res, r, F_SEQ), op, host, msg};
            PGresult *u = nb_pg_exec(conn, OP_FAILED_SQL, 5, p, err);
            if (!u) {
                return -1;
            }
            PQclear(u);
        }
        break;
    }
    return 0;
}

int sched_driver_run_once(struct sched_ctx *ctx, bool simulated, uint64_t *rng,
                          struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(ctx->pool, ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    char limit[16], lease[16];
    snprintf(limit, sizeof limit, "%d", simulated ? SIM_BATCH : 1);
    snprintf(lease, sizeof lease, "%d", ctx->cfg.lease_s);
    const char *p[] = {limit, simulated ? "true" : "false", lease};
    PGresult *res = nb_pg_exec(conn, FETCH_SQL, 3, p, err);
    if (!res) {
        nb_pg_release(conn);
        return -1;
    }
    int n = PQntuples(res), rc = 0;
    struct outcomes o = {0};
    for (int r = 0; r < n && rc == 0; r++) {
        const char *op = PQgetvalue(res, r, F_OP);
        if (!strcmp(PQgetvalue(res, r, F_HOST_STATE), "down")) {
            /* A down host: a spawn goes elsewhere, a terminate is done (the agent cleans up
             * what the control plane no longer knows when it comes back), the rest waits for
             * the host or for its evacuation. */
            if (!strcmp(op, "spawn")) {
                char msg[128];
                snprintf(msg, sizeof msg, "host \"%s\" is down", PQgetvalue(res, r, F_HOST_NAME));
                add_failed(&o, res, r, msg);
            } else if (!strcmp(op, "terminate")) {
                add_ok(&o, res, r);
            }
            continue;
        }
        if (!simulated) {
            rc = drive_real(ctx, conn, res, r, &o, err);
        } else if (!strcmp(op, "spawn") && sched_random(rng) < ctx->cfg.sim_fail_rate) {
            add_failed(&o, res, r, "simulated spawn failure");
        } else {
            add_ok(&o, res, r);
        }
    }
    if (rc == 0) {
        rc = write_outcomes(ctx, conn, &o, err);
    }
    outcomes_free(&o);
    PQclear(res);
    nb_pg_release(conn);
    return rc < 0 ? -1 : n;
}
