/* The web console's static files, routes and settings (see console.h). */
#include "console.h"

#include "events.h"
#include "gateway.h"
#include "console_proxy.h"
#include "rest_console.h"
#include "session.h"

#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct gw_console {
    int dir_fd; /* the static directory, -1 when it could not be opened */
    char dir[512];
    /* noVNC (Debian's novnc package), served under /console/novnc/ for the VM console page;
     * -1 when it is not installed (the page then says the console cannot load). */
    int novnc_fd;
    char novnc_dir[512];
};

#define NOVNC_PREFIX         "novnc/"
#define GW_NOVNC_DEFAULT_DIR "/usr/share/novnc"

/* What the browser may do with the console's pages: only this origin's scripts, styles, images
 * and connections; no framing; no inline script or style. */
#define CONSOLE_CSP                                                                                \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/* The routes of the console's own API, outside the REST route table (check_openapi.py reads
 * this table too). */
static const struct {
    const char *method;
    const char *path;
    nb_http_handler fn;
} console_api_routes[] = {
    {"GET", "/v1/session", rest_session_handle},
    {"POST", "/v1/session", rest_session_handle},
    {"DELETE", "/v1/session", rest_session_handle},
    {"GET", "/v1/events", gw_events_handle},
    {"GET", "/v1/console/websocket", gw_console_proxy_handle},
};

struct gw_sessions *gw_console_open_sessions(struct gw_ctx *gw, struct nb_error *err)
{
    const struct nb_config *cfg = gw->cfg;
    long long ttl, idle, threads, log2n;
    bool secure;
    if (nb_config_get_int(cfg, "console.session_ttl_s", 12 * 3600, 60, 30 * 86400, &ttl, err) < 0 ||
        nb_config_get_int(cfg, "console.session_idle_s", 3600, 60, 30 * 86400, &idle, err) < 0 ||
        nb_config_get_int(cfg, "console.kdf_threads", 2, 1, 64, &threads, err) < 0 ||
        nb_config_get_int(cfg, "console.scrypt_log2n", GW_KDF_DEFAULT_LOG2N, 10, 22, &log2n, err) <
            0 ||
        nb_config_get_bool(cfg, "console.cookie_secure",
                           nb_config_get(cfg, "http.tls_cert", NULL) != NULL, &secure, err) < 0) {
        return NULL;
    }
    struct gw_session_config sc = {
        .ttl_s = (int)ttl,
        .idle_s = (int)idle,
        .secure_cookie = secure,
        .kdf_threads = (int)threads,
        .kdf = {.log2n = (int)log2n, .r = 8, .p = 1},
    };
    return gw_sessions_new(gw->pool, gw->master_key, &sc, err);
}

int gw_console_file_name(const char *path, char *out, size_t n)
{
    static const char prefix[] = "/console/";
    if (strncmp(path, prefix, sizeof prefix - 1)) {
        return -1;
    }
    const char *name = path + sizeof prefix - 1;
    if (!*name) {
        name = "index.html";
    }
    size_t len = strlen(name);
    if (len > 255 || len >= n) {
        return -1;
    }
    bool segment_start = true;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        if (ch == '/') {
            if (segment_start) {
                return -1; /* an empty segment */
            }
            segment_start = true;
            continue;
        }
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!plain || (segment_start && ch == '.')) {
            return -1; /* ".", "..", hidden files, and anything unusual */
        }
        segment_start = false;
    }
    if (segment_start) {
        return -1; /* ends with '/': a directory */
    }
    memcpy(out, name, len + 1);
    return 0;
}

const char *gw_console_content_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++) {
        if (!strcasecmp(dot, types[i].ext)) {
            return types[i].type;
        }
    }
    return "application/octet-stream";
}

static void reply_text(struct nb_http_req *req, int status, const char *text)
{
    nb_http_reply(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* Opens 'name' (checked by gw_console_file_name()) under 'dir_fd' one segment at a time, following
 * no symbolic link on the way: a link inside the directory cannot lead out of it. Returns the
 * descriptor, or -1. */
static int open_beneath(int dir_fd, const char *name)
{
    int fd = dir_fd;
    char seg[256];
    for (;;) {
        size_t len = strcspn(name, "/");
        memcpy(seg, name, len);
        seg[len] = '\0';
        bool last = name[len] == '\0';
        int next = openat(fd, seg, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
        if (fd != dir_fd) {
            close(fd);
        }
        if (next < 0 || last) {
            return next;
        }
        fd = next;
        name += len + 1;
    }
}

/* GET/HEAD /console and /console/...: the static files. Not recorded in the request log (they
 * are not API calls); the API calls the pages make are. */
static void handle_static(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    const char *method = nb_http_req_method(req);
    const char *path = nb_http_req_path(req);
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        nb_http_reply_header(req, "Allow", "GET, HEAD");
        reply_text(req, 405, "method not allowed\n");
        return;
    }
    if (!strcmp(path, "/console")) {
        nb_http_reply_header(req, "Location", "/console/");
        reply_text(req, 301, "see /console/\n");
        return;
    }
    char name[256];
    /* A decoded NUL ends the path early: refuse it rather than serve what is before it. */
    if (strstr(nb_http_req_raw_path(req), "%00") ||
        gw_console_file_name(path, name, sizeof name) < 0) {
        reply_text(req, 404, "not found\n");
        return;
    }
    const struct gw_console *con = gw->console;
    int dir_fd = con ? con->dir_fd : -1;
    const char *file = name;
    if (con && !strncmp(name, NOVNC_PREFIX, strlen(NOVNC_PREFIX))) {
        dir_fd = con->novnc_fd;
        file = name + strlen(NOVNC_PREFIX);
        if (dir_fd < 0) {
            reply_text(req, 404,
                       "noVNC is not installed on this gateway (console.novnc_dir; Debian "
                       "package novnc)\n");
            return;
        }
    } else if (dir_fd < 0) {
        reply_text(req, 404, "the web console is not installed on this gateway (console.dir)\n");
        return;
    }
    int fd = open_beneath(dir_fd, file);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) {
            close(fd);
        }
        reply_text(req, 404, "not found\n");
        return;
    }
    /* No build step, so no fingerprinted names: every load revalidates, and an unchanged file
     * costs a 304. */
    char etag[64];
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st.st_mtim.tv_nsec);
    nb_http_reply_header(req, "ETag", etag);
    nb_http_reply_header(req, "Cache-Control", "no-cache");
    nb_http_reply_header(req, "X-Content-Type-Options", "nosniff");
    nb_http_reply_header(req, "X-Frame-Options", "DENY");
    nb_http_reply_header(req, "Referrer-Policy", "same-origin");
    nb_http_reply_header(req, "Content-Security-Policy", CONSOLE_CSP);
    const char *inm = nb_http_req_header(req, "If-None-Match");
    if (inm && !strcmp(inm, etag)) {
        close(fd);
        nb_http_reply(req, 304, NULL, "", 0);
        return;
    }
    nb_http_reply_file(req, 200, gw_console_content_type(name), fd, (uint64_t)st.st_size);
}

int gw_console_start(struct gw_ctx *gw, struct nb_error *err)
{
    long long keepalive, max_streams, poll_ms;
    if (nb_config_get_int(gw->cfg, "console.keepalive_s", 15, 1, 300, &keepalive, err) < 0 ||
        nb_config_get_int(gw->cfg, "console.max_streams", 1000, 0, 100000, &max_streams, err) < 0 ||
        nb_config_get_int(gw->cfg, "console.events_poll_ms", 5000, 50, 600000, &poll_ms, err) < 0) {
        return -1;
    }
    struct gw_console *con = calloc(1, sizeof *con);
    if (!con) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    gw->console = con;
    snprintf(con->dir, sizeof con->dir, "%s",
             nb_config_get(gw->cfg, "console.dir", GW_CONSOLE_DEFAULT_DIR));
    con->dir_fd = open(con->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (con->dir_fd < 0) {
        nb_warn("web console off: could not open console.dir \"%s\": %s", con->dir,
                strerror(errno));
    }
    snprintf(con->novnc_dir, sizeof con->novnc_dir, "%s",
             nb_config_get(gw->cfg, "console.novnc_dir", GW_NOVNC_DEFAULT_DIR));
    con->novnc_fd = open(con->novnc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (con->novnc_fd < 0) {
        nb_warn("in-browser VM consoles off: could not open console.novnc_dir \"%s\": %s",
                con->novnc_dir, strerror(errno));
    }
    struct gw_events_config ec = {
        .conninfo = nb_config_get(gw->cfg, "db.conninfo", ""),
        .keepalive_s = (int)keepalive,
        .max_streams = (int)max_streams,
        .poll_ms = (int)poll_ms,
    };
    gw->events = gw_events_new(&ec, err);
    if (!gw->events) {
        return -1;
    }
    for (size_t i = 0; i < sizeof console_api_routes / sizeof console_api_routes[0]; i++) {
        if (nb_http_route(gw->http, console_api_routes[i].method, console_api_routes[i].path,
                          console_api_routes[i].fn, gw) < 0) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not register the console's routes");
            return -1;
        }
    }
    if (nb_http_route(gw->http, NULL, "/console", handle_static, gw) < 0 ||
        nb_http_route(gw->http, NULL, "/console/*", handle_static, gw) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not register the console's routes");
        return -1;
    }
    return 0;
}

void gw_console_free(struct gw_console *console)
{
    if (!console) {
        return;
    }
    if (console->dir_fd >= 0) {
        close(console->dir_fd);
    }
    if (console->novnc_fd >= 0) {
        close(console->novnc_fd);
    }
    free(console);
}
