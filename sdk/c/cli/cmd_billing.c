/* The billing commands: usage (this month so far), invoice list and show, budget show and set,
 * and the operator's price plans (admin prices). A tenant sees its own; the admin role names
 * another tenant with --tenant. Money is printed in units of the currency ("0.02"); --output
 * json gives the API's integer micro-units, and invoice show --output csv the API's CSV. */
#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Formats 'micros' micro-units as a decimal of at least two places ("12.50", "0.000125") into
 * 'out'. */
static void money(long long micros, char *out, size_t size)
{
    unsigned long long m =
        micros < 0 ? 0ULL - (unsigned long long)micros : (unsigned long long)micros;
    char frac[8];
    snprintf(frac, sizeof frac, "%06llu", m % 1000000ULL);
    for (int i = 5; i >= 2 && frac[i] == '0'; i--) {
        frac[i] = '\0';
    }
    snprintf(out, size, "%s%llu.%s", micros < 0 ? "-" : "", m / 1000000ULL, frac);
}

/* Parses a decimal amount of currency ("25", "10.5", "0.000001") into micro-units. Returns 0,
 * or -1 when it is not one (or has more than six decimals, or is not above zero). */
static int parse_money(const char *text, long long *out)
{
    long long whole = 0, frac = 0;
    int places = 0;
    const char *p = text;
    if (!isdigit((unsigned char)*p)) {
        return -1;
    }
    for (; isdigit((unsigned char)*p); p++) {
        if (whole > 9000000000000LL) {
            return -1;
        }
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++) {
            if (++places > 6) {
                return -1;
            }
            frac = frac * 10 + (*p - '0');
        }
    }
    for (; places < 6; places++) {
        frac *= 10;
    }
    *out = whole * 1000000 + frac;
    return *p || *out <= 0 ? -1 : 0;
}

/* Parses "[--tenant ID]" and 'n' positional arguments. Returns CLI_OK, or CLI_USAGE after a
 * usage error. */
static int tenant_args(const struct cli *cli, int argc, char **argv, const char **tenant, int n,
                       const char *what)
{
    const struct cli_opt opts[] = {CLI_STR("tenant", tenant)};
    if (cli_parse_opts(argc, argv, cli->prefix, opts, CLI_N_OPTS(opts),
                       "invalid option (--tenant TENANT_ID)") < 0) {
        return CLI_USAGE;
    }
    if (argc - optind != n) {
        return n ? cli_usage_error(cli->prefix, "expected %s", what)
                 : cli_no_more_args(argc, argv, cli->prefix);
    }
    return CLI_OK;
}

/* Prints the JSON text 'json' indented (--output json). */
static void print_text(const char *json)
{
    struct cli_json *j = cli_json_new(false);
    cli_json_add(j, json);
    cli_json_print(j);
}

/* --- usage ----------------------------------------------------------------------------------- */

static int usage_show(struct cli *cli, int argc, char **argv)
{
    const char *tenant = NULL;
    int rc = tenant_args(cli, argc, argv, &tenant, 0, NULL);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_usage *u = nubo_usage_get(client, tenant, &err);
    if (!u) {
        return cli_fail(&err);
    }
    if (cli->json) {
        print_text(u->json);
        nubo_usage_free(u);
        return CLI_OK;
    }
    char total[48];
    money(u->total_micros, total, sizeof total);
    const char *pairs[] = {"tenant",           u->tenant_id,        "period", u->period,
                           "aggregated_until", u->aggregated_until, "total",  total};
    cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
    static const char *const cols[] = {"meter", "sku", "unit", "quantity", "amount"};
    struct cli_table t = {5, cols, NULL, 0, 0};
    for (size_t i = 0; i < u->n_meters; i++) {
        const struct nubo_usage_meter *m = &u->meters[i];
        char amount[48] = "";
        if (m->priced) {
            money(m->amount_micros, amount, sizeof amount);
        }
        const char *cells[] = {m->meter, m->sku, m->unit, m->quantity, amount};
        cli_table_add(&t, cells);
    }
    putchar('\n');
    cli_table_print(&t);
    nubo_usage_free(u);
    return CLI_OK;
}

/* --- invoices -------------------------------------------------------------------------------- */

static const char *const invoice_cols[] = {"id",    "tenant",   "period",  "state",
                                           "total", "currency", "created", "closed"};

static const char *invoice_row(struct cli_table *t, const void *item)
{
    const struct nubo_invoice *v = item;
    char total[48];
    money(v->total_micros, total, sizeof total);
    const char *cells[] = {v->invoice_id, v->tenant_id, v->period,     v->state,
                           total,         v->currency,  v->created_at, v->closed_at};
    cli_table_add(t, cells);
    return v->json;
}

static int invoice_list(struct cli *cli, int argc, char **argv)
{
    const char *tenant = NULL;
    int rc = tenant_args(cli, argc, argv, &tenant, 0, NULL);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_invoice_list *l = nubo_invoices_list(client, tenant, &err);
    if (!l) {
        return cli_fail(&err);
    }
    struct cli_table t = {8, invoice_cols, NULL, 0, 0};
    cli_print_list(cli, &t, l->items, l->n, sizeof *l->items, invoice_row);
    nubo_invoice_list_free(l);
    return CLI_OK;
}

static int invoice_show(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 1, "one invoice id", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    if (cli->csv) {
        /* The API's own CSV, byte for byte: what nubo-billing --export writes. */
        char *csv = nubo_invoice_csv(client, argv[optind], &err);
        if (!csv) {
            return cli_fail(&err);
        }
        fputs(csv, stdout);
        free(csv);
        return CLI_OK;
    }
    struct nubo_invoice *v = nubo_invoice_get(client, argv[optind], &err);
    if (!v) {
        return cli_fail(&err);
    }
    if (cli->json) {
        print_text(v->json);
        nubo_invoice_free(v);
        return CLI_OK;
    }
    char total[48];
    money(v->total_micros, total, sizeof total);
    const char *pairs[] = {"id",      v->invoice_id, "tenant",   v->tenant_id, "period", v->period,
                           "state",   v->state,      "currency", v->currency,  "total",  total,
                           "created", v->created_at, "closed",   v->closed_at};
    cli_print_fields(pairs, sizeof pairs / sizeof pairs[0] / 2);
    static const char *const cols[] = {"line",     "kind",     "meter", "sku",
                                       "resource", "quantity", "amount"};
    struct cli_table t = {7, cols, NULL, 0, 0};
    for (size_t i = 0; i < v->n_lines; i++) {
        const struct nubo_invoice_line *l = &v->lines[i];
        char no[24], amount[48];
        snprintf(no, sizeof no, "%lld", l->line_no);
        money(l->amount_micros, amount, sizeof amount);
        const char *cells[] = {no, l->kind, l->meter, l->sku, l->resource_id, l->quantity, amount};
        cli_table_add(&t, cells);
    }
    putchar('\n');
    cli_table_print(&t);
    nubo_invoice_free(v);
    return CLI_OK;
}

/* --- budget ---------------------------------------------------------------------------------- */

static void print_budget(const struct cli *cli, const struct nubo_budget *b)
{
    if (cli->json) {
        print_text(b->json);
        return;
    }
    char threshold[48] = "";
    if (b->has_threshold) {
        money(b->threshold_micros, threshold, sizeof threshold);
    }
    const char *pairs[] = {"tenant", b->tenant_id, "threshold", threshold};
    cli_print_fields(pairs, 2);
    static const char *const cols[] = {"period", "threshold", "amount", "at"};
    struct cli_table t = {4, cols, NULL, 0, 0};
    for (size_t i = 0; i < b->n_alerts; i++) {
        const struct nubo_budget_alert *a = &b->alerts[i];
        char th[48], amount[48];
        money(a->threshold_micros, th, sizeof th);
        money(a->amount_micros, amount, sizeof amount);
        const char *cells[] = {a->period, th, amount, a->at};
        cli_table_add(&t, cells);
    }
    putchar('\n');
    cli_table_print(&t);
}

static int budget_show(struct cli *cli, int argc, char **argv)
{
    const char *tenant = NULL;
    int rc = tenant_args(cli, argc, argv, &tenant, 0, NULL);
    struct nubo_client *client = rc ? NULL : cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_budget *b = nubo_budget_get(client, tenant, &err);
    if (!b) {
        return cli_fail(&err);
    }
    print_budget(cli, b);
    nubo_budget_free(b);
    return CLI_OK;
}

static int budget_set(struct cli *cli, int argc, char **argv)
{
    const char *tenant = NULL;
    long long micros;
    int rc = tenant_args(cli, argc, argv, &tenant, 1, "one amount");
    if (rc != CLI_OK) {
        return rc;
    }
    if (parse_money(argv[optind], &micros) < 0) {
        return cli_usage_error(cli->prefix,
                               "the amount must be above zero with at most six decimals, not "
                               "\"%s\"",
                               argv[optind]);
    }
    struct nubo_client *client = cli_client(cli, &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_budget *b = nubo_budget_set(client, tenant, micros, &err);
    if (!b) {
        return cli_fail(&err);
    }
    print_budget(cli, b);
    nubo_budget_free(b);
    return CLI_OK;
}

#define TENANT_HELP "  --tenant TENANT_ID     another tenant's (the admin role only)\n"

/* --- price plans (admin) ----------------------------------------------------------------------- */

/* "admin prices": a row per price of every plan; --output json gives the API's document. */
static int admin_prices(struct cli *cli, int argc, char **argv)
{
    int rc;
    struct nubo_client *client = cli_args_client(cli, argc, argv, 0, "no arguments", &rc);
    if (!client) {
        return rc;
    }
    struct nubo_error err;
    struct nubo_price_plan_list *l = nubo_admin_prices(client, &err);
    if (!l) {
        return cli_fail(&err);
    }
    if (cli->json) {
        json_t *plans = json_array();
        for (size_t i = 0; i < l->n; i++) {
            json_array_append_new(plans, json_loads(l->items[i].json, 0, NULL));
        }
        cli_print_json(json_pack("{s:o}", "plans", plans));
        nubo_price_plan_list_free(l);
        return CLI_OK;
    }
    static const char *const cols[] = {"plan", "current", "meter",   "sku",
                                       "unit", "price",   "currency"};
    struct cli_table t = {7, cols, NULL, 0, 0};
    for (size_t i = 0; i < l->n; i++) {
        const struct nubo_price_plan *p = &l->items[i];
        for (size_t k = 0; k < p->n_prices; k++) {
            const struct nubo_price *x = &p->prices[k];
            char price[48];
            money(x->price_micros, price, sizeof price);
            const char *cells[] = {
                p->id, p->current ? "yes" : "no", x->meter, x->sku, x->unit, price, p->currency};
            cli_table_add(&t, cells);
        }
    }
    cli_table_print(&t);
    nubo_price_plan_list_free(l);
    return CLI_OK;
}

const struct cli_cmd cli_billing_cmds[] = {
    {"usage", "show", usage_show, "[--tenant TENANT_ID]",
     "show this month's usage so far, rated (also: nubo usage)", TENANT_HELP},
    {"invoice", "list", invoice_list, "[--tenant TENANT_ID]", "list invoices, newest first",
     "  --tenant TENANT_ID     only this tenant's (the admin role, which sees every tenant's)\n"},
    {"invoice", "show", invoice_show, "INVOICE_ID [--output csv]", "show an invoice and its lines",
     "  --output csv           print the invoice as the API's CSV (a header row, then one row\n"
     "                         per line, as nubo-billing --export --format csv writes it)\n"},
    {"budget", "show", budget_show, "[--tenant TENANT_ID]",
     "show the budget threshold and the alerts it raised", TENANT_HELP},
    {"budget", "set", budget_set, "AMOUNT [--tenant TENANT_ID]",
     "set the monthly budget threshold (in units of the currency: 25, 10.50)", TENANT_HELP},
    {"admin", "prices", admin_prices, "",
     "list the price plans and their prices (a price is per unit, in units of the currency)", NULL},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};
