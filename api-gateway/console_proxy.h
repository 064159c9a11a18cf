/* The in-browser VM console's WebSocket proxy: GET /v1/console/websocket?token=<ticket>.
 *
 * The browser (noVNC, web/vnc.html) opens a WebSocket with a single-use ticket
 * (svc_console.h). The gateway consumes the ticket, connects to the instance's VNC display on
 * its node (the address and port its agent gives, GET /v1/instances/{id}/vnc on the agent) and
 * answers VNC Authentication there with the display's password (derived from the node token).
 * Toward the browser it is a VNC server offering security type None: the browser never learns
 * the password, and a ticket opens one connection only. After both handshakes, bytes are
 * relayed as they come, one WebSocket binary frame per read from the display.
 *
 * A refused ticket is 403 InvalidConsoleTicket before the upgrade; a display that cannot be
 * reached after the ticket was taken is told to the browser inside the RFB handshake (noVNC
 * shows the reason). Every connection is a row of vnc_connections while it lives (refreshed
 * every few seconds), which the VDI broker reads to find idle desktops. */
#ifndef NUBO_GW_CONSOLE_PROXY_H
#define NUBO_GW_CONSOLE_PROXY_H

struct nb_http_req;

/* The HTTP handler of GET /v1/console/websocket; 'arg' is the gateway context. */
void gw_console_proxy_handle(struct nb_http_req *req, void *arg);

#endif
