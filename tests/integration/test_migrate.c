/* Integration tests of schema migrations (common/src/migrate.c) against a real, throwaway
 * PostgreSQL 15 cluster: order, idempotence, rollback of a failing file, checksums, file names,
 * several processes migrating at once, and the project's own deploy/migrations.
 *
 * Each case works in a database of its own and a directory of migration files it writes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "nbtest.h"

#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/migrate.h"
#include "nubo/pg.h"

#include "../lib/pgtmp.h"

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REAL_MIGRATIONS_DIR "deploy/migrations"
#define CONCURRENT_RUNS     4
#define CONCURRENT_ROUNDS   5

/* One case's world: a fresh database with a pool on it, and a directory of migration files. */
struct fixture {
    struct nb_test_pg *pg;
    struct nb_pg_pool *pool;
    char dir[64];
};

/* Takes the cluster from '*state' (cmocka hands each case the group's state) and replaces it with
 * a fixture. */
static int fixture_setup(void **state)
{
    static int counter;
    struct nb_test_pg *cluster = *state;
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) {
        return -1;
    }
    f->pg = cluster;
    char dbname[32];
    snprintf(dbname, sizeof dbname, "migrate_%d", ++counter);
    char *conninfo = NULL;
    struct nb_error err = {0};
    snprintf(f->dir, sizeof f->dir, "/tmp/nubo-migrations-XXXXXX");
    if (!mkdtemp(f->dir) || nb_test_pg_create_db(cluster, dbname) < 0 ||
        !(conninfo = nb_test_pg_conninfo_db(cluster, dbname)) ||
        !(f->pool = nb_pg_pool_new(conninfo, CONCURRENT_RUNS, &err))) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        free(conninfo);
        free(f);
        return -1;
    }
    free(conninfo);
    *state = f;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    nb_pg_pool_free(f->pool);
    nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static struct nb_pg_conn *acquire(struct fixture *f)
{
    struct nb_error err = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(f->pool, 5000, &err);
    assert_ok(conn != NULL, err);
    return conn;
}

/* Runs nb_migrate() on a connection of its own. Returns its result, 'err' filled on failure. */
static int migrate(struct fixture *f, const char *dir, struct nb_error *err)
{
    struct nb_pg_conn *conn = acquire(f);
    int n = nb_migrate(conn, dir, err);
    nb_pg_release(conn);
    return n;
}

static int current_version(struct fixture *f)
{
    struct nb_error err = {0};
    struct nb_pg_conn *conn = acquire(f);
    int v = nb_migrate_current(conn, &err);
    nb_pg_release(conn);
    assert_ok(v >= 0, err);
    return v;
}

/* The first column of the first row of 'sql', copied into 'out' ("" when no row). */
static void query_value(struct fixture *f, const char *sql, char *out, size_t size)
{
    struct nb_error err = {0};
    struct nb_pg_conn *conn = acquire(f);
    PGresult *res = nb_pg_exec(conn, sql, 0, NULL, &err);
    nb_pg_release(conn);
    assert_ok(res != NULL, err);
    snprintf(out, size, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
}

static int query_int(struct fixture *f, const char *sql)
{
    char value[32];
    query_value(f, sql, value, sizeof value);
    return atoi(value);
}

/* A description of the public schema (tables, columns, types) and of schema_version, to compare
 * before and after. */
static char *schema_snapshot(struct fixture *f)
{
    char *out = malloc(8192);
    assert_non_null(out);
    query_value(f,
                "SELECT coalesce(string_agg(table_name || '.' || column_name || ':' || data_type, "
                "',' ORDER BY table_name, ordinal_position), '') || '|' || "
                "(SELECT string_agg(version || name || sha256 || applied_at, ',' ORDER BY version) "
                "FROM schema_version) FROM information_schema.columns "
                "WHERE table_schema = 'public'",
                out, 8192);
    return out;
}

#define SQL_0001 "CREATE TABLE account (id bigint PRIMARY KEY, name text NOT NULL);\n"
#define SQL_0002                                                                                   \
    "-- depends on 0001\n"                                                                         \
    "ALTER TABLE account ADD COLUMN email text;\n"                                                 \
    "CREATE INDEX account_email ON account (email);\n"                                             \
    "INSERT INTO account VALUES (1, 'root', 'root@example.com');\n"
#define SQL_0010 "CREATE TABLE quota (account_id bigint REFERENCES account, n int);\n"

static void write_standard_set(const char *dir)
{
    write_file(dir, "0010_quota.sql", SQL_0010);
    write_file(dir, "0002_email.sql", SQL_0002);
    write_file(dir, "0001_account.sql", SQL_0001);
    write_file(dir, "README.md", "not a migration\n");
}

static void test_current_of_empty_database_is_zero(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(current_version(f), 0);
    struct nb_error err = {0};
    assert_int_equal(migrate(f, f->dir, &err), 0);
    assert_int_equal(current_version(f), 0);
}

static void test_applies_in_order(void **state)
{
    struct fixture *f = *state;
    write_standard_set(f->dir);
    struct nb_error err = {0};
    int n = migrate(f, f->dir, &err);
    assert_ok(n == 3, err);
    assert_int_equal(current_version(f), 10);

    char value[256];
    query_value(f,
                "SELECT string_agg(version || ':' || name, ',' ORDER BY applied_at, version) "
                "FROM schema_version",
                value, sizeof value);
    assert_string_equal(value, "1:0001_account.sql,2:0002_email.sql,10:0010_quota.sql");
    char sha[2 * NB_SHA256_LEN + 1];
    nb_sha256_hex(SQL_0002, strlen(SQL_0002), sha);
    query_value(f, "SELECT sha256 FROM schema_version WHERE version = 2", value, sizeof value);
    assert_string_equal(value, sha);
    assert_int_equal(query_int(f, "SELECT count(*) FROM account WHERE email IS NOT NULL"), 1);
    assert_int_equal(query_int(f, "SELECT count(*) FROM quota"), 0);
}

static void test_second_run_applies_nothing(void **state)
{
    struct fixture *f = *state;
    write_standard_set(f->dir);
    struct nb_error err = {0};
    int n = migrate(f, f->dir, &err);
    assert_ok(n == 3, err);
    char *before = schema_snapshot(f);
    n = migrate(f, f->dir, &err);
    assert_ok(n == 0, err);
    char *after = schema_snapshot(f);
    assert_string_equal(before, after);
    assert_int_equal(query_int(f, "SELECT count(*) FROM schema_version"), 3);
    assert_int_equal(query_int(f, "SELECT count(*) FROM account"), 1);
    free(before);
    free(after);

    /* A new file is applied alone. */
    write_file(f->dir, "0011_quota_limit.sql", "ALTER TABLE quota ADD COLUMN max int;");
    n = migrate(f, f->dir, &err);
    assert_ok(n == 1, err);
    assert_int_equal(current_version(f), 11);
}

static void test_failing_migration_rolls_back_whole(void **state)
{
    struct fixture *f = *state;
    write_file(f->dir, "0001_account.sql", SQL_0001);
    write_file(f->dir, "0002_broken.sql",
               "CREATE TABLE partial (x int);\n"
               "INSERT INTO account VALUES (7, 'half');\n"
               "SELECT * FROM no_such_table;\n");
    write_file(f->dir, "0003_after.sql", "CREATE TABLE after_broken (x int);\n");
    struct nb_error err = {0};
    assert_int_equal(migrate(f, f->dir, &err), -1);
    assert_int_equal(err.code, NB_ERR_DB);
    assert_non_null(strstr(err.msg, "\"0002_broken.sql\""));
    assert_non_null(strstr(err.msg, "no_such_table"));
    assert_string_equal(err.detail, "SQLSTATE 42P01");

    /* 0001 stays applied; nothing of 0002 remains; 0003 was not tried. */
    assert_int_equal(current_version(f), 1);
    assert_int_equal(query_int(f, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(query_int(f, "SELECT count(*) FROM account"), 0);
    char value[64];
    query_value(f,
                "SELECT coalesce(to_regclass('partial')::text, 'none') || ' ' || "
                "coalesce(to_regclass('after_broken')::text, 'none')",
                value, sizeof value);
    assert_string_equal(value, "none none");

    /* Once fixed, the run goes on from there. */
    write_file(f->dir, "0002_broken.sql", "CREATE TABLE partial (x int);\n");
    int n = migrate(f, f->dir, &err);
    assert_ok(n == 2, err);
    assert_int_equal(current_version(f), 3);
}

static void test_changed_checksum_is_an_error(void **state)
{
    struct fixture *f = *state;
    write_standard_set(f->dir);
    struct nb_error err = {0};
    int n = migrate(f, f->dir, &err);
    assert_ok(n == 3, err);

    write_file(f->dir, "0002_email.sql", SQL_0002 "-- edited after it shipped\n");
    write_file(f->dir, "0011_more.sql", "CREATE TABLE more (x int);\n");
    assert_int_equal(migrate(f, f->dir, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.msg, "\"0002_email.sql\""));
    assert_non_null(strstr(err.msg, "changed"));
    /* Nothing else was applied. */
    assert_int_equal(current_version(f), 10);
}

static void test_file_names_are_checked(void **state)
{
    struct fixture *f = *state;
    struct nb_error err = {0};
    const char *bad[] = {"init.sql",      "0001-init.sql",  "0001_.sql",
                         "0000_zero.sql", "0001_in it.sql", "x0001_init.sql"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(f->dir, bad[i], "SELECT 1;\n");
        assert_int_equal(migrate(f, f->dir, &err), -1);
        assert_int_equal(err.code, NB_ERR_INVALID);
        if (!strstr(err.msg, bad[i])) {
            fail_msg("\"%s\" not named in: %s", bad[i], err.msg);
        }
        char path[256];
        snprintf(path, sizeof path, "%s/%s", f->dir, bad[i]);
        unlink(path);
    }

    write_file(f->dir, "0001_one.sql", "SELECT 1;\n");
    write_file(f->dir, "01_also_one.sql", "SELECT 1;\n");
    assert_int_equal(migrate(f, f->dir, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.msg, "duplicate migration version 1"));

    assert_int_equal(migrate(f, "/nonexistent/nubo/migrations", &err), -1);
    assert_int_equal(err.code, NB_ERR_IO);
    assert_int_equal(current_version(f), 0);
}

static void test_gap_before_applied_version_is_an_error(void **state)
{
    struct fixture *f = *state;
    write_file(f->dir, "0001_a.sql", "CREATE TABLE a (x int);\n");
    write_file(f->dir, "0003_c.sql", "CREATE TABLE c (x int);\n");
    struct nb_error err = {0};
    int n = migrate(f, f->dir, &err);
    assert_ok(n == 2, err);
    write_file(f->dir, "0002_b.sql", "CREATE TABLE b (x int);\n");
    assert_int_equal(migrate(f, f->dir, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_non_null(strstr(err.msg, "\"0002_b.sql\""));
}

static void test_comment_only_file_is_recorded(void **state)
{
    struct fixture *f = *state;
    write_file(f->dir, "0001_nothing.sql", "-- intentionally empty\n");
    write_file(f->dir, "0002_empty.sql", "");
    struct nb_error err = {0};
    int n = migrate(f, f->dir, &err);
    assert_ok(n == 2, err);
    assert_int_equal(current_version(f), 2);
}

struct runner {
    struct fixture *f;
    const char *dir;
    pthread_barrier_t *start;
    int applied;
    struct nb_error err;
};

static void *run_migrate(void *arg)
{
    struct runner *r = arg;
    struct nb_pg_conn *conn = nb_pg_acquire(r->f->pool, 5000, &r->err);
    pthread_barrier_wait(r->start);
    r->applied = conn ? nb_migrate(conn, r->dir, &r->err) : -1;
    nb_pg_release(conn);
    return NULL;
}

/* Runs CONCURRENT_RUNS migrations of 'dir' at once, each on its own connection. Returns the sum
 * of what they applied; fails the case if any of them failed. */
static int migrate_concurrently(struct fixture *f, const char *dir)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, CONCURRENT_RUNS);
    pthread_t threads[CONCURRENT_RUNS];
    struct runner runners[CONCURRENT_RUNS];
    for (int i = 0; i < CONCURRENT_RUNS; i++) {
        runners[i] = (struct runner){.f = f, .dir = dir, .start = &start};
        assert_int_equal(pthread_create(&threads[i], NULL, run_migrate, &runners[i]), 0);
    }
    for (int i = 0; i < CONCURRENT_RUNS; i++) {
        pthread_join(threads[i], NULL);
    }
    pthread_barrier_destroy(&start);
    int total = 0;
    for (int i = 0; i < CONCURRENT_RUNS; i++) {
        if (runners[i].applied < 0) {
            fail_msg("run %d failed: %s: %s (%s)", i, nb_errcode_name(runners[i].err.code),
                     runners[i].err.msg, runners[i].err.detail);
        }
        total += runners[i].applied;
    }
    return total;
}

/* Drops everything migrations made, so that a round can start again from an empty database. */
static void reset_database(struct fixture *f)
{
    struct nb_error err = {0};
    struct nb_pg_conn *conn = acquire(f);
    assert_ok(nb_pg_command(conn,
                            "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
                            "GRANT ALL ON SCHEMA public TO public",
                            &err) == 0,
              err);
    nb_pg_release(conn);
}

static void test_concurrent_runs_apply_each_file_once(void **state)
{
    struct fixture *f = *state;
    write_standard_set(f->dir);
    /* Slow files widen the window in which the runs overlap. */
    write_file(f->dir, "0003_slow.sql", "SELECT pg_sleep(0.05); CREATE TABLE slow (x int);\n");
    write_file(f->dir, "0004_slower.sql",
               "CREATE TABLE slower (x int); SELECT pg_sleep(0.05); "
               "INSERT INTO slower VALUES (1);\n");
    for (int round = 0; round < CONCURRENT_ROUNDS; round++) {
        reset_database(f);
        assert_int_equal(migrate_concurrently(f, f->dir), 5);
        assert_int_equal(query_int(f, "SELECT count(*) FROM schema_version"), 5);
        assert_int_equal(query_int(f, "SELECT count(DISTINCT version) FROM schema_version"), 5);
        assert_int_equal(current_version(f), 10);
        assert_int_equal(query_int(f, "SELECT count(*) FROM account"), 1);
        assert_int_equal(query_int(f, "SELECT count(*) FROM slower"), 1);
        /* And once more at once: all up to date. */
        assert_int_equal(migrate_concurrently(f, f->dir), 0);
    }
}

/* Counts the .sql files of 'dir' and their highest version; -1 when 'dir' cannot be read. */
static int count_sql_files(const char *dir, int *max_version)
{
    DIR *d = opendir(dir);
    if (!d) {
        return -1;
    }
    int n = 0;
    *max_version = 0;
    const struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] != '.' && len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0) {
            n++;
            int v = atoi(e->d_name);
            *max_version = v > *max_version ? v : *max_version;
        }
    }
    closedir(d);
    return n;
}

/* Finds the project's own migrations: under the working directory (tests run from the repository
 * root), else relative to this program (build/MODE/tests/test_migrate). Stores the directory in
 * 'dir' and returns the number of files, or 0 after saying why the case is skipped. */
static int real_migrations(char *dir, size_t size, int *max_version)
{
    snprintf(dir, size, "%s", REAL_MIGRATIONS_DIR);
    int n = count_sql_files(dir, max_version);
    char exe[1024];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 && len > 0) {
        exe[len] = '\0';
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (slash) {
                *slash = '\0';
            }
        }
        snprintf(dir, size, "%s/%s", exe, REAL_MIGRATIONS_DIR);
        n = count_sql_files(dir, max_version);
    }
    if (n <= 0) {
        print_message("no migrations in %s: skipped\n", REAL_MIGRATIONS_DIR);
        return 0;
    }
    return n;
}

static void test_real_migrations_apply_twice(void **state)
{
    struct fixture *f = *state;
    char dir[1200];
    int max_version;
    int files = real_migrations(dir, sizeof dir, &max_version);
    if (files == 0) {
        skip();
    }
    struct nb_error err = {0};
    int n = migrate(f, dir, &err);
    assert_ok(n == files, err);
    assert_int_equal(current_version(f), max_version);
    char *before = schema_snapshot(f);
    n = migrate(f, dir, &err);
    assert_ok(n == 0, err);
    char *after = schema_snapshot(f);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_real_migrations_concurrently(void **state)
{
    struct fixture *f = *state;
    char dir[1200];
    int max_version;
    int files = real_migrations(dir, sizeof dir, &max_version);
    if (files == 0) {
        skip();
    }
    for (int round = 0; round < 3; round++) {
        reset_database(f);
        assert_int_equal(migrate_concurrently(f, dir), files);
        assert_int_equal(query_int(f, "SELECT count(DISTINCT version) FROM schema_version"), files);
        assert_int_equal(current_version(f), max_version);
    }
}

static int group_setup(void **state)
{
    *state = nb_test_pg_start();
    return *state ? 0 : -1;
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
        CASE(test_current_of_empty_database_is_zero),
        CASE(test_applies_in_order),
        CASE(test_second_run_applies_nothing),
        CASE(test_failing_migration_rolls_back_whole),
        CASE(test_changed_checksum_is_an_error),
        CASE(test_file_names_are_checked),
        CASE(test_gap_before_applied_version_is_an_error),
        CASE(test_comment_only_file_is_recorded),
        CASE(test_concurrent_runs_apply_each_file_once),
        CASE(test_real_migrations_apply_twice),
        CASE(test_real_migrations_concurrently),
    };
    /* cmocka 1.1.5 does not read the variable itself. */
    const char *filter = getenv("CMOCKA_TEST_FILTER");
    if (filter && *filter) {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests_name("migrate", tests, group_setup, group_teardown);
}
