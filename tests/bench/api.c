/* Benchmark of nubo-gateway's hot paths, with the request log on and PostgreSQL durable.
 *
 * Starts a throwaway PostgreSQL cluster (fsync on), an in-process gateway on 127.0.0.1, a tenant
 * with 1,000 instances, then drives signed EC2 requests with wrk (a separate process, keep-alive
 * connections) and prints, as medians of several runs:
 *
 *   bench api_describe_regions_rps N req/s          (authenticated DescribeRegions)
 *   bench api_describe_regions_p50_ms / _p99_ms
 *   bench api_describe_instances_rps N req/s        (DescribeInstances, pages of 100 of 1,000)
 *   bench api_describe_instances_p50_ms / _p99_ms
 *
 * SigV4 signatures stay valid for 15 minutes, so wrk replays requests signed once here; every
 * replay is still verified, answered, and logged with its own request id.
 *
 * Usage: api [--runs N] [--seconds S] [--connections C] [--threads T]
 * (defaults 5 runs of 8 s, 128 connections, 128 gateway threads: each request waits for its
 * request-log commit, so throughput needs requests in flight). */
#include "gateway.h"
#include "identity.h"
#include "pgtmp.h"

#include "nubo/buf.h"
#include "nubo/config.h"
#include "nubo/daemon.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"
#include "nubo/sigv4.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_INSTANCES 1000
#define PAGE        100

struct result {
    double rps, p50_ms, p99_ms;
};

static void die(const char *what, const struct nb_error *err)
{
    fprintf(stderr, "bench api: %s: %s %s\n", what, err ? err->msg : "", err ? err->detail : "");
    exit(1);
}

static void exec_sql(struct nb_pg_pool *pool, const char *sql, int n, const char *const *p)
{
    struct nb_error err = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(pool, 5000, &err);
    PGresult *res = conn ? nb_pg_exec(conn, sql, n, p, &err) : NULL;
    if (!res) {
        die(sql, &err);
    }
    PQclear(res);
    nb_pg_release(conn);
}

/* Appends a wrk.format() call for a signed POST of 'body' to the Lua table being built. */
static void add_request(struct nb_buf *lua, int port, const char *key, const char *secret,
                        const char *body)
{
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    struct nb_sigv4_header h[] = {
        {"host", host},
        {"content-type", "application/x-www-form-urlencoded; charset=utf-8"},
    };
    struct nb_sigv4_request rq = {.method = "POST",
                                  .path = "/",
                                  .query = "",
                                  .headers = h,
                                  .n_headers = 2,
                                  .body = body,
                                  .body_len = strlen(body)};
    char amz_date[17], authz[512];
    struct nb_error err = {0};
    if (nb_sigv4_sign(&rq, key, secret, "nubo-1", "ec2", time(NULL), amz_date, authz, sizeof authz,
                      &err) < 0) {
        die("sign", &err);
    }
    nb_buf_printf(lua,
                  "  wrk.format('POST', '/', {['Host']='%s', ['Content-Type']='%s', "
                  "['X-Amz-Date']='%s', ['Authorization']='%s'}, '%s'),\n",
                  host, h[1].value, amz_date, authz, body);
}

/* Runs wrk with the requests of 'lua' and parses its figures. */
static struct result run_wrk(const char *lua_path, int port, int seconds, int connections)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "wrk -t2 -c%d -d%ds --latency -s %s http://127.0.0.1:%d/ 2>&1",
             connections, seconds, lua_path, port);
    FILE *p = popen(cmd, "r");
    if (!p) {
        die("popen wrk", NULL);
    }
    struct result r = {0, 0, 0};
    char line[512];
    long non2xx = 0;
    while (fgets(line, sizeof line, p)) {
        double v;
        char unit[8];
        if (sscanf(line, " Requests/sec: %lf", &v) == 1) {
            r.rps = v;
        } else if (sscanf(line, " 50%% %lf%7s", &v, unit) == 2) {
            r.p50_ms = !strcmp(unit, "us") ? v / 1000 : !strcmp(unit, "s") ? v * 1000 : v;
        } else if (sscanf(line, " 99%% %lf%7s", &v, unit) == 2) {
            r.p99_ms = !strcmp(unit, "us") ? v / 1000 : !strcmp(unit, "s") ? v * 1000 : v;
        } else if (sscanf(line, " Non-2xx or 3xx responses: %ld", &non2xx) == 1) {
            fprintf(stderr, "bench api: %ld non-2xx responses\n", non2xx);
        }
    }
    if (pclose(p) != 0 || r.rps == 0) {
        die("wrk failed (is the wrk package installed?)", NULL);
    }
    if (non2xx) {
        die("requests failed during the run", NULL);
    }
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bench(const char *name, const char *lua_path, int port, int runs, int seconds,
                  int connections)
{
    double rps[16], p50[16], p99[16];
    for (int i = 0; i < runs; i++) {
        struct result r = run_wrk(lua_path, port, seconds, connections);
        rps[i] = r.rps;
        p50[i] = r.p50_ms;
        p99[i] = r.p99_ms;
        fprintf(stderr, "bench api: %s run %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms\n", name, i + 1,
                r.rps, r.p50_ms, r.p99_ms);
    }
    printf("bench api_%s_rps %.0f req/s\n", name, median(rps, runs));
    printf("bench api_%s_p50_ms %.2f ms\n", name, median(p50, runs));
    printf("bench api_%s_p99_ms %.2f ms\n", name, median(p99, runs));
    fflush(stdout);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        die("could not write the wrk script", NULL);
    }
}

int main(int argc, char **argv)
{
    int runs = 5, seconds = 8, connections = 128, threads = 128;
    static const struct option opts[] = {{"runs", required_argument, NULL, 'r'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"connections", required_argument, NULL, 'c'},
                                         {"threads", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "r:s:c:t:", opts, NULL)) != -1) {
        int v = atoi(optarg);
        if (v <= 0) {
            fprintf(stderr, "usage: api [--runs N] [--seconds S] [--connections C] "
                            "[--threads T]\n");
            return 2;
        }
        switch (c) {
        case 'r':
            runs = v > 16 ? 16 : v;
            break;
        case 's':
            seconds = v;
            break;
        case 'c':
            connections = v;
            break;
        default:
            threads = v;
        }
    }
    nb_daemon_block_signals();
    mallopt(M_MMAP_THRESHOLD, 8 << 20); /* as nubo-gateway's main() does */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    nb_log_init("bench-api", NB_LOG_WARN, NULL);
    setenv("NUBO_TEST_PG_DURABLE", "1", 1);
    struct nb_test_pg *pg = nb_test_pg_start();
    if (!pg) {
        die("could not start PostgreSQL", NULL);
    }
    char dir[] = "/tmp/nubo-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        die("mkdtemp", NULL);
    }
    char key_path[64], threads_s[16], lua_regions[64], lua_instances[64];
    snprintf(key_path, sizeof key_path, "%s/master.key", dir);
    snprintf(threads_s, sizeof threads_s, "%d", threads);
    snprintf(lua_regions, sizeof lua_regions, "%s/regions.lua", dir);
    snprintf(lua_instances, sizeof lua_instances, "%s/instances.lua", dir);

    struct nb_config *cfg = nb_config_new();
    const char *srcdir = getenv("NUBO_SRCDIR") ? getenv("NUBO_SRCDIR") : ".";
    char migrations[512];
    snprintf(migrations, sizeof migrations, "%s/deploy/migrations", srcdir);
    nb_config_set(cfg, "db.conninfo", nb_test_pg_conninfo(pg));
    nb_config_set(cfg, "db.migrations", migrations);
    nb_config_set(cfg, "db.pool_size", "16");
    nb_config_set(cfg, "master_key", key_path);
    nb_config_set(cfg, "http.port", "0");
    nb_config_set(cfg, "http.threads", threads_s);
    struct nb_error err = {0};
    struct gw_ctx *gw = gw_open(cfg, &err);
    if (!gw || gw_start(gw, &err) < 0) {
        die("could not start the gateway", &err);
    }

    /* A tenant with a key, an image and 1,000 instances. */
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, 5000, &err);
    char tenant_id[GW_TENANT_ID_LEN + 1], user_id[64];
    struct gw_new_key key;
    if (!conn || gw_tenant_create(conn, "bench", tenant_id, &err) < 0 ||
        gw_user_create(conn, tenant_id, "bench", "member", user_id, &err) < 0 ||
        gw_key_create(conn, gw->master_key, user_id, &key, &err) < 0) {
        die("could not create the tenant", &err);
    }
    nb_pg_release(conn);
    const char *p_img[] = {tenant_id};
    exec_sql(gw->pool,
             "INSERT INTO images (id, tenant_id, name, is_public) "
             "VALUES ('ami-00000000000000001', $1, 'bench', true)",
             1, p_img);
    exec_sql(gw->pool,
             "UPDATE quotas SET max_instances = 100000, max_vcpus = 100000, "
             "max_memory_mib = 100000000",
             0, NULL);
    exec_sql(gw->pool,
             "INSERT INTO instances (id, tenant_id, reservation_id, launch_index, image_id, "
             "instance_type, vcpus, memory_mib, zone) "
             "SELECT 'i-' || lpad(to_hex(g), 17, '0'), $1, 'r-' || lpad(to_hex(g / 10), 17, '0'), "
             "g % 10, 'ami-00000000000000001', 't3.micro', 1, 1024, 'nubo-1a' "
             "FROM generate_series(1, 1000) g",
             1, p_img);
    exec_sql(gw->pool,
             "INSERT INTO tags (tenant_id, resource_id, resource_type, key, value) "
             "SELECT $1, id, 'instance', 'Name', 'web-' || launch_index FROM instances",
             1, p_img);

    struct nb_buf lua = NB_BUF_INIT;
    nb_buf_puts(&lua, "local reqs = {\n");
    add_request(&lua, gw->port, key.key_id, key.secret,
                "Action=DescribeRegions&Version=2016-11-15");
    nb_buf_puts(&lua, "}\nlocal i = 0\nrequest = function()\n  i = i % #reqs + 1\n"
                      "  return reqs[i]\nend\n");
    write_file(lua_regions, lua.data);

    /* The ten pages of DescribeInstances, each with the NextToken that leads to it. */
    nb_buf_reset(&lua);
    nb_buf_puts(&lua, "local reqs = {\n");
    conn = nb_pg_acquire(gw->pool, 5000, &err);
    PGresult *res = conn ? nb_pg_exec(conn,
                                      "SELECT reservation_id || '.' || id FROM instances "
                                      "ORDER BY reservation_id, id",
                                      0, NULL, &err)
                         : NULL;
    if (!res || PQntuples(res) != N_INSTANCES) {
        die("could not read the instances", &err);
    }
    for (int page = 0; page < N_INSTANCES / PAGE; page++) {
        char body[256];
        if (page == 0) {
            snprintf(body, sizeof body, "Action=DescribeInstances&MaxResults=%d&Version=2016-11-15",
                     PAGE);
        } else {
            snprintf(body, sizeof body,
                     "Action=DescribeInstances&MaxResults=%d&NextToken=%s&Version=2016-11-15", PAGE,
                     PQgetvalue(res, page * PAGE - 1, 0));
        }
        add_request(&lua, gw->port, key.key_id, key.secret, body);
    }
    PQclear(res);
    nb_pg_release(conn);
    nb_buf_puts(&lua, "}\nlocal i = 0\nrequest = function()\n  i = i % #reqs + 1\n"
                      "  return reqs[i]\nend\n");
    write_file(lua_instances, lua.data);
    nb_buf_free(&lua);

    fprintf(stderr, "bench api: gateway on port %d with %d threads, wrk with %d connections\n",
            gw->port, threads, connections);
    bench("describe_regions", lua_regions, gw->port, runs, seconds, connections);
    bench("describe_instances", lua_instances, gw->port, runs, seconds, connections);

    gw_stop(gw);
    gw_close(gw);
    nb_config_free(cfg);
    nb_test_pg_destroy(pg);
    unlink(lua_regions);
    unlink(lua_instances);
    unlink(key_path);
    rmdir(dir);
    return 0;
}
