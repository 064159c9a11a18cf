/* Prints this month's bill so far: the usage not yet invoiced, rated as the invoice will rate
 * it, by meter, and the total.
 *
 *   cc print_bill.c $(pkg-config --cflags --libs nubo) -o print_bill
 *   NUBO_ENDPOINT=http://127.0.0.1:8773 NUBO_ACCESS_KEY=... NUBO_SECRET_KEY=... ./print_bill
 *
 * Money is integer micro-units of the currency (1 USD = 1,000,000); this prints dollars with
 * four decimals. Exits 0, or 1 after printing the API's error. */
#include <nubo/nubo.h>

#include <stdio.h>

static void money(char out[32], long long micros)
{
    snprintf(out, 32, "%s%lld.%04lld", micros < 0 ? "-" : "",
             (micros < 0 ? -micros : micros) / 1000000,
             ((micros < 0 ? -micros : micros) % 1000000) / 100);
}

int main(void)
{
    struct nubo_error err;
    struct nubo_client *client = nubo_client_from_config(NULL, NULL, &err);
    if (!client) {
        fprintf(stderr, "print_bill: %s\n", err.message);
        return 1;
    }
    struct nubo_usage *u = nubo_usage_get(client, NULL, &err);
    if (!u) {
        fprintf(stderr, "print_bill: %s: %s (request %s)\n", err.code, err.message, err.request_id);
        nubo_client_free(client);
        return 1;
    }
    printf("Bill for %s, period %s (usage aggregated until %s)\n", u->tenant_id, u->period,
           u->aggregated_until ? u->aggregated_until : "not yet");
    char amount[32];
    for (size_t i = 0; i < u->n_meters; i++) {
        const struct nubo_usage_meter *m = &u->meters[i];
        money(amount, m->amount_micros);
        printf("  %-18s %-10s %20s s  %12s%s\n", m->meter, m->sku[0] ? m->sku : "-", m->quantity,
               amount, m->priced ? "" : "  (no price)");
    }
    money(amount, u->total_micros);
    printf("Total so far: USD %s\n", amount);
    nubo_usage_free(u);
    nubo_client_free(client);
    return 0;
}
