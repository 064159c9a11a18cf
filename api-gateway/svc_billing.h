/* Billing service: usage so far, invoices and budgets, read from what nubo-billing writes
 * (deploy/migrations/0006_billing.sql, docs/billing.md). Follows svc.h: a tenant sees its own;
 * the admin role may name any tenant ('tenant' argument) or, for invoices, list every tenant's.
 * Another tenant's invoice is "not found" (InvalidInvoiceID.NotFound). */
#ifndef NUBO_GW_SVC_BILLING_H
#define NUBO_GW_SVC_BILLING_H

#include <jansson.h>
#include <stddef.h>

struct gw_ctx;
struct gw_principal;
struct nb_error;

/* Each returns a new JSON reference, or NULL with 'err' set. 'tenant' may be NULL (the
 * caller's own tenant); naming another tenant needs the admin role (UnauthorizedOperation). */

/* The current (UTC) month's unbilled usage, rated with billing_rate() as an invoice would be:
 * {"tenant_id", "period", "aggregated_until", "meters": [{"meter", "sku", "unit", "quantity",
 * "amount_micros"}], "total_micros"}. 'quantity' is a decimal string (byte-seconds pass 2^53). */
json_t *gw_billing_usage(struct gw_ctx *gw, const struct gw_principal *who, const char *tenant,
                         struct nb_error *err);

/* {"invoices": [{"invoice_id", "tenant_id", "period", "state", "currency", "total_micros",
 * "created_at", "closed_at"}]}, newest period first. An admin without 'tenant' sees all. */
json_t *gw_billing_invoices(struct gw_ctx *gw, const struct gw_principal *who, const char *tenant,
                            struct nb_error *err);

/* One invoice as in gw_billing_invoices() plus "lines": [{"line_no", "kind", "meter", "sku",
 * "resource_id", "plan_id", "unit", "unit_quantity", "unit_price_micros", "discount_bp",
 * "quantity", "exact_micros", "amount_micros", "first_hour", "last_hour"}]. */
json_t *gw_billing_invoice(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                           struct nb_error *err);

/* The same invoice as CSV, the columns of nubo-billing --export --format csv (billing/export.c):
 * a header row, then one row per line (the invoice's id, tenant, period, state and currency, then
 * the line's columns as above). Stores a new buffer in '*csv' (the caller free()s it) and its
 * length in '*len'. Returns 0, or -1 with 'err' set (InvalidInvoiceID.NotFound as above). */
int gw_billing_invoice_csv(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                           char **csv, size_t *len, struct nb_error *err);

/* Sets (a writer's or admin's) or, with 'threshold' < 0, reads the tenant's budget:
 * {"tenant_id", "threshold_micros" (null when none), "alerts": [{"period", "threshold_micros",
 * "amount_micros", "at"}]}. */
json_t *gw_billing_budget(struct gw_ctx *gw, const struct gw_principal *who, const char *tenant,
                          long long threshold, struct nb_error *err);

/* The operator's price plans (admin only), newest first: {"plans": [{"id", "name",
 * "effective_from", "currency", "min_run_seconds", "current" (the plan in effect now), "prices":
 * [{"meter", "sku", "unit", "unit_quantity", "price_micros"}]}]}. */
json_t *gw_billing_prices(struct gw_ctx *gw, const struct gw_principal *who, struct nb_error *err);

#endif
