/* HTTP client over libcurl: timeouts and bounded retries with exponential back-off and jitter.
 *
 * A request is retried on connection failures, timeouts and 429/502/503/504 answers, at most
 * 'max_retries' times, only when the method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS) or
 * 'retry_unsafe' is set. Thread-safe after nb_httpc_global_init(). */
#ifndef NUBO_HTTPC_H
#define NUBO_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

struct nb_error;

struct nb_httpc_request {
    const char *method; /* "GET" when NULL */
    const char *url;
    const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
    const void *body;           /* may be NULL */
    size_t body_len;
    long timeout_ms;         /* whole request; 10000 when 0 */
    long connect_timeout_ms; /* 3000 when 0 */
    int max_retries;         /* 0: one attempt only */
    long backoff_ms;         /* first back-off, doubled each retry; 100 when 0 */
    bool retry_unsafe;
    size_t max_response; /* bytes; 16 MiB when 0 */
};

struct nb_httpc_response {
    long status;
    char *body; /* malloc()ed, NUL-terminated */
    size_t body_len;
    int attempts; /* how many attempts were made */
};

/* Calls curl_global_init() once. Call at start-up before threads. */
void nb_httpc_global_init(void);

/* Performs 'req'. Returns 0 with '*resp' filled (any HTTP status, including 4xx/5xx after the
 * retries ran out), or -1 with 'err' set (NB_ERR_TIMEOUT, NB_ERR_UNAVAILABLE for connection
 * failures, NB_ERR_LIMIT for a response over max_response). Free '*resp' with
 * nb_httpc_response_free() in both cases. */
int nb_httpc_do(const struct nb_httpc_request *req, struct nb_httpc_response *resp,
                struct nb_error *err);

void nb_httpc_response_free(struct nb_httpc_response *resp);

#endif
