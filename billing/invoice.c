/* Rating, invoicing, closing periods and budget alerts (billing.h). The rating rule itself is
 * the SQL function billing_rate() (deploy/migrations/0006_billing.sql), shared with the
 * gateway's usage estimate; this file writes its lines into invoices in one transaction. */
#include "billing.h"

#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int billing_period_check(const char *period, struct nb_error *err)
{
    if (!period) {
        nb_error_set(err, NB_ERR_MISSING, "no billing period given");
        return -1;
    }
    bool ok = strlen(period) == 7 && period[4] == '-';
    for (int i = 0; ok && i < 7; i++) {
        ok = i == 4 || isdigit((unsigned char)period[i]);
    }
    int month = ok ? atoi(period + 5) : 0;
    if (!ok || month < 1 || month > 12) {
        nb_error_set(err, NB_ERR_INVALID, "invalid billing period \"%s\": expected YYYY-MM",
                     period);
        return -1;
    }
    return 0;
}

/* Runs 'sql' with the single parameter 'p1' and clears the result. Returns 0, or -1 with 'err'. */
static int exec1(struct nb_pg_conn *conn, const char *sql, const char *p1, struct nb_error *err)
{
    const char *p[1] = {p1};
    PGresult *res = nb_pg_exec(conn, sql, p1 ? 1 : 0, p, err);
    PQclear(res);
    return res ? 0 : -1;
}

/* Creates the period's row when missing and checks it is open (and, for 'close', fully
 * aggregated). */
static int check_period(struct nb_pg_conn *conn, const char *period, bool close,
                        struct nb_error *err)
{
    const char *p[1] = {period};
    if (exec1(conn,
              "INSERT INTO billing_periods (period, starts_at, ends_at)"
              " VALUES ($1, billing_period_start($1),"
              "         billing_period_start($1) + interval '1 month')"
              " ON CONFLICT DO NOTHING",
              period, err) < 0) {
        return -1;
    }
    PGresult *res = nb_pg_exec(conn,
                               "SELECT p.state, p.ends_at, w.aggregated_until,"
                               " coalesce(w.aggregated_until >= p.ends_at, false)"
                               " FROM billing_periods p, billing_watermark w"
                               " WHERE p.period = $1 FOR UPDATE OF p",
                               1, p, err);
    if (!res) {
        return -1;
    }
    int rc = 0;
    if (!strcmp(PQgetvalue(res, 0, 0), "closed")) {
        nb_error_set(err, NB_ERR_CONFLICT, "billing period \"%s\" is closed", period);
        rc = -1;
    } else if (close && PQgetvalue(res, 0, 3)[0] != 't') {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "cannot close billing period \"%s\": usage is aggregated until %s only, "
                     "the period ends %s",
                     period, PQgetisnull(res, 0, 2) ? "(never)" : PQgetvalue(res, 0, 2),
                     PQgetvalue(res, 0, 1));
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* Refuses lines without a price: billing them at zero would lose revenue silently. */
static int check_prices(struct nb_pg_conn *conn, struct nb_error *err)
{
    PGresult *res = nb_pg_exec(conn,
                               "SELECT meter, sku, plan_id FROM billing_lines"
                               " WHERE unit_price_micros IS NULL LIMIT 1",
                               0, NULL, err);
    if (!res) {
        return -1;
    }
    int rc = 0;
    if (PQntuples(res)) {
        nb_error_set(err, NB_ERR_INVALID,
                     "price plan \"%s\" has no price for meter \"%s\", sku \"%s\"",
                     PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* The invoice id of a tenant and period, as SQL over 'tenant_id' and $1. */
#define INVOICE_ID_SQL "'inv-' || replace($1, '-', '') || '-' || tenant_id"

static int write_invoices(struct nb_pg_conn *conn, const char *period, bool close,
                          struct billing_invoice_result *r, struct nb_error *err)
{
    if (exec1(conn,
              "DELETE FROM invoice_lines WHERE invoice_id IN"
              " (SELECT id FROM invoices WHERE period = $1 AND state = 'draft')",
              period, err) < 0 ||
        exec1(conn, "DELETE FROM invoices WHERE period = $1 AND state = 'draft'", period, err) <
            0 ||
        exec1(conn,
              /* Rating aggregates every record of the period: the planner needs to know how
               * many there are to do it with a hash table rather than a sort of them all, and
               * autovacuum may not have analyzed the latest batches yet. */
              "ANALYZE usage_records", NULL, err) < 0 ||
        exec1(conn,
              "CREATE TEMP TABLE billing_lines ON COMMIT DROP AS"
              " SELECT * FROM billing_rate(NULL, NULL) WITH NO DATA",
              NULL, err) < 0 ||
        exec1(conn, "INSERT INTO billing_lines SELECT * FROM billing_rate(NULL, $1)", period, err) <
            0 ||
        check_prices(conn, err) < 0 ||
        exec1(conn,
              "INSERT INTO invoices (id, tenant_id, period, currency, total_micros)"
              " SELECT " INVOICE_ID_SQL ", tenant_id, $1,"
              "        (SELECT max(p.currency) FROM price_plans p"
              "         WHERE p.id IN (SELECT plan_id FROM billing_lines)),"
              "        sum(amount_micros)"
              " FROM billing_lines GROUP BY tenant_id",
              period, err) < 0 ||
        exec1(conn,
              "INSERT INTO invoice_lines (invoice_id, line_no, kind, meter, sku, resource_id,"
              "   plan_id, unit, unit_quantity, unit_price_micros, discount_bp, quantity,"
              "   exact_micros, amount_micros, first_hour, last_hour)"
              " SELECT " INVOICE_ID_SQL ","
              "   row_number() OVER (PARTITION BY tenant_id ORDER BY kind DESC, meter, sku,"
              "                      resource_id, first_hour, plan_id),"
              "   kind, meter, sku, resource_id, plan_id, unit, unit_quantity,"
              "   unit_price_micros, discount_bp, quantity, exact_micros, amount_micros,"
              "   first_hour, last_hour"
              " FROM billing_lines",
              period, err) < 0) {
        return -1;
    }
    if (close &&
        (exec1(conn,
               "UPDATE usage_records u SET invoice_id = 'inv-' || replace($1, '-', '') || '-'"
               "   || u.tenant_id"
               " FROM billing_selected(NULL, $1) s"
               " WHERE (u.tenant_id, u.resource_id, u.meter, u.sku, u.hour)"
               "     = (s.tenant_id, s.resource_id, s.meter, s.sku, s.hour)",
               period, err) < 0 ||
         exec1(conn,
               "UPDATE invoices SET state = 'closed', closed_at = now()"
               " WHERE period = $1 AND state = 'draft'",
               period, err) < 0 ||
         exec1(conn,
               "UPDATE billing_periods SET state = 'closed', closed_at = now() WHERE period = $1",
               period, err) < 0)) {
        return -1;
    }
    PGresult *res = nb_pg_exec(conn,
                               "SELECT count(DISTINCT tenant_id), count(*),"
                               " coalesce(sum(amount_micros), 0),"
                               " coalesce(sum(amount_micros) FILTER (WHERE kind = 'adjustment'), 0)"
                               " FROM billing_lines",
                               0, NULL, err);
    if (!res) {
        return -1;
    }
    r->invoices = atoi(PQgetvalue(res, 0, 0));
    r->lines = atoll(PQgetvalue(res, 0, 1));
    r->total = atoll(PQgetvalue(res, 0, 2));
    r->adjustment = atoll(PQgetvalue(res, 0, 3));
    PQclear(res);
    return 0;
}

int billing_invoice(struct nb_pg_conn *conn, const char *period, bool close,
                    struct billing_invoice_result *res, struct nb_error *err)
{
    struct billing_invoice_result local = {0};
    struct billing_invoice_result *r = res ? res : &local;
    memset(r, 0, sizeof *r);
    if (billing_period_check(period, err) < 0 || nb_pg_begin(conn, err) < 0) {
        return -1;
    }
    if (nb_pg_command(conn,
                      "SET LOCAL TimeZone = 'UTC'; SET LOCAL work_mem = '256MB';"
                      "SELECT pg_advisory_xact_lock(billing_lock_key())",
                      err) < 0 ||
        check_period(conn, period, close, err) < 0 ||
        write_invoices(conn, period, close, r, err) < 0) {
        nb_pg_rollback(conn);
        return -1;
    }
    if (nb_pg_commit(conn, err) < 0) {
        return -1;
    }
    nb_info("%s %s: %d invoice(s), %lld line(s), total %lld micros (adjustments %lld)",
            close ? "closed" : "invoiced", period, r->invoices, r->lines, r->total, r->adjustment);
    return 0;
}

int billing_check_budgets(struct nb_pg_conn *conn, struct nb_error *err)
{
    PGresult *res = nb_pg_exec(
        conn,
        "WITH cur AS ("
        "  SELECT billing_period_of(aggregated_until - interval '1 microsecond') AS period"
        "  FROM billing_watermark WHERE aggregated_until IS NOT NULL"
        "), due AS ("
        "  SELECT b.tenant_id, cur.period, b.threshold_micros,"
        "         (SELECT coalesce(sum(r.amount_micros), 0)"
        "          FROM billing_rate(b.tenant_id, cur.period) r) AS amount"
        "  FROM budgets b, cur"
        "), ins AS ("
        "  INSERT INTO budget_alerts (tenant_id, period, threshold_micros, amount_micros)"
        "  SELECT tenant_id, period, threshold_micros, amount FROM due"
        "  WHERE amount >= threshold_micros ON CONFLICT DO NOTHING"
        "  RETURNING tenant_id, period, threshold_micros, amount_micros"
        ") SELECT tenant_id, period, threshold_micros, amount_micros,"
        "         pg_notify('nubo_budget_alert', json_build_object('tenant_id', tenant_id,"
        "             'period', period, 'threshold_micros', threshold_micros,"
        "             'amount_micros', amount_micros)::text) FROM ins",
        0, NULL, err);
    if (!res) {
        return -1;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        nb_warn("budget alert: tenant %s has %s micros in %s (threshold %s)", PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 3), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    }
    PQclear(res);
    return n;
}
