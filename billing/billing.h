/* nubo-billing's library: metering (usage events into hourly usage records), rating and invoicing
 * (usage records into invoices), closing periods, exports and budget alerts. Metering streams the
 * events out of PostgreSQL and the records back in with binary COPY and cuts intervals into hours
 * here (aggregate.c); rating is set-based SQL (deploy/migrations/0006_billing.sql,
 * docs/billing.md). Everything is written in crash-safe transactions.
 *
 * Every writer takes the advisory lock billing_lock_key() inside its transactions, so several
 * nubo-billing processes may run at once without counting anything twice. */
#ifndef NUBO_BILLING_H
#define NUBO_BILLING_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct nb_error;
struct nb_pg_conn;

#define BILLING_TIME_LEN 32 /* "2026-01-31 23:00:00+00" and a NUL, with room */

struct billing_agg_opts {
    /* Aggregate hours before this time (truncated to the hour); "" or NULL: now - grace. Never
     * later than now - grace, so that an hour is aggregated only once it is over. */
    const char *until;
    /* Rewind the watermark to this time (truncated to the hour) first and rebuild the carried
     * state from the events before it; records recomputed for hours already aggregated must
     * equal the stored ones (a difference is corrected and counted). NULL: resume. */
    const char *from;
    int grace_s;     /* an hour is aggregated this long after it ends (events commit late) */
    int batch_hours; /* hours per transaction */
    /* Test hook: stop (as if killed) after this many committed batches; 0: no limit. */
    int max_batches;
};

struct billing_agg_result {
    long long batches;            /* transactions committed */
    long long hours;              /* hours aggregated */
    long long inserted;           /* usage records written */
    long long corrected;          /* records found different on a re-run and rewritten */
    char until[BILLING_TIME_LEN]; /* the watermark afterwards ("" when there was nothing) */
};

/* Turns the events of the closed hours after the watermark into usage records, 'o->batch_hours'
 * hours per transaction, each transaction writing the hours' records, the carried state and the
 * watermark together. Killed at any point, a later run resumes at the last commit. Fills 'res'.
 * Returns 0, or -1 with 'err' set (the batches committed before stay committed). */
int billing_aggregate(struct nb_pg_conn *conn, const struct billing_agg_opts *o,
                      struct billing_agg_result *res, struct nb_error *err);

/* Checks 'period' is "YYYY-MM". Returns 0, or -1 with 'err' set (NB_ERR_INVALID). */
int billing_period_check(const char *period, struct nb_error *err);

struct billing_invoice_result {
    int invoices;         /* invoices written */
    long long lines;      /* their lines */
    long long total;      /* sum of their totals, micros */
    long long adjustment; /* of which adjustment lines (late usage of closed periods), micros */
};

/* Rates the unbilled usage records of 'period' (and, as adjustment lines, late usage of earlier
 * closed periods) and writes one draft invoice per tenant with usage, replacing the period's
 * earlier drafts. With 'close', also marks the records billed and closes the invoices and the
 * period, which are immutable afterwards; that needs aggregation to have passed the period's
 * end. One transaction. Fills 'res' (may be NULL). Returns 0, or -1 with 'err' set
 * (NB_ERR_CONFLICT: the period is closed, or not fully aggregated; NB_ERR_INVALID: a usage record
 * has no price in the plan). */
int billing_invoice(struct nb_pg_conn *conn, const char *period, bool close,
                    struct billing_invoice_result *res, struct nb_error *err);

enum billing_format { BILLING_JSON, BILLING_CSV };

/* Writes tenant 'tenant_id''s invoice of 'period' (with its lines) to 'out' as JSON or CSV
 * (docs/billing.md). Returns 0, or -1 with 'err' set (NB_ERR_NOT_FOUND: no such invoice). */
int billing_export(struct nb_pg_conn *conn, const char *period, const char *tenant_id,
                   enum billing_format format, FILE *out, struct nb_error *err);

/* Writes invoice 'id' as billing_export() does. With 'tenant_id' (may be NULL: any tenant's),
 * only that tenant's invoice is found: another tenant's is NB_ERR_NOT_FOUND too. Returns 0, or
 * -1 with 'err' set. The CSV is a header row, then one row per invoice line (the invoice's id,
 * tenant, period, state and currency, then the line's columns), lines ending in CRLF (RFC 4180). */
int billing_export_invoice(struct nb_pg_conn *conn, const char *id, const char *tenant_id,
                           enum billing_format format, FILE *out, struct nb_error *err);

/* Raises the budget alerts due: for each tenant with a budget, when the rated usage of the
 * period of the last aggregated hour reaches its threshold, one budget_alerts row per period and
 * threshold (and a NOTIFY nubo_budget_alert). Returns the number of new alerts, or -1 with
 * 'err'. */
int billing_check_budgets(struct nb_pg_conn *conn, struct nb_error *err);

#endif
