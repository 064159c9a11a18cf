/* A throwaway Open vSwitch for tests and benchmarks: its own ovsdb-server and ovs-vswitchd
 * (userspace datapath; this kernel has no OVS module) in a temporary directory, reached through
 * OVS_RUNDIR, which ovstmp_start() sets in this process's environment for the ovs-* programs it
 * runs. */
#ifndef NUBO_TEST_OVSTMP_H
#define NUBO_TEST_OVSTMP_H

struct nb_error;
struct ovstmp;

/* Starts the daemons; ready when it returns. NULL with 'err' when Open vSwitch is not
 * installed or does not start. */
struct ovstmp *ovstmp_start(struct nb_error *err);
/* Deletes every bridge (so no tap device is left behind), stops the daemons, removes the
 * directory. */
void ovstmp_stop(struct ovstmp *o);
const char *ovstmp_rundir(const struct ovstmp *o);

#endif
