/* Bulk reads and writes for billing: PostgreSQL's binary COPY format over libpq.
 *
 * Aggregation streams a batch's events out of PostgreSQL and its usage records back in. Binary
 * COPY carries integers and timestamps as 8-byte big-endian values (a timestamptz is microseconds
 * since 2000-01-01 00:00 UTC, -infinity and infinity the extreme int64 values) and text as its
 * bytes, so nothing is formatted, parsed or escaped on either side. */
#ifndef NUBO_BILLING_PGCOPY_H
#define NUBO_BILLING_PGCOPY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;

/* One field of a row read: 'len' bytes at 'data' (not NUL-terminated); 'len' -1 is SQL NULL. */
struct billing_field {
    const char *data;
    int32_t len;
};

/* Called for each row of a COPY read, with its 'n' fields, which live until it returns. Returns
 * 0, or -1 with 'err' set to stop the read. */
typedef int (*billing_copy_row_fn)(void *ctx, const struct billing_field *fields, int n,
                                   struct nb_error *err);

/* Runs 'sql', a "COPY (...) TO STDOUT (FORMAT binary)", and calls 'fn' with 'ctx' for each row.
 * Returns 0, or -1 with 'err' set (by 'fn', or from the server). The connection is ready for the
 * next command either way, unless it broke. */
int billing_copy_read(PGconn *pg, const char *sql, billing_copy_row_fn fn, void *ctx,
                      struct nb_error *err);

/* The whole output of a COPY read, kept to be parsed later (e.g. read on another connection in
 * another thread). */
struct billing_copy_data {
    char *buf;
    size_t len, cap;
};

/* Runs 'sql' as billing_copy_read() does and appends its output to 'out' (initially zeroed).
 * Returns 0, or -1 with 'err' set. Free 'out->buf' with free(). */
int billing_copy_fetch(PGconn *pg, const char *sql, struct billing_copy_data *out,
                       struct nb_error *err);

/* Calls 'fn' for each row of 'data', the output of billing_copy_fetch(). Returns 0, or -1 with
 * 'err' set. */
int billing_copy_parse(const struct billing_copy_data *data, billing_copy_row_fn fn, void *ctx,
                       struct nb_error *err);

/* The int64 (bigint, timestamptz) in a binary field of 8 bytes. */
int64_t billing_field_int64(const struct billing_field *f);

/* A COPY ... FROM STDIN (FORMAT binary) in progress: rows are buffered and sent 1 MiB at a time.
 * Fields are public so that it can live on the stack; use the functions below only. */
struct billing_copy_writer {
    PGconn *pg;
    char *buf;
    size_t len, cap;
    int failed; /* a send or an allocation failed: end reports it */
};

/* Starts 'sql', a "COPY table (columns) FROM STDIN (FORMAT binary)". Returns 0, or -1 with 'err'
 * set (nothing to end then). */
int billing_copy_begin(struct billing_copy_writer *w, PGconn *pg, const char *sql,
                       struct nb_error *err);

/* Starts a row of 'nfields' fields, then one call per field in column order. */
void billing_copy_row(struct billing_copy_writer *w, int nfields);
void billing_copy_text(struct billing_copy_writer *w, const char *s);
void billing_copy_int64(struct billing_copy_writer *w, int64_t v);
void billing_copy_bool(struct billing_copy_writer *w, bool v);

/* Sends the rest and ends the COPY; frees the buffer. Stores the rows copied in '*rows' (may be
 * NULL). Returns 0, or -1 with 'err' set (e.g. NB_ERR_CONFLICT for a duplicate key). */
int billing_copy_end(struct billing_copy_writer *w, long long *rows, struct nb_error *err);

#endif
