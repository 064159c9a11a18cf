/* What svc_vdi.c (pools, the broker) and svc_vdi_worker.c (the worker) share: the SQL of a pool
 * row, and the steps both take on desktops and their instances. Private to those two files. */
#ifndef NUBO_GW_SVC_VDI_PRIV_H
#define NUBO_GW_SVC_VDI_PRIV_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "svc_instances.h"

struct gw_ctx;
struct gw_vdi_pool;
struct nb_arena;
struct nb_error;

#define ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* After a launch for a pool failed (quota, image, network), the worker waits this long before
 * it launches for that pool again, instead of failing every pass. */
#define RETRY_AFTER_S "30"

/* A console connection whose gateway has not refreshed it for this long is over (0015). */
#define VNC_LIVE "interval '30 seconds'"

#define TAG_POOL    "nubo:vdi:pool"
#define TAG_DESKTOP "nubo:vdi:desktop"

/* Every pool query: the pool, its counts, whether a launch failed recently, its entitlement. */
/* clang-format off */
#define POOL_SELECT                                                                                \
    "SELECT p.id, p.tenant_id, p.name, p.description, p.image_id, p.instance_type, p.subnet_id, "  \
    "array_to_string(p.security_group_ids, ','), p.size, p.spares, p.persistent, "                 \
    "p.idle_stop_s, p.state, p.last_error, "                                                       \
    ISO("p.last_error_at") ", " ISO("p.created_at") ", "                                           \
    "c.available, c.assigned, c.reserved, c.resetting, c.restarting, c.terminating, c.running, "   \
    "COALESCE(p.last_error_at > now() - interval '" RETRY_AFTER_S " seconds', false), "            \
    "p.entitlement "                                                                               \
    "FROM desktop_pools p CROSS JOIN LATERAL (SELECT "                                             \
    "count(*) FILTER (WHERE d.state = 'available') AS available, "                                 \
    "count(*) FILTER (WHERE d.state = 'assigned') AS assigned, "                                   \
    "count(*) FILTER (WHERE d.state = 'reserved') AS reserved, "                                   \
    "count(*) FILTER (WHERE d.state = 'resetting') AS resetting, "                                 \
    "count(*) FILTER (WHERE d.state = 'restarting') AS restarting, "                               \
    "count(*) FILTER (WHERE d.state = 'terminating') AS terminating, "                             \
    "count(*) FILTER (WHERE i.state = 'running' AND d.state <> 'terminating') AS running "         \
    "FROM desktops d LEFT JOIN instances i ON i.id = d.instance_id WHERE d.pool_id = p.id) c "
/* clang-format on */
#define POOL_COL_PAUSED      23
#define POOL_COL_ENTITLEMENT 24

/* Whether 'a' (NULL allowed) is the string 'b'. */
static inline bool gw_vdi_is(const char *a, const char *b)
{
    return a && !strcmp(a, b);
}

/* Fills '*p' from row 'r' of a POOL_SELECT result; strings are copied into 'a'. */
void gw_vdi_row_to_pool(PGresult *res, int r, struct nb_arena *a, struct gw_vdi_pool *p);

/* Asks for the termination of instance 'id' of 'tenant'; a failure is logged (the worker tries
 * again while the desktop is 'terminating'). */
void gw_vdi_terminate_instance(struct gw_ctx *gw, const char *tenant, const char *id,
                               struct nb_arena *a);

/* Launches the instance of desktop 'desktop_id' of pool 'p' and records it on the desktop, with
 * the desktop id as the launch's client token. Returns 0, or -1 with 'err'. */
int gw_vdi_launch(struct gw_ctx *gw, const struct gw_vdi_pool *p, const char *desktop_id,
                  struct nb_arena *a, struct nb_error *err);

/* Forgets desktop 'id' whose launch failed with 'why', and notes the failure on its pool. */
void gw_vdi_launch_failed(struct gw_ctx *gw, const char *pool_id, const char *id,
                          const struct nb_error *why);

/* Applies 'op' to instance 'id' of 'tenant' for the broker; a refusal is logged. Returns 0 or
 * -1. */
int gw_vdi_instance_op(struct gw_ctx *gw, const char *tenant, enum gw_instance_op op,
                       const char *id, struct nb_arena *a);

/* Ends the session on desktop 'id' (of 'user' only, unless NULL; only if idle 'idle_s' seconds,
 * unless NULL). Returns 1 with '*persistent' and the instance id in 'instance' (of 'size'
 * bytes) when a session ended, 0 when there was none, -1 with 'err'. */
int gw_vdi_end_session(struct gw_ctx *gw, const char *id, const char *user, const char *idle_s,
                       bool *persistent, char *instance, size_t size, struct nb_error *err);

#endif
