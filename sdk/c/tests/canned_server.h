/* A canned HTTP/1.1 server on loopback for libnubo's unit tests, and the TAP checks they share.
 * Each connection gets the next queued answer, then is closed: an answer is sent whole (with a
 * Content-Length) or streamed in pieces sent apart in time and held open (no Content-Length,
 * ended by closing). Connections are served in parallel, a thread each, so that a held stream
 * delays no other; an "Expect: 100-continue" is answered. What each request was (method, path
 * with its query, headers, body of any size up to 64 MiB) is kept for the test to check. One
 * server per test program. Linked into every test_*.c by sdk/c/Makefile. */
#ifndef NUBO_SDK_CANNED_SERVER_H
#define NUBO_SDK_CANNED_SERVER_H

#include <stddef.h>

struct nubo_client;

#define CANNED_MAX_ANSWERS 16

/* One queued answer and, once served, the request it answered. */
struct canned_exchange {
    int status;
    const char *type;          /* the answer's Content-Type */
    const char *body;          /* sent whole, unless 'pieces'; borrowed: must outlive the request */
    const char *const *pieces; /* NULL-terminated: sent 'gap_ms' apart, then held 'hold_ms' */
    int gap_ms, hold_ms;
    /* What came (the server owns it; freed by canned_reset()): */
    char method[16];
    char target[512]; /* path and query */
    char *head;       /* the request line and headers, each line ending in CRLF */
    char *body_in;    /* NUL-terminated; NULL until the request came */
    size_t body_len;
};

/* Starts the server on an ephemeral loopback port and stores "127.0.0.1:PORT" in 'origin'.
 * Ignores SIGPIPE (a client that stops reading ends its connection). Returns 0, or -1 after
 * printing why. */
int canned_start(char *origin, size_t size);

/* Starts the server (canned_start(), storing its origin in 'origin' of 'size' bytes) and returns
 * a new client of it with the endpoint "http://ORIGIN/api/" (a path prefix, as behind a reverse
 * proxy: every path and URL must keep it), a test key, and one try per call. Returns NULL after
 * printing a TAP "Bail out!". The caller ends with canned_finish(). */
struct nubo_client *canned_client(char *origin, size_t size);

/* Frees the client 'c', prints the plan, stops the server. Returns canned_done()'s status. */
int canned_finish(struct nubo_client *c);

/* Stops the server: accepts no more connections, waits for those being served (a held stream
 * ends early once its client hangs up), then canned_reset()s. */
void canned_stop(void);

/* Forgets every answer and request. */
void canned_reset(void);

/* Queues a JSON answer of 'status' for the next request. */
void canned_answer(int status, const char *body);

/* Queues an answer of 'status' with the Content-Type 'type'. */
void canned_answer_type(int status, const char *type, const char *body);

/* Queues an answer of 'status' and Content-Type 'type' streamed in 'pieces' (NULL-terminated,
 * borrowed), 'gap_ms' apart, the connection then held 'hold_ms' before it is closed. */
void canned_answer_stream(int status, const char *type, const char *const *pieces, int gap_ms,
                          int hold_ms);

/* Returns exchange 'i' (0: the first request since canned_reset()). */
const struct canned_exchange *canned_request(int i);

/* Copies the value of the header 'name' (any case, without the colon) of request 'i' into 'buf'
 * of 'size' bytes. Returns 'buf', or NULL when the request had no such header. */
const char *canned_header(int i, const char *name, char *buf, size_t size);

/* Returns how many queued answers have been served since canned_reset(). */
int canned_served(void);

/* --- TAP --------------------------------------------------------------------------------------- */

/* Prints "ok N - name" when 'cond' holds, else "not ok N - name". */
void canned_ok(int cond, const char *name);

/* canned_ok() of 'got' and 'want' being equal strings (or both NULL), showing both when not. */
void canned_is_str(const char *got, const char *want, const char *name);

/* canned_ok() of the body of request 'i' being exactly the JSON 'want' (as JSON, not text). */
void canned_body_is(int i, const char *want, const char *name);

/* Prints the plan ("1..N") and returns the exit status: 0 when every check passed, else 1. */
int canned_done(void);

#endif
