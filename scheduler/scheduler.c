/* The scheduler's context and threads: see scheduler.h. */
#include "scheduler.h"
#include "sched_driver.h"
#include "sched_placer.h"
#include "sched_store.h"

#include "nubo/clock.h"
#include "nubo/config.h"
#include "nubo/buf.h"
#include "nubo/error.h"
#include "nubo/log.h"
#include "nubo/pg.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ACQUIRE_MS 10000

void sched_config_default(struct sched_config *out)
{
    *out = (struct sched_config){
        .workers = 2,
        .drivers = 16,
        .batch = 32,
        .poll_ms = 1000,
        .refresh_ms = 1000,
        .heartbeat_timeout_s = 30,
        .max_attempts = 3,
        .agent_timeout_s = 300,
        .lease_s = 30,
        .sim_fail_rate = 0,
    };
    place_config_default(&out->place);
}

static int get_double(const struct nb_config *cfg, const char *key, double def, double min,
                      double max, double *out, struct nb_error *err)
{
    const char *text = nb_config_get(cfg, key, NULL);
    if (!text) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || v < min || v > max) {
        nb_error_set(err, NB_ERR_INVALID, "invalid %s \"%s\": expected a number in [%g, %g]", key,
                     text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_int(const struct nb_config *cfg, const char *key, int def, int min, int max,
                   int *out, struct nb_error *err)
{
    long long v;
    if (nb_config_get_int(cfg, key, def, min, max, &v, err) < 0) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

int sched_config_load(const struct nb_config *cfg, struct sched_config *out, struct nb_error *err)
{
    sched_config_default(out);
    struct sched_config *c = out;
    if (get_int(cfg, "scheduler.workers", c->workers, 1, 64, &c->workers, err) < 0 ||
        get_int(cfg, "scheduler.drivers", c->drivers, 1, 256, &c->drivers, err) < 0 ||
        get_int(cfg, "scheduler.batch", c->batch, 1, 1000, &c->batch, err) < 0 ||
        get_int(cfg, "scheduler.poll_ms", c->poll_ms, 10, 60000, &c->poll_ms, err) < 0 ||
        get_int(cfg, "scheduler.refresh_ms", c->refresh_ms, 10, 600000, &c->refresh_ms, err) < 0 ||
        get_int(cfg, "scheduler.heartbeat_timeout_s", c->heartbeat_timeout_s, 1, 86400,
                &c->heartbeat_timeout_s, err) < 0 ||
        get_int(cfg, "scheduler.max_attempts", c->max_attempts, 1, 100, &c->max_attempts, err) <
            0 ||
        get_int(cfg, "scheduler.agent_timeout_s", c->agent_timeout_s, 1, 86400, &c->agent_timeout_s,
                err) < 0 ||
        get_int(cfg, "scheduler.lease_s", c->lease_s, 3, 86400 * 2, &c->lease_s, err) < 0 ||
        get_int(cfg, "scheduler.top_k", c->place.top_k, 1, 16, &c->place.top_k, err) < 0 ||
        get_double(cfg, "scheduler.weight.cpu", c->place.w_cpu, 0, 1000, &c->place.w_cpu, err) <
            0 ||
        get_double(cfg, "scheduler.weight.memory", c->place.w_memory, 0, 1000, &c->place.w_memory,
                   err) < 0 ||
        get_double(cfg, "scheduler.weight.disk", c->place.w_disk, 0, 1000, &c->place.w_disk, err) <
            0 ||
        get_double(cfg, "scheduler.weight.load", c->place.w_load, 0, 1000, &c->place.w_load, err) <
            0 ||
        get_double(cfg, "scheduler.sim_fail_rate", c->sim_fail_rate, 0, 1, &c->sim_fail_rate, err) <
            0) {
        return -1;
    }
    const char *weigher = nb_config_get(cfg, "scheduler.weigher", "spread");
    if (!strcmp(weigher, "spread")) {
        c->place.weigher = PLACE_SPREAD;
    } else if (!strcmp(weigher, "pack")) {
        c->place.weigher = PLACE_PACK;
    } else {
        nb_error_set(err, NB_ERR_INVALID,
                     "invalid scheduler.weigher \"%s\": expected spread or pack", weigher);
        return -1;
    }

    return 0;
}

void sched_wake(struct sched_ctx *ctx)
{
    pthread_mutex_lock(&ctx->wake_mu);
    pthread_cond_broadcast(&ctx->wake_cv);
    pthread_mutex_unlock(&ctx->wake_mu);
}

/* Waits until woken, stopped, or 'ms' have passed. */
static void wait_for_work(struct sched_ctx *ctx, int ms)
{
    struct timespec until = nb_monotonic_after(ms);
    pthread_mutex_lock(&ctx->wake_mu);
    if (!atomic_load(&ctx->stop)) {
        pthread_cond_timedwait(&ctx->wake_cv, &ctx->wake_mu, &until);
    }
    pthread_mutex_unlock(&ctx->wake_mu);
}

int sched_refresh(struct sched_ctx *ctx, struct nb_error *err)
{
    struct nb_pg_conn *conn = nb_pg_acquire(ctx->pool, ACQUIRE_MS, err);
    if (!conn) {
        return -1;
    }
    long long at = nb_monotonic_ms();
    int n = sched_store_load_hosts(conn, ctx->snap, ctx->cfg.heartbeat_timeout_s, NULL, 0, err);
    nb_pg_release(conn);
    if (n < 0) {
        return -1;
    }
    atomic_store(&ctx->snapshot_ms, at);
    return 0;
}

static uint64_t seed(const void *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)p ^ (uint64_t)getpid();
}

/* Logs a failure of a loop step, then backs off for a poll period. */
static void step_failed(struct sched_ctx *ctx, const char *what, const struct nb_error *err)
{
    nb_warn("%s: %s%s%s", what, err->msg, err->detail[0] ? "; " : "", err->detail);
    wait_for_work(ctx, ctx->cfg.poll_ms);
}

static void *worker_main(void *arg)
{
    struct sched_ctx *ctx = arg;
    uint64_t rng = seed(&rng);
    while (!atomic_load(&ctx->stop)) {
        struct nb_error err = {0};
        int n = sched_placer_run_once(ctx, &rng, &err);
        if (n < 0) {
            step_failed(ctx, "placement failed", &err);
        } else if (n == 0) {
            wait_for_work(ctx, ctx->cfg.poll_ms);
        }
    }
    return NULL;
}

static void *driver_main(void *arg)
{
    struct sched_ctx *ctx = arg;
    uint64_t rng = seed(&rng);
    while (!atomic_load(&ctx->stop)) {
        struct nb_error err = {0};
        int sim = sched_driver_run_once(ctx, true, &rng, &err);
        int real = sim < 0 ? -1 : sched_driver_run_once(ctx, false, &rng, &err);
        if (sim < 0 || real < 0) {
            step_failed(ctx, "operation driver failed", &err);
        } else if (sim == 0 && real == 0) {
            wait_for_work(ctx, ctx->cfg.poll_ms);
        }
    }
    return NULL;
}

/* The LISTEN connection: libpq directly, as the pool's connections are shared. Returns NULL
 * (after logging) when PostgreSQL cannot be reached; the caller tries again later. */
static PGconn *listen_connect(struct sched_ctx *ctx)
{
    PGconn *c = PQconnectdb(ctx->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        nb_warn("could not connect to listen for wake-ups: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PGresult *res = PQexec(c, "LISTEN nubo_sched");
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        nb_warn("could not LISTEN nubo_sched: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static void *housekeeper_main(void *arg)
{
    struct sched_ctx *ctx = arg;
    PGconn *listen = NULL;
    long long next_monitor = 0, next_renew = 0;
    int monitor_ms = ctx->cfg.heartbeat_timeout_s * 1000 / 4;
    monitor_ms = monitor_ms < 1000 ? 1000 : monitor_ms;
    while (!atomic_load(&ctx->stop)) {
        long long now = nb_monotonic_ms();
        struct nb_error err = {0};
        if (now >= next_monitor) {
            struct nb_pg_conn *conn = nb_pg_acquire(ctx->pool, ACQUIRE_MS, &err);
            int down = conn ? sched_store_monitor(conn, ctx->cfg.heartbeat_timeout_s, &err) : -1;
            nb_pg_release(conn);
            if (down < 0) {
                nb_warn("heartbeat monitor: %s", err.msg);
            }
            next_monitor = now + monitor_ms;
        }
        if (now >= next_renew) {
            if (sched_renew_leases(ctx, &err) < 0) {
                nb_warn("could not renew the leases of operations in flight: %s", err.msg);
            }
            next_renew = now + ctx->cfg.lease_s * 1000LL / 3;
        }
        if (now - atomic_load(&ctx->snapshot_ms) >= ctx->cfg.refresh_ms &&
            sched_refresh(ctx, &err) < 0) {
            nb_warn("could not refresh the hosts: %s", err.msg);
        }
        if (!listen) {
            listen = listen_connect(ctx);
        }
        int wait_ms = ctx->cfg.refresh_ms < 250 ? ctx->cfg.refresh_ms : 250;
        if (!listen) {
            usleep((useconds_t)wait_ms * 1000);
            continue;
        }
        struct pollfd pfd = {.fd = PQsocket(listen), .events = POLLIN};
        if (poll(&pfd, 1, wait_ms) > 0) {
            if (!PQconsumeInput(listen)) {
                nb_warn("lost the listen connection: %s", PQerrorMessage(listen));
                PQfinish(listen);
                listen = NULL;
                continue;
            }
            bool woke = false;
            PGnotify *n;
            while ((n = PQnotifies(listen))) {
                woke = true;
                PQfreemem(n);
            }
            if (woke) {
                sched_wake(ctx);
            }
        }
    }
    PQfinish(listen);
    return NULL;
}

void sched_inflight_add(struct sched_ctx *ctx, struct sched_inflight *op)
{
    pthread_mutex_lock(&ctx->inflight_mu);
    op->next = ctx->inflight;
    ctx->inflight = op;
    pthread_mutex_unlock(&ctx->inflight_mu);
}

void sched_inflight_remove(struct sched_ctx *ctx, struct sched_inflight *op)
{
    pthread_mutex_lock(&ctx->inflight_mu);
    for (struct sched_inflight **p = &ctx->inflight; *p; p = &(*p)->next) {
        if (*p == op) {
            *p = op->next;
            break;
        }
    }
    pthread_mutex_unlock(&ctx->inflight_mu);
}

int sched_renew_leases(struct sched_ctx *ctx, struct nb_error *err)
{
    struct nb_buf ids = NB_BUF_INIT, seqs = NB_BUF_INIT;
    pthread_mutex_lock(&ctx->inflight_mu);
    for (struct sched_inflight *op = ctx->inflight; op; op = op->next) {
        nb_buf_printf(&ids, "%s%s", ids.len ? "," : "{", op->id);
        nb_buf_printf(&seqs, "%s%s", seqs.len ? "," : "{", op->seq);
    }
    pthread_mutex_unlock(&ctx->inflight_mu);
    int rc = 0;
    if (ids.len) {
        nb_buf_puts(&ids, "}");
        nb_buf_puts(&seqs, "}");
        char lease[16];
        snprintf(lease, sizeof lease, "%d", ctx->cfg.lease_s);
        const char *p[] = {ids.data, seqs.data, lease};
        struct nb_pg_conn *conn = nb_pg_acquire(ctx->pool, ACQUIRE_MS, err);
        /* Only the operation we drive: a newer one (op_seq changed) is not ours to hold. */
        PGresult *res =
            conn ? nb_pg_exec(conn,
                              "UPDATE instances i SET op_lease_until = now() + $3 * interval "
                              "'1 second' FROM unnest($1::text[], $2::bigint[]) AS w(id, seq) "
                              "WHERE i.id = w.id AND i.op_seq = w.seq "
                              "AND i.op_lease_until IS NOT NULL",
                              3, p, err)
                 : NULL;
        rc = res ? 0 : -1;
        PQclear(res);
        nb_pg_release(conn);
    }
    nb_buf_free(&ids);
    nb_buf_free(&seqs);
    return rc;
}

struct sched_ctx *sched_new(const struct sched_config *cfg, struct nb_pg_pool *pool,
                            const char *conninfo, const uint8_t *master_key, struct nb_error *err)
{
    struct sched_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx || !(ctx->conninfo = strdup(conninfo)) || !(ctx->snap = place_snapshot_new())) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        if (ctx) {
            free(ctx->conninfo);
        }
        free(ctx);
        return NULL;
    }
    ctx->cfg = *cfg;
    ctx->pool = pool;
    if (master_key) {
        memcpy(ctx->master_key, master_key, NB_MASTER_KEY_LEN);
        ctx->have_master_key = true;
    }
    pthread_mutex_init(&ctx->wake_mu, NULL);
    pthread_mutex_init(&ctx->inflight_mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ctx->wake_cv, &attr);
    pthread_condattr_destroy(&attr);
    if (sched_refresh(ctx, err) < 0) {
        sched_free(ctx);
        return NULL;
    }
    return ctx;
}

int sched_start(struct sched_ctx *ctx, struct nb_error *err)
{
    int total = ctx->cfg.workers + ctx->cfg.drivers + 1;
    ctx->threads = calloc((size_t)total, sizeof *ctx->threads);
    if (!ctx->threads) {
        nb_error_set(err, NB_ERR_INTERNAL, "out of memory");
        return -1;
    }
    atomic_store(&ctx->stop, false);
    for (int i = 0; i < total; i++) {
        void *(*fn)(void *) = i < ctx->cfg.workers                      ? worker_main
                              : i < ctx->cfg.workers + ctx->cfg.drivers ? driver_main
                                                                        : housekeeper_main;
        int rc = pthread_create(&ctx->threads[i], NULL, fn, ctx);
        if (rc != 0) {
            nb_error_errno(err, rc, "could not start a scheduler thread");
            sched_stop(ctx);
            return -1;
        }
        ctx->n_threads++;
    }
    return 0;
}

void sched_stop(struct sched_ctx *ctx)
{
    atomic_store(&ctx->stop, true);
    sched_wake(ctx);
    for (int i = 0; i < ctx->n_threads; i++) {
        pthread_join(ctx->threads[i], NULL);
    }
    ctx->n_threads = 0;
    free(ctx->threads);
    ctx->threads = NULL;
}

void sched_free(struct sched_ctx *ctx)
{
    if (!ctx) {
        return;
    }
    sched_stop(ctx);
    place_snapshot_free(ctx->snap);
    pthread_mutex_destroy(&ctx->wake_mu);
    pthread_mutex_destroy(&ctx->inflight_mu);
    pthread_cond_destroy(&ctx->wake_cv);
    memset(ctx->master_key, 0, sizeof ctx->master_key);
    free(ctx->conninfo);
    free(ctx);
}
