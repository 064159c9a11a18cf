/* Unit tests of the HTTP server: a real nb_http server on 127.0.0.1 (a free port), driven with
 * libcurl. Each case starts its own server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (64 * 1024)

struct fixture {
    struct nb_http_server *srv;
    int port;
    atomic_int post_calls;
    atomic_bool slow_started;
    /* the owner of an upgraded connection (on_upgrade()) */
    pthread_t echo_thread;
    atomic_bool echo_started;
    atomic_bool echo_closed;
    atomic_int upgrade_failures; /* calls of on_upgrade() without a connection */
};

/* --- handlers --- */

static void on_healthz(struct nb_http_req *req, void *arg)
{
    nb_http_reply_header(req, "X-Reply", "yes");
    nb_http_reply(req, 200, "text/plain", "ok", 2);
}

static void set_or_null(json_t *obj, const char *key, const char *value)
{
    json_object_set_new(obj, key, value ? json_string(value) : json_null());
}

static void on_echo(struct nb_http_req *req, void *arg)
{
    size_t len;
    const char *body = nb_http_req_body(req, &len);
    json_t *o = json_object();
    set_or_null(o, "method", nb_http_req_method(req));
    set_or_null(o, "path", nb_http_req_path(req));
    set_or_null(o, "raw_path", nb_http_req_raw_path(req));
    set_or_null(o, "raw_query", nb_http_req_raw_query(req));
    set_or_null(o, "x", nb_http_req_query(req, "x"));
    set_or_null(o, "y", nb_http_req_query(req, "y"));
    set_or_null(o, "z", nb_http_req_query(req, "z"));
    set_or_null(o, "w", nb_http_req_query(req, "w"));
    set_or_null(o, "v", nb_http_req_query(req, "v"));
    set_or_null(o, "header", nb_http_req_header(req, "x-test-header"));
    set_or_null(o, "remote", nb_http_req_remote_addr(req));
    json_object_set_new(o, "body", json_stringn(body, len));
    /* The arena is usable and freed with the request (LeakSanitizer would notice otherwise). */
    char *note = nb_arena_printf(nb_http_req_arena(req), "seen %s", nb_http_req_path(req));
    set_or_null(o, "note", note);
    nb_http_reply_json(req, 200, o);
    json_decref(o);
}

static void on_post(struct nb_http_req *req, void *arg)
{
    struct fixture *fx = arg;
    size_t len;
    const char *body = nb_http_req_body(req, &len);
    atomic_fetch_add(&fx->post_calls, 1);
    if (body[len] != '\0') {
        nb_http_reply(req, 500, "text/plain", "body not terminated", 19);
        return;
    }
    nb_http_reply(req, 201, "application/octet-stream", body, len);
}

static void on_noreply(struct nb_http_req *req, void *arg)
{
    nb_http_reply_header(req, "X-Lost", "1");
}

static void on_xml(struct nb_http_req *req, void *arg)
{
    nb_http_reply_xml(req, 200, "<?xml version=\"1.0\"?><a>b</a>");
}

static void collect_header(const char *name, const char *value, void *arg)
{
    FILE *out = arg;
    if (strncmp(name, "X-", 2) == 0) {
        fprintf(out, "%s=%s;", name, value);
    }
}

static void on_headers(struct nb_http_req *req, void *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    nb_http_req_headers(req, collect_header, out);
    fclose(out);
    nb_http_reply(req, 200, "text/plain", text, len);
    free(text);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_slow(struct nb_http_req *req, void *arg)
{
    struct fixture *fx = arg;
    atomic_store(&fx->slow_started, true);
    sleep_ms(300);
    nb_http_reply(req, 200, "text/plain", "slow done", 9);
}

/* An upgraded connection's owner: echoes what it reads (the bytes that came with the request
 * first) until EOF, then closes. */
struct echo {
    struct fixture *fx;
    struct nb_http_upgraded *u;
    int fd;
    char *extra;
    size_t extra_len;
};

static bool write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    char buf[4096];
    fcntl(e->fd, F_SETFL, fcntl(e->fd, F_GETFL) & ~O_NONBLOCK);
    bool ok = write_all(e->fd, e->extra, e->extra_len);
    for (ssize_t n; ok && (n = read(e->fd, buf, sizeof buf)) > 0;) {
        ok = write_all(e->fd, buf, (size_t)n);
    }
    /* Before closing: a stopping server returns as soon as the close is done. */
    atomic_store(&e->fx->echo_closed, true);
    nb_http_upgraded_close(e->u);
    free(e->extra);
    free(e);
    return NULL;
}

static void on_upgrade(struct nb_http_upgraded *u, int fd, const char *extra, size_t extra_len,
                       void *ctx)
{
    struct fixture *fx = ctx;
    if (!u) {
        atomic_fetch_add(&fx->upgrade_failures, 1);
        return;
    }
    struct echo *e = calloc(1, sizeof *e);
    *e = (struct echo){fx, u, fd, malloc(extra_len + 1), extra_len};
    memcpy(e->extra, extra, extra_len);
    atomic_store(&fx->echo_started, true);
    if (pthread_create(&fx->echo_thread, NULL, echo_main, e) != 0) {
        nb_http_upgraded_close(u);
        free(e->extra);
        free(e);
    }
}

static void on_ws(struct nb_http_req *req, void *arg)
{
    nb_http_reply_header(req, "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    nb_http_reply_upgrade(req, "websocket", on_upgrade, arg);
}

static void on_slow_ws(struct nb_http_req *req, void *arg)
{
    struct fixture *fx = arg;
    atomic_store(&fx->slow_started, true);
    sleep_ms(300);
    nb_http_reply_upgrade(req, "websocket", on_upgrade, arg);
}

/* --- fixture --- */

static int setup_with(void **state, bool thread_per_connection)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    struct nb_error err = {0};
    struct nb_http_config cfg = {.address = "127.0.0.1",
                                 .threads = 2,
                                 .max_body = MAX_BODY,
                                 .thread_per_connection = thread_per_connection};

    fx->srv = nb_http_server_new(&cfg, &err);
    if (!fx->srv) {
        fprintf(stderr, "server: %s\n", err.msg);
        free(fx);
        return -1;
    }
    nb_http_route(fx->srv, "GET", "/healthz", on_healthz, fx);
    nb_http_route(fx->srv, NULL, "/echo*", on_echo, fx);
    nb_http_route(fx->srv, "POST", "/post", on_post, fx);
    nb_http_route(fx->srv, "PUT", "/post", on_post, fx);
    nb_http_route(fx->srv, "GET", "/noreply", on_noreply, fx);
    nb_http_route(fx->srv, "GET", "/xml", on_xml, fx);
    nb_http_route(fx->srv, "GET", "/headers", on_headers, fx);
    nb_http_route(fx->srv, "GET", "/slow", on_slow, fx);
    nb_http_route(fx->srv, "GET", "/ws", on_ws, fx);
    nb_http_route(fx->srv, "GET", "/slow-ws", on_slow_ws, fx);
    if (nb_http_server_start(fx->srv, &err) < 0) {
        fprintf(stderr, "start: %s\n", err.msg);
        nb_http_server_free(fx->srv);
        free(fx);
        return -1;
    }
    fx->port = nb_http_server_port(fx->srv);
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, false);
}

static int setup_thread_per_connection(void **state)
{
    return setup_with(state, true);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    nb_http_server_free(fx->srv);
    free(fx);
    return 0;
}

/* --- client side --- */

struct result {
    CURLcode rc;
    long status;
    char *body;
    size_t body_len;
    char *headers;
    size_t headers_len;
};

struct upload {
    const char *data;
    size_t len;
    size_t pos;
};

static size_t read_upload(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct upload *u = arg;
    size_t n = size * nmemb;
    if (n > u->len - u->pos) {
        n = u->len - u->pos;
    }
    memcpy(buf, u->data + u->pos, n);
    u->pos += n;
    return n;
}

/* Performs one request on 'h' (a fresh handle when NULL). 'chunked' sends the body without a
 * Content-Length. */
static void request_on(CURL *h, const char *method, const char *url, const char *const *headers,
                       const char *body, size_t body_len, bool chunked, struct result *r)
{
    bool own = h == NULL;
    struct curl_slist *list = NULL;
    struct upload up = {body, body_len, 0};

    memset(r, 0, sizeof *r);
    if (own) {
        h = curl_easy_init();
    }
    FILE *bf = open_memstream(&r->body, &r->body_len);
    FILE *hf = open_memstream(&r->headers, &r->headers_len);
    for (const char *const *p = headers; p && *p; p++) {
        list = curl_slist_append(list, *p);
    }
    if (chunked) {
        list = curl_slist_append(list, "Transfer-Encoding: chunked");
    }
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, bf);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, hf);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_upload);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                         chunked ? (curl_off_t)-1 : (curl_off_t)body_len);
    }
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    fclose(bf);
    fclose(hf);
    curl_slist_free_all(list);
    if (own) {
        curl_easy_cleanup(h);
    } else {
        curl_easy_reset(h);
    }
}

static void request(const struct fixture *fx, const char *method, const char *path,
                    const char *const *headers, const char *body, size_t body_len, struct result *r)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx->port, path);
    request_on(NULL, method, url, headers, body, body_len, false, r);
}

static void result_free(struct result *r)
{
    free(r->body);
    free(r->headers);
}

/* True if the response has the header line "name: value" (name compared case-insensitively). */
static bool has_header(const struct result *r, const char *name, const char *value)
{
    char line[256];
    snprintf(line, sizeof line, "\n%s: %s\r\n", name, value);
    return strcasestr(r->headers, line) != NULL;
}

static json_t *body_json(const struct result *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    return j;
}

static const char *jstr(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* --- cases --- */

static void routes_exact_and_prefix(void **state)
{
    struct fixture *fx = *state;
    struct result r;

    request(fx, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok");
    result_free(&r);

    request(fx, "DELETE", "/echo/sub/path", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(jstr(j, "method"), "DELETE");
    assert_string_equal(jstr(j, "path"), "/echo/sub/path");
    assert_string_equal(jstr(j, "note"), "seen /echo/sub/path");
    json_decref(j);
    result_free(&r);

    request(fx, "GET", "/healthz/more", NULL, NULL, 0, &r); /* exact routes match exactly */
    assert_int_equal(r.status, 404);
    result_free(&r);
    request(fx, "GET", "/nothing", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    result_free(&r);
}

static void wrong_method_gets_405(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    request(fx, "GET", "/post", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 405);
    assert_true(has_header(&r, "Allow", "POST, PUT"));
    result_free(&r);
}

static void query_and_raw_uri(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    request(fx, "GET", "/echo/a%2Fb%20c?x=1&y=%41&z=a+b&w", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(jstr(j, "path"), "/echo/a/b c");
    assert_string_equal(jstr(j, "raw_path"), "/echo/a%2Fb%20c");
    assert_string_equal(jstr(j, "raw_query"), "x=1&y=%41&z=a+b&w");
    assert_string_equal(jstr(j, "w"), ""); /* present without a value */
    assert_true(json_is_null(json_object_get(j, "v")));
    assert_string_equal(jstr(j, "x"), "1");
    assert_string_equal(jstr(j, "y"), "A");
    assert_string_equal(jstr(j, "z"), "a b");
    json_decref(j);
    result_free(&r);

    request(fx, "GET", "/echo", NULL, NULL, 0, &r);
    j = body_json(&r);
    assert_string_equal(jstr(j, "raw_query"), "");
    assert_true(json_is_null(json_object_get(j, "x")));
    json_decref(j);
    result_free(&r);
}

static void headers_case_insensitive_and_ordered(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    const char *const hdrs[] = {"X-Test-Header: Hello", "X-Second: 2", "x-third: three", NULL};

    request(fx, "GET", "/echo", hdrs, NULL, 0, &r);
    json_t *j = body_json(&r);
    assert_string_equal(jstr(j, "header"), "Hello");
    json_decref(j);
    result_free(&r);

    request(fx, "GET", "/headers", hdrs, NULL, 0, &r);
    assert_string_equal(r.body, "X-Test-Header=Hello;X-Second=2;");
    result_free(&r);
}

static void post_body_echoed(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    size_t len = 50000;
    char *body = malloc(len);
    for (size_t i = 0; i < len; i++) {
        body[i] = (char)(i * 7 + 1);
    }
    body[100] = '\0'; /* binary-safe */

    request(fx, "POST", "/post", NULL, body, len, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body_len, len);
    assert_memory_equal(r.body, body, len);
    assert_true(has_header(&r, "Content-Type", "application/octet-stream"));
    result_free(&r);

    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/post", fx->port);
    request_on(NULL, "PUT", url, NULL, body, len, true, &r); /* chunked */
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body_len, len);
    assert_memory_equal(r.body, body, len);
    result_free(&r);

    request(fx, "POST", "/post", NULL, "", 0, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body_len, 0);
    result_free(&r);
    assert_int_equal(atomic_load(&fx->post_calls), 3);
    free(body);
}

static void body_over_limit_gets_413(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    size_t len = MAX_BODY + 1;
    char *body = calloc(1, len);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/post", fx->port);

    /* Declared length: refused before the body is read. */
    request(fx, "POST", "/post", NULL, body, len, &r);
    assert_int_equal(r.status, 413);
    result_free(&r);

    /* Chunked: found out while reading. */
    request_on(NULL, "POST", url, NULL, body, len, true, &r);
    assert_int_equal(r.status, 413);
    result_free(&r);

    /* Exactly the limit is fine. */
    request(fx, "POST", "/post", NULL, body, MAX_BODY, &r);
    assert_int_equal(r.status, 201);
    result_free(&r);
    assert_int_equal(atomic_load(&fx->post_calls), 1);
    free(body);
}

static void handler_without_reply_gets_500(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    request(fx, "GET", "/noreply", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 500);
    assert_null(strcasestr(r.headers, "X-Lost"));
    result_free(&r);
}

static void json_and_xml_replies(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    request(fx, "GET", "/echo", NULL, NULL, 0, &r);
    assert_true(has_header(&r, "Content-Type", "application/json"));
    assert_null(strchr(r.body, '\n')); /* compact */
    assert_null(strstr(r.body, ": "));
    result_free(&r);

    request(fx, "GET", "/xml", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type", "text/xml;charset=UTF-8"));
    assert_string_equal(r.body, "<?xml version=\"1.0\"?><a>b</a>");
    result_free(&r);
}

static void reply_headers_are_sent(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    request(fx, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_true(has_header(&r, "X-Reply", "yes"));
    assert_true(has_header(&r, "Content-Type", "text/plain"));
    result_free(&r);
}

static void remote_addr_is_loopback(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    request(fx, "GET", "/echo", NULL, NULL, 0, &r);
    json_t *j = body_json(&r);
    assert_string_equal(jstr(j, "remote"), "127.0.0.1");
    json_decref(j);
    result_free(&r);
}

static void keep_alive_reuses_connection(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    char url[128];
    long connects = -1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", fx->port);

    CURL *h = curl_easy_init();
    for (int i = 0; i < 3; i++) {
        request_on(h, "GET", url, NULL, NULL, 0, false, &r);
        assert_int_equal(r.status, 200);
        result_free(&r);
    }
    /* request_on() resets the options but keeps the connection cache; ask once more. */
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0);
    fclose(sink);
    curl_easy_cleanup(h);
}

#define CLIENTS  4
#define REQUESTS 100

struct client {
    const struct fixture *fx;
    int id;
    int ok;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    CURL *h = curl_easy_init();
    for (int i = 0; i < REQUESTS; i++) {
        char url[128];
        char want[64];
        struct result r;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/echo?x=%d-%d", c->fx->port, c->id, i);
        snprintf(want, sizeof want, "\"x\":\"%d-%d\"", c->id, i);
        request_on(h, "GET", url, NULL, NULL, 0, false, &r);
        if (r.status == 200 && strstr(r.body, want)) {
            c->ok++;
        }
        result_free(&r);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void concurrent_clients(void **state)
{
    struct fixture *fx = *state;
    pthread_t threads[CLIENTS];
    struct client clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (struct client){fx, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, client_main, &clients[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(clients[i].ok, REQUESTS);
    }
}

static void stop_while_idle(void **state)
{
    struct fixture *fx = *state;
    struct result r;
    request(fx, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    result_free(&r);

    nb_http_server_stop(fx->srv);
    nb_http_server_stop(fx->srv); /* idempotent */
    request(fx, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.rc, CURLE_COULDNT_CONNECT);
    result_free(&r);
}

struct slow_call {
    const struct fixture *fx;
    struct result r;
};

static void *slow_main(void *arg)
{
    struct slow_call *call = arg;
    request(call->fx, "GET", "/slow", NULL, NULL, 0, &call->r);
    return NULL;
}

static void graceful_stop_finishes_requests(void **state)
{
    struct fixture *fx = *state;
    struct slow_call call = {.fx = fx};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_main, &call), 0);
    while (!atomic_load(&fx->slow_started)) {
        sleep_ms(1);
    }
    nb_http_server_stop(fx->srv); /* returns once the slow request has been answered */
    pthread_join(t, NULL);
    assert_int_equal(call.r.rc, CURLE_OK);
    assert_int_equal(call.r.status, 200);
    assert_string_equal(call.r.body, "slow done");
    assert_true(has_header(&call.r, "Connection", "close"));
    result_free(&call.r);
}

static void bad_config_and_busy_port(void **state)
{
    struct fixture *fx = *state;
    struct nb_error err = {0};

    struct nb_http_config bad = {.address = "localhost"};
    assert_null(nb_http_server_new(&bad, &err));
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_string_equal(err.msg, "invalid listen address \"localhost\"");

    struct nb_http_config busy = {.address = "127.0.0.1", .port = fx->port};
    struct nb_http_server *srv = nb_http_server_new(&busy, &err);
    assert_non_null(srv);
    assert_int_equal(nb_http_route(srv, "GET", "no-slash", on_healthz, NULL), -1);
    assert_int_equal(nb_http_server_start(srv, &err), -1);
    assert_int_equal(err.code, NB_ERR_IO);
    assert_non_null(strstr(err.msg, "could not bind to 127.0.0.1 port"));
    assert_non_null(strstr(err.msg, "Address already in use"));
    nb_http_server_free(srv);

    struct nb_http_config tls = {.tls_cert = "/nonexistent/cert.pem", .tls_key = "/x"};
    assert_null(nb_http_server_new(&tls, &err));
    assert_int_equal(err.code, NB_ERR_IO);
    assert_non_null(strstr(err.msg, "could not open TLS certificate \"/nonexistent/cert.pem\""));
}

static void ipv6_loopback(void **state)
{
    struct nb_error err = {0};
    struct nb_http_config cfg = {.address = "::1"};
    struct nb_http_server *srv = nb_http_server_new(&cfg, &err);
    assert_non_null(srv);
    nb_http_route(srv, NULL, "/echo*", on_echo, NULL);
    if (nb_http_server_start(srv, &err) < 0) {
        /* No IPv6 on this machine: nothing to test. */
        nb_http_server_free(srv);
        skip();
    }
    char url[128];
    struct result r;
    snprintf(url, sizeof url, "http://[::1]:%d/echo", nb_http_server_port(srv));
    request_on(NULL, "GET", url, NULL, NULL, 0, false, &r);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(jstr(j, "remote"), "::1");
    json_decref(j);
    result_free(&r);
    nb_http_server_free(srv);
}

static void tls_server(void **state)
{
    char dir[] = "/tmp/nubo-test-http-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-nodes -subj /CN=localhost -days 1 -keyout %s/key.pem -out %s/cert.pem "
             ">/dev/null 2>&1",
             dir, dir);
    if (system(cmd) != 0) {
        rmdir(dir);
        skip(); /* no openssl command to make a certificate with */
    }
    char cert[256];
    char key[256];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);

    struct nb_error err = {0};
    struct nb_http_config cfg = {.tls_cert = cert, .tls_key = key};
    struct nb_http_server *srv = nb_http_server_new(&cfg, &err);
    assert_non_null(srv);
    nb_http_route(srv, "GET", "/healthz", on_healthz, NULL);
    assert_int_equal(nb_http_server_start(srv, &err), 0);

    char url[128];
    struct result r;
    snprintf(url, sizeof url, "https://127.0.0.1:%d/healthz", nb_http_server_port(srv));
    request_on(NULL, "GET", url, NULL, NULL, 0, false, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok");
    result_free(&r);
    nb_http_server_free(srv);

    /* A key that is not PEM makes start fail with a hint. */
    struct nb_http_config broken = {.tls_cert = cert, .tls_key = cert};
    srv = nb_http_server_new(&broken, &err);
    assert_non_null(srv);
    assert_int_equal(nb_http_server_start(srv, &err), -1);
    assert_non_null(strstr(err.detail, "TLS certificate and key"));
    nb_http_server_free(srv);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* --- upgraded connections, with a raw TCP client --- */

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv); /* a hang fails the test instead */
    return fd;
}

/* Reads until 'len' bytes are in 'buf' (or EOF, an error or the timeout). Returns how many. */
static size_t read_n(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    return got;
}

/* Sends an upgrade request for /ws with 'early' bytes right behind it, and reads the reply's
 * head into 'head' (NUL-terminated, through the blank line). */
static void upgrade_request(int fd, const char *early, char *head, size_t n)
{
    char req[512];
    int len = snprintf(req, sizeof req,
                       "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                       "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n%s",
                       early);
    assert_true(write_all(fd, req, (size_t)len));
    size_t got = 0;
    while (got + 1 < n && (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0)) {
        assert_int_equal(read_n(fd, head + got, 1), 1); /* byte by byte: stop at the blank line */
        got++;
    }
    head[got] = '\0';
}

static void upgrade_echoes_both_ways(void **state)
{
    struct fixture *fx = *state;
    int fd = tcp_connect(fx->port);
    char head[1024];
    char buf[64];

    upgrade_request(fd, "early", head, sizeof head);
    assert_int_equal(strncmp(head, "HTTP/1.1 101", 12), 0);
    assert_non_null(strcasestr(head, "\r\nUpgrade: websocket\r\n"));
    assert_non_null(strcasestr(head, "\r\nConnection: Upgrade\r\n"));
    assert_non_null(strstr(head, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));

    /* The bytes sent along with the request reached the owner as 'extra'. */
    assert_int_equal(read_n(fd, buf, 5), 5);
    assert_memory_equal(buf, "early", 5);
    for (int i = 0; i < 3; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "message %d", i);
        assert_true(write_all(fd, msg, (size_t)len));
        assert_int_equal(read_n(fd, buf, (size_t)len), len);
        assert_memory_equal(buf, msg, (size_t)len);
    }
    /* Our end of the stream ends theirs: the owner closes, and the connection is gone. */
    shutdown(fd, SHUT_WR);
    assert_int_equal(read_n(fd, buf, sizeof buf), 0);
    pthread_join(fx->echo_thread, NULL);
    assert_true(atomic_load(&fx->echo_closed));
    close(fd);

    /* The server still serves plain requests. */
    struct result r;
    request(fx, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    result_free(&r);
    assert_int_equal(atomic_load(&fx->upgrade_failures), 0);
}

static void stop_with_live_upgrade(void **state)
{
    struct fixture *fx = *state;
    int fd = tcp_connect(fx->port);
    char head[1024];
    char buf[16];

    upgrade_request(fd, "", head, sizeof head);
    assert_int_equal(strncmp(head, "HTTP/1.1 101", 12), 0);
    assert_true(write_all(fd, "ping", 4));
    assert_int_equal(read_n(fd, buf, 4), 4); /* the owner is running */
    assert_memory_equal(buf, "ping", 4);

    /* Returns only once the owner has seen EOF and closed. */
    nb_http_server_stop(fx->srv);
    assert_true(atomic_load(&fx->echo_closed));
    pthread_join(fx->echo_thread, NULL);
    assert_int_equal(read_n(fd, buf, sizeof buf), 0);
    close(fd);

    /* An upgrade asked of a stopped server is refused: nothing listens any more. */
    struct result r;
    request(fx, "GET", "/ws", NULL, NULL, 0, &r);
    assert_int_equal(r.rc, CURLE_COULDNT_CONNECT);
    result_free(&r);
}

static void *slow_ws_main(void *arg)
{
    struct slow_call *call = arg;
    request(call->fx, "GET", "/slow-ws", NULL, NULL, 0, &call->r);
    return NULL;
}

/* A handler that upgrades while the server stops gets 503, and its callback is told. */
static void upgrade_while_stopping_refused(void **state)
{
    struct fixture *fx = *state;
    struct slow_call call = {.fx = fx};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_ws_main, &call), 0);
    while (!atomic_load(&fx->slow_started)) {
        sleep_ms(1);
    }
    nb_http_server_stop(fx->srv);
    pthread_join(t, NULL);
    assert_int_equal(call.r.status, 503);
    assert_int_equal(atomic_load(&fx->upgrade_failures), 1);
    assert_false(atomic_load(&fx->echo_started));
    result_free(&call.r);
}

/* TLS: libmicrohttpd relays the upgraded connection through a socketpair, which the owner reads
 * and writes as it would the client's socket; stopping shuts that down too. */
static void tls_upgrade(void **state)
{
    char dir[] = "/tmp/nubo-test-http-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-nodes -subj /CN=localhost -days 1 -keyout %s/key.pem -out %s/cert.pem "
             ">/dev/null 2>&1",
             dir, dir);
    if (system(cmd) != 0) {
        rmdir(dir);
        skip();
    }
    char cert[256];
    char key[256];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    struct fixture fx = {0};
    struct nb_error err = {0};
    struct nb_http_config cfg = {.tls_cert = cert, .tls_key = key};
    fx.srv = nb_http_server_new(&cfg, &err);
    assert_non_null(fx.srv);
    nb_http_route(fx.srv, "GET", "/ws", on_ws, &fx);
    assert_int_equal(nb_http_server_start(fx.srv, &err), 0);

    int fd = tcp_connect(nb_http_server_port(fx.srv));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    assert_int_equal(SSL_connect(ssl), 1);
    const char req[] = "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
                       "Upgrade: websocket\r\n\r\n";
    assert_int_equal(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
    char head[1024];
    size_t got = 0;
    while (got + 1 < sizeof head && (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0)) {
        assert_int_equal(SSL_read(ssl, head + got, 1), 1);
        got++;
    }
    head[got] = '\0';
    assert_int_equal(strncmp(head, "HTTP/1.1 101", 12), 0);
    char buf[16];
    assert_int_equal(SSL_write(ssl, "over tls", 8), 8);
    got = 0;
    while (got < 8) {
        int n = SSL_read(ssl, buf + got, (int)(8 - got));
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_memory_equal(buf, "over tls", 8);

    nb_http_server_stop(fx.srv);
    assert_true(atomic_load(&fx.echo_closed));
    pthread_join(fx.echo_thread, NULL);
    assert_true(SSL_read(ssl, buf, sizeof buf) <= 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    nb_http_server_free(fx.srv);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* Range headers as downloads of images see them (RFC 9110: one range, or the whole body). */
static void range_header(void **state)
{
    (void)state;
    struct {
        const char *h;
        uint64_t size;
        int want;
        uint64_t first, last;
    } cases[] = {
        {NULL, 100, 0, 0, 0},
        {"bytes=0-9", 100, 1, 0, 9},
        {"bytes=90-", 100, 1, 90, 99},
        {"bytes=90-1000", 100, 1, 90, 99},
        {"bytes=-10", 100, 1, 90, 99},
        {"bytes=-1000", 100, 1, 0, 99},
        {"bytes=100-", 100, -1, 0, 0},
        {"bytes=-0", 100, -1, 0, 0},
        {"bytes=0-0", 0, -1, 0, 0},
        {"bytes=9-3", 100, 0, 0, 0},
        {"bytes=0-1,5-6", 100, 0, 0, 0},
        {"items=0-1", 100, 0, 0, 0},
        {"bytes=--5", 100, 0, 0, 0},
        {"bytes= 1-2", 100, 0, 0, 0},
        {"bytes=1-2x", 100, 0, 0, 0},
        {"bytes=99999999999999999999999-", 100, -1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t first = 0, last = 0;
        int r = nb_http_parse_range(cases[i].h, cases[i].size, &first, &last);
        if (r != cases[i].want || (r == 1 && (first != cases[i].first || last != cases[i].last))) {
            fail_msg("Range \"%s\" of %llu bytes: got %d [%llu, %llu]",
                     cases[i].h ? cases[i].h : "(none)", (unsigned long long)cases[i].size, r,
                     (unsigned long long)first, (unsigned long long)last);
        }
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(routes_exact_and_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_method_gets_405, setup, teardown),
        cmocka_unit_test_setup_teardown(query_and_raw_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(headers_case_insensitive_and_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(post_body_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(body_over_limit_gets_413, setup, teardown),
        cmocka_unit_test_setup_teardown(handler_without_reply_gets_500, setup, teardown),
        cmocka_unit_test_setup_teardown(json_and_xml_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(reply_headers_are_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(remote_addr_is_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(keep_alive_reuses_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_while_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(graceful_stop_finishes_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_config_and_busy_port, setup, teardown),
        cmocka_unit_test(ipv6_loopback),
        cmocka_unit_test(tls_server),
        cmocka_unit_test(range_header),
        cmocka_unit_test_setup_teardown(upgrade_echoes_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_with_live_upgrade, setup, teardown),
        {"upgrade_echoes_both_ways_thread_per_connection", upgrade_echoes_both_ways,
         setup_thread_per_connection, teardown, NULL},
        {"stop_with_live_upgrade_thread_per_connection", stop_with_live_upgrade,
         setup_thread_per_connection, teardown, NULL},
        cmocka_unit_test_setup_teardown(upgrade_while_stopping_refused, setup, teardown),
        cmocka_unit_test(tls_upgrade),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
