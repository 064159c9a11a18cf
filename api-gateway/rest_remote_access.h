/* The REST routes of remote access with WireGuard (rest_remote_access.c, svc_remote_access.h),
 * listed in rest_routes.c's table:
 *     GET/POST /v1/remote-access, GET/DELETE /v1/remote-access/{id},
 *     GET/POST /v1/remote-access/{id}/peers, DELETE /v1/remote-access/{id}/peers/{peer}
 * Same JSON style as /v1/vpcs; creates answer 201, deletes 204. A peer's creation answers the
 * client's configuration (wg-quick's format, without the private key the client keeps) in
 * "client_config". Each handler follows rest_handler (rest_api.h). */
#ifndef NUBO_GW_REST_REMOTE_ACCESS_H
#define NUBO_GW_REST_REMOTE_ACCESS_H

struct rest_call;

int rest_get_ras(struct rest_call *c);
int rest_post_ras(struct rest_call *c);
int rest_get_ra(struct rest_call *c);
int rest_delete_ra(struct rest_call *c);
int rest_get_ra_peers(struct rest_call *c);
int rest_post_ra_peers(struct rest_call *c);
int rest_delete_ra_peer(struct rest_call *c);

#endif
