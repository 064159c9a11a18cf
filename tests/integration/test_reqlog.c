/* Integration tests of the request log (api-gateway/reqlog.c) against a real, throwaway
 * PostgreSQL 15 cluster: concurrent writers and group commit, a field-exact round trip of hostile
 * text, no acknowledged record lost when the writing process is killed, the database going down
 * and coming back, daily partitions, the operator's query, and records the log must refuse.
 *
 * Each case works in a database of its own, migrated with the project's deploy/migrations. The
 * last case prints the writer's throughput; it asserts nothing about speed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "nbtest.h"

#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/migrate.h"
#include "nubo/pg.h"

#include "pgtmp.h"
#include "reqlog.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIGRATIONS_DIR "deploy/migrations"
#define US_PER_SEC     1000000LL
#define US_PER_DAY     (86400LL * US_PER_SEC)

#define CONCURRENT_THREADS 8
#define RECORDS_PER_THREAD 500

/* One case's world: a fresh, migrated database and a pool on it. */
struct fixture {
    struct nb_test_pg *pg;
    struct nb_pg_pool *pool;
    char *conninfo;
};

static int fixture_setup(void **state)
{
    static int counter;
    struct nb_test_pg *cluster = *state;
    if (nb_test_pg_start_again(cluster) < 0) {
        return -1;
    }
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) {
        return -1;
    }
    f->pg = cluster;
    char dbname[32];
    snprintf(dbname, sizeof dbname, "reqlog_%d", ++counter);
    struct nb_error err = {0};
    struct nb_pg_conn *conn = NULL;
    if (nb_test_pg_create_db(cluster, dbname) < 0 ||
        !(f->conninfo = nb_test_pg_conninfo_db(cluster, dbname)) ||
        !(f->pool = nb_pg_pool_new(f->conninfo, 4, &err)) ||
        !(conn = nb_pg_acquire(f->pool, 5000, &err)) ||
        nb_migrate(conn, MIGRATIONS_DIR, &err) < 0) {
        fprintf(stderr, "fixture: %s (%s)\n", err.msg, err.detail);
        nb_pg_release(conn);
        nb_pg_pool_free(f->pool);
        free(f->conninfo);
        free(f);
        return -1;
    }
    nb_pg_release(conn);
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

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

static double mono_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "request_log_YYYYMMDD" of the UTC day of 'us'. */
static void partition_name(int64_t us, char *out, size_t size)
{
    time_t secs = (time_t)(us / US_PER_SEC);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, size, "request_log_%Y%m%d", &tm);
}

static struct gw_reqlog *new_log(struct fixture *f, const struct gw_reqlog_options *opt)
{
    struct nb_error err = {0};
    struct gw_reqlog *log = gw_reqlog_new(f->pool, opt, &err);
    assert_ok(log != NULL, err);
    return log;
}

/* Runs 'sql' and returns its result, which the caller PQclear()s. */
static PGresult *query(struct fixture *f, const char *sql, int nparams, const char *const *params)
{
    struct nb_error err = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(f->pool, 5000, &err);
    assert_ok(conn != NULL, err);
    PGresult *res = nb_pg_exec(conn, sql, nparams, params, &err);
    nb_pg_release(conn);
    assert_ok(res != NULL, err);
    return res;
}

/* Runs 'sql', which returns one integer. */
static long long query_int(struct fixture *f, const char *sql, int nparams,
                           const char *const *params)
{
    PGresult *res = query(f, sql, nparams, params);
    assert_int_equal(PQntuples(res), 1);
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* Runs 'sql', which returns one text value; the caller free()s the copy. */
static char *query_text(struct fixture *f, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = query(f, sql, nparams, params);
    assert_int_equal(PQntuples(res), 1);
    char *v = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static void write_ok(struct gw_reqlog *log, const struct gw_reqlog_record *rec)
{
    struct nb_error err = {0};
    assert_ok(gw_reqlog_write(log, rec, &err) == 0, err);
}

/* --- generated records ------------------------------------------------------------------------- */

/* Text that COPY's text format, SQL quoting and JSON must all carry unchanged. */
static const char *const HOSTILE[] = {
    "Mozilla/5.0 (X11; \"double\" 'single' `back`) \\ one \\\\ two backslashes",
    "tab\there, newline\nthere, crlf\r\n, \\N, \\t, \\., end",
    "ünïcødé, 雪, 🙂, Ω, \u00a0nbsp",
    "\\.",
    "\\N",
    "",
};
#define NHOSTILE (sizeof HOSTILE / sizeof HOSTILE[0])

/* A record and the storage of its strings. */
struct gen {
    char id[40];
    char tenant[16];
    char key[24];
    char action[32];
    char *params;
    char addr[48];
    struct gw_reqlog_record rec;
};

/* Fills 'g' with record 'i' of thread 't'; everything but the request id follows from (t, i), so
 * a stored row can be checked against gen_fill() of the (t, i) in its access key id. */
static void gen_fill(struct gen *g, int t, int i, int64_t base_us)
{
    assert_int_equal(nb_uuid_new(g->id, sizeof g->id), 0);
    snprintf(g->tenant, sizeof g->tenant, "%012d", 100000 + t);
    snprintf(g->key, sizeof g->key, "NKIA%02d%05dAAAAAAAAA", t, i);
    snprintf(g->action, sizeof g->action, "%s", i % 3 ? "DescribeRegions" : "RunInstances");
    snprintf(g->addr, sizeof g->addr, i % 2 ? "192.0.2.%d" : "2001:db8::%x", i % 250 + 1);
    const char *hostile = HOSTILE[(size_t)i % NHOSTILE];
    json_t *params = json_pack("{s:s, s:i, s:s, s:[s, n, b]}", "Action", g->action, "Index", i,
                               "Note", hostile, "List", hostile, i % 2);
    /* Indented JSON also carries raw newlines and spaces between tokens. */
    g->params = json_dumps(params, i % 4 == 0 ? JSON_INDENT(2) : JSON_COMPACT);
    json_decref(params);
    assert_non_null(g->params);
    bool failed = i % 5 == 0;
    g->rec = (struct gw_reqlog_record){
        .request_id = g->id,
        .time_us = base_us + (int64_t)t * 100000 + i,
        .tenant_id = failed ? NULL : g->tenant,
        .access_key_id = g->key,
        .action = g->action,
        .params_json = g->params,
        .http_status = failed ? 403 : 200,
        .error_code = failed ? "SignatureDoesNotMatch" : NULL,
        .latency_us = 1000 + i,
        .source_addr = i % 7 == 0 ? NULL : g->addr,
        .user_agent = i % 11 == 0 ? NULL : hostile,
        .api = i % 2 ? GW_REQLOG_API_EC2 : GW_REQLOG_API_REST,
    };
}

static void gen_free(struct gen *g)
{
    free(g->params);
}

static void assert_text_field(const PGresult *res, int row, int col, const char *want)
{
    if (!want) {
        assert_true(PQgetisnull(res, row, col));
    } else {
        assert_false(PQgetisnull(res, row, col));
        assert_string_equal(PQgetvalue(res, row, col), want);
    }
}

#define ROW_SQL                                                                                    \
    "SELECT request_id, (extract(epoch FROM \"time\") * 1000000)::bigint, tenant_id, "             \
    "access_key_id, action, params, http_status, error_code, latency_us, host(source_addr), "      \
    "user_agent, api FROM request_log"

/* Checks row 'row' of a ROW_SQL result against 'rec', field by field. */
static void assert_row_is(const PGresult *res, int row, const struct gw_reqlog_record *rec)
{
    static const char *const apis[] = {"other", "ec2", "rest"};
    char num[32];
    assert_text_field(res, row, 0, rec->request_id);
    snprintf(num, sizeof num, "%" PRId64, rec->time_us);
    assert_text_field(res, row, 1, num);
    assert_text_field(res, row, 2, rec->tenant_id);
    assert_text_field(res, row, 3, rec->access_key_id);
    assert_text_field(res, row, 4, rec->action);
    /* jsonb normalises spacing and key order: compare the values. */
    json_t *want = json_loads(rec->params_json, JSON_DECODE_ANY, NULL);
    json_t *got = json_loads(PQgetvalue(res, row, 5), JSON_DECODE_ANY, NULL);
    assert_non_null(want);
    assert_non_null(got);
    assert_true(json_equal(want, got));
    json_decref(want);
    json_decref(got);
    snprintf(num, sizeof num, "%d", rec->http_status);
    assert_text_field(res, row, 6, num);
    assert_text_field(res, row, 7, rec->error_code);
    snprintf(num, sizeof num, "%" PRId64, rec->latency_us);
    assert_text_field(res, row, 8, num);
    assert_text_field(res, row, 9, rec->source_addr);
    assert_text_field(res, row, 10, rec->user_agent);
    assert_text_field(res, row, 11, apis[rec->api]);
}

/* What a writing thread does: 'count' records, counting failures; with 'ids', keeps their ids. */
struct writer_arg {
    struct gw_reqlog *log;
    int thread;
    int count;
    int64_t base_us;
    int failures;
    char (*ids)[40]; /* 'count' entries, or NULL */
};

static void *writer_thread(void *p)
{
    struct writer_arg *a = p;
    for (int i = 0; i < a->count; i++) {
        struct gen g;
        gen_fill(&g, a->thread, i, a->base_us);
        struct nb_error err = {0};
        if (gw_reqlog_write(a->log, &g.rec, &err) < 0) {
            a->failures++;
        } else if (a->ids) {
            memcpy(a->ids[i], g.id, sizeof g.id);
        }
        gen_free(&g);
    }
    return NULL;
}

/* Writer threads started together and joined together. */
struct writers {
    int nthreads;
    pthread_t threads[64];
    struct writer_arg args[64];
};

/* Starts 'nthreads' writer threads of 'count' records each. 'ids', if not NULL, receives
 * nthreads * count ids, thread after thread. */
static void start_writers(struct writers *w, struct gw_reqlog *log, int nthreads, int count,
                          int64_t base_us, char (*ids)[40])
{
    assert_true(nthreads <= 64);
    w->nthreads = nthreads;
    for (int t = 0; t < nthreads; t++) {
        w->args[t] =
            (struct writer_arg){.log = log, .thread = t, .count = count, .base_us = base_us};
        w->args[t].ids = ids ? ids + (size_t)t * (size_t)count : NULL;
        assert_int_equal(pthread_create(&w->threads[t], NULL, writer_thread, &w->args[t]), 0);
    }
}

/* Waits for the threads of start_writers(). Returns the number of failed writes. */
static int join_writers(struct writers *w)
{
    int failures = 0;
    for (int t = 0; t < w->nthreads; t++) {
        pthread_join(w->threads[t], NULL);
        failures += w->args[t].failures;
    }
    return failures;
}

static int run_writers(struct gw_reqlog *log, int nthreads, int count, int64_t base_us,
                       char (*ids)[40])
{
    struct writers w;
    start_writers(&w, log, nthreads, count, base_us, ids);
    return join_writers(&w);
}

/* --- cases ------------------------------------------------------------------------------------- */

/* Many threads at once: every record is stored exactly once with every field intact, and the
 * writer commits them in batches larger than one. */
static void test_concurrent_writes_round_trip(void **state)
{
    struct fixture *f = *state;
    const int total = CONCURRENT_THREADS * RECORDS_PER_THREAD;
    char(*ids)[40] = calloc((size_t)total, sizeof *ids);
    assert_non_null(ids);
    int64_t base = now_us() - 3600 * US_PER_SEC;
    struct gw_reqlog *log = new_log(f, NULL);

    assert_int_equal(run_writers(log, CONCURRENT_THREADS, RECORDS_PER_THREAD, base, ids), 0);
    struct gw_reqlog_stats stats;
    gw_reqlog_get_stats(log, &stats);
    gw_reqlog_free(log);

    assert_int_equal(stats.records, (uint64_t)total);
    assert_int_equal(stats.failed_records, 0);
    double avg = (double)stats.records / (double)stats.batches;
    printf("    %d threads x %d records: %" PRIu64 " batches, average batch %.1f, largest %" PRIu64
           "\n",
           CONCURRENT_THREADS, RECORDS_PER_THREAD, stats.batches, avg, stats.max_batch_seen);
    assert_true(avg > 1.0);

    assert_int_equal(query_int(f, "SELECT count(*) FROM request_log", 0, NULL), total);
    assert_int_equal(query_int(f, "SELECT count(DISTINCT request_id) FROM request_log", 0, NULL),
                     total);
    PGresult *res = query(f, ROW_SQL, 0, NULL);
    assert_int_equal(PQntuples(res), total);
    for (int row = 0; row < PQntuples(res); row++) {
        int t, i;
        assert_int_equal(sscanf(PQgetvalue(res, row, 3), "NKIA%2d%5d", &t, &i), 2);
        struct gen g;
        gen_fill(&g, t, i, base);
        g.rec.request_id = ids[t * RECORDS_PER_THREAD + i];
        assert_row_is(res, row, &g.rec);
        gen_free(&g);
    }
    PQclear(res);
    free(ids);
}

/* The child of test_acknowledged_records_survive_crash: writes from several threads until it is
 * killed, sending each acknowledged request id, newline-terminated, down 'fd'. */
struct crash_arg {
    struct gw_reqlog *log;
    int fd;
    int thread;
};

static void *crash_writer(void *p)
{
    struct crash_arg *a = p;
    int64_t base = now_us();
    for (int i = 0;; i++) {
        struct gen g;
        gen_fill(&g, a->thread, i % 100000, base);
        struct nb_error err = {0};
        if (gw_reqlog_write(a->log, &g.rec, &err) == 0) {
            char line[48];
            snprintf(line, sizeof line, "%s\n", g.id);
            /* 37 bytes: below PIPE_BUF, so lines of several threads never interleave */
            if (write(a->fd, line, 37) != 37) {
                _exit(4);
            }
        }
        gen_free(&g);
    }
    return NULL;
}

static void crash_child(const char *conninfo, int fd)
{
    alarm(30); /* never outlive a parent that failed before killing us */
    struct nb_error err = {0};
    struct nb_pg_pool *pool = nb_pg_pool_new(conninfo, 2, &err);
    struct gw_reqlog *log = pool ? gw_reqlog_new(pool, NULL, &err) : NULL;
    if (!log) {
        fprintf(stderr, "crash child: %s\n", err.msg);
        _exit(3);
    }
    pthread_t threads[CONCURRENT_THREADS];
    struct crash_arg args[CONCURRENT_THREADS];
    for (int t = 0; t < CONCURRENT_THREADS; t++) {
        args[t] = (struct crash_arg){.log = log, .fd = fd, .thread = t};
        pthread_create(&threads[t], NULL, crash_writer, &args[t]);
    }
    for (int t = 0; t < CONCURRENT_THREADS; t++) {
        pthread_join(threads[t], NULL);
    }
    _exit(0);
}

/* With 'max_wait_us', the idle writer waits for a batch to fill, and never exceeds 'max_batch'. */
static void test_max_wait_fills_batches(void **state)
{
    struct fixture *f = *state;
    const struct gw_reqlog_options opt = {.max_batch = 8, .max_wait_us = 200000};
    struct gw_reqlog *log = new_log(f, &opt);
    assert_int_equal(run_writers(log, 8, 10, now_us(), NULL), 0);
    struct gw_reqlog_stats stats;
    gw_reqlog_get_stats(log, &stats);
    gw_reqlog_free(log);
    assert_int_equal(stats.records, 80);
    assert_int_equal(stats.max_batch_seen, 8);
    /* ten full batches when every thread is back within the wait; allow a few stragglers */
    assert_true(stats.batches <= 16);
    assert_int_equal(query_int(f, "SELECT count(*) FROM request_log", 0, NULL), 80);
}

/* A writing process killed mid-load: every request id it was told was committed is in the table. */
static void test_acknowledged_records_survive_crash(void **state)
{
    struct fixture *f = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child(f->conninfo, fds[1]);
    }
    close(fds[1]);

    /* Let it acknowledge a good number of records, then kill it in full flight. */
    struct nb_buf acked = NB_BUF_INIT;
    char chunk[4096];
    double deadline = mono_sec() + 20;
    bool killed = false;
    for (;;) {
        if (!killed && (acked.len >= 3000 * 37 || mono_sec() > deadline)) {
            kill(pid, SIGKILL);
            killed = true;
        }
        ssize_t n = read(fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break; /* every write end closed: the child is dead */
        }
        nb_buf_append(&acked, chunk, (size_t)n);
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_int_equal(acked.len % 37, 0);
    size_t nacked = acked.len / 37;
    assert_true(nacked > 0);

    /* "{id,id,...}" as a uuid[] parameter */
    struct nb_buf array = NB_BUF_INIT;
    nb_buf_puts(&array, "{");
    for (size_t i = 0; i < nacked; i++) {
        nb_buf_append(&array, acked.data + i * 37, 36);
        nb_buf_puts(&array, i + 1 < nacked ? "," : "}");
    }
    const char *params[] = {array.data};
    long long found = query_int(
        f, "SELECT count(*) FROM request_log WHERE request_id = ANY($1::uuid[])", 1, params);
    long long rows = query_int(f, "SELECT count(*) FROM request_log", 0, NULL);
    printf("    child killed after %zu acknowledged records; %lld rows committed, %lld of the "
           "acknowledged ones found\n",
           nacked, rows, found);
    assert_int_equal(found, (long long)nacked);
    nb_buf_free(&array);
    nb_buf_free(&acked);
}

/* With the database down, a write fails within the retry window and is not acknowledged; once the
 * database is back, the same log writes again. */
static void test_database_down_fails_then_recovers(void **state)
{
    struct fixture *f = *state;
    const struct gw_reqlog_options opt = {.retry_ms = 1000};
    struct gw_reqlog *log = new_log(f, &opt);
    int64_t base = now_us();
    struct gen before, during, after;
    gen_fill(&before, 0, 1, base);
    gen_fill(&during, 0, 2, base);
    gen_fill(&after, 0, 3, base);
    write_ok(log, &before.rec);

    assert_int_equal(nb_test_pg_kill(f->pg), 0);
    struct nb_error err = {0};
    double start = mono_sec();
    assert_int_equal(gw_reqlog_write(log, &during.rec, &err), -1);
    double took = mono_sec() - start;
    printf("    write with the database down failed after %.2f s: %s: %s\n", took,
           nb_errcode_name(err.code), err.msg);
    assert_true(took >= 0.9 && took < 1.0 + 5.0);
    assert_true(err.code == NB_ERR_UNAVAILABLE || err.code == NB_ERR_TIMEOUT);
    struct gw_reqlog_stats stats;
    gw_reqlog_get_stats(log, &stats);
    assert_int_equal(stats.failed_records, 1);
    assert_true(stats.retries > 0);

    assert_int_equal(nb_test_pg_start_again(f->pg), 0);
    write_ok(log, &after.rec);
    gw_reqlog_free(log);

    const char *ids[] = {before.id, during.id, after.id};
    assert_int_equal(
        query_int(f, "SELECT count(*) FROM request_log WHERE request_id = $1", 1, &ids[0]), 1);
    assert_int_equal(
        query_int(f, "SELECT count(*) FROM request_log WHERE request_id = $1", 1, &ids[1]), 0);
    assert_int_equal(
        query_int(f, "SELECT count(*) FROM request_log WHERE request_id = $1", 1, &ids[2]), 1);
    gen_free(&before);
    gen_free(&during);
    gen_free(&after);
}

/* An outage shorter than the retry window costs latency, not failures. */
static void test_short_outage_is_ridden_out(void **state)
{
    struct fixture *f = *state;
    const struct gw_reqlog_options opt = {.retry_ms = 8000};
    struct gw_reqlog *log = new_log(f, &opt);
    assert_int_equal(nb_test_pg_kill(f->pg), 0);

    /* The writers start while it is down; it comes back half a second later. (The restart stays
     * on this thread: pgtmp's server lives only as long as the thread that started it.) */
    struct writers w;
    start_writers(&w, log, 4, 25, now_us(), NULL);
    struct timespec half = {.tv_nsec = 500000000L};
    nanosleep(&half, NULL);
    assert_int_equal(nb_test_pg_start_again(f->pg), 0);
    assert_int_equal(join_writers(&w), 0);

    struct gw_reqlog_stats stats;
    gw_reqlog_get_stats(log, &stats);
    gw_reqlog_free(log);
    assert_int_equal(stats.records, 100);
    assert_int_equal(stats.failed_records, 0);
    assert_true(stats.retries > 0);
    assert_int_equal(query_int(f, "SELECT count(*) FROM request_log", 0, NULL), 100);
}

/* Rows land in the partition of their UTC day; the function that makes partitions is idempotent
 * and rescues rows that waited in the default partition. */
static void test_rows_land_in_daily_partitions(void **state)
{
    struct fixture *f = *state;
    const struct gw_reqlog_options opt = {.days_ahead = 2};
    struct gw_reqlog *log = new_log(f, &opt);
    int64_t now = now_us();
    struct gen today, yesterday, later;
    gen_fill(&today, 0, 1, now);
    gen_fill(&yesterday, 0, 2, now - US_PER_DAY);
    gen_fill(&later, 0, 3, now + 5 * US_PER_DAY);
    write_ok(log, &today.rec);
    write_ok(log, &yesterday.rec);
    write_ok(log, &later.rec);
    gw_reqlog_free(log);

    char name[32], later_name[32];
    partition_name(now, name, sizeof name);
    partition_name(now + 5 * US_PER_DAY, later_name, sizeof later_name);
    const char *sql = "SELECT tableoid::regclass::text FROM request_log WHERE request_id = $1";
    const char *today_id[] = {today.id};
    const char *yesterday_id[] = {yesterday.id};
    const char *later_id[] = {later.id};
    char *where = query_text(f, sql, 1, today_id);
    assert_string_equal(where, name);
    free(where);
    where = query_text(f, sql, 1, yesterday_id);
    assert_string_equal(where, "request_log_default");
    free(where);
    where = query_text(f, sql, 1, later_id);
    assert_string_equal(where, "request_log_default");
    free(where);

    /* The writer made today and two days ahead: three daily partitions and the default. */
    const char *count_parts = "SELECT count(*) FROM pg_inherits "
                              "WHERE inhparent = 'request_log'::regclass";
    assert_int_equal(query_int(f, count_parts, 0, NULL), 4);
    assert_int_equal(query_int(f, "SELECT request_log_ensure_partitions(2)", 0, NULL), 0);
    assert_int_equal(query_int(f, count_parts, 0, NULL), 4);

    /* Five days ahead: three new ones, and the row of the fifth day moves into its own. */
    assert_int_equal(query_int(f, "SELECT request_log_ensure_partitions(5)", 0, NULL), 3);
    assert_int_equal(query_int(f, "SELECT request_log_ensure_partitions(5)", 0, NULL), 0);
    assert_int_equal(query_int(f, count_parts, 0, NULL), 7);
    where = query_text(f, sql, 1, later_id);
    assert_string_equal(where, later_name);
    free(where);
    where = query_text(f, sql, 1, yesterday_id);
    assert_string_equal(where, "request_log_default");
    free(where);
    assert_int_equal(query_int(f, "SELECT count(*) FROM request_log", 0, NULL), 3);

    /* Each daily partition carries the primary key and the indexes of request_log. */
    char *indexes = query_text(f,
                               "SELECT string_agg(indexdef, ' | ' ORDER BY indexname) "
                               "FROM pg_indexes WHERE tablename = $1",
                               1, (const char *[]){later_name});
    assert_non_null(strstr(indexes, "UNIQUE INDEX"));
    assert_non_null(strstr(indexes, "(tenant_id, \"time\")"));
    assert_non_null(strstr(indexes, "(action, \"time\")"));
    assert_non_null(strstr(indexes, "(error_code, \"time\") WHERE (error_code IS NOT NULL)"));
    free(indexes);

    gen_free(&today);
    gen_free(&yesterday);
    gen_free(&later);
}

/* The query's test data: record 'k' of 20, one second apart. */
#define QUERY_RECORDS 20
#define TENANT_A      "111111111111"
#define TENANT_B      "222222222222"

static const char *query_tenant(int k)
{
    return k % 5 == 4 ? NULL : k % 2 ? TENANT_A : TENANT_B;
}

static const char *query_action(int k)
{
    return k % 3 == 0 ? "RunInstances" : "DescribeRegions";
}

static const char *query_error(int k)
{
    return k % 5 == 4 ? "AuthFailure" : k == 7 ? "SignatureDoesNotMatch" : NULL;
}

static bool str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Checks that gw_reqlog_query('filter') returns exactly the records 'k' (newest first) for which
 * matches(k) holds, at most 'limit' of them. */
static void assert_query(struct fixture *f, const struct gw_reqlog_filter *filter, char (*ids)[40],
                         bool (*matches)(int k, const void *arg), const void *arg, int limit)
{
    struct nb_error err = {0};
    json_t *rows = gw_reqlog_query(f->pool, filter, &err);
    assert_ok(rows != NULL, err);
    size_t n = 0;
    for (int k = QUERY_RECORDS - 1; k >= 0 && (int)n < limit; k--) {
        if (!matches(k, arg)) {
            continue;
        }
        json_t *row = json_array_get(rows, n++);
        assert_non_null(row);
        assert_string_equal(json_string_value(json_object_get(row, "request_id")), ids[k]);
    }
    assert_int_equal(json_array_size(rows), n);
    json_decref(rows);
}

static bool match_tenant(int k, const void *arg)
{
    return str_eq(query_tenant(k), arg);
}

static bool match_action(int k, const void *arg)
{
    return str_eq(query_action(k), arg);
}

static bool match_error(int k, const void *arg)
{
    return str_eq(query_error(k), arg);
}

static bool match_any_error(int k, const void *arg)
{
    return query_error(k) != NULL;
}

static bool match_range(int k, const void *arg)
{
    const int *range = arg;
    return k >= range[0] && k < range[1];
}

static bool match_all(int k, const void *arg)
{
    return true;
}

static bool match_tenant_errors(int k, const void *arg)
{
    return str_eq(query_tenant(k), arg) && query_error(k) != NULL;
}

/* The operator's query: each filter, their combination, the limit, the newest first, the JSON. */
static void test_query_filters(void **state)
{
    struct fixture *f = *state;
    char ids[QUERY_RECORDS][40];
    /* whole seconds, an hour ago */
    int64_t base = (now_us() / US_PER_SEC - 3600) * US_PER_SEC;
    struct gw_reqlog *log = new_log(f, NULL);
    for (int k = 0; k < QUERY_RECORDS; k++) {
        char params[64];
        snprintf(params, sizeof params, "{\"k\": %d, \"nested\": {\"a\": [1, \"x\"]}}", k);
        assert_int_equal(nb_uuid_new(ids[k], sizeof ids[k]), 0);
        const struct gw_reqlog_record rec = {
            .request_id = ids[k],
            .time_us = base + k * US_PER_SEC + (k == 3 ? 123456 : 0),
            .tenant_id = query_tenant(k),
            .access_key_id = query_tenant(k) ? "NKIAAAAAAAAAAAAAAAAA" : NULL,
            .action = query_action(k),
            .params_json = params,
            .http_status = query_error(k) ? 403 : 200,
            .error_code = query_error(k),
            .latency_us = 500 + k,
            .source_addr = k % 2 ? "2001:db8::1" : "198.51.100.7",
            .user_agent = "nubo-cli/1.0",
            .api = GW_REQLOG_API_EC2,
        };
        write_ok(log, &rec);
    }
    gw_reqlog_free(log);

    assert_query(f, &(struct gw_reqlog_filter){.tenant_id = TENANT_A}, ids, match_tenant, TENANT_A,
                 1000);
    assert_query(f, &(struct gw_reqlog_filter){.action = "RunInstances"}, ids, match_action,
                 "RunInstances", 1000);
    assert_query(f, &(struct gw_reqlog_filter){.error_code = "SignatureDoesNotMatch"}, ids,
                 match_error, "SignatureDoesNotMatch", 1000);
    assert_query(f, &(struct gw_reqlog_filter){.errors_only = true}, ids, match_any_error, NULL,
                 1000);
    assert_query(f, &(struct gw_reqlog_filter){.tenant_id = TENANT_A, .errors_only = true}, ids,
                 match_tenant_errors, TENANT_A, 1000);
    const int range[] = {5, 12};
    assert_query(f,
                 &(struct gw_reqlog_filter){.from_us = base + 5 * US_PER_SEC,
                                            .to_us = base + 12 * US_PER_SEC},
                 ids, match_range, range, 1000);
    assert_query(f, &(struct gw_reqlog_filter){.limit = 3}, ids, match_all, NULL, 3);
    assert_query(f, &(struct gw_reqlog_filter){.tenant_id = "999999999999"}, ids, match_all, NULL,
                 0);

    /* One record in full: record 3 (a RunInstances of tenant A, 0.123456 s past its second). */
    struct nb_error err = {0};
    json_t *rows = gw_reqlog_query(f->pool,
                                   &(struct gw_reqlog_filter){.from_us = base + 3 * US_PER_SEC,
                                                              .to_us = base + 4 * US_PER_SEC},
                                   &err);
    assert_ok(rows != NULL, err);
    assert_int_equal(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    char when[48];
    time_t secs = (time_t)(base / US_PER_SEC + 3);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S.123456Z", &tm);
    json_t *want =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i, s:{s:[i, s]}}, s:i, s:n, s:i, s:s, s:s, s:s}",
                  "request_id", ids[3], "time", when, "tenant_id", TENANT_A, "access_key_id",
                  "NKIAAAAAAAAAAAAAAAAA", "action", "RunInstances", "params", "k", 3, "nested", "a",
                  1, "x", "http_status", 200, "error_code", "latency_us", 503, "source_addr",
                  "2001:db8::1", "user_agent", "nubo-cli/1.0", "api", "ec2");
    if (!json_equal(row, want)) {
        char *got = json_dumps(row, JSON_SORT_KEYS);
        fail_msg("unexpected record: %s", got);
    }
    json_decref(want);
    json_decref(rows);

    /* An authentication failure has no tenant: JSON null. */
    rows = gw_reqlog_query(f->pool, &(struct gw_reqlog_filter){.error_code = "AuthFailure"}, &err);
    assert_ok(rows != NULL, err);
    assert_true(json_is_null(json_object_get(json_array_get(rows, 0), "tenant_id")));
    json_decref(rows);

    /* Bad filters are the caller's error. */
    assert_null(gw_reqlog_query(f->pool, &(struct gw_reqlog_filter){.limit = 1001}, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_null(gw_reqlog_query(f->pool, &(struct gw_reqlog_filter){.limit = -1}, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_null(
        gw_reqlog_query(f->pool, &(struct gw_reqlog_filter){.from_us = 20, .to_us = 10}, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
}

/* A record PostgreSQL would refuse fails alone; text it cannot hold is made storable; a record
 * written twice is stored once. */
static void test_bad_records_fail_alone(void **state)
{
    struct fixture *f = *state;
    struct gw_reqlog *log = new_log(f, NULL);
    struct gen g;
    gen_fill(&g, 0, 1, now_us());
    struct nb_error err = {0};

    /* Checked before queueing. */
    struct gw_reqlog_record bad = g.rec;
    bad.request_id = "not-a-uuid";
    assert_int_equal(gw_reqlog_write(log, &bad, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    bad = g.rec;
    bad.source_addr = "10.0.0.1:8080";
    assert_int_equal(gw_reqlog_write(log, &bad, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    bad = g.rec;
    bad.http_status = 42;
    assert_int_equal(gw_reqlog_write(log, &bad, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);

    /* Not JSON (a caller's bug) is refused by the server: only that write fails, even amid a
     * batch of good ones. */
    pthread_t threads[2];
    struct writer_arg args[2];
    for (int t = 0; t < 2; t++) {
        args[t] =
            (struct writer_arg){.log = log, .thread = t + 1, .count = 200, .base_us = now_us()};
        assert_int_equal(pthread_create(&threads[t], NULL, writer_thread, &args[t]), 0);
    }
    bad = g.rec;
    bad.params_json = "{not json";
    for (int i = 0; i < 5; i++) {
        char id[40];
        assert_int_equal(nb_uuid_new(id, sizeof id), 0);
        bad.request_id = id;
        assert_int_equal(gw_reqlog_write(log, &bad, &err), -1);
        assert_int_equal(err.code, NB_ERR_INVALID);
    }
    for (int t = 0; t < 2; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(args[t].failures, 0);
    }

    /* Bytes that are not UTF-8 become U+FFFD; so does the "\u0000" that jsonb refuses. */
    struct gw_reqlog_record odd = g.rec;
    odd.user_agent = "bad \xff\xfe bytes, a surrogate \xed\xa0\x80, cut \xe2\x82";
    odd.action = "Describe\xc0\xafRegions";
    odd.params_json = "{\"a\": \"x\\u0000y\", \"b\": \"\\\\u0000\"}";
    write_ok(log, &odd);

    /* The same record again: stored once, and the second write succeeds too. */
    struct gen twice;
    gen_fill(&twice, 0, 2, now_us());
    write_ok(log, &twice.rec);
    write_ok(log, &twice.rec);
    gw_reqlog_free(log);

    const char *odd_id[] = {g.id};
    PGresult *res = query(f, ROW_SQL " WHERE request_id = $1", 1, odd_id);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 10), "bad \xef\xbf\xbd\xef\xbf\xbd bytes, a surrogate "
                                                "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd, cut "
                                                "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(PQgetvalue(res, 0, 4), "Describe\xef\xbf\xbd\xef\xbf\xbdRegions");
    json_t *params = json_loads(PQgetvalue(res, 0, 5), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(params, "a")), "x\xef\xbf\xbdy");
    /* an escaped backslash followed by "u0000" is text, not an escape */
    assert_string_equal(json_string_value(json_object_get(params, "b")), "\\u0000");
    json_decref(params);
    PQclear(res);

    const char *twice_id[] = {twice.id};
    assert_int_equal(
        query_int(f, "SELECT count(*) FROM request_log WHERE request_id = $1", 1, twice_id), 1);
    assert_int_equal(query_int(f, "SELECT count(*) FROM request_log", 0, NULL), 400 + 2);
    gen_free(&g);
    gen_free(&twice);
}

/* Not a test: prints how fast the writer alone commits records from many threads. */
static void test_writer_throughput(void **state)
{
    struct fixture *f = *state;
    const int nthreads = 64, count = 400;
    struct gw_reqlog *log = new_log(f, NULL);
    double start = mono_sec();
    assert_int_equal(run_writers(log, nthreads, count, now_us(), NULL), 0);
    double took = mono_sec() - start;
    struct gw_reqlog_stats stats;
    gw_reqlog_get_stats(log, &stats);
    gw_reqlog_free(log);
    printf("    writer throughput: %d threads, %" PRIu64 " records in %.2f s = %.0f records/s; "
           "%" PRIu64 " batches, average %.1f, largest %" PRIu64 "\n",
           nthreads, stats.records, took, (double)stats.records / took, stats.batches,
           (double)stats.records / (double)stats.batches, stats.max_batch_seen);
}

static int group_setup(void **state)
{
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

#define CASE(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(test_concurrent_writes_round_trip),
        CASE(test_max_wait_fills_batches),
        CASE(test_acknowledged_records_survive_crash),
        CASE(test_database_down_fails_then_recovers),
        CASE(test_short_outage_is_ridden_out),
        CASE(test_rows_land_in_daily_partitions),
        CASE(test_query_filters),
        CASE(test_bad_records_fail_alone),
        CASE(test_writer_throughput),
    };
    return cmocka_run_group_tests_name("reqlog", tests, group_setup, group_teardown);
}
