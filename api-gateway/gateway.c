/* nubo-gateway's life cycle: open the context, register routes, serve, stop (see gateway.h). */
#include "gateway.h"

#include "auth.h"
#include "ec2_api.h"
#include "reqlog.h"
#include "node_api.h"
#include "blob_url.h"
#include "store.h"
#include "rest_upload.h"
#include "rest_api.h"
#include "console.h"
#include "events.h"
#include "session.h"
#include "svc_vdi.h"

#include "nubo/arena.h"
#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/id.h"
#include "nubo/log.h"
#include "nubo/metrics.h"
#include "nubo/migrate.h"
#include "nubo/pg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The image store the gateway streams uploads into (the same backend nubo-imaged uses). */
static int open_image_store(struct gw_ctx *gw, struct nb_error *err)
{
    const struct nb_config *cfg = gw->cfg;
    long long max_bytes;
    if (nb_config_get_int(cfg, "images.max_bytes", 64LL << 30, 1, 1LL << 46, &max_bytes, err) < 0) {
        return -1;
    }
    gw->image_max_bytes = (uint64_t)max_bytes;
    snprintf(gw->imaged_url, sizeof gw->imaged_url, "%s",
             nb_config_get(cfg, "imaged.url", "http://127.0.0.1:8777"));
    img_blob_url_key(gw->master_key, gw->url_key);
    snprintf(gw->import_url_prefixes, sizeof gw->import_url_prefixes, "%s",
             nb_config_get(cfg, "images.import_url_prefixes", ""));
    gw->store = img_store_open_config(cfg, err);
    return gw->store ? 0 : -1;
}

struct gw_ctx *gw_open(const struct nb_config *cfg, struct nb_error *err)
{
    struct gw_ctx *gw = calloc(1, sizeof *gw);
    if (!gw) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    gw->cfg = cfg;
    snprintf(gw->region, sizeof gw->region, "%s", nb_config_get(cfg, "region", GW_DEFAULT_REGION));
    snprintf(gw->address, sizeof gw->address, "%s",
             nb_config_get(cfg, "http.address", "127.0.0.1"));

    const char *key_path = nb_config_get(cfg, "master_key", "var/master.key");
    if (nb_master_key_load(key_path, true, gw->master_key, err) < 0) {
        goto fail;
    }

    long long pool_size;
    if (nb_config_get_int(cfg, "db.pool_size", 8, 1, 256, &pool_size, err) < 0) {
        goto fail;
    }
    const char *conninfo = nb_config_get(cfg, "db.conninfo", NULL);
    if (!conninfo) {
        nb_error_set(err, NB_ERR_MISSING, "no database configured: set db.conninfo");
        nb_error_detail(err, "e.g. --set db.conninfo='host=/tmp port=5432 dbname=nubo' or "
                             "NUBO_DB_CONNINFO in the environment");
        goto fail;
    }
    gw->pool = nb_pg_pool_new(conninfo, (int)pool_size, err);
    if (!gw->pool) {
        goto fail;
    }

    bool migrate;
    if (nb_config_get_bool(cfg, "db.migrate", true, &migrate, err) < 0) {
        goto fail;
    }
    if (migrate) {
        struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, 10000, err);
        if (!conn) {
            goto fail;
        }
        const char *dir = nb_config_get(cfg, "db.migrations", GW_DEFAULT_MIGRATIONS);
        int n = nb_migrate(conn, dir, err);
        nb_pg_release(conn);
        if (n < 0) {
            goto fail;
        }
        if (n > 0) {
            nb_info("applied %d schema migration(s) from \"%s\"", n, dir);
        }
    }
    gw->metrics = nb_metrics_new();
    gw->m_requests = nb_metrics_counter(gw->metrics, "nubo_gateway_requests_total",
                                        "API requests answered", NULL);
    gw->m_errors = nb_metrics_counter(gw->metrics, "nubo_gateway_errors_total",
                                      "API requests answered with an error", NULL);
    gw->m_log_failures = nb_metrics_counter(gw->metrics, "nubo_gateway_reqlog_failures_total",
                                            "requests refused because their log record could "
                                            "not be committed",
                                            NULL);
    gw->m_latency = nb_metrics_histogram(gw->metrics, "nubo_gateway_request_seconds",
                                         "time from arrival to reply", NULL);
    gw->auth = gw_auth_new(gw->pool, gw->master_key, gw->region);
    gw->sessions = gw_console_open_sessions(gw, err);
    if (!gw->sessions) {
        goto fail;
    }
    if (open_image_store(gw, err) < 0) {
        goto fail;
    }
    return gw;

fail:
    gw_close(gw);
    return NULL;
}

/* GET /healthz: 200 when the gateway can reach its database, 503 otherwise. */
static void handle_healthz(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    struct nb_error err = {0};
    json_t *body = json_object();
    int status = 200;
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, 2000, &err);
    PGresult *res = conn ? nb_pg_exec(conn, "SELECT 1", 0, NULL, &err) : NULL;
    if (res) {
        PQclear(res);
        json_object_set_new(body, "status", json_string("ok"));
        json_object_set_new(body, "database", json_string("ok"));
    } else {
        status = 503;
        json_object_set_new(body, "status", json_string("degraded"));
        json_object_set_new(body, "database", json_string(err.msg));
    }
    nb_pg_release(conn);
    json_object_set_new(body, "region", json_string(gw->region));
    nb_http_reply_json(req, status, body);
    json_decref(body);
}

/* Answers a request no API takes with a JSON error, recorded in the request log like every
 * API request. */
static void answer_unrouted(struct gw_ctx *gw, struct nb_http_req *req, int status,
                            const char *code, const char *message)
{
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    char request_id[40];
    nb_uuid_new(request_id, sizeof request_id);
    json_t *doc = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "message", message,
                            "request_id", request_id);
    char *action = nb_arena_printf(nb_http_req_arena(req), "%s %s", nb_http_req_method(req),
                                   nb_http_req_path(req));
    struct gw_reqlog_record rec = {
        .request_id = request_id,
        .time_us = (int64_t)t0.tv_sec * 1000000 + t0.tv_nsec / 1000,
        .action = action,
        .http_status = status,
        .error_code = code,
        .source_addr = nb_http_req_remote_addr(req),
        .user_agent = nb_http_req_header(req, "User-Agent"),
        .api = GW_REQLOG_API_OTHER,
    };
    struct nb_error err = {0};
    if (gw_reqlog_write(gw->reqlog, &rec, &err) < 0) {
        nb_err("could not record request: %s", err.msg);
        status = 503;
    }
    nb_http_reply_header(req, "x-amzn-RequestId", request_id);
    nb_http_reply_json(req, status, doc);
    json_decref(doc);
}

/* Any other path or method: 404, or 405 for "/" with a method other than GET and POST.
 * /healthz and /metrics are operational endpoints and are not recorded. */
static void handle_unrouted(struct nb_http_req *req, void *arg)
{
    if (!strcmp(nb_http_req_path(req), "/")) {
        nb_http_reply_header(req, "Allow", "GET, POST");
        answer_unrouted(arg, req, 405, "MethodNotAllowed", "the EC2 API takes GET and POST");
    } else {
        answer_unrouted(arg, req, 404, "NotFound", "no such resource");
    }
}

/* A body over http.max_body: 413, recorded. */
static void handle_too_large(struct nb_http_req *req, void *arg)
{
    answer_unrouted(arg, req, 413, "RequestEntityTooLarge",
                    "the request body is over the limit of this gateway (http.max_body)");
}

/* GET /metrics: Prometheus text format. */
static void handle_metrics(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    char *text = nb_metrics_render(gw->metrics);
    nb_http_reply(req, 200, "text/plain; version=0.0.4", text, strlen(text));
    free(text);
}

int gw_start(struct gw_ctx *gw, struct nb_error *err)
{
    long long port, threads, max_body, conn_memory;
    if (nb_config_get_int(gw->cfg, "http.port", atoi(GW_DEFAULT_PORT), 0, 65535, &port, err) < 0 ||
        nb_config_get_int(gw->cfg, "http.threads", 128, 1, 1024, &threads, err) < 0 ||
        nb_config_get_int(gw->cfg, "http.max_body", 1 << 20, 1024, 1LL << 32, &max_body, err) < 0 ||
        nb_config_get_int(gw->cfg, "http.conn_memory", 1 << 20, 16 << 10, 64 << 20, &conn_memory,
                          err) < 0) {
        return -1;
    }
    struct nb_http_config hc = {
        .address = gw->address,
        .port = (int)port,
        .threads = (int)threads,
        .max_body = (size_t)max_body,
        .conn_memory = (size_t)conn_memory,
        .timeout_s = 30,
        .tls_cert = nb_config_get(gw->cfg, "http.tls_cert", NULL),
        .tls_key = nb_config_get(gw->cfg, "http.tls_key", NULL),
    };
    gw->reqlog = gw_reqlog_new(gw->pool, NULL, err);
    if (!gw->reqlog) {
        return -1;
    }
    gw->http = nb_http_server_new(&hc, err);
    if (!gw->http || gw_console_start(gw, err) < 0) {
        return -1;
    }
    if (rest_upload_routes(gw->http, gw) < 0 ||
        nb_http_route(gw->http, "GET", "/healthz", handle_healthz, gw) < 0 ||
        nb_http_route(gw->http, "GET", "/metrics", handle_metrics, gw) < 0 ||
        nb_http_route(gw->http, NULL, "/v1*", rest_api_handle, gw) < 0 ||
        nb_http_route(gw->http, NULL, "/internal/v1*", node_api_handle, gw) < 0 ||
        nb_http_route(gw->http, "POST", "/", ec2_api_handle, gw) < 0 ||
        nb_http_route(gw->http, "GET", "/", ec2_api_handle, gw) < 0 ||
        nb_http_route(gw->http, NULL, "/*", handle_unrouted, gw) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not register the routes");
        return -1;
    }
    nb_http_on_too_large(gw->http, handle_too_large, gw);
    if (nb_http_server_start(gw->http, err) < 0) {
        return -1;
    }
    gw->port = nb_http_server_port(gw->http);
    if (!(gw->vdi = gw_vdi_worker_start(gw, err))) {
        return -1;
    }
    const char *public = nb_config_get(gw->cfg, "public_endpoint", NULL);
    if (public) {
        snprintf(gw->endpoint, sizeof gw->endpoint, "%s", public);
    } else {
        snprintf(gw->endpoint, sizeof gw->endpoint, "%s:%d",
                 strcmp(gw->address, "0.0.0.0") ? gw->address : "127.0.0.1", gw->port);
    }
    return 0;
}

void gw_stop(struct gw_ctx *gw)
{
    if (gw) {
        gw_vdi_worker_stop(gw->vdi);
        gw->vdi = NULL;
    }
    if (gw && gw->http) {
        nb_http_server_stop(gw->http);
    }
}

void gw_close(struct gw_ctx *gw)
{
    if (!gw) {
        return;
    }
    gw_vdi_worker_stop(gw->vdi);
    nb_http_server_free(gw->http);
    gw_events_free(gw->events);
    gw_console_free(gw->console);
    gw_sessions_free(gw->sessions);
    gw_reqlog_free(gw->reqlog);
    gw_auth_free(gw->auth);
    nb_pg_pool_free(gw->pool);
    nb_metrics_free(gw->metrics);
    img_store_close(gw->store);
    memset(gw->master_key, 0, sizeof gw->master_key);
    memset(gw->url_key, 0, sizeof gw->url_key);
    free(gw);
}
