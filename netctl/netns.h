/* Low-level helpers shared by the network services that live in their own network namespaces
 * (vpn.c: IPsec gateways, wg.c: WireGuard endpoints, svc.c: DHCP and metadata): running a
 * function inside a namespace in a forked child, looking up and preparing links there, and the
 * small file operations on their state directories, plus the nsfs clean-up that a daemon started
 * in a private mount namespace needs. Only logic that was the same in its users lives here; what
 * differs between them (running tools, starting and stopping their daemons) stays in their own
 * files. */
#ifndef NUBO_NETCTL_NETNS_H
#define NUBO_NETCTL_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct nb_error;

/* Where "ip netns add" mounts the named network namespaces. */
#define NC_NETNS_DIR "/run/netns"

/* Runs 'fn(arg)' in a child process that has joined the network namespace 'netns' (NULL: stays
 * in ours) and returns its exit status (126: the child could not join 'netns'; 125: it did not
 * exit normally), or -1 with 'err' set if the namespace could not be opened or the child could not
 * be forked. 'fn' runs between fork() and _exit() of a possibly threaded process: system calls
 * only, no malloc. */
int nc_netns_call(const char *netns, int (*fn)(const void *), const void *arg,
                  struct nb_error *err);

/* Whether the link 'ifname' exists in the network namespace 'netns' (NULL: ours). Returns 1, 0,
 * or -1 with 'err' set. */
int nc_netns_link_exists(const char *netns, const char *ifname, struct nb_error *err);

/* Turns transmit checksum offload off on 'ifname' in the caller's namespace (ethtool -K IFNAME
 * tx off): Open vSwitch's userspace datapath forwards such packets with bad TCP checksums.
 * System calls only, so that it may run in an nc_netns_call() child. Returns 0, or -1 with
 * errno set. */
int nc_netns_tx_csum_off(const char *ifname);

/* Writes 'text' to the /proc or /sys file 'path' (one write, no temporary file). System calls
 * only, so that it may run in an nc_netns_call() child. Returns 0, or -1 if the file could not be
 * opened or not all of 'text' was written. */
int nc_netns_write_proc(const char *path, const char *text);

/* Whether process 'pid' exists and is not a zombie (nor dead), read from /proc/'pid'/stat; its
 * command name (at most 31 bytes) into 'comm' if 'comm' is not NULL. */
bool nc_netns_proc_alive(pid_t pid, char comm[32]);

/* Detaches (umount2 MNT_DETACH), in the caller's mount namespace, every nsfs mount it inherited
 * (namespaces pinned by "ip netns add" and the like), so that a daemon started in a private mount
 * namespace does not keep those namespaces, and their veths, alive after "ip netns del". The
 * caller must already be in a private mount namespace (unshare(CLONE_NEWNS), then / made
 * MS_PRIVATE). Async-signal-safe: may run between fork() and exec(). */
void nc_netns_detach_nsfs_mounts(void);

/* Whether 'path' exists (lstat(2): a dangling link counts). */
bool nc_netns_file_exists(const char *path);

/* Whether 'a' and 'b' are both non-NULL and equal. */
bool nc_netns_same_text(const char *a, const char *b);

/* Creates the directory 'path' (mode 0700) unless it exists. Returns 0, or -1 with 'err'. */
int nc_netns_make_dir(const char *path, struct nb_error *err);

/* Removes 'path' and everything below it; a missing 'path' is not an error. Returns 0, or -1
 * with 'err'. */
int nc_netns_remove_tree(const char *path, struct nb_error *err);

/* Lists into '*names' (sorted by strcmp, each a new string; the caller frees the lot with
 * nc_netns_list_free()) the entries of the directory 'dir' for which 'keep' returns true, and
 * their number into '*n'. A missing 'dir' lists nothing. Returns 0, or -1 with 'err' set (the
 * message names 'dir' as 'what', e.g. "state directory"). Aborts when out of memory. */
int nc_netns_list_dir(const char *dir, bool (*keep)(const char *name), const char *what,
                      char ***names, size_t *n, struct nb_error *err);

/* Frees the 'n' names of 'names' and the array itself; accepts NULL. */
void nc_netns_list_free(char **names, size_t n);

#endif
