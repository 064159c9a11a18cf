/* The REST/JSON API front door (see rest_api.h). */
#include "rest_api.h"

#include "auth.h"
#include "ec2_params.h"
#include "ec2_xml.h"
#include "gateway.h"
#include "reqlog.h"
#include "rest_console.h"
#include "rest_vdi.h"

#include "nubo/arena.h"
#include "nubo/http.h"
#include "nubo/id.h"
#include "nubo/json.h"
#include "nubo/log.h"
#include "nubo/metrics.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* Matches 'path' against 'pattern', filling 'args' with the {} segments (arena copies). */
static bool match(const char *pattern, const char *path, struct nb_arena *a, const char **args)
{
    int n = 0;
    while (*pattern && *path) {
        if (!strncmp(pattern, "{}", 2)) {
            size_t len = strcspn(path, "/");
            if (len == 0 || n == 3) {
                return false;
            }
            args[n++] = nb_arena_strndup(a, path, len);
            path += len;
            pattern += 2;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && !*path;
}

/* Finds the route; sets '*method_ok' to false when the path exists with other methods only. */
static const struct rest_route *find_route(struct rest_call *c, const char *method,
                                           const char *path, bool *path_known)
{
    *path_known = false;
    for (const struct rest_route *r = rest_routes; r->method; r++) {
        const char *args[3] = {NULL, NULL, NULL};
        if (match(r->pattern, path, c->arena, args)) {
            *path_known = true;
            if (!strcmp(r->method, method)) {
                memcpy(c->args, args, sizeof args);
                return r;
            }
        }
    }
    return NULL;
}

static const char *error_code(const struct nb_error *err)
{
    return err->reason[0] ? err->reason : ec2_xml_code(err->code);
}

static bool internal(const struct nb_error *err)
{
    return err->code == NB_ERR_INTERNAL || err->code == NB_ERR_DB || err->code == NB_ERR_IO ||
           err->code == NB_ERR_UNAVAILABLE || err->code == NB_ERR_TIMEOUT ||
           err->code == NB_ERR_NONE;
}

json_t *rest_error_doc(const char *code, const char *message, const char *request_id)
{
    return json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "message", message, "request_id",
                     request_id);
}

static json_t *error_doc(const char *code, const char *message, const char *request_id)
{
    return rest_error_doc(code, message, request_id);
}

/* Users of the 'desktop' role (VDI, docs/vdi.md) may use the desktop broker and nothing else:
 * checked here, once, for every authenticated REST request (route table, uploads, events). */
static json_t *desktop_user_gate(struct rest_call *c, const char **code)
{
    if (c->who->role != GW_ROLE_DESKTOP ||
        rest_vdi_desktop_user_may(nb_http_req_method(c->req), nb_http_req_path(c->req))) {
        return NULL;
    }
    *code = "UnauthorizedOperation";
    c->status = ec2_xml_status(*code);
    return error_doc(*code,
                     "you are not authorized to perform this operation: users of the desktop "
                     "role may only use the desktop broker (/v1/vdi)",
                     c->request_id);
}

json_t *rest_authenticate(struct rest_call *c, const char **code)
{
    struct gw_principal *who = nb_arena_zalloc(c->arena, sizeof *who);
    c->who = who;
    /* The web console's calls carry a session cookie instead of a signature. */
    if (rest_session_presented(c)) {
        json_t *denied = rest_session_authenticate(c, who, code);
        return denied ? denied : desktop_user_gate(c, code);
    }
    enum gw_auth_result ar = gw_auth_check(c->gw->auth, c->req, time(NULL), who, &c->err);
    if (ar == GW_AUTH_OK) {
        return desktop_user_gate(c, code);
    }
    *code = gw_auth_ec2_code(ar);
    c->status = ec2_xml_status(*code);
    if (ar == GW_AUTH_UNAVAILABLE) {
        nb_err("authentication unavailable: %s", c->err.msg);
        return error_doc(*code, "the service is unavailable, try again", c->request_id);
    }
    return error_doc(*code, c->err.msg, c->request_id);
}

json_t *rest_failure_doc(struct rest_call *c, const char **code)
{
    struct nb_http_req *req = c->req;
    *code = error_code(&c->err);
    c->status = ec2_xml_status(*code);
    if (internal(&c->err)) {
        nb_err("%s %s failed: %s%s%s", nb_http_req_method(req), nb_http_req_path(req), c->err.msg,
               c->err.detail[0] ? "; " : "", c->err.detail);
        return error_doc(*code, "an internal error occurred; it was logged", c->request_id);
    }
    return error_doc(*code, c->err.msg, c->request_id);
}

/* Authenticates, parses and runs the route; returns the reply document and status. */
static json_t *run(struct rest_call *c, const char **code)
{
    struct nb_http_req *req = c->req;
    json_t *denied = rest_authenticate(c, code);
    if (denied) {
        return denied;
    }
    bool path_known;
    const struct rest_route *r =
        find_route(c, nb_http_req_method(req), nb_http_req_path(req), &path_known);
    if (!r) {
        *code = path_known ? "MethodNotAllowed" : "NotFound";
        c->status = path_known ? 405 : 404;
        return error_doc(
            *code, path_known ? "this resource does not support that method" : "no such resource",
            c->request_id);
    }
    const char *query = nb_http_req_raw_query(req);
    c->query = ec2_params_parse(c->arena, query, strlen(query), NULL, 0, &c->err);
    size_t body_len;
    const char *body = nb_http_req_body(req, &body_len);
    int rc = c->query ? 0 : -1;
    if (rc == 0 && body_len > 0) {
        c->body = nb_json_parse_object(body, body_len, &c->err);
        rc = c->body ? 0 : -1;
    }
    if (rc == 0) {
        c->status = 200;
        rc = r->fn(c);
    }
    if (rc < 0) {
        return rest_failure_doc(c, code);
    }
    *code = NULL;
    return c->reply ? c->reply : json_object();
}

int64_t rest_now_us(void)
{
    return now_us();
}

void rest_finish(struct rest_call *c, int64_t t0, const char *code, json_t *doc)
{
    struct gw_ctx *gw = c->gw;
    struct nb_http_req *req = c->req;
    char *action =
        nb_arena_printf(c->arena, "%s %s", nb_http_req_method(req), nb_http_req_path(req));
    /* Bodies may hold secrets (passwords, user data): the log keeps their field names only. */
    json_t *logged = json_object();
    if (c->body) {
        const char *key;
        json_t *v;
        json_object_foreach(c->body, key, v)
        {
            json_object_set_new(logged, key, json_string("(redacted)"));
        }
    }
    char *params = json_dumps(logged, JSON_COMPACT);
    json_decref(logged);
    struct gw_reqlog_record rec = {
        .request_id = c->request_id,
        .time_us = t0,
        .tenant_id = c->who && c->who->tenant_id[0] ? c->who->tenant_id : NULL,
        .access_key_id = c->who && c->who->key_id[0] ? c->who->key_id : NULL,
        .action = action,
        .params_json = params,
        .http_status = c->status,
        .error_code = code,
        .latency_us = now_us() - t0,
        .source_addr = nb_http_req_remote_addr(req),
        .user_agent = nb_http_req_header(req, "User-Agent"),
        .api = GW_REQLOG_API_REST,
    };
    struct nb_error lerr = {0};
    if (gw_reqlog_write(gw->reqlog, &rec, &lerr) < 0) {
        nb_err("could not record request: %s", lerr.msg);
        nb_counter_add(gw->m_log_failures, 1);
        json_decref(doc);
        code = "Unavailable";
        c->status = 503;
        doc = error_doc(code,
                        "the request could not be recorded in the request log; if it changes "
                        "anything it may have taken effect: check before retrying",
                        c->request_id);
    }
    free(params);
    json_decref(c->body);
    c->body = NULL;
    nb_http_reply_header(req, "x-amzn-RequestId", c->request_id);
    if (doc) {
        nb_http_reply_json(req, c->status, doc);
        json_decref(doc);
    }
    nb_counter_add(gw->m_requests, 1);
    if (code) {
        nb_counter_add(gw->m_errors, 1);
    }
    nb_histogram_observe(gw->m_latency, (double)(now_us() - t0) / 1e6);
}

void rest_api_handle(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    int64_t t0 = now_us();
    char request_id[40];
    nb_uuid_new(request_id, sizeof request_id);
    nb_log_set_request_id(request_id);
    struct rest_call c = {
        .gw = gw, .req = req, .arena = nb_http_req_arena(req), .request_id = request_id};
    const char *code = NULL;
    json_t *doc = run(&c, &code);
    rest_finish(&c, t0, code, doc);
    nb_log_set_request_id(NULL);
}

int rest_reply(struct rest_call *c, json_t *v, int status)
{
    if (!v) {
        return -1;
    }
    c->reply = v;
    c->status = status;
    return 0;
}

int rest_need_body(struct rest_call *c)
{
    if (!c->body) {
        nb_error_set(&c->err, NB_ERR_MISSING, "this request needs a JSON object body");
        nb_error_reason(&c->err, "MissingParameter");
        return -1;
    }
    return 0;
}
