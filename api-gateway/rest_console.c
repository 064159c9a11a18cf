/* The REST side of the web console (see rest_console.h). */
#include "rest_console.h"

#include "auth.h"
#include "gateway.h"
#include "rest_api.h"
#include "session.h"
#include "svc_console.h"
#include "svc_passwords.h"

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/http.h"
#include "nubo/id.h"
#include "nubo/json.h"
#include "nubo/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CSRF_CODE "InvalidCsrfToken"

static bool safe_method(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS");
}

bool rest_session_presented(const struct rest_call *c)
{
    if (!c->gw->sessions || nb_http_req_header(c->req, "Authorization") ||
        strstr(nb_http_req_raw_query(c->req), "X-Amz-Signature=")) {
        return false;
    }
    return nb_http_req_cookie(c->req, gw_session_cookie_name(c->gw->sessions)) != NULL;
}

/* False when the request carries an Origin header naming another host than the one it was
 * sent to: a page of another site (SameSite=Strict already keeps the cookie from such calls;
 * this is the second lock). */
static bool same_origin(struct nb_http_req *req)
{
    const char *origin = nb_http_req_header(req, "Origin");
    const char *host = nb_http_req_header(req, "Host");
    if (!origin) {
        return true;
    }
    const char *sep = strstr(origin, "://");
    return host && sep && (!strncmp(origin, "http://", 7) || !strncmp(origin, "https://", 8)) &&
           !strcasecmp(sep + 3, host);
}

static json_t *refuse(struct rest_call *c, const char **code, int status, const char *what,
                      const char *message)
{
    *code = what;
    c->status = status;
    return rest_error_doc(what, message, c->request_id);
}

/* Looks up the session of 'c''s cookie into '*sess' and, for a call that changes things, checks
 * its origin and CSRF token. NULL when it may go on, else the error reply. */
static json_t *check_session(struct rest_call *c, struct gw_session *sess, const char **code)
{
    const char *token = nb_http_req_cookie(c->req, gw_session_cookie_name(c->gw->sessions));
    if (!token) {
        return refuse(c, code, 401, "AuthFailure", "not signed in to the console");
    }
    switch (gw_session_lookup(c->gw->sessions, token, sess, &c->err)) {
    case GW_SESSION_OK:
        break;
    case GW_SESSION_UNAVAILABLE:
        nb_err("console session lookup unavailable: %s", c->err.msg);
        return refuse(c, code, 503, "Unavailable", "the service is unavailable, try again");
    case GW_SESSION_INVALID:
        return refuse(c, code, 401, "AuthFailure", c->err.msg);
    }
    if (safe_method(nb_http_req_method(c->req))) {
        return NULL;
    }
    if (!same_origin(c->req)) {
        return refuse(c, code, 403, CSRF_CODE, "a request from another site was refused");
    }
    if (!gw_session_csrf_ok(sess, nb_http_req_header(c->req, GW_SESSION_CSRF_HEADER))) {
        return refuse(c, code, 403, CSRF_CODE,
                      "a console request that changes something needs the session's "
                      "X-CSRF-Token header");
    }
    return NULL;
}

json_t *rest_session_authenticate(struct rest_call *c, struct gw_principal *who, const char **code)
{
    struct gw_session *sess = nb_arena_zalloc(c->arena, sizeof *sess);
    json_t *denied = check_session(c, sess, code);
    /* Also when refused for its CSRF token: the log then says whose session it was. */
    *who = sess->who;
    return denied;
}

static json_t *session_doc(const struct gw_session *s)
{
    char when[32];
    time_t t = (time_t)s->expires_unix;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "user_id", s->who.user_id, "user_name",
                     s->user_name, "tenant_id", s->who.tenant_id, "tenant_name", s->tenant_name,
                     "role", gw_role_name(s->who.role), "csrf_token", s->csrf, "expires_at", when);
}

/* POST /v1/session {"account", "user", "password"}: signs in, sets the cookie. */
static json_t *sign_in(struct rest_call *c, const char **code)
{
    /* A form of another site can post text/plain or a form body, never JSON: asking for JSON
     * keeps other sites from signing a browser in to an account of theirs. */
    const char *type = nb_http_req_header(c->req, "Content-Type");
    if (!type || strncasecmp(type, "application/json", 16) || !same_origin(c->req)) {
        return refuse(c, code, 403, CSRF_CODE,
                      "sign in from the console's page, with a JSON body "
                      "(Content-Type: application/json)");
    }
    size_t len;
    const char *body = nb_http_req_body(c->req, &len);
    static const char *const fields[] = {"account",           "user", "password", "access_key_id",
                                         "secret_access_key", NULL};
    const char *account = NULL, *user = NULL, *password = NULL, *key_id = NULL, *secret = NULL;
    c->body = nb_json_parse_object(body, len, &c->err);
    bool by_key = c->body && json_object_get(c->body, "access_key_id");
    if (!c->body || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        (by_key ? nb_json_get_string(c->body, "access_key_id", true, &key_id, &c->err) < 0 ||
                      nb_json_get_string(c->body, "secret_access_key", true, &secret, &c->err) < 0
                : nb_json_get_string(c->body, "account", true, &account, &c->err) < 0 ||
                      nb_json_get_string(c->body, "user", true, &user, &c->err) < 0 ||
                      nb_json_get_string(c->body, "password", true, &password, &c->err) < 0)) {
        return refuse(c, code, 400,
                      c->err.code == NB_ERR_MISSING ? "MissingParameter" : "InvalidParameterValue",
                      c->err.msg);
    }
    struct gw_session *s = nb_arena_zalloc(c->arena, sizeof *s);
    char token[GW_SESSION_TOKEN_LEN + 1];
    const char *source = nb_http_req_remote_addr(c->req);
    const char *agent = nb_http_req_header(c->req, "User-Agent");
    /* Either an account's user and password, or an access key pair (as the CLI's). */
    int rc = by_key ? gw_session_sign_in_key(c->gw->sessions, key_id, secret, source, agent, token,
                                             s, &c->err)
                    : gw_session_sign_in(c->gw->sessions, account, user, password, source, agent,
                                         token, s, &c->err);
    if (rc == 0) {
        return refuse(c, code, 401, "AuthFailure", c->err.msg);
    }
    if (rc < 0) {
        return rest_failure_doc(c, code);
    }
    struct gw_principal *who = nb_arena_zalloc(c->arena, sizeof *who);
    *who = s->who;
    c->who = who;
    char cookie[256];
    gw_session_set_cookie(c->gw->sessions, token, cookie, sizeof cookie);
    memset(token, 0, sizeof token);
    nb_http_reply_header(c->req, "Set-Cookie", cookie);
    nb_info("console sign-in: user %s of tenant %s", s->who.user_id, s->who.tenant_id);
    return session_doc(s);
}

void rest_session_handle(struct nb_http_req *req, void *arg)
{
    struct gw_ctx *gw = arg;
    int64_t t0 = rest_now_us();
    char request_id[40];
    nb_uuid_new(request_id, sizeof request_id);
    nb_log_set_request_id(request_id);
    struct rest_call c = {
        .gw = gw, .req = req, .arena = nb_http_req_arena(req), .request_id = request_id};
    const char *code = NULL, *method = nb_http_req_method(req);
    json_t *doc;
    c.status = 200;
    nb_http_reply_header(req, "Cache-Control", "no-store");
    if (!gw->sessions) {
        doc = refuse(&c, &code, 503, "Unavailable", "console sign-in is off on this gateway");
    } else if (!strcmp(method, "POST")) {
        doc = sign_in(&c, &code);
    } else {
        struct gw_session *s = nb_arena_zalloc(c.arena, sizeof *s);
        doc = check_session(&c, s, &code);
        struct gw_principal *who = nb_arena_zalloc(c.arena, sizeof *who);
        *who = s->who;
        c.who = who;
        if (!doc && !strcmp(method, "DELETE")) {
            const char *token = nb_http_req_cookie(req, gw_session_cookie_name(gw->sessions));
            if (gw_session_sign_out(gw->sessions, token, &c.err) < 0) {
                doc = rest_failure_doc(&c, &code);
            } else {
                char cookie[256];
                gw_session_set_cookie(gw->sessions, NULL, cookie, sizeof cookie);
                nb_http_reply_header(req, "Set-Cookie", cookie);
                doc = json_pack("{s:b}", "signed_out", true);
            }
        } else if (!doc) {
            doc = session_doc(s);
        }
    }
    rest_finish(&c, t0, code, doc);
    nb_log_set_request_id(NULL);
}

/* PUT /v1/admin/users/{id}/password {"password"}. */
int rest_put_user_password(struct rest_call *c)
{
    static const char *const fields[] = {"password", NULL};
    const char *password;
    if (!c->body || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        nb_json_get_string(c->body, "password", true, &password, &c->err) < 0) {
        if (!c->body) {
            nb_error_set(&c->err, NB_ERR_MISSING, "this request needs a JSON object body");
        }
        nb_error_reason(&c->err, c->err.code == NB_ERR_MISSING ? "MissingParameter"
                                                               : "InvalidParameterValue");
        return -1;
    }
    if (gw_password_set(c->gw, c->who, c->args[0], password, &c->err) < 0) {
        return -1;
    }
    c->reply = json_pack("{s:s, s:b}", "user_id", c->args[0], "password_set", true);
    return 0;
}

/* PUT /v1/me/password {"current_password", "password"}: the caller's own. */
int rest_put_my_password(struct rest_call *c)
{
    static const char *const fields[] = {"current_password", "password", NULL};
    const char *current = NULL, *password;
    if (!c->body || nb_json_check_fields(c->body, fields, &c->err) < 0 ||
        nb_json_get_string(c->body, "current_password", false, &current, &c->err) < 0 ||
        nb_json_get_string(c->body, "password", true, &password, &c->err) < 0) {
        if (!c->body) {
            nb_error_set(&c->err, NB_ERR_MISSING, "this request needs a JSON object body");
        }
        nb_error_reason(&c->err, c->err.code == NB_ERR_MISSING ? "MissingParameter"
                                                               : "InvalidParameterValue");
        return -1;
    }
    /* From the console, the session in use stays signed in; the user's others do not. */
    const char *keep =
        !strncmp(c->who->key_id, GW_SESSION_KEY_PREFIX, strlen(GW_SESSION_KEY_PREFIX))
            ? nb_http_req_cookie(c->req, gw_session_cookie_name(c->gw->sessions))
            : NULL;
    if (gw_password_change(c->gw, c->who, current, password, keep, &c->err) < 0) {
        return -1;
    }
    c->reply = json_pack("{s:s, s:b}", "user_id", c->who->user_id, "password_set", true);
    return 0;
}

/* A console ticket as JSON (the VDI broker answers with the same shape). */
json_t *rest_console_ticket_json(const struct gw_console_ticket *t)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:s}", "instance_id", t->instance_id, "token", t->token,
                     "expires_in", t->expires_in_s, "websocket", t->websocket, "viewer", t->viewer);
}

int rest_post_instance_vnc(struct rest_call *c)
{
    struct gw_console_ticket t;
    if (gw_console_ticket_issue(c->gw, c->who, c->args[0], c->arena, &t, &c->err) < 0) {
        return -1;
    }
    c->reply = rest_console_ticket_json(&t);
    c->status = 201;
    return 0;
}
