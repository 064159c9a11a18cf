/* libnubo's console-ticket, VDI and invoice-CSV calls against a canned HTTP server on loopback:
 * the requests they build (method, path under the endpoint's prefix, query, JSON body) and how
 * they read the answers (typed fields, the ticket's URLs, errors, the wait for a desktop).
 * Needs no gateway (the server is canned_server.c). Prints TAP. */
#include "nubo/nubo.h"

#include "canned_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the cases ------------------------------------------------------------------------------- */

static const char *const POOL_JSON =
    "{\"id\":\"pool-0123456789abcdef0\",\"owner_id\":\"123456789012\",\"name\":\"office\","
    "\"description\":\"d\",\"image_id\":\"ami-1\",\"instance_type\":\"t3.nano\","
    "\"subnet_id\":\"subnet-1\",\"security_group_ids\":[\"sg-1\",\"sg-2\"],\"size\":3,"
    "\"spares\":1,\"persistent\":true,\"idle_stop_s\":600,\"entitlement\":\"listed\","
    "\"state\":\"active\","
    "\"last_error\":null,\"last_error_at\":null,\"created_at\":\"2026-02-01T00:00:00Z\","
    "\"desktops\":{\"available\":1,\"assigned\":2,\"reserved\":0,\"resetting\":0,"
    "\"restarting\":0,\"terminating\":1,\"total\":3,\"running\":2}}";

static const char *const DESKTOP_JSON =
    "{\"id\":\"dsk-0123456789abcdef0\",\"pool_id\":\"pool-0123456789abcdef0\",\"pool_name\":"
    "\"office\",\"instance_id\":\"i-0123456789abcdef0\",\"state\":\"assigned\","
    "\"instance_state\":\"running\",\"owner_id\":null,\"user_id\":\"user-1\",\"assigned_at\":"
    "\"2026-02-01T00:00:00Z\",\"last_active_at\":\"2026-02-01T00:00:00Z\",\"private_ip\":null,"
    "\"ready\":true}";

static void test_pools(struct nubo_client *c)
{
    struct nubo_error err;
    canned_reset();
    canned_answer(201, POOL_JSON);
    struct nubo_vdi_pool_params p;
    nubo_vdi_pool_params_init(&p);
    const char *groups[] = {"sg-1", "sg-2"};
    p.name = "office";
    p.image_id = "ami-1";
    p.instance_type = "t3.nano";
    p.size = 3;
    p.spares = 1;
    p.persistent = true;
    p.subnet_id = "subnet-1";
    p.security_group_ids = groups;
    p.n_security_groups = 2;
    struct nubo_vdi_pool *pool = nubo_vdi_pool_create(c, &p, &err);
    canned_ok(pool != NULL, "pool create");
    canned_is_str(canned_request(0)->method, "POST", "pool create: POST");
    canned_is_str(canned_request(0)->target, "/api/v1/vdi/pools",
                  "pool create: the path under the prefix");
    canned_body_is(0,
                   "{\"name\":\"office\",\"image_id\":\"ami-1\",\"instance_type\":\"t3.nano\","
                   "\"size\":3,\"spares\":1,\"persistent\":true,\"subnet_id\":\"subnet-1\","
                   "\"security_group_ids\":[\"sg-1\",\"sg-2\"]}",
                   "pool create: the body (no idle_stop_s: the API's default)");
    if (pool) {
        canned_is_str(pool->id, "pool-0123456789abcdef0", "pool: id");
        canned_ok(pool->size == 3 && pool->spares == 1 && pool->persistent &&
                      pool->idle_stop_s == 600,
                  "pool: size, spares, persistent, idle_stop_s");
        canned_ok(pool->n_security_groups == 2 && !strcmp(pool->security_group_ids[1], "sg-2"),
                  "pool: its security groups");
        canned_ok(pool->desktops.total == 3 && pool->desktops.running == 2 &&
                      pool->desktops.assigned == 2 && pool->desktops.terminating == 1,
                  "pool: the desktops' counts");
        canned_ok(pool->last_error == NULL && pool->json != NULL, "pool: null fields, json");
        canned_is_str(pool->entitlement, "listed", "pool: entitlement");
    }
    nubo_vdi_pool_free(pool);

    canned_reset();
    p.idle_stop_s = 0; /* never: sent, unlike the default */
    p.n_security_groups = 0;
    p.subnet_id = NULL;
    p.description = "desks";
    canned_answer(201, POOL_JSON);
    nubo_vdi_pool_free(nubo_vdi_pool_create(c, &p, &err));
    canned_body_is(0,
                   "{\"name\":\"office\",\"image_id\":\"ami-1\",\"instance_type\":\"t3.nano\","
                   "\"size\":3,\"spares\":1,\"persistent\":true,\"description\":\"desks\","
                   "\"idle_stop_s\":0}",
                   "pool create: idle_stop_s 0 and a description are sent");

    canned_reset();
    p.image_id = NULL;
    canned_ok(nubo_vdi_pool_create(c, &p, &err) == NULL &&
                  !strcmp(err.code, "InvalidParameterValue") && canned_served() == 0,
              "pool create without an image: refused before sending");

    canned_reset();
    canned_answer(200, POOL_JSON);
    nubo_vdi_pool_free(nubo_vdi_pool_update(c, "pool-0123456789abcdef0", -1, 2, -1, &err));
    canned_is_str(canned_request(0)->method, "PATCH", "pool update: PATCH");
    canned_is_str(canned_request(0)->target, "/api/v1/vdi/pools/pool-0123456789abcdef0",
                  "pool update: the path");
    canned_body_is(0, "{\"spares\":2}", "pool update: only what changes");
    canned_reset();
    canned_ok(nubo_vdi_pool_update(c, "pool-1", -1, -1, -1, &err) == NULL && canned_served() == 0 &&
                  !strcmp(err.code, "InvalidParameterValue"),
              "pool update of nothing: refused before sending");

    /* A desktop user's list: four fields only. */
    canned_reset();
    canned_answer(200, "{\"pools\":[{\"id\":\"pool-1\",\"name\":\"office\",\"description\":\"\","
                       "\"persistent\":false}]}");
    struct nubo_vdi_pool_list *l = nubo_vdi_pools_list(c, &err);
    canned_ok(l && l->n == 1 && !strcmp(l->items[0].name, "office") && !l->items[0].state &&
                  l->items[0].size == 0,
              "pool list: a desktop user's short items");
    canned_is_str(canned_request(0)->target, "/api/v1/vdi/pools", "pool list: the path");
    nubo_vdi_pool_list_free(l);

    canned_reset();
    canned_answer(202, POOL_JSON);
    pool = nubo_vdi_pool_delete(c, "pool-0123456789abcdef0", &err);
    canned_ok(pool && !strcmp(canned_request(0)->method, "DELETE"),
              "pool delete: DELETE, the pool back");
    nubo_vdi_pool_free(pool);

    canned_reset();
    canned_answer(400,
                  "{\"error\":{\"code\":\"InvalidPoolID.NotFound\",\"message\":\"no such pool\","
                  "\"request_id\":\"req-9\"}}");
    pool = nubo_vdi_pool_get(c, "pool-00000000000000000", &err);
    canned_ok(!pool && nubo_error_is_not_found(&err) && err.http_status == 400 &&
                  !strcmp(err.request_id, "req-9"),
              "pool get: an API error");
}

static void test_entitlements(struct nubo_client *c)
{
    struct nubo_error err;
    struct nubo_vdi_pool_params p;
    nubo_vdi_pool_params_init(&p);
    p.name = "office";
    p.image_id = "ami-1";
    p.instance_type = "t3.nano";
    p.size = 2;
    canned_reset();
    canned_answer(201, POOL_JSON);
    nubo_vdi_pool_free(nubo_vdi_pool_create_entitled(c, &p, "listed", &err));
    canned_body_is(0,
                   "{\"name\":\"office\",\"image_id\":\"ami-1\",\"instance_type\":\"t3.nano\","
                   "\"size\":2,\"spares\":0,\"persistent\":false,\"entitlement\":\"listed\"}",
                   "pool create with an entitlement: the body");
    canned_reset();
    canned_answer(200, POOL_JSON);
    nubo_vdi_pool_free(
        nubo_vdi_pool_update_entitled(c, "pool-0123456789abcdef0", -1, -1, -1, "all", &err));
    canned_is_str(canned_request(0)->method, "PATCH", "pool update entitlement: PATCH");
    canned_body_is(0, "{\"entitlement\":\"all\"}", "pool update entitlement: the body");

    static const char *const GRANT_JSON =
        "{\"pool_id\":\"pool-0123456789abcdef0\",\"user_id\":\"user-0123456789abcdef0\","
        "\"user_name\":\"alice\",\"granted_at\":\"2026-02-01T00:00:00Z\"}";
    canned_reset();
    char list[512];
    snprintf(list, sizeof list, "{\"users\":[%s]}", GRANT_JSON);
    canned_answer(200, list);
    struct nubo_vdi_grant_list *l = nubo_vdi_pool_users(c, "pool-0123456789abcdef0", &err);
    canned_is_str(canned_request(0)->method, "GET", "pool users: GET");
    canned_is_str(canned_request(0)->target, "/api/v1/vdi/pools/pool-0123456789abcdef0/users",
                  "pool users: the path");
    canned_ok(l && l->n == 1 && !strcmp(l->items[0].user_id, "user-0123456789abcdef0") &&
                  !strcmp(l->items[0].user_name, "alice") &&
                  !strcmp(l->items[0].granted_at, "2026-02-01T00:00:00Z"),
              "pool users: the grants");
    nubo_vdi_grant_list_free(l);

    canned_reset();
    canned_answer(200, GRANT_JSON);
    struct nubo_vdi_grant *g =
        nubo_vdi_pool_grant(c, "pool-0123456789abcdef0", "user-0123456789abcdef0", &err);
    canned_is_str(canned_request(0)->method, "PUT", "grant: PUT");
    canned_is_str(canned_request(0)->target,
                  "/api/v1/vdi/pools/pool-0123456789abcdef0/users/user-0123456789abcdef0",
                  "grant: the path");
    canned_ok(g && !strcmp(g->pool_id, "pool-0123456789abcdef0") && g->json,
              "grant: the grant back");
    nubo_vdi_grant_free(g);

    canned_reset();
    canned_answer(400, "{\"error\":{\"code\":\"InvalidParameterValue\",\"message\":\"user "
                       "'user-1' has the role \\\"member\\\"\",\"request_id\":\"req-7\"}}");
    g = nubo_vdi_pool_grant(c, "pool-0123456789abcdef0", "user-1", &err);
    canned_ok(!g && !strcmp(err.code, "InvalidParameterValue") && err.http_status == 400 &&
                  canned_served() == 1,
              "grant: an API error, not retried");

    canned_reset();
    canned_answer(204, "");
    canned_ok(nubo_vdi_pool_revoke(c, "pool-0123456789abcdef0", "user-0123456789abcdef0", &err) ==
                  0,
              "revoke: 204 is success");
    canned_is_str(canned_request(0)->method, "DELETE", "revoke: DELETE");
    canned_is_str(canned_request(0)->target,
                  "/api/v1/vdi/pools/pool-0123456789abcdef0/users/user-0123456789abcdef0",
                  "revoke: the path");
    canned_reset();
    canned_ok(nubo_vdi_pool_revoke(c, "pool-1", NULL, &err) == -1 && canned_served() == 0 &&
                  !strcmp(err.code, "InvalidParameterValue"),
              "revoke: a user id is required");
}

static void test_desktops(struct nubo_client *c)
{
    struct nubo_error err;
    canned_reset();
    char connect[1024];
    snprintf(connect, sizeof connect, "{\"desktop\":%s,\"ready\":true}", DESKTOP_JSON);
    canned_answer(200, connect);
    struct nubo_vdi_desktop *d = nubo_vdi_connect(c, "pool-0123456789abcdef0", &err);
    canned_is_str(canned_request(0)->method, "POST", "connect: POST");
    canned_is_str(canned_request(0)->target, "/api/v1/vdi/pools/pool-0123456789abcdef0/connect",
                  "connect: path");
    canned_ok(d && d->ready && !strcmp(d->id, "dsk-0123456789abcdef0") &&
                  !strcmp(d->user_id, "user-1") && !d->owner_id && !d->private_ip,
              "connect: the desktop inside the answer");
    nubo_vdi_desktop_free(d);

    canned_reset();
    canned_answer(200, "{\"desktops\":[]}");
    struct nubo_vdi_desktop_list *l = nubo_vdi_my_desktops(c, &err);
    canned_ok(l && l->n == 0, "my-desktops: none");
    canned_is_str(canned_request(0)->target, "/api/v1/vdi/my-desktops", "my-desktops: the path");
    nubo_vdi_desktop_list_free(l);

    canned_reset();
    char list[1024];
    snprintf(list, sizeof list, "{\"desktops\":[%s]}", DESKTOP_JSON);
    canned_answer(200, list);
    l = nubo_vdi_pool_desktops(c, "pool-1", &err);
    canned_ok(l && l->n == 1 && !strcmp(l->items[0].instance_state, "running"), "pool desktops");
    canned_is_str(canned_request(0)->target, "/api/v1/vdi/pools/pool-1/desktops",
                  "pool desktops: the path");
    nubo_vdi_desktop_list_free(l);

    canned_reset();
    canned_answer(200, DESKTOP_JSON);
    nubo_vdi_desktop_free(nubo_vdi_desktop_sign_out(c, "dsk-1", &err));
    canned_ok(!strcmp(canned_request(0)->method, "POST") &&
                  !strcmp(canned_request(0)->target, "/api/v1/vdi/desktops/dsk-1/sign-out"),
              "sign-out: POST to its path");

    /* The wait: launching, then ready. */
    canned_reset();
    canned_answer(200, "{\"id\":\"dsk-1\",\"state\":\"assigned\",\"instance_id\":null,"
                       "\"instance_state\":null,\"ready\":false}");
    canned_answer(200, "{\"id\":\"dsk-1\",\"state\":\"assigned\",\"instance_id\":\"i-1\","
                       "\"instance_state\":\"pending\",\"ready\":false}");
    canned_answer(200, DESKTOP_JSON);
    d = nubo_vdi_desktop_wait(c, "dsk-1", 10, 10, NULL, NULL, &err);
    canned_ok(d && d->ready && canned_served() == 3, "wait: polls until ready");
    canned_is_str(canned_request(2)->target, "/api/v1/vdi/desktops/dsk-1",
                  "wait: GETs the desktop");
    nubo_vdi_desktop_free(d);
    canned_reset();
    canned_answer(200, "{\"id\":\"dsk-1\",\"state\":\"resetting\",\"ready\":false}");
    d = nubo_vdi_desktop_wait(c, "dsk-1", 10, 10, NULL, NULL, &err);
    canned_ok(!d && !strcmp(err.code, "IncorrectState"), "wait: a desktop out of its session");
    canned_reset();
    canned_answer(200, "{\"id\":\"dsk-1\",\"state\":\"assigned\",\"ready\":false}");
    d = nubo_vdi_desktop_wait(c, "dsk-1", 0.001, 10, NULL, NULL, &err);
    canned_ok(!d && !strcmp(err.code, "Timeout") && strstr(err.message, "being launched"),
              "wait: times out");
}

static void test_tickets(struct nubo_client *c, const char *origin)
{
    struct nubo_error err;
    const char *ticket =
        "{\"instance_id\":\"i-1\",\"token\":\"tok\",\"expires_in\":30,\"websocket\":"
        "\"/v1/console/websocket?token=tok\",\"viewer\":\"/console/vnc.html?instance=i-1&token="
        "tok\"}";
    char want[256];
    canned_reset();
    canned_answer(201, ticket);
    struct nubo_console_ticket *t = nubo_instance_vnc(c, "i-1", &err);
    canned_is_str(canned_request(0)->method, "POST", "instance vnc: POST");
    canned_is_str(canned_request(0)->target, "/api/v1/instances/i-1/vnc", "instance vnc: the path");
    canned_ok(t && t->expires_in == 30 && !strcmp(t->token, "tok") &&
                  !strcmp(t->instance_id, "i-1"),
              "ticket: its fields");
    snprintf(want, sizeof want, "http://%s/api/console/vnc.html?instance=i-1&token=tok", origin);
    canned_is_str(t ? t->viewer_url : NULL, want, "ticket: the viewer URL is the endpoint's");
    snprintf(want, sizeof want, "ws://%s/api/v1/console/websocket?token=tok", origin);
    canned_is_str(t ? t->websocket_url : NULL, want, "ticket: the WebSocket URL");
    nubo_console_ticket_free(t);

    canned_reset();
    canned_answer(201, ticket);
    t = nubo_vdi_desktop_console(c, "dsk-1", &err);
    canned_ok(t && !strcmp(canned_request(0)->target, "/api/v1/vdi/desktops/dsk-1/console"),
              "desktop console: a ticket from its path");
    nubo_console_ticket_free(t);

    canned_reset();
    canned_answer(400,
                  "{\"error\":{\"code\":\"IncorrectInstanceState\",\"message\":\"not running\"}}");
    t = nubo_instance_vnc(c, "i-1", &err);
    canned_ok(!t && !strcmp(err.code, "IncorrectInstanceState") && canned_served() == 1,
              "instance vnc: an API error, sent once");
}

static void test_invoice_csv(struct nubo_client *c)
{
    struct nubo_error err;
    canned_reset();
    const char *csv = "invoice_id,tenant_id\r\ninv-1,123456789012\r\n";
    canned_answer_type(200, "text/csv; charset=utf-8", csv);
    char *text = nubo_invoice_csv(c, "inv-1", &err);
    canned_is_str(canned_request(0)->target, "/api/v1/invoices/inv-1?format=csv",
                  "invoice csv: format=csv");
    canned_is_str(text, csv, "invoice csv: the body as it came");
    free(text);
    canned_ok(nubo_invoice_csv(c, "", &err) == NULL && !strcmp(err.code, "InvalidParameterValue"),
              "invoice csv: an id is required");
}

int main(void)
{
    char origin[64];
    struct nubo_client *c = canned_client(origin, sizeof origin);
    if (!c) {
        return 1;
    }
    test_pools(c);
    test_entitlements(c);
    test_desktops(c);
    test_tickets(c, origin);
    test_invoice_csv(c);
    return canned_finish(c);
}
