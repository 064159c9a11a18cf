/* Placement transactions: take instances that wait for a host, place them on the snapshot, claim
 * their capacity in PostgreSQL, and record the outcome, in one transaction. */
#ifndef NUBO_SCHED_PLACER_H
#define NUBO_SCHED_PLACER_H

#include <stdint.h>

struct nb_error;
struct sched_ctx;

/* Runs one placement transaction over up to ctx->cfg.batch reservations whose instances wait for
 * a host (pending_op 'spawn', or 'start' of an evacuated stopped instance, and no host). Each
 * reservation is placed all-or-nothing down to its MinCount; what is placed gets host_id and
 * keeps pending_op 'spawn' for a driver; what cannot be placed goes to 'error' with the
 * explanation. Reservations raced by another scheduler's claims are left for the next
 * transaction, which places them on fresh host data. 'rng' is the worker's random state.
 * Returns the number of instances placed or put in error (0: nothing waited), or -1 with
 * 'err'. */
int sched_placer_run_once(struct sched_ctx *ctx, uint64_t *rng, struct nb_error *err);

#endif
