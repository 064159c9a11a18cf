/* Schema migrations (see migrate.h).
 *
 * Concurrency: every transaction that reads or writes schema_version first takes one
 * transaction-scoped advisory lock, so migration transactions of several processes run one after
 * the other. A process first reads what is applied; then, for each file it found missing, it
 * takes the lock again and looks once more before applying it, since another process may have
 * applied it in between. The lock is released by COMMIT or ROLLBACK, so no error path can leave
 * it held on a pooled connection.
 *
 * Files ending in ".sql" must be named NNNN_name.sql; other files (a README) are ignored. A file
 * may hold several statements, but not ones that cannot run inside a transaction block
 * (CREATE INDEX CONCURRENTLY), nor its own BEGIN or COMMIT. */
#include "nubo/migrate.h"

#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The advisory lock key: "nubomigr" in ASCII, a number no other nubo lock uses. */
#define LOCK_SQL "SELECT pg_advisory_xact_lock(7959390420474849650)"

/* READ COMMITTED whatever the session default: each statement after the lock must see what the
 * previous holder of the lock committed. */
#define BEGIN_SQL "BEGIN ISOLATION LEVEL READ COMMITTED"

#define CREATE_SQL                                                                                 \
    "CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY, name text NOT NULL, "     \
    "sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"

#define MAX_VERSION_DIGITS 9

struct migration {
    int version;
    char *name; /* the file name */
    char *sql;  /* the file's contents, NUL-terminated */
    char sha256[2 * NB_SHA256_LEN + 1];
    bool applied; /* recorded in schema_version when the run started */
};

struct migration_set {
    struct migration *items;
    int n;
};

static void set_free(struct migration_set *set)
{
    for (int i = 0; i < set->n; i++) {
        free(set->items[i].name);
        free(set->items[i].sql);
    }
    free(set->items);
    set->items = NULL;
    set->n = 0;
}

/* Parses "NNNN_name.sql" into '*version'. Returns false when 'name' does not match. */
static bool parse_name(const char *name, int *version)
{
    const char *p = name;
    long v = 0;
    while (isdigit((unsigned char)*p) && p - name < MAX_VERSION_DIGITS) {
        v = v * 10 + (*p - '0');
        p++;
    }
    if (p == name || *p != '_' || v <= 0) {
        return false;
    }
    const char *label = ++p;
    while (isalnum((unsigned char)*p) || *p == '_') {
        p++;
    }
    if (p == label || strcmp(p, ".sql") != 0) {
        return false;
    }
    *version = (int)v;
    return true;
}

/* Reads file 'dir/name' into a malloc()ed NUL-terminated string. Returns it, or NULL with 'err'
 * set. */
static char *read_file(const char *dir, const char *name, struct nb_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nb_error_errno(err, errno, "could not open migration \"%s\"", path);
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) < 0) {
        nb_error_errno(err, errno, "could not stat migration \"%s\"", path);
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size + 1);
    if (!buf) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory reading migration \"%s\"", path);
        goto fail;
    }
    size_t len = 0;
    while (len < size) {
        ssize_t n = read(fd, buf + len, size - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            nb_error_errno(err, errno, "could not read migration \"%s\"", path);
            goto fail;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        nb_error_set(err, NB_ERR_INVALID, "migration \"%s\" contains a NUL byte", path);
        goto fail;
    }
    close(fd);
    return buf;

fail:
    free(buf);
    close(fd);
    return NULL;
}

static int skip_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static int by_version(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Loads the migrations of 'dir' sorted by version into 'set'. Returns 0, or -1 with 'err' set
 * (and 'set' empty). */
static int load_dir(const char *dir, struct migration_set *set, struct nb_error *err)
{
    struct dirent **entries = NULL;
    int n = scandir(dir, &entries, skip_hidden, alphasort);
    if (n < 0) {
        nb_error_errno(err, errno, "could not read migration directory \"%s\"", dir);
        return -1;
    }
    int rc = -1;
    set->items = calloc((size_t)n + 1, sizeof *set->items);
    if (!set->items) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        goto cleanup;
    }
    for (int i = 0; i < n; i++) {
        const char *name = entries[i]->d_name;
        size_t len = strlen(name);
        if (len < 4 || strcmp(name + len - 4, ".sql") != 0) {
            continue;
        }
        struct migration *m = &set->items[set->n];
        if (!parse_name(name, &m->version)) {
            nb_error_set(err, NB_ERR_INVALID, "invalid migration file name \"%s\" in \"%s\"", name,
                         dir);
            nb_error_detail(err, "migrations are named NNNN_name.sql, the name of letters, "
                                 "digits and underscores");
            goto cleanup;
        }
        m->name = strdup(name);
        if (!m->name) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
            goto cleanup;
        }
        set->n++;
        m->sql = read_file(dir, name, err);
        if (!m->sql) {
            goto cleanup;
        }
        nb_sha256_hex(m->sql, strlen(m->sql), m->sha256);
    }
    qsort(set->items, (size_t)set->n, sizeof *set->items, by_version);
    for (int i = 1; i < set->n; i++) {
        if (set->items[i].version == set->items[i - 1].version) {
            nb_error_set(err, NB_ERR_INVALID,
                         "duplicate migration version %d: \"%s\" and \"%s\" in \"%s\"",
                         set->items[i].version, set->items[i - 1].name, set->items[i].name, dir);
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    for (int i = 0; i < n; i++) {
        free(entries[i]);
    }
    free(entries);
    if (rc < 0) {
        set_free(set);
    }
    return rc;
}

/* Opens a migration transaction holding the advisory lock, with schema_version present. */
static int begin_locked(struct nb_pg_conn *conn, struct nb_error *err)
{
    if (nb_pg_command(conn, BEGIN_SQL, err) < 0) {
        return -1;
    }
    if (nb_pg_command(conn, LOCK_SQL, err) < 0 || nb_pg_command(conn, CREATE_SQL, err) < 0) {
        nb_pg_rollback(conn);
        return -1;
    }
    return 0;
}

static int checksum_error(const struct migration *m, const char *recorded, struct nb_error *err)
{
    nb_error_set(err, NB_ERR_INVALID, "migration \"%s\" was changed after it was applied", m->name);
    nb_error_detail(err, "schema_version records SHA-256 %s for version %d, the file has %s",
                    recorded, m->version, m->sha256);
    return -1;
}

/* Marks in 'set' the migrations schema_version records, checking their checksums and that no
 * pending file comes before an applied one. Returns 0, or -1 with 'err' set. */
static int read_applied(struct nb_pg_conn *conn, struct migration_set *set, struct nb_error *err)
{
    if (begin_locked(conn, err) < 0) {
        return -1;
    }
    PGresult *res = nb_pg_exec(conn, "SELECT version, sha256 FROM schema_version ORDER BY version",
                               0, NULL, err);
    if (!res) {
        nb_pg_rollback(conn);
        return -1;
    }
    /* Commit rather than roll back, to keep schema_version if this transaction created it. */
    if (nb_pg_commit(conn, err) < 0) {
        PQclear(res);
        return -1;
    }
    int rc = 0;
    int max_applied = 0;
    for (int row = 0; row < PQntuples(res) && rc == 0; row++) {
        int version = atoi(PQgetvalue(res, row, 0));
        const char *sha = PQgetvalue(res, row, 1);
        max_applied = version > max_applied ? version : max_applied;
        for (int i = 0; i < set->n; i++) {
            struct migration *m = &set->items[i];
            if (m->version != version) {
                continue;
            }
            m->applied = true;
            if (strcmp(m->sha256, sha) != 0) {
                rc = checksum_error(m, sha, err);
            }
        }
    }
    PQclear(res);
    for (int i = 0; i < set->n && rc == 0; i++) {
        const struct migration *m = &set->items[i];
        if (!m->applied && m->version < max_applied) {
            nb_error_set(err, NB_ERR_INVALID,
                         "migration \"%s\" is not applied but a later version (%d) is", m->name,
                         max_applied);
            rc = -1;
        }
    }
    return rc;
}

/* Applies 'm' in its own transaction unless another process applied it meanwhile. Returns 1 if
 * applied, 0 if it already was, or -1 with 'err' set (and everything rolled back). */
static int apply_one(struct nb_pg_conn *conn, const struct migration *m, struct nb_error *err)
{
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    if (begin_locked(conn, err) < 0) {
        return -1;
    }
    const char *check_params[] = {version};
    PGresult *res = nb_pg_exec(conn, "SELECT sha256 FROM schema_version WHERE version = $1", 1,
                               check_params, err);
    if (!res) {
        nb_pg_rollback(conn);
        return -1;
    }
    if (PQntuples(res) > 0) {
        int rc = strcmp(PQgetvalue(res, 0, 0), m->sha256) == 0
                     ? 0
                     : checksum_error(m, PQgetvalue(res, 0, 0), err);
        PQclear(res);
        nb_pg_rollback(conn);
        return rc;
    }
    PQclear(res);

    if (nb_pg_command(conn, m->sql, err) < 0) {
        goto fail;
    }
    if (!nb_pg_in_transaction(conn)) {
        nb_error_set(err, NB_ERR_INVALID, "migration \"%s\" ended its transaction", m->name);
        nb_error_detail(err, "a migration must not contain BEGIN, COMMIT or ROLLBACK");
        return -1;
    }
    const char *insert_params[] = {version, m->name, m->sha256};
    res = nb_pg_exec(conn, "INSERT INTO schema_version (version, name, sha256) VALUES ($1, $2, $3)",
                     3, insert_params, err);
    if (!res) {
        goto fail;
    }
    PQclear(res);
    if (nb_pg_commit(conn, err) < 0) {
        goto fail;
    }
    return 1;

fail:
    nb_pg_rollback(conn);
    /* Name the file in front of the server's message; keep the code and the SQLSTATE detail. */
    if (err) {
        char msg[NB_ERROR_MSG_MAX], detail[NB_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        snprintf(detail, sizeof detail, "%s", err->detail);
        nb_error_set(err, err->code, "could not apply migration \"%s\": %s", m->name, msg);
        if (detail[0]) {
            nb_error_detail(err, "%s", detail);
        }
    }
    return -1;
}

int nb_migrate(struct nb_pg_conn *conn, const char *dir, struct nb_error *err)
{
    if (nb_pg_in_transaction(conn)) {
        nb_error_set(err, NB_ERR_INTERNAL, "cannot migrate inside an open transaction");
        return -1;
    }
    struct migration_set set = {0};
    if (load_dir(dir, &set, err) < 0) {
        return -1;
    }
    int applied = 0;
    if (read_applied(conn, &set, err) < 0) {
        applied = -1;
    }
    for (int i = 0; i < set.n && applied >= 0; i++) {
        const struct migration *m = &set.items[i];
        if (m->applied) {
            continue;
        }
        int rc = apply_one(conn, m, err);
        if (rc < 0) {
            applied = -1;
        } else if (rc > 0) {
            nb_info("applied migration \"%s\"", m->name);
            applied++;
        }
    }
    set_free(&set);
    return applied;
}

int nb_migrate_current(struct nb_pg_conn *conn, struct nb_error *err)
{
    PGresult *res =
        nb_pg_exec(conn, "SELECT to_regclass('schema_version') IS NOT NULL", 0, NULL, err);
    if (!res) {
        return -1;
    }
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists) {
        return 0;
    }
    res = nb_pg_exec(conn, "SELECT coalesce(max(version), 0) FROM schema_version", 0, NULL, err);
    if (!res) {
        return -1;
    }
    int version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return version;
}
