/* The compute nodes' API: see node_api.h. */
#include "node_api.h"

#include <string.h>

#include <jansson.h>

#include "gateway.h"
#include "svc_hosts.h"
#include "svc_metadata.h"
#include "svc_netctl.h"

#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/json.h"
#include "nubo/log.h"

static int status_of(const struct nb_error *err)
{
    switch (err->code) {
    case NB_ERR_AUTH:
        return 401;
    case NB_ERR_INVALID:
    case NB_ERR_MISSING:
        return 400;
    case NB_ERR_NOT_FOUND:
        return 404;
    case NB_ERR_UNAVAILABLE:
    case NB_ERR_DB:
    case NB_ERR_TIMEOUT:
        return 503;
    default:
        return 500;
    }
}

void node_api_handle(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    struct nb_error err = {0};
    const char *method = nb_http_req_method(req), *path = nb_http_req_path(req);
    char host_id[32];
    json_t *reply = NULL, *body = NULL;
    if (gw_node_authenticate(gw, nb_http_req_header(req, "Authorization"), host_id, &err) < 0) {
        goto done;
    }
    if (!strcmp(path, "/internal/v1/heartbeat") && !strcmp(method, "POST")) {
        size_t len;
        const char *text = nb_http_req_body(req, &len);
        if ((body = nb_json_parse_object(text, len, &err))) {
            reply = gw_node_heartbeat(gw, host_id, body, &err);
        }
    } else if (!strcmp(path, "/internal/v1/instances") && !strcmp(method, "GET")) {
        reply = gw_node_instances(gw, host_id, &err);
    } else if (!strcmp(path, "/internal/v1/network") && !strcmp(method, "GET")) {
        /* Built as text by PostgreSQL: passed through without a parse. */
        char *text = gw_node_network(gw, host_id, nb_http_req_query(req, "known"),
                                     nb_http_req_query(req, "tunnel_ip"), &err);
        if (text) {
            nb_http_reply_owned(req, 200, "application/json", text, strlen(text));
            return;
        }
    } else if (!strcmp(path, "/internal/v1/network/applied") && !strcmp(method, "POST")) {
        size_t len;
        const char *text = nb_http_req_body(req, &len);
        if ((body = nb_json_parse_object(text, len, &err)) &&
            gw_node_network_applied(gw, host_id, body, &err) == 0) {
            reply = json_pack("{s:b}", "ok", 1);
        }
    } else if (!strcmp(path, "/internal/v1/metadata") && !strcmp(method, "GET")) {
        reply = gw_node_metadata(gw, host_id, nb_http_req_query(req, "interface"), &err);
    } else {
        nb_error_set(&err, NB_ERR_NOT_FOUND, "no such node resource: %s %s", method, path);
    }

done:
    if (reply) {
        nb_http_reply_json(req, 200, reply);
    } else {
        if (err.code != NB_ERR_AUTH && err.code != NB_ERR_NOT_FOUND) {
            nb_warn("node call %s %s failed: %s", method, path, err.msg);
        }
        json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", nb_errcode_name(err.code),
                              "message", err.msg);
        nb_http_reply_json(req, status_of(&err), e);
        json_decref(e);
    }
    json_decref(reply);
    json_decref(body);
}
