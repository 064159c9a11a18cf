/* The request log's group-commit writer and query (see reqlog.h).
 *
 * Each writing thread turns its record into one line of COPY text format itself, outside any
 * lock, so that the escaping work is spread over the HTTP workers; it then links a waiter (on its
 * own stack) into the queue and sleeps on the waiter's condition variable. The writer thread takes
 * up to 'max_batch' waiters off the queue, sends their lines with one COPY in one transaction and
 * wakes each of them with the outcome. Waking each waiter through its own condition variable costs
 * one wake-up per record, where one shared broadcast would also wake every thread of the next batch.
 *
 * COPY was the fastest of three ways measured (2 cores, PostgreSQL 15, request_log with its five
 * indexes, fsync off): 135k-165k rows/s in batches of 1,000 and 100k-110k in batches of 100, against
 * 90k-120k and 85k-110k for INSERT ... SELECT FROM unnest() of arrays, and 20k-40k for a multi-row
 * INSERT with parameters. It also needs no SQL text or parameter arrays to be built.
 *
 * A batch that fails is retried: after a lost connection the previous COMMIT may have succeeded,
 * and a batch can also hold a record whose key is already stored, so retries copy into a temporary
 * table and insert from it with ON CONFLICT DO NOTHING. A batch that the server rejects for its
 * data (a record that slipped past the checks below) is split in halves until the bad record is
 * alone, so one bad record fails only its own write. */
#include "reqlog.h"

#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_BATCH  1000
#define DEFAULT_RETRY_MS   5000
#define DEFAULT_DAYS_AHEAD 2
#define FIRST_BACKOFF_MS   10
#define MAX_BACKOFF_MS     500
/* After a failed attempt to create partitions, how long the writer waits before trying again. */
#define ENSURE_RETRY_US (10 * 1000000LL)

/* 10000-01-01T00:00:00Z: PostgreSQL and our formatting both want four-digit years. */
#define MAX_TIME_US (253402300800LL * 1000000LL)

#define COLUMNS                                                                                    \
    "request_id, \"time\", tenant_id, access_key_id, action, params, http_status, error_code, "    \
    "latency_us, source_addr, user_agent, api"

/* One gw_reqlog_write() call waiting for its record to be committed. Lives on the stack of the
 * writing thread, which does not return before the writer has set 'done'. */
struct waiter {
    struct waiter *next;   /* guarded by log->mu while queued */
    struct nb_buf line;    /* the record as one COPY text line, "\n" included */
    int64_t queued_at_us;  /* monotonic clock */
    pthread_cond_t wakeup; /* signalled once 'done' is set */
    bool done;             /* guarded by log->mu */
    int rc;                /* the outcome, valid once 'done' */
    struct nb_error *err;  /* the caller's, filled on failure; may be NULL */
};

struct gw_reqlog {
    struct nb_pg_pool *pool; /* borrowed */
    struct gw_reqlog_options opt;
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t work; /* signalled when a record is queued, and on stop */
    struct waiter *head; /* the queue, oldest first; guarded by mu */
    struct waiter *tail;
    int queued;
    bool stopping;
    struct gw_reqlog_stats stats; /* guarded by mu */

    /* Owned by the writer thread. */
    struct waiter **batch;  /* room for opt.max_batch */
    int64_t ensured_day;    /* the UTC day (days since the epoch) partitions were made for */
    int64_t next_ensure_us; /* monotonic: no new attempt before this after a failure */
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t utc_day_now(void)
{
    return (int64_t)time(NULL) / 86400;
}

static struct timespec mono_deadline(int64_t at_us)
{
    struct timespec ts = {.tv_sec = at_us / 1000000, .tv_nsec = (long)(at_us % 1000000) * 1000};
    return ts;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Writes 'us' microseconds since the epoch as "2026-11-22 04:51:07.123456+00" (for PostgreSQL)
 * or, when 'rfc3339', as "2026-11-22T04:51:07.123456Z". 'us' must be in [0, MAX_TIME_US). */
static void format_time(int64_t us, bool rfc3339, char *out, size_t size)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* The fields are bounded by gmtime_r() and the range of 'us'; unsigned, bounded casts let
     * the compiler see that the text fits. */
    snprintf(out, size, "%04u-%02u-%02u%c%02u:%02u:%02u.%06u%s",
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u, rfc3339 ? 'T' : ' ', (unsigned)tm.tm_hour % 100u,
             (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned)(us % 1000000) % 1000000u, rfc3339 ? "Z" : "+00");
}

/* Returns the length of the well-formed UTF-8 sequence that starts at 's' (not at its NUL), or 0
 * when it is not one: a stray continuation byte, an overlong form, a surrogate, a code point
 * beyond U+10FFFF or a truncated sequence. */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80;
        unsigned hi = c == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80;
        unsigned hi = c == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Appends 's' as one field of COPY's text format: NULL as \N; backslash, tab, newline and carriage
 * return escaped; each byte that is not part of well-formed UTF-8 replaced by U+FFFD. When 'json',
 * 's' is JSON text and its "\u0000" escapes, which jsonb refuses, become "\ufffd". */
static void put_field(struct nb_buf *b, const char *s, bool json)
{
    if (!s) {
        nb_buf_append(b, "\\N", 2);
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *run = p; /* start of the bytes to copy as they are */
    while (*p) {
        const char *rep;
        size_t skip = 1;
        if (*p == '\\') {
            if (json && strncmp((const char *)p + 1, "u0000", 5) == 0) {
                rep = "\\\\ufffd";
                skip = 6;
            } else if (json && p[1] == '\\') {
                /* both halves of an escaped backslash, so the second starts no escape */
                rep = "\\\\\\\\";
                skip = 2;
            } else {
                rep = "\\\\";
            }
        } else if (*p == '\t') {
            rep = "\\t";
        } else if (*p == '\n') {
            rep = "\\n";
        } else if (*p == '\r') {
            rep = "\\r";
        } else {
            size_t len = utf8_seq_len(p);
            if (len > 0) {
                p += len;
                continue;
            }
            rep = "\xef\xbf\xbd";
        }
        nb_buf_append(b, run, (size_t)(p - run));
        nb_buf_puts(b, rep);
        p += skip;
        run = p;
    }
    nb_buf_append(b, run, (size_t)(p - run));
}

static bool uuid_valid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex) {
            return false;
        }
    }
    return s[36] == '\0';
}

static bool addr_valid(const char *s)
{
    unsigned char bytes[16];
    return inet_pton(AF_INET, s, bytes) == 1 || inet_pton(AF_INET6, s, bytes) == 1;
}

static const char *api_name(enum gw_reqlog_api api)
{
    switch (api) {
    case GW_REQLOG_API_EC2:
        return "ec2";
    case GW_REQLOG_API_REST:
        return "rest";
    case GW_REQLOG_API_OTHER:
        break;
    }
    return "other";
}

/* Rejects what PostgreSQL would refuse, so that such a record fails alone and at once instead of
 * failing a batch. Returns 0, or -1 with 'err' set to NB_ERR_INVALID. */
static int check_record(const struct gw_reqlog_record *rec, struct nb_error *err)
{
    if (!rec->request_id || !uuid_valid(rec->request_id)) {
        nb_error_set(err, NB_ERR_INVALID, "invalid request id \"%s\" for the request log",
                     rec->request_id ? rec->request_id : "");
        nb_error_detail(err, "A request id is a UUID in its text form.");
        return -1;
    }
    if (rec->time_us < 0 || rec->time_us >= MAX_TIME_US) {
        nb_error_set(err, NB_ERR_INVALID, "request time %" PRId64 " is out of range", rec->time_us);
        return -1;
    }
    if (!rec->action) {
        nb_error_set(err, NB_ERR_INVALID, "request log record of \"%s\" has no action",
                     rec->request_id);
        return -1;
    }
    if (rec->http_status < 100 || rec->http_status > 599) {
        nb_error_set(err, NB_ERR_INVALID, "invalid HTTP status %d in the request log",
                     rec->http_status);
        return -1;
    }
    if (rec->latency_us < 0) {
        nb_error_set(err, NB_ERR_INVALID, "negative latency %" PRId64 " in the request log",
                     rec->latency_us);
        return -1;
    }
    if (rec->source_addr && !addr_valid(rec->source_addr)) {
        nb_error_set(err, NB_ERR_INVALID, "invalid source address \"%s\" in the request log",
                     rec->source_addr);
        nb_error_detail(err, "Give an IPv4 or IPv6 address without a port.");
        return -1;
    }
    return 0;
}

/* Appends 'rec' to 'b' as one line of COPY text format in the order of COLUMNS. */
static void format_line(struct nb_buf *b, const struct gw_reqlog_record *rec)
{
    char when[40];
    format_time(rec->time_us, false, when, sizeof when);
    nb_buf_printf(b, "%s\t%s\t", rec->request_id, when);
    put_field(b, rec->tenant_id, false);
    nb_buf_append(b, "\t", 1);
    put_field(b, rec->access_key_id, false);
    nb_buf_append(b, "\t", 1);
    put_field(b, rec->action, false);
    nb_buf_append(b, "\t", 1);
    put_field(b, rec->params_json ? rec->params_json : "{}", true);
    nb_buf_printf(b, "\t%d\t", rec->http_status);
    put_field(b, rec->error_code, false);
    nb_buf_printf(b, "\t%" PRId64 "\t", rec->latency_us);
    put_field(b, rec->source_addr, false);
    nb_buf_append(b, "\t", 1);
    put_field(b, rec->user_agent, false);
    nb_buf_printf(b, "\t%s\n", api_name(rec->api));
}

/* The error class of a SQLSTATE, as pg.h documents for nb_pg_exec(). */
static enum nb_errcode code_for_sqlstate(const char *state)
{
    if (!state) {
        return NB_ERR_DB;
    }
    if (strcmp(state, "23505") == 0 || strcmp(state, "23P01") == 0) {
        return NB_ERR_CONFLICT;
    }
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) {
        return NB_ERR_INVALID;
    }
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) {
        return NB_ERR_UNAVAILABLE;
    }
    return NB_ERR_DB;
}

/* Fills 'err' from a COPY that failed; 'res' may be NULL. */
static void set_copy_error(PGconn *pg, const PGresult *res, struct nb_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (PQstatus(pg) == CONNECTION_BAD || !primary) {
        const char *text = PQerrorMessage(pg);
        nb_error_set(err, PQstatus(pg) == CONNECTION_BAD ? NB_ERR_UNAVAILABLE : NB_ERR_DB,
                     "could not copy into the request log: %.*s", (int)strcspn(text, "\n"), text);
        return;
    }
    nb_error_set(err, code_for_sqlstate(state), "%s", primary);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    nb_error_detail(err, "SQLSTATE %s%s%s", state ? state : "?????", detail ? ": " : "",
                    detail ? detail : "");
}

/* Sends the lines of 'ws[0..n)' with one COPY into 'table'. Returns 0, or -1 with 'err'. */
static int copy_lines(PGconn *pg, const char *table, struct waiter *const *ws, int n,
                      struct nb_error *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "COPY %s (" COLUMNS ") FROM STDIN", table);
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        set_copy_error(pg, res, err);
        PQclear(res);
        return -1;
    }
    PQclear(res);

    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (PQputCopyData(pg, ws[i]->line.data, (int)ws[i]->line.len) != 1) {
            set_copy_error(pg, NULL, err);
            rc = -1;
        }
    }
    if (PQputCopyEnd(pg, rc == 0 ? NULL : "sending the rows failed") != 1 && rc == 0) {
        set_copy_error(pg, NULL, err);
        rc = -1;
    }
    while ((res = PQgetResult(pg)) != NULL) {
        ExecStatusType status = PQresultStatus(res);
        if (status != PGRES_COMMAND_OK && rc == 0) {
            set_copy_error(pg, res, err);
            rc = -1;
        }
        PQclear(res);
        if (status == PGRES_COPY_IN) {
            /* still copying after a failed end: leave the connection to be reset */
            break;
        }
    }
    return rc;
}

/* One attempt at committing 'ws[0..n)'. When 'tolerant', rows whose key is already stored are
 * skipped instead of failing the batch. Waits for a pooled connection until 'deadline_us' at the
 * latest. Returns 0, or -1 with 'err'. */
static int insert_batch(struct gw_reqlog *log, struct waiter *const *ws, int n, bool tolerant,
                        int64_t deadline_us, struct nb_error *err)
{
    int64_t wait_ms = (deadline_us - mono_us()) / 1000;
    wait_ms = wait_ms < 1 ? 1 : wait_ms > INT_MAX ? INT_MAX : wait_ms;
    struct nb_pg_conn *conn = nb_pg_acquire(log->pool, (int)wait_ms, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    if (nb_pg_begin(conn, err) < 0) {
        goto cleanup;
    }
    if (tolerant) {
        if (nb_pg_command(
                conn, "CREATE TEMPORARY TABLE gw_reqlog_stage (LIKE request_log) ON COMMIT DROP",
                err) < 0 ||
            copy_lines(nb_pg_raw(conn), "gw_reqlog_stage", ws, n, err) < 0 ||
            nb_pg_command(conn,
                          "INSERT INTO request_log SELECT * FROM gw_reqlog_stage "
                          "ON CONFLICT DO NOTHING",
                          err) < 0) {
            goto cleanup;
        }
    } else if (copy_lines(nb_pg_raw(conn), "request_log", ws, n, err) < 0) {
        goto cleanup;
    }
    rc = nb_pg_commit(conn, err);
cleanup:
    if (rc < 0) {
        nb_pg_rollback(conn);
    }
    nb_pg_release(conn);
    return rc;
}

/* Hands the outcome to the waiters of 'ws[0..n)' and wakes them. 'err' is used when 'rc' < 0. */
static void finish(struct gw_reqlog *log, struct waiter *const *ws, int n, int rc,
                   const struct nb_error *err)
{
    pthread_mutex_lock(&log->mu);
    for (int i = 0; i < n; i++) {
        struct waiter *w = ws[i];
        w->rc = rc;
        if (rc < 0 && w->err) {
            *w->err = *err;
        }
        w->done = true;
        pthread_cond_signal(&w->wakeup);
    }
    if (rc == 0) {
        log->stats.records += (uint64_t)n;
        log->stats.batches++;
        if ((uint64_t)n > log->stats.max_batch_seen) {
            log->stats.max_batch_seen = (uint64_t)n;
        }
    } else {
        log->stats.failed_records += (uint64_t)n;
    }
    pthread_mutex_unlock(&log->mu);
}

/* Commits 'ws[0..n)' (oldest first), retrying with back-off until the oldest record has waited
 * 'retry_ms', and settles every waiter. Called by the writer thread only. */
static void commit_batch(struct gw_reqlog *log, struct waiter *const *ws, int n)
{
    int64_t deadline = ws[0]->queued_at_us + (int64_t)log->opt.retry_ms * 1000;
    int64_t backoff_ms = FIRST_BACKOFF_MS;
    bool tolerant = false;
    struct nb_error err = {0};
    for (int attempt = 0;; attempt++) {
        if (insert_batch(log, ws, n, tolerant, deadline, &err) == 0) {
            if (attempt > 0) {
                nb_info("wrote %d request log records after %d failed attempts", n, attempt);
            }
            finish(log, ws, n, 0, NULL);
            return;
        }
        if (err.code == NB_ERR_INVALID && n > 1) {
            /* Some record is refused: find it, and commit the others. */
            commit_batch(log, ws, n / 2);
            commit_batch(log, ws + n / 2, n - n / 2);
            return;
        }
        int64_t now = mono_us();
        if (err.code == NB_ERR_INVALID || now >= deadline) {
            nb_err("could not write %d request log records: %s", n, err.msg);
            finish(log, ws, n, -1, &err);
            return;
        }
        if (attempt == 0) {
            nb_warn("could not write %d request log records, retrying for up to %d ms: %s", n,
                    log->opt.retry_ms, err.msg);
        }
        pthread_mutex_lock(&log->mu);
        log->stats.retries++;
        pthread_mutex_unlock(&log->mu);
        /* Whatever failed, the next attempt must not trip over rows the last one committed. */
        tolerant = true;
        if (err.code != NB_ERR_CONFLICT) {
            int64_t left_ms = (deadline - now + 999) / 1000;
            sleep_ms(backoff_ms < left_ms ? backoff_ms : left_ms);
            backoff_ms = backoff_ms * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff_ms * 2;
        }
    }
}

/* Creates today's and the next days' partitions. Returns 0, or -1 with 'err'. */
static int ensure_partitions(struct gw_reqlog *log, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(log->pool, log->opt.retry_ms, err);
    if (!conn) {
        return -1;
    }
    char days[16];
    snprintf(days, sizeof days, "%d", log->opt.days_ahead);
    const char *params[] = {days};
    PGresult *res =
        nb_pg_exec(conn, "SELECT request_log_ensure_partitions($1::integer)", 1, params, err);
    nb_pg_release(conn);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Called by the writer before each batch: once a day, makes the partitions of the days ahead. A
 * failure is only logged: the default partition keeps the rows until the next attempt. */
static void ensure_partitions_daily(struct gw_reqlog *log)
{
    int64_t day = utc_day_now();
    if (day == log->ensured_day || mono_us() < log->next_ensure_us) {
        return;
    }
    struct nb_error err = {0};
    if (ensure_partitions(log, &err) < 0) {
        nb_warn("could not create the request log partitions of the coming days: %s", err.msg);
        log->next_ensure_us = mono_us() + ENSURE_RETRY_US;
        return;
    }
    log->ensured_day = day;
}

static void *writer_main(void *arg)
{
    struct gw_reqlog *log = arg;
    pthread_mutex_lock(&log->mu);
    for (;;) {
        while (!log->head && !log->stopping) {
            pthread_cond_wait(&log->work, &log->mu);
        }
        if (!log->head) {
            break; /* stopping, and everything is written */
        }
        if (log->opt.max_wait_us > 0) {
            struct timespec until = mono_deadline(log->head->queued_at_us + log->opt.max_wait_us);
            while (!log->stopping && log->queued < log->opt.max_batch &&
                   pthread_cond_timedwait(&log->work, &log->mu, &until) != ETIMEDOUT) {
            }
        }
        int n = 0;
        while (log->head && n < log->opt.max_batch) {
            log->batch[n++] = log->head;
            log->head = log->head->next;
        }
        if (!log->head) {
            log->tail = NULL;
        }
        log->queued -= n;
        pthread_mutex_unlock(&log->mu);

        ensure_partitions_daily(log);
        commit_batch(log, log->batch, n);

        pthread_mutex_lock(&log->mu);
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

struct gw_reqlog *gw_reqlog_new(struct nb_pg_pool *pool, const struct gw_reqlog_options *opt,
                                struct nb_error *err)
{
    struct gw_reqlog *log = calloc(1, sizeof *log);
    if (!log) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    log->pool = pool;
    if (opt) {
        log->opt = *opt;
    }
    if (log->opt.max_batch <= 0) {
        log->opt.max_batch = DEFAULT_MAX_BATCH;
    }
    if (log->opt.max_wait_us < 0) {
        log->opt.max_wait_us = 0;
    }
    if (log->opt.retry_ms <= 0) {
        log->opt.retry_ms = DEFAULT_RETRY_MS;
    }
    if (log->opt.days_ahead <= 0) {
        log->opt.days_ahead = DEFAULT_DAYS_AHEAD;
    }
    log->batch = calloc((size_t)log->opt.max_batch, sizeof *log->batch);
    if (!log->batch) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        free(log);
        return NULL;
    }
    if (ensure_partitions(log, err) < 0) {
        free(log->batch);
        free(log);
        return NULL;
    }
    log->ensured_day = utc_day_now();

    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&log->work, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&log->mu, NULL);
    int rc = pthread_create(&log->thread, NULL, writer_main, log);
    if (rc != 0) {
        nb_error_errno(err, rc, "could not start the request log writer");
        pthread_cond_destroy(&log->work);
        pthread_mutex_destroy(&log->mu);
        free(log->batch);
        free(log);
        return NULL;
    }
    return log;
}

void gw_reqlog_free(struct gw_reqlog *log)
{
    if (!log) {
        return;
    }
    pthread_mutex_lock(&log->mu);
    log->stopping = true;
    pthread_cond_signal(&log->work);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->thread, NULL);
    pthread_cond_destroy(&log->work);
    pthread_mutex_destroy(&log->mu);
    free(log->batch);
    free(log);
}

/* Queues 'w' and sleeps until the writer has settled it ('w->rc'). 'w' stays linked to the queue or
 * a batch only while this runs, which is why it may live on the caller's stack. */
static void wait_committed(struct gw_reqlog *log, struct waiter *w)
{
    pthread_mutex_lock(&log->mu);
    if (log->stopping) {
        nb_error_set(w->err, NB_ERR_UNAVAILABLE, "the request log is shutting down");
        w->rc = -1;
    } else {
        w->queued_at_us = mono_us();
        if (log->tail) {
            log->tail->next = w;
        } else {
            log->head = w;
        }
        log->tail = w;
        log->queued++;
        pthread_cond_signal(&log->work);
        while (!w->done) {
            pthread_cond_wait(&w->wakeup, &log->mu);
        }
    }
    pthread_mutex_unlock(&log->mu);
}

int gw_reqlog_write(struct gw_reqlog *log, const struct gw_reqlog_record *rec, struct nb_error *err)
{
    if (check_record(rec, err) < 0) {
        return -1;
    }
    struct waiter w = {.line = NB_BUF_INIT, .err = err};
    format_line(&w.line, rec);
    pthread_cond_init(&w.wakeup, NULL);

    wait_committed(log, &w);
    pthread_cond_destroy(&w.wakeup);
    nb_buf_free(&w.line);
    return w.rc;
}

void gw_reqlog_get_stats(struct gw_reqlog *log, struct gw_reqlog_stats *out)
{
    pthread_mutex_lock(&log->mu);
    *out = log->stats;
    pthread_mutex_unlock(&log->mu);
}

/* --- query ------------------------------------------------------------------------------------ */

/* Returns column 'col' of row 'row' as a JSON string, or JSON null when it is SQL NULL. */
static json_t *text_or_null(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        return json_null();
    }
    json_t *v = json_string(PQgetvalue(res, row, col));
    return v ? v : json_null(); /* not UTF-8: only if written behind this module's back */
}

/* Builds the JSON object of row 'row' of the query in gw_reqlog_query(). Returns a new
 * reference, or NULL when out of memory. */
static json_t *row_to_json(const PGresult *res, int row)
{
    char when[40];
    format_time(strtoll(PQgetvalue(res, row, 1), NULL, 10), true, when, sizeof when);
    json_t *params = json_loads(PQgetvalue(res, row, 5), JSON_DECODE_ANY, NULL);
    return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:I, s:o, s:I, s:o, s:o, s:o}", "request_id",
                     text_or_null(res, row, 0), "time", when, "tenant_id",
                     text_or_null(res, row, 2), "access_key_id", text_or_null(res, row, 3),
                     "action", text_or_null(res, row, 4), "params",
                     params ? params : text_or_null(res, row, 5), "http_status",
                     (json_int_t)strtoll(PQgetvalue(res, row, 6), NULL, 10), "error_code",
                     text_or_null(res, row, 7), "latency_us",
                     (json_int_t)strtoll(PQgetvalue(res, row, 8), NULL, 10), "source_addr",
                     text_or_null(res, row, 9), "user_agent", text_or_null(res, row, 10), "api",
                     text_or_null(res, row, 11));
}

json_t *gw_reqlog_query(struct nb_pg_pool *pool, const struct gw_reqlog_filter *f,
                        struct nb_error *err)
{
    int limit = f->limit == 0 ? GW_REQLOG_QUERY_DEFAULT : f->limit;
    if (limit < 1 || limit > GW_REQLOG_QUERY_MAX) {
        nb_error_set(err, NB_ERR_INVALID, "invalid request log limit %d", f->limit);
        nb_error_detail(err, "The limit must be from 1 to %d.", GW_REQLOG_QUERY_MAX);
        return NULL;
    }
    if (f->from_us < 0 || f->from_us >= MAX_TIME_US || f->to_us < 0 || f->to_us >= MAX_TIME_US ||
        (f->from_us && f->to_us && f->from_us > f->to_us)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid request log time range from %" PRId64 " to %" PRId64, f->from_us,
                     f->to_us);
        return NULL;
    }

    /* Only the conditions asked for appear, so that the planner sees which index fits. */
    const char *params[6];
    char from[40], to[40], limit_text[16];
    int n = 0;
    struct nb_buf sql = NB_BUF_INIT;
    nb_buf_puts(&sql, "SELECT request_id, (extract(epoch FROM \"time\") * 1000000)::bigint, "
                      "tenant_id, access_key_id, action, params, http_status, error_code, "
                      "latency_us, host(source_addr), user_agent, api "
                      "FROM request_log WHERE true");
    if (f->tenant_id) {
        params[n++] = f->tenant_id;
        nb_buf_printf(&sql, " AND tenant_id = $%d", n);
    }
    if (f->action) {
        params[n++] = f->action;
        nb_buf_printf(&sql, " AND action = $%d", n);
    }
    if (f->error_code) {
        params[n++] = f->error_code;
        nb_buf_printf(&sql, " AND error_code = $%d", n);
    } else if (f->errors_only) {
        nb_buf_puts(&sql, " AND error_code IS NOT NULL");
    }
    if (f->from_us) {
        format_time(f->from_us, false, from, sizeof from);
        params[n++] = from;
        nb_buf_printf(&sql, " AND \"time\" >= $%d::timestamptz", n);
    }
    if (f->to_us) {
        format_time(f->to_us, false, to, sizeof to);
        params[n++] = to;
        nb_buf_printf(&sql, " AND \"time\" < $%d::timestamptz", n);
    }
    snprintf(limit_text, sizeof limit_text, "%d", limit);
    params[n++] = limit_text;
    nb_buf_printf(&sql, " ORDER BY \"time\" DESC LIMIT $%d::integer", n);

    json_t *out = NULL;
    PGresult *res = NULL;
    struct nb_pg_conn *conn = nb_pg_acquire(pool, DEFAULT_RETRY_MS, err);
    if (!conn) {
        goto cleanup;
    }
    res = nb_pg_exec(conn, sql.data, n, params, err);
    nb_pg_release(conn);
    if (!res) {
        goto cleanup;
    }
    out = json_array();
    for (int row = 0; out && row < PQntuples(res); row++) {
        if (json_array_append_new(out, row_to_json(res, row)) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    if (!out) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
    }
cleanup:
    PQclear(res);
    nb_buf_free(&sql);
    return out;
}
