/* The REST routes of billing (rest_billing.c), listed in rest_routes.c's table: GET /v1/usage,
 * GET /v1/invoices, GET /v1/invoices/{id} (JSON, or CSV with ?format=csv or Accept: text/csv),
 * GET and PUT /v1/budget (docs/openapi.yaml). A tenant sees its own; the admin any, with
 * ?tenant=. Each handler follows rest_handler (rest_api.h). */
#ifndef NUBO_GW_REST_BILLING_H
#define NUBO_GW_REST_BILLING_H

struct rest_call;

int rest_get_usage(struct rest_call *c);
int rest_get_invoices(struct rest_call *c);
int rest_get_invoice(struct rest_call *c);
int rest_get_budget(struct rest_call *c);
int rest_put_budget(struct rest_call *c);
int rest_get_prices(struct rest_call *c);

#endif
