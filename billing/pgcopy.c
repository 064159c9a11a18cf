/* Binary COPY reads and writes (pgcopy.h). The format: an 11-byte signature, a 4-byte flags
 * word and a 4-byte header extension length (with that many bytes), then per row a 2-byte field
 * count and per field a 4-byte length (-1: NULL) and the bytes, then a field count of -1. All
 * integers are big-endian. */
#include "pgcopy.h"

#include "nubo/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 16
#define FLUSH_AT   (1u << 20)

static const char SIGNATURE[11] = "PGCOPY\n\377\r\n";

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int64_t billing_field_int64(const struct billing_field *f)
{
    const unsigned char *p = (const unsigned char *)f->data;
    return (int64_t)((uint64_t)get32(p) << 32 | get32(p + 4));
}

/* Fills 'err' from a failed COPY: 'res' may be NULL (libpq's own error). */
static void set_copy_error(PGconn *pg, const PGresult *res, struct nb_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (PQstatus(pg) == CONNECTION_BAD || !primary || !state) {
        const char *text =
            res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(pg);
        nb_error_set(err, PQstatus(pg) == CONNECTION_BAD ? NB_ERR_UNAVAILABLE : NB_ERR_DB,
                     "COPY failed: %.*s", (int)strcspn(text, "\n"), text);
        return;
    }
    enum nb_errcode code = NB_ERR_DB;
    if (!strcmp(state, "23505")) {
        code = NB_ERR_CONFLICT;
    } else if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2)) {
        code = NB_ERR_INVALID;
    }
    nb_error_set(err, code, "%s", primary);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    nb_error_detail(err, "SQLSTATE %s%s%s", state, detail ? ": " : "", detail ? detail : "");
}

/* Reads the remaining results of a COPY; the first failure goes into 'err' unless 'rc' is already
 * -1. Returns the final rc. */
static int finish_results(PGconn *pg, int rc, long long *rows, struct nb_error *err)
{
    PGresult *res;
    while ((res = PQgetResult(pg)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK) {
            if (rows) {
                *rows = atoll(PQcmdTuples(res));
            }
        } else if (rc == 0) {
            set_copy_error(pg, res, err);
            rc = -1;
        }
        PQclear(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
            break; /* still copying after a failure: the connection is reset on its next use */
        }
    }
    return rc;
}

/* The parser of a COPY read: 'pos' bytes of 'buf' are consumed, 'len' are held. */
struct reader {
    char *buf;
    size_t len, cap, pos;
    bool header_done, trailer_seen;
};

static int bad_format(struct nb_error *err, const char *why)
{
    nb_error_set(err, NB_ERR_INTERNAL, "could not read binary COPY data: %s", why);
    return -1;
}

/* Parses the complete rows held in 'r', calling 'fn' for each. Returns 0, or -1 with 'err'. */
static int parse_rows(struct reader *r, billing_copy_row_fn fn, void *ctx, struct nb_error *err)
{
    const unsigned char *b = (const unsigned char *)r->buf;
    if (!r->header_done) {
        if (r->len < 19) {
            return 0;
        }
        if (memcmp(b, SIGNATURE, sizeof SIGNATURE)) {
            return bad_format(err, "no signature");
        }
        size_t ext = get32(b + 15);
        if (r->len < 19 + ext) {
            return 0;
        }
        r->pos = 19 + ext;
        r->header_done = true;
    }
    struct billing_field fields[MAX_FIELDS];
    while (!r->trailer_seen && r->len - r->pos >= 2) {
        size_t p = r->pos;
        int n = (int16_t)(b[p] << 8 | b[p + 1]);
        p += 2;
        if (n == -1) {
            r->trailer_seen = true;
            r->pos = p;
            break;
        }
        if (n < 0 || n > MAX_FIELDS) {
            return bad_format(err, "bad field count");
        }
        bool complete = true;
        for (int i = 0; i < n; i++) {
            if (r->len - p < 4) {
                complete = false;
                break;
            }
            int32_t flen = (int32_t)get32(b + p);
            p += 4;
            if (flen < -1) {
                return bad_format(err, "bad field length");
            }
            if (flen > 0 && r->len - p < (size_t)flen) {
                complete = false;
                break;
            }
            fields[i].data = r->buf + p;
            fields[i].len = flen;
            p += flen > 0 ? (size_t)flen : 0;
        }
        if (!complete) {
            break;
        }
        if (fn(ctx, fields, n, err) < 0) {
            return -1;
        }
        r->pos = p;
    }
    /* Keep the incomplete rest at the front. */
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
    return 0;
}

/* Appends 'n' bytes at 'data' to 'r'. Returns 0, or -1 with 'err' set. */
static int append(struct reader *r, const char *data, size_t n, struct nb_error *err)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 1u << 16;
        while (cap < r->len + n) {
            cap *= 2;
        }
        char *nb = realloc(r->buf, cap);
        if (!nb) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
            return -1;
        }
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return 0;
}

/* Runs the COPY read 'sql', appending its output to 'r' and, when 'fn' is not NULL, parsing
 * the rows as they come. */
static int run_read(PGconn *pg, const char *sql, struct reader *r, billing_copy_row_fn fn,
                    void *ctx, struct nb_error *err)
{
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        set_copy_error(pg, res, err);
        PQclear(res);
        return finish_results(pg, -1, NULL, err);
    }
    PQclear(res);
    int rc = 0;
    for (;;) {
        char *data = NULL;
        int n = PQgetCopyData(pg, &data, 0);
        if (n == -1) {
            break;
        }
        if (n < 0) {
            if (rc == 0) {
                set_copy_error(pg, NULL, err);
            }
            rc = -1;
            break;
        }
        /* After a failure the rest is drained: a COPY OUT cannot be cancelled in-band. */
        if (rc == 0 &&
            (append(r, data, (size_t)n, err) < 0 || (fn && parse_rows(r, fn, ctx, err) < 0))) {
            rc = -1;
        }
        PQfreemem(data);
    }
    return finish_results(pg, rc, NULL, err);
}

int billing_copy_read(PGconn *pg, const char *sql, billing_copy_row_fn fn, void *ctx,
                      struct nb_error *err)
{
    struct reader r = {0};
    int rc = run_read(pg, sql, &r, fn, ctx, err);
    if (rc == 0 && (!r.trailer_seen || r.len)) {
        rc = bad_format(err, "truncated");
    }
    free(r.buf);
    return rc;
}

int billing_copy_fetch(PGconn *pg, const char *sql, struct billing_copy_data *out,
                       struct nb_error *err)
{
    struct reader r = {.buf = out->buf, .len = out->len, .cap = out->cap};
    int rc = run_read(pg, sql, &r, NULL, NULL, err);
    out->buf = r.buf;
    out->len = r.len;
    out->cap = r.cap;
    return rc;
}

int billing_copy_parse(const struct billing_copy_data *data, billing_copy_row_fn fn, void *ctx,
                       struct nb_error *err)
{
    /* A complete output is consumed whole; parse_rows() moves only the unconsumed bytes of a
     * truncated one (an error anyway) to the front of the buffer. */
    struct reader r = {.buf = data->buf, .len = data->len, .cap = data->len};
    if (parse_rows(&r, fn, ctx, err) < 0) {
        return -1;
    }
    return r.trailer_seen && !r.len ? 0 : bad_format(err, "truncated");
}

int billing_copy_begin(struct billing_copy_writer *w, PGconn *pg, const char *sql,
                       struct nb_error *err)
{
    memset(w, 0, sizeof *w);
    w->pg = pg;
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        set_copy_error(pg, res, err);
        PQclear(res);
        finish_results(pg, -1, NULL, err);
        return -1;
    }
    PQclear(res);
    static const char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0";
    w->cap = FLUSH_AT + 4096;
    w->buf = malloc(w->cap);
    if (!w->buf) {
        w->failed = 1;
        return 0;
    }
    memcpy(w->buf, header, sizeof header);
    w->len = sizeof header;
    return 0;
}

static void put(struct billing_copy_writer *w, const void *p, size_t n)
{
    if (w->failed) {
        return;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap * 2 > w->len + n ? w->cap * 2 : w->len + n;
        char *nb = realloc(w->buf, cap);
        if (!nb) {
            w->failed = 1;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put32(struct billing_copy_writer *w, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(w, b, 4);
}

static void flush(struct billing_copy_writer *w)
{
    if (!w->failed && w->len && PQputCopyData(w->pg, w->buf, (int)w->len) != 1) {
        w->failed = 2;
    }
    w->len = 0;
}

void billing_copy_row(struct billing_copy_writer *w, int nfields)
{
    if (w->len >= FLUSH_AT) {
        flush(w);
    }
    unsigned char b[2] = {(unsigned char)(nfields >> 8), (unsigned char)nfields};
    put(w, b, 2);
}

void billing_copy_text(struct billing_copy_writer *w, const char *s)
{
    size_t n = strlen(s);
    put32(w, (uint32_t)n);
    put(w, s, n);
}

void billing_copy_int64(struct billing_copy_writer *w, int64_t v)
{
    put32(w, 8);
    put32(w, (uint32_t)((uint64_t)v >> 32));
    put32(w, (uint32_t)v);
}

void billing_copy_bool(struct billing_copy_writer *w, bool v)
{
    unsigned char b = v ? 1 : 0;
    put32(w, 1);
    put(w, &b, 1);
}

int billing_copy_end(struct billing_copy_writer *w, long long *rows, struct nb_error *err)
{
    static const unsigned char trailer[2] = {0xff, 0xff};
    put(w, trailer, 2);
    flush(w);
    int rc = 0;
    if (w->failed) {
        if (w->failed == 1) {
            nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        } else {
            set_copy_error(w->pg, NULL, err);
        }
        rc = -1;
    }
    if (PQputCopyEnd(w->pg, rc == 0 ? NULL : "sending the rows failed") != 1 && rc == 0) {
        set_copy_error(w->pg, NULL, err);
        rc = -1;
    }
    free(w->buf);
    w->buf = NULL;
    return finish_results(w->pg, rc, rows, err);
}
