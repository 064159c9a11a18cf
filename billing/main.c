/* nubo-billing: meters usage events into hourly usage records, rates them into invoices, closes
 * billing periods and exports invoices. Parses arguments, loads configuration, runs one mode
 * (or the daemon loop: aggregate and check budgets every billing.interval_s) and exits. */
#include "billing.h"

#include "nubo/config.h"
#include "nubo/daemon.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/migrate.h"
#include "nubo/pg.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fputs("Usage: nubo-billing [OPTION]... MODE\n"
          "Meter usage events into hourly usage records and bill them.\n"
          "\n"
          "Modes:\n"
          "      --aggregate          turn the events of every hour that is over (and older than\n"
          "                           billing.grace_s) into usage records, then raise budget\n"
          "                           alerts; resumes where the last run stopped\n"
          "      --until TIME         with --aggregate: stop at this hour (ISO 8601 or any\n"
          "                           PostgreSQL timestamptz input)\n"
          "      --from TIME          with --aggregate: first rewind to this hour and recompute\n"
          "                           (records that differ are corrected and counted)\n"
          "      --invoice PERIOD     write the draft invoices of PERIOD (YYYY-MM, UTC)\n"
          "      --close PERIOD       invoice PERIOD and close it: its invoices become\n"
          "                           immutable, later usage of it goes to the next period as\n"
          "                           adjustment lines\n"
          "      --export PERIOD      print the invoice of --tenant for PERIOD\n"
          "      --tenant ID          the tenant of --export\n"
          "      --format FMT         json (default) or csv\n"
          "      --daemon             aggregate every billing.interval_s until SIGINT/SIGTERM\n"
          "\n"
          "  -c, --config FILE        read settings from FILE (\"key = value\" lines)\n"
          "  -s, --set KEY=VALUE      set one setting (beats the environment and the file)\n"
          "  -h, --help               show this help and exit\n"
          "\n"
          "Settings (environment NUBO_<KEY>, '.' as '_'; e.g. NUBO_DB_CONNINFO):\n"
          "  db.conninfo            libpq connection string (required)\n"
          "  db.migrate             apply migrations at start (false: the gateway does)\n"
          "  db.migrations          migrations directory (deploy/migrations)\n"
          "  billing.interval_s     daemon: seconds between aggregation runs (60)\n"
          "  billing.grace_s        an hour is aggregated this long after its end (300)\n"
          "  billing.batch_hours    hours aggregated per transaction (24)\n"
          "  log.level              debug, info, warn or error (info)\n"
          "  log.file               append logs to this file instead of stderr\n"
          "\n"
          "Exit status: 0 on success, 1 on error, 2 on bad usage. See docs/billing.md.\n",
          f);
}

enum mode { MODE_NONE, MODE_AGGREGATE, MODE_INVOICE, MODE_CLOSE, MODE_EXPORT, MODE_DAEMON };

struct args {
    enum mode mode;
    const char *period, *until, *from, *tenant;
    enum billing_format format;
};

static int aggregate_once(struct nb_pg_conn *conn, const struct billing_agg_opts *o,
                          struct nb_error *err)
{
    struct billing_agg_result r;
    if (billing_aggregate(conn, o, &r, err) < 0) {
        return -1;
    }
    if (r.batches) {
        nb_info("aggregated until %s: %lld batch(es), %lld record(s) written, %lld corrected",
                r.until, r.batches, r.inserted, r.corrected);
    }
    return billing_check_budgets(conn, err) < 0 ? -1 : 0;
}

/* Aggregates every 'interval_s' seconds until a termination signal. */
static int run_daemon(struct nb_pg_pool *pool, const struct billing_agg_opts *o, int interval_s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    nb_info("aggregating every %d s", interval_s);
    for (;;) {
        struct nb_error err = {0};
        struct nb_pg_conn *conn = nb_pg_acquire(pool, 10000, &err);
        if (!conn || aggregate_once(conn, o, &err) < 0) {
            nb_err("aggregation failed: %s%s%s", err.msg, err.detail[0] ? "; " : "", err.detail);
        }
        nb_pg_release(conn);
        struct timespec ts = {.tv_sec = interval_s};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig > 0) {
            nb_info("received %s, stopping", strsignal(sig));
            return 0;
        }
    }
}

static int run(const struct nb_config *cfg, const struct args *a, struct nb_error *err)
{
    long long grace, batch, interval;
    bool migrate;
    const char *conninfo = nb_config_get(cfg, "db.conninfo", NULL);
    if (nb_config_get_int(cfg, "billing.grace_s", 300, 0, 86400, &grace, err) < 0 ||
        nb_config_get_int(cfg, "billing.batch_hours", 24, 1, 24 * 366, &batch, err) < 0 ||
        nb_config_get_int(cfg, "billing.interval_s", 60, 1, 86400, &interval, err) < 0 ||
        nb_config_get_bool(cfg, "db.migrate", false, &migrate, err) < 0) {
        return -1;
    }
    if (!conninfo) {
        nb_error_set(err, NB_ERR_MISSING, "db.conninfo is not set");
        return -1;
    }
    struct nb_pg_pool *pool = nb_pg_pool_new(conninfo, 1, err);
    if (!pool) {
        return -1;
    }
    struct billing_agg_opts o = {
        .until = a->until, .from = a->from, .grace_s = (int)grace, .batch_hours = (int)batch};
    int rc = 0;
    if (a->mode == MODE_DAEMON) {
        if (migrate) {
            struct nb_pg_conn *conn = nb_pg_acquire(pool, 10000, err);
            rc = conn ? nb_migrate(conn, nb_config_get(cfg, "db.migrations", "deploy/migrations"),
                                   err)
                      : -1;
            nb_pg_release(conn);
        }
        rc = rc < 0 ? -1 : run_daemon(pool, &o, (int)interval);
        nb_pg_pool_free(pool);
        return rc;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(pool, 10000, err);
    if (!conn) {
        nb_pg_pool_free(pool);
        return -1;
    }
    if (migrate) {
        rc = nb_migrate(conn, nb_config_get(cfg, "db.migrations", "deploy/migrations"), err);
    }
    if (rc >= 0) {
        switch (a->mode) {
        case MODE_AGGREGATE:
            rc = aggregate_once(conn, &o, err);
            break;
        case MODE_INVOICE:
        case MODE_CLOSE:
            rc = billing_invoice(conn, a->period, a->mode == MODE_CLOSE, NULL, err);
            break;
        case MODE_EXPORT:
            rc = billing_export(conn, a->period, a->tenant, a->format, stdout, err);
            break;
        default:
            rc = -1;
            nb_error_set(err, NB_ERR_INTERNAL, "no mode");
        }
    }
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
    return rc < 0 ? -1 : 0;
}

/* Sets the mode once; a second mode is a usage error. */
static int set_mode(struct args *a, enum mode m, const char *period)
{
    if (a->mode != MODE_NONE) {
        fprintf(stderr, "nubo-billing: only one mode at a time\n");
        return -1;
    }
    a->mode = m;
    a->period = period;
    return 0;
}

int main(int argc, char **argv)
{
    enum {
        OPT_AGGREGATE = 256,
        OPT_UNTIL,
        OPT_FROM,
        OPT_INVOICE,
        OPT_CLOSE,
        OPT_EXPORT,
        OPT_TENANT,
        OPT_FORMAT,
        OPT_DAEMON
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"aggregate", no_argument, NULL, OPT_AGGREGATE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"from", required_argument, NULL, OPT_FROM},
        {"invoice", required_argument, NULL, OPT_INVOICE},
        {"close", required_argument, NULL, OPT_CLOSE},
        {"export", required_argument, NULL, OPT_EXPORT},
        {"tenant", required_argument, NULL, OPT_TENANT},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"daemon", no_argument, NULL, OPT_DAEMON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    nb_daemon_block_signals();
    struct nb_config *cfg = nb_config_new();
    struct nb_error err = {0};
    struct args a = {.mode = MODE_NONE, .format = BILLING_JSON};
    int c, bad = 0;
    while (!bad && (c = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
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
        case OPT_AGGREGATE:
            bad = set_mode(&a, MODE_AGGREGATE, NULL);
            break;
        case OPT_DAEMON:
            bad = set_mode(&a, MODE_DAEMON, NULL);
            break;
        case OPT_INVOICE:
            bad = set_mode(&a, MODE_INVOICE, optarg);
            break;
        case OPT_CLOSE:
            bad = set_mode(&a, MODE_CLOSE, optarg);
            break;
        case OPT_EXPORT:
            bad = set_mode(&a, MODE_EXPORT, optarg);
            break;
        case OPT_UNTIL:
            a.until = optarg;
            break;
        case OPT_FROM:
            a.from = optarg;
            break;
        case OPT_TENANT:
            a.tenant = optarg;
            break;
        case OPT_FORMAT:
            if (!strcmp(optarg, "csv")) {
                a.format = BILLING_CSV;
            } else if (strcmp(optarg, "json")) {
                fprintf(stderr, "nubo-billing: --format is json or csv, not \"%s\"\n", optarg);
                bad = -1;
            }
            break;
        case 'h':
            usage(stdout);
            nb_config_free(cfg);
            return 0;
        default:
            bad = -1;
        }
    }
    const char *why =
        optind < argc                                     ? "unexpected argument"
        : a.mode == MODE_NONE                             ? "no mode given"
        : (a.until || a.from) && a.mode != MODE_AGGREGATE ? "--until and --from go with --aggregate"
        : (a.mode == MODE_EXPORT) != (a.tenant != NULL)   ? "--export needs --tenant (and only it)"
                                                          : NULL;
    if (bad || why) {
        if (why && !bad) {
            fprintf(stderr, "nubo-billing: %s\n", why);
        }
        usage(stderr);
        nb_config_free(cfg);
        return 2;
    }
    if (nb_daemon_log_init(cfg, "nubo-billing", &err) < 0 || run(cfg, &a, &err) < 0) {
        goto fail;
    }
    nb_config_free(cfg);
    return 0;

fail:
    nb_err("%s%s%s", err.msg, err.detail[0] ? "; " : "", err.detail);
    nb_config_free(cfg);
    return 1;
}
