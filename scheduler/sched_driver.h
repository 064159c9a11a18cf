/* Drivers: carry out the operations the gateway asked for (spawn, stop, start, reboot,
 * terminate) on the agents of the instances' hosts, and record their outcome. */
#ifndef NUBO_SCHED_DRIVER_H
#define NUBO_SCHED_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

struct nb_error;
struct sched_ctx;

/* Takes pending operations on placed instances with a lease (scheduler.lease_s; SKIP LOCKED, so
 * drivers and schedulers share the work and a dead one's operations come back when its lease
 * runs out) and carries them out: on 'simulated' hosts up to 256 at once, played here at once
 * (a spawn fails with probability scheduler.sim_fail_rate); otherwise one, through the agent's
 * HTTP API. Outcomes are written only if the instance's op_seq is unchanged (a newer request
 * wins):
 *   spawn, start, reboot ok -> running (a start also clears reset_root, which made its
 *                   agent call carry {"reset_root": true}); stop ok -> stopped (claim kept);
 *   terminate ok -> terminated, claim released, host_id cleared;
 *   spawn failed -> claim released, host added to tried_hosts, placed again on another host,
 *                   or 'error' (Server.InternalError) after scheduler.max_attempts;
 *   stop/start/reboot failed -> back to the state before, with the agent's reason;
 *   agent unreachable -> nothing: the lease runs out and the operation is tried again (on a
 *                   down host, a spawn fails over and a terminate completes instead).
 * Returns the number of operations taken, or -1 with 'err'. */
int sched_driver_run_once(struct sched_ctx *ctx, bool simulated, uint64_t *rng,
                          struct nb_error *err);

#endif
