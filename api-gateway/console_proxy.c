/* The in-browser VM console's WebSocket proxy (see console_proxy.h). */
#include "console_proxy.h"

#include "auth.h"
#include "gateway.h"
#include "rest_api.h"
#include "rfb.h"
#include "svc_console.h"
#include "svc_hosts.h"
#include "websocket.h"

#include "nubo/arena.h"
#include "nubo/clock.h"
#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/id.h"
#include "nubo/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS  5000
#define VNC_AUTH_TIMEOUT_MS 5000
#define CLIENT_HANDSHAKE_MS 15000 /* the browser's RFB handshake, once the WebSocket is open */
#define TOUCH_INTERVAL_MS   10000 /* vnc_connections.seen_at refresh: well under its 30 s */
#define RELAY_CHUNK         65536
#define DEFAULT_MAX_PROXIES 256

/* Live proxies on this gateway, against console.max_vnc. */
static atomic_int live_proxies;

struct proxy {
    struct gw_ctx *gw;
    struct gw_console_target target;
    char source[64];
    int vnc_fd;
    int client_fd;
    struct nb_http_upgraded *up;
    char *fail_reason; /* set when the display could not be reached: told inside RFB */
    uint8_t *extra;    /* bytes the browser sent past the HTTP request */
    size_t extra_len;
    int64_t conn_id; /* the vnc_connections row, 0 when not recorded */
    uint64_t bytes_in, bytes_out;
    struct ws_decoder dec;
    struct rfb_server rfb;
    bool rfb_done;
};

/* Writes all of 'iov' to blocking socket 'fd'; 0 or -1. */
static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Sends 'len' bytes to the browser as one binary message. */
static int send_binary(struct proxy *p, const void *data, size_t len)
{
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    struct iovec iov[2] = {{hdr, ws_frame_header(hdr, WS_OP_BINARY, len)}, {(void *)data, len}};
    if (write_all(p->client_fd, iov, len ? 2 : 1) < 0) {
        return -1;
    }
    p->bytes_out += len;
    return 0;
}

static void send_control(struct proxy *p, const uint8_t *frame, size_t len)
{
    struct iovec iov = {(void *)frame, len};
    (void)write_all(p->client_fd, &iov, 1);
}

static void send_close(struct proxy *p, uint16_t code, const char *reason)
{
    uint8_t frame[WS_CONTROL_FRAME];
    send_control(p, frame, ws_encode_close(frame, code, reason));
}

/* Connects to host:port within CONNECT_TIMEOUT_MS; returns a blocking socket or -1. */
static int connect_display(const char *host, int port, struct nb_error *err)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        nb_error_set(err, NB_ERR_UNAVAILABLE, "cannot resolve the display's host %s: %s", host,
                     gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (poll(&pfd, 1, CONNECT_TIMEOUT_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        nb_error_set(err, NB_ERR_UNAVAILABLE, "cannot connect to the display at %s:%d", host, port);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* Finds the instance's display and logs in to it; the socket, or -1 with 'err'. */
static int open_display(struct gw_ctx *gw, const struct gw_console_target *t,
                        struct nb_arena *arena, struct nb_error *err)
{
    struct gw_principal who = {.role = GW_ROLE_READER};
    snprintf(who.tenant_id, sizeof who.tenant_id, "%s", t->tenant_id);
    snprintf(who.user_id, sizeof who.user_id, "%s", t->user_id);
    const char *address = NULL, *password = NULL;
    int port = 0;
    if (gw_instance_vnc(gw, &who, t->instance_id, arena, &address, &port, &password, err) < 0) {
        return -1;
    }
    int fd = connect_display(address, port, err);
    if (fd >= 0 && rfb_client_handshake_fd(fd, password, VNC_AUTH_TIMEOUT_MS, NULL, err) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void proxy_free(struct proxy *p)
{
    if (p->vnc_fd >= 0) {
        close(p->vnc_fd);
    }
    ws_decoder_free(&p->dec);
    free(p->fail_reason);
    free(p->extra);
    free(p);
    atomic_fetch_sub(&live_proxies, 1);
}

/* Hands 'len' bytes of the browser's messages to the RFB handshake (and, once it is over, what
 * follows it to the display). Returns 0, or -1 when the connection is to end. */
static int from_browser(struct proxy *p, const uint8_t *data, size_t len)
{
    p->bytes_in += len;
    while (!p->rfb_done && len > 0) {
        size_t used = 0;
        struct nb_error err = {0};
        enum rfb_status st = rfb_server_feed(&p->rfb, data, len, &used, &err);
        if (p->rfb.out_len) {
            int w = send_binary(p, p->rfb.out, p->rfb.out_len);
            p->rfb.out_len = 0;
            if (w < 0) {
                return -1;
            }
        }
        data += used;
        len -= used;
        if (st == RFB_ERROR) {
            if (err.code != NB_ERR_AUTH) {
                nb_info("console of %s: the browser broke the RFB handshake: %s",
                        p->target.instance_id, err.msg);
            }
            send_close(p, WS_CLOSE_NORMAL, err.code == NB_ERR_AUTH ? "refused" : "bad handshake");
            return -1;
        }
        p->rfb_done = st == RFB_DONE;
        if (!p->rfb_done && used == 0) {
            break;
        }
    }
    if (p->rfb_done && len > 0) {
        struct iovec iov = {(void *)data, len};
        if (write_all(p->vnc_fd, &iov, 1) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Reads what the browser sent and acts on each WebSocket event; -1 when it is over. */
static int browser_readable(struct proxy *p, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        struct ws_event ev;
        size_t used = ws_decoder_feed(&p->dec, buf, n, &ev);
        buf += used;
        n -= used;
        switch (ev.type) {
        case WS_EV_NONE:
            break;
        case WS_EV_BINARY:
        case WS_EV_TEXT:
            if (from_browser(p, ev.data, ev.len) < 0) {
                return -1;
            }
            break;
        case WS_EV_PING: {
            uint8_t frame[WS_CONTROL_FRAME];
            send_control(p, frame, ws_encode_control(frame, WS_OP_PONG, ev.data, ev.len));
            break;
        }
        case WS_EV_PONG:
            break;
        case WS_EV_CLOSE:
            send_close(p, WS_CLOSE_NORMAL, NULL);
            return -1;
        case WS_EV_ERROR:
            nb_info("console of %s: WebSocket protocol error: %s", p->target.instance_id,
                    ev.error ? ev.error : "?");
            send_close(p, ev.close_code, ev.error);
            return -1;
        }
        if (ev.type == WS_EV_NONE && used == 0) {
            break;
        }
    }
    return 0;
}

static void touch(struct proxy *p, bool closed)
{
    if (p->conn_id <= 0) {
        return;
    }
    struct nb_error err = {0};
    if (gw_console_conn_update(p->gw, p->conn_id, p->bytes_in, p->bytes_out, closed, &err) < 0) {
        nb_warn("console of %s: could not update its connection record: %s", p->target.instance_id,
                err.msg);
    }
}

/* The relay: the browser's RFB handshake, then bytes both ways until either side ends. */
static void *relay(void *arg)
{
    struct proxy *p = arg;
    nb_info("console of %s opened by %s from %s", p->target.instance_id, p->target.user_id,
            p->source);
    struct nb_error err = {0};
    p->conn_id = gw_console_conn_open(p->gw, &p->target, p->source, &err);
    if (p->conn_id < 0) {
        nb_warn("console of %s: could not record the connection: %s", p->target.instance_id,
                err.msg);
        p->conn_id = 0;
    }
    uint8_t *buf = malloc(RELAY_CHUNK);
    int64_t started = nb_monotonic_ms(), touched = started;
    rfb_server_init(&p->rfb, p->fail_reason);
    bool over = !buf || send_binary(p, p->rfb.out, p->rfb.out_len) < 0;
    p->rfb.out_len = 0;
    if (!over && p->extra_len) {
        over = browser_readable(p, p->extra, p->extra_len) < 0;
    }
    while (!over) {
        struct pollfd pfd[2] = {{.fd = p->client_fd, .events = POLLIN},
                                {.fd = p->vnc_fd, .events = POLLIN}};
        /* The display is read only once the browser's handshake is over: its first bytes answer
         * the ClientInit that the browser sends at the end of it. */
        int nfds = p->rfb_done && p->vnc_fd >= 0 ? 2 : 1;
        int r = poll(pfd, (nfds_t)nfds, 1000);
        if (r < 0 && errno != EINTR) {
            break;
        }
        int64_t now = nb_monotonic_ms();
        if (!p->rfb_done && now - started > CLIENT_HANDSHAKE_MS) {
            send_close(p, WS_CLOSE_PROTOCOL, "no VNC handshake from the browser");
            break;
        }
        if (now - touched >= TOUCH_INTERVAL_MS) {
            touch(p, false);
            touched = now;
        }
        if (r <= 0) {
            continue;
        }
        if (pfd[0].revents) {
            ssize_t n = read(p->client_fd, buf, RELAY_CHUNK);
            if (n <= 0) {
                over = n == 0 || errno != EINTR;
            } else {
                over = browser_readable(p, buf, (size_t)n) < 0;
            }
        }
        if (!over && nfds == 2 && pfd[1].revents) {
            ssize_t n = read(p->vnc_fd, buf, RELAY_CHUNK);
            if (n <= 0 && !(n < 0 && errno == EINTR)) {
                send_close(p, WS_CLOSE_GOING_AWAY, "the instance's display closed");
                over = true;
            } else if (n > 0) {
                over = send_binary(p, buf, (size_t)n) < 0;
            }
        }
    }
    free(buf);
    touch(p, true);
    nb_info("console of %s closed (%llu bytes in, %llu out)", p->target.instance_id,
            (unsigned long long)p->bytes_in, (unsigned long long)p->bytes_out);
    struct nb_http_upgraded *up = p->up;
    proxy_free(p);
    /* Last: once closed, the server may stop and the gateway context go away. */
    nb_http_upgraded_close(up);
    return NULL;
}

static void on_upgraded(struct nb_http_upgraded *up, int fd, const char *extra, size_t extra_len,
                        void *ctx)
{
    struct proxy *p = ctx;
    if (!up) {
        proxy_free(p); /* the upgrade did not happen: the browser saw an error or left */
        return;
    }
    p->up = up;
    p->client_fd = fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) {
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    if (extra_len && (p->extra = malloc(extra_len))) {
        memcpy(p->extra, extra, extra_len);
        p->extra_len = extra_len;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, relay, p);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        nb_err("console of %s: could not start its relay thread: %s", p->target.instance_id,
               strerror(rc));
        proxy_free(p);
        nb_http_upgraded_close(up);
    }
}

/* Answers with an error document, recorded in the request log. */
static void refuse(struct rest_call *c, int64_t t0, int status, const char *code,
                   const char *message)
{
    c->status = status;
    rest_finish(c, t0, code, rest_error_doc(code, message, c->request_id));
}

void gw_console_proxy_handle(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    int64_t t0 = rest_now_us();
    char request_id[40];
    nb_uuid_new(request_id, sizeof request_id);
    nb_log_set_request_id(request_id);
    struct gw_principal who = {.role = GW_ROLE_READER};
    struct rest_call c = {.gw = gw,
                          .req = req,
                          .arena = nb_http_req_arena(req),
                          .request_id = request_id,
                          .who = &who};
    struct ws_handshake hs = {
        .method = nb_http_req_method(req),
        .upgrade = nb_http_req_header(req, "Upgrade"),
        .connection = nb_http_req_header(req, "Connection"),
        .version = nb_http_req_header(req, "Sec-WebSocket-Version"),
        .key = nb_http_req_header(req, "Sec-WebSocket-Key"),
        .protocols = nb_http_req_header(req, "Sec-WebSocket-Protocol"),
    };
    char accept[WS_ACCEPT_LEN + 1];
    const char *protocol = NULL;
    long long max_proxies = DEFAULT_MAX_PROXIES;
    struct gw_console_target target;
    struct proxy *p = NULL;
    enum ws_handshake_result hr = ws_check_handshake(&hs, accept, &protocol, &c.err);
    if (hr == WS_HANDSHAKE_VERSION) {
        nb_http_reply_header(req, "Sec-WebSocket-Version", "13");
        refuse(&c, t0, 426, "UpgradeRequired", c.err.msg);
        goto out;
    }
    if (hr != WS_HANDSHAKE_OK) {
        refuse(&c, t0, 400, "InvalidParameterValue", c.err.msg);
        goto out;
    }
    /* An Origin of another site is a page elsewhere trying to use a ticket it should not
     * have: browsers always send Origin with WebSocket requests. */
    const char *origin = nb_http_req_header(req, "Origin");
    const char *host = nb_http_req_header(req, "Host");
    if (origin && host) {
        const char *o = strstr(origin, "://");
        if (!o || strcmp(o + 3, host)) {
            refuse(&c, t0, 403, "InvalidOrigin",
                   "the console may be opened only from pages of this gateway");
            goto out;
        }
    }
    if (nb_config_get_int(gw->cfg, "console.max_vnc", DEFAULT_MAX_PROXIES, 0, 100000, &max_proxies,
                          &c.err) < 0 ||
        atomic_fetch_add(&live_proxies, 1) >= max_proxies) {
        atomic_fetch_sub(&live_proxies, 1);
        refuse(&c, t0, 503, "Unavailable",
               "too many consoles are open on this gateway; try again later");
        goto out;
    }
    const char *source = nb_http_req_remote_addr(req);
    if (gw_console_ticket_consume(gw, nb_http_req_query(req, "token"), source, &target, &c.err) <
        0) {
        atomic_fetch_sub(&live_proxies, 1);
        bool refused = c.err.code == NB_ERR_AUTH;
        refuse(&c, t0, refused ? 403 : 503, refused ? "InvalidConsoleTicket" : "Unavailable",
               c.err.msg);
        goto out;
    }
    snprintf(who.tenant_id, sizeof who.tenant_id, "%s", target.tenant_id);
    snprintf(who.user_id, sizeof who.user_id, "%s", target.user_id);
    snprintf(who.key_id, sizeof who.key_id, "console-ticket:%s", target.user_id);
    p = calloc(1, sizeof *p);
    if (!p) {
        atomic_fetch_sub(&live_proxies, 1);
        refuse(&c, t0, 500, "InternalError", "out of memory");
        goto out;
    }
    p->gw = gw;
    p->target = target;
    p->client_fd = -1;
    snprintf(p->source, sizeof p->source, "%s", source ? source : "");
    ws_decoder_init(&p->dec, 0);
    struct nb_error derr = {0};
    p->vnc_fd = open_display(gw, &target, c.arena, &derr);
    if (p->vnc_fd < 0) {
        /* The ticket is spent: tell the browser why inside the RFB handshake, which noVNC
         * shows, rather than fail the WebSocket with no word. */
        nb_warn("console of %s: %s%s%s", target.instance_id, derr.msg, derr.detail[0] ? ": " : "",
                derr.detail);
        if (asprintf(&p->fail_reason, "The instance's display cannot be reached: %s", derr.msg) <
            0) {
            p->fail_reason = NULL;
        }
    }
    c.status = 101;
    rest_finish(&c, t0, NULL, NULL); /* answers 503 itself if the log cannot record it */
    if (c.status != 101) {
        proxy_free(p);
        goto out;
    }
    nb_http_reply_header(req, "Sec-WebSocket-Accept", accept);
    if (protocol) {
        nb_http_reply_header(req, "Sec-WebSocket-Protocol", protocol);
    }
    nb_http_reply_upgrade(req, "websocket", on_upgraded, p);
out:
    nb_log_set_request_id(NULL);
}
