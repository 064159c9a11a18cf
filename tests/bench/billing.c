/* Benchmark of billing: usage events into invoices.
 *
 * Starts a throwaway PostgreSQL cluster with fsync on (NUBO_TEST_PG_DURABLE=1, set here unless
 * already set) and the project's migrations, loads N usage events with COPY (instances cycling
 * through pending, running, stopping and stopped every few minutes over D days, and images whose
 * stored bytes change), then times the real aggregation (billing_aggregate(), batches of 24
 * hours) and invoicing (billing_invoice() of the month) and prints:
 *
 *   bench billing_10m_events_s S s            (aggregation + invoicing, for 10M events)
 *   bench billing_events_per_s N events/s
 *   bench billing_aggregate_s S s, bench billing_invoice_s S s, bench billing_usage_records N
 *
 * The figure is named after 10M events; with --events the name says the count given.
 *
 * Usage: billing [--events N] [--instances N] [--images N] [--days N] */
#include "billing.h"
#include "pgtmp.h"

#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/migrate.h"
#include "nubo/pg.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TENANTS 100
#define START   1767571200LL /* 2026-01-05 00:00:00 UTC */

static void die(const char *what, const struct nb_error *err)
{
    fprintf(stderr, "bench billing: %s: %s %s\n", what, err ? err->msg : "",
            err ? err->detail : "");
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Streams 'text' rows into COPY, flushing every 1 MiB. */
struct copy {
    PGconn *pg;
    char buf[1 << 20];
    size_t len;
};

static void copy_flush(struct copy *c)
{
    if (c->len && PQputCopyData(c->pg, c->buf, (int)c->len) != 1) {
        fprintf(stderr, "bench billing: COPY: %s", PQerrorMessage(c->pg));
        exit(1);
    }
    c->len = 0;
}

static void copy_row(struct copy *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void copy_row(struct copy *c, const char *fmt, ...)
{
    if (c->len > sizeof c->buf - 512) {
        copy_flush(c);
    }
    va_list ap;
    va_start(ap, fmt);
    c->len += (size_t)vsnprintf(c->buf + c->len, sizeof c->buf - c->len, fmt, ap);
    va_end(ap);
}

static void copy_begin(struct copy *c, const char *sql)
{
    PGresult *r = PQexec(c->pg, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        fprintf(stderr, "bench billing: %s: %s", sql, PQerrorMessage(c->pg));
        exit(1);
    }
    PQclear(r);
    c->len = 0;
}

static void copy_end(struct copy *c)
{
    copy_flush(c);
    if (PQputCopyEnd(c->pg, NULL) != 1) {
        die("COPY end", NULL);
    }
    PGresult *r = PQgetResult(c->pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "bench billing: COPY: %s", PQerrorMessage(c->pg));
        exit(1);
    }
    PQclear(r);
    while ((r = PQgetResult(c->pg))) {
        PQclear(r);
    }
}

static void fmt_time(long long t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M:%S+00", &tm);
}

static const char *const TYPES[] = {"t3.micro", "t3.small", "m5.large", "c5.large", "r5.large"};
static const char *const CYCLE[] = {"pending", "running", "stopping", "stopped"};

/* Loads 'n_inst' instance events and 'n_img' image events, roughly in time order, over 'span'
 * seconds from START. */
static void load(PGconn *pg, long long n_inst, long long n_img, int instances, int images,
                 long long span)
{
    static struct copy c;
    c.pg = pg;
    long long per = (n_inst + instances - 1) / instances;
    long long step = span / per;
    char at[40];
    copy_begin(&c, "COPY instance_events (at, instance_id, tenant_id, instance_type, to_state)"
                   " FROM STDIN");
    long long written = 0;
    for (long long k = 0; k < per && written < n_inst; k++) {
        for (int i = 0; i < instances && written < n_inst; i++, written++) {
            /* A deterministic jitter inside the step keeps each instance's events in order. */
            long long t = START + k * step + (long long)((unsigned)i * 2654435761u % step);
            fmt_time(t, at, sizeof at);
            copy_row(&c, "%s\ti-%017x\t%012d\t%s\t%s\n", at, i + 1, 100000000 + i % TENANTS,
                     TYPES[i % 5], CYCLE[k % 4]);
        }
    }
    copy_end(&c);
    if (!n_img) {
        return;
    }
    per = (n_img + images - 1) / images;
    step = span / per;
    copy_begin(&c, "COPY image_storage_events (at, image_id, tenant_id, bytes) FROM STDIN");
    written = 0;
    for (long long k = 0; k < per && written < n_img; k++) {
        for (int i = 0; i < images && written < n_img; i++, written++) {
            long long t = START + k * step + (long long)((unsigned)i * 2246822519u % step);
            fmt_time(t, at, sizeof at);
            copy_row(&c, "%s\tami-%017x\t%012d\t%lld\n", at, i + 1, 100000000 + i % TENANTS,
                     (long long)(1 + (k * 7 + i) % 50) * 1000000000LL);
        }
    }
    copy_end(&c);
}

static void exec_sql(struct nb_pg_conn *conn, const char *sql)
{
    struct nb_error err = {0};
    if (nb_pg_command(conn, sql, &err) < 0) {
        die(sql, &err);
    }
}

int main(int argc, char **argv)
{
    long long events = 10000000;
    int instances = 10000, images = 1000, days = 7;
    static const struct option opts[] = {{"events", required_argument, NULL, 'e'},
                                         {"instances", required_argument, NULL, 'i'},
                                         {"images", required_argument, NULL, 'm'},
                                         {"days", required_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            events = atoll(optarg);
            break;
        case 'i':
            instances = atoi(optarg);
            break;
        case 'm':
            images = atoi(optarg);
            break;
        case 'd':
            days = atoi(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: billing [--events N] [--instances N] [--images N] [--days N]\n");
            return 2;
        }
    }
    if (events < 1000 || instances < 1 || images < 1 || days < 1 || days > 26) {
        fprintf(stderr, "bench billing: bad arguments (days: 1 to 26, within January)\n");
        return 2;
    }
    nb_log_init("bench-billing", NB_LOG_WARN, NULL);
    setenv("NUBO_TEST_PG_DURABLE", "1", 0);
    struct nb_test_pg *pg = nb_test_pg_start();
    if (!pg) {
        return 1;
    }
    struct nb_error err = {0};
    struct nb_pg_pool *pool = nb_pg_pool_new(nb_test_pg_conninfo(pg), 1, &err);
    struct nb_pg_conn *conn = pool ? nb_pg_acquire(pool, 10000, &err) : NULL;
    if (!conn || nb_migrate(conn, "deploy/migrations", &err) < 0) {
        die("setup", &err);
    }
    exec_sql(conn, "INSERT INTO tenants (id, name) SELECT lpad((100000000 + i)::text, 12, '0'),"
                   " 'bench-' || i FROM generate_series(0, 99) i");

    long long n_img = events / 20, n_inst = events - n_img;
    long long span = days * 86400LL;
    fprintf(stderr,
            "loading %lld instance events (%d instances) and %lld image events (%d "
            "images) over %d days...\n",
            n_inst, instances, n_img, images, days);
    double t0 = now_s();
    load(nb_pg_raw(conn), n_inst, n_img, instances, images, span);
    exec_sql(conn, "VACUUM ANALYZE instance_events");
    exec_sql(conn, "VACUUM ANALYZE image_storage_events");
    fprintf(stderr, "loaded in %.1f s\n", now_s() - t0);

    char until[40];
    fmt_time(START + span, until, sizeof until);
    struct billing_agg_opts o = {.until = until, .grace_s = 300, .batch_hours = 24};
    struct billing_agg_result ar;
    double a0 = now_s();
    if (billing_aggregate(conn, &o, &ar, &err) < 0) {
        die("aggregate", &err);
    }
    double a1 = now_s();
    struct billing_invoice_result ir;
    if (billing_invoice(conn, "2026-01", false, &ir, &err) < 0) {
        die("invoice", &err);
    }
    double a2 = now_s();
    double total = a2 - a0;
    fprintf(stderr, "%lld batches, %lld usage records; %d invoices, %lld lines, %lld micros\n",
            ar.batches, ar.inserted, ir.invoices, ir.lines, ir.total);
    if (events == 10000000) {
        printf("bench billing_10m_events_s %.2f s\n", total);
    } else {
        printf("bench billing_%lld_events_s %.2f s\n", events, total);
    }
    printf("bench billing_events_per_s %.0f events/s\n", (double)events / total);
    printf("bench billing_aggregate_s %.2f s\n", a1 - a0);
    printf("bench billing_invoice_s %.2f s\n", a2 - a1);
    printf("bench billing_usage_records %lld records\n", ar.inserted);
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
    nb_test_pg_destroy(pg);
    return 0;
}
