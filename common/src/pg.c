/* PostgreSQL: a fixed-size connection pool over libpq, prepared statements and transactions
 * (see pg.h).
 *
 * A pooled connection connects on first use. It is reset when it is acquired broken, and when a
 * statement run outside a transaction fails because the connection was lost (the statement is
 * then retried once). Prepared statements are prepared on each connection when first run there,
 * and again after every reset, since a new server session knows none of them.
 *
 * nb_pg_exec() also prepares what it runs: each connection keeps the texts of up to
 * SQL_CACHE_SIZE statements it has prepared, so a statement the gateway runs again and again
 * (built from the same parts, with different parameters) is parsed and planned once per
 * connection instead of on every request. For the gateway's DescribeInstances this halves the
 * database's work per request. */
#include "nubo/clock.h"
#include "nubo/pg.h"

#include "nubo/error.h"
#include "nubo/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds libpq may spend connecting when the conninfo does not say: without a limit, an
 * unreachable host makes acquire hang for the kernel's TCP timeout. */
#define DEFAULT_CONNECT_TIMEOUT "5"

/* Statements nb_pg_exec() keeps prepared per connection; past that, they run unprepared. */
#define SQL_CACHE_SIZE 128

struct sql_cache_entry {
    uint64_t hash;
    char *sql; /* NULL: free slot */
};

struct stmt {
    char *name;
    char *sql;
};

struct nb_pg_conn {
    struct nb_pg_pool *pool;
    PGconn *pg;       /* NULL until the first connect succeeds */
    bool busy;        /* acquired by a thread; guarded by pool->mu */
    bool needs_reset; /* left in a state a ROLLBACK could not clear */
    bool lost_in_tx;  /* the connection broke inside a transaction not yet rolled back */
    bool *prepared;   /* per registered statement: prepared in this server session */
    int nprepared;    /* entries in 'prepared' */
    /* nb_pg_exec()'s statements prepared in this server session; slot i is named "nb_sql_i". */
    struct sql_cache_entry sql_cache[SQL_CACHE_SIZE];
    int sql_cached;
};

struct nb_pg_pool {
    char *conninfo;
    pthread_mutex_t mu;
    pthread_cond_t freed; /* signalled when a connection is released */
    int size;
    struct nb_pg_conn *conns;
    struct stmt *stmts; /* guarded by mu; the strings never move once registered */
    int nstmts;
};

/* What run() executes. */
enum run_kind {
    RUN_SIMPLE,   /* PQexec: no parameters, several statements allowed */
    RUN_PARAMS,   /* PQexecParams */
    RUN_PREPARED, /* PQexecPrepared, preparing first if needed */
};

struct run_req {
    enum run_kind kind;
    const char *sql;  /* RUN_SIMPLE, RUN_PARAMS, and the text to prepare for RUN_PREPARED */
    const char *name; /* RUN_PREPARED */
    int stmt;         /* RUN_PREPARED: index in pool->stmts */
    int nparams;
    const char *const *params;
};

/* Copies the first line of a libpq message into the message of 'err' and the rest, if any, into
 * its detail, without the trailing newline and tab indentation libpq adds. */
static void set_libpq_error(struct nb_error *err, enum nb_errcode code, const char *what,
                            const char *text)
{
    if (!text || !*text) {
        text = "unknown error";
    }
    size_t first = strcspn(text, "\n");
    nb_error_set(err, code, "%s: %.*s", what, (int)first, text);
    const char *rest = text + first;
    while (*rest == '\n' || *rest == '\t' || *rest == ' ') {
        rest++;
    }
    size_t len = strlen(rest);
    while (len > 0 && (rest[len - 1] == '\n' || rest[len - 1] == ' ')) {
        len--;
    }
    if (len > 0) {
        nb_error_detail(err, "%.*s", (int)len, rest);
    }
}

/* Routine notices ("relation already exists, skipping") are dropped; warnings are logged. */
static void notice_receiver(void *arg, const PGresult *res)
{
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (severity && msg && strcmp(severity, "WARNING") == 0) {
        nb_warn("postgresql: %s", msg);
    }
}

/* Connects 'c' for the first time or resets it, forgetting what the old session had prepared.
 * Returns 0, or -1 with 'err' set to NB_ERR_UNAVAILABLE. */
static void sql_cache_clear(struct nb_pg_conn *c)
{
    for (int i = 0; i < c->sql_cached; i++) {
        free(c->sql_cache[i].sql);
        c->sql_cache[i].sql = NULL;
    }
    c->sql_cached = 0;
}

static int conn_connect(struct nb_pg_conn *c, struct nb_error *err)
{
    for (int i = 0; i < c->nprepared; i++) {
        c->prepared[i] = false;
    }
    sql_cache_clear(c);
    c->lost_in_tx = false;
    c->needs_reset = false;
    if (c->pg) {
        PQreset(c->pg);
    } else {
        /* The conninfo is expanded after the default, so that its own connect_timeout wins. */
        const char *const keys[] = {"connect_timeout", "dbname", NULL};
        const char *const values[] = {DEFAULT_CONNECT_TIMEOUT, c->pool->conninfo, NULL};
        c->pg = PQconnectdbParams(keys, values, 1);
        if (!c->pg) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not allocate a PostgreSQL connection");
            return -1;
        }
        PQsetNoticeReceiver(c->pg, notice_receiver, NULL);
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        set_libpq_error(err, NB_ERR_UNAVAILABLE, "could not connect to PostgreSQL",
                        PQerrorMessage(c->pg));
        return -1;
    }
    return 0;
}

struct nb_pg_pool *nb_pg_pool_new(const char *conninfo, int size, struct nb_error *err)
{
    if (size < 1) {
        nb_error_set(err, NB_ERR_INVALID, "invalid PostgreSQL pool size %d", size);
        return NULL;
    }
    struct nb_pg_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->freed, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&pool->mu, NULL);
    pool->size = size;
    pool->conninfo = strdup(conninfo ? conninfo : "");
    pool->conns = calloc((size_t)size, sizeof *pool->conns);
    if (!pool->conninfo || !pool->conns) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        nb_pg_pool_free(pool);
        return NULL;
    }
    for (int i = 0; i < size; i++) {
        pool->conns[i].pool = pool;
    }
    if (conn_connect(&pool->conns[0], err) < 0) {
        nb_pg_pool_free(pool);
        return NULL;
    }
    return pool;
}

void nb_pg_pool_free(struct nb_pg_pool *pool)
{
    if (!pool) {
        return;
    }
    for (int i = 0; pool->conns && i < pool->size; i++) {
        PQfinish(pool->conns[i].pg);
        free(pool->conns[i].prepared);
        sql_cache_clear(&pool->conns[i]);
    }
    for (int i = 0; i < pool->nstmts; i++) {
        free(pool->stmts[i].name);
        free(pool->stmts[i].sql);
    }
    free(pool->stmts);
    free(pool->conns);
    free(pool->conninfo);
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}

/* Returns the index of the statement called 'name', or -1. Called with pool->mu held. */
static int find_stmt(const struct nb_pg_pool *pool, const char *name)
{
    for (int i = 0; i < pool->nstmts; i++) {
        if (strcmp(pool->stmts[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

int nb_pg_pool_prepare(struct nb_pg_pool *pool, const char *name, const char *sql,
                       struct nb_error *err)
{
    int rc = -1;
    pthread_mutex_lock(&pool->mu);
    if (find_stmt(pool, name) >= 0) {
        nb_error_set(err, NB_ERR_CONFLICT, "prepared statement \"%s\" is already registered", name);
        goto cleanup;
    }
    struct stmt *stmts = realloc(pool->stmts, (size_t)(pool->nstmts + 1) * sizeof *stmts);
    if (!stmts) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        goto cleanup;
    }
    pool->stmts = stmts;
    char *name_copy = strdup(name);
    char *sql_copy = strdup(sql);
    if (!name_copy || !sql_copy) {
        free(name_copy);
        free(sql_copy);
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        goto cleanup;
    }
    stmts[pool->nstmts].name = name_copy;
    stmts[pool->nstmts].sql = sql_copy;
    pool->nstmts++;
    rc = 0;
cleanup:
    pthread_mutex_unlock(&pool->mu);
    return rc;
}

/* Returns a free connection, preferring one already connected, or NULL. Called with pool->mu
 * held; free connections belong to no thread, so reading their state here is safe. */
static struct nb_pg_conn *pick_free(struct nb_pg_pool *pool)
{
    struct nb_pg_conn *unconnected = NULL;
    for (int i = 0; i < pool->size; i++) {
        struct nb_pg_conn *c = &pool->conns[i];
        if (c->busy) {
            continue;
        }
        if (c->pg && !c->needs_reset && PQstatus(c->pg) == CONNECTION_OK) {
            return c;
        }
        if (!unconnected) {
            unconnected = c;
        }
    }
    return unconnected;
}

static void give_back(struct nb_pg_conn *c)
{
    struct nb_pg_pool *pool = c->pool;
    pthread_mutex_lock(&pool->mu);
    c->busy = false;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->mu);
}

struct nb_pg_conn *nb_pg_acquire(struct nb_pg_pool *pool, int timeout_ms, struct nb_error *err)
{
    struct timespec deadline = nb_monotonic_after(timeout_ms);

    pthread_mutex_lock(&pool->mu);
    struct nb_pg_conn *c = pick_free(pool);
    while (!c && timeout_ms != 0) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&pool->freed, &pool->mu)
                                : pthread_cond_timedwait(&pool->freed, &pool->mu, &deadline);
        c = pick_free(pool);
        if (rc == ETIMEDOUT) {
            break;
        }
    }
    if (c) {
        c->busy = true;
    }
    pthread_mutex_unlock(&pool->mu);

    if (!c) {
        nb_error_set(err, NB_ERR_TIMEOUT,
                     "no PostgreSQL connection became free within %d ms (pool of %d)", timeout_ms,
                     pool->size);
        return NULL;
    }
    if (!c->pg || c->needs_reset || PQstatus(c->pg) != CONNECTION_OK) {
        bool was_connected = c->pg != NULL;
        if (conn_connect(c, err) < 0) {
            give_back(c);
            return NULL;
        }
        if (was_connected) {
            nb_info("reconnected to PostgreSQL");
        }
    }
    return c;
}

void nb_pg_release(struct nb_pg_conn *conn)
{
    if (!conn) {
        return;
    }
    if (conn->pg && PQstatus(conn->pg) == CONNECTION_OK &&
        PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
        PQclear(PQexec(conn->pg, "ROLLBACK"));
        if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
            conn->needs_reset = true;
        }
    }
    conn->lost_in_tx = false;
    give_back(conn);
}

PGconn *nb_pg_raw(struct nb_pg_conn *conn)
{
    return conn->pg;
}

bool nb_pg_in_transaction(struct nb_pg_conn *conn)
{
    if (conn->lost_in_tx) {
        return true;
    }
    switch (PQtransactionStatus(conn->pg)) {
    case PQTRANS_ACTIVE:
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        return true;
    case PQTRANS_IDLE:
    case PQTRANS_UNKNOWN:
        break;
    }
    return false;
}

static enum nb_errcode code_for_sqlstate(const char *state)
{
    if (!state || strlen(state) != 5) {
        return NB_ERR_DB;
    }
    if (strcmp(state, "23505") == 0 || strcmp(state, "23P01") == 0) {
        return NB_ERR_CONFLICT;
    }
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) {
        return NB_ERR_INVALID;
    }
    /* connection exceptions; administrator, crash or start-up shutdown */
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
        strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0) {
        return NB_ERR_UNAVAILABLE;
    }
    return NB_ERR_DB;
}

/* Tells whether the connection of 'c' was lost, after a statement failed. libpq does not always
 * mark it bad by then: when the server's farewell (immediate shutdown) arrived before the query
 * was sent, the failed result comes first; reading what is left finds the end of the stream. */
static bool conn_lost(struct nb_pg_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_OK) {
        PQconsumeInput(c->pg);
    }
    return PQstatus(c->pg) == CONNECTION_BAD;
}

/* Fills 'err' from a failed statement: 'res' may be NULL (libpq could not even build a result);
 * 'lost' tells whether the connection was lost. */
static void set_result_error(struct nb_pg_conn *c, const PGresult *res, bool lost,
                             struct nb_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    enum nb_errcode code = lost ? NB_ERR_UNAVAILABLE : code_for_sqlstate(state);

    if (res && PQresultStatus(res) != PGRES_FATAL_ERROR &&
        PQresultStatus(res) != PGRES_NONFATAL_ERROR) {
        nb_error_set(err, NB_ERR_INTERNAL, "unexpected PostgreSQL result status %s",
                     PQresStatus(PQresultStatus(res)));
        return;
    }
    if (primary && state) {
        /* A server error: its message is already in PostgreSQL's style. */
        nb_error_set(err, code, "%s", primary);
        const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        if (detail) {
            nb_error_detail(err, "SQLSTATE %s: %s", state, detail);
        } else {
            nb_error_detail(err, "SQLSTATE %s", state);
        }
        return;
    }
    const char *text = res ? PQresultErrorMessage(res) : "";
    if (!*text) {
        text = PQerrorMessage(c->pg);
    }
    set_libpq_error(err, code,
                    lost ? "lost the connection to PostgreSQL" : "PostgreSQL statement failed",
                    text);
}

/* Grows the per-connection prepared flags to cover statement index 'idx'. */
static int grow_prepared(struct nb_pg_conn *c, int idx, struct nb_error *err)
{
    if (idx < c->nprepared) {
        return 0;
    }
    int n = idx + 1;
    bool *flags = realloc(c->prepared, (size_t)n * sizeof *flags);
    if (!flags) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    memset(flags + c->nprepared, 0, (size_t)(n - c->nprepared) * sizeof *flags);
    c->prepared = flags;
    c->nprepared = n;
    return 0;
}

static bool result_ok(const PGresult *res, enum run_kind kind)
{
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        return true;
    case PGRES_EMPTY_QUERY:
        /* a script of nothing but comments */
        return kind == RUN_SIMPLE;
    default:
        return false;
    }
}

static bool is_sqlstate(const PGresult *res, const char *state)
{
    const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return s && strcmp(s, state) == 0;
}

static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        h = (h ^ *p) * 1099511628211ull;
    }
    return h;
}

/* Runs 'req' (RUN_PARAMS) through the connection's statement cache: prepares it under a slot's
 * name the first time this session sees its text, then executes the prepared statement. When
 * the cache is full the statement runs unprepared. */
static PGresult *run_cached(struct nb_pg_conn *c, const struct run_req *req)
{
    uint64_t h = sql_hash(req->sql);
    int slot = -1;
    for (int i = 0; i < c->sql_cached; i++) {
        if (c->sql_cache[i].hash == h && !strcmp(c->sql_cache[i].sql, req->sql)) {
            slot = i;
            break;
        }
    }
    char name[32];
    if (slot < 0) {
        if (c->sql_cached == SQL_CACHE_SIZE) {
            return PQexecParams(c->pg, req->sql, req->nparams, NULL, req->params, NULL, NULL, 0);
        }
        char *copy = strdup(req->sql);
        if (!copy) {
            return PQexecParams(c->pg, req->sql, req->nparams, NULL, req->params, NULL, NULL, 0);
        }
        slot = c->sql_cached;
        snprintf(name, sizeof name, "nb_sql_%d", slot);
        PGresult *res = PQprepare(c->pg, name, req->sql, 0, NULL);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
            free(copy);
            return res;
        }
        PQclear(res);
        c->sql_cache[slot].hash = h;
        c->sql_cache[slot].sql = copy;
        c->sql_cached++;
    }
    snprintf(name, sizeof name, "nb_sql_%d", slot);
    return PQexecPrepared(c->pg, name, req->nparams, req->params, NULL, NULL, 0);
}

/* Sends 'req' once. Returns libpq's result (NULL when it could not allocate one). */
static PGresult *run_once(struct nb_pg_conn *c, const struct run_req *req)
{
    switch (req->kind) {
    case RUN_SIMPLE:
        return PQexec(c->pg, req->sql);
    case RUN_PARAMS:
        return run_cached(c, req);
    case RUN_PREPARED:
        break;
    }
    if (!c->prepared[req->stmt]) {
        PGresult *res = PQprepare(c->pg, req->name, req->sql, 0, NULL);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
            return res;
        }
        PQclear(res);
        c->prepared[req->stmt] = true;
    }
    PGresult *res = PQexecPrepared(c->pg, req->name, req->nparams, req->params, NULL, NULL, 0);
    if (res && is_sqlstate(res, "26000")) {
        c->prepared[req->stmt] = false;
    }
    return res;
}

/* Runs 'req' on 'c'. Outside a transaction, a statement that failed because the connection was
 * lost is retried once on a reset connection; inside one, the loss is reported and remembered
 * until the caller rolls back. Returns a successful result, or NULL with 'err' set. */
static PGresult *run(struct nb_pg_conn *c, const struct run_req *req, struct nb_error *err)
{
    if (!c->pg && conn_connect(c, err) < 0) {
        return NULL;
    }
    for (int attempt = 0;; attempt++) {
        bool in_tx = nb_pg_in_transaction(c);
        PGresult *res = run_once(c, req);
        if (res && result_ok(res, req->kind)) {
            return res;
        }
        bool lost = conn_lost(c);
        if (lost) {
            if (in_tx) {
                c->lost_in_tx = true;
            } else if (attempt == 0) {
                PQclear(res);
                if (conn_connect(c, err) < 0) {
                    return NULL;
                }
                nb_info("reconnected to PostgreSQL after losing the connection");
                continue;
            }
        } else if (req->kind == RUN_PREPARED && !in_tx && attempt == 0 && res &&
                   is_sqlstate(res, "26000")) {
            /* Deallocated behind our back (DISCARD ALL): run_once() forgot it; prepare again. */
            PQclear(res);
            continue;
        } else if (req->kind == RUN_PARAMS && !in_tx && attempt == 0 && res &&
                   (is_sqlstate(res, "26000") || is_sqlstate(res, "0A000"))) {
            /* A cached statement was deallocated, or the schema changed under its plan ("cached
             * plan must not change result type"): forget the session's cache and run again. */
            PQclear(res);
            PGresult *d = PQexec(c->pg, "DEALLOCATE ALL");
            PQclear(d);
            sql_cache_clear(c);
            continue;
        }
        set_result_error(c, res, lost, err);
        PQclear(res);
        return NULL;
    }
}

PGresult *nb_pg_exec(struct nb_pg_conn *conn, const char *sql, int nparams,
                     const char *const *params, struct nb_error *err)
{
    struct run_req req = {.kind = RUN_PARAMS, .sql = sql, .nparams = nparams, .params = params};
    return run(conn, &req, err);
}

PGresult *nb_pg_exec_prepared(struct nb_pg_conn *conn, const char *name, int nparams,
                              const char *const *params, struct nb_error *err)
{
    struct nb_pg_pool *pool = conn->pool;
    struct run_req req = {.kind = RUN_PREPARED, .name = name, .nparams = nparams, .params = params};
    pthread_mutex_lock(&pool->mu);
    req.stmt = find_stmt(pool, name);
    if (req.stmt >= 0) {
        req.sql = pool->stmts[req.stmt].sql;
    }
    pthread_mutex_unlock(&pool->mu);
    if (req.stmt < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "prepared statement \"%s\" is not registered", name);
        return NULL;
    }
    if (grow_prepared(conn, req.stmt, err) < 0) {
        return NULL;
    }
    return run(conn, &req, err);
}

int nb_pg_command(struct nb_pg_conn *conn, const char *sql, struct nb_error *err)
{
    struct run_req req = {.kind = RUN_SIMPLE, .sql = sql};
    PGresult *res = run(conn, &req, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

int nb_pg_begin(struct nb_pg_conn *conn, struct nb_error *err)
{
    if (nb_pg_in_transaction(conn)) {
        nb_error_set(err, NB_ERR_INTERNAL, "a transaction is already open on this connection");
        return -1;
    }
    return nb_pg_command(conn, "BEGIN", err);
}

int nb_pg_commit(struct nb_pg_conn *conn, struct nb_error *err)
{
    if (conn->lost_in_tx) {
        conn->lost_in_tx = false;
        nb_error_set(err, NB_ERR_UNAVAILABLE,
                     "could not commit: the connection to PostgreSQL was lost");
        return -1;
    }
    if (!nb_pg_in_transaction(conn)) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not commit: no transaction is open");
        return -1;
    }
    struct run_req req = {.kind = RUN_SIMPLE, .sql = "COMMIT"};
    PGresult *res = run(conn, &req, err);
    /* Whatever happened, the transaction is over: the server rolls back a failed COMMIT, and a
     * connection lost during it leaves nothing to roll back. */
    conn->lost_in_tx = false;
    if (!res) {
        return -1;
    }
    /* COMMIT of a transaction in which a statement failed rolls back and says so. */
    bool rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    if (rolled_back) {
        nb_error_set(err, NB_ERR_DB,
                     "could not commit: an earlier statement of the transaction "
                     "failed, so it was rolled back");
        nb_error_detail(err, "SQLSTATE 25P02");
        return -1;
    }
    return 0;
}

void nb_pg_rollback(struct nb_pg_conn *conn)
{
    conn->lost_in_tx = false;
    if (!conn->pg || PQstatus(conn->pg) != CONNECTION_OK ||
        PQtransactionStatus(conn->pg) == PQTRANS_IDLE) {
        return;
    }
    PQclear(PQexec(conn->pg, "ROLLBACK"));
    if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
        conn->needs_reset = true;
    }
}
