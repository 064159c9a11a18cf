/* nubo-agent's HTTP API, for the scheduler and the gateway (docs/agent-api.md):
 *
 *   GET    /healthz                       {"host_id", "virt_type"} (no credential needed)
 *   GET    /metrics                       Prometheus metrics (no credential needed)
 *   GET    /v1/instances                  our domains and their states
 *   PUT    /v1/instances/{id}             spawn from the JSON spec; 200 {"state": "running"}
 *   GET    /v1/instances/{id}             {"state": "running" | "stopped" | "absent" | ...}
 *   POST   /v1/instances/{id}/stop        {"force": false}; 200 {"state": "stopped"}
 *   POST   /v1/instances/{id}/start       {"reset_root": false, "reset_id": null};
 *                                         200 {"state": "running"}
 *   POST   /v1/instances/{id}/reboot      200 {"state": "running"}
 *   DELETE /v1/instances/{id}             200 {"state": "terminated"}, also when absent
 *   GET    /v1/instances/{id}/console     the serial console's tail (?bytes=N, 64 KiB default)
 *   GET    /v1/instances/{id}/vnc         {"address", "port"} of its VNC display; 404 absent,
 *                                         409 not running
 *   POST   /v1/instances/{id}/snapshot    {"image_id"}: the root disk as a qcow2 image;
 *                                         {"location", "sha256", "size_bytes", "format"}
 *   GET    /v1/snapshots/{image_id}?sig=  the snapshot's bytes, for any holder of the signed
 *                                         URL (other nodes' image caches); no token needed
 *
 * Every /v1 call needs "Authorization: Bearer <node token>". Errors are
 * {"error": {"code": "<nubo error code>", "message": "..."}} with 400, 401, 404, 409, 503 or
 * 504 (a libvirt call that hit its deadline), 500 otherwise. All operations are idempotent. */
#include "agent.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virt.h"

#include "nubo/crypto.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/json.h"
#include "nubo/log.h"
#include "nubo/metrics.h"

#define CONSOLE_DEFAULT (64 * 1024)
#define CONSOLE_MAX     (1024 * 1024)

static int status_of(enum nb_errcode code)
{
    switch (code) {
    case NB_ERR_INVALID:
    case NB_ERR_MISSING:
        return 400;
    case NB_ERR_AUTH:
        return 401;
    case NB_ERR_NOT_FOUND:
        return 404;
    case NB_ERR_CONFLICT:
        return 409;
    case NB_ERR_UNAVAILABLE:
        return 503;
    case NB_ERR_TIMEOUT:
        return 504;
    default:
        return 500;
    }
}

static void reply_error(struct nb_http_req *req, const struct nb_error *err)
{
    char msg[2 * NB_ERROR_MSG_MAX + 4];
    snprintf(msg, sizeof msg, "%s%s%s", err->msg, err->detail[0] ? ": " : "", err->detail);
    json_t *e =
        json_pack("{s:{s:s, s:s}}", "error", "code",
                  err->reason[0] ? err->reason : nb_errcode_name(err->code), "message", msg);
    nb_http_reply_json(req, status_of(err->code), e);
    json_decref(e);
}

static void reply_state(struct nb_http_req *req, const char *state)
{
    json_t *o = json_pack("{s:s}", "state", state);
    nb_http_reply_json(req, 200, o);
    json_decref(o);
}

static bool authorized(struct agent_ctx *a, struct nb_http_req *req)
{
    const char *h = nb_http_req_header(req, "Authorization");
    size_t want = strlen(a->token);
    return h && !strncmp(h, "Bearer ", 7) && strlen(h + 7) == want &&
           nb_ct_equal(h + 7, a->token, want);
}

static void handle_healthz(struct nb_http_req *req, void *arg)
{
    struct agent_ctx *a = arg;
    json_t *o = json_pack("{s:s, s:s}", "host_id", a->host_id, "virt_type", a->virt_type);
    nb_http_reply_json(req, 200, o);
    json_decref(o);
}

static void list_instances(struct agent_ctx *a, struct nb_http_req *req)
{
    struct nb_error err = {0};
    struct agent_virt_domain *doms;
    size_t n;
    if (agent_virt_list(a->virt, &doms, &n, &err) < 0) {
        reply_error(req, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "id", doms[i].id, "tenant_id",
                                             doms[i].tenant, "state",
                                             agent_virt_state_name(doms[i].state)));
    }
    free(doms);
    json_t *o = json_pack("{s:o}", "instances", arr);
    nb_http_reply_json(req, 200, o);
    json_decref(o);
}

/* The host part of 'hostport' ("h", "h:port", "[v6]" or "[v6]:port") into 'out'. */
static void host_of(const char *hostport, char *out, size_t size)
{
    size_t len;
    if (hostport[0] == '[') {
        hostport++;
        len = strcspn(hostport, "]");
    } else {
        /* A bare IPv6 address has several colons and no port. */
        const char *colon = strchr(hostport, ':');
        len = colon && !strchr(colon + 1, ':') ? (size_t)(colon - hostport) : strlen(hostport);
    }
    snprintf(out, size, "%.*s", (int)len, hostport);
}

/* Where a caller of request 'req' reaches the VNC displays: agent.vnc_listen, unless that is a
 * wildcard, which a caller cannot connect to; then the address by which this caller reached the
 * agent (its Host header, which names this node as the caller sees it), or the host of
 * agent.url when the request has none. */
static void vnc_address(const struct agent_ctx *a, struct nb_http_req *req, char *out, size_t size)
{
    const char *listen = a->vnc_listen;
    if (strcmp(listen, "0.0.0.0") && strcmp(listen, "::") && strcmp(listen, "[::]") && *listen) {
        snprintf(out, size, "%s", listen);
        return;
    }
    const char *host = nb_http_req_header(req, "Host");
    if (host && *host) {
        host_of(host, out, size);
        return;
    }
    const char *url = strstr(a->advertise_url, "://");
    char hostport[256];
    url = url ? url + 3 : a->advertise_url;
    snprintf(hostport, sizeof hostport, "%.*s", (int)strcspn(url, "/"), url);
    host_of(hostport, out, size);
}

static void handle_instances(struct nb_http_req *req, void *arg)
{
    struct agent_ctx *a = arg;
    struct nb_error err = {0};
    if (!authorized(a, req)) {
        nb_error_set(&err, NB_ERR_AUTH, "this call needs \"Authorization: Bearer <node token>\"");
        reply_error(req, &err);
        return;
    }
    const char *method = nb_http_req_method(req), *path = nb_http_req_path(req);
    if (!strcmp(path, "/v1/instances")) {
        if (strcmp(method, "GET")) {
            nb_error_set(&err, NB_ERR_INVALID, "%s is not supported on /v1/instances", method);
            reply_error(req, &err);
        } else {
            list_instances(a, req);
        }
        return;
    }
    /* /v1/instances/{id}[/verb] */
    const char *rest = path + strlen("/v1/instances/");
    char id[AGENT_VIRT_ID_MAX + 1];
    size_t id_len = strcspn(rest, "/");
    const char *verb = rest[id_len] == '/' ? rest + id_len + 1 : "";
    if (strncmp(path, "/v1/instances/", 14) || id_len == 0 || id_len >= sizeof id) {
        nb_error_set(&err, NB_ERR_NOT_FOUND, "no such resource: %s", path);
        reply_error(req, &err);
        return;
    }
    memcpy(id, rest, id_len);
    id[id_len] = '\0';
    if (!agent_virt_valid_id(id)) {
        nb_error_set(&err, NB_ERR_INVALID, "\"%s\" is not an instance id", id);
        reply_error(req, &err);
        return;
    }
    int rc = -1;
    const char *state = NULL;
    if (!strcmp(method, "PUT") && !*verb) {
        size_t len;
        const char *text = nb_http_req_body(req, &len);
        json_t *spec = nb_json_parse_object(text, len, &err);
        if (spec) {
            rc = agent_spawn(a, id, spec, &err);
            state = "running";
            json_decref(spec);
        }
    } else if (!strcmp(method, "GET") && !*verb) {
        state = agent_instance_state(a, id, &err);
        rc = state ? 0 : -1;
    } else if (!strcmp(method, "DELETE") && !*verb) {
        rc = agent_terminate(a, id, &err);
        state = "terminated";
    } else if (!strcmp(method, "POST") && !strcmp(verb, "stop")) {
        size_t len;
        const char *text = nb_http_req_body(req, &len);
        json_t *body = len ? nb_json_parse_object(text, len, &err) : json_object();
        bool force = false;
        if (body && nb_json_get_bool(body, "force", false, &force, &err) >= 0) {
            rc = agent_stop_instance(a, id, force, &err);
            state = "stopped";
        }
        json_decref(body);
    } else if (!strcmp(method, "POST") && !strcmp(verb, "start")) {
        size_t len;
        const char *text = nb_http_req_body(req, &len);
        json_t *body = len ? nb_json_parse_object(text, len, &err) : json_object();
        bool reset = false;
        const char *reset_id = NULL;
        if (body && nb_json_get_bool(body, "reset_root", false, &reset, &err) >= 0 &&
            nb_json_get_string(body, "reset_id", false, &reset_id, &err) >= 0) {
            rc = agent_start_instance(a, id, reset, reset_id, &err);
            state = "running";
        }
        json_decref(body);
    } else if (!strcmp(method, "POST") && !strcmp(verb, "reboot")) {
        rc = agent_reboot_instance(a, id, &err);
        state = "running";
    } else if (!strcmp(method, "POST") && !strcmp(verb, "snapshot")) {
        size_t len;
        const char *text = nb_http_req_body(req, &len);
        json_t *body = nb_json_parse_object(text, len, &err);
        const char *image_id;
        if (body && nb_json_get_string(body, "image_id", true, &image_id, &err) >= 0) {
            json_t *snap = agent_snapshot(a, id, image_id, &err);
            if (snap) {
                nb_http_reply_json(req, 200, snap);
                json_decref(snap);
                json_decref(body);
                return;
            }
        }
        json_decref(body);
    } else if (!strcmp(method, "GET") && !strcmp(verb, "vnc")) {
        int port;
        if (agent_vnc_port(a, id, &port, &err) == 0) {
            char address[256];
            vnc_address(a, req, address, sizeof address);
            json_t *o = json_pack("{s:s, s:i}", "address", address, "port", port);
            nb_http_reply_json(req, 200, o);
            json_decref(o);
            return;
        }
    } else if (!strcmp(method, "GET") && !strcmp(verb, "console")) {
        const char *b = nb_http_req_query(req, "bytes");
        long bytes = b ? strtol(b, NULL, 10) : CONSOLE_DEFAULT;
        if (bytes <= 0 || bytes > CONSOLE_MAX) {
            bytes = CONSOLE_DEFAULT;
        }
        char *text = agent_console(a, id, (size_t)bytes, &err);
        if (text) {
            nb_http_reply_owned(req, 200, "text/plain; charset=utf-8", text, strlen(text));
            return;
        }
    } else {
        nb_error_set(&err, NB_ERR_NOT_FOUND, "no such resource: %s %s", method, path);
    }
    if (rc == 0) {
        reply_state(req, state);
    } else {
        reply_error(req, &err);
    }
}

/* GET /v1/snapshots/{image_id}?sig=...: the signature is the capability (agent_snapshot_sig()),
 * so that image caches of other nodes can fetch it without this node's token. */
static void handle_snapshot(struct nb_http_req *req, void *arg)
{
    struct agent_ctx *a = arg;
    struct nb_error err = {0};
    const char *image_id = nb_http_req_path(req) + strlen("/v1/snapshots/");
    const char *sig = nb_http_req_query(req, "sig");
    char want[33];
    if (strlen(image_id) > 32 || strchr(image_id, '/') || strchr(image_id, '.') || !sig ||
        strlen(sig) != 32) {
        nb_error_set(&err, NB_ERR_NOT_FOUND, "no such snapshot");
        reply_error(req, &err);
        return;
    }
    agent_snapshot_sig(a, image_id, want);
    if (!nb_ct_equal(want, sig, 32)) {
        nb_error_set(&err, NB_ERR_AUTH, "the snapshot URL's signature is not valid");
        reply_error(req, &err);
        return;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/snapshots/%s.qcow2", a->state_dir, image_id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        if (fd >= 0) {
            close(fd);
        }
        nb_error_set(&err, NB_ERR_NOT_FOUND, "no such snapshot: %s", image_id);
        reply_error(req, &err);
        return;
    }
    nb_http_reply_file(req, 200, "application/octet-stream", fd, (uint64_t)sb.st_size);
}

static void handle_metrics(struct nb_http_req *req, void *arg)
{
    struct agent_ctx *a = arg;
    char *text = nb_metrics_render(a->metrics);
    nb_http_reply_owned(req, 200, "text/plain; version=0.0.4", text, strlen(text));
}

int agent_http_routes(struct agent_ctx *a, struct nb_http_server *srv)
{
    if (nb_http_route(srv, "GET", "/healthz", handle_healthz, a) < 0 ||
        nb_http_route(srv, "GET", "/metrics", handle_metrics, a) < 0 ||
        nb_http_route(srv, "GET", "/v1/snapshots/*", handle_snapshot, a) < 0 ||
        nb_http_route(srv, NULL, "/v1/instances*", handle_instances, a) < 0) {
        return -1;
    }
    return 0;
}
