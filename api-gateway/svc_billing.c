/* Billing service (see svc_billing.h). Reads only; the one write is a tenant's budget. Rating
 * is billing_rate() in PostgreSQL, the same function nubo-billing invoices with, and an invoice
 * as CSV is nubo-billing's export (billing/export.c, linked from libnubo-billing.a). */
#include "svc_billing.h"

#include "auth.h"
#include "billing.h"
#include "gateway.h"
#include "svc.h"
#include "svc_sql.h"

#include "nubo/error.h"
#include "nubo/json.h"
#include "nubo/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISO_TIME(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Resolves whose billing the call is about: the caller's tenant, or 'tenant' for an admin. */
static const char *billing_tenant(const struct gw_principal *who, const char *tenant,
                                  struct nb_error *err)
{
    if (!tenant || !strcmp(tenant, who->tenant_id)) {
        return who->tenant_id;
    }
    return gw_require_admin(who, err) < 0 ? NULL : tenant;
}

static json_t *int_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null()
                                      : json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *str_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

json_t *gw_billing_usage(struct gw_ctx *gw, const struct gw_principal *who, const char *tenant,
                         struct nb_error *err)
{
    const char *t = billing_tenant(who, tenant, err);
    struct nb_pg_conn *conn = t ? nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err) : NULL;
    if (!conn) {
        return NULL;
    }
    const char *p[1] = {t};
    PGresult *res =
        nb_pg_exec(conn,
                   "WITH cur AS (SELECT billing_period_of(now()) AS period)"
                   " SELECT cur.period, r.meter, r.sku, r.unit, sum(r.quantity)::text,"
                   "        sum(r.amount_micros),"
                   "        (SELECT " ISO_TIME(
                       "aggregated_until") " FROM billing_watermark)"
                                           " FROM cur LEFT JOIN LATERAL billing_rate($1, "
                                           "cur.period) r ON r.kind = 'usage'"
                                           " GROUP BY cur.period, r.meter, r.sku, r.unit ORDER BY "
                                           "r.meter, r.sku",
                   1, p, err);
    nb_pg_release(conn);
    if (!res) {
        return NULL;
    }
    json_t *meters = json_array();
    long long total = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        if (PQgetisnull(res, r, 1)) {
            continue; /* no usage yet: the LEFT JOIN's empty row */
        }
        total += PQgetisnull(res, r, 5) ? 0 : strtoll(PQgetvalue(res, r, 5), NULL, 10);
        json_array_append_new(
            meters, json_pack("{s:s, s:s, s:s, s:s, s:o}", "meter", PQgetvalue(res, r, 1), "sku",
                              PQgetvalue(res, r, 2), "unit", PQgetvalue(res, r, 3), "quantity",
                              PQgetvalue(res, r, 4), "amount_micros", int_or_null(res, r, 5)));
    }
    json_t *doc = json_pack("{s:s, s:s, s:o, s:o, s:I}", "tenant_id", t, "period",
                            PQgetvalue(res, 0, 0), "aggregated_until", str_or_null(res, 0, 6),
                            "meters", meters, "total_micros", (json_int_t)total);
    PQclear(res);
    return doc;
}

#define INVOICE_COLUMNS                                                                            \
    "id, tenant_id, period, state, currency, total_micros, " ISO_TIME("created_at") ", " ISO_TIME( \
        "closed_at")

static json_t *invoice_json(PGresult *res, int r)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:o}", "invoice_id",
                     PQgetvalue(res, r, 0), "tenant_id", PQgetvalue(res, r, 1), "period",
                     PQgetvalue(res, r, 2), "state", PQgetvalue(res, r, 3), "currency",
                     PQgetvalue(res, r, 4), "total_micros", int_or_null(res, r, 5), "created_at",
                     PQgetvalue(res, r, 6), "closed_at", str_or_null(res, r, 7));
}

json_t *gw_billing_invoices(struct gw_ctx *gw, const struct gw_principal *who, const char *tenant,
                            struct nb_error *err)
{
    /* An admin without 'tenant' lists every tenant's invoices. */
    bool all = !tenant && who->role == GW_ROLE_ADMIN;
    const char *t = all ? NULL : billing_tenant(who, tenant, err);
    if (!all && !t) {
        return NULL;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return NULL;
    }
    const char *p[1] = {t};
    PGresult *res = nb_pg_exec(conn,
                               "SELECT " INVOICE_COLUMNS " FROM invoices"
                               " WHERE $1::text IS NULL OR tenant_id = $1"
                               " ORDER BY period DESC, tenant_id",
                               1, p, err);
    nb_pg_release(conn);
    if (!res) {
        return NULL;
    }
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_array_append_new(arr, invoice_json(res, r));
    }
    PQclear(res);
    return json_pack("{s:o}", "invoices", arr);
}

static const char *const LINE_NAMES[] = {
    "line_no",           "kind",        "meter",     "sku",
    "resource_id",       "plan_id",     "unit",      "unit_quantity",
    "unit_price_micros", "discount_bp", "quantity",  "exact_micros",
    "amount_micros",     "first_hour",  "last_hour",
};

json_t *gw_billing_invoice(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                           struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return NULL;
    }
    const char *p[2] = {id, who->role == GW_ROLE_ADMIN ? NULL : who->tenant_id};
    PGresult *inv = nb_pg_exec(conn,
                               "SELECT " INVOICE_COLUMNS " FROM invoices"
                               " WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)",
                               2, p, err);
    PGresult *lines =
        inv && PQntuples(inv) == 1
            ? nb_pg_exec(
                  conn,
                  "SELECT line_no, kind, meter, sku, resource_id, plan_id, unit,"
                  " unit_quantity, unit_price_micros, discount_bp, quantity::text,"
                  " exact_micros::text, amount_micros, " ISO_TIME("first_hour") ", " ISO_TIME(
                      "last_hour") " FROM invoice_lines WHERE invoice_id = $1"
                                   " ORDER BY line_no",
                  1, p, err)
            : NULL;
    nb_pg_release(conn);
    if (inv && PQntuples(inv) != 1) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "the invoice \"%s\" does not exist", id);
        nb_error_reason(err, "InvalidInvoiceID.NotFound");
    }
    if (!lines) {
        PQclear(inv);
        return NULL;
    }
    json_t *doc = invoice_json(inv, 0);
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(lines); r++) {
        json_t *o = json_object();
        for (int c = 0; c < (int)(sizeof LINE_NAMES / sizeof LINE_NAMES[0]); c++) {
            bool is_int = c == 0 || c == 7 || c == 8 || c == 9 || c == 12;
            json_object_set_new(o, LINE_NAMES[c],
                                is_int ? int_or_null(lines, r, c) : str_or_null(lines, r, c));
        }
        json_array_append_new(arr, o);
    }
    json_object_set_new(doc, "lines", arr);
    PQclear(lines);
    PQclear(inv);
    return doc;
}

int gw_billing_invoice_csv(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                           char **csv, size_t *len, struct nb_error *err)
{
    *csv = NULL;
    *len = 0;
    FILE *out = open_memstream(csv, len);
    if (!out) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not open a memory stream: out of memory");
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    int rc =
        conn ? billing_export_invoice(conn, id, who->role == GW_ROLE_ADMIN ? NULL : who->tenant_id,
                                      BILLING_CSV, out, err)
             : -1;
    nb_pg_release(conn);
    if (fclose(out) != 0 && rc == 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not write the invoice \"%s\" as CSV", id);
        rc = -1;
    }
    if (rc < 0) {
        if (err->code == NB_ERR_NOT_FOUND) {
            nb_error_reason(err, "InvalidInvoiceID.NotFound");
        }
        free(*csv);
        *csv = NULL;
        *len = 0;
    }
    return rc;
}

json_t *gw_billing_budget(struct gw_ctx *gw, const struct gw_principal *who, const char *tenant,
                          long long threshold, struct nb_error *err)
{
    const char *t = billing_tenant(who, tenant, err);
    if (!t || (threshold >= 0 && gw_require_writer(who, err) < 0)) {
        return NULL;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return NULL;
    }
    char th[32];
    snprintf(th, sizeof th, "%lld", threshold);
    const char *p[2] = {t, th};
    PGresult *res = NULL;
    if (threshold >= 0) {
        res = nb_pg_exec(conn,
                         "INSERT INTO budgets (tenant_id, threshold_micros) VALUES ($1, $2)"
                         " ON CONFLICT (tenant_id) DO UPDATE SET"
                         " threshold_micros = EXCLUDED.threshold_micros, updated_at = now()",
                         2, p, err);
        if (!res) {
            nb_pg_release(conn);
            if (err->code == NB_ERR_INVALID) {
                nb_error_reason(err, "InvalidParameterValue");
            }
            return NULL;
        }
        PQclear(res);
    }
    res =
        nb_pg_exec(conn,
                   "SELECT (SELECT threshold_micros FROM budgets WHERE tenant_id = $1),"
                   " a.period, a.threshold_micros, a.amount_micros, " ISO_TIME(
                       "a.at") " FROM (SELECT 1) one LEFT JOIN budget_alerts a ON a.tenant_id = $1"
                               " ORDER BY a.id",
                   1, p, err);
    nb_pg_release(conn);
    if (!res) {
        return NULL;
    }
    json_t *alerts = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        if (!PQgetisnull(res, r, 1)) {
            json_array_append_new(
                alerts, json_pack("{s:s, s:o, s:o, s:s}", "period", PQgetvalue(res, r, 1),
                                  "threshold_micros", int_or_null(res, r, 2), "amount_micros",
                                  int_or_null(res, r, 3), "at", PQgetvalue(res, r, 4)));
        }
    }
    json_t *doc = json_pack("{s:s, s:o, s:o}", "tenant_id", t, "threshold_micros",
                            int_or_null(res, 0, 0), "alerts", alerts);
    PQclear(res);
    return doc;
}

json_t *gw_billing_prices(struct gw_ctx *gw, const struct gw_principal *who, struct nb_error *err)
{
    if (gw_require_admin(who, err) < 0) {
        return NULL;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return NULL;
    }
    /* One statement, so that the plans and their prices are one snapshot. */
    PGresult *res = nb_pg_exec(
        conn,
        "SELECT json_build_object('plans', coalesce(json_agg(json_build_object("
        "'id', p.id, 'name', p.name, 'effective_from', "
        "to_char(p.effective_from AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "'currency', p.currency, 'min_run_seconds', p.min_run_seconds, "
        "'current', p.id IS NOT DISTINCT FROM (SELECT id FROM price_plans "
        "WHERE effective_from <= now() ORDER BY effective_from DESC LIMIT 1), "
        "'prices', (SELECT coalesce(json_agg(json_build_object('meter', x.meter, 'sku', x.sku, "
        "'unit', x.unit, 'unit_quantity', x.unit_quantity, 'price_micros', x.price_micros) "
        "ORDER BY x.meter, x.sku), '[]') FROM plan_prices x WHERE x.plan_id = p.id)) "
        "ORDER BY p.effective_from DESC), '[]'))::text FROM price_plans p",
        0, NULL, err);
    nb_pg_release(conn);
    if (!res) {
        return NULL;
    }
    const char *text = PQgetvalue(res, 0, 0);
    json_t *out = nb_json_parse_object(text, strlen(text), err);
    PQclear(res);
    return out;
}
