/* nubo-agent: the compute node's daemon.
 *
 * It runs the instances the scheduler sends it through libvirt, and keeps the control plane
 * informed. Three parts:
 *   agent.c       context, start-up (registration by heartbeat, reconcile), heartbeats
 *   agent_ops.c   the instance operations: spawn, stop, start (and reset), reboot, terminate,
 *                 console, VNC port
 *   agent_http.c  the HTTP API the scheduler and the gateway call (docs/agent-api.md)
 *
 * The node holds no database credentials: its one secret is the node token
 * ("h-<id>:<hex>") that the operator got when registering the host. The agent presents it to
 * the control plane (gateway, /internal/v1/...) and requires it from whoever calls its API.
 *
 * Every operation on an instance holds that instance's lock, so a terminate that arrives while
 * a spawn runs waits for it and then undoes it. Operations are idempotent: the scheduler
 * retries them after a crash of either side. */
#ifndef NUBO_AGENT_H
#define NUBO_AGENT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct agent_ctx;
struct agent_imgcache;
struct agent_virt;
struct nb_config;
struct nb_error;
struct nb_http_server;
struct nb_metrics;

#define AGENT_DEFAULT_PORT "8775"
#define AGENT_VIRT_CONNS   4

/* The libvirt connection for the next instance operation (round robin over a->virts). */
struct agent_virt *agent_virt_pick(struct agent_ctx *a);

/* One lock per instance id, made on first use and kept (a few bytes per instance ever seen). */
struct agent_lock {
    char id[32];
    pthread_mutex_t mu;
    struct agent_lock *next;
};

struct agent_ctx {
    const struct nb_config *cfg; /* borrowed from main */
    char host_id[32];
    char token[160];         /* the node token */
    char control_url[256];   /* the gateway, e.g. http://127.0.0.1:8773 */
    char advertise_url[256]; /* how the control plane reaches this agent */
    char state_dir[2048];    /* short enough for the paths made under it */
    char virt_type[8];       /* "kvm" or "qemu", decided at start */
    char vnc_listen[64];
    char ovs_bridge[32];       /* where instances' interfaces are plugged (vif.h) */
    char ovs_rundir[PATH_MAX]; /* Open vSwitch's run directory; "": ovs-vsctl's default */
    int stop_grace_ms;
    int heartbeat_ms;
    struct agent_virt *virt; /* == virts[0]: queries, reconcile, stats */
    /* libvirtd serves at most max_client_requests (5 by default) calls of one connection at a
     * time: instance operations spread over several connections, so that ten launches at once
     * do not queue behind each other. */
    struct agent_virt *virts[AGENT_VIRT_CONNS];
    atomic_uint next_virt;
    struct agent_imgcache *cache;
    struct nb_http_server *http;
    int port;

    pthread_mutex_t locks_mu;
    struct agent_lock *locks;

    pthread_t heartbeat_thread;
    bool heartbeat_started;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cond;
    atomic_bool stopping;

    json_t *drift; /* what the last reconcile found, reported in heartbeats (under stop_mu) */
    struct nb_metrics *metrics; /* GET /metrics */
};

/* Counts one finished operation ("spawn", "stop", ...) with its outcome, and a spawn's
 * duration, in the agent's metrics. */
void agent_count(struct agent_ctx *a, const char *op, bool ok, double seconds);

/* Opens the agent from its configuration: node token, state directory, libvirt connection
 * (with the KVM probe when agent.virt_type is "auto"), image cache. Returns a new context the
 * caller frees with agent_close(), or NULL with 'err' set. */
struct agent_ctx *agent_open(const struct nb_config *cfg, struct nb_error *err);

/* Starts the HTTP API, heartbeats once (which fails if the control plane refuses the token),
 * reconciles the domains on this node with the control plane's view, then heartbeats every few
 * seconds from a thread. Returns 0, or -1 with 'err'. */
int agent_start(struct agent_ctx *a, struct nb_error *err);

/* Stops the API and the heartbeats. Running guests keep running. Idempotent. */
void agent_stop(struct agent_ctx *a);

/* Frees everything. Accepts NULL. */
void agent_close(struct agent_ctx *a);

/* Compares this node's domains with the instances the control plane places here and repairs
 * the difference: a domain the control plane does not know (or has terminated) is destroyed
 * with its disks; a running instance whose domain is gone or shut off is started again (when
 * its disks are there), a running one gets its network interfaces plugged again (vif.h);
 * leftover instance directories are removed. Returns a new reference
 * describing what drifted ([{"instance_id", "found", "action"}]), or NULL with 'err'. */
json_t *agent_reconcile(struct agent_ctx *a, struct nb_error *err);

/* --- agent_ops.c: instance operations; each locks the instance ------------------------------ */

/* Spawns the instance described by 'spec' (the scheduler's JSON, docs/agent-api.md): fetches
 * its images into the cache, makes its disks and config drive, defines and starts the domain,
 * and returns once it runs. Idempotent. Returns 0, or -1 with 'err'. */
int agent_spawn(struct agent_ctx *a, const char *id, const json_t *spec, struct nb_error *err);

/* Graceful stop (ACPI, then destroy after the grace time; 'force' destroys at once). */
int agent_stop_instance(struct agent_ctx *a, const char *id, bool force, struct nb_error *err);

/* Longest request id of a reset (agent_start_instance()). */
#define AGENT_RESET_ID_MAX 64

/* Starts the instance's domain (a running one is fine), with its network interfaces plugged
 * first. With 'reset_root' its disks are discarded first, for a non-persistent desktop: the
 * domain must be shut off (a running or paused one is NB_ERR_CONFLICT, reason
 * IncorrectInstanceState); the root overlay is made anew over the cached base image of its saved
 * spec, the ephemeral disk (if any) anew and empty, the config drive kept (agent_disks_reset()).
 * 'reset_id' (may be NULL; at most AGENT_RESET_ID_MAX characters, no '/' or newline) names the
 * request: once it has reset the disks and the domain runs, the same request again is a success
 * that changes nothing, so that a retry after a lost answer does not fail on the running domain.
 * Returns 0, or -1 with 'err'. */
int agent_start_instance(struct agent_ctx *a, const char *id, bool reset_root, const char *reset_id,
                         struct nb_error *err);
int agent_reboot_instance(struct agent_ctx *a, const char *id, struct nb_error *err);

/* Destroys and undefines the domain, unplugs its network interfaces and deletes the instance's
 * disks. Absent is fine. */
int agent_terminate(struct agent_ctx *a, const char *id, struct nb_error *err);

/* Plugs (again) the network interfaces that the saved spec of instance 'id' names (vif.h), or
 * unplugs them; an instance without a saved spec or interfaces has nothing to do. The caller
 * holds the instance's lock. Return 0, or -1 with 'err' set. */
int agent_plug_saved(struct agent_ctx *a, const char *id, struct nb_error *err);
int agent_unplug_saved(struct agent_ctx *a, const char *id, struct nb_error *err);

/* Snapshots the instance's root disk (the overlay flattened with its base, crash-consistent
 * when the guest runs) into STATE/snapshots/<image_id>.qcow2, which this agent serves at
 * GET /v1/snapshots/<image_id>?sig=... to whoever has the signed URL (other nodes' image
 * caches). Returns a new reference {"location", "sha256", "size_bytes", "format"}, or NULL with
 * 'err' set. */
json_t *agent_snapshot(struct agent_ctx *a, const char *id, const char *image_id,
                       struct nb_error *err);

/* The signature of snapshot 'image_id' in its URL (32 hex digits, into 'out'). */
void agent_snapshot_sig(const struct agent_ctx *a, const char *image_id, char out[33]);

/* The last 'max' bytes of the instance's serial console log, malloc()ed and NUL-terminated;
 * NULL with NB_ERR_NOT_FOUND when the instance has no log on this node. */
char *agent_console(struct agent_ctx *a, const char *id, size_t max, struct nb_error *err);

/* Stores the TCP port of the running instance's VNC display (on agent.vnc_listen) in '*port'.
 * Returns 0, or -1 with 'err': NB_ERR_NOT_FOUND when this node has no such domain (or it has no
 * VNC display), NB_ERR_CONFLICT (reason IncorrectInstanceState) when it is not running. */
int agent_vnc_port(struct agent_ctx *a, const char *id, int *port, struct nb_error *err);

/* The instance's state on this node: "running", "stopped", "paused", "crashed" or "absent". */
const char *agent_instance_state(struct agent_ctx *a, const char *id, struct nb_error *err);

/* The lock of instance 'id' (never NULL; aborts when out of memory). */
pthread_mutex_t *agent_lock_of(struct agent_ctx *a, const char *id);

/* The directory of instance 'id' under the state directory, into 'out' (PATH_MAX bytes). */
void agent_instance_dir(const struct agent_ctx *a, const char *id, char *out);

/* --- agent_http.c ----------------------------------------------------------------------------- */

/* Registers the agent's routes on 'srv'. Returns 0 or -1. */
int agent_http_routes(struct agent_ctx *a, struct nb_http_server *srv);

#endif
