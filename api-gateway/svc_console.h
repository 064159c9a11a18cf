/* In-browser VM consoles: tickets that open an instance's VNC display through the gateway's
 * WebSocket proxy (console_proxy.c), and the record of live proxied connections
 * (deploy/migrations/0015_console_vnc.sql). Follows the conventions of svc.h.
 *
 * REST: POST /v1/instances/{id}/vnc issues a ticket; GET /v1/console/websocket?token=... opens
 * the display (noVNC in /console/vnc.html does both). */
#ifndef NUBO_GW_SVC_CONSOLE_H
#define NUBO_GW_SVC_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>

struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_error;

/* A ticket as handed to the browser: good once, for 'expires_in_s' seconds. */
struct gw_console_ticket {
    const char *instance_id;
    const char *token; /* a gw_token_new() token (session.h): 43 characters */
    int expires_in_s;
    const char *websocket; /* the path to open: "/v1/console/websocket?token=..." */
    const char *viewer;    /* the console page: "/console/vnc.html?token=...&instance=..." */
};

/* Issues a ticket for the VNC display of instance 'id' of the caller's tenant. The instance
 * must be running (IncorrectInstanceState otherwise); an unknown id, or another tenant's, is
 * InvalidInstanceID.NotFound. Readers may watch a screen too: any role of the tenant may ask. */
int gw_console_ticket_issue(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                            struct nb_arena *arena, struct gw_console_ticket *out,
                            struct nb_error *err);

/* What a consumed ticket opens. */
struct gw_console_target {
    char instance_id[32];
    char tenant_id[16];
    char user_id[32];
};

/* Consumes ticket 'token' (as issued, from a WebSocket request coming from 'source'): fills
 * 'out' and returns 0 once; an unknown, used or expired ticket is -1 with err->reason
 * "InvalidConsoleTicket" (all three alike, so a guesser learns nothing). */
int gw_console_ticket_consume(struct gw_ctx *gw, const char *token, const char *source,
                              struct gw_console_target *out, struct nb_error *err);

/* Records a proxied connection to the target's instance from 'source' (an address, may be NULL);
 * returns its row id (> 0), or -1 with 'err'. */
int64_t gw_console_conn_open(struct gw_ctx *gw, const struct gw_console_target *t,
                             const char *source, struct nb_error *err);

/* Refreshes the connection's seen_at and byte counts; 'closed' also ends it. Returns 0 or -1. */
int gw_console_conn_update(struct gw_ctx *gw, int64_t id, uint64_t bytes_in, uint64_t bytes_out,
                           bool closed, struct nb_error *err);

#endif
