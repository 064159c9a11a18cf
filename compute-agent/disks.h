/* Per-instance disks: the instance directory, the root qcow2 overlay over a cached base image, the
 * ephemeral disk, the NoCloud config drive, and their removal.
 *
 * Layout under the configured state directory (every directory mode 0755, QEMU reads through it):
 *
 *   STATE/instances/<id>/root.qcow2      overlay, backing file = the cached base image
 *   STATE/instances/<id>/ephemeral.qcow2 optional
 *   STATE/instances/<id>/config.iso      NoCloud config drive (ISO9660, label "cidata")
 *   STATE/instances/<id>/console.log     serial console log (written by libvirt's virtlogd)
 *
 * Crash safety: each file is made under a temporary name ("<name>.tmp") and renamed into place, so
 * a name always holds a complete file. Re-running a create after a crash (even SIGKILL mid-way) is
 * the repair: a complete root or ephemeral disk is kept as it is (it may already hold the guest's
 * data, so it is never recreated), a stale temporary is replaced, and the config drive is rebuilt.
 *
 * Tools run as child processes (posix_spawn, no shell), stdin from /dev/null, with a deadline
 * after which they are killed; they are always reaped, and their output (stdout and stderr, the
 * last 2 KiB) goes into the error's detail when they fail.
 *
 * Thread-safety: no shared state; calls for different instances may run at once. Two calls for
 * the same instance at once are the caller's to avoid. */
#ifndef NUBO_AGENT_DISKS_H
#define NUBO_AGENT_DISKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;

struct agent_disks_config {
    const char *state_dir;   /* required; instances live in STATE/instances/<id>/ */
    const char *qemu_img;    /* "qemu-img" (found in PATH) when NULL */
    const char *genisoimage; /* "genisoimage" when NULL */
    long tool_timeout_ms;    /* deadline of each tool run; 60000 when 0 */
};

/* Makes directory 'dir' exist with mode 0755 (mkdir -p), and every parent that is not yet
 * traversable by others o+x (logged): QEMU runs as libvirt-qemu and opens files below it.
 * Returns 0, or -1 with 'err' set (NB_ERR_IO, NB_ERR_INVALID for a path over PATH_MAX). */
int agent_disks_make_dir(const char *dir, struct nb_error *err);

/* Stores the malloc()ed path of the instance directory of 'id' (the caller free()s it) in
 * '*path_out' and creates it (and STATE/instances) with mode 0755 if needed. Returns 0, or -1 with
 * 'err' set (NB_ERR_INVALID for an id that is not "i-" and hex digits, NB_ERR_IO). */
int agent_disks_instance_dir(const struct agent_disks_config *cfg, const char *id, char **path_out,
                             struct nb_error *err);

/* Returns the malloc()ed path of file 'name' (e.g. "console.log") in the instance directory of
 * 'id' (the caller free()s it), without creating anything, or NULL with 'err' set for a bad id. */
char *agent_disks_path(const struct agent_disks_config *cfg, const char *id, const char *name,
                       struct nb_error *err);

/* Creates root.qcow2 of 'id' over 'base' (an absolute path, normally from agent_imgcache_get()):
 * `qemu-img create -f qcow2 -F FMT -b BASE root.qcow2 SIZE`, SIZE = max('disk_gib' GiB, the base's
 * virtual size). 'base_format' is "raw" or "qcow2", or NULL to detect it with `qemu-img info`
 * (a qcow2 base that itself has a backing file is refused: NB_ERR_INVALID). An existing root.qcow2
 * is kept. Stores the malloc()ed overlay path in '*path_out' (caller free()s). Returns 0, or -1
 * with 'err' set. */
int agent_disks_create_root(const struct agent_disks_config *cfg, const char *id, const char *base,
                            const char *base_format, unsigned disk_gib, char **path_out,
                            struct nb_error *err);

/* Creates ephemeral.qcow2 of 'id', 'gib' GiB (1..16384), empty (the guest formats it). An existing
 * one is kept. Stores the malloc()ed path in '*path_out' (caller free()s). Returns 0, or -1 with
 * 'err' set. */
int agent_disks_create_ephemeral(const struct agent_disks_config *cfg, const char *id, unsigned gib,
                                 char **path_out, struct nb_error *err);

/* Discards what the guest wrote to its disks, for a non-persistent desktop: root.qcow2 of 'id'
 * becomes a new, empty overlay over 'base' (made as agent_disks_create_root() makes it, same
 * arguments), and, when 'ephemeral_gib' > 0, ephemeral.qcow2 a new, empty disk of that size.
 * Each new disk is made under its temporary name and renamed over the old one, so that a crash
 * leaves the old disk or the new one, never a missing or partial file; calling it again after a
 * crash finishes the job. The config drive is kept. The domain must be shut off: a running QEMU
 * would keep writing to the old, unlinked files. Returns 0, or -1 with 'err' set. */
int agent_disks_reset(const struct agent_disks_config *cfg, const char *id, const char *base,
                      const char *base_format, unsigned disk_gib, unsigned ephemeral_gib,
                      struct nb_error *err);

/* What goes on the config drive. */
struct agent_disks_cidata {
    const char *hostname;           /* local-hostname; NULL: the instance id */
    const char *const *public_keys; /* OpenSSH public key lines; 'n_public_keys' of them */
    size_t n_public_keys;
    const char *user_data_b64; /* base64 user data (as EC2 takes it); NULL or "": empty */
};

/* (Re)builds config.iso of 'id': an ISO9660 (Joliet, Rock Ridge) with volume label "cidata" that
 * holds 'meta-data' (YAML: instance-id, local-hostname, public-keys as a list) and 'user-data'
 * (the decoded user data, byte for byte). Stores the malloc()ed path in '*path_out' (caller
 * free()s). Returns 0, or -1 with 'err' set (NB_ERR_INVALID for bad base64). */
int agent_disks_create_config_drive(const struct agent_disks_config *cfg, const char *id,
                                    const struct agent_disks_cidata *cd, char **path_out,
                                    struct nb_error *err);

/* Writes the meta-data text of the config drive for 'id' and 'cd' (exported for tests and for a
 * metadata service). Returns a malloc()ed string the caller free()s. */
char *agent_disks_meta_data(const char *id, const struct agent_disks_cidata *cd);

/* Removes the instance directory of 'id' and everything in it. An absent directory is fine.
 * Returns 0, or -1 with 'err' set. */
int agent_disks_remove(const struct agent_disks_config *cfg, const char *id, struct nb_error *err);

/* Runs 'argv' (argv[0] looked up in PATH) with stdin from /dev/null, killing it (SIGKILL) after
 * 'timeout_ms'. Stores its combined stdout and stderr (at most 64 KiB, the rest dropped) in
 * '*output' when 'output' is not NULL (malloc()ed, NUL-terminated; the caller free()s it, also on
 * failure). Returns 0 when it exits with status 0, or -1 with 'err' set: NB_ERR_TIMEOUT, or
 * NB_ERR_INTERNAL "command \"X\" failed: exit status N" with the output's tail as the detail. */
int agent_disks_run(const char *const *argv, long timeout_ms, char **output, struct nb_error *err);

#endif
