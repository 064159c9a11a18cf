/* libnubo's calls for an image made from an instance, instance types set by the operator, the
 * price plans and a user's own console password, against the canned HTTP server on loopback
 * (canned_server.c): the requests they build (method, path under the endpoint's prefix, JSON
 * body, retried or not) and how they read the answers (typed fields, errors). Needs no gateway.
 * Prints TAP. */
#include "nubo/nubo.h"

#include "canned_server.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const IMAGE_JSON =
    "{\"id\":\"ami-0123456789abcdef0\",\"owner_id\":\"123456789012\",\"name\":\"golden\","
    "\"description\":\"from web-1\",\"state\":\"pending\",\"public\":false,\"image_type\":"
    "\"machine\",\"architecture\":\"x86_64\",\"created_at\":\"2026-02-01T00:00:00Z\","
    "\"tags\":{},\"disk_format\":\"qcow2\"}";

static void test_create_image(struct nubo_client *c)
{
    struct nubo_error err;
    canned_reset();
    canned_answer(201, IMAGE_JSON);
    struct nubo_image *m =
        nubo_instance_create_image(c, "i-0123456789abcdef0", "golden", "from web-1", &err);
    canned_ok(m != NULL, "create image: the image back");
    canned_is_str(canned_request(0)->method, "POST", "create image: POST");
    canned_is_str(canned_request(0)->target, "/api/v1/instances/i-0123456789abcdef0/image",
                  "create image: the instance's path under the prefix");
    canned_body_is(0, "{\"name\":\"golden\",\"description\":\"from web-1\"}",
                   "create image: name and description");
    if (m) {
        canned_is_str(m->id, "ami-0123456789abcdef0", "create image: id");
        canned_is_str(m->state, "pending", "create image: pending while the store imports it");
        canned_ok(!strcmp(m->name, "golden") && !strcmp(m->owner_id, "123456789012") &&
                      !m->is_public && m->n_tags == 0 && !strcmp(m->architecture, "x86_64"),
                  "create image: name, owner, public, tags, architecture");
        struct nubo_image_storage st;
        canned_ok(nubo_image_storage_get(m, &st) == 0 && !strcmp(st.disk_format, "qcow2"),
                  "create image: its json has the rest");
    }
    nubo_image_free(m);

    /* No description: none sent (the API's ""). */
    canned_reset();
    canned_answer(201, IMAGE_JSON);
    nubo_image_free(nubo_instance_create_image(c, "i-1", "golden", NULL, &err));
    canned_body_is(0, "{\"name\":\"golden\"}", "create image: no description, none sent");

    canned_reset();
    canned_ok(nubo_instance_create_image(c, "i-1", "", NULL, &err) == NULL &&
                  !strcmp(err.code, "InvalidParameterValue") && canned_served() == 0,
              "create image without a name: refused before sending");
    canned_ok(nubo_instance_create_image(c, NULL, "x", NULL, &err) == NULL && canned_served() == 0,
              "create image without an instance: refused before sending");

    /* The gateway refuses: the error as it came, sent once (a POST is not retried, even with
     * retries allowed and on a 503). */
    canned_reset();
    canned_answer(409, "{\"error\":{\"code\":\"IncorrectInstanceState\",\"message\":\"The "
                       "instance 'i-1' runs on no host with an agent\",\"request_id\":\"req-7\"}}");
    m = nubo_instance_create_image(c, "i-1", "golden", NULL, &err);
    canned_ok(!m && !strcmp(err.code, "IncorrectInstanceState") && err.http_status == 409 &&
                  strstr(err.message, "no host with an agent") && !strcmp(err.request_id, "req-7"),
              "create image: the API's error");
    nubo_client_set_retries(c, 3, 1);
    canned_reset();
    canned_answer(503, "{\"error\":{\"code\":\"Unavailable\",\"message\":\"busy\"}}");
    canned_answer(201, IMAGE_JSON);
    m = nubo_instance_create_image(c, "i-1", "golden", NULL, &err);
    canned_ok(!m && canned_served() == 1 && nubo_error_is_unavailable(&err),
              "create image: not retried");
    nubo_client_set_retries(c, 1, 1);

    /* An answer that is no image. */
    canned_reset();
    canned_answer(201, "{\"name\":\"golden\"}");
    m = nubo_instance_create_image(c, "i-1", "golden", NULL, &err);
    canned_ok(!m && !strcmp(err.code, "ProtocolError"), "create image: an answer without an id");
}

/* The image in state 'state', as JSON (canned answers are kept by pointer: constants). */
#define IMAGE_IN(state)                                                                            \
    "{\"id\":\"ami-0123456789abcdef0\",\"owner_id\":\"123456789012\",\"name\":\"golden\","         \
    "\"state\":\"" state "\",\"tags\":{}}"

struct seen_waits {
    int calls;
    double last_elapsed;
    bool backwards;
    int cancel_at; /* stop the wait at this call (0: never) */
};

static int on_wait(const struct nubo_image *m, double elapsed, void *arg)
{
    struct seen_waits *w = arg;
    w->calls++;
    w->backwards |= elapsed < w->last_elapsed || strcmp(m->state, "pending");
    w->last_elapsed = elapsed;
    return w->calls == w->cancel_at;
}

/* nubo_image_wait_progress(): polls until the image is no longer pending, reporting each poll;
 * the three endings (available, failed, timeout) and a cancelled wait. */
static void test_image_wait(struct nubo_client *c)
{
    struct nubo_error err;
    struct seen_waits w = {0};
    canned_reset();
    canned_answer(200, IMAGE_IN("pending"));
    canned_answer(200, IMAGE_IN("pending"));
    canned_answer(200, IMAGE_IN("available"));
    struct nubo_image *m =
        nubo_image_wait_progress(c, "ami-0123456789abcdef0", 30, 10, on_wait, &w, &err);
    canned_ok(m && !strcmp(m->state, "available") && canned_served() == 3,
              "image wait: available after two pending polls");
    canned_ok(w.calls == 2 && !w.backwards, "image wait: progress after each pending poll");
    canned_is_str(canned_request(2)->target, "/api/v1/images/ami-0123456789abcdef0",
                  "image wait: polls the image");
    nubo_image_free(m);

    canned_reset();
    canned_answer(200, IMAGE_IN("pending"));
    canned_answer(200, IMAGE_IN("failed"));
    m = nubo_image_wait_progress(c, "ami-0123456789abcdef0", 30, 10, NULL, NULL, &err);
    canned_ok(m && !strcmp(m->state, "failed"), "image wait: a failed image ends the wait");
    nubo_image_free(m);

    canned_reset();
    for (int i = 0; i < 6; i++) {
        canned_answer(200, IMAGE_IN("pending"));
    }
    m = nubo_image_wait_progress(c, "ami-0123456789abcdef0", 0.03, 10, NULL, NULL, &err);
    canned_ok(!m && !strcmp(err.code, "Timeout") && strstr(err.message, "still pending"),
              "image wait: Timeout while still pending");

    canned_reset();
    w = (struct seen_waits){.cancel_at = 1};
    canned_answer(200, IMAGE_IN("pending"));
    canned_answer(200, IMAGE_IN("available"));
    m = nubo_image_wait_progress(c, "ami-0123456789abcdef0", 30, 10, on_wait, &w, &err);
    canned_ok(!m && !strcmp(err.code, "Cancelled") && canned_served() == 1,
              "image wait: a progress callback that returns non-zero cancels it");
    canned_reset();
}

static void test_instance_type_put(struct nubo_client *c)
{
    struct nubo_error err;
    canned_reset();
    canned_answer(200, "{\"name\":\"x1.big\",\"vcpus\":16,\"memory_mib\":65536,\"disk_gib\":"
                       "100,\"ephemeral_gib\":20,\"enabled\":false}");
    struct nubo_instance_type_params p = {.name = "x1.big",
                                          .vcpus = 16,
                                          .memory_mib = 65536,
                                          .disk_gib = 100,
                                          .ephemeral_gib = 20,
                                          .disabled = true};
    struct nubo_instance_type *t = nubo_instance_type_put(c, &p, &err);
    canned_ok(t != NULL, "type put: the type back");
    canned_is_str(canned_request(0)->method, "PUT", "type put: PUT");
    canned_is_str(canned_request(0)->target, "/api/v1/instance-types/x1.big", "type put: path");
    canned_body_is(0,
                   "{\"vcpus\":16,\"memory_mib\":65536,\"disk_gib\":100,\"ephemeral_gib\":20,"
                   "\"enabled\":false}",
                   "type put: the whole type, disabled");
    if (t) {
        canned_ok(!strcmp(t->name, "x1.big") && t->vcpus == 16 && t->memory_mib == 65536 &&
                      t->disk_gib == 100 && t->ephemeral_gib == 20 && !t->enabled && t->json,
                  "type put: typed fields");
    }
    nubo_instance_type_free(t);
    nubo_instance_type_free(NULL);

    /* A name with characters to encode; enabled by default. */
    canned_reset();
    canned_answer(200, "{\"name\":\"a b\",\"vcpus\":1,\"memory_mib\":512,\"disk_gib\":0,"
                       "\"ephemeral_gib\":0,\"enabled\":true}");
    struct nubo_instance_type_params q = {.name = "a b", .vcpus = 1, .memory_mib = 512};
    nubo_instance_type_free(nubo_instance_type_put(c, &q, &err));
    canned_is_str(canned_request(0)->target, "/api/v1/instance-types/a%20b",
                  "type put: the name percent-encoded");
    canned_body_is(0,
                   "{\"vcpus\":1,\"memory_mib\":512,\"disk_gib\":0,\"ephemeral_gib\":0,"
                   "\"enabled\":true}",
                   "type put: enabled unless disabled");

    /* A PUT is retried on 503. */
    nubo_client_set_retries(c, 3, 1);
    canned_reset();
    canned_answer(503, "{\"error\":{\"code\":\"Unavailable\",\"message\":\"busy\"}}");
    canned_answer(200, "{\"name\":\"a b\",\"vcpus\":1,\"memory_mib\":512,\"enabled\":true}");
    t = nubo_instance_type_put(c, &q, &err);
    canned_ok(t && canned_served() == 2, "type put: retried after a 503");
    nubo_instance_type_free(t);
    nubo_client_set_retries(c, 1, 1);

    canned_reset();
    q.vcpus = 0;
    canned_ok(!nubo_instance_type_put(c, &q, &err) && canned_served() == 0 &&
                  !strcmp(err.code, "InvalidParameterValue"),
              "type put without vcpus: refused before sending");
    q.vcpus = 1;
    q.name = NULL;
    canned_ok(!nubo_instance_type_put(c, &q, &err) && canned_served() == 0,
              "type put without a name: refused before sending");

    canned_reset();
    canned_answer(400, "{\"error\":{\"code\":\"UnauthorizedOperation\",\"message\":\"the admin "
                       "role is required\"}}");
    q.name = "t9";
    t = nubo_instance_type_put(c, &q, &err);
    canned_ok(!t && nubo_error_is_auth(&err), "type put: a refusal is an auth error");
}

static void test_prices(struct nubo_client *c)
{
    struct nubo_error err;
    canned_reset();
    canned_answer(
        200,
        "{\"plans\":[{\"id\":\"plan-2026\",\"name\":\"2026\",\"effective_from\":"
        "\"2026-01-01T00:00:00Z\",\"currency\":\"EUR\",\"min_run_seconds\":0,\"current\":true,"
        "\"prices\":[{\"meter\":\"instance-running\",\"sku\":\"t3.micro\",\"unit\":\"hour\","
        "\"unit_quantity\":3600,\"price_micros\":10400},{\"meter\":\"network-out\",\"sku\":\"\","
        "\"unit\":\"GB\",\"unit_quantity\":1000000000,\"price_micros\":90000}]},"
        "{\"id\":\"plan-default-1\",\"name\":\"default\",\"effective_from\":null,\"currency\":"
        "\"USD\",\"min_run_seconds\":60,\"current\":false,\"prices\":[]}]}");
    struct nubo_price_plan_list *l = nubo_admin_prices(c, &err);
    canned_ok(l && l->n == 2, "prices: two plans");
    canned_is_str(canned_request(0)->method, "GET", "prices: GET");
    canned_is_str(canned_request(0)->target, "/api/v1/admin/prices", "prices: the path");
    if (l && l->n == 2) {
        const struct nubo_price_plan *p = &l->items[0];
        canned_ok(!strcmp(p->id, "plan-2026") && !strcmp(p->name, "2026") &&
                      !strcmp(p->currency, "EUR") && p->current && p->min_run_seconds == 0 &&
                      !strcmp(p->effective_from, "2026-01-01T00:00:00Z"),
                  "prices: the plan's fields");
        canned_ok(p->n_prices == 2 && !strcmp(p->prices[0].meter, "instance-running") &&
                      !strcmp(p->prices[0].sku, "t3.micro") && !strcmp(p->prices[0].unit, "hour") &&
                      p->prices[0].unit_quantity == 3600 && p->prices[0].price_micros == 10400,
                  "prices: a price");
        canned_ok(!strcmp(p->prices[1].sku, "") && p->prices[1].unit_quantity == 1000000000LL,
                  "prices: the fallback sku is \"\"");
        const struct nubo_price_plan *d = &l->items[1];
        canned_ok(!d->current && d->effective_from == NULL && d->n_prices == 0 &&
                      d->prices == NULL && d->min_run_seconds == 60,
                  "prices: a plan from the beginning of time, without prices");
        canned_ok(strstr(p->json, "\"plan-2026\"") && !strstr(p->json, "plan-default-1"),
                  "prices: each plan's own json");
    }
    nubo_price_plan_list_free(l);
    nubo_price_plan_list_free(NULL);

    canned_reset();
    canned_answer(200, "{\"plans\":[{\"id\":\"p\",\"currency\":\"USD\",\"prices\":[{\"sku\":"
                       "\"\"}]}]}");
    l = nubo_admin_prices(c, &err);
    canned_ok(!l && !strcmp(err.code, "ProtocolError"), "prices: a price without a meter");

    canned_reset();
    canned_answer(200, "{\"plans\":{}}");
    l = nubo_admin_prices(c, &err);
    canned_ok(!l && !strcmp(err.code, "ProtocolError"), "prices: plans that are no array");
}

static void test_my_password(struct nubo_client *c)
{
    struct nubo_error err;
    canned_reset();
    canned_answer(200, "{\"user_id\":\"user-1\",\"password_set\":true}");
    int rc = nubo_my_password_set(c, "old password 1", "new password 2", &err);
    canned_ok(rc == 0, "my password: set");
    canned_is_str(canned_request(0)->method, "PUT", "my password: PUT");
    canned_is_str(canned_request(0)->target, "/api/v1/me/password", "my password: the path");
    canned_body_is(0, "{\"current_password\":\"old password 1\",\"password\":\"new password 2\"}",
                   "my password: current and new");

    canned_reset();
    canned_answer(200, "{\"user_id\":\"user-1\",\"password_set\":true}");
    nubo_my_password_set(c, "", "new password 2", &err);
    canned_body_is(0, "{\"password\":\"new password 2\"}", "my password: none yet, none sent");

    /* A wrong current password: the gateway's words, and no second try even on a 503. */
    canned_reset();
    canned_answer(400, "{\"error\":{\"code\":\"InvalidParameterValue\",\"message\":\"the current "
                       "password is not right\"}}");
    rc = nubo_my_password_set(c, "wrong", "new password 2", &err);
    canned_ok(rc == -1 && !strcmp(err.code, "InvalidParameterValue") &&
                  !strcmp(err.message, "the current password is not right"),
              "my password: a wrong current one");
    nubo_client_set_retries(c, 3, 1);
    canned_reset();
    canned_answer(503, "{\"error\":{\"code\":\"Unavailable\",\"message\":\"busy\"}}");
    canned_answer(200, "{\"user_id\":\"user-1\",\"password_set\":true}");
    rc = nubo_my_password_set(c, "old password 1", "new password 2", &err);
    canned_ok(rc == -1 && canned_served() == 1, "my password: not retried");
    nubo_client_set_retries(c, 1, 1);

    canned_reset();
    canned_ok(nubo_my_password_set(c, "old", NULL, &err) == -1 && canned_served() == 0 &&
                  !strcmp(err.code, "InvalidParameterValue"),
              "my password: a new one is required");
}

int main(void)
{
    char origin[64];
    struct nubo_client *c = canned_client(origin, sizeof origin);
    if (!c) {
        return 1;
    }
    test_create_image(c);
    test_image_wait(c);
    test_instance_type_put(c);
    test_prices(c);
    test_my_password(c);
    return canned_finish(c);
}
