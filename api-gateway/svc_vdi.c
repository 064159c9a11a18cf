/* Hosted VDI desktops: pools and the connection broker (see svc_vdi.h and docs/vdi.md); the
 * worker is svc_vdi_worker.c.
 *
 * A desktop's session and its meter change in one statement or transaction on the desktops
 * table (the meter is its trigger's, 0016_vdi.sql); the instance operations that follow go
 * through the instances service, in their own transactions. Every step is written so that doing
 * it again is harmless: a crash between a desktop's change and its instance's leaves a state
 * the worker's next pass finishes (a launch's client token is the desktop id; a desktop
 * 'resetting' is stopped again; 'restarting' is started again). */
#include "svc_vdi.h"
#include "svc_vdi_priv.h"

#include "auth.h"
#include "gateway.h"
#include "svc_console.h"
#include "svc_instances.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZE        1000
#define MAX_IDLE_STOP_S 2592000 /* 30 days */
#define MAX_GROUPS      16

/* Whether user 'user' (an SQL expression) may use pool 'p' by its entitlement. */
#define ENTITLED(user)                                                                             \
    "(p.entitlement = 'all' OR EXISTS (SELECT 1 FROM desktop_pool_users g "                        \
    "WHERE g.pool_id = p.id AND g.user_id = " user "))"

/* --- helpers ----------------------------------------------------------------------------- */

/* The principal the broker acts as: the pool's tenant, with a role that may launch, start and
 * stop its instances, whoever asked (a desktop user may not do that themselves). */
static void act_as_tenant(const char *tenant_id, struct gw_principal *as)
{
    memset(as, 0, sizeof *as);
    snprintf(as->tenant_id, sizeof as->tenant_id, "%s", tenant_id);
    snprintf(as->user_id, sizeof as->user_id, "vdi-broker");
    as->role = GW_ROLE_MEMBER;
}

/* Pools are managed by the tenant's writers; the 'desktop' role is not one of them, though
 * gw_require_writer() would let it through (it refuses readers only). */
static int require_manager(const struct gw_principal *who, struct nb_error *err)
{
    if (who->role != GW_ROLE_ADMIN && who->role != GW_ROLE_MEMBER) {
        nb_error_set(err, NB_ERR_FORBIDDEN,
                     "you are not authorized to perform this operation: desktop pools are "
                     "managed by the admin and member roles");
        nb_error_reason(err, "UnauthorizedOperation");
        return -1;
    }
    return 0;
}

static bool is_manager(const struct gw_principal *who)
{
    return who->role == GW_ROLE_ADMIN || who->role == GW_ROLE_MEMBER;
}

static int check_form(const char *prefix, const char *id, const char *reason, struct nb_error *err)
{
    return svc_check_id_form(&id, 1, prefix, reason, err);
}

static int pool_not_found(const char *id, struct nb_error *err)
{
    nb_error_set(err, NB_ERR_NOT_FOUND, "The desktop pool '%s' does not exist", id);
    nb_error_reason(err, "InvalidPoolID.NotFound");
    return -1;
}

static int desktop_not_found(const char *id, struct nb_error *err)
{
    nb_error_set(err, NB_ERR_NOT_FOUND, "The desktop '%s' does not exist", id);
    nb_error_reason(err, "InvalidDesktopID.NotFound");
    return -1;
}

/* Splits "a,b,c" (NULL or "": none) into an arena array. */
static void split_ids(const char *text, struct nb_arena *a, const char *const **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!text || !*text) {
        return;
    }
    size_t count = 1;
    for (const char *p = text; *p; p++) {
        count += *p == ',';
    }
    const char **ids = nb_arena_alloc(a, sizeof *ids * count);
    char *copy = nb_arena_strdup(a, text), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        ids[(*n)++] = tok;
    }
    *out = ids;
}

static int int_at(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : atoi(PQgetvalue(res, row, col));
}

/* --- reading pools and desktops ---------------------------------------------------------- */

void gw_vdi_row_to_pool(PGresult *res, int r, struct nb_arena *a, struct gw_vdi_pool *p)
{
    memset(p, 0, sizeof *p);
    p->id = svc_col(res, r, 0, a);
    p->owner_id = svc_col(res, r, 1, a);
    p->name = svc_col(res, r, 2, a);
    p->description = svc_col(res, r, 3, a);
    p->image_id = svc_col(res, r, 4, a);
    p->instance_type = svc_col(res, r, 5, a);
    p->subnet_id = svc_col(res, r, 6, a);
    split_ids(PQgetvalue(res, r, 7), a, &p->group_ids, &p->n_group_ids);
    p->size = int_at(res, r, 8);
    p->spares = int_at(res, r, 9);
    p->persistent = !strcmp(PQgetvalue(res, r, 10), "t");
    p->idle_stop_s = int_at(res, r, 11);
    p->entitlement = svc_col(res, r, POOL_COL_ENTITLEMENT, a);
    p->state = svc_col(res, r, 12, a);
    p->last_error = svc_col(res, r, 13, a);
    p->last_error_at = svc_col(res, r, 14, a);
    p->created_at = svc_col(res, r, 15, a);
    struct gw_vdi_counts *c = &p->counts;
    c->available = int_at(res, r, 16);
    c->assigned = int_at(res, r, 17);
    c->reserved = int_at(res, r, 18);
    c->resetting = int_at(res, r, 19);
    c->restarting = int_at(res, r, 20);
    c->terminating = int_at(res, r, 21);
    c->running = int_at(res, r, 22);
    c->total = c->available + c->assigned + c->reserved + c->resetting + c->restarting;
}

/* Reads pool 'id' of 'tenant' into '*out' on 'conn'. Returns 1, 0 when there is none, -1. */
static int read_pool(struct nb_pg_conn *conn, const char *tenant, const char *id,
                     struct nb_arena *a, struct gw_vdi_pool *out, struct nb_error *err)
{
    const char *p[] = {tenant, id};
    PGresult *res = nb_pg_exec(conn, POOL_SELECT "WHERE p.tenant_id = $1 AND p.id = $2", 2, p, err);
    if (!res) {
        return -1;
    }
    int n = PQntuples(res);
    if (n) {
        gw_vdi_row_to_pool(res, 0, a, out);
    }
    PQclear(res);
    return n ? 1 : 0;
}

/* clang-format off */
#define DESKTOP_SELECT                                                                             \
    "SELECT d.id, d.pool_id, p.name, d.instance_id, d.state, i.state, d.owner_id, "                \
    "d.assigned_user, " ISO("d.assigned_at") ", " ISO("d.last_active_at") ", "                     \
    "(SELECT host(n.private_ip) FROM network_interfaces n "                                        \
    "WHERE n.instance_id = d.instance_id AND n.device_index = 0) "                                 \
    "FROM desktops d JOIN desktop_pools p ON p.id = d.pool_id "                                    \
    "LEFT JOIN instances i ON i.id = d.instance_id "
/* clang-format on */

static void row_to_desktop(PGresult *res, int r, struct nb_arena *a, struct gw_vdi_desktop *d)
{
    memset(d, 0, sizeof *d);
    d->id = svc_col(res, r, 0, a);
    d->pool_id = svc_col(res, r, 1, a);
    d->pool_name = svc_col(res, r, 2, a);
    d->instance_id = svc_col(res, r, 3, a);
    d->state = svc_col(res, r, 4, a);
    d->instance_state = svc_col(res, r, 5, a);
    d->owner_id = svc_col(res, r, 6, a);
    d->user_id = svc_col(res, r, 7, a);
    d->assigned_at = svc_col(res, r, 8, a);
    d->last_active_at = svc_col(res, r, 9, a);
    d->private_ip = svc_col(res, r, 10, a);
    d->ready = gw_vdi_is(d->state, "assigned") && gw_vdi_is(d->instance_state, "running");
}

/* Desktop 'id' of the caller's tenant as the caller may see it: their own (session or owned),
 * or any for a manager. */
static int read_desktop(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                        struct nb_arena *a, struct gw_vdi_desktop *out, struct nb_error *err)
{
    if (check_form("dsk", id, "InvalidDesktopID.Malformed", err) < 0) {
        return -1;
    }
    const char *p[] = {who->tenant_id, id, is_manager(who) ? "t" : "f", who->user_id};
    PGresult *res = svc_exec(gw,
                             DESKTOP_SELECT "WHERE d.tenant_id = $1 AND d.id = $2 AND ($3::boolean "
                                            "OR d.assigned_user = $4 OR d.owner_id = $4)",
                             4, p, err);
    if (!res) {
        return -1;
    }
    int n = PQntuples(res);
    if (n) {
        row_to_desktop(res, 0, a, out);
    }
    PQclear(res);
    return n ? 0 : desktop_not_found(id, err);
}

/* Ends, in the transaction of 'conn', the sessions on pool 'pool_id' of the users its
 * entitlement no longer lets in (of user 'user_id' only, unless NULL): in a "listed" pool, those
 * of users neither granted it nor its managers. As at sign-out, a persistent desktop becomes
 * 'reserved' (still its owner's), a non-persistent one 'resetting'; the meters stop with it.
 * Returns the ended sessions' (desktop id, instance id, persistent) rows, which the caller
 * PQclear()s and, once committed, passes to reset_ended(); or NULL with 'err'. */
static PGresult *end_unentitled_sessions(struct nb_pg_conn *conn, const char *pool_id,
                                         const char *user_id, struct nb_error *err)
{
    const char *p[] = {pool_id, user_id};
    return nb_pg_exec(conn,
                      "UPDATE desktops d SET state = CASE WHEN p.persistent THEN 'reserved' "
                      "ELSE 'resetting' END, assigned_user = NULL, assigned_at = NULL, "
                      "last_active_at = now(), updated_at = now() FROM desktop_pools p, users u "
                      "WHERE p.id = $1 AND d.pool_id = p.id AND d.state = 'assigned' "
                      "AND u.id = d.assigned_user AND ($2::text IS NULL OR u.id = $2) "
                      "AND u.role NOT IN ('admin', 'member') AND NOT " ENTITLED(
                          "u.id") " RETURNING d.id, d.instance_id, p.persistent",
                      2, p, err);
}

/* Stops the instances of the non-persistent desktops in 'ended' (rows of
 * end_unentitled_sessions(), committed), which the worker then resets, as after a sign-out.
 * Clears 'ended'. */
static void reset_ended(struct gw_ctx *gw, const char *tenant, PGresult *ended, struct nb_arena *a)
{
    for (int r = 0; r < PQntuples(ended); r++) {
        nb_info("vdi: desktop %s signed out: its user is no longer entitled to its pool",
                PQgetvalue(ended, r, 0));
        if (!PQgetisnull(ended, r, 1) && strcmp(PQgetvalue(ended, r, 2), "t")) {
            gw_vdi_instance_op(gw, tenant, GW_OP_STOP, PQgetvalue(ended, r, 1), a);
        }
    }
}

/* --- pools ------------------------------------------------------------------------------- */

static int invalid(struct nb_error *err, const char *what)
{
    nb_error_set(err, NB_ERR_INVALID, "%s", what);
    nb_error_reason(err, "InvalidParameterValue");
    return -1;
}

static int check_sizes(int size, int spares, int idle_stop_s, struct nb_error *err)
{
    if (size < 1 || size > MAX_SIZE) {
        return invalid(err, "size must be between 1 and 1000");
    }
    if (spares < 0 || spares > size) {
        return invalid(err, "spares must be between 0 and the pool's size");
    }
    if (idle_stop_s < 0 || idle_stop_s > MAX_IDLE_STOP_S) {
        return invalid(err, "idle_stop_s must be between 0 (never) and 2592000 (30 days)");
    }
    return 0;
}

/* Checks what the pool's launches will need, so that a pool that cannot launch is refused
 * when it is made rather than failing in the worker: the image (visible to the tenant, by the
 * rule RunInstances applies), the instance type, the subnet and groups (the tenant's, groups
 * of the subnet's VPC). */
static int check_launch_spec(struct nb_pg_conn *conn, const char *tenant,
                             const struct gw_vdi_pool_spec *s, struct nb_arena *a,
                             struct nb_error *err)
{
    const char *p[] = {s->image_id, tenant, s->instance_type};
    PGresult *res = nb_pg_exec(
        conn,
        "SELECT EXISTS (SELECT 1 FROM images m WHERE m.id = $1 AND m.state = 'available' "
        "AND (m.tenant_id = $2 OR m.is_public OR EXISTS (SELECT 1 FROM image_launch_permissions "
        "l WHERE l.image_id = m.id AND l.tenant_id = $2))), "
        "EXISTS (SELECT 1 FROM instance_types t WHERE t.name = $3 AND t.enabled)",
        3, p, err);
    if (!res) {
        return -1;
    }
    bool image = !strcmp(PQgetvalue(res, 0, 0), "t"), type = !strcmp(PQgetvalue(res, 0, 1), "t");
    PQclear(res);
    if (!image) {
        nb_error_set(err, NB_ERR_NOT_FOUND,
                     "The image id '[%s]' does not exist or is not available", s->image_id);
        nb_error_reason(err, "InvalidAMIID.NotFound");
        return -1;
    }
    if (!type) {
        nb_error_set(err, NB_ERR_INVALID, "The instance type '%s' is not offered",
                     s->instance_type);
        nb_error_reason(err, "InvalidParameterValue");
        return -1;
    }
    if (!s->subnet_id) {
        if (s->n_group_ids) {
            nb_error_set(err, NB_ERR_INVALID, "security_group_ids need a subnet_id");
            nb_error_reason(err, "InvalidParameterCombination");
            return -1;
        }
        return 0;
    }
    if (check_form("subnet", s->subnet_id, "InvalidSubnetID.Malformed", err) < 0 ||
        svc_check_id_form(s->group_ids, s->n_group_ids, "sg", "InvalidGroupId.Malformed", err) <
            0) {
        return -1;
    }
    struct svc_sql q;
    svc_sql_init(&q, a);
    const char *pt = svc_sql_param(&q, tenant), *ps = svc_sql_param(&q, s->subnet_id);
    const char *pg = svc_sql_array(&q, s->group_ids, s->n_group_ids);
    nb_buf_printf(&q.sql,
                  "SELECT EXISTS (SELECT 1 FROM subnets WHERE id = %s AND tenant_id = %s), "
                  "(SELECT count(*) FROM security_groups g JOIN subnets n ON n.vpc_id = g.vpc_id "
                  "WHERE n.id = %s AND g.tenant_id = %s AND g.id = ANY(%s))",
                  ps, pt, ps, pt, pg);
    res = nb_pg_exec(conn, q.sql.data, q.n, q.params, err);
    nb_buf_free(&q.sql);
    if (!res) {
        return -1;
    }
    bool subnet = !strcmp(PQgetvalue(res, 0, 0), "t");
    size_t groups = (size_t)atoi(PQgetvalue(res, 0, 1));
    PQclear(res);
    if (!subnet) {
        nb_error_set(err, NB_ERR_NOT_FOUND, "The subnet ID '%s' does not exist", s->subnet_id);
        nb_error_reason(err, "InvalidSubnetID.NotFound");
        return -1;
    }
    if (groups != s->n_group_ids) {
        nb_error_set(err, NB_ERR_NOT_FOUND,
                     "a security group of security_group_ids does not exist in the subnet's VPC");
        nb_error_reason(err, "InvalidGroup.NotFound");
        return -1;
    }
    return 0;
}

/* The names the desktop_pools CHECK accepts, checked first for a clear message. */
static bool valid_name(const char *name)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 64 || !strchr(alnum, name[0])) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if (!strchr(alnum, name[i]) && !strchr(" ._@-", name[i])) {
            return false;
        }
    }
    return true;
}

int gw_vdi_pool_create(struct gw_ctx *gw, const struct gw_principal *who,
                       const struct gw_vdi_pool_spec *spec, struct nb_arena *arena,
                       struct gw_vdi_pool *out, struct nb_error *err)
{
    if (require_manager(who, err) < 0 ||
        check_sizes(spec->size, spec->spares, spec->idle_stop_s, err) < 0) {
        return -1;
    }
    if (!valid_name(spec->name)) {
        return invalid(err, "a pool name is 1 to 64 letters, digits, spaces, '.', '_', '@' or "
                            "'-', starting with a letter or digit");
    }
    if (spec->description && strlen(spec->description) > 255) {
        return invalid(err, "description is at most 255 characters");
    }
    if (spec->n_group_ids > MAX_GROUPS) {
        return invalid(err, "at most 16 security_group_ids");
    }
    const char *entitlement = spec->entitlement ? spec->entitlement : "all";
    if (!gw_vdi_entitlement_valid(entitlement)) {
        return invalid(err, "entitlement must be \"all\" or \"listed\"");
    }
    char id[NB_ID_MAX];
    if (nb_id_new("pool", id, sizeof id) < 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not make a pool id");
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    if (check_launch_spec(conn, who->tenant_id, spec, arena, err) < 0) {
        goto done;
    }
    struct svc_sql q;
    svc_sql_init(&q, arena);
    char size[16], spares[16], idle[16];
    snprintf(size, sizeof size, "%d", spec->size);
    snprintf(spares, sizeof spares, "%d", spec->spares);
    snprintf(idle, sizeof idle, "%d", spec->idle_stop_s);
    const char *v[] = {
        svc_sql_param(&q, id),
        svc_sql_param(&q, who->tenant_id),
        svc_sql_param(&q, spec->name),
        svc_sql_param(&q, spec->description ? spec->description : ""),
        svc_sql_param(&q, spec->image_id),
        svc_sql_param(&q, spec->instance_type),
        svc_sql_param(&q, spec->subnet_id),
        svc_sql_array(&q, spec->group_ids, spec->n_group_ids),
        svc_sql_param(&q, size),
        svc_sql_param(&q, spares),
        svc_sql_param(&q, spec->persistent ? "t" : "f"),
        svc_sql_param(&q, idle),
        svc_sql_param(&q, entitlement),
    };
    nb_buf_printf(&q.sql,
                  "INSERT INTO desktop_pools (id, tenant_id, name, description, image_id, "
                  "instance_type, subnet_id, security_group_ids, size, spares, persistent, "
                  "idle_stop_s, entitlement) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::int, "
                  "%s::int, %s::boolean, %s::int, %s)",
                  v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]);
    PGresult *res = nb_pg_exec(conn, q.sql.data, q.n, q.params, err);
    nb_buf_free(&q.sql);
    if (!res) {
        if (err->code == NB_ERR_CONFLICT) {
            nb_error_set(err, NB_ERR_CONFLICT, "a desktop pool named \"%s\" already exists",
                         spec->name);
            nb_error_reason(err, "InvalidPoolName.Duplicate");
        }
        goto done;
    }
    PQclear(res);
    if (read_pool(conn, who->tenant_id, id, arena, out, err) == 1) {
        nb_info("vdi: pool %s (\"%s\") created for tenant %s: size %d, spares %d, %s", id,
                spec->name, who->tenant_id, spec->size, spec->spares,
                spec->persistent ? "persistent" : "non-persistent");
        rc = 0;
    }

done:
    nb_pg_release(conn);
    return rc;
}

int gw_vdi_pools_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                          struct nb_arena *arena, struct gw_vdi_pool **out, size_t *n,
                          struct nb_error *err)
{
    if (id && check_form("pool", id, "InvalidPoolID.Malformed", err) < 0) {
        return -1;
    }
    /* A desktop user sees the pools they may use, nothing of the others. */
    const char *p[] = {who->tenant_id, id, who->role == GW_ROLE_DESKTOP ? who->user_id : NULL};
    PGresult *res = svc_exec(
        gw,
        POOL_SELECT "WHERE p.tenant_id = $1 AND ($2::text IS NULL OR "
                    "p.id = $2) AND ($3::text IS NULL OR " ENTITLED("$3") ") ORDER BY p.name, p.id",
        3, p, err);
    if (!res) {
        return -1;
    }
    int rows = PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (size_t)(rows ? rows : 1));
    for (int r = 0; r < rows; r++) {
        gw_vdi_row_to_pool(res, r, arena, &(*out)[r]);
    }
    *n = (size_t)rows;
    PQclear(res);
    return id && rows == 0 ? pool_not_found(id, err) : 0;
}

int gw_vdi_pool_update(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                       const struct gw_vdi_pool_patch *patch, struct nb_arena *arena,
                       struct gw_vdi_pool *out, struct nb_error *err)
{
    if (require_manager(who, err) < 0 ||
        check_form("pool", id, "InvalidPoolID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    if (nb_pg_begin(conn, err) < 0) {
        goto done;
    }
    const char *pk[] = {id, who->tenant_id};
    /* Under the pool's row lock, as connects and grants: a switch to "listed" and a connect
     * are one before the other. */
    if (!(res = nb_pg_exec(
              conn, "SELECT 1 FROM desktop_pools WHERE id = $1 AND tenant_id = $2 FOR UPDATE", 2,
              pk, err))) {
        goto done;
    }
    PQclear(res);
    res = NULL;
    int found = read_pool(conn, who->tenant_id, id, arena, out, err);
    if (found <= 0 || !gw_vdi_is(out->state, "active")) {
        if (found >= 0) {
            pool_not_found(id, err);
        }
        goto done;
    }
    int size = patch->size >= 0 ? patch->size : out->size;
    int spares = patch->spares >= 0 ? patch->spares : out->spares;
    int idle = patch->idle_stop_s >= 0 ? patch->idle_stop_s : out->idle_stop_s;
    const char *entitlement = patch->entitlement ? patch->entitlement : out->entitlement;
    if (check_sizes(size, spares, idle, err) < 0) {
        goto done;
    }
    if (!gw_vdi_entitlement_valid(entitlement)) {
        invalid(err, "entitlement must be \"all\" or \"listed\"");
        goto done;
    }
    char s_size[16], s_spares[16], s_idle[16];
    snprintf(s_size, sizeof s_size, "%d", size);
    snprintf(s_spares, sizeof s_spares, "%d", spares);
    snprintf(s_idle, sizeof s_idle, "%d", idle);
    const char *p[] = {id, s_size, s_spares, s_idle, entitlement};
    res = nb_pg_exec(conn,
                     "UPDATE desktop_pools SET size = $2::int, spares = $3::int, "
                     "idle_stop_s = $4::int, entitlement = $5, updated_at = now() WHERE id = $1",
                     5, p, err);
    if (!res) {
        goto done;
    }
    PQclear(res);
    /* Switched to "listed": the sessions of users without a grant end with the switch. */
    if (!(res = end_unentitled_sessions(conn, id, NULL, err)) || nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    reset_ended(gw, who->tenant_id, res, arena);
    if (read_pool(conn, who->tenant_id, id, arena, out, err) != 1) {
        goto done;
    }
    rc = 0;

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

/* Asks for the termination of instance 'id' of 'tenant'; a failure is logged (the worker tries
 * again while the desktop is 'terminating'). */
void gw_vdi_terminate_instance(struct gw_ctx *gw, const char *tenant, const char *id,
                               struct nb_arena *a)
{
    struct gw_principal as;
    act_as_tenant(tenant, &as);
    struct gw_state_change *ch;
    struct nb_error e = {0};
    if (gw_instances_change(gw, &as, GW_OP_TERMINATE, &id, 1, a, &ch, &e) < 0) {
        nb_warn("vdi: could not terminate instance %s: %s", id, e.msg);
    }
}

int gw_vdi_pool_delete(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                       struct nb_arena *arena, struct gw_vdi_pool *out, struct nb_error *err)
{
    if (require_manager(who, err) < 0 ||
        check_form("pool", id, "InvalidPoolID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    const char *p[] = {id, who->tenant_id};
    if (nb_pg_begin(conn, err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "UPDATE desktop_pools SET state = 'deleting', updated_at = now() "
                           "WHERE id = $1 AND tenant_id = $2 AND state = 'active' RETURNING id",
                           2, p, err))) {
        goto done;
    }
    bool found = PQntuples(res) > 0;
    PQclear(res);
    res = NULL;
    if (!found) {
        pool_not_found(id, err);
        goto done;
    }
    /* Sessions end (and their meters stop) with the pool's deletion, in its transaction. */
    if (!(res = nb_pg_exec(conn,
                           "UPDATE desktops SET state = 'terminating', assigned_user = NULL, "
                           "assigned_at = NULL, owner_id = NULL, updated_at = now() "
                           "WHERE pool_id = $1 RETURNING instance_id",
                           1, p, err)) ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        if (!PQgetisnull(res, r, 0)) {
            gw_vdi_terminate_instance(gw, who->tenant_id, PQgetvalue(res, r, 0), arena);
        }
    }
    if (read_pool(conn, who->tenant_id, id, arena, out, err) == 1) {
        nb_info("vdi: pool %s of tenant %s is being deleted", id, who->tenant_id);
        rc = 0;
    }

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

/* --- desktops ----------------------------------------------------------------------------- */

int gw_vdi_desktops_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                             struct nb_arena *arena, struct gw_vdi_desktop **out, size_t *n,
                             struct nb_error *err)
{
    PGresult *res;
    if (pool_id) {
        struct gw_vdi_pool *pools;
        size_t np;
        if (require_manager(who, err) < 0 ||
            gw_vdi_pools_describe(gw, who, pool_id, arena, &pools, &np, err) < 0) {
            return -1;
        }
        const char *p[] = {who->tenant_id, pool_id};
        res = svc_exec(gw,
                       DESKTOP_SELECT "WHERE d.tenant_id = $1 AND d.pool_id = $2 "
                                      "ORDER BY d.created_at, d.id",
                       2, p, err);
    } else {
        const char *p[] = {who->tenant_id, who->user_id};
        res = svc_exec(gw,
                       DESKTOP_SELECT "WHERE d.tenant_id = $1 AND (d.assigned_user = $2 OR "
                                      "d.owner_id = $2) ORDER BY p.name, d.id",
                       2, p, err);
    }
    if (!res) {
        return -1;
    }
    int rows = PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (size_t)(rows ? rows : 1));
    for (int r = 0; r < rows; r++) {
        row_to_desktop(res, r, arena, &(*out)[r]);
    }
    *n = (size_t)rows;
    PQclear(res);
    return 0;
}

int gw_vdi_desktop_get(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                       struct nb_arena *arena, struct gw_vdi_desktop *out, struct nb_error *err)
{
    return read_desktop(gw, who, id, arena, out, err);
}

/* Launches the instance of desktop 'desktop_id' of pool 'p' and records it on the desktop. The
 * desktop id is the launch's client token, so that a launch repeated (after a crash, or by the
 * worker) finds the instance of the first instead of making a second. The instance carries the
 * pool and desktop ids as tags, for the provider and for the worker's sweep. Returns 0, or -1
 * with 'err'. */
int gw_vdi_launch(struct gw_ctx *gw, const struct gw_vdi_pool *p, const char *desktop_id,
                  struct nb_arena *a, struct nb_error *err)
{
    struct gw_principal as;
    act_as_tenant(p->owner_id, &as);
    const struct gw_tag tags[] = {{TAG_POOL, p->id}, {TAG_DESKTOP, desktop_id}};
    struct gw_run_request rq = {
        .image_id = p->image_id,
        .instance_type = p->instance_type,
        .client_token = desktop_id,
        .min_count = 1,
        .max_count = 1,
        .tags = tags,
        .n_tags = 2,
        .subnet_id = p->subnet_id,
        .group_ids = p->group_ids,
        .n_group_ids = p->n_group_ids,
    };
    struct gw_instance_list l;
    if (gw_instances_run(gw, &as, &rq, a, &l, err) < 0) {
        return -1;
    }
    if (l.n != 1) {
        nb_error_set(err, NB_ERR_INTERNAL, "the launch of desktop %s gave %zu instances",
                     desktop_id, l.n);
        return -1;
    }
    const char *q[] = {desktop_id, l.items[0].id};
    PGresult *res = svc_exec(gw,
                             "UPDATE desktops SET instance_id = $2, updated_at = now() "
                             "WHERE id = $1 AND instance_id IS NULL",
                             2, q, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    nb_info("vdi: desktop %s of pool %s: instance %s launched", desktop_id, p->id, l.items[0].id);
    return 0;
}

/* Forgets desktop 'id' whose launch failed with 'why' (its session and meter end with it), and
 * notes the failure on its pool. */
void gw_vdi_launch_failed(struct gw_ctx *gw, const char *pool_id, const char *id,
                          const struct nb_error *why)
{
    nb_warn("vdi: could not launch desktop %s of pool %s: %s", id, pool_id, why->msg);
    struct nb_error e = {0};
    const char *p[] = {id, pool_id, why->msg};
    PGresult *res = svc_exec(gw,
                             "WITH d AS (DELETE FROM desktops WHERE id = $1 AND instance_id IS "
                             "NULL RETURNING id) UPDATE desktop_pools SET last_error = $3, "
                             "last_error_at = now() WHERE id = $2",
                             3, p, &e);
    if (!res) {
        nb_warn("vdi: could not forget desktop %s: %s", id, e.msg);
    }
    PQclear(res);
}

/* Applies 'op' to instance 'id' of 'tenant' for the broker. An instance already in the state
 * asked for, or moving there, is not an error; a refusal (IncorrectInstanceState: a race with
 * another change) is logged at debug level, as the worker's next pass looks again. */
int gw_vdi_instance_op(struct gw_ctx *gw, const char *tenant, enum gw_instance_op op,
                       const char *id, struct nb_arena *a)
{
    struct gw_principal as;
    act_as_tenant(tenant, &as);
    struct gw_state_change *ch;
    struct nb_error e = {0};
    if (gw_instances_change(gw, &as, op, &id, 1, a, &ch, &e) < 0) {
        if (!strcmp(e.reason, "IncorrectInstanceState")) {
            nb_debug("vdi: instance %s: %s", id, e.msg);
        } else {
            nb_warn("vdi: instance %s: %s", id, e.msg);
        }
        return -1;
    }
    return 0;
}

int gw_vdi_connect(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                   struct nb_arena *arena, struct gw_vdi_desktop *out, struct nb_error *err)
{
    if (check_form("pool", pool_id, "InvalidPoolID.Malformed", err) < 0) {
        return -1;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    struct gw_vdi_pool pool;
    char id[NB_ID_MAX] = "";
    const char *pk[] = {pool_id, who->tenant_id, is_manager(who) ? "t" : "f", who->user_id};
    /* The pool's row lock serialises the connects of a pool (the count against its size), and
     * orders them with grants, revokes and switches of entitlement. A pool the caller is not
     * entitled to is not found, as an unknown one. */
    if (nb_pg_begin(conn, err) < 0 ||
        !(res = nb_pg_exec(
              conn,
              "SELECT 1 FROM desktop_pools p WHERE p.id = $1 AND p.tenant_id = $2 "
              "AND p.state = 'active' AND ($3::boolean OR " ENTITLED("$4") ") FOR UPDATE",
              4, pk, err))) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        pool_not_found(pool_id, err);
        goto done;
    }
    PQclear(res);
    res = NULL;
    if (read_pool(conn, who->tenant_id, pool_id, arena, &pool, err) != 1) {
        goto done;
    }
    const char *p[] = {pool_id, who->user_id, pool.persistent ? "t" : "f"};
    /* The caller's session in progress; then, in a persistent pool, the desktop they own; then
     * an available desktop, one whose instance runs first. No SKIP LOCKED there: the pool's lock
     * already serialises connects, and a desktop the worker happens to hold for a moment must
     * be waited for, not taken for a full pool (InsufficientDesktopCapacity). */
    static const char *const steps[] = {
        "UPDATE desktops SET last_active_at = now(), updated_at = now() "
        "WHERE pool_id = $1 AND assigned_user = $2 AND $3::boolean IS NOT NULL RETURNING id",
        "UPDATE desktops SET state = 'assigned', assigned_user = $2, assigned_at = now(), "
        "last_active_at = now(), updated_at = now() WHERE pool_id = $1 AND owner_id = $2 "
        "AND state = 'reserved' AND $3::boolean RETURNING id",
        "UPDATE desktops SET state = 'assigned', assigned_user = $2, assigned_at = now(), "
        "last_active_at = now(), updated_at = now(), "
        "owner_id = CASE WHEN $3::boolean THEN $2 END "
        "WHERE id = (SELECT d.id FROM desktops d LEFT JOIN instances i ON i.id = d.instance_id "
        "WHERE d.pool_id = $1 AND d.state = 'available' AND NOT ($3::boolean AND EXISTS "
        "(SELECT 1 FROM desktops o WHERE o.pool_id = $1 AND o.owner_id = $2)) "
        "ORDER BY CASE i.state WHEN 'running' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, "
        "d.created_at, d.id LIMIT 1 FOR UPDATE OF d) RETURNING id",
    };
    for (size_t s = 0; s < sizeof steps / sizeof steps[0] && !id[0]; s++) {
        if (!(res = nb_pg_exec(conn, steps[s], 3, p, err))) {
            goto done;
        }
        if (PQntuples(res)) {
            snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
        }
        PQclear(res);
        res = NULL;
    }
    if (!id[0]) {
        /* A persistent pool's user who owns a desktop that is not 'reserved' (being
         * terminated) gets a new one only once it is gone: the owner index allows one. */
        if (pool.counts.total >= pool.size) {
            nb_error_set(err, NB_ERR_LIMIT,
                         "every desktop of pool %s is in use (%d of %d): try again later", pool_id,
                         pool.counts.total, pool.size);
            nb_error_reason(err, "InsufficientDesktopCapacity");
            goto done;
        }
        if (nb_id_new("dsk", id, sizeof id) < 0) {
            nb_error_set(err, NB_ERR_INTERNAL, "could not make a desktop id");
            goto done;
        }
        const char *ins[] = {id, pool_id, who->tenant_id, who->user_id, p[2]};
        if (!(res = nb_pg_exec(conn,
                               "INSERT INTO desktops (id, pool_id, tenant_id, state, owner_id, "
                               "assigned_user, assigned_at) VALUES ($1, $2, $3, 'assigned', "
                               "CASE WHEN $5::boolean THEN $4 END, $4, now())",
                               5, ins, err))) {
            goto done;
        }
        PQclear(res);
        res = NULL;
    }
    if (nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    nb_pg_release(conn);
    conn = NULL;

    if (read_desktop(gw, who, id, arena, out, err) < 0) {
        goto done;
    }
    if (!out->instance_id) {
        struct nb_error le = {0};
        if (gw_vdi_launch(gw, &pool, id, arena, &le) < 0) {
            gw_vdi_launch_failed(gw, pool_id, id, &le);
            *err = le;
            goto done;
        }
    } else if (gw_vdi_is(out->instance_state, "stopped")) {
        gw_vdi_instance_op(gw, pool.owner_id, GW_OP_START, out->instance_id, arena);
    }
    if (read_desktop(gw, who, id, arena, out, err) == 0) {
        nb_info("vdi: user %s connected to desktop %s of pool %s (instance %s, %s)", who->user_id,
                id, pool_id, out->instance_id ? out->instance_id : "-",
                out->instance_state ? out->instance_state : "launching");
        rc = 0;
    }

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_vdi_console(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                   struct nb_arena *arena, struct gw_console_ticket *out, struct nb_error *err)
{
    struct gw_vdi_desktop d;
    /* Only the desktop of one's own session: a manager watches screens through
     * POST /v1/instances/{id}/vnc instead. */
    struct gw_principal self = *who;
    self.role = GW_ROLE_DESKTOP;
    if (read_desktop(gw, &self, id, arena, &d, err) < 0) {
        return -1;
    }
    if (!gw_vdi_is(d.user_id, who->user_id) || !d.instance_id) {
        nb_error_set(err, NB_ERR_CONFLICT,
                     "desktop %s is not in a session of yours: connect to its pool first", id);
        nb_error_reason(err, "IncorrectState");
        return -1;
    }
    const char *p[] = {id};
    PGresult *res =
        svc_exec(gw, "UPDATE desktops SET last_active_at = now() WHERE id = $1", 1, p, err);
    if (!res) {
        return -1;
    }
    PQclear(res);
    return gw_console_ticket_issue(gw, who, d.instance_id, arena, out, err);
}

/* Ends the session on desktop 'id' (of 'user' only, unless NULL): in one statement, so with its
 * meter's 'off'. With 'idle_s' (not NULL: the worker's idle sign-out), only if the desktop is
 * still idle that long at this moment: no connect, ticket or console since, which the worker's
 * earlier read cannot rule out. Returns 1 with '*persistent' and the instance id in 'instance'
 * when a session ended, 0 when there was none, -1 with 'err'. */
int gw_vdi_end_session(struct gw_ctx *gw, const char *id, const char *user, const char *idle_s,
                       bool *persistent, char *instance, size_t size, struct nb_error *err)
{
    const char *p[] = {id, user, idle_s};
    PGresult *res = svc_exec(
        gw,
        "UPDATE desktops d SET state = CASE WHEN p.persistent THEN 'reserved' "
        "ELSE 'resetting' END, assigned_user = NULL, assigned_at = NULL, last_active_at = now(), "
        "updated_at = now() FROM desktop_pools p WHERE d.id = $1 AND p.id = d.pool_id "
        "AND d.state = 'assigned' AND ($2::text IS NULL OR d.assigned_user = $2) "
        "AND ($3::int IS NULL OR (GREATEST(d.assigned_at, d.last_active_at) <= now() - "
        "make_interval(secs => $3::int) AND NOT EXISTS (SELECT 1 FROM vnc_connections c "
        "WHERE c.instance_id = d.instance_id AND (c.closed_at IS NULL AND c.seen_at > now() "
        "- " VNC_LIVE
        " OR COALESCE(c.closed_at, c.seen_at) > now() - make_interval(secs => $3::int))))) "
        "RETURNING d.instance_id, p.persistent",
        3, p, err);
    if (!res) {
        return -1;
    }
    int n = PQntuples(res);
    if (n) {
        *persistent = !strcmp(PQgetvalue(res, 0, 1), "t");
        snprintf(instance, size, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return n ? 1 : 0;
}

int gw_vdi_sign_out(struct gw_ctx *gw, const struct gw_principal *who, const char *id,
                    struct nb_arena *arena, struct gw_vdi_desktop *out, struct nb_error *err)
{
    if (read_desktop(gw, who, id, arena, out, err) < 0) {
        return -1;
    }
    bool persistent = false;
    char instance[NB_ID_MAX] = "";
    int ended = gw_vdi_end_session(gw, id, is_manager(who) ? NULL : who->user_id, NULL, &persistent,
                                   instance, sizeof instance, err);
    if (ended < 0) {
        return -1;
    }
    if (ended) {
        nb_info("vdi: desktop %s signed out (user %s)", id, out->user_id ? out->user_id : "-");
        /* A non-persistent desktop goes back to its image: stopped now, its root disk recreated
         * at the start that follows (the worker's, once it is stopped). */
        if (!persistent && instance[0]) {
            gw_vdi_instance_op(gw, who->tenant_id, GW_OP_STOP, instance, arena);
        }
    }
    /* As it is now, though no longer the caller's when it was a non-persistent one. */
    struct gw_principal seen = *who;
    seen.role = GW_ROLE_MEMBER;
    return read_desktop(gw, &seen, id, arena, out, err);
}

/* --- entitlements -------------------------------------------------------------------------- */

bool gw_vdi_entitlement_valid(const char *text)
{
    return gw_vdi_is(text, "all") || gw_vdi_is(text, "listed");
}

/* clang-format off */
#define GRANT_SELECT                                                                               \
    "SELECT g.pool_id, g.user_id, u.name, " ISO("g.granted_at") " "                                \
    "FROM desktop_pool_users g JOIN users u ON u.id = g.user_id "
/* clang-format on */

static void row_to_grant(PGresult *res, int r, struct nb_arena *a, struct gw_vdi_grant *g)
{
    g->pool_id = svc_col(res, r, 0, a);
    g->user_id = svc_col(res, r, 1, a);
    g->user_name = svc_col(res, r, 2, a);
    g->granted_at = svc_col(res, r, 3, a);
}

int gw_vdi_grants_describe(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                           struct nb_arena *arena, struct gw_vdi_grant **out, size_t *n,
                           struct nb_error *err)
{
    struct gw_vdi_pool *pools;
    size_t np;
    if (require_manager(who, err) < 0 ||
        gw_vdi_pools_describe(gw, who, pool_id, arena, &pools, &np, err) < 0) {
        return -1;
    }
    const char *p[] = {pool_id};
    PGresult *res =
        svc_exec(gw, GRANT_SELECT "WHERE g.pool_id = $1 ORDER BY u.name, u.id", 1, p, err);
    if (!res) {
        return -1;
    }
    int rows = PQntuples(res);
    *out = nb_arena_zalloc(arena, sizeof **out * (size_t)(rows ? rows : 1));
    for (int r = 0; r < rows; r++) {
        row_to_grant(res, r, arena, &(*out)[r]);
    }
    *n = (size_t)rows;
    PQclear(res);
    return 0;
}

/* Checks the caller and the forms of 'pool_id' and 'user_id', takes a connection, begins a
 * transaction and locks pool 'pool_id' of the caller's tenant (active; else
 * InvalidPoolID.NotFound): grants and revokes are ordered with the pool's connects. Returns the
 * connection, which the caller releases, or NULL with 'err'. */
static struct nb_pg_conn *begin_grant_change(struct gw_ctx *gw, const struct gw_principal *who,
                                             const char *pool_id, const char *user_id,
                                             struct nb_error *err)
{
    if (require_manager(who, err) < 0 ||
        check_form("pool", pool_id, "InvalidPoolID.Malformed", err) < 0 ||
        check_form("user", user_id, "InvalidUserID.Malformed", err) < 0) {
        return NULL;
    }
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!conn) {
        return NULL;
    }
    const char *p[] = {pool_id, who->tenant_id};
    PGresult *res = NULL;
    if (nb_pg_begin(conn, err) < 0 ||
        !(res = nb_pg_exec(conn,
                           "SELECT 1 FROM desktop_pools WHERE id = $1 AND tenant_id = $2 "
                           "AND state = 'active' FOR UPDATE",
                           2, p, err)) ||
        (PQntuples(res) == 0 && pool_not_found(pool_id, err) < 0)) {
        PQclear(res);
        nb_pg_release(conn);
        return NULL;
    }
    PQclear(res);
    return conn;
}

int gw_vdi_grant(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                 const char *user_id, struct nb_arena *arena, struct gw_vdi_grant *out,
                 struct nb_error *err)
{
    struct nb_pg_conn *conn = begin_grant_change(gw, who, pool_id, user_id, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    const char *p[] = {pool_id, user_id, who->tenant_id};
    if (!(res = nb_pg_exec(conn,
                           "SELECT role FROM users WHERE id = $2 AND tenant_id = $3 "
                           "AND $1::text IS NOT NULL",
                           3, p, err))) {
        goto done;
    }
    if (PQntuples(res) == 0) {
        /* Another tenant's user is as unknown as one that does not exist. */
        nb_error_set(err, NB_ERR_NOT_FOUND, "The user '%s' does not exist", user_id);
        nb_error_reason(err, "InvalidUserID.NotFound");
        goto done;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "desktop")) {
        nb_error_set(err, NB_ERR_INVALID,
                     "user '%s' has the role \"%s\": pools are granted to desktop users only",
                     user_id, PQgetvalue(res, 0, 0));
        nb_error_reason(err, "InvalidParameterValue");
        goto done;
    }
    PQclear(res);
    if (!(res = nb_pg_exec(conn,
                           "INSERT INTO desktop_pool_users (pool_id, user_id) VALUES ($1, $2) "
                           "ON CONFLICT DO NOTHING",
                           2, p, err))) {
        goto done;
    }
    bool added = atoi(PQcmdTuples(res)) == 1;
    PQclear(res);
    if (!(res = nb_pg_exec(conn, GRANT_SELECT "WHERE g.pool_id = $1 AND g.user_id = $2", 2, p,
                           err)) ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    if (PQntuples(res) == 1) {
        row_to_grant(res, 0, arena, out);
        if (added) {
            nb_info("vdi: pool %s granted to user %s", pool_id, user_id);
        }
        rc = 0;
    }

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}

int gw_vdi_revoke(struct gw_ctx *gw, const struct gw_principal *who, const char *pool_id,
                  const char *user_id, struct nb_arena *arena, bool *ended, struct nb_error *err)
{
    if (ended) {
        *ended = false;
    }
    struct nb_pg_conn *conn = begin_grant_change(gw, who, pool_id, user_id, err);
    if (!conn) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    const char *p[] = {pool_id, user_id};
    if (!(res =
              nb_pg_exec(conn, "DELETE FROM desktop_pool_users WHERE pool_id = $1 AND user_id = $2",
                         2, p, err))) {
        goto done;
    }
    bool removed = atoi(PQcmdTuples(res)) == 1;
    PQclear(res);
    /* The session ends with the grant, in its transaction (in a "listed" pool only: in an
     * "all" pool the user is still entitled). */
    if (!(res = end_unentitled_sessions(conn, pool_id, user_id, err)) ||
        nb_pg_commit(conn, err) < 0) {
        goto done;
    }
    if (removed) {
        nb_info("vdi: pool %s revoked from user %s", pool_id, user_id);
    }
    if (ended) {
        *ended = PQntuples(res) > 0;
    }
    reset_ended(gw, who->tenant_id, res, arena);
    rc = 0;

done:
    PQclear(res);
    nb_pg_release(conn);
    return rc;
}
