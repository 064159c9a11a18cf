/* HTTP client over libcurl with bounded retries (see httpc.h).
 *
 * Each call uses a fresh easy handle, so nothing is shared between threads and no connection
 * outlives the call. Retries wait backoff_ms * 2^(n-1), half of it fixed and half random ("equal
 * jitter"), so that clients failing together do not retry in lockstep. */
#include "nubo/httpc.h"

#include "nubo/error.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTPC_DEFAULT_TIMEOUT_MS   10000
#define HTTPC_DEFAULT_CONNECT_MS   3000
#define HTTPC_DEFAULT_BACKOFF_MS   100
#define HTTPC_MAX_BACKOFF_MS       30000
#define HTTPC_DEFAULT_MAX_RESPONSE (16 * 1024 * 1024)

static pthread_once_t httpc_once = PTHREAD_ONCE_INIT;

static void httpc_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void nb_httpc_global_init(void)
{
    pthread_once(&httpc_once, httpc_init_once);
}

struct httpc_body {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool over_limit;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct httpc_body *b = userdata;
    size_t n = size * nmemb;

    if (n > b->max - b->len) {
        b->over_limit = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
            return 0;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static bool method_is_idempotent(const char *method)
{
    static const char *const safe[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++) {
        if (strcasecmp(method, safe[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool status_is_retryable(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

static bool curl_code_is_connection_failure(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PARTIAL_FILE:
        return true;
    default:
        return false;
    }
}

/* Sleeps before retry number 'retry' (1-based). 'seed' is the caller's PRNG state. */
static void backoff(long base_ms, int retry, uint64_t *seed)
{
    long ms = base_ms;
    for (int i = 1; i < retry && ms < HTTPC_MAX_BACKOFF_MS; i++) {
        ms *= 2;
    }
    if (ms > HTTPC_MAX_BACKOFF_MS) {
        ms = HTTPC_MAX_BACKOFF_MS;
    }
    /* xorshift64: good enough to spread retries, and needs no shared state */
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    long half = ms / 2;
    ms = half + (half > 0 ? (long)(*seed % (uint64_t)(half + 1)) : 0);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static uint64_t seed_from_clock(const void *salt)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t s = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec ^
                 (uint64_t)(uintptr_t)salt;
    return s ? s : 0x2545F4914F6CDD1DULL;
}

/* Sets the options that stay the same across attempts. Returns the header list to free. */
static struct curl_slist *setup(CURL *h, const struct nb_httpc_request *req, const char *method,
                                struct httpc_body *body, char *errbuf, bool *failed)
{
    struct curl_slist *headers = NULL;
    struct curl_slist *tmp;
    long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
    long connect_ms =
        req->connect_timeout_ms > 0 ? req->connect_timeout_ms : HTTPC_DEFAULT_CONNECT_MS;

    *failed = false;
    for (const char *const *hp = req->headers; hp && *hp; hp++) {
        tmp = curl_slist_append(headers, *hp);
        if (!tmp) {
            *failed = true;
            return headers;
        }
        headers = tmp;
    }
    /* Without this curl waits for "100 Continue" before sending larger bodies. */
    tmp = curl_slist_append(headers, "Expect:");
    if (!tmp) {
        *failed = true;
        return headers;
    }
    headers = tmp;

    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)body->max);
    if (strcasecmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcasecmp(method, "GET") != 0 || req->body) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (req->body || strcasecmp(method, "POST") == 0 || strcasecmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    return headers;
}

int nb_httpc_do(const struct nb_httpc_request *req, struct nb_httpc_response *resp,
                struct nb_error *err)
{
    const char *method = req->method ? req->method : "GET";
    struct httpc_body body = {
        .max = req->max_response > 0 ? req->max_response : HTTPC_DEFAULT_MAX_RESPONSE,
    };
    char errbuf[CURL_ERROR_SIZE];
    bool may_retry = req->retry_unsafe || method_is_idempotent(method);
    int max_attempts = 1 + (may_retry && req->max_retries > 0 ? req->max_retries : 0);
    long backoff_ms = req->backoff_ms > 0 ? req->backoff_ms : HTTPC_DEFAULT_BACKOFF_MS;
    uint64_t seed = seed_from_clock(&body);
    struct curl_slist *headers = NULL;
    int ret = -1;

    memset(resp, 0, sizeof *resp);
    nb_httpc_global_init();
    CURL *h = curl_easy_init();
    if (!h) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not create HTTP client handle");
        return -1;
    }
    bool failed;
    headers = setup(h, req, method, &body, errbuf, &failed);
    if (failed) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        goto cleanup;
    }

    for (int attempt = 1; attempt <= max_attempts; attempt++) {
        if (attempt > 1) {
            backoff(backoff_ms, attempt - 1, &seed);
        }
        body.len = 0;
        body.over_limit = false;
        errbuf[0] = '\0';
        resp->attempts = attempt;

        CURLcode rc = curl_easy_perform(h);
        bool last = attempt == max_attempts;
        if (rc == CURLE_OK) {
            long status = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
            if (status_is_retryable(status) && !last) {
                continue;
            }
            resp->status = status;
            ret = 0;
            break;
        }
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        if (body.over_limit || rc == CURLE_FILESIZE_EXCEEDED) {
            nb_error_set(err, NB_ERR_LIMIT, "response from \"%s\" exceeds %zu bytes", req->url,
                         body.max);
            break;
        }
        if (rc == CURLE_OPERATION_TIMEDOUT) {
            nb_error_set(err, NB_ERR_TIMEOUT, "request to \"%s\" timed out: %s", req->url, why);
        } else if (curl_code_is_connection_failure(rc)) {
            nb_error_set(err, NB_ERR_UNAVAILABLE, "could not reach \"%s\": %s", req->url, why);
        } else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
            nb_error_set(err, NB_ERR_INVALID, "invalid URL \"%s\": %s", req->url, why);
            break;
        } else {
            nb_error_set(err, NB_ERR_INTERNAL, "request to \"%s\" failed: %s", req->url, why);
            break;
        }
        if (attempt > 1) {
            nb_error_detail(err, "gave up after %d attempts", attempt);
        }
    }

    if (ret == 0) {
        if (!body.data) {
            body.data = malloc(1);
            if (!body.data) {
                nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
                ret = -1;
                goto cleanup;
            }
            body.data[0] = '\0';
        }
        resp->body = body.data;
        resp->body_len = body.len;
        body.data = NULL;
    }

cleanup:
    free(body.data);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return ret;
}

void nb_httpc_response_free(struct nb_httpc_response *resp)
{
    if (!resp) {
        return;
    }
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}
