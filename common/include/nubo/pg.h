/* PostgreSQL: a fixed-size connection pool over libpq, transactions and prepared statements.
 *
 * The pool survives a PostgreSQL restart without restarting the daemon: a connection found broken
 * is reset when it is next acquired, and a statement that fails because the connection broke
 * while no transaction was open is retried once on a fresh connection.
 *
 * Thread-safe: any thread may acquire and release; a connection is used by one thread at a time. */
#ifndef NUBO_PG_H
#define NUBO_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

struct nb_error;
struct nb_pg_pool;
struct nb_pg_conn;

/* Creates a pool of 'size' connections to 'conninfo' (libpq syntax). Connects one connection at
 * once so that a wrong conninfo fails here; the others connect on first use. Returns the pool, or
 * NULL with 'err' set. Free with nb_pg_pool_free(). */
struct nb_pg_pool *nb_pg_pool_new(const char *conninfo, int size, struct nb_error *err);

/* Closes every connection and frees the pool. All connections must have been released.
 * Accepts NULL. */
void nb_pg_pool_free(struct nb_pg_pool *pool);

/* Registers a prepared statement that each connection prepares (once, on its first use after a
 * connect or reset) before nb_pg_exec_prepared() runs it. 'name' and 'sql' are copied. Call at
 * start-up, before connections are acquired by other threads. Returns 0, or -1 with 'err'. */
int nb_pg_pool_prepare(struct nb_pg_pool *pool, const char *name, const char *sql,
                       struct nb_error *err);

/* Takes a connection, waiting at most 'timeout_ms' for one to be free, reconnecting it if it is
 * broken. Returns it, or NULL with 'err' set (NB_ERR_TIMEOUT, or NB_ERR_UNAVAILABLE when the
 * server cannot be reached). Give it back with nb_pg_release(). */
struct nb_pg_conn *nb_pg_acquire(struct nb_pg_pool *pool, int timeout_ms, struct nb_error *err);

/* Returns 'conn' to its pool. A connection left inside a transaction is rolled back first.
 * Accepts NULL. */
void nb_pg_release(struct nb_pg_conn *conn);

/* The libpq connection, for calls this module does not wrap (COPY, notifications). */
PGconn *nb_pg_raw(struct nb_pg_conn *conn);

/* Runs 'sql' with 'nparams' text parameters (NULL entries are SQL NULL). Returns a result with
 * status PGRES_COMMAND_OK or PGRES_TUPLES_OK that the caller PQclear()s, or NULL with 'err' set:
 * NB_ERR_CONFLICT for a unique or exclusion violation (SQLSTATE 23505, 23P01), NB_ERR_INVALID for
 * other integrity or data errors (class 22, 23), NB_ERR_UNAVAILABLE when the connection is lost,
 * NB_ERR_DB otherwise. The message is the server's; the detail names the SQLSTATE. */
PGresult *nb_pg_exec(struct nb_pg_conn *conn, const char *sql, int nparams,
                     const char *const *params, struct nb_error *err);

/* As nb_pg_exec() for a statement registered with nb_pg_pool_prepare(). */
PGresult *nb_pg_exec_prepared(struct nb_pg_conn *conn, const char *name, int nparams,
                              const char *const *params, struct nb_error *err);

/* Runs a command that returns no rows ("SET ...", DDL). 'sql' may hold several statements
 * separated by semicolons (it is sent as one simple query), or only comments. Errors and retries
 * as for nb_pg_exec(). Returns 0, or -1 with 'err'. */
int nb_pg_command(struct nb_pg_conn *conn, const char *sql, struct nb_error *err);

/* Transactions. begin/commit return 0, or -1 with 'err' set; a failed commit has rolled back.
 * rollback never fails (a broken connection is reset on its next acquire). */
int nb_pg_begin(struct nb_pg_conn *conn, struct nb_error *err);
int nb_pg_commit(struct nb_pg_conn *conn, struct nb_error *err);
void nb_pg_rollback(struct nb_pg_conn *conn);

/* True while 'conn' is inside a transaction block. */
bool nb_pg_in_transaction(struct nb_pg_conn *conn);

#endif
