/* The base image cache: images fetched by URL once per host, verified by SHA-256, shared by every
 * instance as the read-only backing file of its qcow2 overlay.
 *
 * Layout: one directory, one file per image named by its lower-case hex SHA-256 digest. A fetch
 * streams (libcurl: file://, http://, https://) into a temporary file ".tmp-<digest>-<random>" in
 * the same directory while hashing, compares the digest, fsync()s, renames it into place and
 * fsync()s the directory, so a complete name always holds a complete, verified image. A mismatch
 * or a failed transfer leaves no file behind. The directory is mode 0755 and every parent is made
 * traversable by others (o+x), images are 0644: QEMU runs as libvirt-qemu and reads base images
 * through the overlays' backing chains.
 *
 * Size limit: after each fetch, the least recently used images are evicted until the total size
 * is at most 'max_bytes'. Images that are pinned are never evicted: an image is pinned while a
 * caller holds it (between agent_imgcache_get() and agent_imgcache_release()), or while the
 * optional 'in_use' callback says so (the agent's check for overlays that still use it, which
 * survives restarts). The limit is soft: a new image is always admitted even when the pinned
 * images alone exceed it (a warning is logged).
 *
 * Restarts: agent_imgcache_open() rebuilds the index from the directory (recency from each file's
 * modification time, which every hit updates), deletes leftover temporary files, and ignores
 * other names. Files are trusted by name on restart, not re-hashed.
 *
 * Thread-safety: all functions may be called from any thread. Concurrent gets of the same digest
 * fetch it once; the others wait for that fetch and share its result (success or error). */
#ifndef NUBO_AGENT_IMGCACHE_H
#define NUBO_AGENT_IMGCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nb_error;
struct agent_imgcache;

struct agent_imgcache_config {
    const char *dir;         /* cache directory, created if missing; required */
    uint64_t max_bytes;      /* soft size limit; 0: unlimited */
    long fetch_timeout_ms;   /* whole transfer of one image; 3600000 (1 h) when 0 */
    long connect_timeout_ms; /* 10000 when 0 */
    /* Optional: true when the image with hex digest 'sha256' is still used (e.g. by an instance's
     * overlay), so it must not be evicted. Called with the cache's lock held: it must not call back
     * into the cache. */
    bool (*in_use)(const char *sha256, void *arg);
    void *in_use_arg;
};

/* Opens (creates) the cache in 'cfg->dir' (strings copied) and rebuilds its index. Returns a new
 * cache the caller frees with agent_imgcache_close(), or NULL with 'err' set (NB_ERR_IO). */
struct agent_imgcache *agent_imgcache_open(const struct agent_imgcache_config *cfg,
                                           struct nb_error *err);

/* Frees 'c' (the files stay). No get may be in progress. Accepts NULL. */
void agent_imgcache_close(struct agent_imgcache *c);

/* Returns the image with SHA-256 'sha256' (64 hex digits, either case), fetching it from 'url'
 * when it is not cached. 'size_hint' (0: unknown) is the expected size in bytes, used to make
 * room before the transfer; a transfer larger than 'max_bytes' (when set) is aborted.
 * On success stores a malloc()ed absolute path in '*path_out' (the caller free()s it), pins the
 * image (one pin per successful get; undo each with agent_imgcache_release()), and returns 0.
 * Returns -1 with 'err' set: NB_ERR_INVALID (bad digest or URL scheme), NB_ERR_INVALID with reason
 * "checksum" when the content does not match 'sha256', NB_ERR_NOT_FOUND (the URL answered 404 or
 * the file does not exist), NB_ERR_LIMIT (too large), NB_ERR_TIMEOUT, NB_ERR_UNAVAILABLE (could
 * not connect, 5xx), NB_ERR_IO (local files). */
int agent_imgcache_get(struct agent_imgcache *c, const char *url, const char *sha256,
                       uint64_t size_hint, char **path_out, struct nb_error *err);

/* Drops one pin of the image 'sha256' taken by agent_imgcache_get(); it may be evicted later.
 * Unknown digests and extra releases are ignored. */
void agent_imgcache_release(struct agent_imgcache *c, const char *sha256);

/* True when the image is cached (complete). Does not pin it or change its recency. */
bool agent_imgcache_contains(struct agent_imgcache *c, const char *sha256);

/* The total size in bytes of the cached images. */
uint64_t agent_imgcache_total_bytes(struct agent_imgcache *c);

/* Evicts unpinned images, least recently used first, until the total is at most 'target_bytes'.
 * Returns the number of images removed. (The cache does this itself after each fetch, against
 * 'max_bytes'; the agent may call it for disk-pressure.) */
size_t agent_imgcache_evict(struct agent_imgcache *c, uint64_t target_bytes);

#endif
