/* In-memory placement: a snapshot of the compute hosts, the filters that remove hosts an
 * instance cannot use, the weighers that rank the others, and the placement of a batch (one
 * reservation) all-or-nothing down to its MinCount. No I/O: sched_store.c fills the snapshot from
 * PostgreSQL and makes the claims chosen here durable.
 *
 * Capacity is tracked twice per host: what PostgreSQL last said ('db' values, with the host's
 * generation) and what this process has claimed tentatively but not yet committed ('pending').
 * A placement sees db + pending, so that the workers of one process do not race each other; the
 * claim in PostgreSQL re-checks the allocation rule and is the one that counts.
 *
 * Thread-safe: the snapshot has its own lock; every function below takes it. */
#ifndef NUBO_SCHED_PLACEMENT_H
#define NUBO_SCHED_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLACE_ID_MAX     32  /* room for a host or instance id and its NUL */
#define PLACE_REASON_MAX 768 /* a "no valid host" explanation */

enum place_host_state { PLACE_HOST_UP, PLACE_HOST_DOWN, PLACE_HOST_DISABLED, PLACE_HOST_DRAINING };

/* One row of the hosts table, as sched_store.c reads it. Strings are borrowed for the call. */
struct place_host_in {
    const char *id;
    const char *name;
    const char *zone;
    const char *dedicated_tenant; /* NULL when shared */
    const char *const *traits;
    int n_traits;
    enum place_host_state state;
    bool live; /* simulated, or heartbeat younger than the timeout */
    bool simulated;
    int64_t vcpus, memory_mib, disk_gib;
    int64_t reserved_vcpus, reserved_memory_mib, reserved_disk_gib;
    double cpu_ratio, memory_ratio, disk_ratio;
    int64_t used_vcpus, used_memory_mib, used_disk_gib, instance_count;
    int64_t generation;
    double cpu_load;
};

enum place_weigher { PLACE_SPREAD, PLACE_PACK };

/* How hosts are ranked. Each weigher gives 0..1 per host; the score is their weighted sum. */
struct place_config {
    enum place_weigher weigher;     /* spread: emptiest first; pack: fullest first */
    double w_cpu, w_memory, w_disk; /* multipliers of the free-capacity weighers */
    double w_load;                  /* multiplier of (1 - cpu_load); 0 turns it off */
    int top_k;                      /* pick at random among the best k hosts (>= 1) */
};

/* The defaults: spread, multipliers 1/1/0.5, load off, top 3. */
void place_config_default(struct place_config *cfg);

enum place_strategy { PLACE_GROUP_CLUSTER, PLACE_GROUP_SPREAD, PLACE_GROUP_PARTITION };

/* A placement group and where its live instances already are: 'n_members' pairs of host id and
 * partition number (0 when none). Borrowed for the call. */
struct place_group {
    const char *id;
    enum place_strategy strategy;
    int partition_count;
    const char *const *member_hosts;
    const int *member_partitions;
    int n_members;
};

/* One instance to place. The inputs are borrowed for the call; the outputs are filled by
 * place_batch(). */
struct place_inst {
    const char *id;
    const char *tenant_id;
    const char *instance_type;
    const char *zone;
    int64_t vcpus, memory_mib, disk_gib; /* the claim */
    const char *const *traits;           /* required host traits */
    int n_traits;
    bool dedicated;           /* tenancy 'dedicated': needs a host dedicated to the tenant */
    int partition;            /* requested partition (1..n), 0 for any */
    const char *const *tried; /* hosts that already failed to spawn it */
    int n_tried;
    /* outputs */
    bool placed;
    char host_id[PLACE_ID_MAX];
    bool host_simulated;
    int out_partition;             /* partition chosen, 0 when not in a partition group */
    char reason[PLACE_REASON_MAX]; /* why it was not placed */
};

/* A batch: the instances of one reservation (or one retried instance), placed in order, kept
 * only if at least 'min_count' of them fit. */
struct place_batch {
    const char *label; /* the reservation id, for messages */
    struct place_inst *insts;
    int n;
    int min_count;
    const struct place_group *group; /* NULL when the instances are in no group */
};

struct place_snapshot;

/* Returns a new, empty snapshot, or NULL when out of memory. Free with place_snapshot_free(),
 * which accepts NULL. */
struct place_snapshot *place_snapshot_new(void);
void place_snapshot_free(struct place_snapshot *s);

/* Replaces the snapshot's hosts with 'rows' (the whole hosts table). A host's pending claims are
 * kept across the reload, and its used values are taken from the row only when the row's
 * generation is newer than the one known here (a claim this process just committed may be newer
 * than a reload that was read before it). Returns 0, or -1 when out of memory (the snapshot is
 * then unchanged). */
int place_snapshot_load(struct place_snapshot *s, const struct place_host_in *rows, size_t n);

/* Updates one host from a fresh row (after a claim conflict), or adds it. Same generation rule as
 * place_snapshot_load(). Returns 0, or -1 when out of memory. */
int place_snapshot_update(struct place_snapshot *s, const struct place_host_in *row);

/* Number of hosts in the snapshot. */
size_t place_snapshot_size(struct place_snapshot *s);

/* Places the batch on the snapshot: each instance goes through the filters and weighers in turn,
 * and each one placed is claimed tentatively (pending) so that the next sees it. If fewer than
 * 'min_count' fit, every tentative claim of the batch is undone and no instance is placed. An
 * instance not placed gets its explanation in 'reason', the batch's instances that could not
 * all fit a message naming the MinCount. 'rng' is the caller's random state (any non-zero value
 * to start). Returns the number of instances placed. */
int place_batch(struct place_snapshot *s, const struct place_config *cfg, struct place_batch *b,
                uint64_t *rng);

/* Ends the tentative claim of 'inst' (placed by place_batch) on its host: 'committed' when the
 * claim is now in PostgreSQL (the pending amount moves to the host's db values unless a newer
 * generation was seen), otherwise dropped. */
void place_finish(struct place_snapshot *s, const struct place_inst *inst, bool committed);

/* Sets a host's db values from what a committed claim statement returned. Ignored when
 * 'generation' is not newer than the one known. */
void place_snapshot_set_used(struct place_snapshot *s, const char *host_id, int64_t generation,
                             int64_t used_vcpus, int64_t used_memory_mib, int64_t used_disk_gib,
                             int64_t instance_count);

/* Reads a host's effective usage (db + pending), for tests. Returns 0, or -1 if unknown. */
int place_snapshot_used(struct place_snapshot *s, const char *host_id, int64_t *vcpus,
                        int64_t *memory_mib, int64_t *disk_gib);

#endif
