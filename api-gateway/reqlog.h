/* The request log: a group-commit writer that records every API request in PostgreSQL's
 * request_log table (deploy/migrations/0002_request_log.sql), and the operator's query over it.
 *
 * A request is not acknowledged before its record is committed, yet one commit per request would
 * cap the gateway at the database's commit rate. So the HTTP worker threads hand their records to
 * one writer thread and block; the writer commits everything that queued up while its previous
 * commit was in flight as one batch (one COPY, one transaction), then wakes that batch's threads.
 * The busier the gateway, the larger the batches.
 *
 * If the database cannot be reached, the writer retries a batch with back-off until its oldest
 * record has waited 'retry_ms', then fails the whole batch: a write never reports success without
 * a commit. After such a failure the row may still exist (a connection lost during COMMIT leaves
 * the outcome unknown); retries are written so that a row already committed is not duplicated.
 *
 * The bound holds while the server refuses or drops connections; a server that accepts and then
 * never answers is bounded only by the TCP settings of the pool's conninfo (keepalives,
 * tcp_user_timeout).
 *
 * The module knows nothing of HTTP; the gateway maps a failed write to 503. */
#ifndef NUBO_GW_REQLOG_H
#define NUBO_GW_REQLOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct nb_error;
struct nb_pg_pool;
struct gw_reqlog;

/* Which API a request came through (the 'api' column). */
enum gw_reqlog_api {
    GW_REQLOG_API_OTHER, /* neither: an unknown path, a malformed request */
    GW_REQLOG_API_EC2,   /* the EC2 query API */
    GW_REQLOG_API_REST,  /* nubo's JSON REST API */
};

/* One request. All strings are borrowed for the duration of gw_reqlog_write(), which copies them.
 * Text that is not valid UTF-8 is stored with U+FFFD in place of each invalid byte. */
struct gw_reqlog_record {
    const char *request_id;    /* UUID text ("0f3a...-...."), required */
    int64_t time_us;           /* arrival, microseconds since the Unix epoch */
    const char *tenant_id;     /* NULL: the request was not authenticated */
    const char *access_key_id; /* NULL: none */
    const char *action;        /* required: "DescribeRegions", "GET /v1/images", ... */
    const char *params_json;   /* one JSON value, secrets already redacted; NULL: "{}".
                                * "\u0000" escapes, which jsonb cannot hold, become "\ufffd". */
    int http_status;           /* 100 to 599 */
    const char *error_code;    /* NULL on success, else e.g. "SignatureDoesNotMatch" */
    int64_t latency_us;        /* >= 0 */
    const char *source_addr;   /* IPv4 or IPv6 address without port; NULL: unknown */
    const char *user_agent;    /* NULL: none sent */
    enum gw_reqlog_api api;
};

/* Tuning of the writer. A zero field takes the default. */
struct gw_reqlog_options {
    int max_batch;   /* most records in one transaction; default 1000 */
    int max_wait_us; /* how long the idle writer waits for a batch to fill before committing
                        * what it has; default 0: commit at once (classic group commit) */
    int retry_ms;    /* how long a record may wait for the database before its write fails;
                        * default 5000 */
    int days_ahead;  /* daily partitions to keep ready beyond today; default 2 */
};

/* Counters since gw_reqlog_new(). */
struct gw_reqlog_stats {
    uint64_t records;        /* records committed */
    uint64_t batches;        /* transactions committed */
    uint64_t failed_records; /* records whose write returned -1 */
    uint64_t retries;        /* failed batch attempts that were tried again */
    uint64_t max_batch_seen; /* largest batch committed */
};

/* Starts the writer over 'pool' (borrowed; it must outlive the log; the writer holds one of its
 * connections only while it writes a batch, so a thread must not hold a connection of 'pool' while
 * it waits in gw_reqlog_write(): with every connection held that way, no batch could commit). Creates today's and the next 'days_ahead' daily
 * partitions first, so that a database without migration 0002, or one that cannot be reached,
 * fails here. 'opt' may be NULL for all defaults. Returns the log, which the caller frees with
 * gw_reqlog_free(), or NULL with 'err' set. */
struct gw_reqlog *gw_reqlog_new(struct nb_pg_pool *pool, const struct gw_reqlog_options *opt,
                                struct nb_error *err);

/* Commits every record already queued (their writers get their answers), stops the writer and
 * frees 'log'. No gw_reqlog_write() may start once this is called. Accepts NULL. */
void gw_reqlog_free(struct gw_reqlog *log);

/* Queues a copy of 'rec' and blocks until the transaction holding it has committed. Thread-safe;
 * meant to be called by many threads at once. Returns 0 once the record is committed, or -1 with
 * 'err' set: NB_ERR_INVALID for a record that could never be stored (a request id that is not a
 * UUID, an address that is not one, a status or latency out of range; nothing was queued), or the
 * database's error (NB_ERR_UNAVAILABLE, NB_ERR_TIMEOUT, NB_ERR_DB, ...) when the batch could not be
 * committed within 'retry_ms'. On -1 the request must not be acknowledged as a success. */
int gw_reqlog_write(struct gw_reqlog *log, const struct gw_reqlog_record *rec,
                    struct nb_error *err);

/* Copies the counters into '*out'. Thread-safe. */
void gw_reqlog_get_stats(struct gw_reqlog *log, struct gw_reqlog_stats *out);

/* What gw_reqlog_query() returns. NULL strings and zero bounds mean "any". */
struct gw_reqlog_filter {
    const char *tenant_id;
    const char *action;
    const char *error_code; /* this error only */
    bool errors_only;       /* only records with an error code (any) */
    int64_t from_us;        /* 'time' >= from_us, microseconds since the epoch; 0: no bound */
    int64_t to_us;          /* 'time' < to_us; 0: no bound */
    int limit;              /* 1 to GW_REQLOG_QUERY_MAX; 0: GW_REQLOG_QUERY_DEFAULT */
};

#define GW_REQLOG_QUERY_DEFAULT 100
#define GW_REQLOG_QUERY_MAX     1000

/* Returns the records matching 'f', newest first, at most 'f->limit' of them, as a new JSON array
 * reference the caller json_decref()s. Each element is an object with the record's fields under
 * the column names: "request_id", "time" (RFC 3339 UTC with microseconds, e.g.
 * "2026-11-22T04:51:07.123456Z"), "tenant_id", "access_key_id", "action", "params" (the JSON
 * value), "http_status", "error_code", "latency_us", "source_addr", "user_agent", "api"; absent
 * values are JSON null. Returns NULL with 'err' set: NB_ERR_INVALID for a bad limit or range, or a
 * database error. */
json_t *gw_reqlog_query(struct nb_pg_pool *pool, const struct gw_reqlog_filter *f,
                        struct nb_error *err);

#endif
