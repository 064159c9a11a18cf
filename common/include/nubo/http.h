/* HTTP server over libmicrohttpd: a route table, body limits, timeouts, a per-request arena,
 * JSON/XML/text replies, pushed replies, protocol upgrades (WebSocket), graceful shutdown and
 * optional TLS.
 *
 * Handlers run on the server's worker threads (a pool of 'threads', poll, keep-alive) once the
 * whole body has arrived (bodies over 'max_body' get 413 without reaching the handler). A handler
 * must answer exactly once with one of the nb_http_reply*() calls; if it returns without replying
 * the client gets 500. Everything a handler allocates from the request arena is freed when the
 * response has been queued. */
#ifndef NUBO_HTTP_H
#define NUBO_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;
struct nb_arena;
struct nb_http_server;
struct nb_http_req;

typedef void (*nb_http_handler)(struct nb_http_req *req, void *arg);

struct nb_http_config {
    const char *address;  /* IPv4/IPv6 literal to bind, "127.0.0.1" when NULL */
    int port;             /* 0 picks a free port; see nb_http_server_port() */
    int threads;          /* worker threads, 2 when 0 */
    size_t max_body;      /* bytes, 1 MiB when 0 */
    int timeout_s;        /* idle connection timeout, 30 when 0 */
    const char *tls_cert; /* PEM file paths; both NULL for plain HTTP */
    const char *tls_key;
    /* A thread for each connection instead of the pool ('threads' is then ignored): for
     * servers whose handlers block for seconds (the compute agent's), where a pool thread
     * busy with one request would hold up the other connections it serves. */
    bool thread_per_connection;
    /* Memory per connection for its request line, headers and read buffer, 64 KiB when 0; the
     * read buffer bounds the pieces a streamed body arrives in, so servers taking large uploads
     * set more (pages are touched only as used). */
    size_t conn_memory;
    /* A socket already bound and listening, served instead of one bound to 'address' and 'port'
     * (e.g. made by a thread inside another network namespace). The server takes it when
     * nb_http_server_new() succeeds. 0 (the default): none. */
    int listen_fd;
};

/* Creates a server (not yet listening). Returns it, or NULL with 'err'. */
struct nb_http_server *nb_http_server_new(const struct nb_http_config *cfg, struct nb_error *err);

/* Adds a route. 'method' is "GET", "POST", ... or NULL for any. 'pattern' is an exact path
 * ("/healthz") or a prefix ending in "*" ("/v1*" matches "/v1" and "/v1/x"). Routes are tried in
 * the order added; a path that no route matches gets 404, a path matched only with another method
 * gets 405 with an Allow header. Call before nb_http_server_start(). Returns 0, or -1 if the
 * pattern does not start with "/", the server is already running, or memory ran out. */
int nb_http_route(struct nb_http_server *srv, const char *method, const char *pattern,
                  nb_http_handler handler, void *arg);

/* A route whose request body is handed over piece by piece as it arrives, instead of being
 * gathered up to max_body (which does not apply): for uploads of any size in bounded memory.
 * All calls for one request come from one thread, one at a time.
 *   begin: the headers are in (accessors work; nb_http_req_body() is empty). It sets '*ctx' for
 *          the calls that follow, and may reply at once (401, 413...): the body is then dropped.
 *   body:  the next 'len' (> 0) bytes. It cannot reply: libmicrohttpd refuses replies while
 *          a body arrives; a handler that fails here remembers it and answers at the end.
 *   end:   the whole body has arrived; it must reply unless it already has (else 500).
 *   done:  optional; the request is over, 'completed' false when the client went away or the
 *          reply failed; frees what begin made. Always called once begin has run.
 *   wants: optional; false lets a later route take a path that the pattern matched. */
struct nb_http_stream {
    bool (*wants)(const char *path, void *arg);
    void (*begin)(struct nb_http_req *req, void *arg, void **ctx);
    void (*body)(struct nb_http_req *req, void *ctx, const char *data, size_t len);
    void (*end)(struct nb_http_req *req, void *ctx);
    void (*done)(void *ctx, bool completed);
};

/* Adds a streamed-body route for 'method' (not NULL); 'stream' must outlive the server. Routes
 * are matched as for nb_http_route(). Returns 0 or -1 as nb_http_route(). */
int nb_http_route_stream(struct nb_http_server *srv, const char *method, const char *pattern,
                         const struct nb_http_stream *stream, void *arg);

/* Sets the handler that answers a request whose body is over max_body, instead of the default
 * plain-text 413, e.g. to record it; it gets no body and should answer 413. Call before
 * nb_http_server_start(). */
void nb_http_on_too_large(struct nb_http_server *srv, nb_http_handler handler, void *arg);

/* Starts listening. Returns 0, or -1 with 'err' (e.g. the port is taken). */
int nb_http_server_start(struct nb_http_server *srv, struct nb_error *err);

/* The port actually bound (useful when the config asked for 0). */
int nb_http_server_port(const struct nb_http_server *srv);

/* Stops accepting, lets in-flight requests finish, shuts down upgraded connections and waits
 * for their owners to close them, and stops the threads. Idempotent. */
void nb_http_server_stop(struct nb_http_server *srv);

/* Stops if needed and frees. Accepts NULL. */
void nb_http_server_free(struct nb_http_server *srv);

/* --- request accessors: all returned strings live as long as the request --- */
const char *nb_http_req_method(const struct nb_http_req *req);
const char *nb_http_req_path(const struct nb_http_req *req);      /* percent-decoded, no query */
const char *nb_http_req_raw_path(const struct nb_http_req *req);  /* as on the wire */
const char *nb_http_req_raw_query(const struct nb_http_req *req); /* after '?', "" if none */
/* A query argument, percent-decoded; NULL if absent. */
const char *nb_http_req_query(const struct nb_http_req *req, const char *name);
/* A header by name, case-insensitive; NULL if absent. */
const char *nb_http_req_header(const struct nb_http_req *req, const char *name);
/* Calls 'fn' for each request header in order, with names as received. */
void nb_http_req_headers(const struct nb_http_req *req,
                         void (*fn)(const char *name, const char *value, void *arg), void *arg);
const char *nb_http_req_body(const struct nb_http_req *req, size_t *len); /* NUL-terminated */
const char *nb_http_req_remote_addr(const struct nb_http_req *req);       /* "127.0.0.1" */
struct nb_arena *nb_http_req_arena(struct nb_http_req *req);

/* --- replies --- */
/* Adds a response header (copied); call before replying. */
void nb_http_reply_header(struct nb_http_req *req, const char *name, const char *value);
/* Replies with 'len' bytes of 'body' (copied) and the given content type. */
void nb_http_reply(struct nb_http_req *req, int status, const char *content_type, const void *body,
                   size_t len);
/* As nb_http_reply(), but takes 'body' (malloc()ed; freed by the server once sent, also when
 * the reply cannot be queued): large replies are not copied. */
void nb_http_reply_owned(struct nb_http_req *req, int status, const char *content_type, char *body,
                         size_t len);
/* Replies with the 'size' bytes of the open file 'fd' from its start, streamed from the file
 * (memory use does not grow with the size); takes 'fd' and closes it in every case. */
void nb_http_reply_file(struct nb_http_req *req, int status, const char *content_type, int fd,
                        uint64_t size);
/* Reads up to 'len' bytes of a streamed reply at 'pos' into 'buf'; returns how many (> 0), or
 * 0 or -1 when it cannot, which ends the reply with an error (the connection is closed). */
typedef int64_t (*nb_http_read_fn)(void *ctx, uint64_t pos, char *buf, size_t len);

/* Replies with 'size' bytes produced by 'read' as the client takes them (memory use does not
 * grow with the size; reads come from a server thread, one at a time, in order). 'free_ctx'
 * (may be NULL) is called with 'ctx' once the reply is over, also when it cannot be queued. */
void nb_http_reply_stream(struct nb_http_req *req, int status, const char *content_type,
                          uint64_t size, nb_http_read_fn read, void (*free_ctx)(void *ctx),
                          void *ctx);

/* True if the request's body is streamed to a handler (nb_http_route_stream()). */
bool nb_http_req_is_streamed(const struct nb_http_req *req);

/* Replies with 'v' serialised compactly as application/json. Borrows 'v'. */
void nb_http_reply_json(struct nb_http_req *req, int status, const json_t *v);
/* Replies with a NUL-terminated XML document as "text/xml;charset=UTF-8". */
void nb_http_reply_xml(struct nb_http_req *req, int status, const char *xml);

/* Parses a Range header 'h' (may be NULL) against a body of 'size' bytes: "bytes=A-B",
 * "bytes=A-" or "bytes=-N". Returns 1 with the inclusive range [first, last] for one
 * satisfiable range; 0 when the whole body is to be sent (no header, several ranges, another
 * unit, a malformed or inverted range: RFC 9110 lets a server ignore those); -1 when the range
 * cannot be satisfied (416). */
int nb_http_parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last);

/* --- pushed replies: a body written as things happen (Server-Sent Events) --- */

/* A cookie of the request by name; NULL if absent. */
const char *nb_http_req_cookie(const struct nb_http_req *req, const char *name);
/* True if the server serves HTTPS. */
bool nb_http_req_tls(const struct nb_http_req *req);

struct nb_http_push;

/* Replies with a body of unknown length (chunked) that is written later, from any thread, with
 * nb_http_push_write(). While nothing is queued the connection is parked (suspended), holding no
 * server thread. The reply ends after nb_http_push_end(), when the client goes away (noticed at
 * the next write), when more than 'max_queued' bytes wait for a slow client, or when the server
 * stops. Returns a reference the caller drops with nb_http_push_release(); NULL when the
 * request was already answered or memory ran out (then a 500 was sent). */
struct nb_http_push *nb_http_reply_push(struct nb_http_req *req, int status,
                                        const char *content_type, size_t max_queued);
/* Queues 'len' bytes and wakes the connection. Thread-safe. Returns 0, or -1 once the reply is
 * over (nothing is queued then; the caller drops its reference). */
int nb_http_push_write(struct nb_http_push *p, const void *data, size_t len);
/* Ends the reply once the queued bytes are sent. Thread-safe, idempotent. */
void nb_http_push_end(struct nb_http_push *p);
/* Drops a reference; accepts NULL. */
void nb_http_push_release(struct nb_http_push *p);

/* --- upgraded connections: another protocol over the connection (WebSocket) --- */

struct nb_http_upgraded;

/* Called on a server thread once the 101 reply has been sent: 'fd' is the connection's socket
 * (non-blocking; its mode is the callee's to change; with TLS it is one end of a socketpair
 * that the server encrypts for), 'extra' the 'extra_len' bytes the client sent past the request,
 * to be treated as the first bytes read from 'fd'. It must return quickly (start a thread) and
 * must not close() 'fd': the callee owns the connection until it calls
 * nb_http_upgraded_close(), which it must do exactly once, also when the server stops (the
 * server then shuts down 'fd': reads see EOF, and nb_http_server_stop() waits for the close, so
 * an owner blocked elsewhere, e.g. on a backend's socket, must watch 'fd' too).
 * When the upgrade cannot happen (the client went away before the 101 was sent, the server is
 * stopping, memory ran out, the request was already answered), it is called instead with 'u'
 * NULL and 'fd' -1, only to free 'ctx'. */
typedef void (*nb_http_upgrade_fn)(struct nb_http_upgraded *u, int fd, const char *extra,
                                   size_t extra_len, void *ctx);

/* Replies "101 Switching Protocols" with "Upgrade: 'protocol'" (e.g. "websocket") and the
 * headers added with nb_http_reply_header() (Sec-WebSocket-Accept...), then hands the connection
 * to 'fn' with 'ctx'. The handler checks the request's headers first: this call does not. A
 * stopping server answers 503 instead. Either way 'fn' is called exactly once. */
void nb_http_reply_upgrade(struct nb_http_req *req, const char *protocol, nb_http_upgrade_fn fn,
                           void *ctx);

/* Closes an upgraded connection and frees 'u'. Thread-safe; call once per connection. */
void nb_http_upgraded_close(struct nb_http_upgraded *u);

#endif
