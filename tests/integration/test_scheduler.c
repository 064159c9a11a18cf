/* Integration tests of nubo-scheduler against a real, throwaway PostgreSQL 15 cluster with the
 * project's migrations:
 *
 * - a property test: two scheduler contexts (two "processes", each with its own snapshot, pool,
 *   workers and drivers, all running the real code paths) serve thousands of random requests
 *   (launch, terminate, stop, start, reboot over random types, zones and spread groups) made the
 *   way the gateway makes them, over hundreds of simulated hosts, while some spawns fail and
 *   hosts go down in the middle (and are evacuated at the end). Afterwards: no host is over its
 *   allocation ratio, every host's used_* equals the sum of its live instances' claims, and
 *   every instance is running on one host, stopped, in error with a reason, or terminated
 *   holding nothing; no spread group shares a host;
 * - the audit: drift is found, reported and repaired, by the library and by the binary's
 *   --audit [--repair] exit codes;
 * - agents: a spawn through the HTTP contract to a fake agent (bearer token, body), a failing
 *   agent making the instance fail over to another host; a start carrying reset_root.
 *
 * Each case works in a database of its own. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "nbtest.h"

#include "sched_driver.h"
#include "sched_placer.h"
#include "scheduler.h"
#include "sched_store.h"

#include "nubo/buf.h"
#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/httpc.h"
#include "nubo/id.h"
#include "nubo/log.h"
#include "nubo/migrate.h"
#include "nubo/pg.h"

#include "../lib/pgtmp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TENANT        "123456789012"
#define N_HOSTS       300
#define N_DOWN        15
#define N_OPS         3000
#define N_GROUPS      5
#define SCHEDULERS    2
#define QUIET_TIMEOUT 40 /* seconds to wait for the schedulers to settle */

struct fixture {
    struct nb_test_pg *pg;
    char *conninfo;
    struct nb_pg_pool *pool; /* the test's own ("the gateway") */
};

static const char *const zones[] = {"nubo-1a", "nubo-1b", "nubo-1c"};
static const char *const types[] = {"t3.nano",   "t3.micro", "t3.small", "t3.medium", "m5.large",
                                    "m5.xlarge", "c5.large", "r5.large", "m5d.large"};

static PGresult *sql(struct nb_pg_pool *pool, const char *q, int n, const char *const *p)
{
    struct nb_error err = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(pool, 10000, &err);
    assert_ok(conn, err);
    PGresult *res = nb_pg_exec(conn, q, n, p, &err);
    nb_pg_release(conn);
    assert_ok(res, err);
    return res;
}

static long long sql_int(struct nb_pg_pool *pool, const char *q, int n, const char *const *p)
{
    PGresult *res = sql(pool, q, n, p);
    assert_int_equal(PQntuples(res), 1);
    long long v = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static void sql_do(struct nb_pg_pool *pool, const char *q)
{
    PQclear(sql(pool, q, 0, NULL));
}

static int fixture_setup(void **state)
{
    static int counter;
    struct nb_test_pg *cluster = *state;
    struct fixture *f = calloc(1, sizeof *f);
    char dbname[32];
    snprintf(dbname, sizeof dbname, "sched_%d", ++counter);
    struct nb_error err = {0};
    if (!f || nb_test_pg_create_db(cluster, dbname) < 0 ||
        !(f->conninfo = nb_test_pg_conninfo_db(cluster, dbname)) ||
        !(f->pool = nb_pg_pool_new(f->conninfo, 4, &err))) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        return -1;
    }
    f->pg = cluster;
    struct nb_pg_conn *conn = nb_pg_acquire(f->pool, 10000, &err);
    if (!conn || nb_migrate(conn, "deploy/migrations", &err) < 0) {
        fprintf(stderr, "migrate: %s %s\n", err.msg, err.detail);
        nb_pg_release(conn);
        return -1;
    }
    nb_pg_release(conn);
    sql_do(f->pool, "INSERT INTO zones (name, region) VALUES ('nubo-1b', 'nubo-1'), "
                    "('nubo-1c', 'nubo-1') ON CONFLICT DO NOTHING");
    sql_do(f->pool, "INSERT INTO tenants (id, name) VALUES ('" TENANT "', 'acme'), "
                    "('210987654321', 'other')");
    sql_do(f->pool, "INSERT INTO images (id, tenant_id, name, location, sha256, size_bytes) "
                    "VALUES ('ami-00000000000000001', '" TENANT "', 'debian', "
                    "'file:///var/lib/nubo/images/debian.raw', repeat('ab', 32), 1073741824)");
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    nb_pg_pool_free(f->pool);
    free(f->conninfo);
    *state = f->pg;
    free(f);
    return 0;
}

/* Simulated hosts h-000..., random sizes, in the three zones. */
static void add_hosts(struct fixture *f, int n, unsigned seed)
{
    sql_do(f->pool, "SELECT setseed(0.42)");
    char q[1024];
    snprintf(q, sizeof q,
             "INSERT INTO hosts (id, name, zone, vcpus, memory_mib, disk_gib, reserved_vcpus, "
             "reserved_memory_mib, cpu_ratio, simulated) "
             "SELECT 'h-' || lpad(to_hex(g), 17, '0'), 'node' || g, "
             "(ARRAY['nubo-1a', 'nubo-1b', 'nubo-1c'])[1 + g %% 3], "
             "(ARRAY[4, 8, 16])[1 + (g * %u) %% 3], "
             "(ARRAY[16384, 32768, 65536])[1 + (g * 7 + %u) %% 3], "
             "(ARRAY[200, 400, 800])[1 + (g * 5) %% 3], 1, 1024, 4.0, true "
             "FROM generate_series(1, %d) g",
             seed, seed, n);
    sql_do(f->pool, q);
}

static struct sched_ctx *start_scheduler(struct fixture *f, struct nb_pg_pool **pool,
                                         double fail_rate, const uint8_t *key)
{
    struct sched_config cfg;
    sched_config_default(&cfg);
    cfg.workers = 2;
    cfg.drivers = 2;
    cfg.batch = 16;
    cfg.poll_ms = 100;
    cfg.refresh_ms = 300;
    cfg.max_attempts = 3;
    cfg.agent_timeout_s = 3;
    cfg.lease_s = 6;
    cfg.heartbeat_timeout_s = 5;
    cfg.sim_fail_rate = fail_rate;
    struct nb_error err = {0};
    *pool = nb_pg_pool_new(f->conninfo, cfg.workers + cfg.drivers + 2, &err);
    assert_ok(*pool, err);
    struct sched_ctx *ctx = sched_new(&cfg, *pool, f->conninfo, key, &err);
    assert_ok(ctx, err);
    assert_ok(sched_start(ctx, &err) == 0, err);
    return ctx;
}

/* --- the gateway's side, as RunInstances & co. write it ----------------------------------- */

static void launch(struct fixture *f, const char *type, const char *zone, int count, int min,
                   const char *group, char ids[][NB_ID_MAX], int *n_ids)
{
    char res_id[NB_ID_MAX], count_s[8], min_s[8];
    nb_id_new("r", res_id, sizeof res_id);
    snprintf(count_s, sizeof count_s, "%d", count);
    snprintf(min_s, sizeof min_s, "%d", min);
    struct nb_buf arr = NB_BUF_INIT;
    for (int i = 0; i < count; i++) {
        nb_id_new("i", ids[*n_ids], NB_ID_MAX);
        sched_store_array_add(&arr, ids[*n_ids]);
        (*n_ids)++;
    }
    const char *p[] = {sched_store_array_end(&arr), res_id, type, zone, min_s, group};
    PQclear(sql(f->pool,
                "WITH ins AS (INSERT INTO instances (id, tenant_id, reservation_id, launch_index, "
                "image_id, instance_type, vcpus, memory_mib, disk_gib, ephemeral_gib, zone, "
                "min_count, placement_group_id) "
                "SELECT u.id, '" TENANT "', $2, u.n - 1, 'ami-00000000000000001', t.name, "
                "t.vcpus, t.memory_mib, t.disk_gib, t.ephemeral_gib, $4, $5::int, $6 "
                "FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n), instance_types t "
                "WHERE t.name = $3 RETURNING 1) "
                "SELECT count(*), pg_notify('nubo_sched', '') FROM ins",
                6, p));
    nb_buf_free(&arr);
}

static const char *const op_sql[] = {
    /* terminate: an unplaced instance is done at once, a placed one needs its agent */
    "UPDATE instances SET state = CASE WHEN host_id IS NULL THEN 'terminated' "
    "ELSE 'shutting-down' END, pending_op = CASE WHEN host_id IS NULL THEN NULL "
    "ELSE 'terminate' END, terminated_at = CASE WHEN host_id IS NULL THEN now() END, "
    "op_seq = op_seq + 1, updated_at = now() "
    "WHERE id = $1 AND state NOT IN ('terminated', 'shutting-down')",
    "UPDATE instances SET state = 'stopping', pending_op = 'stop', op_seq = op_seq + 1 "
    "WHERE id = $1 AND state = 'running' AND pending_op IS NULL",
    "UPDATE instances SET state = 'pending', pending_op = 'start', op_seq = op_seq + 1 "
    "WHERE id = $1 AND state = 'stopped' AND pending_op IS NULL",
    "UPDATE instances SET pending_op = 'reboot', op_seq = op_seq + 1 "
    "WHERE id = $1 AND state = 'running' AND pending_op IS NULL",
};

static void wait_quiet(struct fixture *f)
{
    for (int i = 0; i < QUIET_TIMEOUT * 10; i++) {
        if (sql_int(f->pool, "SELECT count(*) FROM instances WHERE pending_op IS NOT NULL", 0,
                    NULL) == 0) {
            return;
        }
        usleep(100 * 1000);
    }
    PGresult *res = sql(f->pool,
                        "SELECT id, state, pending_op, host_id, op_lease_until FROM instances "
                        "WHERE pending_op IS NOT NULL LIMIT 5",
                        0, NULL);
    for (int r = 0; r < PQntuples(res); r++) {
        fprintf(stderr, "stuck: %s %s %s %s %s\n", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), PQgetvalue(res, r, 4));
    }
    PQclear(res);
    fail_msg("the schedulers did not settle within %d s", QUIET_TIMEOUT);
}

/* The invariants that must hold whatever happened. */
static void check_invariants(struct fixture *f)
{
    /* No host over its allocation ratio. */
    assert_int_equal(sql_int(f->pool,
                             "SELECT count(*) FROM hosts WHERE "
                             "(vcpus - reserved_vcpus) * cpu_ratio < used_vcpus "
                             "OR (memory_mib - reserved_memory_mib) * memory_ratio < "
                             "used_memory_mib OR (disk_gib - reserved_disk_gib) * disk_ratio < "
                             "used_disk_gib OR used_vcpus < 0 OR used_memory_mib < 0",
                             0, NULL),
                     0);
    /* used_* is the sum of the claims, everywhere. */
    struct nb_error err = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(f->pool, 10000, &err);
    assert_ok(conn, err);
    int drift = sched_store_audit(conn, false, stderr, &err);
    nb_pg_release(conn);
    assert_int_equal(drift, 0);
    /* Every instance: running on one host, stopped, in error with a reason, or terminated and
     * holding nothing; and no operation left. */
    assert_int_equal(sql_int(f->pool,
                             "SELECT count(*) FROM instances WHERE pending_op IS NOT NULL OR NOT ("
                             "(state = 'running' AND host_id IS NOT NULL) OR state = 'stopped' "
                             "OR (state = 'error' AND host_id IS NULL AND state_reason_code IS "
                             "NOT NULL AND state_reason_message <> '') "
                             "OR (state = 'terminated' AND host_id IS NULL))",
                             0, NULL),
                     0);
    /* A spread group never shares a host. */
    assert_int_equal(sql_int(f->pool,
                             "SELECT count(*) FROM (SELECT placement_group_id, host_id FROM "
                             "instances WHERE placement_group_id IS NOT NULL AND host_id IS NOT "
                             "NULL AND state NOT IN ('terminated', 'error') GROUP BY 1, 2 "
                             "HAVING count(*) > 1) s",
                             0, NULL),
                     0);
    /* Every running instance reached 'running' through the trigger-kept history. */
    assert_int_equal(sql_int(f->pool,
                             "SELECT count(*) FROM instances i WHERE state = 'running' AND NOT "
                             "EXISTS (SELECT 1 FROM instance_events e WHERE e.instance_id = i.id "
                             "AND e.to_state = 'running')",
                             0, NULL),
                     0);
}

static void test_property_random_requests(void **state)
{
    struct fixture *f = *state;
    add_hosts(f, N_HOSTS, 1);
    for (int g = 0; g < N_GROUPS; g++) {
        char q[256];
        snprintf(q, sizeof q,
                 "INSERT INTO placement_groups (id, tenant_id, name, strategy) "
                 "VALUES ('pg-%017d', '" TENANT "', 'spread%d', 'spread')",
                 g, g);
        sql_do(f->pool, q);
    }
    struct nb_pg_pool *pools[SCHEDULERS];
    struct sched_ctx *ctx[SCHEDULERS];
    for (int s = 0; s < SCHEDULERS; s++) {
        ctx[s] = start_scheduler(f, &pools[s], 0.1, NULL);
    }
    static char ids[N_OPS * 3][NB_ID_MAX];
    int n_ids = 0, applied[5] = {0};
    srand(12345);
    for (int op = 0; op < N_OPS; op++) {
        if (op == N_OPS / 2) {
            /* Hosts fail in the middle: they get nothing new, their instances are flagged. */
            char q[256];
            snprintf(q, sizeof q,
                     "UPDATE hosts SET state = 'down', state_reason = 'test' WHERE id IN "
                     "(SELECT id FROM hosts ORDER BY id LIMIT %d OFFSET 100)",
                     N_DOWN);
            sql_do(f->pool, q);
        }
        int r = rand() % 100;
        if (r < 50 || n_ids == 0) {
            int count = 1 + rand() % 3;
            char group[32];
            bool grouped = rand() % 10 == 0;
            snprintf(group, sizeof group, "pg-%017d", rand() % N_GROUPS);
            launch(f, types[rand() % 9], zones[rand() % 3], count, 1 + rand() % count,
                   grouped ? group : NULL, ids, &n_ids);
            applied[4]++;
            continue;
        }
        int kind = r < 65 ? 0 : r < 80 ? 1 : r < 92 ? 2 : 3;
        const char *p[] = {ids[rand() % n_ids]};
        PGresult *res = sql(f->pool, op_sql[kind], 1, p);
        applied[kind] += atoi(PQcmdTuples(res));
        PQclear(res);
        if (op % 50 == 0) {
            sql_do(f->pool, "NOTIFY nubo_sched");
        }
    }
    fprintf(stderr, "applied: %d launches, %d terminates, %d stops, %d starts, %d reboots\n",
            applied[4], applied[0], applied[1], applied[2], applied[3]);
    /* The monitor flags the instances of the down hosts. */
    for (int i = 0; i < 50; i++) {
        if (sql_int(f->pool,
                    "SELECT count(*) FROM instances i JOIN hosts h ON h.id = i.host_id "
                    "WHERE h.state = 'down' AND NOT i.host_down "
                    "AND i.state NOT IN ('terminated', 'error')",
                    0, NULL) == 0) {
            break;
        }
        usleep(100 * 1000);
    }
    assert_true(sql_int(f->pool, "SELECT count(*) FROM instances WHERE host_down", 0, NULL) > 0);
    /* The operator evacuates them; their instances are placed elsewhere. */
    long long moved = sql_int(f->pool,
                              "SELECT COALESCE(sum(cardinality(host_evacuate(id))), 0) FROM hosts "
                              "WHERE state = 'down'",
                              0, NULL);
    fprintf(stderr, "evacuated %lld instance(s)\n", moved);
    wait_quiet(f);
    for (int s = 0; s < SCHEDULERS; s++) {
        sched_stop(ctx[s]);
        fprintf(stderr,
                "scheduler %d: placed %ld, unplaceable %ld, conflicts %ld, batches %ld, ops %ld, "
                "spawn failures %ld\n",
                s, atomic_load(&ctx[s]->stats.placed), atomic_load(&ctx[s]->stats.unplaceable),
                atomic_load(&ctx[s]->stats.conflicts), atomic_load(&ctx[s]->stats.batches),
                atomic_load(&ctx[s]->stats.ops_done), atomic_load(&ctx[s]->stats.spawn_failed));
        assert_true(atomic_load(&ctx[s]->stats.placed) > 0); /* both did work */
    }
    check_invariants(f);
    /* The run exercised what it claims to: capacity errors, spawn failures, evacuation. */
    assert_true(sql_int(f->pool,
                        "SELECT count(*) FROM instances WHERE state_reason_code = "
                        "'Server.InsufficientInstanceCapacity' AND state_reason_message "
                        "LIKE 'no valid host for %capacity: %'",
                        0, NULL) > 0);
    assert_true(sql_int(f->pool, "SELECT count(*) FROM instances WHERE attempts > 0", 0, NULL) > 0);
    assert_true(moved > 0);
    assert_true(
        sql_int(f->pool, "SELECT count(*) FROM instances WHERE state = 'running'", 0, NULL) > 500);
    for (int s = 0; s < SCHEDULERS; s++) {
        sched_free(ctx[s]);
        nb_pg_pool_free(pools[s]);
    }
}

/* --- audit ----------------------------------------------------------------------------------- */

static int run_audit_binary(struct fixture *f, const char *flags)
{
    const char *bin = "build/debug/bin/nubo-scheduler";
    if (access(bin, X_OK) != 0) {
        return -1;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --audit %s --set 'db.conninfo=%s' >/dev/null 2>&1", bin, flags,
             f->conninfo);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_audit_finds_and_repairs_drift(void **state)
{
    struct fixture *f = *state;
    add_hosts(f, 10, 2);
    struct nb_pg_pool *pool;
    struct sched_ctx *ctx = start_scheduler(f, &pool, 0, NULL);
    char ids[64][NB_ID_MAX];
    int n = 0;
    for (int i = 0; i < 20; i++) {
        launch(f, "t3.small", zones[i % 3], 1, 1, NULL, ids, &n);
    }
    wait_quiet(f);
    sched_free(ctx);
    nb_pg_pool_free(pool);
    check_invariants(f);
    int bin_clean = run_audit_binary(f, "");
    if (bin_clean >= 0) {
        assert_int_equal(bin_clean, 0);
    }
    /* Drift: a host's usage off, and a terminated instance still holding a host. */
    sql_do(f->pool, "UPDATE hosts SET used_vcpus = used_vcpus + 3, instance_count = 99 "
                    "WHERE id = (SELECT min(id) FROM hosts)");
    sql_do(f->pool, "UPDATE instances SET state = 'terminated' "
                    "WHERE id = (SELECT min(id) FROM instances WHERE state = 'running')");
    struct nb_error err = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(f->pool, 10000, &err);
    assert_ok(conn, err);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int found = sched_store_audit(conn, false, out, &err);
    fclose(out);
    /* the first host, the terminated instance's host, and the instance itself */
    assert_in_range(found, 2, 3);
    assert_non_null(strstr(text, "claims"));
    assert_non_null(strstr(text, "is terminated but still holds host"));
    free(text);
    nb_pg_release(conn);
    int bin_drift = run_audit_binary(f, "");
    if (bin_drift >= 0) {
        assert_int_equal(bin_drift, 1); /* found, nothing changed */
        assert_int_equal(run_audit_binary(f, "--repair"), 1);
        assert_int_equal(run_audit_binary(f, ""), 0);
    } else {
        conn = nb_pg_acquire(f->pool, 10000, &err);
        assert_int_equal(sched_store_audit(conn, true, NULL, &err), found);
        nb_pg_release(conn);
    }
    check_invariants(f);
}

/* --- real agents over HTTP ------------------------------------------------------------------ */

struct fake_agent {
    bool fail;    /* answer 500 to spawns */
    int delay_ms; /* take this long to answer a spawn */
    atomic_int spawns;
    char auth[256];  /* the last Authorization header */
    char body[4096]; /* the last spawn body */
    atomic_int calls;
    char start_body[256]; /* the last start body */
    bool fail_start;      /* answer 500 to starts */
};

static void agent_handler(struct nb_http_req *req, void *arg)
{
    struct fake_agent *a = arg;
    atomic_fetch_add(&a->calls, 1);
    const char *auth = nb_http_req_header(req, "Authorization");
    snprintf(a->auth, sizeof a->auth, "%s", auth ? auth : "");
    size_t len;
    const char *body = nb_http_req_body(req, &len);
    if (!strcmp(nb_http_req_method(req), "PUT")) {
        atomic_fetch_add(&a->spawns, 1);
        if (a->delay_ms) {
            usleep((useconds_t)a->delay_ms * 1000);
        }
        snprintf(a->body, sizeof a->body, "%s", body);
        if (a->fail) {
            static const char e[] = "{\"error\":{\"code\":\"ImageFetchFailed\","
                                    "\"message\":\"could not fetch the image\"}}";
            nb_http_reply(req, 500, "application/json", e, sizeof e - 1);
            return;
        }
    }
    const char *path = nb_http_req_path(req);
    size_t path_len = strlen(path);
    if (path_len > 6 && !strcmp(path + path_len - 6, "/start")) {
        snprintf(a->start_body, sizeof a->start_body, "%s", body);
        if (a->fail_start) {
            static const char e[] = "{\"error\":{\"code\":\"INTERNAL\","
                                    "\"message\":\"could not reset the disks\"}}";
            nb_http_reply(req, 500, "application/json", e, sizeof e - 1);
            return;
        }
    }
    const char *state = !strcmp(nb_http_req_method(req), "DELETE") ? "terminated" : "running";
    char reply[64];
    snprintf(reply, sizeof reply, "{\"state\":\"%s\"}", state);
    nb_http_reply(req, 200, "application/json", reply, strlen(reply));
}

static struct nb_http_server *start_agent(struct fake_agent *a, int *port)
{
    struct nb_error err = {0};
    struct nb_http_config cfg = {.port = 0};
    struct nb_http_server *srv = nb_http_server_new(&cfg, &err);
    assert_ok(srv, err);
    assert_int_equal(nb_http_route(srv, NULL, "/v1/instances/*", agent_handler, a), 0);
    assert_ok(nb_http_server_start(srv, &err) == 0, err);
    *port = nb_http_server_port(srv);
    return srv;
}

static void add_real_host(struct fixture *f, const uint8_t *key, const char *id, int port)
{
    char token[128], url[64];
    snprintf(token, sizeof token, "%s:s3cr3t-%d", id, port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    struct nb_error err = {0};
    char *sealed = nb_seal(key, token, strlen(token), id, &err);
    assert_ok(sealed, err);
    const char *p[] = {id, sealed, url};
    PQclear(sql(f->pool,
                "INSERT INTO hosts (id, name, zone, vcpus, memory_mib, disk_gib, agent_url, "
                "node_secret, last_heartbeat) VALUES ($1, $1, 'nubo-1a', 16, 65536, 500, $3, $2, "
                "now() + interval '1 hour')",
                3, p));
    free(sealed);
}

static void test_agents_spawn_and_fail_over(void **state)
{
    struct fixture *f = *state;
    uint8_t key[NB_MASTER_KEY_LEN];
    nb_random_bytes(key, sizeof key);
    struct fake_agent good = {0}, bad = {.fail = true};
    int good_port, bad_port;
    struct nb_http_server *gs = start_agent(&good, &good_port);
    struct nb_http_server *bs = start_agent(&bad, &bad_port);
    add_real_host(f, key, "h-0000000000000000a", good_port);
    add_real_host(f, key, "h-0000000000000000b", bad_port);
    sql_do(f->pool, "INSERT INTO key_pairs (id, tenant_id, name, key_type, fingerprint, "
                    "public_key) VALUES ('key-00000000000000001', '" TENANT "', 'k', "
                    "'ed25519', 'fp', 'ssh-ed25519 AAAA test')");
    /* The bad host is emptier: spread tries it first (top_k 1), the spawn fails there and the
     * instance moves to the good one. The good one holds a running instance (and its claim). */
    sql_do(f->pool, "INSERT INTO instances (id, tenant_id, reservation_id, image_id, "
                    "instance_type, vcpus, memory_mib, disk_gib, zone, state, pending_op, host_id) "
                    "VALUES ('i-0000000000000000f', '" TENANT "', 'r-0000000000000000f', "
                    "'ami-00000000000000001', 'm5.xlarge', 4, 16384, 64, 'nubo-1a', 'running', "
                    "NULL, 'h-0000000000000000a')");
    sql_do(f->pool, "UPDATE hosts SET used_vcpus = 4, used_memory_mib = 16384, used_disk_gib = 64, "
                    "instance_count = 1 WHERE id = 'h-0000000000000000a'");
    struct nb_pg_pool *pool;
    struct sched_config cfg;
    sched_config_default(&cfg);
    cfg.workers = 1;
    cfg.drivers = 2;
    cfg.poll_ms = 100;
    cfg.place.top_k = 1;
    cfg.agent_timeout_s = 5;
    cfg.lease_s = 10;
    struct nb_error err = {0};
    pool = nb_pg_pool_new(f->conninfo, 6, &err);
    assert_ok(pool, err);
    char ids[1][NB_ID_MAX];
    int n = 0;
    launch(f, "t3.small", "nubo-1a", 1, 1, NULL, ids, &n);
    const char *p[] = {ids[0]};
    sql_do(f->pool, "UPDATE instances SET key_name = 'k', user_data = 'aGVsbG8='");
    struct sched_ctx *ctx = sched_new(&cfg, pool, f->conninfo, key, &err);
    assert_ok(ctx, err);
    assert_ok(sched_start(ctx, &err) == 0, err);
    wait_quiet(f);
    PGresult *res = sql(f->pool,
                        "SELECT state, host_id, attempts, tried_hosts::text FROM instances "
                        "WHERE id = $1",
                        1, p);
    assert_string_equal(PQgetvalue(res, 0, 0), "running");
    assert_string_equal(PQgetvalue(res, 0, 1), "h-0000000000000000a");
    assert_string_equal(PQgetvalue(res, 0, 2), "1");
    assert_string_equal(PQgetvalue(res, 0, 3), "{h-0000000000000000b}");
    PQclear(res);
    /* The contract: bearer token, the spec. */
    char want[128];
    snprintf(want, sizeof want, "Bearer h-0000000000000000a:s3cr3t-%d", good_port);
    assert_string_equal(good.auth, want);
    assert_non_null(strstr(good.body, "\"instance_type\" : \"t3.small\""));
    assert_non_null(strstr(good.body, "\"ssh_keys\" : [\"ssh-ed25519 AAAA test\"]"));
    assert_non_null(strstr(good.body, "\"user_data\" : \"aGVsbG8=\""));
    assert_non_null(strstr(good.body, "file:///var/lib/nubo/images/debian.raw"));
    /* Not launched into a subnet: no network interface for the agent to plug. */
    assert_non_null(strstr(good.body, "\"interfaces\" : []"));
    /* Terminate through the agent releases the claim. */
    PQclear(sql(f->pool, op_sql[0], 1, p));
    sql_do(f->pool, "NOTIFY nubo_sched");
    wait_quiet(f);
    sched_free(ctx);
    nb_pg_pool_free(pool);
    check_invariants(f);
    assert_int_equal(sql_int(f->pool,
                             "SELECT used_vcpus FROM hosts WHERE id = "
                             "'h-0000000000000000a'",
                             0, NULL),
                     4); /* the filler's claim, nothing more */
    nb_http_server_free(gs);
    nb_http_server_free(bs);
}

/* A spawn that takes longer than the lease: the driver renews its lease while the agent works,
 * so no other driver takes the operation over and the agent is called once. */
static void test_slow_spawn_keeps_its_lease(void **state)
{
    struct fixture *f = *state;
    uint8_t key[NB_MASTER_KEY_LEN];
    nb_random_bytes(key, sizeof key);
    struct fake_agent slow = {.delay_ms = 5000};
    int port;
    struct nb_http_server *srv = start_agent(&slow, &port);
    add_real_host(f, key, "h-0000000000000000c", port);
    struct sched_config cfg;
    sched_config_default(&cfg);
    cfg.workers = 1;
    cfg.drivers = 4;
    cfg.poll_ms = 100;
    cfg.agent_timeout_s = 20;
    cfg.lease_s = 3;
    struct nb_error err = {0};
    struct nb_pg_pool *pool = nb_pg_pool_new(f->conninfo, 8, &err);
    assert_ok(pool, err);
    char ids[1][NB_ID_MAX];
    int n = 0;
    launch(f, "t3.small", "nubo-1a", 1, 1, NULL, ids, &n);
    struct sched_ctx *ctx = sched_new(&cfg, pool, f->conninfo, key, &err);
    assert_ok(ctx, err);
    assert_ok(sched_start(ctx, &err) == 0, err);
    usleep(4200 * 1000); /* past the first lease, the call still running */
    const char *p[] = {ids[0]};
    assert_int_equal(
        sql_int(f->pool, "SELECT (op_lease_until > now())::int FROM instances WHERE id = $1", 1, p),
        1);
    wait_quiet(f);
    assert_int_equal(atomic_load(&slow.spawns), 1);
    PGresult *res = sql(f->pool, "SELECT state FROM instances WHERE id = $1", 1, p);
    assert_string_equal(PQgetvalue(res, 0, 0), "running");
    PQclear(res);
    sched_free(ctx);
    nb_pg_pool_free(pool);
    check_invariants(f);
    nb_http_server_free(srv);
}

/* Runs operation 'op' (an index of op_sql) on instance 'id' and waits for the scheduler. */
static void op_and_wait(struct fixture *f, int op, const char *id)
{
    const char *p[] = {id};
    PQclear(sql(f->pool, op_sql[op], 1, p));
    sql_do(f->pool, "NOTIFY nubo_sched");
    wait_quiet(f);
}

/* A start of a stopped instance with reset_root set (the VDI sign-out of a non-persistent
 * desktop) carries {"reset_root": true, "reset_id": <op_seq>} to the agent, and its success
 * clears the flag; a failed one keeps it for the next start; a plain start carries {}. */
static void test_start_carries_reset_root(void **state)
{
    struct fixture *f = *state;
    uint8_t key[NB_MASTER_KEY_LEN];
    nb_random_bytes(key, sizeof key);
    struct fake_agent agent = {0};
    int port;
    struct nb_http_server *srv = start_agent(&agent, &port);
    add_real_host(f, key, "h-0000000000000000d", port);
    struct sched_config cfg;
    sched_config_default(&cfg);
    cfg.workers = 1;
    cfg.drivers = 1;
    cfg.poll_ms = 100;
    cfg.agent_timeout_s = 5;
    cfg.lease_s = 10;
    struct nb_error err = {0};
    struct nb_pg_pool *pool = nb_pg_pool_new(f->conninfo, 4, &err);
    assert_ok(pool, err);
    char ids[1][NB_ID_MAX];
    int n = 0;
    launch(f, "t3.small", "nubo-1a", 1, 1, NULL, ids, &n);
    struct sched_ctx *ctx = sched_new(&cfg, pool, f->conninfo, key, &err);
    assert_ok(ctx, err);
    assert_ok(sched_start(ctx, &err) == 0, err);
    wait_quiet(f);
    const char *p[] = {ids[0]};
    op_and_wait(f, 1, ids[0]); /* stop */

    /* What the gateway does on the sign-out of a non-persistent desktop. */
    static const char reset_start[] =
        "UPDATE instances SET state = 'pending', pending_op = 'start', op_seq = op_seq + 1, "
        "reset_root = true WHERE id = $1 AND state = 'stopped' AND pending_op IS NULL "
        "RETURNING op_seq";
    PGresult *res = sql(f->pool, reset_start, 1, p);
    assert_int_equal(PQntuples(res), 1);
    char want[128];
    snprintf(want, sizeof want, "{\"reset_root\":true,\"reset_id\":\"%s\"}", PQgetvalue(res, 0, 0));
    PQclear(res);
    sql_do(f->pool, "NOTIFY nubo_sched");
    wait_quiet(f);
    assert_string_equal(agent.start_body, want);
    res = sql(f->pool, "SELECT state, reset_root::text FROM instances WHERE id = $1", 1, p);
    assert_string_equal(PQgetvalue(res, 0, 0), "running");
    assert_string_equal(PQgetvalue(res, 0, 1), "false");
    PQclear(res);

    /* The agent refuses: the instance is stopped again, still to be reset. */
    op_and_wait(f, 1, ids[0]);
    agent.fail_start = true;
    PQclear(sql(f->pool, reset_start, 1, p));
    sql_do(f->pool, "NOTIFY nubo_sched");
    wait_quiet(f);
    res = sql(f->pool, "SELECT state, reset_root::text FROM instances WHERE id = $1", 1, p);
    assert_string_equal(PQgetvalue(res, 0, 0), "stopped");
    assert_string_equal(PQgetvalue(res, 0, 1), "true");
    PQclear(res);

    /* A plain start (no reset asked) after the flag is cleared by hand carries no reset. */
    agent.fail_start = false;
    sql_do(f->pool, "UPDATE instances SET reset_root = false");
    op_and_wait(f, 2, ids[0]);
    assert_string_equal(agent.start_body, "{}");
    assert_int_equal(
        sql_int(f->pool, "SELECT count(*) FROM instances WHERE state = 'running'", 0, NULL), 1);
    sched_free(ctx);
    nb_pg_pool_free(pool);
    check_invariants(f);
    nb_http_server_free(srv);
}

static int group_setup(void **state)
{
    nb_log_init("test_scheduler", NB_LOG_WARN, NULL);
    nb_httpc_global_init();
    struct nb_test_pg *pg = nb_test_pg_start();
    if (!pg) {
        return -1;
    }
    *state = pg;
    return 0;
}

static int group_teardown(void **state)
{
    nb_test_pg_destroy(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_property_random_requests, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_audit_finds_and_repairs_drift, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_slow_spawn_keeps_its_lease, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_agents_spawn_and_fail_over, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_start_carries_reset_root, fixture_setup,
                                        fixture_teardown),
    };
    const char *filter = getenv("CMOCKA_TEST_FILTER");
    if (filter && *filter) {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("scheduler", tests, group_setup, group_teardown);
}
