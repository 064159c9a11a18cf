/* The REST routes of billing (rest_billing.h): usage so far, invoices (JSON or CSV), budgets. */
#include "rest_billing.h"

#include "ec2_params.h"
#include "rest_api.h"
#include "svc_billing.h"

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* GET /v1/usage[?tenant=]: this month's usage so far, rated. */
int rest_get_usage(struct rest_call *c)
{
    return rest_reply(
        c, gw_billing_usage(c->gw, c->who, ec2_params_get(c->query, "tenant"), &c->err), 200);
}

/* GET /v1/invoices[?tenant=] */
int rest_get_invoices(struct rest_call *c)
{
    return rest_reply(
        c, gw_billing_invoices(c->gw, c->who, ec2_params_get(c->query, "tenant"), &c->err), 200);
}

/* The weight ("q") the Accept header 'accept' gives to the media type 'type' by name (0 when it
 * does not name it; wildcards do not count). */
static double accept_weight(struct rest_call *c, const char *accept, const char *type)
{
    double best = 0;
    char *save = NULL;
    char *copy = nb_arena_strdup(c->arena, accept);
    for (char *range = strtok_r(copy, ",", &save); range; range = strtok_r(NULL, ",", &save)) {
        char *params = strchr(range, ';');
        double w = 1;
        if (params) {
            *params++ = '\0';
            const char *q = strstr(params, "q=");
            w = q ? strtod(q + 2, NULL) : 1;
        }
        range += strspn(range, " \t");
        size_t n = strcspn(range, " \t");
        if (n == strlen(type) && !strncasecmp(range, type, n) && w > best) {
            best = w;
        }
    }
    return best;
}

/* GET /v1/invoices/{id}[?format=json|csv]: the invoice and its lines; as CSV (the columns of
 * nubo-billing --export --format csv) with format=csv, or without 'format' when the Accept header
 * prefers text/csv to application/json. */
int rest_get_invoice(struct rest_call *c)
{
    const char *format = ec2_params_get(c->query, "format");
    const char *accept = nb_http_req_header(c->req, "Accept");
    if (format && strcmp(format, "json") && strcmp(format, "csv")) {
        nb_error_set(&c->err, NB_ERR_INVALID, "format must be \"json\" or \"csv\", not \"%s\"",
                     format);
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    bool csv = format ? !strcmp(format, "csv")
                      : accept && accept_weight(c, accept, "text/csv") >
                                      accept_weight(c, accept, "application/json");
    if (!csv) {
        return rest_reply(c, gw_billing_invoice(c->gw, c->who, c->args[0], &c->err), 200);
    }
    char *text;
    size_t len;
    if (gw_billing_invoice_csv(c->gw, c->who, c->args[0], &text, &len, &c->err) < 0) {
        return -1;
    }
    /* Not JSON, so replied here; libmicrohttpd sends it once the handler is over, after
     * rest_finish() has recorded the call. rest_finish()'s own reply is ignored: also its 503
     * when the record cannot be written (this call changes nothing). */
    nb_http_reply_header(c->req, "x-amzn-RequestId", c->request_id);
    nb_http_reply_owned(c->req, 200, "text/csv; charset=utf-8", text, len);
    return 0;
}

/* GET /v1/budget[?tenant=] */
int rest_get_budget(struct rest_call *c)
{
    return rest_reply(
        c, gw_billing_budget(c->gw, c->who, ec2_params_get(c->query, "tenant"), -1, &c->err), 200);
}

/* PUT /v1/budget[?tenant=] {"threshold_micros": N}, N > 0. */
int rest_put_budget(struct rest_call *c)
{
    json_t *v = c->body ? json_object_get(c->body, "threshold_micros") : NULL;
    if (rest_need_body(c) < 0) {
        return -1;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        nb_error_set(&c->err, NB_ERR_INVALID, "threshold_micros must be a positive integer");
        nb_error_reason(&c->err, "InvalidParameterValue");
        return -1;
    }
    return rest_reply(c,
                      gw_billing_budget(c->gw, c->who, ec2_params_get(c->query, "tenant"),
                                        (long long)json_integer_value(v), &c->err),
                      200);
}

/* GET /v1/admin/prices: the price plans and their prices (admin only). */
int rest_get_prices(struct rest_call *c)
{
    return rest_reply(c, gw_billing_prices(c->gw, c->who, &c->err), 200);
}
