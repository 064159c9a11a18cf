/* Benchmark of nubo-scheduler's placement path, claims in PostgreSQL included.
 *
 * Starts a throwaway PostgreSQL cluster with fsync on (NUBO_TEST_PG_DURABLE=1, set here unless
 * already set), fills it with simulated hosts in three zones and a backlog of one-instance
 * reservations of random types and zones, then runs the real scheduler (its placement workers;
 * the drivers that would then spawn are off, so that the figure is the placement itself) until
 * every instance holds a host, and prints, as medians of several runs:
 *
 *   bench sched_placements_per_s_<H>_hosts_<W>w N placements/s
 *   bench sched_decision_p50_ms_<H>_hosts_<W>w N ms   (per instance: from the transaction's
 *   bench sched_decision_p99_ms_<H>_hosts_<W>w N ms    fetch of its row to its commit)
 *
 * for H in 1k, 10k hosts and W in 1, 4 workers.
 *
 * Usage: scheduler [--runs N] [--instances N] [--batch N] */
#include "pgtmp.h"
#include "scheduler.h"

#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/migrate.h"
#include "nubo/pg.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TENANT "123456789012"

struct sample {
    double seconds;
    int placed;
};

/* What the workers report, gathered under a lock. */
struct recorder {
    pthread_mutex_t mu;
    struct sample *s;
    int n, cap;
};

struct result {
    double per_s, p50_ms, p99_ms;
};

static void die(const char *what, const struct nb_error *err)
{
    fprintf(stderr, "bench scheduler: %s: %s %s\n", what, err ? err->msg : "",
            err ? err->detail : "");
    exit(1);
}

static void exec_sql(struct nb_pg_pool *pool, const char *sql)
{
    struct nb_error err = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(pool, 10000, &err);
    if (!conn || nb_pg_command(conn, sql, &err) < 0) {
        die(sql, &err);
    }
    nb_pg_release(conn);
}

static void on_batch(void *arg, double seconds, int placed)
{
    struct recorder *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 1024;
        r->s = realloc(r->s, (size_t)r->cap * sizeof *r->s);
        if (!r->s) {
            abort();
        }
    }
    r->s[r->n++] = (struct sample){seconds, placed};
    pthread_mutex_unlock(&r->mu);
}

static int cmp_sample(const void *a, const void *b)
{
    double x = ((const struct sample *)a)->seconds, y = ((const struct sample *)b)->seconds;
    return x < y ? -1 : x > y;
}

/* The latency below which 'q' of the instances were decided (each instance of a batch counts
 * with its batch's latency). */
static double percentile(struct recorder *r, double q)
{
    qsort(r->s, (size_t)r->n, sizeof *r->s, cmp_sample);
    long total = 0;
    for (int i = 0; i < r->n; i++) {
        total += r->s[i].placed;
    }
    long want = (long)(q * (double)total), seen = 0;
    for (int i = 0; i < r->n; i++) {
        seen += r->s[i].placed;
        if (seen > want) {
            return r->s[i].seconds;
        }
    }
    return r->n ? r->s[r->n - 1].seconds : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Empties the instances and the claims, then queues 'n' one-instance reservations. */
static void reset_backlog(struct nb_pg_pool *pool, int n)
{
    exec_sql(pool, "TRUNCATE instances, instance_events");
    exec_sql(pool, "UPDATE hosts SET used_vcpus = 0, used_memory_mib = 0, used_disk_gib = 0, "
                   "instance_count = 0, generation = generation + 1");
    char sql[1536];
    snprintf(sql, sizeof sql,
             "INSERT INTO instances (id, tenant_id, reservation_id, image_id, instance_type, "
             "vcpus, memory_mib, disk_gib, ephemeral_gib, zone, launch_time) "
             "SELECT 'i-' || lpad(to_hex(g), 17, '0'), '" TENANT "', "
             "'r-' || lpad(to_hex(g), 17, '0'), 'ami-00000000000000001', t.name, t.vcpus, "
             "t.memory_mib, t.disk_gib, t.ephemeral_gib, "
             "(ARRAY['nubo-1a', 'nubo-1b', 'nubo-1c'])[1 + (g * 7) %% 3], "
             "now() + g * interval '1 microsecond' "
             "FROM generate_series(1, %d) g, "
             "LATERAL (SELECT * FROM instance_types ORDER BY name OFFSET (g * 31) %% 9 LIMIT 1) t",
             n);
    exec_sql(pool, sql);
    exec_sql(pool, "VACUUM ANALYZE instances");
    exec_sql(pool, "VACUUM ANALYZE hosts");
}

static struct result run_once(struct nb_pg_pool *setup, const char *conninfo, int hosts,
                              int workers, int instances, int batch)
{
    reset_backlog(setup, instances);
    struct sched_config cfg;
    sched_config_default(&cfg);
    cfg.workers = workers;
    cfg.drivers = 0; /* placement only */
    cfg.batch = batch;
    cfg.poll_ms = 50;
    cfg.refresh_ms = 1000;
    struct nb_error err = {0};
    struct nb_pg_pool *pool = nb_pg_pool_new(conninfo, workers + 2, &err);
    if (!pool) {
        die("pool", &err);
    }
    struct sched_ctx *ctx = sched_new(&cfg, pool, conninfo, NULL, &err);
    if (!ctx) {
        die("scheduler", &err);
    }
    struct recorder rec = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ctx->on_batch = on_batch;
    ctx->on_batch_arg = &rec;
    double start = now_s();
    if (sched_start(ctx, &err) < 0) {
        die("start", &err);
    }
    while (atomic_load(&ctx->stats.placed) + atomic_load(&ctx->stats.unplaceable) < instances) {
        usleep(2000);
    }
    double elapsed = now_s() - start;
    sched_stop(ctx);
    long unplaceable = atomic_load(&ctx->stats.unplaceable);
    fprintf(stderr,
            "  %d hosts, %d worker(s): %d instances in %.2f s, %ld conflicts, %ld "
            "unplaceable\n",
            hosts, workers, instances, elapsed, atomic_load(&ctx->stats.conflicts), unplaceable);
    struct result r = {
        .per_s = (double)atomic_load(&ctx->stats.placed) / elapsed,
        .p50_ms = percentile(&rec, 0.50) * 1000,
        .p99_ms = percentile(&rec, 0.99) * 1000,
    };
    sched_free(ctx);
    nb_pg_pool_free(pool);
    free(rec.s);
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"runs", required_argument, NULL, 'r'},
                                         {"instances", required_argument, NULL, 'n'},
                                         {"batch", required_argument, NULL, 'b'},
                                         {NULL, 0, NULL, 0}};
    int runs = 3, instances = 20000, batch = 32, c;
    while ((c = getopt_long(argc, argv, "r:n:b:", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            runs = atoi(optarg);
            break;
        case 'n':
            instances = atoi(optarg);
            break;
        case 'b':
            batch = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: scheduler [--runs N] [--instances N] [--batch N]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 15 || instances < 100 || batch < 1) {
        fprintf(stderr, "bench scheduler: bad arguments\n");
        return 2;
    }
    nb_log_init("bench-scheduler", NB_LOG_WARN, NULL);
    setenv("NUBO_TEST_PG_DURABLE", "1", 0);
    struct nb_test_pg *pg = nb_test_pg_start();
    if (!pg) {
        return 1;
    }
    static const int host_counts[] = {1000, 10000};
    static const int worker_counts[] = {1, 4};
    for (size_t h = 0; h < 2; h++) {
        char dbname[32];
        snprintf(dbname, sizeof dbname, "bench_%d", host_counts[h]);
        char *conninfo = NULL;
        struct nb_error err = {0};
        struct nb_pg_pool *setup = NULL;
        struct nb_pg_conn *conn = NULL;
        if (nb_test_pg_create_db(pg, dbname) < 0 ||
            !(conninfo = nb_test_pg_conninfo_db(pg, dbname)) ||
            !(setup = nb_pg_pool_new(conninfo, 2, &err)) ||
            !(conn = nb_pg_acquire(setup, 10000, &err)) ||
            nb_migrate(conn, "deploy/migrations", &err) < 0) {
            die("database", &err);
        }
        nb_pg_release(conn);
        exec_sql(setup, "INSERT INTO zones (name, region) VALUES ('nubo-1b', 'nubo-1'), "
                        "('nubo-1c', 'nubo-1')");
        exec_sql(setup, "INSERT INTO tenants (id, name) VALUES ('" TENANT "', 'bench')");
        exec_sql(setup, "INSERT INTO images (id, tenant_id, name) VALUES "
                        "('ami-00000000000000001', '" TENANT "', 'img')");
        char sql[768];
        snprintf(sql, sizeof sql,
                 "INSERT INTO hosts (id, name, zone, vcpus, memory_mib, disk_gib, simulated) "
                 "SELECT 'h-' || lpad(to_hex(g), 17, '0'), 'node' || g, "
                 "(ARRAY['nubo-1a', 'nubo-1b', 'nubo-1c'])[1 + g %% 3], 64, 262144, 4000, true "
                 "FROM generate_series(1, %d) g",
                 host_counts[h]);
        exec_sql(setup, sql);
        for (size_t w = 0; w < 2; w++) {
            double per_s[15], p50[15], p99[15];
            for (int r = 0; r < runs; r++) {
                struct result res =
                    run_once(setup, conninfo, host_counts[h], worker_counts[w], instances, batch);
                per_s[r] = res.per_s;
                p50[r] = res.p50_ms;
                p99[r] = res.p99_ms;
            }
            const char *hn = host_counts[h] == 1000 ? "1k" : "10k";
            printf("bench sched_placements_per_s_%s_hosts_%dw %.0f placements/s\n", hn,
                   worker_counts[w], median(per_s, runs));
            printf("bench sched_decision_p50_ms_%s_hosts_%dw %.2f ms\n", hn, worker_counts[w],
                   median(p50, runs));
            printf("bench sched_decision_p99_ms_%s_hosts_%dw %.2f ms\n", hn, worker_counts[w],
                   median(p99, runs));
            fflush(stdout);
        }
        nb_pg_pool_free(setup);
        free(conninfo);
    }
    nb_test_pg_destroy(pg);
    return 0;
}
