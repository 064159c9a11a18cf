/* Unit tests of pushed replies (nb_http_reply_push()): a real nb_http server on 127.0.0.1 and a
 * libcurl client reading the stream while another thread writes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nubo/clock.h"
#include "nubo/error.h"
#include "nubo/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    struct nb_http_server *srv;
    int port;
    pthread_mutex_t mu;
    struct nb_http_push *push; /* the last stream the handler opened (a reference) */
    atomic_int opened;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_stream(struct nb_http_req *req, void *arg)
{
    struct fixture *fx = arg;
    nb_http_reply_header(req, "X-Stream", "yes");
    struct nb_http_push *p = nb_http_reply_push(req, 200, "text/event-stream", 64);
    assert_non_null(p);
    pthread_mutex_lock(&fx->mu);
    nb_http_push_release(fx->push);
    fx->push = p;
    pthread_mutex_unlock(&fx->mu);
    atomic_fetch_add(&fx->opened, 1);
}

static void on_hello(struct nb_http_req *req, void *arg)
{
    nb_http_reply(req, 200, "text/plain", "hello", 5);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    struct nb_error err = {0};
    /* One thread: a parked stream must not hold it, or /hello below could not be answered. */
    struct nb_http_config cfg = {.address = "127.0.0.1", .threads = 1};
    pthread_mutex_init(&fx->mu, NULL);
    fx->srv = nb_http_server_new(&cfg, &err);
    if (!fx->srv) {
        free(fx);
        return -1;
    }
    nb_http_route(fx->srv, "GET", "/stream", on_stream, fx);
    nb_http_route(fx->srv, "GET", "/hello", on_hello, fx);
    if (nb_http_server_start(fx->srv, &err) < 0) {
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
    nb_http_push_release(fx->push);
    pthread_mutex_destroy(&fx->mu);
    free(fx);
    return 0;
}

/* The stream the handler opened (a new reference), waiting up to 5 s for it. */
static struct nb_http_push *wait_push(struct fixture *fx, int nth)
{
    long long until = nb_monotonic_ms() + 5000;
    while (atomic_load(&fx->opened) < nth && nb_monotonic_ms() < until) {
        sleep_ms(5);
    }
    assert_int_equal(atomic_load(&fx->opened), nth);
    return fx->push;
}

struct reader {
    struct fixture *fx;
    char body[4096];
    size_t len;
    CURLcode rc;
    long status;
    bool chunked;
    bool header_seen;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct reader *r = arg;
    size_t len = size * n;
    if (r->len + len < sizeof r->body) {
        memcpy(r->body + r->len, data, len);
        r->len += len;
    }
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct reader *r = arg;
    size_t len = size * n;
    if (len >= 26 && !strncasecmp(data, "Transfer-Encoding: chunked", 26)) {
        r->chunked = true;
    }
    if (len >= 8 && !strncasecmp(data, "X-Stream", 8)) {
        r->header_seen = true;
    }
    return len;
}

static void *read_stream(void *arg)
{
    struct reader *r = arg;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/stream", r->fx->port);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    return NULL;
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    return size * n;
}

static long get_hello(const struct fixture *fx)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", fx->port);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_easy_cleanup(h);
    return status;
}

/* Bytes written from another thread reach the client as they are written, while the parked
 * stream leaves the server's only thread free for other requests; the end ends the body. */
static void writes_arrive_and_end(void **state)
{
    struct fixture *fx = *state;
    struct reader r = {.fx = fx};
    pthread_t t;
    pthread_create(&t, NULL, read_stream, &r);
    struct nb_http_push *p = wait_push(fx, 1);
    sleep_ms(100); /* parked by now: nothing was queued */
    assert_int_equal(get_hello(fx), 200);
    assert_int_equal(nb_http_push_write(p, "one\n", 4), 0);
    sleep_ms(50);
    assert_int_equal(get_hello(fx), 200);
    assert_int_equal(nb_http_push_write(p, "two\n", 4), 0);
    nb_http_push_end(p);
    pthread_join(t, NULL);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(r.chunked);
    assert_true(r.header_seen);
    assert_int_equal(r.len, 8);
    assert_memory_equal(r.body, "one\ntwo\n", 8);
    /* Over: writes fail from now on. */
    long long until = nb_monotonic_ms() + 2000;
    while (nb_http_push_write(p, "x", 1) == 0 && nb_monotonic_ms() < until) {
        sleep_ms(10);
    }
    assert_int_equal(nb_http_push_write(p, "x", 1), -1);
}

/* More than 'max_queued' bytes waiting (a client that does not read) ends the stream. */
static void slow_client_is_cut_off(void **state)
{
    struct fixture *fx = *state;
    struct reader r = {.fx = fx};
    pthread_t t;
    pthread_create(&t, NULL, read_stream, &r);
    struct nb_http_push *p = wait_push(fx, 1);
    char big[65];
    memset(big, 'a', sizeof big);
    assert_int_equal(nb_http_push_write(p, big, 64), 0);
    assert_int_equal(nb_http_push_write(p, big, sizeof big), -1); /* 64 queued + 65 > 64 */
    pthread_join(t, NULL);
    assert_int_equal(r.rc, CURLE_OK); /* the client got what was queued, then the end */
    assert_true(r.len <= 64);
}

/* Stopping the server ends parked streams at once (libmicrohttpd would abort otherwise). */
static void stop_ends_parked_streams(void **state)
{
    struct fixture *fx = *state;
    struct reader r = {.fx = fx};
    pthread_t t;
    pthread_create(&t, NULL, read_stream, &r);
    struct nb_http_push *p = wait_push(fx, 1);
    assert_int_equal(nb_http_push_write(p, "hi\n", 3), 0);
    sleep_ms(100);
    long long t0 = nb_monotonic_ms();
    nb_http_server_stop(fx->srv);
    long long took = nb_monotonic_ms() - t0;
    pthread_join(t, NULL);
    assert_true(took < 2000);
    assert_int_equal(r.rc, CURLE_OK);
    assert_memory_equal(r.body, "hi\n", 3);
    assert_int_equal(nb_http_push_write(p, "x", 1), -1);
}

/* A client that goes away: the next write wakes the connection, which then closes. */
static void gone_client_is_noticed(void **state)
{
    struct fixture *fx = *state;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/stream", fx->port);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 300L); /* gives up while the stream is parked */
    curl_easy_perform(h);
    curl_easy_cleanup(h);
    struct nb_http_push *p = wait_push(fx, 1);
    long long until = nb_monotonic_ms() + 5000;
    int rc = 0;
    while (rc == 0 && nb_monotonic_ms() < until) {
        rc = nb_http_push_write(p, "ping\n", 5);
        sleep_ms(20);
    }
    assert_int_equal(rc, -1);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(writes_arrive_and_end, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_client_is_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_ends_parked_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(gone_client_is_noticed, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
