/* Invoice export as JSON or CSV (billing.h, docs/billing.md), for nubo-billing --export and for
 * the gateway's GET /v1/invoices/{id} as CSV (both write CSV with this code only). Money stays
 * integer micro-units; quantities, which may pass 2^53 (byte-seconds), are decimal strings in
 * JSON. */
#include "billing.h"

#include "nubo/error.h"
#include "nubo/pg.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const LINE_COLUMNS[] = {
    "line_no",           "kind",        "meter",     "sku",
    "resource_id",       "plan_id",     "unit",      "unit_quantity",
    "unit_price_micros", "discount_bp", "quantity",  "exact_micros",
    "amount_micros",     "first_hour",  "last_hour",
};
#define N_LINE_COLUMNS (sizeof LINE_COLUMNS / sizeof LINE_COLUMNS[0])

/* Columns of LINE_COLUMNS that are JSON integers (the others are strings). */
static bool column_is_int(size_t i)
{
    return i == 0 || i == 7 || i == 8 || i == 9 || i == 12;
}

static void csv_field(FILE *out, const char *v)
{
    if (!strpbrk(v, ",\"\r\n")) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (; *v; v++) {
        if (*v == '"') {
            fputc('"', out);
        }
        fputc(*v, out);
    }
    fputc('"', out);
}

/* Writes the invoice 'inv' (one row: id, tenant_id, period, state, currency, total_micros,
 * created_at) with its lines to 'out'. */
static int write_invoice(struct nb_pg_conn *conn, PGresult *inv, enum billing_format format,
                         FILE *out, struct nb_error *err)
{
    const char *id = PQgetvalue(inv, 0, 0);
    const char *lp[1] = {id};
    PGresult *lines =
        nb_pg_exec(conn,
                   "SELECT line_no, kind, meter, sku, resource_id, plan_id, unit, unit_quantity,"
                   " unit_price_micros, discount_bp, quantity, exact_micros, amount_micros,"
                   " to_char(first_hour AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                   " to_char(last_hour AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                   " FROM invoice_lines WHERE invoice_id = $1 ORDER BY line_no",
                   1, lp, err);
    if (!lines) {
        return -1;
    }
    int n = PQntuples(lines);
    if (format == BILLING_CSV) {
        fputs("invoice_id,tenant_id,period,state,currency", out);
        for (size_t c = 0; c < N_LINE_COLUMNS; c++) {
            fprintf(out, ",%s", LINE_COLUMNS[c]);
        }
        fputs("\r\n", out);
        for (int r = 0; r < n; r++) {
            for (int c = 0; c < 5; c++) {
                csv_field(out, PQgetvalue(inv, 0, c));
                fputc(',', out);
            }
            for (size_t c = 0; c < N_LINE_COLUMNS; c++) {
                csv_field(out, PQgetvalue(lines, r, (int)c));
                fputs(c + 1 < N_LINE_COLUMNS ? "," : "\r\n", out);
            }
        }
    } else {
        json_t *arr = json_array();
        for (int r = 0; r < n; r++) {
            json_t *o = json_object();
            for (size_t c = 0; c < N_LINE_COLUMNS; c++) {
                const char *v = PQgetvalue(lines, r, (int)c);
                json_object_set_new(o, LINE_COLUMNS[c],
                                    column_is_int(c) ? json_integer(strtoll(v, NULL, 10))
                                                     : json_string(v));
            }
            json_array_append_new(arr, o);
        }
        json_t *doc =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "invoice_id", id, "tenant_id",
                      PQgetvalue(inv, 0, 1), "period", PQgetvalue(inv, 0, 2), "state",
                      PQgetvalue(inv, 0, 3), "currency", PQgetvalue(inv, 0, 4), "total_micros",
                      (json_int_t)strtoll(PQgetvalue(inv, 0, 5), NULL, 10), "created_at",
                      PQgetvalue(inv, 0, 6), "lines", arr);
        json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        json_decref(doc);
    }
    PQclear(lines);
    if (ferror(out)) {
        nb_error_set(err, NB_ERR_IO, "could not write the export");
        return -1;
    }
    return 0;
}

/* Writes the invoice that 'sql' (the columns write_invoice() wants, parameters 'p') selects, with
 * its lines, read in one snapshot: the lines are the invoice's even while --invoice rewrites the
 * period's drafts. Returns 1, 0 when there is no such invoice, or -1 with 'err' set. */
static int export_one(struct nb_pg_conn *conn, const char *sql, const char *const p[2],
                      enum billing_format format, FILE *out, struct nb_error *err)
{
    if (nb_pg_begin(conn, err) < 0) {
        return -1;
    }
    PGresult *inv = NULL;
    int rc;
    if (nb_pg_command(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", err) <
            0 ||
        !(inv = nb_pg_exec(conn, sql, 2, p, err))) {
        rc = -1;
    } else if (PQntuples(inv) != 1) {
        rc = 0;
    } else {
        rc = write_invoice(conn, inv, format, out, err) < 0 ? -1 : 1;
    }
    PQclear(inv);
    nb_pg_rollback(conn); /* read only: nothing to keep */
    return rc;
}

#define INVOICE_SQL                                                                                \
    "SELECT id, tenant_id, period, state, currency, total_micros,"                                 \
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM invoices"

int billing_export(struct nb_pg_conn *conn, const char *period, const char *tenant_id,
                   enum billing_format format, FILE *out, struct nb_error *err)
{
    if (billing_period_check(period, err) < 0) {
        return -1;
    }
    const char *p[2] = {period, tenant_id};
    int rc =
        export_one(conn, INVOICE_SQL " WHERE period = $1 AND tenant_id = $2", p, format, out, err);
    if (rc == 0) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "no invoice for tenant \"%s\" in period \"%s\"",
                     tenant_id, period);
    }
    return rc > 0 ? 0 : -1;
}

int billing_export_invoice(struct nb_pg_conn *conn, const char *id, const char *tenant_id,
                           enum billing_format format, FILE *out, struct nb_error *err)
{
    const char *p[2] = {id, tenant_id};
    int rc = export_one(conn, INVOICE_SQL " WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)",
                        p, format, out, err);
    if (rc == 0) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "the invoice \"%s\" does not exist", id);
    }
    return rc > 0 ? 0 : -1;
}
