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

/* Makes allocations of 256 KiB and more come from mmap and go back to the system when freed
 * (glibc otherwise raises that threshold as such blocks are freed, and keeps them in its heaps
 * afterwards): a daemon that streams large buffers (image chunks, librados' copies of them)
 * then holds in memory what it uses now, not the sum of past peaks across its threads' arenas.
 * Call first thing in main(). */
void nb_daemon_bound_malloc(void);

struct nb_config;
struct nb_error;

/* Starts logging for 'program' as its settings say: log.level (debug, info, warn, error;
 * default info) and log.file (default standard error). Returns 0, or -1 with 'err' naming a bad
 * log.level. */
int nb_daemon_log_init(const struct nb_config *cfg, const char *program, struct nb_error *err);

#endif
