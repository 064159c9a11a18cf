/* Hosted VDI desktops: the worker (see svc_vdi.h and docs/vdi.md, "the worker"). Each gateway
 * runs it on a thread; a pass holds an advisory lock, so with several gateways one runs it. A
 * pass keeps every pool's spares running, stops and signs out idle desktops, resets signed-out
 * non-persistent desktops, replaces desktops whose instance died, terminates the desktops of
 * deleted and shrunk pools, and every few passes terminates instances of desktops that no
 * longer exist. Each step is its own statement or transaction and may be done again: all the
 * state is in the tables, so the next pass (on any gateway) finishes what a crash left. */
#include "svc_vdi.h"
#include "svc_vdi_priv.h"

#include "gateway.h"
#include "svc_instances.h"
#include "svc_sql.h"

#include "nubo/arena.h"
#include "nubo/clock.h"
#include "nubo/config.h"
#include "nubo/error.h"
#include "nubo/id.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A desktop whose launch was never recorded is launched again by the worker (with the same
 * client token) once it is this old: the connect that inserted it may still be launching. */
#define LAUNCH_GRACE_S 60

/* The advisory lock of a worker pass: one gateway at a time runs it. */
#define WORKER_LOCK "7308327116"

/* Passes between two sweeps for instances of desktops that no longer exist. */
#define SWEEP_EVERY 15

/* A desktop as the worker sees it. */
struct wdesk {
    const char *id;
    const char *state;
    const char *instance_id;    /* NULL: not launched */
    const char *instance_state; /* NULL: not launched */
    bool connected;             /* a live console connection */
    long idle_s;                /* since the last activity */
    long age_s;
};

static bool running_or_pending(const struct wdesk *d)
{
    return gw_vdi_is(d->instance_state, "running") || gw_vdi_is(d->instance_state, "pending");
}

/* Runs 'sql' with 'n' parameters and logs a failure; for the worker's steps, which the next
 * pass retries. Returns the number of rows it returned or changed, or -1. */
static int wexec(struct gw_ctx *gw, const char *what, const char *sql, int n, const char *const *p)
{
    struct nb_error e = {0};
    PGresult *res = svc_exec(gw, sql, n, p, &e);
    if (!res) {
        nb_warn("vdi: %s: %s", what, e.msg);
        return -1;
    }
    const char *t = PQcmdTuples(res);
    int rows = t && *t ? atoi(t) : PQntuples(res);
    PQclear(res);
    return rows;
}

/* Resets a signed-out non-persistent desktop whose instance has stopped: in one transaction,
 * the instance's root disk is marked to be recreated at its next start (instances.reset_root,
 * which the scheduler's start carries out and clears) and the desktop becomes 'restarting';
 * then the instance is started. Done again if the start is lost. */
static void begin_reset(struct gw_ctx *gw, const char *tenant, const struct wdesk *d,
                        struct nb_arena *a)
{
    struct nb_error e = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, &e);
    PGresult *r1 = NULL, *r2 = NULL;
    bool ok = false;
    const char *p[] = {d->id, d->instance_id};
    if (conn && nb_pg_begin(conn, &e) == 0 &&
        (r1 = nb_pg_exec(conn,
                         "UPDATE instances SET reset_root = true, updated_at = now() "
                         "WHERE id = $2 AND state = 'stopped' AND $1::text IS NOT NULL",
                         2, p, &e)) &&
        (r2 = nb_pg_exec(conn,
                         "UPDATE desktops SET state = 'restarting', updated_at = now() "
                         "WHERE id = $1 AND state = 'resetting' AND instance_id = $2",
                         2, p, &e))) {
        /* Both or neither: the instance moved, or the desktop did. */
        if (atoi(PQcmdTuples(r1)) == 1 && atoi(PQcmdTuples(r2)) == 1) {
            ok = nb_pg_commit(conn, &e) == 0;
        }
    }
    if (e.code != NB_ERR_NONE) {
        nb_warn("vdi: could not reset desktop %s: %s", d->id, e.msg);
    }
    PQclear(r1);
    PQclear(r2);
    nb_pg_release(conn);
    if (ok) {
        nb_info("vdi: desktop %s: instance %s restarts from its image", d->id, d->instance_id);
        gw_vdi_instance_op(gw, tenant, GW_OP_START, d->instance_id, a);
    }
}

/* Adds a desktop to pool 'p' and launches it, if the pool is active and under its size (under
 * the pool's row lock, as connects count). Returns 0, or -1 when none was added. */
static int add_spare(struct gw_ctx *gw, const struct gw_vdi_pool *p, struct nb_arena *a)
{
    char id[NB_ID_MAX];
    if (nb_id_new("dsk", id, sizeof id) < 0) {
        return -1;
    }
    struct nb_error e = {0};
    struct nb_pg_conn *conn = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, &e);
    PGresult *res = NULL;
    bool added = false;
    const char *q[] = {id, p->id};
    if (conn && nb_pg_begin(conn, &e) == 0 &&
        (res = nb_pg_exec(conn,
                          "SELECT 1 FROM desktop_pools WHERE id = $2 AND state = 'active' AND "
                          "$1::text IS NOT NULL FOR UPDATE",
                          2, q, &e)) &&
        PQntuples(res) == 1) {
        PQclear(res);
        res = nb_pg_exec(conn,
                         "INSERT INTO desktops (id, pool_id, tenant_id, state) "
                         "SELECT $1, p.id, p.tenant_id, 'available' FROM desktop_pools p "
                         "WHERE p.id = $2 AND (SELECT count(*) FROM desktops d WHERE "
                         "d.pool_id = p.id AND d.state <> 'terminating') < p.size",
                         2, q, &e);
        added = res && atoi(PQcmdTuples(res)) == 1 && nb_pg_commit(conn, &e) == 0;
    }
    if (e.code != NB_ERR_NONE) {
        nb_warn("vdi: could not add a desktop to pool %s: %s", p->id, e.msg);
    }
    PQclear(res);
    nb_pg_release(conn);
    if (!added) {
        return -1;
    }
    if (gw_vdi_launch(gw, p, id, a, &e) < 0) {
        gw_vdi_launch_failed(gw, p->id, id, &e);
        return -1;
    }
    return 0;
}

/* Reads the desktops of pool 'pool_id' as the worker needs them. */
static int read_wdesks(struct gw_ctx *gw, const char *pool_id, struct nb_arena *a,
                       struct wdesk **out, int *n)
{
    const char *p[] = {pool_id};
    struct nb_error e = {0};
    PGresult *res = svc_exec(
        gw,
        "SELECT d.id, d.state, d.instance_id, i.state, COALESCE(v.connected, false), "
        "floor(extract(epoch FROM now() - GREATEST(d.assigned_at, d.last_active_at, "
        "v.last_seen)))::bigint, floor(extract(epoch FROM now() - d.created_at))::bigint "
        "FROM desktops d LEFT JOIN instances i ON i.id = d.instance_id "
        "LEFT JOIN LATERAL (SELECT bool_or(c.closed_at IS NULL AND c.seen_at > now() - " VNC_LIVE
        ") AS connected, max(COALESCE(c.closed_at, c.seen_at)) AS last_seen "
        "FROM vnc_connections c WHERE c.instance_id = d.instance_id) v ON true "
        "WHERE d.pool_id = $1 ORDER BY d.created_at, d.id",
        1, p, &e);
    if (!res) {
        nb_warn("vdi: could not read the desktops of pool %s: %s", pool_id, e.msg);
        return -1;
    }
    *n = PQntuples(res);
    *out = nb_arena_zalloc(a, sizeof **out * (size_t)(*n ? *n : 1));
    for (int r = 0; r < *n; r++) {
        struct wdesk *d = &(*out)[r];
        d->id = svc_col(res, r, 0, a);
        d->state = svc_col(res, r, 1, a);
        d->instance_id = svc_col(res, r, 2, a);
        d->instance_state = svc_col(res, r, 3, a);
        d->connected = !strcmp(PQgetvalue(res, r, 4), "t");
        d->idle_s = atol(PQgetvalue(res, r, 5));
        d->age_s = atol(PQgetvalue(res, r, 6));
    }
    PQclear(res);
    return 0;
}

/* Marks desktop 'd' (available, no session) for termination; the next steps are the
 * 'terminating' desktop's. */
static bool retire(struct gw_ctx *gw, const char *tenant, struct wdesk *d, struct nb_arena *a)
{
    const char *p[] = {d->id};
    if (wexec(gw, "retiring a desktop",
              "UPDATE desktops SET state = 'terminating', owner_id = NULL, updated_at = now() "
              "WHERE id = $1 AND state = 'available'",
              1, p) != 1) {
        return false;
    }
    nb_info("vdi: desktop %s retired: its pool is over its size", d->id);
    d->state = "terminating";
    if (d->instance_id) {
        gw_vdi_terminate_instance(gw, tenant, d->instance_id, a);
    }
    return true;
}

/* One pass over pool 'p' (see docs/vdi.md, "the worker"). 'paused': a launch failed recently. */
static void worker_pool(struct gw_ctx *gw, const struct gw_vdi_pool *p, bool paused,
                        struct nb_arena *a)
{
    struct wdesk *ds;
    int n;
    if (read_wdesks(gw, p->id, a, &ds, &n) < 0) {
        return;
    }
    const char *tenant = p->owner_id;
    bool active = gw_vdi_is(p->state, "active");
    int warm = 0, total = 0;
    for (int k = 0; k < n; k++) {
        struct wdesk *d = &ds[k];
        const char *pid[] = {d->id, d->instance_id};
        bool idle = p->idle_stop_s > 0 && !d->connected && d->idle_s >= p->idle_stop_s;
        if (gw_vdi_is(d->state, "terminating")) {
            if (!d->instance_id || gw_vdi_is(d->instance_state, "terminated")) {
                wexec(gw, "removing a desktop",
                      "DELETE FROM desktops WHERE id = $1 AND state = 'terminating'", 1, pid);
            } else if (!gw_vdi_is(d->instance_state, "shutting-down")) {
                gw_vdi_terminate_instance(gw, tenant, d->instance_id, a);
            }
            continue;
        }
        total++;
        if (!d->instance_id) {
            /* Inserted, never launched (its gateway died): launch it again, same token. */
            if (d->age_s >= LAUNCH_GRACE_S && !paused) {
                struct nb_error e = {0};
                if (gw_vdi_launch(gw, p, d->id, a, &e) < 0) {
                    gw_vdi_launch_failed(gw, p->id, d->id, &e);
                }
            }
            warm += gw_vdi_is(d->state, "available");
            continue;
        }
        if (gw_vdi_is(d->instance_state, "terminated") || gw_vdi_is(d->instance_state, "error")) {
            /* Its instance died (terminated by someone, or failed): the desktop goes, with its
             * session; the spares are made up below, its user gets a new one at the next
             * connect. */
            nb_warn("vdi: desktop %s of pool %s lost its instance %s (%s): replacing it", d->id,
                    p->id, d->instance_id, d->instance_state);
            if (wexec(gw, "removing a dead desktop",
                      "DELETE FROM desktops WHERE id = $1 AND instance_id = $2", 2, pid) == 1) {
                total--;
                if (gw_vdi_is(d->instance_state, "error")) {
                    gw_vdi_terminate_instance(gw, tenant, d->instance_id, a);
                }
            }
            continue;
        }
        if (gw_vdi_is(d->state, "assigned")) {
            if (idle) {
                /* Idle sign-out: the session and its meter end, and the desktop stops; a
                 * non-persistent one is then reset like at any sign-out. */
                bool persistent = false;
                char inst[NB_ID_MAX];
                struct nb_error e = {0};
                char idle_s[16];
                snprintf(idle_s, sizeof idle_s, "%d", p->idle_stop_s);
                if (gw_vdi_end_session(gw, d->id, NULL, idle_s, &persistent, inst, sizeof inst,
                                       &e) == 1) {
                    nb_info("vdi: desktop %s idle for %ld s: signed out and stopped", d->id,
                            d->idle_s);
                    gw_vdi_instance_op(gw, tenant, GW_OP_STOP, d->instance_id, a);
                    warm += !persistent;
                }
            } else if (gw_vdi_is(d->instance_state, "stopped")) {
                /* A connect that found it stopping: start it now that it has stopped. */
                gw_vdi_instance_op(gw, tenant, GW_OP_START, d->instance_id, a);
            }
        } else if (gw_vdi_is(d->state, "reserved")) {
            if (idle && running_or_pending(d)) {
                nb_info("vdi: desktop %s (reserved) idle for %ld s: stopped", d->id, d->idle_s);
                gw_vdi_instance_op(gw, tenant, GW_OP_STOP, d->instance_id, a);
            }
        } else if (gw_vdi_is(d->state, "resetting")) {
            warm++;
            if (running_or_pending(d)) {
                gw_vdi_instance_op(gw, tenant, GW_OP_STOP, d->instance_id, a);
            } else if (gw_vdi_is(d->instance_state, "stopped")) {
                begin_reset(gw, tenant, d, a);
            }
        } else if (gw_vdi_is(d->state, "restarting")) {
            warm++;
            if (gw_vdi_is(d->instance_state, "stopped")) {
                gw_vdi_instance_op(gw, tenant, GW_OP_START, d->instance_id, a);
            } else if (gw_vdi_is(d->instance_state, "running")) {
                if (wexec(gw, "making a desktop available",
                          "UPDATE desktops SET state = 'available', last_active_at = now(), "
                          "updated_at = now() WHERE id = $1 AND state = 'restarting'",
                          1, pid) == 1) {
                    nb_info("vdi: desktop %s reset to its image: available", d->id);
                }
            }
        } else if (gw_vdi_is(d->state, "available")) {
            warm += running_or_pending(d);
        }
    }
    if (!active) {
        if (n == 0) {
            const char *pp[] = {p->id};
            if (wexec(gw, "removing a deleted pool",
                      "DELETE FROM desktop_pools p WHERE id = $1 AND state = 'deleting' AND "
                      "NOT EXISTS (SELECT 1 FROM desktops d WHERE d.pool_id = p.id)",
                      1, pp) == 1) {
                nb_info("vdi: pool %s deleted", p->id);
            }
        }
        return;
    }
    /* A pool shrunk below its desktops: unassigned ones go, stopped ones first. */
    for (int pass = 0; pass < 2 && total > p->size; pass++) {
        for (int k = 0; k < n && total > p->size; k++) {
            struct wdesk *d = &ds[k];
            bool stopped = !running_or_pending(d);
            if (gw_vdi_is(d->state, "available") && (pass == 1 || stopped) &&
                retire(gw, tenant, d, a)) {
                total--;
                warm -= !stopped;
            }
        }
    }
    /* Spares: start stopped available desktops first, then add new ones up to the size. */
    for (int k = 0; k < n && warm < p->spares; k++) {
        struct wdesk *d = &ds[k];
        if (gw_vdi_is(d->state, "available") && gw_vdi_is(d->instance_state, "stopped") &&
            gw_vdi_instance_op(gw, tenant, GW_OP_START, d->instance_id, a) == 0) {
            warm++;
        }
    }
    while (warm < p->spares && total < p->size && !paused && add_spare(gw, p, a) == 0) {
        warm++;
        total++;
    }
    /* Idle available desktops beyond the spares stop (they stay available, started on
     * demand). */
    for (int k = 0; k < n && warm > p->spares && p->idle_stop_s > 0; k++) {
        struct wdesk *d = &ds[k];
        if (gw_vdi_is(d->state, "available") && running_or_pending(d) && !d->connected &&
            d->idle_s >= p->idle_stop_s &&
            gw_vdi_instance_op(gw, tenant, GW_OP_STOP, d->instance_id, a) == 0) {
            nb_info("vdi: desktop %s (a spare beyond %d) idle for %ld s: stopped", d->id, p->spares,
                    d->idle_s);
            warm--;
        }
    }
}

/* Terminates running instances launched for desktops that no longer exist (a pool or desktop
 * removed while its instance's launch was being recorded). */
static void sweep(struct gw_ctx *gw, struct nb_arena *a)
{
    struct nb_error e = {0};
    PGresult *res = svc_exec(gw,
                             "SELECT i.id, i.tenant_id FROM instances i WHERE i.state NOT IN "
                             "('terminated', 'shutting-down') AND i.tags ? '" TAG_DESKTOP "' "
                             "AND i.launch_time < now() - interval '60 seconds' AND NOT EXISTS "
                             "(SELECT 1 FROM desktops d WHERE d.id = i.tags ->> '" TAG_DESKTOP "')",
                             0, NULL, &e);
    if (!res) {
        nb_warn("vdi: could not look for orphaned desktop instances: %s", e.msg);
        return;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        nb_warn("vdi: instance %s belongs to no desktop: terminating it", PQgetvalue(res, r, 0));
        gw_vdi_terminate_instance(gw, PQgetvalue(res, r, 1), PQgetvalue(res, r, 0), a);
    }
    PQclear(res);
}

static int worker_pass(struct gw_ctx *gw, bool with_sweep, struct nb_error *err)
{
    /* The lock lives as long as this connection's transaction: the whole pass. */
    struct nb_pg_conn *lock = nb_pg_acquire(gw->pool, SVC_ACQUIRE_MS, err);
    if (!lock) {
        return -1;
    }
    int rc = -1;
    PGresult *res = NULL;
    struct nb_arena *a = nb_arena_new(0);
    if (nb_pg_begin(lock, err) < 0 ||
        !(res = nb_pg_exec(lock, "SELECT pg_try_advisory_xact_lock(" WORKER_LOCK ")", 0, NULL,
                           err))) {
        goto done;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t")) {
        rc = 0; /* another gateway's pass is running */
        goto done;
    }
    PQclear(res);
    if (!(res = svc_exec(gw, POOL_SELECT "ORDER BY p.id", 0, NULL, err))) {
        goto done;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        struct gw_vdi_pool p;
        gw_vdi_row_to_pool(res, r, a, &p);
        worker_pool(gw, &p, !strcmp(PQgetvalue(res, r, POOL_COL_PAUSED), "t"), a);
    }
    if (with_sweep) {
        sweep(gw, a);
    }
    rc = 0;

done:
    PQclear(res);
    nb_pg_release(lock);
    nb_arena_free(a);
    return rc;
}

int gw_vdi_worker_pass(struct gw_ctx *gw, struct nb_error *err)
{
    return worker_pass(gw, true, err);
}

struct gw_vdi_worker {
    struct gw_ctx *gw;
    long interval_ms;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stop; /* under mu */
};

static void *worker_main(void *arg)
{
    struct gw_vdi_worker *w = arg;
    unsigned long passes = 0;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        pthread_mutex_unlock(&w->mu);
        struct nb_error err = {0};
        if (worker_pass(w->gw, passes++ % SWEEP_EVERY == SWEEP_EVERY - 1, &err) < 0) {
            nb_warn("vdi: worker pass failed: %s", err.msg);
        }
        pthread_mutex_lock(&w->mu);
        struct timespec until = nb_monotonic_after(w->interval_ms);
        while (!w->stop && pthread_cond_timedwait(&w->wake, &w->mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct gw_vdi_worker *gw_vdi_worker_start(struct gw_ctx *gw, struct nb_error *err)
{
    long long interval;
    if (nb_config_get_int(gw->cfg, "vdi.worker_interval_ms", 2000, 0, 3600000, &interval, err) <
        0) {
        return NULL;
    }
    struct gw_vdi_worker *w = calloc(1, sizeof *w);
    if (!w) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    w->gw = gw;
    w->interval_ms = (long)interval;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (interval == 0) {
        return w;
    }
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        nb_error_set(err, NB_ERR_INTERNAL, "could not start the VDI worker thread");
        gw_vdi_worker_stop(w);
        return NULL;
    }
    w->started = true;
    return w;
}

void gw_vdi_worker_stop(struct gw_vdi_worker *w)
{
    if (!w) {
        return;
    }
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
