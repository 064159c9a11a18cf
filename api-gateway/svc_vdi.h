/* Hosted VDI desktops (docs/vdi.md): desktop pools of a service provider's tenant, the connection
 * broker that gives the tenant's users a desktop (an instance of the tenant) and a console ticket
 * for it, and the worker that keeps every pool in shape. Follows the conventions of svc.h; the
 * tables are deploy/migrations/0016_vdi.sql.
 *
 * Roles: pools are created, changed and deleted by writers (member, admin) of the tenant; any
 * user of the tenant, the 'desktop' role included, may connect to a pool and use the desktops
 * of their own sessions. The broker launches, starts and stops instances on behalf of the
 * tenant, whatever the caller's role: a desktop user cannot touch instances directly. */
#ifndef NUBO_GW_SVC_VDI_H
#define NUBO_GW_SVC_VDI_H

#include <stdbool.h>
#include <stddef.h>

#include "svc.h"

struct gw_console_ticket;
struct gw_ctx;
struct gw_principal;
struct nb_arena;
struct nb_error;

/* The number of a pool's desktops in each state, and of those whose instance runs. */
struct gw_vdi_counts {
    int available, assigned, reserved, resetting, restarting, terminating;
    int total;   /* all but terminating: what counts against the pool's size */
    int running; /* desktops whose instance is running */
};

struct gw_vdi_pool {
    const char *id; /* "pool-" + 17 hex */
    const char *owner_id;
    const char *name;
    const char *description;
    const char *image_id;
    const char *instance_type;
    const char *subnet_id; /* NULL: none */
    const char *const *group_ids;
    size_t n_group_ids;
    int size;
    int spares;
    bool persistent;
    int idle_stop_s;         /* 0: never */
    const char *entitlement; /* "all" or "listed" (the users granted the pool) */
    const char *state;       /* "active" or "deleting" */
    const char *last_error;  /* the last failed launch, NULL when none */
    const char *last_error_at;
    const char *created_at; /* ISO 8601, UTC */
    struct gw_vdi_counts counts;
};

/* What POST /v1/vdi/pools gives. */
struct gw_vdi_pool_spec {
    const char *name;
    const char *description; /* NULL: "" */
    const char *image_id;
    const char *instance_type;
    const char *subnet_id; /* NULL: none */
    const char *const *group_ids;
    size_t n_group_ids;
    int size;
    int spares;
    bool persistent;
    int idle_stop_s;
    const char *entitlement; /* "all" or "listed"; NULL: "all" */
};

/* What PATCH /v1/vdi/pools/{id} changes: -1 (NULL) leaves a field as it is. */
struct gw_vdi_pool_patch {
    int size;
    int spares;
    int idle_stop_s;
    const char *entitlement;
};

/* A user's grant of a 'listed' pool. */
struct gw_vdi_grant {
    const char *pool_id;
    const char *user_id;
    const char *user_name;
    const char *granted_at; /* ISO 8601, UTC */
};

struct gw_vdi_desktop {
    const char *id; /* "dsk-" + 17 hex */
    const char *pool_id;
    const char *pool_name;
    const char *instance_id;    /* NULL while being launched */
    const char *state;          /* see deploy/migrations/0016_vdi.sql */
    const char *instance_state; /* NULL while being launched */
    const char *owner_id;       /* persistent pools: whose it is; else NULL */
    const char *user_id;        /* whose session it is in; NULL when none */
    const char *assigned_at;    /* ISO 8601; NULL when not in a session */
    const char *last_active_at;
    const char *private_ip; /* NULL without a subnet */
    bool ready;             /* in a session and its instance runs: the console can open */
};

/* Creates a pool of the caller's tenant (writers only). 'spares' may not exceed 'size'; the
 * name is unique among the tenant's active pools (InvalidPoolName.Duplicate). The worker then
 * launches its spares. Fills '*out'. */
int gw_vdi_pool_create(struct gw_ctx *gw, const struct gw_principal *who,
                       const struct gw_vdi_pool_spec *spec, struct nb_arena *arena,
                       struct gw_vdi_pool *out, struct nb_error *err);

/* The tenant's pools, or pool 'id' alone (InvalidPoolID.NotFound), with their counts, in name
 * order. Any role may list them; a desktop user sees only the pools they may use (those of
 * entitlement "all" and those granted them). Fills '*out' (in 'arena') and '*n'. */
int gw_vdi_pools_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                          struct nb_arena *arena, struct gw_vdi_pool **out, size_t *n,
                          struct nb_error *err);

/* Changes size, spares, idle_stop_s or entitlement of pool 'id' (writers only); spares may not
 * exceed size. A smaller size makes the worker terminate unassigned desktops beyond it. A
 * switch to "listed" ends, in the same transaction, the sessions of the pool's desktop and
 * reader users who hold no grant, as their sign-out would (non-persistent desktops are then
 * reset). Fills '*out'. */
int gw_vdi_pool_update(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                       const struct gw_vdi_pool_patch *patch, struct nb_arena *arena,
                       struct gw_vdi_pool *out, struct nb_error *err);

/* Deletes pool 'id' (writers only): in one transaction it ends every session (their meters
 * stop), moves every desktop to 'terminating' and the pool to 'deleting'; then it asks for the
 * instances' termination. The worker finishes it and removes the rows. Fills '*out' with the
 * pool as it is now. */
int gw_vdi_pool_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                       struct nb_arena *arena, struct gw_vdi_pool *out, struct nb_error *err);

/* Desktops: those of pool 'pool_id' (a writer's view: all of them), or, with 'pool_id' NULL,
 * those of the caller's own sessions and owned desktops (any role). Fills '*out' and '*n'. */
int gw_vdi_desktops_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                             struct nb_arena *arena, struct gw_vdi_desktop **out, size_t *n,
                             struct nb_error *err);

/* Desktop 'id': the caller's own (in their session, or owned), or any of the tenant for a
 * writer; else InvalidDesktopID.NotFound. Fills '*out'. */
int gw_vdi_desktop_get(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                       struct nb_arena *arena, struct gw_vdi_desktop *out, struct nb_error *err);

/* The broker: gives the caller a desktop of pool 'pool_id' and starts a session on it. A pool
 * of entitlement "listed" that the caller (not a writer) holds no grant of is
 * InvalidPoolID.NotFound, as an unknown pool. In order: the desktop of the caller's session in progress; in a persistent pool, the desktop
 * the caller owns; an available desktop (one whose instance runs first); a new desktop, when
 * the pool has fewer than 'size'; else InsufficientDesktopCapacity. The session and its meter
 * start in one transaction; then a new desktop's instance is launched, a stopped one started.
 * Fills '*out' ('ready' once its instance runs: connect again, or GET it, to follow). */
int gw_vdi_connect(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                   struct nb_arena *arena, struct gw_vdi_desktop *out, struct nb_error *err);

/* A console ticket (svc_console.h) for desktop 'id', which must be in the caller's own session
 * (IncorrectState when it is the caller's but not in a session: connect first). Counts as
 * activity for the idle timer. Fills '*out'. */
int gw_vdi_console(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                   struct nb_arena *arena, struct gw_console_ticket *out, struct nb_error *err);

/* Ends the session on desktop 'id' (the caller's own, or any for a writer): its meter stops;
 * in a non-persistent pool the desktop is reset to its image (stopped, its root disk recreated
 * at the next start) and becomes available again; in a persistent pool it stays its owner's
 * ('reserved'). Signing out of a desktop with no session is a no-op. Fills '*out'. */
int gw_vdi_sign_out(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                    struct nb_arena *arena, struct gw_vdi_desktop *out, struct nb_error *err);

/* --- entitlements --------------------------------------------------------------------------- */

/* Whether 'text' names an entitlement ("all" or "listed"). */
bool gw_vdi_entitlement_valid(const char *text);

/* The grants of pool 'pool_id' (writers only), in user name order. Fills '*out' (in 'arena')
 * and '*n'. */
int gw_vdi_grants_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                           struct nb_arena *arena, struct gw_vdi_grant **out, size_t *n,
                           struct nb_error *err);

/* Grants pool 'pool_id' to user 'user_id' (writers only), who must be a 'desktop' user of the
 * caller's tenant (else InvalidUserID.NotDesktopUser; nothing tells another tenant's user from
 * an unknown one). Granting again changes nothing. Fills '*out'. */
int gw_vdi_grant(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                 const char *user_id, struct nb_arena *arena, struct gw_vdi_grant *out,
                 struct nb_error *err);

/* Revokes the grant of pool 'pool_id' to user 'user_id' (writers only; none is no error). In a
 * "listed" pool, the user's session on it ends in the same transaction, as their sign-out
 * would: a non-persistent desktop is then reset, a persistent one stays theirs ('reserved')
 * but cannot be connected to until they are granted the pool again. Stores in '*ended' (may be
 * NULL) whether a session ended. */
int gw_vdi_revoke(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                  const char *user_id, struct nb_arena *arena, bool *ended, struct nb_error *err);

/* --- the worker ------------------------------------------------------------------------- */

struct gw_vdi_worker;

/* Runs one pass over every pool (see docs/vdi.md, "the worker"), unless another gateway is
 * running one (an advisory lock): keeps the spares, stops and signs out idle desktops, resets
 * signed-out non-persistent desktops, replaces desktops whose instance died, terminates the
 * desktops of deleted pools and shrunk pools, and terminates instances of desktops that no
 * longer exist. Returns 0, or -1 with 'err' (a pool's own failure is logged and does not stop
 * the pass). */
int gw_vdi_worker_pass(struct gw_ctx *gw, struct nb_error *err);

/* Starts a thread that runs gw_vdi_worker_pass() every 'vdi.worker_interval_ms' (2000 by
 * default; 0 disables the worker and returns a worker that does nothing). Returns it, or NULL
 * with 'err'; stop it with gw_vdi_worker_stop(). */
struct gw_vdi_worker *gw_vdi_worker_start(struct gw_ctx *gw, struct nb_error *err);

/* Stops the thread after its current pass and frees the worker. Accepts NULL. */
void gw_vdi_worker_stop(struct gw_vdi_worker *w);

#endif
