/* HTTP server over libmicrohttpd (see http.h).
 *
 * Each request gets a 'struct nb_http_req' carved from its own arena. It is created in the URI
 * log callback, the one place where libmicrohttpd shows the URI exactly as received (the SigV4
 * verifier needs the raw path and query), and freed in the request-completed callback. The
 * handler runs on the final call of the access handler, once the whole body is buffered; replying
 * any earlier would make libmicrohttpd close keep-alive connections.
 *
 * We open the listening socket ourselves so that a failed bind reports its errno, and hand it to
 * libmicrohttpd with MHD_OPTION_LISTEN_SOCKET. */
#include "nubo/http.h"

#include "nubo/arena.h"
#include "nubo/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_DEFAULT_THREADS  2
#define HTTP_DEFAULT_MAX_BODY (1024 * 1024)
#define HTTP_DEFAULT_TIMEOUT  30
#define HTTP_CONN_MEMORY      (64 * 1024)  /* per connection: request line, headers, read buffer */
#define HTTP_STREAM_BLOCK     (256 * 1024) /* bytes asked of a streamed reply's reader at a time */
#define HTTP_REQ_ARENA        4096
#define HTTP_TLS_FILE_MAX     (1024 * 1024)

struct http_route {
    char *method; /* NULL for any */
    char *pattern;
    size_t prefix_len; /* length before the "*"; the whole pattern for exact ones */
    bool prefix;
    nb_http_handler handler;
    const struct nb_http_stream *stream; /* a streamed-body route; 'handler' is then NULL */
    void *arg;
};

struct nb_http_server {
    char address[INET6_ADDRSTRLEN];
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int port;
    unsigned int threads;
    bool thread_per_connection;
    size_t max_body;
    size_t conn_memory;
    unsigned int timeout_s;
    int listen_fd;  /* given by the caller, not yet handed to libmicrohttpd; -1 when none */
    char *tls_cert; /* PEM contents, NULL for plain HTTP */
    char *tls_key;

    struct http_route *routes;
    size_t n_routes;
    size_t routes_cap;

    nb_http_handler too_large; /* answers bodies over max_body; NULL: a plain-text 413 */
    void *too_large_arg;

    struct MHD_Daemon *daemon;
    atomic_bool stopping;
    atomic_int in_flight; /* requests between URI log and completion */

    pthread_mutex_t push_mu;
    struct nb_http_push *pushes; /* live pushed replies (nb_http_reply_push()), under push_mu */

    pthread_mutex_t upgrade_mu;
    pthread_cond_t upgrade_cv;         /* signalled when 'n_upgrades' drops */
    struct nb_http_upgraded *upgraded; /* handed to their owners, under upgrade_mu */
    size_t n_upgrades;                 /* upgrades not yet freed, under upgrade_mu */
};

struct reply_header {
    struct reply_header *next;
    const char *name;
    const char *value;
};

struct nb_http_req {
    struct nb_http_server *srv;
    struct MHD_Connection *conn;
    struct nb_arena *arena; /* owns this struct */
    const char *method;
    const char *path; /* decoded by libmicrohttpd, lives in its connection pool */
    const char *raw_path;
    const char *raw_query;
    char *body; /* malloc()ed, NUL-terminated */
    size_t body_len;
    size_t body_cap;
    struct reply_header *headers;
    struct reply_header *headers_tail;
    bool started;
    bool too_large;
    bool replied;
    bool queue_failed;
    char remote[INET6_ADDRSTRLEN];
    const struct http_route *stream_route; /* set when the body is streamed to a handler */
    void *stream_ctx;
    struct nb_http_upgraded *upgrade; /* replied with an upgrade not yet handed to its owner */
};

/* A connection upgraded to another protocol (nb_http_reply_upgrade()). */
struct nb_http_upgraded {
    struct nb_http_server *srv;
    nb_http_upgrade_fn fn;
    void *ctx;
    struct MHD_UpgradeResponseHandle *urh;
    int fd;
    bool closing;                         /* under upgrade_mu: the fd may be gone any time */
    struct nb_http_upgraded *prev, *next; /* in srv->upgraded, under upgrade_mu */
};

/* --- configuration --- */

static int parse_address(struct nb_http_server *srv, const char *address, int port,
                         struct nb_error *err)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&srv->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&srv->addr;

    if (strlen(address) >= sizeof srv->address) {
        nb_error_set(err, NB_ERR_INVALID, "invalid listen address \"%.64s\"", address);
        return -1;
    }
    memset(&srv->addr, 0, sizeof srv->addr);
    if (inet_pton(AF_INET, address, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        srv->addr_len = sizeof *sin;
    } else if (inet_pton(AF_INET6, address, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        srv->addr_len = sizeof *sin6;
    } else {
        nb_error_set(err, NB_ERR_INVALID, "invalid listen address \"%s\"", address);
        nb_error_detail(err, "expected an IPv4 or IPv6 literal");
        return -1;
    }
    snprintf(srv->address, sizeof srv->address, "%s", address);
    return 0;
}

/* Reads a whole PEM file into a malloc()ed, NUL-terminated string. */
static char *read_pem(const char *what, const char *path, struct nb_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        nb_error_errno(err, errno, "could not open TLS %s \"%s\"", what, path);
        return NULL;
    }
    char *buf = malloc(HTTP_TLS_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, HTTP_TLS_FILE_MAX + 1, f) : 0;
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed) {
        nb_error_set(err, NB_ERR_IO, "could not read TLS %s \"%s\"", what, path);
        free(buf);
        return NULL;
    }
    if (n > HTTP_TLS_FILE_MAX || n == 0) {
        nb_error_set(err, NB_ERR_INVALID, "invalid TLS %s \"%s\": %s", what, path,
                     n == 0 ? "file is empty" : "file is too large");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

struct nb_http_server *nb_http_server_new(const struct nb_http_config *cfg, struct nb_error *err)
{
    if (cfg->port < 0 || cfg->port > 65535) {
        nb_error_set(err, NB_ERR_INVALID, "invalid listen port %d", cfg->port);
        return NULL;
    }
    if (cfg->threads < 0 || cfg->timeout_s < 0) {
        nb_error_set(err, NB_ERR_INVALID, "invalid HTTP server configuration");
        nb_error_detail(err, "threads and timeout must not be negative");
        return NULL;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        nb_error_set(err, NB_ERR_INVALID, "TLS needs both a certificate and a key");
        return NULL;
    }
    if (cfg->tls_cert && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        nb_error_set(err, NB_ERR_INVALID, "TLS was requested but libmicrohttpd lacks TLS support");
        return NULL;
    }

    struct nb_http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    srv->listen_fd = -1;
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->in_flight, 0);
    pthread_mutex_init(&srv->push_mu, NULL);
    pthread_mutex_init(&srv->upgrade_mu, NULL);
    pthread_cond_init(&srv->upgrade_cv, NULL);
    srv->port = cfg->port;
    srv->threads = cfg->threads ? (unsigned int)cfg->threads : HTTP_DEFAULT_THREADS;
    srv->thread_per_connection = cfg->thread_per_connection;
    srv->max_body = cfg->max_body ? cfg->max_body : HTTP_DEFAULT_MAX_BODY;
    srv->conn_memory = cfg->conn_memory ? cfg->conn_memory : HTTP_CONN_MEMORY;
    srv->timeout_s = cfg->timeout_s ? (unsigned int)cfg->timeout_s : HTTP_DEFAULT_TIMEOUT;
    if (parse_address(srv, cfg->address ? cfg->address : "127.0.0.1", cfg->port, err) < 0) {
        goto fail;
    }
    if (cfg->tls_cert) {
        srv->tls_cert = read_pem("certificate", cfg->tls_cert, err);
        if (!srv->tls_cert) {
            goto fail;
        }
        srv->tls_key = read_pem("key", cfg->tls_key, err);
        if (!srv->tls_key) {
            goto fail;
        }
    }
    if (cfg->listen_fd > 0) {
        /* Taken only now: the caller keeps it when this fails. */
        srv->listen_fd = cfg->listen_fd;
        struct sockaddr_storage bound;
        socklen_t len = sizeof bound;
        if (getsockname(srv->listen_fd, (struct sockaddr *)&bound, &len) == 0) {
            const void *a = bound.ss_family == AF_INET
                                ? (const void *)&((const struct sockaddr_in *)&bound)->sin_addr
                                : (const void *)&((const struct sockaddr_in6 *)&bound)->sin6_addr;
            inet_ntop(bound.ss_family, a, srv->address, sizeof srv->address);
            srv->addr.ss_family = bound.ss_family;
            srv->port = ntohs(bound.ss_family == AF_INET
                                  ? ((const struct sockaddr_in *)&bound)->sin_port
                                  : ((const struct sockaddr_in6 *)&bound)->sin6_port);
        }
    }
    return srv;

fail:
    nb_http_server_free(srv);
    return NULL;
}

static int add_route(struct nb_http_server *srv, const char *method, const char *pattern,
                     nb_http_handler handler, const struct nb_http_stream *stream, void *arg)
{
    if (!srv || !pattern || pattern[0] != '/' || (!handler && !stream) || srv->daemon) {
        return -1;
    }
    if (srv->n_routes == srv->routes_cap) {
        size_t cap = srv->routes_cap ? srv->routes_cap * 2 : 16;
        struct http_route *r = realloc(srv->routes, cap * sizeof *r);
        if (!r) {
            return -1;
        }
        srv->routes = r;
        srv->routes_cap = cap;
    }
    struct http_route *r = &srv->routes[srv->n_routes];
    memset(r, 0, sizeof *r);
    r->pattern = strdup(pattern);
    r->method = method ? strdup(method) : NULL;
    if (!r->pattern || (method && !r->method)) {
        free(r->pattern);
        free(r->method);
        return -1;
    }
    size_t len = strlen(pattern);
    r->prefix = pattern[len - 1] == '*';
    r->prefix_len = r->prefix ? len - 1 : len;
    r->handler = handler;
    r->stream = stream;
    r->arg = arg;
    srv->n_routes++;
    return 0;
}

int nb_http_route(struct nb_http_server *srv, const char *method, const char *pattern,
                  nb_http_handler handler, void *arg)
{
    return handler ? add_route(srv, method, pattern, handler, NULL, arg) : -1;
}

int nb_http_route_stream(struct nb_http_server *srv, const char *method, const char *pattern,
                         const struct nb_http_stream *stream, void *arg)
{
    if (!method || !stream || !stream->begin || !stream->body || !stream->end) {
        return -1;
    }
    return add_route(srv, method, pattern, NULL, stream, arg);
}

/* --- request life cycle --- */

static bool route_matches_path(const struct http_route *r, const char *path)
{
    if (r->prefix) {
        return strncmp(path, r->pattern, r->prefix_len) == 0;
    }
    return strcmp(path, r->pattern) == 0;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct nb_http_server *srv = cls;
    struct nb_arena *arena = nb_arena_new(HTTP_REQ_ARENA);
    struct nb_http_req *req = nb_arena_zalloc(arena, sizeof *req);

    req->srv = srv;
    req->conn = conn;
    req->arena = arena;
    if (!uri) {
        uri = "";
    }
    const char *q = strchr(uri, '?');
    if (q) {
        req->raw_path = nb_arena_strndup(arena, uri, (size_t)(q - uri));
        req->raw_query = nb_arena_strdup(arena, q + 1);
    } else {
        req->raw_path = nb_arena_strdup(arena, uri);
        req->raw_query = "";
    }
    atomic_fetch_add_explicit(&srv->in_flight, 1, memory_order_relaxed);
    return req;
}

static void upgraded_free(struct nb_http_upgraded *u);

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct nb_http_server *srv = cls;
    struct nb_http_req *req = *con_cls;

    if (!req) {
        return;
    }
    *con_cls = NULL;
    if (req->stream_route && req->stream_route->stream->done) {
        req->stream_route->stream->done(req->stream_ctx,
                                        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    }
    /* An upgrade whose 101 never went out (the client left first): no owner will close it. */
    if (req->upgrade) {
        req->upgrade->fn(NULL, -1, NULL, 0, req->upgrade->ctx);
        upgraded_free(req->upgrade);
    }
    free(req->body);
    nb_arena_free(req->arena);
    atomic_fetch_sub_explicit(&srv->in_flight, 1, memory_order_release);
}

static void reply_text(struct nb_http_req *req, int status, const char *text)
{
    nb_http_reply(req, status, "text/plain;charset=UTF-8", text, strlen(text));
}

static void set_remote_addr(struct nb_http_req *req);

/* Answers a request whose body is over the limit: through the server's handler if it has one. */
static void reply_too_large(struct nb_http_req *req)
{
    req->too_large = true;
    if (req->srv->too_large) {
        set_remote_addr(req);
        req->srv->too_large(req, req->srv->too_large_arg);
    }
    if (!req->replied) {
        reply_text(req, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
    }
}

void nb_http_on_too_large(struct nb_http_server *srv, nb_http_handler handler, void *arg)
{
    srv->too_large = handler;
    srv->too_large_arg = arg;
}

/* Called once the headers are in: refuses a declared body over the limit before it is sent. */
static void check_content_length(struct nb_http_req *req)
{
    const char *cl =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl) {
        return;
    }
    char *end;
    errno = 0;
    uintmax_t n = strtoumax(cl, &end, 10);
    if (errno || end == cl || n > req->srv->max_body) {
        /* Queuing a reply now makes libmicrohttpd skip the body and close the connection. */
        reply_too_large(req);
        return;
    }
    if (n > 0) {
        req->body = malloc((size_t)n + 1);
        req->body_cap = req->body ? (size_t)n + 1 : 0;
    }
}

/* Appends a chunk of body; past the limit the rest is read and dropped, and we answer 413. */
static void append_body(struct nb_http_req *req, const char *data, size_t len)
{
    if (req->too_large) {
        return;
    }
    if (len > req->srv->max_body - req->body_len) {
        req->too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 1024;
        while (cap < req->body_len + len + 1) {
            cap *= 2;
        }
        char *b = realloc(req->body, cap);
        if (!b) {
            req->too_large = true; /* treated like an oversized body: never reaches a handler */
            return;
        }
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
}

static void set_remote_addr(struct nb_http_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, req->remote, sizeof req->remote);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], req->remote, sizeof req->remote);
        } else {
            inet_ntop(AF_INET6, &sin6->sin6_addr, req->remote, sizeof req->remote);
        }
    }
}

/* Answers 405 with an Allow header listing the methods routed for this path. */
static void reply_not_allowed(struct nb_http_req *req)
{
    const struct nb_http_server *srv = req->srv;
    size_t len = 0;

    for (size_t i = 0; i < srv->n_routes; i++) {
        if (srv->routes[i].method && route_matches_path(&srv->routes[i], req->path)) {
            len += strlen(srv->routes[i].method) + 2;
        }
    }
    char *allow = nb_arena_alloc(req->arena, len + 1);
    allow[0] = '\0';
    for (size_t i = 0; i < srv->n_routes; i++) {
        const struct http_route *r = &srv->routes[i];
        if (!r->method || !route_matches_path(r, req->path)) {
            continue;
        }
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const struct http_route *o = &srv->routes[j];
            seen =
                o->method && strcmp(o->method, r->method) == 0 && route_matches_path(o, req->path);
        }
        if (!seen) {
            if (allow[0]) {
                strcat(allow, ", ");
            }
            strcat(allow, r->method);
        }
    }
    nb_http_reply_header(req, "Allow", allow);
    reply_text(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
}

static void dispatch(struct nb_http_req *req)
{
    const struct nb_http_server *srv = req->srv;
    const struct http_route *found = NULL;
    bool other_method = false;

    if (req->too_large) {
        reply_too_large(req);
        return;
    }
    for (size_t i = 0; i < srv->n_routes && !found; i++) {
        const struct http_route *r = &srv->routes[i];
        if (!route_matches_path(r, req->path) ||
            (r->stream && r->stream->wants && !r->stream->wants(req->path, r->arg))) {
            continue;
        }
        if (!r->method || strcmp(r->method, req->method) == 0) {
            /* A streamed route that matched took the request in start_stream(). */
            found = r;
        } else {
            other_method = true;
        }
    }
    if (!found) {
        if (other_method) {
            reply_not_allowed(req);
        } else {
            reply_text(req, MHD_HTTP_NOT_FOUND, "not found\n");
        }
        return;
    }
    if (req->body) {
        req->body[req->body_len] = '\0';
    }
    set_remote_addr(req);
    found->handler(req, found->arg);
    if (!req->replied) {
        /* Drop whatever headers the handler added: they describe a reply that never came. */
        req->headers = req->headers_tail = NULL;
        reply_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "handler did not reply\n");
    }
}

/* A streamed-body route for this request, if one matches: its 'begin' runs now, with the
 * headers only. Returns true if the request is streamed. */
static bool start_stream(struct nb_http_req *req)
{
    const struct http_route *found = NULL;
    for (size_t i = 0; i < req->srv->n_routes && !found; i++) {
        const struct http_route *r = &req->srv->routes[i];
        if (route_matches_path(r, req->path) && (!r->method || !strcmp(r->method, req->method)) &&
            (!r->stream || !r->stream->wants || r->stream->wants(req->path, r->arg))) {
            found = r;
        }
    }
    if (!found || !found->stream) {
        return false;
    }
    req->stream_route = found;
    set_remote_addr(req);
    found->stream->begin(req, found->arg, &req->stream_ctx);
    return true;
}

/* A piece of a streamed body ('len' > 0), or its end ('len' 0). Once the handler has replied,
 * the rest of the body is dropped. */
static void stream_step(struct nb_http_req *req, const char *data, size_t len)
{
    const struct nb_http_stream *st = req->stream_route->stream;
    if (req->replied) {
        return;
    }
    if (len) {
        st->body(req, req->stream_ctx, data, len);
        return;
    }
    st->end(req, req->stream_ctx);
    if (!req->replied) {
        req->headers = req->headers_tail = NULL;
        reply_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "handler did not reply\n");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct nb_http_req *req = *con_cls;

    if (!req) {
        return MHD_NO; /* the URI log callback always sets it */
    }
    if (!req->started) {
        req->started = true;
        req->conn = conn;
        req->method = method;
        req->path = url;
        if (!start_stream(req)) {
            check_content_length(req);
        }
    } else if (req->stream_route) {
        stream_step(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
    } else if (*upload_data_size) {
        append_body(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
    } else if (!req->replied) {
        dispatch(req);
    }
    return req->queue_failed ? MHD_NO : MHD_YES;
}

/* --- start and stop --- */

static int open_listener(struct nb_http_server *srv, struct nb_error *err)
{
    int fd = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        nb_error_errno(err, errno, "could not create socket for %s", srv->address);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (srv->addr.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (bind(fd, (const struct sockaddr *)&srv->addr, srv->addr_len) < 0) {
        nb_error_errno(err, errno, "could not bind to %s port %d", srv->address, srv->port);
        close(fd);
        return -1;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        nb_error_errno(err, errno, "could not listen on %s port %d", srv->address, srv->port);
        close(fd);
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t len = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &len) == 0) {
        srv->port =
            ntohs(bound.ss_family == AF_INET ? ((const struct sockaddr_in *)&bound)->sin_port
                                             : ((const struct sockaddr_in6 *)&bound)->sin6_port);
    }
    return fd;
}

int nb_http_server_start(struct nb_http_server *srv, struct nb_error *err)
{
    if (srv->daemon) {
        nb_error_set(err, NB_ERR_CONFLICT, "HTTP server on %s port %d is already running",
                     srv->address, srv->port);
        return -1;
    }
    int fd = srv->listen_fd >= 0 ? srv->listen_fd : open_listener(srv, err);
    srv->listen_fd = -1;
    if (fd < 0) {
        return -1;
    }

    /* Suspend/resume parks the connections of pushed replies while they wait for bytes. */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_ALLOW_UPGRADE;
    /* libmicrohttpd takes a pool size of 0 as "no pool". */
    unsigned int pool = srv->threads;
    if (srv->thread_per_connection) {
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
        pool = 0;
    } else {
        /* poll(), not epoll: with a thread pool on epoll, libmicrohttpd 0.9.75's
         * MHD_quiesce_daemon() races its workers removing the listening socket from their epoll
         * sets and aborts the process ("Failed to remove listen FD from epoll set", seen about
         * once in 30 stops). Each worker polls only its own connections, so poll() costs
         * nothing measurable here (tests/bench/api.c). */
        flags |= MHD_USE_POLL;
    }
    if (srv->addr.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_END, 0, NULL},
        {MHD_OPTION_END, 0, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    if (srv->tls_cert) {
        flags |= MHD_USE_TLS;
        tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert};
        tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key};
    }
    atomic_store(&srv->stopping, false);
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_CONNECTION_TIMEOUT, srv->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, srv->conn_memory, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
        srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!srv->daemon) {
        /* Not closing 'fd': libmicrohttpd already closed it, and the number may be reused. */
        nb_error_set(err, NB_ERR_INTERNAL, "could not start HTTP server on %s port %d",
                     srv->address, srv->port);
        if (srv->tls_cert) {
            nb_error_detail(err, "check that the TLS certificate and key are valid PEM");
        }
        return -1;
    }
    return 0;
}

int nb_http_server_port(const struct nb_http_server *srv)
{
    return srv->port;
}

static void push_end_all(struct nb_http_server *srv);
static void upgraded_end_all(struct nb_http_server *srv);

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void nb_http_server_stop(struct nb_http_server *srv)
{
    if (!srv || !srv->daemon) {
        return;
    }
    /* Replies from now on carry "Connection: close", so keep-alive clients go away too. */
    atomic_store(&srv->stopping, true);
    push_end_all(srv); /* libmicrohttpd refuses to stop with connections parked */
    MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
    upgraded_end_all(srv); /* nor with upgraded connections open */

    /* A request still in flight is bounded by the connection timeout, so is this wait. */
    long waited_ms = 0;
    long limit_ms = (long)srv->timeout_s * 1000 + 1000;
    while (atomic_load_explicit(&srv->in_flight, memory_order_acquire) > 0 &&
           waited_ms < limit_ms) {
        sleep_ms(2);
        waited_ms += 2;
    }
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
    if (lfd != MHD_INVALID_SOCKET) {
        close(lfd);
    }
}

void nb_http_server_free(struct nb_http_server *srv)
{
    if (!srv) {
        return;
    }
    nb_http_server_stop(srv);
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
    }
    for (size_t i = 0; i < srv->n_routes; i++) {
        free(srv->routes[i].method);
        free(srv->routes[i].pattern);
    }
    free(srv->routes);
    free(srv->tls_cert);
    free(srv->tls_key);
    pthread_mutex_destroy(&srv->push_mu);
    pthread_cond_destroy(&srv->upgrade_cv);
    pthread_mutex_destroy(&srv->upgrade_mu);
    free(srv);
}

/* --- accessors --- */

const char *nb_http_req_method(const struct nb_http_req *req)
{
    return req->method;
}

const char *nb_http_req_path(const struct nb_http_req *req)
{
    return req->path;
}

const char *nb_http_req_raw_path(const struct nb_http_req *req)
{
    return req->raw_path;
}

const char *nb_http_req_raw_query(const struct nb_http_req *req)
{
    return req->raw_query;
}

const char *nb_http_req_query(const struct nb_http_req *req, const char *name)
{
    const char *value = NULL;
    /* "?flag" has no value at all; it is present, so it reads as "" rather than NULL. */
    if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &value,
                                      NULL) != MHD_YES) {
        return NULL;
    }
    return value ? value : "";
}

const char *nb_http_req_header(const struct nb_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

struct header_walk {
    void (*fn)(const char *name, const char *value, void *arg);
    void *arg;
};

static enum MHD_Result walk_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    const struct header_walk *w = cls;
    w->fn(key, value ? value : "", w->arg);
    return MHD_YES;
}

void nb_http_req_headers(const struct nb_http_req *req,
                         void (*fn)(const char *name, const char *value, void *arg), void *arg)
{
    struct header_walk w = {fn, arg};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, walk_header, &w);
}

const char *nb_http_req_body(const struct nb_http_req *req, size_t *len)
{
    if (len) {
        *len = req->body_len;
    }
    return req->body ? req->body : "";
}

const char *nb_http_req_remote_addr(const struct nb_http_req *req)
{
    return req->remote;
}

struct nb_arena *nb_http_req_arena(struct nb_http_req *req)
{
    return req->arena;
}

/* --- replies --- */

void nb_http_reply_header(struct nb_http_req *req, const char *name, const char *value)
{
    struct reply_header *h = nb_arena_alloc(req->arena, sizeof *h);
    h->next = NULL;
    h->name = nb_arena_strdup(req->arena, name);
    h->value = nb_arena_strdup(req->arena, value);
    if (req->headers_tail) {
        req->headers_tail->next = h;
    } else {
        req->headers = h;
    }
    req->headers_tail = h;
}

/* Queues 'resp' (with 'content_type' and the handler's headers) as the reply. Takes 'resp'. */
static void queue_reply(struct nb_http_req *req, int status, const char *content_type,
                        struct MHD_Response *resp)
{
    if (!resp) {
        req->queue_failed = true;
        return;
    }
    if (content_type) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    }
    for (const struct reply_header *h = req->headers; h; h = h->next) {
        MHD_add_response_header(resp, h->name, h->value);
    }
    if (atomic_load_explicit(&req->srv->stopping, memory_order_relaxed)) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    if (MHD_queue_response(req->conn, (unsigned int)status, resp) != MHD_YES) {
        req->queue_failed = true;
    }
    MHD_destroy_response(resp);
}

void nb_http_reply(struct nb_http_req *req, int status, const char *content_type, const void *body,
                   size_t len)
{
    if (req->replied) {
        return; /* a handler answers once; later calls are ignored */
    }
    req->replied = true;
    queue_reply(
        req, status, content_type,
        MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY));
}

void nb_http_reply_owned(struct nb_http_req *req, int status, const char *content_type, char *body,
                         size_t len)
{
    if (req->replied) {
        free(body);
        return;
    }
    req->replied = true;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
    }
    queue_reply(req, status, content_type, resp);
}

void nb_http_reply_file(struct nb_http_req *req, int status, const char *content_type, int fd,
                        uint64_t size)
{
    if (req->replied) {
        close(fd);
        return;
    }
    req->replied = true;
    /* libmicrohttpd sends from the descriptor (sendfile where it can) and closes it. */
    struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
    if (!resp) {
        close(fd);
    }
    queue_reply(req, status, content_type, resp);
}

struct stream_reply {
    nb_http_read_fn read;
    void (*free_ctx)(void *ctx);
    void *ctx;
    uint64_t size;
};

static ssize_t stream_reply_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_reply *sr = cls;
    if (pos >= sr->size) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (max > sr->size - pos) {
        max = (size_t)(sr->size - pos);
    }
    int64_t n = sr->read(sr->ctx, pos, buf, max);
    /* A short body would leave the client waiting for bytes promised by Content-Length:
     * failing closes the connection, which the client sees as an error. */
    return n > 0 ? (ssize_t)n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_reply_free(void *cls)
{
    struct stream_reply *sr = cls;
    if (sr->free_ctx) {
        sr->free_ctx(sr->ctx);
    }
    free(sr);
}

void nb_http_reply_stream(struct nb_http_req *req, int status, const char *content_type,
                          uint64_t size, nb_http_read_fn read, void (*free_ctx)(void *ctx),
                          void *ctx)
{
    struct stream_reply *sr = req->replied ? NULL : malloc(sizeof *sr);
    if (!sr) {
        if (free_ctx) {
            free_ctx(ctx);
        }
        if (!req->replied) {
            reply_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        }
        return;
    }
    *sr = (struct stream_reply){read, free_ctx, ctx, size};
    req->replied = true;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        size, HTTP_STREAM_BLOCK, stream_reply_read, sr, stream_reply_free);
    if (!resp) {
        stream_reply_free(sr);
    }
    queue_reply(req, status, content_type, resp);
}

bool nb_http_req_is_streamed(const struct nb_http_req *req)
{
    return req->stream_route != NULL;
}

void nb_http_reply_json(struct nb_http_req *req, int status, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        reply_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "could not serialise reply\n");
        return;
    }
    nb_http_reply_owned(req, status, "application/json", text, strlen(text));
}

void nb_http_reply_xml(struct nb_http_req *req, int status, const char *xml)
{
    nb_http_reply(req, status, "text/xml;charset=UTF-8", xml, strlen(xml));
}

int nb_http_parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',')) {
        return 0;
    }
    const char *p = h + 6;
    char *end;
    if (*p == '-') {
        if (p[1] < '0' || p[1] > '9') {
            return 0;
        }
        unsigned long long n = strtoull(p + 1, &end, 10);
        if (*end) {
            return 0;
        }
        if (n == 0 || size == 0) {
            return -1;
        }
        *first = n >= size ? 0 : size - n;
        *last = size - 1;
        return 1;
    }
    if (*p < '0' || *p > '9') {
        return 0;
    }
    unsigned long long a = strtoull(p, &end, 10);
    if (*end != '-') {
        return 0;
    }
    const char *q = end + 1;
    unsigned long long b = size ? size - 1 : 0;
    if (*q) {
        if (*q < '0' || *q > '9') {
            return 0;
        }
        b = strtoull(q, &end, 10);
        if (*end) {
            return 0;
        }
        if (b < a) {
            return 0; /* invalid: ignored, as RFC 9110 says */
        }
    }
    if (a >= size) {
        return -1;
    }
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 1;
}

/* --- pushed replies ---
 *
 * The reader callback hands libmicrohttpd what is queued; with nothing queued it suspends the
 * connection ("parks" it) and returns 0, and the next write resumes it. Both happen under the
 * push's mutex, so a write cannot slip between the reader's look at the queue and the park.
 * libmicrohttpd is never called with that mutex held except to suspend from inside the reader,
 * as its documentation asks: a parked connection cannot be closed, so resuming it after letting
 * go of the mutex is safe. The response's free callback marks the push over; writes then fail. */

#define HTTP_PUSH_BLOCK      (16 * 1024)
#define HTTP_PUSH_MAX_QUEUED (256 * 1024)

struct nb_http_push {
    pthread_mutex_t mu;
    atomic_int refs;             /* the owner's, and the response's until it is freed */
    atomic_bool end_asked;       /* by push_end_all() */
    struct nb_http_server *srv;  /* set once; used only while the response lives */
    struct MHD_Connection *conn; /* NULL once the response is gone */
    char *buf;                   /* queued bytes are buf[off, len) */
    size_t off, len, cap, max_queued;
    bool parked;                      /* the connection is suspended until something is queued */
    bool ended;                       /* no more writes: the reply ends once the queue is drained */
    bool over;                        /* the response is gone */
    struct nb_http_push *prev, *next; /* in srv->pushes, under srv->push_mu */
};

const char *nb_http_req_cookie(const struct nb_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

bool nb_http_req_tls(const struct nb_http_req *req)
{
    return req->srv->tls_cert != NULL;
}

static ssize_t push_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct nb_http_push *p = cls;
    ssize_t n;
    pthread_mutex_lock(&p->mu);
    if (p->off < p->len) {
        size_t k = p->len - p->off < max ? p->len - p->off : max;
        memcpy(out, p->buf + p->off, k);
        p->off += k;
        if (p->off == p->len) {
            p->off = p->len = 0;
        }
        n = (ssize_t)k;
    } else if (p->ended || atomic_load(&p->srv->stopping)) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        p->parked = true;
        MHD_suspend_connection(p->conn);
        n = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* The response's free callback: the connection is over. */
static void push_gone(void *cls)
{
    struct nb_http_push *p = cls;
    struct nb_http_server *srv = p->srv;
    pthread_mutex_lock(&srv->push_mu);
    if (p->prev) {
        p->prev->next = p->next;
    } else if (srv->pushes == p) {
        srv->pushes = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    }
    p->prev = p->next = NULL;
    pthread_mutex_unlock(&srv->push_mu);
    pthread_mutex_lock(&p->mu);
    p->over = true;
    p->parked = false;
    p->conn = NULL;
    free(p->buf);
    p->buf = NULL;
    p->off = p->len = p->cap = 0;
    pthread_mutex_unlock(&p->mu);
    nb_http_push_release(p);
}

struct nb_http_push *nb_http_reply_push(struct nb_http_req *req, int status,
                                        const char *content_type, size_t max_queued)
{
    if (req->replied) {
        return NULL;
    }
    struct nb_http_push *p = calloc(1, sizeof *p);
    struct MHD_Response *resp = p ? MHD_create_response_from_callback(
                                        MHD_SIZE_UNKNOWN, HTTP_PUSH_BLOCK, push_read, p, push_gone)
                                  : NULL;
    if (!resp) {
        free(p);
        reply_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    atomic_init(&p->refs, 2);
    atomic_init(&p->end_asked, false);
    p->srv = req->srv;
    p->conn = req->conn;
    p->max_queued = max_queued ? max_queued : HTTP_PUSH_MAX_QUEUED;
    pthread_mutex_lock(&req->srv->push_mu);
    p->next = req->srv->pushes;
    if (p->next) {
        p->next->prev = p;
    }
    req->srv->pushes = p;
    pthread_mutex_unlock(&req->srv->push_mu);
    req->replied = true;
    /* If queuing fails, destroying the response runs push_gone(): writes then fail. */
    queue_reply(req, status, content_type, resp);
    return p;
}

int nb_http_push_write(struct nb_http_push *p, const void *data, size_t len)
{
    struct MHD_Connection *wake = NULL;
    int rc = -1;
    pthread_mutex_lock(&p->mu);
    if (!p->over && !p->ended) {
        size_t queued = p->len - p->off;
        if (queued + len > p->max_queued) {
            p->ended = true; /* a client too slow to follow: it gets what is queued, then the end */
        } else {
            if (p->off > 0 && p->len + len > p->cap) {
                memmove(p->buf, p->buf + p->off, queued);
                p->off = 0;
                p->len = queued;
            }
            if (p->len + len > p->cap) {
                size_t cap = p->cap ? p->cap : 1024;
                while (cap < p->len + len) {
                    cap *= 2;
                }
                char *b = realloc(p->buf, cap);
                if (b) {
                    p->buf = b;
                    p->cap = cap;
                }
            }
            if (p->len + len <= p->cap) {
                memcpy(p->buf + p->len, data, len);
                p->len += len;
                rc = 0;
            } else {
                p->ended = true; /* out of memory */
            }
        }
        if (p->parked) {
            p->parked = false;
            wake = p->conn;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (wake) {
        MHD_resume_connection(wake);
    }
    return rc;
}

void nb_http_push_end(struct nb_http_push *p)
{
    struct MHD_Connection *wake = NULL;
    pthread_mutex_lock(&p->mu);
    p->ended = true;
    if (p->parked) {
        p->parked = false;
        wake = p->conn;
    }
    pthread_mutex_unlock(&p->mu);
    if (wake) {
        MHD_resume_connection(wake);
    }
}

void nb_http_push_release(struct nb_http_push *p)
{
    if (!p) {
        return;
    }
    if (atomic_fetch_sub(&p->refs, 1) == 1) {
        pthread_mutex_destroy(&p->mu);
        free(p->buf);
        free(p);
    }
}

/* Ends every pushed reply (the server is stopping), waking the parked ones. No push's mutex is
 * taken under push_mu, nor the other way round. */
static void push_end_all(struct nb_http_server *srv)
{
    for (;;) {
        struct nb_http_push *batch[64];
        size_t n = 0;
        pthread_mutex_lock(&srv->push_mu);
        for (struct nb_http_push *p = srv->pushes; p && n < 64; p = p->next) {
            if (!atomic_exchange(&p->end_asked, true)) {
                atomic_fetch_add(&p->refs, 1);
                batch[n++] = p;
            }
        }
        pthread_mutex_unlock(&srv->push_mu);
        for (size_t i = 0; i < n; i++) {
            nb_http_push_end(batch[i]);
            nb_http_push_release(batch[i]);
        }
        if (n < 64) {
            return;
        }
    }
}

/* --- upgraded connections ---
 *
 * An upgrade is counted in srv->n_upgrades from nb_http_reply_upgrade() until it is freed:
 * by nb_http_upgraded_close() once its owner is done, or by the request-completed callback when
 * the 101 never went out (libmicrohttpd then never calls the upgrade handler, and always calls
 * it before that callback otherwise: the callback comes once the connection is closed). Stopping
 * shuts down the sockets of the upgrades handed over (their owners see EOF and close), and waits
 * for the count to drop to zero: libmicrohttpd must not be stopped with one still open. The
 * count and the stopping flag are checked together under upgrade_mu, so an upgrade either
 * starts before the wait (and is waited for) or is refused. */

/* Forgets 'u' (accepts NULL) and wakes a stopping server waiting for it. */
static void upgraded_free(struct nb_http_upgraded *u)
{
    if (!u) {
        return;
    }
    struct nb_http_server *srv = u->srv;
    pthread_mutex_lock(&srv->upgrade_mu);
    if (u->prev) {
        u->prev->next = u->next;
    } else if (srv->upgraded == u) {
        srv->upgraded = u->next;
    }
    if (u->next) {
        u->next->prev = u->prev;
    }
    srv->n_upgrades--;
    pthread_cond_broadcast(&srv->upgrade_cv);
    pthread_mutex_unlock(&srv->upgrade_mu);
    free(u);
}

/* libmicrohttpd's upgrade handler: the 101 has been sent. */
static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
                        size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct nb_http_upgraded *u = cls;
    struct nb_http_req *req = con_cls;
    struct nb_http_server *srv = u->srv;

    if (req) {
        req->upgrade = NULL; /* its owner frees it from now on */
    }
    u->urh = urh;
    u->fd = sock;
    pthread_mutex_lock(&srv->upgrade_mu);
    u->next = srv->upgraded;
    if (u->next) {
        u->next->prev = u;
    }
    srv->upgraded = u;
    if (atomic_load(&srv->stopping)) {
        shutdown(sock, SHUT_RDWR); /* the server stopped while the 101 was on its way */
    }
    pthread_mutex_unlock(&srv->upgrade_mu);
    u->fn(u, sock, extra, extra_len, u->ctx);
}

void nb_http_reply_upgrade(struct nb_http_req *req, const char *protocol, nb_http_upgrade_fn fn,
                           void *ctx)
{
    struct nb_http_server *srv = req->srv;
    if (req->replied) {
        fn(NULL, -1, NULL, 0, ctx);
        return;
    }
    pthread_mutex_lock(&srv->upgrade_mu);
    bool stopping = atomic_load(&srv->stopping);
    if (!stopping) {
        srv->n_upgrades++;
    }
    pthread_mutex_unlock(&srv->upgrade_mu);
    if (stopping) {
        fn(NULL, -1, NULL, 0, ctx);
        req->headers = req->headers_tail = NULL; /* they describe the 101 */
        reply_text(req, MHD_HTTP_SERVICE_UNAVAILABLE, "server is stopping\n");
        return;
    }
    struct nb_http_upgraded *u = calloc(1, sizeof *u);
    struct MHD_Response *resp = u ? MHD_create_response_for_upgrade(on_upgraded, u) : NULL;
    if (!resp) {
        if (u) {
            u->srv = srv;
            upgraded_free(u);
        } else {
            pthread_mutex_lock(&srv->upgrade_mu);
            srv->n_upgrades--;
            pthread_cond_broadcast(&srv->upgrade_cv);
            pthread_mutex_unlock(&srv->upgrade_mu);
        }
        fn(NULL, -1, NULL, 0, ctx);
        req->headers = req->headers_tail = NULL;
        reply_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return;
    }
    *u = (struct nb_http_upgraded){.srv = srv, .fn = fn, .ctx = ctx, .fd = -1};
    req->upgrade = u;
    req->replied = true;
    /* libmicrohttpd adds "Connection: Upgrade" itself and insists on an Upgrade header. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, protocol);
    for (const struct reply_header *h = req->headers; h; h = h->next) {
        MHD_add_response_header(resp, h->name, h->value);
    }
    /* On failure the connection is closed, and the request-completed callback tells 'fn' and
     * frees 'u'. */
    if (MHD_queue_response(req->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp) != MHD_YES) {
        req->queue_failed = true;
    }
    MHD_destroy_response(resp);
}

void nb_http_upgraded_close(struct nb_http_upgraded *u)
{
    struct nb_http_server *srv = u->srv;
    /* From here the socket may be closed by libmicrohttpd and its number reused: a stopping
     * server must no longer shut it down. */
    pthread_mutex_lock(&srv->upgrade_mu);
    u->closing = true;
    pthread_mutex_unlock(&srv->upgrade_mu);
    MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
    upgraded_free(u);
}

/* Shuts down the sockets of the upgraded connections and waits until their owners have closed
 * them all, and until no upgrade is on its way. */
static void upgraded_end_all(struct nb_http_server *srv)
{
    pthread_mutex_lock(&srv->upgrade_mu);
    for (struct nb_http_upgraded *u = srv->upgraded; u; u = u->next) {
        if (!u->closing) {
            shutdown(u->fd, SHUT_RDWR);
        }
    }
    while (srv->n_upgrades > 0) {
        pthread_cond_wait(&srv->upgrade_cv, &srv->upgrade_mu);
    }
    pthread_mutex_unlock(&srv->upgrade_mu);
}
