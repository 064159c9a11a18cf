/* libnubo: hosted VDI desktops (vdi.c): a service provider's desktop pools, and the connection
 * broker that gives the provider's users a desktop (an instance of the provider's tenant) and a
 * console ticket for it (docs/vdi.md of the nubo source tree). Part of the public API of
 * <nubo/nubo.h>, which includes this file: include that one, never this one alone. The
 * conventions of nubo.h (errors, ownership, thread-safety) hold here too.
 *
 * Roles: pools are created, changed and deleted by the tenant's writers (member, admin). Any
 * user of the tenant, the "desktop" role included, may list the pools, connect to one and use
 * the desktops of their own sessions; a desktop user may do nothing else (every other call is
 * refused with "UnauthorizedOperation"). */
#ifndef NUBO_VDI_H
#define NUBO_VDI_H

#ifndef NUBO_NUBO_H
#error "include <nubo/nubo.h>, not <nubo/vdi.h>"
#endif

/* --- pools --------------------------------------------------------------------------------- */

/* How many of a pool's desktops are in each state (see struct nubo_vdi_desktop). */
struct nubo_vdi_desktop_counts {
    long long available, assigned, reserved, resetting, restarting, terminating;
    long long total;   /* all but terminating: what counts against the pool's size */
    long long running; /* desktops whose instance is running */
};

struct nubo_vdi_pool {
    char *id; /* "pool-" and 17 hex digits */
    char *owner_id;
    char *name;
    char *description;
    char *image_id;
    char *instance_type;
    char *subnet_id;           /* NULL: the desktops have no VPC interface */
    char **security_group_ids; /* 'n_security_groups' of them */
    size_t n_security_groups;
    int size;         /* the most desktops the pool has */
    int spares;       /* how many unassigned desktops it keeps running */
    bool persistent;  /* a user gets back the same desktop at every connect */
    int idle_stop_s;  /* a session idle this long is signed out and stopped; 0: never */
    char *state;      /* active, deleting */
    char *last_error; /* the last failed launch, NULL when none */
    char *last_error_at;
    char *created_at;
    struct nubo_vdi_desktop_counts desktops;
    char *json;
    /* Who may use it: "all" (any user of the tenant) or "listed" (its admins and members, and
     * the desktop users granted it: nubo_vdi_pool_grant()). NULL in a desktop user's list, and
     * from a gateway older than entitlements. Last, so that the struct only grew. */
    char *entitlement;
};

struct nubo_vdi_pool_list {
    struct nubo_vdi_pool *items;
    size_t n;
};

/* What nubo_vdi_pool_create() sends. Set it up with nubo_vdi_pool_params_init(), then fill it.
 * It carries no size, so it never grows: later fields will come in a new struct. */
struct nubo_vdi_pool_params {
    const char *name;                      /* required: unique among the tenant's active pools */
    const char *description;               /* NULL: "" */
    const char *image_id;                  /* required */
    const char *instance_type;             /* required */
    const char *subnet_id;                 /* NULL: none */
    const char *const *security_group_ids; /* 'n_security_groups' groups of the subnet's VPC */
    size_t n_security_groups;
    int size;   /* required: 1-1000 */
    int spares; /* 0-1000, at most 'size' */
    bool persistent;
    int idle_stop_s; /* 0-2592000, 0: never; -1 (as init sets it): the API's default (1800) */
};

/* Sets '*params' to nothing given: NULL strings, size 0 (which the API refuses, so set it),
 * no spares, not persistent, the API's default idle time. Thread-safe. */
NUBO_API void nubo_vdi_pool_params_init(struct nubo_vdi_pool_params *params);

/* Creates a desktop pool of the caller's tenant (a writer's call); the gateway's worker then
 * launches its spares. Returns the pool, which the caller frees with nubo_vdi_pool_free(), or
 * NULL with '*err' set: "InvalidPoolName.Duplicate", "InvalidAMIID.NotFound",
 * "InvalidParameterValue" (spares above the size, a size out of range...). Not retried. */
NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_create(struct nubo_client *client,
                                                    const struct nubo_vdi_pool_params *params,
                                                    struct nubo_error *err);

/* As nubo_vdi_pool_create(), with the pool's 'entitlement': "all" (any user of the tenant may
 * connect), "listed" (only the desktop users granted it), or NULL (the API's default, "all"). */
NUBO_API struct nubo_vdi_pool *
nubo_vdi_pool_create_entitled(struct nubo_client *client, const struct nubo_vdi_pool_params *params,
                              const char *entitlement, struct nubo_error *err);

/* Returns the tenant's pools in name order, or NULL with '*err' set. A desktop user gets the
 * active pools they may use only, each with 'id', 'name', 'description' and 'persistent' alone (the other
 * fields NULL and 0). The caller frees the list with nubo_vdi_pool_list_free(). */
NUBO_API struct nubo_vdi_pool_list *nubo_vdi_pools_list(struct nubo_client *client,
                                                        struct nubo_error *err);

/* Returns the pool 'id', or NULL with '*err' set ("InvalidPoolID.NotFound", also for another
 * tenant's). The caller frees it with nubo_vdi_pool_free(). Retried (a GET). */
NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_get(struct nubo_client *client, const char *id,
                                                 struct nubo_error *err);

/* Changes the pool 'id''s 'size' (1-1000), 'spares' (0-1000, at most the size) and
 * 'idle_stop_s' (0-2592000, 0: never); -1 leaves a field as it is, and at least one must be
 * given. A smaller size makes the worker terminate unassigned desktops beyond it. Returns the
 * pool as it now is, which the caller frees with nubo_vdi_pool_free(), or NULL with '*err' set.
 * Not retried. */
NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_update(struct nubo_client *client, const char *id,
                                                    int size, int spares, int idle_stop_s,
                                                    struct nubo_error *err);

/* As nubo_vdi_pool_update(), with the pool's 'entitlement' too ("all", "listed"; NULL leaves it
 * as it is), in the same request: at least one of the four must be given. A switch to "listed"
 * ends the sessions of the users not granted the pool, as their sign-out would. */
NUBO_API struct nubo_vdi_pool *
nubo_vdi_pool_update_entitled(struct nubo_client *client, const char *id, int size, int spares,
                              int idle_stop_s, const char *entitlement, struct nubo_error *err);

/* Deletes the pool 'id': every session ends (its meter stops), every desktop's instance is
 * terminated, and the pool is "deleting" until the worker has removed them. Returns the pool in
 * that state, which the caller frees with nubo_vdi_pool_free(), or NULL with '*err' set
 * ("InvalidPoolID.NotFound"). Not retried. */
NUBO_API struct nubo_vdi_pool *nubo_vdi_pool_delete(struct nubo_client *client, const char *id,
                                                    struct nubo_error *err);
NUBO_API void nubo_vdi_pool_free(struct nubo_vdi_pool *pool);
NUBO_API void nubo_vdi_pool_list_free(struct nubo_vdi_pool_list *list);

/* --- entitlements -------------------------------------------------------------------------- */

/* A desktop user's grant of a pool. */
struct nubo_vdi_grant {
    char *pool_id;
    char *user_id;
    char *user_name;
    char *granted_at;
    char *json;
};

struct nubo_vdi_grant_list {
    struct nubo_vdi_grant *items;
    size_t n;
};

/* Returns the grants of the pool 'pool_id' in user name order (a writer's call), or NULL with
 * '*err' set. The caller frees the list with nubo_vdi_grant_list_free(). Retried (a GET). */
NUBO_API struct nubo_vdi_grant_list *
nubo_vdi_pool_users(struct nubo_client *client, const char *pool_id, struct nubo_error *err);

/* Grants the pool 'pool_id' to the user 'user_id', a "desktop" user of the tenant (a writer's
 * call); granting again changes nothing. Returns the grant, which the caller frees with
 * nubo_vdi_grant_free(), or NULL with '*err' set: "InvalidParameterValue" (a user of another
 * role), "InvalidUserID.NotFound" (unknown, or another tenant's), "InvalidPoolID.NotFound".
 * Retried (a PUT: idempotent). */
NUBO_API struct nubo_vdi_grant *nubo_vdi_pool_grant(struct nubo_client *client, const char *pool_id,
                                                    const char *user_id, struct nubo_error *err);

/* Revokes the grant of the pool 'pool_id' to the user 'user_id' (a writer's call); revoking
 * what is not granted is no error. In a "listed" pool the user's session on it ends, as their
 * sign-out would. Returns 0, or -1 with '*err' set. Retried (a DELETE: idempotent). */
NUBO_API int nubo_vdi_pool_revoke(struct nubo_client *client, const char *pool_id,
                                  const char *user_id, struct nubo_error *err);
NUBO_API void nubo_vdi_grant_free(struct nubo_vdi_grant *grant);
NUBO_API void nubo_vdi_grant_list_free(struct nubo_vdi_grant_list *list);

/* --- desktops and the broker --------------------------------------------------------------- */

struct nubo_vdi_desktop {
    char *id; /* "dsk-" and 17 hex digits */
    char *pool_id;
    char *pool_name;
    char *instance_id; /* NULL while it is being launched */
    /* available: no session, ready to be handed out; assigned: in a session of 'user_id';
     * reserved: a persistent pool's, signed out, kept for its owner; resetting, restarting:
     * signed out of a non-persistent pool, its instance restarting with its root disk
     * recreated from the image; terminating: its pool was deleted or shrunk */
    char *state;
    char *instance_state; /* NULL while it is being launched */
    char *owner_id;       /* a persistent pool's: whose desktop it is; else NULL */
    char *user_id;        /* whose session it is in; NULL when none */
    char *assigned_at;    /* NULL when not in a session */
    char *last_active_at;
    char *private_ip; /* NULL without a subnet */
    bool ready;       /* in a session and its instance runs: its console can open */
    char *json;
};

struct nubo_vdi_desktop_list {
    struct nubo_vdi_desktop *items;
    size_t n;
};

/* Returns every desktop of the pool 'pool_id' (a writer's view), or NULL with '*err' set. The
 * caller frees the list with nubo_vdi_desktop_list_free(). */
NUBO_API struct nubo_vdi_desktop_list *
nubo_vdi_pool_desktops(struct nubo_client *client, const char *pool_id, struct nubo_error *err);

/* Returns the desktops of the caller's own sessions and, in persistent pools, those the caller
 * owns, or NULL with '*err' set. The caller frees the list with nubo_vdi_desktop_list_free(). */
NUBO_API struct nubo_vdi_desktop_list *nubo_vdi_my_desktops(struct nubo_client *client,
                                                            struct nubo_error *err);

/* The broker: gives the caller a desktop of the pool 'pool_id' and starts a session on it (its
 * desktop-hours metered). In order: the desktop of the caller's session in progress; in a
 * persistent pool, the one the caller owns; an available one; a new one while the pool is below
 * its size. Its instance may still be launching or starting: 'ready' tells, and
 * nubo_vdi_desktop_wait() waits for it. Returns the desktop, which the caller frees with
 * nubo_vdi_desktop_free(), or NULL with '*err' set ("InsufficientDesktopCapacity" when the pool
 * is full, "InvalidPoolID.NotFound"). Not retried, though connecting again is harmless: it gives
 * back the session in progress. */
NUBO_API struct nubo_vdi_desktop *nubo_vdi_connect(struct nubo_client *client, const char *pool_id,
                                                   struct nubo_error *err);

/* Returns the desktop 'id' (the caller's own, or any of the tenant's for a writer), or NULL with
 * '*err' set ("InvalidDesktopID.NotFound"). The caller frees it with nubo_vdi_desktop_free().
 * Retried (a GET). */
NUBO_API struct nubo_vdi_desktop *nubo_vdi_desktop_get(struct nubo_client *client, const char *id,
                                                       struct nubo_error *err);

/* Called by nubo_vdi_desktop_wait() after every poll with the desktop as it is now and the
 * seconds waited so far; a non-zero return stops the wait (it then fails with "Cancelled"). */
typedef int (*nubo_vdi_wait_fn)(const struct nubo_vdi_desktop *desktop, double elapsed_s,
                                void *arg);

/* Polls the desktop 'id' every 'poll_ms' milliseconds (0: 1000) until it is ready (in the
 * caller's session, its instance running), for at most 'timeout_s' seconds. Returns it, which
 * the caller frees with nubo_vdi_desktop_free(), or NULL with '*err' set: "Timeout" (the last
 * state seen is in the message), "IncorrectState" (the desktop left its session: signed out,
 * its pool deleted), "Cancelled", or an API error. 'progress' may be NULL. */
NUBO_API struct nubo_vdi_desktop *nubo_vdi_desktop_wait(struct nubo_client *client, const char *id,
                                                        double timeout_s, int poll_ms,
                                                        nubo_vdi_wait_fn progress, void *arg,
                                                        struct nubo_error *err);

/* Issues a console ticket for the desktop 'id', which must be in the caller's own session
 * ("IncorrectState" when it is the caller's but signed out: connect first; "InvalidDesktopID.
 * NotFound" for another user's). It counts as activity for the idle timer. Returns the ticket,
 * which the caller frees with nubo_console_ticket_free(), or NULL with '*err' set. Not
 * retried: each call issues a new ticket. */
NUBO_API struct nubo_console_ticket *
nubo_vdi_desktop_console(struct nubo_client *client, const char *id, struct nubo_error *err);

/* Ends the session on the desktop 'id' (the caller's own, or any of the tenant's for a writer):
 * its meter stops; a non-persistent pool's desktop is reset to its image and becomes available
 * again, a persistent pool's stays its owner's. Signing out of a desktop in no session does
 * nothing. Returns the desktop as it now is, which the caller frees with
 * nubo_vdi_desktop_free(), or NULL with '*err' set. Not retried. */
NUBO_API struct nubo_vdi_desktop *nubo_vdi_desktop_sign_out(struct nubo_client *client,
                                                            const char *id, struct nubo_error *err);
NUBO_API void nubo_vdi_desktop_free(struct nubo_vdi_desktop *desktop);
NUBO_API void nubo_vdi_desktop_list_free(struct nubo_vdi_desktop_list *list);

#endif
