/* libnubo's console-ticket, VDI and invoice-CSV calls against a canned HTTP server on loopback:
 * the requests they build (method, path under the endpoint's prefix, query, JSON body) and how
 * they read the answers (typed fields, the ticket's URLs, errors, the wait for a desktop).
 * Needs no gateway. Prints TAP. */
#include "nubo/nubo.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- the server: answers each connection with the next canned answer, then closes it ------- */

#define MAX_ANSWERS 8

struct exchange {
    int status;
    const char *type; /* Content-Type of the answer */
    const char *body;
    /* What came: */
    char method[16];
    char target[512]; /* path and query */
    char body_in[2048];
};

static struct exchange ex[MAX_ANSWERS];
static int n_ex, served;
static int listen_fd;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Reads one request from 'fd' into 'e'. Returns 0, or -1 when the client went away. */
static int read_request(int fd, struct exchange *e)
{
    char buf[8192];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len == sizeof buf - 1) {
            return -1;
        }
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0) {
            return -1;
        }
        len += (size_t)got;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    sscanf(buf, "%15s %511s", e->method, e->target);
    size_t want = 0;
    for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
        if (!strncasecmp(h + 2, "Content-Length:", 15)) {
            want = strtoul(h + 17, NULL, 10);
        }
    }
    size_t have = len - (size_t)(end + 4 - buf);
    if (want >= sizeof e->body_in) {
        return -1;
    }
    memcpy(e->body_in, end + 4, have);
    while (have < want) {
        ssize_t got = read(fd, e->body_in + have, want - have);
        if (got <= 0) {
            return -1;
        }
        have += (size_t)got;
    }
    e->body_in[want] = '\0';
    return 0;
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            return NULL;
        }
        pthread_mutex_lock(&mu);
        struct exchange *e = served < n_ex ? &ex[served] : NULL;
        pthread_mutex_unlock(&mu);
        struct exchange none = {.status = 500, .type = "text/plain", .body = "no answer left"};
        if (read_request(fd, e ? e : &none) == 0) {
            /* Counted before the answer goes: the client checks 'served' once it has it. */
            pthread_mutex_lock(&mu);
            served += e != NULL;
            pthread_mutex_unlock(&mu);
            if (!e) {
                e = &none;
            }
            char head[256];
            int n = snprintf(head, sizeof head,
                             "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                             "x-amzn-RequestId: req-1\r\nConnection: close\r\n\r\n",
                             e->status, e->type, strlen(e->body));
            if (write(fd, head, (size_t)n) < 0 || write(fd, e->body, strlen(e->body)) < 0) {
                perror("write");
            }
        }
        close(fd);
    }
}

/* Queues a JSON answer of 'status' for the next request. */
static void answer(int status, const char *body)
{
    pthread_mutex_lock(&mu);
    ex[n_ex++] = (struct exchange){.status = status, .type = "application/json", .body = body};
    pthread_mutex_unlock(&mu);
}

static void reset(void)
{
    pthread_mutex_lock(&mu);
    memset(ex, 0, sizeof ex);
    n_ex = served = 0;
    pthread_mutex_unlock(&mu);
}

/* --- TAP ------------------------------------------------------------------------------------- */

static int n_test, n_failed;

static void ok(int cond, const char *name)
{
    printf("%s %d - %s\n", cond ? "ok" : "not ok", ++n_test, name);
    n_failed += !cond;
}

static void is_str(const char *got, const char *want, const char *name)
{
    int same = (!got && !want) || (got && want && !strcmp(got, want));
    ok(same, name);
    if (!same) {
        printf("    # got:  %s\n    # want: %s\n", got ? got : "(null)", want ? want : "(null)");
    }
}

/* The body of request 'i' has exactly the JSON 'want'. */
static void body_is(int i, const char *want, const char *name)
{
    json_t *a = json_loads(ex[i].body_in, 0, NULL), *b = json_loads(want, 0, NULL);
    int same = a && b && json_equal(a, b);
    ok(same, name);
    if (!same) {
        printf("    # got:  %s\n    # want: %s\n", ex[i].body_in, want);
    }
    json_decref(a);
    json_decref(b);
}

/* --- the cases ------------------------------------------------------------------------------- */

static const char *const POOL_JSON =
    "{\"id\":\"pool-0123456789abcdef0\",\"owner_id\":\"123456789012\",\"name\":\"office\","
    "\"description\":\"d\",\"image_id\":\"ami-1\",\"instance_type\":\"t3.nano\","
    "\"subnet_id\":\"subnet-1\",\"security_group_ids\":[\"sg-1\",\"sg-2\"],\"size\":3,"
    "\"spares\":1,\"persistent\":true,\"idle_stop_s\":600,\"state\":\"active\","
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
    reset();
    answer(201, POOL_JSON);
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
    ok(pool != NULL, "pool create");
    is_str(ex[0].method, "POST", "pool create: POST");
    is_str(ex[0].target, "/api/v1/vdi/pools", "pool create: the path under the prefix");
    body_is(0,
            "{\"name\":\"office\",\"image_id\":\"ami-1\",\"instance_type\":\"t3.nano\","
            "\"size\":3,\"spares\":1,\"persistent\":true,\"subnet_id\":\"subnet-1\","
            "\"security_group_ids\":[\"sg-1\",\"sg-2\"]}",
            "pool create: the body (no idle_stop_s: the API's default)");
    if (pool) {
        is_str(pool->id, "pool-0123456789abcdef0", "pool: id");
        ok(pool->size == 3 && pool->spares == 1 && pool->persistent && pool->idle_stop_s == 600,
           "pool: size, spares, persistent, idle_stop_s");
        ok(pool->n_security_groups == 2 && !strcmp(pool->security_group_ids[1], "sg-2"),
           "pool: its security groups");
        ok(pool->desktops.total == 3 && pool->desktops.running == 2 &&
               pool->desktops.assigned == 2 && pool->desktops.terminating == 1,
           "pool: the desktops' counts");
        ok(pool->last_error == NULL && pool->json != NULL, "pool: null fields, json");
    }
    nubo_vdi_pool_free(pool);

    reset();
    p.idle_stop_s = 0; /* never: sent, unlike the default */
    p.n_security_groups = 0;
    p.subnet_id = NULL;
    p.description = "desks";
    answer(201, POOL_JSON);
    nubo_vdi_pool_free(nubo_vdi_pool_create(c, &p, &err));
    body_is(0,
            "{\"name\":\"office\",\"image_id\":\"ami-1\",\"instance_type\":\"t3.nano\","
            "\"size\":3,\"spares\":1,\"persistent\":true,\"description\":\"desks\","
            "\"idle_stop_s\":0}",
            "pool create: idle_stop_s 0 and a description are sent");

    reset();
    p.image_id = NULL;
    ok(nubo_vdi_pool_create(c, &p, &err) == NULL && !strcmp(err.code, "InvalidParameterValue") &&
           served == 0,
       "pool create without an image: refused before sending");

    reset();
    answer(200, POOL_JSON);
    nubo_vdi_pool_free(nubo_vdi_pool_update(c, "pool-0123456789abcdef0", -1, 2, -1, &err));
    is_str(ex[0].method, "PATCH", "pool update: PATCH");
    is_str(ex[0].target, "/api/v1/vdi/pools/pool-0123456789abcdef0", "pool update: the path");
    body_is(0, "{\"spares\":2}", "pool update: only what changes");
    reset();
    ok(nubo_vdi_pool_update(c, "pool-1", -1, -1, -1, &err) == NULL && served == 0 &&
           !strcmp(err.code, "InvalidParameterValue"),
       "pool update of nothing: refused before sending");

    /* A desktop user's list: four fields only. */
    reset();
    answer(200, "{\"pools\":[{\"id\":\"pool-1\",\"name\":\"office\",\"description\":\"\","
                "\"persistent\":false}]}");
    struct nubo_vdi_pool_list *l = nubo_vdi_pools_list(c, &err);
    ok(l && l->n == 1 && !strcmp(l->items[0].name, "office") && !l->items[0].state &&
           l->items[0].size == 0,
       "pool list: a desktop user's short items");
    is_str(ex[0].target, "/api/v1/vdi/pools", "pool list: the path");
    nubo_vdi_pool_list_free(l);

    reset();
    answer(202, POOL_JSON);
    pool = nubo_vdi_pool_delete(c, "pool-0123456789abcdef0", &err);
    ok(pool && !strcmp(ex[0].method, "DELETE"), "pool delete: DELETE, the pool back");
    nubo_vdi_pool_free(pool);

    reset();
    answer(400, "{\"error\":{\"code\":\"InvalidPoolID.NotFound\",\"message\":\"no such pool\","
                "\"request_id\":\"req-9\"}}");
    pool = nubo_vdi_pool_get(c, "pool-00000000000000000", &err);
    ok(!pool && nubo_error_is_not_found(&err) && err.http_status == 400 &&
           !strcmp(err.request_id, "req-9"),
       "pool get: an API error");
}

static void test_desktops(struct nubo_client *c)
{
    struct nubo_error err;
    reset();
    char connect[1024];
    snprintf(connect, sizeof connect, "{\"desktop\":%s,\"ready\":true}", DESKTOP_JSON);
    answer(200, connect);
    struct nubo_vdi_desktop *d = nubo_vdi_connect(c, "pool-0123456789abcdef0", &err);
    is_str(ex[0].method, "POST", "connect: POST");
    is_str(ex[0].target, "/api/v1/vdi/pools/pool-0123456789abcdef0/connect", "connect: path");
    ok(d && d->ready && !strcmp(d->id, "dsk-0123456789abcdef0") && !strcmp(d->user_id, "user-1") &&
           !d->owner_id && !d->private_ip,
       "connect: the desktop inside the answer");
    nubo_vdi_desktop_free(d);

    reset();
    answer(200, "{\"desktops\":[]}");
    struct nubo_vdi_desktop_list *l = nubo_vdi_my_desktops(c, &err);
    ok(l && l->n == 0, "my-desktops: none");
    is_str(ex[0].target, "/api/v1/vdi/my-desktops", "my-desktops: the path");
    nubo_vdi_desktop_list_free(l);

    reset();
    char list[1024];
    snprintf(list, sizeof list, "{\"desktops\":[%s]}", DESKTOP_JSON);
    answer(200, list);
    l = nubo_vdi_pool_desktops(c, "pool-1", &err);
    ok(l && l->n == 1 && !strcmp(l->items[0].instance_state, "running"), "pool desktops");
    is_str(ex[0].target, "/api/v1/vdi/pools/pool-1/desktops", "pool desktops: the path");
    nubo_vdi_desktop_list_free(l);

    reset();
    answer(200, DESKTOP_JSON);
    nubo_vdi_desktop_free(nubo_vdi_desktop_sign_out(c, "dsk-1", &err));
    ok(!strcmp(ex[0].method, "POST") &&
           !strcmp(ex[0].target, "/api/v1/vdi/desktops/dsk-1/sign-out"),
       "sign-out: POST to its path");

    /* The wait: launching, then ready. */
    reset();
    answer(200, "{\"id\":\"dsk-1\",\"state\":\"assigned\",\"instance_id\":null,"
                "\"instance_state\":null,\"ready\":false}");
    answer(200, "{\"id\":\"dsk-1\",\"state\":\"assigned\",\"instance_id\":\"i-1\","
                "\"instance_state\":\"pending\",\"ready\":false}");
    answer(200, DESKTOP_JSON);
    d = nubo_vdi_desktop_wait(c, "dsk-1", 10, 10, NULL, NULL, &err);
    ok(d && d->ready && served == 3, "wait: polls until ready");
    is_str(ex[2].target, "/api/v1/vdi/desktops/dsk-1", "wait: GETs the desktop");
    nubo_vdi_desktop_free(d);
    reset();
    answer(200, "{\"id\":\"dsk-1\",\"state\":\"resetting\",\"ready\":false}");
    d = nubo_vdi_desktop_wait(c, "dsk-1", 10, 10, NULL, NULL, &err);
    ok(!d && !strcmp(err.code, "IncorrectState"), "wait: a desktop out of its session");
    reset();
    answer(200, "{\"id\":\"dsk-1\",\"state\":\"assigned\",\"ready\":false}");
    d = nubo_vdi_desktop_wait(c, "dsk-1", 0.001, 10, NULL, NULL, &err);
    ok(!d && !strcmp(err.code, "Timeout") && strstr(err.message, "being launched"),
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
    reset();
    answer(201, ticket);
    struct nubo_console_ticket *t = nubo_instance_vnc(c, "i-1", &err);
    is_str(ex[0].method, "POST", "instance vnc: POST");
    is_str(ex[0].target, "/api/v1/instances/i-1/vnc", "instance vnc: the path");
    ok(t && t->expires_in == 30 && !strcmp(t->token, "tok") && !strcmp(t->instance_id, "i-1"),
       "ticket: its fields");
    snprintf(want, sizeof want, "http://%s/api/console/vnc.html?instance=i-1&token=tok", origin);
    is_str(t ? t->viewer_url : NULL, want, "ticket: the viewer URL is the endpoint's");
    snprintf(want, sizeof want, "ws://%s/api/v1/console/websocket?token=tok", origin);
    is_str(t ? t->websocket_url : NULL, want, "ticket: the WebSocket URL");
    nubo_console_ticket_free(t);

    reset();
    answer(201, ticket);
    t = nubo_vdi_desktop_console(c, "dsk-1", &err);
    ok(t && !strcmp(ex[0].target, "/api/v1/vdi/desktops/dsk-1/console"),
       "desktop console: a ticket from its path");
    nubo_console_ticket_free(t);

    reset();
    answer(400, "{\"error\":{\"code\":\"IncorrectInstanceState\",\"message\":\"not running\"}}");
    t = nubo_instance_vnc(c, "i-1", &err);
    ok(!t && !strcmp(err.code, "IncorrectInstanceState") && served == 1,
       "instance vnc: an API error, sent once");
}

static void test_invoice_csv(struct nubo_client *c)
{
    struct nubo_error err;
    reset();
    const char *csv = "invoice_id,tenant_id\r\ninv-1,123456789012\r\n";
    ex[0] = (struct exchange){.status = 200, .type = "text/csv; charset=utf-8", .body = csv};
    n_ex = 1;
    char *text = nubo_invoice_csv(c, "inv-1", &err);
    is_str(ex[0].target, "/api/v1/invoices/inv-1?format=csv", "invoice csv: format=csv");
    is_str(text, csv, "invoice csv: the body as it came");
    free(text);
    ok(nubo_invoice_csv(c, "", &err) == NULL && !strcmp(err.code, "InvalidParameterValue"),
       "invoice csv: an id is required");
}

int main(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(listen_fd, 8) < 0 || getsockname(listen_fd, (struct sockaddr *)&a, &alen) < 0) {
        perror("listen");
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, serve, NULL);
    char origin[64], endpoint[96];
    snprintf(origin, sizeof origin, "127.0.0.1:%u", ntohs(a.sin_port));
    /* A path prefix, as behind a reverse proxy: every path and URL must keep it. */
    snprintf(endpoint, sizeof endpoint, "http://%s/api/", origin);
    struct nubo_error err;
    struct nubo_client *c = nubo_client_new(endpoint, "NKIAEXAMPLE", "secret", NULL, &err);
    if (!c) {
        printf("Bail out! %s: %s\n", err.code, err.message);
        return 1;
    }
    nubo_client_set_retries(c, 1, 1);
    test_pools(c);
    test_desktops(c);
    test_tickets(c, origin);
    test_invoice_csv(c);
    nubo_client_free(c);
    printf("1..%d\n", n_test);
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    pthread_join(th, NULL);
    return n_failed ? 1 : 0;
}
