/* Process plumbing shared by the daemons: termination signals handled by one thread, and
 * reaping of the children a daemon spawns. */
#ifndef NUBO_DAEMON_H
#define NUBO_DAEMON_H

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, so that threads created afterwards
 * inherit the mask and only nb_daemon_wait_signal() sees them, and ignores SIGPIPE.
 * Call first thing in main(), before any thread starts. */
void nb_daemon_block_signals(void);

/* Waits for SIGINT, SIGTERM or SIGHUP and returns its number. */
int nb_daemon_wait_signal(void);

#endif
