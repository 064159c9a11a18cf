/* The REST/JSON API front door: "/v1/...", the API of the web console, the SDK and the CLI.
 * Same authentication (SigV4, any service name in the scope) and the same service layer as the
 * EC2 API; only the shapes differ. Described in docs/openapi.yaml.
 *
 * Errors are {"error": {"code": "<EC2-style code>", "message": "...", "request_id": "..."}} with
 * the HTTP status EC2 would use for that code. Every request is recorded in the request log
 * before it is answered. */
#ifndef NUBO_GW_REST_API_H
#define NUBO_GW_REST_API_H

#include <jansson.h>

#include "nubo/error.h"

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_http_req;
struct ec2_params;

struct rest_call {
    struct gw_ctx *gw;
    struct nb_http_req *req;
    struct nb_arena *arena;
    const struct gw_principal *who;
    const char *request_id;
    const char *args[3];            /* the path's {} segments, in order */
    const struct ec2_params *query; /* the query string's arguments */
    json_t *body;                   /* the JSON body (an object), or NULL */
    int status;                     /* 200 unless the handler says otherwise */
    json_t *reply;                  /* the handler's result (a new reference) */
    struct nb_error err;
};

typedef int (*rest_handler)(struct rest_call *c);

struct rest_route {
    const char *method;
    const char *pattern; /* "/v1/instances/{}/stop": {} matches one segment */
    rest_handler fn;
};

/* The routes, in rest_routes.c, terminated by a NULL method. */
extern const struct rest_route rest_routes[];

/* For handlers outside the route table (streamed uploads and downloads, rest_upload.c): */
/* Authenticates c->req into c->who; NULL when it may go on, else the error reply to send. */
json_t *rest_authenticate(struct rest_call *c, const char **code);
/* The error reply for c->err (sets c->status and '*code'; internal errors are logged). */
json_t *rest_failure_doc(struct rest_call *c, const char **code);
json_t *rest_error_doc(const char *code, const char *message, const char *request_id);
/* Records the call in the request log, then replies with 'doc' (taken) and c->status; a NULL
 * 'doc' records only (the caller has replied or replies itself). If the record cannot be
 * written the reply becomes a 503 instead (and a caller's own reply is then refused). */
void rest_finish(struct rest_call *c, int64_t t0, const char *code, json_t *doc);
int64_t rest_now_us(void);

/* Helpers of the route handlers (rest_routes.c and the rest_*.c files beside it): */
/* Sets the reply 'v' (taken) with 'status'; a NULL 'v' (the service failed, c->err set) gives -1. */
int rest_reply(struct rest_call *c, json_t *v, int status);
/* -1 with c->err (MissingParameter) when the request has no JSON object body, else 0. */
int rest_need_body(struct rest_call *c);

/* The HTTP handler for "/v1*", registered by gw_start(); 'arg' is the gateway context. */
void rest_api_handle(struct nb_http_req *req, void *arg);

#endif
