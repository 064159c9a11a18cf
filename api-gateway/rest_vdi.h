/* The REST routes of hosted VDI desktops (rest_vdi.c, svc_vdi.h, docs/vdi.md), listed in
 * rest_routes.c's table:
 *     GET/POST /v1/vdi/pools, GET/PATCH/DELETE /v1/vdi/pools/{id},
 *     GET /v1/vdi/pools/{id}/desktops, POST /v1/vdi/pools/{id}/connect,
 *     GET /v1/vdi/pools/{id}/users, PUT/DELETE /v1/vdi/pools/{id}/users/{user_id},
 *     GET /v1/vdi/desktops/{id}, POST /v1/vdi/desktops/{id}/console,
 *     POST /v1/vdi/desktops/{id}/sign-out, GET /v1/vdi/my-desktops
 * Each handler follows rest_handler (rest_api.h). */
#ifndef NUBO_GW_REST_VDI_H
#define NUBO_GW_REST_VDI_H

#include <stdbool.h>

struct rest_call;

int rest_get_vdi_pools(struct rest_call *c);
int rest_post_vdi_pools(struct rest_call *c);
int rest_get_vdi_pool(struct rest_call *c);
int rest_patch_vdi_pool(struct rest_call *c);
int rest_delete_vdi_pool(struct rest_call *c);
int rest_get_vdi_pool_desktops(struct rest_call *c);
int rest_post_vdi_connect(struct rest_call *c);
int rest_get_vdi_desktop(struct rest_call *c);
int rest_post_vdi_console(struct rest_call *c);
int rest_post_vdi_sign_out(struct rest_call *c);
int rest_get_vdi_my_desktops(struct rest_call *c);
int rest_get_vdi_pool_users(struct rest_call *c);
int rest_put_vdi_pool_user(struct rest_call *c);
int rest_delete_vdi_pool_user(struct rest_call *c);

/* Whether a user of the 'desktop' role may make request 'method' 'path' of the REST API: the
 * broker's calls only (GET /v1/vdi/pools, POST /v1/vdi/pools/{id}/connect,
 * GET /v1/vdi/desktops/{id}, POST /v1/vdi/desktops/{id}/console and .../sign-out,
 * GET /v1/vdi/my-desktops). Whose desktop it is, the service checks. */
bool rest_vdi_desktop_user_may(const char *method, const char *path);

#endif
