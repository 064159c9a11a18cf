/* The scheduler's context: configuration, the PostgreSQL pool, the in-memory host snapshot, and
 * the threads that do the work:
 *
 *   workers   (scheduler.workers)  place instances waiting for a host (sched_placer.c), each in one
 *                                  transaction per batch of reservations;
 *   drivers   (scheduler.drivers)  carry out pending operations on the agents, or play them for
 *                                  simulated hosts (sched_driver.c);
 *   housekeeper (one)              LISTENs on nubo_sched and wakes the others, refreshes the host
 *                                  snapshot, marks hosts without heartbeat down (sched_store.c).
 *
 * Everything the threads share is PostgreSQL (the truth) and the snapshot (a cache with its own
 * lock). Several scheduler processes can run against one database: placement takes advisory
 * locks per reservation and per placement group, operations are leased, and every claim is a
 * conditional UPDATE that cannot over-commit a host. */
#ifndef NUBO_SCHEDULER_H
#define NUBO_SCHEDULER_H

#include "placement.h"

#include "nubo/crypto.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct nb_config;
struct nb_error;
struct nb_pg_pool;

struct sched_config {
    int workers;             /* placement threads */
    int drivers;             /* agent-call threads */
    int batch;               /* reservations per placement transaction */
    int poll_ms;             /* idle threads look for work at least this often */
    int refresh_ms;          /* the host snapshot is re-read at least this often */
    int heartbeat_timeout_s; /* a host silent for longer is down */
    int max_attempts;        /* spawn attempts (hosts tried) before an instance is in error */
    int agent_timeout_s;     /* one agent call, spawn included */
    int lease_s;             /* how long a driver owns an operation without renewing it */
    double sim_fail_rate;    /* fraction of spawns on simulated hosts that fail (tests) */
    struct place_config place;
};

/* Counters, for logs, tests and the benchmark. */
struct sched_stats {
    atomic_long placed;       /* instances given a host (claims committed) */
    atomic_long unplaceable;  /* instances put in error by placement */
    atomic_long conflicts;    /* claims refused by PostgreSQL (raced by another scheduler) */
    atomic_long batches;      /* placement transactions committed */
    atomic_long ops_done;     /* operations completed */
    atomic_long spawn_failed; /* spawns that failed on a host */
};

/* Called after each committed placement transaction with its duration (from fetching the rows
 * to the commit) and the number of instances it placed. Runs on a worker thread. */
typedef void (*sched_batch_fn)(void *arg, double seconds, int placed);

struct sched_ctx {
    struct sched_config cfg;
    struct nb_pg_pool *pool; /* borrowed */
    char *conninfo;          /* for the LISTEN connection */
    uint8_t master_key[NB_MASTER_KEY_LEN];
    bool have_master_key;
    struct place_snapshot *snap;
    atomic_bool stop;
    atomic_llong snapshot_ms; /* CLOCK_MONOTONIC ms of the last full snapshot load */
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;
    pthread_t *threads;
    int n_threads;
    struct sched_stats stats;
    sched_batch_fn on_batch;
    void *on_batch_arg;
    /* The operations whose agent call runs now: their leases are renewed every lease_s / 3
     * (sched_renew_leases()), so that a short lease still covers a long spawn and a crashed
     * scheduler's operations are taken over after at most lease_s. */
    pthread_mutex_t inflight_mu;
    struct sched_inflight *inflight; /* a list */
};

struct sched_inflight {
    char id[24];
    char seq[24];
    struct sched_inflight *next;
};

/* Registers / forgets an operation whose agent call is running (instance id, op_seq). */
void sched_inflight_add(struct sched_ctx *ctx, struct sched_inflight *op);
void sched_inflight_remove(struct sched_ctx *ctx, struct sched_inflight *op);

/* Extends the leases of the operations in flight. Returns 0, or -1 with 'err'. */
int sched_renew_leases(struct sched_ctx *ctx, struct nb_error *err);

/* Reads the scheduler.* keys of 'cfg' into 'out' (defaults for absent keys). Returns 0, or -1
 * with 'err' naming the bad key. */
int sched_config_load(const struct nb_config *cfg, struct sched_config *out, struct nb_error *err);

/* The defaults of every scheduler.* key. */
void sched_config_default(struct sched_config *out);

/* Creates a context over 'pool' (borrowed; it needs workers + drivers + 1 connections) for the
 * database 'conninfo' (copied). 'master_key' (may be NULL when every host is simulated) unseals
 * the node secrets. Loads the host snapshot. Returns the context, or NULL with 'err'. Free with
 * sched_free(). */
struct sched_ctx *sched_new(const struct sched_config *cfg, struct nb_pg_pool *pool,
                            const char *conninfo, const uint8_t *master_key, struct nb_error *err);

/* Starts the threads. Returns 0, or -1 with 'err'. */
int sched_start(struct sched_ctx *ctx, struct nb_error *err);

/* Asks the threads to stop and joins them. Idempotent. */
void sched_stop(struct sched_ctx *ctx);

/* Stops if needed and frees. Accepts NULL. */
void sched_free(struct sched_ctx *ctx);

/* Wakes every idle thread (new work). */
void sched_wake(struct sched_ctx *ctx);

/* Re-reads every host into the snapshot. Returns 0, or -1 with 'err'. */
int sched_refresh(struct sched_ctx *ctx, struct nb_error *err);

/* A uniform double in [0, 1) from the caller's xorshift state (any non-zero start). */
static inline double sched_random(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

#endif
