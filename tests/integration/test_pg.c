/* Integration tests of the PostgreSQL pool (common/src/pg.c) against a real, throwaway
 * PostgreSQL 15 cluster: statements, errors, transactions, waiting for a connection, threads,
 * and recovery when the server is killed or stopped and started again under a live pool. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "nbtest.h"

#include "nubo/error.h"
#include "nubo/pg.h"

#include "../lib/pgtmp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A server that is down must be reported well within this (libpq's connect_timeout is 5 s). */
#define DOWN_REPORT_MAX_MS 6000

static struct nb_pg_pool *new_pool(struct nb_test_pg *pg, int size)
{
    struct nb_error err = {0};
    struct nb_pg_pool *pool = nb_pg_pool_new(nb_test_pg_conninfo(pg), size, &err);
    assert_ok(pool != NULL, err);
    return pool;
}

static struct nb_pg_conn *acquire(struct nb_pg_pool *pool)
{
    struct nb_error err = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(pool, 5000, &err);
    assert_ok(conn != NULL, err);
    return conn;
}

static void command(struct nb_pg_conn *conn, const char *sql)
{
    struct nb_error err = {0};
    assert_ok(nb_pg_command(conn, sql, &err) == 0, err);
}

/* Runs 'sql' (with its parameters) and returns the first column of its first row, copied into
 * 'out'; "(null)" for SQL NULL, "(none)" when there is no row. */
static void query_value(struct nb_pg_conn *conn, const char *sql, int nparams,
                        const char *const *params, char *out, size_t size)
{
    struct nb_error err = {0};
    PGresult *res = nb_pg_exec(conn, sql, nparams, params, &err);
    assert_ok(res != NULL, err);
    if (PQntuples(res) == 0) {
        snprintf(out, size, "(none)");
    } else if (PQgetisnull(res, 0, 0)) {
        snprintf(out, size, "(null)");
    } else {
        snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
}

/* Each case starts with the server running, whatever an earlier case left. */
static int ensure_running(void **state)
{
    return nb_test_pg_start_again(*state) == 0 ? 0 : -1;
}

static void test_acquire_release(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 2);
    struct nb_pg_conn *a = acquire(pool);
    struct nb_pg_conn *b = acquire(pool);
    assert_ptr_not_equal(a, b);
    assert_non_null(nb_pg_raw(a));
    assert_int_equal(PQstatus(nb_pg_raw(b)), CONNECTION_OK);
    nb_pg_release(a);
    struct nb_pg_conn *c = acquire(pool);
    assert_ptr_equal(c, a);
    nb_pg_release(b);
    nb_pg_release(c);
    nb_pg_release(NULL);
    nb_pg_pool_free(pool);
    nb_pg_pool_free(NULL);
}

static void test_acquire_times_out_when_all_taken(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 2);
    struct nb_pg_conn *a = acquire(pool);
    struct nb_pg_conn *b = acquire(pool);
    struct nb_error err = {0};

    long start = nb_monotonic_ms();
    assert_null(nb_pg_acquire(pool, 150, &err));
    long elapsed = nb_monotonic_ms() - start;
    assert_int_equal(err.code, NB_ERR_TIMEOUT);
    assert_true(elapsed >= 140);
    assert_true(elapsed < 2000);

    assert_null(nb_pg_acquire(pool, 0, &err));
    assert_int_equal(err.code, NB_ERR_TIMEOUT);

    nb_pg_release(b);
    struct nb_pg_conn *c = nb_pg_acquire(pool, 0, &err);
    assert_ok(c != NULL, err);
    nb_pg_release(a);
    nb_pg_release(c);
    nb_pg_pool_free(pool);
}

struct delayed_release {
    struct nb_pg_conn *conn;
    int delay_ms;
};

static void *release_later(void *arg)
{
    struct delayed_release *d = arg;
    usleep((useconds_t)d->delay_ms * 1000);
    nb_pg_release(d->conn);
    return NULL;
}

static void test_acquire_waits_for_release(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 1);
    struct delayed_release d = {.conn = acquire(pool), .delay_ms = 200};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, release_later, &d), 0);

    struct nb_error err = {0};
    long start = nb_monotonic_ms();
    struct nb_pg_conn *conn = nb_pg_acquire(pool, 5000, &err);
    long elapsed = nb_monotonic_ms() - start;
    assert_ok(conn != NULL, err);
    assert_ptr_equal(conn, d.conn);
    assert_true(elapsed >= 150);
    assert_true(elapsed < 4000);
    pthread_join(thread, NULL);
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
}

static void test_exec_with_params(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 1);
    struct nb_pg_conn *conn = acquire(pool);
    command(conn,
            "DROP TABLE IF EXISTS exec_kv; CREATE TABLE exec_kv (k text PRIMARY KEY, v text)");

    struct nb_error err = {0};
    const char *row1[] = {"a", "it's \"quoted\""};
    const char *row2[] = {"b", NULL};
    PGresult *res = nb_pg_exec(conn, "INSERT INTO exec_kv VALUES ($1, $2)", 2, row1, &err);
    assert_ok(res != NULL, err);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(res), "1");
    PQclear(res);
    res = nb_pg_exec(conn, "INSERT INTO exec_kv VALUES ($1, $2)", 2, row2, &err);
    assert_ok(res != NULL, err);
    PQclear(res);

    char value[128];
    const char *key_a[] = {"a"};
    const char *key_b[] = {"b"};
    const char *key_c[] = {"c"};
    query_value(conn, "SELECT v FROM exec_kv WHERE k = $1", 1, key_a, value, sizeof value);
    assert_string_equal(value, "it's \"quoted\"");
    query_value(conn, "SELECT v FROM exec_kv WHERE k = $1", 1, key_b, value, sizeof value);
    assert_string_equal(value, "(null)");
    query_value(conn, "SELECT v FROM exec_kv WHERE k = $1", 1, key_c, value, sizeof value);
    assert_string_equal(value, "(none)");

    const char *numbers[] = {"2", "3"};
    query_value(conn, "SELECT $1::int + $2::int", 2, numbers, value, sizeof value);
    assert_string_equal(value, "5");
    query_value(conn, "SELECT count(*) FROM exec_kv", 0, NULL, value, sizeof value);
    assert_string_equal(value, "2");

    nb_pg_release(conn);
    nb_pg_pool_free(pool);
}

static void test_command_runs_several_statements(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 1);
    struct nb_pg_conn *conn = acquire(pool);
    command(conn, "DROP TABLE IF EXISTS cmd_multi;\n"
                  "-- a comment\n"
                  "CREATE TABLE cmd_multi (n int);\n"
                  "INSERT INTO cmd_multi VALUES (1), (2);\n");
    command(conn, "-- nothing but a comment\n");
    char value[32];
    query_value(conn, "SELECT sum(n) FROM cmd_multi", 0, NULL, value, sizeof value);
    assert_string_equal(value, "3");

    struct nb_error err = {0};
    assert_int_equal(nb_pg_command(conn, "INSERT INTO cmd_multi VALUES (3); SELEC 1", &err), -1);
    assert_int_equal(err.code, NB_ERR_DB);
    /* A simple query runs as one implicit transaction: the INSERT was rolled back. */
    query_value(conn, "SELECT sum(n) FROM cmd_multi", 0, NULL, value, sizeof value);
    assert_string_equal(value, "3");
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
}

static void test_prepared_statements(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 2);
    struct nb_error err = {0};
    assert_ok(nb_pg_pool_prepare(pool, "double", "SELECT $1::int * 2", &err) == 0, err);
    assert_ok(nb_pg_pool_prepare(pool, "hello", "SELECT 'hello ' || $1::text", &err) == 0, err);
    assert_int_equal(nb_pg_pool_prepare(pool, "double", "SELECT 1", &err), -1);
    assert_int_equal(err.code, NB_ERR_CONFLICT);

    /* Both connections at once, so that each prepares for itself, then again once prepared. */
    struct nb_pg_conn *a = acquire(pool);
    struct nb_pg_conn *b = acquire(pool);
    struct nb_pg_conn *conns[] = {a, b, a, b};
    for (int i = 0; i < 4; i++) {
        const char *p[] = {"21"};
        PGresult *res = nb_pg_exec_prepared(conns[i], "double", 1, p, &err);
        assert_ok(res != NULL, err);
        assert_string_equal(PQgetvalue(res, 0, 0), "42");
        PQclear(res);
        const char *q[] = {"nubo"};
        res = nb_pg_exec_prepared(conns[i], "hello", 1, q, &err);
        assert_ok(res != NULL, err);
        assert_string_equal(PQgetvalue(res, 0, 0), "hello nubo");
        PQclear(res);
    }
    const char *null_param[] = {NULL};
    PGresult *res = nb_pg_exec_prepared(a, "double", 1, null_param, &err);
    assert_ok(res != NULL, err);
    assert_true(PQgetisnull(res, 0, 0));
    PQclear(res);

    assert_null(nb_pg_exec_prepared(a, "nonexistent", 0, NULL, &err));
    assert_int_equal(err.code, NB_ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "\"nonexistent\""));

    /* Deallocated behind the pool's back: prepared again. */
    command(a, "DEALLOCATE ALL");
    const char *p[] = {"5"};
    res = nb_pg_exec_prepared(a, "double", 1, p, &err);
    assert_ok(res != NULL, err);
    assert_string_equal(PQgetvalue(res, 0, 0), "10");
    PQclear(res);

    nb_pg_release(a);
    nb_pg_release(b);
    nb_pg_pool_free(pool);
}

static void test_unique_violation_is_conflict(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 1);
    struct nb_pg_conn *conn = acquire(pool);
    command(conn, "DROP TABLE IF EXISTS uniq; CREATE TABLE uniq (id int PRIMARY KEY)");
    command(conn, "INSERT INTO uniq VALUES (1)");

    struct nb_error err = {0};
    const char *p[] = {"1"};
    assert_null(nb_pg_exec(conn, "INSERT INTO uniq VALUES ($1)", 1, p, &err));
    assert_int_equal(err.code, NB_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "duplicate key"));
    assert_non_null(strstr(err.detail, "SQLSTATE 23505"));
    assert_non_null(strstr(err.detail, "(id)=(1)"));

    /* The connection is still usable. */
    char value[16];
    query_value(conn, "SELECT count(*) FROM uniq", 0, NULL, value, sizeof value);
    assert_string_equal(value, "1");
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
}

static void test_syntax_error_is_db_error(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 1);
    struct nb_pg_conn *conn = acquire(pool);
    struct nb_error err = {0};
    assert_null(nb_pg_exec(conn, "SELEC 1", 0, NULL, &err));
    assert_int_equal(err.code, NB_ERR_DB);
    assert_non_null(strstr(err.msg, "syntax error"));
    assert_string_equal(err.detail, "SQLSTATE 42601");

    assert_null(nb_pg_exec(conn, "SELECT * FROM no_such_table", 0, NULL, &err));
    assert_int_equal(err.code, NB_ERR_DB);
    assert_string_equal(err.msg, "relation \"no_such_table\" does not exist");
    assert_string_equal(err.detail, "SQLSTATE 42P01");
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
}

static void test_data_errors_are_invalid(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 1);
    struct nb_pg_conn *conn = acquire(pool);
    struct nb_error err = {0};
    const char *p[] = {"not a number"};
    assert_null(nb_pg_exec(conn, "SELECT $1::int", 1, p, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.detail, "SQLSTATE 22P02");

    command(conn, "DROP TABLE IF EXISTS not_null_t; CREATE TABLE not_null_t (v text NOT NULL)");
    const char *null_param[] = {NULL};
    assert_null(nb_pg_exec(conn, "INSERT INTO not_null_t VALUES ($1)", 1, null_param, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.detail, "SQLSTATE 23502"));
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
}

static void test_transactions(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 1);
    struct nb_pg_conn *conn = acquire(pool);
    struct nb_error err = {0};
    char value[16];
    command(conn, "DROP TABLE IF EXISTS tx; CREATE TABLE tx (id int PRIMARY KEY)");

    /* rolled back */
    assert_false(nb_pg_in_transaction(conn));
    assert_ok(nb_pg_begin(conn, &err) == 0, err);
    assert_true(nb_pg_in_transaction(conn));
    assert_int_equal(nb_pg_begin(conn, &err), -1);
    command(conn, "INSERT INTO tx VALUES (1)");
    nb_pg_rollback(conn);
    assert_false(nb_pg_in_transaction(conn));
    query_value(conn, "SELECT count(*) FROM tx", 0, NULL, value, sizeof value);
    assert_string_equal(value, "0");

    /* committed */
    assert_ok(nb_pg_begin(conn, &err) == 0, err);
    command(conn, "INSERT INTO tx VALUES (1)");
    assert_ok(nb_pg_commit(conn, &err) == 0, err);
    assert_false(nb_pg_in_transaction(conn));
    query_value(conn, "SELECT count(*) FROM tx", 0, NULL, value, sizeof value);
    assert_string_equal(value, "1");

    /* a failed statement dooms the transaction: commit reports it and rolls back */
    assert_ok(nb_pg_begin(conn, &err) == 0, err);
    command(conn, "INSERT INTO tx VALUES (2)");
    assert_int_equal(nb_pg_command(conn, "INSERT INTO tx VALUES (1)", &err), -1);
    assert_int_equal(err.code, NB_ERR_CONFLICT);
    assert_true(nb_pg_in_transaction(conn));
    assert_int_equal(nb_pg_commit(conn, &err), -1);
    assert_non_null(strstr(err.detail, "25P02"));
    assert_false(nb_pg_in_transaction(conn));
    assert_int_equal(nb_pg_commit(conn, &err), -1);
    query_value(conn, "SELECT count(*) FROM tx", 0, NULL, value, sizeof value);
    assert_string_equal(value, "1");

    /* released inside a transaction: rolled back before the next user gets the connection */
    assert_ok(nb_pg_begin(conn, &err) == 0, err);
    command(conn, "INSERT INTO tx VALUES (3)");
    nb_pg_release(conn);
    conn = acquire(pool);
    assert_false(nb_pg_in_transaction(conn));
    query_value(conn, "SELECT count(*) FROM tx", 0, NULL, value, sizeof value);
    assert_string_equal(value, "1");

    nb_pg_release(conn);
    nb_pg_pool_free(pool);
}

#define THREADS           6
#define THREAD_ITERATIONS 100

struct worker {
    struct nb_pg_pool *pool;
    int failures;
    struct nb_error err;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < THREAD_ITERATIONS; i++) {
        struct nb_pg_conn *conn = nb_pg_acquire(w->pool, 10000, &w->err);
        if (!conn) {
            w->failures++;
            continue;
        }
        PGresult *res = NULL;
        if (i % 2 == 0) {
            res = nb_pg_exec_prepared(conn, "bump", 0, NULL, &w->err);
        } else if (nb_pg_begin(conn, &w->err) == 0) {
            res = nb_pg_exec(conn, "UPDATE counter SET n = n + 1", 0, NULL, &w->err);
            if (res && nb_pg_commit(conn, &w->err) < 0) {
                PQclear(res);
                res = NULL;
            }
        }
        if (!res) {
            w->failures++;
        }
        PQclear(res);
        nb_pg_release(conn);
    }
    return NULL;
}

static void test_concurrent_threads(void **state)
{
    struct nb_pg_pool *pool = new_pool(*state, 3);
    struct nb_error err = {0};
    assert_ok(nb_pg_pool_prepare(pool, "bump", "UPDATE counter SET n = n + 1", &err) == 0, err);
    struct nb_pg_conn *conn = acquire(pool);
    command(conn, "DROP TABLE IF EXISTS counter; CREATE TABLE counter (n int);"
                  "INSERT INTO counter VALUES (0)");
    nb_pg_release(conn);

    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.pool = pool};
        assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
    }
    for (int i = 0; i < THREADS; i++) {
        if (workers[i].failures) {
            fail_msg("thread %d: %d failures, last: %s (%s)", i, workers[i].failures,
                     workers[i].err.msg, workers[i].err.detail);
        }
    }
    conn = acquire(pool);
    char value[16];
    query_value(conn, "SELECT n FROM counter", 0, NULL, value, sizeof value);
    assert_int_equal(atoi(value), THREADS * THREAD_ITERATIONS);
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
}

static void test_pool_new_fails_fast_without_server(void **state)
{
    struct nb_error err = {0};
    long start = nb_monotonic_ms();
    struct nb_pg_pool *pool =
        nb_pg_pool_new("host=/nonexistent-nubo-dir port=5 dbname=nubo user=nubo", 2, &err);
    assert_null(pool);
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "could not connect to PostgreSQL"));
    assert_true(nb_monotonic_ms() - start < DOWN_REPORT_MAX_MS);

    assert_null(nb_pg_pool_new(nb_test_pg_conninfo(*state), 0, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
}

/* The statements every connection runs before and after the outage. */
static void use_every_connection(struct nb_pg_pool *pool, int size)
{
    struct nb_pg_conn *conns[8];
    assert_true(size <= 8);
    for (int i = 0; i < size; i++) {
        conns[i] = acquire(pool);
    }
    for (int i = 0; i < size; i++) {
        struct nb_error err = {0};
        char p0[16];
        snprintf(p0, sizeof p0, "%d", i);
        const char *p[] = {p0};
        PGresult *res = nb_pg_exec_prepared(conns[i], "double", 1, p, &err);
        assert_ok(res != NULL, err);
        assert_int_equal(atoi(PQgetvalue(res, 0, 0)), 2 * i);
        PQclear(res);
        assert_ok(nb_pg_begin(conns[i], &err) == 0, err);
        command(conns[i], "INSERT INTO restart_log VALUES (1)");
        assert_ok(nb_pg_commit(conns[i], &err) == 0, err);
    }
    for (int i = 0; i < size; i++) {
        nb_pg_release(conns[i]);
    }
}

/* With the server down, every way into the pool reports NB_ERR_UNAVAILABLE, quickly. */
static void check_down(struct nb_pg_pool *pool, int size)
{
    for (int i = 0; i < size + 1; i++) {
        struct nb_error err = {0};
        long start = nb_monotonic_ms();
        struct nb_pg_conn *conn = nb_pg_acquire(pool, 1000, &err);
        if (conn) {
            /* It looked healthy: the loss shows when it is used. */
            const char *p[] = {"1"};
            PGresult *res = nb_pg_exec_prepared(conn, "double", 1, p, &err);
            assert_null(res);
            nb_pg_release(conn);
        }
        long elapsed = nb_monotonic_ms() - start;
        if (err.code != NB_ERR_UNAVAILABLE) {
            fail_msg("attempt %d: expected unavailable, got %s: %s", i, nb_errcode_name(err.code),
                     err.msg);
        }
        assert_true(elapsed < DOWN_REPORT_MAX_MS);
    }
}

static void restart_case(struct nb_test_pg *pg, int (*take_down)(struct nb_test_pg *))
{
    enum { SIZE = 3 };
    struct nb_pg_pool *pool = new_pool(pg, SIZE);
    struct nb_error err = {0};
    assert_ok(nb_pg_pool_prepare(pool, "double", "SELECT $1::int * 2", &err) == 0, err);
    struct nb_pg_conn *conn = acquire(pool);
    command(conn, "DROP TABLE IF EXISTS restart_log; CREATE TABLE restart_log (n int)");
    nb_pg_release(conn);
    use_every_connection(pool, SIZE);

    assert_int_equal(take_down(pg), 0);
    check_down(pool, SIZE);
    assert_int_equal(nb_test_pg_start_again(pg), 0);

    /* Same pool, every connection, prepared statements included. */
    use_every_connection(pool, SIZE);
    use_every_connection(pool, SIZE);
    conn = acquire(pool);
    char value[16];
    query_value(conn, "SELECT count(*) FROM restart_log", 0, NULL, value, sizeof value);
    assert_int_equal(atoi(value), 3 * SIZE);
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
}

static void test_recovers_after_server_killed(void **state)
{
    restart_case(*state, nb_test_pg_kill);
}

static void test_recovers_after_server_stopped(void **state)
{
    restart_case(*state, nb_test_pg_stop);
}

static void test_recovers_after_immediate_shutdown(void **state)
{
    restart_case(*state, nb_test_pg_stop_immediate);
}

/* Restarted while nobody looked: every pooled connection still looks healthy when acquired, so
 * each first statement meets the loss and is retried on a fresh session, unseen by the caller. */
static void test_statements_retried_after_unnoticed_restart(void **state)
{
    struct nb_test_pg *pg = *state;
    enum { SIZE = 3 };
    struct nb_pg_pool *pool = new_pool(pg, SIZE);
    struct nb_error err = {0};
    assert_ok(nb_pg_pool_prepare(pool, "double", "SELECT $1::int * 2", &err) == 0, err);
    struct nb_pg_conn *conn = acquire(pool);
    command(conn, "DROP TABLE IF EXISTS restart_log; CREATE TABLE restart_log (n int)");
    nb_pg_release(conn);
    use_every_connection(pool, SIZE);
    assert_int_equal(nb_test_pg_kill(pg), 0);
    assert_int_equal(nb_test_pg_start_again(pg), 0);
    use_every_connection(pool, SIZE);

    assert_int_equal(nb_test_pg_stop(pg), 0);
    assert_int_equal(nb_test_pg_start_again(pg), 0);
    use_every_connection(pool, SIZE);
    nb_pg_pool_free(pool);
}

static void test_connection_lost_inside_transaction(void **state)
{
    struct nb_test_pg *pg = *state;
    struct nb_pg_pool *pool = new_pool(pg, 1);
    struct nb_pg_conn *conn = acquire(pool);
    struct nb_error err = {0};
    command(conn, "DROP TABLE IF EXISTS lost_tx; CREATE TABLE lost_tx (n int)");
    assert_ok(nb_pg_begin(conn, &err) == 0, err);
    command(conn, "INSERT INTO lost_tx VALUES (1)");

    assert_int_equal(nb_test_pg_kill(pg), 0);
    assert_int_equal(nb_test_pg_start_again(pg), 0);

    /* Not retried: half a transaction must not silently continue on a new session. */
    assert_int_equal(nb_pg_command(conn, "INSERT INTO lost_tx VALUES (2)", &err), -1);
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
    assert_true(nb_pg_in_transaction(conn));
    assert_int_equal(nb_pg_command(conn, "INSERT INTO lost_tx VALUES (3)", &err), -1);
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
    nb_pg_rollback(conn);
    assert_false(nb_pg_in_transaction(conn));

    /* After the rollback, the connection recovers by itself on its next statement. */
    char value[16];
    query_value(conn, "SELECT count(*) FROM lost_tx", 0, NULL, value, sizeof value);
    assert_string_equal(value, "0");
    nb_pg_release(conn);

    /* A commit that loses the connection fails and leaves no transaction behind. */
    conn = acquire(pool);
    assert_ok(nb_pg_begin(conn, &err) == 0, err);
    command(conn, "INSERT INTO lost_tx VALUES (4)");
    assert_int_equal(nb_test_pg_stop(pg), 0);
    assert_int_equal(nb_pg_commit(conn, &err), -1);
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
    assert_false(nb_pg_in_transaction(conn));
    nb_pg_release(conn);
    assert_int_equal(nb_test_pg_start_again(pg), 0);
    conn = acquire(pool);
    query_value(conn, "SELECT count(*) FROM lost_tx", 0, NULL, value, sizeof value);
    assert_string_equal(value, "0");
    nb_pg_release(conn);
    nb_pg_pool_free(pool);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_acquire_release, ensure_running),
        cmocka_unit_test_setup(test_acquire_times_out_when_all_taken, ensure_running),
        cmocka_unit_test_setup(test_acquire_waits_for_release, ensure_running),
        cmocka_unit_test_setup(test_exec_with_params, ensure_running),
        cmocka_unit_test_setup(test_command_runs_several_statements, ensure_running),
        cmocka_unit_test_setup(test_prepared_statements, ensure_running),
        cmocka_unit_test_setup(test_unique_violation_is_conflict, ensure_running),
        cmocka_unit_test_setup(test_syntax_error_is_db_error, ensure_running),
        cmocka_unit_test_setup(test_data_errors_are_invalid, ensure_running),
        cmocka_unit_test_setup(test_transactions, ensure_running),
        cmocka_unit_test_setup(test_concurrent_threads, ensure_running),
        cmocka_unit_test_setup(test_pool_new_fails_fast_without_server, ensure_running),
        cmocka_unit_test_setup(test_recovers_after_server_killed, ensure_running),
        cmocka_unit_test_setup(test_recovers_after_server_stopped, ensure_running),
        cmocka_unit_test_setup(test_recovers_after_immediate_shutdown, ensure_running),
        cmocka_unit_test_setup(test_statements_retried_after_unnoticed_restart, ensure_running),
        cmocka_unit_test_setup(test_connection_lost_inside_transaction, ensure_running),
    };
    /* cmocka 1.1.5 does not read the variable itself. */
    const char *filter = getenv("CMOCKA_TEST_FILTER");
    if (filter && *filter) {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("pg", tests, group_setup, group_teardown);
}
