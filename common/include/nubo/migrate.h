/* Schema migrations: numbered SQL files ("0001_init.sql", "0002_request_log.sql", ...) applied in
 * order, each inside its own transaction, under a PostgreSQL advisory lock so that several daemons
 * starting at once apply each file exactly once. The schema_version table records what was
 * applied (version, name, SHA-256 of the file, time). Running again applies nothing. */
#ifndef NUBO_MIGRATE_H
#define NUBO_MIGRATE_H

struct nb_error;
struct nb_pg_conn;

/* Applies the migrations in directory 'dir' that schema_version does not yet hold. A file whose
 * recorded checksum differs from the file on disk is an error (a migration was edited after it
 * shipped). Returns the number of files applied (0 when up to date), or -1 with 'err' set; a
 * failing file is rolled back whole and named in the message. */
int nb_migrate(struct nb_pg_conn *conn, const char *dir, struct nb_error *err);

/* Returns the highest applied version, 0 for an empty database, or -1 with 'err'. */
int nb_migrate_current(struct nb_pg_conn *conn, struct nb_error *err);

#endif
