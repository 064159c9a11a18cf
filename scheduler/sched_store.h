/* The scheduler's PostgreSQL statements that are not part of one placement or one operation:
 * reading hosts into the snapshot, the heartbeat monitor, and the audit of claims.
 *
 * Lock order, kept by every statement that changes claims so that schedulers, the gateway and
 * host_evacuate() cannot deadlock: unplaced instance rows, then host rows in id order, then
 * placed instance rows (placement); or host rows in id order, then their instances (releases). */
#ifndef NUBO_SCHED_STORE_H
#define NUBO_SCHED_STORE_H

#include <stdbool.h>
#include <stdio.h>

struct nb_error;
struct nb_pg_conn;
struct place_snapshot;

/* Loads the hosts table into 'snap': all of it when 'ids' is NULL, else the 'n' hosts named
 * (after a claim conflict). A host is live when simulated or its heartbeat is younger than
 * 'heartbeat_timeout_s'. Returns the number of hosts read, or -1 with 'err'. */
int sched_store_load_hosts(struct nb_pg_conn *conn, struct place_snapshot *snap,
                           int heartbeat_timeout_s, const char *const *ids, int n,
                           struct nb_error *err);

/* The heartbeat monitor: marks 'up' hosts (not simulated) whose last heartbeat is older than
 * 'heartbeat_timeout_s' as 'down' with a reason, and flags the live instances of every down host
 * with host_down = true and a state_reason_message (and clears the flag once the host is up
 * again). Returns the number of hosts newly marked down, or -1 with 'err'. */
int sched_store_monitor(struct nb_pg_conn *conn, int heartbeat_timeout_s, struct nb_error *err);

/* Audits claims: for every host, used_* and instance_count must equal the sums over its live
 * instances (host_id set, state not terminated/error); dead instances must hold no host. Writes
 * one line per drift found to 'out' (may be NULL). With 'repair', fixes them in one transaction
 * that locks the hosts table against claims meanwhile. Returns the number of drifts found (0:
 * clean), or -1 with 'err'. */
int sched_store_audit(struct nb_pg_conn *conn, bool repair, FILE *out, struct nb_error *err);

/* Parses a PostgreSQL text[] literal ("{a,b}", elements without quotes or with simple quotes)
 * into a malloc()ed, NULL-terminated array of strings stored in the same block: the caller
 * free()s the array once. The count goes to '*n'. Returns NULL when out of memory. */
char **sched_store_parse_text_array(const char *text, int *n);

/* Builds the text of a PostgreSQL array literal in 'b' for a parameter ("{...}"): call
 * sched_store_array_add() for each element (NULL adds SQL NULL; text is quoted and escaped), then
 * sched_store_array_end(). An array with no element is "{}". */
struct nb_buf;
void sched_store_array_add(struct nb_buf *b, const char *value);
void sched_store_array_addf(struct nb_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *sched_store_array_end(struct nb_buf *b);

#endif
