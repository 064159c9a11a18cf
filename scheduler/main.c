/* nubo-scheduler: places pending instances on compute hosts, claims their capacity in
 * PostgreSQL, and drives the hosts' agents. Parses arguments, loads configuration, runs the
 * scheduler until SIGINT/SIGTERM, or audits the claims (--audit [--repair]) and exits. */
#include "scheduler.h"
#include "sched_store.h"

#include "nubo/config.h"
#include "nubo/crypto.h"
#include "nubo/daemon.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/httpc.h"
#include "nubo/log.h"
#include "nubo/migrate.h"
#include "nubo/pg.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit codes of --audit. */
enum { AUDIT_CLEAN = 0, AUDIT_DRIFT = 1, AUDIT_ERROR = 2 };

static void usage(FILE *f)
{
    fputs(
        "Usage: nubo-scheduler [OPTION]...\n"
        "Place pending instances on compute hosts and drive the hosts' agents.\n"
        "\n"
        "  -c, --config FILE        read settings from FILE (\"key = value\" lines)\n"
        "  -s, --set KEY=VALUE      set one setting (beats the environment and the file)\n"
        "      --audit              compare every host's used capacity with the sum of its\n"
        "                           instances' claims, print the drift, exit 0 when there is\n"
        "                           none, 1 when there is, 2 on error\n"
        "      --repair             with --audit: also fix the drift found\n"
        "  -h, --help               show this help and exit\n"
        "\n"
        "Settings (environment NUBO_<KEY>, '.' as '_'; e.g. NUBO_DB_CONNINFO):\n"
        "  db.conninfo                    libpq connection string (required)\n"
        "  db.migrate                     apply migrations at start (false: the gateway does)\n"
        "  db.migrations                  migrations directory (deploy/migrations)\n"
        "  master_key                     key file that unseals node secrets (var/master.key)\n"
        "  scheduler.workers              placement threads (2)\n"
        "  scheduler.drivers              agent-call threads (16)\n"
        "  scheduler.batch                reservations per placement transaction (32)\n"
        "  scheduler.poll_ms              look for work at least this often (1000)\n"
        "  scheduler.refresh_ms           re-read all hosts at least this often (1000)\n"
        "  scheduler.heartbeat_timeout_s  a host silent for longer is down (30)\n"
        "  scheduler.max_attempts         hosts tried to spawn an instance (3)\n"
        "  scheduler.agent_timeout_s      one agent call, spawn included (300)\n"
        "  scheduler.lease_s              a driver's hold on an operation, renewed every third of\n"
        "                                 it while the agent works; a crashed scheduler's\n"
        "                                 operations are taken over after it (30)\n"
        "  scheduler.weigher              spread or pack (spread)\n"
        "  scheduler.weight.cpu, .memory, .disk   free-capacity multipliers (1, 1, 0.5)\n"
        "  scheduler.weight.load          multiplier of (1 - cpu_load); 0 is off (0)\n"
        "  scheduler.top_k                choose at random among the best k hosts (3)\n"
        "  scheduler.sim_fail_rate        fraction of simulated spawns that fail (0)\n"
        "  log.level                      debug, info, warn or error (info)\n"
        "  log.file                       append logs to this file instead of stderr\n"
        "\n"
        "See docs/scheduler.md.\n",
        f);
}

static int audit(struct nb_pg_pool *pool, bool repair, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(pool, 10000, err);
    if (!conn) {
        return AUDIT_ERROR;
    }
    int drift = sched_store_audit(conn, repair, stdout, err);
    nb_pg_release(conn);
    if (drift < 0) {
        return AUDIT_ERROR;
    }
    printf("%d drift(s) found%s\n", drift, drift && repair ? " and repaired" : "");
    return drift ? AUDIT_DRIFT : AUDIT_CLEAN;
}

/* GET /metrics: the scheduler's counters in Prometheus text format; GET /healthz. */
static void handle_metrics(struct nb_http_req *req, void *arg)
{
    const struct sched_ctx *ctx = arg;
    const struct sched_stats *st = &ctx->stats;
    char text[2048];
    snprintf(text, sizeof text,
             "# HELP nubo_scheduler_placed_total Instances given a host (claims committed).\n"
             "# TYPE nubo_scheduler_placed_total counter\n"
             "nubo_scheduler_placed_total %ld\n"
             "# HELP nubo_scheduler_unplaceable_total Instances put in error: no valid host.\n"
             "# TYPE nubo_scheduler_unplaceable_total counter\n"
             "nubo_scheduler_unplaceable_total %ld\n"
             "# HELP nubo_scheduler_claim_conflicts_total Claims refused by PostgreSQL "
             "(another scheduler was first).\n"
             "# TYPE nubo_scheduler_claim_conflicts_total counter\n"
             "nubo_scheduler_claim_conflicts_total %ld\n"
             "# HELP nubo_scheduler_batches_total Placement transactions committed.\n"
             "# TYPE nubo_scheduler_batches_total counter\n"
             "nubo_scheduler_batches_total %ld\n"
             "# HELP nubo_scheduler_operations_total Agent operations completed.\n"
             "# TYPE nubo_scheduler_operations_total counter\n"
             "nubo_scheduler_operations_total %ld\n"
             "# HELP nubo_scheduler_spawn_failures_total Spawns that failed on a host.\n"
             "# TYPE nubo_scheduler_spawn_failures_total counter\n"
             "nubo_scheduler_spawn_failures_total %ld\n"
             "# HELP nubo_scheduler_hosts Hosts in the placement snapshot.\n"
             "# TYPE nubo_scheduler_hosts gauge\n"
             "nubo_scheduler_hosts %zu\n",
             atomic_load(&st->placed), atomic_load(&st->unplaceable), atomic_load(&st->conflicts),
             atomic_load(&st->batches), atomic_load(&st->ops_done), atomic_load(&st->spawn_failed),
             place_snapshot_size(ctx->snap));
    nb_http_reply(req, 200, "text/plain; version=0.0.4", text, strlen(text));
}

static void handle_healthz(struct nb_http_req *req, void *arg)
{
    nb_http_reply(req, 200, "application/json", "{\"status\": \"ok\"}", 16);
}

/* Serves /metrics and /healthz when http.port is set (several schedulers may share a machine,
 * so there is no default port). */
static int start_http(const struct nb_config *cfg, struct sched_ctx *ctx,
                      struct nb_http_server **out, struct nb_error *err)
{
    *out = NULL;
    long long port;
    if (nb_config_get_int(cfg, "http.port", 0, 0, 65535, &port, err) < 0) {
        return -1;
    }
    if (!port) {
        return 0;
    }
    struct nb_http_config hc = {.address = nb_config_get(cfg, "http.address", "127.0.0.1"),
                                .port = (int)port,
                                .threads = 1};
    struct nb_http_server *srv = nb_http_server_new(&hc, err);
    if (!srv || nb_http_route(srv, "GET", "/metrics", handle_metrics, ctx) < 0 ||
        nb_http_route(srv, "GET", "/healthz", handle_healthz, ctx) < 0 ||
        nb_http_server_start(srv, err) < 0) {
        if (err && !err->code) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not set up the metrics server");
        }
        nb_http_server_free(srv);
        return -1;
    }
    nb_info("metrics at http://%s:%lld/metrics", hc.address, port);
    *out = srv;
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_AUDIT = 256, OPT_REPAIR };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
        {"audit", no_argument, NULL, OPT_AUDIT},  {"repair", no_argument, NULL, OPT_REPAIR},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    nb_daemon_block_signals();
    struct nb_config *cfg = nb_config_new();
    struct nb_error err = {0};
    bool do_audit = false, repair = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (nb_config_load_file(cfg, optarg, &err) < 0) {
                goto fail;
            }
            break;
        case 's':
            if (nb_config_set_arg(cfg, optarg, &err) < 0) {
                goto fail;
            }
            break;
        case OPT_AUDIT:
            do_audit = true;
            break;
        case OPT_REPAIR:
            repair = true;
            break;
        case 'h':
            usage(stdout);
            nb_config_free(cfg);
            return 0;
        default:
            usage(stderr);
            nb_config_free(cfg);
            return 2;
        }
    }
    if (optind < argc || (repair && !do_audit)) {
        fprintf(stderr, "nubo-scheduler: %s\n",
                optind < argc ? "unexpected argument" : "--repair needs --audit");
        usage(stderr);
        nb_config_free(cfg);
        return 2;
    }

    if (nb_daemon_log_init(cfg, "nubo-scheduler", &err) < 0) {
        goto fail;
    }

    struct sched_config sc;
    const char *conninfo = nb_config_get(cfg, "db.conninfo", NULL);
    if (sched_config_load(cfg, &sc, &err) < 0) {
        goto fail;
    }
    if (!conninfo) {
        nb_error_set(&err, NB_ERR_MISSING, "db.conninfo is not set");
        goto fail;
    }
    nb_httpc_global_init();
    /* Each worker and driver holds one connection at a time; the housekeeper one more. */
    struct nb_pg_pool *pool = nb_pg_pool_new(conninfo, sc.workers + sc.drivers + 2, &err);
    if (!pool) {
        goto fail;
    }
    bool migrate;
    if (nb_config_get_bool(cfg, "db.migrate", false, &migrate, &err) < 0) {
        nb_pg_pool_free(pool);
        goto fail;
    }
    if (migrate) {
        struct nb_pg_conn *conn = nb_pg_acquire(pool, 10000, &err);
        int n =
            conn ? nb_migrate(conn, nb_config_get(cfg, "db.migrations", "deploy/migrations"), &err)
                 : -1;
        nb_pg_release(conn);
        if (n < 0) {
            nb_pg_pool_free(pool);
            goto fail;
        }
    }
    if (do_audit) {
        int rc = audit(pool, repair, &err);
        if (rc == AUDIT_ERROR) {
            nb_err("audit failed: %s", err.msg);
        }
        nb_pg_pool_free(pool);
        nb_config_free(cfg);
        return rc;
    }

    /* Without the master key only simulated hosts can be driven: warn, do not refuse. */
    uint8_t key[NB_MASTER_KEY_LEN];
    struct nb_error key_err = {0};
    const char *key_path = nb_config_get(cfg, "master_key", "var/master.key");
    bool have_key = nb_master_key_load(key_path, false, key, &key_err) == 0;
    if (!have_key) {
        nb_warn("no master key (%s): agents of real hosts cannot be called", key_err.msg);
    }
    struct sched_ctx *ctx = sched_new(&sc, pool, conninfo, have_key ? key : NULL, &err);
    memset(key, 0, sizeof key);
    if (!ctx || sched_start(ctx, &err) < 0) {
        sched_free(ctx);
        nb_pg_pool_free(pool);
        goto fail;
    }
    struct nb_http_server *http = NULL;
    if (start_http(cfg, ctx, &http, &err) < 0) {
        sched_free(ctx);
        nb_pg_pool_free(pool);
        goto fail;
    }
    nb_info("scheduling with %d worker(s) and %d driver(s), weigher %s, %zu host(s) known",
            sc.workers, sc.drivers, sc.place.weigher == PLACE_PACK ? "pack" : "spread",
            place_snapshot_size(ctx->snap));
    int sig = nb_daemon_wait_signal();
    nb_info("received %s, stopping", strsignal(sig));
    nb_http_server_free(http);
    sched_free(ctx);
    nb_pg_pool_free(pool);
    nb_config_free(cfg);
    return 0;

fail:
    nb_err("%s%s%s", err.msg, err.detail[0] ? "; " : "", err.detail);
    nb_config_free(cfg);
    return do_audit ? AUDIT_ERROR : 1;
}
