/* Unit tests of the HTTP client: retries, timeouts, limits and connection failures, against a
 * small nb_http server on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/httpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIG_SIZE 100000

struct fixture {
    struct nb_http_server *srv;
    int port;
    atomic_int flaky_calls;
    int flaky_failures; /* answers 503 this many times, then 200 */
    char url[128];
};

static void on_ok(struct nb_http_req *req, void *arg)
{
    nb_http_reply(req, 200, "text/plain", "hello", 5);
}

static void on_flaky(struct nb_http_req *req, void *arg)
{
    struct fixture *fx = arg;
    int n = atomic_fetch_add(&fx->flaky_calls, 1);
    if (n < fx->flaky_failures) {
        nb_http_reply(req, 503, "text/plain", "busy", 4);
    } else {
        nb_http_reply(req, 200, "text/plain", "recovered", 9);
    }
}

static void on_slow(struct nb_http_req *req, void *arg)
{
    struct timespec ts = {0, 400 * 1000000L};
    nanosleep(&ts, NULL);
    nb_http_reply(req, 200, "text/plain", "late", 4);
}

static void on_big(struct nb_http_req *req, void *arg)
{
    char *body = malloc(BIG_SIZE);
    memset(body, 'b', BIG_SIZE);
    nb_http_reply(req, 200, "application/octet-stream", body, BIG_SIZE);
    free(body);
}

static void on_echo(struct nb_http_req *req, void *arg)
{
    size_t len;
    const char *body = nb_http_req_body(req, &len);
    const char *id = nb_http_req_header(req, "X-Id");
    char *text = malloc(len + 64);
    int n = snprintf(text, len + 64, "%s %s ", nb_http_req_method(req), id ? id : "-");
    memcpy(text + n, body, len);
    nb_http_reply(req, 200, "text/plain", text, (size_t)n + len);
    free(text);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    struct nb_error err = {0};
    struct nb_http_config cfg = {.address = "127.0.0.1", .threads = 2};

    fx->flaky_failures = 2;
    fx->srv = nb_http_server_new(&cfg, &err);
    if (!fx->srv) {
        free(fx);
        return -1;
    }
    nb_http_route(fx->srv, "GET", "/ok", on_ok, fx);
    nb_http_route(fx->srv, NULL, "/flaky", on_flaky, fx);
    nb_http_route(fx->srv, "GET", "/slow", on_slow, fx);
    nb_http_route(fx->srv, "GET", "/big", on_big, fx);
    nb_http_route(fx->srv, NULL, "/echo", on_echo, fx);
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

static int teardown(void **state)
{
    struct fixture *fx = *state;
    nb_http_server_free(fx->srv);
    free(fx);
    return 0;
}

static const char *url(struct fixture *fx, const char *path)
{
    snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%d%s", fx->port, path);
    return fx->url;
}

static void get_succeeds(void **state)
{
    struct fixture *fx = *state;
    struct nb_httpc_request req = {.url = url(fx, "/ok")};
    struct nb_httpc_response resp;
    struct nb_error err = {0};

    assert_int_equal(nb_httpc_do(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    assert_int_equal(resp.body_len, 5);
    assert_int_equal(resp.attempts, 1);
    nb_httpc_response_free(&resp);
    nb_httpc_response_free(NULL);
}

static void post_sends_body_and_headers(void **state)
{
    struct fixture *fx = *state;
    const char *const headers[] = {"X-Id: 7", NULL};
    struct nb_httpc_request req = {.method = "POST",
                                   .url = url(fx, "/echo"),
                                   .headers = headers,
                                   .body = "payload",
                                   .body_len = 7};
    struct nb_httpc_response resp;
    struct nb_error err = {0};

    assert_int_equal(nb_httpc_do(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "POST 7 payload");
    nb_httpc_response_free(&resp);

    req = (struct nb_httpc_request){.method = "DELETE", .url = url(fx, "/echo")};
    assert_int_equal(nb_httpc_do(&req, &resp, &err), 0);
    assert_string_equal(resp.body, "DELETE - ");
    nb_httpc_response_free(&resp);
}

static void retries_503_then_succeeds(void **state)
{
    struct fixture *fx = *state;
    struct nb_httpc_request req = {.url = url(fx, "/flaky"), .max_retries = 3, .backoff_ms = 1};
    struct nb_httpc_response resp;
    struct nb_error err = {0};

    assert_int_equal(nb_httpc_do(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "recovered");
    assert_int_equal(resp.attempts, 3);
    assert_int_equal(atomic_load(&fx->flaky_calls), 3);
    nb_httpc_response_free(&resp);
}

static void retries_run_out(void **state)
{
    struct fixture *fx = *state;
    struct nb_httpc_request req = {.url = url(fx, "/flaky"), .max_retries = 1, .backoff_ms = 1};
    struct nb_httpc_response resp;
    struct nb_error err = {0};

    /* The last answer is returned as is: a 503 is not a transport error. */
    assert_int_equal(nb_httpc_do(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 503);
    assert_string_equal(resp.body, "busy");
    assert_int_equal(resp.attempts, 2);
    nb_httpc_response_free(&resp);
}

static void post_not_retried_unless_allowed(void **state)
{
    struct fixture *fx = *state;
    struct nb_httpc_request req = {
        .method = "POST", .url = url(fx, "/flaky"), .max_retries = 3, .backoff_ms = 1};
    struct nb_httpc_response resp;
    struct nb_error err = {0};

    assert_int_equal(nb_httpc_do(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 503);
    assert_int_equal(resp.attempts, 1);
    nb_httpc_response_free(&resp);

    req.retry_unsafe = true;
    assert_int_equal(nb_httpc_do(&req, &resp, &err), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.attempts, 2); /* one 503 left over from the first call */
    assert_int_equal(atomic_load(&fx->flaky_calls), 3);
    nb_httpc_response_free(&resp);
}

static void timeout_is_reported(void **state)
{
    struct fixture *fx = *state;
    struct nb_httpc_request req = {.url = url(fx, "/slow"), .timeout_ms = 100};
    struct nb_httpc_response resp;
    struct nb_error err = {0};

    assert_int_equal(nb_httpc_do(&req, &resp, &err), -1);
    assert_int_equal(err.code, NB_ERR_TIMEOUT);
    assert_non_null(strstr(err.msg, "timed out"));
    assert_int_equal(resp.attempts, 1);
    nb_httpc_response_free(&resp);
}

/* Returns a port on 127.0.0.1 that nothing listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void connection_refused_after_retries(void **state)
{
    char target[64];
    snprintf(target, sizeof target, "http://127.0.0.1:%d/x", closed_port());
    struct nb_httpc_request req = {.url = target, .max_retries = 2, .backoff_ms = 1};
    struct nb_httpc_response resp;
    struct nb_error err = {0};

    assert_int_equal(nb_httpc_do(&req, &resp, &err), -1);
    assert_int_equal(err.code, NB_ERR_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "could not reach"));
    assert_string_equal(err.detail, "gave up after 3 attempts");
    assert_int_equal(resp.attempts, 3);
    assert_null(resp.body);
    nb_httpc_response_free(&resp);
}

static void response_over_limit(void **state)
{
    struct fixture *fx = *state;
    struct nb_httpc_request req = {.url = url(fx, "/big"), .max_response = 1000, .max_retries = 2};
    struct nb_httpc_response resp;
    struct nb_error err = {0};

    assert_int_equal(nb_httpc_do(&req, &resp, &err), -1);
    assert_int_equal(err.code, NB_ERR_LIMIT);
    assert_int_equal(resp.attempts, 1); /* a limit is not worth retrying */
    nb_httpc_response_free(&resp);

    req.max_response = BIG_SIZE;
    assert_int_equal(nb_httpc_do(&req, &resp, &err), 0);
    assert_int_equal(resp.body_len, BIG_SIZE);
    nb_httpc_response_free(&resp);
}

static void bad_url_is_invalid(void **state)
{
    struct nb_httpc_request req = {.url = "gopher://127.0.0.1/", .max_retries = 3};
    struct nb_httpc_response resp;
    struct nb_error err = {0};

    assert_int_equal(nb_httpc_do(&req, &resp, &err), -1);
    assert_int_equal(err.code, NB_ERR_INVALID);
    assert_int_equal(resp.attempts, 1);
    nb_httpc_response_free(&resp);
}

int main(void)
{
    nb_httpc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(get_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(post_sends_body_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(retries_503_then_succeeds, setup, teardown),
        cmocka_unit_test_setup_teardown(retries_run_out, setup, teardown),
        cmocka_unit_test_setup_teardown(post_not_retried_unless_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout_is_reported, setup, teardown),
        cmocka_unit_test(connection_refused_after_retries),
        cmocka_unit_test_setup_teardown(response_over_limit, setup, teardown),
        cmocka_unit_test(bad_url_is_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
