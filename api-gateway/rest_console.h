/* The REST side of the web console: sign-in, the session and sign-out (/v1/session), console
 * passwords (PUT /v1/admin/users/{id}/password, PUT /v1/me/password), and the session cookie as
 * a way to authenticate any /v1 call (rest_authenticate() turns to it when a request carries the
 * cookie and no signature).
 *
 * A cookie-authenticated call that may change something (any method but GET, HEAD and OPTIONS)
 * must carry the session's CSRF token in X-CSRF-Token, and no Origin header of another site:
 * otherwise 403 InvalidCsrfToken. The request log records such calls with the tenant and
 * "console:<user id>" as the access key.
 *
 * Also the tickets of the in-browser VM console (POST /v1/instances/{id}/vnc). */
#ifndef NUBO_GW_REST_CONSOLE_H
#define NUBO_GW_REST_CONSOLE_H

#include <jansson.h>
#include <stdbool.h>

struct gw_principal;
struct nb_http_req;
struct rest_call;

/* True when 'c' carries a console session cookie and no SigV4 signature. */
bool rest_session_presented(const struct rest_call *c);

/* Authenticates 'c' by its session cookie into '*who' (and checks the CSRF token of calls that
 * change things). NULL when it may go on, else the error reply, with '*code' and c->status set. */
json_t *rest_session_authenticate(struct rest_call *c, struct gw_principal *who, const char **code);

/* The HTTP handler of /v1/session (GET, POST, DELETE); 'arg' is the gateway context. */
void rest_session_handle(struct nb_http_req *req, void *arg);

/* Route handlers of the REST table (rest_routes.c). */
int rest_put_user_password(struct rest_call *c);
int rest_put_my_password(struct rest_call *c);
/* POST /v1/instances/{id}/vnc: a single-use ticket for the instance's screen (svc_console.h). */
int rest_post_instance_vnc(struct rest_call *c);

struct gw_console_ticket;
/* A ticket as the REST API shows it: {instance_id, token, expires_in, websocket, viewer}. */
json_t *rest_console_ticket_json(const struct gw_console_ticket *t);

#endif
