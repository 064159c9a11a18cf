/* A throwaway PostgreSQL 15 cluster for integration tests.
 *
 * nb_test_pg_start() runs initdb into a fresh directory under /tmp and starts the server as a
 * child of the calling process, with its unix socket in that directory and TCP on a free port of
 * 127.0.0.1, fsync off, trust authentication, superuser "nubo" and a database "nubo". When run as
 * root, the server runs as the "postgres" user (PostgreSQL refuses to run as root). The server
 * shuts down immediately if the thread that started it dies, so a crashed test leaves no server
 * behind (only its directory).
 *
 * Not thread-safe: drive one cluster from one thread. */
#ifndef NUBO_TEST_PGTMP_H
#define NUBO_TEST_PGTMP_H

struct nb_test_pg;

/* Creates and starts a cluster (1 to 2 seconds). Returns it, or NULL after printing the reason
 * (and the tail of the server's log) on stderr. Free with nb_test_pg_destroy(). */
struct nb_test_pg *nb_test_pg_start(void);

/* The libpq conninfo of database "nubo", e.g. "host=/tmp/nubo-pg-x1Yz2 port=40123 dbname=nubo
 * user=nubo". Valid until nb_test_pg_destroy(); the same across restarts. */
const char *nb_test_pg_conninfo(const struct nb_test_pg *t);

/* The TCP port the server listens on at 127.0.0.1. */
int nb_test_pg_port(const struct nb_test_pg *t);

/* Creates database 'dbname' (any name; it is quoted). Returns 0, or -1 after printing why. */
int nb_test_pg_create_db(struct nb_test_pg *t, const char *dbname);

/* Returns the conninfo of database 'dbname' as a malloc()ed string the caller free()s, or NULL
 * when out of memory. */
char *nb_test_pg_conninfo_db(const struct nb_test_pg *t, const char *dbname);

/* Stops the server with a fast shutdown (sessions are disconnected) and waits for it to exit.
 * Returns 0, or -1 after printing why. Does nothing when it is not running. */
int nb_test_pg_stop(struct nb_test_pg *t);

/* As nb_test_pg_stop() with an immediate shutdown: no checkpoint, crash recovery at next start. */
int nb_test_pg_stop_immediate(struct nb_test_pg *t);

/* Simulates a crash: SIGKILLs the postmaster, then waits until its backends have exited too (so
 * that the server can start again). Returns 0, or -1 after printing why. */
int nb_test_pg_kill(struct nb_test_pg *t);

/* Starts a stopped or killed server again on the same port and directory and waits until it
 * accepts connections. Returns 0, or -1 after printing why. */
int nb_test_pg_start_again(struct nb_test_pg *t);

/* Stops the server if it runs, removes its directory and frees 't'. Accepts NULL. */
void nb_test_pg_destroy(struct nb_test_pg *t);

#endif
