/* Billing (/v1/usage, /v1/invoices, /v1/budget): the month's rated usage so far, invoices with
 * their lines, and the budget threshold with the alerts it raised. A tenant reads its own; the
 * admin role names another tenant with the "tenant" query argument. The admin role also reads
 * the price plans (/v1/admin/prices). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* GETs or PUTs 'path' (with "?tenant=<tenant_id>" when 'tenant_id' is not NULL) and parses the
 * answer with 'parse' into a new item of 'size' bytes named 'what'. Returns the item, which the
 * caller frees with nubo_item_free(.., 'clear'), or NULL with '*err' set. Both are retried. */
static void *tenant_call(struct nubo_client *c, const char *method, const char *path,
                         const char *tenant_id, json_t *body, size_t size,
                         int (*parse)(const json_t *, void *), void (*clear)(void *),
                         const char *what, struct nubo_error *err)
{
    struct nubo_query q = {0};
    nubo_query_add(&q, "tenant", tenant_id);
    const char *text = nubo_query_text(&q);
    json_t *reply = NULL;
    int rc = -1;
    if (!text) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    } else {
        rc = nubo_call(c, method, path, *text ? text : NULL, body, true, &reply, err);
    }
    nubo_query_clear(&q);
    json_decref(body);
    return rc < 0 ? NULL : nubo_js_item(reply, size, parse, clear, what, err);
}

/* --- usage ----------------------------------------------------------------------------------- */

static int meter_parse(const json_t *o, void *item)
{
    struct nubo_usage_meter *m = item;
    json_t *amount = json_object_get(o, "amount_micros");
    m->meter = nubo_js_str(o, "meter");
    m->sku = nubo_js_str(o, "sku");
    m->unit = nubo_js_str(o, "unit");
    m->quantity = nubo_js_str(o, "quantity");
    m->priced = json_is_integer(amount);
    m->amount_micros = m->priced ? (long long)json_integer_value(amount) : 0;
    return m->meter ? 0 : -1;
}

static void meter_clear(void *item)
{
    struct nubo_usage_meter *m = item;
    free(m->meter);
    free(m->sku);
    free(m->unit);
    free(m->quantity);
}

static int usage_parse(const json_t *o, void *item)
{
    struct nubo_usage *u = item;
    bool ok;
    u->tenant_id = nubo_js_str(o, "tenant_id");
    u->period = nubo_js_str(o, "period");
    u->aggregated_until = nubo_js_str(o, "aggregated_until");
    u->total_micros = nubo_js_int(o, "total_micros");
    u->json = nubo_js_dump(o);
    u->meters = nubo_js_array(o, "meters", sizeof *u->meters, meter_parse, meter_clear,
                              &u->n_meters, &ok, NULL);
    return ok && u->tenant_id && u->period && u->json ? 0 : -1;
}

static void usage_clear(void *item)
{
    struct nubo_usage *u = item;
    free(u->tenant_id);
    free(u->period);
    free(u->aggregated_until);
    for (size_t i = 0; i < u->n_meters; i++) {
        meter_clear(&u->meters[i]);
    }
    free(u->meters);
    free(u->json);
}

NUBO_API struct nubo_usage *nubo_usage_get(struct nubo_client *c, const char *tenant_id,
                                           struct nubo_error *err)
{
    return tenant_call(c, "GET", "/v1/usage", tenant_id, NULL, sizeof(struct nubo_usage),
                       usage_parse, usage_clear, "the usage", err);
}

NUBO_API void nubo_usage_free(struct nubo_usage *u)
{
    nubo_item_free(u, usage_clear);
}

/* --- invoices -------------------------------------------------------------------------------- */

static int line_parse(const json_t *o, void *item)
{
    struct nubo_invoice_line *l = item;
    l->line_no = nubo_js_int(o, "line_no");
    l->kind = nubo_js_str(o, "kind");
    l->meter = nubo_js_str(o, "meter");
    l->sku = nubo_js_str(o, "sku");
    l->resource_id = nubo_js_str(o, "resource_id");
    l->plan_id = nubo_js_str(o, "plan_id");
    l->unit = nubo_js_str(o, "unit");
    l->unit_quantity = nubo_js_int(o, "unit_quantity");
    l->unit_price_micros = nubo_js_int(o, "unit_price_micros");
    l->discount_bp = nubo_js_int(o, "discount_bp");
    l->quantity = nubo_js_str(o, "quantity");
    l->exact_micros = nubo_js_str(o, "exact_micros");
    l->amount_micros = nubo_js_int(o, "amount_micros");
    l->first_hour = nubo_js_str(o, "first_hour");
    l->last_hour = nubo_js_str(o, "last_hour");
    return json_is_object(o) ? 0 : -1;
}

static void line_clear(void *item)
{
    struct nubo_invoice_line *l = item;
    free(l->kind);
    free(l->meter);
    free(l->sku);
    free(l->resource_id);
    free(l->plan_id);
    free(l->unit);
    free(l->quantity);
    free(l->exact_micros);
    free(l->first_hour);
    free(l->last_hour);
}

static int invoice_parse(const json_t *o, void *item)
{
    struct nubo_invoice *v = item;
    v->invoice_id = nubo_js_str(o, "invoice_id");
    v->tenant_id = nubo_js_str(o, "tenant_id");
    v->period = nubo_js_str(o, "period");
    v->state = nubo_js_str(o, "state");
    v->currency = nubo_js_str(o, "currency");
    v->total_micros = nubo_js_int(o, "total_micros");
    v->created_at = nubo_js_str(o, "created_at");
    v->closed_at = nubo_js_str(o, "closed_at");
    v->json = nubo_js_dump(o);
    if (json_is_array(json_object_get(o, "lines"))) {
        bool ok;
        v->lines = nubo_js_array(o, "lines", sizeof *v->lines, line_parse, line_clear, &v->n_lines,
                                 &ok, NULL);
        if (!ok) {
            return -1;
        }
    }
    return v->invoice_id && v->json ? 0 : -1;
}

static void invoice_clear(void *item)
{
    struct nubo_invoice *v = item;
    free(v->invoice_id);
    free(v->tenant_id);
    free(v->period);
    free(v->state);
    free(v->currency);
    free(v->created_at);
    free(v->closed_at);
    for (size_t i = 0; i < v->n_lines; i++) {
        line_clear(&v->lines[i]);
    }
    free(v->lines);
    free(v->json);
}

NUBO_API struct nubo_invoice_list *nubo_invoices_list(struct nubo_client *c, const char *tenant_id,
                                                      struct nubo_error *err)
{
    struct nubo_query q = {0};
    nubo_query_add(&q, "tenant", tenant_id);
    const char *text = nubo_query_text(&q);
    struct nubo_invoice_list *l = NULL;
    if (!text) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    } else {
        l = nubo_get_list(c, "/v1/invoices", *text ? text : NULL, "invoices",
                          sizeof(struct nubo_invoice), invoice_parse, invoice_clear, err);
    }
    nubo_query_clear(&q);
    return l;
}

NUBO_API struct nubo_invoice *nubo_invoice_get(struct nubo_client *c, const char *id,
                                               struct nubo_error *err)
{
    if (nubo_need(id, "an invoice id", err) < 0) {
        return NULL;
    }
    char *path = nubo_id_path("/v1/invoices", id, "");
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    json_t *reply = NULL;
    int rc = nubo_call(c, "GET", path, NULL, NULL, true, &reply, err);
    free(path);
    return rc < 0 ? NULL
                  : nubo_js_item(reply, sizeof(struct nubo_invoice), invoice_parse, invoice_clear,
                                 "an invoice", err);
}

NUBO_API char *nubo_invoice_csv(struct nubo_client *c, const char *id, struct nubo_error *err)
{
    if (nubo_need(id, "an invoice id", err) < 0) {
        return NULL;
    }
    char *path = nubo_id_path("/v1/invoices", id, "");
    if (!path) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    /* "format=csv" rather than an Accept header: the query wins over Accept at the API, and
     * errors still come back as JSON, which the client reads as for any other call. */
    char *text = NULL;
    int status = nubo_client_request(c, "GET", path, "format=csv", NULL, true, &text, err);
    free(path);
    if (status >= 0 && !text) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
    }
    return status < 0 ? NULL : text;
}

NUBO_API void nubo_invoice_free(struct nubo_invoice *v)
{
    nubo_item_free(v, invoice_clear);
}

NUBO_API void nubo_invoice_list_free(struct nubo_invoice_list *l)
{
    nubo_list_free(l, sizeof *l->items, invoice_clear);
}

/* --- budget ---------------------------------------------------------------------------------- */

static int alert_parse(const json_t *o, void *item)
{
    struct nubo_budget_alert *a = item;
    a->period = nubo_js_str(o, "period");
    a->threshold_micros = nubo_js_int(o, "threshold_micros");
    a->amount_micros = nubo_js_int(o, "amount_micros");
    a->at = nubo_js_str(o, "at");
    return json_is_object(o) ? 0 : -1;
}

static void alert_clear(void *item)
{
    struct nubo_budget_alert *a = item;
    free(a->period);
    free(a->at);
}

static int budget_parse(const json_t *o, void *item)
{
    struct nubo_budget *b = item;
    json_t *threshold = json_object_get(o, "threshold_micros");
    bool ok;
    b->tenant_id = nubo_js_str(o, "tenant_id");
    b->has_threshold = json_is_integer(threshold);
    b->threshold_micros = b->has_threshold ? (long long)json_integer_value(threshold) : 0;
    b->json = nubo_js_dump(o);
    b->alerts = nubo_js_array(o, "alerts", sizeof *b->alerts, alert_parse, alert_clear,
                              &b->n_alerts, &ok, NULL);
    return ok && b->tenant_id && b->json ? 0 : -1;
}

static void budget_clear(void *item)
{
    struct nubo_budget *b = item;
    free(b->tenant_id);
    for (size_t i = 0; i < b->n_alerts; i++) {
        alert_clear(&b->alerts[i]);
    }
    free(b->alerts);
    free(b->json);
}

NUBO_API struct nubo_budget *nubo_budget_get(struct nubo_client *c, const char *tenant_id,
                                             struct nubo_error *err)
{
    return tenant_call(c, "GET", "/v1/budget", tenant_id, NULL, sizeof(struct nubo_budget),
                       budget_parse, budget_clear, "the budget", err);
}

NUBO_API struct nubo_budget *nubo_budget_set(struct nubo_client *c, const char *tenant_id,
                                             long long threshold_micros, struct nubo_error *err)
{
    if (threshold_micros < 1) {
        nubo_err_set(err, 0, "InvalidParameterValue",
                     "the budget threshold must be at least 1 micro-unit, not %lld",
                     threshold_micros);
        return NULL;
    }
    json_t *body = json_pack("{s:I}", "threshold_micros", (json_int_t)threshold_micros);
    if (!body) {
        nubo_err_set(err, 0, "ConfigError", "out of memory");
        return NULL;
    }
    return tenant_call(c, "PUT", "/v1/budget", tenant_id, body, sizeof(struct nubo_budget),
                       budget_parse, budget_clear, "the budget", err);
}

NUBO_API void nubo_budget_free(struct nubo_budget *b)
{
    nubo_item_free(b, budget_clear);
}

/* --- price plans (admin) --------------------------------------------------------------------- */

static int price_parse(const json_t *o, void *item)
{
    struct nubo_price *p = item;
    p->meter = nubo_js_str(o, "meter");
    p->sku = nubo_js_str(o, "sku");
    p->unit = nubo_js_str(o, "unit");
    p->unit_quantity = nubo_js_int(o, "unit_quantity");
    p->price_micros = nubo_js_int(o, "price_micros");
    return p->meter && p->sku && p->unit ? 0 : -1;
}

static void price_clear(void *item)
{
    struct nubo_price *p = item;
    free(p->meter);
    free(p->sku);
    free(p->unit);
}

static int plan_parse(const json_t *o, void *item)
{
    struct nubo_price_plan *p = item;
    bool ok;
    p->id = nubo_js_str(o, "id");
    p->name = nubo_js_str(o, "name");
    p->effective_from = nubo_js_str(o, "effective_from");
    p->currency = nubo_js_str(o, "currency");
    p->min_run_seconds = nubo_js_int(o, "min_run_seconds");
    p->current = nubo_js_bool(o, "current");
    p->json = nubo_js_dump(o);
    p->prices = nubo_js_array(o, "prices", sizeof *p->prices, price_parse, price_clear,
                              &p->n_prices, &ok, NULL);
    return ok && p->id && p->currency && p->json ? 0 : -1;
}

static void plan_clear(void *item)
{
    struct nubo_price_plan *p = item;
    free(p->id);
    free(p->name);
    free(p->effective_from);
    free(p->currency);
    for (size_t i = 0; i < p->n_prices; i++) {
        price_clear(&p->prices[i]);
    }
    free(p->prices);
    free(p->json);
}

NUBO_API struct nubo_price_plan_list *nubo_admin_prices(struct nubo_client *c,
                                                        struct nubo_error *err)
{
    return nubo_get_list(c, "/v1/admin/prices", NULL, "plans", sizeof(struct nubo_price_plan),
                         plan_parse, plan_clear, err);
}

NUBO_API void nubo_price_plan_list_free(struct nubo_price_plan_list *l)
{
    nubo_list_free(l, sizeof *l->items, plan_clear);
}
